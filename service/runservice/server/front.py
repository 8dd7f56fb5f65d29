"""The gRPC front's side of the link (`serve --engine-process`): forwarding calls.

With `--engine-process` the gRPC edge (grpc.aio, TLS, authentication, the stream limits,
RPC metrics, the access log, health and reflection) runs in the serving process, and the
store, the engine and the servicers in a second one. Each RunService and ScheduleService
method is registered here as a handler of raw bytes that sends the request over the link
and answers with the engine's reply or status, code, details and trailing metadata
(rich error details included) unchanged. A client that goes away or whose deadline passes
cancels the call in the engine too. If the engine process goes away, every open call
ends UNAVAILABLE and `EngineLink.closed` is set (the server then stops).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from runservice.server import link
from runservice.server.auth import CALLER

Context = grpc.aio.ServicerContext[Any, Any]

_CODES = {code.value[0]: code for code in grpc.StatusCode}
_NOT_FORWARDED = frozenset({"authorization"})
"""Metadata the engine has no use for: the front checks the token, the engine gets the caller."""


class _Ended:
    __slots__ = ("code", "details", "payload", "trailing")

    def __init__(self, code: grpc.StatusCode, details: str, trailing: Any, payload: bytes) -> None:
        self.code = code
        self.details = details
        self.trailing = trailing
        self.payload = payload


_GONE = _Ended(grpc.StatusCode.UNAVAILABLE, "the engine process is not running", (), b"")


class EngineLink(link.Frames):
    """The front's end of the link: calls in flight by id, their replies and streams."""

    def __init__(self) -> None:
        super().__init__()
        self._last_id = link.CONTROL
        self._calls: dict[int, asyncio.Queue[bytes | _Ended]] = {}
        self.ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        """Resolves with the engine's READY head: `{}`, or `{"error": ...}` when it cannot start."""
        self.storage_available = True
        """The last STORAGE frame's `available`."""
        self.on_storage: Callable[[bool], None] = lambda available: None
        """Called with each STORAGE frame's `available` (the front's readiness follows it)."""

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        for replies in self._calls.values():
            replies.put_nowait(_GONE)
        self._calls.clear()
        if not self.ready.done():
            self.ready.set_result({"error": "the engine process exited while starting"})

    def on_frame(self, call_id: int, kind: int, body: bytes) -> None:
        if call_id == link.CONTROL:
            if kind == link.READY and not self.ready.done():
                self.ready.set_result(link.split_head(body)[0])
            elif kind == link.STORAGE:
                self.storage_available = bool(link.split_head(body)[0]["available"])
                self.on_storage(self.storage_available)
            return
        replies = self._calls.get(call_id)
        if replies is None:  # cancelled here meanwhile
            return
        if kind == link.MESSAGE:
            replies.put_nowait(body)
        elif kind == link.END:
            del self._calls[call_id]
            head, payload = link.split_head(body)
            code = _CODES.get(head["code"], grpc.StatusCode.UNKNOWN)
            replies.put_nowait(_Ended(code, head["details"], link.decode_metadata(head["trailing"]), payload))

    def hello(self, settings: Any) -> None:
        """Send the engine its settings (its first frame)."""
        self.send(link.frame(link.CONTROL, link.HELLO, link.with_head(settings)))

    def drain(self) -> None:
        """Have the engine end its follow streams (UNAVAILABLE, clients resume elsewhere)."""
        self.send(link.frame(link.CONTROL, link.DRAIN))

    def stop(self, grace: float) -> None:
        """Have the engine give running steps `grace` seconds, stop the rest and exit."""
        self.send(link.frame(link.CONTROL, link.STOP, link.with_head({"grace": grace})))

    async def metrics(self) -> bytes:
        """The engine's metrics (runs, steps, the store) in the text exposition format."""
        call_id, replies = self._open(link.METRICS, b"")
        try:
            ended = await replies.get()
        except asyncio.CancelledError:
            self._calls.pop(call_id, None)  # a scrape given up on: its late answer goes nowhere
            raise
        assert isinstance(ended, _Ended)
        if ended.code is not grpc.StatusCode.OK:
            raise RuntimeError(f"the engine's metrics: {ended.details}")
        return ended.payload

    def _next_id(self) -> int:
        """A call id no open call has. Ids are a frame's u32 and wrap around: the engine has
        long forgotten a call by the time its id comes round again (4 billion calls later),
        and one still open, a Watch of weeks, keeps its id to itself."""
        while True:
            self._last_id = self._last_id % link.MAX_CALL_ID + 1
            if self._last_id not in self._calls:
                return self._last_id

    def _open(self, kind: int, body: bytes) -> tuple[int, asyncio.Queue[bytes | _Ended]]:
        call_id = self._next_id()
        replies: asyncio.Queue[bytes | _Ended] = asyncio.Queue()
        if self.send(link.frame(call_id, kind, body)):
            self._calls[call_id] = replies
        else:
            replies.put_nowait(_GONE)
        return call_id, replies

    def _call(
        self, method: str, request: bytes, context: Context
    ) -> tuple[int, asyncio.Queue[bytes | _Ended]]:
        caller = CALLER.get()
        head = {
            "method": method,
            "metadata": link.encode_metadata(
                [item for item in context.invocation_metadata() or () if item[0] not in _NOT_FORWARDED]
            ),
            "peer": context.peer(),
            # The seconds the client's deadline leaves (None: no deadline), so the engine's
            # streams know when a heartbeat must come for the client to hear one.
            "timeout": context.time_remaining(),
            "caller": [
                caller.name,
                None if caller.resources is None else sorted(caller.resources),
                caller.read_only,
            ],
        }
        return self._open(link.CALL, link.with_head(head, request))

    def _cancel(self, call_id: int) -> None:
        if self._calls.pop(call_id, None) is not None:
            self.send(link.frame(call_id, link.CANCEL))

    async def unary(self, method: str, request: bytes, context: Context) -> bytes:
        """Forward one unary call; returns the reply's bytes or aborts with the engine's status."""
        call_id, replies = self._call(method, request, context)
        try:
            ended = await replies.get()
        except asyncio.CancelledError:
            self._cancel(call_id)
            raise
        assert isinstance(ended, _Ended)
        if ended.code is not grpc.StatusCode.OK:
            await context.abort(ended.code, ended.details, ended.trailing)
        return ended.payload

    async def stream(self, method: str, request: bytes, context: Context) -> AsyncGenerator[bytes, None]:
        """Forward one server-streaming call: each message as the engine sends it, then its status."""
        call_id, replies = self._call(method, request, context)
        ended: _Ended | None = None
        try:
            while True:
                item = await replies.get()
                if isinstance(item, _Ended):
                    ended = item
                    break
                yield item
                self.send(link.frame(call_id, link.CREDIT))  # the client took it
        finally:
            if ended is None:  # the client went away, or its deadline passed
                self._cancel(call_id)
        if ended.code is not grpc.StatusCode.OK:
            await context.abort(ended.code, ended.details, ended.trailing)


def add_forwarded_service(server: grpc.aio.Server, engine: EngineLink, service: ServiceDescriptor) -> None:
    """Register every method of `service` on `server` as a call forwarded to the engine."""
    handlers = {
        method.name: _forwarding(engine, f"/{service.full_name}/{method.name}", method.server_streaming)
        for method in service.methods
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)


def _forwarding(engine: EngineLink, method: str, streaming: bool) -> grpc.RpcMethodHandler[bytes, bytes]:
    # Raw bytes both ways (no deserializer, no serializer): the engine decodes and encodes.
    if streaming:

        async def forward_stream(request: bytes, context: Context) -> AsyncIterator[bytes]:
            messages = engine.stream(method, request, context)
            try:
                async for message in messages:
                    yield message
            finally:  # a client gone cancels the engine's call now, not when this is collected
                await messages.aclose()

        return grpc.unary_stream_rpc_method_handler(forward_stream)

    async def forward(request: bytes, context: Context) -> bytes:
        return await engine.unary(method, request, context)

    return grpc.unary_unary_rpc_method_handler(forward)


__all__ = ["EngineLink", "add_forwarded_service"]
