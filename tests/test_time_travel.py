"""TimeTravel and ForkRun through a real server (both backends): success, failed and
canceled runs, nested paths, refusals, the earlier outcome, Watch and request ids."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

import flows
import grpc
import pytest
from conftest import client_for
from flows import Text, Value, add_one, to_text
from pydantic import BaseModel

from runservice import create_step, create_workflow, errors, wire
from runservice.client import Client, RunHandle, SyncClient
from runservice.client.status import error_from_rpc
from runservice.model import Event, EventType, Execution, Run, RunStatus, StepStatus
from runservice.v1 import run_pb2, run_service_pb2
from runservice.workflow import StepContext

if TYPE_CHECKING:
    from runservice.v1.run_service_pb2_grpc import RunServiceAsyncStub

BODIES: Counter[str] = Counter()
"""`run id:step id` -> how many times the body ran."""


def _ran(ctx: StepContext, name: str) -> None:
    BODIES[f"{ctx.run_id}:{name}"] += 1


@create_step("times-ten", input_schema=Value, output_schema=Value)
async def times_ten(ctx: StepContext) -> Value:
    _ran(ctx, "times-ten")
    return Value(value=ctx.input_data.value * 10)


@create_step("picky", input_schema=Value, output_schema=Value)
async def picky(ctx: StepContext) -> Value:
    """Fails on odd values (no retries)."""
    _ran(ctx, "picky")
    if ctx.input_data.value % 2:
        raise ValueError(f"odd value {ctx.input_data.value}")
    return Value(value=ctx.input_data.value)


@create_step("gate", input_schema=Value, output_schema=Value)
async def gate(ctx: StepContext) -> Value:
    """Slow (until canceled) below 100, instant from 100."""
    _ran(ctx, "gate")
    if ctx.input_data.value < 100:
        await asyncio.sleep(60)
    return Value(value=ctx.input_data.value)


tt_pipeline = create_workflow("tt-pipeline", input_schema=Value, output_schema=Text)
tt_pipeline = tt_pipeline.then(add_one).then(times_ten).then(to_text).commit()
tt_inner = create_workflow("tt-inner", input_schema=Value).then(add_one).then(times_ten).commit()
tt_nested = create_workflow("tt-nested", input_schema=Value).then(add_one).then(tt_inner).then(to_text)
tt_nested = tt_nested.commit()
tt_failing = create_workflow("tt-failing", input_schema=Value).then(add_one).then(picky).then(times_ten)
tt_failing = tt_failing.commit()
tt_gated = create_workflow("tt-gated", input_schema=Value).then(add_one).then(gate).then(times_ten).commit()
tt_nap = create_workflow("tt-nap", input_schema=Value).sleep(60).then(times_ten).commit()

ALLOW = {"times-ten": True}
"""The branch condition of tt-branch (outside the run, so it can change between drives)."""
tt_branch = create_workflow("tt-branch", input_schema=Value).then(add_one)
tt_branch = tt_branch.branch([(lambda ctx: ALLOW["times-ten"], times_ten)]).commit()


@create_step("tt-other", input_schema=Value, output_schema=Value)
async def tt_other(ctx: StepContext) -> Value:
    _ran(ctx, "tt-other")
    return Value(value=ctx.input_data.value + 100)


def _go(ctx: Any) -> bool:
    return bool(ctx.state.get("go"))


def _other(ctx: Any) -> bool:
    return not ctx.state.get("go") or bool(ctx.state.get("both"))


tt_branch_inner = create_workflow("tt-branch-inner", input_schema=Value).then(times_ten).commit()
tt_branch_nested = create_workflow("tt-branch-nested", input_schema=Value)
tt_branch_nested = tt_branch_nested.branch([(_go, tt_branch_inner), (_other, tt_other)]).commit()
tt_branch_pair = create_workflow("tt-branch-pair", input_schema=Value)
tt_branch_pair = tt_branch_pair.branch([(_go, times_ten), (_other, tt_other)]).commit()
"""Branches whose conditions read the run state: a time travel's `initial_state` changes them."""


@create_step("tt-slow-add", input_schema=Value, output_schema=Value)
async def tt_slow_add(ctx: StepContext) -> Value:
    _ran(ctx, "tt-slow-add")
    await asyncio.sleep(0.05)  # the parallel sibling's steps start meanwhile
    return Value(value=ctx.input_data.value + 1)


@create_step("ask-a", input_schema=Value, output_schema=Value)
async def ask_a(ctx: StepContext) -> Value | None:
    _ran(ctx, "ask-a")
    if ctx.resume_data is None:
        await ctx.suspend({"at": ctx.input_data.value})
        return None
    return Value(value=ctx.input_data.value + ctx.resume_data["add"])


ask_b = create_step("ask-b", input_schema=Value, output_schema=Value)(ask_a.execute)
tt_par_a = create_workflow("tt-par-a", input_schema=Value).then(tt_slow_add).then(ask_a).commit()
tt_par_b = create_workflow("tt-par-b", input_schema=Value).then(ask_b).commit()
tt_par_nested = create_workflow("tt-par-nested", input_schema=Value).parallel([tt_par_a, tt_par_b]).commit()
"""`tt-par-a.ask-a` starts after `tt-par-b.ask-b`, inside a nested workflow that started before it."""


class Add(BaseModel):
    add: int


SEEN: defaultdict[str, list[tuple[Any, Any, Any]]] = defaultdict(list)
"""`run id:step id` -> (input value, resume data, suspend data) of each run of its body."""


@create_step("ask", input_schema=Value, output_schema=Value, resume_schema=Add)
async def ask(ctx: StepContext) -> Value | None:
    """Suspends until resumed with a number to add."""
    resumed = None if ctx.resume_data is None else ctx.resume_data.model_dump()
    SEEN[f"{ctx.run_id}:ask"].append((ctx.input_data.value, resumed, ctx.suspend_data))
    if ctx.resume_data is None:
        await ctx.suspend({"at": ctx.input_data.value})
        return None
    return Value(value=ctx.input_data.value + ctx.resume_data.add)


@create_step("note", input_schema=Value, output_schema=Value)
async def note(ctx: StepContext) -> Value:
    """No resume schema: records what it is given."""
    SEEN[f"{ctx.run_id}:note"].append((ctx.input_data.value, ctx.resume_data, ctx.suspend_data))
    return Value(value=ctx.input_data.value)


tt_ask = create_workflow("tt-ask", input_schema=Value).then(add_one).then(ask).then(times_ten).commit()
tt_ask_inner = create_workflow("tt-ask-inner", input_schema=Value).then(add_one).then(ask).commit()
tt_ask_nested = create_workflow("tt-ask-nested", input_schema=Value).then(tt_ask_inner).commit()
tt_ask_each = create_workflow("tt-ask-each", input_schema=list[Value]).foreach(ask, concurrency=2).commit()
tt_ask_flows = create_workflow("tt-ask-flows", input_schema=list[Value]).foreach(tt_ask_inner).commit()
tt_note = create_workflow("tt-note", input_schema=Value).then(note).commit()


@create_step("ask-positive", input_schema=Value, output_schema=Value, resume_schema=Add)
async def ask_positive(ctx: StepContext) -> Value | None:
    """Suspends until resumed with a positive number to add."""
    resumed = None if ctx.resume_data is None else ctx.resume_data.model_dump()
    SEEN[f"{ctx.run_id}:ask-positive"].append((ctx.input_data.value, resumed, ctx.suspend_data))
    if ctx.resume_data is None or ctx.resume_data.add <= 0:
        await ctx.suspend({"at": ctx.input_data.value})
        return None
    return Value(value=ctx.input_data.value + ctx.resume_data.add)


