"""The grpc.aio server: RunService, health and reflection on one port, and `serve()`.

`build_server` gives tests an in-process server (`127.0.0.1:0` picks a free port);
`serve` is the process entry: open the store, run the engine, serve until SIGTERM or
SIGINT, then drain (health NOT_SERVING, streams end with UNAVAILABLE so clients resume
elsewhere), stop within the grace period, close the engine and the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.rpc import error_details_pb2  # noqa: F401  (registers error detail types for reflection)
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from runservice.engine import Engine
from runservice.errors import DatabaseFileMoved, StorageFailed
from runservice.server.auth import AuthInterceptor, TokenSet
from runservice.server.decoding import RECEIVE_SLACK
from runservice.server.engine_process import (
    DATABASE_MOVED_EXIT,
    STORAGE_FAILED_EXIT,
    EngineProcess,
    EngineProcessLost,
    EngineRefused,
)
from runservice.server.front import EngineLink, add_forwarded_service
from runservice.server.health import DrainingHealth
from runservice.server.hosting import add_services, running_engine
from runservice.server.limits import StreamLimitInterceptor
from runservice.server.observability import Observability
from runservice.server.reflection import V1 as REFLECTION_V1
from runservice.server.reflection import V1ALPHA as REFLECTION_V1ALPHA
from runservice.server.reflection import enable_reflection
from runservice.server.schedules import SCHEDULE_SERVICE
from runservice.server.schedules import SERVICE as SCHEDULE_SERVICE_DESCRIPTOR
from runservice.server.tls import ReloadingCredentials, TlsFiles
from runservice.server.tracing import Tracing
from runservice.storage import PRIVATE_DIRECTORY, PRIVATE_FILE, describe_database
from runservice.v1 import run_service_pb2
from runservice.workflow import Schedule, Workflow

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

RUN_SERVICE_DESCRIPTOR = run_service_pb2.DESCRIPTOR.services_by_name["RunService"]
RUN_SERVICE = RUN_SERVICE_DESCRIPTOR.full_name
SERVED_METHODS = frozenset(
    [
        *(
            f"/{service.full_name}/{method.name}"
            for service in (
                RUN_SERVICE_DESCRIPTOR,
                SCHEDULE_SERVICE_DESCRIPTOR,
                health_pb2.DESCRIPTOR.services_by_name["Health"],
            )
            for method in service.methods
        ),
        *(f"/{name}/ServerReflectionInfo" for name in (REFLECTION_V1, REFLECTION_V1ALPHA)),
    ]
)
"""Every method path a server answers (a call to any other is observed as `unknown`)."""

_MIB = 1024 * 1024
EXIT_WAIT = 5.0
"""Seconds the front waits for the exit code of an engine process that went away while starting."""
SERVER_OPTIONS: list[tuple[str, int]] = [
    ("grpc.so_reuseport", 0),  # fail loudly on a taken port instead of sharing it silently
    ("grpc.max_receive_message_length", 8 * _MIB),
    ("grpc.max_send_message_length", 8 * _MIB),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    # What a ping's answer is waited for: gRPC 1.85 takes this, not keepalive_timeout_ms (its
    # own default is 60 s), so a silently dropped client would hold its streams 80 s.
    ("grpc.http2.ping_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # Polyglot clients ping every 10-30 s; the 5 min default would answer GOAWAY too_many_pings.
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.max_connection_idle_ms", 300_000),
    # Recycle long-lived connections so that new calls spread over the replicas (GOAWAY). The
    # calls under way finish on the old connection, however long they wait: a Start or Resume
    # with `wait` lasts as long as its run, and a grace of 30 s cut every such call older than
    # that with UNAVAILABLE, twelve at once beyond the clients' retries (audit). Streams are
    # ended by the server itself after STREAM_AGE (servicer.py), and resume from their cursor.
    ("grpc.max_connection_age_ms", 1_800_000),
    ("grpc.max_connection_age_grace_ms", 2**31 - 1),  # gRPC's "infinite"
]


@dataclass(frozen=True, slots=True)
class EdgeOptions:
    """Security and limits of the gRPC edge (the defaults serve plaintext without auth)."""

    tokens: TokenSet | None = None
    """Bearer tokens; None: no authentication."""
    tokens_poll_interval: float = 2.0
    """Seconds between looks at the tokens file for changes (see `AuthInterceptor.follow_file`)."""
    tls: TlsFiles | None = None
    """Serve TLS (mTLS when `tls.client_ca` is set); None: plaintext."""
    max_message_size: int = 8 * _MIB
    max_concurrent_streams: int = 1000
    """Concurrent calls per HTTP/2 connection; more wait on the client side."""
    max_streams_per_caller: int = 1000
    """Open Stream/Watch calls per caller; 0: no limit."""
    drain_delay: float = 0.0
    """Seconds between health NOT_SERVING and closing the listener on shutdown."""
    probe_socket: Path | None = None
    """A Unix socket serving the health service alone, in plaintext (`runservice health` uses it:
    a probe inside the container then needs no TLS files or client certificate); None: none."""


def server_options(options: EdgeOptions) -> list[tuple[str, int]]:
    """SERVER_OPTIONS with the limits of `options`."""
    limits = {
        # More than the limit, so that the decoder refuses an oversized request with details.
        "grpc.max_receive_message_length": options.max_message_size * RECEIVE_SLACK,
        "grpc.max_send_message_length": options.max_message_size,
        "grpc.max_concurrent_streams": options.max_concurrent_streams,
    }
    return [(k, v) for k, v in SERVER_OPTIONS if k not in limits] + list(limits.items())


class RunServer:
    """One grpc.aio server for one engine. Create it inside the running event loop."""

    def __init__(
        self,
        engine: Engine | None,
        *,
        address: str,
        heartbeat: float,
        options: EdgeOptions | None = None,
        observability: Observability | None = None,
        engine_link: EngineLink | None = None,
    ) -> None:
        """Serves `engine`, or with `engine_link` (and no engine) forwards RunService and
        ScheduleService calls to the engine process (`serve --engine-process`)."""
        self.engine = engine
        self.engine_link = engine_link
        self.options = options = options or EdgeOptions()
        self.observability = observability
        # Observability first: it times and counts every call, refused ones included.
        interceptors: list[grpc.aio.ServerInterceptor] = (
            list(observability.interceptors(SERVED_METHODS)) if observability is not None else []
        )
        self.auth = AuthInterceptor(options.tokens) if options.tokens is not None else None
        if self.auth is not None:
            interceptors.append(self.auth)
        if options.max_streams_per_caller > 0:
            # After auth: it reads the caller that the auth wrapper sets.
            interceptors.append(StreamLimitInterceptor(options.max_streams_per_caller))
        self.server = grpc.aio.server(options=server_options(options), interceptors=interceptors)
        if engine_link is not None:
            add_forwarded_service(self.server, engine_link, RUN_SERVICE_DESCRIPTOR)
            add_forwarded_service(self.server, engine_link, SCHEDULE_SERVICE_DESCRIPTOR)
        else:
            assert engine is not None, "a RunServer needs an engine or an engine link"
            add_services(
                self.server,
                engine,
                heartbeat=heartbeat,
                tracing=observability.tracing if observability is not None else None,
                max_message_size=options.max_message_size,
            )
        self.health = DrainingHealth()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        enable_reflection(self.server, (RUN_SERVICE, SCHEDULE_SERVICE, health.SERVICE_NAME))  # v1 and v1alpha
        self.tls = ReloadingCredentials(options.tls) if options.tls is not None else None
        try:
            if self.tls is not None:
                self.port = self.server.add_secure_port(address, self.tls.credentials)
            else:
                self.port = self.server.add_insecure_port(address)
        except RuntimeError as exc:
            raise OSError(f"cannot listen on {address}: {exc}") from None
        if self.port == 0:
            raise OSError(f"cannot listen on {address}")
        host = address.rsplit(":", 1)[0]
        self.address = f"{host}:{self.port}"
        """The bound address, with the real port when `address` asked for port 0."""
        self.probe: grpc.aio.Server | None = None
        self._probe_lock: int | None = None
        if options.probe_socket is not None:
            self.probe, self._probe_lock = _probe_server(options.probe_socket, self.health)
        self._stopped = False
        self._storage_available = True
        self._storage_changed = asyncio.Event()
        self._readiness: asyncio.Task[None] | None = None
        self._tokens_file: asyncio.Task[None] | None = None
        self._stop_listening: Callable[[], None] = lambda: None

    async def start(self) -> None:
        """Start serving and report SERVING for liveness ("") and readiness (RunService and
        ScheduleService, while storage answers: `_follow_storage`)."""
        if self.observability is not None:
            await self.observability.start()
        await self.server.start()
        if self.probe is not None:
            await self.probe.start()
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self._set_readiness(health_pb2.HealthCheckResponse.SERVING)
        self._readiness = asyncio.create_task(self._follow_storage(), name="readiness")
        if self.auth is not None:
            self._tokens_file = asyncio.create_task(
                self.auth.follow_file(self.options.tokens_poll_interval), name="tokens-file"
            )
        if self.engine_link is not None:
            self.engine_link.on_storage = self._storage_answers
            self._storage_answers(self.engine_link.storage_available)  # told before we listened
        elif self.engine is not None:
            self._stop_listening = self.engine.listen_storage(self._storage_answers)
        logger.info("listening on %s", self.address)

    def _storage_answers(self, available: bool) -> None:
        self._storage_available = available
        self._storage_changed.set()

    async def _follow_storage(self) -> None:
        """Readiness follows storage: NOT_SERVING for RunService and ScheduleService while
        the database does not answer (a load balancer or a readiness probe moves callers to
        a replica that can serve them), SERVING again once it does. Liveness ("") stays
        SERVING: the process is fine, and restarting it would not bring the database back."""
        shown = True
        while True:
            await self._storage_changed.wait()
            self._storage_changed.clear()
            available = self._storage_available
            if available == shown:
                continue
            shown = available
            if available:
                logger.info("the database answers again: health SERVING")
                await self._set_readiness(health_pb2.HealthCheckResponse.SERVING)
            else:
                logger.warning("the database does not answer: health NOT_SERVING until it does")
                await self._set_readiness(health_pb2.HealthCheckResponse.NOT_SERVING)

    async def _set_readiness(self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        for service in (RUN_SERVICE, SCHEDULE_SERVICE):
            await self.health.set(service, status)

    async def stop(self, grace: float | None, *, drain_delay: float | None = None) -> None:
        """Stop in phases: health NOT_SERVING while still serving for `drain_delay` seconds (default
        from the options), so readiness probes and load balancers move away; then end follow
        streams (UNAVAILABLE, clients resume elsewhere) and stop accepting; in-flight calls get
        `grace` seconds."""
        if self._stopped:
            return
        self._stopped = True
        self._stop_listening()
        if self._readiness is not None:
            self._readiness.cancel()
            await asyncio.gather(self._readiness, return_exceptions=True)
        await self.health.enter_graceful_shutdown()
        delay = self.options.drain_delay if drain_delay is None else drain_delay
        if delay > 0:
            logger.info("health NOT_SERVING; still serving for the drain delay (%.1fs)", delay)
            await asyncio.sleep(delay)
        self.health.drain()
        if self.engine_link is not None:
            self.engine_link.drain()
        elif self.engine is not None:
            self.engine.drain()
        try:
            await self.server.stop(grace)
        finally:
            if self.probe is not None:
                await self.probe.stop(0)  # gRPC removes the socket file: this server's, by its lock
            if self._probe_lock is not None:
                os.close(self._probe_lock)
            # Only now: calls served during the drain delay and the grace see revocations too.
            if self._tokens_file is not None:
                self._tokens_file.cancel()
                await asyncio.gather(self._tokens_file, return_exceptions=True)
            if self.auth is not None:
                self.auth.close()
            if self.observability is not None:
                await self.observability.stop()


_SOCKET_PATH_MAX = 107
"""The longest path a Unix socket can be bound to (`sun_path` is 108 bytes on Linux)."""


def _probe_server(path: Path, servicer: DrainingHealth) -> tuple[grpc.aio.Server | None, int | None]:
    """A server of `servicer` alone on the Unix socket `path`, which only its owner may connect
    to (what it tells, anyone who can read the data directory can tell), and the descriptor of
    the lock that makes it this server's; (None, None), logged, when the socket cannot be made
    or another server holds it (the probe then dials the TCP address)."""
    path = path.expanduser().resolve()
    if len(os.fsencode(path)) > _SOCKET_PATH_MAX:
        logger.info("no health socket: %s is longer than a Unix socket path can be", path)
        return None, None
    try:
        path.parent.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
        lock = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
    except OSError as exc:
        logger.warning("no health socket at %s (%s): `runservice health` dials the address", path, exc)
        return None, None
    try:
        # gRPC replaces any file at the path when it binds, and removes it when it stops: the
        # lock keeps a second server of this host on the same data directory off a live one.
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(lock)
        logger.info("no health socket: another server of this host serves %s", path)
        return None, None
    probe = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, probe)
    try:
        bound = probe.add_insecure_port(f"unix:{path}")  # bound here (a stale socket is replaced)
        if bound:
            os.chmod(path, PRIVATE_FILE)  # connecting takes write permission: the owner's alone
    except (OSError, RuntimeError) as exc:
        bound, reason = 0, str(exc)
    else:
        reason = "gRPC could not bind it"
    if not bound:
        os.close(lock)
        logger.warning("no health socket at %s (%s): `runservice health` dials the address", path, reason)
        return None, None
    return probe, lock


def build_server(
    engine: Engine,
    *,
    address: str = "127.0.0.1:0",
    heartbeat: float = 15.0,
    options: EdgeOptions | None = None,
    observability: Observability | None = None,
) -> RunServer:
    """A RunServer bound to `address` (not started yet); `.port` is the bound port."""
    return RunServer(
        engine, address=address, heartbeat=heartbeat, options=options, observability=observability
    )


async def serve(
    workflows: Iterable[Workflow],
    *,
    address: str,
    database_url: str,
    durability: str = "full",
    grace: float = 10.0,
    heartbeat: float = 15.0,
    lease_seconds: float = 10.0,
    claim_interval: float = 1.0,
    retention: float = 0.0,
    max_active_runs: int = 0,
    workflow_limits: Mapping[str, int] | None = None,
    replica_name: str | None = None,
    options: EdgeOptions | None = None,
    address_file: Path | None = None,
    metrics_address: str | None = None,
    tracing: bool = False,
    access_log: bool = True,
    schedules: Iterable[Schedule] = (),
    engine_settings: dict[str, Any] | None = None,
) -> None:
    """Serve `workflows` until SIGTERM or SIGINT, then shut down gracefully.

    Shutdown phases: health NOT_SERVING while still serving for the drain delay; stop accepting;
    in-flight calls and running steps get `grace` seconds; runs still going are then stopped at
    their last checkpoint and each is logged (the next boot re-drives them). A second signal
    during the shutdown exits the process at once. SIGHUP reloads the tokens and the TLS certificate
    at once (both are also read again when their files change).
    `address_file`, when given, receives the bound address (`runservice health` reads it).
    `metrics_address` serves Prometheus metrics there; `tracing` makes OpenTelemetry spans
    (exported over OTLP when its exporter package is installed); `access_log` logs one line
    per RPC. `schedules` are cron schedules declared by the configuration, `workflow_limits`
    the bounds it gives workflows' runs (replacing their authors'). `durability` is the
    SQLite store's (see `open_store`). With `engine_settings` (the `serve` settings), the
    store and the engine run in an engine process started with them, and this process
    serves gRPC (see server/engine_process.py). If the store fails for good (a failed sync:
    see `StorageFailed`), the server stops at once and this raises it.
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
    server: RunServer | None = None

    def on_hangup() -> None:
        logger.info("SIGHUP received: reloading the tokens file and the TLS certificate, if any")
        if server is not None and server.auth is not None:
            server.auth.reload()
        if server is not None and server.tls is not None:
            server.tls.request_reload()  # read at the next handshake

    loop.add_signal_handler(signal.SIGHUP, on_hangup)

    def serving(started: RunServer) -> None:
        nonlocal server
        server = started

    failure: list[StorageFailed] = []

    def on_failure(error: StorageFailed) -> None:
        # Nothing more can be stored or told: no drain delay, no grace for running steps.
        failure.append(error)
        stop.set()

    if engine_settings is not None:
        try:
            await _serve_front(
                engine_settings,
                stop,
                serving,
                address=address,
                grace=grace,
                heartbeat=heartbeat,
                options=options,
                address_file=address_file,
                metrics_address=metrics_address,
                access_log=access_log,
            )
        finally:
            for signum in (*signals, signal.SIGHUP):
                loop.remove_signal_handler(signum)
        logger.info("stopped")
        return
    try:
        async with running_engine(
            workflows,
            lambda store: Observability(
                store,
                metrics_address=metrics_address,
                tracing=Tracing.with_default_exporter() if tracing else None,
                access_log=access_log,
            ),
            database_url=database_url,
            durability=durability,
            heartbeat=heartbeat,
            lease_seconds=lease_seconds,
            claim_interval=claim_interval,
            retention=retention,
            max_active_runs=max_active_runs,
            workflow_limits=workflow_limits,
            replica_name=replica_name,
            schedules=schedules,
            on_failure=on_failure,
        ) as (engine, observability):
            server = build_server(
                engine, address=address, heartbeat=heartbeat, options=options, observability=observability
            )
            await server.start()
            if address_file is not None:
                _write_address(address_file, server.address)
            logger.info(
                "serving %d workflows on %s (database: %s)",
                len(workflows),
                server.address,
                describe_database(database_url),
            )
            try:
                await stop.wait()
            finally:
                # Calls and run tasks share the grace period; what is left is logged.
                if failure:
                    await asyncio.gather(server.stop(0, drain_delay=0), engine.shutdown(0))
                else:
                    await asyncio.gather(server.stop(grace), _after_drain(server, engine, grace))
    finally:
        for signum in (*signals, signal.SIGHUP):
            loop.remove_signal_handler(signum)
    if failure:
        raise failure[0]
    logger.info("stopped")


