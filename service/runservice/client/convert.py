"""Conversions shared by both clients: protobuf messages to the model, and requests from arguments.

Responses come back as the model dataclasses (`model.Run`, `model.Event`) and the two small
descriptions of a workflow below; a status or event kind this client does not know is read
the way the contract says (a run status is "not terminal", an event kind is skipped).
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from google.protobuf import duration_pb2, message, struct_pb2

from runservice import errors, model, wire
from runservice.model import Json
from runservice.v1 import run_pb2, run_service_pb2

_RUN_STATUS = {run_pb2.RunStatus.Value(f"RUN_STATUS_{s.name}"): s for s in model.RunStatus}
_RUN_STATUS_TO = {s: cast(run_pb2.RunStatus, v) for v, s in _RUN_STATUS.items()}
_STEP_STATUS = {run_pb2.StepStatus.Value(f"STEP_STATUS_{s.name}"): s for s in model.StepStatus}
_EVENT_TYPE = {run_pb2.RunEventType.Value(f"RUN_EVENT_TYPE_{t.name}"): t for t in model.EventType}
_CAUSE = {run_pb2.ExecutionCause.Value(f"EXECUTION_CAUSE_{c.name}"): c for c in model.Execution}


def _run_status(value: int) -> model.RunStatus:
    # The contract says: a status this client does not know is "not terminal".
    return _RUN_STATUS.get(value, model.RunStatus.RUNNING)


def _step_status(value: int) -> model.StepStatus:
    return _STEP_STATUS.get(value, model.StepStatus.RUNNING)


def _error(msg: message.Message, name: str) -> model.RunError | None:
    if not msg.HasField(name):
        return None
    error: run_pb2.RunError = getattr(msg, name)
    return model.RunError(
        name=error.name,
        message=error.message,
        details=wire.read_value(error, "details"),
        cause=_error(error, "cause"),
    )


def step_from_proto(msg: run_pb2.StepRecord, position: int = 0) -> model.StepRecord:
    """A StepRecord message as the model's step record."""
    return model.StepRecord(
        path=tuple(msg.path.ids),
        status=_step_status(msg.status),
        payload=wire.read_value(msg, "payload"),
        output=wire.read_value(msg, "output"),
        error=_error(msg, "error"),
        suspend_payload=wire.read_value(msg, "suspend_payload"),
        resume_payload=wire.read_value(msg, "resume_payload"),
        started_at=wire.read_time(msg, "started_at"),
        ended_at=wire.read_time(msg, "ended_at"),
        suspended_at=wire.read_time(msg, "suspended_at"),
        resumed_at=wire.read_time(msg, "resumed_at"),
        attempt=msg.attempt,
        iteration=msg.iteration,
        resume_labels=tuple(msg.resume_labels),
        foreach_items=tuple(
            model.ForeachItem(
                index=item.index,
                status=_step_status(item.status),
                output=wire.read_value(item, "output"),
                suspend_payload=wire.read_value(item, "suspend_payload"),
                error=_error(item, "error"),
            )
            for item in msg.foreach_items
        ),
        wake_at=wire.read_time(msg, "wake_at"),
        position=position,
        suspend_output=wire.read_value(msg, "suspend_output"),
        call_id=msg.call_id,
    )