tt_ask_one_by_one = (
    create_workflow("tt-ask-one-by-one", input_schema=list[Value]).foreach(ask_positive).commit()
)

tt_each = create_workflow("tt-each", input_schema=list[Value]).foreach(times_ten, concurrency=2).commit()
tt_loop = create_workflow("tt-loop", input_schema=Value)
tt_loop = tt_loop.dountil(tt_inner, lambda ctx: ctx.input_data["value"] > 1000).commit()

client = client_for(
    [
        tt_pipeline,
        tt_nested,
        tt_failing,
        tt_gated,
        tt_nap,
        tt_branch,
        tt_branch_nested,
        tt_branch_pair,
        tt_par_nested,
        tt_each,
        tt_loop,
        tt_ask,
        tt_ask_nested,
        tt_ask_each,
        tt_ask_flows,
        tt_note,
        tt_ask_one_by_one,
        flows.approval,
        flows.asking_loop,
        flows.branch_then_gate,
        flows.loop_then_gate,
        flows.mark_then_count,
    ]
)


def _step(run: Run, path: str) -> Any:
    return next(s for s in run.steps if ".".join(s.path) == path)


async def _events(client: Client, run_id: str, after: int = 0) -> list[Event]:
    async with asyncio.timeout(10):
        return [event async for event in client.follow(run_id, after)]


async def _until_status(client: Client, workflow: str, run_id: str, status: RunStatus) -> Run:
    async with asyncio.timeout(10):
        while (run := await client.get_workflow(workflow).run_by_id(run_id)).status is not status:
            await asyncio.sleep(0.02)
    return run


async def test_time_travel_takes_no_decision_again_of_a_branch_or_loop_before_its_target(
    client: Client,
) -> None:
    """As Mastra's time travel starts at its target: a branch that chose none and a loop that
    ended before it keep their decisions, whatever the state their conditions read says now
    (the gate set `ready` and `n = 0`, so asked again, `when-ready` would run and the loop
    would count to three again)."""
    for workflow, ran in (("branch-then-gate", {}), ("loop-then-gate", {"count-up": 3})):
        handle = await client.get_workflow(workflow).create_run()
        assert (await handle.start_async(input_data={})).status is RunStatus.SUSPENDED
        assert (await handle.resume_async(resume_data={"ok": True})).status is RunStatus.SUCCESS
        travelled = await handle.time_travel("gate", wait=True)
        assert travelled.status is RunStatus.SUSPENDED, workflow
        assert flows.ran(handle.run_id) == ran, workflow


async def test_a_time_travel_into_a_loop_body_lets_the_iterations_after_it_decide_again(
    client: Client,
) -> None:
    """The branch before the target is passed in the first iteration only: once the target ran,
    the next iterations ask it again (a review: it was skipped in every one of them)."""
    handle = await client.get_workflow("mark-then-count").create_run()
    assert (await handle.start_async(input_data={})).status is RunStatus.SUCCESS
    assert flows.CALLS[f"{handle.run_id}:when-ready"] == 2
    travelled = await handle.time_travel(
        ["mark-then-count-body", "count-up"], {}, initial_state={"n": 0}, wait=True
    )
    assert travelled.status is RunStatus.SUCCESS
    # The first iteration starts at its target (n = 1); the second and third ask the branch.
    assert flows.CALLS[f"{handle.run_id}:when-ready"] == 2 + 2
    assert flows.CALLS[f"{handle.run_id}:count-up"] == 3 + 3


async def test_time_travel_of_a_successful_run_keeps_earlier_steps_reruns_the_rest(client: Client) -> None:
    handle = await client.get_workflow("tt-pipeline").create_run()
    first = await handle.start_async(input_data={"value": 1})
    assert first.result == {"text": "value is 20"}

    again = await handle.time_travel("times-ten", {"value": 7}, wait=True)

    assert again.status is RunStatus.SUCCESS
    assert again.result == {"text": "value is 70"}
    assert [".".join(s.path) for s in again.steps] == ["add-one", "times-ten", "to-text"]
    kept, rerun = _step(again, "add-one"), _step(again, "times-ten")
    assert kept.started_at == _step(first, "add-one").started_at  # the record kept as it was
    assert rerun.payload == {"value": 7} and rerun.output == {"value": 70}
    assert BODIES[f"{handle.run_id}:times-ten"] == 2  # the first run and the time travel
    assert again.travel is not None and again.travel.count == 1 and again.travel.step == ("times-ten",)
    assert again.forked_from is None and again.last_sequence > first.last_sequence


async def test_the_earlier_outcome_stays_readable_in_the_events(client: Client) -> None:
    handle = await client.get_workflow("tt-pipeline").create_run()
    first = await handle.start_async(input_data={"value": 1})
    await handle.time_travel("times-ten", {"value": 4}, wait=True)

    events = await _events(client, handle.run_id)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))  # gap-free across it
    travel = next(e for e in events if e.type is EventType.TIME_TRAVEL)
    assert travel.sequence == first.last_sequence + 1
    assert travel.data["step"] == ["times-ten"]
    assert travel.data["previous"]["status"] == "success"
    assert travel.data["previous"]["result"] == {"text": "value is 20"}
    assert sorted(travel.data["replaced_steps"]) == ["times-ten", "to-text"]
    # The replaced records are still in the log before the time travel.
    earlier = [e for e in events if e.sequence < travel.sequence and e.type is EventType.STEP_RESULT]
    assert [(".".join(e.step_path), e.step.output) for e in earlier if e.step] == [
        ("add-one", {"value": 2}),
        ("times-ten", {"value": 20}),
        ("to-text", {"text": "value is 20"}),
    ]
    after = [e.type for e in events if e.sequence > travel.sequence]
    assert after[0] is EventType.WORKFLOW_START and after[-1] is EventType.WORKFLOW_FINISH
    finishes = [e for e in events if e.type is EventType.WORKFLOW_FINISH]
    assert [f.data for f in finishes] == [{"text": "value is 20"}, {"text": "value is 40"}]


async def test_time_travel_into_a_nested_workflow(client: Client) -> None:
    handle = await client.get_workflow("tt-nested").create_run()
    first = await handle.start_async(input_data={"value": 1})
    assert first.result == {"text": "value is 30"}  # (1 + 1 + 1) * 10

    again = await handle.time_travel("tt-inner.times-ten", {"value": 5}, wait=True)

    assert again.status is RunStatus.SUCCESS
    assert again.result == {"text": "value is 50"}
    assert _step(again, "tt-inner.add-one").started_at == _step(first, "tt-inner.add-one").started_at
    assert _step(again, "tt-inner.times-ten").payload == {"value": 5}
    assert _step(again, "tt-inner").output == {"value": 50}
    assert BODIES[f"{handle.run_id}:times-ten"] == 2
    # A path of ids works as well as the dotted form.
    third = await handle.time_travel(["tt-inner", "times-ten"], {"value": 6}, wait=True)
    assert third.result == {"text": "value is 60"} and third.travel is not None and third.travel.count == 2


