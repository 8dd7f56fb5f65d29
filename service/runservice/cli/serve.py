"""`runservice serve`: load the workflow modules, then serve them until SIGTERM.

Exit codes: 0 after a clean shutdown, 1 when the server cannot start (port taken,
database unusable), 2 for a usage or configuration error (bad flag, a workflows module
that does not import or holds no committed workflow). Errors are one line, no traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import socket
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from runservice import logs
from runservice.cli.loading import WorkflowLoadError, load_workflows
from runservice.config import (
    SECRET_SETTINGS,
    ConfigError,
    Settings,
    check_alias_variables,
    check_auth_variables,
    check_served_schedules,
    env_name,
    unknown_variables,
)
from runservice.engine.engine import ABANDONED
from runservice.errors import DatabaseFileMoved, StorageFailed
from runservice.storage import PRIVATE_DIRECTORY

if TYPE_CHECKING:
    from runservice.server import EdgeOptions
    from runservice.workflow import Schedule, Workflow

logger = logging.getLogger(__name__)

SWITCH_INTERVAL = 0.0001
"""Seconds the loop thread may keep the GIL while another thread waits for it."""

LEFT_TASKS_WAIT = 2.0
"""Seconds the tasks still alive when serving ended get to end once cancelled, before the
process exits without them."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `serve`, one flag per setting (`--data-dir` for `data_dir`, and so on)."""
    run = commands.add_parser(
        "serve",
        help="serve workflows over gRPC",
        description="Serve workflows over gRPC. Each flag has a RUNSERVICE_<NAME> environment variable; "
        "flags win.",
    )
    for name, info in Settings.model_fields.items():
        if name in SECRET_SETTINGS:
            continue
        default = "unset" if info.default is None else info.default
        if isinstance(default, tuple):
            default = ",".join(default)
        flags = [f"--{name.replace('_', '-')}"]
        if name == "grace":
            flags.append("--shutdown-grace")
        help = f"{info.description} ({env_name(name)}; default {default})"
        if info.annotation is bool:  # --tracing / --no-tracing
            run.add_argument(
                *flags, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help
            )
        else:
            run.add_argument(*flags, dest=name, help=help)
    # Internal: makes this process the engine process of a front started with --engine-process
    # (server/engine_process.py starts it with this flag, ENGINE_LINK_FD there).
    run.add_argument("--engine-link-fd", dest="engine_link_fd", type=int, help=argparse.SUPPRESS)
    run.set_defaults(handler=run_serve)


def _fail(message: str, code: int) -> int:
    logs.flush()  # the lines the log keeps come first: the error is the last line
    print(f"runservice: error: {message}", file=sys.stderr)
    return code


