"""A Watch of a run that is deleted ends with NOT_FOUND (RUN_NOT_FOUND), promptly, and
never goes on into a new run made under the same id: on one server (SQLite and
PostgreSQL), and on another replica of the same PostgreSQL database (which hears of the
delete by NOTIFY, or by its poll when the deleting replica announces nothing)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from conftest import HEARTBEAT, Served, serving_on
from edge import error_info
from google.protobuf import struct_pb2

from runservice.storage import open_store
from runservice.storage.postgres import PostgresStore
from runservice.v1 import run_service_pb2, run_service_pb2_grpc

if TYPE_CHECKING:
    from runservice.v1.run_service_pb2_grpc import RunServiceAsyncStub

pytestmark = pytest.mark.timeout(60)

PROMPTLY = 3.0
"""Seconds within which an open Watch must end once its run is deleted (heartbeats are
0.2 s; a PostgreSQL replica polls its watched runs every second)."""

OLD_STEPS = {"bump", "ask"}
"""Step ids of the run that is deleted (`approval`, suspended at `ask`)."""


@contextlib.asynccontextmanager
async def connected(served: Served) -> AsyncIterator[RunServiceAsyncStub]:
    async with grpc.aio.insecure_channel(served.address) as channel:
        yield run_service_pb2_grpc.RunServiceStub(channel)


def count(n: int) -> struct_pb2.Value:
    value = struct_pb2.Value()
    value.struct_value.update({"count": n})
    return value


async def start(stub: RunServiceAsyncStub, workflow_id: str, run_id: str) -> int:
    """Start the run and wait until it settles; its last sequence."""
    reply = await stub.Start(
        run_service_pb2.StartRequest(workflow_id=workflow_id, run_id=run_id, input_data=count(1), wait=True)
    )
    return reply.run.last_sequence


@dataclass
class Watcher:
    """One Watch stream of a run, read in a task: the events it delivered and how it ended."""

    events: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)
    """(sequence, step path) of every event delivered."""
    error: grpc.aio.AioRpcError | None = None
    ended_at: float | None = None
    ended_cleanly: bool = False

    async def follow(self, stub: RunServiceAsyncStub, run_id: str) -> None:
        try:
            async for reply in stub.Watch(run_service_pb2.WatchRequest(run_id=run_id)):
                self.events.extend((e.sequence, tuple(e.step_path.ids)) for e in reply.events)
                if reply.end_of_stream:
                    self.ended_cleanly = True
                    break
        except grpc.aio.AioRpcError as exc:
            self.error = exc
        finally:
            self.ended_at = time.monotonic()

    async def until_seen(self, last: int) -> None:
        async with asyncio.timeout(10):
            while not self.events or self.events[-1][0] < last:
                await asyncio.sleep(0.01)


async def watching(stub: RunServiceAsyncStub, run_id: str, last: int) -> tuple[Watcher, asyncio.Task[None]]:
    """A Watcher of `run_id` that has seen its events up to `last`, and its task."""
    watcher = Watcher()
    task = asyncio.create_task(watcher.follow(stub, run_id))
    await watcher.until_seen(last)
    return watcher, task


async def ends_not_found(watcher: Watcher, task: asyncio.Task[None], since: float, last: int) -> None:
    """The stream ended with RUN_NOT_FOUND within PROMPTLY of `since`, having delivered
    the deleted run's events 1..`last` and nothing else."""
    async with asyncio.timeout(PROMPTLY + 2):
        await task
    assert watcher.ended_at is not None and watcher.ended_at - since < PROMPTLY
    assert not watcher.ended_cleanly
    assert watcher.error is not None, "the stream ended without an error"
    assert watcher.error.code() is grpc.StatusCode.NOT_FOUND
    assert error_info(watcher.error).reason == "RUN_NOT_FOUND"
    assert [sequence for sequence, _ in watcher.events] == list(range(1, last + 1))
    assert {path[0] for _, path in watcher.events if path} <= OLD_STEPS


async def test_a_watch_of_a_deleted_run_ends_not_found(databases: Any, tmp_path: Path) -> None:
    url = await databases.url_for(tmp_path / "runs.db")
    async with serving_on(open_store(url)) as served, connected(served) as stub:
        last = await start(stub, "approval", "doomed")
        watcher, task = await watching(stub, "doomed", last)
        await asyncio.sleep(3 * HEARTBEAT)  # idle: heartbeats only
        deleted = time.monotonic()
        await stub.DeleteRun(run_service_pb2.DeleteRunRequest(run_id="doomed"))
        await ends_not_found(watcher, task, deleted, last)


