"""The documented limits on what the service accepts and stores, and how sizes are measured.

Every limit is checked before anything is stored, so a stored run always fits in a
reply: the JSON limits below add up to well under the 8 MiB gRPC message limit. A
JSON value's size is the size of its `google.protobuf.Value` encoding (`json_size`),
the figure that counts against the message limit; the server measures request fields
with protobuf's own `ByteSize()`, which equals `json_size` of the decoded data.

Over a JSON limit: `PayloadTooLarge` (INVALID_ARGUMENT, reason PAYLOAD_TOO_LARGE, with
`field`, `size` and `limit` in the ErrorInfo metadata). Over an id limit: INVALID_ARGUMENT,
reason INVALID_REQUEST, with a field violation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from runservice.errors import PayloadTooLarge

KIB = 1024
MIB = 1024 * KIB

MESSAGE = 8 * MIB
"""gRPC message limit, both directions (server options); no reply is built above it."""

INPUT = 1 * MIB
"""A run's input (`input_data`)."""
INITIAL_STATE = 1 * MIB
"""A run's initial state (`initial_state`)."""
RESUME_DATA = 1 * MIB
"""The data of one Resume (`resume_data`)."""
REQUEST_CONTEXT = 64 * KIB
"""A request context (`request_context` of Start or Resume)."""
STEP_OUTPUT = 1 * MIB
"""What one step returns (its output) or suspends with; the engine fails the step above it."""
STATE = 1 * MIB
"""The run-wide state after a step changed it."""
RUN_TOTAL = 6 * MIB
"""A run's input and request context with every step's output and suspend payload and
output, together. Step payloads (inputs) are not counted: mostly the output before them
again, they would halve what a chain of steps may pass along; nor are resume data and a
foreach's items one by one. A run whose full view would pass MESSAGE (five steps passing
1 MiB each: 10 MiB) reads without its step payloads."""

ERROR_MESSAGE = 16 * KIB
"""The message of a step's error (characters): a longer one is cut, saying how much was."""
ERROR_DETAILS = 64 * KIB
"""The details of a step's error: larger ones (or ones that are not JSON data) are left out."""
RUN_ERRORS = 1 * MIB
"""The errors a run's steps and foreach items keep, together: past it, each new one keeps its
name and the first ERROR_BRIEF characters of its message only."""
ERROR_CAUSES = 4
"""Errors an error's `cause` chain keeps (`raise ... from`): the ones further down are left out."""
ERROR_CAUSE_MESSAGE = 1 * KIB
"""The message of an error's cause (characters): a longer one is cut, saying how much was."""
ERROR_BRIEF = 256
"""Characters of an error's message kept once the run's errors are past RUN_ERRORS."""

ID = 128
"""run_id, workflow_id, request_id, a step id and a resume label (characters)."""
RESOURCE_ID = 256
"""resource_id (characters): room for tenant names and e-mail addresses."""
STEP_PATH = 32
"""Step ids in one path (nesting depth of workflows)."""
PAGE_TOKEN = 512
"""A ListRuns page token (characters); the server's own tokens are under 200."""
TRACE_NAMES = 64
"""Tags, or request-context keys, in one TracingOptions."""
TRACE_NAME = 256
"""One tag or request-context key (characters)."""
TRACE_METADATA = 64 * KIB
"""TracingOptions' metadata (bytes, as sent)."""
STATUSES = 16
"""Statuses in one ListRuns filter (there are 7; repeats are harmless up to this)."""
ACTIVE_RUNS_BOUND = 2**32 - 1
"""The largest bound on one workflow's active runs (`max_active_runs=`, the server's
`--workflow-max-active-runs`): GetWorkflow and ListWorkflows carry it as a uint32, and a
larger one made them fail INTERNAL."""
GRPC_INT = 2**31 - 1
"""The largest value of a gRPC channel argument (a C int): `--max-concurrent-streams` above it
crashed the start with an OverflowError traceback."""
JSON_DEPTH = 30
"""Levels of objects and arrays within each other in any JSON value, stored or sent. Each
level of a `google.protobuf.Value` object is three messages deep, and the deepest reply
carries a value six messages down: a deeper value would be stored, but no caller's decoder
(protobuf's default recursion limit is 100) could read a reply that carries it."""


