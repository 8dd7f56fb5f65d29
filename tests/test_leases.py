"""Leases, fencing and the claim loop, on SQLite and PostgreSQL.

The store tests check the lease rules of `RunWrite`, `claim_runs` and `renew_leases` on a
real database. The engine tests run two engines ("replicas") on one database: on SQLite
the store is used as a shared one (`exclusive = False`), so leases expire and are renewed
by heartbeats exactly as they are on PostgreSQL, where they run as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from workflows import approval

from runservice.engine import Engine
from runservice.engine import engine as engine_module
from runservice.engine import leases as leases_module
from runservice.engine.leases import LeaseKeeper
from runservice.errors import RequestIdReused, RunClaimed, RunNotSuspended, Unavailable
from runservice.model import EventType, Run, RunStatus
from runservice.server.committed import CommittedEvents
from runservice.server.tracing import Tracing
from runservice.storage import BoundedClaim, Claim, Lease, Renewal, RunWrite, Store, open_store
from runservice.storage.postgres import PostgresStore
from runservice.storage.sqlite import SqliteStore
from runservice.workflow import StepContext, create_step, create_workflow

pytestmark = pytest.mark.timeout(30)

ran: Counter[str] = Counter()
release = asyncio.Event()
entered: dict[str, asyncio.Event] = {}


@pytest.fixture(autouse=True)
def reset() -> None:
    global release
    ran.clear()
    entered.clear()
    release = asyncio.Event()


async def hold(key: str) -> None:
    ran[key] += 1
    entered.setdefault(key, asyncio.Event()).set()
    await release.wait()


async def wait_entered(key: str, count: int = 1) -> None:
    async with asyncio.timeout(10):
        while ran[key] < count:
            await entered.setdefault(key, asyncio.Event()).wait()
            entered[key] = asyncio.Event()


@create_step("prepare")
async def prepare(ctx: StepContext) -> int:
    ran["prepare"] += 1
    return int(ctx.input_data["n"])


@create_step("work")
async def work(ctx: StepContext) -> int:
    await hold("work")
    return int(ctx.input_data) * 2


slow = create_workflow("slow").then(prepare).then(work).commit()
bounded = create_workflow("bounded", max_active_runs=1).then(prepare).commit()
"""Its runs are left to the claim loops on PostgreSQL (the bound is shared by the replicas)."""


@create_step("chat", retries=2)
async def chat(ctx: StepContext) -> int:
    await hold("chat")
    await ctx.writer.write({"after": "release"})  # a commit: fenced once the lease is lost
    return 1


chatty = create_workflow("chatty").then(chat).commit()


def new_run(run_id: str, status: RunStatus = RunStatus.RUNNING) -> Run:
    return Run(run_id=run_id, workflow_id="slow", status=status, created_at=1.0, updated_at=1.0)


@pytest.fixture
async def url(databases: Any, tmp_path: Path) -> str:
    made: str = await databases.url_for(tmp_path / "runs.db")
    return made


@pytest.fixture
async def store(url: str) -> AsyncIterator[Store]:
    opened = open_store(url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


# -- the store's lease rules ---------------------------------------------------------------------


async def test_claims_take_only_runs_without_a_live_owner(store: Store) -> None:
    for run_id, status in (("a", RunStatus.RUNNING), ("b", RunStatus.WAITING), ("c", RunStatus.SUSPENDED)):
        await store.write(RunWrite(run_id, create=new_run(run_id, status)))
    claimed = await store.claim_runs(Claim("r1", 0.2), 10, ["slow"])
    assert sorted(claimed) == [("a", Lease("r1", 1)), ("b", Lease("r1", 1))]
    assert await store.claim_runs(Claim("r2", 10), 10, ["slow"]) == []
    assert await store.claim_runs(Claim("r2", 10), 10, ["other"]) == []
    await asyncio.sleep(0.25)  # r1's leases expire
    again = await store.claim_runs(Claim("r2", 10), 10, ["slow"])
    assert sorted(again) == [("a", Lease("r2", 2)), ("b", Lease("r2", 2))]


async def test_a_claim_of_unowned_runs_only_leaves_lapsed_leases_alone(store: Store) -> None:
    """`unowned_only` (a replica back from a database outage): runs whose owner's lease ran
    out are not taken, runs with no owner are; a bounded claim takes the same."""
    for n, run_id in enumerate(("a", "b", "c")):
        await store.write(RunWrite(run_id, create=replace(new_run(run_id), created_at=1.0 + n)))
    assert await store.claim_runs(Claim("one", 0.2), 1, ["slow"]) == [("a", Lease("one", 1))]
    await asyncio.sleep(0.25)  # a's lease runs out
    assert await store.claim_runs(Claim("two", 10), 1, ["slow"], unowned_only=True) == [
        ("b", Lease("two", 1))
    ]
    bounded = await store.claim_bounded(Claim("two", 10), 5, "slow", 5, unowned_only=True)
    assert bounded == BoundedClaim([("c", Lease("two", 1))], False)
    assert await store.claim_runs(Claim("two", 10), 5, ["slow"], unowned_only=True) == []
    assert await store.claim_runs(Claim("two", 10), 5, ["slow"]) == [("a", Lease("two", 2))]


async def test_claims_take_runs_in_the_order_they_were_left_waiting(store: Store, url: str) -> None:
    """The claim order is when each run was left to the claim loops (`queued_at`), not its
    creation (audit D2: a Resume of an old run went ahead of every Start already waiting). A
    create, a passing claim (a Resume without room) and a claimless change that makes a run
    active (a Start of a run created ahead) put the run behind those left before it; another
    change of a waiting run keeps its place; a row from before the column goes by its creation."""
    running, suspended = frozenset({RunStatus.RUNNING}), frozenset({RunStatus.SUSPENDED})
    await store.write(RunWrite("resumed", create=new_run("resumed", RunStatus.SUSPENDED)))  # the oldest
    await store.write(RunWrite("begun", create=new_run("begun", RunStatus.PENDING)))
    await store.write(RunWrite("started", create=replace(new_run("started"), created_at=5.0)))
    await asyncio.sleep(0.01)
    resume = RunWrite("resumed", expect=suspended, patch={"status": RunStatus.RUNNING}, claim=Claim("r1", 0))
    assert (await store.write(resume)).applied
    await asyncio.sleep(0.01)
    begin = RunWrite("begun", expect=frozenset({RunStatus.PENDING}), patch={"status": RunStatus.RUNNING})
    assert (await store.write(begin)).applied
    # A request remembered for a waiting run (a Restart's): it keeps its place.
    assert (await store.write(RunWrite("started", expect=running, requests=(("restart", "x"),)))).applied
    await store.write(RunWrite("legacy", create=replace(new_run("legacy"), created_at=2.0)))
    await _unqueued(url, "legacy")  # as written before `queued_at`, or by an older server
    await asyncio.sleep(0.01)  # the passing claim's lease is over
    order = [run_id for _ in range(5) for run_id, _ in await store.claim_runs(Claim("r2", 10), 1, ["slow"])]
    assert order == ["legacy", "started", "resumed", "begun"]


async def test_a_database_from_before_queued_at_is_migrated_and_its_waiting_runs_go_first(url: str) -> None:
    """A database of the schema before `queued_at` (SQLite 18, PostgreSQL 16) with runs waiting
    gets the column at open, recorded as usable by older servers: those runs go by their
    creation, ahead of a run left waiting after the upgrade (created earlier, say by a clock)."""
    store = open_store(url)
    await store.open()
    try:
        for run_id, created_at in (("b", 2.0), ("a", 1.0)):
            await store.write(RunWrite(run_id, create=replace(new_run(run_id), created_at=created_at)))
    finally:
        await store.close()
    postgres = url.startswith("postgres")
    version = 17 if postgres else 19
    await _run_sql(
        url,
        "ALTER TABLE runs DROP COLUMN queued_at",
        f"DELETE FROM schema_migrations WHERE version = {version}",
        f"DELETE FROM schema_compatible WHERE version = {version}",
        *(() if postgres else ("PRAGMA user_version = 18",)),
    )
    store = open_store(url)
    await store.open()
    try:
        await store.write(RunWrite("new", create=replace(new_run("new"), created_at=0.5)))
        claims = [await store.claim_runs(Claim("r", 10), 1, ["slow"]) for _ in range(4)]
        assert [run_id for claimed in claims for run_id, _ in claimed] == ["a", "b", "new"]
    finally:
        await store.close()
    compatible = "SELECT count(*) FROM schema_compatible WHERE version = "
    if postgres:
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval(compatible + str(version)) == 1
        finally:
            await conn.close()
    else:
        with contextlib.closing(sqlite3.connect(url)) as lite:
            assert lite.execute(compatible + str(version)).fetchone() == (1,)


async def _run_sql(url: str, *statements: str) -> None:
    if not url.startswith("postgres"):
        with contextlib.closing(sqlite3.connect(url)) as conn, conn:
            for statement in statements:
                conn.execute(statement)
        return
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _unqueued(url: str, run_id: str) -> None:
    """Clear a run's `queued_at`, as a server from before the column leaves it."""
    await _run_sql(url, f"UPDATE runs SET queued_at = NULL WHERE run_id = '{run_id}'")


