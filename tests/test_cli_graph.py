"""The Mermaid flowchart of `runservice graph`, from the step graph as GetWorkflow describes it
(built here by the server's and the client's own conversions, no server needed)."""

from __future__ import annotations

import datetime as dt
import re

import flows

from runservice.cli.mermaid import flowchart
from runservice.client import workflow_from_proto
from runservice.server.convert import workflow_to_proto
from runservice.workflow import Workflow, create_step, create_workflow


def chart_of(workflow: Workflow) -> str:
    return flowchart(workflow_from_proto(workflow_to_proto(workflow)).step_graph, title=workflow.id)


def node(chart: str, label: str) -> str:
    found = re.search(rf'(n\d+)[\[\(\{{/]+"{re.escape(label)}"', chart)
    assert found, f"no node {label!r} in\n{chart}"
    return found[1]


def test_a_sequence_is_start_steps_end() -> None:
    assert chart_of(flows.pipeline) == "\n".join(
        [
            "---",
            "title: pipeline",
            "---",
            "flowchart TD",
            '  start(["start"])',
            '  n1["add-one"]',
            '  n2["double"]',
            '  n3["to-text"]',
            '  done(["end"])',
            "  start --> n1",
            "  n1 --> n2",
            "  n2 --> n3",
            "  n3 --> done",
            "",
        ]
    )


def test_every_construct() -> None:
    chart = chart_of(flows.everything)
    lines = chart.splitlines()
    # parallel: a fork to each branch, each branch to a join, the join to what follows
    fork, join = node(chart, "parallel"), node(chart, "join")
    for branch in ("double", "triple"):
        assert (
            f"  {fork} --> {node(chart, branch)}" in lines and f"  {node(chart, branch)} --> {join}" in lines
        )
    # foreach: a subgraph around its step
    assert re.search(r'subgraph sg\d+\["foreach, 2 at a time"\]\n\s+n\d+\["check-item"\]\n\s+end', chart)
    # maps, a dowhile loop back to its body, a branch with its conditions, a sleep
    assert '[/"map first-item"/]' in chart
    body, check = node(chart, "double-again"), node(chart, "dowhile")
    assert f'  {check} -->|"condition true"| {body}' in lines and f"  {body} --> {check}" in lines
    decision = node(chart, "branch")
    assert f'  {decision} -->|"is_big"| {node(chart, "triple-big")}' in lines
    assert f'  {decision} -->|"is_even"| {node(chart, "add-even")}' in lines
    sleep = node(chart, "sleep 0.01s")
    assert f'  {check} -->|"condition false"| ' in chart
    assert f"  {sleep} --> done" in lines
    # every node is declared once, before the edges
    declared = [
        line.split("[")[0].split("(")[0].split("{")[0].strip()
        for line in lines
        if re.match(r"\s+n\d+\W", line)
    ]
    assert len(declared) == len(set(declared))
    first_edge = next(i for i, line in enumerate(lines) if "-->" in line)
    assert all("-->" in line or "class" in line for line in lines[first_edge:])


def test_nested_workflows_are_subgraphs() -> None:
    chart = chart_of(flows.outer)
    assert re.search(
        r'subgraph sg\d+\["workflow middle"\]\n'
        r'\s+n\d+\["add-one"\]\n'
        r'\s+subgraph sg\d+\["workflow innermost"\]\n'
        r'\s+n\d+\["double"\]\n'
        r'\s+n\d+\["approve"\]\n'
        r"\s+end\n"
        r"\s+end",
        chart,
    )
    assert f"  {node(chart, 'add-one')} --> {node(chart, 'double')}" in chart
    assert f"  {node(chart, 'approve')} --> {node(chart, 'finish')}" in chart
    assert f"class {node(chart, 'approve')} suspends" in chart


@create_step("say", input_schema=None)
async def say(ctx: object) -> object:
    return None


def test_sleeps_failures_allowed_and_labels_escaped() -> None:
    until = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    wf = (
        create_workflow("odd", description='quote " and hash #')
        .sleep(lambda ctx: 1.0)
        .sleep_until(until)
        .sleep_until(lambda ctx: until)
        .parallel([say], allow_failure=True)
        .sleep(180)
        .commit()
    )
    chart = chart_of(wf)
    assert '(["sleep (computed)"])' in chart
    assert '(["sleep until 2030-01-02T03:04:05Z"])' in chart
    assert '(["sleep until (computed)"])' in chart
    assert '{{"parallel, failures allowed"}}' in chart
    assert '(["sleep 3min"])' in chart
    branches = [
        {"type": "conditional", "children": [{"type": "step", "id": 'say "hi" #1'}], "conditions": ["x > 1"]}
    ]
    escaped = flowchart(branches)
    assert '["say #quot;hi#quot; #35;1"]' in escaped and '-->|"x > 1"|' in escaped
    assert flowchart([]).splitlines()[-1] == "  start --> done"
