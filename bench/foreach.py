"""foreach over many items, one at a time, in process (engine and store, no gRPC).

Starts a run of `bench-foreach` (a trivial step over every item of its input,
concurrency 1) and times it from `Engine.start` to the settled run, for each item
count; a run is timed `repeat` times and the median kept. Every item's outcome is a
durable commit before the next item's body runs, so the figure is dominated by
per-item commits: the per-item cost is the median time divided by the item count, and
it should not grow with the item count (items are rows of their own, see storage).

Also `python -m bench.foreach [--items 1000,10000] [--repeat 5] [--database-url URL] [--dir DIR]`;
`--dir /dev/shm` puts the SQLite file in memory, which takes the disk's fsync out of the
figure and leaves the engine's and store's own cost per item. The engine runs as
`runservice serve` runs it: on uvloop, with the server's GIL switch interval.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import uvloop

from bench.workflows import foreach_one
from runservice.cli.serve import SWITCH_INTERVAL
from runservice.engine import Engine
from runservice.model import RunStatus
from runservice.storage import open_store

WARM_UP_ITEMS = 1_000
"""Items of the untimed first run. It grows the new file's write-ahead log to its working size, as
a running server's already is: the first run after a small warm-up took 115-118 ms for 1,000
items against 98-110 for the next ones (writes past the end of a file cost more than overwrites)."""


@dataclass
class ForeachResult:
    ms: dict[int, float] = field(default_factory=dict)
    """Item count -> median milliseconds of one run over that many items."""
    runs: dict[int, list[float]] = field(default_factory=dict)
    """Item count -> every timed run (ms)."""
    cpu_ms: dict[int, float] = field(default_factory=dict)
    """Item count -> median CPU milliseconds of the process (all threads) for one run: less
    sensitive than the wall time to other work on a shared machine."""

    def per_item_us(self, count: int) -> float:
        return self.ms[count] * 1000 / count

    def cpu_per_item_us(self, count: int) -> float:
        return self.cpu_ms[count] * 1000 / count


def measure_as_served(
    counts: list[int], repeat: int, database_url: str | None = None, directory: str | None = None
) -> ForeachResult:
    """`measure` on a uvloop loop of its own, with the server's switch interval (restored
    after): blocks, so from a running loop call it through `asyncio.to_thread`."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(measure(counts, repeat, database_url, directory))
    finally:
        sys.setswitchinterval(interval)


async def measure(
    counts: list[int], repeat: int, database_url: str | None = None, directory: str | None = None
) -> ForeachResult:
    """Median ms of a concurrency-1 foreach run over each of `counts` items (on a scratch
    SQLite file in `directory`, or on the database at `database_url`)."""
    result = ForeachResult()
    with tempfile.TemporaryDirectory(prefix="bench-foreach-", dir=directory) as scratch:
        url = database_url or str(Path(scratch) / "runs.db")
        store = open_store(url)
        await store.open()
        try:
            async with Engine(store, [foreach_one]) as engine:
                await engine.start(foreach_one.id, input_data=list(range(WARM_UP_ITEMS)), wait=True)
                for count in counts:
                    data = list(range(count))
                    times = []
                    cpu = []
                    for _ in range(repeat):
                        began, began_cpu = time.perf_counter(), time.process_time()
                        run = await engine.start(foreach_one.id, input_data=data, wait=True)
                        times.append((time.perf_counter() - began) * 1000)
                        cpu.append((time.process_time() - began_cpu) * 1000)
                        if run.status is not RunStatus.SUCCESS or len(run.result or []) != count:
                            raise RuntimeError(f"foreach over {count} items ended {run.status.value}")
                    result.runs[count] = [round(t, 1) for t in times]
                    result.ms[count] = statistics.median(times)
                    result.cpu_ms[count] = statistics.median(cpu)
        finally:
            await store.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.foreach", description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", default="1000,10000", help="item counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per item count (median kept)")
    parser.add_argument("--database-url", metavar="URL", help="a store URL (default: a scratch SQLite file)")
    parser.add_argument(
        "--dir", help="where the scratch SQLite file goes (e.g. /dev/shm: no fsync cost, only the software's)"
    )
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.items.split(",")]
    result = measure_as_served(counts, args.repeat, args.database_url, args.dir)
    for count in counts:
        print(
            f"foreach over {count:,} items, concurrency 1, in process: {result.ms[count]:,.1f} ms"
            f" ({result.per_item_us(count):,.1f} us/item; runs {result.runs[count]});"
            f" CPU {result.cpu_ms[count]:,.1f} ms ({result.cpu_per_item_us(count):,.1f} us/item)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
