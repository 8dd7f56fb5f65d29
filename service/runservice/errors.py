"""The one exception tree of the service.

    ServiceError                       every error a caller can see; carries a stable `reason`
    ├── InvalidArgument                malformed request or data failing its schema (violations)
    │   ├── ValidationFailed           input, initial state or resume data failed its schema
    │   ├── PayloadTooLarge            a JSON field or id over its documented limit
    │   └── RunWorkflowMismatch        the run exists but belongs to another workflow
    ├── NotFound
    │   ├── WorkflowNotFound
    │   ├── RunNotFound
    │   └── ScheduleNotFound
    ├── AlreadyExists
    │   ├── RunAlreadyStarted          a second Start of a run
    │   ├── RunBelongsToOtherWorkflow  a run id reused with another workflow, or held by another run
    │   │   └── TriggerRunIdInUse      TriggerSchedule whose derived run id another run holds
    │   ├── RunBelongsToOtherResource  a run id reused with another resource (tenant)
    │   └── RequestIdReused            a request id reused with other fields (not a retry)
    ├── FailedPrecondition
    │   ├── RunNotSuspended            Resume of a run that is not suspended
    │   ├── StepNotSuspended           Resume naming a step that is not suspended
    │   ├── MultipleSuspendedSteps     Resume without a step while several are suspended
    │   ├── ResumeLabelNotFound        Resume naming a label no suspended step registered
    │   ├── RunActive                  DeleteRun of a run that is still going
    │   ├── RunNotActive               Restart of a run that is suspended or finished
    │   ├── RunStillActive             TimeTravel / ForkRun of a running or waiting run
    │   ├── RunNotStarted              TimeTravel / ForkRun of a pending run
    │   ├── StepNotReached             TimeTravel / ForkRun from a step that never ran
    │   ├── RunDeadlineExceeded        Resume of a run whose deadline passed (the run is ended)
    │   ├── ScheduleWorkflowNotServed  TriggerSchedule on a replica that does not serve its workflow
    │   ├── ScheduleInputInvalid       a schedule's stored input fails the schema of the workflow served here
    │   ├── WorkflowVersionUnavailable the run's recorded workflow version is not served
    │   └── WorkflowDefinitionChanged  the served definition of the run's version has another graph
    ├── ResourceExhausted              a limit was reached (metadata `limit`)
    │   ├── ReplyTooLarge              the reply would exceed the send limit; ask for a smaller view
    │   ├── MessageTooLarge            a request over the message limit
    │   └── TooManyStreams             too many open Stream/Watch calls for one caller
    ├── Unauthenticated / PermissionDenied
    │   └── RunIdReserved              a scoped caller chose a run id of the form the server derives
    ├── Unavailable                    the server is draining; retry elsewhere
    │   ├── RunClaimed                 Resume or Cancel of a suspended run another drive holds; retry
    │   └── StorageUnavailable         the database could not answer; retry
    │       └── StorageFailed          the store cannot trust its disk any more; the server stops
    │           └── DatabaseFileMoved  the SQLite file was deleted or replaced under the server
    ├── DataLoss
    │   └── RunUnreadable              a stored run, step record or event that cannot be decoded
    ├── Unimplemented
    ├── DeadlineExceeded               (the clients') the call's deadline passed; also a TimeoutError
    └── Internal                       a bug; details are logged, never sent
    WorkflowDefinitionError            raised in the author's code at definition time
    StepTimeoutError, RunTimeoutError, WorkflowTimeoutError
                                       errors a timed-out step, run or nested workflow is recorded with

The server maps each branch to a gRPC status code (service/server/status.py) and the
client maps codes and reasons back (runservice/client/status.py). Nothing here knows gRPC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DOMAIN = "runservice.dev"
"""The ErrorInfo domain of every status the server sends: a status without it came from a
proxy or the transport."""


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


class PayloadTooLarge(InvalidArgument):
    """A field is larger than its documented limit (`runservice.limits`); nothing was stored."""

    reason = "PAYLOAD_TOO_LARGE"

    def __init__(self, field: str, size: int, limit: int) -> None:
        super().__init__(
            f"{field} is {size} bytes; the limit is {limit} bytes",
            metadata={"field": field, "size": str(size), "limit": str(limit)},
            violations=[FieldViolation(field, f"is {size} bytes; the limit is {limit} bytes")],
        )


class RunWorkflowMismatch(InvalidArgument):
    """The request names a workflow the run does not belong to (the run exists)."""

    reason = "RUN_WORKFLOW_MISMATCH"

    def __init__(self, run_id: str, workflow_id: str, run_workflow_id: str) -> None:
        description = f"run {run_id!r} belongs to workflow {run_workflow_id!r}, not {workflow_id!r}"
        super().__init__(
            description,
            metadata={"run_id": run_id, "workflow_id": workflow_id, "run_workflow_id": run_workflow_id},
            violations=[FieldViolation("workflow_id", description)],
        )


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


class TriggerRunIdInUse(RunBelongsToOtherWorkflow):
    """The run id a TriggerSchedule derives from (schedule id, request id) is held by a run that
    is not this trigger's (a caller made it with that id): nothing started. RUN_ID_IN_USE, as
    for a fork into a taken id: the id is in use, another request id fires. Not
    RUN_ALREADY_STARTED, a retry's answer, which would tell the caller its trigger started a
    run; never SCHEDULE_NOT_FOUND (it was, before): the schedule exists."""

    def __init__(self, schedule_id: str, run_id: str, workflow_id: str) -> None:
        AlreadyExists.__init__(
            self,
            f"schedule {schedule_id!r}: run id {run_id!r}, derived for this trigger from its request id,"
            f" is held by another run (of workflow {workflow_id!r}); trigger with another request id",
            metadata={"schedule_id": schedule_id, "run_id": run_id, "workflow_id": workflow_id},
        )


class RunBelongsToOtherResource(AlreadyExists):
    reason = "RUN_ID_OF_ANOTHER_RESOURCE"

    def __init__(self, run_id: str) -> None:
        super().__init__(
            f"run id {run_id!r} is already used by another resource",
            metadata={"run_id": run_id},
        )


class RequestIdReused(AlreadyExists):
    """A Start, Resume, TimeTravel or ForkRun carried the request id of an earlier one of the
    run, with another `field` (engine/marks.py says which count): a retry must repeat its
    request (as AWS's client tokens and Stripe's idempotency keys require); answering with the
    first outcome would tell the caller that what it sent ran when it did not."""

    reason = "REQUEST_ID_REUSED"

    def __init__(self, run_id: str, request_id: str, field: str) -> None:
        super().__init__(
            f"request id {request_id!r} was used on run {run_id!r} with another {field}: retry with"
            " the same request, or use a new request id",
            metadata={"run_id": run_id, "request_id": request_id, "field": field},
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


class RunNotActive(FailedPrecondition):
    reason = "RUN_NOT_ACTIVE"

    def __init__(self, run_id: str, status: str) -> None:
        super().__init__(
            f"run {run_id!r} is {status}; only a running or waiting run can be restarted",
            metadata={"run_id": run_id, "status": status},
        )


class RunStillActive(FailedPrecondition):
    """TimeTravel or ForkRun of a run that is running or waiting (Mastra refuses a running one)."""

    reason = "RUN_STILL_ACTIVE"

    def __init__(self, run_id: str, status: str) -> None:
        super().__init__(
            f"run {run_id!r} is still {status}; cancel it or wait for it to settle before time travel",
            metadata={"run_id": run_id, "status": status},
        )


class RunNotStarted(FailedPrecondition):
    """TimeTravel or ForkRun of a run that was never started (nothing to go back to)."""

    reason = "RUN_NOT_STARTED"

    def __init__(self, run_id: str) -> None:
        super().__init__(
            f"run {run_id!r} was never started; start it instead",
            metadata={"run_id": run_id, "status": "pending"},
        )


class StepNotReached(FailedPrecondition):
    """TimeTravel or ForkRun from a step the run never executed (it has no record to go back to)."""

    reason = "STEP_NOT_REACHED"

    def __init__(self, run_id: str, step: str) -> None:
        super().__init__(
            f"step {step!r} never ran in run {run_id!r}; time travel goes back to a step that ran",
            metadata={"run_id": run_id, "step": step},
        )


class ScheduleNotFound(NotFound):
    reason = "SCHEDULE_NOT_FOUND"

    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"schedule {schedule_id!r} not found", metadata={"schedule_id": schedule_id})


class ScheduleWorkflowNotServed(FailedPrecondition):
    reason = "SCHEDULE_WORKFLOW_NOT_SERVED"

    def __init__(self, schedule_id: str, workflow_id: str) -> None:
        super().__init__(
            f"schedule {schedule_id!r} starts workflow {workflow_id!r}, which this server does not serve",
            metadata={"schedule_id": schedule_id, "workflow_id": workflow_id},
        )


class ScheduleInputInvalid(FailedPrecondition):
    """The schedule's stored input (declared by another replica's code or configuration, say
    mid rolling deploy) fails the input schema of the workflow this server serves: no run can
    start from it here until the declarations agree."""

    reason = "SCHEDULE_INPUT_INVALID"

    def __init__(self, schedule_id: str, problem: str) -> None:
        super().__init__(problem, metadata={"schedule_id": schedule_id})


class WorkflowVersionUnavailable(FailedPrecondition):
    """The run started on a version of its workflow this server does not serve (retired,
    or not deployed here yet, or the whole workflow no longer served): nothing of it is
    driven until a server serves that version. `served_versions` is empty in the last case."""

    reason = "WORKFLOW_VERSION_UNAVAILABLE"

    def __init__(self, run_id: str, workflow_id: str, recorded: str, served: Sequence[str]) -> None:
        listed = f"served versions: {', '.join(served)}" if served else "no version of it is served"
        super().__init__(
            f"run {run_id!r} started on version {recorded!r} of workflow {workflow_id!r}, which this "
            f"server does not serve ({listed}); serve that version again to continue it",
            metadata={
                "run_id": run_id,
                "workflow_id": workflow_id,
                "recorded_version": recorded,
                "served_versions": ",".join(served),
            },
        )


class WorkflowDefinitionChanged(FailedPrecondition):
    """The served definition of the run's version has another step graph than the one the
    run started on (the code changed under the same version)."""

    reason = "WORKFLOW_DEFINITION_CHANGED"

    def __init__(
        self, run_id: str, workflow_id: str, version: str, recorded_digest: str, served_digest: str
    ) -> None:
        super().__init__(
            f"run {run_id!r} started on version {version!r} of workflow {workflow_id!r} with step graph "
            f"{recorded_digest}, but the served version {version!r} has step graph {served_digest}; "
            "serve the original definition, or give a changed graph a new version",
            metadata={
                "run_id": run_id,
                "workflow_id": workflow_id,
                "recorded_version": version,
                "served_version": version,
                "recorded_digest": recorded_digest,
                "served_digest": served_digest,
            },
        )


class ResumeLabelNotFound(FailedPrecondition):
    reason = "RESUME_LABEL_NOT_FOUND"

    def __init__(self, run_id: str, label: str, labels: Sequence[str]) -> None:
        known = ", ".join(sorted(labels)) or "none"
        super().__init__(
            f"run {run_id!r} has no suspended step with resume label {label!r}; labels: {known}",
            metadata={"run_id": run_id, "label": label},
        )


class RunDeadlineExceeded(FailedPrecondition):
    """Resume of a run whose deadline passed: the run is ended (failed with RunTimeoutError)."""

    reason = "RUN_DEADLINE_EXCEEDED"

    def __init__(self, run_id: str, deadline: str) -> None:
        super().__init__(
            f"run {run_id!r} passed its deadline ({deadline}); it ended failed with RunTimeoutError",
            metadata={"run_id": run_id, "deadline": deadline},
        )


class ResourceExhausted(ServiceError):
    """A limit of the server was reached (`metadata["limit"]`); see the subclass for whether
    the same request can succeed later."""

    reason = "RESOURCE_EXHAUSTED"


class ReplyTooLarge(ResourceExhausted):
    """The reply would be larger than the server can send; ask for a smaller view."""

    reason = "REPLY_TOO_LARGE"

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(
            f"the {what} reply would be {size} bytes, over the {limit}-byte send limit; "
            "ask for a smaller view (RUN_VIEW_WITHOUT_PAYLOADS or RUN_VIEW_SUMMARY) or a smaller page",
            metadata={"size": str(size), "limit": str(limit)},
        )


class Unauthenticated(ServiceError):
    reason = "UNAUTHENTICATED"


class PermissionDenied(ServiceError):
    reason = "PERMISSION_DENIED"


class RunIdReserved(PermissionDenied):
    """A caller scoped to resources chose a run id of the form the server derives (a version-5
    UUID: from a request id, a fork's request id, a schedule's tick or trigger). Those of
    another tenant are predictable: one taken ahead would block, or capture, its Start."""

    reason = "RUN_ID_RESERVED"

    def __init__(self, run_id: str) -> None:
        super().__init__(
            f"run id {run_id!r} has the form of the ids the server derives (a version-5 UUID):"
            " this token may not choose it",
            metadata={"run_id": run_id},
        )


class MessageTooLarge(ResourceExhausted):
    """A request larger than the server's message limit."""

    reason = "MESSAGE_TOO_LARGE"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"the request is {size} bytes, over the {limit}-byte message limit",
            metadata={"size": str(size), "limit": str(limit)},
        )


