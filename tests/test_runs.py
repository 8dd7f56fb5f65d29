"""Run semantics through a real server: start, data flow, suspend/resume, errors, retries,
bail, cancel, claims, streams and watches."""

from __future__ import annotations

import asyncio
import datetime
import enum
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

import flows
import pytest
from conftest import ServingFactory, client_for
from pydantic import BaseModel, ConfigDict, Field

from runservice import errors
from runservice.client import Client, RunHandle
from runservice.model import (
    EventType,
    Run,
    RunStatus,
    StepStatus,
    evolve,
    new_call_id,
    time_ordered_id,
)
from runservice.storage import RunWrite
from runservice.workflow import SchemaViolation, StepContext, clone_step, create_step, create_workflow

client = client_for(flows.WORKFLOWS)


def step(run: Run, path: str) -> Any:
    return next(s for s in run.steps if ".".join(s.path) == path)


async def until(predicate: Any, limit: float = 5.0) -> None:
    async with asyncio.timeout(limit):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_start_and_wait_returns_result_and_step_records(client: Client) -> None:
    run = await client.get_workflow("pipeline").create_run()
    result = await run.start_async(input_data={"value": 1})

    assert result.status is RunStatus.SUCCESS
    assert result.result == {"text": "value is 4"}
    assert result.input == {"value": 1}
    assert [".".join(s.path) for s in result.steps] == ["add-one", "double", "to-text"]
    first, second = result.steps[0], result.steps[1]
    assert (first.payload, first.output, first.status) == ({"value": 1}, {"value": 2}, StepStatus.SUCCESS)
    assert second.payload == {"value": 2} and second.output == {"value": 4}
    assert first.started_at is not None and first.ended_at is not None
    assert first.started_at <= first.ended_at <= (second.started_at or 0)
    assert result.started_at and result.ended_at and result.trace_id


async def test_start_without_wait_then_poll(client: Client) -> None:
    workflow = client.get_workflow("napping")
    run = await workflow.create_run()
    started = await run.start(input_data={"value": 5})
    assert started.status in (RunStatus.RUNNING, RunStatus.WAITING)

    async with asyncio.timeout(5):
        while (polled := await workflow.run_execution_result(run.run_id)).status is not RunStatus.SUCCESS:
            assert polled.status in (RunStatus.RUNNING, RunStatus.WAITING)
            await asyncio.sleep(0.02)
    assert polled.result == {"value": 10}


async def test_suspend_then_resume_the_only_suspended_step(client: Client) -> None:
    run = await client.get_workflow("approval").create_run()
    suspended = await run.start_async(input_data={"value": 1})

    assert suspended.status is RunStatus.SUSPENDED
    assert suspended.suspended == (("approve",),)
    record = step(suspended, "approve")
    assert record.status is StepStatus.SUSPENDED
    assert record.suspend_payload == {"question": "approve 2?"}
    assert record.suspended_at is not None
    assert "manager" in suspended.resume_labels

    done = await run.resume_async(resume_data={"approved": True})
    assert done.status is RunStatus.SUCCESS
    assert done.result == {"text": "approved"}
    approved = step(done, "approve")
    assert approved.resume_payload == {"approved": True, "note": ""}
    assert approved.output == {"approved": True, "note": ""}
    # Mastra's newest engine: a resumed step that ends drops what its suspension left.
    assert (approved.suspend_payload, approved.suspended_at) == (None, None)
    assert approved.resumed_at is not None and approved.started_at == record.started_at
    assert flows.CALLS[f"{run.run_id}:add-one"] == 1
    assert flows.CALLS[f"{run.run_id}:finish"] == 1


async def test_suspend_output_and_call_ids(client: Client) -> None:
    """A value a body returns after it suspends is kept while it is suspended (Mastra's
    suspendOutput); each execution of a step has a call id of its own (Mastra's stepCallId),
    shared by its retries and by its start and outcome events."""
    run = await client.get_workflow("drafting").create_run()
    suspended = await run.start_async(input_data={"value": 3})
    record = step(suspended, "draft")
    assert record.status is StepStatus.SUSPENDED and record.attempt == 1  # the retry suspended
    assert (record.suspend_payload, record.suspend_output) == ({"review": 3}, {"draft": "text 3"})
    first_call = record.call_id
    assert len(first_call) == 32

    done = await run.resume_async(resume_data={"approved": True})
    final = step(done, "draft")
    assert final.output == {"final": True}
    assert (final.suspend_payload, final.suspend_output, final.suspended_at) == (None, None, None)
    assert final.call_id and final.call_id != first_call

    events = [e async for e in run.watch_events()]
    calls = [(e.type, e.step.call_id) for e in events if e.step is not None and e.step.path == ("draft",)]
    assert calls == [
        (EventType.STEP_START, first_call),
        (EventType.STEP_SUSPENDED, first_call),
        (EventType.STEP_START, final.call_id),
        (EventType.STEP_RESULT, final.call_id),
    ]


async def test_resume_by_named_step_and_by_label(client: Client) -> None:
    workflow = client.get_workflow("approval")
    by_name = await workflow.create_run()
    await by_name.start_async(input_data={"value": 1})
    assert (await by_name.resume_async(step="approve", resume_data={"approved": False})).result == {
        "text": "rejected"
    }

    by_label = await workflow.create_run()
    await by_label.start_async(input_data={"value": 1})
    assert (await by_label.resume_async(label="manager", resume_data={"approved": True})).status is (
        RunStatus.SUCCESS
    )


async def test_resume_errors_have_codes_and_reasons(client: Client) -> None:
    finished = await client.get_workflow("pipeline").create_run()
    await finished.start_async(input_data={"value": 1})
    with pytest.raises(errors.FailedPrecondition) as not_suspended:
        await finished.resume_async(resume_data={})
    assert not_suspended.value.reason == "RUN_NOT_SUSPENDED"
    assert not_suspended.value.metadata["status"] == "success"

    waiting = await client.get_workflow("approval").create_run()
    await waiting.start_async(input_data={"value": 1})
    with pytest.raises(errors.FailedPrecondition) as wrong_step:
        await waiting.resume_async(step="finish", resume_data={"approved": True})
    assert wrong_step.value.reason == "STEP_NOT_SUSPENDED"
    assert "approve" in wrong_step.value.message

    several = await client.get_workflow("two-questions").create_run()
    both = await several.start_async(input_data={"value": 1})
    assert set(both.suspended) == {("ask-a",), ("ask-b",)}
    with pytest.raises(errors.FailedPrecondition) as ambiguous:
        await several.resume_async(resume_data={"approved": True})
    assert ambiguous.value.reason == "MULTIPLE_SUSPENDED_STEPS"

    with pytest.raises(errors.NotFound) as missing:
        await client.get_workflow("approval").run_execution_result("no-such-run")
    assert missing.value.reason == "RUN_NOT_FOUND"


