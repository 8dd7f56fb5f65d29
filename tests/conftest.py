"""Fixtures: a real engine on a real SQLite file behind a real grpc.aio server on 127.0.0.1:0.

served   the running server (engine, store, address) serving tests.workflows
client   a connected runservice.client.Client
sync_client  a runservice.client.SyncClient of the same server (call it through asyncio.to_thread:
         the server runs on the test's event loop)
stub     a raw RunService aio stub (for status-detail and stream-level checks)
serving  an async context manager factory: serving(db_path, address=...) for tests that
         stop and restart a server on the same database
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from workflows import WORKFLOWS  # tests/ is on sys.path (pytest's rootdir conftest)

from runservice.client import Client, SyncClient
from runservice.engine import Engine
from runservice.server import RunServer, build_server
from runservice.storage import Store, open_store
from runservice.v1 import run_service_pb2_grpc
from runservice.workflow import Workflow

if TYPE_CHECKING:
    from runservice.v1.run_service_pb2_grpc import RunServiceAsyncStub

HEARTBEAT = 0.2
"""Idle seconds before Stream and Watch send a heartbeat (small, so tests see some)."""


@dataclass
class Served:
    engine: Engine
    store: Store
    server: RunServer

    @property
    def address(self) -> str:
        return self.server.address


@contextlib.asynccontextmanager
async def _serving(
    db_path: Path, *, address: str = "127.0.0.1:0", workflows: Iterable[Workflow] = WORKFLOWS
) -> AsyncIterator[Served]:
    store = open_store(str(db_path))
    await store.open()
    try:
        async with Engine(store, workflows, heartbeat=HEARTBEAT) as engine:
            server = build_server(engine, address=address, heartbeat=HEARTBEAT)
            await server.start()
            try:
                yield Served(engine=engine, store=store, server=server)
            finally:
                await server.stop(0.5)
    finally:
        await store.close()


ServingFactory = Callable[..., AbstractAsyncContextManager[Served]]


@pytest.fixture
def serving() -> ServingFactory:
    """`async with serving(db_path) as served:` runs a server until the block ends."""
    return _serving


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with _serving(tmp_path / "runs.db") as running:
        yield running


@pytest.fixture
async def client(served: Served) -> AsyncIterator[Client]:
    async with Client(served.address, timeout=10.0) as connected:
        yield connected


@pytest.fixture
def sync_client(served: Served) -> Iterator[SyncClient]:
    connected = SyncClient(served.address, timeout=10.0)
    try:
        yield connected
    finally:
        connected.close()


def client_for(workflows: Iterable[Workflow]) -> Any:
    """A `client` fixture serving `workflows` instead of tests.workflows (assign it to `client`)."""

    @pytest.fixture
    async def client(tmp_path: Path) -> AsyncIterator[Client]:
        async with (
            _serving(tmp_path / "runs.db", workflows=workflows) as served,
            Client(served.address, timeout=10.0) as connected,
        ):
            yield connected

    return client


@pytest.fixture
async def channel(served: Served) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(served.address) as opened:
        yield opened


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> RunServiceAsyncStub:
    return run_service_pb2_grpc.RunServiceStub(channel)
