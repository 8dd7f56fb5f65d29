"""Contract tests of the stores: every test taking `store` or `url` runs on SQLite (a real
file) and on PostgreSQL (a real server, tests/postgres.py); the rest are backend-specific."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from conftest import Databases
from postgres import SUPERUSER, find_bin_dir

from runservice.errors import StorageUnavailable
from runservice.model import (
    Event,
    EventDraft,
    EventType,
    Execution,
    ForeachItem,
    ResumeLabel,
    Run,
    RunError,
    RunStatus,
    StepRecord,
    StepStatus,
    Travel,
)
from runservice.storage import RUN_PATCH_FIELDS, RunQuery, RunWrite, WriteResult, open_store
from runservice.storage import postgres as pg
from runservice.storage.postgres import PostgresStore
from runservice.storage.sqlite import BASE_VERSION, SCHEMA_VERSION, SqliteStore

AnyStore = SqliteStore | PostgresStore

RUNNING = frozenset({RunStatus.RUNNING})


def new_run(
    run_id: str,
    *,
    workflow_id: str = "wf",
    created_at: float = 1000.0,
    status: RunStatus = RunStatus.PENDING,
    resource_id: str | None = None,
) -> Run:
    return Run(
        run_id=run_id,
        workflow_id=workflow_id,
        status=status,
        created_at=created_at,
        updated_at=created_at,
        resource_id=resource_id,
        input={"x": 1},
        request_context={"user": "u1"},
        trace_id="trace-" + run_id,
    )


def draft(data: object = None, status: RunStatus = RunStatus.RUNNING) -> EventDraft:
    return EventDraft(type=EventType.STEP_OUTPUT, run_status=status, data=data)


def step(
    name: str, position: int, status: StepStatus = StepStatus.RUNNING, output: object = None
) -> StepRecord:
    return StepRecord(path=("outer", name), status=status, position=position, output=output)


async def create(store: AnyStore, run: Run, *events: EventDraft) -> WriteResult:
    return await store.write(RunWrite(run_id=run.run_id, create=run, events=events))


def sequences(events: Iterable[Event]) -> list[int]:
    return [event.sequence for event in events]


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "nested" / "dir" / "runs.db")  # parents do not exist yet


@pytest.fixture
async def url(databases: Databases, db_path: str) -> str:
    """The test's database on its backend: the SQLite file, or a migrated PostgreSQL database."""
    return await databases.url_for(db_path)


def new_store(url: str) -> AnyStore:
    store = open_store(url)
    assert isinstance(store, SqliteStore | PostgresStore)
    return store


