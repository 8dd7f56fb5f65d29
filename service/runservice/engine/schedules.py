"""Cron schedules: the loop that fires due ticks, and the operations on schedules.

Declarations: a server writes the schedules it declares (code and configuration) at boot, and
removes the schedules of the workflows it serves that it no longer declares. With one server
(SQLite's exclusive store) it removes them at that boot. Replicas sharing a database may disagree
(a rolling deploy runs two versions), so there a declaration is a lease (`declare`, `refresh`):
each replica marks its declared schedules (`declared_at`) at boot and every `declare_every`
seconds, restores one of them that has gone missing (a replica of a version before leases deleted
it at its boot), and removes only schedules of its workflows that no replica has declared for
`declare_lease` seconds. Removing at boot only, and restoring at every turn, let a replica that
stopped soon after (the old version in a deploy removing the schedule) restore it for good;
removing and restoring at every turn made replicas that disagree delete and re-create it in turn.

Every replica runs the loop; the database decides which replica fires a tick (see
storage/schedules.py): a tick is claimed in the transaction that creates its run, so it
fires once across restarts and replicas, and no tick lives only in one process's timer.

On a shared database the schedules keep the database's time, not each replica's own
(`Store.clock`, read at every refresh of the declarations): a replica whose clock ran ahead
fired every tick early (the skew's worth: a midnight report read the day before it ended), and
one whose clock ran a lease behind saw every declaration lapsed and pruned the schedules other
replicas declare. An offset past `CLOCK_TOLD_PAST` is logged.

The loop wakes at the earliest due tick of the schedules it serves, and at least every
`poll_interval` seconds (the engine's claim interval), so it sees what other replicas and
the API changed (a resume, a buffered tick whose active run ended elsewhere).

When a tick is due:
- on time (its cron time is at most `grace` seconds ago): it fires;
- late (later than that, but it fell while this server's loop ran: the database was away, or
  refused the tick's transaction, the process was stopped, the clock jumped forward): the most
  recent due tick fires, and the late ones before it are passed over (one `advanced` tick
  transaction, one log line saying how many), as Kubernetes' CronJob does; firing each in turn
  started one run per tick back to back (an hour's outage of an every-second schedule: 3,600);
- missed (it fell before this server started, while nothing ran): the `missed` policy decides.
  `skip` fires nothing for those; `run_once` fires one run for the most recent of them.
  Either way `next_tick` moves to the first tick after them.
A tick that could not fire (its transaction failed, or found the schedule's row locked) is
tried again after `poll_interval`, not at once (see `_fire_schedule`).
A firing tick then meets the `overlap` policy (in the same transaction): `allow` starts the
run, `skip` starts nothing while the schedule's last run is active (pending, running,
waiting or suspended), `buffer_one` keeps the tick and starts it when that run ends.

A run started by a schedule has a run id derived from (schedule id, tick time), so a claim
retried after an unknown outcome cannot make a second run, and its schedule id and tick
time are recorded with the tick (`Engine.get_run` and `list_runs` show them). Anyone can
derive that id: a run a caller made with it before the tick holds it for good, so the tick is
passed over (recorded and counted as `run_id_taken`, one warning), not tried again for ever;
a trigger whose derived id is held so answers TriggerRunIdInUse.

A trigger with a request id (TriggerSchedule's idempotency key) starts a run whose id is
derived from (schedule id, request id) instead, and its outcome (started, skipped or
buffered, with its tick and run or active run) is recorded in the tick's transaction
keyed by the same pair (`schedule_triggers`; storage/schedules.py, `TriggerRecord`). A retry
with the same request id, on any replica and after any restart, finds that record and
returns the first outcome; nothing fires again. The record outlives a deletion of the run
(a retry then reports the run started, without the run).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from runservice import logs
from runservice.engine.admission import Caller
from runservice.engine.deadlines import run_deadline
from runservice.engine.failures import log_failure, log_loop_failure
from runservice.engine.versions import identity
from runservice.errors import (
    ScheduleInputInvalid,
    ScheduleNotFound,
    ScheduleWorkflowNotServed,
    StorageUnavailable,
    TriggerRunIdInUse,
    Unavailable,
    WorkflowDefinitionError,
)
from runservice.model import EventDraft, Execution, Json, Run, RunStatus
from runservice.storage import (
    Claim,
    RunWrite,
    ScheduleDefinition,
    Store,
    StoredSchedule,
    TickFire,
    TickResult,
    TriggerRecord,
)
from runservice.workflow import Schedule, Workflow
from runservice.workflow.schedule import count_ticks, next_tick, previous_tick

logger = logging.getLogger(__name__)

GRACE = 5.0
"""Seconds after its cron time during which a tick still counts as on time (not missed)."""

DECLARE_EVERY = 60.0
"""Seconds between two refreshes of a replica's declarations on a shared database (`refresh`)."""

