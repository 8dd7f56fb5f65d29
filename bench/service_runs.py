"""runservice itself: a real `runservice serve` process on loopback, driven with the raw stubs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import struct_pb2

from bench.load import LoadResult, drive
from bench.proc import ServerProcess, child_env
from runservice.v1 import run_pb2, run_service_pb2, run_service_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
# What the `runservice` console script runs, without depending on the venv's bin/ layout.
SERVE = "import sys; from runservice.cli import main; sys.exit(main())"


class BenchFailure(RuntimeError):
    """A run did not end the way the benchmark expects."""


@dataclass
class ServerCpu:
    """Where a measurement's server CPU went (Linux only: read from /proc)."""

    per_op_us: float
    """CPU of the server process(es), every thread, per operation done."""
    loop_busy: float
    """The busiest server's main thread (its event loop) CPU over the wall time, 0-1: near 1,
    the loop is the limit, and a run's Python path is what to make cheaper."""


@dataclass
class ServiceResults:
    sequential: LoadResult
    concurrent: LoadResult
    suspend_resume: LoadResult
    suspended_runs: LoadResult
    rss_before_kb: int
    rss_after_kb: int
    cpu: dict[str, ServerCpu] = field(default_factory=dict)
    """By measurement (sequential, concurrent, suspend_resume), where /proc has it."""

    @property
    def rss_kb_per_suspended_run(self) -> float:
        runs = self.suspended_runs.done
        return (self.rss_after_kb - self.rss_before_kb) / runs if runs else 0.0


def _value(data: dict[str, float | bool]) -> struct_pb2.Value:
    value = struct_pb2.Value()
    value.struct_value.update(data)
    return value


INPUT = _value({"value": 1})
RESUME = _value({"ok": True})


def _expect(run: run_pb2.Run, status: int) -> None:
    if run.status != status:
        got = run_pb2.RunStatus.Name(run.status)
        error = f": {run.error.name}: {run.error.message}" if run.HasField("error") else ""
        raise BenchFailure(f"run {run.run_id} is {got}, expected {run_pb2.RunStatus.Name(status)}{error}")


class Driver:
    """The three operations the benchmark times, each a complete round trip.

    With several replicas, calls go to each in turn, and a resume goes to another replica
    than the start of its run (so a run is resumed by a replica that does not own it).
    Runs get the server's ids (time-ordered), or with `caller_run_ids` a random UUID4 the
    caller chooses, as callers that name their runs themselves do.
    """

    def __init__(
        self, stubs: list[run_service_pb2_grpc.RunServiceAsyncStub], caller_run_ids: bool = False
    ) -> None:
        self.stubs = stubs
        self.caller_run_ids = caller_run_ids
        self._turn = 0

    def _run_id(self) -> str:
        return uuid.uuid4().hex if self.caller_run_ids else ""

    @property
    def stub(self) -> run_service_pb2_grpc.RunServiceAsyncStub:
        self._turn += 1
        return self.stubs[self._turn % len(self.stubs)]

    async def three_steps(self) -> None:
        reply = await self.stub.Start(
            run_service_pb2.StartRequest(
                workflow_id="bench-three-steps", run_id=self._run_id(), input_data=INPUT, wait=True
            )
        )
        _expect(reply.run, run_pb2.RUN_STATUS_SUCCESS)

    async def start_suspended(self) -> str:
        reply = await self.stub.Start(
            run_service_pb2.StartRequest(
                workflow_id="bench-suspend", run_id=self._run_id(), input_data=INPUT, wait=True
            )
        )
        _expect(reply.run, run_pb2.RUN_STATUS_SUSPENDED)
        return reply.run.run_id

    async def suspend_and_resume(self) -> None:
        run_id = await self.start_suspended()
        reply = await self.stub.Resume(
            run_service_pb2.ResumeRequest(run_id=run_id, resume_data=RESUME, wait=True)
        )
        _expect(reply.run, run_pb2.RUN_STATUS_SUCCESS)

    async def check_result(self) -> None:
        """One run with its output checked, so a fast but wrong server is caught."""
        reply = await self.stub.Start(
            run_service_pb2.StartRequest(workflow_id="bench-three-steps", input_data=INPUT, wait=True)
        )
        _expect(reply.run, run_pb2.RUN_STATUS_SUCCESS)
        if reply.run.result.struct_value.fields["value"].number_value != 4:
            raise BenchFailure(f"bench-three-steps returned {reply.run.result}, expected value 4")


@dataclass
class Counts:
    sequential: int
    concurrent: int
    suspend_resume: int
    suspended: int
    concurrency: int
    max_seconds: float
    stored: int = 0
    """3-step runs stored before the timed measurements (a running service's store holds many)."""


