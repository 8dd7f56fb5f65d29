"""A PostgreSQL server that goes away and comes back (a restart, a failover) while runs are in
flight: nothing fails for it. Each test starts a PostgreSQL server of its own (tests/postgres.py)
and shuts it down as an operator does (`pg_ctl stop -m fast`), then starts it again on the same
port and data.

Reads during the outage raise StorageUnavailable (gRPC UNAVAILABLE, reason STORAGE_UNAVAILABLE:
retry); a run whose commit found the database gone goes on from its last checkpoint once it
answers, instead of ending failed as an engine error.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import pytest
from postgres import PostgresServer
from prometheus_client.parser import text_string_to_metric_families

from runservice.engine import Engine
from runservice.errors import StorageUnavailable
from runservice.model import Event, EventType, Run, RunStatus
from runservice.server.metrics import COUNT_WAIT, Metrics
from runservice.storage import Claim, Renewal, RunWrite
from runservice.storage.postgres import HELD_ROW_WAIT, WRITER_LOCK_WAIT, PostgresStore
from runservice.workflow import StepContext, Workflow, create_step, create_workflow

pytestmark = pytest.mark.timeout(120)

ran: Counter[str] = Counter()
gate = asyncio.Event()


@create_step("first")
async def first(ctx: StepContext) -> int:
    ran["first"] += 1
    await gate.wait()
    return int(ctx.input_data["n"]) + 1


@create_step("second")
async def second(ctx: StepContext) -> int:
    ran["second"] += 1
    return int(ctx.input_data) * 2


@create_step("left")
async def left(ctx: StepContext) -> int:
    ran["left"] += 1
    await gate.wait()
    return 1


@create_step("right")
async def right(ctx: StepContext) -> int:
    ran["right"] += 1
    return 2


cleanup = asyncio.Event()


@create_step("stubborn")
async def stubborn(ctx: StepContext) -> int:
    ran["stubborn"] += 1
    try:
        await gate.wait()
    except asyncio.CancelledError:
        await cleanup.wait()  # a body that takes its time to stop
        raise
    return 1


entered: list[str] = []
"""The run of each body of `counted` that began."""


@create_step("counted")
async def counted(ctx: StepContext) -> int:
    entered.append(ctx.run_id)
    await gate.wait()
    return 1


sequence = create_workflow("outage-sequence").then(first).then(second).commit()
counting = create_workflow("outage-counting").then(counted).commit()
stubborn_run = create_workflow("outage-stubborn").then(stubborn).commit()
branches = create_workflow("outage-parallel").parallel([left, right]).commit()


@pytest.fixture
def server(own_postgres: PostgresServer) -> PostgresServer:
    return own_postgres


@pytest.fixture(autouse=True)
def reset() -> None:
    global gate, cleanup
    ran.clear()
    entered.clear()
    gate = asyncio.Event()
    cleanup = asyncio.Event()


async def settled(engine: Engine, run_id: str) -> Run:
    """The run once it is not active (reads may still find the database coming back)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            run = await engine.get_run(run_id)
            if run.status not in (RunStatus.RUNNING, RunStatus.WAITING):
                return run
        except StorageUnavailable:
            pass
        assert time.monotonic() < deadline, "the run never settled"
        await asyncio.sleep(0.05)


async def watch(engine: Engine, run_id: str) -> list[Event]:
    """Every event of the run, followed as a Watch client does: reopened from its cursor
    whenever the database did not answer."""
    seen: list[Event] = []
    while True:
        try:
            async for batch in engine.follow(run_id, after=seen[-1].sequence if seen else 0):
                seen.extend(batch)
            return seen
        except StorageUnavailable:
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def two_stores(url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores on the database at `url`, as two replicas have."""
    first, second = PostgresStore(url), PostgresStore(url)
    await first.open()
    try:
        await second.open()
        try:
            yield first, second
        finally:
            await second.close()
    finally:
        await first.close()


async def tried_again() -> None:
    """Once the first step's body ran three times: its result's commit was refused, twice."""
    deadline = time.monotonic() + 20
    while ran["first"] < 3:
        assert time.monotonic() < deadline, f"the first step ran {ran['first']} times, not tried again"
        await asyncio.sleep(0.05)


async def started_once_back(engine: Engine) -> Run:
    """The Start of request `r1` retried, as a caller does, until the database answers again."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return await engine.start("outage-sequence", input_data={"n": 1}, request_id="r1", wait=True)
        except StorageUnavailable:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)


