"""Domain values shared by every layer: statuses, step records, runs and events.

Plain frozen dataclasses holding JSON-compatible values; no I/O, no protobuf.
Times are POSIX seconds (float). `to_json` / `from_json` give the storage encoding.
"""

from __future__ import annotations

import dataclasses
import enum
import keyword
import os
import random
import time
import types
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Any, TypeVar

import orjson

import runservice.limits as limits
from runservice.errors import PayloadTooLarge

Json = Any
"""A JSON-compatible value: dict, list, str, int, float, bool or None."""

_IMMUTABLE = frozenset({str, int, float, bool, type(None)})


def json_copy(value: Json) -> Json:
    """A copy of JSON data that shares no dict or list with `value`.

    What the engine holds (a step's recorded output, the run's input and state, a resume
    payload) is handed to user code as a copy: a body that changed its input in place
    changed the earlier step's record in memory, so a Start's reply showed an output the
    store never had, and a change of `ctx.state` in place went past `set_state`, its limit
    and its rollback of a failed attempt (1.8 MB of state stored under a 1 MiB limit).
    """
    kind = type(value)
    if kind is dict:
        return {key: item if type(item) in _IMMUTABLE else json_copy(item) for key, item in value.items()}
    if kind is list:
        return [item if type(item) in _IMMUTABLE else json_copy(item) for item in value]
    return value  # a scalar (JSON data holds no other container)


StepPath = tuple[str, ...]
"""Step ids from the top-level workflow down to a step."""

_POSITION = attrgetter("position")


class RunStatus(enum.StrEnum):
    """Run lifecycle, as Mastra names it."""

    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    SUSPENDED = "suspended"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def settled(self) -> bool:
        """Terminal or suspended: nothing happens until someone acts."""
        return self in _TERMINAL or self is RunStatus.SUSPENDED


def run_status(value: object) -> RunStatus:
    """`RunStatus(value)` for a status or its text (ValueError for anything else) by one
    lookup: the enum's own call costs about a microsecond, and a run's writes make nine."""
    try:
        status = _RUN_STATUSES.get(value)
    except TypeError:  # unhashable: no status
        status = None
    if status is None:
        raise ValueError(f"{value!r} is not a valid RunStatus")
    return status


_TERMINAL = frozenset({RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.CANCELED})
_RUN_STATUSES: dict[object, RunStatus] = {status.value: status for status in RunStatus}


class StepStatus(enum.StrEnum):
    """Status of one step record."""

    RUNNING = "running"
    WAITING = "waiting"
    SUSPENDED = "suspended"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELED = "canceled"
    SKIPPED = "skipped"


class EventType(enum.StrEnum):
    """Kinds of run events; the values are Mastra's stream chunk types."""

    WORKFLOW_START = "workflow-start"
    STEP_START = "workflow-step-start"
    STEP_RESULT = "workflow-step-result"
    STEP_SUSPENDED = "workflow-step-suspended"
    STEP_WAITING = "workflow-step-waiting"
    STEP_OUTPUT = "workflow-step-output"
    STEP_PROGRESS = "workflow-step-progress"
    WORKFLOW_CANCELED = "workflow-canceled"
    WORKFLOW_FINISH = "workflow-finish"
    TIME_TRAVEL = "workflow-time-travel"
    """The run is executed again from a step (TimeTravel, or the ForkRun that made it);
    its data says from where and what the run's earlier outcome was."""


class Execution(enum.StrEnum):
    """What began an execution of a run: the `cause` of its WORKFLOW_START event."""

    START = "start"
    RESUME = "resume"
    DEADLINE = "deadline"
    """A nested workflow suspended in the run passed its deadline: the run is driven again
    to fail that workflow with its timeout (nobody resumed it)."""
    TIME_TRAVEL = "time_travel"
    FORK = "fork"
    """The first execution of a run ForkRun made."""


