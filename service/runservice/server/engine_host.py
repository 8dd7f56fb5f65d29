"""The engine process's side of the link (`serve --engine-process`): the real servicers.

The services are registered exactly as on a gRPC server (`HandlerTable` stands in for
one), so every request goes through the same decoding guards, size checks, error table
and servicer code as in one process. A call's context offers what the servicers use of
gRPC's: the metadata and peer the front saw, `abort` (which ends the call with its
status), `code`. The caller the front authenticated is set in `CALLER` for the call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc

from runservice.server import link
from runservice.server.auth import CALLER, Caller

logger = logging.getLogger(__name__)

Handler = Any
"""A grpc.RpcMethodHandler (a namedtuple at run time)."""


class HandlerTable:
    """Takes the place of a grpc.aio server for `add_run_service` and its kin: keeps each
    method's handler by its full path (`/package.Service/Method`)."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}

    def add_generic_rpc_handlers(self, generic_handlers: Sequence[Any]) -> None:
        """Ignored: the same handlers come by `add_registered_method_handlers`."""

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Handler]) -> None:
        for name, handler in handlers.items():
            self.handlers[f"/{service}/{name}"] = handler


class Aborted(Exception):
    """`HostContext.abort`: ends the call with this status."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: Any) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
        self.trailing_metadata = tuple(trailing_metadata or ())


class HostContext:
    """The part of `grpc.aio.ServicerContext` the servicers use, for a call that came over
    the link."""

    __slots__ = ("_code", "_deadline", "_metadata", "_peer")

    def __init__(
        self, metadata: tuple[tuple[str, str | bytes], ...], peer: str, timeout: float | None = None
    ) -> None:
        self._metadata = metadata
        self._peer = peer
        self._code: grpc.StatusCode | None = None
        self._deadline = None if timeout is None else time.monotonic() + timeout

    def time_remaining(self) -> float | None:
        """Seconds left before the client's deadline (as the front saw it), None without one.
        The front ends the call itself when it passes."""
        return None if self._deadline is None else max(self._deadline - time.monotonic(), 0.0)

    def invocation_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self._metadata

    def peer(self) -> str:
        return self._peer

    def code(self) -> grpc.StatusCode | None:
        return self._code

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> None:
        self._code = code
        raise Aborted(code, details, trailing_metadata)


class _Window:
    """What one response stream sent that the front has not handed to its client yet: at
    most `link.STREAM_WINDOW` messages and `link.STREAM_WINDOW_BYTES` bytes, but always one
    message, however large (the front holds what a client has not read yet)."""

    __slots__ = ("_bytes", "_room", "_sizes")

    def __init__(self) -> None:
        self._sizes: deque[int] = deque()
        self._bytes = 0
        self._room = asyncio.Event()

    async def take(self, size: int) -> None:
        """Wait until a message of `size` bytes may be sent; it then counts as sent."""
        while self._sizes and (
            len(self._sizes) >= link.STREAM_WINDOW or self._bytes + size > link.STREAM_WINDOW_BYTES
        ):
            self._room.clear()
            await self._room.wait()
        self._sizes.append(size)
        self._bytes += size

    def credit(self) -> None:
        """The front handed the oldest message sent to its client."""
        if self._sizes:
            self._bytes -= self._sizes.popleft()
            self._room.set()


class EngineHost(link.Frames):
    """Runs each call the front sends on the registered handlers and sends back its
    messages and status; obeys DRAIN, STOP and METRICS."""

    def __init__(self) -> None:
        super().__init__()
        self._handlers: dict[str, Handler] = {}
        self._drain: Callable[[], None] = lambda: None
        self._metrics: Callable[[], Awaitable[bytes]] | None = None
        self._calls: dict[int, asyncio.Task[None]] = {}
        self._windows: dict[int, _Window] = {}
        self.stop_requested: asyncio.Future[float | None] = asyncio.get_running_loop().create_future()
        """Resolves with the grace period of a STOP (None once the front is gone)."""
        self.hello: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        """Resolves with the settings the front sends first."""
        self.serving = False
        """True once `serve` told the front the engine is ready."""

    def serve(
        self,
        handlers: dict[str, Handler],
        *,
        drain: Callable[[], None],
        metrics: Callable[[], Awaitable[bytes]] | None,
    ) -> None:
        """Take calls from now on, and tell the front so."""
        self._handlers = handlers
        self._drain = drain
        self._metrics = metrics
        self.serving = True
        self.send(link.frame(link.CONTROL, link.READY, link.with_head({})))

    def storage(self, available: bool) -> None:
        """Tell the front whether the database answers (its health follows it)."""
        self.send(link.frame(link.CONTROL, link.STORAGE, link.with_head({"available": available})))

    def refuse(self, error: str, *, code: int = 1) -> None:
        """Tell the front the engine could not start: it reports `error` and exits with
        `code` (`serve`'s: 2 for a usage or configuration error, 1 for the rest)."""
        self.send(link.frame(link.CONTROL, link.READY, link.with_head({"error": error, "code": code})))

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        for call in self._calls.values():
            call.cancel()
        if not self.stop_requested.done():
            self.stop_requested.set_result(None)
        if not self.hello.done():
            self.hello.set_exception(ConnectionError("the front process went away before saying hello"))

    async def close_calls(self) -> None:
        """Cancel the calls still running and wait for them."""
        calls = list(self._calls.values())
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)

    def on_frame(self, call_id: int, kind: int, body: bytes) -> None:
        if kind == link.CALL:
            self._start(call_id, self._call(call_id, body))
        elif kind == link.CANCEL:
            call = self._calls.get(call_id)
            if call is not None:
                call.cancel()
        elif kind == link.CREDIT:
            window = self._windows.get(call_id)
            if window is not None:
                window.credit()
        elif kind == link.METRICS:
            self._start(call_id, self._render_metrics(call_id))
        elif kind == link.HELLO:
            if not self.hello.done():
                self.hello.set_result(link.split_head(body)[0])
        elif kind == link.DRAIN:
            self._drain()
        elif kind == link.STOP:
            if not self.stop_requested.done():
                self.stop_requested.set_result(link.split_head(body)[0]["grace"])
        else:
            logger.error("unknown frame kind %d from the front process", kind)

    def _start(self, call_id: int, work: Any) -> None:
        call = asyncio.get_running_loop().create_task(work)
        self._calls[call_id] = call
        call.add_done_callback(lambda _: self._calls.pop(call_id, None))

    async def _call(self, call_id: int, body: bytes) -> None:
        head, request_bytes = link.split_head(body)
        name, resources, read_only = head["caller"]
        CALLER.set(Caller(name, None if resources is None else frozenset(resources), read_only))
        context = HostContext(link.decode_metadata(head["metadata"]), head["peer"], head.get("timeout"))
        handler = self._handlers.get(head["method"])
        try:
            if handler is None:
                self._end(call_id, grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
                return
            request = handler.request_deserializer(request_bytes)
            if handler.unary_stream is not None:
                await self._stream(call_id, handler, request, context)
                self._end(call_id, grpc.StatusCode.OK)
            else:
                reply = await handler.unary_unary(request, context)
                self._end(call_id, grpc.StatusCode.OK, payload=handler.response_serializer(reply))
        except Aborted as aborted:
            self._end(call_id, aborted.code, aborted.details, aborted.trailing_metadata)
        except Exception:  # a bug: gRPC would say UNKNOWN too
            logger.exception("%s failed", head["method"])
            self._end(call_id, grpc.StatusCode.UNKNOWN, "internal error")
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and not task.cancelling():
                # Not the front's CANCEL, nor a stop: something the handler awaited was
                # cancelled. Without an END the front's call would wait for ever.
                self._end(call_id, grpc.StatusCode.CANCELLED, "the call was cancelled in the server")
            raise

    async def _stream(self, call_id: int, handler: Handler, request: Any, context: HostContext) -> None:
        window = self._windows[call_id] = _Window()
        messages = handler.unary_stream(request, context)
        try:
            async for message in messages:
                data = handler.response_serializer(message)
                await window.take(len(data))
                await self.drained()
                if not self.send(link.frame(call_id, link.MESSAGE, data)):
                    return  # the front is gone
        finally:
            self._windows.pop(call_id, None)
            await messages.aclose()

    async def _render_metrics(self, call_id: int) -> None:
        try:
            text = await self._metrics() if self._metrics is not None else b""
        except Exception:
            logger.exception("rendering the engine's metrics failed")
            self._end(call_id, grpc.StatusCode.INTERNAL, "rendering the engine's metrics failed")
            return
        self._end(call_id, grpc.StatusCode.OK, payload=text)

    def _end(
        self,
        call_id: int,
        code: grpc.StatusCode,
        details: str = "",
        trailing_metadata: Sequence[tuple[str, str | bytes]] = (),
        *,
        payload: bytes = b"",
    ) -> None:
        head = {
            "code": code.value[0],
            "details": details,
            "trailing": link.encode_metadata(trailing_metadata),
        }
        self.send(link.frame(call_id, link.END, link.with_head(head, payload)))


__all__ = ["Aborted", "EngineHost", "HandlerTable", "HostContext"]
