"""RunService RPCs: convert the request, call the engine, convert the result.

Every handler is wrapped so a `ServiceError` (or a bug) becomes a rich gRPC status.
Streaming handlers are async generators that `yield`; they never catch
`asyncio.CancelledError` (cleanup lives in `finally`), since swallowing it leaks the
call's native state in grpc.aio.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from runservice import errors, logs, model
from runservice.engine import Engine
from runservice.engine.engine import new_trace_id
from runservice.server import convert, scope
from runservice.server.fanout import SharedReplies
from runservice.server.status import streaming_errors, unary_errors
from runservice.server.tracing import TraceRequest, Tracing, trace_request
from runservice.v1 import run_pb2, run_service_pb2, run_service_pb2_grpc

logger = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]


def _trace(
    request: run_service_pb2.StartRequest
    | run_service_pb2.ResumeRequest
    | run_service_pb2.TimeTravelRequest
    | run_service_pb2.ForkRunRequest,
    context: Context,
    field: str = "tracing_options",
) -> TraceRequest:
    """The request's tracing options (then `traceparent`), checked whether or not this server
    traces: the same request must not be valid on one server and refused on another."""
    options = request.tracing_options if request.HasField("tracing_options") else None
    return trace_request(options, context.invocation_metadata(), field=field)


MIN_HEARTBEAT = 0.05
"""Seconds: the shortest idle interval a call's deadline brings a stream's heartbeat down to."""


STREAM_AGE = 1800.0
"""Seconds a Stream or Watch stays open, give or take a tenth at random, before the server
ends it (`StreamRecycled`; the clients open it again after their last sequence). Connections
are recycled every 30 minutes so that new calls spread over the replicas, but the calls under
way finish on the old connection (app.py): long streams are ended here instead. A stream
loops at least once a heartbeat, so it ends within one of its time."""


def _recycle_at() -> float:
    """When a stream opened now ends (spread, so streams opened together do not all come back
    at once)."""
    return time.monotonic() + STREAM_AGE * random.uniform(0.9, 1.0)


async def _close(iterator: AsyncIterator[Any]) -> None:
    """Close an async generator now, so its `finally` (unsubscribe) runs at once."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


