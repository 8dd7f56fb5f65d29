"""Engine: the public operations on runs (start, resume, cancel, read, follow)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import weakref
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import Any, TypeVar

from runservice import limits, logs
from runservice.engine import paging
from runservice.engine.admission import Caller
from runservice.engine.capacity import Capacity, Reservation
from runservice.engine.deadlines import deadline_error, iso, run_deadline
from runservice.engine.driver import RunDriver, stopped_record
from runservice.engine.failures import log_failure
from runservice.engine.follow import check_cursor, drained, follow_events
from runservice.engine.leases import LeaseKeeper, LeaseLost, replica_id
from runservice.engine.locks import KeyedLock
from runservice.engine.marks import (
    FORK,
    RESUME,
    RESUME_BEGAN,
    START,
    TIME_TRAVEL,
    TIME_TRAVEL_BEGAN,
    Mark,
    MarkForm,
    began_at,
    began_row,
)
from runservice.engine.retention import Retention
from runservice.engine.schedules import Scheduler
from runservice.engine.targets import Accepted, accept, find_runnable, resolve
from runservice.engine.timetravel import (
    RECORDED_INPUT,
    check_time_travel,
    plan,
    refusal,
    travel_ended,
    travel_event,
)
from runservice.engine.versions import ServedVersions, identity
from runservice.errors import (
    FieldViolation,
    InvalidArgument,
    RunActive,
    RunAlreadyStarted,
    RunBelongsToOtherResource,
    RunBelongsToOtherWorkflow,
    RunClaimed,
    RunDeadlineExceeded,
    RunNotActive,
    RunNotFound,
    RunNotSuspended,
    RunUnreadable,
    RunWorkflowMismatch,
    StorageFailed,
    StorageUnavailable,
    Unavailable,
    ValidationFailed,
    WorkflowDefinitionChanged,
    WorkflowDefinitionError,
    WorkflowNotFound,
    WorkflowVersionUnavailable,
)
from runservice.model import (
    Event,
    EventDraft,
    EventType,
    Execution,
    Json,
    Run,
    RunError,
    RunStatus,
    StepRecord,
    StepStatus,
    Travel,
    WorkflowState,
    fork_run_id,
    random_bits,
    request_run_id,
    time_ordered_id,
)
from runservice.model import evolve as replace  # dataclasses.replace, faster
from runservice.storage import Claim, Definition, Lease, RunQuery, RunWrite, Store, Subscription, WriteResult
from runservice.workflow import Schedule, Schema, SchemaViolation, Step, Workflow

logger = logging.getLogger(__name__)

_START_ATTEMPTS = 3
"""Creates a Start tries when its run's reservation is deleted under it each time."""
_ACTIVE = frozenset({RunStatus.RUNNING, RunStatus.WAITING})
_OPEN = frozenset({RunStatus.PENDING, RunStatus.SUSPENDED, *_ACTIVE})
_UNFINISHED_STEPS = frozenset({StepStatus.SUSPENDED, StepStatus.RUNNING, StepStatus.WAITING})
"""A run not over yet: a Cancel ends it."""
_DELETABLE = frozenset(RunStatus) - _ACTIVE
_T = TypeVar("_T")


@dataclass(frozen=True)
class _Repeat:
    """An admission's answer read (or waited for) once the run's lock is released: the
    first outcome of a retried request, or the run the admission committed but left to the
    claim loop for want of room (engine/capacity.py)."""

    run_id: str
    born: float | None = None
    """`created_at` of the run the admission read (a caller's scope was checked on that run):
    another made anew under the id meanwhile is RunNotFound, not the answer."""


_Admission = Run | _Repeat | tuple[Run, "asyncio.Task[Run]"]
"""What an admission (see `Engine._admit`) hands back: the answer itself, a retried
request's marker, or the answer as of the start of the drive it launched, with its task."""
_MAX_PAGE = 1000


