import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATUS_UNSPECIFIED: _ClassVar[RunStatus]
    RUN_STATUS_PENDING: _ClassVar[RunStatus]
    RUN_STATUS_RUNNING: _ClassVar[RunStatus]
    RUN_STATUS_WAITING: _ClassVar[RunStatus]
    RUN_STATUS_SUSPENDED: _ClassVar[RunStatus]
    RUN_STATUS_SUCCESS: _ClassVar[RunStatus]
    RUN_STATUS_FAILED: _ClassVar[RunStatus]
    RUN_STATUS_CANCELED: _ClassVar[RunStatus]

class StepStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_STATUS_UNSPECIFIED: _ClassVar[StepStatus]
    STEP_STATUS_RUNNING: _ClassVar[StepStatus]
    STEP_STATUS_WAITING: _ClassVar[StepStatus]
    STEP_STATUS_SUSPENDED: _ClassVar[StepStatus]
    STEP_STATUS_SUCCESS: _ClassVar[StepStatus]
    STEP_STATUS_FAILED: _ClassVar[StepStatus]
    STEP_STATUS_CANCELED: _ClassVar[StepStatus]
    STEP_STATUS_SKIPPED: _ClassVar[StepStatus]

class RunEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_EVENT_TYPE_UNSPECIFIED: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_WORKFLOW_START: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_STEP_START: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_STEP_RESULT: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_STEP_SUSPENDED: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_STEP_WAITING: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_STEP_OUTPUT: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_STEP_PROGRESS: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_WORKFLOW_CANCELED: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_WORKFLOW_FINISH: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_TIME_TRAVEL: _ClassVar[RunEventType]

