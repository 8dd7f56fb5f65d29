"""Every control-flow construct through a real server: outputs, step records, failures,
suspend and resume, events in order, cancel, sleeps across a restart, nested workflows."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import flows
import pytest
from conftest import client_for

from runservice import errors
from runservice.client import Client
from runservice.model import Event, EventType, Run, RunStatus, StepStatus, WorkflowState

client = client_for(flows.WORKFLOWS)


def records(run: Run) -> dict[str, tuple[str, Any]]:
    return {".".join(s.path): (s.status.value, s.output) for s in run.steps}


def kinds(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.type.value, ".".join(e.step_path)) for e in events]


async def start(client: Client, workflow: str, data: Any, **kwargs: Any) -> Run:
    run = await client.get_workflow(workflow).create_run()
    return await run.start_async(input_data=data, **kwargs)


async def stream(client: Client, workflow: str, data: Any) -> tuple[str, list[Event]]:
    run = await client.get_workflow(workflow).create_run()
    return run.run_id, [e async for e in run.stream(input_data=data)]


# -- parallel ---------------------------------------------------------------------------------------


async def test_parallel_output_is_keyed_by_step_and_events_start_together(client: Client) -> None:
    result = await start(client, "parallel-ok", {"value": 2})
    assert result.result == {"got": {"double": {"value": 4}, "triple": {"value": 6}}}
    assert records(result)["double"] == ("success", {"value": 4})
    _, events = await stream(client, "parallel-ok", {"value": 2})
    assert kinds(events)[1:3] == [("workflow-step-start", "double"), ("workflow-step-start", "triple")]
    assert {k for k in kinds(events)[3:5]} == {
        ("workflow-step-result", "double"),
        ("workflow-step-result", "triple"),
    }


async def test_parallel_failure_fails_after_siblings_and_allow_failure_gives_null(client: Client) -> None:
    failed = await start(client, "parallel-fail", {"value": 2})
    assert failed.status is RunStatus.FAILED
    assert records(failed) == {"double": ("success", {"value": 4}), "fails-fast": ("failed", None)}
    allowed = await start(client, "parallel-allow", {"value": 2})
    assert allowed.status is RunStatus.SUCCESS
    assert allowed.result == {"double": {"value": 4}, "fails-fast": None}


# -- branch ---------------------------------------------------------------------------------------------


async def test_branch_runs_every_true_condition(client: Client) -> None:
    both = await start(client, "branching", {"value": 6})
    assert both.result == {"double": {"value": 12}, "triple": {"value": 18}}
    only_even = await start(client, "branching", {"value": 4})
    assert only_even.result == {"triple": {"value": 12}}
    assert set(records(only_even)) == {"triple"}


async def test_branch_with_no_true_condition_outputs_empty_and_raising_condition_is_false(
    client: Client,
) -> None:
    none = await start(client, "branching", {"value": 1})
    assert none.status is RunStatus.SUCCESS
    assert none.result == {} and none.steps == ()
    _, events = await stream(client, "branching", {"value": 1})
    assert kinds(events) == [("workflow-start", ""), ("workflow-finish", "")]


# -- loops ------------------------------------------------------------------------------------------------


async def test_a_resume_takes_no_decision_again_of_a_branch_or_loop_the_walk_went_past(
    client: Client,
) -> None:
    """As Mastra re-enters at the suspended entry: before, the resume evaluated the conditions
    of a branch that chose nothing and of a loop that had ended again, on the state the gate
    had changed since (an audit): `when-ready` ran, and the loop ran three more times and
    overwrote the state the gate had set."""
    for workflow, ran in (("branch-then-gate", {}), ("loop-then-gate", {"count-up": 3})):
        run = await client.get_workflow(workflow).create_run()
        suspended = await run.start_async(input_data={})
        assert suspended.status is RunStatus.SUSPENDED, workflow
        done = await run.resume_async(resume_data={"ok": True})
        assert done.status is RunStatus.SUCCESS, workflow
        assert done.result == {"state": {"ready": True, "n": 0}}, workflow
        assert flows.ran(run.run_id) == ran, workflow
        assert "when-ready" not in records(done), workflow


async def test_inside_a_loop_body_a_resume_takes_no_decision_again_of_a_branch_the_walk_went_past(
    client: Client,
) -> None:
    """The same inside a loop's body, where the entry after the branch is a loop: its record
    carries its own iteration, and was taken for one of another iteration (a review)."""
    run = await client.get_workflow("branch-then-loop-in-loop").create_run()
    assert (await run.start_async(input_data={})).status is RunStatus.SUSPENDED
    done = await run.resume_async(resume_data={"ok": True})
    assert done.status is RunStatus.SUCCESS
    assert flows.CALLS[f"{run.run_id}:when-ready"] == 0


async def test_dowhile_feeds_each_iteration_the_previous_output(client: Client) -> None:
    result = await start(client, "looping-while", {"value": 3})
    assert result.result == {"value": 24}  # 6, 12, 24
    body = result.steps[0]
    assert body.iteration == 3 and body.status is StepStatus.SUCCESS


async def test_dountil_sees_an_iteration_count_starting_at_one(client: Client) -> None:
    result = await start(client, "looping-until", {"value": 0})
    assert result.result == {"value": 3}
    _, events = await stream(client, "looping-until", {"value": 0})
    starts = [e for e in events if e.type is EventType.STEP_START]
    assert [e.step.iteration for e in starts if e.step] == [1, 2, 3]


async def test_a_suspending_loop_body_is_resumed_one_iteration_at_a_time(client: Client) -> None:
    run = await client.get_workflow("asking-loop").create_run()
    state = await run.start_async(input_data={"value": 0})
    seen = []
    while state.status is RunStatus.SUSPENDED:
        body = state.steps[0]
        seen.append((body.iteration, body.suspend_payload))
        state = await run.resume_async(resume_data={"approved": True})
    assert state.status is RunStatus.SUCCESS
    assert state.result == {"value": 3}
    assert seen == [(1, {"at": 0}), (2, {"at": 1}), (3, {"at": 2})]


# -- foreach -------------------------------------------------------------------------------------------------


async def test_foreach_keeps_input_order_and_reports_progress(client: Client) -> None:
    run_id, events = await stream(client, "each", [{"value": 1}, {"value": 2}, {"value": 3}])
    assert events[-1].data == [{"value": 10}, {"value": 20}, {"value": 30}]
    progress = [e.progress for e in events if e.type is EventType.STEP_PROGRESS]
    assert sorted(p.current_index for p in progress if p) == [0, 1, 2]
    assert [p.completed_count for p in progress if p] == [1, 2, 3]
    assert all(p.total_count == 3 for p in progress if p)
    assert kinds(events)[1] == ("workflow-step-start", "check-item")
    assert kinds(events)[-2] == ("workflow-step-result", "check-item")
    result = await client.get_workflow("each").run_execution_result(run_id)
    body = result.steps[0]
    assert body.payload == [{"value": 1}, {"value": 2}, {"value": 3}]
    assert [i.status for i in body.foreach_items] == [StepStatus.SUCCESS] * 3
    # Watch's workflow state (the log folded) keeps the foreach's record through its progress
    # events: each carries a bare marker of the step (audit: the state lost its payload).
    state = WorkflowState(status=RunStatus.PENDING)
    for event in events:
        state = state.apply(event)
        if event.type is EventType.STEP_PROGRESS:
            (record,) = state.steps
            assert record.status is StepStatus.RUNNING and record.payload == body.payload, record
    assert state.steps[0].output == [{"value": 10}, {"value": 20}, {"value": 30}]


async def test_foreach_needs_a_list(client: Client) -> None:
    result = await start(client, "each-unchecked", {"value": 1})
    assert result.status is RunStatus.FAILED
    assert result.error is not None and result.error.name == "ForeachInputError"
    assert "needs a list" in result.error.message


async def test_foreach_limits_items_in_flight(client: Client) -> None:
    run = await client.get_workflow("slow-each").create_run()
    await run.start(input_data=[{"value": 1}, {"value": 2}, {"value": 3}])
    await asyncio.sleep(0.3)
    assert flows.CALLS[f"{run.run_id}:slow-item"] == 2
    canceled = await run.cancel()
    assert canceled.status is RunStatus.CANCELED
    assert canceled.steps[0].status is StepStatus.CANCELED
    assert flows.CALLS[f"{run.run_id}:slow-item"] == 2


def item_states(run: Run) -> list[str]:
    [foreach] = [s for s in run.steps if s.path == ("check-item",)]
    return [i.status.value for i in foreach.foreach_items]


async def test_foreach_one_at_a_time_suspends_and_resumes_item_by_item(client: Client) -> None:
    """Mastra's order with concurrency 1: each resume finishes one item and runs the next."""
    run = await client.get_workflow("each-unchecked").create_run()
    state = await run.start_async(input_data=[{"value": -1}, {"value": -2}, {"value": -3}])
    assert state.status is RunStatus.SUSPENDED
    assert item_states(state) == ["suspended"], "only item 0 ran"
    assert set(state.resume_labels) == {"item-1"}
    for done in (1, 2):
        state = await run.resume_async(resume_data={"approved": True})
        assert state.status is RunStatus.SUSPENDED
        assert item_states(state) == ["success"] * done + ["suspended"]
        assert set(state.resume_labels) == {f"item-{done + 1}"}
    state = await run.resume_async(resume_data={"approved": True})
    assert state.status is RunStatus.SUCCESS
    assert state.result == [{"value": 10}, {"value": 20}, {"value": 30}]
    assert item_states(state) == ["success"] * 3