def _clean_text(text: str, limit: int) -> str:
    """`text` that UTF-8 can carry (a lone surrogate written as its escape), cut to at most
    `limit` characters, saying how many were cut (so cutting it again changes nothing);
    `text` itself when it is both already."""
    if not isinstance(text, str):
        text = repr(text)
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            text = text.encode("utf-8", "backslashreplace").decode()
    if len(text) > limit:
        # The note takes room too: a text cut to `limit` and then noted was over it, and each
        # later pass cut it again and miscounted (review).
        room = limit - 40
        text = f"{text[:room]}... ({len(text) - room} more characters)"
    return text


_BRIEF_NOTE = " [cut: the run's errors are past their limit]"


def _json_details(details: Any) -> Json:
    """`details` as JSON data within the limits of an error's details, or None."""
    if callable(details):
        return None
    try:
        data = orjson.loads(orjson.dumps(details))  # JSON data only; NaN becomes null
        limits.check("error.details", data, limits.ERROR_DETAILS)
    except (TypeError, ValueError, PayloadTooLarge):
        return None
    return data


@dataclass(frozen=True, slots=True)
class RunError:
    """A structured error: class name, message and optional details; never a stack trace."""

    name: str
    message: str
    details: Json = None
    cause: RunError | None = None
    """The error this one was raised from (`raise ... from`, Mastra's `cause`): its name,
    message and own cause, `limits.ERROR_CAUSES` deep at most, without details."""

    @classmethod
    def from_exception(cls, exc: BaseException) -> RunError:
        """The error of an exception raised by any code (a step's), `bounded`, with the chain
        of exceptions it was raised from (its `__cause__`s; not the implicit `__context__`,
        which a step that handles one error and raises another of its own did not ask for)."""
        chain: list[BaseException] = []
        below = exc.__cause__
        # A cycle ends where it comes back to an exception already in the chain, the top one too.
        while (
            below is not None
            and len(chain) < limits.ERROR_CAUSES
            and all(e is not below for e in (exc, *chain))
        ):
            chain.append(below)
            below = below.__cause__
        cause = None
        for raised in reversed(chain):
            cause = cls(type(raised).__name__, _message_of(raised), cause=cause)
        return cls(type(exc).__name__, _message_of(exc), getattr(exc, "details", None), cause).bounded()

    def bounded(self) -> RunError:
        """This error as every store and reply can carry it, whatever made it (user code's
        exception): its name and message valid Unicode, the message cut to `ERROR_MESSAGE`
        characters, its details kept only if they are JSON data within `ERROR_DETAILS` and
        `JSON_DEPTH` (an exception's `details` may be anything: grpc's AioRpcError's is a
        method), its causes as `_bounded_causes` keeps them. As they were raised, such errors
        failed their runs INTERNAL with the step left `running`, or stored a run no reply
        could carry (audit)."""
        name = _clean_text(self.name, limits.ID)
        message = _clean_text(self.message, limits.ERROR_MESSAGE)
        details = None if self.details is None else _json_details(self.details)
        cause = _bounded_causes(self.cause, limits.ERROR_CAUSES)
        if name is self.name and message is self.message and details == self.details and cause is self.cause:
            return self
        return RunError(name, message, details, cause)

    def brief(self) -> RunError:
        """This error as a run past its errors' limit keeps it (`limits.RUN_ERRORS`): its name
        and the start of its message, without details or causes (review: a brief error that
        kept its causes kept 4 KiB, and a wide foreach made a run no reply could carry)."""
        if (
            self.details is None
            and self.cause is None
            and (len(self.message) <= limits.ERROR_BRIEF or self.message.endswith(_BRIEF_NOTE))
        ):
            return self
        message = _clean_text(self.message, limits.ERROR_BRIEF)
        if len(self.message) > limits.ERROR_BRIEF:
            message += _BRIEF_NOTE
        return RunError(self.name, message)

    def to_json(self) -> dict[str, Json]:
        out: dict[str, Json] = {"name": self.name, "message": self.message}
        if self.details is not None:
            out["details"] = self.details
        if self.cause is not None:
            out["cause"] = self.cause.to_json()
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Json] | None) -> RunError | None:
        if data is None:
            return None
        cause = data.get("cause")
        return cls(
            name=data["name"],
            message=data["message"],
            details=data.get("details"),
            cause=cls.from_json(cause) if isinstance(cause, dict) else None,
        )


