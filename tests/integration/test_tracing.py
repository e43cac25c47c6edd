"""Optional tracing: one trace from ``POST /v1/persona`` through Kafka into the worker.

The API and the worker get SDK tracer providers that export to memory (as
``OTEL_ENABLED`` would give them OTLP ones); the trace context must travel in
the Kafka headers so the worker's spans join the HTTP request's trace.
"""

import uuid

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from persona_api.app import create_app
from persona_infra.settings import Settings
from persona_infra.telemetry import tracer_provider
from persona_worker.app import create_worker
from tests.conftest import derive
from tests.support.kafka import created_events
from tests.support.serve import serve

pytestmark = pytest.mark.integration


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def _provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


async def test_one_trace_spans_the_api_kafka_and_the_worker(
    settings: Settings, exporter: InMemorySpanExporter
) -> None:
    async with (
        serve(create_worker(settings, tracing=_provider(exporter)).app),
        serve(create_app(settings, tracing=_provider(exporter))) as url,
        httpx.AsyncClient(base_url=url) as api,
    ):
        response = await api.post("/v1/persona", json={"brief": "glassblowers", "count": 2})
        assert response.status_code == 202
        await created_events(settings, uuid.UUID(response.json()["request_id"]), 2)
        await api.get("/health")  # excluded from tracing

    spans = exporter.get_finished_spans()
    http = [s for s in spans if s.kind is SpanKind.SERVER and _attr(s, "http.route")]
    assert [_attr(s, "http.route") for s in http] == ["/v1/persona"]
    trace_id = http[0].context.trace_id
    consumed = [s for s in spans if s.kind is SpanKind.CONSUMER]
    assert consumed, "the worker traced no consumed message"
    assert {s.context.trace_id for s in consumed} == {trace_id}
    published = [s for s in spans if s.kind is SpanKind.PRODUCER and s.context.trace_id == trace_id]
    destinations = {_attr(s, "messaging.destination.name") for s in published}
    assert destinations == {settings.topics.requests, settings.topics.created}


def _attr(span: ReadableSpan, name: str) -> object:
    return (span.attributes or {}).get(name)


def test_tracing_is_off_by_default_and_named_per_process(settings: Settings) -> None:
    assert tracer_provider(settings, "api") is None
    provider = tracer_provider(derive(settings, otel_enabled=True), "worker")
    assert provider is not None
    assert provider.resource.attributes["service.name"] == "persona-pipeline-worker"
    provider.shutdown()
