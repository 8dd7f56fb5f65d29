"""Hostile input through the real server: one table row per bad field of every RPC.

Each row sends raw bytes (so malformed messages can be sent too) and asserts the status
code, the ErrorInfo reason (and the field violation where there is one), that the server
still answers afterwards, and that no stored run changed: GetRun of every run and the full
ListRuns are byte-for-byte the same before and after.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from conftest import Served
from google.protobuf import duration_pb2, message, struct_pb2
from google.rpc import error_details_pb2, status_pb2

from runservice import errors, limits
from runservice.client import Client
from runservice.model import EventDraft, EventType, Run, RunStatus, StepRecord, StepStatus
from runservice.storage import RunWrite
from runservice.v1 import run_pb2, run_service_pb2, schedule_service_pb2

pytestmark = pytest.mark.timeout(60)

PREFIX = "/runservice.v1.RunService/"
STREAMING = {"Stream", "Watch"}
MB = "x" * (1024 * 1024)
NAN = float("nan")
INF = float("inf")
FULL = run_service_pb2.RUN_VIEW_FULL


@dataclass
class Ids:
    """Runs stored before each row: a finished one and a suspended one, and a page token."""

    done: str
    suspended: str
    token: str


Build = Callable[[Ids], bytes]


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    build: Build
    code: grpc.StatusCode
    reason: str
    field: str | None = None
    """The field violation expected (None: do not check violations)."""


def msg(factory: Callable[[Ids], message.Message]) -> Build:
    return lambda ids: factory(ids).SerializeToString()


def value(obj: Any) -> struct_pb2.Value:
    """A Value that may hold NaN/Infinity (which the JSON helpers refuse to build on purpose)."""
    out = struct_pb2.Value()
    if isinstance(obj, dict):
        out.struct_value.SetInParent()
        for key, item in obj.items():
            out.struct_value.fields[key].CopyFrom(value(item))
    elif isinstance(obj, list):
        out.list_value.SetInParent()
        for item in obj:
            out.list_value.values.add().CopyFrom(value(item))
    elif isinstance(obj, float | int) and not isinstance(obj, bool):
        out.number_value = obj
    elif isinstance(obj, str):
        out.string_value = obj
    else:
        out.null_value = struct_pb2.NULL_VALUE
    return out


def nested(depth: int) -> struct_pb2.Value:
    inner = struct_pb2.Value(string_value="deep")
    for _ in range(depth):
        outer = struct_pb2.Value()
        outer.list_value.values.add().CopyFrom(inner)
        inner = outer
    return inner


def deep_json(depth: int, leaf: Any = None) -> Any:
    """A JSON value of `depth` objects within each other (or of lists, with `leaf` a list)."""
    made: Any = 1
    for _ in range(depth):
        made = [made] if isinstance(leaf, list) else {"k": made}
    return made


def token_at(created_at: str) -> str:
    """A page token whose position is `created_at`, written as JSON as it stands."""
    return base64.urlsafe_b64encode(f'[{created_at},"x","digest"]'.encode()).decode()


def forged(token: str, created_at: str, run_id: str) -> str:
    """`token` (a genuine one: its digest holds) with its position written as JSON as given."""
    digest = json.loads(base64.urlsafe_b64decode(token))[2]
    return base64.urlsafe_b64encode(f'[{created_at},{run_id},"{digest}"]'.encode()).decode()


def start(**fields: Any) -> Build:
    def build(ids: Ids) -> bytes:
        request = run_service_pb2.StartRequest(workflow_id="echo", input_data=value({"count": 1}))
        for name, item in fields.items():
            if isinstance(item, message.Message):
                getattr(request, name).CopyFrom(item)
            else:
                setattr(request, name, item)
        return request.SerializeToString()

    return build


def resume(**fields: Any) -> Build:
    def build(ids: Ids) -> bytes:
        request = run_service_pb2.ResumeRequest(run_id=ids.suspended, resume_data=value({"approved": True}))
        for name, item in fields.items():
            if isinstance(item, message.Message):
                getattr(request, name).CopyFrom(item)
            elif name == "step":
                request.step.extend(item)
            else:
                setattr(request, name, item)
        return request.SerializeToString()

    return build


def bad_utf8(build: Build, good: bytes, bad: bytes) -> Build:
    """`build`'s bytes with the UTF-8 text `good` replaced by invalid bytes of the same length."""

    def patched(ids: Ids) -> bytes:
        raw = build(ids)
        assert good in raw
        return raw.replace(good, bad)

    return patched


GARBAGE = b"\xff\xff\xff\xff\x0f not a protobuf message"
INVALID = grpc.StatusCode.INVALID_ARGUMENT
REQ = "INVALID_REQUEST"
TOO_LARGE = "PAYLOAD_TOO_LARGE"

