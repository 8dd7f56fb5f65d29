"""Readiness follows the database: a real `runservice serve` on a PostgreSQL server of its own
(tests/postgres.py), which an operator shuts down and starts again. While it is away,
RunService and ScheduleService are NOT_SERVING (a load balancer or a readiness probe moves
callers elsewhere), the server itself ("", liveness) stays SERVING, and
`runservice_store_available` is 0; once it answers, everything is SERVING again and runs start.
In one process and with `--engine-process` (where the engine process tells the edge)."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from postgres import PostgresServer
from process import serve_argv, start_server
from scraping import scrape, value

from runservice.client import Client, check_health
from runservice.errors import ServiceError

pytestmark = pytest.mark.timeout(120)

READINESS = ("runservice.v1.RunService", "runservice.v1.ScheduleService")


async def statuses(address: str) -> dict[str, str]:
    return {service: await check_health(address, service=service) for service in ("", *READINESS)}


async def until(address: str, readiness: str, within: float = 20.0) -> dict[str, str]:
    """The statuses once every readiness service says `readiness`."""
    deadline = time.monotonic() + within
    while True:
        seen = await statuses(address)
        if all(seen[service] == readiness for service in READINESS):
            return seen
        assert time.monotonic() < deadline, f"readiness never became {readiness}: {seen}"
        await asyncio.sleep(0.1)


async def started(address: str) -> str:
    """A run started and finished once the database answers (retried as a caller would)."""
    deadline = time.monotonic() + 20
    async with Client(address, timeout=10) as client:
        while True:
            try:
                run = await (await client.get_workflow("echo").create_run(run_id="after-outage")).start_async(
                    {"count": 1}, request_id="after-outage"
                )
                return run.status.value
            except ServiceError:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)


@pytest.mark.parametrize("split", [False, True], ids=["one-process", "engine-process"])
async def test_readiness_follows_the_database(own_postgres: PostgresServer, split: bool) -> None:
    database = own_postgres
    url = await database.create_database()
    args = ["--database-url", url, "--workflows", "tests.workflows", "--claim-interval", "0.2"]
    args += ["--metrics-address", "127.0.0.1:0", *(["--engine-process"] if split else [])]
    server = await start_server(serve_argv(*args))
    try:
        found = re.search(r"metrics on (\S+)", server.text)
        assert found is not None, server.text
        metrics = found.group(1)
        assert await statuses(server.address) == dict.fromkeys(("", *READINESS), "SERVING")
        assert value(await scrape(metrics), "runservice_store_available") == 1

        await asyncio.to_thread(database.shut_down)
        # The idle server learns it from its own claim loop: nobody called meanwhile.
        seen = await until(server.address, "NOT_SERVING")
        assert seen[""] == "SERVING"  # liveness: restarting the process would not help
        assert value(await scrape(metrics), "runservice_store_available") == 0

        await asyncio.to_thread(database.start_again)
        seen = await until(server.address, "SERVING")
        assert seen[""] == "SERVING"
        assert value(await scrape(metrics), "runservice_store_available") == 1
        assert await started(server.address) == "success"
        assert await server.stop() == 0
    finally:
        await server.kill()
    log = server.text
    assert log.count("the database does not answer: health NOT_SERVING until it does") == 1, log
    assert log.count("the database answers again: health SERVING") == 1, log
    assert "Traceback" not in log, log
