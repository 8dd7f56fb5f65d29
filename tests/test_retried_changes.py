"""Restart and DeleteRun take a `request_id`, as Start, Resume and Cancel do: gRPC's retry of
a call whose reply was lost carries the same id and gets the first outcome. Before, a retried
Restart of a run that had meanwhile settled answered RUN_NOT_ACTIVE, and a retried DeleteRun
RUN_NOT_FOUND, for calls that had worked. On SQLite and PostgreSQL, through a real server."""

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
from run_writes import orphan

from runservice import errors
from runservice.model import Run, RunStatus
from runservice.v1 import run_pb2, run_service_pb2, run_service_pb2_grpc
from runservice.wire import from_value, to_value
from runservice.workflow import StepContext, create_step, create_workflow

if TYPE_CHECKING:
    from runservice.v1.run_service_pb2_grpc import RunServiceAsyncStub

pytestmark = pytest.mark.timeout(30)


gate = Hold()
"""Holds `gated`'s step until the test lets it go."""


@create_step("held", input_schema=Count, output_schema=Count)
async def held(ctx: StepContext) -> Count:
    await gate.enter(ctx.input_data.count)
    return Count(count=ctx.input_data.count + 1)


gated = create_workflow("gated", input_schema=Count, output_schema=Count).then(held).commit()


@create_step("add-one", input_schema=Count, output_schema=Count)
async def add_one(ctx: StepContext) -> Count:
    return Count(count=ctx.input_data.count + 1)


quick = create_workflow("quick", input_schema=Count, output_schema=Count).then(add_one).commit()


@pytest.fixture
async def served(serving: ServingFactory, tmp_path: Path) -> AsyncIterator[Served]:
    gate.reset()
    async with serving(tmp_path / "runs.db", workflows=[gated, quick]) as running:
        yield running


@contextlib.asynccontextmanager
async def connected(served: Served) -> AsyncIterator[RunServiceAsyncStub]:
    async with grpc.aio.insecure_channel(served.address) as channel:
        yield run_service_pb2_grpc.RunServiceStub(channel)


async def refused(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code(), error_info(caught.value).reason


async def settled(served: Served, run_id: str) -> Run:
    bound = time.monotonic() + 10
    while (run := await served.engine.get_run(run_id)).status is RunStatus.RUNNING:
        assert time.monotonic() < bound, "the run did not settle"
        await asyncio.sleep(0.02)
    return run


async def test_a_retried_restart_returns_the_run_it_redrove(served: Served) -> None:
    assert (await served.store.write(orphan("r-orphan", "quick", {"count": 41}))).applied
    async with connected(served) as stub:
        first = run_service_pb2.RestartRequest(run_id="r-orphan", request_id="restart-1", wait=True)
        assert (await stub.Restart(first)).run.status == run_pb2.RUN_STATUS_SUCCESS
        # The retry after a lost reply: the run has settled, and it is still the answer.
        again = (await stub.Restart(first)).run
        assert again.status == run_pb2.RUN_STATUS_SUCCESS and from_value(again.result) == {"count": 42}
        without_wait = run_service_pb2.RestartRequest(run_id="r-orphan", request_id="restart-1")
        assert (await stub.Restart(without_wait)).run.status == run_pb2.RUN_STATUS_SUCCESS
        # Another request is a new Restart, of a run that is no longer active.
        other = stub.Restart(run_service_pb2.RestartRequest(run_id="r-orphan", request_id="restart-2"))
        assert await refused(other) == (grpc.StatusCode.FAILED_PRECONDITION, "RUN_NOT_ACTIVE")
        plain = stub.Restart(run_service_pb2.RestartRequest(run_id="r-orphan"))
        assert await refused(plain) == (grpc.StatusCode.FAILED_PRECONDITION, "RUN_NOT_ACTIVE")
    events = await served.store.read_events("r-orphan", 0)
    assert [e.type.value for e in events].count("workflow-finish") == 1  # driven once


async def test_a_retried_restart_of_a_run_already_driven_is_still_a_retry(served: Served) -> None:
    """A Restart of a run this server drives changes nothing, but is remembered: its retry,
    once the run has settled, is answered with the run, not RUN_NOT_ACTIVE."""
    async with connected(served) as stub:
        held_start = run_service_pb2.StartRequest(
            workflow_id="gated", run_id="r-held", input_data=to_value({"count": 1})
        )
        started = await stub.Start(held_start)
        assert started.run.status == run_pb2.RUN_STATUS_RUNNING
        request = run_service_pb2.RestartRequest(run_id="r-held", request_id="restart-held")
        assert (await stub.Restart(request)).run.status == run_pb2.RUN_STATUS_RUNNING
        gate.release()
        assert (await settled(served, "r-held")).status is RunStatus.SUCCESS
        assert (await stub.Restart(request)).run.status == run_pb2.RUN_STATUS_SUCCESS
        other = stub.Restart(run_service_pb2.RestartRequest(run_id="r-held", request_id="restart-other"))
        assert await refused(other) == (grpc.StatusCode.FAILED_PRECONDITION, "RUN_NOT_ACTIVE")


async def test_a_retried_delete_succeeds_and_deletes_no_later_run(served: Served) -> None:
    async with connected(served) as stub:

        async def start() -> None:
            reply = await stub.Start(
                run_service_pb2.StartRequest(
                    workflow_id="quick", run_id="r-gone", input_data=to_value({"count": 1}), wait=True
                )
            )
            assert reply.run.status == run_pb2.RUN_STATUS_SUCCESS

        def delete(request_id: str = "") -> Any:
            return stub.DeleteRun(run_service_pb2.DeleteRunRequest(run_id="r-gone", request_id=request_id))

        await start()
        await delete("delete-1")
        await delete("delete-1")  # the retry after a lost reply
        assert await refused(delete("delete-2")) == (grpc.StatusCode.NOT_FOUND, "RUN_NOT_FOUND")
        assert await refused(delete()) == (grpc.StatusCode.NOT_FOUND, "RUN_NOT_FOUND")
        # A run made later under the same id is not the deleted one: a late retry leaves it.
        await start()
        await delete("delete-1")
        assert (await served.engine.get_run("r-gone")).status is RunStatus.SUCCESS
        await delete("delete-3")
        await delete("delete-3")
    with pytest.raises(errors.RunNotFound):
        await served.engine.get_run("r-gone")
