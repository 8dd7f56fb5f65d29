"""What one process needs to run the engine for RunService, in one process or in the engine
process of `serve --engine-process`: the store, observability and the engine, opened and
closed in order, and the services registered for that engine.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

from runservice.engine import Engine
from runservice.errors import StorageFailed
from runservice.server.decoding import add_run_service
from runservice.server.observability import Observability
from runservice.server.schedules import ScheduleServicer, add_schedule_service
from runservice.server.servicer import RunServicer
from runservice.server.tracing import Tracing
from runservice.storage import Store, open_store
from runservice.workflow import Schedule, Workflow


@contextlib.asynccontextmanager
async def running_engine(
    workflows: Iterable[Workflow],
    observed: Callable[[Store], Observability],
    *,
    database_url: str,
    durability: str,
    heartbeat: float,
    lease_seconds: float,
    claim_interval: float,
    schedules: Iterable[Schedule],
    on_failure: Callable[[StorageFailed], None],
    retention: float = 0.0,
    max_active_runs: int = 0,
    workflow_limits: Mapping[str, int] | None = None,
    replica_name: str | None = None,
) -> AsyncIterator[tuple[Engine, Observability]]:
    """The store opened, its `observed(store)` started, and the engine running on them; on
    exit the engine is closed (runs left stay `running` for the next boot to re-drive),
    then observability, then the store. `on_failure(error)` is called if the store fails
    for good (see `StorageFailed`): the caller then stops, at once."""
    store = open_store(database_url, durability=durability)
    store.hub.listen_failure(on_failure)
    try:
        await store.open()
        observability = observed(store)
        try:
            # Before the engine re-drives the runs left active: their events are counted too.
            await observability.start()
            async with Engine(
                store,
                workflows,
                heartbeat=heartbeat,
                lease_seconds=lease_seconds,
                claim_interval=claim_interval,
                retention=retention,
                max_active_runs=max_active_runs,
                workflow_limits=workflow_limits,
                replica_name=replica_name,
                schedules=schedules,
            ) as engine:
                if observability.metrics is not None:
                    observability.metrics.served = engine.served_definitions()
                yield engine, observability
        finally:
            await observability.stop()
    finally:
        await store.close()


def add_services(
    server: Any, engine: Engine, *, heartbeat: float, tracing: Tracing | None, max_message_size: int
) -> None:
    """Register RunService and ScheduleService for `engine` on `server` (a grpc.aio server,
    or the engine process's `HandlerTable`). In place of the generated `add_..._to_server`:
    malformed requests become INVALID_ARGUMENT instead of UNKNOWN (see decoding.py)."""
    runs = RunServicer(engine, heartbeat=heartbeat, max_message_size=max_message_size, tracing=tracing)
    add_run_service(runs, server, max_message_size=max_message_size)
    schedules = ScheduleServicer(engine, max_message_size=max_message_size)
    add_schedule_service(schedules, server, max_message_size=max_message_size)


__all__ = ["add_services", "running_engine"]