DECLARE_LEASE = 3 * DECLARE_EVERY
"""Seconds a declaration holds: a schedule of a served workflow that no replica declared for
longer is pruned; one declared more recently may be a live replica's (of another version)."""

CLOCK_TOLD_PAST = 2.0
"""Seconds this server's clock may be off the database's before the log says so."""

UNSERVED_EVERY = 300.0
"""Seconds between two warnings of one overdue schedule whose workflow is not served here."""

_COUNT_UP_TO = 1000
"""Late ticks passed over are counted up to this for the log line (see `count_ticks`)."""

_TICK_RUN_IDS = uuid.UUID("0b6c9d3e-57a1-4f0e-8c2d-6a1e9f4b7c53")


def tick_run_id(schedule_id: str, tick: float) -> str:
    """The run id of a schedule's tick: the same for every replica and every retry."""
    return str(uuid.uuid5(_TICK_RUN_IDS, f"{schedule_id}\x00{tick!r}"))


_TRIGGER_RUN_IDS = uuid.UUID("a4e2f7c1-3d8b-4b69-9e05-71c3d2b8f6a4")


def trigger_run_id(schedule_id: str, request_id: str) -> str:
    """The run id of a trigger with a request id: the same for every retry, on every replica."""
    return str(uuid.uuid5(_TRIGGER_RUN_IDS, f"{schedule_id}\x00{request_id}"))


def legacy_trigger_key(schedule_id: str, request_id: str) -> str:
    """Where a version before `schedule_triggers` recorded a trigger's first outcome
    (`requests.run_id`): still read, so its retries fire nothing after an upgrade."""
    return f"schedule-trigger:{trigger_run_id(schedule_id, request_id)}"


@dataclass(frozen=True, slots=True)
class Triggered:
    """What TriggerSchedule did: `outcome` started, skipped or buffered (see `TickResult`)."""

    schedule: StoredSchedule
    tick: float
    outcome: str
    run: Run | None = None
    active_run_id: str | None = None


Launch = Callable[[Run, int, float], "asyncio.Task[Run]"]


