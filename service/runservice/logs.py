"""Log records about runs: context fields, and the text and JSON line formats.

Whoever drives a run binds its id and trace id (`bind_run`) in the task that drives it,
and the step path (`bind_step`) around a step body; `RunFields`, a logging filter, copies
them onto every record made in that task (and the tasks it starts, which inherit the
context). A record can also carry them explicitly with `extra=step_extra(...)`.

Stdlib only, so every layer may use it (the engine included).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import sys
import time
import traceback
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

RUN_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("runservice_run_id", default=None)
TRACE_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("runservice_trace_id", default=None)
STEP_PATH: contextvars.ContextVar[str | None] = contextvars.ContextVar("runservice_step_path", default=None)

FIELDS = ("run_id", "step_path", "trace_id", "attempt")
"""Run fields a record may carry (None when not about a run)."""

FORMATS = ("text", "json")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s%(run_fields)s"

_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "run_fields"}


def bind_run(run_id: str, trace_id: str | None = None) -> None:
    """Mark the current context (a run's task) as driving `run_id`."""
    RUN_ID.set(run_id)
    TRACE_ID.set(trace_id or None)
    STEP_PATH.set(None)


def bind_step(path: Sequence[str] | None) -> contextvars.Token[str | None]:
    """Mark the current context as running the step at `path`; reset with the returned token."""
    return STEP_PATH.set(".".join(path) if path else None)


class in_step:  # lowercase: used as a function, `with in_step(path):`
    """`with in_step(path):` around a step body, so its log lines (and the engine's) name the step.

    A class, not a `contextlib.contextmanager`: it wraps every step body and foreach item,
    and a generator-based manager costs several times as much to enter and leave.
    """

    __slots__ = ("_path", "_token")

    def __init__(self, path: Sequence[str]) -> None:
        self._path = path

    def __enter__(self) -> None:
        self._token = bind_step(self._path)

    def __exit__(self, *exc_info: object) -> None:
        STEP_PATH.reset(self._token)


REPEAT_EVERY = 30.0
"""Seconds between two lines of one repeated failure (`LoopFailures`)."""


class LoopFailures:
    """The failures of one background loop, which meets the same one at every turn while
    something stays broken (a database away: the loops claiming runs, renewing leases, firing
    schedule ticks, holding the LISTEN connection). `failed` logs the first at once, then at
    most one line per `REPEAT_EVERY` seconds for each message, saying how many were left out:
    an audit counted 117 warnings in a 17 s PostgreSQL outage, seven a second. `kind` (an
    exception's class) keeps apart failures that share a message: a second, different bug is
    not held back behind the first (review).

    The loop calls `recovered` at each turn that succeeds: its next failure begins a new
    outage and is logged at once (one that comes and goes every other turn, each time it
    comes). Before, an outage that began within `REPEAT_EVERY` of the last line of an earlier
    one was held back until that time had passed, and an operator missed its start. Nothing
    is logged at the recovery: the lines are templates of what failed (the error, the retry's
    delay), with nothing to say of a success, and the usual cause, the database away, has its
    own line when it answers again (the server's health)."""

    __slots__ = ("_held", "log")

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self._held: dict[tuple[str, object], tuple[float, int]] = {}
        """(message template, kind) -> when it was last logged, and how often it was left out since."""

    def failed(
        self, level: int, message: str, *args: object, exc_info: Any = None, kind: object = None
    ) -> None:
        """Log this failure of the loop, unless the same one was logged less than
        `REPEAT_EVERY` seconds ago (since the loop last `recovered`)."""
        key = (message, kind)
        now = time.monotonic()
        held = self._held.get(key)
        if held is not None:
            last, left_out = held
            if now - last < REPEAT_EVERY:
                self._held[key] = (last, left_out + 1)
                return
            if left_out:
                message += f" (and {left_out} times more in the last {now - last:.0f} s)"
        self._held[key] = (now, 0)
        self.log.log(level, message, *args, exc_info=exc_info)

    def recovered(self) -> None:
        """A turn of the loop succeeded: its next failure is a new one, logged at once."""
        if self._held:
            self._held.clear()


def run_extra(run_id: str, trace_id: str | None = None) -> dict[str, Any]:
    """`extra=` fields of a record about a run, logged outside its drive's task (an admission,
    a recovery, a shutdown), where the run is not bound to the context."""
    return {"run_id": run_id, "trace_id": trace_id or None}


def step_extra(run_id: str, path: Sequence[str], attempt: int) -> dict[str, Any]:
    """`extra=` fields of a record about one attempt of one step."""
    return {"run_id": run_id, "step_path": ".".join(path), "attempt": attempt}


class RunFields(logging.Filter):
    """Fills `run_id`, `step_path`, `trace_id` and `attempt` on every record (None when unknown).

    Fields given with `extra=` win over the context's.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        values = record.__dict__
        run_id = RUN_ID.get()
        if values.get("run_id") is None:
            values["run_id"] = run_id
        if run_id is not None and values["run_id"] == run_id:
            if values.get("trace_id") is None:
                values["trace_id"] = TRACE_ID.get()
            if values.get("step_path") is None:
                values["step_path"] = STEP_PATH.get()
        for name in FIELDS:
            values.setdefault(name, None)
        return True


class TextFormatter(logging.Formatter):
    """One human-readable line; run fields, when present, follow as `key=value`."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._second: tuple[int, str] = (-1, "")
        """The last second formatted and its text (one tuple: threads swap it whole)."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """`asctime` as `logging.Formatter` makes it, its date and time part made once a
        second rather than for every line (an access line per RPC)."""
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return self._asctime(record.created, record.msecs)

    def _asctime(self, created: float, msecs: float) -> str:
        second, text = self._second
        if second != int(created):
            text = time.strftime(self.default_time_format, self.converter(created))
            self._second = (int(created), text)
        return self.default_msec_format % (text, msecs) if self.default_msec_format else text

    def format(self, record: logging.LogRecord) -> str:
        record.run_fields = _text_fields(record.__dict__)
        return super().format(record)

    def access_line(self, created: float, message: str, values: Mapping[str, Any]) -> str:
        """The line `format` makes of an INFO record of ACCESS_LOGGER (TEXT_FORMAT)."""
        asctime = self._asctime(created, int((created - int(created)) * 1000))
        return f"{asctime} INFO {ACCESS_LOGGER} {message}{_text_fields(values)}"


def _text_fields(values: Mapping[str, Any]) -> str:
    """` [role=... run_id=... ...]` of a record's values, or nothing."""
    pairs = [f"{name}={value}" for name in FIELDS if (value := values.get(name)) is not None]
    role = values.get("role")
    if role is not None:
        pairs.insert(0, f"role={role}")
    return f" [{' '.join(pairs)}]" if pairs else ""


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, run fields, any `extra=` fields,
    and `exc_info` (the formatted traceback) when the record has one."""

    def format(self, record: logging.LogRecord) -> str:
        out = _json_fields(
            record.created, record.levelname, record.name, record.getMessage(), record.__dict__
        )
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc_info"] = record.exc_text
        if record.stack_info:
            out["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, ensure_ascii=False)

    def access_line(self, created: float, message: str, values: Mapping[str, Any]) -> str:
        """The line `format` makes of an INFO record of ACCESS_LOGGER."""
        out = _json_fields(created, "INFO", ACCESS_LOGGER, message, values)
        return json.dumps(out, default=str, ensure_ascii=False)


def _json_fields(
    created: float, level: str, logger: str, message: str, values: Mapping[str, Any]
) -> dict[str, Any]:
    """A JSON line's object but its traceback: the record's own fields, run fields, extras."""
    out: dict[str, Any] = {"time": _iso(created), "level": level, "logger": logger, "message": message}
    for name in FIELDS:
        value = values.get(name)
        if value is not None:
            out[name] = value
    for name, value in values.items():
        if name not in _RESERVED and name not in out and value is not None:
            out[name] = value
    return out


_ISO_SECOND: tuple[int, str] = (-1, "")
"""The last second `_iso` formatted and its text (one tuple: threads swap it whole)."""


def _iso(created: float) -> str:
    global _ISO_SECOND
    second, text = _ISO_SECOND
    if second != int(created):
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
        _ISO_SECOND = (int(created), text)
    return f"{text}.{int(created % 1 * 1000):03d}Z"


FLUSH_SECONDS = 0.01
"""How long an INFO or DEBUG line made on an event loop may be kept before it is written."""

ATOMIC_WRITE = 4096
"""PIPE_BUF on Linux: the most bytes one write to a pipe puts in it whole, between other
processes' writes."""


class LineBatchingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes the INFO and DEBUG lines made on an event loop together,
    FLUSH_SECONDS after the first of them (as nginx buffers its access log).

    stderr is line buffered, so each line is a system call that also wakes whoever reads the
    pipe. With an access line per RPC, a write per line was about 4 % of the event loop's
    time at 64 calls in flight, and a write per loop iteration still about 12 us of the loop
    per RPC (5 % of a cheap call): under load an iteration holds only a few calls. On an
    event loop thread, such lines are kept and written with one call, in order. A WARNING
    or worse, a line from another thread and `flush()` (at exit, `logging.shutdown`) write at
    once, after the lines kept before them, so nothing is lost on an exit that skips the
    loop (`os._exit` after a second signal logs a warning first). A process killed outright
    loses at most its last FLUSH_SECONDS of INFO and DEBUG lines.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._lines: list[str] = []
        self._flusher: asyncio.AbstractEventLoop | None = None
        """The loop whose timer writes the kept lines."""
        self.role: str | None = None
        """The `Role` this handler's lines carry (`handler(role=...)`)."""
        self.own_filters: list[Any] = []
        """The filters `handler()` gave it (run fields, role)."""
        _BATCHING.add(self)

    def _forget_kept(self) -> None:
        """In a forked child: the kept lines are the parent's to write."""
        self._lines = []
        self._flusher = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._keep(self.format(record), at_once=record.levelno >= logging.WARNING)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def keep_line(self, line: str) -> None:
        """An INFO line made without a record (`log_access`), kept or written as `emit` would."""
        self.acquire()
        try:
            self._keep(line, at_once=False)
        except Exception:  # as `handleError` does, without a record to name
            if logging.raiseExceptions:
                traceback.print_exc(file=sys.stderr)
        finally:
            self.release()

    def _keep(self, line: str, at_once: bool) -> None:
        loop = None if at_once else asyncio._get_running_loop()
        if loop is None:
            self._lines.append(line)
            self._write()
            return
        if not self._lines or self._flusher is not loop:  # a loop that ended takes its timer along
            self._flusher = loop
            loop.call_later(FLUSH_SECONDS, self._write_kept)
        self._lines.append(line)

    def relay(self, lines: list[str]) -> None:
        """Lines another process made, written at once after the kept ones (as a WARNING is)."""
        self.acquire()
        try:
            self._lines.extend(lines)
            self._write()
        except Exception:  # as `handleError` does, without a record to name
            self._lines = []
            if logging.raiseExceptions:
                traceback.print_exc(file=sys.stderr)
        finally:
            self.release()

    def flush(self) -> None:
        self.acquire()
        try:
            self._write()
            super().flush()
        finally:
            self.release()

    def _write_kept(self) -> None:
        self.acquire()
        try:
            self._write()
        except Exception:  # a logging failure never raises into the loop (like `handleError`)
            self._lines = []
            if logging.raiseExceptions:
                traceback.print_exc(file=sys.stderr)
        finally:
            self.release()

    def _write(self) -> None:
        """Write the kept lines (the caller holds the lock), at most ATOMIC_WRITE bytes of whole
        lines per write: `serve --engine-process` has two processes writing to one stderr, and
        only a pipe write of up to PIPE_BUF bytes cannot be torn by another's."""
        lines, self._lines = self._lines, []
        chunk: list[str] = []
        size = 0
        for line in lines:
            length = len(line.encode()) + 1
            if chunk and size + length > ATOMIC_WRITE:
                self._write_chunk(chunk)
                chunk, size = [], 0
            chunk.append(line)
            size += length
        if chunk:
            self._write_chunk(chunk)

    def _write_chunk(self, lines: list[str]) -> None:
        self.stream.write(self.terminator.join(lines) + self.terminator)
        self.stream.flush()


_BATCHING: weakref.WeakSet[LineBatchingHandler] = weakref.WeakSet()


def _forget_kept_lines() -> None:
    # A step body may fork (multiprocessing's default on Linux): the child must not write
    # again the lines its parent kept, and will write, when the child logs or exits.
    for batching in list(_BATCHING):
        batching._forget_kept()


os.register_at_fork(after_in_child=_forget_kept_lines)


class Role(logging.Filter):
    """Marks every record with the `role` of the process writing it (`serve --engine-process`
    runs two processes on one stderr: the engine process's lines say `role=engine`)."""

    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def filter(self, record: logging.LogRecord) -> bool:
        record.role = self.role
        return True


GRPC_CORE_LOGGER = "grpc._cython.cygrpc"
"""The logger grpc.aio's server core writes to."""


_CLIENTS_DOINGS = {
    # The client cancelled (or dropped) a stream while a message was being sent, before grpc
    # noticed the cancel: a race inside grpc.
    "ExecuteBatchError raised in core by servicer method": "a reply could not be sent, the client has gone",
    # A header value that is not UTF-8 (HTTP/2 allows any bytes): grpc reads it as latin-1.
    "Invalid encoding on": "a client sent a header value that is not UTF-8",
}
"""grpc.aio's ERROR records (each with a traceback) about what a client did, by the start of
their message, and what the server's log says of them instead."""


class ClientGone(logging.Filter):
    """Keeps grpc.aio's reports of what a client did out of the error log: a reply sent to a
    client that has just gone, a header that is not UTF-8 (`_CLIENTS_DOINGS`). They come as
    ERRORs with a traceback, about nothing the server can do (and one per call a client
    makes, so any client could fill the log); each is kept only when DEBUG is on, as one
    line. Every other record of that logger passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        said = next((said for start, said in _CLIENTS_DOINGS.items() if message.startswith(start)), None)
        if said is None:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.exc_info, record.exc_text = None, None
        record.msg = f"{said}: {message}"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


def handler(
    fmt: str = "text", stream: TextIO | None = None, *, role: str | None = None
) -> LineBatchingHandler:
    """A stream handler writing `fmt` ("text" or "json") lines, with the run fields filled
    (the lines of one event loop iteration written together, see `LineBatchingHandler`),
    each marked with `role` when given."""
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(FORMATS)}")
    out = LineBatchingHandler(sys.stderr if stream is None else stream)
    out.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    out.addFilter(RunFields())
    if role is not None:
        out.addFilter(Role(role))
        out.role = role
    out.own_filters = list(out.filters)
    return out


def configure(
    level: str = "INFO", fmt: str = "text", *, access_log: bool = True, role: str | None = None
) -> None:
    """Log `level` and above to stderr as `fmt` lines; `access_log=False` silences the per-RPC
    lines; `role` marks every line with the process's role."""
    global _configured
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    installed = handler(fmt, role=role)
    root.addHandler(installed)
    _configured = installed
    root.setLevel(level)
    grpc_core = logging.getLogger(GRPC_CORE_LOGGER)
    if not any(isinstance(f, ClientGone) for f in grpc_core.filters):
        grpc_core.addFilter(ClientGone())
    logging.getLogger(ACCESS_LOGGER).disabled = not access_log
    # Neither format shows the thread or the process, which every record would otherwise
    # look up (the process id with a system call). With a line per RPC, these lookups and
    # the per-line time formatting were about 5 % of a cheap call's CPU in the server.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def flush() -> None:
    """Write every line the root logger's handlers keep, before writing to stderr directly."""
    for kept in logging.getLogger().handlers:
        kept.flush()


def relay_lines(lines: list[str]) -> None:
    """Write lines another process made (the engine process's stderr, `serve --engine-process`)
    through `configure`'s handler: this process then writes all of the two processes' lines,
    and a line longer than a pipe's atomic write (ATOMIC_WRITE) is never torn by the other's."""
    out = _configured
    if out is not None:
        out.relay(lines)
        return
    sys.stderr.write("".join(line + "\n" for line in lines))
    sys.stderr.flush()


ACCESS_LOGGER = "runservice.access"
"""The logger of the access log (one INFO line per RPC)."""

_access_logger = logging.getLogger(ACCESS_LOGGER)

_configured: LineBatchingHandler | None = None
"""The handler `configure` installed last."""


def log_access(method: str, code: str, duration_ms: float, peer: str) -> None:
    """One INFO line on ACCESS_LOGGER about an RPC: its method, code, duration and peer.

    While `configure`'s handler is the only one the record would reach (as `serve` sets
    logging up), the line is made by that handler's formatter straight from these values,
    the run fields and the role, and kept with the handler's other lines: the same line as
    the record would give, for about 10 us less of the event loop per RPC on a loaded
    server (5 % of a cheap call; BENCHMARKS.md). Anything else (a handler or a filter an
    application added) gets a record through logging as usual.
    """
    if not _access_logger.isEnabledFor(logging.INFO):
        return
    lean = _lean_handler()
    if lean is not None:
        values: dict[str, Any] = {"method": method, "code": code, "duration_ms": duration_ms, "peer": peer}
        run_id = RUN_ID.get()
        if run_id is not None:  # what `RunFields` fills in a record that names no run itself
            values.update(run_id=run_id, trace_id=TRACE_ID.get(), step_path=STEP_PATH.get())
        if lean.role is not None:
            values["role"] = lean.role
        formatter = lean.formatter
        assert isinstance(formatter, (TextFormatter, JsonFormatter))
        lean.keep_line(
            formatter.access_line(time.time(), f"{method} {code} {duration_ms:.3f}ms {peer}", values)
        )
        return
    # Made directly: `Logger.info` would walk the stack for the caller's file and line on
    # every RPC, which nobody reads for this line.
    record = _access_logger.makeRecord(
        ACCESS_LOGGER,
        logging.INFO,
        __file__,
        0,
        "%s %s %.3fms %s",
        (method, code, duration_ms, peer),
        None,
        extra={"method": method, "code": code, "duration_ms": duration_ms, "peer": peer},
    )
    _access_logger.handle(record)


_LEAN_FORMATTERS = (TextFormatter, JsonFormatter)


def _lean_handler() -> LineBatchingHandler | None:
    """`configure`'s handler, when an access record would reach it alone, with only its own
    filters (run fields, role) and formatter; else None."""
    lean = _configured
    if lean is None or lean.level > logging.INFO or _access_logger.filters:
        return None
    if lean.filters != lean.own_filters or type(lean.formatter) not in _LEAN_FORMATTERS:
        return None
    reached = 0
    logger: logging.Logger | None = _access_logger
    while logger is not None:
        for found in logger.handlers:
            if found is not lean:
                return None
            reached += 1
        logger = logger.parent if logger.propagate else None
    return lean if reached == 1 else None


def fields_of(record: logging.LogRecord) -> Mapping[str, Any]:
    """The run fields of a record (after `RunFields` ran), for tests and tools."""
    return {name: getattr(record, name, None) for name in FIELDS}


__all__ = [
    "ACCESS_LOGGER",
    "ATOMIC_WRITE",
    "FIELDS",
    "FLUSH_SECONDS",
    "FORMATS",
    "GRPC_CORE_LOGGER",
    "RUN_ID",
    "STEP_PATH",
    "TRACE_ID",
    "ClientGone",
    "JsonFormatter",
    "LoopFailures",
    "Role",
    "RunFields",
    "TextFormatter",
    "bind_run",
    "bind_step",
    "configure",
    "fields_of",
    "flush",
    "handler",
    "in_step",
    "log_access",
    "relay_lines",
    "step_extra",
]
