"""The OpenAI generator: one Chat Completions call with Structured Outputs per persona.

Works against OpenAI and any OpenAI-compatible server (``OPENAI_BASE_URL``). It
makes exactly one HTTP request per ``generate``: the SDK's own retries are off
(``max_retries=0`` in ``from_settings``) because retrying moves into
``ResilientGenerator`` (``consumers/resilience.py``), where a 429 pauses the
whole worker's rate limiter instead of one call. Every failure is mapped onto a
``GenerationError`` with a reason that is safe to store and show and a
``FailureKind`` that says what the next attempt should do:

- ``RATE_LIMITED``: 429, with ``retry_after`` from the ``retry-after-ms`` or
  ``retry-after`` header (seconds or an HTTP date) when the server sent one;
- ``TRANSIENT``: 5xx, 408, 409, timeouts, connection errors, unusable responses;
- ``INVALID_OUTPUT``: the answer was cut off, filtered, empty, not JSON or not a
  valid persona; the tokens it cost are attached (``usage``);
- ``FATAL``: refusal, 400/401/403/404 and other client errors, and a 429 with
  ``insufficient_quota`` (no retry helps until someone pays).

``task.previous_error`` (why the last answer was rejected) is fed back to the
model, and ``task.variant`` shifts the seed so a regeneration differs.

This is a hot path (a worker makes over a hundred calls a second), and the SDK's
``parse`` helper spends most of its CPU rebuilding the strict JSON schema, walking
it against the SDK's param types and building its response models on every call.
So the ``response_format`` is built once per generator with the SDK's own helper
and sent through ``extra_body`` (merged as-is), the request goes through
``with_raw_response.create``, and the answer's JSON is read here with a minimal
model of the few fields the generator uses. The request on the wire is unchanged.
"""

import email.utils
import json
import math
import re
import time
from collections.abc import Mapping
from datetime import UTC
from typing import Annotated, Any, Self

import openai
from openai import AsyncOpenAI, Omit
from openai.lib import type_to_response_format_param
from openai.types.completion_usage import CompletionUsage
from pydantic import BaseModel, Field, ValidationError

from persona_pipeline.consumers.generators.base import (
    INVALID_OUTPUT_PREFIX,
    MAX_REASON_CHARS,
    FailureKind,
    Generated,
    GenerationError,
    GenerationTask,
    truncate,
)
from persona_pipeline.consumers.generators.prompts import build_messages
from persona_pipeline.contracts import PersonaDraft, TokenUsage
from persona_pipeline.contracts.persona import ShortText
from persona_pipeline.core.settings import Settings

# OpenAI accepts seeds as 64-bit integers; stay well inside for compatible servers.
SEED_MODULUS = 2**31
# Added to the seed once per ``task.variant``: a regeneration must not replay the same sample.
VARIANT_SEED_STEP = 1_000_003
# Reasons are stored on failed personas and shown to users: keep them short.
_MAX_DETAIL_CHARS = 200
_MAX_LISTED_ERRORS = 3
# Anything shaped like an OpenAI secret key, in case a server echoes one back.
_KEY_PATTERN = re.compile(r"sk-[A-Za-z0-9_*\-]{4,}")
# Client-error statuses that say "try again later" rather than "this request is wrong".
_TRANSIENT_STATUSES = frozenset({408, 409})


class PersonaDraftResponse(PersonaDraft):
    """A fictional persona's narrative fields, written around a fixed demographic skeleton."""

    # Strict Structured Outputs makes every property required anyway, and some
    # OpenAI-compatible servers reject the ``default`` keyword that
    # ``PersonaDraft.tags = []`` would put into the schema; this mirror drops it.
    tags: Annotated[list[ShortText], Field(max_length=12)]


class _ChatMessage(BaseModel):
    """The parts of the assistant's message the generator reads (other fields are ignored)."""

    content: str | None = None
    refusal: str | None = None


class _ChatChoice(BaseModel):
    finish_reason: str | None = None
    message: _ChatMessage


