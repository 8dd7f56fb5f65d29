"""The gRPC health service: grpcio's, whose Watch streams end when the server drains."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2


class DrainingHealth(health.aio.HealthServicer):  # type: ignore[misc]  # grpcio-health has no types
    """grpcio's asyncio health service, whose Watch streams end with UNAVAILABLE at `drain`
    (after they have been told NOT_SERVING). Its own never end while the client stays: each
    open one (a service mesh keeps one per connection) held a stop for its whole grace."""

    def __init__(self) -> None:
        super().__init__()
        self._drained = asyncio.Event()

    def drain(self) -> None:
        """End every Watch now and any opened from now on."""
        self._drained.set()

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: Any) -> None:
        if not self._drained.is_set():
            watching = asyncio.ensure_future(super().Watch(request, context))
            drained = asyncio.ensure_future(self._drained.wait())
            try:
                await asyncio.wait((watching, drained), return_when=asyncio.FIRST_COMPLETED)
            finally:  # also when this call is cancelled (the client went away): the cancel goes on
                for task in (watching, drained):
                    task.cancel()
                await asyncio.gather(watching, drained, return_exceptions=True)
            if not watching.cancelled() and watching.exception() is not None:
                raise watching.exception()
        await context.abort(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")


__all__ = ["DrainingHealth"]
