"""The control-flow blocks of a run: parallel, branch, loops, foreach and sleeps."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from runservice.engine.outcome import CANCELED, SUSPENDED, Kind, Outcome, Scope, combine, failed, success
from runservice.model import (
    EventType,
    ForeachItem,
    Json,
    ResumeLabel,
    RunError,
    RunStatus,
    StepProgress,
    StepRecord,
    StepStatus,
)
from runservice.workflow import (
    BranchNode,
    ConditionContext,
    ForeachNode,
    LoopNode,
    ParallelNode,
    SleepNode,
    SleepUntilNode,
    Workflow,
)
from runservice.workflow.builder import sleep_seconds

if TYPE_CHECKING:
    from runservice.engine.driver import RunDriver

logger = logging.getLogger(__name__)


async def run_parallel(driver: RunDriver, node: ParallelNode, data: Json, scope: Scope) -> Outcome:
    """Every branch gets the same input; the block waits for all of them."""
    outcomes = await driver.gather(*(driver.run_unit(step, data, scope) for step in node.steps))
    return combine([s.id for s in node.steps], outcomes, allow_failure=node.allow_failure)


async def run_branch(driver: RunDriver, node: BranchNode, data: Json, scope: Scope) -> Outcome:
    """Every branch whose condition is true runs; a condition that raises counts as false.

    Once a branch has a record its selection is settled: conditions are not evaluated
    again when the block is re-entered after a resume or a restart.
    """
    chosen = [step for _, step in node.branches if driver.current_record((*scope.prefix, step.id), scope)]
    if not chosen:
        for condition, step in node.branches:
            try:
                if await evaluate(condition, driver, data, scope):
                    chosen.append(step)
            except Exception as exc:
                logger.warning(
                    "run %s: branch condition for %s raised %r; treated as false",
                    driver.run.run_id,
                    step.id,
                    exc,
                )
    outcomes = await driver.gather(*(driver.run_unit(step, data, scope) for step in chosen))
    return combine([s.id for s in chosen], outcomes)


async def run_loop(driver: RunDriver, node: LoopNode, data: Json, scope: Scope) -> Outcome:
    """dowhile / dountil: the body runs at least once; iteration n+1 gets iteration n's output."""
    path = (*scope.prefix, node.step.id)
    record = driver.records.get(path)
    iteration = record.iteration if record is not None and record.iteration else 1
    if record is not None and record.status is StepStatus.SUCCESS and not isinstance(node.step, Workflow):
        outcome = success(record.output)
    else:
        start = record.payload if record is not None else data
        outcome = await driver.run_unit(node.step, start, scope, iteration=iteration)
    while outcome.ok:
        try:
            holds = await evaluate(node.condition, driver, outcome.output, scope, iteration)
        except Exception as exc:
            error = RunError("LoopConditionError", f"loop condition of {node.step.id!r} raised: {exc}")
            return failed(error)
        if holds != (node.kind == "dowhile"):
            return outcome
        if driver.cancel_requested:
            return CANCELED
        iteration += 1
        if isinstance(node.step, Workflow):
            outcome = await driver.run_nested(node.step, outcome.output, path, scope, None, iteration)
        else:
            outcome = await driver.execute(node.step, outcome.output, path, scope, iteration=iteration)
    return outcome


async def run_foreach(driver: RunDriver, node: ForeachNode, data: Json, scope: Scope) -> Outcome:
    """Run the step once per item, at most `concurrency` at a time; outputs keep input order."""
    step = node.step
    path = (*scope.prefix, step.id)
    record = driver.current_record(path, scope)
    if record is not None and record.status is StepStatus.SUCCESS:
        return success(record.output)
    now = time.time()
    resuming: set[int] = set()
    if record is None or record.status not in (StepStatus.RUNNING, StepStatus.SUSPENDED):
        if not isinstance(data, list):
            error = RunError(
                "ForeachInputError",
                f"foreach step {step.id!r} needs a list as input, got {type(data).__name__}",
            )
            return driver.reject(path, data, error)
        record = StepRecord(
            path, StepStatus.RUNNING, payload=data, started_at=now, position=driver.position(path)
        )
        driver.record_event(EventType.STEP_START, record)
    elif record.status is StepStatus.SUSPENDED:
        target = driver.resume
        if target is None or target.path != path:
            _note_foreach_suspended(driver, record)
            return SUSPENDED
        suspended = {i.index for i in record.foreach_items if i.status is StepStatus.SUSPENDED}
        resuming = {target.for_each_index} & suspended if target.for_each_index is not None else suspended
        record = replace(record, status=StepStatus.RUNNING, resumed_at=now, resume_payload=target.data)
        driver.record_event(EventType.STEP_START, record)
    items: list[Any] = list(record.payload or [])
    state = {i.index: i for i in record.foreach_items}
    todo = [
        i
        for i in range(len(items))
        if i not in state or state[i].status is StepStatus.RUNNING or i in resuming
    ]
    limit = asyncio.Semaphore(node.concurrency)
    stop = False
    current: StepRecord = record

    async def one(index: int) -> None:
        nonlocal current, stop
        async with limit:
            if stop or driver.cancel_requested:
                return
            prior = state.get(index)
            is_resume = index in resuming
            if isinstance(step, Workflow):
                item_scope = scope.child(step, (*path, f"[{index}]"), items[index])
                outcome = await driver.run_sequence(step, items[index], item_scope)
            else:
                prior_record = StepRecord(
                    path,
                    StepStatus.SUSPENDED,
                    payload=items[index],
                    suspend_payload=prior.suspend_payload if prior else None,
                )
                outcome = await driver.execute(
                    step, items[index], path, scope, prior=prior_record, resumed=is_resume, emit=False
                )
            item = _item(index, outcome)
            state[index] = item
            if outcome.kind in (Kind.FAILED, Kind.CANCELED, Kind.BAILED):
                stop = True
            current = replace(current, foreach_items=tuple(state[i] for i in sorted(state)))
            completed = sum(1 for i in state.values() if i.status in (StepStatus.SUCCESS, StepStatus.FAILED))
            progress = StepProgress(completed, len(items), index, item.status, item.output)
            driver.records[path] = current
            driver.outbox.stage(step=current)
            driver.outbox.event(
                EventType.STEP_PROGRESS,
                driver.status,
                StepRecord(path, StepStatus.RUNNING, position=current.position),
                progress=progress,
            )

    await driver.gather(*(one(i) for i in todo))
    record = current
    if driver.cancel_requested:
        return driver.finish_record(record, CANCELED)
    failure = next((i for i in state.values() if i.status is StepStatus.FAILED), None)
    if failure is not None and failure.error is not None:
        return driver.finish_record(record, failed(failure.error))
    waiting = [i for i in sorted(state) if state[i].status is StepStatus.SUSPENDED]
    if waiting:
        first = state[waiting[0]]
        detail = {"payload": first.suspend_payload, "labels": []}
        outcome = driver.finish_record(record, Outcome(Kind.SUSPENDED, detail))
        _note_foreach_suspended(driver, driver.records[path])
        return outcome
    return driver.finish_record(record, success([state[i].output for i in range(len(items))]))


