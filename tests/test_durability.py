"""The durability rule on SQLite: whatever a caller or a watcher is told has been fsynced.

A power loss cannot be simulated here, so these tests check the store's side of the
rule through its durable watermark (`commits`, `durable`, `syncs`) and through SQLite's
own state (the sync mark a barrier writes): internal progress commits without a sync,
anything handed out (a read, a reply, an event to a subscriber) waits for a synced
commit that covers it, and `durability="normal"` never syncs. kill -9 consistency is
tests/test_recovery.py and tests/test_soak.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from run_writes import new_run, progress
from workflows import approval, echo

from runservice.engine.engine import Engine
from runservice.model import RunStatus
from runservice.storage import Claim, Lease, RunWrite, ScheduleDefinition
from runservice.storage.sqlite import SqliteStore
from runservice.workflow import StepContext, create_step, create_workflow


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(str(tmp_path / "runs.db"))
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_durable_write_returns_synced(store: SqliteStore) -> None:
    await store.write(new_run("a"))
    assert store.durable == store.commits == 1
    assert store.syncs == 1


async def test_a_lone_synced_commit_runs_on_the_loop_and_a_batch_on_the_writer_thread(
    store: SqliteStore,
) -> None:
    """A synced batch of one change, nothing queued behind it, commits on the event loop (two
    thread hand-offs saved); a larger batch goes to the writer thread, so the loop serves the
    other callers during its fsync. Either way the commit is synced (BENCHMARKS.md)."""
    await store.write(new_run("a"))
    assert store.syncs == store.loop_syncs == 1
    await asyncio.gather(*(store.write(new_run(run_id)) for run_id in ("b", "c", "d")))
    assert store.syncs == 2 and store.loop_syncs == 1  # one batch of three
    assert store.durable == store.commits == 2


async def test_progress_is_not_synced_until_a_barrier_covers_it(store: SqliteStore) -> None:
    await store.write(new_run("a"))
    for _ in range(3):
        await store.write(progress("a"), durable=False)
    assert store.commits == 4
    assert store.durable == 1  # three commits nobody was told about: no fsync yet
    assert store.syncs == 1
    # Several callers at once share one barrier: one fsync of the WAL covers all of them,
    # with no commit of its own.
    await asyncio.gather(*(store.sync() for _ in range(5)))
    assert store.durable == store.commits == 4
    assert store.syncs == 2
    await store.sync()  # already covered: no fsync at all
    assert store.commits == 4 and store.syncs == 2


async def test_a_durable_write_covers_earlierprogress(store: SqliteStore) -> None:
    await store.write(new_run("a"))
    await store.write(progress("a"), durable=False)
    await store.write(progress("a"))
    assert store.durable == store.commits == 3
    await store.sync()
    assert store.commits == 3  # the write's own synced commit covered the progress before it
    assert store.syncs == 2


async def test_reads_hand_out_only_synced_commits(store: SqliteStore) -> None:
    await store.write(new_run("a"))
    await store.write(progress("a"), durable=False)
    assert store.durable < store.commits
    run = await store.get_run("a")
    assert run is not None and run.last_sequence == 2
    assert store.durable == store.commits  # the read waited for a sync covering what it saw
    await store.write(progress("a"), durable=False)
    events = await store.read_events("a", 0)
    assert [event.sequence for event in events] == [1, 2, 3]
    assert store.durable == store.commits


async def test_a_read_of_one_run_waits_only_for_that_runs_commits(store: SqliteStore) -> None:
    await store.write(new_run("a"))
    await store.write(new_run("b"))
    await store.write(progress("b"), durable=False)
    syncs = store.syncs
    assert await store.get_run("a", steps=True) is not None
    assert [event.sequence for event in await store.read_events("a", 0)] == [1]
    assert store.syncs == syncs and store.durable < store.commits  # a was synced already
    assert await store.get_run("b") is not None
    assert store.durable == store.commits  # b's progress is synced before it is handed out
    await store.write(progress("b"), durable=False)
    assert len(await store.read_events("b", 0)) == 3
    assert store.durable == store.commits


async def test_a_watched_runs_events_reach_subscribers_only_once_synced(store: SqliteStore) -> None:
    await store.write(new_run("a"))
    with store.hub.subscribe("a") as subscription:
        await store.write(progress("a"), durable=False)
        # A subscriber follows the run: its progress is synced before the events are handed over.
        assert store.durable == store.commits
        events = await subscription.wait(5)
        assert [event.sequence for event in events] == [2]


async def test_a_subscriber_arriving_while_progress_is_queued_gets_it_only_once_synced(
    store: SqliteStore,
) -> None:
    await store.write(new_run("a"))
    syncs = store.syncs
    writing = asyncio.create_task(store.write(progress("a"), durable=False))
    await asyncio.sleep(0)  # the write is queued, its batch not yet committed
    with store.hub.subscribe("a") as subscription:
        events = await subscription.wait(5)
        assert [event.sequence for event in events] == [2]
        assert store.durable == store.commits  # the batch was synced for its watcher
        assert store.syncs == syncs + 1
    await writing


async def test_a_subscriber_arriving_while_the_writer_waits_for_the_lock_gets_it_only_once_synced(
    store: SqliteStore,
) -> None:
    """The writer waits for a write lock another connection holds (an operator's shell, a
    backup) with the loop free: a Watch that subscribes meanwhile is handed nothing unsynced."""
    await store.write(new_run("a"))
    other = sqlite3.connect(store.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        writing = asyncio.create_task(store.write(progress("a"), durable=False))
        await asyncio.sleep(0.3)  # its batch, judged unwatched, waits for the lock
        with store.hub.subscribe("a") as subscription:
            other.execute("ROLLBACK")
            events = await subscription.wait(5)
            assert [event.sequence for event in events] == [2]
            assert store.durable == store.commits
        await writing
    finally:
        other.close()


async def test_a_read_waits_for_a_sync_covering_a_sleeping_runs_wake(store: SqliteStore) -> None:
    """`wake_bounded` changes a run's status unsynced; a read of the run syncs it first."""
    created = await store.write(RunWrite("a", create=new_run("a").create, claim=Claim("me", 60)))
    lease = Lease("me", created.epoch)
    await store.write(RunWrite("a", patch={"status": RunStatus.WAITING, "wake_at": 5.0}, fence=lease))
    assert await store.wake_bounded("a", lease, "wf", 2)
    assert store.durable < store.commits
    run = await store.get_run("a")
    assert run is not None and run.status is RunStatus.RUNNING
    assert store.durable == store.commits


