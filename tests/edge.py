"""A real server with EdgeOptions (auth, TLS, limits) for edge tests, and reading ErrorInfo."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from google.rpc import error_details_pb2, status_pb2
from workflows import WORKFLOWS

from runservice.engine import Engine
from runservice.server import EdgeOptions, RunServer, build_server
from runservice.storage import open_store

HEARTBEAT = 0.2


@contextlib.asynccontextmanager
async def serving(db: Path, options: EdgeOptions) -> AsyncIterator[RunServer]:
    store = open_store(str(db))
    await store.open()
    try:
        async with Engine(store, WORKFLOWS, heartbeat=HEARTBEAT) as engine:
            server = build_server(engine, heartbeat=HEARTBEAT, options=options)
            await server.start()
            try:
                yield server
            finally:
                await server.stop(0.5)
    finally:
        await store.close()


def error_info(exc: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info
    raise AssertionError(f"no ErrorInfo in {exc!r}")
