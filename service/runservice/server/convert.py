"""Model <-> protobuf for the server: the only place server-side messages are built or read.

JSON data and times go through `runservice.wire`, which the client shares. Request readers
validate at the edge and raise `errors.InvalidArgument` listing one field violation per
bad field.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from typing import Literal, TypedDict, TypeVar, cast

from google.protobuf import message, struct_pb2, timestamp_pb2
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

from runservice import limits, model, wire
from runservice.engine.timetravel import RECORDED_INPUT
from runservice.errors import FieldViolation, InvalidArgument, PayloadTooLarge, ReplyTooLarge
from runservice.model import Json
from runservice.v1 import run_pb2, run_service_pb2
from runservice.workflow import (
    BranchNode,
    ForeachNode,
    LoopNode,
    Node,
    ParallelNode,
    Runnable,
    Schema,
    SleepNode,
    SleepUntilNode,
    Step,
    StepNode,
    Workflow,
)
from runservice.workflow.builder import describe_condition, sleep_seconds

_M = TypeVar("_M", bound=message.Message)

_MAX_DURATION = 315_576_000_000
"""google.protobuf.Duration's largest seconds (10,000 years)."""
_RUN_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

# -- model -> proto --------------------------------------------------------------------------------

# The proto enums are named after the model's: RUN_STATUS_<NAME>, STEP_STATUS_<NAME>...
_RUN_STATUS = {
    s: cast(run_pb2.RunStatus, run_pb2.RunStatus.Value(f"RUN_STATUS_{s.name}")) for s in model.RunStatus
}
_RUN_STATUS_BACK: dict[int, model.RunStatus] = {v: k for k, v in _RUN_STATUS.items()}
_STEP_STATUS = {
    s: cast(run_pb2.StepStatus, run_pb2.StepStatus.Value(f"STEP_STATUS_{s.name}")) for s in model.StepStatus
}
_EVENT_TYPE = {
    t: cast(run_pb2.RunEventType, run_pb2.RunEventType.Value(f"RUN_EVENT_TYPE_{t.name}"))
    for t in model.EventType
}
_CAUSE = {
    c: cast(run_pb2.ExecutionCause, run_pb2.ExecutionCause.Value(f"EXECUTION_CAUSE_{c.name}"))
    for c in model.Execution
}


def _set_error(target: run_pb2.RunError, error: model.RunError | None) -> None:
    if error is None:
        return
    target.name = error.name
    target.message = error.message
    wire.set_value(target.details, error.details)
    if error.cause is not None:
        _set_error(target.cause, error.cause)


def _fill_step(msg: run_pb2.StepRecord, record: model.StepRecord, *, payloads: bool = True) -> None:
    # A field is touched only when it has a value: reaching a sub-message field makes its
    # wrapper, which costs as much as filling a small one, and most of a record's are unset.
    msg.path.ids.extend(record.path)
    msg.status = _STEP_STATUS[record.status]
    if payloads:
        if record.payload is not None:
            wire.fill(msg.payload, record.payload)
        if record.output is not None:
            wire.fill(msg.output, record.output)
        if record.suspend_payload is not None:
            wire.fill(msg.suspend_payload, record.suspend_payload)
        if record.resume_payload is not None:
            wire.fill(msg.resume_payload, record.resume_payload)
        if record.suspend_output is not None:
            wire.fill(msg.suspend_output, record.suspend_output)
    if record.error is not None:
        _set_error(msg.error, record.error)
    if record.started_at is not None:
        wire.set_time(msg.started_at, record.started_at)
    if record.ended_at is not None:
        wire.set_time(msg.ended_at, record.ended_at)
    if record.suspended_at is not None:
        wire.set_time(msg.suspended_at, record.suspended_at)
    if record.resumed_at is not None:
        wire.set_time(msg.resumed_at, record.resumed_at)
    msg.attempt = record.attempt
    msg.iteration = record.iteration
    if record.resume_labels:
        msg.resume_labels.extend(record.resume_labels)
    for item in record.foreach_items:
        out = msg.foreach_items.add(index=item.index, status=_STEP_STATUS[item.status])
        if payloads:
            if item.output is not None:
                wire.fill(out.output, item.output)
            if item.suspend_payload is not None:
                wire.fill(out.suspend_payload, item.suspend_payload)
        if item.error is not None:
            _set_error(out.error, item.error)
    if record.wake_at is not None:
        wire.set_time(msg.wake_at, record.wake_at)
    msg.call_id = record.call_id


