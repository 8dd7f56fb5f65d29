"""gRPC server reflection, v1 and v1alpha, serving the contract with its comments.

grpcio-reflection only serves `grpc.reflection.v1alpha` and builds each file from the runtime
descriptor pool, which has lost the `.proto` comments. Here the contract's files come from
the descriptor set generated with `--include_source_info` (`runservice.v1/descriptor_set.binpb`,
written by `dev.py gen`), so `grpcurl describe runservice.v1.RunService.Start` shows the
documentation; every other file (health, google.rpc error details) comes from the runtime
pool. The v1 service is the same protocol under a new name: its messages are field for field
those of v1alpha, so one handler serves both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from importlib import resources
from typing import Any, TypeAlias

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2

V1 = "grpc.reflection.v1.ServerReflection"
V1ALPHA = reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"].full_name
DESCRIPTOR_SET = "descriptor_set.binpb"

# grpcio-reflection ships no type information: its messages are Any to mypy.
_Request: TypeAlias = Any
_Response: TypeAlias = Any
_RESPONSE = reflection_pb2.ServerReflectionResponse


def contract_files() -> descriptor_pb2.FileDescriptorSet:
    """The contract's descriptor set, with source info (comments) and every import."""
    raw = (resources.files("runservice.v1") / DESCRIPTOR_SET).read_bytes()
    return descriptor_pb2.FileDescriptorSet.FromString(raw)


def _v1_file() -> descriptor_pb2.FileDescriptorProto:
    """grpc/reflection/v1/reflection.proto, derived from the v1alpha file (same messages)."""
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    old, new = f".{proto.package}.", ".grpc.reflection.v1."
    proto.name = "grpc/reflection/v1/reflection.proto"
    proto.package = "grpc.reflection.v1"
    for message in proto.message_type:
        for field in message.field:
            if field.type_name.startswith(old):  # assigning "" would mark the field as set
                field.type_name = new + field.type_name.removeprefix(old)
    for service in proto.service:
        for method in service.method:
            method.input_type = method.input_type.replace(old, new)
            method.output_type = method.output_type.replace(old, new)
    return proto


class ReflectionServicer:
    """Answers reflection requests from our files first, then from the runtime pool."""

    def __init__(self, service_names: Iterable[str], files: descriptor_pb2.FileDescriptorSet) -> None:
        self._services = sorted({*service_names, V1, V1ALPHA})
        self._protos = {proto.name: proto for proto in files.file}
        v1 = _v1_file()
        self._protos[v1.name] = v1
        self._pool = descriptor_pool.DescriptorPool()
        for proto in [*files.file, v1]:
            self._pool.Add(proto)
        self._runtime = descriptor_pool.Default()

    async def info(
        self, requests: AsyncIterator[_Request], context: grpc.aio.ServicerContext[_Request, _Response]
    ) -> AsyncIterator[_Response]:
        """The ServerReflectionInfo stream: one response per request."""
        async for request in requests:
            yield self.answer(request)

    def answer(self, request: _Request) -> _Response:
        """The response to one reflection request."""
        kind = request.WhichOneof("message_request")
        try:
            if kind == "list_services":
                services = [reflection_pb2.ServiceResponse(name=name) for name in self._services]
                return _RESPONSE(
                    list_services_response=reflection_pb2.ListServiceResponse(service=services),
                    original_request=request,
                )
            if kind == "file_by_filename":
                return self._files(request, request.file_by_filename)
            if kind == "file_containing_symbol":
                return self._files(request, self._file_of(request.file_containing_symbol))
            if kind == "file_containing_extension":
                ext = request.file_containing_extension
                pool = self._pool_with(ext.containing_type)
                extension = pool.FindExtensionByNumber(
                    pool.FindMessageTypeByName(ext.containing_type), ext.extension_number
                )
                return self._files(request, pool.FindFileContainingSymbol(extension.full_name).name)
            if kind == "all_extension_numbers_of_type":
                name = request.all_extension_numbers_of_type
                pool = self._pool_with(name)
                message = pool.FindMessageTypeByName(name)
                numbers = sorted(ext.number for ext in pool.FindAllExtensions(message))
                return _RESPONSE(
                    all_extension_numbers_response=reflection_pb2.ExtensionNumberResponse(
                        base_type_name=message.full_name, extension_number=numbers
                    ),
                    original_request=request,
                )
        except KeyError:
            return _error(request, grpc.StatusCode.NOT_FOUND, "not found")
        return _error(request, grpc.StatusCode.UNIMPLEMENTED, f"unknown request {kind!r}")

    def _pool_with(self, message_name: str) -> descriptor_pool.DescriptorPool:
        try:
            self._pool.FindMessageTypeByName(message_name)
        except KeyError:
            return self._runtime
        return self._pool

    def _file_of(self, symbol: str) -> str:
        for pool in (self._pool, self._runtime):
            try:
                return str(pool.FindFileContainingSymbol(symbol).name)
            except KeyError:
                pass
            # The pool does not index methods: `Service.Method` is found through its service.
            parent, _, member = symbol.rpartition(".")
            try:
                service = pool.FindServiceByName(parent)
            except KeyError:
                continue
            if member in service.methods_by_name:
                return str(service.file.name)
        raise KeyError(symbol)

    def _proto(self, name: str) -> descriptor_pb2.FileDescriptorProto:
        found = self._protos.get(name)
        if found is None:
            found = descriptor_pb2.FileDescriptorProto()
            self._runtime.FindFileByName(name).CopyToProto(found)
            self._protos[name] = found
        return found

    def _files(self, request: _Request, name: str) -> _Response:
        """The file `name` and everything it imports, the file itself first."""
        ordered: list[descriptor_pb2.FileDescriptorProto] = []
        seen: set[str] = set()
        pending = [name]
        while pending:
            current = pending.pop(0)
            if current in seen:
                continue
            seen.add(current)
            proto = self._proto(current)
            ordered.append(proto)
            pending.extend(proto.dependency)
        return _RESPONSE(
            file_descriptor_response=reflection_pb2.FileDescriptorResponse(
                file_descriptor_proto=[proto.SerializeToString() for proto in ordered]
            ),
            original_request=request,
        )


def _error(request: _Request, code: grpc.StatusCode, message: str) -> _Response:
    return _RESPONSE(
        error_response=reflection_pb2.ErrorResponse(error_code=code.value[0], error_message=message),
        original_request=request,
    )


def enable_reflection(server: grpc.aio.Server, service_names: Iterable[str]) -> None:
    """Serve reflection v1 and v1alpha on `server`, listing `service_names` and itself."""
    servicer = ReflectionServicer(service_names, contract_files())
    info = grpc.stream_stream_rpc_method_handler(
        servicer.info,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=_RESPONSE.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler(name, {"ServerReflectionInfo": info}) for name in (V1, V1ALPHA)]
    )
