"""Ownership of active runs: the claim loop and the lease heartbeat.

Every active run (running or waiting) is driven by the one replica that holds its
lease; every commit of its progress is fenced by that lease's epoch. The claim loop
takes runs that have no live owner (at boot, and continuously: runs of a replica that
died, runs left by a Restart) and hands them to the engine to drive from their last
checkpoint. The heartbeat renews this replica's leases, stops the local drive of any
run it no longer owns, and passes on a Cancel that reached another replica.

A replica whose process stalls (a pause, a stopped VM, a loop blocked by a rogue body)
past its leases comes back owning nothing, yet its drives carry on until its next
heartbeat tells it so. Their commits are fenced, but a step body would run at once here
and at the replica that took the run over. So no body starts unless its run's lease was
claimed or renewed (the request sent) within half a lease: past that, the driver waits
for a renewal, which either confirms the run is still this replica's or stops its drive
(`assure`). Each drive keeps its own lease time: a claim sent before a stall and answered
after it is as old as its sending, however young the drive.

On a store that is `exclusive` (SQLite: one process, enforced by a lock file), leases
never need renewing: they are claimed for good and voided when the next process opens
the database, so recovery at boot is immediate.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence

from runservice import logs
from runservice.engine.capacity import Capacity, Sleeper
from runservice.engine.failures import log_loop_failure
from runservice.engine.versions import not_served
from runservice.errors import StorageUnavailable
from runservice.model import RunStatus
from runservice.storage import Claim, Definition, Lease, Store

logger = logging.getLogger(__name__)

FOREVER = 1e9
"""Lease length on an exclusive store (about 31 years): only the next boot ends it."""
FRESH_SHARE = 0.5
"""Share of a lease within which a claim or renewal vouches for it: a body starts at once
while its run's lease was claimed or renewed by a request sent less than this share of a
lease ago. Heartbeats go out every third of a lease, so only a replica that stalled waits;
the other half is the margin for that wait."""
RENEW_RETRY = 0.5
"""Seconds between renewals while `assure` cannot reach the store."""
DEADLINE_SLACK = 0.05
"""Seconds past a waiting run's deadline at which the claim loop is woken to end it (`wake_by`)."""
DEADLINES_GATHERED = 0.25
"""Seconds after a passed deadline made the claim loop look during which deadlines passing are
gathered into one look at its end (`_arm`): on PostgreSQL, most may be of runs another server
claimed since, and each made a look, a claim transaction over the waiting backlog (a review:
60 looks in 8 s where about 8 were due)."""
DEADLINES_KEPT = 10_000
"""Deadlines of waiting runs `wake_by` keeps at most: past that (a long overload of runs with
distant deadlines) a run's deadline is found by the claim loop's next look instead, so memory
does not grow with the overload."""
NOT_SERVED_EVERY = 300.0
"""Seconds between two warnings of runs that wait for a definition no claim here takes (the
first is a claim interval after start: a deploy that strands runs says so at once)."""


