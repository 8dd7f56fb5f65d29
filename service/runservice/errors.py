"""The one exception tree of the service.

    ServiceError                       every error a caller can see; carries a stable `reason`
    ├── InvalidArgument                malformed request or data failing its schema (violations)
    │   └── ValidationFailed           input, initial state or resume data failed its schema
    ├── NotFound
    │   ├── WorkflowNotFound
    │   └── RunNotFound
    ├── AlreadyExists
    │   ├── RunAlreadyStarted          a second Start of a run
    │   └── RunBelongsToOtherWorkflow  a run id reused with another workflow
    ├── FailedPrecondition
    │   ├── RunNotSuspended            Resume of a run that is not suspended
    │   ├── StepNotSuspended           Resume naming a step that is not suspended
    │   ├── MultipleSuspendedSteps     Resume without a step while several are suspended
    │   └── RunActive                  DeleteRun of a run that is still going
    ├── Unauthenticated / PermissionDenied
    ├── Unavailable                    the server is draining; retry elsewhere
    ├── Unimplemented
    └── Internal                       a bug; details are logged, never sent
    WorkflowDefinitionError            raised in the author's code at definition time

The server maps each branch to a gRPC status code (service/server/status.py) and the
client maps codes and reasons back (runservice/client/status.py). Nothing here knows gRPC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid field: where it is (dotted path) and what is wrong with it."""

    field: str
    description: str


class ServiceError(Exception):
    """Base of every error a caller can receive.

    `reason` is a stable UPPER_SNAKE identifier; `metadata` holds string facts (ids,
    statuses) a program can act on; `violations` lists invalid fields.
    """

    reason = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
        violations: Sequence[FieldViolation] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.metadata = dict(metadata or {})
        self.violations = tuple(violations)


class InvalidArgument(ServiceError):
    """The request is malformed (missing or ill-formed field)."""

    reason = "INVALID_REQUEST"


class ValidationFailed(InvalidArgument):
    """Data failed its schema before anything ran; the run is left as it was."""

    reason = "VALIDATION_FAILED"


class NotFound(ServiceError):
    """The named resource does not exist."""

    reason = "NOT_FOUND"


class WorkflowNotFound(NotFound):
    reason = "WORKFLOW_NOT_FOUND"

    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"workflow {workflow_id!r} not found", metadata={"workflow_id": workflow_id})


class RunNotFound(NotFound):
    reason = "RUN_NOT_FOUND"

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} not found", metadata={"run_id": run_id})


class AlreadyExists(ServiceError):
    """The resource exists and the request would create or start it again."""

    reason = "ALREADY_EXISTS"


class RunAlreadyStarted(AlreadyExists):
    reason = "RUN_ALREADY_STARTED"

    def __init__(self, run_id: str, status: str) -> None:
        super().__init__(
            f"run {run_id!r} was already started (status {status})",
            metadata={"run_id": run_id, "status": status},
        )


class RunBelongsToOtherWorkflow(AlreadyExists):
    reason = "RUN_ID_IN_USE"

    def __init__(self, run_id: str, workflow_id: str) -> None:
        super().__init__(
            f"run id {run_id!r} is already used by workflow {workflow_id!r}",
            metadata={"run_id": run_id, "workflow_id": workflow_id},
        )


class FailedPrecondition(ServiceError):
    """The run is not in a state that allows the request."""

    reason = "FAILED_PRECONDITION"


class RunNotSuspended(FailedPrecondition):
    reason = "RUN_NOT_SUSPENDED"

    def __init__(self, run_id: str, status: str) -> None:
        super().__init__(
            f"run {run_id!r} is not suspended (status {status})",
            metadata={"run_id": run_id, "status": status},
        )


class StepNotSuspended(FailedPrecondition):
    reason = "STEP_NOT_SUSPENDED"

    def __init__(self, run_id: str, step: str, suspended: Sequence[str]) -> None:
        listed = ", ".join(suspended) or "none"
        super().__init__(
            f"step {step!r} of run {run_id!r} is not suspended; suspended steps: {listed}",
            metadata={"run_id": run_id, "step": step, "suspended_steps": ",".join(suspended)},
        )


class MultipleSuspendedSteps(FailedPrecondition):
    reason = "MULTIPLE_SUSPENDED_STEPS"

    def __init__(self, run_id: str, suspended: Sequence[str]) -> None:
        super().__init__(
            f"run {run_id!r} has several suspended steps ({', '.join(suspended)}); "
            "name the one to resume with `step`",
            metadata={"run_id": run_id, "suspended_steps": ",".join(suspended)},
        )


class RunActive(FailedPrecondition):
    reason = "RUN_ACTIVE"

    def __init__(self, run_id: str, status: str) -> None:
        super().__init__(
            f"run {run_id!r} is {status}; cancel it or wait for it to finish first",
            metadata={"run_id": run_id, "status": status},
        )


class Unauthenticated(ServiceError):
    reason = "UNAUTHENTICATED"


class PermissionDenied(ServiceError):
    reason = "PERMISSION_DENIED"


class Unavailable(ServiceError):
    """The server cannot serve the request now (draining); retrying elsewhere is safe."""

    reason = "SERVER_DRAINING"


class Unimplemented(ServiceError):
    reason = "UNIMPLEMENTED"


class Internal(ServiceError):
    """An unexpected failure inside the service."""

    reason = "INTERNAL"


class WorkflowDefinitionError(ValueError):
    """A workflow or step definition is wrong; raised while the author's module loads."""
