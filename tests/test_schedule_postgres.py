"""Cron schedules on a PostgreSQL that misbehaves while the server runs: it refuses writes, an
operator's transaction holds a schedule's row, it goes away for a few seconds, or a replica of
an older deployment stored a schedule input this replica's schema refuses. The loop must
neither spin nor log a trace each turn, TriggerSchedule must answer with the documented codes,
and a tick that fell while the server ran fires once the database answers.

The module starts a PostgreSQL server of its own (tests/postgres.py): its tests make it
read-only and shut it down, which the session's server shared with other tests must not see.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from postgres import PostgresServer, find_bin_dir
from pydantic import BaseModel
from test_schedules import ticking, until

from runservice import StepContext, create_step, create_workflow, logs
from runservice.client import Client
from runservice.engine import Engine
from runservice.errors import FailedPrecondition, StorageUnavailable
from runservice.server import RunServer, build_server
from runservice.storage import TickFire, TickResult
from runservice.storage.postgres import PostgresStore

pytestmark = pytest.mark.timeout(60)

POLL = 0.2
"""The engines' claim interval, which is also how long the schedule loop waits before trying a
tick that could not fire again."""

SCHEDULES = "runservice.engine.schedules"


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql (.ci/run does)"
        )
    made = PostgresServer(bin_dir)
    try:
        made.start()
        yield made
    finally:
        made.stop()


@pytest.fixture
async def store(server: PostgresServer) -> AsyncIterator[PostgresStore]:
    opened = PostgresStore(await server.create_database())
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def serving(engine: Engine) -> RunServer:
    rpc = build_server(engine, address="127.0.0.1:0")
    await rpc.start()
    return rpc


def count_fires(store: PostgresStore) -> Counter[str]:
    """Count the store's tick transactions (the real `fire_tick` does the work)."""
    fires: Counter[str] = Counter()
    real = store.fire_tick

    async def counted(fire: TickFire) -> TickResult:
        fires[fire.schedule_id] += 1
        return await real(fire)

    store.fire_tick = counted  # type: ignore[method-assign]
    return fires


def schedule_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == SCHEDULES and r.levelno >= logging.WARNING]


async def scheduled_ticks(engine: Engine, workflow_id: str) -> list[float]:
    """The ticks of the workflow's scheduled runs, in order ([] while the database is away)."""
    try:
        runs, _ = await engine.list_runs(workflow_id=workflow_id, page_size=1000)
    except StorageUnavailable:
        return []
    return sorted(run.schedule_tick for run in runs if run.schedule_tick is not None)


