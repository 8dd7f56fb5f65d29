"""The synchronous client: the async client's methods on a plain `grpc` channel, no event loop.

For Django, Flask, scripts and notebooks:

    with SyncClient("127.0.0.1:50051") as client:
        run = client.get_workflow("city-weather").create_run()
        result = run.start_async(input_data={"city": "Paris"})

Same arguments, same results (`model.Run`, `model.Event`), same `runservice.errors`
exceptions and the same reconnecting Watch as `runservice.client.Client`. A `SyncClient` may
be shared by threads (a grpc channel is thread-safe); `watch()` calls its callback on a
background thread.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar, cast

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
from runservice.client.schedules import SyncSchedules
from runservice.client.status import (
    Backoff,
    FailedCall,
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

logger = logging.getLogger("runservice.client")

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")
_T = TypeVar("_T")


def _mapped(exc: grpc.RpcError) -> errors.ServiceError:
    # A failed sync call raises an object that is both grpc.RpcError and grpc.Call.
    return error_from_rpc(cast(FailedCall, exc))


class SyncClient:
    """A blocking connection to a RunService. Use `with SyncClient(target)` or call `close()`.

    Takes the arguments of `Client` (timeout, credentials, metadata, token, retry,
    service_config, options), or an open `channel` instead of a target.
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        timeout: float | None = 30.0,
        credentials: Credentials | None = None,
        metadata: Any = (),
        token: str | None = None,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        service_config: dict[str, Json] | None = None,
        options: Sequence[tuple[str, Any]] = (),
        channel: grpc.Channel | None = None,
    ) -> None:
        if (target is None) == (channel is None):
            raise ValueError("give a target or a channel")
        self.target = None if target is None else checked_target(target)
        self.timeout = timeout
        self.metadata = call_metadata(metadata, token)
        if channel is None:
            assert target is not None
            opts = channel_options(retry=retry, config=service_config, options=options, timeout=timeout)
            secure = channel_credentials(credentials)
            if secure is None:
                channel = grpc.insecure_channel(target, options=opts)
            else:
                channel = grpc.secure_channel(target, secure, options=opts)
            self._owns_channel = True
        else:
            self._owns_channel = False
        self.channel: grpc.Channel = channel
        self.stub = run_service_pb2_grpc.RunServiceStub(channel)
        self.schedules = SyncSchedules(self)
        """ScheduleService: list, get, pause, resume and trigger cron schedules."""
        self._watches: set[SyncWatchHandle] = set()
        self._follows: set[_Follow | _StreamCall] = set()
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """End every watch and follow of this client, then close the channel (if it opened it):
        open `follow`, `watch_events` and `stream` loops end quietly (the runs go on); new calls
        raise `errors.Unavailable` (reason CLIENT_CLOSED)."""
        self._closed = True
        with self._lock:
            watches, follows = list(self._watches), list(self._follows)
        try:
            for follow in follows:
                follow.stop()
            for watch in watches:
                if not watch.in_its_thread():  # a watch's callback may close the client
                    watch.join(5.0)
        finally:
            if self._owns_channel:
                self.channel.close()

    def call(
        self,
        method: grpc.UnaryUnaryMultiCallable[_Req, _Resp],
        request: _Req,
        *,
        wait: bool = False,
        wait_timeout: float | None = None,
    ) -> _Resp:
        """One unary call, with service errors raised as `runservice.errors` exceptions. One that
        `wait`s for a run has `wait_timeout` as its deadline (None: none), not the client's."""
        try:
            return self._invoke(method, request, timeout=wait_timeout if wait else self.timeout)
        except grpc.RpcError as exc:
            if self._closed and cast(FailedCall, exc).code() is grpc.StatusCode.CANCELLED:
                # close() on another thread closed the channel under it
                raise client_closed() from exc
            raise error_of_call(cast(FailedCall, exc), request) from exc

    def _check_open(self) -> None:
        if self._closed:
            raise client_closed()

    def _invoke(self, method: Callable[..., _T], request: object, *, timeout: float | None = None) -> _T:
        """`method(request)` with this client's metadata: every call and stream is made here.

        A close() on another thread may come after the check and before the call: grpc then
        refuses the call on the closed channel with a bare ValueError, which is CLIENT_CLOSED
        to the caller, as for a call made after it."""
        self._check_open()
        try:
            return method(request, timeout=timeout, metadata=self.metadata)
        except ValueError as exc:
            if self._closed:
                raise client_closed() from exc
            raise

    def list_workflows(self) -> list[WorkflowInfo]:
        """Every workflow the server runs, sorted by id."""
        response = self.call(self.stub.ListWorkflows, run_service_pb2.ListWorkflowsRequest())
        return [workflow_from_proto(wf) for wf in response.workflows]

    def get_workflow(self, workflow_id: str) -> SyncWorkflowHandle:
        """A handle on one workflow (no call is made yet)."""
        return SyncWorkflowHandle(self, workflow_id)

    def follow(
        self,
        run_id: str,
        after_sequence: int = 0,
        *,
        until_settled: bool = False,
        attempt_timeout: float | None = None,
        give_up_after: float | None = None,
    ) -> Iterator[model.Event]:
        """Events of a run after `after_sequence`, reopening Watch from the last one seen.

        Same rules as `Client.follow`. Leaving the loop early closes the stream.
        """
        follow = _Follow(self, run_id, after_sequence, until_settled, attempt_timeout, give_up_after)
        return follow.events()

    def _register(self, item: SyncWatchHandle | _Follow | _StreamCall, add: bool) -> None:
        with self._lock:
            found: set[Any] = self._watches if isinstance(item, SyncWatchHandle) else self._follows
            if add:
                found.add(item)
            else:
                found.discard(item)


