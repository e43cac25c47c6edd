"""Optional OpenTelemetry tracing, off unless ``OTEL_ENABLED=true``.

When on, the API traces each HTTP request (FastAPI instrumentation) and both
processes trace Kafka publishing and consuming (FastStream's telemetry
middleware), which carries the trace context in the message headers: one trace
follows a persona request from ``POST /v1/persona`` through the worker. Spans go to
an OTLP/HTTP collector configured by the standard ``OTEL_EXPORTER_OTLP_*`` variables.
"""

from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from persona_infra.settings import Settings


def tracer_provider(settings: Settings, component: str) -> TracerProvider | None:
    """An OTLP-exporting provider for ``component`` ("api", "worker"), or ``None`` when off."""
    if not settings.otel_enabled:
        return None
    name = settings.otel_service_name or f"{settings.service_name}-{component}"
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def kafka_middlewares(provider: TracerProvider | None) -> list[KafkaTelemetryMiddleware]:
    return [] if provider is None else [KafkaTelemetryMiddleware(tracer_provider=provider)]