def json_size(obj: Any, _depth: int = 0) -> int:
    """The size in bytes of `obj` encoded as a `google.protobuf.Value` (as the server sends it).

    Exact for JSON data (dict with str keys, list, str, int, float, bool, None); tuples count
    as lists and other mappings as dicts. ValueError for a string UTF-8 cannot carry, and for
    objects and arrays nested more than JSON_DEPTH levels deep.
    """
    if obj is None or obj is True or obj is False:
        return 2  # tag + one-byte varint
    # Exact types first: a step's output is measured on every step, and the isinstance
    # checks against the ABCs cost more than the rest of a small value's walk.
    kind = type(obj)
    if kind is str:
        return _delimited(_utf8_size(obj))
    if kind is int or kind is float:
        return 9  # tag + fixed64
    if kind is dict or (kind is not list and isinstance(obj, Mapping)):
        _within_depth(_depth)
        body = 0
        for key, item in obj.items():
            entry = _delimited(_utf8_size(key if type(key) is str else str(key))) + _delimited(
                json_size(item, _depth + 1)
            )
            body += _delimited(entry)
        return _delimited(body)
    if kind is list or isinstance(obj, list | tuple):
        _within_depth(_depth)
        return _delimited(sum(_delimited(json_size(item, _depth + 1)) for item in obj))
    if isinstance(obj, bool):
        return 2
    if isinstance(obj, int | float):
        return 9
    if isinstance(obj, str):
        return json_size(str(obj))
    raise TypeError(f"not JSON data: {type(obj).__name__}")


def entry_size(key: str, value: Any) -> int:
    """The bytes one key and its value add to the `json_size` of the object holding them:
    an object's size is `object_size` of the sum of its entries' (so a part of it can be
    measured again alone)."""
    return _delimited(_delimited(_utf8_size(str(key))) + _delimited(json_size(value, 1)))


def object_size(entries: int) -> int:
    """The `json_size` of an object whose entries' `entry_size` add up to `entries`."""
    return _delimited(entries)


def element_size(value: Any) -> int:
    """The bytes one element adds to the `json_size` of the list holding it: a list's size
    is `object_size` of the sum of its elements' (as an object's of its entries')."""
    return _delimited(json_size(value, 1))


def _within_depth(depth: int) -> None:
    if depth >= JSON_DEPTH:
        raise ValueError(f"objects and arrays are nested more than {JSON_DEPTH} levels deep")


def _utf8_size(text: str) -> int:
    """The UTF-8 size of `text`; ValueError for text UTF-8 cannot carry (a lone surrogate, as
    `json.loads` makes of a truncated emoji's escape), which no store could encode."""
    if text.isascii():  # one byte a character; `isascii` reads a flag of the string
        return len(text)
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise ValueError(f"text {text[:40]!r} is not valid Unicode ({exc.reason})") from None


def _delimited(length: int) -> int:
    """A length-delimited field of `length` bytes: one-byte tag, varint length, the bytes."""
    return length + (2 if length < 0x80 else 1 + (length.bit_length() + 6) // 7)


def check(field: str, obj: Any, limit: int) -> int:
    """The size of `obj` (0 for None, an unset field); raises `PayloadTooLarge` naming
    `field` when it exceeds `limit`."""
    size = 0 if obj is None else json_size(obj)
    if size > limit:
        raise PayloadTooLarge(field, size, limit)
    return size


def check_step_output(path: tuple[str, ...], output: Any) -> None:
    """Raise `PayloadTooLarge` when a step's output exceeds STEP_OUTPUT.

    The engine calls this before it records a step's result, and fails the step with the
    error instead of storing the output.
    """
    check(f"steps.{'.'.join(path)}.output", output, STEP_OUTPUT)


def check_run_total(parts: Iterable[Any]) -> int:
    """The total size of a run's JSON `parts` (input, request context, state, result and
    every step record's payload, output, suspend and resume payloads); raises
    `PayloadTooLarge` (field `run`) above RUN_TOTAL."""
    total = sum(json_size(part) for part in parts if part is not None)
    if total > RUN_TOTAL:
        raise PayloadTooLarge("run", total, RUN_TOTAL)
    return total


__all__ = [
    "ERROR_BRIEF",
    "ERROR_DETAILS",
    "ERROR_MESSAGE",
    "ID",
    "INITIAL_STATE",
    "INPUT",
    "JSON_DEPTH",
    "MESSAGE",
    "PAGE_TOKEN",
    "REQUEST_CONTEXT",
    "RESOURCE_ID",
    "RESUME_DATA",
    "RUN_ERRORS",
    "RUN_TOTAL",
    "STATE",
    "STATUSES",
    "STEP_OUTPUT",
    "STEP_PATH",
    "TRACE_METADATA",
    "TRACE_NAME",
    "TRACE_NAMES",
    "check",
    "check_run_total",
    "check_step_output",
    "element_size",
    "entry_size",
    "json_size",
    "object_size",
]
