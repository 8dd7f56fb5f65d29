"""The PostgreSQL store: asyncpg, one writer connection with group commit, a reader pool.

Durability follows the rule SQLite's store keeps: whatever a caller or a watcher is told
survives a power loss of the database host. The writer commits a durable `write` with
`synchronous_commit = on` (the commit returns once its WAL is flushed), and a batch of
internal progress only (`write(change, durable=False)`: a step's result before the next
body, a Start with `wait`'s creation) with `synchronous_commit` off for that transaction:
it is visible at once and safe against a crash of this process, and the next flushed
commit, of any session, covers it (the WAL is flushed in order). So a 3-step run waits for
one flush, its settling commit, instead of four. What such progress holds may be told
only once flushed, and other replicas read it too, so a read that returns an active run
(or events of one) checks the WAL before it answers: if the flush position is behind the
insert position, it commits a WAL message with `synchronous_commit = on`, which flushes
everything before it. A read of one run does so within its own statement
(`_FLUSH_IF_ACTIVE`), a listing with a second one (`_FLUSH_IF_BEHIND`). A read of a
settled run needs nothing: its settling commit was flushed, with all before it. A batch
holding events of a run someone here watches is flushed like a durable write.

Group commit keeps flushes few: every write queued while a transaction is in flight
joins the next one; one commit covers the whole batch. A batch runs without savepoints
first; if the database refuses one change half-way, the batch is rolled back and applied
again with a savepoint per change, so that change fails alone and the rest still commit
(the same contract as the SQLite store).

Round trips, not server work, are what a batch costs: the common batch (each run once)
is a single statement in its own transaction, and any other in rounds of a few `unnest`
statements (storage/postgres_writes.py). Event sequences come from
`runs.last_seq` inside the writing transaction, under the run's row lock: a run's log
is 1, 2, 3, ... with no gaps, in commit order.

Events are announced after commit: the batch's transaction carries coalesced `NOTIFY`s
(delivered by PostgreSQL at commit) naming each run and its last sequence,
never the data. A dedicated LISTEN connection wakes this process's subscribers of
those runs (events this process wrote reach its hub directly), who then re-read the
log from their own cursor; a periodic poll of the watched runs' `last_seq` covers a
lost notification or a dropped LISTEN connection, so an event can be late, never lost.
A delete is announced too (`0 <run id>`), and the poll sees a watched run vanish or
come back as a new run (another `created_at`): its followers re-read and end.

Schema changes are numbered migrations (`postgres_vN.sql`), each applied in its own
transaction under a transaction-scoped advisory lock and recorded in
`schema_migrations`, so replicas booting at once on an empty database migrate once.
Every one not recorded there is applied, also below the newest recorded (numbers were
merged out of order); a schema still lacking a table or column is refused at open.

A delete holds the writer for a bounded time: a run with more rows than a batch removes
with its deletes loses its `runs` row in the batch, and its id goes into `deleted_runs`; the
store's `Removal` deletes its rows afterwards, a chunk per transaction of a pooled connection
(storage/removal.py has the rules that keep those rows from ever being taken for a run's).

Several replicas share one database: every active run is owned through a lease (owner,
epoch, expiry by the database's clock). The writer applies `RunWrite.fence`, `claim` and
`release` in the same statements as the change itself; `claim_runs` takes due runs with
`FOR UPDATE SKIP LOCKED`, so two replicas never claim the same run, and `renew_leases`
is one statement per heartbeat for all of a replica's runs (storage.Lease, engine.leases).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from functools import partial
from importlib import resources
from typing import Any, NamedTuple

import asyncpg
import orjson

from runservice import logs
from runservice.errors import StorageUnavailable
from runservice.model import Event, Run, RunStatus
from runservice.storage import (
    BoundedClaim,
    Claim,
    Definition,
    Due,
    Lease,
    Renewal,
    RunQuery,
    RunWrite,
    WriteResult,
    batching,
    redact_url,
    removal,
    values,
)
from runservice.storage.hub import EventHub
from runservice.storage.postgres_schedules import PostgresSchedules
from runservice.storage.postgres_writes import (
    CHANNEL,
    HAS_LEFTOVERS,
    apply_batch,
    column_digests,
    run_from_row,
    with_items,
)
from runservice.storage.rows import (
    RUN_COLUMN_LIST,
    RUN_COLUMNS,
    UNDECODABLE,
    step_records,
    step_rows,
    unreadable,
)
from runservice.storage.schedules import SCHEDULE_COLUMNS

logger = logging.getLogger(__name__)

MIGRATIONS: tuple[tuple[int, str], ...] = tuple(
    sorted(
        (int(match.group(1)), match.group(0))
        for entry in resources.files("runservice.storage").iterdir()
        if (match := re.fullmatch(r"postgres_v(\d+)\.sql", entry.name))
    )
)
"""(version, script) in order, found by name: a new schema change is a new `postgres_vN.sql`."""
SCHEMA_VERSION = MIGRATIONS[-1][0]
BACKWARD_COMPATIBLE = frozenset({14, 15, 16, 17, 18})
"""Migrations that leave the database usable by a server that does not know them (they only
add what older code never reads), recorded in `schema_compatible` (made by 14, so only from
14 on): a server of an earlier version started on the database (a rollback) serves it."""
MIGRATION_LOCK = 0x72756E73657276  # pg_advisory_xact_lock key for migrations ("runserv")
_ACTIVE = ["running", "waiting"]
_NOW = "extract(epoch from now())::double precision"


def _due(active: int, workflows: int, filtered: int, exclude: int, unowned: int, overdue: int) -> str:
    """The condition of a run a claim may take, its parameters numbered from the given ones
    (`filtered` and the two after it: the served definitions; `unowned`: only runs with no
    owner, not those whose owner's lease ran out; `overdue`: only runs past their own deadline)."""
    return (
        # Suspended runs past their deadline are claimed too: the claimer ends them; and those
        # past the deadline of a nested workflow suspended inside them (wake_at): it fails it.
        f"(status = ANY(${active}::text[])"
        f" OR (status = 'suspended' AND (deadline < {_NOW} OR wake_at < {_NOW})))"
        # Past their own deadline, active or suspended: the claimer ends them, without a drive.
        f" AND (NOT ${overdue}::boolean OR deadline < {_NOW})"
        f" AND (owner IS NULL OR (NOT ${unowned}::boolean AND lease_expires_at < {_NOW}))"
        f" AND workflow_id = ANY(${workflows}::text[])"
        # false: any definition; else only the served (workflow, version, digest) triples.
        f" AND (NOT ${filtered}::boolean OR (workflow_id, definition_version, definition_digest) IN"
        f" (SELECT * FROM unnest(${filtered + 1}::text[], ${filtered + 2}::text[], ${filtered + 3}::text[])))"
        f" AND run_id <> ALL(${exclude}::text[])"
    )


_CLAIM = (
    # MATERIALIZED: the runs to claim are chosen once. As `WHERE run_id IN (SELECT ... LIMIT
    # $5 FOR UPDATE SKIP LOCKED)`, a plan that put the choice on the inner side of a nested
    # loop chose again for each row of `runs`, skipping the rows the statement had just
    # claimed (its own changes count as locked), and so claimed every due run, whatever the
    # limit: past `--max-active-runs` and past a workflow's bound (seen on a database whose
    # statistics made the planner choose that plan).
    # In the order the runs were left waiting (`queued_at`, see `RunWrite`; a run stored before
    # it was, or by an older replica, by its creation): the due runs are found by the indexes of
    # their conditions (runs_by_workflow_status...), then sorted (postgres_v17.sql).
    f"WITH chosen AS MATERIALIZED (SELECT run_id FROM runs WHERE {_due(3, 4, 6, 10, 11, 12)}"
    " ORDER BY coalesce(queued_at, created_at) LIMIT $5 FOR UPDATE SKIP LOCKED)"
    f" UPDATE runs SET owner = $1, epoch = runs.epoch + 1, lease_expires_at = {_NOW} + $2"
    " FROM chosen WHERE runs.run_id = chosen.run_id"
    " RETURNING runs.run_id, runs.epoch"
)
_ANY_DUE = f"SELECT EXISTS (SELECT 1 FROM runs WHERE {_due(1, 2, 3, 7, 8, 9)})"
_LOCK_WORKFLOW = "SELECT pg_advisory_xact_lock(hashtextextended('runservice workflow ' || $1, 0))"
"""Held by a bounded claim until it commits: claims of one workflow's runs take turns."""
_WOKEN = (
    "status = 'waiting' AND woken_epoch IS NOT NULL AND woken_epoch = epoch"
    f" AND owner IS NOT NULL AND lease_expires_at >= {_NOW}"
)
"""A woken run waiting for room of its workflow's shared bound (`wake_bounded` marked it under
its lease, and that lease is live): by `runs_woken`, only the marked runs still waiting."""
_COUNTED = (
    "SELECT (SELECT count(*) FROM runs WHERE owner IS NOT NULL AND workflow_id = $1"
    f" AND status = 'running' AND lease_expires_at >= {_NOW}),"
    f" (SELECT count(*) FROM runs WHERE workflow_id = $1 AND {_WOKEN})"
)
"""The runs of a workflow that live owners drive, and its woken runs waiting for room."""
_AHEAD = (
    "SELECT (SELECT count(*) FROM runs WHERE owner IS NOT NULL AND workflow_id = $1"
    f" AND status = 'running' AND lease_expires_at >= {_NOW})"
    f" + (SELECT count(*) FROM runs WHERE workflow_id = $1 AND {_WOKEN} AND run_id <> $2"
    " AND (coalesce(wake_at, 0), run_id)"
    " < (SELECT coalesce(wake_at, 0), run_id FROM runs WHERE run_id = $2))"
)
"""The runs a woken run of a workflow (`$2`) finds holding its room: those live owners drive,
and the woken runs waiting for room whose sleep ended before its own."""
_WAKE = (
    "UPDATE runs SET status = 'running', wake_at = NULL, woken_epoch = NULL"
    " WHERE run_id = $1 AND owner = $2 AND epoch = $3 AND status = 'waiting'"
)
"""A sleeping run its owner lets go on (`wake_bounded`), under its lease."""
_MARK_WOKEN = (
    "UPDATE runs SET woken_epoch = epoch WHERE run_id = $1 AND owner = $2 AND epoch = $3"
    " AND status = 'waiting' AND woken_epoch IS DISTINCT FROM epoch"
)
"""A woken run that found no room marked as waiting for some, under its lease (`wake_bounded`)."""
_UNMARK_WOKEN = (
    "UPDATE runs SET woken_epoch = NULL FROM unnest($1::text[], $2::bigint[]) AS u(run_id, epoch)"
    " WHERE runs.run_id = u.run_id AND runs.owner = $3 AND runs.epoch = u.epoch"
    " AND runs.woken_epoch IS NOT NULL RETURNING runs.workflow_id"
)
"""Marks of woken runs cleared by their owner, under its leases (`unmark_woken`)."""
_TELL_ROOM = f"SELECT pg_notify('{CHANNEL}', 'room ' || $1)"
"""Tells every replica (`listen_room`) at the commit that the workflow has room woken runs hold."""
_HOLD_NAME = "SELECT pg_try_advisory_lock(hashtextextended('runservice replica ' || $1, 0))"
"""A session lock on a replica name: the database ends it with the session, so when a process
that held it is gone (killed: its socket closes) the next one of that name gets it."""
_END_PREDECESSORS = (
    "WITH ended AS (UPDATE runs SET lease_expires_at = 0"
    " WHERE owner IS NOT NULL AND starts_with(owner, $1) AND owner <> $2"
    f" AND lease_expires_at >= {_NOW} RETURNING 1)"
    " SELECT count(*) FROM ended"
)
_FORGET_DELETE_MARKS = (
    # A replica of a version before migration 13, still running beside this one in a rolling
    # upgrade, writes marks with no time: they count from when a sweep first sees them.
    f"WITH stamped AS (UPDATE requests SET deleted_at = {_NOW}"
    " WHERE kind = 'delete' AND deleted_at IS NULL),"
    " old AS (SELECT run_id, kind, request_id FROM requests"
    " WHERE kind = 'delete' AND deleted_at < $1 LIMIT $2),"
    " gone AS (DELETE FROM requests r USING old"
    " WHERE r.run_id = old.run_id AND r.kind = old.kind AND r.request_id = old.request_id RETURNING 1)"
    " SELECT count(*) FROM gone"
)
_RENEW = (
    "WITH mine AS MATERIALIZED (SELECT run_id, cancel_requested FROM runs"
    " WHERE run_id = ANY($4::text[]) AND owner = $1 AND status = ANY($3::text[])),"
    " free AS (SELECT run_id FROM runs WHERE run_id IN (SELECT run_id FROM mine)"
    " AND owner = $1 AND status = ANY($3::text[]) FOR UPDATE SKIP LOCKED),"
    f" renewed AS (UPDATE runs SET lease_expires_at = {_NOW} + $2"
    " WHERE run_id IN (SELECT run_id FROM free) RETURNING run_id, cancel_requested)"
    " SELECT m.run_id, coalesce(r.cancel_requested, m.cancel_requested), r.run_id IS NOT NULL"
    " FROM mine m LEFT JOIN renewed r USING (run_id)"
)
"""Renew the owner's leases on the given runs whose rows nobody holds; each run still the
owner's (as of the statement's start), with its cancel flag and whether it was renewed."""
_RENEW_HELD = (
    f"UPDATE runs SET lease_expires_at = {_NOW} + $2"
    " WHERE run_id = ANY($4::text[]) AND owner = $1 AND status = ANY($3::text[])"
    " RETURNING run_id, cancel_requested"
)
"""Renew the leases `_RENEW` skipped, waiting for their rows (under `HELD_ROW_WAIT`)."""
HELD_ROW_WAIT = 0.2
"""Seconds a renewal waits for a row another session holds: enough for a commit in flight
(this replica's writer, another's Cancel), short of an operator's open transaction."""

IDLE_IN_TRANSACTION = 10.0
"""Seconds a session of this store may sit idle inside a transaction before the database ends
it (`idle_in_transaction_session_timeout`). The store's transactions send their statements back
to back; one left open is a replica stopped mid-batch (a paused process or VM, a frozen event
loop), and its row locks would hold every other replica's write to those rows, the whole
writer of that replica with it (a Cancel of one of its runs, say), for as long as it stays
stopped. Ended, its transaction rolls back and the replica reconnects when it goes on."""
ANSWER_WAIT = 10.0
"""Seconds a statement, or a new connection, may go unanswered before the database is taken
as away (StorageUnavailable; readiness off; the writer connects anew). A database that
refuses or drops connections says so at once, but a hung primary, or a host behind a network
that drops every packet, leaves the connection open with nothing coming back: without this,
every call waited for its own deadline while health said SERVING and the metrics' scrape
hung (audit), and after a failover to another address the writer waited out the kernel's
retransmissions (about 15 minutes). The store's statements take milliseconds (a row lock
they wait for is bounded by `lock_timeout`, `WRITER_LOCK_WAIT`), a run's delete too (a large
run's rows are removed afterwards, a chunk per transaction: storage/removal.py); the
migrations, which may wait for another replica's, are not bounded."""
_MAX_BATCH = 500
_READERS = 4
_POLL_INTERVAL = 1.0
_RECONNECT_DELAY = 0.5
_CONNECTION_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)
_LOST = (
    OSError,  # refused, reset, timed out
    asyncpg.PostgresConnectionError,  # SQLSTATE 08: the connection failed or was closed mid-call
    asyncpg.exceptions.AdminShutdownError,  # 57P01: the server is shutting down
    asyncpg.exceptions.CrashShutdownError,  # 57P02
    asyncpg.exceptions.CannotConnectNowError,  # 57P03: starting up, in recovery
    asyncpg.InterfaceError,  # "connection is closed"
    asyncpg.exceptions.InternalClientError,  # a connection left mid-operation by a dropped link
)
"""Failures that say the database was not reached."""
_UNWRITABLE = (
    asyncpg.exceptions.InsufficientResourcesError,  # 53: a full disk, out of memory, too many connections
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # 25006: a standby after a failover, a read-only database
)
"""Failures that say the database cannot take writes now, whatever is written."""
_CONTENDED = (
    asyncpg.exceptions.QueryCanceledError,  # 57014: statement_timeout, a DBA's pg_cancel_backend
    asyncpg.exceptions.LockNotAvailableError,  # 55P03: lock_timeout, a row another session holds
    asyncpg.exceptions.TransactionRollbackError,  # 40: a deadlock, a serialization failure
)
"""Failures that say the database could not do it now: in time, or without a conflict."""
_REFUSED = _UNWRITABLE + _CONTENDED
"""What a change may fail with alone (rolled back to its savepoint) that is not its fault."""
_UNAVAILABLE = _LOST + _REFUSED
"""None says the database refused what was asked: they are reported as StorageUnavailable
(retry), and the engine drives a run on once a write succeeds."""