ROWS: list[Row] = [
    # -- messages that do not decode, for every RPC -----------------------------------------
    *(
        Row(f"{method}-garbage", method, lambda ids: GARBAGE, INVALID, REQ)
        for method in (
            "ListWorkflows",
            "GetWorkflow",
            "CreateRun",
            "Start",
            "Resume",
            "Cancel",
            "Restart",
            "GetRun",
            "ListRuns",
            "DeleteRun",
            "Stream",
            "Watch",
        )
    ),
    Row("Start-nested-90", "Start", start(input_data=nested(90)), INVALID, REQ),
    Row("Resume-nested-200", "Resume", resume(resume_data=nested(200)), INVALID, REQ),
    Row(
        "Start-utf8-input",
        "Start",
        bad_utf8(
            start(input_data=value({"name": "\u00e9t\u00e9"})), "\u00e9t\u00e9".encode(), b"\xff\xfe\xfd\xfc"
        ),
        INVALID,
        REQ,
    ),
    Row(
        "GetWorkflow-utf8-id",
        "GetWorkflow",
        bad_utf8(
            msg(lambda ids: run_service_pb2.GetWorkflowRequest(workflow_id="ech\u00e9")),
            b"\xc3\xa9",
            b"\xc3\x28",
        ),
        INVALID,
        REQ,
    ),
    # -- non-finite numbers --------------------------------------------------------------------
    Row(
        "Start-nan-input", "Start", start(input_data=value({"count": NAN})), INVALID, REQ, "input_data.count"
    ),
    Row(
        "Start-inf-nested",
        "Start",
        start(input_data=value({"count": 1, "more": [1, {"x": INF}]})),
        INVALID,
        REQ,
        "input_data.more[1].x",
    ),
    Row("Start-inf-state", "Start", start(initial_state=value({"s": -INF})), INVALID, REQ, "initial_state.s"),
    # Stored, a value nested deeper would make every reply that carries it undecodable.
    Row(
        "Start-deep-context",
        "Start",
        start(request_context=value(deep_json(31))),
        INVALID,
        REQ,
        "request_context",
    ),
    Row(
        "Start-deep-state", "Start", start(initial_state=value(deep_json(31))), INVALID, REQ, "initial_state"
    ),
    Row(
        "Start-deep-input-list",
        "Start",
        start(input_data=value({"count": 1, "more": deep_json(30, [])})),
        INVALID,
        REQ,
        "input_data",
    ),
    Row(
        "Start-nan-context",
        "Start",
        start(request_context=value({"c": NAN})),
        INVALID,
        REQ,
        "request_context.c",
    ),
    Row(
        "Resume-nan-data",
        "Resume",
        resume(resume_data=value({"approved": NAN})),
        INVALID,
        REQ,
        "resume_data.approved",
    ),
    Row(
        "Resume-inf-context",
        "Resume",
        resume(request_context=value({"c": INF})),
        INVALID,
        REQ,
        "request_context.c",
    ),
    Row(
        "Stream-nan-input",
        "Stream",
        msg(
            lambda ids: run_service_pb2.StreamRequest(
                start=run_service_pb2.StartRequest(workflow_id="echo", input_data=value({"count": NAN}))
            )
        ),
        INVALID,
        REQ,
        "start.input_data.count",
    ),
    # -- oversized data ------------------------------------------------------------------------
    Row(
        "Start-input-too-large",
        "Start",
        start(input_data=value({"big": MB})),
        INVALID,
        TOO_LARGE,
        "input_data",
    ),
    Row(
        "Start-state-too-large", "Start", start(initial_state=value(MB)), INVALID, TOO_LARGE, "initial_state"
    ),
    Row(
        "Start-context-too-large",
        "Start",
        start(request_context=value({"c": "x" * (limits.REQUEST_CONTEXT + 1)})),
        INVALID,
        TOO_LARGE,
        "request_context",
    ),
    Row("Resume-data-too-large", "Resume", resume(resume_data=value(MB)), INVALID, TOO_LARGE, "resume_data"),
    Row(
        "Stream-resume-too-large",
        "Stream",
        msg(
            lambda ids: run_service_pb2.StreamRequest(
                resume=run_service_pb2.ResumeRequest(run_id=ids.suspended, resume_data=value(MB))
            )
        ),
        INVALID,
        TOO_LARGE,
        "resume.resume_data",
    ),
    # -- unbounded ids and labels --------------------------------------------------------------
    Row(
        "GetWorkflow-id-1mb",
        "GetWorkflow",
        msg(lambda ids: run_service_pb2.GetWorkflowRequest(workflow_id=MB)),
        INVALID,
        REQ,
        "workflow_id",
    ),
    Row(
        "CreateRun-workflow-1mb",
        "CreateRun",
        msg(lambda ids: run_service_pb2.CreateRunRequest(workflow_id=MB)),
        INVALID,
        REQ,
        "workflow_id",
    ),
    Row(
        "CreateRun-resource-1mb",
        "CreateRun",
        msg(lambda ids: run_service_pb2.CreateRunRequest(workflow_id="echo", resource_id=MB)),
        INVALID,
        REQ,
        "resource_id",
    ),
    Row(
        "CreateRun-run-id-1mb",
        "CreateRun",
        msg(lambda ids: run_service_pb2.CreateRunRequest(workflow_id="echo", run_id=MB)),
        INVALID,
        REQ,
        "run_id",
    ),
    Row("Start-workflow-1mb", "Start", start(workflow_id=MB), INVALID, REQ, "workflow_id"),
    Row("Start-request-id-1mb", "Start", start(request_id=MB), INVALID, REQ, "request_id"),
    Row("Start-resource-1mb", "Start", start(resource_id=MB), INVALID, REQ, "resource_id"),
    Row("Start-run-id-bad", "Start", start(run_id="has space"), INVALID, REQ, "run_id"),
    Row("Resume-label-1mb", "Resume", resume(label=MB), INVALID, REQ, "label"),
    Row("Resume-request-id-1mb", "Resume", resume(request_id=MB), INVALID, REQ, "request_id"),
    Row("Resume-workflow-1mb", "Resume", resume(workflow_id=MB), INVALID, REQ, "workflow_id"),
    Row("Resume-step-id-1mb", "Resume", resume(step=[MB]), INVALID, REQ),
    Row("Resume-step-path-deep", "Resume", resume(step=["s"] * 100), INVALID, REQ, "step"),
    Row("Resume-step-dotted-deep", "Resume", resume(step=[".".join(["s"] * 100)]), INVALID, REQ, "step"),
    Row("Resume-step-empty-id", "Resume", resume(step=["a..b"]), INVALID, REQ, "step"),
    Row(
        "Resume-every-field-bad",
        "Resume",
        resume(
            workflow_id="w" * 100_000,
            label="l" * 100_000,
            request_id="r" * 100_000,
            step=["s" * 100_000] * 30,
            request_context=value({"k" * 50_000: NAN}),
        ),
        INVALID,
        REQ,
        "workflow_id",
    ),
    Row("Resume-negative-index", "Resume", resume(for_each_index=-1), INVALID, REQ, "for_each_index"),
    Row(
        "Cancel-run-id-1mb",
        "Cancel",
        msg(lambda ids: run_service_pb2.CancelRequest(run_id=MB)),
        INVALID,
        REQ,
        "run_id",
    ),
    Row(
        "Cancel-request-id-1mb",
        "Cancel",
        msg(lambda ids: run_service_pb2.CancelRequest(run_id=ids.suspended, request_id=MB)),
        INVALID,
        REQ,
        "request_id",
    ),
    Row(
        "Restart-request-id-1mb",
        "Restart",
        msg(lambda ids: run_service_pb2.RestartRequest(run_id=ids.done, request_id=MB)),
        INVALID,
        REQ,
        "request_id",
    ),
    Row(
        "DeleteRun-request-id-1mb",
        "DeleteRun",
        msg(lambda ids: run_service_pb2.DeleteRunRequest(run_id=ids.done, request_id=MB)),
        INVALID,
        REQ,
        "request_id",
    ),
    Row(
        "Restart-run-id-1mb",
        "Restart",
        msg(lambda ids: run_service_pb2.RestartRequest(run_id=MB)),
        INVALID,
        REQ,
        "run_id",
    ),
    Row(
        "GetRun-run-id-1mb",
        "GetRun",
        msg(lambda ids: run_service_pb2.GetRunRequest(run_id=MB)),
        INVALID,
        REQ,
        "run_id",
    ),
    Row(
        "GetRun-workflow-1mb",
        "GetRun",
        msg(lambda ids: run_service_pb2.GetRunRequest(run_id=ids.done, workflow_id=MB)),
        INVALID,
        REQ,
        "workflow_id",
    ),
    Row(
        "DeleteRun-run-id-1mb",
        "DeleteRun",
        msg(lambda ids: run_service_pb2.DeleteRunRequest(run_id=MB)),
        INVALID,
        REQ,
        "run_id",
    ),
    Row(
        "Watch-run-id-1mb",
        "Watch",
        msg(lambda ids: run_service_pb2.WatchRequest(run_id=MB)),
        INVALID,
        REQ,
        "run_id",
    ),
    Row(
        "Watch-negative-after",
        "Watch",
        msg(lambda ids: run_service_pb2.WatchRequest(run_id=ids.done, after_sequence=-1)),
        INVALID,
        REQ,
        "after_sequence",
    ),
    Row(
        "ListRuns-workflow-1mb",
        "ListRuns",
        msg(lambda ids: run_service_pb2.ListRunsRequest(workflow_id=MB)),
        INVALID,
        REQ,
        "workflow_id",
    ),
    Row(
        "ListRuns-resource-1mb",
        "ListRuns",
        msg(lambda ids: run_service_pb2.ListRunsRequest(resource_id=MB)),
        INVALID,
        REQ,
        "resource_id",
    ),
    Row(
        "ListRuns-token-1mb",
        "ListRuns",
        msg(lambda ids: run_service_pb2.ListRunsRequest(page_token=MB)),
        INVALID,
        REQ,
        "page_token",
    ),
    Row(
        "ListRuns-token-garbage",
        "ListRuns",
        msg(lambda ids: run_service_pb2.ListRunsRequest(page_token="not-a-token")),
        INVALID,
        REQ,
        "page_token",
    ),
    Row(
        "ListRuns-token-past-a-float",
        "ListRuns",
        msg(lambda ids: run_service_pb2.ListRunsRequest(page_token=token_at("1" + "0" * 320))),
        INVALID,
        REQ,
        "page_token",
    ),
    Row(
        "ListRuns-token-nan",
        "ListRuns",
        msg(lambda ids: run_service_pb2.ListRunsRequest(page_token=token_at("NaN"))),
        INVALID,
        REQ,
        "page_token",
    ),
    Row(
        "ListRuns-token-forged-surrogate-run-id",
        "ListRuns",
        msg(
            lambda ids: run_service_pb2.ListRunsRequest(
                page_size=1, page_token=forged(ids.token, "1", '"\\ud800"')
            )
        ),
        INVALID,
        REQ,
        "page_token",
    ),
    Row(
        "ListRuns-token-forged-nul-run-id",
        "ListRuns",
        msg(
            lambda ids: run_service_pb2.ListRunsRequest(
                page_size=1, page_token=forged(ids.token, "1", '"a\\u0000b"')
            )
        ),
        INVALID,
        REQ,
        "page_token",
    ),
    Row(
        "ListRuns-token-forged-list-run-id",
        "ListRuns",
        msg(
            lambda ids: run_service_pb2.ListRunsRequest(
                page_size=1, page_token=forged(ids.token, "1", '["x"]')
            )
        ),
        INVALID,
        REQ,
        "page_token",
    ),
    Row(
        "ListRuns-token-forged-null-run-id",
        "ListRuns",
        msg(
            lambda ids: run_service_pb2.ListRunsRequest(
                page_size=1, page_token=forged(ids.token, "1", "null")
            )
        ),
        INVALID,
        REQ,
        "page_token",
    ),
    Row(
        "ListRuns-token-forged-empty-run-id",
        "ListRuns",
        msg(
            lambda ids: run_service_pb2.ListRunsRequest(page_size=1, page_token=forged(ids.token, "1", '""'))
        ),
        INVALID,
        REQ,
        "page_token",
    ),
    Row(
        "ListRuns-token-forged-boolean-time",
        "ListRuns",
        msg(
            lambda ids: run_service_pb2.ListRunsRequest(
                page_size=1, page_token=forged(ids.token, "true", '"x"')
            )
        ),
        INVALID,
        REQ,
        "page_token",
    ),
    Row(
        "ListRuns-token-forged-string-time",
        "ListRuns",
        msg(
            lambda ids: run_service_pb2.ListRunsRequest(
                page_size=1, page_token=forged(ids.token, '"1"', '"x"')
            )
        ),
        INVALID,
        REQ,
        "page_token",
    ),
    Row(
        "ListRuns-token-other-filters",
        "ListRuns",
        msg(
            lambda ids: run_service_pb2.ListRunsRequest(
                page_size=1, page_token=ids.token, workflow_id="approval"
            )
        ),
        INVALID,
        REQ,
        "page_token",
    ),
    Row(
        "ListRuns-negative-size",
        "ListRuns",
        msg(lambda ids: run_service_pb2.ListRunsRequest(page_size=-5)),
        INVALID,
        REQ,
        "page_size",
    ),
    Row(
        "ListRuns-many-statuses",
        "ListRuns",
        msg(lambda ids: run_service_pb2.ListRunsRequest(statuses=[run_pb2.RUN_STATUS_SUCCESS] * 1000)),
        INVALID,
        REQ,
        "statuses",
    ),
    Row(
        "ListRuns-unknown-status",
        "ListRuns",
        lambda ids: _list_with_status(99),
        INVALID,
        REQ,
        "statuses[0]",
    ),
    Row(
        "ListRuns-time-out-of-range",
        "ListRuns",
        lambda ids: _list_with_time(10**12, 0),
        INVALID,
        REQ,
        "from_time",
    ),
    Row("ListRuns-time-bad-nanos", "ListRuns", lambda ids: _list_with_time(0, -1), INVALID, REQ, "from_time"),
    # -- a workflow that is not the run's ------------------------------------------------------
    *(
        Row(f"{method}-workflow-mismatch", method, build, INVALID, "RUN_WORKFLOW_MISMATCH", "workflow_id")
        for method, build in (
            (
                "GetRun",
                msg(lambda ids: run_service_pb2.GetRunRequest(run_id=ids.done, workflow_id="approval")),
            ),
            ("Resume", resume(workflow_id="echo")),
            (
                "Cancel",
                msg(lambda ids: run_service_pb2.CancelRequest(run_id=ids.suspended, workflow_id="echo")),
            ),
            (
                "DeleteRun",
                msg(lambda ids: run_service_pb2.DeleteRunRequest(run_id=ids.done, workflow_id="approval")),
            ),
        )
    ),
    Row(
        "Restart-workflow-mismatch",
        "Restart",
        msg(lambda ids: run_service_pb2.RestartRequest(run_id=ids.done, workflow_id="approval")),
        INVALID,
        "RUN_WORKFLOW_MISMATCH",
        "workflow_id",
    ),
    Row(
        "Restart-workflow-1mb",
        "Restart",
        msg(lambda ids: run_service_pb2.RestartRequest(run_id=ids.done, workflow_id=MB)),
        INVALID,
        REQ,
        "workflow_id",
    ),
    Row(
        "Stream-start-workflow-1mb",
        "Stream",
        msg(lambda ids: run_service_pb2.StreamRequest(start=run_service_pb2.StartRequest(workflow_id=MB))),
        INVALID,
        REQ,
        "start.workflow_id",
    ),
    Row("Stream-no-action", "Stream", lambda ids: b"", INVALID, REQ, "action"),
    Row(
        "Watch-utf8-run-id",
        "Watch",
        bad_utf8(msg(lambda ids: run_service_pb2.WatchRequest(run_id="r\u00e9")), b"\xc3\xa9", b"\xe9\xff"),
        INVALID,
        REQ,
    ),
    # -- ids a pattern's `$` let through, NUL that PostgreSQL's text cannot hold -----------------
    Row("Start-run-id-newline", "Start", start(run_id="nl-run\n"), INVALID, REQ, "run_id"),
    Row(
        "ForkRun-new-run-id-newline",
        "ForkRun",
        msg(lambda ids: run_service_pb2.ForkRunRequest(run_id=ids.done, step=["bump"], new_run_id="f\n")),
        INVALID,
        REQ,
        "new_run_id",
    ),
    Row("Start-resource-id-nul", "Start", start(resource_id="ten\x00ant"), INVALID, REQ, "resource_id"),
    Row("Start-request-id-nul", "Start", start(request_id="r\x00"), INVALID, REQ, "request_id"),
    Row("Resume-request-id-nul", "Resume", resume(request_id="q\x00"), INVALID, REQ, "request_id"),
    Row(
        "Cancel-request-id-nul",
        "Cancel",
        msg(lambda ids: run_service_pb2.CancelRequest(run_id=ids.suspended, request_id="q\x00")),
        INVALID,
        REQ,
        "request_id",
    ),
    Row(
        "Restart-request-id-nul",
        "Restart",
        msg(lambda ids: run_service_pb2.RestartRequest(run_id=ids.done, request_id="q\x00")),
        INVALID,
        REQ,
        "request_id",
    ),
    Row(
        "DeleteRun-request-id-nul",
        "DeleteRun",
        msg(lambda ids: run_service_pb2.DeleteRunRequest(run_id=ids.done, request_id="q\x00")),
        INVALID,
        REQ,
        "request_id",
    ),
    Row(
        "ListRuns-resource-id-nul",
        "ListRuns",
        msg(lambda ids: run_service_pb2.ListRunsRequest(resource_id="\x00")),
        INVALID,
        REQ,
        "resource_id",
    ),
    # -- enum and Duration values out of their range ---------------------------------------------
    Row(
        "GetRun-unknown-view",
        "GetRun",
        msg(lambda ids: run_service_pb2.GetRunRequest(run_id=ids.done, view=99)),  # type: ignore[arg-type]
        INVALID,
        REQ,
        "view",
    ),
    Row(
        "ListRuns-unknown-view",
        "ListRuns",
        msg(lambda ids: run_service_pb2.ListRunsRequest(view=-1)),  # type: ignore[arg-type]
        INVALID,
        REQ,
        "view",
    ),
    Row(
        "Start-timeout-beyond-duration",
        "Start",
        start(timeout=duration_pb2.Duration(seconds=2**40)),
        INVALID,
        REQ,
        "timeout",
    ),
    # -- tracing options are checked whether or not the server traces (this one does not) ----------
    Row(
        "Resume-tracing-bad-trace-id",
        "Resume",
        resume(tracing_options=run_service_pb2.TracingOptions(trace_id="not-hex!")),
        INVALID,
        REQ,
        "tracing_options.trace_id",
    ),
    Row(
        "TimeTravel-tracing-bad-span-id",
        "TimeTravel",
        msg(
            lambda ids: run_service_pb2.TimeTravelRequest(
                run_id=ids.done,
                step=["bump"],
                tracing_options=run_service_pb2.TracingOptions(parent_span_id="zz"),
            )
        ),
        INVALID,
        REQ,
        "tracing_options.parent_span_id",
    ),
    Row(
        "Start-tracing-too-many-tags",
        "Start",
        start(tracing_options=run_service_pb2.TracingOptions(tags=["t"] * (limits.TRACE_NAMES + 1))),
        INVALID,
        REQ,
        "tracing_options.tags",
    ),
    Row(
        "Start-tracing-metadata-too-large",
        "Start",
        start(
            tracing_options=run_service_pb2.TracingOptions(metadata=value({"k": "m" * limits.TRACE_METADATA}))
        ),
        INVALID,
        REQ,
        "tracing_options.metadata",
    ),
    Row(
        "Start-tracing-metadata-nan",
        "Start",
        start(tracing_options=run_service_pb2.TracingOptions(metadata=value({"k": {"n": NAN}}))),
        INVALID,
        REQ,
        "tracing_options.metadata.k.n",
    ),
    Row(
        "Start-tracing-metadata-deep",
        "Start",
        start(tracing_options=run_service_pb2.TracingOptions(metadata=value(deep_json(31)))),
        INVALID,
        REQ,
        "tracing_options.metadata",
    ),
    Row(
        "Resume-label-not-found",
        "Resume",
        resume(label="no-such-label"),
        grpc.StatusCode.FAILED_PRECONDITION,
        "RESUME_LABEL_NOT_FOUND",
    ),
]


