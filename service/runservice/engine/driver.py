"""RunDriver: walks a run's graph from its checkpoint until the run settles.

The walk decides everything from the step records, never from how it was started:
a finished record gives back its outcome (a finished step never runs again), a
suspended record stays suspended unless it carries an accepted resume, and an
unfinished record runs again. Resume writes its acceptance onto the record before
the walk starts, so a first run, a resume and the recovery of a crashed process are
one code path. Executing a step has three parts: its start record, its body (with
retries), and its finish record.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Callable, Coroutine, Iterator
from operator import attrgetter
from typing import Any, TypeVar

import orjson

from runservice import limits, logs
from runservice.engine import blocks
from runservice.engine.deadlines import deadline_error, iso, workflow_deadline_error
from runservice.engine.leases import LeaseKeeper
from runservice.engine.outbox import DRIVE_ENDINGS, IN_CONCURRENT_BLOCK, Outbox
from runservice.engine.outcome import (
    CANCELED,
    SUSPENDED,
    USER_EXITS,
    Kind,
    Outcome,
    Resumption,
    failed,
    recorded,
    success,
)
from runservice.engine.scope import BoundRuntime, Scope, StateSizes
from runservice.engine.timetravel import travel_ended
from runservice.errors import PayloadTooLarge, StepTimeoutError, WorkflowTimeoutError
from runservice.model import (
    EventType,
    ForeachItem,
    Json,
    ResumeLabel,
    Run,
    RunError,
    RunStatus,
    StepPath,
    StepRecord,
    StepStatus,
    json_copy,
    new_call_id,
)
from runservice.model import evolve as replace  # dataclasses.replace, faster
from runservice.storage import Lease, Store
from runservice.workflow import (
    Bail,
    BranchNode,
    ForeachNode,
    LoopNode,
    Node,
    ParallelNode,
    Runnable,
    SchemaViolation,
    SleepNode,
    SleepUntilNode,
    Step,
    StepContext,
    StepNode,
    SuspendPayloadRefused,
    Workflow,
    to_jsonable,
)

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_POSITION = attrgetter("position")
_UNFINISHED = (StepStatus.RUNNING, StepStatus.WAITING, StepStatus.SUSPENDED)


class _InputRefused(Exception):
    """An attempt of a step whose input its schema refused (`RunDriver.run_body`)."""

    def __init__(self, error: RunError) -> None:
        super().__init__(error.message)
        self.error = error


def stopped_record(record: StepRecord, now: float) -> StepRecord:
    """`record` as a cancel (or a deadline) leaves it: canceled, and so are its foreach items
    still running or suspended (they read `suspended` in a canceled run before)."""
    items = record.foreach_items
    if any(item.status in _UNFINISHED for item in items):
        canceled = StepStatus.CANCELED
        items = tuple(replace(i, status=canceled) if i.status in _UNFINISHED else i for i in items)
    return replace(record, status=StepStatus.CANCELED, ended_at=now, foreach_items=items)


class RunDriver:
    """Executes one run in this process until it is terminal or suspended."""

    def __init__(
        self,
        store: Store,
        workflow: Workflow,
        run: Run,
        lease: Lease | None = None,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        leases: LeaseKeeper | None = None,
        lease_at: float = 0.0,
    ) -> None:
        """`leases`: the keeper of `lease`, asked before each body whether it still holds;
        `lease_at`: when the claim of `lease` was sent (`time.monotonic()`)."""
        self.workflow = workflow
        self.lease = lease
        self.leases = leases
        self.lease_at = lease_at
        """When this run's lease was last claimed or renewed (the request sent; the keeper
        moves it on with each renewal that finds the run still this replica's)."""
        self.run = run
        self.run_id = run.run_id
        self.workflow_id = workflow.id
        self.resource_id = run.resource_id
        self.records: dict[StepPath, StepRecord] = {s.path: s for s in run.steps}
        self.state: dict[str, Json] = dict(run.state) if isinstance(run.state, dict) else {}
        self.state_sizes = StateSizes(self.state)
        self._staged_changes = 0 if isinstance(run.state, dict) else -1
        """`state_sizes.changes` when the state was last staged (see `stage_state`); 0 at first:
        the state the drive starts from is the one stored (the run as read, or as this process
        just wrote it), unless what is stored is no object (-1: it is written as `{}`)."""
        # Bodies change the live context in place, deep inside too: it shares nothing with
        # `run`, and what was staged last is a copy to its depth.
        self.request_context: dict[str, Json] = json_copy(run.request_context)
        self._staged_context = json_copy(self.request_context)
        """The request context as last staged (bodies may change it; see `stage_memory`)."""
        self._staged_context_json = _encoded(self._staged_context)
        """Its encoding (`_context_changed`)."""
        # Held, not looked up: on Python 3.11 every get_running_loop() is a getpid() syscall
        # (the engine passes the loop it holds, so a run costs none).
        self.loop = loop or asyncio.get_running_loop()
        self.outbox = Outbox(store, run.run_id, self.loop, lease)
        self.outbox.last_sequence = run.last_sequence
        self.status = RunStatus.RUNNING
        self.cancel_requested = False
        self.abort_signal = asyncio.Event()
        self.suspended: dict[StepPath, None] = {}
        """The suspended steps, in the order they suspended (a dict: a wide parallel re-driven
        on each resume looks every branch up in it)."""
        self.labels: dict[str, ResumeLabel] = {}
        self._next_position = max((s.position for s in run.steps), default=0) + 1
        self._bodies: set[asyncio.Task[Any]] = set()
        """Tasks currently inside a step body (the driver task, or a concurrent block's tasks)."""
        self._calls: set[asyncio.Task[Any]] = set()
        """Tasks in a condition's or a sleep duration's call (`call_user`): `cancel()` cancels
        them as it does bodies, but they are no body running (`bodies_running`): a sleep beside
        one still leaves the run `waiting`."""
        self._sleeps = 0
        """Sleeps of the run under way (a parallel's branches may sleep beside running bodies)."""
        self._waking: asyncio.Lock | None = None
        """Held while the run waits for room to go on (`awake`): one wait per run at a time."""
        self._cancels: dict[asyncio.Task[Any], int] = {}
        self._input_size = limits.json_size(run.input)
        self._base_size = self._input_size + limits.json_size(self.request_context)
        """The input's and the request context's bytes (kept as bodies change the context)."""
        # What the stored records hold counts from the start: a resumed or recovered run
        # began with none counted, and went on to twice the limit (review). Past it without
        # the context (which a Resume may add to) only an earlier version could store a run:
        # it goes on as it did there (counted from nothing), not failed by whatever step
        # comes next (review).
        sizes = {path: _produced_size(record) for path, record in self.records.items()}
        if self._input_size + sum(sizes.values()) > limits.RUN_TOTAL:
            logger.warning(
                "run %s holds more than its %d bytes of input and step outputs (stored so by an"
                " earlier version): counted from now",
                run.run_id,
                limits.RUN_TOTAL,
            )
            sizes = {}
        self._sizes: dict[StepPath, int] = sizes
        """Bytes of each step's output or suspend payload (for the run's total size)."""
        self._sizes_total = sum(sizes.values())
        """The sum of `_sizes`, kept as it changes: summed per step, a run of N steps cost O(N²)."""
        self._errors_total = sum(map(_errors_size, self.records.values()))
        """Bytes of the errors the run's records and foreach items keep (see `kept_error`)."""
        self.settling = False
        """True from the moment the final commit is staged (the lease is released with it)."""
        self.result: Run | None = None
        self.travel = run.travel
        """A time travel's target step and its new input (see `travel_input`)."""
        self.deadline = run.deadline
        self.timed_out = False
        """True once the run's deadline stopped it: it ends failed with RunTimeoutError."""
        self._deadline_timer: asyncio.TimerHandle | None = None
        self.nested_deadlines: list[float] = []
        """Deadlines of the nested workflows this walk left suspended: the earliest is the
        run's `wake_at` once it settles suspended (the claim loop takes it then)."""
        if run.cancel_requested:  # a Cancel reached another replica before this one took over
            self.cancel()

    # -- lifecycle -------------------------------------------------------------------------

    async def drive(self) -> Run:
        """Run to settlement, commit the final state, and return the run."""
        scope = Scope(self, self.workflow, (), self.run.input)
        try:
            if self.deadline is not None:
                left = self.deadline - time.time()
                if left <= 0:  # it passed while nobody drove the run: nothing more runs
                    self.timed_out = True
                    return await self._settle(failed(deadline_error(self.deadline)))
                self._deadline_timer = self.loop.call_later(left, self.expire)
            outcome = await self.run_sequence(self.workflow, self.run.input, scope)
            if self.timed_out and self.deadline is not None:
                outcome = failed(deadline_error(self.deadline))
            elif self.cancel_requested and outcome.kind is not Kind.FAILED:
                outcome = CANCELED
            return await self._settle(outcome)
        finally:
            if self._deadline_timer is not None:
                self._deadline_timer.cancel()
            await self.outbox.close()

    def expire(self) -> None:
        """The run's deadline passed: stop it as Cancel does; it ends failed (RunTimeoutError)."""
        if self.settling or self.cancel_requested:
            return
        logger.warning("run %s: deadline passed; stopping it", self.run_id)
        self.timed_out = True
        self.cancel()

    def cancel(self, request_id: str | None = None) -> None:
        """Stop the run: signal abort, cancel running step bodies, stop at the next boundary."""
        if request_id:
            self.outbox.remember("cancel", request_id)
        if self.cancel_requested:
            return
        self.cancel_requested = True
        self.abort_signal.set()
        for task in (*self._bodies, *self._calls):
            self._cancels[task] = self._cancels.get(task, 0) + 1
            task.cancel("run canceled")

    async def _settle(self, outcome: Outcome) -> Run:
        now = time.time()
        if self.timed_out or outcome.kind is Kind.CANCELED:
            self._stop_unfinished(now)
        error: RunError | None = None
        result: Json = None
        if outcome.kind in (Kind.SUCCESS, Kind.BAILED):
            self.status = RunStatus.SUCCESS
            result = outcome.output
            self.outbox.event(EventType.WORKFLOW_FINISH, self.status, data=result)
        elif outcome.kind is Kind.FAILED:
            self.status = RunStatus.FAILED
            error = outcome.error
            self.outbox.event(EventType.WORKFLOW_FINISH, self.status, error=error)
        elif outcome.kind is Kind.SUSPENDED:
            self.status = RunStatus.SUSPENDED
            self.outbox.event(EventType.WORKFLOW_FINISH, self.status)
        else:
            self.status = RunStatus.CANCELED
            self.outbox.event(EventType.WORKFLOW_CANCELED, self.status)
            self.outbox.event(EventType.WORKFLOW_FINISH, self.status)
        settled = self.status is RunStatus.SUSPENDED
        # The same fields are stored and returned, so the answer is what a later GetRun reads.
        fields: dict[str, Any] = dict(
            status=self.status,
            result=result,
            error=error,
            suspended=tuple(self.suspended) if settled else (),
            resume_labels=dict(self.labels) if settled else {},
            ended_at=None if settled else now,
            wake_at=min(self.nested_deadlines) if settled and self.nested_deadlines else None,
            request_context=dict(self.request_context),
            cancel_requested=False,
        )
        fields.update(travel_ended(self.travel))  # a time travel's resume data was for this one
        self.travel = fields.get("travel", self.travel)
        self.stage_state()
        self.outbox.stage(**fields)
        self.outbox.release()
        self.settling = True
        await self.outbox.commit()
        self.result = replace(
            self.run,
            **fields,
            state=dict(self.state),
            updated_at=now,
            last_sequence=self.outbox.last_sequence,
            steps=tuple(sorted(self.records.values(), key=_POSITION)),
        )
        return self.result

    def _stop_unfinished(self, now: float) -> None:
        """Record every step still running, waiting or suspended as canceled (a cancel or
        the deadline stopped it), so a stopped run shows no step as going on: a branch
        suspended beside one the cancel stopped is over too, as `Engine._cancel_idle`
        records the steps of a run canceled while nothing drove it."""
        for record in sorted(self.records.values(), key=_POSITION):
            if record.status in _UNFINISHED:
                self.record_event(EventType.STEP_RESULT, stopped_record(record, now))
        self.suspended.clear()
        self.labels.clear()

    # -- walking the graph -------------------------------------------------------------------

    async def run_sequence(self, workflow: Workflow, data: Json, scope: Scope) -> Outcome:
        """Run a workflow's nodes in order, each on the previous one's output."""
        current = data
        for node in workflow.nodes:
            if self.cancel_requested:
                return CANCELED
            left = scope.deadline_left()
            if left is not None and left <= 0:  # a nested workflow past its own deadline
                return self._nested_expired(scope)
            outcome = await self.run_node(node, current, scope)
            if not outcome.ok:
                return outcome
            current = outcome.output
        return success(current)

    def _nested_expired(self, scope: Scope) -> Outcome:
        """A nested workflow's deadline passed (found at a node boundary, often after it sat
        suspended, or once it cut a running step): its steps still suspended, waiting or
        running fail with its timeout, as the step it cut did, and are no longer resumable."""
        error = workflow_deadline_error(scope.deadline_of, scope.deadline or 0.0)
        size, now = len(scope.prefix), time.time()
        for record in sorted(self.records.values(), key=_POSITION):
            if (
                len(record.path) > size
                and record.path[:size] == scope.prefix
                and record.status in _UNFINISHED
            ):
                self.record_event(
                    EventType.STEP_RESULT,
                    replace(record, status=StepStatus.FAILED, error=error, ended_at=now),
                )
        self.suspended = {p: None for p in self.suspended if p[:size] != scope.prefix}
        for label, target in list(self.labels.items()):
            if target.path[:size] == scope.prefix:
                del self.labels[label]
        return failed(error)

    async def gather(self, *branches: Coroutine[Any, Any, _T]) -> list[_T]:
        """Run a block's branches concurrently (parallel, branch and foreach use this).

        A task group owns the branches: if one fails unexpectedly the others are
        cancelled, never left running unowned. A branch whose commit was fenced ends the
        drive as a plain LeaseLost, whatever the others raised: the run is another
        replica's now, and the engine follows it there rather than fail it here. So does
        StorageUnavailable: the engine drives the run on once the database answers.
        """
        if not branches:
            return []
        token = IN_CONCURRENT_BLOCK.set(True)  # each branch task copies the context
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(branch) for branch in branches]
        except BaseExceptionGroup as failures:
            # Ends of the drive, not failures of the run: the first found is raised alone.
            for ending in DRIVE_ENDINGS:
                found = failures.subgroup(ending)
                if found is not None:
                    raise _first_leaf(found) from failures
            raise
        finally:
            IN_CONCURRENT_BLOCK.reset(token)
        return [task.result() for task in tasks]

    async def run_node(self, node: Node, data: Json, scope: Scope) -> Outcome:
        match node:
            case StepNode(step):
                return await self.run_unit(step, data, scope)
            case ParallelNode():
                return await blocks.run_parallel(self, node, data, scope)
            case BranchNode():
                return await blocks.run_branch(self, node, data, scope)
            case LoopNode():
                return await blocks.run_loop(self, node, data, scope)
            case ForeachNode():
                data = self.travel_input((*scope.prefix, node.step.id), data)
                return await blocks.run_foreach(self, node, data, scope)
            case SleepNode() | SleepUntilNode():
                return await blocks.run_sleep(self, node, data, scope)
        raise AssertionError(f"unknown node {node!r}")

    async def run_unit(self, runnable: Runnable, data: Json, scope: Scope, iteration: int = 0) -> Outcome:
        """Run a step or nested workflow at `scope.prefix + (id,)`, following its record."""
        path = (*scope.prefix, runnable.id)
        if self.travel is not None:  # checked here: this runs for every step of every run
            data = self.travel_input(path, data)
        record = self.current_record(path, scope, iteration)
        if isinstance(runnable, Workflow):
            return await self.run_nested(runnable, data, path, scope, record, iteration)
        if record is not None:
            done = recorded(record)
            if done is not None:
                return done
            # A Resume accepted on it wins over a time travel's resume data, and so does its
            # record of that data once it started (`execute`): then a crash re-runs it resumed.
            if record.resume_pending:
                return await self.resume_step(runnable, record, scope)
            if record.status is StepStatus.SUSPENDED:
                self.note_suspended(record)
                return SUSPENDED
        resumed = self.travel_resume(path) if self.travel is not None else None
        return await self.execute(
            runnable, data, path, scope, iteration=iteration or scope.iteration, resumed=resumed
        )

    def travel_input(self, path: StepPath, data: Json) -> Json:
        """The input of the step at `path`: a time travel's new input while its target has
        no outcome yet in the first iteration of every loop around it, else `data` (the walk's).

        A nested workflow that is a loop's body drops the records under it at each new
        iteration (`drop_below`), so a target inside it has no record again: its own record
        cannot tell that the input was used. The body's record carries the iteration, and it
        is durable: past the first, the walk's data goes on (before, the target took the new
        input at every iteration, and a loop whose exit depended on it never ended)."""
        travel = self.travel
        if travel is None or travel.step != path or self.travel_ahead() is None:
            return data
        return travel.input

    def travel_resume(self, path: StepPath, index: int | None = None) -> Resumption | None:
        """A time travel's resume data for the step at `path` (`index`: for that item of a
        foreach step) while the walk has yet to reach its target, as `travel_input` gives its
        input; else None. The suspend payload is the one the target (the item) was left
        suspended with, if any."""
        travel = self.travel
        if travel is None or travel.resume_data is None or travel.step != path or self.travel_ahead() is None:
            return None
        payload = travel.suspend_payload
        if index is not None:
            payload = payload[index] if isinstance(payload, list) and index < len(payload) else None
        return Resumption(travel.resume_data, payload, None if index is not None else travel.suspended_at)

    def travel_ahead(self) -> StepPath | None:
        """A time travel's target while the walk has yet to reach it: it has no outcome yet,
        in the first iteration of every loop around it (see `travel_input`); else None."""
        travel = self.travel
        if travel is None:
            return None
        path = travel.step
        record = self.records.get(path)
        if record is not None and (recorded(record) is not None or record.iteration > 1):
            return None
        for size in range(1, len(path)):
            around = self.records.get(path[:size])
            if around is not None and around.iteration > 1:
                return None
        return path

    def current_record(self, path: StepPath, scope: Scope, iteration: int = 0) -> StepRecord | None:
        """The step's record if it belongs to the current loop iteration: `iteration` for a
        loop's body (its own counter), else that of the loop body the scope is.

        Records of an earlier iteration of an enclosing loop are gone: a loop body that
        is a nested workflow drops every record under it when it starts a new iteration
        (`drop_below`), so each record here is of the enclosing loops' current iterations.
        """
        record = self.records.get(path)
        expected = iteration or scope.iteration
        if record is not None and expected and record.iteration != expected:
            return None
        return record

    def drop_below(self, path: StepPath) -> None:
        """Forget every record under `path` (a nested workflow that starts over: a loop's
        next iteration, a foreach's new pass): they are of an earlier iteration, and a
        walk must not take their outcomes for this one's. They are deleted from storage
        with the next commit, the one that records the start over."""
        size = len(path)
        stale = [key for key in self.records if len(key) > size and key[:size] == path]
        for key in stale:
            del self.records[key]
            self._sizes_total -= self._sizes.pop(key, 0)
        if stale:
            self.outbox.drop_steps(stale)

    def passed(self, node: Node, scope: Scope) -> bool:
        """Whether an earlier walk of `scope` went past `node`: a node after it has a record
        of this iteration. The decisions of a block the walk went past (a branch that chose
        none, a loop that ended) were taken then, and are not taken again on a later walk
        (a resume, a recovery), where the state its conditions read may have changed since:
        Mastra's resume re-enters at the suspended entry and skips the ones before it. So
        does a time travel to a later node, until the walk reaches its target: Mastra's
        starts at its target (a target in a loop body, reached, lets the next iterations
        decide again: review).

        A later loop's record carries the loop's own iteration, not the enclosing one's: any
        record of it is of this walk, as `run_loop` reads it (review: inside a loop body, a
        loop after a branch read as not reached, and the branch decided again)."""
        target = self.travel_ahead()
        size = len(scope.prefix) + 1
        after = False
        for step_id, owner in scope.workflow.node_ids():
            if owner is node:
                after = True
            elif after:
                path = (*scope.prefix, step_id)
                record = (
                    self.records.get(path)
                    if isinstance(owner, LoopNode)
                    else self.current_record(path, scope)
                )
                if record is not None or (target is not None and target[:size] == path):
                    return True
        return False

    def resume_below(self, path: StepPath) -> bool:
        """Whether a step at or under `path` (or one of its foreach items) has an accepted
        resume that has not run yet."""
        size = len(path)
        for key, record in self.records.items():
            if key[:size] == path and (
                record.resume_pending or any(item.resume_pending for item in record.foreach_items)
            ):
                return True
        return False

    async def run_nested(
        self,
        workflow: Workflow,
        data: Json,
        path: StepPath,
        scope: Scope,
        record: StepRecord | None,
        iteration: int = 0,
    ) -> Outcome:
        """A nested workflow as a step: its steps are recorded under `path`."""
        if record is not None and (done := recorded(record)) is not None:
            return done
        announce = True
        listing = False
        if record is not None and record.status is StepStatus.RUNNING:
            # A re-drive (after a restart): its start is in the log, and the workflow goes on
            # from its inner records; only an inner step in flight runs, and tells, again.
            announce = False
        elif record is None or record.status is not StepStatus.SUSPENDED:
            iteration = iteration or scope.iteration
            validated = self.validate_input(workflow.input_schema, data, path, iteration=iteration)
            if isinstance(validated, Outcome):
                return validated
            record = StepRecord(
                path,
                StepStatus.RUNNING,
                payload=validated[1],
                started_at=time.time(),
                iteration=iteration,
                position=self.position(path),
            )
        elif record.status is StepStatus.SUSPENDED:
            if self.resume_below(path):
                record = replace(record, status=StepStatus.RUNNING)
            else:
                announce, listing = False, True  # the walk only lists the suspended steps inside
        if announce:
            record = replace(record, call_id=new_call_id())
            self.record_event(EventType.STEP_START, record)
        child = scope.child(
            workflow, path, record.payload, iteration=record.iteration, started_at=record.started_at
        )
        outcome = await self.run_sequence(workflow, record.payload, child)
        if outcome.kind is Kind.SUSPENDED and child.deadline is not None:
            self.nested_deadlines.append(child.deadline)
        elif (
            outcome.kind is Kind.FAILED
            and child.deadline is not None
            and outcome.error is not None
            and outcome.error.name == WorkflowTimeoutError.__name__
            and (outcome.error.details or {}).get("workflow") == child.deadline_of
        ):
            # Its deadline cut a running step (in a parallel, say) while another inside it
            # was suspended: that one is over with its workflow, as at a node boundary.
            self._nested_expired(child)
        if outcome.kind is Kind.SUSPENDED and listing:
            return outcome
        # A re-drive that suspends again goes on to its record: it stayed `running` in a
        # suspended run (audit).
        if outcome.kind is Kind.BAILED:  # bail ends the nested workflow, not its parent
            outcome = success(outcome.output)
        if outcome.kind is Kind.SUSPENDED:
            outcome = self.lent(path, self.suspended_inside(path))
        return self.finish_record(record, outcome, leaf=False)

    def lent(self, path: StepPath, suspension: Outcome) -> Outcome:
        """`suspension`, lent by a step inside, as the record at `path` may carry it. The copy
        counts toward the run's size as any payload does: one that would take the run over
        its limit is left out (the inner step's record has it) rather than fail a run that
        fits (audit: six levels deep, a 1 MiB payload failed)."""
        if suspension is SUSPENDED or self._within_limits(path, suspension).kind is not Kind.FAILED:
            return suspension
        return SUSPENDED

    def item_outcome(self, prefix: StepPath, outcome: Outcome) -> Outcome:
        """The outcome of an item of a foreach of workflows (`prefix` ends in its "[i]"): a
        suspension carries the first inner step's payload, lent as to a nested workflow's
        record, counted toward the run's size (review: uncounted, five items' 0.9 MB copies
        made a run no reply could carry); any other outcome gives back what the item's copy
        counted."""
        if outcome.kind is Kind.SUSPENDED:
            return self.lent(prefix, self.suspended_inside(prefix))
        self._sizes_total -= self._sizes.pop(prefix, 0)
        return outcome

    def suspended_inside(self, path: StepPath) -> Outcome:
        """A nested workflow's suspension as Mastra records it: the first step suspended
        inside lends its suspend payload and output to the workflow's own record and its
        STEP_SUSPENDED event (audit: they carried none, so a form built from
        `steps[<nested id>].suspend_payload` found nothing). So does an item of a foreach
        of workflows (`path` ending in its "[i]")."""
        size = len(path)
        for inner in self.suspended:
            record = self.records.get(inner) if len(inner) > size and inner[:size] == path else None
            if record is not None:
                return Outcome(
                    Kind.SUSPENDED, {"payload": record.suspend_payload, "output": record.suspend_output}
                )
        return SUSPENDED

    # -- executing one step: start record, body, finish record ---------------------------------

    async def execute(
        self,
        step: Step,
        data: Json,
        path: StepPath,
        scope: Scope,
        *,
        iteration: int = 0,
        resumed: Resumption | None = None,
    ) -> Outcome:
        """Run a step from its input (first run, or again after a crash) and record it.

        An input its schema refuses fails each attempt in place of the body, as in Mastra,
        which validates inside its retry loop: the step starts, is retried, then fails.
        `resumed`: a time travel's resume data, which the body gets as a resumed one does;
        its record then is a resumed step's (`resume_pending` until its outcome), so a
        crash while it runs re-runs it resumed (`resume_step`)."""
        validated = self.validate_input(step.input_schema, data, path, emit=False)
        invalid: RunError | None = None
        if isinstance(validated, Outcome):
            invalid = validated.error
            value, checked = None, data
        else:
            value, checked = validated
        # A step in flight when the process died carries on from the attempt its record
        # reached (each failed attempt is committed before the next: `run_body`), so a crash
        # during the retries does not give the step its whole retry budget again.
        earlier = self.records.get(path)
        first = (
            earlier.attempt
            if earlier is not None and earlier.status is StepStatus.RUNNING and earlier.iteration == iteration
            else 0
        )
        now = time.time()
        record = StepRecord(
            path,
            StepStatus.RUNNING,
            payload=checked,
            started_at=now,
            iteration=iteration,
            position=self.position(path),
            call_id=new_call_id(),
            attempt=first,
        )
        if resumed is not None:
            record = replace(
                record,
                resume_payload=resumed.data,
                resumed_at=now,
                suspend_payload=resumed.suspend_payload,
                suspended_at=resumed.suspended_at,
            )
        if self.status is RunStatus.WAITING:  # a sibling sleeps: only then does a start cost more
            await self.wake_for_body()
        if self.cancel_requested:  # no step starts after a Cancel (one taken during the wake-up)
            return CANCELED
        self.record_event(EventType.STEP_START, record)

        def reached(next_attempt: int) -> None:
            self.records[path] = replace(record, attempt=next_attempt)
            self.outbox.stage(step=self.records[path])

        body, attempt = await self.run_body(
            step, value, scope, path, resumed, first_attempt=first, reached=reached, invalid=invalid
        )
        outcome = self.finish_record(record, body, attempt=attempt)
        await self.after_body()
        return outcome

    async def resume_step(self, step: Step, record: StepRecord, scope: Scope) -> Outcome:
        """Run a suspended step again with the resume accepted on its record."""
        validated = self.validate_input(step.input_schema, record.payload, record.path, emit=False)
        if isinstance(validated, Outcome):
            return self.finish_record(record, validated)
        # A resume cut by a crash during its retries goes on from the attempt its record
        # reached, as `execute` does; a resume just accepted starts its attempts over.
        first = record.attempt if record.status is StepStatus.RUNNING else 0
        running = replace(record, status=StepStatus.RUNNING, call_id=new_call_id(), attempt=first)
        if self.status is RunStatus.WAITING:
            await self.wake_for_body()
        self.record_event(EventType.STEP_START, running)
        resumption = Resumption(record.resume_payload, record.suspend_payload)

        def reached(next_attempt: int) -> None:
            self.records[record.path] = replace(running, attempt=next_attempt)
            self.outbox.stage(step=self.records[record.path])

        body, attempt = await self.run_body(
            step, validated[0], scope, record.path, resumption, first_attempt=first, reached=reached
        )
        outcome = self.finish_record(running, body, attempt=attempt)
        await self.after_body()
        return outcome

    async def run_item(
        self, step: Step, data: Json, path: StepPath, scope: Scope, index: int, item: ForeachItem | None
    ) -> Outcome:
        """Run one foreach item's body; the foreach block records the item's outcome. An
        item in flight when the process died goes on from the attempt its row reached. An
        item its step's schema refuses fails each attempt, as a step's refused input does."""
        validated = self.validate_input(step.input_schema, data, path, emit=False)
        value, invalid = (None, validated.error) if isinstance(validated, Outcome) else (validated[0], None)
        resumed = item if item is not None and item.resume_pending else None
        resumption = None if resumed is None else Resumption(resumed.resume_payload, resumed.suspend_payload)
        if resumption is None and self.travel is not None:
            # A foreach a time travel resumes: each of its items that has not run yet, or was
            # cut by a crash, runs resumed (an item it left suspended waits for a Resume).
            resumption = self.travel_resume(path, index)
        first = item.attempt if item is not None and (item.status is StepStatus.RUNNING or resumed) else 0

        def reached(next_attempt: int) -> None:
            # A resumed item's row keeps its accepted resume: before, a crash in a retry's
            # delay lost it, and the item ran again without it and suspended again.
            row = (
                ForeachItem(index, StepStatus.RUNNING, attempt=next_attempt)
                if resumed is None
                else replace(resumed, attempt=next_attempt)
            )
            self.outbox.stage_item(path, row)

        body, _ = await self.run_body(
            step, value, scope, path, resumption, first_attempt=first, reached=reached, invalid=invalid
        )
        # Checked here as `finish_record` checks a step's: the foreach stages what the item's
        # body left of the context with the item (review: an item's body went unchecked).
        refused = self._context_refusal()
        return body if refused is None else failed(refused)

    async def run_body(
        self,
        step: Step,
        value: Any,
        scope: Scope,
        path: StepPath,
        resumption: Resumption | None,
        *,
        first_attempt: int = 0,
        reached: Callable[[int], None] | None = None,
        invalid: RunError | None = None,
    ) -> tuple[Outcome, int]:
        """Call the body until it succeeds, suspends, bails or runs out of retries.

        The attempts start at `first_attempt`; before a retry's delay, `reached` stages the
        index of the next attempt (on the step's record, or its foreach item's row), and it
        is committed, so a crash does not give the step its whole retry budget again. With
        `invalid` (the step's input refused), each attempt fails with it instead of calling
        the body. Returns the outcome and the index of the last attempt.
        """
        resume_value: Any = None
        if resumption is not None:
            try:
                resume_value = _resume_value(step, resumption.data)
            except SchemaViolation as exc:
                # Resume data is checked when Resume accepts it; this fails only when the
                # step's resume schema changed since, and then only this run fails.
                return failed(RunError("ResumeValidationError", str(exc), exc.details)), 0
        retries = step.retries if step.retries is not None else scope.workflow.retry_config.attempts
        delay = scope.workflow.retry_config.delay
        attempt = first_attempt
        while True:
            # Every earlier result must be durable before user code runs again.
            await self.outbox.before_body()
            # And the run must still be this replica's: one that stalled past its leases
            # waits for a renewal, which stops this drive if another replica took the run.
            if self.leases is not None and self.leases.stale(self.lease_at):
                await self.leases.assure(self.run_id, lambda: self.lease_at)
            if self.status is RunStatus.WAITING:
                # A sibling's sleep began since the step started (in a retry's delay, or while
                # the commit above ran): the run is taken back before this attempt too.
                await self.wake_for_body()
                await self.outbox.commit()
            if self.cancel_requested:
                return CANCELED, attempt
            runtime = scope.step_runtime(path)
            ctx = StepContext(
                input_data=value,
                run_id=self.run_id,
                workflow_id=self.workflow_id,
                resource_id=self.resource_id,
                request_context=self.request_context,
                retry_count=attempt,
                resume_data=resume_value,
                suspend_data=json_copy(resumption.suspend_payload) if resumption is not None else None,
                abort_signal=self.abort_signal,
                runtime=runtime,
                suspend_schema=step.suspend_schema,
            )
            # Each attempt gets the step's whole timeout, cut to what is left of the
            # deadline of the nested workflow it is in (if any).
            seconds, left = step.timeout, scope.deadline_left()
            if left is not None and left <= 0:
                return failed(workflow_deadline_error(scope.deadline_of, scope.deadline or 0.0)), attempt
            cut = left is not None and (seconds is None or left < seconds)
            error: BaseException | None = None
            try:
                with logs.in_step(path):
                    if invalid is not None:
                        raise _InputRefused(invalid)
                    if cut:
                        result = await self._call_timed(step, ctx, path, left or 0.0, scope)
                    elif seconds is not None:
                        result = await self._call_timed(step, ctx, path, seconds)
                    else:
                        result = await self._call_body(step, ctx)
            except asyncio.CancelledError as exc:
                if self.absorb_cancel():
                    return CANCELED, attempt
                task = asyncio.current_task(self.loop)
                if task is None or task.cancelling():
                    raise  # the drive itself is being stopped (shutdown, lost lease)
                # Nobody cancelled this task: the body let out a CancelledError of its own
                # (it awaited a task it had cancelled). A failure like any other exception.
                error = exc
            except SuspendPayloadRefused as exc:  # an invalid suspend payload never retries
                return failed(RunError("SuspendValidationError", str(exc), exc.details)), attempt
            except DRIVE_ENDINGS:
                # A commit the body made (its writer's) found the run another replica's, or
                # the database away: the drive ends, as on a commit of its own; the step did
                # not fail, and is not retried here.
                raise
            except (Exception, *USER_EXITS) as exc:
                error = exc
            if error is None:
                if self.cancel_requested and self.absorb_cancel():  # the body swallowed the cancel
                    return CANCELED, attempt
                try:
                    return self._attempt_outcome(result, ctx, runtime), attempt
                except PayloadTooLarge as exc:
                    # The state with what parallel siblings merged since its set_state: this
                    # attempt's error, retried as one set_state raised in the body would be.
                    error = exc
            # Retrying past the deadline of a nested workflow is pointless: it is over.
            retrying = (
                attempt < retries
                and not self.cancel_requested
                and not isinstance(error, WorkflowTimeoutError)
            )
            (logger.warning if retrying else logger.error)(
                "run %s step %s attempt %d failed" + ("; retrying" if retrying else ""),
                self.run_id,
                ".".join(path),
                attempt,
                exc_info=None if isinstance(error, _InputRefused) else error,
                extra=logs.step_extra(self.run_id, path, attempt),
            )
            if retrying:
                if reached is not None:  # internal progress: a commit nobody waits on for a sync
                    reached(attempt + 1)
                    await self.outbox.commit()
                await self.interruptible_sleep(delay)
                if self.cancel_requested:  # during the delay: the attempt after it never ran
                    return CANCELED, attempt
                attempt += 1
                continue
            if isinstance(error, _InputRefused):
                return failed(error.error), attempt
            if isinstance(error, PayloadTooLarge):  # its field, size and limit, as `_within_limits` gives
                return failed(RunError(type(error).__name__, str(error), error.metadata)), attempt
            return failed(RunError.from_exception(error)), attempt

    @staticmethod
    def _attempt_outcome(result: Any, ctx: StepContext, runtime: BoundRuntime) -> Outcome:
        """The outcome of an attempt whose body returned `result`; what it set of the state
        is merged unless the outcome is a failure. PayloadTooLarge when the state with it
        merged would be over its limit (nothing merged)."""
        if ctx.suspension is not None:
            detail = {"payload": ctx.suspension.payload, "labels": list(ctx.suspension.labels)}
            if result is not None:  # Mastra keeps what the body returned: suspendOutput
                try:
                    detail["output"] = to_jsonable(result)
                except Exception as exc:
                    return failed(
                        RunError("OutputSerializationError", f"suspend output is not JSON data: {exc}")
                    )
            outcome = Outcome(Kind.SUSPENDED, output=detail)
        elif isinstance(result, Bail):
            outcome = Outcome(Kind.BAILED, result.result)
        else:
            try:
                outcome = success(to_jsonable(result))
            except Exception as exc:
                return failed(RunError("OutputSerializationError", f"step output is not JSON data: {exc}"))
        runtime.keep_state()
        return outcome

    async def _call_body(self, step: Step, ctx: StepContext) -> Any:
        """Run the body inside the current task; `cancel()` cancels that task while it runs.

        No task per body: a run's steps execute in its driver task (or a concurrent
        block's task), which keeps a step's overhead to one coroutine call.
        """
        task = asyncio.current_task(self.loop)
        assert task is not None
        self._bodies.add(task)
        try:
            return await _invoke(step, ctx)
        finally:
            self._bodies.discard(task)

    async def call_user(self, fn: Callable[[Any], Any], ctx: Any) -> Any:
        """Call a condition or a sleep's duration function (sync or async) as a body is
        called: `cancel()` cancels the task while it awaits (a slow condition went on after a
        Cancel, which waited its grace and answered `running`: cancel audit)."""
        task = asyncio.current_task(self.loop)
        assert task is not None
        self._calls.add(task)
        try:
            result = fn(ctx)
            return await result if inspect.isawaitable(result) else result
        finally:
            self._calls.discard(task)

    async def _call_timed(
        self, step: Step, ctx: StepContext, path: StepPath, seconds: float, nested: Scope | None = None
    ) -> Any:
        """`_call_body` bounded by `seconds`: past it the body's task is cancelled (so its
        `finally` blocks run) and the attempt fails with StepTimeoutError, or with
        WorkflowTimeoutError when the limit was the deadline of the `nested` workflow scope.
        A body that swallows the cancellation still fails: its attempt ran out of time."""
        limit = asyncio.timeout(seconds)
        try:
            async with limit:
                result = await self._call_body(step, ctx)
        except Exception:
            if limit.expired():
                raise self._timeout(path, seconds, nested) from None
            raise
        if limit.expired():
            raise self._timeout(path, seconds, nested)
        return result

    @staticmethod
    def _timeout(path: StepPath, seconds: float, nested: Scope | None) -> TimeoutError:
        if nested is not None and nested.deadline is not None:
            return WorkflowTimeoutError(nested.deadline_of, iso(nested.deadline))
        return StepTimeoutError(".".join(path), seconds)

    def absorb_cancel(self) -> bool:
        """True when the current task's pending cancellation came only from `cancel()`.

        Those cancellations are undone (`uncancel`) and the step ends as canceled; any
        other cancellation (shutdown) must propagate.
        """
        task = asyncio.current_task(self.loop)
        ours = self._cancels.pop(task, 0) if task is not None else 0
        if task is None or not self.cancel_requested or task.cancelling() > ours:
            return False
        for _ in range(ours):
            task.uncancel()
        return True

    def finish_record(
        self, record: StepRecord, outcome: Outcome, *, leaf: bool = True, attempt: int | None = None
    ) -> Outcome:
        """Record a step's outcome (and its event); returns the outcome for the walk.

        Only leaf steps count as suspended for Resume; a nested workflow that suspends
        because of an inner step is recorded as suspended but not listed. `attempt`, when
        given, is the index of the body's last attempt.
        """
        now = time.time()
        tried = record.attempt if attempt is None else attempt
        outcome = self._within_limits(record.path, outcome)
        if outcome.kind is Kind.SUSPENDED:
            if record.resumed_at is not None and now <= record.resumed_at:
                now = record.resumed_at + 1e-6  # a new suspension must read as after the resume it ends
            detail = outcome.output if isinstance(outcome.output, dict) else {}
            done = replace(
                record,
                status=StepStatus.SUSPENDED,
                suspend_payload=detail.get("payload"),
                suspend_output=detail.get("output"),
                suspended_at=now,
                resume_labels=tuple(detail.get("labels", ())),
                attempt=tried,
            )
            self.record_event(EventType.STEP_SUSPENDED, done)
            self.stage_memory()
            if leaf:
                self.note_suspended(done)
            return SUSPENDED
        if record.suspended_at is not None and record.resumed_at is not None:
            # A resumed step that ends keeps no trace of its suspension on its record (Mastra's
            # omitPriorCompletionFields): the STEP_SUSPENDED event in the log still has it.
            record = replace(record, suspend_payload=None, suspend_output=None, suspended_at=None)
        if outcome.kind in (Kind.SUCCESS, Kind.BAILED):
            done = replace(
                record, status=StepStatus.SUCCESS, output=outcome.output, ended_at=now, attempt=tried
            )
        elif outcome.kind is Kind.FAILED:
            done = replace(record, status=StepStatus.FAILED, error=outcome.error, ended_at=now, attempt=tried)
        else:
            done = replace(record, status=StepStatus.CANCELED, ended_at=now, attempt=tried)
        self.record_event(EventType.STEP_RESULT, done)
        self.stage_memory()
        return outcome

    def _within_limits(self, path: StepPath, outcome: Outcome) -> Outcome:
        """The outcome, or a failure when what the step produced is over a size limit
        (`runservice.limits`): nothing over a limit is stored, so every run stays readable."""
        refused = self._context_refusal()
        if refused is not None:
            return failed(refused)
        where = f"steps.{'.'.join(path)}"
        if outcome.kind is Kind.SUSPENDED:
            detail = outcome.output if isinstance(outcome.output, dict) else {}
            checked = [(f"{where}.suspend_payload", detail.get("payload"))]
            if detail.get("output") is not None:
                checked.append((f"{where}.suspend_output", detail["output"]))
        elif outcome.kind in (Kind.SUCCESS, Kind.BAILED):
            checked = [(f"{where}.output", outcome.output)]
        elif outcome.kind is Kind.FAILED and outcome.error is not None:
            return failed(self.kept_error(outcome.error))
        else:
            return outcome
        field = checked[0][0]
        try:
            size = 0
            for field, value in checked:
                size += limits.check(field, value, limits.STEP_OUTPUT)
            total = self._base_size + self._sizes_total - self._sizes.get(path, 0) + size
            if total > limits.RUN_TOTAL:
                raise PayloadTooLarge("run", total, limits.RUN_TOTAL)
        except PayloadTooLarge as exc:
            return failed(RunError("PayloadTooLarge", str(exc), exc.metadata))
        except ValueError as exc:  # text no store can encode: the step fails, its records stay
            return failed(RunError("OutputSerializationError", f"{field} is not JSON data: {exc}"))
        self._sizes_total += size - self._sizes.get(path, 0)
        self._sizes[path] = size
        return outcome

    def kept_error(self, error: RunError) -> RunError:
        """`error` as a step's record or a foreach item keeps it: whole while the run's errors
        stay within `limits.RUN_ERRORS`, else `error.brief()`. Each error is bounded, but all
        of a foreach's items failing at once were kept whole (review: 100 items failing with
        80 KiB each made the run unreadable in all but its summary)."""
        size = _error_size(error)
        if self._errors_total + size > limits.RUN_ERRORS:
            error = error.brief()
            size = _error_size(error)
        self._errors_total += size
        return error

    def _context_refusal(self) -> RunError | None:
        """Why a body's change of the request context cannot be kept (over its limit: the
        context goes back to what it was), or None; the run's size then counts the context
        as it is (review: a body's 60 KB of context went uncounted, and a run was stored
        past its limit)."""
        if not self._context_changed():
            return None
        refused = _refusal("request_context", self.request_context, limits.REQUEST_CONTEXT)
        if refused is not None:
            self.request_context.clear()
            self.request_context.update(json_copy(self._staged_context))
            return refused
        self._base_size = self._input_size + limits.json_size(self.request_context)
        return None

    def validate_input(
        self, schema: Any, data: Json, path: StepPath, *, emit: bool = True, iteration: int = 0
    ) -> tuple[Any, Json] | Outcome:
        """The typed input and its JSON form (defaults applied), or a failed outcome
        (recorded as the step's result when `emit`)."""
        # The body gets a copy: `data` is what the engine holds (an earlier step's output,
        # the run's input), and `checked` is recorded as the step's payload.
        if schema is None:
            return json_copy(data), data
        try:
            value, checked = schema.validate(json_copy(data), "step input")
        except SchemaViolation as exc:
            error = RunError("StepInputValidationError", str(exc), exc.details)
            return self.reject(path, data, error, iteration=iteration) if emit else failed(error)
        return value, checked

    def reject(self, path: StepPath, data: Json, error: RunError, *, iteration: int = 0) -> Outcome:
        """Record a step that failed before its body could run (bad input)."""
        now = time.time()
        record = StepRecord(
            path,
            StepStatus.FAILED,
            payload=data,
            error=error,
            started_at=now,
            ended_at=now,
            iteration=iteration,
            position=self.position(path),
        )
        self.record_event(EventType.STEP_RESULT, record)
        return failed(error)

    # -- recording -----------------------------------------------------------------------------

    def record_event(self, type_: EventType, record: StepRecord, **patch: Any) -> None:
        """Store the step's record and announce it with an event, in the same commit."""
        self.records[record.path] = record
        self.outbox.stage(step=record, **patch)
        self.outbox.event(type_, self.status, record)

    def stage_memory(self) -> None:
        """Stage the run state and request context as they are now, with the outcome of a
        body just recorded: a finished body never runs again, so a re-drive after a crash
        must find what it set in the commit that recorded it (the settling commit may
        never come). Each is written only when a body changed it."""
        self.stage_state()
        if self._context_changed():
            self._staged_context = json_copy(self.request_context)
            self._staged_context_json = _encoded(self._staged_context)
            self.outbox.stage(request_context=dict(self._staged_context))

    def _context_changed(self) -> bool:
        """Whether a body changed the request context since it was last staged. Python's `==`
        takes `1`, `1.0` and `true` for one value and JSON has three (a change from 1 to true
        went unwritten until the run settled), so an equal context is also compared encoded.
        Both in C: a walk in Python that told them apart cost 74 us for a 3 KB context, twice
        at every step (a review). A key order changed counts as a change, and so does data
        the encoder refuses (it is refused as any change past the limits is)."""
        if self.request_context != self._staged_context:
            return True
        encoded = _encoded(self.request_context)
        if encoded is None or self._staged_context_json is None:
            # What orjson refuses (an integer past 64 bits) the store still writes: walked, so
            # that such a value does not rewrite the context at every step (a review).
            return not _same_json(self.request_context, self._staged_context)
        return encoded != self._staged_context_json

    def stage_state(self) -> None:
        """Stage the run state unless it is as last staged (no merge since: `StateSizes.changes`).
        What was staged is in the store or in the outbox, which commits it before anything
        after it (a failed commit ends the drive), so the store holds the state as it is: an
        unchanged state was encoded and written into the run's row again at every step."""
        changes = self.state_sizes.changes
        if changes != self._staged_changes:
            self._staged_changes = changes
            self.outbox.stage(state=dict(self.state))

    def note_suspended(self, record: StepRecord) -> None:
        """List a suspended step (and its suspended foreach items' labels) for Resume."""
        self.suspended[record.path] = None  # kept in place if listed already
        for label in record.resume_labels:
            self.labels[label] = ResumeLabel(record.path)
        for item in record.foreach_items:
            if item.status is StepStatus.SUSPENDED:
                for label in item.labels:
                    self.labels[label] = ResumeLabel(record.path, item.index)

    def position(self, path: StepPath) -> int:
        existing = self.records.get(path)
        if existing is not None and existing.position:
            return existing.position
        self._next_position += 1
        return self._next_position - 1

    async def write_output(self, chunk: Json, path: StepPath) -> None:
        # Checked as a step's output is (PayloadTooLarge or ValueError raised in the body,
        # which may handle it): nothing over a limit or unencodable is stored.
        limits.check(f"steps.{'.'.join(path)}.chunk", chunk, limits.STEP_OUTPUT)
        # As before a body starts: a replica that stalled past its leases renews first, and a
        # run another replica took (or canceled) stops this drive there: the body gets its
        # CancelledError (with `abort_signal` set after a Cancel), not a LeaseLost from its
        # write that it might catch and work on past (cancel audit, D3).
        if self.leases is not None and self.leases.stale(self.lease_at):
            await self.leases.assure(self.run_id, lambda: self.lease_at)
        record = self.records.get(path) or StepRecord(path, StepStatus.RUNNING)
        self.outbox.event(EventType.STEP_OUTPUT, self.status, record, data=chunk)
        await self.outbox.commit()

    def bodies_running(self) -> bool:
        return bool(self._bodies)

    def sleeping(self) -> None:
        """The run sleeps (`waiting`): it takes no room, so runs that wait for some may go."""
        if self.leases is not None:
            self.leases.room_made(self.run.workflow_id)

    @contextlib.contextmanager
    def asleep(self) -> Iterator[None]:
        """Around a sleep of the run: while one lasts, the last body to end beside it leaves
        the run `waiting` again (`after_body`)."""
        self._sleeps += 1
        try:
            yield
        finally:
            self._sleeps -= 1

    async def after_body(self) -> None:
        """`Outbox.after_body`, and when the body that ended was the last one running beside a
        sleep, the run sleeps again: `waiting`, committed with the body's result, its room
        given back (audit: it stayed `running` and kept its room for the rest of the sleep)."""
        rests = self._sleeps > 0 and not self._bodies and self.status is RunStatus.RUNNING
        rests = rests and IN_CONCURRENT_BLOCK.get() and not self.cancel_requested
        if rests:
            self.status = RunStatus.WAITING
            self.outbox.stage(status=RunStatus.WAITING)
        await self.outbox.after_body()
        if rests:
            self.sleeping()

    async def awake(self) -> None:
        """The run's sleep ended (or a body of it is to run): it is `running` again once it
        has room (engine/capacity.py)."""
        if self.leases is not None and self.status is RunStatus.WAITING:
            # Two branches may wake the run at once (a sleep ending, a sibling's body): the
            # keeper waits for room once per run, so the second waits for the first.
            if self._waking is None:
                self._waking = asyncio.Lock()
            async with self._waking:
                await self.leases.room_to_go_on(self)
        self.status = RunStatus.RUNNING

    async def wake_for_body(self) -> None:
        """A sibling branch sleeps, and the run with it (`waiting`), as a body is to start: the
        body takes the run's room back first (it may wait for some), as a sleep that ends does,
        and the run's `running` is staged before the step's start, so the start event tells the
        run as the body finds it (audit: it said `waiting`). The status rides with the commit
        before the body (`Outbox.before_body`)."""
        await self.awake()
        self.outbox.stage(status=RunStatus.RUNNING)

    async def interruptible_sleep(self, seconds: float) -> None:
        """Sleep, waking early if the run is canceled."""
        if seconds <= 0:
            return
        try:
            async with asyncio.timeout(seconds):
                await self.abort_signal.wait()
        except TimeoutError:
            pass


