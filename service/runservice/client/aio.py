"""The asyncio client, shaped like Mastra's client-js Workflows API.

    async with Client("127.0.0.1:50051") as client:
        wf = client.get_workflow("city-weather")
        run = await wf.create_run()
        result = await run.start_async(input_data={"city": "Paris"})

Every failed call is raised as the matching `runservice.errors` exception (see `status.py`).
`follow`, `RunHandle.watch_events` and `RunHandle.watch` reopen Watch from the last sequence
seen when the stream breaks for a transient reason (UNAVAILABLE, or an end without
`end_of_stream`), with capped exponential backoff and jitter, so nothing is lost or
duplicated; any other error is raised to the caller.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from runservice import errors, model
from runservice.client import convert
from runservice.client.channel import (
    DEFAULT_RETRY,
    Credentials,
    RetryPolicy,
    call_metadata,
    channel_credentials,
    channel_options,
    checked_target,
)
from runservice.client.convert import (
    VIEWS_LARGEST_FIRST,
    RunView,
    StepRef,
    WorkflowInfo,
    event_from_proto,
    run_from_proto,
    workflow_from_proto,
)
from runservice.client.schedules import AsyncSchedules
from runservice.client.status import (
    Backoff,
    Silence,
    client_closed,
    error_from_rpc,
    error_of_call,
    gave_up,
    should_reconnect,
    stream_ended_early,
)
from runservice.model import Json
from runservice.v1 import run_service_pb2, run_service_pb2_grpc

if TYPE_CHECKING:
    from runservice.v1.run_service_pb2_grpc import RunServiceAsyncStub

logger = logging.getLogger("runservice.client")

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")

ErrorCallback = Callable[[BaseException], object]
"""Called (sync or async) with the error that ended a watch."""


class Client:
    """A connection to a RunService. Use `async with Client(target)` or call `close()`.

    `timeout` is the default deadline of unary calls that do not wait for a run (None: only
    the service config's); `credentials` turns TLS on (`grpc.ChannelCredentials` or
    `TlsFiles`); `metadata` and `token` (sent as `authorization: Bearer TOKEN`) go with every
    call; `retry` replaces the published retry policy (None: no retries) and `service_config`
    the whole published service config. `options` are gRPC channel options: one with the key of
    a default (`grpc.max_receive_message_length`, keepalive, ...) replaces it.
    """

    def __init__(
        self,
        target: str,
        *,
        timeout: float | None = 30.0,
        credentials: Credentials | None = None,
        metadata: Any = (),
        token: str | None = None,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        service_config: dict[str, Json] | None = None,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self.target = checked_target(target)
        self.timeout = timeout
        self.metadata = call_metadata(metadata, token)
        self._credentials = channel_credentials(credentials)
        self._options = channel_options(retry=retry, config=service_config, options=options, timeout=timeout)
        self._channel: grpc.aio.Channel | None = None
        self._stub: RunServiceAsyncStub | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.schedules = AsyncSchedules(self)
        """ScheduleService: list, get, pause, resume and trigger cron schedules."""

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def stub(self) -> RunServiceAsyncStub:
        """The raw aio stub (the channel is created on first use, inside the running loop)."""
        if self._closed:
            raise client_closed()
        if self._stub is None:
            if self._credentials is None:
                self._channel = grpc.aio.insecure_channel(self.target, options=self._options)
            else:
                self._channel = grpc.aio.secure_channel(self.target, self._credentials, options=self._options)
            self._stub = run_service_pb2_grpc.RunServiceStub(self._channel)
        return self._stub

    async def close(self) -> None:
        """Stop every watch this client started, then close the channel: open `follow`,
        `watch_events` and `stream` loops end quietly (the runs go on); new calls raise
        `errors.Unavailable` (reason CLIENT_CLOSED)."""
        self._closed = True
        # Not the task close() runs in (a watch's callback may close the client): it would wait
        # for itself. Its loop ends by itself on the closed channel.
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            if self._channel is not None:
                await self._channel.close()

    def closed_the_call(self) -> bool:
        """True when the CancelledError being handled came from `close()`, not from cancelling
        the current task: grpc.aio raises CancelledError in the consumer of a call whose channel
        was closed. A real cancellation (`Task.cancelling()`) is never taken for it."""
        task = asyncio.current_task()
        return self._closed and (task is None or task.cancelling() == 0)

    async def call(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[_Req, _Resp],
        request: _Req,
        *,
        wait: bool = False,
        wait_timeout: float | None = None,
    ) -> _Resp:
        """One unary call, with service errors raised as `runservice.errors` exceptions. One that
        `wait`s for a run has `wait_timeout` as its deadline (None: none), not the client's."""
        try:
            deadline = wait_timeout if wait else self.timeout
            return await method(request, timeout=deadline, metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            raise error_of_call(exc, request) from exc
        except asyncio.CancelledError:
            if self.closed_the_call():  # close() meanwhile, not a cancellation of this task
                raise client_closed() from None
            raise

    async def list_workflows(self) -> list[WorkflowInfo]:
        """Every workflow the server runs, sorted by id."""
        response = await self.call(self.stub.ListWorkflows, run_service_pb2.ListWorkflowsRequest())
        return [workflow_from_proto(wf) for wf in response.workflows]

    def get_workflow(self, workflow_id: str) -> WorkflowHandle:
        """A handle on one workflow (no call is made yet)."""
        return WorkflowHandle(self, workflow_id)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def follow(
        self,
        run_id: str,
        after_sequence: int = 0,
        *,
        until_settled: bool = False,
        attempt_timeout: float | None = None,
        give_up_after: float | None = None,
    ) -> AsyncIterator[model.Event]:
        """Events of a run after `after_sequence`, reopening Watch from the last one seen.

        Ends at the server's end of stream (the run is terminal) or, with `until_settled`,
        after the first finish event (terminal or suspended). Reconnects on UNAVAILABLE, on an
        end without `end_of_stream` and, when `attempt_timeout` bounds each attempt, on
        DEADLINE_EXCEEDED; raises the mapped error on anything else. With `give_up_after`,
        raises errors.Unavailable (`WATCH_GAVE_UP`, with the last sequence) once that many
        seconds passed with no message (heartbeats count), in an open attempt or between
        attempts, rather than wait or reconnect again.
        """
        last = after_sequence
        backoff = Backoff()
        silence = None if give_up_after is None else Silence(give_up_after)
        while True:
            request = run_service_pb2.WatchRequest(run_id=run_id, after_sequence=last)
            call = self.stub.Watch(request, timeout=attempt_timeout, metadata=self.metadata)
            responses = aiter(call)
            ended = False
            try:
                while True:
                    try:
                        # A server that hangs (connection up, nothing answers) holds a read until
                        # keepalive gives up on the connection, ~40 s: bound it by the silence left.
                        async with asyncio.timeout(None if silence is None else silence.left()):
                            response = await anext(responses)
                    except StopAsyncIteration:
                        break
                    except TimeoutError:
                        assert silence is not None  # the read's only deadline
                        raise gave_up(run_id, last, silence.limit, "was silent") from None
                    if silence is not None:
                        silence.heard()
                    if ended:
                        break  # nothing comes after the end: a server that sent more is not followed
                    backoff.reset()
                    for msg in response.events:
                        if msg.sequence <= last:
                            continue  # already delivered before a reconnect
                        last = msg.sequence
                        event = event_from_proto(msg)
                        if event is None:
                            continue
                        yield event
                        if until_settled and event.settles_run:
                            return
                    # Read on to the call's own end (OK, at once): cancelling it here instead
                    # made every watch that ended normally a CANCELLED call on the server.
                    ended = response.end_of_stream
                    if silence is not None:
                        silence.listening()
                if ended:
                    return
                why = "ended without end_of_stream"
            except grpc.aio.AioRpcError as exc:
                if ended:
                    return  # the run's end was seen: how the call then ended changes nothing
                if self._closed or not should_reconnect(exc, attempt_deadline=attempt_timeout is not None):
                    raise error_from_rpc(exc) from exc
                why = f"ended with {exc.code().name}"
            except asyncio.CancelledError:
                if self.closed_the_call():
                    return  # close() ended the watch: a quiet end, as the sync client's
                raise
            finally:
                call.cancel()
            delay = backoff.next_delay()
            if silence is not None:
                delay = min(delay, max(silence.left(), 0.0))  # awake in time to give up
            logger.info("watch of run %s %s; resuming after %d in %.2fs", run_id, why, last, delay)
            await asyncio.sleep(delay)
            if self._closed:
                return  # closed while waiting to reopen: as above
            if silence is not None and silence.left() <= 0:
                raise gave_up(run_id, last, silence.limit, why)


class WorkflowHandle:
    """One workflow of a server (Mastra's `client.getWorkflow(id)`)."""

    def __init__(self, client: Client, workflow_id: str) -> None:
        self.client = client
        self.workflow_id = workflow_id

    async def details(self) -> WorkflowInfo:
        """Steps, step graph and schemas."""
        request = run_service_pb2.GetWorkflowRequest(workflow_id=self.workflow_id)
        response = await self.client.call(self.client.stub.GetWorkflow, request)
        return workflow_from_proto(response.workflow)

    async def create_run(self, run_id: str | None = None, resource_id: str | None = None) -> RunHandle:
        """Reserve a run (or get the existing one with this id)."""
        request = convert.create_run_request(self.workflow_id, run_id, resource_id)
        response = await self.client.call(self.client.stub.CreateRun, request)
        handle = RunHandle(self.client, self.workflow_id, response.run.run_id, resource_id=resource_id)
        handle.last_run = run_from_proto(response.run)
        return handle

    async def run_execution_result(
        self, run_id: str, *, include_state: bool = False, view: RunView = "full"
    ) -> model.Run:
        """The run with its status, result or error and every step record. `view`
        "without_payloads" leaves out the step records' JSON, "summary" the records, input,
        result and state: a run too large for one reply (`errors.ReplyTooLarge`) reads so
        (`largest_view` picks the largest that fits)."""
        request = convert.get_run_request(self.workflow_id, run_id, include_state=include_state, view=view)
        response = await self.client.call(self.client.stub.GetRun, request)
        return run_from_proto(response.run)

    async def run_by_id(self, run_id: str, *, view: RunView = "full") -> model.Run:
        """The run (same as `run_execution_result`)."""
        return await self.run_execution_result(run_id, view=view)

    async def largest_view(self, run_id: str, *, include_state: bool = False) -> tuple[model.Run, RunView]:
        """The run in the largest view that fits in one reply, and that view: "full", else
        "without_payloads", else "summary" (five steps that pass 1 MiB on make 10 MiB). What
        fits is the smaller of the server's and this client's message limits."""
        for view in VIEWS_LARGEST_FIRST[:-1]:
            try:
                return await self.run_execution_result(run_id, include_state=include_state, view=view), view
            except errors.ResourceExhausted:  # the server's REPLY_TOO_LARGE, or over this client's limit
                continue
        return await self.run_execution_result(run_id, include_state=include_state, view="summary"), "summary"

    async def delete_run_by_id(self, run_id: str, *, request_id: str | None = None) -> None:
        """Delete a run that is not running, with its events.

        The request carries a `request_id` (yours, or a fresh UUID): a retry after a lost
        reply succeeds instead of finding the run gone.
        """
        request = run_service_pb2.DeleteRunRequest(
            workflow_id=self.workflow_id, run_id=run_id, request_id=convert.ensure_request_id(request_id)
        )
        await self.client.call(self.client.stub.DeleteRun, request)

    async def runs(
        self,
        *,
        status: model.RunStatus | str | Iterable[model.RunStatus | str] | None = None,
        resource_id: str | None = None,
        from_time: float | dt.datetime | None = None,
        to_time: float | dt.datetime | None = None,
        page_size: int = 0,
        page_token: str = "",
        full: bool = False,
        forked_from: str | None = None,
        version: str | None = None,
    ) -> tuple[list[model.Run], str]:
        """Runs of this workflow, newest first, and the next page token ("" on the last page).

        Runs are summaries (no input, result or request context) unless `full` is true;
        `forked_from` lists only the forks of that run;
        `version` keeps only runs that started on that version of the workflow."""
        request = convert.list_runs_request(
            self.workflow_id,
            status=status,
            resource_id=resource_id,
            from_time=from_time,
            to_time=to_time,
            page_size=page_size,
            page_token=page_token,
            full=full,
            forked_from=forked_from,
            version=version,
        )
        response = await self.client.call(self.client.stub.ListRuns, request)
        return [run_from_proto(run) for run in response.runs], response.next_page_token


class WatchHandle:
    """A watch running in the background. Call it (or `stop()`) to stop watching.

    `await wait()` returns when the run is terminal or the watch was stopped, and raises the
    error that ended it otherwise (a service error, or the callback's own exception).
    """

    def __init__(self, task: asyncio.Task[None]) -> None:
        self.task = task

    def __call__(self) -> None:
        self.stop()

    def stop(self) -> None:
        self.task.cancel()

    @property
    def done(self) -> bool:
        return self.task.done()

    def error(self) -> BaseException | None:
        """The error that ended the watch, once it is done (None: finished or stopped)."""
        if not self.task.done() or self.task.cancelled():
            return None
        return self.task.exception()

    async def wait(self) -> None:
        await asyncio.wait({self.task})
        failure = self.error()
        if failure is not None:
            raise failure


async def _maybe_await(result: object) -> None:
    if inspect.isawaitable(result):
        await result


class RunHandle(convert.RunRequests):
    """One run (Mastra's `workflow.createRun()` result). `last_run` is the latest run seen.

    Start, Resume, Cancel and Restart always carry a `request_id` (yours, or a fresh UUID), so
    the client's retries on UNAVAILABLE return the first outcome instead of acting twice.
    """

    def __init__(
        self, client: Client, workflow_id: str, run_id: str, *, resource_id: str | None = None
    ) -> None:
        super().__init__(workflow_id, run_id, resource_id)
        self.client = client

    async def start(
        self,
        input_data: Any = None,
        *,
        initial_state: Any = None,
        request_context: dict[str, Any] | None = None,
        request_id: str | None = None,
        run_timeout: float | dt.timedelta | None = None,
        include_state: bool = False,
    ) -> model.Run:
        """Start the run and return at once (Mastra `start`).

        `run_timeout` (seconds or a timedelta) bounds the run: its deadline is the start time plus
        the shorter of it and the workflow's timeout. `include_state` returns the run's state."""
        request = self._start_request(
            input_data, initial_state, request_context, request_id, False, run_timeout, include_state
        )
        return self._keep((await self.client.call(self.client.stub.Start, request)).run)

    async def start_async(
        self,
        input_data: Any = None,
        *,
        initial_state: Any = None,
        request_context: dict[str, Any] | None = None,
        request_id: str | None = None,
        run_timeout: float | dt.timedelta | None = None,
        include_state: bool = False,
        wait_timeout: float | None = None,
    ) -> model.Run:
        """Start the run and return once it is terminal or suspended (Mastra `startAsync`).

        `run_timeout` and `include_state` as for `start`. `wait_timeout` (seconds) bounds the
        wait (errors.DeadlineExceeded; the run goes on, and a retry with the same `request_id`
        answers with it); None: as long as the run takes."""
        request = self._start_request(
            input_data, initial_state, request_context, request_id, True, run_timeout, include_state
        )
        called = await self.client.call(self.client.stub.Start, request, wait=True, wait_timeout=wait_timeout)
        return self._keep(called.run)

    async def resume(
        self,
        resume_data: Any = None,
        *,
        step: StepRef | Sequence[StepRef] | None = None,
        label: str | None = None,
        for_each_index: int | None = None,
        request_context: dict[str, Any] | None = None,
        request_id: str | None = None,
        include_state: bool = False,
    ) -> model.Run:
        """Resume a suspended step and return at once (Mastra `resume`)."""
        request = self._resume_request(
            resume_data, step, label, for_each_index, request_context, request_id, False, include_state
        )
        return self._keep((await self.client.call(self.client.stub.Resume, request)).run)

    async def resume_async(
        self,
        resume_data: Any = None,
        *,
        step: StepRef | Sequence[StepRef] | None = None,
        label: str | None = None,
        for_each_index: int | None = None,
        request_context: dict[str, Any] | None = None,
        request_id: str | None = None,
        include_state: bool = False,
        wait_timeout: float | None = None,
    ) -> model.Run:
        """Resume and return once the run is terminal or suspended again (Mastra `resumeAsync`).

        `wait_timeout` as for `start_async`."""
        request = self._resume_request(
            resume_data, step, label, for_each_index, request_context, request_id, True, include_state
        )
        called = await self.client.call(
            self.client.stub.Resume, request, wait=True, wait_timeout=wait_timeout
        )
        return self._keep(called.run)

    async def cancel(self, *, request_id: str | None = None) -> model.Run:
        """Cancel the run; a finished run comes back unchanged."""
        request = run_service_pb2.CancelRequest(
            workflow_id=self.workflow_id, run_id=self.run_id, request_id=convert.ensure_request_id(request_id)
        )
        return self._keep((await self.client.call(self.client.stub.Cancel, request)).run)

    async def time_travel(
        self,
        step: StepRef | Sequence[StepRef],
        input_data: Any = None,
        *,
        resume_data: Any = None,
        initial_state: Any = None,
        request_context: dict[str, Any] | None = None,
        request_id: str | None = None,
        wait: bool = False,
        wait_timeout: float | None = None,
    ) -> model.Run:
        """Re-execute this settled run from `step` (a dotted id or a path) with `input_data`
        (None: the input the step ran with); with `wait`, return once it settles again
        (Mastra `timeTravel` / `timeTravelAsync`). The earlier outcome stays in the run's events.
        With `resume_data` the step runs as resumed with it (Mastra's `resumeData`).
        `wait_timeout` bounds a `wait`, as for `start_async`."""
        request = self._time_travel_request(
            step, input_data, resume_data, initial_state, request_context, request_id, wait
        )
        called = await self.client.call(
            self.client.stub.TimeTravel, request, wait=wait, wait_timeout=wait_timeout
        )
        return self._keep(called.run)

    async def fork(
        self,
        step: StepRef | Sequence[StepRef],
        input_data: Any = None,
        *,
        resume_data: Any = None,
        new_run_id: str | None = None,
        initial_state: Any = None,
        request_context: dict[str, Any] | None = None,
        request_id: str | None = None,
        wait: bool = False,
        wait_timeout: float | None = None,
    ) -> model.Run:
        """Fork this settled run from `step` into a new run (`new_run_id`, or generated),
        leaving this one untouched; returns the new run (its `forked_from` names this one).
        `resume_data` as for `time_travel`. `wait_timeout` bounds a `wait`, as for `start_async`."""
        request = convert.fork_run_request(
            self.workflow_id,
            self.run_id,
            new_run_id=new_run_id,
            step=step,
            input_data=input_data,
            initial_state=initial_state,
            request_context=request_context,
            request_id=request_id,
            wait=wait,
            resume_data=resume_data,
        )
        called = await self.client.call(
            self.client.stub.ForkRun, request, wait=wait, wait_timeout=wait_timeout
        )
        return run_from_proto(called.run)

    async def restart(
        self, *, wait: bool = False, request_id: str | None = None, wait_timeout: float | None = None
    ) -> model.Run:
        """Re-drive a run that was running when its server died (its retries re-drive nothing).
        `wait_timeout` bounds a `wait`, as for `start_async`."""
        request = run_service_pb2.RestartRequest(
            workflow_id=self.workflow_id,
            run_id=self.run_id,
            wait=wait,
            request_id=convert.ensure_request_id(request_id),
        )
        called = await self.client.call(
            self.client.stub.Restart, request, wait=wait, wait_timeout=wait_timeout
        )
        return self._keep(called.run)

    async def stream(
        self,
        input_data: Any = None,
        *,
        initial_state: Any = None,
        request_context: dict[str, Any] | None = None,
        request_id: str | None = None,
        run_timeout: float | dt.timedelta | None = None,
    ) -> AsyncIterator[model.Event]:
        """Start the run and yield its events until it is terminal or suspended (`last_run` is then set)."""
        start = self._start_request(
            input_data, initial_state, request_context, request_id, False, run_timeout
        )
        async for event in self._stream(run_service_pb2.StreamRequest(start=start)):
            yield event

    async def resume_stream(
        self,
        resume_data: Any = None,
        *,
        step: StepRef | Sequence[StepRef] | None = None,
        label: str | None = None,
        for_each_index: int | None = None,
        request_context: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> AsyncIterator[model.Event]:
        """Resume the run and yield its events until it is terminal or suspended again."""
        resume = self._resume_request(
            resume_data, step, label, for_each_index, request_context, request_id, False
        )
        async for event in self._stream(run_service_pb2.StreamRequest(resume=resume)):
            yield event

    async def time_travel_stream(
        self,
        step: StepRef | Sequence[StepRef],
        input_data: Any = None,
        *,
        resume_data: Any = None,
        initial_state: Any = None,
        request_context: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> AsyncIterator[model.Event]:
        """Time travel this settled run as `time_travel` does and yield the events of the
        re-execution, from its TIME_TRAVEL event until it is terminal or suspended again
        (Mastra `timeTravelStream`; `last_run` is then set)."""
        request = self._time_travel_request(
            step, input_data, resume_data, initial_state, request_context, request_id, False
        )
        async for event in self._stream(run_service_pb2.StreamRequest(time_travel=request)):
            yield event

    async def _stream(self, request: run_service_pb2.StreamRequest) -> AsyncIterator[model.Event]:
        last = 0
        settled = False
        call = self.client.stub.Stream(request, metadata=self.client.metadata)
        ended = False
        try:
            async for response in call:
                if ended:
                    break  # nothing comes after the end
                for msg in response.events:
                    last = max(last, msg.sequence)
                    event = event_from_proto(msg)
                    if event is not None:
                        settled = settled or event.settles_run
                        yield event
                if response.end_of_stream:  # read on to the call's own end (see `Client.follow`)
                    self._keep(response.run)
                    ended = True
            if ended:
                return
        except grpc.aio.AioRpcError as exc:
            if ended:
                return
            # Before the first event we cannot tell whether the start happened: report it.
            if last == 0 or not should_reconnect(exc, attempt_deadline=False):
                raise error_of_call(exc, request) from exc
            logger.info(
                "stream of run %s ended with %s; following after %d", self.run_id, exc.code().name, last
            )
        except asyncio.CancelledError:
            if self.client.closed_the_call():
                return  # close() ended the stream (the run goes on): a quiet end
            raise
        finally:
            call.cancel()
        if last == 0:
            raise stream_ended_early(self.run_id, request)
        # The stream broke after the run started: follow the rest of it with Watch.
        if not settled:
            async for event in self.client.follow(self.run_id, last, until_settled=True):
                yield event
        # As large as fits: a run too large for one reply still streamed every event (an audit).
        self.last_run, _ = await WorkflowHandle(self.client, self.workflow_id).largest_view(self.run_id)

    def watch_events(
        self, after_sequence: int = 0, *, attempt_timeout: float | None = None
    ) -> AsyncIterator[model.Event]:
        """Every event after `after_sequence` until the run is terminal, across suspend and resume."""
        return self.client.follow(self.run_id, after_sequence, attempt_timeout=attempt_timeout)

    def watch(
        self,
        callback: Callable[[model.Event], object],
        *,
        after_sequence: int = 0,
        on_error: ErrorCallback | None = None,
    ) -> WatchHandle:
        """Call `callback(event)` (sync or async) for each event in a background task.

        The watch ends when the run is terminal, when you stop it (call the returned handle)
        or close the client, or on the first error: a service error that is not transient, or
        an exception raised by `callback`. That error is passed to `on_error` (sync or async)
        and raised by `await handle.wait()`; with no `on_error` it is also logged.
        """

        async def run() -> None:
            async for event in self.watch_events(after_sequence):
                await _maybe_await(callback(event))

        async def guarded() -> None:
            try:
                await run()
            except Exception as exc:
                if on_error is not None:
                    await _maybe_await(on_error(exc))
                else:
                    logger.warning("watch of run %s stopped: %r", self.run_id, exc)
                raise

        task = self.client._spawn(guarded())
        task.add_done_callback(_retrieve)
        return WatchHandle(task)


def _retrieve(task: asyncio.Task[None]) -> None:
    # The error was handed to on_error or logged, and `wait()` raises it again: do not let
    # asyncio also report "exception was never retrieved".
    if not task.cancelled():
        task.exception()


__all__ = ["Client", "RunHandle", "WatchHandle", "WorkflowHandle"]
