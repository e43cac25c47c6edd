"""``persona dev``: the whole pipeline on one machine, in the foreground, Ctrl-C to stop.

Starts Kafka and MongoDB, creates the topics, then runs the worker and the API as
child processes with the same settings pointed at them, and supervises all four
(``devstack.supervisor``): a child that crashes is restarted with backoff (a restarted
broker gets its topics back; the reconciler re-drives what its memory lost), and
SIGINT, SIGTERM or SIGHUP (a closed terminal) stop everything in reverse order. A dead
stdout or stderr (``persona dev | tee log`` with ``tee`` gone) never prevents the stop:
output is dropped from then on. Children run in their own process groups, so a Ctrl-C
reaches only this supervisor, and are tethered to it, so they die with it even on
``kill -9``.
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

from rich.console import Console

from persona_infra.kafka import ensure_topics
from persona_infra.settings import Settings
from persona_pipeline.devstack.servers import (
    ChildServer,
    PortInUseError,
    ServerStartError,
    ensure_port_free,
    start_kafka,
    start_mongodb,
)
from persona_pipeline.devstack.supervisor import Child, GaveUpError
from persona_pipeline.devstack.tether import tethered

READY_TIMEOUT_S = 60.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# The reconciler re-drives requests a restarted (in-memory) broker forgot; in development
# it should not wait the production two minutes.
DEV_RECONCILE = {"RECONCILE_INTERVAL_S": "5", "RECONCILE_STALE_AFTER_S": "20"}


class Announcer:
    """Prints to the terminal until the terminal goes away, then discards silently.

    Once a write fails (EPIPE after ``| tee`` died, EIO after the terminal closed) both
    standard streams are pointed at /dev/null, so no later write, ours or a library's,
    can interrupt the shutdown."""

    def __init__(self) -> None:
        self._console = Console(stderr=True)
        self._dead = False

    def __call__(self, message: str) -> None:
        if self._dead:
            return
        try:
            self._console.print(message)
            self._console.file.flush()
        except (OSError, ValueError):
            self._dead = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            for stream in (1, 2):
                os.dup2(devnull, stream)


say = Announcer()


def dev_environment(settings: Settings) -> dict[str, str]:
    """Settings the children need on top of the user's: where the servers are, fast joins,
    a quick reconciler (unless the user set one)."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{settings.dev_kafka_port}",
        "MONGODB_URI": f"mongodb://127.0.0.1:{settings.dev_mongodb_port}",
        # The embedded broker makes a group join wait half the session timeout.
        "KAFKA_SESSION_TIMEOUT_MS": "2000",
        "KAFKA_HEARTBEAT_INTERVAL_MS": "400",
        **{name: value for name, value in DEV_RECONCILE.items() if name not in os.environ},
    }


def worker_ports(settings: Settings, workers: int) -> list[int]:
    """The workers' health and metrics ports: ``WORKER_PORT`` and the ones after it."""
    return [settings.worker_port + i for i in range(workers)]


def _check_ports(settings: Settings, workers: int) -> None:
    for port, what, env in (
        (settings.dev_kafka_port, "Kafka broker", "DEV_KAFKA_PORT"),
        (settings.dev_mongodb_port, "MongoDB server", "DEV_MONGODB_PORT"),
        *(
            (port, "worker's metrics endpoint", "WORKER_PORT")
            for port in worker_ports(settings, workers)
        ),
        (settings.api_port, "HTTP API", "API_PORT"),
    ):
        ensure_port_free(port, what, env)


class _Server:
    """A ``ChildServer`` as the supervisor sees it."""

    def __init__(self, server: ChildServer) -> None:
        self._server = server

    def exited(self) -> int | None:
        return self._server.process.poll()

    def stop(self) -> None:
        self._server.stop()


