"""`runservice watch RUN`: follow a run's steps until it ends, across suspends and resumes.

On a terminal: a live `rich` table of the steps and their statuses, redrawn as events
arrive (running steps' times keep counting). Piped: one line per event, flushed at once.
With `--json`: one JSON object per event per line. It reconnects by itself from the last
event seen if the stream breaks, and ends when the run is terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from runservice.cli.common import client_command, print_json, run_exit_code, seconds_or_never, whole_number
from runservice.cli.output import (
    clock,
    console,
    error_line,
    jsonable,
    resume_hint,
    short_json,
    status_text,
    step_detail,
    step_label,
    step_time,
    table,
)
from runservice.model import (
    Event,
    EventType,
    Json,
    Run,
    RunStatus,
    StepPath,
    StepProgress,
    StepRecord,
    StepStatus,
)

if TYPE_CHECKING:
    from runservice.client import Client

REFRESHES_PER_SECOND = 4
"""Redraws of the live display per second while no event arrives (running times tick)."""

_KIND = {
    EventType.WORKFLOW_START: "start",
    EventType.STEP_START: "step-start",
    EventType.STEP_RESULT: "step-result",
    EventType.STEP_SUSPENDED: "step-suspended",
    EventType.STEP_WAITING: "step-waiting",
    EventType.STEP_OUTPUT: "step-output",
    EventType.STEP_PROGRESS: "step-progress",
    EventType.WORKFLOW_CANCELED: "canceled",
    EventType.WORKFLOW_FINISH: "finish",
    EventType.TIME_TRAVEL: "time-travel",
}


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], parent: argparse.ArgumentParser
) -> None:
    """Register `watch`."""
    watch = commands.add_parser(
        "watch",
        parents=[parent],
        help="follow a run's steps live until it ends",
        description="Follow a run until it succeeds, fails or is canceled, across suspends and resumes: "
        "a live table of its steps on a terminal, one line per event when piped, one JSON object per "
        "event with --json. Exits 0 when the run succeeded, 3 when it failed or was canceled.",
    )
    watch.add_argument("run_id", metavar="RUN", help="the run id")
    watch.add_argument(
        "--after",
        type=whole_number(0, 2**63 - 1),  # Watch's after_sequence is an int64
        metavar="N",
        help="only events after sequence N (default: every event when piped or with --json; "
        "the live display starts from the run as it is now)",
    )
    watch.add_argument(
        "--give-up-after",
        type=seconds_or_never,
        default=GIVE_UP_AFTER,
        metavar="SECONDS",
        help=f"exit 1 after this long with no answer from the server (heartbeats count; each reconnect "
        f"is told on stderr meanwhile); 0: never (default {GIVE_UP_AFTER:g})",
    )
    watch.set_defaults(handler=client_command(watch_run))


GIVE_UP_AFTER = 300.0
"""Seconds `runservice watch` goes on reconnecting to a server that does not answer (a quiet
watch of a suspended run still hears a heartbeat every 15 s)."""


@dataclass(frozen=True)
class RunView:
    """A run as its events have shown it so far; a new view per event (the display thread reads it)."""

    run_id: str
    workflow_id: str
    status: RunStatus
    steps: Mapping[StepPath, StepRecord] = field(default_factory=dict)
    progress: Mapping[StepPath, StepProgress] = field(default_factory=dict)
    chunks: Mapping[StepPath, Json] = field(default_factory=dict)
    """The last chunk each step wrote with its writer."""
    suspended: tuple[StepPath, ...] = ()
    sequence: int = 0
    result: Json = None
    error: str = ""

    @classmethod
    def of(cls, run: Run) -> RunView:
        return cls(
            run_id=run.run_id,
            workflow_id=run.workflow_id,
            status=run.status,
            steps={step.path: step for step in run.steps},
            suspended=run.suspended,
            sequence=run.last_sequence,
            result=run.result,
            error=error_line(run.error),
        )

    def apply(self, event: Event) -> RunView:
        """The view after `event`."""
        changes: dict[str, object] = {"status": event.run_status, "sequence": event.sequence}
        step = event.step
        if event.type is EventType.STEP_PROGRESS:
            # The progress event's record is a stub; the foreach record itself stays.
            if step is not None and event.progress is not None:
                changes["progress"] = {**self.progress, step.path: event.progress}
        elif step is not None:
            changes["steps"] = {**self.steps, step.path: step}
            if event.type is EventType.STEP_OUTPUT:
                changes["chunks"] = {**self.chunks, step.path: event.data}
        if event.type is EventType.STEP_SUSPENDED and step is not None:
            changes["suspended"] = (*self.suspended, step.path)
        elif event.type is EventType.STEP_START and step is not None and step.path in self.suspended:
            changes["suspended"] = tuple(path for path in self.suspended if path != step.path)
        if event.type is EventType.WORKFLOW_FINISH:
            changes["result"] = event.data if event.run_status is RunStatus.SUCCESS else None
            changes["error"] = error_line(event.error)
        if event.run_status is not RunStatus.SUSPENDED:
            changes.setdefault("suspended", ())
        return replace(self, **changes)  # type: ignore[arg-type]

    def __rich__(self) -> Group:
        now = time.time()
        grid: Table = table("STEP", "STATUS", "TIME", "DETAIL", framed=True, keep=("STATUS", "TIME"))
        for step in sorted(self.steps.values(), key=lambda s: s.position or 1 << 30):
            detail = step_detail(step)
            progress = self.progress.get(step.path)
            if progress is not None and step.status is StepStatus.RUNNING:
                detail = f"{progress.completed_count}/{progress.total_count} items done"
            elif step.path in self.chunks and step.status is StepStatus.RUNNING:
                detail = short_json(self.chunks[step.path], 60)
            grid.add_row(Text(step_label(step)), status_text(step.status), step_time(step, now), Text(detail))
        head = Text.assemble(
            (self.workflow_id, "bold"), "  run ", (self.run_id, "bold"), "  ", status_text(self.status)
        )
        return Group(head, grid, *self._footer())

    def _footer(self) -> list[Text]:
        if self.status is RunStatus.SUCCESS:
            return [Text(f"result: {short_json(self.result, 400)}", style="green")]
        if self.error:
            return [Text(f"error: {self.error}", style="red")]
        if self.status is RunStatus.CANCELED:
            return [Text("canceled", style="red")]
        if self.status is RunStatus.SUSPENDED:
            run = Run(self.run_id, self.workflow_id, self.status, 0.0, 0.0, suspended=self.suspended)
            return [Text(f"waiting to be resumed: {line}", style="magenta") for line in resume_hint(run)]
        return [Text(f"event {self.sequence}", style="dim")]


def event_line(event: Event) -> str:
    """One event as a line: sequence, time, kind, step, status and what it carried."""
    step = step_label(event.step) if event.step is not None else ""
    status = str(event.run_status)
    detail = ""
    if event.type is EventType.STEP_OUTPUT:
        detail = short_json(event.data, 120)
        status = str(event.step.status) if event.step else status
    elif event.type is EventType.STEP_PROGRESS and event.progress is not None:
        p = event.progress
        detail = f"{p.completed_count}/{p.total_count} done (item {p.current_index} {p.iteration_status})"
        status = str(event.run_status)
    elif event.type is EventType.WORKFLOW_START and event.cause is not None:
        detail = event.cause.value
    elif event.type is EventType.WORKFLOW_FINISH:
        if event.run_status is RunStatus.SUCCESS:
            detail = f"result={short_json(event.data, 200)}"
        elif event.error is not None:
            detail = error_line(event.error)
    elif event.step is not None:
        status = str(event.step.status)
        if event.type is not EventType.STEP_START:
            detail = step_detail(event.step, 120)
    line = f"{event.sequence:>4} {clock(event.time)} {_KIND[event.type]:<14} {step:<20} {status:<9} {detail}"
    return line.rstrip()


async def watch_run(client: Client, args: argparse.Namespace) -> int:
    """`runservice watch RUN`."""
    # Ask for the run first: an unknown run or an unreachable server fails at once here,
    # where the Watch stream would keep reconnecting.
    # As large as fits: a run over the message limit (five steps passing 1 MiB on) is watched
    # too, its earlier steps without their JSON (an audit: it failed at once).
    run, _ = await client.get_workflow("").largest_view(args.run_id)
    live = not args.json and sys.stdout.isatty()
    with _telling_reconnects():
        if live:
            await _live(client, run, args)
        else:
            await _print_events(client, run, args)
    # The stream ends only once the run is terminal; its final status gives the exit code.
    final = await client.get_workflow("").run_execution_result(args.run_id, view="summary")
    return run_exit_code(final)


@contextlib.contextmanager
def _telling_reconnects() -> Iterator[None]:
    """The client's reconnect lines (INFO, otherwise unseen) on stderr while the watch runs:
    someone watching a run whose server went away sees why nothing comes."""
    log = logging.getLogger("runservice.client")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("runservice: watch: %(message)s"))
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def _give_up(args: argparse.Namespace) -> float | None:
    return args.give_up_after or None  # 0: never


async def _print_events(client: Client, run: Run, args: argparse.Namespace) -> None:
    async for event in client.follow(run.run_id, args.after or 0, give_up_after=_give_up(args)):
        if args.json:
            print_json(jsonable(event), indent=None)
        else:
            print(event_line(event), flush=True)


async def _live(client: Client, run: Run, args: argparse.Namespace) -> None:
    view = RunView.of(run)
    after = run.last_sequence if args.after is None else args.after
    out = console()
    with Live(view, console=out, refresh_per_second=REFRESHES_PER_SECOND, transient=False) as live:
        async for event in client.follow(run.run_id, after, give_up_after=_give_up(args)):
            view = view.apply(event)
            live.update(view, refresh=True)
