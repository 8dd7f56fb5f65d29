"""The SQLite file deleted or replaced under a real `runservice serve`.

A server whose database file is deleted (a cleanup of a temporary directory, an `rm -r` of the
data directory) would go on writing to a file nobody can open again, and its restart would
start on an empty one: every run it acknowledged gone in silence. Instead it saves what it
committed beside the path, refuses every request (UNAVAILABLE, reason STORAGE_FAILED) and
stops with one line saying where the copy is; a restart refuses to start empty beside the
copy, and goes on from it once it is moved back. A lock file deleted under it is taken again,
so a second server on the same database is still refused.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import time
from pathlib import Path

import pytest
from process import ServerProcess, serve_argv, server_env, start_server

from runservice.client import Client
from runservice.model import Run, RunStatus
from runservice.storage import RunWrite
from runservice.storage.sqlite import SqliteStore

pytestmark = pytest.mark.timeout(60)

SERVED = ("--workflows", "tests.workflows")


async def suspended_runs(client: Client, count: int) -> list[str]:
    """`count` runs of `approval` started and suspended, acknowledged by the server."""
    ids = []
    for index in range(count):
        run = await client.get_workflow("approval").create_run(run_id=f"approval-{index}")
        result = await run.start_async({"count": index})
        assert result.status is RunStatus.SUSPENDED, result
        ids.append(run.run_id)
    return ids


async def exited(server: ServerProcess, limit: float = 20.0) -> int:
    return await server.stop(limit, signalled=True)


@pytest.mark.parametrize(
    ("remove", "layout"),
    [("the file", ()), ("the directory", ()), ("the file", ("--engine-process",))],
    ids=["file", "directory", "file-engine-process"],
)
async def test_a_database_deleted_under_the_server_is_saved_and_the_server_stops(
    tmp_path: Path, remove: str, layout: tuple[str, ...]
) -> None:
    data = tmp_path / "data"
    database = data / "runservice.db"
    argv = serve_argv("--data-dir", str(data), *SERVED, *layout)
    server = await start_server(argv)
    try:
        async with Client(server.address, timeout=10, retry=None) as client:
            ids = await suspended_runs(client, 3)
            if remove == "the file":
                for suffix in ("", "-wal", "-shm"):
                    os.unlink(f"{database}{suffix}")
            else:
                shutil.rmtree(data)
            # The checkpointer's thread looks every tenth of a second; the copy and the stop follow.
            code = await exited(server)
            assert code == 1, server.text[-3000:]
    finally:
        await server.kill()
    text = server.text
    assert "Traceback" not in text, text[-3000:]
    assert text.count(f"the database file {database} was deleted") == 1, text[-3000:]
    rescued = sorted(data.glob("runservice.db.rescued-*"))
    assert len(rescued) == 1, (list(data.iterdir()) if data.exists() else "no directory", text[-3000:])
    assert f"everything committed is saved in {rescued[0]}" in text, text[-3000:]
    # Every run's data, as the database: its owner's alone (a directory removed is made anew so).
    assert (stat.S_IMODE(data.stat().st_mode), stat.S_IMODE(rescued[0].stat().st_mode)) == (0o700, 0o600)
    told = "deleted" if not layout else "as the engine process logged"
    stopped = f"stopped: the database file was deleted or replaced under the server ({told})"
    assert stopped in text, text[-3000:]

    # A restart would start on a new, empty file: it refuses, naming the copy.
    refused = await asyncio.create_subprocess_exec(*argv, env=server_env(), stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(refused.communicate(), 30)
    assert refused.returncode != 0
    message = stderr.decode()
    assert f"{rescued[0]} holds what a server saved" in message and "Traceback" not in message, message
    assert not database.exists()

    rescued[0].rename(database)
    server = await start_server(argv)
    try:
        async with Client(server.address, timeout=10, retry=None) as client:
            for run_id in ids:
                run = await client.get_workflow("approval").run_by_id(run_id)
                assert run.status is RunStatus.SUSPENDED, run
            handle = await client.get_workflow("approval").create_run(run_id=ids[0])
            resumed = await handle.resume_async({"approved": True})
            assert resumed.status is RunStatus.SUCCESS, resumed
        assert await server.stop() == 0
    finally:
        await server.kill()


async def test_a_database_replaced_under_the_server_is_left_alone_and_saved(tmp_path: Path) -> None:
    """A file moved over the database (not a restore: `runservice restore` takes the lock) is
    left alone; the server saves what it committed beside it and stops."""
    data = tmp_path / "data"
    database = data / "runservice.db"
    argv = serve_argv("--data-dir", str(data), *SERVED)
    server = await start_server(argv)
    try:
        async with Client(server.address, timeout=10, retry=None) as client:
            ids = await suspended_runs(client, 2)
            other = tmp_path / "other.db"
            other.write_bytes(b"")
            other.rename(database)
            assert await exited(server) == 1
    finally:
        await server.kill()
    assert f"the database file {database} was replaced by another file; everything" in server.text
    assert database.stat().st_size == 0  # the file moved in is not written to
    (rescued,) = data.glob("runservice.db.rescued-*")
    database.unlink()
    rescued.rename(database)
    server = await start_server(argv)
    try:
        async with Client(server.address, timeout=10, retry=None) as client:
            runs = [await client.get_workflow("approval").run_by_id(run_id) for run_id in ids]
            assert [run.status for run in runs] == [RunStatus.SUSPENDED] * 2
        assert await server.stop() == 0
    finally:
        await server.kill()


async def test_a_lock_file_deleted_under_the_server_is_taken_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    argv = serve_argv("--data-dir", str(data), *SERVED)
    server = await start_server(argv)
    try:
        (data / "runservice.db.lock").unlink()
        for _ in range(100):
            if "locked it again" in server.text:
                break
            await asyncio.sleep(0.05)
        assert f"the lock file {data / 'runservice.db'}.lock was deleted" in server.text, server.text[-3000:]
        second = await asyncio.create_subprocess_exec(*argv, env=server_env(), stderr=asyncio.subprocess.PIPE)
        _, stderr = await asyncio.wait_for(second.communicate(), 30)
        assert second.returncode != 0
        assert "is in use by another runservice process" in stderr.decode(), stderr.decode()
        async with Client(server.address, timeout=10, retry=None) as client:
            assert (await suspended_runs(client, 1)) == ["approval-0"]
        assert await server.stop() == 0
    finally:
        await server.kill()


async def test_a_relative_path_is_watched_wherever_a_step_takes_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Steps run in the server's process and may change its working directory: the store watches
    (and would save) the file it opened, not the same relative path elsewhere (audit: a chdir
    stopped a healthy server as "deleted", its copy written under the new directory)."""
    monkeypatch.chdir(tmp_path)
    store = SqliteStore("data/runservice.db")
    await store.open()
    try:
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        await asyncio.sleep(0.5)  # five looks of the checkpointer's thread
        now = time.time()
        run = Run(run_id="r1", workflow_id="w", status=RunStatus.PENDING, created_at=now, updated_at=now)
        assert (await store.write(RunWrite("r1", create=run))).applied
        assert store.failure is None and not list(elsewhere.iterdir())
    finally:
        await store.close()


