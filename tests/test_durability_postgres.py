"""The durability rule on PostgreSQL: whatever a caller or a watcher is told has its WAL flushed.

Internal progress (`write(change, durable=False)`) commits with `synchronous_commit` off for
its own transaction; a durable write, a batch a watcher here follows, `sync()` and every read
that returns what such progress may hold (an active run or its events) are flushed first, on
this replica or any other. A power loss cannot be simulated here, so these tests read
PostgreSQL's own account: `pg_stat_wal.wal_sync` (the WAL syncs made) and the WAL's insert
and flush positions.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from conftest import Databases
from run_writes import finish, new_run, progress
from workflows import approval, echo

from runservice.engine.engine import Engine
from runservice.model import RunStatus
from runservice.storage import RunQuery, postgres_writes
from runservice.storage.postgres import PostgresStore


async def _positions(conn: asyncpg.Connection) -> tuple[int, int]:
    """The WAL's (insert, flush) positions, as byte offsets."""
    row = await conn.fetchrow(
        "SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn, pg_current_wal_flush_lsn() - '0/0'::pg_lsn"
    )
    assert row is not None
    return int(row[0]), int(row[1])


@pytest.fixture
async def url(pg_databases: Databases) -> str:
    return await pg_databases.url_for("durability")


@pytest.fixture
async def stores(url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores on one database, as two replicas."""
    first, second = PostgresStore(url), PostgresStore(url)
    await first.open()
    await second.open()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_progress_commits_without_a_wal_sync(
    url: str, stores: tuple[PostgresStore, PostgresStore]
) -> None:
    """The writer's statement itself (on the schema the stores made): a quiet batch commits
    without syncing the WAL, a durable one syncs it (PostgreSQL counts the syncs; a
    session's counts reach the view on demand)."""
    del stores
    conn = await asyncpg.connect(url)
    other = await asyncpg.connect(url)
    try:
        await postgres_writes.apply_batch(conn, [new_run("a")], notify=True)

        async def wal_syncs(writes: int, quiet: bool) -> int:
            await conn.execute("SELECT pg_stat_force_next_flush()")
            await conn.execute("SELECT 1")
            before = await other.fetchval("SELECT wal_sync FROM pg_stat_wal")
            for _ in range(writes):
                await postgres_writes.apply_batch(conn, [progress("a")], notify=True, quiet=quiet)
            await conn.execute("SELECT pg_stat_force_next_flush()")
            await conn.execute("SELECT 1")
            return int(await other.fetchval("SELECT wal_sync FROM pg_stat_wal")) - int(before)

        assert await wal_syncs(20, quiet=False) >= 20
        # The WAL writer flushes on its own meanwhile (every 200 ms by default, and the
        # server is shared with the other tests' databases), but not per commit.
        assert await wal_syncs(20, quiet=True) <= 5
        # The long way (a batch with one run twice) is quiet too.
        await conn.execute("SELECT pg_stat_force_next_flush()")
        before = await other.fetchval("SELECT wal_sync FROM pg_stat_wal")
        for _ in range(10):
            await postgres_writes.apply_batch(conn, [progress("a"), progress("a")], notify=True, quiet=True)
        await conn.execute("SELECT pg_stat_force_next_flush()")
        await conn.execute("SELECT 1")
        assert int(await other.fetchval("SELECT wal_sync FROM pg_stat_wal")) - int(before) <= 5
        events = await postgres_writes.apply_batch(conn, [progress("a")], notify=False, quiet=True)
        assert [event.sequence for event in events[0].events] == [62]  # type: ignore[union-attr]
    finally:
        await conn.close()
        await other.close()


async def test_only_what_is_told_is_flushed(stores: tuple[PostgresStore, PostgresStore]) -> None:
    store, _ = stores
    await store.write(new_run("a"))
    assert (store.transactions, store.syncs, store.durable) == (1, 1, 1)
    for _ in range(3):
        await store.write(progress("a"), durable=False)
    assert (store.transactions, store.syncs, store.durable) == (4, 1, 1)  # nobody was told
    await store.sync()
    assert store.durable == store.transactions == 4
    await store.sync()  # covered already: nothing to do
    await store.write(progress("a"), durable=False)
    await store.write(progress("a"))  # a durable write covers the progress before it
    assert (store.transactions, store.syncs, store.durable) == (6, 2, 6)


async def test_a_read_on_another_replica_flushes_what_it_saw_first(
    url: str, stores: tuple[PostgresStore, PostgresStore]
) -> None:
    """Progress one replica committed without a flush is visible to the others at once:
    what they read of it is flushed before they answer, so no reply is taken back by a
    power loss. (The WAL writer flushes such commits within 200 ms by itself; the reads
    here come right after the write.)"""
    writer, reader = stores
    observer = await asyncpg.connect(url)
    try:
        await writer.write(new_run("a"))
        checks = reader.flush_checks
        reads = (
            lambda: reader.get_run("a"),
            lambda: reader.get_run("a", steps=True),
            lambda: reader.read_events("a", 0),
            lambda: reader.list_runs(RunQuery(workflow_id="wf")),
        )
        for read in reads:
            await writer.write(progress("a"), durable=False)
            inserted, _ = await _positions(observer)
            assert await read()
            _, flushed = await _positions(observer)
            assert flushed >= inserted
        assert reader.flush_checks == checks + len(reads)
    finally:
        await observer.close()


async def test_a_settled_run_is_read_without_a_flush(stores: tuple[PostgresStore, PostgresStore]) -> None:
    """A run settles with a flushed commit, which covers all it wrote before: reads of it,
    an early page of its log too, cost nothing more."""
    writer, reader = stores
    await writer.write(new_run("a"))
    await writer.write(progress("a"), durable=False)
    await writer.write(finish("a"))
    checks = reader.flush_checks
    run = await reader.get_run("a", steps=True)
    assert run is not None and run.status is RunStatus.SUCCESS
    assert await reader.get_run("a") is not None
    assert len(await reader.read_events("a", 0)) == 3
    assert len(await reader.list_runs(RunQuery(workflow_id="wf"))) == 1
    assert len(await reader.read_events("a", 0, limit=2)) == 2
    assert reader.flush_checks == checks


async def test_a_watched_runs_progress_is_flushed_before_its_subscribers_hear(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    store, _ = stores
    await store.write(new_run("a"))
    with store.hub.subscribe("a") as subscription:
        await store.write(progress("a"), durable=False)
        assert store.durable == store.transactions  # the batch was flushed for its watcher
        assert [event.sequence for event in await subscription.wait(5)] == [2]


async def test_a_subscriber_arriving_while_progress_commits_hears_of_it_once_flushed(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    """Subscribed after the writer decided the batch needs no flush, but before it is
    published: the writer flushes it before the subscriber hears of it."""
    store, _ = stores
    await store.write(new_run("a"))
    writing = asyncio.create_task(store.write(progress("a"), durable=False))
    for _ in range(3):  # the writer takes the batch and sends its statement
        await asyncio.sleep(0)
    with store.hub.subscribe("a") as subscription:
        events = await subscription.wait(5)
        assert [event.sequence for event in events] == [2]
        assert store.durable == store.transactions
    await writing


async def test_a_run_waits_for_one_flush(url: str) -> None:
    """A 3-step run: its progress commits without waiting, its settling commit is flushed
    and covers the rest, and the reply comes after it."""
    store = PostgresStore(url)
    await store.open()
    try:
        async with Engine(store, [echo, approval]) as engine:
            transactions, syncs = store.transactions, store.syncs
            run = await engine.start("approval", input_data={"count": 1}, wait=True)
            assert run.status is RunStatus.SUSPENDED
            assert store.syncs == syncs + 1 and store.transactions > transactions + 1
            assert store.durable == store.transactions
            syncs = store.syncs
            done = await engine.resume(run.run_id, resume_data={"approved": True}, wait=True)
            assert done.status is RunStatus.SUCCESS
            assert store.syncs == syncs + 1 and store.durable == store.transactions
            syncs = store.syncs
            started = await engine.start("echo", input_data={"count": 1})  # no wait: the start is the reply
            assert started.status is RunStatus.RUNNING
            assert store.syncs > syncs
    finally:
        await store.close()


async def test_a_database_that_refuses_the_flush_check_gets_every_commit_flushed(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Where the role may not write a WAL message (revoked by an administrator, a managed
    service), reads could not make sure of a flush before answering: the store then flushes
    every commit, as before, and says so once."""
    role = f"plain_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN")
        await admin.execute(f"GRANT USAGE, CREATE ON SCHEMA public TO {role}")
        await admin.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
        await admin.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
        await admin.execute(
            "REVOKE EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text) FROM PUBLIC"
        )
        plain = url.replace("//runservice@", f"//{role}@", 1)
        assert plain != url
        store = PostgresStore(plain)
        await store.open()
        try:
            assert "refuses the WAL flush check" in caplog.text
            await store.write(new_run("a"))
            await store.write(progress("a"), durable=False)
            assert store.syncs == store.transactions == store.durable == 2
            run = await store.get_run("a")
            assert run is not None and run.last_sequence == 2
            assert store.flush_checks == 0
        finally:
            await store.close()
    finally:
        await admin.execute(
            "GRANT EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text) TO PUBLIC"
        )
        await admin.execute(f"DROP OWNED BY {role}")
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()


async def test_the_writer_never_scans_the_runs_table(url: str) -> None:
    """The writer's plans are made at its first statements, here on an empty table that
    PostgreSQL has no statistics of, and kept (generic plans); the table then grows with
    nothing analysing it. Every later change still finds its run by key: a plan that
    scanned the table would cost each commit more as the table grew (BENCHMARKS.md)."""
    admin = await asyncpg.connect(url)
    store = PostgresStore(url)
    try:
        await admin.execute("ALTER TABLE runs SET (autovacuum_enabled = false)")
        await store.open()
        for run_id in ("a", "b"):
            await store.write(new_run(run_id), durable=False)
            await store.write(progress(run_id), durable=False)
            await store.write(finish(run_id))
        await admin.execute(
            "INSERT INTO runs (run_id, workflow_id, status, created_at, updated_at)"
            " SELECT 'old-' || g, 'wf', 'success', g, g FROM generate_series(1, 20000) g"
        )

        async def scans() -> int:
            return int(
                await admin.fetchval("SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'runs'")
            )

        before = await scans()
        for run_id in ("c", "d"):
            await store.write(new_run(run_id), durable=False)
            await store.write(progress(run_id), durable=False)
            await store.write(finish(run_id))
        await asyncio.sleep(1.1)  # a session reports its counts at most once a second
        await store.write(progress("d"))
        await asyncio.sleep(0.2)
        assert await scans() == before
    finally:
        await store.close()
        await admin.close()


async def test_the_stores_sessions_plan_once_and_compile_nothing(url: str) -> None:
    """Generic plans (made once per statement) and no JIT: the statements are short, and where
    the statistics made one run look huge PostgreSQL spent ~50 ms compiling a delete."""
    store = PostgresStore(url)
    conn = await store._connect()
    try:
        assert await conn.fetchval("SHOW jit") == "off"
        assert await conn.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
        assert await conn.fetchval("SHOW synchronous_commit") == "on"
    finally:
        await conn.close()
