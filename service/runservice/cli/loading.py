"""Loading the workflows an author's modules define."""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from runservice.workflow import Workflow


class WorkflowLoadError(Exception):
    """A workflows module cannot be served."""


def load_workflows(modules: Sequence[str]) -> list[Workflow]:
    """The committed workflows of `modules`: their `WORKFLOWS` list, else every Workflow attribute."""
    found: dict[str, Workflow] = {}
    for name in modules:
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # the author's module can fail in any way; report it in one line
            raise WorkflowLoadError(
                f"cannot import workflows module {name!r}: {type(exc).__name__}: {exc}"
            ) from exc
        declared = getattr(module, "WORKFLOWS", None)
        if declared is not None:
            if not isinstance(declared, list | tuple):
                raise WorkflowLoadError(f"{name}.WORKFLOWS must be a list of workflows")
            candidates = list(declared)
        else:
            candidates = [value for value in vars(module).values() if isinstance(value, Workflow)]
        if not candidates:
            raise WorkflowLoadError(f"module {name!r} defines no workflows (create_workflow(...).commit())")
        for workflow in candidates:
            if not isinstance(workflow, Workflow):
                raise WorkflowLoadError(f"{name}.WORKFLOWS holds {workflow!r}, which is not a workflow")
            if not workflow.committed:
                raise WorkflowLoadError(
                    f"workflow {workflow.id!r} in module {name!r} is not committed: call .commit() on it"
                )
            other = found.setdefault(workflow.id, workflow)
            if other is not workflow:
                raise WorkflowLoadError(f"two workflows have the id {workflow.id!r} (in {name!r})")
    return list(found.values())