def _list_with_status(number: int) -> bytes:
    """A ListRunsRequest with a status number the enum does not have (field 2, packed)."""
    return bytes([0x12, 1, number])


def _list_with_time(seconds: int, nanos: int) -> bytes:
    request = run_service_pb2.ListRunsRequest()
    request.from_time.seconds = seconds
    request.from_time.nanos = nanos
    return request.SerializeToString()


def details(exc: grpc.aio.AioRpcError) -> tuple[error_details_pb2.ErrorInfo, list[str]]:
    """The ErrorInfo of a failed call and the fields of its violations."""
    raw = dict(exc.trailing_metadata() or ())["grpc-status-details-bin"]
    assert isinstance(raw, bytes)
    status = status_pb2.Status.FromString(raw)
    assert status.code == exc.code().value[0]
    info = error_details_pb2.ErrorInfo()
    fields: list[str] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields.extend(v.field for v in bad.field_violations)
    assert info.domain == "runservice.dev"
    return info, fields


async def call(channel: grpc.aio.Channel, method: str, raw: bytes) -> list[bytes]:
    """Send raw request bytes; the raw reply (or every streamed reply)."""
    if method in STREAMING:
        stream: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(PREFIX + method)
        return [reply async for reply in stream(raw, timeout=10)]
    unary: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(PREFIX + method)
    return [await unary(raw, timeout=10)]


