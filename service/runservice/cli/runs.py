"""Commands on runs: `start`, `resume`, `cancel`, `time-travel`, `fork`, `runs`, `show` and `delete`."""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from rich.text import Text

from runservice import errors
from runservice.cli.common import (
    EXIT_OK,
    UsageError,
    client_command,
    print_json,
    read_json,
    run_exit_code,
    run_handle,
    seconds,
    whole_number,
)
from runservice.cli.output import (
    console,
    error_line,
    jsonable,
    print_run,
    print_table,
    short_json,
    status_text,
    step_detail,
    step_label,
    step_time,
    table,
    when,
)
from runservice.cli.selection import act_on, add_filters, selected_ids, selection
from runservice.client.convert import VIEWS_LARGEST_FIRST
from runservice.model import Json, Run, RunStatus, fork_run_id, request_run_id, time_ordered_id

if TYPE_CHECKING:
    from runservice.client import Client

JSON_HELP = "inline JSON, @FILE to read a file, or - for stdin"


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], parent: argparse.ArgumentParser
) -> None:
    """Register the run commands."""
    start = commands.add_parser(
        "start",
        parents=[parent],
        help="start a run of a workflow",
        description="Start a run. Without --wait it returns once the run is accepted; with --wait, once "
        "the run has succeeded, failed, been canceled or suspended.",
    )
    start.add_argument("workflow", metavar="WORKFLOW", help="the workflow id")
    start.add_argument("--input", "-i", metavar="JSON", help=f"the run input ({JSON_HELP})")
    start.add_argument("--state", metavar="JSON", help=f"the initial run state ({JSON_HELP})")
    start.add_argument("--context", metavar="JSON", help=f"the request context, an object ({JSON_HELP})")
    start.add_argument(
        "--run-id",
        help="the run id (default: a time-ordered one; with --request-id, one derived from that key)",
    )
    start.add_argument("--resource-id", help="the resource (owner) of the run")
    start.add_argument(
        "--request-id", help="idempotency key: a retry with the same key returns the first outcome"
    )
    start.add_argument("--wait", action="store_true", help="return once the run is finished or suspended")
    start.add_argument(
        "--run-timeout",
        type=seconds,
        metavar="SECONDS",
        help="the run's deadline from now (wall clock; the workflow's own timeout, if shorter, wins)",
    )
    start.set_defaults(handler=client_command(start_run))

    resume = commands.add_parser(
        "resume",
        parents=[parent],
        help="resume a suspended run",
        description="Resume a suspended step of a run with data. --step is needed only when several "
        "steps are suspended.",
    )
    resume.add_argument("run_id", metavar="RUN", help="the run id")
    resume.add_argument("--data", "-d", metavar="JSON", help=f"the resume data ({JSON_HELP})")
    resume.add_argument(
        "--step", metavar="PATH", help="the suspended step: an id, or outer.inner when nested"
    )
    resume.add_argument("--label", help="the resume label the step registered when it suspended")
    resume.add_argument(
        "--index", type=whole_number(0, 2**31 - 1), metavar="N", help="resume only item N of a foreach step"
    )
    resume.add_argument("--context", metavar="JSON", help=f"request context entries ({JSON_HELP})")
    resume.add_argument("--request-id", help="idempotency key")
    resume.add_argument("--wait", action="store_true", help="return once the run is finished or suspended")
    resume.set_defaults(handler=client_command(resume_run))

    cancel = commands.add_parser(
        "cancel",
        parents=[parent],
        help="cancel runs",
        description="Cancel runs: their running steps are stopped; a finished run is left as it is. "
        "Name the runs, or select them with filters (runs not yet finished, unless --status says "
        "otherwise): without --yes, a selection is only listed.",
    )
    _add_targets(cancel, "cancel", _UNFINISHED)
    cancel.set_defaults(handler=client_command(cancel_run))

    for name, what in (("time-travel", "this run"), ("fork", "a new run, leaving this one untouched")):
        travel = commands.add_parser(
            name,
            parents=[parent],
            help="re-execute a finished run from a step" + (" as a new run" if name == "fork" else ""),
            description=f"Re-execute a finished, failed, canceled or suspended run from a step, into {what}: "
            "the steps before it keep their results, that step gets the new input, it and "
            "everything after run again.",
        )
        travel.add_argument("run_id", metavar="RUN", help="the run id")
        travel.add_argument(
            "--step", required=True, metavar="PATH", help="the step: an id, or outer.inner when nested"
        )
        travel.add_argument(
            "--input",
            "-i",
            metavar="JSON",
            help=f"the step's new input (default: its recorded one; {JSON_HELP})",
        )
        travel.add_argument(
            "--resume-data",
            metavar="JSON",
            help=f"run the step as resumed with this data (as `resume --data`; {JSON_HELP})",
        )
        travel.add_argument("--state", metavar="JSON", help=f"replace the run state ({JSON_HELP})")
        travel.add_argument("--context", metavar="JSON", help=f"request context entries ({JSON_HELP})")
        travel.add_argument("--request-id", help="idempotency key")
        if name == "fork":
            travel.add_argument("--new-run-id", help="the new run's id (default: generated)")
        travel.add_argument(
            "--wait", action="store_true", help="return once the run is finished or suspended"
        )
        travel.set_defaults(handler=client_command(time_travel_run if name == "time-travel" else fork_run))

    runs = commands.add_parser(
        "runs",
        parents=[parent],
        help="list runs, newest first",
        description="List runs, newest first, with filters. Prints the token of the next page when "
        "there is one (on stderr, or as next_page_token with --json).",
    )
    add_filters(runs)
    runs.add_argument("--forked-from", metavar="RUN", help="only the forks of this run")
    runs.add_argument(
        "--version", help="with --workflow: only runs that started on this version of the workflow"
    )
    runs.add_argument(
        "--limit",
        "-n",
        type=whole_number(1, 1000),
        default=0,
        help="runs per page (default 50, at most 1000)",
    )
    runs.add_argument("--page-token", default="", help="the next_page_token of a previous page")
    runs.add_argument(
        "--full", action="store_true", help="with --json: each run's input, result and request context too"
    )
    runs.set_defaults(handler=client_command(list_runs))

    show = commands.add_parser(
        "show",
        parents=[parent],
        help="show a run and its steps",
        description="Show a run: status, input, result or error, state and every step.",
    )
    show.add_argument("run_id", metavar="RUN", help="the run id")
    show.add_argument(
        "--view",
        choices=VIEWS_LARGEST_FIRST,
        help="how much of the run to read: full, without_payloads (the steps' statuses, errors and"
        " times, not their JSON) or summary; by default the largest that fits in one reply",
    )
    show.set_defaults(handler=client_command(show_run))

    delete = commands.add_parser(
        "delete",
        parents=[parent],
        help="delete finished runs",
        description="Delete runs that are not running, with their events. Name the runs, or select "
        "them with filters (finished runs, unless --status says otherwise): without --yes, a "
        "selection is only listed.",
    )
    _add_targets(delete, "delete", _FINISHED)
    delete.set_defaults(handler=client_command(delete_run))