def _add_steps(
    out: RepeatedCompositeFieldContainer[run_pb2.StepRecord],
    steps: Iterable[model.StepRecord],
    *,
    payloads: bool = True,
) -> None:
    for record in steps:
        _fill_step(out.add(), record, payloads=payloads)


View = run_service_pb2.RunView
FULL = run_service_pb2.RUN_VIEW_FULL
WITHOUT_PAYLOADS = run_service_pb2.RUN_VIEW_WITHOUT_PAYLOADS
SUMMARY = run_service_pb2.RUN_VIEW_SUMMARY
_VIEWS = frozenset(run_service_pb2.RunView.values())


def run_to_proto(run: model.Run, *, include_state: bool = True, view: View = FULL) -> run_pb2.Run:
    """A run as a Run message in `view` (see RunView); `state` only when asked for (full views)."""
    msg = run_pb2.Run(
        run_id=run.run_id,
        workflow_id=run.workflow_id,
        resource_id=run.resource_id or "",
        status=_RUN_STATUS[run.status],
        last_sequence=run.last_sequence,
        trace_id=run.trace_id,
        definition_version=run.definition_version,
        definition_digest=run.definition_digest,
    )
    summary = view == SUMMARY
    # Sub-message fields are reached only when set (see `_fill_step`).
    if not summary:
        if run.input is not None:
            wire.fill(msg.input, run.input)
        if run.result is not None:
            wire.fill(msg.result, run.result)
        if run.request_context is not None:
            wire.fill(msg.request_context, run.request_context)
        _add_steps(msg.steps, run.steps, payloads=view == FULL)
        if include_state and run.state is not None:
            wire.fill(msg.state, run.state)
    if run.error is not None:
        _set_error(msg.error, run.error)
    for path in run.suspended:
        msg.suspended.add().ids.extend(path)
    for label, target in run.resume_labels.items():
        entry = msg.resume_labels[label]
        entry.path.ids.extend(target.path)
        if target.for_each_index is not None:
            entry.has_for_each_index = True
            entry.for_each_index = target.for_each_index
    wire.set_time(msg.create_time, run.created_at)
    wire.set_time(msg.update_time, run.updated_at)
    if run.started_at is not None:
        wire.set_time(msg.start_time, run.started_at)
    if run.ended_at is not None:
        wire.set_time(msg.end_time, run.ended_at)
    if run.wake_at is not None:
        wire.set_time(msg.wake_time, run.wake_at)
    if run.forked_from:
        msg.forked_from_run_id = run.forked_from
    if run.travel is not None:
        msg.forked_from_step.ids.extend(run.travel.fork_step if run.forked_from else ())
        msg.time_travel_count = run.travel.count
        msg.time_travel_step.ids.extend(run.travel.step)
    if run.deadline is not None:
        wire.set_time(msg.deadline, run.deadline)
    if run.schedule_id is not None:
        msg.schedule_id = run.schedule_id
        wire.set_time(msg.schedule_tick_time, run.schedule_tick)
    return msg


def _fill_event(msg: run_pb2.RunEvent, event: model.Event, *, payloads: bool = True) -> None:
    msg.sequence = event.sequence
    msg.run_id = event.run_id
    wire.set_time(msg.time, event.time)
    msg.type = _EVENT_TYPE[event.type]
    msg.run_status = _RUN_STATUS[event.run_status]
    if event.step is not None:
        msg.step_path.ids.extend(event.step.path)
        _fill_step(msg.step, event.step, payloads=payloads)
    if payloads and event.data is not None:
        wire.fill(msg.data, event.data)
    if event.error is not None:
        _set_error(msg.error, event.error)
    if event.cause is not None:
        msg.cause = _CAUSE[event.cause]
    if event.progress is not None:
        progress = event.progress
        msg.progress.completed_count = progress.completed_count
        msg.progress.total_count = progress.total_count
        msg.progress.current_index = progress.current_index
        msg.progress.iteration_status = _STEP_STATUS[progress.iteration_status]
        if payloads and progress.iteration_output is not None:
            wire.fill(msg.progress.iteration_output, progress.iteration_output)


def _add_events(
    out: RepeatedCompositeFieldContainer[run_pb2.RunEvent],
    events: Iterable[model.Event],
    *,
    payloads: bool = True,
) -> None:
    for event in events:
        _fill_event(out.add(), event, payloads=payloads)


# -- workflows ---------------------------------------------------------------------------------

_KIND = run_pb2.StepGraphNodeKind