class _StreamCall:
    """An open Stream call, so that `close()` ends it also on a channel the client does not
    own (closing its own channel cancels its calls; one given to it stays open)."""

    def __init__(self, call: grpc.Call) -> None:
        self._call = call

    def stop(self) -> None:
        self._call.cancel()


class _Follow:
    """One reconnecting Watch; `stop()` (from any thread) ends it quietly."""

    def __init__(
        self,
        client: SyncClient,
        run_id: str,
        after_sequence: int,
        until_settled: bool,
        attempt_timeout: float | None,
        give_up_after: float | None = None,
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.last = after_sequence
        self.until_settled = until_settled
        self.attempt_timeout = attempt_timeout
        self.give_up_after = give_up_after
        self._stopped = threading.Event()
        self._call: grpc.Call | None = None

    def stop(self) -> None:
        self._stopped.set()
        call = self._call
        if call is not None:
            call.cancel()

    def events(self) -> Iterator[model.Event]:
        self.client._check_open()
        self.client._register(self, True)
        try:
            yield from self._events()
        finally:
            self.client._register(self, False)

    def _events(self) -> Iterator[model.Event]:
        backoff = Backoff()
        silence = None if self.give_up_after is None else Silence(self.give_up_after)
        while not self._stopped.is_set():
            request = run_service_pb2.WatchRequest(run_id=self.run_id, after_sequence=self.last)
            try:
                responses = self.client._invoke(self.client.stub.Watch, request, timeout=self.attempt_timeout)
            except errors.Unavailable:
                # close() marks the client closed, then stops its follows: either way, this
                # follow was stopped by it as it reopened, a quiet end (review).
                if self._stopped.is_set() or self.client._closed:
                    return
                raise
            self._call = cast(grpc.Call, responses)
            if self._stopped.is_set():  # stop() ran before the call was visible to it
                self._call.cancel()
            cutter = None if silence is None else _SilenceCutter(silence, self._call)
            ended = False
            try:
                for response in responses:
                    if silence is not None:
                        silence.heard()
                    if ended:
                        break  # nothing comes after the end: a server that sent more is not followed
                    backoff.reset()
                    for msg in response.events:
                        if msg.sequence <= self.last:
                            continue  # already delivered before a reconnect
                        self.last = msg.sequence
                        event = event_from_proto(msg)
                        if event is None:
                            continue
                        yield event
                        if self.until_settled and event.settles_run:
                            return
                    # Read on to the call's own end (OK, at once): cancelling it here instead
                    # made every watch that ended normally a CANCELLED call on the server.
                    ended = response.end_of_stream
                    if silence is not None:
                        silence.listening()
                if ended:
                    return
                why = "ended without end_of_stream"
            except grpc.RpcError as exc:
                if self._stopped.is_set() or ended:
                    return
                if cutter is not None and cutter.cut:
                    raise gave_up(self.run_id, self.last, cutter.silence.limit, "was silent") from None
                code = cast(FailedCall, exc).code()
                if self.client._closed or not should_reconnect(
                    cast(FailedCall, exc), attempt_deadline=self.attempt_timeout is not None
                ):
                    raise _mapped(exc) from exc
                why = f"ended with {code.name}"
            finally:
                if cutter is not None:
                    cutter.close()
                self._call = None
                self._cancel(responses)
            delay = backoff.next_delay()
            if silence is not None:
                delay = min(delay, max(silence.left(), 0.0))  # awake in time to give up
            logger.info("watch of run %s %s; resuming after %d in %.2fs", self.run_id, why, self.last, delay)
            if self._stopped.wait(delay):
                return
            if silence is not None and silence.left() <= 0:
                raise gave_up(self.run_id, self.last, silence.limit, why)

    @staticmethod
    def _cancel(responses: object) -> None:
        cast(grpc.Call, responses).cancel()


class _SilenceCutter:
    """Cancels one Watch attempt's call, from a thread of its own, once the silence reaches its
    limit: grpc's blocking iterator has no deadline but the call's, and a server that hangs
    (connection up, nothing answers) would hold it until keepalive gives the connection up, ~40 s."""

    def __init__(self, silence: Silence, call: grpc.Call) -> None:
        self.cut = False
        self.silence = silence
        self._call = call
        self._over = threading.Event()
        threading.Thread(target=self._run, name="watch-silence", daemon=True).start()

    def close(self) -> None:
        """The attempt ended: the thread ends too."""
        self._over.set()

    def _run(self) -> None:
        while not self._over.wait(max(self.silence.left(), 0.0)):
            if self.silence.left() <= 0:
                self.cut = True
                self._call.cancel()
                return


class SyncWatchHandle:
    """A watch running on a background thread. Call it (or `stop()`) to stop watching.

    `wait()` blocks until the run is terminal or the watch was stopped, and raises the error
    that ended it otherwise (a service error, or the callback's own exception).
    """

    def __init__(
        self,
        client: SyncClient,
        follow: _Follow,
        callback: Callable[[model.Event], object],
        on_error: Callable[[BaseException], object] | None,
    ) -> None:
        self._client = client
        self._follow = follow
        self._callback = callback
        self._on_error = on_error
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"watch-{follow.run_id}", daemon=True)
        client._register(self, True)
        self._thread.start()

    def __call__(self) -> None:
        self.stop()

    def stop(self) -> None:
        self._follow.stop()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def error(self) -> BaseException | None:
        """The error that ended the watch (None while running, or when it finished or was stopped)."""
        return self._error

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def in_its_thread(self) -> bool:
        """Whether the caller runs in this watch's thread (its callback)."""
        return threading.current_thread() is self._thread

    def wait(self, timeout: float | None = None) -> None:
        """Block until the watch ends (TimeoutError after `timeout` seconds); raise its error."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the watch of run {self._follow.run_id!r} is still running")
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            for event in self._follow.events():
                self._callback(event)
        except Exception as exc:
            self._error = exc
            if self._on_error is not None:
                try:
                    self._on_error(exc)
                except Exception:
                    logger.exception("on_error of the watch of run %s failed", self._follow.run_id)
            else:
                logger.warning("watch of run %s stopped: %r", self._follow.run_id, exc)
        finally:
            self._client._register(self, False)


class SyncWorkflowHandle:
    """One workflow of a server (Mastra's `client.getWorkflow(id)`)."""

    def __init__(self, client: SyncClient, workflow_id: str) -> None:
        self.client = client
        self.workflow_id = workflow_id

    def details(self) -> WorkflowInfo:
        """Steps, step graph and schemas."""
        request = run_service_pb2.GetWorkflowRequest(workflow_id=self.workflow_id)
        return workflow_from_proto(self.client.call(self.client.stub.GetWorkflow, request).workflow)

    def create_run(self, run_id: str | None = None, resource_id: str | None = None) -> SyncRunHandle:
        """Reserve a run (or get the existing one with this id)."""
        request = convert.create_run_request(self.workflow_id, run_id, resource_id)
        response = self.client.call(self.client.stub.CreateRun, request)
        handle = SyncRunHandle(self.client, self.workflow_id, response.run.run_id, resource_id=resource_id)
        handle.last_run = run_from_proto(response.run)
        return handle

    def run_execution_result(
        self, run_id: str, *, include_state: bool = False, view: RunView = "full"
    ) -> model.Run:
        """The run with its status, result or error and every step record. `view`
        "without_payloads" leaves out the step records' JSON, "summary" the records, input,
        result and state: a run too large for one reply (`errors.ReplyTooLarge`) reads so
        (`largest_view` picks the largest that fits)."""
        request = convert.get_run_request(self.workflow_id, run_id, include_state=include_state, view=view)
        return run_from_proto(self.client.call(self.client.stub.GetRun, request).run)

    def run_by_id(self, run_id: str, *, view: RunView = "full") -> model.Run:
        """The run (same as `run_execution_result`)."""
        return self.run_execution_result(run_id, view=view)

    def largest_view(self, run_id: str, *, include_state: bool = False) -> tuple[model.Run, RunView]:
        """The run in the largest view that fits in one reply, and that view: "full", else
        "without_payloads", else "summary" (five steps that pass 1 MiB on make 10 MiB). What
        fits is the smaller of the server's and this client's message limits."""
        for view in VIEWS_LARGEST_FIRST[:-1]:
            try:
                return self.run_execution_result(run_id, include_state=include_state, view=view), view
            except errors.ResourceExhausted:  # the server's REPLY_TOO_LARGE, or over this client's limit
                continue
        return self.run_execution_result(run_id, include_state=include_state, view="summary"), "summary"

    def delete_run_by_id(self, run_id: str, *, request_id: str | None = None) -> None:
        """Delete a run that is not running, with its events.

        The request carries a `request_id` (yours, or a fresh UUID): a retry after a lost
        reply succeeds instead of finding the run gone.
        """
        request = run_service_pb2.DeleteRunRequest(
            workflow_id=self.workflow_id, run_id=run_id, request_id=convert.ensure_request_id(request_id)
        )
        self.client.call(self.client.stub.DeleteRun, request)

    def runs(
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
        response = self.client.call(self.client.stub.ListRuns, request)
        return [run_from_proto(run) for run in response.runs], response.next_page_token


class SyncRunHandle(convert.RunRequests):
    """One run; the blocking twin of `runservice.client.RunHandle`."""

    def __init__(
        self, client: SyncClient, workflow_id: str, run_id: str, *, resource_id: str | None = None
    ) -> None:
        super().__init__(workflow_id, run_id, resource_id)
        self.client = client

    def start(
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
        return self._keep(self.client.call(self.client.stub.Start, request).run)

    def start_async(
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
        called = self.client.call(self.client.stub.Start, request, wait=True, wait_timeout=wait_timeout)
        return self._keep(called.run)

    def resume(
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
        return self._keep(self.client.call(self.client.stub.Resume, request).run)

    def resume_async(
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
        called = self.client.call(self.client.stub.Resume, request, wait=True, wait_timeout=wait_timeout)
        return self._keep(called.run)

    def cancel(self, *, request_id: str | None = None) -> model.Run:
        """Cancel the run; a finished run comes back unchanged."""
        request = run_service_pb2.CancelRequest(
            workflow_id=self.workflow_id, run_id=self.run_id, request_id=convert.ensure_request_id(request_id)
        )
        return self._keep(self.client.call(self.client.stub.Cancel, request).run)

    def time_travel(
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
        called = self.client.call(self.client.stub.TimeTravel, request, wait=wait, wait_timeout=wait_timeout)
        return self._keep(called.run)

    def fork(
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
        called = self.client.call(self.client.stub.ForkRun, request, wait=wait, wait_timeout=wait_timeout)
        return run_from_proto(called.run)

    def restart(
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
        called = self.client.call(self.client.stub.Restart, request, wait=wait, wait_timeout=wait_timeout)
        return self._keep(called.run)

    def stream(
        self,
        input_data: Any = None,
        *,
        initial_state: Any = None,
        request_context: dict[str, Any] | None = None,
        request_id: str | None = None,
        run_timeout: float | dt.timedelta | None = None,
    ) -> Iterator[model.Event]:
        """Start the run and yield its events until it is terminal or suspended (`last_run` is then set)."""
        start = self._start_request(
            input_data, initial_state, request_context, request_id, False, run_timeout
        )
        return self._stream(run_service_pb2.StreamRequest(start=start))

    def resume_stream(
        self,
        resume_data: Any = None,
        *,
        step: StepRef | Sequence[StepRef] | None = None,
        label: str | None = None,
        for_each_index: int | None = None,
        request_context: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> Iterator[model.Event]:
        """Resume the run and yield its events until it is terminal or suspended again."""
        resume = self._resume_request(
            resume_data, step, label, for_each_index, request_context, request_id, False
        )
        return self._stream(run_service_pb2.StreamRequest(resume=resume))

    def time_travel_stream(
        self,
        step: StepRef | Sequence[StepRef],
        input_data: Any = None,
        *,
        resume_data: Any = None,
        initial_state: Any = None,
        request_context: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> Iterator[model.Event]:
        """Time travel this settled run as `time_travel` does and yield the events of the
        re-execution, from its TIME_TRAVEL event until it is terminal or suspended again
        (Mastra `timeTravelStream`; `last_run` is then set)."""
        request = self._time_travel_request(
            step, input_data, resume_data, initial_state, request_context, request_id, False
        )
        return self._stream(run_service_pb2.StreamRequest(time_travel=request))

    def _stream(self, request: run_service_pb2.StreamRequest) -> Iterator[model.Event]:
        last = 0
        settled = False
        responses = self.client._invoke(self.client.stub.Stream, request)
        opened = _StreamCall(cast(grpc.Call, responses))
        self.client._register(opened, True)
        if self.client._closed:  # closed since `_invoke` checked: close() found nothing to stop
            opened.stop()
        ended = False
        try:
            for response in responses:
                if ended:
                    break  # nothing comes after the end
                for msg in response.events:
                    last = max(last, msg.sequence)
                    event = event_from_proto(msg)
                    if event is not None:
                        settled = settled or event.settles_run
                        yield event
                if response.end_of_stream:  # read on to the call's own end (see `_events`)
                    self._keep(response.run)
                    ended = True
            if ended:
                return
        except grpc.RpcError as exc:
            if ended:
                return
            if self.client._closed:
                return  # close() ended the stream (the run goes on): a quiet end, as a follow's
            code = cast(FailedCall, exc).code()
            # Before the first event we cannot tell whether the start happened: report it.
            if last == 0 or not should_reconnect(cast(FailedCall, exc), attempt_deadline=False):
                raise error_of_call(cast(FailedCall, exc), request) from exc
            logger.info("stream of run %s ended with %s; following after %d", self.run_id, code.name, last)
        finally:
            self.client._register(opened, False)
            cast(grpc.Call, responses).cancel()
        if last == 0:
            raise stream_ended_early(self.run_id, request)
        if not settled:  # the stream broke after the run started: follow the rest with Watch
            yield from self.client.follow(self.run_id, last, until_settled=True)
        # As large as fits: a run too large for one reply still streamed every event (an audit).
        self.last_run, _ = SyncWorkflowHandle(self.client, self.workflow_id).largest_view(self.run_id)

    def watch_events(
        self, after_sequence: int = 0, *, attempt_timeout: float | None = None
    ) -> Iterator[model.Event]:
        """Every event after `after_sequence` until the run is terminal, across suspend and resume."""
        return self.client.follow(self.run_id, after_sequence, attempt_timeout=attempt_timeout)

    def watch(
        self,
        callback: Callable[[model.Event], object],
        *,
        after_sequence: int = 0,
        on_error: Callable[[BaseException], object] | None = None,
    ) -> SyncWatchHandle:
        """Call `callback(event)` on a background thread for each event (see `RunHandle.watch`)."""
        follow = _Follow(self.client, self.run_id, after_sequence, False, None)
        return SyncWatchHandle(self.client, follow, callback, on_error)


__all__ = ["SyncClient", "SyncRunHandle", "SyncWatchHandle", "SyncWorkflowHandle"]
