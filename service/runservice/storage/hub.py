"""In-process fan-out of committed events to the subscribers of each run.

The hub is a hint, never the record: a subscriber that falls too far behind is
marked `lagged` and must re-read the store from its own cursor. Events are handed on with
the creation of their run (`Subscription.born`): a deleted run's id may name a new run,
whose events go on in sequence from the old one's.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from runservice import limits
from runservice.errors import StorageFailed
from runservice.model import Event

logger = logging.getLogger(__name__)

_MAX_BUFFERED = 1000
_MAX_BUFFERED_BYTES = 8 * 2**20
"""What a subscription holds of its run's events, at most, about: a Watch whose client stopped
reading (its stream blocked by flow control) pinned 1,000 events of up to 1 MiB each (audit).
Past either bound the subscription is `lagged`, and its reader re-reads the store from its
cursor, in pages bounded in bytes too."""


class Subscription:
    """Events of one run committed after `subscribe`, in sequence order."""

    def __init__(self, hub: EventHub, run_id: str) -> None:
        self._hub = hub
        self.run_id = run_id
        self._buffer: list[Event] = []
        self._bytes = 0
        self._ready = asyncio.Event()
        self.lagged = False
        """Set when events were dropped; the reader must catch up from the store."""
        self.born: float | None = None
        """The `created_at` of the run whose events were pushed last: every event buffered is
        of that run. A reader hands on only events of the run it follows, which the sequences
        alone do not tell (audit: a new run under a deleted run's id, resumed here, went on
        from the old run's last event, and was handed on as the old run's)."""

    def _push(self, events: list[Event], size: int, born: float) -> None:
        """Buffer `events` (`size`: their JSON's bytes, about) of the run created at `born`, or
        drop everything held."""
        if born != self.born:  # another run of this id: what is held is not of the same run
            self._buffer.clear()
            self._bytes = 0
            self.born = born
        if len(self._buffer) + len(events) > _MAX_BUFFERED or self._bytes + size > _MAX_BUFFERED_BYTES:
            self._buffer.clear()
            self._bytes = 0
            self.lagged = True
        else:
            self._buffer.extend(events)
            self._bytes += size
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
        self._bytes = 0
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


EventListener = Callable[[Sequence[Event]], None]
"""Called with every batch of committed events, of any run (see `EventHub.listen`)."""

CommitListener = Callable[[float, int], None]
"""Called after each store transaction with its duration in seconds and its number of changes."""

RefusalListener = Callable[[int], None]
"""Called with how many changes of a transaction storage could not take (StorageUnavailable:
a full disk, an I/O error, a lost or read-only database)."""

ReleaseListener = Callable[[str, bool], None]
"""Called with a run this process will not see finish, and whether it was left unowned (see
`EventHub.released`)."""

DeletionListener = Callable[[int], None]
"""Called with how many runs a transaction deleted (DeleteRun, or the retention sweep)."""

RemovalListener = Callable[[int, int], None]
"""Called after each pass of the store's removal of large deleted runs' rows (storage/removal.py)
with the deleted runs whose rows are still being removed (in the database) and the rows the
pass removed."""

AvailabilityListener = Callable[[bool], None]
"""Called when storage stops answering (False: it refused a change or a read as
StorageUnavailable) and when it answers again (True: a write went through; a read alone does
not tell, as a database that refuses writes cannot serve)."""

TickListener = Callable[[str, str, str], None]
ClockListener = Callable[[float], None]
"""Called with (schedule id, kind, outcome) of each tick a schedule fired (see `TickFire`,
`TickResult`): cron, trigger, buffered or missed; started, skipped, buffered, advanced, lost
or repeated."""

FailureListener = Callable[[StorageFailed], None]
"""Called once, when the store stopped trusting its device (a failed fsync): from then on it
refuses every request, and the process should stop (see `StorageFailed`)."""

L = TypeVar("L", bound=Callable[..., None])


class _Listeners(Generic[L]):
    """Listeners of one kind, called in the order they came; one that fails is logged."""

    __slots__ = ("_kind", "all")

    def __init__(self, kind: str) -> None:
        """`kind` names them in the log: "an event", "a commit"."""
        self.all: tuple[L, ...] = ()
        self._kind = kind

    def add(self, listener: L) -> Callable[[], None]:
        """Add `listener`; returns the function that removes it."""
        self.all = (*self.all, listener)

        def stop() -> None:
            self.all = tuple(x for x in self.all if x is not listener)

        return stop

    def call(self, *args: Any) -> None:
        for listener in self.all:
            try:
                listener(*args)
            except Exception:  # an observer's bug must not keep the others from hearing
                logger.exception("%s listener failed", self._kind)


class EventHub:
    """Subscriptions per run id; `publish` is called by the store after each commit.

    Besides the per-run subscriptions, listeners (metrics, traces) may hear every
    committed event (`listen`), every transaction's cost (`listen_commits`), the changes
    storage refused (`listen_refusals`), whether storage answers (`listen_availability`), the
    runs deleted (`listen_deletions`), the removal of large deleted runs' rows
    (`listen_removals`), the ticks schedules fired (`listen_ticks`), how far this server's
    clock is from the database's (`listen_clock`), the runs the engine let go to another
    replica (`listen_releases`) and the store's failure (`listen_failure`).
    Listeners are called synchronously on the store's writer task, after the commit: they
    must be quick (the store is on every run's path); an exception is logged.
    """

    def __init__(self) -> None:
        self._subscribers: defaultdict[str, set[Subscription]] = defaultdict(set)
        self._listeners = _Listeners[EventListener]("an event")
        self._commit_listeners = _Listeners[CommitListener]("a commit")
        self._refusal_listeners = _Listeners[RefusalListener]("a refusal")
        self._deletion_listeners = _Listeners[DeletionListener]("a deletion")
        self._removal_listeners = _Listeners[RemovalListener]("a removal")
        self._failure_listeners = _Listeners[FailureListener]("a failure")
        self._availability_listeners = _Listeners[AvailabilityListener]("an availability")
        self._tick_listeners = _Listeners[TickListener]("a tick")
        self._clock_listeners = _Listeners[ClockListener]("a clock")
        self._release_listeners = _Listeners[ReleaseListener]("a release")
        self.available = True
        """False from a refusal (StorageUnavailable) until storage answers again (`reached`)."""

    def listen(self, listener: EventListener) -> Callable[[], None]:
        """Call `listener` with every batch of committed events; returns the function that stops it."""
        return self._listeners.add(listener)

    def listen_commits(self, listener: CommitListener) -> Callable[[], None]:
        """Call `listener(seconds, changes)` after each transaction; returns the function that stops it."""
        return self._commit_listeners.add(listener)

    def listen_refusals(self, listener: RefusalListener) -> Callable[[], None]:
        """Call `listener(changes)` when storage could not take `changes` changes of a
        transaction; returns the function that stops it."""
        return self._refusal_listeners.add(listener)

    def listen_deletions(self, listener: DeletionListener) -> Callable[[], None]:
        """Call `listener(runs)` when a transaction deleted `runs` runs; returns the function
        that stops it."""
        return self._deletion_listeners.add(listener)

    def listen_removals(self, listener: RemovalListener) -> Callable[[], None]:
        """Call `listener(runs, rows)` after each pass of the removal of deleted runs' rows;
        returns the function that stops it."""
        return self._removal_listeners.add(listener)

    def listen_availability(self, listener: AvailabilityListener) -> Callable[[], None]:
        """Call `listener(available)` each time `available` changes; returns the function that
        stops it."""
        return self._availability_listeners.add(listener)

    def listen_ticks(self, listener: TickListener) -> Callable[[], None]:
        """Call `listener(schedule_id, kind, outcome)` after each tick a schedule fired; returns
        the function that stops it."""
        return self._tick_listeners.add(listener)

    def listen_clock(self, listener: ClockListener) -> Callable[[], None]:
        """Call `listener(offset)` each time the schedules read the database's clock (`offset`:
        its time less this server's, in seconds); returns the function that stops it."""
        return self._clock_listeners.add(listener)

    def listen_releases(self, listener: ReleaseListener) -> Callable[[], None]:
        """Call `listener(run_id, unowned)` when this process let go of a run it will not finish
        (see `released`); returns the function that stops it."""
        return self._release_listeners.add(listener)

    def listen_failure(self, listener: FailureListener) -> Callable[[], None]:
        """Call `listener(error)` when the store fails for good (see `FailureListener`);
        returns the function that stops it."""
        return self._failure_listeners.add(listener)

    def committed(self, seconds: float, changes: int) -> None:
        """Called by the store after each transaction (committed or not), or a barrier's fsync
        alone, with its cost."""
        self._commit_listeners.call(seconds, changes)

    def refused(self, changes: int, *, away: bool = True) -> None:
        """Called by the store when storage could not take `changes` changes (retried later),
        or could not answer a read (`changes` 1). `away`: storage cannot serve now (lost,
        full, read-only), as opposed to contended (a row another session holds past a lock
        timeout, a deadlock): that refuses those changes alone, and leaves `available` be."""
        self._refusal_listeners.call(changes)
        if away and self.available:
            self.available = False
            self._availability_listeners.call(False)

    def reached(self) -> None:
        """Called by the store when a write went through (a commit, a claim, a renewal):
        after a refusal, storage answers again. Cheap when nothing changes (it is on every
        commit's path)."""
        if not self.available:
            self.available = True
            self._availability_listeners.call(True)

    def deleted(self, run_ids: Sequence[str]) -> None:
        """Called by the store after a transaction that deleted `run_ids`: their followers
        re-read the store and find them gone (see `batching.deleted`)."""
        if not run_ids:
            return
        for run_id in run_ids:
            self.nudge(run_id)
        self._deletion_listeners.call(len(run_ids))

    def removing(self, runs: int, rows: int) -> None:
        """Called by the store's removal after each pass: `runs` deleted runs' rows are still
        being removed (in the database: every replica's), and the pass removed `rows` rows."""
        self._removal_listeners.call(runs, rows)

    def released(self, run_id: str, *, unowned: bool = False) -> None:
        """Called by the engine when it stopped driving `run_id` without its finish, because
        another replica owns it now, or (`unowned`) when it committed an execution of the run
        with no owner (no room here: a Start, Resume, TimeTravel, ForkRun or schedule tick
        left to the claim loops, whose drive, here or on another replica, is followed anew).
        Listeners that keep something of a run until its finish (metrics' and traces' index,
        open spans) let it go now rather than for the life of the process (audit: a replica
        that only accepted Starts kept every run, and its open span, until it stopped)."""
        self._release_listeners.call(run_id, unowned)

    def ticked(self, schedule_id: str, kind: str, outcome: str) -> None:
        """Called by the store after each `fire_tick` with what the tick did. A buffered tick
        looked at while its schedule's run is still active ("waiting") fired nothing: listeners
        do not hear of it (it is looked at on every pass of the scheduler)."""
        if outcome != "waiting":
            self._tick_listeners.call(schedule_id, kind, outcome)

    def clock_read(self, offset: float) -> None:
        """Called by the engine's schedules after reading the database's clock: its time less
        this server's, in seconds."""
        self._clock_listeners.call(offset)

    def failed(self, error: StorageFailed) -> None:
        """Called by the store, once, when it fails for good (on the event loop)."""
        self._failure_listeners.call(error)

    def subscribe(self, run_id: str) -> Subscription:
        subscription = Subscription(self, run_id)
        self._subscribers[run_id].add(subscription)
        return subscription

    def publish(self, events: Sequence[Event], born: Mapping[str, float]) -> None:
        """Hand committed `events` to their runs' subscribers; `born` has the `created_at` of
        each run they are of. A run missing from it (unknown: its id named two runs in one
        commit) has its subscribers re-read the store instead."""
        by_run: defaultdict[str, list[Event]] = defaultdict(list)
        for event in events:
            if event.run_id in self._subscribers:
                by_run[event.run_id].append(event)
        for run_id, run_events in by_run.items():
            created = born.get(run_id)
            if created is None:
                self.nudge(run_id)
                continue
            size = sum(map(_event_size, run_events))
            for subscription in self._subscribers.get(run_id, ()):
                subscription._push(run_events, size, created)
        if events and self._listeners.all:
            self._listeners.call(events)

    def watching(self, run_id: str) -> bool:
        """True if some subscription follows `run_id`."""
        return run_id in self._subscribers

    def subscribers(self, run_id: str) -> int:
        """How many subscriptions follow `run_id`."""
        subscribers = self._subscribers.get(run_id)
        return 0 if subscribers is None else len(subscribers)

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


def _event_size(event: Event) -> int:
    """The bytes of an event's JSON values (its data, its step's, its progress item's), about:
    what a subscription holding it pins."""
    step, progress = event.step, event.progress
    values = [event.data]
    if step is not None:
        values += [step.payload, step.output, step.suspend_payload]
    if progress is not None:
        values.append(progress.iteration_output)
    try:
        return sum(limits.json_size(value) for value in values if value is not None)
    except (TypeError, ValueError):  # not JSON data: the store refused it before it got here
        return 0