def workflow_to_proto(
    workflow: Workflow, versions: Sequence[Workflow] = (), *, max_active_runs: int | None = None
) -> run_pb2.Workflow:
    """A workflow with every step (nested ones under dotted ids), its schemas and its graph;
    `versions` are all its served versions, oldest first (the last one is `workflow`);
    `max_active_runs`: the bound the server applies (None: none)."""
    msg = run_pb2.Workflow(
        id=workflow.id,
        description=workflow.description,
        version=workflow.version,
        digest=workflow.digest,
        max_active_runs=max_active_runs or 0,
    )
    for served in versions or (workflow,):
        msg.versions.add(version=served.version, digest=served.digest, newest=served is workflow)
    _set_schema(msg.input_schema, workflow.input_schema)
    _set_schema(msg.output_schema, workflow.output_schema)
    _set_schema(msg.state_schema, workflow.state_schema)
    wire.set_duration(msg.timeout, workflow.timeout)
    _add_step_infos(msg.steps, workflow, prefix="")
    _add_graph(msg.step_graph, workflow)
    return msg


def _set_schema(target: struct_pb2.Value, schema: Schema | None) -> None:
    if schema is not None:
        wire.fill(target, schema.json_schema())


def _add_step_infos(
    out: RepeatedCompositeFieldContainer[run_pb2.StepInfo], workflow: Workflow, prefix: str
) -> None:
    for runnable in workflow.runnables():
        step_id = prefix + runnable.id
        # A step without its own retries inherits the workflow's retry config.
        retries = runnable.retries if runnable.retries is not None else workflow.retry_config.attempts
        info = out.add(
            id=step_id,
            description=runnable.description,
            can_suspend=runnable.can_suspend,
            is_workflow=isinstance(runnable, Workflow),
            retries=retries,
        )
        _set_schema(info.input_schema, runnable.input_schema)
        _set_schema(info.output_schema, runnable.output_schema)
        _set_schema(info.resume_schema, runnable.resume_schema)
        _set_schema(info.suspend_schema, runnable.suspend_schema)
        wire.set_duration(info.timeout, runnable.timeout)
        if isinstance(runnable, Workflow):
            _add_step_infos(out, runnable, prefix=f"{step_id}.")


def _add_graph(out: RepeatedCompositeFieldContainer[run_pb2.StepGraphNode], workflow: Workflow) -> None:
    for node in workflow.nodes:
        _fill_node(out.add(), node)


def _fill_node(msg: run_pb2.StepGraphNode, node: Node) -> None:
    match node:
        case StepNode(step):
            _fill_step_node(msg, step)
        case ParallelNode(steps, allow_failure):
            msg.kind = _KIND.STEP_GRAPH_NODE_KIND_PARALLEL
            msg.allow_failure = allow_failure
            _add_children(msg, steps)
        case BranchNode(branches):
            msg.kind = _KIND.STEP_GRAPH_NODE_KIND_CONDITIONAL
            _add_children(msg, [step for _, step in branches])
            msg.conditions.extend(describe_condition(condition) for condition, _ in branches)
        case LoopNode(step, _, kind):
            msg.kind = _KIND.STEP_GRAPH_NODE_KIND_LOOP
            msg.loop_kind = run_pb2.LOOP_KIND_DOWHILE if kind == "dowhile" else run_pb2.LOOP_KIND_DOUNTIL
            _add_children(msg, [step])
        case ForeachNode(step, concurrency):
            msg.kind = _KIND.STEP_GRAPH_NODE_KIND_FOREACH
            msg.concurrency = concurrency
            _add_children(msg, [step])
        case SleepNode(node_id, duration):
            msg.kind = _KIND.STEP_GRAPH_NODE_KIND_SLEEP
            msg.id = node_id
            if not callable(duration):
                msg.duration_ms = round(sleep_seconds(duration) * 1000)
        case SleepUntilNode(node_id, until):
            msg.kind = _KIND.STEP_GRAPH_NODE_KIND_SLEEP_UNTIL
            msg.id = node_id
            if isinstance(until, dt.datetime):
                wire.set_time(msg.until, until.timestamp())


def _add_children(msg: run_pb2.StepGraphNode, steps: Sequence[Runnable]) -> None:
    for step in steps:
        _fill_step_node(msg.children.add(), step)


def _fill_step_node(msg: run_pb2.StepGraphNode, step: Runnable) -> None:
    msg.id = step.id
    msg.description = step.description
    if isinstance(step, Step) and step.map_config is not None:
        msg.kind = _KIND.STEP_GRAPH_NODE_KIND_MAP
        wire.set_value(msg.map_config, step.map_config)
        return
    msg.kind = _KIND.STEP_GRAPH_NODE_KIND_STEP
    msg.can_suspend = step.can_suspend
    if isinstance(step, Workflow):
        _add_graph(msg.workflow, step)


