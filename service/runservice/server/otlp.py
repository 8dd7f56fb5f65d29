"""The span exporters and the service name that the standard OpenTelemetry variables choose.

`OTEL_TRACES_EXPORTER` lists the exporters (`otlp` when unset; `console`; `none`).

The protocol is `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL`:
`grpc` and `http/protobuf` take that exporter; `http/json` takes `http/protobuf` (the Python
exporter encodes only protobuf) with a warning; when neither is set, gRPC if its package is
installed (the Python SDK's default, and this service's before the variables were read), else
HTTP. A protocol named but not installed, or not a protocol, exports nothing and says why; it never
falls back to the other protocol, which the collector at the configured endpoint would not speak.
Endpoints, headers, TLS and timeouts are each exporter's own `OTEL_EXPORTER_OTLP_*` variables.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource

logger = logging.getLogger(__name__)

TRACES_EXPORTER = "OTEL_TRACES_EXPORTER"
TRACES_PROTOCOL = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"

_EXPORTERS: dict[str, tuple[str, str]] = {
    "grpc": (
        "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
        "opentelemetry-exporter-otlp-proto-grpc",
    ),
    "http/protobuf": (
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        "opentelemetry-exporter-otlp-proto-http",
    ),
}
"""Protocol: (module of its OTLPSpanExporter, the package that installs it)."""


def span_exporters(environ: Mapping[str, str]) -> list[Any]:
    """The span exporters `OTEL_TRACES_EXPORTER` names (a comma-separated list, `otlp` when
    unset, as in the specification): `otlp` (`span_exporter`), `console` (the SDK's, one JSON
    span per span on stdout) and `none`; another name is not exported, with a warning."""
    names = [name.strip().lower() for name in environ.get(TRACES_EXPORTER, "").split(",") if name.strip()]
    exporters: list[Any] = []
    for name in names or ["otlp"]:
        if name == "otlp":
            if (exporter := span_exporter(environ)) is not None:
                exporters.append(exporter)
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporters.append(ConsoleSpanExporter())
        elif name != "none":
            logger.warning(
                "%s names %r, which this server does not export to (use otlp, console or none)",
                TRACES_EXPORTER,
                name,
            )
    if not exporters and names:  # else `_default_exporter` said why
        logger.info("tracing on; spans are not exported (%s=%s)", TRACES_EXPORTER, ",".join(names))
    return exporters


def span_exporter(environ: Mapping[str, str]) -> Any:
    """The OTLP span exporter `environ` chooses (see the module's docstring), or None."""
    variable, protocol = _protocol(environ)
    if protocol is None:
        return _default_exporter()
    if protocol == "http/json":
        logger.warning(
            "%s=http/json: the Python OTLP exporter has no JSON encoding; exporting spans with "
            "http/protobuf to the same endpoint instead (OTLP/HTTP collectors accept both)",
            variable,
        )
        protocol = "http/protobuf"
    if protocol not in _EXPORTERS:
        logger.warning(
            "tracing on; spans are not exported: %s=%r is not an OTLP protocol "
            "(use grpc, http/protobuf or http/json)",
            variable,
            protocol,
        )
        return None
    module, package = _EXPORTERS[protocol]
    exporter = _exporter(module)
    if exporter is None:
        logger.warning(
            "tracing on; spans are not exported: %s=%s needs the %s package (pip install %s)",
            variable,
            protocol,
            package,
            package,
        )
    return exporter


def _protocol(environ: Mapping[str, str]) -> tuple[str, str | None]:
    """(the variable that chose, its protocol), or (.., None) when neither variable is set."""
    for variable in (TRACES_PROTOCOL, PROTOCOL):
        if value := environ.get(variable, "").strip():  # empty counts as unset, as in the SDK
            return variable, value.lower()
    return PROTOCOL, None


def _default_exporter() -> Any:
    for module, _ in _EXPORTERS.values():
        exporter = _exporter(module)
        if exporter is not None:
            return exporter
    logger.info("tracing on; spans are not exported (install opentelemetry-exporter-otlp to export)")
    return None


def _exporter(module: str) -> Any:
    try:
        exporter = importlib.import_module(module).OTLPSpanExporter()
    except ImportError:
        return None
    logger.info("tracing on; exporting spans with %s", module)
    return exporter


def resource(service_name: str) -> Resource:
    """The SDK's resource, named `service_name` unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES
    names the service."""
    # Resource.create lets its argument override the environment; the operator's variables must win.
    return Resource.create({SERVICE_NAME: service_name}).merge(OTELResourceDetector().detect())
