"""Reference A, the transport ceiling: a bare grpc.aio unary echo of raw bytes.

`python -m bench.echo` serves it on 127.0.0.1 (an ephemeral port, logged as
`listening on 127.0.0.1:PORT`) until SIGTERM; `measure` drives it from this process.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from dataclasses import dataclass

import grpc

from bench.load import LoadResult, drive
from bench.proc import ServerProcess, child_env

METHOD = "/bench.Echo/Echo"
PAYLOAD = b"x" * 64


async def _echo(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


async def serve(address: str = "127.0.0.1:0") -> None:
    """Serve the echo method (identity serializers: bytes in, bytes out) until SIGTERM or SIGINT."""
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(address)
    await server.start()
    print(f"listening on {address.rpartition(':')[0]}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop(1)


@dataclass
class EchoResults:
    sequential: LoadResult
    concurrent: LoadResult


async def measure(*, sequential: int, concurrent: int, concurrency: int, max_seconds: float) -> EchoResults:
    """Start the echo server in its own process and measure calls/s, 1 and `concurrency` in flight."""
    server = ServerProcess([sys.executable, "-m", "bench.echo"], env=child_env())
    address = await server.start()
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            await asyncio.wait_for(channel.channel_ready(), 10)
            call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(METHOD)

            async def once() -> None:
                await call(PAYLOAD)

            await drive(once, total=200, concurrency=concurrency, max_seconds=5)  # warm up
            one = await drive(once, total=sequential, concurrency=1, max_seconds=max_seconds)
            many = await drive(once, total=concurrent, concurrency=concurrency, max_seconds=max_seconds)
    finally:
        await server.stop()
    return EchoResults(one, many)


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:0"))
