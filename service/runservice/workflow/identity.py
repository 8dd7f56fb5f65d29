"""A workflow definition's identity: the version its author gives and a digest of its step graph.

The digest is a SHA-256 of a canonical JSON description of the graph: step ids and kinds,
the structure (sequence, parallel, branch, loops, foreach, sleeps, nested workflows),
every JSON Schema, retries, foreach concurrency, loop kinds, condition names, fixed sleep
durations and declarative map configs. Nothing in it depends on the process: no memory
address, no generated uuid (generated ids are counters, `mapping_1`, `sleep_2`), no
function body. It changes when the graph a run's step records follow changes; it does not
change when only a step's code changes (that is what the author's `version` is for).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import TYPE_CHECKING, Any

import orjson

from runservice.errors import WorkflowDefinitionError

if TYPE_CHECKING:
    from runservice.workflow.builder import Node, Runnable, Workflow
    from runservice.workflow.schema import Schema

DEFAULT_VERSION = "1"
"""The version of a workflow whose author gives none, and of runs stored before versions existed."""

_VERSION = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")


def check_version(value: str) -> str:
    """Versions are 1-64 letters, digits, `_`, `-`, `.` or `:` (for example "2", "2026-11-26", "v1.2")."""
    if not isinstance(value, str) or not _VERSION.fullmatch(value):
        raise WorkflowDefinitionError(
            f"workflow version {value!r} is invalid: use 1-64 letters, digits, '_', '-', '.' or ':'"
        )
    return value


def graph_digest(workflow: Workflow) -> str:
    """`sha256:<hex>` of the workflow's canonical graph description (see the module doc)."""
    body = orjson.dumps(describe(workflow), option=orjson.OPT_SORT_KEYS)
    return "sha256:" + hashlib.sha256(body).hexdigest()


def describe(workflow: Workflow) -> dict[str, Any]:
    """The canonical description the digest is computed from (JSON data)."""
    return {
        "id": workflow.id,
        "input": _schema(workflow.input_schema),
        "output": _schema(workflow.output_schema),
        "state": _schema(workflow.state_schema),
        "retries": [workflow.retry_config.attempts, workflow.retry_config.delay],
        "nodes": [_node(node) for node in workflow.nodes],
    }


def _node(node: Node) -> dict[str, Any]:
    from runservice.workflow.builder import (
        BranchNode,
        ForeachNode,
        LoopNode,
        ParallelNode,
        SleepNode,
        SleepUntilNode,
        StepNode,
        describe_condition,
        sleep_seconds,
    )

    match node:
        case StepNode(step):
            return {"kind": "step", "step": _runnable(step)}
        case ParallelNode(steps, allow_failure):
            return {
                "kind": "parallel",
                "allow_failure": allow_failure,
                "steps": [_runnable(s) for s in steps],
            }
        case BranchNode(branches):
            return {
                "kind": "branch",
                "steps": [_runnable(s) for _, s in branches],
                "conditions": [_name(describe_condition(c)) for c, _ in branches],
            }
        case LoopNode(step, condition, kind):
            return {"kind": kind, "step": _runnable(step), "condition": _name(describe_condition(condition))}
        case ForeachNode(step, concurrency):
            return {"kind": "foreach", "concurrency": concurrency, "step": _runnable(step)}
        case SleepNode(node_id, duration):
            fixed = None if callable(duration) else sleep_seconds(duration)
            return {"kind": "sleep", "id": node_id, "seconds": fixed}
        case SleepUntilNode(node_id, until):
            at = until.timestamp() if isinstance(until, dt.datetime) else None
            return {"kind": "sleep_until", "id": node_id, "at": at}
    raise AssertionError(f"unknown node {node!r}")  # pragma: no cover


def _runnable(runnable: Runnable) -> dict[str, Any]:
    from runservice.workflow.builder import Workflow

    if isinstance(runnable, Workflow):
        return {"workflow": describe(runnable)}
    return {
        "id": runnable.id,
        "input": _schema(runnable.input_schema),
        "output": _schema(runnable.output_schema),
        "resume": _schema(runnable.resume_schema),
        "suspend": _schema(runnable.suspend_schema),
        "retries": runnable.retries,
        "map": runnable.map_config,
    }


def _schema(schema: Schema | None) -> Any:
    return None if schema is None else schema.json_schema()


def _name(described: str) -> str:
    # A callable object without __name__ is described by its repr, which may hold an address.
    return re.sub(r" at 0x[0-9a-fA-F]+", "", described)
