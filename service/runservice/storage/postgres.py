"""The PostgreSQL store: asyncpg, one writer connection with group commit, a reader pool.

Durability: `synchronous_commit = on` on the writer, so `write` returns only once its
transaction is flushed. Group commit keeps that affordable: every write queued while a
transaction is in flight joins the next one; one commit covers the whole batch. A batch
runs without savepoints first; if the database refuses one change half-way, the batch
is rolled back and applied again with a savepoint per change, so that change fails
alone and the rest still commit (the same contract as the SQLite store).

Round trips, not server work, are what a batch costs, so a change is one statement (an
`UPDATE ... RETURNING` that checks its condition, allocates its sequences and sets its
fields) and the batch's step, event and request rows go in with one `unnest` statement
per table. Event sequences come from `runs.last_seq` inside the writing transaction,
under the run's row lock: a run's log is 1, 2, 3, ... with no gaps, in commit order.

Events are announced after commit: the batch's transaction ends with one coalesced
`NOTIFY` (delivered by PostgreSQL at commit) naming each run and its last sequence,
never the data. A dedicated LISTEN connection wakes this process's subscribers of
those runs (events this process wrote reach its hub directly), who then re-read the
log from their own cursor; a periodic poll of the watched runs' `last_seq` covers a
lost notification or a dropped LISTEN connection, so an event can be late, never lost.

Schema changes are numbered migrations (`postgres_vN.sql`), each applied in its own
transaction under a transaction-scoped advisory lock and recorded in
`schema_migrations`, so replicas booting at once on an empty database migrate once.
Several replicas on one database are not supported yet: runs have no owner, and each
process re-drives every active run at boot (leases and fenced commits come next).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

import asyncpg
import orjson

from runservice.model import Event, ResumeLabel, Run, RunError, RunStatus, StepPath, StepRecord
from runservice.storage import RunQuery, RunWrite, WriteResult, redact_url
from runservice.storage.hub import EventHub

logger = logging.getLogger(__name__)

MIGRATIONS: tuple[tuple[int, str], ...] = ((1, "postgres_v1.sql"),)
"""(version, script) in order; a new schema change is a new script appended here."""
SCHEMA_VERSION = MIGRATIONS[-1][0]
MIGRATION_LOCK = 0x72756E73657276  # pg_advisory_xact_lock key for migrations ("runserv")
CHANNEL = "runservice_events"
"""The NOTIFY channel; a payload is lines of `<last sequence> <run id>`."""

_MAX_BATCH = 500
_READERS = 4
_POLL_INTERVAL = 1.0
_NOTIFY_PAYLOAD_BYTES = 7000  # PostgreSQL's limit is 8000
_RECONNECT_DELAY = 0.5

# Errors the database (or asyncpg, before sending) raises for one statement; the
# connection itself is still usable after them.
_STATEMENT_ERRORS = (asyncpg.PostgresError, asyncpg.exceptions._base.DataError)

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    script text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""

_RUN_COLUMN_LIST = (
    "run_id, workflow_id, resource_id, status, input, state, request_context, result, error,"
    " suspended, resume_labels, started_at, ended_at, wake_at, trace_id, last_seq, created_at, updated_at"
)
_RUN_COLUMNS = _RUN_COLUMN_LIST.split(", ")  # the order `_run_row` and `_run_from_row` use
_SELECT_RUN = f"SELECT {_RUN_COLUMN_LIST} FROM runs"
_SELECT_RUN_WITH_STEPS = (
    f"SELECT {', '.join('r.' + c for c in _RUN_COLUMNS)}, s.record"
    " FROM runs r LEFT JOIN steps s ON s.run_id = r.run_id WHERE r.run_id = $1"
)
_INSERT_RUN = (
    f"INSERT INTO runs ({_RUN_COLUMN_LIST})"
    f" VALUES ({', '.join(f'${i + 1}' for i in range(len(_RUN_COLUMNS)))})"
    " ON CONFLICT (run_id) DO NOTHING RETURNING status, last_seq"
)
_UPSERT_STEPS = (
    "INSERT INTO steps (run_id, path_key, position, record)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::bytea[])"
    " ON CONFLICT (run_id, path_key) DO UPDATE SET position = excluded.position, record = excluded.record"
)
_INSERT_EVENTS = (
    "INSERT INTO events (run_id, seq, time, body)"
    " SELECT * FROM unnest($1::text[], $2::bigint[], $3::double precision[], $4::bytea[])"
)
_INSERT_REQUESTS = (
    "INSERT INTO requests (run_id, kind, request_id)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING"
)
_DELETE_RUN = (
    "WITH r AS (DELETE FROM runs WHERE run_id = $1),"
    " s AS (DELETE FROM steps WHERE run_id = $1),"
    " e AS (DELETE FROM events WHERE run_id = $1),"
    " q AS (DELETE FROM requests WHERE run_id = $1)"
    " SELECT 1"
)
_DELETE_RUN_IF = (
    "WITH gone AS (DELETE FROM runs WHERE run_id = $1 AND status = ANY($2::text[]) RETURNING run_id),"
    " s AS (DELETE FROM steps WHERE run_id IN (SELECT run_id FROM gone)),"
    " e AS (DELETE FROM events WHERE run_id IN (SELECT run_id FROM gone)),"
    " q AS (DELETE FROM requests WHERE run_id IN (SELECT run_id FROM gone))"
    " SELECT count(*) FROM gone"
)
_NOTIFY = f"SELECT pg_notify('{CHANNEL}', payload) FROM unnest($1::text[]) AS payload"

_Pending = tuple[RunWrite, asyncio.Future[WriteResult]]


class PostgresStore:
    """A `Store` on one PostgreSQL database (see the module docstring for the design)."""

    def __init__(self, url: str, *, poll_interval: float = _POLL_INTERVAL, notify: bool = True) -> None:
        self.url = url
        self.hub = EventHub()
        self.transactions = 0
        """Write transactions committed so far (one per group-commit batch)."""
        self.poll_interval = poll_interval
        """Seconds between reads of the watched runs' last sequences (the lost-NOTIFY safety net)."""
        self.notify = notify
        """Announce committed events with NOTIFY (other processes' watchers then hear at once)."""
        self._state = "new"  # -> "open" -> "closed"
        self._accepting = False
        self._writer: Any = None  # asyncpg.Connection
        self._writer_pid = 0
        self._pool: Any = None  # asyncpg.Pool
        self._listener: Any = None  # asyncpg.Connection
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None
        self._feed_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._known: dict[str, int] = {}
        """Last sequence this process's subscribers were given or told of, per watched run."""

    # -- lifecycle -------------------------------------------------------------

    async def open(self) -> None:
        """Migrate the schema, open the connections, start the writer and the event feed."""
        if self._state != "new":
            raise RuntimeError("store was already opened")
        self._state = "open"
        self._loop = asyncio.get_running_loop()
        try:
            self._writer = await self._connect()
            await migrate(self._writer)
            self._writer_pid = self._writer.get_server_pid()
            self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=_READERS)
        except BaseException as exc:
            self._state = "closed"
            await self._release()
            if isinstance(exc, (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)):
                raise OSError(f"cannot open PostgreSQL database {redact_url(self.url)}: {exc}") from exc
            raise
        self._writer_task = asyncio.create_task(self._write_loop(), name="postgres-writer")
        self._feed_task = asyncio.create_task(self._feed(), name="postgres-event-feed")
        self._accepting = True

    async def _connect(self) -> Any:
        # synchronous_commit on whatever the server default: a returned write survives a
        # crash of the database host, not only of this process.
        return await asyncpg.connect(
            self.url, server_settings={"synchronous_commit": "on", "application_name": "runservice"}
        )

    async def close(self) -> None:
        """Refuse new writes, commit the queued ones, then release every resource. Idempotent."""
        if self._state == "closed":
            return
        self._state = "closed"
        self._accepting = False
        try:
            if self._writer_task is not None:
                self._queue.put_nowait(None)  # after every queued write: they are flushed first
                await self._writer_task
        finally:
            self._writer_task = None
            if self._feed_task is not None:
                self._feed_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._feed_task
                self._feed_task = None
            await self._release()

    async def _release(self) -> None:
        writer, self._writer = self._writer, None
        listener, self._listener = self._listener, None
        pool, self._pool = self._pool, None
        try:
            if pool is not None:
                await pool.close()
        finally:
            for conn in (listener, writer):
                if conn is not None:
                    try:
                        await conn.close(timeout=5)
                    except Exception:  # closing anyway: drop the socket
                        conn.terminate()

    # -- writes ----------------------------------------------------------------

    async def write(self, change: RunWrite) -> WriteResult:
        """Commit one change (see `RunWrite`); returns once it is durable.

        Once called, the change is committed even if the caller is cancelled while
        waiting. The writer reads the change later, with its batch: do not mutate it meanwhile.
        """
        if not self._accepting:
            raise RuntimeError("store is not open" if self._state == "new" else "store is closed")
        assert self._loop is not None
        future: asyncio.Future[WriteResult] = self._loop.create_future()
        self._queue.put_nowait((change, future))
        return await future

    async def _write_loop(self) -> None:
        """Drain the queue in batches, one transaction per batch, until the close sentinel."""
        batch: list[_Pending] = []
        try:
            while True:
                item = await self._queue.get()
                # Take what is queued now; never wait for more, so a lone write is not delayed.
                while item is not None:
                    batch.append(item)
                    if len(batch) >= _MAX_BATCH or self._queue.empty():
                        break
                    item = self._queue.get_nowait()
                if batch:
                    await self._commit(batch)
                    batch = []
                if item is None:
                    return
        except Exception:
            logger.exception("the store writer crashed; the store refuses further writes")
            raise
        finally:
            stopped = RuntimeError("store writer stopped; the write may or may not be committed")
            self._accepting = False
            while not self._queue.empty():
                pending = self._queue.get_nowait()
                if pending is not None:
                    batch.append(pending)
            for _, future in batch:
                if not future.done():
                    future.set_exception(stopped)

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            if self._writer is None or self._writer.is_closed():
                # The database restarted or the connection dropped: a batch that failed at
                # COMMIT was reported as failed; start over on a new connection.
                self._writer = None
                self._writer = await self._connect()
                self._writer_pid = self._writer.get_server_pid()
            outcomes = await _apply_batch(self._writer, [change for change, _ in batch], self.notify)
        except Exception as exc:  # BEGIN or COMMIT failed, or the connection: nothing is reported committed
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        self.transactions += 1
        committed: list[Event] = []
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, WriteResult):
                committed.extend(outcome.events)
            if future.done():
                continue
            if isinstance(outcome, WriteResult):
                future.set_result(outcome)
            else:
                future.set_exception(outcome)
        known, hub = self._known, self.hub
        for event in committed:  # what the hub carries, the poll need not announce again
            if hub.watching(event.run_id) and event.sequence > known.get(event.run_id, 0):
                known[event.run_id] = event.sequence
        try:
            self.hub.publish(committed)
        except Exception:  # a broken subscriber must not stop the writer; the log is the record
            logger.exception("publishing committed events failed")

    # -- events from other processes ---------------------------------------------

    async def _feed(self) -> None:
        """Keep the LISTEN connection up and poll the watched runs, until cancelled."""
        while True:
            if self._listener is None or self._listener.is_closed():
                self._listener = None
                try:
                    listener = await self._connect()
                    await listener.add_listener(CHANNEL, self._on_notify)
                    self._listener = listener
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    logger.warning("LISTEN connection failed (polling meanwhile): %s", exc)
                else:
                    # Notifications sent while nobody listened are gone: look at every watched run.
                    self._known.clear()
            try:
                await self._poll()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                logger.warning("polling watched runs failed: %s", exc)
            await asyncio.sleep(self.poll_interval if self._listener is not None else _RECONNECT_DELAY)

    def _on_notify(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        if pid == self._writer_pid:
            return  # this process's own commits reach the hub directly
        for line in payload.splitlines():
            sequence, _, run_id = line.partition(" ")
            self._heard(run_id, int(sequence))

    def _heard(self, run_id: str, sequence: int) -> None:
        """The log of `run_id` reaches `sequence`: wake its subscribers if that is news to them."""
        if not self.hub.watching(run_id):
            return
        if sequence > self._known.get(run_id, 0):  # an empty log has nothing to miss
            self._known[run_id] = sequence
            self.hub.nudge(run_id)

    async def _poll(self) -> None:
        """Read the last sequence of every watched run; nudge the ones that moved unseen."""
        watched = self.hub.watched()
        for run_id in [r for r in self._known if r not in watched]:
            del self._known[run_id]
        if not watched or self._pool is None:
            return
        rows = await self._pool.fetch("SELECT run_id, last_seq FROM runs WHERE run_id = ANY($1)", watched)
        for run_id, last_seq in rows:
            self._heard(run_id, last_seq)

    # -- reads -----------------------------------------------------------------

    def _readers(self) -> Any:
        if self._pool is None:
            raise RuntimeError("store is not open" if self._state == "new" else "store is closed")
        return self._pool

    async def get_run(self, run_id: str, *, steps: bool = False) -> Run | None:
        """The run, with its step records when `steps` is true; None if unknown."""
        if not steps:
            row = await self._readers().fetchrow(f"{_SELECT_RUN} WHERE run_id = $1", run_id)
            return None if row is None else _run_from_row(row)
        # One statement, so the run and its steps come from the same snapshot.
        rows = await self._readers().fetch(_SELECT_RUN_WITH_STEPS, run_id)
        if not rows:
            return None
        records = [StepRecord.from_json(orjson.loads(row[-1])) for row in rows if row[-1] is not None]
        return _run_from_row(rows[0]).with_steps(records)

    async def list_runs(self, query: RunQuery) -> list[Run]:
        """Runs matching `query`, newest first (created_at, then run_id, descending)."""
        clauses: list[str] = []
        params: list[object] = []

        def param(value: object) -> str:
            params.append(value)
            return f"${len(params)}"

        if query.workflow_id is not None:
            clauses.append(f"workflow_id = {param(query.workflow_id)}")
        if query.statuses:
            clauses.append(f"status = ANY({param(sorted(s.value for s in query.statuses))}::text[])")
        if query.resource_id is not None:
            clauses.append(f"resource_id = {param(query.resource_id)}")
        if query.from_time is not None:
            clauses.append(f"created_at >= {param(query.from_time)}")
        if query.to_time is not None:
            clauses.append(f"created_at < {param(query.to_time)}")
        if query.after is not None:
            created_at, run_id = query.after
            clauses.append(f"(created_at, run_id) < ({param(created_at)}, {param(run_id)})")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"{_SELECT_RUN}{where} ORDER BY created_at DESC, run_id DESC LIMIT {param(max(query.limit, 0))}"
        return [_run_from_row(row) for row in await self._readers().fetch(sql, *params)]

    async def read_events(self, run_id: str, after: int, limit: int = 1000) -> list[Event]:
        """Events with sequence > `after`, in order, at most `limit`."""
        rows = await self._readers().fetch(
            "SELECT seq, time, body FROM events WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            run_id,
            after,
            max(limit, 0),
        )
        return [Event.from_json(run_id, seq, at, orjson.loads(body)) for seq, at, body in rows]

    async def has_request(self, run_id: str, kind: str, request_id: str) -> bool:
        """True if a write with this `(kind, request_id)` was committed for the run."""
        row = await self._readers().fetchrow(
            "SELECT 1 FROM requests WHERE run_id = $1 AND kind = $2 AND request_id = $3",
            run_id,
            kind,
            request_id,
        )
        return row is not None

    async def runs_with_status(self, statuses: frozenset[RunStatus]) -> list[Run]:
        """Every run whose status is one of `statuses` (oldest first)."""
        if not statuses:
            return []
        rows = await self._readers().fetch(
            f"{_SELECT_RUN} WHERE status = ANY($1::text[]) ORDER BY created_at, run_id",
            sorted(status.value for status in statuses),
        )
        return [_run_from_row(row) for row in rows]


# -- migrations ------------------------------------------------------------------------


async def migrate(conn: Any) -> int:
    """Bring the schema to SCHEMA_VERSION, one migration per transaction; returns the version.

    Every step holds a transaction-scoped advisory lock, so processes booting at once
    take turns: the first applies a migration, the others then find it recorded.
    """
    while True:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(_MIGRATIONS_TABLE)
            version = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"database has schema version {version}; this runservice knows {SCHEMA_VERSION}"
                )
            pending = [(v, script) for v, script in MIGRATIONS if v > version]
            if not pending:
                return int(version)
            target, script = pending[0]
            await conn.execute(_resource(script))
            await conn.execute(
                "INSERT INTO schema_migrations (version, script) VALUES ($1, $2)", target, script
            )
            logger.info("migrated the database schema to version %d (%s)", target, script)


