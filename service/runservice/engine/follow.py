"""Following a run's event log: stored events first, then live ones, each exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from runservice.errors import FieldViolation, InvalidArgument, RunNotFound, Unavailable
from runservice.model import Event, Run
from runservice.storage import Store, Subscription


async def follow_events(
    store: Store,
    run_id: str,
    *,
    after: int,
    until_settled: bool,
    heartbeat: float | None,
    draining: Callable[[], bool],
    register: Callable[[Subscription], None],
    coalesce: bool = False,
    born: float | None = None,
) -> AsyncIterator[list[Event]]:
    """See Engine.follow. Subscribes before reading the store so nothing falls in between."""
    stop: Callable[[Event], bool] = (lambda e: e.settles_run) if until_settled else (lambda e: e.ends_run)
    with store.hub.subscribe(run_id) as subscription:
        register(subscription)
        run = await store.get_run(run_id)
        if run is None or (born is not None and run.created_at != born):
            raise RunNotFound(run_id)
        check_cursor(run, after)
        born = run.created_at

        async def read(cursor: int) -> list[Event]:
            # A deleted run's id can be taken by a new run, whose log starts again at 1:
            # never hand its events on as this run's. A run, once deleted, never comes
            # back, so the events read are this run's if it still exists after the read;
            # if it does not, the follow ends (the store nudges followers on a delete).
            events = await store.read_events(run_id, cursor)
            if await store.created_at(run_id) != born:
                raise RunNotFound(run_id)
            return events

        cursor = after
        # A time travel continues a finished run's log: a terminal finish event before the
        # last event the run had when we subscribed is not the end of a Watch.
        last = 0 if until_settled else run.last_sequence
        while True:  # the stored backlog
            # Before each page as in the live loop: a long backlog read slowly otherwise kept
            # its stream past the drain, to the end of the stop's grace (audit).
            if draining():
                raise drained()
            stored = await read(cursor)
            if not stored:
                break
            batch, done = _until(stored, lambda e: stop(e) and e.sequence >= last)
            yield batch
            cursor = batch[-1].sequence
            if done:
                return
        if run.status.terminal and cursor >= run.last_sequence:
            return
        behind = False
        while True:
            if draining():
                raise drained()
            if behind:
                # A page read to catch up may end before the run's last event (pages are
                # bounded in events and bytes), and the events after it, dropped from the
                # subscription, come back from nowhere else: read on until a page is empty.
                live = await read(cursor)
                behind = bool(live)
            else:
                live = await subscription.wait(heartbeat)
                # Read from the store unless the live events are this run's own and go on from
                # the cursor without a gap. A new run under a deleted run's id, committed here,
                # may do both but the first (audit: made on another replica and resumed here,
                # it went on from this run's last event when the delete's notice was lost);
                # the read finds this run gone.
                if subscription.lagged or (
                    live
                    and (
                        subscription.born != born
                        or live[0].sequence != cursor + 1
                        or live[-1].sequence != cursor + len(live)
                    )
                ):
                    subscription.lagged = False
                    live = await read(cursor)
                    behind = bool(live)
            fresh = [e for e in live if e.sequence > cursor]
            if not fresh:
                if heartbeat is not None and not live and not draining():
                    yield []
                continue
            batch, done = _until(fresh, stop)
            yield batch
            cursor = batch[-1].sequence
            if done:
                return
            if coalesce and (pause := coalescing_pause(store.hub.subscribers(run_id))):
                await asyncio.sleep(pause)


def check_cursor(run: Run, after: int) -> None:
    """InvalidArgument for a cursor `after` past the last event of `run`."""
    if after > run.last_sequence:
        # Nobody is told of an event before it is stored, so no cursor of this run is past
        # its end (one of a deleted run of the same id is). Waited on, it never ended
        # (audit): the events up to it, the run's end among them, were all dropped.
        problem = f"is past the run's last event ({run.last_sequence})"
        raise InvalidArgument(
            f"after_sequence {after} {problem}", violations=[FieldViolation("after_sequence", problem)]
        )


def drained() -> Unavailable:
    """What a follow ends with when the server drains."""
    return Unavailable("server is shutting down; reconnect with your last sequence")


REPLY_COST = 50e-6
"""Seconds of the server's CPU per reply on a stream, about: grpc's send and its completion,
and the stream's turn (BENCHMARKS.md, Watch fan-out)."""
FANOUT_SHARE = 0.5
"""The share of the server's event loop the followers of one run may take together."""
COALESCE_FROM = 0.001
COALESCE_MOST = 0.25


def coalescing_pause(followers: int) -> float:
    """Seconds a coalescing follower of a run with `followers` (in this process) waits after a
    batch of live events before it takes the next: each gets one reply per `followers x
    REPLY_COST / FANOUT_SHARE` at most, so however fast the run's events come, its fan-out
    takes about FANOUT_SHARE of the event loop. 1,000 Watch streams on one run get a reply
    each every 0.1 s; fewer than 10 (a pause under COALESCE_FROM) get each event as it comes.
    The pause is at most COALESCE_MOST. Events that come meanwhile go out together in the
    next batch; an event that comes after a quiet spell longer than the pause never waits.
    """
    pause = followers * REPLY_COST / FANOUT_SHARE
    return 0.0 if pause < COALESCE_FROM else min(pause, COALESCE_MOST)


def _until(events: list[Event], stop: Callable[[Event], bool]) -> tuple[list[Event], bool]:
    for index, event in enumerate(events):
        if stop(event):
            return events[: index + 1], True
    return events, False