def run_from_proto(msg: run_pb2.Run) -> model.Run:
    """A Run message as the model's run (steps in start order)."""
    context = wire.read_value(msg, "request_context")
    return model.Run(
        run_id=msg.run_id,
        workflow_id=msg.workflow_id,
        status=_run_status(msg.status),
        created_at=wire.read_time(msg, "create_time") or 0.0,
        updated_at=wire.read_time(msg, "update_time") or 0.0,
        resource_id=msg.resource_id or None,
        input=wire.read_value(msg, "input"),
        state=wire.read_value(msg, "state"),
        request_context=context if isinstance(context, dict) else {},
        result=wire.read_value(msg, "result"),
        error=_error(msg, "error"),
        suspended=tuple(tuple(path.ids) for path in msg.suspended),
        resume_labels={
            label: model.ResumeLabel(
                path=tuple(target.path.ids),
                for_each_index=target.for_each_index if target.has_for_each_index else None,
            )
            for label, target in msg.resume_labels.items()
        },
        last_sequence=msg.last_sequence,
        started_at=wire.read_time(msg, "start_time"),
        ended_at=wire.read_time(msg, "end_time"),
        wake_at=wire.read_time(msg, "wake_time"),
        deadline=wire.read_time(msg, "deadline"),
        trace_id=msg.trace_id,
        definition_version=msg.definition_version or "1",
        definition_digest=msg.definition_digest,
        steps=tuple(step_from_proto(step, i + 1) for i, step in enumerate(msg.steps)),
        forked_from=msg.forked_from_run_id or None,
        travel=model.Travel(
            step=tuple(msg.time_travel_step.ids),
            count=msg.time_travel_count,
            fork_step=tuple(msg.forked_from_step.ids),
        )
        if msg.time_travel_step.ids
        else None,
        schedule_id=msg.schedule_id or None,
        schedule_tick=wire.read_time(msg, "schedule_tick_time"),
    )


def event_from_proto(msg: run_pb2.RunEvent) -> model.Event | None:
    """A RunEvent as the model's event; None for a kind this client does not know."""
    kind = _EVENT_TYPE.get(msg.type)
    if kind is None:
        return None
    progress = None
    if msg.HasField("progress"):
        p = msg.progress
        progress = model.StepProgress(
            completed_count=p.completed_count,
            total_count=p.total_count,
            current_index=p.current_index,
            iteration_status=_step_status(p.iteration_status),
            iteration_output=wire.read_value(p, "iteration_output"),
        )
    return model.Event(
        run_id=msg.run_id,
        sequence=msg.sequence,
        time=wire.read_time(msg, "time") or 0.0,
        type=kind,
        run_status=_run_status(msg.run_status),
        step=step_from_proto(msg.step) if msg.HasField("step") else None,
        data=wire.read_value(msg, "data"),
        error=_error(msg, "error"),
        progress=progress,
        cause=_CAUSE.get(msg.cause),  # None: unspecified, or a cause this client does not know
    )


@dataclass(frozen=True, slots=True)
class StepInfo:
    """A step of a workflow (nested steps have dotted ids); schemas are JSON Schema dicts."""

    id: str
    description: str
    input_schema: Json
    output_schema: Json
    resume_schema: Json
    suspend_schema: Json
    can_suspend: bool
    is_workflow: bool
    retries: int
    timeout: float | None = None
    """Seconds one attempt may take (a nested workflow: its own timeout); None: unlimited."""


@dataclass(frozen=True, slots=True)
class WorkflowInfo:
    """A workflow as `details()` describes it: schemas, steps by id, and the step graph."""

    id: str
    description: str
    input_schema: Json
    output_schema: Json
    state_schema: Json
    steps: dict[str, StepInfo]
    step_graph: list[dict[str, Json]]
    timeout: float | None = None
    """Seconds a run may take (wall clock); None: unlimited."""
    version: str = "1"
    """The newest served version (new runs start on it)."""
    digest: str = ""
    """Digest of that version's step graph."""
    versions: tuple[tuple[str, str], ...] = ()
    """Every served (version, digest), oldest first."""
    max_active_runs: int | None = None
    """Runs of it driven at once, by all the servers sharing the database together (sleeping
    ones aside); None: only each server's own bound."""


_NODE_KIND = {
    value: name.removeprefix("STEP_GRAPH_NODE_KIND_").lower()
    for name, value in run_pb2.StepGraphNodeKind.items()
}