class Engine:
    """Owns every run task of this process. Use as `async with Engine(store, workflows) as engine`.

    The store must be open; the engine does not close it. Entering the engine re-drives
    the runs that were `running` or `waiting` when the previous process stopped.
    """

    def __init__(
        self,
        store: Store,
        workflows: Iterable[Workflow],
        *,
        cancel_grace: float = 5.0,
        heartbeat: float = 15.0,
        owner: str | None = None,
        lease_seconds: float = 10.0,
        claim_interval: float = 1.0,
        schedules: Iterable[Schedule] = (),
        retention: float = 0.0,
        max_active_runs: int = 0,
        workflow_limits: Mapping[str, int] | None = None,
        replica_name: str | None = None,
    ) -> None:
        """`owner` names this replica (fresh per process by default); `lease_seconds` is how
        long its runs stay its own without a heartbeat, `claim_interval` how often it looks
        for runs nobody drives. On an exclusive store (SQLite) leases never expire.
        `schedules`: cron schedules declared by the configuration (each bound to a served
        workflow), besides those the workflows declare. `retention`: seconds a settled run
        is kept after it ended, then deleted (0: kept for ever; engine/retention.py).
        `max_active_runs`: runs driven at once, sleeping ones aside (0: no limit); past it,
        runs started or resumed wait for the claim loop (engine/capacity.py).
        `workflow_limits`: workflow id -> its bound, replacing the one its author gave
        (`create_workflow(..., max_active_runs=)`; 0: none); every id must be served. On a
        shared store the servers share each workflow's bound (engine/capacity.py).
        `replica_name`: a name no other live server sharing the database has, kept across
        this server's restarts; entering takes over at once the runs its earlier processes
        left, rather than once their leases end (`Store.take_over`)."""
        self._store = store
        self._versions = ServedVersions(workflows)
        self._workflows: dict[str, Workflow] = self._versions.newest()
        self._cancel_grace = cancel_grace
        self.heartbeat = heartbeat
        self._drivers: dict[str, RunDriver] = {}
        self._tasks: dict[str, asyncio.Task[Run]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        """The loop the runs are driven on, taken at the first drive."""
        self._lock = KeyedLock()
        """Serializes Start, Resume, Cancel and Delete of one run."""
        self._admissions: set[asyncio.Task[Any]] = set()
        """Admissions under way (`_admit`), cancelled at close."""
        self._adoptions: set[asyncio.Task[None]] = set()
        """Adoptions tried again after storage failed (`_adopt`), cancelled when claiming stops."""
        self._followers: set[Subscription] = set()
        self._draining = False
        self._stopping = False
        """Set by `shutdown`: no new Start or Resume."""
        self._closed = False
        self._capacity = Capacity(
            max_active_runs,
            lambda: len(self._tasks),
            self._busy,
            limits=_workflow_bounds(self._workflows, workflow_limits or {}),
            busy_in=self._busy_in,
            shared=not getattr(store, "exclusive", False),
            given_back=lambda: self._keeper.wake(),
        )
        self._keeper = LeaseKeeper(
            store,
            owner=owner or replica_id(replica_name),
            lease_seconds=lease_seconds,
            claim_interval=claim_interval,
            workflows=list(self._workflows),
            definitions=self._versions.definitions(),
            adopt=self._adopt,
            expire=self._expire,
            local=lambda: {run_id: driver.settling for run_id, driver in self._drivers.items()},
            lost=self._lost,
            renewed=self._renewed,
            cancel=self._remote_cancel,
            capacity=self._capacity,
        )
        self.schedules = Scheduler(
            store,
            self._workflows,
            [*(s for w in self._workflows.values() for s in w.schedules), *schedules],
            admit=self._claim_if_room,
            launch=self._launch_claimed,
            left_unowned=self._left_unowned,
            trace_id=new_trace_id,
            poll_interval=claim_interval,
        )
        """Cron schedules (engine/schedules.py): fired by a loop started and stopped with the engine."""
        self._replica_name = replica_name
        self.retention = Retention(store, retention)
        """The retention sweep (engine/retention.py): settled runs, when they are not kept for
        ever, and the marks deletes leave."""

    @property
    def owner(self) -> str:
        """This replica's id in run leases."""
        return self._keeper.owner

    async def __aenter__(self) -> Engine:
        """Claim and re-drive the runs nobody drives (left by a stopped process), then keep
        claiming in the background."""
        if self._replica_name:
            await self._take_over(self._replica_name)
        await self._keeper.claim_due()
        self._keeper.start()
        try:
            await self.schedules.declare()
        except BaseException:  # the engine is not entered: stop what it started
            await self.aclose()
            raise
        self.schedules.start()
        self.retention.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop every run task. Runs in flight stay `running` in storage; the next boot re-drives them."""
        if self._closed:
            return
        self._closed = True
        self.drain()
        await self._stop_retention()
        await self.schedules.aclose()
        await self._keeper.aclose()
        await self._stop_adoptions()
        # An admission cut here leaves its run to the next boot (SQLite) or to another
        # replica once the lease expires, as any drive stopped at close does.
        for admission in list(self._admissions):
            admission.cancel()
        await asyncio.gather(*self._admissions, return_exceptions=True)
        await self._stop_tasks(dict(self._tasks), "engine closing")
        self._drivers.clear()

    async def shutdown(self, grace: float) -> list[str]:
        """Stop gracefully: launch nothing new, give run tasks up to `grace` seconds to settle
        (finish, suspend or wait), then cancel the rest at their last checkpoint and log each
        one. Returns the ids of the runs left; the next boot re-drives them."""
        self._stopping = True  # Start and Resume launch nothing from now on
        await self._stop_retention()
        await self.schedules.aclose()
        await self._keeper.stop_claiming()
        await self._stop_adoptions()
        tasks = dict(self._tasks)
        if tasks and grace > 0:
            logger.info("waiting up to %.1fs for %d running runs to settle", grace, len(tasks))
            await asyncio.wait(tasks.values(), timeout=grace)
        left = {run_id: task for run_id, task in tasks.items() if not task.done()}
        leases = {run_id: driver.lease for run_id, driver in self._drivers.items() if run_id in left}
        stuck = await self._stop_tasks(left, "engine shutting down")
        kept = []
        for run_id in left:
            if run_id not in stuck:  # a stuck body may still write: its lease runs out instead
                await self._release(run_id, leases.get(run_id))
            try:
                run = await self._store.get_run(run_id)
            except StorageUnavailable:  # every run left is still logged, and the engine closes
                run = None
            extra = logs.run_extra(run_id, run.trace_id if run is not None else None)
            if run is not None and run.status.settled and run_id not in stuck:
                # Its body ended on its own as it was cancelled (it caught the cancellation).
                logger.info("run %s ended %s as the engine stopped", run_id, run.status.value, extra=extra)
                continue
            kept.append(run_id)
            status = run.status.value if run is not None else "unknown"
            logger.warning(
                "run %s left %s at its last checkpoint; the next boot re-drives it",
                run_id,
                status,
                extra=extra,
            )
        return kept

    async def _stop_tasks(self, tasks: dict[str, asyncio.Task[Run]], reason: str) -> set[str]:
        """Cancel the run tasks `tasks` and wait up to `UNWIND_WAIT` for them to end; the ids of
        those that did not. A body that catches the cancellation and goes on would otherwise hold
        the stop for as long as it runs (past `--grace`, until an orchestrator's SIGKILL)."""
        for task in tasks.values():
            task.cancel(reason)
        # Waited for once: a stop that gave up on a task does not wait for it again at close,
        # nor does the process at its exit (`ABANDONED`; each wait was 2 s more: an audit).
        waited = [task for task in tasks.values() if task not in ABANDONED]
        pending: set[asyncio.Task[Run]] = set()
        if waited:
            _, pending = await asyncio.wait(waited, timeout=UNWIND_WAIT)
            ABANDONED.update(pending)
            if pending:  # and the tasks of their blocks (a foreach's items), cancelled with them
                ABANDONED.update(t for t in asyncio.all_tasks() if not t.done() and t.cancelling())
        for run_id in (run_id for run_id, task in tasks.items() if task in pending):
            logger.error(
                "run %s did not stop within %.1fs of being cancelled (a step body that catches"
                " asyncio.CancelledError and goes on?); stopping without it",
                run_id,
                UNWIND_WAIT,
                extra=logs.run_extra(run_id, None),
            )
        return {run_id for run_id, task in tasks.items() if not task.done() and task in ABANDONED}

    async def _take_over(self, name: str) -> None:
        taken = await self._store.take_over(name, self.owner)
        if taken is None:
            logger.warning(
                "another session holds the replica name %r: the runs its earlier processes left are"
                " taken over once this server gets the name (the session of a process just killed"
                " ends within moments), or once their leases end; two live servers must not share"
                " a name",
                name,
            )
        elif taken:
            logger.info("taking over %d runs left by an earlier process named %r", taken, name)

    async def _stop_retention(self) -> None:
        await self.retention.aclose()

    async def _stop_adoptions(self) -> None:
        """Try no more adoptions: their runs stay claimed for the next boot."""
        for task in list(self._adoptions):
            task.cancel()
        await asyncio.gather(*self._adoptions, return_exceptions=True)

    def drain(self) -> None:
        """Make every `follow` end with Unavailable (server shutting down)."""
        self._draining = True
        for subscription in list(self._followers):
            subscription.wake()

    def listen_storage(self, listener: Callable[[bool], None]) -> Callable[[], None]:
        """Call `listener(available)` when storage stops answering and when it answers again
        (the server's readiness follows it); `listener` is called at once with how it is now.
        Returns the function that stops it."""
        listener(self._store.hub.available)
        return self._store.hub.listen_availability(listener)

    @property
    def workflows(self) -> dict[str, Workflow]:
        """The newest served version of each workflow (the one new runs start on)."""
        return dict(self._workflows)

    def max_active_runs(self, workflow_id: str) -> int | None:
        """The bound on the workflow's runs driven at once, by the servers sharing the store
        together when it is shared (None: only each server's own bound)."""
        return self._capacity.limits.get(workflow_id)

    def versions(self, workflow_id: str) -> list[Workflow]:
        """Every served version of a workflow, oldest first (the last is the newest), or WorkflowNotFound."""
        self.workflow(workflow_id)
        return self._versions.of(workflow_id)

    def served_definitions(self) -> list[Definition]:
        """Every (id, version, digest) a run may have recorded to be driven here (what
        `not_served` in engine/versions.py compares with)."""
        return self._versions.definitions()

    def definition(self, run: Run) -> Workflow:
        """The served definition a run continues on: the version it recorded, with the same
        step graph. Raises WorkflowVersionUnavailable or WorkflowDefinitionChanged otherwise,
        also when no version of its workflow is served here: the run exists, only its
        definition is missing (not WorkflowNotFound, which tells of a workflow id unknown)."""
        return self._versions.definition(run)

    def workflow(self, workflow_id: str) -> Workflow:
        """The workflow, or WorkflowNotFound."""
        try:
            return self._workflows[workflow_id]
        except KeyError:
            raise WorkflowNotFound(workflow_id) from None

    # -- lifecycle -------------------------------------------------------------------------

    async def create_run(
        self, workflow_id: str, *, run_id: str | None = None, resource_id: str | None = None
    ) -> tuple[Run, bool]:
        """Reserve a run (status pending). Returns (run, created); an existing run is returned as is,
        also of a workflow no longer served here (found, never made: a client's handle on it, to
        read, cancel or delete it, begins with this call)."""
        try:
            self.workflow(workflow_id)
        except WorkflowNotFound:
            existing = await self._store.get_run(run_id) if run_id else None
            if existing is None or existing.workflow_id != workflow_id:
                raise
            _check_resource(existing, resource_id)
            return existing, False
        now = time.time()
        run = Run(
            run_id=run_id or time_ordered_id(),
            workflow_id=workflow_id,
            status=RunStatus.PENDING,
            created_at=now,
            updated_at=now,
            resource_id=resource_id or None,
            **identity(self.workflow(workflow_id)),
        )
        result = await self._store.write(RunWrite(run.run_id, create=run))
        if result.applied:
            return run, True
        existing = await self._load(run.run_id)
        if existing.workflow_id != workflow_id:
            raise RunBelongsToOtherWorkflow(run.run_id, existing.workflow_id)
        _check_resource(existing, run.resource_id)
        return existing, False

    async def start(
        self,
        workflow_id: str,
        *,
        run_id: str | None = None,
        input_data: Json = None,
        initial_state: Json = None,
        request_context: dict[str, Json] | None = None,
        resource_id: str | None = None,
        request_id: str | None = None,
        wait: bool = False,
        trace_id: str | None = None,
        run_timeout: float | None = None,
    ) -> Run:
        """Start a run (created if needed). Without `wait` the run is returned as of its start and its
        `last_sequence` is the sequence of its WORKFLOW_START event; with `wait`, once settled.
        `trace_id` (32 lowercase hex digits, a W3C trace id) is the run's; a new one when None.
        `run_timeout` (seconds) is the caller's: the run's deadline is start time plus the shorter of
        it and the workflow's `timeout` (a caller can shorten the author's limit, never extend it)."""
        self._check_open()
        workflow = self.workflow(workflow_id)
        run_input = _validate(workflow.input_schema, input_data, "input_data", "input data")
        state_sent = {} if initial_state is None else initial_state
        state = _validate(workflow.state_schema, state_sent, "initial_state", "initial state")
        if not isinstance(state, dict):
            raise _invalid("initial_state", "the run state must be a JSON object")
        context = _context(request_context)
        run_deadline(0.0, None, run_timeout)  # a bad timeout is refused before anything is written
        # What a retry must repeat: the request as sent (engine/marks.py says which fields).
        mark = START.mark(request_id, (input_data, state_sent, context, run_timeout)) if request_id else None
        # Without a run id, a request id alone must identify the first outcome: the run id
        # is derived from it, so a retry lands on the same run, even on another replica.
        run_id = run_id or (
            request_run_id(workflow_id, request_id, resource_id) if request_id else time_ordered_id()
        )

        async def admission(caller: Caller) -> _Admission:
            async with self._lock(run_id):
                if mark and await self._repeats(run_id, START, mark):
                    _check_repeat(await self._load(run_id), workflow_id, resource_id)
                    return _Repeat(run_id)
                now = time.time()
                begin = EventDraft.workflow_start(workflow_id, Execution.START)
                fields: dict[str, Any] = dict(
                    status=RunStatus.RUNNING,
                    input=run_input,
                    state=state,
                    request_context=context,
                    started_at=now,
                    trace_id=trace_id or new_trace_id(),
                    deadline=run_deadline(now, workflow.timeout, run_timeout),
                    **identity(workflow),  # the run finishes on the definition it starts on
                )
                fresh = Run(
                    run_id=run_id,
                    workflow_id=workflow_id,
                    created_at=now,
                    updated_at=now,
                    resource_id=resource_id or None,
                    **fields,
                )
                requests = START.rows(mark) if mark else ()
                # Without room the run is committed all the same, with no owner: the claim loop
                # takes it once some replica has room (engine/capacity.py).
                room = self._capacity.reserve(workflow_id)
                try:
                    claim = self._keeper.claim if room else None
                    # With `wait`, the reply comes after the settling commit, which is synced:
                    # the start's own commit need not wait for an fsync.
                    new = fresh
                    # A reservation deleted between a refused create and the start of it (the
                    # retention sweep, another replica's DeleteRun) is created afresh.
                    for _ in range(_START_ATTEMPTS):
                        fresh = new
                        result = await self._take(
                            RunWrite(run_id, create=fresh, events=(begin,), requests=requests, claim=claim),
                            caller,
                            durable=not wait,
                        )
                        if result.applied:
                            break
                        existing = await self._store.get_run(run_id)
                        if existing is None:
                            continue
                        if existing.workflow_id != workflow_id:
                            raise RunBelongsToOtherWorkflow(run_id, existing.workflow_id)
                        # A run id is its resource's: a Start never takes over, or runs its
                        # input in, another resource's run (one created ahead under its id).
                        _check_resource(existing, resource_id)
                        fresh = replace(existing, updated_at=now, **fields)
                        result = await self._take(
                            RunWrite(
                                run_id,
                                expect=frozenset({RunStatus.PENDING}),
                                # The reservation checked above: one deleted and made again under
                                # its id meanwhile (another workflow's, resource's) was taken over
                                # (review); then the loop reads the new one.
                                expect_read=(existing.created_at, existing.last_sequence),
                                patch=fields,
                                events=(begin,),
                                requests=requests,
                                claim=claim,
                            ),
                            caller,
                        )
                        if result.applied:
                            break
                        if result.status is RunStatus.PENDING:
                            continue  # another reservation under its id: checked again
                        if result.status is not None:  # started (or canceled) by another call
                            if mark and await self._repeats(run_id, START, mark):
                                _check_repeat(await self._load(run_id), workflow_id, resource_id)
                                return _Repeat(run_id)
                            raise RunAlreadyStarted(run_id, result.status.value)
                    else:
                        raise Unavailable(f"run {run_id} was deleted each time it was started; retry")
                    if claim is None:
                        self._left_unowned(run_id, fresh.deadline)
                        return _Repeat(run_id)  # answered from the run as the claim loop drives it
                    run = replace(fresh, last_sequence=result.last_sequence)
                    drive = self._driver(workflow, run, self._lease(result.epoch), caller.sent)
                    return run, self._launch(drive)
                finally:
                    self._capacity.release(room, workflow_id)

        return await self._answer(await self._admitted_here(admission), wait)

    async def _repeats(self, run_id: str, form: MarkForm, mark: Mark) -> bool:
        """Whether a request that leaves `mark` repeats one the run recorded; RequestIdReused
        when that one was sent with another field (not a retry of it)."""
        if form.beside is None:
            return form.repeats(
                run_id, mark, await self._store.request_ids(run_id, form.kind, mark.request_id)
            )
        # Recorded with its plain request id beside the mark (marks.py `RESUME`): that row is
        # looked up first, the one lookup of a request sent once (most are).
        if not await self._store.has_request(run_id, form.beside, mark.request_id):
            return False
        # Recorded. An earlier version left no mark beside the id: nothing to compare, a repeat.
        form.repeats(run_id, mark, await self._store.request_ids(run_id, form.kind, mark.request_id))
        return True

    async def resume(
        self,
        run_id: str,
        *,
        workflow_id: str | None = None,
        step: Sequence[str] = (),
        label: str | None = None,
        for_each_index: int | None = None,
        resume_data: Json = None,
        request_context: dict[str, Json] | None = None,
        request_id: str | None = None,
        wait: bool = False,
        born: float | None = None,
    ) -> Run:
        """Resume a suspended step; same return convention as `start`. With `born`, only the
        run created then (see `_load`)."""
        self._check_open()
        context = _context(request_context)
        # What a retry must repeat: the request as sent (engine/marks.py says which fields).
        mark = (
            RESUME.mark(request_id, (resume_data, list(step), label, for_each_index, context))
            if request_id
            else None
        )

        async def admission(caller: Caller) -> _Admission:
            async with self._lock(run_id):
                # Taken once the run's workflow is known; without room the run goes on once
                # the claim loop has some.
                room = Reservation(self._capacity)
                try:
                    delays = iter(CLAIMED_RUN_RETRIES)
                    while (
                        accepted := await self._accept_resume(
                            run_id,
                            workflow_id,
                            step,
                            label,
                            for_each_index,
                            resume_data,
                            context,
                            mark,
                            wait,
                            caller,
                            room,
                            born,
                        )
                    ) is None:
                        # Another drive holds the suspended run (the claim loop took it because a
                        # deadline passed) and is about to end it, wake it or let it go: answer
                        # from what it becomes, not "not suspended (status suspended)".
                        delay = next(delays, None)
                        if delay is None:
                            raise RunClaimed(run_id)
                        await asyncio.sleep(delay)
                    if isinstance(accepted, _Repeat):
                        return accepted  # a retried request's answer, or a run left to the claim loop
                    workflow, run, epoch = accepted
                    drive = self._driver(workflow, run, self._lease(epoch), caller.sent)
                    return replace(run, steps=()), self._launch(drive)
                finally:
                    room.release()

        return await self._answer(await self._admitted_here(admission), wait)

    async def resume_began(self, run_id: str, request_id: str) -> int | None:
        """The sequence of the WORKFLOW_START of the run's resume with `request_id`: where a
        Stream of it begins, for a retry too. None if the run recorded none (a version
        before these records made the resume)."""
        return began_at(await self._store.request_ids(run_id, RESUME_BEGAN, f"{request_id}#"), request_id)

    async def time_travel_began(self, run_id: str, request_id: str) -> int | None:
        """The sequence of the TIME_TRAVEL event of the run's time travel with `request_id`:
        where a Stream of it begins, for a retry too. None if the run recorded none (a version
        before these records made it)."""
        return began_at(
            await self._store.request_ids(run_id, TIME_TRAVEL_BEGAN, f"{request_id}#"), request_id
        )

    async def _accept_resume(
        self,
        run_id: str,
        workflow_id: str | None,
        step: Sequence[str],
        label: str | None,
        for_each_index: int | None,
        resume_data: Json,
        context: dict[str, Json],
        mark: Mark | None,
        wait: bool,
        caller: Caller,
        room: Reservation,
        born: float | None,
    ) -> tuple[Workflow, Run, int] | _Repeat | None:
        """Commit a resume of the run: its definition, the run to drive and the lease epoch;
        a retried request's marker, or the run's when there was no `room` to claim it (the
        claim loop drives it); None while another drive holds the run."""
        run = await self._load(run_id, workflow_id, steps=True, born=born)
        if mark and await self._repeats(run_id, RESUME, mark):
            return _Repeat(run_id, run.created_at)
        if run.status is RunStatus.SUSPENDED and run.deadline is not None and time.time() >= run.deadline:
            # Past its deadline a run never continues: it ends here, not half-way later. As
            # read: a time travel on another replica meanwhile made it a new execution, with
            # no deadline, which this must not fail (a chaos audit); then read it again.
            if not await self._expire_idle(run):
                return None
            raise RunDeadlineExceeded(run_id, iso(run.deadline))
        targets = resolve(run, step, label, for_each_index)
        workflow = self.definition(run)  # after resolve: a finished run is RUN_NOT_SUSPENDED
        now = time.time()
        merged = _merged_context(run.request_context, context)
        records = {s.path: s for s in run.steps}
        accepted: list[Accepted] = []
        for path, index in targets:
            target = find_runnable(workflow, path)
            schema = target.resume_schema if isinstance(target, Step) else None
            _, data = _validate_typed(schema, resume_data, "resume_data", "resume data")
            # The accepted resume is stored on the step, so a crash before or while it runs
            # loses nothing: every later drive resumes that step until its next outcome.
            accepted.append(accept(run_id, records[path], index, data, now))
            records[path] = accepted[-1].record
        # The nested workflows around the steps take the resume too, as in Mastra: once one
        # ends, its record drops its suspension. Its time only: a copy of the resume data on
        # every level would count against no limit and could outgrow a reply (audit).
        around = tuple(
            replace(outer, resumed_at=now)
            for outer in {
                outer.path: outer
                for path, _ in targets
                for outer in (records.get(path[:size]) for size in range(1, len(path)))
                if outer is not None and outer.status is StepStatus.SUSPENDED and not outer.foreach_items
            }.values()
        )
        records.update((outer.path, outer) for outer in around)
        fields = _running_again(request_context=merged)
        claimed = room.take(run.workflow_id)
        result = await self._take(
            RunWrite(
                run_id,
                expect=frozenset({RunStatus.SUSPENDED}),
                # The run as read: another replica's Resume of the same step in between, its run
                # suspended again since, let this one apply too, and the body ran twice (audit);
                # so did a new run under its id (review).
                expect_read=(run.created_at, run.last_sequence),
                patch=fields,
                steps=(*around, *(one.stored for one in accepted)),
                items=tuple((one.record.path, item) for one in accepted for item in one.items),
                events=(EventDraft.workflow_start(run.workflow_id, Execution.RESUME),),
                # The plain request id, which earlier versions look up, and the mark beside it;
                # where its execution begins (as read, the run's next event: `expect_read`).
                requests=(*RESUME.rows(mark), began_row(mark.request_id, run.last_sequence + 1))
                if mark
                else (),
                # Without room, still a claim: a drive that holds the run (the claim loop took
                # it for a deadline) must keep the resume out until it lets go, or its commits
                # would overwrite the step record that carries the accepted resume.
                claim=self._keeper.claim if claimed else self._keeper.passing_claim,
            ),
            caller,
            durable=not wait,  # with `wait` the reply comes after the synced settling commit
        )
        if not result.applied:
            if mark and await self._repeats(run_id, RESUME, mark):
                return _Repeat(run_id, run.created_at)
            if result.status is RunStatus.SUSPENDED:
                # Still suspended: another drive holds it (the claim failed), or it changed since
                # it was read (the next attempt reads it again, and decides on that).
                return None
            if result.status is None:  # deleted since it was read (it said "canceled": audit)
                raise RunNotFound(run_id)
            raise RunNotSuspended(run_id, result.status.value)
        if not claimed:
            self._left_unowned(run_id, run.deadline)
            return _Repeat(run_id, run.created_at)
        run = replace(run, updated_at=now, last_sequence=result.last_sequence, **fields).with_steps(
            records.values()
        )
        return workflow, run, result.epoch

    async def cancel(
        self,
        run_id: str,
        *,
        workflow_id: str | None = None,
        request_id: str | None = None,
        born: float | None = None,
    ) -> Run:
        """Cancel a run and return it once canceled (a finished run is returned unchanged).

        A retry with the same `request_id` changes nothing and returns the run as it is. With
        `born`, only the run created then (see `_load`).
        """

        asked: list[float] = []
        """The `created_at` of the run asked to stop through the store (driven elsewhere)."""

        async def admission() -> Run | asyncio.Task[Run] | None:
            async with self._lock(run_id):
                delays = iter(CLAIMED_RUN_RETRIES)
                while True:
                    if request_id and await self._store.has_request(run_id, "cancel", request_id):
                        return await self._load(run_id, workflow_id, steps=True, born=born)
                    task = self._tasks.get(run_id)
                    driver = self._drivers.get(run_id)
                    if task is not None and driver is not None:
                        # The workflow_id given must match.
                        current = await self._load(run_id, workflow_id, born=born)
                        # Stored before it is acknowledged: a drive that cannot settle (its commits
                        # refused past its lease) leaves the run to a claim loop, whose drive must
                        # stop it too. Refused, the Cancel is UNAVAILABLE: the caller retries.
                        marked = await self._store.write(
                            RunWrite(
                                run_id,
                                expect=_ACTIVE,
                                expect_read=(current.created_at, None),
                                patch={"cancel_requested": True},
                            )
                        )
                        if marked.applied or marked.status is not RunStatus.SUSPENDED:
                            driver.cancel(request_id)
                            return task
                        # Its drive settled it suspended just now: take it as one nobody drives.
                    run = await self._load(run_id, workflow_id, steps=True, born=born)
                    if run.status.terminal:
                        return run
                    # Nobody drives it here. A Start, a Resume, the claim loop and a Cancel each
                    # take a run before they change it, so one of them goes on, and the Cancel
                    # stops the run as stored once taken, not as read before (audit: a run the
                    # claim loop woke between the read and the write was overwritten, and its
                    # drive went on under a canceled run).
                    taken = await self._take_and_cancel(run_id, request_id, run.created_at)
                    if taken.applied or taken.status is None or taken.status.terminal:
                        continue  # canceled, or it ended or went meanwhile: answered from the store
                    if taken.status in _ACTIVE and run_id not in self._drivers:
                        # Driven elsewhere: ask its owner (its heartbeat reads the mark), or the
                        # claim loop's drive of it once its owner's lease has ended.
                        # The request id is kept by the commit that cancels the run, not by
                        # this ask: a retry must not answer a run that settled suspended.
                        # The run as read only: one deleted and made anew under its id meanwhile
                        # was canceled in its place (an audit).
                        await self._store.write(
                            RunWrite(
                                run_id,
                                expect=_ACTIVE,
                                expect_read=(run.created_at, None),
                                patch={"cancel_requested": True},
                            )
                        )
                        asked.append(run.created_at)
                        return None
                    # Held but not driven yet (the claim loop took it for a deadline, or its
                    # drive starts here): look again once its holder has moved it on.
                    delay = next(delays, None)
                    if delay is None:
                        raise RunClaimed(run_id)
                    await asyncio.sleep(delay)

        # The claim of a run nobody drives and its cancel are one admission: cut in between,
        # the run would stay this replica's, active and driven by nobody.
        admitted = await self._admit(admission())
        if isinstance(admitted, Run):
            return admitted
        task = admitted
        if task is not None:
            await asyncio.wait((asyncio.shield(task),), timeout=self._cancel_grace * 2)
        else:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._cancel_grace * 2 + self._keeper.lease_seconds):
                    await self._until_settled(run_id, request_id, asked[-1])
        return await self.get_run(run_id)

    async def _until_settled(self, run_id: str, request_id: str | None, born: float) -> None:
        """Wait (polling the store) until a run driven elsewhere, and asked to stop through
        the store, is over.

        It may settle suspended before its owner read the ask (the settling commit clears
        it): it is canceled here then (review: the Cancel answered a suspended run, and
        nothing canceled it later). So is a run whose owner's lease ends meanwhile and that
        nobody takes over (its owner died and no live server serves the run's workflow
        version), and one whose drive begins here meanwhile (the claim loop took it) is
        stopped here. Of the run created at `born` only: another made under its id since is not
        the one asked to stop (an audit)."""
        polls = 0
        while True:
            run = await self._store.get_run(run_id)
            if run is None or run.status.terminal or run.created_at != born:
                return
            driver, task = self._drivers.get(run_id), self._tasks.get(run_id)
            if driver is not None and task is not None:
                driver.cancel(request_id)
                await asyncio.wait((asyncio.shield(task),), timeout=self._cancel_grace * 2)
                return
            polls += 1
            if run.status not in _ACTIVE or polls % 10 == 0:
                taken = await self._admit(self._take_and_cancel(run_id, request_id, born))
                if taken.applied:
                    return  # nobody drove it: canceled here
            await asyncio.sleep(0.05)

    async def _take_and_cancel(self, run_id: str, request_id: str | None, born: float) -> WriteResult:
        """Claim a run that is not over if no live owner holds it, then cancel it as stored once
        claimed. Not applied when it is held, over or gone, or was taken between the claim and
        the cancel; then the result's status is the run's.

        The claim's lease has ended by the time anyone reads it (`passing_claim`): a Resume or
        the claim loop may take the run at once (the cancel, fenced by the claim, is then not
        applied), and a cancel that fails leaves nothing held. Of the run created at `born`
        only: another made under its id since is not the one asked to stop."""
        # Not synced: nobody is told of the claim, and the cancel's own commit covers it.
        claim = RunWrite(run_id, expect=_OPEN, expect_read=(born, None), claim=self._keeper.passing_claim)
        claimed = await self._store.write(claim, durable=False)
        if not claimed.applied:
            return claimed
        return await self._cancel_idle(
            await self._load(run_id, steps=True, born=born), request_id, self._lease(claimed.epoch)
        )

    async def _cancel_idle(self, run: Run, request_id: str | None, lease: Lease) -> WriteResult:
        """Cancel a run no task is executing (pending, suspended, or active with no live owner),
        as read once this engine claimed it (`lease`); the write's result."""
        run_id = run.run_id
        now = time.time()
        stopped = [stopped_record(s, now) for s in run.steps if s.status in _UNFINISHED_STEPS]
        return await self._store.write(
            RunWrite(
                run_id,
                expect=_OPEN,
                patch=dict(
                    status=RunStatus.CANCELED,
                    ended_at=now,
                    suspended=(),
                    resume_labels={},
                    wake_at=None,
                    **travel_ended(run.travel),
                ),
                steps=stopped,
                events=(
                    # Each step stopped in the log too: a Watch's workflow state follows the log.
                    *(EventDraft(EventType.STEP_RESULT, RunStatus.CANCELED, step=s) for s in stopped),
                    EventDraft(EventType.WORKFLOW_CANCELED, RunStatus.CANCELED),
                    EventDraft(EventType.WORKFLOW_FINISH, RunStatus.CANCELED),
                ),
                requests=(("cancel", request_id),) if request_id else (),
                fence=lease,
                release=True,
            )
        )

    async def _expire_idle(self, run: Run, lease: Lease | None = None) -> bool:
        """End a run nobody drives that is past its deadline (suspended, or active with no owner:
        waiting for room, or its owner gone): failed with RunTimeoutError, its steps still under
        way canceled, as its drive would end it (`RunDriver.drive`), and no body runs. `lease`
        is the claim the claim loop took on it. False if it is no longer the run as read
        (resumed, time-travelled or ended meanwhile): its records are from it."""
        assert run.deadline is not None
        result = await self._store.write(
            _ended_failed(
                run.run_id,
                deadline_error(run.deadline),
                run.steps,
                expect=frozenset({run.status}),
                expect_read=(run.created_at, run.last_sequence),
                travel=travel_ended(run.travel),
                fence=lease,
            )
        )
        if result.applied:
            logger.warning(
                "run %s: passed its deadline while %s; ended",
                run.run_id,
                "suspended" if run.status is RunStatus.SUSPENDED else "nobody drove it",
                extra=logs.run_extra(run.run_id, run.trace_id),
            )
        return result.applied

    async def _wake_suspended(self, run: Run, lease: Lease) -> Run:
        """Set a suspended run running again (under the claim loop's `lease`) because the
        deadline of a nested workflow suspended in it passed: the walk then fails that
        workflow with its timeout and the parent goes on from there, as if it had passed
        while the workflow ran. Returned unchanged if it is no longer suspended (a resume
        or a cancel committed first: one commit wins)."""
        fields = _running_again()
        result = await self._store.write(
            RunWrite(
                run.run_id,
                expect=frozenset({RunStatus.SUSPENDED}),
                patch=fields,
                events=(EventDraft.workflow_start(run.workflow_id, Execution.DEADLINE),),
                fence=lease,
            )
        )
        if not result.applied:
            return run
        logger.info(
            "run %s: a nested workflow suspended in it passed its deadline; driving it",
            run.run_id,
            extra=logs.run_extra(run.run_id, run.trace_id),
        )
        return replace(run, updated_at=time.time(), last_sequence=result.last_sequence, **fields)

    async def restart(
        self,
        run_id: str,
        *,
        workflow_id: str | None = None,
        request_id: str | None = None,
        wait: bool = False,
        born: float | None = None,
    ) -> Run:
        """Re-drive an active (`running` or `waiting`) run from its last checkpoint.

        A run this process is already driving is left alone (and waited for with `wait`);
        a suspended or finished run is RunNotActive. A retry with the same `request_id`
        re-drives nothing and returns the run as it is, settled or not.
        """
        self._check_open()
        requests = (("restart", request_id),) if request_id else ()

        async def admission() -> _Admission:
            async with self._lock(run_id):
                run = await self._load(run_id, workflow_id, steps=True, born=born)
                if request_id and await self._store.has_request(run_id, "restart", request_id):
                    return _Repeat(run_id, run.created_at)
                if run.status not in _ACTIVE:
                    raise RunNotActive(run_id, run.status.value)
                task = self._tasks.get(run_id)
                if task is not None:
                    await self._remember(run_id, requests)
                    return replace(run, steps=()), task
                # Before room is looked for: without it the run is left to the claim loop, which
                # never takes a run of a definition not served here, and the Restart would pass.
                workflow = self.definition(run)
                with self._claim_if_room(run.workflow_id) as claim:
                    # Answered as the claim loop drives it (with `wait`, once it settles, as a held
                    # back TimeTravel is: it answered at once with the run not yet begun, an audit).
                    if claim is None:  # bounds hold for a Restart too: the claim loop takes it with room
                        await self._remember(run_id, requests)
                        return _Repeat(run_id, run.created_at)
                    sent = time.monotonic()
                    claimed = await self._store.write(
                        RunWrite(run_id, expect=_ACTIVE, claim=claim, requests=requests)
                    )
                    if not claimed.applied:  # another replica drives it: followed as it goes
                        await self._remember(run_id, requests)
                        return _Repeat(run_id, run.created_at)
                    run = await self._load(run_id, steps=True, born=born)
                    logger.info(
                        "run %s: restarted from its last checkpoint (was %s)",
                        run_id,
                        run.status,
                        extra=logs.run_extra(run_id, run.trace_id),
                    )
                    task = self._launch(self._driver(workflow, run, self._lease(claimed.epoch), sent))
                    return replace(run, steps=()), task

        return await self._answer(await self._admit(admission()), wait)

    async def _remember(self, run_id: str, requests: tuple[tuple[str, str], ...]) -> None:
        """Record a request that changed nothing while the run is active (a Restart of a run
        already driven), so that its retry, once the run has settled, is still a retry."""
        if requests:
            await self._store.write(RunWrite(run_id, expect=_ACTIVE, requests=requests))

    async def time_travel(
        self,
        run_id: str,
        *,
        workflow_id: str | None = None,
        step: Sequence[str] = (),
        input_data: Json = RECORDED_INPUT,
        initial_state: Json = None,
        request_context: dict[str, Json] | None = None,
        request_id: str | None = None,
        wait: bool = False,
        born: float | None = None,
        resume_data: Json = None,
    ) -> Run:
        """Run a settled run again from `step` with `input_data` (Mastra's timeTravel; see
        `engine/timetravel.py`). Same return convention as `start`. `initial_state`
        replaces the run state when given; `request_context` entries are merged in. With
        `resume_data` the step runs as resumed with it."""
        self._check_open()
        context = _context(request_context)
        # What a retry must repeat: the request as sent (engine/marks.py says which fields).
        sent_input = () if input_data is RECORDED_INPUT else (input_data,)
        mark = (
            TIME_TRAVEL.mark(request_id, (list(step), sent_input, initial_state, context, resume_data))
            if request_id
            else None
        )

        async def admission() -> _Admission:
            async with self._lock(run_id):
                # Again from the run as read while it changes between the read and the write
                # (another replica's Resume or time travel): the plan is made from the records.
                # Or while another drive holds it (the claim failed): as a Resume waits.
                for delay in (0.0, *CLAIMED_RUN_RETRIES):
                    await asyncio.sleep(delay)
                    travelled = await travel_once()
                    if travelled is not None:
                        return travelled
                raise RunClaimed(run_id)

        async def travel_once() -> _Admission | None:
            run = await self._load(run_id, workflow_id, steps=True, born=born)
            if mark and await self._repeats(run_id, TIME_TRAVEL, mark):
                return _Repeat(run_id, run.created_at)
            workflow = self.definition(run)  # its recorded version, with the same step graph
            check_time_travel(run, workflow)
            target = plan(run, workflow, step, input_data, resume_data)
            previous = run.travel
            travel = Travel(
                target.path,
                target.input,
                count=(previous.count if previous else 0) + 1,
                fork_step=previous.fork_step if previous else (),
                resume_data=target.resume_data,
                suspend_payload=target.suspend_payload,
                suspended_at=target.suspended_at,
            )
            # The plain request id, which earlier versions look up, and the mark beside it;
            # where its execution begins (as read, the run's next event: `expect_read`), for a
            # Stream of it, retried too.
            requests = (
                (
                    *TIME_TRAVEL.rows(mark),
                    began_row(mark.request_id, run.last_sequence + 1, TIME_TRAVEL_BEGAN),
                )
                if mark
                else ()
            )
            fields: dict[str, Any] = dict(
                status=RunStatus.RUNNING,
                result=None,
                error=None,
                ended_at=None,
                suspended=(),
                resume_labels={},
                wake_at=None,
                cancel_requested=False,
                state=_travel_state(workflow, run, initial_state),
                request_context=_merged_context(run.request_context, context),
                travel=travel,
                # A new execution: the workflow's timeout counts again from now (a timed-out
                # run's old deadline would end it at once).
                deadline=run_deadline(time.time(), workflow.timeout, None),
            )
            events = (
                travel_event(target, run, fork=False),
                EventDraft.workflow_start(run.workflow_id, Execution.TIME_TRAVEL),
            )
            # Conditional on the settled status: of two concurrent time travels (on any
            # replicas) one applies, the other finds the run running and is refused.
            sent = time.monotonic()
            # Without room the run is committed all the same, with no owner, as a Start is.
            with self._claim_if_room(run.workflow_id) as claim:
                result = await self._store.write(
                    RunWrite(
                        run_id,
                        expect=frozenset({run.status}),
                        # The run as planned from: a run another replica resumed, and that
                        # suspended again, in between kept records the plan did not know of
                        # and lost an accepted resume (audit).
                        expect_read=(run.created_at, run.last_sequence),
                        patch=fields,
                        drop_steps=[s.path for s in target.replaced],
                        events=events,
                        requests=requests,
                        # Without room, a passing claim (as a Resume's): the epoch moves on,
                        # so a Cancel's fenced write based on what was there before fails.
                        claim=claim or self._keeper.passing_claim,
                    )
                )
                if not result.applied:
                    if mark and await self._repeats(run_id, TIME_TRAVEL, mark):
                        return _Repeat(run_id, run.created_at)
                    if result.status is run.status:
                        return None  # changed since it was read, or held: planned again
                    if result.status is None:  # deleted meanwhile (it said "still running": review)
                        raise RunNotFound(run_id)
                    raise refusal(run_id, result.status)
                logger.info(
                    "run %s: time travel to %s",
                    run_id,
                    ".".join(target.path),
                    extra=logs.run_extra(run_id, run.trace_id),
                )
                if claim is None:
                    self._left_unowned(run_id, fields["deadline"])
                    return _Repeat(run_id, run.created_at)  # answered as the claim loop drives it
                run = replace(run, updated_at=time.time(), last_sequence=result.last_sequence, **fields)
                run = run.with_steps(target.kept)
                task = self._launch(self._driver(workflow, run, self._lease(result.epoch), sent))
                return replace(run, steps=()), task

        return await self._answer(await self._admit(admission()), wait)

    async def fork(
        self,
        run_id: str,
        *,
        workflow_id: str | None = None,
        new_run_id: str | None = None,
        step: Sequence[str] = (),
        input_data: Json = RECORDED_INPUT,
        initial_state: Json = None,
        request_context: dict[str, Json] | None = None,
        request_id: str | None = None,
        wait: bool = False,
        trace_id: str | None = None,
        born: float | None = None,
        resume_data: Json = None,
    ) -> Run:
        """Time travel into a new run (DBOS's fork): `run_id` is left as it is; the new run
        (`new_run_id`, else derived from `request_id`, else random) copies its input, state,
        request context and the records before `step`, and names it in `forked_from`. With
        `resume_data` the step runs as resumed with it, as in `time_travel`."""
        self._check_open()
        context = _context(request_context)
        source = await self._load(run_id, workflow_id, steps=True, born=born)
        fork_id = new_run_id or (fork_run_id(run_id, request_id) if request_id else time_ordered_id())
        # What a retry must repeat: the request as sent (engine/marks.py says which fields).
        sent_input = () if input_data is RECORDED_INPUT else (input_data,)
        mark = (
            FORK.mark(request_id, (run_id, list(step), sent_input, initial_state, context, resume_data))
            if request_id
            else None
        )

        async def admission() -> _Admission:
            async with self._lock(fork_id):
                if mark and await self._repeats(fork_id, FORK, mark):
                    return _Repeat(fork_id)
                workflow = self.definition(source)  # the fork keeps records made by this definition
                check_time_travel(source, workflow)
                target = plan(source, workflow, step, input_data, resume_data)
                now = time.time()
                fresh = Run(
                    run_id=fork_id,
                    workflow_id=source.workflow_id,
                    status=RunStatus.RUNNING,
                    created_at=now,
                    updated_at=now,
                    resource_id=source.resource_id,
                    input=source.input,
                    state=_travel_state(workflow, source, initial_state),
                    request_context=_merged_context(source.request_context, context),
                    started_at=now,
                    trace_id=trace_id or new_trace_id(),
                    forked_from=source.run_id,
                    travel=Travel(
                        target.path,
                        target.input,
                        fork_step=target.path,
                        resume_data=target.resume_data,
                        suspend_payload=target.suspend_payload,
                        suspended_at=target.suspended_at,
                    ),
                    **identity(workflow),
                    deadline=run_deadline(now, workflow.timeout, None),
                )
                events = (
                    travel_event(target, source, fork=True),
                    # The records the fork starts from, in its own log: a Watch's workflow state
                    # and a follower of the fork know them as GetRun does (audit). Without the
                    # items of a foreach, as the foreach's own result event has none.
                    *(
                        EventDraft(
                            EventType.STEP_SUSPENDED
                            if kept.status is StepStatus.SUSPENDED
                            else EventType.STEP_RESULT,
                            RunStatus.RUNNING,
                            step=replace(kept, foreach_items=(), items_inline=False),
                        )
                        for kept in target.kept
                    ),
                    EventDraft.workflow_start(source.workflow_id, Execution.FORK),
                )
                sent = time.monotonic()
                # Without room the run is committed all the same, with no owner, as a Start is.
                with self._claim_if_room(source.workflow_id) as claim:
                    result = await self._store.write(
                        RunWrite(
                            fork_id,
                            create=fresh,
                            steps=target.kept,
                            events=events,
                            requests=FORK.rows(mark) if mark else (),
                            claim=claim,
                        )
                    )
                    if not result.applied:
                        if mark and await self._repeats(fork_id, FORK, mark):
                            return _Repeat(fork_id)
                        # A run created and not started holds the id: not "already started".
                        if result.status is RunStatus.PENDING and (
                            taken := await self._store.get_run(fork_id)
                        ):
                            raise RunBelongsToOtherWorkflow(fork_id, taken.workflow_id)
                        raise RunAlreadyStarted(fork_id, (result.status or RunStatus.PENDING).value)
                    logger.info(
                        "run %s: forked from run %s at %s",
                        fork_id,
                        run_id,
                        ".".join(target.path),
                        extra=logs.run_extra(fork_id, fresh.trace_id),
                    )
                    if claim is None:
                        self._left_unowned(fork_id, fresh.deadline)
                        return _Repeat(fork_id)  # answered from the run as the claim loop drives it
                    run = replace(fresh, last_sequence=result.last_sequence).with_steps(target.kept)
                    task = self._launch(self._driver(workflow, run, self._lease(result.epoch), sent))
                    return replace(run, steps=()), task

        return await self._answer(await self._admit(admission()), wait)

    # -- reads ---------------------------------------------------------------------------------

    async def get_run(self, run_id: str, *, workflow_id: str | None = None) -> Run:
        """The run with its step records, or RunNotFound."""
        run = await self._load(run_id, workflow_id, steps=True)
        return (await self._with_origins([run]))[0]

    async def list_runs(
        self,
        *,
        workflow_id: str | None = None,
        statuses: Iterable[RunStatus] = (),
        resource_id: str | None = None,
        from_time: float | None = None,
        to_time: float | None = None,
        page_size: int = 0,
        page_token: str = "",
        payloads: bool = True,
        forked_from: str | None = None,
        definition_version: str | None = None,
        resource_ids: Collection[str] | None = None,
    ) -> tuple[list[Run], str]:
        """Runs newest first and the next page token ("" on the last page).

        `payloads=False` leaves input, result, state and request context out (summaries).
        `resource_ids`: only runs of these resources (a token bound to several: the page,
        and the run its token points after, are that caller's).
        A page token only continues the listing of the filters it was issued for.
        `workflow_id` is a filter like the others, not checked against the served workflows:
        the runs of a workflow retired from every server are still stored (listing them is how
        one finds those a retirement strands); an id never seen lists nothing."""
        if not workflow_id and definition_version:
            raise _invalid("definition_version", "filtering by version needs a workflow_id")
        if page_size < 0:
            raise _invalid("page_size", "must not be negative")
        limit = min(page_size or 50, _MAX_PAGE)
        query = RunQuery(
            workflow_id=workflow_id or None,
            statuses=frozenset(statuses),
            resource_id=resource_id or None,
            from_time=from_time,
            to_time=to_time,
            limit=limit + 1,
            payloads=payloads,
            forked_from=forked_from or None,
            definition_version=definition_version or None,
            resource_ids=frozenset(resource_ids) if resource_ids is not None else None,
        )
        if page_token:
            query = replace(query, after=paging.decode_token(page_token, query))
        runs = await self._with_origins(await self._store.list_runs(query))
        if len(runs) <= limit:
            return runs, ""
        last = runs[limit - 1]
        return runs[:limit], paging.encode_token(query, last.created_at, last.run_id)

    async def delete_run(
        self,
        run_id: str,
        *,
        workflow_id: str | None = None,
        request_id: str | None = None,
        born: float | None = None,
    ) -> None:
        """Delete a run that is not running or waiting (RunActive otherwise).

        A retry with the same `request_id` succeeds once the run is gone, and never deletes
        a run made later under the same id (for a day: the retention sweep then forgets it).
        """
        async with self._lock(run_id):
            if request_id and await self.deleted(run_id, request_id):
                return
            for _ in range(3):  # `born`: the run created then only (see `_load`), once read
                born = await self._delete_once(run_id, workflow_id, request_id, born)
                if born is None:
                    return
            raise Unavailable(f"run {run_id} changed each time it was deleted; retry")

    async def _delete_once(
        self, run_id: str, workflow_id: str | None, request_id: str | None, born: float | None
    ) -> float | None:
        """Delete the run as read: None once done; its `created_at` when it changed in between
        (read it again: `born`, and if it is another run by then, the one asked for is gone)."""
        expect: frozenset[RunStatus] | None = _DELETABLE
        try:
            run: Run | None = await self._load(run_id, workflow_id)
        except RunUnreadable as exc:
            # It can still go, as long as it is not active: the write checks its status
            # column, which the store reads without decoding the rest. A status this code
            # does not know is no server's to drive: such a run goes whatever it says.
            run = None
            if exc.metadata.get("part") == "status":
                expect = None
        if run is not None and born is not None and run.created_at != born:
            raise RunNotFound(run_id)  # deleted, and another made under its id, meanwhile
        if run is not None and run.status in _ACTIVE:
            raise RunActive(run_id, run.status.value)
        result = await self._store.write(
            RunWrite(
                run_id,
                expect=expect,
                # The run read (and its workflow checked): one deleted and made anew under its id
                # meanwhile, by another replica, was deleted in its place (review).
                expect_read=None if run is None else (run.created_at, run.last_sequence),
                delete=True,
                requests=(("delete", request_id),) if request_id else (),
            )
        )
        if result.applied:
            return None
        if result.status is None:  # another delete took it first (it said "running": audit)
            raise RunNotFound(run_id)
        if result.status in _ACTIVE or run is None:
            raise RunActive(run_id, result.status.value)
        return run.created_at

    async def deleted(self, run_id: str, request_id: str) -> bool:
        """True if a delete with this `request_id` removed the run."""
        return await self._store.has_request(run_id, "delete", request_id)

    def follow(
        self,
        run_id: str,
        *,
        after: int = 0,
        until_settled: bool = False,
        heartbeat: float | None = None,
        coalesce: bool = False,
        born: float | None = None,
    ) -> AsyncIterator[list[Event]]:
        """Events with sequence > `after`: first the stored ones, then live ones, each exactly once.

        Yields non-empty lists of contiguous events, and [] as a heartbeat after `heartbeat`
        idle seconds. Ends after the finish event of a terminal run (or, with
        `until_settled`, after any finish event, suspended included). Raises RunNotFound
        for an unknown run, and for a run deleted while followed (never going on into a
        new run made under the same id), InvalidArgument for a cursor past the run's end, and
        Unavailable when the engine drains. With `coalesce`, live events of a run many follow
        come in fewer, larger batches (`follow.coalescing_pause`). With `born` (the run's
        `created_at`, from `check_follow`), a run made anew under its id since is not found.
        """
        return self._follow(run_id, after, until_settled, heartbeat, coalesce, born)

    async def check_follow(
        self, run_id: str, after: int, *, steps: bool = False, born: float | None = None
    ) -> Run:
        """The run a `follow` from `after` would follow, with its step records if `steps`, or the
        error that follow would end with at once (Unavailable, RunNotFound, InvalidArgument):
        a caller that sends something before the events (the run) asks first, so a refusal
        comes before anything it sent (audit)."""
        if self._draining:
            raise drained()
        run = await self._load(run_id, steps=steps, born=born)
        if steps:  # as `get_run` gives it
            run = (await self._with_origins([run]))[0]
        check_cursor(run, after)
        return run

    async def _follow(
        self,
        run_id: str,
        after: int,
        until_settled: bool,
        heartbeat: float | None,
        coalesce: bool,
        born: float | None,
    ) -> AsyncIterator[list[Event]]:
        if self._draining:
            raise drained()
        registered: list[Subscription] = []

        def register(subscription: Subscription) -> None:
            registered.append(subscription)
            self._followers.add(subscription)

        try:
            async for batch in follow_events(
                self._store,
                run_id,
                after=after,
                until_settled=until_settled,
                heartbeat=heartbeat,
                coalesce=coalesce,
                draining=lambda: self._draining,
                register=register,
                born=born,
            ):
                yield batch
        finally:
            for subscription in registered:
                self._followers.discard(subscription)

    async def workflow_state_at(self, run_id: str, sequence: int) -> WorkflowState:
        """The run's workflow state as of event `sequence` (folding events 1..sequence)."""
        await self._load(run_id)
        state = WorkflowState(status=RunStatus.PENDING)
        cursor = 0
        while cursor < sequence:
            events = await self._store.read_events(run_id, cursor, min(1000, sequence - cursor))
            if not events:
                break
            for event in events:
                state = state.apply(event)
            cursor = events[-1].sequence
        return state

    # -- internals -------------------------------------------------------------------------

    async def _adopt(self, run_id: str, lease: Lease, sent: float, overdue: bool = False) -> None:
        """Drive a run the claim loop took (nobody drove it: its process stopped, or this
        one's heartbeat came too late and its own drive lost the lease); `overdue`: it was
        taken as past its deadline, whatever the room, and is ended, not driven (`_expire`)."""
        if await self._adopted(run_id, lease, sent, overdue) or not self._keeper.exclusive:
            return  # elsewhere a run not adopted for storage's sake is claimed once its lease ends
        # On an exclusive store (SQLite) the claim's lease never ends, so nothing else would
        # take the run before the next boot: the adoption is tried again here.
        task = asyncio.create_task(
            self._adopt_again(run_id, lease, sent, overdue), name=f"run {run_id} adoption"
        )
        self._adoptions.add(task)
        task.add_done_callback(self._adoptions.discard)

    async def _expire(self, run_id: str, lease: Lease) -> None:
        """End a run the claim loop took as past its deadline (`LeaseKeeper.end_overdue`): it
        takes no room, as nothing of it runs."""
        await self._adopt(run_id, lease, time.monotonic(), overdue=True)

    async def _adopt_again(self, run_id: str, lease: Lease, sent: float, overdue: bool) -> None:
        """Try `_adopted` until storage lets it, waiting as a drive does through an outage."""
        outage = _Outage()
        while True:
            await outage.wait()
            if await self._adopted(run_id, lease, sent, overdue):
                return

    async def _adopted(self, run_id: str, lease: Lease, sent: float, overdue: bool) -> bool:
        """`_adopt` once; False when storage failed for a while (the run is left claimed, not
        driven), so trying again may succeed."""
        stale = self._tasks.get(run_id)
        if stale is not None:  # its commits are fenced now: stop it rather than let it run on
            stale.cancel("lease lost")
        try:
            run = await self._load(run_id, steps=True)
            if overdue:
                # Past its deadline by the database's clock, which took it: ended here, whatever
                # this server's clock says, for a drive would run a body without room.
                if run.deadline is None or not await self._expire_idle(run, lease):
                    await self._release(run_id, lease)
                return True
            if run.status is RunStatus.SUSPENDED:  # claimed because a deadline passed
                if run.wake_at is not None and (run.deadline is None or run.wake_at < run.deadline):
                    run = await self._wake_suspended(run, lease)  # a nested workflow's deadline
                    if run.status is not RunStatus.RUNNING:
                        await self._release(run_id, lease)
                        return True
                else:
                    if not await self._expire_idle(run, lease):
                        await self._release(run_id, lease)
                    return True
            workflow = self.definition(run)
            if not run.steps:
                # Most often a run that waited for room (`max_active_runs`), not a crash's
                # recovery: nothing of it is recorded as run, and it starts over.
                logger.info(
                    "run %s: starting from its beginning (was %s)",
                    run_id,
                    run.status,
                    extra=logs.run_extra(run_id, run.trace_id),
                )
            else:
                logger.info(
                    "run %s: re-driving from its last checkpoint (was %s)",
                    run_id,
                    run.status,
                    extra=logs.run_extra(run_id, run.trace_id),
                )
            self._launch(self._driver(workflow, run, lease, sent))
        except (WorkflowVersionUnavailable, WorkflowDefinitionChanged) as exc:
            # Not this server's to drive (the claim normally skips it): leave it as it is,
            # unowned, for a server that serves its definition; never fail it.
            logger.warning("run %s: not re-driven: %s", run_id, exc.message, extra=logs.run_extra(run_id))
            await self._release(run_id, lease)
        except StorageFailed as exc:  # nothing more is stored: the restart re-drives it
            logger.warning(
                "run %s: not re-driven, the store failed (%s)",
                run_id,
                exc.detail,
                extra=logs.run_extra(run_id),
            )
        except StorageUnavailable as exc:
            logger.warning(
                "run %s: not re-driven now, storage failed (%s)",
                run_id,
                exc.detail,
                extra=logs.run_extra(run_id),
            )
            return False
        except RunUnreadable as exc:  # its data, not the code: a traceback would say nothing
            logger.error("run %s: cannot be recovered: %s", run_id, exc.message, extra=logs.run_extra(run_id))
            await self._fail(run_id, f"the run could not be recovered: {exc.message}", lease)
        except Exception:
            logger.exception("run %s: cannot be recovered", run_id)
            await self._fail(run_id, "the run could not be recovered; see the server log", lease)
        return True

    async def _release(self, run_id: str, lease: Lease | None) -> None:
        """Give up a run left at its checkpoint, so another server claims it at once."""
        if lease is None:
            return
        try:
            await self._store.write(RunWrite(run_id, fence=lease, release=True))
        except Exception:
            log_failure(
                logger, "run %s: could not release its lease; it is claimed when the lease ends", run_id
            )

    async def _with_origins(self, runs: list[Run]) -> list[Run]:
        """`runs` with the schedule and tick of those a schedule started."""
        origins = await self._store.schedule_origins([run.run_id for run in runs])
        if not origins:
            return runs
        return [
            replace(run, schedule_id=origins[run.run_id][0], schedule_tick=origins[run.run_id][1])
            if run.run_id in origins
            else run
            for run in runs
        ]

    def _busy(self) -> int:
        """The runs driven here that are not sleeping (engine/capacity.py)."""
        waiting = RunStatus.WAITING
        return len([driver for driver in self._drivers.values() if driver.status is not waiting])

    def _busy_in(self, workflow_id: str) -> int:
        """The runs of `workflow_id` driven here that are not sleeping (engine/capacity.py)."""
        waiting = RunStatus.WAITING
        return len(
            [
                driver
                for driver in self._drivers.values()
                if driver.status is not waiting and driver.run.workflow_id == workflow_id
            ]
        )

    def _left_unowned(self, run_id: str, deadline: float | None) -> None:
        """An execution of the run was committed with no owner: a claim loop drives it, this
        replica's (woken: it may have room, runs waited and this one joined them; and woken
        again at its `deadline`, to end it should it wait for room still) or another's. What
        this process keeps of the run until its finish goes now: that drive is followed as any
        claimed run is, and another replica's finish is never seen here.
        Unless the claim loop here took it already, while the commit was being synced (review):
        its drive is under way, and its span with it."""
        if run_id not in self._tasks:
            self._store.hub.released(run_id, unowned=True)
        self._keeper.wake()
        self._keeper.wake_by(run_id, deadline)

    @contextlib.contextmanager
    def _claim_if_room(self, workflow_id: str) -> Iterator[Claim | None]:
        """Room for a run of `workflow_id` about to be taken (a schedule's tick, a TimeTravel, a
        ForkRun, a Restart), held until its drive launched, and its claim; None when the engine
        or the workflow is full or runs wait for room (they go first, as for Start): the run is
        committed with no owner and the claim loop, woken, drives it once there is room."""
        room = self._capacity.reserve(workflow_id)
        try:
            yield self._keeper.claim if room else None
        finally:
            self._capacity.release(room, workflow_id)
            if not room:
                self._keeper.wake()

    def _launch_claimed(self, run: Run, epoch: int, sent: float) -> asyncio.Task[Run]:
        """Drive a run this replica created already claimed (a schedule's tick), the claim
        sent at `sent` (`time.monotonic()`)."""
        return self._launch(self._driver(self.definition(run), run, self._lease(epoch), sent))

    def _driver(self, workflow: Workflow, run: Run, lease: Lease, lease_at: float) -> RunDriver:
        """A drive of `run` under `lease`, whose claim was sent at `lease_at` (monotonic)."""
        if self._loop is None:  # held: on Python 3.11 get_running_loop() is a getpid() syscall
            self._loop = asyncio.get_running_loop()
        return RunDriver(
            self._store, workflow, run, lease, loop=self._loop, leases=self._keeper, lease_at=lease_at
        )

    def _renewed(self, run_ids: Collection[str], sent: float) -> None:
        """A renewal sent at `sent` found these runs still this replica's."""
        for run_id in run_ids:
            driver = self._drivers.get(run_id)
            if driver is not None:
                driver.lease_at = max(driver.lease_at, sent)

    def _lease(self, epoch: int) -> Lease:
        return Lease(self._keeper.owner, epoch)

    async def _lost(self, run_id: str) -> None:
        """Another replica owns the run now, or ended it: stop driving it here (its commits are
        fenced). A run canceled meanwhile (a Cancel taken by another replica while this one
        could not renew: a stall, a partition) stops as a Cancel that reached this replica
        does: its bodies see `abort_signal` set when their cancellation reaches them (audit:
        they could not tell a Cancel from a takeover). Never fails: a read that does not
        answer soon (LOST_STATUS_WAIT) stops the drive all the same."""
        task = self._tasks.get(run_id)
        if run_id in self._drivers:
            try:
                # A sixth of the lease at most: the heartbeat that renews the other runs waits
                # for it, and must still come well within their leases.
                async with asyncio.timeout(min(LOST_STATUS_WAIT, self._keeper.lease_seconds / 6)):
                    run = await self._store.get_run(run_id)
            except Exception as exc:  # whatever the read met, the drive stops all the same
                logger.info("run %s: its status after the lease was lost is unknown (%r)", run_id, exc)
            else:
                driver = self._drivers.get(run_id)  # after the read: an outage's re-drive replaces it
                if (
                    driver is not None
                    and self._tasks.get(run_id) is task
                    and run is not None
                    and run.status is RunStatus.CANCELED
                ):
                    driver.abort_signal.set()
        # Only the drive that lost the lease: one started here during the read (a Resume, a
        # claim with a new lease) is not its (audit).
        if task is not None and self._tasks.get(run_id) is task:
            task.cancel("lease lost")
            self._store.hub.released(run_id)

    def _remote_cancel(self, run_id: str) -> None:
        driver = self._drivers.get(run_id)
        if driver is not None:
            driver.cancel()

    def _launch(self, driver: RunDriver) -> asyncio.Task[Run]:
        run_id = driver.run.run_id
        task = driver.loop.create_task(self._drive(driver), name=f"run {run_id}")
        self._drivers[run_id] = driver
        self._tasks[run_id] = task
        task.add_done_callback(lambda done: self._forget(run_id, done))
        return task

    async def _drive(self, driver: RunDriver) -> Run:
        # This task's own context: every log line of the run carries its id and trace id.
        logs.bind_run(driver.run.run_id, driver.run.trace_id)
        outage = _Outage()
        while True:
            try:
                try:
                    return await driver.drive()
                except StorageUnavailable as exc:
                    # A full disk, a restart, a failover, a dropped connection: not the run's
                    # fault. Whether the commit in flight took is unknown, so the run goes on
                    # from what is stored once the database answers, under the same lease (its
                    # commits stay fenced).
                    logger.warning(
                        "run %s: storage failed (%s); the run goes on from its last checkpoint once"
                        " it can be stored",
                        driver.run_id,
                        exc.detail,
                    )
                    again = await self._reloaded(driver, outage)
                    if isinstance(again, Run):
                        return again
                    driver = again
            except LeaseLost:
                logger.warning("run %s: lease lost; another replica continues it", driver.run_id)
                self._store.hub.released(driver.run_id)
                return await self._load(driver.run_id, steps=True)
            except BaseException as exc:
                task = asyncio.current_task()
                if isinstance(exc, asyncio.CancelledError) and (task is None or task.cancelling()):
                    raise  # this drive is stopped (shutdown, lost lease): the run goes on elsewhere
                # A bug, here or in reloading the run after an outage, or a CancelledError that
                # no cancel of this drive sent (user code's own, from a condition, say): fail the
                # run loudly rather than leave it `running` with nothing driving it, or failing
                # again at every boot.
                logger.exception("run %s: the engine failed while driving it", driver.run_id)
                await self._fail(
                    driver.run_id, "the engine failed while driving the run; see the server log", driver.lease
                )
                # A caller waiting for the run gets it as stored, failed (before: INTERNAL, for a
                # run that exists). Raised, user code's SystemExit (a schema's validator's) went
                # out of the event loop, and took the server down (audit).
                return await self._load(driver.run_id, steps=True)

    async def _reloaded(self, driver: RunDriver, outage: _Outage) -> RunDriver | Run:
        """A new drive of `driver`'s run from what is stored, once the database answers; the
        run itself when it is no longer active (the commit that failed took, or it ended)."""
        while True:
            await outage.wait()
            try:
                run = await self._load(driver.run_id, steps=True)
            except StorageUnavailable:
                continue
            if run.status not in _ACTIVE:
                return run
            assert driver.lease is not None  # every drive of the engine holds one
            again = self._driver(self.definition(run), run, driver.lease, driver.lease_at)
            if driver.cancel_requested and not driver.timed_out:
                again.cancel()  # a Cancel that reached the drive before the outage
            self._drivers[run.run_id] = again
            return again

    async def _fail(self, run_id: str, message: str, lease: Lease | None) -> None:
        """Mark an active run failed with an internal error. Through a storage outage it
        waits and tries again, as a drive does: the run would otherwise stay active with
        nothing to end it (on SQLite until the next boot). Any other failure is logged."""
        error = RunError("InternalError", message)
        outage = _Outage()
        while True:
            try:
                # Its steps still under way end with it, as a cancel's do: a failed run listed a
                # step `running` (audit). Unless they cannot be read (the likely cause here, or
                # the outage): the run is failed all the same, as before (review).
                steps: tuple[StepRecord, ...] = ()
                travel: dict[str, Travel] = {}
                try:
                    stored = await self._load(run_id, steps=True)
                    steps, travel = stored.steps, travel_ended(stored.travel)
                except (StorageUnavailable, StorageFailed):
                    raise  # waited out below, and read again (review)
                except Exception:
                    pass
                await self._store.write(
                    _ended_failed(run_id, error, steps, travel, expect=_ACTIVE, fence=lease)
                )
                return
            except StorageFailed:  # the store takes nothing more: the server is stopping
                log_failure(logger, "run %s: could not be marked failed", run_id)
                return
            except StorageUnavailable as exc:
                logger.warning(
                    "run %s: not marked failed yet, storage failed (%s); trying again", run_id, exc.detail
                )
                await outage.wait()
            except Exception:
                log_failure(logger, "run %s: could not be marked failed", run_id)
                return

    def _forget(self, run_id: str, task: asyncio.Task[Run]) -> None:
        if self._tasks.get(run_id) is task:
            del self._tasks[run_id]
            driver = self._drivers.pop(run_id, None)
            if driver is not None:
                self._keeper.room_made(driver.run.workflow_id)
        if not task.cancelled():
            task.exception()  # retrieved here so a failed drive is logged once, not at garbage collection

    async def _settled(self, task: asyncio.Task[Run], run_id: str) -> Run:
        """The run once settled; the run keeps going if the caller goes away.

        The drive here may stop first: this replica lost the run's lease (it stalled past
        it), and another replica, or this one's claim loop, continues the run from its last
        checkpoint. The caller asked to wait for the outcome, not for this drive: the run is
        then followed through its log until it settles."""
        try:
            run: Run | None = await asyncio.shield(task)
        except asyncio.CancelledError:
            caller = asyncio.current_task()
            if not task.cancelled() or (caller is not None and caller.cancelling()):
                raise  # the caller went away (even if the drive was cancelled at the same time)
            if self._stopping or self._closed:
                raise Unavailable("server is shutting down; the run continues when it restarts") from None
            run = None  # the lease was lost while a step ran
        # No sync here: what the reply rests on is durable already. A drive returns the run
        # from its settling commit, which is synced and covers every earlier commit of the
        # run; a run read from the store (a lost lease, a followed run) is synced by the read.
        # A sync of every commit so far would wait, under load, for other runs' progress too.
        if run is None or run.status in _ACTIVE:
            run = await self._followed_until_settled(run_id)
        return run

    async def _followed_until_settled(self, run_id: str, born: float | None = None) -> Run:
        """The run once it is not active, whoever drives it (this follows its log); with
        `born`, of the run created then only."""
        run = await self._load(run_id, steps=True, born=born)
        if run.status in _ACTIVE:
            async for _ in self.follow(run_id, after=run.last_sequence, until_settled=True, born=born):
                pass
            run = await self._load(run_id, steps=True, born=born)
        return run

    async def _admitted_here(self, admission: Callable[[Caller], Awaitable[_T]]) -> _T:
        """`_admit` without a task of its own, for Start and Resume (a task per call cost 10 %
        of the runs per second at 64 in flight over gRPC): the admission runs in the caller's
        task and takes the run only through `_take`, with nothing to wait for between that
        write and the launch of the drive. A caller cancelled while such a write is in flight
        gets its cancellation once the drive is launched."""
        caller = Caller()
        try:
            return await admission(caller)
        finally:
            caller.raise_if_gone()  # the deferred cancellation, whatever happened

    async def _take(self, change: RunWrite, caller: Caller, *, durable: bool = True) -> WriteResult:
        """Commit a write that makes a run this replica's, for `_admitted_here`: waited out
        even if the caller is cancelled meanwhile, so the drive is launched all the same."""
        return await caller.wait_out(self._store.submit(change, durable=durable))

    async def _admit(self, admission: Coroutine[Any, Any, _T]) -> _T:
        """Run `admission` to its end even if the caller is cancelled meanwhile.

        An admission holds a run's lock, commits what makes the run this replica's (a
        Restart, a time travel, a fork, a claim to cancel it) and launches or ends its drive.
        Cut in between (a cancelled RPC, a client's deadline), the run would stay active,
        owned here and driven by nobody. So it runs in a task of its own, which the caller
        only waits for. Start and Resume, the hot paths, use `_admitted_here` instead."""
        task = asyncio.get_running_loop().create_task(admission)
        self._admissions.add(task)
        task.add_done_callback(self._admitted)
        return await asyncio.shield(task)

    def _admitted(self, task: asyncio.Task[Any]) -> None:
        self._admissions.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved here: its caller may have gone away

    async def _answer(self, admitted: _Admission, wait: bool) -> Run:
        """The reply to a Start, Resume, Restart, time travel or fork once admitted."""
        if isinstance(admitted, _Repeat):
            return await self._repeat(admitted.run_id, wait, admitted.born)
        if isinstance(admitted, Run):
            return admitted
        run, task = admitted
        return await self._settled(task, run.run_id) if wait else run

    async def _repeat(self, run_id: str, wait: bool, born: float | None = None) -> Run:
        """The answer to a retried request: the run now, or once it settles (wherever it runs);
        with `born`, of the run created then only."""
        task = self._tasks.get(run_id)
        if wait and task is not None:
            run = await self._settled(task, run_id)
        elif wait:
            run = await self._followed_until_settled(run_id, born)
        else:
            run = await self.get_run(run_id)
        if born is not None and run.created_at != born:
            raise RunNotFound(run_id)
        return run

    async def _load(
        self, run_id: str, workflow_id: str | None = None, *, steps: bool = False, born: float | None = None
    ) -> Run:
        """The run (RunNotFound, RunWorkflowMismatch); with `born`, the run created then only: a
        caller's check of the run (its resource scope, at the edge) holds for that run alone,
        not one made anew under its id since (an audit: a tenant's call acted on another's)."""
        run = await self._store.get_run(run_id, steps=steps)
        if run is None or (born is not None and run.created_at != born):
            raise RunNotFound(run_id)
        if workflow_id and run.workflow_id != workflow_id:
            raise RunWorkflowMismatch(run_id, workflow_id, run.workflow_id)
        return run

    def _check_open(self) -> None:
        if self._closed or self._draining or self._stopping:
            raise Unavailable("server is shutting down; retry on another instance")


def _ended_failed(
    run_id: str,
    error: RunError,
    steps: Iterable[StepRecord],
    travel: Mapping[str, Travel] | None = None,
    **conditions: Any,
) -> RunWrite:
    """The write that ends a run failed with `error` (under `conditions`: expect, fence...), its
    `steps` still under way stopped with it, each told in the log as a Watch's state follows it;
    `travel`: the run's field as `travel_ended` gives it."""
    now = time.time()
    stopped = [stopped_record(s, now) for s in steps if s.status in _UNFINISHED_STEPS]  # items too
    return RunWrite(
        run_id,
        patch=dict(
            status=RunStatus.FAILED,
            error=error,
            ended_at=now,
            suspended=(),
            resume_labels={},
            wake_at=None,
            **(travel or {}),
        ),
        steps=stopped,
        events=(
            *(EventDraft(EventType.STEP_RESULT, RunStatus.FAILED, step=s) for s in stopped),
            EventDraft(EventType.WORKFLOW_FINISH, RunStatus.FAILED, error=error),
        ),
        release=True,
        **conditions,
    )


def _running_again(**more: Any) -> dict[str, Any]:
    """The fields of a suspended run that goes on (resumed, or woken for a nested deadline)."""
    return dict(status=RunStatus.RUNNING, suspended=(), resume_labels={}, wake_at=None, **more)


ABANDONED: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
"""Run tasks a stop gave up on: cancelled, they went on (a body that catches the
cancellation). Nobody waits for them again; the process exits without them."""

UNWIND_WAIT = 2.0
"""Seconds a run task gets to end once cancelled at shutdown (its body's `finally` blocks, the
drive's last commit); past it the engine stops without it (and `runservice serve` exits without
waiting for it: cli/serve.py)."""

LOST_STATUS_WAIT = 1.0
"""Seconds a replica that lost a run's lease waits to read whether the run was canceled,
before it stops its drive all the same (`Engine._lost`)."""

OUTAGE_RETRY_FIRST = 0.1
OUTAGE_RETRY_MAX = 5.0
"""Seconds between a drive's looks for the database after it did not answer (doubling)."""
OUTAGE_CALM = 30.0
"""A drive's tries that fail farther apart than this are two outages: the second starts its
waits from OUTAGE_RETRY_FIRST again. Closer, they are one that lasts (a full disk fails every
try that writes, though reads still answer), and the waits go on doubling."""
CLAIMED_RUN_RETRIES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 1.8)
"""Seconds between a Resume's (or a TimeTravel's) attempts while another drive holds the run (about
5 s in all; its holder commits within milliseconds unless its process died)."""


