"""What running a node of the graph produced."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from runservice.model import Json, RunError, StepRecord, StepStatus

USER_EXITS = (SystemExit, KeyboardInterrupt)
"""What a step's code may raise to stop a program (`sys.exit()`, argparse's error, a library's
own): from a body or a condition, an error like any other. Let through, asyncio takes them out
of the event loop: before, a step that called `sys.exit(2)` stopped the server (audit)."""


class Kind(enum.Enum):
    SUCCESS = "success"
    FAILED = "failed"
    SUSPENDED = "suspended"
    BAILED = "bailed"
    CANCELED = "canceled"


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: Kind
    output: Json = None
    error: RunError | None = None

    @property
    def ok(self) -> bool:
        return self.kind is Kind.SUCCESS


@dataclass(frozen=True, slots=True)
class Resumption:
    """An accepted resume as a body receives it: the resume data (checked against the
    step's resume schema when the body is called) and the payload it suspended with."""

    data: Json
    suspend_payload: Json
    suspended_at: float | None = None
    """When it suspended (a time travel's resumed record shows it, as a resumed step's does)."""


SUSPENDED = Outcome(Kind.SUSPENDED)
CANCELED = Outcome(Kind.CANCELED)


def success(output: Json) -> Outcome:
    return Outcome(Kind.SUCCESS, output)


def failed(error: RunError) -> Outcome:
    """A failure with `error` as it can be stored (`RunError.bounded`): every failure of a
    step, a foreach item or a block is made here, whatever raised it."""
    return Outcome(Kind.FAILED, error=error.bounded())


def combine(ids: Sequence[str], outcomes: Sequence[Outcome], *, allow_failure: bool = False) -> Outcome:
    """The outcome of a parallel or branch block: its output is keyed by step id.

    A branch that bailed ends only itself, as in Mastra (reference H): the block goes on
    as its other branches say, so a failed or suspended sibling is never hidden. Its output
    is the bail's result, kept in the block's output (Mastra [B] drops it): its record reads
    `success` with that output, and a walk after a resume or a crash, which has only the
    record, must give the block the output the first walk gave it.
    """
    kinds = {o.kind for o in outcomes}
    if Kind.CANCELED in kinds:
        return CANCELED
    failure = next((o for o in outcomes if o.kind is Kind.FAILED), None)
    if failure is not None and not allow_failure:
        return failure
    if Kind.SUSPENDED in kinds:
        return SUSPENDED
    output: dict[str, Json] = {}
    for step_id, outcome in zip(ids, outcomes, strict=True):
        if outcome.ok or outcome.kind is Kind.BAILED:
            output[step_id] = outcome.output
        elif outcome.kind is Kind.FAILED:
            output[step_id] = None
    return success(output)


def recorded(record: StepRecord) -> Outcome | None:
    """The outcome a finished record stands for, or None while the step is unfinished.

    A finished step is never run again: a recovered walk takes its outcome from here,
    failures and cancellations included, so no step ever gets a second result.
    """
    if record.status is StepStatus.SUCCESS:
        return success(record.output)
    if record.status is StepStatus.FAILED:
        return failed(record.error or RunError("Error", "the step failed"))
    if record.status is StepStatus.CANCELED:
        return CANCELED
    return None