async def test_time_travel_into_a_loops_nested_body_takes_the_input_once(client: Client) -> None:
    """The body drops its records at each iteration: the target took the new input at every
    one, and a loop whose exit depended on it never ended (an audit saw 4,000 iterations)."""
    handle = await client.get_workflow("tt-loop").create_run()
    first = await handle.start_async({"value": 1})  # 2 -> 20, 21 -> 210, 211 -> 2110
    assert first.result == {"value": 2110}
    async with asyncio.timeout(20):
        again = await handle.time_travel("tt-inner.times-ten", {"value": 5}, wait=True)
    assert again.status is RunStatus.SUCCESS
    assert again.result == {"value": 5110}  # 5 -> 50, then 51 -> 510, 511 -> 5110


async def test_time_travel_to_a_nested_workflow_step_and_to_a_foreach_step(client: Client) -> None:
    nested = await client.get_workflow("tt-nested").create_run()
    await nested.start_async(input_data={"value": 1})
    again = await nested.time_travel("tt-inner", {"value": 4}, wait=True)  # the whole inner workflow
    assert again.result == {"text": "value is 50"}  # (4 + 1) * 10
    assert _step(again, "tt-inner").payload == {"value": 4}
    assert _step(again, "tt-inner.add-one").payload == {"value": 4}

    each = await client.get_workflow("tt-each").create_run()
    first = await each.start_async(input_data=[{"value": 1}, {"value": 2}])
    assert first.result == [{"value": 10}, {"value": 20}]
    with pytest.raises(errors.ValidationFailed) as invalid:
        await each.time_travel("times-ten", [{"value": 3}, {"value": "x"}])
    assert [v.field for v in invalid.value.violations] == ["input_data[1].value"]
    items = await each.time_travel("times-ten", [{"value": 3}], wait=True)
    assert items.result == [{"value": 30}]
    stored = await client.get_workflow("tt-each").run_by_id(each.run_id)  # the earlier items are gone
    assert [item.output for item in _step(stored, "times-ten").foreach_items] == [{"value": 30}]


async def test_a_suspended_run_can_time_travel_and_is_resumable_after(client: Client) -> None:
    handle = await client.get_workflow("approval").create_run()
    suspended = await handle.start_async(input_data={"value": 1})
    assert suspended.status is RunStatus.SUSPENDED
    again = await handle.time_travel("approve", {"value": 7}, wait=True)
    assert again.status is RunStatus.SUSPENDED and again.suspended == (("approve",),)
    assert _step(again, "approve").suspend_payload == {"question": "approve 7?"}
    done = await handle.resume_async({"approved": True}, label="manager")
    assert done.status is RunStatus.SUCCESS and done.result == {"text": "approved"}


async def test_time_travel_of_a_failed_run_with_fixed_input(client: Client) -> None:
    handle = await client.get_workflow("tt-failing").create_run()
    failed = await handle.start_async(input_data={"value": 2})  # picky gets 3: odd
    assert failed.status is RunStatus.FAILED and failed.error is not None
    assert _step(failed, "picky").status is StepStatus.FAILED

    fixed = await handle.time_travel("picky", {"value": 4}, wait=True)

    assert fixed.status is RunStatus.SUCCESS and fixed.error is None
    assert fixed.result == {"value": 40}
    travel = next(e for e in await _events(client, handle.run_id) if e.type is EventType.TIME_TRAVEL)
    assert travel.data["previous"]["status"] == "failed"
    assert "odd value 3" in travel.data["previous"]["error"]["message"]


async def test_a_branch_target_runs_again_even_if_its_condition_no_longer_holds(client: Client) -> None:
    handle = await client.get_workflow("tt-branch").create_run()
    ALLOW["times-ten"] = True
    first = await handle.start_async(input_data={"value": 1})
    assert first.result == {"times-ten": {"value": 20}}
    ALLOW["times-ten"] = False
    try:
        again = await handle.time_travel("times-ten", {"value": 3}, wait=True)
    finally:
        ALLOW["times-ten"] = True
    assert again.status is RunStatus.SUCCESS and again.result == {"times-ten": {"value": 30}}


async def test_a_target_inside_a_nested_workflow_that_is_a_branch_runs_again(client: Client) -> None:
    """The branch holding the target is the one the walk takes, as for a plain branch step:
    the target's path goes through it (audit: the nested workflow was dropped, the other
    branch ran instead and the target never ran again)."""
    workflow = client.get_workflow("tt-branch-nested")
    for travel in ("time_travel", "fork"):
        handle = await workflow.create_run()
        first = await handle.start_async(input_data={"value": 1}, initial_state={"go": True})
        assert first.result == {"tt-branch-inner": {"value": 10}}
        again = await getattr(handle, travel)(
            "tt-branch-inner.times-ten", {"value": 2}, initial_state={"go": False}, wait=True
        )
        assert again.status is RunStatus.SUCCESS, travel
        assert again.result == {"tt-branch-inner": {"value": 20}}, travel
        assert sorted(".".join(s.path) for s in again.steps) == [
            "tt-branch-inner",
            "tt-branch-inner.times-ten",
        ]
        assert _step(again, "tt-branch-inner.times-ten").payload == {"value": 2}
        assert BODIES[f"{again.run_id}:times-ten"] == (1 if travel == "fork" else 2), travel
        assert BODIES[f"{again.run_id}:tt-other"] == 0, travel


async def test_a_time_travel_into_a_branch_runs_only_the_branch_holding_its_target(client: Client) -> None:
    """As Mastra's time travel, which runs the target of a `.branch` and marks its siblings
    skipped: the conditions are not asked again, a sibling that started before the target
    keeps its record (and its output in the block's), one that started after it is dropped
    and does not run (audit: every branch whose condition held now ran, some never before)."""
    workflow = client.get_workflow("tt-branch-pair")
    handle = await workflow.create_run()
    first = await handle.start_async(input_data={"value": 1}, initial_state={"go": True})
    assert first.result == {"times-ten": {"value": 10}}
    again = await handle.time_travel("times-ten", {"value": 3}, initial_state={"go": False}, wait=True)
    assert again.status is RunStatus.SUCCESS and again.result == {"times-ten": {"value": 30}}
    assert [".".join(s.path) for s in again.steps] == ["times-ten"]
    assert BODIES[f"{handle.run_id}:tt-other"] == 0

    both = await workflow.create_run()
    first = await both.start_async(input_data={"value": 1}, initial_state={"go": True, "both": True})
    assert first.result == {"times-ten": {"value": 10}, "tt-other": {"value": 101}}
    assert _step(first, "times-ten").position < _step(first, "tt-other").position
    # The second branch: the first started before it and is kept as it was.
    again = await both.time_travel("tt-other", {"value": 5}, initial_state={"go": False}, wait=True)
    assert again.result == {"times-ten": {"value": 10}, "tt-other": {"value": 105}}
    assert _step(again, "times-ten").started_at == _step(first, "times-ten").started_at
    assert BODIES[f"{both.run_id}:times-ten"] == 1
    # The first branch: the second started after it, so its record goes, and it does not run.
    third = await both.time_travel("times-ten", {"value": 4}, wait=True)
    assert third.result == {"times-ten": {"value": 40}}
    assert [".".join(s.path) for s in third.steps] == ["times-ten"]
    assert BODIES[f"{both.run_id}:tt-other"] == 2
    travel = [e for e in await _events(client, both.run_id) if e.type is EventType.TIME_TRAVEL][-1]
    assert sorted(travel.data["replaced_steps"]) == ["times-ten", "tt-other"]


