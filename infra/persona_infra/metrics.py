"""Prometheus metrics every process exports (process, memory limit, dependencies), and
the conventions the worker's and the API's own metrics follow: created per process on an
explicit registry.

An explicit registry (rather than prometheus-client's global one) lets tests run
an API and a worker in one process without name clashes. Names follow Prometheus
conventions (base units, ``_total`` counters); labels are bounded sets (route
templates, outcomes, models, partitions), never ids. docs/OPERATIONS.md and the
alert rules under deploy/prometheus/ depend on these names.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

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
