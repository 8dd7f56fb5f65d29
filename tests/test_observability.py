"""Metrics, traces and logs through a real server: real calls, a real scrape, real spans and log lines."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otlp_collector import Collector, grpc_collector
from process import serve_argv, start_server
from pydantic import BaseModel
from scraping import get, scrape, value

from runservice import logs
from runservice.client import Client, RunHandle, SyncClient, SyncRunHandle
from runservice.config import ConfigError, Settings
from runservice.engine import Engine
from runservice.model import Event, EventType, Execution, Run, RunStatus
from runservice.server import EdgeOptions, build_server
from runservice.server.auth import TokenSet
from runservice.server.calls import Call, CallObserver
from runservice.server.observability import Observability
from runservice.server.tracing import Tracing
from runservice.storage import RunWrite, open_store
from runservice.v1 import run_pb2, run_service_pb2, run_service_pb2_grpc
from runservice.wire import to_value
from runservice.workflow import StepContext, Workflow, clone_step, create_step, create_workflow

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parent.parent

step_log = logging.getLogger("tests.observability.steps")


class Count(BaseModel):
    count: int


@create_step("add", input_schema=Count, output_schema=Count)
async def add(ctx: StepContext) -> Count:
    step_log.info("adding one to %d", ctx.input_data.count)
    return Count(count=ctx.input_data.count + 1)


@create_step("sub-add", input_schema=Count, output_schema=Count)
async def sub_add(ctx: StepContext) -> Count:
    return Count(count=ctx.input_data.count + 10)


@create_step("gate", input_schema=Count, output_schema=Count, resume_schema=Count)
async def gate(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        await ctx.suspend({"why": "approval"})
        return None
    return ctx.resume_data


def explode_in_step_body() -> None:
    raise ValueError("the step body broke")


@create_step("boom", input_schema=Count, output_schema=Count)
async def boom(ctx: StepContext) -> Count:
    explode_in_step_body()
    return Count(count=0)


sub = create_workflow("sub", input_schema=Count, output_schema=Count).then(sub_add).commit()
nested = create_workflow("nested", input_schema=Count, output_schema=Count).then(add).then(sub).commit()
gated = create_workflow("gated", input_schema=Count, output_schema=Count).then(add).then(gate).commit()
failing = create_workflow("failing", input_schema=Count, output_schema=Count).then(boom).commit()
sleepy = (
    create_workflow("sleepy", input_schema=Count, output_schema=Count)
    .then(add)
    .sleep(0.5)
    .then(clone_step(add, id="add-again"))
    .commit()
)
gate_timed = (
    create_workflow("gate-timed", input_schema=Count, output_schema=Count, timeout=0.4)
    .then(clone_step(gate, id="timed-gate"))
    .commit()
)
waits_nested = (
    create_workflow("waits-nested", input_schema=Count, output_schema=Count).then(gate_timed).commit()
)


WORKFLOWS = [nested, gated, failing, sleepy, waits_nested]

TRACEPARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT_SPAN = "00f067aa0ba902b7"


class Served:
    def __init__(self, address: str, store: Any, observability: Observability) -> None:
        self.address = address
        self.store = store
        self.observability = observability

    @property
    def metrics_url(self) -> str:
        assert self.observability.endpoint is not None
        return f"http://{self.observability.endpoint.address}/metrics"


@contextlib.asynccontextmanager
async def serving(
    db: Path,
    *,
    metrics: bool = False,
    tracing: Tracing | None = None,
    access_log: bool = False,
    options: EdgeOptions | None = None,
    workflows: list[Workflow] = WORKFLOWS,
) -> AsyncIterator[Served]:
    store = open_store(str(db))
    await store.open()
    observability = Observability(
        store,
        metrics_address="127.0.0.1:0" if metrics else None,
        tracing=tracing,
        access_log=access_log,
    )
    try:
        await observability.start()  # as `serve` does: before the engine re-drives active runs
        async with Engine(store, workflows, heartbeat=0.2) as engine:
            if observability.metrics is not None:  # as server/hosting.py does
                observability.metrics.served = engine.served_definitions()
            server = build_server(engine, heartbeat=0.2, observability=observability, options=options)
            await server.start()
            try:
                yield Served(server.address, store, observability)
            finally:
                await server.stop(0.5)
    finally:
        await observability.stop()
        await store.close()


@contextlib.asynccontextmanager
async def stub_for(served: Served) -> AsyncIterator[Any]:
    async with grpc.aio.insecure_channel(served.address) as channel:
        yield run_service_pb2_grpc.RunServiceStub(channel)


def count(n: int) -> Any:
    return to_value({"count": n})


# -- metrics ---------------------------------------------------------------------------------------


def rpc(method: str, *, code: str | None = None, kind: str = "unary", **extra: str) -> dict[str, str]:
    labels = {"grpc_service": "runservice.v1.RunService", "grpc_method": method, "grpc_type": kind, **extra}
    if code is not None:
        labels["grpc_code"] = code
    return labels


async def eventually(check: Callable[[], Any]) -> None:
    """Retry an async `check` (it raises AssertionError until it holds) for up to 5 seconds."""
    deadline = asyncio.get_running_loop().time() + 5.0
    while True:
        try:
            await check()
            return
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_metrics_count_rpcs_streams_runs_steps_and_commits(tmp_path: Path) -> None:
    async with serving(tmp_path / "runs.db", metrics=True) as served, stub_for(served) as stub:
        done = await stub.Start(
            run_service_pb2.StartRequest(workflow_id="nested", input_data=count(1), wait=True)
        )
        assert done.run.status == run_pb2.RUN_STATUS_SUCCESS
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetRun(run_service_pb2.GetRunRequest(run_id="no-such-run"))
        assert missing.value.code() is grpc.StatusCode.NOT_FOUND
        parked = await stub.Start(
            run_service_pb2.StartRequest(workflow_id="gated", input_data=count(1), wait=True)
        )
        assert parked.run.status == run_pb2.RUN_STATUS_SUSPENDED
        # A Watch that ends by itself (the finished run: backlog, then end of stream).
        messages = [m async for m in stub.Watch(run_service_pb2.WatchRequest(run_id=done.run.run_id))]
        assert messages[-1].end_of_stream
        # A Watch of a suspended run stays open: scrape while it is, then cancel it client-side.
        watch = stub.Watch(run_service_pb2.WatchRequest(run_id=parked.run.run_id))
        await watch.read()

        async def one_watch_open() -> None:
            samples = await scrape(served.metrics_url)
            assert value(samples, "grpc_server_streams_open", grpc_service="runservice.v1.RunService",
                         grpc_method="Watch") == 1  # fmt: skip

        await eventually(one_watch_open)
        watch.cancel()
        # The health service's Watch is the `context.write` style: observed too.
        async with grpc.aio.insecure_channel(served.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            assert (await health.Check(health_pb2.HealthCheckRequest())).status == 1
            health_watch = health.Watch(health_pb2.HealthCheckRequest())
            await health_watch.read()
            health_watch.cancel()

        async def all_counted() -> None:
            s = await scrape(served.metrics_url)
            assert value(s, "grpc_server_handled_total", **rpc("Start", code="OK")) == 2
            assert value(s, "grpc_server_started_total", **rpc("Start")) == 2
            assert value(s, "grpc_server_handled_total", **rpc("GetRun", code="NOT_FOUND")) == 1
            watch_ok = rpc("Watch", code="OK", kind="server_stream")
            watch_cancelled = rpc("Watch", code="CANCELLED", kind="server_stream")
            assert value(s, "grpc_server_handled_total", **watch_ok) == 1
            assert value(s, "grpc_server_handled_total", **watch_cancelled) == 1
            assert value(s, "grpc_server_handling_seconds_count", **watch_cancelled) == 1
            assert value(s, "grpc_server_handling_seconds_count", **rpc("Start", code="OK")) == 2
            assert value(s, "grpc_server_msg_sent_total", **rpc("Watch", kind="server_stream")) >= 2
            assert value(s, "grpc_server_streams_open", grpc_service="runservice.v1.RunService",
                         grpc_method="Watch") == 0  # fmt: skip
            health_cancelled = {"grpc_service": "grpc.health.v1.Health", "grpc_method": "Watch",
                                "grpc_type": "server_stream", "grpc_code": "CANCELLED"}  # fmt: skip
            assert value(s, "grpc_server_handled_total", **health_cancelled) == 1
            health_sent = {key: value for key, value in health_cancelled.items() if key != "grpc_code"}
            assert value(s, "grpc_server_msg_sent_total", **health_sent) >= 1  # a `context.write` stream
            assert value(s, "runservice_runs_started_total", workflow="nested") == 1
            assert value(s, "runservice_runs_started_total", workflow="gated") == 1
            assert value(s, "runservice_runs_finished_total", workflow="nested", status="success") == 1
            assert value(s, "runservice_runs_suspensions_total", workflow="gated") == 1
            for step in ("add", "sub", "sub.sub-add"):
                labels = {"workflow": "nested", "step": step, "status": "success"}
                assert value(s, "runservice_step_duration_seconds_count", **labels) == 1, step
            assert value(s, "runservice_runs_suspended") == 1
            assert value(s, "runservice_runs_in_flight") == 0
            assert value(s, "runservice_runs_unowned") == 0
            assert value(s, "runservice_store_commit_seconds_count") >= 3
            assert value(s, "runservice_store_commit_batch_size_sum") >= value(
                s, "runservice_store_commit_batch_size_count"
            )

        await eventually(all_counted)
        # A resume is counted as such, and the run's finish under its workflow and status.
        resumed = await stub.Resume(
            run_service_pb2.ResumeRequest(run_id=parked.run.run_id, resume_data=count(5), wait=True)
        )
        assert resumed.run.status == run_pb2.RUN_STATUS_SUCCESS

        async def resume_counted() -> None:
            s = await scrape(served.metrics_url)
            assert value(s, "runservice_runs_resumed_total", workflow="gated") == 1
            assert value(s, "runservice_runs_finished_total", workflow="gated", status="success") == 1
            assert value(s, "runservice_runs_suspended") == 0
            assert value(s, "runservice_step_duration_seconds_count", workflow="gated", step="gate",
                         status="success") == 1  # fmt: skip

        await eventually(resume_counted)
        # A time travel is not a resume, and a fork is a run started.
        travelled = await stub.TimeTravel(
            run_service_pb2.TimeTravelRequest(run_id=done.run.run_id, step=["add"], wait=True)
        )
        forked = await stub.ForkRun(
            run_service_pb2.ForkRunRequest(run_id=done.run.run_id, step=["add"], wait=True)
        )
        assert travelled.run.status == forked.run.status == run_pb2.RUN_STATUS_SUCCESS
        # A call whose deadline passes is DEADLINE_EXCEEDED, not CANCELLED.
        again = await stub.Start(
            run_service_pb2.StartRequest(workflow_id="gated", input_data=count(1), wait=True)
        )
        with pytest.raises(grpc.aio.AioRpcError) as late:
            async for _ in stub.Watch(run_service_pb2.WatchRequest(run_id=again.run.run_id), timeout=0.5):
                pass
        assert late.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        # A deleted run is counted (the retention sweep's deletes come the same way).
        await stub.DeleteRun(run_service_pb2.DeleteRunRequest(run_id=forked.run.run_id))

        async def travels_and_deadlines_counted() -> None:
            s = await scrape(served.metrics_url)
            assert value(s, "runservice_runs_started_total", workflow="nested") == 2
            assert value(s, "runservice_runs_time_travels_total", workflow="nested") == 1
            assert value(s, "runservice_runs_resumed_total", workflow="nested") == 0
            watch_late = rpc("Watch", code="DEADLINE_EXCEEDED", kind="server_stream")
            assert value(s, "grpc_server_handled_total", **watch_late) == 1
            assert value(s, "runservice_runs_deleted_total") == 1

        await eventually(travels_and_deadlines_counted)
        status, _ = await asyncio.to_thread(get, served.metrics_url.replace("/metrics", "/nope"))
        assert status == 404


async def test_a_watch_that_ended_normally_is_ok_and_a_client_gone_is_cancelled(tmp_path: Path) -> None:
    """The counts an operator sees, against a server in its own process: watches and streams
    of the clients that ended normally are OK calls, and callers that cancel right after
    `end_of_stream` are OK or CANCELLED, never UNKNOWN. The race behind the UNKNOWN an audit
    saw (about one watch in five) did not happen here on purpose: the two mechanisms have
    their own tests (`test_a_stream_closed_at_a_yield_is_cancelled_not_unknown`, and
    test_clients.py's `test_the_clients_read_a_watch_and_a_stream_to_their_end`)."""
    server = await start_server(serve_argv("--data-dir", str(tmp_path), "--metrics-address", "127.0.0.1:0"))
    try:
        found = re.search(r"metrics on (\S+)", server.text)
        assert found is not None, server.text
        metrics_url = found.group(1)
        kind = "server_stream"

        async def handled(method: str, code: str) -> float:
            return value(
                await scrape(metrics_url), "grpc_server_handled_total", **rpc(method, code=code, kind=kind)
            )

        async with Client(server.address, timeout=30) as client:
            done = await (await client.get_workflow("city-weather").create_run()).start_async(
                {"city": "Oslo"}
            )
            for _ in range(10):
                events = [e async for e in RunHandle(client, "city-weather", done.run_id).watch_events()]
                assert events[-1].ends_run
            for _ in range(3):
                started = await client.get_workflow("city-weather").create_run()
                streamed = [e async for e in started.stream({"city": "Rome"})]
                assert streamed[-1].ends_run
        sync = SyncClient(server.address)
        try:
            for _ in range(5):
                watched = SyncRunHandle(sync, "city-weather", done.run_id)
                events = await asyncio.to_thread(_all_events, watched)
                assert events[-1].ends_run
        finally:
            sync.close()
        assert (await handled("Watch", "OK"), await handled("Watch", "CANCELLED")) == (15, 0)
        assert await handled("Stream", "OK") == 3
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = run_service_pb2_grpc.RunServiceStub(channel)
            for _ in range(40):  # a caller that stops reading at the end of stream
                call = stub.Watch(run_service_pb2.WatchRequest(run_id=done.run_id))
                async for message in call:
                    if message.end_of_stream:
                        call.cancel()
                        break

        async def counted() -> None:
            assert await handled("Watch", "UNKNOWN") == 0
            assert await handled("Watch", "OK") + await handled("Watch", "CANCELLED") == 55

        await eventually(counted)
    finally:
        assert await server.stop() == 0


def _all_events(handle: SyncRunHandle) -> list[Event]:
    return list(handle.watch_events())


class _LiveContext:
    """What the call wrapper asks of grpc's servicer context, for a call still going."""

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"

    def code(self) -> None:
        return None

    def time_remaining(self) -> float:
        return 30.0


async def test_a_stream_closed_at_a_yield_is_cancelled_not_unknown() -> None:
    """gRPC closes a streaming handler's generator (GeneratorExit at its `yield`, no task
    cancellation) when the client goes away while a message it yielded is being sent, as a
    client that cancels right after a Watch's end of stream does: that is CANCELLED. It was
    UNKNOWN (the metrics' and the access log's code for a crash) for about one such watch in
    five in an audit against a real server; the race is too narrow to hit on purpose there."""
    ended: list[Call] = []

    async def messages(request: Any, context: Any) -> AsyncIterator[str]:
        yield "first"
        yield "second"

    async def continuation(details: Any) -> Any:
        return grpc.unary_stream_rpc_method_handler(messages)

    details = SimpleNamespace(method="/runservice.v1.RunService/Watch")
    wrapped = await CallObserver(on_end=[ended.append]).intercept_service(continuation, details)
    assert wrapped is not None
    stream = wrapped.unary_stream(None, _LiveContext())
    assert await stream.__anext__() == "first"
    await stream.aclose()
    assert [(c.method, c.code, c.sent) for c in ended] == [("Watch", grpc.StatusCode.CANCELLED, 1)]


async def test_a_nested_deadline_that_wakes_a_suspended_run_is_no_resume(tmp_path: Path) -> None:
    """A nested workflow suspended in the run passes its deadline, and the claim loop drives
    the run again to fail it. Nobody resumed it: no resume is counted, and the span of that
    execution says `deadline` (both read the WORKFLOW_START event's cause)."""
    exporter = InMemorySpanExporter()
    async with (
        serving(tmp_path / "runs.db", metrics=True, tracing=Tracing(SimpleSpanProcessor(exporter))) as served,
        stub_for(served) as stub,
    ):
        parked = await stub.Start(
            run_service_pb2.StartRequest(workflow_id="waits-nested", input_data=count(1), wait=True)
        )
        assert parked.run.status == run_pb2.RUN_STATUS_SUSPENDED

        async def failed_unresumed() -> None:
            s = await scrape(served.metrics_url)
            assert value(s, "runservice_runs_finished_total", workflow="waits-nested", status="failed") == 1
            assert value(s, "runservice_runs_started_total", workflow="waits-nested") == 1
            assert value(s, "runservice_runs_resumed_total", workflow="waits-nested") == 0

        await eventually(failed_unresumed)
        events = await served.store.read_events(parked.run.run_id, 0)
        causes = [e.cause for e in events if e.type is EventType.WORKFLOW_START]
        assert causes == [Execution.START, Execution.DEADLINE]

        async def both_spans() -> None:
            assert len([s for s in exporter.get_finished_spans() if s.name == "run waits-nested"]) == 2

        await eventually(both_spans)
    spans = sorted(
        (s for s in exporter.get_finished_spans() if s.name == "run waits-nested"),
        key=lambda s: s.start_time or 0,
    )
    assert [dict(s.attributes or {})["runservice.execution"] for s in spans] == ["start", "deadline"]
    assert dict(spans[1].attributes or {})["runservice.run_status"] == "failed"


async def test_calls_refused_at_the_edge_are_counted_and_logged(tmp_path: Path) -> None:
    """Authentication and the stream limit sit inside the observation: a call without a token
    and a stream over the limit are counted and logged with their codes; health needs no token."""
    tokens = TokenSet.load(None, tokens="s3cret")
    options = EdgeOptions(tokens=tokens, max_streams_per_caller=1)
    authorized = (("authorization", "Bearer s3cret"),)
    with json_log_lines() as lines:
        async with (
            serving(tmp_path / "runs.db", metrics=True, access_log=True, options=options) as served,
            stub_for(served) as stub,
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.GetRun(run_service_pb2.GetRunRequest(run_id="r"))
            assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
            parked = await stub.Start(
                run_service_pb2.StartRequest(workflow_id="gated", input_data=count(1), wait=True),
                metadata=authorized,
            )
            watch = stub.Watch(run_service_pb2.WatchRequest(run_id=parked.run.run_id), metadata=authorized)
            await watch.read()
            second = stub.Watch(run_service_pb2.WatchRequest(run_id=parked.run.run_id), metadata=authorized)
            with pytest.raises(grpc.aio.AioRpcError) as over:
                await second.read()
            assert over.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            watch.cancel()
            async with grpc.aio.insecure_channel(served.address) as channel:
                health = health_pb2_grpc.HealthStub(channel)
                assert (await health.Check(health_pb2.HealthCheckRequest())).status == 1

            async def counted() -> None:
                s = await scrape(served.metrics_url)
                assert value(s, "grpc_server_handled_total", **rpc("GetRun", code="UNAUTHENTICATED")) == 1
                assert value(s, "grpc_server_handled_total", **rpc("Start", code="OK")) == 1
                over_limit = rpc("Watch", code="RESOURCE_EXHAUSTED", kind="server_stream")
                assert value(s, "grpc_server_handled_total", **over_limit) == 1
                health_ok = {"grpc_service": "grpc.health.v1.Health", "grpc_method": "Check",
                             "grpc_type": "unary", "grpc_code": "OK"}  # fmt: skip
                assert value(s, "grpc_server_handled_total", **health_ok) == 1

            await eventually(counted)
    access = {(line["method"], line["code"]) for line in lines if line["logger"] == "runservice.access"}
    assert ("/runservice.v1.RunService/GetRun", "UNAUTHENTICATED") in access
    assert ("/runservice.v1.RunService/Watch", "RESOURCE_EXHAUSTED") in access
    # Probes ask every few seconds: a health check that answered is counted, not logged.
    assert not any(method.startswith("/grpc.health.v1.Health/") for method, _ in access), access


async def test_calls_to_unknown_methods_are_counted_as_unknown_and_logged_after_authentication(
    tmp_path: Path,
) -> None:
    """gRPC answered a method not served with no handler, so such calls were neither counted
    nor logged, and a caller without a token learnt which methods exist (audit). Now each is
    counted under the one label `unknown` (made-up paths make no new series), its access line
    shows the path asked for (cut), and a bad token is UNAUTHENTICATED before UNIMPLEMENTED."""
    options = EdgeOptions(tokens=TokenSet.load(None, tokens="s3cret"))
    authorized = (("authorization", "Bearer s3cret"),)
    made_up = "/runservice.v1.RunService/" + "Nope" * 100
    with json_log_lines() as lines:
        async with (
            serving(tmp_path / "runs.db", metrics=True, access_log=True, options=options) as served,
            grpc.aio.insecure_channel(served.address) as channel,
        ):
            calls = [
                ("/runservice.v1.RunService/Nope", (("authorization", "Bearer wrong"),)),
                ("/runservice.v1.RunService/Nope", authorized),
                ("/made.up.Service/Anything", authorized),
                ("/grpc.health.v1.Health/Nope", ()),  # open to probes: no token needed
                (made_up, authorized),
            ]
            codes = []
            for path, metadata in calls:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    call: Any = channel.unary_unary(path)  # raw bytes: no serializers
                    await call(b"", metadata=metadata, timeout=5)
                codes.append(refused.value.code())
            assert codes == [grpc.StatusCode.UNAUTHENTICATED] + [grpc.StatusCode.UNIMPLEMENTED] * 4
            with pytest.raises(grpc.aio.AioRpcError) as streaming:  # a streaming caller is answered too
                await channel.stream_stream("/made.up.Service/Streams")(iter(()), metadata=authorized).read()
            assert streaming.value.code() is grpc.StatusCode.UNIMPLEMENTED

            async def counted() -> None:
                s = await scrape(served.metrics_url)
                unknown = {"grpc_service": "unknown", "grpc_method": "unknown", "grpc_type": "unknown"}
                assert value(s, "grpc_server_started_total", **unknown) == 6
                assert value(s, "grpc_server_handled_total", **unknown, grpc_code="UNAUTHENTICATED") == 1
                assert value(s, "grpc_server_handled_total", **unknown, grpc_code="UNIMPLEMENTED") == 5
                _, text = await asyncio.to_thread(get, served.metrics_url)
                assert "Nope" not in text and "made.up" not in text

            await eventually(counted)
    access = [(line["method"], line["code"]) for line in lines if line["logger"] == "runservice.access"]
    assert ("/runservice.v1.RunService/Nope", "UNAUTHENTICATED") in access
    assert ("/runservice.v1.RunService/Nope", "UNIMPLEMENTED") in access
    assert ("/made.up.Service/Anything", "UNIMPLEMENTED") in access
    assert ("/grpc.health.v1.Health/Nope", "UNIMPLEMENTED") in access
    assert (made_up[:200] + "...", "UNIMPLEMENTED") in access


async def test_runs_recovered_at_boot_are_counted_under_their_workflow(tmp_path: Path) -> None:
    """A run first seen mid-way (no WORKFLOW_START in this process) is read once for its workflow."""
    db = tmp_path / "runs.db"
    async with serving(db) as served, stub_for(served) as stub:
        parked = await stub.Start(
            run_service_pb2.StartRequest(workflow_id="gated", input_data=count(1), wait=True)
        )
    async with serving(db, metrics=True) as served, stub_for(served) as stub:
        await stub.Cancel(run_service_pb2.CancelRequest(run_id=parked.run.run_id))

        async def counted() -> None:
            s = await scrape(served.metrics_url)
            assert value(s, "runservice_runs_finished_total", workflow="gated", status="canceled") == 1
            assert value(s, "runservice_runs_suspended") == 0

        await eventually(counted)


async def test_runs_of_a_definition_not_served_here_are_a_gauge_of_their_own(tmp_path: Path) -> None:
    """A run recorded on a step graph this server does not serve (the code changed under the
    same version) is never claimed here: it shows as unowned and as not served."""
    db = tmp_path / "runs.db"
    store = open_store(str(db))
    await store.open()
    try:
        now = time.time()
        for run_id, digest in (("stranded", "a-graph-no-longer-served"), ("old", "")):
            run = Run(
                run_id=run_id,
                workflow_id="gated",
                status=RunStatus.RUNNING,
                created_at=now,
                updated_at=now,
                definition_version="1" if digest else "0",
                definition_digest=digest,
            )
            await store.write(RunWrite(run_id, create=run))
    finally:
        await store.close()
    async with serving(db, metrics=True) as served:

        async def counted() -> None:
            s = await scrape(served.metrics_url)
            assert value(s, "runservice_runs_unowned") == 2
            assert value(s, "runservice_runs_not_served") == 2
            assert value(s, "runservice_runs_in_flight") == 2

        await eventually(counted)


async def test_ticks_schedules_fired_are_counted_by_kind_and_outcome(tmp_path: Path) -> None:
    """Schedules had no metrics (audit): a skipped tick, or ticks lost for ever, showed only as
    INFO lines."""
    from test_schedules import asking

    scheduled = asking("counted", cron="0 0 1 1 *", overlap="skip")  # no cron tick during the test
    async with serving(tmp_path / "runs.db", metrics=True, workflows=[scheduled]) as served:
        async with Client(served.address) as client:
            assert (await client.schedules.trigger("counted")).outcome == "started"
            assert (await client.schedules.trigger("counted")).outcome == "skipped"  # the first waits
            assert (await client.schedules.trigger("counted", request_id="r")).outcome == "skipped"
            assert (await client.schedules.trigger("counted", request_id="r")).outcome == "skipped"

        async def counted() -> None:
            s = await scrape(served.metrics_url)
            ticks = "runservice_schedule_ticks_total"
            assert value(s, ticks, schedule="counted", kind="trigger", outcome="started") == 1
            assert value(s, ticks, schedule="counted", kind="trigger", outcome="skipped") == 2
            assert value(s, ticks, schedule="counted", kind="trigger", outcome="repeated") == 0

        await eventually(counted)

    # A buffered tick is looked at on every pass while its run is active: that fires nothing,
    # and was counted as "lost" each time (audit).
    buffering = asking("buffering", cron="0 0 1 1 *", overlap="buffer_one")
    async with serving(tmp_path / "buffered.db", metrics=True, workflows=[buffering]) as served:
        async with Client(served.address) as client:
            assert (await client.schedules.trigger("buffering")).outcome == "started"
            assert (await client.schedules.trigger("buffering")).outcome == "buffered"
        await asyncio.sleep(2.5)  # the scheduler's passes (every second) look at the buffered tick
        s = await scrape(served.metrics_url)
        ticks = "runservice_schedule_ticks_total"
        assert value(s, ticks, schedule="buffering", kind="buffered", outcome="lost") == 0
        assert value(s, ticks, schedule="buffering", kind="trigger", outcome="buffered") == 1


# -- traces ----------------------------------------------------------------------------------------


def _by_name(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, [span.name for span in spans]
    return found[0]


async def test_spans_of_a_run_its_steps_and_nested_steps_follow_traceparent_and_options(
    tmp_path: Path,
) -> None:
    exporter = InMemorySpanExporter()
    tracing = Tracing(SimpleSpanProcessor(exporter))
    async with serving(tmp_path / "runs.db", tracing=tracing) as served, stub_for(served) as stub:
        options = run_service_pb2.TracingOptions(
            tags=["nightly", "billing"],
            metadata=to_value({"user_id": "u-7", "attempts": 3, "flags": ["a"]}),
            request_context_keys=["tenant", "user.id", "absent"],
        )
        done = await stub.Start(
            run_service_pb2.StartRequest(
                workflow_id="nested",
                input_data=count(1),
                request_context=to_value({"tenant": "acme", "user": {"id": "u-7"}}),
                tracing_options=options,
                wait=True,
            ),
            metadata=(("traceparent", f"00-{TRACEPARENT_TRACE}-{TRACEPARENT_SPAN}-01"),),
        )
        assert done.run.trace_id == TRACEPARENT_TRACE

        async def finished() -> None:
            assert any(span.name == "run nested" for span in exporter.get_finished_spans())

        await eventually(finished)
    spans = exporter.get_finished_spans()
    run = _by_name(spans, "run nested")
    add_span, sub_span = _by_name(spans, "step add"), _by_name(spans, "step sub")
    inner = _by_name(spans, "step sub.sub-add")
    assert {span.context.trace_id for span in spans} == {int(TRACEPARENT_TRACE, 16)}
    assert run.parent is not None and run.parent.span_id == int(TRACEPARENT_SPAN, 16) and run.parent.is_remote
    assert add_span.parent is not None and add_span.parent.span_id == run.context.span_id
    assert sub_span.parent is not None and sub_span.parent.span_id == run.context.span_id
    assert inner.parent is not None and inner.parent.span_id == sub_span.context.span_id
    attributes = dict(run.attributes or {})
    assert attributes["runservice.run_id"] == done.run.run_id
    assert attributes["runservice.workflow_id"] == "nested"
    assert attributes["runservice.tags"] == ("nightly", "billing")
    assert attributes["runservice.metadata.user_id"] == "u-7"
    assert attributes["runservice.metadata.attempts"] == 3
    assert attributes["runservice.metadata.flags"] == '["a"]'
    assert attributes["runservice.request_context.tenant"] == "acme"
    assert attributes["runservice.request_context.user.id"] == "u-7"
    assert "runservice.request_context.absent" not in attributes
    assert attributes["runservice.run_status"] == "success"
    assert dict(add_span.attributes or {})["runservice.step_status"] == "success"
    # Step spans sit inside the run's span and carry the step records' times.
    assert run.start_time is not None and run.end_time is not None
    for span in (add_span, sub_span, inner):
        assert span.start_time is not None and span.end_time is not None
        assert run.start_time <= span.start_time <= span.end_time <= run.end_time
    assert sub_span.start_time <= inner.start_time and inner.end_time <= sub_span.end_time  # type: ignore[operator]


async def test_trace_options_set_the_run_trace_id_and_a_resume_is_its_own_span(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    async with (
        serving(tmp_path / "runs.db", tracing=Tracing(SimpleSpanProcessor(exporter))) as served,
        stub_for(served) as stub,
    ):
        parked = await stub.Start(
            run_service_pb2.StartRequest(
                workflow_id="gated",
                input_data=count(1),
                tracing_options=run_service_pb2.TracingOptions(trace_id="ABC123", parent_span_id="42"),
                wait=True,
            )
        )
        trace_id = "abc123".rjust(32, "0")
        assert parked.run.trace_id == trace_id
        resumed = await stub.Resume(
            run_service_pb2.ResumeRequest(
                run_id=parked.run.run_id,
                resume_data=count(9),
                tracing_options=run_service_pb2.TracingOptions(tags=["resumed"]),
                wait=True,
            )
        )
        assert resumed.run.status == run_pb2.RUN_STATUS_SUCCESS and resumed.run.trace_id == trace_id
        for bad in (
            run_service_pb2.TracingOptions(trace_id="xyz"),
            run_service_pb2.TracingOptions(parent_span_id="0" * 17),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Start(
                    run_service_pb2.StartRequest(
                        workflow_id="gated", input_data=count(1), tracing_options=bad
                    )
                )
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT

        async def both_ended() -> None:
            assert len([s for s in exporter.get_finished_spans() if s.name == "run gated"]) == 2

        await eventually(both_ended)
    runs = sorted(
        (s for s in exporter.get_finished_spans() if s.name == "run gated"), key=lambda s: s.start_time or 0
    )
    first, second = runs
    assert first.context.trace_id == second.context.trace_id == int(trace_id, 16)
    assert first.parent is not None and first.parent.span_id == 0x42
    assert dict(first.attributes or {})["runservice.run_status"] == "suspended"
    assert dict(second.attributes or {})["runservice.execution"] == "resume"
    assert dict(second.attributes or {})["runservice.tags"] == ("resumed",)
    gate_spans = [s for s in exporter.get_finished_spans() if s.name == "step gate"]
    assert [s.parent.span_id for s in gate_spans if s.parent] == [
        first.context.span_id,
        second.context.span_id,
    ]


async def test_a_fork_and_a_time_travel_trace_and_count_only_the_steps_they_run(tmp_path: Path) -> None:
    """A fork's log copies the records it keeps (here step add's) before its WORKFLOW_START:
    they were counted as step executions and traced in a bogus `recovery` run span (audit)."""
    exporter = InMemorySpanExporter()
    async with serving(
        tmp_path / "runs.db", metrics=True, tracing=Tracing(SimpleSpanProcessor(exporter))
    ) as served:
        async with Client(served.address) as client:
            run = await client.get_workflow("nested").create_run("original")
            await run.start_async({"count": 1})
            forked = await run.fork("sub", {"count": 5}, new_run_id="forked", wait=True)
            assert forked.status.value == "success"
            travelled = await run.time_travel("sub", {"count": 7}, wait=True)
            assert travelled.status.value == "success"

        async def counted() -> None:
            s = await scrape(served.metrics_url)
            steps = "runservice_step_duration_seconds_count"
            assert value(s, steps, workflow="nested", step="add", status="success") == 1
            assert value(s, steps, workflow="nested", step="sub", status="success") == 3
            assert len([span for span in exporter.get_finished_spans() if span.name == "run nested"]) == 3

        await eventually(counted)
    spans = exporter.get_finished_spans()
    attributes = [dict(span.attributes or {}) for span in spans if span.name == "run nested"]
    executions = {(found["runservice.run_id"], found["runservice.execution"]) for found in attributes}
    assert executions == {("original", "start"), ("original", "time_travel"), ("forked", "fork")}
    assert len([span for span in spans if span.name == "step add"]) == 1


async def test_without_tracing_the_run_trace_id_still_follows_traceparent(tmp_path: Path) -> None:
    async with serving(tmp_path / "runs.db") as served, stub_for(served) as stub:
        done = await stub.Start(
            run_service_pb2.StartRequest(workflow_id="nested", input_data=count(1), wait=True),
            metadata=(("traceparent", f"00-{TRACEPARENT_TRACE}-{TRACEPARENT_SPAN}-01"),),
        )
        assert done.run.trace_id == TRACEPARENT_TRACE
        fresh = await stub.Start(
            run_service_pb2.StartRequest(workflow_id="nested", input_data=count(1), wait=True)
        )
        assert len(fresh.run.trace_id) == 32 and int(fresh.run.trace_id, 16) != 0
        assert fresh.run.trace_id != TRACEPARENT_TRACE


# -- logs ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def json_log_lines(level: int = logging.INFO) -> Iterator[list[dict[str, Any]]]:
    """Capture the process's log as the server writes it with `--log-format json`."""
    stream = io.StringIO()
    handler = logs.handler("json", stream=stream)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(level)
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        handler.flush()  # the lines kept on the loop, as `logging.shutdown` writes them at exit
        root.removeHandler(handler)
        root.setLevel(old_level)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())


async def test_json_log_lines_about_a_run_carry_its_id_and_trace_id_and_rpcs_have_an_access_line(
    tmp_path: Path,
) -> None:
    with json_log_lines() as lines:
        async with serving(tmp_path / "runs.db", access_log=True) as served, stub_for(served) as stub:
            done = await stub.Start(
                run_service_pb2.StartRequest(workflow_id="nested", input_data=count(4), wait=True)
            )
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.GetRun(run_service_pb2.GetRunRequest(run_id="missing"))
    in_step = [line for line in lines if line["message"] == "adding one to 4"]
    assert len(in_step) == 1
    assert in_step[0]["run_id"] == done.run.run_id and in_step[0]["trace_id"] == done.run.trace_id
    assert in_step[0]["logger"] == "tests.observability.steps" and in_step[0]["level"] == "INFO"
    access = [line for line in lines if line["logger"] == logs.ACCESS_LOGGER]
    by_method = {line["method"]: line for line in access}
    start = by_method["/runservice.v1.RunService/Start"]
    assert start["code"] == "OK" and start["duration_ms"] > 0 and start["peer"].startswith("ipv4:127.0.0.1:")
    assert by_method["/runservice.v1.RunService/GetRun"]["code"] == "NOT_FOUND"
    assert "run_id" not in start  # an RPC line is not about a run driven in its task


def test_a_reply_to_a_client_gone_is_no_error_in_the_log(capsys: pytest.CaptureFixture[str]) -> None:
    """grpc.aio logs a send that failed because the client had just cancelled (a race inside
    grpc) as an ERROR with a traceback; the server's log keeps it out, and every other record
    of that logger as it is."""
    root, core = logging.getLogger(), logging.getLogger(logs.GRPC_CORE_LOGGER)
    gone = "ExecuteBatchError raised in core by servicer method [/runservice.v1.RunService/Watch]"
    saved = (root.handlers[:], root.level, core.filters[:])
    try:
        logs.configure("INFO")
        logs.configure("INFO")  # once more (SIGHUP reloads): one filter, not two
        assert sum(isinstance(f, logs.ClientGone) for f in core.filters) == 1
        for message in (gone, "Unexpected [ValueError] raised by servicer method [/x.v1.X/Watch]"):
            try:
                raise ValueError("send failed")
            except ValueError:
                core.exception(message)
        try:  # a header value that is not UTF-8, as grpc reports it
            b"\xff\xfe".decode()
        except UnicodeDecodeError:
            core.exception("Invalid encoding on %s", b"\xff\xfe")
        err = capsys.readouterr().err
        assert "ExecuteBatchError" not in err and "Invalid encoding" not in err
        assert "ERROR grpc._cython.cygrpc Unexpected [ValueError]" in err and "Traceback" in err
        logs.configure("DEBUG")
        try:
            raise ValueError("send failed")
        except ValueError:
            core.exception(
                "ExecuteBatchError raised in core by servicer method [/runservice.v1.RunService/Watch]"
            )
        (line,) = [line for line in capsys.readouterr().err.splitlines() if "ExecuteBatchError" in line]
        assert " DEBUG grpc._cython.cygrpc a reply could not be sent, the client has gone: " in line
    finally:
        root.handlers[:], core.filters[:] = saved[0], saved[2]
        root.setLevel(saved[1])


async def test_access_log_off_writes_no_rpc_lines(tmp_path: Path) -> None:
    with json_log_lines() as lines:
        async with serving(tmp_path / "runs.db", access_log=False) as served, stub_for(served) as stub:
            await stub.Start(
                run_service_pb2.StartRequest(workflow_id="nested", input_data=count(4), wait=True)
            )
    assert lines and not [line for line in lines if line["logger"] == logs.ACCESS_LOGGER]


async def test_log_lines_inside_a_step_carry_its_path(tmp_path: Path) -> None:
    with json_log_lines() as lines:
        async with serving(tmp_path / "runs.db") as served, stub_for(served) as stub:
            await stub.Start(
                run_service_pb2.StartRequest(workflow_id="nested", input_data=count(4), wait=True)
            )
    in_step = [line for line in lines if line["message"] == "adding one to 4"]
    assert in_step and in_step[0].get("step_path") == "add"


async def test_a_failed_step_is_logged_with_its_traceback_run_step_and_attempt(tmp_path: Path) -> None:
    with json_log_lines() as lines:
        async with serving(tmp_path / "runs.db") as served, stub_for(served) as stub:
            done = await stub.Start(
                run_service_pb2.StartRequest(workflow_id="failing", input_data=count(1), wait=True)
            )
    assert done.run.status == run_pb2.RUN_STATUS_FAILED
    assert "Traceback" not in done.run.error.message and "explode_in_step_body" not in str(done.run.error)
    failed = [line for line in lines if "exc_info" in line and line.get("run_id") == done.run.run_id]
    assert len(failed) == 1, lines
    line = failed[0]
    assert line["level"] == "ERROR" and line["step_path"] == "boom" and line["attempt"] == 0
    assert line["trace_id"] == done.run.trace_id
    assert "Traceback" in line["exc_info"] and "explode_in_step_body" in line["exc_info"]
    assert "ValueError: the step body broke" in line["exc_info"]


# -- settings and the real process -------------------------------------------------------------


def test_observability_settings_from_env_then_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, setting in {
        "RUNSERVICE_METRICS_ADDRESS": "0.0.0.0:9464",
        "RUNSERVICE_TRACING": "on",
        "RUNSERVICE_LOG_FORMAT": "JSON",
        "RUNSERVICE_ACCESS_LOG": "false",
    }.items():
        monkeypatch.setenv(name, setting)
    settings = Settings.load()
    assert settings.metrics_address == "0.0.0.0:9464" and settings.tracing is True
    assert settings.log_format == "json" and settings.access_log is False
    flagged = Settings.load(access_log=True, tracing=False)
    assert flagged.access_log is True and flagged.tracing is False
    assert flagged.metrics_address == "0.0.0.0:9464"
    for bad in ({"log_format": "xml"}, {"tracing": "maybe"}, {"metrics_address": "9464"}):
        with pytest.raises(ConfigError):
            Settings.load(**bad)
    for name in (
        "RUNSERVICE_METRICS_ADDRESS",
        "RUNSERVICE_TRACING",
        "RUNSERVICE_LOG_FORMAT",
        "RUNSERVICE_ACCESS_LOG",
    ):
        monkeypatch.delenv(name)
    default = Settings.load()
    assert default.metrics_address is None and not default.tracing and default.access_log


@pytest.fixture
def otlp_grpc() -> Iterator[Collector]:
    with grpc_collector() as collector:
        yield collector


@pytest.mark.parametrize("layout", [(), ("--engine-process",)], ids=["one-process", "engine-process"])
async def test_serve_process_writes_json_lines_and_serves_metrics(
    tmp_path: Path, layout: tuple[str, ...], otlp_grpc: Collector
) -> None:
    """With `--engine-process` too: both processes log JSON lines, and the front's endpoint
    serves its RPC metrics with the engine process's run metrics."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNSERVICE_", "OTEL_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "service"), str(ROOT / "stubs")])
    # The spans' own collector: with the exporter installed, none would wait out its retries at exit.
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp_grpc.endpoint
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runservice", "serve", "--address", "127.0.0.1:0", "--data-dir", str(tmp_path),
        "--metrics-address", "127.0.0.1:0", "--log-format", "json", "--tracing", *layout,
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    lines: list[dict[str, Any]] = []
    try:
        address = metrics_url = ""
        async with asyncio.timeout(20):
            while not address:
                raw = await proc.stderr.readline()
                assert raw, "the server exited before listening"
                lines.append(json.loads(raw))  # every line is JSON
                message = lines[-1]["message"]
                if message.startswith("metrics on "):
                    metrics_url = message.removeprefix("metrics on ")
                if message.startswith("listening on "):
                    address = message.removeprefix("listening on ")
        async with grpc.aio.insecure_channel(address) as channel:
            stub = run_service_pb2_grpc.RunServiceStub(channel)
            request = run_service_pb2.StartRequest(workflow_id="city-weather", wait=True)
            request.input_data.CopyFrom(to_value({"city": "Paris"}))
            done = await stub.Start(request)
        assert done.run.status == run_pb2.RUN_STATUS_SUCCESS
        samples = await scrape(metrics_url)
        assert (
            value(samples, "runservice_runs_finished_total", workflow="city-weather", status="success") == 1
        )
        assert value(samples, "grpc_server_handled_total", **rpc("Start", code="OK")) == 1
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            rest = await proc.stderr.read()
        assert await proc.wait() == 0
        lines.extend(json.loads(line) for line in rest.decode().splitlines())
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    access = [line for line in lines if line["logger"] == logs.ACCESS_LOGGER]
    assert [line["method"] for line in access] == ["/runservice.v1.RunService/Start"]
    # serve's own handler makes the access line without a record (logs.log_access): all of it
    (line,) = access
    assert list(line) == ["time", "level", "logger", "message", "method", "code", "duration_ms", "peer"]
    assert line["level"] == "INFO" and line["code"] == "OK" and line["duration_ms"] > 0
    assert line["peer"].startswith("ipv4:127.0.0.1:")
    assert line["message"] == f"/runservice.v1.RunService/Start OK {line['duration_ms']:.3f}ms {line['peer']}"
    assert [span.trace_id for span in otlp_grpc.named("run city-weather")] == [done.run.trace_id]


async def test_runs_started_concurrently_in_one_caller_trace_keep_their_own_options(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    async with (
        serving(tmp_path / "runs.db", tracing=Tracing(SimpleSpanProcessor(exporter))) as served,
        stub_for(served) as stub,
    ):
        header = (("traceparent", f"00-{TRACEPARENT_TRACE}-{TRACEPARENT_SPAN}-01"),)

        async def start(tag: str, run_id: str = "") -> Any:
            request = run_service_pb2.StartRequest(
                workflow_id="nested",
                run_id=run_id,
                input_data=count(1),
                tracing_options=run_service_pb2.TracingOptions(tags=[tag]),
                wait=True,
            )
            return (await stub.Start(request, metadata=header)).run

        runs = await asyncio.gather(*(start(f"t{i}", f"run-{i}" if i % 2 else "") for i in range(6)))

        async def all_ended() -> None:
            assert len([s for s in exporter.get_finished_spans() if s.name == "run nested"]) == 6

        await eventually(all_ended)
    tags = {
        dict(s.attributes or {})["runservice.run_id"]: dict(s.attributes or {})["runservice.tags"]
        for s in exporter.get_finished_spans()
        if s.name == "run nested"
    }
    assert sorted(tags.values(), key=str) == [(f"t{i}",) for i in range(6)]
    for i in range(1, 6, 2):  # runs named by the caller get exactly their own options
        assert tags[f"run-{i}"] == (f"t{i}",)
    assert {run.trace_id for run in runs} == {TRACEPARENT_TRACE}


async def test_a_run_span_uses_the_run_trace_id_also_when_started_by_stream(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    async with (
        serving(tmp_path / "runs.db", tracing=Tracing(SimpleSpanProcessor(exporter))) as served,
        stub_for(served) as stub,
    ):
        plain = await stub.Start(
            run_service_pb2.StartRequest(workflow_id="nested", input_data=count(1), wait=True)
        )
        streamed = run_service_pb2.StreamRequest(
            start=run_service_pb2.StartRequest(
                workflow_id="nested",
                input_data=count(2),
                tracing_options=run_service_pb2.TracingOptions(trace_id="feed", tags=["streamed"]),
            )
        )
        messages = [message async for message in stub.Stream(streamed)]
        assert messages[-1].end_of_stream and messages[-1].run.trace_id == "feed".rjust(32, "0")

        async def both_ended() -> None:
            assert len([s for s in exporter.get_finished_spans() if s.name == "run nested"]) == 2

        await eventually(both_ended)
    runs = {
        dict(s.attributes or {})["runservice.run_id"]: s
        for s in exporter.get_finished_spans()
        if s.name == "run nested"
    }
    first = runs[plain.run.run_id]
    assert first.context.trace_id == int(plain.run.trace_id, 16) and first.parent is None
    second = runs[messages[-1].run.run_id]
    assert second.context.trace_id == 0xFEED and second.parent is None
    assert dict(second.attributes or {})["runservice.tags"] == ("streamed",)


async def test_a_run_recovered_at_boot_is_traced_and_counted(tmp_path: Path) -> None:
    """The engine re-drives a sleeping run at boot: its spans and metrics come from the next server."""
    db = tmp_path / "runs.db"
    async with serving(db) as served, stub_for(served) as stub:
        started = await stub.Start(run_service_pb2.StartRequest(workflow_id="sleepy", input_data=count(1)))
        run_id = started.run.run_id

        async def sleeping() -> None:
            run = await stub.GetRun(run_service_pb2.GetRunRequest(run_id=run_id))
            assert run.run.status == run_pb2.RUN_STATUS_WAITING

        await eventually(sleeping)
    exporter = InMemorySpanExporter()
    with json_log_lines() as lines:
        async with (
            serving(db, metrics=True, tracing=Tracing(SimpleSpanProcessor(exporter))) as served,
            stub_for(served) as stub,
        ):
            await eventually(finished_here(stub, run_id, exporter, served))
    # The recovery's line is logged outside the run's drive, and still names the run and trace.
    (redriving,) = [line for line in lines if "re-driving" in line["message"]]
    assert (redriving["run_id"], redriving["trace_id"]) == (run_id, started.run.trace_id)
    spans = exporter.get_finished_spans()
    run_span = _by_name(spans, "run sleepy")
    assert dict(run_span.attributes or {})["runservice.execution"] == "recovery"
    assert run_span.context.trace_id == int(started.run.trace_id, 16)
    again = _by_name(spans, "step add-again")
    assert again.parent is not None and again.parent.span_id == run_span.context.span_id


def finished_here(
    stub: Any, run_id: str, exporter: InMemorySpanExporter, served: Served
) -> Callable[[], Any]:
    async def finished() -> None:
        run = await stub.GetRun(run_service_pb2.GetRunRequest(run_id=run_id))
        assert run.run.status == run_pb2.RUN_STATUS_SUCCESS
        assert any(s.name == "run sleepy" for s in exporter.get_finished_spans())
        samples = await scrape(served.metrics_url)
        assert value(samples, "runservice_runs_finished_total", workflow="sleepy", status="success") == 1
        again = {"workflow": "sleepy", "step": "add-again", "status": "success"}
        assert value(samples, "runservice_step_duration_seconds_count", **again) == 1

    return finished


async def test_text_log_lines_about_a_run_end_with_its_fields(tmp_path: Path) -> None:
    stream = io.StringIO()
    handler = logs.handler("text", stream=stream)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        async with serving(tmp_path / "runs.db") as served, stub_for(served) as stub:
            done = await stub.Start(
                run_service_pb2.StartRequest(workflow_id="nested", input_data=count(7), wait=True)
            )
    finally:
        handler.flush()
        root.removeHandler(handler)
        root.setLevel(old_level)
    (line,) = [line for line in stream.getvalue().splitlines() if "adding one to 7" in line]
    message, _, fields = line.partition("adding one to 7 [")
    # step_path=add joins them once the driver binds the step (see the xfail test above).
    assert fields.endswith("]") and set(fields[:-1].split()) - {"step_path=add"} == {
        f"run_id={done.run.run_id}",
        f"trace_id={done.run.trace_id}",
    }
    assert " INFO tests.observability.steps " in message


def test_line_times_are_those_of_the_standard_formatter_across_seconds() -> None:
    """The formatters make a second's date and time once; every line still shows its own time."""
    text, standard = logs.TextFormatter(), logging.Formatter(logs.TEXT_FORMAT)
    json_lines = logs.JsonFormatter()
    for created in (1700000000.25, 1700000000.999, 1700000001.0005, 1700003600.5, 1700000000.5):
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert text.formatTime(record) == standard.formatTime(record)
        assert text.formatTime(record, "%H:%M") == standard.formatTime(record, "%H:%M")
        stamp = json.loads(json_lines.format(record))["time"]
        utc = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
        assert stamp == f"{utc}.{int(created % 1 * 1000):03d}Z"


def test_a_loops_failure_is_logged_once_a_while_per_kind(caplog: pytest.LogCaptureFixture) -> None:
    """A background loop's failure is logged at once, then held back for `REPEAT_EVERY`; a
    failure of another kind under the same message is not held back behind it (review)."""
    log = logging.getLogger("runservice.test.repeats")
    failures = logs.LoopFailures(log)
    with caplog.at_level(logging.WARNING, logger=log.name):
        for kind in (TimeoutError, TimeoutError, ValueError, TimeoutError):
            failures.failed(logging.WARNING, "a loop failed: %s", kind.__name__, kind=kind)
    told = [r.getMessage() for r in caplog.records]
    assert told == ["a loop failed: TimeoutError", "a loop failed: ValueError"]


def test_a_loops_new_failure_after_a_success_is_logged_at_once(caplog: pytest.LogCaptureFixture) -> None:
    """A turn that succeeded ends the outage: a failure within `REPEAT_EVERY` of the last line
    is a new outage, and its first line is not held back (before, it was until the 30 s
    passed: an operator missed its start). Only the loop that succeeded forgets: another's
    failure under the same message is still held back."""
    log = logging.getLogger("runservice.test.recovered")
    failures, other = logs.LoopFailures(log), logs.LoopFailures(log)
    with caplog.at_level(logging.WARNING, logger=log.name):
        failures.failed(logging.WARNING, "a loop failed: %s", "first outage", kind=TimeoutError)
        other.failed(logging.WARNING, "a loop failed: %s", "the other loop's", kind=TimeoutError)
        failures.recovered()
        other.failed(logging.WARNING, "a loop failed: %s", "the other loop's, again", kind=TimeoutError)
        failures.failed(logging.WARNING, "a loop failed: %s", "second outage", kind=TimeoutError)
        failures.failed(logging.WARNING, "a loop failed: %s", "second outage, again", kind=TimeoutError)
    told = [r.getMessage() for r in caplog.records]
    assert told == [
        "a loop failed: first outage",
        "a loop failed: the other loop's",
        "a loop failed: second outage",
    ]
