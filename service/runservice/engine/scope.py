"""Scope: one workflow level of a run (top level or nested), as step bodies see it."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

from runservice import limits
from runservice.model import Json, StepPath, StepRecord, StepStatus
from runservice.workflow import Workflow


class RunMemory(Protocol):
    """What a scope reads and writes of its run (the driver provides it)."""

    state: dict[str, Json]
    records: dict[StepPath, StepRecord]

    async def write_output(self, chunk: Json, path: StepPath) -> None: ...


class Scope:
    """A workflow level: its definition, the path prefix of its steps, its input."""

    __slots__ = ("deadline", "deadline_of", "init", "iteration", "memory", "prefix", "workflow")

    def __init__(
        self, memory: RunMemory, workflow: Workflow, prefix: StepPath, init: Json, iteration: int = 0
    ) -> None:
        self.memory = memory
        self.workflow = workflow
        self.prefix = prefix
        self.init = init
        self.iteration = iteration
        """Loop iteration of the enclosing body; records of older iterations are stale."""
        self.deadline: float | None = None
        """When the nested workflow(s) this scope is inside time out (engine/deadlines.py);
        None at the top level, where the run's own deadline is the driver's timer."""
        self.deadline_of = ""
        """The id of the nested workflow whose timeout set `deadline`."""

    def child(
        self,
        workflow: Workflow,
        path: StepPath,
        init: Any,
        iteration: int = 0,
        started_at: float | None = None,
    ) -> Scope:
        """The scope of a nested workflow; it inherits this scope's deadline, or has its own
        (its `timeout` from `started_at`, its record's start) when that is sooner."""
        scope = Scope(self.memory, workflow, path, init, iteration)
        scope.deadline, scope.deadline_of = self.deadline, self.deadline_of
        if workflow.timeout is not None and started_at is not None:
            own = started_at + workflow.timeout
            if self.deadline is None or own < self.deadline:
                scope.deadline, scope.deadline_of = own, workflow.id
        return scope

    def deadline_left(self) -> float | None:
        """Seconds left before this scope's deadline (<= 0 once passed); None without one."""
        return None if self.deadline is None else self.deadline - time.time()

    def step_runtime(self, path: StepPath) -> BoundRuntime:
        return BoundRuntime(self, path)

    def get_state(self) -> dict[str, Json]:
        return dict(self.memory.state)

    async def write_output(self, chunk: Json) -> None:
        await self.memory.write_output(chunk, self.prefix)

    def step_result(self, step_id: str) -> Json | None:
        record = self.memory.records.get((*self.prefix, step_id))
        return record.output if record is not None and record.status is StepStatus.SUCCESS else None

    def init_data(self) -> Json:
        return self.init


class BoundRuntime:
    """A scope bound to one attempt of one step: the step's writer output names that step, and
    what the attempt sets with `set_state` is kept aside until it ends. Only an attempt that
    did not fail changes the run state (`keep_state`), as in Mastra, where each attempt
    starts from the state the step started with: a failed attempt's changes reached its retry,
    and a failed parallel branch's the steps after the block."""

    __slots__ = ("_patch", "_path", "_scope")

    def __init__(self, scope: Scope, path: StepPath) -> None:
        self._scope = scope
        self._path = path
        self._patch: dict[str, Json] = {}

    def get_state(self) -> dict[str, Json]:
        return {**self._scope.memory.state, **self._patch}

    def set_state(self, patch: Mapping[str, Json]) -> None:
        """Merge `patch` into what this attempt sets; a state over `limits.STATE` is refused
        (PayloadTooLarge raised in the step, which fails it) and left unchanged."""
        limits.check_state({**self._scope.memory.state, **self._patch, **patch})
        self._patch.update(patch)

    def keep_state(self) -> None:
        """The attempt ended without failing: what it set becomes the run's state."""
        if self._patch:
            self._scope.memory.state.update(self._patch)
            self._patch.clear()

    async def write_output(self, chunk: Json) -> None:
        await self._scope.memory.write_output(chunk, self._path)

    def step_result(self, step_id: str) -> Json | None:
        return self._scope.step_result(step_id)

    def init_data(self) -> Json:
        return self._scope.init_data()
