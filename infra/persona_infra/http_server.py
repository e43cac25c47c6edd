"""The HTTP edge of both servers: uvicorn (httptools on uvloop) with bounded sizes and waits.

The API (API_PORT) and the worker's /health, /ready and /metrics (WORKER_PORT) are
served by ``make_server``. Plain uvicorn bounds neither the size of a request head nor
the time a client takes to send it or its body: a few connections sending huge or
endless headers, or stalling, hold memory and connections as long as they like.

- ``LimitedHttpToolsProtocol``, per connection, bounds what only the connection sees:
  a head (request line and headers) over ``max_header_bytes`` gets a 431 without
  being parsed further, and one not complete within ``header_timeout_s`` of the
  connection's start (or of its first byte on a kept-alive connection) a 408. Both
  close the connection, so memory stays at most the limit plus one read per connection.
- ``EdgeLimits``, ASGI around the app, bounds what a request shows: more than
  ``max_headers`` header fields get a 431, and a body that pauses longer than
  ``body_timeout_s`` between chunks a 408 (the API answers it as its own problem
  document); both close the connection.

Refusals are problem documents (RFC 9457) like every other error of the API.
"""

import asyncio
import contextlib
import json
import sys
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal

import uvicorn
from loguru import logger
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from persona_infra.settings import Settings

Header = tuple[bytes, bytes]
REFUSAL_HEADERS: tuple[Header, ...] = (
    (b"content-type", b"application/problem+json"),
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"connection", b"close"),  # the rest of the request is never read
)
CONNECTION_CLOSE: Header = (b"connection", b"close")
# After a refusal the server stops sending and reads on briefly, discarding, before it
# closes: closing with unread data would reset the connection, and a client still
# sending its head would lose the 431 (a "lingering close").
LINGER_S = 2.0
LINGER_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_header_bytes: int
    max_headers: int
    header_timeout_s: float
    body_timeout_s: float

    @classmethod
    def of(cls, settings: Settings) -> "HttpLimits":
        return cls(
            max_header_bytes=settings.http_max_header_bytes,
            max_headers=settings.http_max_headers,
            header_timeout_s=settings.http_header_timeout_s,
            body_timeout_s=settings.http_body_timeout_s,
        )


def refusal(status: int, detail: str) -> tuple[list[Header], bytes]:
    """The headers and problem document of a refused request; the connection then closes."""
    problem = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    body = json.dumps({**problem, "detail": detail}).encode()
    return [*REFUSAL_HEADERS, (b"content-length", str(len(body)).encode())], body


