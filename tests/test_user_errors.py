"""Whatever a step's code raises fails its step (or its run), never the server, and leaves a
run every reply can carry.

- SystemExit or KeyboardInterrupt (`sys.exit()` in a body, an argparse error in a library it
  calls, a validator of its schema): before, it stopped the server's event loop.
- An exception whose `details` is not JSON data (grpc's AioRpcError's is a method) or whose
  message UTF-8 cannot carry: before, the run failed INTERNAL with its step left `running`.
- An exception with details nested too deep or a message of megabytes: before, the run was
  stored as it was, and GetRun and ListRuns of its workflow failed from then on (audits).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys
from typing import Any

import pytest
from conftest import client_for
from pydantic import BaseModel, field_validator

from runservice import errors
from runservice.client import Client
from runservice.model import Event, RunError, RunStatus, StepStatus
from runservice.workflow import StepContext, create_step, create_workflow


@create_step("exits")
async def exits(ctx: StepContext) -> Any:
    await asyncio.sleep(0.05)
    sys.exit(3)


@create_step("interrupted")
async def interrupted(ctx: StepContext) -> Any:
    raise KeyboardInterrupt


@create_step("beside")
async def beside(ctx: StepContext) -> Any:
    await asyncio.sleep(0.3)
    return {"done": True}


class Quitting(BaseModel):
    value: int

    @field_validator("value")
    @classmethod
    def quits(cls, value: int) -> int:
        if value < 0:
            sys.exit(5)
        return value


@create_step("checked", input_schema=Quitting)
async def checked(ctx: StepContext) -> Any:
    return {"value": ctx.input_data.value}


@create_step("pause")
async def pause(ctx: StepContext) -> Any:
    await asyncio.sleep(0.1)  # `beside` is recorded `running` meanwhile
    return ctx.input_data


@create_step("after")
async def after(ctx: StepContext) -> Any:
    return {"after": True}


def quit_condition(ctx: Any) -> bool:
    sys.exit(4)


class Odd(Exception):
    def __init__(self, message: str, details: Any) -> None:
        super().__init__(message)
        self.details = details


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"inner": value}
    return value


ODD = {
    "method": Odd("upstream unavailable", Odd.__init__),
    "set": Odd("a set of codes", {1, 2}),
    "surrogate": Odd("stderr: \udcff broken", {"text": "fine"}),
    "surrogate-details": Odd("bad details", {"text": "\udcff"}),
    "deep": Odd("deep body", nested(41)),
    "huge": Odd("response body: " + "x" * 3_000_000, {"big": "y" * 200_000}),
}


@create_step("raises-odd")
async def raises_odd(ctx: StepContext) -> Any:
    raise ODD[ctx.input_data["kind"]]


@create_step("item-fails-large")
async def item_fails_large(ctx: StepContext) -> Any:
    raise Odd("\N{GRINNING FACE}" * 16_384, {"big": "x" * 64_000})


@create_step("item-raises-odd")
async def item_raises_odd(ctx: StepContext) -> Any:
    raise ODD[ctx.input_data]


class Declined(Exception):
    """A library's error with properties of its own (Mastra keeps a thrown error's, `err.code`)."""

    def __init__(self, code: int, api_key: str) -> None:
        super().__init__(f"card declined ({code})")
        self.code = code
        self.api_key = api_key  # what an exception may hold: never stored


@create_step("declines")
async def declines(ctx: StepContext) -> Any:
    if ctx.input_data.get("told"):
        error = Declined(51, "sk-live-secret")
        error.details = {"code": error.code}  # type: ignore[attr-defined]  # what a caller is told
        raise error
    raise Declined(51, "sk-live-secret")


@create_step("charges")
async def charges(ctx: StepContext) -> Any:
    try:
        raise ConnectionError("card service down")
    except ConnectionError as exc:
        raise RuntimeError("charge failed") from exc


@create_step("handles-badly")
async def handles_badly(ctx: StepContext) -> Any:
    try:
        raise KeyError("card")
    except KeyError:
        raise RuntimeError("handled badly")  # noqa: B904 - the implicit context is the point


def chain(messages: list[str], loop: bool = False) -> BaseException:
    """An exception raised from each next one, outermost first; `loop`: the last from the first."""
    raised = [ValueError(message) for message in messages]
    for upper, lower in itertools.pairwise(raised):
        upper.__cause__ = lower
    if loop:
        raised[-1].__cause__ = raised[0]
    return raised[0]


@create_step("raises-chain")
async def raises_chain(ctx: StepContext) -> Any:
    raise chain(["top", "level 1 " + "x" * 5_000, "level 2", "level 3", "level 4", "level 5"], ctx.input_data)


WORKFLOWS = [
    create_workflow("exiting", retry_config={"attempts": 1, "delay": 0}).then(exits).commit(),
    create_workflow("exiting-beside").parallel([beside, exits, interrupted]).commit(),
    create_workflow("exiting-branch").branch([(quit_condition, after)]).commit(),
    create_workflow("exiting-loop").dowhile(after, quit_condition).commit(),
    create_workflow("exiting-validator").then(checked).commit(),
    create_workflow("exiting-input", input_schema=Quitting).then(after).commit(),
    create_workflow("exiting-validator-beside")
    .parallel([beside, create_workflow("paused-check").then(pause).then(checked).commit()])
    .commit(),
    create_workflow("odd-error").then(raises_odd).commit(),
    create_workflow("declined", retry_config={"attempts": 0, "delay": 0}).then(declines).commit(),
    create_workflow("odd-item-error").foreach(item_raises_odd).commit(),
    create_workflow("many-large-errors").foreach(item_fails_large, concurrency=100).commit(),
    create_workflow("caused", retry_config={"attempts": 0, "delay": 0})
    .then(create_workflow("caused-inner").then(charges).commit())
    .commit(),
    create_workflow("caused-implicitly").then(handles_badly).commit(),
    create_workflow("caused-deeply").then(raises_chain).commit(),
]

client = client_for(WORKFLOWS)

pytestmark = pytest.mark.timeout(60)


async def start(client: Client, workflow: str, data: Any) -> Any:
    run = await client.get_workflow(workflow).create_run()
    return await run.start_async(input_data=data)


async def stream(client: Client, workflow: str, data: Any) -> tuple[str, list[Event]]:
    run = await client.get_workflow(workflow).create_run()
    return run.run_id, [event async for event in run.stream(input_data=data)]


async def test_a_body_that_exits_fails_its_step_and_is_retried(client: Client) -> None:
    run = await start(client, "exiting", {})
    assert run.status is RunStatus.FAILED and run.error is not None
    assert (run.error.name, run.error.message) == ("SystemExit", "3")
    (record,) = run.steps
    assert (record.status, record.attempt) == (StepStatus.FAILED, 1)


async def test_siblings_of_a_body_that_exits_run_to_their_end(client: Client) -> None:
    run = await start(client, "exiting-beside", {})
    assert run.status is RunStatus.FAILED and run.error is not None
    assert run.error.name in ("SystemExit", "KeyboardInterrupt")
    statuses = {".".join(s.path): s.status for s in run.steps}
    assert statuses == {
        "beside": StepStatus.SUCCESS,
        "exits": StepStatus.FAILED,
        "interrupted": StepStatus.FAILED,
    }


async def test_a_condition_that_exits_is_a_condition_that_raised(client: Client) -> None:
    branch = await start(client, "exiting-branch", {})
    assert branch.status is RunStatus.SUCCESS and branch.result == {}
    loop = await start(client, "exiting-loop", {})
    assert loop.status is RunStatus.FAILED and loop.error is not None
    assert loop.error.name == "LoopConditionError" and "SystemExit" in loop.error.message


async def test_a_schema_validator_that_exits_fails_the_run_or_the_call(client: Client) -> None:
    run = await start(client, "exiting-validator", {"value": -1})
    assert run.status is RunStatus.FAILED
    # An error of the engine's drive (here the validator's) ends the steps under way with the
    # run: before, `beside`, stopped by it, stayed `running` in a failed run.
    beside = await start(client, "exiting-validator-beside", {"value": -1})
    assert beside.status is RunStatus.FAILED and beside.error is not None
    assert beside.error.name == "InternalError"
    stored = await client.get_workflow("exiting-validator-beside").run_by_id(beside.run_id)
    assert {".".join(s.path): s.status for s in stored.steps} == {
        "beside": StepStatus.CANCELED,
        "paused-check": StepStatus.CANCELED,
        "paused-check.pause": StepStatus.SUCCESS,
    }
    with pytest.raises(errors.ServiceError):
        await start(client, "exiting-input", {"value": -1})
    # The server is still there, and serves.
    assert (await start(client, "exiting-input", {"value": 1})).status is RunStatus.SUCCESS


async def test_an_exceptions_own_attributes_are_not_stored_only_its_details(client: Client) -> None:
    """Unlike Mastra's error, which keeps a thrown error's own properties, a run's error keeps
    only an exception's `details`: Python exceptions hold far more in their attributes (a
    JSONDecodeError the whole document, a CalledProcessError its command line, a database
    error the row's values, a client's error its key), which anyone reading the run would see
    (a review of a change that stored them)."""
    run = await start(client, "declined", {})
    assert run.error is not None and (run.error.name, run.error.message) == ("Declined", "card declined (51)")
    assert run.error.details is None
    told = await start(client, "declined", {"told": True})
    assert told.error is not None and told.error.details == {"code": 51}


@pytest.mark.parametrize("kind", list(ODD))
async def test_an_odd_exception_fails_its_step_and_the_run_reads_back(
    client: Client, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The engine logs the exception as raised: pytest-xdist cannot send a report whose captured
    # log holds a lone surrogate (the server's stderr writes it as its escape).
    caplog.set_level(logging.CRITICAL, logger="runservice.engine")
    run = await start(client, "odd-error", {"kind": kind})
    assert run.status is RunStatus.FAILED and run.error is not None
    assert run.error.name == "Odd"
    assert run.error.message.startswith(str(ODD[kind]).split(" ")[0])
    assert len(run.error.message) <= 16_384 + 40
    (record,) = run.steps
    assert record.status is StepStatus.FAILED and record.error == run.error
    if kind == "huge":  # cut once, and the count is right however often it is bounded again
        kept = len(run.error.message) - len(f"... ({len(str(ODD[kind])) - 16_344} more characters)")
        assert run.error.message.endswith(f"... ({len(str(ODD[kind])) - kept} more characters)")
        assert run.error.bounded() is run.error
    if kind in ("method", "set", "surrogate-details", "deep", "huge"):
        assert run.error.details is None
    else:
        assert run.error.details == {"text": "fine"}
    workflow = client.get_workflow("odd-error")
    assert (await workflow.run_by_id(run.run_id)).error == run.error
    listed, _ = await workflow.runs(full=True)
    assert run.run_id in {r.run_id for r in listed}
    items = await start(client, "odd-item-error", [kind])
    assert items.status is RunStatus.FAILED and items.error is not None
    assert items.error.name == "Odd" and len(items.error.message) <= 16_384 + 40
    assert (await client.get_workflow("odd-item-error").run_by_id(items.run_id)).error == items.error


async def test_many_items_failing_at_once_with_large_errors_leave_a_readable_run(client: Client) -> None:
    """Each error is bounded, but a batch of 100 items failing with 130 KiB each made a run of
    13 MiB that no view but the summary could read (a review). The run's errors together are
    held to 1 MiB: past it, each keeps its name and the start of its message."""
    run = await start(client, "many-large-errors", list(range(100)))
    assert run.status is RunStatus.FAILED and run.error is not None
    workflow = client.get_workflow("many-large-errors")
    full = await workflow.run_by_id(run.run_id)
    (foreach,) = full.steps
    errors_kept = [item.error for item in foreach.foreach_items if item.error is not None]
    assert len(errors_kept) == 100
    whole = [e for e in errors_kept if e.details is not None]
    brief = [e for e in errors_kept if e.details is None]
    assert whole and brief and all(e.name == "Odd" for e in errors_kept)
    assert all(len(e.message) < 400 and e.message.endswith("past their limit]") for e in brief)


async def test_an_error_keeps_the_chain_it_was_raised_from(client: Client) -> None:
    """`raise ... from` gives the run's error a `cause` (Mastra's error keeps its `cause`): its
    name and message, through a nested workflow, in the reply, in GetRun and in the log's
    last event; the chain is cut at four levels and its messages at 1,024 characters."""
    run_id, events = await stream(client, "caused", None)
    run = await client.get_workflow("caused").run_by_id(run_id)
    assert run.status is RunStatus.FAILED and run.error is not None
    assert (run.error.name, run.error.message) == ("RuntimeError", "charge failed")
    assert run.error.cause == RunError("ConnectionError", "card service down")
    assert events[-1].error == run.error
    (inner,) = [record for record in run.steps if record.path == ("caused-inner", "charges")]
    assert inner.error == run.error

    implicit = await start(client, "caused-implicitly", None)
    assert implicit.error is not None and implicit.error.message == "handled badly"
    assert implicit.error.cause is None  # an exception raised while handling another: no cause

    for loop in (False, True):
        deep = await start(client, "caused-deeply", loop)
        assert deep.error is not None and deep.error.message == "top"
        causes = []
        below = deep.error.cause
        while below is not None:
            assert below.details is None and len(below.message) <= 1_024
            causes.append(below.message.split(" ...")[0][:7])
            below = below.cause
        assert causes == ["level 1", "level 2", "level 3", "level 4"]
        assert deep.error.cause is not None and deep.error.cause.message.endswith("more characters)")
        assert (await client.get_workflow("caused-deeply").run_by_id(deep.run_id)).error == deep.error


def test_a_brief_error_keeps_no_cause_and_a_cycle_of_causes_ends_at_its_top() -> None:
    """Past a run's 1 MiB of errors each new one is kept brief: its name and the start of its
    message, no causes (a brief error that kept 4 KiB of causes let a wide foreach make a run
    no reply could carry: review). A cause that is the error itself again ends the chain."""
    error = RunError.from_exception(chain(["top", "level 1 " + "x" * 1_100, "level 2"]))
    assert error.cause is not None and error.brief().cause is None
    assert error.brief() == RunError("ValueError", "top")
    top, below = ValueError("top"), KeyError("below")
    top.__cause__, below.__cause__ = below, top
    assert RunError.from_exception(top).cause == RunError("KeyError", "'below'")


def test_the_cli_shows_an_errors_causes() -> None:
    """`runservice show` and `watch` print a failed run's error with what it was raised from."""
    from runservice.cli.output import error_line

    error = RunError.from_exception(chain(["charge failed", "card service down"]))
    assert error_line(error) == "ValueError: charge failed; from ValueError: card service down"
    assert error_line(RunError("Bail", "Bail")) == "Bail" and error_line(None) == ""
