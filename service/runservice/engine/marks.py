"""Request marks: how a retried request is told from another one that reuses its request id.

A `request_id` is an idempotency key: a retry with it gets the first outcome instead of a
second run. A request with the same id and other parameters is not a retry: answering it with
the first run would tell the caller that what it sent ran, when a run with another input,
state, context or deadline did. Production idempotency keys refuse it (Stripe's idempotency
keys, AWS's client tokens): here RequestIdReused, naming the field that differs.

So the mark a request leaves (a `requests` row, written in the commit that makes the run) is
its request id followed by a digest of each field that makes it the request it is, in the
order of its form's `fields` (`START`, `FORK`); a Start's:

    order-7#start:<input_data: 32 hex>.<initial_state: 16>.<request_context: 16>.<timeout: 16>

A later request with the id repeats it when its own mark is stored (the usual retry: one
lookup and a string compare), and is RequestIdReused naming the first field whose digest
differs otherwise. One digest per field rather than one of the whole request, so that the
error can name the field: the bytes hashed are the same either way (each field's once), and a
field left out costs a lookup (`_LEFT_OUT`).

Earlier versions left marks that record a prefix of a form's fields (`MarkForm.older`, and the
plain id). They are still read and compared on what they recorded only, so a retry that comes
just after an upgrade is still one. The other way round, a version that does not know a form
never takes its marks for its own request id's (see `START`).

A Resume or a TimeTravel is recorded twice, in the same commit (`MarkForm.beside`, see
`RESUME`): its plain request id, which earlier versions look up exactly, and its mark, under a
kind of its own.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import orjson

from runservice.errors import RequestIdReused

_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
"""Equal values dump to equal bytes whatever their keys' order, in every process and replica."""
_DIGEST = re.compile(r"[0-9a-f]+")
_SEPARATOR = "."


class Mark(NamedTuple):
    """The mark a request leaves: `text` is stored (the `requests` row's request id). A tuple:
    one is made on every Start with a request id."""

    request_id: str
    text: str


@dataclass(frozen=True)
class MarkForm:
    """How one kind of request marks itself (its `requests` rows have that `kind`): its `tag`
    after the request id, then a digest of each of `fields` (the names RequestIdReused gives),
    `sizes[i]` bytes each."""

    kind: str
    tag: str
    fields: tuple[str, ...]
    sizes: tuple[int, ...]
    older: tuple[str, ...] = ()
    """Tags of forms earlier versions wrote: each recorded a prefix of `fields` (as many as it
    has digests), compared on those. A mark that is the request id alone recorded none."""
    beside: str | None = None
    """The kind of a row with the plain request id that every mark of this form has beside it
    (written in the same commit): the one earlier versions look up. None: the mark is the
    request's only row."""
    added: int = 0
    """How many of the last `fields` were added to the request after its form's first version.
    A mark leaves out the digests of those at its end that are unset (None), so the mark of a
    request that sets none is the one earlier versions wrote and read; and a mark of this tag
    without them was made by a request that did not set them (earlier versions had no such
    field), so they compare as unset. Not a prefix: a retry that sets one where the first did
    not is RequestIdReused naming it."""

    def mark(self, request_id: str, values: Sequence[object]) -> Mark:
        """The mark of a request with `request_id` whose `fields` have `values` (as sent)."""
        if len(values) != len(self.fields):
            raise ValueError(f"{self.tag} marks digest {len(self.fields)} fields, not {len(values)}")
        kept = len(values)
        while kept > len(values) - self.added and values[kept - 1] is None:
            kept -= 1
        digests = map(_digest, values[:kept], self.sizes)
        return Mark(request_id, request_id + self.tag + _SEPARATOR.join(digests))

    def rows(self, mark: Mark) -> tuple[tuple[str, str], ...]:
        """The `requests` rows (`RunWrite.requests`) the commit of a request that leaves `mark`
        records: the mark, and the plain request id beside it when the form keeps one."""
        if self.beside is None:
            return ((self.kind, mark.text),)
        return (self.beside, mark.request_id), (self.kind, mark.text)

    def repeats(self, run_id: str, mark: Mark, seen: Collection[str]) -> bool:
        """Whether the request that leaves `mark` repeats one whose mark the run recorded
        (`seen`): True for a mark of its request id with the same digest of each field that
        mark recorded, RequestIdReused naming the first field that differs, False when none
        is of the id."""
        if mark.text in seen:
            return True  # the usual retry: the same form, the same fields
        ours = self._digests(mark.text, mark.request_id) or []
        for stored in seen:
            recorded = self._digests(stored, mark.request_id)
            if recorded is None:
                continue  # another request id's
            # An older form records fewer fields: only those are compared. A newer one may
            # record more (fields added later): only the ones this version knows are.
            for field, theirs, mine in zip(self.fields, recorded, ours, strict=False):
                if theirs != mine:
                    raise RequestIdReused(run_id, mark.request_id, field)
            return True
        return False

    def _digests(self, text: str, request_id: str) -> list[str] | None:
        """The digests the mark `text` recorded (none for the plain request id), or None when
        it is not a mark of `request_id` in this form or an older one."""
        if not text.startswith(request_id):
            return None
        rest = text[len(request_id) :]
        if not rest:
            return []  # the plain request id, written before marks had digests
        for tag in (self.tag, *self.older):
            if rest.startswith(tag):
                digests = rest[len(tag) :].split(_SEPARATOR)
                # Strictly digests, each of its field's length: a request id that merely starts
                # with this one is another's (`k#input:00ff` is a caller's id, not a mark of `k`).
                if len(digests) <= len(self.sizes) and all(
                    len(digest) == 2 * size and _DIGEST.fullmatch(digest)
                    for digest, size in zip(digests, self.sizes, strict=False)
                ):
                    return self._with_unset_added(digests) if tag == self.tag else digests
        return None

    def _with_unset_added(self, digests: list[str]) -> list[str]:
        """The digests of a mark of this form's own tag with those of the `added` fields it
        left out (unset) filled in."""
        missing = len(self.fields) - len(digests)
        if not 0 < missing <= self.added:
            return digests
        return digests + [_digest(None, size) for size in self.sizes[len(digests) :]]


