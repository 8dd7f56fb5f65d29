"""ListRuns page tokens: a keyset position bound to the filters it was issued for.

A token is the (created_at, run_id) of the last run of a page plus a digest of the
listing's filters (workflow, statuses, resource, time range). Reusing it with other
filters would silently list the wrong runs, so it is refused with INVALID_ARGUMENT. The
page size and the view may change between pages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math

from runservice import limits
from runservice.errors import FieldViolation, InvalidArgument
from runservice.storage import RunQuery


def filters_digest(query: RunQuery) -> str:
    """A short digest of the filters of `query` (not its position, limit or payloads)."""
    filters = [
        query.workflow_id,
        sorted(status.value for status in query.statuses),
        query.resource_id,
        query.from_time,
        query.to_time,
    ]
    if query.forked_from is not None:  # appended only when set: older tokens stay valid
        filters.append(query.forked_from)
    if query.definition_version is not None:  # appended: tokens issued before versions stay valid
        filters.append(query.definition_version)
    if query.resource_ids is not None:  # appended, with a marker: never equal to a version
        filters.append(["resources", *sorted(query.resource_ids)])
    canonical = json.dumps(filters, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()[:16]


def encode_token(query: RunQuery, created_at: float, run_id: str) -> str:
    """The token of the page that follows the run (`created_at`, `run_id`) in `query`."""
    raw = json.dumps([created_at, run_id, filters_digest(query)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_token(token: str, query: RunQuery) -> tuple[float, str]:
    """The position a token continues from; InvalidArgument for a token not issued for `query`."""
    try:
        created_at, run_id, digest = json.loads(base64.urlsafe_b64decode(token.encode()))
        # The digest is no signature: anyone can build a token, so its position is checked
        # as a run's would be. A string no store can compare with (a NUL, a lone surrogate)
        # failed INTERNAL, or listed nothing on one store and failed on the other (audit).
        if isinstance(created_at, bool) or not isinstance(created_at, int | float):
            raise TypeError("a run's creation time is a number")
        if not isinstance(run_id, str) or not 0 < len(run_id) <= limits.ID or "\0" in run_id:
            raise TypeError("not a run id")
        run_id.encode()  # UnicodeEncodeError (a ValueError) for a lone surrogate
        position = float(created_at), run_id
        if not math.isfinite(position[0]):
            raise ValueError("no run was created at that time")
    except (ValueError, TypeError, OverflowError, binascii.Error):  # Overflow: an integer past a float
        raise _invalid("not a token returned by ListRuns") from None
    if digest != filters_digest(query):
        raise _invalid("was issued for other filters; list again from the first page")
    return position


def _invalid(description: str) -> InvalidArgument:
    return InvalidArgument(
        f"page_token: {description}", violations=[FieldViolation("page_token", description)]
    )
