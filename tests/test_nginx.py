"""nginx in front of the server as an HTTP/2 gRPC proxy (`grpc_pass`): unary calls, error details in
the trailer, a long Watch kept alive by heartbeats past nginx's read timeout, and a cancelled stream.

nginx (Debian package `nginx`) is installed by this setup with apt-get when missing and running as
root (as on CI), and runs as a non-daemon child process with its own prefix, pid and log paths on a
free loopback port.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from edge import error_info, serving
from google.protobuf import struct_pb2
from packages import debian_install
from process import serve_argv, server_env, start_server

from runservice import errors
from runservice.client import Client
from runservice.model import RunStatus
from runservice.server import EdgeOptions, RunServer
from runservice.v1 import run_service_pb2 as pb
from runservice.v1 import run_service_pb2_grpc

pytestmark = pytest.mark.timeout(120)

READ_TIMEOUT = 2
"""nginx's grpc_read_timeout in seconds: a Watch idle longer than this lives only through heartbeats."""

CONFIG = """
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    client_max_body_size 64m;
    server {{
        listen 127.0.0.1:{port} http2;
        location / {{
            grpc_pass grpc://{upstream};
            grpc_read_timeout {read_timeout}s;
            grpc_send_timeout {read_timeout}s;
        }}
    }}
}}
"""


def nginx_binary() -> str | None:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        debian_install("nginx", provides="nginx")
        found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    return found