class TooManyStreams(ResourceExhausted):
    reason = "TOO_MANY_STREAMS"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"this caller already has {limit} open Stream/Watch calls (the limit); close one first",
            metadata={"limit": str(limit)},
        )


class Unavailable(ServiceError):
    """The server cannot serve the request now (draining); retrying elsewhere is safe."""

    reason = "SERVER_DRAINING"


class StreamRecycled(Unavailable):
    """A Stream or Watch open for the server's `STREAM_AGE`: ended so that long streams
    spread over the replicas as new calls do. Nothing is lost: open it again after the last
    sequence seen (the clients do)."""

    reason = "STREAM_RECYCLED"

    def __init__(self, age: float) -> None:
        super().__init__(
            f"the stream was open for {age / 60:.0f} minutes, the server's limit:"
            " open it again after the last sequence seen"
        )


class RunClaimed(Unavailable):
    """Resume or Cancel of a suspended run that another drive holds and did not let go of in
    time: the claim loop took it because its deadline (or a nested workflow's) passed. Retrying
    is safe."""

    reason = "RUN_CLAIMED"

    def __init__(self, run_id: str) -> None:
        super().__init__(
            f"run {run_id!r} is held by another drive (a deadline passed while it was suspended); retry",
            metadata={"run_id": run_id},
        )