# -- requests -> engine arguments ------------------------------------------------------------


class Checks:
    """Collects field violations so one INVALID_ARGUMENT lists every bad field.

    `prefix` names the enclosing field (for the start, resume or time_travel inside a StreamRequest).
    """

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.violations: list[FieldViolation] = []

    def bad(self, field: str, description: str) -> None:
        self.violations.append(FieldViolation(field=self.prefix + field, description=description))

    def required(self, field: str, value: str, limit: int = limits.ID) -> str:
        if not value:
            self.bad(field, "is required")
        return self.bounded(field, value, limit)

    def bounded(self, field: str, value: str, limit: int = limits.ID) -> str:
        """A string field of at most `limit` characters (ids, labels, tokens), without NUL:
        PostgreSQL's text cannot hold it, so the same request must be refused on SQLite too."""
        if len(value) > limit:
            self.bad(field, f"must be at most {limit} characters (got {len(value)})")
        elif "\x00" in value:
            self.bad(field, "must not contain NUL characters")
        return value

    def run_id(self, field: str, value: str, *, required: bool) -> str | None:
        if not value:
            if required:
                self.bad(field, "is required")
            return None
        if not _RUN_ID.fullmatch(value):
            self.bad(field, "must be 1-128 characters of letters, digits, '.', '_', ':' or '-'")
        return value

    def view(self, field: str, value: int) -> None:
        if value not in _VIEWS:
            self.bad(field, f"unknown run view {value}")

    def non_negative(self, field: str, value: int) -> int:
        if value < 0:
            self.bad(field, "must not be negative")
        return value

    def json(self, msg: message.Message, field: str, limit: int) -> Json:
        """A JSON field: at most `limit` bytes (else PayloadTooLarge at once) and finite numbers."""
        if not msg.HasField(field):
            return None
        value: struct_pb2.Value = getattr(msg, field)
        size = value.ByteSize()
        if size > limit:
            raise PayloadTooLarge(self.prefix + field, size, limit)
        data = wire.from_value(value)
        bad = wire.non_finite_path(data, field)
        if bad is not None:
            self.bad(bad, "numbers must be finite (NaN and Infinity are not JSON)")
        try:
            limits.json_size(data)  # stored, it must fit in every reply that carries it
        except ValueError as exc:
            self.bad(field, str(exc))
        return data

    def json_object(self, msg: message.Message, field: str, limit: int) -> dict[str, Json] | None:
        value = self.json(msg, field, limit)
        if value is None or isinstance(value, dict):
            return value
        self.bad(field, "must be a JSON object")
        return None

    def time(self, msg: message.Message, field: str) -> float | None:
        """A Timestamp field within Timestamp's documented range, as POSIX seconds."""
        if not msg.HasField(field):
            return None
        ts: timestamp_pb2.Timestamp = getattr(msg, field)
        if not wire.MIN_TIME <= ts.seconds <= wire.MAX_TIME or not 0 <= ts.nanos < 1_000_000_000:
            self.bad(field, "must be a valid time between years 1 and 9999")
            return None
        return ts.seconds + ts.nanos / 1e9

    def step_path(self, field: str, parts: Sequence[str]) -> tuple[str, ...]:
        """A step path (`a.b` or ids): bounded in length and depth, no empty id."""
        step = tuple(parts)
        if len(step) > limits.STEP_PATH:
            self.bad(field, f"must have at most {limits.STEP_PATH} ids (got {len(step)})")
            return ()
        for i, part in enumerate(step):
            self.bounded(f"{field}[{i}]", part, limits.ID * limits.STEP_PATH)
        if len(step) == 1 and "." in step[0]:
            step = tuple(step[0].split("."))
            if len(step) > limits.STEP_PATH:
                self.bad(field, f"must have at most {limits.STEP_PATH} ids (got {len(step)})")
                return ()
        if any(not part for part in step):
            self.bad(field, "step ids must not be empty")
        elif any(len(part) > limits.ID for part in step):
            self.bad(field, f"each step id must be at most {limits.ID} characters")
        return step

    def done(self) -> None:
        if self.violations:
            listed = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
            raise InvalidArgument(f"invalid request: {listed}", violations=self.violations)


def _optional(value: str) -> str | None:
    return value or None


def workflow_id(request: run_service_pb2.GetWorkflowRequest) -> str:
    """The required workflow id of GetWorkflow."""
    checks = Checks()
    checks.required("workflow_id", request.workflow_id)
    checks.done()
    return request.workflow_id


