"""Service errors -> gRPC status with rich details (`google.rpc.Status` in the trailer).

One table maps each `ServiceError` branch to a canonical code, looked up along the
exception's MRO so a new subclass inherits its parent's code. Every status carries an
`ErrorInfo` (stable reason, domain, metadata); invalid arguments also carry a
`BadRequest` with field violations. Anything unexpected is logged here and reaches the
caller as a generic INTERNAL, never with a stack trace.
"""

from __future__ import annotations

import logging

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from runservice import errors

logger = logging.getLogger(__name__)

DOMAIN = "runservice.dev"

CODES: dict[type, grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.Unimplemented: grpc.StatusCode.UNIMPLEMENTED,
    errors.Internal: grpc.StatusCode.INTERNAL,
    errors.ServiceError: grpc.StatusCode.INTERNAL,
}

_INTERNAL_MESSAGE = "internal error"


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
    info = any_pb2.Any()
    info.Pack(
        error_details_pb2.ErrorInfo(
            reason=reason, domain=DOMAIN, metadata={k: str(v) for k, v in metadata.items()}
        )
    )
    details = [info]
    if bad_request:
        request = any_pb2.Any()
        request.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                    for v in violations
                ]
            )
        )
        details.append(request)
    status: grpc.Status = rpc_status.to_status(
        status_pb2.Status(code=code.value[0], message=message, details=details)
    )
    return status