def _error_size(error: RunError | None) -> int:
    """What `error` adds to a run's errors (0 for one that cannot be measured: an older
    version's, which must not stop the run from going on)."""
    if error is None:
        return 0
    try:
        return limits.json_size(error.to_json())
    except (TypeError, ValueError):
        return 0


def _errors_size(record: StepRecord) -> int:
    """The errors a stored record keeps: its own and its foreach items'."""
    return _error_size(record.error) + sum(_error_size(item.error) for item in record.foreach_items)


def _produced_size(record: StepRecord) -> int:
    """What `_within_limits` counted of a stored step record when it was made: a finished
    step's output, a suspended one's payload and output (0 for what it cannot measure: a
    record an older version stored, which must not stop the run from going on)."""
    try:
        if record.status is StepStatus.SUCCESS:
            return 0 if record.output is None else limits.json_size(record.output)
        if record.status is StepStatus.SUSPENDED:
            return sum(
                limits.json_size(value)
                for value in (record.suspend_payload, record.suspend_output)
                if value is not None
            )
    except (TypeError, ValueError):
        pass
    return 0


def _encoded(value: Json) -> bytes | None:
    """`value` encoded as JSON, or None when it is not JSON (a set, an integer past 64 bits)."""
    try:
        return orjson.dumps(value)
    except (TypeError, ValueError):
        return None