async def measure(
    counts: Counts,
    database_url: str | None = None,
    replicas: int = 1,
    engine_process: bool = False,
    caller_run_ids: bool = False,
) -> ServiceResults:
    """Time runs on fresh servers (`replicas` of them on one PostgreSQL database), then
    measure memory per suspended run on another, single server.

    Memory gets its own server: after thousands of finished runs the heap has room to
    spare, and new suspended runs would fit in it without growing the process.
    """
    cpu: dict[str, ServerCpu] = {}
    async with _serving(database_url, replicas, engine_process, caller_run_ids) as (servers, driver):
        await _warm_up(driver)
        n, limit = counts.concurrency, counts.max_seconds
        if counts.stored:
            stored = await drive(driver.three_steps, total=counts.stored, concurrency=n, max_seconds=3600)
            _raise_on_errors("storing runs", stored)
        three, trips_op = driver.three_steps, driver.suspend_and_resume
        sequential = await _timed(
            servers, cpu, "sequential", three, total=counts.sequential, concurrency=1, max_seconds=limit
        )
        concurrent = await _timed(
            servers, cpu, "concurrent", three, total=counts.concurrent, concurrency=n, max_seconds=limit
        )
        trips = await _timed(
            servers,
            cpu,
            "suspend_resume",
            trips_op,
            total=counts.suspend_resume,
            concurrency=n,
            max_seconds=limit,
        )
    async with serving(database_url, 1, engine_process, caller_run_ids) as (server, driver):
        await _warm_up(driver)
        await asyncio.sleep(0.5)
        before = server.rss_kb()
        suspended = await drive(
            driver.start_suspended, total=counts.suspended, concurrency=n, max_seconds=limit * 2
        )
        await asyncio.sleep(0.5)
        after = server.rss_kb()
    return ServiceResults(sequential, concurrent, trips, suspended, before, after, cpu)


async def _timed(
    servers: list[ServerProcess],
    into: dict[str, ServerCpu],
    name: str,
    operation: Callable[[], Awaitable[None]],
    **load: Any,
) -> LoadResult:
    """`drive(operation, **load)`, with the servers' CPU over it recorded in `into[name]`."""
    before = [server.cpu_seconds() for server in servers]
    result = await drive(operation, **load)
    after = [server.cpu_seconds() for server in servers]
    pairs = [(b, a) for b, a in zip(before, after, strict=True) if b is not None and a is not None]
    if len(pairs) == len(servers) and result.done and result.elapsed > 0:  # every server read
        process = sum(a[0] - b[0] for b, a in pairs)
        loop = max(a[1] - b[1] for b, a in pairs)
        into[name] = ServerCpu(process / result.done * 1e6, min(loop / result.elapsed, 1.0))
    return result


@contextlib.asynccontextmanager
async def serving(
    database_url: str | None = None,
    replicas: int = 1,
    engine_process: bool = False,
    caller_run_ids: bool = False,
) -> AsyncIterator[tuple[ServerProcess, Driver]]:
    """`runservice serve` on 127.0.0.1 with bench.workflows (`replicas` processes sharing one
    PostgreSQL database), the first server and a driver for all of them.

    The database is an SQLite file in a temporary data dir or, with `database_url`, a
    scratch schema of that PostgreSQL database (dropped afterwards). `engine_process` serves
    with `--engine-process`; `caller_run_ids` is `Driver`'s.
    """
    async with _serving(database_url, replicas, engine_process, caller_run_ids) as (servers, driver):
        yield servers[0], driver


@contextlib.asynccontextmanager
async def _serving(
    database_url: str | None = None,
    replicas: int = 1,
    engine_process: bool = False,
    caller_run_ids: bool = False,
) -> AsyncIterator[tuple[list[ServerProcess], Driver]]:
    """`serving`, with every server."""
    if replicas > 1 and not database_url:
        raise ValueError("several replicas need a PostgreSQL database (--database-url)")
    async with contextlib.AsyncExitStack() as stack:
        database: list[str] = []
        if database_url:
            from bench.asyncpg_ref import scratch_schema, with_search_path

            schema = await stack.enter_async_context(scratch_schema(database_url, "runservice_bench"))
            database = ["--database-url", with_search_path(database_url, schema)]
        paths = [
            str(ROOT),
            str(ROOT / "service"),
            str(ROOT / "stubs"),
            *filter(None, [child_env().get("PYTHONPATH")]),
        ]
        env = child_env({"PYTHONPATH": os.pathsep.join(paths)})
        servers: list[ServerProcess] = []
        stubs: list[run_service_pb2_grpc.RunServiceAsyncStub] = []
        try:
            for _ in range(replicas):
                data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="runservice-bench-"))
                argv = [sys.executable, "-c", SERVE, "serve", "--address", "127.0.0.1:0"]
                argv += ["--data-dir", data_dir, "--workflows", "bench.workflows", *database]
                if engine_process:
                    argv.append("--engine-process")
                server = ServerProcess(argv, env=env, cwd=ROOT)
                servers.append(server)
                address = await server.start()
                channel = await stack.enter_async_context(grpc.aio.insecure_channel(address))
                await asyncio.wait_for(channel.channel_ready(), 10)
                stubs.append(run_service_pb2_grpc.RunServiceStub(channel))
            yield servers, Driver(stubs, caller_run_ids)
        except BaseException:
            for server in servers:
                if server.tail:
                    print(f"runservice server output (last lines):\n{server.last_lines()}", file=sys.stderr)
            raise
        finally:
            for server in servers:
                await server.stop()


async def _warm_up(driver: Driver) -> None:
    await driver.check_result()
    for operation in (driver.three_steps, driver.suspend_and_resume):
        _raise_on_errors("warm-up", await drive(operation, total=100, concurrency=8, max_seconds=10))


def _raise_on_errors(what: str, result: LoadResult) -> None:
    if result.errors:
        raise BenchFailure(f"{what}: {result.errors} failed calls, first: {result.first_error}")
