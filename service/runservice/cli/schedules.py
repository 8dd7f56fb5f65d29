"""`runservice schedules list|get|pause|resume|trigger`: the server's cron schedules."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from rich.text import Text

from runservice.cli.common import EXIT_OK, client_command, print_json
from runservice.cli.output import console, jsonable, print_table, short_json, table, when

if TYPE_CHECKING:
    from runservice.client import Client, ScheduleInfo


OVERDUE = 60.0
"""Seconds past its due time after which a schedule's tick that has not fired is shown as
overdue: a served schedule fires within a claim interval, so one this late is fired by no
server (its workflow is retired from every server, or none is running)."""


def _state(schedule: ScheduleInfo) -> Text:
    """paused, active, or overdue: a schedule no server fires would otherwise read active for ever."""
    if schedule.paused:
        return Text("paused", style="yellow")
    if schedule.next_tick is not None and time.time() - schedule.next_tick > OVERDUE:
        return Text("overdue", style="red")
    return Text("active", style="green")


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], parent: argparse.ArgumentParser
) -> None:
    """Register `schedules` and its subcommands."""
    group = commands.add_parser(
        "schedules",
        help="list, pause, resume and trigger cron schedules",
        description="The cron schedules of a server (declared by its workflows and its configuration).",
    )
    sub = group.add_subparsers(dest="schedules_command", metavar="SUBCOMMAND", required=True)
    listing = sub.add_parser("list", parents=[parent], help="list the schedules")
    listing.add_argument("--workflow", default="", help="only the schedules of this workflow")
    listing.set_defaults(handler=client_command(list_schedules))
    for name, body, text in (
        ("get", show_schedule, "show one schedule"),
        ("pause", pause_schedule, "pause a schedule: no tick fires until resume"),
        ("resume", resume_schedule, "resume a schedule from its next tick after now"),
    ):
        command = sub.add_parser(
            name, parents=[parent], help=text, description=text[0].upper() + text[1:] + "."
        )
        command.add_argument("schedule_id", metavar="SCHEDULE", help="the schedule id")
        command.set_defaults(handler=client_command(body))
    trigger = sub.add_parser(
        "trigger",
        parents=[parent],
        help="fire a schedule now",
        description="Fire a schedule now, outside its cadence, under its overlap policy.",
    )
    trigger.add_argument("schedule_id", metavar="SCHEDULE", help="the schedule id")
    trigger.add_argument(
        "--request-id",
        metavar="ID",
        help="idempotency key: the same command with it again returns the first outcome (default: fresh)",
    )
    trigger.set_defaults(handler=client_command(trigger_schedule))


async def list_schedules(client: Client, args: argparse.Namespace) -> int:
    """`runservice schedules list`."""
    schedules = await client.schedules.list(args.workflow)
    if args.json:
        print_json({"schedules": [jsonable(s) for s in schedules]})
        return EXIT_OK
    out = console()
    grid = table(
        "SCHEDULE",
        "WORKFLOW",
        "CRON",
        "ZONE",
        "STATE",
        "NEXT",
        "LAST RUN",
        framed=out.is_terminal,
        keep=("CRON",),
    )
    for s in schedules:
        grid.add_row(
            Text(s.schedule_id, style="bold"),
            Text(s.workflow_id),
            Text(s.cron),
            Text(s.timezone),
            _state(s),
            when(s.next_tick, s.timezone) if not s.paused else "",
            Text(s.last_run_id or ""),
        )
    print_table(out, grid)
    return EXIT_OK


def _print(schedule: ScheduleInfo) -> None:
    out = console()
    state = _state(schedule)
    out.print(Text(f"{schedule.schedule_id}: {state.plain}", style="bold"))
    if state.plain == "overdue":
        out.print(
            Text(
                f"no server fired its tick: is workflow {schedule.workflow_id!r} served? (the servers"
                " that do not serve it log a warning)",
                style="red",
            )
        )
    facts = [
        ("workflow", schedule.workflow_id),
        ("cron", f"{schedule.cron} ({schedule.timezone})"),
        ("overlap", schedule.overlap),
        ("missed", schedule.missed),
        ("next tick", when(schedule.next_tick, schedule.timezone) if not schedule.paused else ""),
        ("last tick", when(schedule.last_tick, schedule.timezone)),
        ("pending tick", when(schedule.pending_tick, schedule.timezone)),
        ("last run", schedule.last_run_id or ""),
        ("resource", schedule.resource_id or ""),
        ("input", short_json(schedule.input, 2000) if schedule.input is not None else ""),
        ("description", schedule.description),
    ]
    for name, value in facts:
        if value:
            out.print(Text(f"{name}: {value}"))


async def show_schedule(client: Client, args: argparse.Namespace) -> int:
    """`runservice schedules get SCHEDULE`."""
    schedule = await client.schedules.get(args.schedule_id)
    if args.json:
        print_json(jsonable(schedule))
    else:
        _print(schedule)
    return EXIT_OK


async def pause_schedule(client: Client, args: argparse.Namespace) -> int:
    """`runservice schedules pause SCHEDULE`."""
    schedule = await client.schedules.pause(args.schedule_id)
    if args.json:
        print_json(jsonable(schedule))
    else:
        _print(schedule)
    return EXIT_OK


async def resume_schedule(client: Client, args: argparse.Namespace) -> int:
    """`runservice schedules resume SCHEDULE`."""
    schedule = await client.schedules.resume(args.schedule_id)
    if args.json:
        print_json(jsonable(schedule))
    else:
        _print(schedule)
    return EXIT_OK


async def trigger_schedule(client: Client, args: argparse.Namespace) -> int:
    """`runservice schedules trigger SCHEDULE`."""
    result = await client.schedules.trigger(args.schedule_id, request_id=args.request_id)
    if args.json:
        print_json(jsonable(result))
        return EXIT_OK
    out = console()
    # By the outcome, not by the run: a retried trigger whose run was deleted since reports
    # it started, without the run.
    if result.outcome == "started" and result.run is not None:
        out.print(Text(f"{result.schedule.schedule_id}: started run {result.run.run_id}"))
    elif result.outcome == "started":
        tick = when(result.tick, result.schedule.timezone)
        out.print(Text(f"{result.schedule.schedule_id}: started a run at {tick} (the run was deleted since)"))
    else:
        # Said of the trigger's time: a retry with its --request-id returns this first outcome
        # as it was, and "is still active" read as now for a run that had ended since (audit).
        out.print(
            Text(
                f"{result.schedule.schedule_id}: {result.outcome} (overlap {result.schedule.overlap}; "
                f"run {result.active_run_id} was active when triggered)"
            )
        )
    return EXIT_OK
