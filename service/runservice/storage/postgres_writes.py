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

Row encoding: JSON documents are bytea holding orjson output (see postgres_v1.sql).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from runservice.model import (
    Event,
    ResumeLabel,
    Run,
    RunError,
    RunStatus,
    StepPath,
    StepRecord,
    Travel,
    path_key,
)
from runservice.storage import RunWrite, WriteResult

STATEMENT_ERRORS = (asyncpg.PostgresError, asyncpg.exceptions._base.DataError)
"""Errors the database (or asyncpg, before sending) raises for one statement; the
connection is still usable after them (the transaction is aborted for the former)."""

CHANNEL = "runservice_events"
"""The NOTIFY channel; a payload is lines of `<last sequence> <run id>`."""
_NOTIFY_PAYLOAD_BYTES = 7000  # PostgreSQL's limit is 8000

RUN_COLUMN_LIST = (
    "run_id, workflow_id, resource_id, status, input, state, request_context, result, error,"
    " suspended, resume_labels, started_at, ended_at, wake_at, trace_id, last_seq, created_at, updated_at,"
    " cancel_requested, forked_from, travel, deadline, definition_version, definition_digest"
)
RUN_COLUMNS = RUN_COLUMN_LIST.split(", ")  # the order `_run_row` and `run_from_row` use
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

# A new run may be claimed by its creator (Start): owner NULL or the claimer, epoch 0 or 1.
_INSERT_RUNS = (
    f"INSERT INTO runs ({RUN_COLUMN_LIST}, owner, epoch, lease_expires_at)"
    f" SELECT {', '.join('c.' + name for name in RUN_COLUMNS)}, c.claim_owner,"
    " CASE WHEN c.claim_owner IS NULL THEN 0 ELSE 1 END,"
    f" CASE WHEN c.claim_owner IS NULL THEN NULL ELSE {_NOW} + c.claim_seconds END"
    " FROM unnest("
    + ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate([*_RUN_TYPES, "text", "double precision"]))
    + f") AS c({RUN_COLUMN_LIST}, claim_owner, claim_seconds)"
    + " ON CONFLICT (run_id) DO NOTHING RETURNING run_id, status, last_seq, epoch"
)
_LEASE_COLUMNS = (
    ("fence_owner", "text"),
    ("fence_epoch", "bigint"),
    ("claim_owner", "text"),
    ("claim_seconds", "double precision"),
    ("release", "boolean"),
)
_UPDATE_RUNS = (
    "UPDATE runs r SET updated_at = $1, last_seq = r.last_seq + c.n"
    + "".join(
        f", {name} = CASE WHEN c.mask & {1 << i} <> 0 THEN c.{name} ELSE r.{name} END"
        for i, (name, _) in enumerate(_PATCHABLE)
    )
    # Leases: a claim takes the run (next epoch); a release leaves it without owner.
    + ", owner = CASE WHEN c.claim_owner IS NOT NULL THEN c.claim_owner"
    " WHEN c.release THEN NULL ELSE r.owner END"
    ", epoch = r.epoch + CASE WHEN c.claim_owner IS NOT NULL THEN 1 ELSE 0 END"
    f", lease_expires_at = CASE WHEN c.claim_owner IS NOT NULL THEN {_NOW} + c.claim_seconds"
    " WHEN c.release THEN NULL ELSE r.lease_expires_at END"
    + " FROM unnest($2::text[], $3::integer[], $4::text[], $5::integer[], "
    + ", ".join(f"${i + 6}::{t}[]" for i, (_, t) in enumerate([*_PATCHABLE, *_LEASE_COLUMNS]))
    + f") AS c(run_id, n, expect, mask, {', '.join(name for name, _ in [*_PATCHABLE, *_LEASE_COLUMNS])})"
    # expect: NULL for none, else the statuses joined by commas (statuses are plain words).
    + " WHERE r.run_id = c.run_id AND (c.expect IS NULL OR r.status = ANY(string_to_array(c.expect, ',')))"
    # A fenced change applies only under its lease; a claim only to a run with no live owner.
    + " AND (c.fence_owner IS NULL OR (r.owner = c.fence_owner AND r.epoch = c.fence_epoch))"
    + f" AND (c.claim_owner IS NULL OR r.owner IS NULL OR r.lease_expires_at < {_NOW})"
    + " RETURNING r.run_id, r.status, r.last_seq, r.epoch"
)
_STATUSES = "SELECT run_id, status FROM runs WHERE run_id = ANY($1::text[])"
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
    " ON CONFLICT (run_id, path_key, item_index) DO UPDATE SET item = excluded.item)"
)
_WRITE_ROWS = f"{_WRITE_ROWS_CTES} SELECT 1"
_WRITE_ROWS_AND_NOTIFY = (
    f"{_WRITE_ROWS_CTES} SELECT pg_notify('{CHANNEL}', payload) FROM unnest($16::text[]) AS payload"
)
_CLEAR_ITEMS = (
    "DELETE FROM foreach_items f USING unnest($1::text[], $2::text[]) AS c(run_id, path_key)"
    " WHERE f.run_id = c.run_id AND f.path_key = c.path_key"
)
_DELETE_RUN = (
    "WITH r AS (DELETE FROM runs WHERE run_id = $1),"
    " s AS (DELETE FROM steps WHERE run_id = $1),"
    " f AS (DELETE FROM foreach_items WHERE run_id = $1),"
    " e AS (DELETE FROM events WHERE run_id = $1),"
    " q AS (DELETE FROM requests WHERE run_id = $1)"
    " SELECT 1"
)
_DELETE_RUN_IF = (
    "WITH gone AS (DELETE FROM runs WHERE run_id = $1 AND status = ANY($2::text[]) RETURNING run_id),"
    " s AS (DELETE FROM steps WHERE run_id IN (SELECT run_id FROM gone)),"
    " f AS (DELETE FROM foreach_items WHERE run_id IN (SELECT run_id FROM gone)),"
    " e AS (DELETE FROM events WHERE run_id IN (SELECT run_id FROM gone)),"
    " q AS (DELETE FROM requests WHERE run_id IN (SELECT run_id FROM gone))"
    " SELECT count(*) FROM gone"
)

