"""RunDriver: walks a run's graph from its checkpoint until the run settles.

Completed steps are never run again: the walk reuses their recorded outputs. A
suspended step runs again only when it is the resume target; a step whose record
says `running` (its process died) runs again. So resume after a suspend and
recovery after a crash are the same walk over the stored records.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, replace
from operator import attrgetter
from typing import Any, TypeVar

from runservice.engine import blocks
from runservice.engine.outbox import Outbox
from runservice.engine.outcome import CANCELED, SUSPENDED, Kind, Outcome, Scope, failed, success
from runservice.model import (
    EventType,
    Json,
    ResumeLabel,
    Run,
    RunError,
    RunStatus,
    StepPath,
    StepRecord,
    StepStatus,
)
from runservice.storage import Store
from runservice.workflow import (
    Bail,
    BranchNode,
    ForeachNode,
    LoopNode,
    Node,
    ParallelNode,
    Runnable,
    SchemaViolation,
    SleepNode,
    SleepUntilNode,
    Step,
    StepContext,
    StepNode,
    Workflow,
    to_jsonable,
)

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_POSITION = attrgetter("position")


@dataclass(frozen=True, slots=True)
class ResumeTarget:
    """The suspended step a resume re-enters, with its validated resume data."""

    path: StepPath
    data: Json
    value: Any
    for_each_index: int | None = None


class _StepRuntime:
    """A scope's runtime bound to one step, so writer output names its step."""

    __slots__ = ("_path", "_scope")

    def __init__(self, scope: Scope, path: StepPath) -> None:
        self._scope = scope
        self._path = path

    def get_state(self) -> dict[str, Json]:
        return self._scope.get_state()

    def set_state(self, patch: Mapping[str, Json]) -> None:
        self._scope.set_state(patch)

    async def write_output(self, chunk: Json) -> None:
        await self._scope.driver.write_output(chunk, self._path)

    def step_result(self, step_id: str) -> Json | None:
        return self._scope.step_result(step_id)

    def init_data(self) -> Json:
        return self._scope.init_data()


