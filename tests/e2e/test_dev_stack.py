"""What a user does first: ``persona dev``, then ``persona request --wait``, then Ctrl-C.

Runs the real console scripts as separate processes on free ports.
"""

import os
import re
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from persona_pipeline.devstack.servers import port_is_open
from tests.support.dev import dev_env, wait_for_banner
from tests.support.processes import PERSONA

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def dev_stack(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = dev_env(tmp_path)
    process = subprocess.Popen(
        [PERSONA, "dev"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_for_banner(process)
        with urllib.request.urlopen(f"http://127.0.0.1:{env['API_PORT']}/ready") as ready:
            assert ready.status == 200
        assert process.stdout is not None
        console = process.stdout.readline().decode().split()  # the banner's next line
        assert console == ["Console", f"http://127.0.0.1:{env['API_PORT']}/ui"]
        with urllib.request.urlopen(console[1]) as page:
            assert b"Persona console" in page.read()
        yield env
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)


def test_dev_stack_serves_a_cli_request_and_stops_cleanly(dev_stack: dict[str, str]) -> None:
    result = subprocess.run(
        [
            PERSONA,
            "request",
            "--brief",
            "urban cyclists in Berlin",
            "--count",
            "5",
            "--wait",
            "--timeout",
            "60",
        ],
        env={**dev_stack, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(set(UUID.findall(result.stdout))) == 6  # the request id and five persona ids

    quick = subprocess.run(
        [PERSONA, "request", "--brief", "no wait", "--count", "2"],
        env=dev_stack,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert quick.returncode == 0
    assert UUID.fullmatch(quick.stdout.strip())


def test_ctrl_c_stops_every_process_and_frees_the_ports(tmp_path: Path) -> None:
    env = dev_env(tmp_path)
    process = subprocess.Popen(
        [PERSONA, "dev"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for_banner(process)
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    process.communicate(timeout=60)
    assert process.returncode == 0
    for name in ("DEV_KAFKA_PORT", "DEV_MONGODB_PORT", "API_PORT", "WORKER_PORT"):
        assert not port_is_open(int(env[name])), f"{name} still listening"


def test_a_taken_port_is_named_with_the_setting_to_change(tmp_path: Path) -> None:
    env = dev_env(tmp_path)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", int(env["API_PORT"])))
        blocker.listen()
        result = subprocess.run(
            [PERSONA, "dev"], env=env, capture_output=True, text=True, timeout=30, check=False
        )
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert f"port {env['API_PORT']}" in message
    assert "API_PORT=" in message