def _message_of(exc: BaseException) -> str:
    """`str(exc)`, or the class name when that is empty or breaks (user code's `__str__`)."""
    try:
        message = str(exc)
    except Exception:
        message = ""
    return message or type(exc).__name__


def _bounded_causes(cause: RunError | None, depth: int) -> RunError | None:
    """`cause` and the causes below it, `depth` at most, each its name and its message cut to
    `ERROR_CAUSE_MESSAGE` characters, without details: a chain of causes stays small beside
    the error it explains. `cause` itself when it is so already."""
    if cause is None or depth <= 0:
        return None
    below = _bounded_causes(cause.cause, depth - 1)
    name = _clean_text(cause.name, limits.ID)
    message = _clean_text(cause.message, limits.ERROR_CAUSE_MESSAGE)
    if name is cause.name and message is cause.message and cause.details is None and below is cause.cause:
        return cause
    return RunError(name, message, cause=below)


@dataclass(frozen=True, slots=True)
class ForeachItem:
    """The state of one item of a foreach step."""

    index: int
    status: StepStatus
    output: Json = None
    suspend_payload: Json = None
    error: RunError | None = None
    labels: tuple[str, ...] = ()
    """Resume labels the item registered when it suspended."""
    suspended_at: float | None = None
    resumed_at: float | None = None
    """When a resume of this item was accepted (see `resume_pending`)."""
    resume_payload: Json = None
    attempt: int = 0
    """A running (or resumed) item's next attempt (its failed ones are committed as they fail,
    so a crash does not give the item its whole retry budget again)."""

    @property
    def resume_pending(self) -> bool:
        """An accepted resume not yet carried out: it survives any crash until the item's
        next outcome (a result or a new suspension) is committed in its place."""
        return self.status is StepStatus.SUSPENDED and _resume_after(self.resumed_at, self.suspended_at)

    def to_json(self) -> dict[str, Json]:
        return _compact(
            index=self.index,
            status=self.status.value,
            output=self.output,
            suspend_payload=self.suspend_payload,
            error=self.error.to_json() if self.error else None,
            labels=list(self.labels) or None,
            suspended_at=self.suspended_at,
            resumed_at=self.resumed_at,
            resume_payload=self.resume_payload,
            attempt=self.attempt or None,
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Json]) -> ForeachItem:
        return cls(
            index=data["index"],
            status=StepStatus(data["status"]),
            output=data.get("output"),
            suspend_payload=data.get("suspend_payload"),
            error=RunError.from_json(data.get("error")),
            labels=tuple(data.get("labels") or ()),
            suspended_at=data.get("suspended_at"),
            resumed_at=data.get("resumed_at"),
            resume_payload=data.get("resume_payload"),
            attempt=data.get("attempt") or 0,
        )


def _resume_after(resumed_at: float | None, suspended_at: float | None) -> bool:
    return resumed_at is not None and (suspended_at is None or resumed_at >= suspended_at)