def _workflow_ref(checks: Checks, value: str) -> str | None:
    return _optional(checks.bounded("workflow_id", value))


class RunRef(TypedDict):
    """A required run id and an optional workflow id."""

    run_id: str
    workflow_id: str | None


def run_ref(request: run_service_pb2.GetRunRequest) -> RunRef:
    """The run named by GetRun."""
    checks = Checks()
    checks.run_id("run_id", request.run_id, required=True)
    workflow = _workflow_ref(checks, request.workflow_id)
    checks.view("view", request.view)
    checks.done()
    return RunRef(run_id=request.run_id, workflow_id=workflow)


class RunChange(RunRef):
    """A run named by a call that changes it, with the call's idempotency key."""

    request_id: str | None


def run_change(request: run_service_pb2.DeleteRunRequest | run_service_pb2.RestartRequest) -> RunChange:
    """The run named by DeleteRun or Restart, and the request's id."""
    checks = Checks()
    checks.run_id("run_id", request.run_id, required=True)
    workflow = _workflow_ref(checks, request.workflow_id)
    checks.bounded("request_id", request.request_id)
    checks.done()
    return RunChange(run_id=request.run_id, workflow_id=workflow, request_id=_optional(request.request_id))


class CreateArgs(TypedDict):
    workflow_id: str
    run_id: str | None
    resource_id: str | None


def create_args(request: run_service_pb2.CreateRunRequest) -> CreateArgs:
    checks = Checks()
    checks.required("workflow_id", request.workflow_id)
    run_id = checks.run_id("run_id", request.run_id, required=False)
    checks.bounded("resource_id", request.resource_id, limits.RESOURCE_ID)
    checks.done()
    return CreateArgs(
        workflow_id=request.workflow_id, run_id=run_id, resource_id=_optional(request.resource_id)
    )


class StartArgs(TypedDict):
    workflow_id: str
    run_id: str | None
    input_data: Json
    initial_state: Json
    request_context: dict[str, Json] | None
    resource_id: str | None
    request_id: str | None
    run_timeout: float | None


def start_args(request: run_service_pb2.StartRequest, prefix: str = "") -> StartArgs:
    """Engine arguments of a Start (`wait` is read by the caller)."""
    checks = Checks(prefix)
    checks.required("workflow_id", request.workflow_id)
    run_id = checks.run_id("run_id", request.run_id, required=False)
    checks.bounded("resource_id", request.resource_id, limits.RESOURCE_ID)
    checks.bounded("request_id", request.request_id)
    input_data = checks.json(request, "input_data", limits.INPUT)
    initial_state = checks.json(request, "initial_state", limits.INITIAL_STATE)
    context = checks.json_object(request, "request_context", limits.REQUEST_CONTEXT)
    timeout = wire.read_duration(request, "timeout")
    if timeout is not None and not (
        timeout > 0
        and 0 <= request.timeout.nanos < 1_000_000_000
        and request.timeout.seconds <= _MAX_DURATION
    ):
        checks.bad("timeout", "must be a positive duration of at most 10,000 years")
    checks.done()
    return StartArgs(
        workflow_id=request.workflow_id,
        run_id=run_id,
        input_data=input_data,
        initial_state=initial_state,
        request_context=context,
        resource_id=_optional(request.resource_id),
        request_id=_optional(request.request_id),
        run_timeout=timeout,
    )


class ResumeArgs(TypedDict):
    run_id: str
    workflow_id: str | None
    step: tuple[str, ...]
    label: str | None
    for_each_index: int | None
    resume_data: Json
    request_context: dict[str, Json] | None
    request_id: str | None


def resume_args(request: run_service_pb2.ResumeRequest, prefix: str = "") -> ResumeArgs:
    """Engine arguments of a Resume; a single dotted step id becomes a path."""
    checks = Checks(prefix)
    checks.run_id("run_id", request.run_id, required=True)
    workflow = _workflow_ref(checks, request.workflow_id)
    step = checks.step_path("step", request.step)
    checks.bounded("label", request.label)
    checks.bounded("request_id", request.request_id)
    index = None
    if request.HasField("for_each_index"):
        index = checks.non_negative("for_each_index", request.for_each_index)
    resume_data = checks.json(request, "resume_data", limits.RESUME_DATA)
    context = checks.json_object(request, "request_context", limits.REQUEST_CONTEXT)
    checks.done()
    return ResumeArgs(
        run_id=request.run_id,
        workflow_id=workflow,
        step=step,
        label=_optional(request.label),
        for_each_index=index,
        resume_data=resume_data,
        request_context=context,
        request_id=_optional(request.request_id),
    )


