"""The bundled examples: definitions, and step bodies run directly with a fake runtime.

This is how an author unit-tests their own steps: build a StepContext around a small
StepRuntime fake and await the body. The engine itself is tested elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import pytest

from runservice import examples
from runservice.model import Json
from runservice.workflow import Bail, Step, StepContext, Workflow


class FakeRuntime:
    """The StepRuntime hooks, in memory."""

    def __init__(self, init: Json = None, results: Mapping[str, Json] | None = None) -> None:
        self.init = init
        self.results = dict(results or {})
        self.state: dict[str, Json] = {}
        self.outputs: list[Json] = []
        self.wrote = asyncio.Event()

    def get_state(self) -> dict[str, Json]:
        return dict(self.state)

    def set_state(self, patch: Mapping[str, Json]) -> None:
        self.state.update(patch)

    async def write_output(self, chunk: Json) -> None:
        self.outputs.append(chunk)
        self.wrote.set()

    def step_result(self, step_id: str) -> Json | None:
        return self.results.get(step_id)

    def init_data(self) -> Json:
        return self.init


def make_ctx(
    step: Step,
    input_data: Any,
    *,
    runtime: FakeRuntime | None = None,
    resume_data: Any = None,
    abort: asyncio.Event | None = None,
) -> StepContext:
    return StepContext(
        input_data=input_data,
        run_id="run-1",
        workflow_id="test",
        resource_id=None,
        request_context={},
        retry_count=0,
        resume_data=resume_data,
        suspend_data=None,
        abort_signal=abort or asyncio.Event(),
        runtime=runtime or FakeRuntime(init=input_data),
        suspend_schema=step.suspend_schema,
    )


def step_of(workflow: Workflow, step_id: str) -> Step:
    found = workflow.find(step_id)
    assert isinstance(found, Step), f"{workflow.id} has no step {step_id}"
    return found


def test_bundled_workflows_are_committed_with_descriptions() -> None:
    by_id = {w.id: w for w in examples.WORKFLOWS}
    assert list(by_id) == ["city-weather", "human-approval", "cancellable-report", "order-fulfilment"]
    expected_steps = {
        "city-weather": ["fetch-weather", "plan-activities"],
        "human-approval": ["draft", "approve", "notify"],
        "cancellable-report": ["generate"],
        "order-fulfilment": [
            "check-stock",
            "check-fraud",
            "order-lines",
            "pick-item",
            "shipment",
            "book-express",
            "book-standard",
            "booked",
            "confirm-pickup",
        ],
    }
    for workflow_id, steps in expected_steps.items():
        workflow = by_id[workflow_id]
        assert workflow.committed
        assert workflow.description
        assert [r.id for r in workflow.runnables()] == steps
        assert all(r.description for r in workflow.runnables())
    assert by_id["human-approval"].can_suspend
    assert not by_id["city-weather"].can_suspend


async def test_city_weather_is_deterministic_and_offline() -> None:
    fetch = step_of(examples.city_weather, "fetch-weather")
    plan = step_of(examples.city_weather, "plan-activities")
    first = await fetch.execute(make_ctx(fetch, {"city": "Paris"}))
    again = await fetch.execute(make_ctx(fetch, examples.CityInput(city="Paris")))
    assert first == again
    forecast = examples.Forecast.model_validate(first)
    assert forecast.city == "Paris"
    assert forecast.conditions in examples.CONDITIONS
    assert -5 <= forecast.temperature_c <= 35

    activities = await plan.execute(make_ctx(plan, forecast.model_dump()))
    text = examples.Activities.model_validate(activities).activities
    assert text.startswith(f"Paris: {forecast.conditions}")


async def test_human_approval_suspends_then_approves() -> None:
    wf = examples.human_approval
    draft, approve, notify = (step_of(wf, s) for s in ("draft", "approve", "notify"))
    proposal = examples.Proposal.model_validate(
        await draft.execute(make_ctx(draft, {"amount": 120.5, "requester": "ada"}))
    ).model_dump()
    assert proposal["summary"] == "ada requests 120.50"

    first = make_ctx(approve, proposal)
    await approve.execute(first)
    assert first.suspension is not None
    assert first.suspension.payload == {"reason": "approval needed: ada requests 120.50", "amount": 120.5}

    resumed = make_ctx(approve, proposal, resume_data={"approved": True, "approver": "grace"})
    decision = await approve.execute(resumed)
    assert resumed.suspension is None
    assert examples.Decision.model_validate(decision) == examples.Decision(approved=True, approver="grace")

    runtime = FakeRuntime(results={"draft": proposal})
    outcome = await notify.execute(make_ctx(notify, {"approved": True, "approver": "grace"}, runtime=runtime))
    result = examples.Outcome.model_validate(outcome)
    assert result.status == "approved"
    assert result.approver == "grace"


async def test_human_approval_rejection_bails() -> None:
    approve = step_of(examples.human_approval, "approve")
    proposal = {"amount": 9.0, "requester": "ada", "summary": "ada requests 9.00"}
    ctx = make_ctx(approve, proposal, resume_data={"approved": False, "approver": "grace"})
    out = await approve.execute(ctx)
    assert isinstance(out, Bail)
    assert out.result == {
        "status": "rejected",
        "approver": "grace",
        "message": "ada requests 9.00: rejected by grace",
    }


@pytest.mark.timeout(10)
async def test_cancellable_report_streams_progress_to_the_end() -> None:
    generate = step_of(examples.cancellable_report, "generate")
    runtime = FakeRuntime()
    out = await generate.execute(make_ctx(generate, {"seconds": 0.3, "chunks": 3}, runtime=runtime))
    report = examples.Report.model_validate(out)
    assert report.chunks_written == 3
    assert runtime.outputs == [
        {"chunk": 1, "of": 3, "percent": 33},
        {"chunk": 2, "of": 3, "percent": 67},
        {"chunk": 3, "of": 3, "percent": 100},
    ]


@pytest.mark.timeout(10)
async def test_cancellable_report_stops_on_task_cancel(caplog: pytest.LogCaptureFixture) -> None:
    generate = step_of(examples.cancellable_report, "generate")
    runtime = FakeRuntime()
    ctx = make_ctx(generate, {"title": "q3", "seconds": 30, "chunks": 100}, runtime=runtime)
    caplog.set_level(logging.INFO, logger="runservice.examples")
    task = asyncio.ensure_future(generate.execute(ctx))
    await runtime.wrote.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "report 'q3': cleaned up after 1 of 100 chunks" in caplog.text


@pytest.mark.timeout(10)
async def test_cancellable_report_honours_the_abort_signal(caplog: pytest.LogCaptureFixture) -> None:
    generate = step_of(examples.cancellable_report, "generate")
    abort = asyncio.Event()
    ctx = make_ctx(generate, {"title": "q4", "seconds": 30, "chunks": 3}, abort=abort)
    caplog.set_level(logging.INFO, logger="runservice.examples")
    task = asyncio.ensure_future(generate.execute(ctx))
    await asyncio.sleep(0.15)
    abort.set()
    with pytest.raises(examples.ReportCanceled):
        await asyncio.wait_for(task, timeout=2)
    assert "report 'q4': cleaned up after 0 of 3 chunks" in caplog.text


def test_report_input_has_defaults() -> None:
    assert examples.ReportRequest.model_validate({}).seconds == 30