def _graph_node(node: run_pb2.StepGraphNode) -> dict[str, Json]:
    out: dict[str, Json] = {"type": _NODE_KIND.get(node.kind, "unspecified")}
    optional: dict[str, Json] = {
        "id": node.id,
        "description": node.description,
        "children": [_graph_node(child) for child in node.children],
        "conditions": list(node.conditions),
        "loop_kind": {run_pb2.LOOP_KIND_DOWHILE: "dowhile", run_pb2.LOOP_KIND_DOUNTIL: "dountil"}.get(
            node.loop_kind
        ),
        "concurrency": node.concurrency,
        "duration_ms": node.duration_ms,
        "until": wire.read_time(node, "until"),
        "can_suspend": node.can_suspend,
        "workflow": [_graph_node(child) for child in node.workflow],
        "allow_failure": node.allow_failure,
        "map_config": wire.read_value(node, "map_config"),
    }
    out.update({key: value for key, value in optional.items() if value})  # drop defaults
    return out


def workflow_from_proto(msg: run_pb2.Workflow) -> WorkflowInfo:
    steps = {
        step.id: StepInfo(
            id=step.id,
            description=step.description,
            input_schema=wire.read_value(step, "input_schema"),
            output_schema=wire.read_value(step, "output_schema"),
            resume_schema=wire.read_value(step, "resume_schema"),
            suspend_schema=wire.read_value(step, "suspend_schema"),
            can_suspend=step.can_suspend,
            is_workflow=step.is_workflow,
            retries=step.retries,
            timeout=wire.read_duration(step, "timeout"),
        )
        for step in msg.steps
    }
    return WorkflowInfo(
        id=msg.id,
        description=msg.description,
        input_schema=wire.read_value(msg, "input_schema"),
        output_schema=wire.read_value(msg, "output_schema"),
        state_schema=wire.read_value(msg, "state_schema"),
        steps=steps,
        step_graph=[_graph_node(node) for node in msg.step_graph],
        timeout=wire.read_duration(msg, "timeout"),
        version=msg.version or "1",
        digest=msg.digest,
        versions=tuple((v.version, v.digest) for v in msg.versions),
        max_active_runs=msg.max_active_runs or None,
    )


# -- requests --------------------------------------------------------------------------------

StepRef = str | Any
"""A step to resume: an id, a dotted path "a.b", a Step-like object with `.id`, or a list of those."""


def step_path(step: StepRef | Sequence[StepRef] | None) -> list[str]:
    if step is None:
        return []
    parts: Sequence[Any] = step if isinstance(step, list | tuple) else [step]
    return [part if isinstance(part, str) else str(part.id) for part in parts]


_MAX_EXACT_INT = 2**53
"""Beyond ±2^53 a double cannot hold every integer: the value would arrive rounded."""


def request_value(obj: Any, field: str) -> struct_pb2.Value | None:
    """JSON data for the request field `field` (None: left unset), refusing what a double cannot
    carry exactly.

    `wire.fill` writes a NaN, ±Infinity or an int beyond a double's range as null, and rounds
    an int beyond 2^53: right for what the server stores, wrong for what a caller sends, which
    would then be silently changed. Such a value, or a dict key that is not a string, raises
    `errors.InvalidArgument` (reason INVALID_REQUEST, a violation naming its path, e.g.
    `input_data.items[3].price`), as the server answers a NaN sent by another client, and
    nothing is sent.
    """
    if obj is None:
        return None
    value = struct_pb2.Value()
    _fill_exact(value, obj, field)
    return value