async def rendered(metrics: Metrics) -> dict[str, float]:
    """The unlabelled samples of a render of `metrics`, by name."""
    text = (await metrics.render()).decode()
    families = text_string_to_metric_families(text)
    return {sample.name: sample.value for family in families for sample in family.samples}


def ours(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    """The records of an outage but asyncpg's own: a connection attempt (`sslmode=prefer`, the
    default, asks for TLS first) that the server closes while it shuts down leaves a future of
    asyncpg's `TLSUpgradeProto` with an exception nobody retrieves (asyncpg issue 1310, PR 1312),
    which asyncio logs at ERROR whether or not our attempt handled the failure it raised."""
    return [
        r
        for r in records
        if not (r.name == "asyncio" and "unexpected connection_lost() call" in r.getMessage())
    ]


def assert_went_on(events: list[Event], caplog: pytest.LogCaptureFixture) -> None:
    """What every run that outlived an outage shows: nothing logged at ERROR, one gap-free log,
    one committed result per step (the rerun's)."""
    assert [r.getMessage() for r in ours(caplog.records) if r.levelno >= logging.ERROR] == []
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    results = Counter(e.step.path for e in events if e.type is EventType.STEP_RESULT and e.step)
    assert set(results.values()) == {1}


@pytest.mark.parametrize("workflow", [sequence, branches], ids=["sequence", "parallel"])
async def test_a_run_outlives_a_database_restart(
    server: PostgresServer, workflow: Workflow, caplog: pytest.LogCaptureFixture
) -> None:
    # Watched runs are polled (for other replicas' events) every 50 ms, during the outage too.
    store = PostgresStore(await server.create_database(), poll_interval=0.05)
    await store.open()
    metrics = Metrics(store)
    store.hub.listen_refusals(metrics.on_refused)
    try:
        async with Engine(store, [sequence, branches], lease_seconds=30, claim_interval=0.2) as engine:
            run = await engine.start(workflow.id, input_data={"n": 20})
            watched = asyncio.create_task(watch(engine, run.run_id))
            while not ran:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(server.shut_down)
            with pytest.raises(StorageUnavailable) as unavailable:
                await engine.get_run(run.run_id)
            assert unavailable.value.reason == "STORAGE_UNAVAILABLE"
            gate.set()  # the step ends; its result's commit finds no database
            await asyncio.sleep(0.5)
            await asyncio.to_thread(server.start_again)
            done = await settled(engine, run.run_id)
            events = await store.read_events(run.run_id, 0)
            samples = await rendered(metrics)
            seen = await asyncio.wait_for(watched, 30)
    finally:
        await store.close()
    assert done.status is RunStatus.SUCCESS, done.error
    assert done.result == (42 if workflow is sequence else {"left": 1, "right": 2})
    assert samples["runservice_store_unavailable_total"] >= 1  # the result's commit, refused
    # An outage is logged as warnings: no run failed, no trace of an engine error, no trace at all.
    assert_went_on(events, caplog)
    assert [r.getMessage() for r in ours(caplog.records) if r.exc_info] == []
    # Each loop says the outage once, not at every turn (claims every 0.2 s, polls every 50 ms;
    # an audit counted seven warnings a second).
    warned = collections.Counter(r.msg for r in caplog.records if r.levelno == logging.WARNING)
    assert warned and max(warned.values()) == 1, warned
    assert seen == events  # the watcher, reopened from its cursor, missed and repeated nothing
    # The body whose result's commit found no database ran again from the last checkpoint.
    assert ran["first" if workflow is sequence else "left"] == 2


async def test_a_start_during_the_outage_is_refused_as_retryable(server: PostgresServer) -> None:
    """...and a scrape of the metrics still answers."""
    store = PostgresStore(await server.create_database())
    await store.open()
    metrics = Metrics(store)
    store.hub.listen_refusals(metrics.on_refused)
    refusals: list[int] = []
    store.hub.listen_refusals(refusals.append)
    try:
        async with Engine(store, [sequence], lease_seconds=30, claim_interval=0.2) as engine:
            await asyncio.to_thread(server.shut_down)
            with pytest.raises(StorageUnavailable):
                await engine.start("outage-sequence", input_data={"n": 1}, request_id="r1")
            # Refused at its first read (is the request id known?): reads refused count as
            # changes do (this one, the claim loop's), so the counter rises while callers are
            # turned away, not only once a change is.
            assert sum(refusals) >= 1
            # Unknown, not a stale count; the scrape answers all the same.
            gauges = await rendered(metrics)
            assert math.isnan(gauges["runservice_runs_in_flight"]) and math.isnan(
                gauges["runservice_runs_unowned"]
            )
            await asyncio.to_thread(server.start_again)
            gate.set()
            run = await started_once_back(engine)
    finally:
        await store.close()
    assert (run.status, run.result) == (RunStatus.SUCCESS, 4)


async def test_a_run_outlives_a_database_that_takes_no_writes(
    server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A database that answers but refuses every write (a full disk, a standby after a failover,
    here `default_transaction_read_only`): runs wait, Starts are refused as retryable, and
    storage counts as away (readiness NOT_SERVING) though reads go through, with no flapping."""
    store = PostgresStore(await server.create_database())
    await store.open()
    availability: list[bool] = []
    store.hub.listen_availability(availability.append)
    try:
        async with Engine(store, [sequence], lease_seconds=30, claim_interval=0.2) as engine:
            run = await engine.start("outage-sequence", input_data={"n": 20})
            while not ran:
                await asyncio.sleep(0.01)
            await server.set_read_only(True)
            await asyncio.sleep(0.2)  # every session has read the new setting
            with pytest.raises(StorageUnavailable) as refused:
                await engine.start("outage-sequence", input_data={"n": 1}, request_id="r1")
            assert "ReadOnlySQLTransactionError 25006" in refused.value.message
            gate.set()  # the step ends; its result's commit is refused, and the drive waits
            await tried_again()
            assert ran["second"] == 0
            assert (await engine.get_run(run.run_id)).status is RunStatus.RUNNING  # reads answer
            await asyncio.sleep(0.5)  # claim passes and reads meanwhile
            assert (store.hub.available, availability) == (False, [False])
            await server.set_read_only(False)
            done = await settled(engine, run.run_id)
            started = await engine.start("outage-sequence", input_data={"n": 1}, request_id="r1", wait=True)
            events = await store.read_events(run.run_id, 0)
    finally:
        await store.close()
    assert (done.status, done.result) == (RunStatus.SUCCESS, 42), done.error
    assert (started.status, started.result) == (RunStatus.SUCCESS, 4)
    assert availability == [False, True]
    assert_went_on(events, caplog)


async def test_a_run_outlives_a_row_held_past_lock_timeout(
    server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A database whose `lock_timeout` (or `statement_timeout`) ends the writer's wait for a row
    another session holds (an operator's open transaction, a migration): the run waits, then
    goes on once the row is free. A deadlock or a cancelled statement is treated the same.
    Contention is not an outage: storage stays available (readiness SERVING) meanwhile."""
    url = await server.create_database()
    admin = await asyncpg.connect(url)
    availability: list[bool] = []
    try:
        await admin.execute(f'ALTER DATABASE "{url.rsplit("/", 1)[1]}" SET lock_timeout = 200')
        store = PostgresStore(url)  # its sessions start after the setting: each has it
        await store.open()
        store.hub.listen_availability(availability.append)
        try:
            async with Engine(store, [sequence], lease_seconds=30, claim_interval=0.2) as engine:
                run = await engine.start("outage-sequence", input_data={"n": 20})
                while not ran:
                    await asyncio.sleep(0.01)
                holder = admin.transaction()
                await holder.start()
                await admin.execute("SET lock_timeout = 0")  # this session waits for nobody
                await admin.fetchval("SELECT 1 FROM runs WHERE run_id = $1 FOR UPDATE", run.run_id)
                gate.set()  # the step ends; its result's commit waits for the row, and gives up
                await tried_again()
                assert ran["second"] == 0
                await holder.rollback()
                done = await settled(engine, run.run_id)
                events = await store.read_events(run.run_id, 0)
        finally:
            await store.close()
    finally:
        await admin.close()
    assert (done.status, done.result) == (RunStatus.SUCCESS, 42), done.error
    assert "LockNotAvailableError 55P03" in caplog.text
    assert availability == []
    assert_went_on(events, caplog)


async def test_a_cancel_holds_when_its_drive_cannot_settle(server: PostgresServer) -> None:
    """A Cancel is stored before it is acknowledged. Its drive stops the step, but its settling
    commit finds the run's row held past `lock_timeout`, and so do the heartbeats, until the
    lease ends; the replica that takes the run over then stops it too, with the step not run
    again (the Cancel was kept only in the first drive's memory, so the run went on and
    ended `success`)."""
    url = await server.create_database()
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f'ALTER DATABASE "{url.rsplit("/", 1)[1]}" SET lock_timeout = 200')
        await admin.execute("SET lock_timeout = 0")  # this session waits for nobody
        async with (
            two_stores(url) as (first_store, second_store),
            Engine(first_store, [stubborn_run], lease_seconds=1.5, claim_interval=0.2) as driving,
            Engine(second_store, [stubborn_run], lease_seconds=30, claim_interval=0.2) as other,
        ):
            run = await driving.start("outage-stubborn")
            while not ran:
                await asyncio.sleep(0.01)
            canceling = asyncio.create_task(driving.cancel(run.run_id))

            async def marked() -> bool:
                stored = await first_store.get_run(run.run_id)
                return stored is not None and stored.cancel_requested

            deadline = time.monotonic() + 10
            while not await marked():
                assert time.monotonic() < deadline, "the Cancel was never stored"
                await asyncio.sleep(0.02)
            holder = admin.transaction()
            await holder.start()
            await admin.fetchval("SELECT 1 FROM runs WHERE run_id = $1 FOR UPDATE", run.run_id)
            cleanup.set()  # the step stops; the settling commit waits for the row, and gives up
            await asyncio.sleep(2.5)  # past the driving replica's lease
            await holder.rollback()
            gate.set()  # a drive that ran the step again would finish it
            done = await settled(other, run.run_id)
            await asyncio.wait_for(canceling, 30)
    finally:
        await admin.close()
    assert done.status is RunStatus.CANCELED
    assert ran["stubborn"] == 1


async def test_replicas_keep_their_runs_through_an_outage_longer_than_a_lease(server: PostgresServer) -> None:
    """Every lease runs out while the database is away, though both replicas live on and go on
    driving. Once it is back, each renews its own before it claims, and leaves runs with an
    owner alone for a lease: no run changes hands and no step runs twice (the claim loops
    raced the heartbeats, and the replicas swapped runs, their steps running in both)."""
    url = await server.create_database()
    async with (
        two_stores(url) as (one_store, two_store),
        Engine(one_store, [counting], lease_seconds=1.5, claim_interval=0.1) as one,
        Engine(two_store, [counting], lease_seconds=1.5, claim_interval=0.1) as two,
    ):
        runs = [await engine.start("outage-counting") for engine in (one, two, one, two)]
        deadline = time.monotonic() + 10
        while len(entered) < len(runs):
            assert time.monotonic() < deadline, entered
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)  # the steps' starts are committed: nothing waits to be
        await asyncio.to_thread(server.shut_down)
        await asyncio.sleep(3.0)  # twice the lease
        await asyncio.to_thread(server.start_again)
        await asyncio.sleep(2.0)  # both replicas' loops have turned
        gate.set()
        done = [await settled(one, run.run_id) for run in runs]
    assert [run.status for run in done] == [RunStatus.SUCCESS] * len(runs)
    assert sorted(entered) == sorted(run.run_id for run in runs)  # each body once


