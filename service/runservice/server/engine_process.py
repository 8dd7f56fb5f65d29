"""`serve --engine-process`: the gRPC edge and the engine in two processes.

Why: under load one event loop thread runs both the gRPC edge and the engine and store,
and it is the limit (about 95 % busy at 64 runs in flight) while a second core idles; the
GIL keeps threads from helping. Split, each half has a core (BENCHMARKS.md has the
figures: more runs per second under load, about 0.1 ms more per call one at a time).

The serving process (the front) starts the engine process with one end of a socketpair
(`python -m runservice serve --engine-link-fd N`), sends it the settings, and serves
gRPC once the engine says it is ready. The engine process opens the store, runs the
engine and the servicers, and ignores SIGINT and SIGTERM: the front tells it when to
drain and when to stop, within the same grace period as one process. If the front dies,
the engine process ends at once, as one process killed would have, so that a restart
finds the database free: on Linux the kernel kills it with the front, elsewhere it stops
when the link closes. If the engine process dies, the front ends every open call
UNAVAILABLE and exits with an error, for the supervisor to start both again. Either way
the runs left `running` are re-driven at the next start, as after a crash of one process.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import site
import socket
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import runservice
from runservice import logs
from runservice.errors import StorageFailed
from runservice.server.engine_host import EngineHost, HandlerTable
from runservice.server.front import EngineLink
from runservice.server.hosting import add_services, running_engine
from runservice.server.observability import Observability
from runservice.server.tracing import Tracing
from runservice.storage import describe_database
from runservice.v1 import run_service_pb2
from runservice.workflow import Schedule, Workflow

logger = logging.getLogger(__name__)

ENGINE_LINK_FD = "--engine-link-fd"
"""The hidden `serve` flag that makes a process the engine process."""


STORAGE_FAILED_EXIT = 3
"""The engine process's exit code when its store failed for good (see `StorageFailed`): the
front then stops with the same error."""
DATABASE_MOVED_EXIT = 4
"""The same, when its SQLite file was deleted or replaced (see `DatabaseFileMoved`)."""


class EngineRefused(RuntimeError):
    """The engine process could not start; `message` says why, `code` is `serve`'s exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class EngineProcessLost(RuntimeError):
    """The engine process exited while the front was serving."""


RELAY_DRAIN = 1.0
"""Seconds the front reads on from the engine's stderr once the engine process is gone: the
processes its steps started may hold it open for good."""
_RELAY_CHUNK = 65536
_RELAY_LONGEST = 1 << 20
"""Bytes of a line without its end that the relay keeps; more is written as it is."""


async def relay_stderr(stream: asyncio.StreamReader) -> None:
    """Write what the engine process writes to its stderr, whole lines at a time, through this
    process's log handler (`logs.relay_lines`). The two processes once shared one stderr, and
    a line longer than a pipe's atomic write (a traceback, a step's long log line) was spliced
    with the other's lines: 80 of 1,343 JSON lines were not JSON (audit)."""
    pending = b""
    while chunk := await stream.read(_RELAY_CHUNK):
        *lines, pending = (pending + chunk).split(b"\n")
        if len(pending) > _RELAY_LONGEST:
            lines.append(pending)
            pending = b""
        if lines:
            logs.relay_lines([line.decode(errors="replace") for line in lines])
    if pending:
        logs.relay_lines([pending.decode(errors="replace")])