async def test_an_overdue_claim_takes_only_runs_past_their_own_deadline(store: Store) -> None:
    """`overdue` (runs left for want of room): active or suspended runs with no live owner whose
    deadline passed; not a run within its deadline or with none, nor one suspended whose nested
    workflow's deadline (`wake_at`) passed but not its own, which needs a drive."""
    past, later = time.time() - 5, time.time() + 60
    for run_id, status, deadline, wake_at in (
        ("late", RunStatus.RUNNING, past, None),
        ("late-sleeping", RunStatus.WAITING, past, None),
        ("late-suspended", RunStatus.SUSPENDED, past, None),
        ("in-time", RunStatus.RUNNING, later, None),
        ("no-deadline", RunStatus.RUNNING, None, None),
        ("nested-late", RunStatus.SUSPENDED, later, past),
    ):
        run = replace(new_run(run_id, status), deadline=deadline, wake_at=wake_at)
        await store.write(RunWrite(run_id, create=run))
    overdue = await store.claim_runs(Claim("r1", 10), 10, ["slow"], overdue=True)
    assert sorted(overdue) == [
        ("late", Lease("r1", 1)),
        ("late-sleeping", Lease("r1", 1)),
        ("late-suspended", Lease("r1", 1)),
    ]
    assert await store.claim_runs(Claim("r2", 10), 10, ["slow"], overdue=True) == []  # owned now
    rest = await store.claim_runs(Claim("r2", 10), 10, ["slow"])
    assert sorted(run_id for run_id, _ in rest) == ["in-time", "nested-late", "no-deadline"]


async def test_a_bounded_claim_counts_the_runs_live_owners_drive(store: Store) -> None:
    """`claim_bounded`: at most the bound minus the workflow's running runs with a live owner,
    whoever owns them; sleeping (waiting) runs and lapsed leases do not count."""
    for n in range(5):
        await store.write(RunWrite(f"r{n}", create=replace(new_run(f"r{n}"), created_at=1.0 + n)))
    first = await store.claim_bounded(Claim("one", 0.3), 10, "slow", 2)
    assert sorted(run_id for run_id, _ in first.claimed) == ["r0", "r1"] and first.held_back  # oldest
    second = await store.claim_bounded(Claim("two", 10), 10, "slow", 2)
    assert second.claimed == [] and second.held_back  # "one"'s runs count for "two"
    third = await store.claim_bounded(Claim("two", 10), 10, "slow", 4)
    assert sorted(third.claimed) == [("r2", Lease("two", 1)), ("r3", Lease("two", 1))] and third.held_back
    # r2 begins to sleep: room for r4, and nothing due is left.
    await store.write(RunWrite("r2", patch={"status": RunStatus.WAITING}))
    fourth = await store.claim_bounded(Claim("two", 10), 10, "slow", 4)
    assert fourth.claimed == [("r4", Lease("two", 1))] and not fourth.held_back
    # "one" goes quiet: its leases lapse, so r0 and r1 count no more, and are due again.
    await asyncio.sleep(0.35)
    fifth = await store.claim_bounded(Claim("two", 10), 1, "slow", 4)
    assert fifth.claimed == [("r0", Lease("two", 2))] and not fifth.held_back  # r1 waits; room is left
    full = await store.claim_bounded(Claim("two", 10), 10, "slow", 3)
    assert full.claimed == [] and full.held_back  # r0, r3 and r4 run; r1 is due
    assert await store.claim_bounded(Claim("two", 10), 10, "other", 1) == BoundedClaim([], False)


async def test_a_sleeping_run_goes_on_only_within_its_workflows_bound(store: Store) -> None:
    """`wake_bounded`: a sleeping run is made running again only while its workflow's running
    runs with a live owner are fewer than the bound, and only under the run's lease."""
    for n in range(3):
        await store.write(RunWrite(f"r{n}", create=replace(new_run(f"r{n}"), created_at=1.0 + n)))
    leases = dict(await store.claim_runs(Claim("one", 10), 10, ["slow"]))
    for run_id in ("r1", "r2"):
        await store.write(
            RunWrite(run_id, patch={"status": RunStatus.WAITING, "wake_at": 5.0}, fence=leases[run_id])
        )

    async def status(run_id: str) -> tuple[RunStatus, float | None]:
        run = await store.get_run(run_id)
        assert run is not None
        return run.status, run.wake_at

    assert not await store.wake_bounded("r2", leases["r2"], "slow", 1)  # r0 runs
    assert await status("r2") == (RunStatus.WAITING, 5.0)
    assert await store.wake_bounded("r2", leases["r2"], "slow", 2)
    assert await status("r2") == (RunStatus.RUNNING, None)
    assert not await store.wake_bounded("r1", leases["r1"], "slow", 2)  # r0 and r2 run now
    await store.write(RunWrite("r0", patch={"status": RunStatus.SUCCESS}, fence=leases["r0"], release=True))
    # Room, but under a lease the run no longer has nothing changes: the drive's next commit
    # is fenced and finds the lease lost.
    assert await store.wake_bounded("r1", Lease("one", leases["r1"].epoch + 1), "slow", 2)
    assert await status("r1") == (RunStatus.WAITING, 5.0)
    assert await store.wake_bounded("r1", leases["r1"], "slow", 2)
    assert await status("r1") == (RunStatus.RUNNING, None)