async def test_foreach_runs_in_batches_and_resumes_by_index_label_or_all(client: Client) -> None:
    """Concurrency 2: a batch starts once every item of the one before succeeded."""
    items = [{"value": -1}, {"value": 2}, {"value": -3}, {"value": -4}, {"value": -5}]
    run = await client.get_workflow("each").create_run()
    state = await run.start_async(input_data=items)
    assert state.status is RunStatus.SUSPENDED
    assert item_states(state) == ["suspended", "success"]
    state = await run.resume_async(for_each_index=0, resume_data={"approved": True})
    assert item_states(state) == ["success", "success", "suspended", "suspended"]
    assert set(state.resume_labels) == {"item-3", "item-4"}
    state = await run.resume_async(label="item-3", resume_data={"approved": True})
    assert item_states(state) == ["success", "success", "success", "suspended"], "item 3 still waits"
    with pytest.raises(errors.StepNotSuspended):
        await run.resume_async(for_each_index=2, resume_data={"approved": True})
    state = await run.resume_async(step=["check-item"], for_each_index=3, resume_data={"approved": True})
    assert item_states(state) == ["success"] * 4 + ["suspended"]
    state = await run.resume_async(resume_data={"approved": True})
    assert state.status is RunStatus.SUCCESS
    assert state.result == [{"value": 10}, {"value": 20}, {"value": 30}, {"value": 40}, {"value": 50}]