class _Outage:
    """The waits of one drive between its tries while storage fails: doubling from
    OUTAGE_RETRY_FIRST to OUTAGE_RETRY_MAX, and from the first again once the drive went on
    for OUTAGE_CALM seconds without failing. Each wait is drawn from its upper half, so the
    drives waiting on one outage do not all come back at once."""

    __slots__ = ("_delay", "_tried")

    def __init__(self) -> None:
        self._delay = OUTAGE_RETRY_FIRST
        self._tried = float("-inf")

    async def wait(self) -> None:
        if time.monotonic() - self._tried > OUTAGE_CALM:
            self._delay = OUTAGE_RETRY_FIRST
        delay, self._delay = self._delay, min(self._delay * 2, OUTAGE_RETRY_MAX)
        await asyncio.sleep(random.uniform(delay / 2, delay))
        self._tried = time.monotonic()


def _workflow_bounds(workflows: Mapping[str, Workflow], given: Mapping[str, int]) -> dict[str, int]:
    """Each bounded workflow's bound: its newest version's, unless `given` replaces it."""
    for workflow_id, bound in given.items():
        if workflow_id not in workflows:
            raise WorkflowDefinitionError(
                f"a max_active_runs is given for workflow {workflow_id!r}, which is not served"
            )
        if (
            isinstance(bound, bool)
            or not isinstance(bound, int)
            or not 0 <= bound <= limits.ACTIVE_RUNS_BOUND
        ):
            raise WorkflowDefinitionError(
                f"workflow {workflow_id!r}: max_active_runs must be from 0 (no bound) to"
                f" {limits.ACTIVE_RUNS_BOUND}, not {bound!r}"
            )
    bounds = {w.id: w.max_active_runs for w in workflows.values() if w.max_active_runs}
    bounds.update(given)
    return {workflow_id: bound for workflow_id, bound in bounds.items() if bound}


