"""`runservice backup` and `runservice restore` of the embedded SQLite database: a backup made
while a real server starts runs is a database whose every run goes on once restored; restore
refuses while a server holds the database and moves the one it replaces aside; a backup
leaves out the space deleted runs freed. The real console script, real servers."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from clitools import RUNSERVICE, Result, clean_env, runservice
from conftest import serving_on
from process import serve_argv, server_env, start_server
from workflows import WORKFLOWS

from runservice.client import Client
from runservice.errors import StorageUnavailable
from runservice.model import RunStatus
from runservice.storage.sqlite import SCHEMA_VERSION

pytestmark = pytest.mark.timeout(90)

ACTIVE = (RunStatus.RUNNING, RunStatus.WAITING)
FLOWS = "tests.workflows,tests.replica_workflows"


FULL_DISK = (
    "import os, resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY));"
    " os.execv(sys.argv[1], sys.argv[1:])"
)
"""`python -c FULL_DISK PROGRAM ARGS...` runs PROGRAM with no file growing past 4 KiB: a copy
fails as on a full disk."""


def size(path: Path | str) -> int:
    """Bytes of a file (0 when there is none)."""
    return Path(path).stat().st_size if Path(path).exists() else 0


def run_ids(database: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        return {row[0] for row in conn.execute("SELECT run_id FROM runs")}


async def test_a_backup_made_while_runs_start_restores_to_a_server_whose_runs_go_on(tmp_path: Path) -> None:
    live, restored = tmp_path / "live", tmp_path / "restored"
    backup = tmp_path / "backup.db"
    server = await start_server(serve_argv("--data-dir", str(live), "--workflows", FLOWS), env=server_env())
    try:
        async with Client(server.address, timeout=10) as client:
            echo, approval = client.get_workflow("echo"), client.get_workflow("approval")
            # In its slow step when the backup is made: `running` in it. 4 s: on a loaded
            # machine (two test workers) the runs before and the CLI's start took over 1.5 s.
            midway = await (await client.get_workflow("relay").create_run()).start({"seconds": 4, "n": 1})
            done = [await (await echo.create_run()).start_async({"count": n}) for n in range(10)]
            asked = await (await approval.create_run()).start_async({"count": 1})
            assert asked.status is RunStatus.SUSPENDED
            stop = asyncio.Event()
            started: list[str] = []

            async def keep_starting() -> None:
                while not stop.is_set():
                    run = await echo.create_run()
                    started.append(run.run_id)
                    await run.start({"count": len(started)})

            writer = asyncio.create_task(keep_starting())
            try:
                await asyncio.sleep(0.3)
                made = await runservice("backup", str(backup), "--data-dir", str(live), "--json")
                await asyncio.sleep(0.3)  # runs go on being started after the copy
            finally:
                stop.set()
                await writer
        assert made.code == 0, made.err
        copy = made.json()
        assert (copy["path"], copy["schema_version"], copy["replaced"]) == (str(backup), SCHEMA_VERSION, None)
        assert copy["bytes"] == size(backup)
    finally:
        assert await server.stop() == 0
    saved = run_ids(backup)
    assert len(saved) == copy["runs"]
    with contextlib.closing(sqlite3.connect(backup)) as conn:
        (status,) = conn.execute("SELECT status FROM runs WHERE run_id = ?", (midway.run_id,)).fetchone()
    assert status == "running"
    assert {run.run_id for run in done} | {asked.run_id} <= saved
    assert saved < run_ids(live / "runservice.db")  # the runs started after it are not in it

    put = await runservice("restore", str(backup), "--data-dir", str(restored), "--json")
    assert put.code == 0, put.err
    assert put.json()["replaced"] is None and put.json()["runs"] == len(saved)
    server = await start_server(
        serve_argv("--data-dir", str(restored), "--workflows", FLOWS), env=server_env()
    )
    try:
        async with Client(server.address, timeout=10) as client:
            echo, approval = client.get_workflow("echo"), client.get_workflow("approval")
            # A run the backup caught mid-way is driven on by the restored server's claim loop.
            relay = client.get_workflow("relay")
            bound = time.monotonic() + 60
            while (again := await relay.run_by_id(midway.run_id)).status in ACTIVE:
                assert time.monotonic() < bound, "the run caught mid-way did not go on"
                await asyncio.sleep(0.1)
            assert (again.status, again.result) == (RunStatus.SUCCESS, {"n": 20})
            for run_id in saved - {asked.run_id, midway.run_id}:
                while (run := await echo.run_by_id(run_id)).status in ACTIVE:
                    assert time.monotonic() < bound, f"{run_id} did not go on"
                    await asyncio.sleep(0.05)
                # One the backup caught between CreateRun and Start stays pending, never started.
                assert run.status in (RunStatus.SUCCESS, RunStatus.PENDING), run
            resumed = await (await approval.create_run(run_id=asked.run_id)).resume_async(
                resume_data={"approved": True}
            )
            assert resumed.status is RunStatus.SUCCESS
    finally:
        assert await server.stop() == 0


async def test_restore_waits_for_the_server_to_stop_checks_the_backup_and_keeps_what_it_replaces(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    database = data / "runservice.db"
    backup = tmp_path / "backup.db"
    server = await start_server(
        serve_argv("--data-dir", str(data), "--workflows", "tests.workflows"), env=server_env()
    )
    try:
        async with Client(server.address, timeout=10) as client:
            echo = client.get_workflow("echo")
            before = await (await echo.create_run()).start_async({"count": 1})
            assert (await runservice("backup", str(backup), "--data-dir", str(data))).code == 0
            after = await (await echo.create_run()).start_async({"count": 2})
            refused = await runservice("restore", str(backup), "--data-dir", str(data))
            assert refused.code == 1
            assert refused.error_lines == [
                f"runservice: error: restore: database {database} is in use by a runservice server:"
                " stop it first"
            ]
            assert (await echo.run_by_id(after.run_id)).status is RunStatus.SUCCESS  # untouched
    finally:
        assert await server.stop() == 0

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database" * 100)
    for bad, why in ((garbage, "is not a runservice database"), (tmp_path / "absent.db", "no backup at")):
        refused = await runservice("restore", str(bad), "--data-dir", str(data))
        assert refused.code == 1 and why in refused.err, refused.err
    assert run_ids(database) == {before.run_id, after.run_id}

    put = await runservice("restore", str(backup), "--data-dir", str(data), "--json")
    assert put.code == 0, put.err
    aside = Path(put.json()["replaced"])
    assert aside.parent == data and aside.name.startswith("runservice.db.before-restore-")
    assert run_ids(database) == {before.run_id}
    assert run_ids(aside) == {before.run_id, after.run_id}  # nothing lost: moved with its WAL
    assert size(f"{database}-wal") == 0
    itself = await runservice("restore", str(database), "--data-dir", str(data))
    assert itself.code == 1 and "is the database itself" in itself.err, itself.err
    assert run_ids(database) == {before.run_id}

    # A database left by a killed server (commits only in its -wal file) restores whole.
    server = await start_server(
        serve_argv("--data-dir", str(data), "--workflows", "tests.workflows"), env=server_env()
    )
    try:
        async with Client(server.address, timeout=10) as client:
            late = await (await client.get_workflow("echo").create_run()).start_async({"count": 3})
    finally:
        await server.kill()
    assert size(f"{database}-wal") > 0
    elsewhere = tmp_path / "elsewhere"
    put = await runservice("restore", str(database), "--data-dir", str(elsewhere))
    assert put.code == 0, put.err
    assert run_ids(elsewhere / "runservice.db") == {before.run_id, late.run_id}


async def test_a_restore_that_cannot_copy_leaves_the_database_in_place(tmp_path: Path) -> None:
    """A full disk during the copy: the database stays where it was, whole (an audit saw it
    moved aside before the copy failed, and the next `serve` start from an empty file)."""
    data = tmp_path / "data"
    database = data / "runservice.db"
    async with serving_on(database, workflows=WORKFLOWS) as served, Client(served.address) as client:
        kept = await (await client.get_workflow("echo").create_run()).start_async({"count": 1})
    backup = tmp_path / "backup.db"
    assert (await runservice("backup", str(backup), "--data-dir", str(data))).code == 0
    # No file may grow past 4 KiB in the restore's process: its copy fails as on a full disk.
    argv = [sys.executable, "-c", FULL_DISK, sys.executable, "-m", "runservice", "restore", str(backup)]
    done = await asyncio.to_thread(
        subprocess.run,
        [*argv, "--data-dir", str(data)],
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"runservice: error: restore: could not copy {backup}: ")
    assert line.endswith(f"; {database} is left as it was")
    assert run_ids(database) == {kept.run_id}
    left = [path.name for path in data.iterdir() if "before-restore" in path.name or "partial" in path.name]
    assert left == [], "nothing moved aside, no partial copy left"


async def test_restore_takes_a_newer_backup_only_if_it_says_older_servers_can_use_it(tmp_path: Path) -> None:
    """A backup a newer runservice made: refused, unless every schema version this one does not
    know is listed in `schema_compatible` (as the server itself decides at start-up)."""
    backup = tmp_path / "backup.db"
    async with serving_on(backup, workflows=WORKFLOWS):
        pass
    future = SCHEMA_VERSION + 1
    with contextlib.closing(sqlite3.connect(backup)) as conn, conn:
        conn.execute(f"PRAGMA user_version = {future}")
        conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (future,))
    data = tmp_path / "data"
    refused = await runservice("restore", str(backup), "--data-dir", str(data))
    assert refused.code == 1 and f"has schema version {future}" in refused.err, refused.err
    with contextlib.closing(sqlite3.connect(backup)) as conn, conn:
        conn.execute("INSERT INTO schema_compatible (version) VALUES (?)", (future,))
    put = await runservice("restore", str(backup), "--data-dir", str(data))
    assert put.code == 0, put.err


async def test_backup_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    made = await runservice("backup", str(tmp_path / "b.db"), "--data-dir", str(tmp_path / "none"))
    assert made.code == 1 and "no database at" in made.err
    (tmp_path / "taken.db").write_text("mine")
    async with serving_on(tmp_path / "runs.db", workflows=WORKFLOWS):
        url = f"sqlite:///{tmp_path / 'runs.db'}"
        made = await runservice("backup", str(tmp_path / "taken.db"), "--database-url", url)
        assert made.code == 1 and "already exists" in made.err
    assert (tmp_path / "taken.db").read_text() == "mine"
    for command in ("backup", "restore"):
        made = await runservice(
            command, str(tmp_path / "x.db"), "--database-url", "postgresql://u:secret@h/db"
        )
        assert made.code == 2 and "pg_dump" in made.err and "secret" not in made.err, made.err


def failure(done: Result, command: str) -> dict[str, Any]:
    """The `{"error": {...}}` a failed `command --json` printed on stdout, checked against the
    one line it wrote on stderr and its exit code (1: it could not be done)."""
    assert done.code == 1, (done.code, done.out, done.err)
    error: dict[str, Any] = done.json()["error"]
    assert set(error) == {"code", "reason", "message", "metadata", "violations"}
    assert (error["code"], error["reason"], error["violations"]) == (
        "FAILED_PRECONDITION",
        f"{command.upper()}_FAILED",
        [],
    )
    assert done.error_lines == [f"runservice: error: {command}: {error['message']}"]
    return error


async def test_a_backup_or_restore_that_cannot_be_done_prints_its_error_as_json(tmp_path: Path) -> None:
    """With --json, every failure is also the `{"error": {...}}` object other commands print
    on stdout, with the files in its metadata. Before, only usage errors were: a database
    missing, a destination taken or full, a server holding the database printed nothing
    there, and a script had nothing to parse."""
    data, absent = tmp_path / "data", tmp_path / "absent"
    database, backup = data / "runservice.db", tmp_path / "backup.db"
    missing = await runservice("backup", str(backup), "--data-dir", str(absent), "--json")
    error = failure(missing, "backup")
    assert error["message"] == f"no database at {absent / 'runservice.db'}"
    assert error["metadata"] == {"database": str(absent / "runservice.db"), "destination": str(backup)}
    (tmp_path / "taken.db").write_text("mine")
    async with serving_on(database, workflows=WORKFLOWS):
        taken = await runservice("backup", str(tmp_path / "taken.db"), "--data-dir", str(data), "--json")
        assert "already exists" in failure(taken, "backup")["message"]
        # No file may grow past 4 KiB in the command's process: the copy fails as on a full disk.
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", FULL_DISK, str(RUNSERVICE), "backup", str(backup), "--data-dir", str(data),
            "--json", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=clean_env(),
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode is not None
        full = failure(Result(proc.returncode, out.decode(), err.decode()), "backup")
        assert full["message"].startswith(f"could not back up {database}: "), full
        assert not backup.exists()
        made = await runservice("backup", str(backup), "--data-dir", str(data))
        assert made.code == 0, made.err
        held = await runservice("restore", str(backup), "--data-dir", str(data), "--json")
        error = failure(held, "restore")
        assert error["message"] == f"database {database} is in use by a runservice server: stop it first"
        assert error["metadata"] == {"database": str(database), "backup": str(backup)}
    nothing = await runservice("restore", str(tmp_path / "none.db"), "--data-dir", str(data), "--json")
    assert failure(nothing, "restore")["message"] == f"no backup at {tmp_path / 'none.db'}"
    # Without --json: the same line, and nothing on stdout.
    plain = await runservice("restore", str(tmp_path / "none.db"), "--data-dir", str(data))
    assert (plain.code, plain.out) == (1, "")
    assert plain.error_lines == [f"runservice: error: restore: no backup at {tmp_path / 'none.db'}"]


async def test_a_backup_leaves_out_what_deleted_runs_freed(tmp_path: Path) -> None:
    database = tmp_path / "runs.db"
    async with serving_on(database, workflows=WORKFLOWS) as served:
        big = {"count": 1, "padding": "x" * 20_000}
        runs = [await served.engine.start("echo", input_data=big, wait=True) for _ in range(100)]
        kept = await served.engine.start("echo", input_data={"count": 1}, wait=True)
        for run in runs:
            await served.engine.delete_run(run.run_id)
        made = await runservice(
            "backup", str(tmp_path / "small.db"), "--database-url", f"sqlite:///{database}", "--json"
        )
        assert made.code == 0, made.err
        live_bytes = size(database) + size(f"{database}-wal")
    assert made.json()["runs"] == 1 and run_ids(tmp_path / "small.db") == {kept.run_id}
    assert made.json()["bytes"] * 10 < live_bytes, (made.json()["bytes"], live_bytes)


def damage(database: Path) -> None:
    """Overwrite 16 KiB from a page in the middle of the `runs` table's, as a failing disk might.
    Found by `dbstat`: the middle of the file moved off every `runs` page once a migration made
    one page more (a listing then read nothing damaged)."""
    with contextlib.closing(sqlite3.connect(database)) as conn:
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        pages = [p for (p,) in conn.execute("SELECT pageno FROM dbstat WHERE name = 'runs' ORDER BY pageno")]
    with open(database, "r+b") as file:
        file.seek((pages[len(pages) // 2] - 1) * page_size)
        file.write(b"\xff" * 4096 * 4)


async def test_a_damaged_database_is_refused_as_retryable_and_a_backup_brings_it_back(tmp_path: Path) -> None:
    """Pages that read back malformed (SQLITE_CORRUPT) are refused UNAVAILABLE, not answered
    INTERNAL with a traceback; the server says to restore a backup, serves what it can read,
    and a restored backup reads whole again. A damaged file cannot be backed up."""
    data = tmp_path / "data"
    database, backup = data / "runservice.db", tmp_path / "backup.db"
    argv = serve_argv("--data-dir", str(data), "--workflows", "tests.workflows")
    server = await start_server(argv, env=server_env())
    try:
        async with Client(server.address, timeout=10) as client:
            echo = client.get_workflow("echo")
            for n in range(300):
                await (await echo.create_run(run_id=f"run-{n:04d}")).start_async({"count": n})
        assert (await runservice("backup", str(backup), "--data-dir", str(data))).code == 0
    finally:
        assert await server.stop() == 0
    await asyncio.to_thread(damage, database)

    server = await start_server(argv, env=server_env())
    try:
        async with Client(server.address, timeout=10, retry=None) as client:
            echo = client.get_workflow("echo")
            with pytest.raises(StorageUnavailable) as refused:
                await echo.runs(page_size=1000)
            assert refused.value.reason == "STORAGE_UNAVAILABLE" and "SQLITE_CORRUPT" in str(refused.value)
            readable = 0
            for n in range(0, 300, 10):
                with contextlib.suppress(StorageUnavailable):
                    readable += (await echo.run_by_id(f"run-{n:04d}")).status is RunStatus.SUCCESS
            assert 0 < readable < 30  # what the damage did not reach is still served
        copied = await runservice("backup", str(tmp_path / "of-damaged.db"), "--data-dir", str(data))
        assert copied.code == 1 and "malformed" in copied.err, copied.err
    finally:
        assert await server.stop() == 0
    assert "Traceback" not in server.text and " ERROR " not in server.text, server.text[-3000:]
    assert "restore a backup (runservice restore)" in server.text

    assert (await runservice("restore", str(backup), "--data-dir", str(data))).code == 0
    server = await start_server(argv, env=server_env())
    try:
        async with Client(server.address, timeout=10) as client:
            runs, _ = await client.get_workflow("echo").runs(page_size=1000)
            assert len(runs) == 300
    finally:
        assert await server.stop() == 0
