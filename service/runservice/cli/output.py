"""How the commands show things: JSON for scripts, `rich` tables and short summaries for people.

On a terminal, output is coloured and fits the window. Piped, it is plain: no colours,
no box drawing, no wrapping (each table row stays one line for grep and awk).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import sys
import zoneinfo
from collections.abc import Iterable, Mapping
from typing import Any

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from runservice.model import Json, Run, RunError, RunStatus, StepRecord, StepStatus

STATUS_STYLE: dict[str, str] = {
    "pending": "dim",
    "running": "yellow",
    "waiting": "blue",
    "suspended": "magenta",
    "success": "green",
    "failed": "red",
    "canceled": "dim red",
    "skipped": "dim",
}

PIPE_WIDTH = 100_000
"""Console width when stdout is not a terminal: tables are as wide as their content."""


def console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr); plain and unwrapped when it is not a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(file=stream, highlight=False)
    return Console(file=stream, highlight=False, width=PIPE_WIDTH, color_system=None, soft_wrap=True)


class OneLineTable(Table):
    """A table whose rows stay one line each. On a narrow terminal the widest columns give way
    first (rich shrinks wrappable columns, widest first) and their cells end in an ellipsis."""

    def add_row(self, *renderables: RenderableType | None, **kwargs: Any) -> None:
        cells: list[RenderableType | None] = []
        for cell in renderables:
            if isinstance(cell, str | Text):
                text = Text(cell) if isinstance(cell, str) else cell.copy()
                text.no_wrap, text.overflow = True, "ellipsis"
                cells.append(text)
            else:
                cells.append(cell)
        super().add_row(*cells, **kwargs)


def table(*columns: str, framed: bool, keep: tuple[str, ...] = ()) -> Table:
    """A table with these columns: `framed` on a terminal, space-separated columns when piped.
    The first column and those named in `keep` are never cut."""
    grid = OneLineTable(
        box=box.SIMPLE_HEAD if framed else None,
        show_edge=False,
        pad_edge=False,
        header_style="bold" if framed else "",
    )
    for index, name in enumerate(columns):
        # Piped, nothing is cut or wrapped (the console is as wide as the content).
        grid.add_column(
            name,
            overflow="ellipsis" if framed else "ignore",
            no_wrap=not framed or index == 0 or name in keep,
        )
    return grid


def print_table(out: Console, grid: RenderableType) -> None:
    """Print a table; piped, without the padding rich leaves at the end of each line."""
    if out.is_terminal:
        out.print(grid)
        return
    with out.capture() as captured:
        out.print(grid)
    lines = captured.get().splitlines()
    out.file.write("".join(line.rstrip() + "\n" for line in lines))
    out.file.flush()


def jsonable(value: Any) -> Json:
    """A model value (dataclasses, enums, tuples, mappings) as plain JSON data; times stay POSIX seconds."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value


def short_json(value: Json, limit: int = 80) -> str:
    """A JSON value on one line, keys sorted, cut to `limit` characters."""
    # Sorted: objects that crossed the wire as protobuf Structs come back in any key order.
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def status_text(status: RunStatus | StepStatus | str) -> Text:
    """A status word in its colour."""
    word = str(status)
    return Text(word, style=STATUS_STYLE.get(word, ""))


def when(seconds: float | None, zone: str | None = None) -> str:
    """A POSIX time as `YYYY-MM-DD HH:MM:SS+HH:MM` in the IANA `zone` (a schedule's), else in
    the local one, or "" when unset. With its offset: a bare time read as local, UTC or the
    schedule's zone alike, and was off by hours for whoever guessed wrong (audit)."""
    if not seconds:
        return ""
    try:
        where = zoneinfo.ZoneInfo(zone) if zone else None
    except zoneinfo.ZoneInfoNotFoundError:  # this machine's time zone data lacks it: local time
        where = None
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC).astimezone(where)
    offset = moment.strftime("%z")  # +0100; `%:z` only from Python 3.12
    return f"{moment.strftime('%Y-%m-%d %H:%M:%S')}{offset[:3]}:{offset[3:]}"


def clock(seconds: float) -> str:
    """A POSIX time as local `HH:MM:SS.mmm` (event lines)."""
    return dt.datetime.fromtimestamp(seconds).strftime("%H:%M:%S.%f")[:-3]


def duration(seconds: float | None) -> str:
    """`1.23s`, `2m05s` or `1h02m`; "" when unknown."""
    if seconds is None or seconds < 0:
        return ""
    if seconds < 60:
        return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def step_time(step: StepRecord, now: float) -> str:
    """How long a step ran (or has been running)."""
    if step.started_at is None:
        return ""
    end = step.ended_at or step.suspended_at
    if end is None and step.status in (StepStatus.RUNNING, StepStatus.WAITING):
        end = now
    return duration(end - step.started_at) if end else ""