def _unavailable(exc: BaseException) -> StorageUnavailable:
    """The error a caller sees for an unavailable database (its address stays in the server log)."""
    detail = type(exc).__name__
    if isinstance(exc, TimeoutError):  # asyncpg's own says nothing
        return StorageUnavailable(f"{detail}: the database did not answer in time")
    sqlstate = getattr(exc, "sqlstate", None)
    return StorageUnavailable(f"{detail} {sqlstate}: {exc}" if sqlstate else detail)


async def _reached(call: Awaitable[Any]) -> Any:
    """`call`'s result, with an unavailable database raised as StorageUnavailable."""
    try:
        return await call
    except _UNAVAILABLE as exc:
        raise _unavailable(exc) from exc


class _Readers:
    """The readers' pool, with an unavailable database (`_UNAVAILABLE`) reported as
    StorageUnavailable, and each such refusal told to the hub (`refused(1)`: its listeners
    count it in `runservice_store_unavailable_total` and turn readiness off), as the writer
    tells its refused changes: a call whose first store access is a read is refused there
    while the database is away. A write that goes through is told too (`reached`): the
    claim loop writes every `--claim-interval`, so an idle replica soon learns that the
    database is back. A read alone is not: a database that answers reads but refuses writes
    (read-only, or a standby after a failover) cannot serve."""

    __slots__ = ("_hub", "_pool")

    def __init__(self, pool: Any, hub: EventHub) -> None:
        self._pool = pool
        self._hub = hub

    async def reached(self, call: Awaitable[Any], *, wrote: bool = False) -> Any:
        """`call`'s result (`_reached`), a refusal told to the hub, and with `wrote` (`call`
        changed the database) its success."""
        try:
            result = await _reached(call)
        except StorageUnavailable as exc:
            self._hub.refused(1, away=not isinstance(exc.__cause__, _CONTENDED))
            raise
        if wrote:
            self._hub.reached()
        return result

    async def fetch(self, *args: Any, wrote: bool = False) -> Any:
        return await self.reached(self._pool.fetch(*args), wrote=wrote)

    async def fetchrow(self, *args: Any) -> Any:
        return await self.reached(self._pool.fetchrow(*args))

    async def fetchval(self, *args: Any) -> Any:
        return await self.reached(self._pool.fetchval(*args))

    def acquire(self) -> Any:
        return self._pool.acquire()