async def test_a_step_that_started_after_the_target_in_a_sibling_nested_workflow_runs_again(
    client: Client,
) -> None:
    """Everything that started after the target runs again, with the nested workflows around it,
    also one that started before the target: its earlier steps keep their records. Before, the
    step's record was deleted (and listed as replaced) but its workflow kept `success`, so it
    never ran again and a later time travel to it was refused as never reached (audit)."""
    handle = await client.get_workflow("tt-par-nested").create_run()
    first = await handle.start_async(input_data={"value": 1})
    assert set(first.suspended) == {("tt-par-a", "ask-a"), ("tt-par-b", "ask-b")}
    assert _step(first, "tt-par-b.ask-b").position < _step(first, "tt-par-a.ask-a").position
    await handle.resume_async({"add": 10}, step="tt-par-a.ask-a")
    done = await handle.resume_async({"add": 20}, step="tt-par-b.ask-b")
    assert done.result == {"tt-par-a": {"value": 12}, "tt-par-b": {"value": 21}}

    again = await handle.time_travel("tt-par-b.ask-b", {"value": 5}, wait=True)

    assert again.status is RunStatus.SUSPENDED
    assert set(again.suspended) == {("tt-par-a", "ask-a"), ("tt-par-b", "ask-b")}
    assert _step(again, "tt-par-a.tt-slow-add").started_at == _step(done, "tt-par-a.tt-slow-add").started_at
    assert BODIES[f"{handle.run_id}:tt-slow-add"] == 1
    await handle.resume_async({"add": 1}, step="tt-par-a.ask-a")
    done = await handle.resume_async({"add": 2}, step="tt-par-b.ask-b")
    assert done.result == {"tt-par-a": {"value": 3}, "tt-par-b": {"value": 7}}
    (travel,) = [e for e in await _events(client, handle.run_id) if e.type is EventType.TIME_TRAVEL]
    replaced = sorted(travel.data["replaced_steps"])
    assert replaced == ["tt-par-a", "tt-par-a.ask-a", "tt-par-b", "tt-par-b.ask-b"]
    assert all(_step(again, path) for path in replaced)  # each ran again
    later = await handle.time_travel("tt-par-a.ask-a", {"value": 50}, wait=True)
    assert later.status is RunStatus.SUSPENDED and ("tt-par-a", "ask-a") in later.suspended


async def test_time_travel_without_input_reuses_the_recorded_input(client: Client) -> None:
    handle = await client.get_workflow("tt-pipeline").create_run()
    await handle.start_async(input_data={"value": 1})
    again = await handle.time_travel("to-text", wait=True)
    assert again.result == {"text": "value is 20"}
    assert BODIES[f"{handle.run_id}:times-ten"] == 1  # before the target: not run again


async def test_time_travel_and_fork_of_a_canceled_run(client: Client) -> None:
    handle = await client.get_workflow("tt-gated").create_run()
    await handle.start(input_data={"value": 1})
    async with asyncio.timeout(5):
        while BODIES[f"{handle.run_id}:gate"] == 0:
            await asyncio.sleep(0.01)
    canceled = await handle.cancel()
    assert canceled.status is RunStatus.CANCELED

    fork = await handle.fork("gate", {"value": 200}, wait=True)
    assert fork.status is RunStatus.SUCCESS and fork.result == {"value": 2000}
    assert fork.forked_from == handle.run_id
    assert uuid.UUID(fork.run_id).version == 7  # the client's, time-ordered, not one derived
    keyed = [await handle.fork("gate", {"value": 300}, request_id="fork-key-1", wait=True) for _ in range(2)]
    assert keyed[0].run_id == keyed[1].run_id != fork.run_id  # the caller's request id names it
    assert (await client.get_workflow("tt-gated").run_by_id(handle.run_id)).status is RunStatus.CANCELED

    again = await handle.time_travel("gate", {"value": 100}, wait=True)
    assert again.status is RunStatus.SUCCESS and again.result == {"value": 1000}
    # Each WORKFLOW_START says what began it, as a watcher sees it.
    causes: dict[str, list[Execution | None]] = {}
    for run_id in (handle.run_id, fork.run_id):
        watched = RunHandle(client, "tt-gated", run_id)
        events = [e async for e in watched.watch_events()]
        causes[run_id] = [e.cause for e in events if e.type is EventType.WORKFLOW_START]
    assert causes == {
        handle.run_id: [Execution.START, Execution.TIME_TRAVEL],
        fork.run_id: [Execution.FORK],
    }


async def test_refusals(client: Client) -> None:
    gated = client.get_workflow("tt-gated")
    running = await gated.create_run()
    await running.start(input_data={"value": 1})
    with pytest.raises(errors.FailedPrecondition) as still:
        await running.time_travel("gate", {"value": 100})
    assert still.value.reason == "RUN_STILL_ACTIVE"
    with pytest.raises(errors.FailedPrecondition) as fork_still:
        await running.fork("gate", {"value": 100})
    assert fork_still.value.reason == "RUN_STILL_ACTIVE"
    await running.cancel()

    napping = await client.get_workflow("tt-nap").create_run()
    await napping.start(input_data={"value": 1})
    await _until_status(client, "tt-nap", napping.run_id, RunStatus.WAITING)
    with pytest.raises(errors.FailedPrecondition) as waiting:
        await napping.time_travel("times-ten", {"value": 1})
    assert waiting.value.reason == "RUN_STILL_ACTIVE"
    await napping.cancel()

    pending = await client.get_workflow("tt-pipeline").create_run()
    with pytest.raises(errors.FailedPrecondition) as not_started:
        await pending.time_travel("times-ten", {"value": 1})
    assert not_started.value.reason == "RUN_NOT_STARTED"

    done = await client.get_workflow("tt-pipeline").create_run()
    await done.start_async(input_data={"value": 1})
    with pytest.raises(errors.InvalidArgument) as unknown:
        await done.time_travel("no-such-step", {"value": 1})
    assert [v.field for v in unknown.value.violations] == ["step"]
    with pytest.raises(errors.InvalidArgument) as unknown_nested:
        await done.time_travel("add-one.deeper", {"value": 1})
    assert [v.field for v in unknown_nested.value.violations] == ["step"]
    with pytest.raises(errors.ValidationFailed) as invalid:
        await done.time_travel("times-ten", {"value": "ten"})
    assert [v.field for v in invalid.value.violations] == ["input_data.value"]
    # A refused time travel changes nothing.
    unchanged = await client.get_workflow("tt-pipeline").run_by_id(done.run_id)
    assert unchanged.status is RunStatus.SUCCESS and unchanged.travel is None


async def test_a_step_that_never_ran_is_refused(client: Client) -> None:
    handle = await client.get_workflow("tt-failing").create_run()
    await handle.start_async(input_data={"value": 2})  # fails at picky: times-ten never ran
    with pytest.raises(errors.FailedPrecondition) as never:
        await handle.time_travel("times-ten", {"value": 1})
    assert never.value.reason == "STEP_NOT_REACHED"


