"""`python -m bench.inprocess [--runs 3000] [--concurrency 64] [--durability full|normal] [--caller-run-ids]
[--stored-runs N] [--database-url URL] [--rounds N]`.

The engine and the store (a scratch SQLite file, or with `--database-url` a scratch schema
of that PostgreSQL database) in this process, no gRPC: the like-for-like comparison
with Mastra's in-process figures. The same workflows as the service benchmark
(bench/workflows.py): 3-step runs one at a time (rate, p50, p99) and `--concurrency`
in flight, and suspend+resume round trips in flight, each started with `wait` exactly
as the Start RPC does. Prints the store's commits and fsyncs per run too, so the
durability setting's cost shows. Runs get the engine's own (time-ordered) ids, or with
`--caller-run-ids` random UUID4 ids, as callers that name their runs themselves do;
`--stored-runs N` stores N runs before the timed measurements, as a running service's store
holds many. `--rounds N` measures N times, each on a new store, and prints each figure's median
and range.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import uvloop

from bench.asyncpg_ref import scratch_schema, with_search_path
from bench.load import LoadResult, drive
from bench.workflows import WORKFLOWS
from runservice.cli.serve import SWITCH_INTERVAL
from runservice.engine import Engine
from runservice.model import RunStatus
from runservice.storage import Store
from runservice.storage.postgres import PostgresStore
from runservice.storage.sqlite import SqliteStore


@contextlib.asynccontextmanager
async def scratch_store(durability: str, database_url: str | None) -> AsyncIterator[Store]:
    """A store on a scratch SQLite file, or on a scratch schema of `database_url` (dropped after)."""
    if database_url:
        async with scratch_schema(database_url, "runservice_bench_inprocess") as schema:
            yield PostgresStore(with_search_path(database_url, schema))
        return
    with tempfile.TemporaryDirectory(prefix="bench-inprocess-") as tmp:
        path = str(Path(tmp) / "runs.db")
        # The default without the keyword, so this file also measures commits before the setting.
        yield SqliteStore(path) if durability == "full" else SqliteStore(path, durability=durability)


@dataclass(frozen=True)
class Measured:
    """One measurement: its label, the load's result, and the store's commits and fsyncs per
    operation."""

    label: str
    result: LoadResult
    commits: float
    syncs: float

    def line(self) -> str:
        text = (
            f"{self.label:<32} {self.result.rate:>8,.0f} /s"
            f"   p50 {self.result.percentile(0.5) * 1000:6.3f} ms"
            f"   p99 {self.result.percentile(0.99) * 1000:6.3f} ms   commits/op {self.commits:5.2f}"
            f"   fsyncs/op {self.syncs:5.2f}"
        )
        if self.result.errors:
            text += f"   ERRORS {self.result.errors}: {self.result.first_error}"
        return text


def median_lines(rounds: list[list[Measured]]) -> list[str]:
    """Each measurement of several rounds: the median rate, p50 and p99, with their ranges."""
    lines = []
    for same in zip(*rounds, strict=True):
        rates = [m.result.rate for m in same]
        p50 = [m.result.percentile(0.5) * 1000 for m in same]
        p99 = [m.result.percentile(0.99) * 1000 for m in same]
        errors = sum(m.result.errors for m in same)
        lines.append(
            f"{same[0].label:<32} {statistics.median(rates):>8,.0f} /s ({min(rates):,.0f}-{max(rates):,.0f})"
            f"   p50 {statistics.median(p50):6.3f} ms ({min(p50):.3f}-{max(p50):.3f})"
            f"   p99 {statistics.median(p99):6.3f} ms ({min(p99):.3f}-{max(p99):.3f})"
            f"   commits/op {statistics.median(m.commits for m in same):5.2f}"
            f"   fsyncs/op {statistics.median(m.syncs for m in same):5.2f}"
            + (f"   ERRORS {errors}" if errors else "")
        )
    return lines


async def measure(
    runs: int,
    concurrency: int,
    durability: str,
    max_seconds: float,
    caller_run_ids: bool = False,
    stored_runs: int = 0,
    database_url: str | None = None,
) -> list[Measured]:
    measured: list[Measured] = []

    def run_id() -> str | None:
        return uuid.uuid4().hex if caller_run_ids else None

    async with scratch_store(durability, database_url) as store:
        await store.open()
        try:
            async with Engine(store, WORKFLOWS) as engine:

                async def three_steps() -> None:
                    run = await engine.start(
                        "bench-three-steps", run_id=run_id(), input_data={"value": 1}, wait=True
                    )
                    if run.status is not RunStatus.SUCCESS:
                        raise RuntimeError(f"run {run.run_id} is {run.status.value}")

                async def suspend_resume() -> None:
                    run = await engine.start(
                        "bench-suspend", run_id=run_id(), input_data={"value": 1}, wait=True
                    )
                    if run.status is not RunStatus.SUSPENDED:
                        raise RuntimeError(f"run {run.run_id} is {run.status.value}")
                    done = await engine.resume(run.run_id, resume_data={"ok": True}, wait=True)
                    if done.status is not RunStatus.SUCCESS:
                        raise RuntimeError(f"run {run.run_id} is {done.status.value}")

                # Warm up (imports, caches, the file's first pages).
                await drive(three_steps, total=min(200, runs), concurrency=1, max_seconds=max_seconds)
                if stored_runs:
                    await drive(three_steps, total=stored_runs, concurrency=concurrency, max_seconds=3600)
                for label, operation, n in (
                    ("3-step runs, 1 in flight", three_steps, 1),
                    (f"3-step runs, {concurrency} in flight", three_steps, concurrency),
                    (f"suspend+resume, {concurrency} in flight", suspend_resume, concurrency),
                ):
                    commits, syncs = _counts(store)
                    result = await drive(operation, total=runs, concurrency=n, max_seconds=max_seconds)
                    after = _counts(store)
                    done = max(result.done, 1)
                    measured.append(
                        Measured(label, result, (after[0] - commits) / done, (after[1] - syncs) / done)
                    )
        finally:
            await store.close()
    return measured


def _counts(store: Store) -> tuple[int, int]:
    """(commits, fsyncs) so far: the store's transactions and, of those, the ones that
    waited for their flush to disk."""
    commits: int = getattr(store, "transactions", 0)
    return commits, getattr(store, "syncs", commits)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__.split("\n\n")[1])
    parser.add_argument("--runs", type=int, default=3000, help="operations per measurement (default 3000)")
    parser.add_argument("--concurrency", type=int, default=64, help="operations in flight (default 64)")
    parser.add_argument("--durability", choices=("full", "normal"), default="full", help="store setting")
    parser.add_argument("--max-seconds", type=float, default=20.0, help="cap per measurement (default 20)")
    parser.add_argument(
        "--caller-run-ids", action="store_true", help="random UUID4 run ids, not the engine's (time-ordered)"
    )
    parser.add_argument("--stored-runs", type=int, default=0, metavar="N", help="runs stored before timing")
    parser.add_argument(
        "--database-url", metavar="URL", help="a postgresql:// URL (default: a scratch SQLite file)"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, metavar="N", help="measure N times, print medians and ranges"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.database_url and not args.database_url.startswith(("postgresql://", "postgres://")):
        parser.error("--database-url must be a postgresql:// URL")
    sys.setswitchinterval(SWITCH_INTERVAL)  # as `runservice serve` does
    rounds = []
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        for _ in range(args.rounds):
            rounds.append(
                runner.run(
                    measure(
                        args.runs,
                        args.concurrency,
                        args.durability,
                        args.max_seconds,
                        args.caller_run_ids,
                        args.stored_runs,
                        args.database_url,
                    )
                )
            )
    lines = [m.line() for m in rounds[0]] if args.rounds == 1 else median_lines(rounds)
    ids = "caller's random run ids" if args.caller_run_ids else "the engine's run ids"
    stored = f", {args.stored_runs:,} runs stored first" if args.stored_runs else ""
    where = "PostgreSQL store" if args.database_url else f"SQLite store, durability={args.durability}"
    each = f", medians of {args.rounds} rounds (ranges in brackets)" if args.rounds > 1 else ""
    print(f"in-process engine + {where}, {ids}{stored}{each}")
    print("\n".join(lines))
    return 1 if any(m.result.errors for measured in rounds for m in measured) else 0


if __name__ == "__main__":
    sys.exit(main())
