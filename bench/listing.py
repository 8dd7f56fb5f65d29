"""`python -m bench.listing [--runs 100000] [--repeat 30] [--database-url URL]`: ListRuns at scale.

Fills a fresh store (a scratch SQLite file, or with `--database-url` a scratch schema of
that PostgreSQL database) with `--runs` runs (10 workflows, 1,000 resources, statuses
skewed the way a real service is: mostly finished, a few failed or suspended, created
over 30 days), then times the store's listing (one page of 50, summaries, as ListRuns
asks for by default) for every kind of filter and their combinations, first page and
a later page. Prints the median and the worst of `--repeat` calls in milliseconds, and
the query plan of each, so a filter that scans or sorts shows at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import asyncpg
import orjson

from bench.asyncpg_ref import scratch_schema, with_search_path
from runservice.model import RunStatus
from runservice.storage import RunQuery, Store
from runservice.storage import postgres as postgres_store
from runservice.storage.postgres import PostgresStore
from runservice.storage.sqlite import SqliteStore, _list_sql

STATUS_WEIGHTS = {
    RunStatus.SUCCESS: 80,
    RunStatus.FAILED: 3,
    RunStatus.SUSPENDED: 5,
    RunStatus.CANCELED: 4,
    RunStatus.RUNNING: 3,
    RunStatus.WAITING: 3,
    RunStatus.PENDING: 2,
}
DAY = 86_400.0


COLUMNS = ("run_id", "workflow_id", "resource_id", "status", "input", "created_at", "updated_at")


def rows(runs: int, now: float) -> list[tuple[str, str, str, str, bytes, float, float]]:
    """`runs` runs, the same on every store: created over 30 days, statuses skewed."""
    rng = random.Random(7)
    statuses = list(STATUS_WEIGHTS)
    weights = list(STATUS_WEIGHTS.values())
    made = []
    for i in range(runs):
        created = now - rng.random() * 30 * DAY
        made.append(
            (
                f"run-{i:07d}",
                f"wf-{rng.randrange(10)}",
                f"tenant-{rng.randrange(1000)}",
                rng.choices(statuses, weights)[0].value,
                orjson.dumps({"n": i, "text": "x" * 200}),
                created,
                created,
            )
        )
    return made


def fill(path: str, runs: int, now: float) -> None:
    """Insert `runs` runs straight into the runs table of a SQLite file (the store made the schema)."""
    conn = sqlite3.connect(path)
    conn.executemany(
        f"INSERT INTO runs ({', '.join(COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(*row[:4], row[4].decode(), *row[5:]) for row in rows(runs, now)],
    )
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()


def cases(now: float) -> dict[str, RunQuery]:
    week = now - 7 * DAY
    failed = frozenset({RunStatus.FAILED})
    active = frozenset({RunStatus.RUNNING, RunStatus.WAITING, RunStatus.SUSPENDED})
    return {
        "no filter": RunQuery(),
        "workflow": RunQuery(workflow_id="wf-3"),
        "status (common: success)": RunQuery(statuses=frozenset({RunStatus.SUCCESS})),
        "status (rare: failed)": RunQuery(statuses=failed),
        "3 statuses (active)": RunQuery(statuses=active),
        "resource": RunQuery(resource_id="tenant-42"),
        "time range (last 7 days)": RunQuery(from_time=week, to_time=now),
        "workflow + status": RunQuery(workflow_id="wf-3", statuses=failed),
        "workflow + resource": RunQuery(workflow_id="wf-3", resource_id="tenant-42"),
        "resource + status": RunQuery(resource_id="tenant-42", statuses=failed),
        "workflow + resource + status": RunQuery(
            workflow_id="wf-3", resource_id="tenant-42", statuses=failed
        ),
        "workflow + 3 statuses + time": RunQuery(workflow_id="wf-3", statuses=active, from_time=week),
        "status + time range": RunQuery(statuses=failed, from_time=week, to_time=now - DAY),
        "nothing matches": RunQuery(workflow_id="wf-none", statuses=failed),
    }


async def measure(store: Store, query: RunQuery, repeat: int) -> tuple[float, float, int, float]:
    """(median ms, worst ms, runs on the first page, median ms of the second page)."""
    page = replace(query, limit=51, payloads=False)
    first: list[float] = []
    runs = await store.list_runs(page)
    for _ in range(repeat):
        start = time.perf_counter()
        runs = await store.list_runs(page)
        first.append((time.perf_counter() - start) * 1000)
    second: list[float] = []
    if len(runs) > 50:
        after = replace(page, after=(runs[49].created_at, runs[49].run_id))
        for _ in range(repeat):
            start = time.perf_counter()
            await store.list_runs(after)
            second.append((time.perf_counter() - start) * 1000)
    return statistics.median(first), max(first), len(runs[:50]), statistics.median(second) if second else 0.0


Plan = Callable[[RunQuery], Awaitable[str]]
"""The query plan of a listing page, as one line."""


@contextlib.asynccontextmanager
async def sqlite_listing(runs: int, now: float) -> AsyncIterator[tuple[Store, Plan]]:
    """An open SQLite store holding `runs` runs, and how its listing pages are planned."""
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "runs.db")
        store = SqliteStore(path)
        await store.open()  # creates the schema
        await store.close()
        started = time.perf_counter()
        fill(path, runs, now)
        print(f"filled {runs:,} runs in {time.perf_counter() - started:.1f}s ({path})")

        async def plan(query: RunQuery) -> str:
            sql, params = _list_sql(replace(query, limit=51, payloads=False))
            conn = sqlite3.connect(path)
            try:
                found = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
            finally:
                conn.close()
            return "; ".join(str(row[-1]) for row in found)

        store = SqliteStore(path)
        await store.open()
        try:
            yield store, plan
        finally:
            await store.close()


@contextlib.asynccontextmanager
async def postgres_listing(url: str, runs: int, now: float) -> AsyncIterator[tuple[Store, Plan]]:
    """An open PostgreSQL store on a scratch schema of `url` holding `runs` runs (analyzed),
    and how its listing pages are planned."""
    async with scratch_schema(url, "runservice_bench_listing") as schema:
        scoped = with_search_path(url, schema)
        store = PostgresStore(scoped)
        await store.open()  # migrates the schema
        conn = await asyncpg.connect(scoped)
        try:
            started = time.perf_counter()
            await conn.copy_records_to_table("runs", records=rows(runs, now), columns=COLUMNS)
            await conn.execute("ANALYZE runs")
            print(f"filled {runs:,} runs in {time.perf_counter() - started:.1f}s (schema {schema})")

            async def plan(query: RunQuery) -> str:
                sql, params = postgres_store.list_sql(replace(query, limit=51, payloads=False))
                found = await conn.fetch(f"EXPLAIN (COSTS OFF) {sql}", *params)
                return "; ".join(row[0].strip().removeprefix("-> ") for row in found)

            yield store, plan
        finally:
            await conn.close()
            await store.close()


async def run(runs: int, repeat: int, database_url: str | None = None) -> int:
    now = time.time()
    listing = postgres_listing(database_url, runs, now) if database_url else sqlite_listing(runs, now)
    async with listing as (store, plan):
        print(f"{'filter':<32} {'median ms':>10} {'worst ms':>10} {'runs':>5} {'page 2 ms':>10}  plan")
        for name, query in cases(now).items():
            median, worst, found, second = await measure(store, query, repeat)
            figures = f"{median:>10.2f} {worst:>10.2f} {found:>5} {second:>10.2f}"
            print(f"{name:<32} {figures}  {await plan(query)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.listing", description=__doc__.split("\n\n")[1])
    parser.add_argument("--runs", type=int, default=100_000, help="runs to store (default 100,000)")
    parser.add_argument("--repeat", type=int, default=30, help="calls timed per filter (default 30)")
    parser.add_argument(
        "--database-url", metavar="URL", help="a postgresql:// URL (default: a scratch SQLite file)"
    )
    args = parser.parse_args(argv)
    if args.database_url and not args.database_url.startswith(("postgresql://", "postgres://")):
        parser.error("--database-url must be a postgresql:// URL")
    return asyncio.run(run(args.runs, args.repeat, args.database_url))


if __name__ == "__main__":
    sys.exit(main())
