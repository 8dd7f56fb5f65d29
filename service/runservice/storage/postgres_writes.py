"""The PostgreSQL store's writer side: one batch of `RunWrite`s, one transaction, few statements.

A batch costs round trips far more than server work, so changes are applied in
*rounds*: consecutive changes of different runs are gathered (a run at most once per
round, which keeps each run's changes in order) and a round is two statements, one
`INSERT ... SELECT FROM unnest(...)` for its new runs and one `UPDATE ... FROM
unnest(...)` for the others. The update checks each change's `expect`, allocates its
sequences from `last_seq` (under the row lock, inside the transaction: gap-free, in
commit order, given back by a rollback) and sets exactly the patched fields (a bit
mask per change says which). The rounds' step, event and request rows then go in with
one statement, which also carries the batch's NOTIFY. With 64 runs in flight a batch of
~50 changes is BEGIN, two statements per round, one for the rows, COMMIT.

The common batch (changes of distinct runs, nothing deleted) skips all of that: it is
*one* statement in its own implicit transaction, one round trip instead of four. Its
data-modifying CTEs insert the new runs and update the others, and the step, event,
request and item rows join the runs that were applied (an event's sequence is computed
from the `last_seq` the update returns), with the NOTIFY built from the events inserted.
If the database refuses it, nothing of it is committed and the batch takes the long way,
which finds the bad change.

A batch of internal progress only is *quiet*: its transaction sets `synchronous_commit` off
for itself (`set_config(..., true)`, which one statement can carry), so its commit does not
wait for the WAL flush (the store's module docstring has the rule that makes this safe).

Row encoding: JSON documents are bytea holding orjson output (see postgres_v1.sql). A
large value is stored once per run in `run_values` and referenced wherever it appears
(storage/values.py): its row goes in with the rows of the change that first holds it.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import asyncpg
import orjson

from runservice.errors import RunUnreadable
from runservice.model import (
    ITEMS_INLINE,
    Event,
    ForeachItem,
    Run,
    RunError,
    StepPath,
    StepRecord,
    evolve,
    path_key,
    run_status,
)
from runservice.storage import RunWrite, WriteResult, removal, rows, values
from runservice.storage.rows import KNOWN_STATUSES, RUN_COLUMN_LIST, RUN_COLUMNS, stored_status

STATEMENT_ERRORS = (asyncpg.PostgresError, asyncpg.exceptions._base.DataError)
"""Errors the database (or asyncpg, before sending) raises for one statement; the
connection is still usable after them (the transaction is aborted for the former)."""

_QUIET_SELECT = "SELECT set_config('synchronous_commit', 'off', true) AS off"
"""Makes the current transaction's commit skip the WAL flush (as `SET LOCAL`, but usable
inside the one statement of an implicit transaction)."""

CHANNEL = "runservice_events"
"""The NOTIFY channel; a payload is lines of `<last sequence> <run id>`."""
_NOTIFY_PAYLOAD_BYTES = 7000  # PostgreSQL's limit is 8000

_KNOWN = ",".join(KNOWN_STATUSES)
"""`expect` of an update with none of its own (see `_update_columns`)."""
_RUN_TYPES = (
    ["text"] * 4
    + ["bytea"] * 7
    + ["double precision"] * 3
    + ["text", "bigint"]
    + ["double precision"] * 2
    + ["boolean"]
    + ["text", "bytea"]
    + ["double precision"]
    + ["text"] * 2
)
_NOW = "extract(epoch from now())::double precision"
"""The database's clock: every lease is measured by it, never by a replica's own clock."""
_PATCHABLE = (
    ("status", "text"),
    ("input", "bytea"),
    ("state", "bytea"),
    ("request_context", "bytea"),
    ("result", "bytea"),
    ("error", "bytea"),
    ("suspended", "bytea"),
    ("resume_labels", "bytea"),
    ("started_at", "double precision"),
    ("ended_at", "double precision"),
    ("wake_at", "double precision"),
    ("trace_id", "text"),
    ("cancel_requested", "boolean"),
    ("travel", "bytea"),
    ("deadline", "double precision"),
    ("definition_version", "text"),
    ("definition_digest", "text"),
)
_PATCH_SLOT = {name: i for i, (name, _) in enumerate(_PATCHABLE)}
_ACTIVE_SQL = "('running', 'waiting')"

# A new run may be claimed by its creator (Start): owner NULL or the claimer, epoch 0 or 1. It
# is in the claim order from now (`queued_at`, see `RunWrite`).
_INSERT_RUNS = (
    f"INSERT INTO runs ({RUN_COLUMN_LIST}, owner, epoch, lease_expires_at, queued_at)"
    f" SELECT {', '.join('c.' + name for name in RUN_COLUMNS)}, c.claim_owner,"
    " CASE WHEN c.claim_owner IS NULL THEN 0 ELSE 1 END,"
    f" CASE WHEN c.claim_owner IS NULL THEN NULL ELSE {_NOW} + c.claim_seconds END, {_NOW}"
    " FROM unnest("
    + ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate([*_RUN_TYPES, "text", "double precision"]))
    + f") AS c({RUN_COLUMN_LIST}, claim_owner, claim_seconds)"
    # Not while a deleted run's rows under the id are being removed (storage/removal.py).
    + " WHERE NOT EXISTS (SELECT 1 FROM deleted_runs d WHERE d.run_id = c.run_id)"
    + " ON CONFLICT (run_id) DO NOTHING RETURNING run_id, status, last_seq, epoch, created_at"
)


class _UpdateShape(NamedTuple):
    """Which columns an UPDATE of runs carries: arrays cost on both ends per statement, so
    the one-statement path sends only those its batch uses."""

    slots: tuple[int, ...]
    """The _PATCHABLE fields some change of the batch sets."""
    fence: bool
    claim: bool
    release: bool
    sequence: bool = False
    """Some change of the batch has an `expect_read`."""


_EVERY_UPDATE = _UpdateShape(
    tuple(range(len(_PATCHABLE))), fence=True, claim=True, release=True, sequence=True
)


def _update_sql(shape: _UpdateShape, first: int) -> tuple[str, int]:
    """An `UPDATE runs ... FROM unnest(...)` of this shape, its arrays numbered from `$first`
    (`$1` is the commit time), and how many arrays it takes (see `_update_columns`)."""
    columns = [("run_id", "text"), ("n", "integer"), ("expect", "text")]
    if shape.slots:
        columns.append(("mask", "integer"))
        columns.extend(_PATCHABLE[slot] for slot in shape.slots)
    if shape.fence:
        columns += [("fence_owner", "text"), ("fence_epoch", "bigint")]
    if shape.claim:
        columns += [("claim_owner", "text"), ("claim_seconds", "double precision")]
    if shape.release:
        columns.append(("release", "boolean"))
    if shape.sequence:
        columns += [("expect_created", "double precision"), ("expect_seq", "bigint")]
    sets = ["updated_at = $1", "last_seq = r.last_seq + c.n"]
    for slot in shape.slots:
        name = _PATCHABLE[slot][0]
        sets.append(f"{name} = CASE WHEN c.mask & {1 << slot} <> 0 THEN c.{name} ELSE r.{name} END")
    # Leases: a claim takes the run (next epoch); a release leaves it without owner.
    if shape.claim or shape.release:
        claim = " WHEN c.claim_owner IS NOT NULL THEN {}" if shape.claim else ""
        release = " WHEN c.release THEN NULL" if shape.release else ""
        sets.append(f"owner = CASE{claim.format('c.claim_owner')}{release} ELSE r.owner END")
        expiry = claim.format(f"{_NOW} + c.claim_seconds")
        sets.append(f"lease_expires_at = CASE{expiry}{release} ELSE r.lease_expires_at END")
    if shape.claim:
        sets.append("epoch = r.epoch + CASE WHEN c.claim_owner IS NOT NULL THEN 1 ELSE 0 END")
    # An execution left to the claim loops waits behind those left before it (see `RunWrite`):
    # a passing claim's, or a claimless change's that makes the run active (r: the row before).
    queued = []
    if shape.claim:
        queued.append(f" WHEN c.claim_owner IS NOT NULL THEN CASE WHEN c.claim_seconds <= 0 THEN {_NOW} END")
    status = _PATCH_SLOT["status"]
    if status in shape.slots:
        queued.append(
            f" WHEN c.mask & {1 << status} <> 0 AND c.status IN {_ACTIVE_SQL}"
            f" AND r.status NOT IN {_ACTIVE_SQL} THEN {_NOW}"
        )
    if queued:
        sets.append(f"queued_at = coalesce(CASE{''.join(queued)} END, r.queued_at)")
    # expect: NULL for none, else the statuses joined by commas (statuses are plain words).
    where = ["r.run_id = c.run_id", "(c.expect IS NULL OR r.status = ANY(string_to_array(c.expect, ',')))"]
    if shape.fence:  # a fenced change applies only under its lease
        where.append("(c.fence_owner IS NULL OR (r.owner = c.fence_owner AND r.epoch = c.fence_epoch))")
    if shape.claim:  # a claim only to a run with no live owner
        where.append(f"(c.claim_owner IS NULL OR r.owner IS NULL OR r.lease_expires_at < {_NOW})")
    if shape.sequence:  # a change planned from the run as read: the same run, nothing logged since
        where.append(
            "(c.expect_created IS NULL OR (r.created_at = c.expect_created"
            " AND (c.expect_seq IS NULL OR r.last_seq = c.expect_seq)))"
        )
    arrays = ", ".join(f"${first + k}::{kind}[]" for k, (_, kind) in enumerate(columns))
    sql = (
        f"UPDATE runs r SET {', '.join(sets)} FROM unnest({arrays})"
        f" AS c({', '.join(name for name, _ in columns)}) WHERE {' AND '.join(where)}"
        " RETURNING r.run_id, r.status, r.last_seq, r.epoch, r.created_at"
    )
    return sql, len(columns)


_UPDATE_RUNS, _ = _update_sql(_EVERY_UPDATE, 2)
_STATUSES = "SELECT run_id, status FROM runs WHERE run_id = ANY($1::text[])"
_LEFTOVERS = "SELECT run_id FROM deleted_runs WHERE run_id = ANY($1::text[])"
# A batch's step, event and request rows, and its NOTIFY, in one statement: data-modifying
# CTEs always run to completion, and an empty array inserts nothing.
_WRITE_ROWS_CTES = (
    "WITH s AS (INSERT INTO steps (run_id, path_key, position, record)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::bytea[])"
    " ON CONFLICT (run_id, path_key) DO UPDATE SET position = excluded.position, record = excluded.record),"
    " e AS (INSERT INTO events (run_id, seq, time, body)"
    " SELECT * FROM unnest($5::text[], $6::bigint[], $7::double precision[], $8::bytea[])),"
    " q AS (INSERT INTO requests (run_id, kind, request_id)"
    " SELECT * FROM unnest($9::text[], $10::text[], $11::text[]) ON CONFLICT DO NOTHING),"
    " i AS (INSERT INTO foreach_items (run_id, path_key, item_index, item)"
    " SELECT * FROM unnest($12::text[], $13::text[], $14::integer[], $15::bytea[])"
    " ON CONFLICT (run_id, path_key, item_index) DO UPDATE SET item = excluded.item),"
    " v AS (INSERT INTO run_values (run_id, digest, body)"
    " SELECT * FROM unnest($16::text[], $17::text[], $18::bytea[]) ON CONFLICT DO NOTHING)"
)
_WRITE_ROWS = f"{_WRITE_ROWS_CTES} SELECT 1"
_WRITE_ROWS_AND_NOTIFY = (
    f"{_WRITE_ROWS_CTES} SELECT pg_notify('{CHANNEL}', payload) FROM unnest($19::text[]) AS payload"
)
_CLEAR_ITEMS = (
    "DELETE FROM foreach_items f USING unnest($1::text[], $2::text[]) AS c(run_id, path_key)"
    " WHERE f.run_id = c.run_id AND f.path_key = c.path_key"
)
_OF_RUN = {table: "WHERE run_id = $1" for table in (*removal.LEFTOVER_TABLES, "events")}
_OF_RUN["requests"] += " AND kind <> 'delete'"  # delete marks are not the run's: kept for a retry
_DELETE_RUN = (
    # Its rows, each kind counted up to what the batch may still remove ($2): bounded reads.
    "WITH sizes AS MATERIALIZED (SELECT "
    + " + ".join(
        f"(SELECT count(*) FROM (SELECT 1 FROM {table} {where} LIMIT $2 + 1) c)"
        for table, where in _OF_RUN.items()
    )
    + " AS size, EXISTS (SELECT 1 FROM deleted_runs WHERE run_id = $1) AS pending),"
    # whole: removed with the delete; else left to the removal (storage/removal.py).
    " w AS MATERIALIZED (SELECT size <= $2 AND NOT pending AS whole, size FROM sizes),"
    + "".join(
        f" d{n} AS (DELETE FROM {table} {where} AND (SELECT whole FROM w)),"
        for n, (table, where) in enumerate(_OF_RUN.items())
    )
    + " r AS (DELETE FROM runs WHERE run_id = $1),"
    # Its events go from the last down (`events_below`, see postgres_v15.sql).
    f" t AS (INSERT INTO deleted_runs (run_id, deleted_at, events_below) SELECT $1, {_NOW},"
    " (SELECT coalesce(max(seq), 0) + 1 FROM events WHERE run_id = $1)"
    " WHERE NOT (SELECT whole FROM w) ON CONFLICT DO NOTHING),"
    # The delete's request mark, kept so that a retry finds it (never among the rows deleted).
    " m AS (INSERT INTO requests (run_id, kind, request_id, deleted_at)"
    f" SELECT $1, $3::text, $4::text, {_NOW} WHERE $4::text IS NOT NULL ON CONFLICT DO NOTHING)"
    " SELECT whole, size FROM w"
)
"""A run's delete once its row is locked: the run goes, with its rows if they are few, else its
id goes into `deleted_runs` and the removal takes its rows away in chunks, off the writer."""
HAS_LEFTOVERS = "SELECT EXISTS (SELECT 1 FROM deleted_runs WHERE run_id = $1)"
_LOCK_RUN = "SELECT status, created_at, last_seq FROM runs WHERE run_id = $1 FOR UPDATE"

Outcome = WriteResult | Exception


def _shift(sql: str, by: int) -> str:
    """`sql` with every parameter `$k` renumbered `$(k + by)`."""
    return re.sub(r"\$(\d+)", lambda m: f"${int(m.group(1)) + by}", sql)


_INSERT_ARRAYS = len(RUN_COLUMNS) + 2
_APPLIED_ONLY = "WHERE x.run_id IN (SELECT run_id FROM a)"
_ROW_CTES = (
    # (kind, its arrays' types, the CTE with {0}... for them)
    (
        "steps",
        ("text", "text", "integer", "bytea"),
        "s AS (INSERT INTO steps (run_id, path_key, position, record) SELECT x.* FROM unnest({})"
        f" AS x(run_id, path_key, position, record) {_APPLIED_ONLY} ON CONFLICT (run_id, path_key)"
        " DO UPDATE SET position = excluded.position, record = excluded.record)",
    ),
    (
        # `back`: how many of its run's events come after this one in the change.
        "events",
        ("text", "integer", "double precision", "bytea"),
        "e AS (INSERT INTO events (run_id, seq, time, body)"
        " SELECT x.run_id, a.last_seq - x.back, x.time, x.body FROM unnest({})"
        " AS x(run_id, back, time, body) JOIN a ON a.run_id = x.run_id RETURNING run_id, seq)",
    ),
    (
        "requests",
        ("text", "text", "text"),
        "q AS (INSERT INTO requests (run_id, kind, request_id) SELECT x.* FROM unnest({})"
        f" AS x(run_id, kind, request_id) {_APPLIED_ONLY} ON CONFLICT DO NOTHING)",
    ),
    (
        "items",
        ("text", "text", "integer", "bytea"),
        "f AS (INSERT INTO foreach_items (run_id, path_key, item_index, item) SELECT x.* FROM unnest({})"
        f" AS x(run_id, path_key, item_index, item) {_APPLIED_ONLY}"
        " ON CONFLICT (run_id, path_key, item_index) DO UPDATE SET item = excluded.item)",
    ),
    (
        "values",
        ("text", "text", "bytea"),
        "v AS (INSERT INTO run_values (run_id, digest, body) SELECT x.* FROM unnest({})"
        f" AS x(run_id, digest, body) {_APPLIED_ONLY} ON CONFLICT DO NOTHING)",
    ),
)


class _Shape(NamedTuple):
    """What a one-statement batch holds, which decides its statement (see `_one_statement`)."""

    updates: _UpdateShape | None
    creates: bool
    rows: tuple[str, ...]
    """The kinds of rows it writes, in `_ROW_CTES` order."""
    notify: bool
    quiet: bool
    """Commit without waiting for the WAL flush (internal progress, see `apply_batch`)."""


@functools.lru_cache(maxsize=512)
def _one_statement(shape: _Shape) -> str:
    """A whole batch of distinct runs in one statement (see the module docstring); its
    parameters come in this order: the commit time and the updates' arrays (if it has
    updates: a parameter the statement does not use has no type), the creates' arrays,
    then each kind of row's."""
    ctes: list[str] = []
    sources: list[str] = []
    taken = 0
    if shape.updates is not None:
        update, count = _update_sql(shape.updates, 2)  # $1: the commit time
        ctes.append(f"u AS ({update})")
        sources.append("SELECT * FROM u")
        taken = 1 + count
    if shape.creates:
        ctes.append(f"i AS ({_shift(_INSERT_RUNS, taken)})")
        sources.append("SELECT * FROM i")
        taken += _INSERT_ARRAYS
    ctes.append(f"a AS ({' UNION ALL '.join(sources)})")
    for kind, types, cte in _ROW_CTES:
        if kind in shape.rows:
            ctes.append(cte.format(", ".join(f"${taken + 1 + k}::{t}[]" for k, t in enumerate(types))))
            taken += len(types)
    # The scalar subqueries run once, and only when a row comes back, i.e. a run was applied
    # (when none was, the statement wrote nothing, and its commit has nothing to flush).
    extra = ""
    if shape.quiet:
        ctes.append(f"q AS ({_QUIET_SELECT})")
        extra += ", (SELECT off FROM q)"
    if not (shape.notify and "events" in shape.rows):
        return f"WITH {', '.join(ctes)} SELECT run_id, status, last_seq, epoch, created_at{extra} FROM a"
    # A line per run with events, `<last sequence> <run id>`, cut into payloads under the limit.
    ctes.append("lines AS (SELECT max(seq) || ' ' || run_id AS line FROM e GROUP BY run_id)")
    ctes.append(
        f"notes AS (SELECT pg_notify('{CHANNEL}', string_agg(line, E'\\n')) FROM"
        " (SELECT line, sum(octet_length(line) + 1) OVER (ORDER BY line)"
        f" / {_NOTIFY_PAYLOAD_BYTES // 2} AS chunk FROM lines) t GROUP BY chunk)"
    )
    return (
        f"WITH {', '.join(ctes)} SELECT run_id, status, last_seq, epoch, created_at{extra},"
        " (SELECT count(*) FROM notes) FROM a"
    )