def run_serve(args: argparse.Namespace) -> int:
    """`runservice serve`: settings from the environment and flags, then serve until stopped."""
    # The server (grpc, the engine, the stores) is imported here, not at module level: every
    # other command of the CLI would pay for it at start-up.

    from runservice.server import serve
    from runservice.server.auth import TokenFileError
    from runservice.server.engine_process import EngineProcessLost, EngineRefused
    from runservice.server.tls import TlsConfigError

    if getattr(args, "engine_link_fd", None) is not None:
        return _run_engine_process(args.engine_link_fd)
    try:
        flags = {
            name: getattr(args, name, None) for name in Settings.model_fields if name not in SECRET_SETTINGS
        }
        check_auth_variables(flags)
        check_alias_variables(flags)
        settings = Settings.load(**flags)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    logs.configure(settings.log_level, settings.log_format, access_log=settings.access_log)
    unknown = unknown_variables()
    if unknown:
        logger.warning("ignoring unknown environment variables (no such setting): %s", ", ".join(unknown))
    try:
        options = edge_options(settings)
    except (TokenFileError, TlsConfigError) as exc:
        return _fail(str(exc), 2)
    workflows: list[Workflow] = []
    schedules: list[Schedule] = []
    if not settings.engine_process:  # else only the engine process imports them, and says what fails
        try:
            workflows, schedules = _served(settings)
        except (WorkflowLoadError, ConfigError) as exc:
            return _fail(str(exc).replace("\n", " "), 2)
    # Everything loaded so far (grpc, pydantic, the workflows) lives as long as the process:
    # freezing it keeps the collector from walking it again on every full collection.
    gc.freeze()
    # The loop thread holds the GIL almost always; gRPC's completion-queue poller and the
    # store's commit thread each need it briefly to hand a result back. With the default
    # 5 ms switch interval they wait up to that long behind a busy loop on every hand-off,
    # and every run in flight waits with them (measured: about +12 % runs/s at 0.1 ms).
    sys.setswitchinterval(SWITCH_INTERVAL)
    if not settings.database_url:
        data_dir = Path(settings.data_dir).expanduser()
        try:
            data_dir.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)  # the owner's alone
        except FileExistsError:
            return _fail(f"data directory {data_dir} exists and is not a directory", 1)
        except OSError as exc:
            return _fail(f"cannot create the data directory {data_dir}: {exc.strerror or exc}", 1)
    if settings.metrics_address == settings.address and not settings.address.endswith(":0"):
        same = settings.metrics_address
        return _fail(f"metrics_address {same} is the address too: give it a port of its own", 2)
    # Which of the two: a taken metrics port read as the gRPC one (an audit).
    for address, what in ((settings.address, ""), (settings.metrics_address, "the metrics address ")):
        taken = _address_taken(address) if address is not None else None
        if taken:
            return _fail(f"cannot serve: cannot listen on {what}{address}: {taken}", 1)
    try:
        with _event_loop() as runner:
            runner.run(
                serve(
                    workflows,
                    address=settings.address,
                    database_url=settings.database,
                    durability=settings.durability,
                    grace=settings.grace,
                    heartbeat=settings.heartbeat,
                    lease_seconds=settings.lease_seconds,
                    claim_interval=settings.claim_interval,
                    retention=settings.retention,
                    max_active_runs=settings.max_active_runs,
                    workflow_limits=settings.workflow_limits(),
                    replica_name=settings.replica_name,
                    options=options,
                    address_file=settings.address_file,
                    metrics_address=settings.metrics_address,
                    tracing=settings.tracing,
                    access_log=settings.access_log,
                    schedules=schedules,
                    engine_settings=_engine_settings(settings) if settings.engine_process else None,
                )
            )
    except EngineProcessLost as exc:  # after serving: the supervisor restarts both
        return _fail(str(exc), 1)
    except EngineRefused as exc:  # what one process would have said, with the same code
        return _fail(exc.message if exc.code == 2 else f"cannot serve: {exc.message}", exc.code)
    except DatabaseFileMoved as exc:  # the store logged where it saved what it held
        return _fail(
            f"stopped: the database file was deleted or replaced under the server ({exc.detail});"
            " the log says where what it held was saved: put it back, then restart the server",
            1,
        )
    except StorageFailed as exc:  # after serving or while starting: the store logged what failed
        return _fail(
            f"stopped: the database's disk failed to sync a write ({exc.detail}); check the device,"
            " then restart the server (it recovers from what is on disk)",
            1,
        )
    except (OSError, RuntimeError, ValueError, sqlite3.Error) as exc:
        # Start-up failures (port taken, database in use, corrupt or newer): one line, no traceback.
        logger.debug("cannot serve", exc_info=exc)
        return _fail(f"cannot serve: {_one_line(exc)}", 1)
    return 0


def _served(settings: Settings) -> tuple[list[Workflow], list[Schedule]]:
    """The workflows (their modules imported) and the schedules `settings` serve; raises
    WorkflowLoadError, or ConfigError for a schedule the engine would refuse
    (`check_served_schedules`) or a bound given to a workflow not served."""
    workflows = load_workflows(settings.workflows, app_dir=settings.app_dir)
    schedules = settings.declared_schedules()
    check_served_schedules(schedules, workflows)
    served = {workflow.id for workflow in workflows}
    for workflow_id in settings.workflow_limits():
        if workflow_id not in served:
            raise ConfigError(
                f"workflow_max_active_runs: workflow {workflow_id!r} is not served "
                f"(served: {', '.join(sorted(served))})"
            )
    return workflows, schedules


def _engine_settings(settings: Settings) -> dict[str, object]:
    """What the engine process is told: every setting but the secrets (it checks no tokens)."""
    return settings.model_dump(mode="json", exclude=set(SECRET_SETTINGS))


def _run_engine_process(link_fd: int) -> int:
    """The engine process of `serve --engine-process`: settings from the front over the link,
    then the store, the engine and the servicers until the front says stop. Start-up errors
    go to the front, which reports them."""
    import signal

    from runservice.server.engine_process import (
        DATABASE_MOVED_EXIT,
        STORAGE_FAILED_EXIT,
        connect_host,
        die_with_parent,
        serve_engine,
    )

    die_with_parent()
    # Ctrl-C reaches the whole process group: the front decides when this process stops.
    # A handler, not SIG_IGN: an ignored signal stays ignored in processes the steps start.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _not_now)

    async def run() -> int:
        host = await connect_host(link_fd)
        try:
            given = await host.hello
        except ConnectionError:
            return 1
        try:
            settings = Settings.load(**given)
            logs.configure(settings.log_level, settings.log_format, access_log=False, role="engine")
            workflows, schedules = _served(settings)
        except (ConfigError, WorkflowLoadError, ValueError) as exc:
            host.refuse(str(exc).replace("\n", " "), code=2)
            host.close()
            return 2
        gc.freeze()
        sys.setswitchinterval(SWITCH_INTERVAL)
        try:
            await serve_engine(
                host,
                workflows,
                database_url=settings.database,
                durability=settings.durability,
                heartbeat=settings.heartbeat,
                lease_seconds=settings.lease_seconds,
                claim_interval=settings.claim_interval,
                retention=settings.retention,
                max_active_runs=settings.max_active_runs,
                workflow_limits=settings.workflow_limits(),
                replica_name=settings.replica_name,
                tracing=settings.tracing,
                keep_metrics=bool(settings.metrics_address),
                max_message_size=settings.max_message_size,
                schedules=schedules,
            )
        except DatabaseFileMoved:  # the store logged it; the front sees this code, and stops
            return DATABASE_MOVED_EXIT
        except StorageFailed:
            return STORAGE_FAILED_EXIT
        except (OSError, RuntimeError, ValueError, sqlite3.Error) as exc:
            if host.serving:
                logger.exception("the engine process failed")
            else:  # the front reports it, as one process would
                logger.debug("the engine process cannot serve", exc_info=exc)
                host.refuse(_one_line(exc))
            return 1
        finally:
            host.close()
        return 0

    with _event_loop() as runner:
        return runner.run(run())


