"""The grpc.aio server: RunService, health and reflection on one port, and `serve()`.

`build_server` gives tests an in-process server (`127.0.0.1:0` picks a free port);
`serve` is the process entry: open the store, run the engine, serve until SIGTERM or
SIGINT, then drain (health NOT_SERVING, streams end with UNAVAILABLE so clients resume
elsewhere), stop within the grace period, close the engine and the store.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Iterable

import grpc
from google.rpc import error_details_pb2  # noqa: F401  (registers error detail types for reflection)
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from runservice.engine import Engine
from runservice.server.servicer import RunServicer
from runservice.storage import open_store, redact_url
from runservice.v1 import run_service_pb2, run_service_pb2_grpc
from runservice.workflow import Workflow

logger = logging.getLogger(__name__)

RUN_SERVICE = run_service_pb2.DESCRIPTOR.services_by_name["RunService"].full_name

_MIB = 1024 * 1024
SERVER_OPTIONS: list[tuple[str, int]] = [
    ("grpc.so_reuseport", 0),  # fail loudly on a taken port instead of sharing it silently
    ("grpc.max_receive_message_length", 8 * _MIB),
    ("grpc.max_send_message_length", 8 * _MIB),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # Polyglot clients ping every 10-30 s; the 5 min default would answer GOAWAY too_many_pings.
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.max_connection_idle_ms", 300_000),
    # Recycle long-lived connections so load spreads; streams resume from their cursor.
    ("grpc.max_connection_age_ms", 1_800_000),
    ("grpc.max_connection_age_grace_ms", 30_000),
]


class RunServer:
    """One grpc.aio server for one engine. Create it inside the running event loop."""

    def __init__(self, engine: Engine, *, address: str, heartbeat: float) -> None:
        self.engine = engine
        self.server = grpc.aio.server(options=SERVER_OPTIONS)
        run_service_pb2_grpc.add_RunServiceServicer_to_server(
            RunServicer(engine, heartbeat=heartbeat), self.server
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (RUN_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        try:
            self.port = self.server.add_insecure_port(address)
        except RuntimeError as exc:
            raise OSError(f"cannot listen on {address}: {exc}") from None
        if self.port == 0:
            raise OSError(f"cannot listen on {address}")
        host = address.rsplit(":", 1)[0]
        self.address = f"{host}:{self.port}"
        """The bound address, with the real port when `address` asked for port 0."""
        self._stopped = False

    async def start(self) -> None:
        """Start serving and report SERVING for liveness ("") and readiness (RunService)."""
        await self.server.start()
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self.health.set(RUN_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        logger.info("listening on %s", self.address)

    async def stop(self, grace: float | None) -> None:
        """Drain: health NOT_SERVING, end follow streams (UNAVAILABLE), then stop within `grace`."""
        if self._stopped:
            return
        self._stopped = True
        await self.health.enter_graceful_shutdown()
        self.engine.drain()
        await self.server.stop(grace)


def build_server(engine: Engine, *, address: str = "127.0.0.1:0", heartbeat: float = 15.0) -> RunServer:
    """A RunServer bound to `address` (not started yet); `.port` is the bound port."""
    return RunServer(engine, address=address, heartbeat=heartbeat)


async def serve(
    workflows: Iterable[Workflow],
    *,
    address: str,
    database_url: str,
    grace: float = 10.0,
    heartbeat: float = 15.0,
) -> None:
    """Serve `workflows` until SIGTERM or SIGINT, then shut down gracefully.

    A second signal during the shutdown exits the process at once.
    """
    workflows = list(workflows)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)

    def on_signal(signum: int) -> None:
        if stop.is_set():
            logger.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(128 + signum)
        logger.info("%s received: shutting down (grace %.1fs)", signal.Signals(signum).name, grace)
        stop.set()

    for signum in signals:
        loop.add_signal_handler(signum, on_signal, signum)
    store = open_store(database_url)
    try:
        await store.open()
        try:
            async with Engine(store, workflows, heartbeat=heartbeat) as engine:
                server = build_server(engine, address=address, heartbeat=heartbeat)
                await server.start()
                logger.info(
                    "serving %d workflows on %s (database: %s)",
                    len(workflows),
                    server.address,
                    redact_url(database_url),
                )
                try:
                    await stop.wait()
                finally:
                    await server.stop(grace)
                # Leaving the block closes the engine: in-flight runs stay `running` and are
                # re-driven at the next boot.
        finally:
            await store.close()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
    logger.info("stopped")
