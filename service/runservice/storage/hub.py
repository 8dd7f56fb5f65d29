"""In-process fan-out of committed events to the subscribers of each run.

The hub is a hint, never the record: a subscriber that falls too far behind is
marked `lagged` and must re-read the store from its own cursor.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable

from runservice.model import Event

_MAX_BUFFERED = 1000


class Subscription:
    """Events of one run committed after `subscribe`, in sequence order."""

    def __init__(self, hub: EventHub, run_id: str) -> None:
        self._hub = hub
        self.run_id = run_id
        self._buffer: list[Event] = []
        self._ready = asyncio.Event()
        self.lagged = False
        """Set when events were dropped; the reader must catch up from the store."""

    def _push(self, events: list[Event]) -> None:
        if len(self._buffer) + len(events) > _MAX_BUFFERED:
            self._buffer.clear()
            self.lagged = True
        else:
            self._buffer.extend(events)
        self._ready.set()

    async def wait(self, idle: float | None) -> list[Event]:
        """Buffered events, waiting up to `idle` seconds for some; [] on timeout or lag."""
        if not self._buffer and not self.lagged:
            try:
                async with asyncio.timeout(idle):
                    await self._ready.wait()
            except TimeoutError:
                return []
        events, self._buffer = self._buffer, []
        self._ready.clear()
        return events

    def _nudge(self) -> None:
        # Events exist that the hub did not carry (another process wrote them): the reader
        # re-reads the store from its own cursor, exactly as after dropped events.
        self.lagged = True
        self._ready.set()

    def wake(self) -> None:
        """Wake a waiting reader without events (for example to notice a drain)."""
        self._ready.set()

    def close(self) -> None:
        self._hub._unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventHub:
    """Subscriptions per run id; `publish` is called by the store after each commit."""

    def __init__(self) -> None:
        self._subscribers: defaultdict[str, set[Subscription]] = defaultdict(set)

    def subscribe(self, run_id: str) -> Subscription:
        subscription = Subscription(self, run_id)
        self._subscribers[run_id].add(subscription)
        return subscription

    def publish(self, events: Iterable[Event]) -> None:
        by_run: defaultdict[str, list[Event]] = defaultdict(list)
        for event in events:
            if event.run_id in self._subscribers:
                by_run[event.run_id].append(event)
        for run_id, run_events in by_run.items():
            for subscription in self._subscribers.get(run_id, ()):
                subscription._push(run_events)

    def watching(self, run_id: str) -> bool:
        """True if some subscription follows `run_id`."""
        return run_id in self._subscribers

    def watched(self) -> list[str]:
        """The run ids that have subscribers."""
        return list(self._subscribers)

    def nudge(self, run_id: str) -> None:
        """Tell the subscribers of `run_id` that its log moved without them: they re-read the store.

        For events committed elsewhere (another process on the same database), which this
        hub never saw; a store calls it when it learns of them (NOTIFY, polling).
        """
        for subscription in self._subscribers.get(run_id, ()):
            subscription._nudge()

    def _unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscribers.get(subscription.run_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[subscription.run_id]