class RunDriver:
    """Executes one run in this process until it is terminal or suspended."""

    def __init__(
        self,
        store: Store,
        workflow: Workflow,
        run: Run,
        *,
        resume: ResumeTarget | None = None,
    ) -> None:
        self.workflow = workflow
        self.run = run
        self.records: dict[StepPath, StepRecord] = {s.path: s for s in run.steps}
        self.state: dict[str, Json] = dict(run.state) if isinstance(run.state, dict) else {}
        self.request_context: dict[str, Json] = dict(run.request_context)
        # Held, not looked up: on Python 3.11 every get_running_loop() is a getpid() syscall.
        self.loop = asyncio.get_running_loop()
        self.outbox = Outbox(store, run.run_id, self.loop)
        self.outbox.last_sequence = run.last_sequence
        self.resume = resume
        self.status = RunStatus.RUNNING
        self.cancel_requested = False
        self.abort_signal = asyncio.Event()
        self.suspended: list[StepPath] = []
        self.labels: dict[str, ResumeLabel] = {}
        self._next_position = max((s.position for s in run.steps), default=0) + 1
        self._bodies: set[asyncio.Task[Any]] = set()
        """Tasks currently inside a step body (the driver task, or parallel branches' tasks)."""
        self._cancels: dict[asyncio.Task[Any], int] = {}
        self._fan_out = 0
        """Concurrent blocks (parallel, branch, foreach) currently running."""
        self.result: Run | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def drive(self) -> Run:
        """Run to settlement, commit the final state, and return the run."""
        scope = Scope(self, self.workflow, (), self.run.input)
        try:
            outcome = await self.run_sequence(self.workflow, self.run.input, scope)
            if self.cancel_requested and outcome.kind is not Kind.FAILED:
                outcome = CANCELED
            return await self._settle(outcome)
        finally:
            await self.outbox.close()

    def cancel(self) -> None:
        """Stop the run: signal abort, cancel running step bodies, stop at the next boundary."""
        if self.cancel_requested:
            return
        self.cancel_requested = True
        self.abort_signal.set()
        for task in self._bodies:
            self._cancels[task] = self._cancels.get(task, 0) + 1
            task.cancel("run canceled")

    async def _settle(self, outcome: Outcome) -> Run:
        now = time.time()
        error: RunError | None = None
        result: Json = None
        if outcome.kind in (Kind.SUCCESS, Kind.BAILED):
            self.status = RunStatus.SUCCESS
            result = outcome.output
            self.outbox.event(EventType.WORKFLOW_FINISH, self.status, data=result)
        elif outcome.kind is Kind.FAILED:
            self.status = RunStatus.FAILED
            error = outcome.error
            self.outbox.event(EventType.WORKFLOW_FINISH, self.status, error=error)
        elif outcome.kind is Kind.SUSPENDED:
            self.status = RunStatus.SUSPENDED
            self.outbox.event(EventType.WORKFLOW_FINISH, self.status)
        else:
            self.status = RunStatus.CANCELED
            self.outbox.event(EventType.WORKFLOW_CANCELED, self.status)
            self.outbox.event(EventType.WORKFLOW_FINISH, self.status)
        settled = self.status is RunStatus.SUSPENDED
        # The same fields are stored and returned, so the answer is what a later GetRun reads.
        fields: dict[str, Any] = dict(
            status=self.status,
            result=result,
            error=error,
            suspended=tuple(self.suspended) if settled else (),
            resume_labels=dict(self.labels) if settled else {},
            ended_at=None if settled else now,
            wake_at=None,
            state=dict(self.state),
            request_context=dict(self.request_context),
        )
        self.outbox.stage(**fields)
        await self.outbox.commit()
        self.result = replace(
            self.run,
            **fields,
            updated_at=now,
            last_sequence=self.outbox.last_sequence,
            steps=tuple(sorted(self.records.values(), key=_POSITION)),
        )
        return self.result

    # -- walking the graph -------------------------------------------------------------------

    async def run_sequence(self, workflow: Workflow, data: Json, scope: Scope) -> Outcome:
        """Run a workflow's nodes in order, each on the previous one's output."""
        current = data
        for node in workflow.nodes:
            if self.cancel_requested:
                return CANCELED
            outcome = await self.run_node(node, current, scope)
            if not outcome.ok:
                return outcome
            current = outcome.output
        return success(current)

    async def gather(self, *branches: Awaitable[_T]) -> list[_T]:
        """Run a block's branches concurrently (parallel, branch and foreach use this)."""
        self._fan_out += 1
        try:
            return await asyncio.gather(*branches)
        finally:
            self._fan_out -= 1

    async def run_node(self, node: Node, data: Json, scope: Scope) -> Outcome:
        match node:
            case StepNode(step):
                return await self.run_unit(step, data, scope)
            case ParallelNode():
                return await blocks.run_parallel(self, node, data, scope)
            case BranchNode():
                return await blocks.run_branch(self, node, data, scope)
            case LoopNode():
                return await blocks.run_loop(self, node, data, scope)
            case ForeachNode():
                return await blocks.run_foreach(self, node, data, scope)
            case SleepNode() | SleepUntilNode():
                return await blocks.run_sleep(self, node, data, scope)
        raise AssertionError(f"unknown node {node!r}")

    async def run_unit(self, runnable: Runnable, data: Json, scope: Scope, iteration: int = 0) -> Outcome:
        """Run a step or nested workflow at `scope.prefix + (id,)`, reusing its checkpoint."""
        path = (*scope.prefix, runnable.id)
        record = self.current_record(path, scope)
        if isinstance(runnable, Workflow):
            return await self.run_nested(runnable, data, path, scope, record, iteration)
        if record is not None:
            if record.status is StepStatus.SUCCESS:
                return success(record.output)
            if record.status is StepStatus.SUSPENDED:
                if self.resume is None or self.resume.path != path:
                    self.note_suspended(record)
                    return SUSPENDED
                return await self.execute(runnable, record.payload, path, scope, prior=record, resumed=True)
        return await self.execute(
            runnable, data, path, scope, prior=record, iteration=iteration or scope.iteration
        )

    def current_record(self, path: StepPath, scope: Scope) -> StepRecord | None:
        """The step's record if it belongs to the current loop iteration of its scope."""
        record = self.records.get(path)
        if record is not None and scope.iteration and record.iteration != scope.iteration:
            return None
        return record

    async def run_nested(
        self,
        workflow: Workflow,
        data: Json,
        path: StepPath,
        scope: Scope,
        record: StepRecord | None,
        iteration: int = 0,
    ) -> Outcome:
        """A nested workflow as a step: its steps are recorded under `path`."""
        if record is not None and record.status is StepStatus.SUCCESS:
            return success(record.output)
        now = time.time()
        announce = True
        if record is None or record.status not in (StepStatus.RUNNING, StepStatus.SUSPENDED):
            validated = self.validate_input(workflow.input_schema, data, path)
            if isinstance(validated, Outcome):
                return validated
            record = StepRecord(
                path,
                StepStatus.RUNNING,
                payload=validated[1],
                started_at=now,
                iteration=iteration or scope.iteration,
                position=self.position(path),
            )
        elif record.status is StepStatus.SUSPENDED:
            if self.resume is not None and self.resume.path[: len(path)] == path:
                record = replace(
                    record, status=StepStatus.RUNNING, resumed_at=now, resume_payload=self.resume.data
                )
            else:
                announce = False
        if announce:
            self.record_event(EventType.STEP_START, record)
        child = scope.child(workflow, path, record.payload, iteration=record.iteration)
        outcome = await self.run_sequence(workflow, record.payload, child)
        if outcome.kind is Kind.SUSPENDED and not announce:
            return outcome
        if outcome.kind is Kind.BAILED:  # bail ends the nested workflow, not its parent
            outcome = success(outcome.output)
        return self.finish_record(record, outcome, leaf=False)

    # -- executing one step ------------------------------------------------------------------

    async def execute(
        self,
        step: Step,
        data: Json,
        path: StepPath,
        scope: Scope,
        *,
        prior: StepRecord | None = None,
        resumed: bool = False,
        iteration: int = 0,
        emit: bool = True,
    ) -> Outcome:
        """Run a step body (with retries) and record what it did.

        With `emit=False` (foreach items) nothing is recorded; the caller records.
        """
        now = time.time()
        resume = self.resume if resumed else None
        validated = self.validate_input(step.input_schema, data, path, emit=emit, iteration=iteration)
        if isinstance(validated, Outcome):
            return validated
        value, checked = validated
        if resume is not None and prior is not None:
            record = StepRecord(
                path,
                StepStatus.RUNNING,
                payload=prior.payload,
                started_at=prior.started_at,
                resumed_at=now,
                resume_payload=resume.data,
                iteration=prior.iteration,
                position=prior.position,
            )
        else:
            record = StepRecord(
                path,
                StepStatus.RUNNING,
                payload=checked,
                started_at=now,
                iteration=iteration,
                position=prior.position if prior else self.position(path),
            )
        if emit:
            self.record_event(EventType.STEP_START, record)
        body, attempt = await self.call_with_retries(
            step,
            value,
            scope,
            path,
            resume_value=resume.value if resume else None,
            suspend_data=prior.suspend_payload if resume and prior else None,
        )
        if not emit:
            return body
        return self.finish_record(record, body, attempt=attempt)

    async def call_with_retries(
        self,
        step: Step,
        value: Any,
        scope: Scope,
        path: StepPath,
        *,
        resume_value: Any,
        suspend_data: Json,
    ) -> tuple[Outcome, int]:
        """Call the body until it succeeds, suspends, bails or runs out of retries.

        Returns the outcome and the index of the last attempt.
        """
        retries = step.retries if step.retries is not None else scope.workflow.retry_config.attempts
        delay = scope.workflow.retry_config.delay
        attempt = 0
        while True:
            # Every earlier result must be durable before user code runs again.
            await self.outbox.before_body(concurrent=self._fan_out > 0)
            if self.cancel_requested:
                return CANCELED, attempt
            ctx = StepContext(
                input_data=value,
                run_id=self.run.run_id,
                workflow_id=self.workflow.id,
                resource_id=self.run.resource_id,
                request_context=self.request_context,
                retry_count=attempt,
                resume_data=resume_value,
                suspend_data=suspend_data,
                abort_signal=self.abort_signal,
                runtime=_StepRuntime(scope, path),
                suspend_schema=step.suspend_schema,
            )
            try:
                result = await self._call_body(step, ctx)
            except asyncio.CancelledError:
                if self._absorb_cancel():
                    return CANCELED, attempt
                raise
            except SchemaViolation as exc:  # an invalid suspend payload never retries
                return failed(RunError("SuspendValidationError", str(exc), exc.details)), attempt
            except Exception as exc:
                if attempt < retries and not self.cancel_requested:
                    attempt += 1
                    logger.info("run %s step %s failed (%s); retry %d", self.run.run_id, path, exc, attempt)
                    await self.interruptible_sleep(delay)
                    continue
                return failed(RunError.from_exception(exc)), attempt
            if self.cancel_requested and self._absorb_cancel():  # the body swallowed the cancel
                return CANCELED, attempt
            if ctx.suspension is not None:
                payload = ctx.suspension.payload
                labels = list(ctx.suspension.labels)
                return Outcome(Kind.SUSPENDED, output={"payload": payload, "labels": labels}), attempt
            if isinstance(result, Bail):
                return Outcome(Kind.BAILED, result.result), attempt
            try:
                return success(to_jsonable(result)), attempt
            except Exception as exc:
                return failed(
                    RunError("OutputSerializationError", f"step output is not JSON data: {exc}")
                ), attempt

    async def _call_body(self, step: Step, ctx: StepContext) -> Any:
        """Run the body inside the current task; `cancel()` cancels that task while it runs.

        No task per body: a run's steps execute in its driver task (or a parallel branch's
        task), which keeps a step's overhead to one coroutine call.
        """
        task = asyncio.current_task(self.loop)
        assert task is not None
        self._bodies.add(task)
        try:
            return await _invoke(step, ctx)
        finally:
            self._bodies.discard(task)

    def _absorb_cancel(self) -> bool:
        """True when the current task's pending cancellation came only from `cancel()`.

        Those cancellations are undone (`uncancel`) and the step ends as canceled; any
        other cancellation (shutdown) must propagate.
        """
        task = asyncio.current_task(self.loop)
        ours = self._cancels.pop(task, 0) if task is not None else 0
        if task is None or not self.cancel_requested or task.cancelling() > ours:
            return False
        for _ in range(ours):
            task.uncancel()
        return True

    def finish_record(
        self, record: StepRecord, outcome: Outcome, *, leaf: bool = True, attempt: int | None = None
    ) -> Outcome:
        """Record a step's outcome (and its event); returns the outcome for the walk.

        Only leaf steps count as suspended for Resume; a nested workflow that suspends
        because of an inner step is recorded as suspended but not listed. `attempt`, when
        given, is the index of the body's last attempt.
        """
        now = time.time()
        tried = record.attempt if attempt is None else attempt
        if outcome.kind is Kind.SUSPENDED:
            detail = outcome.output if isinstance(outcome.output, dict) else {}
            labels = tuple(detail.get("labels", ()))
            done = replace(
                record,
                status=StepStatus.SUSPENDED,
                suspend_payload=detail.get("payload"),
                suspended_at=now,
                resume_labels=labels,
                attempt=tried,
            )
            self.record_event(EventType.STEP_SUSPENDED, done)
            if leaf:
                self.note_suspended(done)
            return SUSPENDED
        if outcome.kind in (Kind.SUCCESS, Kind.BAILED):
            done = replace(
                record, status=StepStatus.SUCCESS, output=outcome.output, ended_at=now, attempt=tried
            )
        elif outcome.kind is Kind.FAILED:
            done = replace(record, status=StepStatus.FAILED, error=outcome.error, ended_at=now, attempt=tried)
        else:
            done = replace(record, status=StepStatus.CANCELED, ended_at=now, attempt=tried)
        self.record_event(EventType.STEP_RESULT, done, state=dict(self.state))
        return outcome

    def validate_input(
        self, schema: Any, data: Json, path: StepPath, *, emit: bool = True, iteration: int = 0
    ) -> tuple[Any, Json] | Outcome:
        """The typed input and its JSON form (defaults applied), or a failed outcome (recorded)."""
        if schema is None:
            return data, data
        try:
            value, checked = schema.validate(data, "step input")
        except SchemaViolation as exc:
            error = RunError("StepInputValidationError", str(exc), exc.details)
            return self.reject(path, data, error, iteration=iteration) if emit else failed(error)
        return value, checked

    def reject(self, path: StepPath, data: Json, error: RunError, *, iteration: int = 0) -> Outcome:
        """Record a step that failed before its body could run (bad input)."""
        now = time.time()
        record = StepRecord(
            path,
            StepStatus.FAILED,
            payload=data,
            error=error,
            started_at=now,
            ended_at=now,
            iteration=iteration,
            position=self.position(path),
        )
        self.record_event(EventType.STEP_RESULT, record)
        return failed(error)

    # -- recording -----------------------------------------------------------------------------

    def record_event(self, type_: EventType, record: StepRecord, **patch: Any) -> None:
        self.records[record.path] = record
        self.outbox.event(type_, self.status, record)
        if patch:
            self.outbox.stage(**patch)

    def note_suspended(self, record: StepRecord) -> None:
        if record.path not in self.suspended:
            self.suspended.append(record.path)
        for label in record.resume_labels:
            self.labels[label] = ResumeLabel(record.path)

    def position(self, path: StepPath) -> int:
        existing = self.records.get(path)
        if existing is not None and existing.position:
            return existing.position
        self._next_position += 1
        return self._next_position - 1

    async def write_output(self, chunk: Json, path: StepPath) -> None:
        record = self.records.get(path) or StepRecord(path, StepStatus.RUNNING)
        self.outbox.event(EventType.STEP_OUTPUT, self.status, record, data=chunk)
        await self.outbox.commit()

    async def interruptible_sleep(self, seconds: float) -> None:
        """Sleep, waking early if the run is canceled."""
        if seconds <= 0:
            return
        try:
            async with asyncio.timeout(seconds):
                await self.abort_signal.wait()
        except TimeoutError:
            pass


async def _invoke(step: Step, ctx: StepContext) -> Any:
    result = step.execute(ctx)
    # The coroutine test first: it is the common case and much cheaper than isawaitable.
    if inspect.iscoroutine(result) or inspect.isawaitable(result):
        return await result
    return result