async def test_watch_follows_across_a_time_travel(client: Client) -> None:
    handle = await client.get_workflow("tt-gated").create_run()
    first = await handle.start_async(input_data={"value": 100})  # gate is instant from 100
    assert first.status is RunStatus.SUCCESS

    # A watcher from the old end sees exactly the re-execution; one from 0 sees everything.
    await handle.time_travel("gate", {"value": 300})
    tail = await _events(client, handle.run_id, first.last_sequence)
    whole = await _events(client, handle.run_id)

    assert tail[0].sequence == first.last_sequence + 1 and tail[0].type is EventType.TIME_TRAVEL
    assert [e.sequence for e in whole] == list(range(1, whole[-1].sequence + 1))
    assert whole[len(whole) - len(tail) :] == tail
    assert tail[-1].type is EventType.WORKFLOW_FINISH and tail[-1].data == {"value": 3000}
    assert (await client.get_workflow("tt-gated").run_by_id(handle.run_id)).last_sequence == tail[-1].sequence


async def test_a_watcher_attached_while_the_time_travel_runs(client: Client) -> None:
    handle = await client.get_workflow("tt-gated").create_run()
    await handle.start_async(input_data={"value": 100})
    travelling = await handle.time_travel("gate", {"value": 1})  # gate now waits: the run stays running
    assert travelling.status is RunStatus.RUNNING
    watched: list[Event] = []

    async def watch() -> None:
        async for event in client.follow(handle.run_id):
            watched.append(event)

    watcher = asyncio.create_task(watch())
    async with asyncio.timeout(5):
        while not any(e.type is EventType.STEP_START and e.step_path == ("gate",) for e in watched[5:]):
            await asyncio.sleep(0.01)
    await handle.cancel()
    async with asyncio.timeout(5):
        await watcher
    assert [e.sequence for e in watched] == list(range(1, len(watched) + 1))
    assert watched[-1].type is EventType.WORKFLOW_FINISH and watched[-1].run_status is RunStatus.CANCELED


async def test_request_id_retry_returns_the_first_outcome(client: Client) -> None:
    handle = await client.get_workflow("tt-pipeline").create_run()
    await handle.start_async(input_data={"value": 1})
    first = await handle.time_travel("times-ten", {"value": 3}, request_id="tt-1", wait=True)
    retry = await handle.time_travel("times-ten", {"value": 3}, request_id="tt-1", wait=True)
    assert retry.result == first.result == {"text": "value is 30"}
    assert retry.last_sequence == first.last_sequence
    assert retry.travel is not None and retry.travel.count == 1
    assert BODIES[f"{handle.run_id}:times-ten"] == 2

    fork = await handle.fork("times-ten", {"value": 4}, request_id="fork-1", wait=True)
    fork_retry = await handle.fork("times-ten", {"value": 4}, request_id="fork-1", wait=True)
    assert fork_retry.run_id == fork.run_id and fork_retry.last_sequence == fork.last_sequence
    assert BODIES[f"{fork.run_id}:times-ten"] == 1


async def test_a_fork_reusing_its_request_id_with_another_field_is_refused_naming_it(client: Client) -> None:
    """A fork's request id stands for the whole ForkRun: one with the id of an earlier fork
    and another original run, step, input, state or request context was answered with the
    first fork, made of what the caller did not ask for. The same request is still a retry."""
    workflow = client.get_workflow("tt-pipeline")
    handle, other = await workflow.create_run(), await workflow.create_run()
    for run in (handle, other):
        await run.start_async(input_data={"value": 1})
    sent: dict[str, Any] = {
        "input_data": {"value": 4},
        "initial_state": {"k": 1},
        "request_context": {"tenant": "t-1"},
        "new_run_id": f"{handle.run_id}-fork",
        "request_id": "fk-1",
    }
    first = await handle.fork("times-ten", **sent, wait=True)
    again = await handle.fork("times-ten", **sent)
    assert (again.run_id, again.last_sequence) == (first.run_id, first.last_sequence)
    for field, changed in (
        ("input_data", {"value": 5}),
        ("input_data", None),  # the step's recorded input: not the input sent
        ("initial_state", None),  # the original's state: not {"k": 1}
        ("request_context", {"tenant": "t-2"}),
    ):
        with pytest.raises(errors.RequestIdReused) as reused:
            await handle.fork("times-ten", **{**sent, field: changed})
        assert reused.value.metadata == {"run_id": first.run_id, "request_id": "fk-1", "field": field}
    with pytest.raises(errors.RequestIdReused) as reused:
        await handle.fork("to-text", **sent)
    assert reused.value.metadata["field"] == "step"
    with pytest.raises(errors.RequestIdReused) as reused:
        await other.fork("times-ten", **sent)  # another original run, naming the same fork
    assert reused.value.metadata["field"] == "run_id"
    assert BODIES[f"{first.run_id}:times-ten"] == 1


async def test_a_time_travel_reusing_its_request_id_with_another_field_is_refused_naming_it(
    client: Client,
) -> None:
    """A TimeTravel's request id stands for the whole request: one with the id of an earlier
    time travel and another step, input, state or request context was answered with the first
    outcome, the run travelled with what the caller did not send. The same request is still a
    retry, with or without `wait`, and the run is not travelled again."""
    handle = await client.get_workflow("tt-pipeline").create_run()
    await handle.start_async(input_data={"value": 1})
    sent: dict[str, Any] = {
        "input_data": {"value": 4},
        "initial_state": {"k": 1},
        "request_context": {"tenant": "t-1"},
        "request_id": "tt-2",
    }
    first = await handle.time_travel("times-ten", **sent, wait=True)
    assert first.result == {"text": "value is 40"}
    again = await handle.time_travel("times-ten", **sent)
    assert (again.last_sequence, again.result) == (first.last_sequence, first.result)
    assert again.travel is not None and again.travel.count == 1
    for field, changed in (
        ("input_data", {"value": 5}),
        ("input_data", None),  # the step's recorded input: not the input sent
        ("initial_state", None),  # the run's state: not {"k": 1}
        ("request_context", {"tenant": "t-2"}),
    ):
        with pytest.raises(errors.RequestIdReused) as reused:
            await handle.time_travel("times-ten", **{**sent, field: changed}, wait=True)
        assert reused.value.metadata == {"run_id": handle.run_id, "request_id": "tt-2", "field": field}
    with pytest.raises(errors.RequestIdReused) as reused:
        await handle.time_travel("to-text", **sent, wait=True)
    assert reused.value.metadata["field"] == "step"
    assert BODIES[f"{handle.run_id}:times-ten"] == 2  # the run's, and the time travel's once
    travelled = await client.get_workflow("tt-pipeline").run_execution_result(handle.run_id)
    assert travelled.travel is not None and travelled.travel.count == 1


