"""The wire between the gRPC front process and the engine process (`serve --engine-process`).

One stream socket (a socketpair the front makes when it starts the engine) carries frames
both ways: `<length u32><call id u32><kind u8><body>`, the length counting everything after
itself. A call's request and replies are protobuf bytes, passed through untouched: the
front never decodes a message, the engine decodes and encodes them as a gRPC server would.

Front to engine: `CALL` (a JSON head, then the request), `CANCEL` (the client went away or
its deadline passed), `CREDIT` (one more message of a response stream may come: a slow
client holds its stream back, never the link), and on call id 0 `HELLO` (the settings),
`DRAIN`, `STOP` and `METRICS`. Engine to front: `MESSAGE` (one message of a response
stream), `END` (a JSON head with the status code, details and trailing metadata, then the
unary reply, if any), and on call id 0 `READY` (a JSON head: empty, or the error that
stopped the engine from starting) and `STORAGE` (a JSON head `{"available": bool}`: the
database stopped or started answering again; the front's health follows it).
"""

from __future__ import annotations

import asyncio
import base64
import struct
from collections.abc import Sequence
from typing import Any, cast

import orjson

CALL = 1
CANCEL = 2
CREDIT = 3
MESSAGE = 4
END = 5
HELLO = 6
READY = 7
DRAIN = 8
STOP = 9
METRICS = 10
STORAGE = 11

CONTROL = 0
"""The call id of frames about the link itself (HELLO, READY, DRAIN, STOP, STORAGE)."""
MAX_CALL_ID = 2**32 - 1
"""The largest call id a frame can carry; calls are numbered from 1 up to it, then from 1 again."""

STREAM_WINDOW = 32
"""Messages of one response stream the engine may send ahead of the front's credits."""
STREAM_WINDOW_BYTES = 1 << 20
"""And their bytes: past this the engine waits for credits (one message always goes), so a
client that stops reading a stream of large messages holds about one in the front, as gRPC's
flow control holds about one in a single process."""

_HEAD = struct.Struct("<IIB")
_JSON_LENGTH = struct.Struct("<I")


def frame(call_id: int, kind: int, *parts: bytes) -> bytes:
    """One frame of `kind` for `call_id` whose body is `parts` joined."""
    body = b"".join(parts)
    return _HEAD.pack(_HEAD.size - 4 + len(body), call_id, kind) + body


def with_head(head: Any, payload: bytes = b"") -> bytes:
    """A body of a JSON head, then `payload` (CALL, END, READY)."""
    encoded = orjson.dumps(head)
    return _JSON_LENGTH.pack(len(encoded)) + encoded + payload


def split_head(body: bytes) -> tuple[Any, bytes]:
    """The JSON head and the payload of a body made by `with_head`."""
    (length,) = _JSON_LENGTH.unpack_from(body)
    end = _JSON_LENGTH.size + length
    return orjson.loads(body[_JSON_LENGTH.size : end]), body[end:]


def encode_metadata(metadata: Sequence[tuple[str, str | bytes]]) -> list[list[str]]:
    """gRPC metadata as JSON: binary values (keys ending in `-bin`) in base64."""
    return [
        [key, base64.b64encode(value).decode() if isinstance(value, bytes) else value]
        for key, value in metadata
    ]


def decode_metadata(pairs: Sequence[Sequence[str]]) -> tuple[tuple[str, str | bytes], ...]:
    """The inverse of `encode_metadata`."""
    return tuple((key, base64.b64decode(value) if key.endswith("-bin") else value) for key, value in pairs)


class Frames(asyncio.Protocol):
    """A link endpoint: cuts the byte stream into frames for `on_frame`, sends frames, and
    pauses its writers while the socket's buffer is full (`drained`)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self.closed = asyncio.Event()
        """Set once the other side is gone (or this side closed)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not registered subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._writable.set()  # writers wake up and find the link closed
        self.closed.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    async def drained(self) -> None:
        """Wait while the socket's send buffer is over its high-water mark."""
        await self._writable.wait()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        offset = 0
        while len(buffer) - offset >= _HEAD.size:
            length, call_id, kind = _HEAD.unpack_from(buffer, offset)
            end = offset + 4 + length
            if len(buffer) < end:
                break
            self.on_frame(call_id, kind, bytes(buffer[offset + _HEAD.size : end]))
            offset = end
        del buffer[:offset]

    def send(self, data: bytes) -> bool:
        """Write frames; False when the link is closed (nothing is sent)."""
        if self._transport is None or self._transport.is_closing():
            return False
        self._transport.write(data)
        return True

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def on_frame(self, call_id: int, kind: int, body: bytes) -> None:
        raise NotImplementedError


__all__ = [
    "CALL",
    "CANCEL",
    "CONTROL",
    "CREDIT",
    "DRAIN",
    "END",
    "HELLO",
    "MAX_CALL_ID",
    "MESSAGE",
    "METRICS",
    "READY",
    "STOP",
    "STREAM_WINDOW",
    "STREAM_WINDOW_BYTES",
    "Frames",
    "decode_metadata",
    "encode_metadata",
    "frame",
    "split_head",
    "with_head",
]
