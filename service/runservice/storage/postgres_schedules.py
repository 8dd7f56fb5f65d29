"""The PostgreSQL store's cron schedules (`PostgresStore` inherits these methods).

A tick is fired in its own transaction on a pool connection: the schedule row is locked
with `FOR UPDATE SKIP LOCKED` (a replica that finds it locked leaves the tick to the one
holding it), the decision is taken on what the lock protects (storage/schedules.py), and
the tick's record, its run (with the same statements as the writer's batches) and the
schedule's new position commit together. The run's events are announced with the same
NOTIFY as every other commit.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson

from runservice.storage import WriteResult, batching
from runservice.storage.postgres_writes import _apply_all
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
_UPSERT = (
    "INSERT INTO schedules (schedule_id, workflow_id, cron, timezone, input, resource_id, overlap,"
    " missed, description, paused, next_tick, created_at, updated_at, declared_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, false, $10, $11, $11, $11)"
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
_PRUNE = (
    "DELETE FROM schedules WHERE workflow_id = ANY($1::text[]) AND NOT schedule_id = ANY($2::text[])"
    # A row never marked (NULL: stored before `declared_at`, or by an older replica) counts as
    # declared at $4: it may be an older replica's, which never refreshes it.
    " AND ($3::double precision IS NULL OR coalesce(declared_at, $4) < $3) RETURNING schedule_id"
)
_CLOCK = "SELECT extract(epoch from clock_timestamp())::double precision"
_REFRESH = "UPDATE schedules SET declared_at = $1 WHERE schedule_id = ANY($2::text[]) RETURNING schedule_id"
_RESTORE = (  # a declared schedule another replica deleted; the first replica to restore it wins
    f"INSERT INTO schedules ({SCHEDULE_COLUMNS}, declared_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    " ON CONFLICT (schedule_id) DO NOTHING RETURNING 1"
)


class PostgresSchedules:
    """Schedule methods of the PostgreSQL store (see `Store`); they use the store's reader pool."""

    hub: EventHub
    notify: bool
    _readers: Any
    """Provided by PostgresStore: the connection pool."""

    async def clock(self) -> float:
        """The database server's time (see `Store.clock`)."""
        now: float = await self._readers().fetchval(_CLOCK)
        return now

    async def upsert_schedules(
        self,
        schedules: Sequence[ScheduleDefinition],
        *,
        prune: Sequence[str] = (),
        lapsed_before: float | None = None,
    ) -> list[str]:
        """Store the declared schedules (see `Store.upsert_schedules`)."""
        async with self._transaction() as conn:
            now = await conn.fetchval(_CLOCK)  # declared_at: on the clock every replica reads
            await conn.executemany(
                _UPSERT,
                [
                    (
                        s.schedule_id,
                        s.workflow_id,
                        s.cron,
                        s.timezone,
                        None if s.input is None else orjson.dumps(s.input),
                        s.resource_id,
                        s.overlap,
                        s.missed,
                        s.description,
                        s.next_tick,
                        now,
                    )
                    for s in schedules
                ],
            )
            if not prune:
                return []
            ids = [s.schedule_id for s in schedules]
            return [row[0] for row in await conn.fetch(_PRUNE, list(prune), ids, lapsed_before, now)]

    async def refresh_schedules(
        self,
        declared: Sequence[StoredSchedule],
        *,
        prune: Sequence[str],
        lapsed_before: float,
        booted: float,
    ) -> tuple[list[str], list[str]]:
        """Refresh this replica's declarations (see `Store.refresh_schedules`)."""
        ids = [s.schedule_id for s in declared]
        async with self._transaction() as conn:
            now = await conn.fetchval(_CLOCK)
            found = {row[0] for row in await conn.fetch(_REFRESH, now, ids)}
            restored = []
            for s in declared:
                if s.schedule_id not in found and await conn.fetchval(
                    _RESTORE, *restore_values(s, orjson.dumps, now)
                ):
                    restored.append(s.schedule_id)
            pruned = []
            if prune:
                pruned = [row[0] for row in await conn.fetch(_PRUNE, list(prune), ids, lapsed_before, booted)]
            return restored, pruned

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Any]:
        """A transaction on a pool connection, with an unavailable database reported as
        StorageUnavailable, as the store's reads and writes report it (a raw asyncpg error
        would reach the caller as INTERNAL, and the schedule loop would log a trace)."""
        # Here: it imports this module.
        from runservice.storage.postgres import _CONTENDED, _UNAVAILABLE, _unavailable

        try:
            async with self._readers().acquire() as conn, conn.transaction():
                yield conn
        except _UNAVAILABLE as exc:
            # Counted as the readers and the writer count theirs.
            self.hub.refused(1, away=not isinstance(exc, _CONTENDED))
            raise _unavailable(exc) from exc
        self.hub.reached()

    async def list_schedules(self) -> list[StoredSchedule]:
        """Every stored schedule, by id."""
        return [
            StoredSchedule.from_row(row)
            for row in await self._readers().fetch(f"{_SELECT} ORDER BY schedule_id")
        ]

    async def get_schedule(self, schedule_id: str) -> StoredSchedule | None:
        """The schedule, or None."""
        row = await self._readers().fetchrow(f"{_SELECT} WHERE schedule_id = $1", schedule_id)
        return None if row is None else StoredSchedule.from_row(row)

    async def set_schedule_paused(
        self, schedule_id: str, paused: bool, next_tick: float | None
    ) -> StoredSchedule | None:
        """Pause or resume a schedule (see `Store.set_schedule_paused`)."""
        if paused:
            # The tick `buffer_one` kept goes with the pause (see the SQLite store's).
            row = await self._readers().fetchrow(
                "UPDATE schedules SET paused = true, pending_tick = NULL, updated_at = $1"
                f" WHERE schedule_id = $2 RETURNING {SCHEDULE_COLUMNS}",
                time.time(),
                schedule_id,
            )
        else:
            row = await self._readers().fetchrow(
                "UPDATE schedules SET next_tick = CASE WHEN paused THEN $1 ELSE next_tick END,"
                f" paused = false, updated_at = $2 WHERE schedule_id = $3 RETURNING {SCHEDULE_COLUMNS}",
                next_tick,
                time.time(),
                schedule_id,
            )
        return None if row is None else StoredSchedule.from_row(row)

    async def fire_tick(self, fire: TickFire) -> TickResult:
        """Claim a tick and create its run in one transaction (see `Store.fire_tick`)."""
        result = await self._fire(fire)
        if result.write is not None and result.write.events:
            self.hub.publish(list(result.write.events), batching.births([result.write]))
        self.hub.ticked(fire.schedule_id, fire.kind, result.outcome)
        return result

    async def _fire(self, fire: TickFire) -> TickResult:
        now = time.time()
        async with self._transaction() as conn:
            # A trigger waits for the lock (a concurrent tick or retry of it is not a reason to
            # report it lost); a cron or buffered tick leaves a locked row to its holder.
            lock = "FOR UPDATE" if fire.kind == "trigger" else "FOR UPDATE SKIP LOCKED"
            row = await conn.fetchrow(
                "SELECT paused, next_tick, pending_tick, overlap, last_run_id FROM schedules"
                f" WHERE schedule_id = $1 {lock}",
                fire.schedule_id,
            )
            if row is None:  # removed, or another transaction holds it (a replica firing it now)
                # A plain read does not wait for the lock: it tells the two apart, so that the
                # loop does not take a replica's tick about to commit for one that cannot fire.
                held = await conn.fetchval("SELECT 1 FROM schedules WHERE schedule_id = $1", fire.schedule_id)
                return TickResult("lost", held=held is not None)
            paused, next_tick, pending_tick, overlap, last_run_id = row
            if fire.request is not None and await conn.fetchrow(
                _FIND_TRIGGER, fire.schedule_id, fire.request
            ):
                return TickResult("repeated")  # a retried trigger: its first outcome stands
            status = None
            if last_run_id is not None:
                found = await conn.fetchval("SELECT status FROM runs WHERE run_id = $1", last_run_id)
                status = last_run_status(last_run_id, found)
            decision = decide(
                fire,
                paused=paused,
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
                inserted = await conn.fetchval(
                    "INSERT INTO schedule_ticks (schedule_id, tick, kind, outcome, run_id, fired_at)"
                    " VALUES ($1, $2, $3, 'started', $4, $5) ON CONFLICT DO NOTHING RETURNING 1",
                    fire.schedule_id,
                    fire.tick,
                    fire.kind,
                    fire.start.run_id,
                    now,
                )
                if not inserted:
                    # This tick fired already, yet the schedule still points at it (a resume or
                    # a changed cron computed from a clock behind the one that fired it): move
                    # on. Returning "lost" left it due for ever, trying the same tick again.
                    await conn.execute(
                        "UPDATE schedules SET next_tick = $1, updated_at = $2 WHERE schedule_id = $3",
                        decision.next_tick,
                        now,
                        fire.schedule_id,
                    )
                    return TickResult("advanced")
                (outcome,) = await _apply_all(conn, [fire.start], now, notify=self.notify)
                if isinstance(outcome, Exception):
                    raise outcome
                if outcome.applied:
                    write, run_id = outcome, fire.start.run_id
                else:
                    # The tick never fired (its record was just made), yet its run id is taken:
                    # a caller chose it. Passed over, recorded without the run (not this tick's).
                    await conn.execute(_TAKEN, fire.schedule_id, fire.tick)
                    decision = replace(decision, outcome="run_id_taken")
            elif decision.record:
                await conn.execute(
                    "INSERT INTO schedule_ticks (schedule_id, tick, kind, outcome, run_id, fired_at)"
                    " VALUES ($1, $2, $3, 'skipped', NULL, $4) ON CONFLICT DO NOTHING",
                    fire.schedule_id,
                    fire.tick,
                    fire.kind,
                    now,
                )
            request = trigger_record(fire, decision.outcome, last_run_id)
            if request is not None:
                await conn.execute(_INSERT_TRIGGER, *request, now)
            await conn.execute(
                "UPDATE schedules SET next_tick = $1, pending_tick = $2, updated_at = $3,"
                " last_tick = CASE WHEN $4::text IS NULL THEN last_tick ELSE $5 END,"
                " last_run_id = coalesce($4, last_run_id) WHERE schedule_id = $6",
                decision.next_tick,
                decision.pending_tick,
                now,
                run_id,
                fire.tick,
                fire.schedule_id,
            )
            return TickResult(decision.outcome, write, None if run_id else last_run_id)

    async def schedule_origins(self, run_ids: Sequence[str]) -> dict[str, tuple[str, float]]:
        """(schedule id, tick) of each of these runs that a schedule started."""
        if not run_ids:
            return {}
        rows = await self._readers().fetch(
            "SELECT run_id, schedule_id, tick FROM schedule_ticks WHERE run_id = ANY($1::text[])",
            list(run_ids),
        )
        return {run_id: (schedule_id, tick) for run_id, schedule_id, tick in rows}

    async def forget_schedule_history(self, cutoff: float, limit: int) -> int:
        """See `Store.forget_schedule_history`."""
        found = await self._readers().fetchval(_FORGET_SCHEDULE_HISTORY, cutoff, max(limit, 0))
        return int(found)

    async def trigger_request(
        self, schedule_id: str, request_id: str, legacy_key: str | None = None
    ) -> TriggerRecord | None:
        """See `Store.trigger_request`."""
        row = await self._readers().fetchrow(_FIND_TRIGGER, schedule_id, request_id)
        if row is not None:
            return TriggerRecord(*row)
        if legacy_key is None:
            return None
        kinds = await self._readers().fetch(_FIND_LEGACY_TRIGGER, legacy_key, request_id)
        return next(filter(None, (legacy_trigger_record(kind) for (kind,) in kinds)), None)


_FORGET_SCHEDULE_HISTORY = (
    "WITH old_ticks AS (SELECT schedule_id, tick FROM schedule_ticks t WHERE tick < $1"
    " AND (run_id IS NULL OR NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = t.run_id)) LIMIT $2),"
    " ticks AS (DELETE FROM schedule_ticks t USING old_ticks o"
    " WHERE t.schedule_id = o.schedule_id AND t.tick = o.tick RETURNING 1),"
    " old_triggers AS (SELECT schedule_id, request_id FROM schedule_triggers t WHERE created_at < $1"
    " AND (run_id IS NULL OR NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = t.run_id)) LIMIT $2),"
    " triggers AS (DELETE FROM schedule_triggers t USING old_triggers o"
    " WHERE t.schedule_id = o.schedule_id AND t.request_id = o.request_id RETURNING 1)"
    " SELECT (SELECT count(*) FROM ticks) + (SELECT count(*) FROM triggers)"
)
_FIND_TRIGGER = (
    "SELECT outcome, tick, run_id, active_run_id FROM schedule_triggers"
    " WHERE schedule_id = $1 AND request_id = $2"
)
_FIND_LEGACY_TRIGGER = "SELECT kind FROM requests WHERE run_id = $1 AND request_id = $2"
_TAKEN = (  # a tick whose run id was taken: passed over, without that run (not the tick's)
    "UPDATE schedule_ticks SET outcome = 'run_id_taken', run_id = NULL WHERE schedule_id = $1 AND tick = $2"
)
_INSERT_TRIGGER = (
    "INSERT INTO schedule_triggers"
    " (schedule_id, request_id, outcome, tick, run_id, active_run_id, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
