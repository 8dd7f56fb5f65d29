"""Following a run's event log: stored events first, then live ones, each exactly once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from runservice.errors import RunNotFound, Unavailable
from runservice.model import Event
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
) -> AsyncIterator[list[Event]]:
    """See Engine.follow. Subscribes before reading the store so nothing falls in between."""
    stop: Callable[[Event], bool] = (lambda e: e.settles_run) if until_settled else (lambda e: e.ends_run)
    with store.hub.subscribe(run_id) as subscription:
        register(subscription)
        run = await store.get_run(run_id)
        if run is None:
            raise RunNotFound(run_id)
        cursor = after
        # A time travel continues a finished run's log: a terminal finish event before the
        # last event the run had when we subscribed is not the end of a Watch.
        last = 0 if until_settled else run.last_sequence
        while True:  # the stored backlog
            stored = await store.read_events(run_id, cursor)
            if not stored:
                break
            batch, done = _until(stored, lambda e: stop(e) and e.sequence >= last)
            yield batch
            cursor = batch[-1].sequence
            if done:
                return
        if run.status.terminal and cursor >= run.last_sequence:
            return
        while True:
            if draining():
                raise Unavailable("server is shutting down; reconnect with your last sequence")
            live = await subscription.wait(heartbeat)
            if subscription.lagged or (live and live[0].sequence > cursor + 1):
                subscription.lagged = False
                live = await store.read_events(run_id, cursor)
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


def _until(events: list[Event], stop: Callable[[Event], bool]) -> tuple[list[Event], bool]:
    for index, event in enumerate(events):
        if stop(event):
            return events[: index + 1], True
    return events, False
