"""A bounded load driver: run an async operation a fixed number of times, N in flight."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

MAX_ERRORS = 20
"""Stop a measurement early after this many failed operations."""


@dataclass
class LoadResult:
    """What one measurement did: successes, failures, wall time and per-operation latencies."""

    done: int = 0
    errors: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    first_error: str | None = None

    @property
    def rate(self) -> float:
        """Successful operations per second."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, fraction: float) -> float:
        """Nearest-rank percentile of the latencies, in seconds (0 when none were recorded)."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
        return ordered[index]


async def drive(
    operation: Callable[[], Awaitable[object]],
    *,
    total: int,
    concurrency: int,
    max_seconds: float,
) -> LoadResult:
    """Call `operation` `total` times with `concurrency` calls in flight, stopping after `max_seconds`.

    The rate counts only successful calls over the wall time of the whole measurement.
    """
    result = LoadResult()
    issued = 0
    started = time.perf_counter()
    deadline = started + max_seconds

    async def worker() -> None:
        nonlocal issued
        while issued < total and result.errors < MAX_ERRORS and time.perf_counter() < deadline:
            issued += 1
            begin = time.perf_counter()
            try:
                await operation()
            except Exception as exc:  # a benchmark reports failures instead of crashing
                result.errors += 1
                result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"
            else:
                result.done += 1
                result.latencies.append(time.perf_counter() - begin)

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, total)))))
    result.elapsed = time.perf_counter() - started
    return result
