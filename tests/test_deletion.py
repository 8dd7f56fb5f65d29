"""A run's delete holds the store's one writer for a bounded time, whatever the run's size: a
large run goes from every reader at its delete's commit, and its rows are removed afterwards,
in chunks off the writer (storage/removal.py). Before, one statement (one SQLite transaction)
deleted them all while every other write of the replica waited: 0.7 s a million events on
PostgreSQL, 1.6 s on SQLite, with the event loop stopped as long.

Real stores and servers, on SQLite and PostgreSQL (tests named postgres on PostgreSQL only).
Chunks are small here (`small_chunks`), so a run of 10,000 events is large."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from conftest import Databases, ServingFactory
from edge import error_info
from google.protobuf import struct_pb2
from process import server_env
from scraping import scrape, value

from runservice.engine.retention import Retention
from runservice.model import (
    EventDraft,
    EventType,
    ForeachItem,
    Run,
    RunStatus,
    StepRecord,
    StepStatus,
)
from runservice.server.observability import Observability
from runservice.storage import RunQuery, RunWrite, open_store, postgres_writes, removal
from runservice.storage import postgres as pg
from runservice.storage import sqlite as sqlite_store
from runservice.storage.postgres import PostgresStore
from runservice.storage.sqlite import SqliteStore
from runservice.v1 import run_pb2, run_service_pb2, run_service_pb2_grpc

pytestmark = pytest.mark.timeout(90)

AnyStore = SqliteStore | PostgresStore

EVENTS = 10_000
"""Events of the large run: 200 chunks of 50 once its 360 other rows are gone."""
INLINE = 100
CHUNK = 50
LEFTOVER_KINDS = ("steps", "foreach_items", "run_values", "events")


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch removes 100 rows with its deletes, a removal chunk 50 of each kind (5,000 and
    5,000 or 1,000 in production): a large run is quick to make."""
    monkeypatch.setattr(removal, "INLINE_ROWS", INLINE)
    monkeypatch.setattr(pg, "REMOVAL_CHUNK", CHUNK)
    monkeypatch.setattr(sqlite_store, "REMOVAL_CHUNK", CHUNK)


@pytest.fixture
async def url(databases: Databases, tmp_path: Path) -> str:
    return await databases.url_for(tmp_path / "runs.db")


@pytest.fixture
async def store(url: str) -> AsyncIterator[AnyStore]:
    opened = open_store(url)
    assert isinstance(opened, SqliteStore | PostgresStore)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def new_run(run_id: str, status: RunStatus = RunStatus.SUCCESS, created_at: float = 1000.0) -> Run:
    return Run(run_id=run_id, workflow_id="wf", status=status, created_at=created_at, updated_at=created_at)


def draft(data: object = None) -> EventDraft:
    return EventDraft(type=EventType.STEP_OUTPUT, run_status=RunStatus.RUNNING, data=data)


def step(name: str) -> StepRecord:
    return StepRecord(path=(name,), status=StepStatus.SUCCESS, position=1, output={"step": name})


# -- the database as another connection sees it --------------------------------------------


async def query(url: str, sql: str, *args: Any) -> Any:
    """The first column of the first row of `sql` (`?` parameters), on a connection of its
    own: as an operator, or another process, sees the database."""
    if url.startswith("postgresql://"):
        numbered = iter(range(1, 100))
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval(re.sub(r"\?", lambda _: f"${next(numbered)}", sql), *args)
        finally:
            await conn.close()
    with contextlib.closing(sqlite3.connect(url, timeout=10)) as conn, conn:
        row = conn.execute(sql, args).fetchone()
        return None if row is None else row[0]


async def leftovers(url: str, run_id: str) -> int:
    """Rows under `run_id` but its delete marks: the run's, or a deleted run's not removed yet."""
    counts = [
        await query(url, f"SELECT count(*) FROM {table} WHERE run_id = ?", run_id) for table in LEFTOVER_KINDS
    ]
    marks = await query(url, "SELECT count(*) FROM requests WHERE run_id = ? AND kind <> 'delete'", run_id)
    return int(sum(counts) + marks)


async def pending(url: str) -> int:
    """Deleted runs whose rows are still being removed."""
    return int(await query(url, "SELECT count(*) FROM deleted_runs"))