class RunServicer(run_service_pb2_grpc.RunServiceServicer):
    """The RunService of one engine. `heartbeat` is the idle interval of Stream and Watch;
    no reply is built above what `max_message_size` (the server's send limit) lets out."""

    def __init__(
        self, engine: Engine, *, heartbeat: float, max_message_size: int, tracing: Tracing | None = None
    ) -> None:
        self._engine = engine
        self._heartbeat = heartbeat
        self._tracing = tracing
        self._limit = convert.reply_limit(max_message_size)
        self._workflows: dict[str, run_pb2.Workflow] | None = None
        self._shared = SharedReplies(self._limit)

    def _heartbeat_within(self, context: Context) -> float:
        """The idle interval of a stream: the server's, or half the time the call has left
        when its deadline comes first. A follow that bounds each attempt (`attempt_timeout`)
        then hears from a live server in every attempt, so its `give_up_after` counts only
        silence, not attempts that ended before the next heartbeat was due."""
        left = context.time_remaining()
        if left is None:
            return self._heartbeat
        return max(min(self._heartbeat, left / 2), MIN_HEARTBEAT)

    def _workflow_messages(self) -> dict[str, run_pb2.Workflow]:
        # Workflows are fixed for the life of the process: convert them once.
        if self._workflows is None:
            self._workflows = {
                wf_id: convert.workflow_to_proto(
                    wf, self._engine.versions(wf_id), max_active_runs=self._engine.max_active_runs(wf_id)
                )
                for wf_id, wf in sorted(self._engine.workflows.items())
            }
        return self._workflows

    # -- workflows -----------------------------------------------------------------------------

    @unary_errors
    async def ListWorkflows(
        self, request: run_service_pb2.ListWorkflowsRequest, context: Context
    ) -> run_service_pb2.ListWorkflowsResponse:
        return convert.list_workflows_response(self._workflow_messages().values())

    @unary_errors
    async def GetWorkflow(
        self, request: run_service_pb2.GetWorkflowRequest, context: Context
    ) -> run_service_pb2.GetWorkflowResponse:
        workflow_id = convert.workflow_id(request)
        self._engine.workflow(workflow_id)  # raises WorkflowNotFound
        return convert.get_workflow_response(self._workflow_messages()[workflow_id])

    # -- lifecycle -----------------------------------------------------------------------------

    @unary_errors
    async def CreateRun(
        self, request: run_service_pb2.CreateRunRequest, context: Context
    ) -> run_service_pb2.CreateRunResponse:
        args = convert.create_args(request)
        scope.check_writer("CreateRun")
        scope.check_chosen_run_id(args["run_id"])
        await scope.check_new_run(self._engine, args["run_id"], args["resource_id"], "CreateRun")
        run, created = await self._engine.create_run(**args)
        return convert.create_run_response(run, created, limit=self._limit)

    @unary_errors
    async def Start(
        self, request: run_service_pb2.StartRequest, context: Context
    ) -> run_service_pb2.StartResponse:
        scope.check_writer("Start")
        run = await self._start(request, context, wait=request.wait)
        logger.debug(
            "run %s of %s started (%s)",
            run.run_id,
            run.workflow_id,
            run.status,
            extra=logs.run_extra(run.run_id, run.trace_id),
        )
        return convert.start_response(run, limit=self._limit, include_state=request.include_state)

    @unary_errors
    async def Resume(
        self, request: run_service_pb2.ResumeRequest, context: Context
    ) -> run_service_pb2.ResumeResponse:
        scope.check_writer("Resume")
        run = await self._resume(request, context, wait=request.wait)
        logger.debug(
            "run %s resumed (%s)", run.run_id, run.status, extra=logs.run_extra(run.run_id, run.trace_id)
        )
        return convert.resume_response(run, limit=self._limit, include_state=request.include_state)

    @unary_errors
    async def Cancel(
        self, request: run_service_pb2.CancelRequest, context: Context
    ) -> run_service_pb2.CancelResponse:
        args = convert.cancel_args(request)
        scope.check_writer("Cancel")
        born = await scope.check_run(self._engine, args["run_id"], args["workflow_id"])
        run = await self._engine.cancel(**args, born=born)
        logger.debug(
            "run %s cancel requested (%s)",
            run.run_id,
            run.status,
            extra=logs.run_extra(run.run_id, run.trace_id),
        )
        return convert.cancel_response(run, limit=self._limit)

    @unary_errors
    async def Restart(
        self, request: run_service_pb2.RestartRequest, context: Context
    ) -> run_service_pb2.RestartResponse:
        ref = convert.run_change(request)
        scope.check_writer("Restart")
        born = await scope.check_run(self._engine, ref["run_id"], ref["workflow_id"])
        run = await self._engine.restart(**ref, wait=request.wait, born=born)
        return convert.restart_response(run, limit=self._limit)

    async def _start(
        self,
        request: run_service_pb2.StartRequest,
        context: Context,
        *,
        wait: bool,
        field: str = "tracing_options",
        verb: str = "Start",
    ) -> model.Run:
        """Start with the trace id the caller asked for (options, then `traceparent`), if any."""
        args = convert.start_args(request)
        trace = _trace(request, context, field)
        scope.check_chosen_run_id(args["run_id"])
        await scope.check_new_run(self._engine, args["run_id"], args["resource_id"], verb)
        trace_id = trace.trace_id
        if self._tracing is None:
            return await self._engine.start(**args, wait=wait, trace_id=trace_id)
        trace_id = trace_id or new_trace_id()
        forget = self._tracing.expect_start(trace_id, args["run_id"], trace)
        try:
            return await self._engine.start(**args, wait=wait, trace_id=trace_id)
        except Exception:
            forget()
            raise

    async def _resume(
        self,
        request: run_service_pb2.ResumeRequest,
        context: Context,
        *,
        wait: bool,
        field: str = "tracing_options",
    ) -> model.Run:
        """Resume; its span follows the caller's tracing options or `traceparent`, if any."""
        args = convert.resume_args(request)
        trace = _trace(request, context, field)
        born = await scope.check_run(self._engine, args["run_id"], args["workflow_id"])
        if self._tracing is None:
            return await self._engine.resume(**args, wait=wait, born=born)
        forget = self._tracing.expect_resume(args["run_id"], trace)
        try:
            return await self._engine.resume(**args, wait=wait, born=born)
        except Exception:
            forget()
            raise

    # -- reads ---------------------------------------------------------------------------------

    @unary_errors
    async def GetRun(
        self, request: run_service_pb2.GetRunRequest, context: Context
    ) -> run_service_pb2.GetRunResponse:
        ref = convert.run_ref(request)
        await scope.check_run(self._engine, ref["run_id"])  # scope before the workflow it names
        run = scope.check_visible(await self._engine.get_run(**ref))
        return convert.get_run_response(
            run, limit=self._limit, include_state=request.include_state, view=request.view
        )

    @unary_errors
    async def ListRuns(
        self, request: run_service_pb2.ListRunsRequest, context: Context
    ) -> run_service_pb2.ListRunsResponse:
        args = convert.list_args(request)
        view = convert.list_view(request.view)
        args["resource_id"], resource_ids, nothing = scope.list_filter(args["resource_id"])
        if nothing:
            return convert.list_runs_response([], "", view, limit=self._limit)
        runs, next_token = await self._engine.list_runs(**args, resource_ids=resource_ids)
        return convert.list_runs_response(scope.visible(runs), next_token, view, limit=self._limit)

    @unary_errors
    async def DeleteRun(
        self, request: run_service_pb2.DeleteRunRequest, context: Context
    ) -> run_service_pb2.DeleteRunResponse:
        ref = convert.run_change(request)
        scope.check_writer("DeleteRun")
        try:
            born = await scope.check_run(self._engine, ref["run_id"], ref["workflow_id"])
        except errors.RunNotFound:
            # The scope check needs the run: a retry whose first attempt deleted it succeeds
            # (the engine tells a retry apart itself when there is no scope to check).
            request_id = ref["request_id"]
            if request_id is None or not await self._engine.deleted(ref["run_id"], request_id):
                raise
        else:
            await self._engine.delete_run(**ref, born=born)
        return convert.delete_run_response()

    # -- time travel ---------------------------------------------------------------------------

    @unary_errors
    async def TimeTravel(
        self, request: run_service_pb2.TimeTravelRequest, context: Context
    ) -> run_service_pb2.TimeTravelResponse:
        run = await self._time_travel(request, context, wait=request.wait, verb="TimeTravel")
        return convert.time_travel_response(run, limit=self._limit)

    async def _time_travel(
        self,
        request: run_service_pb2.TimeTravelRequest,
        context: Context,
        *,
        wait: bool,
        verb: str | None,
        field: str = "tracing_options",
    ) -> model.Run:
        """Time travel; `verb`: the call whose writer scope is checked (None: checked already,
        as Stream's)."""
        args = convert.time_travel_args(request)
        trace = _trace(request, context, field)
        if verb is not None:
            scope.check_writer(verb)
        born = await scope.check_run(self._engine, args["run_id"], args["workflow_id"])
        # The re-execution is traced like a resume: its WORKFLOW_START follows the time travel.
        forget = self._expect_execution(args["run_id"], trace)
        try:
            return await self._engine.time_travel(**args, wait=wait, born=born)
        except Exception:
            forget()
            raise

    @unary_errors
    async def ForkRun(
        self, request: run_service_pb2.ForkRunRequest, context: Context
    ) -> run_service_pb2.ForkRunResponse:
        args = convert.time_travel_args(request)
        new_run_id = convert.new_run_id(request)
        trace = _trace(request, context)
        scope.check_writer("ForkRun")
        scope.check_chosen_run_id(new_run_id)
        born = await scope.check_run(self._engine, args["run_id"], args["workflow_id"])
        source = scope.check_visible(await self._engine.get_run(args["run_id"]))
        fork_id = new_run_id or (
            model.fork_run_id(args["run_id"], args["request_id"])
            if args["request_id"]
            else model.time_ordered_id()
        )
        await scope.check_new_run(self._engine, fork_id, source.resource_id, "ForkRun")
        forget = self._expect_execution(fork_id, trace)
        try:
            run = await self._engine.fork(
                **args, new_run_id=fork_id, wait=request.wait, trace_id=trace.trace_id, born=born
            )
        except Exception:
            forget()
            raise
        return convert.fork_run_response(run, limit=self._limit)

    def _expect_execution(self, run_id: str, trace: TraceRequest) -> Callable[[], None]:
        """Remember the caller's tracing options for the run's next execution span."""
        if self._tracing is None:
            return lambda: None
        return self._tracing.expect_resume(run_id, trace)

    # -- streams -------------------------------------------------------------------------------

    @streaming_errors
    async def Stream(
        self, request: run_service_pb2.StreamRequest, context: Context
    ) -> AsyncIterator[run_service_pb2.StreamResponse]:
        action = convert.stream_action(request)
        scope.check_writer("Stream")
        # Start, resume or time travel first: a refused request fails with its status before any
        # message. Where this stream's execution begins. Not the run's last event as it comes
        # back: a retry's run (the request id's first outcome) and one left to the claim loop for
        # want of room come back as they are now, and the stream began mid-run, or with the end
        # alone (audit). A Start's execution is the run's first; a Resume's and a time travel's
        # are recorded (a time travel's begins at its TIME_TRAVEL event, the one before the
        # WORKFLOW_START its commit ends with).
        if action[0] == "start":
            run = await self._start(
                request.start, context, wait=False, field="start.tracing_options", verb="Stream"
            )
            after = 0
        elif action[0] == "resume":
            run = await self._resume(request.resume, context, wait=False, field="resume.tracing_options")
            began = None
            if request.resume.request_id:
                began = await self._engine.resume_began(run.run_id, request.resume.request_id)
            after = run.last_sequence - 1 if began is None else began - 1
        else:
            run = await self._time_travel(
                request.time_travel, context, wait=False, verb=None, field="time_travel.tracing_options"
            )
            began = None
            if request.time_travel.request_id:
                began = await self._engine.time_travel_began(run.run_id, request.time_travel.request_id)
            after = max(run.last_sequence - 2, 0) if began is None else began - 1
        run_id = run.run_id
        follow = self._engine.follow(
            run_id,
            after=after,
            until_settled=True,
            heartbeat=self._heartbeat_within(context),
            born=run.created_at,
        )
        recycle_at = _recycle_at()
        try:
            async for batch in follow:
                for reply in convert.stream_replies(run_id, batch, limit=self._limit):
                    yield reply
                # After the batch (the cursor covers it), unless it settled the run: the end follows.
                if time.monotonic() >= recycle_at and not (batch and batch[-1].settles_run):
                    raise errors.StreamRecycled(STREAM_AGE)
        finally:
            await _close(follow)
        end = await self._engine.get_run(run_id)
        if end.created_at != run.created_at:  # deleted, and another made under its id, meanwhile:
            raise errors.RunNotFound(run_id)  # not that one's (another tenant's) run (an audit)
        yield convert.stream_end(end, limit=self._limit)

    @streaming_errors
    async def Watch(  # type: ignore[override]  # also yields serialised messages (fanout.py)
        self, request: run_service_pb2.WatchRequest, context: Context
    ) -> AsyncIterator[run_service_pb2.WatchResponse | bytes]:
        args = convert.watch_args(request)
        run_id, after = args["run_id"], args["after_sequence"]
        born = await scope.check_run(self._engine, run_id)
        # The cursor and the drain are checked before anything is sent: a refusal came after
        # the run's message (audit). Of the run the scope was checked on (`born`).
        run = await self._engine.check_follow(run_id, after, steps=args["include_run"], born=born)
        # The highest sequence recorded for the run (proto): from the first message on, none
        # tells less than the run had when the Watch began, nor less than one told before.
        watermark = run.last_sequence
        if args["include_run"]:
            yield convert.watch_run(run, watermark, limit=self._limit)
        state: model.WorkflowState | None = None
        if args["include_workflow_state"]:
            state = await self._engine.workflow_state_at(run_id, after)
        # Many Watch streams on one run share the server's CPU: their replies are coalesced.
        # `born`: the events are of the run just read, not of one made anew under its id since.
        follow = self._engine.follow(
            run_id,
            after=after,
            until_settled=False,
            heartbeat=self._heartbeat_within(context),
            coalesce=True,
            born=run.created_at,
        )
        recycle_at = _recycle_at()
        try:
            async for batch in follow:
                states: list[model.WorkflowState] = []
                if state is not None:
                    for event in batch:
                        state = state.apply(event)
                        states.append(state)
                if batch:
                    watermark = max(watermark, batch[-1].sequence)
                # Without states, every stream of the run sends the same bytes: made once.
                shared = bool(batch) and state is None
                for reply in (
                    self._shared.replies(batch, watermark, born=run.created_at)
                    if shared
                    else convert.watch_replies(batch, states, watermark, limit=self._limit)
                ):
                    yield reply
                # After the batch (the cursor covers it), unless it ended the run: the end follows.
                if time.monotonic() >= recycle_at and not (batch and batch[-1].ends_run):
                    raise errors.StreamRecycled(STREAM_AGE)
        finally:
            await _close(follow)
        yield convert.watch_end(watermark)
