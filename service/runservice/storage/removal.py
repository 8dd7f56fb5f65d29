"""A deleted run's rows are removed after its delete, in chunks, off the writer's path.

A delete runs in the store's one writer, and every other write waits behind it: every
run's progress, every Start. Deleting a run's rows in the delete's own transaction made
that wait grow with the run (a loop of months logs millions of events): 0.6-0.9 s a
million events on PostgreSQL, 1.6-1.7 s on SQLite, whose event loop stood still most of it.
So a delete does a bounded step in the writer, and leaves the rest to a `Removal`:

- A run with few rows (what is left of `INLINE_ROWS` in its batch, counted with bounded
  reads) goes whole with the delete's commit, as before: most runs, and their ids are free
  again at once.
- A larger one loses its `runs` row (every reader finds it gone from that commit on) and
  its id goes into `deleted_runs`; its steps, foreach items, values, requests and events
  (its *leftovers*) stay, and the store's `Removal` deletes them a chunk at a time, each
  chunk a short transaction of its own, then the id from `deleted_runs`. On SQLite a chunk
  is an operation of the writer's queue, so other writes go in between; on PostgreSQL a
  pooled connection of its own, never the writer's.

Leftovers are never taken for rows of a run, because while an id is in `deleted_runs`:

- no run is made under it: a create of it is parked here (`LeftoversPending`) until the
  rows are gone, then committed (a caller waits at most `PARK_WAIT`, then is told to retry);
- reads hide every row under it (events, request marks), except the marks of deletes
  (kind `delete`), which a retried DeleteRun looks for and which are not leftovers;
- the removal deletes events last, from the highest sequence down, and the first one in the
  transaction that takes the id out of `deleted_runs`. A write that slips past the check
  (on PostgreSQL a create whose snapshot predates the delete's commit, or an older
  replica's) cannot log an event under the id meanwhile: its first one collides with the
  old first event (an older replica's change is refused; this store's is parked like a
  create). A run with no
  event of its own has no row of its own either, so nothing the removal deletes is a new
  run's.

A process killed in the middle leaves the id in `deleted_runs`: the next `Removal` on the
database (after a restart, or another replica's, which looks every `poll` seconds) goes on
where it stopped. Delete marks stay until the retention sweep forgets them (a day).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from runservice.errors import StorageUnavailable
from runservice.storage import batching

logger = logging.getLogger(__name__)

INLINE_ROWS = 5000
"""Rows (steps, items, values, requests and events together) one batch of the writer removes
with its deletes: a run that has more than what is left of it goes in chunks afterwards. A few
milliseconds of the writer on either store; a 3-step run has about 15 rows."""
PARK_WAIT = 30.0
"""Seconds a create of an id whose earlier run's rows are still being removed waits for them
before it is refused as StorageUnavailable (retry). A million events take a few seconds."""
FIND = 32
"""Runs with leftovers taken per pass: each gets one chunk, in turn."""
HELD_RETRY = 0.2
"""Seconds between looks at an id whose rows another session removes (a create waits on it)."""
RETRY_FIRST, RETRY_MOST = 0.5, 30.0
"""Seconds before the removal tries again after a failure (doubling from the first to the
most while they go on): the database away, a full disk."""

LEFTOVER_TABLES = ("steps", "foreach_items", "run_values", "requests")
"""The tables whose rows of a deleted run are removed before its events (see the module)."""

LEFTOVER_KEYS = (
    ("steps", "run_id, path_key", ""),
    ("foreach_items", "run_id, path_key, item_index", ""),
    ("run_values", "run_id, digest", ""),
    ("requests", "run_id, kind, request_id", " AND kind <> 'delete'"),
)
"""Each of `LEFTOVER_TABLES` with its key and what of it is a deleted run's (a delete's own
request marks are not: they stay for a retry of it), as both stores' chunks delete them."""


class LeftoversPending(StorageUnavailable):
    """A change of a run whose id an earlier, deleted run's rows still hold (`deleted_runs`):
    the store parks it until they are gone. A caller sees it only if that takes longer than
    `PARK_WAIT`, or the store closes meanwhile: retrying is safe."""

    def __init__(self, run_id: str, detail: str = "") -> None:
        super().__init__(
            detail or f"the rows of a run deleted under the id {run_id!r} are still being removed"
        )
        self.run_id = run_id


