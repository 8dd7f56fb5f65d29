"""Which runs a command is about: the filters `runs` lists by, and `cancel` and `delete` act on.

`runs` prints a page; `cancel` and `delete` given filters instead of run ids first list every
run that matches (all pages, then act, so a run the action changes is never met twice) and,
without `--yes`, only say what they would do. They act a few runs at a time and report each
run that failed, so one refusal does not stop the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text

from runservice import errors
from runservice.cli.common import EXIT_CALL, EXIT_OK, UsageError, error_json, print_json, status_code
from runservice.cli.output import console
from runservice.config import parse_duration
from runservice.model import RunStatus

if TYPE_CHECKING:
    from runservice.client import Client

PAGE = 1000
"""Runs listed per ListRuns call when selecting (the server's largest page)."""
AT_ONCE = 8
"""Calls in flight while acting on a selection."""


@dataclass(frozen=True, slots=True)
class Selection:
    """The filters of a command line; empty fields select everything."""

    workflow: str
    statuses: tuple[str, ...]
    resource: str | None
    since: float | None
    before: float | None

    @property
    def empty(self) -> bool:
        """No filter given (an epoch time given to --since is one)."""
        return (
            not (self.workflow or self.statuses or self.resource)
            and self.since is None
            and self.before is None
        )


def add_filters(parser: argparse.ArgumentParser, *, status_help: str = "") -> None:
    """--workflow, --status, --resource, --since and --before."""
    parser.add_argument("--workflow", "-w", help="only runs of this workflow")
    parser.add_argument(
        "--status",
        "-s",
        action="append",
        metavar="STATUS",
        help=f"only runs with this status (repeat or separate with commas): {', '.join(RunStatus)}"
        + status_help,
    )
    parser.add_argument("--resource", help="only runs of this resource id")
    parser.add_argument(
        "--since",
        metavar="WHEN",
        help="only runs created at or after WHEN: an age (90s, 30m, 12h, 7d) or an ISO 8601 time"
        " (2026-11-27T09:00:00Z; without an offset, local time)",
    )
    parser.add_argument("--before", metavar="WHEN", help="only runs created before WHEN (as --since)")


def selection(args: argparse.Namespace) -> Selection:
    """The filters given on the command line (UsageError for a bad one)."""
    statuses = [part.strip() for given in args.status or () for part in given.split(",") if part.strip()]
    unknown = [s for s in statuses if s not in {known.value for known in RunStatus}]
    if unknown:
        raise UsageError(f"--status: {', '.join(unknown)} is not one of {', '.join(RunStatus)}")
    now = time.time()
    return Selection(
        workflow=args.workflow or "",
        statuses=tuple(statuses),
        resource=args.resource,
        since=None if args.since is None else _moment(args.since, "--since", now),
        before=None if args.before is None else _moment(args.before, "--before", now),
    )


def _moment(text: str, flag: str, now: float) -> float:
    """POSIX seconds of `--since`/`--before`: an age before `now`, or an ISO 8601 time."""
    try:
        age = parse_duration(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(age) or age < 0:
            raise UsageError(f"{flag}: {text!r} is not an age of at least 0 seconds")
        return now - age
    try:
        return dt.datetime.fromisoformat(text.strip()).timestamp()
    except (ValueError, OverflowError, OSError):
        raise UsageError(
            f"{flag}: {text!r} is neither an age (90s, 30m, 12h, 7d) nor an ISO 8601 time"
            " (2026-11-27T09:00:00Z)"
        ) from None


async def selected_ids(client: Client, chosen: Selection) -> list[str]:
    """Every run that matches, newest first (all pages)."""
    workflow = client.get_workflow(chosen.workflow)
    found: list[str] = []
    token = ""
    while True:
        runs, token = await workflow.runs(
            status=list(chosen.statuses),
            resource_id=chosen.resource,
            from_time=chosen.since,
            to_time=chosen.before,
            page_size=PAGE,
            page_token=token,
        )
        found.extend(run.run_id for run in runs)
        if not token:
            return found


async def act_on(
    args: argparse.Namespace,
    run_ids: Sequence[str],
    action: Callable[[str], Awaitable[str]],
    *,
    verb: str,
    dry_run: bool,
) -> int:
    """Apply `action` (which returns what became of the run) to every run, AT_ONCE at a time,
    and report: one line per failure on stderr, a count on stdout (or it all with --json).
    With `dry_run`, only say what would be done. EXIT_CALL if any failed."""
    if dry_run:
        if args.json:
            print_json({"dry_run": True, "run_ids": list(run_ids)})
        else:
            out = console()
            for run_id in run_ids:
                out.print(Text(run_id))
            console(stderr=True).print(Text(f"would {verb} {len(run_ids)} runs; add --yes to {verb} them"))
        return EXIT_OK
    gate = asyncio.Semaphore(AT_ONCE)
    outcomes: dict[str, str | errors.ServiceError] = {}

    async def one(run_id: str) -> None:
        async with gate:
            try:
                outcomes[run_id] = await action(run_id)
            except errors.ServiceError as exc:
                outcomes[run_id] = exc

    async with asyncio.TaskGroup() as group:
        for run_id in run_ids:
            group.create_task(one(run_id))
    failed = {run_id: o for run_id, o in outcomes.items() if isinstance(o, errors.ServiceError)}
    if args.json:
        print_json(
            {
                "runs": [
                    {"run_id": run_id, "error": error_json(o)}
                    if isinstance(o, errors.ServiceError)
                    else {"run_id": run_id, "outcome": o}
                    for run_id in run_ids
                    for o in (outcomes[run_id],)
                ],
                "done": len(run_ids) - len(failed),
                "failed": len(failed),
            }
        )
    else:
        err = console(stderr=True)
        for run_id, exc in failed.items():
            err.print(Text(f"runservice: error: {run_id}: {status_code(exc)} {exc.reason}: {exc.message}"))
        console().print(Text(f"{verb}: {len(run_ids) - len(failed)} of {len(run_ids)} runs"))
    return EXIT_CALL if failed else EXIT_OK
