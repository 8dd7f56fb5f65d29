"""Resolving which suspended step a Resume addresses, and finding its definition."""

from __future__ import annotations

from collections.abc import Sequence

from runservice.errors import FailedPrecondition, MultipleSuspendedSteps, RunNotSuspended, StepNotSuspended
from runservice.model import Run, RunStatus, StepPath, StepRecord, StepStatus
from runservice.workflow import Runnable, Workflow


def resolve(
    run: Run, step: Sequence[str], label: str | None, for_each_index: int | None
) -> tuple[StepPath, int | None]:
    """The path of the step to resume (and the foreach item), following Mastra's rules:
    a label wins over `step`; `step` may name a nested path or its outer workflow step;
    with neither, exactly one step must be suspended."""
    if run.status is not RunStatus.SUSPENDED:
        raise RunNotSuspended(run.run_id, run.status.value)
    suspended = list(run.suspended)
    names = [".".join(p) for p in suspended]
    if label:
        target = run.resume_labels.get(label)
        if target is None:
            known = ", ".join(sorted(run.resume_labels)) or "none"
            raise FailedPrecondition(
                f"run {run.run_id!r} has no suspended step with resume label {label!r}; labels: {known}",
                reason="RESUME_LABEL_NOT_FOUND",
                metadata={"run_id": run.run_id, "label": label},
            )
        return target.path, for_each_index if for_each_index is not None else target.for_each_index
    if step:
        wanted = tuple(step[0].split(".")) if len(step) == 1 else tuple(step)
        matches = [p for p in suspended if p[: len(wanted)] == wanted]
        if not matches:
            raise StepNotSuspended(run.run_id, ".".join(wanted), names)
        if len(matches) > 1:
            raise MultipleSuspendedSteps(run.run_id, [".".join(p) for p in matches])
        return matches[0], for_each_index
    if not suspended:
        raise RunNotSuspended(run.run_id, run.status.value)
    if len(suspended) > 1:
        raise MultipleSuspendedSteps(run.run_id, names)
    return suspended[0], for_each_index


def find_runnable(workflow: Workflow, path: StepPath) -> Runnable | None:
    """The step or nested workflow at `path` (foreach item elements like "[2]" are skipped)."""
    current: Runnable = workflow
    for part in path:
        if part.startswith("["):
            continue
        if not isinstance(current, Workflow):
            return None
        found = current.find(part)
        if found is None:
            return None
        current = found
    return current


def pending_resume(records: Sequence[StepRecord]) -> StepRecord | None:
    """A suspended step whose resume was accepted but not yet run (the process died)."""
    for record in records:
        if (
            record.status is StepStatus.SUSPENDED
            and record.resumed_at is not None
            and (record.suspended_at is None or record.resumed_at >= record.suspended_at)
        ):
            return record
    return None
