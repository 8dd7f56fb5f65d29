"""ScheduleService: list, get, pause, resume and trigger the engine's cron schedules.

The same edge as RunService: the server's interceptors (auth, limits, observability) apply,
a malformed request is INVALID_ARGUMENT (server/decoding.py), errors go through the one
status table, and tenant scoping hides a schedule whose resource id the caller may not see
(SCHEDULE_NOT_FOUND, exactly as a missing one); pause, resume and trigger need a writer.
"""

from __future__ import annotations

from typing import Any

import grpc

from runservice import errors
from runservice.engine import Engine
from runservice.engine.schedules import Triggered
from runservice.server import convert, scope
from runservice.server.decoding import add_guarded_service
from runservice.server.status import unary_errors
from runservice.storage import StoredSchedule
from runservice.v1 import schedule_service_pb2, schedule_service_pb2_grpc
from runservice.wire import set_time, set_value

SERVICE = schedule_service_pb2.DESCRIPTOR.services_by_name["ScheduleService"]
SCHEDULE_SERVICE = SERVICE.full_name

Context = grpc.aio.ServicerContext[Any, Any]

_OVERLAP = {
    "skip": schedule_service_pb2.SCHEDULE_OVERLAP_POLICY_SKIP,
    "allow": schedule_service_pb2.SCHEDULE_OVERLAP_POLICY_ALLOW,
    "buffer_one": schedule_service_pb2.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE,
}
_MISSED = {
    "skip": schedule_service_pb2.SCHEDULE_MISSED_POLICY_SKIP,
    "run_once": schedule_service_pb2.SCHEDULE_MISSED_POLICY_RUN_ONCE,
}
_OUTCOME = {
    "started": schedule_service_pb2.TRIGGER_OUTCOME_STARTED,
    "skipped": schedule_service_pb2.TRIGGER_OUTCOME_SKIPPED,
    "buffered": schedule_service_pb2.TRIGGER_OUTCOME_BUFFERED,
}


def schedule_to_proto(row: StoredSchedule) -> schedule_service_pb2.Schedule:
    """A stored schedule as a Schedule message."""
    msg = schedule_service_pb2.Schedule(
        schedule_id=row.schedule_id,
        workflow_id=row.workflow_id,
        cron=row.cron,
        timezone=row.timezone,
        resource_id=row.resource_id or "",
        overlap_policy=_OVERLAP.get(row.overlap, schedule_service_pb2.SCHEDULE_OVERLAP_POLICY_UNSPECIFIED),
        missed_policy=_MISSED.get(row.missed, schedule_service_pb2.SCHEDULE_MISSED_POLICY_UNSPECIFIED),
        description=row.description,
        paused=row.paused,
        last_run_id=row.last_run_id or "",
    )
    set_value(msg.input, row.input)
    if not row.paused:
        set_time(msg.next_tick_time, row.next_tick)
    set_time(msg.last_tick_time, row.last_tick)
    set_time(msg.pending_tick_time, row.pending_tick)
    set_time(msg.create_time, row.created_at)
    set_time(msg.update_time, row.updated_at)
    return msg


def _schedule_id(value: str) -> str:
    """The request's schedule id: required, at most an id's length."""
    checks = convert.Checks()
    checks.required("schedule_id", value)
    checks.done()
    return value


def _visible(row: StoredSchedule) -> StoredSchedule:
    """`row`, or ScheduleNotFound when it starts runs outside the caller's scope."""
    if not scope.caller().may_see(row.resource_id):
        raise errors.ScheduleNotFound(row.schedule_id)
    return row


class ScheduleServicer(schedule_service_pb2_grpc.ScheduleServiceServicer):
    """The ScheduleService of one engine; a triggered run is sent within what
    `max_message_size` (the server's send limit) lets out."""

    def __init__(self, engine: Engine, *, max_message_size: int) -> None:
        self._schedules = engine.schedules
        self._limit = convert.reply_limit(max_message_size)

    @unary_errors
    async def ListSchedules(
        self, request: schedule_service_pb2.ListSchedulesRequest, context: Context
    ) -> schedule_service_pb2.ListSchedulesResponse:
        who = scope.caller()
        rows = [
            row
            for row in await self._schedules.list()
            if (not request.workflow_id or row.workflow_id == request.workflow_id)
            and who.may_see(row.resource_id)
        ]
        return schedule_service_pb2.ListSchedulesResponse(schedules=[schedule_to_proto(r) for r in rows])

    @unary_errors
    async def GetSchedule(
        self, request: schedule_service_pb2.GetScheduleRequest, context: Context
    ) -> schedule_service_pb2.GetScheduleResponse:
        row = _visible(await self._schedules.get(_schedule_id(request.schedule_id)))
        return schedule_service_pb2.GetScheduleResponse(schedule=schedule_to_proto(row))

    @unary_errors
    async def PauseSchedule(
        self, request: schedule_service_pb2.PauseScheduleRequest, context: Context
    ) -> schedule_service_pb2.PauseScheduleResponse:
        schedule_id = _schedule_id(request.schedule_id)
        scope.check_writer("PauseSchedule")
        _visible(await self._schedules.get(schedule_id))
        row = await self._schedules.pause(schedule_id)
        return schedule_service_pb2.PauseScheduleResponse(schedule=schedule_to_proto(row))

    @unary_errors
    async def ResumeSchedule(
        self, request: schedule_service_pb2.ResumeScheduleRequest, context: Context
    ) -> schedule_service_pb2.ResumeScheduleResponse:
        schedule_id = _schedule_id(request.schedule_id)
        scope.check_writer("ResumeSchedule")
        _visible(await self._schedules.get(schedule_id))
        row = await self._schedules.resume(schedule_id)
        return schedule_service_pb2.ResumeScheduleResponse(schedule=schedule_to_proto(row))

    @unary_errors
    async def TriggerSchedule(
        self, request: schedule_service_pb2.TriggerScheduleRequest, context: Context
    ) -> schedule_service_pb2.TriggerScheduleResponse:
        checks = convert.Checks()
        schedule_id = checks.required("schedule_id", request.schedule_id)
        checks.bounded("request_id", request.request_id)
        checks.done()
        scope.check_writer("TriggerSchedule")
        _visible(await self._schedules.get(schedule_id))
        triggered = await self._schedules.trigger(schedule_id, request.request_id or None)
        return trigger_response(triggered, limit=self._limit)


def trigger_response(done: Triggered, *, limit: int) -> schedule_service_pb2.TriggerScheduleResponse:
    msg = schedule_service_pb2.TriggerScheduleResponse(
        outcome=_OUTCOME.get(done.outcome, schedule_service_pb2.TRIGGER_OUTCOME_UNSPECIFIED),
        active_run_id=done.active_run_id or "",
        schedule=schedule_to_proto(done.schedule),
    )
    set_time(msg.tick_time, done.tick)
    if done.run is not None:
        msg.run.CopyFrom(convert.run_reply(done.run, limit=limit, include_state=False))
    return msg


def add_schedule_service(
    servicer: ScheduleServicer, server: grpc.aio.Server, max_message_size: int = 0
) -> None:
    """Register ScheduleService on `server` with the same malformed-request guard as RunService."""
    add_guarded_service(servicer, server, SERVICE, schedule_service_pb2, max_message_size)


__all__ = ["SCHEDULE_SERVICE", "ScheduleServicer", "add_schedule_service", "schedule_to_proto"]