async def apply_batch(
    conn: Any, changes: list[RunWrite], notify: bool, *, quiet: bool = False, held: Collection[str] = ()
) -> list[Outcome]:
    """Apply every change in one transaction and commit it; an outcome per change.

    The batch runs without savepoints first. If the database refuses a statement,
    the transaction is rolled back and the batch applied again with a savepoint per
    change, so the bad change fails alone and the others still commit.

    A run whose row another session holds (an operator's open transaction) fails its change
    alone, at once, as a lock timeout (`LockNotAvailableError`), without holding up the
    others: after a statement of the batch waited past the writer's `lock_timeout`, and for
    the runs in `held` (those the caller saw held before), the rows are locked first with
    `SKIP LOCKED`, and a change whose row was skipped is not tried (`_held_changes`).

    A `quiet` batch (internal progress nobody is told about) commits with
    `synchronous_commit` off for its own transaction: it returns without waiting for the
    WAL flush, and the next synced commit, whichever session makes it, covers it.
    """
    now = time.time()
    probe = {change.run_id for change in changes if change.run_id in held} if held else set()
    if _fits_one_statement(changes) and not probe:
        try:
            return await _apply_in_one_statement(conn, changes, now, notify, quiet=quiet)
        except asyncpg.exceptions.LockNotAvailableError:
            probe = {change.run_id for change in changes}
        except STATEMENT_ERRORS:
            pass  # nothing of it is committed: the long way below finds the bad change
    await _begin(conn, quiet)
    try:
        taken = await _held_changes(conn, changes, probe) if probe else {}
        if taken:
            outcomes = await _apply_each(conn, changes, taken, now, notify=notify)
        else:
            try:
                outcomes = await _apply_all(conn, changes, now, notify=notify)
            except STATEMENT_ERRORS as exc:
                await conn.execute("ROLLBACK")
                await _begin(conn, quiet)
                if isinstance(exc, asyncpg.exceptions.LockNotAvailableError) and not probe:
                    taken = await _held_changes(conn, changes, {change.run_id for change in changes})
                outcomes = await _apply_each(conn, changes, taken, now, notify=notify)
        await conn.execute("COMMIT")
    except BaseException:
        # A failed COMMIT has already ended the transaction; anything else is rolled back.
        # If the connection is broken or the task was cancelled mid-statement, drop it:
        # the store reconnects for the next batch.
        if not conn.is_closed() and conn.is_in_transaction():
            try:
                await asyncio.shield(conn.execute("ROLLBACK"))
            except BaseException:
                conn.terminate()
                raise
        raise
    return outcomes