def _resource(name: str) -> str:
    return resources.files("runservice.storage").joinpath(name).read_text(encoding="utf-8")


# -- the writer's side -----------------------------------------------------------------


async def _apply_batch(conn: Any, changes: list[RunWrite], notify: bool) -> list[WriteResult | Exception]:
    """Apply every change in one transaction and commit it (see the module docstring)."""
    now = time.time()
    await conn.execute("BEGIN")
    try:
        try:
            rows = _Rows()
            outcomes = [await _apply(conn, change, now, rows) for change in changes]
            await rows.flush(conn)
        except _STATEMENT_ERRORS:
            await conn.execute("ROLLBACK")
            await conn.execute("BEGIN")
            outcomes = []
            for change in changes:
                await conn.execute("SAVEPOINT w")
                try:
                    rows = _Rows()
                    outcome = await _apply(conn, change, now, rows)
                    await rows.flush(conn)
                except _STATEMENT_ERRORS as exc:
                    outcome = exc
                if isinstance(outcome, Exception):
                    await conn.execute("ROLLBACK TO SAVEPOINT w")
                await conn.execute("RELEASE SAVEPOINT w")
                outcomes.append(outcome)
        if notify:
            payloads = _notifications(outcomes)
            if payloads:
                await conn.execute(_NOTIFY, payloads)
        await conn.execute("COMMIT")
    except BaseException:
        # A failed COMMIT has already ended the transaction; anything else is rolled back.
        # If the connection is broken or the task was cancelled mid-statement, drop it:
        # the next batch reconnects.
        if not conn.is_closed() and conn.is_in_transaction():
            try:
                await asyncio.shield(conn.execute("ROLLBACK"))
            except BaseException:
                conn.terminate()
                raise
        raise
    return outcomes


