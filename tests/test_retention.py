"""`--retention`: a run that succeeded, failed or was canceled is deleted once it ended that long
ago, with its events, as DeleteRun deletes it (a Watch of it then ends NOT_FOUND), and so is one
reserved (CreateRun) that long ago and never started; suspended and running runs stay, whatever
their age. On SQLite and PostgreSQL through a real server, and
through the real `runservice serve` in both layouts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import pytest
from conftest import Databases, Served, ServingFactory
from edge import error_info
from holding import Count, Hold
from postgres import apply_migrations
from process import serve_argv, server_env, start_server

from runservice import errors
from runservice.client import Client
from runservice.engine.retention import LONGEST_PAUSE, Retention, pause_for
from runservice.model import EventDraft, EventType, Run, RunStatus
from runservice.storage import Due, RunWrite
from runservice.storage import sqlite as sqlite_store
from runservice.storage.postgres import PostgresStore
from runservice.storage.sqlite import SqliteStore
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
        # A reservation never started goes as a settled run does, counted from its reservation.
        settled = [succeeded.run_id, failed.run_id, canceled.run_id, pending.run_id]
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
        assert not await gone(served, running.run_id)  # active, however old: never deleted
        gate.release()
        await until_gone(served, [running.run_id], within=within)
        assert engine.retention is not None
        # The sweep counts a page's deletions once all of them committed: a moment after the
        # last run is gone for readers.
        bound = time.monotonic() + within
        while engine.retention.deleted < 6:
            assert time.monotonic() < bound, engine.retention.deleted
            await asyncio.sleep(0.05)
        assert engine.retention.deleted == 6
        assert sum(deletions) == 6


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
            Retention(served.store, -1)


async def test_a_run_changed_between_the_sweeps_listing_and_its_delete_is_kept(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """The sweep lists the runs due, then deletes them: one a time travel made active and
    settled again meanwhile, or one deleted and made anew under its id, was deleted seconds
    after it ended, on its status alone (a chaos audit of two replicas). It is kept now."""
    day = 86400.0
    now = time.time()

    def stored(run_id: str) -> RunWrite:
        run = Run(
            run_id=run_id,
            workflow_id="quick",
            status=RunStatus.SUCCESS,
            created_at=now - 3 * day,
            updated_at=now - 2 * day,
            input={"count": 1},
            result={"count": 2},
            started_at=now - 3 * day,
            ended_at=now - 2 * day,
        )
        return RunWrite(run_id, create=run, events=[EventDraft(EventType.WORKFLOW_START, RunStatus.SUCCESS)])

    async with serving(tmp_path / "runs.db", workflows=FLOWS) as served:
        for run_id in ("travelled", "made-anew", "old"):
            assert (await served.store.write(stored(run_id))).applied
        listing = served.store.settled_before

        async def then_changed(cutoff: float, limit: int) -> list[Due]:
            found = await listing(cutoff, limit)
            if found:  # another replica's calls, between this listing and the deletes
                await served.store.write(
                    RunWrite(
                        "travelled",
                        patch={"ended_at": now},
                        events=[EventDraft(EventType.WORKFLOW_START, RunStatus.SUCCESS)],
                    )
                )
                await served.store.write(RunWrite("made-anew", delete=True))
                await served.engine.start("quick", run_id="made-anew", input_data={"count": 1}, wait=True)
            return found

        served.store.settled_before = then_changed  # type: ignore[method-assign]
        assert await Retention(served.store, day).sweep() == 1
        assert await gone(served, "old")
        assert not await gone(served, "travelled") and not await gone(served, "made-anew")


async def test_a_reservation_goes_only_if_never_started(serving: ServingFactory, tmp_path: Path) -> None:
    """A run reserved before the retention and never started is deleted; one reserved as long
    ago and started since, or reserved since, is kept by that rule, and a Start that lands
    between the sweep's listing and its delete keeps its run."""
    day = 86400.0
    now = time.time()

    def reserved(run_id: str, created: float) -> RunWrite:
        run = Run(
            run_id=run_id,
            workflow_id="quick",
            status=RunStatus.PENDING,
            created_at=created,
            updated_at=created,
        )
        return RunWrite(run_id, create=run)

    async with serving(tmp_path / "runs.db", workflows=FLOWS) as served:
        assert (await served.store.write(reserved("abandoned", now - 3 * day))).applied
        assert (await served.store.write(reserved("recent", now - 0.5 * day))).applied
        assert (await served.store.write(reserved("started", now - 3 * day))).applied
        fresh, _ = await served.engine.create_run("quick")
        ran = await served.engine.start("quick", run_id="started", input_data={"count": 1}, wait=True)
        assert ran.status is RunStatus.SUCCESS
        sweeper = Retention(served.store, day)
        assert await sweeper.sweep() == 1
        assert await gone(served, "abandoned")
        for kept in ("recent", "started", fresh.run_id):
            assert not await gone(served, kept)
        # The delete holds only while the run is still pending: a Start that came first wins.
        assert await served.store.unstarted_before(now - day, 10) == []
        late = await served.store.write(reserved("late", now - 3 * day))
        assert late.applied and [d.run_id for d in await served.store.unstarted_before(now - day, 10)] == [
            "late"
        ]
        await served.engine.start("quick", run_id="late", input_data={"count": 1}, wait=True)
        refused = await served.store.write(
            RunWrite("late", expect=frozenset({RunStatus.PENDING}), delete=True)
        )
        assert not refused.applied and refused.status is RunStatus.SUCCESS
        assert not await gone(served, "late")
        assert await sweeper.sweep() == 0 and sweeper.deleted == 1


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


