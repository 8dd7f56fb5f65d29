"""Fixtures: a real engine on a real database behind a real grpc.aio server on 127.0.0.1:0.

served   the running server (engine, store, address) serving tests.workflows
client   a connected runservice.client.Client
sync_client  a runservice.client.SyncClient of the same server (call it through asyncio.to_thread:
         the server runs on the test's event loop)
stub     a raw RunService aio stub (for status-detail and stream-level checks)
serving  an async context manager factory: serving(db_path, address=...) for tests that
         stop and restart a server on the same database
backend  "sqlite" or "postgres": the database the fixtures above use (see below)
databases  database URLs for the test's backend: `await databases.url_for(path)`

The database is an SQLite file in the test's tmp dir, or a fresh database on a throwaway
PostgreSQL server the session starts (tests/postgres.py). `--database` chooses:
`auto` (the default) runs the modules in BOTH_BACKENDS on both and the rest on SQLite;
`sqlite`, `postgres` or `both` apply to every test that uses a database fixture.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from postgres import PostgresServer, find_bin_dir
from workflows import WORKFLOWS  # tests/ is on sys.path (pytest's rootdir conftest)

from runservice.client import Client, SyncClient
from runservice.engine import Engine
from runservice.server import RunServer, build_server
from runservice.storage import Store, open_store
from runservice.v1 import run_service_pb2_grpc
from runservice.workflow import Workflow

if TYPE_CHECKING:
    from runservice.v1.run_service_pb2_grpc import RunServiceAsyncStub

LEASE = 1.0
"""Seconds a test server's leases last without a heartbeat (PostgreSQL)."""

HEARTBEAT = 0.2
"""Idle seconds before Stream and Watch send a heartbeat (small, so tests see some)."""


BOTH_BACKENDS = frozenset(
    {
        "test_store",
        "test_schedule_declarations",
        "test_store_values",
        "test_bad_input",
        "test_json_properties",
        "test_fanout",
        "test_runs",
        "test_constructs",
        "test_recovery",
        "test_leases",
        "test_time_travel",
        "test_time_travel_replicas",
        "test_timeouts",
        "test_versions",
        "test_schedule_triggers",
        "test_schedule_edges",
        "test_watch_delete",
        "test_deletion",
        "test_migration_gaps",
        "test_retried_changes",
        "test_retention",
        "test_capacity",
        "test_cancel_paths",
        "test_unreadable",
        "test_user_errors",
    }
)
"""Test modules that run on SQLite and PostgreSQL by default."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database",
        choices=("auto", "sqlite", "postgres", "both"),
        default="auto",
        help="backend(s) for tests that use a database fixture (default: auto, see tests/conftest.py)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    choice = metafunc.config.getoption("--database")
    if choice == "auto":
        module = metafunc.module.__name__.rsplit(".", 1)[-1]
        choice = "both" if module in BOTH_BACKENDS else "sqlite"
    backends = ["sqlite", "postgres"] if choice == "both" else [choice]
    if backends != ["sqlite"]:  # plain SQLite keeps the tests' ids unchanged
        metafunc.parametrize("backend", backends, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session (started on first use, removed at the end)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql (.ci/run does)"
        )
    server = PostgresServer(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@dataclass
class Databases:
    """The test's databases on its backend; PostgreSQL ones are dropped after the test."""

    backend: str
    server: PostgresServer | None
    created: dict[str, str] = field(default_factory=dict)

    async def url_for(self, path: Path | str) -> str:
        """The database for `path`: the SQLite file itself, or a PostgreSQL database made for it."""
        if self.server is None:
            return str(path)
        key = str(path)
        if key not in self.created:
            self.created[key] = await self.server.create_database()
        return self.created[key]

    async def empty(self) -> str:
        """A new database with no schema at all (PostgreSQL only)."""
        assert self.server is not None
        url = await self.server.create_database(migrated=False)
        self.created[url] = url
        return url


@pytest.fixture
async def own_postgres() -> AsyncIterator[PostgresServer]:
    """A PostgreSQL server of the test's own, for a test that shuts it down and starts it again."""
    bin_dir = find_bin_dir()
    assert bin_dir is not None, "PostgreSQL's binaries are missing (.ci/run installs them)"
    made = PostgresServer(bin_dir)
    await asyncio.to_thread(made.start)
    try:
        yield made
    finally:
        await asyncio.to_thread(made.stop)


@pytest.fixture
async def pg_databases(postgres_server: PostgresServer) -> AsyncIterator[Databases]:
    """Databases on the session's PostgreSQL server, whatever `--database` says."""
    made = Databases("postgres", postgres_server)
    try:
        yield made
    finally:
        for url in made.created.values():
            await postgres_server.drop_database(url)


@pytest.fixture
async def databases(backend: str, request: pytest.FixtureRequest) -> AsyncIterator[Databases]:
    server = request.getfixturevalue("postgres_server") if backend == "postgres" else None
    made = Databases(backend, server)
    try:
        yield made
    finally:
        if server is not None:
            for url in made.created.values():
                await server.drop_database(url)


@dataclass
class Served:
    engine: Engine
    store: Store
    server: RunServer

    @property
    def address(self) -> str:
        return self.server.address


@contextlib.asynccontextmanager
async def serving_on(
    database: Path | str | Store,
    *,
    address: str = "127.0.0.1:0",
    workflows: Iterable[Workflow] = WORKFLOWS,
    retention: float = 0.0,
    max_active_runs: int = 0,
    claim_interval: float = 0.1,
    lease_seconds: float = LEASE,
    replica_name: str | None = None,
    heartbeat: float = HEARTBEAT,
) -> AsyncIterator[Served]:
    """A real engine and gRPC server on `database` (a path or URL, or a store not yet opened),
    which it opens and closes; the other arguments as `serve`'s settings."""
    store = database if not isinstance(database, Path | str) else open_store(str(database))
    await store.open()
    try:
        # Short leases: on PostgreSQL a restarted server takes over the runs of the stopped one
        # within a second (on SQLite leases end when the file is opened again anyway).
        async with Engine(
            store,
            workflows,
            heartbeat=HEARTBEAT,
            lease_seconds=lease_seconds,
            claim_interval=claim_interval,
            retention=retention,
            max_active_runs=max_active_runs,
            replica_name=replica_name,
        ) as engine:
            server = build_server(engine, address=address, heartbeat=heartbeat)
            await server.start()
            try:
                yield Served(engine=engine, store=store, server=server)
            finally:
                await server.stop(0.5)
    finally:
        await store.close()


ServingFactory = Callable[..., AbstractAsyncContextManager[Served]]


@pytest.fixture
def serving(databases: Databases) -> ServingFactory:
    """`async with serving(db_path) as served:` runs a server until the block ends.

    On PostgreSQL, `db_path` names a database made for it (the same path, the same database).
    """

    @contextlib.asynccontextmanager
    async def on_backend(db_path: Path | str, **options: Any) -> AsyncIterator[Served]:
        async with serving_on(await databases.url_for(db_path), **options) as running:
            yield running

    return on_backend


@pytest.fixture
async def served(tmp_path: Path, databases: Databases) -> AsyncIterator[Served]:
    async with serving_on(await databases.url_for(tmp_path / "runs.db")) as running:
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
    async def client(tmp_path: Path, databases: Databases) -> AsyncIterator[Client]:
        async with (
            serving_on(await databases.url_for(tmp_path / "runs.db"), workflows=workflows) as served,
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
