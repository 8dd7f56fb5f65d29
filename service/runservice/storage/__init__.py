"""Storage: the `Store` protocol, its write/query types, and `open_store(url)`.

A store keeps runs, step records and each run's append-only event log. Every
`RunWrite` is atomic: its run update, step upserts, events (given gap-free
sequences) and idempotency key commit together or not at all, and subscribers
hear of its events only after the commit.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from runservice.model import Event, EventDraft, ForeachItem, Run, RunStatus, StepPath, StepRecord
from runservice.storage.hub import EventHub, Subscription

RUN_PATCH_FIELDS = frozenset(
    {
        "status",  # RunStatus
        "input",  # Json
        "state",  # Json
        "request_context",  # dict[str, Json]
        "result",  # Json
        "error",  # RunError | None
        "suspended",  # tuple[StepPath, ...]
        "resume_labels",  # Mapping[str, ResumeLabel]
        "started_at",  # float | None
        "ended_at",  # float | None
        "wake_at",  # float | None
        "trace_id",  # str
        "cancel_requested",  # bool
        "travel",  # Travel | None
        "deadline",  # float | None
        "definition_version",  # str
        "definition_digest",  # str
    }
)


Definition = tuple[str, str, str]
"""(workflow id, version, step-graph digest) of a served workflow definition."""


@dataclass(frozen=True, slots=True)
class Lease:
    """One replica's ownership of an active run.

    `epoch` grows with every claim of the run, so a replica that lost the run (its lease
    expired and another replica claimed it) is told apart from the new owner: every
    commit of the run's progress is fenced by the lease it was made under.
    """

    owner: str
    epoch: int


@dataclass(frozen=True, slots=True)
class Claim:
    """Take ownership of a run that has no live owner, for `seconds` (renewed by heartbeats).
    A claim of no seconds (`passing`) has ended by the time anyone reads it: it leaves the run
    to the claim loops."""

    owner: str
    seconds: float

    @property
    def passing(self) -> bool:
        """Whether the claim leaves the run to the claim loops (see `RunWrite`'s `queued_at`)."""
        return self.seconds <= 0


@dataclass(frozen=True, slots=True)
class BoundedClaim:
    """What `Store.claim_bounded` took: `claimed` (run id, lease) of each, and `held_back`:
    runs of the workflow are due but its bound left no room for them."""

    claimed: list[tuple[str, Lease]]
    held_back: bool


@dataclass(frozen=True, slots=True)
class Renewal:
    """What `Store.renew_leases` found: `owned`, the runs still the owner's, each with its
    `cancel_requested` flag; and `held`, those of them whose lease it could not extend now,
    as another session holds their row (an operator's open transaction, another replica's
    commit in flight). A held run is not lost: its owner asks again at its next renewal."""

    owned: dict[str, bool]
    held: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RunWrite:
    """One atomic change to one run.

    - `create`: insert this new run; not applied if the run id exists.
    - `expect`: apply only if the run exists and its status is one of these.
    - `expect_read` (not for `create`): `(created_at, last_sequence)` of the run as read;
      apply only if it is still that run with nothing logged since: a change planned from what
      was read, while another replica changed the run and brought it back to the same status,
      or deleted it and made a new one under its id. A last sequence of None: the same run,
      whatever it logged since (a driven run's, whose log grows).
    - `patch`: run fields to set (keys from RUN_PATCH_FIELDS); `updated_at` is always set.
    - `steps`: step records to upsert, keyed by path. A record's `foreach_items` are
      stored as item rows (upserted, like `items`), never inside the step's own row.
    - `events`: appended with the next sequences of the run, in order.
    - `requests`: `(kind, request_id)` rows remembered for idempotency, in the change's commit
      (each ignored if already there): a request's mark, or the rows of a request that leaves
      more than one (engine/marks.py). Empty for most writes.
    - `drop_steps`: step records to remove, by path, with their foreach items (before `steps`
      are upserted).
    - `delete`: remove the run with its steps, events and requests; its own `requests` (a
      delete's mark: one at most) are then remembered, so a retried delete finds it once the
      run is gone. Every read finds the run gone from its commit on; a run with many rows has
      them removed afterwards, in chunks off the writer, and its id can be taken again once
      they are (a create waits for them: storage/removal.py).
    - `fence`: apply only while this lease owns the run (progress of a driven run).
    - `claim`: the run must have no live owner; the writer becomes its owner (epoch + 1).
    - `release`: the run has no owner afterwards (it settled: suspended or finished).
      A change that leaves an execution to the claim loops sets the run's `queued_at` (the
      claim order, oldest first): every `create`, a `passing` claim (a Resume or TimeTravel
      without room), and a change with no claim that makes the run active (a Start of a run
      created ahead). A run that waits keeps its place through other changes.
    - `items`: foreach item states to upsert, keyed by (step path, item index): an item's
      progress is one small row, however many items its step has.
    - `clear_items`: steps whose stored items are deleted first (a foreach that starts over).
    """

    run_id: str
    create: Run | None = None
    expect: frozenset[RunStatus] | None = None
    expect_read: tuple[float, int | None] | None = None
    patch: Mapping[str, Any] = field(default_factory=dict)
    steps: Sequence[StepRecord] = ()
    events: Sequence[EventDraft] = ()
    requests: tuple[tuple[str, str], ...] = ()
    delete: bool = False
    fence: Lease | None = None
    claim: Claim | None = None
    release: bool = False
    drop_steps: Sequence[StepPath] = ()
    items: Sequence[tuple[StepPath, ForeachItem]] = ()
    clear_items: Sequence[StepPath] = ()


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Outcome of a RunWrite.

    `applied` is False when `create` found the id taken, `expect` did not match, the
    `fence` no longer owns the run, or a `claim` found a live owner; `status` is then the
    status found (None when the run does not exist).
    `events` are the events as written, with their sequences and times.
    `epoch` is the run's lease epoch after a `claim` (0 otherwise).
    `created_at` is the run's, when the change applied (None otherwise): it tells which run of
    its id the events are of, as a deleted run's id can be taken by a new run.
    """

    applied: bool
    status: RunStatus | None
    events: tuple[Event, ...] = ()
    epoch: int = 0
    created_at: float | None = None

    @property
    def last_sequence(self) -> int:
        return self.events[-1].sequence if self.events else 0


class Due(NamedTuple):
    """A run the retention sweep found due, as found: it deletes the run only if it is still
    that run, unchanged (`RunWrite.expect_read`)."""

    run_id: str
    created_at: float
    last_sequence: int


@dataclass(frozen=True, slots=True)
class RunQuery:
    """Filters and page position for listing runs, newest first."""

    workflow_id: str | None = None
    statuses: frozenset[RunStatus] = frozenset()
    resource_id: str | None = None
    from_time: float | None = None
    to_time: float | None = None
    limit: int = 50
    after: tuple[float, str] | None = None
    """(created_at, run_id) of the last run of the previous page."""
    payloads: bool = True
    """Load input, result, state and request context; False leaves them None (summaries)."""
    forked_from: str | None = None
    """Only the forks of this run (ForkRun)."""
    definition_version: str | None = None
    """Only runs that started on this workflow version (used with `workflow_id`)."""
    resource_ids: frozenset[str] | None = None
    """Only runs of one of these resources (a token bound to several); None: any."""


class Store(Protocol):
    """Durable runs, step records and event logs."""

    hub: EventHub
    """Live fan-out of committed events."""

    exclusive: bool
    """True when one process has the database to itself (SQLite's lock file): leases are
    claimed for good and voided when the next process opens it."""

    async def open(self) -> None:
        """Create or migrate the schema and start the writer."""

    async def close(self) -> None:
        """Flush pending writes and release every resource. Safe to call twice."""

    async def write(self, change: RunWrite, *, durable: bool = True) -> WriteResult:
        """Commit one change; returns once it is durable (survives a power loss). With
        `durable=False` (internal progress nobody is told about) it may return once it is
        committed, safe against a process crash; a later `sync` covers it."""

    def submit(self, change: RunWrite, *, durable: bool = True) -> asyncio.Future[WriteResult]:
        """`write`, as the future it waits for: the change is committed whatever becomes of
        the caller, who can still learn its result after being cancelled."""

    async def sync(self, upto: int | None = None) -> None:
        """Return once every commit made so far (or up to commit number `upto`) is durable.

        Before a caller is told anything that rests on progress written with
        `durable=False`, something must cover it: a durable write, this, or a read (reads
        make sure of it themselves)."""

    async def get_run(self, run_id: str, *, steps: bool = False) -> Run | None:
        """The run, with its step records when `steps` is true; None if unknown."""

    async def list_runs(self, query: RunQuery) -> list[Run]:
        """Runs matching `query`, newest first (created_at, then run_id, descending)."""

    async def read_events(self, run_id: str, after: int, limit: int = 1000) -> list[Event]:
        """Events with sequence > `after`, in order, at most `limit`."""

    async def created_at(self, run_id: str) -> float | None:
        """When the run now under `run_id` was created; None if there is none. A deleted
        run's id can be taken again by a new run: this tells them apart, cheaply."""

    async def has_request(self, run_id: str, kind: str, request_id: str) -> bool:
        """True if a write with this `(kind, request_id)` was committed for the run."""

    async def request_ids(self, run_id: str, kind: str, prefix: str = "") -> list[str]:
        """Every request id a committed write of this `kind` left for the run, of those that
        begin with `prefix`: a run resumed 10,000 times holds as many rows of a kind, and a
        caller looks for one request's."""

    async def take_over(self, name: str, owner: str) -> int | None:
        """Hold the replica name `name` for as long as this store is open, and end the leases
        of the runs earlier processes of that name own (`owner`s starting with `name/`), so
        the claim loop takes them at once; returns how many. None, and nothing ended, while
        another live process holds the name. A store of one process (SQLite) voids every
        lease when it opens anyway: 0."""

    async def settled_before(self, cutoff: float, limit: int) -> list[Due]:
        """At most `limit` runs that succeeded, failed or were canceled before `cutoff` (their
        `ended_at`), in no particular order: what the retention sweep deletes."""

    async def unstarted_before(self, cutoff: float, limit: int) -> list[Due]:
        """At most `limit` runs reserved (CreateRun) before `cutoff` and still not started, in
        no particular order: what the retention sweep deletes besides."""

    async def forget_deletes(self, cutoff: float, limit: int) -> int:
        """Remove at most `limit` of the request marks deletes left before `cutoff` (a
        DeleteRun's `request_id`, kept so that a retry of it succeeds); returns how many."""

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
        """Take up to `limit` active runs (running or waiting) of these workflows that have
        no live owner: none, or a lease that expired (by the database's clock; with
        `unowned_only` no run with an owner, live or not, is taken), oldest first; and
        suspended runs whose deadline passed (the claimer ends them) or whose `wake_at`
        passed (a nested workflow suspended in it timed out: the claimer drives the run so
        that it fails). With `definitions`, only runs whose (workflow id, definition version,
        definition digest) is one of them: a run of a version this replica does not serve is
        left for one that does. Never the runs in `exclude` (those the claimer drives already:
        a lapsed lease of its own is renewed, not claimed again). With `overdue`, only the runs
        past their own `deadline` (by the database's clock), active or suspended: what a claimer
        ends without a drive, so it takes them whatever its room. Returns (run id, lease) of
        each."""

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
        """`claim_runs` for one workflow whose runs all servers sharing the database drive at
        most `bound` of at once: up to `limit`, and no more than `bound` minus its `running`
        runs that have a live owner and minus its woken runs waiting for room (those
        `wake_bounded` found none for: they go first), counted and claimed under a lock of
        the workflow held until the claims commit, so that servers claiming at once share the
        bound. `freed`: a drive of the workflow ended or began a sleep at the claimer since
        its last claim; if woken runs wait and there is room, their servers are told at the
        commit (`listen_room`), as nothing else would wake them."""

    async def wake_bounded(self, run_id: str, lease: Lease, workflow_id: str, bound: int) -> bool:
        """Make the sleeping run `run_id` (`waiting`, driven under `lease`) `running` again if
        its workflow, whose runs all servers sharing the database drive at most `bound` of at
        once, has room: fewer than `bound` runs that are `running` with a live owner or are
        woken runs waiting for room ahead of this one (by `wake_at`, then run id), counted
        under the lock `claim_bounded` takes. When it has none, the run is marked as waiting
        for room under `lease`, so that claims leave it the workflow's room; False. The row
        changes only while `lease` holds the run; a lost lease is for the drive's next commit
        to find. A mark lasts while the run is `waiting` under that lease (a claim by another
        owner voids it), until `unmark_woken`."""

    async def unmark_woken(self, runs: Collection[tuple[str, Lease]]) -> None:
        """Clear the marks `wake_bounded` set on these woken runs (run id, the lease it was
        given), each only while that lease still holds the run: their owner cannot drive them
        now (too full, or shutting down), so the workflow's room they held goes to the other
        servers' runs. The servers of the workflows' other woken runs are told (`listen_room`),
        as a run ahead of theirs no longer holds the room."""

    def listen_room(self, callback: Callable[[str], None]) -> None:
        """Call `callback(workflow_id)` when a claim (`claim_bounded` with `freed`), in this
        process or another, found room of the workflow that woken runs waiting for room
        hold, or marks of it were cleared (`unmark_woken`); at most once per call, and not at
        all while a database connection is down."""

    def unlisten_room(self, callback: Callable[[str], None]) -> None:
        """Stop calling `callback` (given to `listen_room`)."""

    async def renew_leases(self, owner: str, seconds: float, run_ids: Collection[str]) -> Renewal:
        """Extend by `seconds` the leases `owner` holds on `run_ids` (the runs it drives: a
        run it owns but does not drive is left to expire, and the claim loops take it over);
        returns those it still owns, each with its `cancel_requested` flag (a Cancel that
        reached another replica), and those of them whose row another session holds, left as
        they are rather than waited for (`Renewal`): one held row must not keep the owner
        from renewing its other runs until their leases run out."""

    async def count_runs(self, statuses: frozenset[RunStatus]) -> dict[RunStatus, int]:
        """How many runs have each of `statuses` (every one of them is a key), for metrics gauges."""

    async def count_unowned(self) -> int:
        """How many active runs have no live owner: left for want of room, or owned by a
        replica whose leases ran out, until a claim loop takes them (a metrics gauge)."""

    async def count_unowned_by_definition(self) -> dict[Definition, int]:
        """`count_unowned`, by the (workflow id, version, digest) the runs recorded: those of a
        definition no server serves wait for one that does (engine/leases.py warns of them)."""

    # -- cron schedules (storage/schedules.py has the types) ---------------------------------

    async def clock(self) -> float:
        """The database's time, in seconds since the epoch: the same for every replica sharing
        it, whatever each replica's own clock says (PostgreSQL's `clock_timestamp()`; SQLite's
        one server's own clock). Schedules keep time by it (engine/schedules.py)."""

    async def upsert_schedules(
        self,
        schedules: Sequence[ScheduleDefinition],
        *,
        prune: Sequence[str] = (),
        lapsed_before: float | None = None,
    ) -> list[str]:
        """Store the declared schedules: a new one as given; a known one takes the declared
        definition fields, keeps its paused state, and keeps its next tick unless its cron or
        time zone changed, and its buffered tick only while its overlap is still `buffer_one`
        (a tick kept under it would still start under a policy that keeps none). Each is marked
        declared now (`declared_at`). Schedules of the workflows in `prune` that are not among
        `schedules` are deleted (their fired ticks stay recorded): all of them when
        `lapsed_before` is None, else only those last declared before it (a row never marked,
        NULL, counts as declared now: an older replica may declare it). Returns the ids deleted."""

    async def refresh_schedules(
        self,
        declared: Sequence[StoredSchedule],
        *,
        prune: Sequence[str],
        lapsed_before: float,
        booted: float,
    ) -> tuple[list[str], list[str]]:
        """In one transaction: mark the `declared` schedules declared now; re-create, as given,
        those of them the database lacks (another replica deleted them); delete the schedules of
        the workflows in `prune` that are not among `declared` and were last declared before
        `lapsed_before` (a row never marked counts as declared at `booted`). Returns (the ids
        re-created, the ids deleted)."""

    async def list_schedules(self) -> list[StoredSchedule]:
        """Every stored schedule, by id."""

    async def get_schedule(self, schedule_id: str) -> StoredSchedule | None:
        """The schedule, or None."""

    async def set_schedule_paused(
        self, schedule_id: str, paused: bool, next_tick: float | None
    ) -> StoredSchedule | None:
        """Pause or resume a schedule; resuming sets its next tick to `next_tick` (the ticks
        that fell while it was paused are not fired). Pausing drops the tick `buffer_one` kept,
        a tick from before the pause: resumed, the schedule fires from the next tick after now,
        not that one (it fired at once, however old). None if unknown."""

    async def fire_tick(self, fire: TickFire) -> TickResult:
        """Claim one tick of a schedule and, if the overlap policy lets it, create its run,
        in ONE transaction (see `TickFire`): a tick fires once, whoever tries."""

    async def schedule_origins(self, run_ids: Sequence[str]) -> dict[str, tuple[str, float]]:
        """(schedule id, tick time) of each of these runs that a schedule started."""

    async def trigger_request(
        self, schedule_id: str, request_id: str, legacy_key: str | None = None
    ) -> TriggerRecord | None:
        """The first outcome of the schedule's trigger with this request id (see
        `TickFire.request`), or None. With `legacy_key`, also the record a version before
        `schedule_triggers` left under that key (`storage.schedules.LEGACY_TRIGGER_KIND`)."""

    async def forget_schedule_history(self, cutoff: float, limit: int) -> int:
        """Remove at most `limit` records of schedule history made before `cutoff` whose run is
        gone or that started none: trigger outcomes (a retry after it fires again) and ticks.
        Those of a run still stored stay: a retry of its trigger finds its run from the record
        (its id is derived from the request id), and GetRun names the run's schedule from its
        tick. How many."""


from runservice.storage.schedules import (  # noqa: E402 (they use RunWrite and WriteResult above)
    ScheduleDefinition,
    StoredSchedule,
    TickFire,
    TickResult,
    TriggerRecord,
)

PRIVATE_DIRECTORY = 0o700
"""The mode of a directory the store (or the server) creates: its owner's alone."""

PRIVATE_FILE = 0o600
"""The mode of a file the store (or the server) creates: its owner's alone."""


def create_private(path: str) -> None:
    """Create `path` as an empty file only its owner may read or write, unless something is
    there already (left as it is). An empty file is a new database to SQLite, and the `-wal`,
    `-shm` and journal files SQLite makes beside a database take the database file's mode."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE)
    except FileExistsError:
        return
    os.close(fd)


def sqlite_path(url: str) -> str | None:
    """The file of an SQLite database URL, or of a plain path; None for any other URL.

    The URL's form is SQLAlchemy's: `sqlite:///relative/file.db` (three slashes: relative to
    the working directory) and `sqlite:////absolute/file.db` (four). Raises ValueError for
    `sqlite://name` (a host, which SQLite has none of: it made a directory `sqlite:`)."""
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///")
    if url.startswith("sqlite:"):
        raise ValueError(
            f"{url!r} is not an SQLite URL: sqlite:///relative/file.db or sqlite:////absolute/file.db"
        )
    if "://" not in url:
        return url
    return None


_POSTGRESQL_FORM = "postgresql://user:password@host:port/database"


def check_database_url(url: str) -> None:
    """ValueError unless `open_store` takes `url`: an SQLite URL or path, or a PostgreSQL URL
    whose host and port parse. The message shows the URL without its secrets. Checked with the
    settings, so that a bad URL is a configuration error naming the setting (exit 2), not
    `cannot serve: invalid literal for int()` once the server starts (an audit)."""
    if url.startswith(_POSTGRESQL_SCHEMES):
        try:
            _ = urlsplit(url).port  # ValueError: brackets that do not close, a port not 0-65535
        except ValueError as exc:
            raise ValueError(
                f"{redact_url(url)!r} is not a PostgreSQL URL ({str(exc).lower()}): {_POSTGRESQL_FORM}"
            ) from None
        return
    try:
        path = sqlite_path(url)
    except ValueError:
        raise ValueError(
            f"{redact_url(url)!r} is not an SQLite URL: sqlite:///relative/file.db or sqlite:////absolute/file.db"
        ) from None
    if path is None:
        raise ValueError(
            f"{redact_url(url)!r} is not a database URL runservice takes: use sqlite:////absolute/file.db"
            f" or {_POSTGRESQL_FORM}"
        )


_POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")


def open_store(url: str, *, durability: str = "full") -> Store:
    """The store for a database URL: `sqlite:///relative.db`, `sqlite:////absolute.db` (or a plain path), or
    `postgresql://user:password@host:port/database` (also `postgres://`).

    `durability` (SQLite): `full` syncs before anything is told (the rule), `normal` never
    syncs (a power loss may lose replies and events already delivered). PostgreSQL
    always keeps the rule."""
    if url.startswith(_POSTGRESQL_SCHEMES):
        from runservice.storage.postgres import PostgresStore

        return PostgresStore(url)
    path = sqlite_path(url)
    if path is not None:
        from runservice.storage.sqlite import SqliteStore

        return SqliteStore(path, durability=durability)
    raise ValueError(
        f"unsupported database URL {redact_url(url)!r}: use sqlite:////absolute/file.db or"
        " postgresql://host/database"
    )


_SECRET_PARAMETERS = frozenset({"password", "passfile", "sslpassword"})
"""Query parameters of a PostgreSQL URL that hold a secret (libpq's, which asyncpg reads)."""


def describe_database(url: str) -> str:
    """What a log line says the server uses: the SQLite file's absolute path (a relative one
    is resolved from the working directory, which a reader of the log cannot see), else the
    URL without its secrets."""
    try:
        path = sqlite_path(url)
    except ValueError:
        path = None
    if path is None:
        return redact_url(url)
    return f"SQLite file {Path(path).expanduser().absolute()}"


def redact_url(url: str) -> str:
    """`url` with its secrets replaced by `***`, for logs and error messages: the password of
    `user:password@` and the password query parameters (`?password=...`); of any scheme, and of
    a URL that does not parse too (a bracket that does not close)."""
    try:
        parts = urlsplit(url)
        _ = parts.password
    except ValueError:
        return _redact_unparsed(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    secret_query = any(key.lower() in _SECRET_PARAMETERS for key, _ in pairs)
    if parts.password is None and not secret_query:
        return url  # as given: urlunsplit would also rewrite `sqlite:///x.db` as `sqlite:/x.db`
    if parts.password is not None:
        host = parts.netloc.rsplit("@", 1)[1]
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}")
    if secret_query:
        hidden = [(key, "***" if key.lower() in _SECRET_PARAMETERS else value) for key, value in pairs]
        parts = parts._replace(query=urlencode(hidden, safe="*"))
    return urlunsplit(parts)


_USERINFO_PASSWORD = re.compile(r"(//[^/?#@:]*:)[^/?#]*@")
_QUERY_SECRET = re.compile(r"([?&](?:" + "|".join(sorted(_SECRET_PARAMETERS)) + r")=)[^&#]*", re.IGNORECASE)


def _redact_unparsed(url: str) -> str:
    """`redact_url` for a URL urlsplit refuses: the same secrets, found by their shape."""
    return _QUERY_SECRET.sub(r"\1***", _USERINFO_PASSWORD.sub(r"\1***@", url))


__all__ = [
    "RUN_PATCH_FIELDS",
    "BoundedClaim",
    "Claim",
    "Definition",
    "Due",
    "EventHub",
    "Lease",
    "Renewal",
    "RunQuery",
    "RunWrite",
    "ScheduleDefinition",
    "Store",
    "StoredSchedule",
    "Subscription",
    "TickFire",
    "TickResult",
    "TriggerRecord",
    "WriteResult",
    "check_database_url",
    "open_store",
    "redact_url",
]