@pytest.fixture
async def store(url: str) -> AsyncIterator[AnyStore]:
    store = new_store(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def uncommitted(url: str, events: list[Event]) -> list[Event]:
    """The events another connection does not see (a blocking check, for use inside callbacks)."""
    keys = [(event.run_id, event.sequence) for event in events]
    if url.startswith("postgresql://"):
        bin_dir = find_bin_dir()
        assert bin_dir is not None
        values = ", ".join(f"('{run_id}', {seq})" for run_id, seq in keys)
        sql = f"SELECT run_id, seq FROM events WHERE (run_id, seq) IN ({values})"
        out = subprocess.run(
            [str(bin_dir / "psql"), "-At", "-F", " ", "-U", SUPERUSER, "-d", url, "-c", sql],
            capture_output=True,
            text=True,
            check=True,
        )
        seen = {(run_id, int(seq)) for run_id, seq in (line.split() for line in out.stdout.splitlines())}
    else:
        with sqlite3.connect(url) as conn:
            seen = {key for key in keys if conn.execute(_HAS_EVENT, key).fetchone() is not None}
        conn.close()
    return [event for event, key in zip(events, keys, strict=True) if key not in seen]


_HAS_EVENT = "SELECT 1 FROM events WHERE run_id = ? AND seq = ?"


async def test_create_then_get(store: AnyStore) -> None:
    run = new_run("r1")
    result = await create(store, run, EventDraft(EventType.WORKFLOW_START, RunStatus.PENDING))
    assert result.applied
    assert result.status is RunStatus.PENDING
    assert sequences(result.events) == [1]
    assert result.last_sequence == 1

    got = await store.get_run("r1")
    assert got is not None
    assert got == replace(run, updated_at=got.updated_at, last_sequence=1)
    assert got.updated_at >= run.updated_at
    assert await store.get_run("missing") is None


async def test_sqlite_file_is_wal_with_its_schema_version(db_path: str) -> None:
    store = SqliteStore(db_path)
    await store.open()
    await store.close()
    # The file is in WAL mode, created with its parent directories.
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


async def test_sqlite_new_file_has_small_pages_and_an_existing_file_keeps_its_own(
    db_path: str, tmp_path: Path
) -> None:
    store = SqliteStore(db_path)
    await store.open()
    await store.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == 2048
    conn.close()
    # A file made with SQLite's default pages (as every database before this setting) opens,
    # migrates, writes and reads as before, and keeps its page size.
    old = str(tmp_path / "old.db")
    with sqlite3.connect(old) as conn:
        conn.execute("PRAGMA page_size = 4096")
        conn.execute("CREATE TABLE made_before (x)")  # writes the file's first pages
        conn.execute("DROP TABLE made_before")  # a table not ours would be refused
    conn.close()
    store = SqliteStore(old)
    await store.open()
    try:
        start = EventDraft(EventType.WORKFLOW_START, RunStatus.PENDING)
        assert (await create(store, new_run("r1"), start)).applied
        got = await store.get_run("r1")
        assert got is not None and got.last_sequence == 1
    finally:
        await store.close()
    with sqlite3.connect(old) as conn:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == 4096
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


async def test_create_of_existing_id_is_not_applied(store: AnyStore) -> None:
    await create(store, new_run("r1"))
    await store.write(RunWrite("r1", patch={"status": RunStatus.RUNNING}))

    again = RunWrite(
        "r1",
        create=new_run("r1", workflow_id="other"),
        patch={"result": 5},
        events=[draft()],
        steps=[step("a", 1)],
        requests=(("start", "req-1"),),
    )
    result = await store.write(again)
    assert result == WriteResult(applied=False, status=RunStatus.RUNNING)

    got = await store.get_run("r1", steps=True)
    assert got is not None
    assert (got.workflow_id, got.result, got.last_sequence, got.steps) == ("wf", None, 0, ())
    assert not await store.has_request("r1", "start", "req-1")


async def test_expect_mismatch_and_missing_run(store: AnyStore) -> None:
    await create(store, new_run("r1"))

    result = await store.write(RunWrite("r1", expect=RUNNING, patch={"result": 1}, events=[draft()]))
    assert result == WriteResult(applied=False, status=RunStatus.PENDING)
    got = await store.get_run("r1")
    assert got is not None
    assert (got.result, got.last_sequence) == (None, 0)

    result = await store.write(RunWrite("r1", expect=frozenset(RunStatus), patch={"result": 1}))
    assert (result.applied, result.status) == (True, RunStatus.PENDING)

    assert await store.write(RunWrite("nope", expect=RUNNING)) == WriteResult(applied=False, status=None)
    with pytest.raises(KeyError):
        await store.write(RunWrite("nope", patch={"result": 1}))


async def test_expect_read_applies_only_to_the_same_run_with_nothing_logged_since(store: AnyStore) -> None:
    await create(store, new_run("r1"), draft())  # sequence 1
    read = await store.get_run("r1")
    assert read is not None
    born = read.created_at
    stale = RunWrite("r1", expect_read=(born, 0), patch={"result": 1}, events=[draft()])
    assert await store.write(stale) == WriteResult(applied=False, status=RunStatus.PENDING)
    other = RunWrite("r1", expect_read=(born + 1, 1), patch={"result": 1}, events=[draft()])
    assert await store.write(other) == WriteResult(applied=False, status=RunStatus.PENDING)
    current = await store.write(RunWrite("r1", expect_read=(born, 1), patch={"result": 2}, events=[draft()]))
    assert current.applied and current.last_sequence == 2
    # With no sequence: the same run, whatever it logged since (a Cancel's ask to a driven run).
    any_since = await store.write(RunWrite("r1", expect_read=(born, None), patch={"cancel_requested": True}))
    assert any_since.applied
    another = RunWrite("r1", expect_read=(born + 1, None), patch={"cancel_requested": False})
    assert not (await store.write(another)).applied
    assert not (await store.write(RunWrite("r1", expect_read=(born + 1, None), delete=True))).applied
    # In a batch with changes of other runs (one statement on PostgreSQL), each its own.
    await create(store, new_run("r2"))
    r2 = await store.get_run("r2")
    assert r2 is not None
    both = await asyncio.gather(
        store.write(RunWrite("r1", expect_read=(born, 1), patch={"result": 3})),
        store.write(RunWrite("r2", expect_read=(r2.created_at, 0), patch={"result": 4})),
    )
    assert [result.applied for result in both] == [False, True]
    got = [await store.get_run(run_id) for run_id in ("r1", "r2")]
    assert [(run.result, run.last_sequence) for run in got if run is not None] == [(2, 2), (4, 0)]


async def test_patch_fields_round_trip(store: AnyStore) -> None:
    await create(store, new_run("r1"))
    patch = {
        "status": RunStatus.SUSPENDED,
        "input": [1, "two", None],
        "state": {"count": 3},
        "request_context": {"tenant": "t", "n": 2},
        "result": {"ok": True, "nothing": None},
        "error": RunError("Boom", "it broke", details={"code": 7}),
        "suspended": (("outer", "a"), ("b",)),
        "resume_labels": {"approve": ResumeLabel(("outer", "a")), "item": ResumeLabel(("b",), 2)},
        "started_at": 1001.5,
        "ended_at": 1002.25,
        "wake_at": 1003.0,
        "trace_id": "abc",
        "cancel_requested": True,
        "travel": Travel(("outer", "a"), {"value": 1}, count=2, fork_step=("b",)),
        "deadline": 1004.5,
        "definition_version": "2",
        "definition_digest": "sha256:abc",
    }
    assert set(patch) == RUN_PATCH_FIELDS  # a new patch field needs its encoding here and in the store
    result = await store.write(RunWrite("r1", patch=patch))
    assert (result.applied, result.status) == (True, RunStatus.SUSPENDED)

    got = await store.get_run("r1")
    assert got is not None
    assert {name: getattr(got, name) for name in patch} == patch

    # Clearing fields, and JSON values that are falsy but not null.
    cleared: dict[str, object] = {
        "error": None,
        "suspended": (),
        "resume_labels": {},
        "started_at": None,
        "wake_at": None,
        "deadline": None,
    }
    await store.write(RunWrite("r1", patch=cleared))
    got = await store.get_run("r1")
    assert got is not None
    assert {name: getattr(got, name) for name in cleared} == cleared
    falsy: list[object] = [None, 0, False, "", [], {}, "null"]
    for value in falsy:
        await store.write(RunWrite("r1", patch={"result": value}))
        got = await store.get_run("r1")
        assert got is not None
        assert got.result == value
        assert type(got.result) is type(value)


async def test_bad_patch_fails_alone(store: AnyStore) -> None:
    await create(store, new_run("r1"))
    with pytest.raises(ValueError, match="unknown run field"):
        await store.write(RunWrite("r1", patch={"status": RunStatus.RUNNING, "nope": 1}, events=[draft()]))
    got = await store.get_run("r1")
    assert got is not None
    assert (got.status, got.last_sequence) == (RunStatus.PENDING, 0)


async def test_steps_upsert_and_order_by_position(store: AnyStore) -> None:
    await create(store, new_run("r1"))
    await store.write(RunWrite("r1", steps=[step("c", 3), step("a", 1)]))
    await store.write(RunWrite("r1", steps=[step("b", 2), step("a", 1, StepStatus.SUCCESS, output={"v": 1})]))

    got = await store.get_run("r1", steps=True)
    assert got is not None
    assert [s.path for s in got.steps] == [("outer", "a"), ("outer", "b"), ("outer", "c")]
    assert got.steps[0] == step("a", 1, StepStatus.SUCCESS, output={"v": 1})

    plain = await store.get_run("r1")
    assert plain is not None
    assert plain.steps == ()
    assert (await store.list_runs(RunQuery()))[0].steps == ()

    await create(store, new_run("empty"))
    empty = await store.get_run("empty", steps=True)
    assert empty is not None
    assert empty.steps == ()


async def test_sequences_are_gap_free_under_concurrent_writes(store: AnyStore) -> None:
    runs = [f"run-{i}" for i in range(50)]
    await asyncio.gather(*(create(store, new_run(run_id)) for run_id in runs))

    writes = [
        RunWrite(run_id, events=[draft({"n": n, "k": k}) for k in range(1 + n % 3)])
        for n in range(20)
        for run_id in runs
    ]
    results = await asyncio.gather(*(store.write(w) for w in writes))

    expected = sum(1 + n % 3 for n in range(20))
    for run_id in runs:
        written = sorted(
            (e for w, r in zip(writes, results, strict=True) if w.run_id == run_id for e in r.events),
            key=lambda e: e.sequence,
        )
        assert sequences(written) == list(range(1, expected + 1))
        stored = await store.read_events(run_id, 0)
        assert stored == written
        got = await store.get_run(run_id)
        assert got is not None
        assert got.last_sequence == expected

    # Paging through the log with `after` and `limit`.
    assert sequences(await store.read_events("run-0", 5, limit=3)) == [6, 7, 8]
    assert await store.read_events("run-0", expected) == []
    assert await store.read_events("missing", 0) == []


async def test_failing_change_consumes_no_sequence_and_spares_its_batch(store: AnyStore) -> None:
    await create(store, new_run("r1"))
    await create(store, new_run("r2"))
    bad_step = step("bad", 1, output={1, 2})  # a set: json.dumps raises TypeError

    before = store.transactions
    outcomes = await asyncio.gather(
        store.write(RunWrite("r1", events=[draft(1)])),
        store.write(RunWrite("r1", events=[draft(2), draft(3)], steps=[bad_step], patch={"result": "bad"})),
        store.write(RunWrite("r2", events=[draft(1)])),
        store.write(RunWrite("r1", events=[draft(4)], requests=(("k", "id"),))),
        return_exceptions=True,
    )
    assert store.transactions == before + 1  # all four were in one batch
    ok1, bad, ok2, ok3 = outcomes
    assert isinstance(bad, TypeError)
    assert isinstance(ok1, WriteResult) and isinstance(ok2, WriteResult) and isinstance(ok3, WriteResult)
    assert sequences(ok1.events) == [1]
    assert sequences(ok2.events) == [1]
    assert sequences(ok3.events) == [2]

    events = await store.read_events("r1", 0)
    assert [(e.sequence, e.data) for e in events] == [(1, 1), (2, 4)]
    got = await store.get_run("r1", steps=True)
    assert got is not None
    assert (got.result, got.steps, got.last_sequence) == (None, (), 2)
    assert await store.has_request("r1", "k", "id")


async def test_database_error_mid_batch_rolls_back_only_its_change(store: AnyStore) -> None:
    # A change the database refuses half-way (NOT NULL on workflow_id) sends the batch
    # down the savepoint path: it fails alone, its neighbours commit with their rows.
    await create(store, new_run("r1"))
    broken = replace(new_run("r2"), workflow_id=None)  # type: ignore[arg-type]

    before = store.transactions
    outcomes = await asyncio.gather(
        store.write(RunWrite("r1", events=[draft(1)], steps=[step("a", 1)])),
        store.write(RunWrite("r2", create=broken, events=[draft(1)])),
        store.write(RunWrite("r1", events=[draft(2)], steps=[step("a", 1, StepStatus.SUCCESS)])),
        return_exceptions=True,
    )
    assert store.transactions == before + 1
    ok1, bad, ok2 = outcomes
    assert isinstance(bad, sqlite3.IntegrityError | asyncpg.NotNullViolationError)
    assert isinstance(ok1, WriteResult) and isinstance(ok2, WriteResult)
    assert (sequences(ok1.events), sequences(ok2.events)) == ([1], [2])
    assert await store.get_run("r2") is None
    got = await store.get_run("r1", steps=True)
    assert got is not None
    assert [(s.path, s.status) for s in got.steps] == [(("outer", "a"), StepStatus.SUCCESS)]
    assert [e.data for e in await store.read_events("r1", 0)] == [1, 2]


async def test_database_error_in_a_batch_of_distinct_runs_fails_only_its_change(store: AnyStore) -> None:
    # Each run once: on PostgreSQL the batch is first tried as one statement, which the
    # database refuses whole; the long way then commits every change but the bad one.
    await create(store, new_run("r1"))
    await create(store, new_run("r3"))
    broken = replace(new_run("r2"), workflow_id=None)  # type: ignore[arg-type]

    before = store.transactions
    outcomes = await asyncio.gather(
        store.write(RunWrite("r1", events=[draft(1)], steps=[step("a", 1)], requests=(("k", "id"),))),
        store.write(RunWrite("r2", create=broken, events=[draft(1)])),
        store.write(RunWrite("r3", events=[draft(2), draft(3)], patch={"state": {"n": 1}})),
        return_exceptions=True,
    )
    assert store.transactions == before + 1
    ok1, bad, ok3 = outcomes
    assert isinstance(bad, sqlite3.IntegrityError | asyncpg.NotNullViolationError)
    assert isinstance(ok1, WriteResult) and isinstance(ok3, WriteResult)
    assert (sequences(ok1.events), sequences(ok3.events)) == ([1], [1, 2])
    assert await store.get_run("r2") is None
    assert await store.has_request("r1", "k", "id")
    r3 = await store.get_run("r3")
    assert r3 is not None and (r3.state, r3.last_sequence) == ({"n": 1}, 2)
    assert [e.data for e in await store.read_events("r3", 0)] == [2, 3]


async def test_postgres_one_statement_batch_notifies_every_run_in_payloads_under_the_limit(
    pg_databases: Databases,
) -> None:
    """A batch of many runs with long ids: its NOTIFY lines are cut into several payloads,
    each under PostgreSQL's 8,000 bytes, and together name every run at its last sequence."""
    from runservice.storage import postgres_writes

    url = await pg_databases.url_for("notify-chunks")
    store = PostgresStore(url)
    await store.open()
    await store.close()  # migrated
    listener, writer = await asyncpg.connect(url), await asyncpg.connect(url)
    payloads: list[str] = []
    await listener.add_listener(postgres_writes.CHANNEL, lambda *args: payloads.append(args[3]))
    try:
        runs = [f"{i:03d}-" + "x" * 120 for i in range(200)]
        created = [RunWrite(run_id, create=new_run(run_id), events=[draft(0)]) for run_id in runs]
        # The one-statement path itself: apply_batch would hide a refused NOTIFY by falling back.
        outcomes = await postgres_writes._apply_in_one_statement(
            writer, created, time.time(), True, quiet=False
        )
        assert all(isinstance(outcome, WriteResult) and outcome.applied for outcome in outcomes)
        # Progress commits without waiting for the WAL flush, and announces all the same.
        progress = [RunWrite(run_id, events=[draft(1), draft(2)]) for run_id in runs]
        outcomes = await postgres_writes._apply_in_one_statement(
            writer, progress, time.time(), True, quiet=True
        )
        assert [outcome.last_sequence for outcome in outcomes] == [3] * 200  # type: ignore[union-attr]
        async with asyncio.timeout(10):
            while sum(len(p.splitlines()) for p in payloads) < 400:
                await asyncio.sleep(0.01)
        assert len(payloads) > 2 and all(len(p.encode()) < 8000 for p in payloads)
        lines = [line.split(" ", 1) for p in payloads for line in p.splitlines()]
        assert sorted((run_id, int(seq)) for seq, run_id in lines) == sorted(
            [(run_id, 1) for run_id in runs] + [(run_id, 3) for run_id in runs]
        )
    finally:
        await listener.close()
        await writer.close()


async def test_one_batch_applies_each_runs_changes_in_order(store: AnyStore) -> None:
    # Queued together, these commit in one transaction; each run's changes apply in the
    # order they were written, whatever else the batch holds.
    await create(store, new_run("old"), draft(0))
    pending = RunStatus.PENDING
    writes = [
        RunWrite("new", create=new_run("new"), events=[draft(1)]),
        RunWrite("new", patch={"status": RunStatus.RUNNING}, events=[draft(2)], steps=[step("a", 1)]),
        RunWrite("old", expect=frozenset({pending}), patch={"status": RunStatus.RUNNING}),
        RunWrite("new", expect=frozenset({pending}), patch={"result": "too late"}),
        RunWrite("new", steps=[step("a", 1, StepStatus.SUCCESS)], events=[draft(3)]),
        RunWrite("old", delete=True),
        RunWrite("old", create=new_run("old"), patch={"status": RunStatus.SUSPENDED}, events=[draft(4)]),
        RunWrite("old", expect=frozenset({RunStatus.SUSPENDED}), events=[draft(5)], requests=(("r", "1"),)),
        RunWrite("gone", patch={"result": 1}),
        RunWrite("new", expect=frozenset(), events=[draft("never")]),
    ]
    before = store.transactions
    results = await asyncio.gather(*(store.write(w) for w in writes), return_exceptions=True)
    assert store.transactions == before + 1
    applied = [r.applied if isinstance(r, WriteResult) else type(r) for r in results]
    assert applied == [True, True, True, False, True, True, True, True, KeyError, False]
    assert [sequences(r.events) for r in results if isinstance(r, WriteResult)] == [
        [1],
        [2],
        [],
        [],
        [3],
        [],
        [1],
        [2],
        [],
    ]
    new = await store.get_run("new", steps=True)
    old = await store.get_run("old", steps=True)
    assert new is not None and old is not None
    assert (new.status, new.result, new.last_sequence) == (RunStatus.RUNNING, None, 3)
    assert new.steps == (step("a", 1, StepStatus.SUCCESS),)
    assert (old.status, old.last_sequence, old.steps) == (RunStatus.SUSPENDED, 2, ())
    assert [e.data for e in await store.read_events("old", 0)] == [4, 5]
    assert [e.data for e in await store.read_events("new", 0)] == [1, 2, 3]
    assert await store.has_request("old", "r", "1")


async def test_hub_hears_committed_events_in_order(store: AnyStore, url: str) -> None:
    await create(store, new_run("r1"))
    await create(store, new_run("r2"))
    published: list[Event] = []
    publish = store.hub.publish

    def checking_publish(events: Iterable[Event], born: Mapping[str, float]) -> None:
        # At publish time, the events must already be committed: another connection sees them.
        events = list(events)
        if events:
            assert uncommitted(url, events) == [], "published before commit"
        published.extend(events)
        publish(events, born)

    store.hub.publish = checking_publish  # type: ignore[method-assign]

    with store.hub.subscribe("r1") as subscription:
        writes = [RunWrite("r1", events=[draft(i), draft(i)]) for i in range(30)]
        writes.append(RunWrite("r1", events=[draft("bad")], steps=[step("x", 1, output={1})]))
        writes += [RunWrite("r2", events=[draft(i)]) for i in range(5)]
        await asyncio.gather(*(store.write(w) for w in writes), return_exceptions=True)

        received: list[Event] = []
        while len(received) < 60:
            batch = await subscription.wait(5)
            assert batch, "subscriber timed out"
            received.extend(batch)
        assert not subscription.lagged
        assert sequences(received) == list(range(1, 61))
        assert all(e.run_id == "r1" and e.data != "bad" for e in received)
        # Live events are exactly what a later reader gets from the log.
        assert received == await store.read_events("r1", 0)
        assert await subscription.wait(0.05) == []
    assert len(published) == 65


async def test_hub_events_equal_stored_events(store: AnyStore) -> None:
    await create(store, new_run("r1"))
    with store.hub.subscribe("r1") as subscription:
        # Stores take JSON data (the engine passes `to_jsonable` output); it round-trips unchanged.
        data = {"list": [1, 2], "nested": {"list": [None, 1.5]}, "text": "é"}
        result = await store.write(RunWrite("r1", events=[draft(data)]))
        live = await subscription.wait(5)
    stored = await store.read_events("r1", 0)
    assert list(result.events) == live == stored
    assert stored[0].data == data
    # A WORKFLOW_START says what began its execution (metrics and traces tell resumes by it).
    began = await store.write(RunWrite("r1", events=[EventDraft.workflow_start("wf", Execution.DEADLINE)]))
    assert [e.cause for e in began.events] == [e.cause for e in await store.read_events("r1", 1)]
    assert began.events[0].cause is Execution.DEADLINE


async def test_request_ids_of_one_request_are_read_by_their_prefix(store: AnyStore) -> None:
    """A caller looks for one request's rows (a Stream's `resume-began` row, a retry's marks):
    read by their prefix, not every row of the kind (a run resumed 10,000 times holds 10,000),
    whatever characters the ids hold (SQLite reads a range of the key)."""
    await create(store, new_run("r1"))
    ids = ["a", "a#1", "a#12", "a$", "ab#3", "b#4", "é#5", "é\U0010ffff", "é\U0010ffff#6", "\U0010ffff#7"]
    ids += ["x\ud7ff", "x\ud7ff#8", "x\ue000#9"]  # one below the surrogates, one above
    await store.write(RunWrite("r1", requests=tuple(("began", request_id) for request_id in ids)))
    assert sorted(await store.request_ids("r1", "began")) == sorted(ids)
    assert sorted(await store.request_ids("r1", "began", "a#")) == ["a#1", "a#12"]
    assert sorted(await store.request_ids("r1", "began", "a")) == ["a", "a#1", "a#12", "a$", "ab#3"]
    assert await store.request_ids("r1", "began", "é#") == ["é#5"]
    assert sorted(await store.request_ids("r1", "began", "é\U0010ffff")) == ["é\U0010ffff", "é\U0010ffff#6"]
    assert await store.request_ids("r1", "began", "\U0010ffff") == ["\U0010ffff#7"]
    assert sorted(await store.request_ids("r1", "began", "x\ud7ff")) == ["x\ud7ff", "x\ud7ff#8"]
    assert await store.request_ids("r1", "began", "c") == []
    assert await store.request_ids("r1", "other", "a") == []


async def test_request_idempotency_keys(store: AnyStore) -> None:
    await create(store, new_run("r1"))
    await create(store, new_run("r2"))
    assert not await store.has_request("r1", "resume", "req-1")

    first = await store.write(RunWrite("r1", events=[draft()], requests=(("resume", "req-1"),)))
    assert first.applied
    assert await store.has_request("r1", "resume", "req-1")
    assert not await store.has_request("r1", "cancel", "req-1")
    assert not await store.has_request("r2", "resume", "req-1")

    # Recording the same key again is harmless.
    again = await store.write(RunWrite("r1", requests=(("resume", "req-1"),)))
    assert again.applied

    # A write that is not applied, or fails, records nothing.
    await store.write(RunWrite("r2", expect=RUNNING, requests=(("resume", "req-2"),)))
    with pytest.raises(TypeError):
        await store.write(RunWrite("r2", steps=[step("x", 1, output={1})], requests=(("resume", "req-3"),)))
    assert not await store.has_request("r2", "resume", "req-2")
    assert not await store.has_request("r2", "resume", "req-3")

    # Several rows of one commit (a Resume's plain request id and its mark beside it) go in
    # together or not at all; also with steps dropped (PostgreSQL applies such a change apart
    # from a one-statement batch).
    for n, dropped in ((4, ()), (5, [("gone",)])):
        rows = (("resume", f"req-{n}"), ("resume-mark", f"m-{n}"))
        assert (await store.write(RunWrite("r1", requests=rows, drop_steps=dropped))).applied
        assert [await store.has_request("r1", *row) for row in rows] == [True, True]
    await store.write(RunWrite("r2", expect=RUNNING, requests=(("resume", "req-6"), ("resume-mark", "m-6"))))
    assert await store.request_ids("r2", "resume") == await store.request_ids("r2", "resume-mark") == []


async def test_list_runs_filters_and_keyset_paging(store: AnyStore) -> None:
    specs = [
        ("a1", "wf-a", 100.0, RunStatus.SUCCESS, "res-1"),
        ("a2", "wf-a", 200.0, RunStatus.RUNNING, "res-2"),
        ("a3", "wf-a", 300.0, RunStatus.FAILED, "res-1"),
        ("b1", "wf-b", 200.0, RunStatus.RUNNING, None),
        ("b2", "wf-b", 200.0, RunStatus.SUSPENDED, "res-1"),
        ("b3", "wf-b", 400.0, RunStatus.PENDING, None),
    ]
    for run_id, workflow_id, created_at, status, resource_id in specs:
        run = new_run(
            run_id, workflow_id=workflow_id, created_at=created_at, status=status, resource_id=resource_id
        )
        await create(store, run)

    async def ids(**filters: object) -> list[str]:
        return [run.run_id for run in await store.list_runs(RunQuery(**filters))]  # type: ignore[arg-type]

    # Newest first; ties on created_at by run_id descending.
    assert await ids() == ["b3", "a3", "b2", "b1", "a2", "a1"]
    assert await ids(workflow_id="wf-a") == ["a3", "a2", "a1"]
    assert await ids(statuses=frozenset({RunStatus.RUNNING, RunStatus.PENDING})) == ["b3", "b1", "a2"]
    assert await ids(resource_id="res-1") == ["a3", "b2", "a1"]
    assert await ids(from_time=200.0, to_time=400.0) == ["a3", "b2", "b1", "a2"]
    assert await ids(workflow_id="wf-b", statuses=frozenset({RunStatus.RUNNING})) == ["b1"]
    assert await ids(workflow_id="none") == []
    assert await ids(limit=2) == ["b3", "a3"]

    pages: list[list[str]] = []
    after: tuple[float, str] | None = None
    while True:
        page = await store.list_runs(RunQuery(limit=2, after=after))
        if not page:
            break
        pages.append([run.run_id for run in page])
        after = (page[-1].created_at, page[-1].run_id)
    assert pages == [["b3", "a3"], ["b2", "b1"], ["a2", "a1"]]
    assert await ids(workflow_id="wf-b", after=(200.0, "b2")) == ["b1"]

    # Several statuses are read one range per status and merged: the page keeps the
    # order and the limit across them, and keyset paging walks the merge.
    active = frozenset({RunStatus.RUNNING, RunStatus.PENDING, RunStatus.SUSPENDED})
    assert await ids(statuses=active, limit=2) == ["b3", "b2"]
    walked: list[str] = []
    after = None
    while page := await store.list_runs(RunQuery(statuses=active, limit=1, after=after, payloads=False)):
        walked.extend(run.run_id for run in page)
        after = (page[-1].created_at, page[-1].run_id)
    assert walked == ["b3", "b2", "b1", "a2"]
    assert await ids(statuses=active, workflow_id="wf-b", from_time=150.0, to_time=300.0) == ["b2", "b1"]
    assert await ids(statuses=active, resource_id="res-1") == ["b2"]
    assert await ids(statuses=frozenset({RunStatus.FAILED, RunStatus.CANCELED}), workflow_id="wf-b") == []


async def test_delete_with_and_without_expect(store: AnyStore) -> None:
    await create(store, new_run("r1"), draft())
    await store.write(RunWrite("r1", steps=[step("a", 1)], requests=(("start", "x"),)))

    kept = await store.write(RunWrite("r1", delete=True, expect=RUNNING))
    assert kept == WriteResult(applied=False, status=RunStatus.PENDING)
    assert await store.get_run("r1") is not None

    gone = await store.write(RunWrite("r1", delete=True, expect=frozenset({RunStatus.PENDING})))
    assert gone.applied
    assert await store.get_run("r1") is None
    assert await store.read_events("r1", 0) == []
    assert not await store.has_request("r1", "start", "x")

    # The id is free again and its log starts over.
    again = await create(store, new_run("r1"), draft())
    assert sequences(again.events) == [1]
    recreated = await store.get_run("r1", steps=True)
    assert recreated is not None
    assert recreated.steps == ()

    assert (await store.write(RunWrite("r1", delete=True))).applied
    assert await store.get_run("r1") is None
    assert await store.write(RunWrite("r1", delete=True, expect=RUNNING)) == WriteResult(False, None)


async def test_postgres_delete_waits_for_a_commit_of_the_run_in_flight_and_leaves_none_of_it(
    pg_databases: Databases,
) -> None:
    """A Cancel on one replica and a DeleteRun on another at once: the delete, one statement,
    waited on the run's row, then deleted it but not the events and request the Cancel had
    added, which its snapshot predated (audit). A run later made under the id took them for
    its own, and none of its Resumes could be stored. Now the delete takes the row first."""
    url = await pg_databases.url_for("delete-race")
    store = PostgresStore(url)
    await store.open()
    other = await asyncpg.connect(url)
    try:
        await create(store, new_run("r1"), draft())
        in_flight = other.transaction()
        await in_flight.start()
        await other.execute("UPDATE runs SET status = 'canceled', last_seq = 2 WHERE run_id = 'r1'")
        await other.execute(
            "INSERT INTO events (run_id, seq, time, body)"
            " SELECT run_id, 2, time, body FROM events WHERE run_id = 'r1' AND seq = 1"
        )
        await other.execute("INSERT INTO requests (run_id, kind, request_id) VALUES ('r1', 'cancel', 'c1')")
        either = frozenset({RunStatus.PENDING, RunStatus.CANCELED})
        delete = asyncio.create_task(store.write(RunWrite("r1", delete=True, expect=either)))
        await asyncio.sleep(0.3)
        assert not delete.done(), "the delete waits for the run's row"
        await in_flight.commit()
        async with asyncio.timeout(10):
            assert (await delete).applied
        for table in ("runs", "events", "requests", "steps"):
            assert await other.fetchval(f"SELECT count(*) FROM {table} WHERE run_id = 'r1'") == 0, table
    finally:
        await other.close()
        await store.close()


async def test_data_survives_close_and_reopen(url: str) -> None:
    first = new_store(url)
    await first.open()
    await create(first, new_run("r1"), draft(1))
    await first.write(
        RunWrite(
            "r1",
            patch={"status": RunStatus.RUNNING, "state": {"s": 1}},
            steps=[step("a", 1)],
            events=[draft(2)],
            requests=(("start", "req"),),
        )
    )
    await first.close()

    second = open_store(url)
    await second.open()
    try:
        got = await second.get_run("r1", steps=True)
        assert got is not None
        assert (got.status, got.state, got.last_sequence) == (RunStatus.RUNNING, {"s": 1}, 2)
        assert got.steps == (step("a", 1),)
        assert [e.data for e in await second.read_events("r1", 0)] == [1, 2]
        assert await second.has_request("r1", "start", "req")
        assert sequences((await second.write(RunWrite("r1", events=[draft(3)]))).events) == [3]
    finally:
        await second.close()


# The version 1 schema exactly as released: steps and events were WITHOUT ROWID tables.
_SCHEMA_V1 = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, workflow_id TEXT NOT NULL, resource_id TEXT, status TEXT NOT NULL,
    input TEXT, state TEXT, request_context TEXT, result TEXT, error TEXT, suspended TEXT,
    resume_labels TEXT, started_at REAL, ended_at REAL, wake_at REAL,
    trace_id TEXT NOT NULL DEFAULT '', last_seq INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE INDEX runs_by_workflow ON runs (workflow_id, created_at DESC, run_id DESC);
CREATE INDEX runs_by_time ON runs (created_at DESC, run_id DESC);
CREATE INDEX runs_by_status ON runs (status);
CREATE TABLE steps (
    run_id TEXT NOT NULL, path_key TEXT NOT NULL, position INTEGER NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (run_id, path_key)
) WITHOUT ROWID;
CREATE TABLE events (
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, time REAL NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE requests (
    run_id TEXT NOT NULL, kind TEXT NOT NULL, request_id TEXT NOT NULL,
    PRIMARY KEY (run_id, kind, request_id)
) WITHOUT ROWID;
PRAGMA user_version = 1;
"""


async def test_version_1_database_is_migrated_with_its_data(db_path: str) -> None:
    Path(db_path).parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as conn:
        conn.executescript(_SCHEMA_V1)
        conn.execute(
            "INSERT INTO runs (run_id, workflow_id, status, state, last_seq, created_at, updated_at)"
            " VALUES ('r1', 'wf', 'suspended', '{\"s\":1}', 2, 1000.0, 1000.0)"
        )
        conn.execute(
            'INSERT INTO steps VALUES (\'r1\', \'outer.a\', 1, \'{"path":["outer","a"],'
            '"status":"suspended","position":1}\')'
        )
        for seq in (1, 2):
            body = f'{{"type":"workflow-step-output","run_status":"running","data":{seq}}}'
            conn.execute("INSERT INTO events VALUES ('r1', ?, 1000.0, ?)", (seq, body))
        conn.execute("INSERT INTO requests VALUES ('r1', 'start', 'req')")
    conn.close()

    store = SqliteStore(db_path)
    await store.open()
    try:
        got = await store.get_run("r1", steps=True)
        assert got is not None
        assert (got.status, got.state, got.last_sequence) == (RunStatus.SUSPENDED, {"s": 1}, 2)
        assert got.steps == (step("a", 1, StepStatus.SUSPENDED),)
        assert [e.data for e in await store.read_events("r1", 0)] == [1, 2]
        assert await store.has_request("r1", "start", "req")
        done = step("a", 1, StepStatus.SUCCESS)
        written = await store.write(RunWrite("r1", events=[draft(3)], steps=[done]))
        assert sequences(written.events) == [3]
    finally:
        await store.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall())
    conn.close()
    assert "WITHOUT ROWID" not in tables["steps"] and "WITHOUT ROWID" not in tables["events"]
    assert not {"steps_v2", "events_v2"} & set(tables)


async def test_newer_schema_version_is_refused(db_path: str) -> None:
    Path(db_path).parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    store = SqliteStore(db_path)
    with pytest.raises(RuntimeError, match="schema version"):
        await store.open()


async def test_a_newer_schema_marked_usable_by_older_servers_is_served(
    db_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A database a newer runservice migrated: refused at start-up, unless every version this
    code does not know is recorded in `schema_compatible` (a rollback after an upgrade whose
    migrations only add); then served, with a warning, and its runs read as ever."""
    store = SqliteStore(db_path)
    await store.open()
    await store.write(RunWrite("r1", create=new_run("r1")))
    await store.close()
    future = SCHEMA_VERSION + 1
    with contextlib.closing(sqlite3.connect(db_path)) as conn, conn:
        conn.execute(f"PRAGMA user_version = {future}")
        conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (future,))
        conn.execute("CREATE TABLE future_table (x INTEGER)")
    with pytest.raises(RuntimeError, match=rf"schema versions \[{future}\] this runservice does not know"):
        await SqliteStore(db_path).open()
    with contextlib.closing(sqlite3.connect(db_path)) as conn, conn:
        conn.execute("INSERT INTO schema_compatible (version) VALUES (?)", (future,))
    store = SqliteStore(db_path)
    await store.open()
    try:
        run = await store.get_run("r1")
        assert run is not None and run.status is RunStatus.PENDING
    finally:
        await store.close()
    assert f"schema versions [{future}] from a newer runservice" in caplog.text
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == future  # not lowered


async def test_second_store_on_same_file_refuses_to_open(db_path: str) -> None:
    store = SqliteStore(db_path)
    await store.open()
    other = SqliteStore(db_path)
    with pytest.raises(RuntimeError, match="is in use by another runservice process"):
        await other.open()
    await other.close()  # harmless after a failed open
    assert await store.get_run("r1") is None  # the first store is unaffected

    await store.close()
    third = SqliteStore(db_path)
    await third.open()
    await third.close()


async def test_group_commit_batches_concurrent_writes(store: AnyStore) -> None:
    await create(store, new_run("r1"))
    before = store.transactions
    results = await asyncio.gather(*(store.write(RunWrite("r1", events=[draft(i)])) for i in range(200)))
    assert sorted(r.last_sequence for r in results) == list(range(1, 201))
    assert store.transactions - before < 20


async def test_close_flushes_queued_writes_then_refuses(url: str) -> None:
    store = new_store(url)
    with pytest.raises(RuntimeError, match="store is not open"):
        await store.write(RunWrite("r1"))
    await store.open()
    await create(store, new_run("r1"))
    pending = [asyncio.create_task(store.write(RunWrite("r1", events=[draft(i)]))) for i in range(50)]
    await asyncio.sleep(0)  # the writes are queued, not yet committed
    await store.close()
    assert all(task.done() and task.result().applied for task in pending)
    await store.close()  # idempotent

    with pytest.raises(RuntimeError, match="store is closed"):
        await store.write(RunWrite("r1", events=[draft()]))
    with pytest.raises(RuntimeError, match="store is closed"):
        await store.get_run("r1")

    reopened = new_store(url)
    await reopened.open()
    try:
        assert sequences(await reopened.read_events("r1", 0)) == list(range(1, 51))
    finally:
        await reopened.close()


async def test_write_commits_even_if_its_caller_is_cancelled(store: AnyStore) -> None:
    await create(store, new_run("r1"))
    task = asyncio.create_task(store.write(RunWrite("r1", events=[draft("handed off")])))
    await asyncio.sleep(0)  # the change is queued
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    after = await store.write(RunWrite("r1", events=[draft("next")]))
    assert sequences(after.events) == [2]
    assert [e.data for e in await store.read_events("r1", 0)] == ["handed off", "next"]


# -- PostgreSQL only ------------------------------------------------------------------------


_BOOT = """
import asyncio, sys, time
from runservice.storage.postgres import PostgresStore

async def main(url: str, start_at: float) -> None:
    await asyncio.sleep(max(0.0, start_at - time.time()))
    store = PostgresStore(url)
    await store.open()
    await store.close()

asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""


async def test_postgres_concurrent_boots_on_an_empty_database_migrate_once(pg_databases: Databases) -> None:
    url = await pg_databases.empty()
    start_at = asyncio.get_running_loop().time()
    wall_start = time.time() + 2.0  # every opener, here and in the processes, starts at this instant
    processes = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", _BOOT, url, str(wall_start))
        for _ in range(3)
    ]

    async def boot_here() -> AnyStore:
        await asyncio.sleep(max(0.0, 2.0 - (asyncio.get_running_loop().time() - start_at)))
        store = PostgresStore(url)  # as replicas will (one process each, for now)
        await store.open()
        return store

    stores = await asyncio.gather(*(boot_here() for _ in range(4)))
    codes = await asyncio.gather(*(process.wait() for process in processes))
    assert codes == [0, 0, 0]
    try:
        conn = await asyncpg.connect(url)
        try:
            versions = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        finally:
            await conn.close()
        assert [row["version"] for row in versions] == [v for v, _ in pg.MIGRATIONS]
        # The schema is usable from every store.
        for i, store in enumerate(stores):
            result = await create(store, new_run(f"r{i}"), draft(i))
            assert sequences(result.events) == [1]
        assert {run.run_id for run in await stores[0].list_runs(RunQuery())} == {"r0", "r1", "r2", "r3"}
    finally:
        for store in stores:
            await store.close()


async def test_postgres_newer_schema_version_is_refused(pg_databases: Databases) -> None:
    url = await pg_databases.url_for("newer")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO schema_migrations (version, script) VALUES ($1, 'future.sql')", pg.SCHEMA_VERSION + 1
        )
    finally:
        await conn.close()
    store = PostgresStore(url)
    with pytest.raises(RuntimeError, match="schema version"):
        await store.open()
    await store.close()


async def test_postgres_newer_schema_marked_usable_by_older_servers_is_served(
    pg_databases: Databases, caplog: pytest.LogCaptureFixture
) -> None:
    url = await pg_databases.url_for("newer-compatible")
    store = PostgresStore(url)
    await store.open()
    await store.write(RunWrite("r1", create=new_run("r1")))
    await store.close()
    future = pg.SCHEMA_VERSION + 1
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM schema_compatible WHERE version = 14") == 1
        await conn.execute(
            "INSERT INTO schema_migrations (version, script) VALUES ($1, 'future.sql')", future
        )
        with pytest.raises(
            RuntimeError, match=rf"schema versions \[{future}\] this runservice does not know"
        ):
            await PostgresStore(url).open()
        await conn.execute("INSERT INTO schema_compatible (version) VALUES ($1)", future)
    finally:
        await conn.close()
    store = PostgresStore(url)
    await store.open()
    try:
        run = await store.get_run("r1")
        assert run is not None and run.status is RunStatus.PENDING
    finally:
        await store.close()
    assert f"schema versions [{future}] from a newer runservice" in caplog.text


async def _follow_all(store: PostgresStore, run_id: str) -> list[Event]:
    from runservice.engine.follow import follow_events

    seen: list[Event] = []
    async for batch in follow_events(
        store,
        run_id,
        after=0,
        until_settled=False,
        heartbeat=None,
        draining=lambda: False,
        register=lambda subscription: None,
    ):
        seen.extend(batch)
    return seen


@pytest.mark.parametrize("announce", ["notify", "poll"])
async def test_postgres_watchers_hear_events_committed_by_another_process(
    pg_databases: Databases, announce: str
) -> None:
    """A follower on one store sees every event written through another, exactly once,
    through NOTIFY (the follower's poll is made too slow to matter) or, with NOTIFY off,
    through the follower's periodic poll alone."""
    url = await pg_databases.url_for("shared")
    writer = PostgresStore(url, notify=announce == "notify")
    follower = PostgresStore(url, poll_interval=60.0 if announce == "notify" else 0.1)
    await writer.open()
    await follower.open()
    try:
        async with asyncio.timeout(10):
            while not follower.listening:  # NOTIFYs sent before LISTEN are lost by design
                await asyncio.sleep(0.01)
        await create(writer, new_run("r1"), draft(0))
        following = asyncio.create_task(_follow_all(follower, "r1"))
        await asyncio.sleep(0.2)  # the follower has read the backlog and waits for live events
        for i in range(1, 20):
            await writer.write(RunWrite("r1", events=[draft(i), draft(i)]))
            if i % 5 == 0:
                await asyncio.sleep(0.05)
        finish = EventDraft(EventType.WORKFLOW_FINISH, RunStatus.SUCCESS)
        await writer.write(RunWrite("r1", patch={"status": RunStatus.SUCCESS}, events=[finish]))
        seen = await asyncio.wait_for(following, 10)
        assert sequences(seen) == list(range(1, 41))
        assert seen == await writer.read_events("r1", 0)
    finally:
        await writer.close()
        await follower.close()


async def test_postgres_two_writers_keep_each_log_gap_free(pg_databases: Databases) -> None:
    """Sequences come from the run row under its lock: two stores writing the same runs
    at once still give every run a log of 1..N (a base the leased replicas will build on)."""
    url = await pg_databases.url_for("two-writers")
    first, second = PostgresStore(url), PostgresStore(url)
    await first.open()
    await second.open()
    try:
        runs = [f"run-{i}" for i in range(10)]
        await asyncio.gather(*(create(first, new_run(run_id)) for run_id in runs))
        writes = [
            (first if n % 2 else second).write(RunWrite(run_id, events=[draft(n), draft(n)]))
            for n in range(30)
            for run_id in runs
        ]
        await asyncio.gather(*writes)
        for run_id in runs:
            assert sequences(await first.read_events(run_id, 0)) == list(range(1, 61))
    finally:
        await first.close()
        await second.close()


def test_open_store_chooses_the_store_by_url(tmp_path: Path) -> None:
    for url in ("postgresql://u@127.0.0.1/db", "postgres://u@127.0.0.1:5432/db"):
        assert isinstance(open_store(url), PostgresStore)
    assert isinstance(open_store(f"sqlite:///{tmp_path}/a.db"), SqliteStore)
    assert isinstance(open_store(str(tmp_path / "b.db")), SqliteStore)
    with pytest.raises(ValueError, match="unsupported database URL"):
        open_store("mysql://u@h/db")


async def test_postgres_unreachable_database_is_an_os_error_without_the_password() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = PostgresStore(f"postgresql://user:hunter2@127.0.0.1:{port}/db")
    with pytest.raises(OSError, match="cannot open PostgreSQL database") as raised:
        await store.open()
    assert "hunter2" not in str(raised.value) and "user:***@" in str(raised.value)
    await store.close()


async def test_postgres_store_recovers_from_dropped_connections(pg_databases: Databases) -> None:
    """The database ends the writer's and the listener's sessions (a failover, an admin):
    a write in flight may fail, the next ones reconnect; watchers still hear events."""
    url = await pg_databases.url_for("dropped")
    # `store` holds the one-process lock: its writer must take it again on its new session.
    store, other = PostgresStore(url), PostgresStore(url, poll_interval=0.1)
    await store.open()
    await other.open()
    try:
        await create(store, new_run("r1"), draft(0))
        with other.hub.subscribe("r1") as subscription:
            admin = await asyncpg.connect(url)
            try:
                ended = await admin.fetchval(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()) t"
                )
            finally:
                await admin.close()
            assert ended >= 4  # both writers, both listeners, the readers
            first = await asyncio.gather(
                store.write(RunWrite("r1", events=[draft(1)])), return_exceptions=True
            )
            written = 0 if isinstance(first[0], Exception) else 1
            for i in range(2, 5):
                assert (await store.write(RunWrite("r1", events=[draft(i)]))).applied
                written += 1
            assert (await store.get_run("r1")) is not None  # the reader pool reconnects too
            deadline = asyncio.get_running_loop().time() + 10
            while not subscription.lagged:
                assert asyncio.get_running_loop().time() < deadline, "the other store never heard"
                await subscription.wait(0.5)
        assert sequences(await other.read_events("r1", 0)) == list(range(1, written + 2))
    finally:
        await store.close()
        await other.close()


async def test_a_replica_stopped_mid_transaction_does_not_hold_the_others_writes(
    pg_databases: Databases,
) -> None:
    """A replica stopped between two statements of a batch (a paused process or VM) leaves its
    transaction open, with its row locks. The database ends it after the store's idle-in-
    transaction limit, so another replica's write to the same run goes through; the stopped
    one, once it goes on, finds its connection gone and writes on a new one."""
    url = await pg_databases.url_for("stopped-writer")
    stopped, other = PostgresStore(url, idle_in_transaction=0.5), PostgresStore(url)
    await stopped.open()
    await other.open()
    try:
        await create(stopped, new_run("r1"), draft(0))
        writer = stopped._writer  # what a batch stopped after its first statement leaves
        assert writer is not None
        await writer.execute("BEGIN")
        await writer.execute("UPDATE runs SET updated_at = updated_at WHERE run_id = 'r1'")
        started = time.monotonic()
        written = await asyncio.wait_for(other.write(RunWrite("r1", patch={"cancel_requested": True})), 10)
        assert written.applied and time.monotonic() - started < 5
        with contextlib.suppress(StorageUnavailable):  # its connection was ended
            await stopped.write(RunWrite("r1", events=[draft(1)]))
        assert (await stopped.write(RunWrite("r1", events=[draft(2)]))).applied
    finally:
        await stopped.close()
        await other.close()


async def test_postgres_replicas_share_a_database_and_a_schema_is_its_own(pg_databases: Databases) -> None:
    url = await pg_databases.url_for("shared-db")
    store = PostgresStore(url)
    await store.open()
    try:
        replica = PostgresStore(url)  # a second replica on the same database: leases share the runs
        await replica.open()
        await create(store, new_run("r1"))
        assert await replica.get_run("r1") is not None
        await replica.close()
        # Another schema of the same database is another runservice.
        admin = await asyncpg.connect(url)
        try:
            await admin.execute("CREATE SCHEMA elsewhere")
        finally:
            await admin.close()
        neighbour = PostgresStore(url + "?search_path=elsewhere")
        await neighbour.open()
        assert await neighbour.get_run("r1") is None
        await neighbour.close()
    finally:
        await store.close()


# -- foreach items: rows of their own -------------------------------------------------------------

EACH = ("each",)


def item(index: int, status: StepStatus = StepStatus.SUCCESS, output: object = None) -> ForeachItem:
    return ForeachItem(index, status, output=output)


def indexed(run: Run | None) -> dict[int, ForeachItem]:
    assert run is not None
    [record] = [s for s in run.steps if s.path == EACH]
    assert [i.index for i in record.foreach_items] == sorted(i.index for i in record.foreach_items)
    return {i.index: i for i in record.foreach_items}


async def test_foreach_items_are_rows_of_their_own(store: AnyStore) -> None:
    await create(store, new_run("r1", status=RunStatus.RUNNING))
    big = {"text": "x" * 5000}  # stored once as a value on SQLite, referenced from its row
    record = StepRecord(EACH, StepStatus.RUNNING, payload=[1, 2, 3], position=1)
    suspended = ForeachItem(
        1, StepStatus.SUSPENDED, suspend_payload={"q": 1}, labels=("l1",), suspended_at=5.0
    )
    first = replace(record, foreach_items=(item(0, output=big), suspended))
    assert (await store.write(RunWrite("r1", steps=[first]))).applied
    assert indexed(await store.get_run("r1", steps=True)) == {0: item(0, output=big), 1: suspended}

    # An item alone: one row; the step's record, written again without items, keeps them.
    await store.write(RunWrite("r1", items=[(EACH, item(2, output=4))]))
    await store.write(RunWrite("r1", steps=[replace(record, attempt=1)], items=[(EACH, item(1, output=2))]))
    got = await store.get_run("r1", steps=True)
    assert indexed(got) == {0: item(0, output=big), 1: item(1, output=2), 2: item(2, output=4)}
    assert got is not None and got.steps[0].attempt == 1

    # A foreach that starts over drops its items; items staged after the clear stay.
    await store.write(RunWrite("r1", clear_items=[EACH], items=[(EACH, item(0, output=7))]))
    assert indexed(await store.get_run("r1", steps=True)) == {0: item(0, output=7)}

    # Dropping the step (time travel) drops its items: the step written again has none.
    await store.write(RunWrite("r1", drop_steps=[EACH]))
    await store.write(RunWrite("r1", steps=[record]))
    assert indexed(await store.get_run("r1", steps=True)) == {}
    await store.write(RunWrite("r1", items=[(EACH, item(0, output=7))]))

    # Deleting the run deletes its items: a new run of the same id starts with none.
    assert (await store.write(RunWrite("r1", delete=True))).applied
    await create(store, new_run("r1", status=RunStatus.RUNNING))
    await store.write(RunWrite("r1", steps=[record]))
    assert indexed(await store.get_run("r1", steps=True)) == {}


def _database_with_a_running_run(db_path: str, version: int) -> sqlite3.Connection:
    """A new database file at schema `version` (schema.sql, then the migrations up to it) holding
    one running run, `r1`; use it as `with ... as conn:` (which commits), then close it."""
    Path(db_path).parent.mkdir(parents=True)
    storage = Path(__file__).parent.parent / "service/runservice/storage"
    conn = sqlite3.connect(db_path)
    conn.executescript((storage / "schema.sql").read_text())
    for target in range(BASE_VERSION + 1, version + 1):
        conn.executescript((storage / f"migrate_v{target}.sql").read_text())
    conn.execute(f"PRAGMA user_version = {version}")
    conn.execute(
        "INSERT INTO runs (run_id, workflow_id, status, last_seq, created_at, updated_at)"
        " VALUES ('r1', 'wf', 'running', 0, 1000.0, 1000.0)"
    )
    return conn


async def test_foreach_items_inline_in_an_older_record_are_still_read(db_path: str) -> None:
    """A version 4 database kept a step's items inside its record: they read as before,
    item rows written since win for their index, and the next full write moves them out."""
    with _database_with_a_running_run(db_path, 4) as conn:
        record = (
            '{"path":["each"],"status":"running","payload":[1,2,3],"position":1,"foreach_items":'
            '[{"index":0,"status":"success","output":10},{"index":1,"status":"suspended"}]}'
        )
        conn.execute("INSERT INTO steps VALUES ('r1', 'each', 1, ?)", (record,))
    conn.close()
    store = SqliteStore(db_path)
    await store.open()
    try:
        assert indexed(await store.get_run("r1", steps=True)) == {
            0: item(0, output=10),
            1: item(1, StepStatus.SUSPENDED),
        }
        await store.write(RunWrite("r1", items=[(EACH, item(1, output=20))]))
        got = await store.get_run("r1", steps=True)
        assert indexed(got) == {0: item(0, output=10), 1: item(1, output=20)}
        assert got is not None
        await store.write(RunWrite("r1", steps=[replace(got.steps[0], status=StepStatus.SUCCESS)]))
        assert indexed(await store.get_run("r1", steps=True)) == {
            0: item(0, output=10),
            1: item(1, output=20),
        }
    finally:
        await store.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        (stored,) = conn.execute("SELECT record FROM steps WHERE run_id = 'r1'").fetchone()
        rows = conn.execute("SELECT item_index FROM foreach_items WHERE run_id = 'r1'").fetchall()
    conn.close()
    assert "foreach_items" not in stored and sorted(rows) == [(0,), (1,)]


async def test_version_13_foreach_items_move_to_a_clustered_table(db_path: str) -> None:
    """Version 14 keeps a foreach's item rows in a WITHOUT ROWID table; the rows move over."""
    with _database_with_a_running_run(db_path, 13) as conn:
        record = '{"path":["each"],"status":"running","payload":[1,2,3],"position":1}'
        conn.execute("INSERT INTO steps VALUES ('r1', 'each', 1, ?)", (record,))
        for index, body in (
            (1, '{"index":1,"status":"suspended"}'),
            (0, '{"index":0,"status":"success","output":10}'),
        ):
            conn.execute("INSERT INTO foreach_items VALUES ('r1', 'each', ?, ?)", (index, body))
    conn.close()
    store = SqliteStore(db_path)
    await store.open()
    try:
        assert indexed(await store.get_run("r1", steps=True)) == {
            0: item(0, output=10),
            1: item(1, StepStatus.SUSPENDED),
        }
        await store.write(RunWrite("r1", items=[(EACH, item(1, output=20)), (EACH, item(2, output=30))]))
        assert indexed(await store.get_run("r1", steps=True)) == {
            0: item(0, output=10),
            1: item(1, output=20),
            2: item(2, output=30),
        }
    finally:
        await store.close()
    with sqlite3.connect(db_path) as conn:
        tables = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall())
    conn.close()
    assert "WITHOUT ROWID" in tables["foreach_items"] and "foreach_items_v14" not in tables