async def test_fork_leaves_the_original_untouched_and_names_its_origin(client: Client) -> None:
    workflow = client.get_workflow("tt-pipeline")
    handle = await workflow.create_run()
    original = await handle.start_async(input_data={"value": 1})

    fork = await handle.fork("times-ten", {"value": 5}, new_run_id=f"{handle.run_id}-fork", wait=True)

    assert fork.run_id == f"{handle.run_id}-fork"
    assert fork.status is RunStatus.SUCCESS and fork.result == {"text": "value is 50"}
    assert fork.forked_from == handle.run_id
    assert fork.travel is not None and fork.travel.fork_step == ("times-ten",) and fork.travel.count == 0
    assert fork.input == original.input
    assert _step(fork, "add-one").output == {"value": 2}
    assert BODIES[f"{fork.run_id}:times-ten"] == 1
    assert flows.CALLS[f"{fork.run_id}:add-one"] == 0  # kept from the original, never run in the fork
    assert flows.CALLS[f"{handle.run_id}:add-one"] == 1
    after = await workflow.run_by_id(handle.run_id)
    assert after.result == original.result and after.last_sequence == original.last_sequence
    assert [s.output for s in after.steps] == [s.output for s in original.steps]
    events = await _events(client, fork.run_id)
    # The fork's log: the time travel, the records it starts from, then its own execution.
    starts = [EventType.TIME_TRAVEL, EventType.STEP_RESULT, EventType.WORKFLOW_START]
    assert [e.type for e in events[:3]] == starts
    assert events[0].data["forked_from"]["run_id"] == handle.run_id
    assert events[1].step is not None and events[1].step.output == _step(fork, "add-one").output
    forks, _ = await workflow.runs(forked_from=handle.run_id)
    assert [r.run_id for r in forks] == [fork.run_id]
    # The fork's id is taken now: a second fork into it is refused.
    with pytest.raises(errors.AlreadyExists):
        await handle.fork("times-ten", {"value": 6}, new_run_id=fork.run_id)
    # So is the id of a run created and not started, which was "already started (status
    # pending)" before (an audit).
    created = await workflow.create_run()
    with pytest.raises(errors.RunBelongsToOtherWorkflow) as taken:
        await handle.fork("times-ten", {"value": 6}, new_run_id=created.run_id)
    assert taken.value.reason == "RUN_ID_IN_USE"


async def test_the_sync_client_time_travels_and_forks(sync_client: SyncClient) -> None:
    def scenario() -> tuple[Run, Run, Run, list[Run], Run, Run]:
        with sync_client as connected:
            echo = connected.get_workflow("echo")
            run = echo.create_run(run_id="sync-tt")
            first = run.start_async({"count": 1})
            again = run.time_travel("bump", {"count": 10}, wait=True)
            fork = run.fork("bump", {"count": 20}, new_run_id="sync-fork", wait=True)
            forks, _ = echo.runs(forked_from="sync-tt")
            asking = connected.get_workflow("approval").create_run(run_id="sync-ask")
            asking.start_async({"count": 1})
            rejected = asking.time_travel("ask", resume_data={"approved": False}, wait=True)
            approved = asking.fork("ask", resume_data={"approved": True}, wait=True)
        return first, again, fork, forks, rejected, approved

    first, again, fork, forks, rejected, approved = await asyncio.to_thread(scenario)
    assert first.result == {"count": 2}
    assert again.result == {"count": 11} and again.travel is not None and again.travel.count == 1
    assert fork.result == {"count": 21} and fork.forked_from == "sync-tt"
    assert [r.run_id for r in forks] == ["sync-fork"]
    assert rejected.result == {"verdict": "rejected"} and approved.result == {"verdict": "approved"}


async def test_watch_workflow_state_of_a_fork_has_the_records_it_starts_from(client: Client) -> None:
    handle = await client.get_workflow("tt-pipeline").create_run()
    await handle.start_async(input_data={"value": 1})
    fork = await handle.fork("times-ten", {"value": 5}, wait=True)
    last: Any = None
    async with asyncio.timeout(10):
        async for reply in client.stub.Watch(
            run_service_pb2.WatchRequest(run_id=fork.run_id, include_workflow_state=True)
        ):
            for state in reply.workflow_states:
                last = state
    # As GetRun has them: add-one kept from the original (it had none before), the rest run here.
    assert [".".join(s.path.ids) for s in last.steps] == [".".join(s.path) for s in fork.steps]
    assert wire.read_value(last.steps[0], "output") == _step(fork, "add-one").output


async def test_watch_workflow_state_drops_the_replaced_records(stub: RunServiceAsyncStub) -> None:
    await stub.Start(
        run_service_pb2.StartRequest(
            workflow_id="echo", run_id="state-tt", input_data=wire.optional_value({"count": 1}), wait=True
        )
    )
    await stub.TimeTravel(
        run_service_pb2.TimeTravelRequest(
            run_id="state-tt", step=["bump"], input_data=wire.optional_value({"count": 5}), wait=True
        )
    )
    states: dict[int, Any] = {}
    async with asyncio.timeout(10):
        async for reply in stub.Watch(
            run_service_pb2.WatchRequest(run_id="state-tt", include_workflow_state=True)
        ):
            for event, state in zip(reply.events, reply.workflow_states, strict=True):
                states[event.type] = state
    travel = states[run_pb2.RUN_EVENT_TYPE_TIME_TRAVEL]
    assert list(travel.steps) == [] and not travel.HasField("result")
    final = states[run_pb2.RUN_EVENT_TYPE_WORKFLOW_FINISH]
    assert [list(s.path.ids) for s in final.steps] == [["bump"]]
    assert wire.read_value(final, "result") == {"count": 6}


# -- resume_data: time travel to a step and resume it in one call (Mastra's `resumeData`) ----------


async def test_resume_data_resumes_the_suspended_step_it_travels_to(client: Client) -> None:
    """The body gets the data and the payload it suspended with, as from a Resume; GetRun and
    the log show it as they show a Resume's (the record's resume payload, the start event), and
    the TIME_TRAVEL event says what the execution was given."""
    handle = await client.get_workflow("tt-ask").create_run()
    suspended = await handle.start_async(input_data={"value": 1})
    assert suspended.status is RunStatus.SUSPENDED and _step(suspended, "ask").suspend_payload == {"at": 2}

    done = await handle.time_travel("ask", resume_data={"add": 5}, wait=True)

    assert done.status is RunStatus.SUCCESS and done.result == {"value": 70}  # (2 + 5) * 10
    assert SEEN[f"{handle.run_id}:ask"] == [(2, None, None), (2, {"add": 5}, {"at": 2})]
    record = _step(done, "ask")
    assert record.resume_payload == {"add": 5} and record.resumed_at is not None
    assert record.suspend_payload is None  # a resumed step that ends keeps no trace of it
    assert flows.CALLS[f"{handle.run_id}:add-one"] == 1  # before the target: kept
    events = await _events(client, handle.run_id)
    travel = next(e for e in events if e.type is EventType.TIME_TRAVEL)
    assert travel.data["resume_data"] == {"add": 5}
    start = next(
        e
        for e in events
        if e.sequence > travel.sequence and e.type is EventType.STEP_START and e.step_path == ("ask",)
    )
    assert start.step is not None and start.step.resume_payload == {"add": 5}
    assert start.step.suspend_payload == {"at": 2}  # what it was resumed from, as a Resume's start

    # With new input too; no suspension left now: the body gets none.
    again = await handle.time_travel("ask", {"value": 10}, resume_data={"add": 1}, wait=True)
    assert again.result == {"value": 110}
    assert SEEN[f"{handle.run_id}:ask"][-1] == (10, {"add": 1}, None)
    # Without resume data the step runs as it first did: it suspends again.
    plain = await handle.time_travel("ask", wait=True)
    assert plain.status is RunStatus.SUSPENDED and _step(plain, "ask").resume_payload is None
    async with asyncio.timeout(10):
        tail = [e async for e in client.follow(handle.run_id, again.last_sequence, until_settled=True)]
    assert tail[0].type is EventType.TIME_TRAVEL and "resume_data" not in tail[0].data


