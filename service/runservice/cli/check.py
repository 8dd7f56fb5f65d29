"""`runservice check`: load workflow modules as `serve` would and report what they define.

Nothing is served and no database is opened. Exit 0 with a summary of each workflow (its
steps and schemas) when every module loads; exit 1 with one line saying exactly what is
wrong when one does not (a module that does not import, with the file and line that
failed; no committed workflow; a duplicate id; a schema that has no JSON Schema).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator

from rich.console import Console
from rich.padding import Padding
from rich.text import Text

from runservice.cli.common import EXIT_CALL, EXIT_OK, EXIT_USAGE, fail, print_json
from runservice.cli.loading import LoadedModule, WorkflowLoadError, load_modules
from runservice.cli.output import console, print_table, schema_summary, table
from runservice.model import Json
from runservice.workflow import Runnable, Schema, Workflow

SCHEMAS = ("input", "output", "resume", "suspend")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `check`."""
    check = commands.add_parser(
        "check",
        help="load workflow modules and report what they define (nothing is served)",
        description="Import workflow modules the way `serve` does and list their workflows, steps "
        "and schemas, or say in one line what is wrong (exit 1).",
    )
    check.add_argument(
        "--workflows",
        default=os.environ.get("RUNSERVICE_WORKFLOWS") or None,
        help="comma-separated modules of workflows (RUNSERVICE_WORKFLOWS)",
    )
    check.add_argument(
        "--app-dir",
        default=os.environ.get("RUNSERVICE_APP_DIR") or ".",
        help="directory put first on the import path (RUNSERVICE_APP_DIR; default .)",
    )
    check.add_argument("--json", action="store_true", help="print JSON for scripts instead of text")
    check.set_defaults(handler=run_check)


def run_check(args: argparse.Namespace) -> int:
    """`runservice check`."""
    modules = [name.strip() for name in (args.workflows or "").split(",") if name.strip()]
    if not modules:
        message = "name the workflow modules with --workflows MODULE[,MODULE] (or RUNSERVICE_WORKFLOWS)"
        if args.json:
            print_json({"ok": False, "error": message})
        return fail(message, EXIT_USAGE)
    try:
        loaded = load_modules(modules, app_dir=args.app_dir)
        report = [_module_json(module) for module in loaded]
    except WorkflowLoadError as exc:
        if args.json:
            print_json({"ok": False, "error": str(exc)})
        return fail(str(exc), EXIT_CALL)
    if args.json:
        print_json({"ok": True, "modules": report})
        return EXIT_OK
    out = console()
    for module in report:
        workflows = module["workflows"]
        out.print(Text.assemble((module["module"], "bold"), f"  {module['file'] or ''}", style=""))
        for wf in workflows:
            _print_workflow(out, wf)
    count = sum(len(module["workflows"]) for module in report)
    steps = sum(len(wf["steps"]) for module in report for wf in module["workflows"])
    out.print(
        Text(f"ok: {count} workflow{'s' * (count != 1)}, {steps} step{'s' * (steps != 1)}", style="green")
    )
    return EXIT_OK


def _print_workflow(out: Console, wf: dict[str, Json]) -> None:
    out.print(Text.assemble("  workflow ", (wf["id"], "bold"), f"  {wf['description']}".rstrip()))
    for kind in ("input", "output", "state"):
        summary = schema_summary(wf[f"{kind}_schema"])
        if summary:
            out.print(Text(f"    {kind}: {summary}"))
    grid = table("STEP", "INPUT", "OUTPUT", "NOTES", framed=out.is_terminal)
    for step in wf["steps"]:
        notes = []
        if step["is_workflow"]:
            notes.append("nested workflow")
        if step["can_suspend"]:
            resume = schema_summary(step["resume_schema"])
            notes.append(f"suspends, resume: {resume}" if resume else "suspends")
        if step["retries"]:
            notes.append(f"retries {step['retries']}")
        grid.add_row(
            Text(step["id"]),
            Text(schema_summary(step["input_schema"])),
            Text(schema_summary(step["output_schema"])),
            Text(", ".join(notes)),
        )
    print_table(out, Padding(grid, (0, 0, 0, 4)))


def _module_json(module: LoadedModule) -> dict[str, Json]:
    return {
        "module": module.name,
        "file": module.file,
        "workflows": [_workflow_json(wf) for wf in module.workflows],
    }


def _workflow_json(workflow: Workflow) -> dict[str, Json]:
    return {
        "id": workflow.id,
        "version": workflow.version,
        "digest": workflow.digest,
        "description": workflow.description,
        "input_schema": _schema(workflow.input_schema, workflow.id, "input"),
        "output_schema": _schema(workflow.output_schema, workflow.id, "output"),
        "state_schema": _schema(workflow.state_schema, workflow.id, "state"),
        "steps": list(_steps(workflow, prefix="")),
    }


def _steps(workflow: Workflow, *, prefix: str) -> Iterator[dict[str, Json]]:
    """Every step of the workflow, nested ones under dotted ids (as GetWorkflow lists them);
    a step without retries of its own has its workflow's."""
    for runnable in workflow.runnables():
        step_id = prefix + runnable.id
        yield _step_json(runnable, step_id, workflow.id, workflow.retry_config.attempts)
        if isinstance(runnable, Workflow):
            yield from _steps(runnable, prefix=f"{step_id}.")


def _step_json(step: Runnable, step_id: str, workflow_id: str, retries: int) -> dict[str, Json]:
    where = f"{workflow_id}/{step_id}"
    out: dict[str, Json] = {
        "id": step_id,
        "description": step.description,
        "is_workflow": isinstance(step, Workflow),
        "can_suspend": step.can_suspend,
        "retries": step.retries if step.retries is not None else retries,
    }
    for kind in SCHEMAS:
        out[f"{kind}_schema"] = _schema(getattr(step, f"{kind}_schema"), where, kind)
    return out


def _schema(schema: Schema | None, where: str, kind: str) -> Json:
    """The JSON Schema GetWorkflow would send; a schema that has none is a load error."""
    if schema is None:
        return None
    try:
        return schema.json_schema()
    except Exception as exc:  # pydantic raises several kinds for types it cannot describe
        raise WorkflowLoadError(
            f"the {kind} schema of {where} has no JSON Schema (GetWorkflow would fail): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
