"""Every committed event with what is known of its run, for metrics and traces.

The store's hub hands over each batch of committed events (`EventHub.listen`), so
what metrics and spans describe is what was committed (a process crash keeps it; on SQLite a
power loss may take back a run's last progress no caller or watcher was told of yet, which
the durability rule allows, and its counts with it), and the engine does nothing for them.
An event names only its run; the run's workflow (and, for traces, its trace id and request
context) comes from the WORKFLOW_START event when that suffices, else from
one read of the run, done in a task while that run's events wait in order. A run is
forgotten when it settles (WORKFLOW_FINISH), or when the engine lets it go to another
replica or leaves it to the claim loops (`EventHub.released`), so the index holds only the
runs driven here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from runservice.engine.failures import log_failure
from runservice.model import Event, EventType, Json, Run
from runservice.storage import Store

logger = logging.getLogger(__name__)


_COPIED = frozenset({EventType.STEP_RESULT, EventType.STEP_SUSPENDED})


class RunInfo:
    """What handlers know of an event's run. `run` is the stored run when it was read.

    `execution` says what the latest WORKFLOW_START began (set before handlers see it):
    `start` (the run's first), `resume`, `deadline` (a nested workflow's deadline woke the
    suspended run), `time_travel` (a TimeTravel of this run) or `fork` (the first execution
    of a run ForkRun made), as the event's `cause` says. Events stored before causes were
    have none: then the TIME_TRAVEL event just before tells the last two apart from a resume.

    A fork's log copies the kept records (STEP_RESULT, STEP_SUSPENDED) between its TIME_TRAVEL
    and its WORKFLOW_START: `note` says they are copies, and handlers do not see them (they
    were counted as steps run again, in a bogus execution's span: audit).
    """

    __slots__ = ("_travel", "claimed", "execution", "run", "run_id", "workflow_id")

    def __init__(self, run_id: str, workflow_id: str, run: Run | None = None) -> None:
        self.run_id = run_id
        self.workflow_id = workflow_id
        self.run = run
        self.execution = "start"
        self._travel: str | None = None
        self.claimed = False
        """The run was first seen here mid-way, just after its latest WORKFLOW_START (read from
        the store, as `execution` says): a claim loop drives that execution from its start,
        which was committed unseen here (by another replica, or left to the claim loops here)."""

    def note(self, event: Event) -> bool:
        """Follow the run's events (each, before the handlers see it) for `execution`; False
        for a record a fork copied (nothing ran)."""
        if event.type is EventType.TIME_TRAVEL:
            forked = isinstance(event.data, dict) and event.data.get("forked_from") is not None
            self._travel = "fork" if forked else "time_travel"
        elif event.type is EventType.WORKFLOW_START:
            if event.cause is not None:
                self.execution = event.cause.value
            else:
                self.execution = self._travel or ("start" if event.sequence == 1 else "resume")
            self._travel = None
        elif self._travel is not None and event.type in _COPIED:
            return False
        return True

    @property
    def trace_id(self) -> str:
        return self.run.trace_id if self.run is not None else ""

    @property
    def request_context(self) -> dict[str, Json]:
        return self.run.request_context if self.run is not None else {}


EventHandler = Callable[[RunInfo, Event], None]
ReleaseHandler = Callable[[str, bool], None]
"""Called with a run this process let go, and whether it left it unowned (see
`EventHub.released`): its finish will not be seen here."""

UNKNOWN_WORKFLOW = "unknown"
"""The workflow label of a run that was deleted before it could be read."""


class CommittedEvents:
    """Feeds `handlers` every committed event of `store`, in each run's order.

    `read_runs`: read the run at each (re)start too, not only for runs first seen
    mid-way (tracing needs the stored trace id and request context).
    """

    def __init__(
        self,
        store: Store,
        handlers: Sequence[EventHandler],
        *,
        read_runs: bool = False,
        releases: Sequence[ReleaseHandler] = (),
    ) -> None:
        self._store = store
        self._handlers = tuple(handlers)
        self._releases = tuple(releases)
        self._read_runs = read_runs
        self._runs: dict[str, RunInfo] = {}
        self._waiting: dict[str, list[Event]] = {}
        """Events of runs being read, in order; dispatched once the read is done."""
        self._let_go: dict[str, tuple[int, bool]] = {}
        """Runs released while their read was in flight: how many of their waiting events came
        before the release (handed over, then the run is forgotten) and whether it was left unowned."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop: list[Callable[[], None]] = []

    def start(self) -> None:
        if not self._stop:
            self._stop = [
                self._store.hub.listen(self._on_events),
                self._store.hub.listen_releases(self._on_release),
            ]

    async def stop(self) -> None:
        """Stop listening and cancel the reads in flight (their events are dropped)."""
        for stop in self._stop:
            stop()
        self._stop = []
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        # gather, not `suppress(CancelledError)` around each await: that would also swallow a
        # cancellation of this caller.
        await asyncio.gather(*tasks, return_exceptions=True)

    def _on_events(self, events: Sequence[Event]) -> None:
        for event in events:
            run_id = event.run_id
            waiting = self._waiting.get(run_id)
            if waiting is not None:
                waiting.append(event)
                continue
            info = self._runs.get(run_id)
            if info is None:
                if (
                    event.type is EventType.WORKFLOW_START
                    and not self._read_runs
                    and isinstance(event.data, str)
                ):
                    info = self._runs[run_id] = RunInfo(run_id, event.data)
                else:
                    self._waiting[run_id] = [event]
                    task = asyncio.get_running_loop().create_task(
                        self._read(run_id), name=f"read run {run_id}"
                    )
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                    continue
            self._dispatch(info, event)

    async def _read(self, run_id: str) -> None:
        run: Run | None = None
        start: Event | None = None
        try:
            run = await self._store.get_run(run_id)
            seen = self._waiting[run_id][0]
            if self._read_runs and run is not None and seen.type is not EventType.WORKFLOW_START:
                start = await self._start_just_before(seen)
        except Exception:  # the events still count, under an unknown workflow
            log_failure(logger, "reading run %s for metrics and traces failed", run_id)
        events = self._waiting.pop(run_id, [])
        if run is not None:
            info = RunInfo(run_id, run.workflow_id, run)
        else:
            first = events[0] if events else None
            workflow = first.data if first and isinstance(first.data, str) else UNKNOWN_WORKFLOW
            info = RunInfo(run_id, workflow)
        if start is not None:
            info.note(start)
            info.claimed = True
        self._runs[run_id] = info
        let_go = self._let_go.pop(run_id, None)
        if let_go is None:
            for event in events:
                self._dispatch(info, event)
            return
        # Released meanwhile: what came before the release is of the execution it let go; what
        # came after (this process's claim loop took the run at once) is a drive seen anew.
        before, unowned = let_go
        for event in events[:before]:
            self._dispatch(info, event)
        self._forget(run_id, unowned)
        if events[before:]:
            self._on_events(events[before:])

    async def _start_just_before(self, event: Event) -> Event | None:
        """The WORKFLOW_START just before `event` in its run's log, if that is what it is: the
        drive seen from `event` on is that execution's from its start, not a recovery of it."""
        if event.sequence < 2:
            return None
        previous = await self._store.read_events(event.run_id, event.sequence - 2, limit=1)
        if previous and previous[0].type is EventType.WORKFLOW_START:
            return previous[0]
        return None

    def _on_release(self, run_id: str, unowned: bool) -> None:
        """The engine let the run go (see `EventHub.released`): it finishes elsewhere, or in a
        drive this process follows anew, unseen from here. What is kept for it goes (after the
        events its read holds back), and the release handlers hear of it. Before, each run taken
        over stayed here for the life of the process, and so did each run left unowned (audit)."""
        waiting = self._waiting.get(run_id)
        if waiting is not None:
            self._let_go[run_id] = (len(waiting), unowned)
        else:
            self._forget(run_id, unowned)

    def _forget(self, run_id: str, unowned: bool) -> None:
        if self._runs.pop(run_id, None) is None:
            return
        for release in self._releases:
            try:
                release(run_id, unowned)
            except Exception:
                logger.exception("a release handler failed on run %s", run_id)

    def _dispatch(self, info: RunInfo, event: Event) -> None:
        if not info.note(event):
            return
        for handler in self._handlers:
            try:
                handler(info, event)
            except Exception:
                logger.exception("an event handler failed on run %s", info.run_id)
        if event.type is EventType.WORKFLOW_FINISH:
            self._runs.pop(info.run_id, None)


__all__ = ["UNKNOWN_WORKFLOW", "CommittedEvents", "EventHandler", "ReleaseHandler", "RunInfo"]
