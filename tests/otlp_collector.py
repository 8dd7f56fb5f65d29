"""OTLP collector stand-ins for tests: an OTLP/gRPC TraceService and an OTLP/HTTP `POST /v1/traces`,
each keeping the spans it received (decoded with opentelemetry-proto) and what it could not read."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str
    resource: dict[str, Any]
    """The resource attributes of the batch the span came in (service.name, ...)."""


@dataclass
class Collector:
    endpoint: str
    """`http://127.0.0.1:PORT`, for OTEL_EXPORTER_OTLP_ENDPOINT."""
    spans: list[ReceivedSpan] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    """Requests that were not OTLP over this collector's protocol, as the collector saw them."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def receive(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        with self.lock:
            for batch in request.resource_spans:
                resource = {a.key: _plain(a.value) for a in batch.resource.attributes}
                for scope in batch.scope_spans:
                    self.spans.extend(ReceivedSpan(s.name, s.trace_id.hex(), resource) for s in scope.spans)

    def named(self, name: str) -> list[ReceivedSpan]:
        with self.lock:
            return [span for span in self.spans if span.name == name]


def _plain(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    def Export(self, request: Any, context: Any) -> trace_service_pb2.ExportTraceServiceResponse:
        self.collector.receive(request)
        return trace_service_pb2.ExportTraceServiceResponse()


@contextlib.contextmanager
def grpc_collector() -> Iterator[Collector]:
    """An OTLP/gRPC collector on a free local port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    port = server.add_insecure_port("127.0.0.1:0")
    collector = Collector(f"http://127.0.0.1:{port}")
    # opentelemetry-proto's generated gRPC module has no type hints
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(collector), server)  # type: ignore[no-untyped-call]
    server.start()
    try:
        yield collector
    finally:
        server.stop(None)


@contextlib.contextmanager
def http_collector() -> Iterator[Collector]:
    """An OTLP/HTTP collector (binary protobuf) on a free local port."""
    collector = Collector("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/x-protobuf":
                self.refuse(f"POST {self.path} {self.headers.get('Content-Type')}")
                return
            collector.receive(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
            reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            # what http.server answers to a request it cannot parse (a gRPC client's HTTP/2 preface)
            with collector.lock:
                collector.rejected.append(f"{code} {message}")
            super().send_error(code, message, explain)

        def refuse(self, what: str) -> None:
            with collector.lock:
                collector.rejected.append(what)
            self.send_response(415)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    collector.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield collector
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
