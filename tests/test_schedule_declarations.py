"""Declared schedules across replicas and deploys: declarations are leases.

Every replica on a shared PostgreSQL marks the schedules it declares (`declared_at`) at boot and
every `declare_every` seconds, restores one it declares that has gone missing, and prunes only
schedules of its workflows that nobody has declared for `declare_lease` seconds. Before, each
replica pruned at boot every schedule of its workflows it did not declare: an older replica that
restarted in a rolling deploy deleted the schedules the newer ones declared, for good (audit D3).
The single server of an SQLite file still prunes at boot what it no longer declares.

The replicas here are engines in this process, with short refresh and lease times.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from conftest import Databases
from test_schedules import EVERY_SECOND, until

from runservice import StepContext, create_step, create_workflow
from runservice.engine import Engine
from runservice.storage import ScheduleDefinition, open_store
from runservice.workflow import Workflow

pytestmark = pytest.mark.timeout(60)

POLL = 0.2
"""The engines' claim interval: how often the schedule loop looks."""
EVERY = 0.3
"""Seconds between two refreshes of a replica's declarations (60 s in production)."""
LEASE = 2.0
"""Seconds a declaration holds (3 minutes in production): well past a refresh, so that a loop
slowed by a busy machine (CI on two workers) does not let a live declaration lapse."""
WORKFLOW = "wf-declared"
SCHEDULES = "runservice.engine.schedules"


@create_step("count")
async def count(ctx: StepContext) -> Any:
    return {"input": ctx.input_data}


def declaring(*schedule_ids: str) -> Workflow:
    """The workflow `WORKFLOW` of a version that declares these every-second schedules."""
    builder = create_workflow(WORKFLOW).then(count)
    for schedule_id in schedule_ids:
        builder = builder.schedule(schedule_id, EVERY_SECOND, overlap="allow")
    return builder.commit()


@contextlib.asynccontextmanager
async def replica(url: str, name: str, *schedule_ids: str, lease: float = LEASE) -> AsyncIterator[Engine]:
    """A replica (its own store) serving `WORKFLOW` with these schedules declared."""
    store = open_store(url)
    await store.open()
    try:
        engine = Engine(
            store, [declaring(*schedule_ids)], lease_seconds=30, claim_interval=POLL, replica_name=name
        )
        engine.schedules.declare_every, engine.schedules.declare_lease = EVERY, lease
        async with engine:
            yield engine
    finally:
        await store.close()


async def stored(engine: Engine) -> set[str]:
    return {row.schedule_id for row in await engine.schedules.list()}


async def fired_since(engine: Engine, schedule_id: str, since: float) -> bool:
    runs, _ = await engine.list_runs(workflow_id=WORKFLOW, page_size=1000)
    return any(r.schedule_id == schedule_id and (r.schedule_tick or 0.0) > since for r in runs)


async def old_boot(url: str, declared: Iterable[str]) -> list[str]:
    """What a replica of a version before leases does at its boot: it upserts its declarations
    and deletes every other schedule of its workflows, whoever declares them (returned)."""
    store = open_store(url)
    await store.open()
    try:
        return await store.upsert_schedules(
            [
                ScheduleDefinition(s, WORKFLOW, EVERY_SECOND, "UTC", None, None, "allow", "skip", "", 2e9)
                for s in declared
            ],
            prune=[WORKFLOW],
        )
    finally:
        await store.close()


def lines(caplog: pytest.LogCaptureFixture, level: int, word: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == SCHEDULES and r.levelno == level and word in r.getMessage()
    ]


async def test_a_schedule_an_older_replica_deleted_is_restored_and_fires_again(
    pg_databases: Databases, caplog: pytest.LogCaptureFixture
) -> None:
    """The audit's rolling deploy: two replicas declare A and B; a replica of the older build,
    which declares only A, boots and deletes B. A running replica restores B within a refresh
    (one warning naming it) and B fires again. Before, B stayed gone until a replica restarted."""
    caplog.set_level(logging.INFO, logger=SCHEDULES)
    url = await pg_databases.url_for("restored")
    async with replica(url, "a", "A", "B") as one, replica(url, "b", "A", "B"):
        await until(lambda: fired_since(one, "B", 0.0), 10, "a tick of B")
        deleted_at = time.time()
        # Asked of the boot itself: a replica's refresh may restore B before a read here.
        assert await old_boot(url, ["A"]) == ["B"]
        await until(lambda: _has(one, "B"), EVERY + 2.0, "B restored")
        await until(lambda: fired_since(one, "B", deleted_at), 5, "a tick of B after its restore")
    warned = lines(caplog, logging.WARNING, "gone from the database")
    assert warned and all("schedule B:" in line for line in warned), warned
    assert len(warned) == 1, warned  # restored by one replica; the other found it there


