"""A connection that goes silent (a NAT or a load balancer dropped it without a reset: the
sockets stay up, nothing gets through) is noticed by the clients' keepalive, and a Watch goes
on over a new one, losing and repeating nothing. gRPC 1.85 waits `grpc.http2.ping_timeout_ms`
(60 s by default) for a ping's answer, whatever `grpc.keepalive_timeout_ms` says: the clients
set both, so a dead connection is noticed within keepalive time + timeout (40 s by default;
scaled down here to 1 s + 0.5 s)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from edge import serving

from runservice.client import Client
from runservice.client.channel import channel_options
from runservice.model import Event, RunStatus
from runservice.server import EdgeOptions

pytestmark = pytest.mark.timeout(60)


class SilentProxy:
    """A TCP proxy to `upstream` that can go silent: its connections stay open, but what
    arrives is held until it speaks again (`silent`)."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream_port = upstream_port
        self.accepted = 0
        self._speaking = asyncio.Event()
        self._speaking.set()
        self._pumps: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[SilentProxy]:
        server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            for pump in self._pumps:
                pump.cancel()
            await asyncio.gather(*self._pumps, return_exceptions=True)
            for writer in self._writers:
                writer.close()
            await server.wait_closed()

    def silent(self, quiet: bool) -> None:
        if quiet:
            self._speaking.clear()
        else:
            self._speaking.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream_port)
        self._writers += [writer, up_writer]
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            pump = asyncio.create_task(self._pump(source, sink))
            self._pumps.add(pump)
            pump.add_done_callback(self._pumps.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await source.read(65536):
                await self._speaking.wait()
                sink.write(data)
                await sink.drain()
        sink.close()


async def test_a_watch_notices_a_silent_connection_and_goes_on_over_a_new_one(tmp_path: Path) -> None:
    async with serving(tmp_path / "runs.db", EdgeOptions()) as server:
        port = int(server.address.rsplit(":", 1)[1])
        async with (
            SilentProxy(port).running() as proxy,
            Client(server.address, timeout=10) as direct,
            Client(
                f"127.0.0.1:{proxy.port}",
                timeout=10,
                # Only keepalive_timeout_ms: the clients set the ping's own timeout from it.
                options=[("grpc.keepalive_time_ms", 1000), ("grpc.keepalive_timeout_ms", 500)],
            ) as through,
        ):
            run = await (await direct.get_workflow("approval").create_run()).start_async({"count": 1})
            assert run.status is RunStatus.SUSPENDED
            seen: list[Event] = []

            async def follow() -> None:
                async for event in through.follow(run.run_id):
                    seen.append(event)

            following = asyncio.create_task(follow())
            try:
                deadline = time.monotonic() + 10
                while not seen:
                    assert time.monotonic() < deadline, "the watch never began"
                    await asyncio.sleep(0.05)
                proxy.silent(True)
                deadline = time.monotonic() + 10
                while proxy.accepted < 2:  # the client gave up on the silent connection
                    assert time.monotonic() < deadline, "the silent connection was never noticed"
                    await asyncio.sleep(0.05)
                proxy.silent(False)
                handle = direct.get_workflow("approval")
                done = await (await handle.create_run(run.run_id)).resume_async({"approved": True})
                await asyncio.wait_for(following, 20)
            finally:
                following.cancel()
                await asyncio.gather(following, return_exceptions=True)
    assert done.status is RunStatus.SUCCESS
    assert [event.sequence for event in seen] == list(range(1, len(seen) + 1))
    assert seen[-1].run_status is RunStatus.SUCCESS


def test_a_clients_longer_deadline_is_not_cut_to_the_published_30_s() -> None:
    """gRPC applies the shorter of a call's deadline and the service config's `timeout`: a
    client with `timeout=45` had its calls cut at 30 s. A shorter one leaves the config as is."""

    def timeouts(timeout: float | None = None) -> set[str]:
        config = json.loads(dict(channel_options(timeout=timeout))["grpc.service_config"])
        return {method.get("timeout") for method in config["methodConfig"]} - {None}

    assert timeouts(timeout=45) == set()
    assert timeouts(timeout=10) == timeouts() == {"30s"}