async def snapshot(channel: grpc.aio.Channel, ids: Ids) -> list[bytes]:
    """Everything stored, as the server shows it: each run in full and the full listing."""
    out = []
    for run_id in (ids.done, ids.suspended):
        request = run_service_pb2.GetRunRequest(run_id=run_id, include_state=True, view=FULL)
        out.extend(await call(channel, "GetRun", request.SerializeToString()))
    listing = run_service_pb2.ListRunsRequest(page_size=1000, view=FULL)
    out.extend(await call(channel, "ListRuns", listing.SerializeToString()))
    return out


@pytest.fixture
async def prepared(served: Served) -> AsyncIterator[tuple[grpc.aio.Channel, Ids]]:
    engine = served.engine
    done = await engine.start(workflow_id="echo", input_data={"count": 1}, wait=True)
    suspended = await engine.start(workflow_id="approval", input_data={"count": 1}, wait=True)
    assert done.status is RunStatus.SUCCESS and suspended.status is RunStatus.SUSPENDED
    _, token = await engine.list_runs(page_size=1)
    assert token
    async with grpc.aio.insecure_channel(served.address) as channel:
        yield channel, Ids(done=done.run_id, suspended=suspended.run_id, token=token)


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
async def test_bad_input_is_refused_and_changes_nothing(
    prepared: tuple[grpc.aio.Channel, Ids], row: Row
) -> None:
    channel, ids = prepared
    before = await snapshot(channel, ids)
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call(channel, row.method, row.build(ids))
    exc = failed.value
    assert exc.code() == row.code, exc.details()
    info, fields = details(exc)
    assert info.reason == row.reason
    if row.field is not None:
        assert row.field in fields
    # Nothing unbounded is echoed: the whole trailer stays small.
    assert len(exc.details() or "") <= 512
    assert all(len(v) <= 128 for v in info.metadata.values())
    assert sum(len(k) + len(v) for k, v in exc.trailing_metadata() or ()) < 6 * 1024
    # The server still answers, and nothing stored changed.
    listed = await call(channel, "ListWorkflows", b"")
    assert run_service_pb2.ListWorkflowsResponse.FromString(listed[0]).workflows
    assert await snapshot(channel, ids) == before


