"""The SQLite store: one writer connection with group commit, aiosqlite readers.

Durability (the rule: whatever a caller or a watcher has been told survives a
power loss). The WAL is appended in order and an fsync of it covers every frame
before it, so the writer commits every batch under `synchronous=NORMAL` (safe
against a process crash, no fsync), and a batch that must be synced is followed
by an fdatasync of the WAL file (`_sync_wal`, covering every earlier commit).
That is what `synchronous=FULL` does at a commit in WAL mode, without switching
the connection's level twice per synced batch (two statements of about 20 us),
and a barrier with nothing to commit needs no transaction (FULL needs a frame to
write before it syncs). A batch is synced when it holds a durable `write` (the default),
events of a run someone watches, or a `sync` barrier. `commits` counts the
transactions, `durable` is the watermark: every commit up to it is fsynced.
`sync()` waits until the watermark covers every commit made so far, and reads
(`get_run`, `list_runs`, `read_events`, request ids, schedules) call it before
returning what they saw, so nothing unsynced is ever handed out. That includes a
synced commit while its fsync runs: readers see it from its COMMIT on (under FULL
they saw it only once synced), so what it wrote counts as unsynced until then.
Subscribers of the hub hear only of events at or below the watermark. Internal progress (`write(change,
durable=False)`, leases) commits without an fsync; the next synced commit
covers it. `durability="normal"` never syncs (Mastra's setting): a power loss
may then lose replies and events already delivered. Group commit keeps the
syncs few: every write queued while a transaction is in flight joins the next
one, and one fsync covers the whole batch. A failing write rolls back alone and
the rest of its batch still commits.

WAL checkpoints run off the commit path: the writer's auto-checkpoint is off
and a checkpointer thread with its own connection runs PASSIVE checkpoints
(periodically and when the WAL grows), and a TRUNCATE one at close. A PASSIVE
checkpoint never starts the WAL over by itself: SQLite does that at the next
write only if the checkpoint caught up with the last commit, which never happens
while commits keep coming, so under steady load the WAL would grow without end.
When a checkpoint finds the WAL past `_CHECKPOINT_WAL_BYTES`, the writer runs a
RESTART checkpoint on its own thread between two batches (writes queue meanwhile,
the event loop goes on), and its next commit starts the WAL over. The checkpointer
first catches up and syncs the database file (a checkpoint that does not reach the
last commit leaves the pages it copied unsynced), so the writer only copies and
syncs the frames written since. A reader that holds an old snapshot (a `runservice backup`)
keeps a RESTART from finishing; the writer then waits for it only briefly, and less and less
often while it lasts (`_RESTART_BACKOFF`).

The writer's statements run on the event loop thread and only a synced
`COMMIT` (the WAL write and its fsync, which release the GIL) runs on the writer
thread. A statement is a few microseconds of in-memory B-tree work, but every
call into sqlite3 from a second thread drops and retakes the GIL, and retaking
it while the event loop is busy waits for the interpreter's switch interval:
with the statements on the writer thread, each batch queued behind dozens of
such waits. An unsynced `COMMIT` only writes the batch's WAL frames to the page
cache, so it runs on the loop too: a batch costs at most one hand-off, however
many changes it holds, and internal progress none.

That one hand-off is itself costly when nothing else is going on: two thread
wake-ups, and the loop thread idle in between, cost a run one at a time about
a third of its time on this project's VMs, far more than the fsync's own wait
(BENCHMARKS.md). So a synced batch of one change, with nothing queued behind it,
commits on the loop: there is no other work the loop could do meanwhile (the
GIL is released during the fsync all the same). A larger batch says other work
is waiting, and goes to the writer thread. A disk whose fsync is slow would stall
every call for as long, and gains little from skipping the hand-off: while the
synced commits' moving average time is above `_LOOP_SYNC_LIMIT`, they all go to
the writer thread, and for `_SLOW_SYNC_BACKOFF` seconds after any one of them
took longer than `_SLOW_SYNC` (a disk whose syncs stall now and then). So a sync
that stalls holds the loop once in that time at most (one that hangs, once).

Event sequences are allocated from `runs.last_seq` inside the writing
transaction. With a single writer, commit order is sequence order and a
rolled-back write gives its sequences back: the log of a run is 1, 2, 3, ...
with no gaps, and the hub hears of events only after their commit.

A failed fsync (of the WAL at a synced COMMIT, or of the database file in a checkpoint)
is not retried: the kernel may have dropped the dirty pages of earlier unsynced commits
and reports that once, so a later fsync that succeeds would vouch for writes that are not
on disk. The store fails stop instead (`failure`, `EventHub.listen_failure`): it refuses
every read and write from then on with StorageFailed and leaves the files as they are, and
the server stops, so a restart recovers from what is on disk.

A delete holds the writer (and so the loop) for a bounded time: a run with more rows than
a batch removes with its deletes loses its `runs` row in the batch, and its id goes into
`deleted_runs`; the store's `Removal` deletes its rows afterwards, a chunk per operation of
the writer, so other writes commit in between (storage/removal.py).

One process owns a database file: `open` takes an exclusive `flock` on
`<path>.lock` (beside the file a symbolic link resolves to, so a second path to the same
file takes the same lock), so a second server on the same file refuses to start (boot
recovery assumes nobody else is running these runs).

The files are watched while the store is open (the checkpointer's thread compares the
paths' device and inode with the descriptors held, every tenth of its interval). A
database file deleted or replaced under the server (a cleanup of a temporary directory, a
`rm -r` of the data directory, a copy moved over it) would take every later commit with it
at the next restart, which would start on an empty file: instead, between two batches, the
writer saves everything committed into `<path>.rescued-<UTC time>` (SQLite's backup, read
through the descriptors still open) and the store fails stop (`DatabaseFileMoved`). A
later `open` refuses to create a new database beside a rescued copy. A lock file deleted
or replaced is taken again; if another process holds the new one, the store fails stop.

What the store creates is its owner's alone: a directory 0700, the database, its lock file and
a rescued copy 0600 (`create_private`). SQLite gives the `-wal` and `-shm` files the database
file's mode, so making the database file 0600 before SQLite opens it covers them. Modes of
files and directories that exist already are the operator's: `open` leaves them, and logs one
warning when other users can read the database (`_warn_readable`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import glob
import itertools
import logging
import math
import os
import re
import shlex
import sqlite3
import stat
import sys
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any, TypeGuard

import aiosqlite
import orjson

from runservice.errors import DatabaseFileMoved, RunUnreadable, StorageFailed, StorageUnavailable
from runservice.model import (
    ITEMS_INLINE,
    Event,
    ForeachItem,
    Run,
    RunError,
    RunStatus,
    StepPath,
    StepRecord,
    evolve,
    path_key,
    run_status,
)
from runservice.storage import (
    PRIVATE_DIRECTORY,
    PRIVATE_FILE,
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
    create_private,
    removal,
    values,
)
from runservice.storage.hub import EventHub
from runservice.storage.rows import (
    RUN_COLUMN_LIST,
    RUN_COLUMNS,
    UNDECODABLE,
    Found,
    decoded_run,
    loads,
    step_records,
    step_rows,
    stored_status,
    unreadable,
)
from runservice.storage.sqlite_schedules import SqliteSchedules

logger = logging.getLogger(__name__)

BASE_VERSION = 4
"""The version schema.sql creates; every later change is only a numbered migration."""
MIGRATIONS: dict[int, str] = {
    int(match.group(1)): match.group(0)
    for entry in resources.files("runservice.storage").iterdir()
    if (match := re.fullmatch(r"migrate_v(\d+)\.sql", entry.name))
}
"""version -> script (`migrate_vN.sql` upgrades to N); found by name, so a new change is a new file."""
SCHEMA_VERSION = max([BASE_VERSION, *MIGRATIONS])
BACKWARD_COMPATIBLE = frozenset({16, 17, 18, 19, 20})
"""Migrations that leave the database usable by a server that does not know them (they only
add what older code never reads), recorded in `schema_compatible` (made by 16, so only from
16 on): a server of an earlier version started on the database (a rollback) serves it."""
_MAX_BATCH = 500
_LOOP_SYNC_LIMIT = 0.001
"""Seconds of the synced commits' moving average above which none commits on the event loop
(see the module docstring): on this project's disks an fsync of the WAL takes 0.1-0.3 ms,
sometimes a few ms; a disk slower than this stalls the loop for too long to be worth it."""
_SYNC_AVERAGE_WEIGHT = 0.125
"""Weight of the latest synced commit's time in the moving average."""
_SLOW_SYNC = 0.01
"""Seconds of one synced commit past which synced commits stay off the event loop for
`_SLOW_SYNC_BACKOFF` seconds: the average forgets a stall within a few dozen commits, and a
disk whose syncs stall now and then would hold the loop at each stall (review)."""
_SLOW_SYNC_BACKOFF = 60.0
"""Seconds synced commits stay off the event loop after one took longer than `_SLOW_SYNC`."""
_PAGE_SIZE = 2048
"""Bytes per page of a new database. A commit writes every page it dirtied to the WAL, and a
run's rows land on a few pages of their own (its index entries are keyed by run id): half of
SQLite's default 4096 halves the bytes written per dirty page, for a B-tree a level deeper at
most. In process, 3-step runs at 64 in flight +5 %, foreach -10 % per item; 1024 measured
no better than 2048 (BENCHMARKS.md)."""
_BUSY_TIMEOUT_MS = 5000
_UNAVAILABLE = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_CORRUPT,
    }
)
"""Primary result codes that say the storage could not do a write, not that the write was
wrong: a full disk, a failing device (a file system remounted read-only after errors fails
writes with SQLITE_IOERR or SQLITE_READONLY), a file that cannot be opened, a lock held past
the busy timeout. SQLite rolls the statement back; a later try may succeed. A page that
reads back malformed (SQLITE_CORRUPT) comes from the same failing devices as often as from
a damaged file: a connection that read pages before a device began failing its reads gets
it where a fresh one gets SQLITE_IOERR_CORRUPTFS. It is retryable too, and logged (`_CORRUPT_NOTICE`)
so that an operator restores a backup if it persists."""
_CORRUPT_NOTICE = 60.0
"""Seconds between two warnings that SQLite found the database malformed."""
_LOST_DURABILITY = frozenset({sqlite3.SQLITE_IOERR_FSYNC, sqlite3.SQLITE_IOERR_DIR_FSYNC})
"""Extended codes never retried: a failed fsync, after which the store fails stop (see the
module docstring)."""
_READERS = 2
DURABILITY_MODES = ("full", "normal")
"""`full`: synced before anything is told (the rule); `normal`: never synced (opt-in)."""
_CHECKPOINT_INTERVAL = 1.0
"""Seconds between the checkpointer's looks at the WAL. Under sustained load each look ends in a
restart of the WAL (a pause of the writer of 1-6 ms), and its fsyncs of the WAL and the database
file delay the commits' own fsyncs meanwhile. Every 0.5 s or 0.25 s instead: the slowest run one at
a time 7-8.5 ms rather than 8.5-11 ms, but p99 in process 1.9-2.8 against 1.5-2.0 ms (more
checkpoints, each with fsyncs of its own). BENCHMARKS.md has the figures."""
_CHECKPOINT_WAL_BYTES = 4 * 1024 * 1024
"""A WAL file that grew this much since the last checkpoint is checkpointed at once (else at
each interval, if anything was committed); a WAL holding this much after a checkpoint is
started over by the writer (a RESTART checkpoint)."""
_RESTART_BUSY_MS = 100
"""How long the writer's RESTART checkpoint waits for readers and the checkpointer (writes
queue meanwhile); past it, the WAL is started over after a later checkpoint. The server's
own readers hold a snapshot for a query's few milliseconds; one that holds it for long (a
`runservice backup`, someone's open `sqlite3` session) keeps every RESTART from finishing,
and with 1 s here writes stood still 1 s in every 1.1 s of it (`_RESTART_BACKOFF`)."""
_RESTART_BACKOFF = (1.0, 30.0)
"""Seconds before the writer tries a RESTART again after one that readers kept busy, doubled
after each (from the first to the second figure): a reader holding an old snapshot for
minutes costs the writer 100 ms a few times, then once every 30 s."""
_JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
"""A reset WAL is truncated to this size, so one burst does not keep a large file."""