async def test_a_row_held_by_another_session_costs_its_replica_only_that_run(server: PostgresServer) -> None:
    """An operator's open transaction holds one run's row longer than a lease (no `lock_timeout`,
    PostgreSQL's default). The heartbeat renews the leases of the replica's other runs all the
    same, so none of them changes hands and no body runs twice. (The renewal was one UPDATE of
    all the replica's runs: it waited for the held row, every lease of the replica ran out, and
    the other replica took its runs over while their bodies still ran here.)"""
    url = await server.create_database()
    admin = await asyncpg.connect(url)
    try:
        async with (
            two_stores(url) as (one_store, two_store),
            Engine(one_store, [counting], lease_seconds=1.5, claim_interval=0.1) as one,
        ):
            runs = [await one.start("outage-counting") for _ in range(3)]
            deadline = time.monotonic() + 10
            while len(entered) < len(runs):
                assert time.monotonic() < deadline, entered
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.5)  # the steps' starts are committed: nothing waits to be
            holder = admin.transaction()
            await holder.start()
            await admin.fetchval("SELECT 1 FROM runs WHERE run_id = $1 FOR UPDATE", runs[0].run_id)
            async with Engine(two_store, [counting], lease_seconds=1.5, claim_interval=0.1) as two:
                await asyncio.sleep(3.0)  # twice the lease
                owners = await admin.fetch(
                    "SELECT owner FROM runs WHERE run_id = ANY($1::text[])", [r.run_id for r in runs[1:]]
                )
                await holder.rollback()
                await asyncio.sleep(1.0)  # the held run's lease is renewed again
                gate.set()
                done = [await settled(one, run.run_id) for run in runs]
                del two
    finally:
        await admin.close()
    assert [row["owner"] for row in owners] == [one.owner] * 2
    assert [run.status for run in done] == [RunStatus.SUCCESS] * len(runs)
    assert sorted(entered[:3]) == sorted(run.run_id for run in runs)
    assert Counter(entered)[runs[1].run_id] == Counter(entered)[runs[2].run_id] == 1


