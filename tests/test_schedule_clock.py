"""Schedules on a shared database keep the database's clock, not each replica's own.

A replica process whose wall clock runs an hour ahead (tests/skewed_clock.c preloaded) serves
beside an in-process replica on the machine's clock, on one PostgreSQL. Before, the skewed
replica fired its ticks on its own clock (an hour early, each bearing a time an hour ahead), and
at its boot it pruned the schedule the other replica declares, whose declaration looked an hour
old to it (the other replica restored it at its next refresh, and so on at every boot).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Databases
from packages import build_preload
from process import ROOT, serve_argv, server_env, start_server
from scraping import scrape
from test_replicas import until

from runservice import StepContext, create_step, create_workflow
from runservice.client import Client
from runservice.engine import Engine
from runservice.storage import open_store

pytestmark = pytest.mark.timeout(120)

SKEW = 3600
"""Seconds the skewed replica's clock runs ahead of the machine's (and the database's)."""
SLOW_READING = 2.5
"""Seconds a slow reading of the database's clock takes (past `CLOCK_TOLD_PAST`)."""

TICKING = {
    "id": "relay-every-second",
    "workflow": "relay",
    "cron": "* * * * * *",
    "input_data": {"seconds": 0.01, "n": 1},
    "overlap": "allow",
}


@create_step("count")
async def count(ctx: StepContext) -> Any:
    return ctx.input_data


@pytest.fixture(scope="module")
def skewed_clock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_preload(Path(__file__).with_name("skewed_clock.c"), tmp_path_factory.mktemp("skewed-clock"))


async def test_a_replica_whose_clock_runs_ahead_keeps_the_databases_time(
    pg_databases: Databases, skewed_clock: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="runservice.engine.schedules")
    url = await pg_databases.url_for("schedule-clock")
    # The replica on the machine's clock: another version of `relay`, declaring a yearly
    # schedule the skewed replica does not (a rolling deploy's newer build).
    newer = create_workflow("relay").then(count).schedule("relay-yearly", "0 0 1 1 *").commit()
    store = open_store(url)
    await store.open()
    try:
        engine = Engine(store, [newer], lease_seconds=30, claim_interval=0.2, replica_name="machine")
        # Refreshed often (every minute in production), with a lease much longer than the test.
        engine.schedules.declare_every, engine.schedules.declare_lease = 0.3, 600.0
        async with engine:
            assert engine.schedules.clock_offset == pytest.approx(0.0, abs=1.0)
            env = server_env(
                PYTHONPATH=str(ROOT / "tests"), LD_PRELOAD=str(skewed_clock), SKEW_SECONDS=str(SKEW)
            )
            args = ["--database-url", url, "--workflows", "replica_workflows", "--claim-interval", "0.2"]
            args += ["--schedules", json.dumps([TICKING]), "--metrics-address", "127.0.0.1:0"]
            skewed = await start_server(serve_argv(*args), env=env)
            try:
                async with Client(skewed.address) as client:

                    async def ticked() -> bool:
                        runs, _ = await client.get_workflow("relay").runs(page_size=10)
                        return any(run.schedule_tick is not None for run in runs)

                    await until(ticked, 30, "a tick of the skewed replica's schedule")
                    runs, _ = await client.get_workflow("relay").runs(page_size=10)
                    ticks = [run.schedule_tick for run in runs if run.schedule_tick is not None]
                    # On the database's time: before, each tick bore the skewed clock's (+1 h).
                    assert all(abs(tick - time.time()) < 30 for tick in ticks), ticks

                    # The newer build's schedule was not pruned at the skewed replica's boot.
                    assert "relay-yearly" in {row.schedule_id for row in await engine.schedules.list()}
                    assert "relay-yearly: removed" not in skewed.text
                    restored = [r for r in caplog.records if "restored" in r.getMessage()]
                    assert not restored, [r.getMessage() for r in restored]

                    # Told in the log and in the metrics.
                    told = re.search(r"clock is 3[56]\d\d\.\ds ahead of the database's", skewed.text)
                    assert told, skewed.text
                    metrics_url = re.findall(r"metrics on (\S+)", skewed.text)[0]
                    samples = await scrape(metrics_url)
                    offset = samples[("runservice_clock_offset_seconds", frozenset())]
                    assert offset == pytest.approx(-SKEW, abs=5.0)
                assert await skewed.stop() == 0
            finally:
                await skewed.kill()
    finally:
        await store.close()


def _slowed(
    store: Any, ahead: float
) -> tuple[Callable[[], Awaitable[float]], Callable[[], Awaitable[float]]]:
    """The store's real reading of the database's clock, and a slow one around it: read at its
    start, `ahead` seconds added, answered `SLOW_READING` later (a slow database)."""
    read: Callable[[], Awaitable[float]] = store.clock

    async def slow_clock() -> float:
        database = await read() + ahead
        await asyncio.sleep(SLOW_READING)
        return database

    return read, slow_clock


async def test_the_first_reading_of_the_databases_clock_is_taken_however_slow(
    pg_databases: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reading that takes over `CLOCK_TOLD_PAST` may be off by half its round trip at most, so a
    later one leaves the last reading standing; but the first is taken all the same. Before, a
    first reading that slow left the offset 0, off by the whole skew: a server an hour ahead
    pruned, at its boot, on its own clock. The database is made slow with a sleep around the
    real reading (reading an hour ahead, as from a server an hour behind)."""
    url = await pg_databases.url_for("schedule-clock-slow")
    store = open_store(url)
    await store.open()
    try:
        read, slow_clock = _slowed(store, SKEW)
        monkeypatch.setattr(store, "clock", slow_clock)
        workflow = create_workflow("slow-clock").then(count).commit()
        engine = Engine(store, [workflow], lease_seconds=30, claim_interval=0.2)
        async with engine:
            # The boot's reading: the database's time was read half a round trip before the
            # middle, so the offset is short of the skew by about that.
            assert engine.schedules.clock_offset == pytest.approx(SKEW - SLOW_READING / 2, abs=1.0)

            async def quick_clock() -> float:
                return await read() + SKEW + 100  # a later, slow reading is not taken

            monkeypatch.setattr(store, "clock", quick_clock)
            await engine.schedules.refresh()
            assert engine.schedules.clock_offset == pytest.approx(SKEW + 100, abs=1.0)
            monkeypatch.setattr(store, "clock", slow_clock)
            await engine.schedules.refresh()
            assert engine.schedules.clock_offset == pytest.approx(SKEW + 100, abs=1.0)
    finally:
        await store.close()


async def test_a_slow_first_reading_that_says_less_than_its_own_error_is_not_taken(
    pg_databases: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow first reading of a right clock says it is off by about half the reading's round
    trip: within what such a reading cannot tell, so the offset stays 0 (before, an 8 s reading
    set it to 4 s, and schedules fired 4 s early: a review)."""
    url = await pg_databases.url_for("schedule-clock-slow-right")
    store = open_store(url)
    await store.open()
    try:
        _, slow_clock = _slowed(store, 0.0)
        monkeypatch.setattr(store, "clock", slow_clock)
        workflow = create_workflow("slow-right-clock").then(count).commit()
        async with Engine(store, [workflow], lease_seconds=30, claim_interval=0.2) as engine:
            assert engine.schedules.clock_offset == 0.0
    finally:
        await store.close()
