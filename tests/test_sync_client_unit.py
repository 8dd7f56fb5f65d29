"""The sync client without a server: grpc_testing's scripted channel checks each request it builds,
the metadata it sends, how it maps a status to an exception, and when Watch is reopened."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

import grpc
import grpc_testing
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from runservice import errors
from runservice.client import SyncClient, error_from_rpc
from runservice.model import EventType, RunStatus
from runservice.v1 import run_pb2, run_service_pb2
from runservice.wire import from_value, to_value

pytestmark = pytest.mark.timeout(20)

SERVICE = run_service_pb2.DESCRIPTOR.services_by_name["RunService"]
T = TypeVar("T")


@pytest.fixture
def channel() -> grpc_testing.Channel:
    return grpc_testing.channel([SERVICE], grpc_testing.strict_real_time())


class Threads:
    """Runs the blocking client on daemon threads (a failed test must not hang the process)."""

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        threading.Thread(target=run, daemon=True).start()
        return future


@pytest.fixture
def pool() -> Iterator[Threads]:
    yield Threads()


def method(name: str) -> Any:
    return SERVICE.methods_by_name[name]


def run_msg(run_id: str = "r1", status: int = run_pb2.RUN_STATUS_PENDING) -> run_pb2.Run:
    return run_pb2.Run(run_id=run_id, workflow_id="wf", status=status)  # type: ignore[arg-type]


def answer(channel: grpc_testing.Channel, name: str, response: Any) -> tuple[dict[str, Any], Any]:
    """Take the next call of `name`, answer it OK, return (metadata, request)."""
    metadata, request, rpc = channel.take_unary_unary(method(name))
    rpc.terminate(response, (), grpc.StatusCode.OK, "")
    return dict(metadata), request


def details(code: grpc.StatusCode, message: str, *extra: Any) -> tuple[tuple[str, bytes]]:
    """A grpc-status-details-bin trailer as the server sends it."""
    packed = []
    for detail in extra:
        wrapped = any_pb2.Any()
        wrapped.Pack(detail)
        packed.append(wrapped)
    status = status_pb2.Status(code=code.value[0], message=message, details=packed)
    return (("grpc-status-details-bin", status.SerializeToString()),)


def in_thread(pool: Threads, fn: Callable[[], T]) -> Future[T]:
    return pool.submit(fn)


def following(pool: Threads, events: Iterator[Any]) -> tuple[queue.Queue[int], Future[None]]:
    """Consume `events` on a thread; each sequence lands in the queue as it arrives."""
    seen: queue.Queue[int] = queue.Queue()

    def consume() -> None:
        for e in events:
            seen.put(e.sequence)

    return seen, pool.submit(consume)


def received(seen: queue.Queue[int], count: int) -> list[int]:
    # grpc_testing drops unread responses when a call ends with an error: read them first.
    return [seen.get(timeout=5) for _ in range(count)]


def test_start_and_resume_requests_carry_every_argument_and_the_metadata(
    channel: grpc_testing.Channel, pool: Threads
) -> None:
    client = SyncClient(channel=channel, token="s3cret", metadata={"X-Tenant": "acme"}, timeout=7.0)

    def flow() -> Any:
        run = client.get_workflow("wf").create_run("r1", resource_id="user-9")
        started = run.start_async(
            {"n": 1}, initial_state={"s": 0}, request_context={"k": "v"}, request_id="rq-1"
        )
        resumed = run.resume(
            {"ok": True}, step=["outer", "inner"], label="approve", for_each_index=2, request_id="rq-2"
        )
        return started, resumed

    done = in_thread(pool, flow)
    metadata, create = answer(channel, "CreateRun", run_service_pb2.CreateRunResponse(run=run_msg()))
    assert (create.workflow_id, create.run_id, create.resource_id) == ("wf", "r1", "user-9")
    assert metadata["authorization"] == "Bearer s3cret" and metadata["x-tenant"] == "acme"

    suspended = run_msg(status=run_pb2.RUN_STATUS_SUSPENDED)
    _, start = answer(channel, "Start", run_service_pb2.StartResponse(run=suspended))
    assert start.wait and start.request_id == "rq-1" and start.resource_id == "user-9"
    assert from_value(start.input_data) == {"n": 1} and from_value(start.initial_state) == {"s": 0}
    assert from_value(start.request_context) == {"k": "v"}

    _, resume = answer(channel, "Resume", run_service_pb2.ResumeResponse(run=run_msg(status=2)))
    assert list(resume.step) == ["outer", "inner"] and resume.label == "approve"
    assert resume.HasField("for_each_index") and resume.for_each_index == 2
    assert not resume.wait and resume.request_id == "rq-2" and from_value(resume.resume_data) == {"ok": True}

    started, resumed = done.result(5)
    assert started.status is RunStatus.SUSPENDED and resumed.status is RunStatus.RUNNING


def test_a_missing_request_id_is_generated_fresh_for_each_call(
    channel: grpc_testing.Channel, pool: Threads
) -> None:
    client = SyncClient(channel=channel)
    run = client.get_workflow("wf")

    def flow() -> None:
        handle = run.create_run("r1")
        handle.start()
        handle.cancel()

    done = in_thread(pool, flow)
    metadata, _ = answer(channel, "CreateRun", run_service_pb2.CreateRunResponse(run=run_msg()))
    assert "authorization" not in metadata
    _, start = answer(channel, "Start", run_service_pb2.StartResponse(run=run_msg()))
    _, cancel = answer(channel, "Cancel", run_service_pb2.CancelResponse(run=run_msg()))
    done.result(5)
    assert len(start.request_id) == 36 and len(cancel.request_id) == 36
    assert start.request_id != cancel.request_id and not start.wait


def test_list_runs_request(channel: grpc_testing.Channel, pool: Threads) -> None:
    client = SyncClient(channel=channel)
    done = in_thread(
        pool,
        lambda: client.get_workflow("wf").runs(
            status=["success", RunStatus.FAILED], resource_id="u", from_time=10.5, page_size=5, page_token="t"
        ),
    )
    response = run_service_pb2.ListRunsResponse(runs=[run_msg("a", 4)], next_page_token="next")
    _, request = answer(channel, "ListRuns", response)
    assert list(request.statuses) == [run_pb2.RUN_STATUS_SUCCESS, run_pb2.RUN_STATUS_FAILED]
    assert (request.resource_id, request.page_size, request.page_token) == ("u", 5, "t")
    assert request.from_time.seconds == 10 and request.from_time.nanos == 500_000_000
    assert not request.HasField("to_time")
    runs, token = done.result(5)
    assert [r.run_id for r in runs] == ["a"] and token == "next"


def test_errors_are_mapped_by_reason_then_by_code(channel: grpc_testing.Channel, pool: Threads) -> None:
    client = SyncClient(channel=channel)
    wf = client.get_workflow("wf")

    failing = in_thread(pool, lambda: wf.run_by_id("r1"))
    _, _, rpc = channel.take_unary_unary(method("GetRun"))
    info = error_details_pb2.ErrorInfo(
        reason="RUN_NOT_FOUND", domain="runservice.dev", metadata={"run_id": "r1"}
    )
    rpc.terminate(
        None, details(grpc.StatusCode.NOT_FOUND, "run 'r1' not found", info), grpc.StatusCode.NOT_FOUND, "x"
    )
    with pytest.raises(errors.RunNotFound) as caught:
        failing.result(5)
    assert caught.value.metadata == {"run_id": "r1"} and caught.value.message == "run 'r1' not found"

    invalid = in_thread(pool, lambda: wf.create_run("bad id"))
    _, _, rpc = channel.take_unary_unary(method("CreateRun"))
    bad = error_details_pb2.BadRequest(
        field_violations=[error_details_pb2.BadRequest.FieldViolation(field="run_id", description="bad")]
    )
    info = error_details_pb2.ErrorInfo(reason="INVALID_REQUEST", domain="runservice.dev")
    trailer = details(grpc.StatusCode.INVALID_ARGUMENT, "bad request", info, bad)
    rpc.terminate(None, trailer, grpc.StatusCode.INVALID_ARGUMENT, "bad request")
    with pytest.raises(errors.InvalidArgument) as invalid_error:
        invalid.result(5)
    assert [v.field for v in invalid_error.value.violations] == ["run_id"]

    # No details (a proxy, the transport): the code decides and names the reason.
    denied = in_thread(pool, client.list_workflows)
    _, _, rpc = channel.take_unary_unary(method("ListWorkflows"))
    rpc.terminate(None, (), grpc.StatusCode.PERMISSION_DENIED, "no")
    with pytest.raises(errors.PermissionDenied) as denied_error:
        denied.result(5)
    assert denied_error.value.reason == "PERMISSION_DENIED"


def event(sequence: int, kind: int = run_pb2.RUN_EVENT_TYPE_STEP_START) -> run_pb2.RunEvent:
    return run_pb2.RunEvent(run_id="r1", sequence=sequence, type=kind)  # type: ignore[arg-type]


def watch_response(*events: run_pb2.RunEvent, end: bool = False) -> run_service_pb2.WatchResponse:
    return run_service_pb2.WatchResponse(
        events=events, watermark_sequence=events[-1].sequence if events else 0, end_of_stream=end
    )


def test_watch_reopens_from_the_last_sequence_on_unavailable_and_an_unmarked_end(
    channel: grpc_testing.Channel, pool: Threads
) -> None:
    client = SyncClient(channel=channel)
    seen, done = following(pool, client.follow("r1"))

    _, request, rpc = channel.take_unary_stream(method("Watch"))
    assert request.after_sequence == 0
    rpc.send_response(watch_response(event(1), event(2)))
    assert received(seen, 2) == [1, 2]
    rpc.terminate((), grpc.StatusCode.UNAVAILABLE, "draining")

    _, request, rpc = channel.take_unary_stream(method("Watch"))
    assert request.after_sequence == 2
    rpc.send_response(watch_response(event(2), event(3)))  # a replayed event is not repeated
    rpc.terminate((), grpc.StatusCode.OK, "")  # ended without end_of_stream: reopen too

    _, request, rpc = channel.take_unary_stream(method("Watch"))
    assert request.after_sequence == 3
    finish = event(4, run_pb2.RUN_EVENT_TYPE_WORKFLOW_FINISH)
    rpc.send_response(watch_response(finish, end=True))
    rpc.terminate((), grpc.StatusCode.OK, "")
    done.result(5)
    assert received(seen, 2) == [3, 4] and seen.empty()


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (grpc.StatusCode.INTERNAL, errors.Internal),
        (grpc.StatusCode.NOT_FOUND, errors.NotFound),
        (grpc.StatusCode.PERMISSION_DENIED, errors.PermissionDenied),
        (grpc.StatusCode.DEADLINE_EXCEEDED, errors.DeadlineExceeded),
    ],
)
def test_watch_raises_other_errors_without_reconnecting(
    channel: grpc_testing.Channel, pool: Threads, code: grpc.StatusCode, error: type[Exception]
) -> None:
    client = SyncClient(channel=channel)
    seen, done = following(pool, client.follow("r1"))
    _, _, rpc = channel.take_unary_stream(method("Watch"))
    rpc.send_response(watch_response(event(1)))
    assert received(seen, 1) == [1]
    rpc.terminate(server_sent(code), code, "boom")
    with pytest.raises(error) as caught:
        done.result(5)
    assert caught.value.reason == code.name  # type: ignore[attr-defined]


def server_sent(code: grpc.StatusCode) -> tuple[tuple[str, bytes]]:
    """The trailer of a status the server sent: every one carries its ErrorInfo."""
    return details(code, "boom", error_details_pb2.ErrorInfo(reason=code.name, domain="runservice.dev"))


@pytest.mark.parametrize("code", [grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN])
def test_a_reset_the_server_did_not_send_is_reopened(
    channel: grpc_testing.Channel, pool: Threads, code: grpc.StatusCode
) -> None:
    """nginx resets the streams of a server that died with RST_STREAM INTERNAL_ERROR: a status
    without runservice's ErrorInfo is the proxy's or the transport's, so the watch goes on."""
    client = SyncClient(channel=channel)
    seen, done = following(pool, client.follow("r1"))
    _, _, rpc = channel.take_unary_stream(method("Watch"))
    rpc.send_response(watch_response(event(1)))
    assert received(seen, 1) == [1]
    rpc.terminate((), code, "Received RST_STREAM with error code 2")
    _, request, rpc = channel.take_unary_stream(method("Watch"))
    assert request.after_sequence == 1
    rpc.send_response(watch_response(event(2, run_pb2.RUN_EVENT_TYPE_WORKFLOW_FINISH), end=True))
    assert received(seen, 1) == [2]
    rpc.terminate((), grpc.StatusCode.OK, "")
    done.result(5)


