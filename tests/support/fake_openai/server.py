"""The fake server itself: routing, counters and the chat completion endpoint."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections import Counter, deque
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from .batch_api import FilesAndBatches
from .batches import BatchStore
from .chat import (
    answer,
    api_key,
    capacity_answer,
    error_body,
    error_response,
    estimated_prompt_tokens,
    request_problem,
)
from .prompt_cache import PromptCache, prompt_text
from .replies import Reply, ReplyRecord, ok
from .serving import ServedInThread

CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
AZURE_CHAT_PATH = re.compile(r"/openai/deployments/[^/]+/chat/completions")
"""Where ``AsyncAzureOpenAI`` posts chat calls (the deployment named in the path)."""
BATCH_NUMBERS = 100_000
"""Batch lines are answered as personas 100001, 100002, ... so their bios differ from
those of chat calls (a persona's number picks its name and anecdote)."""
TOKEN_LIMIT_MESSAGE = (
    "Enqueued token limit reached for this model in your organization. "
    "Please try again once some in_progress batches have been completed."
)


class FakeOpenAI(ServedInThread):
    """A fake OpenAI server on ``127.0.0.1`` (free port) in a background thread.

    ``capacity`` caps the chat requests handled at once (``None``: no cap); one
    arriving over it is answered 429 at once, with ``Retry-After`` only when
    ``capacity_retry_after`` is given, like a server that sheds load.
    ``json_object_only`` refuses ``json_schema`` response formats (400), like an
    OpenAI-compatible server without strict structured outputs.
    ``prompt_cache_min_tokens`` turns on prompt caching (OpenAI's minimum is 1024):
    usage then reports ``prompt_tokens_details.cached_tokens``.
    ``batch_step_s`` is how long each state of a batch lasts.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        capacity: int | None = None,
        capacity_retry_after: float | None = None,
        json_object_only: bool = False,
        prompt_cache_min_tokens: int | None = None,
        batch_step_s: float = 0.1,
    ) -> None:
        super().__init__(host)
        if capacity is not None and capacity < 1:
            raise ValueError("capacity must be at least 1 (or None for no cap)")
        self.latency = latency
        self.capacity = capacity
        self.capacity_retry_after = capacity_retry_after
        self.json_object_only = json_object_only
        self._cache: PromptCache | None = None
        if prompt_cache_min_tokens is not None:
            self._cache = PromptCache(prompt_cache_min_tokens)
        self._lock = threading.RLock()
        self._script: deque[Reply] = deque()
        self._in_flight = 0
        self._busy = 0
        self._reset_stats()
        self._batch_script: deque[Reply] = deque()
        self._store = BatchStore(batch_step_s, self._answer_batch_line)
        self._files_and_batches = FilesAndBatches(self._store, self._lock)
        self._reset_batches()
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=methods)])

    @property
    def azure_endpoint(self) -> str:
        """The ``azure_endpoint`` for ``AsyncAzureOpenAI`` (no ``/v1``: Azure paths differ)."""
        return self.base_url.removesuffix("/v1")

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
            self._reset_batches()
            if self._cache is not None:
                self._cache.clear()

    def script_batch(self, *replies: Reply) -> None:
        """Queue replies for the next batch lines answered, one a line in file order.

        Batch lines never consume the chat ``script``, nor chat calls this one.
        """
        with self._lock:
            self._batch_script.extend(replies)

    def hold_batches(self) -> None:
        """Keep every batch, new and existing, in ``in_progress`` (no line answered)."""
        with self._lock:
            self._store.hold(time.monotonic())

    def release_batches(self) -> None:
        """Let held batches go on: ``in_progress`` ends now, or a step after it began."""
        with self._lock:
            self._store.release(time.monotonic())

    def expire_next_batch(self, *, answered: int = 0) -> None:
        """The next batch created answers its first ``answered`` lines, then ends ``expired``."""
        with self._lock:
            self._store.next_expire = answered

    def fail_next_batch(
        self, message: str = TOKEN_LIMIT_MESSAGE, *, code: str = "token_limit_exceeded"
    ) -> None:
        """The next batch created ends ``failed`` at validation, with this error."""
        with self._lock:
            self._store.next_failure = (code, message)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until no request (on any path) is running (False if ``timeout`` passes first)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if not self._busy:
                    return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)

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
        """Chat requests being handled now (capacity rejections never count)."""
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """The most chat requests that were being handled at the same time."""
        with self._lock:
            return self._max_in_flight

    @property
    def rejected_for_capacity(self) -> int:
        """Chat requests answered 429 because ``capacity`` requests were in flight."""
        with self._lock:
            return self._rejected_for_capacity

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
    def request_queries(self) -> list[dict[str, str]]:
        """The query parameters of the chat completion requests, in order (Azure's api-version)."""
        with self._lock:
            return list(self._queries)

    @property
    def request_paths(self) -> list[str]:
        """The URL paths of the chat completion requests, in order."""
        with self._lock:
            return list(self._paths)

    @property
    def batches(self) -> list[dict[str, Any]]:
        """Every batch (a ``Batch`` object in its current state), in creation order."""
        with self._lock:
            return self._store.all(time.monotonic())

    @property
    def batches_created(self) -> int:
        with self._lock:
            return self._store.created

    @property
    def batch_requests(self) -> list[dict[str, Any]]:
        """The bodies of the batch lines answered, in the order they were answered.

        Like ``requests``, only those that passed the request checks.
        """
        with self._lock:
            return list(self._batch_requests)

    def batch_lines(self, batch_id: str) -> list[dict[str, Any]]:
        """The input lines of a batch (those that parse as JSON objects), in file order.

        Raises ``KeyError`` for an unknown ``batch_id``.
        """
        with self._lock:
            if batch_id not in self._store.jobs:
                raise KeyError(batch_id)
            return self._store.input_lines(batch_id)

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
        self._rejected_for_capacity = 0
        self._requests: list[dict[str, Any]] = []
        self._headers: list[dict[str, str]] = []
        self._queries: list[dict[str, str]] = []
        self._paths: list[str] = []
        self._replies: list[ReplyRecord] = []
        self._completions = 0

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        with self._lock:
            self._calls += 1
            self._calls_by_path[path] += 1
            self._busy += 1
        try:
            return await self._route(request)
        finally:
            with self._lock:
                self._busy -= 1

    def _reset_batches(self) -> None:
        self._batch_script.clear()
        self._batch_requests: list[dict[str, Any]] = []
        self._batch_answers = 0
        self._store.reset()

    async def _route(self, request: Request) -> Response:
        path = request.url.path.rstrip("/")
        if request.method == "POST" and path in CHAT_PATHS:
            return await self._chat(request)
        if request.method == "POST" and AZURE_CHAT_PATH.fullmatch(path):
            if "api-version" not in request.query_params:
                return _invalid("Missing required query parameter: api-version", "api-version")
            return await self._chat(request)
        if (response := await self._files_and_batches.route(request)) is not None:
            return response
        return _not_found(request)

    async def _chat(self, request: Request) -> Response:
        """A chat call: admitted under ``capacity``, then delayed by ``latency`` and answered."""
        arrived = time.monotonic()
        if not self._admit():
            return await self._reject_for_capacity(request, arrived)
        try:
            if self.latency > 0:
                await asyncio.sleep(self.latency)
            return await self._chat_admitted(request, arrived)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _admit(self) -> bool:
        """Count a chat request in flight, unless ``capacity`` are already (checked atomically)."""
        with self._lock:
            if self.capacity is not None and self._in_flight >= self.capacity:
                self._rejected_for_capacity += 1
                return False
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            return True

    async def _reject_for_capacity(self, request: Request, arrived: float) -> Response:
        await request.body()  # read it, so the connection stays usable for the next call
        with self._lock:
            self._completions += 1
            number = self._completions
        response = capacity_answer(self.capacity_retry_after).response()
        self._record(number, arrived, response.status_code, "capacity", self.capacity_retry_after)
        return response

    async def _chat_admitted(self, request: Request, arrived: float) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _invalid("We could not parse the JSON body of your request.")
        except ClientDisconnect:  # the client died mid-request (a kill -9 in a drill)
            return Response(status_code=499)
        if not isinstance(body, dict):
            return _invalid("The request body must be a JSON object.")
        if problem := request_problem(body, json_object_only=self.json_object_only):
            return _invalid(*problem)
        with self._lock:
            self._requests.append(body)
            self._headers.append(dict(request.headers))
            self._queries.append(dict(request.query_params))
            self._paths.append(request.url.path)
            reply = self._script.popleft() if self._script else ok()
            self._completions += 1
            number = self._completions
        if reply.wait_for_calls is not None:
            await self._wait_for_calls(reply.wait_for_calls)
        response = await self._answer(reply, body, request, number)
        self._record(number, arrived, response.status_code, reply.kind, reply.retry_after)
        return response

    def _record(
        self, number: int, arrived: float, status_code: int, kind: str, retry_after: float | None
    ) -> None:
        sent = time.monotonic()
        record = ReplyRecord(number, arrived, sent, status_code, kind, retry_after)
        with self._lock:
            self._replies.append(record)

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
        cached = self._cached_tokens(reply, body)
        key = api_key(request.headers)
        return answer(reply, body, number, key=key, cached_tokens=cached).response()

    def _answer_batch_line(self, body: dict[str, Any], key: str) -> tuple[int, dict[str, Any]]:
        """One batch line, answered as a chat call would be (called under the lock)."""
        if problem := request_problem(body, json_object_only=self.json_object_only):
            message, param = problem
            return 400, error_body(message, "invalid_request_error", None, param)
        self._batch_requests.append(body)
        reply = self._batch_script.popleft() if self._batch_script else ok()
        self._batch_answers += 1
        result = answer(
            reply,
            body,
            BATCH_NUMBERS + self._batch_answers,
            key=key,
            cached_tokens=self._cached_tokens(reply, body),
            completion_id=f"chatcmpl-fake-batch-{self._batch_answers}",
        )
        return result.status_code, result.body

    def _cached_tokens(self, reply: Reply, body: dict[str, Any]) -> int | None:
        """The cached tokens of a prompt about to be run (``None`` with caching off).

        Only prompts that run (not scripted errors) enter the cache, as at OpenAI.
        """
        if self._cache is None or reply.kind == "status":
            return None
        prompt_tokens = reply.prompt_tokens
        if prompt_tokens is None:
            prompt_tokens = estimated_prompt_tokens(body)
        with self._lock:
            return self._cache.cached_tokens(prompt_text(body), prompt_tokens)


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
