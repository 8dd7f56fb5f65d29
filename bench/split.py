"""`serve` and `serve --engine-process` measured one after the other, in one sitting.

3-step runs at each concurrency (64 and 1 by default) on a fresh server of each layout in
turn, `rounds` times: runs/s, p50 and p99, and the server's CPU per run (the front and the
engine process together). A same-sitting A/B for BENCHMARKS.md; `python -m bench
--engine-process` gives the full benchmark in that layout.

`python -m bench.split [--seconds 8] [--rounds 2]`
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import uvloop

from bench.load import LoadResult, drive
from bench.proc import ServerProcess
from bench.service_runs import Driver, serving


@dataclass
class Figure:
    layout: str
    concurrency: int
    result: LoadResult
    seconds: float
    cpu_us: float
    """Server CPU (every process and thread) per run."""
    loop_busy: float
    """The busiest event loop thread's CPU over the wall time, 0-1."""

    @property
    def rate(self) -> float:
        return self.result.done / self.seconds

    def line(self) -> str:
        p50, p99 = (self.result.percentile(fraction) * 1e3 for fraction in (0.5, 0.99))
        return (
            f"{self.layout:14s} {self.concurrency:2d} in flight: {self.rate:6,.0f} runs/s, "
            f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, server CPU {self.cpu_us:,.0f} us per run, "
            f"busiest loop {self.loop_busy:.0%}"
        )


async def _measure(
    layout: str, driver: Driver, server: ServerProcess, concurrency: int, seconds: float
) -> Figure:
    warm = await drive(driver.three_steps, total=300, concurrency=concurrency, max_seconds=10)
    if warm.errors:
        raise RuntimeError(f"{layout}: warm-up runs failed: {warm.first_error}")
    before = server.cpu_seconds()
    started = time.perf_counter()
    result = await drive(driver.three_steps, total=10**7, concurrency=concurrency, max_seconds=seconds)
    elapsed = time.perf_counter() - started
    after = server.cpu_seconds()
    if result.errors:
        raise RuntimeError(f"{layout}: runs failed: {result.first_error}")
    cpu_us = loop_busy = float("nan")
    if before is not None and after is not None and result.done:
        cpu_us = (after[0] - before[0]) / result.done * 1e6
        loop_busy = (after[1] - before[1]) / elapsed
    return Figure(layout, concurrency, result, elapsed, cpu_us, loop_busy)


async def compare(seconds: float, rounds: int, concurrencies: Sequence[int] = (64, 1)) -> list[Figure]:
    """Each layout in turn, `rounds` times, on a fresh SQLite server each time."""
    figures: list[Figure] = []
    for _ in range(rounds):
        for layout, engine_process in (("one process", False), ("engine process", True)):
            async with serving(None, engine_process=engine_process) as (server, driver):
                for concurrency in concurrencies:
                    figures.append(await _measure(layout, driver, server, concurrency, seconds))
                    print(figures[-1].line(), flush=True)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.split", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per measurement (default 8)")
    parser.add_argument("--rounds", type=int, default=2, help="times each layout is measured (default 2)")
    options = parser.parse_args(sys.argv[1:] if argv is None else argv)
    uvloop.run(compare(options.seconds, options.rounds))


if __name__ == "__main__":
    main()