_SELECT_RUN = f"SELECT {RUN_COLUMN_LIST} FROM runs"
_NOT_LEFTOVERS = "NOT EXISTS (SELECT 1 FROM deleted_runs WHERE run_id = ?)"
"""The rows under an id are not those of a deleted run still being removed: reads hide those."""
_SELECT_RUN_WITH_STEPS = (
    f"SELECT {', '.join('r.' + c for c in RUN_COLUMNS)}, s.record,"
    # A foreach step's item rows as one JSON array (NULL when it has none).
    " (SELECT '[' || group_concat(f.item, ',') || ']' FROM foreach_items f"
    " WHERE f.run_id = s.run_id AND f.path_key = s.path_key)"
    # A deleted run's steps still being removed are not those of a run made beside them (an
    # older runservice's CreateRun knows no `deleted_runs`): hidden, as on PostgreSQL.
    f" FROM runs r LEFT JOIN steps s ON s.run_id = r.run_id AND {_NOT_LEFTOVERS} WHERE r.run_id = ?"
)
"""Parameters: the run id, twice."""
_INSERT_RUN = (
    f"INSERT INTO runs ({RUN_COLUMN_LIST}, owner, epoch, lease_expires_at, queued_at)"
    f" SELECT {', '.join('?' * (len(RUN_COLUMNS) + 4))} WHERE {_NOT_LEFTOVERS}"
    " ON CONFLICT (run_id) DO NOTHING"
)
"""A new run, claimed by its creator or not (owner, epoch, lease end: set in the same row), in
the claim order from now (`queued_at`, see `RunWrite`), then its id (last parameter) again:
nothing is inserted while a deleted run's rows under the id are still being removed (as
PostgreSQL's `_INSERT_RUNS`), nor beside an existing run."""
_INSERT_EVENT = "INSERT INTO events (run_id, seq, time, body) VALUES (?, ?, ?, ?)"
_UPSERT_STEP = (
    "INSERT INTO steps (run_id, path_key, position, record) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (run_id, path_key) DO UPDATE SET position = excluded.position, record = excluded.record"
)
_SETTLED_BEFORE = (
    "SELECT run_id, created_at, last_seq FROM runs WHERE status IN ('success', 'failed', 'canceled')"
    " AND created_at < ? AND ended_at < ? LIMIT ?"
)
"""Settled runs that ended before a cutoff. A run ends after it was created, so the range on
`created_at` holds them all, and the status index (status, created_at) reads just that range."""

_UNSTARTED_BEFORE = (
    "SELECT run_id, created_at, last_seq FROM runs WHERE status = 'pending' AND created_at < ? LIMIT ?"
)
"""Runs reserved before a cutoff and never started (the status index reads just that range)."""

_CREATED_AND_SEQUENCE = "SELECT created_at, last_seq FROM runs WHERE run_id = ?"
_INSERT_REQUEST = "INSERT OR IGNORE INTO requests (run_id, kind, request_id) VALUES (?, ?, ?)"
_INSERT_DELETE_MARK = (
    "INSERT OR IGNORE INTO requests (run_id, kind, request_id, deleted_at) VALUES (?, ?, ?, ?)"
)
_OLD_DELETE_MARK = "SELECT 1 FROM requests WHERE kind = 'delete' AND deleted_at < ? LIMIT 1"
_FORGET_DELETE_MARKS = (
    "DELETE FROM requests WHERE (run_id, kind, request_id) IN (SELECT run_id, kind, request_id"
    " FROM requests WHERE kind = 'delete' AND deleted_at < ? LIMIT ?)"
)
_UPSERT_ITEM = (
    "INSERT INTO foreach_items (run_id, path_key, item_index, item) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (run_id, path_key, item_index) DO UPDATE SET item = excluded.item"
)
_CLEAR_ITEMS = "DELETE FROM foreach_items WHERE run_id = ? AND path_key = ?"

_ACTIVE_SQL = "('running', 'waiting')"
_ACTIVE = frozenset({RunStatus.RUNNING, RunStatus.WAITING})


class _Operation:
    """A write that is not a RunWrite (claims, heartbeats, schedules), run in the writer's batch.

    Claims and heartbeats are not synced by themselves (`durable=False`): one process owns
    the file and voids every lease when it opens it, so a lease lost to a power loss changes
    nothing anyone was told. Schedule changes are answers to callers (a pause, a trigger's
    outcome) or start runs: they are synced like a durable `write`.
    """

    __slots__ = ("apply", "durable", "runs", "schedules")

    def __init__(
        self,
        apply: Callable[[sqlite3.Connection, float], Any],
        *,
        durable: bool = False,
        runs: tuple[str, ...] = (),
        schedules: bool = False,
    ) -> None:
        self.apply = apply
        self.durable = durable
        self.runs = runs
        """Runs whose fields it changes that a read hands out: a read of one waits for a sync
        covering the change, as for a `RunWrite` (claims and heartbeats change none of those)."""
        self.schedules = schedules
        """Whether it changes the schedules: a read of them waits for a sync covering it."""


def _driven(conn: sqlite3.Connection, workflow_id: str, now: float) -> int:
    """The runs of `workflow_id` that live owners drive (`Store.claim_bounded`)."""
    (driven,) = conn.execute(
        "SELECT count(*) FROM runs INDEXED BY runs_by_owner WHERE owner IS NOT NULL"
        " AND workflow_id = ? AND status = 'running' AND lease_expires_at >= ?",
        (workflow_id, now),
    ).fetchone()
    return int(driven)


_WOKEN = (
    "SELECT count(*) FROM runs INDEXED BY runs_woken WHERE workflow_id = ? AND status = 'waiting'"
    " AND woken_epoch IS NOT NULL AND woken_epoch = epoch AND owner IS NOT NULL AND lease_expires_at >= ?"
)
"""The woken runs of a workflow waiting for room of its shared bound (`Store.wake_bounded`)."""


def _woken(conn: sqlite3.Connection, workflow_id: str, now: float, ahead_of: str | None = None) -> int:
    """The woken runs of `workflow_id` waiting for room (`_WOKEN`); with `ahead_of`, only those
    whose sleep ended before that run's (`wake_at`, then run id)."""
    if ahead_of is None:
        (woken,) = conn.execute(_WOKEN, (workflow_id, now)).fetchone()
    else:
        (woken,) = conn.execute(
            f"{_WOKEN} AND run_id <> ? AND (coalesce(wake_at, 0), run_id)"
            " < (SELECT coalesce(wake_at, 0), run_id FROM runs WHERE run_id = ?)",
            (workflow_id, now, ahead_of, ahead_of),
        ).fetchone()
    return int(woken)


def _beyond(prefix: str) -> str | None:
    """The least text after every text that begins with `prefix` (by code point), or None when
    there is none: its last character that is not the greatest, one higher, cut there."""
    kept = prefix.rstrip(chr(sys.maxunicode))
    if not kept:
        return None
    after = ord(kept[-1]) + 1
    # Past the surrogates, which no text holds and sqlite3 cannot bind (U+D7FF: a review).
    return kept[:-1] + chr(0xE000 if 0xD800 <= after <= 0xDFFF else after)


_QUEUED = "coalesce(queued_at, created_at) AS queued"
"""A due run's place in the claim order (`_DueRuns`)."""


class _DueRuns:
    """The runs a claim of `workflows` may take (see `Store.claim_runs`), to claim or to look for."""

    __slots__ = ("_excluded", "_overdue", "_params", "_sql", "_unowned_only")

    def __init__(
        self,
        workflows: Sequence[str],
        definitions: Collection[Definition] | None,
        exclude: Collection[str],
        unowned_only: bool = False,
        overdue: bool = False,
    ) -> None:
        self._unowned_only = unowned_only
        self._overdue = overdue
        served = sorted(definitions or ())
        by_definition = (
            " AND (workflow_id, definition_version, definition_digest)"
            f" IN (VALUES {', '.join(['(?, ?, ?)'] * len(served))})"
            if served
            else ""
        )
        # INDEXED BY: with one workflow the planner preferred runs_by_workflow and read
        # every run the workflow ever had, on the event loop, once per claim interval;
        # this reads only the active ones, (runs_overdue) the suspended runs whose
        # deadline passed, which the engine ends, and (runs_wake_suspended) those whose
        # nested workflow's deadline passed, which the engine drives until it fails.
        # `overdue`: only the runs past their own deadline, which the engine ends undriven.
        placeholders = ", ".join("?" * len(workflows))
        # `queued`: the claim order, when each run was left waiting (see `RunWrite`); a run stored
        # before `queued_at` was (or by an older server) by its creation.
        self._sql = (
            "SELECT run_id, queued FROM ("
            f" SELECT run_id, {_QUEUED} FROM runs INDEXED BY runs_by_workflow_status"
            f" WHERE status IN {_ACTIVE_SQL} AND (owner IS NULL OR lease_expires_at < ?)"
            + (" AND deadline IS NOT NULL AND deadline < ?" if overdue else "")
            + f" AND workflow_id IN ({placeholders}){by_definition}"
            f" UNION ALL SELECT run_id, {_QUEUED} FROM runs INDEXED BY runs_overdue"
            " WHERE status = 'suspended' AND deadline IS NOT NULL AND deadline < ?"
            " AND (owner IS NULL OR lease_expires_at < ?)"
            f" AND workflow_id IN ({placeholders}){by_definition}"
            + (
                ""
                if overdue
                else f" UNION ALL SELECT run_id, {_QUEUED} FROM runs INDEXED BY runs_wake_suspended"
                " WHERE status = 'suspended' AND wake_at IS NOT NULL AND wake_at < ?"
                " AND (owner IS NULL OR lease_expires_at < ?)"
                f" AND workflow_id IN ({placeholders}){by_definition}"
            )
            + ") WHERE run_id NOT IN (SELECT value FROM json_each(?))"
        )
        self._params = (tuple(workflows), tuple(value for definition in served for value in definition))
        self._excluded = orjson.dumps(list(exclude)).decode()

    def _values(self, now: float) -> tuple[Any, ...]:
        workflows, chosen = self._params
        # Leases are compared with it: with nothing before it, only runs with no owner are due.
        lapsed = -math.inf if self._unowned_only else now
        overdue = (now, lapsed, *workflows, *chosen)
        if self._overdue:
            return (lapsed, now, *workflows, *chosen, *overdue, self._excluded)
        return (lapsed, *workflows, *chosen, *overdue, *overdue, self._excluded)

    def claim(
        self, conn: sqlite3.Connection, now: float, claim: Claim, limit: int
    ) -> list[tuple[str, Lease]]:
        """Claim up to `limit` of them, in the order they were left waiting (oldest first)."""
        rows = conn.execute(
            "UPDATE runs SET owner = ?, epoch = epoch + 1, lease_expires_at = ?"
            f" WHERE run_id IN (SELECT run_id FROM ({self._sql}) ORDER BY queued LIMIT ?)"
            " RETURNING run_id, epoch",
            (claim.owner, now + claim.seconds, *self._values(now), limit),
        ).fetchall()
        return [(run_id, Lease(claim.owner, epoch)) for run_id, epoch in rows]

    def any(self, conn: sqlite3.Connection, now: float) -> bool:
        """Whether there is one."""
        (found,) = conn.execute(f"SELECT EXISTS ({self._sql})", self._values(now)).fetchone()
        return bool(found)


class _Sync:
    """A barrier: answered once every commit up to `target` is fsynced."""

    __slots__ = ("target",)

    def __init__(self, target: int) -> None:
        self.target = target


_Pending = batching.Pending


