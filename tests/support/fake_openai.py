"""A fake OpenAI-compatible Chat Completions server for tests and benchmarks.

The real ``openai`` SDK talks to it over real HTTP (the SDK's transport cannot be
mocked in-process), so retries, ``Retry-After``, timeouts and connection pooling
are exercised exactly as in production.

Usage::

    with FakeOpenAI() as fake:                      # or fake.start() / fake.stop()
        fake.script(status(429, retry_after=0.5), ok())
        client = AsyncOpenAI(base_url=fake.base_url, api_key="test-key")
        ...
        assert fake.calls == 2

``POST /v1/chat/completions`` answers with a completion whose content is a
persona-shaped JSON object that fits the requested ``response_format`` schema
and echoes the skeleton's city and occupation from the prompt. Scripted replies
(``ok``, ``status``, ``malformed``, ``refusal``, ``truncated``, ``delay``) are
consumed one per chat call, in order; once the script is empty every call is
answered ``ok``. ``latency`` delays every call (for benchmarks). A reply built
with ``wait_for_calls=n`` is held until ``n`` chat requests have arrived, so a
test can make a whole wave of concurrent calls arrive before any is answered.
Counters, recorded requests and ``replies`` (when each answer was sent, with its
status and ``Retry-After``) are safe to read from any thread; timestamps use
``time.monotonic()``.

A strict ``json_schema`` response format is checked as OpenAI checks it, before
any scripted reply is used: a keyword outside the subset strict mode documents
(anywhere in the schema, ``$defs`` included), an object without
``additionalProperties: false`` or one whose ``required`` misses a property is
answered 400 with OpenAI's ``Invalid schema for response_format`` error
(``strict_schema_problem``); such a request counts in ``calls`` but is not
recorded in ``requests``. So a schema that OpenAI would refuse (and llama.cpp could
not turn into a grammar) cannot pass in tests.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Literal, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ReplyKind = Literal["ok", "status", "malformed", "refusal", "truncated", "delay"]

CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})

_NAMES = ("Alex Rivera", "Sam Okafor", "Noa Lindqvist", "Priya Raman", "Mateo Silva", "Jun Park")

_DEFAULT_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided: {key}.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to sample from this model.", "invalid_request_error", None),
    404: (
        "The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    408: ("Request timed out.", "timeout", None),
    429: ("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
}
_SERVER_ERROR = ("The server had an error while processing your request.", "server_error", None)

# The JSON Schema keywords OpenAI documents for strict Structured Outputs. Spelled
# out here rather than imported from the client: the fake stands for the server, so
# a mistake in the client's list must show up as a rejected request.
_STRICT_KEYWORDS = frozenset(
    {
        *("type", "properties", "required", "additionalProperties", "items", "enum", "const"),
        *("anyOf", "$ref", "$defs", "definitions", "description", "title"),
        *("pattern", "format"),
        *("multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum"),
        *("minItems", "maxItems"),
    }
)


@dataclass(frozen=True, slots=True)
class ReplyRecord:
    """One answered chat request: when it arrived and was answered, and how."""

    number: int
    """1-based order of arrival among chat requests."""
    arrived: float
    sent: float
    """``time.monotonic()`` just before the response was handed to the server."""
    status_code: int
    kind: str
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer; build it with ``ok()``, ``status()``, ``malformed()``, ..."""

    kind: ReplyKind
    status_code: int = 200
    retry_after: float | None = None
    message: str | None = None
    error_code: str | None = None
    seconds: float = 0.0
    content: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    wait_for_calls: int | None = None

    def held(self, calls: int) -> Reply:
        """This reply, answered only once ``calls`` chat requests have arrived (5 s at most)."""
        return replace(self, wait_for_calls=calls)


def ok(
    *,
    content: dict[str, Any] | str | None = None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
) -> Reply:
    """A successful completion; ``content`` overrides the generated persona JSON."""
    text = json.dumps(content) if isinstance(content, dict) else content
    return Reply(
        "ok", content=text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
    )


