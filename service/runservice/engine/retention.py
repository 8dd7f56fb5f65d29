"""The retention sweep: settled runs are deleted once they ended `retention` seconds ago.

Without it every run ever made stays stored, with its events, steps and values, and the
database only grows. A run that succeeded, failed or was canceled is deleted with its
events, as DeleteRun deletes it (GetRun and Watch of it then answer NOT_FOUND); a suspended
run waits for a person however long it takes and is never deleted, nor is a pending or
active one. Every replica sweeps: a delete is conditional on the run still being
settled, so two replicas deleting the same run delete it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from runservice.engine.deadlines import iso
from runservice.engine.failures import log_failure
from runservice.model import RunStatus
from runservice.storage import RunWrite, Store

logger = logging.getLogger(__name__)

SETTLED = frozenset({RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.CANCELED})
PAGE = 200
"""Runs deleted together: their deletes share the store's group commits, and the runs' own
commits go in between pages when a sweep meets a large backlog."""
LONGEST_PAUSE = 300.0
"""Seconds between sweeps at most (a long retention); a short one sweeps more often."""
SHORTEST_PAUSE = 0.25


def pause_for(retention: float) -> float:
    """Seconds between two sweeps: a quarter of the retention, within bounds."""
    return min(max(retention / 4, SHORTEST_PAUSE), LONGEST_PAUSE)


class Retention:
    """Deletes settled runs `seconds` after they ended, in a loop started and stopped with
    the engine. `deleted` counts the runs it deleted."""

    def __init__(self, store: Store, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError("retention must be positive")
        self.seconds = seconds
        self.pause = pause_for(seconds)
        self.deleted = 0
        self._store = store
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="runservice retention sweep")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log_failure(logger, "the retention sweep failed; trying again in %.1fs", self.pause)
            await asyncio.sleep(self.pause)

    async def sweep(self) -> int:
        """Delete every run that settled more than `seconds` ago; returns how many."""
        cutoff = time.time() - self.seconds
        swept = 0
        while True:
            run_ids = await self._store.settled_before(cutoff, PAGE)
            if not run_ids:
                break
            try:
                async with asyncio.TaskGroup() as deletes:
                    writes = [
                        deletes.create_task(self._store.write(RunWrite(run_id, expect=SETTLED, delete=True)))
                        for run_id in run_ids
                    ]
            except ExceptionGroup as group:  # one database: its first failure says it all
                raise group.exceptions[0] from None
            gone = sum(write.result().applied for write in writes)
            swept += gone
            self.deleted += gone
            if gone == 0:
                break  # every one changed meanwhile (a time travel): the next sweep looks again
        if swept:
            logger.info("retention: deleted %d runs that ended before %s", swept, iso(cutoff))
        return swept