class SqliteStore(SqliteSchedules):
    """A `Store` on one SQLite file (see the module docstring for the design)."""

    exclusive = True
    """One process per file (the lock file): see `Store.exclusive`."""

    def __init__(self, path: str, *, durability: str = "full") -> None:
        if durability not in DURABILITY_MODES:
            raise ValueError(f"durability must be one of {', '.join(DURABILITY_MODES)}, not {durability!r}")
        # Absolute: the files are watched and saved by path while steps run in this process,
        # and a step that changes the working directory must not move them (audit).
        self.path = os.path.abspath(path)
        self.durability = durability
        self.hub = EventHub()
        self._room_listeners: list[Callable[[str], None]] = []
        """Told of room woken runs hold (`listen_room`)."""
        self.transactions = 0
        """Write transactions committed so far (one per group-commit batch)."""
        self.commits = 0
        """Write transactions whose COMMIT was issued (numbered 1, 2, ...: the watermark's scale)."""
        self.durable = 0
        """The durable watermark: every commit up to this number is fsynced (see `sync`)."""
        self._unsynced: dict[str, int] = {}
        """Run id -> the last commit that wrote the run, for runs written since the last sync."""
        self._unsynced_schedules = 0
        """The last commit that changed the schedules (see `_sync_visible`)."""
        self.syncs = 0
        """Synced batches (each one fdatasync of the WAL)."""
        self.wal_restarts = 0
        self.wal_restarts_busy = 0
        """RESTART checkpoints that readers kept from finishing (see `_RESTART_BACKOFF`)."""
        """RESTART checkpoints the writer ran because the WAL kept growing under load."""
        self._checkpointer: _Checkpointer | None = None
        self._state = "new"  # -> "open" -> "closed"
        self._accepting = False
        self._lock_fd: int | None = None
        self._database_fd: int | None = None  # for the checkpointer's fsync of the file
        self._wal_fd: int | None = None  # for the writer's fsync of the WAL (`_sync_wal`)
        self._refused = 0
        """Changes of the last batch refused as StorageUnavailable (for the hub's listeners)."""
        self.failure: StorageFailed | None = None
        """Set when a sync failed: from then on every request is refused (see the module)."""
        self._moved: tuple[str, bool] | None = None
        """How the database file was moved (see the module), and whether to rescue its data:
        set on the loop when the checkpointer's thread notices, acted on by the writer."""
        self._moved_noticed = False  # the checkpointer's thread: tell the loop once
        self._moved_seen = 0  # the checkpointer's thread: looks in a row that found it moved
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._readers: list[_Reader] = []
        self._point: sqlite3.Connection | None = None  # point reads, on the event loop
        self._next_reader = 0
        self._queue = batching.WriteQueue()
        self._sync_seconds = 0.0
        """Moving average of the WAL fsyncs' times (see `_LOOP_SYNC_LIMIT`; a commit's own WAL
        writes are not in it)."""
        self._loop_syncs_after = 0.0
        """Monotonic time before which no synced commit runs on the loop (see `_SLOW_SYNC`)."""
        self.loop_syncs = 0
        """Syncs (a synced commit, or a barrier's fsync alone) made on the event loop (see the
        module docstring)."""
        self._writer_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # One process writes the file: it finds leftovers at open (a crash), else is woken.
        self.removal = removal.Removal(
            "sqlite",
            self._find_leftovers,
            self._count_leftovers,
            self._remove_leftovers,
            self._requeue,
            self.hub.removing,
            poll=None,
        )
        """Removes the rows of large deleted runs after their delete (storage/removal.py)."""

    # -- lifecycle -------------------------------------------------------------

    async def open(self) -> None:
        """Lock the file, create or check the schema, open the connections, start the writer."""
        if self._state != "new":
            raise RuntimeError("store was already opened")
        self._state = "open"
        # Held, not looked up per write: on Python 3.11 get_running_loop() is a getpid() syscall.
        loop = self._loop = asyncio.get_running_loop()
        # The writer connection lives on this one thread for its whole life.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        try:
            self._lock_fd = await loop.run_in_executor(self._executor, lock_database, self.path)
            self._conn = await loop.run_in_executor(self._executor, _connect_writer, self.path)
            _warn_readable(self.path)  # once its -wal and -shm exist
            for _ in range(_READERS):
                self._readers.append(_Reader(await _connect_reader(self.path), self))
            self._point = _connect_point_reader(self.path)
            # Opened once and closed only after every connection: closing a descriptor of the
            # file drops this process's POSIX locks on it, SQLite's included.
            self._database_fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            # The WAL file exists from the writer's first read in WAL mode, and lasts as long as
            # its connection: an fsync through this descriptor syncs what SQLite wrote through its own.
            wal = _wal_path(self._conn)
            self._wal_fd = os.open(wal, os.O_RDONLY | os.O_CLOEXEC)
            self._checkpointer = _Checkpointer(
                self.path,
                wal,
                lambda: self.commits,
                self._database_fd,
                lambda exc: loop.call_soon_threadsafe(self._fail_stop, exc),
                self._watch_files,
            )
            self._checkpointer.start()
        except BaseException:
            self._state = "closed"
            await self._release()
            raise
        self._writer_task = asyncio.create_task(self._write_loop(), name=f"sqlite-writer {self.path}")
        self._accepting = True
        self.removal.start()

    async def close(self) -> None:
        """Refuse new writes, commit the queued ones, then release every resource. Idempotent."""
        if self._state == "closed":
            return
        self._state = "closed"
        self._accepting = False
        try:
            # First: its chunks go through the writer, and the changes parked for them are
            # refused (retry), never handed back to a writer that stopped.
            await self.removal.aclose()
            if self._writer_task is not None:
                self._queue.put_nowait(None)  # after every queued write: they are flushed first
                await self._writer_task
        finally:
            self._writer_task = None
            await self._release()

    async def _release(self) -> None:
        readers, self._readers = self._readers, []
        point, self._point = self._point, None
        if point is not None:
            point.close()
        executor, self._executor = self._executor, None
        conn, self._conn = self._conn, None
        checkpointer, self._checkpointer = self._checkpointer, None
        try:
            if checkpointer is not None:
                # Last, with the writer idle: fold the WAL into the file and truncate it, unless
                # the device failed a sync (its next open replays the WAL as it is on disk).
                final = self.failure is None
                await asyncio.get_running_loop().run_in_executor(None, checkpointer.stop, final)
            for reader in readers:
                await reader.close()
        finally:
            try:
                if executor is not None:
                    try:
                        if conn is not None:
                            await asyncio.get_running_loop().run_in_executor(executor, conn.close)
                    finally:
                        # Returns at once unless the close above was cancelled; then it waits for
                        # the writer thread so the file is unlocked only once nothing writes to it.
                        executor.shutdown(wait=True)
            finally:
                if self._wal_fd is not None:
                    os.close(self._wal_fd)
                    self._wal_fd = None
                if self._database_fd is not None:
                    os.close(self._database_fd)
                    self._database_fd = None
                if self._lock_fd is not None:
                    os.close(self._lock_fd)  # closing the descriptor drops the flock
                    self._lock_fd = None

    # -- writes ----------------------------------------------------------------

    async def write(self, change: RunWrite, *, durable: bool = True) -> WriteResult:
        """Commit one change (see `RunWrite`); returns once it is durable, or with
        `durable=False` once it is committed (safe against a process crash; a later
        synced commit, see `sync`, covers it against a power loss).

        Once called, the change is committed even if the caller is cancelled while
        waiting, so work handed to the store is never lost half-way. The writer reads
        the change later, with its batch: do not mutate its patch, steps or events meanwhile.
        """
        return await self.submit(change, durable=durable)

    def submit(self, change: RunWrite, *, durable: bool = True) -> asyncio.Future[WriteResult]:
        """`write`, as the future it waits for (see `Store.submit`)."""
        return self._enqueue(change if durable else batching.Quiet(change))

    async def sync(self, upto: int | None = None) -> None:
        """Return once every commit up to `upto` (default: every commit made so far) is
        fsynced. Callers await it before telling anyone what those commits hold; waiters
        that arrive together share one fsync. Immediate when the watermark covers it."""
        target = self.commits if upto is None else upto
        if self.durable >= target:
            return
        await self._submit(_Sync(target))

    async def _sync_run(self, run_id: str) -> None:
        """`sync` up to the last commit that wrote `run_id`: what a read of one run saw of it
        is durable then, without waiting for other runs' progress (under load there always
        is some, and a sync of it costs the read an fsync)."""
        target = self._unsynced.get(run_id, 0)
        if target > self.durable:
            await self.sync(target)

    async def _sync_visible(self) -> None:
        """`sync` up to the last commit that changed the schedules: what a read of them saw is
        durable then (such a commit is synced, but readers see it while its fsync runs)."""
        if self._unsynced_schedules > self.durable:
            await self.sync(self._unsynced_schedules)

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
        """Take up to `limit` active runs with no live owner (see `Store.claim_runs`)."""
        if not workflows or (definitions is not None and not definitions):
            return []
        due = _DueRuns(workflows, definitions, exclude, unowned_only, overdue)

        def apply(conn: sqlite3.Connection, now: float) -> list[tuple[str, Lease]]:
            return due.claim(conn, now, claim, limit)

        claimed: list[tuple[str, Lease]] = await self._submit(_Operation(apply))
        return claimed

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
        """See `Store.claim_bounded`: the count and the claim are one operation of the writer;
        the woken runs' servers are those of this process that listen on this store."""
        if definitions is not None and not definitions:
            return BoundedClaim([], False)
        due = _DueRuns([workflow_id], definitions, exclude, unowned_only)
        told = False

        def apply(conn: sqlite3.Connection, now: float) -> BoundedClaim:
            nonlocal told
            driven, woken = _driven(conn, workflow_id, now), _woken(conn, workflow_id, now)
            room = min(limit, bound - driven - woken)
            claimed = due.claim(conn, now, claim, room) if room > 0 else []
            told = freed and woken > 0 and driven < bound
            return BoundedClaim(claimed, driven + woken + len(claimed) >= bound and due.any(conn, now))

        result: BoundedClaim = await self._submit(_Operation(apply))
        if told:
            for callback in list(self._room_listeners):
                callback(workflow_id)
        return result

    def listen_room(self, callback: Callable[[str], None]) -> None:
        """See `Store.listen_room`: only the listeners of this store object hear."""
        self._room_listeners.append(callback)

    def unlisten_room(self, callback: Callable[[str], None]) -> None:
        if callback in self._room_listeners:
            self._room_listeners.remove(callback)

    async def wake_bounded(self, run_id: str, lease: Lease, workflow_id: str, bound: int) -> bool:
        """See `Store.wake_bounded`: the count and the change are one operation of the writer."""

        def apply(conn: sqlite3.Connection, now: float) -> bool:
            if _driven(conn, workflow_id, now) + _woken(conn, workflow_id, now, run_id) >= bound:
                conn.execute(
                    "UPDATE runs SET woken_epoch = epoch WHERE run_id = ? AND owner = ? AND epoch = ?"
                    " AND status = 'waiting' AND woken_epoch IS NOT epoch",
                    (run_id, lease.owner, lease.epoch),
                )
                return False
            conn.execute(
                "UPDATE runs SET status = 'running', wake_at = NULL, woken_epoch = NULL"
                " WHERE run_id = ? AND owner = ? AND epoch = ? AND status = 'waiting'",
                (run_id, lease.owner, lease.epoch),
            )
            return True

        woken: bool = await self._submit(_Operation(apply, runs=(run_id,)))
        return woken

    async def unmark_woken(self, runs: Collection[tuple[str, Lease]]) -> None:
        """See `Store.unmark_woken`: one operation of the writer; the listeners of this store
        object are told of the workflows whose marks it cleared."""
        marked = [(run_id, lease.owner, lease.epoch) for run_id, lease in runs]
        if not marked:
            return

        def apply(conn: sqlite3.Connection, now: float) -> set[str]:
            cleared: set[str] = set()
            for run_id, owner, epoch in marked:
                row = conn.execute(
                    "UPDATE runs SET woken_epoch = NULL WHERE run_id = ? AND owner = ? AND epoch = ?"
                    " AND woken_epoch IS NOT NULL RETURNING workflow_id",
                    (run_id, owner, epoch),
                ).fetchone()
                if row is not None:
                    cleared.add(row[0])
            return cleared

        cleared: set[str] = await self._submit(_Operation(apply))
        for workflow_id in sorted(cleared):
            for callback in list(self._room_listeners):
                callback(workflow_id)

    async def renew_leases(self, owner: str, seconds: float, run_ids: Collection[str]) -> Renewal:
        """Extend `owner`'s leases on `run_ids`; those it still owns with their cancel flags
        (none is ever held: this process is the file's one writer)."""
        ids = orjson.dumps(list(run_ids)).decode()

        def apply(conn: sqlite3.Connection, now: float) -> dict[str, bool]:
            rows = conn.execute(
                "UPDATE runs SET lease_expires_at = ?"
                f" WHERE run_id IN (SELECT value FROM json_each(?)) AND owner = ? AND status IN {_ACTIVE_SQL}"
                " RETURNING run_id, cancel_requested",
                (now + seconds, ids, owner),
            ).fetchall()
            return {run_id: bool(flag) for run_id, flag in rows}

        owned: dict[str, bool] = await self._submit(_Operation(apply))
        return Renewal(owned)

    def _requeue(self, pending: _Pending) -> None:
        """Hand a parked change back to the writer (refused once the store closes or failed)."""
        if not self._accepting or self.failure is not None:
            if not pending[1].done():
                pending[1].set_exception(
                    self._refusal()
                    if self.failure is not None
                    else StorageUnavailable("the store closed; retry")
                )
            return
        self._queue.put_nowait(pending)

    async def _find_leftovers(self, limit: int) -> list[str]:
        """Ids of deleted runs whose rows are still being removed, oldest first."""
        rows = await self._reader().execute_fetchall(
            "SELECT run_id FROM deleted_runs ORDER BY deleted_at LIMIT ?", (limit,)
        )
        return [run_id for (run_id,) in rows]

    async def _count_leftovers(self) -> int:
        """How many deleted runs' rows are still being removed."""
        ((count,),) = await self._reader().execute_fetchall("SELECT count(*) FROM deleted_runs", ())
        return int(count)

    async def _remove_leftovers(self, run_id: str) -> tuple[bool | None, int]:
        """One chunk of a deleted run's rows, as an operation of the writer: other writes go
        in between two chunks. Not synced: nobody is told of it."""
        done: tuple[bool, int] = await self._submit(_Operation(lambda conn, now: _remove_chunk(conn, run_id)))
        return done

    async def _submit(self, item: RunWrite | _Operation | batching.Quiet | _Sync) -> Any:
        return await self._enqueue(item)

    def _enqueue(self, item: RunWrite | _Operation | batching.Quiet | _Sync) -> asyncio.Future[Any]:
        if not self._accepting:
            raise RuntimeError("store is not open" if self._state == "new" else "store is closed")
        assert self._loop is not None
        future: asyncio.Future[Any] = self._loop.create_future()
        if self.failure is not None:
            future.set_exception(self._refusal())
        else:
            self._queue.put_nowait((item, future))
        return future

    def _refusal(self) -> StorageFailed:
        """The error every request gets once the store failed stop."""
        assert self.failure is not None
        return type(self.failure)(self.failure.detail)

    def _fail_stop(self, exc: OSError | sqlite3.Error) -> StorageFailed:
        """A sync failed: refuse everything from now on, and tell the hub's listeners (once)."""
        if self.failure is None:
            self.failure = StorageFailed(_described(exc))
            logger.error(
                "the disk failed to sync %s (%s): writes committed since the last good sync may"
                " not be on disk. Refusing every request from now on; restart the server once"
                " the device is checked (it recovers from what is on disk)",
                self.path,
                self.failure.detail,
            )
            self.hub.failed(self.failure)
        return self._refusal()

    def _watch_files(self) -> None:
        """On the checkpointer's thread: tell the loop, once, that a file moved (see the module)."""
        if self._moved_noticed or self._database_fd is None or self._lock_fd is None or self._loop is None:
            return
        database = _moved(self.path, self._database_fd)
        lock = None if database is not None else _moved(lock_path(self.path), self._lock_fd)
        # Twice in a row, a tenth of a second apart: a glimpse (a path being swapped) stops nothing.
        self._moved_seen = self._moved_seen + 1 if database or lock else 0
        if self._moved_seen < 2:
            return
        self._moved_noticed, self._moved_seen = True, 0
        if database is not None:
            self._loop.call_soon_threadsafe(self._file_moved, database, True)
        elif lock is not None:
            self._loop.call_soon_threadsafe(self._lock_moved, lock)

    def _lock_moved(self, how: str) -> None:
        """The lock file was deleted or replaced: lock the path again, or fail stop when
        another process holds it (two writers would re-drive each other's runs)."""
        if self._state != "open" or self._lock_fd is None:
            return
        try:
            fd = lock_database(self.path)
        except RuntimeError:
            self._file_moved(f"{how} (its lock file), and another process holds the new one", False)
            return
        os.close(self._lock_fd)
        self._lock_fd = fd
        self._moved_noticed = False
        logger.warning(
            "the lock file %s was %s while the server ran: locked it again", lock_path(self.path), how
        )

    def _file_moved(self, how: str, rescue: bool) -> None:
        """Have the writer act on a moved file between two batches (`_stop_moved`)."""
        if self._moved is not None or self.failure is not None or not self._accepting:
            return
        self._moved = (how, rescue)
        # Wakes the writer when nothing else is queued; its future fails with the rest.
        waking: asyncio.Future[Any] = self._enqueue(_Operation(lambda conn, now: None))
        waking.add_done_callback(lambda done: done.cancelled() or done.exception())

    async def _stop_moved(self, how: str, rescue: bool) -> None:
        """Between two batches: save what was committed (when `rescue`), then fail stop."""
        assert self._loop is not None and self._executor is not None
        saved = ""
        if rescue:
            try:
                copy = await self._loop.run_in_executor(self._executor, self._rescue)
            except (OSError, sqlite3.Error) as exc:
                saved = f"; saving what it held failed ({_described(exc)})"
            else:
                saved = f"; everything committed is saved in {copy}: move it back to {self.path}"
        # Callers are told how, not where: paths of the server's disk are for its log.
        self.failure = DatabaseFileMoved(how)
        logger.error(
            "the database file %s was %s%s. Refusing every request from now on; the server stops",
            self.path,
            how,
            saved,
        )
        self.hub.failed(self.failure)

    def _rescue(self) -> str:
        """On the writer thread, idle between batches: copy the database, read through the
        descriptors the writer still holds, beside its path; returns the copy's path."""
        assert self._conn is not None
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = f"{self.path}.rescued-{stamp}"
        Path(target).parent.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)  # removed whole
        for number in itertools.count(1):  # never over an earlier copy (a second in the same second)
            if not os.path.exists(target):
                break
            target = f"{self.path}.rescued-{stamp}-{number}"
        create_private(target)  # every run's data: the owner's alone, as the database
        copy = sqlite3.connect(target)
        try:
            self._conn.backup(copy)
        finally:
            copy.close()
        return target

    async def _write_loop(self) -> None:
        """Drain the queue in batches, one transaction per batch, until the close sentinel."""
        await batching.write_batches(self._queue, self._commit, max_batch=_MAX_BATCH, stopped=self._stop)

    def _stop(self) -> None:
        self._accepting = False

    async def _commit(self, batch: list[_Pending]) -> None:
        assert self._executor is not None
        if self._moved is not None and self.failure is None:
            await self._stop_moved(*self._moved)
        if self.failure is not None:  # queued before the sync failed
            batching.fail(batch, self._refusal())
            return
        if self._checkpointer is not None and self._checkpointer.restart_wanted:
            self._checkpointer.restart_wanted = False
            assert self._loop is not None
            try:
                await self._loop.run_in_executor(self._executor, self._restart_wal)
            except sqlite3.Error as exc:  # a failed sync (`_restart_wal` logs the rest)
                batching.fail(batch, self._fail_stop(exc))
                return
        changes: list[RunWrite | _Operation | _Sync] = []
        sync = False
        for item, _ in batch:
            if isinstance(item, batching.Quiet):
                item = item.change
                # A watcher would be handed its events: they must be synced first.
                sync = sync or (bool(item.events) and self.hub.watching(item.run_id))
            elif isinstance(item, _Sync):
                sync = sync or item.target > self.durable
            elif isinstance(item, RunWrite):
                sync = True
            elif isinstance(item, _Operation):
                sync = sync or item.durable
            changes.append(item)
        full = sync and self.durability == "full"
        barriers = all(isinstance(change, _Sync) for change in changes)
        if not full and barriers:
            batching.answer(batch, [batching.Done(None)] * len(batch))  # already covered
            return
        started = time.perf_counter()
        try:
            if barriers:  # nothing to commit: an fsync of what is committed so far
                await self._sync(batch, self._sync_wal)
                self._synced(self.commits)
                self.hub.committed(time.perf_counter() - started, len(batch))
                batching.answer(batch, [batching.Done(None)] * len(batch))
                return
            try:
                outcomes = self._apply_batch(changes)
            except sqlite3.OperationalError as exc:
                if not _locked(exc):
                    raise
                # Another connection holds the write lock: wait for it (up to the busy
                # timeout) on the writer thread, with the loop free meanwhile.
                # The loop runs meanwhile, so a Watch of a run of the batch may subscribe
                # before it commits: its events must be synced then. Waiting is rare: sync
                # the batch.
                full = self.durability == "full"
                assert self._loop is not None
                await self._loop.run_in_executor(self._executor, self._begin_waiting)
                outcomes = self._apply_batch(changes, begun=True)
            self.commits += 1
            number = self.commits
            if full:
                # Readers see it from its COMMIT on, while its fsync is under way (under
                # synchronous=FULL they did not): a read of what it wrote waits for the fsync,
                # a read of other runs does not.
                self._note_unsynced(changes, number)
                await self._sync(batch, self._end_synced_transaction)
            else:
                # An unsynced COMMIT is a few WAL page writes to the page cache (about 60 us):
                # cheaper here than a hand-off to the writer thread and back.
                self._end_transaction()
        except Exception as exc:  # BEGIN, COMMIT or the fsync failed: nothing of the batch is told
            error = _storage_error(exc) if isinstance(exc, sqlite3.Error) else exc
            if _lost_durability(exc):
                error = self._fail_stop(exc)
            self.hub.committed(time.perf_counter() - started, len(batch))
            if isinstance(error, StorageUnavailable):
                self.hub.refused(len(batch))
            batching.fail(batch, error)
            return
        self.transactions += 1
        if full or self.durability == "normal":
            self._synced(number)
        else:
            self._note_unsynced(changes, number)
        self.hub.committed(time.perf_counter() - started, len(batch))
        if self._refused:
            self.hub.refused(self._refused)
        else:
            self.hub.reached()
        # A create of an id whose deleted run's rows are still being removed waits for them.
        answered, told = self.removal.hold(batch, outcomes)
        committed = batching.answer(answered, told)
        deleted = batching.deleted(changes, outcomes)
        if deleted:
            self.removal.wake()  # the rows of a large run are left to it
        try:
            self.hub.deleted(deleted)
            self._publish(committed, batching.births(outcomes))
        except Exception:  # a broken subscriber must not stop the writer; the log is the record
            logger.exception("publishing committed events failed")

    async def _sync(self, batch: list[_Pending], sync: Callable[[], None]) -> None:
        """Run `sync` (a synced commit, or the fsync alone) on the loop when the batch is a lone
        change with nothing behind it, else on the writer thread (see the module docstring)."""
        if self._sync_on_loop(batch):
            self.loop_syncs += 1
            sync()
        else:
            # A synced commit leaves the loop: it is the fsync, and it releases the GIL.
            assert self._loop is not None
            await self._loop.run_in_executor(self._executor, sync)

    def _note_unsynced(self, changes: list[RunWrite | _Operation | _Sync], number: int) -> None:
        """Remember what the commit `number` wrote until a sync covers it (see `_sync_run`)."""
        for change in changes:
            if isinstance(change, RunWrite):
                self._unsynced[change.run_id] = number
            elif isinstance(change, _Operation):
                for run_id in change.runs:
                    self._unsynced[run_id] = number
                if change.schedules:
                    self._unsynced_schedules = number

    def _synced(self, number: int) -> None:
        """Every commit up to `number` is fsynced (or, with `durability="normal"`, never will be)."""
        if self.durability == "full":
            self.syncs += 1
        self.durable = number
        self._unsynced.clear()

    def _publish(self, committed: list[Event], born: dict[str, float]) -> None:
        """Hand committed events to the hub. Subscribers (watchers, streams, waiting callers)
        never see an event a power loss could take back: a batch holding events of a run
        someone watches is synced (`_commit` decides it), and an unsynced batch is committed
        and published without yielding to the loop, so nobody can subscribe in between (a
        batch that waits for another connection's lock yields: it is synced). `born`: see
        `EventHub.publish`."""
        self.hub.publish(committed, born)

    def _apply_batch(
        self, changes: list[RunWrite | _Operation | _Sync], begun: bool = False
    ) -> list[WriteResult | batching.Done | Exception]:
        """Open the batch's transaction (unless `begun`: `_begin_waiting` opened it) and apply
        every change; `_end_transaction` commits it. Raises SQLITE_BUSY at once, before
        anything is applied, when another connection holds the write lock.

        A change encodes everything before it touches the database and checks its
        conditions before it modifies anything, so a bad change fails alone without a
        savepoint. Only a database error can fail one half-way: then the transaction is
        rolled back and the batch applied again with a savepoint per change.
        """
        conn = self._conn
        assert conn is not None
        now = time.time()
        self._refused = 0
        if not begun:
            conn.execute("BEGIN IMMEDIATE")
        try:
            try:
                rows = _Rows(conn)
                outcomes = [_apply(conn, change, now, rows) for change in changes]
                rows.flush()
                return outcomes
            except sqlite3.Error:
                conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE")
            outcomes = []
            budget = removal.RemovalBudget()
            for change in changes:
                conn.execute("SAVEPOINT w")
                try:
                    rows = _Rows(conn, budget)
                    outcome = _apply(conn, change, now, rows)
                    rows.flush()
                except sqlite3.Error as exc:
                    outcome = _storage_error(exc)
                    if isinstance(outcome, StorageUnavailable):
                        self._refused += 1
                if isinstance(outcome, Exception):
                    conn.execute("ROLLBACK TO w")
                outcomes.append(outcome)
                conn.execute("RELEASE w")
            return outcomes
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _restart_wal(self) -> None:
        """In the writer thread, between batches: checkpoint every frame and have the next
        commit start the WAL over (see the module docstring)."""
        conn = self._conn
        assert conn is not None
        try:
            conn.execute(f"PRAGMA busy_timeout = {_RESTART_BUSY_MS}")
            try:
                (busy, _, _) = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            finally:
                conn.execute("PRAGMA busy_timeout = 0")
        except sqlite3.Error as exc:  # the WAL keeps growing until a later restart succeeds
            if _lost_durability(exc):
                raise
            logger.warning("restarting the WAL of %s failed (%s); retrying later", self.path, _described(exc))
            return
        if not busy:
            self.wal_restarts += 1
        else:
            self.wal_restarts_busy += 1
        if self._checkpointer is not None:
            self._checkpointer.restarted(busy=bool(busy))

    def _begin_waiting(self) -> None:
        """In the writer thread: open a write transaction, waiting up to the busy timeout for
        a lock another connection holds (SQLITE_BUSY past it)."""
        conn = self._conn
        assert conn is not None
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        try:
            conn.execute("BEGIN IMMEDIATE")
        finally:
            conn.execute("PRAGMA busy_timeout = 0")

    def _sync_on_loop(self, batch: list[_Pending]) -> bool:
        """Whether this synced batch commits on the event loop: it is a lone change, nothing
        waits behind it, and no synced commit was slow lately (see the module docstring)."""
        return (
            len(batch) == 1
            and self._queue.empty()
            and self._sync_seconds <= _LOOP_SYNC_LIMIT
            and time.monotonic() >= self._loop_syncs_after
        )

    def _end_synced_transaction(self) -> None:
        """`_end_transaction`, then `_sync_wal`."""
        self._end_transaction()
        self._sync_wal()

    def _sync_wal(self) -> None:
        """fdatasync the WAL file: every commit so far survives a power loss (as a commit under
        synchronous=FULL would). Its time goes into the moving average that `_sync_on_loop`
        reads (on the loop or the writer thread: one at a time). Raises WalSyncFailed."""
        assert self._wal_fd is not None
        started = time.perf_counter()
        try:
            _fdatasync(self._wal_fd)
        except OSError as exc:
            raise WalSyncFailed(exc.errno, f"fdatasync of the WAL failed: {exc.strerror}") from exc
        finally:
            took = time.perf_counter() - started
            self._sync_seconds += (took - self._sync_seconds) * _SYNC_AVERAGE_WEIGHT
            if took > _SLOW_SYNC:
                self._loop_syncs_after = time.monotonic() + _SLOW_SYNC_BACKOFF

    def _end_transaction(self) -> None:
        """Commit the open transaction (rolled back if that fails)."""
        conn = self._conn
        assert conn is not None
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # -- reads -----------------------------------------------------------------

    def _reader(self) -> _Reader:
        if not self._readers:
            raise RuntimeError("store is not open" if self._state == "new" else "store is closed")
        self._next_reader = (self._next_reader + 1) % len(self._readers)
        return self._readers[self._next_reader]

    def _point_rows(self, sql: str, params: Sequence[object]) -> list[Any]:
        """Rows of a lookup by key, read on the event loop (see `_connect_point_reader`)."""
        if self._point is None:
            raise RuntimeError("store is not open" if self._state == "new" else "store is closed")
        if self.failure is not None:
            raise self._refusal()
        try:
            return self._point.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            if (error := _storage_error(exc)) is exc:
                raise
            raise error from exc

    async def get_run(self, run_id: str, *, steps: bool = False) -> Run | None:
        """The run, with its step records when `steps` is true; None if unknown."""
        if not steps:
            rows = self._point_rows(f"{_SELECT_RUN} WHERE run_id = ?", (run_id,))
            await self._sync_run(run_id)  # what a read saw may be told: it must be durable first
            return (await self._runs_from_rows(rows))[0] if rows else None
        # One statement, so the run and its steps come from the same snapshot.
        rows = self._point_rows(_SELECT_RUN_WITH_STEPS, (run_id, run_id))
        await self._sync_run(run_id)
        if not rows:
            return None
        decoded, wanted = step_rows(run_id, rows, _with_items)
        _column_digests(rows[0], wanted)
        found = await self._values(run_id, wanted)
        return _decoded_run(rows[0], found).with_steps(step_records(run_id, decoded, found))

    async def list_runs(self, query: RunQuery) -> list[Run]:
        """Runs matching `query`, newest first (created_at, then run_id, descending)."""
        sql, params = _list_sql(query)
        rows = await self._reader().execute_fetchall(sql, params)
        await self.sync()
        return await self._runs_from_rows(rows)

    async def read_events(self, run_id: str, after: int, limit: int = 1000) -> list[Event]:
        """Events with sequence > `after`, in order, at most `limit`."""
        rows = await self._reader().execute_fetchall(
            f"SELECT seq, time, body FROM events WHERE run_id = ? AND seq > ? AND {_NOT_LEFTOVERS}"
            " ORDER BY seq LIMIT ?",
            (run_id, after, run_id, max(limit, 0)),
        )
        await self._sync_run(run_id)
        try:
            decoded = [(seq, at, orjson.loads(body)) for seq, at, body in rows]
            refs = [values.referred(body) for _, _, body in decoded]
        except UNDECODABLE as exc:
            raise unreadable(run_id, "events", exc) from None
        found: dict[str, Any] = {}
        if any(refs):  # large values: the page ends before they pass values.EVENT_PAGE_BYTES
            sized = [(values.encoded_length(row[2]), ref) for row, ref in zip(rows, refs, strict=True)]
            kept, found = await values.page_values(sized, functools.partial(self._sized_values, run_id))
            decoded = decoded[:kept]
        try:
            events = [Event.from_json(run_id, s, at, values.resolve(body, found)) for s, at, body in decoded]
        except UNDECODABLE as exc:
            raise unreadable(run_id, "events", exc) from None
        return events

    async def created_at(self, run_id: str) -> float | None:
        """When the run now under `run_id` was created; None if there is none."""
        rows = self._point_rows("SELECT created_at FROM runs WHERE run_id = ?", (run_id,))
        await self._sync_run(run_id)
        return float(rows[0][0]) if rows else None

    async def has_request(self, run_id: str, kind: str, request_id: str) -> bool:
        """True if a write with this `(kind, request_id)` was committed for the run."""
        rows = self._point_rows(
            f"SELECT 1 FROM requests WHERE run_id = ? AND kind = ? AND request_id = ? AND {_REQUEST_SEEN}",
            (run_id, kind, request_id, run_id),
        )
        await self._sync_run(run_id)  # a retry is answered from it
        return bool(rows)

    async def request_ids(self, run_id: str, kind: str, prefix: str = "") -> list[str]:
        """See `Store.request_ids` (a lookup by key: on the event loop; with `prefix`, a range
        of the key, which SQLite orders by code point)."""
        sql = f"SELECT request_id FROM requests WHERE run_id = ? AND kind = ? AND {_REQUEST_SEEN}"
        params: tuple[str, ...] = (run_id, kind, run_id)
        if prefix:
            sql += " AND request_id >= ?"
            params += (prefix,)
            beyond = _beyond(prefix)
            if beyond is not None:
                sql += " AND request_id < ?"
                params += (beyond,)
        rows = self._point_rows(sql, params)
        await self._sync_run(run_id)
        return [request_id for (request_id,) in rows]

    async def take_over(self, name: str, owner: str) -> int | None:
        """Nothing to take over: opening the file voided every lease (see `Store.take_over`)."""
        return 0

    async def settled_before(self, cutoff: float, limit: int) -> list[Due]:
        """At most `limit` runs that settled (ended) before `cutoff`."""
        rows = await self._reader().execute_fetchall(_SETTLED_BEFORE, (cutoff, cutoff, max(limit, 0)))
        return [Due(str(row[0]), row[1], row[2]) for row in rows]

    async def unstarted_before(self, cutoff: float, limit: int) -> list[Due]:
        """At most `limit` runs reserved before `cutoff` and still not started."""
        rows = await self._reader().execute_fetchall(_UNSTARTED_BEFORE, (cutoff, max(limit, 0)))
        return [Due(str(row[0]), row[1], row[2]) for row in rows]

    async def forget_deletes(self, cutoff: float, limit: int) -> int:
        """Remove at most `limit` marks of deletes made before `cutoff`; how many (not synced:
        a mark lost to a power loss only answers a very late retry NOT_FOUND)."""

        if not await self._reader().execute_fetchall(_OLD_DELETE_MARK, (cutoff,)):
            return 0  # the usual case: no commit on the writer for nothing

        def apply(conn: sqlite3.Connection, now: float) -> int:
            return conn.execute(_FORGET_DELETE_MARKS, (cutoff, max(limit, 0))).rowcount

        forgotten: int = await self._submit(_Operation(apply))
        return forgotten

    async def _values(self, run_id: str, digests: set[str]) -> dict[str, Any]:
        """The stored values of a run by digest (see storage/values.py)."""
        if not digests:
            return {}
        try:
            return {digest: orjson.loads(body) for digest, body in self._value_rows(run_id, digests)}
        except UNDECODABLE as exc:
            raise unreadable(run_id, "stored values", exc) from None

    async def _sized_values(self, run_id: str, digests: set[str]) -> dict[str, tuple[Any, int]]:
        """The stored values of a run by digest, each with its JSON's bytes."""
        rows = self._value_rows(run_id, digests)
        try:
            return {digest: (orjson.loads(body), values.encoded_length(body)) for digest, body in rows}
        except UNDECODABLE as exc:
            raise unreadable(run_id, "stored values", exc) from None

    def _value_rows(self, run_id: str, digests: set[str]) -> list[Any]:
        marks = ", ".join("?" * len(digests))
        return self._point_rows(
            f"SELECT digest, body FROM run_values WHERE run_id = ? AND digest IN ({marks})",
            (run_id, *digests),
        )

    async def _runs_from_rows(self, rows: Sequence[Sequence[Any]]) -> list[Run]:
        runs = []
        for row in rows:
            wanted: set[str] = set()
            _column_digests(row, wanted)
            runs.append(_decoded_run(row, await self._values(row[0], wanted) if wanted else None))
        return runs

    async def count_runs(self, statuses: frozenset[RunStatus]) -> dict[RunStatus, int]:
        """How many runs have each of `statuses` (an index range count per status)."""
        counts = dict.fromkeys(statuses, 0)
        if not statuses:
            return counts
        marks = ", ".join("?" * len(statuses))
        rows = await self._reader().execute_fetchall(
            f"SELECT status, COUNT(*) FROM runs WHERE status IN ({marks}) GROUP BY status",
            sorted(status.value for status in statuses),
        )
        for status, count in rows:
            counts[RunStatus(status)] = count
        return counts

    async def count_unowned(self) -> int:
        """Active runs with no live owner (see `Store.count_unowned`)."""
        return sum((await self.count_unowned_by_definition()).values())

    async def count_unowned_by_definition(self) -> dict[Definition, int]:
        """See `Store.count_unowned_by_definition`."""
        rows = await self._reader().execute_fetchall(
            "SELECT workflow_id, definition_version, definition_digest, COUNT(*) FROM runs"
            f" WHERE status IN {_ACTIVE_SQL} AND (owner IS NULL OR lease_expires_at < ?)"
            " GROUP BY workflow_id, definition_version, definition_digest",
            (time.time(),),
        )
        return {(workflow_id, version, digest): int(count) for workflow_id, version, digest, count in rows}


