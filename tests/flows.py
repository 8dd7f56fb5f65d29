"""Workflows exercising the run semantics; served by the in-process test server.

Module-level `CALLS` and `CLEANUPS` record side effects per run id, so tests can
assert what step bodies really did (how often they ran, whether `finally` ran).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from typing import Any

from pydantic import BaseModel

from runservice.workflow import StepContext, clone_step, create_step, create_workflow

CALLS: Counter[str] = Counter()
"""`"<run_id>:<step>"` -> number of times that step's body started."""
CLEANUPS: dict[str, str] = {}
"""run id -> how the slow step's body ended ("finally" once its finally block ran)."""


def ran(run_id: str) -> dict[str, int]:
    """Step name -> how many times its body started in the run `run_id` (from CALLS)."""
    return {key.split(":", 1)[1]: count for key, count in CALLS.items() if key.split(":", 1)[0] == run_id}


def _count(ctx: StepContext, name: str) -> int:
    CALLS[f"{ctx.run_id}:{name}"] += 1
    return CALLS[f"{ctx.run_id}:{name}"]


class Value(BaseModel):
    value: int


class Text(BaseModel):
    text: str


class Decision(BaseModel):
    approved: bool
    note: str = ""


class Question(BaseModel):
    question: str


# -- a three-step pipeline ------------------------------------------------------------------


@create_step("add-one", input_schema=Value, output_schema=Value, description="Adds one")
async def add_one(ctx: StepContext) -> Value:
    _count(ctx, "add-one")
    return Value(value=ctx.input_data.value + 1)


@create_step("double", input_schema=Value, output_schema=Value)
async def double(ctx: StepContext) -> dict[str, int]:
    return {"value": ctx.input_data.value * 2}


@create_step("to-text", input_schema=Value, output_schema=Text)
async def to_text(ctx: StepContext) -> Text:
    return Text(text=f"value is {ctx.input_data.value}")


pipeline = (
    create_workflow("pipeline", input_schema=Value, output_schema=Text, description="add, double, format")
    .then(add_one)
    .then(double)
    .then(to_text)
    .commit()
)


# -- suspend and resume -----------------------------------------------------------------------


@create_step(
    "approve", input_schema=Value, output_schema=Decision, resume_schema=Decision, suspend_schema=Question
)
async def approve(ctx: StepContext) -> Any:
    _count(ctx, "approve")
    if ctx.resume_data is None:
        await ctx.suspend(Question(question=f"approve {ctx.input_data.value}?"), resume_label="manager")
        return None
    assert ctx.suspend_data == {"question": f"approve {ctx.input_data.value}?"}
    return ctx.resume_data


@create_step("finish", input_schema=Decision, output_schema=Text)
async def finish(ctx: StepContext) -> Text:
    _count(ctx, "finish")
    return Text(text="approved" if ctx.input_data.approved else "rejected")


approval = (
    create_workflow("approval", input_schema=Value, output_schema=Text)
    .then(add_one)
    .then(approve)
    .then(finish)
    .commit()
)


