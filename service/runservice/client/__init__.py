"""Python clients of RunService: `Client` (asyncio) and `SyncClient` (blocking), same methods.

    async with Client("127.0.0.1:50051") as client:           # asyncio
        run = await client.get_workflow("city-weather").create_run()
        result = await run.start_async(input_data={"city": "Paris"})

    with SyncClient("127.0.0.1:50051") as client:              # Django, Flask, scripts
        run = client.get_workflow("city-weather").create_run()
        result = run.start_async(input_data={"city": "Paris"})

Modules: `aio` (the async client and its handles), `sync` (the blocking one), `convert`
(protobuf <-> model, request building), `status` (errors and reconnect rules), `channel`
(TLS, metadata, the published service config and retry policy), `health` (the standard
health check).
"""

from runservice.client.aio import Client, RunHandle, WatchHandle, WorkflowHandle
from runservice.client.channel import (
    DEFAULT_RETRY,
    RetryPolicy,
    TlsFiles,
    published_service_config,
    service_config,
)
from runservice.client.convert import (
    RunView,
    StepInfo,
    StepRef,
    WorkflowInfo,
    event_from_proto,
    run_from_proto,
    step_from_proto,
    workflow_from_proto,
)
from runservice.client.health import RUN_SERVICE_NAME, check_health
from runservice.client.schedules import ScheduleInfo, TriggerResult
from runservice.client.status import error_from_rpc
from runservice.client.sync import SyncClient, SyncRunHandle, SyncWatchHandle, SyncWorkflowHandle

__all__ = [
    "DEFAULT_RETRY",
    "RUN_SERVICE_NAME",
    "Client",
    "RetryPolicy",
    "RunHandle",
    "RunView",
    "ScheduleInfo",
    "StepInfo",
    "StepRef",
    "SyncClient",
    "SyncRunHandle",
    "SyncWatchHandle",
    "SyncWorkflowHandle",
    "TlsFiles",
    "TriggerResult",
    "WatchHandle",
    "WorkflowHandle",
    "WorkflowInfo",
    "check_health",
    "error_from_rpc",
    "event_from_proto",
    "published_service_config",
    "run_from_proto",
    "service_config",
    "step_from_proto",
    "workflow_from_proto",
]
