"""OpenTelemetry traces of runs, made from committed events, and the choice of trace ids.

Every run has a W3C trace id. At Start it is `tracing_options.trace_id`, else the
trace of an incoming `traceparent` header, else a new random one; it is stored as the
run's `trace_id` (and put on its log lines) whether or not tracing is on.

With tracing on (`Tracing`), each execution of a run (its Start, each Resume, a
recovery after a restart; an execution left to the claim loops has two, the accepting
replica's and the driving one's) is a span `run <workflow>` in that trace, a child of
`parent_span_id` or of the `traceparent` span when given; each step is a span
`step <path>` under it, and the steps of a nested workflow are children of the nested
workflow's own step span. Spans are built from committed events with the times the
step records carry, so they describe what is durable and cost the engine nothing.
Spans go to the given span processor; without one they are made (trace ids still
flow) and not exported.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from runservice import limits, wire
from runservice.errors import FieldViolation, InvalidArgument
from runservice.model import Event, EventType, Json, RunStatus, StepPath, StepStatus
from runservice.server import otlp
from runservice.server.committed import RunInfo
from runservice.server.watched import off_the_loop
from runservice.v1 import run_service_pb2

logger = logging.getLogger(__name__)

FLUSH_WAIT = 2.0
"""Seconds a stop waits for the spans still queued to be exported (`Tracing.close`)."""

_HEX = re.compile(r"[0-9a-fA-F]+")
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_PENDING_LIMIT = 10_000
_ATTRIBUTE_TYPES = (str, bool, int, float)


@dataclass(frozen=True, slots=True)
class TraceRequest:
    """How a caller asked one execution to be traced (from TracingOptions and `traceparent`)."""

    trace_id: str | None = None
    """32 lowercase hex digits, or None: the run's own (a new one at Start)."""
    parent_span_id: str | None = None
    """16 lowercase hex digits: the execution's span is its child."""
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Json] | None = None
    request_context_keys: tuple[str, ...] = ()


def trace_request(
    options: run_service_pb2.TracingOptions | None,
    metadata: Iterable[tuple[str, str | bytes]] | None,
    *,
    field: str = "tracing_options",
) -> TraceRequest:
    """The trace request of a Start or Resume; InvalidArgument for ill-formed ids."""
    parent_trace, parent_span = _traceparent(metadata)
    if options is None:
        return TraceRequest(trace_id=parent_trace, parent_span_id=parent_span)
    violations: list[FieldViolation] = []
    trace_id = _hex_id(options.trace_id, 32, f"{field}.trace_id", violations)
    span_id = _hex_id(options.parent_span_id, 16, f"{field}.parent_span_id", violations)
    meta: Json = wire.read_value(options, "metadata")
    if meta is not None and not isinstance(meta, dict):
        violations.append(FieldViolation(f"{field}.metadata", "must be a JSON object"))
    elif (size := options.metadata.ByteSize()) > limits.TRACE_METADATA:
        violations.append(
            FieldViolation(f"{field}.metadata", f"must be at most {limits.TRACE_METADATA} bytes (got {size})")
        )
    elif (bad := wire.non_finite_path(meta, f"{field}.metadata")) is not None:
        violations.append(FieldViolation(bad, "numbers must be finite (NaN and Infinity are not JSON)"))
    else:
        try:
            limits.json_size(meta)  # JSON as anywhere else: no deeper than a reply carries
        except ValueError as exc:
            violations.append(FieldViolation(f"{field}.metadata", str(exc)))
    # Bounded because a traced server keeps them until the execution's span starts.
    _check_names(options.tags, f"{field}.tags", violations)
    _check_names(options.request_context_keys, f"{field}.request_context_keys", violations)
    if violations:
        raise InvalidArgument(
            "; ".join(f"{v.field}: {v.description}" for v in violations), violations=violations
        )
    if trace_id is None:
        trace_id = parent_trace
        span_id = span_id or parent_span
    elif span_id is None and trace_id == parent_trace:
        span_id = parent_span
    return TraceRequest(
        trace_id=trace_id,
        parent_span_id=span_id,
        tags=tuple(options.tags),
        metadata=meta or None,
        request_context_keys=tuple(options.request_context_keys),
    )


