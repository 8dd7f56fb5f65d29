"""The control-flow blocks of a run: parallel, branch, loops, foreach and sleeps.

Each block works from the step records alone, so a first run, a resume and the
recovery of a crashed run are the same walk: a finished record gives back its
outcome, a suspended one stays suspended unless a resume of it was accepted, and
anything else runs. What a block needs of the run is the `Walker` protocol below;
`RunDriver` provides it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import time
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

from runservice import limits
from runservice.engine.deadlines import workflow_deadline_error
from runservice.engine.outbox import Outbox
from runservice.engine.outcome import (
    CANCELED,
    SUSPENDED,
    USER_EXITS,
    Kind,
    Outcome,
    Resumption,
    combine,
    failed,
    recorded,
    success,
)
from runservice.engine.scope import Scope
from runservice.errors import PayloadTooLarge
from runservice.model import (
    EventType,
    ForeachItem,
    Json,
    RunError,
    RunStatus,
    StepPath,
    StepProgress,
    StepRecord,
    StepStatus,
    json_copy,
    new_call_id,
)
from runservice.model import evolve as replace  # dataclasses.replace, faster
from runservice.workflow import (
    BranchNode,
    ConditionContext,
    ForeachNode,
    LoopNode,
    Node,
    ParallelNode,
    Runnable,
    SleepNode,
    SleepUntilNode,
    Step,
    Workflow,
)
from runservice.workflow.builder import sleep_seconds

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

LATEST_TIME = 253402300799.0
"""9999-12-31T23:59:59Z: the last second a google.protobuf.Timestamp can carry."""


class Walker(Protocol):
    """What the blocks need from the driver of a run."""

    run_id: str
    workflow_id: str
    resource_id: str | None
    request_context: dict[str, Json]
    records: dict[StepPath, StepRecord]
    outbox: Outbox
    status: RunStatus
    cancel_requested: bool
    abort_signal: asyncio.Event

    def current_record(self, path: StepPath, scope: Scope, iteration: int = 0) -> StepRecord | None: ...

    def travel_ahead(self) -> StepPath | None: ...

    def travel_resume(self, path: StepPath, index: int | None = None) -> Resumption | None: ...

    def drop_below(self, path: StepPath) -> None: ...

    async def run_unit(self, runnable: Runnable, data: Json, scope: Scope, iteration: int = 0) -> Outcome: ...

    async def run_nested(
        self,
        workflow: Workflow,
        data: Json,
        path: StepPath,
        scope: Scope,
        record: StepRecord | None,
        iteration: int = 0,
    ) -> Outcome: ...

    async def run_sequence(self, workflow: Workflow, data: Json, scope: Scope) -> Outcome: ...

    async def execute(
        self, step: Step, data: Json, path: StepPath, scope: Scope, *, iteration: int = 0
    ) -> Outcome: ...

    async def run_item(
        self, step: Step, data: Json, path: StepPath, scope: Scope, index: int, item: ForeachItem | None
    ) -> Outcome: ...

    async def gather(self, *branches: Coroutine[Any, Any, _T]) -> list[_T]: ...

    async def call_user(self, fn: Any, ctx: ConditionContext) -> Any: ...

    def absorb_cancel(self) -> bool: ...

    def record_event(self, type_: EventType, record: StepRecord, **patch: Any) -> None: ...

    def stage_memory(self) -> None: ...

    def finish_record(
        self, record: StepRecord, outcome: Outcome, *, leaf: bool = True, attempt: int | None = None
    ) -> Outcome: ...

    def reject(self, path: StepPath, data: Json, error: RunError, *, iteration: int = 0) -> Outcome: ...

    def validate_input(
        self, schema: Any, data: Json, path: StepPath, *, emit: bool = True, iteration: int = 0
    ) -> tuple[Any, Json] | Outcome: ...

    def note_suspended(self, record: StepRecord) -> None: ...

    def item_outcome(self, prefix: StepPath, outcome: Outcome) -> Outcome: ...

    def lent(self, path: StepPath, suspension: Outcome) -> Outcome: ...

    def resume_below(self, path: StepPath) -> bool: ...

    def passed(self, node: Node, scope: Scope) -> bool: ...

    def kept_error(self, error: RunError) -> RunError: ...

    def position(self, path: StepPath) -> int: ...

    async def interruptible_sleep(self, seconds: float) -> None: ...

    def bodies_running(self) -> bool:
        """Whether a step body of the run is running now (a sibling branch's, beside a sleep)."""

    def sleeping(self) -> None:
        """The run sleeps (`waiting`): it takes no room, so runs that wait for some may go."""

    async def awake(self) -> None:
        """The run's sleep ended: it is `running` again once it has room."""

    async def wake_for_body(self) -> None:
        """A body is to start while a sibling's sleep holds the run `waiting`: `running` again."""

    def asleep(self) -> contextlib.AbstractContextManager[None]:
        """Around a sleep of the run (the last body to end beside it leaves the run `waiting`)."""

    async def after_body(self) -> None:
        """Commit a body's result at once inside a concurrent block (`Outbox.after_body`)."""


async def run_parallel(walker: Walker, node: ParallelNode, data: Json, scope: Scope) -> Outcome:
    """Every branch gets the same input; the block waits for all of them."""
    outcomes = await walker.gather(*(walker.run_unit(step, data, scope) for step in node.steps))
    return combine([s.id for s in node.steps], outcomes, allow_failure=node.allow_failure)


async def run_branch(walker: Walker, node: BranchNode, data: Json, scope: Scope) -> Outcome:
    """Every branch whose condition is true runs; a condition that raises counts as false.

    Once a branch has a record its selection is settled: conditions are not evaluated
    again when the block is re-entered after a resume or a restart. Nor are they when
    none held and the walk went past the block (`Walker.passed`), nor when a time travel's
    target not reached yet is in one of the branches: as in Mastra, whose time travel runs
    the target's branch and marks the others skipped, that branch runs whatever its
    condition says now, beside the branches kept from before the target and no other.
    """
    target = walker.travel_ahead()
    size = len(scope.prefix) + 1
    # By the path's prefix: the target may be inside a nested workflow that is the branch.
    chosen = [
        step
        for _, step in node.branches
        if walker.current_record((*scope.prefix, step.id), scope)
        or (target is not None and target[:size] == (*scope.prefix, step.id))
    ]
    if not chosen and not walker.passed(node, scope):
        for condition, step in node.branches:
            try:
                if await evaluate(condition, walker, data, scope):
                    chosen.append(step)
            except asyncio.CancelledError:
                if walker.absorb_cancel():
                    return CANCELED
                raise
            except Exception as exc:
                logger.warning(
                    "run %s: branch condition for %s raised %r; treated as false", walker.run_id, step.id, exc
                )
        if walker.cancel_requested:  # taken while a condition ran: no branch starts
            return CANCELED
    outcomes = await walker.gather(*(walker.run_unit(step, data, scope) for step in chosen))
    return combine([s.id for s in chosen], outcomes)


async def run_loop(walker: Walker, node: LoopNode, data: Json, scope: Scope) -> Outcome:
    """dowhile / dountil: the body runs at least once; iteration n+1 gets iteration n's output.

    The body's record holds the current iteration and its input, so a recovered walk
    re-enters the iteration that was in flight (or suspended) with the same input. A
    nested workflow body drops the records inside it as it starts each new iteration:
    nothing of an earlier iteration (an inner loop's counter, a foreach item, a sleep) is
    taken for this one's, and time travel and Resume see only the latest iteration.
    """
    path = (*scope.prefix, node.step.id)
    record = walker.records.get(path)  # any record here is of the enclosing iterations' walk
    iteration = record.iteration if record is not None and record.iteration else 1
    start = record.payload if record is not None else data
    outcome = await walker.run_unit(node.step, start, scope, iteration=iteration)
    if record is not None and recorded(record) is not None and walker.passed(node, scope):
        return outcome  # the loop ended on an earlier walk: its condition is not asked again
    while outcome.ok:
        try:
            holds = await evaluate(node.condition, walker, outcome.output, scope, iteration)
        except asyncio.CancelledError:
            if walker.absorb_cancel():
                return CANCELED
            raise
        except Exception as exc:
            error = RunError("LoopConditionError", f"loop condition of {node.step.id!r} raised: {exc}")
            return failed(error)
        if holds != (node.kind == "dowhile"):
            return outcome
        if walker.cancel_requested:
            return CANCELED
        iteration += 1
        if isinstance(node.step, Workflow):
            walker.drop_below(path)  # committed with the new iteration's start record
            outcome = await walker.run_nested(node.step, outcome.output, path, scope, None, iteration)
        else:
            outcome = await walker.execute(node.step, outcome.output, path, scope, iteration=iteration)
    return outcome


async def run_foreach(walker: Walker, node: ForeachNode, data: Json, scope: Scope) -> Outcome:
    """Run the step once per item, in batches of `concurrency`; outputs keep input order.

    As Mastra: a batch starts only once every item of the batch before it succeeded. An
    item that fails ends the foreach with its batch; an item that suspends suspends it
    with its batch, and the resume of that batch's items goes on to the next batch (with
    concurrency 1, each resume finishes one item and runs the next until it suspends).

    The foreach record holds the items (its payload); each item's outcome is stored as a
    row of its own (`Outbox.stage_item`), so an item costs the same whatever the item
    count, and a recovered walk runs exactly the items that have no outcome yet, or
    whose accepted resume has not run. The record written for the step itself never
    carries the items: they are in their rows already.
    """
    step = node.step
    path = (*scope.prefix, step.id)
    record = walker.current_record(path, scope)
    if record is not None and (done := recorded(record)) is not None:
        return done
    nested = isinstance(step, Workflow)
    announce = False
    if record is None or record.status not in (StepStatus.RUNNING, StepStatus.SUSPENDED):
        if not isinstance(data, list):
            error = RunError(
                "ForeachInputError",
                f"foreach step {step.id!r} needs a list as input, got {type(data).__name__}",
            )
            return walker.reject(path, data, error, iteration=scope.iteration)
        # The loop iteration it belongs to (as any step's): a later iteration starts over.
        now = time.time()
        record = StepRecord(
            path,
            StepStatus.RUNNING,
            payload=data,
            started_at=now,
            iteration=scope.iteration,
            position=walker.position(path),
        )
        resumed = walker.travel_resume(path)
        if resumed is not None:  # a time travel's: each item runs resumed (`run_item`)
            record = replace(record, resume_payload=resumed.data, resumed_at=now)
        walker.outbox.clear_items(path)  # items of an earlier pass (a loop iteration) go
        if nested:
            walker.drop_below(path)  # and so do the records inside them
        announce = True
    items = record.payload if isinstance(record.payload, list) else None
    if items is None and not record.foreach_items and isinstance(data, list):
        # The earliest versions overwrote a running foreach's record with an item's (no items,
        # no payload; audit). Its items are the step's input again, recomputed as before: they
        # run again, as bodies in flight at a crash do.
        items = data
        record = replace(record, payload=data)
    if items is None:
        error = RunError("RecoveryError", f"the stored record of foreach step {step.id!r} has no items")
        return walker.finish_record(record, failed(error))
    state = {item.index: item for item in record.foreach_items}
    started_at = record.started_at

    async def walk(index: int) -> Outcome:
        if isinstance(step, Workflow):
            # Each item is the nested workflow's input, checked (defaults applied) as
            # `.then(workflow)` checks it; a bad item fails as a plain step's bad input does.
            validated = walker.validate_input(step.input_schema, items[index], path, emit=False)
            if isinstance(validated, Outcome):
                return validated
            data = validated[1]
            # An item's own timeout counts from the foreach's start.
            item_scope = scope.child(step, (*path, f"[{index}]"), data, started_at=started_at)
            # A suspended item carries the payload as an item of steps does.
            return walker.item_outcome(item_scope.prefix, await walker.run_sequence(step, data, item_scope))
        return await walker.run_item(step, items[index], path, scope, index, state.get(index))

    if record.status is StepStatus.SUSPENDED:
        if not walker.resume_below(path):
            if nested:  # walking a suspended item runs nothing; it lists its suspended steps
                suspended = [i for i in sorted(state) if state[i].status is StepStatus.SUSPENDED]
                await walker.gather(*(walk(i) for i in suspended))
            else:
                walker.note_suspended(record)
            return SUSPENDED
        record = replace(record, status=StepStatus.RUNNING)
        announce = True
    # From here the step's own record leaves the items out: they are in their rows, and a
    # record carrying them would write them all again (and could write back stale ones).
    if record.items_inline:
        # Stored before items had rows of their own, the record held them inline: they become
        # rows in the commit that first writes the record without them, or they would be lost.
        for item in record.foreach_items:
            walker.outbox.stage_item(path, item)
    record = replace(record, foreach_items=(), items_inline=False)
    if announce:
        if not nested and walker.status is RunStatus.WAITING:
            # Its items' bodies start with it, as a step's body does (`RunDriver.execute`); the
            # items of workflows start as their inner steps start.
            await walker.wake_for_body()
        record = replace(record, call_id=new_call_id())
        walker.record_event(EventType.STEP_START, record)
    marker = StepRecord(path, StepStatus.RUNNING, position=record.position)
    """The step a progress event names: the path only, never the items."""
    total = len(items)
    completed = sum(1 for i in state.values() if i.status in (StepStatus.SUCCESS, StepStatus.FAILED))
    # The outputs so far, as the foreach's own output (their list) will measure: once past
    # its limit, no later item can bring it back, so no later batch runs (nor is stored).
    produced = sum(_element_size(i) for i in state.values() if i.status is StepStatus.SUCCESS)

    async def one(index: int) -> None:
        nonlocal completed, produced
        if walker.cancel_requested:
            return
        before = state.get(index)
        # A suspended item of workflows with no resume inside is walked only to list its
        # suspended steps: it stays as it is, with no new state and no progress event.
        unchanged = (
            nested
            and before is not None
            and before.status is StepStatus.SUSPENDED
            and not walker.resume_below((*path, f"[{index}]"))
        )
        outcome = await walk(index)
        if unchanged and outcome.kind is Kind.SUSPENDED:
            return
        item = _item(index, outcome, before)
        if item.error is not None:
            item = replace(item, error=walker.kept_error(item.error))
        state[index] = item
        if item.status in (StepStatus.SUCCESS, StepStatus.FAILED):
            completed += 1
        if item.status is StepStatus.SUCCESS:
            produced += _element_size(item)
        walker.outbox.stage_item(path, item)
        walker.stage_memory()  # what the item's body set is stored with its outcome
        walker.outbox.event(
            EventType.STEP_PROGRESS,
            walker.status,
            marker,
            progress=StepProgress(completed, total, index, item.status, item.output),
        )
        await walker.after_body()

    size = max(node.concurrency, 1)
    for first in range(0, total, size):
        batch = range(first, min(first + size, total))
        todo = [i for i in batch if _needs_run(state.get(i), nested)]
        if len(todo) == 1:  # one body at a time: no task to start, as for a plain step
            await one(todo[0])
        elif todo:
            await walker.gather(*(one(i) for i in todo))
        if (
            walker.cancel_requested
            or any((i := state.get(index)) is None or i.status is not StepStatus.SUCCESS for index in batch)
            or limits.object_size(produced) > limits.STEP_OUTPUT
        ):
            break
    if walker.cancel_requested:
        # A cancel (or the run's deadline) ends the items waiting for a resume too, as it ends
        # a suspended step: a canceled foreach lists none suspended (audit).
        for index, known in state.items():
            if known.status in (StepStatus.SUSPENDED, StepStatus.RUNNING):
                state[index] = replace(known, status=StepStatus.CANCELED)
                walker.outbox.stage_item(path, state[index])
    # The record the walk keeps has the items (the run's answer, labels and Resume read it).
    listed = tuple(state[i] for i in sorted(state))

    def finish(outcome: Outcome, *, leaf: bool = True) -> Outcome:
        result = walker.finish_record(record, outcome, leaf=leaf)
        walker.records[path] = replace(walker.records[path], foreach_items=listed)
        return result

    if walker.cancel_requested:
        return finish(CANCELED)
    failure = next((i for i in listed if i.status is StepStatus.FAILED), None)
    if failure is not None:
        return finish(failed(failure.error or RunError("Error", "an item failed")))
    if limits.object_size(produced) > limits.STEP_OUTPUT:
        # As `_within_limits` fails it at the end, where every item would have run first.
        refused = PayloadTooLarge(
            f"steps.{'.'.join(path)}.output", limits.object_size(produced), limits.STEP_OUTPUT
        )
        return finish(failed(RunError("PayloadTooLarge", str(refused), refused.metadata)))
    waiting = [i for i in listed if i.status is StepStatus.SUSPENDED]
    if waiting:
        suspension = Outcome(Kind.SUSPENDED, {"payload": waiting[0].suspend_payload, "labels": []})
        # Items of workflows hold a copy of an inner step's payload: lent as a nested
        # workflow's record takes it, left out where it would take the run over its limit.
        outcome = finish(walker.lent(path, suspension) if nested else suspension, leaf=False)
        if not nested:
            walker.note_suspended(walker.records[path])
        return outcome
    if len(listed) != total or any(i.status is not StepStatus.SUCCESS for i in listed):
        return finish(CANCELED)  # an item canceled on its own: nothing else leaves one unfinished
    return finish(success([i.output for i in listed]))


def _element_size(item: ForeachItem) -> int:
    """What a succeeded item's output adds to the foreach's output (0 if it cannot be
    measured: a row an older version stored; the foreach's own check still measures it)."""
    try:
        return limits.element_size(item.output)
    except (TypeError, ValueError):
        return 0


def _needs_run(item: ForeachItem | None, nested: bool) -> bool:
    """Whether an item must run (again) on this walk.

    A suspended item of nested workflows is walked again: the walk finds its inner
    records and runs only an inner step whose resume was accepted.
    """
    if item is None or item.status is StepStatus.RUNNING:
        return True
    if item.status is StepStatus.SUSPENDED:
        return nested or item.resume_pending
    return False


def _item(index: int, outcome: Outcome, before: ForeachItem | None) -> ForeachItem:
    if outcome.kind is Kind.SUSPENDED:
        detail = outcome.output if isinstance(outcome.output, dict) else {}
        now = time.time()
        if before is not None and before.resumed_at is not None and now <= before.resumed_at:
            now = before.resumed_at + 1e-6  # a new suspension must read as after the resume it ends
        return ForeachItem(
            index,
            StepStatus.SUSPENDED,
            suspend_payload=detail.get("payload"),
            labels=tuple(detail.get("labels", ())),
            suspended_at=now,
        )
    if outcome.kind is Kind.FAILED:
        return ForeachItem(index, StepStatus.FAILED, error=outcome.error)
    if outcome.kind is Kind.CANCELED:
        return ForeachItem(index, StepStatus.CANCELED)
    return ForeachItem(index, StepStatus.SUCCESS, output=outcome.output)


async def run_sleep(walker: Walker, node: SleepNode | SleepUntilNode, data: Json, scope: Scope) -> Outcome:
    """Pass the input through after a pause; the run is `waiting` meanwhile and the
    wake-up time is stored, so a restart keeps it."""
    path = (*scope.prefix, node.id)
    record = walker.current_record(path, scope)
    if record is not None and (done := recorded(record)) is not None:
        return done
    now = time.time()
    fresh = record is None or record.status is not StepStatus.WAITING or record.wake_at is None
    if fresh:
        try:
            wake_at = await _wake_time(walker, node, data, scope, now)
        except asyncio.CancelledError:
            if walker.absorb_cancel():
                return CANCELED
            raise
        except Exception as exc:
            error = RunError("SleepError", f"sleep {node.id!r}: {exc}")
            return walker.finish_record(
                StepRecord(
                    path,
                    StepStatus.RUNNING,
                    payload=data,
                    started_at=now,
                    iteration=scope.iteration,
                    position=walker.position(path),
                ),
                failed(error),
            )
        # Stamped with the loop iteration it belongs to, as every record in a loop body:
        # `current_record` takes a record of another iteration for none.
        record = StepRecord(
            path,
            StepStatus.WAITING,
            payload=data,
            started_at=now,
            wake_at=wake_at,
            iteration=scope.iteration,
            position=walker.position(path),
        )
    assert record is not None
    # A sibling branch's body running beside this sleep keeps the run `running`, and its room:
    # a run counted as sleeping while a body ran let one more run past the bounds. (A body
    # that starts while the run sleeps takes the room back first: `RunDriver.run_body`; the
    # last one to end leaves it `waiting` again, also one that ends during this commit.)
    with walker.asleep():
        if not walker.bodies_running():
            walker.status = RunStatus.WAITING
        if fresh:
            walker.record_event(EventType.STEP_WAITING, record, status=walker.status, wake_at=record.wake_at)
        else:  # a re-drive of the sleep (after a restart): the log has told of it already
            walker.outbox.stage(status=walker.status, wake_at=record.wake_at)
        walker.stage_memory()
        await walker.outbox.commit()
        if walker.status is RunStatus.WAITING:
            walker.sleeping()
        wake_at = record.wake_at or now
        cut = scope.deadline is not None and scope.deadline < wake_at  # a nested deadline comes first
        await walker.interruptible_sleep(min(wake_at, scope.deadline or wake_at) - time.time())
    await walker.awake()
    walker.outbox.stage(status=RunStatus.RUNNING, wake_at=None)
    if walker.cancel_requested:
        return walker.finish_record(record, CANCELED)
    if cut and scope.deadline is not None:
        return walker.finish_record(
            record, failed(workflow_deadline_error(scope.deadline_of, scope.deadline))
        )
    return walker.finish_record(record, success(record.payload))


async def _wake_time(
    walker: Walker, node: SleepNode | SleepUntilNode, data: Json, scope: Scope, now: float
) -> float:
    """When the sleep ends; a duration or time that cannot be stored fails the sleep."""
    if isinstance(node, SleepNode):
        value = node.duration
        if callable(value):
            value = await _call(walker, value, _condition_context(walker, data, scope))
        seconds = sleep_seconds(value)
        if not math.isfinite(seconds):
            raise ValueError(f"the duration must be a finite number of seconds, got {seconds!r}")
        wake_at = now + max(seconds, 0.0)
    else:
        until = node.until
        if callable(until):
            until = await _call(walker, until, _condition_context(walker, data, scope))
        if not isinstance(until, dt.datetime):
            raise TypeError(f"sleep_until needs a datetime, got {until!r}")
        # A naive datetime is the server's local time, as `datetime.timestamp()` reads it:
        # `datetime.now() + timedelta(...)` means what it says. It was read as UTC, and a run
        # on a server two hours east of UTC slept two hours longer (audit).
        try:
            wake_at = until.timestamp()
        except (OverflowError, ValueError, OSError):
            # A naive time at an end of datetime's range, past what the local zone converts
            # (`datetime.min`: "year 0 is out of range"): long past, or after the latest.
            if until.year > 1970:
                raise ValueError("it would end after 9999-12-31, the latest time a run can store") from None
            wake_at = now
    if wake_at > LATEST_TIME:
        raise ValueError("it would end after 9999-12-31, the latest time a run can store")
    return wake_at


async def evaluate(condition: Any, walker: Walker, data: Json, scope: Scope, iteration: int = 0) -> bool:
    """Call a branch or loop condition (sync or async) and return its truth."""
    return bool(await _call(walker, condition, _condition_context(walker, data, scope, iteration)))


async def _call(walker: Walker, fn: Any, ctx: ConditionContext) -> Any:
    """Call user code that is no step body: a Cancel cancels it all the same (`call_user`)."""
    try:
        return await walker.call_user(fn, ctx)
    except USER_EXITS as exc:
        raise RuntimeError(f"{type(exc).__name__}({exc})") from exc


def _condition_context(walker: Walker, data: Json, scope: Scope, iteration: int = 0) -> ConditionContext:
    return ConditionContext(
        input_data=json_copy(data),  # what the engine holds: a condition gets its own
        run_id=walker.run_id,
        workflow_id=walker.workflow_id,
        resource_id=walker.resource_id,
        request_context=walker.request_context,
        runtime=scope,
        iteration_count=iteration,
        abort_signal=walker.abort_signal,
    )
