"""Minimal `RunWrite`s of one run for the store-level durability tests (SQLite and PostgreSQL)."""

from __future__ import annotations

import time

from runservice.model import EventDraft, EventType, Json, Run, RunStatus
from runservice.storage import RunWrite


def new_run(run_id: str) -> RunWrite:
    """Create a running run of workflow "wf" with its start event."""
    run = Run(run_id=run_id, workflow_id="wf", status=RunStatus.RUNNING, created_at=1.0, updated_at=1.0)
    return RunWrite(run_id, create=run, events=(EventDraft(EventType.WORKFLOW_START, RunStatus.RUNNING),))


def progress(run_id: str) -> RunWrite:
    """One event of progress (a step starts)."""
    return RunWrite(run_id, events=(EventDraft(EventType.STEP_START, RunStatus.RUNNING),))


def finish(run_id: str) -> RunWrite:
    """Settle the run as a success, with its finish event."""
    return RunWrite(
        run_id,
        patch={"status": RunStatus.SUCCESS},
        events=(EventDraft(EventType.WORKFLOW_FINISH, RunStatus.SUCCESS),),
    )


def orphan(run_id: str, workflow_id: str, input_data: Json) -> RunWrite:
    """Create a run left `running` with nothing driving it, as a process that died leaves it."""
    now = time.time()
    run = Run(
        run_id=run_id,
        workflow_id=workflow_id,
        status=RunStatus.RUNNING,
        created_at=now,
        updated_at=now,
        input=input_data,
        state={},
        started_at=now,
    )
    return RunWrite(run_id, create=run)
