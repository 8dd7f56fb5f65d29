"""What running a node of the graph produced, and the runtime scope steps see."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runservice.model import Json, RunError, StepPath, StepStatus

if TYPE_CHECKING:
    from runservice.engine.driver import RunDriver
    from runservice.workflow import Workflow


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


SUSPENDED = Outcome(Kind.SUSPENDED)
CANCELED = Outcome(Kind.CANCELED)


def success(output: Json) -> Outcome:
    return Outcome(Kind.SUCCESS, output)


def failed(error: RunError) -> Outcome:
    return Outcome(Kind.FAILED, error=error)


def combine(ids: Sequence[str], outcomes: Sequence[Outcome], *, allow_failure: bool = False) -> Outcome:
    """The outcome of a parallel or branch block: its output is keyed by step id."""
    kinds = {o.kind for o in outcomes}
    if Kind.CANCELED in kinds:
        return CANCELED
    bailed = next((o for o in outcomes if o.kind is Kind.BAILED), None)
    if bailed is not None:
        return bailed
    failure = next((o for o in outcomes if o.kind is Kind.FAILED), None)
    if failure is not None and not allow_failure:
        return failure
    if Kind.SUSPENDED in kinds:
        return SUSPENDED
    output: dict[str, Json] = {}
    for step_id, outcome in zip(ids, outcomes, strict=True):
        if outcome.ok:
            output[step_id] = outcome.output
        elif outcome.kind is Kind.FAILED:
            output[step_id] = None
    return success(output)


class Scope:
    """One workflow level of a run (top-level or nested): what `StepRuntime` needs."""

    def __init__(
        self, driver: RunDriver, workflow: Workflow, prefix: StepPath, init: Json, iteration: int = 0
    ):
        self.driver = driver
        self.workflow = workflow
        self.prefix = prefix
        self.init = init
        self.iteration = iteration
        """Loop iteration of the enclosing body; records of older iterations are stale."""

    def get_state(self) -> dict[str, Json]:
        return dict(self.driver.state)

    def set_state(self, patch: Mapping[str, Json]) -> None:
        self.driver.state.update(patch)

    async def write_output(self, chunk: Json) -> None:
        await self.driver.write_output(chunk, self.prefix)

    def step_result(self, step_id: str) -> Json | None:
        record = self.driver.records.get((*self.prefix, step_id))
        return record.output if record is not None and record.status is StepStatus.SUCCESS else None

    def init_data(self) -> Json:
        return self.init

    def child(self, workflow: Workflow, path: StepPath, init: Any, iteration: int = 0) -> Scope:
        return Scope(self.driver, workflow, path, init, iteration)