def _notifications(outcomes: Sequence[WriteResult | Exception]) -> list[str]:
    """NOTIFY payloads for a batch: `<last sequence> <run id>` per run, a line each, chunked."""
    last: dict[str, int] = {}
    for outcome in outcomes:
        if isinstance(outcome, WriteResult) and outcome.events:
            last[outcome.events[0].run_id] = outcome.last_sequence
    payloads: list[str] = []
    lines: list[str] = []
    size = 0
    for run_id, sequence in last.items():
        line = f"{sequence} {run_id}"
        if lines and size + len(line) + 1 > _NOTIFY_PAYLOAD_BYTES:
            payloads.append("\n".join(lines))
            lines, size = [], 0
        lines.append(line)
        size += len(line.encode()) + 1
    if lines:
        payloads.append("\n".join(lines))
    return payloads


class _Rows:
    """Step, event and request rows of a batch, inserted with one statement per table."""

    __slots__ = ("events", "requests", "steps")

    def __init__(self) -> None:
        # Keyed by (run, path): a step upserted twice in one batch keeps its last record
        # (one statement may not upsert the same row twice).
        self.steps: dict[tuple[str, str], tuple[int, bytes]] = {}
        self.events: list[tuple[str, int, float, bytes]] = []
        self.requests: list[tuple[str, str, str]] = []

    async def flush(self, conn: Any) -> None:
        """Insert the rows gathered so far (before anything that reads or deletes them)."""
        if self.steps:
            keys = list(self.steps)
            values = list(self.steps.values())
            await conn.execute(
                _UPSERT_STEPS,
                [run_id for run_id, _ in keys],
                [key for _, key in keys],
                [position for position, _ in values],
                [record for _, record in values],
            )
            self.steps = {}
        if self.events:
            await conn.execute(_INSERT_EVENTS, *zip(*self.events, strict=True))
            self.events = []
        if self.requests:
            await conn.execute(_INSERT_REQUESTS, *zip(*self.requests, strict=True))
            self.requests = []


