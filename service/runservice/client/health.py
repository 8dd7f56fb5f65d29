"""The standard gRPC health check of a server (`runservice health`, the image's HEALTHCHECK)."""

from __future__ import annotations

import grpc

from runservice import errors
from runservice.v1 import schedule_service_pb2

RUN_SERVICE_NAME = "runservice.v1.RunService"
SERVICES = (
    "",
    RUN_SERVICE_NAME,
    schedule_service_pb2.DESCRIPTOR.services_by_name["ScheduleService"].full_name,
)
"""The services a runservice server reports a health status for ("": the server itself)."""


async def check_health(
    target: str,
    *,
    service: str = RUN_SERVICE_NAME,
    deadline: float = 3.0,
    tls_ca: bytes | None = None,
    tls_cert: bytes | None = None,
    tls_key: bytes | None = None,
    tls_server_name: str | None = None,
) -> str:
    """The gRPC health status of `service` at `target` ("SERVING", "NOT_SERVING", ...), over TLS
    trusting the PEM `tls_ca` when given, presenting the PEM client `tls_cert`/`tls_key` to a
    server that asks for one (mTLS: its handshake comes before any service, health included).
    `tls_server_name` is the name the server's certificate is checked against instead of the
    target's host: a probe dials the pod on loopback, but its certificate names the service.

    Raises errors.Unavailable when the server cannot be reached within `deadline` seconds (its
    reason: the status code, UNAVAILABLE when the transport failed); errors.NotFound when the
    server has no status for `service`.
    """
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    secure = tls_ca is not None or tls_cert is not None
    options = [("grpc.ssl_target_name_override", tls_server_name)] if tls_server_name else []
    channel = (
        grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(tls_ca, tls_key, tls_cert), options)
        if secure
        else grpc.aio.insecure_channel(target)
    )
    async with channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=deadline
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:  # the health service says no more than the code
                known = ", ".join(repr(name) for name in SERVICES)
                raise errors.NotFound(
                    f"health check of {target} failed: the server has no health status for service "
                    f"{service!r} (a runservice server has one for {known})",
                ) from None
            # The code is the reason: the transport's, or the health service's, not ours.
            raise errors.Unavailable(
                f"health check of {target} failed: {exc.code().name}: {exc.details()}", reason=exc.code().name
            ) from None
    name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return name
