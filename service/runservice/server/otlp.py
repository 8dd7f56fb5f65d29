"""What the standard OpenTelemetry variables choose: the service name of the spans."""

from __future__ import annotations

from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource


def resource(service_name: str) -> Resource:
    """The SDK's resource, named `service_name` unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES
    names the service."""
    # Resource.create lets its argument override the environment; the operator's variables must win.
    return Resource.create({SERVICE_NAME: service_name}).merge(OTELResourceDetector().detect())