def _fill_exact(value: struct_pb2.Value, obj: Any, path: str) -> None:
    # bool before int: bool is an int subclass.
    if obj is None or isinstance(obj, bool | str):
        wire.fill(value, obj)
    elif isinstance(obj, float):
        if not math.isfinite(obj):
            raise _invalid(path, "numbers must be finite (NaN and Infinity are not JSON)")
        value.number_value = obj
    elif isinstance(obj, int):
        if not -_MAX_EXACT_INT <= obj <= _MAX_EXACT_INT:
            raise _invalid(
                path, "integers beyond ±2^53 would be rounded (numbers are doubles): send a string"
            )
        value.number_value = obj
    elif isinstance(obj, Mapping):
        fields = value.struct_value.fields
        value.struct_value.SetInParent()  # an empty dict is still a struct
        for key, item in obj.items():
            if not isinstance(key, str):
                # str() would send it changed (1 as "1", True as "True"), and {1: .., "1": ..}
                # would lose one of the two: refused like any other value JSON cannot carry.
                raise _invalid(f"{path}.{key}", f"object keys must be strings, not {type(key).__name__}")
            _fill_exact(fields[key], item, f"{path}.{key}")
    elif isinstance(obj, list | tuple):
        items = value.list_value
        items.SetInParent()
        for i, item in enumerate(obj):
            _fill_exact(items.values.add(), item, f"{path}[{i}]")
    elif hasattr(obj, "model_dump"):  # a pydantic model given as data
        _fill_exact(value, obj.model_dump(mode="json"), path)
    else:
        raise TypeError(f"{path}: not JSON data: {type(obj).__name__}")


_MAX_DURATION = 315_576_000_000
"""The seconds a protobuf Duration can hold (10,000 years)."""


def request_duration(seconds: float | dt.timedelta | None, field: str) -> duration_pb2.Duration | None:
    """A Duration for the request field `field` (None: left unset). One that is not positive,
    a NaN, an infinity or more than a Duration holds raises `errors.InvalidArgument`, as
    `request_value` does and as the server answers it, and nothing is sent (a negative one was
    sent as an invalid Duration, its seconds and nanos of opposite signs)."""
    if seconds is None:
        return None
    value = seconds.total_seconds() if isinstance(seconds, dt.timedelta) else float(seconds)
    if not (math.isfinite(value) and 0 < value <= _MAX_DURATION):
        raise _invalid(field, f"a duration must be positive, finite and at most {_MAX_DURATION} seconds")
    return wire.duration(value)


