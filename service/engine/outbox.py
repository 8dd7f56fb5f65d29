"""Per-run staging of writes, so adjacent changes share one commit.

A driver stages step records, events and run fields as they happen and commits
them before anything irreversible: before a step body runs (so a body never runs
unless every earlier result is durable) and when the run settles. A step's result
and the next step's start therefore land in one transaction.
"""

from __future__ import annotations

import asyncio
from typing import Any

from service.model import Event, EventDraft, RunStatus, StepRecord
from service.storage import RunWrite, Store


class Outbox:
    """Staged writes of one run, committed in order, one commit at a time."""

    def __init__(self, store: Store, run_id: str) -> None:
        self._store = store
        self._run_id = run_id
        self._steps: dict[tuple[str, ...], StepRecord] = {}
        self._events: list[EventDraft] = []
        self._patch: dict[str, Any] = {}
        self._lock = asyncio.Lock()
        self.last_sequence = 0

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

    async def commit(self) -> tuple[Event, ...]:
        """Write everything staged so far; returns once durable."""
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