class _Relay:
    """The engine process's stderr, relayed (`relay_stderr`) from a pipe of the front's own.
    Not asyncio's subprocess pipe: `Process.wait()` also waits for those to close, and a
    process a step started (a process pool, a command in the background) inherits the pipe
    and may hold it open for good: the front then never saw the engine die, and its stop
    waited for ever (review)."""

    def __init__(self, task: asyncio.Task[None], transport: asyncio.BaseTransport) -> None:
        self._task = task
        self._transport = transport

    @classmethod
    async def open(cls, readable: int) -> _Relay:
        """Relay what comes into the pipe whose read end is `readable` (now the relay's)."""
        reader = asyncio.StreamReader(limit=_RELAY_CHUNK)
        pipe = os.fdopen(readable, "rb", buffering=0)
        try:
            transport, _ = await asyncio.get_running_loop().connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), pipe
            )
        except BaseException:
            pipe.close()
            raise
        return cls(asyncio.create_task(relay_stderr(reader), name="engine-stderr"), transport)

    async def end(self) -> None:
        """Relay the engine's last lines (up to RELAY_DRAIN seconds), then stop relaying."""
        await asyncio.wait({self._task}, timeout=RELAY_DRAIN)
        self._task.cancel()
        (failed,) = await asyncio.gather(self._task, return_exceptions=True)
        self._transport.close()
        if isinstance(failed, Exception):  # the engine's later lines were not relayed: say so
            logger.error("relaying the engine process's stderr failed", exc_info=failed)


async def spawn_relayed(*argv: str, **options: Any) -> tuple[asyncio.subprocess.Process, _Relay]:
    """`argv` started (`asyncio.create_subprocess_exec` with `options`), its stderr relayed."""
    readable, writable = os.pipe()
    try:
        process = await asyncio.create_subprocess_exec(*argv, stderr=writable, **options)
    except BaseException:
        os.close(readable)
        raise
    finally:
        os.close(writable)  # the child's now: the relay sees the end once it and its own are gone
    try:
        return process, await _Relay.open(readable)
    except BaseException:
        process.kill()
        await process.wait()
        raise


class EngineProcess:
    """The front's handle on the engine process: its link, the process itself, and the relay
    of its stderr."""

    def __init__(self, process: asyncio.subprocess.Process, link: EngineLink, relay: _Relay) -> None:
        self.process = process
        self.link = link
        self._relay = relay

    @classmethod
    async def start(cls, settings: dict[str, Any]) -> EngineProcess:
        """Start the engine process and send it `settings` (it is ready when `link.ready` says so)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            process, relay = await spawn_relayed(
                sys.executable,
                "-m",
                "runservice",
                "serve",
                ENGINE_LINK_FD,
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                env=_child_environment(),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        try:
            _, link = await asyncio.get_running_loop().create_unix_connection(EngineLink, sock=ours)
        except BaseException:
            process.kill()
            await process.wait()
            await relay.end()  # what it said as it failed
            raise
        link.hello(settings)
        return cls(process, link, relay)

    async def gone(self) -> int:
        """Wait until the engine process is gone, then end every open call UNAVAILABLE; its
        exit code. Gone is its link closed or the process exited, whichever comes first: a
        process a step forked (a process pool, a shell command in the background) holds the
        engine's end of the socket open after the engine died."""
        waits = (
            asyncio.ensure_future(self.link.closed.wait()),
            asyncio.ensure_future(self.process.wait()),
        )
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        self.link.close()
        # The relay reads on meanwhile: `stop` ends it, not this (its drain would hold up the
        # front's own stop by RELAY_DRAIN while a process a step left holds the pipe).
        return await self.process.wait()

    async def stop(self, within: float) -> int:
        """Close the link (the engine stops as after a STOP without grace if it has not had
        one) and wait up to `within` seconds for the process, then kill it. Its exit code."""
        self.link.close()
        try:
            code = await asyncio.wait_for(self.process.wait(), within)
        except TimeoutError:
            logger.error("the engine process did not stop within %.0fs: killing it", within)
            self.process.kill()
            code = await self.process.wait()
        await self._relay.end()
        return code