async def test_woken_runs_waiting_for_room_hold_the_room_of_a_bound_the_servers_share(store: Store) -> None:
    """A woken run that `wake_bounded` finds no room for is marked as waiting for some, under its
    lease: a claim (`claim_bounded`) leaves it the workflow's room, and tells the servers of such
    runs (`listen_room`) when it finds room they hold after a drive ended (`freed`). Woken runs go
    on in the order their sleeps ended. The mark ends when the run goes on, and counts only while
    its owner's lease lives and no other claim took the run since (audit D3: claims counted only
    the driven runs, and Starts took the room every time, for as long as they came)."""
    for n, run_id in enumerate(("r0", "early", "late")):
        await store.write(RunWrite(run_id, create=replace(new_run(run_id), created_at=1.0 + n)))
    leases = dict(await store.claim_runs(Claim("one", 10), 10, ["slow"]))
    for run_id, wake_at in (("early", 10.0), ("late", 20.0)):  # their sleeps ended then
        patch = {"status": RunStatus.WAITING, "wake_at": wake_at}
        await store.write(RunWrite(run_id, patch=patch, fence=leases[run_id]))
    await store.write(RunWrite("queued", create=replace(new_run("queued"), created_at=4.0)))
    told: list[str] = []
    store.listen_room(told.append)
    if isinstance(store, PostgresStore):
        await until_true(lambda: store.listening)  # told through the LISTEN connection
    try:
        assert not await store.wake_bounded("late", leases["late"], "slow", 1)  # r0 runs: marked
        # No room: nobody is told.
        assert await store.claim_bounded(Claim("two", 10), 10, "slow", 1, freed=True) == BoundedClaim(
            [], True
        )
        await store.write(
            RunWrite("r0", patch={"status": RunStatus.SUCCESS}, fence=leases["r0"], release=True)
        )
        # Room for one, which the woken run holds: no Start takes it, and its server is told.
        assert await store.claim_bounded(Claim("two", 10), 10, "slow", 1) == BoundedClaim([], True)
        assert await store.claim_bounded(Claim("two", 10), 10, "slow", 1, freed=True) == BoundedClaim(
            [], True
        )
        await until_true(lambda: told == ["slow"])
        # The run whose sleep ended first goes first, marked or not; then the room is taken.
        assert await store.wake_bounded("early", leases["early"], "slow", 1)
        assert not await store.wake_bounded("late", leases["late"], "slow", 1)
        assert await store.wake_bounded("late", leases["late"], "slow", 2)
        # Gone on, it holds room as a driven run; asleep again, it holds none.
        assert await store.claim_bounded(Claim("two", 10), 10, "slow", 2) == BoundedClaim([], True)
        await store.write(RunWrite("late", patch={"status": RunStatus.WAITING}, fence=leases["late"]))
        third = await store.claim_bounded(Claim("two", 10), 10, "slow", 2)
        assert third == BoundedClaim([("queued", Lease("two", 1))], False)
        assert await store.claim_bounded(Claim("two", 10), 10, "slow", 9, freed=True) == BoundedClaim(
            [], False
        )
        await asyncio.sleep(0.05)
        assert told == ["slow"]  # no woken run waits: nobody is told
    finally:
        store.unlisten_room(told.append)


async def test_a_woken_runs_mark_lasts_only_under_its_lease(store: Store) -> None:
    """The mark of a woken run waiting for room counts only while its owner's lease lives and
    is the one it was made under: a run another server claimed since (a new epoch) holds no room
    until that server's `wake_bounded` marks it again."""
    await store.write(RunWrite("r0", create=replace(new_run("r0"), created_at=1.0)))
    await store.write(RunWrite("woken", create=replace(new_run("woken"), created_at=2.0)))
    leases = dict(await store.claim_runs(Claim("one", 0.3), 10, ["slow"]))
    patch = {"status": RunStatus.WAITING, "wake_at": 5.0}
    await store.write(RunWrite("woken", patch=patch, fence=leases["woken"]))
    assert not await store.wake_bounded("woken", leases["woken"], "slow", 1)  # r0 runs: marked
    assert await store.claim_bounded(Claim("two", 10), 10, "slow", 2) == BoundedClaim([], False)
    await asyncio.sleep(0.35)  # "one" goes quiet: its leases lapse
    claimed = await store.claim_runs(Claim("two", 10), 10, ["slow"])
    assert sorted(claimed) == [("r0", Lease("two", 2)), ("woken", Lease("two", 2))]
    # r0 runs under "two"; the woken run, claimed under a new epoch, holds no room yet.
    assert await store.claim_bounded(Claim("three", 10), 10, "slow", 2) == BoundedClaim([], False)
    await store.write(RunWrite("more", create=replace(new_run("more"), created_at=3.0)))
    more = await store.claim_bounded(Claim("three", 10), 10, "slow", 2)
    assert more == BoundedClaim([("more", Lease("three", 1))], False)


async def until_true(check: Any, within: float = 10.0) -> None:
    bound = time.monotonic() + within
    while not check():
        assert time.monotonic() < bound, "not within the bound"
        await asyncio.sleep(0.01)


async def test_a_claim_takes_no_more_than_its_limit_whatever_the_plan(
    pg_databases: Any, tmp_path: Path
) -> None:
    """On PostgreSQL the runs a claim takes are chosen once: with the planner steered to run
    the choice on the inner side of a nested loop (as a database's statistics once made it),
    `LIMIT n` inside `WHERE run_id IN (...)` was chosen again per row and claimed every due
    run (past --max-active-runs and a workflow's bound)."""
    url = await pg_databases.url_for(tmp_path / "runs.db")
    admin = await asyncpg.connect(url)
    try:
        database = await admin.fetchval("SELECT current_database()")
        for plan in ("hashjoin", "hashagg", "mergejoin", "material", "sort"):
            await admin.execute(f'ALTER DATABASE "{database}" SET enable_{plan} = off')
    finally:
        await admin.close()
    store = open_store(url)
    await store.open()
    try:
        for n in range(6):
            await store.write(RunWrite(f"r{n}", create=replace(new_run(f"r{n}"), created_at=1.0 + n)))
        assert await store.claim_runs(Claim("one", 10), 1, ["slow"]) == [("r0", Lease("one", 1))]
        bounded = await store.claim_bounded(Claim("two", 10), 10, "slow", 3)
        assert sorted(run_id for run_id, _ in bounded.claimed) == ["r1", "r2"] and bounded.held_back
    finally:
        await store.close()


async def test_a_write_fenced_by_an_old_epoch_is_not_applied(store: Store) -> None:
    await store.write(RunWrite("a", create=new_run("a")))
    [(_, old)] = await store.claim_runs(Claim("r1", 0.05), 10, ["slow"])
    await asyncio.sleep(0.1)
    [(_, new)] = await store.claim_runs(Claim("r2", 10), 10, ["slow"])
    stale = await store.write(RunWrite("a", fence=old, patch={"result": "zombie"}))
    assert not stale.applied and stale.status is RunStatus.RUNNING
    fresh = await store.write(RunWrite("a", fence=new, patch={"result": "owner"}, release=True))
    assert fresh.applied
    run = await store.get_run("a")
    assert run is not None and run.result == "owner"
    # Released: the next claim takes it at once, with the next epoch.
    assert await store.claim_runs(Claim("r3", 10), 10, ["slow"]) == [("a", Lease("r3", 3))]