async def _apply(conn: Any, change: RunWrite, now: float, rows: _Rows) -> WriteResult | Exception:
    """Apply one change, its step, event and request rows gathered into `rows`.

    Returns the exception of a change that cannot be encoded (nothing of it is applied);
    raises only database errors.
    """
    run_id = change.run_id
    if change.delete:
        await rows.flush(conn)
        if change.expect is None:
            await conn.execute(_DELETE_RUN, run_id)
            return WriteResult(applied=True, status=None)
        if await conn.fetchval(_DELETE_RUN_IF, run_id, sorted(s.value for s in change.expect)):
            return WriteResult(applied=True, status=None)
        return WriteResult(applied=False, status=await _status(conn, run_id))
    try:
        assignments, params, steps, bodies = _encode(change)
    except Exception as exc:  # not JSON data, an unknown field: a bug in the caller
        return exc
    count = len(bodies)
    if change.create is not None:  # `expect` is meaningless for a run that does not exist yet
        row = await conn.fetchrow(_INSERT_RUN, *_run_row(change.create, now, count))
        if row is None:
            return WriteResult(applied=False, status=await _status(conn, run_id))
        if assignments:
            sets = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(assignments))
            row = await conn.fetchrow(
                f"UPDATE runs SET {sets} WHERE run_id = $1 RETURNING status, last_seq", run_id, *params
            )
        status, last_seq = row
    else:
        # One statement checks the condition, takes the sequences and sets the fields.
        # Sequences come from the row itself, inside the transaction: a rollback returns them.
        sets = "".join(f", {name} = ${i + 4}" for i, name in enumerate(assignments))
        condition = "run_id = $1"
        args: list[object] = [run_id, now, count, *params]
        if change.expect is not None:
            args.append(sorted(s.value for s in change.expect))
            condition += f" AND status = ANY(${len(args)}::text[])"
        row = await conn.fetchrow(
            f"UPDATE runs SET updated_at = $2, last_seq = last_seq + $3{sets}"
            f" WHERE {condition} RETURNING status, last_seq",
            *args,
        )
        if row is None:
            found = await _status(conn, run_id)
            if found is None and change.expect is None:
                return KeyError(run_id)
            return WriteResult(applied=False, status=found)
        status, last_seq = row
    first = last_seq - count + 1
    for key, position, record in steps:
        rows.steps[(run_id, key)] = (position, record)
    rows.events.extend((run_id, first + i, now, body) for i, body in enumerate(bodies))
    if change.request is not None:
        kind, request_id = change.request
        rows.requests.append((run_id, kind, request_id))
    # Built from the drafts, not re-parsed: the engine hands over JSON-ready values already.
    events = tuple(
        Event(run_id, first + i, now, d.type, d.run_status, d.step, d.data, d.error, d.progress)
        for i, d in enumerate(change.events)
    )
    return WriteResult(applied=True, status=RunStatus(status), events=events)