def _invalid(path: str, problem: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(
        f"{path}: {problem}", reason="INVALID_REQUEST", violations=[errors.FieldViolation(path, problem)]
    )


def create_run_request(
    workflow_id: str, run_id: str | None, resource_id: str | None
) -> run_service_pb2.CreateRunRequest:
    """A CreateRun, with a run id of our own when none is given (time-ordered, as the server's):
    a retry after a lost reply then gets the run the first attempt reserved, not a second one."""
    return run_service_pb2.CreateRunRequest(
        workflow_id=workflow_id, run_id=run_id or own_run_id(), resource_id=resource_id or ""
    )


# Why a client makes run ids: every retried call carries a request id, a fresh random one when
# the caller gave none, and the server derives the id of a run a Start or ForkRun makes without
# one from it (so that a retry finds the same run). Those ids are random and scatter the runs'
# rows over the indexes (README, "Run ids"). A request id the caller chose may be sent again by
# another process, where only an id derived from it is the same: that case is left to the server.
def own_run_id() -> str:
    """A time-ordered run id (UUIDv7, as the server makes) for a run the caller named no id for."""
    return model.time_ordered_id()


def ensure_request_id(given: str | None) -> str:
    """The caller's idempotency key, or a fresh one: a retried call then returns the first outcome."""
    return given or str(uuid.uuid4())


def start_request(
    workflow_id: str,
    run_id: str,
    *,
    resource_id: str | None,
    input_data: Any,
    initial_state: Any,
    request_context: dict[str, Any] | None,
    request_id: str,
    wait: bool,
    run_timeout: float | dt.timedelta | None = None,
    include_state: bool = False,
) -> run_service_pb2.StartRequest:
    return run_service_pb2.StartRequest(
        workflow_id=workflow_id,
        run_id=run_id,
        input_data=request_value(input_data, "input_data"),
        initial_state=request_value(initial_state, "initial_state"),
        request_context=request_value(request_context, "request_context"),
        wait=wait,
        request_id=request_id,
        resource_id=resource_id or "",
        timeout=request_duration(run_timeout, "run_timeout"),
        include_state=include_state,
    )


def resume_request(
    workflow_id: str,
    run_id: str,
    *,
    resume_data: Any,
    step: StepRef | Sequence[StepRef] | None,
    label: str | None,
    for_each_index: int | None,
    request_context: dict[str, Any] | None,
    request_id: str,
    wait: bool,
    include_state: bool = False,
) -> run_service_pb2.ResumeRequest:
    return run_service_pb2.ResumeRequest(
        workflow_id=workflow_id,
        run_id=run_id,
        resume_data=request_value(resume_data, "resume_data"),
        step=step_path(step),
        label=label or "",
        for_each_index=for_each_index,
        request_context=request_value(request_context, "request_context"),
        wait=wait,
        request_id=request_id,
        include_state=include_state,
    )


RunView = Literal["full", "without_payloads", "summary"]
"""How much of a run a read returns (GetRun's `view`): everything; everything but the step
records' JSON (their statuses, errors and times stay); ids, status, error and times only."""

RUN_VIEWS: dict[str, run_service_pb2.RunView] = {
    "full": run_service_pb2.RUN_VIEW_FULL,
    "without_payloads": run_service_pb2.RUN_VIEW_WITHOUT_PAYLOADS,
    "summary": run_service_pb2.RUN_VIEW_SUMMARY,
}

VIEWS_LARGEST_FIRST: tuple[RunView, ...] = ("full", "without_payloads", "summary")
"""The views a read of the largest one that fits tries, in turn (`largest_view`)."""


def get_run_request(
    workflow_id: str, run_id: str, *, include_state: bool = False, view: RunView = "full"
) -> run_service_pb2.GetRunRequest:
    """A GetRun request; ValueError for a view that is none of `RunView`'s."""
    if view not in RUN_VIEWS:
        raise ValueError(f"view must be one of {', '.join(RUN_VIEWS)}, not {view!r}")
    return run_service_pb2.GetRunRequest(
        workflow_id=workflow_id, run_id=run_id, include_state=include_state, view=RUN_VIEWS[view]
    )


def list_runs_request(
    workflow_id: str,
    *,
    status: model.RunStatus | str | Iterable[model.RunStatus | str] | None,
    resource_id: str | None,
    from_time: float | dt.datetime | None,
    to_time: float | dt.datetime | None,
    page_size: int,
    page_token: str,
    full: bool = False,
    forked_from: str | None = None,
    version: str | None = None,
) -> run_service_pb2.ListRunsRequest:
    """A ListRuns request: summaries (no input, result or request context) unless `full`."""
    wanted = [status] if isinstance(status, str) else list(status or ())
    return run_service_pb2.ListRunsRequest(
        workflow_id=workflow_id,
        statuses=[_RUN_STATUS_TO[model.RunStatus(s)] for s in wanted],
        resource_id=resource_id or "",
        from_time=wire.timestamp(from_time),
        to_time=wire.timestamp(to_time),
        page_size=page_size,
        page_token=page_token,
        view=run_service_pb2.RUN_VIEW_FULL if full else run_service_pb2.RUN_VIEW_SUMMARY,
        forked_from_run_id=forked_from or "",
        definition_version=version or "",
    )


class RunRequests:
    """What both run handles (async and sync) share: the run's identity, the latest run
    seen, and building its Start, Resume, TimeTravel and ForkRun requests."""

    def __init__(self, workflow_id: str, run_id: str, resource_id: str | None) -> None:
        self.workflow_id = workflow_id
        self.run_id = run_id
        self.resource_id = resource_id
        self.last_run: model.Run | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.workflow_id!r}, {self.run_id!r})"

    def _keep(self, run: run_pb2.Run) -> model.Run:
        self.last_run = run_from_proto(run)
        if not self.run_id:  # a handle made without an id names the run its Start made
            self.run_id = self.last_run.run_id
        return self.last_run

    def _start_request(
        self,
        input_data: Any,
        initial_state: Any,
        request_context: dict[str, Any] | None,
        request_id: str | None,
        wait: bool,
        run_timeout: float | dt.timedelta | None = None,
        include_state: bool = False,
    ) -> run_service_pb2.StartRequest:
        if not self.run_id and request_id is None:
            self.run_id = own_run_id()
        return start_request(
            self.workflow_id,
            self.run_id,
            resource_id=self.resource_id,
            input_data=input_data,
            initial_state=initial_state,
            request_context=request_context,
            request_id=ensure_request_id(request_id),
            wait=wait,
            run_timeout=run_timeout,
            include_state=include_state,
        )

    def _resume_request(
        self,
        resume_data: Any,
        step: StepRef | Sequence[StepRef] | None,
        label: str | None,
        for_each_index: int | None,
        request_context: dict[str, Any] | None,
        request_id: str | None,
        wait: bool,
        include_state: bool = False,
    ) -> run_service_pb2.ResumeRequest:
        return resume_request(
            self.workflow_id,
            self.run_id,
            resume_data=resume_data,
            step=step,
            label=label,
            for_each_index=for_each_index,
            request_context=request_context,
            request_id=ensure_request_id(request_id),
            wait=wait,
            include_state=include_state,
        )

    def _time_travel_request(
        self,
        step: StepRef | Sequence[StepRef],
        input_data: Any,
        resume_data: Any,
        initial_state: Any,
        request_context: dict[str, Any] | None,
        request_id: str | None,
        wait: bool,
    ) -> run_service_pb2.TimeTravelRequest:
        return time_travel_request(
            self.workflow_id,
            self.run_id,
            step=step,
            input_data=input_data,
            initial_state=initial_state,
            request_context=request_context,
            request_id=ensure_request_id(request_id),
            wait=wait,
            resume_data=resume_data,
        )


