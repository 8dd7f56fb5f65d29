"""Step bodies a test holds until it lets them go, for tests that need runs in flight.

A module makes one `Hold` and calls `reset()` before each test (an asyncio.Event belongs to
one event loop, and each test has its own); a step body awaits `enter(n)`, which notes `n` in
`entered` and waits until the test calls `release()`.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel


class Count(BaseModel):
    """The input and output of the tests' small workflows."""

    count: int


class Hold:
    """Holds every body that enters until `release()`; `entered` lists what they noted."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._gate = asyncio.Event()
        self.entered: list[int] = []

    def release(self) -> None:
        self._gate.set()

    async def enter(self, count: int) -> None:
        self.entered.append(count)
        await self._gate.wait()
