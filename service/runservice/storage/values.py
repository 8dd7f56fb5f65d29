"""Large JSON values stored once per run and referenced wherever they appear.

The same value turns up many times in a run: its input is the first step's payload, a
step's output is the next step's payload, the last output is the result, and every step
record is written again into its events. Stored inline, a 1 MB input through three
pass-through steps cost 18 MB on disk. Here a value whose JSON is at least `THRESHOLD`
bytes goes once into `run_values` (key: run id and a digest of its JSON) and is referenced:

- in a step record or an event, the field is left out and `"refs": {field: digest}` is
  added (step records: payload, output, suspend_payload, resume_payload; events: data);
- in a foreach item, likewise (output, suspend_payload, resume_payload);
- in a run column (input, result), SQLite holds the digest as a BLOB instead of the JSON
  text (it keeps the type, so the two cannot be confused); PostgreSQL's bytea column holds
  `REF_MARK` and the digest (no JSON starts with a zero byte).

Values are deleted with their run. Smaller values stay inline: a lookup would cost more
than the copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson

THRESHOLD = 1024
"""JSON size (bytes) from which a value is stored once and referenced."""

RECORD_FIELDS = ("payload", "output", "suspend_payload", "resume_payload", "suspend_output")
"""The fields of a step record that may be references."""
EVENT_FIELDS = ("data",)
"""The fields of an event body that may be references (besides its step record)."""
ITEM_FIELDS = ("output", "suspend_payload", "resume_payload")
"""The fields of a foreach item that may be references."""

INSERT = "INSERT OR IGNORE INTO run_values (run_id, digest, body) VALUES (?, ?, ?)"
REF_MARK = b"\x00"
"""The first byte of a PostgreSQL run column that refers to a stored value (see above)."""


def dumps(value: Any) -> bytes:
    """Compact JSON of `value`. Total for numbers, so no step output can make a write fail:
    NaN and Infinity become null (orjson's rule), and an int beyond 64 bits, which orjson
    refuses, becomes the nearest double (null beyond a double's range), as it would on the wire.
    """
    try:
        return orjson.dumps(value)
    except TypeError as exc:
        if "Integer" not in str(exc):
            raise
        return orjson.dumps(_wide_ints_as_floats(value))


def _wide_ints_as_floats(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, float | str):
        return value
    if isinstance(value, int):
        if -(2**63) <= value < 2**64:
            return value
        return float(value) if -(2**1024) < value < 2**1024 else None
    if isinstance(value, orjson.Fragment):
        return value
    if isinstance(value, Mapping):
        return {key: _wide_ints_as_floats(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_wide_ints_as_floats(item) for item in value]
    return value


class ValueWriter:
    """Encodes the values of one batch, gathering the large ones as `run_values` rows."""

    __slots__ = ("_encoded", "rows")

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []
        # By object identity: the same object (a payload shared by a record and its events)
        # is encoded and hashed once per batch; the batch keeps every object alive.
        self._encoded: dict[int, tuple[Any, bytes, str | None]] = {}

    def encode(self, run_id: str, value: Any) -> tuple[bytes, str | None]:
        """The JSON of `value` and, when it is large, its digest (its row is gathered)."""
        known = self._encoded.get(id(value))
        if known is not None and known[0] is value:
            return known[1], known[2]
        body = dumps(value)
        digest = None
        if len(body) >= THRESHOLD:
            digest = hashlib.blake2b(body, digest_size=16).hexdigest()
            self.rows.append((run_id, digest, body.decode()))
        self._encoded[id(value)] = (value, body, digest)
        return body, digest

    def column(self, run_id: str, value: Any) -> str | bytes | None:
        """A run column: JSON text, or the digest as a BLOB for a large value."""
        if value is None:
            return None
        body, digest = self.encode(run_id, value)
        return body.decode() if digest is None else digest.encode()

    def body(self, run_id: str, data: dict[str, Any], names: Iterable[str]) -> bytes:
        """The JSON of `data` (a record or event body, changed in place) with its large
        `names` referenced. A body shorter than `THRESHOLD` (most are) is encoded once: none
        of its fields can reach the threshold, so none is looked at on its own."""
        body = dumps(data)
        if len(body) < THRESHOLD:
            return body
        return dumps(self.fields(run_id, data, names))

    def fields(self, run_id: str, data: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
        """`data` (a record or event body, changed in place) with its large `names` referenced."""
        refs: dict[str, str] = {}
        for name in names:
            value = data.get(name)
            if value is None or type(value) in (bool, int, float):
                continue
            body, digest = self.encode(run_id, value)
            if digest is None:
                data[name] = orjson.Fragment(body)  # encoded already: not again
            else:
                del data[name]
                refs[name] = digest
        if refs:
            data["refs"] = refs
        return data


EVENT_PAGE_BYTES = 8 * 1024 * 1024
"""A page of events (`Store.read_events`: a Watch's replay, a fold of the log) ends before its
bodies and the values they refer to pass this many bytes, after one event at least. A run's
events may carry far more than the run holds (each iteration of a loop records its step's
output anew): a thousand of them carrying 1 MiB each made one page a gigabyte in memory."""
EVENTS_AT_ONCE = 16
"""Events whose stored values a page reads with one statement (see `page_values`)."""


def encoded_length(text: str | bytes) -> int:
    """The bytes of `text` in UTF-8 (as stored and sent); a str all ASCII is not encoded to
    tell (`isascii` reads a flag CPython keeps)."""
    if isinstance(text, bytes) or text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


async def page_values(
    events: Sequence[tuple[int, set[str]]],
    load: Callable[[set[str]], Awaitable[dict[str, tuple[Any, int]]]],
) -> tuple[int, dict[str, Any]]:
    """How many of `events` (each its body's bytes and the digests it refers to) a page keeps,
    and the values they refer to: read in order, the values of `EVENTS_AT_ONCE` events at a
    time (`load`: digest -> value and its JSON's bytes), until the bodies and values pass
    `EVENT_PAGE_BYTES` (one event at least, each value counted once). A page reads at most the
    values of `EVENTS_AT_ONCE` events more than it keeps."""
    found: dict[str, Any] = {}
    total = kept = 0
    while kept < len(events):
        group = events[kept : kept + EVENTS_AT_ONCE]
        missing = set().union(*(digests for _, digests in group)) - found.keys()
        sizes: dict[str, int] = {}
        for digest, (value, size) in (await load(missing) if missing else {}).items():
            found[digest] = value
            sizes[digest] = size
        for size, digests in group:
            total += size + sum(sizes.pop(digest, 0) for digest in digests)
            if kept and total > EVENT_PAGE_BYTES:
                return kept, found
            kept += 1
    return kept, found


def referred(data: Mapping[str, Any]) -> set[str]:
    """The digests a decoded record or event body (and its step) refers to."""
    found: set[str] = set()
    wanted(data, found)
    return found


def wanted(data: Mapping[str, Any], into: set[str]) -> None:
    """Add the digests a decoded record or event body (and its step) refers to."""
    refs = data.get("refs")
    if refs:
        into.update(refs.values())
    step = data.get("step")
    if step is not None:
        wanted(step, into)


def resolve(data: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """`data` (changed in place) with its references (and its step's) replaced by the values."""
    refs = data.pop("refs", None)
    if refs:
        for name, digest in refs.items():
            data[name] = values.get(digest)
    step = data.get("step")
    if step is not None:
        resolve(step, values)
    return data


def records_wanted(records: Iterable[Mapping[str, Any]], into: set[str]) -> None:
    """Add the digests decoded step records and their foreach items refer to."""
    for record in records:
        wanted(record, into)
        for item in record.get("foreach_items") or ():
            wanted(item, into)


def resolve_record(record: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A decoded step record (changed in place) with its and its items' references replaced."""
    for item in record.get("foreach_items") or ():
        resolve(item, values)
    return resolve(record, values)


def column_digest(cell: Any) -> str | None:
    """The digest a run column refers to, or None for inline JSON (or NULL)."""
    return cell.decode() if isinstance(cell, bytes) else None
