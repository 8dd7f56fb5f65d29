"""The files a real `runservice serve` and `runservice backup` make are their owner's alone.

Every run's inputs and outputs live in the SQLite database, its `-wal` and `-shm`, and in a
backup of it. Before, the server made the data directory 0755 and SQLite made the database
(and so its `-wal` and `-shm`) 0644: any local account could read every tenant's runs. Now
what is created is 0700 (directories) and 0600 (files), without a process-wide umask (which
the workflows' own files would get). An existing database other users can read is left as
the operator made it, and the log says so once, with the command that makes it private.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from clitools import runservice
from process import serve_argv, server_env, start_server

from runservice.client import Client
from runservice.model import RunStatus

pytestmark = pytest.mark.timeout(60)

SERVED = ("--workflows", "tests.workflows")
WARNING = "every local user can read the database"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(directory: Path) -> dict[str, int]:
    """The mode of everything in `directory`, by name."""
    return {path.name: mode(path) for path in directory.iterdir()}


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The servers and commands these tests start inherit umask 022, the usual one (a stricter
    umask would make the files private whatever the code does)."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


async def served_run(data: Path, *layout: str) -> str:
    """Serve on `data`, finish a run, and return the server's log; the files are looked at
    while it still serves (the `-wal` and `-shm` exist then)."""
    server = await start_server(serve_argv("--data-dir", str(data), *SERVED, *layout))
    try:
        async with Client(server.address, timeout=10) as client:
            run = await client.get_workflow("echo").create_run()
            done = await run.start_async({"count": 1})
            assert done.status is RunStatus.SUCCESS, done
        database = data / "runservice.db"
        assert {mode(Path(f"{database}{suffix}")) for suffix in ("", "-wal", "-shm", ".lock")} == {0o600}
        assert mode(data / "runservice.address") == 0o600
        # And whatever else it made there (the health socket and its lock): nothing others may use.
        made = modes(data)
        assert {name: bits & 0o077 for name, bits in made.items()} == dict.fromkeys(made, 0), made
        assert await server.stop() == 0
    finally:
        await server.kill()
    return server.text


@pytest.mark.parametrize("layout", [(), ("--engine-process",)], ids=["one-process", "engine-process"])
async def test_a_new_data_directory_and_its_database_are_the_owners_alone(
    tmp_path: Path, layout: tuple[str, ...]
) -> None:
    data = tmp_path / "new" / "data"
    log = await served_run(data, *layout)
    assert mode(data) == 0o700
    assert WARNING not in log, log


async def test_a_new_database_in_a_directory_others_may_list_is_the_owners_alone(tmp_path: Path) -> None:
    # The image's /data, or a directory an operator made: its mode is theirs, the files are ours.
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    log = await served_run(data)
    assert mode(data) == 0o755
    assert WARNING not in log, log  # nothing in it others can read


async def test_an_existing_database_others_can_read_is_left_as_it_is_and_warned_of_once(
    tmp_path: Path,
) -> None:
    # What an earlier runservice left: a 0755 directory, a 0644 database (an empty file is a
    # new database to SQLite, which then makes its -wal and -shm 0644 too).
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    database = data / "runservice.db"
    database.touch()
    database.chmod(0o644)
    server = await start_server(serve_argv("--data-dir", str(data), *SERVED))
    try:
        async with Client(server.address, timeout=10) as client:
            done = await (await client.get_workflow("echo").create_run()).start_async({"count": 1})
            assert done.status is RunStatus.SUCCESS, done
        assert (mode(data), mode(database), mode(data / "runservice.db-wal")) == (0o755, 0o644, 0o644)
        assert await server.stop() == 0
    finally:
        await server.kill()
    warnings = [line for line in server.log if WARNING in line]
    assert len(warnings) == 1, server.text
    (warning,) = warnings
    assert f"{database} (0644)" in warning and f"{database}-wal (0644)" in warning, warning
    assert f"in {data} (0755)" in warning, warning
    assert f"chmod o-rwx {database}*" in warning, warning


async def test_a_backup_and_a_restored_database_are_the_owners_alone(tmp_path: Path) -> None:
    data, backup = tmp_path / "data", tmp_path / "backup.db"
    await served_run(data)
    # server_env: this checkout's code (the console script may be installed from another).
    made = await runservice("backup", str(backup), "--data-dir", str(data), env=server_env())
    assert made.code == 0, made.err
    assert mode(backup) == 0o600
    backup.chmod(0o644)  # copied from elsewhere, say: the database put in place is private all the same
    put = await runservice("restore", str(backup), "--data-dir", str(data), "--json", env=server_env())
    assert put.code == 0, put.err
    assert mode(data / "runservice.db") == 0o600
    assert mode(Path(put.json()["replaced"])) == 0o600  # moved aside as it was