def _same_json(a: Json, b: Json) -> bool:
    """Whether `a` and `b` are the same JSON, told apart by type where `==` is not (`1`,
    `1.0`, `true`): the walk in Python `_context_changed` needs when orjson cannot encode."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return a.keys() == b.keys() and all(_same_json(item, b[key]) for key, item in a.items())
    if type(a) is list:
        return len(a) == len(b) and all(map(_same_json, a, b))
    return bool(a == b)


def _refusal(field: str, value: Any, limit: int) -> RunError | None:
    """Why `value` may not be stored as `field` (over `limit`, or not JSON data any reply
    could carry), or None."""
    try:
        limits.check(field, value, limit)
    except PayloadTooLarge as exc:
        return RunError("PayloadTooLarge", str(exc), exc.metadata)
    except (ValueError, TypeError) as exc:
        return RunError("OutputSerializationError", f"{field} is not JSON data: {exc}")
    return None


def _resume_value(step: Step, data: Json) -> Any:
    schema = step.resume_schema
    if schema is None:
        return json_copy(data)  # the record's resume payload: the body gets its own
    value, _ = schema.validate(json_copy(data), "resume data")
    return value


async def _invoke(step: Step, ctx: StepContext) -> Any:
    result = step.execute(ctx)
    # The coroutine test first: it is the common case and much cheaper than isawaitable.
    if inspect.iscoroutine(result) or inspect.isawaitable(result):
        return await result
    return result


def _first_leaf(group: BaseExceptionGroup[Any]) -> BaseException:
    """The first exception of a (possibly nested) exception group."""
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first
