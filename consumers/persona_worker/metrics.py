"""The worker's Prometheus metrics: requests, personas, events, dead letters, LLM calls,
tokens, cost and concurrency (conventions: ``persona_infra.metrics``)."""

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from persona_contracts import TokenUsage

LLM_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 21, 34, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


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