@contextlib.contextmanager
def _event_loop() -> Iterator[asyncio.Runner]:
    """A Runner on uvloop's event loop whose close does not wait for ever on a task that
    ignores cancellation (a step body that catches asyncio.CancelledError and goes on: the
    engine already stopped without it, `UNWIND_WAIT` in engine/engine.py). Such a task would
    hold the process past any grace period until an orchestrator's SIGKILL; instead, once
    the store is closed, the process exits without it."""
    import uvloop

    # uvloop's event loop roughly halves asyncio's per-callback cost, and a run is mostly
    # callbacks (gRPC completions, store futures, step coroutines).
    runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    failed = True
    try:
        yield runner
        failed = False
    finally:
        loop = runner.get_loop()
        left = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in left:
            task.cancel()
        if left:
            # Not again for the run tasks the engine waited for already (2 s more: an audit).
            waited = [task for task in left if task not in ABANDONED]
            pending = {task for task in left if task in ABANDONED}
            if waited:
                pending |= loop.run_until_complete(asyncio.wait(waited, timeout=LEFT_TASKS_WAIT))[1]
            if pending:
                logger.error(
                    "%d tasks did not end when cancelled (%s); exiting without them",
                    len(pending),
                    ", ".join(sorted(task.get_name() for task in pending)),
                )
                logs.flush()
                sys.stdout.flush()
                os._exit(1 if failed else 0)
        runner.close()


def _not_now(signum: int, frame: object) -> None:
    """The engine process's signal handler until its event loop takes over (it ignores them too)."""


def edge_options(settings: Settings) -> EdgeOptions:
    """The gRPC edge's security and limits from the settings (reads the token and TLS files)."""
    from runservice.server import EdgeOptions
    from runservice.server.auth import TokenFileError, TokenSet
    from runservice.server.tls import TlsConfigError, TlsFiles, check_tls_files

    # Absolute: the files are read again while steps run in this process, and a step that
    # changes the working directory must not move them (as the SQLite store's path).
    def absolute(path: str | None) -> str | None:
        return os.path.abspath(path) if path else None

    tokens = None
    if settings.tokens_file or settings.tokens:
        tokens = TokenSet.load(absolute(settings.tokens_file), settings.tokens)
        # A tokens file may gain tokens later (it is read again), so one that holds none serves
        # refusing every call, as it does once emptied; a list of none never will.
        if not len(tokens) and not settings.tokens_file:
            raise TokenFileError("authentication is configured but no token was found")
    tls = None
    if settings.tls_cert or settings.tls_key or settings.tls_client_ca:
        if not (settings.tls_cert and settings.tls_key):
            raise TlsConfigError("TLS needs both --tls-cert and --tls-key")
        cert, key = os.path.abspath(settings.tls_cert), os.path.abspath(settings.tls_key)
        tls = TlsFiles(cert, key, absolute(settings.tls_client_ca))
        check_tls_files(tls)
    return EdgeOptions(
        tokens=tokens,
        tokens_poll_interval=settings.tokens_poll_interval,
        tls=tls,
        max_message_size=settings.max_message_size,
        max_concurrent_streams=settings.max_concurrent_streams,
        max_streams_per_caller=settings.max_streams_per_caller,
        drain_delay=settings.drain_delay,
        probe_socket=settings.probe_socket,
    )


def _address_taken(address: str) -> str | None:
    """Why `address` cannot be bound now, or None (also None when it cannot be checked here).

    Checked before gRPC binds so that a taken port is one line without gRPC's own log line;
    gRPC's bind error stays the fallback.
    """
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if not port.isdigit() or int(port) == 0:
        return None
    try:
        infos = socket.getaddrinfo(host or None, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot resolve {host!r}: {exc.strerror}"
    except OSError:
        return None
    for family, kind, proto, _, sockaddr in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                return exc.strerror or str(exc)
    return None


_STORAGE_CODES = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_READONLY")
"""SQLite errors that say the disk could not do it, not that the file is bad."""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, sqlite3.DatabaseError):
        name = getattr(exc, "sqlite_errorname", None) or ""
        if name.startswith(_STORAGE_CODES):
            return f"database error: {name}: {text} (is the disk full, failing or read-only?)"
        return f"database error: {text} (is the database file corrupt?)"
    return text or type(exc).__name__
