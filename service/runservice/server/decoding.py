"""Registering our services so that a malformed request is INVALID_ARGUMENT, not UNKNOWN.

grpc.aio decodes a request before any handler runs; when decoding fails (bytes that are
not the message, invalid UTF-8 in a string field, nesting beyond protobuf's recursion
limit, such as a `Value` nested 90 levels) it ends the call with UNKNOWN and no details.
Here each method decodes with a deserializer that returns a `Malformed` marker instead of
raising, and a thin guard in front of the servicer's method answers the marker with
INVALID_ARGUMENT, reason INVALID_REQUEST, like every other bad request.

The message-size limit is checked here too: gRPC's own refusal of an oversized request is
RESOURCE_EXHAUSTED with no details, so the server lets gRPC accept somewhat more
(`RECEIVE_SLACK`) and a request over the configured limit becomes RESOURCE_EXHAUSTED with
reason MESSAGE_TOO_LARGE and the limit in its ErrorInfo (only one far beyond it still gets
gRPC's bare refusal).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from types import ModuleType
from typing import Any

import grpc
from google.protobuf import message
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from runservice.errors import FieldViolation, InvalidArgument, MessageTooLarge
from runservice.server.status import to_status
from runservice.v1 import run_service_pb2

SERVICE = run_service_pb2.DESCRIPTOR.services_by_name["RunService"]

Context = grpc.aio.ServicerContext[Any, Any]


RECEIVE_SLACK = 4
"""gRPC accepts requests up to this many times the configured limit, for this check to
answer them with details."""


class Malformed:
    """Stands for a request that could not be decoded; `what` names the expected message,
    `size` is set when the request was only too large."""

    __slots__ = ("limit", "size", "what")

    def __init__(self, what: str, size: int = 0, limit: int = 0) -> None:
        self.what = what
        self.size = size
        self.limit = limit


def _deserializer(cls: type[message.Message], limit: int) -> Callable[[bytes], Any]:
    what = cls.DESCRIPTOR.full_name

    def decode(data: bytes) -> Any:
        if limit and len(data) > limit:
            return Malformed(what, len(data), limit)
        try:
            return cls.FromString(data)
        except (message.DecodeError, RecursionError, ValueError):
            return Malformed(what)

    return decode


def _serialize(msg: message.Message | bytes) -> bytes:
    """A response stream may send bytes serialised once for many streams (server/fanout.py)."""
    return msg if isinstance(msg, bytes) else msg.SerializeToString()


def _error(request: Malformed) -> grpc.Status:
    if request.size:
        return to_status(MessageTooLarge(request.size, request.limit))
    description = (
        f"not a valid {request.what}: undecodable bytes, a string that is not UTF-8, "
        "or nesting deeper than protobuf's recursion limit"
    )
    return to_status(
        InvalidArgument(f"malformed request: {description}", violations=[FieldViolation("", description)])
    )


def _guard_unary(behavior: Callable[[Any, Context], Any]) -> Callable[[Any, Context], Any]:
    async def handler(request: Any, context: Context) -> Any:
        if isinstance(request, Malformed):
            status = _error(request)
            await context.abort(status.code, status.details, status.trailing_metadata)
        return await behavior(request, context)

    return handler


def _guard_stream(behavior: Callable[[Any, Context], AsyncIterator[Any]]) -> Callable[..., Any]:
    async def handler(request: Any, context: Context) -> AsyncIterator[Any]:
        if isinstance(request, Malformed):
            status = _error(request)
            await context.abort(status.code, status.details, status.trailing_metadata)
        messages = behavior(request, context)
        try:
            async for msg in messages:
                yield msg
        finally:
            aclose = getattr(messages, "aclose", None)
            if aclose is not None:
                await aclose()

    return handler


def _handler(
    servicer: Any, method: MethodDescriptor, messages: ModuleType, limit: int
) -> grpc.RpcMethodHandler[Any, Any]:
    request_cls = messages.__dict__.get(method.input_type.name)
    response_cls = messages.__dict__.get(method.output_type.name)
    assert request_cls is not None and response_cls is not None, method.full_name
    behavior = getattr(servicer, method.name)
    decode = _deserializer(request_cls, limit)
    if method.server_streaming:
        return grpc.unary_stream_rpc_method_handler(
            _guard_stream(behavior),
            request_deserializer=decode,
            response_serializer=_serialize,
        )
    return grpc.unary_unary_rpc_method_handler(
        _guard_unary(behavior),
        request_deserializer=decode,
        response_serializer=response_cls.SerializeToString,
    )


def add_guarded_service(
    servicer: Any,
    server: grpc.aio.Server,
    service: ServiceDescriptor,
    messages: ModuleType,
    max_message_size: int = 0,
) -> None:
    """Register `servicer`'s methods of `service` (its request and response classes are in the
    generated module `messages`) on `server` with malformed-request guards, in place of the
    generated `add_...Servicer_to_server`; a request over `max_message_size` bytes (0: no
    check) is refused with details."""
    handlers = {
        method.name: _handler(servicer, method, messages, max_message_size) for method in service.methods
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)


def add_run_service(servicer: Any, server: grpc.aio.Server, max_message_size: int = 0) -> None:
    """Register RunService (see `add_guarded_service`)."""
    add_guarded_service(servicer, server, SERVICE, run_service_pb2, max_message_size)