# -- listing -------------------------------------------------------------------------

_SUMMARY_COLUMN_LIST = ", ".join(
    "NULL" if column in ("input", "state", "request_context", "result") else column for column in RUN_COLUMNS
)


def _list_sql(query: RunQuery) -> tuple[str, list[object]]:
    """The statement (and parameters) of one ListRuns page.

    Each page is a range read of the one index made for its equality filters (schema.sql),
    named with INDEXED BY so the planner cannot pick a shorter index and sort. Several
    statuses are one ordered, limited range per status, merged by a UNION ALL: at most
    `limit` rows per status are read, whatever the table holds.
    """
    statuses = sorted(status.value for status in query.statuses)
    limit = max(query.limit, 0)
    columns = RUN_COLUMN_LIST if query.payloads else _SUMMARY_COLUMN_LIST
    if len(statuses) <= 1:
        sql, one_params = _list_one(query, statuses[0] if statuses else None, columns)
        return f"{sql} LIMIT ?", [*one_params, limit]
    parts: list[str] = []
    params: list[object] = []
    for status in statuses:
        part, part_params = _list_one(query, status, columns)
        parts.append(f"SELECT * FROM ({part} LIMIT ?)")
        params.extend((*part_params, limit))
    return f"{' UNION ALL '.join(parts)} ORDER BY created_at DESC, run_id DESC LIMIT ?", [*params, limit]


