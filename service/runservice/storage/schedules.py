"""Stored cron schedules and fired ticks: the types both stores share, and the one decision
each store makes inside its tick transaction (`decide`).

Tables (migrate_v5.sql, postgres_v3.sql): `schedules` holds each schedule's definition,
its paused flag and where it stands (next tick, last tick, the tick buffered by
`buffer_one`, the last run it started); `schedule_ticks` records every tick that was
fired or skipped, keyed by (schedule id, tick time), with the run it started.
`schedules.declared_at` (migrate_v18.sql, postgres_v16.sql) is when a server last declared the
schedule: replicas renew it, and prune only what nobody renewed for a lease (engine/schedules.py).

Exactly once: a cron tick is claimed by a conditional change of `next_tick` (it applies
only while `next_tick` is still the tick being fired, under the schedule row's lock), and
the tick's record, its run (whose id is derived from the schedule and the tick) and the
new `next_tick` commit in the same transaction. A replica that comes second finds
`next_tick` moved on and does nothing; a crash before the commit leaves nothing behind.

Idempotent triggers: a TriggerSchedule with a request id remembers its outcome (started,
skipped or buffered; its tick, its run, the active run) in `schedule_triggers`, keyed by
(schedule id, request id), in the same transaction. The record outlives the run, so a
retry after the run was deleted still fires nothing. A retry finds the record, before or
inside the transaction, and gets the first outcome back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import orjson

from runservice.errors import RunUnreadable
from runservice.model import Json, RunStatus
from runservice.storage import RunWrite, WriteResult
from runservice.storage.rows import stored_status

TickKind = Literal["cron", "trigger", "buffered", "missed"]
"""Why a tick fires: its cron time came, TriggerSchedule, the tick `buffer_one` kept, or the
missed tick `run_once` fires."""
Outcome = Literal["started", "skipped", "buffered", "advanced", "lost", "repeated", "waiting", "run_id_taken"]

BUSY = frozenset({RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING, RunStatus.SUSPENDED})
"""Statuses of a run that is still in progress, for the overlap policy."""


@dataclass(frozen=True, slots=True)
class ScheduleDefinition:
    """A schedule as declared (code or configuration); `next_tick` is its first tick from now."""

    schedule_id: str
    workflow_id: str
    cron: str
    timezone: str
    input: Json
    resource_id: str | None
    overlap: str
    missed: str
    description: str
    next_tick: float


@dataclass(frozen=True, slots=True)
class StoredSchedule:
    """A schedule as stored: its definition and where it stands."""

    schedule_id: str
    workflow_id: str
    cron: str
    timezone: str
    input: Json
    resource_id: str | None
    overlap: str
    missed: str
    description: str
    paused: bool
    next_tick: float | None
    """When the next cron tick is due (seconds since the epoch)."""
    last_tick: float | None
    """The last tick that fired (cron, buffered, missed or trigger)."""
    pending_tick: float | None
    """A tick `buffer_one` keeps until the active run ends."""
    last_run_id: str | None
    """The last run the schedule started."""
    created_at: float
    updated_at: float

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> StoredSchedule:
        """A row of `SCHEDULE_COLUMNS` (either store: input is JSON text or bytes)."""
        return cls(
            schedule_id=row[0],
            workflow_id=row[1],
            cron=row[2],
            timezone=row[3],
            input=None if row[4] is None else orjson.loads(row[4]),
            resource_id=row[5],
            overlap=row[6],
            missed=row[7],
            description=row[8],
            paused=bool(row[9]),
            next_tick=row[10],
            last_tick=row[11],
            pending_tick=row[12],
            last_run_id=row[13],
            created_at=row[14],
            updated_at=row[15],
        )


SCHEDULE_COLUMNS = (
    "schedule_id, workflow_id, cron, timezone, input, resource_id, overlap, missed, description,"
    " paused, next_tick, last_tick, pending_tick, last_run_id, created_at, updated_at"
)
"""The columns `StoredSchedule.from_row` reads, in its order."""


def restore_values(
    schedule: StoredSchedule, encode: Callable[[Json], object], now: float
) -> tuple[object, ...]:
    """The values of `SCHEDULE_COLUMNS` and then `declared_at` of `schedule`, to insert it again
    as it stood, declared and updated `now` (`encode`: its input as the store keeps JSON)."""
    values = {f.name: getattr(schedule, f.name) for f in fields(StoredSchedule)}
    values["input"] = None if schedule.input is None else encode(schedule.input)
    values["updated_at"] = now
    return (*values.values(), now)


@dataclass(frozen=True, slots=True)
class TickFire:
    """Fire one tick of a schedule (see `Store.fire_tick`).

    - `kind` "cron" or "missed": applies only while the schedule is not paused and its
      `next_tick` is still `expect_next`; `next_tick` becomes `advance_to` whatever happens
      to the tick. "buffered": applies only while `pending_tick` is `tick`. "trigger": any time.
    - `start`: the write that creates the run (None: only advance `next_tick`, the tick
      itself is not fired: the `skip` policy for missed ticks).
    - The overlap policy is checked in the transaction against the schedule's last run.
    - `request`: the request id of a trigger with an idempotency key: if the schedule has a
      record under it the tick does nothing ("repeated"), else its outcome is stored there
      (see `TriggerRecord`).
    """

    schedule_id: str
    tick: float
    kind: TickKind
    start: RunWrite | None
    expect_next: float | None = None
    advance_to: float | None = None
    request: str | None = None


@dataclass(frozen=True, slots=True)
class TickResult:
    """What a `fire_tick` did.

    `outcome`: "started" (the run was created: `write` is its result), "skipped" (a run of the
    schedule is active and the policy is `skip`, or a tick is already buffered), "buffered"
    (kept for when the active run ends), "advanced" (only `next_tick` moved), "lost" (another
    replica fired this tick first, or the schedule was paused, changed or removed meanwhile),
    "repeated" (a trigger whose request was already recorded: nothing done, read the record),
    "waiting" (a buffered tick whose schedule's run is still active: it waits on, nothing done),
    "run_id_taken" (the tick's run id, which anyone can derive, is held by a run a caller made
    before the tick: nothing started; the tick is recorded with this outcome and no run, and the
    schedule moves past it as past a tick that fired: the id stays taken, so trying the tick
    again could never succeed).
    `active_run_id` is the run that caused a skip or a buffer. `held`: lost because another
    transaction held the schedule's row (PostgreSQL; most often a replica firing the same tick).
    """

    outcome: Outcome
    write: WriteResult | None = None
    active_run_id: str | None = None
    held: bool = False


@dataclass(frozen=True, slots=True)
class TriggerRecord:
    """The first outcome of a trigger with a request id, as a retry returns it."""

    outcome: Outcome
    tick: float
    run_id: str | None
    active_run_id: str | None


LEGACY_TRIGGER_KIND = "trigger "
"""Before `schedule_triggers` (SQLite schema 12, PostgreSQL 10) a trigger's first outcome was a
`requests` row: its `run_id` a key derived from (schedule id, request id), its `kind` this
prefix then the record as JSON. Such rows are still read, so a retry of a trigger made before
an upgrade fires nothing again (audit: the migration copied none of them)."""


def legacy_trigger_record(kind: str) -> TriggerRecord | None:
    """The record a `requests.kind` of `LEGACY_TRIGGER_KIND` holds, or None if it holds none."""
    if not kind.startswith(LEGACY_TRIGGER_KIND):
        return None
    try:
        fields = orjson.loads(kind[len(LEGACY_TRIGGER_KIND) :])
        outcome = fields["outcome"]
        if outcome not in ("started", "skipped", "buffered"):
            return None
        return TriggerRecord(
            outcome, float(fields["tick"]), fields.get("run_id"), fields.get("active_run_id")
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def trigger_record(
    fire: TickFire, outcome: Outcome, active_run_id: str | None
) -> tuple[str, str, str, float, str | None, str | None] | None:
    """The `schedule_triggers` row (schedule id, request id, outcome, tick, run id, active run
    id) remembering this trigger's outcome, if it has a request id and the outcome is one a
    caller sees."""
    if fire.request is None or outcome not in ("started", "skipped", "buffered"):
        return None
    run_id = fire.start.run_id if outcome == "started" and fire.start is not None else None
    return fire.schedule_id, fire.request, outcome, fire.tick, run_id, None if run_id else active_run_id


@dataclass(frozen=True, slots=True)
class Decision:
    """What the tick transaction does, decided from the row it locked."""

    outcome: Outcome
    next_tick: float | None
    pending_tick: float | None
    record: bool
    """Insert the tick's record (started or skipped)."""


def last_run_status(run_id: str, text: str | None) -> RunStatus | None:
    """The status of a schedule's last run, for its overlap policy: None when it is gone, or
    when its status is one this code does not know (logged): no server drives such a run, so it
    holds no tick up."""
    try:
        return stored_status(run_id, text)
    except RunUnreadable:
        return None


def decide(
    fire: TickFire,
    *,
    paused: bool,
    next_tick: float | None,
    pending_tick: float | None,
    overlap: str,
    last_run_status: RunStatus | None,
) -> Decision:
    """The one policy decision of a tick, taken on the locked schedule row by both stores."""
    if fire.kind in ("cron", "missed"):
        if paused or next_tick != fire.expect_next:
            return Decision("lost", next_tick, pending_tick, record=False)
        next_tick = fire.advance_to
    elif fire.kind == "buffered" and (paused or pending_tick != fire.tick):
        return Decision("lost", next_tick, pending_tick, record=False)
    if fire.start is None:
        return Decision("advanced", next_tick, pending_tick, record=False)
    busy = last_run_status in BUSY
    if busy and overlap != "allow":
        if fire.kind == "buffered":  # still busy: the buffered tick waits on (no tick fired)
            return Decision("waiting", next_tick, pending_tick, record=False)
        if overlap == "buffer_one" and pending_tick is None:
            return Decision("buffered", next_tick, fire.tick, record=False)
        return Decision("skipped", next_tick, pending_tick, record=True)
    if fire.kind == "buffered":
        pending_tick = None
    return Decision("started", next_tick, pending_tick, record=True)


__all__ = [
    "BUSY",
    "SCHEDULE_COLUMNS",
    "Decision",
    "ScheduleDefinition",
    "StoredSchedule",
    "TickFire",
    "TickKind",
    "TickResult",
    "TriggerRecord",
    "decide",
    "restore_values",
    "trigger_record",
]
