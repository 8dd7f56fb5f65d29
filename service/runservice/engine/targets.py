"""Resolving which suspended step a Resume addresses, and finding its definition."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from runservice.errors import (
    FieldViolation,
    InvalidArgument,
    MultipleSuspendedSteps,
    ResumeLabelNotFound,
    RunNotSuspended,
    StepNotSuspended,
)
from runservice.model import ForeachItem, Json, Run, RunStatus, StepPath, StepRecord, StepStatus
from runservice.model import evolve as replace  # dataclasses.replace, faster
from runservice.workflow import Runnable, Workflow


def resolve(
    run: Run, step: Sequence[str], label: str | None, for_each_index: int | None
) -> list[tuple[StepPath, int | None]]:
    """The paths of the steps to resume (and the foreach item), following Mastra's rules:
    a label wins over `step`; `step` may name a nested path or its outer workflow step;
    with neither, exactly one step must be suspended. As for a foreach of steps, one
    suspended step in each of several items of one foreach of workflows is resumed in all
    of them when no item is named."""
    if run.status is not RunStatus.SUSPENDED:
        raise RunNotSuspended(run.run_id, run.status.value)
    suspended = list(run.suspended)
    names = [".".join(p) for p in suspended]
    if label:
        target = run.resume_labels.get(label)
        if target is None:
            raise ResumeLabelNotFound(run.run_id, label, list(run.resume_labels))
        return [(target.path, for_each_index if for_each_index is not None else target.for_each_index)]
    wanted: StepPath = ()
    if step:
        wanted = tuple(step[0].split(".")) if len(step) == 1 else tuple(step)
    # A step inside a foreach of workflows may be named as Mastra names it, without the
    # item ("X.ask" for "X.[1].ask"): `for_each_index` then picks the item.
    matches = [
        p for p in suspended if p[: len(wanted)] == wanted or _without_items(p)[: len(wanted)] == wanted
    ]
    if for_each_index is not None:
        # In a foreach of workflows the index picks the item: "[i]" is in the inner path.
        item = f"[{for_each_index}]"
        matches = [p for p in matches if item in p or not any(part.startswith("[") for part in p)]
    if not matches:
        if not suspended:
            raise RunNotSuspended(run.run_id, run.status.value)
        raise StepNotSuspended(run.run_id, ".".join(wanted) or "(any)", names)
    if len(matches) > 1:
        if for_each_index is not None or not _one_per_item(matches):
            raise MultipleSuspendedSteps(run.run_id, [".".join(p) for p in matches])
        return [(path, None) for path in matches]
    return [(matches[0], for_each_index)]


def _one_per_item(paths: Sequence[StepPath]) -> bool:
    """Whether `paths` are in different items of the same foreach of workflows, one each."""
    items: set[str] = set()
    outer: set[StepPath] = set()
    for path in paths:
        at = next((i for i, part in enumerate(path) if part.startswith("[")), None)
        if at is None or path[at] in items:
            return False
        items.add(path[at])
        outer.add(path[:at])
    return len(outer) == 1


def _without_items(path: StepPath) -> StepPath:
    return tuple(part for part in path if not part.startswith("["))


class Accepted(NamedTuple):
    """A resume accepted on a step: what the walk follows, and what is written for it."""

    record: StepRecord
    """The step's record with the resume on it and on its chosen foreach items (all its items)."""
    stored: StepRecord
    """The record to write: without its items, which have rows of their own, so a resume of one
    item of N costs the same whatever N is; with all of them when the stored record held them
    inline (an old version's), which moves them to rows."""
    items: tuple[ForeachItem, ...]
    """The foreach items the resume changed, each written as its own row."""


def accept(run_id: str, record: StepRecord, index: int | None, data: Json, now: float) -> Accepted:
    """The resume accepted on the step (on the chosen foreach items).

    Stored in the same commit that makes the run `running` again, it is what every
    later drive of the run follows until the resumed step's next outcome is committed.
    """
    if record.foreach_items:
        items = record.payload if isinstance(record.payload, list) else []
        suspended = {i.index for i in record.foreach_items if i.status is StepStatus.SUSPENDED}
        if index is not None:
            if not 0 <= index < len(items):
                raise _bad_index(f"step {'.'.join(record.path)!r} has items 0 to {len(items) - 1}")
            if index not in suspended:
                raise StepNotSuspended(
                    run_id,
                    f"{'.'.join(record.path)}[{index}]",
                    [f"{'.'.join(record.path)}[{i}]" for i in sorted(suspended)],
                )
        chosen = suspended if index is None else {index}
        changed: dict[int, ForeachItem] = {
            i.index: replace(i, resumed_at=now, resume_payload=data)
            for i in record.foreach_items
            if i.index in chosen
        }
        resumed = replace(
            record,
            foreach_items=tuple(changed.get(i.index, i) for i in record.foreach_items),
            resumed_at=now,
            resume_payload=data,
            items_inline=False,  # the write below stores them all as rows
        )
        if record.items_inline:
            return Accepted(resumed, resumed, ())
        return Accepted(resumed, replace(resumed, foreach_items=()), tuple(changed.values()))
    if index is not None and f"[{index}]" not in record.path:
        raise _bad_index(f"step {'.'.join(record.path)!r} is not a foreach step")
    resumed = replace(record, resumed_at=now, resume_payload=data)
    return Accepted(resumed, resumed, ())


def _bad_index(description: str) -> InvalidArgument:
    return InvalidArgument(
        f"for_each_index: {description}", violations=[FieldViolation("for_each_index", description)]
    )


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