# -- the marks DeleteRun's request ids leave ---------------------------------------------------


async def test_delete_marks_are_forgotten_once_old_and_runs_are_kept_without_retention(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """A DeleteRun with a request id leaves a mark so that its retry succeeds; the sweep forgets
    marks older than it keeps them (a day by default), so deletes leave nothing for ever. With
    no retention, the sweep deletes no run."""
    async with serving(tmp_path / "runs.db", workflows=FLOWS) as served, connected(served) as stub:
        engine = served.engine
        assert (engine.retention.seconds, engine.retention.pause) == (0, LONGEST_PAUSE)
        kept = await engine.start("quick", input_data={"count": 1}, wait=True)

        async def delete(run_id: str, request_id: str) -> None:
            await stub.DeleteRun(run_service_pb2.DeleteRunRequest(run_id=run_id, request_id=request_id))

        for name in ("old-1", "old-2"):
            await engine.start("quick", input_data={"count": 1}, wait=True, run_id=name)
            await delete(name, f"delete-{name}")
        await asyncio.sleep(0.6)
        await engine.start("quick", input_data={"count": 1}, wait=True, run_id="young")
        await delete("young", "delete-young")

        sweeper = Retention(served.store, 0, marks=0.5)
        assert await sweeper.sweep() == 0 and sweeper.forgotten == 2
        assert not await gone(served, kept.run_id)  # no retention: settled runs stay
        await delete("young", "delete-young")  # its mark is young: the retry succeeds
        for name in ("old-1", "old-2"):  # forgotten: a retry now finds no run
            with pytest.raises(grpc.aio.AioRpcError) as retried:
                await delete(name, f"delete-{name}")
            assert error_info(retried.value).reason == "RUN_NOT_FOUND"
        assert await sweeper.sweep() == 0 and sweeper.forgotten == 2
        await asyncio.sleep(0.6)
        assert await sweeper.sweep() == 0 and sweeper.forgotten == 3
        with pytest.raises(ValueError):
            Retention(served.store, 0, marks=0)


async def test_forgetting_goes_in_pages(serving: ServingFactory, tmp_path: Path) -> None:
    """Marks beyond a page are all forgotten in one sweep, a page per statement."""
    async with serving(tmp_path / "runs.db", workflows=FLOWS) as served:
        for index in range(7):
            run_id = f"paged-{index}"
            await served.engine.start("quick", input_data={"count": 1}, wait=True, run_id=run_id)
            await served.engine.delete_run(run_id, request_id=f"delete-{index}")
        cutoff = time.time() + 1
        assert await served.store.forget_deletes(cutoff, 3) == 3
        assert await served.store.forget_deletes(cutoff, 3) == 3
        assert await served.store.forget_deletes(cutoff, 3) == 1
        assert await served.store.forget_deletes(cutoff, 3) == 0


async def test_marks_from_before_the_migration_count_from_it(databases: Databases, tmp_path: Path) -> None:
    """A database whose delete marks had no time (schema 14 on SQLite, migration 12 on
    PostgreSQL) is migrated: its marks count from then, and are forgotten a day later."""
    mark = ("gone", "delete", "delete-gone")
    before = time.time()
    if databases.backend == "sqlite":
        path = str(tmp_path / "old.db")
        scripts = [
            "schema.sql",
            *(
                sqlite_store.MIGRATIONS[v]
                for v in sorted(sqlite_store.MIGRATIONS)
                if sqlite_store.BASE_VERSION < v < 15
            ),
        ]
        with sqlite3.connect(path) as conn:
            conn.executescript("\n".join(sqlite_store._resource(name) for name in scripts))
            conn.execute("PRAGMA user_version = 14")
            conn.execute("INSERT INTO requests (run_id, kind, request_id) VALUES (?, ?, ?)", mark)
        conn.close()
        store: SqliteStore | PostgresStore = SqliteStore(path)
    else:
        url = await databases.empty()
        conn_pg = await asyncpg.connect(url)
        try:
            await apply_migrations(conn_pg, range(13))
            await conn_pg.execute(
                "INSERT INTO requests (run_id, kind, request_id) VALUES ($1, $2, $3)", *mark
            )
        finally:
            await conn_pg.close()
        store = PostgresStore(url)
    await store.open()
    try:
        assert await store.has_request(*mark)
        assert await store.forget_deletes(before - 1, 10) == 0  # it counts from the migration
        assert await store.has_request(*mark)
        assert await store.forget_deletes(time.time() + 1, 10) == 1
        assert not await store.has_request(*mark)
        if isinstance(store, PostgresStore):
            # A replica of the older version still running (a rolling upgrade) writes marks
            # with no time: they count from when a sweep first sees them.
            late = ("late", "delete", "delete-late")
            conn_pg = await asyncpg.connect(url)
            try:
                await conn_pg.execute(
                    "INSERT INTO requests (run_id, kind, request_id) VALUES ($1, $2, $3)", *late
                )
            finally:
                await conn_pg.close()
            seen = time.time()
            assert await store.forget_deletes(seen - 1, 10) == 0 and await store.has_request(*late)
            assert await store.forget_deletes(seen - 1, 10) == 0  # stamped by the sweep before
            assert await store.forget_deletes(time.time() + 1, 10) == 1
            assert not await store.has_request(*late)
    finally:
        await store.close()


async def test_a_start_whose_reservation_is_deleted_meanwhile_creates_the_run(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """A Start of a reserved id tries to create the run, reads the reservation it finds
    instead, then starts it. A delete that lands in between (the retention sweep's, here
    submitted right after the Start's create, as a sweep on another task or replica can)
    answered the Start NOT_FOUND, or ALREADY_EXISTS for a run that no longer existed; the
    Start now creates the run afresh."""
    async with serving(tmp_path / "runs.db", workflows=FLOWS) as served:
        for _ in range(3):
            reservation, _ = await served.engine.create_run("quick")
            run_id = reservation.run_id
            start = asyncio.ensure_future(
                served.engine.start("quick", run_id=run_id, input_data={"count": 1}, wait=True)
            )
            await asyncio.sleep(0)  # the Start has submitted its create, which finds the run
            deleted = await served.store.write(
                RunWrite(run_id, expect=frozenset({RunStatus.PENDING}), delete=True)
            )
            assert deleted.applied
            run = await start
            assert (run.status, run.result) == (RunStatus.SUCCESS, {"count": 2})
            assert (await served.engine.get_run(run_id)).status is RunStatus.SUCCESS


async def test_a_stop_cut_short_while_the_sweep_stops_is_not_swallowed(tmp_path: Path) -> None:
    """`aclose` waits for the sweep's task to end; a cancellation of whoever closes it (a stop
    cut short) must reach that caller, not be taken for the task's own and swallowed."""
    store = SqliteStore(str(tmp_path / "runs.db"))
    await store.open()
    try:
        sweeper = Retention(store, 86_400)
        sweeper.start()
        await asyncio.sleep(0.05)  # the loop is in its pause
        closer = asyncio.create_task(sweeper.aclose())
        await asyncio.sleep(0)  # the closer has cancelled the loop and waits for it
        closer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(closer, 5)
    finally:
        await store.close()


async def test_a_new_outage_of_the_sweep_is_logged_at_once_after_a_sweep_that_succeeded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The sweep fails (the database away), then succeeds, then fails again a pause later: two
    lines, one per outage. Before, the second waited until 30 s after the first (its start
    was missed); a failure every turn is still one line (logs.LoopFailures)."""
    store = SqliteStore(str(tmp_path / "runs.db"))
    await store.open()
    settled_before = store.settled_before
    turns = 0

    async def away_at_some_turns(*args: Any, **kwargs: Any) -> Any:
        nonlocal turns
        turns += 1
        if turns in (1, 3, 4):
            raise errors.StorageUnavailable(f"away at turn {turns}")
        return await settled_before(*args, **kwargs)

    store.settled_before = away_at_some_turns  # type: ignore[method-assign]
    caplog.set_level(logging.WARNING, logger="runservice.engine.retention")
    sweeper = Retention(store, RETENTION)
    try:
        sweeper.start()
        async with asyncio.timeout(10):
            while turns < 5:
                await asyncio.sleep(0.05)
    finally:
        await sweeper.aclose()
        await store.close()
    told = [r.getMessage() for r in caplog.records if r.name == "runservice.engine.retention"]
    assert [re.findall(r"away at turn \d", line) for line in told] == [["away at turn 1"], ["away at turn 3"]]
    assert all(line.startswith("the retention sweep failed") for line in told), told
