"""ScheduleService from Python: `client.schedules` on `Client` (async) and `SyncClient`.

    async with Client(target) as client:
        for schedule in await client.schedules.list():
            print(schedule.schedule_id, schedule.next_tick)
        fired = await client.schedules.trigger("nightly-report")

Errors are the `runservice.errors` exceptions of every other call (an unknown schedule is
`ScheduleNotFound`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runservice import model
from runservice.client.convert import ensure_request_id, run_from_proto
from runservice.model import Json
from runservice.v1 import schedule_service_pb2, schedule_service_pb2_grpc
from runservice.wire import from_value, read_time

if TYPE_CHECKING:
    from runservice.client.aio import Client
    from runservice.client.sync import SyncClient

_OVERLAP = {
    schedule_service_pb2.SCHEDULE_OVERLAP_POLICY_SKIP: "skip",
    schedule_service_pb2.SCHEDULE_OVERLAP_POLICY_ALLOW: "allow",
    schedule_service_pb2.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE: "buffer_one",
}
_MISSED = {
    schedule_service_pb2.SCHEDULE_MISSED_POLICY_SKIP: "skip",
    schedule_service_pb2.SCHEDULE_MISSED_POLICY_RUN_ONCE: "run_once",
}
_OUTCOME = {
    schedule_service_pb2.TRIGGER_OUTCOME_STARTED: "started",
    schedule_service_pb2.TRIGGER_OUTCOME_SKIPPED: "skipped",
    schedule_service_pb2.TRIGGER_OUTCOME_BUFFERED: "buffered",
}


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A schedule as the server reports it; times are seconds since the epoch (None: unset)."""

    schedule_id: str
    workflow_id: str
    cron: str
    timezone: str
    input: Json
    resource_id: str | None
    overlap: str
    """skip, allow or buffer_one."""
    missed: str
    """skip or run_once."""
    description: str
    paused: bool
    next_tick: float | None
    last_tick: float | None
    pending_tick: float | None
    last_run_id: str | None
    created_at: float | None
    updated_at: float | None

    def to_json(self) -> dict[str, Json]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class TriggerResult:
    """What TriggerSchedule did: `outcome` is started (see `run`), skipped or buffered (see
    `active_run_id`, the run still going)."""

    outcome: str
    tick: float | None
    schedule: ScheduleInfo
    run: model.Run | None
    active_run_id: str | None


def schedule_from_proto(msg: schedule_service_pb2.Schedule) -> ScheduleInfo:
    return ScheduleInfo(
        schedule_id=msg.schedule_id,
        workflow_id=msg.workflow_id,
        cron=msg.cron,
        timezone=msg.timezone,
        input=from_value(msg.input) if msg.HasField("input") else None,
        resource_id=msg.resource_id or None,
        overlap=_OVERLAP.get(msg.overlap_policy, "unspecified"),
        missed=_MISSED.get(msg.missed_policy, "unspecified"),
        description=msg.description,
        paused=msg.paused,
        next_tick=read_time(msg, "next_tick_time"),
        last_tick=read_time(msg, "last_tick_time"),
        pending_tick=read_time(msg, "pending_tick_time"),
        last_run_id=msg.last_run_id or None,
        created_at=read_time(msg, "create_time"),
        updated_at=read_time(msg, "update_time"),
    )


def trigger_from_proto(msg: schedule_service_pb2.TriggerScheduleResponse) -> TriggerResult:
    return TriggerResult(
        outcome=_OUTCOME.get(msg.outcome, "unspecified"),
        tick=read_time(msg, "tick_time"),
        schedule=schedule_from_proto(msg.schedule),
        run=run_from_proto(msg.run) if msg.HasField("run") else None,
        active_run_id=msg.active_run_id or None,
    )