async def test_resuming_every_suspended_item_of_a_batch_at_once(client: Client) -> None:
    run = await client.get_workflow("each").create_run()
    state = await run.start_async(input_data=[{"value": -1}, {"value": -2}, {"value": -3}])
    assert item_states(state) == ["suspended", "suspended"]
    state = await run.resume_async(resume_data={"approved": True})
    assert item_states(state) == ["success", "success", "suspended"]
    state = await run.resume_async(resume_data={"approved": True})
    assert state.status is RunStatus.SUCCESS
    assert state.result == [{"value": 10}, {"value": 20}, {"value": 30}]


async def test_a_foreach_of_workflows_carries_the_suspension_of_its_items_as_one_of_steps(
    client: Client,
) -> None:
    """An item of nested workflows that suspends lends the payload of its first suspended step
    to its item, and the first suspended item its payload to the foreach's record and event, as
    a foreach of steps and a nested workflow do (audit: the foreach of workflows carried none)."""
    items = [{"value": -1}, {"value": 2}, {"value": -3}]
    for workflow, foreach in (("each", ("check-item",)), ("each-flow", ("check-flow",))):
        run = await client.get_workflow(workflow).create_run()
        state = await run.start_async(input_data=items)
        assert state.status is RunStatus.SUSPENDED
        [record] = [s for s in state.steps if s.path == foreach]
        assert record.suspend_payload == {"item": -1}, workflow
        assert [i.suspend_payload for i in record.foreach_items] == [{"item": -1}, None], workflow
        events = [e async for e in client.follow(run.run_id, until_settled=True)]
        [told] = [e.step for e in events if e.type is EventType.STEP_SUSPENDED and e.step_path == foreach]
        assert told is not None and told.suspend_payload == {"item": -1}, workflow
        state = await run.resume_async(for_each_index=0, resume_data={"approved": True})
        [record] = [s for s in state.steps if s.path == foreach]
        assert [i.suspend_payload for i in record.foreach_items] == [None, None, {"item": -3}], workflow
        assert record.suspend_payload == {"item": -3}, workflow


