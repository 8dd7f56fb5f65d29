"""Failed calls as `runservice.errors` exceptions, and when a broken stream may be reopened.

Both clients raise the exception chosen by the `ErrorInfo.reason` of the status details
(`grpc-status-details-bin`) when this client knows it, else by status code. Sync calls raise
`grpc.RpcError` and aio calls `grpc.aio.AioRpcError`; both carry code, details and trailers.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from typing import Protocol

import grpc
from google.rpc import error_details_pb2, status_pb2

from runservice import errors
from runservice.v1 import run_service_pb2

_DETAILS_KEY = "grpc-status-details-bin"


class FailedCall(Protocol):
    """What both kinds of failed call offer (grpc.Call of a sync call, grpc.aio.AioRpcError)."""

    def code(self) -> grpc.StatusCode: ...

    def details(self) -> str | None: ...

    def trailing_metadata(self) -> object: ...


def _error_classes() -> dict[str, type[errors.ServiceError]]:
    """Each reason's class: the most general one that declares that reason itself.

    A class without a `reason` of its own only inherits its parent's (DatabaseFileMoved is a
    StorageFailed the server tells apart in its log, not on the wire): taking it would turn
    every error of that reason into the narrower class. The root's reason is a default, not
    one of its own: INTERNAL is `Internal`'s."""
    by_reason: dict[str, type[errors.ServiceError]] = {}
    pending = list(errors.ServiceError.__subclasses__())
    while pending:  # parents first, so the most general class declaring a reason keeps it
        cls = pending.pop(0)
        if "reason" in vars(cls):
            by_reason.setdefault(cls.reason, cls)
        pending.extend(cls.__subclasses__())
    return by_reason


_BY_REASON = _error_classes()
_BY_CODE: dict[grpc.StatusCode, type[errors.ServiceError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: errors.InvalidArgument,
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.UNAUTHENTICATED: errors.Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
    grpc.StatusCode.DATA_LOSS: errors.DataLoss,
    grpc.StatusCode.UNIMPLEMENTED: errors.Unimplemented,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.DeadlineExceeded,
    grpc.StatusCode.INTERNAL: errors.Internal,
}
_CODE_NAMES: dict[type[errors.ServiceError], str] = {}
for _code, _cls in _BY_CODE.items():
    _CODE_NAMES.setdefault(_cls, _code.name)


def code_name(error: errors.ServiceError) -> str | None:
    """The status code name of `error`'s class (the nearest in the table); None for a bare
    ServiceError (one made from a code the table does not name: its reason is that code)."""
    for cls in type(error).__mro__:
        name = _CODE_NAMES.get(cls)
        if name is not None:
            return name
    return None


_RETRIED_WITH_ITS_KEY = frozenset(
    {
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
    }
)
"""Codes after which a call is retried, or its outcome unknown (it may have been carried out)."""


def error_of_call(exc: FailedCall, request: object) -> errors.ServiceError:
    """`error_from_rpc`, with the request's idempotency key in its metadata (`request_id`) when
    the request has one and the call is to be retried with it (a deadline, UNAVAILABLE): the
    client made that key up when the caller gave none. A refusal does not carry it."""
    error = error_from_rpc(exc)
    request_id = request_id_of(request)
    if request_id and exc.code() in _RETRIED_WITH_ITS_KEY:
        error.metadata.setdefault("request_id", request_id)
    return error


def request_id_of(request: object) -> str:
    """The idempotency key `request` carries ("": none): its own, or, for a Stream, that of the
    Start, Resume or TimeTravel it wraps (StreamRequest has no field of its own)."""
    if isinstance(request, run_service_pb2.StreamRequest):
        action = request.WhichOneof("action")
        request = getattr(request, action) if action else None
    found = getattr(request, "request_id", "")
    return found if isinstance(found, str) else ""


def error_from_rpc(exc: FailedCall) -> errors.ServiceError:
    """The service exception for a failed call: class by ErrorInfo reason, else by code."""
    code = exc.code()
    text = exc.details() or code.name
    reason: str | None = None
    metadata: dict[str, str] = {}
    violations: list[errors.FieldViolation] = []
    trailers: Iterable[tuple[str, str | bytes]] = exc.trailing_metadata() or ()  # type: ignore[assignment]
    for key, raw in trailers:
        if key != _DETAILS_KEY or not isinstance(raw, bytes):
            continue
        status = status_pb2.Status.FromString(raw)
        text = status.message or text
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations.extend(errors.FieldViolation(v.field, v.description) for v in bad.field_violations)
    cls = _BY_REASON.get(reason or "") or _BY_CODE.get(code, errors.ServiceError)
    if reason is None:  # not from our server (transport, proxy): the code says what happened
        reason = code.name
    # Some classes have their own __init__ (WorkflowNotFound(workflow_id)...); bypass it.
    error = cls.__new__(cls)
    errors.ServiceError.__init__(error, text, reason=reason, metadata=metadata, violations=violations)
    return error


# -- reconnecting streams --------------------------------------------------------------------

TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE})
"""Codes after which Watch is reopened from its cursor: the server drained, the connection broke
or aged out. Anything else (INTERNAL, NOT_FOUND, PERMISSION_DENIED...) from the server is raised:
reopening would fail the same way, or hide a bug."""
RESET = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})
"""Codes a proxy or the transport gives a stream it cut (nginx resets the streams of a server
that died, or outlived its read timeout, with RST_STREAM INTERNAL_ERROR): reopened too, unless
the server sent them, which it does only with its ErrorInfo."""


