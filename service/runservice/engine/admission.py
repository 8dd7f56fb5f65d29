"""The caller of an admission: a write that makes a run this replica's, and what follows it.

The store commits a write once it is handed over, whatever happens to the caller. If the
caller (an RPC's task) is cancelled while such a write is in flight, the write's result is
still waited for and acted on (the run's drive launched), and only then is the cancellation
raised: cut in between, the run would stay active, owned here and driven by nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TypeVar

_T = TypeVar("_T")


class Caller:
    """One admission's caller: whether it was cancelled while a write it handed over was in
    flight (`gone`), and when it last handed one over (`sent`, `time.monotonic()`)."""

    __slots__ = ("gone", "sent")

    def __init__(self) -> None:
        self.gone = False
        self.sent = 0.0

    async def wait_out(self, handed_over: asyncio.Future[_T]) -> _T:
        """The result of `handed_over`, awaited to its end even if this caller is cancelled
        meanwhile (then `gone` is set: the caller raises the cancellation with `raise_if_gone`
        once it has acted on the result)."""
        self.sent = time.monotonic()
        try:
            return await asyncio.shield(handed_over)
        except asyncio.CancelledError:
            if handed_over.cancelled():
                raise
            self.gone = True
        while not handed_over.done():
            with contextlib.suppress(asyncio.CancelledError):  # raised by `raise_if_gone`
                await asyncio.shield(handed_over)
        return handed_over.result()

    def raise_if_gone(self) -> None:
        """Raise the cancellation `wait_out` deferred, if it deferred one."""
        if self.gone:
            raise asyncio.CancelledError