def _digest(value: object, size: int) -> str:
    body = orjson.dumps(value, option=_CANONICAL, default=repr)
    return _LEFT_OUT.get((body, size)) or hashlib.blake2b(body, digest_size=size).hexdigest()


_LEFT_OUT = {
    (body, size): hashlib.blake2b(body, digest_size=size).hexdigest()
    for body in (b"null", b"{}")
    for size in (8, 16)
}
"""The digests of what most requests send for the fields they leave out, made once: hashing
costs about 0.4 us a field, and a Start with a request id but no state, context or timeout
(most of them) would spend a third of its mark's time on those three."""


START = MarkForm(
    "start",
    "#start:",
    # What the run is made of, as the caller sent it: not as validated, since a schema's
    # generated defaults (a uuid, the time) differ at each validation and a retry must still
    # be one. The engine passes an unset `initial_state` and `request_context` as {}, which
    # they mean. `timeout` is StartRequest's name for the engine's `run_timeout` (seconds): a
    # retry with another one would have been answered with the first run's deadline.
    ("input_data", "initial_state", "request_context", "timeout"),
    # The input's digest as long as in the `#input:` form, so that the two compare; the
    # others need only tell a reuse from a retry.
    (16, 8, 8, 8),
    # From commit e9c4c95 on, `<id>#input:<input_data: 32 hex>`. The new form has a tag of its
    # own: those versions take any `<id>#input:...` other than their own mark for a reuse with
    # other input, so that, had the digests followed `#input:`, a retry of a Start a newer
    # replica took that lands on them (a rolling upgrade, a rollback) would be refused as
    # REQUEST_ID_REUSED. A `#start:` mark is none of theirs: they answer RUN_ALREADY_STARTED
    # (the run exists and goes on), as they do for any mark they do not know (README).
    older=("#input:",),
)
"""A Start's mark. The engine also checks `workflow_id` and `resource_id` against the run
(RUN_ID_IN_USE, RUN_ID_OF_ANOTHER_RESOURCE), and `run_id` is the run that holds the mark. Not
compared, so a retry may change them: `wait` and `include_state`, which say how to answer, not
what to run (a caller may start without waiting, then retry with `wait` to learn the outcome);
the trace id (`tracing_options`, or the call's `traceparent`), which is each attempt's own (a
retried RPC's instrumentation may give it a new one) and changes what is observed of the run,
not what runs."""


