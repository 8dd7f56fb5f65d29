"""Large values are stored once per run (storage/values.py) and read back unchanged."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runservice.model import EventDraft, EventType, Run, RunStatus, StepRecord, StepStatus
from runservice.storage import RunQuery, RunWrite
from runservice.storage.sqlite import SCHEMA_VERSION, SqliteStore
from runservice.storage.values import THRESHOLD

pytestmark = pytest.mark.timeout(30)

BIG = {"text": "v" * (200 * 1024), "n": [1, 2.5, None, True]}
OTHER = {"text": "w" * (THRESHOLD + 10)}
SMALL = {"x": 1}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(str(tmp_path / "runs.db"))
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def value_rows(store: SqliteStore, run_id: str) -> int:
    conn = sqlite3.connect(store.path)
    try:
        return int(conn.execute("SELECT count(*) FROM run_values WHERE run_id = ?", (run_id,)).fetchone()[0])
    finally:
        conn.close()


async def write_pass_through(store: SqliteStore, run_id: str, data: object) -> None:
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


async def test_equal_large_values_are_stored_once_and_read_back(store: SqliteStore) -> None:
    await write_pass_through(store, "r1", BIG)
    assert value_rows(store, "r1") == 1
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


async def test_different_values_each_stored_once_small_ones_inline(store: SqliteStore) -> None:
    run = Run(
        run_id="r2", workflow_id="wf", status=RunStatus.RUNNING, created_at=1.0, updated_at=1.0, input=SMALL
    )
    record = StepRecord(path=("a",), status=StepStatus.SUSPENDED, payload=OTHER, suspend_payload=BIG)
    await store.write(RunWrite(run_id="r2", create=run, steps=(record,)))
    assert value_rows(store, "r2") == 2
    got = await store.get_run("r2", steps=True)
    assert got is not None and got.input == SMALL
    assert got.steps[0].payload == OTHER and got.steps[0].suspend_payload == BIG


async def test_deleting_a_run_deletes_its_values(store: SqliteStore) -> None:
    await write_pass_through(store, "gone", BIG)
    await write_pass_through(store, "kept", BIG)
    await store.write(RunWrite(run_id="gone", delete=True))
    assert value_rows(store, "gone") == 0 and value_rows(store, "kept") == 1
    kept = await store.get_run("kept", steps=True)
    assert kept is not None and kept.steps[2].output == BIG


async def test_a_large_run_costs_about_one_copy_on_disk(store: SqliteStore, tmp_path: Path) -> None:
    """The pass-through run of a 200 KB value: one copy on disk, not a dozen."""
    await write_pass_through(store, "r3", BIG)
    await store.close()
    size = Path(store.path).stat().st_size  # noqa: ASYNC240  (one stat after the store closed)
    assert size < 1.5 * len(BIG["text"]) + 200 * 1024  # the schema's pages and small rows


async def test_version_2_database_is_migrated(tmp_path: Path) -> None:
    """A v2 database (v2 indexes, no run_values, no leases) gains the listing indexes,
    run_values (v3) and the lease columns (v4)."""
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


async def test_numbers_json_cannot_carry_never_fail_a_write(store: SqliteStore) -> None:
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
