"""Scope: one workflow level of a run (top level or nested), as step bodies see it."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

from runservice import limits
from runservice.errors import PayloadTooLarge
from runservice.model import Json, StepPath, StepRecord, StepStatus, json_copy
from runservice.workflow import Workflow


class StateSizes:
    """The run state's size as `limits.json_size` measures it, kept entry by entry, so that a
    `set_state` measures what it sets and not the whole state again: measured whole on each
    call, a loop adding to its state cost O(N²) (an audit: 6.5 ms per iteration at 10,000
    iterations, all of it measuring). An entry is measured again when its key is set, when
    it holds another object than when it was measured, or when that object's length changed
    (a list or dict of the state grown in place: before `ctx.state` handed out copies, a body
    could). A change deeper inside it, in place, counts with its earlier size until one of
    those happens (review); a body can make neither now, since `ctx.state` is a copy and
    `set_state` stores one.

    `changes` counts the merges of a non-empty patch into the state: by it the driver tells
    that the state is as it last staged it, and need not be written again
    (`RunDriver.stage_state`)."""

    __slots__ = ("_containers", "_entries", "_state", "_total", "changes")

    def __init__(self, state: dict[str, Json]) -> None:
        self._state = state
        self._entries: dict[str, tuple[Json, int, int]] = {}
        """Key -> the value measured, its size, and its length then (-1: not a container)."""
        self._total: int | None = None
        """The sum of the entries' sizes of `_state` as measured."""
        self._containers: set[str] = set()
        """Keys whose value is a list or dict: only those can change in place."""
        self.changes = 0
        """Merges of a non-empty patch into the state so far (see the class docstring)."""

    def _entry(self, key: str, value: Json) -> int:
        known = self._entries.get(key)
        if known is not None and known[0] is value and known[2] == _length(value):
            return known[1]
        return self._measure(key, value)

    def _measure(self, key: str, value: Json, size: int | None = None) -> int:
        """Keep the size of `key`'s `value` (measured now unless `size` is given)."""
        if size is None:
            size = limits.entry_size(key, value)
        length = _length(value)
        self._entries[key] = (value, size, length)
        if length < 0:
            self._containers.discard(key)
        else:
            self._containers.add(key)
        return size

    def size(self, patch: Mapping[str, Json], measured: dict[str, int] | None = None) -> int:
        """`limits.json_size` of the state with `patch` merged (ValueError or TypeError when
        `patch` is not JSON data), changing nothing but what it measured of the state; the
        size of each entry of `patch` goes into `measured` when given."""
        state = self._state
        if self._total is None:
            self._total = sum(self._measure(key, value) for key, value in state.items())
        else:
            # Lists and dicts grown in place since they were measured (see the class docstring).
            for key in list(self._containers):
                value, size, length = self._entries[key]
                if value is state[key] and length != _length(value):
                    self._total += self._measure(key, value) - size
        total = self._total
        for key, value in patch.items():
            if key in state:
                total -= self._entries[key][1]
            entry = limits.entry_size(key, value)
            if measured is not None:
                measured[key] = entry
            total += entry
        return limits.object_size(total)

    def check(self, patch: Mapping[str, Json], measured: dict[str, int] | None = None) -> None:
        """Raise `PayloadTooLarge` when the state with `patch` merged exceeds `limits.STATE`
        (the size of each entry of `patch` goes into `measured` when given, as for `size`)."""
        size = self.size(patch, measured)
        if size > limits.STATE:
            raise PayloadTooLarge("state", size, limits.STATE)

    def merged(self, patch: Mapping[str, Json], measured: Mapping[str, int] | None = None) -> None:
        """Merge `patch` (checked) into the state, keeping the sizes (those in `measured`
        as given: `size` measured them)."""
        state = self._state
        if patch:
            self.changes += 1
        for key, value in patch.items():
            if self._total is not None:
                if key in state:
                    self._total -= self._entry(key, state[key])
                self._total += self._measure(key, value, None if measured is None else measured[key])
            state[key] = value

    def merge(self, patch: Mapping[str, Json]) -> None:
        """`check`, then `merged`, each value of `patch` measured once."""
        measured: dict[str, int] = {}
        self.check(patch, measured)
        self.merged(patch, measured)


def _length(value: Json) -> int:
    return len(value) if isinstance(value, dict | list) else -1


class RunMemory(Protocol):
    """What a scope reads and writes of its run (the driver provides it)."""

    state: dict[str, Json]
    state_sizes: StateSizes
    """Changes `state` (through `merged`, the only way it changes) and measures it."""
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

    # What user code reads is a copy to its depth (`json_copy`): changed in place, the run's
    # own would change past `set_state`, its limit and a failed attempt's rollback.
    def get_state(self) -> dict[str, Json]:
        state: dict[str, Json] = json_copy(self.memory.state)
        return state

    async def write_output(self, chunk: Json) -> None:
        await self.memory.write_output(chunk, self.prefix)

    def step_result(self, step_id: str) -> Json | None:
        record = self.memory.records.get((*self.prefix, step_id))
        if record is None or record.status is not StepStatus.SUCCESS:
            return None
        return json_copy(record.output)

    def init_data(self) -> Json:
        return json_copy(self.init)


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
        state: dict[str, Json] = json_copy({**self._scope.memory.state, **self._patch})
        return state

    def set_state(self, patch: Mapping[str, Json]) -> None:
        """Merge `patch` into what this attempt sets; a state over `limits.STATE` is refused
        (PayloadTooLarge raised in the step, which fails it) and left unchanged."""
        self._scope.memory.state_sizes.check({**self._patch, **patch})
        self._patch.update(patch)

    def keep_state(self) -> None:
        """The attempt ended without failing: what it set becomes the run's state, unless
        the state would then be over `limits.STATE` (PayloadTooLarge, nothing merged):
        `set_state` measured it against the state of then, and parallel branches that each
        fit may merge since and not fit together."""
        if self._patch:
            self._scope.memory.state_sizes.merge(self._patch)
            self._patch.clear()

    async def write_output(self, chunk: Json) -> None:
        await self._scope.memory.write_output(chunk, self._path)

    def step_result(self, step_id: str) -> Json | None:
        return self._scope.step_result(step_id)

    def init_data(self) -> Json:
        return self._scope.init_data()