async def make_large(store: AnyStore, url: str, run_id: str) -> None:
    """A settled run with more of every kind of row than a batch removes with its delete:
    `EVENTS` events (all but the first inserted with SQL), 120 steps, 120 foreach items, a
    large value and a Start's request mark."""
    assert (
        await store.write(
            RunWrite(
                run_id,
                create=new_run(run_id),
                events=[draft({"large": "x" * 2000})],  # stored once, in run_values
                steps=[step(f"s{i}") for i in range(120)],
                items=[(("each",), ForeachItem(i, StepStatus.SUCCESS)) for i in range(120)],
                requests=(("start", "s1"),),
            )
        )
    ).applied
    if url.startswith("postgresql://"):
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(
                "INSERT INTO events (run_id, seq, time, body) SELECT run_id, g, time, body"
                " FROM events, generate_series(2, $2) g WHERE run_id = $1 AND seq = 1",
                run_id,
                EVENTS,
            )
            await conn.execute("UPDATE runs SET last_seq = $2 WHERE run_id = $1", run_id, EVENTS)
        finally:
            await conn.close()
    else:
        with contextlib.closing(sqlite3.connect(url, timeout=10)) as conn, conn:
            conn.execute(
                "WITH RECURSIVE g(n) AS (SELECT 2 UNION ALL SELECT n + 1 FROM g WHERE n < ?)"
                " INSERT INTO events (run_id, seq, time, body) SELECT e.run_id, g.n, e.time, e.body"
                " FROM events e, g WHERE e.run_id = ? AND e.seq = 1",
                (EVENTS, run_id),
            )
            conn.execute("UPDATE runs SET last_seq = ? WHERE run_id = ?", (EVENTS, run_id))
    assert await leftovers(url, run_id) == EVENTS + 120 + 120 + 1 + 1


@contextlib.contextmanager
def removal_held(store: AnyStore) -> Iterator[asyncio.Event]:
    """Hold the store's removal before its next chunk until the event returned is set (or
    the block ends)."""
    gate = asyncio.Event()
    remove = store.removal._remove

    async def held(run_id: str) -> tuple[bool | None, int]:
        await gate.wait()
        return await remove(run_id)

    store.removal._remove = held
    try:
        yield gate
    finally:
        gate.set()
        store.removal._remove = remove


# -- the writer goes on ----------------------------------------------------------------------


async def test_a_large_runs_delete_answers_at_once_and_other_runs_commit_while_its_rows_go(
    store: AnyStore, url: str
) -> None:
    await make_large(store, url, "big")
    assert (await store.write(RunWrite("other", create=new_run("other", RunStatus.RUNNING)))).applied
    async with asyncio.timeout(60):
        assert (await store.write(RunWrite("big", delete=True))).applied
        # Its rows outlived the delete's commit: they go afterwards (before, with it, the writer
        # waiting meanwhile).
        assert await leftovers(url, "big") > 0
        assert await store.get_run("big") is None

        done = asyncio.Event()
        mid_removal = 0

        async def progress() -> None:  # another run's steps, as its drive commits them
            nonlocal mid_removal
            n = 0
            while not done.is_set():
                n += 1
                assert (await store.write(RunWrite("other", events=[draft(n)]), durable=False)).applied
                if store.removal.chunks > 1 and store.removal.removed == 0:
                    mid_removal += 1

        other = asyncio.create_task(progress())
        await store.removal.drained()
        done.set()
        await other
    assert mid_removal > 0, "no other write committed between two chunks of the removal"
    assert store.removal.removed == 1 and store.removal.chunks > EVENTS // CHUNK
    assert await leftovers(url, "big") == 0 and await pending(url) == 0


