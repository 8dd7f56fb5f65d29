"""Bearer tokens, tenant scoping, read-only tokens, TLS/mTLS with reload and limits, through a real server."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import trustme
from edge import error_info, serving
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from runservice import errors
from runservice.client import Client
from runservice.model import request_run_id
from runservice.server import EdgeOptions
from runservice.server.app import RunServer
from runservice.server.auth import TokenFileError, TokenSet
from runservice.server.tls import TlsConfigError, TlsFiles, check_tls_files
from runservice.server.watched import WatchedFiles, stamp_of
from runservice.v1 import run_pb2, run_service_pb2_grpc
from runservice.v1 import run_service_pb2 as pb
from runservice.workflow import StepContext, create_step, create_workflow

if TYPE_CHECKING:
    from runservice.v1.run_service_pb2_grpc import RunServiceAsyncStub

pytestmark = pytest.mark.timeout(60)

HEARTBEAT = 0.2


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def count(n: int) -> struct_pb2.Value:
    value = struct_pb2.Value()
    value.struct_value.update({"count": n})
    return value


async def first_message(call: Any) -> pb.WatchResponse:
    message = await call.read()
    assert isinstance(message, pb.WatchResponse)
    return message


async def watched(call: Any) -> list[pb.WatchResponse]:
    """Every message of a Watch call."""
    return [reply async for reply in call]


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


TOKENS_TOML = """
[[tokens]]
name = "admin"
token = "admin-secret"

[[tokens]]
name = "tenant-a"
sha256 = "{a_digest}"
resources = ["a"]

[[tokens]]
name = "reader-a"
token = "reader-secret"
resources = ["a"]
read_only = true

[[tokens]]
name = "tenant-ab"
token = "ab-secret"
resources = ["a", "b"]
"""


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.toml"
    path.write_text(TOKENS_TOML.format(a_digest=hashlib.sha256(b"a-secret").hexdigest()))
    return path


async def test_missing_or_wrong_token_is_unauthenticated_and_health_stays_open(
    tmp_path: Path, tokens_file: Path
) -> None:
    options = EdgeOptions(tokens=TokenSet.load(str(tokens_file), tokens="env-secret"))
    async with (
        serving(tmp_path / "runs.db", options) as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        stub = run_service_pb2_grpc.RunServiceStub(channel)
        missing = await rpc_error(stub.ListWorkflows(pb.ListWorkflowsRequest()))
        assert missing.code() is grpc.StatusCode.UNAUTHENTICATED
        assert error_info(missing).reason == "TOKEN_MISSING"
        wrong = await rpc_error(stub.ListWorkflows(pb.ListWorkflowsRequest(), metadata=bearer("nope")))
        assert wrong.code() is grpc.StatusCode.UNAUTHENTICATED and error_info(wrong).reason == "TOKEN_INVALID"
        # A stream is refused the same way, before any message.
        watch = stub.Watch(pb.WatchRequest(run_id="x"), metadata=bearer("admin-secretX"))
        refused = await rpc_error(watch.read())
        assert error_info(refused).reason == "TOKEN_INVALID"
        # Health needs no token.
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service="runservice.v1.RunService"))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        # Reflection needs no token either (grpcurl and buf curl list services first).
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = reflect.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        services = [svc.name async for answer in answers for svc in answer.list_services_response.service]
        assert "runservice.v1.RunService" in services
        # Tokens from the file (plain and digest) and from the environment list all work.
        for token in ("admin-secret", "a-secret", "env-secret"):
            listed = await stub.ListWorkflows(pb.ListWorkflowsRequest(), metadata=bearer(token))
            assert {wf.id for wf in listed.workflows} == {"echo", "approval", "shapes"}
        # The real client sends its token.
        async with Client(server.address, token="admin-secret", timeout=10) as client:
            run = await client.get_workflow("echo").create_run(run_id="authed")
            done = await run.start_async(input_data={"count": 1})
            assert done.result == {"count": 2}
        async with Client(server.address, token="bad", timeout=10) as client:
            with pytest.raises(errors.Unauthenticated) as denied:
                await client.list_workflows()
            assert denied.value.reason == "TOKEN_INVALID"


async def test_scoped_and_read_only_tokens(tmp_path: Path, tokens_file: Path) -> None:
    async with tokens_served(tmp_path, tokens_file) as (_server, stub):
        admin, tenant, reader, both = (
            bearer("admin-secret"), bearer("a-secret"), bearer("reader-secret"), bearer("ab-secret"),
        )  # fmt: skip
        for run_id, resource in (("run-a", "a"), ("run-b", "b"), ("run-none", "")):
            await stub.Start(
                pb.StartRequest(
                    workflow_id="approval", run_id=run_id, resource_id=resource, input_data=count(1)
                ),
                metadata=admin,
            )

        # In scope: readable, listable.
        got = await stub.GetRun(pb.GetRunRequest(run_id="run-a"), metadata=tenant)
        assert got.run.run_id == "run-a"
        listed = await stub.ListRuns(pb.ListRunsRequest(), metadata=tenant)
        assert [run.run_id for run in listed.runs] == ["run-a"]
        listed = await stub.ListRuns(pb.ListRunsRequest(resource_id="b"), metadata=tenant)
        assert list(listed.runs) == []
        listed = await stub.ListRuns(pb.ListRunsRequest(), metadata=both)
        assert sorted(run.run_id for run in listed.runs) == ["run-a", "run-b"]
        listed = await stub.ListRuns(pb.ListRunsRequest(), metadata=admin)
        assert len(listed.runs) == 3

        # Out of scope: exactly what a missing run answers.
        missing = await rpc_error(stub.GetRun(pb.GetRunRequest(run_id="run-zzz"), metadata=tenant))
        for run_id in ("run-b", "run-none"):
            calls = [
                stub.GetRun(pb.GetRunRequest(run_id=run_id), metadata=tenant),
                stub.Cancel(pb.CancelRequest(run_id=run_id), metadata=tenant),
                stub.DeleteRun(pb.DeleteRunRequest(run_id=run_id), metadata=tenant),
                stub.Resume(pb.ResumeRequest(run_id=run_id), metadata=tenant),
                stub.Watch(pb.WatchRequest(run_id=run_id, include_run=True), metadata=tenant).read(),
            ]
            for call in calls:
                hidden = await rpc_error(call)
                assert hidden.code() is grpc.StatusCode.NOT_FOUND == missing.code()
                assert error_info(hidden).reason == error_info(missing).reason == "RUN_NOT_FOUND"
        still = await stub.GetRun(pb.GetRunRequest(run_id="run-b"), metadata=admin)
        assert still.run.status != 0  # not canceled or deleted by the refused calls
        assert still.run.run_id == "run-b"

        # Starting outside the scope, or without a resource, is refused.
        for resource in ("b", ""):
            denied = await rpc_error(
                stub.Start(pb.StartRequest(workflow_id="echo", resource_id=resource), metadata=tenant)
            )
            assert denied.code() is grpc.StatusCode.PERMISSION_DENIED
            assert error_info(denied).reason == "RESOURCE_NOT_ALLOWED"
            denied = await rpc_error(
                stub.CreateRun(pb.CreateRunRequest(workflow_id="echo", resource_id=resource), metadata=tenant)
            )
            assert denied.code() is grpc.StatusCode.PERMISSION_DENIED
        started = await stub.Start(
            pb.StartRequest(workflow_id="echo", resource_id="a", input_data=count(1), wait=True),
            metadata=tenant,
        )
        assert started.run.resource_id == "a"
        # A retry of a delete that worked succeeds in scope too (the scope check finds no run);
        # another request finds nothing to delete.
        delete = pb.DeleteRunRequest(run_id=started.run.run_id, request_id="tenant-delete")
        await stub.DeleteRun(delete, metadata=tenant)
        await stub.DeleteRun(delete, metadata=tenant)
        other = pb.DeleteRunRequest(run_id=started.run.run_id, request_id="tenant-other")
        assert error_info(await rpc_error(stub.DeleteRun(other, metadata=tenant))).reason == "RUN_NOT_FOUND"

        # Read-only: reads work, every write is refused.
        got = await stub.GetRun(pb.GetRunRequest(run_id="run-a"), metadata=reader)
        assert got.run.run_id == "run-a"
        writes = [
            stub.Start(pb.StartRequest(workflow_id="echo", resource_id="a"), metadata=reader),
            stub.CreateRun(pb.CreateRunRequest(workflow_id="echo", resource_id="a"), metadata=reader),
            stub.Resume(pb.ResumeRequest(run_id="run-a"), metadata=reader),
            stub.Cancel(pb.CancelRequest(run_id="run-a"), metadata=reader),
            stub.Restart(pb.RestartRequest(run_id="run-a"), metadata=reader),
            stub.DeleteRun(pb.DeleteRunRequest(run_id="run-a"), metadata=reader),
        ]
        for call in writes:
            denied = await rpc_error(call)
            assert denied.code() is grpc.StatusCode.PERMISSION_DENIED
            assert error_info(denied).reason == "TOKEN_READ_ONLY"


async def test_a_tenant_can_neither_plant_nor_capture_another_tenants_run(
    tmp_path: Path, tokens_file: Path
) -> None:
    """A Start with a request id and no run id gets a run id derived from (workflow, resource,
    request id): predictable. A tenant that created a run under another tenant's derived id
    ahead of it captured that tenant's Start: its input ran in the planter's run, readable by
    the planter. Now a scoped token may not choose ids of that form, and whoever planted one,
    a Start or CreateRun never uses a run of another resource. Naming the wrong workflow no
    longer tells a tenant that another tenant's run exists, nor its workflow."""
    async with tokens_served(tmp_path, tokens_file) as (_server, stub):
        admin, tenant, both = bearer("admin-secret"), bearer("a-secret"), bearer("ab-secret")
        derived = request_run_id("echo", "order-1", "a")
        for call in (
            stub.CreateRun(
                pb.CreateRunRequest(workflow_id="echo", run_id=derived, resource_id="b"), metadata=both
            ),
            stub.Start(pb.StartRequest(workflow_id="echo", run_id=derived, resource_id="b"), metadata=both),
            stub.ForkRun(pb.ForkRunRequest(run_id="x", new_run_id=derived, step=["bump"]), metadata=both),
        ):
            refused = await rpc_error(call)
            assert refused.code() is grpc.StatusCode.PERMISSION_DENIED
            assert error_info(refused).reason == "RUN_ID_RESERVED"
        # An unscoped caller may choose it; the tenant's Start then refuses that run, and
        # neither runs its input in it nor hands it over.
        await stub.CreateRun(
            pb.CreateRunRequest(workflow_id="echo", run_id=derived, resource_id="b"), metadata=admin
        )
        start = pb.StartRequest(
            workflow_id="echo", resource_id="a", request_id="order-1", input_data=count(7)
        )
        in_use = await rpc_error(stub.Start(start, metadata=tenant))
        assert in_use.code() is grpc.StatusCode.ALREADY_EXISTS
        assert error_info(in_use).reason == "RUN_ID_OF_ANOTHER_RESOURCE"
        planted = await stub.GetRun(pb.GetRunRequest(run_id=derived), metadata=admin)
        assert (planted.run.status, planted.run.HasField("input")) == (run_pb2.RUN_STATUS_PENDING, False)
        # The same when the check before the engine saw no run yet (one created meanwhile):
        # the engine itself refuses another resource's run, for Start and CreateRun alike.
        await stub.CreateRun(
            pb.CreateRunRequest(workflow_id="echo", run_id="shared", resource_id="b"), metadata=admin
        )
        for call in (
            stub.Start(
                pb.StartRequest(workflow_id="echo", run_id="shared", input_data=count(1)), metadata=admin
            ),
            stub.CreateRun(
                pb.CreateRunRequest(workflow_id="echo", run_id="shared", resource_id="a"), metadata=admin
            ),
        ):
            assert error_info(await rpc_error(call)).reason == "RUN_ID_OF_ANOTHER_RESOURCE"

        # Another tenant's run is not found whatever workflow the request names.
        await stub.Start(
            pb.StartRequest(workflow_id="approval", run_id="run-b", resource_id="b", input_data=count(1)),
            metadata=admin,
        )
        missing = await rpc_error(
            stub.GetRun(pb.GetRunRequest(run_id="run-zzz", workflow_id="echo"), metadata=tenant)
        )
        hiding: list[Any] = [
            stub.GetRun(pb.GetRunRequest(run_id="run-b", workflow_id="echo"), metadata=tenant),
            stub.Cancel(pb.CancelRequest(run_id="run-b", workflow_id="echo"), metadata=tenant),
            stub.Resume(pb.ResumeRequest(run_id="run-b", workflow_id="echo"), metadata=tenant),
        ]
        for call in hiding:
            hidden = await rpc_error(call)
            assert (hidden.code(), hidden.details()) == (
                grpc.StatusCode.NOT_FOUND,
                (missing.details() or "").replace("run-zzz", "run-b"),
            )
        # In scope, the wrong workflow is still told as such.
        mismatch = await rpc_error(
            stub.GetRun(pb.GetRunRequest(run_id="run-b", workflow_id="echo"), metadata=both)
        )
        assert error_info(mismatch).reason == "RUN_WORKFLOW_MISMATCH"


