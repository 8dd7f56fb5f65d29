"""`python -m bench.instructions [--measures three1,three64,suspend1,suspend64] [--ops A,B]
[--durability full|normal]`.

Machine instructions per operation, counted by valgrind's callgrind: the in-process engine
and SQLite store (as `python -m bench.inprocess`) run the bench's workflows in a child
process under `valgrind --tool=callgrind`, once for A operations and once for B after the
same warm-up; the difference of the two totals over B - A is the cost of one operation,
start-up and warm-up cancelled out.

Why: this machine's speed drifts by 25-50 % between sittings (BENCHMARKS.md), so timed A/B
comparisons of a change worth a few per cent need many alternated sittings and still
mislead. An instruction count is about the same in every sitting for the same code and
binaries, whatever else the machine is doing: two runs of the same tree agree to 0.2 % for
3-step runs, but suspend+resume one at a time may spread by a few per cent (below). It
counts work, not time: it cannot see a wait (an fsync, a lock) nor a cache miss, so it
complements the timed benchmark and never replaces it.

Under callgrind the program runs about 50 times slower, so time-driven code runs more often
per operation than at full speed; the child takes the outbox's background flush of a step's
start (`START_FLUSH_DELAY`) out of the way, since no step here runs long enough at full
speed to reach it, and keeps a lone synced commit on the event loop (a commit's time under
valgrind is no measure of the disk: `storage/sqlite.py`, `_LOOP_SYNC_LIMIT`). The work done
on clocks (the WAL checkpointer, the engine's claim loop and heartbeat) is put off past the
measure: at full speed it is a few statements per second among hundreds of runs, under
valgrind fifty times as much per operation, and as much more as the machine is slower that
day (two counts of one tree differed by 2-3 % on a slow day before this). After the warm-up
every object is collected and frozen out of the collector's reach (`gc.freeze`): a full
collection walks every object, and whether one falls among the measured operations or not
is a large all-or-nothing share of them (3-step runs: two counts 0.7 % apart before, 0.2 %
after; suspend+resume still spreads by up to 4.5 %, for a reason not found); the young
generations are still collected as they fill. Group
commit at 64 in flight batches differently under valgrind (an fsync takes the same wall time
while everything else is slower), and with the machine's load: 64 in flight varies by about
1 %, compare `commits/op` before reading a difference there. Needs valgrind (Debian's
`valgrind`).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import uvloop

from bench.inprocess import scratch_store
from bench.load import drive
from bench.workflows import WORKFLOWS
from runservice.cli.serve import SWITCH_INTERVAL
from runservice.engine import Engine, outbox
from runservice.model import RunStatus
from runservice.storage import sqlite

MEASURES = {
    "three1": ("3-step runs, 1 in flight", "three", 1),
    "three64": ("3-step runs, 64 in flight", "three", 64),
    "suspend1": ("suspend+resume, 1 in flight", "suspend", 1),
    "suspend64": ("suspend+resume, 64 in flight", "suspend", 64),
}
WARM_UP_OPS = 64
"""Operations before the counted ones in every child: imports, caches and the file's first pages."""

_COLLECTED = re.compile(r"^==\d+== Collected : (\d+)$", re.MULTILINE)


@dataclass(frozen=True)
class Counted:
    """One child's totals: callgrind's instruction count, and the store's commits and fsyncs
    during the counted operations."""

    instructions: int
    commits: int
    syncs: int


@dataclass(frozen=True)
class PerOp:
    """One measure: instructions, commits and fsyncs per operation (from two children)."""

    label: str
    instructions: float
    commits: float
    syncs: float

    def line(self) -> str:
        return (
            f"{self.label:<32} {self.instructions:>12,.0f} instructions/op"
            f"   commits/op {self.commits:5.2f}   fsyncs/op {self.syncs:5.2f}"
        )


def per_op(label: str, few: Counted, many: Counted, ops: tuple[int, int]) -> PerOp:
    """The cost of one operation: the difference of two children's totals over their
    difference in operations (the start-up and warm-up of both cancel out)."""
    extra = ops[1] - ops[0]
    if extra <= 0:
        raise ValueError("the second operation count must be larger than the first")
    return PerOp(
        label,
        (many.instructions - few.instructions) / extra,
        (many.commits - few.commits) / extra,
        (many.syncs - few.syncs) / extra,
    )


def collected(stderr: str) -> int:
    """The total callgrind reports on exit (`==PID== Collected : N`)."""
    found = _COLLECTED.findall(stderr)
    if not found:
        raise RuntimeError(f"callgrind reported no total; its output ended with:\n{stderr[-2000:]}")
    return int(found[-1])


async def run_child(kind: str, concurrency: int, ops: int, durability: str) -> tuple[int, int]:
    """In the child: warm up, then run `ops` operations; returns the store's (commits, fsyncs)
    made by them."""
    # No step of these workflows runs long enough at full speed to have its start flushed on
    # its own, and no synced commit of a lone change takes long enough to be kept off the
    # event loop; under valgrind's slowdown every one would (see the module docstring).
    delay, outbox.START_FLUSH_DELAY = outbox.START_FLUSH_DELAY, 3600.0
    limit, sqlite._LOOP_SYNC_LIMIT = sqlite._LOOP_SYNC_LIMIT, float("inf")
    interval, sqlite._CHECKPOINT_INTERVAL = sqlite._CHECKPOINT_INTERVAL, 3600.0
    try:
        return await _count_commits(kind, concurrency, ops, durability)
    finally:
        outbox.START_FLUSH_DELAY = delay
        sqlite._LOOP_SYNC_LIMIT = limit
        sqlite._CHECKPOINT_INTERVAL = interval