def _encode(change: RunWrite) -> tuple[list[str], list[object], list[tuple[str, int, bytes]], list[bytes]]:
    """A change's patched column names and values, step rows and event bodies (may raise)."""
    if change.create is not None and change.create.run_id != change.run_id:
        raise ValueError(f"create.run_id {change.create.run_id!r} differs from run_id {change.run_id!r}")
    assignments: list[str] = []
    params: list[object] = []
    for name, value in change.patch.items():
        encode = _PATCH_ENCODERS.get(name)
        if encode is None:
            raise ValueError(f"unknown run field {name!r} in patch")
        assignments.append(name)
        params.append(encode(value))
    # A step record is encoded once, though it is stored both in its row and in its event.
    encoded: dict[int, orjson.Fragment] = {}

    def encode_step(record: StepRecord) -> orjson.Fragment:
        fragment = encoded.get(id(record))
        if fragment is None:
            fragment = encoded[id(record)] = orjson.Fragment(orjson.dumps(record.to_json()))
        return fragment

    steps = [(step.key, step.position, orjson.dumps(encode_step(step))) for step in change.steps]
    bodies = [orjson.dumps(draft.to_json(encode_step)) for draft in change.events]
    return assignments, params, steps, bodies


async def _status(conn: Any, run_id: str) -> RunStatus | None:
    found = await conn.fetchval("SELECT status FROM runs WHERE run_id = $1", run_id)
    return None if found is None else RunStatus(found)