class _ChatCompletion(BaseModel):
    """A Chat Completions answer, reduced to what the generator reads.

    Much cheaper than the SDK's own response models, which model every field. The
    usage is read separately (``_usage_from_body``) so a bad one cannot fail the answer.
    """

    choices: list[_ChatChoice]


class OpenAIGenerator:
    """Writes persona narratives with an OpenAI (or OpenAI-compatible) chat model."""

    name: str = "openai"

    def __init__(
        self,
        client: AsyncOpenAI,
        *,
        model: str,
        temperature: float | None = None,
    ) -> None:
        """Wrap ``client``; ``temperature=None`` leaves it to the server's default."""
        self._client = client
        self._model = model
        self._temperature = temperature
        self._extra_body = {"response_format": _response_format()}
        # Remembered only to scrub it from error reasons, never to send anywhere.
        api_key = getattr(client, "api_key", None)
        self._api_key = api_key if isinstance(api_key, str) and len(api_key) >= 4 else None

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """A generator with its own client, configured from ``OPENAI_*`` settings."""
        if settings.openai_api_key is None:
            raise ValueError(
                "the OpenAI generator needs OPENAI_API_KEY; set it or use GENERATOR=offline"
            )
        client = AsyncOpenAI(
            api_key=settings.openai_api_key.get_secret_value(),
            base_url=str(settings.openai_base_url) if settings.openai_base_url else None,
            timeout=settings.openai_timeout_s,
            max_retries=0,  # ResilientGenerator retries, pausing the whole worker on a 429
        )
        return cls(client, model=settings.openai_model, temperature=settings.openai_temperature)

    @property
    def model(self) -> str:
        return self._model

    async def generate(self, task: GenerationTask) -> Generated:
        """Write the narrative for ``task.skeleton`` with exactly one API request.

        ``task.previous_error``, the reason an earlier answer for the same task was
        rejected, is fed back to the model so the retry can fix it.
        """
        body = await self._post(task)
        # Read the usage before judging the answer: a rejected answer still cost these tokens.
        usage = _usage_from_body(body)
        message = _first_message(body, usage)
        if message.refusal:
            raise GenerationError(
                self._scrub(f"model refused: {_shorten(message.refusal)}"),
                kind=FailureKind.FATAL,
                usage=usage,
            )
        return Generated(draft=_parse_draft(message.content, usage), usage=usage)

    async def aclose(self) -> None:
        await self._client.close()

    async def _post(self, task: GenerationTask) -> Any:
        """Send the Chat Completions request and return the answer's decoded JSON body.

        ``with_raw_response.create`` keeps the SDK's request handling (auth, headers,
        timeouts, error mapping) but skips building its response models, and passing
        the prebuilt ``response_format`` in ``extra_body`` keeps the SDK from walking
        the large schema against its param types on every call. The wire request is
        what ``parse`` sent (including ``"stream": false``).
        """
        try:
            raw = await self._client.chat.completions.with_raw_response.create(
                model=self._model,
                messages=build_messages(task),
                stream=False,
                temperature=self._temperature,
                seed=seed_for(task),
                extra_headers=_trace_headers(task),
                extra_body=self._extra_body,
            )
        except openai.APIError as exc:
            raise self._api_error(exc) from exc
        except openai.OpenAIError as exc:
            raise self._client_error(exc) from exc
        try:
            return raw.http_response.json()
        except ValueError as exc:  # a JSONDecodeError, or bytes that are not even UTF-8
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
            raise _invalid_output(f"not valid JSON ({detail})") from exc

    def _api_error(self, exc: openai.APIError) -> GenerationError:
        """Map an SDK error onto a ``GenerationError`` of the right ``FailureKind``."""
        model = self._model
        if isinstance(exc, openai.APITimeoutError):
            return GenerationError(
                "OpenAI request timed out (OPENAI_TIMEOUT_S)", kind=FailureKind.TRANSIENT
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = type(exc.__cause__).__name__ if exc.__cause__ else "connection error"
            return GenerationError(
                f"could not reach the OpenAI API ({cause}); check OPENAI_BASE_URL and the network",
                kind=FailureKind.TRANSIENT,
            )
        if isinstance(exc, openai.AuthenticationError):
            return GenerationError(
                f"OpenAI rejected the API key ({exc.status_code}): check OPENAI_API_KEY",
                kind=FailureKind.FATAL,
            )
        if isinstance(exc, openai.PermissionDeniedError):
            return GenerationError(
                f"OpenAI denied access to model {model!r} ({exc.status_code}): check the API "
                "key's project permissions and OPENAI_MODEL",
                kind=FailureKind.FATAL,
            )
        if isinstance(exc, openai.NotFoundError):
            return GenerationError(
                f"OpenAI does not know model {model!r} or the endpoint ({exc.status_code}): "
                "check OPENAI_MODEL and OPENAI_BASE_URL",
                kind=FailureKind.FATAL,
            )
        if isinstance(exc, openai.BadRequestError):
            return GenerationError(
                self._scrub(
                    f"OpenAI rejected the request ({exc.status_code}): {_api_message(exc)}; "
                    "check that OPENAI_MODEL supports structured outputs and OPENAI_TEMPERATURE"
                ),
                kind=FailureKind.FATAL,
            )
        if isinstance(exc, openai.APIStatusError):
            return self._status_error(exc)
        # APIResponseValidationError and other responses the SDK could not use.
        return GenerationError(
            self._scrub(f"unusable response from the OpenAI API: {type(exc).__name__}"),
            kind=FailureKind.TRANSIENT,
        )

    def _status_error(self, exc: openai.APIStatusError) -> GenerationError:
        status = exc.status_code
        if status == 429:
            if "insufficient_quota" in (exc.code, exc.type):
                return GenerationError(
                    "OpenAI quota exhausted (429 insufficient_quota): check the account's "
                    "billing and usage limits",
                    kind=FailureKind.FATAL,
                )
            retry_after = retry_after_seconds(exc.response.headers)
            hint = f"; retry after {retry_after:g} s" if retry_after is not None else ""
            return GenerationError(
                self._scrub(f"OpenAI rate limit (429): {_api_message(exc)}{hint}"),
                kind=FailureKind.RATE_LIMITED,
                retry_after=retry_after,
            )
        if status >= 500:
            return GenerationError(f"OpenAI server error ({status})", kind=FailureKind.TRANSIENT)
        kind = FailureKind.TRANSIENT if status in _TRANSIENT_STATUSES else FailureKind.FATAL
        return GenerationError(
            self._scrub(f"OpenAI API error ({status}): {_api_message(exc)}"), kind=kind
        )

    def _client_error(self, exc: openai.OpenAIError) -> GenerationError:
        return GenerationError(
            self._scrub(f"OpenAI client error: {type(exc).__name__}: {exc}"),
            kind=FailureKind.FATAL,
        )

    def _scrub(self, text: str) -> str:
        """Remove the API key (and anything key-shaped) and cap the length."""
        if self._api_key:
            text = text.replace(self._api_key, "***")
        text = _KEY_PATTERN.sub("sk-***", text)
        return _shorten(text, MAX_REASON_CHARS)


def seed_for(task: GenerationTask) -> int:
    """The sampling seed sent for ``task``; each ``variant`` gets a different one."""
    return (task.seed + task.variant * VARIANT_SEED_STEP) % SEED_MODULUS


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """How long a 429 asks to wait, from ``retry-after-ms`` or else ``retry-after``.

    ``retry-after`` may be seconds or an HTTP date (compared with ``now``, a Unix
    time defaulting to the current one). ``None`` when neither header is usable;
    a date in the past gives ``0.0``.
    """
    # httpx headers are case-insensitive; a plain mapping is matched case-insensitively here.
    lowered = {key.lower(): value for key, value in headers.items()}
    milliseconds = _finite_float(lowered.get("retry-after-ms"))
    if milliseconds is not None and milliseconds >= 0:
        return milliseconds / 1000
    value = lowered.get("retry-after")
    if value is None:
        return None
    seconds = _finite_float(value)
    if seconds is None:
        try:
            when = email.utils.parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(seconds, 0.0)


def _finite_float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _response_format() -> dict[str, Any]:
    """The ``response_format`` param for ``PersonaDraftResponse``, exactly as ``parse`` builds it.

    ``{"type": "json_schema", "json_schema": {"name", "schema", "strict": true}}``
    with the SDK's strict-mode schema; built by the SDK's public helper so it stays
    identical to what ``chat.completions.parse`` would send, but only once.
    """
    response_format = type_to_response_format_param(PersonaDraftResponse)
    if isinstance(response_format, Omit):  # pragma: no cover - only for an omitted format
        raise TypeError("the SDK built no response_format for PersonaDraftResponse")
    return dict(response_format)


def _first_message(body: Any, usage: TokenUsage) -> _ChatMessage:
    """The first choice's message, once no choice was cut off or filtered.

    Mirrors the SDK's ``parse``: a ``length`` or ``content_filter`` finish reason in
    any choice rejects the answer. A body that is not a chat completion at all is an
    unusable response (transient), as the SDK's strict response validation treats it.
    """
    try:
        completion = _ChatCompletion.model_validate(body)
    except ValidationError as exc:
        raise GenerationError(
            "unusable response from the OpenAI API: not a chat completion",
            kind=FailureKind.TRANSIENT,
            usage=usage,
        ) from exc
    for choice in completion.choices:
        if choice.finish_reason == "length":
            raise _invalid_output("the answer was cut off at the token limit", usage)
        if choice.finish_reason == "content_filter":
            raise _invalid_output("the answer was stopped by the content filter", usage)
    if not completion.choices:
        raise _invalid_output("the response has no choices", usage)
    return completion.choices[0].message


def _parse_draft(content: str | None, usage: TokenUsage) -> PersonaDraft:
    """Validate the answer's JSON against the strict mirror and return a plain ``PersonaDraft``."""
    if not content:
        raise _invalid_output("the response has no content", usage)
    try:
        parsed = PersonaDraftResponse.model_validate_json(content)
        return PersonaDraft.model_validate(parsed.model_dump())
    except ValidationError as exc:
        raise _invalid_output(_summarize_validation_error(exc), usage) from exc


def _invalid_output(summary: str, usage: TokenUsage | None = None) -> GenerationError:
    return GenerationError(
        f"{INVALID_OUTPUT_PREFIX}{_shorten(summary, 400)}",
        kind=FailureKind.INVALID_OUTPUT,
        usage=usage,
    )


def _summarize_validation_error(exc: ValidationError) -> str:
    """The first few problems, without the offending input values."""
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    if not errors:
        return "the answer does not match the schema"
    if errors[0]["type"] == "json_invalid":
        return f"not valid JSON ({_shorten(errors[0]['msg'], 120)})"
    parts = []
    for error in errors[:_MAX_LISTED_ERRORS]:
        where = ".".join(str(part) for part in error["loc"]) or "answer"
        parts.append(f"{where}: {error['msg']}")
    if len(errors) > _MAX_LISTED_ERRORS:
        parts.append(f"and {len(errors) - _MAX_LISTED_ERRORS} more")
    return "; ".join(parts)


def _api_message(exc: openai.APIError) -> str:
    """The server's own error message, which says what was wrong with the request."""
    body = exc.body
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, str) and message:
            return _shorten(message)
    return _shorten(exc.message)


def _usage_from_body(body: Any) -> TokenUsage:
    """The ``usage`` of a decoded response body; zero when it has none (or a malformed one)."""
    try:
        usage = CompletionUsage.model_validate(body["usage"])
    except (TypeError, KeyError, ValidationError):
        return TokenUsage()
    return TokenUsage(
        prompt_tokens=max(usage.prompt_tokens or 0, 0),
        completion_tokens=max(usage.completion_tokens or 0, 0),
    )


def _shorten(text: str, limit: int = _MAX_DETAIL_CHARS) -> str:
    return truncate(" ".join(text.split()), limit)


def _trace_headers(task: GenerationTask) -> dict[str, str]:
    """OpenAI's ``X-Client-Request-Id`` ties a provider-side call to its request and ordinal."""
    if task.request_id is None:
        return {}
    return {"X-Client-Request-Id": f"{task.request_id}:{task.ordinal}:{task.variant}"}
