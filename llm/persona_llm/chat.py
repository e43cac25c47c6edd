"""One Chat Completions call with Structured Outputs, its failures mapped for the retry loop.

Works against OpenAI, Azure OpenAI (``AZURE_OPENAI_ENDPOINT``) and any OpenAI-compatible
server (``OPENAI_BASE_URL``). A server without strict structured outputs gets JSON mode
(``OPENAI_RESPONSE_FORMAT=json_object``): the answer's schema goes at the end of the
system message instead, which keeps the system message the same on every call (the
prefix providers cache), and validation with the error fed back does the rest.
``StructuredChat.complete`` makes exactly one HTTP request: the SDK's own retries
are off (``max_retries=0`` in ``openai_client``) because retrying is the
``Retrier``'s (``llm/retry.py``), where a 429 pauses the rate limiter every call
of the process shares instead of one call. Every failure is mapped onto a
``GenerationError`` with a reason that is safe to store and show and a
``FailureKind`` that says what the next attempt should do:

- ``RATE_LIMITED``: 429, with ``retry_after`` from the ``retry-after-ms`` or
  ``retry-after`` header (seconds or an HTTP date) when the server sent one;
- ``TRANSIENT``: 5xx, 408, 409, timeouts, connection errors, unusable responses;
- ``INVALID_OUTPUT``: the answer was cut off, filtered, empty, not JSON or not
  valid for the response model; the tokens it cost are attached (``usage``);
- ``FATAL``: refusal, 400/401/403/404 and other client errors, and a 429 with
  ``insufficient_quota`` (no retry helps until someone pays).

This is a hot path (a worker makes over a hundred calls a second), and the SDK's
``parse`` helper spends most of its CPU rebuilding the strict JSON schema, walking
it against the SDK's param types and building its response models on every call.
So the ``response_format`` is built once per chat (``llm/schema.py``) and sent
through ``extra_body`` (merged as-is), the request goes through
``with_raw_response.create``, and the answer's JSON is read here with a minimal
model of the few fields used.

The request body and the reading of an answer are public (``request_body``,
``read_answer``) so the Batch API path sends exactly the same request and judges its
answers exactly as ``complete`` does, without an HTTP call of its own.
"""

import email.utils
import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from datetime import UTC
from typing import Any, Generic, NamedTuple, TypeVar, cast

import openai
from openai import AsyncAzureOpenAI, AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam
from pydantic import BaseModel, ValidationError

from persona_contracts import TokenUsage
from persona_infra.settings import ResponseFormat, Settings
from persona_llm.errors import (
    INVALID_OUTPUT_PREFIX,
    MAX_REASON_CHARS,
    FailureKind,
    GenerationError,
    truncate,
)
from persona_llm.schema import schema_instruction, strict_response_format

# Reasons are stored on failed personas and shown to users: keep them short.
_MAX_DETAIL_CHARS = 200
_MAX_LISTED_ERRORS = 3
# Anything shaped like an OpenAI secret key, in case a server echoes one back.
_KEY_PATTERN = re.compile(r"sk-[A-Za-z0-9_*\-]{4,}")
# Client-error statuses that say "try again later" rather than "this request is wrong".
_TRANSIENT_STATUSES = frozenset({408, 409})
# Shorter strings are not scrubbed from error reasons: they would blank out ordinary words.
_MIN_SECRET_CHARS = 4


class _SettingNames(NamedTuple):
    """The settings an error reason tells the operator to check."""

    key: str
    model: str
    endpoint: str


_OPENAI_NAMES = _SettingNames("OPENAI_API_KEY", "OPENAI_MODEL", "OPENAI_BASE_URL")
_AZURE_NAMES = _SettingNames(
    "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_DEPLOYMENT", "AZURE_OPENAI_ENDPOINT"
)

M = TypeVar("M", bound=BaseModel)


class _ChatMessage(BaseModel):
    """The parts of the assistant's message the chat reads (other fields are ignored)."""

    content: str | None = None
    refusal: str | None = None


class _ChatChoice(BaseModel):
    finish_reason: str | None = None
    message: _ChatMessage


class _ChatCompletion(BaseModel):
    """A Chat Completions answer, reduced to what the chat reads.

    Much cheaper than the SDK's own response models, which model every field. The
    usage is read separately (``_usage_from_body``) so a bad one cannot fail the answer.
    """

    choices: list[_ChatChoice]


class _Usage(BaseModel):
    """The token counts of a ``usage``; the cached count is read on its own
    (``_cached_tokens``), so a malformed one costs only itself."""

    prompt_tokens: int
    completion_tokens: int


