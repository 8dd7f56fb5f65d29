"""Edges of the walk an audit found: step bodies that let out a CancelledError of their own,
cancels while parallel branches are suspended, sleeps, loops and foreach inside nested
workflows inside loops, foreach item validation, and bail inside a parallel.

Each test runs a real engine on a real SQLite file (the same file on PostgreSQL when the
backend says so) and waits for the run with a timeout: a run that never ends fails the test.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from test_recovery import booted as recovery_booted

from runservice.engine import Engine
from runservice.model import Run, RunStatus, StepStatus
from runservice.workflow import StepContext, Workflow, create_step, create_workflow

pytestmark = pytest.mark.timeout(30)

ran: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def fresh_counts() -> None:
    ran.clear()


def booted(url: str, workflows: Iterable[Workflow]) -> contextlib.AbstractAsyncContextManager[Engine]:
    """test_recovery's engine (stopped the hard way), with a short cancel grace."""
    return recovery_booted(url, workflows, cancel_grace=1.0)


@pytest.fixture
async def db(databases: Any, tmp_path: Path) -> str:
    url: str = await databases.url_for(tmp_path / "runs.db")
    return url


def records(run: Run) -> dict[str, tuple[str, Any]]:
    return {".".join(s.path): (s.status.value, s.output) for s in run.steps}


async def waited(engine: Engine, workflow: str, data: Any, **kwargs: Any) -> Run:
    async with asyncio.timeout(10):
        return await engine.start(workflow, input_data=data, wait=True, **kwargs)


# -- a body's own CancelledError ----------------------------------------------------------------------


async def _await_a_cancelled_helper() -> None:
    """The asyncio mistake: cancel a helper task, then await it (CancelledError comes out)."""
    helper = asyncio.create_task(asyncio.sleep(10))
    await asyncio.sleep(0)
    helper.cancel()
    await helper


@create_step("cancels-its-helper")
async def cancels_its_helper(ctx: StepContext) -> int:
    ran["cancels-its-helper"] += 1
    await _await_a_cancelled_helper()
    return 1


@create_step("cancels-its-helper-once", retries=1)
async def cancels_its_helper_once(ctx: StepContext) -> int:
    ran["cancels-its-helper-once"] += 1
    if ctx.retry_count == 0:
        await _await_a_cancelled_helper()
    return ctx.retry_count


@create_step("after-helper")
async def after_helper(ctx: StepContext) -> int:
    ran["after-helper"] += 1
    return 2


async def _cancelling_condition(ctx: Any) -> bool:
    await _await_a_cancelled_helper()
    return True


@create_step("count-up")
async def count_up(ctx: StepContext) -> int:
    return int(ctx.input_data or 0) + 1


self_cancelling = create_workflow("self-cancelling").then(cancels_its_helper).then(after_helper).commit()
self_cancelling_once = create_workflow("self-cancelling-once").then(cancels_its_helper_once).commit()
cancelling_condition = (
    create_workflow("cancelling-condition").dowhile(count_up, _cancelling_condition).commit()
)


async def test_a_body_that_lets_out_its_own_cancelled_error_fails_its_step(db: str) -> None:
    async with booted(db, [self_cancelling, self_cancelling_once]) as engine:
        run = await waited(engine, "self-cancelling", {})
        assert run.status is RunStatus.FAILED
        assert run.error is not None and run.error.name == "CancelledError"
        assert records(run) == {"cancels-its-helper": ("failed", None)}
        assert ran == Counter({"cancels-its-helper": 1})
        # It is an ordinary failure: the step's retries retry it.
        again = await waited(engine, "self-cancelling-once", {})
        assert again.status is RunStatus.SUCCESS and again.result == 1
        assert ran["cancels-its-helper-once"] == 2


async def test_a_cancelled_error_outside_a_body_ends_the_run_failed(db: str) -> None:
    async with booted(db, [cancelling_condition]) as engine:
        run = await waited(engine, "cancelling-condition", 0)
        assert run.status is RunStatus.FAILED
        assert run.error is not None and run.error.name == "InternalError"


