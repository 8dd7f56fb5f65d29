"""Step and run timeouts through the real server, on SQLite and PostgreSQL.

A step's `timeout` cancels its body (its `finally` runs) and fails the attempt with
StepTimeoutError, which its retries retry with a fresh timeout. A run's deadline (the
workflow's `timeout`, or a shorter one given on Start) is stored with the run: when it
passes the running step is stopped and the run ends failed with RunTimeoutError, also when
it passes while the run is suspended or while no server is running. Bodies count their
attempts and their `finally` blocks in module-level counters.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import ServingFactory, client_for
from google.protobuf import duration_pb2
from pydantic import BaseModel

from runservice import errors
from runservice.client import Client, SyncClient
from runservice.model import EventType, Run, RunStatus, StepStatus
from runservice.v1 import run_service_pb2
from runservice.workflow import StepContext, Workflow, clone_step, create_step, create_workflow

pytestmark = pytest.mark.timeout(60)

STARTED: Counter[str] = Counter()
"""Attempts begun, by run id and step id (clones count under the step they clone)."""
FINALLY: Counter[str] = Counter()
"""`finally` blocks run, by run id and step id (clones count under the step they clone)."""


@pytest.fixture(autouse=True)
def fresh_counters() -> None:
    STARTED.clear()
    FINALLY.clear()


class Seconds(BaseModel):
    seconds: float = 10.0
    quick_after: int = 99
    """The attempt from which the body takes only 0.05 s."""


async def _hang(ctx: StepContext, name: str) -> dict[str, Any]:
    key = f"{ctx.run_id}:{name}"
    STARTED[key] += 1
    data = ctx.input_data if isinstance(ctx.input_data, dict) else {}
    seconds = float(data.get("seconds", 10.0))
    if ctx.retry_count >= int(data.get("quick_after", 99)):
        seconds = 0.05
    try:
        await asyncio.sleep(seconds)
    finally:
        FINALLY[key] += 1
    return {"slept": seconds, "attempt": ctx.retry_count}


@create_step("timed", timeout=0.3, retries=2)
async def timed(ctx: StepContext) -> dict[str, Any]:
    return await _hang(ctx, "timed")


@create_step("stubborn", timeout=0.2)
async def stubborn(ctx: StepContext) -> dict[str, Any]:
    """Swallows its cancellation and returns: the attempt still timed out."""
    STARTED[f"{ctx.run_id}:stubborn"] += 1
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        FINALLY[f"{ctx.run_id}:stubborn"] += 1
    return {"done": True}


@create_step("slow")
async def slow(ctx: StepContext) -> dict[str, Any]:
    return await _hang(ctx, "slow")


@create_step("quick")
async def quick(ctx: StepContext) -> dict[str, Any]:
    return {"quick": True}


class Decision(BaseModel):
    ok: bool


@create_step("approve", resume_schema=Decision, suspend_schema=dict[str, Any])
async def approve(ctx: StepContext) -> dict[str, Any]:
    if ctx.resume_data is None:
        await ctx.suspend({"ask": "ok?"})
        return {}
    return {"ok": ctx.resume_data.ok}


@create_step("remember")
async def remember(ctx: StepContext) -> dict[str, Any]:
    ctx.set_state({"seen": [*ctx.state.get("seen", []), "remember"]})
    return {"ok": True}


inner = create_workflow("inner").then(clone_step(timed, id="inner_timed")).commit()
inner_slow = create_workflow("inner_slow").then(clone_step(slow, id="inner_slow_step")).commit()
inner_own = create_workflow("inner_own", timeout=0.4).then(clone_step(slow, id="own_slow")).commit()
inner_sleeps = create_workflow("inner_sleeps", timeout=0.4).sleep(10, id="nap").then(quick).commit()
inner_capped = create_workflow("inner_capped", timeout=30).then(clone_step(slow, id="capped_slow")).commit()
inner_asks = create_workflow("inner_asks", timeout=0.6).then(clone_step(approve, id="inner_approve")).commit()
inner_mixed = (
    create_workflow("inner_mixed", timeout=0.6)
    .parallel([clone_step(slow, id="mixed_slow"), clone_step(approve, id="mixed_approve")])
    .commit()
)


def _in_loop(ctx: Any) -> bool:
    return True


WORKFLOWS: list[Workflow] = [
    create_workflow("timed-step").then(timed).commit(),
    create_workflow("stubborn-step").then(stubborn).commit(),
    create_workflow("timed-parallel").parallel([clone_step(timed, id="p_timed"), quick]).commit(),
    create_workflow("timed-branch").branch([(_in_loop, clone_step(timed, id="b_timed"))]).commit(),
    create_workflow("timed-foreach")
    .map(lambda ctx: [ctx.input_data, ctx.input_data], id="items")
    .foreach(clone_step(timed, id="f_timed"), concurrency=2)
    .commit(),
    create_workflow("timed-loop").dountil(clone_step(timed, id="l_timed"), _in_loop).commit(),
    create_workflow("timed-nested").then(inner).commit(),
    create_workflow("run-timeout", timeout=0.5).then(quick).then(slow).commit(),
    create_workflow("no-timeout").then(slow).commit(),
    create_workflow("suspends", timeout=0.6).then(approve).then(quick).commit(),
    create_workflow("suspends-long", timeout=60).then(approve).then(quick).commit(),
    create_workflow("nested-inherits", timeout=0.5).then(inner_slow).commit(),
    create_workflow("nested-own").then(inner_own).commit(),
    create_workflow("nested-own-sleep").then(inner_sleeps).commit(),
    create_workflow("nested-own-capped", timeout=0.3).then(inner_capped).commit(),
    create_workflow("stateful").then(remember).then(approve).commit(),
    create_workflow("nested-asks").then(inner_asks).then(quick).commit(),
    create_workflow("nested-mixed")
    .parallel([inner_mixed, clone_step(approve, id="mixed_outer")], allow_failure=True)
    .commit(),
    create_workflow("nested-asks-beside")
    .parallel([inner_asks, clone_step(approve, id="outer_approve")], allow_failure=True)
    .commit(),
]

client = client_for(WORKFLOWS)


async def _final(client: Client, workflow_id: str, run_id: str, limit: float = 10.0) -> Run:
    """The run once it is terminal (polling GetRun)."""
    give_up = time.monotonic() + limit
    while True:
        run = await client.get_workflow(workflow_id).run_execution_result(run_id)
        if run.status.terminal:
            return run
        assert time.monotonic() < give_up, f"run {run_id} still {run.status}"
        await asyncio.sleep(0.05)


def _step(run: Run, *path: str) -> Any:
    return next(s for s in run.steps if s.path == path)


# -- step timeouts --------------------------------------------------------------------------


async def test_a_step_timeout_cancels_the_body_and_counts_as_an_attempt(client: Client) -> None:
    run = await client.get_workflow("timed-step").create_run()
    began = time.monotonic()
    done = await run.start_async({"seconds": 10})
    took = time.monotonic() - began
    assert done.status is RunStatus.FAILED
    assert done.error is not None and done.error.name == "StepTimeoutError"
    assert done.error.details == {"reason": "STEP_TIMEOUT", "step": "timed", "timeout_seconds": 0.3}
    key = f"{run.run_id}:timed"
    assert STARTED[key] == 3, "retries=2: three attempts, each timing out"
    assert FINALLY[key] == 3, "each attempt's finally ran"
    record = _step(done, "timed")
    assert (record.status, record.attempt) == (StepStatus.FAILED, 2)
    assert 0.9 <= took < 5, took


async def test_a_retry_after_a_timeout_gets_a_fresh_timeout(client: Client) -> None:
    run = await client.get_workflow("timed-step").create_run()
    done = await run.start_async({"seconds": 10, "quick_after": 1})
    assert done.status is RunStatus.SUCCESS, done.error
    assert done.result == {"slept": 0.05, "attempt": 1}
    assert (STARTED[f"{run.run_id}:timed"], FINALLY[f"{run.run_id}:timed"]) == (2, 2)
    assert _step(done, "timed").attempt == 1


async def test_a_step_fast_enough_is_not_touched(client: Client) -> None:
    run = await client.get_workflow("timed-step").create_run()
    done = await run.start_async({"seconds": 0.05})
    assert done.status is RunStatus.SUCCESS
    assert STARTED[f"{run.run_id}:timed"] == 1


async def test_a_body_that_swallows_its_cancellation_still_times_out(client: Client) -> None:
    run = await client.get_workflow("stubborn-step").create_run()
    done = await run.start_async()
    assert done.status is RunStatus.FAILED
    assert done.error is not None and done.error.name == "StepTimeoutError"
    assert FINALLY[f"{run.run_id}:stubborn"] == 1


@pytest.mark.parametrize(
    ("workflow_id", "path", "attempts"),
    [
        ("timed-parallel", ("p_timed",), 3),
        ("timed-branch", ("b_timed",), 3),
        ("timed-foreach", ("f_timed",), 6),  # two items, three attempts each
        ("timed-loop", ("l_timed",), 3),
        ("timed-nested", ("inner", "inner_timed"), 3),
    ],
)
async def test_step_timeouts_hold_inside_every_construct(
    client: Client, workflow_id: str, path: tuple[str, ...], attempts: int
) -> None:
    run = await client.get_workflow(workflow_id).create_run()
    done = await run.start_async({"seconds": 10})
    assert done.status is RunStatus.FAILED, done
    assert done.error is not None and done.error.name == "StepTimeoutError"
    key = f"{run.run_id}:timed"  # the clones share the body of `timed`
    assert (STARTED[key], FINALLY[key]) == (attempts, attempts)
    assert _step(done, *path).status is StepStatus.FAILED


async def test_timeouts_are_in_the_workflow_description(client: Client) -> None:
    details = await client.get_workflow("timed-nested").details()
    assert details.timeout is None
    assert details.steps["inner.inner_timed"].timeout == 0.3
    assert details.steps["inner"].timeout is None
    assert (await client.get_workflow("run-timeout").details()).timeout == 0.5
    own = await client.get_workflow("nested-own").details()
    assert own.steps["inner_own"].timeout == 0.4
    assert own.steps["inner_own.own_slow"].timeout is None


# -- run deadlines ----------------------------------------------------------------------------


async def test_a_workflow_timeout_stops_the_running_step_and_fails_the_run(client: Client) -> None:
    run = await client.get_workflow("run-timeout").create_run()
    events: list[Any] = []
    started = await run.start({"seconds": 10})
    assert started.deadline is not None and started.started_at is not None
    assert started.deadline == pytest.approx(started.started_at + 0.5, abs=0.01)
    async for event in client.follow(run.run_id):
        events.append(event)
    done = await _final(client, "run-timeout", run.run_id)
    assert done.status is RunStatus.FAILED
    assert done.error is not None and done.error.name == "RunTimeoutError"
    assert done.error.details is not None and done.error.details["reason"] == "RUN_DEADLINE_EXCEEDED"
    assert done.deadline == pytest.approx(started.deadline, abs=1e-3)
    assert done.ended_at is not None and done.deadline is not None and done.ended_at >= done.deadline
    assert FINALLY[f"{run.run_id}:slow"] == 1, "the running step was cancelled; its finally ran"
    assert _step(done, "quick").status is StepStatus.SUCCESS
    assert _step(done, "slow").status is StepStatus.CANCELED
    finish = events[-1]
    assert finish.type is EventType.WORKFLOW_FINISH and finish.run_status is RunStatus.FAILED
    assert finish.error is not None and finish.error.name == "RunTimeoutError"


async def test_a_timeout_given_on_start_bounds_the_run(client: Client) -> None:
    run = await client.get_workflow("no-timeout").create_run()
    began = time.monotonic()
    done = await run.start_async({"seconds": 10}, run_timeout=0.4)
    assert time.monotonic() - began < 5
    assert done.status is RunStatus.FAILED
    assert done.error is not None and done.error.name == "RunTimeoutError"
    assert done.deadline is not None and done.started_at is not None
    assert done.deadline == pytest.approx(done.started_at + 0.4, abs=0.01)
    assert FINALLY[f"{run.run_id}:slow"] == 1
    # Without one the run has no deadline.
    other = await client.get_workflow("no-timeout").create_run()
    fine = await other.start_async({"seconds": 0.05})
    assert (fine.status, fine.deadline) == (RunStatus.SUCCESS, None)


async def test_a_caller_can_shorten_the_workflow_timeout_but_not_extend_it(client: Client) -> None:
    longer = await client.get_workflow("run-timeout").create_run()
    started = await longer.start({"seconds": 10}, run_timeout=60)
    assert started.deadline is not None and started.started_at is not None
    assert started.deadline == pytest.approx(started.started_at + 0.5, abs=0.01)
    shorter = await client.get_workflow("suspends-long").create_run()
    started = await shorter.start({}, run_timeout=5)
    assert started.deadline is not None and started.started_at is not None
    assert started.deadline == pytest.approx(started.started_at + 5, abs=0.01)
    await _final(client, "run-timeout", longer.run_id)


async def test_a_time_travel_or_fork_of_a_timed_out_run_gets_a_fresh_deadline(client: Client) -> None:
    run = await client.get_workflow("run-timeout").create_run()
    timed_out = await run.start_async({"seconds": 10})
    assert timed_out.status is RunStatus.FAILED and timed_out.deadline is not None
    await asyncio.sleep(0.1)  # the old deadline is past
    again = await run.time_travel("slow", {"seconds": 0.05}, wait=True)
    assert again.status is RunStatus.SUCCESS, again.error
    assert again.deadline is not None and again.deadline > timed_out.deadline + 0.1
    fork = await run.fork("slow", {"seconds": 0.05}, wait=True)
    assert fork.status is RunStatus.SUCCESS, fork.error
    assert fork.deadline is not None and fork.started_at is not None
    assert fork.deadline == pytest.approx(fork.started_at + 0.5, abs=0.05)


async def test_a_timeout_that_is_not_positive_is_invalid(client: Client) -> None:
    # The Python clients refuse one before sending it (tests/test_clients.py): send it raw.
    run = await client.get_workflow("no-timeout").create_run()
    for timeout in (duration_pb2.Duration(seconds=-1), duration_pb2.Duration(seconds=0)):
        request = run_service_pb2.StartRequest(workflow_id="no-timeout", run_id=run.run_id, timeout=timeout)
        with pytest.raises(errors.InvalidArgument) as caught:
            await client.call(client.stub.Start, request)
        assert [v.field for v in caught.value.violations] == ["timeout"]
    assert (await client.get_workflow("no-timeout").run_by_id(run.run_id)).status is RunStatus.PENDING


async def test_a_suspended_run_past_its_deadline_is_ended(client: Client) -> None:
    run = await client.get_workflow("suspends").create_run()
    suspended = await run.start_async({})
    assert suspended.status is RunStatus.SUSPENDED
    done = await _final(client, "suspends", run.run_id)  # nobody drives it: the claim loop ends it
    assert done.status is RunStatus.FAILED
    assert done.error is not None and done.error.name == "RunTimeoutError"
    assert done.suspended == ()
    assert _step(done, "approve").status is StepStatus.CANCELED
    with pytest.raises(errors.RunNotSuspended):
        await run.resume_async({"ok": True})


async def test_nested_workflows_inherit_the_run_deadline(client: Client) -> None:
    run = await client.get_workflow("nested-inherits").create_run()
    done = await run.start_async({"seconds": 10})
    assert done.status is RunStatus.FAILED
    assert done.error is not None and done.error.name == "RunTimeoutError"
    assert FINALLY[f"{run.run_id}:slow"] == 1
    assert _step(done, "inner_slow", "inner_slow_step").status is StepStatus.CANCELED


async def test_a_nested_workflow_with_its_own_timeout_fails_as_a_step(client: Client) -> None:
    run = await client.get_workflow("nested-own").create_run()
    began = time.monotonic()
    done = await run.start_async({"seconds": 10})
    assert time.monotonic() - began < 5
    assert done.status is RunStatus.FAILED
    assert done.error is not None and done.error.name == "WorkflowTimeoutError"
    assert done.error.details is not None
    assert done.error.details["reason"] == "WORKFLOW_DEADLINE_EXCEEDED"
    assert done.error.details["workflow"] == "inner_own"
    assert done.deadline is None, "the run itself has no deadline"
    assert FINALLY[f"{run.run_id}:slow"] == 1
    assert _step(done, "inner_own").status is StepStatus.FAILED
    assert _step(done, "inner_own", "own_slow").status is StepStatus.FAILED
    # A sleep inside it is cut short by its deadline too.
    sleeper = await client.get_workflow("nested-own-sleep").create_run()
    slept = await sleeper.start_async({})
    assert slept.error is not None and slept.error.name == "WorkflowTimeoutError"
    assert _step(slept, "inner_sleeps", "nap").status is StepStatus.FAILED


async def test_a_nested_timeout_longer_than_the_run_deadline_gets_the_run_deadline(client: Client) -> None:
    run = await client.get_workflow("nested-own-capped").create_run()
    began = time.monotonic()
    done = await run.start_async({"seconds": 10})
    assert time.monotonic() - began < 5
    assert done.error is not None and done.error.name == "RunTimeoutError"


# -- include_state ----------------------------------------------------------------------------


async def test_start_and_resume_replies_carry_the_state_when_asked(client: Client) -> None:
    workflow = client.get_workflow("stateful")
    plain = await workflow.create_run()
    suspended = await plain.start_async({}, initial_state={"seen": []})
    assert suspended.status is RunStatus.SUSPENDED and suspended.state is None
    done = await plain.resume_async({"ok": True})
    assert done.status is RunStatus.SUCCESS and done.state is None

    asked = await workflow.create_run()
    suspended = await asked.start_async({}, initial_state={"seen": []}, include_state=True)
    assert suspended.state == {"seen": ["remember"]}
    done = await asked.resume_async({"ok": True}, include_state=True)
    assert done.state == {"seen": ["remember"]}
    at_once = await (await workflow.create_run()).start({}, include_state=True)
    assert at_once.state == {}


async def test_the_sync_client_takes_run_timeout_and_include_state(client: Client) -> None:
    address = client.target

    def calls() -> tuple[Run, Run, Run]:
        with SyncClient(address, timeout=10.0) as sync:
            workflow = sync.get_workflow("stateful")
            run = workflow.create_run()
            suspended = run.start_async({}, initial_state={"seen": []}, include_state=True)
            timed_out = (
                sync.get_workflow("no-timeout").create_run().start_async({"seconds": 10}, run_timeout=0.3)
            )
            done = run.resume_async({"ok": True}, include_state=True)
            return suspended, timed_out, done

    suspended, timed_out, done = await asyncio.to_thread(calls)
    assert suspended.state == {"seen": ["remember"]}
    assert (done.status, done.state) == (RunStatus.SUCCESS, {"seen": ["remember"]})
    assert timed_out.error is not None and timed_out.error.name == "RunTimeoutError"


# -- across restarts --------------------------------------------------------------------------


async def test_a_deadline_that_passes_while_no_server_runs_ends_the_run_at_boot(
    serving: ServingFactory, tmp_path: Path
) -> None:
    db = tmp_path / "runs.db"
    async with serving(db, workflows=WORKFLOWS) as served, Client(served.address, timeout=10.0) as first:
        running = await first.get_workflow("no-timeout").create_run()
        await running.start({"seconds": 30}, run_timeout=0.8)
        suspended = await first.get_workflow("suspends-long").create_run()
        assert (await suspended.start_async({}, run_timeout=0.8)).status is RunStatus.SUSPENDED
        give_up = time.monotonic() + 5
        while not any(
            s.path == ("slow",)
            for s in (
                await running.client.get_workflow("no-timeout").run_execution_result(running.run_id)
            ).steps
        ):
            assert time.monotonic() < give_up, "the slow step's start was never committed"
            await asyncio.sleep(0.02)
    # The server stopped the hard way for the running run: it is still `running` in storage.
    await asyncio.sleep(1.0)  # both deadlines pass while nothing runs
    async with serving(db, workflows=WORKFLOWS) as served, Client(served.address, timeout=10.0) as second:
        ran = await _final(second, "no-timeout", running.run_id)
        ended = await _final(second, "suspends-long", suspended.run_id)
    for run in (ran, ended):
        assert run.status is RunStatus.FAILED
        assert run.error is not None and run.error.name == "RunTimeoutError"
    assert STARTED[f"{running.run_id}:slow"] == 1, "past its deadline nothing runs again"
    assert _step(ran, "slow").status is StepStatus.CANCELED
    assert _step(ended, "approve").status is StepStatus.CANCELED


async def test_resume_after_the_deadline_is_refused_and_ends_the_run(
    serving: ServingFactory, tmp_path: Path
) -> None:
    db = tmp_path / "runs.db"
    async with serving(db, workflows=WORKFLOWS) as served, Client(served.address, timeout=10.0) as first:
        run = await first.get_workflow("suspends-long").create_run()
        assert (await run.start_async({}, run_timeout=0.3)).status is RunStatus.SUSPENDED
        await served.engine._keeper.stop_claiming()  # nothing ends it on its own meanwhile
        await asyncio.sleep(0.5)
        with pytest.raises(errors.RunDeadlineExceeded) as caught:
            await run.resume_async({"ok": True})
        assert caught.value.reason == "RUN_DEADLINE_EXCEEDED"
        done = await first.get_workflow("suspends-long").run_execution_result(run.run_id)
    assert done.status is RunStatus.FAILED
    assert done.error is not None and done.error.name == "RunTimeoutError"
    assert _step(done, "approve").status is StepStatus.CANCELED
    assert not any(s.path == ("quick",) for s in done.steps), "never a half-run"


# -- a nested workflow's deadline while the run is suspended ------------------------------------


def _timed_out_nested(run: Run) -> None:
    """`inner_asks` failed with its own timeout, its suspended step with it."""
    nested, inner_step = _step(run, "inner_asks"), _step(run, "inner_asks", "inner_approve")
    for record in (nested, inner_step):
        assert record.status is StepStatus.FAILED, record
        assert record.error is not None and record.error.name == "WorkflowTimeoutError"
        assert record.error.details is not None and record.error.details["workflow"] == "inner_asks"
    assert ("inner_asks", "inner_approve") not in run.suspended


async def test_a_suspended_nested_workflow_past_its_timeout_fails_without_a_resume(client: Client) -> None:
    run = await client.get_workflow("nested-asks").create_run()
    began = time.monotonic()
    suspended = await run.start_async({})
    assert suspended.status is RunStatus.SUSPENDED
    done = await _final(client, "nested-asks", run.run_id, limit=5.0)  # nobody resumes it
    assert time.monotonic() - began < 0.6 + 2.5, "ended within its timeout plus a few claim intervals"
    assert done.status is RunStatus.FAILED
    assert done.error is not None and done.error.name == "WorkflowTimeoutError"
    assert done.suspended == ()
    _timed_out_nested(done)
    assert not any(s.path == ("quick",) for s in done.steps), "the parent stops where the graph says"
    with pytest.raises(errors.RunNotSuspended):
        await run.resume_async({"ok": True}, step=["inner_asks", "inner_approve"])


async def test_a_suspended_step_beside_the_timed_out_nested_workflow_stays_resumable(client: Client) -> None:
    run = await client.get_workflow("nested-asks-beside").create_run()
    suspended = await run.start_async({})
    assert set(suspended.suspended) == {("inner_asks", "inner_approve"), ("outer_approve",)}
    give_up = time.monotonic() + 5
    while True:
        now = await client.get_workflow("nested-asks-beside").run_execution_result(run.run_id)
        if _step(now, "inner_asks").status is StepStatus.FAILED and now.status is RunStatus.SUSPENDED:
            break
        assert time.monotonic() < give_up, f"the nested workflow never timed out: {now.status}"
        await asyncio.sleep(0.05)
    _timed_out_nested(now)
    assert now.suspended == (("outer_approve",),)
    assert _step(now, "outer_approve").status is StepStatus.SUSPENDED
    done = await run.resume_async({"ok": True}, step="outer_approve")
    assert done.status is RunStatus.SUCCESS
    assert done.result == {"inner_asks": None, "outer_approve": {"ok": True}}


async def test_a_resume_racing_the_nested_timeout_applies_once(client: Client) -> None:
    offsets = (0.0, 0.05, 0.1, 0.2, 0.5, 0.9)  # seconds after the nested deadline
    runs = [await client.get_workflow("nested-asks").create_run() for _ in offsets]
    started = await asyncio.gather(*(run.start_async({}) for run in runs))
    assert all(s.status is RunStatus.SUSPENDED for s in started)

    async def race(run: Any, deadline: float, offset: float) -> bool:
        """Resume at `offset` after the deadline; True if the resume was accepted."""
        await asyncio.sleep(max(0.0, deadline + offset - time.time()))
        try:
            await run.resume({"ok": True}, step=["inner_asks", "inner_approve"])
        except errors.RunNotSuspended:
            return False
        return True

    deadlines = [_step(s, "inner_asks").started_at + 0.6 for s in started]
    accepted = await asyncio.gather(
        *(race(r, d, o) for r, d, o in zip(runs, deadlines, offsets, strict=True))
    )
    for run, took in zip(runs, accepted, strict=True):
        done = await _final(client, "nested-asks", run.run_id)
        # Whoever committed first decides: a resume past the deadline is never half applied.
        inner_step = _step(done, "inner_asks", "inner_approve")
        assert (inner_step.resumed_at is not None) is took
        if done.status is RunStatus.SUCCESS:
            assert took and inner_step.output == {"ok": True}
        else:
            assert done.error is not None and done.error.name == "WorkflowTimeoutError"
            _timed_out_nested(done)
    assert not all(accepted), "the claim loop ended some of them before their late resume"


async def test_a_nested_timeout_that_passes_while_no_server_runs_is_applied_at_boot(
    serving: ServingFactory, tmp_path: Path
) -> None:
    db = tmp_path / "runs.db"
    async with serving(db, workflows=WORKFLOWS) as served, Client(served.address, timeout=10.0) as first:
        run = await first.get_workflow("nested-asks").create_run()
        assert (await run.start_async({})).status is RunStatus.SUSPENDED
    await asyncio.sleep(0.8)  # the nested deadline passes while nothing runs
    async with serving(db, workflows=WORKFLOWS) as served, Client(served.address, timeout=10.0) as second:
        done = await _final(second, "nested-asks", run.run_id, limit=5.0)
    assert done.status is RunStatus.FAILED
    assert done.error is not None and done.error.name == "WorkflowTimeoutError"
    _timed_out_nested(done)


async def test_a_nested_timeout_cutting_a_running_step_fails_its_suspended_sibling(client: Client) -> None:
    """Inside a nested workflow a parallel has a running step and a suspended one; its deadline
    cuts the running one: the suspended one is over with its workflow (failed, not resumable),
    while a step suspended outside it stays resumable."""
    run = await client.get_workflow("nested-mixed").create_run()
    suspended = await run.start_async({})
    assert suspended.status is RunStatus.SUSPENDED
    assert set(suspended.suspended) == {("mixed_outer",)}
    inner = _step(suspended, "inner_mixed", "mixed_approve")
    assert inner.status is StepStatus.FAILED
    assert inner.error is not None and inner.error.name == "WorkflowTimeoutError"
    with pytest.raises(errors.StepNotSuspended):
        await run.resume_async({"ok": True}, step=["inner_mixed", "mixed_approve"])
    done = await run.resume_async({"ok": True}, step="mixed_outer")
    assert done.status is RunStatus.SUCCESS
