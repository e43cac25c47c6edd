"""Chat completion bodies and OpenAI-style errors, shared by every path that answers chat."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse

from .persona import message_texts, persona_for
from .replies import Reply
from .strict import strict_schema_problem

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


@dataclass(frozen=True, slots=True)
class Answer:
    """A chat answer as data, so HTTP calls and batch lines are answered alike."""

    status_code: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status_code, headers=self.headers)


def error_body(
    message: str, type_: str | None, error_code: str | None, param: str | None = None
) -> dict[str, Any]:
    """OpenAI's error envelope."""
    return {"error": {"message": message, "type": type_, "param": param, "code": error_code}}


def error_response(
    code: int,
    message: str,
    type_: str | None,
    error_code: str | None,
    headers: dict[str, str] | None = None,
    *,
    param: str | None = None,
) -> JSONResponse:
    body = error_body(message, type_, error_code, param)
    return JSONResponse(body, status_code=code, headers=headers)


def api_key(headers: Mapping[str, str]) -> str:
    """The key a request was sent with (OpenAI's bearer token or Azure's ``api-key``)."""
    bearer = headers.get("authorization", "").removeprefix("Bearer ")
    return bearer or headers.get("api-key", "")


JSON_OBJECT_NEEDS_JSON = (
    "'messages' must contain the word 'json' in some form, to use 'response_format' "
    "of type 'json_object'."
)
JSON_SCHEMA_UNSUPPORTED = "response_format of type json_schema is not supported by this server"


def request_problem(body: dict[str, Any], *, json_object_only: bool) -> tuple[str, str] | None:
    """Why the server refuses the chat request ``body`` (message, param), checked before
    any scripted reply, as OpenAI checks a request before running it; ``None`` if fine.

    ``json_object_only`` plays a server without strict structured outputs.
    """
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_schema" and json_object_only:
        return JSON_SCHEMA_UNSUPPORTED, "response_format"
    if (problem := strict_schema_problem(body)) is not None:
        return problem, "response_format"
    if kind == "json_object" and not any("json" in t.lower() for t in message_texts(body)):
        return JSON_OBJECT_NEEDS_JSON, "messages"
    return None


def answer(
    reply: Reply,
    body: dict[str, Any],
    number: int,
    *,
    key: str = "",
    cached_tokens: int | None = None,
    completion_id: str | None = None,
) -> Answer:
    """What ``reply`` sends for the chat request ``body`` (the ``number``-th one).

    ``cached_tokens`` (when prompt caching is on) goes into ``prompt_tokens_details``.
    """
    if reply.kind == "status":
        return status_answer(reply, body, key)
    if reply.kind == "refusal":
        refused = completion(
            body,
            number,
            content=None,
            refusal=reply.message,
            finish="stop",
            cached_tokens=cached_tokens,
            completion_id=completion_id,
        )
        return Answer(200, refused)
    content = reply.content
    if content is None:
        content = json.dumps(persona_for(body, number))
    finish = "length" if reply.kind == "truncated" else "stop"
    completed = completion(
        body,
        number,
        content=content,
        refusal=None,
        finish=finish,
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
        cached_tokens=cached_tokens,
        completion_id=completion_id,
    )
    return Answer(200, completed)


def capacity_answer(retry_after: float | None) -> Answer:
    """The 429 of a server that has no room for another request right now."""
    headers = {"x-request-id": f"req_fake_{time.monotonic_ns()}"}
    if retry_after is not None:
        headers["retry-after"] = f"{retry_after:g}"
    message = "Rate limit reached: too many requests in flight. Retry when one has finished."
    return Answer(429, error_body(message, "requests", "rate_limit_exceeded"), headers)


def status_answer(reply: Reply, body: dict[str, Any], key: str) -> Answer:
    """A scripted HTTP error, with the message OpenAI sends for that status."""
    template, type_, default_code = _DEFAULT_ERRORS.get(reply.status_code, _SERVER_ERROR)
    if reply.status_code < 500 and reply.status_code not in _DEFAULT_ERRORS:
        template, type_, default_code = _DEFAULT_ERRORS[400]
    # Like a careless proxy, echo the key in a 401: callers must not pass it on.
    message = reply.message or template.format(key=key, model=body.get("model", ""))
    headers = {"x-request-id": f"req_fake_{time.monotonic_ns()}"}
    if reply.retry_after is not None:
        headers["retry-after"] = f"{reply.retry_after:g}"
    headers.update(reply.headers)
    error = error_body(message, type_, reply.error_code or default_code)
    return Answer(reply.status_code, error, headers)


def completion(
    body: dict[str, Any],
    number: int,
    *,
    content: str | None,
    refusal: str | None,
    finish: str,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    cached_tokens: int | None = None,
    completion_id: str | None = None,
) -> dict[str, Any]:
    """A ``chat.completion`` object (token counts estimated at 4 characters a token)."""
    if prompt_tokens is None:
        prompt_tokens = estimated_prompt_tokens(body)
    if completion_tokens is None:
        completion_tokens = max(1, len(content or refusal or "") // 4)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cached_tokens is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    return {
        "id": completion_id or f"chatcmpl-fake-{number}",
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
        "usage": usage,
    }


def estimated_prompt_tokens(body: dict[str, Any]) -> int:
    """The prompt tokens the fake bills for ``body``: its message text at 4 characters each."""
    return max(1, sum(len(text) for text in message_texts(body)) // 4)
