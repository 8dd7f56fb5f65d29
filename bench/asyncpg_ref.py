"""Reference C, the PostgreSQL storage ceiling: a bare asyncpg commit loop on the given database.

Three loops, each inserting event-sized rows into a table of its own scratch schema
(dropped afterwards), with the server's `synchronous_commit = on` (a commit waits for its
WAL flush, as runservice's writes do):

- one connection, one row per commit (one round trip each: an autocommit INSERT);
- one connection, `rows_per_commit` rows per commit (one `unnest` INSERT);
- `concurrency` connections, one row per commit each (PostgreSQL's own group commit
  lets concurrent commits share a WAL flush).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from bench.load import LoadResult

ROW = json.dumps(
    {"type": "workflow-step-result", "step": {"path": ["add-a"], "output": {"value": 2}}}
).encode()
INSERT_ONE = "INSERT INTO events (run_id, sequence, data) VALUES ($1, $2, $3)"
INSERT_MANY = (
    "INSERT INTO events (run_id, sequence, data) SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[])"
)


@dataclass
class PostgresResults:
    single: LoadResult
    """One row per commit on one connection: `rate` is commits/s."""
    batched: LoadResult
    """`rows_per_commit` rows per commit: `rate` is commits/s."""
    concurrent: LoadResult
    """One row per commit on `concurrency` connections: `rate` is commits/s."""
    rows_per_commit: int
    concurrency: int

    @property
    def rows_rate(self) -> float:
        return self.batched.rate * self.rows_per_commit


def with_search_path(url: str, schema: str) -> str:
    """`url` whose connections use `schema` (asyncpg passes unknown URL parameters as settings)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "search_path"]
    query.append(("search_path", schema))
    return urlunsplit(parts._replace(query=urlencode(query)))


@contextlib.asynccontextmanager
async def scratch_schema(url: str, prefix: str) -> AsyncIterator[str]:
    """A new schema in the database of `url` for the block, dropped with its tables afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        try:
            yield schema
        finally:
            await admin.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await admin.close()


async def _loop(
    conn: asyncpg.Connection,
    result: LoadResult,
    issued: list[int],
    *,
    commits: int,
    rows: int,
    deadline: float,
    offset: int,
) -> None:
    sequence = offset
    while issued[0] < commits and time.perf_counter() < deadline:
        issued[0] += 1  # claimed before awaiting, so the connections together make exactly `commits`
        if rows == 1:
            sequence += 1
            await conn.execute(INSERT_ONE, f"run-{sequence % 997}", sequence, ROW)
        else:
            batch = range(sequence + 1, sequence + rows + 1)
            sequence += rows
            await conn.execute(INSERT_MANY, [f"run-{s % 997}" for s in batch], list(batch), [ROW] * rows)
        result.done += 1


async def _measure(
    conns: list[asyncpg.Connection], *, commits: int, rows: int, max_seconds: float
) -> LoadResult:
    result = LoadResult()
    issued = [0]
    started = time.perf_counter()
    deadline = started + max_seconds
    await asyncio.gather(
        *(
            _loop(conn, result, issued, commits=commits, rows=rows, deadline=deadline, offset=i * 10**9)
            for i, conn in enumerate(conns)
        )
    )
    result.elapsed = time.perf_counter() - started
    return result


async def measure(
    url: str,
    *,
    commits: int,
    batched_commits: int,
    rows_per_commit: int,
    concurrent_commits: int,
    concurrency: int,
    max_seconds: float,
) -> PostgresResults:
    """The three loops on a scratch schema of the database at `url`."""
    async with scratch_schema(url, "runservice_bench_ref") as schema:
        scoped = with_search_path(url, schema)
        conns = [
            await asyncpg.connect(scoped, server_settings={"synchronous_commit": "on"})
            for _ in range(concurrency)
        ]
        try:
            await conns[0].execute(
                "CREATE TABLE events (id bigserial PRIMARY KEY, run_id text NOT NULL,"
                " sequence bigint NOT NULL, data bytea NOT NULL)"
            )
            await _measure(conns[:1], commits=50, rows=1, max_seconds=5)  # warm up
            single = await _measure(conns[:1], commits=commits, rows=1, max_seconds=max_seconds)
            batched = await _measure(
                conns[:1], commits=batched_commits, rows=rows_per_commit, max_seconds=max_seconds
            )
            concurrent = await _measure(conns, commits=concurrent_commits, rows=1, max_seconds=max_seconds)
        finally:
            for conn in conns:
                await conn.close()
    return PostgresResults(single, batched, concurrent, rows_per_commit, concurrency)