Outcome = WriteResult | Exception


async def apply_batch(conn: Any, changes: list[RunWrite], notify: bool) -> list[Outcome]:
    """Apply every change in one transaction and commit it; an outcome per change.

    The batch runs without savepoints first. If the database refuses a statement,
    the transaction is rolled back and the batch applied again with a savepoint per
    change, so the bad change fails alone and the others still commit.
    """
    now = time.time()
    await conn.execute("BEGIN")
    try:
        try:
            outcomes = await _apply_all(conn, changes, now, notify=notify)
        except STATEMENT_ERRORS:
            await conn.execute("ROLLBACK")
            await conn.execute("BEGIN")
            outcomes = []
            for change in changes:
                await conn.execute("SAVEPOINT w")
                try:
                    (outcome,) = await _apply_all(conn, [change], now, notify=False)
                except STATEMENT_ERRORS as exc:
                    outcome = exc
                if isinstance(outcome, Exception):
                    await conn.execute("ROLLBACK TO SAVEPOINT w")
                await conn.execute("RELEASE SAVEPOINT w")
                outcomes.append(outcome)
            if notify:
                await _Rows().flush(conn, _notifications(outcomes))
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


async def _apply_all(conn: Any, changes: Sequence[RunWrite], now: float, *, notify: bool) -> list[Outcome]:
    """Apply `changes` in order (in rounds, see the module docstring), with a NOTIFY of their
    events if `notify`; raises only database errors."""
    outcomes: list[Outcome | None] = [None] * len(changes)
    rows = _Rows()
    round_ = _Round()
    for index, change in enumerate(changes):
        if change.run_id in round_.runs:  # this run's earlier change goes first
            await round_.run(conn, now, outcomes, rows)
            round_ = _Round()
        if change.delete:
            await rows.flush(conn)  # rows of the run written earlier in the batch go too
            outcomes[index] = await _delete(conn, change)
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
    await rows.flush(conn, _notifications(done) if notify else [])
    return done


async def _delete(conn: Any, change: RunWrite) -> WriteResult:
    if change.expect is None:
        await conn.execute(_DELETE_RUN, change.run_id)
        return WriteResult(applied=True, status=None)
    if await conn.fetchval(_DELETE_RUN_IF, change.run_id, sorted(s.value for s in change.expect)):
        return WriteResult(applied=True, status=None)
    found = await conn.fetchval("SELECT status FROM runs WHERE run_id = $1", change.run_id)
    return WriteResult(applied=False, status=None if found is None else RunStatus(found))


