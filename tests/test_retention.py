"""`--retention`: a run that succeeded, failed or was canceled is deleted once it ended that long
ago, with its events, as DeleteRun deletes it (a Watch of it then ends NOT_FOUND); suspended, pending
and running runs stay, whatever their age. On SQLite and PostgreSQL through a real server, and
through the real `runservice serve` in both layouts."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from conftest import Served, ServingFactory
from edge import error_info
from holding import Count, Hold
from process import serve_argv, server_env, start_server

from runservice import errors
from runservice.client import Client
from runservice.engine.retention import Retention, pause_for
from runservice.model import Run, RunStatus
from runservice.storage import RunWrite
from runservice.v1 import run_service_pb2, run_service_pb2_grpc
from runservice.workflow import StepContext, create_step, create_workflow

if TYPE_CHECKING:
    from runservice.v1.run_service_pb2_grpc import RunServiceAsyncStub

pytestmark = pytest.mark.timeout(60)

RETENTION = 1.0
"""Seconds the servers here keep a settled run (they sweep every quarter of it)."""


gate = Hold()
"""Holds `held`'s step until the test lets it go."""


@create_step("wait-for-gate", input_schema=Count, output_schema=Count)
async def wait_for_gate(ctx: StepContext) -> Count:
    await gate.enter(ctx.input_data.count)
    return Count(count=ctx.input_data.count)


@create_step("add", input_schema=Count, output_schema=Count)
async def add(ctx: StepContext) -> Count:
    if ctx.input_data.count < 0:
        raise ValueError("a negative count")
    return Count(count=ctx.input_data.count + 1)