def new_trace_id() -> str:
    """A random W3C trace id: 32 lowercase hex digits, never all zeros."""
    return f"{random_bits(128) or 1:032x}"


def _validate(schema: Schema | None, data: Json, field: str, what: str) -> Json:
    return _validate_typed(schema, data, field, what)[1]


def _validate_typed(schema: Schema | None, data: Json, field: str, what: str) -> tuple[Any, Json]:
    if schema is None:
        return data, data
    try:
        return schema.validate(data, what)
    except SchemaViolation as exc:
        violations = [
            FieldViolation(f"{field}.{v.field}" if v.field else field, v.description) for v in exc.violations
        ]
        raise ValidationFailed(str(exc), violations=violations) from None


def _travel_state(workflow: Workflow, run: Run, initial_state: Json) -> Json:
    """A time travel's run state: `initial_state` when given (validated), else the run's."""
    if initial_state is None:
        return run.state
    state = _validate(workflow.state_schema, initial_state, "initial_state", "initial state")
    if not isinstance(state, dict):
        raise _invalid("initial_state", "the run state must be a JSON object")
    return state


def _context(request_context: dict[str, Json] | None) -> dict[str, Json]:
    if request_context is None:
        return {}
    if not isinstance(request_context, dict):
        raise _invalid("request_context", "must be a JSON object")
    return dict(request_context)