def _item(index: int, outcome: Outcome) -> ForeachItem:
    if outcome.kind is Kind.SUSPENDED:
        detail = outcome.output if isinstance(outcome.output, dict) else {}
        return ForeachItem(
            index,
            StepStatus.SUSPENDED,
            suspend_payload=detail.get("payload"),
            labels=tuple(detail.get("labels", ())),
        )
    if outcome.kind is Kind.FAILED:
        return ForeachItem(index, StepStatus.FAILED, error=outcome.error)
    if outcome.kind is Kind.CANCELED:
        return ForeachItem(index, StepStatus.CANCELED)
    return ForeachItem(index, StepStatus.SUCCESS, output=outcome.output)


def _note_foreach_suspended(driver: RunDriver, record: StepRecord) -> None:
    driver.note_suspended(record)
    for item in record.foreach_items:
        for label in item.labels:
            driver.labels[label] = ResumeLabel(record.path, item.index)


async def run_sleep(driver: RunDriver, node: SleepNode | SleepUntilNode, data: Json, scope: Scope) -> Outcome:
    """Pass the input through after a pause; the run is `waiting` meanwhile and the
    wake-up time is stored, so a restart keeps it."""
    path = (*scope.prefix, node.id)
    record = driver.current_record(path, scope)
    if record is not None and record.status is StepStatus.SUCCESS:
        return success(record.output)
    now = time.time()
    if record is None or record.status is not StepStatus.WAITING or record.wake_at is None:
        try:
            wake_at = await _wake_time(driver, node, data, scope, now)
        except Exception as exc:
            error = RunError("SleepError", f"sleep {node.id!r}: {exc}")
            return driver.finish_record(
                StepRecord(
                    path, StepStatus.RUNNING, payload=data, started_at=now, position=driver.position(path)
                ),
                failed(error),
            )
        record = StepRecord(
            path,
            StepStatus.WAITING,
            payload=data,
            started_at=now,
            wake_at=wake_at,
            position=driver.position(path),
        )
    driver.status = RunStatus.WAITING
    driver.record_event(EventType.STEP_WAITING, record, status=RunStatus.WAITING, wake_at=record.wake_at)
    await driver.outbox.commit()
    await driver.interruptible_sleep((record.wake_at or now) - time.time())
    driver.status = RunStatus.RUNNING
    driver.outbox.stage(status=RunStatus.RUNNING, wake_at=None)
    if driver.cancel_requested:
        return driver.finish_record(record, CANCELED)
    return driver.finish_record(record, success(record.payload))


async def _wake_time(
    driver: RunDriver, node: SleepNode | SleepUntilNode, data: Json, scope: Scope, now: float
) -> float:
    if isinstance(node, SleepNode):
        value = node.duration
        if callable(value):
            value = await _call(value, _condition_context(driver, data, scope))
        return now + sleep_seconds(value)
    until = node.until
    if callable(until):
        until = await _call(until, _condition_context(driver, data, scope))
    if not isinstance(until, dt.datetime):
        raise TypeError(f"sleep_until needs a datetime, got {until!r}")
    if until.tzinfo is None:
        until = until.replace(tzinfo=dt.UTC)
    return until.timestamp()


async def evaluate(condition: Any, driver: RunDriver, data: Json, scope: Scope, iteration: int = 0) -> bool:
    """Call a branch or loop condition (sync or async) and return its truth."""
    return bool(await _call(condition, _condition_context(driver, data, scope, iteration)))


async def _call(fn: Any, ctx: ConditionContext) -> Any:
    result = fn(ctx)
    return await result if inspect.isawaitable(result) else result


def _condition_context(driver: RunDriver, data: Json, scope: Scope, iteration: int = 0) -> ConditionContext:
    return ConditionContext(
        input_data=data,
        run_id=driver.run.run_id,
        workflow_id=driver.workflow.id,
        resource_id=driver.run.resource_id,
        request_context=driver.request_context,
        runtime=scope,
        iteration_count=iteration,
    )