def should_reconnect(exc: FailedCall, *, attempt_deadline: bool) -> bool:
    """True when a stream that failed with `exc` should be reopened from its cursor.

    DEADLINE_EXCEEDED counts only when the client set a per-attempt deadline itself: then it
    means "this attempt is over", not "the caller's time is up". The server's TOKEN_REVOKED
    (a reload of its tokens ended the streams of a token that is gone or whose scope changed)
    counts too: reopened with the same token, the watch goes on if the token still grants the
    run, and fails with the server's answer (TOKEN_INVALID, NOT_FOUND) if not.
    """
    code = exc.code()
    if code in TRANSIENT or (attempt_deadline and code is grpc.StatusCode.DEADLINE_EXCEEDED):
        return True
    info = _error_info(exc)
    if code is grpc.StatusCode.UNAUTHENTICATED:
        return info is not None and info.domain == errors.DOMAIN and info.reason == "TOKEN_REVOKED"
    return code in RESET and (info is None or info.domain != errors.DOMAIN)


def _error_info(exc: FailedCall) -> error_details_pb2.ErrorInfo | None:
    trailers: Iterable[tuple[str, str | bytes]] = exc.trailing_metadata() or ()  # type: ignore[assignment]
    for key, raw in trailers:
        if key != _DETAILS_KEY or not isinstance(raw, bytes):
            continue
        for detail in status_pb2.Status.FromString(raw).details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                return info
    return None


def client_closed() -> errors.Unavailable:
    """The error of a call made, or under way, when the client is closed."""
    return errors.Unavailable("the client is closed", reason="CLIENT_CLOSED")


def stream_ended_early(run_id: str, request: object) -> errors.Unavailable:
    """The error a Stream raises when it ended without an error before its first event: whether
    it started (resumed, time travelled) the run is unknown, so it is to be retried with its
    `request_id`."""
    found = {"run_id": run_id, "request_id": request_id_of(request)}
    metadata = {key: value for key, value in found.items() if value}  # a Start may name no run
    again = "retry with the same request_id" if "request_id" in metadata else "retry it"
    return errors.Unavailable(
        f"the stream of run {run_id!r} ended before any event; {again}",
        reason="STREAM_ENDED_EARLY",
        metadata=metadata,
    )


def gave_up(run_id: str, last: int, seconds: float, why: str) -> errors.Unavailable:
    """The error a follow raises when nothing came for `seconds` (`give_up_after`)."""
    return errors.Unavailable(
        f"watch of run {run_id!r} gave up: no message for {seconds:g} s (the last attempt {why});"
        f" resume after sequence {last}",
        reason="WATCH_GAVE_UP",
        metadata={"run_id": run_id, "last_sequence": str(last)},
    )


class Silence:
    """How long a follow has waited for the server with nothing from it (`give_up_after`). The
    caller's time with the events does not count: what the server sent meanwhile waits in the
    stream, and a slow caller is no sign of a hung server."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self._since: float | None = time.monotonic()  # None while the caller has the events

    def heard(self) -> None:
        """A message came: the clock stops until the follow reads again."""
        self._since = None

    def listening(self) -> None:
        """The follow reads again: the clock counts from now."""
        self._since = time.monotonic()

    def left(self) -> float:
        """Seconds of silence left before giving up (the whole limit while the caller has events)."""
        since = self._since
        return self.limit if since is None else since + self.limit - time.monotonic()


class Backoff:
    """Capped exponential backoff with full jitter, reset by any message received."""

    def __init__(self, initial: float = 0.2, maximum: float = 5.0, multiplier: float = 2.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.failures = 0

    def reset(self) -> None:
        self.failures = 0

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt: uniform in [cap/2, cap], cap growing per failure."""
        cap = min(self.maximum, self.initial * self.multiplier**self.failures)
        self.failures += 1
        return cap * random.uniform(0.5, 1.0)