async def test_resume_data_answers_again_a_step_that_was_resumed_and_went_on(client: Client) -> None:
    """Mastra gives resumeData only to a target the run left suspended and drops it otherwise;
    here the target gets it, so a decision made with a Resume can be made again in one call."""
    handle = await client.get_workflow("tt-ask").create_run()
    await handle.start_async(input_data={"value": 1})
    first = await handle.resume_async({"add": 1})
    assert first.result == {"value": 30}

    again = await handle.time_travel("ask", resume_data={"add": 3}, wait=True)

    assert again.status is RunStatus.SUCCESS and again.result == {"value": 50}
    assert SEEN[f"{handle.run_id}:ask"][-1] == (2, {"add": 3}, None)
    assert _step(again, "ask").resume_payload == {"add": 3}


async def test_resume_data_is_validated_as_a_resumes_and_a_refusal_changes_nothing(client: Client) -> None:
    handle = await client.get_workflow("tt-ask").create_run()
    await handle.start_async(input_data={"value": 1})
    with pytest.raises(errors.ValidationFailed) as travelled:
        await handle.time_travel("ask", resume_data={"add": "many"}, wait=True)
    with pytest.raises(errors.ValidationFailed) as resumed:
        await handle.resume_async({"add": "many"})
    assert travelled.value.reason == resumed.value.reason == "VALIDATION_FAILED"
    assert [v.field for v in travelled.value.violations] == [v.field for v in resumed.value.violations]
    assert [v.field for v in travelled.value.violations] == ["resume_data.add"]
    unchanged = await client.get_workflow("tt-ask").run_by_id(handle.run_id)
    assert unchanged.status is RunStatus.SUSPENDED and unchanged.travel is None
    assert len(SEEN[f"{handle.run_id}:ask"]) == 1


async def test_resume_data_of_a_step_without_resume_schema_is_given_as_sent(client: Client) -> None:
    """As a Resume of such a step takes any data (and Mastra's time travel too)."""
    handle = await client.get_workflow("tt-note").create_run()
    await handle.start_async(input_data={"value": 1})
    again = await handle.time_travel("note", resume_data={"anything": [1, "two"]}, wait=True)
    assert again.status is RunStatus.SUCCESS
    assert SEEN[f"{handle.run_id}:note"] == [(1, None, None), (1, {"anything": [1, "two"]}, None)]
    await handle.time_travel("note", resume_data=False, wait=True)  # falsy is data (Mastra drops it)
    assert SEEN[f"{handle.run_id}:note"][-1] == (1, False, None)


async def test_resume_data_for_a_step_in_a_nested_workflow_and_not_for_the_workflow(client: Client) -> None:
    """A path into a nested workflow resumes that step (its earlier steps keep their records). A
    nested workflow (or a foreach of them) has no body to give the data to: refused, naming the
    field and the step suspended inside, and nothing changes (Mastra resumes that step)."""
    handle = await client.get_workflow("tt-ask-nested").create_run()
    first = await handle.start_async(input_data={"value": 1})
    assert first.suspended == (("tt-ask-inner", "ask"),)
    with pytest.raises(errors.InvalidArgument) as refused:
        await handle.time_travel("tt-ask-inner", resume_data={"add": 1})
    assert refused.value.reason == "INVALID_REQUEST"
    assert [v.field for v in refused.value.violations] == ["resume_data"]
    assert "tt-ask-inner.ask" in str(refused.value)
    assert (await client.get_workflow("tt-ask-nested").run_by_id(handle.run_id)).travel is None

    done = await handle.time_travel("tt-ask-inner.ask", resume_data={"add": 7}, wait=True)
    assert done.status is RunStatus.SUCCESS and done.result == {"value": 9}
    assert SEEN[f"{handle.run_id}:ask"][-1] == (2, {"add": 7}, {"at": 2})
    assert flows.CALLS[f"{handle.run_id}:add-one"] == 1

    items = await client.get_workflow("tt-ask-flows").create_run()
    assert (await items.start_async(input_data=[{"value": 1}])).status is RunStatus.SUSPENDED
    with pytest.raises(errors.InvalidArgument) as each:
        await items.time_travel("tt-ask-inner", resume_data={"add": 1})
    assert [v.field for v in each.value.violations] == ["resume_data"]
    assert "foreach of nested workflows" in str(each.value)


async def test_resume_data_for_a_loop_body_resumes_its_first_iteration_only(client: Client) -> None:
    """As the new input: the loop runs again from its first iteration, which is resumed; the next
    one runs as any does and suspends (given to every iteration, the loop would have ended)."""
    handle = await client.get_workflow("asking-loop").create_run()
    assert (await handle.start_async(input_data={"value": 1})).status is RunStatus.SUSPENDED
    again = await handle.time_travel("ask-more", resume_data={"approved": True}, wait=True)
    assert again.status is RunStatus.SUSPENDED
    record = _step(again, "ask-more")
    assert (record.iteration, record.suspend_payload, record.resume_payload) == (2, {"at": 2}, None)


async def test_resume_data_resumes_every_item_of_a_foreach_step(client: Client) -> None:
    """Each item's body gets the data, with the payload that item was left suspended with (by
    index, as Mastra's; an item resumed before has none); Mastra resumes only the suspended ones."""
    handle = await client.get_workflow("tt-ask-each").create_run()
    first = await handle.start_async(input_data=[{"value": 1}, {"value": 2}])
    assert first.status is RunStatus.SUSPENDED
    partly = await handle.resume_async({"add": 1}, for_each_index=0)
    assert partly.status is RunStatus.SUSPENDED  # item 1 still waits

    done = await handle.time_travel("ask", resume_data={"add": 10}, wait=True)

    assert done.status is RunStatus.SUCCESS and done.result == [{"value": 11}, {"value": 12}]
    assert sorted(SEEN[f"{handle.run_id}:ask"][-2:], key=str) == sorted(
        [(1, {"add": 10}, None), (2, {"add": 10}, {"at": 2})], key=str
    )
    assert _step(done, "ask").resume_payload == {"add": 10}


async def test_resume_data_is_for_the_time_travels_own_execution(client: Client) -> None:
    """A foreach one item at a time: the time travel's data resumes item 0, which suspends
    again, and the run settles. A Resume of item 0 then runs item 1 with no resume data: before,
    the time travel's data was kept on the run until the foreach had an outcome, and item 1 got
    it within the Resume's execution (a review)."""
    handle = await client.get_workflow("tt-ask-one-by-one").create_run()
    first = await handle.start_async(input_data=[{"value": 1}, {"value": 2}])
    assert first.status is RunStatus.SUSPENDED

    again = await handle.time_travel("ask-positive", resume_data={"add": 0}, wait=True)
    assert again.status is RunStatus.SUSPENDED
    resumed = await handle.resume_async({"add": 5}, for_each_index=0)

    assert resumed.status is RunStatus.SUSPENDED  # item 1 asks in its turn
    assert SEEN[f"{handle.run_id}:ask-positive"] == [
        (1, None, None),  # the start
        (1, {"add": 0}, {"at": 1}),  # the time travel
        (1, {"add": 5}, {"at": 1}),  # the Resume
        (2, None, None),  # the next item, fresh
    ]
    done = await handle.resume_async({"add": 7}, for_each_index=1)
    assert done.status is RunStatus.SUCCESS and done.result == [{"value": 6}, {"value": 9}]