class Scheduler:
    """The schedules of one engine: declared at boot, fired by one owned background task."""

    def __init__(
        self,
        store: Store,
        workflows: Mapping[str, Workflow],
        declared: Iterable[Schedule],
        *,
        admit: Callable[[str], contextlib.AbstractContextManager[Claim | None]],
        launch: Launch,
        left_unowned: Callable[[str, float | None], None],
        trace_id: Callable[[], str],
        poll_interval: float = 1.0,
        grace: float = GRACE,
        declare_every: float = DECLARE_EVERY,
        declare_lease: float = DECLARE_LEASE,
    ) -> None:
        """`declared`: the schedules of the workflows and of the configuration (ids unique).
        `with admit(workflow_id) as claim:` holds room for a new run of the workflow while its
        tick commits and its drive launches; `claim` is None when the engine or the workflow
        is full or runs wait for that room (the run is then committed with no owner, for the
        claim loop). `launch(run, epoch, sent)` drives a run this replica created already
        claimed (the claim sent at `sent`, `time.monotonic()`); `left_unowned(run_id, deadline)` is
        told of a run committed with no owner (`Engine._left_unowned`). `declare_every`,
        `declare_lease`: see `DECLARE_EVERY`, `DECLARE_LEASE` (a shared database only)."""
        self._store = store
        self._workflows = dict(workflows)
        self._declared: dict[str, Schedule] = {}
        self._inputs: dict[str, tuple[Json, Json]] = {}
        for schedule in declared:
            if schedule.id in self._declared:
                raise WorkflowDefinitionError(f"two schedules have the id {schedule.id!r}")
            workflow = self._workflows.get(schedule.workflow_id)
            if workflow is None:
                raise WorkflowDefinitionError(
                    f"schedule {schedule.id!r} names workflow {schedule.workflow_id!r}, which is not served"
                )
            # Checked at load time: a schedule whose input fails its workflow's schema would
            # otherwise fail at every tick.
            self._inputs[schedule.id] = workflow.scheduled_run_data(
                schedule.input_data, f"schedule {schedule.id!r}"
            )
            self._declared[schedule.id] = schedule
        self._admit = admit
        self._launch = launch
        self._left_unowned = left_unowned
        self._trace_id = trace_id
        self.poll_interval = poll_interval
        self.grace = grace
        self.declare_every = declare_every
        self.declare_lease = declare_lease
        self._shared = not store.exclusive
        """Other replicas may declare schedules here: declarations are leases (`refresh`)."""
        self._offset = 0.0
        """The database's clock less this server's, as last read (`_read_clock`)."""
        self._clock_read = False
        """Whether `_offset` was ever read: until then it is no reading at all."""
        self._offset_told = 0.0
        self._booted = math.inf
        """When `declare` ran: a row no replica ever marked declared counts as declared then."""
        self._refresh_at = math.inf
        """When the loop refreshes the declarations next (`time.monotonic()`); never on an
        exclusive store (a time there, once past, made the loop look without a pause: review)."""
        self._refresh_failures = logs.LoopFailures(logger)
        self._seen: dict[str, StoredSchedule] = {}
        """The declared schedules as the loop last read them: one another replica deleted is
        restored from here, with its paused state and place (`_restoring`)."""
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failures = logs.LoopFailures(logger)
        self._since = math.inf
        """When the loop started: a tick that fell after it fell while this server ran (late,
        if it could not fire then, never missed)."""
        self._retry_at: dict[str, float] = {}
        """Schedules whose tick could not fire, and when to try again (see `_fire_schedule`)."""
        self._held: dict[str, float] = {}
        """Schedules whose due tick was lost to a transaction holding their row, and that tick:
        held at the next try too, it is warned of (`_fire_schedule`)."""
        self._unserved_told: dict[str, float] = {}
        """Schedules of workflows not served here warned of as overdue, and when (`_warn_unserved`)."""
        self._closed = False

    @property
    def declared(self) -> dict[str, Schedule]:
        return dict(self._declared)

    @property
    def clock_offset(self) -> float:
        """The database's clock less this server's, in seconds (0 on an exclusive store)."""
        return self._offset

    def _now(self) -> float:
        """The time on the database's clock, which every replica's schedules keep."""
        return time.time() + self._offset

    async def _read_clock(self) -> None:
        """Measure this server's clock against the database's (shared databases only: one
        server's own clock is the only one its schedules meet)."""
        if not self._shared:
            return
        sent, before = time.monotonic(), time.time()
        database = await self._store.clock()
        took = time.monotonic() - sent
        offset = database - (before + time.time()) / 2
        # A reading that took long is off by up to half its round trip: the last one stands. A
        # first one is taken all the same when it says more than that: 0 is then off by the
        # whole skew (a review: a slow first reading left a server an hour ahead pruning at its
        # boot on its own clock, the defect the offset is for); when it says less, 0 is as good
        # (a second review: an 8 s reading of a right clock said 4 s ahead).
        if took > CLOCK_TOLD_PAST and (self._clock_read or abs(offset) <= took / 2):
            return
        self._clock_read = True
        self._offset = offset
        self._store.hub.clock_read(self._offset)
        off = abs(self._offset) > CLOCK_TOLD_PAST
        if off and abs(self._offset - self._offset_told) > CLOCK_TOLD_PAST:
            logger.warning(
                "this server's clock is %.1fs %s the database's; its schedules keep the database's"
                " time, but its runs' timestamps and deadlines are its own (is its time synchronised?)",
                abs(self._offset),
                "behind" if self._offset > 0 else "ahead of",
            )
            self._offset_told = self._offset
        elif not off and abs(self._offset_told) > CLOCK_TOLD_PAST:
            logger.info("this server's clock is within %.1fs of the database's again", abs(self._offset))
            self._offset_told = self._offset

    async def declare(self) -> None:
        """Store the declared schedules: definitions from code and configuration win, the paused
        state set through the API is kept; schedules of the workflows served here that are no
        longer declared are removed (those of workflows only other replicas serve are theirs).

        On a shared database only those no replica has declared for `declare_lease` seconds:
        one declared more recently may be a live replica's (a newer version's, in a rolling
        deploy), which `refresh` would restore at once; the others go at a later `refresh`. The
        one server of an exclusive store (SQLite) removes them at once: nobody else declares."""
        await self._read_clock()
        now = self._now()
        self._booted = now
        pruned = await self._store.upsert_schedules(
            [self._definition(s, now) for s in self._declared.values()],
            prune=list(self._workflows),
            lapsed_before=now - self.declare_lease if self._shared else None,
        )
        self._log_pruned(pruned)
        if self._shared:  # the one server of an exclusive store has nothing to renew
            self._refresh_at = time.monotonic() + self.declare_every

    async def refresh(self) -> None:
        """Renew this replica's declarations (every `declare_every` seconds on a shared
        database), restore those of them another replica deleted, and prune the schedules of
        the workflows served here that no replica has declared for `declare_lease` seconds.

        A replica of a version before declarations were leases deletes at its boot every
        schedule of its workflows it does not declare, those that newer replicas declare too: a
        newer replica restores such a schedule at its next refresh (one warning), as it last
        read it (paused or not, its next tick, its buffered tick and last run). Only renewed,
        a declaration no replica makes any more lapses: the schedule is pruned about a lease
        after the last replica declaring it stopped, never while one still runs."""
        await self._read_clock()
        now = self._now()
        restored, pruned = await self._store.refresh_schedules(
            [self._restoring(s, now) for s in self._declared.values()],
            prune=list(self._workflows),
            lapsed_before=now - self.declare_lease,
            booted=self._booted,
        )
        for schedule_id in restored:
            seen = self._seen.get(schedule_id)
            logger.warning(
                "schedule %s: declared here but gone from the database (a replica of an older"
                " version deleted it at its boot?); restored %s",
                schedule_id,
                "as last read here" if seen else "from its declaration, from the next tick after now",
            )
        self._log_pruned(pruned)
        if restored:
            self.wake()

    def _log_pruned(self, pruned: Iterable[str]) -> None:
        for schedule_id in pruned:
            self._seen.pop(schedule_id, None)
            logger.info(
                "schedule %s: removed; its workflow is served here and no server declares it any more",
                schedule_id,
            )

    @staticmethod
    def _definition(s: Schedule, now: float) -> ScheduleDefinition:
        return ScheduleDefinition(
            schedule_id=s.id,
            workflow_id=s.workflow_id,
            cron=s.cron,
            timezone=s.timezone,
            input=s.input_data,
            resource_id=s.resource_id,
            overlap=str(s.overlap),
            missed=str(s.missed),
            description=s.description,
            next_tick=s.next_after(now),
        )

    def _restoring(self, s: Schedule, now: float) -> StoredSchedule:
        """The row to restore the declared schedule `s` from, should it be missing: its
        declaration, with where it stood when the loop last read it (as a declaration at boot
        keeps them: the paused state, the next tick unless the cadence changed, the buffered
        tick under `buffer_one`, the last run for the overlap policy)."""
        d = self._definition(s, now)
        seen = self._seen.get(s.id)
        same_cadence = seen is not None and (seen.cron, seen.timezone) == (d.cron, d.timezone)
        declared = {f.name: getattr(d, f.name) for f in fields(d)}
        return StoredSchedule(
            **{**declared, "next_tick": seen.next_tick if seen is not None and same_cadence else d.next_tick},
            paused=seen is not None and seen.paused,
            last_tick=seen.last_tick if seen else None,
            pending_tick=seen.pending_tick if seen and d.overlap == "buffer_one" else None,
            last_run_id=seen.last_run_id if seen else None,
            created_at=seen.created_at if seen else now,
            updated_at=now,
        )

    def start(self) -> None:
        """Start the loop (after `declare`)."""
        if self._task is None:
            self._since = self._now()
            self._task = asyncio.create_task(self._loop(), name="runservice schedule loop")

    async def aclose(self) -> None:
        """Stop the loop; a tick it was firing commits whole or not at all (a run it created
        but did not launch is re-driven like any run left by a stopped process)."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def wake(self) -> None:
        """Look at the schedules now (a schedule changed, or one of its runs ended)."""
        self._wake.set()

    # -- the loop ------------------------------------------------------------------------------

    async def _loop(self) -> None:
        while not self._closed:
            delay = self.poll_interval
            self._wake.clear()  # before looking: a wake-up during the look is not lost
            if self._shared and time.monotonic() >= self._refresh_at:
                try:
                    await self.refresh()
                except Exception:
                    self._refresh_at = time.monotonic() + delay  # tried again at the next turn
                    log_loop_failure(
                        self._refresh_failures,
                        "refreshing schedule declarations failed; retrying in %.1fs",
                        delay,
                    )
                else:
                    self._refresh_failures.recovered()
                    self._refresh_at = time.monotonic() + self.declare_every
            delay = min(delay, max(self._refresh_at - time.monotonic(), 0.0))
            try:
                due_at = await self.fire_due()
                if due_at is not None:
                    delay = min(delay, max(due_at - self._now(), 0.0))
            except Exception:
                log_loop_failure(self._failures, "firing schedule ticks failed; retrying in %.1fs", delay)
            else:
                self._failures.recovered()
            # Not `asyncio.wait_for`: on Python 3.11 it swallows a cancellation that arrives as
            # the wake-up completes (a run ending during shutdown wakes the loop), and the loop
            # then never stopped. `asyncio.timeout` tells its own timeout from a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def fire_due(self) -> float | None:
        """Fire every due tick of the schedules this engine serves; returns when the next is due.

        A storage failure ends the turn (the loop says so in one line and looks again after
        `poll_interval`): the other schedules would meet the same database."""
        earliest: float | None = None
        for row in await self._store.list_schedules():
            if row.schedule_id in self._declared:
                self._seen[row.schedule_id] = row
            if row.paused:
                continue
            if row.workflow_id not in self._workflows:
                self._warn_unserved(row)
                continue
            due_at = self._retry_at.get(row.schedule_id)
            if due_at is None or due_at <= self._now():
                due_at = await self._fire_schedule(row)
            if due_at is not None:
                earliest = due_at if earliest is None else min(earliest, due_at)
        return earliest

    def _warn_unserved(self, row: StoredSchedule) -> None:
        """One warning (again every `UNSERVED_EVERY` seconds) for a schedule of a workflow this
        server does not serve whose tick no server fired in time: its workflow was retired
        from every server (nobody prunes its schedules then: a server cannot tell that from a
        workflow only other replicas serve), and it would otherwise look active for ever."""
        now, due = self._now(), row.next_tick
        if due is None or now - due <= self.grace + self.poll_interval:
            self._unserved_told.pop(row.schedule_id, None)  # another replica fires it
            return
        if now - self._unserved_told.get(row.schedule_id, -math.inf) < UNSERVED_EVERY:
            return
        self._unserved_told[row.schedule_id] = now
        logger.warning(
            "schedule %s: tick %s of workflow %r is %.0fs overdue and this server does not serve that"
            " workflow; no server fires it. Serve the workflow again (declared without this schedule,"
            " it is removed), or pause it (runservice schedules pause %s)",
            row.schedule_id,
            _iso(due),
            row.workflow_id,
            now - due,
            row.schedule_id,
        )

    async def _fire_schedule(self, row: StoredSchedule) -> float | None:
        """Fire the schedule's buffered tick and its due cron tick; returns when to look at it
        again. A tick that could not fire (it failed, or it was lost while the schedule's row
        stays due: another transaction holds the row) is tried again after `poll_interval`,
        not at once: its `next_tick` is still in the past, and the loop would spin on it."""
        self._retry_at.pop(row.schedule_id, None)
        due = row.next_tick
        try:
            if row.pending_tick is not None:
                await self._fire_buffered(row)
            now = self._now()
            if due is not None and due <= now:
                result = await self._fire_cron(row, now)
                row = await self._store.get_schedule(row.schedule_id) or row
                if result.outcome == "lost" and row.next_tick == due and not row.paused:
                    # Held by another transaction, the row is most often another replica's
                    # firing this tick, not committed yet when read again here: look again
                    # after a poll without a word. Held again at the same tick, or refused,
                    # the tick cannot fire: that is worth a line per try.
                    if result.held and self._held.get(row.schedule_id) != due:
                        self._held[row.schedule_id] = due
                        return self._back_off(row.schedule_id)
                    logger.warning(
                        "schedule %s: tick %s lost with the schedule still due%s; trying again",
                        row.schedule_id,
                        _iso(due),
                        " (another transaction holds its row)" if result.held else "",
                    )
                    return self._back_off(row.schedule_id)
                self._held.pop(row.schedule_id, None)
        except StorageUnavailable:
            raise
        except ScheduleInputInvalid as exc:  # stays so until the declarations agree: no trace
            logger.warning("%s; retrying in %.1fs", exc.message, self.poll_interval)
            return self._back_off(row.schedule_id)
        except Exception:  # one broken schedule must not stop the others
            log_failure(
                logger,
                "schedule %s: firing its tick failed; retrying in %.1fs",
                row.schedule_id,
                self.poll_interval,
            )
            return self._back_off(row.schedule_id)
        if row.next_tick is None or row.paused:
            return None
        return row.next_tick

    def _back_off(self, schedule_id: str) -> float:
        retry_at = self._now() + self.poll_interval
        self._retry_at[schedule_id] = retry_at
        return retry_at

    async def _fire_cron(self, row: StoredSchedule, now: float) -> TickResult:
        """Fire the due tick, or the most recent of several late ones, or apply the missed
        policy to ticks that fell before this server started.

        A tick more than `grace` seconds old that fell while this server was running (its
        loop was kept from firing it: a database outage, a slow turn) is late, not missed:
        it fires now. Of several late ticks only the most recent fires. Only ticks that fell
        while no server ran are missed."""
        due = row.next_tick
        assert due is not None  # it is due
        if now - due <= self.grace:
            tick, kind = due, "cron"
        elif due >= self._since:
            tick, kind = max(previous_tick(row.cron, row.timezone, now), due), "cron"
            if tick == due:
                logger.info("schedule %s: tick %s fires %.0fs late", row.schedule_id, _iso(due), now - due)
            else:
                passed = await self._pass_over(row, due, tick)
                if passed.outcome != "advanced":  # fired or changed meanwhile: look again
                    return passed
                due = tick
        else:
            # The latest tick that fell before this server started, never before the one due
            # (a cadence changed meanwhile); later ones fire on time, or are late (above).
            tick = max(previous_tick(row.cron, row.timezone, min(now, self._since)), due)
            if now - tick <= self.grace:  # the older ones were missed; this one is on time
                kind = "cron"
            elif row.missed == "run_once":
                kind = "missed"
            else:
                logger.info(
                    "schedule %s: ticks from %s to %s missed while nothing ran; skipped (missed=skip)",
                    row.schedule_id,
                    _iso(due),
                    _iso(tick),
                )
                advance = TickFire(
                    row.schedule_id, tick, "missed", None, expect_next=due, advance_to=self._after(row, tick)
                )
                return await self._store.fire_tick(advance)
        return await self._fire(row, tick, kind, expect_next=due, advance_to=self._after(row, tick))

    async def _pass_over(self, row: StoredSchedule, due: float, latest: float) -> TickResult:
        """Move the schedule from the late tick `due` to `latest`, the most recent due one,
        starting nothing for those before it (counted as one `advanced` tick, as `missed=skip`
        counts the ticks it passes over)."""
        late = count_ticks(row.cron, row.timezone, due, latest, _COUNT_UP_TO)
        logger.info(
            "schedule %s: %s late ticks from %s passed over; only the most recent, %s, fires (%.0fs late)",
            row.schedule_id,
            f"{late}" if late < _COUNT_UP_TO else f"{_COUNT_UP_TO} or more",
            _iso(due),
            _iso(latest),
            self._now() - latest,
        )
        return await self._store.fire_tick(
            TickFire(row.schedule_id, due, "cron", None, expect_next=due, advance_to=latest)
        )

    @staticmethod
    def _after(row: StoredSchedule, tick: float) -> float:
        return next_tick(row.cron, row.timezone, tick)

    async def _fire_buffered(self, row: StoredSchedule) -> TickResult:
        assert row.pending_tick is not None
        return await self._fire(row, row.pending_tick, "buffered")

    async def _fire(
        self,
        row: StoredSchedule,
        tick: float,
        kind: Any,
        *,
        expect_next: float | None = None,
        advance_to: float | None = None,
        request_id: str | None = None,
    ) -> TickResult:
        run_id = (
            trigger_run_id(row.schedule_id, request_id) if request_id else tick_run_id(row.schedule_id, tick)
        )
        run = self._new_run(row, run_id)
        with self._admit(row.workflow_id) as claim:
            write = RunWrite(
                run.run_id,
                create=run,
                events=(EventDraft.workflow_start(row.workflow_id, Execution.START),),
                claim=claim,
            )
            fire = TickFire(
                row.schedule_id,
                tick,
                kind,
                write,
                expect_next=expect_next,
                advance_to=advance_to,
                request=request_id or None,
            )
            # The tick's transaction, once handed to the store, may commit whatever happens to
            # this call: a caller cancelled meanwhile (a client's deadline, the loop stopping)
            # still waits for its outcome and launches the run it created (claimed by this
            # replica: nobody else would drive it before its lease ran out), then is cancelled.
            caller = Caller()
            firing = asyncio.get_running_loop().create_task(self._store.fire_tick(fire), name="schedule tick")
            try:
                result = await caller.wait_out(firing)
                if result.outcome == "started" and result.write is not None:
                    logger.info(
                        "schedule %s: tick %s started run %s", row.schedule_id, _iso(tick), run.run_id
                    )
                    if claim is not None:
                        started = replace(run, last_sequence=result.write.last_sequence)
                        task = self._launch(started, result.write.epoch, caller.sent)
                        task.add_done_callback(lambda _: self.wake())  # a buffered tick may wait for it
                    else:  # no room: a claim loop drives it, here or elsewhere
                        self._left_unowned(run.run_id, run.deadline)
                elif result.outcome == "run_id_taken":
                    # Anyone can derive a tick's run id; a caller who made a run with it first
                    # holds it for good. The tick was passed over (see `TickResult`), once.
                    logger.warning(
                        "schedule %s: %s started nothing: its run id %s is held by a run a caller made; %s",
                        row.schedule_id,
                        f"tick {_iso(tick)}" if kind != "trigger" else "a trigger",
                        run.run_id,
                        "the tick is passed over" if kind != "trigger" else "answered RUN_ID_IN_USE",
                    )
                elif result.outcome in ("skipped", "buffered"):
                    logger.info(
                        "schedule %s: tick %s %s (overlap=%s, run %s is active)",
                        row.schedule_id,
                        _iso(tick),
                        result.outcome,
                        row.overlap,
                        result.active_run_id,
                    )
                return result
            finally:
                caller.raise_if_gone()  # the deferred cancellation, whatever happened

    def _new_run(self, row: StoredSchedule, run_id: str) -> Run:
        workflow = self._workflows[row.workflow_id]
        declared = self._declared.get(row.schedule_id)
        if declared is not None and declared.input_data == row.input:
            run_input, state = self._inputs[row.schedule_id]
        else:  # declared by another replica's code or configuration: check it here
            try:
                run_input, state = workflow.scheduled_run_data(row.input, f"schedule {row.schedule_id!r}")
            except WorkflowDefinitionError as exc:
                raise ScheduleInputInvalid(row.schedule_id, str(exc)) from None
        now = time.time()  # a run's own times are its server's, as every run it makes (not `_now`)
        return Run(
            run_id=run_id,
            workflow_id=row.workflow_id,
            status=RunStatus.RUNNING,
            created_at=now,
            updated_at=now,
            resource_id=row.resource_id,
            input=run_input,
            state=state,
            started_at=now,
            trace_id=self._trace_id(),
            deadline=run_deadline(now, workflow.timeout, None),
            **identity(workflow),
        )

    # -- operations ----------------------------------------------------------------------------

    async def list(self) -> list[StoredSchedule]:
        """Every stored schedule, by id."""
        return await self._store.list_schedules()

    async def get(self, schedule_id: str) -> StoredSchedule:
        """The schedule, or ScheduleNotFound."""
        row = await self._store.get_schedule(schedule_id)
        if row is None:
            raise ScheduleNotFound(schedule_id)
        return row

    async def pause(self, schedule_id: str) -> StoredSchedule:
        """Stop firing ticks until `resume` (kept across restarts); a paused schedule stays paused."""
        row = await self._store.set_schedule_paused(schedule_id, True, None)
        if row is None:
            raise ScheduleNotFound(schedule_id)
        self.wake()
        return row

    async def resume(self, schedule_id: str) -> StoredSchedule:
        """Fire ticks again from the next one after now (ticks that fell while paused are not fired)."""
        row = await self.get(schedule_id)
        resumed = await self._store.set_schedule_paused(
            schedule_id, False, next_tick(row.cron, row.timezone, self._now())
        )
        if resumed is None:
            raise ScheduleNotFound(schedule_id)
        self.wake()
        return resumed

    async def trigger(self, schedule_id: str, request_id: str | None = None) -> Triggered:
        """Fire the schedule now, outside its cadence (paused or not), under its overlap policy.
        A retry with the same `request_id` returns the first outcome and fires nothing."""
        if self._closed:
            raise Unavailable("server is shutting down; retry on another instance")
        row = await self.get(schedule_id)
        if request_id:
            legacy = legacy_trigger_key(schedule_id, request_id)
            first = await self._store.trigger_request(schedule_id, request_id, legacy)
            if first is not None:
                return await self._triggered(schedule_id, first)
        if row.workflow_id not in self._workflows:
            raise ScheduleWorkflowNotServed(schedule_id, row.workflow_id)
        tick = self._now()
        run_id = trigger_run_id(schedule_id, request_id) if request_id else tick_run_id(schedule_id, tick)
        result = await self._fire(row, tick, "trigger", request_id=request_id)
        if result.outcome == "repeated" and request_id:  # a retry that raced the first
            first = await self._store.trigger_request(schedule_id, request_id)
            if first is not None:
                return await self._triggered(schedule_id, first)
        if result.outcome == "run_id_taken":  # no record of this request: another run holds the id
            taken = await self._store.get_run(run_id)
            raise TriggerRunIdInUse(schedule_id, run_id, taken.workflow_id if taken else row.workflow_id)
        if result.outcome not in ("started", "skipped", "buffered"):  # removed meanwhile
            raise ScheduleNotFound(schedule_id)
        return await self._triggered(
            schedule_id,
            TriggerRecord(result.outcome, tick, run_id if result.write else None, result.active_run_id),
        )

    async def _triggered(self, schedule_id: str, record: TriggerRecord) -> Triggered:
        run = None
        if record.run_id is not None:
            run = await self._store.get_run(record.run_id)
            if run is not None:
                run = replace(run, schedule_id=schedule_id, schedule_tick=record.tick)
        schedule = await self.get(schedule_id)
        return Triggered(schedule, record.tick, record.outcome, run, record.active_run_id)


def _iso(when: float | None) -> str:
    if when is None:
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


__all__ = [
    "DECLARE_EVERY",
    "DECLARE_LEASE",
    "GRACE",
    "Scheduler",
    "Triggered",
    "tick_run_id",
    "trigger_run_id",
]