@dataclass(frozen=True, slots=True)
class StepRecord:
    """What a run remembers of one step (Mastra's StepResult)."""

    path: StepPath
    status: StepStatus
    payload: Json = None
    output: Json = None
    error: RunError | None = None
    suspend_payload: Json = None
    resume_payload: Json = None
    started_at: float | None = None
    ended_at: float | None = None
    suspended_at: float | None = None
    resumed_at: float | None = None
    attempt: int = 0
    iteration: int = 0
    """1-based loop iteration of a dowhile/dountil body; 0 outside loops."""
    resume_labels: tuple[str, ...] = ()
    foreach_items: tuple[ForeachItem, ...] = ()
    wake_at: float | None = None
    position: int = 0
    """Order in which the step first started within its run (for stable listing)."""
    suspend_output: Json = None
    """What the body returned after it called suspend, unless None (Mastra's suspendOutput)."""
    call_id: str = ""
    """One execution of the step (Mastra's stepCallId): new each time it begins; retries share it."""
    items_inline: bool = field(default=False, compare=False)
    """Read back from a stored record that still holds its foreach items inline (written before
    items had rows of their own): the next write of the record, which stores no items inline,
    must write them all as rows. Never stored itself (see `ITEMS_INLINE`)."""

    @property
    def key(self) -> str:
        return path_key(self.path)

    @property
    def resume_pending(self) -> bool:
        """An accepted resume of this step not yet carried out.

        Set when Resume is accepted (`resumed_at` after `suspended_at`, in the same commit
        that makes the run `running` again) and still true while the resumed body runs;
        it ends only with the step's next outcome, so a crash at any point in between
        leaves a record that the next drive resumes again.
        """
        return self.status in (StepStatus.SUSPENDED, StepStatus.RUNNING) and _resume_after(
            self.resumed_at, self.suspended_at
        )

    def to_json(self) -> dict[str, Json]:
        # Spelled out rather than filtered from a dict of everything: this runs for every
        # step start and result, and most fields are empty on most records.
        out: dict[str, Json] = {"path": list(self.path), "status": self.status._value_}
        if self.payload is not None:
            out["payload"] = self.payload
        if self.output is not None:
            out["output"] = self.output
        if self.error is not None:
            out["error"] = self.error.to_json()
        if self.suspend_payload is not None:
            out["suspend_payload"] = self.suspend_payload
        if self.resume_payload is not None:
            out["resume_payload"] = self.resume_payload
        if self.started_at is not None:
            out["started_at"] = self.started_at
        if self.ended_at is not None:
            out["ended_at"] = self.ended_at
        if self.suspended_at is not None:
            out["suspended_at"] = self.suspended_at
        if self.resumed_at is not None:
            out["resumed_at"] = self.resumed_at
        if self.attempt:
            out["attempt"] = self.attempt
        if self.iteration:
            out["iteration"] = self.iteration
        if self.resume_labels:
            out["resume_labels"] = list(self.resume_labels)
        if self.foreach_items:
            out["foreach_items"] = [item.to_json() for item in self.foreach_items]
        if self.wake_at is not None:
            out["wake_at"] = self.wake_at
        if self.position:
            out["position"] = self.position
        if self.suspend_output is not None:
            out["suspend_output"] = self.suspend_output
        if self.call_id:
            out["call_id"] = self.call_id
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Json]) -> StepRecord:
        return cls(
            path=tuple(data["path"]),
            status=StepStatus(data["status"]),
            payload=data.get("payload"),
            output=data.get("output"),
            error=RunError.from_json(data.get("error")),
            suspend_payload=data.get("suspend_payload"),
            resume_payload=data.get("resume_payload"),
            started_at=data.get("started_at"),
            ended_at=data.get("ended_at"),
            suspended_at=data.get("suspended_at"),
            resumed_at=data.get("resumed_at"),
            attempt=data.get("attempt") or 0,
            iteration=data.get("iteration") or 0,
            resume_labels=tuple(data.get("resume_labels") or ()),
            foreach_items=tuple(ForeachItem.from_json(i) for i in data.get("foreach_items") or ()),
            wake_at=data.get("wake_at"),
            position=data.get("position") or 0,
            suspend_output=data.get("suspend_output"),
            call_id=data.get("call_id") or "",
            items_inline=bool(data.get(ITEMS_INLINE)),
        )


ITEMS_INLINE = "items_inline"
"""The key a store sets on a decoded step record whose stored row holds its foreach items inline
(`StepRecord.items_inline`)."""


