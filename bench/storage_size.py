"""`python -m bench.storage_size [--mb 1] [--database-url URL]`: bytes on disk for one run with a large input.

Runs one run of a 3-step pass-through workflow (each step returns its input) with an
input of `--mb` MB (one string of random letters, which no compression shrinks) on a
fresh store, and prints what it added on disk over the same run with a tiny input. On
SQLite that is the database file's growth, after closing the store checkpointed the WAL
into it; with `--database-url`, each run gets a scratch schema of that PostgreSQL
database and the figure is the growth of its tables with their indexes and TOAST. Without
de-duplication the value is stored once per copy: run input, each step's payload and
output (in its record and in its events), the result.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import string
import sys
import tempfile
from pathlib import Path
from typing import Any

import asyncpg

from bench.asyncpg_ref import scratch_schema, with_search_path
from runservice.engine import Engine
from runservice.storage import Store
from runservice.storage.postgres import PostgresStore
from runservice.storage.sqlite import SqliteStore
from runservice.workflow import StepContext, create_step, create_workflow


def _step(step_id: str) -> Any:
    @create_step(step_id)
    async def passthrough(ctx: StepContext) -> Any:
        return ctx.input_data

    return passthrough


PASS3 = create_workflow("pass3").then(_step("one")).then(_step("two")).then(_step("three")).commit()


async def one_run(store: Store, data: Any) -> None:
    """One run of PASS3 on `data`, checked: every copy of the value reads back whole."""
    await store.open()
    try:
        async with Engine(store, [PASS3]) as engine:
            run = await engine.start(workflow_id="pass3", input_data=data, wait=True)
            assert run.status.value == "success", run
            assert run.result == data
            again = await engine.get_run(run.run_id)
            assert [step.output == data for step in again.steps] == [True, True, True]
            events = await store.read_events(run.run_id, 0)
            outputs = [e.step.output for e in events if e.step is not None and e.step.output is not None]
            assert outputs and all(output == data for output in outputs)
    finally:
        await store.close()


async def file_size(tmp: str, name: str, data: Any) -> int:
    path = str(Path(tmp) / f"{name}.db")
    await one_run(SqliteStore(path), data)
    return _file_size(path)


def _file_size(path: str) -> int:
    """The database file's size; closing the store checkpointed the WAL into it."""
    wal = f"{path}-wal"
    assert not os.path.exists(wal) or os.path.getsize(wal) == 0
    return os.path.getsize(path)


_SCHEMA_BYTES = """
SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind = 'r'
"""


async def schema_size(url: str, data: Any) -> int:
    """Bytes of the tables (with indexes and TOAST) of a scratch schema holding one run."""
    async with scratch_schema(url, "runservice_bench_size") as schema:
        await one_run(PostgresStore(with_search_path(url, schema)), data)
        conn = await asyncpg.connect(url)
        try:
            size: int = await conn.fetchval(_SCHEMA_BYTES, schema)
        finally:
            await conn.close()
        return size


def blob(size: int) -> str:
    """`size` random letters: the same bytes in JSON, and nothing a compressor can shrink much."""
    rng = random.Random(7)
    return "".join(rng.choices(string.ascii_letters, k=size))


async def run(megabytes: float, database_url: str | None = None) -> int:
    data = {"blob": blob(int(megabytes * 1_000_000))}
    tiny = {"blob": "x"}
    if database_url:
        small = await schema_size(database_url, tiny)
        large = await schema_size(database_url, data)
        where = "PostgreSQL tables, indexes and TOAST"
    else:
        with tempfile.TemporaryDirectory() as tmp:
            small = await file_size(tmp, "small", tiny)
            large = await file_size(tmp, "large", data)
        where = "database file"
    grown = large - small
    print(f"input: {len(data['blob']):,} bytes through 3 pass-through steps")
    print(f"{where}: {large:,} bytes; a tiny-input run: {small:,} bytes")
    print(f"bytes on disk for the large value: {grown:,} ({grown / len(data['blob']):.2f} x the input)")
    return 0


def main(argv: list[str] | None = None) -> int:
    about = __doc__.split("\n\n")[1]
    parser = argparse.ArgumentParser(prog="python -m bench.storage_size", description=about)
    parser.add_argument("--mb", type=float, default=1.0, help="input size in MB (default 1)")
    parser.add_argument(
        "--database-url", metavar="URL", help="a postgresql:// URL (default: a scratch SQLite file)"
    )
    args = parser.parse_args(argv)
    if args.database_url and not args.database_url.startswith(("postgresql://", "postgres://")):
        parser.error("--database-url must be a postgresql:// URL")
    return asyncio.run(run(args.mb, args.database_url))


if __name__ == "__main__":
    sys.exit(main())
