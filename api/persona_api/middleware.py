"""Pure-ASGI middleware: observability, security headers, CORS and the body size limit.

Written against raw ASGI rather than ``BaseHTTPMiddleware`` because it runs on
every request and the latter costs a task and a queue per request.

- ``ObservabilityMiddleware``: per-route metrics, a correlation id, one access log line.
- ``SecurityHeadersMiddleware``: nosniff, frame and referrer policies, a CSP (a strict
  one for JSON; the HTML pages' own for them: ``persona_api.docs_pages``,
  ``persona_api.console``), HSTS in production, ``no-store`` on errors.
- ``ProblemCORSMiddleware``: Starlette's CORS, answering a refused preflight with a problem.
- ``BodySizeLimitMiddleware``: 413 for a body over the limit, by ``Content-Length`` before
  reading it, and while reading a body without one (chunked).
"""

import re
import time
from collections.abc import Mapping
from http import HTTPStatus

from loguru import logger
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from persona_api.metrics import HttpMetrics
from persona_api.problems import PROBLEM_JSON, Problem
from persona_infra import correlation

CORRELATION_HEADER = correlation.HEADER.encode()
UNMATCHED_ROUTE = "<unmatched>"


def _correlation_id(scope: Scope) -> str:
    """The caller's id if it is sane, else a new one; it flows on into Kafka headers."""
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for name, value in headers:
        if name == CORRELATION_HEADER:
            return correlation.sanitize(value.decode("latin-1")) or correlation.new_id()
    return correlation.new_id()


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
            with correlation.correlated(correlation_id):
                await self.app(scope, receive, send_with_id)
        finally:
            self._observe(scope, status, time.perf_counter() - started, correlation_id)

    def _observe(self, scope: Scope, status: int, elapsed: float, correlation_id: str) -> None:
        route = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
        method = scope["method"]
        self.metrics.requests.labels(method, route, str(status)).inc()
        self.metrics.duration.labels(method, route).observe(elapsed)
        # The name of the caller's API key, set by the auth dependencies; never the key.
        api_key = scope.get("state", {}).get("api_key")
        logger.bind(
            component="http",
            correlation_id=correlation_id,
            route=route,
            status=status,
            latency_ms=round(elapsed * 1000, 2),
            **({"api_key": api_key} if api_key else {}),
        ).info("{} {}", method, scope["path"])


def _problem_body(status: int, detail: str, instance: str | None = None) -> bytes:
    title = HTTPStatus(status).phrase
    problem = Problem(status=status, title=title, detail=detail, instance=instance)
    return problem.model_dump_json(exclude_none=True).encode()


# For JSON: nothing may load, nothing may frame it.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HSTS = "max-age=63072000; includeSubDomains"
PUBLIC_DIRECTIVE = re.compile(r"\bpublic\b", re.IGNORECASE)


class SecurityHeadersMiddleware:
    """Adds the security headers to every response.

    ``page_csps`` maps the paths of HTML pages to their own CSP; every other response
    gets ``API_CSP``. With ``private_caching`` (reads need a key), ``Cache-Control: public``
    becomes ``private``: a shared cache must not hand a key-protected response to anyone."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        hsts: bool,
        page_csps: Mapping[str, str],
        private_caching: bool = False,
    ) -> None:
        self.app = app
        self.page_csps = dict(page_csps)
        self.private_caching = private_caching
        self.common = {
            "x-content-type-options": "nosniff",
            "x-frame-options": "DENY",
            "referrer-policy": "no-referrer",
            **({"strict-transport-security": HSTS} if hsts else {}),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"].removeprefix(scope.get("root_path", "")) or "/"
        csp = self.page_csps.get(path, API_CSP)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.common.items():
                    headers.setdefault(name, value)
                headers.setdefault("content-security-policy", csp)
                if message["status"] >= 400:
                    headers["cache-control"] = "no-store"
                elif self.private_caching and (cache := headers.get("cache-control")):
                    headers["cache-control"] = PUBLIC_DIRECTIVE.sub("private", cache)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS middleware, whose refused preflight is a problem document."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        refused = bytes(response.body).decode().removeprefix("Disallowed CORS ")
        headers = {
            k: v for k, v in response.headers.items() if k not in {"content-length", "content-type"}
        }
        return Response(
            _problem_body(400, f"CORS preflight refused: {refused} not allowed."),
            status_code=400,
            media_type=PROBLEM_JSON,
            headers=headers,
        )


class BodyTooLargeError(HTTPException):
    """Raised from ``receive`` once a body passes the limit.

    An ``HTTPException``: FastAPI re-raises those while reading a body (others become a
    400), so the problem handlers answer it; the middleware answers it otherwise."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body exceeds the limit of {limit} bytes.")


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, send)  # before a byte of the body is read
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLargeError:
            if started:
                raise
            await self._reject(scope, send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        body = _problem_body(413, BodyTooLargeError(self.max_bytes).detail, scope["path"])
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                    # The unread body is not drained: the connection cannot be reused.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