async def test_a_real_cancel_of_such_a_body_still_cancels_the_run(db: str) -> None:
    entered = asyncio.Event()

    @create_step("waits")
    async def waits(ctx: StepContext) -> int:
        entered.set()
        await asyncio.sleep(30)
        return 1

    workflow = create_workflow("waits").then(waits).commit()
    async with booted(db, [workflow]) as engine:
        run = await engine.start("waits", input_data={})
        async with asyncio.timeout(10):
            await entered.wait()
            canceled = await engine.cancel(run.run_id)
        assert canceled.status is RunStatus.CANCELED
        assert records(canceled) == {"waits": (StepStatus.CANCELED.value, None)}


# -- cancel with a parallel branch suspended -------------------------------------------------------------


@create_step("ask-now")
async def ask_now(ctx: StepContext) -> Any:
    await ctx.suspend({"q": 1}, resume_label="approve")
    return None


@create_step("slow-side")
async def slow_side(ctx: StepContext) -> Any:
    ran["slow-side"] += 1
    if ctx.input_data.get("slow"):
        await asyncio.sleep(30)
    return {}


asking_beside_slow = create_workflow("asking-beside-slow").parallel([ask_now, slow_side]).commit()


async def test_every_unfinished_step_of_a_canceled_run_reads_canceled(db: str) -> None:
    async with booted(db, [asking_beside_slow]) as engine:
        # Canceled while the slow branch runs (the drive stops it) ...
        driven = await engine.start("asking-beside-slow", input_data={"slow": True})
        async with asyncio.timeout(10):
            while ran["slow-side"] == 0:
                await asyncio.sleep(0.01)
            driven = await engine.cancel(driven.run_id)
        # ... and canceled while suspended (nothing drives it): the records agree.
        idle = await waited(engine, "asking-beside-slow", {"slow": False})
        assert idle.status is RunStatus.SUSPENDED
        idle = await engine.cancel(idle.run_id)
    assert driven.status is RunStatus.CANCELED and idle.status is RunStatus.CANCELED
    assert records(driven) == {"ask-now": ("canceled", None), "slow-side": ("canceled", None)}
    assert records(idle) == {"ask-now": ("canceled", None), "slow-side": ("success", {})}
    assert driven.suspended == () and driven.resume_labels == {}


# -- a sleep inside a nested workflow inside a loop --------------------------------------------------------


def _nap(ctx: Any) -> float:
    ran["nap"] += 1
    return 0.05


