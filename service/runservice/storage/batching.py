"""Group commit, shared by the stores: one writer drains a queue of changes in batches.

Every change queued while a transaction is in flight joins the next one, so one commit
(one fsync, one WAL flush) covers the whole batch; each caller is answered only once its
batch is committed. The store supplies how a batch is committed; this module owns the
queue, the batching, and answering the callers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from runservice.model import Event
from runservice.storage import WriteResult

logger = logging.getLogger(__name__)

Pending = tuple[Any, asyncio.Future[Any]]
"""A queued change (a RunWrite, or a store's own operation) and its caller's future."""


class Done:
    """The result of a change that is not a RunWrite, told apart from an exception outcome."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


async def write_batches(
    queue: asyncio.Queue[Pending | None],
    commit: Callable[[list[Pending]], Awaitable[None]],
    *,
    max_batch: int,
    stopped: Callable[[], None],
) -> None:
    """Drain `queue` in batches of at most `max_batch`, each through `commit`, until the
    None sentinel. If the writer is cancelled or crashes, `stopped()` is called (the store
    refuses further writes) and every change still waiting fails."""
    batch: list[Pending] = []
    try:
        while True:
            item = await queue.get()
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