# -- stored data that no request could bring in still reads -------------------------------------


def odd_run(run_id: str, **fields: Any) -> Run:
    return Run(
        run_id=run_id,
        workflow_id="echo",
        status=RunStatus.SUCCESS,
        created_at=1000.0,
        updated_at=1000.0,
        **fields,
    )


async def test_odd_stored_values_never_fail_a_read(served: Served) -> None:
    """Times outside Timestamp's range, infinite and NaN times, written straight into the
    store: every read shows them clamped (or, for NaN, unset) and none fails."""
    step = StepRecord(
        path=("bump",),
        status=StepStatus.SUCCESS,
        payload={"n": 1e300},
        wake_at=1e15,
        started_at=-1e15,
        ended_at=NAN,
    )
    run = odd_run("odd", wake_at=INF, started_at=1e12 * 1000, ended_at=-INF, input={"n": 1.5})
    await served.store.write(RunWrite(run_id="odd", create=run, steps=(step,)))
    async with grpc.aio.insecure_channel(served.address) as channel:
        request = run_service_pb2.GetRunRequest(run_id="odd", view=FULL)
        (raw,) = await call(channel, "GetRun", request.SerializeToString())
        got = run_service_pb2.GetRunResponse.FromString(raw).run
        assert got.wake_time.seconds == 253_402_300_799  # clamped to 9999-12-31
        assert got.start_time.seconds == 253_402_300_799
        assert got.end_time.seconds == -62_135_596_800  # clamped to 0001-01-01
        assert got.steps[0].wake_at.seconds == 253_402_300_799
        assert not got.steps[0].HasField("ended_at")  # NaN: no time at all
        assert got.steps[0].payload.struct_value.fields["n"].number_value == 1e300
        listing = run_service_pb2.ListRunsRequest(view=FULL)
        (raw,) = await call(channel, "ListRuns", listing.SerializeToString())
        assert [r.run_id for r in run_service_pb2.ListRunsResponse.FromString(raw).runs] == ["odd"]
        watch = run_service_pb2.WatchRequest(run_id="odd", include_run=True)
        watching: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(PREFIX + "Watch")
        stream = watching(watch.SerializeToString(), timeout=10)
        first = await asyncio.wait_for(stream.read(), 10)
        assert isinstance(first, bytes)
        assert run_service_pb2.WatchResponse.FromString(first).run.wake_time.seconds == 253_402_300_799
        stream.cancel()


