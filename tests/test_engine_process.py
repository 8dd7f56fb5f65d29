"""`serve --engine-process`: the gRPC edge in the serving process, the engine in a second one.

Real processes throughout: the command, its engine process, the real client and stubs. What
must cross the link unchanged: replies, statuses with their rich details, streams, the
authenticated caller, a client's deadline; and each process must notice the other's death.
(Stopping in phases, start-up failures and metrics with logs are in test_lifecycle.py and
test_observability.py, for both layouts.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from postgres import PostgresServer
from process import ServerProcess, serve_argv, server_env, start_server
from test_bad_input import details

from runservice import errors, logs
from runservice.client import Client
from runservice.model import RunStatus
from runservice.server.engine_process import RELAY_DRAIN, spawn_relayed
from runservice.v1 import (
    run_pb2,
    run_service_pb2,
    run_service_pb2_grpc,
    schedule_service_pb2,
    schedule_service_pb2_grpc,
)

pytestmark = pytest.mark.timeout(90)

FLOWS = """
import asyncio
import logging

from runservice.workflow import create_step, create_workflow


@create_step("nap")
async def nap(ctx):
    await asyncio.sleep(ctx.input_data["seconds"])
    return {"slept": ctx.input_data["seconds"]}


nap_flow = create_workflow("nap").then(nap).commit()


@create_step("loud")
async def loud(ctx):
    for i in range(20):  # each line longer than a pipe's atomic write
        logging.getLogger("loud").warning("loud %d %s", i, "y" * 20000)
        await asyncio.sleep(0.005)
    return 1


loud_flow = create_workflow("loud").then(loud).commit()
"""

TOKENS = """
[[tokens]]
name = "admin"
token = "admin-secret"

[[tokens]]
name = "tenant-a"
token = "a-secret"
resources = ["a"]

[[tokens]]
name = "reader"
token = "reader-secret"
read_only = true
"""


def _struct(**fields: Any) -> struct_pb2.Value:
    value = struct_pb2.Value()
    value.struct_value.update(fields)
    return value


async def _serve(tmp_path: Path, *args: str) -> ServerProcess:
    app = tmp_path / "app"
    app.mkdir(exist_ok=True)
    (app / "nap_flows.py").write_text(FLOWS)
    env = server_env(PYTHONPATH=str(app))
    return await start_server(
        serve_argv("--data-dir", str(tmp_path / "data"), "--workflows", "tests.workflows,nap_flows",
                   "--engine-process", *args),
        env=env,
    )  # fmt: skip


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    served = await _serve(tmp_path)
    try:
        yield served
        assert await served.stop() == 0
    finally:
        await served.kill()
    assert "Traceback" not in served.text, served.text


async def engine_pid(server: ServerProcess) -> int:
    """The engine process's pid, from its `serving` line: the front relays the engine's stderr,
    so the line may come just after the front's `listening on`."""
    deadline = asyncio.get_running_loop().time() + 10
    while not (found := re.search(r"engine process (\d+) serving", server.text)):
        assert asyncio.get_running_loop().time() < deadline, server.text
        await asyncio.sleep(0.05)
    return int(found.group(1))


async def test_the_engine_process_marks_its_log_lines(server: ServerProcess) -> None:
    """Both processes' lines reach one stderr: the engine process's lines say so, the edge's do not."""
    await engine_pid(server)
    lines = server.text.splitlines()
    (serving,) = [line for line in lines if re.search(r"engine process \d+ serving", line)]
    assert serving.endswith(" [role=engine]"), serving
    (listening,) = [line for line in lines if "listening on" in line]
    assert "role=" not in listening, listening