class RowsHeld(StorageUnavailable):
    """A chunk of a deleted run's rows waited past its `lock_timeout` for a row another
    session holds (an operator's open transaction): that run is tried again later, alone."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"a row of the deleted run {run_id!r} is held by another session")
        self.run_id = run_id


class RemovalBudget:
    """What a batch of the writer may still remove with its deletes (`INLINE_ROWS`)."""

    __slots__ = ("rows",)

    def __init__(self, rows: int | None = None) -> None:
        self.rows = INLINE_ROWS if rows is None else rows


class Removal:
    """Removes the leftovers of deleted runs, in a task the store starts and stops.

    `find(limit)`: ids in `deleted_runs`, oldest first; `count()`: how many it holds.
    `remove(run_id)`: one chunk of that run's leftovers, and the rows it deleted; True once
    none is left (its id is out of `deleted_runs`), False while some are, None when another
    session is removing them (PostgreSQL). `requeue(pending)`: hand a parked change back to
    the writer's queue. `report(runs, rows)`: after each pass, the deleted runs whose rows are
    still being removed and the rows the pass removed (`EventHub.removing`: the metrics).
    `poll`: seconds between looks for leftovers nobody here announced (another replica's
    crash); None: only when woken.
    """

    def __init__(
        self,
        name: str,
        find: Callable[[int], Awaitable[list[str]]],
        count: Callable[[], Awaitable[int]],
        remove: Callable[[str], Awaitable[tuple[bool | None, int]]],
        requeue: Callable[[batching.Pending], None],
        report: Callable[[int, int], None],
        *,
        poll: float | None,
        park_wait: float = PARK_WAIT,
    ) -> None:
        self._name = name
        self._find = find
        self._count = count
        self._remove = remove
        self._requeue = requeue
        self._report = report
        self.poll = poll
        self.park_wait = park_wait
        self.removed = 0
        """Runs whose leftovers this removal took out (the last chunk was its own)."""
        self.chunks = 0
        self._parked: dict[str, list[tuple[float, batching.Pending]]] = {}
        self._wanted = asyncio.Event()
        self._asked = 0
        """Wakes so far; a pass that began after wake n and found nothing sets `_emptied` to n."""
        self._emptied = -1
        self._passed = asyncio.Condition()
        self._failing: dict[str, tuple[int, float]] = {}
        """Runs whose last chunk failed: failures in a row, and when to try the run again. A
        run that keeps failing (a row held for good) waits alone: the others go on."""
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        """Start the task; it looks for leftovers at once (a crash may have left some)."""
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._loop(), name=f"{self._name} removal of deleted runs")
            self.wake()

    async def aclose(self) -> None:
        """Stop the task (a chunk in flight is rolled back or committed whole) and refuse
        what is parked: retried, it is parked again by the next process, or goes through."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # gather: a cancellation of this caller is not swallowed with the task's own.
            await asyncio.gather(task, return_exceptions=True)
        parked, self._parked = self._parked, {}
        for run_id, waiting in parked.items():
            for _, (_, future) in waiting:
                if not future.done():
                    future.set_exception(
                        LeftoversPending(run_id, "the store closed while the change waited; retry")
                    )

    def wake(self) -> None:
        """Something may be left to remove (a delete committed, a create is parked)."""
        self._asked += 1
        self._wanted.set()

    def park(self, run_id: str, pending: batching.Pending) -> None:
        """Hold `pending` (a change the writer found blocked by leftovers of `run_id`) until
        they are gone, then requeue it."""
        if self._closed:
            if not pending[1].done():
                pending[1].set_exception(LeftoversPending(run_id, "the store is closing; retry"))
            return
        self._parked.setdefault(run_id, []).append((time.monotonic() + self.park_wait, pending))
        self.wake()

    def hold(self, batch: list[batching.Pending], outcomes: list[Any]) -> tuple[list[Any], list[Any]]:
        """Park the changes of a committed batch blocked by leftovers (their outcome is
        `LeftoversPending`); the rest of the batch and their outcomes, to be answered."""
        if not any(isinstance(outcome, LeftoversPending) for outcome in outcomes):
            return batch, outcomes
        kept: list[batching.Pending] = []
        told: list[Any] = []
        for pending, outcome in zip(batch, outcomes, strict=True):
            # Parked even when its caller went away: a change handed to the store is committed
            # whatever becomes of the caller (`Store.submit`).
            if isinstance(outcome, LeftoversPending):
                self.park(outcome.run_id, pending)
            else:
                kept.append(pending)
                told.append(outcome)
        return kept, told

    async def drained(self) -> None:
        """Return once a pass that began after this call found nothing left to remove (for
        tests and tools; a database that keeps failing keeps it waiting)."""
        self.wake()
        target = self._asked
        async with self._passed:
            await self._passed.wait_for(lambda: self._emptied >= target)

    async def _loop(self) -> None:
        failures = 0
        while True:
            await self._wait()
            try:
                while await self._pass():
                    pass
            except Exception as exc:  # the database away, a full disk: log a line, try again
                failures += 1
                delay = min(RETRY_FIRST * 2 ** (failures - 1), RETRY_MOST)
                logger.warning(
                    "removing the rows of deleted runs failed (trying again in %.1fs): %s", delay, exc
                )
                self._expire()
                await asyncio.sleep(delay)
                self._wanted.set()
            else:
                failures = 0

    async def _wait(self) -> None:
        """Until woken, or `poll` passes; while changes are parked, `HELD_RETRY` at most; while
        a run waits after a failure, until it is due."""
        timeout = self.poll
        if self._parked:
            timeout = HELD_RETRY if timeout is None else min(timeout, HELD_RETRY)
        if self._failing:
            due = max(min(until for _, until in self._failing.values()) - time.monotonic(), 0.0)
            timeout = due if timeout is None else min(timeout, due)
        if not self._wanted.is_set():
            try:
                async with asyncio.timeout(timeout):
                    await self._wanted.wait()
            except TimeoutError:
                pass

    async def _pass(self) -> bool:
        """One chunk of each run with leftovers (those a parked change waits for first), but
        those waiting after a failure; whether to go on at once (some made progress and have
        more)."""
        self._wanted.clear()
        began = self._asked
        limit = FIND + len(self._failing)  # runs that wait do not take the place of others
        found = await self._find(limit)
        # Counted only past a page: the look is by index, a count reads the whole table.
        being_removed = len(found) if len(found) < limit else await self._count()
        rows = 0
        ids = [*self._parked, *(run_id for run_id in found if run_id not in self._parked)]
        self._failing = {run_id: entry for run_id, entry in self._failing.items() if run_id in ids}
        more = len(found) >= limit
        left = more
        progressed = False
        now = time.monotonic()
        for run_id in ids:
            if run_id in self._failing and self._failing[run_id][1] > now:
                left = True  # waits after a failure (`_wait` wakes for it)
                continue
            try:
                gone, removed = await self._remove(run_id)
            except Exception as exc:  # this run's alone (a row held): the others go on
                self._failed(run_id, exc)
                left = True
                continue
            self._failing.pop(run_id, None)
            self.chunks += 1
            rows += removed
            progressed = True
            if gone is None:  # another session removes them: a parked change waits for it
                left = True
                continue
            if gone:
                if run_id in found:
                    self.removed += 1
                    being_removed -= 1
                self._release(run_id)
            else:
                more = left = True
        self._expire()
        self._report(being_removed, rows)
        if not left:  # nothing was left once it ended
            async with self._passed:
                self._emptied = began
                self._passed.notify_all()
        return more and progressed  # not at once when every run found waits

    def _failed(self, run_id: str, exc: Exception) -> None:
        """A chunk of `run_id` failed: the run is skipped for a while (doubling from
        `RETRY_FIRST` to `RETRY_MOST` while it keeps failing)."""
        failures = self._failing.get(run_id, (0, 0.0))[0] + 1
        delay = min(RETRY_FIRST * 2 ** (failures - 1), RETRY_MOST)
        self._failing[run_id] = (failures, time.monotonic() + delay)
        if isinstance(exc, RowsHeld):
            logger.warning(
                "a row of the deleted run %r is held by another session: removing its rows again in %.1fs",
                run_id,
                delay,
            )
        else:
            logger.warning(
                "removing the rows of the deleted run %r failed (trying it again in %.1fs): %s",
                run_id,
                delay,
                exc,
            )

    def _release(self, run_id: str) -> None:
        """The leftovers of `run_id` are gone: its parked changes go back to the writer."""
        for _, pending in self._parked.pop(run_id, ()):
            self._requeue(pending)

    def _expire(self) -> None:
        """Refuse the parked changes that waited `park_wait` (StorageUnavailable: retry)."""
        now = time.monotonic()
        for run_id in list(self._parked):
            waiting = self._parked[run_id]
            for until, (_, future) in waiting:
                if until <= now and not future.done():
                    future.set_exception(LeftoversPending(run_id))
            kept = [entry for entry in waiting if entry[0] > now]
            if kept:
                self._parked[run_id] = kept
            else:
                del self._parked[run_id]