async def test_the_metrics_show_the_runs_being_removed_and_the_rows_removed(
    store: AnyStore, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scrapes of the real metrics endpoint while two large runs' rows are removed: two runs
    being removed (`runservice_store_runs_being_removed`, counted in the database: the removal
    takes one run a pass here) and some of their rows removed
    (`runservice_store_rows_removed_total`); once they are gone, none, and every row counted.
    Before, neither was there: an operator could not see that rows were being removed in the
    background, nor that the removal was stuck."""
    monkeypatch.setattr(removal, "FIND", 1)
    observability = Observability(store, metrics_address="127.0.0.1:0")
    await observability.start()
    assert observability.endpoint is not None
    metrics = f"http://{observability.endpoint.address}/metrics"
    remove, gate, second = store.removal._remove, asyncio.Event(), asyncio.Event()

    async def after_one_chunk(run_id: str) -> tuple[bool | None, int]:
        if store.removal.chunks >= 1:  # its first pass has ended, and was reported
            second.set()
            await gate.wait()
        return await remove(run_id)

    try:
        for run_id in ("a", "b"):
            await make_large(store, url, run_id)
        rows = await leftovers(url, "a") + await leftovers(url, "b")  # every one left to the removal
        store.removal._remove = after_one_chunk
        async with asyncio.timeout(60):
            # Both deleted before the removal looks (a delete through the store wakes it at once).
            await delete_in_one_batch(url, ["a", "b"], removal.RemovalBudget())
            store.removal.wake()
            await second.wait()
            held = await scrape(metrics)
            assert value(held, "runservice_store_runs_being_removed") == 2
            assert 0 < value(held, "runservice_store_rows_removed_total") < rows
            gate.set()
            await store.removal.drained()
        done = await scrape(metrics)
    finally:
        gate.set()
        store.removal._remove = remove
        await observability.stop()
    assert value(done, "runservice_store_runs_being_removed") == 0
    assert value(done, "runservice_store_rows_removed_total") == rows


async def test_postgres_a_delete_never_waits_for_the_rows_of_its_run(pg_databases: Databases) -> None:
    """An operator's open transaction holds a row of the run's log: the delete answers, and the
    replica's other runs go on, while only the removal waits for the row. Before, the delete
    waited for it in the writer, every write of the replica behind it, until `lock_timeout`
    refused it (2 s; with PostgreSQL's default of none, for as long as the transaction stayed)."""
    url = await pg_databases.url_for("held-row")
    store = PostgresStore(url)
    await store.open()
    operator = await asyncpg.connect(url)
    try:
        await make_large(store, url, "big")
        assert (await store.write(RunWrite("other", create=new_run("other", RunStatus.RUNNING)))).applied
        held = operator.transaction()
        await held.start()
        await operator.execute("SELECT 1 FROM events WHERE run_id = 'big' AND seq = 5 FOR UPDATE")
        async with asyncio.timeout(60):
            assert (await store.write(RunWrite("big", delete=True))).applied
            assert await store.get_run("big") is None
            for n in range(3):
                assert (await store.write(RunWrite("other", events=[draft(n)]))).applied
            assert await leftovers(url, "big") > 0  # the held row at least: the removal waits for it
            await held.rollback()
            await store.removal.drained()
        assert await leftovers(url, "big") == 0 and await pending(url) == 0
    finally:
        await operator.close()
        await store.close()


async def test_postgres_a_held_row_of_one_deleted_run_stops_no_other_runs_removal(
    pg_databases: Databases, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator's open transaction holds a row of the deleted run `a`: the runs deleted
    after it are removed all the same, and a create of one of their ids is committed, while
    `a` waits. Before, `a`'s chunk waited out the pool's command timeout (told as the database
    away), the whole pass failed with it and backed off: a parked create of `b` was refused
    after `PARK_WAIT`, and `c` was never touched while the row stayed held."""
    url = await pg_databases.url_for("held-one-of-three")
    store = PostgresStore(url)
    await store.open()
    operator = await asyncpg.connect(url)
    try:
        for run_id in ("a", "b", "c"):
            await make_large(store, url, run_id)
        held = operator.transaction()
        await held.start()
        # Its steps, which its first chunk removes.
        await operator.execute("SELECT 1 FROM steps WHERE run_id = 'a' FOR UPDATE")
        async with asyncio.timeout(60):
            for run_id in ("a", "b", "c"):  # `a` oldest: the removal takes it first
                assert (await store.write(RunWrite(run_id, delete=True))).applied
            made = await store.write(RunWrite("b", create=new_run("b", created_at=2000.0), events=[draft()]))
            assert made.applied and [event.sequence for event in made.events] == [1]
            while await leftovers(url, "c"):
                await asyncio.sleep(0.05)
            assert await leftovers(url, "a") > 0 and await pending(url) == 1
            lines = [record.getMessage() for record in caplog.records]
            assert any("run 'a' is held by another session" in line for line in lines)
            assert not any("unavailable" in line for line in lines)
            await held.rollback()
            await store.removal.drained()
        assert await leftovers(url, "a") == 0 and await pending(url) == 0
        assert await leftovers(url, "b") == 1  # the new run's event
    finally:
        await operator.close()
        await store.close()


async def delete_in_one_batch(url: str, run_ids: list[str], budget: removal.RemovalBudget) -> None:
    """Delete `run_ids` in one transaction, as the writer's batch does, with its `budget`."""
    if url.startswith("postgresql://"):
        conn = await asyncpg.connect(url)
        try:
            async with conn.transaction():
                for run_id in run_ids:
                    deleted = await postgres_writes._delete(conn, RunWrite(run_id, delete=True), budget)
                    assert deleted.applied
        finally:
            await conn.close()
        return
    with contextlib.closing(sqlite3.connect(url, timeout=10)) as conn, conn:
        for run_id in run_ids:
            sqlite_store._delete_run(conn, run_id, 1000.0, budget)


async def test_a_delete_left_to_the_removal_draws_down_its_batchs_budget(store: AnyStore, url: str) -> None:
    """A large run's counted rows are charged to the batch though they are left to the removal:
    the budget is spent, and a small run deleted after it in the batch is left too, its counts
    bounded. Before, only a run that went whole was charged, and each large run's delete of a
    batch counted up to `INLINE_ROWS` rows of each kind again (500 held the writer a second)."""
    await make_large(store, url, "big")
    small = RunWrite("small", create=new_run("small"), events=[draft()], steps=[step("a")])
    assert (await store.write(small)).applied
    budget = removal.RemovalBudget()
    await delete_in_one_batch(url, ["big"], budget)
    assert budget.rows <= 0
    await delete_in_one_batch(url, ["small"], budget)
    assert await pending(url) == 2 and await leftovers(url, "small") == 2
    async with asyncio.timeout(60):
        await store.removal.drained()
    assert await pending(url) == 0 and await leftovers(url, "small") == 0


# -- no reader sees the rows; a new run of the id keeps its own ------------------------------


async def test_reads_find_the_run_gone_and_a_new_run_of_its_id_waits_for_its_rows(
    store: AnyStore, url: str
) -> None:
    await make_large(store, url, "big")
    async with asyncio.timeout(60):
        with removal_held(store) as removing:
            assert (await store.write(RunWrite("big", delete=True, requests=(("delete", "d1"),)))).applied
            assert await leftovers(url, "big") == EVENTS + 242  # none removed yet
            assert await pending(url) == 1
            # Gone for every reader, though its rows are still there.
            assert await store.get_run("big") is None and await store.get_run("big", steps=True) is None
            assert await store.created_at("big") is None
            assert await store.read_events("big", 0) == []
            assert not await store.has_request("big", "start", "s1")
            assert await store.request_ids("big", "start") == []
            assert await store.list_runs(RunQuery()) == []
            assert await store.count_runs(frozenset({RunStatus.SUCCESS})) == {RunStatus.SUCCESS: 0}
            # A retried DeleteRun finds its mark.
            assert await store.has_request("big", "delete", "d1")

            # A new run under the id waits for the old rows to go; the writer goes on meanwhile.
            made = store.submit(
                RunWrite(
                    "big",
                    create=new_run("big", RunStatus.RUNNING, created_at=2000.0),
                    events=[draft("new")],
                    steps=[step("mine")],
                    requests=(("start", "s2"),),
                )
            )
            assert (await store.write(RunWrite("other", create=new_run("other")))).applied
            assert not made.done()
            assert await store.get_run("big") is None
            removing.set()
            result = await made
        assert result.applied and [event.sequence for event in result.events] == [1]
        await store.removal.drained()
    run = await store.get_run("big", steps=True)
    assert run is not None and run.created_at == 2000.0
    assert [record.path for record in run.steps] == [("mine",)]
    assert [event.data for event in await store.read_events("big", 0)] == ["new"]
    assert await store.request_ids("big", "start") == ["s2"]
    assert await store.has_request("big", "delete", "d1")
    assert await leftovers(url, "big") == 3  # its own event, step and request mark
    assert await pending(url) == 0


async def test_a_run_row_made_beside_the_old_rows_shows_none_of_their_steps(
    store: AnyStore, url: str
) -> None:
    """An older runservice, which knows no `deleted_runs`, reserves the id (its CreateRun) while
    the old rows are being removed: GetRun shows the reservation with no step. Before, SQLite
    showed the old run's steps (and their foreach items) as the reservation's."""
    await make_large(store, url, "big")
    async with asyncio.timeout(60):
        with removal_held(store):
            assert (await store.write(RunWrite("big", delete=True))).applied
            await query(
                url,
                "INSERT INTO runs (run_id, workflow_id, status, created_at, updated_at)"
                " VALUES ('big', 'wf', 'pending', 2000, 2000)",
            )
            reservation = await store.get_run("big", steps=True)
            assert reservation is not None and reservation.created_at == 2000.0
            assert reservation.steps == ()
            assert await store.read_events("big", 0) == []


async def test_postgres_a_run_made_past_the_check_never_logs_among_the_old_rows(
    pg_databases: Databases,
) -> None:
    """A create whose statement's snapshot predates the delete's commit, or an older replica's
    (which knows no `deleted_runs`), can make the run's row while the old rows are being
    removed. It cannot log an event, the old first event holds the id: an older replica's
    Start is refused, this replica's waits for the old rows, then keeps its own."""
    url = await pg_databases.url_for("past-the-check")
    store = PostgresStore(url)
    await store.open()
    try:
        await make_large(store, url, "big")
        async with asyncio.timeout(60):
            with removal_held(store) as removing:
                assert (await store.write(RunWrite("big", delete=True))).applied
                await query(
                    url,
                    "INSERT INTO runs (run_id, workflow_id, status, created_at, updated_at)"
                    " VALUES ('big', 'wf', 'pending', 2000, 2000)",
                )
                with pytest.raises(asyncpg.UniqueViolationError):
                    await query(url, "INSERT INTO events (run_id, seq, time, body) VALUES ('big', 1, 0, '')")
                reservation = await store.get_run("big", steps=True)
                assert reservation is not None and reservation.steps == ()  # not the old run's
                assert await store.read_events("big", 0) == []
                started = store.submit(
                    RunWrite(
                        "big",
                        expect=frozenset({RunStatus.PENDING}),
                        patch={"status": RunStatus.RUNNING},
                        events=[draft("new")],
                        steps=[step("mine")],
                    )
                )
                assert (await store.write(RunWrite("other", create=new_run("other")))).applied
                assert not started.done()
                removing.set()
                result = await started
            assert result.applied and [event.sequence for event in result.events] == [1]
            await store.removal.drained()
        run = await store.get_run("big", steps=True)
        assert run is not None and run.created_at == 2000.0 and run.status is RunStatus.RUNNING
        assert [record.path for record in run.steps] == [("mine",)]
        assert [event.data for event in await store.read_events("big", 0)] == ["new"]
        assert await leftovers(url, "big") == 2 and await pending(url) == 0
    finally:
        await store.close()


# -- a crash in the middle of the removal ------------------------------------------------------

_KILLED_MID_REMOVAL = """
import asyncio, sys
from runservice.storage import RunWrite, open_store, removal
from runservice.storage import postgres, sqlite

async def main(url: str) -> None:
    removal.INLINE_ROWS, postgres.REMOVAL_CHUNK, sqlite.REMOVAL_CHUNK = 100, 50, 50
    store = open_store(url)
    await store.open()
    remove, first = store.removal._remove, asyncio.Event()

    async def one_chunk(run_id: str) -> tuple[bool | None, int]:
        if first.is_set():
            await asyncio.Event().wait()  # SIGKILLed here, in the middle of the removal
        done = await remove(run_id)
        first.set()
        return done

    store.removal._remove = one_chunk
    assert (await store.write(RunWrite("big", delete=True))).applied
    await first.wait()
    print("removing", flush=True)
    await asyncio.Event().wait()

asyncio.run(main(sys.argv[1]))
"""


async def killed_mid_removal(url: str) -> None:
    """Delete `big` in a process of its own, and SIGKILL it after one chunk of the removal."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _KILLED_MID_REMOVAL, url, stdout=asyncio.subprocess.PIPE, env=server_env()
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            assert await process.stdout.readline() == b"removing\n"
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()


async def test_rows_a_killed_process_left_are_removed_after_a_restart(url: str) -> None:
    first = open_store(url)
    assert isinstance(first, SqliteStore | PostgresStore)
    await first.open()
    try:
        await make_large(first, url, "big")
    finally:
        await first.close()
    await killed_mid_removal(url)
    left = await leftovers(url, "big")
    assert 0 < left < EVENTS + 242 and await pending(url) == 1
    again = open_store(url)
    assert isinstance(again, SqliteStore | PostgresStore)
    await again.open()
    try:
        assert await again.get_run("big") is None and await again.read_events("big", 0) == []
        async with asyncio.timeout(60):
            await again.removal.drained()
        assert again.removal.removed == 1
        assert await leftovers(url, "big") == 0 and await pending(url) == 0
        assert (await again.write(RunWrite("big", create=new_run("big"), events=[draft()]))).applied
    finally:
        await again.close()


async def test_postgres_rows_a_killed_replica_left_are_removed_by_another(
    pg_databases: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another replica, running all along, finds them by itself (`REMOVAL_POLL`)."""
    monkeypatch.setattr(pg, "REMOVAL_POLL", 0.2)
    url = await pg_databases.url_for("killed-replica")
    other = PostgresStore(url)
    await other.open()
    try:
        await make_large(other, url, "big")
        await killed_mid_removal(url)
        async with asyncio.timeout(60):
            while await pending(url):
                await asyncio.sleep(0.05)
        assert other.removal.removed == 1 and await leftovers(url, "big") == 0
    finally:
        await other.close()


# -- through the server: DeleteRun, and the retention sweep ------------------------------------


async def test_delete_run_of_a_large_run_then_start_under_its_id(
    serving: ServingFactory, tmp_path: Path, url: str
) -> None:
    async with serving(tmp_path / "runs.db") as served, grpc.aio.insecure_channel(served.address) as channel:
        stub = run_service_pb2_grpc.RunServiceStub(channel)
        store = served.store
        assert isinstance(store, SqliteStore | PostgresStore)
        await make_large(store, url, "big")
        await query(url, "UPDATE runs SET workflow_id = 'echo' WHERE run_id = 'big'")
        async with asyncio.timeout(60):
            with removal_held(store) as removing:
                delete = run_service_pb2.DeleteRunRequest(run_id="big", request_id="d1")
                await stub.DeleteRun(delete)
                assert await leftovers(url, "big") == EVENTS + 242
                with pytest.raises(grpc.aio.AioRpcError) as missing:
                    await stub.GetRun(run_service_pb2.GetRunRequest(run_id="big"))
                assert missing.value.code() is grpc.StatusCode.NOT_FOUND
                assert error_info(missing.value).reason == "RUN_NOT_FOUND"
                with pytest.raises(grpc.aio.AioRpcError) as watched:
                    async for _ in stub.Watch(run_service_pb2.WatchRequest(run_id="big")):
                        pass
                assert watched.value.code() is grpc.StatusCode.NOT_FOUND
                await stub.DeleteRun(delete)  # a retry succeeds
                listed = await stub.ListRuns(run_service_pb2.ListRunsRequest(workflow_id="echo"))
                assert [run.run_id for run in listed.runs] == []
                # A Start under the id waits for the old rows to go, then runs with a log of its own.
                count = struct_pb2.Value()
                count.struct_value.update({"count": 1})
                start = run_service_pb2.StartRequest(
                    workflow_id="echo", run_id="big", input_data=count, wait=True
                )

                async def start_again() -> run_service_pb2.StartResponse:
                    return await stub.Start(start)

                again = asyncio.create_task(start_again())
                await asyncio.sleep(0.2)
                assert not again.done()
                removing.set()
                fresh = await again
            assert fresh.run.status == run_pb2.RUN_STATUS_SUCCESS
            sequences = [
                event.sequence
                async for reply in stub.Watch(run_service_pb2.WatchRequest(run_id="big"))
                for event in reply.events
            ]
            assert sequences == list(range(1, fresh.run.last_sequence + 1))
            assert fresh.run.last_sequence < 10
            await store.removal.drained()
        assert await pending(url) == 0


async def test_the_retention_sweep_deletes_a_large_run_the_same_way(store: AnyStore, url: str) -> None:
    await make_large(store, url, "big")
    small = replace(new_run("small"), ended_at=1000.0)
    assert (await store.write(RunWrite("small", create=small, events=[draft()], steps=[step("a")]))).applied
    async with asyncio.timeout(60):
        # Apart: a small run after a large one in the same batch finds its budget spent.
        assert await Retention(store, 86400.0).sweep() == 1
        assert await store.get_run("small") is None
        assert await leftovers(url, "small") == 0  # a small run goes whole with its delete
        assert await pending(url) == 0
        assert (await store.write(RunWrite("big", patch={"ended_at": 1000.0}))).applied
        assert await Retention(store, 86400.0).sweep() == 1
        assert await store.get_run("big") is None
        assert await pending(url) == 1
        await store.removal.drained()
    assert await leftovers(url, "big") == 0 and await pending(url) == 0