def _list_one(query: RunQuery, status: str | None, columns: str) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    index = ["runs_by"]
    if query.workflow_id is not None:
        clauses.append("workflow_id = ?")
        params.append(query.workflow_id)
        index.append("workflow")
    if query.definition_version is not None:
        # One index per version of a workflow; other equality filters are checked row by row.
        clauses.append("definition_version = ?")
        params.append(query.definition_version)
    if query.resource_id is not None:
        clauses.append("resource_id = ?")
        params.append(query.resource_id)
        index.append("resource")
    if query.resource_ids is not None:  # checked row by row, in the order of the index chosen
        clauses.append(f"resource_id IN ({', '.join('?' * len(query.resource_ids)) or 'NULL'})")
        params.extend(sorted(query.resource_ids))
    if status is not None:
        clauses.append("status = ?")
        params.append(status)
        index.append("status")
    if query.definition_version is not None and query.workflow_id is not None:
        index = ["runs_by", "workflow", "version"]
    if len(index) == 1:
        index.append("time")
    if query.forked_from is not None:  # a run's forks are few: their own index, the rest filtered
        clauses.append("forked_from = ?")
        params.append(query.forked_from)
        index = ["runs_by", "forked_from"]
    if query.from_time is not None:
        clauses.append("created_at >= ?")
        params.append(query.from_time)
    if query.to_time is not None:
        clauses.append("created_at < ?")
        params.append(query.to_time)
    if query.after is not None:
        clauses.append("(created_at, run_id) < (?, ?)")
        params.extend(query.after)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    order = " ORDER BY created_at DESC, run_id DESC"
    return f"SELECT {columns} FROM runs INDEXED BY {'_'.join(index)}{where}{order}", params


