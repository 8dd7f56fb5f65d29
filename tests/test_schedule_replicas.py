"""A cron schedule served by two replica processes on one PostgreSQL fires each tick once.

The schedule is declared by the servers' configuration (`--schedules`), ticks every second,
and lets runs overlap, so every tick must start exactly one run whichever replica sees it
first. Bodies record each execution in a side SQLite file (tests/replica_workflows.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from process import ROOT, ServerProcess, serve_argv, server_env, start_server
from test_replicas import executions, until

from runservice.client import Client
from runservice.model import RunStatus
from runservice.storage import open_store

pytestmark = pytest.mark.timeout(120)

SCHEDULE = {
    "id": "relay-every-second",
    "workflow": "relay",
    "cron": "* * * * * *",
    "input_data": {"seconds": 0.05, "n": 1},
    "overlap": "allow",
}


@contextlib.asynccontextmanager
async def replicas(url: str, side_db: Path, count: int) -> AsyncIterator[list[ServerProcess]]:
    env = server_env(PYTHONPATH=str(ROOT / "tests"), REPLICA_SIDE_DB=str(side_db))
    args = ["--database-url", url, "--workflows", "replica_workflows", "--heartbeat", "0.5"]
    args += ["--lease-seconds", "2", "--claim-interval", "0.2", "--grace", "1"]
    args += ["--schedules", json.dumps([SCHEDULE])]
    started: list[ServerProcess] = []
    try:
        for _ in range(count):
            started.append(await start_server(serve_argv(*args), env=env))
        yield started
    except BaseException:
        for name, server in zip("AB", started, strict=False):
            print(f"--- replica {name} (pid {server.proc.pid}):\n{server.text[-4000:]}")
        raise
    finally:
        for server in started:
            if server.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    server.proc.send_signal(signal.SIGCONT)
                await server.kill()


async def test_two_replicas_fire_each_tick_once(pg_databases: Any, tmp_path: Path) -> None:
    url = await pg_databases.url_for("schedule-replicas")
    side = tmp_path / "ran.db"
    async with replicas(url, side, 2) as (a, b), Client(a.address) as client_a, Client(b.address) as client_b:

        async def enough() -> bool:
            runs, _ = await client_a.get_workflow("relay").runs(page_size=1000)
            return len(runs) >= 5

        await until(enough, 30, "five scheduled runs")
        # Stop the ticks through the other replica, then let the runs in flight finish.
        paused = await client_b.schedules.pause("relay-every-second")
        assert paused.paused

        async def settled() -> bool:
            runs, _ = await client_b.get_workflow("relay").runs(page_size=1000)
            return all(run.status is RunStatus.SUCCESS for run in runs)

        await until(settled, 20, "the scheduled runs to finish")
        runs, _ = await client_b.get_workflow("relay").runs(page_size=1000)
        shown = await client_a.schedules.get("relay-every-second")
    ticks = sorted(run.schedule_tick for run in runs if run.schedule_tick is not None)
    assert len(ticks) == len(runs) and all(run.schedule_id == "relay-every-second" for run in runs)
    assert len(set(ticks)) == len(ticks), "a tick fired twice"
    # No tick was lost either: consecutive seconds from the first to the last.
    assert ticks == [ticks[0] + i for i in range(len(ticks))], ticks
    assert shown.last_tick == ticks[-1]
    # Every tick's run ran each of its steps once, on one replica or the other.
    ran = Counter((run_id, step) for run_id, step, _, _ in executions(side))
    for run in runs:
        for step in ("first", "slow", "last"):
            assert ran[(run.run_id, step)] == (2 if step == "slow" else 1), (run.run_id, step)
    # The record of fired ticks agrees: one row per tick, each naming its run.
    store = open_store(url)
    await store.open()
    try:
        origins = await store.schedule_origins([run.run_id for run in runs])
    finally:
        await store.close()
    assert sorted(tick for _, tick in origins.values()) == ticks
    pids = {pid for _, _, pid, _ in executions(side)}
    print(f"{len(ticks)} ticks fired by {len(pids)} replica(s) in {time.strftime('%X')}")


async def test_replicas_agree_on_pause_and_trigger(pg_databases: Any, tmp_path: Path) -> None:
    url = await pg_databases.url_for("schedule-replicas-pause")
    async with (
        replicas(url, tmp_path / "ran.db", 2) as (a, b),
        Client(a.address) as client_a,
        Client(b.address) as client_b,
    ):
        await client_a.schedules.pause("relay-every-second")
        await asyncio.sleep(0.5)  # a tick claimed just before the pause may still start
        before, _ = await client_b.get_workflow("relay").runs(page_size=1000)
        await asyncio.sleep(2.0)
        after, _ = await client_b.get_workflow("relay").runs(page_size=1000)
        assert len(after) == len(before), "a paused schedule fired on a replica"
        fired = await client_b.schedules.trigger("relay-every-second")
        assert fired.outcome == "started" and fired.run is not None
        seen = await client_a.get_workflow("relay").run_execution_result(fired.run.run_id)
        assert seen.schedule_id == "relay-every-second"
