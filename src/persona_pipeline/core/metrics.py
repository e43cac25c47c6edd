"""Prometheus metrics, created per process on an explicit registry.

An explicit registry (rather than prometheus-client's global one) lets tests run
an API and a worker in one process without name clashes.
"""

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LLM_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 21, 34, 60)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


@dataclass(frozen=True, slots=True)
class PipelineMetrics:
    requests_consumed: Counter
    personas_stored: Counter
    events_published: Counter
    dead_letters: Counter
    ordinals_failed: Counter
    llm_calls: Counter
    llm_latency: Histogram
    tokens: Counter
    cost: Counter
    near_duplicates: Counter
    in_flight: Gauge
    requests_in_flight: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> "PipelineMetrics":
        return cls(
            requests_consumed=Counter(
                "persona_requests_consumed_total",
                "Requests taken from Kafka, by outcome.",
                ["outcome"],
                registry=registry,
            ),
            personas_stored=Counter(
                "personas_stored_total", "Personas newly written to MongoDB.", registry=registry
            ),
            events_published=Counter(
                "persona_events_published_total",
                "Events published, by event type.",
                ["event"],
                registry=registry,
            ),
            dead_letters=Counter(
                "persona_dead_letters_total",
                "Invalid request events sent to the DLQ.",
                registry=registry,
            ),
            ordinals_failed=Counter(
                "persona_ordinals_failed_total",
                "Personas that could not be generated.",
                registry=registry,
            ),
            llm_calls=Counter(
                "persona_llm_calls_total",
                "Generator calls, by generator and outcome.",
                ["generator", "outcome"],
                registry=registry,
            ),
            llm_latency=Histogram(
                "persona_llm_call_duration_seconds",
                "Generator call latency.",
                ["generator"],
                buckets=LLM_BUCKETS,
                registry=registry,
            ),
            tokens=Counter(
                "persona_llm_tokens_total",
                "Tokens used, by model and kind.",
                ["model", "kind"],
                registry=registry,
            ),
            cost=Counter(
                "persona_llm_cost_usd_total",
                "Generation cost in USD, by model.",
                ["model"],
                registry=registry,
            ),
            near_duplicates=Counter(
                "persona_near_duplicates_total",
                "Near-duplicate personas caught.",
                registry=registry,
            ),
            in_flight=Gauge(
                "persona_generations_in_flight",
                "Personas being generated right now.",
                registry=registry,
            ),
            requests_in_flight=Gauge(
                "persona_requests_in_flight",
                "Requests being processed right now.",
                registry=registry,
            ),
        )


@dataclass(frozen=True, slots=True)
class HttpMetrics:
    requests: Counter
    duration: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> "HttpMetrics":
        return cls(
            requests=Counter(
                "http_requests_total",
                "HTTP requests, by route template and status.",
                ["method", "route", "status"],
                registry=registry,
            ),
            duration=Histogram(
                "http_request_duration_seconds",
                "HTTP request latency, by route template.",
                ["method", "route"],
                buckets=HTTP_BUCKETS,
                registry=registry,
            ),
        )
