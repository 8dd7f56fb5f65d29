"""Databases made while main's migration numbers had gaps are completed at open.

Branches merged higher migration numbers before lower ones existed, so a commit in between
made databases stamped with a newer version than all the migrations they had: SQLite
user_version 11 without 6, 9 and 10 (commit dcc10c4), PostgreSQL versions {1, 2, 3, 5, 6, 9}.
Opening such a database applies what it lacks, whatever the numbers, and its runs go on.
A database still lacking something the code uses (changed by hand) is refused in one line.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from conftest import Databases, ServingFactory
from postgres import apply_migrations
from process import ROOT, server_env
from workflows import WORKFLOWS, Count, bump

from runservice.client import Client
from runservice.model import RunStatus
from runservice.storage import postgres as pg
from runservice.storage import sqlite as sqlite_store
from runservice.storage.postgres import PostgresStore
from runservice.storage.sqlite import SqliteStore
from runservice.workflow import create_workflow

pytestmark = pytest.mark.timeout(60)

GAP_SQLITE = (5, 7, 8, 11)
"""The SQLite migrations after schema.sql (version 4) that commit dcc10c4 had; it stamped 11."""
GAP_POSTGRES = (1, 2, 3, 5, 6, 9)
"""The PostgreSQL migrations commit dcc10c4 had."""

nap = create_workflow("nap", input_schema=Count, output_schema=Count).sleep(2.0).then(bump).commit()
"""A run that is `waiting` (asleep) when its server stops."""


async def test_database_with_a_migration_gap_is_completed_and_its_runs_go_on(
    tmp_path: Path, serving: ServingFactory, databases: Databases
) -> None:
    current = tmp_path / "current.db"
    async with (
        serving(current, workflows=[*WORKFLOWS, nap]) as served,
        Client(served.address, timeout=10.0) as client,
    ):
        done = await (await client.get_workflow("echo").create_run(run_id="done")).start_async(
            input_data={"count": 1}
        )
        asked = await (await client.get_workflow("approval").create_run(run_id="asked")).start_async(
            input_data={"count": 1}
        )
        await (await client.get_workflow("nap").create_run(run_id="napping")).start(input_data={"count": 5})
        while (await client.get_workflow("nap").run_by_id("napping")).status is not RunStatus.WAITING:
            await asyncio.sleep(0.02)
    assert (done.status, asked.status) == (RunStatus.SUCCESS, RunStatus.SUSPENDED)

    gap: Path | str = tmp_path / "gap.db"
    if databases.backend == "sqlite":
        _gap_sqlite(Path(gap), current)
    else:
        gap = await databases.empty()  # its own URL is its key: serving(gap) opens it
        await _gap_postgres(gap, await databases.url_for(current))

    async with (
        serving(gap, workflows=[*WORKFLOWS, nap]) as served,
        Client(served.address, timeout=10.0) as client,
    ):
        read = await client.get_workflow("echo").run_by_id("done")
        assert (read.status, read.result, read.definition_version) == (RunStatus.SUCCESS, {"count": 2}, "1")
        resumed = await (await client.get_workflow("approval").create_run(run_id="asked")).resume_async(
            resume_data={"approved": True}
        )
        assert (resumed.status, resumed.result) == (RunStatus.SUCCESS, {"verdict": "approved"})
        # The claim loop wakes the sleeping run at its stored time and finishes it.
        active = (RunStatus.WAITING, RunStatus.RUNNING)
        while (woke := await client.get_workflow("nap").run_by_id("napping")).status in active:
            await asyncio.sleep(0.05)
        assert (woke.status, woke.result) == (RunStatus.SUCCESS, {"count": 6})
        new = await (await client.get_workflow("echo").create_run(run_id="new")).start_async(
            input_data={"count": 7}
        )
        assert new.result == {"count": 8}

    # Every migration is recorded now: a second open has nothing to apply.
    if databases.backend == "sqlite":
        with sqlite3.connect(gap) as conn:
            applied = [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
            assert conn.execute("PRAGMA user_version").fetchone()[0] == sqlite_store.SCHEMA_VERSION
        conn.close()
        assert applied == sorted(sqlite_store.MIGRATIONS)
    else:
        conn = await asyncpg.connect(gap)
        try:
            applied = [
                r[0] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
            ]
        finally:
            await conn.close()
        assert applied == [v for v, _ in pg.MIGRATIONS]


def _gap_sqlite(gap: Path, current: Path) -> None:
    """`gap`: schema.sql and GAP_SQLITE's migrations stamped 11, holding `current`'s rows."""
    scripts = ["schema.sql", *(sqlite_store.MIGRATIONS[v] for v in GAP_SQLITE)]
    with sqlite3.connect(gap) as conn:
        conn.executescript("\n".join(sqlite_store._resource(name) for name in scripts))
        conn.execute(f"PRAGMA user_version = {max(GAP_SQLITE)}")
        assert "deadline" in _columns(conn, "main", "runs") and "definition_version" not in _columns(
            conn, "main", "runs"
        )
        conn.execute("ATTACH DATABASE ? AS cur", (str(current),))
        tables = [row[0] for row in conn.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = ", ".join(c for c in _columns(conn, "main", table) if c in _columns(conn, "cur", table))
            conn.execute(f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM cur.{table}")
        conn.commit()
        conn.execute("DETACH DATABASE cur")
    conn.close()


def _columns(conn: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA {schema}.table_info({table})")]


_PG_TABLES = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
_PG_COLUMNS = (
    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1"
    " ORDER BY ordinal_position"
)


async def _gap_postgres(gap_url: str, current_url: str) -> None:
    """Like `_gap_sqlite`: GAP_POSTGRES's migrations, recorded as such, with `current`'s rows."""
    gap = await asyncpg.connect(gap_url)
    current = await asyncpg.connect(current_url)
    try:
        await apply_migrations(gap, GAP_POSTGRES)
        tables = [r[0] for r in await gap.fetch(_PG_TABLES) if r[0] != "schema_migrations"]
        assert "foreach_items" not in tables
        for table in tables:
            mine = {r[0] for r in await gap.fetch(_PG_COLUMNS, table)}
            assert table != "runs" or "definition_version" not in mine
            columns = [r[0] for r in await current.fetch(_PG_COLUMNS, table) if r[0] in mine]
            rows = await current.fetch(f"SELECT {', '.join(columns)} FROM {table}")
            if rows:
                await gap.copy_records_to_table(table, records=[tuple(r) for r in rows], columns=columns)
    finally:
        await gap.close()
        await current.close()


# -- a schema it cannot repair --------------------------------------------------------------


@pytest.mark.parametrize("layout", [(), ("--engine-process",)], ids=["one-process", "engine-process"])
def test_sqlite_schema_lacking_a_column_is_refused_in_one_line(
    tmp_path: Path, layout: tuple[str, ...]
) -> None:
    """A database whose migrations are all recorded but which lacks a column (dropped by hand):
    `runservice serve` says what is missing in one line and exits 1, and changes nothing."""
    path = tmp_path / "runservice.db"
    asyncio.run(_open_and_close(SqliteStore(str(path))))
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE runs DROP COLUMN travel")
    conn.close()
    argv = [
        sys.executable,
        "-m",
        "runservice",
        "serve",
        "--address",
        "127.0.0.1:0",
        "--data-dir",
        str(tmp_path),
    ]
    done = subprocess.run(
        [*argv, *layout], cwd=ROOT, env=server_env(), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"runservice: error: cannot serve: database {path} lacks column runs.travel,")
    assert line.endswith("runservice cannot repair it: restore it from a backup")
    with sqlite3.connect(path) as conn:
        assert "travel" not in _columns(conn, "main", "runs")
    conn.close()


def test_another_applications_sqlite_file_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    """A `--database-url` naming another application's file: refused in one line, and neither
    switched to WAL nor given runservice's tables (it used to get both in silence)."""
    path = tmp_path / "inventory.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO items (name) VALUES ('bolt')")
    conn.close()
    # Another tool's table named `runs` (MLflow's database has one) does not make it ours.
    other = tmp_path / "experiments.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, experiment TEXT, metric REAL)")
    conn.close()
    for file, tables in ((path, "items"), (other, "runs")):
        before = file.read_bytes()
        argv = [sys.executable, "-m", "runservice", "serve", "--address", "127.0.0.1:0"]
        done = subprocess.run(
            [*argv, "--database-url", f"sqlite:///{file}"],
            cwd=ROOT, env=server_env(), capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert done.returncode == 1, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert line == (
            f"runservice: error: cannot serve: database {file} holds tables runservice did not make"
            f" ({tables}): it is another application's file; give runservice a file of its own"
        )
        assert file.read_bytes() == before  # not even switched to WAL
        assert not Path(f"{file}-wal").exists()


async def test_postgres_schema_lacking_a_table_is_refused(pg_databases: Databases) -> None:
    url = await pg_databases.url_for("dropped")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP TABLE foreach_items")
        await conn.execute("ALTER TABLE runs DROP COLUMN deadline")
    finally:
        await conn.close()
    store = PostgresStore(url)
    with pytest.raises(RuntimeError) as refused:
        await store.open()
    await store.close()
    message = str(refused.value)
    assert "\n" not in message
    assert (
        "lacks column runs.deadline, table foreach_items" in message and "restore it from a backup" in message
    )


async def test_postgres_required_columns_are_those_of_a_new_database(pg_databases: Databases) -> None:
    """pg._REQUIRED lists exactly what the migrations make (it cannot fall behind them)."""
    url = await pg_databases.url_for("fresh")
    conn = await asyncpg.connect(url)
    try:
        found: dict[str, set[str]] = {}
        for table in [r[0] for r in await conn.fetch(_PG_TABLES) if r[0] != "schema_migrations"]:
            found[table] = {r[0] for r in await conn.fetch(_PG_COLUMNS, table)}
    finally:
        await conn.close()
    assert found == {table: set(columns.split(", ")) for table, columns in pg._REQUIRED.items()}


async def test_sqlite_every_migration_is_found_in_a_new_file(tmp_path: Path) -> None:
    """The schema checks that date a database from before recorded migrations find every one
    in a new file (and its migrations are recorded)."""
    path = tmp_path / "new.db"
    await _open_and_close(SqliteStore(str(path)))
    with sqlite3.connect(path) as conn:
        schema = sqlite_store._Schema.read(conn)
        applied = [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    conn.close()
    assert [v for v, present in sqlite_store._PRESENT.items() if present(schema)] == sorted(
        sqlite_store._PRESENT
    )
    assert applied == sorted(sqlite_store.MIGRATIONS)


async def _open_and_close(store: SqliteStore | PostgresStore) -> None:
    await store.open()
    await store.close()