def new_call_id() -> str:
    """A new `StepRecord.call_id`: 128 random bits in hex (Mastra's stepCallId is a random
    UUID). From the urandom-seeded generator, not a urandom call of its own: a step start is
    on every run's path, and each urandom call lets go of the GIL, which under load the
    writer's or gRPC's thread takes, and the event loop then waits for (py-spy of the server
    at 64 runs in flight: 2.9 % of the samples in this function)."""
    return f"{random_bits(128):032x}"


@dataclass(frozen=True, slots=True)
class ResumeLabel:
    """Where a resume label points: a suspended step and, for foreach, an item."""

    path: StepPath
    for_each_index: int | None = None

    def to_json(self) -> dict[str, Json]:
        return _compact(path=list(self.path), for_each_index=self.for_each_index)

    @classmethod
    def from_json(cls, data: Mapping[str, Json]) -> ResumeLabel:
        return cls(path=tuple(data["path"]), for_each_index=data.get("for_each_index"))


@dataclass(frozen=True, slots=True)
class Travel:
    """A re-execution of a run from one step: TimeTravel (in place) or ForkRun (a new run).

    Stored on the run: the walk gives the target step `input` instead of its
    predecessor's output for as long as that step has no outcome, so a crash while it
    runs re-runs it with the same input.
    """

    step: StepPath
    input: Json = None
    count: int = 0
    """Time travels of this run so far (a fork starts at 0)."""
    fork_step: StepPath = ()
    """For a fork: the step it was forked at (kept across later time travels)."""
    resume_data: Json = None
    """The request's `resume_data`: the target runs as resumed with it until it has an
    outcome, so a crash before its body ran re-runs it resumed all the same. None: it runs
    as a fresh step."""
    suspend_payload: Json = None
    """With `resume_data`: what the target's body gets as its suspend data, the payload it
    was left suspended with (None when it was not suspended); for a foreach step a list of
    its items' payloads, by index. Copied here since its replaced record is gone."""
    suspended_at: float | None = None
    """When the target was left suspended (see `suspend_payload`): its record shows it, as
    a resumed step's does, until its next outcome."""

    def to_json(self) -> dict[str, Json]:
        return _compact(
            step=list(self.step),
            input=self.input,
            count=self.count,
            fork_step=list(self.fork_step) or None,
            resume_data=self.resume_data,
            suspend_payload=self.suspend_payload,
            suspended_at=self.suspended_at,
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Json] | None) -> Travel | None:
        if data is None:
            return None
        return cls(
            step=tuple(data["step"]),
            input=data.get("input"),
            count=data.get("count") or 0,
            fork_step=tuple(data.get("fork_step") or ()),
            resume_data=data.get("resume_data"),
            suspend_payload=data.get("suspend_payload"),
            suspended_at=data.get("suspended_at"),
        )


@dataclass(frozen=True, slots=True)
class Run:
    """A workflow run as stored: identity, status, data and (when loaded) its step records."""

    run_id: str
    workflow_id: str
    status: RunStatus
    created_at: float
    updated_at: float
    resource_id: str | None = None
    input: Json = None
    state: Json = None
    request_context: dict[str, Json] = field(default_factory=dict)
    result: Json = None
    error: RunError | None = None
    suspended: tuple[StepPath, ...] = ()
    resume_labels: Mapping[str, ResumeLabel] = field(default_factory=dict)
    last_sequence: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    wake_at: float | None = None
    """When a waiting run wakes; for a suspended run, the earliest deadline of a nested
    workflow suspended inside it (the claim loop takes the run then and it fails)."""
    trace_id: str = ""
    cancel_requested: bool = False
    """A Cancel reached a replica that does not drive the run; its owner stops it."""
    deadline: float | None = None
    """When the run times out (POSIX seconds, fixed at Start from the workflow's and the
    caller's timeouts); None: never. Stored, so it holds across restarts and replicas."""
    definition_version: str = "1"
    """The workflow version the run started on (runs stored before versions existed: "1")."""
    definition_digest: str = ""
    """The step-graph digest of that definition ("" for runs stored before digests existed)."""
    steps: tuple[StepRecord, ...] = ()
    """Step records in start order; empty unless the reader asked for them."""
    forked_from: str | None = None
    """The run this one was forked from (ForkRun)."""
    travel: Travel | None = None
    """The latest time travel of this run (or the fork that made it)."""
    schedule_id: str | None = None
    """The schedule that started the run (None for a run started by a caller)."""
    schedule_tick: float | None = None
    """The tick (seconds since the epoch) of `schedule_id` that started the run."""

    def with_steps(self, steps: Iterable[StepRecord]) -> Run:
        return evolve(self, steps=tuple(sorted(steps, key=_POSITION)))


