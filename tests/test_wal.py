"""The SQLite WAL under steady load: it is started over, so it does not grow without end.

A PASSIVE checkpoint never resets the WAL by itself; SQLite starts it over at the next
write only when a checkpoint has caught up with the last commit, which never happens
while commits keep coming. These tests keep the writer busy without a pause and read
the WAL file's own header: its checkpoint sequence number grows by one at each reset.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
import struct
import time
from contextlib import closing
from pathlib import Path

import pytest

from runservice.model import EventDraft, EventType, Run, RunStatus
from runservice.storage import RunWrite, sqlite
from runservice.storage.sqlite import SqliteStore

WRITERS = 32
"""Concurrent writers: enough that the store's queue never runs dry."""


def _resets(wal: Path) -> int:
    """The WAL header's checkpoint sequence number (bytes 12-15, big-endian)."""
    with wal.open("rb") as file:
        header = file.read(32)
    (sequence,) = struct.unpack(">I", header[12:16])
    return int(sequence)


def _create(run_id: str) -> RunWrite:
    run = Run(run_id=run_id, workflow_id="wf", status=RunStatus.RUNNING, created_at=1.0, updated_at=1.0)
    return RunWrite(run_id, create=run, events=(EventDraft(EventType.WORKFLOW_START, RunStatus.RUNNING),))


def _progress(run_id: str) -> RunWrite:
    step = EventDraft(EventType.STEP_START, RunStatus.RUNNING, data={"padding": "x" * 400})
    return RunWrite(run_id, events=(step,))


async def test_steady_load_starts_the_wal_over_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = SqliteStore(str(path))
    await store.open()
    written: dict[str, int] = {}
    stop = asyncio.Event()

    async def writer(index: int) -> None:
        run_id = f"run-{index}"
        await store.write(_create(run_id))
        written[run_id] = 1
        while not stop.is_set():
            # Internal progress (no fsync each), with a synced commit now and then, as runs do.
            await store.write(_progress(run_id), durable=written[run_id] % 8 == 0)
            written[run_id] += 1

    try:
        tasks = [asyncio.create_task(writer(index)) for index in range(WRITERS)]
        try:
            await asyncio.sleep(0.2)  # every writer has created its run; the WAL file exists
            wal = Path(f"{path}-wal")
            first = _resets(wal)
            deadline = time.monotonic() + 20
            # Under the old behaviour the sequence never moved while the load went on. A
            # checkpoint that caught up in a lull lets SQLite start the WAL over by itself, so
            # the writer's own restarts are waited for too.
            while (_resets(wal) < first + 2 or store.wal_restarts < 2) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            resets = _resets(wal) - first
        finally:
            stop.set()
            await asyncio.gather(*tasks)
        assert resets >= 2, "the WAL was never started over while commits kept coming"
        assert store.wal_restarts >= 2
        # Nothing was lost across the resets: every run's log is whole and gap-free.
        for run_id, count in written.items():
            events = await store.read_events(run_id, 0, limit=count + 10)
            assert [event.sequence for event in events] == list(range(1, count + 1))
    finally:
        await store.close()


async def test_a_reader_on_an_old_snapshot_is_waited_for_briefly_and_less_and_less_often(
    tmp_path: Path,
) -> None:
    """A connection holding a read snapshot (a `runservice backup`) keeps every RESTART from
    finishing. The writer waited 1 s for it at each checkpoint, so writes stood still 1 s in
    every 1.1 s while it lasted; now it waits 100 ms, after pauses of 1, 2, 4... s, and
    starts the WAL over once the reader is gone."""
    path = tmp_path / "runs.db"
    store = SqliteStore(str(path))
    await store.open()
    stop = asyncio.Event()

    async def writer(index: int) -> None:
        run_id = f"run-{index}"
        await store.write(_create(run_id))
        while not stop.is_set():
            await store.write(_progress(run_id), durable=False)

    try:
        tasks = [asyncio.create_task(writer(index)) for index in range(WRITERS)]
        try:
            await asyncio.sleep(0.2)
            with closing(sqlite3.connect(path, isolation_level=None)) as reader:
                reader.execute("BEGIN")
                reader.execute("SELECT count(*) FROM runs").fetchone()  # holds this snapshot
                await asyncio.sleep(4.5)
                kept_busy = store.wal_restarts_busy
                restarted = store.wal_restarts
                reader.execute("COMMIT")
            deadline = time.monotonic() + 40  # the pause after the last busy try, at most 8 s, then one
            while store.wal_restarts == restarted and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
        # Tries at about 1, 2 and 4 s into it; one at every look of the checkpointer before.
        assert 1 <= kept_busy <= 4, kept_busy
        assert store.wal_restarts > restarted, "the WAL was not started over once the reader went"
    finally:
        await store.close()


def test_the_checkpointer_retries_a_database_it_cannot_open_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A checkpointer whose connection fails keeps trying (once dead, the WAL would grow without end)."""
    monkeypatch.setattr(sqlite, "_CHECKPOINT_INTERVAL", 0.05)
    path = tmp_path / "later" / "runs.db"  # its directory does not exist yet: it cannot be opened
    commits = itertools.count()
    directory = os.open(tmp_path, os.O_RDONLY)
    lost: list[BaseException] = []
    checkpointer = sqlite._Checkpointer(
        str(path), f"{path}-wal", lambda: next(commits), directory, lost.append
    )
    try:
        checkpointer.start()
        time.sleep(0.3)
        assert "the WAL checkpointer cannot open" in caplog.text
        path.parent.mkdir()
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("CREATE TABLE t (x)")
            conn.execute("INSERT INTO t VALUES (1)")
            deadline = time.monotonic() + 10
            while checkpointer.checkpoints == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
        assert checkpointer.checkpoints > 0 and not lost
    finally:
        checkpointer.stop()
        os.close(directory)