class StorageUnavailable(Unavailable):
    """The database could not take a write or did not answer: a full disk, a failing device,
    a restart, a failover, a dropped connection. Nothing of the request is reported done;
    retrying (with its `request_id`) is safe."""

    reason = "STORAGE_UNAVAILABLE"
    detail = ""
    """What failed, for the server's log (a client rebuilding the error from its status has none)."""
    telling = "the database is unavailable ({detail}); retry"
    """The message, with `detail` in it."""

    def __init__(self, detail: str) -> None:
        super().__init__(self.telling.format(detail=detail))
        self.detail = detail


class StorageFailed(StorageUnavailable):
    """The storage device failed to sync a write to disk (an fsync's EIO). Writes committed
    without a sync since the last good one may be gone from the disk, and the kernel reports
    that only once, so the store trusts nothing more of this device: it refuses every request
    from then on and the server stops, for a restart to recover from what is really on disk.
    Retrying (with its `request_id`), against the restarted server, is safe."""

    reason = "STORAGE_FAILED"
    telling = "the database's disk failed to sync a write ({detail}); the server stops; retry"


class DatabaseFileMoved(StorageFailed):
    """The SQLite database file (or its lock file) was deleted or replaced while the server ran.
    What the server writes from then on would reach a file nobody can open again, so it saves
    what it committed next to the path and stops, like `StorageFailed` (same reason)."""

    telling = "the database file was deleted or replaced under the server ({detail}); the server stops; retry"