@dataclass(frozen=True, slots=True)
class StepProgress:
    """Foreach progress carried by a STEP_PROGRESS event."""

    completed_count: int
    total_count: int
    current_index: int
    iteration_status: StepStatus
    iteration_output: Json = None

    def to_json(self) -> dict[str, Json]:
        return _compact(
            completed_count=self.completed_count,
            total_count=self.total_count,
            current_index=self.current_index,
            iteration_status=self.iteration_status.value,
            iteration_output=self.iteration_output,
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Json] | None) -> StepProgress | None:
        if data is None:
            return None
        return cls(
            completed_count=data["completed_count"],
            total_count=data["total_count"],
            current_index=data["current_index"],
            iteration_status=StepStatus(data["iteration_status"]),
            iteration_output=data.get("iteration_output"),
        )


@dataclass(frozen=True, slots=True)
class EventDraft:
    """An event before it is written; the store gives it a sequence and a time."""

    type: EventType
    run_status: RunStatus
    step: StepRecord | None = None
    data: Json = None
    error: RunError | None = None
    progress: StepProgress | None = None
    cause: Execution | None = None
    """For WORKFLOW_START: what began the execution (events stored before it have none)."""

    @classmethod
    def workflow_start(cls, workflow_id: str, cause: Execution) -> EventDraft:
        """The WORKFLOW_START event of an execution `cause` began (its data: the workflow id)."""
        return cls(EventType.WORKFLOW_START, RunStatus.RUNNING, data=workflow_id, cause=cause)

    def to_json(self, encode_step: Callable[[StepRecord], Any] = StepRecord.to_json) -> dict[str, Json]:
        """The storage encoding; `encode_step` may hand over a record already encoded."""
        # `_value_`, the member's own attribute: `.value` is a property of Enum, a function
        # call each time, and these run several times for every step of every run.
        out: dict[str, Json] = {"type": self.type._value_, "run_status": self.run_status._value_}
        if self.step is not None:
            out["step"] = encode_step(self.step)
        if self.data is not None:
            out["data"] = self.data
        if self.error is not None:
            out["error"] = self.error.to_json()
        if self.progress is not None:
            out["progress"] = self.progress.to_json()
        if self.cause is not None:
            out["cause"] = self.cause._value_
        return out


@dataclass(frozen=True, slots=True)
class Event:
    """One durable entry of a run's event log. `sequence` is 1-based and gap-free per run."""

    run_id: str
    sequence: int
    time: float
    type: EventType
    run_status: RunStatus
    step: StepRecord | None = None
    data: Json = None
    error: RunError | None = None
    progress: StepProgress | None = None
    cause: Execution | None = None
    """For WORKFLOW_START: what began the execution (None in events stored before causes were)."""

    @property
    def step_path(self) -> StepPath:
        return self.step.path if self.step else ()

    @classmethod
    def from_json(cls, run_id: str, sequence: int, time: float, data: Mapping[str, Json]) -> Event:
        step = data.get("step")
        return cls(
            run_id=run_id,
            sequence=sequence,
            time=time,
            type=EventType(data["type"]),
            run_status=RunStatus(data["run_status"]),
            step=StepRecord.from_json(step) if step else None,
            data=data.get("data"),
            error=RunError.from_json(data.get("error")),
            progress=StepProgress.from_json(data.get("progress")),
            cause=_cause(data.get("cause")),
        )

    @property
    def ends_run(self) -> bool:
        """True for the finish event of a terminal run."""
        return self.type is EventType.WORKFLOW_FINISH and self.run_status.terminal

    @property
    def settles_run(self) -> bool:
        """True for any finish event: the run is terminal or suspended."""
        return self.type is EventType.WORKFLOW_FINISH