def _merged_context(stored: dict[str, Json], given: dict[str, Json]) -> dict[str, Json]:
    """The request context a Resume, TimeTravel or ForkRun goes on with: the stored one with
    the caller's entries merged in. PayloadTooLarge past its limit: each part within it, the
    two could add up past it, and a run grew by 60 KiB per TimeTravel until it failed, then
    could no longer be read whole (audit)."""
    merged = {**stored, **given}
    if given:
        limits.check("request_context", merged, limits.REQUEST_CONTEXT)
    return merged


def _check_repeat(run: Run, workflow_id: str, resource_id: str | None) -> None:
    """A Start that repeats one whose request id `run` recorded: refused unless it is the same
    workflow and resource, so a reply never answers with another caller's run."""
    if run.workflow_id != workflow_id:
        raise RunBelongsToOtherWorkflow(run.run_id, run.workflow_id)
    _check_resource(run, resource_id)


def _check_resource(run: Run, resource_id: str | None) -> None:
    """RunBelongsToOtherResource unless `run` is of `resource_id` (none for none)."""
    if (run.resource_id or None) != (resource_id or None):
        raise RunBelongsToOtherResource(run.run_id)


def _invalid(field: str, description: str) -> InvalidArgument:
    return InvalidArgument(f"{field}: {description}", violations=[FieldViolation(field, description)])


__all__ = ["Engine"]