_UNFINISHED = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING, RunStatus.SUSPENDED)
_FINISHED = (RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.CANCELED)


def _add_targets(parser: argparse.ArgumentParser, verb: str, statuses: tuple[RunStatus, ...]) -> None:
    """RUN ids, or filters and --yes (`cancel`, `delete`)."""
    parser.add_argument("run_ids", metavar="RUN", nargs="*", help="run ids")
    add_filters(parser, status_help=f" (default here: {', '.join(statuses)})")
    parser.add_argument("--yes", action="store_true", help=f"{verb} the selected runs (else only list them)")


async def _targets(
    client: Client, args: argparse.Namespace, statuses: tuple[RunStatus, ...]
) -> tuple[list[str], bool]:
    """The runs a `cancel` or `delete` is about, and whether they were selected by filters."""
    given = selection(args)
    if args.run_ids and not given.empty:
        raise UsageError("name runs or select them with filters, not both")
    if args.run_ids:
        return list(dict.fromkeys(args.run_ids)), False
    if given.empty:
        raise UsageError(
            "name a run, or select runs with --workflow, --status, --resource, --since or --before"
        )
    chosen = given if given.statuses else replace(given, statuses=tuple(s.value for s in statuses))
    return await selected_ids(client, chosen), True


def _report(run: Run, args: argparse.Namespace, *, waited: bool) -> int:
    if args.json:
        print_json(jsonable(run))
    else:
        print_run(run, console(), hint_watch=True)
    return run_exit_code(run) if waited else EXIT_OK