@create_step("ask-a", input_schema=Value, output_schema=Decision, resume_schema=Decision)
async def ask_a(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        await ctx.suspend({"which": "a"})
        return None
    return ctx.resume_data


ask_b = clone_step(ask_a, id="ask-b")


@create_step("draft", input_schema=Value, resume_schema=Decision)
async def draft(ctx: StepContext) -> Any:
    """Returns a draft after it suspends (Mastra's suspendOutput), retried once on its first try."""
    if ctx.resume_data is None:
        if _count(ctx, "draft") == 1:
            raise RuntimeError("first try")
        await ctx.suspend({"review": ctx.input_data.value})
        return {"draft": f"text {ctx.input_data.value}"}
    return {"final": ctx.resume_data.approved}


drafting = create_workflow("drafting", input_schema=Value, retry_config={"attempts": 1}).then(draft).commit()

two_questions = create_workflow("two-questions", input_schema=Value).parallel([ask_a, ask_b]).commit()


# -- failures, retries, bail --------------------------------------------------------------------


@create_step("flaky", input_schema=Value, output_schema=Value, retries=2)
async def flaky(ctx: StepContext) -> Value:
    _count(ctx, "flaky")
    if ctx.retry_count < 2:
        raise RuntimeError(f"attempt {ctx.retry_count} failed")
    return Value(value=ctx.retry_count)


retrying = create_workflow("retrying", input_schema=Value).then(flaky).commit()


@create_step("broken", input_schema=Value)
async def broken(ctx: StepContext) -> Any:
    _count(ctx, "broken")
    raise ValueError("boom")


failing = (
    create_workflow("failing", input_schema=Value, retry_config={"attempts": 2, "delay": 0.05})
    .then(broken)
    .then(double)
    .commit()
)


@create_step("early-exit", input_schema=Value)
async def early_exit(ctx: StepContext) -> Any:
    if ctx.input_data.value > 10:
        return ctx.bail({"bailed": True, "value": ctx.input_data.value})
    return ctx.input_data


bailing = create_workflow("bailing", input_schema=Value).then(early_exit).then(double).commit()


# -- cancel -----------------------------------------------------------------------------------------


@create_step("slow", input_schema=Value)
async def slow(ctx: StepContext) -> Any:
    CLEANUPS[ctx.run_id] = "started"
    try:
        await asyncio.sleep(60)
        CLEANUPS[ctx.run_id] = "completed"
    finally:
        if CLEANUPS[ctx.run_id] == "started":
            CLEANUPS[ctx.run_id] = "finally"
    return Value(value=ctx.input_data.value)


sluggish = create_workflow("sluggish", input_schema=Value).then(add_one).then(slow).then(double).commit()


# -- concurrent resumes -------------------------------------------------------------------------------


@create_step("tail", input_schema=Decision, output_schema=Value)
async def tail(ctx: StepContext) -> Value:
    count = _count(ctx, "tail")
    await asyncio.sleep(0.05)
    return Value(value=count)


racing = create_workflow("racing", input_schema=Value).then(approve).then(tail).commit()


# -- state, writer, request context -------------------------------------------------------------------


class Tally(BaseModel):
    seen: list[str] = []
    total: int = 0


@create_step("remember", input_schema=Value, output_schema=Value)
async def remember(ctx: StepContext) -> Value:
    ctx.set_state(
        {"seen": [*ctx.state["seen"], "remember"], "total": ctx.state["total"] + ctx.input_data.value}
    )
    await ctx.writer.write({"progress": "half"})
    await ctx.writer.write({"progress": "done"})
    return Value(value=ctx.input_data.value)


@create_step("report", input_schema=Value)
async def report(ctx: StepContext) -> dict[str, Any]:
    return {
        "state": ctx.state,
        "tenant": ctx.request_context.get("tenant"),
        "first": ctx.get_step_result("remember"),
        "init": ctx.get_init_data(),
        "resource": ctx.resource_id,
        "workflow": ctx.workflow_id,
    }


stateful = (
    create_workflow("stateful", input_schema=Value, state_schema=Tally).then(remember).then(report).commit()
)


# -- control flow -----------------------------------------------------------------------------------------


@create_step("triple", input_schema=Value, output_schema=Value)
async def triple(ctx: StepContext) -> Value:
    return Value(value=ctx.input_data.value * 3)


@create_step("fails-fast", input_schema=Value)
async def fails_fast(ctx: StepContext) -> Any:
    raise RuntimeError("branch failed")


@create_step("collect", input_schema=None)
async def collect(ctx: StepContext) -> Any:
    return {"got": ctx.input_data}


parallel_ok = (
    create_workflow("parallel-ok", input_schema=Value).parallel([double, triple]).then(collect).commit()
)
parallel_fail = create_workflow("parallel-fail", input_schema=Value).parallel([double, fails_fast]).commit()
parallel_allow = (
    create_workflow("parallel-allow", input_schema=Value)
    .parallel([double, fails_fast], allow_failure=True)
    .commit()
)


def is_big(ctx: Any) -> bool:
    return bool(ctx.input_data["value"] > 5)


def is_even(ctx: Any) -> bool:
    return bool(ctx.input_data["value"] % 2 == 0)


def explodes(ctx: Any) -> bool:
    raise RuntimeError("condition failed")


branching = (
    create_workflow("branching", input_schema=Value)
    .branch([(is_big, double), (is_even, triple), (explodes, add_one)])
    .commit()
)


def below_twenty(ctx: Any) -> bool:
    return bool(ctx.input_data["value"] < 20)


def iterations_at_least_three(ctx: Any) -> bool:
    return bool(ctx.iteration_count >= 3)


looping_while = create_workflow("looping-while", input_schema=Value).dowhile(double, below_twenty).commit()
looping_until = (
    create_workflow("looping-until", input_schema=Value).dountil(add_one, iterations_at_least_three).commit()
)


@create_step("check-item", input_schema=Value, output_schema=Value, resume_schema=Decision)
async def check_item(ctx: StepContext) -> Any:
    if ctx.input_data.value < 0 and ctx.resume_data is None:
        await ctx.suspend({"item": ctx.input_data.value}, resume_label=f"item{ctx.input_data.value}")
        return None
    await asyncio.sleep(0.01)
    return Value(value=abs(ctx.input_data.value) * 10)


each = create_workflow("each", input_schema=list[Value]).foreach(check_item, concurrency=2).commit()
each_unchecked = create_workflow("each-unchecked").foreach(check_item).commit()
check_flow = create_workflow("check-flow", input_schema=Value).then(check_item).commit()
each_flow = create_workflow("each-flow", input_schema=list[Value]).foreach(check_flow, concurrency=2).commit()


@create_step("asks-large")
async def asks_large(ctx: StepContext) -> Any:
    """Suspends with about 0.9 MB, or ends once resumed."""
    if ctx.resume_data is None:
        await ctx.suspend({"form": str(ctx.input_data) * 900_000})
        return None
    return {"done": ctx.input_data}


each_flow_large = (
    create_workflow("each-flow-large")
    .foreach(create_workflow("asks-large-flow").then(asks_large).commit(), concurrency=5)
    .commit()
)
"""A foreach of nested workflows whose step suspends on a negative value, as `each`'s does."""


@create_step("tick")
async def tick(ctx: StepContext) -> Any:
    return {"n": ctx.input_data, "square": ctx.input_data * ctx.input_data}


many_each = create_workflow("many-each").foreach(tick).commit()
"""A foreach of a trivial step, one item at a time: for large item counts."""


def _one(ctx: StepContext) -> int:
    return 1


mapped = (
    create_workflow("mapped", input_schema=Value)
    .then(double)
    .map(
        {
            "doubled": {"step": "double", "path": "value"},
            "original": {"init_data": True, "path": "value"},
            "constant": {"value": "k", "schema": str},  # Mastra's typed sources: shown, not checked
            "tenant": {"request_context_path": "tenant"},
            "one": {"fn": _one, "schema": int},
        },
        id="reshape",
    )
    .map(lambda ctx: {"sum": ctx.input_data["doubled"] + ctx.input_data["original"]})
    .commit()
)

napping = create_workflow("napping", input_schema=Value).sleep(0.2).then(double).commit()
long_nap = create_workflow("long-nap", input_schema=Value).sleep(60).then(double).commit()


def soon(ctx: Any) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.2)


