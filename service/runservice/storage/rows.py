"""A run's columns, in the order both stores select and insert them, and the `Run` a row of
them reads back as: one definition, so a column added reaches both stores' readers alike.
Also how both report a run whose stored data does not decode (`unreadable`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from runservice.errors import RunUnreadable
from runservice.model import ResumeLabel, Run, RunError, RunStatus, StepRecord, Travel, run_status
from runservice.storage import values

logger = logging.getLogger(__name__)

RUN_COLUMN_LIST = (
    "run_id, workflow_id, resource_id, status, input, state, request_context, result, error,"
    " suspended, resume_labels, started_at, ended_at, wake_at, trace_id, last_seq, created_at, updated_at,"
    " cancel_requested, forked_from, travel, deadline, definition_version, definition_digest"
)
RUN_COLUMNS = RUN_COLUMN_LIST.split(", ")  # the order each store's row writer and `run_from_row` use

Found = Mapping[str, Any] | None
"""The stored values a run's columns refer to, by digest (storage/values.py)."""


def loads(data: str | bytes | None) -> Any:
    """A JSON column's value (NULL: None)."""
    return None if data is None else orjson.loads(data)


def run_from_row(row: Sequence[Any], value: Callable[[Any, Found], Any], found: Found = None) -> Run:
    """A Run from the `RUN_COLUMNS` of a row. `value` reads the input and result columns,
    which may hold a reference to a stored value instead of JSON (each store marks it its
    own way); `found` holds the values they refer to."""
    return Run(
        run_id=row[0],
        workflow_id=row[1],
        resource_id=row[2],
        status=run_status(row[3]),
        input=value(row[4], found),
        state=loads(row[5]),
        request_context=loads(row[6]) or {},
        result=value(row[7], found),
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


def decoded_run(row: Sequence[Any], value: Callable[[Any, Found], Any], found: Found = None) -> Run:
    """`run_from_row`, with RunUnreadable for a row that does not decode (part `status` when
    its status is one this code does not know, else `row`)."""
    try:
        return run_from_row(row, value, found)
    except UNDECODABLE as exc:
        part = "row" if row[3] in KNOWN_STATUSES else "status"
        raise unreadable(row[0], part, exc) from None


UNDECODABLE = (ValueError, TypeError, KeyError, AttributeError, IndexError)
"""What decoding a stored row that is not what runservice wrote raises: orjson's JSONDecodeError
(a ValueError), an unknown status (ValueError), a missing key or a value of another type."""
NOTICE_EVERY = 60.0
"""Seconds between two log lines about the same unreadable run."""
_noticed: dict[str, float] = {}


def unreadable(run_id: str, part: str, exc: BaseException) -> RunUnreadable:
    """The error for a failure to decode `part` of a stored run (one of `UNDECODABLE`, caught
    around decoding alone: a bug elsewhere must stay a bug): the caller gets DATA_LOSS naming
    the run, and the log one line a minute per run, not an INTERNAL error with a traceback."""
    detail = f"{type(exc).__name__}: {exc}"
    now = time.monotonic()
    if now - _noticed.get(run_id, -NOTICE_EVERY) >= NOTICE_EVERY:
        if len(_noticed) > 1000:
            _noticed.clear()
        _noticed[run_id] = now
        logger.warning(
            "run %s cannot be read: what is stored as its %s does not decode (%s)", run_id, part, detail
        )
    return RunUnreadable(run_id, part, detail)


KNOWN_STATUSES = tuple(sorted(status.value for status in RunStatus))
"""Every status this code knows: a write with no `expect` of its own applies only to a run in
one of them, so a run whose status it does not know is never changed without being read."""


def stored_status(run_id: str, text: str | None) -> RunStatus | None:
    """The run's status from its status column (None: no such run); RunUnreadable for one
    this code does not know (a hand edit, a newer runservice)."""
    if text is None:
        return None
    try:
        return run_status(text)
    except ValueError as exc:
        raise unreadable(run_id, "status", exc) from None


def step_rows(
    run_id: str, rows: Sequence[Sequence[Any]], with_items: Callable[[Any, Any], dict[str, Any]]
) -> tuple[list[dict[str, Any]], set[str]]:
    """The step records of a run's rows (a record's JSON, then its items, in the last two
    columns; `with_items` joins them) and the digests of the stored values they refer to."""
    try:
        decoded = [with_items(orjson.loads(row[-2]), row[-1]) for row in rows if row[-2] is not None]
        wanted: set[str] = set()
        values.records_wanted(decoded, wanted)
    except UNDECODABLE as exc:
        raise unreadable(run_id, "step records", exc) from None
    return decoded, wanted


def step_records(run_id: str, decoded: list[dict[str, Any]], found: Mapping[str, Any]) -> list[StepRecord]:
    """The `StepRecord`s of `step_rows`' records, with the stored values `found` in place."""
    try:
        return [StepRecord.from_json(values.resolve_record(record, found)) for record in decoded]
    except UNDECODABLE as exc:
        raise unreadable(run_id, "step records", exc) from None
