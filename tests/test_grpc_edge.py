"""The gRPC edge through a real server: contract shapes, rich errors, streams, health, reflection, client."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from conftest import HEARTBEAT, Served, ServingFactory, serving_on
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from pydantic import BaseModel
from run_writes import orphan

from runservice import errors
from runservice.client import Client, event_from_proto
from runservice.engine import Engine
from runservice.engine import engine as engine_module
from runservice.model import Event, EventDraft, EventType, Run, RunStatus, StepStatus
from runservice.server import servicer as servicer_module
from runservice.server.app import EdgeOptions, build_server
from runservice.server.status import to_status
from runservice.storage import Claim, RunWrite
from runservice.storage.sqlite import SqliteStore
from runservice.v1 import run_pb2, run_service_pb2, run_service_pb2_grpc
from runservice.wire import from_value, to_value

if TYPE_CHECKING:
    from runservice.v1.run_service_pb2_grpc import RunServiceAsyncStub

pytestmark = pytest.mark.timeout(30)


def rich(exc: grpc.aio.AioRpcError) -> tuple[status_pb2.Status, error_details_pb2.ErrorInfo, list[Any]]:
    """The google.rpc.Status of a failed call, its ErrorInfo and its field violations."""
    raw = dict(exc.trailing_metadata() or ())["grpc-status-details-bin"]
    assert isinstance(raw, bytes)
    status = status_pb2.Status.FromString(raw)
    info = error_details_pb2.ErrorInfo()
    violations: list[Any] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations.extend(bad.field_violations)
    assert status.code == exc.code().value[0]
    return status, info, violations


def count(n: int) -> struct_pb2.Value:
    return to_value({"count": n})


# -- JSON values -----------------------------------------------------------------------------


def test_values_round_trip_and_whole_numbers_come_back_as_ints() -> None:
    data = {"a": 3, "b": 2.5, "c": [True, None, "x", {}], "d": {"e": -(2**53)}, "f": 2.0**60}
    back = from_value(to_value(data))
    assert back == data
    assert type(back["a"]) is int and type(back["d"]["e"]) is int
    assert type(back["f"]) is float  # beyond 2^53 a double is not a trustworthy int
    assert from_value(struct_pb2.Value()) is None


def test_values_accept_json_like_types_and_refuse_others() -> None:
    class Label(str):
        pass

    class Shape(BaseModel):
        sides: int

    data = {
        "tuple": (1, "a"),
        "mapping": MappingProxyType({"k": False}),
        "label": Label("x"),
        "flag": True,
        "model": Shape(sides=3),
        1: "int key",
    }
    assert from_value(to_value(data)) == {
        "tuple": [1, "a"],
        "mapping": {"k": False},
        "label": "x",
        "flag": True,
        "model": {"sides": 3},
        "1": "int key",
    }
    assert from_value(to_value([])) == [] and from_value(to_value({})) == {}
    with pytest.raises(TypeError, match="not JSON data: set"):
        to_value({"bad": {1, 2}})


# -- workflows -------------------------------------------------------------------------------


async def test_list_and_get_workflow(client: Client) -> None:
    listed = await client.list_workflows()
    assert [wf.id for wf in listed] == ["approval", "echo", "shapes"]
    details = await client.get_workflow("approval").details()
    assert details.description == "Asks a human"
    assert details.input_schema["type"] == "object"
    assert details.input_schema["properties"]["count"]["type"] == "integer"
    assert details.output_schema["required"] == ["verdict"]
    assert details.state_schema is None
    ask = details.steps["ask"]
    assert ask.can_suspend and ask.resume_schema["properties"]["approved"]["type"] == "boolean"
    assert ask.suspend_schema["required"] == ["question"]
    assert details.steps["bump"].resume_schema is None
    assert [node["id"] for node in details.step_graph] == ["bump", "ask", "report"]
    assert details.step_graph[1] == {
        "type": "step",
        "id": "ask",
        "description": "Suspends until a decision comes in.",
        "can_suspend": True,
    }


async def test_step_graph_shapes(stub: RunServiceAsyncStub) -> None:
    response = await stub.GetWorkflow(run_service_pb2.GetWorkflowRequest(workflow_id="shapes"))
    workflow = response.workflow
    kinds = [node.kind for node in workflow.step_graph]
    assert kinds == [
        run_pb2.STEP_GRAPH_NODE_KIND_STEP,
        run_pb2.STEP_GRAPH_NODE_KIND_PARALLEL,
        run_pb2.STEP_GRAPH_NODE_KIND_SLEEP,
        run_pb2.STEP_GRAPH_NODE_KIND_MAP,
    ]
    nested, parallel, sleep, mapping = workflow.step_graph
    assert [child.id for child in nested.workflow] == ["inner-bump"]
    assert [child.id for child in parallel.children] == ["double", "triple"]
    assert sleep.duration_ms == 10
    assert from_value(mapping.map_config) == {"total": {"value": 1}}
    assert [step.id for step in workflow.steps] == [
        "inner",
        "inner.inner-bump",
        "double",
        "triple",
        mapping.id,
    ]
    assert workflow.steps[0].is_workflow


# -- rich errors (raw stubs) -----------------------------------------------------------------


async def test_unknown_workflow_is_not_found_with_reason(stub: RunServiceAsyncStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetWorkflow(run_service_pb2.GetWorkflowRequest(workflow_id="nope"))
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    _, info, _ = rich(caught.value)
    assert (info.reason, info.domain) == ("WORKFLOW_NOT_FOUND", "runservice.dev")
    assert info.metadata["workflow_id"] == "nope"


async def test_unknown_run_is_not_found_with_reason(stub: RunServiceAsyncStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetRun(run_service_pb2.GetRunRequest(run_id="missing-run"))
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    _, info, _ = rich(caught.value)
    assert info.reason == "RUN_NOT_FOUND" and info.metadata["run_id"] == "missing-run"


async def test_missing_and_malformed_run_ids_are_field_violations(stub: RunServiceAsyncStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetRun(run_service_pb2.GetRunRequest())
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    _, info, violations = rich(caught.value)
    assert info.reason == "INVALID_REQUEST"
    assert [v.field for v in violations] == ["run_id"]

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Start(
            run_service_pb2.StartRequest(workflow_id="echo", run_id="bad id!", input_data=count(1))
        )
    assert [v.field for v in rich(caught.value)[2]] == ["run_id"]

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListRuns(run_service_pb2.ListRunsRequest(page_size=-1))
    assert [v.field for v in rich(caught.value)[2]] == ["page_size"]

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Start(
            run_service_pb2.StartRequest(
                workflow_id="echo", input_data=count(1), request_context=to_value([1])
            )
        )
    assert [v.field for v in rich(caught.value)[2]] == ["request_context"]


async def test_input_failing_its_schema_leaves_the_run_startable(stub: RunServiceAsyncStub) -> None:
    bad = run_service_pb2.StartRequest(
        workflow_id="echo", run_id="r-schema", input_data=to_value({"count": "many"}), wait=True
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Start(bad)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    _, info, violations = rich(caught.value)
    assert info.reason == "VALIDATION_FAILED"
    assert any("count" in v.field for v in violations)

    good = run_service_pb2.StartRequest(workflow_id="echo", run_id="r-schema", input_data=count(1), wait=True)
    run = (await stub.Start(good)).run
    assert run.status == run_pb2.RUN_STATUS_SUCCESS
    assert from_value(run.result) == {"count": 2}


async def test_restart_redrives_an_orphaned_run_and_refuses_an_inactive_one(
    stub: RunServiceAsyncStub, served: Served
) -> None:
    await stub.CreateRun(run_service_pb2.CreateRunRequest(workflow_id="echo", run_id="r-restart"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Restart(run_service_pb2.RestartRequest(run_id="r-restart"))
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert rich(caught.value)[1].reason == "RUN_NOT_ACTIVE"

    assert (await served.store.write(orphan("r-orphan", "echo", {"count": 41}))).applied
    reply = await stub.Restart(run_service_pb2.RestartRequest(run_id="r-orphan", wait=True))
    assert reply.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert from_value(reply.run.result) == {"count": 42}
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await stub.Restart(run_service_pb2.RestartRequest(run_id="r-orphan"))
    assert rich(again.value)[1].reason == "RUN_NOT_ACTIVE"


# -- health and reflection -------------------------------------------------------------------


async def test_health_reports_serving(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "runservice.v1.RunService"):
        response = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_services(channel: grpc.aio.Channel) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    response = await call.read()
    assert isinstance(response, reflection_pb2.ServerReflectionResponse)
    names = {service.name for service in response.list_services_response.service}
    assert {"runservice.v1.RunService", "grpc.health.v1.Health"} <= names
    call.cancel()


# -- streams ---------------------------------------------------------------------------------


async def test_stream_ends_with_end_of_stream_and_the_final_run(stub: RunServiceAsyncStub) -> None:
    request = run_service_pb2.StreamRequest(
        start=run_service_pb2.StartRequest(workflow_id="echo", run_id="r-stream", input_data=count(3))
    )
    messages = [msg async for msg in stub.Stream(request)]
    events = [event for msg in messages for event in msg.events]
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert events[0].type == run_pb2.RUN_EVENT_TYPE_WORKFLOW_START
    assert events[-1].type == run_pb2.RUN_EVENT_TYPE_WORKFLOW_FINISH
    last = messages[-1]
    assert last.end_of_stream and not last.events and last.run_id == "r-stream"
    assert last.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert from_value(last.run.result) == {"count": 4}
    assert [list(step.path.ids) for step in last.run.steps] == [["bump"]]
    assert all(not msg.end_of_stream for msg in messages[:-1])


async def test_stream_of_a_refused_start_fails_before_any_message(stub: RunServiceAsyncStub) -> None:
    request = run_service_pb2.StreamRequest(start=run_service_pb2.StartRequest(workflow_id="nope"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.Stream(request):
            pytest.fail("no message expected")
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.Stream(run_service_pb2.StreamRequest()):
            pytest.fail("no message expected")
    assert [v.field for v in rich(caught.value)[2]] == ["action"]


async def _suspended_run(stub: RunServiceAsyncStub, run_id: str) -> run_pb2.Run:
    request = run_service_pb2.StartRequest(
        workflow_id="approval", run_id=run_id, input_data=count(1), wait=True
    )
    run = (await stub.Start(request)).run
    assert run.status == run_pb2.RUN_STATUS_SUSPENDED
    return run


async def test_watch_sends_heartbeats_when_idle(stub: RunServiceAsyncStub) -> None:
    run = await _suspended_run(stub, "r-idle")
    call = stub.Watch(run_service_pb2.WatchRequest(run_id="r-idle"))
    seen: list[run_service_pb2.WatchResponse] = []
    loop = asyncio.get_running_loop()
    began = loop.time()
    async for msg in call:
        seen.append(msg)
        if sum(1 for m in seen if not m.events) >= 2:
            break
    call.cancel()
    events = [e for m in seen for e in m.events]
    assert [e.sequence for e in events] == list(range(1, run.last_sequence + 1))
    heartbeats = [m for m in seen if not m.events]
    assert all(m.watermark_sequence == run.last_sequence and not m.end_of_stream for m in heartbeats)
    assert loop.time() - began < 10 * HEARTBEAT + 2


async def test_long_streams_are_ended_by_the_server_and_the_client_loses_nothing(
    stub: RunServiceAsyncStub, served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connections are recycled with no cut of the calls under way (a Start or Resume with
    `wait` lasts as long as its run: a 30 s grace cut them, an audit), so the server ends long
    streams itself after STREAM_AGE: UNAVAILABLE STREAM_RECYCLED, after a whole batch, and
    the client opens the Watch again after its last sequence."""
    monkeypatch.setattr(servicer_module, "STREAM_AGE", 0.5)
    run = await _suspended_run(stub, "r-aged")
    call = stub.Watch(run_service_pb2.WatchRequest(run_id="r-aged"))
    loop = asyncio.get_running_loop()
    began = loop.time()
    seen: list[run_service_pb2.WatchResponse] = []
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        async for msg in call:
            seen.append(msg)
    took = loop.time() - began
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
    assert rich(ended.value)[1].reason == "STREAM_RECYCLED"
    assert 0.45 <= took < 0.5 + HEARTBEAT + 1  # within a heartbeat of its age
    assert [e.sequence for m in seen for e in m.events] == list(range(1, run.last_sequence + 1))

    async with Client(served.address, timeout=10.0) as client:

        async def followed() -> list[Event]:
            return [event async for event in client.follow("r-aged", 0, until_settled=True)]

        following = asyncio.create_task(followed())
        await asyncio.sleep(1.6)  # three streams' worth
        await stub.Resume(
            run_service_pb2.ResumeRequest(
                run_id="r-aged", step=["ask"], resume_data=to_value({"approved": True})
            )
        )
        events = await asyncio.wait_for(following, 10)
    assert [e.sequence for e in events] == list(range(1, events[-1].sequence + 1))
    assert events[-1].type is EventType.WORKFLOW_FINISH


