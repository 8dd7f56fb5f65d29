"""An interceptor that tells observers when each RPC starts and ends, with its final code.

Written for grpc.aio and its two streaming styles (the off-the-shelf ones `await` every
handler or drain a stream with a sync iterator): a response stream is either an async
generator (our servicers, reflection) or a coroutine that calls `context.write` (the
health service's Watch). The wrapper keeps the handler's cardinality, re-yields each
message of a generator, and learns a stream's code and duration only when it ends: OK,
the code it aborted with, CANCELLED when the client went away (the task's
`CancelledError`, always re-raised), UNKNOWN for an unexpected exception.

A method the server does not serve is observed too (gRPC would answer UNIMPLEMENTED with
no handler, unseen): under the one label `unknown` for service, method and type, as every
path a client makes up would otherwise be a time series of its own; its access line shows
the path asked for, cut and with unprintable characters replaced.

Observers are plain callables (metrics, the access log); they run on the event loop and
must be quick.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from typing import Any

import grpc

from runservice import logs

Context = grpc.aio.ServicerContext[Any, Any]
Handler = Any
"""A grpc.RpcMethodHandler: a namedtuple at run time (`_replace`), which its stubs do not say."""

KINDS = {
    (False, False): "unary",
    (False, True): "server_stream",
    (True, False): "client_stream",
    (True, True): "bidi_stream",
}
"""grpc_type label of a method, by (request_streaming, response_streaming)."""

UNKNOWN = "unknown"
"""The service, method and type labels of a call to a method the server does not serve."""

PATH_SHOWN = 200
"""Characters of an unknown method's path an access line shows."""


async def _method_not_found(requests: Any, context: Context) -> None:
    # A stream-stream handler: it answers a caller of any kind at once, reading nothing.
    await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")


UNIMPLEMENTED: Handler = grpc.stream_stream_rpc_method_handler(_method_not_found)
"""What a call to a method the server does not serve gets (gRPC's own answer, observed)."""


def shown_path(path: str) -> str:
    """A requested method path as a log line may carry it: at most PATH_SHOWN characters,
    printable ASCII (a client chooses it)."""
    shown = "".join(c if " " <= c <= "~" else "?" for c in path[:PATH_SHOWN])
    return shown + "..." if len(path) > PATH_SHOWN else shown


class Call:
    """One RPC as observers see it. `code` and `seconds` are set when it ends."""

    __slots__ = ("code", "context", "kind", "method", "path", "peer", "seconds", "sent", "service", "started")

    def __init__(
        self, service: str, method: str, kind: str, context: Context, path: str | None = None
    ) -> None:
        self.service = service
        self.method = method
        self.kind = kind
        self.path = path or f"/{service}/{method}"
        """The method's path as the access line shows it."""
        self.context = context
        self.started = time.perf_counter()
        self.code = grpc.StatusCode.OK
        self.seconds = 0.0
        self.sent = 0
        """Messages sent by a generator-style response stream."""
        # Read while the call is live: grpc.aio's peer() on a stream that has already been torn
        # down (its client gone) can crash the process (SIGSEGV, seen in tests/test_replicas.py).
        self.peer: str | None = context.peer() if self.streaming else None

    @property
    def streaming(self) -> bool:
        return self.kind not in ("unary", UNKNOWN)


Observer = Callable[[Call], None]


