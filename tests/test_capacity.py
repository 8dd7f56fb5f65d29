"""`--max-active-runs`: one server drives at most that many runs at once, sleeping ones aside.
A Start, Resume or schedule trigger that finds it full is stored (and answered) all the same,
with no owner; the claim loop drives the run once a drive ends. On SQLite and PostgreSQL
through a real server, and through `runservice serve` in both layouts."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest
from clitools import clean_env, runservice
from conftest import Databases, Served, ServingFactory, serving_on
from holding import Count, Hold
from process import serve_argv, server_env, start_server

from runservice.client import Client
from runservice.config import ConfigError, Settings
from runservice.engine import Engine
from runservice.engine.capacity import Capacity
from runservice.errors import RunClaimed, WorkflowDefinitionError
from runservice.model import RunStatus, StepStatus
from runservice.storage import Claim, RunWrite, open_store
from runservice.workflow import StepContext, create_step, create_workflow

pytestmark = pytest.mark.timeout(60)

LIMIT = 2
CLAIM_INTERVAL = 30.0
"""Far longer than any wait here: a run left for want of room is driven as soon as a drive
ends because the ending wakes the claim loop, not because the loop happened to look."""


gate = Hold()
"""Holds `held`'s step; `gate.entered` has the input of every body that started (a resumed
`ask` notes its resume's count, negated)."""


@create_step("hold", input_schema=Count, output_schema=Count)
async def hold(ctx: StepContext) -> Count:
    await gate.enter(ctx.input_data.count)
    return Count(count=ctx.input_data.count)


