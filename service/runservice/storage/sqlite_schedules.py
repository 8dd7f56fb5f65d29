"""The SQLite store's cron schedules (`SqliteStore` inherits these methods).

Every change goes through the store's single writer, in its group-commit batches: a tick's
claim (the conditional move of `next_tick`), its record and its run's creation are one
change of one transaction (see storage/schedules.py).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson

from runservice.storage import WriteResult, batching
from runservice.storage.schedules import (
    SCHEDULE_COLUMNS,
    ScheduleDefinition,
    StoredSchedule,
    TickFire,
    TickResult,
    TriggerRecord,
    decide,
    last_run_status,
    legacy_trigger_record,
    restore_values,
    trigger_record,
)

if TYPE_CHECKING:
    from runservice.storage.hub import EventHub

_SELECT = f"SELECT {SCHEDULE_COLUMNS} FROM schedules"
_GONE_TICK = (  # a tick before the cutoff whose run is gone, or that started none
    "tick < ? AND (run_id IS NULL"
    " OR NOT EXISTS (SELECT 1 FROM runs WHERE runs.run_id = schedule_ticks.run_id))"
)
_OLD_TICKS = f"SELECT schedule_id, tick FROM schedule_ticks WHERE {_GONE_TICK} LIMIT ?"
_GONE_TRIGGER = (  # as for ticks: a retry of a trigger whose run is kept finds its record
    "created_at < ? AND (run_id IS NULL"
    " OR NOT EXISTS (SELECT 1 FROM runs WHERE runs.run_id = schedule_triggers.run_id))"
)
_OLD_TRIGGERS = f"SELECT schedule_id, request_id FROM schedule_triggers WHERE {_GONE_TRIGGER} LIMIT ?"
_FORGET_TICK = f"DELETE FROM schedule_ticks WHERE schedule_id = ? AND tick = ? AND {_GONE_TICK}"
_FORGET_TRIGGER = (
    f"DELETE FROM schedule_triggers WHERE schedule_id = ? AND request_id = ? AND {_GONE_TRIGGER}"
)
_UPSERT = (
    "INSERT INTO schedules (schedule_id, workflow_id, cron, timezone, input, resource_id, overlap,"
    " missed, description, paused, next_tick, created_at, updated_at, declared_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)"
    " ON CONFLICT (schedule_id) DO UPDATE SET workflow_id = excluded.workflow_id,"
    " input = excluded.input, resource_id = excluded.resource_id, overlap = excluded.overlap,"
    " missed = excluded.missed, description = excluded.description, updated_at = excluded.updated_at,"
    " declared_at = excluded.declared_at,"
    # Only `buffer_one` keeps a tick: one kept under it would fire at once under `allow`.
    " pending_tick = CASE WHEN excluded.overlap = 'buffer_one' THEN schedules.pending_tick END,"
    # A new cadence starts from now; the same cadence keeps its place (a missed tick stays due).
    " next_tick = CASE WHEN schedules.cron = excluded.cron AND schedules.timezone = excluded.timezone"
    " THEN schedules.next_tick ELSE excluded.next_tick END,"
    " cron = excluded.cron, timezone = excluded.timezone"
)
_RESTORE = (  # a declared schedule found missing (see the PostgreSQL store's)
    f"INSERT INTO schedules ({SCHEDULE_COLUMNS}, declared_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (schedule_id) DO NOTHING"
)


class SqliteSchedules:
    """Schedule methods of the SQLite store (see `Store`); they use the store's writer and readers."""

    hub: EventHub
    _submit: Callable[[Any], Awaitable[Any]]
    """Provided by SqliteStore: queue a change for the writer."""
    _reader: Callable[[], Any]
    """Provided by SqliteStore: a reader connection."""
    _point_rows: Callable[[str, Sequence[object]], list[Any]]
    """Provided by SqliteStore: the rows of a lookup by key, read on the event loop."""
    _sync_visible: Callable[[], Awaitable[None]]
    """Provided by SqliteStore: wait until what a read saw of the synced commits is durable."""

    async def _operation(self, apply: Any, runs: tuple[str, ...] = ()) -> Any:
        """Run `apply` in the writer's batch, synced: what a schedule call answers (a pause, a
        trigger's outcome) is told. `runs`: the run it may start (its reads wait for the sync)."""
        from runservice.storage.sqlite import _Operation  # the store module imports this one

        return await self._submit(_Operation(apply, durable=True, runs=runs, schedules=True))

    async def clock(self) -> float:
        """The database's time (see `Store.clock`): the one server's own clock."""
        return time.time()

    async def upsert_schedules(
        self,
        schedules: Sequence[ScheduleDefinition],
        *,
        prune: Sequence[str] = (),
        lapsed_before: float | None = None,
    ) -> list[str]:
        """Store the declared schedules (see `Store.upsert_schedules`)."""

        def apply(conn: sqlite3.Connection, now: float) -> list[str]:
            conn.executemany(
                _UPSERT,
                [
                    (
                        s.schedule_id,
                        s.workflow_id,
                        s.cron,
                        s.timezone,
                        None if s.input is None else orjson.dumps(s.input).decode(),
                        s.resource_id,
                        s.overlap,
                        s.missed,
                        s.description,
                        s.next_tick,
                        now,
                        now,
                        now,
                    )
                    for s in schedules
                ],
            )
            return _prune(conn, prune, [s.schedule_id for s in schedules], lapsed_before, now)

        pruned: list[str] = await self._operation(apply)
        return pruned

    async def refresh_schedules(
        self,
        declared: Sequence[StoredSchedule],
        *,
        prune: Sequence[str],
        lapsed_before: float,
        booted: float,
    ) -> tuple[list[str], list[str]]:
        """Refresh the declarations (see `Store.refresh_schedules`; the engine does not call it
        on this store, whose one server prunes at boot, but it does what PostgreSQL's does)."""
        ids = [s.schedule_id for s in declared]

        def apply(conn: sqlite3.Connection, now: float) -> tuple[list[str], list[str]]:
            found = {
                row[0]
                for row in conn.execute(
                    f"UPDATE schedules SET declared_at = ? WHERE schedule_id IN ({', '.join('?' * len(ids))})"
                    " RETURNING schedule_id",
                    [now, *ids],
                )
            }
            restored = []
            for s in declared:
                if s.schedule_id in found:
                    continue
                if conn.execute(
                    _RESTORE, restore_values(s, lambda value: orjson.dumps(value).decode(), now)
                ).rowcount:
                    restored.append(s.schedule_id)
            return restored, _prune(conn, prune, ids, lapsed_before, booted)

        done: tuple[list[str], list[str]] = await self._operation(apply)
        return done

    async def list_schedules(self) -> list[StoredSchedule]:
        """Every stored schedule, by id."""
        rows = await self._reader().execute_fetchall(f"{_SELECT} ORDER BY schedule_id")
        await self._sync_visible()
        return [StoredSchedule.from_row(row) for row in rows]

    async def get_schedule(self, schedule_id: str) -> StoredSchedule | None:
        """The schedule, or None."""
        rows = await self._reader().execute_fetchall(f"{_SELECT} WHERE schedule_id = ?", (schedule_id,))
        await self._sync_visible()
        return StoredSchedule.from_row(rows[0]) if rows else None

    async def set_schedule_paused(
        self, schedule_id: str, paused: bool, next_tick: float | None
    ) -> StoredSchedule | None:
        """Pause or resume a schedule (see `Store.set_schedule_paused`)."""

        def apply(conn: sqlite3.Connection, now: float) -> StoredSchedule | None:
            if paused:
                # The tick `buffer_one` kept is from before the pause, and a resumed schedule fires
                # from the next tick after now: it goes with the pause. Dropped here, not at the
                # resume: a paused schedule shows nothing pending, and a trigger buffered during the
                # pause (asked for then, and told `buffered`) still starts once resumed.
                sql = (
                    "UPDATE schedules SET paused = 1, pending_tick = NULL, updated_at = ?"
                    " WHERE schedule_id = ?"
                )
                params: tuple[object, ...] = (now, schedule_id)
            else:
                sql = (
                    "UPDATE schedules SET next_tick = CASE WHEN paused = 1 THEN ? ELSE next_tick END,"
                    " paused = 0, updated_at = ? WHERE schedule_id = ?"
                )
                params = (next_tick, now, schedule_id)
            row = conn.execute(f"{sql} RETURNING {SCHEDULE_COLUMNS}", params).fetchone()
            return None if row is None else StoredSchedule.from_row(row)

        found: StoredSchedule | None = await self._operation(apply)
        return found

    async def fire_tick(self, fire: TickFire) -> TickResult:
        """Claim a tick and create its run in one transaction (see `Store.fire_tick`)."""
        from runservice.storage.sqlite import _apply, _Rows

        def apply(conn: sqlite3.Connection, now: float) -> TickResult:
            row = conn.execute(
                "SELECT paused, next_tick, pending_tick, overlap, last_run_id FROM schedules"
                " WHERE schedule_id = ?",
                (fire.schedule_id,),
            ).fetchone()
            if row is None:
                return TickResult("lost")
            paused, next_tick, pending_tick, overlap, last_run_id = row
            if fire.request is not None and _recorded(conn, fire.schedule_id, fire.request):
                return TickResult("repeated")  # a retried trigger: its first outcome stands
            status = None
            if last_run_id is not None:
                found = conn.execute("SELECT status FROM runs WHERE run_id = ?", (last_run_id,)).fetchone()
                status = last_run_status(last_run_id, None if found is None else found[0])
            decision = decide(
                fire,
                paused=bool(paused),
                next_tick=next_tick,
                pending_tick=pending_tick,
                overlap=overlap,
                last_run_status=status,
            )
            if decision.outcome == "lost":
                return TickResult("lost")
            write: WriteResult | None = None
            run_id = None
            if decision.outcome == "started":
                assert fire.start is not None
                inserted = conn.execute(
                    "INSERT INTO schedule_ticks (schedule_id, tick, kind, outcome, run_id, fired_at)"
                    " VALUES (?, ?, ?, 'started', ?, ?) ON CONFLICT DO NOTHING",
                    (fire.schedule_id, fire.tick, fire.kind, fire.start.run_id, now),
                ).rowcount
                if not inserted:
                    # This tick fired already, yet the schedule still points at it (a resume or
                    # a changed cron computed from a clock behind the one that fired it): move
                    # on. Returning "lost" left it due for ever, trying the same tick again.
                    conn.execute(
                        "UPDATE schedules SET next_tick = ?, updated_at = ? WHERE schedule_id = ?",
                        (decision.next_tick, now, fire.schedule_id),
                    )
                    return TickResult("advanced")
                rows = _Rows(conn)
                outcome = _apply(conn, fire.start, now, rows)
                rows.flush()
                if isinstance(outcome, Exception):
                    raise outcome
                assert isinstance(outcome, WriteResult)
                if outcome.applied:
                    write, run_id = outcome, fire.start.run_id
                else:
                    # The tick never fired (its record was just made), yet its run id is taken:
                    # a caller chose it. Passed over, recorded without the run (not this tick's).
                    conn.execute(_TAKEN, (fire.schedule_id, fire.tick))
                    decision = replace(decision, outcome="run_id_taken")
            elif decision.record:
                conn.execute(
                    "INSERT INTO schedule_ticks (schedule_id, tick, kind, outcome, run_id, fired_at)"
                    " VALUES (?, ?, ?, 'skipped', NULL, ?) ON CONFLICT DO NOTHING",
                    (fire.schedule_id, fire.tick, fire.kind, now),
                )
            request = trigger_record(fire, decision.outcome, last_run_id)
            if request is not None:
                conn.execute(_INSERT_TRIGGER, (*request, now))
            conn.execute(
                "UPDATE schedules SET next_tick = ?, pending_tick = ?, updated_at = ?,"
                " last_tick = CASE WHEN ? IS NULL THEN last_tick ELSE ? END,"
                " last_run_id = coalesce(?, last_run_id) WHERE schedule_id = ?",
                (
                    decision.next_tick,
                    decision.pending_tick,
                    now,
                    run_id,
                    fire.tick,
                    run_id,
                    fire.schedule_id,
                ),
            )
            return TickResult(decision.outcome, write, None if run_id else last_run_id)

        result = await self._operation(
            _savepoint(apply), runs=(fire.start.run_id,) if fire.start is not None else ()
        )
        if isinstance(result, Exception):
            raise result
        assert isinstance(result, TickResult)
        if result.write is not None and result.write.events:
            # Operations' events are not published by the writer.
            self.hub.publish(list(result.write.events), batching.births([result.write]))
        self.hub.ticked(fire.schedule_id, fire.kind, result.outcome)
        return result

    async def schedule_origins(self, run_ids: Sequence[str]) -> dict[str, tuple[str, float]]:
        """(schedule id, tick) of each of these runs that a schedule started."""
        if not run_ids:
            return {}
        found: dict[str, tuple[str, float]] = {}
        ids = list(run_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            # Lookups by key in a unique index (GetRun asks on every call): on the loop.
            rows = self._point_rows(
                "SELECT run_id, schedule_id, tick FROM schedule_ticks"
                f" WHERE run_id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            found.update({run_id: (schedule_id, tick) for run_id, schedule_id, tick in rows})
        return found

    async def forget_schedule_history(self, cutoff: float, limit: int) -> int:
        """See `Store.forget_schedule_history`. Found on a reader (every old tick of a run still
        kept is read: off the event loop), removed by key on the writer, unsynced (a record a
        power loss brings back is forgotten at the next sweep)."""
        from runservice.storage.sqlite import _Operation  # the store module imports this one

        limit = max(limit, 0)
        ticks = await self._reader().execute_fetchall(_OLD_TICKS, (cutoff, limit))
        triggers = await self._reader().execute_fetchall(_OLD_TRIGGERS, (cutoff, limit))
        if not ticks and not triggers:
            return 0  # the usual case: no commit on the writer for nothing

        def apply(conn: sqlite3.Connection, now: float) -> int:
            forgotten = 0
            # Checked again: a run of that id may have been made since they were read.
            for schedule_id, tick in ticks:
                forgotten += conn.execute(_FORGET_TICK, (schedule_id, tick, cutoff)).rowcount
            for schedule_id, request_id in triggers:
                forgotten += conn.execute(_FORGET_TRIGGER, (schedule_id, request_id, cutoff)).rowcount
            return forgotten

        forgotten: int = await self._submit(_Operation(apply))
        return forgotten

    async def trigger_request(
        self, schedule_id: str, request_id: str, legacy_key: str | None = None
    ) -> TriggerRecord | None:
        """See `Store.trigger_request`."""
        rows = await self._reader().execute_fetchall(_FIND_TRIGGER, (schedule_id, request_id))
        await self._sync_visible()
        if rows:
            return TriggerRecord(*rows[0])
        if legacy_key is None:
            return None
        kinds = await self._reader().execute_fetchall(_FIND_LEGACY_TRIGGER, (legacy_key, request_id))
        return next(filter(None, (legacy_trigger_record(kind) for (kind,) in kinds)), None)


_FIND_TRIGGER = (
    "SELECT outcome, tick, run_id, active_run_id FROM schedule_triggers"
    " WHERE schedule_id = ? AND request_id = ?"
)
_FIND_LEGACY_TRIGGER = "SELECT kind FROM requests WHERE run_id = ? AND request_id = ?"
_TAKEN = (  # a tick whose run id was taken: passed over, without that run (not the tick's)
    "UPDATE schedule_ticks SET outcome = 'run_id_taken', run_id = NULL WHERE schedule_id = ? AND tick = ?"
)
_INSERT_TRIGGER = (
    "INSERT INTO schedule_triggers"
    " (schedule_id, request_id, outcome, tick, run_id, active_run_id, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def _prune(
    conn: sqlite3.Connection,
    prune: Sequence[str],
    kept: Sequence[str],
    lapsed_before: float | None,
    unmarked: float,
) -> list[str]:
    """Delete the schedules of the workflows `prune` that are not `kept`: all of them, or with
    `lapsed_before` only those last declared before it (a row never marked counts as declared
    at `unmarked`). Their ids."""
    if not prune:
        return []
    rows = conn.execute(
        f"DELETE FROM schedules WHERE workflow_id IN ({', '.join('?' * len(prune))})"
        f" AND schedule_id NOT IN ({', '.join('?' * len(kept))})"
        " AND (? IS NULL OR coalesce(declared_at, ?) < ?) RETURNING schedule_id",
        [*prune, *kept, lapsed_before, unmarked, lapsed_before],
    )
    return [row[0] for row in rows]


def _recorded(conn: sqlite3.Connection, schedule_id: str, request_id: str) -> bool:
    return conn.execute(_FIND_TRIGGER, (schedule_id, request_id)).fetchone() is not None


def _savepoint(apply: Any) -> Any:
    """`apply` inside a savepoint, so a tick that turns out lost half-way leaves nothing.

    Only a database error may leave an operation (the batch then retries change by change);
    any other failure is returned, to be raised to the caller alone.
    """

    def wrapped(conn: sqlite3.Connection, now: float) -> Any:
        conn.execute("SAVEPOINT tick")
        try:
            result = apply(conn, now)
        except sqlite3.Error:
            conn.execute("ROLLBACK TO tick")
            conn.execute("RELEASE tick")
            raise
        except Exception as exc:
            result = exc
        if not isinstance(result, TickResult) or result.outcome == "lost":
            conn.execute("ROLLBACK TO tick")
        conn.execute("RELEASE tick")
        return result

    return wrapped