async def test_a_token_of_several_resources_gets_full_list_pages(tmp_path: Path, tokens_file: Path) -> None:
    async with tokens_served(tmp_path, tokens_file) as (_server, stub):
        admin, both = bearer("admin-secret"), bearer("ab-secret")
        # Other tenants' runs sit between this caller's, so the store's pages are mostly foreign.
        resources = ["a", "c", "c", "c", "b", "c", "c", "c"] * 3
        for index, resource in enumerate(resources):
            await stub.Start(
                pb.StartRequest(
                    workflow_id="echo",
                    run_id=f"r{index:02}",
                    resource_id=resource,
                    input_data=count(1),
                    wait=True,
                ),
                metadata=admin,
            )
        mine = {f"r{index:02}" for index, resource in enumerate(resources) if resource in ("a", "b")}
        seen: list[str] = []
        pages: list[int] = []
        positions: list[str] = []
        token = ""
        while True:
            page = await stub.ListRuns(pb.ListRunsRequest(page_size=2, page_token=token), metadata=both)
            seen += [run.run_id for run in page.runs]
            pages.append(len(page.runs))
            token = page.next_page_token
            if not token:
                break
            positions.append(json.loads(base64.urlsafe_b64decode(token))[1])
        assert sorted(seen) == sorted(mine) and len(seen) == len(set(seen))
        assert all(size == 2 for size in pages[:-1]), pages  # full pages, never over page_size
        # A token's position is a run of the caller's (it was the last run read, of any tenant:
        # behind a dozen newer runs of another, a page came back empty, pointing at one of them).
        for index in range(12):
            await stub.Start(
                pb.StartRequest(
                    workflow_id="echo", run_id=f"z{index:02}", resource_id="c", input_data=count(1), wait=True
                ),
                metadata=admin,
            )
        page = await stub.ListRuns(pb.ListRunsRequest(page_size=1), metadata=both)
        assert len(page.runs) == 1 and page.runs[0].run_id in mine
        positions.append(json.loads(base64.urlsafe_b64decode(page.next_page_token))[1])
        assert set(positions) <= mine