@create_step("ask", input_schema=Count, output_schema=Count, resume_schema=Count)
async def ask(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        return await ctx.suspend({"question": "how many?"})
    gate.entered.append(-ctx.resume_data.count)
    return Count(count=ctx.resume_data.count)


@create_step("add", input_schema=Count, output_schema=Count)
async def add(ctx: StepContext) -> Count:
    return Count(count=ctx.input_data.count + 1)


first_gate = Hold()
"""Holds `dozer`'s first step, before its sleep."""


@create_step("hold-first", input_schema=Count, output_schema=Count)
async def hold_first(ctx: StepContext) -> Count:
    await first_gate.enter(ctx.input_data.count)
    return Count(count=ctx.input_data.count)


held = create_workflow("held", input_schema=Count, output_schema=Count).then(hold).commit()
dozer = (
    create_workflow("dozer", input_schema=Count, output_schema=Count)
    .then(hold_first)
    .sleep(30)
    .then(add)
    .commit()
)
asking = create_workflow("asking", input_schema=Count, output_schema=Count).then(ask).commit()
sleeper = create_workflow("sleeper", input_schema=Count, output_schema=Count).sleep(30).then(add).commit()
ticked = (
    create_workflow("ticked", input_schema=Count, output_schema=Count)
    .then(hold)
    .schedule("yearly", "0 0 1 1 *", input_data={"count": 99})
    .commit()
)
serial = (
    create_workflow("serial", input_schema=Count, output_schema=Count, max_active_runs=1)
    .then(ask)
    .then(hold)
    .schedule("serial-yearly", "0 0 1 1 *", input_data={"count": 50})
    .commit()
)
napping = {"now": 0, "most": 0}
"""Bodies of `narrow` running now, and the most at once (the engines of a test share it)."""


@create_step("narrow-nap", input_schema=Count, output_schema=Count)
async def narrow_nap(ctx: StepContext) -> Count:
    napping["now"] += 1
    napping["most"] = max(napping["most"], napping["now"])
    try:
        await asyncio.sleep(0.2)
    finally:
        napping["now"] -= 1
    return Count(count=ctx.input_data.count)


narrow = (
    create_workflow("narrow", input_schema=Count, output_schema=Count, max_active_runs=2)
    .then(narrow_nap)
    .commit()
)
napping_after_sleep = (
    create_workflow("napping-after-sleep", input_schema=Count, output_schema=Count, max_active_runs=2)
    .sleep(0.3)
    .then(narrow_nap)
    .commit()
)
woken_gate = Hold()
"""Holds `drowsy`'s and `dreamy`'s step, after their sleeps."""
woken = {"now": 0, "most": 0}
"""Bodies of `woken-work` running now, and the most at once."""


@create_step("woken-work", input_schema=Count, output_schema=Count)
async def woken_work(ctx: StepContext) -> Count:
    woken["now"] += 1
    woken["most"] = max(woken["most"], woken["now"])
    try:
        await woken_gate.enter(ctx.input_data.count)
    finally:
        woken["now"] -= 1
    return Count(count=ctx.input_data.count)


drowsy = (
    create_workflow("drowsy", input_schema=Count, output_schema=Count, max_active_runs=1)
    .sleep(0.3)
    .then(woken_work)
    .commit()
)
dreamy = (
    create_workflow("dreamy", input_schema=Count, output_schema=Count).sleep(0.3).then(woken_work).commit()
)


@create_step("hold-if-many", input_schema=Count, output_schema=Count)
async def hold_if_many(ctx: StepContext) -> Count:
    if ctx.input_data.count >= 10:
        await gate.enter(ctx.input_data.count)
    return Count(count=ctx.input_data.count)


lonely = (
    create_workflow("lonely", input_schema=Count, output_schema=Count, max_active_runs=1)
    .then(hold_if_many)
    .commit()
)
beside = {"now": 0, "most": 0}
"""Bodies of `beside-nap` running now, and the most at once."""


@create_step("beside-nap", input_schema=Count, output_schema=Count)
async def beside_nap(ctx: StepContext) -> Count:
    await asyncio.sleep(0.05)  # the sibling's sleep begins first (or, listed second, after it)
    beside["now"] += 1
    beside["most"] = max(beside["most"], beside["now"])
    try:
        await asyncio.sleep(0.3)
    finally:
        beside["now"] -= 1
    return Count(count=ctx.input_data.count)


short_sleep = create_workflow("short-sleep", input_schema=Count, output_schema=Count).sleep(0.1).commit()
sleep_then_body = (
    create_workflow("sleep-beside-body", input_schema=Count, max_active_runs=1)
    .parallel([short_sleep, beside_nap])
    .commit()
)
body_then_sleep = (
    create_workflow("body-beside-sleep", input_schema=Count, max_active_runs=1)
    .parallel([beside_nap, short_sleep])
    .commit()
)

each: dict[int, asyncio.Event] = {}
"""Lets `one-by-one`'s body of each count go (a test sets the event of that count)."""


@create_step("hold-each", input_schema=Count, output_schema=Count)
async def hold_each(ctx: StepContext) -> Count:
    gate.entered.append(ctx.input_data.count)
    await each.setdefault(ctx.input_data.count, asyncio.Event()).wait()
    return Count(count=ctx.input_data.count)


one_by_one = create_workflow("one-by-one", input_schema=Count, output_schema=Count).then(hold_each).commit()
SHARED_SLEEP = 2.0
"""Seconds `shared-sleepy` version 1 sleeps: ample for the test to fill the bound meanwhile."""
sleepy_here = (
    create_workflow("shared-sleepy", input_schema=Count, version="1", max_active_runs=1)
    .sleep(SHARED_SLEEP)
    .then(hold_each)
    .commit()
)
"""A bounded workflow's run that sleeps, served by one replica..."""
starting_there = (
    create_workflow("shared-sleepy", input_schema=Count, version="2", max_active_runs=1)
    .then(hold_each)
    .commit()
)
"""... and its runs that do not, served by the other only: each replica's runs stay its own."""

FLOWS = [
    held,
    asking,
    sleeper,
    ticked,
    dozer,
    serial,
    narrow,
    napping_after_sleep,
    drowsy,
    dreamy,
    lonely,
    sleep_then_body,
    body_then_sleep,
]


@pytest.fixture(autouse=True)
def fresh_gate() -> None:
    gate.reset()
    first_gate.reset()
    woken_gate.reset()
    woken.update(now=0, most=0)
    beside.update(now=0, most=0)


async def until(check: Any, within: float = 10.0) -> None:
    bound = time.monotonic() + within
    while not await check():
        assert time.monotonic() < bound, "not within the bound"
        await asyncio.sleep(0.02)


async def status(served: Served, run_id: str) -> RunStatus:
    return (await served.engine.get_run(run_id)).status


async def test_a_full_server_stores_new_runs_and_drives_them_when_room_is_made(
    serving: ServingFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="runservice.engine.engine")
    async with serving(
        tmp_path / "runs.db", workflows=FLOWS, max_active_runs=LIMIT, claim_interval=CLAIM_INTERVAL
    ) as served:
        engine = served.engine
        parked = await engine.start("asking", input_data={"count": 1}, wait=True)
        assert parked.status is RunStatus.SUSPENDED
        # Sleeping runs keep their drives but take no room.
        sleepers = [await engine.start("sleeper", input_data={"count": n}) for n in range(3)]
        for run in sleepers:
            await until(lambda run=run: _is(served, run.run_id, RunStatus.WAITING))
        first = await engine.start("held", input_data={"count": 1})
        second = await engine.start("held", input_data={"count": 2})
        await until(lambda: _true(len(gate.entered) == 2))
        # Full: a Start, a Resume and a schedule's trigger are committed and answered, not driven.
        third = await engine.start("held", input_data={"count": 3})
        assert third.status is RunStatus.RUNNING
        resumed = await engine.resume(parked.run_id, resume_data={"count": 7})
        assert resumed.status is RunStatus.RUNNING
        triggered = await engine.schedules.trigger("yearly")
        assert triggered.run is not None and triggered.run.status is RunStatus.RUNNING
        waiting = asyncio.create_task(engine.start("held", input_data={"count": 4}, wait=True))
        await asyncio.sleep(0.5)
        assert sorted(gate.entered) == [1, 2] and not waiting.done()
        assert await served.store.count_unowned() == 4  # what runservice_runs_unowned shows
        assert "new and resumed runs wait for the claim loop" in caplog.text
        # Room is made: everything left goes on, at most LIMIT at a time, long before the
        # claim loop's own next look.
        gate.release()
        done = await asyncio.wait_for(waiting, 10)
        assert done.status is RunStatus.SUCCESS and done.result == {"count": 4}
        for run_id in (first.run_id, second.run_id, third.run_id, parked.run_id, triggered.run.run_id):
            await until(lambda run_id=run_id: _is(served, run_id, RunStatus.SUCCESS))
        assert sorted(gate.entered) == [-7, 1, 2, 3, 4, 99]
        assert await served.store.count_unowned() == 0
        # A run that waited for room is not logged as a crash's recovery.
        assert f"run {third.run_id}: starting from its beginning" in caplog.text
        assert f"run {third.run_id}: re-driving" not in caplog.text
        for run in sleepers:
            assert await status(served, run.run_id) is RunStatus.WAITING


async def test_waiting_runs_are_claimed_in_the_order_they_were_left_waiting(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """A Resume of an older run, left waiting for room after a Start was, goes after that
    Start: claims go in the order runs were left waiting (`queued_at`), not by creation (an
    audit: a stream of Resumes of older runs kept a waiting Start waiting for as long as it lasted)."""
    async with serving(
        tmp_path / "runs.db", workflows=FLOWS, max_active_runs=1, claim_interval=CLAIM_INTERVAL
    ) as served:
        engine = served.engine
        parked = await engine.start("asking", input_data={"count": 1}, wait=True)  # the older run
        assert parked.status is RunStatus.SUSPENDED
        busy = await engine.start("held", input_data={"count": 1})
        await until(lambda: _true(gate.entered == [1]))
        queued = await engine.start("held", input_data={"count": 2})  # full: left waiting first
        await asyncio.sleep(0.01)
        resumed = await engine.resume(parked.run_id, resume_data={"count": 7})  # then this one
        assert queued.status is resumed.status is RunStatus.RUNNING
        assert await served.store.count_unowned() == 2
        gate.release()  # room for one at a time: the Start, then the Resume
        for run_id in (busy.run_id, queued.run_id, parked.run_id):
            await until(lambda run_id=run_id: _is(served, run_id, RunStatus.SUCCESS))
        assert gate.entered == [1, 2, -7]


async def test_a_run_that_begins_to_sleep_makes_room_at_once(serving: ServingFactory, tmp_path: Path) -> None:
    """A drive that begins a sleep takes no room from then on: the claim loop is woken for a
    run that waits, as when a drive ends, not left until its next look."""
    async with serving(
        tmp_path / "runs.db", workflows=FLOWS, max_active_runs=1, claim_interval=CLAIM_INTERVAL
    ) as served:
        engine = served.engine
        dozing = await engine.start("dozer", input_data={"count": 1})
        await until(lambda: _true(first_gate.entered == [1]))
        queued = await engine.start("held", input_data={"count": 2})  # full: left to the claim loop
        first_gate.release()  # the dozer's step ends and it sleeps 30 s: room for one
        await until(lambda: _true(gate.entered == [2]), within=5.0)  # long before the loop's next look
        assert await status(served, dozing.run_id) is RunStatus.WAITING
        gate.release()
        await until(lambda: _is(served, queued.run_id, RunStatus.SUCCESS))


@pytest.mark.parametrize("bound", ["workflow", "server"])
async def test_runs_whose_sleep_ends_wait_for_room(
    serving: ServingFactory, tmp_path: Path, bound: str
) -> None:
    """A sleeping run takes no room, but one whose sleep ended does: past the bound (the
    workflow's own, or the server's --max-active-runs) it stays `waiting` until a drive ends,
    then goes on, one at a time, in the order they woke. A cancel stops one that waits at once."""
    workflow = "drowsy" if bound == "workflow" else "dreamy"
    async with serving(
        tmp_path / "runs.db",
        workflows=FLOWS,
        max_active_runs=1 if bound == "server" else 0,
        claim_interval=CLAIM_INTERVAL,
    ) as served:
        engine = served.engine
        runs = [await engine.start(workflow, input_data={"count": n}) for n in range(4)]
        await until(lambda: _true(len(woken_gate.entered) == 1))
        await asyncio.sleep(0.6)  # every sleep has ended by now
        assert len(woken_gate.entered) == 1 and woken["most"] == 1
        statuses = {run.run_id: await status(served, run.run_id) for run in runs}
        assert sorted(statuses.values()) == [RunStatus.RUNNING, *[RunStatus.WAITING] * 3]
        waiting = [run_id for run_id, found in statuses.items() if found is RunStatus.WAITING]
        canceled = await asyncio.wait_for(engine.cancel(waiting[0]), 5)
        assert canceled.status is RunStatus.CANCELED
        assert woken["most"] == 1
        woken_gate.release()
        for run_id in statuses:
            if run_id != waiting[0]:
                await until(lambda run_id=run_id: _is(served, run_id, RunStatus.SUCCESS))
        assert len(woken_gate.entered) == 3 and woken["most"] == 1


async def test_a_schedule_tick_waits_behind_runs_waiting_for_room(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """Room a drive just left goes to the runs already waiting, oldest first, not to a tick
    that fires before the woken claim loop took them (as for Start and Resume)."""
    async with serving(
        tmp_path / "runs.db", workflows=FLOWS, max_active_runs=1, claim_interval=CLAIM_INTERVAL
    ) as served:
        engine = served.engine
        await engine.start("held", input_data={"count": 1})
        await until(lambda: _true(gate.entered == [1]))
        queued = await engine.start("held", input_data={"count": 2})  # full: left to the claim loop
        # The moment between a drive's end and the woken claim loop's claim, held open.
        await engine._keeper.stop_claiming()
        gate.release()
        await until(lambda: _true(engine._capacity.room() == 1))  # the first drive has ended
        triggered = await engine.schedules.trigger("yearly")
        assert triggered.run is not None and triggered.run.status is RunStatus.RUNNING
        assert await served.store.count_unowned() == 2 and gate.entered == [1]
        # The claim loop's turn: the oldest first, then the tick's run once there is room.
        for run_id in (queued.run_id, triggered.run.run_id):
            # Once the drive before has ended: its run reads `success` a moment before.
            await until(lambda: _true(engine._capacity.room() == 1))
            await engine._keeper.claim_due()
            await until(lambda run_id=run_id: _is(served, run_id, RunStatus.SUCCESS))
        assert gate.entered == [1, 2, 99]


async def test_a_workflows_own_bound_holds_back_its_runs_only(
    serving: ServingFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`max_active_runs=1` on a workflow: while one of its runs is driven, its other runs
    started, resumed or ticked are committed and answered but wait for the claim loop,
    oldest first, each as soon as the one before ends; other workflows' runs go on."""
    async with serving(tmp_path / "runs.db", workflows=FLOWS, claim_interval=CLAIM_INTERVAL) as served:
        async with Client(served.address, timeout=10) as client:  # GetWorkflow tells callers the bound
            assert (await client.get_workflow("serial").details()).max_active_runs == 1
            assert (await client.get_workflow("held").details()).max_active_runs is None
        engine = served.engine
        first = await engine.start("serial", input_data={"count": 1}, wait=True)
        second = await engine.start("serial", input_data={"count": 2}, wait=True)
        assert first.status is second.status is RunStatus.SUSPENDED  # suspended runs take no room
        await engine.resume(first.run_id, resume_data={"count": 10})
        await until(lambda: _true(gate.entered == [-10, 10]))
        # Full: a Resume, a Start and a tick of it are committed, answered, and left.
        resumed = await engine.resume(second.run_id, resume_data={"count": 20})
        third = await engine.start("serial", input_data={"count": 3})
        ticked = await engine.schedules.trigger("serial-yearly")
        assert ticked.run is not None
        assert resumed.status is third.status is ticked.run.status is RunStatus.RUNNING
        other = await engine.start("held", input_data={"count": 5})  # another workflow goes on
        await until(lambda: _true(gate.entered == [-10, 10, 5]))
        assert await served.store.count_unowned() == 3
        assert "driving 1 runs of workflow 'serial' (its max_active_runs" in caplog.text
        gate.release()
        for run_id, expected in (
            (first.run_id, RunStatus.SUCCESS),
            (other.run_id, RunStatus.SUCCESS),
            (second.run_id, RunStatus.SUCCESS),
            (third.run_id, RunStatus.SUSPENDED),
            (ticked.run.run_id, RunStatus.SUSPENDED),
        ):
            await until(lambda run_id=run_id, expected=expected: _is(served, run_id, expected))
        assert gate.entered == [-10, 10, 5, -20, 20]
        assert await served.store.count_unowned() == 0


@pytest.mark.parametrize("bound", ["workflow", "server"])
async def test_a_deadline_ends_a_run_waiting_for_room_whatever_the_room(
    serving: ServingFactory, tmp_path: Path, bound: str
) -> None:
    """Full (the server's --max-active-runs, or the workflow's own bound, held by a run whose
    body waits), a run left waiting for room past its deadline is failed with RunTimeoutError
    soon after it, no body of it run, and so is a suspended run: not once the holder ends. The
    claim loop, which looks only every 30 s here, is woken by the waiting run's deadline."""
    workflow, suspending = ("serial", "serial") if bound == "workflow" else ("held", "asking")
    async with serving(
        tmp_path / "runs.db",
        workflows=FLOWS,
        max_active_runs=1 if bound == "server" else 0,
        claim_interval=CLAIM_INTERVAL,
    ) as served:
        engine = served.engine
        # Its deadline passes before the waiting runs' do: their wake-up finds it past too.
        parked = await engine.start(suspending, input_data={"count": 2}, wait=True, run_timeout=0.3)
        assert parked.status is RunStatus.SUSPENDED  # takes no room
        if bound == "workflow":
            hog = await engine.start(workflow, input_data={"count": 1}, wait=True)
            await engine.resume(hog.run_id, resume_data={"count": 10})
            holding = [-10, 10]
        else:
            hog = await engine.start(workflow, input_data={"count": 10})
            holding = [10]
        await until(lambda: _true(gate.entered == holding))
        left = await engine.start(workflow, input_data={"count": 3}, run_timeout=0.5)
        assert left.status is RunStatus.RUNNING  # full: committed with no owner
        began = time.monotonic()
        waiter = asyncio.create_task(
            engine.start(workflow, input_data={"count": 4}, wait=True, run_timeout=0.5)
        )
        answered = await asyncio.wait_for(waiter, 5)
        assert time.monotonic() - began < 3.0
        assert answered.status is RunStatus.FAILED
        assert answered.error is not None and answered.error.name == "RunTimeoutError"
        for run_id in (left.run_id, parked.run_id):
            await until(lambda run_id=run_id: _is(served, run_id, RunStatus.FAILED), within=5.0)
            ended = await engine.get_run(run_id)
            assert ended.error is not None and ended.error.name == "RunTimeoutError"
            assert all(step.status is StepStatus.CANCELED for step in ended.steps)
        # The suspended step is over with its run, as a drive's end leaves it.
        assert [s.status for s in (await engine.get_run(parked.run_id)).steps] == [StepStatus.CANCELED]
        # No body of theirs ran, and the holder holds the room still.
        assert gate.entered == holding
        assert await status(served, hog.run_id) is RunStatus.RUNNING
        assert await served.store.count_unowned() == 0
        gate.release()
        await until(lambda: _is(served, hog.run_id, RunStatus.SUCCESS))
        assert gate.entered == holding


async def test_a_deadline_past_before_its_run_is_left_waiting_ends_it_at_once(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """A run whose deadline passes while its commit is made, on a full server whose claim loop
    looked for overdue runs a moment before (for the run left before it) and looks only every
    30 s: it is ended at once. Before, its deadline, past when the claim loop was told of it,
    was dropped unseen, and the run was answered at the next look (a review)."""
    async with serving(
        tmp_path / "runs.db", workflows=FLOWS, max_active_runs=1, claim_interval=CLAIM_INTERVAL
    ) as served:
        engine = served.engine
        hog = await engine.start("held", input_data={"count": 10})
        await until(lambda: _true(gate.entered == [10]))
        first = await engine.start("held", input_data={"count": 3}, run_timeout=60)
        assert first.status is RunStatus.RUNNING  # left waiting: the claim loop looks at once
        await asyncio.sleep(0.2)
        began = time.monotonic()
        late = await asyncio.wait_for(
            engine.start("held", input_data={"count": 4}, wait=True, run_timeout=0.001), 20
        )
        assert time.monotonic() - began < CLAIM_INTERVAL / 3
        assert late.status is RunStatus.FAILED
        assert late.error is not None and late.error.name == "RunTimeoutError"
        assert gate.entered == [10] and await status(served, first.run_id) is RunStatus.RUNNING
        gate.release()
        await until(lambda: _is(served, first.run_id, RunStatus.SUCCESS))
        assert await status(served, hog.run_id) is RunStatus.SUCCESS


@pytest.mark.parametrize("ending", ["cancel", "deadline"])
async def test_a_time_travels_resume_data_goes_when_a_run_waiting_for_room_is_ended(
    serving: ServingFactory, tmp_path: Path, ending: str
) -> None:
    """A time travel with resume data left waiting for room on a full server, then canceled or
    ended at its deadline by the claim loop, no drive of it made: the run keeps no resume data,
    as a drive's end keeps none (it was for that execution alone, and it held copies of the
    step's suspend payload)."""
    # The claim loop looks for runs past their deadline once an interval: often, for the second.
    interval = CLAIM_INTERVAL if ending == "cancel" else 0.2
    async with serving(
        tmp_path / "runs.db", workflows=FLOWS, max_active_runs=1, claim_interval=interval
    ) as served:
        engine = served.engine
        parked = await engine.start("asking", input_data={"count": 1}, wait=True)
        assert parked.status is RunStatus.SUSPENDED
        hog = await engine.start("held", input_data={"count": 10})
        await until(lambda: _true(gate.entered == [10]))
        travelled = await engine.time_travel(parked.run_id, step=["ask"], resume_data={"count": 5})
        assert travelled.status is RunStatus.RUNNING  # full: left to the claim loop
        stored = await engine.get_run(parked.run_id)
        assert stored.travel is not None and stored.travel.resume_data == {"count": 5}
        if ending == "cancel":
            await engine.cancel(parked.run_id)
        else:
            await served.store.write(RunWrite(parked.run_id, patch={"deadline": time.time()}))
            await until(lambda: _is(served, parked.run_id, RunStatus.FAILED), within=10.0)
        ended = await engine.get_run(parked.run_id)
        assert ended.status in (RunStatus.CANCELED, RunStatus.FAILED)
        assert ended.travel is not None and ended.travel.count == 1
        assert (ended.travel.resume_data, ended.travel.suspend_payload) == (None, None)
        assert gate.entered == [10]  # no body of it ran
        gate.release()
        await until(lambda: _is(served, hog.run_id, RunStatus.SUCCESS))


@pytest.mark.parametrize("workflow_id", ["sleep-beside-body", "body-beside-sleep"])
async def test_a_sleep_beside_a_running_body_keeps_the_runs_room(
    serving: ServingFactory, tmp_path: Path, workflow_id: str
) -> None:
    """A parallel branch's sleep marked the run `waiting` (taking no room) while a sibling's
    body ran, so the next run of a workflow bounded to one started its body beside it."""
    async with serving(tmp_path / "runs.db", workflows=FLOWS, claim_interval=0.05) as served:
        runs = [await served.engine.start(workflow_id, input_data={"count": n}) for n in range(3)]
        for run in runs:
            await until(lambda run=run: _is(served, run.run_id, RunStatus.SUCCESS))
    assert beside["most"] == 1


async def test_an_operators_time_travel_fork_and_restart_wait_for_room_too(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """A workflow's bound holds for the runs an operator starts again: a TimeTravel, a ForkRun
    and a Restart of a run of a full workflow are committed and answered, and wait for the
    claim loop as a Start does (they were driven at once, past the bound)."""
    async with serving(tmp_path / "runs.db", workflows=FLOWS, claim_interval=CLAIM_INTERVAL) as served:
        engine = served.engine
        done = await engine.start("lonely", input_data={"count": 1}, wait=True)
        source = await engine.start("lonely", input_data={"count": 2}, wait=True)
        assert done.status is source.status is RunStatus.SUCCESS
        busy = await engine.start("lonely", input_data={"count": 10})
        await until(lambda: _true(gate.entered == [10]))
        left = await engine.start("lonely", input_data={"count": 40})  # full: stored, no owner
        travelled = await engine.time_travel(done.run_id, step=["hold-if-many"], input_data={"count": 20})
        forked = await engine.fork(source.run_id, step=["hold-if-many"], input_data={"count": 30})
        restarted = await engine.restart(left.run_id)
        assert travelled.status is forked.status is restarted.status is RunStatus.RUNNING
        # With `wait`, answered once the run settles, as a waiting Start is (an audit: it was
        # answered at once, `running`, the run not yet begun).
        waiting = asyncio.create_task(engine.restart(left.run_id, wait=True))
        await asyncio.sleep(0.3)
        assert gate.entered == [10]  # none of them was driven past the bound
        assert not waiting.done()
        assert await served.store.count_unowned() == 3
        gate.release()
        for run in (busy, left, travelled, forked):
            await until(lambda run_id=run.run_id: _is(served, run_id, RunStatus.SUCCESS))
        assert sorted(gate.entered) == [10, 20, 30, 40]
        assert (await asyncio.wait_for(waiting, 10)).status is RunStatus.SUCCESS
        assert (await engine.get_run(travelled.run_id)).result == {"count": 20}
        assert (await engine.get_run(forked.run_id)).result == {"count": 30}


async def test_room_an_admission_gives_back_unused_goes_to_the_runs_waiting_at_once(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """A Resume holds its room while another drive holds the run, and gives up after about 5 s
    (RunClaimed): the room it gives back goes to a Start left waiting meanwhile at once. It was
    left until the claim loop's next look, here 300 s later (audit S1)."""
    async with serving(
        tmp_path / "runs.db", workflows=FLOWS, max_active_runs=1, claim_interval=300.0
    ) as served:
        engine = served.engine
        parked = await engine.start("asking", input_data={"count": 1}, wait=True)
        assert parked.status is RunStatus.SUSPENDED
        # Another replica's claim loop holds the run (it took it for a deadline, say).
        taken = await served.store.write(RunWrite(parked.run_id, claim=Claim("elsewhere", 60.0)))
        assert taken.applied
        resuming = asyncio.create_task(engine.resume(parked.run_id, resume_data={"count": 7}))
        await until(lambda: _true(engine._capacity.room() == 0))  # the Resume holds the room
        queued = await engine.start("held", input_data={"count": 2})  # full: left waiting
        assert queued.status is RunStatus.RUNNING and await served.store.count_unowned() == 1
        with pytest.raises(RunClaimed):
            await asyncio.wait_for(resuming, 30)
        await until(lambda: _true(gate.entered == [2]), within=20.0)
        gate.release()
        await until(lambda: _is(served, queued.run_id, RunStatus.SUCCESS))


async def test_a_full_replica_leaves_runs_to_one_with_room(pg_databases: Databases, tmp_path: Path) -> None:
    """On PostgreSQL the runs a full replica leaves are driven by another replica with room,
    while the full one still drives what it has."""
    url = await pg_databases.url_for(tmp_path / "runs.db")
    async with (
        serving_on(url, workflows=FLOWS, max_active_runs=1, claim_interval=CLAIM_INTERVAL) as full,
        serving_on(url, workflows=FLOWS, max_active_runs=10) as roomy,
    ):
        runs = [await full.engine.start("held", input_data={"count": n}) for n in range(1, 4)]
        # Three bodies at once, though the replica that took the starts drives one at a time:
        # the other replica drives the two it left.
        await until(lambda: _true(len(gate.entered) == 3))
        assert sorted(gate.entered) == [1, 2, 3]
        gate.release()
        for run in runs:
            await until(lambda run=run: _is(roomy, run.run_id, RunStatus.SUCCESS))


async def test_replicas_share_a_workflows_bound(
    pg_databases: Databases, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """On PostgreSQL a workflow's bound holds for the replicas together: eight runs of a
    workflow bounded to two, started on two replicas at once, have at most two bodies
    running at any moment, and each run ending lets the next in, whichever replica started
    it, long before a claim loop would have looked (its interval is 30 s)."""
    napping.update(now=0, most=0)
    url = await pg_databases.url_for(tmp_path / "runs.db")
    async with (
        serving_on(url, workflows=FLOWS, claim_interval=CLAIM_INTERVAL) as one,
        serving_on(url, workflows=FLOWS, claim_interval=CLAIM_INTERVAL) as two,
    ):
        began = time.monotonic()
        runs = await asyncio.gather(
            *(
                (one if n % 2 else two).engine.start("narrow", input_data={"count": n}, wait=True)
                for n in range(8)
            )
        )
        assert [run.result for run in runs] == [{"count": n} for n in range(8)]
        assert napping["most"] == 2
        assert time.monotonic() - began < 10
        assert await one.store.count_unowned() == 0
    assert "driving 2 runs of workflow 'narrow' (its max_active_runs, with the servers sharing" in caplog.text


async def test_replicas_share_a_workflows_bound_with_runs_whose_sleep_ends(
    pg_databases: Databases, tmp_path: Path
) -> None:
    """On PostgreSQL a run of a bounded workflow that wakes from a sleep counts itself in
    under the workflow's lock: eight runs that all sleep at once (sleeping runs take no room,
    so every one is claimed) and all wake together have at most two bodies running at any
    moment across two replicas, and every one ends (a replica's sleepers that find no room
    look again when its own drives end, or at its next claim pass)."""
    napping.update(now=0, most=0)
    url = await pg_databases.url_for(tmp_path / "runs.db")
    async with (
        serving_on(url, workflows=FLOWS, claim_interval=1.0) as one,
        serving_on(url, workflows=FLOWS, claim_interval=1.0) as two,
    ):
        runs = await asyncio.gather(
            *(
                (one if n % 2 else two).engine.start(
                    "napping-after-sleep", input_data={"count": n}, wait=True
                )
                for n in range(8)
            )
        )
        assert [run.result for run in runs] == [{"count": n} for n in range(8)]
        assert napping["most"] == 2
        assert await one.store.count_unowned() == 0


async def test_a_run_whose_sleep_ended_goes_before_the_runs_another_replica_would_start(
    pg_databases: Databases, tmp_path: Path
) -> None:
    """On PostgreSQL with a bound the replicas share, a run whose sleep ended while the bound was
    taken goes on next when room is made, wherever: before the runs waiting to start that another
    replica would claim at once. That replica's claims leave it the room and tell its replica, whose
    claim loop looks only every 30 s here (audit D3: the other replica's Starts went first, one
    after another, for as long as they came)."""
    each.clear()
    url = await pg_databases.url_for(tmp_path / "runs.db")
    async with (
        serving_on(url, workflows=[sleepy_here], claim_interval=CLAIM_INTERVAL) as one,
        serving_on(url, workflows=[starting_there], claim_interval=0.5) as two,
    ):
        sleeper_run = await one.engine.start("shared-sleepy", input_data={"count": 0})
        await until(lambda: _is(one, sleeper_run.run_id, RunStatus.WAITING))  # asleep: no room taken
        runs = [await two.engine.start("shared-sleepy", input_data={"count": n}) for n in (1, 2, 3)]
        await until(lambda: _true(bool(gate.entered)))
        assert gate.entered == [1], "the sleep ended before the first run was claimed (a slow machine?)"
        # Its sleep ends while the first run holds the bound: it waits for room.
        await until(lambda: _true(bool(one.engine._keeper._sleepers)), within=SHARED_SLEEP + 10)
        each.setdefault(1, asyncio.Event()).set()  # room is made on the other replica
        await until(lambda: _true(len(gate.entered) == 2))
        assert gate.entered == [1, 0]
        for count in (0, 2, 3):
            each.setdefault(count, asyncio.Event()).set()
        for run in (sleeper_run, *runs):
            await until(lambda run_id=run.run_id: _is(one, run_id, RunStatus.SUCCESS))
        assert gate.entered == [1, 0, 2, 3]


async def test_a_woken_run_canceled_while_the_bounds_room_is_counted_for_it_is_forgotten(
    pg_databases: Databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A woken run waiting for a shared bound's room, canceled while its claim loop counts that
    room for it, is forgotten. Before, the loop took it for marked once the count ended, after
    the Cancel had forgotten it, and kept it for good: each `room` NOTIFY of its workflow woke
    the loop for it (a review). The count is made slow around the real one."""
    each.clear()
    url = await pg_databases.url_for(tmp_path / "runs.db")
    async with (
        serving_on(url, workflows=[sleepy_here], claim_interval=CLAIM_INTERVAL) as one,
        serving_on(url, workflows=[starting_there], claim_interval=0.5) as two,
    ):
        sleeper_run = await one.engine.start("shared-sleepy", input_data={"count": 0})
        await until(lambda: _is(one, sleeper_run.run_id, RunStatus.WAITING))
        first = await two.engine.start("shared-sleepy", input_data={"count": 1})
        await until(lambda: _true(gate.entered == [1]))
        keeper = one.engine._keeper
        # Refused and waiting (a sleeper), marked: its first count is over.
        await until(lambda: _true(bool(keeper._sleepers) and bool(keeper._marked)), within=SHARED_SLEEP + 10)
        counting = asyncio.Event()
        wake_bounded = one.store.wake_bounded

        async def slow(*args: Any, **kwargs: Any) -> bool:
            counting.set()
            await asyncio.sleep(1.0)
            return await wake_bounded(*args, **kwargs)

        monkeypatch.setattr(one.store, "wake_bounded", slow)
        keeper.wake()
        await asyncio.wait_for(counting.wait(), 10)
        await one.engine.cancel(sleeper_run.run_id)
        await asyncio.sleep(1.5)  # the count ends after the Cancel
        assert not keeper._marked and not keeper._sleepers
        monkeypatch.setattr(one.store, "wake_bounded", wake_bounded)
        each.setdefault(1, asyncio.Event()).set()
        await until(lambda: _is(two, first.run_id, RunStatus.SUCCESS))


async def test_a_woken_run_its_replica_is_too_full_to_drive_holds_no_room_of_a_shared_bound(
    pg_databases: Databases, tmp_path: Path
) -> None:
    """A run whose sleep ended on a replica full of other runs (--max-active-runs) holds none of
    its workflow's room meanwhile: the other replicas' runs of the workflow go on. Once its replica
    has room, it holds that and waits for the workflow's, which it gets before the runs waiting to
    start. Marked meanwhile, it holds none of its replica's room (a review: it held one, though
    nothing else of it runs)."""
    each.clear()
    url = await pg_databases.url_for(tmp_path / "runs.db")
    async with (
        serving_on(
            url, workflows=[sleepy_here, held], max_active_runs=1, claim_interval=CLAIM_INTERVAL
        ) as one,
        serving_on(url, workflows=[starting_there], claim_interval=0.5) as two,
    ):
        sleeper_run = await one.engine.start("shared-sleepy", input_data={"count": 0})
        await until(lambda: _is(one, sleeper_run.run_id, RunStatus.WAITING))
        blocker = await one.engine.start("held", input_data={"count": 100})  # fills its replica
        runs = [await two.engine.start("shared-sleepy", input_data={"count": n}) for n in (1, 2, 3)]
        await until(lambda: _true(sorted(gate.entered) == [1, 100]))
        await until(lambda: _true(bool(one.engine._keeper._sleepers)), within=SHARED_SLEEP + 10)
        each.setdefault(1, asyncio.Event()).set()
        await until(lambda: _true(gate.entered[2:] == [2]))  # not held for the run that cannot go on
        gate.release()  # its replica has room again: the woken run is marked, and waits for the bound's
        await until(lambda: _is(one, blocker.run_id, RunStatus.SUCCESS))
        await until(lambda: _true(bool(one.engine._keeper._marked)))
        assert one.engine._capacity.room() == 1  # holding none of its replica's meanwhile
        each.setdefault(2, asyncio.Event()).set()
        await until(lambda: _true(len(gate.entered) == 4))
        assert gate.entered[2:] == [2, 0]
        for count in (0, 3):
            each.setdefault(count, asyncio.Event()).set()
        for run in (sleeper_run, *runs):
            await until(lambda run_id=run.run_id: _is(one, run_id, RunStatus.SUCCESS))
        assert gate.entered[2:] == [2, 0, 3]


async def test_a_woken_run_waiting_for_a_shared_bound_leaves_its_replicas_room_to_other_workflows(
    pg_databases: Databases, tmp_path: Path
) -> None:
    """A run whose sleep ended while its workflow's shared bound is taken on another replica holds
    none of its own replica's room while it waits (a review: with --max-active-runs 1, another
    workflow's Start there waited for as long as the bound stayed taken). When the bound has room
    and its replica has none, its mark is cleared, so the room goes to the other replica's runs;
    it goes on once its replica has room again."""
    each.clear()
    url = await pg_databases.url_for(tmp_path / "runs.db")
    async with (
        serving_on(
            url, workflows=[sleepy_here, held], max_active_runs=1, claim_interval=CLAIM_INTERVAL
        ) as one,
        serving_on(url, workflows=[starting_there], claim_interval=0.5) as two,
    ):
        sleeper_run = await one.engine.start("shared-sleepy", input_data={"count": 0})
        await until(lambda: _is(one, sleeper_run.run_id, RunStatus.WAITING))
        first = await two.engine.start("shared-sleepy", input_data={"count": 1})
        await until(lambda: _true(gate.entered == [1]))
        # Its sleep ends while the other replica's run holds the bound: marked, holding nothing here.
        await until(lambda: _true(bool(one.engine._keeper._marked)), within=SHARED_SLEEP + 10)
        other = await one.engine.start("held", input_data={"count": 100})
        await until(lambda: _true(gate.entered == [1, 100]))  # another workflow's run goes on
        second = await two.engine.start("shared-sleepy", input_data={"count": 2})
        each.setdefault(1, asyncio.Event()).set()  # the bound has room; the woken run's replica none
        await until(lambda: _true(gate.entered == [1, 100, 2]))
        assert not one.engine._keeper._marked
        gate.release()  # room on its replica: it waits for the bound's, marked, and goes next
        await until(lambda: _true(bool(one.engine._keeper._marked)))
        each.setdefault(2, asyncio.Event()).set()
        await until(lambda: _true(gate.entered == [1, 100, 2, 0]))
        each.setdefault(0, asyncio.Event()).set()
        for run in (sleeper_run, first, second, other):
            await until(lambda run_id=run.run_id: _is(one, run_id, RunStatus.SUCCESS))


async def test_a_shutdown_gives_up_the_shared_bounds_room_its_woken_runs_hold(
    pg_databases: Databases, tmp_path: Path
) -> None:
    """A replica shutting down clears the marks of its woken runs waiting for a shared bound's
    room, as nothing lets them go on there any more: the other replica's runs of the workflow go
    on during the grace (a review: the workflow stood idle for the whole --grace)."""
    each.clear()
    url = await pg_databases.url_for(tmp_path / "runs.db")
    async with (
        serving_on(url, workflows=[sleepy_here], claim_interval=CLAIM_INTERVAL) as one,
        serving_on(url, workflows=[starting_there], claim_interval=0.5) as two,
    ):
        sleeper_run = await one.engine.start("shared-sleepy", input_data={"count": 0})
        await until(lambda: _is(one, sleeper_run.run_id, RunStatus.WAITING))
        await two.engine.start("shared-sleepy", input_data={"count": 1})
        await until(lambda: _true(gate.entered == [1]))
        await until(lambda: _true(bool(one.engine._keeper._marked)), within=SHARED_SLEEP + 10)
        await two.engine.start("shared-sleepy", input_data={"count": 2})
        shutting = asyncio.ensure_future(one.engine.shutdown(30.0))  # far longer than the test
        try:
            await until(lambda: _true(not one.engine._keeper._marked))
            each.setdefault(1, asyncio.Event()).set()
            await until(lambda: _true(gate.entered == [1, 2]), within=20)
            assert not shutting.done()  # within the grace, its woken run still waiting
        finally:
            each.setdefault(2, asyncio.Event()).set()
            shutting.cancel()
            await asyncio.gather(shutting, return_exceptions=True)


async def test_room_made_on_a_full_replica_is_told_to_the_woken_runs_it_holds(
    pg_databases: Databases, tmp_path: Path
) -> None:
    """A drive of a shared-bound workflow that ends on a replica full of other waiting runs
    tells the woken run waiting for that room, though the replica's claim pass stops for want
    of room before it claims anything of the workflow (a review: the woken run waited for its
    own claim loop, 30 s here, the bound's room idle meanwhile)."""
    each.clear()
    url = await pg_databases.url_for(tmp_path / "runs.db")
    async with (
        serving_on(url, workflows=[sleepy_here], claim_interval=CLAIM_INTERVAL) as one,
        serving_on(
            url, workflows=[starting_there, held], max_active_runs=1, claim_interval=CLAIM_INTERVAL
        ) as two,
    ):
        sleeper_run = await one.engine.start("shared-sleepy", input_data={"count": 0})
        await until(lambda: _is(one, sleeper_run.run_id, RunStatus.WAITING))
        await two.engine.start("shared-sleepy", input_data={"count": 1})
        await until(lambda: _true(gate.entered == [1]))
        waiting = [await two.engine.start("held", input_data={"count": n}) for n in (100, 101)]
        await until(lambda: _true(bool(one.engine._keeper._marked)), within=SHARED_SLEEP + 10)
        each.setdefault(1, asyncio.Event()).set()  # the room goes to `held` on its replica...
        await until(lambda: _true(sorted(gate.entered) == [0, 1, 100]), within=15)  # ...and the bound's
        gate.release()
        each.setdefault(0, asyncio.Event()).set()
        for run in (sleeper_run, *waiting):
            await until(lambda run_id=run.run_id: _is(one, run_id, RunStatus.SUCCESS), within=20)


async def _is(served: Served, run_id: str, expected: RunStatus) -> bool:
    return await status(served, run_id) is expected


async def _true(value: bool) -> bool:
    return value


def test_room_counts_reservations_and_only_busy_drives() -> None:
    drives, busy = [5], [1]
    capacity = Capacity(3, lambda: drives[0], lambda: busy[0])
    assert capacity.room() == 2  # five drives, four of them asleep
    assert capacity.reserve() and capacity.reserve()
    assert capacity.room() == 0 and not capacity.reserve() and capacity.waiting
    capacity.release(True)
    assert capacity.room() == 1
    # While runs wait for room, an admission finding some leaves its run to the claim loop
    # too (it takes the oldest first); the loop clears `waiting` once nothing due is left.
    assert capacity.room() == 1 and not capacity.reserve()
    capacity.waiting = False
    assert capacity.reserve()
    unlimited = Capacity(0, lambda: 10**6, lambda: 10**6)
    assert unlimited.reserve() and unlimited.room() > 10**9


def test_a_workflows_own_bound_holds_back_only_its_runs() -> None:
    drives, busy, busy_in = [0], [0], {"serial": 0}
    capacity = Capacity(
        4, lambda: drives[0], lambda: busy[0], limits={"serial": 2}, busy_in=lambda w: busy_in[w]
    )
    assert capacity.limits == {"serial": 2} and capacity.room_in("other") > 10**9
    assert capacity.reserve("serial") and capacity.reserve("serial")
    assert capacity.room_in("serial") == 0 and capacity.room() == 2
    assert not capacity.reserve("serial") and capacity.waiting_in == {"serial"} and not capacity.waiting
    assert capacity.reserve("other") and capacity.reserve(None)  # the others go on
    for workflow_id in ("serial", "serial", "other", None):
        capacity.release(True, workflow_id)
    # Four drives, two asleep, one of them its: room for one more of it, once the claim
    # loop took what waits.
    drives[0], busy[0], busy_in["serial"] = 4, 2, 1
    assert capacity.room() == 2 and capacity.room_in("serial") == 1 and not capacity.reserve("serial")
    capacity.waiting_in.clear()
    assert capacity.reserve("serial") and capacity.room_in("serial") == 0
    assert capacity.reserve("other") and not capacity.reserve(None) and capacity.waiting  # the server's bound
    capacity.release(True, "serial")
    capacity.release(True, "other")
    assert capacity.room() == 2 and capacity.room_in("serial") == 1
    # Its own bound without a server bound.
    alone = Capacity(0, lambda: 7, lambda: 7, limits={"serial": 1}, busy_in=lambda w: 0)
    assert alone.room() > 10**9 and alone.reserve("serial") and not alone.reserve("serial")
    assert alone.reserve("other")
    for bad in (0, 2**32):  # GetWorkflow carries it as a uint32: a larger one made it fail INTERNAL
        with pytest.raises(
            WorkflowDefinitionError, match="max_active_runs must be an integer from 1 to 4294967295"
        ):
            create_workflow("bad", max_active_runs=bad)


def test_room_given_back_wakes_the_claim_loop_only_for_runs_waiting_for_it() -> None:
    """`release` calls `given_back` when runs wait for the room it makes: the server's, or the
    workflow's own here; not when nothing waits (every admission releases), not while the
    room is still taken, nor for a bound the servers share (counted in the database)."""
    woken: list[int] = []
    busy = [0]
    capacity = Capacity(
        2,
        lambda: busy[0],
        lambda: busy[0],
        limits={"own": 1},
        busy_in=lambda w: 0,
        given_back=lambda: woken.append(1),
    )
    assert capacity.reserve("other") and capacity.reserve("other")
    capacity.release(True, "other")
    capacity.release(True, "other")
    assert woken == []  # nothing waits
    assert capacity.reserve("other") and capacity.reserve("other") and not capacity.reserve("other")
    busy[0] = 1  # one of them launched: its drive holds the room its release gives back
    capacity.release(True, "other")
    assert woken == [] and capacity.waiting
    capacity.release(True, "other")  # the other gave up: room for a run that waits
    assert woken == [1]
    capacity.waiting, busy[0] = False, 0
    assert capacity.reserve("own") and not capacity.reserve("own") and capacity.waiting_in == {"own"}
    assert capacity.reserve("other")
    capacity.release(True, "other")  # not its room
    capacity.release(True, "own")
    assert woken == [1, 1]
    shared = Capacity(
        2, lambda: 0, lambda: 0, limits={"w": 1}, shared=True, given_back=lambda: woken.append(2)
    )
    assert shared.hold("w")
    shared.note_full("w")
    shared.release(True, "w")
    assert woken == [1, 1]


SLOW_FLOWS = """
import asyncio
import logging

from pydantic import BaseModel

from runservice.workflow import StepContext, create_step, create_workflow


class Count(BaseModel):
    count: int


@create_step("nap", input_schema=Count, output_schema=Count)
async def nap(ctx: StepContext) -> Count:
    await asyncio.sleep(0.3)
    return Count(count=ctx.input_data.count + 1)


slow = create_workflow("slow", input_schema=Count, output_schema=Count).then(nap).commit()
lone = create_workflow("lone", input_schema=Count, output_schema=Count, max_active_runs=1).then(nap).commit()
"""


@pytest.mark.timeout(90)
@pytest.mark.parametrize("layout", [(), ("--engine-process",)], ids=["one-process", "engine-process"])
async def test_serve_with_max_active_runs(tmp_path: Path, layout: tuple[str, ...]) -> None:
    """The setting reaches the engine in both layouts: five runs at once on a server that
    drives two at a time all succeed, and the server says it was full; so does a workflow's
    own bound, three of its runs at once taking their turns."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "slow_flows.py").write_text(SLOW_FLOWS)
    server = await start_server(
        serve_argv(
            "--data-dir",
            str(tmp_path / "data"),
            "--workflows",
            "slow_flows",
            "--max-active-runs",
            "2",
            "--replica-name",  # accepted in both layouts (on SQLite it changes nothing)
            "slow-0",
            *layout,
        ),
        env=server_env(PYTHONPATH=str(app)),
    )
    try:
        async with Client(server.address, timeout=30) as client:

            async def one(workflow_id: str, n: int) -> Any:
                return await (await client.get_workflow(workflow_id).create_run()).start_async({"count": n})

            runs = await asyncio.gather(*(one("slow", n) for n in range(5)))
            assert [(run.status, run.result) for run in runs] == [
                (RunStatus.SUCCESS, {"count": n + 1}) for n in range(5)
            ]
            began = time.monotonic()
            runs = await asyncio.gather(*(one("lone", n) for n in range(3)))
            assert [run.result for run in runs] == [{"count": n + 1} for n in range(3)]
            assert time.monotonic() - began >= 0.85  # three naps of 0.3 s, one after another
    finally:
        assert await server.stop() == 0
    assert "driving 2 runs (--max-active-runs)" in server.text
    assert "driving 1 runs of workflow 'lone' (its max_active_runs)" in server.text


async def test_the_configuration_replaces_a_workflows_bound(tmp_path: Path) -> None:
    """An operator's bound replaces the author's (0 lifts it), and only served workflows
    take one; GetWorkflow then reports the bound the server applies."""
    assert Settings.load(workflow_max_active_runs=" serial = 3, held=0,").workflow_limits() == {
        "serial": 3,
        "held": 0,
    }
    for bad, message in (
        ("serial", "is not WORKFLOW=N"),
        ("=2", "is not WORKFLOW=N"),
        ("serial=many", "is not a whole number"),
        ("serial=-1", "must be >= 0"),
        ("serial=1,serial=2", "given twice"),
    ):
        with pytest.raises(ConfigError, match=message):
            Settings.load(workflow_max_active_runs=bad)
    store = open_store(str(tmp_path / "runs.db"))
    await store.open()
    try:
        engine = Engine(store, FLOWS, workflow_limits={"serial": 0, "held": 2})
        assert (engine.max_active_runs("serial"), engine.max_active_runs("held")) == (None, 2)
        with pytest.raises(WorkflowDefinitionError, match="'nope', which is not served"):
            Engine(store, FLOWS, workflow_limits={"nope": 1})
    finally:
        await store.close()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("layout", [(), ("--engine-process",)], ids=["one-process", "engine-process"])
async def test_serve_with_workflow_max_active_runs(tmp_path: Path, layout: tuple[str, ...]) -> None:
    """`--workflow-max-active-runs` reaches the engine in both layouts: `slow` is bounded to
    one run at a time, `lone`'s own bound is lifted; a workflow not served is refused (exit 2)."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "slow_flows.py").write_text(SLOW_FLOWS)
    argv = ("--data-dir", str(tmp_path / "data"), "--workflows", "slow_flows", *layout)
    refused = await runservice(
        "serve", *argv, "--workflow-max-active-runs", "slow=1,gone=2", env=clean_env(PYTHONPATH=str(app))
    )
    assert refused.code == 2 and refused.error_lines == [
        "runservice: error: workflow_max_active_runs: workflow 'gone' is not served (served: lone, slow)"
    ], refused.err
    server = await start_server(
        serve_argv(*argv, "--workflow-max-active-runs", "slow=1,lone=0"), env=server_env(PYTHONPATH=str(app))
    )
    try:
        async with Client(server.address, timeout=30) as client:
            assert (await client.get_workflow("slow").details()).max_active_runs == 1
            assert (await client.get_workflow("lone").details()).max_active_runs is None
            listed = await runservice("workflows", "--target", server.address)
            assert listed.code == 0, listed.err
            assert [re.split(r"\s{2,}", line) for line in listed.out.splitlines()] == [
                ["WORKFLOW", "STEPS", "MAX ACTIVE", "INPUT", "DESCRIPTION"],
                ["lone", "1", "-", "{count: integer}"],
                ["slow", "1", "1", "{count: integer}"],
            ], listed.out

            async def one(workflow_id: str, n: int) -> Any:
                return await (await client.get_workflow(workflow_id).create_run()).start_async({"count": n})

            for workflow_id in ("slow", "lone"):
                began = time.monotonic()
                runs = await asyncio.gather(*(one(workflow_id, n) for n in range(3)))
                assert [run.result for run in runs] == [{"count": n + 1} for n in range(3)]
                if workflow_id == "slow":
                    assert time.monotonic() - began >= 0.85  # three naps of 0.3 s, one after another
    finally:
        assert await server.stop() == 0
    assert "driving 1 runs of workflow 'slow' (its max_active_runs)" in server.text
    assert "workflow 'lone'" not in server.text


async def test_a_bounded_workflows_runs_take_turns_with_the_others_for_the_room(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """On a full server, the run of a workflow with a bound of its own waited behind every
    run of the others, however much older, for good while they kept coming: the claim loop
    gave the room to their group first at every pass (an audit). The groups take turns."""
    async with serving(
        tmp_path / "runs.db", workflows=[held, lonely], max_active_runs=1, claim_interval=CLAIM_INTERVAL
    ) as served:
        engine = served.engine
        busy = await engine.start("held", input_data={"count": 1})
        await until(lambda: _true(gate.entered == [1]))
        oldest = await engine.start("lonely", input_data={"count": 40})  # its own bound has room
        newer = [await engine.start("held", input_data={"count": count}) for count in range(2, 8)]
        gate.release()
        for run in (busy, oldest, *newer):
            await until(lambda run_id=run.run_id: _is(served, run_id, RunStatus.SUCCESS))
    # Within two claims of the first room, not after the six newer runs.
    assert gate.entered.index(40) <= 2, gate.entered


async def test_the_turns_pass_only_with_room_so_new_runs_arriving_do_not_hand_it_back(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """A Start that finds the server full wakes the claim loop for a pass that claims nothing.
    When any pass handed the lead on, a new run arriving after each drive's end handed it back,
    and the bounded workflow's run waited for good again (review). The turn passes with room."""
    each.clear()
    async with serving(
        tmp_path / "runs.db", workflows=[one_by_one, lonely], max_active_runs=1, claim_interval=CLAIM_INTERVAL
    ) as served:
        engine = served.engine
        await engine.start("one-by-one", input_data={"count": 1})
        await until(lambda: _true(gate.entered == [1]))
        oldest = await engine.start("lonely", input_data={"count": 40})  # its body passes the gate
        gate.release()
        for count in range(2, 4):
            await engine.start("one-by-one", input_data={"count": count})
        for new in range(4, 10):  # a drive ends; a new run comes while the next one is driven
            seen = len(gate.entered)
            each.setdefault(gate.entered[-1], asyncio.Event()).set()
            await until(lambda seen=seen: _true(len(gate.entered) > seen))
            await engine.start("one-by-one", input_data={"count": new})
            if 40 in gate.entered:
                break
        await until(lambda: _is(served, oldest.run_id, RunStatus.SUCCESS))
        for event in each.values():
            event.set()
        assert gate.entered.index(40) <= 3, gate.entered