class DataLoss(ServiceError):
    """Stored data cannot be read back: retrying does not help."""

    reason = "DATA_LOSS"


class RunUnreadable(DataLoss):
    """A run's stored row, step record or event does not decode (changed by hand, written by
    a newer runservice, or damaged). Only that run is affected: it can still be deleted, or
    restored from a backup; the other runs read as before."""

    reason = "RUN_UNREADABLE"

    def __init__(self, run_id: str, part: str, detail: str) -> None:
        super().__init__(
            f"run {run_id!r} cannot be read: what is stored as its {part} does not decode ({detail});"
            " restore it from a backup, or delete it",
            metadata={"run_id": run_id, "part": part},
        )


class Unimplemented(ServiceError):
    reason = "UNIMPLEMENTED"


class DeadlineExceeded(ServiceError, TimeoutError):
    """The call's deadline passed before its answer came (raised by the clients, never sent by
    the server): what it asked may still have happened; retry with the same `request_id`."""

    reason = "DEADLINE_EXCEEDED"


class Internal(ServiceError):
    """An unexpected failure inside the service."""

    reason = "INTERNAL"


class WorkflowDefinitionError(ValueError):
    """A workflow or step definition is wrong; raised while the author's module loads."""


class StepTimeoutError(TimeoutError):
    """A step attempt ran past the step's `timeout`: its body was cancelled (its `finally`
    blocks ran). It counts as an attempt: the step's retries apply, each with a fresh timeout.
    A run records it as the step's error, named `StepTimeoutError` with `details`."""

    def __init__(self, step: str, seconds: float) -> None:
        super().__init__(f"step {step!r} timed out after {seconds:g}s")
        self.details: dict[str, str | float] = {
            "reason": "STEP_TIMEOUT",
            "step": step,
            "timeout_seconds": seconds,
        }


class RunTimeoutError(TimeoutError):
    """The run passed its deadline: its running steps were stopped and it ended failed.
    Recorded as the run's error, named `RunTimeoutError` with a stable `details.reason`."""

    def __init__(self, deadline: str) -> None:
        super().__init__(f"the run passed its deadline ({deadline})")
        self.details: dict[str, str] = {"reason": "RUN_DEADLINE_EXCEEDED", "deadline": deadline}


class WorkflowTimeoutError(TimeoutError):
    """A nested workflow passed its own `timeout` (counted from when it started): its running
    step was cancelled and the nested workflow failed as a step of its parent (not retried)."""

    def __init__(self, workflow: str, deadline: str) -> None:
        super().__init__(f"nested workflow {workflow!r} passed its deadline ({deadline})")
        self.details: dict[str, str] = {
            "reason": "WORKFLOW_DEADLINE_EXCEEDED",
            "workflow": workflow,
            "deadline": deadline,
        }