async def test_a_renewal_waits_briefly_for_a_held_row_then_leaves_it_held(server: PostgresServer) -> None:
    """The store's side of the test above: rows nobody holds are renewed at once; a row held by
    a commit in flight is waited for; one held longer than `HELD_ROW_WAIT` is left held (still
    the owner's, not renewed), and the other runs are renewed all the same."""
    url = await server.create_database()
    admin = await asyncpg.connect(url)
    store = PostgresStore(url)
    await store.open()
    try:
        for run_id in ("a", "b", "c"):
            await store.write(RunWrite(run_id, create=Run(run_id, "w", RunStatus.RUNNING, 1.0, 1.0)))
        assert len(await store.claim_runs(Claim("r1", 30), 10, ["w"])) == 3

        async def expiries() -> dict[str, float]:
            rows = await admin.fetch("SELECT run_id, lease_expires_at FROM runs ORDER BY run_id")
            return {row["run_id"]: row["lease_expires_at"] for row in rows}

        before = await expiries()
        async with admin.transaction():
            await admin.execute("SELECT 1 FROM runs WHERE run_id = 'a' FOR UPDATE")
            started = time.monotonic()
            renewal = await store.renew_leases("r1", 60, ["a", "b", "c"])
            waited = time.monotonic() - started
        assert renewal == Renewal({"a": False, "b": False, "c": False}, frozenset({"a"}))
        assert waited >= HELD_ROW_WAIT
        after = await expiries()
        assert after["a"] == before["a"] and after["b"] > before["b"] and after["c"] > before["c"]

        holder = await asyncpg.connect(url)
        try:
            held = holder.transaction()
            await held.start()
            await holder.execute("UPDATE runs SET cancel_requested = true WHERE run_id = 'b'")
            renewing = asyncio.create_task(store.renew_leases("r1", 90, ["a", "b", "c"]))
            await asyncio.sleep(0.05)
            assert not renewing.done()  # waiting for `b`
            await held.commit()
            renewal = await renewing
        finally:
            await holder.close()
        # `b` was waited for, and its flag is the committed one.
        assert renewal == Renewal({"a": False, "b": True, "c": False})
        assert (await expiries())["b"] > after["b"]
    finally:
        await store.close()
        await admin.close()


