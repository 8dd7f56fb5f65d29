"""Cron schedules: `Schedule(id=..., cron=..., timezone=..., input_data=...)`.

A workflow declares its schedules at authoring time (`create_workflow(..., schedules=[...])`
or `.schedule(...)`); the server's configuration can declare more. Each is checked when it
is made: a cron expression croniter cannot parse or a time zone zoneinfo does not know is a
`WorkflowDefinitionError` while the module (or the configuration) loads, never at the first tick.

Cron expressions have 5 fields (minute hour day month weekday), or 6 with a trailing
seconds field (`* * * * * */5`: every five seconds; `*/5 * * * * *` would be every second
of every fifth minute). An expression that never matches a date (`0 0 30 2 *`) is refused
as well. Ticks are computed in the schedule's time zone, so `0 9 * * *` in `Europe/Paris`
fires at 09:00 Paris time across DST changes: a local time the spring change skips fires
once, at the first time after it; a local time the autumn change repeats fires once, at
its first occurrence, as cron does, unless the hour field is `*` or a step over every hour
(`0 * * * *`, `*/2`): those fire at every real hour.

Policies (see the README):

- `missed` (ticks that fell while no replica was running): `skip` (the default) fires nothing
  for the past and waits for the next tick; `run_once` fires one run for the most recent
  missed tick, then goes on with the cadence.
- `overlap` (a tick comes while a run of the same schedule is still active, that is pending,
  running, waiting or suspended): `skip` (the default) starts nothing for that tick; `allow`
  starts it anyway; `buffer_one` keeps one tick pending and starts it when the active run
  ends (further ticks meanwhile are skipped).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import zoneinfo
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

from runservice.errors import WorkflowDefinitionError
from runservice.model import Json
from runservice.workflow.step import check_id


class Overlap(StrEnum):
    """What a tick does while a run of its schedule is still active."""

    SKIP = "skip"
    ALLOW = "allow"
    BUFFER_ONE = "buffer_one"


class Missed(StrEnum):
    """What happens to ticks that fell while no replica was running."""

    SKIP = "skip"
    RUN_ONCE = "run_once"


@dataclass(frozen=True, slots=True)
class Schedule:
    """A cron schedule of one workflow (`workflow_id` is filled in by the workflow that declares it)."""

    id: str
    cron: str
    timezone: str = "UTC"
    input_data: Json = None
    overlap: Overlap | str = Overlap.SKIP
    missed: Missed | str = Missed.SKIP
    resource_id: str | None = None
    """The resource id of the runs it starts (tenant scoping applies to them and to the schedule)."""
    workflow_id: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        check_id("schedule", self.id)
        what = f"schedule {self.id!r}"
        object.__setattr__(self, "cron", " ".join(str(self.cron).split()))
        object.__setattr__(self, "timezone", str(self.timezone))
        check_cron(self.cron, what)
        zone(self.timezone, what)
        if self.timezone in _HOST_ZONES:
            # Ticks are computed by every replica and named by their time: a zone that is
            # each host's own would have replicas on differently set hosts fire apart.
            raise WorkflowDefinitionError(
                f"{what}: time zone {self.timezone!r} is each host's own; name it (for example 'UTC'"
                " or 'Europe/Paris'), so that every replica computes the same ticks"
            )
        try:
            object.__setattr__(self, "overlap", Overlap(self.overlap))
        except ValueError:
            raise WorkflowDefinitionError(
                f"{what}: overlap must be one of {', '.join(Overlap)}, not {self.overlap!r}"
            ) from None
        try:
            object.__setattr__(self, "missed", Missed(self.missed))
        except ValueError:
            raise WorkflowDefinitionError(
                f"{what}: missed must be one of {', '.join(Missed)}, not {self.missed!r}"
            ) from None

    def for_workflow(self, workflow_id: str) -> Schedule:
        """This schedule bound to `workflow_id`."""
        if self.workflow_id and self.workflow_id != workflow_id:
            raise WorkflowDefinitionError(
                f"schedule {self.id!r} names workflow {self.workflow_id!r} but is declared on {workflow_id!r}"
            )
        return Schedule(
            id=self.id,
            cron=self.cron,
            timezone=self.timezone,
            input_data=self.input_data,
            overlap=self.overlap,
            missed=self.missed,
            resource_id=self.resource_id,
            workflow_id=workflow_id,
            description=self.description,
        )

    def next_after(self, when: float) -> float:
        """The first tick strictly after `when` (seconds since the epoch)."""
        return next_tick(self.cron, self.timezone, when)

    def last_at_or_before(self, when: float) -> float:
        """The latest tick at or before `when`."""
        return previous_tick(self.cron, self.timezone, when)


_RANDOM = re.compile(r"[Rr](?:$|[(/])")
"""croniter's random field (`R`, `R(10-20)`, `R/5`); not a month or day name (`MAR`, `FRI`)."""
_HOST_ZONES = frozenset({"localtime", "posixrules"})
"""Zone names zoneinfo resolves to each host's own setting (/etc/localtime)."""


