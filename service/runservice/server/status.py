"""Service errors -> gRPC status with rich details (`google.rpc.Status` in the trailer).

One table maps each `ServiceError` branch to a canonical code, looked up along the
exception's MRO so a new subclass inherits its parent's code. Every status carries an
`ErrorInfo` (stable reason, domain, metadata); invalid arguments also carry a
`BadRequest` with field violations. Anything unexpected is logged here and reaches the
caller as a generic INTERNAL, never with a stack trace.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from runservice import errors

logger = logging.getLogger(__name__)

DOMAIN = errors.DOMAIN

CODES: dict[type, grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.DataLoss: grpc.StatusCode.DATA_LOSS,
    errors.Unimplemented: grpc.StatusCode.UNIMPLEMENTED,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.Internal: grpc.StatusCode.INTERNAL,
    errors.ServiceError: grpc.StatusCode.INTERNAL,
}

_INTERNAL_MESSAGE = "internal error"

# The status travels in trailers (grpc-message, and grpc-status-details-bin in base64, which
# carries the message again), and clients refuse metadata over 8 KiB (gRPC's default soft
# limit): with these bounds a status stays under about 5 KiB whatever the request held.
MAX_MESSAGE = 512
"""Longest status message sent (characters); longer ones are cut (see `clip`)."""
MAX_DETAIL = 128
"""Longest ErrorInfo metadata key or value, violation field or description sent (characters)."""
MAX_VIOLATIONS = 5
"""Field violations sent; the message says how many there were."""


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, saying how long it was.

    Errors quote what the caller sent (ids, labels, paths); a 1 MB id echoed back would
    make the trailer larger than gRPC's metadata limit, and the caller would see
    RESOURCE_EXHAUSTED instead of the real error.
    """
    if len(text) <= limit:
        return text
    note = f"...({len(text)} characters)"
    return text[: max(limit - len(note), 0)] + note


def code_for(error: errors.ServiceError) -> grpc.StatusCode:
    """The status code of a service error (nearest class in the table)."""
    for cls in type(error).__mro__:
        code = CODES.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL  # unreachable: ServiceError is in the table


def to_status(exc: BaseException, *, method: str = "") -> grpc.Status:
    """The gRPC status to abort with for `exc`; logs anything that is not a ServiceError."""
    if isinstance(exc, errors.ServiceError):
        code = code_for(exc)
        if code is grpc.StatusCode.INTERNAL:
            # Internal errors are bugs: log the details, send nothing of them.
            logger.error("internal error in %s: %s", method or "rpc", exc, exc_info=exc)
            return _status(code, _INTERNAL_MESSAGE, errors.Internal.reason, {})
        return _status(
            code,
            exc.message,
            exc.reason,
            exc.metadata,
            exc.violations,
            bad_request=code is grpc.StatusCode.INVALID_ARGUMENT,
        )
    logger.error("unexpected error in %s", method or "rpc", exc_info=exc)
    return _status(grpc.StatusCode.INTERNAL, _INTERNAL_MESSAGE, errors.Internal.reason, {})


def _status(
    code: grpc.StatusCode,
    message: str,
    reason: str,
    metadata: dict[str, str],
    violations: tuple[errors.FieldViolation, ...] = (),
    *,
    bad_request: bool = False,
) -> grpc.Status:
    if len(violations) > MAX_VIOLATIONS:
        message = f"{len(violations)} invalid fields (the first {MAX_VIOLATIONS} are listed): {message}"
    info = any_pb2.Any()
    info.Pack(
        error_details_pb2.ErrorInfo(
            reason=reason,
            domain=DOMAIN,
            metadata={clip(k, MAX_DETAIL): clip(str(v), MAX_DETAIL) for k, v in metadata.items()},
        )
    )
    details = [info]
    if bad_request:
        request = any_pb2.Any()
        request.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=clip(v.field, MAX_DETAIL), description=clip(v.description, MAX_DETAIL)
                    )
                    for v in violations[:MAX_VIOLATIONS]
                ]
            )
        )
        details.append(request)
    status: grpc.Status = rpc_status.to_status(
        status_pb2.Status(code=code.value[0], message=clip(message, MAX_MESSAGE), details=details)
    )
    return status


Context = grpc.aio.ServicerContext[Any, Any]
_S = TypeVar("_S")
_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")


def unary_errors(
    fn: Callable[[_S, _Req, Context], Awaitable[_Resp]],
) -> Callable[[_S, _Req, Context], Coroutine[Any, Any, _Resp]]:
    """Turn exceptions of a unary handler into a rich status."""

    @functools.wraps(fn)
    async def handler(self: _S, request: _Req, context: Context) -> _Resp:
        try:
            return await fn(self, request, context)
        except Exception as exc:  # CancelledError is a BaseException and passes through
            status = to_status(exc, method=fn.__name__)
        await context.abort(status.code, status.details, status.trailing_metadata)

    return handler


def streaming_errors(
    fn: Callable[[_S, _Req, Context], AsyncIterator[_Resp]],
) -> Callable[[_S, _Req, Context], AsyncIterator[_Resp]]:
    """Turn exceptions of a streaming handler into a rich status (after the messages sent so far)."""

    @functools.wraps(fn)
    async def handler(self: _S, request: _Req, context: Context) -> AsyncIterator[_Resp]:
        messages = fn(self, request, context)
        try:
            async for msg in messages:
                yield msg
            return
        except Exception as exc:
            status = to_status(exc, method=fn.__name__)
        finally:
            aclose = getattr(messages, "aclose", None)
            if aclose is not None:  # its `finally` (unsubscribe) runs now, not at collection
                await aclose()
        await context.abort(status.code, status.details, status.trailing_metadata)

    return handler
