"""Keep a set of child processes running: restart what crashes, stop all of it in order.

``Child`` is one supervised process with its restart policy: when it exits it is
started again after a backoff (0.5 s doubling to 10 s, back to 0.5 s once it has stayed
up for a minute), and ``after_start`` runs after every start (the broker gets its
topics back). A child that keeps crashing (``MAX_QUICK_RESTARTS`` times without
staying up a minute) makes the supervisor give up with a reason, rather than loop.

Every child is started *tethered* (``devstack.tether``): it receives SIGTERM when the
supervisor dies, even on ``kill -9``, so nothing outlives ``persona dev``.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 10.0
STABLE_AFTER_S = 60.0
MAX_QUICK_RESTARTS = 8


class Running(Protocol):
    """A started process: whether it still runs, and how to stop it."""

    def exited(self) -> int | None:
        """Its exit code once it has exited, else None."""
        ...

    def stop(self) -> None: ...


class GaveUpError(RuntimeError):
    """A child crashed too often in a row; the message says which and how it ended."""


Say = Callable[[str], None]


@dataclass
class Child:
    name: str
    start: Callable[[], Running]
    after_start: Callable[[], None] = lambda: None
    clock: Callable[[], float] = time.monotonic
    running: Running | None = None
    started_at: float = 0.0
    backoff_s: float = FIRST_BACKOFF_S
    quick_restarts: int = 0
    restart_at: float | None = field(default=None)

    def launch(self) -> None:
        self.running = self.start()
        self.started_at = self.clock()
        self.restart_at = None
        self.after_start()

    def tend(self, say: Say) -> None:
        """Notice an exit and schedule a restart; restart when its backoff has passed."""
        now = self.clock()
        if self.restart_at is None:
            code = self.running.exited() if self.running is not None else -1
            if code is None:
                return
            self._schedule(code, now, say)
        if self.restart_at is not None and now >= self.restart_at:
            say(f"restarting {self.name}")
            try:
                self.launch()
            except Exception as exc:  # e.g. its port not released yet: try again later
                self.stop()
                self.running = None
                say(f"{self.name} did not start again: {exc}")
                self._schedule(-1, now, say)

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()

    def _schedule(self, code: int, now: float, say: Say) -> None:
        if now - self.started_at >= STABLE_AFTER_S:
            self.backoff_s, self.quick_restarts = FIRST_BACKOFF_S, 0
        self.quick_restarts += 1
        if self.quick_restarts > MAX_QUICK_RESTARTS:
            raise GaveUpError(
                f"{self.name} exited with code {code} {self.quick_restarts} times in a row "
                "within a minute of starting; giving up (see its log)"
            )
        say(f"{self.name} exited with code {code}; restarting it in {self.backoff_s:.1f}s")
        self.restart_at = now + self.backoff_s
        self.backoff_s = min(self.backoff_s * 2, MAX_BACKOFF_S)