class ExecutionCause(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXECUTION_CAUSE_UNSPECIFIED: _ClassVar[ExecutionCause]
    EXECUTION_CAUSE_START: _ClassVar[ExecutionCause]
    EXECUTION_CAUSE_RESUME: _ClassVar[ExecutionCause]
    EXECUTION_CAUSE_DEADLINE: _ClassVar[ExecutionCause]
    EXECUTION_CAUSE_TIME_TRAVEL: _ClassVar[ExecutionCause]
    EXECUTION_CAUSE_FORK: _ClassVar[ExecutionCause]

class StepGraphNodeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_GRAPH_NODE_KIND_UNSPECIFIED: _ClassVar[StepGraphNodeKind]
    STEP_GRAPH_NODE_KIND_STEP: _ClassVar[StepGraphNodeKind]
    STEP_GRAPH_NODE_KIND_PARALLEL: _ClassVar[StepGraphNodeKind]
    STEP_GRAPH_NODE_KIND_CONDITIONAL: _ClassVar[StepGraphNodeKind]
    STEP_GRAPH_NODE_KIND_LOOP: _ClassVar[StepGraphNodeKind]
    STEP_GRAPH_NODE_KIND_FOREACH: _ClassVar[StepGraphNodeKind]
    STEP_GRAPH_NODE_KIND_SLEEP: _ClassVar[StepGraphNodeKind]
    STEP_GRAPH_NODE_KIND_SLEEP_UNTIL: _ClassVar[StepGraphNodeKind]
    STEP_GRAPH_NODE_KIND_MAP: _ClassVar[StepGraphNodeKind]

class LoopKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOOP_KIND_UNSPECIFIED: _ClassVar[LoopKind]
    LOOP_KIND_DOWHILE: _ClassVar[LoopKind]
    LOOP_KIND_DOUNTIL: _ClassVar[LoopKind]
RUN_STATUS_UNSPECIFIED: RunStatus
RUN_STATUS_PENDING: RunStatus
RUN_STATUS_RUNNING: RunStatus
RUN_STATUS_WAITING: RunStatus
RUN_STATUS_SUSPENDED: RunStatus
RUN_STATUS_SUCCESS: RunStatus
RUN_STATUS_FAILED: RunStatus
RUN_STATUS_CANCELED: RunStatus
STEP_STATUS_UNSPECIFIED: StepStatus
STEP_STATUS_RUNNING: StepStatus
STEP_STATUS_WAITING: StepStatus
STEP_STATUS_SUSPENDED: StepStatus
STEP_STATUS_SUCCESS: StepStatus
STEP_STATUS_FAILED: StepStatus
STEP_STATUS_CANCELED: StepStatus
STEP_STATUS_SKIPPED: StepStatus
RUN_EVENT_TYPE_UNSPECIFIED: RunEventType
RUN_EVENT_TYPE_WORKFLOW_START: RunEventType
RUN_EVENT_TYPE_STEP_START: RunEventType
RUN_EVENT_TYPE_STEP_RESULT: RunEventType
RUN_EVENT_TYPE_STEP_SUSPENDED: RunEventType
RUN_EVENT_TYPE_STEP_WAITING: RunEventType
RUN_EVENT_TYPE_STEP_OUTPUT: RunEventType
RUN_EVENT_TYPE_STEP_PROGRESS: RunEventType
RUN_EVENT_TYPE_WORKFLOW_CANCELED: RunEventType
RUN_EVENT_TYPE_WORKFLOW_FINISH: RunEventType
RUN_EVENT_TYPE_TIME_TRAVEL: RunEventType
EXECUTION_CAUSE_UNSPECIFIED: ExecutionCause
EXECUTION_CAUSE_START: ExecutionCause
EXECUTION_CAUSE_RESUME: ExecutionCause
EXECUTION_CAUSE_DEADLINE: ExecutionCause
EXECUTION_CAUSE_TIME_TRAVEL: ExecutionCause
EXECUTION_CAUSE_FORK: ExecutionCause
STEP_GRAPH_NODE_KIND_UNSPECIFIED: StepGraphNodeKind
STEP_GRAPH_NODE_KIND_STEP: StepGraphNodeKind
STEP_GRAPH_NODE_KIND_PARALLEL: StepGraphNodeKind
STEP_GRAPH_NODE_KIND_CONDITIONAL: StepGraphNodeKind
STEP_GRAPH_NODE_KIND_LOOP: StepGraphNodeKind
STEP_GRAPH_NODE_KIND_FOREACH: StepGraphNodeKind
STEP_GRAPH_NODE_KIND_SLEEP: StepGraphNodeKind
STEP_GRAPH_NODE_KIND_SLEEP_UNTIL: StepGraphNodeKind
STEP_GRAPH_NODE_KIND_MAP: StepGraphNodeKind
LOOP_KIND_UNSPECIFIED: LoopKind
LOOP_KIND_DOWHILE: LoopKind
LOOP_KIND_DOUNTIL: LoopKind

class RunError(_message.Message):
    __slots__ = ("name", "message", "details", "cause")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    name: str
    message: str
    details: _struct_pb2.Value
    cause: RunError
    def __init__(self, name: _Optional[str] = ..., message: _Optional[str] = ..., details: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., cause: _Optional[_Union[RunError, _Mapping]] = ...) -> None: ...

class StepPath(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class StepRecord(_message.Message):
    __slots__ = ("path", "status", "payload", "output", "error", "suspend_payload", "resume_payload", "started_at", "ended_at", "suspended_at", "resumed_at", "attempt", "iteration", "resume_labels", "foreach_items", "wake_at", "suspend_output", "call_id")
    PATH_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SUSPEND_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    RESUME_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    SUSPENDED_AT_FIELD_NUMBER: _ClassVar[int]
    RESUMED_AT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    ITERATION_FIELD_NUMBER: _ClassVar[int]
    RESUME_LABELS_FIELD_NUMBER: _ClassVar[int]
    FOREACH_ITEMS_FIELD_NUMBER: _ClassVar[int]
    WAKE_AT_FIELD_NUMBER: _ClassVar[int]
    SUSPEND_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    path: StepPath
    status: StepStatus
    payload: _struct_pb2.Value
    output: _struct_pb2.Value
    error: RunError
    suspend_payload: _struct_pb2.Value
    resume_payload: _struct_pb2.Value
    started_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    suspended_at: _timestamp_pb2.Timestamp
    resumed_at: _timestamp_pb2.Timestamp
    attempt: int
    iteration: int
    resume_labels: _containers.RepeatedScalarFieldContainer[str]
    foreach_items: _containers.RepeatedCompositeFieldContainer[ForeachItem]
    wake_at: _timestamp_pb2.Timestamp
    suspend_output: _struct_pb2.Value
    call_id: str
    def __init__(self, path: _Optional[_Union[StepPath, _Mapping]] = ..., status: _Optional[_Union[StepStatus, str]] = ..., payload: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., output: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., error: _Optional[_Union[RunError, _Mapping]] = ..., suspend_payload: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., resume_payload: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., suspended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resumed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempt: _Optional[int] = ..., iteration: _Optional[int] = ..., resume_labels: _Optional[_Iterable[str]] = ..., foreach_items: _Optional[_Iterable[_Union[ForeachItem, _Mapping]]] = ..., wake_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., suspend_output: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., call_id: _Optional[str] = ...) -> None: ...

class ForeachItem(_message.Message):
    __slots__ = ("index", "status", "output", "suspend_payload", "error")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    SUSPEND_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    index: int
    status: StepStatus
    output: _struct_pb2.Value
    suspend_payload: _struct_pb2.Value
    error: RunError
    def __init__(self, index: _Optional[int] = ..., status: _Optional[_Union[StepStatus, str]] = ..., output: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., suspend_payload: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., error: _Optional[_Union[RunError, _Mapping]] = ...) -> None: ...

class ResumeLabelTarget(_message.Message):
    __slots__ = ("path", "has_for_each_index", "for_each_index")
    PATH_FIELD_NUMBER: _ClassVar[int]
    HAS_FOR_EACH_INDEX_FIELD_NUMBER: _ClassVar[int]
    FOR_EACH_INDEX_FIELD_NUMBER: _ClassVar[int]
    path: StepPath
    has_for_each_index: bool
    for_each_index: int
    def __init__(self, path: _Optional[_Union[StepPath, _Mapping]] = ..., has_for_each_index: _Optional[bool] = ..., for_each_index: _Optional[int] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("run_id", "workflow_id", "resource_id", "status", "input", "result", "error", "steps", "suspended", "state", "resume_labels", "request_context", "last_sequence", "create_time", "update_time", "start_time", "end_time", "trace_id", "wake_time", "forked_from_run_id", "forked_from_step", "time_travel_count", "time_travel_step", "deadline", "schedule_id", "schedule_tick_time", "definition_version", "definition_digest")
    class ResumeLabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ResumeLabelTarget
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ResumeLabelTarget, _Mapping]] = ...) -> None: ...
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    SUSPENDED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RESUME_LABELS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    WAKE_TIME_FIELD_NUMBER: _ClassVar[int]
    FORKED_FROM_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    FORKED_FROM_STEP_FIELD_NUMBER: _ClassVar[int]
    TIME_TRAVEL_COUNT_FIELD_NUMBER: _ClassVar[int]
    TIME_TRAVEL_STEP_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_TICK_TIME_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_DIGEST_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    workflow_id: str
    resource_id: str
    status: RunStatus
    input: _struct_pb2.Value
    result: _struct_pb2.Value
    error: RunError
    steps: _containers.RepeatedCompositeFieldContainer[StepRecord]
    suspended: _containers.RepeatedCompositeFieldContainer[StepPath]
    state: _struct_pb2.Value
    resume_labels: _containers.MessageMap[str, ResumeLabelTarget]
    request_context: _struct_pb2.Value
    last_sequence: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    trace_id: str
    wake_time: _timestamp_pb2.Timestamp
    forked_from_run_id: str
    forked_from_step: StepPath
    time_travel_count: int
    time_travel_step: StepPath
    deadline: _timestamp_pb2.Timestamp
    schedule_id: str
    schedule_tick_time: _timestamp_pb2.Timestamp
    definition_version: str
    definition_digest: str
    def __init__(self, run_id: _Optional[str] = ..., workflow_id: _Optional[str] = ..., resource_id: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., input: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., error: _Optional[_Union[RunError, _Mapping]] = ..., steps: _Optional[_Iterable[_Union[StepRecord, _Mapping]]] = ..., suspended: _Optional[_Iterable[_Union[StepPath, _Mapping]]] = ..., state: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., resume_labels: _Optional[_Mapping[str, ResumeLabelTarget]] = ..., request_context: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., last_sequence: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., trace_id: _Optional[str] = ..., wake_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., forked_from_run_id: _Optional[str] = ..., forked_from_step: _Optional[_Union[StepPath, _Mapping]] = ..., time_travel_count: _Optional[int] = ..., time_travel_step: _Optional[_Union[StepPath, _Mapping]] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., schedule_id: _Optional[str] = ..., schedule_tick_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., definition_version: _Optional[str] = ..., definition_digest: _Optional[str] = ...) -> None: ...