async def test_the_copies_of_a_foreach_of_workflows_count_toward_the_runs_size(client: Client) -> None:
    """Each item's copy of its inner step's payload counts as a nested workflow's record's does:
    five items suspending with 0.9 MB each made 9.9 MB, a run no reply could carry (review).
    The copies that fit are kept; the inner steps' records keep every payload."""
    run = await client.get_workflow("each-flow-large").create_run()
    state = await run.start_async(input_data=list("01234"))
    assert state.status is RunStatus.SUSPENDED
    full = await client.get_workflow("each-flow-large").run_by_id(run.run_id)
    [record] = [s for s in full.steps if s.path == ("asks-large-flow",)]
    kept = [i.suspend_payload is not None for i in record.foreach_items]
    assert kept[0] and not all(kept), kept
    assert len([s for s in full.steps if s.suspend_payload is not None and len(s.path) == 3]) == 5
    for index in range(5):  # what the copies counted is given back as the items end
        state = await run.resume_async(for_each_index=index, resume_data={"ok": True})
    assert state.status is RunStatus.SUCCESS, state.error
    assert state.result == [{"done": digit} for digit in "01234"]


async def test_a_large_foreach_keeps_every_item_in_order(client: Client) -> None:
    count = 2_000
    run = await client.get_workflow("many-each").create_run()
    events = [e async for e in run.stream(input_data=list(range(count)))]
    assert events[-1].type is EventType.WORKFLOW_FINISH
    result = await client.get_workflow("many-each").run_execution_result(run.run_id)
    assert result.status is RunStatus.SUCCESS
    assert result.result == [{"n": i, "square": i * i} for i in range(count)]
    [foreach] = result.steps
    assert [i.index for i in foreach.foreach_items] == list(range(count))
    assert all(i.status is StepStatus.SUCCESS for i in foreach.foreach_items)
    assert [i.output for i in foreach.foreach_items] == result.result
    progress = [e.progress for e in events if e.type is EventType.STEP_PROGRESS]
    assert [p.completed_count for p in progress if p] == list(range(1, count + 1))
    assert all(e.step is None or not e.step.foreach_items for e in events), "events stay small"