def _cause(value: Json) -> Execution | None:
    try:
        return Execution(value) if value else None
    except ValueError:  # written by a newer version: as if unknown
        return None


@dataclass(frozen=True, slots=True)
class WorkflowState:
    """The run as of one event (Mastra's watch `workflowState`)."""

    status: RunStatus
    steps: tuple[StepRecord, ...] = ()
    result: Json = None
    error: RunError | None = None

    def apply(self, event: Event) -> WorkflowState:
        """The state after `event`."""
        steps = self.steps
        if event.step is not None and not (
            # A foreach's progress carries a bare marker of its step (path and status): the
            # record its start told stays, payload and all, until its outcome replaces it.
            event.type is EventType.STEP_PROGRESS and any(s.path == event.step.path for s in steps)
        ):
            kept = [s for s in steps if s.path != event.step.path]
            steps = (*kept, event.step) if len(kept) == len(steps) else _replace_step(steps, event.step)
        result, error = self.result, self.error
        if event.type is EventType.TIME_TRAVEL:  # the replaced records and outcome go
            data = event.data if isinstance(event.data, dict) else {}
            replaced = set(data.get("replaced_steps") or ())
            steps = tuple(s for s in steps if s.key not in replaced)
            result, error = None, None
        if event.type is EventType.WORKFLOW_FINISH:
            result = event.data if event.run_status is RunStatus.SUCCESS else None
            error = event.error
        return WorkflowState(status=event.run_status, steps=steps, result=result, error=error)


def _replace_step(steps: tuple[StepRecord, ...], record: StepRecord) -> tuple[StepRecord, ...]:
    return tuple(record if s.path == record.path else s for s in steps)


_D = TypeVar("_D")
_COPIERS: dict[type, Callable[[Any, dict[str, Any]], Any] | None] = {}
"""Per dataclass: its copier (`_copier_of`), or None when `evolve` must not bypass `__init__`."""


def evolve(obj: _D, /, **changes: Any) -> _D:
    """`dataclasses.replace`, about twice as fast for the slotted dataclasses (this module's).

    `replace` walks the fields' metadata and calls the frozen `__init__`, which sets each
    field through `object.__setattr__`; the engine copies a step record or a run several
    times per step. Here the copy is filled slot by slot. A class with an `__init__` that
    does more (`__post_init__`, `InitVar`, `init=False` fields) or without slots goes
    through `replace` itself.
    """
    cls = type(obj)
    copier = _COPIERS.get(cls)
    if copier is None and cls not in _COPIERS:
        copier = _COPIERS[cls] = _copier_of(cls)
    if copier is None:
        return replace(obj, **changes)  # type: ignore[type-var]
    new: _D = copier(obj, changes)
    if changes:  # what the copier took is popped: the rest names no field
        raise TypeError(f"{cls.__name__} has no field(s) {', '.join(changes)}")
    return new


