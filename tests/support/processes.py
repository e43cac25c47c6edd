"""Run ``persona worker`` / ``persona api`` as real child processes (crash, signal and
logging tests)."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from subprocess import Popen
from typing import Any

from persona_infra.settings import Settings
from persona_pipeline.devstack.servers import free_port

PERSONA = str(Path(sys.executable).with_name("persona"))


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes a child process use ``settings``' servers and names."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MONGODB_", "OPENAI_"))
    }
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
            "KAFKA_SESSION_TIMEOUT_MS": str(settings.kafka_session_timeout_ms),
            "KAFKA_HEARTBEAT_INTERVAL_MS": str(settings.kafka_heartbeat_interval_ms),
            "MONGODB_URI": settings.mongodb_uri.get_secret_value(),
            "MONGODB_DATABASE": settings.mongodb_database,
            "WORKER_PORT": str(free_port()),
            "API_PORT": str(free_port()),
            "LOG_LEVEL": "WARNING",
        },
        **extra,
    )
    return env


def start_worker(env: dict[str, str], timeout: float = 60, **popen: Any) -> Popen[bytes]:
    """Start a worker and wait until its /ready answers."""
    return start("worker", f"http://127.0.0.1:{env['WORKER_PORT']}/ready", env, timeout, **popen)


def start_api(env: dict[str, str], timeout: float = 60, **popen: Any) -> Popen[bytes]:
    """Start the API and wait until its /ready answers."""
    return start("api", f"http://127.0.0.1:{env['API_PORT']}/ready", env, timeout, **popen)


def start(
    command: str, url: str, env: dict[str, str], timeout: float, **popen: Any
) -> Popen[bytes]:
    """Start ``persona <command>`` in its own session; ``popen`` may redirect its output."""
    process = subprocess.Popen([PERSONA, command], env=env, start_new_session=True, **popen)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{command} exited with {process.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if 200 <= response.status < 300:
                    return process
        except OSError:
            time.sleep(0.1)
    stop(process, signal.SIGKILL)
    raise AssertionError(f"{command} never became ready")


def stop(process: Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> int:
    if process.poll() is None:
        os.killpg(process.pid, sig)
    return process.wait(timeout=60)
