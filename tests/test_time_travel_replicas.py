"""Time travel with two replicas on one database (SQLite used as a shared store, and
PostgreSQL): a time travel takes the run's lease like Start, so only one of two racing
time travels runs, and a replica that dies during one leaves it to the other, which
gives the target step the same new input (and resume data)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from runservice.engine import Engine
from runservice.errors import RunStillActive
from runservice.model import EventType, Run, RunStatus
from runservice.storage import Store, open_store
from runservice.storage.sqlite import SqliteStore
from runservice.workflow import StepContext, create_step, create_workflow

pytestmark = pytest.mark.timeout(30)

ran: Counter[str] = Counter()
held: set[int] = set()
"""Inputs of `work` that block until the test stops the engine running them."""


@pytest.fixture(autouse=True)
def reset() -> None:
    ran.clear()
    held.clear()
    given.clear()
    blocking.clear()


@create_step("prepare")
async def prepare(ctx: StepContext) -> int:
    ran["prepare"] += 1
    return int(ctx.input_data["n"])


@create_step("work")
async def work(ctx: StepContext) -> int:
    ran["work"] += 1
    ran[f"work:{ctx.input_data}"] += 1
    if ctx.input_data in held:
        await asyncio.Event().wait()
    return int(ctx.input_data) * 2


travelling = create_workflow("travelling").then(prepare).then(work).commit()

given: list[tuple[object, object]] = []
"""(resume data, suspend data) of each run of `decide`'s body."""
blocking: set[str] = set()
"""While it holds "decide", a resumed `decide` blocks until the test stops its engine."""


@create_step("decide")
async def decide(ctx: StepContext) -> object:
    given.append((ctx.resume_data, ctx.suspend_data))
    if ctx.resume_data is None:
        await ctx.suspend({"asked": ctx.input_data})
        return None
    ran["decide"] += 1
    if "decide" in blocking:
        await asyncio.Event().wait()
    return ctx.resume_data


deciding = create_workflow("deciding").then(prepare).then(decide).commit()


@pytest.fixture
async def shared(databases: Any, tmp_path: Path) -> AsyncIterator[Store]:
    store = open_store(await databases.url_for(tmp_path / "runs.db"))
    await store.open()
    if isinstance(store, SqliteStore):
        store.exclusive = False  # as on PostgreSQL: leases expire unless renewed
    try:
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def replica(store: Store, name: str) -> AsyncIterator[Engine]:
    engine = Engine(store, [travelling, deciding], owner=name, lease_seconds=0.6, claim_interval=0.05)
    await engine.__aenter__()
    try:
        yield engine
    finally:
        await engine.aclose()


async def settled(engine: Engine, run_id: str) -> Run:
    deadline = time.monotonic() + 10
    while not (run := await engine.get_run(run_id)).status.terminal:
        assert time.monotonic() < deadline, run.status
        await asyncio.sleep(0.02)
    return run


async def until_ran(key: str, count: int = 1) -> None:
    async with asyncio.timeout(10):
        while ran[key] < count:
            await asyncio.sleep(0.01)


async def test_two_replicas_racing_time_travels_run_it_once(shared: Store) -> None:
    async with replica(shared, "a") as a, replica(shared, "b") as b:
        first = await a.start("travelling", input_data={"n": 1}, wait=True)
        assert first.result == 2
        held.add(7)
        outcomes = await asyncio.gather(
            a.time_travel(first.run_id, step=["work"], input_data=7),
            b.time_travel(first.run_id, step=["work"], input_data=7),
            return_exceptions=True,
        )
        refused = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(refused) == 1 and isinstance(refused[0], RunStillActive), outcomes
        await until_ran("work:7")
        await asyncio.sleep(0.2)
        assert ran["work:7"] == 1  # one time travel runs, on one replica
        await b.cancel(first.run_id)
        events = await shared.read_events(first.run_id, 0)
    assert sum(1 for e in events if e.type is EventType.TIME_TRAVEL) == 1
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))


async def test_a_time_travel_left_by_a_dead_replica_keeps_its_new_input(shared: Store) -> None:
    async with replica(shared, "b") as b:
        async with replica(shared, "a") as a:
            first = await a.start("travelling", input_data={"n": 1}, wait=True)
            held.add(50)
            travelling_run = await a.time_travel(first.run_id, step=["work"], input_data=50)
            assert travelling_run.status is RunStatus.RUNNING
            await until_ran("work:50")
        # `a` is gone mid-step; `b` claims the run and runs `work` again with the same input.
        await until_ran("work:50", 2)
        assert ran["work"] == 3  # the first run, a's attempt, b's attempt: never prepare's output
        held.clear()
        # Let b's attempt finish: it is blocked too (the input was held when it started).
        await b.cancel(first.run_id)
        again = await b.time_travel(first.run_id, step=["work"], input_data=50, wait=True)
    assert again.status is RunStatus.SUCCESS and again.result == 100
    assert ran["prepare"] == 1 and ran["work:1"] == 1


async def test_a_time_travel_with_resume_data_left_by_a_dead_replica_resumes_it_again(shared: Store) -> None:
    """The step's body was under way, resumed by the time travel, when its replica died: the
    other runs it again resumed, with the same resume data and suspend payload (its record
    carries them, as a resumed step's does), never as a fresh step that would suspend again."""
    async with replica(shared, "b") as b:
        async with replica(shared, "a") as a:
            first = await a.start("deciding", input_data={"n": 3}, wait=True)
            assert first.status is RunStatus.SUSPENDED
            blocking.add("decide")
            travelling_run = await a.time_travel(first.run_id, step=["decide"], resume_data={"ok": True})
            assert travelling_run.status is RunStatus.RUNNING
            await until_ran("decide")
            blocking.clear()  # `b`'s attempt returns
        done = await settled(b, first.run_id)
    assert done.status is RunStatus.SUCCESS and done.result == {"ok": True}
    assert given == [(None, None), *[({"ok": True}, {"asked": 3})] * 2]
    assert ran["prepare"] == 1 and ran["decide"] == 2
