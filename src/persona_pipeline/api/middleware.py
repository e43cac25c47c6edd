"""Pure-ASGI middleware: per-route metrics, a correlation id and one access log line.

Written against raw ASGI rather than ``BaseHTTPMiddleware`` because it runs on
every request and the latter costs a task and a queue per request.
"""

import time
import uuid

from loguru import logger
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from persona_pipeline.core.metrics import HttpMetrics

CORRELATION_HEADER = b"x-correlation-id"
MAX_CORRELATION_ID_CHARS = 64
UNMATCHED_ROUTE = "<unmatched>"


def _correlation_id(scope: Scope) -> str:
    """The caller's id if it is sane, else a new one; it flows on into Kafka headers."""
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for name, value in headers:
        if name == CORRELATION_HEADER:
            text = value.decode("latin-1")[:MAX_CORRELATION_ID_CHARS]
            if text.isprintable() and text:
                return text
    return uuid.uuid4().hex


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        correlation_id = _correlation_id(scope)
        scope["state"] = {**scope.get("state", {}), "correlation_id": correlation_id}
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append(
                    (CORRELATION_HEADER, correlation_id.encode("latin-1"))
                )
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._observe(scope, status, time.perf_counter() - started, correlation_id)

    def _observe(self, scope: Scope, status: int, elapsed: float, correlation_id: str) -> None:
        route = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
        method = scope["method"]
        self.metrics.requests.labels(method, route, str(status)).inc()
        self.metrics.duration.labels(method, route).observe(elapsed)
        logger.bind(
            component="http",
            correlation_id=correlation_id,
            route=route,
            status=status,
            latency_ms=round(elapsed * 1000, 2),
        ).debug("{} {}", method, scope["path"])