async def test_a_foreach_sequence_survives_a_restart_between_resumes(serving: Any, tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    items = [{"value": -1}, {"value": -2}, {"value": -3}]
    async with serving(db, workflows=flows.WORKFLOWS) as served, Client(served.address) as first:
        run = await first.get_workflow("each-unchecked").create_run()
        await run.start_async(input_data=items)
        state = await run.resume_async(resume_data={"approved": True})
        assert item_states(state) == ["success", "suspended"]
    async with serving(db, workflows=flows.WORKFLOWS) as served, Client(served.address) as second:
        again = await second.get_workflow("each-unchecked").create_run(run.run_id)
        state = await again.resume_async(label="item-2", resume_data={"approved": True})
        assert item_states(state) == ["success", "success", "suspended"]
        state = await again.resume_async(for_each_index=2, resume_data={"approved": True})
    assert state.status is RunStatus.SUCCESS
    assert state.result == [{"value": 10}, {"value": 20}, {"value": 30}]


# -- map ---------------------------------------------------------------------------------------------------


async def test_map_declarative_sources_and_function(client: Client) -> None:
    result = await start(client, "mapped", {"value": 4}, request_context={"tenant": "acme"})
    assert records(result)["reshape"] == (
        "success",
        {"doubled": 8, "original": 4, "constant": "k", "tenant": "acme", "one": 1},
    )
    assert result.result == {"sum": 12}
    assert "mapping_1" in records(result)  # generated ids are stable: the n-th map of the workflow
    # A source's `schema` (Mastra's `{value, schema}`, `{fn, schema}`...) is described as JSON Schema.
    details = await client.get_workflow("mapped").details()
    (reshape,) = [node for node in details.step_graph if node["id"] == "reshape"]
    assert reshape["map_config"]["constant"] == {"value": "k", "schema": {"type": "string"}}
    assert reshape["map_config"]["one"] == {"fn": "_one", "schema": {"type": "integer"}}


def test_map_schema_is_only_for_value_context_and_function_sources() -> None:
    from runservice.workflow import create_workflow

    with pytest.raises(errors.WorkflowDefinitionError, match="unknown source"):
        create_workflow("bad-map").map({"x": {"step": "s", "path": ".", "schema": int}})
    with pytest.raises(errors.WorkflowDefinitionError, match="schema that is not a type"):
        create_workflow("bad-map").map({"x": {"value": 1, "schema": "an int, please"}})


# -- sleep ---------------------------------------------------------------------------------------------------


async def test_sleep_passes_input_through_and_reports_waiting(client: Client) -> None:
    _, events = await stream(client, "napping", {"value": 1})
    assert kinds(events)[:3] == [
        ("workflow-start", ""),
        ("workflow-step-waiting", "sleep_1"),
        ("workflow-step-result", "sleep_1"),
    ]
    assert events[1].run_status is RunStatus.WAITING
    assert events[1].step is not None and events[1].step.wake_at is not None
    assert events[-1].data == {"value": 2}
    until = await start(client, "napping-until", {"value": 1})
    assert until.result == {"value": 3}


async def test_a_body_that_starts_beside_a_sleep_is_told_as_running(client: Client) -> None:
    """The run is `running` again before a body starts beside a sibling's sleep, and its start
    event says so (audit: it said `waiting`, the run's status before the body took it back).
    A nested workflow's start runs no body: it tells the run as it is."""
    _, events = await stream(client, "nap-beside", {"value": 1})
    assert events[-1].type is EventType.WORKFLOW_FINISH and events[-1].run_status is RunStatus.SUCCESS
    slept = next(e.sequence for e in events if e.type is EventType.STEP_WAITING)
    starts = {
        ".".join(e.step_path): e.run_status
        for e in events
        if e.type is EventType.STEP_START and e.sequence > slept and e.step_path not in (("each-twice",),)
    }
    assert starts == {
        "double": RunStatus.RUNNING,  # a step
        "each-twice.mapping_1": RunStatus.RUNNING,
        "each-twice.double-each": RunStatus.RUNNING,  # a foreach: its items' bodies start with it
    }


async def test_sleep_until_reads_a_naive_datetime_as_the_servers_local_time(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`datetime.now() + 0.2 s` on a server two hours east of UTC sleeps 0.2 s, not two hours
    and 0.2 s (the server runs in this process: its local time is the test's)."""
    monkeypatch.setenv("TZ", "Etc/GMT-2")
    time.tzset()
    try:
        async with asyncio.timeout(10):  # read as UTC, it would sleep until two hours from now
            done = await start(client, "napping-until-here", {"value": 1})
        assert done.result == {"value": 3}
        # The earliest naive datetime is before year 1 there: long past, not a failed sleep.
        long_ago = await start(client, "napping-until-long-ago", {"value": 1})
        assert long_ago.status is RunStatus.SUCCESS and long_ago.result == {"value": 3}, long_ago.error
    finally:
        monkeypatch.undo()
        time.tzset()


async def test_cancel_interrupts_a_sleep(client: Client) -> None:
    run = await client.get_workflow("long-nap").create_run()
    await run.start(input_data={"value": 1})
    workflow = client.get_workflow("long-nap")
    async with asyncio.timeout(5):
        while (await workflow.run_execution_result(run.run_id)).status is not RunStatus.WAITING:
            await asyncio.sleep(0.02)
    began = time.monotonic()
    canceled = await run.cancel()
    assert time.monotonic() - began < 2
    assert canceled.status is RunStatus.CANCELED
    assert records(canceled) == {"sleep_1": ("canceled", None)}


async def test_a_sleep_spans_a_server_restart_and_wakes_on_time(serving: Any, tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    async with serving(db, workflows=flows.WORKFLOWS) as served, Client(served.address) as first:
        run = await first.get_workflow("restart-nap").create_run()
        started = await run.start(input_data={"value": 4})
        async with asyncio.timeout(5):
            while (await first.get_workflow("restart-nap").run_execution_result(run.run_id)).wake_at is None:
                await asyncio.sleep(0.02)
    async with serving(db, workflows=flows.WORKFLOWS) as served, Client(served.address) as second:
        workflow = second.get_workflow("restart-nap")
        async with asyncio.timeout(10):
            while (result := await workflow.run_execution_result(run.run_id)).status is not RunStatus.SUCCESS:
                await asyncio.sleep(0.05)
    assert result.result == {"value": 8}
    nap = next(s for s in result.steps if s.path == ("sleep_1",))
    assert nap.wake_at is not None and nap.ended_at is not None and started.started_at is not None
    assert nap.wake_at == pytest.approx(started.started_at + 1.5, abs=0.5)
    assert nap.wake_at <= nap.ended_at < nap.wake_at + 1.0


# -- nested workflows ----------------------------------------------------------------------------------------


async def test_nested_three_levels_suspended_and_resumed_by_path(client: Client) -> None:
    run = await client.get_workflow("outer").create_run()
    state = await run.start_async(input_data={"value": 1})
    assert state.status is RunStatus.SUSPENDED
    assert state.suspended == (("middle", "innermost", "approve"),)
    assert records(state)["middle.innermost.double"] == ("success", {"value": 4})
    assert records(state)["middle"][0] == "suspended"
    done = await run.resume_async(step=["middle", "innermost", "approve"], resume_data={"approved": True})
    assert done.status is RunStatus.SUCCESS
    assert done.result == {"text": "approved"}
    assert records(done)["middle.innermost"] == ("success", {"approved": True, "note": ""})


async def test_nested_workflow_records_carry_the_inner_suspension_and_its_resume(client: Client) -> None:
    """As in Mastra: a nested workflow that suspends lends the suspend payload of the step
    suspended inside it to its own record and STEP_SUSPENDED event, and takes the resume
    (its time) so its record drops the suspension once it ends. Its record carried
    no payload, and kept `suspended_at` after the resume (audit)."""
    run = await client.get_workflow("outer").create_run()
    state = await run.start_async(input_data={"value": 1})
    inner = next(s for s in state.steps if s.path == ("middle", "innermost", "approve"))
    assert inner.suspend_payload is not None
    for path in (("middle",), ("middle", "innermost")):
        outer = next(s for s in state.steps if s.path == path)
        assert outer.status is StepStatus.SUSPENDED and outer.suspend_payload == inner.suspend_payload, path
    events = [e async for e in client.follow(run.run_id, until_settled=True)]
    told = [e.step for e in events if e.type is EventType.STEP_SUSPENDED and e.step is not None]
    assert [(s.path, s.suspend_payload) for s in told] == [
        (("middle", "innermost", "approve"), inner.suspend_payload),
        (("middle", "innermost"), inner.suspend_payload),
        (("middle",), inner.suspend_payload),
    ]
    done = await run.resume_async(step="middle.innermost.approve", resume_data={"approved": True})
    assert done.status is RunStatus.SUCCESS
    for each in (("middle",), ("middle", "innermost"), ("middle", "innermost", "approve")):
        ended = next(s for s in done.steps if s.path == each)
        assert ended.status is StepStatus.SUCCESS, each
        assert ended.resumed_at is not None, each
        assert (ended.suspend_payload, ended.suspended_at) == (None, None), each
    # The resume data itself is on the resumed step only: a copy on every level could outgrow a reply.
    approve = next(s for s in done.steps if s.path == ("middle", "innermost", "approve"))
    assert approve.resume_payload == {"approved": True, "note": ""}


async def test_nested_resumed_by_dotted_string_with_events_on_the_parent_stream(client: Client) -> None:
    run = await client.get_workflow("outer").create_run()
    first = [e async for e in run.stream(input_data={"value": 1})]
    assert kinds(first) == [
        ("workflow-start", ""),
        ("workflow-step-start", "middle"),
        ("workflow-step-start", "middle.add-one"),
        ("workflow-step-result", "middle.add-one"),
        ("workflow-step-start", "middle.innermost"),
        ("workflow-step-start", "middle.innermost.double"),
        ("workflow-step-result", "middle.innermost.double"),
        ("workflow-step-start", "middle.innermost.approve"),
        ("workflow-step-suspended", "middle.innermost.approve"),
        ("workflow-step-suspended", "middle.innermost"),
        ("workflow-step-suspended", "middle"),
        ("workflow-finish", ""),
    ]
    second = [
        e async for e in run.resume_stream(step="middle.innermost.approve", resume_data={"approved": False})
    ]
    assert second[-1].run_status is RunStatus.SUCCESS and second[-1].data == {"text": "rejected"}


async def test_naming_the_outer_step_resumes_its_single_suspended_inner_step(client: Client) -> None:
    run = await client.get_workflow("outer").create_run()
    await run.start_async(input_data={"value": 1})
    assert (await run.resume_async(step="middle", resume_data={"approved": True})).status is RunStatus.SUCCESS


async def test_nested_failure_is_reported_once(client: Client) -> None:
    result = await start(client, "nested-failure", {"value": 1})
    assert result.status is RunStatus.FAILED
    assert result.error is not None and result.error.message == "boom"
    inner = next(s for s in result.steps if s.path == ("nested-failing-inner", "broken"))
    outer = next(s for s in result.steps if s.path == ("nested-failing-inner",))
    assert inner.error == outer.error == result.error


async def test_every_construct_together(client: Client) -> None:
    result = await start(client, "everything", {"value": 1})
    assert result.status is RunStatus.SUCCESS
    # add-one 2 -> double 4 / triple 6 -> items [4, 6] * 10 -> first 40 -> dowhile stops at 80 -> branch
    assert result.result == {"triple-big": {"value": 240}, "add-even": {"value": 81}}


# -- the graph over the wire ----------------------------------------------------------------------


async def test_get_workflow_describes_every_construct(client: Client) -> None:
    details = await client.get_workflow("everything").details()
    assert details.description == "every construct in one graph"
    assert [node["type"] for node in details.step_graph] == [
        "step",
        "parallel",
        "map",
        "foreach",
        "map",
        "map",
        "loop",
        "conditional",
        "sleep",
    ]
    parallel = details.step_graph[1]
    assert [c["id"] for c in parallel["children"]] == ["double", "triple"]
    assert details.step_graph[3]["concurrency"] == 2
    assert details.step_graph[6]["loop_kind"] == "dowhile"
    assert details.step_graph[7]["conditions"] == ["is_big", "is_even"]
    assert details.step_graph[4]["map_config"] == {"first": {"step": "check-item", "path": "0"}}
    assert details.input_schema["properties"]["value"]["type"] == "integer"
    assert details.steps["check-item"].resume_schema["properties"]["approved"]["type"] == "boolean"

    nested = await client.get_workflow("outer").details()
    middle = nested.step_graph[0]
    assert middle["id"] == "middle"
    inner = middle["workflow"][1]
    assert inner["id"] == "innermost" and [n["id"] for n in inner["workflow"]] == ["double", "approve"]
    assert "middle.innermost.approve" in nested.steps
    assert nested.steps["middle.innermost"].is_workflow


async def test_resume_of_an_unknown_label_is_a_clear_error(client: Client) -> None:
    run = await client.get_workflow("approval").create_run()
    await run.start_async(input_data={"value": 1})
    with pytest.raises(errors.FailedPrecondition) as missing:
        await run.resume_async(label="nobody", resume_data={"approved": True})
    assert missing.value.reason == "RESUME_LABEL_NOT_FOUND"


async def test_bundled_order_fulfilment_example_uses_every_block(serving: Any, tmp_path: Path) -> None:
    from runservice.examples import WORKFLOWS

    async with serving(tmp_path / "ex.db", workflows=WORKFLOWS) as served, Client(served.address) as client:
        graph = (await client.get_workflow("order-fulfilment").details()).step_graph
        assert {"parallel", "foreach", "conditional", "loop"} <= {node["type"] for node in graph}
        run = await client.get_workflow("order-fulfilment").create_run()
        order = {"order_id": "A1", "items": ["tea", "mug", "spoon"], "express": False}
        result = await run.start_async(input_data=order)
    assert result.status is RunStatus.SUCCESS
    assert result.result == {"parcels": 3, "carrier": "standard", "attempts": 2}
    picked = next(s for s in result.steps if s.path == ("pick-item",))
    assert [i.output["item"] for i in picked.foreach_items] == ["tea", "mug", "spoon"]
