"""How many runs one engine drives at once (`--max-active-runs`), and what waits meanwhile.

Without a bound, a burst of starts makes as many drives, each with its step bodies running:
memory and whatever the bodies call give out, and after a crash the next boot claims every
active run at once and gives out again. With one, a Start or Resume that finds the engine
full is still committed (the caller is told it is durable, as always) but not claimed: the
run is `running` with no owner, and the claim loop of whichever replica has room takes it,
as it takes a dead replica's runs. A sleeping run (`waiting`) holds its drive but takes no
room: it does nothing until it wakes. When it wakes it takes room again, so it waits for some
if there is none (`LeaseKeeper.room_to_go_on`): ahead of the runs waiting to start, since it
holds its drive already, each as soon as a drive ends or begins a sleep.

A workflow may bound its own runs too (`create_workflow(..., max_active_runs=N)`): at most N
of its runs driven here at once, sleeping ones aside, counted as the server's bound is. Its
runs past the bound wait for the claim loop the same way, and only behind each other: the
other workflows' runs go on.

On a database several servers share (PostgreSQL), a workflow's bound is theirs together:
its runs are never claimed by an admission, only by the claim loops, which count the runs
of it that live owners drive and claim under a lock of the workflow in the database
(`Store.claim_bounded`). A drive of it that ends or begins a sleep wakes this server's
claim loop, which takes the next waiting run, wherever it was started. A run of it that
wakes counts itself in under the same lock (`Store.wake_bounded`), holding room here while
it does. One that finds no room gives that back, and the database marks it as waiting: every
server's claims count it as holding the workflow's next room, so it goes before the runs
waiting to start wherever room is made, and the server where a drive ended tells its server
(`Store.listen_room`), whose claim loop lets it go on. Counted by the driven runs alone, it
waited for its own server's next claim pass while the other servers' claim loops, each woken
by its own drive's end, took the room for their waiting runs, for as long as they came (an
audit). Holding room here while marked, it kept the other workflows' runs here waiting for as
long as the bound stayed taken (a review). A run this server is too full to drive when it is
tried again has its mark cleared (`Store.unmark_woken`), as have those of a server shutting
down: the other servers' runs of the workflow go on meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from runservice.model import RunStatus
from runservice.storage import Lease

logger = logging.getLogger(__name__)

UNLIMITED = 1 << 62
FULL_NOTICE = 60.0
"""Seconds between two warnings that the engine is full (one while it stays so)."""


class Sleeper(Protocol):
    """A drive whose run's sleep ended (`status` still `waiting`), waiting for room to go on."""

    run_id: str
    workflow_id: str
    lease: Lease | None
    status: RunStatus
    abort_signal: asyncio.Event
    """Set by a cancel or the run's deadline: stopping takes no room worth waiting for."""