@pytest.fixture(scope="module")
def nginx() -> str:
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed and cannot be installed here (not root or no apt-get)")
    return binary


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def proxy_factory(nginx: str, tmp_path: Path) -> Iterator[object]:
    started: list[subprocess.Popen[bytes]] = []

    def start(upstream: str) -> str:
        prefix = tmp_path / "nginx"
        prefix.mkdir()
        port = free_port()
        conf = prefix / "nginx.conf"
        conf.write_text(CONFIG.format(prefix=prefix, port=port, upstream=upstream, read_timeout=READ_TIMEOUT))
        proc = subprocess.Popen(
            [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        started.append(proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return f"127.0.0.1:{port}"
            time.sleep(0.05)
        raise RuntimeError("nginx did not listen")

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
async def proxied(tmp_path: Path, proxy_factory: object) -> AsyncIterator[tuple[RunServer, str]]:
    # One Watch/Stream per caller: through nginx the caller is nginx's address, so a slot comes back
    # only when the server has seen the cancellation.
    async with serving(tmp_path / "runs.db", EdgeOptions(max_streams_per_caller=1)) as server:
        address = proxy_factory(server.address)  # type: ignore[operator]
        yield server, address


def count(n: int) -> struct_pb2.Value:
    value = struct_pb2.Value()
    value.struct_value.update({"count": n})
    return value


async def test_unary_calls_and_error_details_through_nginx(proxied: tuple[RunServer, str]) -> None:
    _, address = proxied
    async with Client(address, timeout=10) as client:
        assert {wf.id for wf in await client.list_workflows()} == {"echo", "approval", "shapes"}
        run = await client.get_workflow("echo").create_run(run_id="via-nginx")
        done = await run.start_async(input_data={"count": 41})
        assert done.status is RunStatus.SUCCESS and done.result == {"count": 42}
        with pytest.raises(errors.RunNotFound) as missing:
            await client.get_workflow("echo").run_by_id("no-such-run")
        assert missing.value.reason == "RUN_NOT_FOUND" and missing.value.metadata["run_id"] == "no-such-run"
        with pytest.raises(errors.InvalidArgument) as invalid:
            await (await client.get_workflow("echo").create_run()).start(input_data={"count": "many"})
        assert invalid.value.violations  # BadRequest field violations survive the proxy too
    async with grpc.aio.insecure_channel(address) as channel:
        stub = run_service_pb2_grpc.RunServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raw:
            await stub.GetRun(pb.GetRunRequest(run_id="nope"))
        assert raw.value.code() is grpc.StatusCode.NOT_FOUND
        assert error_info(raw.value).reason == "RUN_NOT_FOUND"


async def test_long_watch_with_heartbeats_and_cancellation_through_nginx(
    proxied: tuple[RunServer, str],
) -> None:
    _, address = proxied
    async with grpc.aio.insecure_channel(address) as channel:
        stub = run_service_pb2_grpc.RunServiceStub(channel)
        await stub.Start(pb.StartRequest(workflow_id="approval", run_id="w", input_data=count(1), wait=True))
        watch = stub.Watch(pb.WatchRequest(run_id="w", include_run=True))
        first = await watch.read()
        assert isinstance(first, pb.WatchResponse) and first.run.run_id == "w"
        # Idle for twice nginx's read timeout: only heartbeats keep the stream open.
        heartbeats = 0
        loop = asyncio.get_running_loop()
        until = loop.time() + 2 * READ_TIMEOUT + 0.5
        while loop.time() < until:
            message = await asyncio.wait_for(watch.read(), 5)
            assert isinstance(message, pb.WatchResponse) and not message.end_of_stream
            if not message.events:
                heartbeats += 1
                assert message.watermark_sequence == first.watermark_sequence
        assert heartbeats >= 5
        # Still live: a resume through nginx arrives on the same Watch.
        await stub.Resume(pb.ResumeRequest(run_id="w", resume_data=struct_pb2.Value(
            struct_value=struct_pb2.Struct(fields={"approved": struct_pb2.Value(bool_value=True)})
        )))  # fmt: skip
        last = first
        while not last.end_of_stream:
            message = await asyncio.wait_for(watch.read(), 5)
            assert isinstance(message, pb.WatchResponse)
            last = message
        assert last.watermark_sequence > first.watermark_sequence

        # Cancellation by the client reaches the server through nginx: the caller's only stream slot
        # comes back, so a new Watch is accepted.
        await stub.Start(pb.StartRequest(workflow_id="approval", run_id="c", input_data=count(1), wait=True))
        held = stub.Watch(pb.WatchRequest(run_id="c", include_run=True))
        assert isinstance(await held.read(), pb.WatchResponse)
        refused = stub.Watch(pb.WatchRequest(run_id="c", include_run=True))
        with pytest.raises(grpc.aio.AioRpcError) as over:
            await refused.read()
        assert over.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_info(over.value).reason == "TOO_MANY_STREAMS"
        held.cancel()
        for _ in range(100):
            again = stub.Watch(pb.WatchRequest(run_id="c", include_run=True))
            try:
                assert isinstance(await again.read(), pb.WatchResponse)
                break
            except grpc.aio.AioRpcError as exc:
                assert exc.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
                await asyncio.sleep(0.05)
        else:
            pytest.fail("the server never saw the cancelled stream end")
        again.cancel()


async def test_a_follow_through_nginx_goes_on_after_the_server_dies(
    proxy_factory: object, tmp_path: Path
) -> None:
    """nginx resets the streams of a server that died with RST_STREAM INTERNAL_ERROR: the
    client saw INTERNAL and raised it, though a follow exists for exactly that (deploy audit).
    A status without the server's ErrorInfo is a proxy's or the transport's: reopened."""
    port = free_port()
    args = (
        "--data-dir",
        str(tmp_path / "data"),
        "--workflows",
        "tests.workflows",
        "--address",
        f"127.0.0.1:{port}",
    )
    server = await start_server(serve_argv(*args), env=server_env())
    address = proxy_factory(f"127.0.0.1:{port}")  # type: ignore[operator]
    try:
        async with Client(address, timeout=10) as client:
            approval = client.get_workflow("approval")
            started = await (await approval.create_run(run_id="k")).start_async(input_data={"count": 1})
            assert started.status is RunStatus.SUSPENDED
            seen: list[int] = []

            async def follow() -> None:
                async for event in client.follow("k", 0):
                    seen.append(event.sequence)

            following = asyncio.create_task(follow())
            async with asyncio.timeout(10):
                while not seen:
                    await asyncio.sleep(0.05)
            await server.kill()
            await asyncio.sleep(0.5)  # the follow meets the reset, and retries against nginx's 502s
            server = await start_server(serve_argv(*args), env=server_env())
            resumed = await (await approval.create_run(run_id="k")).resume_async(
                resume_data={"approved": True}
            )
            assert resumed.status is RunStatus.SUCCESS
            await asyncio.wait_for(following, 20)
            assert seen == list(range(1, len(seen) + 1)) and len(seen) > started.last_sequence
    finally:
        await server.kill()