def error_line(error: RunError | None) -> str:
    """`Name: message` of a structured error, then `; from Name: message` for each error it was
    raised from (its `cause` chain)."""
    parts: list[str] = []
    while error is not None:
        parts.append(f"{error.name}: {error.message}" if error.message != error.name else error.name)
        error = error.cause
    return "; from ".join(parts)


def step_detail(step: StepRecord, limit: int = 60, *, payloads: bool = True) -> str:
    """The one thing worth knowing about a step: its error, suspend payload, wake time or output
    (`payloads` False: the run was read without its steps' JSON, so none is shown as null)."""
    if step.status is StepStatus.FAILED:
        return error_line(step.error)
    if step.status is StepStatus.SUSPENDED:
        labels = f" (labels: {', '.join(step.resume_labels)})" if step.resume_labels else ""
        return (short_json(step.suspend_payload, limit) if payloads else "") + labels
    if step.status is StepStatus.WAITING and step.wake_at:
        return f"until {clock(step.wake_at)}"
    if step.foreach_items:
        done = sum(item.status is StepStatus.SUCCESS for item in step.foreach_items)
        return f"{done}/{len(step.foreach_items)} items done"
    if step.status is StepStatus.SUCCESS and step.output is not None:
        return short_json(step.output, limit)
    return ""


def step_label(step: StepRecord) -> str:
    """A step path as `outer.inner`, with its loop iteration when it has one."""
    label = ".".join(step.path)
    return f"{label} #{step.iteration}" if step.iteration else label


def schema_summary(schema: Json) -> str:
    """A JSON Schema in a line: `{city: string, days?: integer}`; "" for no schema."""
    if not isinstance(schema, dict) or not schema:
        return ""
    return _summary(schema, schema.get("$defs") or schema.get("definitions") or {}, depth=0)


def _summary(schema: Json, defs: Mapping[str, Json], depth: int) -> str:
    if not isinstance(schema, dict):
        return "any"
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        target = defs.get(name)
        return _summary(target, defs, depth) if isinstance(target, dict) and depth < 2 else name
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list):
            return " | ".join(_summary(option, defs, depth) for option in options)
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    kind = schema.get("type")
    if kind == "array":
        return f"list[{_summary(schema.get('items'), defs, depth + 1)}]"
    properties = schema.get("properties")
    if kind == "object" or isinstance(properties, dict):
        if not isinstance(properties, dict) or not properties:
            return "object"
        if depth >= 2:
            return "{…}"
        required = set(schema.get("required") or ())
        # Sorted: the schema crossed the wire as a protobuf Struct, which keeps no order, so
        # the author's order is lost and the same workflow would print differently each time.
        fields = (
            f"{name}{'' if name in required else '?'}: {_summary(sub, defs, depth + 1)}"
            for name, sub in sorted(properties.items())
        )
        return "{" + ", ".join(fields) + "}"
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    return str(kind) if kind else "any"


def resume_hint(run: Run) -> Iterable[str]:
    """The `runservice resume` command line for each suspended step of a run."""
    for path in run.suspended:
        step = ".".join(path)
        flag = f" --step {step}" if len(run.suspended) > 1 else ""
        yield f"runservice resume {run.run_id}{flag} --data JSON"


def print_run(
    run: Run,
    out: Console,
    *,
    hint_watch: bool = False,
    not_resumable: str | None = None,
    payloads: bool = True,
) -> None:
    """A run in a few lines: id, workflow, status, then its result, error or suspended steps;
    `not_resumable`: why the server cannot resume it, said instead of the `resume` command;
    `payloads` False: read without its steps' JSON (no suspend payload is shown as null)."""
    head = Text.assemble(
        ("run ", ""), (run.run_id, "bold"), (f" ({run.workflow_id}) ", ""), status_text(run.status)
    )
    out.print(head)
    if run.status is RunStatus.SUCCESS:
        out.print(Text(f"result: {short_json(run.result, 2000)}"))
    elif run.error is not None:
        out.print(Text(f"error: {error_line(run.error)}", style="red"))
    if run.status is RunStatus.SUSPENDED:
        by_path = {step.path: step for step in run.steps}
        for path in run.suspended:
            step = by_path.get(path)
            payload = short_json(step.suspend_payload, 200) if step and payloads else ""
            out.print(Text(f"suspended: {'.'.join(path)} {payload}".rstrip()))
        if not_resumable:
            out.print(Text(f"cannot be resumed here: {not_resumable}", style="yellow"))
        for line in resume_hint(run) if not not_resumable else ():
            out.print(Text(f"resume with: {line}", style="dim"))
    if hint_watch and not run.status.settled:
        out.print(Text(f"follow it with: runservice watch {run.run_id}", style="dim"))
