"""`runservice check`: load workflow modules and schedules as `serve` would and report what they define.

Nothing is served and no database is opened. Exit 0 with a summary of each workflow (its
steps and schemas) and of the configuration's schedules (`--schedules`, RUNSERVICE_SCHEDULES)
when every module and schedule loads; exit 1 with one line saying exactly what is wrong when
one does not (a module that does not import, with the file and line that failed; no committed
workflow; a duplicate id; a schema that has no JSON Schema; a schedule `serve` would refuse).
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
from runservice.cli.output import console, jsonable, print_table, schema_summary, table
from runservice.config import ConfigError, Settings, check_served_schedules, env_name, parse_schedules
from runservice.model import Json
from runservice.workflow import Runnable, Schedule, Schema, Workflow

SCHEMAS = ("input", "output", "resume", "suspend")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `check`."""
    check = commands.add_parser(
        "check",
        help="load workflow modules and report what they define (nothing is served)",
        description="Import workflow modules the way `serve` does and list their workflows, steps "
        "and schemas, or say in one line what is wrong (exit 1).",
    )
    # `serve`'s defaults, from its settings: `check` with no flag checks what `serve` would serve.
    served = ",".join(Settings.model_fields["workflows"].default)
    app_dir = Settings.model_fields["app_dir"].default
    check.add_argument(
        "--workflows",
        default=os.environ.get(env_name("workflows")) or served,
        help=f"comma-separated modules of workflows ({env_name('workflows')}; default {served}, as `serve`)",
    )
    check.add_argument(
        "--app-dir",
        default=os.environ.get(env_name("app_dir")) or app_dir,
        help=f"directory put first on the import path ({env_name('app_dir')}; default {app_dir})",
    )
    check.add_argument(
        "--schedules",
        # No default from the variable here: an error names where the value came from, as `serve`'s does.
        help=f"{Settings.model_fields['schedules'].description}; checked as `serve` would "
        f"({env_name('schedules')})",
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
    setting, source = _schedules_setting(args)
    try:
        schedules = _schedules(setting, source)
        loaded = load_modules(modules, app_dir=args.app_dir)
        report = [_module_json(module) for module in loaded]
        check_served_schedules(schedules, [wf for module in loaded for wf in module.workflows])
    except (WorkflowLoadError, ConfigError) as exc:
        if args.json:
            print_json({"ok": False, "error": str(exc)})
        return fail(str(exc), EXIT_CALL)
    if args.json:
        print_json({"ok": True, "modules": report, "schedules": [jsonable(s) for s in schedules]})
        return EXIT_OK
    out = console()
    for module in report:
        workflows = module["workflows"]
        out.print(Text.assemble((module["module"], "bold"), f"  {module['file'] or ''}", style=""))
        for wf in workflows:
            _print_workflow(out, wf)
    if setting is not None:
        _print_schedules(out, schedules, source)
    count = sum(len(module["workflows"]) for module in report)
    steps = sum(len(wf["steps"]) for module in report for wf in module["workflows"])
    summary = f"ok: {count} workflow{'s' * (count != 1)}, {steps} step{'s' * (steps != 1)}"
    if setting is not None:
        summary += f", {len(schedules)} schedule{'s' * (len(schedules) != 1)}"
    out.print(Text(summary, style="green"))
    return EXIT_OK


def _schedules_setting(args: argparse.Namespace) -> tuple[str | None, str]:
    """The `schedules` setting `serve` would read and where it comes from: the flag wins, and an
    empty variable is unset (`Settings`: env_ignore_empty)."""
    if args.schedules is not None:
        return args.schedules, "flag"
    return os.environ.get(env_name("schedules")) or None, "environment"


def _schedules(setting: str | None, source: str) -> list[Schedule]:
    """The schedules of the setting, parsed as `serve` parses them (cron, time zone, policies);
    ConfigError naming the setting and its source, as `serve`'s does (without the value)."""
    if setting is None:
        return []
    try:
        return parse_schedules(setting)
    except ValueError as exc:
        raise ConfigError(f"schedules ({source}): {exc}") from None


def _print_schedules(out: Console, schedules: list[Schedule], source: str) -> None:
    out.print(
        Text.assemble(
            ("schedules", "bold"), f" ({'--schedules' if source == 'flag' else env_name('schedules')})"
        )
    )
    grid = table("SCHEDULE", "WORKFLOW", "CRON", "ZONE", framed=out.is_terminal, keep=("CRON",))
    for schedule in schedules:
        grid.add_row(
            Text(schedule.id), Text(schedule.workflow_id), Text(schedule.cron), Text(schedule.timezone)
        )
    print_table(out, Padding(grid, (0, 0, 0, 2)))


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
