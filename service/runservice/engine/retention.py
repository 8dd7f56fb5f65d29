"""The retention sweep: settled runs are deleted once they ended `retention` seconds ago.

Without it every run ever made stays stored, with its events, steps and values, and the
database only grows. A run that succeeded, failed or was canceled is deleted with its
events, as DeleteRun deletes it (GetRun and Watch of it then answer NOT_FOUND); a suspended
run waits for a person however long it takes and is never deleted, nor is an active one.
A run reserved (CreateRun) and never started goes once it was reserved `retention` ago: a
client that reserves an id and then fails its Start (bad input, a crash) would otherwise
leave it pending for ever. Every replica sweeps: a delete is conditional on the run still
being settled (or still pending), so two replicas deleting the same run delete it once, and
a Start that comes first keeps its run.

The sweep also forgets the marks that DeleteRun's `request_id` leaves (so that a retry of a
delete that worked succeeds) once they are `DELETE_MARKS_KEPT` old, retention or not: a
retry comes within seconds, and without it every delete a client made stayed a row. So it
does with schedule history of the same age whose run is gone (or that started none): the
outcome TriggerSchedule's `request_id` keeps, and the record of each tick (without it, an
every-minute schedule left 525,000 rows a year).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from runservice import logs
from runservice.engine.deadlines import iso
from runservice.engine.failures import log_loop_failure
from runservice.model import RunStatus
from runservice.storage import Due, RunWrite, Store

logger = logging.getLogger(__name__)

SETTLED = frozenset({RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.CANCELED})
UNSTARTED = frozenset({RunStatus.PENDING})
PAGE = 200
"""Runs deleted together: their deletes share the store's group commits, and the runs' own
commits go in between pages when a sweep meets a large backlog."""
LONGEST_PAUSE = 300.0
"""Seconds between sweeps at most (a long retention); a short one sweeps more often."""
SHORTEST_PAUSE = 0.25
DELETE_MARKS_KEPT = 86_400.0
"""Seconds a delete's request mark is kept: a retry of the delete within it succeeds, one
after it answers NOT_FOUND (a day, as payment APIs keep their idempotency keys)."""
MARKS_PAGE = 1000


def pause_for(retention: float) -> float:
    """Seconds between two sweeps: a quarter of the retention (the longest pause when runs
    are kept for ever), within bounds."""
    if retention <= 0:
        return LONGEST_PAUSE
    return min(max(retention / 4, SHORTEST_PAUSE), LONGEST_PAUSE)


class Retention:
    """Deletes settled runs `seconds` after they ended (never when `seconds` is 0) and
    forgets delete marks `marks` seconds old, in a loop started and stopped with the
    engine. `deleted` counts the runs it deleted, `forgotten` the marks."""

    def __init__(self, store: Store, seconds: float, *, marks: float = DELETE_MARKS_KEPT) -> None:
        if seconds < 0 or marks <= 0:
            raise ValueError("retention must not be negative, nor marks kept for no time")
        self.seconds = seconds
        self.marks = marks
        self.pause = min(pause_for(seconds), pause_for(marks))
        self.deleted = 0
        self.forgotten = 0
        self._store = store
        self._task: asyncio.Task[None] | None = None
        self._failures = logs.LoopFailures(logger)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="runservice retention sweep")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # gather: the task's cancellation is its own; a cancellation of this caller (a
            # stop cut short) still reaches it, where `suppress(CancelledError)` swallowed both.
            await asyncio.gather(task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log_loop_failure(
                    self._failures, "the retention sweep failed; trying again in %.1fs", self.pause
                )
            else:
                self._failures.recovered()
            await asyncio.sleep(self.pause)

    async def sweep(self) -> int:
        """Delete every run that settled more than `seconds` ago and every one reserved that
        long ago and never started (with retention), then forget the delete marks older than
        `marks`; returns how many runs it deleted."""
        swept = 0
        if self.seconds > 0:
            swept += await self._delete_runs(self._store.settled_before, SETTLED, "ended")
            swept += await self._delete_runs(
                self._store.unstarted_before, UNSTARTED, "were reserved and never started"
            )
        await self._forget_deletes()
        return swept

    async def _forget_deletes(self) -> None:
        cutoff = time.time() - self.marks
        total = await _in_pages(self._store.forget_deletes, cutoff)
        history = await _in_pages(self._store.forget_schedule_history, cutoff)
        self.forgotten += total + history
        if total:
            logger.info("retention: forgot %d request marks of runs deleted before %s", total, iso(cutoff))
        if history:
            logger.info(
                "retention: forgot %d records of schedule ticks and triggers before %s", history, iso(cutoff)
            )

    async def _delete_runs(
        self, due: Callable[[float, int], Awaitable[list[Due]]], expect: frozenset[RunStatus], what: str
    ) -> int:
        """Delete, page by page, the runs `due(cutoff, PAGE)` names, each only while it is the
        run found, unchanged: one a time travel made active and settled again, or one deleted
        and made anew under its id, meanwhile, was deleted seconds after it ended (a chaos
        audit: the status alone was checked)."""
        cutoff = time.time() - self.seconds
        swept = 0
        try:
            while True:
                found = await due(cutoff, PAGE)
                if not found:
                    break
                try:
                    async with asyncio.TaskGroup() as deletes:
                        writes = [
                            deletes.create_task(
                                self._store.write(
                                    RunWrite(
                                        run.run_id,
                                        expect=expect,
                                        expect_read=(run.created_at, run.last_sequence),
                                        delete=True,
                                    )
                                )
                            )
                            for run in found
                        ]
                except ExceptionGroup as group:  # one database: its first failure says it all
                    raise group.exceptions[0] from None
                gone = sum(write.result().applied for write in writes)
                swept += gone
                self.deleted += gone
                if gone == 0:
                    break  # every one changed meanwhile (a time travel, a Start): the next sweep looks again
        finally:
            # Also when a shutdown or a failure stops the sweep: what it deleted is on record.
            if swept:
                logger.info("retention: deleted %d runs that %s before %s", swept, what, iso(cutoff))
        return swept


async def _in_pages(forget: Callable[[float, int], Awaitable[int]], cutoff: float) -> int:
    """Call `forget(cutoff, MARKS_PAGE)` until a page comes back short; how many it forgot."""
    total = 0
    while True:
        forgotten = await forget(cutoff, MARKS_PAGE)
        total += forgotten
        if forgotten < MARKS_PAGE:
            return total
