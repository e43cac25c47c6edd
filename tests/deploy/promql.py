"""Helpers shared by the Prometheus and Grafana checks (tests/deploy/test_prometheus_rules.py,
tests/deploy/test_grafana.py): running promtool, finding the metric names a PromQL
expression uses, and the names the services really export.
"""

import functools
import inspect
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from persona_api import metrics as api_metrics
from persona_infra import metrics as process_metrics
from persona_worker import metrics as worker_metrics
from tests.deploy.common import ROOT

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULES_DIR = PROMETHEUS_DIR / "rules"
RULE_TESTS_DIR = PROMETHEUS_DIR / "tests"

# Metrics that come from somewhere else than persona_infra.metrics:
# the standard process collector, Prometheus itself (up), kafka-exporter and
# FastStream's KafkaPrometheusMiddleware (registered lazily, on the first message).
FOREIGN_METRIC_PREFIXES = ("process_", "kafka_", "faststream_")
FOREIGN_METRICS = {"up"}

# Sample names a metric family exposes, by family type (OpenMetrics suffixes).
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_LABEL_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_OFFSET = re.compile(r"\boffset\s+-?\w+|@\s*(?:start\(\)|end\(\)|[\d.]+)", re.IGNORECASE)
_IDENTIFIER = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?")
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "inf",
    "nan",
}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool not found: run `make install-test`")
    return found


def run_promtool(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_promtool_ok(result: subprocess.CompletedProcess[str], what: str) -> str:
    output = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, f"promtool rejects {what}:\n{output}"
    return output


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (not functions, keywords or label names).

    A small tokenizer, enough for the expressions in this repository: strings,
    label matchers, ranges, grouping clauses and offsets are removed, then every
    identifier that is not a function call or a keyword is a metric name.
    """
    text = _STRING.sub('""', expr)
    text = _LABEL_MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    text = _OFFSET.sub("", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.groups()
        if call is None and name.lower() not in _KEYWORDS:
            names.add(name)
    return names


METRICS_MODULES = (process_metrics, worker_metrics, api_metrics)


@functools.cache
def exported_metric_names() -> frozenset[str]:
    """Every sample name the services' own metrics expose.

    Every class of the metrics modules (the worker's, the API's and the one every
    process exports) with a ``create(registry)`` factory is instantiated on a fresh
    registry, so a metric added there is known here without editing the tests.
    """
    names: set[str] = set()
    factories = [
        member.create
        for module in METRICS_MODULES
        for member in vars(module).values()
        if inspect.isclass(member)
        and member.__module__ == module.__name__
        and callable(getattr(member, "create", None))
    ]
    assert len(factories) >= len(METRICS_MODULES), "a metrics module has no create(registry)"
    for create in factories:
        registry = CollectorRegistry()
        create(registry)
        for family in registry.collect():
            names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
        # Custom collectors that describe() their metrics but yield no sample
        # right now (for example a memory limit that is not set) are only
        # visible in the registry's name index.
        index = getattr(registry, "_names_to_collectors", {})
        names.update(
            name
            for name, collector in index.items()
            if not isinstance(collector, MetricWrapperBase)
        )
    return frozenset(names)


@functools.cache
def recorded_metric_names() -> frozenset[str]:
    names = set()
    for path in sorted(RULES_DIR.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names.update(rule["record"] for rule in group["rules"] if "record" in rule)
    return frozenset(names)


def unknown_metrics(expr: str) -> set[str]:
    """Metric names in ``expr`` that nothing exports or records."""
    return {
        name
        for name in metric_names(expr)
        if name not in exported_metric_names()
        and name not in recorded_metric_names()
        and name not in FOREIGN_METRICS
        and not name.startswith(FOREIGN_METRIC_PREFIXES)
    }