async def _count_commits(kind: str, concurrency: int, ops: int, durability: str) -> tuple[int, int]:
    async with scratch_store(durability, None) as store:
        await store.open()
        try:
            async with Engine(
                store, WORKFLOWS, heartbeat=3600.0, lease_seconds=21600.0, claim_interval=3600.0
            ) as engine:

                async def three_steps() -> None:
                    run = await engine.start("bench-three-steps", input_data={"value": 1}, wait=True)
                    if run.status is not RunStatus.SUCCESS:
                        raise RuntimeError(f"run {run.run_id} is {run.status.value}")

                async def suspend_resume() -> None:
                    run = await engine.start("bench-suspend", input_data={"value": 1}, wait=True)
                    if run.status is not RunStatus.SUSPENDED:
                        raise RuntimeError(f"run {run.run_id} is {run.status.value}")
                    done = await engine.resume(run.run_id, resume_data={"ok": True}, wait=True)
                    if done.status is not RunStatus.SUCCESS:
                        raise RuntimeError(f"run {run.run_id} is {done.status.value}")

                operation: Callable[[], Awaitable[None]] = three_steps if kind == "three" else suspend_resume
                await _drive_all(operation, WARM_UP_OPS, concurrency)
                # A full collection walks every object the warm-up left: whether one lands in the
                # measured operations must not decide the count (see the module docstring).
                gc.collect()
                gc.freeze()
                commits, syncs = _counts(store)
                await _drive_all(operation, ops, concurrency)
                after = _counts(store)
        finally:
            await store.close()
    return after[0] - commits, after[1] - syncs


async def _drive_all(operation: Callable[[], Awaitable[None]], total: int, concurrency: int) -> None:
    if total == 0:
        return
    result = await drive(operation, total=total, concurrency=concurrency, max_seconds=86400)
    if result.errors or result.done != total:
        raise RuntimeError(f"{result.errors} of {total} operations failed: {result.first_error}")


def _counts(store: object) -> tuple[int, int]:
    commits: int = getattr(store, "transactions", 0)
    return commits, getattr(store, "syncs", commits)


def under_callgrind(valgrind: str, command: list[str], scratch: Path) -> tuple[int, str]:
    """Run `command` under callgrind; returns its instruction count and its standard output."""
    done = subprocess.run(
        [valgrind, "--tool=callgrind", f"--callgrind-out-file={scratch / 'callgrind.out'}", *command],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed under callgrind ({done.returncode}):\n{done.stderr[-3000:]}")
    return collected(done.stderr), done.stdout


def count(measure: str, ops: int, durability: str, valgrind: str) -> Counted:
    """Run one child under callgrind and return its totals."""
    _, kind, concurrency = MEASURES[measure]
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        child = f"{kind},{concurrency},{ops},{durability}"
        instructions, out = under_callgrind(
            valgrind, [sys.executable, "-m", "bench.instructions", "--child", child], Path(tmp)
        )
        commits, syncs = json.loads(out.strip().splitlines()[-1])
        return Counted(instructions, commits, syncs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.instructions", description=__doc__.split("\n\n")[1]
    )
    parser.add_argument(
        "--measures",
        default="three1,three64,suspend64",
        help=f"comma-separated, of {', '.join(MEASURES)} (default three1,three64,suspend64)",
    )
    parser.add_argument(
        "--ops", default="100,300", help="operations of the two children, A,B with B > A (default 100,300)"
    )
    parser.add_argument("--durability", choices=("full", "normal"), default="full", help="store setting")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.setswitchinterval(SWITCH_INTERVAL)  # as `runservice serve` does
    if args.child:
        kind, concurrency, ops, durability = args.child.split(",")
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            counts = runner.run(run_child(kind, int(concurrency), int(ops), durability))
        print(json.dumps(counts))
        return 0
    measures = [m.strip() for m in args.measures.split(",") if m.strip()]
    unknown = [m for m in measures if m not in MEASURES]
    if unknown:
        parser.error(f"unknown measure(s) {', '.join(unknown)}; choose from {', '.join(MEASURES)}")
    try:
        few, many = (int(n) for n in args.ops.split(","))
    except ValueError:
        parser.error("--ops takes two counts, A,B")
    if not 0 <= few < many:
        parser.error("--ops needs 0 <= A < B")
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    print(
        f"in-process engine + SQLite store, durability={args.durability}, under callgrind:"
        f" {many} - {few} operations after {WARM_UP_OPS} to warm up"
    )
    for measure in measures:
        label = MEASURES[measure][0]
        # Both children at once: a count does not depend on what else the machine runs.
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            children = [pool.submit(count, measure, n, args.durability, valgrind) for n in (few, many)]
            result = per_op(label, children[0].result(), children[1].result(), (few, many))
        print(result.line(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