class AsyncSchedules:
    """ScheduleService calls of an async `Client` (`client.schedules`)."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._stub: Any = None

    @property
    def stub(self) -> Any:
        """The raw aio ScheduleService stub, on the client's channel."""
        self._client.stub  # noqa: B018 (opens the channel inside the running loop)
        if self._stub is None:
            self._stub = schedule_service_pb2_grpc.ScheduleServiceStub(self._client._channel)  # type: ignore[arg-type]
        return self._stub

    async def list(self, workflow_id: str = "") -> list[ScheduleInfo]:
        """Every schedule (of `workflow_id`, if given), sorted by id."""
        request = schedule_service_pb2.ListSchedulesRequest(workflow_id=workflow_id)
        response = await self._client.call(self.stub.ListSchedules, request)
        return [schedule_from_proto(s) for s in response.schedules]

    async def get(self, schedule_id: str) -> ScheduleInfo:
        """One schedule, or ScheduleNotFound."""
        request = schedule_service_pb2.GetScheduleRequest(schedule_id=schedule_id)
        return schedule_from_proto((await self._client.call(self.stub.GetSchedule, request)).schedule)

    async def pause(self, schedule_id: str) -> ScheduleInfo:
        """Pause a schedule: no tick fires until `resume`."""
        request = schedule_service_pb2.PauseScheduleRequest(schedule_id=schedule_id)
        return schedule_from_proto((await self._client.call(self.stub.PauseSchedule, request)).schedule)

    async def resume(self, schedule_id: str) -> ScheduleInfo:
        """Resume a schedule from its next tick after now."""
        request = schedule_service_pb2.ResumeScheduleRequest(schedule_id=schedule_id)
        return schedule_from_proto((await self._client.call(self.stub.ResumeSchedule, request)).schedule)

    async def trigger(self, schedule_id: str, *, request_id: str | None = None) -> TriggerResult:
        """Fire a schedule now, under its overlap policy. `request_id` (a fresh one if None, so
        the channel's retries are safe) makes a retry return the first outcome."""
        request = schedule_service_pb2.TriggerScheduleRequest(
            schedule_id=schedule_id, request_id=ensure_request_id(request_id)
        )
        return trigger_from_proto(await self._client.call(self.stub.TriggerSchedule, request))


class SyncSchedules:
    """ScheduleService calls of a `SyncClient` (`client.schedules`)."""

    def __init__(self, client: SyncClient) -> None:
        self._client = client
        self.stub = schedule_service_pb2_grpc.ScheduleServiceStub(client.channel)

    def list(self, workflow_id: str = "") -> list[ScheduleInfo]:
        """Every schedule (of `workflow_id`, if given), sorted by id."""
        request = schedule_service_pb2.ListSchedulesRequest(workflow_id=workflow_id)
        return [schedule_from_proto(s) for s in self._client.call(self.stub.ListSchedules, request).schedules]

    def get(self, schedule_id: str) -> ScheduleInfo:
        """One schedule, or ScheduleNotFound."""
        request = schedule_service_pb2.GetScheduleRequest(schedule_id=schedule_id)
        return schedule_from_proto(self._client.call(self.stub.GetSchedule, request).schedule)

    def pause(self, schedule_id: str) -> ScheduleInfo:
        """Pause a schedule: no tick fires until `resume`."""
        request = schedule_service_pb2.PauseScheduleRequest(schedule_id=schedule_id)
        return schedule_from_proto(self._client.call(self.stub.PauseSchedule, request).schedule)

    def resume(self, schedule_id: str) -> ScheduleInfo:
        """Resume a schedule from its next tick after now."""
        request = schedule_service_pb2.ResumeScheduleRequest(schedule_id=schedule_id)
        return schedule_from_proto(self._client.call(self.stub.ResumeSchedule, request).schedule)

    def trigger(self, schedule_id: str, *, request_id: str | None = None) -> TriggerResult:
        """Fire a schedule now, under its overlap policy. `request_id` (a fresh one if None, so
        the channel's retries are safe) makes a retry return the first outcome."""
        request = schedule_service_pb2.TriggerScheduleRequest(
            schedule_id=schedule_id, request_id=ensure_request_id(request_id)
        )
        return trigger_from_proto(self._client.call(self.stub.TriggerSchedule, request))


__all__ = ["AsyncSchedules", "ScheduleInfo", "SyncSchedules", "TriggerResult", "schedule_from_proto"]