async def test_a_reply_too_large_is_refused_with_a_smaller_view_to_ask_for(served: Served) -> None:
    """A run stored directly with more data than fits one message: GetRun in full is
    RESOURCE_EXHAUSTED / REPLY_TOO_LARGE, the smaller views work; the same for ListRuns."""
    big = "y" * (1024 * 1024)
    steps = tuple(
        StepRecord(path=(f"s{i}",), status=StepStatus.SUCCESS, payload=big, output=big, position=i)
        for i in range(5)
    )
    await served.store.write(RunWrite(run_id="big", create=odd_run("big", input=big), steps=steps))
    for i in range(8):
        await served.store.write(RunWrite(run_id=f"in{i}", create=odd_run(f"in{i}", input=big)))
    async with grpc.aio.insecure_channel(served.address) as channel:
        full = run_service_pb2.GetRunRequest(run_id="big", view=FULL)
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await call(channel, "GetRun", full.SerializeToString())
        assert failed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        info, _ = details(failed.value)
        assert info.reason == "REPLY_TOO_LARGE" and int(info.metadata["size"]) > int(info.metadata["limit"])
        assert "RUN_VIEW_WITHOUT_PAYLOADS" in (failed.value.details() or "")
        lean = run_service_pb2.GetRunRequest(run_id="big", view=run_service_pb2.RUN_VIEW_WITHOUT_PAYLOADS)
        (raw,) = await call(channel, "GetRun", lean.SerializeToString())
        got = run_service_pb2.GetRunResponse.FromString(raw).run
        assert len(got.steps) == 5 and not got.steps[0].HasField("output") and got.input.string_value == big
        summary = run_service_pb2.GetRunRequest(run_id="big", view=run_service_pb2.RUN_VIEW_SUMMARY)
        (raw,) = await call(channel, "GetRun", summary.SerializeToString())
        got = run_service_pb2.GetRunResponse.FromString(raw).run
        assert not got.steps and not got.HasField("input") and got.status == run_pb2.RUN_STATUS_SUCCESS

        listing = run_service_pb2.ListRunsRequest(view=FULL)
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await call(channel, "ListRuns", listing.SerializeToString())
        assert failed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert details(failed.value)[0].reason == "REPLY_TOO_LARGE"
        (raw,) = await call(channel, "ListRuns", run_service_pb2.ListRunsRequest().SerializeToString())
        runs = run_service_pb2.ListRunsResponse.FromString(raw).runs
        assert len(runs) == 9 and not any(r.HasField("input") for r in runs)  # summaries by default