def status(
    code: int,
    *,
    retry_after: float | None = None,
    message: str | None = None,
    error_code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """An HTTP error with an OpenAI-style error body (and ``Retry-After`` in seconds).

    ``headers`` are added to the response (e.g. ``retry-after-ms`` or an HTTP-date
    ``retry-after``, which then replaces the one ``retry_after`` would set).
    """
    return Reply(
        "status",
        status_code=code,
        retry_after=retry_after,
        message=message,
        error_code=error_code,
        headers=tuple((headers or {}).items()),
    )


def malformed(
    kind: Literal["json", "fields"] = "json",
    *,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
) -> Reply:
    """A 200 whose content is not JSON (``json``) or lacks required fields (``fields``)."""
    if kind == "json":
        content = '{"name": "Alex Rivera", "bio": "Lives in'
    else:
        content = json.dumps({"name": "Alex Rivera"})
    return Reply(
        "malformed",
        content=content,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )


def refusal(text: str = "I'm sorry, but I can't help with that request.") -> Reply:
    """A 200 whose message is a refusal instead of content."""
    return Reply("refusal", message=text)


def truncated() -> Reply:
    """A 200 cut off at the token limit (``finish_reason="length"``)."""
    return Reply("truncated", content='{"name": "Alex Rivera", "bio": "')


def delay(seconds: float) -> Reply:
    """Wait ``seconds`` before answering ``ok`` (use it to trigger client timeouts)."""
    return Reply("delay", seconds=seconds)


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
                return _error(404, f"Unknown request URL: {request.method} {path}.", None, None)
            try:
                body = json.loads(await request.body())
            except ValueError:
                return _error(400, "We could not parse the JSON body of your request.", None, None)
            if not isinstance(body, dict):
                return _error(400, "The request body must be a JSON object.", None, None)
            if (problem := strict_schema_problem(body)) is not None:
                return _error(400, problem, "invalid_request_error", None, param="response_format")
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
        if reply.kind == "status":
            return _status_reply(reply, body, request)
        if reply.kind == "delay" and not await _sleep_unless_disconnected(request, reply.seconds):
            return Response(status_code=499)  # nobody is listening any more
        if reply.kind == "refusal":
            return JSONResponse(
                _completion(body, number, content=None, refusal=reply.message, finish="stop")
            )
        content = reply.content
        if content is None:
            content = json.dumps(persona_for(body, number))
        finish = "length" if reply.kind == "truncated" else "stop"
        return JSONResponse(
            _completion(
                body,
                number,
                content=content,
                refusal=None,
                finish=finish,
                prompt_tokens=reply.prompt_tokens,
                completion_tokens=reply.completion_tokens,
            )
        )


async def _sleep_unless_disconnected(request: Request, seconds: float) -> bool:
    """Sleep ``seconds``; stop early (returning False) when the client hangs up."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(remaining, 0.02))
        if await request.is_disconnected():
            return False
    return True


# -- response bodies -----------------------------------------------------------


def _error(
    code: int,
    message: str,
    type_: str | None,
    error_code: str | None,
    headers: dict[str, str] | None = None,
    *,
    param: str | None = None,
) -> JSONResponse:
    error = {"message": message, "type": type_, "param": param, "code": error_code}
    return JSONResponse({"error": error}, status_code=code, headers=headers)


def _status_reply(reply: Reply, body: dict[str, Any], request: Request) -> JSONResponse:
    template, type_, default_code = _DEFAULT_ERRORS.get(reply.status_code, _SERVER_ERROR)
    if reply.status_code < 500 and reply.status_code not in _DEFAULT_ERRORS:
        template, type_, default_code = _DEFAULT_ERRORS[400]
    key = request.headers.get("authorization", "").removeprefix("Bearer ")
    # Like a careless proxy, echo the key in a 401: callers must not pass it on.
    message = reply.message or template.format(key=key, model=body.get("model", ""))
    headers = {"x-request-id": f"req_fake_{time.monotonic_ns()}"}
    if reply.retry_after is not None:
        headers["retry-after"] = f"{reply.retry_after:g}"
    headers.update(reply.headers)
    return _error(reply.status_code, message, type_, reply.error_code or default_code, headers)


def strict_schema_problem(body: dict[str, Any]) -> str | None:
    """OpenAI's error message for the strict ``response_format`` schema of ``body``, if any.

    ``None`` when the schema is acceptable or the request asks for no strict schema.
    """
    response_format = body.get("response_format")
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    json_schema = response_format.get("json_schema")
    if not isinstance(json_schema, dict) or json_schema.get("strict") is not True:
        return None
    problem = _schema_problem(json_schema.get("schema"), ())
    if problem is None:
        return None
    return f"Invalid schema for response_format '{json_schema.get('name')}': {problem}"


def _schema_problem(schema: Any, context: tuple[str, ...]) -> str | None:
    """What strict mode rejects in ``schema`` (found at ``context``) or in its subschemas."""
    if not isinstance(schema, dict):
        return None  # a boolean schema, e.g. ``additionalProperties: false``
    problem = _keyword_problem(schema) or _object_problem(schema)
    if problem is not None:
        return f"In context={context!r}, {problem}"
    for subschema, path in _subschemas(schema, context):
        if (problem := _schema_problem(subschema, path)) is not None:
            return problem
    return None


def _keyword_problem(schema: dict[str, Any]) -> str | None:
    for keyword in schema:
        if keyword not in _STRICT_KEYWORDS:
            return f"'{keyword}' is not permitted."
    return None


def _object_problem(schema: dict[str, Any]) -> str | None:
    """Strict mode's rules for objects: closed, and every property required."""
    kind = schema.get("type")
    if kind != "object" and not (isinstance(kind, list) and "object" in kind):
        return None
    if schema.get("additionalProperties") is not False:
        return "'additionalProperties' is required to be supplied and to be false."
    required = schema.get("required") or []
    missing = [name for name in schema.get("properties") or {} if name not in required]
    if missing:
        return (
            "'required' is required to be supplied and to be an array including every key "
            f"in properties. Missing '{missing[0]}'."
        )
    return None


def _subschemas(
    schema: dict[str, Any], context: tuple[str, ...]
) -> list[tuple[Any, tuple[str, ...]]]:
    """The schemas nested in ``schema``, each with its context."""
    nested: list[tuple[Any, tuple[str, ...]]] = []
    for keyword in ("properties", "$defs", "definitions"):
        for name, subschema in (schema.get(keyword) or {}).items():
            nested.append((subschema, (*context, keyword, name)))
    for index, subschema in enumerate(schema.get("anyOf") or []):
        nested.append((subschema, (*context, "anyOf", str(index))))
    for keyword in ("items", "additionalProperties"):
        if keyword in schema:
            nested.append((schema[keyword], (*context, keyword)))
    return nested


def _completion(
    body: dict[str, Any],
    number: int,
    *,
    content: str | None,
    refusal: str | None,
    finish: str,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
) -> dict[str, Any]:
    if prompt_tokens is None:
        prompt_tokens = max(1, sum(len(text) for text in _message_texts(body)) // 4)
    if completion_tokens is None:
        completion_tokens = max(1, len(content or refusal or "") // 4)
    return {
        "id": f"chatcmpl-fake-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(body.get("model", "fake-model")),
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": refusal,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _message_texts(body: dict[str, Any], role: str | None = None) -> list[str]:
    texts: list[str] = []
    for message in body.get("messages") or []:
        if not isinstance(message, dict) or (role and message.get("role") != role):
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(
                part["text"]
                for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            )
    return texts


def _prompt_field(prompt: str, label: str) -> str | None:
    match = re.search(rf"(?im)^\W*{label}\s*:\s*(.+?)\s*$", prompt)
    return match.group(1) if match else None


_OPENERS = (
    "Weekdays are tightly scheduled",
    "Mornings start before sunrise",
    "Evenings go to a long-running side project",
    "Weekends belong to family visits",
    "Most errands happen on a bicycle",
    "A second language is slowly improving",
    "A small balcony garden takes more time than planned",
    "Volunteering at the library fills Saturdays",
)
_CLOSERS = (
    "so anything new has to earn its place quickly",
    "and budgets are checked twice before any purchase",
    "which makes reliable apps matter more than fancy ones",
    "so recommendations from friends carry real weight",
    "and privacy settings are always read carefully",
    "so long phone calls are avoided whenever possible",
    "which leaves little patience for slow websites",
    "and every subscription gets reviewed each quarter",
)


def _anecdote(number: int) -> str:
    """Vary bios between calls, as a real model would (near-duplicate checks see them)."""
    rng = random.Random(number)
    return f"{rng.choice(_OPENERS)}, {rng.choice(_CLOSERS)}. Call {number} of the day."


def persona_for(body: dict[str, Any], number: int = 1) -> dict[str, Any]:
    """A persona-shaped answer to ``body`` that fits its ``response_format`` schema.

    The city (from a ``Location: City, Country`` or ``City:`` line) and the
    occupation (``Occupation:``) of the prompt are echoed in the bio and tags.
    """
    prompt = "\n".join(_message_texts(body, "user"))
    location = _prompt_field(prompt, "Location") or _prompt_field(prompt, "City") or "Springfield"
    city = location.split(",")[0].strip()[:60] or "Springfield"
    occupation = (_prompt_field(prompt, "Occupation") or "analyst")[:60]
    name = _NAMES[(number - 1) % len(_NAMES)]
    persona: dict[str, Any] = {
        "name": name,
        "bio": f"{name} lives in {city} and works as {occupation}. {_anecdote(number)}",
        "interests": ["cycling", "cooking", "local history"],
        "goals": [
            "Spend less time on routine admin each week.",
            "Find tools that work well on a phone.",
        ],
        "pain_points": [
            "Sign-up flows that ask for too much information.",
            "Pricing that changes without notice.",
        ],
        "tags": [city.lower(), occupation.lower(), "busy"],
    }
    schema = _response_schema(body)
    properties = schema.get("properties") if schema else None
    if not isinstance(properties, dict):
        return persona
    return {
        key: persona[key] if key in persona else _example(prop) for key, prop in properties.items()
    }


def _response_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    response_format = body.get("response_format")
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    schema = (response_format.get("json_schema") or {}).get("schema")
    return schema if isinstance(schema, dict) else None


def _example(schema: Any) -> Any:
    """A minimal value that satisfies a (strict-mode) JSON schema fragment."""
    if not isinstance(schema, dict):
        return None
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return _example(schema["anyOf"][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0]
    if kind == "string":
        return "example"
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return float(schema.get("minimum", 0))
    if kind == "boolean":
        return False
    if kind == "array":
        return [_example(schema.get("items"))] * int(schema.get("minItems", 0))
    if kind == "object":
        props = schema.get("properties") or {}
        return {key: _example(prop) for key, prop in props.items()}
    return None
