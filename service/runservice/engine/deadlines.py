"""Run deadlines: when a run times out, and the error it ends with.

A run's deadline is fixed once, at Start: start time plus the workflow's `timeout`, or
the caller's `timeout` when that is shorter (or the workflow declares none). It is wall
clock, like Temporal's workflow execution timeout: time suspended or sleeping counts. It
is stored with the run, so it holds across restarts and replicas: the replica that
drives the run arms a timer from it, and the claim loop ends suspended runs past it.

Nested workflows run inside their parent's run, so the run's deadline bounds them as it
bounds everything else (they inherit what is left of it). A nested workflow that declares
its own `timeout` also gets a deadline of its own, min(the enclosing deadline, its start
plus its timeout), counted from its step record's start (stored, so it too holds across
restarts): past it its running step is cancelled and it fails, as a step of its parent,
with WorkflowTimeoutError. Its steps' timeouts are cut to what is left of it. When it
passes while the nested workflow sits suspended, the run settled with `wake_at` set to the
earliest such deadline: the claim loop takes the run then and drives it, and the walk fails
the nested workflow there (its suspended steps with it), the parent going on from there.
"""

from __future__ import annotations

import datetime as dt
import math

from runservice.errors import FieldViolation, InvalidArgument, RunTimeoutError, WorkflowTimeoutError
from runservice.model import RunError


def run_deadline(now: float, workflow_timeout: float | None, caller_timeout: float | None) -> float | None:
    """The deadline of a run started at `now`: the shorter of both timeouts; None if neither."""
    if caller_timeout is not None and not (math.isfinite(caller_timeout) and caller_timeout > 0):
        description = "must be a positive duration"
        raise InvalidArgument(f"timeout: {description}", violations=[FieldViolation("timeout", description)])
    timeouts = [t for t in (workflow_timeout, caller_timeout) if t is not None]
    return now + min(timeouts) if timeouts else None


def iso(seconds: float) -> str:
    """POSIX seconds as an RFC 3339 UTC time (how a deadline is shown in errors)."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat().replace("+00:00", "Z")


def deadline_error(deadline: float) -> RunError:
    """The error a run that passed its deadline ends with (name `RunTimeoutError`)."""
    return RunError.from_exception(RunTimeoutError(iso(deadline)))


def workflow_deadline_error(workflow_id: str, deadline: float) -> RunError:
    """The error a nested workflow past its own deadline fails with (`WorkflowTimeoutError`)."""
    return RunError.from_exception(WorkflowTimeoutError(workflow_id, iso(deadline)))