async def test_invalid_resume_data_leaves_the_run_resumable(client: Client) -> None:
    run = await client.get_workflow("approval").create_run()
    await run.start_async(input_data={"value": 1})
    with pytest.raises(errors.InvalidArgument) as invalid:
        await run.resume_async(resume_data={"approved": "maybe"})
    assert invalid.value.reason == "VALIDATION_FAILED"
    assert [v.field for v in invalid.value.violations] == ["resume_data.approved"]
    still = await client.get_workflow("approval").run_execution_result(run.run_id)
    assert still.status is RunStatus.SUSPENDED
    assert (await run.resume_async(resume_data={"approved": True})).status is RunStatus.SUCCESS


async def test_parallel_suspends_are_resumed_one_by_one(client: Client) -> None:
    run = await client.get_workflow("two-questions").create_run()
    await run.start_async(input_data={"value": 1})
    first = await run.resume_async(step="ask-a", resume_data={"approved": True})
    assert first.status is RunStatus.SUSPENDED
    assert first.suspended == (("ask-b",),)
    done = await run.resume_async(resume_data={"approved": False})
    assert done.status is RunStatus.SUCCESS
    assert done.result == {"ask-a": {"approved": True, "note": ""}, "ask-b": {"approved": False, "note": ""}}


async def test_invalid_input_is_rejected_and_the_run_stays_startable(client: Client) -> None:
    run = await client.get_workflow("pipeline").create_run()
    with pytest.raises(errors.InvalidArgument) as invalid:
        await run.start_async(input_data={"value": "not a number"})
    assert invalid.value.reason == "VALIDATION_FAILED"
    assert [v.field for v in invalid.value.violations] == ["input_data.value"]
    pending = await client.get_workflow("pipeline").run_execution_result(run.run_id)
    assert pending.status is RunStatus.PENDING
    assert (await run.start_async(input_data={"value": 2})).result == {"text": "value is 6"}


async def test_invalid_initial_state_is_rejected(client: Client) -> None:
    run = await client.get_workflow("stateful").create_run()
    with pytest.raises(errors.InvalidArgument) as invalid:
        await run.start_async(input_data={"value": 1}, initial_state={"total": "x"})
    assert [v.field for v in invalid.value.violations] == ["initial_state.total"]


async def test_step_input_validation_failure_fails_the_step(client: Client) -> None:
    run = await client.get_workflow("each-unchecked").create_run()
    result = await run.start_async(input_data=[{"value": "x"}])
    assert result.status is RunStatus.FAILED
    assert result.error is not None and result.error.name == "StepInputValidationError"


async def test_retries_use_the_attempt_index(client: Client) -> None:
    run = await client.get_workflow("retrying").create_run()
    result = await run.start_async(input_data={"value": 1})
    assert result.status is RunStatus.SUCCESS
    assert result.result == {"value": 2}
    assert step(result, "flaky").attempt == 2
    assert flows.CALLS[f"{run.run_id}:flaky"] == 3


async def test_failure_after_retries_is_a_structured_error(client: Client) -> None:
    run = await client.get_workflow("failing").create_run()
    result = await run.start_async(input_data={"value": 1})
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert (result.error.name, result.error.message) == ("ValueError", "boom")
    assert "Traceback" not in result.error.message
    assert flows.CALLS[f"{run.run_id}:broken"] == 3
    assert [".".join(s.path) for s in result.steps] == ["broken"]
    assert step(result, "broken").status is StepStatus.FAILED


async def test_a_refused_step_input_starts_the_step_and_fails_each_attempt(client: Client) -> None:
    """As in Mastra, which validates inside its retry loop: `workflow-step-start`, then the
    retries, then the failure (before, a lone step result with attempt 0 and no start)."""
    run = await client.get_workflow("refused-input").create_run()
    result = await run.start_async(input_data={"value": "x"})
    assert result.status is RunStatus.FAILED
    assert result.error is not None and result.error.name == "StepInputValidationError"
    record = step(result, "needs-value")
    assert (record.status, record.attempt, record.payload) == (StepStatus.FAILED, 2, {"value": "x"})
    assert flows.CALLS[f"{run.run_id}:needs-value"] == 0  # the body never ran
    events = [event async for event in client.follow(run.run_id, 0)]
    kinds = [event.type for event in events if event.step is not None and event.step.path == ("needs-value",)]
    assert kinds == [EventType.STEP_START, EventType.STEP_RESULT]