def linked_database(tmp_path: Path) -> tuple[Path, Path]:
    """Directories `disk` and `data`, with `data/runservice.db` a symbolic link to
    `disk/runservice.db` (not made yet)."""
    real, data = tmp_path / "disk", tmp_path / "data"
    real.mkdir()
    data.mkdir()
    (data / "runservice.db").symlink_to(real / "runservice.db")
    return real, data


async def test_a_database_path_through_a_symbolic_link_syncs_the_wal_sqlite_writes(tmp_path: Path) -> None:
    """SQLite puts the WAL beside the file a link resolves to. The store fsyncs that file, not a
    `-wal` beside the link (review: such a path did not open, and with a stale file beside the
    link every synced commit would have fsynced that file instead)."""
    real, data = linked_database(tmp_path)
    (data / "runservice.db-wal").write_bytes(b"")  # stale, beside the link
    store = SqliteStore(str(data / "runservice.db"))
    await store.open()
    try:
        now = time.time()
        run = Run(run_id="r1", workflow_id="w", status=RunStatus.PENDING, created_at=now, updated_at=now)
        assert (await store.write(RunWrite("r1", create=run))).applied
        assert store.syncs == 1 and store.failure is None
        assert store._wal_fd is not None
        assert os.fstat(store._wal_fd).st_ino == (real / "runservice.db-wal").stat().st_ino
        assert (real / "runservice.db-wal").stat().st_size > 0
        assert (data / "runservice.db-wal").stat().st_size == 0
    finally:
        await store.close()
    reopened = SqliteStore(str(real / "runservice.db"))
    await reopened.open()
    try:
        found = await reopened.get_run("r1")
        assert found is not None and found.status is RunStatus.PENDING
    finally:
        await reopened.close()


async def test_a_second_path_to_the_same_database_through_a_link_is_refused(tmp_path: Path) -> None:
    """The lock file lies beside the file a link resolves to: a server on the link and one on its
    target take the same lock (before, each took its own, and both drove the same runs)."""
    real, data = linked_database(tmp_path)
    first = SqliteStore(str(data / "runservice.db"))
    await first.open()
    try:
        second = SqliteStore(str(real / "runservice.db"))
        with pytest.raises(RuntimeError, match="in use by another runservice process"):
            await second.open()
        assert (real / "runservice.db.lock").exists() and not (data / "runservice.db.lock").exists()
    finally:
        await first.close()
