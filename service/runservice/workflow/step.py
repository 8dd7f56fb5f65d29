"""Steps: `create_step` (call or decorator form) and `clone_step`."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, overload

from runservice.errors import WorkflowDefinitionError
from runservice.workflow.context import StepContext
from runservice.workflow.schema import Schema, as_schema

StepFn = Callable[[StepContext], Awaitable[Any]]

_ID = re.compile(r"[A-Za-z0-9_:\-]{1,128}")


def check_id(kind: str, value: str) -> str:
    """Ids are 1-128 chars of letters, digits, `_`, `-`, `:`; dots are reserved for nested paths."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise WorkflowDefinitionError(
            f"{kind} id {value!r} is invalid: use 1-128 letters, digits, '_', '-' or ':' "
            "(dots separate nested step ids)"
        )
    return value


def check_timeout(owner: str, value: float | dt.timedelta | None) -> float | None:
    """A timeout in seconds (a positive number or a timedelta), or None for none."""
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise WorkflowDefinitionError(f"{owner}: timeout must be seconds or a timedelta, not {value!r}")
    if not (math.isfinite(seconds) and seconds > 0):
        raise WorkflowDefinitionError(f"{owner}: timeout must be a positive, finite number of seconds")
    return float(seconds)


@dataclass(frozen=True, eq=False)
class RetryConfig:
    """Workflow-wide retries: `attempts` further executions after a failure, `delay` seconds apart."""

    attempts: int = 0
    delay: float = 0.0


@dataclass(frozen=True, eq=False)
class Step:
    """A unit of work: an async function of a StepContext, with schemas."""

    id: str
    execute: StepFn
    input_schema: Schema | None = None
    output_schema: Schema | None = None
    resume_schema: Schema | None = None
    suspend_schema: Schema | None = None
    description: str = ""
    retries: int | None = None
    timeout: float | None = None
    """Seconds one attempt of the body may take; past it the body is cancelled and the
    attempt fails with StepTimeoutError (retried like any failure). None: no limit."""
    map_config: Any = None
    """For steps built by `Workflow.map`: the declarative mapping, shown in the step graph."""

    @property
    def can_suspend(self) -> bool:
        return self.resume_schema is not None or self.suspend_schema is not None


@overload
def create_step(
    id: str,
    *,
    execute: StepFn,
    input_schema: Any = None,
    output_schema: Any = None,
    resume_schema: Any = None,
    suspend_schema: Any = None,
    retries: int | None = None,
    timeout: float | dt.timedelta | None = None,
    description: str = "",
) -> Step: ...


@overload
def create_step(
    id: str,
    *,
    execute: None = None,
    input_schema: Any = None,
    output_schema: Any = None,
    resume_schema: Any = None,
    suspend_schema: Any = None,
    retries: int | None = None,
    timeout: float | dt.timedelta | None = None,
    description: str = "",
) -> Callable[[StepFn], Step]: ...


def create_step(
    id: str,
    *,
    execute: StepFn | None = None,
    input_schema: Any = None,
    output_schema: Any = None,
    resume_schema: Any = None,
    suspend_schema: Any = None,
    retries: int | None = None,
    timeout: float | dt.timedelta | None = None,
    description: str = "",
) -> Step | Callable[[StepFn], Step]:
    """Define a step. Schemas are pydantic types (a BaseModel class, `list[str]`...) or None.

    Pass `execute=` or use it as a decorator on an `async def body(ctx)`. `timeout` (seconds
    or a timedelta) bounds each attempt: past it the body is cancelled (its `finally` blocks
    run) and the attempt fails with StepTimeoutError, which `retries` retry.
    """

    def build(fn: StepFn) -> Step:
        if not callable(fn):
            raise WorkflowDefinitionError(f"step {id!r}: execute must be an async function of a context")
        if retries is not None and (not isinstance(retries, int) or retries < 0):
            raise WorkflowDefinitionError(f"step {id!r}: retries must be a non-negative integer")
        return Step(
            id=check_id("step", id),
            execute=fn,
            input_schema=as_schema(input_schema),
            output_schema=as_schema(output_schema),
            resume_schema=as_schema(resume_schema),
            suspend_schema=as_schema(suspend_schema),
            description=description or (fn.__doc__ or "").strip().split("\n")[0],
            retries=retries,
            timeout=check_timeout(f"step {id!r}", timeout),
        )

    return build if execute is None else build(execute)


def clone_step(step: Step, *, id: str) -> Step:
    """The same step under another id (step records are keyed by id)."""
    return replace(step, id=check_id("step", id))
