"""Server reflection through a real server: grpcurl (v1alpha) lists the services and shows the
contract's comments, resolves `Service.Method`; reflection v1 answers the same questions."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import grpc
import pytest
from conftest import Served
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2

pytestmark = pytest.mark.timeout(30)

GRPCURL = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "grpcurl"


async def grpcurl(*args: str) -> tuple[int, str]:
    """Run grpcurl without blocking the loop that serves it; (exit code, stdout + stderr)."""
    command = str(GRPCURL) if GRPCURL.exists() else "grpcurl"
    proc = await asyncio.create_subprocess_exec(
        command, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=dict(os.environ)
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_grpcurl_lists_every_service(served: Served) -> None:
    code, out = await grpcurl("-plaintext", served.address, "list")
    assert code == 0, out
    assert out.split() == [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "runservice.v1.RunService",
        "runservice.v1.ScheduleService",
    ]


async def test_grpcurl_describe_shows_the_contract_comments(served: Served) -> None:
    code, out = await grpcurl("-plaintext", served.address, "describe", "runservice.v1.RunService.Start")
    assert code == 0, out
    assert "runservice.v1.RunService.Start is a method:" in out
    assert "// Starts a run. With `wait` it returns once the run is terminal or suspended" in out

    code, out = await grpcurl("-plaintext", served.address, "describe", "runservice.v1.StartRequest")
    assert code == 0, out
    assert "// Optional idempotency key." in out

    code, out = await grpcurl("-plaintext", served.address, "describe", "google.rpc.ErrorInfo")
    assert code == 0 and "map<string, string> metadata = 3;" in out, out

    code, out = await grpcurl("-plaintext", served.address, "describe", "runservice.v1.RunService.Nope")
    assert code != 0 and "Symbol not found" in out


async def test_grpcurl_calls_a_method_through_reflection(served: Served) -> None:
    code, out = await grpcurl(
        "-plaintext", "-d", '{"workflow_id": "echo"}', served.address, "runservice.v1.RunService/GetWorkflow"
    )
    assert code == 0, out
    assert '"id": "echo"' in out


async def reflect(
    channel: grpc.aio.Channel, service: str, request: reflection_pb2.ServerReflectionRequest
) -> reflection_pb2.ServerReflectionResponse:
    method = channel.stream_stream(
        f"/{service}/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    call = method(iter([request]))
    response = await call.read()
    call.cancel()
    assert isinstance(response, reflection_pb2.ServerReflectionResponse)
    return response


@pytest.mark.parametrize(
    "service", ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]
)
async def test_both_reflection_versions_serve_the_contract_with_source_info(
    channel: grpc.aio.Channel, service: str
) -> None:
    listed = await reflect(channel, service, reflection_pb2.ServerReflectionRequest(list_services=""))
    names = {s.name for s in listed.list_services_response.service}
    assert {"runservice.v1.RunService", "grpc.reflection.v1.ServerReflection"} <= names

    found = await reflect(
        channel,
        service,
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="runservice.v1.RunService.Watch"),
    )
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in found.file_descriptor_response.file_descriptor_proto
    ]
    assert files[0].name == "runservice/v1/run_service.proto"
    assert {"runservice/v1/run.proto", "google/protobuf/struct.proto"} <= {f.name for f in files}
    comments = [loc.leading_comments for loc in files[0].source_code_info.location]
    assert any("Only a message with end_of_stream means" in c for c in comments)

    missing = await reflect(
        channel, service, reflection_pb2.ServerReflectionRequest(file_containing_symbol="no.such.Thing")
    )
    assert missing.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


async def test_buf_curl_calls_through_reflection_v1(served: Served) -> None:
    buf = GRPCURL.parent / "buf"
    proc = await asyncio.create_subprocess_exec(
        str(buf) if buf.exists() else "buf",
        "curl",
        "--protocol=grpc",
        "--http2-prior-knowledge",
        "--reflect-protocol=grpc-v1",  # v1 only: no fallback to v1alpha
        "-d",
        '{"workflow_id": "echo"}',
        f"http://{served.address}/runservice.v1.RunService/GetWorkflow",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, out.decode()
    assert '"description": "Adds one to a count"' in out.decode()
