"""Run ``persona dev`` as a user would: its environment, its banner, its process tree."""

import os
import subprocess
import time
from pathlib import Path

from persona_pipeline.devstack.servers import free_port, port_is_open

DEV_PORTS = ("DEV_KAFKA_PORT", "DEV_MONGODB_PORT", "API_PORT", "WORKER_PORT")


def dev_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MONGODB_", "OPENAI_"))
    }
    env.update(
        DEV_DATA_DIR=str(tmp_path / "data"),
        DEV_KAFKA_PORT=str(free_port()),
        DEV_MONGODB_PORT=str(free_port()),
        API_PORT=str(free_port()),
        WORKER_PORT=str(free_port()),
    )
    env["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{env['DEV_KAFKA_PORT']}"  # for `persona request`
    env.update(extra)
    return env


def wait_for_banner(process: subprocess.Popen[bytes], timeout: float = 90) -> list[str]:
    """Read ``persona dev``'s output until it announces readiness; returns the lines read."""
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline().decode(errors="replace")
        if not line and process.poll() is not None:
            break
        lines.append(line)
        if "Persona pipeline is ready" in line:
            return lines
    raise AssertionError("persona dev never became ready:\n" + "".join(lines[-40:]))


def descendants(root: int) -> list[int]:
    """Every process below ``root`` (read from /proc)."""
    parents = {pid: _parent(pid) for pid in _pids()}
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def command_line(pid: int) -> str:
    """The process's command line, '' once it is gone (a zombie has none either)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def child_running(root: int, marker: str) -> int | None:
    """The pid of the descendant of ``root`` whose command line contains ``marker``."""
    return next((pid for pid in descendants(root) if marker in command_line(pid)), None)


def ports_free(env: dict[str, str]) -> bool:
    return not any(port_is_open(int(env[name])) for name in DEV_PORTS)


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])