@pytest.mark.parametrize("first", ["a", "\u4e00"], ids=["ascii", "three-byte-utf8"])
async def test_a_page_of_events_ends_before_its_values_pass_the_page_bytes(
    store: AnyStore, first: str
) -> None:
    """Events that carry large values (each its own, as a loop's iterations record theirs) are
    read in pages of at most `values.EVENT_PAGE_BYTES` (bytes, not characters): every event
    once, in order, intact."""
    from runservice.storage import values

    big = 700 * 1024
    width = len(first.encode())
    run = new_run("paged")
    await create(store, run)

    def data(index: int) -> str:  # 700 KiB of UTF-8, each event's different
        return chr(ord(first) + index) * (big // width)

    for index in range(16):  # 16 x 700 KiB: over 11 MiB in all
        await store.write(RunWrite(run_id=run.run_id, events=(draft(data(index)),)))
    pages: list[list[Event]] = []
    cursor = 0
    while events := await store.read_events(run.run_id, cursor):
        pages.append(events)
        cursor = events[-1].sequence
    assert [len(page) for page in pages] == [11, 5]  # 8 MiB / 700 KiB, then the rest
    assert sequences(event for page in pages for event in page) == list(range(1, 17))
    assert all(event.data == data(event.sequence - 1) for page in pages for event in page)
    assert values.EVENT_PAGE_BYTES // (big + 2) == 11  # the 12th event's value passes it
    # A single event larger than a page is still read (one per page at least).
    assert len(await store.read_events(run.run_id, 0, limit=1)) == 1
