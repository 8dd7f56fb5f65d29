"""Per-run staging of writes, so adjacent changes share one commit.

A driver stages step records, events and run fields as they happen and commits
them before anything irreversible: before a step body runs, if a result is staged
(so a body never runs unless every earlier result is durable), and when the run
settles. A step's start alone does not force a commit: it rides with the step's
result, or is flushed in the background at most `START_FLUSH_DELAY` after it was staged,
so a long step still shows as running while a quick one costs a single commit.
"""

from __future__ import annotations

import asyncio
from typing import Any

from runservice.model import Event, EventDraft, EventType, RunStatus, StepRecord
from runservice.storage import RunWrite, Store

START_FLUSH_DELAY = 0.05
"""Seconds a step may run before its start is committed on its own."""


class Outbox:
    """Staged writes of one run, committed in order, one commit at a time."""

    def __init__(self, store: Store, run_id: str, loop: asyncio.AbstractEventLoop) -> None:
        self._store = store
        self._loop = loop
        self._run_id = run_id
        self._steps: dict[tuple[str, ...], StepRecord] = {}
        self._events: list[EventDraft] = []
        self._patch: dict[str, Any] = {}
        self._lock = asyncio.Lock()
        self.last_sequence = 0
        self._timer: asyncio.TimerHandle | None = None
        self._flusher: asyncio.Task[tuple[Event, ...]] | None = None

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
        self._patch.update(patch)

    def event(self, type_: Any, status: RunStatus, step: StepRecord | None = None, **fields: Any) -> None:
        """Stage an event (and the step record it carries)."""
        self.stage(step=step, event=EventDraft(type=type_, run_status=status, step=step, **fields))

    async def before_body(self, *, concurrent: bool = False) -> None:
        """Make every staged result durable; a staged start alone is flushed later.

        `concurrent`: sibling branches run alongside this body; yield once so each
        stages its start before any body runs, and the log shows every branch starting
        before the first result (Mastra's order).
        """
        if self._patch or any(event.type is not EventType.STEP_START for event in self._events):
            await self.commit()
        elif self._events:
            if self._timer is None:
                self._timer = self._loop.call_later(START_FLUSH_DELAY, self._flush_later)
            if concurrent:
                await asyncio.sleep(0)

    def _flush_later(self) -> None:
        self._timer = None
        if self._flusher is None or self._flusher.done():
            self._flusher = self._loop.create_task(self.commit())

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
            if not (self._steps or self._events or self._patch):
                return ()
            change = RunWrite(
                run_id=self._run_id,
                patch=self._patch,
                steps=tuple(self._steps.values()),
                events=tuple(self._events),
            )
            self._steps, self._events, self._patch = {}, [], {}
            result = await self._store.write(change)
            if result.events:
                self.last_sequence = result.events[-1].sequence
            return result.events
