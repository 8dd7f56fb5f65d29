"""A design measured, not built: the gRPC edge and the engine in two processes.

At 64 runs in flight the server's event loop thread is the limit (~95 % busy): the
gRPC edge (grpc.aio, the interceptors, the access log) and the engine and store take
turns under one GIL while the machine's second core is mostly idle. This prototype
puts them in two processes joined by a Unix socket and measures both layouts, one
after the other, in one sitting:

- the front: grpc.aio with the default server's interceptors (the call observer with
  the access log, the stream limit), `RunService.Start` registered as a generic
  handler that forwards the request's bytes and returns the reply's bytes;
- the engine: the SQLite store, the engine and the real `RunServicer`, which decodes
  the request, runs `Start` and encodes the reply.

A frame is `<length u32><call id u32><body>` both ways (the length counts the id and
the body); a reply's body starts with one byte, 0 for a reply message, 1 for an error's
text. Only `Start` crosses the socket: enough to time 3-step runs, not a server (no
rich errors, Watch, Stream, health, metrics or drain). BENCHMARKS.md says what the
real split needs and what this measured.

`python -m bench.split [--seconds 8] [--rounds 2]`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import re
import struct
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import grpc
import uvloop

from bench.load import LoadResult, drive
from bench.proc import ServerProcess, child_env
from bench.service_runs import ROOT, Driver, serving
from runservice.cli.serve import SWITCH_INTERVAL
from runservice.v1 import run_service_pb2, run_service_pb2_grpc

_FRAME = struct.Struct("<II")
_OK, _ERROR = b"\x00", b"\x01"
_ENGINE_LISTENING = re.compile(r"engine listening on (?P<address>\S+)")


class _Frames(asyncio.Protocol):
    """Splits the byte stream into frames and hands each to `on_frame`."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not registered subclasses

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= _FRAME.size:
            length, call_id = _FRAME.unpack_from(buffer)
            end = 4 + length
            if len(buffer) < end:
                break
            body = bytes(buffer[_FRAME.size : end])
            del buffer[:end]
            self.on_frame(call_id, body)

    def send(self, call_id: int, *parts: bytes) -> None:
        assert self.transport is not None
        self.transport.write(_FRAME.pack(4 + sum(map(len, parts)), call_id) + b"".join(parts))

    def on_frame(self, call_id: int, body: bytes) -> None:
        raise NotImplementedError


class _Aborted(Exception):
    pass


class _Context:
    """What `RunServicer.Start` asks of its gRPC context."""

    def code(self) -> None:
        return None

    def invocation_metadata(self) -> tuple[()]:
        return ()

    def peer(self) -> str:
        return "unix:front"

    async def abort(self, code: grpc.StatusCode, details: str, trailing_metadata: Any = None) -> None:
        raise _Aborted(f"{code.name}: {details}")


class _EngineSide(_Frames):
    def __init__(self, servicer: Any) -> None:
        super().__init__()
        self._servicer = servicer
        self._context = _Context()
        self._calls: set[asyncio.Task[None]] = set()

    def on_frame(self, call_id: int, body: bytes) -> None:
        call = asyncio.get_running_loop().create_task(self._start(call_id, body))
        self._calls.add(call)
        call.add_done_callback(self._calls.discard)

    async def _start(self, call_id: int, body: bytes) -> None:
        try:
            request = run_service_pb2.StartRequest.FromString(body)
            reply = await self._servicer.Start(request, self._context)
        except Exception as exc:  # sent back, so the benchmark counts a failed call
            self.send(call_id, _ERROR, repr(exc).encode())
            return
        self.send(call_id, _OK, reply.SerializeToString())


class _FrontSide(_Frames):
    def __init__(self) -> None:
        super().__init__()
        self._waiting: dict[int, asyncio.Future[bytes]] = {}
        self._ids = itertools.count(1)

    def on_frame(self, call_id: int, body: bytes) -> None:
        waiting = self._waiting.pop(call_id, None)
        if waiting is not None and not waiting.done():
            waiting.set_result(body)

    def connection_lost(self, exc: Exception | None) -> None:
        for waiting in self._waiting.values():
            if not waiting.done():
                waiting.set_exception(ConnectionError("the engine process went away"))

    async def call(self, request: bytes) -> bytes:
        call_id = next(self._ids)
        reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting[call_id] = reply
        self.send(call_id, request)
        try:
            return await reply
        finally:
            self._waiting.pop(call_id, None)


async def _engine(socket_path: str, database: str) -> None:
    from bench.workflows import WORKFLOWS
    from runservice import logs
    from runservice.engine import Engine
    from runservice.server.servicer import RunServicer
    from runservice.storage import open_store

    logs.configure("INFO", "text", access_log=True)
    store = open_store(database)
    await store.open()
    try:
        async with Engine(store, WORKFLOWS) as engine:
            servicer = RunServicer(engine, heartbeat=15.0, tracing=None)
            server = await asyncio.get_running_loop().create_unix_server(
                lambda: _EngineSide(servicer), socket_path
            )
            async with server:
                print(f"engine listening on {socket_path}", flush=True)
                await server.serve_forever()
    finally:
        await store.close()


