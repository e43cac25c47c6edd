"""Observability end to end: a real Prometheus scrapes the running API and worker.

The pipeline's metrics must move when a request is processed, the project's own
alert rules must load and evaluate against the real series, and the correlation
id sent to the API must reach the worker's logs and the events it publishes.
"""

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from loguru import logger

from persona_api.app import create_app
from persona_infra.settings import Settings
from persona_worker.app import create_worker
from tests.support.kafka import collect
from tests.support.prometheus import Prometheus, run_prometheus
from tests.support.serve import serve

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))


@pytest.fixture
async def stack(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The API and a worker, served on loopback; yields an API client and the worker's URL."""
    async with (
        serve(create_worker(settings).app) as worker_url,
        serve(create_app(settings)) as api_url,
        httpx.AsyncClient(base_url=api_url) as api,
    ):
        yield api, worker_url


@pytest.fixture
def log_records() -> Iterator[list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    sink = logger.add(lambda message: records.append(message.record), level="DEBUG")
    yield records
    logger.remove(sink)


def _host_port(url: str) -> str:
    return url.removeprefix("http://")


async def test_prometheus_scrapes_both_processes_and_pipeline_metrics_move(
    stack: tuple[httpx.AsyncClient, str], tmp_path: Path
) -> None:
    api, worker_url = stack
    assert RULE_FILES, "deploy/prometheus/rules/*.yml is missing"
    targets = {
        "persona-api": _host_port(str(api.base_url)),
        "persona-worker": _host_port(worker_url),
    }
    with run_prometheus(tmp_path, targets, RULE_FILES) as prometheus:
        await _wait(prometheus, 'sum(up{job=~"persona-api|persona-worker"}) == 2')
        assert await _wait(prometheus, "min(persona_dependency_up) == 1") == 1
        assert prometheus.query("sum(persona_stored_total)") == 0

        response = await api.post("/v1/persona", json={"brief": "beekeepers", "count": 3})
        assert response.status_code == 202

        await _wait(prometheus, 'sum(http_requests_total{route="/v1/persona",status="202"}) == 1')
        await _wait(prometheus, "sum(persona_stored_total) == 3")
        await _wait(prometheus, 'sum(persona_events_published_total{event="persona.created"}) == 3')
        await _wait(prometheus, 'sum(persona_requests_consumed_total{outcome="completed"}) == 1')
        await _wait(prometheus, 'sum(persona_llm_calls_total{outcome="ok"}) == 3')
        await _wait(prometheus, "sum(persona_insert_batch_size_sum) == 3")
        await _wait(prometheus, "sum(faststream_received_messages_total) >= 1")
        await _wait(prometheus, 'sum(persona_consumer_lag_messages{job="persona-worker"}) == 0')
        await _wait(prometheus, "min(process_resident_memory_bytes) > 0")

        groups = prometheus.rule_groups()
        rules = [rule for group in groups for rule in group["rules"]]  # type: ignore[attr-defined]
        assert rules, "Prometheus loaded no rules from deploy/prometheus/rules"
        assert all(rule["health"] == "ok" for rule in rules), [
            (rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"
        ]
        firing = [
            r["name"] for r in rules if r.get("type") == "alerting" and r["state"] == "firing"
        ]
        assert firing == [], f"alerts fire on a healthy pipeline: {firing}"


async def _wait(prometheus: Prometheus, expr: str) -> float:
    return await asyncio.to_thread(prometheus.wait_for, expr)


async def _completion_lines(
    log_records: list[dict[str, Any]], request_id: str, timeout_s: float = 10.0
) -> list[dict[str, Any]]:
    """The worker's INFO lines about a request, once its completion line is in.

    The personas' events are published before the request's summary line is logged, so
    the test waits for that line rather than reading the log the moment the events arrive.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        lines = [
            r
            for r in log_records
            if r["extra"].get("request_id") == request_id and r["level"].no >= 20
        ]
        done = any("completed" in r["message"] for r in lines)
        if done or asyncio.get_running_loop().time() > deadline:
            return lines
        await asyncio.sleep(0.05)


async def test_correlation_id_follows_a_request_into_the_worker(
    settings: Settings, stack: tuple[httpx.AsyncClient, str], log_records: list[dict[str, Any]]
) -> None:
    api, _ = stack
    response = await api.post(
        "/v1/persona",
        json={"brief": "lighthouse keepers", "count": 2},
        headers={"x-correlation-id": "trace-obs-7"},
    )
    assert response.status_code == 202
    request_id = response.json()["request_id"]

    created = await collect(
        settings.kafka_bootstrap_servers, settings.topics.created, lambda rs: len(rs) >= 2
    )
    assert {dict(r.headers).get("x-correlation-id") for r in created} == {b"trace-obs-7"}
    worker_lines = await _completion_lines(log_records, request_id)
    assert worker_lines, "the worker logged nothing about the request at INFO"
    assert {r["extra"].get("correlation_id") for r in worker_lines} == {"trace-obs-7"}


async def test_worker_ready_reports_each_dependency(stack: tuple[httpx.AsyncClient, str]) -> None:
    _, worker_url = stack
    async with httpx.AsyncClient() as client:
        ready = await client.get(f"{worker_url}/ready")
        metrics = (await client.get(f"{worker_url}/metrics")).text
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"mongodb": "ok", "kafka": "ok", "consumer": "ok", "shard_consumer": "ok"},
    }
    assert 'persona_dependency_up{dependency="mongodb"} 1.0' in metrics
    assert 'persona_dependency_up{dependency="kafka"} 1.0' in metrics
