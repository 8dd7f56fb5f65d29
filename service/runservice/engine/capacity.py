"""How many runs one engine drives at once (`--max-active-runs`), and what waits meanwhile.

Without a bound, a burst of starts makes as many drives, each with its step bodies running:
memory and whatever the bodies call give out, and after a crash the next boot claims every
active run at once and gives out again. With one, a Start or Resume that finds the engine
full is still committed (the caller is told it is durable, as always) but not claimed: the
run is `running` with no owner, and the claim loop of whichever replica has room takes it,
as it takes a dead replica's runs. A sleeping run (`waiting`) holds its drive but takes no
room: it does nothing until it wakes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

UNLIMITED = 1 << 62
FULL_NOTICE = 60.0
"""Seconds between two warnings that the engine is full (one while it stays so)."""


class Capacity:
    """Room for more drives: `limit` (0: no limit) minus the drives that are not sleeping
    (`busy()`, counted only when the cheap bound `drives()` says the engine may be full)
    minus the admissions that reserved room and have not launched yet.

    `busy()` walks every drive, so with more drives than the limit, mostly sleeping ones,
    each admission pays for the walk: 0.3-0.5 ms at 10,000 on the project's machine. A count
    kept for a moment instead left runs waiting while there was room (a sleep that began
    since went unseen, and nothing woke the claim loop), so the walk stays."""

    __slots__ = ("_busy", "_drives", "_noticed", "_reserved", "limit", "waiting")

    def __init__(self, limit: int, drives: Callable[[], int], busy: Callable[[], int]) -> None:
        self.limit = limit
        self._drives = drives
        self._busy = busy
        self._reserved = 0
        self._noticed = float("-inf")
        self.waiting = False
        """True once a run was left to the claim loop for want of room (or the claim loop
        stopped short for it): a drive that ends then wakes the claim loop."""

    def room(self) -> int:
        """How many more runs this engine may drive now."""
        if not self.limit:
            return UNLIMITED
        used = self._reserved + self._drives()
        if used >= self.limit:
            used = self._reserved + self._busy()
        return max(self.limit - used, 0)

    def reserve(self) -> bool:
        """Room for one admission about to claim a run (then `release` it once it launched
        the drive or gave up); False when the engine is full, and while runs wait for room:
        those go first (the claim loop takes the oldest), or a steady stream of new starts,
        each taking the room a drive left before the woken claim loop could, would keep them
        waiting for as long as it lasted."""
        if not self.limit:
            return True
        if self.waiting:
            return False
        if self.room() <= 0:
            self.note_full()
            return False
        self._reserved += 1
        return True

    def release(self, reserved: bool) -> None:
        if reserved and self.limit:
            self._reserved -= 1

    def note_full(self) -> None:
        """Runs wait for room (said at most once a minute)."""
        self.waiting = True
        now = time.monotonic()
        if now - self._noticed >= FULL_NOTICE:
            self._noticed = now
            logger.warning(
                "driving %d runs (--max-active-runs): new and resumed runs wait for the claim loop",
                self.limit,
            )