async def test_a_row_held_by_another_session_holds_up_only_its_own_run(
    server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL's default `lock_timeout` is none: an operator's open transaction on one run's
    row held the replica's one writer, and with it every run of the replica, for as long as it
    stayed open. Now the writer waits `WRITER_LOCK_WAIT` at most, once: that run's change is
    refused alone (its drive tries again, each time refused at once while the row is held), and
    the other runs go on."""
    url = await server.create_database()
    admin = await asyncpg.connect(url)
    store = PostgresStore(url)
    await store.open()
    try:
        async with Engine(store, [sequence], lease_seconds=30, claim_interval=0.2) as engine:
            held_run = await engine.start("outage-sequence", input_data={"n": 20})
            other = await engine.start("outage-sequence", input_data={"n": 1})
            while ran["first"] < 2:
                await asyncio.sleep(0.01)
            holder = admin.transaction()
            await holder.start()
            await admin.fetchval("SELECT 1 FROM runs WHERE run_id = $1 FOR UPDATE", held_run.run_id)
            gate.set()  # both steps end; the held run's result waits for its row, the other's not
            deadline = time.monotonic() + 4 * WRITER_LOCK_WAIT
            while (await store.get_run(other.run_id)).status is not RunStatus.SUCCESS:  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the other run waited for the held row"
                await asyncio.sleep(0.05)
            assert (await store.get_run(held_run.run_id)).status is RunStatus.RUNNING  # type: ignore[union-attr]
            started = time.monotonic()
            with pytest.raises(StorageUnavailable):  # known held: refused without a wait
                await store.write(RunWrite(held_run.run_id, patch={"cancel_requested": False}))
            assert time.monotonic() - started < WRITER_LOCK_WAIT / 2
            await holder.rollback()
            done = await settled(engine, held_run.run_id)
            events = await store.read_events(held_run.run_id, 0)
    finally:
        await store.close()
        await admin.close()
    assert (done.status, done.result) == (RunStatus.SUCCESS, 42), done.error
    assert "LockNotAvailableError 55P03" in caplog.text
    assert_went_on(events, caplog)


async def test_a_database_that_hangs_is_taken_as_away_and_back(server: PostgresServer) -> None:
    """A database that keeps its connections and answers nothing (a hung primary, a host behind
    a network that drops every packet): calls are refused as retryable within `answer_wait`,
    readiness goes off, a scrape answers within COUNT_WAIT with the counts unknown, and all of
    it comes back when the database does. Before, every call waited for its own deadline while
    health said SERVING, the scrape hung, and the log said nothing (audit)."""
    store = PostgresStore(await server.create_database(), answer_wait=1.0)
    await store.open()
    metrics = Metrics(store)
    seen: list[bool] = []
    store.hub.listen_availability(seen.append)
    gate.set()
    try:
        async with Engine(store, [sequence], lease_seconds=30, claim_interval=0.2) as engine:
            done = await engine.start("outage-sequence", input_data={"n": 1}, wait=True)
            await asyncio.to_thread(server.freeze)
            try:
                for attempt in (
                    engine.get_run(done.run_id),
                    engine.start("outage-sequence", input_data={"n": 1}, request_id="r1", wait=True),
                ):
                    began = time.monotonic()
                    with pytest.raises(StorageUnavailable, match="did not answer in time"):
                        await attempt
                    assert time.monotonic() - began < 3 * store.answer_wait + 3  # not the deadline
                assert seen == [False] and not store.hub.available
                began = time.monotonic()
                gauges = await rendered(metrics)
                assert time.monotonic() - began < COUNT_WAIT + 3
                assert math.isnan(gauges["runservice_runs_in_flight"])
            finally:
                await asyncio.to_thread(server.thaw)
            run = await started_once_back(engine)
            assert (run.status, run.result) == (RunStatus.SUCCESS, 4)
            assert seen[-1] is True and store.hub.available
            assert (await rendered(metrics))["runservice_runs_in_flight"] == 0
    finally:
        await store.close()