def test_a_per_attempt_deadline_is_transient(channel: grpc_testing.Channel, pool: Threads) -> None:
    client = SyncClient(channel=channel)
    done = in_thread(pool, lambda: [e.type for e in client.follow("r1", 5, attempt_timeout=30.0)])
    _, request, rpc = channel.take_unary_stream(method("Watch"))
    rpc.terminate((), grpc.StatusCode.DEADLINE_EXCEEDED, "attempt over")
    _, request, rpc = channel.take_unary_stream(method("Watch"))
    assert request.after_sequence == 5
    rpc.send_response(watch_response(event(6, run_pb2.RUN_EVENT_TYPE_WORKFLOW_FINISH), end=True))
    rpc.terminate((), grpc.StatusCode.OK, "")
    assert done.result(5) == [EventType.WORKFLOW_FINISH]


def test_watch_handle_hands_the_error_to_on_error_and_wait(channel: grpc_testing.Channel) -> None:
    client = SyncClient(channel=channel)
    run = client.get_workflow("wf")
    handle_errors: list[BaseException] = []
    got = threading.Event()

    def on_error(exc: BaseException) -> None:
        handle_errors.append(exc)
        got.set()

    from runservice.client import SyncRunHandle

    watch = SyncRunHandle(client, run.workflow_id, "r1").watch(lambda e: None, on_error=on_error)
    _, _, rpc = channel.take_unary_stream(method("Watch"))
    rpc.terminate(server_sent(grpc.StatusCode.INTERNAL), grpc.StatusCode.INTERNAL, "bug")
    assert got.wait(5)
    with pytest.raises(errors.Internal):
        watch.wait(5)
    assert isinstance(handle_errors[0], errors.Internal) and watch.done