class CallObserver(grpc.aio.ServerInterceptor):
    """Calls each `on_start(call)` before a handler runs and each `on_end(call)` once it ends.

    `served`: the paths of the methods the server serves; a call to any other is `unknown`
    (None: those gRPC finds no handler for). An interceptor inside this one may answer a call
    to an unknown method itself (authentication refuses it before saying it is unknown)."""

    def __init__(
        self,
        on_start: Sequence[Observer] = (),
        on_end: Sequence[Observer] = (),
        *,
        served: Collection[str] | None = None,
    ) -> None:
        self._on_start = tuple(on_start)
        self._on_end = tuple(on_end)
        self._served = frozenset(served) if served is not None else None
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}
        """Per method: the handler grpc gave us and our wrapper of it (built once)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        full = handler_call_details.method
        if handler is None or (self._served is not None and full not in self._served):
            # Not cached: the paths callers make up are unbounded.
            path = shown_path(full)
            return self._wrap(handler or UNIMPLEMENTED, UNKNOWN, UNKNOWN, UNKNOWN, path)
        cached = self._wrapped.get(full)
        if cached is not None and cached[0] is handler:
            return cached[1]
        service, _, method = full.lstrip("/").rpartition("/")
        wrapped = self._wrap(
            handler, service, method, KINDS[(handler.request_streaming, handler.response_streaming)]
        )
        self._wrapped[full] = (handler, wrapped)
        return wrapped

    def _wrap(
        self, handler: Handler, service: str, method: str, kind: str, path: str | None = None
    ) -> Handler:
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=self._unary(service, method, kind, path, handler.unary_unary))
        if handler.stream_unary is not None:
            return handler._replace(
                stream_unary=self._unary(service, method, kind, path, handler.stream_unary)
            )
        if handler.unary_stream is not None:
            return handler._replace(
                unary_stream=self._stream(service, method, kind, path, handler.unary_stream)
            )
        return handler._replace(
            stream_stream=self._stream(service, method, kind, path, handler.stream_stream)
        )

    def _begin(self, service: str, method: str, kind: str, path: str | None, context: Context) -> Call:
        call = Call(service, method, kind, context, path)
        for observer in self._on_start:
            observer(call)
        return call

    def _end(self, call: Call, code: grpc.StatusCode) -> None:
        call.seconds = time.perf_counter() - call.started
        call.code = code
        for observer in self._on_end:
            observer(call)

    def _unary(
        self,
        service: str,
        method: str,
        kind: str,
        path: str | None,
        behavior: Callable[..., Any],
        *,
        writes: bool = False,
    ) -> Callable[[Any, Context], Awaitable[Any]]:
        async def observed(request: Any, context: Context) -> Any:
            call = self._begin(service, method, kind, path, context)
            code = grpc.StatusCode.UNKNOWN
            try:
                # A `context.write` stream sends through the context: count its messages there.
                response = behavior(request, _CountingWrites(context, call) if writes else context)
                if inspect.isawaitable(response):
                    response = await response
                code = context.code() or grpc.StatusCode.OK
                return response
            except asyncio.CancelledError:
                code = _cancelled_code(context)
                raise
            except Exception:
                code = context.code() or grpc.StatusCode.UNKNOWN  # set by abort(); else a bug
                raise
            finally:
                self._end(call, code)

        return observed

    def _stream(
        self, service: str, method: str, kind: str, path: str | None, behavior: Callable[..., Any]
    ) -> Callable[[Any, Context], Any]:
        if not inspect.isasyncgenfunction(behavior):
            # The `context.write` style (a coroutine): no messages to re-yield.
            return self._unary(service, method, kind, path, behavior, writes=True)

        async def observed(request: Any, context: Context) -> AsyncIterator[Any]:
            call = self._begin(service, method, kind, path, context)
            code = grpc.StatusCode.UNKNOWN
            messages = behavior(request, context)
            try:
                async for message in messages:
                    call.sent += 1
                    yield message
                code = context.code() or grpc.StatusCode.OK
            except (asyncio.CancelledError, GeneratorExit):
                # The client cancelled, its deadline passed, or a stop. gRPC closes this generator
                # (GeneratorExit at the `yield`) when the client cancels between two messages,
                # as one that stops reading after a Watch's end of stream does.
                code = _cancelled_code(context)
                raise
            except Exception:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            finally:
                try:
                    await messages.aclose()  # run the handler's own cleanup now, not at collection
                finally:
                    self._end(call, code)

        return observed


_access_logger = logging.getLogger(logs.ACCESS_LOGGER)


_HEALTH_SERVICE = "grpc.health.v1.Health"


def log_access(call: Call) -> None:
    """The access line of an ended call (`logs.log_access`): method, code, duration, peer;
    none for a health check that answered: the probes of Kubernetes, Docker and load balancers
    ask every few seconds, and their lines buried the calls (operations audit). The metrics
    count them, a failed one is logged, and health logs each change of its status."""
    if not _access_logger.isEnabledFor(logging.INFO):  # before asking grpc for the peer
        return
    if call.service == _HEALTH_SERVICE and call.code is grpc.StatusCode.OK:
        return
    peer = call.peer if call.peer is not None else call.context.peer()
    logs.log_access(call.path, call.code.name, round(call.seconds * 1000, 3), peer)


def _cancelled_code(context: Context) -> grpc.StatusCode:
    """The code of a call its task was cancelled in: DEADLINE_EXCEEDED when the client's
    deadline has passed (gRPC cancels the handler then too), else CANCELLED."""
    left = context.time_remaining()
    return grpc.StatusCode.DEADLINE_EXCEEDED if left is not None and left <= 0 else grpc.StatusCode.CANCELLED


class _CountingWrites:
    """A handler's context whose `write` counts the message on the call (the rest is the context's)."""

    def __init__(self, context: Context, call: Call) -> None:
        self._context = context
        self._call = call

    async def write(self, message: Any) -> None:
        self._call.sent += 1
        await self._context.write(message)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


__all__ = [
    "KINDS",
    "UNIMPLEMENTED",
    "UNKNOWN",
    "Call",
    "CallObserver",
    "Observer",
    "log_access",
    "shown_path",
]
