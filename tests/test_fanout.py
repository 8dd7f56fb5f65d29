"""Watch fan-out: a batch of events is serialised once and the bytes shared by every stream."""

from __future__ import annotations

import asyncio

from runservice.client import Client
from runservice.model import Event, EventType, RunStatus
from runservice.server import convert
from runservice.server.fanout import SharedReplies
from runservice.v1 import run_service_pb2


def _events(run_id: str, first: int, last: int, at: float = 1.0) -> list[Event]:
    return [
        Event(run_id, seq, at, EventType.STEP_OUTPUT, RunStatus.RUNNING, data={"chunk": seq})
        for seq in range(first, last + 1)
    ]


def test_one_batch_is_serialised_once_for_every_stream() -> None:
    shared = SharedReplies()
    first = shared.replies(_events("r", 1, 3), 3)
    again = shared.replies(_events("r", 1, 3), 3)  # another stream's copy of the same batch
    assert again is first
    (data,) = first
    expected = convert.watch_replies(_events("r", 1, 3), (), 3)[0]
    assert run_service_pb2.WatchResponse.FromString(data) == expected
    # Another watermark, another range, another run or another commit: another message.
    assert shared.replies(_events("r", 1, 3), 5) is not first
    assert shared.replies(_events("r", 2, 3), 3) is not first
    assert shared.replies(_events("s", 1, 3), 3) is not first
    assert shared.replies(_events("r", 1, 3, at=2.0), 3) is not first


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