async def test_unwatched_progress_commits_without_an_fsync(store: SqliteStore) -> None:
    await store.write(new_run("a"))
    syncs, commits = store.syncs, store.commits
    for _ in range(5):
        await store.write(progress("a"), durable=False)
    assert (store.commits, store.syncs) == (commits + 5, syncs)
    assert store.durable == commits  # the last synced commit; reads sync before they answer
    await store.sync()
    assert (store.durable, store.syncs) == (store.commits, syncs + 1)


async def test_schedule_changes_are_synced_but_claims_are_not(store: SqliteStore) -> None:
    """A pause or a trigger's outcome is an answer to a caller: synced like a durable write.
    Claims and heartbeats are internal (SQLite voids every lease at open)."""
    await store.upsert_schedules(
        [ScheduleDefinition("nightly", "wf", "0 3 * * *", "UTC", None, None, "skip", "skip", "", 2e9)]
    )
    assert store.durable == store.commits
    syncs = store.syncs
    await store.claim_runs(Claim("me", 30.0), 10, ["wf"])
    await store.renew_leases("me", 30.0, ["r1"])
    assert store.syncs == syncs and store.durable < store.commits
    paused = await store.set_schedule_paused("nightly", True, None)
    assert paused is not None and paused.paused
    assert store.durable == store.commits and store.syncs == syncs + 1


async def test_normal_mode_never_syncs(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "runs.db"), durability="normal")
    await store.open()
    try:
        await store.write(new_run("a"))
        await store.write(progress("a"), durable=False)
        with store.hub.subscribe("a") as subscription:
            await store.write(progress("a"), durable=False)
            assert [event.sequence for event in await subscription.wait(5)] == [3]
        await store.sync()
        await store.get_run("a")
        assert store.durable == store.commits == 3
        assert store.syncs == 0
    finally:
        await store.close()


def test_unknown_durability_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="durability"):
        SqliteStore(str(tmp_path / "runs.db"), durability="sometimes")


held_gate = asyncio.Event()


@create_step("held")
async def held(ctx: StepContext) -> int:
    await held_gate.wait()
    return 1


held_flow = create_workflow("held").then(held).commit()


async def test_a_reply_waits_for_one_sync_covering_the_run(store: SqliteStore) -> None:
    held_gate.clear()
    async with Engine(store, [echo, approval, held_flow]) as engine:
        syncs = store.syncs
        run = await engine.start("echo", input_data={"count": 1}, wait=True)
        assert run.status is RunStatus.SUCCESS
        assert store.durable == store.commits  # nothing the reply rests on is unsynced
        assert store.syncs == syncs + 1  # the run's progress shared the settling commit's fsync
        suspended = await engine.start("approval", input_data={"count": 1}, wait=True)
        assert suspended.status is RunStatus.SUSPENDED
        assert store.durable == store.commits
        syncs = store.syncs
        done = await engine.resume(suspended.run_id, resume_data={"approved": True}, wait=True)
        assert done.status is RunStatus.SUCCESS
        assert store.durable == store.commits
        assert store.syncs == syncs + 1  # with `wait`, the resume's own commit is not synced apart
        commits = store.commits
        started = await engine.start("held")  # no wait: the start is the reply
        assert started.status is RunStatus.RUNNING
        # The start's own commit is synced (its drive, held in its step, may have committed
        # progress since, unsynced).
        assert store.durable >= commits + 1
        held_gate.set()


async def test_a_reply_does_not_wait_for_other_runsprogress(store: SqliteStore) -> None:
    """A run's settling commit is synced and covers all the run wrote: its reply does not
    wait for a sync of progress other runs committed after it (under load, there always is
    some), which would cost every reply a second fsync."""
    await store.write(new_run("other"))
    async with Engine(store, [echo]) as engine:
        writes: list[asyncio.Task[object]] = []

        def after_commit(seconds: float, changes: int) -> None:
            # Right after the run's settling commit, before its caller resumes, another run
            # commits progress (the next batch, unsynced).
            if store.durable == store.commits and not writes:
                writes.append(asyncio.ensure_future(store.write(progress("other"), durable=False)))

        syncs = store.syncs
        stop = store.hub.listen_commits(after_commit)
        try:
            run = await engine.start("echo", input_data={"count": 1}, wait=True)
        finally:
            stop()
        assert run.status is RunStatus.SUCCESS
        await asyncio.gather(*writes)
        assert store.syncs == syncs + 1  # the settling commit's fsync only
        assert store.durable < store.commits  # the other run's progress is still unsynced