async def test_a_refused_foreach_item_fails_each_attempt_as_a_step_does(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """Mastra runs each item through the step's retry loop, which validates: the refused item
    is retried, then fails the foreach (before, it failed at once, with no retry)."""
    caplog.set_level(logging.WARNING, logger="runservice.engine.driver")
    run = await client.get_workflow("refused-item").create_run()
    result = await run.start_async(input_data=[{"value": 1}, {"value": "x"}])
    assert result.status is RunStatus.FAILED
    assert result.error is not None and result.error.name == "StepInputValidationError"
    record = step(result, "needs-value")
    refused = record.foreach_items[1]
    assert refused.status is StepStatus.FAILED
    assert refused.error is not None and refused.error.name == "StepInputValidationError"
    assert flows.CALLS[f"{run.run_id}:needs-value"] == 1  # the valid item's body alone
    attempts = [
        r.getMessage().rsplit(" attempt ", 1)[1]
        for r in caplog.records
        if run.run_id in r.getMessage() and " step needs-value attempt " in r.getMessage()
    ]
    assert attempts == ["0 failed; retrying", "1 failed; retrying", "2 failed"]


async def test_a_failed_attempts_state_changes_are_dropped(client: Client) -> None:
    """As in Mastra, each attempt starts from the state the step started with, and only an
    attempt that did not fail changes the run state: a failed attempt's set_state reached its
    retry, and a failed parallel branch's the steps after the block."""
    retried = await (await client.get_workflow("retried-state").create_run()).start_async()
    assert retried.status is RunStatus.SUCCESS
    assert retried.result == {"n": 1, "log": ["attempt1"]}
    assert step(retried, "note-then-fail").output == {"n": 1, "log": ["attempt1"]}

    branch = await (await client.get_workflow("failed-branch-state").create_run()).start_async()
    assert branch.status is RunStatus.SUCCESS
    assert branch.result == {"kept": True}
    assert step(branch, "doomed-branch").status is StepStatus.FAILED


async def test_a_run_an_earlier_version_stored_past_its_limit_goes_on(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """Before its records were counted on a resume, a run could be stored past its 6 MiB;
    counted now, every step it has left failed, a question's answer too (review). Such a
    run goes on as it did, counted from the resume (a run within its limit is counted whole:
    `test_what_a_run_stored_before_a_resume_counts_against_its_limit`)."""
    workflow = create_workflow("legacy")
    for index in range(5):
        workflow = workflow.then(_blob_step(f"before-{index}"))
    workflow = workflow.then(question).then(_blob_step("after"))
    async with (
        serving(tmp_path / "runs.db", workflows=[workflow.commit()]) as served,
        Client(served.address, timeout=60) as client,
    ):
        run = await client.get_workflow("legacy").create_run()
        assert (await run.start_async({})).status is RunStatus.SUSPENDED
        stored = await served.store.get_run(run.run_id, steps=True)
        assert stored is not None
        # As an earlier version could leave it: 6.5 MB of outputs before the question.
        grown = tuple(
            evolve(record, output={"blob": "x" * 1_300_000})
            for record in stored.steps
            if record.path[0].startswith("before-")
        )
        assert (await served.store.write(RunWrite(run.run_id, steps=grown))).applied
        done = await run.resume_async({})
    assert done.status is RunStatus.SUCCESS, done.error
    assert [s.status for s in done.steps][-2:] == [StepStatus.SUCCESS, StepStatus.SUCCESS]


@create_step("note-context")
async def note_context(ctx: StepContext) -> Any:
    ctx.request_context["note"] = "c" * 60_000  # within its 64 KiB, and part of the run
    return {"noted": True}


@create_step("note-too-much")
async def note_too_much(ctx: StepContext) -> Any:
    ctx.request_context["note"] = "c" * 70_000  # past the context's 64 KiB
    return {"noted": True}


async def test_a_request_context_a_body_grew_counts_and_is_limited_in_a_foreach_too(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """The run's 6 MiB counted the request context as it was when the drive began, so a
    body's 60 KB went uncounted and the run was stored past its limit; and a foreach item's
    body could take the context past its 64 KiB, checked only for steps (review)."""
    grown = create_workflow("grown").then(note_context)
    for index in range(6):  # 6 x 1.04 MB fit the 6 MiB alone, not with the 60 KB context
        grown = grown.then(_blob_step(f"big-{index}", 1_040_000))
    items = create_workflow("context-items").foreach(note_too_much)
    async with (
        serving(tmp_path / "runs.db", workflows=[grown.commit(), items.commit()]) as served,
        Client(served.address, timeout=60) as client,
    ):
        ended = await (await client.get_workflow("grown").create_run()).start_async({})
        handle = client.get_workflow("context-items")
        run = await handle.create_run()
        each = await run.start_async([1, 2])
        read = await handle.run_execution_result(run.run_id)
    assert ended.status is RunStatus.FAILED and ended.error is not None
    assert ended.error.name == "PayloadTooLarge" and "run" in ended.error.message
    assert [s.path for s in ended.steps if s.status is StepStatus.FAILED] == [("big-5",)]
    assert each.status is RunStatus.FAILED and each.error is not None
    assert (each.error.details or {}).get("field") == "request_context"
    assert "note" not in (read.request_context or {})  # the change went back, as for a step


@create_step("gives-a-list")
async def gives_a_list(ctx: StepContext) -> Any:
    ctx.set_state({"log": ["kept"]})
    return {"a": [1]}


@create_step("changes-in-place")
async def changes_in_place(ctx: StepContext) -> Any:
    ctx.input_data["a"].append("input")
    earlier: Any = ctx.get_step_result("gives-a-list")
    earlier["a"].append("result")
    ctx.get_init_data()["items"].append("init")
    ctx.state["log"].append("x" * 400_000)  # set_state is the way; in place, past 1 MiB in three
    return {"a": [1]}


@create_step("asks-in-place")
async def asks_in_place(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        await ctx.suspend({"asked": ["why"]})
        return None
    ctx.resume_data["answers"].append("changed")
    ctx.suspend_data["asked"].append("changed")
    return {"done": True}


async def test_what_a_body_changes_in_place_is_its_own_copy(serving: ServingFactory, tmp_path: Path) -> None:
    """A body was handed what the engine holds, not a copy: changing its input in place
    changed the earlier step's record in memory, so the Start's reply showed an output the
    store never had (a reply a later read contradicts); `ctx.state` changed in place went past
    `set_state` and its 1 MiB (1.8 MB of state stored); a resume payload changed in place
    showed in the reply only. Each is the body's own copy now: the run, as replied and as
    read, holds what was recorded."""
    workflow = (
        create_workflow("in-place")
        .then(gives_a_list)
        .then(changes_in_place)
        .then(clone_step(changes_in_place, id="again"))
        .then(clone_step(changes_in_place, id="and-again"))
        .then(asks_in_place)
        .commit()
    )
    async with (
        serving(tmp_path / "runs.db", workflows=[workflow]) as served,
        Client(served.address, timeout=60) as client,
    ):
        handle = client.get_workflow("in-place")
        run = await handle.create_run()
        asked = await run.start_async({"items": []}, include_state=True)
        assert asked.status is RunStatus.SUSPENDED
        done = await run.resume_async({"answers": ["yes"]}, include_state=True)
        read = await handle.run_execution_result(run.run_id, include_state=True)
    assert done.status is RunStatus.SUCCESS, done.error
    for seen in (asked, done, read):
        assert step(seen, "gives-a-list").output == {"a": [1]}
        for name in ("changes-in-place", "again", "and-again"):
            assert step(seen, name).payload == step(seen, name).output == {"a": [1]}
        assert seen.input == {"items": []}
        assert seen.state == {"log": ["kept"]}
    assert step(asked, "asks-in-place").suspend_payload == {"asked": ["why"]}
    for seen in (done, read):
        assert step(seen, "asks-in-place").resume_payload == {"answers": ["yes"]}
    assert done.steps == read.steps


@create_step("starts-a-list")
async def starts_a_list(ctx: StepContext) -> Any:
    ctx.request_context["seen"] = []
    return {}


@create_step("grows-the-list")
async def grows_the_list(ctx: StepContext) -> Any:
    ctx.request_context["seen"].append("c" * 70_000)  # in place, past the context's 64 KiB
    return {}


async def test_a_request_context_grown_in_place_is_limited(serving: ServingFactory, tmp_path: Path) -> None:
    """What was staged of the request context was a shallow copy, so a body that grew a list
    of it in place changed the copy too: the change went unseen, unchecked against the
    context's 64 KiB, and was stored whole when the run settled."""
    workflow = create_workflow("grown-in-place").then(starts_a_list).then(grows_the_list).commit()
    async with (
        serving(tmp_path / "runs.db", workflows=[workflow]) as served,
        Client(served.address, timeout=60) as client,
    ):
        handle = client.get_workflow("grown-in-place")
        run = await handle.create_run()
        ended = await run.start_async({})
        read = await handle.run_execution_result(run.run_id)
    assert ended.status is RunStatus.FAILED and ended.error is not None
    assert (ended.error.details or {}).get("field") == "request_context"
    assert read.request_context == {"seen": []}  # the change went back, as for a step


def _state_setter(step_id: str, key: str, *, fallback: bool = False) -> Any:
    @create_step(step_id, retries=1 if fallback else 0)
    async def set_big(ctx: StepContext) -> Any:
        try:
            ctx.set_state({key: "s" * 600_000})  # fits the state of now (1 MiB)
        except errors.PayloadTooLarge:
            ctx.set_state({key: "small"})  # a retry sees the sibling's state: no room
            return {"set": "small"}
        await asyncio.sleep(0.2)  # the sibling sets its own meanwhile
        return {"set": key}

    return set_big


async def test_parallel_branches_that_each_fit_the_state_limit_do_not_pass_it_together(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """Each branch's set_state was measured against the run state of then: two branches of
    0.6 MB each fit alone and merged into 1.2 MB, past the 1 MiB limit (review). The second
    to end has its attempt fail with PayloadTooLarge, its change not merged; it is retried
    as a set_state refused in the body is, and a retry sees the state with its sibling's."""
    workflows = [
        create_workflow("two-big").parallel([_state_setter("a", "a"), _state_setter("b", "b")]).commit(),
        create_workflow("two-big-retried")
        .parallel([_state_setter("a", "a", fallback=True), _state_setter("b", "b", fallback=True)])
        .commit(),
    ]
    async with (
        serving(tmp_path / "runs.db", workflows=workflows) as served,
        Client(served.address, timeout=30) as client,
    ):
        handle = client.get_workflow("two-big")
        run = await handle.create_run()
        ended = await run.start_async({})
        read = await handle.run_execution_result(run.run_id, include_state=True)
        retried_handle = client.get_workflow("two-big-retried")
        retried_run = await retried_handle.create_run()
        retried = await retried_run.start_async({})
        retried_read = await retried_handle.run_execution_result(retried_run.run_id, include_state=True)
    assert ended.status is RunStatus.FAILED
    outcomes = sorted((s.path, s.status) for s in read.steps)
    assert outcomes in (
        [(("a",), StepStatus.SUCCESS), (("b",), StepStatus.FAILED)],
        [(("a",), StepStatus.FAILED), (("b",), StepStatus.SUCCESS)],
    )
    failed = next(s for s in read.steps if s.status is StepStatus.FAILED)
    assert failed.error is not None and failed.error.name == "PayloadTooLarge"
    details = failed.error.details or {}
    assert (details.get("field"), details.get("limit")) == ("state", str(1 << 20))
    assert isinstance(read.state, dict) and len(read.state) == 1  # only the first to end merged

    assert retried.status is RunStatus.SUCCESS, retried.error
    assert sorted(s.attempt for s in retried_read.steps) == [0, 1]  # the second to end retried
    assert isinstance(retried_read.state, dict)
    assert sorted(len(value) for value in retried_read.state.values()) == [len("small"), 600_000]


async def test_a_cancel_during_a_retry_delay_records_the_attempt_that_ran(client: Client) -> None:
    run = await client.get_workflow("delayed-retries").create_run()
    await run.start()
    await until(lambda: flows.CALLS[f"{run.run_id}:always-fails-slowly"] == 1)
    await asyncio.sleep(0.1)  # into the 5 s delay before the second attempt
    canceled = await run.cancel()
    assert canceled.status is RunStatus.CANCELED
    record = step(canceled, "always-fails-slowly")
    # The attempt index was counted up before the delay: the record named an attempt that never ran.
    assert (record.status, record.attempt) == (StepStatus.CANCELED, 0)
    assert flows.CALLS[f"{run.run_id}:always-fails-slowly"] == 1


bodies_run: list[int] = []


@create_step("hundred-k")
async def hundred_k(ctx: StepContext) -> Any:
    bodies_run.append(ctx.input_data)
    return {"blob": "x" * 100_000}


async def test_a_foreach_stops_once_its_output_is_past_the_limit(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """A foreach's output is the list of its items' outputs, limited to 1 MiB as any step's.
    Every item ran and was stored before the list was measured and refused (review: 20 items
    of 100 KB, 2 MB stored for a step that failed). The items stop with the batch that takes
    the list past the limit, and the step fails as it did."""
    bodies_run.clear()
    workflow = create_workflow("wide-each").foreach(hundred_k, concurrency=2).commit()
    async with (
        serving(tmp_path / "runs.db", workflows=[workflow]) as served,
        Client(served.address, timeout=60) as client,
    ):
        run = await client.get_workflow("wide-each").create_run()
        ended = await run.start_async(list(range(20)))
    assert ended.status is RunStatus.FAILED and ended.error is not None
    assert ended.error.name == "PayloadTooLarge"
    assert (ended.error.details or {}).get("field") == "steps.hundred-k.output"
    # 11 outputs of 100 KB pass 1 MiB: the batch of two that holds the 11th is the last.
    assert sorted(bodies_run) == list(range(12))
    record = step(ended, "hundred-k")
    assert record.status is StepStatus.FAILED and len(record.foreach_items) == 12


async def test_a_canceled_foreach_shows_no_item_suspended(client: Client) -> None:
    run = await client.get_workflow("each").create_run()
    suspended = await run.start_async(input_data=[{"value": -1}, {"value": 2}, {"value": -3}])
    assert suspended.status is RunStatus.SUSPENDED
    canceled = await run.cancel()
    again = await client.get_workflow("each").run_execution_result(run.run_id)
    for read in (canceled, again):
        items = step(read, "check-item").foreach_items
        # The first batch of two: item 0 suspended (canceled now), item 1 done; 2 never began.
        assert [(i.index, i.status) for i in items] == [(0, StepStatus.CANCELED), (1, StepStatus.SUCCESS)]


async def test_bail_ends_the_run_successfully(client: Client) -> None:
    run = await client.get_workflow("bailing").create_run()
    result = await run.start_async(input_data={"value": 11})
    assert result.status is RunStatus.SUCCESS
    assert result.result == {"bailed": True, "value": 11}
    assert [".".join(s.path) for s in result.steps] == ["early-exit"]


async def test_cancel_stops_the_running_step(client: Client) -> None:
    run = await client.get_workflow("sluggish").create_run()
    await run.start(input_data={"value": 1})
    await until(lambda: flows.CLEANUPS.get(run.run_id) == "started")

    canceled = await run.cancel()
    assert canceled.status is RunStatus.CANCELED
    assert flows.CLEANUPS[run.run_id] == "finally"
    assert step(canceled, "slow").status is StepStatus.CANCELED
    assert [".".join(s.path) for s in canceled.steps] == ["add-one", "slow"]
    again = await client.get_workflow("sluggish").run_execution_result(run.run_id)
    assert again.status is RunStatus.CANCELED


async def test_cancel_a_suspended_run_and_a_finished_one(client: Client) -> None:
    suspended = await client.get_workflow("approval").create_run()
    await suspended.start_async(input_data={"value": 1})
    canceled = await suspended.cancel()
    assert canceled.status is RunStatus.CANCELED
    assert canceled.suspended == ()
    with pytest.raises(errors.FailedPrecondition):
        await suspended.resume_async(resume_data={"approved": True})

    finished = await client.get_workflow("pipeline").create_run()
    done = await finished.start_async(input_data={"value": 1})
    unchanged = await finished.cancel()
    assert unchanged.status is RunStatus.SUCCESS
    assert unchanged.result == done.result
    assert unchanged.last_sequence == done.last_sequence


async def test_runs_started_without_an_id_get_time_ordered_uuid7_ids(client: Client) -> None:
    workflow = client.get_workflow("pipeline")
    before = time.time()
    first = await workflow.create_run()
    await asyncio.sleep(0.002)  # the next id falls in a later millisecond
    second = (await workflow.create_run()).run_id
    after = time.time()
    ids = [uuid.UUID(first.run_id), uuid.UUID(second)]
    assert [(i.version, i.variant) for i in ids] == [(7, uuid.RFC_4122)] * 2
    assert all(int(before * 1000) <= i.int >> 80 <= int(after * 1000) + 1 for i in ids)
    assert first.run_id < second  # the text sorts as the time does
    # 74 random bits after the millisecond: ids drawn in the same millisecond differ.
    drawn = [time_ordered_id() for _ in range(10_000)]
    assert len(set(drawn)) == len(drawn)


def test_a_process_forked_from_the_server_draws_other_ids() -> None:
    """Ids come from one urandom-seeded generator (a urandom call each costs a GIL hand-off
    under load); a child forked by a step's multiprocessing must not draw its parent's ids."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        os.write(write, f"{time_ordered_id()} {new_call_id()}".encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        run_id, call_id = pipe.read().split()
    assert os.waitpid(child, 0)[1] == 0
    # The last 12 hex digits of a run id are random bits alone.
    assert run_id[-12:] != time_ordered_id()[-12:] and call_id != new_call_id()
    assert len(call_id) == 32 and int(call_id, 16) >= 0


async def test_a_start_without_a_run_id_gets_a_time_ordered_one_unless_a_request_id_names_it(
    client: Client,
) -> None:
    """The clients retry with a random request id of their own; had the server derived the
    run's id from it, ids would be random (README, "Run ids"). A request id the caller chose
    still names the run, in any process that sends it again."""
    unnamed = RunHandle(client, "pipeline", "")
    done = await unnamed.start_async(input_data={"value": 1})
    assert uuid.UUID(done.run_id).version == 7 and unnamed.run_id == done.run_id
    assert (await unnamed.cancel()).run_id == done.run_id  # the handle now names its run

    keyed = [RunHandle(client, "pipeline", "") for _ in range(2)]
    runs = [await handle.start(input_data={"value": 1}, request_id="start-key-1") for handle in keyed]
    assert runs[0].run_id == runs[1].run_id and uuid.UUID(runs[0].run_id).version == 5
    assert [handle.run_id for handle in keyed] == [runs[0].run_id] * 2


async def test_a_second_start_is_refused_unless_it_repeats_the_request_id(client: Client) -> None:
    run = await client.get_workflow("pipeline").create_run()
    first = await run.start_async(input_data={"value": 1}, request_id="req-1")
    with pytest.raises(errors.AlreadyExists) as again:
        await run.start_async(input_data={"value": 1})
    assert again.value.reason == "RUN_ALREADY_STARTED"
    repeated = await run.start_async(input_data={"value": 1}, request_id="req-1")
    assert repeated.status is RunStatus.SUCCESS and repeated.result == first.result
    # The request id with other input is not a retry: answering with the first run would say
    # that input ran (AWS's client tokens and Stripe's idempotency keys refuse it too).
    with pytest.raises(errors.RequestIdReused) as reused:
        await run.start_async(input_data={"value": 2}, request_id="req-1")
    assert reused.value.reason == "REQUEST_ID_REUSED" and isinstance(reused.value, errors.AlreadyExists)
    assert reused.value.metadata == {"run_id": run.run_id, "request_id": "req-1", "field": "input_data"}
    # Nor is it with another workflow, naming the same run.
    other = RunHandle(client, "racing", run.run_id)
    with pytest.raises(errors.AlreadyExists) as elsewhere:
        await other.start_async(input_data={"value": 1}, request_id="req-1")
    assert elsewhere.value.reason == "RUN_ID_IN_USE"
    assert flows.CALLS[f"{run.run_id}:add-one"] == 1


async def test_a_start_reusing_its_request_id_with_another_field_is_refused_naming_it(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """A request id stands for the whole Start: one with the id of an earlier Start and another
    initial state, request context or timeout was answered with the first run, whose state,
    context and deadline were not the ones asked for (only the input was compared). The same
    request is still a retry, once the server restarted too, with or without `wait`."""
    sent: dict[str, Any] = {
        "input_data": {"value": 1},
        "initial_state": {"total": 10},
        "request_context": {"tenant": "t-1"},
        "run_timeout": 60.0,
    }
    other = {"initial_state": {"total": 20}, "request_context": {"tenant": "t-2"}, "run_timeout": 30.0}

    async def start(client: Client, **fields: Any) -> Run:
        return await RunHandle(client, "stateful", "").start(**{**sent, **fields}, request_id="k-1")

    db = tmp_path / "runs.db"
    async with serving(db, workflows=flows.WORKFLOWS) as served, Client(served.address) as client:
        first = await RunHandle(client, "stateful", "").start_async(**sent, request_id="k-1")
        assert first.status is RunStatus.SUCCESS and first.result["tenant"] == "t-1"
        for field, value in other.items():
            with pytest.raises(errors.RequestIdReused) as reused:
                await start(client, **{field: value})
            named = "timeout" if field == "run_timeout" else field  # StartRequest's name
            assert reused.value.metadata == {"run_id": first.run_id, "request_id": "k-1", "field": named}
    async with serving(db, workflows=flows.WORKFLOWS) as served, Client(served.address) as client:
        again = await start(client)
        assert (again.run_id, again.result, again.deadline) == (first.run_id, first.result, first.deadline)
        with pytest.raises(errors.RequestIdReused) as reused:
            await start(client, request_context={})
        assert reused.value.metadata["field"] == "request_context"
        runs, _ = await client.get_workflow("stateful").runs()
    assert [run.run_id for run in runs] == [first.run_id]


async def test_a_resume_reusing_its_request_id_with_another_field_is_refused_naming_it(
    client: Client,
) -> None:
    """A Resume's request id stands for the whole Resume: one that reused the id of an earlier
    one with other resume data (a caller that sent "approve" after "reject"), or another step,
    label, item or request context, was answered with the first outcome, and told that what it
    sent was done. The same request is still a retry, with or without `wait` or the state."""
    run = await client.get_workflow("approval").create_run()
    await run.start_async(input_data={"value": 1})
    sent: dict[str, Any] = {
        "resume_data": {"approved": False},
        "step": "approve",
        "request_context": {"tenant": "t-1"},
        "request_id": "rs-1",
    }
    first = await run.resume_async(**sent)
    assert first.result == {"text": "rejected"}
    again = await run.resume(**sent, include_state=True)
    assert (again.status, again.last_sequence, again.result) == (
        first.status,
        first.last_sequence,
        first.result,
    )
    for field, changed in (
        ("resume_data", {"approved": True}),
        ("step", None),
        ("label", "manager"),
        ("for_each_index", 0),
        ("request_context", {"tenant": "t-2"}),
        ("request_context", None),
    ):
        with pytest.raises(errors.RequestIdReused) as reused:
            await run.resume_async(**{**sent, field: changed})
        assert reused.value.metadata == {"run_id": run.run_id, "request_id": "rs-1", "field": field}
    assert flows.CALLS[f"{run.run_id}:approve"] == 2  # the suspension, and the resume once
    assert flows.CALLS[f"{run.run_id}:finish"] == 1


class Order(BaseModel):
    sku: str
    order_ref: str = Field(default_factory=lambda: uuid.uuid4().hex)  # differs at each validation


@create_step("place", input_schema=Order, output_schema=Order)
async def place(ctx: StepContext) -> Order:
    order: Order = ctx.input_data
    return order


STAMPED = create_workflow("stamped", input_schema=Order).then(place).commit()


async def test_a_retried_start_is_one_even_when_the_schema_fills_in_generated_defaults(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """The request id is compared with the input as sent, not as validated: a default the schema
    generates (a uuid, the time) differs at each validation, and a retry is still a retry
    (audit: such retries were refused as REQUEST_ID_REUSED)."""
    async with serving(tmp_path / "runs.db", workflows=[STAMPED]) as served, Client(served.address) as client:

        async def start(sku: str) -> Run:
            return await RunHandle(client, "stamped", "").start_async(
                input_data={"sku": sku}, request_id="o-7"
            )

        first = await start("A1")
        again = await start("A1")
        assert again.run_id == first.run_id and again.result == first.result
        with pytest.raises(errors.RequestIdReused):
            await start("B2")


class Colour(enum.Enum):
    RED = "red"


class StrictOrder(BaseModel):
    """Strict, as zod's schemas are: no "yes" for a bool, no "3" for an int."""

    model_config = ConfigDict(strict=True)
    count: int
    colour: Colour
    due: datetime.datetime


class StrictApproval(BaseModel):
    model_config = ConfigDict(strict=True)
    approved: bool


@create_step("hold", input_schema=StrictOrder, resume_schema=StrictApproval, suspend_schema=StrictOrder)
async def hold(ctx: StepContext) -> Any:
    order: StrictOrder = ctx.input_data
    if ctx.resume_data is None:
        await ctx.suspend(order)  # the model itself: validated as the JSON it becomes
        return None
    return {"approved": ctx.resume_data.approved, "due": order.due.isoformat(), "colour": order.colour.value}


STRICT = create_workflow("strict", input_schema=StrictOrder).then(hold).commit()


async def test_a_strict_schema_refuses_what_lax_pydantic_converts_and_takes_json_for_other_types(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """Data is validated as the JSON document it is, so a strict schema works: before, it was
    validated as Python objects, where a strict schema refuses an ISO string for a datetime and
    a value for an Enum (every start failed), and the only schemas that could be used converted
    `"yes"` to true and `"3"` to 3 where zod, and so Mastra, refuses them (differential audit)."""
    order = {"count": 3, "colour": "red", "due": "2026-12-01T09:00:00Z"}
    async with serving(tmp_path / "runs.db", workflows=[STRICT]) as served, Client(served.address) as client:
        run = await client.get_workflow("strict").create_run()
        with pytest.raises(errors.InvalidArgument) as refused:
            await run.start_async(input_data={**order, "count": "3"})
        assert [v.field for v in refused.value.violations] == ["input_data.count"]
        suspended = await run.start_async(input_data=order)
        assert suspended.status is RunStatus.SUSPENDED, suspended.error
        (record,) = suspended.steps
        assert record.suspend_payload == {"count": 3, "colour": "red", "due": "2026-12-01T09:00:00Z"}
        with pytest.raises(errors.InvalidArgument) as invalid:
            await run.resume_async(resume_data={"approved": "yes"})
        assert [v.field for v in invalid.value.violations] == ["resume_data.approved"]
        still = await client.get_workflow("strict").run_execution_result(run.run_id)
        assert still.status is RunStatus.SUSPENDED
        done = await run.resume_async(resume_data={"approved": True})
        assert done.status is RunStatus.SUCCESS, done.error
        assert done.result == {"approved": True, "due": "2026-12-01T09:00:00+00:00", "colour": "red"}


class Prompt(BaseModel):
    """A suspend schema whose JSON form is not its input form: a field left out of it."""

    question: str
    internal_note: str = Field(exclude=True)


class Stamp(BaseModel):
    at: datetime.datetime | str


@create_step("prompts", suspend_schema=Prompt)
async def prompts(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        await ctx.suspend(Prompt(question="ok?", internal_note="for the body alone"))
        return None
    return {"resumed": True}


@create_step("stamps", input_schema=Stamp)
async def stamps(ctx: StepContext) -> Any:
    return {"type": type(ctx.input_data.at).__name__}


LAX = [
    create_workflow("prompting").then(prompts).commit(),
    create_workflow("stamping").then(stamps).commit(),
]


async def test_lax_schemas_validate_python_data_as_pydantic_does(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """A schema a Python value passes is not asked about its JSON form: a body's own model
    instance suspends, though its JSON leaves out a required field, and a union keeps a string a
    string (review: validating every value as JSON refused the first and made the second a
    datetime)."""
    async with serving(tmp_path / "runs.db", workflows=LAX) as served, Client(served.address) as client:
        suspended = await (await client.get_workflow("prompting").create_run()).start_async(input_data={})
        assert suspended.status is RunStatus.SUSPENDED, suspended.error
        assert suspended.steps[0].suspend_payload == {"question": "ok?"}
        stamped = await (await client.get_workflow("stamping").create_run()).start_async(
            input_data={"at": "2026-01-02T00:00:00"}
        )
        assert stamped.result == {"type": "str"}


async def test_concurrent_starts_run_the_steps_once(client: Client) -> None:
    run = await client.get_workflow("pipeline").create_run()
    outcomes = await asyncio.gather(
        *(run.start_async(input_data={"value": 1}) for _ in range(5)), return_exceptions=True
    )
    assert sum(isinstance(o, Run) for o in outcomes) == 1
    assert all(isinstance(o, errors.AlreadyExists) for o in outcomes if not isinstance(o, Run))
    assert flows.CALLS[f"{run.run_id}:add-one"] == 1


async def test_concurrent_resumes_run_the_rest_once(client: Client) -> None:
    run = await client.get_workflow("racing").create_run()
    await run.start_async(input_data={"value": 1})
    outcomes = await asyncio.gather(
        *(run.resume_async(resume_data={"approved": True}) for _ in range(6)), return_exceptions=True
    )
    winners = [o for o in outcomes if isinstance(o, Run)]
    assert len(winners) == 1 and winners[0].status is RunStatus.SUCCESS
    losers = [o for o in outcomes if not isinstance(o, Run)]
    assert all(isinstance(o, errors.FailedPrecondition) and o.reason == "RUN_NOT_SUSPENDED" for o in losers)
    assert flows.CALLS[f"{run.run_id}:tail"] == 1
    assert flows.CALLS[f"{run.run_id}:approve"] == 2  # the first run and the one resume


async def test_state_writer_and_request_context(client: Client) -> None:
    run = await client.get_workflow("stateful").create_run(resource_id="user-7")
    events = [e async for e in run.stream(input_data={"value": 5}, request_context={"tenant": "acme"})]
    outputs = [e.data for e in events if e.type is EventType.STEP_OUTPUT]
    assert outputs == [{"progress": "half"}, {"progress": "done"}]
    result = await client.get_workflow("stateful").run_execution_result(run.run_id, include_state=True)
    assert result.result == {
        "state": {"seen": ["remember"], "total": 5},
        "tenant": "acme",
        "first": {"value": 5},
        "init": {"value": 5},
        "resource": "user-7",
        "workflow": "stateful",
    }
    assert result.state == {"seen": ["remember"], "total": 5}
    assert result.resource_id == "user-7"


async def test_a_merged_request_context_is_held_to_its_limit(client: Client) -> None:
    """Each part within 64 KiB, the stored context and a Resume's, TimeTravel's or ForkRun's
    added up past it: a run grew by 60 KiB per TimeTravel until it failed and could no longer
    be read whole (audit). Now the call is refused and changes nothing."""
    stored = {"first": "a" * 40_000}
    more = {"second": "b" * 40_000}
    run = await client.get_workflow("approval").create_run()
    suspended = await run.start_async(input_data={"value": 1}, request_context=stored)
    assert suspended.status is RunStatus.SUSPENDED
    with pytest.raises(errors.PayloadTooLarge) as refused:
        await run.resume_async(resume_data={"approved": True}, request_context=more)
    assert refused.value.metadata["field"] == "request_context"
    after = await client.get_workflow("approval").run_execution_result(run.run_id)
    assert after.status is RunStatus.SUSPENDED and after.last_sequence == suspended.last_sequence
    done = await run.resume_async(resume_data={"approved": True}, request_context={"small": 1})
    assert done.status is RunStatus.SUCCESS
    with pytest.raises(errors.PayloadTooLarge):
        await run.time_travel("finish", request_context=more, wait=True)
    with pytest.raises(errors.PayloadTooLarge):
        await run.fork("finish", request_context=more, new_run_id=f"fork-{run.run_id}", wait=True)
    with pytest.raises(errors.RunNotFound):
        await client.get_workflow("approval").run_execution_result(f"fork-{run.run_id}")
    unchanged = await client.get_workflow("approval").run_execution_result(run.run_id)
    assert unchanged.last_sequence == done.last_sequence
    again = await run.time_travel("finish", request_context={"small": 2}, wait=True)
    assert again.status is RunStatus.SUCCESS


def kinds(events: list[Any]) -> list[tuple[str, str]]:
    return [(e.type.value, ".".join(e.step_path)) for e in events]


async def test_stream_events_for_success(client: Client) -> None:
    run = await client.get_workflow("pipeline").create_run()
    events = [e async for e in run.stream(input_data={"value": 1})]
    assert kinds(events) == [
        ("workflow-start", ""),
        ("workflow-step-start", "add-one"),
        ("workflow-step-result", "add-one"),
        ("workflow-step-start", "double"),
        ("workflow-step-result", "double"),
        ("workflow-step-start", "to-text"),
        ("workflow-step-result", "to-text"),
        ("workflow-finish", ""),
    ]
    assert [e.sequence for e in events] == list(range(1, 9))
    assert events[-1].run_status is RunStatus.SUCCESS and events[-1].data == {"text": "value is 4"}
    assert events[2].step is not None and events[2].step.output == {"value": 2}


async def test_stream_events_for_suspend_and_resume(client: Client) -> None:
    run = await client.get_workflow("approval").create_run()
    first = [e async for e in run.stream(input_data={"value": 1})]
    assert kinds(first)[-3:] == [
        ("workflow-step-start", "approve"),
        ("workflow-step-suspended", "approve"),
        ("workflow-finish", ""),
    ]
    assert first[-1].run_status is RunStatus.SUSPENDED
    assert first[-2].step is not None and first[-2].step.suspend_payload == {"question": "approve 2?"}

    second = [e async for e in run.resume_stream(resume_data={"approved": True})]
    assert kinds(second) == [
        ("workflow-start", ""),
        ("workflow-step-start", "approve"),
        ("workflow-step-result", "approve"),
        ("workflow-step-start", "finish"),
        ("workflow-step-result", "finish"),
        ("workflow-finish", ""),
    ]
    assert second[0].sequence == first[-1].sequence + 1
    assert second[1].step is not None and second[1].step.resume_payload == {"approved": True, "note": ""}


async def test_a_retried_stream_sends_its_execution_from_the_start(client: Client) -> None:
    """A Stream retried with its request id (README: after a broken stream) sends the events of
    the execution it started or resumed, from that execution's first event, as the first try
    did: the events a retry sends are the same. Before, it followed from the run's last event
    as the retry found it, so once the run had settled a retry got only WORKFLOW_FINISH, and
    mid-run it began half-way with no sign of what it missed (audit)."""
    run = await client.get_workflow("approval").create_run()
    first = [(e.sequence, e.type) async for e in run.stream(input_data={"value": 1}, request_id="s-1")]
    again = [(e.sequence, e.type) async for e in run.stream(input_data={"value": 1}, request_id="s-1")]
    assert again == first and first[0] == (1, EventType.WORKFLOW_START)

    resumed = [
        (e.sequence, e.type)
        async for e in run.resume_stream(resume_data={"approved": True}, request_id="r-1")
    ]
    retried = [
        (e.sequence, e.type)
        async for e in run.resume_stream(resume_data={"approved": True}, request_id="r-1")
    ]
    assert retried == resumed and resumed[0] == (first[-1][0] + 1, EventType.WORKFLOW_START)
    assert resumed[-1][1] is EventType.WORKFLOW_FINISH


async def test_stream_events_for_failure(client: Client) -> None:
    run = await client.get_workflow("parallel-fail").create_run()
    events = [e async for e in run.stream(input_data={"value": 1})]
    assert kinds(events)[:3] == [
        ("workflow-start", ""),
        ("workflow-step-start", "double"),
        ("workflow-step-start", "fails-fast"),
    ]
    failed = [
        e for e in events if e.type is EventType.STEP_RESULT and e.step and e.step.status is StepStatus.FAILED
    ]
    assert [".".join(e.step_path) for e in failed] == ["fails-fast"]
    assert events[-1].type is EventType.WORKFLOW_FINISH
    assert events[-1].run_status is RunStatus.FAILED
    assert events[-1].error is not None and events[-1].error.message == "branch failed"


async def test_watch_follows_across_suspend_and_resume(client: Client) -> None:
    run = await client.get_workflow("approval").create_run()
    seen: list[Any] = []
    finished = asyncio.Event()

    def collect(event: Any) -> None:
        seen.append(event)
        if event.type is EventType.WORKFLOW_FINISH and event.run_status.terminal:
            finished.set()

    unwatch = run.watch(collect)
    try:
        await run.start_async(input_data={"value": 1})
        await until(lambda: any(e.run_status is RunStatus.SUSPENDED for e in seen))
        await run.resume_async(resume_data={"approved": True})
        async with asyncio.timeout(5):
            await finished.wait()
    finally:
        unwatch()
    assert [e.sequence for e in seen] == list(range(1, len(seen) + 1))
    stored = await client.get_workflow("approval").run_execution_result(run.run_id)
    assert seen[-1].sequence == stored.last_sequence

    later = [e async for e in run.watch_events(after_sequence=5)]
    assert [e.sequence for e in later] == list(range(6, stored.last_sequence + 1))
    assert [e.sequence for e in later] == [e.sequence for e in seen[5:]]


async def test_a_wait_timeout_bounds_start_async_and_the_run_goes_on(client: Client) -> None:
    """`start_async(wait_timeout=)`: the wait ends with errors.DeadlineExceeded (a TimeoutError),
    the run goes on, and a retry with the same request id answers with that run."""
    run = await client.get_workflow("napping").create_run()
    with pytest.raises(errors.DeadlineExceeded) as late:
        await run.start_async(input_data={"value": 5}, request_id="slow-start", wait_timeout=0.05)
    assert isinstance(late.value, TimeoutError)
    done = await run.start_async(input_data={"value": 5}, request_id="slow-start", wait_timeout=10)
    assert (done.status, done.result) == (RunStatus.SUCCESS, {"value": 10})


async def test_a_wait_timeout_bounds_a_waiting_time_travel(client: Client) -> None:
    """`time_travel(wait=True, wait_timeout=)` (and `fork`, `restart`): the wait ends with
    errors.DeadlineExceeded while the re-executed run goes on."""
    run = await client.get_workflow("sluggish").create_run()
    await run.start(input_data={"value": 1})
    await until(lambda: flows.CLEANUPS.get(run.run_id) == "started")
    assert (await run.cancel()).status is RunStatus.CANCELED
    with pytest.raises(errors.DeadlineExceeded):
        await run.time_travel("slow", wait=True, wait_timeout=0.1)
    assert (await run.cancel()).status is RunStatus.CANCELED  # it was running again


class Asked(BaseModel):
    question: str


attempts: dict[str, int] = {}


@create_step("bad-suspend", suspend_schema=Asked, retries=2)
async def bad_suspend(ctx: StepContext) -> Any:
    attempts["bad-suspend"] = attempts.get("bad-suspend", 0) + 1
    await ctx.suspend({"nope": 1})
    return None


@create_step("own-violation", retries=2)
async def own_violation(ctx: StepContext) -> Any:
    attempts["own-violation"] = attempts.get("own-violation", 0) + 1
    raise SchemaViolation("its own check", [errors.FieldViolation("x", "not what it wanted")])


async def test_a_refused_suspend_payload_fails_at_once_and_a_bodys_own_violation_is_retried(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """A payload the step's `suspend_schema` refuses fails the step at once, without retries
    (README). A SchemaViolation the body raises for its own reasons was taken for one too: not
    retried, and reported as SuspendValidationError (audit). It is a failure like any other."""
    attempts.clear()
    workflows = [
        create_workflow("bad-suspend").then(bad_suspend).commit(),
        create_workflow("own-violation").then(own_violation).commit(),
    ]
    async with serving(tmp_path / "runs.db", workflows=workflows) as served, Client(served.address) as client:
        refused = await (await client.get_workflow("bad-suspend").create_run()).start_async({})
        assert refused.status is RunStatus.FAILED and refused.error is not None
        assert refused.error.name == "SuspendValidationError" and "question" in refused.error.message
        own = await (await client.get_workflow("own-violation").create_run()).start_async({})
        assert own.status is RunStatus.FAILED and own.error is not None
        assert own.error.name == "SchemaViolation" and "not what it wanted" in own.error.message
    assert attempts == {"bad-suspend": 1, "own-violation": 3}


def nested_deep(levels: int) -> Any:
    """A workflow whose step suspends `levels` nested workflows down, with a ~0.9 MB payload."""

    @create_step("deep-ask")
    async def deep_ask(ctx: StepContext) -> Any:
        if ctx.resume_data is None:
            await ctx.suspend({"blob": "x" * 900_000})
            return None
        return {"done": True}

    flow = create_workflow("level-1").then(deep_ask).commit()
    for level in range(2, levels + 1):
        flow = create_workflow(f"level-{level}").then(flow).commit()
    return create_workflow("deep").then(flow).commit()


async def test_a_payload_lent_to_every_nested_level_never_takes_a_run_over_its_limit(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """Each nested workflow's record carries the payload of the step suspended inside it (as
    in Mastra). Six levels of a 0.9 MB payload counted 6.3 MB against the run's 6 MiB, and a
    run that fits failed with PayloadTooLarge (audit). The copies that would not fit are left
    out: the run suspends, and the inner levels carry it."""
    async with (
        serving(tmp_path / "runs.db", workflows=[nested_deep(6)]) as served,
        Client(served.address, timeout=30) as client,
    ):
        run = await client.get_workflow("deep").create_run()
        suspended = await run.start_async({})
        assert suspended.status is RunStatus.SUSPENDED, suspended.error
        lent = [s for s in suspended.steps if s.suspend_payload is not None]
        assert 1 < len(lent) < 7 and all(s.suspend_payload == {"blob": "x" * 900_000} for s in lent)
        done = await run.resume_async({})
        assert done.status is RunStatus.SUCCESS and done.result == {"done": True}


def _blob_step(step_id: str, size: int = 1_000_000) -> Any:
    @create_step(step_id)
    async def blob(ctx: StepContext) -> Any:
        return {"blob": "x" * size}

    return blob


@create_step("question")
async def question(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        await ctx.suspend({"q": 1})
        return None
    return {"ok": True}


def outputs_around(workflow_id: str, ask: bool) -> Any:
    """Five steps of ~1 MB, a question when `ask`, two more: 7 MB against the run's 6 MiB."""
    flow = create_workflow(workflow_id)
    for index in range(5):
        flow = flow.then(_blob_step(f"before-{index}"))
    if ask:
        flow = flow.then(question)
    for index in range(2):
        flow = flow.then(_blob_step(f"after-{index}"))
    return flow.commit()


async def test_what_a_run_stored_before_a_resume_counts_against_its_limit(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """The run's size limit counts the outputs stored before it suspended: a resumed (or
    recovered) run counted from nothing, and a run that stops at the limit in one go went
    on to 7 MB when a question came between (review)."""
    workflows = [outputs_around("straight", ask=False), outputs_around("asking", ask=True)]
    async with (
        serving(tmp_path / "runs.db", workflows=workflows) as served,
        Client(served.address, timeout=60) as client,
    ):
        straight = await (await client.get_workflow("straight").create_run()).start_async({})
        run = await client.get_workflow("asking").create_run()
        asked = await run.start_async({})
        assert asked.status is RunStatus.SUSPENDED, asked.error
        answered = await run.resume_async({})
        for ended in (straight, answered):
            assert ended.status is RunStatus.FAILED and ended.error is not None
            assert ended.error.name == "PayloadTooLarge" and "run" in ended.error.message
            failed = [s for s in ended.steps if s.status is StepStatus.FAILED]
            assert [s.path for s in failed] == [("after-1",)]
