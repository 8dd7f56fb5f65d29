"""Workflows: `create_workflow(...)` and the builder (`then`, `parallel`, `branch`, loops,
`foreach`, `map`, `sleep`, `sleep_until`, nested workflows) ending in `commit()`."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from runservice.errors import WorkflowDefinitionError
from runservice.limits import ACTIVE_RUNS_BOUND
from runservice.model import Json
from runservice.workflow.context import ConditionContext, StepContext
from runservice.workflow.identity import DEFAULT_VERSION, check_version, graph_digest
from runservice.workflow.schedule import Schedule
from runservice.workflow.schema import Schema, SchemaViolation, as_schema
from runservice.workflow.step import RetryConfig, Step, check_id, check_timeout

Condition = Callable[[ConditionContext], bool | Awaitable[bool]]
Duration = float | dt.timedelta
DurationFn = Callable[[ConditionContext], Duration | Awaitable[Duration]]
Instant = dt.datetime
InstantFn = Callable[[ConditionContext], Instant | Awaitable[Instant]]


@dataclass(frozen=True, eq=False)
class StepNode:
    """`.then(step)`: one step or nested workflow."""

    step: Runnable


@dataclass(frozen=True, eq=False)
class ParallelNode:
    """`.parallel([...])`: branches run concurrently on the same input."""

    steps: tuple[Runnable, ...]
    allow_failure: bool = False


@dataclass(frozen=True, eq=False)
class BranchNode:
    """`.branch([(condition, step), ...])`: every branch whose condition holds runs."""

    branches: tuple[tuple[Condition, Runnable], ...]


@dataclass(frozen=True, eq=False)
class LoopNode:
    """`.dowhile(step, cond)` / `.dountil(step, cond)`: the body runs at least once."""

    step: Runnable
    condition: Condition
    kind: Literal["dowhile", "dountil"]


@dataclass(frozen=True, eq=False)
class ForeachNode:
    """`.foreach(step, concurrency=N)`: the step runs once per item of the input list."""

    step: Runnable
    concurrency: int = 1


@dataclass(frozen=True, eq=False)
class SleepNode:
    """`.sleep(seconds or fn)`: pass the input through after a pause."""

    id: str
    duration: Duration | DurationFn


@dataclass(frozen=True, eq=False)
class SleepUntilNode:
    """`.sleep_until(datetime or fn)`: pass the input through once the time has come."""

    id: str
    until: Instant | InstantFn


Node = StepNode | ParallelNode | BranchNode | LoopNode | ForeachNode | SleepNode | SleepUntilNode


class Workflow:
    """A committed graph of steps; also usable as a step of another workflow."""

    def __init__(
        self,
        id: str,
        *,
        input_schema: Any = None,
        output_schema: Any = None,
        state_schema: Any = None,
        description: str = "",
        retry_config: RetryConfig | None = None,
        timeout: float | dt.timedelta | None = None,
        version: str = DEFAULT_VERSION,
        max_active_runs: int | None = None,
    ) -> None:
        self.id = check_id("workflow", id)
        self.timeout = check_timeout(f"workflow {id!r}", timeout)
        """Seconds a run of this workflow may take, wall clock, suspended and sleeping time
        included; when nested, the seconds its part of the parent run may take."""
        self.version = check_version(version)
        """The author's name for this definition; runs record it and finish on it."""
        self.max_active_runs = _check_max_active_runs(id, max_active_runs)
        """Runs of this workflow driven at once, sleeping ones aside, by all the servers
        sharing the database together (None: only the servers' `--max-active-runs` bound
        them); past it, its runs started, resumed or ticked wait for the claim loop, behind
        each other only (engine/capacity.py)."""
        self.digest = ""
        """SHA-256 of the step graph (`workflow/identity.py`), set by `commit()`."""
        self.input_schema: Schema | None = as_schema(input_schema)
        self.output_schema: Schema | None = as_schema(output_schema)
        self.state_schema: Schema | None = as_schema(state_schema)
        self.description = description
        self.retry_config = retry_config or RetryConfig()
        self.nodes: list[Node] = []
        self.committed = False
        # A nested workflow behaves like a step with no retries of its own.
        self.retries: int | None = None
        self.resume_schema: Schema | None = None
        self.suspend_schema: Schema | None = None
        self._generated = 0
        self.schedules: list[Schedule] = []
        """Cron schedules that start runs of this workflow (`schedule`)."""

    def __repr__(self) -> str:
        return f"Workflow({self.id!r}, version={self.version!r})"

    @property
    def can_suspend(self) -> bool:
        return any(r.can_suspend for r in self.runnables())

    # -- builder -----------------------------------------------------------------------------

    def then(self, step: Runnable) -> Workflow:
        """Run `step` on the previous output."""
        return self._add(StepNode(_runnable(step, self.id)))

    def parallel(self, steps: Sequence[Runnable], *, allow_failure: bool = False) -> Workflow:
        """Run `steps` concurrently; the output is keyed by step id."""
        if not steps:
            raise WorkflowDefinitionError(f"workflow {self.id!r}: parallel() needs at least one step")
        return self._add(ParallelNode(tuple(_runnable(s, self.id) for s in steps), allow_failure))

    def branch(self, branches: Sequence[tuple[Condition, Runnable]]) -> Workflow:
        """Run every step whose condition is true; the output is keyed by the steps that ran."""
        if not branches:
            raise WorkflowDefinitionError(f"workflow {self.id!r}: branch() needs at least one branch")
        checked = []
        for entry in branches:
            if not (isinstance(entry, tuple | list) and len(entry) == 2 and callable(entry[0])):
                raise WorkflowDefinitionError(
                    f"workflow {self.id!r}: each branch must be a (condition, step) pair"
                )
            checked.append((entry[0], _runnable(entry[1], self.id)))
        return self._add(BranchNode(tuple(checked)))

    def dowhile(self, step: Runnable, condition: Condition) -> Workflow:
        """Run `step` repeatedly while `condition` holds (at least once)."""
        return self._add(LoopNode(_runnable(step, self.id), _callable(condition, self.id), "dowhile"))

    def dountil(self, step: Runnable, condition: Condition) -> Workflow:
        """Run `step` repeatedly until `condition` holds (at least once)."""
        return self._add(LoopNode(_runnable(step, self.id), _callable(condition, self.id), "dountil"))

    def foreach(self, step: Runnable, *, concurrency: int = 1) -> Workflow:
        """Run `step` on each item of the previous output (a list), `concurrency` at a time."""
        if not isinstance(concurrency, int) or concurrency < 1:
            raise WorkflowDefinitionError(f"workflow {self.id!r}: foreach concurrency must be >= 1")
        return self._add(ForeachNode(_runnable(step, self.id), concurrency))

    def map(
        self, mapping: Callable[[StepContext], Any] | dict[str, Any], *, id: str | None = None
    ) -> Workflow:
        """Reshape data: a function of the context, or a dict of declarative sources.

        Sources: `{"step": step_or_id, "path": "a.b"}` (path "." is the whole output),
        `{"init_data": True, "path": ...}`, `{"value": constant}`,
        `{"request_context_path": "a.b"}`, `{"fn": f}`; the last three may add a `schema`
        (a type: described, not checked, as in Mastra). The id defaults to `mapping_<n>`,
        stable across processes as long as the definition is unchanged.
        """
        from runservice.workflow.mapping import mapping_step

        step_id = check_id("map", id) if id else self._next_id("mapping")
        return self._add(StepNode(mapping_step(step_id, mapping, self.id)))

    def sleep(self, duration: Duration | DurationFn, *, id: str | None = None) -> Workflow:
        """Pause for `duration` seconds (a number, a timedelta, or a function returning one)."""
        if not callable(duration) and _seconds(duration) < 0:
            raise WorkflowDefinitionError(f"workflow {self.id!r}: sleep duration must be >= 0")
        return self._add(SleepNode(check_id("sleep", id) if id else self._next_id("sleep"), duration))

    def sleep_until(self, until: Instant | InstantFn, *, id: str | None = None) -> Workflow:
        """Pause until `until` (a datetime, or a function returning one). A naive datetime
        is the server's local time, as `datetime.timestamp()` reads it; an aware one is exact."""
        if not callable(until) and not isinstance(until, dt.datetime):
            raise WorkflowDefinitionError(f"workflow {self.id!r}: sleep_until needs a datetime")
        node_id = check_id("sleep", id) if id else self._next_id("sleep_until")
        return self._add(SleepUntilNode(node_id, until))

    def commit(self) -> Workflow:
        """Check the graph and freeze it; a workflow runs only once committed."""
        if not self.nodes:
            raise WorkflowDefinitionError(
                f"workflow {self.id!r} has no steps: add steps with .then(), .parallel(), "
                ".branch()... before .commit()"
            )
        seen: dict[str, str] = {}
        for node_id, _ in self.node_ids():
            if node_id in seen:
                raise WorkflowDefinitionError(
                    f"workflow {self.id!r} uses step id {node_id!r} twice; step records are keyed "
                    f"by id, so give the second use its own id with clone_step(step, id=...)"
                )
            seen[node_id] = node_id
        for runnable in self.runnables():
            if isinstance(runnable, Workflow) and not runnable.committed:
                raise WorkflowDefinitionError(
                    f"workflow {self.id!r} nests workflow {runnable.id!r}, which is not committed: "
                    f"call .commit() on it first"
                )
        _check_schema_chain(self)
        self.digest = graph_digest(self)
        self.committed = True
        return self

    def schedule(
        self,
        id: str,
        cron: str,
        *,
        timezone: str = "UTC",
        input_data: Any = None,
        overlap: str = "skip",
        missed: str = "skip",
        resource_id: str | None = None,
        description: str = "",
    ) -> Workflow:
        """Start a run of this workflow at every tick of `cron` (see `runservice.workflow.schedule`
        for the expression, the time zone and the `overlap` and `missed` policies)."""
        return self.add_schedule(
            Schedule(
                id=id,
                cron=cron,
                timezone=timezone,
                input_data=input_data,
                overlap=overlap,
                missed=missed,
                resource_id=resource_id,
                description=description,
            )
        )

    def add_schedule(self, schedule: Schedule) -> Workflow:
        """Declare a `Schedule` made elsewhere (ids are unique per server, not per workflow)."""
        if not isinstance(schedule, Schedule):
            raise WorkflowDefinitionError(f"workflow {self.id!r}: schedules must be Schedule objects")
        if any(s.id == schedule.id for s in self.schedules):
            raise WorkflowDefinitionError(f"workflow {self.id!r} declares schedule {schedule.id!r} twice")
        # Checked while the module loads: an input the schema refuses would fail every tick.
        self.scheduled_run_data(schedule.input_data, f"schedule {schedule.id!r}")
        self.schedules.append(schedule.for_workflow(self.id))
        return self

    def scheduled_run_data(self, input_data: Json, what: str) -> tuple[Json, Json]:
        """The input and initial state of a run a schedule starts, validated by this workflow's
        schemas (defaults applied); WorkflowDefinitionError naming `what` when one refuses them."""
        return (
            _schedule_validated(self.input_schema, input_data, f"{what}: input_data"),
            _schedule_validated(self.state_schema, {}, f"{what}: initial state"),
        )

    # -- reading the graph -----------------------------------------------------------------

    def node_ids(self) -> Iterator[tuple[str, Node]]:
        """Every step id of this workflow's own scope (not inside nested workflows)."""
        for node in self.nodes:
            match node:
                case StepNode(step) | LoopNode(step, _, _) | ForeachNode(step, _):
                    yield step.id, node
                case ParallelNode(steps, _):
                    for s in steps:
                        yield s.id, node
                case BranchNode(branches):
                    for _, s in branches:
                        yield s.id, node
                case SleepNode(node_id, _) | SleepUntilNode(node_id, _):
                    yield node_id, node

    def runnables(self) -> Iterator[Runnable]:
        """Every step and nested workflow of this workflow's own scope."""
        for node in self.nodes:
            match node:
                case StepNode(step) | LoopNode(step, _, _) | ForeachNode(step, _):
                    yield step
                case ParallelNode(steps, _):
                    yield from steps
                case BranchNode(branches):
                    for _, s in branches:
                        yield s
                case _:
                    pass

    def find(self, step_id: str) -> Runnable | None:
        """The step or nested workflow with this id in this workflow's own scope."""
        return next((r for r in self.runnables() if r.id == step_id), None)

    # -- internals ---------------------------------------------------------------------------

    def _add(self, node: Node) -> Workflow:
        self.nodes.append(node)
        self.committed = False
        return self

    def _next_id(self, prefix: str) -> str:
        self._generated += 1
        return f"{prefix}_{self._generated}"