_WAL_BEHIND = (
    "(current_setting('synchronous_standby_names') <> ''"
    " OR pg_current_wal_flush_lsn() < pg_current_wal_insert_lsn())"
)
_FLUSH_WAL = (
    "set_config('synchronous_commit', 'on', true)"
    " || pg_logical_emit_message(true, 'runservice', 'flush')::text"
)
_FLUSH_IF_BEHIND = f"SELECT CASE WHEN {_WAL_BEHIND} THEN {_FLUSH_WAL} END"
"""Flush the WAL up to now unless it is flushed already: a transactional WAL message (any
role may write one) committed with `synchronous_commit` on waits for the flush of every
record before it. The insert position, read after the reads it follows, is past the commit
of anything they saw. With synchronous standbys the local flush position says nothing
about theirs, so the message is always written (its commit waits for them too)."""

_SETTLED_SQL = "({})".format(", ".join(f"'{status.value}'" for status in RunStatus if status.settled))
_FLUSH_IF_ACTIVE = (
    f"(SELECT CASE WHEN f.status IN {_SETTLED_SQL} THEN NULL"
    f" WHEN NOT {_WAL_BEHIND} THEN 'flushed' ELSE {_FLUSH_WAL} END"
    " FROM runs f WHERE f.run_id = $1)"
)
"""`_FLUSH_IF_BEHIND` for a read of the run `$1`, as a column of the read itself (evaluated
once, after its snapshot, when it returns a row): nothing when the run is settled, else the
WAL message when the flush position is behind. The read's own commit then waits for the
flush. NULL: settled, not checked; else checked."""

WRITER_LOCK_WAIT = 2.0
"""Seconds the writer waits for a row another session holds (its `lock_timeout`, unless the
database sets one), far longer than any commit of another replica takes: past it, the change
of that run is refused alone (retried by its drive), and the writer goes on with the others.
With PostgreSQL's default, no timeout, one row an operator's open transaction held stopped the
writer, and with it every run of the replica, for as long as the transaction stayed open."""


HELD_ROWS_KEPT = 1024
"""How many held runs the writer remembers (`PostgresStore._held_rows`) before it forgets them
all: a run whose row stays held and that is never written again would otherwise stay for good."""


async def _writer_session(conn: Any) -> None:
    """Set up the writer's session: `_KEYED_ONLY`, and `WRITER_LOCK_WAIT` unless the
    database (or its user) has a `lock_timeout` of its own."""
    await conn.execute(_KEYED_ONLY)
    if await conn.fetchval("SELECT current_setting('lock_timeout') = '0'"):
        await conn.execute(f"SET lock_timeout = {int(WRITER_LOCK_WAIT * 1000)}")


_KEYED_ONLY = "SET enable_seqscan = off"
"""For the writer's session, after the migrations. Its statements find rows by key, and
they run generic plans (`plan_cache_mode`), made at their first execution: made on a new
database, before PostgreSQL has statistics, such a plan scanned the whole runs table, and
kept doing so as it grew until autovacuum's next ANALYZE replaced it (one at a time after a
burst of 20,000 runs, 200 runs/s instead of 470; BENCHMARKS.md). A sequential scan is never
the writer's best plan, so the planner is told not to consider one unless nothing else can
run the statement."""

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    script text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""

_SELECT_RUN = f"SELECT {RUN_COLUMN_LIST} FROM runs"
_SELECT_SUMMARY = "SELECT {} FROM runs".format(
    ", ".join("NULL" if c in ("input", "state", "request_context", "result") else c for c in RUN_COLUMNS)
)
"""A listing's summaries: the payload columns are not read at all."""


_NOT_LEFTOVERS = "NOT EXISTS (SELECT 1 FROM deleted_runs WHERE run_id = $1)"
"""The rows under the id `$1` are not those of a deleted run still being removed: reads hide
those (storage/removal.py). Evaluated once per statement, a lookup in a table kept nearly empty."""
_REQUEST_SEEN = f"(kind = 'delete' OR {_NOT_LEFTOVERS})"
"""A request mark a read may see: a delete's (kept after its run, for a retry of it), or one
under an id no deleted run's rows still hold."""
_FIND_LEFTOVERS = "SELECT run_id FROM deleted_runs ORDER BY deleted_at LIMIT $1"
_TAKE_LEFTOVERS = "SELECT events_below FROM deleted_runs WHERE run_id = $1 FOR UPDATE SKIP LOCKED"
_REMOVE_ROWS = tuple(
    f"WITH d AS (DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM {table}"
    f" WHERE run_id = $1{extra} LIMIT $2) RETURNING 1) SELECT count(*) FROM d"
    for table, key, extra in removal.LEFTOVER_KEYS
)
"""A chunk of a deleted run's leftovers of each kind but events (at most `$2` rows each)."""
_REMOVE_EVENTS = (
    "WITH d AS (DELETE FROM events WHERE run_id = $1 AND seq >= $2 AND seq < $3 RETURNING 1)"
    " SELECT count(*) FROM d"
)
"""The events of a deleted run in a range of sequences: from the last down, its first event last.
A range the planner estimates as it is, not "the last n" (`seq > (SELECT seq ... ORDER BY seq
DESC OFFSET n)`): estimated at a third of the run's events, that was planned as a scan of the
whole table once the run was most of it, for each chunk (3 million events, under load, took
200 s instead of 9). A range also reads no index entry of the chunks before (dead until a vacuum)."""
_MOVE_BELOW = "UPDATE deleted_runs SET events_below = $2 WHERE run_id = $1"
_FORGET_LEFTOVERS = "DELETE FROM deleted_runs WHERE run_id = $1"
REMOVAL_CHUNK = 5000
"""Rows of each kind one transaction of the removal deletes (a few milliseconds, on a pooled
connection: the writer never waits for it)."""
REMOVAL_POLL = 10.0
"""Seconds between the removal's looks for leftovers nobody here announced: another replica
killed while it removed them (this process's own deletes wake it)."""


class _OneRunReads(NamedTuple):
    """The statements that read one run (`$1`), each with a column that checks the WAL."""

    run: str
    run_with_steps: str
    """The run and its steps in one statement, so both come from the same snapshot."""
    events: str

    @classmethod
    def checking(cls, check: str) -> _OneRunReads:
        """With `check` as the checking column (`_FLUSH_IF_ACTIVE`, or "NULL": no check)."""
        return cls(
            f"SELECT {RUN_COLUMN_LIST}, {check} FROM runs WHERE run_id = $1",
            f"SELECT {', '.join('r.' + c for c in RUN_COLUMNS)}, {check}, s.record,"
            # A foreach step's item rows, comma-separated JSON (NULL when it has none).
            " (SELECT string_agg(f.item, ','::bytea) FROM foreach_items f"
            " WHERE f.run_id = s.run_id AND f.path_key = s.path_key)"
            f" FROM runs r LEFT JOIN steps s ON s.run_id = r.run_id AND {_NOT_LEFTOVERS}"
            " WHERE r.run_id = $1",
            f"SELECT seq, time, body, {check} FROM events WHERE run_id = $1 AND seq > $2"
            f" AND {_NOT_LEFTOVERS} ORDER BY seq LIMIT $3",
        )


_CHECKED_READS = _OneRunReads.checking(_FLUSH_IF_ACTIVE)
_UNCHECKED_READS = _OneRunReads.checking("NULL")

_Pending = batching.Pending


