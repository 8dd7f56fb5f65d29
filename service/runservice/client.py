"""Python client of RunService, shaped like Mastra's client-js Workflows API.

    async with Client("127.0.0.1:50051") as client:
        wf = client.get_workflow("city-weather")
        run = await wf.create_run()
        result = await run.start_async(input_data={"city": "Paris"})

Responses come back as the model dataclasses (`model.Run`, `model.Event`); every
`grpc.aio.AioRpcError` is raised as the matching `runservice.errors` exception, chosen by
the `ErrorInfo.reason` of the status details when known, else by status code.
`watch` and `watch_events` reconnect from the last sequence seen on any end without
`end_of_stream`, so nothing is lost or duplicated.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
import random
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import grpc
from google.protobuf import message
from google.rpc import error_details_pb2, status_pb2

from runservice import errors, model, wire
from runservice.model import Json
from runservice.v1 import run_pb2, run_service_pb2, run_service_pb2_grpc

if TYPE_CHECKING:
    from runservice.v1.run_service_pb2_grpc import RunServiceAsyncStub

logger = logging.getLogger(__name__)

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")

_DETAILS_KEY = "grpc-status-details-bin"
# Codes after which a Watch resumes from its cursor: the server drained, a proxy reset the
# stream, the connection aged out. Everything else is the caller's problem.
_RESUMABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
_CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
    ("grpc.max_send_message_length", 8 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
]


# -- proto -> model --------------------------------------------------------------------------

_RUN_STATUS = {run_pb2.RunStatus.Value(f"RUN_STATUS_{s.name}"): s for s in model.RunStatus}
_RUN_STATUS_TO = {s: cast(run_pb2.RunStatus, v) for v, s in _RUN_STATUS.items()}
_STEP_STATUS = {run_pb2.StepStatus.Value(f"STEP_STATUS_{s.name}"): s for s in model.StepStatus}
_EVENT_TYPE = {run_pb2.RunEventType.Value(f"RUN_EVENT_TYPE_{t.name}"): t for t in model.EventType}


def _run_status(value: int) -> model.RunStatus:
    # The contract says: a status this client does not know is "not terminal".
    return _RUN_STATUS.get(value, model.RunStatus.RUNNING)


def _step_status(value: int) -> model.StepStatus:
    return _STEP_STATUS.get(value, model.StepStatus.RUNNING)


def _error(msg: message.Message, name: str) -> model.RunError | None:
    if not msg.HasField(name):
        return None
    error: run_pb2.RunError = getattr(msg, name)
    return model.RunError(name=error.name, message=error.message, details=wire.read_value(error, "details"))


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
        trace_id=msg.trace_id,
        steps=tuple(step_from_proto(step, i + 1) for i, step in enumerate(msg.steps)),
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
    )


# -- errors ----------------------------------------------------------------------------------


def _error_classes() -> dict[str, type[errors.ServiceError]]:
    by_reason: dict[str, type[errors.ServiceError]] = {}
    pending: list[type[errors.ServiceError]] = [errors.ServiceError]
    while pending:  # parents first, so a subclass sharing its parent's reason wins
        cls = pending.pop(0)
        by_reason[cls.reason] = cls
        pending.extend(cls.__subclasses__())
    return by_reason


_BY_REASON = _error_classes()
_BY_CODE: dict[grpc.StatusCode, type[errors.ServiceError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: errors.InvalidArgument,
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.UNAUTHENTICATED: errors.Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
    grpc.StatusCode.UNIMPLEMENTED: errors.Unimplemented,
    grpc.StatusCode.INTERNAL: errors.Internal,
}


def error_from_rpc(exc: grpc.aio.AioRpcError) -> errors.ServiceError:
    """The service exception for a failed call: class by ErrorInfo reason, else by code."""
    code = exc.code()
    text = exc.details() or code.name
    reason: str | None = None
    metadata: dict[str, str] = {}
    violations: list[errors.FieldViolation] = []
    for key, raw in exc.trailing_metadata() or ():
        if key != _DETAILS_KEY or not isinstance(raw, bytes):
            continue
        status = status_pb2.Status.FromString(raw)
        text = status.message or text
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations.extend(errors.FieldViolation(v.field, v.description) for v in bad.field_violations)
    cls = _BY_REASON.get(reason or "") or _BY_CODE.get(code, errors.ServiceError)
    if reason is None:  # not from our server (transport, proxy): the code says what happened
        reason = code.name
    # Some classes have their own __init__ (WorkflowNotFound(workflow_id)...); bypass it.
    error = cls.__new__(cls)
    errors.ServiceError.__init__(error, text, reason=reason, metadata=metadata, violations=violations)
    return error


# -- the client ------------------------------------------------------------------------------


def _with_token(details: grpc.aio.ClientCallDetails, token: str) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    metadata.add("authorization", f"Bearer {token}")
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


class _BearerUnary(grpc.aio.UnaryUnaryClientInterceptor):
    """Adds `authorization: Bearer <token>` to unary calls (works over plaintext, unlike call credentials)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(_with_token(client_call_details, self._token), request)


