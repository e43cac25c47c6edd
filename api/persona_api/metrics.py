"""The API's Prometheus metrics: requests and latency by route template (conventions:
``persona_infra.metrics``)."""

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


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
