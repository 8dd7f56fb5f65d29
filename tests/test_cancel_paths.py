"""Runs that end on the less-travelled paths, in process on SQLite and PostgreSQL: a Cancel that
meets the claim loop, a sleep beside a branch that ended, a foreach a Cancel or a deadline cuts,
and what the log of a canceled run tells a Watch. In each, the run's status agrees with its
steps and items, GetRun with the log, and no body runs on under a run that ended."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Databases

from runservice.engine import Engine
from runservice.errors import StorageUnavailable
from runservice.model import EventType, Run, RunStatus, StepStatus
from runservice.storage import Store, open_store
from runservice.workflow import StepContext, clone_step, create_step, create_workflow

pytestmark = pytest.mark.timeout(60)

UNFINISHED = {StepStatus.RUNNING, StepStatus.WAITING, StepStatus.SUSPENDED}
FINISHED: list[str] = []
"""Runs whose `slow` body ran to its end."""


@create_step("ask")
async def ask(ctx: StepContext) -> Any:
    if ctx.resume_data is not None:
        return {"answer": ctx.resume_data}
    return await ctx.suspend({"question": 1})


@create_step("item")
async def item(ctx: StepContext) -> Any:
    """A negative item suspends; any other takes 30 s."""
    if ctx.resume_data is not None:
        return ctx.input_data
    if ctx.input_data < 0:
        return await ctx.suspend({"why": ctx.input_data})
    await asyncio.sleep(30)
    return ctx.input_data


@create_step("item-ask")
async def item_ask(ctx: StepContext) -> Any:
    if ctx.resume_data is not None:
        return ctx.input_data
    return await ctx.suspend({"item": ctx.input_data})


@create_step("quick")
async def quick(ctx: StepContext) -> Any:
    return {"n": 1}


@create_step("slow")
async def slow(ctx: StepContext) -> Any:
    await asyncio.sleep(3)
    FINISHED.append(ctx.run_id)
    return {"slow": True}


each = create_workflow("each").foreach(item, concurrency=2).commit()
each_ask = create_workflow("each-ask").foreach(item_ask, concurrency=2).commit()
approval = create_workflow("approval").then(ask).commit()
napper = create_workflow("napper").sleep(30).then(quick).commit()
nap_beside = create_workflow("nap-beside").parallel([napper, clone_step(quick, id="beside")]).commit()
quick_alone = create_workflow("quick-alone").then(clone_step(quick, id="alone")).commit()
timed_inner = create_workflow("timed-inner", timeout=0.5).then(ask).commit()
woken = create_workflow("woken").parallel([timed_inner], allow_failure=True).then(slow).commit()

WORKFLOWS = [each, each_ask, approval, nap_beside, quick_alone, woken]


@pytest.fixture
async def store(databases: Databases, tmp_path: Path) -> AsyncIterator[Store]:
    opened = open_store(await databases.url_for(tmp_path / "runs.db"))
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def until(engine: Engine, run_id: str, check: Callable[[Run], bool], limit: float = 10) -> Run:
    async with asyncio.timeout(limit):
        while not check(run := await engine.get_run(run_id)):
            await asyncio.sleep(0.02)
    return run


def record(run: Run, *path: str) -> Any:
    return next(s for s in run.steps if s.path == path)


def items_of(run: Run, step: str) -> list[StepStatus]:
    return [i.status for i in record(run, step).foreach_items]


def some_item_suspended(run: Run) -> bool:
    return any(i.status is StepStatus.SUSPENDED for s in run.steps for i in s.foreach_items)


CANCELING: contextvars.ContextVar[bool] = contextvars.ContextVar("canceling", default=False)


async def test_a_cancel_that_read_the_run_before_the_claim_loop_woke_it_stops_the_drive(
    store: Store,
) -> None:
    """The Cancel reads the run suspended; before it writes, the claim loop wakes the run (a
    nested workflow's deadline passed) and drives it on. The Cancel must stop that drive, not
    write over it: before, the run read canceled while `slow` ran to its end, running for ever
    in the record."""
    async with Engine(store, WORKFLOWS, claim_interval=0.1) as engine:
        run = await engine.start("woken", run_id="race", wait=True)
        assert run.status is RunStatus.SUSPENDED
        load = engine._load
        held = False

        async def stale_load(*args: Any, **kwargs: Any) -> Run:
            nonlocal held
            read = await load(*args, **kwargs)
            if CANCELING.get() and not held:  # the Cancel's read, held until the drive went on
                held = True
                await until(engine, "race", lambda r: any(s.path == ("slow",) for s in r.steps))
            return read

        engine._load = stale_load  # type: ignore[method-assign]
        CANCELING.set(True)
        canceled = await engine.cancel("race")
        CANCELING.set(False)
        await asyncio.sleep(3.5)  # past the end `slow` would have reached
        final = await engine.get_run("race")
    assert "race" not in FINISHED  # Cancel stops real work
    for read in (canceled, final):
        assert read.status is RunStatus.CANCELED
        assert [s.key for s in read.steps if s.status in UNFINISHED] == []
        # What the drive recorded before it stopped stays: the nested workflow timed out.
        assert record(read, "timed-inner").status is StepStatus.FAILED
        assert record(read, "slow").status is StepStatus.CANCELED


async def test_a_sleep_beside_a_branch_that_ended_leaves_the_run_waiting_and_its_room_free(
    store: Store,
) -> None:
    async with Engine(store, WORKFLOWS, max_active_runs=1) as engine:
        await engine.start("nap-beside", run_id="napping", input_data={})
        run = await until(engine, "napping", lambda r: any(s.key == "beside" for s in r.steps))
        run = await until(engine, "napping", lambda r: r.status is RunStatus.WAITING)
        assert [(s.key, s.status) for s in run.steps] == [
            ("napper", StepStatus.RUNNING),
            ("napper.sleep_1", StepStatus.WAITING),
            ("beside", StepStatus.SUCCESS),
        ]
        waiting, _ = await engine.list_runs(workflow_id="nap-beside", statuses=[RunStatus.WAITING])
        assert [r.run_id for r in waiting] == ["napping"]
        # The one run of room is free: another run goes on at once, not after the 30 s nap.
        await engine.start("quick-alone", run_id="next", input_data={})
        await until(engine, "next", lambda r: r.status is RunStatus.SUCCESS, limit=5)


async def test_a_cancel_of_a_driven_foreach_cancels_its_suspended_items(store: Store) -> None:
    async with Engine(store, WORKFLOWS) as engine:
        await engine.start("each", run_id="driven", input_data=[-1, 5])
        await until(engine, "driven", some_item_suspended)
        canceled = await engine.cancel("driven")
        again = await engine.get_run("driven")
    for read in (canceled, again):
        assert read.status is RunStatus.CANCELED
        assert items_of(read, "item") == [StepStatus.CANCELED, StepStatus.CANCELED]


async def test_a_deadline_that_cuts_a_driven_foreach_cancels_its_suspended_items(store: Store) -> None:
    async with Engine(store, WORKFLOWS, claim_interval=0.1) as engine:
        await engine.start("each", run_id="cut", input_data=[-1, 5], run_timeout=0.5)
        done = await until(engine, "cut", lambda r: r.status is RunStatus.FAILED)
    assert items_of(done, "item") == [StepStatus.CANCELED, StepStatus.CANCELED]


async def test_a_suspended_foreach_past_its_deadline_cancels_its_items(store: Store) -> None:
    async with Engine(store, WORKFLOWS, claim_interval=0.1) as engine:
        run = await engine.start("each-ask", run_id="late", input_data=[1, 2], run_timeout=0.5, wait=True)
        assert run.status is RunStatus.SUSPENDED
        done = await until(engine, "late", lambda r: r.status is RunStatus.FAILED)
    assert record(done, "item-ask").status is StepStatus.CANCELED
    assert items_of(done, "item-ask") == [StepStatus.CANCELED, StepStatus.CANCELED]


async def test_the_log_of_a_canceled_suspended_run_tells_its_steps_end(store: Store) -> None:
    async with Engine(store, WORKFLOWS) as engine:
        run = await engine.start("approval", run_id="asked", wait=True)
        assert run.status is RunStatus.SUSPENDED
        canceled = await engine.cancel("asked")
        assert [s.status for s in canceled.steps] == [StepStatus.CANCELED]
        # What Watch(include_workflow_state) sends with the last event: the state the log builds.
        state = await engine.workflow_state_at("asked", canceled.last_sequence)
        events = await store.read_events("asked", after=0)
    assert state.status is RunStatus.CANCELED
    assert [s.status for s in state.steps] == [StepStatus.CANCELED]
    assert [e.type for e in events][-3:] == [
        EventType.STEP_RESULT,
        EventType.WORKFLOW_CANCELED,
        EventType.WORKFLOW_FINISH,
    ]
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))


async def test_a_cancel_that_fails_after_its_claim_leaves_the_run_free(store: Store) -> None:
    """The Cancel's claim holds nothing once made: if the cancel itself fails (the database went
    away between the two writes), a Resume takes the run at once rather than RUN_CLAIMED until a
    restart (on SQLite a claim's lease never ends)."""
    async with Engine(store, WORKFLOWS) as engine:
        run = await engine.start("approval", run_id="kept", wait=True)
        assert run.status is RunStatus.SUSPENDED

        async def failing(*args: Any, **kwargs: Any) -> Any:
            raise StorageUnavailable("the database went away")

        engine._cancel_idle = failing  # type: ignore[method-assign]
        with pytest.raises(StorageUnavailable):
            await engine.cancel("kept")
        resumed = await asyncio.wait_for(engine.resume("kept", resume_data="yes", wait=True), 5)
    assert resumed.status is RunStatus.SUCCESS