class TimeTravelArgs(TypedDict):
    run_id: str
    workflow_id: str | None
    step: tuple[str, ...]
    input_data: Json
    initial_state: Json
    request_context: dict[str, Json] | None
    request_id: str | None
    resume_data: Json


def time_travel_args(
    request: run_service_pb2.TimeTravelRequest | run_service_pb2.ForkRunRequest, prefix: str = ""
) -> TimeTravelArgs:
    """Engine arguments of a TimeTravel or ForkRun (`wait`, `new_run_id` and tracing are
    read by the caller); an unset input_data is the step's recorded input."""
    checks = Checks(prefix)
    checks.run_id("run_id", request.run_id, required=True)
    workflow = _workflow_ref(checks, request.workflow_id)
    step = checks.step_path("step", request.step)
    if not request.step:
        checks.bad("step", "is required: the step to re-execute from")
    checks.bounded("request_id", request.request_id)
    input_data = checks.json(request, "input_data", limits.INPUT)
    if not request.HasField("input_data"):
        input_data = RECORDED_INPUT
    initial_state = checks.json(request, "initial_state", limits.INITIAL_STATE)
    context = checks.json_object(request, "request_context", limits.REQUEST_CONTEXT)
    resume_data = checks.json(request, "resume_data", limits.RESUME_DATA)
    checks.done()
    return TimeTravelArgs(
        run_id=request.run_id,
        workflow_id=workflow,
        step=step,
        input_data=input_data,
        initial_state=initial_state,
        request_context=context,
        request_id=_optional(request.request_id),
        resume_data=resume_data,
    )


def new_run_id(request: run_service_pb2.ForkRunRequest) -> str | None:
    """ForkRun's optional new run id (checked like any run id)."""
    checks = Checks()
    value = checks.run_id("new_run_id", request.new_run_id, required=False)
    checks.done()
    return value


def time_travel_response(run: model.Run, *, limit: int) -> run_service_pb2.TimeTravelResponse:
    return run_service_pb2.TimeTravelResponse(run=run_reply(run, limit=limit))


def fork_run_response(run: model.Run, *, limit: int) -> run_service_pb2.ForkRunResponse:
    return run_service_pb2.ForkRunResponse(run=run_reply(run, limit=limit))


class CancelArgs(TypedDict):
    run_id: str
    workflow_id: str | None
    request_id: str | None


def cancel_args(request: run_service_pb2.CancelRequest) -> CancelArgs:
    checks = Checks()
    checks.run_id("run_id", request.run_id, required=True)
    workflow = _workflow_ref(checks, request.workflow_id)
    checks.bounded("request_id", request.request_id)
    checks.done()
    return CancelArgs(
        run_id=request.run_id,
        workflow_id=workflow,
        request_id=_optional(request.request_id),
    )


class ListArgs(TypedDict):
    workflow_id: str | None
    statuses: tuple[model.RunStatus, ...]
    resource_id: str | None
    from_time: float | None
    to_time: float | None
    page_size: int
    page_token: str
    payloads: bool
    forked_from: str | None
    definition_version: str | None


def list_args(request: run_service_pb2.ListRunsRequest) -> ListArgs:
    checks = Checks()
    checks.non_negative("page_size", request.page_size)
    checks.view("view", request.view)
    workflow = _workflow_ref(checks, request.workflow_id)
    checks.bounded("resource_id", request.resource_id, limits.RESOURCE_ID)
    checks.bounded("page_token", request.page_token, limits.PAGE_TOKEN)
    forked_from = checks.run_id("forked_from_run_id", request.forked_from_run_id, required=False)
    checks.bounded("definition_version", request.definition_version)
    if request.definition_version and not request.workflow_id:
        checks.bad("definition_version", "filtering by version needs a workflow_id")
    from_time = checks.time(request, "from_time")
    to_time = checks.time(request, "to_time")
    if len(request.statuses) > limits.STATUSES:
        checks.bad("statuses", f"must list at most {limits.STATUSES} statuses")
    statuses: list[model.RunStatus] = []
    for i, status in enumerate(request.statuses[: limits.STATUSES]):
        known = _RUN_STATUS_BACK.get(status)
        if known is None:
            checks.bad(f"statuses[{i}]", f"unknown run status {status}")
        else:
            statuses.append(known)
    checks.done()
    return ListArgs(
        workflow_id=workflow,
        statuses=tuple(statuses),
        resource_id=_optional(request.resource_id),
        from_time=from_time,
        to_time=to_time,
        page_size=request.page_size,
        page_token=request.page_token,
        payloads=list_view(request.view) != SUMMARY,
        forked_from=forked_from,
        definition_version=_optional(request.definition_version),
    )