class PostgresStore(PostgresSchedules):
    """A `Store` on one PostgreSQL database (see the module docstring for the design)."""

    exclusive = False
    """Several replicas may share the database: leases expire unless renewed (`Store.exclusive`)."""

    def __init__(
        self,
        url: str,
        *,
        poll_interval: float = _POLL_INTERVAL,
        notify: bool = True,
        idle_in_transaction: float = IDLE_IN_TRANSACTION,
        answer_wait: float = ANSWER_WAIT,
    ) -> None:
        self.url = url
        self.answer_wait = answer_wait
        """Seconds a statement or a connect may go unanswered (`ANSWER_WAIT`)."""
        self._idle_in_transaction = {
            "idle_in_transaction_session_timeout": str(int(idle_in_transaction * 1000))
        }
        self.hub = EventHub()
        self.transactions = 0
        """Write transactions committed so far (one per group-commit batch)."""
        self.syncs = 0
        """Of those, the ones committed with their WAL flush (synchronous_commit on)."""
        self.durable = 0
        """Every transaction up to this one is flushed (the durability watermark)."""
        self.flush_checks = 0
        """Reads that made sure the WAL was flushed before answering (see `_flushed`)."""
        self._quiet_progress = True
        """Internal progress commits without waiting for its flush (unless the database
        refuses `_FLUSH_IF_BEHIND`, which reads then could not make before answering)."""
        self._one_run = _CHECKED_READS
        self.poll_interval = poll_interval
        """Seconds between reads of the watched runs' last sequences (the lost-NOTIFY safety net)."""
        self.notify = notify
        """Announce committed events with NOTIFY (other processes' watchers then hear at once)."""
        self._state = "new"  # -> "open" -> "closed"
        self._accepting = False
        self._writer: Any = None  # asyncpg.Connection
        self._held_rows: set[str] = set()
        """Runs whose change the last batch with one was refused for: another session held
        their row past the writer's `lock_timeout` (`apply_batch`'s `held`)."""
        self._writer_pid = 0
        self._pool: Any = None  # asyncpg.Pool
        self._listener: Any = None  # asyncpg.Connection
        self._room_listeners: list[Callable[[str], None]] = []
        """Told of room woken runs hold (`listen_room`)."""
        self._name: str | None = None
        """The replica name this process holds (`take_over`), on `_name_holder`'s session."""
        self._owner = ""
        self._name_holder: Any = None  # asyncpg.Connection
        self._name_lock = asyncio.Lock()
        """One taker of the name at a time: the boot's and the feed loop's would race."""
        self._took_over = False
        self._name_missed = False
        self._queue = batching.WriteQueue()
        self._writer_task: asyncio.Task[None] | None = None
        self._feed_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._known: dict[str, int] = {}
        """Last sequence this process's subscribers were given or told of, per watched run."""
        self._born: dict[str, float] = {}
        """`created_at` of each watched run when the poll last read it."""
        # The feed loop's three doings fail and recover apart (a LISTEN connection refused
        # while polls get through): one's success must not forget another's failure.
        self._listen_failures = logs.LoopFailures(logger)
        self._poll_failures = logs.LoopFailures(logger)
        self._name_failures = logs.LoopFailures(logger)
        self.removal = removal.Removal(
            "postgres",
            self._find_leftovers,
            self._count_leftovers,
            self._remove_leftovers,
            self._requeue,
            self.hub.removing,
            poll=REMOVAL_POLL,
        )
        """Removes the rows of large deleted runs after their delete (storage/removal.py)."""

    # -- lifecycle -------------------------------------------------------------

    async def open(self) -> None:
        """Migrate the schema, open the connections, start the writer and the event feed."""
        if self._state != "new":
            raise RuntimeError("store was already opened")
        self._state = "open"
        self._loop = asyncio.get_running_loop()
        try:
            migrator = await self._connect(bounded=False)  # may wait for another replica's migration
            try:
                await migrate(migrator)
            finally:
                await migrator.close()
            self._writer = await self._connect()
            await _writer_session(self._writer)
            self._writer_pid = self._writer.get_server_pid()
            try:
                await self._writer.fetchval(_FLUSH_IF_BEHIND)
            except asyncpg.PostgresError as exc:  # a server that refuses it: flush every commit
                logger.warning(
                    "the database refuses the WAL flush check (%s): every commit waits for its flush", exc
                )
                self._quiet_progress = False
                self._one_run = _UNCHECKED_READS
            self._pool = await asyncpg.create_pool(
                self.url,
                # Connections on demand: with a floor to keep, asyncpg logs a traceback each
                # second while the database is away (one line per failed read is ours to log).
                min_size=0,
                max_size=_READERS,
                reset=_keep_session,
                server_settings=self._idle_in_transaction,
                timeout=self.answer_wait,
                command_timeout=self.answer_wait,
            )
        except BaseException as exc:
            self._state = "closed"
            await self._release()
            if isinstance(exc, _CONNECTION_ERRORS):
                raise OSError(f"cannot open PostgreSQL database {redact_url(self.url)}: {exc}") from exc
            raise
        self._writer_task = asyncio.create_task(self._write_loop(), name="postgres-writer")
        self._feed_task = asyncio.create_task(self._feed(), name="postgres-event-feed")
        self._accepting = True
        self.removal.start()

    async def _connect(self, *, bounded: bool = True) -> Any:
        """A new session (`bounded`: its connect and each statement within `answer_wait`)."""
        # synchronous_commit on whatever the server default: a returned write survives a
        # crash of the database host, not only of this process. The writer's statements
        # have fixed shapes whose best plan does not depend on the values (index lookups
        # by run id), so generic plans save re-planning them (~10 % of the server's CPU
        # per run, measured in-process; within this machine's noise, but never worse). No
        # JIT: the statements are short, and where the statistics made one run look huge
        # (a run of millions of events) PostgreSQL spent ~50 ms compiling a delete.
        return await asyncpg.connect(
            self.url,
            server_settings={
                "synchronous_commit": "on",
                "application_name": "runservice",
                "plan_cache_mode": "force_generic_plan",
                "jit": "off",
                **self._idle_in_transaction,
            },
            timeout=self.answer_wait,
            command_timeout=self.answer_wait if bounded else None,
        )

    @property
    def listening(self) -> bool:
        """True while the LISTEN connection is up (events from other processes arrive at once)."""
        return self._listener is not None and not self._listener.is_closed()

    async def close(self) -> None:
        """Refuse new writes, commit the queued ones, then release every resource. Idempotent."""
        if self._state == "closed":
            return
        self._state = "closed"
        self._accepting = False
        try:
            # First: no chunk is left in flight, and the changes parked for one are refused
            # (retry), never handed back to a writer that stopped.
            await self.removal.aclose()
            if self._writer_task is not None:
                self._queue.put_nowait(None)  # after every queued write: they are flushed first
                await self._writer_task
        finally:
            self._writer_task = None
            if self._feed_task is not None:
                self._feed_task.cancel()
                # gather: a cancellation of this caller is not swallowed with the feed's own.
                await asyncio.gather(self._feed_task, return_exceptions=True)
                self._feed_task = None
            await self._release()

    async def _release(self) -> None:
        writer, self._writer = self._writer, None
        listener, self._listener = self._listener, None
        holder, self._name_holder = self._name_holder, None
        pool, self._pool = self._pool, None
        try:
            if pool is not None:
                await pool.close()
        finally:
            for conn in (listener, writer, holder):
                if conn is not None:
                    try:
                        await conn.close(timeout=5)
                    except Exception:  # closing anyway: drop the socket
                        conn.terminate()

    def _drop_writer(self) -> None:
        """Forget the writer's connection (closed, or left mid-operation by a dropped link)."""
        writer, self._writer = self._writer, None
        # Its backend's pid may go to another replica's connection: that one's notices must not
        # be taken for this process's own (audit).
        self._writer_pid = 0
        if writer is not None and not writer.is_closed():
            writer.terminate()

    # -- writes ----------------------------------------------------------------

    async def sync(self, upto: int | None = None) -> None:
        """Return once every transaction up to `upto` (default: every one so far) is flushed."""
        target = self.transactions if upto is None else upto
        if self.durable >= target:
            return
        await self._readers().fetchval(_FLUSH_IF_BEHIND)
        self.durable = max(self.durable, target)

    async def write(self, change: RunWrite, *, durable: bool = True) -> WriteResult:
        """Commit one change (see `RunWrite`); returns once it is durable (its WAL flushed),
        or with `durable=False` once it is committed (a later flushed commit covers it).

        Once called, the change is committed even if the caller is cancelled while
        waiting. The writer reads the change later, with its batch: do not mutate it meanwhile.
        """
        return await self.submit(change, durable=durable)

    def submit(self, change: RunWrite, *, durable: bool = True) -> asyncio.Future[WriteResult]:
        """`write`, as the future it waits for (see `Store.submit`)."""
        if not self._accepting:
            raise RuntimeError("store is not open" if self._state == "new" else "store is closed")
        assert self._loop is not None
        future: asyncio.Future[WriteResult] = self._loop.create_future()
        quiet = not durable and self._quiet_progress
        self._queue.put_nowait((batching.Quiet(change) if quiet else change, future))
        return future

    async def _write_loop(self) -> None:
        """Drain the queue in batches, one transaction per batch, until the close sentinel."""
        await batching.write_batches(self._queue, self._commit, max_batch=_MAX_BATCH, stopped=self._stop)

    def _stop(self) -> None:
        self._accepting = False

    async def _commit(self, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        hub = self.hub
        changes: list[RunWrite] = []
        flush = False
        for item, _ in batch:
            if isinstance(item, batching.Quiet):
                item = item.change
                # A watcher here would be handed its events: they must be flushed first.
                flush = flush or (bool(item.events) and hub.watching(item.run_id))
            else:
                flush = True
            changes.append(item)
        try:
            if self._writer is None or self._writer.is_closed():
                # The database restarted or the connection dropped: a batch that failed at
                # COMMIT was reported as failed; start over on a new connection.
                self._writer = None
                writer = await self._connect()
                await _writer_session(writer)
                self._writer, self._writer_pid = writer, writer.get_server_pid()
            outcomes = await apply_batch(
                self._writer, changes, self.notify, quiet=not flush, held=self._held_rows
            )
        except Exception as exc:  # BEGIN or COMMIT failed, or the connection: nothing is reported committed
            away = not isinstance(exc, _CONTENDED)
            if isinstance(exc, _UNAVAILABLE) or (self._writer is not None and self._writer.is_closed()):
                # Whether the batch took is unknown; the next one starts on a new connection
                # (after a failover, perhaps to the new primary).
                logger.warning("the writer lost the database: %s", _unavailable(exc).detail)
                self._drop_writer()
                exc = _unavailable(exc)
            hub.committed(time.perf_counter() - started, len(batch))
            if isinstance(exc, StorageUnavailable):
                hub.refused(len(batch), away=away)
            batching.fail(batch, exc)
            return
        for change, outcome in zip(changes, outcomes, strict=True):
            if isinstance(outcome, asyncpg.exceptions.LockNotAvailableError):
                if len(self._held_rows) >= HELD_ROWS_KEPT:
                    # Only a shortcut: a run forgotten here waits out `lock_timeout` once more.
                    # Runs never written again would otherwise stay in it for good.
                    self._held_rows.clear()
                self._held_rows.add(change.run_id)  # its next batches find out at once (apply_batch)
            elif self._held_rows:
                self._held_rows.discard(change.run_id)
        refusal = next((outcome for outcome in outcomes if isinstance(outcome, _REFUSED)), None)
        away = False
        if refusal is not None:  # those changes failed alone, rolled back to their savepoints
            logger.warning("the database refused writes for now: %s", _unavailable(refusal).detail)
            refused = [outcome for outcome in outcomes if isinstance(outcome, _REFUSED)]
            away = not all(isinstance(o, _CONTENDED) for o in refused)
            hub.refused(len(refused), away=away)
            outcomes = [_unavailable(o) if isinstance(o, _REFUSED) else o for o in outcomes]
        self.transactions += 1
        if flush:
            self.syncs += 1
            self.durable = self.transactions
        hub.committed(time.perf_counter() - started, len(batch))
        if not away:
            hub.reached()
        # A create of an id whose deleted run's rows are still being removed waits for them.
        answered, told = self.removal.hold(batch, outcomes)
        committed = batching.answer(answered, told)
        deleted = batching.deleted(changes, outcomes)
        if deleted:
            self.removal.wake()  # the rows of a large run are left to it
        if not flush and any(hub.watching(event.run_id) for event in committed):
            # Someone here subscribed while the batch was in flight: flush before they hear of it.
            number = self.transactions
            try:
                await self._writer.fetchval(_FLUSH_IF_BEHIND)
            except _CONNECTION_ERRORS as exc:
                # Its watchers re-read the log instead, and their read flushes what it returns.
                logger.warning("flushing the WAL for a new watcher failed: %s", exc)
                watched = {event.run_id for event in committed if hub.watching(event.run_id)}
                committed = [event for event in committed if event.run_id not in watched]
                for run_id in watched:
                    hub.nudge(run_id)
            else:
                self.durable = max(self.durable, number)
        known = self._known
        for event in committed:  # what the hub carries, the poll need not announce again
            if hub.watching(event.run_id) and event.sequence > known.get(event.run_id, 0):
                known[event.run_id] = event.sequence
        for run_id in deleted:
            # A new run under its id starts its log again at 1: what is known of the old
            # log must not hide the new one's.
            known.pop(run_id, None)
        hub.deleted(deleted)  # its followers here re-read and end
        try:
            hub.publish(committed, batching.births(outcomes))
        except Exception:  # a broken subscriber must not stop the writer; the log is the record
            logger.exception("publishing committed events failed")
        if isinstance(refusal, _UNWRITABLE):  # the next batch connects anew: after a failover, the primary
            self._drop_writer()

    # -- leases ------------------------------------------------------------------

    async def claim_runs(
        self,
        claim: Claim,
        limit: int,
        workflows: Sequence[str],
        definitions: Collection[Definition] | None = None,
        exclude: Collection[str] = (),
        *,
        unowned_only: bool = False,
        overdue: bool = False,
    ) -> list[tuple[str, Lease]]:
        """Take up to `limit` active runs with no live owner (see `Store.claim_runs`).

        `FOR UPDATE SKIP LOCKED`: replicas claiming at once take different runs, and a run
        whose row the writer holds right now (its owner is committing) is skipped."""
        if not workflows or (definitions is not None and not definitions):
            return []
        served = sorted(definitions or ())
        rows = await self._readers().fetch(
            _CLAIM,
            claim.owner,
            claim.seconds,
            _ACTIVE,
            list(workflows),
            limit,
            definitions is not None,
            [d[0] for d in served],
            [d[1] for d in served],
            [d[2] for d in served],
            list(exclude),
            unowned_only,
            overdue,
            wrote=True,
        )
        return [(run_id, Lease(claim.owner, epoch)) for run_id, epoch in rows]

    async def claim_bounded(
        self,
        claim: Claim,
        limit: int,
        workflow_id: str,
        bound: int,
        definitions: Collection[Definition] | None = None,
        exclude: Collection[str] = (),
        *,
        unowned_only: bool = False,
        freed: bool = False,
    ) -> BoundedClaim:
        """See `Store.claim_bounded`: a transaction that takes the workflow's advisory lock,
        counts, then claims (READ COMMITTED: each statement sees what the claims before it,
        which held the lock, committed). The woken runs' servers are told by a NOTIFY on the
        events channel, which a replica too old to know it ignores."""
        if definitions is not None and not definitions:
            return BoundedClaim([], False)
        served = sorted(definitions or ())
        chosen = (
            definitions is not None,
            [d[0] for d in served],
            [d[1] for d in served],
            [d[2] for d in served],
            list(exclude),
            unowned_only,
            False,  # not only the overdue runs
        )

        async def claim_some() -> BoundedClaim:
            async with self._readers().acquire() as conn, conn.transaction():
                await conn.execute(_LOCK_WORKFLOW, workflow_id)
                driven, woken = await conn.fetchrow(_COUNTED, workflow_id)
                room = min(limit, bound - driven - woken)
                rows = []
                if room > 0:
                    rows = await conn.fetch(
                        _CLAIM, claim.owner, claim.seconds, _ACTIVE, [workflow_id], room, *chosen
                    )
                held_back = driven + woken + len(rows) >= bound and await conn.fetchval(
                    _ANY_DUE, _ACTIVE, [workflow_id], *chosen
                )
                if freed and woken and driven < bound:
                    await conn.execute(_TELL_ROOM, workflow_id)
            claimed = [(run_id, Lease(claim.owner, epoch)) for run_id, epoch in rows]
            return BoundedClaim(claimed, bool(held_back))

        result: BoundedClaim = await self._readers().reached(claim_some(), wrote=True)
        return result

    async def wake_bounded(self, run_id: str, lease: Lease, workflow_id: str, bound: int) -> bool:
        """See `Store.wake_bounded`: the count and the change in one transaction under the
        workflow's advisory lock, as `claim_bounded` counts and claims."""

        async def wake() -> bool:
            async with self._readers().acquire() as conn, conn.transaction():
                await conn.execute(_LOCK_WORKFLOW, workflow_id)
                if await conn.fetchval(_AHEAD, workflow_id, run_id) >= bound:
                    await conn.execute(_MARK_WOKEN, run_id, lease.owner, lease.epoch)
                    return False
                await conn.execute(_WAKE, run_id, lease.owner, lease.epoch)
                return True

        woken: bool = await self._readers().reached(wake(), wrote=True)
        return woken

    async def unmark_woken(self, runs: Collection[tuple[str, Lease]]) -> None:
        """See `Store.unmark_woken`: one statement per owner, and a NOTIFY per workflow whose
        marks it cleared, at the commit."""
        by_owner: dict[str, list[tuple[str, int]]] = {}
        for run_id, lease in runs:
            by_owner.setdefault(lease.owner, []).append((run_id, lease.epoch))
        if not by_owner:
            return

        async def unmark() -> None:
            async with self._readers().acquire() as conn, conn.transaction():
                cleared: set[str] = set()
                for owner, marked in by_owner.items():
                    rows = await conn.fetch(
                        _UNMARK_WOKEN, [r for r, _ in marked], [e for _, e in marked], owner
                    )
                    cleared.update(row[0] for row in rows)
                for workflow_id in sorted(cleared):
                    await conn.execute(_TELL_ROOM, workflow_id)

        await self._readers().reached(unmark(), wrote=True)

    async def renew_leases(self, owner: str, seconds: float, run_ids: Collection[str]) -> Renewal:
        """See `Store.renew_leases`. One statement renews every run whose row is free now
        (`FOR UPDATE SKIP LOCKED`); the rows it skipped are waited for, but only briefly
        (`HELD_ROW_WAIT`), and left held if that wait ends. A plain UPDATE of them all waited
        for an operator's open transaction on one row until every lease of the replica ran
        out, and other replicas took its runs over while their bodies still ran here."""
        readers = self._readers()
        rows = await readers.fetch(_RENEW, owner, seconds, _ACTIVE, list(run_ids), wrote=True)
        owned = {run_id: bool(flag) for run_id, flag, _ in rows}
        held = [run_id for run_id, _, renewed in rows if not renewed]
        if not held:
            return Renewal(owned)

        async def wait_for_held() -> list[Any] | None:
            try:
                async with readers.acquire() as conn, conn.transaction():
                    await conn.execute(f"SET LOCAL lock_timeout = {int(HELD_ROW_WAIT * 1000)}")
                    return list(await conn.fetch(_RENEW_HELD, owner, seconds, _ACTIVE, held))
            except asyncpg.exceptions.LockNotAvailableError:
                return None  # rolled back: they stay held

        renewed = await readers.reached(wait_for_held(), wrote=True)
        if renewed is None:
            return Renewal(owned, frozenset(held))
        for run_id in held:  # renewed, or no longer the owner's (another replica took it meanwhile)
            del owned[run_id]
        owned.update((run_id, bool(flag)) for run_id, flag in renewed)
        return Renewal(owned)

    # -- removal of deleted runs' rows (storage/removal.py) -------------------------

    def _requeue(self, pending: _Pending) -> None:
        """Hand a parked change back to the writer (refused once the store closes)."""
        if not self._accepting:
            if not pending[1].done():
                pending[1].set_exception(StorageUnavailable("the store closed; retry"))
            return
        self._queue.put_nowait(pending)

    async def _find_leftovers(self, limit: int) -> list[str]:
        """Ids of deleted runs whose rows are still being removed, oldest first."""
        if self._pool is None:
            return []
        return [row[0] for row in await _reached(self._pool.fetch(_FIND_LEFTOVERS, limit))]

    async def _count_leftovers(self) -> int:
        """How many deleted runs' rows are still being removed."""
        if self._pool is None:
            return 0
        count: int = await _reached(self._pool.fetchval("SELECT count(*) FROM deleted_runs"))
        return count

    async def _remove_leftovers(self, run_id: str) -> tuple[bool | None, int]:
        """One chunk of a deleted run's rows, in a transaction of a pooled connection (never the
        writer's), and the rows it deleted; True once none is left, None while another replica's
        removal holds the run.
        A row of it another session holds (an operator's open transaction) is waited for
        `WRITER_LOCK_WAIT` at most, then `removal.RowsHeld`: the removal tries that run again
        later and goes on with the others. Before, the chunk waited `ANSWER_WAIT` holding a
        reader, was told as the database away, and stopped the removal of every run."""
        if self._pool is None:
            raise StorageUnavailable("the store is closed")

        async def chunk() -> tuple[bool | None, int]:
            async with self._pool.acquire() as conn, conn.transaction():
                # Rows found by key, as the writer's (`_KEYED_ONLY`): never a scan of a whole table
                # for a chunk, whatever the statistics say of the run's share of it.
                await conn.execute(
                    f"SET LOCAL enable_seqscan = off; SET LOCAL lock_timeout = {int(WRITER_LOCK_WAIT * 1000)}"
                )
                # Replicas take turns on a run; a run its writer is deleting right now waits.
                below = await conn.fetchval(_TAKE_LEFTOVERS, run_id)
                if below is None:
                    return (None if await conn.fetchval(HAS_LEFTOVERS, run_id) else True), 0
                rows = 0
                full = False
                for sql in _REMOVE_ROWS:
                    removed = await conn.fetchval(sql, run_id, REMOVAL_CHUNK)
                    rows += removed
                    full = removed >= REMOVAL_CHUNK or full
                if full:
                    return False, rows
                # Events once the rest is gone, the first one last: it keeps the id from a
                # create that slipped past the check (storage/removal.py).
                low = max(below - REMOVAL_CHUNK, 1)
                rows += await conn.fetchval(_REMOVE_EVENTS, run_id, low, below)
                if low > 1:
                    await conn.execute(_MOVE_BELOW, run_id, low)
                    return False, rows
                await conn.execute(_FORGET_LEFTOVERS, run_id)
                return True, rows

        try:
            done: tuple[bool | None, int] = await _reached(chunk())
        except StorageUnavailable as exc:
            if isinstance(exc.__cause__, asyncpg.exceptions.LockNotAvailableError):
                raise removal.RowsHeld(run_id) from exc
            raise
        return done

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
                except _CONNECTION_ERRORS as exc:
                    self._listen_failures.failed(
                        logging.WARNING, "LISTEN connection failed (polling meanwhile): %s", exc
                    )
                else:
                    self._listen_failures.recovered()
                    # Notifications sent while nobody listened are gone: look at every watched run.
                    self._known.clear()
            if self._name is not None and (self._name_holder is None or self._name_holder.is_closed()):
                await self._take_name_again()
            try:
                read = await self._poll()
            except (*_CONNECTION_ERRORS, StorageUnavailable) as exc:
                self._poll_failures.failed(logging.WARNING, "polling watched runs failed: %s", exc)
            except Exception:  # keep feeding: watchers depend on this loop for other processes' events
                self._poll_failures.failed(logging.ERROR, "polling watched runs failed", exc_info=True)
            else:
                if read:  # not a turn with nothing watched: it tells nothing of the database
                    self._poll_failures.recovered()
            await asyncio.sleep(self.poll_interval if self._listener is not None else _RECONNECT_DELAY)

    async def _take_name_again(self) -> None:
        """The name is not held: at boot another session held it (a predecessor's, ending, or a
        live twin's), or the database restarted since. Take it, and say once if it stays held
        elsewhere."""
        try:
            async with self._name_lock:
                taken = await self._take_name()
        except (*_CONNECTION_ERRORS, StorageUnavailable) as exc:
            self._name_failures.failed(
                logging.WARNING, "holding the replica name %r failed (trying again): %s", self._name, exc
            )
            return
        self._name_failures.recovered()
        if taken is None:
            if not self._name_missed:
                self._name_missed = True
                logger.warning(
                    "another session holds the replica name %r (trying again): two live servers must"
                    " not share a name",
                    self._name,
                )
            return
        self._name_missed = False
        if taken:
            logger.info("taking over %d runs left by an earlier process named %r", taken, self._name)

    def _on_notify(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        if pid == self._writer_pid:
            return  # this process's own commits reach the hub directly
        for line in payload.splitlines():
            sequence, _, run_id = line.partition(" ")
            if sequence == "0":  # the run was deleted (postgres_writes._notifications)
                self._gone(run_id)
            elif sequence.isdigit():  # anything else on the channel is not ours to read
                self._heard(run_id, int(sequence))
            elif sequence == "room":  # `_TELL_ROOM`: here the workflow's id
                for callback in list(self._room_listeners):
                    callback(run_id)

    def listen_room(self, callback: Callable[[str], None]) -> None:
        """See `Store.listen_room`: through the LISTEN connection."""
        self._room_listeners.append(callback)

    def unlisten_room(self, callback: Callable[[str], None]) -> None:
        if callback in self._room_listeners:
            self._room_listeners.remove(callback)

    def _heard(self, run_id: str, sequence: int) -> None:
        """The log of `run_id` reaches `sequence`: wake its subscribers if that is news to them."""
        if not self.hub.watching(run_id):
            return
        if sequence > self._known.get(run_id, 0):  # an empty log has nothing to miss
            self._known[run_id] = sequence
            self.hub.nudge(run_id)

    def _gone(self, run_id: str) -> None:
        """The run `run_id` was deleted: wake its subscribers, who re-read and find it gone."""
        if self.hub.watching(run_id):
            self._known.pop(run_id, None)  # a new run under this id starts its log again
            self.hub.nudge(run_id)

    async def _poll(self) -> bool:
        """Read the last sequence of every watched run; nudge the ones that moved unseen,
        and those deleted or deleted and made anew (whose notice was lost). Whether it read
        the database (not when nothing is watched)."""
        watched = self.hub.watched()
        for run_id in [r for r in self._known if r not in watched]:
            del self._known[run_id]
        for run_id in [r for r in self._born if r not in watched]:
            del self._born[run_id]
        if not watched or self._pool is None:
            return False
        rows = await self._readers().fetch(
            "SELECT run_id, last_seq, created_at FROM runs WHERE run_id = ANY($1)", watched
        )
        found = set()
        for run_id, last_seq, created_at in rows:
            found.add(run_id)
            if self._born.setdefault(run_id, created_at) != created_at:
                self._born[run_id] = created_at
                self._gone(run_id)
            self._heard(run_id, last_seq)
        for run_id in watched:
            if run_id not in found:
                self._born.pop(run_id, None)
                self._gone(run_id)
        return True

    # -- reads -----------------------------------------------------------------

    def _readers(self) -> Any:
        if self._pool is None:
            raise RuntimeError("store is not open" if self._state == "new" else "store is closed")
        return _Readers(self._pool, self.hub)

    async def get_run(self, run_id: str, *, steps: bool = False) -> Run | None:
        """The run, with its step records when `steps` is true; None if unknown."""
        if not steps:
            row = await self._readers().fetchrow(self._one_run.run, run_id)
            if row is None:
                return None
            self._count_check(row[len(RUN_COLUMNS)])
            (run,) = await self._runs_from_rows([row])
            return run
        rows = await self._readers().fetch(self._one_run.run_with_steps, run_id)
        if not rows:
            return None
        self._count_check(rows[0][len(RUN_COLUMNS)])
        decoded, wanted = step_rows(run_id, rows, with_items)
        column_digests(rows[0], wanted)
        found = await self._values(run_id, wanted)
        return run_from_row(rows[0], found).with_steps(step_records(run_id, decoded, found))

    async def list_runs(self, query: RunQuery) -> list[Run]:
        """Runs matching `query`, newest first (created_at, then run_id, descending)."""
        sql, params = list_sql(query)
        runs = await self._runs_from_rows(await self._readers().fetch(sql, *params))
        # A settled run was last written by a flushed commit (a run settles durably).
        await self._flushed(any(not run.status.settled for run in runs))
        return runs

    async def read_events(self, run_id: str, after: int, limit: int = 1000) -> list[Event]:
        """Events with sequence > `after`, in order, at most `limit`."""
        rows = await self._readers().fetch(self._one_run.events, run_id, after, max(limit, 0))
        if rows:
            self._count_check(rows[0][3])
        try:
            decoded = [(seq, at, orjson.loads(body)) for seq, at, body, _ in rows]
            refs = [values.referred(body) for _, _, body in decoded]
        except UNDECODABLE as exc:
            raise unreadable(run_id, "events", exc) from None
        found: dict[str, Any] = {}
        if any(refs):  # large values: the page ends before they pass values.EVENT_PAGE_BYTES
            sized = [(values.encoded_length(row[2]), ref) for row, ref in zip(rows, refs, strict=True)]
            kept, found = await values.page_values(sized, partial(self._sized_values, run_id))
            decoded = decoded[:kept]
        try:
            events = [Event.from_json(run_id, s, at, values.resolve(body, found)) for s, at, body in decoded]
        except UNDECODABLE as exc:
            raise unreadable(run_id, "events", exc) from None
        return events

    async def _flushed(self, needed: bool) -> None:
        """Before what a read saw is told: when it may hold progress committed without a
        flush (`needed`: it returned an active run), flush the WAL up to now, unless it is
        already (see the module docstring). Reads of one run check within their own
        statement instead (`_FLUSH_IF_ACTIVE`)."""
        if needed and self._quiet_progress:
            self.flush_checks += 1
            await self._readers().fetchval(_FLUSH_IF_BEHIND)

    def _count_check(self, checked: str | None) -> None:
        """Count a read whose statement checked the WAL (`_FLUSH_IF_ACTIVE` gave a value)."""
        if checked is not None:
            self.flush_checks += 1

    async def created_at(self, run_id: str) -> float | None:
        """When the run now under `run_id` was created; None if there is none."""
        found = await self._readers().fetchval("SELECT created_at FROM runs WHERE run_id = $1", run_id)
        return None if found is None else float(found)

    async def has_request(self, run_id: str, kind: str, request_id: str) -> bool:
        """True if a write with this `(kind, request_id)` was committed for the run."""
        row = await self._readers().fetchrow(
            f"SELECT 1 FROM requests WHERE run_id = $1 AND kind = $2 AND request_id = $3 AND {_REQUEST_SEEN}",
            run_id,
            kind,
            request_id,
        )
        return row is not None

    async def request_ids(self, run_id: str, kind: str, prefix: str = "") -> list[str]:
        """See `Store.request_ids` (`starts_with`: a range of the key would follow the
        database's collation, which need not order by code point)."""
        rows = await self._readers().fetch(
            f"SELECT request_id FROM requests WHERE run_id = $1 AND kind = $2 AND {_REQUEST_SEEN}"
            " AND starts_with(request_id, $3)",
            run_id,
            kind,
            prefix,
        )
        return [row["request_id"] for row in rows]

    async def take_over(self, name: str, owner: str) -> int | None:
        """Hold `name` and end the leases of its earlier processes' runs (see `Store.take_over`).
        While the name is held elsewhere, the event feed keeps trying: a killed predecessor's
        session may outlive it by a moment, and the take-over then happens once it ends."""
        self._name, self._owner = name, owner
        async with self._name_lock:
            return await self._take_name()

    async def _take_name(self) -> int | None:
        """Hold the name on a connection of its own, kept open (taken again after the database
        restarted: that ends every session), and the first time it is held, end the leases of
        the earlier processes' runs: how many. None while another session holds it."""
        assert self._name is not None
        if self._name_holder is not None and not self._name_holder.is_closed():
            return 0
        self._name_holder = None
        try:
            holder = await self._connect()
        except _CONNECTION_ERRORS as exc:
            raise _unavailable(exc) from exc
        try:
            held = bool(await holder.fetchval(_HOLD_NAME, self._name))
        except BaseException as exc:
            holder.terminate()
            if isinstance(exc, _CONNECTION_ERRORS):
                raise _unavailable(exc) from exc
            raise
        if not held:
            await holder.close()
            return None
        self._name_holder = holder
        if self._took_over:
            return 0
        taken = int(await self._readers().fetchval(_END_PREDECESSORS, f"{self._name}/", self._owner))
        self._took_over = True
        return taken

    async def settled_before(self, cutoff: float, limit: int) -> list[Due]:
        """At most `limit` runs that settled (ended) before `cutoff`."""
        rows = await self._readers().fetch(
            "SELECT run_id, created_at, last_seq FROM runs WHERE status IN ('success', 'failed', 'canceled')"
            " AND created_at < $1 AND ended_at < $1 LIMIT $2",
            cutoff,
            max(limit, 0),
        )
        return [Due(str(row[0]), row[1], row[2]) for row in rows]

    async def unstarted_before(self, cutoff: float, limit: int) -> list[Due]:
        """At most `limit` runs reserved before `cutoff` and still not started."""
        rows = await self._readers().fetch(
            "SELECT run_id, created_at, last_seq FROM runs"
            " WHERE status = 'pending' AND created_at < $1 LIMIT $2",
            cutoff,
            max(limit, 0),
        )
        return [Due(str(row[0]), row[1], row[2]) for row in rows]

    async def forget_deletes(self, cutoff: float, limit: int) -> int:
        """Remove at most `limit` marks of deletes made before `cutoff`; how many."""
        found = await self._readers().fetchval(_FORGET_DELETE_MARKS, cutoff, max(limit, 0))
        return int(found)

    async def count_runs(self, statuses: frozenset[RunStatus]) -> dict[RunStatus, int]:
        """How many runs have each of `statuses`."""
        counts = dict.fromkeys(statuses, 0)
        if not statuses:
            return counts
        rows = await self._readers().fetch(
            "SELECT status, count(*) FROM runs WHERE status = ANY($1::text[]) GROUP BY status",
            sorted(status.value for status in statuses),
        )
        for status, count in rows:
            counts[RunStatus(status)] = count
        return counts

    async def count_unowned(self) -> int:
        """Active runs with no live owner (see `Store.count_unowned`), on the database's clock."""
        return sum((await self.count_unowned_by_definition()).values())

    async def count_unowned_by_definition(self) -> dict[Definition, int]:
        """See `Store.count_unowned_by_definition`."""
        rows = await self._readers().fetch(
            "SELECT workflow_id, definition_version, definition_digest, count(*) AS runs FROM runs"
            f" WHERE status IN ('running', 'waiting') AND (owner IS NULL OR lease_expires_at < {_NOW})"
            " GROUP BY workflow_id, definition_version, definition_digest"
        )
        return {
            (row["workflow_id"], row["definition_version"], row["definition_digest"]): int(row["runs"])
            for row in rows
        }

    async def _values(self, run_id: str, digests: set[str]) -> dict[str, Any]:
        """The stored values of a run by digest (see storage/values.py)."""
        if not digests:
            return {}
        rows = await self._value_rows(run_id, digests)
        try:
            return {digest: orjson.loads(body) for digest, body in rows}
        except UNDECODABLE as exc:
            raise unreadable(run_id, "stored values", exc) from None

    async def _sized_values(self, run_id: str, digests: set[str]) -> dict[str, tuple[Any, int]]:
        """The stored values of a run by digest, each with its JSON's bytes."""
        rows = await self._value_rows(run_id, digests)
        try:
            return {digest: (orjson.loads(body), values.encoded_length(body)) for digest, body in rows}
        except UNDECODABLE as exc:
            raise unreadable(run_id, "stored values", exc) from None

    async def _value_rows(self, run_id: str, digests: set[str]) -> list[Any]:
        return await self._readers().fetch(  # type: ignore[no-any-return]
            "SELECT digest, body FROM run_values WHERE run_id = $1 AND digest = ANY($2::text[])",
            run_id,
            list(digests),
        )

    async def _runs_from_rows(self, rows: Sequence[Any]) -> list[Run]:
        """Runs from `RUN_COLUMNS` rows, their stored values read with one statement."""
        wanted: list[tuple[str, set[str]]] = []
        for row in rows:
            digests: set[str] = set()
            column_digests(row, digests)
            if digests:
                wanted.append((row[0], digests))
        if not wanted:
            return [run_from_row(row) for row in rows]
        pairs = [(run_id, digest) for run_id, digests in wanted for digest in digests]
        found: dict[str, dict[str, Any]] = {}
        for run_id, digest, body in await self._readers().fetch(
            "SELECT v.run_id, v.digest, v.body FROM run_values v"
            " JOIN unnest($1::text[], $2::text[]) AS w(run_id, digest)"
            " ON v.run_id = w.run_id AND v.digest = w.digest",
            [run_id for run_id, _ in pairs],
            [digest for _, digest in pairs],
        ):
            try:
                found.setdefault(run_id, {})[digest] = orjson.loads(body)
            except UNDECODABLE as exc:
                raise unreadable(run_id, "stored values", exc) from None
        return [run_from_row(row, found.get(row[0])) for row in rows]


async def _keep_session(conn: Any) -> None:
    """The readers' pool hook on release: nothing to undo, so no round trip. asyncpg's
    default sends `RESET ALL`, `UNLISTEN *`, `CLOSE ALL` and an advisory unlock with every
    release, one more round trip per read; the store's reads change no session state (no
    SET, LISTEN, cursor or session lock), and asyncpg rolls back an open transaction itself."""
    del conn


def list_sql(query: RunQuery) -> tuple[str, list[object]]:
    """The statement and parameters of one ListRuns page.

    Statuses are compared one at a time with `=`: `status = ANY(array)` is not an equality
    to the planner, so no `(..., status, created_at, run_id)` index could give rows in
    page order and every matching row was read and sorted. Several statuses are one
    ordered, limited range per status, merged by a UNION ALL (as on SQLite): at most
    `limit` rows per status are read, whatever the table holds.
    """
    statuses = sorted(status.value for status in query.statuses)
    params: list[object] = []

    def param(value: object) -> str:
        params.append(value)
        return f"${len(params)}"

    select = _SELECT_RUN if query.payloads else _SELECT_SUMMARY
    order = " ORDER BY created_at DESC, run_id DESC"
    limit = param(max(query.limit, 0))
    shared = _list_clauses(query, param)
    if len(statuses) <= 1:
        clauses = [*shared, *(f"status = {param(status)}" for status in statuses)]
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return f"{select}{where}{order} LIMIT {limit}", params
    parts = [
        f"({select} WHERE {' AND '.join([*shared, f'status = {param(status)}'])}{order} LIMIT {limit})"
        for status in statuses
    ]
    return f"{' UNION ALL '.join(parts)}{order} LIMIT {limit}", params


def _list_clauses(query: RunQuery, param: Callable[[object], str]) -> list[str]:
    """The conditions of a ListRuns page other than its statuses."""
    conditions: tuple[tuple[str, object], ...] = (
        ("workflow_id =", query.workflow_id),
        ("resource_id =", query.resource_id),
        ("forked_from =", query.forked_from),
        ("definition_version =", query.definition_version),
        ("created_at >=", query.from_time),
        ("created_at <", query.to_time),
    )
    clauses = [f"{condition} {param(value)}" for condition, value in conditions if value is not None]
    if query.resource_ids is not None:
        clauses.append(f"resource_id = ANY({param(sorted(query.resource_ids))}::text[])")
    if query.after is not None:
        created_at, run_id = query.after
        clauses.append(f"(created_at, run_id) < ({param(created_at)}, {param(run_id)})")
    return clauses


# -- migrations ------------------------------------------------------------------------


async def migrate(conn: Any) -> int:
    """Apply every migration not recorded in `schema_migrations`, in order, one per
    transaction, then check the schema has what this code uses; returns the newest version.

    Every migration, not only those above the newest recorded: numbers were merged out of
    order, so a database made in between can lack some below it (say 3-5 with 6 and 9
    applied). Every step holds a transaction-scoped advisory lock, so processes booting at
    once take turns: the first applies a migration, the others then find it recorded.
    """
    while True:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(_MIGRATIONS_TABLE)
            applied = {row[0] for row in await conn.fetch("SELECT version FROM schema_migrations")}
            if unknown := applied - {version for version, _ in MIGRATIONS}:
                await _serve_newer(conn, unknown)
            pending = [(v, script) for v, script in MIGRATIONS if v not in applied]
            if not pending:
                break
            target, script = pending[0]
            await conn.execute(_resource(script))
            await conn.execute(
                "INSERT INTO schema_migrations (version, script) VALUES ($1, $2)", target, script
            )
            if target in BACKWARD_COMPATIBLE:
                await conn.execute(
                    "INSERT INTO schema_compatible (version) VALUES ($1) ON CONFLICT DO NOTHING", target
                )
            logger.info("migrated the database schema to version %d (%s)", target, script)
    if lacking := await _lacking(conn):
        raise RuntimeError(
            f"database lacks {', '.join(lacking)}, which its recorded schema migrations make"
            " (was it changed by hand?); runservice cannot repair it: restore it from a backup"
        )
    return int(max(applied))


async def _serve_newer(conn: Any, unknown: set[int]) -> None:
    """Go on with a database a newer runservice migrated (versions `unknown`) only if every
    one of them is recorded as leaving it usable by older servers; else RuntimeError."""
    compatible: set[int] = set()
    if await conn.fetchval("SELECT to_regclass('schema_compatible') IS NOT NULL"):
        compatible = {row[0] for row in await conn.fetch("SELECT version FROM schema_compatible")}
    if not unknown <= compatible:
        raise RuntimeError(
            f"database has schema versions {sorted(unknown - compatible)} this runservice does not"
            f" know (it knows up to {SCHEMA_VERSION}; a newer runservice migrated it)"
        )
    logger.warning(
        "database has schema versions %s from a newer runservice, which leave it usable by this"
        " one: serving it",
        sorted(unknown),
    )


_REQUIRED: dict[str, str] = {
    "runs": f"{RUN_COLUMN_LIST}, owner, epoch, lease_expires_at, queued_at, woken_epoch",
    "steps": "run_id, path_key, position, record",
    "events": "run_id, seq, time, body",
    "requests": "run_id, kind, request_id, deleted_at",
    "run_values": "run_id, digest, body",
    "foreach_items": "run_id, path_key, item_index, item",
    "schedules": f"{SCHEDULE_COLUMNS}, declared_at",
    "schedule_ticks": "schedule_id, tick, kind, outcome, run_id, fired_at",
    "schedule_triggers": "schedule_id, request_id, outcome, tick, run_id, active_run_id, created_at",
    "schema_compatible": "version",
    "deleted_runs": "run_id, deleted_at, events_below",
}
"""The tables and columns this code's statements use (tests check a new database has exactly these)."""


async def _lacking(conn: Any) -> list[str]:
    """The tables and columns of _REQUIRED the database (the connection's search path) lacks."""
    rows = await conn.fetch(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = any($1::text[])",
        list(_REQUIRED),
    )
    found: dict[str, set[str]] = {}
    for row in rows:
        found.setdefault(row["table_name"], set()).add(row["column_name"])
    lacking = []
    for table, columns in _REQUIRED.items():
        if table not in found:
            lacking.append(f"table {table}")
        else:
            lacking += [f"column {table}.{c}" for c in columns.split(", ") if c not in found[table]]
    return lacking


def _resource(name: str) -> str:
    return resources.files("runservice.storage").joinpath(name).read_text(encoding="utf-8")
