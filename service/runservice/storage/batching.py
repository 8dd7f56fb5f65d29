"""Group commit, shared by the stores: one writer drains a queue of changes in batches.

Every change queued while a transaction is in flight joins the next one, so one commit
(one fsync, one WAL flush) covers the whole batch; each caller is answered only once its
batch is committed. The store supplies how a batch is committed; this module owns the
queue, the batching, and answering the callers.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from runservice.model import Event
from runservice.storage import RunWrite, WriteResult

logger = logging.getLogger(__name__)

Pending = tuple[Any, asyncio.Future[Any]]
"""A queued change (a RunWrite, or a store's own operation) and its caller's future."""


class Done:
    """The result of a change that is not a RunWrite, told apart from an exception outcome."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class Quiet:
    """A RunWrite of internal progress (`Store.write(change, durable=False)`): committed
    without waiting for its flush to disk; a later synced commit covers it."""

    __slots__ = ("change",)

    def __init__(self, change: RunWrite) -> None:
        self.change = change


class WriteQueue:
    """The changes waiting for one writer task, first in first out.

    `asyncio.Queue` looks the running loop up each time its reader waits, and on Python
    3.11 that lookup is a `getpid()` system call: one per batch, which is one per commit
    of a run one at a time. This queue waits on a future of the writer's own loop.
    """

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[Pending | None] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Pending | None) -> None:
        """Queue a change (None: the writer stops once everything before it is committed)."""
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    def get_nowait(self) -> Pending | None:
        """The oldest change; raises IndexError when there is none."""
        return self._items.popleft()

    async def get(self, loop: asyncio.AbstractEventLoop) -> Pending | None:
        """The oldest change, once there is one (one reader at a time)."""
        while not self._items:
            self._waiter = loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()


async def write_batches(
    queue: WriteQueue,
    commit: Callable[[list[Pending]], Awaitable[None]],
    *,
    max_batch: int,
    stopped: Callable[[], None],
) -> None:
    """Drain `queue` in batches of at most `max_batch`, each through `commit`, until the
    None sentinel. If the writer is cancelled or crashes, `stopped()` is called (the store
    refuses further writes) and every change still waiting fails."""
    batch: list[Pending] = []
    loop = asyncio.get_running_loop()
    try:
        while True:
            item = await queue.get(loop)
            # Take what is queued now; never wait for more, so a lone write is not delayed.
            while item is not None:
                batch.append(item)
                if len(batch) >= max_batch or queue.empty():
                    break
                item = queue.get_nowait()
            if batch:
                await commit(batch)
                batch = []
            if item is None:
                return
    except Exception:
        logger.exception("the store writer crashed; the store refuses further writes")
        raise
    finally:
        # Only reached with work left when the writer is cancelled or crashed.
        error = RuntimeError("store writer stopped; the write may or may not be committed")
        stopped()
        while not queue.empty():
            pending = queue.get_nowait()
            if pending is not None:
                batch.append(pending)
        for _, future in batch:
            if not future.done():
                future.set_exception(error)


def fail(batch: Sequence[Pending], error: BaseException) -> None:
    """Answer every caller of a batch that was not committed."""
    for _, future in batch:
        if not future.done():  # a caller cancelled while waiting
            future.set_exception(error)


def answer(batch: Sequence[Pending], outcomes: Sequence[Any]) -> list[Event]:
    """Answer every caller of a committed batch with its outcome (a WriteResult, a `Done`
    value, or the exception of a change that failed alone); returns the events committed."""
    committed: list[Event] = []
    for (_, future), outcome in zip(batch, outcomes, strict=True):
        if isinstance(outcome, WriteResult):
            committed.extend(outcome.events)
        if future.done():
            continue
        if isinstance(outcome, WriteResult):
            future.set_result(outcome)
        elif isinstance(outcome, Done):
            future.set_result(outcome.value)
        else:
            future.set_exception(outcome)
    return committed


def births(outcomes: Sequence[Any]) -> dict[str, float]:
    """The `created_at` of each run whose events a committed batch holds (its outcomes), for
    `EventHub.publish`. A run id that named two runs in the batch (one deleted, the other made
    under its id) is left out: its subscribers re-read the store rather than trust the hub."""
    born: dict[str, float] = {}
    twice: set[str] = set()
    for outcome in outcomes:
        if isinstance(outcome, WriteResult) and outcome.events and outcome.created_at is not None:
            run_id = outcome.events[0].run_id
            if born.setdefault(run_id, outcome.created_at) != outcome.created_at:
                twice.add(run_id)
    return {run_id: created_at for run_id, created_at in born.items() if run_id not in twice}


def deleted(changes: Sequence[Any], outcomes: Sequence[Any]) -> list[str]:
    """The runs a committed batch deleted: `changes` (Quiet ones unwrapped) and their outcomes.

    The store nudges their subscribers (`EventHub.nudge`), before it publishes the batch's
    events: a follower re-reads the store and finds its run gone, also when the same id
    already names a new run (a delete carries no event that would tell them)."""
    return [
        change.run_id
        for change, outcome in zip(changes, outcomes, strict=True)
        if isinstance(change, RunWrite) and change.delete
        if isinstance(outcome, WriteResult) and outcome.applied
    ]