async def test_a_reload_ends_the_open_streams_of_a_revoked_or_changed_token(
    tmp_path: Path, tokens_file: Path
) -> None:
    """A Watch of a suspended run can stay open for days on heartbeats. A token removed from
    the file (or whose scope changed) kept its open streams after SIGHUP; now they end with
    UNAUTHENTICATED (`TOKEN_REVOKED`), and the streams of unchanged tokens go on."""
    async with tokens_served(tmp_path, tokens_file) as (server, stub):
        admin, tenant, both = bearer("admin-secret"), bearer("a-secret"), bearer("ab-secret")
        await stub.Start(
            pb.StartRequest(
                workflow_id="approval", run_id="run-a", resource_id="a", input_data=count(1), wait=True
            ),
            metadata=admin,
        )
        watches = {
            name: stub.Watch(pb.WatchRequest(run_id="run-a"), metadata=metadata)
            for name, metadata in (("admin", admin), ("tenant", tenant), ("both", both))
        }
        for watch in watches.values():
            await first_message(watch)
        assert server.auth is not None
        # tenant-a is removed; tenant-ab loses resource "b"; admin is unchanged.
        changed = TOKENS_TOML.format(a_digest=hashlib.sha256(b"other").hexdigest())
        await asyncio.to_thread(tokens_file.write_text, changed.replace('["a", "b"]', '["a"]'))
        await server.auth.reload()
        for name in ("tenant", "both"):
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                while True:
                    await watches[name].read()
            assert ended.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert error_info(ended.value).reason == "TOKEN_REVOKED"
        beat = await asyncio.wait_for(watches["admin"].read(), 5)  # a heartbeat: still open
        assert isinstance(beat, pb.WatchResponse)
        watches["admin"].cancel()
        refused = await rpc_error(stub.GetRun(pb.GetRunRequest(run_id="run-a"), metadata=tenant))
        assert error_info(refused).reason == "TOKEN_INVALID"


async def test_follow_goes_on_when_its_tokens_scope_changed_and_ends_when_it_is_gone(
    tmp_path: Path, tokens_file: Path
) -> None:
    """The clients' follow raised the server's TOKEN_REVOKED: a token whose scope a reload
    changed (it still grants the run) lost its watch. Now follow reopens with the same token:
    the watch goes on, every event once; a token that is gone fails with TOKEN_INVALID."""
    options = EdgeOptions(tokens=TokenSet.load(str(tokens_file)))
    async with (
        serving(tmp_path / "runs.db", options) as server,
        Client(server.address, token="admin-secret") as admin,
        Client(server.address, token="ab-secret") as both,
        Client(server.address, token="a-secret") as tenant,
    ):
        run = await admin.get_workflow("approval").create_run(resource_id="a")
        await run.start_async({"count": 1})  # suspended
        seen: dict[str, list[int]] = {"both": [], "tenant": []}

        async def follow(name: str, client: Client) -> None:
            async for event in client.follow(run.run_id):
                seen[name].append(event.sequence)

        watches = {
            name: asyncio.create_task(follow(name, client))
            for name, client in (("both", both), ("tenant", tenant))
        }
        while not all(seen.values()):
            await asyncio.sleep(0.02)
        assert server.auth is not None
        # tenant-a is removed; tenant-ab loses resource "b" (it still grants run "a").
        changed = TOKENS_TOML.format(a_digest=hashlib.sha256(b"other").hexdigest())
        await asyncio.to_thread(tokens_file.write_text, changed.replace('["a", "b"]', '["a"]'))
        await server.auth.reload()
        with pytest.raises(errors.Unauthenticated) as gone:
            await asyncio.wait_for(watches["tenant"], 10)
        assert gone.value.reason == "TOKEN_INVALID"
        await asyncio.sleep(0.5)  # the reopened watch is open again
        assert not watches["both"].done()
        await run.resume_async({"approved": True})
        await asyncio.wait_for(watches["both"], 10)
    assert seen["both"] == list(range(1, len(seen["both"]) + 1)) and len(seen["both"]) > len(seen["tenant"])


@create_step("gushing")
async def gushing(ctx: StepContext) -> None:
    while True:  # until cancelled: events of 1.5 KB as fast as they are stored
        await ctx.writer.write("x" * 1500)


flood = create_workflow("flood").then(gushing).commit()
"""A run whose Watch fills any flow-control window of a client that does not read."""


async def test_a_revocation_while_the_server_waits_to_send_ends_the_watch_with_its_status(
    tmp_path: Path, tokens_file: Path
) -> None:
    """A Watch whose client reads slower than the server sends (the server waits on flow
    control): a reload that changed its token's scope ended the handler, but the call got no
    status at all and hung until the client gave up (audit). Now the client gets the messages
    sent before, then UNAUTHENTICATED TOKEN_REVOKED (a follow reopens on it)."""
    options = EdgeOptions(tokens=TokenSet.load(str(tokens_file)))
    async with (
        serving(tmp_path / "runs.db", options, workflows=[flood]) as server,
        grpc.aio.insecure_channel(server.address, options=[("grpc.http2.bdp_probe", 0)]) as channel,
    ):
        stub = run_service_pb2_grpc.RunServiceStub(channel)
        start = pb.StartRequest(workflow_id="flood", run_id="gush", resource_id="a")
        await stub.Start(start, metadata=bearer("admin-secret"))
        watch = stub.Watch(pb.WatchRequest(run_id="gush"), metadata=bearer("ab-secret"))
        await first_message(watch)
        await asyncio.sleep(1.0)  # read nothing more: the server soon waits to send
        assert server.auth is not None
        changed = TOKENS_TOML.format(a_digest=hashlib.sha256(b"a-secret").hexdigest())
        await asyncio.to_thread(tokens_file.write_text, changed.replace('["a", "b"]', '["a"]'))
        await server.auth.reload()
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            async with asyncio.timeout(10):
                while (await watch.read()) is not grpc.aio.EOF:
                    pass
        assert error_info(ended.value).reason == "TOKEN_REVOKED"
        await stub.Cancel(pb.CancelRequest(run_id="gush"), metadata=bearer("admin-secret"))