def _check_names(names: Sequence[str], field: str, violations: list[FieldViolation]) -> None:
    if len(names) > limits.TRACE_NAMES:
        violations.append(
            FieldViolation(field, f"must list at most {limits.TRACE_NAMES} entries (got {len(names)})")
        )
    elif any(len(name) > limits.TRACE_NAME for name in names):
        violations.append(FieldViolation(field, f"each entry must be at most {limits.TRACE_NAME} characters"))


def _hex_id(value: str, digits: int, field: str, violations: list[FieldViolation]) -> str | None:
    if not value:
        return None
    if len(value) > digits or not _HEX.fullmatch(value) or int(value, 16) == 0:
        violations.append(
            FieldViolation(field, f"must be 1 to {digits} hexadecimal characters, not all zero")
        )
        return None
    return value.lower().rjust(digits, "0")


def _traceparent(metadata: Iterable[tuple[str, str | bytes]] | None) -> tuple[str | None, str | None]:
    """(trace id, span id) of a valid W3C `traceparent` header, else (None, None)."""
    for key, value in metadata or ():
        if key != "traceparent" or not isinstance(value, str):
            continue
        match = _TRACEPARENT.fullmatch(value.strip())
        if match is None or match[1] == "ff":
            return None, None
        trace_id, span_id = match[2], match[3]
        if int(trace_id, 16) == 0 or int(span_id, 16) == 0:
            return None, None
        return trace_id, span_id
    return None, None


# -- spans -----------------------------------------------------------------------------------

_WANTED_TRACE_ID: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "runservice_trace", default=None
)


class _RunTraceIds(RandomIdGenerator):
    """Random ids, except that a root span takes the run's trace id when one is wanted."""

    def generate_trace_id(self) -> int:
        wanted = _WANTED_TRACE_ID.get()
        return wanted if wanted else super().generate_trace_id()


class _Execution:
    """The open spans of one execution of a run: the run's span and its steps' by path."""

    __slots__ = ("root", "steps")

    def __init__(self, root: Span) -> None:
        self.root = root
        self.steps: dict[StepPath, Span] = {}


