"""The workflow definitions a server serves, by id and version, and which one a run needs.

Several versions of one workflow id may be served side by side. The newest is the last
one registered (the order of the workflows given to the engine: a module's `WORKFLOWS`
list, else its attributes in definition order); new runs start on it. Every run records
the version and the step-graph digest it started on and is driven by that definition
only: on resume, restart and recovery alike. A run stored before versions existed
recorded version "1" and no digest: any served definition of version "1" continues it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from runservice.errors import WorkflowDefinitionChanged, WorkflowDefinitionError, WorkflowVersionUnavailable
from runservice.model import Run
from runservice.storage import Definition
from runservice.workflow import Workflow


def identity(workflow: Workflow) -> dict[str, Any]:
    """The run fields that record which definition a run started on."""
    return {"definition_version": workflow.version, "definition_digest": workflow.digest}


class ServedVersions:
    """Workflow definitions by id, then version in registration order (oldest first)."""

    def __init__(self, workflows: Iterable[Workflow]) -> None:
        self._by_id: dict[str, dict[str, Workflow]] = {}
        for workflow in workflows:
            if not workflow.committed:
                raise WorkflowDefinitionError(f"workflow {workflow.id!r} is not committed: call .commit()")
            versions = self._by_id.setdefault(workflow.id, {})
            if workflow.version in versions:
                raise WorkflowDefinitionError(
                    f"two workflows have the id {workflow.id!r} and version {workflow.version!r}; "
                    "give each definition of a workflow its own version"
                )
            versions[workflow.version] = workflow

    def newest(self) -> dict[str, Workflow]:
        """Each workflow id's newest served version."""
        return {workflow_id: list(versions.values())[-1] for workflow_id, versions in self._by_id.items()}

    def of(self, workflow_id: str) -> list[Workflow]:
        """The served versions of one workflow, oldest first."""
        return list(self._by_id.get(workflow_id, {}).values())

    def definitions(self) -> list[Definition]:
        """(workflow id, version, digest) a run may have recorded to be driven here; a run
        without a recorded digest (stored before digests existed) matches its version."""
        served: list[Definition] = []
        for workflow_id, versions in self._by_id.items():
            for version, workflow in versions.items():
                served += [(workflow_id, version, workflow.digest), (workflow_id, version, "")]
        return served

    def definition(self, run: Run) -> Workflow:
        """The definition `run` continues on, or why it cannot be continued here."""
        versions = self._by_id.get(run.workflow_id, {})
        workflow = versions.get(run.definition_version)
        if workflow is None:
            served = list(versions)
            raise WorkflowVersionUnavailable(run.run_id, run.workflow_id, run.definition_version, served)
        if run.definition_digest and run.definition_digest != workflow.digest:
            raise WorkflowDefinitionChanged(
                run.run_id, run.workflow_id, run.definition_version, run.definition_digest, workflow.digest
            )
        return workflow


def not_served(
    unowned: Mapping[Definition, int], definitions: Collection[Definition]
) -> dict[Definition, int]:
    """Of the active runs no server drives, counted by the definition they recorded
    (`Store.count_unowned_by_definition`), those whose definition is none of `definitions`
    (`ServedVersions.definitions`): no claim here takes them, and they wait, `running` or
    `waiting`, for a server that serves it (a graph changed under the same version, a
    version retired too early, a workflow no longer served at all). A workflow this server
    does not serve is no exception: its runs are as stranded if no other server takes them."""
    served = set(definitions)
    return {definition: runs for definition, runs in unowned.items() if definition not in served}
