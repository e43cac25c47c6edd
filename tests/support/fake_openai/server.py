"""The fake server itself: a Starlette app served by uvicorn in a background thread."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import Counter, deque
from types import TracebackType
from typing import Any, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .chat import answer, api_key, error_response
from .replies import Reply, ReplyRecord, ok
from .strict import strict_schema_problem

CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})


class FakeOpenAI:
    """A fake OpenAI server on ``127.0.0.1`` (free port) in a background thread."""

    def __init__(self, *, latency: float = 0.0, host: str = "127.0.0.1") -> None:
        self.latency = latency
        self.host = host
        self.port: int | None = None
        self._lock = threading.Lock()
        self._script: deque[Reply] = deque()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._in_flight = 0
        self._reset_stats()
        self.app = Starlette(
            routes=[
                Route(
                    "/{path:path}",
                    self._handle,
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                )
            ]
        )

    # -- lifecycle -----------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("FakeOpenAI is not started")
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> Self:
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"fake-openai-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("FakeOpenAI did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
        self.port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    # -- scripting -----------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next chat calls, in order."""
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        """Forget the script, the counters and the recorded requests."""
        with self._lock:
            self._script.clear()
            self._reset_stats()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until no request is in flight (False if ``timeout`` passes first)."""
        deadline = time.monotonic() + timeout
        while self.in_flight:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    # -- observations --------------------------------------------------------

    @property
    def calls(self) -> int:
        """Every HTTP request received, on any path."""
        with self._lock:
            return self._calls

    @property
    def calls_by_path(self) -> dict[str, int]:
        with self._lock:
            return dict(self._calls_by_path)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """The most requests that were being handled at the same time."""
        with self._lock:
            return self._max_in_flight

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The parsed JSON bodies of the chat completion requests, in order."""
        with self._lock:
            return list(self._requests)

    @property
    def request_headers(self) -> list[dict[str, str]]:
        """The headers of the chat completion requests, in order (lower-case names)."""
        with self._lock:
            return list(self._headers)

    @property
    def replies(self) -> list[ReplyRecord]:
        """Every answered chat request, in the order the answers were sent."""
        with self._lock:
            return list(self._replies)

    # -- internals -----------------------------------------------------------

    def _reset_stats(self) -> None:
        self._calls = 0
        self._calls_by_path: Counter[str] = Counter()
        # Requests still running across a reset keep counting towards in_flight.
        self._max_in_flight = self._in_flight
        self._requests: list[dict[str, Any]] = []
        self._headers: list[dict[str, str]] = []
        self._replies: list[ReplyRecord] = []
        self._completions = 0

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        arrived = time.monotonic()
        with self._lock:
            self._calls += 1
            self._calls_by_path[path] += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            if self.latency > 0:
                await asyncio.sleep(self.latency)
            if request.method != "POST" or path.rstrip("/") not in CHAT_PATHS:
                return _not_found(request)
            try:
                body = json.loads(await request.body())
            except ValueError:
                return _invalid("We could not parse the JSON body of your request.")
            if not isinstance(body, dict):
                return _invalid("The request body must be a JSON object.")
            if (problem := strict_schema_problem(body)) is not None:
                return _invalid(problem, "response_format")
            with self._lock:
                self._requests.append(body)
                self._headers.append(dict(request.headers))
                reply = self._script.popleft() if self._script else ok()
                self._completions += 1
                number = self._completions
            if reply.wait_for_calls is not None:
                await self._wait_for_calls(reply.wait_for_calls)
            response = await self._answer(reply, body, request, number)
            record = ReplyRecord(
                number=number,
                arrived=arrived,
                sent=time.monotonic(),
                status_code=response.status_code,
                kind=reply.kind,
                retry_after=reply.retry_after,
            )
            with self._lock:
                self._replies.append(record)
            return response
        finally:
            with self._lock:
                self._in_flight -= 1

    async def _wait_for_calls(self, calls: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._completions >= calls:
                    return
            await asyncio.sleep(0.005)

    async def _answer(
        self, reply: Reply, body: dict[str, Any], request: Request, number: int
    ) -> Response:
        if reply.kind == "delay" and not await _sleep_unless_disconnected(request, reply.seconds):
            return Response(status_code=499)  # nobody is listening any more
        return answer(reply, body, number, key=api_key(request.headers)).response()


def _not_found(request: Request) -> Response:
    message = f"Unknown request URL: {request.method} {request.url.path}."
    return error_response(404, message, "invalid_request_error", None)


def _invalid(message: str, param: str | None = None) -> Response:
    return error_response(400, message, "invalid_request_error", None, param=param)


async def _sleep_unless_disconnected(request: Request, seconds: float) -> bool:
    """Sleep ``seconds``; stop early (returning False) when the client hangs up."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(remaining, 0.02))
        if await request.is_disconnected():
            return False
    return True