async def _serve_front(
    engine_settings: dict[str, Any],
    stop: asyncio.Event,
    serving: Callable[[RunServer], None],
    *,
    address: str,
    grace: float,
    heartbeat: float,
    options: EdgeOptions | None,
    address_file: Path | None,
    metrics_address: str | None,
    access_log: bool,
) -> None:
    """`serve` with the engine in its own process: start it, serve gRPC once it is ready,
    and on a stop signal drain and stop both in the same phases as one process. If the
    engine process goes away, stop at once and raise (the process exits with an error)."""
    engine = await EngineProcess.start(engine_settings)
    lost_code: int | None = None
    try:
        ready = await _first(engine.link.ready, stop)
        if ready is None:
            return  # stopped while the engine was starting
        if "error" in ready:
            message = str(ready["error"])
            if "code" not in ready:  # it did not refuse, it died: how it ended says a little
                with contextlib.suppress(TimeoutError):
                    message += f" (code {await asyncio.wait_for(engine.process.wait(), EXIT_WAIT)})"
            raise EngineRefused(message, int(ready.get("code", 1)))
        observability = Observability(
            None, metrics_address=metrics_address, access_log=access_log, engine_metrics=engine.link.metrics
        )
        try:
            await observability.start()
            server = RunServer(
                None,
                address=address,
                heartbeat=heartbeat,
                options=options,
                observability=observability,
                engine_link=engine.link,
            )
            serving(server)
            await server.start()
            if address_file is not None:
                _write_address(address_file, server.address)
            logger.info("serving on %s; the engine runs in process %d", server.address, engine.process.pid)
            lost_code = await _first(engine.gone(), stop)
            if lost_code is not None:
                logger.error("the engine process exited (code %s): stopping", lost_code)
                await server.stop(0, drain_delay=0)
            else:
                await asyncio.gather(server.stop(grace), _after_drain_link(server, engine.link, grace))
        finally:
            await observability.stop()
    finally:
        drain_delay = options.drain_delay if options is not None else 0.0
        code = await engine.stop(within=grace + drain_delay + 30)
    # The store may fail while running steps finish after a stop, as well as while serving.
    if STORAGE_FAILED_EXIT in (lost_code, code):
        raise StorageFailed("as the engine process logged")
    if DATABASE_MOVED_EXIT in (lost_code, code):
        raise DatabaseFileMoved("as the engine process logged")
    if lost_code is not None:
        raise EngineProcessLost(f"the engine process exited unexpectedly (code {lost_code})")
    if code != 0:
        logger.warning("the engine process exited with code %s", code)