async def _held_changes(
    conn: Any, changes: Sequence[RunWrite], run_ids: Collection[str]
) -> dict[int, Outcome]:
    """Lock the rows of `run_ids` nobody holds (in the open transaction); the changes (by
    index) of the runs whose row another session holds, each with its refusal, a lock timeout
    that costs no wait. A run with no row yet (a create) is not held."""
    ids = list(run_ids)
    free = {row[0] for row in await conn.fetch(_TAKE_ROWS, ids)}
    if len(free) == len(ids):
        return {}
    held = {row[0] for row in await conn.fetch(_PRESENT_ROWS, ids)} - free
    return {
        index: asyncpg.exceptions.LockNotAvailableError(f"another session holds run {change.run_id}'s row")
        for index, change in enumerate(changes)
        if change.run_id in held
    }


_TAKE_ROWS = "SELECT run_id FROM runs WHERE run_id = ANY($1::text[]) FOR UPDATE SKIP LOCKED"
_PRESENT_ROWS = "SELECT run_id FROM runs WHERE run_id = ANY($1::text[])"


async def _apply_each(
    conn: Any, changes: Sequence[RunWrite], taken: dict[int, Outcome], now: float, *, notify: bool
) -> list[Outcome]:
    """Apply each change whose outcome is not in `taken` already in a savepoint of its own,
    so that one the database refuses fails alone."""
    outcomes: list[Outcome] = []
    budget = removal.RemovalBudget()
    for index, change in enumerate(changes):
        outcome = taken.get(index)
        if outcome is None:
            await conn.execute("SAVEPOINT w")
            try:
                (outcome,) = await _apply_all(conn, [change], now, notify=False, budget=budget)
            except STATEMENT_ERRORS as exc:
                outcome = exc
            if isinstance(outcome, Exception):
                await conn.execute("ROLLBACK TO SAVEPOINT w")
            if _first_event_taken(outcome) and await conn.fetchval(HAS_LEFTOVERS, change.run_id):
                # The first event of a deleted run whose rows are being removed holds the id
                # (storage/removal.py): the change waits for them, parked.
                outcome = removal.LeftoversPending(change.run_id)
            await conn.execute("RELEASE SAVEPOINT w")
        outcomes.append(outcome)
    if notify:
        await _Rows().flush(conn, _notifications(changes, outcomes))
    return outcomes


