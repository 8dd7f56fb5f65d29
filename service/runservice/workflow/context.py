"""What a step body sees: the StepContext, and the runtime hooks the engine provides."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from runservice.model import Json
from runservice.workflow.schema import Schema, SchemaViolation, SuspendPayloadRefused, to_jsonable


class RunView(Protocol):
    """What a branch or loop condition reads of its run; implemented by the engine."""

    def get_state(self) -> dict[str, Json]: ...

    def step_result(self, step_id: str) -> Json | None: ...

    def init_data(self) -> Json: ...


class StepRuntime(RunView, Protocol):
    """Services the engine gives a running step; implemented by the engine."""

    def set_state(self, patch: Mapping[str, Json]) -> None: ...

    async def write_output(self, chunk: Json) -> None: ...


@dataclass(frozen=True, slots=True)
class Suspension:
    """Recorded by `ctx.suspend`: the payload and resume labels."""

    payload: Json
    labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Bail:
    """Returned by `ctx.bail`: ends the workflow the step is in successfully with `result`
    (the whole run at the top level; inside a parallel or branch only its branch)."""

    result: Json


class Writer:
    """`await ctx.writer.write(chunk)` emits a step-output event on the run's stream."""

    __slots__ = ("_runtime",)

    def __init__(self, runtime: StepRuntime) -> None:
        self._runtime = runtime

    async def write(self, chunk: Any) -> None:
        await self._runtime.write_output(to_jsonable(chunk))


class ConditionContext:
    """The argument of a branch or loop condition: a read-only view of the run.

    `iteration_count` is the 1-based loop iteration (0 outside loops); `retry_count` is -1,
    as in Mastra, because conditions are not retried. `abort_signal` is set on Cancel, as a
    step's is (a condition awaiting something slow is cancelled then, too).
    """

    def __init__(
        self,
        *,
        input_data: Any,
        run_id: str,
        workflow_id: str,
        resource_id: str | None,
        request_context: dict[str, Json],
        runtime: RunView,
        iteration_count: int = 0,
        retry_count: int = -1,
        abort_signal: asyncio.Event | None = None,
    ) -> None:
        self.input_data = input_data
        self.run_id = run_id
        self.workflow_id = workflow_id
        self.resource_id = resource_id
        self.request_context = request_context
        self.iteration_count = iteration_count
        self.retry_count = retry_count
        self.abort_signal = abort_signal if abort_signal is not None else asyncio.Event()
        self._runtime = runtime

    @property
    def state(self) -> dict[str, Json]:
        """The run-wide state (a copy; a step changes it with set_state)."""
        return self._runtime.get_state()

    def get_step_result(self, step: Any) -> Json | None:
        """Output of an earlier step of this workflow (by id or Step) if it succeeded, else None."""
        return self._runtime.step_result(step if isinstance(step, str) else step.id)

    def get_init_data(self) -> Json:
        """The run's input data."""
        return self._runtime.init_data()

    async def suspend(self, payload: Any = None, *, resume_label: str | list[str] | None = None) -> None:
        """Nothing, in a condition (as in Mastra: a condition cannot suspend its run)."""

    def bail(self, result: Any = None) -> object:
        """Nothing, in a condition (as in Mastra: a condition cannot end its run)."""
        return None


class StepContext(ConditionContext):
    """The single argument of a step body: the run view plus the step's own controls.

    `suspend` records a suspension (the body should return right after it; its return
    value is ignored). `bail(result)` must be returned: `return ctx.bail(result)`.
    `abort_signal` is set when the run is canceled; the body's task is also cancelled.
    """

    def __init__(
        self,
        *,
        input_data: Any,
        run_id: str,
        workflow_id: str,
        resource_id: str | None,
        request_context: dict[str, Json],
        retry_count: int,
        resume_data: Any,
        suspend_data: Json,
        abort_signal: asyncio.Event,
        runtime: StepRuntime,
        suspend_schema: Schema | None = None,
    ) -> None:
        super().__init__(
            input_data=input_data,
            run_id=run_id,
            workflow_id=workflow_id,
            resource_id=resource_id,
            request_context=request_context,
            runtime=runtime,
            retry_count=retry_count,
        )
        self.resume_data = resume_data
        self.suspend_data = suspend_data
        self.abort_signal = abort_signal
        self.writer = Writer(runtime)
        self._step_runtime = runtime
        self._suspend_schema = suspend_schema
        self.suspension: Suspension | None = None

    def set_state(self, patch: Mapping[str, Any]) -> None:
        """Shallow-merge `patch` into the run state, kept if this attempt does not fail (a
        retry starts from the state the step started with); persisted with the step's result."""
        self._step_runtime.set_state(to_jsonable(dict(patch)))

    async def suspend(self, payload: Any = None, *, resume_label: str | list[str] | None = None) -> None:
        """Suspend this step; the run waits for Resume. Return from the body afterwards."""
        if self._suspend_schema is not None:
            try:
                _, data = self._suspend_schema.validate(payload, "suspend payload")
            except SchemaViolation as exc:
                raise SuspendPayloadRefused(exc.what, exc.violations) from None
        else:
            data = to_jsonable(payload)
        labels = (resume_label,) if isinstance(resume_label, str) else tuple(resume_label or ())
        self.suspension = Suspension(payload=data, labels=labels)

    def bail(self, result: Any = None) -> Bail:
        """End the workflow early with status success and this result: `return ctx.bail(x)`.

        At the top level that ends the run; in a nested workflow, that workflow (its
        parent goes on with `x` as its output); in a parallel or branch, only its branch
        (the block goes on, with `x` as that branch's output), as Mastra does."""
        return Bail(to_jsonable(result))
