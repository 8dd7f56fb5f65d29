"""The link of `serve --engine-process` on a real socketpair: the front's `EngineLink` and the
engine's `EngineHost`, with handlers of this test's own behind the host (the servicers are
tested end to end in test_engine_process.py). What only shows here: a stream is held back by
credits, a stream the client leaves is closed in the engine, and what a call carries (the
caller, metadata with binary values, an abort's status and trailing metadata) arrives whole.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from runservice.server import link
from runservice.server.auth import CALLER, Caller
from runservice.server.engine_host import EngineHost
from runservice.server.front import EngineLink

pytestmark = pytest.mark.timeout(30)


class Context:
    """The parts of a grpc.aio servicer context the front's forwarding reads."""

    def __init__(self, metadata: tuple[tuple[str, str | bytes], ...] = ()) -> None:
        self.metadata = metadata
        self.aborted: tuple[grpc.StatusCode, str, Any] | None = None

    def invocation_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self.metadata

    def peer(self) -> str:
        return "ipv4:127.0.0.1:4242"

    def time_remaining(self) -> float | None:
        return None  # no deadline

    async def abort(self, code: grpc.StatusCode, details: str, trailing_metadata: Any = ()) -> None:
        self.aborted = (code, details, trailing_metadata)
        raise RuntimeError("aborted")


async def _linked(handlers: dict[str, Any]) -> tuple[EngineLink, EngineHost]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    loop = asyncio.get_running_loop()
    _, host = await loop.create_unix_connection(EngineHost, sock=theirs)
    _, front = await loop.create_unix_connection(EngineLink, sock=ours)
    host.serve(handlers, drain=lambda: None, metrics=None)
    assert await front.ready == {}
    return front, host


def _as_grpc(context: Context) -> Any:
    return context


def _raw(value: bytes) -> bytes:
    return value


async def test_a_stream_is_held_back_by_credits_and_closed_when_left() -> None:
    produced = 0
    closed = asyncio.Event()

    async def numbers(request: bytes, context: Any) -> AsyncIterator[bytes]:
        nonlocal produced
        try:
            for number in itertools.count():
                produced += 1
                yield str(number).encode()
        finally:
            closed.set()

    handler = grpc.unary_stream_rpc_method_handler(numbers, _raw, _raw)
    front, host = await _linked({"/test.Numbers/Count": handler})
    try:
        messages = front.stream("/test.Numbers/Count", b"", _as_grpc(Context()))
        assert [await anext(messages) for _ in range(3)] == [b"0", b"1", b"2"]
        await asyncio.sleep(0.2)  # an engine without credits would run on without end
        assert produced <= 3 + link.STREAM_WINDOW + 1
        await messages.aclose()  # the client went away
        await asyncio.wait_for(closed.wait(), 5)
    finally:
        front.close()
        await host.close_calls()


async def test_a_call_carries_the_caller_and_metadata_and_its_status_comes_back_whole() -> None:
    seen: list[Any] = []
    details_bin = bytes(range(256))

    async def refuse(request: bytes, context: Any) -> bytes:
        seen.extend([CALLER.get(), context.invocation_metadata(), context.peer(), request])
        await context.abort(
            grpc.StatusCode.FAILED_PRECONDITION, "not now", (("grpc-status-details-bin", details_bin),)
        )
        return b""

    async def echo(request: bytes, context: Any) -> bytes:
        return request[::-1]

    front, host = await _linked(
        {
            "/test.Calls/Refuse": grpc.unary_unary_rpc_method_handler(refuse, _raw, _raw),
            "/test.Calls/Echo": grpc.unary_unary_rpc_method_handler(echo, _raw, _raw),
        }
    )
    try:
        assert await front.unary("/test.Calls/Echo", b"abc", _as_grpc(Context())) == b"cba"
        CALLER.set(Caller("tenant", frozenset({"b", "a"}), read_only=True))
        metadata = (
            ("authorization", "Bearer secret"),
            ("traceparent", "00-1-2-01"),
            ("blob-bin", b"\x00\xff"),
        )
        context = Context(metadata)
        with pytest.raises(RuntimeError, match="aborted"):
            await front.unary("/test.Calls/Refuse", b"request", _as_grpc(context))
        assert context.aborted == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "not now",
            (("grpc-status-details-bin", details_bin),),
        )
        caller, forwarded, peer, request = seen
        assert caller == Caller("tenant", frozenset({"a", "b"}), read_only=True)
        # The token stays at the edge; binary values arrive as bytes.
        assert forwarded == (("traceparent", "00-1-2-01"), ("blob-bin", b"\x00\xff"))
        assert (peer, request) == ("ipv4:127.0.0.1:4242", b"request")
    finally:
        front.close()
        await host.close_calls()