class _Checkpointer:
    """WAL checkpoints off the commit path, on a thread with its own connection.

    The writer's auto-checkpoint is off, so no commit ever copies pages into the
    database file. This thread runs a PASSIVE checkpoint (it never waits for the
    writer or readers) every `_CHECKPOINT_INTERVAL` seconds if anything was committed, and at
    once when the WAL file grew by `_CHECKPOINT_WAL_BYTES`. Once a checkpoint has copied
    every frame, the writer's next transaction starts the WAL over from its beginning (and
    `journal_size_limit` trims the file). Under steady load it never catches up: when the
    WAL still holds `_CHECKPOINT_WAL_BYTES` after a checkpoint, this thread syncs the database
    file, catches up once more, and `restart_wanted` asks the writer to start the WAL over
    (`SqliteStore._restart_wal`). `stop` runs a last TRUNCATE checkpoint.

    A sync that fails is never retried: `lost(error)` is told (from this thread) and the
    thread stops checkpointing (see the module docstring).
    """

    def __init__(
        self,
        path: str,
        wal: str,
        commits: Callable[[], int],
        database_fd: int,
        lost: Callable[[OSError | sqlite3.Error], object],
        watch: Callable[[], object] = lambda: None,
    ) -> None:
        self._path = path
        self._commits = commits
        self._database_fd = database_fd
        self._lost = lost
        self._watch = watch
        self._wal = wal
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sqlite-checkpointer {path}", daemon=True)
        self.checkpoints = 0
        self.restart_wanted = False
        """Set here, read and cleared by the writer: a plain flag, one writer of each value."""
        self._restart_after = 0.0
        self._restart_pause = 0.0

    def restarted(self, *, busy: bool) -> None:
        """The writer's RESTART finished, or readers kept it busy: ask again only after a
        pause that doubles while they do (`_RESTART_BACKOFF`). From the writer thread."""
        first, longest = _RESTART_BACKOFF
        self._restart_pause = min(max(self._restart_pause * 2, first), longest) if busy else 0.0
        self._restart_after = time.monotonic() + self._restart_pause

    def start(self) -> None:
        self._thread.start()

    def stop(self, final: bool = True) -> None:
        """Stop the thread (blocking), then, when `final`, checkpoint everything and
        truncate the WAL."""
        self._stopping.set()
        self._thread.join()
        if not final:
            return
        try:
            conn = sqlite3.connect(self._path, isolation_level=None)
            try:
                conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                conn.close()
        except sqlite3.Error as exc:  # the next open replays the WAL: nothing is lost
            logger.warning("final WAL checkpoint of %s failed (%s)", self._path, _described(exc))

    def _wal_size(self) -> int:
        try:
            return os.stat(self._wal).st_size
        except OSError:  # none yet, or unreadable: checkpoints go on by the clock
            return 0

    def _connect(self) -> tuple[sqlite3.Connection, int] | None:
        """The thread's own connection and the page size, retried every interval while the
        database cannot be opened (a thread that died here would leave the WAL to grow without
        end); None once the store stops."""
        while True:
            try:
                conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
                try:
                    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
                except BaseException:
                    conn.close()
                    raise
                return conn, page_size
            except sqlite3.Error as exc:
                logger.error(
                    "the WAL checkpointer cannot open %s (%s); retrying", self._path, _described(exc)
                )
            if self._stopping.wait(_CHECKPOINT_INTERVAL):
                return None

    def _run(self) -> None:
        opened = self._connect()
        if opened is None:
            return
        conn, page_size = opened
        try:
            ticks, done = 0, 0  # tenths of the interval waited; commits checkpointed
            # The file's size when last checkpointed: a WAL started over reuses the file, so
            # only growth past it says that much was written since.
            checked_size = 0
            while not self._stopping.wait(_CHECKPOINT_INTERVAL / 10):
                self._watch()
                ticks += 1
                commits = self._commits()
                grown = self._wal_size() - checked_size >= _CHECKPOINT_WAL_BYTES
                if not (grown or (ticks >= 10 and commits != done)):
                    continue
                ticks = 0
                try:
                    (_, frames, _) = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:
                    if _lost_durability(exc):
                        self._lost(exc)
                        return
                    logger.warning(
                        "WAL checkpoint of %s failed (%s); retrying later", self._path, _described(exc)
                    )
                    continue
                self.checkpoints += 1
                done = commits
                checked_size = self._wal_size()
                if frames * page_size >= _CHECKPOINT_WAL_BYTES and time.monotonic() >= self._restart_after:
                    # A checkpoint that did not reach the last commit copies pages into the
                    # database file without syncing it; the RESTART must copy what was written
                    # since and sync it all before it starts the WAL over. Done here first,
                    # off the writer, twice (the second pass copies what was written during
                    # the first), the writer's pause is the few frames written since: 0.7-1 ms
                    # one at a time and 1.4-6 ms at 64 in flight, against 1-20 and 3-36 ms.
                    try:
                        _fdatasync(self._database_fd)
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                        _fdatasync(self._database_fd)
                    except OSError as exc:  # the sync itself: pages of the file may be lost
                        self._lost(exc)
                        return
                    except sqlite3.Error as exc:  # the writer's RESTART syncs the file itself
                        if _lost_durability(exc):
                            self._lost(exc)
                            return
                        logger.warning("syncing %s failed (%s)", self._path, _described(exc))
                    self.restart_wanted = True
        finally:
            conn.close()


_fdatasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)
"""fsync without the file's metadata where the platform has it (macOS has no fdatasync)."""


def _described(exc: OSError | sqlite3.Error) -> str:
    """The error in a log line: its SQLite code name and message (a full disk, a failing
    device say all there is to say; a traceback of the checkpointer's loop adds nothing)."""
    name = getattr(exc, "sqlite_errorname", None)
    return f"{name}: {exc}" if name else f"{type(exc).__name__}: {exc}"


def _locked(exc: sqlite3.Error) -> bool:
    """Whether `exc` says another connection holds a lock this one needs (SQLITE_BUSY)."""
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY


class WalSyncFailed(OSError):
    """The fdatasync of the WAL after a synced commit failed (see the module docstring)."""


def _lost_durability(exc: BaseException) -> TypeGuard[sqlite3.Error | WalSyncFailed]:
    """Whether `exc` is a failed sync (see the module docstring)."""
    return isinstance(exc, WalSyncFailed) or (
        isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) in _LOST_DURABILITY
    )


def _storage_error(exc: sqlite3.Error) -> Exception:
    """StorageUnavailable (retry; the engine drives a run on once a write succeeds) for
    what the storage could not do, else `exc` itself."""
    code = getattr(exc, "sqlite_errorcode", None)  # None: raised by the sqlite3 module itself
    if code is None or code & 0xFF not in _UNAVAILABLE or code in _LOST_DURABILITY:
        return exc
    if code & 0xFF == sqlite3.SQLITE_CORRUPT:
        _note_corrupt(exc)
    return StorageUnavailable(_described(exc))


_corrupt_noticed = [-math.inf]


def _note_corrupt(exc: sqlite3.Error) -> None:
    now = time.monotonic()
    if now - _corrupt_noticed[0] >= _CORRUPT_NOTICE:
        _corrupt_noticed[0] = now
        logger.warning(
            "SQLite read the database as malformed (%s): a failing device or a damaged file; calls are"
            " refused as retryable meanwhile. If it persists, stop the server, check the device and"
            " restore a backup (runservice restore)",
            _described(exc),
        )


# -- the writer thread's side ------------------------------------------------------


def lock_path(path: str) -> str:
    """The lock file of the database at `path`: beside the file a symbolic link in the path
    resolves to, where SQLite keeps the WAL too, so a link and its target take one lock."""
    return f"{os.path.realpath(path)}.lock"


def _warn_readable(path: str) -> None:
    """One WARNING naming the files of the database at `path` (the database, its `-wal`
    and `-shm`, copies runservice made beside it) that every local user can read: readable
    by others, in a directory others may enter. A deployment made before the store created
    its files private has them so; their modes are the operator's to change (a group may
    share them on purpose), so this only tells how."""
    real = Path(os.path.realpath(path))
    directory = real.parent
    try:
        directory_mode = stat.S_IMODE(directory.stat().st_mode)
        if not directory_mode & stat.S_IXOTH:
            return
        readable = []
        for file in sorted(directory.glob(f"{glob.escape(real.name)}*")):
            if file.name.endswith(".lock"):  # holds nothing
                continue
            try:
                status = file.stat()
            except FileNotFoundError:  # a -shm gone meanwhile
                continue
            mode = stat.S_IMODE(status.st_mode)
            if stat.S_ISREG(status.st_mode) and mode & stat.S_IROTH:
                readable.append(f"{file} ({mode:04o})")
    except OSError:  # cannot tell: nothing to say
        return
    if readable:
        logger.warning(
            "every local user can read the database: %s, in %s (%04o). runservice creates its"
            " files 0600 and directories 0700 but leaves existing ones as they are: make them"
            " private with `chmod o-rwx %s*` (and `chmod 700 %s`)",
            ", ".join(readable),
            directory,
            directory_mode,
            shlex.quote(str(real)),
            shlex.quote(str(directory)),
        )


def lock_database(path: str) -> int:
    """Take the lock file that makes one process the owner of the database at `path` (see
    the module docstring); returns its descriptor, whose closing lets it go. RuntimeError
    when another process holds it."""
    Path(path).parent.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RuntimeError(f"database {path} is in use by another runservice process") from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _moved(path: str, fd: int) -> str | None:
    """How the file at `path` is no longer the one `fd` holds open ("deleted", "replaced
    by another file"), or None while it is (or when the path cannot be read: no reason to stop)."""
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return "deleted"
    except OSError:
        return None
    try:
        held = os.fstat(fd)
    except OSError:  # closed as the store closes: nothing to watch any more
        return None
    if (here.st_dev, here.st_ino) != (held.st_dev, held.st_ino):
        return "replaced by another file"
    return None


def _refuse_rescued(path: str) -> None:
    """RuntimeError (one line) instead of a new, empty database beside a copy a server saved
    when the file was deleted under it (a restart would otherwise lose every run in silence)."""
    if os.path.exists(path):
        return
    rescued = sorted(Path(path).parent.glob(f"{glob.escape(Path(path).name)}.rescued-*"))
    if rescued:
        raise RuntimeError(
            f"database {path} does not exist, but {rescued[-1]} holds what a server saved when the"
            f" file was deleted under it: move it to {path} to go on from it, or remove it to start empty"
        )


def _wal_path(conn: sqlite3.Connection) -> str:
    """The WAL file of the connection's database, where SQLite puts it: beside the file a
    symbolic link in the given path resolves to, not beside the link."""
    for _, name, file in conn.execute("PRAGMA database_list"):
        if name == "main":
            return f"{file}-wal"
    raise RuntimeError("SQLite names no main database")


