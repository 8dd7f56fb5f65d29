"""A disk that fills up under a real `runservice serve` on SQLite: nothing fails for it.

The server's file size limit (RLIMIT_FSIZE, lowered from outside with prlimit) stands in for a
full disk: every write to its database files then fails as on a full file system, and SQLite
answers SQLITE_FULL or SQLITE_IOERR_WRITE. A run whose commit fails so stays `running` and goes
on from its last checkpoint once the disk has room again; a Start that cannot be stored is
refused as UNAVAILABLE with reason STORAGE_UNAVAILABLE (retry) and succeeds when retried; the
server logs warnings, no error and no traceback.
"""

from __future__ import annotations

import asyncio
import re
import resource
import sqlite3
import time
from pathlib import Path

import pytest
from disk_workflows import assert_both_went_on, start_gated
from process import ServerProcess, serve_argv, start_server
from scraping import scrape, value

from runservice.client import Client
from runservice.errors import StorageUnavailable
from runservice.storage.sqlite import _storage_error

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="prlimit is Linux's"),
]


def fill_disk(pid: int) -> None:
    """No write of the server may grow a file past its first byte."""
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, hard))


def free_disk(pid: int) -> None:
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))


async def logged(server: ServerProcess, line: str, times: int) -> None:
    for _ in range(300):
        if server.text.count(line) >= times:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not {times} times {line!r} in the server's log:\n{server.text[-3000:]}")


async def test_a_full_disk_delays_a_run_and_refuses_a_start_then_both_go_on(tmp_path: Path) -> None:
    data, gate = tmp_path / "data", tmp_path / "gate"
    served = ("--workflows", "tests.disk_workflows", "--metrics-address", "127.0.0.1:0")
    server = await start_server(serve_argv("--data-dir", str(data), *served))
    try:
        async with Client(server.address, timeout=10, retry=None) as client:
            _, later = await start_gated(client, gate)

            fill_disk(server.proc.pid)
            filled = time.monotonic()
            gate.touch()  # the step returns, and its commit fails: the drive waits and tries again
            await logged(server, "run gated-run: storage failed", 3)
            # The waits double while the disk stays full (0.1 s, 0.2 s, ... each drawn from its
            # upper half): 3 s hold 6 tries at most, where a fixed 0.1 s would make 30.
            await asyncio.sleep(3 - (time.monotonic() - filled))
            assert server.text.count("run gated-run: storage failed") <= 7
            with pytest.raises(StorageUnavailable) as refused:
                await later.start({"gate": str(gate)}, request_id="later-start")
            assert refused.value.reason == "STORAGE_UNAVAILABLE"
            assert "SQLITE_" in str(refused.value)
            metrics_url = re.findall(r"metrics on (\S+)", server.text)[0]
            samples = await scrape(metrics_url)  # the endpoint answers through it all
            assert value(samples, "runservice_store_unavailable_total") >= 4  # the run's tries and the Start

            free_disk(server.proc.pid)
            await assert_both_went_on(client, later, gate)
        assert await server.stop() == 0
    finally:
        await server.kill()
    assert " ERROR " not in server.text and "Traceback" not in server.text, server.text[-3000:]


@pytest.mark.parametrize(
    ("code", "name", "retried"),
    [
        (13, "SQLITE_FULL", True),
        (778, "SQLITE_IOERR_WRITE", True),
        (5, "SQLITE_BUSY", True),
        (8, "SQLITE_READONLY", True),
        (1034, "SQLITE_IOERR_FSYNC", False),  # earlier unsynced pages may be gone: never retried
        (1290, "SQLITE_IOERR_DIR_FSYNC", False),
        (2067, "SQLITE_CONSTRAINT_UNIQUE", False),  # the write's own fault
    ],
)
def test_which_sqlite_errors_are_retried(code: int, name: str, retried: bool) -> None:
    error = sqlite3.OperationalError("as SQLite says it")
    error.sqlite_errorcode, error.sqlite_errorname = code, name  # as the sqlite3 module sets them
    translated = _storage_error(error)
    assert isinstance(translated, StorageUnavailable) is retried
    assert translated is error or name in str(translated)
