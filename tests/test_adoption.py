"""A run the claim loop took whose adoption cannot be stored, on SQLite: it is adopted once
storage answers, not left claimed until the next boot; and a run that cannot be recovered is
marked failed once storage answers, not left `running`.

On SQLite a claim's lease never ends while the process runs, so a claimed run whose adoption
failed would be driven by nobody. The test holds the database's write lock from a second
connection (as an operator's `sqlite3` shell in a write transaction does) from the moment the
claim took a suspended run past its deadline, for longer than the busy timeout: the write that
ends the run is refused (SQLITE_BUSY, StorageUnavailable), then made once the lock is let go.
Meanwhile the writes wait for the lock off the event loop, so reads go on.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from runservice.engine import Engine
from runservice.model import RunStatus
from runservice.storage import sqlite
from runservice.storage.sqlite import SqliteStore
from runservice.workflow import StepContext, create_step, create_workflow

pytestmark = pytest.mark.timeout(60)

BUSY_SECONDS = 1.0
HOLD_SECONDS = BUSY_SECONDS + 1.0
"""How long the tests hold the lock: past the store's busy timeout, shortened to BUSY_SECONDS."""


@pytest.fixture(autouse=True)
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite, "_BUSY_TIMEOUT_MS", int(BUSY_SECONDS * 1000))


@create_step("approve")
async def approve(ctx: StepContext) -> str:
    if ctx.resume_data is None:
        await ctx.suspend({"waiting": True})
    return "approved"


held = create_workflow("held", timeout=0.3).then(approve).commit()
"""Suspends; its deadline passes 0.3 s after its start, and the claim loop then ends it."""

never = asyncio.Event()


@create_step("wait-forever")
async def wait_forever(ctx: StepContext) -> str:
    await never.wait()
    return "never"


stuck = create_workflow("stuck").then(wait_forever).commit()


def hold_once_claimed(holder: sqlite3.Connection, run_id: str, held: threading.Event, seconds: float) -> Any:
    """A commit listener: once a claim took `run_id`, hold the write lock for `seconds`."""

    def listener(_seconds: float, _changes: int) -> None:
        if held.is_set():
            return
        (owner,) = holder.execute("SELECT owner FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if owner is not None:  # the claim took it: its adoption's writes come next
            holder.execute("BEGIN IMMEDIATE")
            held.set()
            threading.Timer(seconds, holder.execute, ("ROLLBACK",)).start()

    return listener


async def test_a_claimed_run_is_adopted_once_storage_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "runs.db"
    store = SqliteStore(str(path))
    await store.open()
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    lock_held = threading.Event()
    try:
        async with Engine(store, [held], claim_interval=0.1) as engine:
            run = await engine.start("held", input_data={}, wait=True)
            assert run.status is RunStatus.SUSPENDED

            store.hub.listen_commits(hold_once_claimed(holder, run.run_id, lock_held, HOLD_SECONDS))
            give_up = time.monotonic() + HOLD_SECONDS + 20
            slowest, last = 0.0, time.monotonic()  # the longest time between two looks
            while True:
                ended = await engine.get_run(run.run_id)
                slowest, last = max(slowest, time.monotonic() - last), time.monotonic()
                if ended.status is not RunStatus.SUSPENDED:
                    break
                assert time.monotonic() < give_up, "the claimed run was never adopted"
                await asyncio.sleep(0.1)
        assert lock_held.is_set()
        # The writes wait for the lock on the writer thread: the event loop, and every read,
        # went on meanwhile (a wait on the loop would have stalled one read for the busy timeout).
        assert slowest < BUSY_SECONDS / 2, slowest
        assert ended.status is RunStatus.FAILED
        assert ended.error is not None and ended.error.name == "RunTimeoutError"
        assert f"run {run.run_id}: not re-driven now, storage failed" in caplog.text
    finally:
        await store.close()
        holder.close()


async def test_a_run_that_cannot_be_recovered_is_failed_once_storage_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "runs.db"
    store = SqliteStore(str(path))
    await store.open()
    try:
        async with Engine(store, [stuck]) as engine:
            run = await engine.start("stuck", input_data={})
            give_up = time.monotonic() + 10
            while not (await engine.get_run(run.run_id)).steps:  # its step's start is stored
                assert time.monotonic() < give_up
                await asyncio.sleep(0.02)
    finally:
        await store.close()  # the run is left `running`, for the next boot to re-drive
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE steps SET record = 'not JSON' WHERE run_id = ?", (run.run_id,))

    store = SqliteStore(str(path))
    await store.open()
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    lock_held = threading.Event()
    try:
        store.hub.listen_commits(hold_once_claimed(holder, run.run_id, lock_held, HOLD_SECONDS))
        async with Engine(store, [stuck], claim_interval=0.1):  # the boot claims it
            give_up = time.monotonic() + 30
            while True:  # read as an operator would: the run cannot be loaded with its steps
                status, error = holder.execute(
                    "SELECT status, error FROM runs WHERE run_id = ?", (run.run_id,)
                ).fetchone()
                if status != "running":
                    break
                assert time.monotonic() < give_up, "the run was never marked failed"
                await asyncio.sleep(0.1)
        assert lock_held.is_set()
        assert status == "failed" and "InternalError" in error
        assert f"run {run.run_id}: cannot be recovered" in caplog.text
        assert f"run {run.run_id}: not marked failed yet, storage failed" in caplog.text
    finally:
        await store.close()
        holder.close()