def openai_client(settings: Settings) -> AsyncOpenAI:
    """A client configured from the settings, making one request per call: Azure OpenAI's
    when ``AZURE_OPENAI_ENDPOINT`` is set, else OpenAI's or ``OPENAI_BASE_URL``'s.

    Its own retries are off: the ``Retrier`` retries, pausing every call sharing its
    rate limiter on a 429. ``OPENAI_EXTRA_HEADERS`` go with every request.
    """
    key = settings.llm_api_key
    if key is None:
        raise ValueError("calling OpenAI needs OPENAI_API_KEY; set it or use GENERATOR=offline")
    headers = {
        name: value.get_secret_value() for name, value in settings.openai_extra_headers.items()
    }
    if settings.azure_openai_endpoint is not None:
        # No ``azure_deployment``: the SDK then puts the model sent (a deployment name)
        # into the path, so PLANNER_MODEL may name another deployment, and the files and
        # batches endpoints stay where Azure has them.
        return AsyncAzureOpenAI(
            azure_endpoint=str(settings.azure_openai_endpoint),
            api_version=settings.azure_openai_api_version,
            api_key=key.get_secret_value(),
            timeout=settings.openai_timeout_s,
            max_retries=0,
            default_headers=headers,
        )
    return AsyncOpenAI(
        api_key=key.get_secret_value(),
        base_url=str(settings.openai_base_url) if settings.openai_base_url else None,
        timeout=settings.openai_timeout_s,
        max_retries=0,
        default_headers=headers,
    )