async def test_page_tokens_continue_only_their_own_listing(served: Served) -> None:
    engine = served.engine
    for n in range(3):
        await engine.start(workflow_id="echo", input_data={"count": n}, wait=True)
    first, token = await engine.list_runs(workflow_id="echo", page_size=2)
    second, last = await engine.list_runs(workflow_id="echo", page_size=2, page_token=token)
    assert len(first) == 2 and len(second) == 1 and last == ""
    # The page size may change between pages; the filters may not.
    again, _ = await engine.list_runs(workflow_id="echo", page_size=5, page_token=token)
    assert [r.run_id for r in again] == [r.run_id for r in second]
    assert math.isfinite(first[0].created_at)


async def test_event_batches_over_the_send_limit_are_split(served: Served) -> None:
    """A run whose events together hold far more than one message: Watch and its workflow
    states still deliver every event, in order, in messages that can be sent."""
    big = "e" * (1024 * 1024)
    step = StepRecord(path=("s",), status=StepStatus.SUCCESS, payload=big, output=big)
    events = [EventDraft(EventType.STEP_OUTPUT, RunStatus.RUNNING, step=step, data=big) for _ in range(9)]
    events.append(EventDraft(EventType.WORKFLOW_FINISH, RunStatus.SUCCESS))
    run = odd_run("chatty", input="i")
    await served.store.write(RunWrite(run_id="chatty", create=run, steps=(step,), events=tuple(events)))
    options = [("grpc.max_receive_message_length", limits.MESSAGE)]  # the server's limit, not 4 MiB
    async with grpc.aio.insecure_channel(served.address, options=options) as channel:
        for with_state in (False, True):
            watch = run_service_pb2.WatchRequest(run_id="chatty", include_workflow_state=with_state)
            replies = [
                run_service_pb2.WatchResponse.FromString(raw)
                for raw in await call(channel, "Watch", watch.SerializeToString())
            ]
            got = [event.sequence for reply in replies for event in reply.events]
            assert got == list(range(1, 11))
            assert len(replies) > 2 and replies[-1].end_of_stream
            assert all(reply.ByteSize() <= limits.MESSAGE for reply in replies)
            assert replies[0].events[0].data.string_value == big