class WatchArgs(TypedDict):
    run_id: str
    after_sequence: int
    include_run: bool
    include_workflow_state: bool


def watch_args(request: run_service_pb2.WatchRequest) -> WatchArgs:
    checks = Checks()
    checks.run_id("run_id", request.run_id, required=True)
    checks.non_negative("after_sequence", request.after_sequence)
    checks.done()
    return WatchArgs(
        run_id=request.run_id,
        after_sequence=request.after_sequence,
        include_run=request.include_run,
        include_workflow_state=request.include_workflow_state,
    )


StreamAction = (
    tuple[Literal["start"], StartArgs]
    | tuple[Literal["resume"], ResumeArgs]
    | tuple[Literal["time_travel"], TimeTravelArgs]
)


def stream_action(request: run_service_pb2.StreamRequest) -> StreamAction:
    """What a Stream asks for: ("start", args), ("resume", args) or ("time_travel", args)."""
    action = request.WhichOneof("action")
    if action == "start":
        return "start", start_args(request.start, prefix="start.")
    if action == "resume":
        return "resume", resume_args(request.resume, prefix="resume.")
    if action == "time_travel":
        return "time_travel", time_travel_args(request.time_travel, prefix="time_travel.")
    checks = Checks()
    checks.bad("action", "set start, resume or time_travel")
    checks.done()
    raise AssertionError("unreachable")


# -- responses ---------------------------------------------------------------------------------


def list_workflows_response(workflows: Iterable[run_pb2.Workflow]) -> run_service_pb2.ListWorkflowsResponse:
    return run_service_pb2.ListWorkflowsResponse(workflows=workflows)


def get_workflow_response(workflow: run_pb2.Workflow) -> run_service_pb2.GetWorkflowResponse:
    return run_service_pb2.GetWorkflowResponse(workflow=workflow)


REPLY_ROOM = 4 * limits.KIB
"""Room left under the send limit for a reply's own fields around the run or events."""


def reply_limit(max_message_size: int) -> int:
    """The largest reply built for a server whose send limit is `max_message_size`."""
    return max_message_size - REPLY_ROOM


def _checked(reply: _M, what: str, limit: int) -> _M:
    """`reply`, or ReplyTooLarge when it could not be sent."""
    size = reply.ByteSize()
    if size > limit:
        raise ReplyTooLarge(what, size, limit)
    return reply


def run_reply(run: model.Run, *, limit: int, include_state: bool = True) -> run_pb2.Run:
    """The run for the reply of a change (Start, Resume...): the change is done, so the reply
    must not fail; a run too large in full is sent without step payloads, then as a summary."""
    msg = run_to_proto(run, include_state=include_state)
    if msg.ByteSize() <= limit:
        return msg
    msg = run_to_proto(run, include_state=include_state, view=WITHOUT_PAYLOADS)
    if msg.ByteSize() <= limit:
        return msg
    return run_to_proto(run, view=SUMMARY)


def create_run_response(run: model.Run, created: bool, *, limit: int) -> run_service_pb2.CreateRunResponse:
    return run_service_pb2.CreateRunResponse(run=run_reply(run, limit=limit), created=created)


def start_response(
    run: model.Run, *, limit: int, include_state: bool = False
) -> run_service_pb2.StartResponse:
    """`state` only when the request's `include_state` asked for it."""
    return run_service_pb2.StartResponse(run=run_reply(run, limit=limit, include_state=include_state))


def resume_response(
    run: model.Run, *, limit: int, include_state: bool = False
) -> run_service_pb2.ResumeResponse:
    """`state` only when the request's `include_state` asked for it."""
    return run_service_pb2.ResumeResponse(run=run_reply(run, limit=limit, include_state=include_state))


def cancel_response(run: model.Run, *, limit: int) -> run_service_pb2.CancelResponse:
    return run_service_pb2.CancelResponse(run=run_reply(run, limit=limit))


def restart_response(run: model.Run, *, limit: int) -> run_service_pb2.RestartResponse:
    return run_service_pb2.RestartResponse(run=run_reply(run, limit=limit))


