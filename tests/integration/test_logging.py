"""Production logging of the real processes: JSON lines, shared fields, no secrets.

``persona api`` and ``persona worker`` run as child processes in production mode
with every secret set; one request goes through them. Every line either writes
(stderr and the ``LOG_FILE``) must be one JSON object with the documented fields,
the correlation id must appear on both sides, and no secret may appear anywhere.
"""

import json
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from persona_infra.api_keys import generate_key, make_entry
from persona_infra.settings import Settings
from tests.support.fake_openai import FakeOpenAI
from tests.support.processes import start_api, start_worker, stop, worker_env

pytestmark = pytest.mark.integration

FIELDS = {"timestamp", "level", "logger", "message"}


def _json_lines(text: str, source: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, f"{source} logged nothing"
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"{source}: not a JSON line: {line[:300]}")
    missing = [(r.get("message"), FIELDS - r.keys()) for r in parsed if not r.keys() >= FIELDS]
    assert not missing, f"{source}: lines without the common fields: {missing[:3]}"
    return parsed


def test_production_logs_are_json_correlated_and_free_of_secrets(
    settings: Settings, fake: FakeOpenAI, tmp_path: Path
) -> None:
    writer_key, openai_key, cursor_secret = generate_key(), f"sk-{secrets.token_hex(20)}", "c" * 40
    env = worker_env(
        settings,
        ENVIRONMENT="production",
        LOG_LEVEL="DEBUG",
        LOG_FILE=str(tmp_path / "persona.log"),
        CURSOR_SECRET=cursor_secret,
        API_KEYS=make_entry("ci-writer", writer_key),
        OPENAI_API_KEY=openai_key,
        OPENAI_BASE_URL=fake.base_url,
    )
    outputs = {name: (tmp_path / f"{name}.stderr").open("wb") for name in ("api", "worker")}
    worker = start_worker(env, stderr=outputs["worker"])
    api = start_api(env, stderr=outputs["api"])
    try:
        response = httpx.post(
            f"http://127.0.0.1:{env['API_PORT']}/v1/persona",
            json={"brief": "night-shift nurses", "count": 2},
            headers={"Authorization": f"Bearer {writer_key}", "X-Correlation-Id": "log-test-1"},
        )
        assert response.status_code == 202, response.text
        _wait_completed(env["API_PORT"], response.json()["status_url"])
    finally:
        for process in (api, worker):
            stop(process)
        for output in outputs.values():
            output.close()

    api_lines = _json_lines((tmp_path / "api.stderr").read_text(), "api stderr")
    worker_lines = _json_lines((tmp_path / "worker.stderr").read_text(), "worker stderr")
    _json_lines((tmp_path / "persona.log").read_text(), "LOG_FILE")

    access = [r for r in api_lines if r.get("route") == "/v1/persona" and r.get("status") == 202]
    assert access, "no access log line for the POST"
    assert access[0]["correlation_id"] == "log-test-1"
    assert isinstance(access[0]["latency_ms"], float)
    assert access[0]["api_key"] == "ci-writer"  # the key's name, never the key
    assert any(r["logger"].startswith("uvicorn") for r in api_lines), "uvicorn bypassed the sink"
    correlated = [r for r in worker_lines if r.get("correlation_id") == "log-test-1"]
    assert any("completed" in r["message"] for r in correlated), "worker lines lack the id"

    everything = "".join(p.read_text() for p in tmp_path.glob("*.stderr"))
    everything += (tmp_path / "persona.log").read_text()
    for secret in (writer_key, openai_key, cursor_secret):
        assert secret not in everything


def _wait_completed(port: str, status_url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(f"http://127.0.0.1:{port}{status_url}").json()
        if status["status"] == "completed":
            return
        time.sleep(0.2)
    raise AssertionError(f"request not completed: {status}")