async def test_a_watch_never_goes_on_into_a_new_run_under_the_same_id(databases: Any, tmp_path: Path) -> None:
    url = await databases.url_for(tmp_path / "runs.db")
    async with serving_on(open_store(url)) as served, connected(served) as stub:
        last = await start(stub, "approval", "reused")
        watcher, task = await watching(stub, "reused", last)
        deleted = time.monotonic()
        await stub.DeleteRun(run_service_pb2.DeleteRunRequest(run_id="reused"))
        # At once, before the watcher had a turn: a new run, with more events than the old.
        assert await start(stub, "shapes", "reused") > last
        await ends_not_found(watcher, task, deleted, last)
        # The new run is there for a new Watch, from its own first event.
        fresh = Watcher()
        async with asyncio.timeout(10):
            await fresh.follow(stub, "reused")
        assert fresh.ended_cleanly and fresh.events[0][0] == 1


@pytest.mark.parametrize("announced", [True, False], ids=["notify", "poll"])
async def test_a_watch_on_another_replica_ends_and_never_shows_the_new_run(
    pg_databases: Any, tmp_path: Path, announced: bool
) -> None:
    """Replica A deletes the run and A or B makes a new one under its id; B's Watch ends.
    Without A's NOTIFY (`announced` false: a lost notice), B's poll of its watched runs finds
    out. A new run made on B reaches B's Watch from B's own commits: without the notice, they
    were handed on as the old run's (audit)."""
    url = await pg_databases.url_for(tmp_path / "runs.db")
    async with (
        serving_on(PostgresStore(url, notify=announced)) as a,
        serving_on(PostgresStore(url, poll_interval=0.5)) as b,
        connected(a) as stub_a,
        connected(b) as stub_b,
    ):
        for run_id, maker in (("gone", None), ("reborn", stub_a), ("reborn-here", stub_b)):
            last = await start(stub_a, "approval", run_id)
            watcher, task = await watching(stub_b, run_id, last)
            deleted = time.monotonic()
            await stub_a.DeleteRun(run_service_pb2.DeleteRunRequest(run_id=run_id))
            if maker is not None:
                assert await start(maker, "shapes", run_id) > last
            await ends_not_found(watcher, task, deleted, last)


async def test_a_watch_never_hands_on_a_new_run_resumed_on_its_own_replica(
    pg_databases: Any, tmp_path: Path
) -> None:
    """A deletes the suspended run and starts the same workflow under its id, with as many
    events, announcing nothing (a lost notice); the new run is resumed on B, where the Watch
    is. B's own commits go on from the Watch's cursor without a gap: they were handed on as
    the deleted run's, to its end (audit). B's poll is slower than the test, so only the run's
    creation carried with B's live events can tell them apart."""
    url = await pg_databases.url_for(tmp_path / "runs.db")
    async with (
        serving_on(PostgresStore(url, notify=False)) as a,
        serving_on(PostgresStore(url, poll_interval=30)) as b,
        connected(a) as stub_a,
        connected(b) as stub_b,
    ):
        last = await start(stub_a, "approval", "twin")
        watcher, task = await watching(stub_b, "twin", last)
        deleted = time.monotonic()
        await stub_a.DeleteRun(run_service_pb2.DeleteRunRequest(run_id="twin"))
        assert await start(stub_a, "approval", "twin") == last
        approved = struct_pb2.Value()
        approved.struct_value.update({"approved": True})
        resumed = await stub_b.Resume(
            run_service_pb2.ResumeRequest(run_id="twin", resume_data=approved, wait=True)
        )
        assert resumed.run.last_sequence > last
        await ends_not_found(watcher, task, deleted, last)


async def test_a_watch_past_the_end_of_the_run_is_refused(databases: Any, tmp_path: Path) -> None:
    """No cursor of a run is past its last event (nothing is told before it is stored): a Watch
    after one is INVALID_ARGUMENT at once. It waited for ever on an active run (audit)."""
    url = await databases.url_for(tmp_path / "runs.db")
    async with serving_on(open_store(url)) as served, connected(served) as stub:
        last = await start(stub, "approval", "short")  # suspended: active for a Watch
        past = run_service_pb2.WatchRequest(run_id="short", after_sequence=last + 50)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            async with asyncio.timeout(5):
                async for _ in stub.Watch(past):
                    pass
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(refused.value).reason == "INVALID_REQUEST"
        watcher = Watcher()  # from its very end, a Watch is still fine
        task = asyncio.create_task(watcher.follow(stub, "short"))
        await watcher.until_seen(last)
        task.cancel()