# -- encoding ------------------------------------------------------------------------


def _json(value: Any) -> bytes | None:
    # orjson bytes go to bytea as they are: no str round trip, no server-side JSON parse.
    return None if value is None else orjson.dumps(value)


def _loads(data: bytes | None) -> Any:
    return None if data is None else orjson.loads(data)


def _encode_error(error: RunError | None) -> bytes | None:
    return None if error is None else orjson.dumps(error.to_json())


def _encode_paths(paths: Sequence[StepPath]) -> bytes:
    return orjson.dumps([list(path) for path in paths])


def _encode_labels(labels: Any) -> bytes:
    return orjson.dumps({name: label.to_json() for name, label in labels.items()})


def _same(value: Any) -> Any:
    return value


_PATCH_ENCODERS: dict[str, Callable[[Any], object]] = {
    "status": lambda value: RunStatus(value).value,
    "input": _json,
    "state": _json,
    "request_context": _json,
    "result": _json,
    "error": _encode_error,
    "suspended": _encode_paths,
    "resume_labels": _encode_labels,
    "started_at": _same,
    "ended_at": _same,
    "wake_at": _same,
    "trace_id": str,
}


def _run_row(run: Run, now: float, last_seq: int) -> tuple[object, ...]:
    """Values for `_RUN_COLUMNS` of a new run whose log will hold `last_seq` events."""
    return (
        run.run_id,
        run.workflow_id,
        run.resource_id,
        run.status.value,
        _json(run.input),
        _json(run.state),
        _json(run.request_context),
        _json(run.result),
        _encode_error(run.error),
        _encode_paths(run.suspended),
        _encode_labels(run.resume_labels),
        run.started_at,
        run.ended_at,
        run.wake_at,
        run.trace_id,
        last_seq,
        run.created_at,
        now,
    )


def _run_from_row(row: Sequence[Any]) -> Run:
    return Run(
        run_id=row[0],
        workflow_id=row[1],
        resource_id=row[2],
        status=RunStatus(row[3]),
        input=_loads(row[4]),
        state=_loads(row[5]),
        request_context=_loads(row[6]) or {},
        result=_loads(row[7]),
        error=RunError.from_json(_loads(row[8])),
        suspended=tuple(tuple(path) for path in _loads(row[9]) or ()),
        resume_labels={name: ResumeLabel.from_json(label) for name, label in (_loads(row[10]) or {}).items()},
        started_at=row[11],
        ended_at=row[12],
        wake_at=row[13],
        trace_id=row[14],
        last_sequence=row[15],
        created_at=row[16],
        updated_at=row[17],
    )