def _first_event_taken(outcome: Outcome) -> bool:
    """Whether a change failed because an event's sequence is taken already: only the rows of
    a deleted run still being removed can hold one (storage/removal.py)."""
    return (
        isinstance(outcome, asyncpg.exceptions.UniqueViolationError)
        and getattr(outcome, "constraint_name", None) == "events_pkey"
    )


async def _begin(conn: Any, quiet: bool) -> None:
    await conn.execute("BEGIN")
    if quiet:
        await conn.execute(_QUIET_SELECT)


def _fits_one_statement(changes: Sequence[RunWrite]) -> bool:
    """Whether the batch can be one statement: each run once, nothing deleted or cleared."""
    runs = {change.run_id for change in changes}
    return len(runs) == len(changes) and not any(
        change.delete or change.drop_steps or change.clear_items for change in changes
    )


async def _apply_in_one_statement(
    conn: Any, changes: Sequence[RunWrite], now: float, notify: bool, *, quiet: bool
) -> list[Outcome]:
    """Apply a batch that `_fits_one_statement` with one statement (an implicit transaction)."""
    outcomes: list[Outcome | None] = [None] * len(changes)
    round_ = _Round()
    for index, change in enumerate(changes):
        try:
            round_.add(index, change, _encode(change))
        except Exception as exc:  # not JSON data, an unknown field: a bug in the caller
            outcomes[index] = exc
    if not round_.runs:  # every change failed to encode: nothing to send
        return outcomes  # type: ignore[return-value]
    rows = _Rows()
    events: list[tuple[str, int, float, bytes]] = []
    for _, change, encoded in [*round_.updates, *round_.creates]:
        for key, position, record in encoded.steps:
            rows.steps[(change.run_id, key)] = (position, record)
        for key, item_index, item in encoded.items:
            rows.items[(change.run_id, key, item_index)] = item
        for digest, body in encoded.stored:
            rows.values[(change.run_id, digest)] = body
        last = len(encoded.bodies) - 1
        events.extend((change.run_id, last - i, now, body) for i, body in enumerate(encoded.bodies))
        if change.requests:  # tested first: cheaper than a loop over none (most writes)
            rows.requests.extend((change.run_id, kind, request_id) for kind, request_id in change.requests)
    updates = round_.updates
    shape = _UpdateShape(
        tuple(slot for slot in range(len(_PATCHABLE)) if any(e.mask & (1 << slot) for _, _, e in updates)),
        fence=any(change.fence for _, change, _ in updates),
        claim=any(change.claim for _, change, _ in updates),
        release=any(change.release for _, change, _ in updates),
        sequence=any(change.expect_read is not None for _, change, _ in updates),
    )
    arrays = _row_arrays(rows.steps, events, rows.requests, rows.items, rows.values)
    kinds = tuple(kind for kind, _, _ in _ROW_CTES if arrays[kind][0])
    found = await conn.fetch(
        _one_statement(_Shape(shape if updates else None, bool(round_.creates), kinds, notify, quiet)),
        *((now, *_update_columns(updates, shape)) if updates else ()),
        *(_create_columns(round_.creates, now) if round_.creates else ()),
        *(column for kind in kinds for column in arrays[kind]),
    )
    applied = {row[0]: row for row in found}
    missing: list[tuple[int, RunWrite]] = []
    for index, change, encoded in [*round_.updates, *round_.creates]:
        row = applied.get(change.run_id)
        if row is None:
            missing.append((index, change))
        else:
            outcomes[index] = _result(change, encoded, _Applied.of(row), now)
    if missing:
        await _not_applied(conn, missing, outcomes)
    assert all(outcome is not None for outcome in outcomes)
    return outcomes  # type: ignore[return-value]