def test_service_config_and_retry_policy_are_channel_options() -> None:
    import json

    from runservice.client import DEFAULT_RETRY, RetryPolicy, published_service_config, service_config
    from runservice.client.channel import channel_options

    published = service_config()
    assert published == published_service_config()  # the default retry policy is the published one
    assert RetryPolicy(4, 0.2, 3.0, 2.0, ("UNAVAILABLE",)) == DEFAULT_RETRY
    unary, waiting, streams = published["methodConfig"]
    assert unary["timeout"] == "30s" and "timeout" not in waiting and "retryPolicy" not in streams
    assert unary["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert {n["method"] for n in streams["name"]} == {"Stream", "Watch"}

    mine = service_config(RetryPolicy(max_attempts=2, codes=("UNAVAILABLE", "ABORTED")))
    assert mine["methodConfig"][0]["retryPolicy"]["maxAttempts"] == 2
    assert all("retryPolicy" not in m for m in service_config(None)["methodConfig"])

    options = dict(channel_options(retry=None))
    assert options["grpc.enable_retries"] == 1
    assert json.loads(options["grpc.service_config"]) == service_config(None)
    assert dict(channel_options(config={"methodConfig": []}))["grpc.service_config"] == '{"methodConfig": []}'
    mine_first = channel_options(
        options=[("grpc.keepalive_time_ms", 5_000), ("grpc.primary_user_agent", "x")]
    )
    keys = [key for key, _ in mine_first]
    assert len(keys) == len(set(keys))  # gRPC would keep the first of two
    assert (
        dict(mine_first)["grpc.keepalive_time_ms"] == 5_000
        and dict(mine_first)["grpc.primary_user_agent"] == "x"
    )


def test_every_unary_method_of_both_services_is_retried_on_unavailable() -> None:
    # README: "retries every unary call on UNAVAILABLE". Each one is safe to repeat: the reads
    # change nothing, Start, Resume, Cancel, TimeTravel, ForkRun and TriggerSchedule carry a
    # request_id (both clients fill one), the others are idempotent in effect. Only the streams
    # are left out: the clients reopen them from their cursor instead.
    from runservice.client import published_service_config
    from runservice.v1 import schedule_service_pb2

    retried: set[str] = set()
    not_retried: set[str] = set()
    for config in published_service_config()["methodConfig"]:
        names = {f"{n['service']}/{n['method']}" for n in config["name"]}
        if "retryPolicy" in config:
            assert config["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
            retried |= names
        else:
            not_retried |= names
    services = [SERVICE, schedule_service_pb2.DESCRIPTOR.services_by_name["ScheduleService"]]
    methods = [m for service in services for m in service.methods]
    unary = {f"{m.containing_service.full_name}/{m.name}" for m in methods if not m.server_streaming}
    streams = {f"{m.containing_service.full_name}/{m.name}" for m in methods if m.server_streaming}
    assert unary - retried == set()
    assert not_retried == streams and not retried & streams


def test_values_survive_the_request_builders() -> None:
    assert from_value(to_value({"a": [1, 2.5, None]})) == {"a": [1, 2.5, None]}


def test_each_reason_is_raised_as_the_most_general_class_declaring_it() -> None:
    """The clients rebuild an error's class from its reason (`client/status.py`). Two unrelated
    classes declaring one reason would make the errors of one arrive as the other, and a class
    that only inherits its parent's reason (DatabaseFileMoved, a StorageFailed the server tells
    apart only in its log) must not take it over: STORAGE_FAILED arrived as DatabaseFileMoved."""
    from runservice.client.status import _BY_REASON

    declaring: dict[str, list[type[errors.ServiceError]]] = {}
    pending = list(errors.ServiceError.__subclasses__())  # the root's reason is only a default
    while pending:
        cls = pending.pop(0)
        pending.extend(cls.__subclasses__())
        # The tree as the clients import it: other tests' classes (test_grpc_edge's) come later.
        if "reason" in vars(cls) and cls.__module__ == errors.__name__:
            declaring.setdefault(cls.reason, []).append(cls)
    expected = {}
    for reason, classes in declaring.items():
        [most_general] = [
            cls for cls in classes if not any(cls is not o and issubclass(cls, o) for o in classes)
        ]
        expected[reason] = most_general
    assert expected == _BY_REASON
    assert expected["STORAGE_FAILED"] is errors.StorageFailed and expected["INTERNAL"] is errors.Internal

    class Failed:  # what error_from_rpc reads of a failed call
        def __init__(self, trailers: object) -> None:
            self.trailers = trailers

        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.UNAVAILABLE

        def details(self) -> str:
            return "m"

        def trailing_metadata(self) -> object:
            return self.trailers

    for reason, cls in expected.items():
        info = error_details_pb2.ErrorInfo(reason=reason, domain=errors.DOMAIN)
        error = error_from_rpc(Failed(details(grpc.StatusCode.UNAVAILABLE, "m", info)))
        assert (type(error), error.reason) == (cls, reason)


def test_a_follow_gives_up_after_its_time_without_a_message(
    channel: grpc_testing.Channel, pool: Threads
) -> None:
    # The attempt stays open and silent, as on a hung server: it is cut, not waited on.
    client = SyncClient(channel=channel)
    seen, done = following(pool, client.follow("r1", give_up_after=0.3))
    _, _, rpc = channel.take_unary_stream(method("Watch"))
    rpc.send_response(watch_response(event(1)))
    assert received(seen, 1) == [1]
    with pytest.raises(errors.Unavailable) as caught:
        done.result(10)
    assert caught.value.reason == "WATCH_GAVE_UP" and "the last attempt was silent" in caught.value.message
    assert caught.value.metadata == {"run_id": "r1", "last_sequence": "1"}
