"""Spans leave a real `runservice serve --tracing` for a real OTLP collector stand-in, over the protocol
and under the service name the standard OTEL_* variables choose."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import grpc
import pytest
from otlp_collector import Collector, grpc_collector, http_collector
from process import serve_argv, server_env, start_server

from runservice.server.tracing import FLUSH_WAIT
from runservice.v1 import run_pb2, run_service_pb2, run_service_pb2_grpc
from runservice.wire import to_value

pytestmark = pytest.mark.timeout(60)

GRPC_PACKAGE = "opentelemetry-exporter-otlp-proto-grpc"
HTTP_PACKAGE = "opentelemetry-exporter-otlp-proto-http"
MODULES = {
    GRPC_PACKAGE: "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
    HTTP_PACKAGE: "opentelemetry.exporter.otlp.proto.http.trace_exporter",
}


async def city_weather(address: str) -> run_service_pb2.StartResponse:
    """A `city-weather` run started with `wait` on the server at `address`; asserts it succeeded."""
    async with grpc.aio.insecure_channel(address) as channel:
        request = run_service_pb2.StartRequest(workflow_id="city-weather", wait=True)
        request.input_data.CopyFrom(to_value({"city": "Paris"}))
        done = await run_service_pb2_grpc.RunServiceStub(channel).Start(request)
    assert done.run.status == run_pb2.RUN_STATUS_SUCCESS
    return done


async def traced_run(tmp_path: Path, otel: dict[str, str], *, uninstalled: str = "") -> tuple[str, str]:
    """Serve with `--tracing` and the `otel` variables (and without the `uninstalled` exporter
    package), run `city-weather`, stop: (the run's trace id, the server's log)."""
    env = server_env()
    for name in [name for name in env if name.startswith("OTEL_")]:
        del env[name]
    # The exporters' timeout (seconds): a collector that does not answer cannot hold the shutdown.
    env.update(OTEL_EXPORTER_OTLP_TIMEOUT="3", **otel)
    if uninstalled:
        blocker = tmp_path / "uninstalled"
        blocker.mkdir()
        # `import` of a module set to None in sys.modules raises ImportError, as when not installed.
        (blocker / "sitecustomize.py").write_text(
            f"import sys\nsys.modules[{MODULES[uninstalled]!r}] = None\n"
        )
        env["PYTHONPATH"] += os.pathsep + str(blocker)
    server = await start_server(serve_argv("--data-dir", str(tmp_path / "data"), "--tracing"), env=env)
    try:
        done = await city_weather(server.address)
        assert await server.stop() == 0, server.text  # the shutdown flushes the spans
    finally:
        await server.kill()
    return done.run.trace_id, server.text


def run_span_of(collector: Collector, trace_id: str) -> dict[str, object]:
    """The resource attributes of the run's one span; asserts it arrived, decoded, alone."""
    assert not collector.rejected
    spans = collector.named("run city-weather")
    assert [span.trace_id for span in spans] == [trace_id]
    return spans[0].resource


async def test_http_protobuf_goes_to_an_http_collector(tmp_path: Path) -> None:
    """`pip install opentelemetry-exporter-otlp` installs both exporters: the variable chooses."""
    with http_collector() as collector:
        trace_id, _ = await traced_run(
            tmp_path,
            {
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
            },
        )
        assert run_span_of(collector, trace_id)["service.name"] == "runservice"
    assert len(collector.named("step fetch-weather")) == 1


async def test_the_traces_protocol_variable_wins_over_the_general_one(tmp_path: Path) -> None:
    with http_collector() as collector:
        trace_id, _ = await traced_run(
            tmp_path,
            {
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
            },
        )
        assert run_span_of(collector, trace_id)["service.name"] == "runservice"


@pytest.mark.parametrize(
    ("resource_variables", "expected"),
    [
        (
            # OTEL_SERVICE_NAME wins over a service.name in OTEL_RESOURCE_ATTRIBUTES (the spec)
            {
                "OTEL_SERVICE_NAME": "billing-runs",
                "OTEL_RESOURCE_ATTRIBUTES": "service.name=no,team=payments",
            },
            {"service.name": "billing-runs", "team": "payments"},
        ),
        (
            {"OTEL_RESOURCE_ATTRIBUTES": "service.name=orders,deployment.environment=test"},
            {"service.name": "orders", "deployment.environment": "test"},
        ),
    ],
    ids=["service-name", "resource-attributes"],
)
async def test_without_a_protocol_spans_go_over_grpc_named_by_the_environment(
    tmp_path: Path, resource_variables: dict[str, str], expected: dict[str, str]
) -> None:
    with grpc_collector() as collector:
        trace_id, _ = await traced_run(
            tmp_path, {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, **resource_variables}
        )
        resource = run_span_of(collector, trace_id)
    assert {key: resource[key] for key in expected} == expected