@dataclass(slots=True)
class _Encoded:
    mask: int
    """Bit i set: patch field i of _PATCHABLE is set (to `values[i]`, which may be None)."""
    values: list[object]
    steps: list[tuple[str, int, bytes]]
    bodies: list[bytes]
    items: list[tuple[str, int, bytes]]
    """Foreach item rows: (path key, index, JSON)."""


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
            # A create with a patch is inserted as patched: the row is new, nothing to compare.
            new_rows = [
                (
                    *_patched_run_row(c, e, now),
                    c.claim.owner if c.claim else None,
                    c.claim.seconds if c.claim else None,
                )
                for _, c, e in self.creates
            ]
            created = {
                row[0]: row
                for row in await conn.fetch(_INSERT_RUNS, *(list(c) for c in zip(*new_rows, strict=True)))
            }
            for index, change, encoded in self.creates:
                row = created.get(change.run_id)
                if row is None:
                    missing.append((index, change))
                else:
                    outcomes[index] = _applied(change, encoded, row[1], row[2], now, rows, row[3])
        if self.updates:
            columns: list[list[Any]] = [[] for _ in range(4 + len(_PATCHABLE) + len(_LEASE_COLUMNS))]
            for _, change, encoded in self.updates:
                expect = None if change.expect is None else ",".join(sorted(s.value for s in change.expect))
                fence, claim = change.fence, change.claim
                lease = (
                    fence.owner if fence else None,
                    fence.epoch if fence else None,
                    claim.owner if claim else None,
                    claim.seconds if claim else None,
                    change.release,
                )
                for column, value in zip(
                    columns,
                    (change.run_id, len(encoded.bodies), expect, encoded.mask, *encoded.values, *lease),
                    strict=True,
                ):
                    column.append(value)
            updated = {row[0]: row for row in await conn.fetch(_UPDATE_RUNS, now, *columns)}
            for index, change, encoded in self.updates:
                row = updated.get(change.run_id)
                if row is None:
                    missing.append((index, change))
                else:
                    outcomes[index] = _applied(change, encoded, row[1], row[2], now, rows, row[3])
        if missing:
            found = dict(await conn.fetch(_STATUSES, [change.run_id for _, change in missing]))
            for index, change in missing:
                status = found.get(change.run_id)
                if status is None and change.create is None and change.expect is None:
                    outcomes[index] = KeyError(change.run_id)
                else:
                    outcomes[index] = WriteResult(
                        applied=False, status=None if status is None else RunStatus(status)
                    )


def _applied(
    change: RunWrite, encoded: _Encoded, status: str, last_seq: int, now: float, rows: _Rows, epoch: int
) -> WriteResult:
    """The result of an applied change; its step, event and request rows go into `rows`."""
    run_id = change.run_id
    first = last_seq - len(encoded.bodies) + 1
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
    rows.events.extend((run_id, first + i, now, body) for i, body in enumerate(encoded.bodies))
    if change.request is not None:
        kind, request_id = change.request
        rows.requests.append((run_id, kind, request_id))
    # Built from the drafts, not re-parsed: the engine hands over JSON-ready values already.
    events = tuple(
        Event(run_id, first + i, now, d.type, d.run_status, d.step, d.data, d.error, d.progress)
        for i, d in enumerate(change.events)
    )
    return WriteResult(
        applied=True, status=RunStatus(status), events=events, epoch=epoch if change.claim else 0
    )


class _Rows:
    """Step, item, event and request rows of applied changes, inserted with one statement."""

    __slots__ = ("clears", "drops", "events", "items", "requests", "steps")

    def __init__(self) -> None:
        # Keyed by (run, path): a step upserted twice keeps its last record (one statement
        # may not upsert the same row twice).
        self.steps: dict[tuple[str, str], tuple[int, bytes]] = {}
        self.items: dict[tuple[str, str, int], bytes] = {}
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
        if not (self.steps or self.items or self.clears or self.events or self.requests or notifications):
            return
        keys, steps = list(self.steps), list(self.steps.values())
        events, requests, items, clears = self.events, self.requests, self.items, self.clears
        self.steps, self.events, self.requests, self.items, self.clears = {}, [], [], {}, []
        if clears:  # rare (a foreach starting over): its own statement, before the new items
            await conn.execute(_CLEAR_ITEMS, [c[0] for c in clears], [c[1] for c in clears])
        await conn.execute(
            _WRITE_ROWS_AND_NOTIFY if notifications else _WRITE_ROWS,
            [run_id for run_id, _ in keys],
            [key for _, key in keys],
            [position for position, _ in steps],
            [record for _, record in steps],
            [e[0] for e in events],
            [e[1] for e in events],
            [e[2] for e in events],
            [e[3] for e in events],
            [r[0] for r in requests],
            [r[1] for r in requests],
            [r[2] for r in requests],
            [k[0] for k in items],
            [k[1] for k in items],
            [k[2] for k in items],
            list(items.values()),
            *([notifications] if notifications else []),
        )