class Tracing:
    """Spans of runs and steps for one server. `processor` receives them (None: not exported)."""

    def __init__(self, processor: SpanProcessor | None = None, *, service_name: str = "runservice") -> None:
        # Flushed by `close`, within a bound: an exit handler of its own would wait out a
        # collector that does not answer, after the stop, however long that takes.
        self.provider = TracerProvider(
            resource=otlp.resource(service_name), id_generator=_RunTraceIds(), shutdown_on_exit=False
        )
        if processor is not None:
            self.provider.add_span_processor(processor)
        self._tracer = self.provider.get_tracer("runservice")
        self._pending: OrderedDict[tuple[str, str], list[TraceRequest]] = OrderedDict()
        """Trace requests whose WORKFLOW_START is not seen yet: by ("run", run id) when the
        Start named its run, ("trace", trace id) when not (several runs may share a trace),
        and ("resume", run id)."""
        self._executions: dict[str, _Execution] = {}

    @classmethod
    def with_default_exporter(cls) -> Tracing:
        """Export as the standard OTEL_TRACES_EXPORTER and OTEL_EXPORTER_OTLP_* variables say
        (`otlp.span_exporters`); without an exporter, make spans without exporting them (trace ids
        still reach the runs and the logs)."""
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        tracing = cls()
        for exporter in otlp.span_exporters(os.environ):
            tracing.provider.add_span_processor(BatchSpanProcessor(exporter))
        return tracing

    def shutdown(self) -> None:
        """End the spans still open and flush the processors (as long as their exporters take)."""
        self._end_open_spans()
        self.provider.shutdown()

    async def close(self, wait: float = FLUSH_WAIT) -> None:
        """End the spans still open and flush the processors, waiting at most `wait` seconds.

        A collector that does not answer holds an exporter for its timeout at each batch and
        try (a stop took 30 s, past the deploy files' SIGKILL budget, with the event loop
        blocked so that a second signal did nothing: audit). The flush runs on a daemon thread
        of its own (`off_the_loop`): whatever it has not exported by then is dropped, and it
        holds up neither the store's close nor the process's exit."""
        self._end_open_spans()
        try:
            await asyncio.wait_for(off_the_loop(self.provider.shutdown, "span-flush"), wait)
        except TimeoutError:
            logger.warning(
                "spans not exported within %g s of the stop (does the collector answer?) are dropped", wait
            )

    def _end_open_spans(self) -> None:
        for execution in self._executions.values():
            for span in execution.steps.values():
                span.end()
            execution.root.end()
        self._executions.clear()

    # -- what callers asked for ----------------------------------------------------------------

    def expect_start(self, trace_id: str, run_id: str | None, request: TraceRequest) -> Callable[[], None]:
        """Remember how a Start is to be traced; returns the function that forgets it (refused)."""
        return self._remember(("run", run_id) if run_id else ("trace", trace_id), request)

    def expect_resume(self, run_id: str, request: TraceRequest) -> Callable[[], None]:
        """Remember how the next Resume of `run_id` is to be traced; returns its forget function."""
        # One resume of a run is accepted at a time: a request left by a repeated (idempotent) one goes.
        self._pending.pop(("resume", run_id), None)
        return self._remember(("resume", run_id), request)

    def _remember(self, key: tuple[str, str], request: TraceRequest) -> Callable[[], None]:
        self._pending.setdefault(key, []).append(request)
        self._pending.move_to_end(key)
        while len(self._pending) > _PENDING_LIMIT:  # requests whose run never started (refused late)
            self._pending.popitem(last=False)

        def forget() -> None:
            waiting = self._pending.get(key)
            if waiting is not None and request in waiting:
                waiting.remove(request)
                if not waiting:
                    del self._pending[key]

        return forget

    def _take(self, key: tuple[str, str]) -> TraceRequest | None:
        waiting = self._pending.get(key)
        if not waiting:
            return None
        request = waiting.pop(0)
        if not waiting:
            del self._pending[key]
        return request

    # -- committed events ----------------------------------------------------------------------

    def on_event(self, info: RunInfo, event: Event) -> None:
        kind = event.type
        if kind is EventType.TIME_TRAVEL:  # the WORKFLOW_START that follows opens the execution
            return
        execution = self._executions.get(info.run_id)
        if kind is EventType.WORKFLOW_START:
            if execution is not None:  # a START without the previous FINISH: close what was open
                self._finish(info.run_id, execution, event, None)
            self._open(info, event)
            return
        if execution is None:
            if kind is EventType.WORKFLOW_FINISH:
                return  # e.g. a suspended run canceled: no execution ran in this process
            execution = self._open(info, event, recovered=True)
        step = event.step
        if kind is EventType.STEP_START and step is not None:
            self._start_step(execution, step.path, step, event)
        elif kind in (EventType.STEP_RESULT, EventType.STEP_SUSPENDED) and step is not None:
            self._end_step(execution, step.path, step, event)
        elif kind is EventType.STEP_WAITING and step is not None:
            span = execution.steps.get(step.path) or self._start_step(execution, step.path, step, event)
            span.add_event("waiting", {"wake_at": step.wake_at or 0.0}, timestamp=_ns(event.time))
        elif kind is EventType.WORKFLOW_FINISH:
            self._finish(info.run_id, execution, event, event)

    def _open(self, info: RunInfo, event: Event, *, recovered: bool = False) -> _Execution:
        if recovered:  # first seen mid-way: the caller's request (parent, tags) is not stored
            request = TraceRequest()
            segment = info.execution if info.claimed else "recovery"
        elif info.execution == "start":
            segment = "start"
            request = (
                self._take(("run", info.run_id)) or self._take(("trace", info.trace_id)) or TraceRequest()
            )
        elif info.execution == "deadline":  # no call asked for it; a pending resume keeps its request
            request, segment = TraceRequest(), "deadline"
        else:  # a resume, time travel or fork: the servicer expected it as a resume of the run
            request, segment = self._take(("resume", info.run_id)) or TraceRequest(), info.execution
        trace_id = request.trace_id or info.trace_id or None
        attributes: dict[str, Any] = {
            "runservice.run_id": info.run_id,
            "runservice.workflow_id": info.workflow_id,
            "runservice.execution": segment,
        }
        if recovered and info.claimed:
            attributes["runservice.claimed"] = True
        run = info.run
        if run is not None and run.resource_id:
            attributes["runservice.resource_id"] = run.resource_id
        if request.tags:
            attributes["runservice.tags"] = list(request.tags)
        for key, value in (request.metadata or {}).items():
            attributes[f"runservice.metadata.{key}"] = _attribute(value)
        for key in request.request_context_keys:
            found = _lookup(info.request_context, key)
            if found is not None:
                attributes[f"runservice.request_context.{key}"] = _attribute(found)
        parent = None
        if trace_id is not None and request.parent_span_id is not None:
            parent = trace.set_span_in_context(
                NonRecordingSpan(
                    SpanContext(
                        int(trace_id, 16),
                        int(request.parent_span_id, 16),
                        is_remote=True,
                        trace_flags=TraceFlags(TraceFlags.SAMPLED),
                    )
                )
            )
        token = _WANTED_TRACE_ID.set(int(trace_id, 16) if trace_id and parent is None else None)
        try:
            root = self._tracer.start_span(
                f"run {info.workflow_id}",
                context=parent if parent is not None else trace.set_span_in_context(trace.INVALID_SPAN),
                kind=SpanKind.INTERNAL,
                attributes=attributes,
                start_time=_ns(event.time),
            )
        finally:
            _WANTED_TRACE_ID.reset(token)
        execution = self._executions[info.run_id] = _Execution(root)
        return execution

    def _start_step(self, execution: _Execution, path: StepPath, step: Any, event: Event) -> Span:
        old = execution.steps.pop(path, None)
        if old is not None:  # a retried or re-entered step: its previous span ends here
            old.end(_ns(event.time))
        parent = execution.root
        for depth in range(len(path) - 1, 0, -1):  # the nearest enclosing nested workflow
            enclosing = execution.steps.get(path[:depth])
            if enclosing is not None:
                parent = enclosing
                break
        begin = step.resumed_at or step.started_at or event.time
        span = self._tracer.start_span(
            f"step {'.'.join(path)}",
            context=trace.set_span_in_context(parent),
            attributes={"runservice.step_path": ".".join(path), "runservice.step_id": path[-1]},
            start_time=_ns(begin),
        )
        execution.steps[path] = span
        return span

    def _end_step(self, execution: _Execution, path: StepPath, step: Any, event: Event) -> None:
        span = execution.steps.pop(path, None)
        if span is None:  # a step recorded without a start event (bad input) or seen mid-way
            span = self._start_step(execution, path, step, event)
            execution.steps.pop(path, None)
        span.set_attribute("runservice.step_status", step.status.value)
        span.set_attribute("runservice.attempt", step.attempt)
        if step.iteration:
            span.set_attribute("runservice.iteration", step.iteration)
        if step.status is StepStatus.FAILED and step.error is not None:
            span.set_status(Status(StatusCode.ERROR, f"{step.error.name}: {step.error.message}"))
        end = step.ended_at or step.suspended_at or event.time
        span.end(_ns(end))

    def on_release(self, run_id: str, unowned: bool) -> None:
        """This process let the run go (`EventHub.released`): the spans it opened for the run
        end now, marked with why: `runservice.taken_over` (another replica drives it now) or
        `runservice.left_unowned` (committed with no owner: the span of the claim loop's drive,
        on whichever replica, follows). They were never ended, nor exported, until the process
        stopped (audit)."""
        execution = self._executions.pop(run_id, None)
        if execution is None:
            return
        for span in reversed(list(execution.steps.values())):  # innermost first
            span.end()
        execution.steps.clear()
        execution.root.set_attribute("runservice.left_unowned" if unowned else "runservice.taken_over", True)
        execution.root.end()

    def _finish(self, run_id: str, execution: _Execution, event: Event, finish: Event | None) -> None:
        for span in reversed(list(execution.steps.values())):  # innermost first
            span.end(_ns(event.time))
        execution.steps.clear()
        root = execution.root
        if finish is not None:
            root.set_attribute("runservice.run_status", finish.run_status.value)
            if finish.run_status is RunStatus.FAILED:
                error = finish.error
                root.set_status(Status(StatusCode.ERROR, f"{error.name}: {error.message}" if error else None))
        root.end(_ns(event.time))
        self._executions.pop(run_id, None)


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


def _attribute(value: Json) -> Any:
    """An OpenTelemetry attribute value: primitives as they are, anything else as JSON."""
    if isinstance(value, _ATTRIBUTE_TYPES):
        return value
    return orjson.dumps(value).decode()


def _lookup(data: Mapping[str, Json], key: str) -> Json:
    """`data[key]`, else the nested value at the dotted path `key` ("user.id"); None if absent."""
    if key in data:
        return data[key]
    current: Json = data
    for part in key.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


__all__ = ["TraceRequest", "Tracing", "trace_request"]