Runnable = Step | Workflow


def _schedule_validated(schema: Schema | None, data: Json, what: str) -> Json:
    if schema is None:
        return data
    try:
        return schema.validate(data, what)[1]
    except SchemaViolation as exc:
        listed = "; ".join(f"{v.field or '(root)'}: {v.description}" for v in exc.violations)
        raise WorkflowDefinitionError(f"{what} fails the workflow's schema: {listed}") from None


def _check_max_active_runs(workflow_id: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= ACTIVE_RUNS_BOUND:
        raise WorkflowDefinitionError(
            f"workflow {workflow_id!r}: max_active_runs must be an integer from 1 to {ACTIVE_RUNS_BOUND}"
            f" or None, not {value!r}"
        )
    return value


def create_workflow(
    id: str,
    *,
    input_schema: Any = None,
    output_schema: Any = None,
    state_schema: Any = None,
    description: str = "",
    retry_config: RetryConfig | dict[str, Any] | None = None,
    timeout: float | dt.timedelta | None = None,
    schedules: Sequence[Schedule] = (),
    version: str = DEFAULT_VERSION,
    max_active_runs: int | None = None,
) -> Workflow:
    """Start a workflow definition; chain builder calls and finish with `.commit()`.

    `timeout` (seconds or a timedelta) sets each run's deadline: start time plus timeout,
    wall clock (time suspended or sleeping counts). Past it the run's running steps are
    stopped and the run ends failed with RunTimeoutError. `schedules` start runs on cron
    ticks (also `.schedule(...)`). `version` names this definition (default "1"): a server
    may serve several versions of one workflow id side by side; new runs start on the last
    one registered and every run finishes on the version it started with.
    `max_active_runs` bounds how many of its runs are driven at once (sleeping ones aside; a
    run nested in another's counts as part of that one), by all the replicas sharing a
    PostgreSQL database together; the rest wait for room, oldest first, while other
    workflows' runs go on. A server serving several versions of the workflow takes the
    bound of the newest.
    """
    if isinstance(retry_config, dict):
        retry_config = RetryConfig(**retry_config)
    workflow = Workflow(
        id,
        input_schema=input_schema,
        output_schema=output_schema,
        state_schema=state_schema,
        description=description,
        retry_config=retry_config,
        timeout=timeout,
        version=version,
        max_active_runs=max_active_runs,
    )
    for schedule in schedules:
        workflow.add_schedule(schedule)
    return workflow


def clone_workflow(workflow: Workflow, *, id: str) -> Workflow:
    """The same graph under another id."""
    clone = copy.copy(workflow)
    clone.id = check_id("workflow", id)
    clone.nodes = list(workflow.nodes)
    clone.schedules = []  # a schedule's id is unique: the clone declares its own
    return clone


def sleep_seconds(value: Duration) -> float:
    """Seconds of a sleep duration given as a number or a timedelta."""
    return _seconds(value)


def _seconds(value: Duration) -> float:
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise WorkflowDefinitionError(f"a sleep duration must be seconds or a timedelta, not {value!r}")


def _runnable(step: Any, workflow_id: str) -> Runnable:
    if not isinstance(step, Step | Workflow):
        raise WorkflowDefinitionError(
            f"workflow {workflow_id!r}: expected a step (create_step) or a workflow, got {step!r}"
        )
    return step


def _callable(fn: Any, workflow_id: str) -> Any:
    if not callable(fn):
        raise WorkflowDefinitionError(f"workflow {workflow_id!r}: a condition must be a function")
    return fn


def _check_schema_chain(workflow: Workflow) -> None:
    """Refuse `.then(a).then(b)` when b requires fields a's output model does not have."""
    previous: tuple[str, Schema | None] = ("the workflow input", workflow.input_schema)
    for node in workflow.nodes:
        if isinstance(node, StepNode):
            _check_pair(workflow.id, previous, node.step)
            previous = (f"step {node.step.id!r}", node.step.output_schema)
        elif isinstance(node, SleepNode | SleepUntilNode):
            continue
        else:
            previous = ("", None)


def _check_pair(workflow_id: str, previous: tuple[str, Schema | None], step: Runnable) -> None:
    source, produced = previous
    produced_fields = produced.model_fields if produced else None
    wanted = step.input_schema.model_fields if step.input_schema else None
    if produced_fields is None or wanted is None:
        return
    missing = [name for name, required in wanted.items() if required and name not in produced_fields]
    if missing:
        raise WorkflowDefinitionError(
            f"workflow {workflow_id!r}: step {step.id!r} requires {', '.join(missing)} in its input, "
            f"but {source} does not provide {'it' if len(missing) == 1 else 'them'}; "
            f"add a .map(...) between them or change the schemas"
        )


def describe_condition(condition: Condition) -> str:
    """A readable name for a condition in the step graph."""
    return getattr(condition, "__name__", None) or repr(condition)