class StepProgress(_message.Message):
    __slots__ = ("completed_count", "total_count", "current_index", "iteration_status", "iteration_output")
    COMPLETED_COUNT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_INDEX_FIELD_NUMBER: _ClassVar[int]
    ITERATION_STATUS_FIELD_NUMBER: _ClassVar[int]
    ITERATION_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    completed_count: int
    total_count: int
    current_index: int
    iteration_status: StepStatus
    iteration_output: _struct_pb2.Value
    def __init__(self, completed_count: _Optional[int] = ..., total_count: _Optional[int] = ..., current_index: _Optional[int] = ..., iteration_status: _Optional[_Union[StepStatus, str]] = ..., iteration_output: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class RunEvent(_message.Message):
    __slots__ = ("sequence", "run_id", "time", "type", "step_path", "step", "run_status", "data", "error", "progress", "cause")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STEP_PATH_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    RUN_STATUS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    run_id: str
    time: _timestamp_pb2.Timestamp
    type: RunEventType
    step_path: StepPath
    step: StepRecord
    run_status: RunStatus
    data: _struct_pb2.Value
    error: RunError
    progress: StepProgress
    cause: ExecutionCause
    def __init__(self, sequence: _Optional[int] = ..., run_id: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., type: _Optional[_Union[RunEventType, str]] = ..., step_path: _Optional[_Union[StepPath, _Mapping]] = ..., step: _Optional[_Union[StepRecord, _Mapping]] = ..., run_status: _Optional[_Union[RunStatus, str]] = ..., data: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., error: _Optional[_Union[RunError, _Mapping]] = ..., progress: _Optional[_Union[StepProgress, _Mapping]] = ..., cause: _Optional[_Union[ExecutionCause, str]] = ...) -> None: ...

class WorkflowState(_message.Message):
    __slots__ = ("status", "steps", "result", "error")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    status: RunStatus
    steps: _containers.RepeatedCompositeFieldContainer[StepRecord]
    result: _struct_pb2.Value
    error: RunError
    def __init__(self, status: _Optional[_Union[RunStatus, str]] = ..., steps: _Optional[_Iterable[_Union[StepRecord, _Mapping]]] = ..., result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., error: _Optional[_Union[RunError, _Mapping]] = ...) -> None: ...

class StepGraphNode(_message.Message):
    __slots__ = ("kind", "id", "description", "children", "conditions", "loop_kind", "concurrency", "duration_ms", "until", "can_suspend", "workflow", "allow_failure", "map_config")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    LOOP_KIND_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    CAN_SUSPEND_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    ALLOW_FAILURE_FIELD_NUMBER: _ClassVar[int]
    MAP_CONFIG_FIELD_NUMBER: _ClassVar[int]
    kind: StepGraphNodeKind
    id: str
    description: str
    children: _containers.RepeatedCompositeFieldContainer[StepGraphNode]
    conditions: _containers.RepeatedScalarFieldContainer[str]
    loop_kind: LoopKind
    concurrency: int
    duration_ms: int
    until: _timestamp_pb2.Timestamp
    can_suspend: bool
    workflow: _containers.RepeatedCompositeFieldContainer[StepGraphNode]
    allow_failure: bool
    map_config: _struct_pb2.Value
    def __init__(self, kind: _Optional[_Union[StepGraphNodeKind, str]] = ..., id: _Optional[str] = ..., description: _Optional[str] = ..., children: _Optional[_Iterable[_Union[StepGraphNode, _Mapping]]] = ..., conditions: _Optional[_Iterable[str]] = ..., loop_kind: _Optional[_Union[LoopKind, str]] = ..., concurrency: _Optional[int] = ..., duration_ms: _Optional[int] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., can_suspend: _Optional[bool] = ..., workflow: _Optional[_Iterable[_Union[StepGraphNode, _Mapping]]] = ..., allow_failure: _Optional[bool] = ..., map_config: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class StepInfo(_message.Message):
    __slots__ = ("id", "description", "input_schema", "output_schema", "resume_schema", "suspend_schema", "can_suspend", "is_workflow", "retries", "timeout")
    ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    RESUME_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    SUSPEND_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    CAN_SUSPEND_FIELD_NUMBER: _ClassVar[int]
    IS_WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    id: str
    description: str
    input_schema: _struct_pb2.Value
    output_schema: _struct_pb2.Value
    resume_schema: _struct_pb2.Value
    suspend_schema: _struct_pb2.Value
    can_suspend: bool
    is_workflow: bool
    retries: int
    timeout: _duration_pb2.Duration
    def __init__(self, id: _Optional[str] = ..., description: _Optional[str] = ..., input_schema: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., output_schema: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., resume_schema: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., suspend_schema: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., can_suspend: _Optional[bool] = ..., is_workflow: _Optional[bool] = ..., retries: _Optional[int] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Workflow(_message.Message):
    __slots__ = ("id", "description", "input_schema", "output_schema", "state_schema", "steps", "step_graph", "timeout", "max_active_runs", "version", "digest", "versions")
    ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    STATE_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    STEP_GRAPH_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MAX_ACTIVE_RUNS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    id: str
    description: str
    input_schema: _struct_pb2.Value
    output_schema: _struct_pb2.Value
    state_schema: _struct_pb2.Value
    steps: _containers.RepeatedCompositeFieldContainer[StepInfo]
    step_graph: _containers.RepeatedCompositeFieldContainer[StepGraphNode]
    timeout: _duration_pb2.Duration
    max_active_runs: int
    version: str
    digest: str
    versions: _containers.RepeatedCompositeFieldContainer[WorkflowVersion]
    def __init__(self, id: _Optional[str] = ..., description: _Optional[str] = ..., input_schema: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., output_schema: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., state_schema: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., steps: _Optional[_Iterable[_Union[StepInfo, _Mapping]]] = ..., step_graph: _Optional[_Iterable[_Union[StepGraphNode, _Mapping]]] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_active_runs: _Optional[int] = ..., version: _Optional[str] = ..., digest: _Optional[str] = ..., versions: _Optional[_Iterable[_Union[WorkflowVersion, _Mapping]]] = ...) -> None: ...

class WorkflowVersion(_message.Message):
    __slots__ = ("version", "digest", "newest")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    NEWEST_FIELD_NUMBER: _ClassVar[int]
    version: str
    digest: str
    newest: bool
    def __init__(self, version: _Optional[str] = ..., digest: _Optional[str] = ..., newest: _Optional[bool] = ...) -> None: ...