async def test_replies_errors_and_streams_cross_the_link(server: ServerProcess) -> None:
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = run_service_pb2_grpc.RunServiceStub(channel)
        done = await stub.Start(
            run_service_pb2.StartRequest(workflow_id="echo", input_data=_struct(count=1), wait=True)
        )
        assert done.run.status == run_pb2.RUN_STATUS_SUCCESS
        assert done.run.result.struct_value["count"] == 2

        # A suspended run, watched while it is resumed: the stream carries every event.
        started = await stub.Start(
            run_service_pb2.StartRequest(
                workflow_id="approval", run_id="ask-1", input_data=_struct(count=2), wait=True
            )
        )
        assert started.run.status == run_pb2.RUN_STATUS_SUSPENDED
        watch = stub.Watch(run_service_pb2.WatchRequest(run_id="ask-1"))
        seen: list[int] = []

        async def follow() -> None:
            async for reply in watch:
                seen.extend(event.run_status for event in reply.events)
                if reply.end_of_stream:
                    return

        following = asyncio.create_task(follow())
        resumed = await stub.Resume(
            run_service_pb2.ResumeRequest(run_id="ask-1", resume_data=_struct(approved=True), wait=True)
        )
        assert resumed.run.status == run_pb2.RUN_STATUS_SUCCESS
        await asyncio.wait_for(following, 10)
        assert seen[-1] == run_pb2.RUN_STATUS_SUCCESS and len(seen) >= 4

        # Errors keep their code, message and rich details.
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetRun(run_service_pb2.GetRunRequest(run_id="no-such-run"))
        assert missing.value.code() is grpc.StatusCode.NOT_FOUND
        assert details(missing.value)[0].reason == "RUN_NOT_FOUND"
        with pytest.raises(grpc.aio.AioRpcError) as invalid:
            await stub.Start(run_service_pb2.StartRequest(workflow_id="echo", input_data=_struct(count="x")))
        assert invalid.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        info, fields = details(invalid.value)
        assert info.reason and fields, (info, fields)
        # Bytes that are no StartRequest: the engine's decoding guard answers, as in one process.
        raw: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/runservice.v1.RunService/Start"
        )
        with pytest.raises(grpc.aio.AioRpcError) as malformed:
            await raw(b"\xff\xff\xff", timeout=10)
        assert malformed.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert details(malformed.value)[0].reason == "INVALID_REQUEST"

        # Streams the client leaves mid-way (their cancels cross the link while the engine may
        # still be sending) leave the link working for the calls after them.
        for _ in range(20):
            stream = stub.Watch(run_service_pb2.WatchRequest(run_id="ask-1", after_sequence=0))
            async for _reply in stream:
                break
            stream.cancel()
        listed = await stub.ListRuns(run_service_pb2.ListRunsRequest(workflow_id="approval"))
        assert [run.run_id for run in listed.runs] == ["ask-1"]

        # ScheduleService is forwarded too.
        schedules = schedule_service_pb2_grpc.ScheduleServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as no_schedule:
            await schedules.GetSchedule(schedule_service_pb2.GetScheduleRequest(schedule_id="none"))
        assert no_schedule.value.code() is grpc.StatusCode.NOT_FOUND
        assert (
            len((await schedules.ListSchedules(schedule_service_pb2.ListSchedulesRequest())).schedules) == 0
        )


async def test_a_stop_ends_follow_streams_unavailable(tmp_path: Path) -> None:
    server = await _serve(tmp_path, "--drain-delay", "0.5")
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = run_service_pb2_grpc.RunServiceStub(channel)
            await stub.Start(
                run_service_pb2.StartRequest(
                    workflow_id="approval", run_id="held", input_data=_struct(count=1), wait=True
                )
            )
            watch = stub.Watch(run_service_pb2.WatchRequest(run_id="held"))
            first = await watch.read()
            assert isinstance(first, run_service_pb2.WatchResponse) and first.events
            server.proc.send_signal(signal.SIGTERM)
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                while True:
                    reply = await asyncio.wait_for(watch.read(), 10)
                    assert reply is not grpc.aio.EOF, "the watch ended without a status"
            assert ended.value.code() is grpc.StatusCode.UNAVAILABLE
        assert await server.stop(15, signalled=True) == 0
    finally:
        await server.kill()
    assert "Traceback" not in server.text, server.text