async def test_renewal_keeps_leases_and_reports_remote_cancels(store: Store) -> None:
    for run_id in ("a", "b"):
        await store.write(RunWrite(run_id, create=new_run(run_id)))
    await store.claim_runs(Claim("r1", 0.2), 10, ["slow"])
    await store.write(RunWrite("b", patch={"cancel_requested": True}))
    for _ in range(3):
        await asyncio.sleep(0.1)
        assert await store.renew_leases("r1", 0.2, ["a", "b", "c"]) == Renewal({"a": False, "b": True})
    assert await store.claim_runs(Claim("r2", 10), 10, ["slow"]) == []
    assert await store.renew_leases("r2", 0.2, ["a", "b"]) == Renewal({})


async def test_a_claim_never_takes_the_runs_it_excludes(store: Store) -> None:
    for run_id in ("a", "b"):
        await store.write(RunWrite(run_id, create=new_run(run_id)))
    assert await store.claim_runs(Claim("r1", 10), 10, ["slow"], exclude=["a"]) == [("b", Lease("r1", 1))]
    assert await store.claim_runs(Claim("r1", 10), 10, ["slow"]) == [("a", Lease("r1", 1))]


async def test_renewal_extends_only_the_leases_of_the_runs_named(store: Store) -> None:
    """A replica renews the runs it drives; one it owns but does not drive expires."""
    for run_id in ("a", "b"):
        await store.write(RunWrite(run_id, create=new_run(run_id)))
    await store.claim_runs(Claim("r1", 0.2), 10, ["slow"])
    for _ in range(3):
        await asyncio.sleep(0.1)
        assert await store.renew_leases("r1", 0.2, ["a"]) == Renewal({"a": False})
    assert await store.claim_runs(Claim("r2", 10), 10, ["slow"]) == [("b", Lease("r2", 2))]


async def test_a_claim_on_start_gives_epoch_one_and_only_sqlite_voids_leases_at_open(url: str) -> None:
    store = open_store(url)
    await store.open()
    result = await store.write(RunWrite("a", create=new_run("a"), claim=Claim("r1", 1e9)))
    assert result.applied and result.epoch == 1
    assert await store.claim_runs(Claim("r2", 10), 10, ["slow"]) == []
    await store.close()
    store = open_store(url)
    await store.open()
    try:
        claimed = await store.claim_runs(Claim("r2", 10), 10, ["slow"])
        if store.exclusive:  # SQLite: this process is the only one, every earlier lease is void
            assert claimed == [("a", Lease("r2", 2))]
        else:  # PostgreSQL: r1 may be a live replica; its lease holds until it expires
            assert claimed == []
    finally:
        await store.close()


# -- two replicas on one database ----------------------------------------------------------------


@contextlib.asynccontextmanager
async def replica(store: Store, name: str) -> AsyncIterator[Engine]:
    engine = Engine(
        store, [slow, chatty], owner=name, lease_seconds=0.6, claim_interval=0.05, cancel_grace=1.0
    )
    await engine.__aenter__()
    try:
        yield engine
    finally:
        await engine.aclose()


@pytest.fixture
async def shared(store: Store) -> Store:
    if isinstance(store, SqliteStore):
        store.exclusive = False  # as on PostgreSQL: leases expire unless renewed
    return store


async def settled(engine: Engine, run_id: str) -> Run:
    deadline = time.monotonic() + 10
    while True:
        run = await engine.get_run(run_id)
        if run.status.terminal:
            return run
        assert time.monotonic() < deadline, run.status
        await asyncio.sleep(0.02)


def results(events: list[Any], path: tuple[str, ...]) -> int:
    return sum(1 for e in events if e.type is EventType.STEP_RESULT and e.step and e.step.path == path)


async def test_a_dead_replicas_run_is_finished_by_another(shared: Store) -> None:
    async with replica(shared, "b") as b:
        async with replica(shared, "a") as a:
            run = await a.start("slow", input_data={"n": 21})
            await wait_entered("work")
        # `a` is gone (its task cancelled, its lease no longer renewed); `b` takes over.
        release.set()
        done = await settled(b, run.run_id)
    assert done.status is RunStatus.SUCCESS and done.result == 42
    assert ran == Counter({"prepare": 1, "work": 2})
    events = await shared.read_events(run.run_id, 0)
    assert results(events, ("prepare",)) == 1 and results(events, ("work",)) == 1
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))


async def test_a_replica_that_lost_its_lease_commits_nothing(shared: Store) -> None:
    async with replica(shared, "a") as a, replica(shared, "b") as b:
        run = await a.start("slow", input_data={"n": 5})
        await wait_entered("work")
        await a._keeper.aclose()  # a stalls: no more heartbeats, its body still running
        await wait_entered("work", 2)  # b claimed the run and runs the step again
        release.set()
        done = await settled(b, run.run_id)
        await asyncio.sleep(0.1)  # a's body returned too; its commit is fenced
    assert done.status is RunStatus.SUCCESS and done.result == 10
    events = await shared.read_events(run.run_id, 0)
    assert results(events, ("work",)) == 1
    assert sum(1 for e in events if e.type is EventType.WORKFLOW_FINISH) == 1