async def _apply_all(
    conn: Any,
    changes: Sequence[RunWrite],
    now: float,
    *,
    notify: bool,
    budget: removal.RemovalBudget | None = None,
) -> list[Outcome]:
    """Apply `changes` in order (in rounds, see the module docstring), with a NOTIFY of their
    events if `notify`; raises only database errors. `budget`: the rows the batch's deletes
    may still remove themselves (storage/removal.py)."""
    budget = removal.RemovalBudget() if budget is None else budget
    outcomes: list[Outcome | None] = [None] * len(changes)
    rows = _Rows()
    round_ = _Round()
    for index, change in enumerate(changes):
        if change.run_id in round_.runs:  # this run's earlier change goes first
            await round_.run(conn, now, outcomes, rows)
            round_ = _Round()
        if change.delete:
            await rows.flush(conn)  # rows of the run written earlier in the batch go too
            try:
                outcomes[index] = await _delete(conn, change, budget)
            except RunUnreadable as exc:  # a status this code does not know: nothing deleted
                outcomes[index] = exc
            continue
        try:
            encoded = _encode(change)
        except Exception as exc:  # not JSON data, an unknown field: a bug in the caller
            outcomes[index] = exc
            continue
        round_.add(index, change, encoded)
    await round_.run(conn, now, outcomes, rows)
    assert all(outcome is not None for outcome in outcomes)
    done: list[Outcome] = outcomes  # type: ignore[assignment]
    await rows.flush(conn, _notifications(changes, done) if notify else [])
    return done


async def _delete(conn: Any, change: RunWrite, budget: removal.RemovalBudget) -> WriteResult:
    # The run's row is locked first, by a statement of its own: a commit of the run in flight
    # (a Cancel on another replica) is waited for, and the delete, a statement with a snapshot
    # of its own, then sees every row it added. In one statement, as before, the deletes read
    # the snapshot taken before that commit, and left its events and request behind (audit: a
    # run later made under the id took them for its own, and no Resume of it could be stored
    # again).
    found = await conn.fetchrow(_LOCK_RUN, change.run_id)
    if change.expect is not None or change.expect_read is not None:
        status = stored_status(change.run_id, None if found is None else found[0])
        if (change.expect is not None and status not in change.expect) or (
            change.expect_read is not None
            and (
                found is None
                or found[1] != change.expect_read[0]
                or change.expect_read[1] not in (None, found[2])
            )
        ):
            return WriteResult(applied=False, status=status)
    # Bounded, whatever the run's size: a run with more rows than the batch may still remove
    # (a loop of months has millions of events) leaves them to the removal. Deleted here in one
    # statement, they held the writer, and every run of the replica, for as long (0.7 s a
    # million events), and a statement longer than ANSWER_WAIT failed, its retention for good.
    # A delete's mark is one row (engine: `delete_run`), passed to the statement's parameters.
    kind, request_id = change.requests[0] if change.requests else ("delete", None)
    size = await conn.fetchval(_DELETE_RUN, change.run_id, max(budget.rows, 0), kind, request_id, column=1)
    # Charged whether the run went whole or not: its counts are the batch's cost too. Left out
    # for a run left to the removal, each such delete of a batch counted up to `INLINE_ROWS`
    # rows of each kind again (500 of them held the writer about a second); past the budget
    # they count one row of each kind.
    budget.rows -= size
    return WriteResult(applied=True, status=None)