@contextlib.asynccontextmanager
async def tokens_served(
    tmp_path: Path, tokens_file: Path
) -> AsyncIterator[tuple[RunServer, RunServiceAsyncStub]]:
    """A server whose tokens come from `tokens_file`, and a RunService stub on it."""
    options = EdgeOptions(tokens=TokenSet.load(str(tokens_file)))
    async with (
        serving(tmp_path / "runs.db", options) as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        yield server, run_service_pb2_grpc.RunServiceStub(channel)


@contextlib.asynccontextmanager
async def tokens_file_served(
    tmp_path: Path, text: str, *, poll: float = 2.0
) -> AsyncIterator[tuple[Any, Any, Path]]:
    """A server whose tokens come from `tokens.txt` holding `text` (looked at every `poll`
    seconds), with a RunService stub on it, and the file's path."""
    path = tmp_path / "tokens.txt"
    path.write_text(text)
    options = EdgeOptions(tokens=TokenSet.load(str(path)), tokens_poll_interval=poll)
    async with (
        serving(tmp_path / "runs.db", options) as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        yield server, run_service_pb2_grpc.RunServiceStub(channel), path


async def test_removing_a_line_of_a_plain_tokens_file_keeps_the_streams_of_the_others(tmp_path: Path) -> None:
    """A plain file's tokens are named by their line: removing the first renamed the second, and
    its open streams ended as revoked though nobody changed it (audit)."""
    async with tokens_file_served(tmp_path, "tok-a\ntok-abc\n") as (server, stub, path):
        kept, gone = bearer("tok-abc"), bearer("tok-a")
        start = pb.StartRequest(workflow_id="approval", run_id="r", input_data=count(1), wait=True)
        await stub.Start(start, metadata=kept)
        watches = {
            name: stub.Watch(pb.WatchRequest(run_id="r"), metadata=m)
            for name, m in (("kept", kept), ("gone", gone))
        }
        for watch in watches.values():
            await first_message(watch)
        assert server.auth is not None
        await asyncio.to_thread(path.write_text, "tok-abc\n")
        await server.auth.reload()
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            while True:
                await watches["gone"].read()
        assert error_info(ended.value).reason == "TOKEN_REVOKED"
        beat = await asyncio.wait_for(watches["kept"].read(), 5)  # a heartbeat: still open
        assert isinstance(beat, pb.WatchResponse)
        watches["kept"].cancel()


async def answer(stub: Any, token: str) -> grpc.StatusCode:
    """What a call with `token` gets: OK, or the code it failed with."""
    try:
        await stub.ListWorkflows(pb.ListWorkflowsRequest(), metadata=bearer(token))
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


OK, DENIED = grpc.StatusCode.OK, grpc.StatusCode.UNAUTHENTICATED


def log_lines(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(text in record.getMessage() for record in caplog.records)


async def test_a_tokens_file_that_changed_while_read_is_not_taken(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A read that caught `echo second-token >> tokens.txt` mid-write took the cut-off line, a
    prefix of the token (a shorter secret), as a token. A file whose stamp changed between the
    look before the read and the end of the read is not taken; the watcher reads it once it holds
    still. A file written without a final newline (`kubectl create secret --from-literal`,
    `printf %s`) is taken as it is (audit: refusing it locked servers out at start)."""
    caplog.set_level(logging.INFO, logger="runservice.server.auth")
    async with tokens_file_served(tmp_path, "first-token", poll=0.05) as (server, stub, path):  # no newline
        assert len(TokenSet.load(str(path))) == 1
        assert server.auth is not None and server.auth.tokens.path == str(path)
        assert await answer(stub, "first-token") == OK
        looked = stamp_of((str(path),))  # the look before a read
        await asyncio.to_thread(path.write_text, "first-token\nsecond-to")  # a writer, mid-way
        await server.auth._reload(looked)  # the read that follows the look: the file changed since
        assert [await answer(stub, t) for t in ("first-token", "second-to")] == [OK, DENIED]
        assert log_lines(caplog, "changed while it was read") == 1
        await asyncio.to_thread(path.write_text, "first-token\nsecond-token\n")  # the writer done
        await until_answers(stub, {"first-token": OK, "second-token": OK, "second-to": DENIED})


async def test_emptying_the_tokens_file_revokes_every_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Emptying the file, to revoke every token, kept them all valid: a reload that found no
    token kept the current ones. Now it revokes them: every call is UNAUTHENTICATED and open
    streams end, health still answers, one warning says so, and authentication stays on."""
    caplog.set_level(logging.INFO, logger="runservice.server.auth")
    async with tokens_file_served(tmp_path, "only-token\n") as (server, stub, path):
        assert server.auth is not None
        await stub.Start(
            pb.StartRequest(workflow_id="approval", run_id="r", input_data=count(1), wait=True),
            metadata=bearer("only-token"),
        )
        watch = stub.Watch(pb.WatchRequest(run_id="r"), metadata=bearer("only-token"))
        await first_message(watch)
        for emptied in ("", "# every token revoked\n\n"):
            await asyncio.to_thread(path.write_text, emptied)
            await server.auth.reload()
            assert await answer(stub, "only-token") is DENIED
        missing = await rpc_error(stub.ListWorkflows(pb.ListWorkflowsRequest()))
        assert error_info(missing).reason == "TOKEN_MISSING"  # not "no auth": still required
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            while True:
                await watch.read()
        assert error_info(ended.value).reason == "TOKEN_REVOKED"
        async with grpc.aio.insecure_channel(server.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(service="runservice.v1.RunService"))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert log_lines(caplog, f"the tokens file {path} holds none") == 2  # one per reload
        await asyncio.to_thread(path.write_text, "new-token\n")
        await server.auth.reload()
        assert [await answer(stub, t) for t in ("new-token", "only-token")] == [OK, DENIED]


async def test_a_server_whose_tokens_file_holds_none_starts_refusing_every_call(tmp_path: Path) -> None:
    """At start as on a reload: an empty tokens file accepts no token (it exited with a usage
    error, so a restart while every token was revoked stopped the runs it drives too)."""
    import signal

    from process import serve_argv, server_env, start_server

    path = tmp_path / "tokens.txt"
    path.write_text("")
    args = ("--data-dir", str(tmp_path / "data"), "--tokens-file", str(path))
    server = await start_server(serve_argv(*args), env=server_env())
    try:
        assert f"the tokens file {path} holds none" in server.text
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = run_service_pb2_grpc.RunServiceStub(channel)
            assert await answer(stub, "") is DENIED and await answer(stub, "some-token") is DENIED
            await asyncio.to_thread(path.write_text, "first-token\n")
            server.proc.send_signal(signal.SIGHUP)
            for _ in range(100):
                if await answer(stub, "first-token") is OK:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the token written to the file was never accepted")
        assert await server.stop() == 0
    finally:
        await server.kill()
    # A tokens setting that lists none can never accept one: still a usage error.
    refused = await start_server_exit(server_env(RUNSERVICE_TOKENS=" , "), tmp_path)
    assert refused[0] == 2 and "no token was found" in refused[1]


async def start_server_exit(env: dict[str, str], tmp_path: Path) -> tuple[int, str]:
    """The exit code and stderr of a `serve` that is expected to refuse to start."""
    from process import serve_argv

    proc = await asyncio.create_subprocess_exec(
        *serve_argv("--data-dir", str(tmp_path / "refused")),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def until_answers(stub: Any, expected: dict[str, grpc.StatusCode], within: float = 5.0) -> None:
    """Wait until each token of `expected` gets its answer."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        got = {token: await answer(stub, token) for token in expected}
        if got == expected:
            return
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"after {within}s the tokens still get {got}, not {expected}")
        await asyncio.sleep(0.02)


async def test_a_tokens_file_whose_read_hangs_holds_up_no_call(tmp_path: Path) -> None:
    """The tokens file was read on the event loop: a read that hangs (a network file system
    gone away; here a FIFO nobody writes to) stalled every call. Now it holds up the reload
    only, and the server still answers and stops."""
    released = threading.Event()
    async with tokens_file_served(tmp_path, "old-token\n", poll=0.05) as (server, stub, path):
        fifo = tmp_path / "tokens.fifo"
        os.mkfifo(fifo)
        os.replace(fifo, path)  # the watcher sees a change, then opens it: blocked until a writer comes

        def write_later() -> None:  # whatever happens, the read ends (and the test) within seconds
            released.wait(5)
            with open(path, "w") as writer:
                writer.write("ignored-token\n")

        writer = threading.Thread(target=write_later, daemon=True)
        writer.start()
        await asyncio.sleep(0.5)  # several looks: the read has begun and hangs
        loop = asyncio.get_running_loop()
        for _ in range(5):
            began = loop.time()
            assert await answer(stub, "old-token") == OK
            assert loop.time() - began < 1.0
            await asyncio.sleep(0.1)
        released.set()
        await asyncio.to_thread(writer.join, 10)
        renamed = path.with_name("tokens.txt.tmp")
        await asyncio.to_thread(renamed.write_text, "new-token\n")
        await asyncio.to_thread(os.replace, renamed, path)
        await until_answers(stub, {"new-token": OK, "old-token": DENIED})
        assert server.auth is not None


async def test_the_tokens_file_is_read_again_when_it_changes_without_a_signal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The tokens were read again only on SIGHUP, while the TLS files were followed: a token
    removed from the file stayed valid until someone signalled the server. Now the file is
    watched the same way (server/watched.py): no signal, and the new token works and the
    removed one is UNAUTHENTICATED within the poll interval (twice it: a change is read once
    it held still from one look to the next). A refused file is logged once, not per look."""
    caplog.set_level(logging.INFO, logger="runservice.server.auth")
    interval = 0.1
    async with tokens_file_served(tmp_path, "old-token\n", poll=interval) as (_, stub, path):
        await stub.Start(
            pb.StartRequest(workflow_id="approval", run_id="r", input_data=count(1), wait=True),
            metadata=bearer("old-token"),
        )
        watch = stub.Watch(pb.WatchRequest(run_id="r"), metadata=bearer("old-token"))
        await first_message(watch)
        await asyncio.to_thread(path.write_text, "new-token\n")
        await until_answers(stub, {"new-token": OK, "old-token": DENIED})
        with pytest.raises(grpc.aio.AioRpcError) as ended:  # its open streams end too
            while True:
                await watch.read()
        assert error_info(ended.value).reason == "TOKEN_REVOKED"

        # Unreadable: refused, with one warning however many looks see it.
        await asyncio.to_thread(path.write_text, "new-token\nbad token\n")
        await asyncio.sleep(10 * interval)
        assert [await answer(stub, t) for t in ("new-token", "bad")] == [OK, DENIED]
        assert log_lines(caplog, "tokens not reloaded") == 1

        # Replaced by a rename (a new inode, what `mv` and Kubernetes Secret volumes do).
        partial = path.with_name("tokens.txt.tmp")
        await asyncio.to_thread(partial.write_text, "next-token\n")
        await asyncio.to_thread(os.replace, partial, path)
        await until_answers(stub, {"next-token": OK, "new-token": DENIED, "next-tok": DENIED})

        # Emptied: every token revoked, no signal either.
        await asyncio.to_thread(path.write_text, "")
        await until_answers(stub, {"next-token": DENIED})


def test_watched_files_read_a_change_once_it_held_still_and_a_failure_once(tmp_path: Path) -> None:
    """What the tokens file's watcher reads (server/watched.py), look by look, on real files."""
    path = tmp_path / "tokens.txt"
    path.write_text("a\n")
    watched = WatchedFiles([str(path)], settle=True)
    assert watched.due() is None  # unchanged
    path.write_text("a\nb")
    assert watched.due() is None  # changed: seen, not read yet
    path.write_text("a\nb\n")
    assert watched.due() is None  # changed again since that look: still not read
    stamp = watched.due()
    assert stamp is not None and stamp == stamp_of([str(path)])  # held still from one look to the next
    watched.read(stamp, ok=False)
    assert watched.due() is None and watched.failing  # a refused file is not read again at each look
    path.unlink()
    assert watched.due() is None
    missing = watched.due()
    assert missing == (None,)  # a file gone is a change too (reading it fails: logged once)
    watched.read(missing, ok=False)
    assert watched.due() is None
    watched.request()  # SIGHUP: read now, changed or not
    assert watched.due() == (None,)


def test_token_files_plain_and_bad(tmp_path: Path) -> None:
    plain = tmp_path / "tokens.txt"
    plain.write_text("# operators\none\n\n  two  \n")
    tokens = TokenSet.load(str(plain))
    assert len(tokens) == 2 and tokens.find("two") is not None and tokens.find("three") is None
    bad = tmp_path / "tokens.json"
    bad.write_text('{"tokens": [{"token": "x", "resources": "a"}]}')
    with pytest.raises(TokenFileError, match="resources"):
        TokenSet.load(str(bad))
    with pytest.raises(TokenFileError, match="cannot read"):
        TokenSet.load(str(tmp_path / "absent.txt"))
    # A token no client can send (gRPC metadata is printable ASCII) is refused in every source.
    unsendable = tmp_path / "unsendable.toml"
    unsendable.write_text('[[tokens]]\ntoken = "t\u00e9st"\n')
    with pytest.raises(TokenFileError, match="printable ASCII"):
        TokenSet.load(str(unsendable))
    plain.write_text("one two\n")
    with pytest.raises(TokenFileError, match="printable ASCII"):
        TokenSet.load(str(plain))
    # A last line without its newline is taken (what `printf %s` and `kubectl --from-literal` write).
    plain.write_text("one\ntwo")
    assert len(TokenSet.load(str(plain))) == 2
    plain.write_text("one\r\n# comment\r\n  \t")  # CRLF, and only blanks after the last line
    assert len(TokenSet.load(str(plain))) == 1
    with pytest.raises(TokenFileError, match="printable ASCII"):
        TokenSet.load(tokens="good,b\u00e4d")
    # The digest of an empty token (`sha256sum` of an unset variable) would admit "Bearer ".
    empty = tmp_path / "empty.toml"
    empty.write_text(f'[[tokens]]\nsha256 = "{hashlib.sha256(b"").hexdigest()}"\n')
    with pytest.raises(TokenFileError, match="empty token"):
        TokenSet.load(str(empty))


async def test_stream_limit_per_caller(tmp_path: Path) -> None:
    options = EdgeOptions(max_streams_per_caller=2)
    async with (
        serving(tmp_path / "runs.db", options) as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        stub = run_service_pb2_grpc.RunServiceStub(channel)
        await stub.Start(pb.StartRequest(workflow_id="approval", run_id="r", input_data=count(1), wait=True))
        watches = [stub.Watch(pb.WatchRequest(run_id="r", include_run=True)) for _ in range(2)]
        for watch in watches:
            assert (await first_message(watch)).HasField("run")
        third = stub.Watch(pb.WatchRequest(run_id="r", include_run=True))
        refused = await rpc_error(third.read())
        assert refused.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        info = error_info(refused)
        assert info.reason == "TOO_MANY_STREAMS" and info.metadata["limit"] == "2"
        # Everything else is still served, and closing a stream frees a slot.
        assert (await stub.GetRun(pb.GetRunRequest(run_id="r"))).run.run_id == "r"
        watches[0].cancel()
        for _ in range(50):
            fourth = stub.Watch(pb.WatchRequest(run_id="r", include_run=True))
            try:
                assert (await first_message(fourth)).HasField("run")
                break
            except grpc.aio.AioRpcError as exc:  # the freed slot is released asynchronously
                assert exc.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
                await asyncio.sleep(0.05)
        else:
            pytest.fail("a cancelled stream never freed its slot")
        fourth.cancel()
        watches[1].cancel()


async def test_message_size_and_concurrent_stream_limits(tmp_path: Path) -> None:
    options = EdgeOptions(max_message_size=64 * 1024, max_concurrent_streams=2)
    async with (
        serving(tmp_path / "runs.db", options) as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        stub = run_service_pb2_grpc.RunServiceStub(channel)
        big = struct_pb2.Value(string_value="x" * 100_000)
        too_big = await rpc_error(stub.Start(pb.StartRequest(workflow_id="echo", input_data=big)))
        assert too_big.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        info = error_info(too_big)
        assert info.reason == "MESSAGE_TOO_LARGE" and info.metadata["limit"] == str(64 * 1024)
        await stub.Start(pb.StartRequest(workflow_id="approval", run_id="r", input_data=count(1), wait=True))

        # Two streams fill the connection; a third waits (HTTP/2), then runs once one ends.
        watches = [stub.Watch(pb.WatchRequest(run_id="r", include_run=True)) for _ in range(2)]
        for watch in watches:
            await watch.read()
        third = stub.Watch(pb.WatchRequest(run_id="r", include_run=True))
        first_read = asyncio.ensure_future(first_message(third))
        done, _ = await asyncio.wait({first_read}, timeout=0.5)
        assert not done, "a third concurrent stream on one connection should wait"
        async with grpc.aio.insecure_channel(
            server.address, options=[("grpc.use_local_subchannel_pool", 1)]
        ) as other:  # another connection is served
            other_stub = run_service_pb2_grpc.RunServiceStub(other)
            assert (await other_stub.GetRun(pb.GetRunRequest(run_id="r"))).run.run_id == "r"
        watches[0].cancel()
        assert (await asyncio.wait_for(first_read, 5)).HasField("run")
        third.cancel()
        watches[1].cancel()


# -- TLS -----------------------------------------------------------------------------------------


def write_cert(ca: trustme.CA, directory: Path, name: str) -> TlsFiles:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    directory.mkdir(parents=True, exist_ok=True)
    chain, key = directory / f"{name}.pem", directory / f"{name}.key"
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    key.write_bytes(cert.private_key_pem.bytes())
    return TlsFiles(str(chain), str(key))


def replace_file(target: str, source: str) -> None:
    Path(target).write_bytes(Path(source).read_bytes())


def write_file(target: str, text: str) -> None:
    Path(target).write_text(text)


async def list_over_tls(address: str, credentials: grpc.ChannelCredentials) -> int:
    async with Client(address, credentials=credentials, timeout=5) as client:
        return len(await client.list_workflows())


async def test_tls_and_reload_without_restart(tmp_path: Path) -> None:
    first_ca, second_ca = trustme.CA(), trustme.CA()
    files = write_cert(first_ca, tmp_path / "tls", "server")
    async with serving(tmp_path / "runs.db", EdgeOptions(tls=files)) as server:
        trusting_first = grpc.ssl_channel_credentials(first_ca.cert_pem.bytes())
        trusting_second = grpc.ssl_channel_credentials(second_ca.cert_pem.bytes())
        assert await list_over_tls(server.address, trusting_first) == 3
        with pytest.raises(errors.Unavailable):  # plaintext to a TLS port fails
            async with Client(server.address, timeout=2) as plain:
                await plain.list_workflows()

        # Replace the files: new connections get the new certificate, no restart.
        new = write_cert(second_ca, tmp_path / "new", "server")
        replace_file(files.cert, new.cert)
        replace_file(files.key, new.key)
        assert await list_over_tls(server.address, trusting_second) == 3
        with pytest.raises(errors.Unavailable):
            await list_over_tls(server.address, trusting_first)
        assert server.tls is not None and server.tls.reloads == 1

        # SIGHUP's path: a requested reload reads the files again even if they look unchanged.
        server.tls.request_reload()
        assert await list_over_tls(server.address, trusting_second) == 3
        assert server.tls.reloads == 2

        # A broken new key is refused; the server keeps its certificate.
        write_file(files.key, "not a key")
        assert await list_over_tls(server.address, trusting_second) == 3


async def test_a_sighup_while_a_certificate_read_hangs_holds_up_no_call(tmp_path: Path) -> None:
    """A handshake whose certificate read hangs (a network file system gone; here a FIFO)
    held the reload lock, and SIGHUP's `request_reload` waited for it on the event loop:
    every call of the server froze (audit). Now it only asks, and calls on open connections
    go on; the next handshake reads the files."""
    ca = trustme.CA()
    files = write_cert(ca, tmp_path / "tls", "server")
    trusting = grpc.ssl_channel_credentials(ca.cert_pem.bytes())
    released = threading.Event()
    async with (
        serving(tmp_path / "runs.db", EdgeOptions(tls=files)) as server,
        Client(server.address, credentials=trusting, timeout=5) as open_connection,
    ):
        assert len(await open_connection.list_workflows()) == 3
        good = await asyncio.to_thread(Path(files.cert).read_bytes)
        fifo, kept = tmp_path / "cert.fifo", tmp_path / "cert.fifo.link"
        os.mkfifo(fifo)
        os.link(fifo, kept)
        os.replace(fifo, files.cert)  # the next handshake's read of the certificate hangs

        def unblock_later() -> None:  # whatever happens, the read ends (and the test) within seconds
            released.wait(8)
            fresh = tmp_path / "cert.new"
            fresh.write_bytes(good)
            os.replace(fresh, files.cert)  # a file again, for the reads that follow
            with open(kept, "wb") as writer:  # the read blocked on the FIFO gets it too
                writer.write(good)

        writer = threading.Thread(target=unblock_later, daemon=True)
        writer.start()
        with pytest.raises(errors.ServiceError):  # its handshake waits on the FIFO: a gRPC thread
            async with Client(server.address, credentials=trusting, timeout=1) as new_connection:
                await new_connection.list_workflows()
        assert server.tls is not None
        loop = asyncio.get_running_loop()
        began = loop.time()
        server.tls.request_reload()  # what SIGHUP's handler does, on the event loop
        assert loop.time() - began < 0.5
        assert len(await asyncio.wait_for(open_connection.list_workflows(), 2)) == 3
        released.set()
        await asyncio.to_thread(writer.join, 10)


async def test_broken_certificate_files_are_logged_once_not_at_every_handshake(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Certificate files replaced with bad content were read again, and their failure logged,
    at every new connection: a log flood. Now each distinct failure is logged once, the last
    good certificate keeps serving, and one line says when the files work again."""
    caplog.set_level(logging.INFO, logger="runservice.server.tls")
    ca = trustme.CA()
    files = write_cert(ca, tmp_path / "tls", "server")
    good_key = str(tmp_path / "good.key")
    replace_file(good_key, files.key)
    trusting = grpc.ssl_channel_credentials(ca.cert_pem.bytes())

    def lines(text: str) -> int:
        return sum(text in record.getMessage() for record in caplog.records)

    async with serving(tmp_path / "runs.db", EdgeOptions(tls=files)) as server:
        write_file(files.key, "not a key")
        for _ in range(5):  # each Client is a new connection, so a new handshake
            assert await list_over_tls(server.address, trusting) == 3
        assert lines("TLS reload failed") == 1
        write_file(files.key, "another broken key")  # changed, still broken: a new failure
        for _ in range(3):
            assert await list_over_tls(server.address, trusting) == 3
        assert lines("TLS reload failed") == 2
        replace_file(files.key, good_key)
        for _ in range(3):
            assert await list_over_tls(server.address, trusting) == 3
        assert lines("the files are usable again") == 1
        assert lines("TLS certificate reloaded") == 1
        assert server.tls is not None and server.tls.reloads == 1


async def test_mutual_tls(tmp_path: Path) -> None:
    server_ca, client_ca = trustme.CA(), trustme.CA()
    files = write_cert(server_ca, tmp_path, "server")
    ca_file = tmp_path / "client-ca.pem"
    ca_file.write_bytes(client_ca.cert_pem.bytes())
    mtls = TlsFiles(files.cert, files.key, str(ca_file))
    async with serving(tmp_path / "runs.db", EdgeOptions(tls=mtls)) as server:
        client_cert = client_ca.issue_cert("client@example.com")
        with_cert = grpc.ssl_channel_credentials(
            server_ca.cert_pem.bytes(),
            client_cert.private_key_pem.bytes(),
            b"".join(blob.bytes() for blob in client_cert.cert_chain_pems),
        )
        assert await list_over_tls(server.address, with_cert) == 3
        without_cert = grpc.ssl_channel_credentials(server_ca.cert_pem.bytes())
        with pytest.raises(errors.Unavailable):
            await list_over_tls(server.address, without_cert)
        stranger = trustme.CA().issue_cert("stranger@example.com")
        wrong_cert = grpc.ssl_channel_credentials(
            server_ca.cert_pem.bytes(),
            stranger.private_key_pem.bytes(),
            b"".join(blob.bytes() for blob in stranger.cert_chain_pems),
        )
        with pytest.raises(errors.Unavailable):
            await list_over_tls(server.address, wrong_cert)

        # `runservice health` (the image's HEALTHCHECK) presents a client certificate too.
        from clitools import clean_env, runservice

        client_files = write_cert(client_ca, tmp_path / "client", "client")
        server_ca_file = tmp_path / "server-ca.pem"
        server_ca_file.write_bytes(server_ca.cert_pem.bytes())
        health = ("health", "--address", server.address, "--tls-ca", str(server_ca_file))
        checked = await runservice(
            *health, "--tls-cert", client_files.cert, "--tls-key", client_files.key, env=clean_env()
        )
        assert checked.code == 0 and checked.out.strip().endswith("SERVING"), checked.err
        refused = await runservice(*health, env=clean_env())
        assert refused.code == 1 and "health check" in refused.err
        # health gives the hints every command gives (it gave none: an audit).
        assert "does it ask for a client certificate (--tls-cert)?" in refused.err, refused.err
        plain = await runservice("health", "--address", server.address, env=clean_env())
        assert plain.code == 1 and "or does it serve TLS? (--tls-ca)" in plain.err, plain.err
        half = await runservice(*health, "--tls-cert", client_files.cert, env=clean_env())
        assert half.code == 1 and "go together" in half.err

        # A refused handshake is a closed socket to the client: the CLI says what else it may be.
        listing = ("workflows", "--target", server.address, "--tls-ca", str(server_ca_file))
        bare = await runservice(*listing, env=clean_env())
        assert bare.code == 1 and "does it ask for a client certificate (--tls-cert)?" in bare.err, bare.err
        strangers = write_cert(trustme.CA(), tmp_path / "stranger", "client")
        foreign = await runservice(
            *listing, "--tls-cert", strangers.cert, "--tls-key", strangers.key, env=clean_env()
        )
        assert foreign.code == 1 and "did it refuse --tls-cert?" in foreign.err, foreign.err
        # Without TLS flags the server hangs up too: TLS is named, not only "is a server running".
        plaintext = await runservice("workflows", "--target", server.address, env=clean_env())
        assert plaintext.code == 1, plaintext.err
        assert "or does it serve TLS? (--tls or --tls-ca)" in plaintext.err, plaintext.err


async def test_health_checks_a_certificate_that_names_the_service_not_loopback(tmp_path: Path) -> None:
    """A probe dials the pod on loopback, but a certificate issued for the service (what
    cert-manager makes) names the service: the hostname check failed (deploy audit)."""
    from clitools import clean_env, runservice

    ca = trustme.CA()
    cert = ca.issue_cert("runservice.default.svc")
    (tmp_path / "tls").mkdir()
    chain, key = tmp_path / "tls" / "server.pem", tmp_path / "tls" / "server.key"
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    key.write_bytes(cert.private_key_pem.bytes())
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    async with serving(tmp_path / "runs.db", EdgeOptions(tls=TlsFiles(str(chain), str(key)))) as server:
        health = ("health", "--address", server.address, "--tls-ca", str(ca_file))
        refused = await runservice(*health, env=clean_env())
        assert refused.code == 1 and "health check" in refused.err
        named = await runservice(*health, "--tls-server-name", "runservice.default.svc", env=clean_env())
        assert named.code == 0 and named.out.strip().endswith("SERVING"), named.err
    plain = await runservice("health", "--address", "127.0.0.1:1", "--tls-server-name", "x", env=clean_env())
    assert plain.code == 1 and "--tls-server-name needs TLS" in plain.err


def test_bad_tls_files_are_refused_before_serving(tmp_path: Path) -> None:
    files = write_cert(trustme.CA(), tmp_path, "server")
    other = write_cert(trustme.CA(), tmp_path, "other")
    with pytest.raises(TlsConfigError, match="not a usable pair"):
        check_tls_files(TlsFiles(files.cert, other.key))
    with pytest.raises(TlsConfigError, match="cannot read"):
        check_tls_files(TlsFiles(files.cert, str(tmp_path / "absent.key")))


async def test_the_cli_calls_a_server_with_tls_and_a_token(tmp_path: Path) -> None:
    from clitools import clean_env, runservice

    ca = trustme.CA()
    files = write_cert(ca, tmp_path / "tls", "server")
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    options = EdgeOptions(tokens=TokenSet.load(None, tokens="cli-secret"), tls=files)
    async with serving(tmp_path / "runs.db", options) as server:
        target = server.address.replace("127.0.0.1", "localhost")  # the certificate's name
        base = ("--target", target, "--tls-ca", str(ca_file), "--json")
        listed = await runservice("workflows", *base, env=clean_env(RUNSERVICE_TOKEN="cli-secret"))
        assert listed.code == 0, listed.err
        assert {w["id"] for w in listed.json()["workflows"]} >= {"echo", "approval"}
        refused = await runservice("workflows", *base, env=clean_env())
        assert refused.code == 1 and "UNAUTHENTICATED" in refused.err
        plain = await runservice(
            "workflows", "--target", target, env=clean_env(RUNSERVICE_TOKEN="cli-secret")
        )
        assert plain.code == 1


async def test_calls_refused_for_their_token_are_told_in_the_log_a_line_a_minute(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the access log, a caller guessing tokens (or one left with a revoked token) left
    no trace but metrics (audit): the first refusal is told at once, then one line a minute
    (here 0.3 s) counts those refused since, by reason."""
    from runservice.server import auth

    monkeypatch.setattr(auth, "DENIALS_TOLD_EVERY", 0.3)
    options = EdgeOptions(tokens=TokenSet.load(tokens="a-token"))
    async with (
        serving(tmp_path / "runs.db", options) as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        stub = run_service_pb2_grpc.RunServiceStub(channel)

        def told() -> list[tuple[str, str]]:
            return [
                (r.levelname, r.getMessage()) for r in caplog.records if "calls refused" in r.getMessage()
            ]

        first = "calls refused for their bearer token: 1 TOKEN_MISSING (most from ipv4:127.0.0.1: 1; last: "
        await rpc_error(stub.ListWorkflows(pb.ListWorkflowsRequest()))
        assert len(told()) == 1 and told()[0][1].startswith(first), told()
        for token in ("guess-1", "guess-2", "guess-3"):
            await rpc_error(stub.ListWorkflows(pb.ListWorkflowsRequest(), metadata=bearer(token)))
        await rpc_error(stub.ListWorkflows(pb.ListWorkflowsRequest()))
        assert len(told()) == 1  # within the minute: counted, not told
        await asyncio.sleep(0.5)  # the minute ends: told with no later refusal needed
        second = "calls refused for their bearer token: 3 TOKEN_INVALID, 1 TOKEN_MISSING"
        second += " (most from ipv4:127.0.0.1: 4;"
        assert len(told()) == 2 and told()[1][1].startswith(second), told()
        assert {level for level, _ in told()} == {"WARNING"}


async def test_refusals_not_yet_told_are_told_when_the_server_stops(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Refusals after the first wait for their minute to end: a server stopped within it lost
    them from the log (audit). It tells them as it stops."""
    options = EdgeOptions(tokens=TokenSet.load(tokens="a-token"))
    async with (
        serving(tmp_path / "runs.db", options) as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        stub = run_service_pb2_grpc.RunServiceStub(channel)
        for token in ("guess-1", "guess-2"):
            await rpc_error(stub.ListWorkflows(pb.ListWorkflowsRequest(), metadata=bearer(token)))
    told = [r.getMessage() for r in caplog.records if "calls refused" in r.getMessage()]
    assert len(told) == 2, told
    assert told[1].startswith("calls refused for their bearer token: 1 TOKEN_INVALID"), told


@pytest.mark.parametrize("call", ["Resume", "Cancel", "DeleteRun", "TimeTravel", "Watch"])
async def test_a_tenants_call_never_acts_on_another_tenants_run_made_under_the_id_after_its_check(
    tmp_path: Path, tokens_file: Path, call: str
) -> None:
    """The edge checks the caller's scope on its read of the run, the engine reads it again and
    acts. Tenant A's run deleted and another tenant's made under its id between the two reads:
    A's Resume, Cancel, DeleteRun and TimeTravel acted on B's run, and A's Watch sent it (an
    audit). Now the engine acts only on the run the scope was checked on."""
    async with tokens_served(tmp_path, tokens_file) as (server, stub):
        admin, tenant = bearer("admin-secret"), bearer("a-secret")
        mine = pb.StartRequest(
            workflow_id="approval", run_id="order-42", resource_id="a", input_data=count(1)
        )
        await stub.Start(mine, metadata=tenant)
        engine = server.engine
        assert engine is not None
        read = engine.get_run
        swapped: list[str] = []

        async def read_then_swapped(run_id: str, **kwargs: Any) -> Any:
            found = await read(run_id, **kwargs)
            if not swapped:  # the edge's scope check: then the run is made anew for tenant B
                swapped.append(run_id)
                await engine.delete_run(run_id)
                await engine.start(
                    "approval", run_id=run_id, resource_id="b", input_data={"count": 2}, wait=True
                )
            return found

        engine.get_run = read_then_swapped  # type: ignore[method-assign]
        requests: dict[str, Any] = {
            "Resume": lambda: stub.Resume(
                pb.ResumeRequest(run_id="order-42", resume_data=count(3)), metadata=tenant
            ),
            "Cancel": lambda: stub.Cancel(pb.CancelRequest(run_id="order-42"), metadata=tenant),
            "DeleteRun": lambda: stub.DeleteRun(pb.DeleteRunRequest(run_id="order-42"), metadata=tenant),
            "TimeTravel": lambda: stub.TimeTravel(
                pb.TimeTravelRequest(run_id="order-42", step=["bump"]), metadata=tenant
            ),
            "Watch": lambda: watched(
                stub.Watch(pb.WatchRequest(run_id="order-42", include_run=True), metadata=tenant)
            ),
        }
        refused = await rpc_error(requests[call]())
        engine.get_run = read  # type: ignore[method-assign]
        assert refused.code() is grpc.StatusCode.NOT_FOUND
        theirs = (await stub.GetRun(pb.GetRunRequest(run_id="order-42"), metadata=admin)).run
        assert theirs.resource_id == "b" and theirs.status == run_pb2.RUN_STATUS_SUSPENDED


async def test_a_streams_last_message_is_never_another_tenants_run_made_under_the_id(
    tmp_path: Path, tokens_file: Path
) -> None:
    """Stream reads the run again for its last message: deleted and made anew under its id for
    another tenant in between, that message carried the other tenant's run (an audit)."""
    async with tokens_served(tmp_path, tokens_file) as (server, stub):
        engine = server.engine
        assert engine is not None
        read = engine.get_run

        async def swapped_then_read(run_id: str, **kwargs: Any) -> Any:
            found = await read(run_id, **kwargs)
            if found.resource_id != "a" or not found.status.terminal:
                return found
            engine.get_run = read  # type: ignore[method-assign]
            await engine.delete_run(run_id)
            await engine.start("echo", run_id=run_id, resource_id="b", input_data={"count": 9}, wait=True)
            return await read(run_id, **kwargs)

        engine.get_run = swapped_then_read  # type: ignore[method-assign]
        start = pb.StartRequest(workflow_id="echo", run_id="order-7", resource_id="a", input_data=count(1))
        call = stub.Stream(pb.StreamRequest(start=start), metadata=bearer("a-secret"))
        refused = await rpc_error(watched(call))
        assert refused.code() is grpc.StatusCode.NOT_FOUND


async def test_a_call_whose_request_comes_after_its_token_was_revoked_is_refused(tmp_path: Path) -> None:
    """The token is checked when a call's headers come; a client may send the request message
    long after. A Start, a Cancel and a Watch whose headers came before a reload that revoked
    their token ran with it all the same, and the Watch was never ended (audit)."""
    async with tokens_file_served(tmp_path, "tok-old\ntok-admin\n") as (server, stub, path):
        assert server.auth is not None
        start = pb.StartRequest(workflow_id="approval", run_id="r", input_data=count(1), wait=True)
        await stub.Start(start, metadata=bearer("tok-admin"))
        async with grpc.aio.insecure_channel(server.address) as channel:
            go = asyncio.Event()

            async def later(message: Any) -> AsyncIterator[Any]:
                await go.wait()
                yield message

            # Client-streaming on this side: the headers go now, the message once `go` is set.
            calls: dict[str, Any] = {
                "Start": channel.stream_unary(
                    "/runservice.v1.RunService/Start",
                    request_serializer=pb.StartRequest.SerializeToString,
                    response_deserializer=pb.StartResponse.FromString,
                )(
                    later(pb.StartRequest(workflow_id="approval", input_data=count(2))),
                    metadata=bearer("tok-old"),
                ),
                "Cancel": channel.stream_unary(
                    "/runservice.v1.RunService/Cancel",
                    request_serializer=pb.CancelRequest.SerializeToString,
                    response_deserializer=pb.CancelResponse.FromString,
                )(later(pb.CancelRequest(run_id="r")), metadata=bearer("tok-old")),
            }
            watch = channel.stream_stream(
                "/runservice.v1.RunService/Watch",
                request_serializer=pb.WatchRequest.SerializeToString,
                response_deserializer=pb.WatchResponse.FromString,
            )(later(pb.WatchRequest(run_id="r")), metadata=bearer("tok-old"))
            await asyncio.sleep(0.3)  # the headers are in
            await asyncio.to_thread(path.write_text, "tok-admin\n")
            await server.auth.reload()
            go.set()
            for name, call in calls.items():
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await call
                assert error_info(refused.value).reason == "TOKEN_REVOKED", name
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                async for _ in watch:
                    pass
            assert error_info(ended.value).reason == "TOKEN_REVOKED"
        assert (await stub.GetRun(pb.GetRunRequest(run_id="r"), metadata=bearer("tok-admin"))).run.status == (
            run_pb2.RUN_STATUS_SUSPENDED  # not canceled
        )


@pytest.mark.parametrize(
    ("name", "emptied"),
    [
        ("tokens.toml", ""),
        ("tokens.toml", "# every token revoked\n"),
        ("tokens.json", " \n"),
        ("tokens.json", "{}"),
    ],
)
def test_an_emptied_toml_or_json_tokens_file_holds_no_token(tmp_path: Path, name: str, emptied: str) -> None:
    """As a plain file's: emptying it revokes every token. A TOML or JSON file emptied (or left
    with comments) was a broken file, and a reload kept every token (audit)."""
    path = tmp_path / name
    path.write_text(emptied)
    assert len(TokenSet.load(str(path))) == 0


def test_resources_null_is_refused_not_taken_for_every_resource(tmp_path: Path) -> None:
    """`"resources": null` (some tools write an empty list so) made the token unscoped (audit)."""
    path = tmp_path / "tokens.json"
    path.write_text('{"tokens": [{"name": "x", "token": "x-secret", "resources": null}]}')
    with pytest.raises(TokenFileError, match="`resources` must be a list"):
        TokenSet.load(str(path))
