"""Large values are stored once per run (storage/values.py) and read back unchanged, on
SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import orjson
import pytest
from conftest import Databases
from postgres import apply_migrations

from runservice.model import EventDraft, EventType, ForeachItem, Run, RunStatus, StepRecord, StepStatus
from runservice.storage import RunQuery, RunWrite, open_store
from runservice.storage.postgres import PostgresStore
from runservice.storage.sqlite import SCHEMA_VERSION, SqliteStore
from runservice.storage.values import THRESHOLD

pytestmark = pytest.mark.timeout(30)

BIG = {"text": "v" * (200 * 1024), "n": [1, 2.5, None, True]}
OTHER = {"text": "w" * (THRESHOLD + 10)}
SMALL = {"x": 1}


AnyStore = SqliteStore | PostgresStore


@pytest.fixture
async def store(databases: Databases, tmp_path: Path) -> AsyncIterator[AnyStore]:
    opened = open_store(await databases.url_for(tmp_path / "runs.db"))
    assert isinstance(opened, SqliteStore | PostgresStore)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def value_rows(store: AnyStore, run_id: str) -> int:
    if isinstance(store, PostgresStore):
        conn = await asyncpg.connect(store.url)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM run_values WHERE run_id = $1", run_id))
        finally:
            await conn.close()
    sqlite = sqlite3.connect(store.path)
    try:
        return int(
            sqlite.execute("SELECT count(*) FROM run_values WHERE run_id = ?", (run_id,)).fetchone()[0]
        )
    finally:
        sqlite.close()


async def write_pass_through(store: AnyStore, run_id: str, data: object) -> None:
    """A run whose input, every step payload and output, event data and result are `data`
    (equal copies, not one object, as a step's validated output would be)."""
    copy = dict(data) if isinstance(data, dict) else data
    run = Run(
        run_id=run_id, workflow_id="wf", status=RunStatus.RUNNING, created_at=1.0, updated_at=1.0, input=data
    )
    await store.write(RunWrite(run_id=run_id, create=run))
    for i, name in enumerate(("one", "two", "three")):
        started = StepRecord(path=(name,), status=StepStatus.RUNNING, payload=copy, position=i)
        done = StepRecord(path=(name,), status=StepStatus.SUCCESS, payload=copy, output=dict(BIG), position=i)
        await store.write(
            RunWrite(
                run_id=run_id,
                steps=(started,),
                events=(EventDraft(EventType.STEP_START, RunStatus.RUNNING, step=started),),
            )
        )
        await store.write(
            RunWrite(
                run_id=run_id,
                steps=(done,),
                events=(
                    EventDraft(EventType.STEP_OUTPUT, RunStatus.RUNNING, data=dict(BIG)),
                    EventDraft(EventType.STEP_RESULT, RunStatus.RUNNING, step=done),
                ),
            )
        )
    await store.write(RunWrite(run_id=run_id, patch={"status": RunStatus.SUCCESS, "result": dict(BIG)}))


async def test_equal_large_values_are_stored_once_and_read_back(store: AnyStore) -> None:
    await write_pass_through(store, "r1", BIG)
    assert await value_rows(store, "r1") == 1
    run = await store.get_run("r1", steps=True)
    assert run is not None and run.input == BIG and run.result == BIG
    assert [(s.payload, s.output) for s in run.steps] == [(BIG, BIG)] * 3
    plain = await store.get_run("r1")
    assert plain is not None and plain.input == BIG and plain.result == BIG
    events = await store.read_events("r1", 0)
    assert [e.type for e in events] == [
        EventType.STEP_START,
        EventType.STEP_OUTPUT,
        EventType.STEP_RESULT,
    ] * 3
    assert all(e.step is None or e.step.payload == BIG for e in events)
    assert [e.data for e in events if e.type is EventType.STEP_OUTPUT] == [BIG] * 3
    assert events[2].step is not None and events[2].step.output == BIG
    (listed,) = await store.list_runs(RunQuery())
    assert listed.input == BIG and listed.result == BIG
    (summary,) = await store.list_runs(RunQuery(payloads=False))
    assert summary.input is None and summary.result is None and summary.status is RunStatus.SUCCESS


async def test_different_values_each_stored_once_small_ones_inline(store: AnyStore) -> None:
    run = Run(
        run_id="r2", workflow_id="wf", status=RunStatus.RUNNING, created_at=1.0, updated_at=1.0, input=SMALL
    )
    record = StepRecord(path=("a",), status=StepStatus.SUSPENDED, payload=OTHER, suspend_payload=BIG)
    await store.write(RunWrite(run_id="r2", create=run, steps=(record,)))
    assert await value_rows(store, "r2") == 2
    got = await store.get_run("r2", steps=True)
    assert got is not None and got.input == SMALL
    assert got.steps[0].payload == OTHER and got.steps[0].suspend_payload == BIG


async def test_deleting_a_run_deletes_its_values(store: AnyStore) -> None:
    await write_pass_through(store, "gone", BIG)
    await write_pass_through(store, "kept", BIG)
    await store.write(RunWrite(run_id="gone", delete=True))
    assert await value_rows(store, "gone") == 0 and await value_rows(store, "kept") == 1
    kept = await store.get_run("kept", steps=True)
    assert kept is not None and kept.steps[2].output == BIG


async def test_foreach_items_refer_to_stored_values(store: AnyStore) -> None:
    """Items' large outputs (from the record's items or as rows of their own) are stored once."""
    run = Run(run_id="f", workflow_id="wf", status=RunStatus.RUNNING, created_at=1.0, updated_at=1.0)
    items = tuple(ForeachItem(i, StepStatus.SUCCESS, output=dict(BIG)) for i in range(2))
    record = StepRecord(path=("each",), status=StepStatus.RUNNING, payload=[1, 2, 3], foreach_items=items)
    await store.write(RunWrite(run_id="f", create=run, steps=(record,)))
    third = ForeachItem(2, StepStatus.SUSPENDED, suspend_payload=dict(BIG))
    await store.write(RunWrite(run_id="f", items=((("each",), third),)))
    assert await value_rows(store, "f") == 1
    got = await store.get_run("f", steps=True)
    assert got is not None
    (each,) = got.steps
    assert [(i.index, i.output, i.suspend_payload) for i in each.foreach_items] == [
        (0, BIG, None),
        (1, BIG, None),
        (2, None, BIG),
    ]


_TABLE_BYTES = (
    "SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'"
)


async def test_a_large_run_costs_about_one_copy_on_disk(store: AnyStore) -> None:
    """The pass-through run of a 200 KB value (which compression cannot shrink much): one
    copy on disk, not a dozen."""
    text = orjson.dumps(list(range(40_000))).decode()  # ~230 KB of digits
    assert len(text) > 200 * 1024
    if isinstance(store, PostgresStore):
        conn = await asyncpg.connect(store.url)
        try:
            before = await conn.fetchval(_TABLE_BYTES)
            await write_pass_through(store, "r3", {"text": text})
            grown = await conn.fetchval(_TABLE_BYTES) - before
        finally:
            await conn.close()
        assert grown < 1.5 * len(text), grown
        return
    await write_pass_through(store, "r3", {"text": text})
    await store.close()
    size = Path(store.path).stat().st_size  # noqa: ASYNC240  (one stat after the store closed)
    assert size < 1.5 * len(text) + 200 * 1024  # the schema's pages and small rows


async def test_version_2_database_is_migrated(tmp_path: Path) -> None:
    """A v2 database (v2 indexes, no run_values, no leases, no record of applied migrations)
    gains the listing indexes, run_values (v3) and the lease columns (v4)."""
    path = str(tmp_path / "v2.db")
    store = SqliteStore(path)
    await store.open()
    run = Run(
        run_id="old", workflow_id="wf", status=RunStatus.FAILED, created_at=1.0, updated_at=1.0, input=SMALL
    )
    await store.write(
        RunWrite(run_id="old", create=run, steps=(StepRecord(path=("a",), status=StepStatus.FAILED),))
    )
    await store.close()
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        DROP INDEX runs_by_status; DROP INDEX runs_by_resource; DROP INDEX runs_by_workflow_status;
        DROP INDEX runs_by_workflow_resource; DROP INDEX runs_by_resource_status;
        DROP INDEX runs_by_workflow_resource_status; DROP TABLE run_values;
        DROP INDEX runs_by_owner; ALTER TABLE runs DROP COLUMN owner; ALTER TABLE runs DROP COLUMN epoch;
        ALTER TABLE runs DROP COLUMN lease_expires_at; ALTER TABLE runs DROP COLUMN cancel_requested;
        DROP INDEX runs_by_forked_from; ALTER TABLE runs DROP COLUMN forked_from;
        ALTER TABLE runs DROP COLUMN travel;
        DROP INDEX runs_overdue; ALTER TABLE runs DROP COLUMN deadline;
        DROP INDEX runs_by_workflow_version; ALTER TABLE runs DROP COLUMN definition_version;
        ALTER TABLE runs DROP COLUMN definition_digest;
        CREATE INDEX runs_by_status ON runs (status);
        DROP TABLE schema_migrations;
        PRAGMA user_version = 2;
        """
    )
    conn.close()
    store = SqliteStore(path)
    await store.open()
    try:
        failed = frozenset({RunStatus.FAILED})
        query = RunQuery(workflow_id="wf", resource_id=None, statuses=failed)
        assert [r.run_id for r in await store.list_runs(query)] == ["old"]
        assert [r.run_id for r in await store.list_runs(RunQuery(resource_id="x", statuses=failed))] == []
        await write_pass_through(store, "new", BIG)
        got = await store.get_run("new", steps=True)
        assert got is not None and got.result == BIG
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        lease_columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
        assert {"owner", "epoch", "lease_expires_at", "cancel_requested"} <= lease_columns
        (columns,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'runs_by_status'").fetchone()
        assert "created_at" in columns
    finally:
        conn.close()


async def test_postgres_version_11_database_keeps_its_inline_values(pg_databases: Databases) -> None:
    """A database from before run_values (postgres_v12.sql) is migrated: its runs, written with
    every value inline, read as before and can be deleted; new runs store large values once."""
    url = await pg_databases.empty()
    conn = await asyncpg.connect(url)
    try:
        await apply_migrations(conn, range(12))
        big = orjson.dumps(BIG)
        record = orjson.dumps(
            {"path": ["a"], "status": "success", "payload": BIG, "output": BIG, "position": 0}
        )
        await conn.execute(
            "INSERT INTO runs (run_id, workflow_id, status, input, result, last_seq, created_at, updated_at)"
            " VALUES ('old', 'wf', 'success', $1, $1, 1, 1, 1)",
            big,
        )
        await conn.execute("INSERT INTO steps VALUES ('old', 'a', 0, $1)", record)
        event = b'{"type":"workflow-step-result","run_status":"running","step":' + record + b"}"
        await conn.execute("INSERT INTO events VALUES ('old', 1, 1, $1)", event)
    finally:
        await conn.close()
    store = PostgresStore(url)
    await store.open()
    try:
        old = await store.get_run("old", steps=True)
        assert old is not None and old.input == BIG and old.result == BIG
        assert (old.steps[0].payload, old.steps[0].output) == (BIG, BIG)
        (listed,) = await store.list_runs(RunQuery())
        assert listed.input == BIG
        (stored,) = await store.read_events("old", 0)
        assert stored.step is not None and stored.step.output == BIG
        await write_pass_through(store, "new", BIG)
        assert await value_rows(store, "new") == 1 and await value_rows(store, "old") == 0
        new = await store.get_run("new", steps=True)
        assert new is not None and new.result == BIG and new.steps[2].output == BIG
        await store.write(RunWrite(run_id="old", delete=True))
        assert await store.get_run("old") is None
    finally:
        await store.close()


async def test_numbers_json_cannot_carry_never_fail_a_write(store: AnyStore) -> None:
    """A step may hand back ints beyond 64 bits or NaN: the write succeeds, as on the wire."""
    odd = {"wide": 2**70, "huge": 2**2000, "nan": float("nan"), "ok": [1, 2**63 - 1]}
    run = Run(
        run_id="n", workflow_id="wf", status=RunStatus.RUNNING, created_at=1.0, updated_at=1.0, input=odd
    )
    record = StepRecord(path=("a",), status=StepStatus.SUCCESS, output=odd)
    event = EventDraft(EventType.STEP_RESULT, RunStatus.RUNNING, step=record, data=odd)
    await store.write(RunWrite(run_id="n", create=run, steps=(record,), events=(event,)))
    expected = {"wide": float(2**70), "huge": None, "nan": None, "ok": [1, 2**63 - 1]}
    got = await store.get_run("n", steps=True)
    assert got is not None and got.input == expected and got.steps[0].output == expected
    (stored,) = await store.read_events("n", 0)
    assert stored.data == expected


def test_a_body_is_encoded_whole_when_small_and_field_by_field_when_large() -> None:
    from runservice.storage.values import RECORD_FIELDS, ValueWriter, dumps

    small = {"path": ["a"], "status": "success", "payload": {"n": 1}, "output": [1, 2], "big": 2**70}
    writer = ValueWriter()
    assert writer.body("r", dict(small), RECORD_FIELDS) == dumps(
        writer.fields("r", dict(small), RECORD_FIELDS)
    )
    assert writer.rows == []
    # Just under the threshold as a whole: inline.
    edge = {"payload": "x" * (THRESHOLD - 20)}
    assert len(dumps(edge)) < THRESHOLD and ValueWriter().body("r", edge, RECORD_FIELDS) == dumps(edge)
    # A large field is referenced, the rest stays inline, and the value is gathered once.
    large = {"path": ["a"], "payload": "y" * THRESHOLD, "output": {"n": 2}}
    writer = ValueWriter()
    body = writer.body("r", dict(large), RECORD_FIELDS)
    [(run_id, digest, stored)] = writer.rows
    assert (run_id, stored) == ("r", dumps(large["payload"]).decode())
    assert body == dumps({"path": ["a"], "output": {"n": 2}, "refs": {"payload": digest}})