async def test_a_time_travel_reusing_its_request_id_with_other_resume_data_is_refused(client: Client) -> None:
    handle = await client.get_workflow("tt-ask").create_run()
    await handle.start_async(input_data={"value": 1})
    first = await handle.time_travel("ask", resume_data={"add": 1}, request_id="tt-r", wait=True)
    again = await handle.time_travel("ask", resume_data={"add": 1}, request_id="tt-r", wait=True)
    assert (again.last_sequence, again.result) == (first.last_sequence, first.result)
    for other in ({"add": 2}, None):
        with pytest.raises(errors.RequestIdReused) as reused:
            await handle.time_travel("ask", resume_data=other, request_id="tt-r")
        assert reused.value.metadata == {
            "run_id": handle.run_id,
            "request_id": "tt-r",
            "field": "resume_data",
        }
    # One sent without resume data is no retry of one with it either.
    await handle.time_travel("ask", {"value": 4}, request_id="tt-s", wait=True)
    with pytest.raises(errors.RequestIdReused) as added:
        await handle.time_travel("ask", {"value": 4}, resume_data={"add": 1}, request_id="tt-s")
    assert added.value.metadata["field"] == "resume_data"
    assert len(SEEN[f"{handle.run_id}:ask"]) == 3  # the start, each time travel once


async def test_a_fork_resumes_its_step_with_resume_data_and_the_original_stays_suspended(
    client: Client,
) -> None:
    workflow = client.get_workflow("tt-ask")
    handle = await workflow.create_run()
    await handle.start_async(input_data={"value": 1})
    fork = await handle.fork("ask", resume_data={"add": 2}, request_id="fk-r", wait=True)
    assert fork.status is RunStatus.SUCCESS and fork.result == {"value": 40}
    assert SEEN[f"{fork.run_id}:ask"] == [(2, {"add": 2}, {"at": 2})]
    events = await _events(client, fork.run_id)
    assert events[0].type is EventType.TIME_TRAVEL and events[0].data["resume_data"] == {"add": 2}
    assert (await workflow.run_by_id(handle.run_id)).status is RunStatus.SUSPENDED
    with pytest.raises(errors.RequestIdReused) as reused:
        await handle.fork("ask", resume_data={"add": 3}, request_id="fk-r")
    assert reused.value.metadata["field"] == "resume_data"


# -- Stream with time_travel (Mastra's `timeTravelStream`) ------------------------------------------


async def test_a_time_travel_stream_sends_the_re_execution_from_its_time_travel_event(client: Client) -> None:
    handle = await client.get_workflow("tt-ask").create_run()
    first = await handle.start_async(input_data={"value": 1})

    events = [e async for e in handle.time_travel_stream("ask", resume_data={"add": 5}, request_id="tts-1")]

    assert [e.sequence for e in events] == list(range(first.last_sequence + 1, events[-1].sequence + 1))
    assert events[0].type is EventType.TIME_TRAVEL and events[0].data["resume_data"] == {"add": 5}
    assert events[0].data["previous"]["status"] == "suspended"
    assert events[1].type is EventType.WORKFLOW_START and events[1].cause is Execution.TIME_TRAVEL
    assert [(e.type, e.step_path) for e in events[2:4]] == [
        (EventType.STEP_START, ("ask",)),
        (EventType.STEP_RESULT, ("ask",)),
    ]
    assert events[-1].type is EventType.WORKFLOW_FINISH and events[-1].data == {"value": 70}
    assert handle.last_run is not None and handle.last_run.result == {"value": 70}
    # The stream is that time travel's: a retry sends the same events after the run moved on
    # (here: another time travel), and one that changes what was sent is refused.
    await handle.time_travel("times-ten", {"value": 3}, wait=True)
    again = [e async for e in handle.time_travel_stream("ask", resume_data={"add": 5}, request_id="tts-1")]
    assert [(e.sequence, e.type) for e in again] == [(e.sequence, e.type) for e in events]
    with pytest.raises(errors.RequestIdReused) as reused:
        async for _ in handle.time_travel_stream("ask", resume_data={"add": 6}, request_id="tts-1"):
            pytest.fail("no event expected")
    assert reused.value.metadata["field"] == "resume_data"
    assert len(SEEN[f"{handle.run_id}:ask"]) == 2  # the start and the streamed time travel


async def test_a_time_travel_stream_without_request_id_ends_with_the_run_suspended(client: Client) -> None:
    """Through the stub, as a caller of another language sends it: no request id, no resume data."""
    handle = await client.get_workflow("tt-ask").create_run()
    first = await handle.start_async(input_data={"value": 1})
    request = run_service_pb2.StreamRequest(
        time_travel=run_service_pb2.TimeTravelRequest(run_id=handle.run_id, step=["ask"])
    )
    async with asyncio.timeout(10):
        messages = [m async for m in client.stub.Stream(request)]
    events = [e for m in messages for e in m.events]
    assert events[0].sequence == first.last_sequence + 1
    assert events[0].type == run_pb2.RUN_EVENT_TYPE_TIME_TRAVEL
    assert events[1].type == run_pb2.RUN_EVENT_TYPE_WORKFLOW_START
    assert events[-2].type == run_pb2.RUN_EVENT_TYPE_STEP_SUSPENDED
    assert events[-1].type == run_pb2.RUN_EVENT_TYPE_WORKFLOW_FINISH
    end = messages[-1]
    assert end.end_of_stream and end.run_id == handle.run_id
    assert end.run.status == run_pb2.RUN_STATUS_SUSPENDED
    assert end.run.time_travel_count == 1


async def test_a_refused_time_travel_stream_fails_before_any_message(client: Client) -> None:
    gated = await client.get_workflow("tt-gated").create_run()
    await gated.start(input_data={"value": 1})
    asking = await client.get_workflow("tt-ask").create_run()
    await asking.start_async(input_data={"value": 1})
    cases: list[tuple[run_service_pb2.TimeTravelRequest, str, list[str]]] = [
        (run_service_pb2.TimeTravelRequest(run_id=gated.run_id, step=["gate"]), "RUN_STILL_ACTIVE", []),
        (run_service_pb2.TimeTravelRequest(run_id=asking.run_id), "INVALID_REQUEST", ["time_travel.step"]),
        (
            run_service_pb2.TimeTravelRequest(
                run_id=asking.run_id, step=["ask"], resume_data=wire.optional_value({"add": "x"})
            ),
            "VALIDATION_FAILED",
            ["resume_data.add"],
        ),
    ]
    for travel, reason, fields in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in client.stub.Stream(run_service_pb2.StreamRequest(time_travel=travel)):
                pytest.fail("no message expected")
        error = error_from_rpc(caught.value)
        assert (error.reason, [v.field for v in error.violations]) == (reason, fields)
    await gated.cancel()
    assert (await client.get_workflow("tt-ask").run_by_id(asking.run_id)).travel is None


async def test_the_sync_client_streams_a_time_travel(sync_client: SyncClient) -> None:
    def scenario() -> list[Event]:
        with sync_client as connected:
            asking = connected.get_workflow("approval").create_run(run_id="sync-tts")
            asking.start_async({"count": 1})
            return list(asking.time_travel_stream("ask", resume_data={"approved": True}))

    events = await asyncio.to_thread(scenario)
    assert events[0].type is EventType.TIME_TRAVEL and events[0].data["resume_data"] == {"approved": True}
    assert events[-1].type is EventType.WORKFLOW_FINISH and events[-1].data == {"verdict": "approved"}
