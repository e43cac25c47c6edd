"""``persona dev``: the whole pipeline on one machine, in the foreground, Ctrl-C to stop.

Starts Kafka and MongoDB, creates the topics, then runs the worker and the API
as child processes with the same settings pointed at them. Children run in
their own process groups so that a Ctrl-C reaches only this supervisor, which
then stops them in reverse order: nothing is orphaned, every port is freed.
"""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from loguru import logger
from rich.console import Console

from persona_pipeline.core.kafka import ensure_topics
from persona_pipeline.core.settings import Settings
from persona_pipeline.devstack.servers import (
    ChildServer,
    PortInUseError,
    ServerStartError,
    ensure_port_free,
    start_kafka,
    start_mongodb,
)

READY_TIMEOUT_S = 60.0
console = Console(stderr=True)


def dev_environment(settings: Settings) -> dict[str, str]:
    """Settings the children need on top of the user's: where the servers are, fast joins."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{settings.dev_kafka_port}",
        "MONGODB_URI": f"mongodb://127.0.0.1:{settings.dev_mongodb_port}",
        # The embedded broker makes a group join wait half the session timeout.
        "KAFKA_SESSION_TIMEOUT_MS": "2000",
        "KAFKA_HEARTBEAT_INTERVAL_MS": "400",
    }


def _check_ports(settings: Settings) -> None:
    for port, what, env in (
        (settings.dev_kafka_port, "Kafka broker", "DEV_KAFKA_PORT"),
        (settings.dev_mongodb_port, "MongoDB server", "DEV_MONGODB_PORT"),
        (settings.worker_port, "worker's metrics endpoint", "WORKER_PORT"),
        (settings.api_port, "HTTP API", "API_PORT"),
    ):
        ensure_port_free(port, what, env)


def _spawn_service(command: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "persona_pipeline.cli.main", command],
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def _wait_ready(url: str, alive: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            with urllib.request.urlopen(url, timeout=2):  # raises on any status but 2xx
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def _stop_process(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _print_banner(settings: Settings, startup_s: float) -> None:
    api = f"http://127.0.0.1:{settings.api_port}"
    console.print(f"\n[bold green]Persona pipeline is ready[/bold green] in {startup_s:.1f}s")
    console.print(f"  API         {api}   (docs: {api}/docs)")
    console.print(f"  Worker      http://127.0.0.1:{settings.worker_port}/metrics")
    console.print(
        f"  Kafka       127.0.0.1:{settings.dev_kafka_port}  (in-memory: empty after restart)"
    )
    console.print(
        f"  MongoDB     mongodb://127.0.0.1:{settings.dev_mongodb_port}  "
        f"(data in {settings.dev_data_dir}/)"
    )
    console.print(f"  Generator   {settings.active_generator.value}")
    console.print('  Try:  persona request --brief "urban cyclists in Berlin" --count 5 --wait')
    console.print("  Ctrl-C stops everything.\n")


def run_dev_stack(settings: Settings) -> int:
    """Run until Ctrl-C or until a child dies; returns the exit code."""
    started = time.monotonic()
    try:
        _check_ports(settings)
    except PortInUseError as exc:
        console.print(f"[red]{exc}[/red]")
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    servers: list[ChildServer] = []
    services: list[subprocess.Popen[bytes]] = []
    try:
        return _run(settings, started, stop, servers, services)
    except ServerStartError as exc:
        console.print(f"[red]{exc}[/red]")
        return 1
    finally:
        console.print("stopping ...")
        for process in reversed(services):
            _stop_process(process)
        for server in reversed(servers):
            server.stop()
        console.print("stopped.")


def _run(
    settings: Settings,
    started: float,
    stop: threading.Event,
    servers: list[ChildServer],
    services: list[subprocess.Popen[bytes]],
) -> int:
    data = Path(settings.dev_data_dir)
    logs = data / "logs"
    servers.append(start_kafka(settings.dev_kafka_port, logs))
    servers.append(start_mongodb(settings.dev_mongodb_port, data / "mongodb", logs))
    env = dev_environment(settings)
    asyncio.run(
        ensure_topics(
            settings.model_copy(update={"kafka_bootstrap_servers": env["KAFKA_BOOTSTRAP_SERVERS"]})
        )
    )
    services.append(_spawn_service("worker", env))
    services.append(_spawn_service("api", env))

    def alive() -> bool:
        return not stop.is_set() and all(p.poll() is None for p in services)

    for url in (
        f"http://127.0.0.1:{settings.worker_port}/ready",
        f"http://127.0.0.1:{settings.api_port}/ready",
    ):
        if not _wait_ready(url, alive, READY_TIMEOUT_S):
            if stop.is_set():
                return 130
            console.print(
                f"[red]{url} did not turn ready; see the log lines above "
                f"and {logs}/ for the servers' output[/red]"
            )
            return 1
    _print_banner(settings, time.monotonic() - started)
    while not stop.wait(0.5):
        for process, name in zip(services, ("worker", "api"), strict=True):
            if process.poll() is not None:
                logger.error("{} exited with code {}; stopping the stack", name, process.returncode)
                return 1
        for server in servers:
            if server.process.poll() is not None:
                logger.error("{} exited; see {}", server.name, server.log_path)
                return 1
    return 0