async def test_client_lists_summaries_unless_asked_for_full(client: Client) -> None:
    wf = client.get_workflow("echo")
    handle = await wf.create_run()
    await handle.start_async({"count": 4})
    (summary,), _ = await wf.runs()
    assert summary.run_id == handle.run_id and summary.status is RunStatus.SUCCESS
    assert summary.input is None and summary.result is None
    (full,), _ = await wf.runs(full=True)
    assert full.input == {"count": 4} and full.result == {"count": 5}
    with pytest.raises(errors.RunWorkflowMismatch) as mismatch:
        await client.get_workflow("approval").run_by_id(handle.run_id)
    assert mismatch.value.metadata["run_workflow_id"] == "echo"


@pytest.mark.parametrize(
    ("method", "request_message", "field"),
    [
        ("GetSchedule", schedule_service_pb2.GetScheduleRequest(schedule_id="a\x00b"), "schedule_id"),
        ("PauseSchedule", schedule_service_pb2.PauseScheduleRequest(schedule_id="a\x00b"), "schedule_id"),
        (
            "TriggerSchedule",
            schedule_service_pb2.TriggerScheduleRequest(schedule_id="nightly", request_id="r\x00"),
            "request_id",
        ),
    ],
)
async def test_schedule_requests_with_nul_are_refused(
    channel: grpc.aio.Channel, method: str, request_message: message.Message, field: str
) -> None:
    """As RunService's: a NUL in an id is INVALID_REQUEST on every store, not INTERNAL on PostgreSQL."""
    unary: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        f"/runservice.v1.ScheduleService/{method}"
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await unary(request_message.SerializeToString(), timeout=10)
    assert refused.value.code() == INVALID, refused.value.details()
    info, fields = details(refused.value)
    assert info.reason == REQ and field in fields


def _deepest_value_path(descriptor: Any, seen: frozenset[str]) -> list[Any]:
    """The fields down to the deepest `google.protobuf.Value` field below `descriptor`."""
    best: list[Any] = []
    for field in descriptor.fields:
        kind = field.message_type
        if kind is None or kind.full_name in seen:
            continue
        path = [field] if kind.full_name == "google.protobuf.Value" else []
        if not path:
            below = _deepest_value_path(kind, seen | {kind.full_name})
            path = [field, *below] if below else []
        if len(path) > len(best):
            best = path
    return best


def test_json_at_the_depth_bound_decodes_in_the_deepest_reply() -> None:
    """Every reply that carries a stored JSON value, with the value nested `JSON_DEPTH`
    objects deep, decodes under protobuf's default recursion limit: what the edge and the
    engine let in can always be read back, however the contract grows."""
    services = (run_service_pb2.DESCRIPTOR, schedule_service_pb2.DESCRIPTOR)
    replies = [
        method.output_type
        for file in services
        for service in file.services_by_name.values()
        for method in service.methods
    ]
    assert replies
    for reply in replies:
        path = _deepest_value_path(reply, frozenset({reply.full_name}))
        if not path:
            continue
        made = _message_class(reply)()
        target: Any = made
        for field in path[:-1]:
            target = getattr(target, field.name)
            target = target.add() if field.is_repeated else target
        leaf = getattr(target, path[-1].name)
        leaf = leaf.add() if path[-1].is_repeated else leaf
        leaf.CopyFrom(value(deep_json(limits.JSON_DEPTH)))
        parsed = type(made).FromString(made.SerializeToString())
        assert parsed == made, reply.full_name


def _message_class(descriptor: Any) -> Any:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)