async def _front(socket_path: str) -> None:
    from runservice import logs
    from runservice.server.calls import CallObserver, log_access
    from runservice.server.limits import StreamLimitInterceptor

    logs.configure("INFO", "text", access_log=True)
    _, link = await asyncio.get_running_loop().create_unix_connection(_FrontSide, socket_path)

    async def start(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        reply = await link.call(request)
        if reply[:1] != _OK:
            await context.abort(grpc.StatusCode.INTERNAL, reply[1:].decode())
        return reply[1:]

    forwarded: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(start)
    handlers = {"Start": forwarded}
    server = grpc.aio.server(interceptors=[CallObserver(on_end=[log_access]), StreamLimitInterceptor(1000)])
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("runservice.v1.RunService", handlers),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()


@dataclass
class Figure:
    layout: str
    concurrency: int
    result: LoadResult
    seconds: float
    cpu: list[float]
    """CPU seconds of each server process over the measurement (front first when split)."""

    def line(self) -> str:
        per_run = " + ".join(f"{1e6 * cpu / self.result.done:,.0f}" for cpu in self.cpu)
        rate = self.result.done / self.seconds
        p50, p99 = (self.result.percentile(fraction) * 1e3 for fraction in (0.5, 0.99))
        return (
            f"{self.layout:6s} {self.concurrency:2d} in flight: {rate:6,.0f} runs/s, "
            f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, server CPU {per_run} us per run"
        )


async def _measure(
    layout: str, driver: Driver, servers: Sequence[ServerProcess], concurrency: int, seconds: float
) -> Figure:
    warm = await drive(driver.three_steps, total=300, concurrency=concurrency, max_seconds=10)
    if warm.errors:
        raise RuntimeError(f"{layout}: warm-up runs failed: {warm.first_error}")
    before = [_cpu(server) for server in servers]
    started = time.perf_counter()
    result = await drive(driver.three_steps, total=10**7, concurrency=concurrency, max_seconds=seconds)
    elapsed = time.perf_counter() - started
    cpu = [_cpu(server) - earlier for server, earlier in zip(servers, before, strict=True)]
    if result.errors:
        raise RuntimeError(f"{layout}: runs failed: {result.first_error}")
    return Figure(layout, concurrency, result, elapsed, cpu)


def _cpu(server: ServerProcess) -> float:
    seconds = server.cpu_seconds()
    return seconds[0] if seconds is not None else float("nan")


@contextlib.asynccontextmanager
async def _split() -> AsyncIterator[tuple[list[ServerProcess], Driver]]:
    env = child_env({"PYTHONPATH": f"{ROOT}:{ROOT / 'service'}:{ROOT / 'stubs'}"})
    with tempfile.TemporaryDirectory(prefix="bench-split-") as scratch:
        socket_path = str(Path(scratch) / "engine.sock")
        argv = [sys.executable, "-m", "bench.split"]
        engine = ServerProcess(
            [*argv, "engine", socket_path, str(Path(scratch) / "runs.db")],
            env=env,
            cwd=ROOT,
            listening=_ENGINE_LISTENING,
        )
        front = ServerProcess([*argv, "front", socket_path], env=env, cwd=ROOT)
        try:
            await engine.start()
            address = await front.start()
            async with grpc.aio.insecure_channel(address) as channel:
                yield [front, engine], Driver([run_service_pb2_grpc.RunServiceStub(channel)])
        finally:
            await front.stop()
            await engine.stop()


async def compare(seconds: float, rounds: int, concurrencies: Sequence[int] = (64, 1)) -> list[Figure]:
    """Each layout in turn, `rounds` times: `runservice serve`, then the split prototype."""
    figures: list[Figure] = []
    for _ in range(rounds):
        async with serving(None) as (server, driver):
            for concurrency in concurrencies:
                figures.append(await _measure("single", driver, [server], concurrency, seconds))
                print(figures[-1].line(), flush=True)
        async with _split() as (servers, driver):
            for concurrency in concurrencies:
                figures.append(await _measure("split", driver, servers, concurrency, seconds))
                print(figures[-1].line(), flush=True)
    return figures


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["engine"], ["front"]):
        # As `runservice serve` does (cli/serve.py): a short switch interval, a frozen heap.
        gc.freeze()
        sys.setswitchinterval(SWITCH_INTERVAL)
    if args[:1] == ["engine"]:
        uvloop.run(_engine(args[1], args[2]))
        return
    if args[:1] == ["front"]:
        uvloop.run(_front(args[1]))
        return
    parser = argparse.ArgumentParser(prog="python -m bench.split", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per measurement (default 8)")
    parser.add_argument("--rounds", type=int, default=2, help="times each layout is measured (default 2)")
    options = parser.parse_args(args)
    uvloop.run(compare(options.seconds, options.rounds))


if __name__ == "__main__":
    main()