async def test_the_caller_and_its_scope_reach_the_engine(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(TOKENS)
    server = await _serve(tmp_path, "--tokens-file", str(tokens))
    try:
        async with Client(server.address, token="admin-secret", timeout=10) as admin:
            for resource in ("a", "b"):
                await (await admin.get_workflow("echo").create_run(resource_id=resource)).start(
                    input_data={"count": 1}
                )
        async with Client(server.address, token="a-secret", timeout=10) as tenant:
            runs, _ = await tenant.get_workflow("echo").runs()
            assert [run.resource_id for run in runs] == ["a"]
        async with Client(server.address, token="reader-secret", timeout=10) as reader:
            with pytest.raises(Exception, match="read-only"):
                await (await reader.get_workflow("echo").create_run()).start(input_data={"count": 1})
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = run_service_pb2_grpc.RunServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as anonymous:
                await stub.ListRuns(run_service_pb2.ListRunsRequest())
            assert anonymous.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert await server.stop() == 0
    finally:
        await server.kill()


async def test_a_deadline_ends_the_call_and_the_run_goes_on(server: ServerProcess) -> None:
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = run_service_pb2_grpc.RunServiceStub(channel)
        request = run_service_pb2.StartRequest(
            workflow_id="nap", run_id="nap-1", input_data=_struct(seconds=0.6), wait=True
        )
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await stub.Start(request, timeout=0.2)
        assert late.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        for _ in range(100):
            run = (await stub.GetRun(run_service_pb2.GetRunRequest(run_id="nap-1"))).run
            if run.status == run_pb2.RUN_STATUS_SUCCESS:
                break
            await asyncio.sleep(0.05)
        assert run.status == run_pb2.RUN_STATUS_SUCCESS


async def test_a_watch_heartbeats_within_the_clients_deadline(server: ServerProcess) -> None:
    """The engine's streams know the client's deadline (the front forwards it): an idle Watch
    shorter than the server's heartbeat (15 s here) gets one at half its time."""
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = run_service_pb2_grpc.RunServiceStub(channel)
        started = await stub.Start(
            run_service_pb2.StartRequest(
                workflow_id="approval", run_id="quiet-1", input_data=_struct(count=1), wait=True
            )
        )
        assert started.run.status == run_pb2.RUN_STATUS_SUSPENDED  # nothing happens until a resume
        request = run_service_pb2.WatchRequest(run_id="quiet-1", after_sequence=started.run.last_sequence)
        replies = []
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            async for reply in stub.Watch(request, timeout=1.0):
                replies.append(reply)
        assert ended.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert replies and not replies[0].events and not replies[0].end_of_stream


REDRIVEN = r"run {}: (re-driving from its last checkpoint|starting from its beginning) \(was running\)"
"""How the next start tells a run it drives again: from its last checkpoint, or from its beginning
when it died before its step's start was committed (that commit waits a few milliseconds)."""


async def test_the_front_exits_when_the_engine_process_dies(tmp_path: Path) -> None:
    server = await _serve(tmp_path)
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = run_service_pb2_grpc.RunServiceStub(channel)
            waiting = asyncio.ensure_future(
                stub.Start(
                    run_service_pb2.StartRequest(
                        workflow_id="nap", run_id="cut", input_data=_struct(seconds=30), wait=True
                    )
                )
            )
            for _ in range(100):  # until the run is stored as running
                try:
                    got = await stub.GetRun(run_service_pb2.GetRunRequest(run_id="cut"))
                    if got.run.status == run_pb2.RUN_STATUS_RUNNING:
                        break
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.05)
            os.kill(await engine_pid(server), signal.SIGKILL)
            with pytest.raises(grpc.aio.AioRpcError) as cut:
                await asyncio.wait_for(waiting, 10)
            assert cut.value.code() is grpc.StatusCode.UNAVAILABLE
        assert await server.stop(15, signalled=True) == 1
    finally:
        await server.kill()
    assert "the engine process exited (code -9)" in server.text
    assert server.text.rstrip().endswith(
        "runservice: error: the engine process exited unexpectedly (code -9)"
    ), server.text
    assert "Traceback" not in server.text, server.text

    # The next start re-drives the run the dead engine left running (quickly: 30 s was the
    # first attempt's nap; the test only checks it is driven again).
    again = await _serve(tmp_path, "--grace", "1")
    try:
        async with Client(again.address, timeout=10) as client:
            run = await client.get_workflow("nap").run_by_id("cut")
            assert run.status is RunStatus.RUNNING
            assert re.search(REDRIVEN.format("cut"), again.text), again.text
        assert await again.stop() == 0
    finally:
        await again.kill()