def time_travel_request(
    workflow_id: str,
    run_id: str,
    *,
    step: StepRef | Sequence[StepRef],
    input_data: Any,
    initial_state: Any,
    request_context: dict[str, Any] | None,
    request_id: str,
    wait: bool,
    resume_data: Any = None,
) -> run_service_pb2.TimeTravelRequest:
    """A TimeTravel request; `input_data=None` leaves the step's recorded input, and
    `resume_data=None` runs the step as it first ran (not resumed)."""
    return run_service_pb2.TimeTravelRequest(
        workflow_id=workflow_id,
        run_id=run_id,
        step=step_path(step),
        input_data=request_value(input_data, "input_data"),
        initial_state=request_value(initial_state, "initial_state"),
        request_context=request_value(request_context, "request_context"),
        wait=wait,
        request_id=request_id,
        resume_data=request_value(resume_data, "resume_data"),
    )


def fork_run_request(
    workflow_id: str,
    run_id: str,
    *,
    new_run_id: str | None,
    step: StepRef | Sequence[StepRef],
    input_data: Any,
    initial_state: Any,
    request_context: dict[str, Any] | None,
    request_id: str | None,
    wait: bool,
    resume_data: Any = None,
) -> run_service_pb2.ForkRunRequest:
    """A ForkRun request; `input_data=None` leaves the step's recorded input. Without a
    `new_run_id` or a `request_id` of the caller's, the new run's id is made here (see
    `own_run_id`); with only a `request_id`, the server derives it from that."""
    return run_service_pb2.ForkRunRequest(
        workflow_id=workflow_id,
        run_id=run_id,
        new_run_id=new_run_id or ("" if request_id else own_run_id()),
        step=step_path(step),
        input_data=request_value(input_data, "input_data"),
        initial_state=request_value(initial_state, "initial_state"),
        request_context=request_value(request_context, "request_context"),
        wait=wait,
        request_id=ensure_request_id(request_id),
        resume_data=request_value(resume_data, "resume_data"),
    )