class EdgeConfig(Config):
    """uvicorn's ``Config`` serving ``app`` inside ``EdgeLimits`` with the limited protocol."""

    def __init__(self, app: ASGIApp, limits: HttpLimits, **options: Any) -> None:
        # One protocol per connection: no route speaks WebSocket, and an upgrade would
        # hand the connection to a protocol without these limits.
        super().__init__(
            EdgeLimits(app, limits), http=LimitedHttpToolsProtocol, ws="none", **options
        )
        self.limits = limits


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a byte limit and a deadline on each request head."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not isinstance(config, EdgeConfig):
            raise TypeError("serve with make_server(): this protocol reads an EdgeConfig")
        super().__init__(config, server_state, app_state, _loop)
        self.limits = config.limits
        self._reading_head = True  # from a message's first byte to its end of headers
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False  # nothing more is parsed on this connection
        self._discarded = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()  # a connection that never sends a byte is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feeds the parser at most the head's remaining bytes while a head is read: a
        longer head is refused before httptools buffers it."""
        if self._refused:
            self._discarded += len(data)
            if self._discarded > LINGER_BYTES:
                self.transport.close()
            return
        if not self._reading_head:
            super().data_received(data)
            return
        room = self.limits.max_header_bytes - self._head_bytes
        self._head_bytes += len(data)
        super().data_received(data[:room])
        if self.transport.is_closing():
            return
        if self._reading_head and self._head_bytes > self.limits.max_header_bytes:
            self._refuse(431, f"The request head exceeds {self.limits.max_header_bytes} bytes.")
        elif len(data) > room:
            super().data_received(data[room:])  # the body, or the next request

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head, self._head_bytes = True, 0

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(
                self.limits.header_timeout_s, self._head_timed_out
            )

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            timeout = self.limits.header_timeout_s
            self._refuse(408, f"The request head did not arrive within {timeout:g} s.")

    def _refuse(self, status: int, detail: str) -> None:
        """Answer ``status`` and close (lingering, see ``LINGER_S``). A pipelined head is
        refused after the response in progress instead: its answer must not cut into it."""
        self._refused = True
        self._cancel_head_timer()
        client = ":".join(map(str, self.client)) if self.client else "unknown"
        logger.bind(component="http", client=client, status=status).info(
            "refused a request head: {}", detail
        )
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False
            return
        headers, body = refusal(status, detail)
        lines = [STATUS_LINE[status]]
        for name, value in (*self.server_state.default_headers, *headers):
            lines += [name, b": ", value, b"\r\n"]
        self.transport.write(b"".join([*lines, b"\r\n", body]))
        self.transport.write_eof()  # the client's FIN then closes it (``eof_received``)
        self.loop.call_later(LINGER_S, self.transport.close)


class BodyTimeoutError(HTTPException):
    """Raised from ``receive`` when the next body chunk is late.

    An ``HTTPException``: FastAPI re-raises those while reading a body, so the API
    answers it with its problem handlers; ``EdgeLimits`` answers it otherwise."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(408, f"The request body paused for more than {timeout_s:g} s.")


class EdgeLimits:
    """ASGI: a 431 over ``max_headers`` header fields, a 408 for a body that stalls."""

    def __init__(self, app: ASGIApp, limits: HttpLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if len(scope["headers"]) > self.limits.max_headers:
            await _send_refusal(send, 431, f"More than {self.limits.max_headers} header fields.")
            return
        await self._with_body_deadline(scope, receive, send)

    async def _with_body_deadline(self, scope: Scope, receive: Receive, send: Send) -> None:
        timeout_s = self.limits.body_timeout_s
        body_done = timed_out = started = False

        async def timed_receive() -> Message:
            nonlocal body_done, timed_out
            if body_done:  # then ``receive`` only waits for a disconnect, for as long as it takes
                return await receive()
            try:
                async with asyncio.timeout(timeout_s):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                raise BodyTimeoutError(timeout_s) from None
            body_done = not message.get("more_body", False)
            return message

        async def closing_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if timed_out:  # the rest of the body may still come: do not parse it
                    message = {
                        **message,
                        "headers": [*message.get("headers", ()), CONNECTION_CLOSE],
                    }
            await send(message)

        try:
            await self.app(scope, timed_receive, closing_send)
        except BodyTimeoutError as exc:
            if started:
                raise
            await _send_refusal(send, 408, exc.detail)


async def _send_refusal(send: Send, status: int, detail: str) -> None:
    headers, body = refusal(status, detail)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def make_server(
    app: ASGIApp,
    limits: HttpLimits,
    *,
    host: str,
    port: int,
    graceful_shutdown_s: int | None = None,
    lifespan: Literal["auto", "on", "off"] = "auto",
) -> uvicorn.Server:
    """A uvicorn server for ``app`` with ``limits``; ``run()`` it, or ``await serve()``.

    Logging is the process's (``configure_logging``) and the access log the app's own.
    uvicorn's other defaults hold: ``X-Forwarded-*`` is trusted from FORWARDED_ALLOW_IPS
    (default 127.0.0.1) and an idle kept-alive connection closes after 5 s."""
    config = EdgeConfig(
        app,
        limits,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=graceful_shutdown_s,
        lifespan=lifespan,
    )
    return uvicorn.Server(config)


def run_server(server: uvicorn.Server) -> None:
    """Serve until SIGINT or SIGTERM, as ``uvicorn.run`` would: exit code 3 when the server
    could not start (port taken, lifespan failed)."""
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