def get_run_response(
    run: model.Run, *, limit: int, include_state: bool, view: View = run_service_pb2.RUN_VIEW_UNSPECIFIED
) -> run_service_pb2.GetRunResponse:
    """GetRun's reply in `view` (unspecified: full); ReplyTooLarge when it cannot be sent."""
    shown = FULL if view == run_service_pb2.RUN_VIEW_UNSPECIFIED else view
    reply = run_service_pb2.GetRunResponse(run=run_to_proto(run, include_state=include_state, view=shown))
    return _checked(reply, "GetRun", limit)


def list_view(view: View) -> View:
    """The view of a ListRuns (unspecified: summary)."""
    return SUMMARY if view == run_service_pb2.RUN_VIEW_UNSPECIFIED else view


def list_runs_response(
    runs: Iterable[model.Run], next_token: str, view: View = SUMMARY, *, limit: int
) -> run_service_pb2.ListRunsResponse:
    """ListRuns' reply; ReplyTooLarge when it cannot be sent (ask a smaller view or page)."""
    # Listings never carry the run state or step records: the store does not load them.
    reply = run_service_pb2.ListRunsResponse(
        runs=[run_to_proto(run, include_state=False, view=view) for run in runs], next_page_token=next_token
    )
    return _checked(reply, "ListRuns", limit)


def delete_run_response() -> run_service_pb2.DeleteRunResponse:
    return run_service_pb2.DeleteRunResponse()


def stream_events(
    run_id: str, events: Sequence[model.Event], *, payloads: bool = True
) -> run_service_pb2.StreamResponse:
    """A Stream message with a batch of events (a heartbeat when `events` is empty)."""
    msg = run_service_pb2.StreamResponse(run_id=run_id)
    _add_events(msg.events, events, payloads=payloads)
    return msg


def stream_replies(
    run_id: str, events: Sequence[model.Event], *, limit: int
) -> list[run_service_pb2.StreamResponse]:
    """A batch of events as Stream messages that can be sent: usually one; a batch over the
    send limit is split, and a lone event still over it goes without its JSON data."""
    msg = stream_events(run_id, events)
    if msg.ByteSize() <= limit:
        return [msg]
    if len(events) > 1:
        half = len(events) // 2
        return stream_replies(run_id, events[:half], limit=limit) + stream_replies(
            run_id, events[half:], limit=limit
        )
    return [_checked(stream_events(run_id, events, payloads=False), "Stream", limit)]


def stream_end(run: model.Run, *, limit: int) -> run_service_pb2.StreamResponse:
    return run_service_pb2.StreamResponse(
        run_id=run.run_id, end_of_stream=True, run=run_reply(run, limit=limit)
    )


def watch_run(run: model.Run, watermark: int, *, limit: int) -> run_service_pb2.WatchResponse:
    """The first Watch message when the run was asked for."""
    return run_service_pb2.WatchResponse(run=run_reply(run, limit=limit), watermark_sequence=watermark)


def watch_events(
    events: Sequence[model.Event],
    states: Sequence[model.WorkflowState],
    watermark: int,
    *,
    payloads: bool = True,
) -> run_service_pb2.WatchResponse:
    """A Watch message with events (and their workflow states); a heartbeat when empty."""
    msg = run_service_pb2.WatchResponse(watermark_sequence=watermark)
    _add_events(msg.events, events, payloads=payloads)
    for state in states:
        out = msg.workflow_states.add(status=_RUN_STATUS[state.status])
        _add_steps(out.steps, state.steps, payloads=payloads)
        if payloads:  # a result may be as large as a step's output
            wire.set_value(out.result, state.result)
        _set_error(out.error, state.error)
    return msg


def watch_replies(
    events: Sequence[model.Event], states: Sequence[model.WorkflowState], watermark: int, *, limit: int
) -> list[run_service_pb2.WatchResponse]:
    """A batch of events (and states) as Watch messages that can be sent: usually one; a
    batch over the send limit is split, and a lone event still over it goes without the JSON
    data of its step records and states. Every part has `watermark`: the highest sequence
    recorded for the run, which a stream never tells lower than before (its first part told
    its own last event, below what the stream had told: audit)."""
    msg = watch_events(events, states, watermark)
    if msg.ByteSize() <= limit:
        return [msg]
    if len(events) > 1:
        half = len(events) // 2
        first = watch_replies(events[:half], states[:half], watermark, limit=limit)
        return first + watch_replies(events[half:], states[half:], watermark, limit=limit)
    return [_checked(watch_events(events, states, watermark, payloads=False), "Watch", limit)]


def watch_end(watermark: int) -> run_service_pb2.WatchResponse:
    return run_service_pb2.WatchResponse(end_of_stream=True, watermark_sequence=watermark)
