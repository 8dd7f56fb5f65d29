"""`--max-message-size` below the default: replies are built for the configured send limit.

A run whose full reply is larger than the limit must still be told of (in a smaller view),
reads must be refused with REPLY_TOO_LARGE and the limit, and Watch and Stream must split
their batches, in both layouts: before, replies were sized against the default 8 MiB and
gRPC refused them itself, with no details, after the change was committed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from clitools import runservice
from google.protobuf import struct_pb2
from process import ROOT, ServerProcess, serve_argv, server_env, start_server
from test_bad_input import details

from runservice import errors
from runservice.client import Client, SyncClient
from runservice.model import EventType, RunStatus
from runservice.v1 import run_pb2, run_service_pb2, run_service_pb2_grpc

pytestmark = pytest.mark.timeout(90)

LIMIT = 256 * 1024
REPLY_LIMIT = LIMIT - 4 * 1024
PAD = "p" * (100 * 1024)

FLOWS = """
from runservice.workflow import create_step, create_workflow


@create_step("copy")
async def copy(ctx):
    return ctx.input_data


@create_step("again")
async def again(ctx):
    return ctx.input_data


@create_step("triple")
async def triple(ctx):
    return ctx.input_data * 3


padded = create_workflow("padded").then(copy).then(again).commit()
tripled = create_workflow("tripled").then(triple).commit()
"""


def _text(value: str) -> struct_pb2.Value:
    return struct_pb2.Value(string_value=value)


@pytest.fixture(params=[(), ("--engine-process",)], ids=["one-process", "engine-process"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ServerProcess]:
    (tmp_path / "padded_flows.py").write_text(FLOWS)
    served = await start_server(
        serve_argv("--data-dir", str(tmp_path / "data"), "--workflows", "padded_flows",
                   "--max-message-size", str(LIMIT), *request.param),
        env=server_env(PYTHONPATH=str(tmp_path)),
    )  # fmt: skip
    try:
        yield served
        assert await served.stop() == 0
    finally:
        await served.kill()
    assert "Traceback" not in served.text, served.text


async def test_replies_fit_the_configured_message_size(server: ServerProcess) -> None:
    # The run's full form holds the input, two step records of 2 x 100 KiB and the result:
    # over the limit; without step payloads it fits.
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = run_service_pb2_grpc.RunServiceStub(channel)
        started = await stub.Start(
            run_service_pb2.StartRequest(workflow_id="padded", run_id="r", input_data=_text(PAD), wait=True)
        )
        run = started.run
        assert run.status == run_pb2.RUN_STATUS_SUCCESS and run.result.string_value == PAD
        assert len(run.steps) == 2 and not any(step.HasField("output") for step in run.steps)

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetRun(run_service_pb2.GetRunRequest(run_id="r"))
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        info, _ = details(refused.value)
        assert info.reason == "REPLY_TOO_LARGE" and info.metadata["limit"] == str(REPLY_LIMIT)
        lean = await stub.GetRun(
            run_service_pb2.GetRunRequest(run_id="r", view=run_service_pb2.RUN_VIEW_WITHOUT_PAYLOADS)
        )
        assert lean.run.input.string_value == PAD

        # Every event is delivered, in messages the server could send.
        watched = [
            reply async for reply in stub.Watch(run_service_pb2.WatchRequest(run_id="r", include_run=True))
        ]
        assert all(reply.ByteSize() <= REPLY_LIMIT for reply in watched)
        sequences = [event.sequence for reply in watched for event in reply.events]
        assert sequences == list(range(1, run.last_sequence + 1)) and watched[-1].end_of_stream
        assert watched[0].run.result.string_value == PAD

        stream = stub.Stream(
            run_service_pb2.StreamRequest(
                start=run_service_pb2.StartRequest(workflow_id="padded", run_id="s", input_data=_text(PAD))
            )
        )
        streamed = [reply async for reply in stream]
        assert all(reply.ByteSize() <= REPLY_LIMIT for reply in streamed)
        assert streamed[-1].end_of_stream and streamed[-1].run.status == run_pb2.RUN_STATUS_SUCCESS

        # A workflow state whose result alone is over the limit: its event goes without it.
        await stub.Start(
            run_service_pb2.StartRequest(workflow_id="tripled", run_id="t", input_data=_text(PAD), wait=True)
        )
        watched = [
            reply
            async for reply in stub.Watch(
                run_service_pb2.WatchRequest(run_id="t", include_workflow_state=True)
            )
        ]
        assert all(reply.ByteSize() <= REPLY_LIMIT for reply in watched) and watched[-1].end_of_stream
        states = [state for reply in watched for state in reply.workflow_states]
        assert states[-1].status == run_pb2.RUN_STATUS_SUCCESS and not states[-1].HasField("result")

        # Two runs' inputs and results listed in full are over the limit too.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ListRuns(run_service_pb2.ListRunsRequest(view=run_service_pb2.RUN_VIEW_FULL))
        assert details(refused.value)[0].reason == "REPLY_TOO_LARGE"


async def test_a_run_too_large_for_one_reply_reads_in_a_smaller_view(server: ServerProcess) -> None:
    """The clients read a run in the view asked for, or in the largest that fits; `runservice
    show` and `runservice watch` show such a run. Before, the clients could ask for no view:
    GetRun failed with REPLY_TOO_LARGE, `show` and `watch` failed (exit 1, `watch` of a run
    that succeeded), and a stream of it raised after its last event (an audit)."""
    async with Client(server.address) as client:
        padded = client.get_workflow("padded")
        run = await padded.create_run("big")
        events = [event async for event in run.stream(input_data=PAD)]
        assert events[-1].type is EventType.WORKFLOW_FINISH
        assert run.last_run is not None and run.last_run.status is RunStatus.SUCCESS
        assert run.last_run.result == PAD and not any(step.output for step in run.last_run.steps)

        with pytest.raises(errors.ReplyTooLarge):
            await padded.run_execution_result("big")
        lean = await padded.run_execution_result("big", view="without_payloads")
        assert lean.input == PAD and [step.output for step in lean.steps] == [None, None]
        summary = await padded.run_by_id("big", view="summary")
        assert summary.status is RunStatus.SUCCESS and summary.input is None and not summary.steps
        largest, view = await padded.largest_view("big")
        assert view == "without_payloads" and largest.result == PAD and len(largest.steps) == 2
        with pytest.raises(ValueError, match="view must be one of"):
            await padded.run_execution_result("big", view="most")  # type: ignore[arg-type]

    with SyncClient(server.address) as sync_client:
        largest, view = sync_client.get_workflow("padded").largest_view("big")
        assert view == "without_payloads" and largest.status is RunStatus.SUCCESS

    # A client whose own receive limit is below what the server sends (the server's may be up to
    # 256 MiB, a client's 8 MiB by default): its refusal counts too (a review).
    small = [("grpc.max_receive_message_length", 150 * 1024)]
    async with Client(server.address, options=small) as client:
        largest, view = await client.get_workflow("padded").largest_view("big")
        assert view == "summary" and largest.status is RunStatus.SUCCESS and largest.input is None
    with SyncClient(server.address, options=small) as sync_client:
        largest, view = sync_client.get_workflow("padded").largest_view("big")
        assert view == "summary" and largest.status is RunStatus.SUCCESS

    shown = await runservice("show", "big", "--target", server.address)
    assert shown.code == 0 and "success" in shown.out and "copy" in shown.out, shown.err
    assert "too large for one reply: shown without its steps' JSON" in shown.err
    as_json = await runservice("show", "big", "--json", "--view", "summary", "--target", server.address)
    assert as_json.code == 0 and json.loads(as_json.out)["status"] == "success", as_json.err
    full = await runservice("show", "big", "--view", "full", "--target", server.address)
    assert full.code == 1 and "REPLY_TOO_LARGE" in full.err and "Traceback" not in full.err
    watched = await runservice("watch", "big", "--target", server.address)
    assert watched.code == 0 and "Traceback" not in watched.err, watched.err


@pytest.mark.parametrize(("size", "said"), [("1000", "at least 65536"), ("536870912", "at most 268435456")])
def test_a_message_size_out_of_range_is_a_one_line_error(tmp_path: Path, size: str, said: str) -> None:
    """Too small for a reply; or past what gRPC's 32-bit limits take with the server's room to
    answer a larger request (before, 512 MiB ended the start with a traceback: an audit)."""
    done = subprocess.run(
        [sys.executable, "-m", "runservice", "serve", "--address", "127.0.0.1:0",
         "--data-dir", str(tmp_path), "--max-message-size", size],
        cwd=ROOT, env=server_env(), capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "max-message-size" in line and said in line