async def test_a_body_whose_write_finds_the_lease_lost_ends_the_drive_not_the_step(
    shared: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """The writer's commit raises LeaseLost inside the body of a replica that lost the run:
    that drive ends, as on a commit of its own. It was taken for the step's failure: logged
    as an error with a trace, and retried (the step has retries)."""
    async with replica(shared, "a") as a, replica(shared, "b") as b:
        run = await a.start("chatty")
        await wait_entered("chat")
        await a._keeper.aclose()  # a stalls: no more heartbeats, its body still running
        await wait_entered("chat", 2)  # b claimed the run and runs the step again
        release.set()
        done = await settled(b, run.run_id)
        await asyncio.sleep(0.3)  # a's body wrote and was fenced; it must not try again
    assert done.status is RunStatus.SUCCESS and ran["chat"] == 2
    assert "attempt 0 failed" not in caplog.text, caplog.text
    events = await shared.read_events(run.run_id, 0)
    assert sum(1 for e in events if e.type is EventType.STEP_OUTPUT) == 1  # b's only


async def test_a_caller_waiting_at_a_replica_that_lost_the_lease_gets_the_outcome(shared: Store) -> None:
    """Start with wait at `a`; `a` stalls past its lease and `b` finishes the run: the
    caller gets the settled run, not the running one, nor a 'shutting down' error."""
    async with replica(shared, "a") as a, replica(shared, "b"):
        waiting = asyncio.create_task(a.start("slow", run_id="w1", input_data={"n": 4}, wait=True))
        await wait_entered("work")
        await a._keeper.aclose()  # a stalls: no more heartbeats
        await wait_entered("work", 2)  # b claimed the run and runs the step again
        await a._lost("w1")  # what a's heartbeat does once it learns of the loss: its drive stops
        await asyncio.sleep(0.1)
        assert not waiting.done()
        release.set()
        done = await asyncio.wait_for(waiting, 10)
    assert (done.status, done.result) == (RunStatus.SUCCESS, 8)


async def test_a_waiting_caller_cancelled_with_its_drive_goes_away(shared: Store) -> None:
    """The drive stops (lease lost) and the caller is cancelled in the same instant: the
    caller's cancellation wins; it is not swallowed into following the run."""
    async with replica(shared, "a") as a:
        waiting = asyncio.create_task(a.start("slow", run_id="c1", input_data={"n": 1}, wait=True))
        await wait_entered("work")
        drive = a._tasks["c1"]
        drive.add_done_callback(lambda _: waiting.cancel())  # before `waiting` sees the drive end
        await a._lost("c1")
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(waiting, 5)
        release.set()


async def test_a_run_a_replica_owns_but_does_not_drive_is_taken_over(shared: Store) -> None:
    """A replica renews the leases of the runs it drives, not every lease it holds: a run
    it took and then failed to drive (its drive never started, or stopped on an error)
    once stayed its own, active and driven by nobody, for as long as it lived."""
    async with replica(shared, "a") as a:
        # Taken by `a` and never driven (as a Start cut before its launch once left it).
        orphan = replace(new_run("orphan"), input={"n": 4})
        taken = await shared.write(RunWrite("orphan", create=orphan, claim=a._keeper.claim))
        assert taken.applied and "orphan" not in a._tasks
        async with replica(shared, "b") as b:
            release.set()
            done = await settled(b, "orphan")
    assert (done.status, done.result) == (RunStatus.SUCCESS, 8)


async def test_a_retried_start_with_wait_at_another_replica_waits_for_the_outcome(shared: Store) -> None:
    async with replica(shared, "a") as a, replica(shared, "b") as b:
        first = await a.start("slow", input_data={"n": 6}, request_id="req-1")
        await wait_entered("work")
        retry = asyncio.create_task(b.start("slow", input_data={"n": 6}, request_id="req-1", wait=True))
        await asyncio.sleep(0.2)
        assert not retry.done()  # it waits for the run a drives
        release.set()
        done = await asyncio.wait_for(retry, 10)
    assert (done.run_id, done.status, done.result) == (first.run_id, RunStatus.SUCCESS, 12)
    assert ran["work"] == 1


async def test_a_start_reusing_its_request_id_at_another_replica_is_refused_naming_the_field(
    shared: Store,
) -> None:
    """Both replicas make the same mark of a Start, and the run id from its request id: a
    retry at another replica is one, and a reuse there with another request context is
    refused, not answered with the first run (which runs with the first context)."""
    sent: dict[str, Any] = {"input_data": {"n": 3}, "request_context": {"tenant": "t-1"}}
    async with replica(shared, "a") as a, replica(shared, "b") as b:
        first = await a.start("slow", **sent, request_id="req-ctx")
        retry = await b.start("slow", **sent, request_id="req-ctx")
        with pytest.raises(RequestIdReused) as reused:
            await b.start("slow", **{**sent, "request_context": {"tenant": "t-2"}}, request_id="req-ctx")
        release.set()
        done = await settled(a, first.run_id)
    assert retry.run_id == first.run_id and reused.value.metadata["field"] == "request_context"
    assert (done.status, done.result, ran["prepare"]) == (RunStatus.SUCCESS, 6, 1)


async def test_cancel_at_another_replica_stops_the_step_at_its_owner(shared: Store) -> None:
    async with replica(shared, "a") as a, replica(shared, "b") as b:
        run = await a.start("slow", input_data={"n": 1})
        await wait_entered("work")
        canceled = await b.cancel(run.run_id, request_id="c1")
        assert canceled.status is RunStatus.CANCELED
        again = await b.cancel(run.run_id, request_id="c1")
        assert again.last_sequence == canceled.last_sequence
        stored = await a.get_run(run.run_id)
    assert ran["work"] == 1 and not release.is_set()  # the body was cancelled, not released
    [work] = [s for s in stored.steps if s.path == ("work",)]
    assert work.status.value == "canceled"


async def test_restart_leaves_a_run_another_replica_drives(shared: Store) -> None:
    async with replica(shared, "a") as a, replica(shared, "b") as b:
        run = await a.start("slow", input_data={"n": 3})
        await wait_entered("work")
        same = await b.restart(run.run_id)
        assert same.status is RunStatus.RUNNING
        await asyncio.sleep(0.2)
        assert ran["work"] == 1
        release.set()
        done = await settled(a, run.run_id)
    assert done.result == 6 and ran["work"] == 1


async def test_a_graceful_shutdown_releases_the_runs_it_leaves(shared: Store) -> None:
    async with replica(shared, "a") as a:
        run = await a.start("slow", input_data={"n": 2})
        await wait_entered("work")
        left = await a.shutdown(0.05)
        assert left == [run.run_id]
        # Released, not left to expire: another server can take it over at once.
        assert await shared.claim_runs(Claim("c", 10), 10, ["slow"]) == [(run.run_id, Lease("c", 2))]


@create_step("quick")
async def quick(ctx: StepContext) -> int:
    await asyncio.sleep(0.02)
    return int(ctx.input_data["n"])


quick_flow = create_workflow("quick-flow").then(quick).commit()


async def test_heartbeats_racing_with_starts_never_stop_a_new_run(shared: Store) -> None:
    """A run claimed while a renewal is in flight is missing from that renewal's answer;
    the heartbeat must not take it for a lost one (it once cancelled such runs)."""
    engine = Engine(shared, [quick_flow], owner="racer", lease_seconds=0.15, claim_interval=0.05)
    results: list[Run] = []

    async def worker(first: int) -> None:  # a steady stream of starts, 32 at a time
        for n in range(first, 400, 32):
            results.append(await engine.start("quick-flow", input_data={"n": n}, wait=True))

    async with engine:
        await asyncio.gather(*(worker(first) for first in range(32)))
    assert sorted(r.result for r in results if r.status is RunStatus.SUCCESS) == list(range(400))


# -- a replica back from a stall ------------------------------------------------------------------


gates: dict[str, asyncio.Event] = {}


async def gated(key: str) -> None:
    """Note the body's start, then wait for its own gate (set by the test)."""
    ran[key] += 1
    entered.setdefault(key, asyncio.Event()).set()
    await gates.setdefault(key, asyncio.Event()).wait()


def gated_step(name: str) -> Any:
    """A step that waits for its gate, then returns its own name."""

    async def body(ctx: StepContext) -> str:
        await gated(name)
        return name

    return create_step(name, execute=body)


first, second, left, right = (gated_step(name) for name in ("first", "second", "left", "right"))
stalling = create_workflow("stalling").then(first).then(second).commit()
stalling_parallel = create_workflow("stalling-parallel").then(first).parallel([left, right]).commit()


@contextlib.asynccontextmanager
async def stalled(store: Store, workflow_id: str) -> AsyncIterator[tuple[Engine, str]]:
    """A replica driving a run of `workflow_id` inside its first step, then stalled past its
    lease: its heartbeat stops, as in a paused process (its drive still runs)."""
    gates.clear()
    engine = Engine(
        store,
        [stalling, stalling_parallel],
        owner="a",
        lease_seconds=0.6,
        claim_interval=60,
        cancel_grace=1.0,
    )
    async with engine:
        run = await engine.start(workflow_id)
        await wait_entered("first")
        heartbeat = engine._keeper._heartbeat
        assert heartbeat is not None
        heartbeat.cancel()
        await asyncio.gather(heartbeat, return_exceptions=True)
        await asyncio.sleep(0.7)  # past the lease: any replica could claim the run now
        try:
            yield engine, run.run_id
        finally:
            for gate in gates.values():
                gate.set()


async def test_the_heartbeat_keeps_the_lease_of_a_settling_drive(shared: Store) -> None:
    """A drive whose settling commit the database refused tries it again: its run stays this
    replica's meanwhile (the heartbeat passed settling drives by, so their leases ran out and
    another replica drove the run again)."""
    await shared.write(RunWrite("a", create=new_run("a")))
    assert await shared.claim_runs(Claim("one", 0.5), 10, ["slow"]) == [("a", Lease("one", 1))]
    lost: list[str] = []

    async def adopt(run_id: str, lease: Lease, sent: float) -> None:
        raise AssertionError("nothing is claimed here")

    async def stop(run_id: str) -> None:
        lost.append(run_id)

    keeper = LeaseKeeper(
        shared,
        owner="one",
        lease_seconds=10,
        claim_interval=1,
        workflows=["slow"],
        adopt=adopt,
        local=lambda: {"a": True},  # driven here, settling
        lost=stop,
        cancel=lost.append,
        renewed=lambda run_ids, sent: None,
    )
    await keeper.heartbeat()
    await asyncio.sleep(0.6)  # past the claim's lease
    assert await shared.claim_runs(Claim("two", 10), 10, ["slow"]) == []
    assert lost == []


async def test_a_replica_back_from_a_stall_renews_its_lease_before_the_next_body(shared: Store) -> None:
    """Its commit of the first step goes through (nobody claimed the run yet, so the fence
    holds), but the lease it holds has lapsed: another replica could claim the run while
    the second body runs here, and run that body too. The body waits for a renewal."""
    async with stalled(shared, "stalling") as (engine, run_id):
        gates["first"].set()
        await wait_entered("second")
        # The lease was renewed before the body started: no other replica can take the run.
        assert await shared.claim_runs(Claim("b", 10), 10, ["stalling"]) == []
        gates["second"].set()
        done = await settled(engine, run_id)
    assert (done.status, done.result) == (RunStatus.SUCCESS, "second")
    assert ran == Counter({"first": 1, "second": 1})


async def test_a_replica_back_from_a_stall_starts_no_body_of_a_run_it_lost(shared: Store) -> None:
    """Another replica took the run over during the stall. The first branch's commit is
    fenced, but the second branch of the parallel has nothing to commit before its body:
    only the lease check keeps it from running here while the new owner runs it too."""
    async with stalled(shared, "stalling-parallel") as (engine, run_id):
        [(claimed, lease)] = await shared.claim_runs(Claim("b", 10), 10, ["stalling-parallel"])
        assert (claimed, lease.owner) == (run_id, "b")
        gates["first"].set()
        await asyncio.sleep(0.3)
        assert ran == Counter({"first": 1})  # neither branch started here
        assert engine._tasks.get(run_id) is None  # the drive stopped: the run is b's
        stored = await shared.get_run(run_id)
    assert stored is not None and stored.status is RunStatus.RUNNING  # b drives it on
    events = await shared.read_events(run_id, 0)
    assert results(events, ("first",)) == 0  # a's result of the first step was fenced


aborted: list[bool] = []
"""Whether `abort_signal` was set when each `watchful` body's cancellation reached it."""


@create_step("watchful")
async def watchful(ctx: StepContext) -> int:
    try:
        await hold("watchful")
    finally:
        aborted.append(ctx.abort_signal.is_set())
    return 1


watchful_flow = create_workflow("watchful").then(watchful).commit()


async def test_a_body_stopped_by_a_cancel_taken_elsewhere_during_a_stall_sees_abort_signal(
    shared: Store,
) -> None:
    """A Cancel taken by another replica while the owner stalled: once back, the owner stops
    the body as a Cancel that reached it does, `abort_signal` set. It was left unset, so the
    body could not tell the user's Cancel from a takeover (audit)."""
    aborted.clear()
    options: dict[str, Any] = dict(lease_seconds=0.6, claim_interval=60, cancel_grace=1.0)
    async with (
        Engine(shared, [watchful_flow], owner="a", **options) as a,
        Engine(shared, [watchful_flow], owner="b", **options) as b,
    ):
        run = await a.start("watchful")
        await wait_entered("watchful")
        heartbeat = a._keeper._heartbeat
        assert heartbeat is not None
        heartbeat.cancel()  # a stalls: no more heartbeats, its body still running
        await asyncio.gather(heartbeat, return_exceptions=True)
        await asyncio.sleep(0.7)  # past the lease
        assert (await b.cancel(run.run_id)).status is RunStatus.CANCELED
        assert aborted == []  # nothing reached a's body yet
        await a._keeper.heartbeat()  # a is back: the renewal finds the run is no longer its
        async with asyncio.timeout(5):
            while not aborted:
                await asyncio.sleep(0.01)
        assert (await a.get_run(run.run_id)).status is RunStatus.CANCELED
    assert aborted == [True] and ran["watchful"] == 1


async def test_a_run_taken_over_is_let_go_by_the_metrics_and_traces_of_the_replica_that_lost_it(
    pg_databases: Any, tmp_path: Path
) -> None:
    """Two replicas, each with its own store: `a` stalls, `b` takes the run over and finishes it.
    `a` never sees the finish (it is committed through `b`), so its index of runs for metrics
    and traces kept the run, and its span stayed open, for the life of the process (audit).
    Once `a` learns it lost the run, it lets both go and ends the span, marked so."""
    url = await pg_databases.url_for(tmp_path / "runs.db")
    stores = [open_store(url), open_store(url)]
    for each in stores:
        await each.open()
    exporter = InMemorySpanExporter()
    tracing = Tracing(SimpleSpanProcessor(exporter))
    committed = CommittedEvents(stores[0], [tracing.on_event], read_runs=True, releases=[tracing.on_release])
    committed.start()
    try:
        async with (
            Engine(stores[0], [slow], owner="a", lease_seconds=0.6, claim_interval=60) as a,
            Engine(stores[1], [slow], owner="b", lease_seconds=0.6, claim_interval=0.05) as b,
        ):
            run = await a.start("slow", input_data={"n": 3})
            await wait_entered("work")
            heartbeat = a._keeper._heartbeat
            assert heartbeat is not None
            heartbeat.cancel()  # a stalls: no more heartbeats, its body still running
            await asyncio.gather(heartbeat, return_exceptions=True)
            await wait_entered("work", 2)  # b took the run over
            assert run.run_id in committed._runs and run.run_id in tracing._executions
            release.set()
            assert (await settled(b, run.run_id)).status is RunStatus.SUCCESS
            await a._keeper.heartbeat()  # a is back: the run is no longer its
            async with asyncio.timeout(5):
                while run.run_id in committed._runs or run.run_id in tracing._executions:
                    await asyncio.sleep(0.01)
    finally:
        await committed.stop()
        for each in stores:
            await each.close()
    [root] = [span for span in exporter.get_finished_spans() if span.name == "run slow"]
    assert root.attributes is not None and root.attributes.get("runservice.taken_over") is True
    tracing.shutdown()


async def test_a_replica_that_only_accepts_starts_keeps_nothing_of_them_and_ends_their_spans(
    pg_databases: Any, tmp_path: Path
) -> None:
    """Runs of a bounded workflow are committed with no owner and driven by a claim loop: `b`
    accepts their Starts and (most likely) `a` drives them. `b` kept each run in its index and
    its span open until it stopped, and `a` traced the drive as a `recovery` (audit). Now `b`
    ends its span at once, marked `left_unowned`, and keeps nothing; the drive's span, on
    whichever replica claimed the run, is the run's `start`, marked `claimed`, in its trace."""
    url = await pg_databases.url_for(tmp_path / "runs.db")
    stores = [open_store(url), open_store(url)]
    exporters = [InMemorySpanExporter(), InMemorySpanExporter()]
    tracings = [Tracing(SimpleSpanProcessor(exporter)) for exporter in exporters]
    followers = [
        CommittedEvents(store, [tracing.on_event], read_runs=True, releases=[tracing.on_release])
        for store, tracing in zip(stores, tracings, strict=True)
    ]
    for store, follower in zip(stores, followers, strict=True):
        await store.open()
        follower.start()
    try:
        async with (
            Engine(stores[0], [bounded], owner="a", claim_interval=0.05) as a,
            Engine(stores[1], [bounded], owner="b", claim_interval=60) as b,
        ):
            runs = [await b.start("bounded", input_data={"n": n}) for n in range(5)]
            for run in runs:
                assert (await settled(a, run.run_id)).status is RunStatus.SUCCESS

            def all_ended() -> bool:
                return (
                    sum(span.name == "run bounded" for e in exporters for span in e.get_finished_spans())
                    == 10
                )

            async with asyncio.timeout(5):
                while not all_ended():
                    await asyncio.sleep(0.02)
            for follower, tracing in zip(followers, tracings, strict=True):
                assert follower._runs == {} and tracing._executions == {}
    finally:
        for follower in followers:
            await follower.stop()
        for store in stores:
            await store.close()
    spans = [span for exporter in exporters for span in exporter.get_finished_spans()]
    for run in runs:
        mine = [span for span in spans if (span.attributes or {}).get("runservice.run_id") == run.run_id]
        roots = sorted(
            (span for span in mine if span.name == "run bounded"), key=lambda span: span.start_time or 0
        )
        accepted, driven = (dict(span.attributes or {}) for span in roots)
        assert accepted["runservice.execution"] == "start" and accepted["runservice.left_unowned"] is True
        assert "runservice.run_status" not in accepted
        assert driven["runservice.execution"] == "start" and driven["runservice.claimed"] is True
        assert driven["runservice.run_status"] == "success"
        assert {span.context.trace_id for span in roots} == {int(run.trace_id, 16)}
        [step] = [
            span
            for span in spans
            if span.name == "step prepare" and span.context.trace_id == int(run.trace_id, 16)
        ]
        assert step.parent is not None and step.parent.span_id == roots[1].context.span_id
    for tracing in tracings:
        tracing.shutdown()


async def test_a_replica_back_from_a_stall_does_not_claim_its_own_runs_again(shared: Store) -> None:
    """Its claim loop once took the runs whose leases had lapsed during the stall, its own
    among them, and drove each a second time here while the first drive was still in its step."""
    gates.clear()
    engine = Engine(shared, [stalling], owner="a", lease_seconds=0.6, claim_interval=0.05)
    async with engine:
        run = await engine.start("stalling")
        await wait_entered("first")
        heartbeat = engine._keeper._heartbeat
        assert heartbeat is not None
        heartbeat.cancel()  # a stalls: its leases lapse, its claim loop looks every 50 ms
        await asyncio.gather(heartbeat, return_exceptions=True)
        await asyncio.sleep(1.0)
        assert ran["first"] == 1
        gates["first"].set()
        gates.setdefault("second", asyncio.Event()).set()
        done = await settled(engine, run.run_id)
    assert (done.status, done.result) == (RunStatus.SUCCESS, "second")
    assert ran == Counter({"first": 1, "second": 1})


async def test_a_caller_waiting_at_a_replica_that_lost_a_parallel_run_gets_its_outcome(
    shared: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A fenced commit inside a parallel block ends the drive as a lost lease, as anywhere
    else: the caller waiting here gets the outcome the new owner reaches (it once got the
    task group's error, and the run was logged as failed by the engine)."""
    gates.clear()
    workflows = [stalling, stalling_parallel]
    a = Engine(shared, workflows, owner="a", lease_seconds=0.6, claim_interval=60, cancel_grace=1.0)
    async with a:
        waiting = asyncio.create_task(a.start("stalling-parallel", wait=True))
        await wait_entered("first")
        heartbeat = a._keeper._heartbeat
        assert heartbeat is not None
        heartbeat.cancel()
        await asyncio.sleep(0.7)  # a stalls past its lease
        async with Engine(shared, workflows, owner="b", lease_seconds=10, claim_interval=0.05):
            await wait_entered("first", 2)  # b took the run over and runs it from its first step
            for key in ("first", "left", "right"):
                gates.setdefault(key, asyncio.Event()).set()
            done = await asyncio.wait_for(waiting, 10)
    assert (done.status, done.result) == (RunStatus.SUCCESS, {"left": "left", "right": "right"})
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


# -- a caller that goes away ------------------------------------------------------------------------


async def cancelled_at_every_point(calls: list[Any]) -> None:
    """Cancel each call at a different point: a few loop turns in, or up to 10 ms in (its
    reads, its commit and after, on either store), as a cancelled RPC or a client's deadline."""
    for n, call in enumerate(calls):
        task = asyncio.ensure_future(call)
        for _ in range(n % 4):
            await asyncio.sleep(0)
        await asyncio.sleep((n % 15) * 0.0007)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_start_whose_caller_goes_away_is_driven_or_never_made(store: Store) -> None:
    """A Start cut between its commit and the launch of its drive once left the run
    `running`, owned by this replica and driven by nobody, until a restart."""
    async with Engine(store, [quick_flow]) as engine:
        await cancelled_at_every_point(
            [engine.start("quick-flow", run_id=f"r{i}", input_data={"n": i}) for i in range(60)]
        )
        deadline = time.monotonic() + 10
        while True:
            runs = [await store.get_run(f"r{i}") for i in range(60)]
            made = [run for run in runs if run is not None]
            if all(run.status is RunStatus.SUCCESS for run in made):
                break
            assert time.monotonic() < deadline, [run.status.value for run in made]
            await asyncio.sleep(0.05)
    assert made  # some Starts committed before their caller went away


async def test_a_resume_whose_caller_goes_away_is_carried_out_or_never_accepted(store: Store) -> None:
    async with Engine(store, [approval]) as engine:
        for i in range(30):
            run = await engine.start("approval", run_id=f"a{i}", input_data={"count": 1}, wait=True)
            assert run.status is RunStatus.SUSPENDED
        await cancelled_at_every_point(
            [engine.resume(f"a{i}", resume_data={"approved": True}) for i in range(30)]
        )
        deadline = time.monotonic() + 10
        while True:
            runs = [await store.get_run(f"a{i}") for i in range(30)]
            statuses = {run.status for run in runs if run is not None}
            if statuses <= {RunStatus.SUCCESS, RunStatus.SUSPENDED}:
                break
            assert time.monotonic() < deadline, statuses
            await asyncio.sleep(0.05)
    assert RunStatus.SUCCESS in statuses  # some resumes were accepted before their caller went away


async def test_a_time_travel_whose_caller_goes_away_is_driven_or_never_made(store: Store) -> None:
    """The cold paths (time travel, fork, Restart, Cancel's claim) run in a task of their own."""
    async with Engine(store, [quick_flow]) as engine:
        for i in range(30):
            run = await engine.start("quick-flow", run_id=f"t{i}", input_data={"n": i}, wait=True)
            assert run.status is RunStatus.SUCCESS
        travelled = [run.last_sequence for run in [await engine.get_run(f"t{i}") for i in range(30)]]
        await cancelled_at_every_point([engine.time_travel(f"t{i}", step=["quick"]) for i in range(30)])
        deadline = time.monotonic() + 10
        while True:
            runs = [await store.get_run(f"t{i}") for i in range(30)]
            if all(run is not None and run.status is RunStatus.SUCCESS for run in runs):
                break
            assert time.monotonic() < deadline, [run.status.value for run in runs if run is not None]
            await asyncio.sleep(0.05)
    assert any(run.last_sequence > before for run, before in zip(runs, travelled, strict=True) if run)


# -- a resume while another drive holds the suspended run ------------------------------------------


@contextlib.asynccontextmanager
async def parked(store: Store) -> AsyncIterator[tuple[Engine, str, Lease]]:
    """An engine, a suspended run of `approval`, and the lease of another drive that holds
    it (as the claim loop of some replica does when a deadline of the run passed)."""
    async with Engine(store, [approval]) as engine:
        run = await engine.start("approval", input_data={"count": 1}, wait=True)
        assert run.status is RunStatus.SUSPENDED
        held = await store.write(
            RunWrite(run.run_id, expect=frozenset({RunStatus.SUSPENDED}), claim=Claim("other-replica", 60))
        )
        assert held.applied
        yield engine, run.run_id, Lease("other-replica", held.epoch)


async def test_a_resume_waits_for_the_drive_holding_the_run_to_let_it_go(store: Store) -> None:
    async with parked(store) as (engine, run_id, lease):
        resuming = asyncio.create_task(engine.resume(run_id, resume_data={"approved": True}, wait=True))
        await asyncio.sleep(0.2)
        assert not resuming.done()  # refused for the claim only: it waits, it does not say "suspended"
        await store.write(RunWrite(run_id, fence=lease, release=True))
        done = await asyncio.wait_for(resuming, 10)
        assert done.status is RunStatus.SUCCESS and done.result == {"verdict": "approved"}


async def test_a_resume_answers_from_what_the_holding_drive_made_of_the_run(store: Store) -> None:
    async with parked(store) as (engine, run_id, lease):
        resuming = asyncio.create_task(engine.resume(run_id, resume_data={"approved": True}))
        await asyncio.sleep(0.05)
        ended = await store.write(
            RunWrite(
                run_id, fence=lease, release=True, patch={"status": RunStatus.FAILED, "ended_at": time.time()}
            )
        )
        assert ended.applied
        with pytest.raises(RunNotSuspended) as refused:
            await asyncio.wait_for(resuming, 10)
        assert refused.value.metadata["status"] == "failed"


async def test_a_resume_of_a_run_held_for_good_is_a_retryable_refusal(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "CLAIMED_RUN_RETRIES", (0.01, 0.05))
    async with parked(store) as (engine, run_id, _):
        with pytest.raises(RunClaimed) as refused:
            await engine.resume(run_id, resume_data={"approved": True})
        assert refused.value.reason == "RUN_CLAIMED" and isinstance(refused.value, Unavailable)
        run = await store.get_run(run_id)
        assert run is not None and run.status is RunStatus.SUSPENDED  # nothing of it was applied


def _idle_keeper(store: Store) -> LeaseKeeper:
    """A keeper whose claim loop is not started: a test reads what its deadline timer does."""

    async def nothing(*args: Any) -> None:
        raise AssertionError("nothing is claimed here")

    return LeaseKeeper(
        store,
        owner="one",
        lease_seconds=10,
        claim_interval=30,
        workflows=["slow"],
        adopt=nothing,
        local=dict,
        lost=nothing,
        cancel=lambda run_id: None,
        renewed=lambda run_ids, sent: None,
    )


async def test_deadlines_passing_close_together_make_one_look(tmp_path: Path) -> None:
    """Deadlines of runs left waiting that pass within `DEADLINES_GATHERED` of a look they made
    make one more look at its end, not one each: on PostgreSQL most may be of runs another
    replica claimed since (a review: 60 looks in 8 s, each a claim transaction over the
    backlog). The first still wakes the claim loop at once."""
    store = open_store(str(tmp_path / "runs.db"))
    await store.open()
    keeper = _idle_keeper(store)
    try:
        now = time.time()
        for n in range(5):
            keeper.wake_by(f"r{n}", now + 0.05 + n * 0.02)
        async with asyncio.timeout(5):
            await keeper._wake.wait()
        looked = time.monotonic()
        keeper._wake.clear()
        async with asyncio.timeout(5):
            await keeper._wake.wait()
        gathered = time.monotonic() - looked
        # At the end of the window, not at some later look (generous: a loaded machine).
        assert leases_module.DEADLINES_GATHERED * 0.8 <= gathered < leases_module.DEADLINES_GATHERED + 1.5
        assert keeper._waiting == {}  # the other four, gathered into this look
    finally:
        await keeper.aclose()
        await store.close()


async def test_a_deadline_timer_full_of_live_deadlines_refuses_a_new_one_without_a_rebuild(
    tmp_path: Path,
) -> None:
    """At `DEADLINES_KEPT`, a new deadline is left to the claim loop's periodic look at once while
    the kept ones are mostly of runs still waiting (a review: each call rebuilt the heap, O(n),
    1.2 ms at 10,000, and freed nothing); once most are of runs claimed since, they are dropped."""
    store = open_store(str(tmp_path / "runs.db"))
    await store.open()
    keeper = _idle_keeper(store)
    far = time.time() + 3600
    try:
        for n in range(leases_module.DEADLINES_KEPT):
            keeper.wake_by(f"r{n}", far + n)
        heap = keeper._deadlines
        keeper.wake_by("new", far - 1)
        assert keeper._deadlines is heap and "new" not in keeper._waiting
        for n in range(leases_module.DEADLINES_KEPT // 2 + 1):
            keeper._taken(f"r{n}")  # claimed here since: the heap keeps their entries
        keeper.wake_by("new", far - 1)
        assert keeper._deadlines is not heap and "new" in keeper._waiting
        assert len(keeper._deadlines) == len(keeper._waiting)
    finally:
        await keeper.aclose()
        await store.close()