async def _first(awaited: Awaitable[_T], stop: asyncio.Event) -> _T | None:
    """What `awaited` gives, or None when `stop` is set first (it is then cancelled)."""
    wanted = asyncio.ensure_future(awaited)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((wanted, stopped), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (wanted, stopped):
            if not task.done():
                task.cancel()
        await asyncio.gather(wanted, stopped, return_exceptions=True)
    return wanted.result() if wanted.done() and not wanted.cancelled() else None


async def _after_drain_link(server: RunServer, engine: EngineLink, grace: float) -> None:
    """`_after_drain` for the engine process: tell it to stop, giving running steps `grace`."""
    await asyncio.sleep(server.options.drain_delay)
    engine.stop(grace)


async def _after_drain(server: RunServer, engine: Engine, grace: float) -> None:
    """Once the drain delay is over, give running steps `grace` seconds, then stop the rest."""
    await asyncio.sleep(server.options.drain_delay)
    await engine.shutdown(grace)


def _write_address(path: Path, address: str) -> None:
    """Write the bound address atomically (a health check never reads half a line), in a
    file only the server's user may read, as everything it makes in the data directory."""
    try:
        path.parent.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE)
        with os.fdopen(fd, "w") as file:
            file.write(address + "\n")
        os.replace(partial, path)
    except OSError as exc:
        logger.warning("cannot write the address file %s: %s", path, exc)