async def start_run(client: Client, args: argparse.Namespace) -> int:
    """`runservice start WORKFLOW`."""
    input_data = read_json(args.input, "--input")
    if args.input is None:
        input_data = await _default_input(client, args.workflow)
    state = read_json(args.state, "--state")
    context = read_json(args.context, "--context")
    run_id = waiting_on = args.run_id or ""
    if args.wait and not run_id:
        # Known here, so that a wait cut short (Ctrl-C, --timeout, a server stopping) can name
        # the run that goes on. Without a --request-id, chosen as the server would (time-ordered).
        # With one, the server derives it from the key, so that the same command run again finds
        # the same run; it is derived here the same way, not sent (a token scoped to resources
        # may not choose an id of that form).
        if args.request_id:
            waiting_on = request_run_id(args.workflow, args.request_id, args.resource_id)
        else:
            run_id = waiting_on = time_ordered_id()
    args.waiting_on = waiting_on if args.wait else None
    run = run_handle(client, run_id, workflow_id=args.workflow, resource_id=args.resource_id)
    start = run.start_async if args.wait else run.start
    done = await start(
        input_data,
        initial_state=state,
        request_context=context,
        request_id=args.request_id,
        run_timeout=args.run_timeout,
    )
    return _report(done, args, waited=args.wait)


async def _default_input(client: Client, workflow_id: str) -> Json:
    """The input of a start without `--input`: `{}` for a workflow whose input is an object
    (its fields' defaults then apply, or the server names the missing ones), else none."""
    schema = (await client.get_workflow(workflow_id).details()).input_schema
    return {} if isinstance(schema, dict) and schema.get("type") == "object" else None


async def resume_run(client: Client, args: argparse.Namespace) -> int:
    """`runservice resume RUN`."""
    data = read_json(args.data, "--data")
    context = read_json(args.context, "--context")
    run = run_handle(client, args.run_id)
    args.waiting_on = args.run_id if args.wait else None
    resume = run.resume_async if args.wait else run.resume
    done = await resume(
        data,
        step=args.step,
        label=args.label,
        for_each_index=args.index,
        request_context=context,
        request_id=args.request_id,
    )
    return _report(done, args, waited=args.wait)


async def cancel_run(client: Client, args: argparse.Namespace) -> int:
    """`runservice cancel RUN...`, or runs selected by filters."""
    run_ids, selected = await _targets(client, args, _UNFINISHED)
    if len(run_ids) == 1 and not selected:
        done = await run_handle(client, run_ids[0]).cancel()
        return _report(done, args, waited=False)

    async def cancel(run_id: str) -> str:
        return (await run_handle(client, run_id).cancel()).status.value

    return await act_on(args, run_ids, cancel, verb="cancel", dry_run=selected and not args.yes)


async def time_travel_run(client: Client, args: argparse.Namespace) -> int:
    """`runservice time-travel RUN --step STEP`."""
    args.waiting_on = args.run_id if args.wait else None
    done = await run_handle(client, args.run_id).time_travel(
        args.step,
        read_json(args.input, "--input"),
        resume_data=read_json(args.resume_data, "--resume-data"),
        initial_state=read_json(args.state, "--state"),
        request_context=read_json(args.context, "--context"),
        request_id=args.request_id,
        wait=args.wait,
    )
    return _report(done, args, waited=args.wait)


async def fork_run(client: Client, args: argparse.Namespace) -> int:
    """`runservice fork RUN --step STEP`."""
    new_run_id = waiting_on = args.new_run_id
    if args.wait and not new_run_id:  # as for start: the fork a wait cut short leaves going is named
        if args.request_id:
            waiting_on = fork_run_id(args.run_id, args.request_id)
        else:
            new_run_id = waiting_on = time_ordered_id()
    args.waiting_on = waiting_on if args.wait else None
    done = await run_handle(client, args.run_id).fork(
        args.step,
        read_json(args.input, "--input"),
        resume_data=read_json(args.resume_data, "--resume-data"),
        new_run_id=new_run_id,
        initial_state=read_json(args.state, "--state"),
        request_context=read_json(args.context, "--context"),
        request_id=args.request_id,
        wait=args.wait,
    )
    return _report(done, args, waited=args.wait)


async def list_runs(client: Client, args: argparse.Namespace) -> int:
    """`runservice runs`."""
    chosen = selection(args)
    if args.version and not chosen.workflow:  # refused here, not only by the server
        raise UsageError("--version needs --workflow: a version is one workflow's")
    runs, token = await client.get_workflow(chosen.workflow).runs(
        status=list(chosen.statuses),
        resource_id=chosen.resource,
        from_time=chosen.since,
        to_time=chosen.before,
        page_size=args.limit,
        page_token=args.page_token,
        full=args.full,
        forked_from=args.forked_from,
        version=args.version,
    )
    if args.json:
        print_json({"runs": [jsonable(run) for run in runs], "next_page_token": token})
        return EXIT_OK
    out = console()
    grid = table(
        "RUN",
        "WORKFLOW",
        "STATUS",
        "RESOURCE",
        "CREATED",
        "UPDATED",
        framed=out.is_terminal,
        keep=("STATUS",),
    )
    for run in runs:
        grid.add_row(
            Text(run.run_id),
            Text(run.workflow_id),
            status_text(run.status),
            Text(run.resource_id or ""),
            when(run.created_at),
            when(run.updated_at),
        )
    print_table(out, grid)
    if token:
        console(stderr=True).print(Text(f"more: --page-token {token}", style="dim"))
    return EXIT_OK


