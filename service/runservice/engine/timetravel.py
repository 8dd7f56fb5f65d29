"""Time travel and fork: running a settled run again from one of its steps.

Mastra's `timeTravel` and DBOS's fork. The engine drives a run from its step records
(`driver.py`), so going back to a step is a change of records, then an ordinary walk:

- the records of the steps that started before the target (in start order, so with the
  earlier steps inside enclosing nested workflows) are kept: they give back their
  outcomes and never run again;
- the target, everything that started after it, and the records of the nested
  workflows that enclose any of them are removed: the walk runs them again (a nested
  workflow that started before the target keeps the records of its earlier steps);
- the target's new input is stored on the run (`Run.travel`); the walk gives it to the
  target instead of its predecessor's output, until the target has an outcome.

A loop body keeps one record (its latest iteration), so travelling to a loop body runs
the loop again from its first iteration with the new input. Steps inside a foreach item
(paths with "[i]") cannot be targets; the foreach step itself can (its input is the list).

The run's event log continues (TimeTravel) or starts (ForkRun) with a TIME_TRAVEL event
whose data names the target and the replaced records and carries the earlier outcome, so
nothing of what ran before is lost: the replaced records are in the events before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runservice.engine.targets import find_runnable
from runservice.errors import (
    FieldViolation,
    InvalidArgument,
    RunNotStarted,
    RunStillActive,
    StepNotReached,
    ValidationFailed,
)
from runservice.model import EventDraft, EventType, Json, Run, RunStatus, StepPath, StepRecord, path_key
from runservice.workflow import ForeachNode, Schema, SchemaViolation, Workflow

TRAVELABLE = frozenset({RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.CANCELED, RunStatus.SUSPENDED})
"""Statuses a run can be time-travelled (or forked) from: settled ones. Mastra refuses
only a running run; a waiting (sleeping) run is refused here too, since it is active:
it wakes up by itself and its driver still owns it."""


class _RecordedInput:
    """The default of `input_data`: the target step's input as recorded."""

    def __repr__(self) -> str:
        return "RECORDED_INPUT"


RECORDED_INPUT: Any = _RecordedInput()


@dataclass(frozen=True, slots=True)
class TravelPlan:
    """What a time travel changes: the target, its input, the records kept and replaced."""

    path: StepPath
    input: Json
    kept: tuple[StepRecord, ...]
    replaced: tuple[StepRecord, ...]


def check_time_travel(run: Run, workflow: Workflow) -> None:
    """The preconditions of TimeTravel and ForkRun on the run (FailedPrecondition).

    One place on purpose: a refusal for a run whose workflow definition changed since it
    ran belongs here too.
    """
    if run.status is RunStatus.PENDING:
        raise RunNotStarted(run.run_id)
    if run.status not in TRAVELABLE:
        raise RunStillActive(run.run_id, run.status.value)


def refusal(run_id: str, status: RunStatus | None) -> Exception:
    """The error for a time-travel write whose status condition no longer held."""
    if status is RunStatus.PENDING:
        return RunNotStarted(run_id)
    return RunStillActive(run_id, (status or RunStatus.RUNNING).value)


def plan(run: Run, workflow: Workflow, step: Sequence[str], input_data: Json) -> TravelPlan:
    """Which records stay and go when `run` travels back to `step` (a path of ids, or one
    dotted id), and the target's validated input (`RECORDED_INPUT`: the one it ran with)."""
    path = _path(step)
    runnable = find_runnable(workflow, path)
    if runnable is None or any(part.startswith("[") for part in path):
        description = f"workflow {workflow.id!r} has no step {path_key(path)!r} to time travel to"
        raise InvalidArgument(f"step: {description}", violations=[FieldViolation("step", description)])
    target = next((s for s in run.steps if s.path == path), None)
    if target is None:
        raise StepNotReached(run.run_id, path_key(path))
    going = {s.path for s in run.steps if s.position >= target.position or s.path[: len(path)] == path}
    # A nested workflow runs again when anything inside it does, also one that started before
    # the target (a parallel sibling's, whose later steps started after it): kept, its record
    # would give back its outcome, and the steps replaced inside it would never run again.
    enclosing = {p[:size] for p in going for size in range(1, len(p))}
    replaced = tuple(s for s in run.steps if s.path in going or s.path in enclosing)
    kept = tuple(s for s in run.steps if s not in replaced)
    data = target.payload if input_data is RECORDED_INPUT else input_data
    schema = runnable.input_schema
    if _is_foreach(workflow, path):
        data = _validate_items(schema, data)
    else:
        data = _validate(schema, data, "input_data")
    return TravelPlan(path, data, kept, replaced)


def travel_event(path: StepPath, replaced: Sequence[StepRecord], previous: Run, *, fork: bool) -> EventDraft:
    """The TIME_TRAVEL event: the target, the replaced records and the earlier outcome
    (for a fork: the run it was forked from and that run's outcome)."""
    outcome: dict[str, Json] = {
        "run_id": previous.run_id,
        "status": previous.status.value,
        "result": previous.result,
        "error": previous.error.to_json() if previous.error else None,
        "last_sequence": previous.last_sequence,
    }
    data: dict[str, Json] = {
        "step": list(path),
        "replaced_steps": [] if fork else [s.key for s in replaced],
        "forked_from" if fork else "previous": outcome,
    }
    return EventDraft(EventType.TIME_TRAVEL, RunStatus.RUNNING, data=data)


def _path(step: Sequence[str]) -> StepPath:
    parts = tuple(step[0].split(".")) if len(step) == 1 else tuple(step)
    if not parts or any(not part for part in parts):
        description = "name the step to time travel to: a path of ids or one dotted id"
        raise InvalidArgument(f"step: {description}", violations=[FieldViolation("step", description)])
    return parts


def _is_foreach(workflow: Workflow, path: StepPath) -> bool:
    parent = find_runnable(workflow, path[:-1])
    return isinstance(parent, Workflow) and any(
        isinstance(node, ForeachNode) and node.step.id == path[-1] for node in parent.nodes
    )


def _validate(schema: Schema | None, data: Json, field: str) -> Json:
    if schema is None:
        return data
    try:
        return schema.validate(data, "step input")[1]
    except SchemaViolation as exc:
        violations = [
            FieldViolation(f"{field}.{v.field}" if v.field else field, v.description) for v in exc.violations
        ]
        raise ValidationFailed(str(exc), violations=violations) from None


def _validate_items(schema: Schema | None, data: Json) -> Json:
    """A foreach step's input: a list whose every item fits the step's input schema."""
    if not isinstance(data, list):
        description = "a foreach step's input must be a list"
        raise ValidationFailed(
            f"input_data: {description}", violations=[FieldViolation("input_data", description)]
        )
    return [_validate(schema, item, f"input_data[{index}]") for index, item in enumerate(data)]