FORK = MarkForm(
    "fork",
    "#fork:",
    # What the fork is made of, as sent: the original run (a fork's id is derived from it and
    # the request id, but a caller may name the fork's id itself), the step it starts from
    # (as sent: a retry sends the same path in the same form), the step's input (`[]` when
    # unset, the recorded input, and `[input]` when sent, so that no input sent digests as
    # unset), the state (unset, the original's state, differs from `{}`: digested as sent)
    # and the request context entries (unset merges none: passed as `{}`).
    ("run_id", "step", "input_data", "initial_state", "request_context", "resume_data"),
    (8, 8, 8, 8, 8, 8),
    # Earlier versions marked a fork with the plain request id only: read as recording nothing.
    # `resume_data` (unset: null) came later: left out while unset (see `MarkForm.added`).
    added=1,
)
"""A ForkRun's mark, on the fork. Not compared, as for `START`: `wait` and the trace id
(`tracing_options`); `new_run_id` is the run that holds the mark; `workflow_id` is checked
against the original run."""


# A Resume's and a TimeTravel's mark was the plain request id (kinds "resume" and
# "time-travel"), and earlier versions look that row up exactly (`Store.has_request`) to tell a
# retry. A run resumed or time travelled by a newer version must still have it: an older replica
# that met another form (a rolling upgrade, a rollback) would find no row, take a retry for a new
# request and resume or time travel the run a second time (a time travel settles the run again,
# so a second one is accepted). A Start or fork cannot happen twice, which is why theirs could
# change form. So the digests go in a row of their own kind beside the plain one: older versions
# never read it, and a run's delete removes both (every row of the run's in `requests` but a
# delete's own).

RESUME = MarkForm(
    "resume-mark",
    "#resume:",
    # What the resume is, as sent: the resume data (unset is null), the step as a path (a
    # dotted id is split before it gets here), the label, the foreach item (unset is null),
    # and the request context entries (unset merges none: passed as `{}`).
    ("resume_data", "step", "label", "for_each_index", "request_context"),
    (8, 8, 8, 8, 8),
    beside="resume",
)
"""A Resume's mark, on the run. Not compared: `wait` and `include_state`, which say how to answer,
and the trace (`tracing_options`, `traceparent`), each attempt's own; `workflow_id` is checked
against the run."""


RESUME_BEGAN = "resume-began"
"""The kind of the `requests` row a Resume with a request id also leaves: `<request id>#<the
sequence of its WORKFLOW_START>`. A retried Stream of the resume follows from there, not from
where the run is by then (it began mid-run, or with only the end: audit). Older versions never
read it; a run's delete removes it with the others."""


def began_row(request_id: str, sequence: int, kind: str = RESUME_BEGAN) -> tuple[str, str]:
    """The `RESUME_BEGAN` row (or one of another `kind`: `TIME_TRAVEL_BEGAN`) of a request with
    `request_id` whose execution begins at `sequence`."""
    return kind, f"{request_id}#{sequence}"


def began_at(rows: Collection[str], request_id: str) -> int | None:
    """The sequence a `RESUME_BEGAN` row of `request_id` recorded, or None (none, or left by a
    version before these rows)."""
    for row in rows:
        recorded, _, sequence = row.rpartition("#")
        if recorded == request_id and sequence.isdigit():
            return int(sequence)
    return None


TIME_TRAVEL = MarkForm(
    "time-travel-mark",
    "#time-travel:",
    # As `FORK`'s, less the run (the mark is on it): the step, its input (`[]` unset: the
    # recorded input; `[input]` sent), the state (unset, the run's own, differs from `{}`)
    # and the request context entries.
    ("step", "input_data", "initial_state", "request_context", "resume_data"),
    (8, 8, 8, 8, 8),
    beside="time-travel",
    # `resume_data` (unset: null) came later: left out while unset, so the marks of those
    # requests are as before.
    added=1,
)
"""A TimeTravel's mark, on the run. Not compared: `wait` and the trace (`tracing_options`);
`workflow_id` is checked against the run."""


TIME_TRAVEL_BEGAN = "time-travel-began"
"""The kind of the `requests` row a TimeTravel with a request id also leaves: `<request id>#<the
sequence of its TIME_TRAVEL event>`, as `RESUME_BEGAN` for a Resume: a retried Stream of the time
travel follows from there (`began_row`, `began_at`)."""
