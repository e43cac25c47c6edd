"""``persona dev`` as a supervisor: it stops on every way a terminal ends it, leaves
nothing behind even when killed, and keeps the stack up when a child crashes."""

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dev import child_running, descendants, dev_env, ports_free, wait_for_banner
from tests.support.processes import PERSONA


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, str]]]:
    env = dev_env(tmp_path)
    process = subprocess.Popen(
        [PERSONA, "dev"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_for_banner(process)
        yield process, env
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)


def eventually(condition: object, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def gone(pids: list[int]) -> bool:
    return not [pid for pid in pids if Path(f"/proc/{pid}/cmdline").exists() and _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sighup_stops_everything_and_frees_the_ports(
    dev: tuple[subprocess.Popen[bytes], dict[str, str]],
) -> None:
    process, env = dev
    children = descendants(process.pid)
    assert len(children) >= 4
    process.send_signal(signal.SIGHUP)  # the terminal closed
    assert process.wait(timeout=60) == 0
    assert eventually(lambda: gone(children))
    assert ports_free(env)


def test_a_dead_output_pipe_does_not_prevent_the_stop(tmp_path: Path) -> None:
    env = dev_env(tmp_path)
    reader, writer = os.pipe()
    process = subprocess.Popen([PERSONA, "dev"], env=env, stdout=writer, stderr=writer)
    os.close(writer)
    with os.fdopen(reader, "rb") as output:
        seen = b""
        while b"Persona pipeline is ready" not in seen:
            chunk = output.read1(4096)
            assert chunk, "persona dev ended before it was ready"
            seen += chunk
    children = descendants(process.pid)  # the reader is closed now: `tee` is gone
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    assert eventually(lambda: gone(children))
    assert ports_free(env)


def test_children_die_with_a_killed_supervisor(
    dev: tuple[subprocess.Popen[bytes], dict[str, str]],
) -> None:
    process, env = dev
    children = descendants(process.pid)
    process.kill()
    process.wait()
    assert eventually(lambda: gone(children)), "children outlived kill -9 of persona dev"
    assert eventually(lambda: ports_free(env))


@pytest.mark.parametrize("marker", [" worker", "tansu"])
def test_a_crashed_child_is_restarted_and_the_stack_keeps_working(
    dev: tuple[subprocess.Popen[bytes], dict[str, str]], marker: str
) -> None:
    process, env = dev
    victim = child_running(process.pid, marker)
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    assert eventually(lambda: (child_running(process.pid, marker) or victim) != victim)
    result = subprocess.run(
        [PERSONA, "request", "--brief", "after the crash", "--count", "1", "--wait"],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert process.poll() is None, "persona dev stopped instead of restarting its child"
