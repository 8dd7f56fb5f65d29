"""Every committed event with what is known of its run, for metrics and traces.

The store's hub hands over each batch of committed events (`EventHub.listen`), so
what metrics and spans describe is what is durable, and the engine does nothing for
them. An event names only its run; the run's workflow (and, for traces, its trace id
and request context) comes from the WORKFLOW_START event when that suffices, else from
one read of the run, done in a task while that run's events wait in order. A run is
forgotten when it settles (WORKFLOW_FINISH), or when the engine lets it go to another
replica (`EventHub.released`), so the index holds only the runs active here.
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

    __slots__ = ("_travel", "execution", "run", "run_id", "workflow_id")

    def __init__(self, run_id: str, workflow_id: str, run: Run | None = None) -> None:
        self.run_id = run_id
        self.workflow_id = workflow_id
        self.run = run
        self.execution = "start"
        self._travel: str | None = None

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
ReleaseHandler = Callable[[str], None]
"""Called with a run this process let go to another replica: its finish will not be seen here."""

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
        self._let_go: set[str] = set()
        """Runs released while their read was in flight: forgotten once its events are handed over."""
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
        try:
            run = await self._store.get_run(run_id)
        except Exception:  # the events still count, under an unknown workflow
            log_failure(logger, "reading run %s for metrics and traces failed", run_id)
        events = self._waiting.pop(run_id, [])
        if run is not None:
            info = RunInfo(run_id, run.workflow_id, run)
        else:
            first = events[0] if events else None
            workflow = first.data if first and isinstance(first.data, str) else UNKNOWN_WORKFLOW
            info = RunInfo(run_id, workflow)
        self._runs[run_id] = info
        for event in events:
            self._dispatch(info, event)
        if run_id in self._let_go:
            self._let_go.discard(run_id)
            self._forget(run_id)

    def _on_release(self, run_id: str) -> None:
        """The engine let the run go to another replica: it finishes there, unseen here. What
        is kept for it goes (after the events its read holds back), and the release handlers
        hear of it. Before, each run taken over stayed here for the life of the process."""
        if run_id in self._waiting:
            self._let_go.add(run_id)
        else:
            self._forget(run_id)

    def _forget(self, run_id: str) -> None:
        if self._runs.pop(run_id, None) is None:
            return
        for release in self._releases:
            try:
                release(run_id)
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