class StructuredChat(Generic[M]):
    """Asks an OpenAI (or OpenAI-compatible) chat model for answers shaped like ``M``.

    It never closes its client: whoever made the client closes it, so one client
    (one connection pool) can serve several chats.
    """

    def __init__(
        self,
        client: AsyncOpenAI,
        response_model: type[M],
        *,
        model: str,
        temperature: float | None = None,
        response_format: ResponseFormat = ResponseFormat.JSON_SCHEMA,
    ) -> None:
        """Ask ``model`` through ``client``; ``temperature=None`` leaves it to the server.

        ``response_format`` ``json_object`` asks for JSON mode and puts the schema into
        the system message, for servers without strict structured outputs.
        """
        self._client = client
        self._response_model = response_model
        self._model = model
        self._temperature = temperature
        self._mode = response_format
        self._instruction: str | None = None
        if response_format is ResponseFormat.JSON_OBJECT:
            self._response_format: dict[str, Any] = {"type": "json_object"}
            self._instruction = schema_instruction(response_model)
        else:
            self._response_format = strict_response_format(response_model)
        self._names = _AZURE_NAMES if isinstance(client, AsyncAzureOpenAI) else _OPENAI_NAMES
        self._secrets = _secrets_of(client)

    @property
    def model(self) -> str:
        return self._model

    async def complete(
        self,
        messages: Iterable[ChatCompletionMessageParam],
        *,
        seed: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[M, TokenUsage]:
        """The model's answer to ``messages`` and its tokens, with exactly one API request.

        The body is ``request_body(messages, seed=seed)``, the answer is judged by
        ``read_answer``; the extra ``headers`` go with the request. Raises
        ``GenerationError``; a rejected answer's error carries its tokens.
        """
        body = await self._post(self.request_body(messages, seed=seed), headers)
        return self.read_answer(body)

    def request_body(
        self, messages: Iterable[ChatCompletionMessageParam], *, seed: int | None = None
    ) -> dict[str, Any]:
        """The JSON body ``complete`` sends for ``messages`` (with the schema in the system
        message in JSON mode); ``temperature`` and ``seed`` only when set."""
        body: dict[str, Any] = {"model": self._model, "messages": self._messages(messages)}
        if self._temperature is not None:
            body["temperature"] = self._temperature
        if seed is not None:
            body["seed"] = seed
        body["response_format"] = self._response_format
        body["stream"] = False
        return body

    def read_answer(self, body: Any) -> tuple[M, TokenUsage]:
        """The answer in a decoded ``chat.completion`` ``body`` and its tokens.

        Judged exactly as ``complete`` judges its own: raises ``GenerationError`` (a cut
        off, filtered, refused or invalid answer; a body that is no chat completion), a
        rejected answer's error carrying its tokens.
        """
        # Read the usage before judging the answer: a rejected answer still cost these tokens.
        usage = _usage_from_body(body)
        message = _first_message(body, usage)
        if message.refusal:
            raise GenerationError(
                self._scrub(f"model refused: {_shorten(message.refusal)}"),
                kind=FailureKind.FATAL,
                usage=usage,
            )
        return _parse(self._response_model, message.content, usage), usage

    def _messages(
        self, messages: Iterable[ChatCompletionMessageParam]
    ) -> list[ChatCompletionMessageParam]:
        listed = list(messages)
        return listed if self._instruction is None else _with_instruction(listed, self._instruction)

    async def _post(self, body: dict[str, Any], headers: Mapping[str, str] | None) -> Any:
        """Send the Chat Completions request ``body`` and return the answer's decoded JSON.

        ``with_raw_response.create`` keeps the SDK's request handling (auth, headers,
        timeouts, error mapping) but skips building its response models, and passing
        the body in ``extra_body`` (merged as-is, after the SDK's own fields) keeps the
        SDK from walking the large schema against its param types on every call. The
        wire request is ``body``: what ``parse`` sends, but for the stripped schema.
        """
        try:
            raw = await self._client.chat.completions.with_raw_response.create(
                model=body["model"],
                messages=body["messages"],
                stream=False,
                extra_headers=headers,
                extra_body=body,
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
        model, names = self._model, self._names
        if isinstance(exc, openai.APITimeoutError):
            return GenerationError(
                "OpenAI request timed out (OPENAI_TIMEOUT_S)", kind=FailureKind.TRANSIENT
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = type(exc.__cause__).__name__ if exc.__cause__ else "connection error"
            return GenerationError(
                f"could not reach the OpenAI API ({cause}); check {names.endpoint} and the network",
                kind=FailureKind.TRANSIENT,
            )
        if isinstance(exc, openai.AuthenticationError):
            return GenerationError(
                f"OpenAI rejected the API key ({exc.status_code}): check {names.key}",
                kind=FailureKind.FATAL,
            )
        if isinstance(exc, openai.PermissionDeniedError):
            return GenerationError(
                f"OpenAI denied access to model {model!r} ({exc.status_code}): check the API "
                f"key's project permissions and {names.model}",
                kind=FailureKind.FATAL,
            )
        if isinstance(exc, openai.NotFoundError):
            return GenerationError(
                f"OpenAI does not know model {model!r} or the endpoint ({exc.status_code}): "
                f"check {names.model} and {names.endpoint}",
                kind=FailureKind.FATAL,
            )
        if isinstance(exc, openai.BadRequestError):
            return GenerationError(
                self._scrub(
                    f"OpenAI rejected the request ({exc.status_code}): {_api_message(exc)}; "
                    f"{self._bad_request_hint()}"
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

    def _bad_request_hint(self) -> str:
        model = self._names.model
        if self._mode is ResponseFormat.JSON_OBJECT:
            return f"check {model} and OPENAI_TEMPERATURE"
        return (
            f"check that {model} supports structured outputs (else set "
            "OPENAI_RESPONSE_FORMAT=json_object) and OPENAI_TEMPERATURE"
        )

    def _scrub(self, text: str) -> str:
        """Remove the API key and the extra headers' values (anything key-shaped too) and
        cap the length."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = _KEY_PATTERN.sub("sk-***", text)
        return _shorten(text, MAX_REASON_CHARS)


def _secrets_of(client: AsyncOpenAI) -> tuple[str, ...]:
    """The client's key and custom header values (``OPENAI_EXTRA_HEADERS``, maybe a gateway
    token), remembered only to scrub them from error reasons, never to send anywhere."""
    custom = getattr(client, "_custom_headers", None)  # the SDK keeps no public copy
    values = [getattr(client, "api_key", None), *(custom.values() if custom else ())]
    return tuple(v for v in values if isinstance(v, str) and len(v) >= _MIN_SECRET_CHARS)


def _with_instruction(
    messages: list[ChatCompletionMessageParam], instruction: str
) -> list[ChatCompletionMessageParam]:
    """``messages`` with ``instruction`` at the end of the leading system message, so the
    system message is still the same on every call (the prefix providers cache). Without
    a leading system message of plain text, the instruction becomes one, first."""
    first = messages[0] if messages else None
    if first is None or first["role"] != "system" or not isinstance(first["content"], str):
        return [{"role": "system", "content": instruction}, *messages]
    system = cast(
        ChatCompletionMessageParam, {**first, "content": f"{first['content']}\n\n{instruction}"}
    )
    return [system, *messages[1:]]


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


def _parse(response_model: type[M], content: str | None, usage: TokenUsage) -> M:
    """The answer's JSON validated against the full response model.

    Here the limits the strict schema could not carry (string lengths) are enforced.
    """
    if not content:
        raise _invalid_output("the response has no content", usage)
    try:
        return response_model.model_validate_json(content)
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
    """The ``usage`` of a decoded response body; zero when it has none (or a malformed one).

    ``usage.prompt_tokens_details.cached_tokens`` (OpenAI's prompt caching) is the part of
    the prompt served from the cache; it is never more than the prompt.
    """
    try:
        raw = body["usage"]
        usage = _Usage.model_validate(raw)
    except (TypeError, KeyError, ValidationError):
        return TokenUsage()
    prompt = max(usage.prompt_tokens, 0)
    return TokenUsage(
        prompt_tokens=prompt,
        completion_tokens=max(usage.completion_tokens, 0),
        cached_prompt_tokens=min(_cached_tokens(raw), prompt),
    )


def _cached_tokens(usage: Any) -> int:
    """``prompt_tokens_details.cached_tokens`` of a raw ``usage``; 0 when missing or malformed."""
    details = usage.get("prompt_tokens_details") if isinstance(usage, dict) else None
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return cached if type(cached) is int and cached > 0 else 0


def _shorten(text: str, limit: int = _MAX_DETAIL_CHARS) -> str:
    return truncate(" ".join(text.split()), limit)