FORKING_FLOWS = """
import asyncio
import os
from concurrent.futures import ProcessPoolExecutor

from runservice.workflow import create_step, create_workflow

POOL = ProcessPoolExecutor(1)  # work off the event loop, in a forked process kept for reuse


@create_step("crunch")
async def crunch(ctx):
    return {"worker": await asyncio.get_running_loop().run_in_executor(POOL, os.getpid)}


crunch_flow = create_workflow("crunch").then(crunch).commit()
"""


async def test_the_front_notices_the_engines_death_when_a_step_forked(tmp_path: Path) -> None:
    """A process the engine forked holds its end of the link open after it died: the front
    watches the process too, ends the calls UNAVAILABLE and exits, as without the fork."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "crunch_flows.py").write_text(FORKING_FLOWS)
    argv = serve_argv("--data-dir", str(tmp_path / "data"), "--workflows", "crunch_flows", "--engine-process")
    server = await start_server(argv, env=server_env(PYTHONPATH=str(app)))
    worker = 0
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = run_service_pb2_grpc.RunServiceStub(channel)
            request = run_service_pb2.StartRequest(workflow_id="crunch", input_data=_struct(), wait=True)
            done = await stub.Start(request, timeout=20)
            worker = int(done.run.result.struct_value.fields["worker"].number_value)
            assert _alive(worker)
            os.kill(await engine_pid(server), signal.SIGKILL)
            await asyncio.sleep(1.0)
            with pytest.raises(grpc.aio.AioRpcError) as cut:
                await stub.ListWorkflows(run_service_pb2.ListWorkflowsRequest(), timeout=5)
            assert cut.value.code() is grpc.StatusCode.UNAVAILABLE, cut.value
        assert await asyncio.wait_for(server.proc.wait(), 10) == 1
    finally:
        if worker and _alive(worker):  # it holds the server's stderr open too
            os.kill(worker, signal.SIGKILL)
        if server.proc.returncode is not None and server.reader is not None:
            await asyncio.wait_for(server.reader, 10)  # the rest of its log
        await server.kill()
    assert "the engine process exited (code -9)" in server.text, server.text[-3000:]


async def test_the_engine_process_stops_when_the_front_dies(tmp_path: Path) -> None:
    """At once, not after the grace period (on Linux the kernel kills it with the front): a
    restart must find the database free, as after the death of one process; the run it was
    driving is re-driven by the next start."""
    server = await _serve(tmp_path, "--grace", "30")
    try:
        pid = await engine_pid(server)
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = run_service_pb2_grpc.RunServiceStub(channel)
            await stub.Start(
                run_service_pb2.StartRequest(
                    workflow_id="nap", run_id="orphan", input_data=_struct(seconds=30)
                )
            )
        server.proc.kill()
        await server.proc.wait()
        loop = asyncio.get_running_loop()
        killed = loop.time()
        while _alive(pid) and loop.time() - killed < 10:
            await asyncio.sleep(0.05)
        assert not _alive(pid)
        assert loop.time() - killed < 5, "the engine process waited as if for a grace period"
    finally:
        await server.kill()
    again = await _serve(tmp_path, "--grace", "1")
    try:
        async with Client(again.address, timeout=10) as client:
            assert (await client.get_workflow("nap").run_by_id("orphan")).status is RunStatus.RUNNING
        assert re.search(REDRIVEN.format("orphan"), again.text), again.text
        assert await again.stop() == 0
    finally:
        await again.kill()


async def test_two_replicas_on_postgresql(postgres_server: PostgresServer, tmp_path: Path) -> None:
    """Each replica in the two-process layout on one PostgreSQL database: a run suspended at one
    replica is resumed at the other, while a Watch at the first sees it finish."""
    url = await postgres_server.create_database()
    args = ("--database-url", url, "--workflows", "tests.workflows", "--engine-process", "--heartbeat", "0.5")
    first = await start_server(serve_argv("--data-dir", str(tmp_path / "one"), *args), env=server_env())
    try:
        second = await start_server(serve_argv("--data-dir", str(tmp_path / "two"), *args), env=server_env())
        try:
            async with (
                grpc.aio.insecure_channel(first.address) as one,
                grpc.aio.insecure_channel(second.address) as two,
            ):
                at_one = run_service_pb2_grpc.RunServiceStub(one)
                at_two = run_service_pb2_grpc.RunServiceStub(two)
                started = await at_one.Start(
                    run_service_pb2.StartRequest(
                        workflow_id="approval", run_id="pg-ask", input_data=_struct(count=5), wait=True
                    )
                )
                assert started.run.status == run_pb2.RUN_STATUS_SUSPENDED
                watch = at_one.Watch(run_service_pb2.WatchRequest(run_id="pg-ask"))
                resumed = await at_two.Resume(
                    run_service_pb2.ResumeRequest(
                        run_id="pg-ask", resume_data=_struct(approved=False), wait=True
                    )
                )
                assert resumed.run.status == run_pb2.RUN_STATUS_SUCCESS
                assert resumed.run.result.struct_value["verdict"] == "rejected"
                statuses: list[int] = []
                async with asyncio.timeout(10):
                    async for reply in watch:
                        statuses.extend(event.run_status for event in reply.events)
                        if reply.end_of_stream:
                            break
                assert statuses[-1] == run_pb2.RUN_STATUS_SUCCESS
            assert await second.stop() == 0
        finally:
            await second.kill()
        assert await first.stop() == 0
    finally:
        await first.kill()
    assert "Traceback" not in first.text + second.text


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, whose parent died before reaping it, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


MARKED_FLOWS = """
import os