@dataclass(slots=True)
class _Encoded:
    mask: int
    """Bit i set: patch field i of _PATCHABLE is set (to `values[i]`, which may be None)."""
    values: list[object]
    steps: list[tuple[str, int, bytes]]
    bodies: list[bytes]
    items: list[tuple[str, int, bytes]]
    """Foreach item rows: (path key, index, JSON)."""
    stored: list[tuple[str, bytes]]
    """`run_values` rows of the large values it holds: (digest, JSON)."""
    columns: dict[str, bytes | None]
    """A new run's input and result columns (JSON, or a reference)."""


class _Round:
    """Changes of distinct runs applied together: one INSERT for creates, one UPDATE for the rest."""

    __slots__ = ("creates", "runs", "updates")

    def __init__(self) -> None:
        self.runs: set[str] = set()
        self.creates: list[tuple[int, RunWrite, _Encoded]] = []
        self.updates: list[tuple[int, RunWrite, _Encoded]] = []

    def add(self, index: int, change: RunWrite, encoded: _Encoded) -> None:
        self.runs.add(change.run_id)
        (self.creates if change.create is not None else self.updates).append((index, change, encoded))

    async def run(self, conn: Any, now: float, outcomes: list[Outcome | None], rows: _Rows) -> None:
        missing: list[tuple[int, RunWrite]] = []
        if self.creates:
            created = {
                row[0]: row for row in await conn.fetch(_INSERT_RUNS, *_create_columns(self.creates, now))
            }
            for index, change, encoded in self.creates:
                row = created.get(change.run_id)
                if row is None:
                    missing.append((index, change))
                else:
                    outcomes[index] = _applied(change, encoded, _Applied.of(row), now, rows)
        if self.updates:
            updated = {
                row[0]: row for row in await conn.fetch(_UPDATE_RUNS, now, *_update_columns(self.updates))
            }
            for index, change, encoded in self.updates:
                row = updated.get(change.run_id)
                if row is None:
                    missing.append((index, change))
                else:
                    outcomes[index] = _applied(change, encoded, _Applied.of(row), now, rows)
        if missing:
            await _not_applied(conn, missing, outcomes)


def _create_columns(creates: Sequence[tuple[int, RunWrite, _Encoded]], now: float) -> list[list[Any]]:
    """The arrays of `_INSERT_RUNS` for these creates (a create with a patch is inserted as
    patched: the row is new, nothing to compare)."""
    columns: list[list[Any]] = [[] for _ in range(_INSERT_ARRAYS)]
    for _, change, encoded in creates:
        claim = change.claim
        row = (
            *_patched_run_row(change, encoded, now),
            claim.owner if claim else None,
            claim.seconds if claim else None,
        )
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return columns


def _update_columns(
    updates: Sequence[tuple[int, RunWrite, _Encoded]], shape: _UpdateShape = _EVERY_UPDATE
) -> list[list[Any]]:
    """The arrays of an update of this shape (see `_update_sql`) for these updates."""
    rows: list[list[Any]] = []
    for _, change, encoded in updates:
        # With no `expect`, any status this code knows: one it does not know is read and refused
        # (`_not_applied`), never changed.
        expect = _KNOWN if change.expect is None else ",".join(sorted(s.value for s in change.expect))
        row = [change.run_id, len(encoded.bodies), expect]
        if shape.slots:
            row.append(encoded.mask)
            row.extend(encoded.values[slot] for slot in shape.slots)
        if shape.fence:
            fence = change.fence
            row += [fence.owner, fence.epoch] if fence else [None, None]
        if shape.claim:
            claim = change.claim
            row += [claim.owner, claim.seconds] if claim else [None, None]
        if shape.release:
            row.append(change.release)
        if shape.sequence:
            row += change.expect_read or (None, None)
        rows.append(row)
    return [list(column) for column in zip(*rows, strict=True)]


async def _not_applied(
    conn: Any, missing: Sequence[tuple[int, RunWrite]], outcomes: list[Outcome | None]
) -> None:
    """The outcomes of changes that did not apply: the run's status, or KeyError for a
    patch of a run that does not exist."""
    found = dict(await conn.fetch(_STATUSES, [change.run_id for _, change in missing]))
    absent = [c.run_id for _, c in missing if c.create is not None and c.run_id not in found]
    # A create refused with no run under its id: an earlier run's rows still hold it.
    held = {row[0] for row in await conn.fetch(_LEFTOVERS, absent)} if absent else set()
    for index, change in missing:
        status = found.get(change.run_id)
        if status is None and change.create is not None and change.run_id in held:
            outcomes[index] = removal.LeftoversPending(change.run_id)
            continue
        if status is None and change.create is None and change.expect is None:
            outcomes[index] = KeyError(change.run_id)
            continue
        try:
            outcomes[index] = WriteResult(applied=False, status=stored_status(change.run_id, status))
        except RunUnreadable as exc:
            outcomes[index] = exc


class _Applied(NamedTuple):
    """What a write returns of the row of a run it changed."""

    status: str
    last_seq: int
    epoch: int
    created_at: float

    @classmethod
    def of(cls, row: Any) -> _Applied:
        """From a row `run_id, status, last_seq, epoch, created_at`."""
        return cls(row[1], row[2], row[3], row[4])


def _applied(change: RunWrite, encoded: _Encoded, row: _Applied, now: float, rows: _Rows) -> WriteResult:
    """The result of an applied change; its step, event and request rows go into `rows`."""
    run_id = change.run_id
    first = row.last_seq - len(encoded.bodies) + 1
    for path in change.drop_steps:  # deleted before the batch's step rows are written
        key = path_key(path)
        rows.steps.pop((run_id, key), None)
        rows.drops.append((run_id, key))
    for key, position, record in encoded.steps:
        rows.steps[(run_id, key)] = (position, record)
    if change.clear_items or change.drop_steps:  # a dropped step's items go with it
        rows.clear(run_id, [*change.clear_items, *change.drop_steps])
    for key, index, item in encoded.items:
        rows.items[(run_id, key, index)] = item
    for digest, body in encoded.stored:
        rows.values[(run_id, digest)] = body
    rows.events.extend((run_id, first + i, now, body) for i, body in enumerate(encoded.bodies))
    if change.requests:  # tested first: cheaper than a loop over none (most writes)
        rows.requests.extend((run_id, kind, request_id) for kind, request_id in change.requests)
    return _result(change, encoded, row, now)


