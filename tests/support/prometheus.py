"""A real Prometheus server (the ``prometheus`` binary) on loopback, for scrape tests."""

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from persona_pipeline.devstack.servers import free_port


@dataclass(frozen=True)
class Prometheus:
    url: str

    def query(self, expr: str) -> float | None:
        """The single value of an instant query, ``None`` when it has no result."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5)
        response.raise_for_status()
        result = response.json()["data"]["result"]
        assert len(result) <= 1, f"{expr} has {len(result)} series; aggregate it"
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, expr: str, timeout: float = 30.0) -> float:
        """Poll ``expr`` (a filtering expression, e.g. ``x >= 3``) until it has a value."""
        deadline = time.monotonic() + timeout
        while (value := self.query(expr)) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"Prometheus: no result for {expr} after {timeout}s")
            time.sleep(0.5)
        return value

    def rule_groups(self) -> list[dict[str, object]]:
        response = httpx.get(f"{self.url}/api/v1/rules", timeout=5)
        response.raise_for_status()
        groups: list[dict[str, object]] = response.json()["data"]["groups"]
        return groups


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    assert found, "prometheus not found: run `make install-test` (Debian package prometheus)"
    return found


@contextlib.contextmanager
def run_prometheus(
    workdir: Path, targets: dict[str, str], rule_files: list[Path]
) -> Iterator[Prometheus]:
    """Scrape ``targets`` (job name → host:port) every second, evaluating ``rule_files``."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(f) for f in rule_files],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]}
            for job, target in targets.items()
        ],
    }
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            prometheus_binary(),
            f"--config.file={config_file}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Prometheus(f"http://127.0.0.1:{port}")
    try:
        _wait_ready(server, process, workdir / "prometheus.log")
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _wait_ready(server: Prometheus, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"prometheus exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{server.url}/-/ready", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"prometheus never became ready: {log.read_text()[-2000:]}")
