"""Watch fan-out: a batch of events is serialised once and the bytes shared by every stream."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from runservice import limits
from runservice.client import Client
from runservice.engine import Engine
from runservice.engine.follow import coalescing_pause, follow_events
from runservice.model import Event, EventDraft, EventType, Run, RunStatus
from runservice.server import convert
from runservice.server.fanout import SharedReplies
from runservice.storage import RunWrite
from runservice.storage.sqlite import SqliteStore
from runservice.v1 import run_service_pb2
from runservice.workflow import StepContext, create_step, create_workflow

pytestmark = pytest.mark.timeout(60)


def _events(run_id: str, first: int, last: int, at: float = 1.0) -> list[Event]:
    return [
        Event(run_id, seq, at, EventType.STEP_OUTPUT, RunStatus.RUNNING, data={"chunk": seq})
        for seq in range(first, last + 1)
    ]


def test_one_batch_is_serialised_once_for_every_stream() -> None:
    shared = SharedReplies(convert.reply_limit(limits.MESSAGE))
    first = shared.replies(_events("r", 1, 3), 3, born=1.0)
    again = shared.replies(_events("r", 1, 3), 3, born=1.0)  # another stream's copy of the same batch
    assert again is first
    (data,) = first
    expected = convert.watch_replies(_events("r", 1, 3), (), 3, limit=convert.reply_limit(limits.MESSAGE))[0]
    assert run_service_pb2.WatchResponse.FromString(data) == expected
    # Another watermark, another range, another run, another commit or another run under the
    # same id (made after a delete): another message.
    assert shared.replies(_events("r", 1, 3), 5, born=1.0) is not first
    assert shared.replies(_events("r", 2, 3), 3, born=1.0) is not first
    assert shared.replies(_events("s", 1, 3), 3, born=1.0) is not first
    assert shared.replies(_events("r", 1, 3, at=2.0), 3, born=1.0) is not first
    assert shared.replies(_events("r", 1, 3), 3, born=2.0) is not first


async def test_many_watchers_of_one_run_see_the_same_log(client: Client) -> None:
    run = await client.get_workflow("echo").create_run()
    seen: list[list[int]] = [[] for _ in range(20)]

    async def watch(into: list[int]) -> None:
        async for event in run.watch_events():
            into.append(event.sequence)

    watchers = [asyncio.create_task(watch(into)) for into in seen]
    done = await run.start_async(input_data={"count": 1})
    await asyncio.wait_for(asyncio.gather(*watchers), 30)
    assert all(into == list(range(1, done.last_sequence + 1)) for into in seen)


def test_replies_are_coalesced_only_for_runs_many_follow() -> None:
    assert coalescing_pause(1) == coalescing_pause(9) == 0.0  # each event as it comes
    assert coalescing_pause(10) == pytest.approx(0.001)
    assert coalescing_pause(1000) == pytest.approx(0.1)  # half a core's worth of 50 us replies
    assert coalescing_pause(1_000_000) == 0.25


@create_step("chunks")
async def chunks(ctx: StepContext) -> int:
    for index in range(50):
        await ctx.writer.write({"chunk": index})  # a commit each
    return 50


chatty = create_workflow("fanout-chatty").then(chunks).commit()


async def test_a_thousand_coalescing_followers_get_every_event_in_fewer_batches(tmp_path: Path) -> None:
    """With 1,000 followers a run's live events come in batches at most every 0.1 s: every
    follower still gets every event once, in order, with far fewer batches than events."""
    store = SqliteStore(str(tmp_path / "runs.db"))
    await store.open()
    try:
        async with Engine(store, [chatty]) as engine:
            run, _ = await engine.create_run("fanout-chatty")

            async def follow(coalesce: bool) -> list[list[int]]:
                batches = []
                follow = engine.follow(run.run_id, coalesce=coalesce)
                async for batch in follow:
                    batches.append([event.sequence for event in batch])
                return batches

            followers = [asyncio.create_task(follow(coalesce=True)) for _ in range(1000)]
            alone = asyncio.create_task(follow(coalesce=False))
            while store.hub.subscribers(run.run_id) < 1001:
                await asyncio.sleep(0.01)
            done = await engine.start("fanout-chatty", run_id=run.run_id, wait=True)
            seen = await asyncio.wait_for(asyncio.gather(*followers), 30)
            uncoalesced = await asyncio.wait_for(alone, 30)
    finally:
        await store.close()
    log = list(range(1, done.last_sequence + 1))
    assert done.last_sequence > 50
    for batches in [*seen, uncoalesced]:
        assert [sequence for batch in batches for sequence in batch] == log
    # 50 commits of a few milliseconds each: a batch each without coalescing, a few with it.
    assert max(len(batches) for batches in seen) < 20 < len(uncoalesced)


async def test_a_follower_that_fell_behind_catches_up_to_the_end_of_the_run(tmp_path: Path) -> None:
    """A follower too slow for its subscription (over 1,000 events buffered: they are dropped)
    re-reads the store; a page it reads may end before the run's last event, and nothing live
    is left to tell it more is stored: it reads on until it reaches the end."""
    store = SqliteStore(str(tmp_path / "runs.db"))
    await store.open()
    try:
        step = EventDraft(type=EventType.STEP_OUTPUT, run_status=RunStatus.RUNNING, data=1)
        run = Run(run_id="slow", workflow_id="wf", status=RunStatus.RUNNING, created_at=1.0, updated_at=1.0)
        await store.write(RunWrite("slow", create=run, events=(step,)))
        follow = follow_events(
            store,
            "slow",
            after=0,
            until_settled=False,
            heartbeat=0.2,
            draining=lambda: False,
            register=lambda _: None,
        )
        seen = [event.sequence for event in await anext(follow)]
        assert await anext(follow) == []  # a heartbeat: the stored log is read, the follower is live
        for _ in range(999):  # the follower reads nothing meanwhile: its subscription holds them
            await store.write(RunWrite("slow", events=(step,)), durable=False)
        finish = EventDraft(type=EventType.WORKFLOW_FINISH, run_status=RunStatus.SUCCESS, data=1)
        # The run's last commit takes the subscription over 1,000: dropped, the follower lags.
        await store.write(RunWrite("slow", patch={"status": RunStatus.SUCCESS}, events=(step, finish)))
        async with asyncio.timeout(10):
            async for batch in follow:
                seen.extend(event.sequence for event in batch)
    finally:
        await store.close()
    assert seen == list(range(1, 1003))


CHUNK = "x" * (128 * 1024)


@create_step("chunky")
async def chunky_step(ctx: StepContext) -> int:
    for index in range(200):
        await ctx.writer.write({"i": index, "blob": CHUNK})
    return 200


chunky = create_workflow("chunky").then(chunky_step).commit()


async def test_a_follower_that_stops_reading_holds_a_bounded_part_of_its_runs_events(tmp_path: Path) -> None:
    """A Watch whose client stopped reading: its subscription buffered every event of its run,
    up to 1,000 of up to 1 MiB each (audit: 50 MiB for 400 chunks of 128 KiB). Past 8 MiB it
    lets them go and its reader re-reads the store, and still gets every event once, in order."""
    store = SqliteStore(str(tmp_path / "runs.db"))
    await store.open()
    try:
        async with Engine(store, [chunky]) as engine:
            run, _ = await engine.create_run("chunky")
            follow = engine.follow(run.run_id, heartbeat=1.0)
            seen = [e.sequence for e in await follow.__anext__()]  # reads once, then stops
            (subscription,) = store.hub._subscribers[run.run_id]
            await engine.start("chunky", run_id=run.run_id, wait=True)
            held = sum(len(str(e.data)) for e in subscription._buffer)
            assert held < 9 * 2**20, f"one stalled follower holds {held / 2**20:.0f} MiB"
            async for batch in follow:  # reading on: every event, once, in order
                seen.extend(e.sequence for e in batch)
            final = await engine.get_run(run.run_id)
        assert seen == list(range(1, final.last_sequence + 1))
    finally:
        await store.close()