def _result(change: RunWrite, encoded: _Encoded, row: _Applied, now: float) -> WriteResult:
    """The result of an applied change, its events numbered up to the run's `last_seq`."""
    run_id = change.run_id
    first = row.last_seq - len(encoded.bodies) + 1
    # Built from the drafts, not re-parsed: the engine hands over JSON-ready values already.
    events = tuple(
        Event(run_id, first + i, now, d.type, d.run_status, d.step, d.data, d.error, d.progress, d.cause)
        for i, d in enumerate(change.events)
    )
    return WriteResult(
        applied=True,
        status=run_status(row.status),
        events=events,
        epoch=row.epoch if change.claim else 0,
        created_at=row.created_at,
    )


class _Rows:
    """Step, item, event, request and value rows of applied changes, inserted with one statement."""

    __slots__ = ("clears", "drops", "events", "items", "requests", "steps", "values")

    def __init__(self) -> None:
        # Keyed by (run, path): a step upserted twice keeps its last record (one statement
        # may not upsert the same row twice).
        self.steps: dict[tuple[str, str], tuple[int, bytes]] = {}
        self.items: dict[tuple[str, str, int], bytes] = {}
        self.values: dict[tuple[str, str], bytes] = {}
        """Large values by (run, digest)."""
        self.clears: list[tuple[str, str]] = []
        self.events: list[tuple[str, int, float, bytes]] = []
        self.requests: list[tuple[str, str, str]] = []
        self.drops: list[tuple[str, str]] = []
        """(run, path key) of step records to delete (time travel), before the upserts."""

    def clear(self, run_id: str, paths: Sequence[StepPath]) -> None:
        """Delete these steps' stored items (at the flush, before the items gathered after)."""
        keys = {path_key(path) for path in paths}
        self.items = {k: v for k, v in self.items.items() if k[0] != run_id or k[1] not in keys}
        self.clears.extend((run_id, key) for key in keys)

    async def flush(self, conn: Any, notifications: list[str] | None = None) -> None:
        """Insert the rows gathered so far (before anything that deletes them), and send
        `notifications` (NOTIFY payloads) in the same statement."""
        if self.drops:
            drops, self.drops = self.drops, []
            await conn.execute(
                "DELETE FROM steps WHERE (run_id, path_key) IN"
                " (SELECT * FROM unnest($1::text[], $2::text[]))",
                [d[0] for d in drops],
                [d[1] for d in drops],
            )
        gathered = self.steps or self.items or self.clears or self.events or self.requests or self.values
        if not (gathered or notifications):
            return
        steps, events, requests, items, stored, clears = (
            self.steps,
            self.events,
            self.requests,
            self.items,
            self.values,
            self.clears,
        )
        self.steps, self.events, self.requests, self.items, self.values, self.clears = {}, [], [], {}, {}, []
        if clears:  # rare (a foreach starting over): its own statement, before the new items
            await conn.execute(_CLEAR_ITEMS, [c[0] for c in clears], [c[1] for c in clears])
        await conn.execute(
            _WRITE_ROWS_AND_NOTIFY if notifications else _WRITE_ROWS,
            *(
                column
                for arrays in _row_arrays(steps, events, requests, items, stored).values()
                for column in arrays
            ),
            *([notifications] if notifications else []),
        )


def _row_arrays(
    steps: dict[tuple[str, str], tuple[int, bytes]],
    events: Sequence[tuple[str, int, float, bytes]],
    requests: Sequence[tuple[str, str, str]],
    items: dict[tuple[str, str, int], bytes],
    stored: dict[tuple[str, str], bytes],
) -> dict[str, list[list[Any]]]:
    """The step, event, request, item and value arrays of `_WRITE_ROWS` (and of the one
    statement), by kind of row, in that order."""
    return {
        "steps": [
            [run_id for run_id, _ in steps],
            [key for _, key in steps],
            [position for position, _ in steps.values()],
            [record for _, record in steps.values()],
        ],
        "events": [
            [e[0] for e in events],
            [e[1] for e in events],
            [e[2] for e in events],
            [e[3] for e in events],
        ],
        "requests": [[r[0] for r in requests], [r[1] for r in requests], [r[2] for r in requests]],
        "items": [[k[0] for k in items], [k[1] for k in items], [k[2] for k in items], list(items.values())],
        "values": [[k[0] for k in stored], [k[1] for k in stored], list(stored.values())],
    }


def _notifications(changes: Sequence[RunWrite], outcomes: Sequence[Outcome]) -> list[str]:
    """NOTIFY payloads for a batch: `<last sequence> <run id>` per run, a line each, chunked.

    A run the batch deleted has a line `0 <run id>` (a log never ends at 0 otherwise),
    before the line of a new run the batch made under the same id: other processes end
    the deleted run's followers. Older processes hear it as nothing new, as before."""
    deleted: dict[str, int] = {}
    last: dict[str, int] = {}
    for change, outcome in zip(changes, outcomes, strict=True):
        if not isinstance(outcome, WriteResult):
            continue
        if change.delete and outcome.applied:
            last.pop(change.run_id, None)  # that log is gone with its run
            deleted[change.run_id] = 0
        elif outcome.events:
            last[change.run_id] = outcome.last_sequence
    payloads: list[str] = []
    lines: list[str] = []
    size = 0
    for run_id, sequence in [*deleted.items(), *last.items()]:
        line = f"{sequence} {run_id}"
        length = len(line.encode()) + 1
        if lines and size + length > _NOTIFY_PAYLOAD_BYTES:
            payloads.append("\n".join(lines))
            lines, size = [], 0
        lines.append(line)
        size += length
    if lines:
        payloads.append("\n".join(lines))
    return payloads


# -- encoding ------------------------------------------------------------------------