def check_cron(expression: str, what: str = "schedule") -> None:
    """WorkflowDefinitionError unless croniter accepts `expression` (5 fields, or 6 with seconds)."""
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise WorkflowDefinitionError(
            f"{what}: cron expression {expression!r} must have 5 fields (minute hour day month weekday)"
            " or 6 (the same and seconds)"
        )
    if any(_RANDOM.match(part) for field in fields for part in field.split(",")):
        # croniter draws `R` anew at every parse: each look at the schedule (every replica,
        # every turn) would compute other ticks, and a tick is named by its time.
        raise WorkflowDefinitionError(
            f"{what}: cron expression {expression!r} has a random field (R): its ticks would differ"
            " at each look and on each replica; name the minute or hour"
        )
    try:
        ticks = croniter(expression, dt.datetime(2000, 1, 1, tzinfo=dt.UTC), second_at_beginning=False)
        valid = croniter.is_valid(expression)
    except (CroniterError, CroniterBadCronError, ValueError, KeyError) as exc:
        raise WorkflowDefinitionError(f"{what}: invalid cron expression {expression!r}: {exc}") from None
    if not valid:
        raise WorkflowDefinitionError(f"{what}: invalid cron expression {expression!r}")
    # Parsed is not enough: a date that does not exist (February 30) parses, and the first
    # tick would then fail at every boot. croniter searches years ahead and gives up.
    try:
        ticks.get_next(float)
    except CroniterBadDateError:
        raise WorkflowDefinitionError(
            f"{what}: cron expression {expression!r} never matches a date"
        ) from None


def zone(name: str, what: str = "schedule") -> zoneinfo.ZoneInfo:
    """The time zone called `name` (IANA, for example `Europe/Paris`), or WorkflowDefinitionError."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise WorkflowDefinitionError(
            f"{what}: unknown time zone {name!r} (use an IANA name such as 'UTC' or 'Europe/Paris')"
        ) from None


def next_tick(cron: str, timezone: str, when: float) -> float:
    """The first tick of `cron` in `timezone` strictly after `when`."""
    start = dt.datetime.fromtimestamp(when, zone(timezone))
    ticks = croniter(cron, start)
    while True:
        value: Any = ticks.get_next(float)
        if not _repeated(cron, float(value), start):
            return float(value)


def previous_tick(cron: str, timezone: str, when: float) -> float:
    """The latest tick of `cron` in `timezone` at or before `when`."""
    # croniter's get_prev is strictly before its start: start just after `when`, on the
    # next whole second (cron has one-second resolution at best).
    start = dt.datetime.fromtimestamp(math.floor(when) + 1, zone(timezone))
    ticks = croniter(cron, start)
    while True:
        value: Any = ticks.get_prev(float)
        if not _repeated(cron, float(value), start):
            return float(value)


def count_ticks(cron: str, timezone: str, first: float, before: float, limit: int) -> int:
    """How many ticks of `cron` in `timezone` fall from the tick `first` to before `before`,
    counted up to `limit` (a figure for a log line: counting a day of an every-second cron one
    by one would hold the event loop for seconds)."""
    start = dt.datetime.fromtimestamp(first, zone(timezone))
    ticks = croniter(cron, start)
    count = 1
    while count < limit:
        value = float(ticks.get_next(float))
        if value >= before:
            break
        if not _repeated(cron, value, start):
            count += 1
    return count


def _repeated(cron: str, tick: float, start: dt.datetime) -> bool:
    """Whether `tick` is the second occurrence of a local time the autumn DST change repeats,
    for a cron that names its hours: croniter returns both occurrences, and a daily job would
    run twice that day. A cron whose hour field is `*` or a step over every hour (`*/2`) means
    every real hour, so both occurrences stay ticks (as cron runs its wildcard jobs)."""
    if cron.split()[1].startswith("*"):
        return False
    local = dt.datetime.fromtimestamp(tick, start.tzinfo)
    return local.fold == 1 and local.replace(fold=0).timestamp() != tick


__all__ = ["Missed", "Overlap", "Schedule", "check_cron", "count_ticks", "next_tick", "previous_tick", "zone"]
