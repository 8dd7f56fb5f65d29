import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from runservice.v1 import run_pb2 as _run_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunView(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_VIEW_UNSPECIFIED: _ClassVar[RunView]
    RUN_VIEW_SUMMARY: _ClassVar[RunView]
    RUN_VIEW_WITHOUT_PAYLOADS: _ClassVar[RunView]
    RUN_VIEW_FULL: _ClassVar[RunView]
RUN_VIEW_UNSPECIFIED: RunView
RUN_VIEW_SUMMARY: RunView
RUN_VIEW_WITHOUT_PAYLOADS: RunView
RUN_VIEW_FULL: RunView

class ListWorkflowsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListWorkflowsResponse(_message.Message):
    __slots__ = ("workflows",)
    WORKFLOWS_FIELD_NUMBER: _ClassVar[int]
    workflows: _containers.RepeatedCompositeFieldContainer[_run_pb2.Workflow]
    def __init__(self, workflows: _Optional[_Iterable[_Union[_run_pb2.Workflow, _Mapping]]] = ...) -> None: ...

class GetWorkflowRequest(_message.Message):
    __slots__ = ("workflow_id",)
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    def __init__(self, workflow_id: _Optional[str] = ...) -> None: ...

class GetWorkflowResponse(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: _run_pb2.Workflow
    def __init__(self, workflow: _Optional[_Union[_run_pb2.Workflow, _Mapping]] = ...) -> None: ...

class CreateRunRequest(_message.Message):
    __slots__ = ("workflow_id", "run_id", "resource_id")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    run_id: str
    resource_id: str
    def __init__(self, workflow_id: _Optional[str] = ..., run_id: _Optional[str] = ..., resource_id: _Optional[str] = ...) -> None: ...

class CreateRunResponse(_message.Message):
    __slots__ = ("run", "created")
    RUN_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    run: _run_pb2.Run
    created: bool
    def __init__(self, run: _Optional[_Union[_run_pb2.Run, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class StartRequest(_message.Message):
    __slots__ = ("workflow_id", "run_id", "input_data", "initial_state", "request_context", "wait", "request_id", "resource_id", "tracing_options", "timeout", "include_state")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_DATA_FIELD_NUMBER: _ClassVar[int]
    INITIAL_STATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    TRACING_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_STATE_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    run_id: str
    input_data: _struct_pb2.Value
    initial_state: _struct_pb2.Value
    request_context: _struct_pb2.Value
    wait: bool
    request_id: str
    resource_id: str
    tracing_options: TracingOptions
    timeout: _duration_pb2.Duration
    include_state: bool
    def __init__(self, workflow_id: _Optional[str] = ..., run_id: _Optional[str] = ..., input_data: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., initial_state: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., request_context: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., wait: _Optional[bool] = ..., request_id: _Optional[str] = ..., resource_id: _Optional[str] = ..., tracing_options: _Optional[_Union[TracingOptions, _Mapping]] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., include_state: _Optional[bool] = ...) -> None: ...

class StartResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: _run_pb2.Run
    def __init__(self, run: _Optional[_Union[_run_pb2.Run, _Mapping]] = ...) -> None: ...

class ResumeRequest(_message.Message):
    __slots__ = ("workflow_id", "run_id", "resume_data", "step", "label", "for_each_index", "request_context", "wait", "request_id", "tracing_options", "include_state")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RESUME_DATA_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    FOR_EACH_INDEX_FIELD_NUMBER: _ClassVar[int]
    REQUEST_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TRACING_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_STATE_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    run_id: str
    resume_data: _struct_pb2.Value
    step: _containers.RepeatedScalarFieldContainer[str]
    label: str
    for_each_index: int
    request_context: _struct_pb2.Value
    wait: bool
    request_id: str
    tracing_options: TracingOptions
    include_state: bool
    def __init__(self, workflow_id: _Optional[str] = ..., run_id: _Optional[str] = ..., resume_data: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., step: _Optional[_Iterable[str]] = ..., label: _Optional[str] = ..., for_each_index: _Optional[int] = ..., request_context: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., wait: _Optional[bool] = ..., request_id: _Optional[str] = ..., tracing_options: _Optional[_Union[TracingOptions, _Mapping]] = ..., include_state: _Optional[bool] = ...) -> None: ...

class ResumeResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: _run_pb2.Run
    def __init__(self, run: _Optional[_Union[_run_pb2.Run, _Mapping]] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("workflow_id", "run_id", "request_id")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    run_id: str
    request_id: str
    def __init__(self, workflow_id: _Optional[str] = ..., run_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CancelResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: _run_pb2.Run
    def __init__(self, run: _Optional[_Union[_run_pb2.Run, _Mapping]] = ...) -> None: ...

class RestartRequest(_message.Message):
    __slots__ = ("workflow_id", "run_id", "wait", "request_id")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    run_id: str
    wait: bool
    request_id: str
    def __init__(self, workflow_id: _Optional[str] = ..., run_id: _Optional[str] = ..., wait: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class RestartResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: _run_pb2.Run
    def __init__(self, run: _Optional[_Union[_run_pb2.Run, _Mapping]] = ...) -> None: ...

class StreamRequest(_message.Message):
    __slots__ = ("start", "resume", "time_travel")
    START_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    TIME_TRAVEL_FIELD_NUMBER: _ClassVar[int]
    start: StartRequest
    resume: ResumeRequest
    time_travel: TimeTravelRequest
    def __init__(self, start: _Optional[_Union[StartRequest, _Mapping]] = ..., resume: _Optional[_Union[ResumeRequest, _Mapping]] = ..., time_travel: _Optional[_Union[TimeTravelRequest, _Mapping]] = ...) -> None: ...

class StreamResponse(_message.Message):
    __slots__ = ("run_id", "events", "end_of_stream", "run")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    END_OF_STREAM_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    events: _containers.RepeatedCompositeFieldContainer[_run_pb2.RunEvent]
    end_of_stream: bool
    run: _run_pb2.Run
    def __init__(self, run_id: _Optional[str] = ..., events: _Optional[_Iterable[_Union[_run_pb2.RunEvent, _Mapping]]] = ..., end_of_stream: _Optional[bool] = ..., run: _Optional[_Union[_run_pb2.Run, _Mapping]] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("run_id", "after_sequence", "include_run", "include_workflow_state")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_RUN_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_WORKFLOW_STATE_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    after_sequence: int
    include_run: bool
    include_workflow_state: bool
    def __init__(self, run_id: _Optional[str] = ..., after_sequence: _Optional[int] = ..., include_run: _Optional[bool] = ..., include_workflow_state: _Optional[bool] = ...) -> None: ...

class WatchResponse(_message.Message):
    __slots__ = ("events", "workflow_states", "watermark_sequence", "end_of_stream", "run")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_STATES_FIELD_NUMBER: _ClassVar[int]
    WATERMARK_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    END_OF_STREAM_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_run_pb2.RunEvent]
    workflow_states: _containers.RepeatedCompositeFieldContainer[_run_pb2.WorkflowState]
    watermark_sequence: int
    end_of_stream: bool
    run: _run_pb2.Run
    def __init__(self, events: _Optional[_Iterable[_Union[_run_pb2.RunEvent, _Mapping]]] = ..., workflow_states: _Optional[_Iterable[_Union[_run_pb2.WorkflowState, _Mapping]]] = ..., watermark_sequence: _Optional[int] = ..., end_of_stream: _Optional[bool] = ..., run: _Optional[_Union[_run_pb2.Run, _Mapping]] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("workflow_id", "run_id", "include_state", "view")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_STATE_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    run_id: str
    include_state: bool
    view: RunView
    def __init__(self, workflow_id: _Optional[str] = ..., run_id: _Optional[str] = ..., include_state: _Optional[bool] = ..., view: _Optional[_Union[RunView, str]] = ...) -> None: ...

class GetRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: _run_pb2.Run
    def __init__(self, run: _Optional[_Union[_run_pb2.Run, _Mapping]] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ("workflow_id", "statuses", "resource_id", "from_time", "to_time", "page_size", "page_token", "view", "forked_from_run_id", "definition_version")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_TIME_FIELD_NUMBER: _ClassVar[int]
    TO_TIME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    FORKED_FROM_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_VERSION_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    statuses: _containers.RepeatedScalarFieldContainer[_run_pb2.RunStatus]
    resource_id: str
    from_time: _timestamp_pb2.Timestamp
    to_time: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    view: RunView
    forked_from_run_id: str
    definition_version: str
    def __init__(self, workflow_id: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[_run_pb2.RunStatus, str]]] = ..., resource_id: _Optional[str] = ..., from_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., to_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., view: _Optional[_Union[RunView, str]] = ..., forked_from_run_id: _Optional[str] = ..., definition_version: _Optional[str] = ...) -> None: ...

class ListRunsResponse(_message.Message):
    __slots__ = ("runs", "next_page_token")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[_run_pb2.Run]
    next_page_token: str
    def __init__(self, runs: _Optional[_Iterable[_Union[_run_pb2.Run, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteRunRequest(_message.Message):
    __slots__ = ("workflow_id", "run_id", "request_id")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    run_id: str
    request_id: str
    def __init__(self, workflow_id: _Optional[str] = ..., run_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class DeleteRunResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TimeTravelRequest(_message.Message):
    __slots__ = ("workflow_id", "run_id", "step", "input_data", "initial_state", "request_context", "wait", "request_id", "tracing_options", "resume_data")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    INPUT_DATA_FIELD_NUMBER: _ClassVar[int]
    INITIAL_STATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TRACING_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    RESUME_DATA_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    run_id: str
    step: _containers.RepeatedScalarFieldContainer[str]
    input_data: _struct_pb2.Value
    initial_state: _struct_pb2.Value
    request_context: _struct_pb2.Value
    wait: bool
    request_id: str
    tracing_options: TracingOptions
    resume_data: _struct_pb2.Value
    def __init__(self, workflow_id: _Optional[str] = ..., run_id: _Optional[str] = ..., step: _Optional[_Iterable[str]] = ..., input_data: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., initial_state: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., request_context: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., wait: _Optional[bool] = ..., request_id: _Optional[str] = ..., tracing_options: _Optional[_Union[TracingOptions, _Mapping]] = ..., resume_data: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class TimeTravelResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: _run_pb2.Run
    def __init__(self, run: _Optional[_Union[_run_pb2.Run, _Mapping]] = ...) -> None: ...

class ForkRunRequest(_message.Message):
    __slots__ = ("workflow_id", "run_id", "new_run_id", "step", "input_data", "initial_state", "request_context", "wait", "request_id", "tracing_options", "resume_data")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    NEW_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    INPUT_DATA_FIELD_NUMBER: _ClassVar[int]
    INITIAL_STATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TRACING_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    RESUME_DATA_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    run_id: str
    new_run_id: str
    step: _containers.RepeatedScalarFieldContainer[str]
    input_data: _struct_pb2.Value
    initial_state: _struct_pb2.Value
    request_context: _struct_pb2.Value
    wait: bool
    request_id: str
    tracing_options: TracingOptions
    resume_data: _struct_pb2.Value
    def __init__(self, workflow_id: _Optional[str] = ..., run_id: _Optional[str] = ..., new_run_id: _Optional[str] = ..., step: _Optional[_Iterable[str]] = ..., input_data: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., initial_state: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., request_context: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., wait: _Optional[bool] = ..., request_id: _Optional[str] = ..., tracing_options: _Optional[_Union[TracingOptions, _Mapping]] = ..., resume_data: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class ForkRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: _run_pb2.Run
    def __init__(self, run: _Optional[_Union[_run_pb2.Run, _Mapping]] = ...) -> None: ...

class TracingOptions(_message.Message):
    __slots__ = ("trace_id", "parent_span_id", "tags", "metadata", "request_context_keys")
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    REQUEST_CONTEXT_KEYS_FIELD_NUMBER: _ClassVar[int]
    trace_id: str
    parent_span_id: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    metadata: _struct_pb2.Value
    request_context_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, trace_id: _Optional[str] = ..., parent_span_id: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., request_context_keys: _Optional[_Iterable[str]] = ...) -> None: ...
