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

With `resume_data` (Mastra's `resumeData`) the target runs as resumed: its body gets the
data and, when the run left it suspended, the payload it suspended with (a foreach step:
every item's body, each with its own payload). It is stored on the run with the new input
(`Travel`), so it survives a crash as the input does. Mastra gives it only to a target
(and to any later step) the run left suspended, and drops it without a word otherwise or
when it fails the resume schema: here it is validated as a Resume's is, and the target
gets it whatever its record says, so a step that was resumed and went on can be answered
again in one call. A nested workflow has no body to give it to: refused, naming `resume_data`.

The run's event log continues (TimeTravel) or starts (ForkRun) with a TIME_TRAVEL event
whose data names the target and the replaced records and carries the earlier outcome, so
nothing of what ran before is lost: the replaced records are in the events before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
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
from runservice.model import (
    EventDraft,
    EventType,
    Json,
    Run,
    RunStatus,
    StepPath,
    StepRecord,
    StepStatus,
    Travel,
    path_key,
)
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
    resume_data: Json = None
    """The validated resume data (None: the target is not resumed)."""
    suspend_payload: Json = None
    """What the target's body gets as its suspend data (see `Travel.suspend_payload`)."""
    suspended_at: float | None = None


def travel_ended(travel: Travel | None) -> dict[str, Travel]:
    """The `travel` field of a run whose execution ends (settles, is canceled or expires), if it
    changes: a time travel's resume data, and its copies of the target's suspend payloads, are
    for its own execution. Kept, they went on into a later Resume's execution (a foreach's next
    items got them), and stayed in the run's row for good, read by every summary (a review)."""
    if travel is None or (travel.resume_data is None and travel.suspend_payload is None):
        return {}
    return {"travel": replace(travel, resume_data=None, suspend_payload=None, suspended_at=None)}


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


def plan(
    run: Run, workflow: Workflow, step: Sequence[str], input_data: Json, resume_data: Json = None
) -> TravelPlan:
    """Which records stay and go when `run` travels back to `step` (a path of ids, or one
    dotted id), the target's validated input (`RECORDED_INPUT`: the one it ran with) and
    resume data (None: not resumed)."""
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
    foreach = _is_foreach(workflow, path)
    data = _validate_items(schema, data) if foreach else _validate(schema, data, "input_data")
    if resume_data is None:
        return TravelPlan(path, data, kept, replaced)
    if isinstance(runnable, Workflow):
        raise _no_body(run, path, foreach)
    resumed = _validate(runnable.resume_schema, resume_data, "resume_data", "resume data")
    suspended = target.status is StepStatus.SUSPENDED
    payload: Json = target.suspend_payload if suspended else None
    if foreach:
        # By index, as Mastra's: item i of the new input gets what item i suspended with.
        payload = [None] * (1 + max((i.index for i in target.foreach_items), default=-1))
        for item in target.foreach_items:
            if item.status is StepStatus.SUSPENDED:
                payload[item.index] = item.suspend_payload
    return TravelPlan(
        path,
        data,
        kept,
        replaced,
        resume_data=resumed,
        suspend_payload=payload,
        suspended_at=target.suspended_at if suspended and not foreach else None,
    )


def _no_body(run: Run, path: StepPath, foreach: bool) -> InvalidArgument:
    """The refusal of resume data for a nested workflow (or a foreach of them): it has no body
    of its own to give it to, and it runs again from its first step. Mastra gives it to a step
    suspended inside and runs none of the earlier ones again, which here is a time travel to
    that step: named when the run has one. Steps inside a foreach's items are no targets: those
    are travelled to without it, then resumed."""
    key = path_key(path)
    if foreach:
        description = (
            f"{key!r} is a foreach of nested workflows: resume data goes to a step, and the steps"
            " inside its items cannot be time travel targets; travel without resume_data, then Resume"
        )
    else:
        suspended = [path_key(p) for p in run.suspended if p[: len(path)] == path and p != path]
        hint = f" (suspended inside it: {', '.join(suspended)})" if suspended else ""
        description = (
            f"{key!r} is a nested workflow, whose steps get resume data, not itself: time travel"
            f" to the step inside it that is to be resumed{hint}"
        )
    return InvalidArgument(
        f"resume_data: {description}", violations=[FieldViolation("resume_data", description)]
    )


def travel_event(target: TravelPlan, previous: Run, *, fork: bool) -> EventDraft:
    """The TIME_TRAVEL event: the target, the replaced records and the earlier outcome
    (for a fork: the run it was forked from and that run's outcome), and the resume data
    the target runs with, if any (the log says what the execution was given, as a
    resumed step's start event does)."""
    outcome: dict[str, Json] = {
        "run_id": previous.run_id,
        "status": previous.status.value,
        "result": previous.result,
        "error": previous.error.to_json() if previous.error else None,
        "last_sequence": previous.last_sequence,
    }
    data: dict[str, Json] = {
        "step": list(target.path),
        "replaced_steps": [] if fork else [s.key for s in target.replaced],
        "forked_from" if fork else "previous": outcome,
    }
    if target.resume_data is not None:
        data["resume_data"] = target.resume_data
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


def _validate(schema: Schema | None, data: Json, field: str, what: str = "step input") -> Json:
    if schema is None:
        return data
    try:
        return schema.validate(data, what)[1]
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
