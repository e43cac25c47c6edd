"""Prometheus metrics, created per process on an explicit registry.

An explicit registry (rather than prometheus-client's global one) lets tests run
an API and a worker in one process without name clashes. Names follow Prometheus
conventions (base units, ``_total`` counters); labels are bounded sets (route
templates, outcomes, models, partitions), never ids. docs/OPERATIONS.md and the
alert rules under deploy/prometheus/ depend on these names.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from persona_contracts import TokenUsage

LLM_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 21, 34, 60)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
# cgroup v2, then v1: where a container runtime states the memory limit.
CGROUP_MEMORY_LIMIT_FILES = (
    Path("/sys/fs/cgroup/memory.max"),
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
)
# cgroup v1 reports "no limit" as a huge number rather than "max".
UNLIMITED_BYTES = 1 << 60


def memory_limit_bytes(files: Iterable[Path] = CGROUP_MEMORY_LIMIT_FILES) -> int | None:
    """The container's memory limit, or ``None`` when there is none (or no cgroup)."""
    for file in files:
        try:
            text = file.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < UNLIMITED_BYTES:
            return int(text)
        return None
    return None


MEMORY_LIMIT = "persona_memory_limit_bytes"
MEMORY_LIMIT_HELP = "The container's memory limit."


class MemoryLimitCollector(Collector):
    """``persona_memory_limit_bytes``, absent when unlimited, so that "RSS over 90 % of
    the limit" can be alerted on without cAdvisor or kube-state-metrics."""

    def __init__(self, files: Iterable[Path] = CGROUP_MEMORY_LIMIT_FILES) -> None:
        self._files = tuple(files)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """Registers the name even where there is no limit (duplicate checks, tests)."""
        yield GaugeMetricFamily(MEMORY_LIMIT, MEMORY_LIMIT_HELP)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        limit = memory_limit_bytes(self._files)
        if limit is not None:
            yield GaugeMetricFamily(MEMORY_LIMIT, MEMORY_LIMIT_HELP, value=limit)


@dataclass(frozen=True, slots=True)
class ProcessMetrics:
    """What every process exports: its resources and whether its dependencies answer."""

    dependency_up: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> "ProcessMetrics":
        ProcessCollector(registry=registry)
        registry.register(MemoryLimitCollector())
        return cls(
            dependency_up=Gauge(
                "persona_dependency_up",
                "1 when the dependency answered its last check (each scrape and /ready).",
                ["dependency"],
                registry=registry,
            )
        )


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
    llm_concurrency_limit: Gauge
    requests_in_flight: Gauge
    insert_batch_size: Histogram
    consumer_lag: Gauge

    def count_call(self, generator: str, outcome: str, model: str, usage: TokenUsage) -> None:
        """One LLM call answered (or refused): its outcome and the tokens it cost."""
        self.llm_calls.labels(generator, outcome).inc()
        self.tokens.labels(model, "prompt").inc(usage.prompt_tokens)
        self.tokens.labels(model, "completion").inc(usage.completion_tokens)
        self.tokens.labels(model, "cached_prompt").inc(usage.cached_prompt_tokens)

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
                "persona_stored_total", "Personas newly written to MongoDB.", registry=registry
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
            llm_concurrency_limit=Gauge(
                "persona_llm_concurrency_limit",
                "LLM calls allowed in flight now (adaptive: follows the provider's capacity).",
                registry=registry,
            ),
            requests_in_flight=Gauge(
                "persona_requests_in_flight",
                "Requests being processed right now.",
                registry=registry,
            ),
            insert_batch_size=Histogram(
                "persona_insert_batch_size",
                "Personas written per MongoDB insert (group commit).",
                buckets=BATCH_BUCKETS,
                registry=registry,
            ),
            consumer_lag=Gauge(
                "persona_consumer_lag_messages",
                "Messages behind the high watermark, by this worker's fetch position.",
                ["topic", "partition"],
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
