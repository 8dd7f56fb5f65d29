"""`runservice workflows` and `runservice graph WORKFLOW`: what a server runs."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from rich.text import Text

from runservice.cli import mermaid
from runservice.cli.common import EXIT_OK, client_command, print_json
from runservice.cli.output import console, jsonable, print_table, schema_summary, table

if TYPE_CHECKING:
    from runservice.client import Client
    from runservice.client.convert import WorkflowInfo
    from runservice.model import Json


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], parent: argparse.ArgumentParser
) -> None:
    """Register `workflows` and `graph`."""
    listing = commands.add_parser(
        "workflows",
        parents=[parent],
        help="list the workflows a server runs",
        description="List the workflows a server runs: id, steps, input and description, and each "
        "one's max_active_runs when some workflow has one.",
    )
    listing.set_defaults(handler=client_command(list_workflows))

    graph = commands.add_parser(
        "graph",
        parents=[parent],
        help="draw a workflow's step graph as a Mermaid flowchart",
        description="Print a workflow's step graph as a Mermaid flowchart (paste it into any Mermaid "
        "viewer, or a ```mermaid block on GitHub).",
    )
    graph.add_argument("workflow", metavar="WORKFLOW", help="the workflow id")
    graph.set_defaults(handler=client_command(draw_graph))


async def list_workflows(client: Client, args: argparse.Namespace) -> int:
    """`runservice workflows`."""
    workflows = await client.list_workflows()
    if args.json:
        print_json({"workflows": [_workflow_json(wf) for wf in workflows]})
        return EXIT_OK
    out = console()
    # The bounds' column only when some workflow has one: most servers have none.
    bounded = any(wf.max_active_runs for wf in workflows)
    columns = ("WORKFLOW", "STEPS", *(("MAX ACTIVE",) if bounded else ()), "INPUT", "DESCRIPTION")
    grid = table(*columns, framed=out.is_terminal, keep=("STEPS", "MAX ACTIVE"))
    for wf in workflows:
        bound = (str(wf.max_active_runs or "-"),) if bounded else ()
        grid.add_row(
            Text(wf.id, style="bold"),
            str(len(wf.steps)),
            *bound,
            Text(schema_summary(wf.input_schema)),
            Text(wf.description),
        )
    print_table(out, grid)
    return EXIT_OK


async def draw_graph(client: Client, args: argparse.Namespace) -> int:
    """`runservice graph WORKFLOW`."""
    workflow = await client.get_workflow(args.workflow).details()
    chart = mermaid.flowchart(workflow.step_graph, title=workflow.id)
    if args.json:
        print_json(
            {"workflow_id": workflow.id, "mermaid": chart, "step_graph": jsonable(workflow.step_graph)}
        )
    else:
        print(chart, end="", flush=True)  # never through rich: Mermaid's brackets are not markup
    return EXIT_OK


def _workflow_json(workflow: WorkflowInfo) -> Json:
    """A workflow as JSON, its versions named and the newest flagged as gRPC gives them (bare
    `[version, digest]` pairs lost which was newest: an audit). The client keeps its pairs."""
    described = jsonable(workflow)
    described["versions"] = [
        {"version": version, "digest": digest, "newest": version == workflow.version}
        for version, digest in workflow.versions
    ]
    return described