async def test_without_the_grpc_exporter_spans_go_over_http_named_by_the_environment(tmp_path: Path) -> None:
    with http_collector() as collector:
        trace_id, _ = await traced_run(
            tmp_path,
            {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_SERVICE_NAME": "orders"},
            uninstalled=GRPC_PACKAGE,
        )
        assert run_span_of(collector, trace_id)["service.name"] == "orders"


async def test_http_json_exports_protobuf_over_http_and_says_so(tmp_path: Path) -> None:
    """The Python exporter has no JSON encoding; OTLP/HTTP collectors take protobuf at the same URL."""
    with http_collector() as collector:
        trace_id, log = await traced_run(
            tmp_path,
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint},
        )
        run_span_of(collector, trace_id)
    (warning,) = [line for line in log.splitlines() if "http/json" in line]
    assert "WARNING" in warning and "exporting spans with http/protobuf" in warning


async def test_a_protocol_whose_exporter_is_not_installed_exports_nothing_and_names_the_package(
    tmp_path: Path,
) -> None:
    """Never the other protocol: the collector at the endpoint would not speak it."""
    with grpc_collector() as collector:
        _, log = await traced_run(
            tmp_path,
            {
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
            },
            uninstalled=HTTP_PACKAGE,
        )
    assert collector.spans == []
    (warning,) = [line for line in log.splitlines() if HTTP_PACKAGE in line]
    assert (
        "WARNING" in warning
        and "spans are not exported" in warning
        and f"pip install {HTTP_PACKAGE}" in warning
    )


async def test_a_protocol_that_is_not_one_exports_nothing_and_says_so(tmp_path: Path) -> None:
    with grpc_collector() as collector:
        _, log = await traced_run(
            tmp_path,
            {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http", "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint},
        )
    assert collector.spans == []
    (warning,) = [line for line in log.splitlines() if "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL='http'" in line]
    assert "WARNING" in warning and "grpc, http/protobuf or http/json" in warning


async def test_traces_exporter_none_exports_nothing(tmp_path: Path) -> None:
    """OTEL_TRACES_EXPORTER=none turns exporting off, exporter installed or not (the spec)."""
    with grpc_collector() as collector:
        _, log = await traced_run(
            tmp_path, {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint}
        )
    assert collector.spans == []
    assert "spans are not exported (OTEL_TRACES_EXPORTER=none)" in log


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
async def test_a_collector_that_does_not_answer_holds_up_no_stop(tmp_path: Path, protocol: str) -> None:
    """A collector that takes connections and never answers (hung, or behind a proxy that
    drops everything) held a stop for 30 s with the exporters' default timeout, the event loop
    blocked meanwhile (audit). The last spans now get FLUSH_WAIT, then are dropped, said once."""
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)  # the kernel completes the handshakes; nothing ever answers
        env = server_env()
        for name in [name for name in env if name.startswith("OTEL_")]:
            del env[name]
        env.update(
            OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{hole.getsockname()[1]}",
        )
        data = str(tmp_path / "data")
        argv = serve_argv("--data-dir", data, "--tracing", "--grace", "1", "--drain-delay", "0")
        server = await start_server(argv, env=env)
        try:
            await city_weather(server.address)
            began = time.monotonic()
            assert await server.stop(limit=40) == 0, server.text
            took = time.monotonic() - began
        finally:
            await server.kill()
    assert took < 1 + FLUSH_WAIT + 3, server.text  # the grace, the flush, the rest of a stop
    assert f"spans not exported within {FLUSH_WAIT:g} s of the stop" in server.text


def test_traces_exporter_lists_the_exporters(caplog: pytest.LogCaptureFixture) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    from runservice.server import otlp

    chosen = otlp.span_exporters({"OTEL_TRACES_EXPORTER": "otlp, Console,zipkin"})
    assert [type(exporter) for exporter in chosen] == [OTLPSpanExporter, ConsoleSpanExporter]
    assert "OTEL_TRACES_EXPORTER names 'zipkin', which this server does not export to" in caplog.text
    assert [type(exporter) for exporter in otlp.span_exporters({})] == [OTLPSpanExporter]
    for exporter in chosen:
        exporter.shutdown()