async def show_run(client: Client, args: argparse.Namespace) -> int:
    """`runservice show RUN`."""
    workflow = client.get_workflow("")
    if args.view is None:
        # A run over the message limit (five steps passing 1 MiB on) still shows (an audit).
        run, view = await workflow.largest_view(args.run_id, include_state=True)
        if view != "full":
            told = "without its steps' JSON" if view == "without_payloads" else "as a summary"
            note = f"runservice: the run is too large for one reply: shown {told} (--view)"
            console(stderr=True).print(Text(note, style="dim"))
    else:
        view = args.view
        run = await workflow.run_execution_result(args.run_id, include_state=True, view=view)
    if args.json:
        print_json(jsonable(run))
        return EXIT_OK
    out = console()
    payloads = view == "full"  # else left out, not null
    print_run(run, out, not_resumable=await _why_not_resumable(client, run), payloads=payloads)
    facts = [
        ("resource", run.resource_id or ""),
        ("version", f"{run.definition_version} ({run.definition_digest or 'no digest recorded'})"),
        ("created", when(run.created_at)),
        ("started", when(run.started_at)),
        ("ended", when(run.ended_at)),
        ("deadline", when(run.deadline)),
        ("input", short_json(run.input, 2000) if run.input is not None else ""),
        ("state", short_json(run.state, 2000) if run.state not in (None, {}) else ""),
        ("events", str(run.last_sequence)),
        ("forked from", run.forked_from or ""),
        ("time travels", str(run.travel.count) if run.travel and run.travel.count else ""),
        ("schedule", f"{run.schedule_id} (tick {when(run.schedule_tick)})" if run.schedule_id else ""),
    ]
    for name, value in facts:
        if value:
            out.print(Text(f"{name}: {value}"))
    if run.steps:
        now = time.time()
        grid = table(
            "STEP",
            "STATUS",
            "ATTEMPT",
            "STARTED",
            "TIME",
            "DETAIL",
            framed=out.is_terminal,
            keep=("STATUS", "TIME"),
        )
        for step in run.steps:
            grid.add_row(
                Text(step_label(step)),
                status_text(step.status),
                str(step.attempt + 1) if step.attempt else "",
                when(step.started_at),
                step_time(step, now),
                Text(step_detail(step, 100, payloads=payloads) or error_line(step.error)),
            )
        print_table(out, grid)
    return EXIT_OK


async def _why_not_resumable(client: Client, run: Run) -> str | None:
    """Why the server would refuse to resume a suspended `run`, as its engine decides
    (engine/versions.py: the version it started on not served, or served with another step
    graph), or None: `show` suggested a `resume` that could only fail (an audit). One
    GetWorkflow, for a suspended run only; when it fails, the suggestion stays."""
    if run.status is not RunStatus.SUSPENDED:
        return None
    try:
        served = (await client.get_workflow(run.workflow_id).details()).versions
    except errors.WorkflowNotFound:
        return f"workflow {run.workflow_id!r} is not served (WORKFLOW_VERSION_UNAVAILABLE)"
    except errors.ServiceError:
        return None
    digest = next((digest for version, digest in served if version == run.definition_version), None)
    if digest is None:
        listed = ", ".join(version for version, _ in served)
        return (
            f"version {run.definition_version!r}, which it started on, is not served (served: {listed});"
            " serve it again to continue the run (WORKFLOW_VERSION_UNAVAILABLE)"
        )
    if run.definition_digest and run.definition_digest != digest:
        return (
            f"version {run.definition_version!r} is served with another step graph than the run started on;"
            " serve the original definition to continue it (WORKFLOW_DEFINITION_CHANGED)"
        )
    return None


async def delete_run(client: Client, args: argparse.Namespace) -> int:
    """`runservice delete RUN...`, or runs selected by filters."""
    run_ids, selected = await _targets(client, args, _FINISHED)
    workflow = client.get_workflow("")
    if len(run_ids) == 1 and not selected:
        await workflow.delete_run_by_id(run_ids[0])
        if args.json:
            print_json({"run_id": run_ids[0], "deleted": True})
        else:
            console().print(Text(f"deleted run {run_ids[0]}"))
        return EXIT_OK

    async def delete(run_id: str) -> str:
        await workflow.delete_run_by_id(run_id)
        return "deleted"

    return await act_on(args, run_ids, delete, verb="delete", dry_run=selected and not args.yes)
