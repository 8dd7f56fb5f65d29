"""Metrics, traces and the access log of one server, wired to its store and its RPCs.

`Observability` owns the parts that are switched on: the RPC interceptor (metrics and
the access log), the committed-event feed (run and step metrics, spans), the store's
commit timings, and the metrics HTTP endpoint. With everything off it adds nothing to
the server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection

import grpc

from runservice.server.calls import CallObserver, Observer, log_access
from runservice.server.committed import CommittedEvents, EventHandler
from runservice.server.metrics import Metrics, MetricsEndpoint
from runservice.server.tracing import Tracing
from runservice.storage import Store

logger = logging.getLogger(__name__)

ENGINE_METRICS_WAIT = 5.0
"""Seconds a scrape waits for the engine process's half (`--engine-process`)."""


class Observability:
    """What a server reports. `metrics_address` (HOST:PORT, port 0 picks one) serves
    Prometheus metrics; `tracing` makes spans; `access_log` logs one line per RPC."""

    def __init__(
        self,
        store: Store | None,
        *,
        metrics_address: str | None = None,
        tracing: Tracing | None = None,
        access_log: bool = False,
        keep_metrics: bool = False,
        engine_metrics: Callable[[], Awaitable[bytes]] | None = None,
    ) -> None:
        """With `--engine-process` each process has its half: the front no `store` (RPC
        metrics, the endpoint, which adds `engine_metrics`), the engine process its store
        and `keep_metrics` (run, step and store metrics, rendered for the front)."""
        self.store = store
        self.metrics = Metrics(store, rpcs=bool(metrics_address)) if metrics_address or keep_metrics else None
        self._engine_metrics = engine_metrics
        self.endpoint = MetricsEndpoint(self.render, metrics_address) if metrics_address else None
        self.tracing = tracing
        self.access_log = access_log
        handlers: list[EventHandler] = []
        if self.metrics is not None and store is not None:
            handlers.append(self.metrics.on_event)
        if tracing is not None and store is not None:
            handlers.append(tracing.on_event)
        releases = [tracing.on_release] if tracing is not None and store is not None else []
        self._events = (
            CommittedEvents(store, handlers, read_runs=tracing is not None, releases=releases)
            if handlers and store
            else None
        )
        self._stop_listening: list[Callable[[], None]] = []
        """Removes the metrics' store listeners (empty: not listening)."""
        self._started = False

    async def render(self) -> bytes:
        """The metrics' text exposition (the engine process's too, with `--engine-process`)."""
        text = await self.metrics.render() if self.metrics is not None else b""
        if self._engine_metrics is not None:
            try:
                # Its own counts wait at most COUNT_WAIT; past this it is the process that does
                # not answer (a step blocking its event loop, say): the edge's half still goes out.
                async with asyncio.timeout(ENGINE_METRICS_WAIT):
                    text += await self._engine_metrics()
            except TimeoutError:
                logger.warning(
                    "the engine process sent no metrics within %g s: this scrape has only the edge's",
                    ENGINE_METRICS_WAIT,
                )
        return text

    def interceptors(self, served: Collection[str] | None = None) -> list[grpc.aio.ServerInterceptor]:
        """The server interceptors to install (none when neither metrics nor the access log is on);
        `served`: the paths of the methods the server serves (any other is counted as `unknown`)."""
        on_start: list[Observer] = []
        on_end: list[Observer] = []
        if self.metrics is not None and self.endpoint is not None:  # only a served Metrics counts RPCs
            on_start.append(self.metrics.on_call_start)
            on_end.append(self.metrics.on_call_end)
        if self.access_log:
            on_end.append(log_access)
        return [CallObserver(on_start, on_end, served=served)] if on_end else []

    async def start(self) -> None:
        """Start listening to the store and serving metrics. Idempotent: an owner may start it
        before the engine recovers runs, and the server's `start` again."""
        if self._started:
            return
        self._started = True
        if self._events is not None:
            self._events.start()
        if self.metrics is not None and self.store is not None and not self._stop_listening:
            hub = self.store.hub
            self._stop_listening = [
                hub.listen_commits(self.metrics.on_commit),
                hub.listen_refusals(self.metrics.on_refused),
                hub.listen_availability(self.metrics.on_availability),
                hub.listen_deletions(self.metrics.on_deleted),
                hub.listen_removals(self.metrics.on_removal),
                hub.listen_ticks(self.metrics.on_tick),
                hub.listen_clock(self.metrics.clock_offset.set),
            ]
            self.metrics.on_availability(hub.available)
        if self.endpoint is not None:
            await self.endpoint.start()

    async def stop(self) -> None:
        """Stop serving metrics and listening; flush the spans. Safe to call twice."""
        self._started = True  # a stopped Observability does not start again
        if self.endpoint is not None:
            await self.endpoint.stop()
        if self._events is not None:
            await self._events.stop()
        for stop in self._stop_listening:
            stop()
        self._stop_listening = []
        if self.tracing is not None:
            tracing, self.tracing = self.tracing, None
            await tracing.close()


__all__ = ["Observability"]
