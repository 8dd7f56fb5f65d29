"""A real server with EdgeOptions (auth, TLS, limits) for edge tests, and reading ErrorInfo."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from workflows import WORKFLOWS

from runservice.engine import Engine
from runservice.server import EdgeOptions, RunServer, build_server
from runservice.storage import open_store
from runservice.v1 import run_service_pb2
from runservice.workflow import Workflow

HEARTBEAT = 0.2


@contextlib.asynccontextmanager
async def serving(
    db: Path, options: EdgeOptions, workflows: Iterable[Workflow] = WORKFLOWS
) -> AsyncIterator[RunServer]:
    store = open_store(str(db))
    await store.open()
    try:
        async with Engine(store, workflows, heartbeat=HEARTBEAT) as engine:
            server = build_server(engine, heartbeat=HEARTBEAT, options=options)
            await server.start()
            try:
                yield server
            finally:
                await server.stop(0.5)
    finally:
        await store.close()


def error_info(exc: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info
    raise AssertionError(f"no ErrorInfo in {exc!r}")


@contextlib.asynccontextmanager
async def losing_first_replies(upstream: str, seen: dict[str, list[str]]) -> AsyncIterator[str]:
    """A proxy of Start, CreateRun, DeleteRun and Restart to `upstream` that answers the first call of
    each with UNAVAILABLE after it was carried out (a reply lost to a drain, which the clients
    retry); what names each call (its request_id; CreateRun's run_id) goes to `seen[method]`."""
    channel = grpc.aio.insecure_channel(upstream)
    named_by: dict[str, tuple[Any, str]] = {
        "Start": (run_service_pb2.StartRequest, "request_id"),
        "CreateRun": (run_service_pb2.CreateRunRequest, "run_id"),
        "DeleteRun": (run_service_pb2.DeleteRunRequest, "request_id"),
        "Restart": (run_service_pb2.RestartRequest, "request_id"),
    }

    def forwarding(method: str, request_type: Any, field: str) -> grpc.RpcMethodHandler[Any, Any]:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            f"/runservice.v1.RunService/{method}"
        )
        calls = seen.setdefault(method, [])

        async def forward(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            calls.append(getattr(request_type.FromString(raw), field))
            reply = await call(raw)
            if len(calls) == 1:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "draining; the run goes on")
            return reply

        return grpc.unary_unary_rpc_method_handler(forward)

    handlers = {method: forwarding(method, *named) for method, named in named_by.items()}
    handlers["Watch"] = _cutting_watches(channel, seen.setdefault("Watch", []))
    async with _proxy(handlers, channel) as address:
        yield address


def _cutting_watches(channel: grpc.aio.Channel, calls: list[str]) -> grpc.RpcMethodHandler[Any, Any]:
    """Watch, relayed, but the first call ends UNAVAILABLE after its first message (a drain)
    and the second at once, OK, without `end_of_stream` (a proxy's idle cut): a follower must
    reopen both times from the last sequence it saw."""
    watch: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
        "/runservice.v1.RunService/Watch"
    )

    async def forward(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[bytes]:
        calls.append(str(run_service_pb2.WatchRequest.FromString(raw).after_sequence))
        if len(calls) == 2:
            return
        async for message in watch(raw):
            yield message
            if len(calls) == 1:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "draining; reconnect from your sequence")

    return grpc.unary_stream_rpc_method_handler(forward)


@contextlib.asynccontextmanager
async def slow_to_end(upstream: str, ends: list[str], hold: float = 0.3) -> AsyncIterator[str]:
    """A proxy of Watch and Stream to `upstream` that relays every message at once but ends each
    call `hold` seconds after upstream ended it; `ends` gets "ok" for a call it ended so, and
    "cancelled" for one its client cancelled first (one that stopped reading at the end)."""
    channel = grpc.aio.insecure_channel(upstream)

    def forwarding(method: str) -> grpc.RpcMethodHandler[Any, Any]:
        call: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
            f"/runservice.v1.RunService/{method}"
        )

        async def forward(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[bytes]:
            try:
                async for message in call(raw):
                    yield message
                await asyncio.sleep(hold)
            except (asyncio.CancelledError, GeneratorExit):
                ends.append("cancelled")
                raise
            ends.append("ok")

        return grpc.unary_stream_rpc_method_handler(forward)

    async with _proxy({method: forwarding(method) for method in ("Watch", "Stream")}, channel) as address:
        yield address


@contextlib.asynccontextmanager
async def _proxy(
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]], upstream: grpc.aio.Channel
) -> AsyncIterator[str]:
    """A server on a free local port answering RunService's `handlers`; closes `upstream` after."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("runservice.v1.RunService", handlers)]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)
        await upstream.close()