async def test_calls_in_flight_end_unavailable_when_the_engine_goes_away() -> None:
    started = asyncio.Event()

    async def forever(request: bytes, context: Any) -> bytes:
        started.set()
        await asyncio.Event().wait()
        return b""

    front, host = await _linked(
        {"/test.Calls/Forever": grpc.unary_unary_rpc_method_handler(forever, _raw, _raw)}
    )
    context = Context()
    call = asyncio.ensure_future(front.unary("/test.Calls/Forever", b"", _as_grpc(context)))
    await asyncio.wait_for(started.wait(), 5)
    host.close()
    await host.close_calls()
    with pytest.raises(RuntimeError, match="aborted"):
        await asyncio.wait_for(call, 5)
    assert context.aborted is not None and context.aborted[0] is grpc.StatusCode.UNAVAILABLE
    assert front.closed.is_set()


async def test_call_ids_wrap_around_past_the_frames_u32_and_skip_open_calls() -> None:
    release = asyncio.Event()

    async def echo(request: bytes, context: Any) -> bytes:
        return request[::-1]

    async def held(request: bytes, context: Any) -> bytes:
        await release.wait()
        return b"held"

    front, host = await _linked(
        {
            "/test.Calls/Echo": grpc.unary_unary_rpc_method_handler(echo, _raw, _raw),
            "/test.Calls/Held": grpc.unary_unary_rpc_method_handler(held, _raw, _raw),
        }
    )
    try:
        # A server that has forwarded four billion calls, one of them still open with id 1.
        open_call = asyncio.ensure_future(front.unary("/test.Calls/Held", b"", _as_grpc(Context())))
        await asyncio.sleep(0.1)
        assert list(front._calls) == [1]
        front._last_id = link.MAX_CALL_ID - 2
        for _ in range(4):  # ids 2**32-2 and 2**32-1, then 2 and 3: 0 is the link's, 1 is taken
            assert await front.unary("/test.Calls/Echo", b"abc", _as_grpc(Context())) == b"cba"
        assert front._last_id == 3
        release.set()
        assert await open_call == b"held"
    finally:
        front.close()
        await host.close_calls()


async def test_a_stream_of_large_messages_is_held_back_by_its_bytes() -> None:
    mib = 1 << 20
    produced = 0

    async def large(request: bytes, context: Any) -> AsyncIterator[bytes]:
        nonlocal produced
        for number in itertools.count():
            produced += 1
            yield bytes([number % 256]) * (4 * mib)

    handler = grpc.unary_stream_rpc_method_handler(large, _raw, _raw)
    front, host = await _linked({"/test.Large/Follow": handler})
    try:
        streams = []
        for _ in range(4):  # four clients read one message each, then stop reading
            messages = front.stream("/test.Large/Follow", b"", _as_grpc(Context()))
            assert len(await anext(messages)) == 4 * mib
            streams.append(messages)
        await asyncio.sleep(0.5)
        # What the front holds: a message over the byte window goes one at a time, as gRPC's
        # flow control would let it.
        held = sum(queue.qsize() for queue in front._calls.values())
        assert held <= 4
        assert produced <= 4 * 3
        for messages in streams:  # reading on gets every message, in order
            assert [(await anext(messages))[0] for _ in range(3)] == [1, 2, 3]
            await messages.aclose()
    finally:
        front.close()
        await host.close_calls()


async def test_a_call_whose_handler_meets_a_cancellation_of_its_own_still_ends() -> None:
    awaited: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def waits(request: bytes, context: Any) -> bytes:
        return await awaited  # cancelled by someone else: the call itself was not

    front, host = await _linked({"/test.Calls/Waits": grpc.unary_unary_rpc_method_handler(waits, _raw, _raw)})
    try:
        context = Context()
        call = asyncio.ensure_future(front.unary("/test.Calls/Waits", b"", _as_grpc(context)))
        await asyncio.sleep(0.1)
        awaited.cancel()
        with pytest.raises(RuntimeError, match="aborted"):
            await asyncio.wait_for(call, 5)
        assert context.aborted is not None and context.aborted[0] is grpc.StatusCode.CANCELLED
    finally:
        front.close()
        await host.close_calls()