def _notifications(outcomes: Sequence[Outcome]) -> list[str]:
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
    """A change's patch (mask and values), step rows and event bodies (may raise)."""
    if change.create is not None and change.create.run_id != change.run_id:
        raise ValueError(f"create.run_id {change.create.run_id!r} differs from run_id {change.run_id!r}")
    mask = 0
    values: list[object] = [None] * len(_PATCHABLE)
    for name, value in change.patch.items():
        slot = _PATCH_SLOT.get(name)
        if slot is None:
            raise ValueError(f"unknown run field {name!r} in patch")
        mask |= 1 << slot
        values[slot] = _PATCH_ENCODERS[name](value)
    # A step record is encoded once, though it is stored both in its row and in its event.
    encoded: dict[int, orjson.Fragment] = {}

    def encode_step(record: StepRecord) -> orjson.Fragment:
        fragment = encoded.get(id(record))
        if fragment is None:
            fragment = encoded[id(record)] = orjson.Fragment(orjson.dumps(record.to_json()))
        return fragment

    def step_row(record: StepRecord) -> bytes:
        if not record.foreach_items:
            return orjson.dumps(encode_step(record))
        data = record.to_json()  # the items go to their own rows, not into the step's
        del data["foreach_items"]
        return orjson.dumps(data)

    steps = [(step.key, step.position, step_row(step)) for step in change.steps]
    bodies = [orjson.dumps(draft.to_json(encode_step)) for draft in change.events]
    items = [
        (record.key, item.index, orjson.dumps(item.to_json()))
        for record in change.steps
        for item in record.foreach_items
    ]
    items.extend((path_key(path), item.index, orjson.dumps(item.to_json())) for path, item in change.items)
    return _Encoded(mask, values, steps, bodies, items)


def with_items(record: dict[str, Any], items: bytes | None) -> dict[str, Any]:
    """A decoded step record with its item rows (`items`: their JSON, comma-separated) as
    `foreach_items`; items a record still holds inline (written before item rows existed)
    stay unless a row replaces them."""
    if not items:
        return record
    merged = {item["index"]: item for item in record.get("foreach_items") or ()}
    for item in orjson.loads(b"[" + items + b"]"):
        merged[item["index"]] = item
    record["foreach_items"] = [merged[index] for index in sorted(merged)]
    return record


def _json(value: Any) -> bytes | None:
    # orjson bytes go to bytea as they are: no str round trip, no server-side JSON parse.
    return None if value is None else orjson.dumps(value)


def loads(data: bytes | None) -> Any:
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


def run_from_row(row: Sequence[Any]) -> Run:
    """A Run from the RUN_COLUMNS of a row."""
    return Run(
        run_id=row[0],
        workflow_id=row[1],
        resource_id=row[2],
        status=RunStatus(row[3]),
        input=loads(row[4]),
        state=loads(row[5]),
        request_context=loads(row[6]) or {},
        result=loads(row[7]),
        error=RunError.from_json(loads(row[8])),
        suspended=tuple(tuple(path) for path in loads(row[9]) or ()),
        resume_labels={name: ResumeLabel.from_json(label) for name, label in (loads(row[10]) or {}).items()},
        started_at=row[11],
        ended_at=row[12],
        wake_at=row[13],
        trace_id=row[14],
        last_sequence=row[15],
        created_at=row[16],
        updated_at=row[17],
        cancel_requested=bool(row[18]),
        forked_from=row[19],
        travel=Travel.from_json(loads(row[20])),
        deadline=row[21],
        definition_version=row[22],
        definition_digest=row[23],
    )