def _connect_writer(path: str) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves. IMMEDIATE takes the
    # write lock up front, so busy_timeout applies instead of a deferred upgrade failing.
    _refuse_rescued(path)
    # A new database is made private before SQLite opens it (SQLite would make it 0644, and
    # its -wal and -shm with it). A failure here is SQLite's to report, as it always was.
    with contextlib.suppress(OSError):
        create_private(os.path.realpath(path))
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        _refuse_foreign(conn, path)
        # Only a new, empty file takes it (before WAL mode and its first table): an existing
        # database keeps the page size it was made with.
        conn.execute(f"PRAGMA page_size = {_PAGE_SIZE}")
        (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if str(mode).lower() != "wal":
            raise RuntimeError(f"database {path} cannot use WAL journaling (got {mode!r})")
        # A batch that must be synced is followed by an fsync of the WAL (see the module).
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpointer thread does it
        conn.execute(f"PRAGMA journal_size_limit = {_JOURNAL_SIZE_LIMIT}")
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        _migrate(conn, path)
        # The lock file makes this the only process on the database, so every lease held
        # by an earlier process is void: its runs can be claimed (re-driven) at once.
        conn.execute("UPDATE runs SET owner = NULL, lease_expires_at = NULL WHERE owner IS NOT NULL")
        # From here its statements run on the event loop: a write lock another connection holds
        # (an operator's `sqlite3` shell in a transaction) must not stall the loop for the busy
        # timeout. `SqliteStore._begin_waiting` waits for it on the writer thread instead.
        conn.execute("PRAGMA busy_timeout = 0")
    except BaseException:
        conn.close()
        raise
    return conn


def _refuse_foreign(conn: sqlite3.Connection, path: str) -> None:
    """RuntimeError (one line) for a database of another application: one with tables that
    are not ours (no record of our migrations, and no `runs` table with our columns: `runs` is
    a common name). Before, runservice switched it to WAL and added its tables beside the
    others (a `--database-url` naming the wrong file), changing a file that was not its own."""
    names = [
        name
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        if not name.startswith("sqlite_")
    ]
    ours = _APPLIED in names or (
        "runs" in names
        and {"run_id", "workflow_id", "status", "input"}
        <= {row[1] for row in conn.execute("SELECT * FROM pragma_table_info('runs')")}
    )
    if names and not ours:
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise RuntimeError(
            f"database {path} holds tables runservice did not make ({shown}): it is another"
            " application's file; give runservice a file of its own"
        )


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    """Apply every migration the database lacks, in order and in one transaction (a crash
    half-way leaves it as it was), then check it has every table, column and index this code
    uses; raises RuntimeError (one line) for a database it cannot serve."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    schema = _Schema.read(conn)
    if version > SCHEMA_VERSION and _APPLIED not in schema.tables:
        raise RuntimeError(
            f"database {path} has schema version {version}; this runservice knows {SCHEMA_VERSION}"
        )
    if version == 0:
        scripts = _new_file()
    else:
        if _APPLIED in schema.tables:
            applied = {v for (v,) in conn.execute(f"SELECT version FROM {_APPLIED}")}
        else:
            # Made before applied migrations were recorded. user_version only said the newest
            # one the making code knew: migrations merged out of order (or v3 from before it
            # made run_values) may be missing below it. The schema says which are there.
            applied = {v for v, present in _PRESENT.items() if present(schema)}
        if unknown := applied - MIGRATIONS.keys():
            _serve_newer(conn, path, unknown)
        missing = sorted(MIGRATIONS.keys() - applied)
        if missing:
            logger.info("applying schema migrations %s to %s", missing, path)
        scripts = [MIGRATIONS[v] for v in missing]
    if scripts or _APPLIED not in schema.tables:
        # Every migration is applied once these scripts are: all are recorded, in the same
        # transaction, so a crash half-way leaves the database as it was.
        ddl = "\n".join(_resource(name) for name in scripts)
        record = "".join(f"INSERT OR IGNORE INTO {_APPLIED} (version) VALUES ({v});\n" for v in MIGRATIONS)
        record += "".join(
            f"INSERT OR IGNORE INTO {_COMPATIBLE} (version) VALUES ({v});\n" for v in BACKWARD_COMPATIBLE
        )
        conn.executescript(
            f"BEGIN IMMEDIATE;\n{ddl}\nCREATE TABLE IF NOT EXISTS {_APPLIED} (version INTEGER PRIMARY KEY);\n"
            f"{record}PRAGMA user_version = {max(version, SCHEMA_VERSION)};\nCOMMIT;"
        )
        schema = _Schema.read(conn)
    if lacking := _reference().lacking(schema):
        raise RuntimeError(
            f"database {path} lacks {', '.join(lacking)}, which its recorded schema migrations make"
            " (was it changed by hand?); runservice cannot repair it: restore it from a backup"
        )


_APPLIED = "schema_migrations"
"""The table of the migrations applied (their numbers), as on PostgreSQL: a number merged out
of order is found missing even below the newest one applied."""
_COMPATIBLE = "schema_compatible"
"""The table of the migrations that leave the database usable by older servers (`BACKWARD_COMPATIBLE`)."""


def unusable_versions(conn: sqlite3.Connection, unknown: set[int]) -> set[int]:
    """Those of the schema versions `unknown` (applied by a newer runservice) that are not
    recorded as leaving the database usable by older servers (`schema_compatible`)."""
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if _COMPATIBLE not in tables:
        return unknown
    return unknown - {v for (v,) in conn.execute(f"SELECT version FROM {_COMPATIBLE}")}


def _serve_newer(conn: sqlite3.Connection, path: str, unknown: set[int]) -> None:
    """Go on with a database a newer runservice migrated (versions `unknown`) only if every
    one of them is recorded as leaving it usable by older servers; else RuntimeError."""
    if unusable := unusable_versions(conn, unknown):
        raise RuntimeError(
            f"database {path} has schema versions {sorted(unusable)} this runservice"
            f" does not know (it knows up to {SCHEMA_VERSION}; a newer runservice migrated it)"
        )
    logger.warning(
        "database %s has schema versions %s from a newer runservice, which leave it usable by"
        " this one: serving it",
        path,
        sorted(unknown),
    )


class _Schema:
    """The tables (with their columns) and indexes of a database, with their SQL."""

    def __init__(self, tables: dict[str, str], indexes: dict[str, str], columns: dict[str, set[str]]) -> None:
        self.tables = tables
        self.indexes = indexes
        self.columns = columns

    @classmethod
    def read(cls, conn: sqlite3.Connection) -> _Schema:
        tables: dict[str, str] = {}
        indexes: dict[str, str] = {}
        # sql is NULL for the automatic indexes of primary keys: no statement names those.
        for kind, name, sql in conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE type IN ('table', 'index') AND sql IS NOT NULL"
        ):
            (tables if kind == "table" else indexes)[name] = sql
        columns = {
            t: {row[1] for row in conn.execute("SELECT * FROM pragma_table_info(?)", (t,))} for t in tables
        }
        return cls(tables, indexes, columns)

    def rowid(self, table: str) -> bool:
        return table in self.tables and "WITHOUT ROWID" not in self.tables[table].upper()

    def partial(self, index: str) -> bool:
        return re.search(r"\bWHERE\b", self.indexes.get(index, ""), re.IGNORECASE) is not None

    def lacking(self, found: _Schema) -> list[str]:
        """What this schema has and `found` does not: tables, columns, indexes (the store's
        queries name its indexes with INDEXED BY, so a missing one fails them too)."""
        lacking = [f"table {t}" for t in self.tables if t not in found.tables]
        lacking += [
            f"column {t}.{c}"
            for t, columns in self.columns.items()
            if t in found.tables
            for c in sorted(columns - found.columns[t])
        ]
        lacking += [f"index {i}" for i in self.indexes if i not in found.indexes]
        return lacking


_PRESENT: dict[int, Callable[[_Schema], bool]] = {
    # migrate_v2: steps and events rebuilt as rowid tables.
    2: lambda s: s.rowid("steps") and s.rowid("events"),
    # migrate_v3: the ListRuns indexes and run_values. Commits before 237bf73 made a v3 (and
    # b8e41f5 a v4) without run_values; the script is idempotent, so it completes either.
    3: lambda s: "runs_by_workflow_status" in s.indexes and "run_values" in s.tables,
    4: lambda s: "owner" in s.columns.get("runs", set()),
    5: lambda s: "schedules" in s.tables and "schedule_ticks" in s.tables,
    6: lambda s: "definition_version" in s.columns.get("runs", set()),
    7: lambda s: "deadline" in s.columns.get("runs", set()),
    8: lambda s: "forked_from" in s.columns.get("runs", set()),
    9: lambda s: "foreach_items" in s.tables,
    10: lambda s: "sync_marks" in s.tables,  # unused since barriers fsync without committing
    11: lambda s: s.partial("runs_by_resource"),
    12: lambda s: "schedule_triggers" in s.tables,
    13: lambda s: "runs_wake_suspended" in s.indexes,
    14: lambda s: "foreach_items" in s.tables and not s.rowid("foreach_items"),
    15: lambda s: "deleted_at" in s.columns.get("requests", set()),
    16: lambda s: "schema_compatible" in s.tables,
    17: lambda s: "deleted_runs" in s.tables and "deleted_runs_by_deleted_at" in s.indexes,
    18: lambda s: "declared_at" in s.columns.get("schedules", set()),
    19: lambda s: "queued_at" in s.columns.get("runs", set()),
    20: lambda s: "woken_epoch" in s.columns.get("runs", set()),
}
"""Whether each migration is in a database whose applied migrations are not recorded, judged
from its schema (every main commit's own files: schema.sql makes 2-4, each migration's script
is all-or-nothing). Code since 14 records every migration it applies, so only a database whose
record was lost (dropped by hand, or by a test) needs the later checks; SQLite cannot add a
column only if it is missing, so without them it would fail to open."""


def _new_file() -> list[str]:
    """The scripts that make a new file: schema.sql (BASE_VERSION), then the later migrations."""
    return ["schema.sql", *(MIGRATIONS[v] for v in sorted(MIGRATIONS) if v > BASE_VERSION)]


@functools.cache
def _reference() -> _Schema:
    """The schema a new file gets: what this code's queries use."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript("\n".join(_resource(name) for name in _new_file()))
        return _Schema.read(conn)
    finally:
        conn.close()


def _resource(name: str) -> str:
    return resources.files("runservice.storage").joinpath(name).read_text(encoding="utf-8")


_READER_PRAGMAS = (f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}", "PRAGMA query_only = ON")
"""The settings of every read-only connection (the point reader and the aiosqlite readers)."""


def _connect_point_reader(path: str) -> sqlite3.Connection:
    """The connection for lookups by key (a run, its steps, its values, a request id), used
    on the event loop thread. Such a read is tens of microseconds on pages the writer just
    wrote; a hop to an aiosqlite thread and back cost more than the read, and more CPU
    (suspend+resume at 64 in flight: ~25 % less CPU per round trip). Scans (listing, counts)
    and event pages, whose size has no small bound, stay on the aiosqlite readers."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        for pragma in _READER_PRAGMAS:
            conn.execute(pragma)
    except BaseException:
        conn.close()
        raise
    return conn


async def _connect_reader(path: str) -> Any:
    reader = await aiosqlite.connect(path, isolation_level=None)
    try:
        for pragma in _READER_PRAGMAS:
            await reader.execute(pragma)
    except BaseException:
        await reader.close()
        raise
    return reader


class _Reader:
    """A reader connection whose failures to read the file (a failing device, a file that
    cannot be opened) are StorageUnavailable, as the writer's are; it reads nothing once its
    store failed stop."""

    __slots__ = ("_conn", "_store")

    def __init__(self, conn: aiosqlite.Connection, store: SqliteStore) -> None:
        self._conn = conn
        self._store = store

    async def execute_fetchall(self, sql: str, params: Sequence[object] = ()) -> Any:
        if self._store.failure is not None:
            raise self._store._refusal()
        try:
            return await self._conn.execute_fetchall(sql, params)
        except sqlite3.Error as exc:
            if (error := _storage_error(exc)) is exc:
                raise
            if isinstance(error, StorageUnavailable):  # counted as the writer's refusals are
                self._store.hub.refused(1)
            raise error from exc

    async def close(self) -> None:
        await self._conn.close()


class _Rows:
    """Step, item and event rows of a batch, inserted with one `executemany` per table."""

    __slots__ = ("_conn", "budget", "clears", "events", "items", "steps", "values")

    def __init__(self, conn: sqlite3.Connection, budget: removal.RemovalBudget | None = None) -> None:
        self._conn = conn
        self.budget = removal.RemovalBudget() if budget is None else budget
        """What the batch's deletes may still remove themselves (storage/removal.py)."""
        self.steps: list[tuple[str, str, int, str]] = []
        self.items: list[tuple[str, str, int, str]] = []
        self.clears: list[tuple[str, str]] = []
        self.events: list[tuple[str, int, float, str]] = []
        self.values: list[tuple[str, str, str]] = []

    def clear(self, run_id: str, paths: Sequence[StepPath]) -> None:
        """Delete these steps' stored items (at the flush, before the items gathered after)."""
        keys = {path_key(path) for path in paths}
        self.items = [row for row in self.items if row[0] != run_id or row[1] not in keys]
        self.clears.extend((run_id, key) for key in keys)

    def flush(self) -> None:
        """Insert the rows gathered so far (before anything that reads or deletes them)."""
        if self.steps:
            self._conn.executemany(_UPSERT_STEP, self.steps)
            self.steps = []
        if self.clears:
            self._conn.executemany(_CLEAR_ITEMS, self.clears)
            self.clears = []
        if self.items:
            self._conn.executemany(_UPSERT_ITEM, self.items)
            self.items = []
        if self.events:
            self._conn.executemany(_INSERT_EVENT, self.events)
            self.events = []
        if self.values:
            self._conn.executemany(values.INSERT, self.values)
            self.values = []


def _apply(
    conn: sqlite3.Connection, change: RunWrite | _Operation | _Sync, now: float, rows: _Rows
) -> WriteResult | batching.Done | Exception:
    """Apply one change, its step and event rows gathered into `rows`.

    Returns the exception of a change that cannot be encoded, or of one whose run has a
    status this code does not know (RunUnreadable: that change alone fails, not its batch);
    nothing of such a change is applied. Raises only database errors.
    """
    try:
        return _apply_change(conn, change, now, rows)
    except RunUnreadable as exc:  # from `_status`, read only where nothing of the change is written
        return exc


def _apply_change(
    conn: sqlite3.Connection, change: RunWrite | _Operation | _Sync, now: float, rows: _Rows
) -> WriteResult | batching.Done | Exception:
    if isinstance(change, _Sync):
        return batching.Done(None)
    if isinstance(change, _Operation):
        rows.flush()
        return batching.Done(change.apply(conn, now))
    run_id = change.run_id
    if change.delete:
        rows.flush()
        if change.expect is not None and (found := _status(conn, run_id)) not in change.expect:
            return WriteResult(applied=False, status=found)
        if change.expect_read is not None:
            read = conn.execute(_CREATED_AND_SEQUENCE, (run_id,)).fetchone()
            if read is None or not _as_read(read[0], read[1], change.expect_read):
                return WriteResult(applied=False, status=_status(conn, run_id))
        _delete_run(conn, run_id, now, rows.budget)
        for kind, request_id in change.requests:  # kept: a retry of the delete finds it
            conn.execute(_INSERT_DELETE_MARK, (run_id, kind, request_id, now))
        return WriteResult(applied=True, status=None)
    writer = values.ValueWriter()
    try:
        assignments, params, steps, bodies = _encode(change, writer)
        items = _encode_items(change, writer)
        created = None if change.create is None else _run_row(change.create, now, len(bodies), writer)
    except Exception as exc:  # not JSON data, an unknown field: a bug in the caller
        return exc
    count = len(bodies)
    claim = change.claim
    if change.create is not None and created is not None:  # `expect` means nothing for a new run
        # The claim goes into the new row itself: one statement for a Start, which looks at
        # `deleted_runs` too (a second statement only when nothing was inserted).
        lease = (claim.owner, 1, now + claim.seconds) if claim is not None else (None, 0, None)
        if conn.execute(_INSERT_RUN, (*created, *lease, now, run_id)).rowcount == 0:
            if conn.execute(_HAS_LEFTOVERS, (run_id,)).fetchone() is not None:
                # A deleted run's rows under the id are still being removed (whether a run row
                # is beside them or not): the store parks the create until they are gone
                # (storage/removal.py).
                return removal.LeftoversPending(run_id)
            return WriteResult(applied=False, status=_status(conn, run_id))
        status, last_seq, epoch = change.create.status._value_, count, lease[1]
        created_at = change.create.created_at
        if assignments:
            ((status, last_seq, epoch),) = conn.execute(
                f"UPDATE runs SET {', '.join(assignments)} WHERE run_id = ?"
                " RETURNING status, last_seq, epoch",
                (*params, run_id),
            ).fetchall()
    else:
        # The row is read and its conditions checked here, then updated by its key: inside
        # the writer's transaction nothing writes it in between, and the two statements cost
        # half of one `UPDATE ... WHERE <conditions> RETURNING`, for which SQLite builds a
        # temporary table (and another for the IN list of statuses) on every execution.
        found = conn.execute(_WRITE_CONDITION, (run_id,)).fetchone()
        if found is None:
            return KeyError(run_id) if change.expect is None else WriteResult(applied=False, status=None)
        # A status this code does not know is refused unchanged (RunUnreadable), with no `expect`
        # too: such a run is never changed without being read.
        before = stored_status(run_id, found[0])
        status, last_seq, epoch, owner, lease_expires_at, created_at = found
        if (
            type(last_seq) is not int
            or type(epoch) is not int
            or type(lease_expires_at) not in _LEASE_END
            or last_seq > _LARGEST - count
            or epoch >= _LARGEST
        ):
            # A hand edit: SQL would have taken text as 0, and made a REAL of a sum past 64 bits
            # (which Python cannot bind: the whole batch failed). This change alone is refused.
            raise unreadable(
                run_id, "row", TypeError("its sequence, epoch or lease end is not a number in range")
            )
        fence = change.fence
        if (
            (change.expect is not None and before not in change.expect)
            or (change.expect_read is not None and not _as_read(created_at, last_seq, change.expect_read))
            or (fence is not None and (owner != fence.owner or epoch != fence.epoch))
            or (claim is not None and owner is not None and not _expired(lease_expires_at, now))
        ):
            return WriteResult(applied=False, status=before)
        if claim is not None:
            epoch += 1
            assignments += ["owner = ?", "epoch = ?", "lease_expires_at = ?"]
            params += [claim.owner, epoch, now + claim.seconds]
        elif change.release:
            assignments += ["owner = NULL", "lease_expires_at = NULL"]
        # An execution left to the claim loops (a passing claim, or a claimless change that makes
        # the run active) waits behind those left before it.
        queued = claim.passing if claim is not None else _activates(before, change.patch)
        if queued:
            assignments.append("queued_at = ?")
            params.append(now)
        last_seq += count
        conn.execute(
            f"UPDATE runs SET {', '.join(['updated_at = ?', 'last_seq = ?', *assignments])} WHERE run_id = ?",
            (now, last_seq, *params, run_id),
        )
        if "status" in change.patch:
            status = run_status(change.patch["status"])._value_
    first = last_seq - count + 1
    if change.drop_steps:  # applied (the condition held): drop before this change's upserts
        rows.flush()
        conn.executemany(
            "DELETE FROM steps WHERE run_id = ? AND path_key = ?",
            [(run_id, path_key(path)) for path in change.drop_steps],
        )
    rows.values.extend(writer.rows)
    rows.steps.extend((run_id, key, position, record) for key, position, record in steps)
    if change.clear_items or change.drop_steps:  # a dropped step's items go with it
        rows.clear(run_id, [*change.clear_items, *change.drop_steps])
    rows.items.extend((run_id, key, index, item) for key, index, item in items)
    rows.events.extend((run_id, first + i, now, body) for i, body in enumerate(bodies))
    if change.requests:  # tested first: a loop over none costs a write about 400 instructions
        for kind, request_id in change.requests:
            conn.execute(_INSERT_REQUEST, (run_id, kind, request_id))
    # Built from the drafts, not re-parsed: the engine hands over JSON-ready values already.
    events = tuple(
        Event(run_id, first + i, now, d.type, d.run_status, d.step, d.data, d.error, d.progress, d.cause)
        for i, d in enumerate(change.events)
    )
    return WriteResult(
        applied=True,
        status=run_status(status),
        events=events,
        epoch=epoch if change.claim else 0,
        created_at=created_at,
    )


_OF_RUN = {table: "WHERE run_id = ?" for table in (*removal.LEFTOVER_TABLES, "events")}
_OF_RUN["requests"] += " AND kind <> 'delete'"  # delete marks are not the run's: kept for a retry
_HAS_LEFTOVERS = "SELECT 1 FROM deleted_runs WHERE run_id = ?"
_REQUEST_SEEN = f"(kind = 'delete' OR {_NOT_LEFTOVERS})"
"""A request mark a read may see: a delete's (kept after its run, for a retry of it), or one
under an id no deleted run's rows still hold."""
_REMOVE_ROWS = tuple(
    f"DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM {table} WHERE run_id = ?{extra} LIMIT ?)"
    for table, key, extra in removal.LEFTOVER_KEYS
)
"""A chunk of a deleted run's leftovers of each kind but events (at most `?` rows each)."""
_REMOVE_EVENTS = "DELETE FROM events WHERE run_id = ? AND seq >= ? AND seq < ?"
"""The events of a deleted run in a range of sequences: from the last down, its first event last
(`deleted_runs.events_below`, see migrate_v17.sql)."""
REMOVAL_CHUNK = 1000
"""Rows of each kind one operation of the removal deletes: about 2 ms of the writer, which
runs it between other writes, on the event loop."""


def _delete_run(conn: sqlite3.Connection, run_id: str, now: float, budget: removal.RemovalBudget) -> None:
    """Delete the run, with its rows if they are few (what is left of the batch's `budget`),
    else record its id in `deleted_runs` for the removal to take them away in chunks, between
    other writes. Bounded, whatever the run's size: deleting a million events here held the
    writer, and the event loop it runs on, for 1.6 s."""
    whole = conn.execute(_HAS_LEFTOVERS, (run_id,)).fetchone() is None
    allowed = max(budget.rows, 0)  # never a negative LIMIT: SQLite takes it as none
    size = 0
    for table, where in _OF_RUN.items():
        if not whole:
            break
        (found,) = conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {table} {where} LIMIT ?)", (run_id, allowed + 1)
        ).fetchone()
        size += found
        whole = size <= allowed
    # Charged whether the run goes whole or not: its counts are the batch's cost too (past the
    # budget, later deletes of the batch count one row of each kind).
    budget.rows -= size
    if whole:
        for table, where in _OF_RUN.items():
            conn.execute(f"DELETE FROM {table} {where}", (run_id,))
    else:
        conn.execute(
            "INSERT OR IGNORE INTO deleted_runs (run_id, deleted_at, events_below)"
            " SELECT ?, ?, coalesce(max(seq), 0) + 1 FROM events WHERE run_id = ?",
            (run_id, now, run_id),
        )
    conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))