async def test_a_read_only_database_is_one_warning_a_turn_and_unavailable_to_trigger(
    server: PostgresServer,
    store: PostgresStore,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loop's tick transaction is refused every turn: one warning line per turn, no trace,
    no spin (the tick stays due all along); TriggerSchedule is UNAVAILABLE, not INTERNAL. (A
    server logs such a line at most every 30 s; here every one is, to count the turns.)"""
    monkeypatch.setattr(logs, "REPEAT_EVERY", 0.0)
    caplog.set_level(logging.INFO, logger=SCHEDULES)
    ran: Counter[str] = Counter()
    async with Engine(store, [ticking("read-only", ran)], lease_seconds=30, claim_interval=POLL) as engine:
        rpc = await serving(engine)
        try:
            await server.set_read_only(True)
            await asyncio.sleep(0.3)  # every session has read the new setting
            caplog.clear()
            await asyncio.sleep(2.0)
            lines = schedule_lines(caplog)
            async with Client(rpc.address, timeout=10) as client:
                with pytest.raises(StorageUnavailable) as refused:
                    await client.schedules.trigger("read-only")
        finally:
            await server.set_read_only(False)
            await rpc.stop(0.5)
    assert refused.value.reason == "STORAGE_UNAVAILABLE"
    assert [r.getMessage() for r in lines if r.levelno >= logging.ERROR or r.exc_info] == []
    assert 3 <= len(lines) <= 2.0 / POLL + 5, [r.getMessage() for r in lines]
    assert all("ReadOnlySQLTransactionError 25006" in r.getMessage() for r in lines)


async def test_a_held_schedule_row_is_tried_again_after_a_pause_then_fires(
    server: PostgresServer, store: PostgresStore, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator's transaction holds the schedule's row over its ticks: the loop's claim skips
    the locked row (lost) with the tick still due; it is tried again each poll interval, not in
    a loop, and the ticks fire once the row is free."""
    fires = count_fires(store)
    ran: Counter[str] = Counter()
    workflow = ticking("held", ran, overlap="allow")
    async with Engine(store, [workflow], lease_seconds=30, claim_interval=POLL) as engine:

        async def first() -> bool:
            return len(await scheduled_ticks(engine, workflow.id)) >= 1

        await until(first, 5, "a first tick")
        operator = await asyncpg.connect(store.url)
        try:
            async with operator.transaction():
                await operator.execute("SELECT 1 FROM schedules WHERE schedule_id = 'held' FOR UPDATE")
                fires.clear()
                await asyncio.sleep(2.0)
                tried = fires["held"]
        finally:
            await operator.close()
        held_until = time.time()

        async def caught_up() -> bool:
            ticks = await scheduled_ticks(engine, workflow.id)
            return bool(ticks) and ticks[-1] > held_until

        await until(caught_up, 5, "the ticks of the hold to fire")
        ticks = await scheduled_ticks(engine, workflow.id)
    assert 1 <= tried <= 2.0 / POLL + 5, tried
    assert ticks == [ticks[0] + i for i in range(len(ticks))], "a tick of the hold was lost"
    # Held past a poll, the tick cannot fire: said, one line per try, naming the holder.
    lines = [r.getMessage() for r in schedule_lines(caplog)]
    assert lines and all("lost with the schedule still due (another transaction holds" in m for m in lines)


async def test_two_healthy_replicas_fire_each_tick_once_without_a_warning(
    server: PostgresServer, store: PostgresStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Two replicas race for every tick: the loser's claim skips the row the winner holds and,
    read again before the winner committed, found the tick still due; it warned "lost with the
    schedule still due" on almost every tick (audit), of a tick that was firing fine."""
    caplog.set_level(logging.INFO, logger=SCHEDULES)
    ran: Counter[str] = Counter()
    workflow = ticking("raced", ran, overlap="allow")
    other = PostgresStore(store.url)
    await other.open()
    try:
        async with (
            Engine(store, [workflow], lease_seconds=30, claim_interval=POLL, replica_name="a") as one,
            Engine(other, [workflow], lease_seconds=30, claim_interval=POLL, replica_name="b"),
        ):
            await asyncio.sleep(6.0)
            ticks = await scheduled_ticks(one, workflow.id)
    finally:
        await other.close()
    assert len(ticks) >= 4 and ticks == [ticks[0] + i for i in range(len(ticks))], ticks  # each once
    assert [r.getMessage() for r in schedule_lines(caplog)] == []


async def test_a_tick_during_a_short_outage_fires_when_the_database_is_back(
    server: PostgresServer, store: PostgresStore
) -> None:
    """The server kept running while its database was away: the ticks of the outage are late,
    not missed (missed=skip is for ticks that fell while no server ran), and coalesced: the
    most recent due one fires once the database answers, those before it are passed over."""
    ran: Counter[str] = Counter()
    workflow = ticking("blip", ran, overlap="allow")
    async with Engine(store, [workflow], lease_seconds=30, claim_interval=POLL) as engine:
        # A tick counts as on time for `grace` seconds; a shorter grace lets a short outage
        # (and a short test) outlast it.
        engine.schedules.grace = 1.0

        async def first() -> bool:
            return len(await scheduled_ticks(engine, workflow.id)) >= 1

        await until(first, 5, "a first tick")
        await asyncio.to_thread(server.shut_down)
        down_at = time.time()
        await asyncio.sleep(2.5)
        await asyncio.to_thread(server.start_again)
        up_at = time.time()

        async def caught_up() -> bool:
            ticks = await scheduled_ticks(engine, workflow.id)
            return bool(ticks) and ticks[-1] > up_at

        await until(caught_up, 10, "ticks after the outage")
        ticks = await scheduled_ticks(engine, workflow.id)
    assert ticks[0] < down_at and ticks == sorted(set(ticks)), ticks
    # One run for the outage's ticks at most, and the cadence unbroken before and after it.
    assert len([tick for tick in ticks if down_at < tick < up_at]) <= 1, ticks
    assert len([a for a, b in itertools.pairwise(ticks) if b - a != 1]) <= 1, ticks


class Team(BaseModel):
    team: str


@create_step("noop")
async def noop(ctx: StepContext) -> Any:
    return None


async def test_a_stored_input_this_replica_refuses_is_failed_precondition(
    server: PostgresServer, store: PostgresStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Mid rolling deploy: the new code requires `input.team`; a replica of the old code booted
    after it and stored the schedule with input {}. The new replica cannot start runs from it:
    TriggerSchedule is FAILED_PRECONDITION (SCHEDULE_INPUT_INVALID), and its loop says so in one
    warning line per try, each poll interval, without a trace."""
    caplog.set_level(logging.INFO, logger=SCHEDULES)
    new = create_workflow("report", input_schema=Team).then(noop)
    new = new.schedule("report", "* * * * * *", input_data={"team": "fr"}).commit()
    old = create_workflow("report").then(noop).schedule("report", "* * * * * *", input_data={}).commit()
    older = PostgresStore(store.url)
    await older.open()
    try:
        async with Engine(store, [new], lease_seconds=30, claim_interval=POLL) as engine:
            async with Engine(older, [old], lease_seconds=30, claim_interval=POLL):
                pass  # the old replica declared its schedule, and stopped
            rpc = await serving(engine)
            try:
                caplog.clear()
                await asyncio.sleep(2.0)
                lines = schedule_lines(caplog)
                async with Client(rpc.address, timeout=10) as client:
                    with pytest.raises(FailedPrecondition) as refused:
                        await client.schedules.trigger("report")
            finally:
                await rpc.stop(0.5)
    finally:
        await older.close()
    assert refused.value.reason == "SCHEDULE_INPUT_INVALID"
    assert refused.value.metadata == {"schedule_id": "report"}
    assert "input_data" in refused.value.message
    assert [r.getMessage() for r in lines if r.levelno >= logging.ERROR or r.exc_info] == []
    assert 3 <= len(lines) <= 2.0 / POLL + 5, [r.getMessage() for r in lines]
    assert all("schedule 'report'" in r.getMessage() for r in lines)