@create_step("ask-once")
async def ask_once(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        await ctx.suspend({})
        return None
    return {"ok": ctx.resume_data}


napping_body = create_workflow("napping-body").sleep(_nap, id="nap").then(ask_once).commit()
napping_loop = create_workflow("napping-loop").dowhile(napping_body, lambda ctx: False).commit()


async def test_a_sleep_in_a_nested_loop_body_does_not_sleep_again_on_resume_or_restart(db: str) -> None:
    async with booted(db, [napping_loop]) as engine:
        run = await waited(engine, "napping-loop", {})
        assert run.status is RunStatus.SUSPENDED and ran["nap"] == 1
        nap = next(s for s in run.steps if s.path == ("napping-body", "nap"))
        assert nap.iteration == 1, "the sleep's record belongs to the loop's iteration"
    async with booted(db, [napping_loop]) as engine:  # a new process: the walk starts from the records
        async with asyncio.timeout(10):
            done = await engine.resume(run.run_id, resume_data="go", wait=True)
    assert done.status is RunStatus.SUCCESS and done.result == {"ok": "go"}
    assert ran["nap"] == 1


# -- foreach over a nested workflow checks each item against its input schema --------------------------


class Item(BaseModel):
    name: str
    qty: int = 1


@create_step("use-item")
async def use_item(ctx: StepContext) -> dict[str, Any]:
    return {"qty": ctx.input_data["qty"], "init": ctx.get_init_data()}


item_workflow = create_workflow("item-workflow", input_schema=Item).then(use_item).commit()
each_item_workflow = create_workflow("each-item-workflow").foreach(item_workflow).commit()


async def test_foreach_over_a_nested_workflow_validates_each_item(db: str) -> None:
    async with booted(db, [each_item_workflow]) as engine:
        good = await waited(engine, "each-item-workflow", [{"name": "a"}, {"name": "b", "qty": 3}])
        bad = await waited(engine, "each-item-workflow", [{"name": "a"}, {"qty": 2}])
    assert good.status is RunStatus.SUCCESS
    assert good.result == [  # the schema's default is applied, to the input and the init data alike
        {"qty": 1, "init": {"name": "a", "qty": 1}},
        {"qty": 3, "init": {"name": "b", "qty": 3}},
    ]
    assert bad.status is RunStatus.FAILED
    assert bad.error is not None and bad.error.name == "StepInputValidationError"
    [foreach] = [s for s in bad.steps if s.path == ("item-workflow",)]
    assert [i.status for i in foreach.foreach_items] == [StepStatus.SUCCESS, StepStatus.FAILED]
    assert not any(s.path == ("item-workflow", "[1]", "use-item") for s in bad.steps), "no body ran"


# -- loops and foreach inside a nested workflow inside a loop -------------------------------------------

inputs: list[Any] = []


@pytest.fixture(autouse=True)
def fresh_inputs() -> None:
    inputs.clear()


@create_step("add-one")
async def add_one(ctx: StepContext) -> dict[str, int]:
    inputs.append(ctx.input_data["v"])
    assert len(inputs) <= 30, "runaway loop"
    return {"v": ctx.input_data["v"] + 1}


to_three = create_workflow("to-three").dountil(add_one, lambda ctx: ctx.input_data["v"] % 3 == 0).commit()
to_nine = create_workflow("to-nine").dowhile(to_three, lambda ctx: ctx.input_data["v"] < 9).commit()


@create_step("ask-count")
async def ask_count(ctx: StepContext) -> Any:
    inputs.append((ctx.input_data["n"], ctx.resume_data))
    assert len(inputs) <= 20, "runaway loop"
    if ctx.resume_data is None:
        await ctx.suspend({"n": ctx.input_data["n"]})
        return None
    return {"n": ctx.input_data["n"] + 1, "answer": ctx.resume_data}


asking_to_two = (
    create_workflow("asking-to-two").dountil(ask_count, lambda ctx: ctx.input_data["n"] >= 2).commit()
)
asking_rounds = (
    create_workflow("asking-rounds").dountil(asking_to_two, lambda ctx: ctx.iteration_count >= 2).commit()
)


@create_step("inc")
async def inc(ctx: StepContext) -> int:
    inputs.append(ctx.input_data)
    return int(ctx.input_data) + 1


inc_flow = create_workflow("inc-flow").then(inc).commit()
inc_each = create_workflow("inc-each").foreach(inc_flow).commit()
inc_rounds = create_workflow("inc-rounds").dowhile(inc_each, lambda ctx: ctx.iteration_count < 3).commit()

NESTED_LOOPS = [to_nine, asking_rounds, inc_rounds]


async def test_a_loop_in_a_nested_loop_body_starts_over_in_each_outer_iteration(db: str) -> None:
    async with booted(db, NESTED_LOOPS) as engine:
        run = await waited(engine, "to-nine", {"v": 0})
    assert run.status is RunStatus.SUCCESS and run.result == {"v": 9}
    assert inputs == list(range(9))
    assert records(run) == {"to-three": ("success", {"v": 9}), "to-three.add-one": ("success", {"v": 9})}


async def test_a_suspending_loop_in_a_nested_loop_body_keeps_each_resume(db: str) -> None:
    async with booted(db, NESTED_LOOPS) as engine:
        run = await waited(engine, "asking-rounds", {"n": 0})
        answers = iter(f"yes{i}" for i in range(10))
        for _ in range(2):  # the first outer iteration: ask n=0, then n=1
            assert run.status is RunStatus.SUSPENDED
            async with asyncio.timeout(10):
                run = await engine.resume(run.run_id, resume_data=next(answers), wait=True)
    # A new process for the second outer iteration: it starts over from what was recorded.
    async with booted(db, NESTED_LOOPS) as engine:
        assert run.status is RunStatus.SUSPENDED
        inner = next(s for s in run.steps if s.path == ("asking-to-two", "ask-count"))
        assert (inner.payload, inner.iteration) == ({"n": 2, "answer": "yes1"}, 1)
        async with asyncio.timeout(10):
            run = await engine.resume(run.run_id, resume_data=next(answers), wait=True)
    assert run.status is RunStatus.SUCCESS, run.error
    assert run.result == {"n": 3, "answer": "yes2"}
    assert inputs == [(0, None), (0, "yes0"), (1, None), (1, "yes1"), (2, None), (2, "yes2")]


async def test_a_foreach_of_nested_workflows_in_a_loop_runs_its_items_in_each_iteration(db: str) -> None:
    async with booted(db, NESTED_LOOPS) as engine:
        run = await waited(engine, "inc-rounds", [0, 10])
    assert run.status is RunStatus.SUCCESS and run.result == [3, 13]
    assert sorted(inputs) == [0, 1, 2, 10, 11, 12]
    item = next(s for s in run.steps if s.path == ("inc-each", "inc-flow", "[0]", "inc"))
    assert (item.payload, item.output) == (2, 3)


# -- bail inside a parallel ends only its branch ----------------------------------------------------------


@create_step("quits")
async def quits(ctx: StepContext) -> Any:
    return ctx.bail({"bailed": True})


@create_step("other-side")
async def other_side(ctx: StepContext) -> dict[str, int]:
    return {"other": 1}


@create_step("boom")
async def boom(ctx: StepContext) -> None:
    raise RuntimeError("boom")


@create_step("after-block")
async def after_block(ctx: StepContext) -> Any:
    ran["after-block"] += 1
    return {"block": ctx.input_data}


bail_beside_success = (
    create_workflow("bail-beside-success").parallel([quits, other_side]).then(after_block).commit()
)
bail_beside_failure = (
    create_workflow("bail-beside-failure").parallel([quits, boom]).then(after_block).commit()
)
bail_beside_suspend = (
    create_workflow("bail-beside-suspend").parallel([quits, ask_once]).then(after_block).commit()
)
BAILS = [bail_beside_success, bail_beside_failure, bail_beside_suspend]


async def test_bail_inside_a_parallel_ends_only_its_branch(db: str) -> None:
    async with booted(db, BAILS) as engine:
        done = await waited(engine, "bail-beside-success", {})
        assert done.status is RunStatus.SUCCESS
        assert done.result == {"block": {"quits": {"bailed": True}, "other-side": {"other": 1}}}
        failed = await waited(engine, "bail-beside-failure", {})
        assert failed.status is RunStatus.FAILED, "a bail never hides a failed sibling"
        assert failed.error is not None and failed.error.message == "boom"
        suspended = await waited(engine, "bail-beside-suspend", {})
        assert suspended.status is RunStatus.SUSPENDED and suspended.suspended == (("ask-once",),)
    async with booted(db, BAILS) as engine:  # walked again from the records: the same block output
        async with asyncio.timeout(10):
            resumed = await engine.resume(suspended.run_id, resume_data="go", wait=True)
    assert resumed.status is RunStatus.SUCCESS
    assert resumed.result == {"block": {"quits": {"bailed": True}, "ask-once": {"ok": "go"}}}
    assert ran["after-block"] == 2


# -- resuming an item of a foreach of workflows by the inner step's path --------------------------


@create_step("ask-item")
async def ask_item(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        await ctx.suspend({"item": ctx.input_data})
        return None
    return {"item": ctx.input_data, "answer": ctx.resume_data}


asking_item = create_workflow("asking-item").then(ask_item).commit()
ask_each = create_workflow("ask-each").foreach(asking_item, concurrency=2).commit()


async def test_an_item_of_a_foreach_of_workflows_is_resumed_by_the_inner_path_and_index(db: str) -> None:
    """As Mastra names it: the step path without the item ("asking-item.ask-item") and the
    index (before, only the outer step with the index was found)."""
    async with booted(db, [ask_each]) as engine:
        run = await waited(engine, "ask-each", [1, 2])
        assert run.suspended == (("asking-item", "[0]", "ask-item"), ("asking-item", "[1]", "ask-item"))
        async with asyncio.timeout(10):
            run = await engine.resume(
                run.run_id, step=["asking-item", "ask-item"], for_each_index=1, resume_data="b", wait=True
            )
        assert run.suspended == (("asking-item", "[0]", "ask-item"),)
        async with asyncio.timeout(10):  # one left: the path alone names it
            run = await engine.resume(run.run_id, step=["asking-item.ask-item"], resume_data="a", wait=True)
    assert run.status is RunStatus.SUCCESS, run.error
    assert run.result == [{"item": 1, "answer": "a"}, {"item": 2, "answer": "b"}]


# -- what a step produces that no store can encode, or that is too large --------------------------


@create_step("lone-surrogate")
async def lone_surrogate(ctx: StepContext) -> Any:
    ran["lone-surrogate"] += 1
    return {"s": "a\ud800b"}  # what json.loads makes of a truncated emoji's escape


@create_step("big-chunk")
async def big_chunk(ctx: StepContext) -> Any:
    try:
        await ctx.writer.write("c" * (2 * 1024 * 1024))
    except Exception as exc:  # refused in the step, which goes on
        return type(exc).__name__
    return "written"


@create_step("too-deep")
async def too_deep(ctx: StepContext) -> Any:
    made: Any = 1
    for _ in range(31):  # one level more than limits.JSON_DEPTH
        made = {"k": made}
    return made


@create_step("bloats-context")
async def bloats_context(ctx: StepContext) -> Any:
    ctx.request_context["big"] = "b" * (100 * 1024)  # over limits.REQUEST_CONTEXT
    return 1


unencodable = create_workflow("unencodable").then(count_up).then(lone_surrogate).commit()
bloating = create_workflow("bloating").then(count_up).then(bloats_context).commit()
deep = create_workflow("deep").then(count_up).then(too_deep).commit()
chunky = create_workflow("chunky").then(big_chunk).commit()


async def test_a_step_output_no_store_can_encode_fails_the_step_and_keeps_the_records(db: str) -> None:
    """Before, the store's encoder raised at the commit: the run failed as an engine error
    with its step records lost, and a Start with wait got the raw TypeError."""
    async with booted(db, [unencodable, chunky, deep, bloating]) as engine:
        run = await waited(engine, "unencodable", 1)
        assert run.status is RunStatus.FAILED and run.error is not None
        assert run.error.name == "OutputSerializationError", run.error
        assert records(run) == {"count-up": ("success", 2), "lone-surrogate": ("failed", None)}
        # Nested deeper than any reply could carry (limits.JSON_DEPTH): the same.
        run = await waited(engine, "deep", 1)
        assert run.error is not None and run.error.name == "OutputSerializationError", run.error
        assert "nested more than 30 levels deep" in run.error.message
        assert records(run) == {"count-up": ("success", 2), "too-deep": ("failed", None)}
        # A request context a body made too large is not stored either: the step fails.
        run = await waited(engine, "bloating", 1)
        assert run.error is not None and run.error.name == "PayloadTooLarge", run.error
        assert "big" not in run.request_context
        assert records(run) == {"count-up": ("success", 2), "bloats-context": ("failed", None)}
        chunked = await waited(engine, "chunky", None)
        assert (chunked.status, chunked.result) == (RunStatus.SUCCESS, "PayloadTooLarge")


# -- conditions: suspend and bail do nothing, as in Mastra ---------------------------------------------


async def stops_at_three(ctx: Any) -> bool:
    ctx.bail("ignored")
    await ctx.suspend({"ignored": True}, resume_label="never")
    return bool(ctx.input_data >= 3)


counting_to_three = create_workflow("counting-to-three").dountil(count_up, stops_at_three).commit()


async def test_a_conditions_suspend_and_bail_do_nothing(db: str) -> None:
    """Mastra hands conditions the step's context with `suspend` and `bail` as no-ops: a
    condition that calls them neither suspends nor ends its run (before, they were missing,
    and such a loop failed with LoopConditionError)."""
    async with booted(db, [counting_to_three]) as engine:
        run = await waited(engine, "counting-to-three", 0)
    assert (run.status, run.result) == (RunStatus.SUCCESS, 3), run.error
    assert run.suspended == ()