def _remove_chunk(conn: sqlite3.Connection, run_id: str) -> tuple[bool, int]:
    """One chunk of the rows of a deleted run still being removed (`REMOVAL_CHUNK` of each
    kind); True once none is left and its id is out of `deleted_runs`, and the rows deleted."""
    found = conn.execute("SELECT events_below FROM deleted_runs WHERE run_id = ?", (run_id,)).fetchone()
    if found is None:
        return True, 0
    rows = 0
    full = False
    for sql in _REMOVE_ROWS:
        removed = conn.execute(sql, (run_id, REMOVAL_CHUNK)).rowcount
        rows += removed
        full = removed >= REMOVAL_CHUNK or full
    if full:
        return False, rows
    # Events once the rest is gone, the first one last (as on PostgreSQL, storage/removal.py).
    (below,) = found
    low = max(below - REMOVAL_CHUNK, 1)
    rows += conn.execute(_REMOVE_EVENTS, (run_id, low, below)).rowcount
    if low > 1:
        conn.execute("UPDATE deleted_runs SET events_below = ? WHERE run_id = ?", (low, run_id))
        return False, rows
    conn.execute("DELETE FROM deleted_runs WHERE run_id = ?", (run_id,))
    return True, rows


def _activates(before: RunStatus | None, patch: Mapping[str, Any]) -> bool:
    """Whether a change's `patch` makes a run that was not active active (a Start of a run created
    ahead): with no claim, its execution is left to the claim loops (`RunWrite`'s `queued_at`)."""
    after = patch.get("status")
    return after is not None and run_status(after) in _ACTIVE and before not in _ACTIVE


def _expired(lease_expires_at: float | None, now: float) -> bool:
    """Whether an owner's lease ran out (one with no expiry never does, as in SQL's `NULL < now`)."""
    return lease_expires_at is not None and lease_expires_at < now


_LARGEST = 2**63 - 1
"""SQLite's largest INTEGER."""
_LEASE_END = frozenset({float, int, type(None)})
"""What a row's `lease_expires_at` may hold (SQLite keeps whatever a hand edit wrote)."""

_WRITE_CONDITION = (
    "SELECT status, last_seq, epoch, owner, lease_expires_at, created_at FROM runs WHERE run_id = ?"
)


def _encode(
    change: RunWrite, writer: values.ValueWriter
) -> tuple[list[str], list[object], list[tuple[str, int, str]], list[str]]:
    """A change's patch assignments and parameters, step rows and event bodies (may raise)."""
    if change.create is not None and change.create.run_id != change.run_id:
        raise ValueError(f"create.run_id {change.create.run_id!r} differs from run_id {change.run_id!r}")
    assignments: list[str] = []
    params: list[object] = []
    for name, value in change.patch.items():
        encode = _PATCH_ENCODERS.get(name)
        if encode is None:
            raise ValueError(f"unknown run field {name!r} in patch")
        assignments.append(f"{name} = ?")
        params.append(writer.column(change.run_id, value) if name in _VALUE_COLUMNS else encode(value))
    # A step record is encoded once, though it is stored both in its row and in its event.
    encoded: dict[int, orjson.Fragment] = {}

    def encode_step(record: StepRecord) -> orjson.Fragment:
        fragment = encoded.get(id(record))
        if fragment is None:
            body = writer.body(change.run_id, record.to_json(), values.RECORD_FIELDS)
            fragment = encoded[id(record)] = orjson.Fragment(body)
        return fragment

    def step_row(record: StepRecord) -> str:
        if not record.foreach_items:
            return _dumps(encode_step(record))
        # The items go to their own rows (`_encode_items`), not into the step's: left out
        # before encoding, not encoded only to be dropped.
        data = evolve(record, foreach_items=()).to_json()
        return writer.body(change.run_id, data, values.RECORD_FIELDS).decode()

    steps = [(step.key, step.position, step_row(step)) for step in change.steps]
    bodies = [
        writer.body(change.run_id, draft.to_json(encode_step), values.EVENT_FIELDS).decode()
        for draft in change.events
    ]
    return assignments, params, steps, bodies


def _encode_items(change: RunWrite, writer: values.ValueWriter) -> list[tuple[str, int, str]]:
    """Item rows (path key, index, JSON) of a change: its records' items, then `items`."""

    def row(key: str, item: ForeachItem) -> tuple[str, int, str]:
        return key, item.index, writer.body(change.run_id, item.to_json(), values.ITEM_FIELDS).decode()

    rows = [row(record.key, item) for record in change.steps for item in record.foreach_items]
    rows.extend(row(path_key(path), item) for path, item in change.items)
    return rows


def _with_items(record: dict[str, Any], items: str | None) -> dict[str, Any]:
    """A decoded step record with its item rows as `foreach_items`; items a record still
    holds inline (written before item rows existed) stay unless a row replaces them, and
    the record says it holds some (`StepRecord.items_inline`)."""
    inline = record.get("foreach_items")
    if inline:
        record[ITEMS_INLINE] = True
    if items is None:
        return record
    rows = orjson.loads(items)
    if inline:
        merged = {item["index"]: item for item in inline}
        merged.update((item["index"], item) for item in rows)
        rows = list(merged.values())
    rows.sort(key=_index)
    record["foreach_items"] = rows
    return record


def _index(item: dict[str, Any]) -> int:
    index: int = item["index"]
    return index


def _as_read(created_at: float, last_seq: int, expected: tuple[float, int | None]) -> bool:
    """Whether a run's row is the run `RunWrite.expect_read` names, as it was read."""
    return created_at == expected[0] and (expected[1] is None or last_seq == expected[1])


def _status(conn: sqlite3.Connection, run_id: str) -> RunStatus | None:
    row = conn.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return None if row is None else stored_status(run_id, row[0])


# -- encoding ------------------------------------------------------------------------


def _dumps(value: Any) -> str:
    # orjson: every step record and event is encoded on the event loop thread, and orjson
    # does it several times faster than the json module.
    return values.dumps(value).decode()


def _json(value: Any) -> str | None:
    return None if value is None else _dumps(value)


def _encode_error(error: RunError | None) -> str | None:
    return None if error is None else _dumps(error.to_json())


def _encode_paths(paths: Sequence[StepPath]) -> str:
    return _dumps([list(path) for path in paths])


def _encode_labels(labels: Any) -> str:
    return _dumps({name: label.to_json() for name, label in labels.items()})


def _same(value: Any) -> Any:
    return value


_PATCH_ENCODERS: dict[str, Callable[[Any], object]] = {
    "status": lambda value: run_status(value)._value_,
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
    "cancel_requested": lambda value: int(bool(value)),
    "travel": lambda value: _json(value.to_json() if value else None),
    "deadline": _same,
    "definition_version": str,
    "definition_digest": str,
}


_VALUE_COLUMNS = frozenset({"input", "result"})
"""Run columns whose large values are stored once in run_values (see storage/values.py)."""


def _column_digests(row: Sequence[Any], into: set[str]) -> None:
    for index in (4, 7):  # input, result
        digest = values.column_digest(row[index])
        if digest is not None:
            into.add(digest)


def _run_row(run: Run, now: float, last_seq: int, writer: values.ValueWriter) -> tuple[object, ...]:
    """Values for `RUN_COLUMNS` of a new run whose log will hold `last_seq` events."""
    return (
        run.run_id,
        run.workflow_id,
        run.resource_id,
        run.status._value_,
        writer.column(run.run_id, run.input),
        _json(run.state),
        _json(run.request_context),
        writer.column(run.run_id, run.result),
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
        int(run.cancel_requested),
        run.forked_from,
        _json(run.travel.to_json() if run.travel else None),
        run.deadline,
        run.definition_version,
        run.definition_digest,
    )


def _cell(cell: Any, found: Found) -> Any:
    """A JSON column: inline text, or a reference to a stored value."""
    if isinstance(cell, bytes):
        return None if found is None else found.get(cell.decode())
    return loads(cell)


def _decoded_run(row: Sequence[Any], found: dict[str, Any] | None = None) -> Run:
    return decoded_run(row, _cell, found)