class _BearerStream(grpc.aio.UnaryStreamClientInterceptor):
    """Adds `authorization: Bearer <token>` to server-streaming calls."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(_with_token(client_call_details, self._token), request)


class Client:
    """A connection to a RunService. Use `async with Client(target)` or call `close()`.

    `timeout` bounds unary calls that do not wait for a run (None: no deadline). `token` sends
    `authorization: Bearer <token>` on every call; `credentials` makes the channel TLS.
    """

    def __init__(
        self,
        target: str,
        *,
        timeout: float | None = 30.0,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, Any]] = (),
        token: str | None = None,
    ) -> None:
        self.target = target
        self._interceptors: list[grpc.aio.ClientInterceptor] = (
            [_BearerUnary(token), _BearerStream(token)] if token else []
        )
        self.timeout = timeout
        self._credentials = credentials
        self._options = [*_CHANNEL_OPTIONS, *options]
        self._channel: grpc.aio.Channel | None = None
        self._stub: RunServiceAsyncStub | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def stub(self) -> RunServiceAsyncStub:
        """The raw aio stub (the channel is created on first use, inside the running loop)."""
        if self._closed:
            raise errors.Unavailable("the client is closed", reason="CLIENT_CLOSED")
        if self._stub is None:
            if self._credentials is None:
                self._channel = grpc.aio.insecure_channel(
                    self.target, options=self._options, interceptors=self._interceptors
                )
            else:
                self._channel = grpc.aio.secure_channel(
                    self.target, self._credentials, options=self._options, interceptors=self._interceptors
                )
            self._stub = run_service_pb2_grpc.RunServiceStub(self._channel)
        return self._stub

    async def close(self) -> None:
        """Stop every watch this client started, then close the channel."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._channel is not None:
            await self._channel.close()

    async def call(
        self, method: grpc.aio.UnaryUnaryMultiCallable[_Req, _Resp], request: _Req, *, wait: bool = False
    ) -> _Resp:
        """One unary call, with service errors raised as `runservice.errors` exceptions."""
        try:
            return await method(request, timeout=None if wait else self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from exc

    async def list_workflows(self) -> list[WorkflowInfo]:
        """Every workflow the server runs, sorted by id."""
        response = await self.call(self.stub.ListWorkflows, run_service_pb2.ListWorkflowsRequest())
        return [workflow_from_proto(wf) for wf in response.workflows]

    def get_workflow(self, workflow_id: str) -> WorkflowHandle:
        """A handle on one workflow (no call is made yet)."""
        return WorkflowHandle(self, workflow_id)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def follow(
        self, run_id: str, after_sequence: int = 0, *, until_settled: bool = False
    ) -> AsyncIterator[model.Event]:
        """Events of a run after `after_sequence`, reconnecting from the last one seen.

        Ends at the server's end of stream (the run is terminal) or, with
        `until_settled`, after the first finish event (terminal or suspended).
        """
        last = after_sequence
        failures = 0
        while True:
            call = self.stub.Watch(run_service_pb2.WatchRequest(run_id=run_id, after_sequence=last))
            try:
                async for response in call:
                    failures = 0
                    for msg in response.events:
                        if msg.sequence <= last:
                            continue  # already delivered before a reconnect
                        last = msg.sequence
                        event = event_from_proto(msg)
                        if event is None:
                            continue
                        yield event
                        if until_settled and event.settles_run:
                            return
                    if response.end_of_stream:
                        return
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in _RESUMABLE or self._closed:
                    raise error_from_rpc(exc) from exc
                logger.info("watch of run %s ended with %s; resuming after %d", run_id, exc.code().name, last)
            finally:
                call.cancel()
            failures += 1
            await asyncio.sleep(min(5.0, 0.1 * 2**failures) * random.uniform(0.5, 1.0))


class WorkflowHandle:
    """One workflow of a server (Mastra's `client.getWorkflow(id)`)."""

    def __init__(self, client: Client, workflow_id: str) -> None:
        self.client = client
        self.workflow_id = workflow_id

    async def details(self) -> WorkflowInfo:
        """Steps, step graph and schemas."""
        request = run_service_pb2.GetWorkflowRequest(workflow_id=self.workflow_id)
        response = await self.client.call(self.client.stub.GetWorkflow, request)
        return workflow_from_proto(response.workflow)

    async def create_run(self, run_id: str | None = None, resource_id: str | None = None) -> RunHandle:
        """Reserve a run (or get the existing one with this id)."""
        request = run_service_pb2.CreateRunRequest(
            workflow_id=self.workflow_id, run_id=run_id or "", resource_id=resource_id or ""
        )
        response = await self.client.call(self.client.stub.CreateRun, request)
        handle = RunHandle(self.client, self.workflow_id, response.run.run_id, resource_id=resource_id)
        handle.last_run = run_from_proto(response.run)
        return handle

    async def run_execution_result(self, run_id: str, *, include_state: bool = False) -> model.Run:
        """The run with its status, result or error and every step record."""
        request = run_service_pb2.GetRunRequest(
            workflow_id=self.workflow_id, run_id=run_id, include_state=include_state
        )
        response = await self.client.call(self.client.stub.GetRun, request)
        return run_from_proto(response.run)

    async def run_by_id(self, run_id: str) -> model.Run:
        """The run (same as `run_execution_result`)."""
        return await self.run_execution_result(run_id)

    async def delete_run_by_id(self, run_id: str) -> None:
        """Delete a run that is not running, with its events."""
        request = run_service_pb2.DeleteRunRequest(workflow_id=self.workflow_id, run_id=run_id)
        await self.client.call(self.client.stub.DeleteRun, request)

    async def runs(
        self,
        *,
        status: model.RunStatus | str | Iterable[model.RunStatus | str] | None = None,
        resource_id: str | None = None,
        from_time: float | dt.datetime | None = None,
        to_time: float | dt.datetime | None = None,
        page_size: int = 0,
        page_token: str = "",
        full: bool = False,
    ) -> tuple[list[model.Run], str]:
        """Runs of this workflow, newest first, and the next page token ("" on the last page).

        Runs are summaries (no input, result or request context) unless `full` is true."""
        wanted = [status] if isinstance(status, str) else list(status or ())
        request = run_service_pb2.ListRunsRequest(
            workflow_id=self.workflow_id,
            statuses=[_RUN_STATUS_TO[model.RunStatus(s)] for s in wanted],
            resource_id=resource_id or "",
            from_time=wire.timestamp(from_time),
            to_time=wire.timestamp(to_time),
            page_size=page_size,
            page_token=page_token,
            view=run_service_pb2.RUN_VIEW_FULL if full else run_service_pb2.RUN_VIEW_SUMMARY,
        )
        response = await self.client.call(self.client.stub.ListRuns, request)
        return [run_from_proto(run) for run in response.runs], response.next_page_token


StepRef = str | Any
"""A step to resume: an id, a dotted path "a.b", a Step-like object with `.id`, or a list of those."""


def _step_path(step: StepRef | Sequence[StepRef] | None) -> list[str]:
    if step is None:
        return []
    parts: Sequence[Any] = step if isinstance(step, list | tuple) else [step]
    return [part if isinstance(part, str) else str(part.id) for part in parts]


class RunHandle:
    """One run (Mastra's `workflow.createRun()` result). `last_run` is the latest run seen."""

    def __init__(
        self, client: Client, workflow_id: str, run_id: str, *, resource_id: str | None = None
    ) -> None:
        self.client = client
        self.workflow_id = workflow_id
        self.run_id = run_id
        self.resource_id = resource_id
        self.last_run: model.Run | None = None

    def __repr__(self) -> str:
        return f"RunHandle({self.workflow_id!r}, {self.run_id!r})"

    def _start_request(
        self,
        input_data: Any,
        initial_state: Any,
        request_context: dict[str, Any] | None,
        request_id: str | None,
        wait: bool,
    ) -> run_service_pb2.StartRequest:
        return run_service_pb2.StartRequest(
            workflow_id=self.workflow_id,
            run_id=self.run_id,
            input_data=wire.optional_value(input_data),
            initial_state=wire.optional_value(initial_state),
            request_context=wire.optional_value(request_context),
            wait=wait,
            request_id=request_id or "",
            resource_id=self.resource_id or "",
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
    ) -> run_service_pb2.ResumeRequest:
        return run_service_pb2.ResumeRequest(
            workflow_id=self.workflow_id,
            run_id=self.run_id,
            resume_data=wire.optional_value(resume_data),
            step=_step_path(step),
            label=label or "",
            for_each_index=for_each_index,
            request_context=wire.optional_value(request_context),
            wait=wait,
            request_id=request_id or "",
        )

    def _keep(self, run: run_pb2.Run) -> model.Run:
        self.last_run = run_from_proto(run)
        return self.last_run

    async def start(
        self,
        input_data: Any = None,
        *,
        initial_state: Any = None,
        request_context: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> model.Run:
        """Start the run and return at once (Mastra `start`)."""
        request = self._start_request(input_data, initial_state, request_context, request_id, False)
        return self._keep((await self.client.call(self.client.stub.Start, request)).run)

    async def start_async(
        self,
        input_data: Any = None,
        *,
        initial_state: Any = None,
        request_context: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> model.Run:
        """Start the run and return once it is terminal or suspended (Mastra `startAsync`)."""
        request = self._start_request(input_data, initial_state, request_context, request_id, True)
        return self._keep((await self.client.call(self.client.stub.Start, request, wait=True)).run)

    async def resume(
        self,
        resume_data: Any = None,
        *,
        step: StepRef | Sequence[StepRef] | None = None,
        label: str | None = None,
        for_each_index: int | None = None,
        request_context: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> model.Run:
        """Resume a suspended step and return at once (Mastra `resume`)."""
        request = self._resume_request(
            resume_data, step, label, for_each_index, request_context, request_id, False
        )
        return self._keep((await self.client.call(self.client.stub.Resume, request)).run)

    async def resume_async(
        self,
        resume_data: Any = None,
        *,
        step: StepRef | Sequence[StepRef] | None = None,
        label: str | None = None,
        for_each_index: int | None = None,
        request_context: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> model.Run:
        """Resume and return once the run is terminal or suspended again (Mastra `resumeAsync`)."""
        request = self._resume_request(
            resume_data, step, label, for_each_index, request_context, request_id, True
        )
        return self._keep((await self.client.call(self.client.stub.Resume, request, wait=True)).run)

    async def cancel(self, *, request_id: str | None = None) -> model.Run:
        """Cancel the run; a finished run comes back unchanged."""
        request = run_service_pb2.CancelRequest(
            workflow_id=self.workflow_id, run_id=self.run_id, request_id=request_id or ""
        )
        return self._keep((await self.client.call(self.client.stub.Cancel, request)).run)

    async def restart(self, *, wait: bool = False) -> model.Run:
        """Re-drive a run that was running when its server died."""
        request = run_service_pb2.RestartRequest(workflow_id=self.workflow_id, run_id=self.run_id, wait=wait)
        return self._keep((await self.client.call(self.client.stub.Restart, request, wait=wait)).run)

    async def stream(
        self,
        input_data: Any = None,
        *,
        initial_state: Any = None,
        request_context: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> AsyncIterator[model.Event]:
        """Start the run and yield its events until it is terminal or suspended (`last_run` is then set)."""
        start = self._start_request(input_data, initial_state, request_context, request_id, False)
        async for event in self._stream(run_service_pb2.StreamRequest(start=start)):
            yield event

    async def resume_stream(
        self,
        resume_data: Any = None,
        *,
        step: StepRef | Sequence[StepRef] | None = None,
        label: str | None = None,
        for_each_index: int | None = None,
        request_context: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> AsyncIterator[model.Event]:
        """Resume the run and yield its events until it is terminal or suspended again."""
        resume = self._resume_request(
            resume_data, step, label, for_each_index, request_context, request_id, False
        )
        async for event in self._stream(run_service_pb2.StreamRequest(resume=resume)):
            yield event

    async def _stream(self, request: run_service_pb2.StreamRequest) -> AsyncIterator[model.Event]:
        last = 0
        settled = False
        call = self.client.stub.Stream(request)
        try:
            async for response in call:
                for msg in response.events:
                    last = max(last, msg.sequence)
                    event = event_from_proto(msg)
                    if event is not None:
                        settled = settled or event.settles_run
                        yield event
                if response.end_of_stream:
                    self._keep(response.run)
                    return
        except grpc.aio.AioRpcError as exc:
            # Before the first event we cannot tell whether the start happened: report it.
            if exc.code() not in _RESUMABLE or last == 0:
                raise error_from_rpc(exc) from exc
            logger.info(
                "stream of run %s ended with %s; following after %d", self.run_id, exc.code().name, last
            )
        finally:
            call.cancel()
        if last == 0:
            raise errors.Unavailable(f"the stream of run {self.run_id!r} ended before any event")
        # The stream broke after the run started: follow the rest of it with Watch.
        if not settled:
            async for event in self.client.follow(self.run_id, last, until_settled=True):
                yield event
        request_run = run_service_pb2.GetRunRequest(workflow_id=self.workflow_id, run_id=self.run_id)
        self._keep((await self.client.call(self.client.stub.GetRun, request_run)).run)

    def watch_events(self, after_sequence: int = 0) -> AsyncIterator[model.Event]:
        """Every event after `after_sequence` until the run is terminal, across suspend and resume."""
        return self.client.follow(self.run_id, after_sequence)

    def watch(
        self, callback: Callable[[model.Event], object], *, after_sequence: int = 0
    ) -> Callable[[], None]:
        """Call `callback(event)` (sync or async) for each event in a background task.

        Returns a function that stops watching; the client's `close()` stops it too.
        """

        async def run() -> None:
            try:
                async for event in self.watch_events(after_sequence):
                    try:
                        result = callback(event)
                        if inspect.isawaitable(result):
                            await result
                    except Exception:
                        logger.exception(
                            "watch callback of run %s failed on event %d", self.run_id, event.sequence
                        )
            except errors.ServiceError as exc:
                logger.warning("watch of run %s stopped: %s", self.run_id, exc)

        task = self.client._spawn(run())

        def unwatch() -> None:
            task.cancel()

        return unwatch


# -- health --------------------------------------------------------------------------------------

RUN_SERVICE_NAME = "runservice.v1.RunService"


async def check_health(
    target: str,
    *,
    service: str = RUN_SERVICE_NAME,
    deadline: float = 3.0,
    tls_ca: bytes | None = None,
) -> str:
    """The gRPC health status of `service` at `target` ("SERVING", "NOT_SERVING", ...), over TLS
    trusting the PEM `tls_ca` when given.

    Raises errors.Unavailable when the server cannot be reached within `deadline` seconds.
    """
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    channel = (
        grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(tls_ca))
        if tls_ca is not None
        else grpc.aio.insecure_channel(target)
    )
    async with channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=deadline
            )
        except grpc.aio.AioRpcError as exc:
            raise errors.Unavailable(
                f"health check of {target} failed: {exc.code().name}: {exc.details()}"
            ) from None
    name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return name