short_nap = create_workflow("short-nap", input_schema=Value).sleep(0.3).commit()
each_twice = (
    create_workflow("each-twice", input_schema=Value)
    .map(lambda ctx: [ctx.input_data, ctx.input_data])
    .foreach(clone_step(double, id="double-each"))
    .commit()
)
nap_beside = (
    create_workflow("nap-beside", input_schema=Value).parallel([short_nap, double, each_twice]).commit()
)
"""Bodies that start while a parallel sibling sleeps (the first branch's sleep starts first)."""

napping_until = create_workflow("napping-until", input_schema=Value).sleep_until(soon).then(triple).commit()


def soon_here(ctx: Any) -> dt.datetime:
    """A naive datetime: the server's local time."""
    return dt.datetime.now() + dt.timedelta(seconds=0.2)


napping_until_long_ago = (
    create_workflow("napping-until-long-ago", input_schema=Value)
    .sleep_until(lambda ctx: dt.datetime.min)  # naive: its local time is before year 1
    .then(triple)
    .commit()
)
napping_until_here = (
    create_workflow("napping-until-here", input_schema=Value).sleep_until(soon_here).then(triple).commit()
)


@create_step("ask-more", input_schema=Value, output_schema=Value, resume_schema=Decision)
async def ask_more(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        await ctx.suspend({"at": ctx.input_data.value})
        return None
    return Value(value=ctx.input_data.value + 1)


def reached_three(ctx: Any) -> bool:
    return bool(ctx.input_data["value"] >= 3)


asking_loop = create_workflow("asking-loop", input_schema=Value).dountil(ask_more, reached_three).commit()


@create_step("slow-item", input_schema=Value, output_schema=Value)
async def slow_item(ctx: StepContext) -> Value:
    _count(ctx, "slow-item")
    await asyncio.sleep(0.1 if ctx.input_data.value == 0 else 60)
    return Value(value=ctx.input_data.value)


slow_each = create_workflow("slow-each", input_schema=list[Value]).foreach(slow_item, concurrency=2).commit()
restart_nap = create_workflow("restart-nap", input_schema=Value).sleep(1.5).then(double).commit()

everything = (
    create_workflow("everything", input_schema=Value, description="every construct in one graph")
    .then(add_one)
    .parallel([double, triple])
    .map(
        lambda ctx: [
            {"value": ctx.input_data["double"]["value"]},
            {"value": ctx.input_data["triple"]["value"]},
        ]
    )
    .foreach(check_item, concurrency=2)
    .map({"first": {"step": "check-item", "path": "0"}}, id="first-item")
    .map(lambda ctx: ctx.input_data["first"])
    .dowhile(clone_step(double, id="double-again"), below_twenty)
    .branch([(is_big, clone_step(triple, id="triple-big")), (is_even, clone_step(add_one, id="add-even"))])
    .sleep(0.01)
    .commit()
)


# -- nested workflows, three levels ------------------------------------------------------------------------

innermost = create_workflow("innermost", input_schema=Value).then(double).then(approve).commit()
middle = create_workflow("middle", input_schema=Value).then(add_one).then(innermost).commit()
outer = create_workflow("outer", input_schema=Value).then(middle).then(finish).commit()

nested_failing = create_workflow("nested-failing-inner", input_schema=Value).then(broken).commit()
nested_failure = create_workflow("nested-failure", input_schema=Value).then(nested_failing).commit()

# -- a failed attempt's state changes are dropped (Mastra's handlers/step.ts) ----------------


@create_step("note-then-fail", retries=1)
async def note_then_fail(ctx: StepContext) -> Any:
    log = [*ctx.state.get("log", []), f"attempt{ctx.retry_count}"]
    ctx.set_state({"n": ctx.state.get("n", 0) + 1, "log": log})
    if ctx.retry_count == 0:
        raise RuntimeError("the first attempt fails after setting state")
    return ctx.state


@create_step("doomed-branch")
async def doomed_branch(ctx: StepContext) -> Any:
    ctx.set_state({"n": 999, "doomed": True})
    raise RuntimeError("this branch fails after setting state")


@create_step("kept-branch")
async def kept_branch(ctx: StepContext) -> Any:
    ctx.set_state({"kept": True})
    return "kept"


@create_step("read-state", input_schema=None)
async def read_state(ctx: StepContext) -> Any:
    return ctx.state


retried_state = create_workflow("retried-state").then(note_then_fail).then(read_state).commit()
failed_branch_state = (
    create_workflow("failed-branch-state")
    .parallel([doomed_branch, kept_branch], allow_failure=True)
    .then(read_state)
    .commit()
)


@create_step("always-fails-slowly", retries=3)
async def always_fails_slowly(ctx: StepContext) -> Any:
    _count(ctx, "always-fails-slowly")
    raise RuntimeError(f"attempt {ctx.retry_count}")


delayed_retries = (
    create_workflow("delayed-retries", retry_config={"attempts": 3, "delay": 5})
    .then(always_fails_slowly)
    .commit()
)


@create_step("needs-value", input_schema=Value, output_schema=Value)
async def needs_value(ctx: StepContext) -> Value:
    _count(ctx, "needs-value")
    return Value(value=ctx.input_data.value)


refused_input = (
    create_workflow("refused-input", retry_config={"attempts": 2, "delay": 0.01}).then(needs_value).commit()
)
"""No input schema of its own: the step's refuses what the run was given."""
refused_item = (
    create_workflow("refused-item", retry_config={"attempts": 2, "delay": 0.01}).foreach(needs_value).commit()
)
"""A foreach whose step refuses one of the items."""


# -- decisions taken before a suspension are not taken again at its resume ---------------------


@create_step("when-ready")
async def when_ready(ctx: StepContext) -> dict[str, bool]:
    _count(ctx, "when-ready")
    return {"ran": True}


@create_step("gate")
async def gate(ctx: StepContext) -> Any:
    """Changes the state the conditions before it read, then suspends."""
    if ctx.resume_data is None:
        ctx.set_state({"ready": True, "n": 0})
        await ctx.suspend({"ask": "go on?"})
        return None
    return {"state": dict(ctx.state)}


@create_step("count-up")
async def count_up(ctx: StepContext) -> dict[str, int]:
    n = int(ctx.state.get("n", 0)) + 1
    ctx.set_state({"n": n})
    _count(ctx, "count-up")
    return {"n": n}


branch_then_gate = (
    create_workflow("branch-then-gate")
    .branch([(lambda c: bool(c.state.get("ready", False)), when_ready)])
    .then(gate)
    .commit()
)
"""No branch holds at the start; the gate after it makes one hold before it suspends."""

loop_then_gate = (
    create_workflow("loop-then-gate")
    .dowhile(count_up, lambda c: int(c.state.get("n", 0)) < 3)
    .then(gate)
    .commit()
)
"""The loop ends at n = 3; the gate after it sets n back to 0 before it suspends."""


@create_step("tick-until-ready")
async def tick_until_ready(ctx: StepContext) -> Any:
    """Counts `n` up; at 2 it makes `ready` hold and suspends."""
    if ctx.resume_data is not None:
        return {"n": int(ctx.state.get("n", 0))}
    n = int(ctx.state.get("n", 0)) + 1
    ctx.set_state({"n": n, "ready": n == 2})
    if n == 2:
        await ctx.suspend({"ask": "go on?"})
        return None
    return {"n": n}


def _branch_then_loop(workflow_id: str) -> Any:
    return (
        create_workflow(workflow_id)
        .branch([(lambda c: bool(c.state.get("ready", False)), when_ready)])
        .dowhile(tick_until_ready, lambda c: int(c.state.get("n", 0)) < 2)
        .commit()
    )


branch_then_loop_in_loop = (
    create_workflow("branch-then-loop-in-loop")
    .dountil(_branch_then_loop("branch-then-loop"), lambda c: True)
    .commit()
)
"""Inside a loop's body: a branch none of whose conditions holds, then a loop that suspends
after it made the branch's condition hold."""

mark_then_count = (
    create_workflow("mark-then-count")
    .dountil(
        create_workflow("mark-then-count-body")
        .branch([(lambda c: int(c.state.get("n", 0)) >= 1, when_ready)])
        .then(count_up)
        .commit(),
        lambda c: int(c.state.get("n", 0)) >= 3,
    )
    .commit()
)
"""Three iterations of a body whose branch holds from the second on (`when-ready` runs twice)."""


WORKFLOWS = [
    refused_input,
    refused_item,
    retried_state,
    failed_branch_state,
    delayed_retries,
    pipeline,
    approval,
    drafting,
    two_questions,
    retrying,
    failing,
    bailing,
    sluggish,
    racing,
    stateful,
    parallel_ok,
    parallel_fail,
    parallel_allow,
    branching,
    looping_while,
    looping_until,
    each,
    each_unchecked,
    each_flow,
    each_flow_large,
    many_each,
    mapped,
    napping,
    long_nap,
    napping_until,
    napping_until_here,
    napping_until_long_ago,
    nap_beside,
    outer,
    nested_failure,
    asking_loop,
    slow_each,
    restart_nap,
    everything,
    branch_then_gate,
    loop_then_gate,
    branch_then_loop_in_loop,
    mark_then_count,
]