async def test_a_restored_schedule_keeps_its_paused_state_and_its_place(
    pg_databases: Databases,
) -> None:
    """A schedule restored is restored as the replica last read it: paused stays paused, and
    its next tick and last run are kept (not recomputed from now)."""
    url = await pg_databases.url_for("paused")
    async with replica(url, "a", "A", "B") as one:
        await until(lambda: fired_since(one, "B", 0.0), 10, "a tick of B")
        before = await one.schedules.pause("B")
        await asyncio.sleep(2 * POLL)  # the loop reads it paused
        assert await old_boot(url, ["A"]) == ["B"]
        await until(lambda: _has(one, "B"), EVERY + 2.0, "B restored")
        after = await one.schedules.get("B")
    assert after.paused
    assert (after.next_tick, after.last_tick, after.last_run_id) == (
        before.next_tick,
        before.last_tick,
        before.last_run_id,
    )


async def test_a_schedule_a_live_replica_declares_is_kept_when_another_does_not(
    pg_databases: Databases, caplog: pytest.LogCaptureFixture
) -> None:
    """A replica that does not declare X (a newer version without it) boots and turns for
    longer than a lease beside a replica that declares X: X stays, never deleted and re-created
    (its paused state and next tick are what the API left). Before, the boot deleted X."""
    caplog.set_level(logging.INFO, logger=SCHEDULES)
    url = await pg_databases.url_for("kept")
    async with replica(url, "old", "X", "Y") as old:
        paused = await old.schedules.pause("X")
        async with replica(url, "new", "Y") as new:
            assert await stored(new) == {"X", "Y"}
            await asyncio.sleep(2 * LEASE)
            assert await stored(new) == {"X", "Y"}
            kept = await new.schedules.get("X")
    assert (kept.paused, kept.next_tick) == (True, paused.next_tick)
    assert lines(caplog, logging.INFO, "removed") == []
    assert lines(caplog, logging.WARNING, "gone from the database") == []


async def test_a_schedule_no_replica_declares_any_more_is_removed_within_a_lease(
    pg_databases: Databases, caplog: pytest.LogCaptureFixture
) -> None:
    """A deploy that removes X, new replicas starting before the old ones stop: X stays while
    an old replica still declares it, and is removed about a lease after the last one stopped
    (one INFO line), for good. Before, the first new replica removed X at its boot."""
    caplog.set_level(logging.INFO, logger=SCHEDULES)
    url = await pg_databases.url_for("removed")
    async with contextlib.AsyncExitStack() as stack:
        olds = contextlib.AsyncExitStack()
        await olds.enter_async_context(replica(url, "old", "X", "Y"))
        try:
            new = await stack.enter_async_context(replica(url, "new", "Y"))
            await asyncio.sleep(LEASE + EVERY)
            assert await stored(new) == {"X", "Y"}, "removed while a replica declares it"
        finally:
            await olds.aclose()
        stopped = time.monotonic()
        await until(lambda: _lacks(new, "X"), LEASE + 2 * EVERY + 2.0, "X removed")
        assert time.monotonic() - stopped <= LEASE + 2 * EVERY + 2.0
        await asyncio.sleep(2 * EVERY)
        assert await stored(new) == {"Y"}
    removed = [line for line in lines(caplog, logging.INFO, "removed") if "schedule X:" in line]
    assert len(removed) == 1, removed


async def test_sqlite_a_schedule_removed_from_the_code_is_gone_after_the_restart(tmp_path: Path) -> None:
    """One server has an SQLite file to itself: it prunes at boot, without waiting for a lease
    (the default, 3 minutes), as before declarations were leases."""
    path = str(tmp_path / "runs.db")
    async with replica(path, "only", "X", "Y", lease=180.0) as engine:
        assert await stored(engine) == {"X", "Y"}
    async with replica(path, "only", "Y", lease=180.0) as engine:
        assert await stored(engine) == {"Y"}


