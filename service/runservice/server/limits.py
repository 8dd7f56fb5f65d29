"""Per-caller limit on open Stream/Watch calls, as a grpc.aio server interceptor.

Long-lived streams hold a subscription and a task each; one caller opening thousands of them
would starve the others. A caller is its token's name when authentication is on, else the
peer's host. Over the limit, the call ends with RESOURCE_EXHAUSTED, reason TOO_MANY_STREAMS and
the limit in the ErrorInfo metadata; every other call keeps being served.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc

from runservice import errors
from runservice.server.auth import ANONYMOUS, CALLER
from runservice.server.status import to_status

LIMITED_METHODS = frozenset({"/runservice.v1.RunService/Stream", "/runservice.v1.RunService/Watch"})

_Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
_Continuation: TypeAlias = "Callable[[grpc.HandlerCallDetails], Awaitable[_Handler | None]]"


def caller_key(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The token's name, else the peer host (`ipv4:127.0.0.1:5555` -> `ipv4:127.0.0.1`)."""
    caller = CALLER.get()
    if caller is not ANONYMOUS:
        return "token:" + caller.name
    peer = context.peer() or "unknown"
    return peer.rsplit(":", 1)[0] if peer.count(":") >= 2 else peer


class StreamLimitInterceptor(grpc.aio.ServerInterceptor):
    """At most `limit` open Stream/Watch calls per caller (0: no limit)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: Counter[str] = Counter()

    async def intercept_service(
        self, continuation: _Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> _Handler | None:
        handler = await continuation(handler_call_details)
        if (
            handler is None
            or self.limit <= 0
            or handler.unary_stream is None
            or handler_call_details.method not in LIMITED_METHODS
        ):
            return handler
        inner: Any = handler.unary_stream
        method = handler_call_details.method

        async def limited(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            key = caller_key(context)
            if self.open[key] >= self.limit:
                status = to_status(errors.TooManyStreams(self.limit), method=method)
                await context.abort(status.code, status.details, status.trailing_metadata)
            self.open[key] += 1
            try:
                # Closed with this wrapper, so the handler's cleanup runs now, not at collection.
                async with contextlib.aclosing(inner(request, context)) as messages:
                    async for message in messages:
                        yield message
            finally:
                self.open[key] -= 1
                if self.open[key] <= 0:
                    del self.open[key]

        return grpc.unary_stream_rpc_method_handler(
            limited, handler.request_deserializer, handler.response_serializer
        )
