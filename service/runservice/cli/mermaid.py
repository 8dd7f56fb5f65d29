"""A workflow's step graph (as GetWorkflow describes it) drawn as a Mermaid flowchart.

    flowchart TD
      start(["start"])
      n1["fetch-weather"]
      n2["plan-activities"]
      done(["end"])
      start --> n1
      n1 --> n2
      n2 --> done

Shapes: a step is a box (dashed when it can suspend), a map a parallelogram, a sleep a
stadium, a parallel block a hexagon that forks and another that joins, a branch a diamond
with each condition on its edge, a loop a diamond after its body with the edge back to it,
a foreach and a nested workflow a subgraph. Nodes are declared first (inside their
subgraphs), edges after, so each node lands in the subgraph it belongs to.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from runservice.model import Json

GraphNode = dict[str, Json]
"""One step-graph node: {"type": "step" | "parallel" | "conditional" | "loop" | "foreach" |
"sleep" | "sleep_until" | "map", "id", "children", "conditions", "loop_kind", ...}."""


@dataclass
class _Drawing:
    lines: list[str] = field(default_factory=list)
    edges: list[str] = field(default_factory=list)
    suspendable: list[str] = field(default_factory=list)
    exit_labels: dict[str, str] = field(default_factory=dict)
    """Labels of the edges leaving a node to whatever follows it (a loop's way out)."""
    count: int = 0
    indent: str = "  "

    def node(self, shape: str, label: str, prefix: str = "n") -> str:
        self.count += 1
        name = f"{prefix}{self.count}"
        opening, closing = _SHAPES[shape]
        self.lines.append(f'{self.indent}{name}{opening}"{_escape(label)}"{closing}')
        return name

    def edge(self, sources: Sequence[str], target: str, label: str = "") -> None:
        for source in sources:
            text = label or self.exit_labels.get(source, "")
            arrow = f'-->|"{_escape(text)}"|' if text else "-->"
            self.edges.append(f"  {source} {arrow} {target}")


_SHAPES = {
    "box": ("[", "]"),
    "round": ("([", "])"),
    "slant": ("[/", "/]"),
    "hexagon": ("{{", "}}"),
    "diamond": ("{", "}"),
}


def flowchart(step_graph: Sequence[GraphNode], *, title: str = "") -> str:
    """The Mermaid flowchart (top-down) of a step graph, from start to end."""
    drawing = _Drawing()
    drawing.lines.append('  start(["start"])')
    entries, exits = _sequence(drawing, step_graph)
    drawing.lines.append('  done(["end"])')
    drawing.edges.insert(0, f"  start --> {entries[0] if entries else 'done'}")
    if entries:
        drawing.edge(exits, "done")
    header = [f"---\ntitle: {title}\n---"] if title else []
    styles = []
    if drawing.suspendable:
        styles = [
            "  classDef suspends stroke-dasharray: 5 5",
            f"  class {','.join(drawing.suspendable)} suspends",
        ]
    return "\n".join([*header, "flowchart TD", *drawing.lines, *drawing.edges, *styles]) + "\n"


def _sequence(drawing: _Drawing, nodes: Sequence[GraphNode]) -> tuple[list[str], list[str]]:
    """Draw nodes one after the other; ([first entry], exits of the last)."""
    first: list[str] = []
    previous: list[str] = []
    for node in nodes:
        entry, exits = _node(drawing, node)
        if previous:
            drawing.edge(previous, entry)
        else:
            first = [entry]
        previous = exits
    return first, previous


def _node(drawing: _Drawing, node: GraphNode) -> tuple[str, list[str]]:
    """Draw one node; (its entry, its exits)."""
    kind = node.get("type")
    children: list[GraphNode] = list(node.get("children") or [])
    if kind == "parallel":
        label = "parallel, failures allowed" if node.get("allow_failure") else "parallel"
        fork = drawing.node("hexagon", label)
        join = _fan(drawing, fork, children, [""] * len(children))
        return fork, [join]
    if kind == "conditional":
        decision = drawing.node("diamond", "branch")
        conditions = [str(c) for c in node.get("conditions") or []]
        conditions += ["condition"] * (len(children) - len(conditions))
        join = _fan(drawing, decision, children, conditions)
        return decision, [join]
    if kind == "loop":
        body_entry, body_exits = _sequence(drawing, children)
        until = node.get("loop_kind") == "dountil"
        check = drawing.node("diamond", "dountil" if until else "dowhile")
        drawing.edge(body_exits, check)
        if body_entry:
            drawing.edge([check], body_entry[0], "condition false" if until else "condition true")
        drawing.exit_labels[check] = "condition true" if until else "condition false"
        return (body_entry or [check])[0], [check]
    if kind == "foreach":
        concurrency = node.get("concurrency") or 1
        return _subgraph(drawing, f"foreach, {concurrency} at a time", children)
    if kind == "sleep":
        millis = node.get("duration_ms")
        label = f"sleep {_seconds(millis)}" if millis else "sleep (computed)"
        name = drawing.node("round", label)
        return name, [name]
    if kind == "sleep_until":
        until = node.get("until")
        label = f"sleep until {_utc(until)}" if isinstance(until, int | float) else "sleep until (computed)"
        name = drawing.node("round", label)
        return name, [name]
    if kind == "map":
        name = drawing.node("slant", f"map {node.get('id', '')}".strip())
        return name, [name]
    nested: list[GraphNode] = list(node.get("workflow") or [])
    if nested:
        return _subgraph(drawing, f"workflow {node.get('id', '')}", nested)
    name = drawing.node("box", str(node.get("id", "?")))
    if node.get("can_suspend"):
        drawing.suspendable.append(name)
    return name, [name]


def _fan(drawing: _Drawing, source: str, children: Sequence[GraphNode], labels: Sequence[str]) -> str:
    """Edges from `source` to each child (labelled), then from every child to a new join node."""
    ends: list[tuple[str, list[str]]] = [_node(drawing, child) for child in children]
    join = drawing.node("hexagon", "join")
    for (entry, exits), label in zip(ends, labels, strict=True):
        drawing.edge([source], entry, label)
        drawing.edge(exits, join)
    if not ends:
        drawing.edge([source], join)
    return join


def _subgraph(drawing: _Drawing, title: str, nodes: Sequence[GraphNode]) -> tuple[str, list[str]]:
    """Nodes drawn in sequence inside a titled subgraph."""
    drawing.count += 1
    name = f"sg{drawing.count}"
    outer = drawing.indent
    drawing.lines.append(f'{outer}subgraph {name}["{_escape(title)}"]')
    drawing.indent = outer + "  "
    entry, exits = _sequence(drawing, nodes)
    if not entry:  # an empty body: a placeholder keeps the arrows connected
        placeholder = drawing.node("box", "(empty)")
        entry, exits = [placeholder], [placeholder]
    drawing.indent = outer
    drawing.lines.append(f"{outer}end")
    return entry[0], exits


def _escape(label: str) -> str:
    # Inside a quoted Mermaid label only the quote itself and the entity marker need escaping.
    return label.replace("#", "#35;").replace('"', "#quot;")


def _seconds(millis: Json) -> str:
    seconds = float(millis) / 1000
    return f"{seconds:g}s" if seconds < 120 else f"{seconds / 60:g}min"


def _utc(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