async def test_a_database_of_the_previous_schema_upgrades_and_its_schedules_fire(
    tmp_path: Path, databases: Databases
) -> None:
    """A database of the schema before `declared_at` (SQLite 17, PostgreSQL 15) is migrated at
    open; its schedule goes on firing and is marked declared. A schedule stored before (NULL)
    that the server no longer declares is pruned: at once on SQLite (one server), on PostgreSQL
    only a lease after the boot (an older replica may still declare it)."""
    url = await databases.url_for(tmp_path / "runs.db")
    async with replica(url, "a", "X", "Y") as engine:
        await until(lambda: fired_since(engine, "X", 0.0), 10, "a tick of X")
    await _previous_schema(url, databases.backend)
    async with replica(url, "a", "X") as engine:
        booted = time.time()
        if databases.backend == "sqlite":
            assert await stored(engine) == {"X"}
        else:
            assert await stored(engine) == {"X", "Y"}
            await until(lambda: _lacks(engine, "Y"), LEASE + 2 * EVERY + 2.0, "Y removed")
        await until(lambda: fired_since(engine, "X", booted), 5, "a tick of X after the upgrade")
        marked = await _declared_at(url, databases.backend, "X")
    assert marked is not None and marked >= booted - 1.0


async def test_sqlite_the_schedule_loop_looks_once_a_poll_after_the_refresh_time_has_passed(
    tmp_path: Path,
) -> None:
    """On an exclusive store nothing is refreshed, so nothing moved the refresh time on: once
    past (a minute after boot in production), the loop's wait was cut to nothing and it read
    the schedules back to back, about 11,000 times a second, a whole core (review)."""
    store = open_store(str(tmp_path / "runs.db"))
    await store.open()
    looks = 0
    list_schedules = store.list_schedules

    async def counted() -> list[Any]:
        nonlocal looks
        looks += 1
        return await list_schedules()

    store.list_schedules = counted  # type: ignore[method-assign]
    try:
        engine = Engine(store, [declaring("X")], claim_interval=POLL, replica_name="only")
        engine.schedules.declare_every = EVERY
        async with engine:
            await asyncio.sleep(EVERY * 2 + POLL * 5)  # well past the refresh time (EVERY)
    finally:
        await store.close()
    # One look a poll (every POLL s), a few more for wake-ups; spinning made thousands.
    assert 2 <= looks <= 20, looks


async def _has(engine: Engine, schedule_id: str) -> bool:
    return schedule_id in await stored(engine)


async def _lacks(engine: Engine, schedule_id: str) -> bool:
    return schedule_id not in await stored(engine)


async def _previous_schema(url: str, backend: str) -> None:
    """Take the database back to the schema version before `declared_at`, as that version left it."""
    if backend == "sqlite":
        with contextlib.closing(sqlite3.connect(url)) as conn, conn:
            conn.execute("ALTER TABLE schedules DROP COLUMN declared_at")
            conn.execute("DELETE FROM schema_migrations WHERE version = 18")
            conn.execute("DELETE FROM schema_compatible WHERE version = 18")
            conn.execute("PRAGMA user_version = 17")
        return
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("ALTER TABLE schedules DROP COLUMN declared_at")
        await conn.execute("DELETE FROM schema_migrations WHERE version = 16")
        await conn.execute("DELETE FROM schema_compatible WHERE version = 16")
    finally:
        await conn.close()


async def _declared_at(url: str, backend: str, schedule_id: str) -> float | None:
    if backend == "sqlite":
        with contextlib.closing(sqlite3.connect(url)) as conn:
            row = conn.execute("SELECT declared_at FROM schedules WHERE schedule_id = ?", (schedule_id,))
            found = row.fetchone()
        return None if found is None else found[0]
    conn = await asyncpg.connect(url)
    try:
        value: float | None = await conn.fetchval(
            "SELECT declared_at FROM schedules WHERE schedule_id = $1", schedule_id
        )
        return value
    finally:
        await conn.close()