@create_step("ask", input_schema=Count, output_schema=Count, resume_schema=Count)
async def ask(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        return await ctx.suspend({"question": "how many?"})
    return Count(count=ctx.resume_data.count)


quick = create_workflow("quick", input_schema=Count, output_schema=Count).then(add).commit()
asking = create_workflow("asking", input_schema=Count, output_schema=Count).then(ask).commit()
held = create_workflow("held", input_schema=Count, output_schema=Count).then(wait_for_gate).commit()
FLOWS = [quick, asking, held]


@pytest.fixture(autouse=True)
def fresh_gate() -> None:
    gate.reset()


@contextlib.asynccontextmanager
async def connected(served: Served) -> AsyncIterator[RunServiceAsyncStub]:
    async with grpc.aio.insecure_channel(served.address) as channel:
        yield run_service_pb2_grpc.RunServiceStub(channel)


async def gone(served: Served, run_id: str) -> bool:
    try:
        await served.engine.get_run(run_id)
    except errors.RunNotFound:
        return True
    return False


async def until_gone(served: Served, run_ids: list[str], within: float) -> None:
    bound = time.monotonic() + within
    while not all([await gone(served, run_id) for run_id in run_ids]):
        assert time.monotonic() < bound, f"not deleted within {within}s: {run_ids}"
        await asyncio.sleep(0.05)


async def test_settled_runs_go_after_the_retention_and_the_rest_stay(
    serving: ServingFactory, tmp_path: Path
) -> None:
    deletions: list[int] = []
    async with serving(tmp_path / "runs.db", workflows=FLOWS, retention=RETENTION) as served:
        served.store.hub.listen_deletions(deletions.append)
        engine = served.engine
        succeeded = await engine.start("quick", input_data={"count": 1}, wait=True)
        failed = await engine.start("quick", input_data={"count": -1}, wait=True)
        suspended = await engine.start("asking", input_data={"count": 1}, wait=True)
        canceled = await engine.start("asking", input_data={"count": 2}, wait=True)
        canceled = await engine.cancel(canceled.run_id)
        pending, _ = await engine.create_run("quick")
        running = await engine.start("held", input_data={"count": 1})
        assert [r.status for r in (succeeded, failed, suspended, canceled, pending, running)] == [
            RunStatus.SUCCESS,
            RunStatus.FAILED,
            RunStatus.SUSPENDED,
            RunStatus.CANCELED,
            RunStatus.PENDING,
            RunStatus.RUNNING,
        ]
        settled = [succeeded.run_id, failed.run_id, canceled.run_id]
        within = RETENTION + 4 * pause_for(RETENTION) + 3
        await until_gone(served, settled, within=within)
        async with connected(served) as stub:
            watch = stub.Watch(run_service_pb2.WatchRequest(run_id=succeeded.run_id, after_sequence=0))
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                async for _ in watch:
                    pass
            assert ended.value.code() is grpc.StatusCode.NOT_FOUND
            assert error_info(ended.value).reason == "RUN_NOT_FOUND"
        # The suspended run waits for its resume however old it is; once it settles, it goes too.
        await asyncio.sleep(2 * RETENTION)
        assert not await gone(served, suspended.run_id)
        await engine.resume(suspended.run_id, resume_data={"count": 5}, wait=True)
        await until_gone(served, [suspended.run_id], within=within)
        for run_id in (pending.run_id, running.run_id):  # never settled: never deleted
            assert not await gone(served, run_id)
        gate.release()
        await until_gone(served, [running.run_id], within=within)
        assert not await gone(served, pending.run_id)
        assert engine.retention is not None and engine.retention.deleted == 5
        assert sum(deletions) == 5


async def test_a_sweep_deletes_by_when_the_run_ended(serving: ServingFactory, tmp_path: Path) -> None:
    """A long retention: only a run that ended before it is deleted; one made as long ago that
    ended since (a long run, or one that waited days for its resume) is kept."""
    day = 86400.0
    now = time.time()

    def stored(run_id: str, created: float, ended: float) -> RunWrite:
        run = Run(
            run_id=run_id,
            workflow_id="quick",
            status=RunStatus.SUCCESS,
            created_at=created,
            updated_at=ended,
            input={"count": 1},
            result={"count": 2},
            started_at=created,
            ended_at=ended,
        )
        return RunWrite(run_id, create=run)

    async with serving(tmp_path / "runs.db", workflows=FLOWS) as served:
        young = await served.engine.start("quick", input_data={"count": 2}, wait=True)
        assert (await served.store.write(stored("old", now - 3 * day, now - 2 * day))).applied
        assert (await served.store.write(stored("long", now - 3 * day, now - 0.5 * day))).applied
        sweeper = Retention(served.store, day)
        assert await sweeper.sweep() == 1
        assert await gone(served, "old")
        assert not await gone(served, "long") and not await gone(served, young.run_id)
        assert await sweeper.sweep() == 0 and sweeper.deleted == 1
        with pytest.raises(ValueError):
            Retention(served.store, 0)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("layout", [(), ("--engine-process",)], ids=["one-process", "engine-process"])
async def test_serve_with_retention_deletes_settled_runs(tmp_path: Path, layout: tuple[str, ...]) -> None:
    """The setting reaches the engine in both layouts, and the sweep logs what it deleted."""
    server = await start_server(
        serve_argv(
            "--data-dir", str(tmp_path), "--workflows", "tests.workflows", "--retention", "1s", *layout
        ),
        env=server_env(),
    )
    try:
        async with Client(server.address, timeout=10) as client:
            echo, approval = client.get_workflow("echo"), client.get_workflow("approval")
            done = await (await echo.create_run()).start_async({"count": 1})
            asked = await (await approval.create_run()).start_async({"count": 1})
            assert (done.status, asked.status) == (RunStatus.SUCCESS, RunStatus.SUSPENDED)
            bound = time.monotonic() + 15
            while True:
                try:
                    await echo.run_by_id(done.run_id)
                except errors.RunNotFound:
                    break
                assert time.monotonic() < bound, "the settled run was not deleted"
                await asyncio.sleep(0.1)
            assert (await approval.run_by_id(asked.run_id)).status is RunStatus.SUSPENDED
    finally:
        assert await server.stop() == 0
    assert "retention: deleted 1 runs that ended before" in server.text