class _Service:
    """``persona worker`` or ``persona api`` as a child process in its own session."""

    def __init__(self, command: str, env: dict[str, str]) -> None:
        self._process = subprocess.Popen(
            tethered([sys.executable, "-m", "persona_pipeline.cli.main", command]),
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def exited(self) -> int | None:
        return self._process.poll()

    def stop(self, timeout: float = 30.0) -> None:
        if self._process.poll() is not None:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()


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


def _print_banner(settings: Settings, workers: int, startup_s: float) -> None:
    api = f"http://127.0.0.1:{settings.api_port}"
    say(f"\n[bold green]Persona pipeline is ready[/bold green] in {startup_s:.1f}s")
    say(f"  Console     {api}/ui")
    say(f"  API         {api}   (docs: {api}/docs)")
    for port in worker_ports(settings, workers):
        say(f"  Worker      http://127.0.0.1:{port}/metrics")
    say(f"  Kafka       127.0.0.1:{settings.dev_kafka_port}  (in-memory: empty after restart)")
    say(
        f"  MongoDB     mongodb://127.0.0.1:{settings.dev_mongodb_port}  "
        f"(data in {settings.dev_data_dir}/)"
    )
    say(f"  Generator   {settings.active_generator.value}")
    say('  Try:  persona request --brief "urban cyclists in Berlin" --count 5 --wait')
    say("  Ctrl-C stops everything; a crashed process is restarted.\n")


def run_dev_stack(settings: Settings, workers: int = 1) -> int:
    """Run until SIGINT, SIGTERM or SIGHUP, or until a child keeps crashing; ``workers``
    workers share the requests and the shards of large ones."""
    started = time.monotonic()
    try:
        _check_ports(settings, workers)
    except PortInUseError as exc:
        say(f"[red]{exc}[/red]")
        return 1
    stop = threading.Event()
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: stop.set())
    children: list[Child] = []
    try:
        return _run(settings, workers, started, stop, children)
    except (ServerStartError, GaveUpError) as exc:
        say(f"[red]{exc}[/red]")
        return 1
    finally:
        say("stopping ...")
        for child in reversed(children):
            child.stop()
        say("stopped.")


def _children(settings: Settings, workers: int) -> list[Child]:
    data = Path(settings.dev_data_dir)
    logs = data / "logs"
    env = dev_environment(settings)
    kafka_settings = settings.model_copy(
        update={"kafka_bootstrap_servers": env["KAFKA_BOOTSTRAP_SERVERS"]}
    )
    return [
        Child(
            "Kafka broker",
            lambda: _Server(start_kafka(settings.dev_kafka_port, logs)),
            after_start=lambda: _recreate_topics(kafka_settings),
        ),
        Child(
            "MongoDB",
            lambda: _Server(
                start_mongodb(
                    settings.dev_mongodb_port,
                    data / "mongodb",
                    logs,
                    cache=settings.dev_mongodb_cache,
                )
            ),
        ),
        *(
            Child("worker" if workers == 1 else f"worker {n}", _worker(env, port))
            for n, port in enumerate(worker_ports(settings, workers), start=1)
        ),
        Child("API", lambda: _Service("api", env)),
    ]


def _worker(env: dict[str, str], port: int) -> Callable[[], "_Service"]:
    """Starts one worker, with its health and metrics on ``port``."""
    return lambda: _Service("worker", {**env, "WORKER_PORT": str(port)})


def _recreate_topics(settings: Settings) -> None:
    """The embedded broker forgets its topics when it restarts: create them again."""
    asyncio.run(ensure_topics(settings))


def _run(
    settings: Settings,
    workers: int,
    started: float,
    stop: threading.Event,
    children: list[Child],
) -> int:
    for child in _children(settings, workers):
        if stop.is_set():
            return 130
        children.append(child)
        child.launch()

    def alive() -> bool:
        for child in children:
            child.tend(say)
        return not stop.is_set()

    for url in (
        *(f"http://127.0.0.1:{port}/ready" for port in worker_ports(settings, workers)),
        f"http://127.0.0.1:{settings.api_port}/ready",
    ):
        if not _wait_ready(url, alive, READY_TIMEOUT_S):
            if stop.is_set():
                return 130
            say(
                f"[red]{url} did not turn ready; see the log lines above "
                f"and {Path(settings.dev_data_dir) / 'logs'}/ for the servers' output[/red]"
            )
            return 1
    _print_banner(settings, workers, time.monotonic() - started)
    while not stop.wait(0.5):
        for child in children:
            child.tend(say)
    return 0