class LeaseLost(Exception):
    """A commit was fenced: another replica owns the run now and continues it."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id}: lease lost; another replica continues the run")
        self.run_id = run_id


def replica_id(name: str | None = None) -> str:
    """A fresh owner id for this process, never reused: `name/pid-random` for a named replica
    (`Store.take_over` finds its earlier processes' runs by the prefix), else host, pid and a
    random part."""
    if name:
        return f"{name}/{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class LeaseKeeper:
    """Runs the claim loop and the heartbeat of one engine."""

    def __init__(
        self,
        store: Store,
        *,
        owner: str,
        lease_seconds: float,
        claim_interval: float,
        workflows: Collection[str],
        definitions: Collection[Definition] | None = None,
        adopt: Callable[[str, Lease, float], Awaitable[None]],
        local: Callable[[], dict[str, bool]],
        lost: Callable[[str], Awaitable[None]],
        cancel: Callable[[str], None],
        renewed: Callable[[Collection[str], float], None],
        capacity: Capacity | None = None,
        expire: Callable[[str, Lease], Awaitable[None]] | None = None,
    ) -> None:
        """`adopt(run_id, lease, sent)` drives a claimed run (`sent`: when its claim was
        sent, `time.monotonic()`); `expire(run_id, lease)` ends one claimed as past its
        deadline, without a drive (`end_overdue`); `local()` maps the runs this engine drives
        to whether they settled already; `lost(run_id)` stops one that is no longer ours;
        `cancel(run_id)` cancels one a Cancel elsewhere asked to stop; `renewed(run_ids,
        sent)` tells the drives of these runs that their leases were renewed by a request
        sent then. `capacity` bounds how many runs a claim takes (engine/capacity.py)."""
        self._store = store
        self.owner = owner
        self.exclusive = bool(getattr(store, "exclusive", False))
        self.lease_seconds = FOREVER if self.exclusive else lease_seconds
        self._claim_interval = claim_interval
        self._workflows = tuple(workflows)
        self._definitions = None if definitions is None else tuple(definitions)
        self._adopt = adopt
        self._local = local
        self._lost = lost
        self._cancel = cancel
        self._renewed = renewed
        self._capacity = capacity
        self._expire = expire
        self._deadlines: list[tuple[float, str]] = []
        """A heap of the deadlines (epoch seconds) of runs left to the claim loop, with the run
        (`wake_by`); an entry whose run is no longer in `_waiting` is dropped as it comes up."""
        self._waiting: dict[str, float] = {}
        """The runs left to the claim loop with a deadline, until a claim here takes them or
        their deadline passes: a deadline of a run claimed since is no reason to look (a
        review: under an overload, every run's deadline made the loop look once more)."""
        self._deadline_timer: asyncio.TimerHandle | None = None
        """Wakes the claim loop at the earliest of `_deadlines`."""
        self._looked_at = float("-inf")
        """When (`time.time()`) a passed deadline last made the claim loop look (`_arm`)."""
        self._overdue_at = 0.0
        """When (`time.monotonic()`) a full pass looks for runs past their deadline next: at
        once after a deadline of `_deadlines` passed, else a claim interval after the last
        look. Not at every pass: under an overload every drive that ends wakes one, and each
        look is a claim transaction."""
        limited = {} if capacity is None else capacity.limits
        self._groups = [
            group
            for group in (
                [w for w in self._workflows if w not in limited],
                *([w] for w in self._workflows if w in limited),
            )
            if group
        ]
        """The workflows claimed together: those without a bound of their own, then each
        bounded one apart (`claim_due`)."""
        self._first_group = 0
        """The group a claim pass begins with: the next one at each pass."""
        self._wake = asyncio.Event()
        self._sleepers: dict[Sleeper, asyncio.Future[None]] = {}
        """The drives whose run's sleep ended with no room to go on, in the order they woke,
        each with the future that lets it go on (`room_to_go_on`)."""
        self._marked: set[Sleeper] = set()
        """Of those whose bound the servers share, the ones the database marks as waiting for the
        workflow's room (`_let_go_on`). They hold none here meanwhile: held for as long as the
        bound stayed taken elsewhere, it kept every other workflow's runs here waiting (a review:
        with --max-active-runs 1, nothing else ran)."""
        self._stopping = False
        """Set by `stop_claiming`: a woken run that finds no room is not left marked, as nothing
        here lets it go on any more."""
        self._freed: set[str] = set()
        """The workflows with a shared bound a drive of which ended or began a sleep here since
        their last claim: that claim tells the servers of woken runs waiting for room of it."""
        self._outage = False
        """A call of the claim loop or the heartbeat found the database away; cleared by the
        first renewal that gets through (`_unowned_only`)."""
        self._unowned_until = 0.0
        """Until then (monotonic) claims take only runs with no owner (`_unowned_only`)."""
        self._claiming: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._renewing: asyncio.Task[None] | None = None
        """The renewal `assure` started and every waiting driver shares."""
        self._claim_failures = logs.LoopFailures(logger)
        self._renew_failures = logs.LoopFailures(logger)
        """Of the heartbeat and of `assure`'s renewals: they meet the same failures."""
        self._held: frozenset[str] = frozenset()
        """The runs the last renewal found still this replica's but could not renew, as
        another session held their rows (`Renewal.held`)."""
        self._closed = False
        self._not_served_told = -NOT_SERVED_EVERY  # monotonic time of the last warning

    @property
    def claim(self) -> Claim:
        return Claim(self.owner, self.lease_seconds)

    @property
    def passing_claim(self) -> Claim:
        """A claim whose lease has ended by the time anyone reads it: a write made with it
        applies only while no live owner holds the run, as a claim's does, and leaves the run
        to the next claim loop (engine/capacity.py)."""
        return Claim(self.owner, 0.0)

    async def claim_due(self, limit: int = 100) -> int:
        """Claim and adopt due runs until none is left, or the engine is full; returns how
        many were adopted. The runs of a workflow with a bound of its own are claimed apart,
        at most its room at a time. Of the runs left for want of room, those past their
        deadline are ended all the same (`end_overdue`)."""
        full: list[str] = []
        adopted = await self._claim_with_room(limit, full)
        if full and time.monotonic() >= self._overdue_at:
            # Else a run past its deadline stayed `running` (or `suspended`) until a drive
            # ended, for as long as the overload lasted (an audit).
            self._overdue_at = time.monotonic() + self._claim_interval
            await self.end_overdue(list(dict.fromkeys(full)), limit)
        return adopted

    async def _claim_with_room(self, limit: int, full: list[str]) -> int:
        """`claim_due` but for the runs past their deadline: those of the workflows it adds to
        `full`, whose due runs it left for want of room, are for `end_overdue`."""
        adopted = 0
        capacity = self._capacity
        limited = {} if capacity is None else capacity.limits
        if self._sleepers:
            await self._go_on_sleepers()  # they hold their drives already: room goes to them first
        # The groups take turns at being first: on a full server the first takes whatever
        # room a drive leaves, and with a fixed order a workflow with a bound of its own waited
        # behind every run of the others, for good while they kept coming (an audit). The turn
        # passes when a group gets room, not at each pass: passes that find the server full
        # (a Start wakes the loop) would otherwise hand the lead back (review).
        count = len(self._groups)
        order = [(self._first_group + offset) % count for offset in range(count)]
        while True:
            more = False  # some group took a whole page: more of it may be due
            for index in order:
                workflows = self._groups[index]
                page = limit
                if capacity is not None:
                    page = min(limit, capacity.room())
                    if page <= 0:
                        capacity.note_full()  # a drive that ends wakes this loop again
                        if self._freed:
                            await self._tell_freed(full)
                        full[:] = self._workflows
                        return adopted
                    if workflows[0] in limited:
                        page = min(page, capacity.room_in(workflows[0]))
                        if page <= 0:
                            capacity.note_full(workflows[0])  # one of its drives ending wakes this loop
                            full.append(workflows[0])
                            continue
                        shared = capacity.shared_bound(workflows[0])
                        if shared is not None:
                            claimed = await self._claim_bounded(workflows[0], shared, page, full)
                            adopted += len(claimed)
                            more = more or len(claimed) == page
                            if claimed:
                                self._first_group = (index + 1) % count
                            continue
                claimed = await self._claim_page(workflows, page)
                adopted += len(claimed)
                if claimed:
                    self._first_group = (index + 1) % count
                if len(claimed) == page:
                    more = True
                elif capacity is not None and workflows[0] in limited:
                    capacity.waiting_in.discard(workflows[0])  # nothing of it due is left
            if not more:
                if capacity is not None:
                    capacity.waiting = False  # nothing due is left but what waits for its own room
                return adopted

    async def _claim_page(self, workflows: list[str], page: int) -> list[tuple[str, Lease]]:
        """Claim and adopt up to `page` due runs of `workflows`."""
        # Never a run driven here: a lease of its own that lapsed (a stall) is renewed by
        # the heartbeat; claimed again, the run would get a second drive in this process.
        sent = time.monotonic()
        claimed = await self._store.claim_runs(
            self.claim,
            page,
            workflows,
            self._definitions,
            exclude=list(self._local()),
            unowned_only=self._unowned_only(),
        )
        for run_id, lease in claimed:
            self._taken(run_id)
            await self._adopt(run_id, lease, sent)
        return claimed

    async def _claim_bounded(
        self, workflow_id: str, bound: int, page: int, full: list[str]
    ) -> list[tuple[str, Lease]]:
        """Claim and adopt up to `page` due runs of a workflow whose bound the servers share;
        if some are held back by the bound, the workflow is added to `full`."""
        assert self._capacity is not None
        sent = time.monotonic()
        freed = workflow_id in self._freed
        self._freed.discard(workflow_id)  # a drive that ends during the claim counts for the next
        try:
            taken = await self._store.claim_bounded(
                self.claim,
                page,
                workflow_id,
                bound,
                self._definitions,
                exclude=list(self._local()),
                unowned_only=self._unowned_only(),
                freed=freed,
            )
        except BaseException:
            if freed:
                self._freed.add(workflow_id)  # the next claim tells of it
            raise
        for run_id, lease in taken.claimed:
            self._taken(run_id)
            await self._adopt(run_id, lease, sent)
        if taken.held_back:
            self._capacity.note_full(workflow_id)  # a drive of it ending, here or elsewhere, wakes a loop
            full.append(workflow_id)
        return taken.claimed

    async def _tell_freed(self, full: list[str]) -> None:
        """Count the workflows of `_freed` with no claim (this server has no room): their room
        that woken runs hold is told to those runs' servers all the same. Else it waited for
        their next claim pass, every server's claims leaving it to them (a review: 28.5 s with
        --claim-interval 30)."""
        assert self._capacity is not None
        for workflow_id in list(self._freed):
            shared = self._capacity.shared_bound(workflow_id)
            if shared is None:
                self._freed.discard(workflow_id)
            else:
                await self._claim_bounded(workflow_id, shared, 0, full)

    async def end_overdue(self, workflows: Sequence[str], limit: int = 100) -> int:
        """Claim the runs of `workflows` past their deadline (by the database's clock) that
        nobody drives, and have each ended (`expire`), whatever the room: ending one runs no
        body. Returns how many were claimed."""
        if self._expire is None:
            return 0
        ended = 0
        while True:
            claimed = await self._store.claim_runs(
                self.claim,
                limit,
                workflows,
                self._definitions,
                exclude=list(self._local()),
                unowned_only=self._unowned_only(),
                overdue=True,
            )
            for run_id, lease in claimed:
                self._taken(run_id)
                await self._expire(run_id, lease)
            ended += len(claimed)
            if len(claimed) < limit:
                return ended

    def wake_by(self, run_id: str, deadline: float | None) -> None:
        """The run, with this deadline (epoch seconds), was left to the claim loop: wake it once
        the deadline passes, should the run still wait for room then (`end_overdue`), not only
        at its next look. One timer, for the earliest deadline to come."""
        if deadline is None or self._closed:
            return
        if len(self._deadlines) >= DEADLINES_KEPT:
            if len(self._deadlines) < 2 * len(self._waiting):
                # Mostly live: a rebuild frees little, and at each call it cost O(n) (a review:
                # 1.2 ms a call at 10,000). The claim loop's periodic look finds this one.
                return
            # Mostly runs claimed since: dropped, and the next rebuild is as many calls away.
            self._deadlines = [(kept, waiting) for waiting, kept in self._waiting.items()]
            heapq.heapify(self._deadlines)
        self._waiting[run_id] = deadline
        heapq.heappush(self._deadlines, (deadline, run_id))
        if self._deadlines[0] == (deadline, run_id):
            self._arm()

    def _taken(self, run_id: str) -> None:
        """A claim here took the run (to drive it, or to end it): its deadline is no reason to
        look any more."""
        if self._waiting:
            self._waiting.pop(run_id, None)

    def _arm(self) -> None:
        """Set the timer for the earliest deadline still to come. Those passed already (a
        deadline that passed before the run was left, or while the loop was busy) make the next
        pass look at once: dropped unseen, they waited for the look a claim interval later (a
        review: a 1 ms `run_timeout` on a full server was answered after the claim interval)."""
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        now = time.time()
        passed = False
        while self._deadlines and (self._deadlines[0][0] < now or not self._still_waits(*self._deadlines[0])):
            deadline, run_id = heapq.heappop(self._deadlines)
            if self._still_waits(deadline, run_id):
                del self._waiting[run_id]
                passed = True
        if passed:
            self._overdue_at = 0.0  # the next pass looks for runs past their deadline
            self._looked_at = now
            self._wake.set()
        if self._deadlines:
            # A little after it: the claim compares with the database's clock, deadline < now.
            # And no sooner than `DEADLINES_GATHERED` after the last look it made.
            at = max(self._deadlines[0][0] + DEADLINE_SLACK, self._looked_at + DEADLINES_GATHERED)
            self._deadline_timer = asyncio.get_running_loop().call_later(at - now, self._deadline_passed)

    def _still_waits(self, deadline: float, run_id: str) -> bool:
        """Whether the heap's entry is of a run still left to the claim loop with that deadline."""
        return self._waiting.get(run_id) == deadline

    def _deadline_passed(self) -> None:
        self._deadline_timer = None
        self._arm()

    def _unowned_only(self) -> bool:
        """Whether claims leave the runs whose owner's lease ran out alone: while the database
        is away, and for a lease after a renewal got through again. Every lease may have run out
        while it was away, though their owners live on and go on driving; each owner renews its
        own as soon as the database answers (its claim loop's first turn does), so a lease
        later only a dead owner's are still out. Taken at once, the runs of live replicas were
        swapped between them, each step in flight running in two places at once meanwhile."""
        return self._outage or time.monotonic() < self._unowned_until

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, StorageUnavailable) and not self.exclusive:
            self._outage = True

    def wake(self) -> None:
        """Look for runs to claim now (one was left to the claim loop, or room was made)."""
        self._wake.set()

    def room_made(self, workflow_id: str) -> None:
        """A drive of a run of `workflow_id` ended or began to sleep: runs whose sleep ended
        go on in the room it made (at once, unless their bound is shared: the claim loop
        counts those in); if runs wait for room still, look for them now."""
        capacity = self._capacity
        if capacity is None:
            return
        if self._sleepers:
            self._go_on_here()
        shared = capacity.shared_bound(workflow_id) is not None
        if shared:
            self._freed.add(workflow_id)
        if capacity.waiting or workflow_id in capacity.waiting_in or shared or self._sleepers:
            self._wake.set()

    def _room_told(self, workflow_id: str) -> None:
        """A claim, here or on another server, found room of `workflow_id`'s shared bound that
        woken runs waiting for it hold (`Store.listen_room`): if one of them is here, it goes
        on now, not at this server's next claim pass."""
        if any(sleeper.workflow_id == workflow_id for sleeper in self._marked):
            self._wake.set()

    async def room_to_go_on(self, sleeper: Sleeper) -> None:
        """Return once `sleeper`, whose run's sleep ended, may go on, `running` again (it takes
        room: engine/capacity.py), or once a cancel or its deadline stops it (it ends at once,
        room or not). Sleepers of one workflow go on in the order they woke."""
        if self._capacity is None or sleeper.status is not RunStatus.WAITING or sleeper.abort_signal.is_set():
            return
        try:
            behind = any(other.workflow_id == sleeper.workflow_id for other in self._sleepers)
            if not behind and await self._let_go_on(sleeper):
                return
            granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._sleepers[sleeper] = granted
            stopped = asyncio.ensure_future(sleeper.abort_signal.wait())
            try:
                await asyncio.wait((granted, stopped), return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopped.cancel()
                if self._sleepers.get(sleeper) is granted:
                    del self._sleepers[sleeper]
        finally:
            self._marked.discard(sleeper)  # ended or `running`: the mark counts no more

    def _go_on_here(self) -> None:
        """Let the sleepers whose bounds are this server's alone go on, as room allows."""
        capacity = self._capacity
        assert capacity is not None
        full: set[str] = set()
        for sleeper, granted in list(self._sleepers.items()):
            workflow_id = sleeper.workflow_id
            if granted.done() or workflow_id in full or capacity.shared_bound(workflow_id) is not None:
                continue
            if self._hold(sleeper):
                granted.set_result(None)
            else:
                full.add(workflow_id)

    async def _go_on_sleepers(self) -> None:
        """Let the sleepers go on, as room allows, in the order they woke."""
        full: set[str] = set()
        for sleeper, granted in list(self._sleepers.items()):
            if granted.done() or sleeper.workflow_id in full:
                continue
            if self._sleepers.get(sleeper) is not granted or sleeper.abort_signal.is_set():
                continue  # stopped while one before it went on: room held for it now would stay held
            if await self._let_go_on(sleeper):
                if not granted.done():
                    granted.set_result(None)
            else:
                if self._sleepers.get(sleeper) is not granted:
                    # Stopped during the count (a Cancel, its deadline): `room_to_go_on` forgot
                    # it before it was marked, and kept, each `room` NOTIFY of its workflow woke
                    # the claim loop for it, for good (a review).
                    self._marked.discard(sleeper)
                full.add(sleeper.workflow_id)

    async def _let_go_on(self, sleeper: Sleeper) -> bool:
        """Whether `sleeper` may go on now; if so it is `running` again. With a bound the
        servers share, counted in under the workflow's lock in the database."""
        capacity = self._capacity
        assert capacity is not None
        workflow_id = sleeper.workflow_id
        shared = capacity.shared_bound(workflow_id)
        if shared is None or sleeper.lease is None:
            return self._hold(sleeper)
        if sleeper.status is not RunStatus.WAITING:
            return True
        # Room here first, held while the database counts the run: not past this server's
        # bound meanwhile. When the workflow has no room left, the database marks the run as
        # holding its next (so that no server's claim takes it for a run waiting to start:
        # audit D3), and the hold is given back: other workflows' runs here go on meanwhile.
        if not capacity.hold(workflow_id):
            if sleeper in self._marked:
                # Too full to drive it now: the workflow's room it holds goes to the other
                # servers' runs, and it waits unmarked for room here (`note_full` by `hold`).
                await self._unmark([sleeper])
            return False
        granted = False
        try:
            granted = await self._store.wake_bounded(sleeper.run_id, sleeper.lease, workflow_id, shared)
            if granted:
                sleeper.status = RunStatus.RUNNING  # first: counted busy in place of the hold
        finally:
            capacity.release(True, workflow_id)
        if granted:
            return True
        if self._stopping:
            await self._unmark([sleeper])  # a shutdown began meanwhile: nothing here retries it
            return False
        # Tried again when a claim tells of room (`_room_told`), or at the next claim pass.
        self._marked.add(sleeper)
        capacity.note_full(workflow_id)
        return False

    async def _unmark(self, sleepers: Collection[Sleeper]) -> None:
        """Clear the database's marks of `sleepers` (under their leases)."""
        runs = [(sleeper.run_id, sleeper.lease) for sleeper in sleepers if sleeper.lease is not None]
        await self._store.unmark_woken(runs)
        self._marked.difference_update(sleepers)

    def _hold(self, sleeper: Sleeper) -> bool:
        """Whether `sleeper` may go on within this server's room; if so it is `running` again
        (counted busy from now on)."""
        if sleeper.status is not RunStatus.WAITING:
            return True  # another branch of its run went on first: the run has its room
        assert self._capacity is not None
        if not self._capacity.hold(sleeper.workflow_id):
            return False
        sleeper.status = RunStatus.RUNNING  # first: the release then gives back no room it took
        self._capacity.release(True, sleeper.workflow_id)
        return True

    def start(self) -> None:
        """Start the background loops (after a first `claim_due`)."""
        self._store.listen_room(self._room_told)
        self._claiming = asyncio.create_task(self._claim_loop(), name="runservice claim loop")
        if not self.exclusive:
            self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name="runservice heartbeat")

    async def stop_claiming(self) -> None:
        """Take no more runs (a graceful shutdown); leases held are still renewed. The woken runs
        waiting here for their shared bound's room hold it no more: nothing here lets them go on
        now, and marked, they kept the workflow's room from every server for the whole grace (a
        review: with bound 1, the workflow stalled cluster-wide for --grace)."""
        self._stopping = True
        task, self._claiming = self._claiming, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        capacity = self._capacity
        # Every sleeper of a shared bound, not only those known marked: a claim pass cancelled
        # above may have had its mark committed unanswered. A run not marked is left unchanged.
        waiting = [
            sleeper
            for sleeper in self._sleepers
            if capacity is not None and capacity.shared_bound(sleeper.workflow_id) is not None
        ]
        if waiting and not self._closed:
            try:
                await self._unmark(waiting)
            except Exception:  # their marks lapse with their leases, released after the grace
                logger.warning("clearing the marks of %d woken runs failed", len(waiting), exc_info=True)

    async def aclose(self) -> None:
        self._closed = True
        self._store.unlisten_room(self._room_told)
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        await self.stop_claiming()
        for task in (self._heartbeat, self._renewing):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._heartbeat = self._renewing = None

    def stale(self, lease_at: float) -> bool:
        """Whether a lease claimed or renewed by a request sent at `lease_at` (monotonic)
        may no longer be this replica's (see `FRESH_SHARE`); never on an exclusive store."""
        return not self.exclusive and time.monotonic() - lease_at >= self.lease_seconds * FRESH_SHARE

    async def assure(self, run_id: str, lease_at: Callable[[], float]) -> None:
        """Return once the lease of `run_id` (its drive's `lease_at()`) is fresh again: a
        renewal now, shared by every caller. A run the renewal finds lost has its drive
        stopped (`lost`), so the caller, that drive, is cancelled here rather than start a
        body another replica may run. Once the keeper is closed nothing renews: LeaseLost."""
        while self.stale(lease_at()):
            if self._closed:
                raise LeaseLost(run_id)
            if self._renewing is None or self._renewing.done():
                # A context of its own: its log lines are no run's (it serves every drive).
                self._renewing = asyncio.create_task(
                    self._renew(), name="runservice lease renewal", context=contextvars.Context()
                )
            await asyncio.shield(self._renewing)
            if run_id in self._held:  # another session holds its row: ask again in a moment
                await asyncio.sleep(RENEW_RETRY)

    async def _renew(self) -> None:
        try:
            await self.heartbeat()
        except Exception:
            log_loop_failure(self._renew_failures, "renewing leases failed; retrying in %.1fs", RENEW_RETRY)
            await asyncio.sleep(RENEW_RETRY)
        else:
            self._renew_failures.recovered()

    async def _claim_loop(self) -> None:
        while True:
            # Not `asyncio.wait_for`: see Scheduler._loop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._claim_interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                if self._outage:
                    await self.heartbeat()  # its own leases first: they may have run out meanwhile
                await self.claim_due()
                if time.monotonic() - self._not_served_told >= NOT_SERVED_EVERY:
                    self._not_served_told = time.monotonic()
                    await self.warn_not_served()
            except Exception as exc:
                self._failed(exc)
                log_loop_failure(
                    self._claim_failures, "claiming due runs failed; retrying in %.1fs", self._claim_interval
                )
            else:
                self._claim_failures.recovered()

    async def warn_not_served(self) -> None:
        """One warning per definition whose active runs no claim here takes and nobody drives:
        silent, they would stay `running` or `waiting` for ever (and hold back their schedule's
        ticks). Runs of a workflow not served here at all are among them."""
        if self._definitions is None:
            return  # every definition is claimed here
        unowned = await self._store.count_unowned_by_definition()
        for (workflow_id, version, digest), runs in sorted(not_served(unowned, self._definitions).items()):
            graphs = sorted(d for w, v, d in self._definitions if (w, v) == (workflow_id, version) and d)
            if graphs:
                served = f"serves version {version!r} with another step graph ({', '.join(graphs)})"
            elif workflow_id in self._workflows:
                served = f"does not serve version {version!r}"
            else:  # the whole workflow retired while runs of it were still active
                served = f"does not serve workflow {workflow_id!r} at all"
            logger.warning(
                "%d run(s) of workflow %r are active on version %r (step graph %s) and no server drives"
                " them now: this server %s. They wait until a server serving that definition takes"
                " them (another replica that does, in a rolling deploy, within a claim interval);"
                " deploy it (a changed graph needs a new version), or cancel them (runservice runs"
                " -w %s --version %s -s running,waiting lists them)",
                runs,
                workflow_id,
                version,
                digest or "unrecorded",
                served,
                workflow_id,
                version,
            )

    async def _heartbeat_loop(self) -> None:
        interval = self.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self.heartbeat()
            except Exception as exc:
                self._failed(exc)
                log_loop_failure(self._renew_failures, "renewing leases failed; retrying in %.1fs", interval)
            else:
                self._renew_failures.recovered()

    async def heartbeat(self) -> None:
        """Renew this replica's leases; stop what it lost; pass on remote cancels."""
        # Only runs driven here before the renewal was sent can be judged by it: a run claimed
        # while it ran (a Start committed meanwhile) may be missing from its snapshot, and one
        # settling may have let its lease go by the time the renewal reaches it.
        driven = self._local()
        before = {run_id for run_id, settling in driven.items() if not settling}
        sent = time.monotonic()
        # Only the runs driven here: one this replica owns but does not drive (its drive
        # never started, or stopped on an error) expires, and a claim loop takes it over.
        # Settling ones too: a settling commit that the database refuses is tried again,
        # and the run must stay this replica's meanwhile, or another would drive it again.
        renewal = await self._store.renew_leases(self.owner, self.lease_seconds, list(driven))
        owned, held = renewal.owned, renewal.held
        if self._outage:
            self._outage = False
            self._unowned_until = time.monotonic() + self.lease_seconds
        self._renewed(owned.keys() - held if held else owned, sent)
        for run_id in held - self._held:
            logger.warning(
                "run %s: another database session holds its row; its lease is not renewed until"
                " it lets go (an open transaction? if it holds longer than the lease, %.1fs, the"
                " run may be taken over)",
                run_id,
                self.lease_seconds,
            )
        self._held = held
        lost = [
            run_id
            for run_id, settled in self._local().items()
            if run_id in before and run_id not in owned and not settled
        ]
        for run_id in lost:
            logger.warning("run %s: lease lost; stopping the local drive", run_id)
        if lost:
            await asyncio.gather(*(self._lost(run_id) for run_id in lost))
        for run_id, cancel_requested in owned.items():
            if cancel_requested:
                self._cancel(run_id)