async def test_a_stream_past_its_age_still_ends_with_the_run(
    stub: RunServiceAsyncStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The message that ends the run is followed by the end, not by STREAM_RECYCLED (review):
    a recycled stream costs its client a reconnect to learn what the next message said."""
    monkeypatch.setattr(servicer_module, "STREAM_AGE", 0.0)  # every stream is past its age
    run = await _suspended_run(stub, "r-past-age")
    await stub.Resume(
        run_service_pb2.ResumeRequest(
            run_id=run.run_id, step=["ask"], resume_data=to_value({"approved": True}), wait=True
        )
    )
    # The whole log in one message (the backlog of a short run), its last event the finish.
    watched = [msg async for msg in stub.Watch(run_service_pb2.WatchRequest(run_id=run.run_id))]
    assert watched[-1].end_of_stream


async def test_watch_include_run_comes_first(stub: RunServiceAsyncStub) -> None:
    run = await _suspended_run(stub, "r-first")
    call = stub.Watch(
        run_service_pb2.WatchRequest(run_id="r-first", after_sequence=run.last_sequence, include_run=True)
    )
    first = await call.read()
    assert isinstance(first, run_service_pb2.WatchResponse)
    assert first.HasField("run") and not first.events
    assert first.run.status == run_pb2.RUN_STATUS_SUSPENDED
    assert [list(p.ids) for p in first.run.suspended] == [["ask"]]
    assert first.watermark_sequence == run.last_sequence
    second = await call.read()  # nothing new: a heartbeat
    assert isinstance(second, run_service_pb2.WatchResponse)
    assert not second.events and not second.HasField("run")
    call.cancel()


async def test_a_refused_watch_with_include_run_sends_nothing_first(
    served: Served, stub: RunServiceAsyncStub
) -> None:
    """A Watch refused at once ends with its status before any message: the run asked for
    (include_run) came first, with the cursor past its end as its watermark (audit)."""
    run = await _suspended_run(stub, "r-refused")

    async def refused(request: run_service_pb2.WatchRequest) -> grpc.aio.AioRpcError:
        got: list[run_service_pb2.WatchResponse] = []
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            async with asyncio.timeout(5):
                async for reply in stub.Watch(request):
                    got.append(reply)
        assert got == []
        return ended.value

    past = run_service_pb2.WatchRequest(
        run_id="r-refused", after_sequence=run.last_sequence + 50, include_run=True
    )
    assert (await refused(past)).code() is grpc.StatusCode.INVALID_ARGUMENT
    # What follows the run read is that run, not one made anew under its id since.
    with pytest.raises(errors.RunNotFound):
        await anext(served.engine.follow("r-refused", born=-1.0))
    served.engine.drain()  # as a stop does, before the listener closes
    drained = await refused(run_service_pb2.WatchRequest(run_id="r-refused", include_run=True))
    assert drained.code() is grpc.StatusCode.UNAVAILABLE
    assert rich(drained)[1].reason == "SERVER_DRAINING"


@pytest.mark.parametrize("with_states", [False, True], ids=["shared", "with-states"])
async def test_a_watch_watermark_never_goes_back(tmp_path: Path, with_states: bool) -> None:
    """A batch over the send limit is split: each part has the stream's watermark, which no
    message tells lower than one before. The first part had its own last event as watermark,
    below the run's last sequence the include_run message had told (audit)."""
    store = SqliteStore(str(tmp_path / "runs.db"))
    await store.open()
    try:
        run = Run(run_id="big", workflow_id="wf", status=RunStatus.RUNNING, created_at=1.0, updated_at=1.0)
        output = EventDraft(type=EventType.STEP_OUTPUT, run_status=RunStatus.RUNNING, data="p" * 100_000)
        await store.write(RunWrite("big", create=run, events=(output,) * 5))
        finish = EventDraft(type=EventType.WORKFLOW_FINISH, run_status=RunStatus.SUCCESS, data=1)
        await store.write(RunWrite("big", patch={"status": RunStatus.SUCCESS}, events=(finish,)))
        async with Engine(store, [], heartbeat=HEARTBEAT) as engine:
            # 256 KiB messages: the six events, 500 KB, are one page and need three messages.
            server = build_server(
                engine, heartbeat=HEARTBEAT, options=EdgeOptions(max_message_size=256 * 1024)
            )
            await server.start()
            try:
                async with grpc.aio.insecure_channel(server.address) as channel:
                    request = run_service_pb2.WatchRequest(
                        run_id="big", include_run=True, include_workflow_state=with_states
                    )
                    async with asyncio.timeout(10):
                        replies = [
                            r async for r in run_service_pb2_grpc.RunServiceStub(channel).Watch(request)
                        ]
            finally:
                await server.stop(0.5)
    finally:
        await store.close()
    assert replies[0].HasField("run") and replies[0].watermark_sequence == 6
    assert [e.sequence for r in replies for e in r.events] == [1, 2, 3, 4, 5, 6]
    assert sum(1 for r in replies if r.events) > 1  # split
    marks = [r.watermark_sequence for r in replies]
    assert marks == sorted(marks) and all(m == 6 for m in marks), marks
    assert replies[-1].end_of_stream


async def test_watch_with_workflow_state_across_resume(stub: RunServiceAsyncStub) -> None:
    run = await _suspended_run(stub, "r-state")
    cursor = 2  # after WORKFLOW_START and the first STEP_START: the state is seeded from them
    call = stub.Watch(
        run_service_pb2.WatchRequest(run_id="r-state", after_sequence=cursor, include_workflow_state=True)
    )
    await stub.Resume(
        run_service_pb2.ResumeRequest(
            run_id="r-state", step=["ask"], resume_data=to_value({"approved": True})
        )
    )
    messages = [msg async for msg in call]
    assert messages[-1].end_of_stream
    with_events = [m for m in messages if m.events]
    for msg in with_events:
        assert len(msg.workflow_states) == len(msg.events)
        assert msg.watermark_sequence == msg.events[-1].sequence
    events = [e for m in with_events for e in m.events]
    states = [s for m in with_events for s in m.workflow_states]
    assert events[0].sequence == cursor + 1 and events[-1].sequence > run.last_sequence
    assert states[0].steps[0].path.ids == ["bump"]  # known from the seed, before event 3
    final = states[-1]
    assert final.status == run_pb2.RUN_STATUS_SUCCESS
    assert from_value(final.result) == {"verdict": "approved"}
    assert [list(s.path.ids) for s in final.steps] == [["bump"], ["ask"], ["report"]]
    assert messages[-1].watermark_sequence == events[-1].sequence


async def test_watch_of_a_finished_run_replays_and_ends(stub: RunServiceAsyncStub) -> None:
    start = run_service_pb2.StartRequest(workflow_id="echo", run_id="r-done", input_data=count(1), wait=True)
    run = (await stub.Start(start)).run
    messages = [msg async for msg in stub.Watch(run_service_pb2.WatchRequest(run_id="r-done"))]
    assert messages[-1].end_of_stream
    assert [e.sequence for m in messages for e in m.events] == list(range(1, run.last_sequence + 1))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.Watch(run_service_pb2.WatchRequest(run_id="r-nope")):
            pass
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


async def test_a_watch_paging_through_its_backlog_ends_at_the_drain(tmp_path: Path) -> None:
    """A stop ends a Watch still paging slowly through a long stored backlog within about a
    page, UNAVAILABLE with SERVER_DRAINING, and returns without waiting out its grace. Only the
    live part looked at the drain: the reader kept paging for the whole grace, then got gRPC's
    own UNAVAILABLE ("Cancelling all calls") without ErrorInfo (audit)."""
    grace = 2.0
    async with serving_on(tmp_path / "runs.db") as served:
        # Suspended: nothing drives it, and a Watch would go live after its backlog.
        run = Run(run_id="long", workflow_id="wf", status=RunStatus.SUSPENDED, created_at=1.0, updated_at=1.0)
        output = EventDraft(type=EventType.STEP_OUTPUT, run_status=RunStatus.SUSPENDED, data="x" * 2000)
        await served.store.write(RunWrite("long", create=run, events=(output,) * 1000))
        for _ in range(11):  # pages are bounded in bytes: a dozen pages or more
            await served.store.write(RunWrite("long", events=(output,) * 1000), durable=False)
        seen: list[int] = []
        async with grpc.aio.insecure_channel(served.address) as channel:
            call = run_service_pb2_grpc.RunServiceStub(channel).Watch(
                run_service_pb2.WatchRequest(run_id="long")
            )

            async def read_slowly() -> None:
                async for reply in call:
                    assert not reply.end_of_stream
                    seen.extend(e.sequence for e in reply.events)
                    await asyncio.sleep(0.3)

            reader = asyncio.create_task(read_slowly())
            async with asyncio.timeout(10):
                while not seen:
                    await asyncio.sleep(0.01)
            loop = asyncio.get_running_loop()
            began = loop.time()
            await served.server.stop(grace)
            stopped = loop.time() - began
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                async with asyncio.timeout(10):
                    await reader
            watched = loop.time() - began
    assert stopped < grace / 2 and watched < grace / 2, (stopped, watched, ended.value.details())
    assert ended.value.code() is grpc.StatusCode.UNAVAILABLE
    assert rich(ended.value)[1].reason == "SERVER_DRAINING"
    assert seen == list(range(1, len(seen) + 1)) and len(seen) < 12_000


# -- the client ------------------------------------------------------------------------------


async def test_client_suspend_resume_and_reads(client: Client) -> None:
    wf = client.get_workflow("approval")
    run = await wf.create_run(run_id="c-approval", resource_id="user-1")
    assert run.run_id == "c-approval" and run.last_run and run.last_run.status is RunStatus.PENDING
    suspended = await run.start_async(input_data={"count": 1}, request_context={"tenant": "t1"})
    assert suspended.status is RunStatus.SUSPENDED
    assert suspended.suspended == (("ask",),)
    ask = next(s for s in suspended.steps if s.path == ("ask",))
    assert ask.status is StepStatus.SUSPENDED and ask.suspend_payload == {"question": "approve 2?"}
    assert suspended.request_context == {"tenant": "t1"} and suspended.resource_id == "user-1"

    done = await run.resume_async(step="ask", resume_data={"approved": True})
    assert done.status is RunStatus.SUCCESS and done.result == {"verdict": "approved"}
    bump = next(s for s in done.steps if s.path == ("bump",))
    assert bump.output == {"count": 2} and type(bump.output["count"]) is int
    assert done.started_at and done.ended_at and done.started_at <= done.ended_at

    fetched = await wf.run_execution_result("c-approval")
    assert fetched.status is RunStatus.SUCCESS and fetched.last_sequence == done.last_sequence
    runs, token = await wf.runs(status=RunStatus.SUCCESS, resource_id="user-1")
    assert [r.run_id for r in runs] == ["c-approval"] and token == ""
    await wf.delete_run_by_id("c-approval")
    with pytest.raises(errors.RunNotFound):
        await wf.run_by_id("c-approval")


async def test_client_errors_are_service_exceptions(client: Client) -> None:
    with pytest.raises(errors.WorkflowNotFound) as not_found:
        await client.get_workflow("nope").details()
    assert not_found.value.reason == "WORKFLOW_NOT_FOUND"
    assert not_found.value.metadata == {"workflow_id": "nope"}

    echo = await client.get_workflow("echo").create_run(run_id="c-errors")
    with pytest.raises(errors.ValidationFailed) as invalid:
        await echo.start(input_data={"count": "x"})
    assert isinstance(invalid.value, errors.InvalidArgument)
    assert [v.field for v in invalid.value.violations] == ["input_data.count"]

    await echo.start_async(input_data={"count": 1})
    with pytest.raises(errors.RunAlreadyStarted) as started:
        await echo.start(input_data={"count": 1})
    assert started.value.metadata["run_id"] == "c-errors"

    with pytest.raises(errors.RunNotSuspended) as not_suspended:
        await echo.resume(resume_data={})
    assert not_suspended.value.reason == "RUN_NOT_SUSPENDED"
    assert isinstance(not_suspended.value, errors.FailedPrecondition)

    with pytest.raises(errors.RunNotActive) as not_active:
        await echo.restart()
    assert not_active.value.metadata["status"] == "success"


async def test_a_resume_of_a_run_another_drive_holds_is_unavailable_run_claimed(
    served: Served, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "CLAIMED_RUN_RETRIES", (0.01,))
    run = await client.get_workflow("approval").create_run(run_id="c-held")
    assert (await run.start_async(input_data={"count": 1})).status is RunStatus.SUSPENDED
    # Another replica's claim loop holds it (as when a deadline of the run passed).
    hold = RunWrite("c-held", expect=frozenset({RunStatus.SUSPENDED}), claim=Claim("other-replica", 60))
    assert (await served.store.write(hold)).applied
    with pytest.raises(errors.RunClaimed) as held:
        await run.resume_async(resume_data={"approved": True})
    # The request id the client made for it comes with it: a retry of the same resume.
    assert held.value.reason == "RUN_CLAIMED" and held.value.metadata["run_id"] == "c-held"
    assert held.value.metadata.keys() == {"run_id", "request_id"}
    assert isinstance(held.value, errors.Unavailable)  # retryable, as for a draining server


async def test_client_stream_and_resume_stream(client: Client) -> None:
    run = await client.get_workflow("approval").create_run(run_id="c-stream")
    first = [event async for event in run.stream(input_data={"count": 5})]
    assert first[0].type is EventType.WORKFLOW_START
    assert first[-1].type is EventType.WORKFLOW_FINISH and first[-1].run_status is RunStatus.SUSPENDED
    assert run.last_run is not None and run.last_run.status is RunStatus.SUSPENDED

    second = [event async for event in run.resume_stream(resume_data={"approved": False}, step=["ask"])]
    assert second[0].type is EventType.WORKFLOW_START and second[0].sequence == first[-1].sequence + 1
    assert second[-1].ends_run and second[-1].data == {"verdict": "rejected"}
    ended: Run | None = run.last_run  # a fresh name: mypy still narrows run.last_run from above
    assert ended is not None and ended.status is RunStatus.SUCCESS and ended.result == {"verdict": "rejected"}


async def test_client_watch_callback_sees_every_event(client: Client) -> None:
    run = await client.get_workflow("approval").create_run(run_id="c-watch")
    seen: list[Event] = []
    finished = asyncio.Event()

    async def on_event(event: Event) -> None:
        seen.append(event)
        if event.ends_run:
            finished.set()

    unwatch = run.watch(on_event)
    await run.start_async(input_data={"count": 1})
    await run.resume_async(resume_data={"approved": True})
    await asyncio.wait_for(finished.wait(), 10)
    unwatch()
    assert [e.sequence for e in seen] == list(range(1, len(seen) + 1))
    assert seen[-1].run_status is RunStatus.SUCCESS


async def test_watch_events_resume_after_a_server_restart(
    tmp_path: Path, serving: ServingFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="runservice.client")
    db = tmp_path / "restart.db"
    async with serving(db) as first:
        address = first.address
        client = Client(address, timeout=10.0)
        run = await client.get_workflow("approval").create_run(run_id="c-reconnect")
        await run.start_async(input_data={"count": 1})
        seen: list[Event] = []

        settled = asyncio.Event()

        async def collect() -> None:
            async for event in run.watch_events():
                seen.append(event)
                if event.settles_run:
                    settled.set()

        watching = asyncio.create_task(collect())
        await asyncio.wait_for(settled.wait(), 10)
    # The first server drained: the watch got UNAVAILABLE and is now reconnecting.
    async with serving(db, address=address), Client(address, timeout=10.0) as other:
        # A second client: the first one's channel may still be backing off its reconnect.
        again = await other.get_workflow("approval").create_run(run_id="c-reconnect")
        resumed = await again.resume_async(resume_data={"approved": True})
        assert resumed.status is RunStatus.SUCCESS
        await asyncio.wait_for(watching, 15)
    await client.close()
    assert "watch of run c-reconnect ended with UNAVAILABLE" in caplog.text
    assert [e.sequence for e in seen] == list(range(1, len(seen) + 1))
    assert seen[-1].ends_run and seen[-1].run_status is RunStatus.SUCCESS


def test_unknown_event_kinds_are_skipped() -> None:
    assert event_from_proto(run_pb2.RunEvent(sequence=1, type=99)) is None  # type: ignore[arg-type]


async def test_served_fixture_exposes_the_engine(served: Served) -> None:
    assert set(served.engine.workflows) == {"approval", "echo", "shapes"}


# -- status mapping --------------------------------------------------------------------------


class _Gone(errors.NotFound):
    reason = "GONE_FOR_GOOD"


def test_status_code_is_found_along_the_mro_and_bugs_stay_private(caplog: pytest.LogCaptureFixture) -> None:
    gone = to_status(_Gone("it left", metadata={"id": "7"}))
    assert gone.code is grpc.StatusCode.NOT_FOUND and gone.details == "it left"

    with caplog.at_level(logging.ERROR, logger="runservice.server.status"):
        bug = to_status(RuntimeError("secret path /etc/x"), method="GetRun")
    assert bug.code is grpc.StatusCode.INTERNAL and bug.details == "internal error"
    raw = dict(bug.trailing_metadata)["grpc-status-details-bin"]
    assert b"secret" not in raw
    assert "secret path" in caplog.text  # logged for the operator, with its traceback


async def test_transport_failures_become_service_errors() -> None:
    async with Client("127.0.0.1:1", timeout=5.0) as client:
        with pytest.raises(errors.Unavailable) as caught:
            await client.list_workflows()
    assert caught.value.reason == "UNAVAILABLE"