from runservice.workflow import create_step, create_workflow

with open(os.environ["IMPORTED_BY"], "a") as imported_by:  # each process that imports this module
    imported_by.write(f"{os.getpid()}\\n")


@create_step("noop")
async def noop(ctx):
    return None


marked = create_workflow("marked").then(noop).commit()
"""


async def test_only_the_engine_process_imports_the_workflow_modules(tmp_path: Path) -> None:
    """The edge never imports them: their imports (and what those load) cost memory once."""
    app, imported_by = tmp_path / "app", tmp_path / "imported-by"
    app.mkdir()
    (app / "marked_flows.py").write_text(MARKED_FLOWS)
    server = await start_server(
        serve_argv("--data-dir", str(tmp_path / "data"), "--workflows", "marked_flows", "--engine-process"),
        env=server_env(PYTHONPATH=str(app), IMPORTED_BY=str(imported_by)),
    )
    try:
        async with Client(server.address, timeout=10) as client:
            assert [workflow.id for workflow in await client.list_workflows()] == ["marked"]
        assert imported_by.read_text().split() == [str(await engine_pid(server))]
        assert await server.stop() == 0
    finally:
        await server.kill()


SCHEDULE_OF_NOPE = '[{"id": "s", "workflow": "nope", "cron": "* * * * *"}]'


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--workflows", "no_such_module_here"), "no_such_module_here"),
        (
            (
                "--workflows",
                "tests.workflows",
                "--schedules",
                '[{"id": "s", "workflow": "nope", "cron": "* * * * *"}]',
            ),
            "names workflow 'nope', which is not served",
        ),
    ],
    ids=["unknown-module", "schedule-of-a-workflow-not-served"],
)
def test_a_workflow_the_engine_process_cannot_serve_is_a_one_line_usage_error(
    tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    """The same line and exit code as one process gives, though only the engine process loads them."""
    argv = serve_argv("--data-dir", str(tmp_path), "--engine-process", *args)
    done = subprocess.run(argv, env=server_env(), capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("runservice: error: ") and expected in lines[0], (
        done.stderr
    )


def test_an_engine_process_that_dies_while_starting_says_how_it_ended(tmp_path: Path) -> None:
    """A workflows module that ends the process at import without a word (os._exit): the front
    said only that the engine process exited while starting; now its exit code too."""
    (tmp_path / "vanishes_at_import.py").write_text("import os\nos._exit(7)\n")
    argv = serve_argv(
        "--data-dir", str(tmp_path / "data"), "--app-dir", str(tmp_path), "--workflows", "vanishes_at_import",
        "--engine-process",
    )  # fmt: skip
    done = subprocess.run(argv, env=server_env(), capture_output=True, text=True, timeout=30)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        "runservice: error: cannot serve: the engine process exited while starting (code 7)"
    ]


async def test_long_lines_of_both_processes_are_never_spliced(tmp_path: Path) -> None:
    """With `--log-format json` every line is one JSON object, even lines longer than a pipe
    writes whole (a step's long log line, a traceback) while the edge logs access lines and
    stderr is read slowly: the front writes the engine's lines. Before, both processes wrote
    to one stderr and 74 of 1,343 such lines were spliced (audit)."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "nap_flows.py").write_text(FLOWS)
    argv = serve_argv("--data-dir", str(tmp_path / "data"), "--workflows", "nap_flows",
                      "--engine-process", "--log-format", "json")  # fmt: skip
    # A pipe of our own, read a little at a time on a thread: it stays nearly full while runs
    # log, so a long write goes into it in pieces (asyncio's reader would empty it at once).
    readable, writable = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, env=server_env(PYTHONPATH=str(app)), stdout=subprocess.DEVNULL, stderr=writable
        )
    finally:
        os.close(writable)
    written = bytearray()
    slowly = threading.Event()
    slowly.set()

    def read() -> None:
        with os.fdopen(readable, "rb", buffering=0) as pipe:
            while chunk := pipe.read(512):
                written.extend(chunk)
                if slowly.is_set():
                    time.sleep(0.002)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not (found := re.search(rb"listening on (\S+?)\"", bytes(written))):
            assert time.monotonic() < deadline and proc.returncode is None, bytes(written)[-3000:]
            await asyncio.sleep(0.1)
        async with Client(found.group(1).decode()) as client:
            workflow = client.get_workflow("loud")
            runs = [await workflow.create_run() for _ in range(6)]
            for run in runs:
                await run.start({})

            async def access_lines() -> None:
                for _ in range(150):
                    with contextlib.suppress(errors.NotFound):
                        await workflow.run_by_id("nope")

            await asyncio.gather(*(access_lines() for _ in range(8)))
            for run in runs:
                while (await workflow.run_by_id(run.run_id)).status is not RunStatus.SUCCESS:
                    assert time.monotonic() < deadline + 60
                    await asyncio.sleep(0.1)
    finally:
        slowly.clear()
        if proc.returncode is None:
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
        await asyncio.to_thread(reader.join, 10)
    lines = [line for line in bytes(written).split(b"\n") if line]
    assert sum(b"loud 19 " in line for line in lines) == 6
    spliced = []
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            spliced.append(line[:100])
    assert spliced == []


async def test_a_process_a_child_left_behind_holds_up_neither_the_wait_nor_the_relay(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine's stderr is relayed from a pipe of the front's own: on asyncio's own loop,
    `Process.wait()` also waits for the subprocess pipes it made to close, and a process a step
    started inherits the pipe and may hold it for good. The front then never saw the engine die
    (review). Its last line is relayed; the relay ends RELAY_DRAIN after."""
    monkeypatch.setattr(logs, "_configured", None)  # to stderr, whatever another test configured
    leaves_a_sleeper = (
        "import subprocess, sys; sleeper = subprocess.Popen(['sleep', '30']);"
        " print('sleeper', sleeper.pid, file=sys.stderr); print('no end', end='', file=sys.stderr)"
    )
    process, relay = await spawn_relayed(sys.executable, "-c", leaves_a_sleeper)
    try:
        assert await asyncio.wait_for(process.wait(), 10) == 0
        began = asyncio.get_running_loop().time()
        await relay.end()
        assert asyncio.get_running_loop().time() - began < RELAY_DRAIN + 1
    finally:
        relayed = capsys.readouterr().err
        found = re.search(r"sleeper (\d+)\n", relayed)
        if found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(found.group(1)), signal.SIGKILL)
    assert found, relayed