def _child_environment() -> dict[str, str]:
    """Ours, with the directories this process imported runservice and its stubs from on
    PYTHONPATH (a checkout, a test run), so `-m runservice` finds the same code. Site
    directories are left out: the child has them anyway, and on PYTHONPATH they would come
    before the standard library."""
    installed = {Path(path).resolve() for path in (*site.getsitepackages(), site.getusersitepackages())}
    roots = [
        Path(runservice.__file__).resolve().parents[1],
        Path(run_service_pb2.__file__).resolve().parents[2],
    ]
    paths = [str(root) for root in dict.fromkeys(roots) if root not in installed]
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)} if paths else dict(os.environ)


def die_with_parent() -> None:
    """On Linux, have the kernel kill this process when the front dies (`PR_SET_PDEATHSIG`):
    the pair then ends as one process killed would, and a restart finds the database free
    at once. Elsewhere the closed link stops it (`serve_engine`)."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            logger.debug("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
            return
    except (OSError, AttributeError):  # no libc to call: the closed link is enough
        return
    if os.getppid() != parent:  # the front died before the kernel was asked
        os._exit(1)


_PR_SET_PDEATHSIG = 1


async def connect_host(fd: int) -> EngineHost:
    """The engine process's end of the link, from the descriptor the front passed."""
    # Passed to this process inheritable; the processes its steps start must not hold it.
    os.set_inheritable(fd, False)
    sock = socket.socket(fileno=fd)
    _, host = await asyncio.get_running_loop().create_unix_connection(EngineHost, sock=sock)
    return host


async def serve_engine(
    host: EngineHost,
    workflows: Iterable[Workflow],
    *,
    database_url: str,
    durability: str = "full",
    heartbeat: float = 15.0,
    lease_seconds: float = 10.0,
    claim_interval: float = 1.0,
    retention: float = 0.0,
    max_active_runs: int = 0,
    workflow_limits: Mapping[str, int] | None = None,
    replica_name: str | None = None,
    tracing: bool = False,
    keep_metrics: bool = False,
    max_message_size: int,
    schedules: Iterable[Schedule] = (),
) -> None:
    """Run the store, the engine and the servicers for the front at the other end of `host`
    until it says STOP, or goes away: then stop at once, as one process would have died with
    it, so that a restart finds the database free (runs stop at their last checkpoint and
    are re-driven by the next start). What fails before the engine is ready (`host.serving`
    still False) is for the caller to `host.refuse`; the caller closes `host` at the end."""
    workflows = list(workflows)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, _ignored, signum)
    failure: asyncio.Future[StorageFailed] = loop.create_future()

    def on_failure(error: StorageFailed) -> None:
        if not failure.done():
            failure.set_result(error)

    try:
        async with running_engine(
            workflows,
            lambda store: Observability(
                store, tracing=Tracing.with_default_exporter() if tracing else None, keep_metrics=keep_metrics
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
            table = HandlerTable()
            add_services(
                table,
                engine,
                heartbeat=heartbeat,
                tracing=observability.tracing,
                max_message_size=max_message_size,
            )
            host.serve(
                table.handlers, drain=engine.drain, metrics=observability.render if keep_metrics else None
            )
            engine.listen_storage(host.storage)
            logger.info(
                "engine process %d serving %d workflows (database: %s)",
                os.getpid(),
                len(workflows),
                describe_database(database_url),
            )
            await asyncio.wait((host.stop_requested, failure), return_when=asyncio.FIRST_COMPLETED)
            grace = 0.0 if failure.done() else host.stop_requested.result()
            if grace is None:
                logger.warning("the front process went away: stopping now")
                grace = 0.0
            await engine.shutdown(grace)
            await host.close_calls()
            if failure.done():  # the front sees this process end, and stops too
                raise failure.result()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)


def _ignored(signum: int) -> None:
    logger.debug("%s ignored: the front process stops the engine", signal.Signals(signum).name)


__all__ = [
    "DATABASE_MOVED_EXIT",
    "ENGINE_LINK_FD",
    "STORAGE_FAILED_EXIT",
    "EngineProcess",
    "EngineProcessLost",
    "EngineRefused",
    "connect_host",
    "die_with_parent",
    "serve_engine",
]
