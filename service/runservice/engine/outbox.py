"""Per-run staging of writes, so adjacent changes share one commit.

A driver stages step records, events and run fields as they happen and commits
them before anything irreversible: before a step body runs, if a result is staged
(so a body never runs unless every earlier result is durable), and when the run
settles. A step's start alone does not force a commit: it rides with the step's
result, or is flushed in the background at most `START_FLUSH_DELAY` after it was staged,
so a long step still shows as running while a quick one costs a single commit.

Step records and events are staged separately: an event names the step it is about
but never replaces the step's stored record (a foreach progress event carries only
the item, and must not overwrite the record that holds every item's state).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any

from runservice.engine.leases import LeaseLost
from runservice.errors import StorageUnavailable
from runservice.model import Event, EventDraft, EventType, ForeachItem, RunStatus, StepPath, StepRecord
from runservice.storage import Lease, RunWrite, Store

logger = logging.getLogger(__name__)

START_FLUSH_DELAY = 0.05
"""Seconds a step may run before its start is committed on its own."""

DRIVE_ENDINGS = (LeaseLost, StorageUnavailable)
"""Failures of a commit that end the drive rather than fail the run (see Engine._drive)."""

IN_CONCURRENT_BLOCK: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "runservice_in_concurrent_block", default=False
)
"""True inside the branch tasks of a parallel, branch or foreach block (tasks copy it)."""


class Outbox:
    """Staged writes of one run, committed in order, one commit at a time, each fenced by
    the run's lease (a commit after the lease was lost raises `LeaseLost`)."""

    def __init__(
        self, store: Store, run_id: str, loop: asyncio.AbstractEventLoop, lease: Lease | None = None
    ) -> None:
        self._store = store
        self._lease = lease
        self._release = False
        self._loop = loop
        self._run_id = run_id
        self._steps: dict[tuple[str, ...], StepRecord] = {}
        self._items: dict[tuple[StepPath, int], ForeachItem] = {}
        self._cleared: list[StepPath] = []
        self._dropped: list[StepPath] = []
        self._events: list[EventDraft] = []
        self._results = False
        """Whether an event other than a step's start is staged: kept as events are staged, not
        looked for, since a parallel of W branches stages W starts before its first body runs."""
        self._patch: dict[str, Any] = {}
        self._lock = asyncio.Lock()
        self.last_sequence = 0
        self._timer: asyncio.TimerHandle | None = None
        self._flusher: asyncio.Task[tuple[Event, ...]] | None = None
        self._flush_error: BaseException | None = None
        self._requests: tuple[tuple[str, str], ...] = ()

    def stage(
        self,
        *,
        step: StepRecord | None = None,
        event: EventDraft | None = None,
        **patch: Any,
    ) -> None:
        if step is not None:
            self._steps[step.path] = step
        if event is not None:
            self._events.append(event)
            self._results = self._results or event.type is not EventType.STEP_START
        self._patch.update(patch)

    def stage_item(self, path: StepPath, item: ForeachItem) -> None:
        """Stage one foreach item's state: a row of its own, not its step's whole record."""
        self._items[(path, item.index)] = item

    def clear_items(self, path: StepPath) -> None:
        """Delete the stored items of a foreach step that starts over (with the next commit)."""
        self._items = {key: item for key, item in self._items.items() if key[0] != path}
        self._cleared.append(path)

    def drop_steps(self, paths: list[StepPath]) -> None:
        """Delete these step records (and their items) with the next commit; a record of
        one of them staged but not yet written is not written at all."""
        gone = set(paths)
        self._steps = {path: step for path, step in self._steps.items() if path not in gone}
        self._items = {key: item for key, item in self._items.items() if key[0] not in gone}
        self._dropped.extend(paths)

    def release(self) -> None:
        """Give up the run's lease with the next commit (the run settles)."""
        self._release = True

    def remember(self, kind: str, request_id: str) -> None:
        """Commit this idempotency key with the next write (see `RunWrite.requests`)."""
        self._requests = ((kind, request_id),)

    def event(self, type_: Any, status: RunStatus, step: StepRecord | None = None, **fields: Any) -> None:
        """Stage an event about `step`; the step's stored record is not touched."""
        self._events.append(EventDraft(type=type_, run_status=status, step=step, **fields))
        self._results = self._results or type_ is not EventType.STEP_START

    async def before_body(self) -> None:
        """Make every staged result durable; a staged start alone is flushed later.

        Inside a concurrent block, yield once so every sibling stages its start before
        any body runs, and the log shows every branch starting before the first result
        (Mastra's order).
        """
        if self._patch or self._results:
            await self.commit()
        elif self._events:
            if self._timer is None:
                self._timer = self._loop.call_later(START_FLUSH_DELAY, self._flush_later)
            if IN_CONCURRENT_BLOCK.get():
                await asyncio.sleep(0)

    async def after_body(self) -> None:
        """Commit a result at once when sibling bodies are still running.

        A sequential result rides with the next step's start (`before_body` commits it
        before the next body runs); in a concurrent block nothing would commit it until
        the slowest sibling ends, and a crash meanwhile would run a finished body again.
        """
        if IN_CONCURRENT_BLOCK.get():
            await self.commit()

    def _flush_later(self) -> None:
        self._timer = None
        if self._flusher is None or self._flusher.done():
            self._flusher = self._loop.create_task(self.commit())
            self._flusher.add_done_callback(self._flushed)

    def _flushed(self, task: asyncio.Task[tuple[Event, ...]]) -> None:
        """A background flush that failed fails the run's next commit instead of vanishing."""
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            if not isinstance(error, DRIVE_ENDINGS):
                logger.error("run %s: background flush failed", self._run_id, exc_info=error)
            self._flush_error = error

    async def close(self) -> None:
        """Stop the background flush (the run has settled or is being stopped)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)

    async def commit(self) -> tuple[Event, ...]:
        """Write everything staged so far; returns once durable.

        A pending background flush stays armed: it finds nothing to write or writes the
        starts staged since, so a run of quick steps arms one timer, not one per step.
        """
        async with self._lock:
            if self._flush_error is not None:
                if isinstance(self._flush_error, DRIVE_ENDINGS):
                    raise self._flush_error  # the drive ends as on a commit of its own
                raise RuntimeError("an earlier background flush of this run failed") from self._flush_error
            if not (
                self._steps or self._events or self._patch or self._items or self._cleared or self._dropped
            ):
                return ()
            change = RunWrite(
                run_id=self._run_id,
                patch=self._patch,
                steps=tuple(self._steps.values()),
                events=tuple(self._events),
                requests=self._requests,
                fence=self._lease,
                release=self._release,
                items=tuple((path, item) for (path, _), item in self._items.items()),
                clear_items=tuple(self._cleared),
                drop_steps=tuple(self._dropped),
            )
            self._steps, self._events, self._patch, self._requests = {}, [], {}, ()
            self._results = False
            self._items, self._cleared, self._dropped = {}, [], []
            # Progress is internal until the run settles: only the settling commit (the
            # caller's reply, the watchers' last event) must be synced; it covers the rest.
            # A watched run's events are synced by the store before a watcher sees them.
            result = await self._store.write(change, durable=self._release)
            if not result.applied:
                raise LeaseLost(self._run_id)
            if result.events:
                self.last_sequence = result.events[-1].sequence
            return result.events