def _copier_of(cls: type) -> Callable[[Any, dict[str, Any]], Any] | None:
    """A function that makes a copy of a `cls` with `changes` popped in: one line per field,
    each an attribute read and its slot's setter. Made with `exec`, as dataclasses makes
    `__init__`: a loop over the fields cost about as much again (an `evolve` of a Run took
    4.7 us with the loop, 3.2 with this; `replace` of a step record 6.6)."""
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__post_init__"):
        return None
    fields = dataclasses.fields(cls)
    slots: list[Any] = [cls.__dict__.get(f.name) for f in fields]
    if len(fields) != len(getattr(cls, "__dataclass_fields__", ())) or not all(
        f.init
        and isinstance(slot, types.MemberDescriptorType)
        and f.name.isidentifier()
        and not keyword.iskeyword(f.name)
        for f, slot in zip(fields, slots, strict=True)
    ):
        return None
    # Each descriptor's bound setter, made once: looking it up per copy costs as much as the copy.
    names: dict[str, Any] = {"new_object": object.__new__, "cls": cls}
    lines = ["def copy(obj, changes):", "    new = new_object(cls)"]
    for index, (f, slot) in enumerate(zip(fields, slots, strict=True)):
        names[f"set_{index}"] = slot.__set__
        lines.append(
            f"    set_{index}(new, changes.pop({f.name!r}) if {f.name!r} in changes else obj.{f.name})"
        )
    lines.append("    return new")
    exec("\n".join(lines), names)  # the text holds nothing but the field names checked above
    copier: Callable[[Any, dict[str, Any]], Any] = names["copy"]
    return copier


_IDS = random.Random(os.urandom(32))
# A process forked from this one (a step's multiprocessing, say) would draw the same ids.
os.register_at_fork(after_in_child=lambda: _IDS.seed(os.urandom(32)))
_RAND_B = (1 << 62) - 1
"""The low 62 bits of a version 7 UUID (rand_b), below its variant."""


def random_bits(k: int) -> int:
    """`k` random bits, for ids that need uniqueness, not secrecy: a urandom-seeded generator,
    seeded anew in a forked child (a urandom call per id costs tens of microseconds on VMs)."""
    return _IDS.getrandbits(k)


def time_ordered_id() -> str:
    """A new run id: a UUID version 7 (RFC 9562), the Unix time in milliseconds in its first
    48 bits and 74 random bits after it.

    Time-ordered, so the rows of runs started close together sit side by side in every
    index keyed by run id: a commit touches a few shared pages at the end of each index
    instead of one random page per run, in the store's cache and in its write-ahead log
    (BENCHMARKS.md measures what random ids cost). One urandom-seeded generator: a
    urandom call per id costs tens of microseconds on VMs, and ids need uniqueness, not
    secrecy. The engine names new runs with it, and the clients name the runs they reserve.
    """
    random_bits = _IDS.getrandbits(74)
    value = (
        (time.time_ns() // 1_000_000) << 80
        | 0x7 << 76  # version 7
        | (random_bits >> 62) << 64  # rand_a: 12 bits
        | 0b10 << 62  # the RFC's variant
        | random_bits & _RAND_B
    )
    return str(uuid.UUID(int=value))


_REQUEST_IDS = uuid.UUID("6f1d3c2e-5b7a-4c8e-9a0b-2d4e6f8a1c3e")
_FORKS = uuid.UUID("0b6f3d1a-7c52-4e8b-9f14-6a2d5c8e3b71")


def request_run_id(workflow_id: str, request_id: str, resource_id: str | None) -> str:
    """The run id a Start without one gets from its request id (stable across retries).

    The resource id is part of it: callers of different tenants who happen to use the same
    request id get different runs, never each other's. Here, not in the engine, so that the
    command line can name the run a `start --wait --request-id` cut short leaves going.
    """
    return str(uuid.uuid5(_REQUEST_IDS, f"{workflow_id}\x00{resource_id or ''}\x00{request_id}"))


def fork_run_id(source_run_id: str, request_id: str) -> str:
    """The id a ForkRun without `new_run_id` gets from its request id (stable across retries)."""
    return str(uuid.uuid5(_FORKS, f"{source_run_id}\x00{request_id}"))


def path_key(path: StepPath) -> str:
    """The storage key of a step path ("outer.inner")."""
    return ".".join(path)


def _compact(**values: Json) -> dict[str, Json]:
    return {k: v for k, v in values.items() if v is not None}