class Capacity:
    """Room for more drives: `limit` (0: no limit) minus the drives that are not sleeping
    (`busy()`, counted only when the cheap bound `drives()` says the engine may be full)
    minus the admissions that reserved room and have not launched yet; and the same for
    each workflow of `limits` (workflow id: its bound), its busy drives `busy_in(id)`.

    `busy()` walks every drive, so with more drives than the limit, mostly sleeping ones,
    each admission pays for the walk: 0.3-0.5 ms at 10,000 on the project's machine. A count
    kept for a moment instead left runs waiting while there was room (a sleep that began
    since went unseen, and nothing woke the claim loop), so the walk stays."""

    __slots__ = (
        "_bounded",
        "_busy",
        "_busy_in",
        "_drives",
        "_given_back",
        "_limits",
        "_noticed",
        "_reserved",
        "_reserved_in",
        "_shared",
        "limit",
        "waiting",
        "waiting_in",
    )

    def __init__(
        self,
        limit: int,
        drives: Callable[[], int],
        busy: Callable[[], int],
        *,
        limits: Mapping[str, int] | None = None,
        busy_in: Callable[[str], int] | None = None,
        shared: bool = False,
        given_back: Callable[[], None] | None = None,
    ) -> None:
        """`given_back()` is called when room is given back that runs wait for (`release`)."""
        self.limit = limit
        self._given_back = given_back
        self._shared = shared
        self._drives = drives
        self._busy = busy
        self._limits = dict(limits or {})
        self._busy_in = busy_in or _none_busy
        self._bounded = bool(limit or self._limits)
        self._reserved = 0
        self._reserved_in = dict.fromkeys(self._limits, 0)
        self._noticed: dict[str | None, float] = {}
        self.waiting = False
        """True once a run was left to the claim loop for want of room (or the claim loop
        stopped short for it): a drive that ends then wakes the claim loop."""
        self.waiting_in: set[str] = set()
        """The workflows whose runs were left to the claim loop for want of their own room:
        a drive of theirs that ends wakes the claim loop."""

    @property
    def limits(self) -> Mapping[str, int]:
        """The workflows with a bound of their own, and their bounds."""
        return self._limits

    def shared_bound(self, workflow_id: str) -> int | None:
        """The workflow's bound when the servers sharing the database share it (only the
        claim loops take its runs, counting them in the database); else None."""
        return self._limits.get(workflow_id) if self._shared else None

    def room(self) -> int:
        """How many more runs this engine may drive now."""
        if not self.limit:
            return UNLIMITED
        used = self._reserved + self._drives()
        if used >= self.limit:
            used = self._reserved + self._busy()
        return max(self.limit - used, 0)

    def room_in(self, workflow_id: str) -> int:
        """How many more runs of `workflow_id` its own bound lets this engine drive now
        (UNLIMITED without one); the engine's `room()` bounds them too."""
        limit = self._limits.get(workflow_id)
        if limit is None:
            return UNLIMITED
        used = self._reserved_in[workflow_id] + self._drives()  # every drive: the cheap bound
        if used >= limit:
            used = self._reserved_in[workflow_id] + self._busy_in(workflow_id)
        return max(limit - used, 0)

    def reserve(self, workflow_id: str | None = None) -> bool:
        """Room for one admission of a run of `workflow_id` about to claim it (then `release`
        it once it launched the drive or gave up); False when the engine or the workflow is
        full, and while runs wait for that room: those go first (the claim loop takes the
        oldest), or a steady stream of new starts, each taking the room a drive left before
        the woken claim loop could, would keep them waiting for as long as it lasted."""
        if not self._bounded:
            return True
        if self._shared and workflow_id in self._limits:
            return False  # only a claim loop knows how many other servers drive
        if self.waiting or workflow_id in self.waiting_in:
            return False
        return self.hold(workflow_id)

    def hold(self, workflow_id: str | None) -> bool:
        """Room for a sleeping run of `workflow_id` to go on, held until `release(True,
        workflow_id)`; False when the engine or the workflow is full. Unlike `reserve`, ahead
        of the runs waiting to start (the run holds its drive already), and for a shared
        bound too (held while its holder counts the run in the database: `Store.wake_bounded`)."""
        if not self._bounded:
            return True
        if self.room() <= 0:
            self.note_full()
            return False
        if workflow_id in self._limits:
            if self.room_in(workflow_id) <= 0:
                self.note_full(workflow_id)
                return False
            self._reserved_in[workflow_id] += 1
        self._reserved += 1
        return True

    def release(self, reserved: bool, workflow_id: str | None = None) -> None:
        """Give back what `reserve(workflow_id)` or `hold(workflow_id)` returned; if runs wait
        for the room that makes, `given_back()`. Room an admission held and launched nothing
        with (a Start that found its run started, a Resume that gave up, a claim not applied)
        woke nothing, and the runs waiting meanwhile waited for the claim loop's next look, a
        --claim-interval later (audit S1). Here, not at each caller: every admission releases,
        and only this knows whether anything waits; when nothing does (the common case) it
        wakes nothing, and after a launch, whose drive holds the room, only while room is left."""
        if reserved and self._bounded:
            self._reserved -= 1
            if workflow_id in self._reserved_in:
                self._reserved_in[workflow_id] -= 1
            if self._given_back is not None and self._awaited(workflow_id):
                self._given_back()

    def _awaited(self, workflow_id: str | None) -> bool:
        """Whether runs wait for the room a release of `workflow_id`'s made: the engine's, or
        the workflow's own here (not a shared bound's: that room is counted in the database)."""
        if self.waiting:
            return self.room() > 0
        if workflow_id is None or workflow_id not in self.waiting_in:
            return False  # nothing waits for it: the common case, a dictionary lookup at most
        return self.shared_bound(workflow_id) is None and self.room_in(workflow_id) > 0 and self.room() > 0

    def note_full(self, workflow_id: str | None = None) -> None:
        """Runs wait for room: the engine's, or (given) the workflow's own, here or (for a
        shared bound) across the servers (said at most once a minute for each)."""
        if workflow_id is None:
            self.waiting = True
        else:
            self.waiting_in.add(workflow_id)
        now = time.monotonic()
        if now - self._noticed.get(workflow_id, float("-inf")) < FULL_NOTICE:
            return
        self._noticed[workflow_id] = now
        if workflow_id is None:
            logger.warning(
                "driving %d runs (--max-active-runs): new and resumed runs wait for the claim loop",
                self.limit,
            )
        else:
            logger.warning(
                "driving %d runs of workflow %r (its max_active_runs%s): its new and resumed runs"
                " wait for the claim loop",
                self._limits[workflow_id],
                workflow_id,
                ", with the servers sharing the database" if self._shared else "",
            )


class Reservation:
    """Room for an admission that learns its run's workflow only once it read the run (a
    Resume): `take` reserves it once, however often the admission tries; `release` gives
    it back."""

    __slots__ = ("_capacity", "_held", "_taken", "_workflow_id")

    def __init__(self, capacity: Capacity) -> None:
        self._capacity = capacity
        self._taken = False
        self._held = False
        self._workflow_id: str | None = None

    def take(self, workflow_id: str) -> bool:
        """Whether there is room for a run of `workflow_id` (`Capacity.reserve`)."""
        if not self._taken:
            self._taken = True
            self._workflow_id = workflow_id
            self._held = self._capacity.reserve(workflow_id)
        return self._held

    def release(self) -> None:
        self._capacity.release(self._held, self._workflow_id)
        self._held = False


def _none_busy(workflow_id: str) -> int:
    return 0