def _encode(change: RunWrite) -> _Encoded:
    """A change's patch (mask and values), step, event and item rows, and the rows of the
    large values they refer to (may raise)."""
    if change.create is not None and change.create.run_id != change.run_id:
        raise ValueError(f"create.run_id {change.create.run_id!r} differs from run_id {change.run_id!r}")
    run_id = change.run_id
    writer = values.ValueWriter()
    mask = 0
    patched: list[object] = [None] * len(_PATCHABLE)
    for name, value in change.patch.items():
        slot = _PATCH_SLOT.get(name)
        if slot is None:
            raise ValueError(f"unknown run field {name!r} in patch")
        mask |= 1 << slot
        encode = _PATCH_ENCODERS[name]
        patched[slot] = _column(writer, run_id, value) if name in _VALUE_COLUMNS else encode(value)
    columns: dict[str, bytes | None] = {}
    if change.create is not None:
        columns = {name: _column(writer, run_id, getattr(change.create, name)) for name in _VALUE_COLUMNS}
    # A step record is encoded once, though it is stored both in its row and in its event.
    encoded: dict[int, orjson.Fragment] = {}

    def encode_step(record: StepRecord) -> orjson.Fragment:
        fragment = encoded.get(id(record))
        if fragment is None:
            body = writer.body(run_id, record.to_json(), values.RECORD_FIELDS)
            fragment = encoded[id(record)] = orjson.Fragment(body)
        return fragment

    def step_row(record: StepRecord) -> bytes:
        if not record.foreach_items:
            return orjson.dumps(encode_step(record))
        # The items go to their own rows, not into the step's: left out before encoding.
        data = evolve(record, foreach_items=()).to_json()
        return writer.body(run_id, data, values.RECORD_FIELDS)

    def item_row(key: str, item: ForeachItem) -> tuple[str, int, bytes]:
        return key, item.index, writer.body(run_id, item.to_json(), values.ITEM_FIELDS)

    steps = [(step.key, step.position, step_row(step)) for step in change.steps]
    bodies = [writer.body(run_id, draft.to_json(encode_step), values.EVENT_FIELDS) for draft in change.events]
    items = [item_row(record.key, item) for record in change.steps for item in record.foreach_items]
    items.extend(item_row(path_key(path), item) for path, item in change.items)
    stored = [(digest, body.encode()) for _, digest, body in writer.rows]
    return _Encoded(mask, patched, steps, bodies, items, stored, columns)


_VALUE_COLUMNS = ("input", "result")
"""Run columns whose large values are stored once in run_values (see storage/values.py)."""


def _column(writer: values.ValueWriter, run_id: str, value: Any) -> bytes | None:
    """A run column: the value's JSON, or for a large value `REF_MARK` and its digest."""
    if value is None:
        return None
    body, digest = writer.encode(run_id, value)
    return body if digest is None else values.REF_MARK + digest.encode()


def column_digests(row: Sequence[Any], into: set[str]) -> None:
    """Add the digests the run columns of a `RUN_COLUMNS` row refer to."""
    for index in (4, 7):  # input, result
        cell = row[index]
        if cell is not None and cell[:1] == values.REF_MARK:
            into.add(cell[1:].decode())


def _column_value(cell: bytes | None, found: rows.Found) -> Any:
    if cell is None:
        return None
    if cell[:1] == values.REF_MARK:
        return (found or {}).get(cell[1:].decode())
    return orjson.loads(cell)


def with_items(record: dict[str, Any], items: bytes | None) -> dict[str, Any]:
    """A decoded step record with its item rows (`items`: their JSON, comma-separated) as
    `foreach_items`; items a record still holds inline (written before item rows existed)
    stay unless a row replaces them, and the record says it holds some (`StepRecord.items_inline`)."""
    inline = record.get("foreach_items")
    if inline:
        record[ITEMS_INLINE] = True
    if not items:
        return record
    merged = {item["index"]: item for item in inline or ()}
    for item in orjson.loads(b"[" + items + b"]"):
        merged[item["index"]] = item
    record["foreach_items"] = [merged[index] for index in sorted(merged)]
    return record


def _json(value: Any) -> bytes | None:
    # orjson bytes go to bytea as they are: no str round trip, no server-side JSON parse.
    return None if value is None else values.dumps(value)


def _encode_error(error: RunError | None) -> bytes | None:
    return None if error is None else orjson.dumps(error.to_json())


def _encode_paths(paths: Sequence[StepPath]) -> bytes:
    return orjson.dumps([list(path) for path in paths])


def _encode_labels(labels: Any) -> bytes:
    return orjson.dumps({name: label.to_json() for name, label in labels.items()})


def _same(value: Any) -> Any:
    return value


_PATCH_ENCODERS: dict[str, Callable[[Any], object]] = {
    "status": lambda value: run_status(value).value,
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
    "cancel_requested": bool,
    "travel": lambda value: _json(value.to_json() if value else None),
    "deadline": _same,
    "definition_version": str,
    "definition_digest": str,
}
assert set(_PATCH_ENCODERS) == set(_PATCH_SLOT)


def _patched_run_row(change: RunWrite, encoded: _Encoded, now: float) -> tuple[object, ...]:
    """Values for RUN_COLUMNS of a new run, with the change's patch applied and its log size."""
    run = change.create
    assert run is not None
    row: list[object] = [
        run.run_id,
        run.workflow_id,
        run.resource_id,
        run.status.value,
        encoded.columns["input"],
        _json(run.state),
        _json(run.request_context),
        encoded.columns["result"],
        _encode_error(run.error),
        _encode_paths(run.suspended),
        _encode_labels(run.resume_labels),
        run.started_at,
        run.ended_at,
        run.wake_at,
        run.trace_id,
        len(encoded.bodies),
        run.created_at,
        now,
        run.cancel_requested,
        run.forked_from,
        _json(run.travel.to_json() if run.travel else None),
        run.deadline,
        run.definition_version,
        run.definition_digest,
    ]
    if encoded.mask:
        for slot, (name, _) in enumerate(_PATCHABLE):
            if encoded.mask & (1 << slot):
                row[RUN_COLUMNS.index(name)] = encoded.values[slot]
    return tuple(row)


def run_from_row(row: Sequence[Any], found: dict[str, Any] | None = None) -> Run:
    """A Run from the RUN_COLUMNS of a row; `found`: the stored values its columns refer to
    (see `column_digests`). RunUnreadable for a row that does not decode."""
    return rows.decoded_run(row, _column_value, found)
