"""Prometheus metrics of one server, and the HTTP endpoint that serves them.

Three sources, none of them in the engine:
- RPCs, from the `CallObserver` interceptor (`on_call_start` / `on_call_end`);
- runs and steps, from committed events (`on_event`, fed by `CommittedEvents`), so they
  count what is durable;
- the store, from its hub: each transaction's duration and size (`on_commit`), the
  changes and reads storage could not take (`on_refused`), the runs deleted (`on_deleted`), the
  removal of large deleted runs' rows after their delete (`on_removal`), the ticks schedules
  fired (`on_tick`), the database's clock against this server's (`clock_offset`); and the
  runs in flight and suspended, counted in the database when the endpoint is scraped
  (unknown, NaN, while the database does not answer: a scrape never fails for an outage,
  when its other figures matter most).

The gauges counted in the database (runs in flight, suspended, unowned, not served, being
removed) are database-wide: every replica sharing a PostgreSQL database reports the same
count, and their help text says so, since a `sum()` across replicas would multiply them.

Each server has its own registry (several servers can share a process, as tests do).
The endpoint is a small asyncio HTTP server on its own address, so a scrape's database
count is an ordinary async read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from runservice.engine.versions import not_served
from runservice.errors import StorageUnavailable
from runservice.model import Event, EventType, RunStatus
from runservice.server.calls import Call
from runservice.server.committed import RunInfo
from runservice.storage import Definition, Store

logger = logging.getLogger(__name__)

_RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_STEP_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)
_COMMIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 500)
_IN_FLIGHT = frozenset({RunStatus.RUNNING, RunStatus.WAITING})
_COUNTED = frozenset({*_IN_FLIGHT, RunStatus.SUSPENDED})
COUNT_WAIT = 2.0
"""Seconds a scrape waits for the database's counts before it reports them unknown (NaN):
a database that hangs rather than refuses must not make the scrape miss Prometheus's own
timeout (10 s by default), and with it every other figure (audit)."""


class Metrics:
    """The metrics of one server (see the README's table for names and labels)."""

    def __init__(self, store: Store | None, *, rpcs: bool = True) -> None:
        """The RPC families when `rpcs`; the run, step and store families when there is a
        `store` (with `--engine-process` each process has its own half)."""
        self._store = store
        self.registry = registry = CollectorRegistry()
        if rpcs:
            self._rpc_metrics(registry)
        if store is not None:
            self._run_metrics(registry)
        self._children: dict[tuple[Any, ...], Any] = {}
        """Labelled children by (metric, labels): `labels()` is slower than a dict lookup."""

    def _rpc_metrics(self, registry: CollectorRegistry) -> None:
        rpc = ["grpc_service", "grpc_method", "grpc_type"]
        self.rpc_started = Counter("grpc_server_started", "RPCs started.", rpc, registry=registry)
        self.rpc_handled = Counter(
            "grpc_server_handled", "RPCs ended, by final status code.", [*rpc, "grpc_code"], registry=registry
        )
        self.rpc_seconds = Histogram(
            "grpc_server_handling_seconds",
            "RPC duration until its status was sent (a stream: its whole life).",
            [*rpc, "grpc_code"],
            buckets=_RPC_BUCKETS,
            registry=registry,
        )
        self.rpc_sent = Counter(
            "grpc_server_msg_sent", "Messages sent on response streams.", rpc, registry=registry
        )
        self.streams_open = Gauge(
            "grpc_server_streams_open",
            "Response streams open now (Stream, Watch, health Watch).",
            ["grpc_service", "grpc_method"],
            registry=registry,
        )

    def _run_metrics(self, registry: CollectorRegistry) -> None:
        self.runs_started = Counter(
            "runservice_runs_started",
            "Runs started (their first WORKFLOW_START committed; a fork's included).",
            ["workflow"],
            registry=registry,
        )
        self.runs_resumed = Counter(
            "runservice_runs_resumed", "Resumes accepted and committed.", ["workflow"], registry=registry
        )
        self.runs_time_travels = Counter(
            "runservice_runs_time_travels",
            "Time travels of a run accepted and committed (its re-execution begins).",
            ["workflow"],
            registry=registry,
        )
        self.runs_finished = Counter(
            "runservice_runs_finished",
            "Runs that reached a terminal status.",
            ["workflow", "status"],
            registry=registry,
        )
        self.schedule_ticks = Counter(
            "runservice_schedule_ticks",
            "Ticks this server fired, by schedule, kind (cron, trigger, buffered, missed) and outcome:"
            " started, skipped or buffered (overlap policy), advanced (next_tick moved on, nothing"
            " started), lost (another replica fired it first, or the schedule was paused or removed),"
            " repeated (a retried trigger), run_id_taken (the tick's run id is held by a run a caller"
            " made: nothing started, the tick is passed over).",
            ["schedule", "kind", "outcome"],
            registry=registry,
        )
        self.runs_deleted = Counter(
            "runservice_runs_deleted",
            "Runs deleted with their events: by DeleteRun, or by the retention sweep (--retention).",
            registry=registry,
        )
        self.runs_suspensions = Counter(
            "runservice_runs_suspensions",
            "Times a run settled as suspended.",
            ["workflow"],
            registry=registry,
        )
        self.step_seconds = Histogram(
            "runservice_step_duration_seconds",
            "Step execution time (from its start or resume to its result), by final step status.",
            ["workflow", "step", "status"],
            buckets=_STEP_BUCKETS,
            registry=registry,
        )
        self.clock_offset = Gauge(
            "runservice_clock_offset_seconds",
            "The database's clock less this server's, as the schedules last read it (every minute on"
            " PostgreSQL; 0 on SQLite). Schedules keep the database's time; runs' timestamps and"
            " deadlines keep this server's: alert when it is more than a second or two either way.",
            registry=registry,
        )
        self.runs_in_flight = Gauge(
            "runservice_runs_in_flight",
            "Runs running or waiting, database-wide (the same on every replica).",
            registry=registry,
        )
        self.runs_suspended = Gauge(
            "runservice_runs_suspended",
            "Runs suspended, database-wide (the same on every replica).",
            registry=registry,
        )
        self.runs_unowned = Gauge(
            "runservice_runs_unowned",
            "Runs running or waiting that no server drives, database-wide (the same on every replica):"
            " left for want of room (--max-active-runs), or owned by a server whose leases ran out;"
            " a claim loop takes them.",
            registry=registry,
        )
        self.runs_not_served = Gauge(
            "runservice_runs_not_served",
            "Of runservice_runs_unowned, the runs whose recorded workflow, version and step graph this"
            " server does not serve: no claim here takes them (the log warns of them). Database-wide"
            " (the same on every replica serving the same definitions).",
            registry=registry,
        )
        self.runs_not_served.set(math.nan)  # until the engine runs: nothing served is known yet
        self.served: list[Definition] | None = None
        """The definitions the engine serves (`Engine.served_definitions`), for
        `runs_not_served`; None until the engine runs (the gauge is then NaN)."""
        self.commit_seconds = Histogram(
            "runservice_store_commit_seconds",
            "Store transaction time (statements and commit), one per group-commit batch.",
            buckets=_COMMIT_BUCKETS,
            registry=registry,
        )
        self.commit_batch = Histogram(
            "runservice_store_commit_batch_size",
            "Changes per store transaction.",
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.store_unavailable = Counter(
            "runservice_store_unavailable",
            "Changes and reads storage could not take (a full disk, an I/O error, a lost database);"
            " each is retried: a refused call by its caller, a run's progress by its drive.",
            registry=registry,
        )
        self.store_available = Gauge(
            "runservice_store_available",
            "1 while storage answers; 0 from a refused change or read until a write goes through"
            " again (health is NOT_SERVING for RunService meanwhile).",
            registry=registry,
        )
        self.store_available.set(1)
        self.runs_being_removed = Gauge(
            "runservice_store_runs_being_removed",
            "Deleted runs whose rows are still being removed after their delete, a chunk at a time"
            " (database-wide, the same on every replica; runs too large to go with their delete's"
            " commit). Set after each pass of the removal: it stays up while a removal is stuck.",
            registry=registry,
        )
        self.rows_removed = Counter(
            "runservice_store_rows_removed",
            "Rows of deleted runs (steps, items, values, requests, events) the removal deleted here.",
            registry=registry,
        )

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # -- RPCs ----------------------------------------------------------------------------------

    def on_call_start(self, call: Call) -> None:
        self._child(self.rpc_started, call.service, call.method, call.kind).inc()
        if call.streaming:
            self._child(self.streams_open, call.service, call.method).inc()

    def on_call_end(self, call: Call) -> None:
        code = call.code.name
        self._child(self.rpc_handled, call.service, call.method, call.kind, code).inc()
        self._child(self.rpc_seconds, call.service, call.method, call.kind, code).observe(call.seconds)
        if call.streaming:
            self._child(self.streams_open, call.service, call.method).dec()
            if call.sent:
                self._child(self.rpc_sent, call.service, call.method, call.kind).inc(call.sent)

    # -- runs and steps --------------------------------------------------------------------------

    def on_event(self, info: RunInfo, event: Event) -> None:
        kind = event.type
        if kind is EventType.STEP_RESULT:
            step = event.step
            if step is not None and step.ended_at is not None:
                began = step.resumed_at or step.started_at
                if began is not None:
                    self._child(self.step_seconds, info.workflow_id, step.key, step.status.value).observe(
                        max(step.ended_at - began, 0.0)
                    )
        elif kind is EventType.WORKFLOW_START:
            counter = {
                "start": self.runs_started,
                "fork": self.runs_started,  # a new run
                "resume": self.runs_resumed,
                "time_travel": self.runs_time_travels,
            }.get(info.execution)  # not a deadline's wake: nobody asked for it
            if counter is not None:
                self._child(counter, info.workflow_id).inc()
        elif kind is EventType.WORKFLOW_FINISH:
            if event.run_status is RunStatus.SUSPENDED:
                self._child(self.runs_suspensions, info.workflow_id).inc()
            else:
                self._child(self.runs_finished, info.workflow_id, event.run_status.value).inc()

    # -- the store ----------------------------------------------------------------------------------

    def on_commit(self, seconds: float, changes: int) -> None:
        self.commit_seconds.observe(seconds)
        self.commit_batch.observe(changes)

    def on_refused(self, changes: int) -> None:
        self.store_unavailable.inc(changes)

    def on_availability(self, available: bool) -> None:
        self.store_available.set(1 if available else 0)

    def on_deleted(self, runs: int) -> None:
        self.runs_deleted.inc(runs)

    def on_removal(self, runs: int, rows: int) -> None:
        self.runs_being_removed.set(runs)
        if rows:
            self.rows_removed.inc(rows)

    def on_tick(self, schedule_id: str, kind: str, outcome: str) -> None:
        self.schedule_ticks.labels(schedule_id, kind, outcome).inc()

    # -- exposition --------------------------------------------------------------------------------

    async def render(self) -> bytes:
        """The text exposition, gauges counted in the database first."""
        if self._store is not None:
            try:
                async with asyncio.timeout(COUNT_WAIT):
                    counts = await self._store.count_runs(_COUNTED)
                    unowned = await self._store.count_unowned_by_definition()
            except (StorageUnavailable, TimeoutError):
                for gauge in (self.runs_in_flight, self.runs_suspended, self.runs_unowned):
                    gauge.set(math.nan)
                self.runs_not_served.set(math.nan)
            else:
                self.runs_in_flight.set(sum(counts[status] for status in _IN_FLIGHT))
                self.runs_suspended.set(counts[RunStatus.SUSPENDED])
                self.runs_unowned.set(sum(unowned.values()))
                if self.served is not None:
                    self.runs_not_served.set(sum(not_served(unowned, self.served).values()))
        return generate_latest(self.registry)


class MetricsEndpoint:
    """`GET /metrics` over HTTP/1.1 on its own address (HOST:PORT; port 0 picks one), the
    text `render` gives."""

    def __init__(self, render: Callable[[], Awaitable[bytes]], address: str) -> None:
        self._render = render
        host, _, port = address.rpartition(":")
        self._host = host.strip("[]") or "127.0.0.1"
        self._port = int(port)
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self.address = address
        """The bound address, with the real port once started."""

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._serve, self._host, self._port)
        except OSError as exc:  # said as the gRPC listener's is, and which listener it is
            raise OSError(
                f"cannot listen on the metrics address {self.address}: {exc.strerror or exc}"
            ) from None
        port = self._server.sockets[0].getsockname()[1]
        self.address = f"{self._host}:{port}"
        logger.info("metrics on http://%s/metrics", self.address)

    async def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        for task in list(self._clients):
            task.cancel()
        await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        try:
            async with asyncio.timeout(10):
                head = await reader.readuntil(b"\r\n\r\n")
            method, _, rest = head.decode("latin-1").partition(" ")
            path = rest.partition(" ")[0].partition("?")[0]
            if method not in ("GET", "HEAD"):
                await _reply(writer, 405, b"method not allowed\n", "text/plain")
            elif path not in ("/metrics", "/"):
                await _reply(writer, 404, b"not found: try /metrics\n", "text/plain")
            else:
                body = await self._render()
                await _reply(writer, 200, b"" if method == "HEAD" else body, CONTENT_TYPE_LATEST)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # a client that went away or sent no request: nothing to answer
        except Exception:
            logger.exception("serving metrics failed")
            with contextlib.suppress(Exception):
                await _reply(writer, 500, b"internal error\n", "text/plain")
        finally:
            if task is not None:
                self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}


async def _reply(writer: asyncio.StreamWriter, status: int, body: bytes, content_type: str) -> None:
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    writer.write(head.encode("latin-1") + body)
    await writer.drain()


__all__ = ["Metrics", "MetricsEndpoint"]
