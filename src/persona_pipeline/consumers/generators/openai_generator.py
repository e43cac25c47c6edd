"""The OpenAI generator: one Chat Completions call with Structured Outputs per persona.

Works against OpenAI and any OpenAI-compatible server (``OPENAI_BASE_URL``). The
SDK retries 408/409/429/5xx responses, timeouts and connection errors itself
(``OPENAI_MAX_RETRIES``, honouring ``Retry-After``); whatever still fails is
mapped onto ``GenerationError`` with a reason that is safe to store and show and
a ``retryable`` flag the worker uses to decide whether trying again can help.
"""

import json
import re
from typing import Annotated, Self

import openai
from openai import AsyncOpenAI
from openai.types.chat import ParsedChatCompletion
from openai.types.completion_usage import CompletionUsage
from pydantic import Field, ValidationError

from persona_pipeline.consumers.generators.base import Generated, GenerationError, GenerationTask
from persona_pipeline.consumers.generators.prompts import build_messages
from persona_pipeline.contracts import PersonaDraft, TokenUsage
from persona_pipeline.contracts.persona import ShortText
from persona_pipeline.core.settings import Settings

# OpenAI accepts seeds as 64-bit integers; stay well inside for compatible servers.
SEED_MODULUS = 2**31
# Reasons are stored on failed personas and shown to users: keep them short.
MAX_REASON_CHARS = 500
_MAX_DETAIL_CHARS = 200
_MAX_LISTED_ERRORS = 3
# Anything shaped like an OpenAI secret key, in case a server echoes one back.
_KEY_PATTERN = re.compile(r"sk-[A-Za-z0-9_*\-]{4,}")
# Statuses the SDK retries on its own; still failing after that is worth retrying later.
_TRANSIENT_STATUSES = frozenset({408, 409, 429})


class PersonaDraftResponse(PersonaDraft):
    """A fictional persona's narrative fields, written around a fixed demographic skeleton."""

    # Strict Structured Outputs makes every property required anyway, and some
    # OpenAI-compatible servers reject the ``default`` keyword that
    # ``PersonaDraft.tags = []`` would put into the schema; this mirror drops it.
    tags: Annotated[list[ShortText], Field(max_length=12)]


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
            max_retries=settings.openai_max_retries,
        )
        return cls(client, model=settings.openai_model, temperature=settings.openai_temperature)

    @property
    def model(self) -> str:
        return self._model

    async def generate(
        self, task: GenerationTask, *, previous_error: str | None = None
    ) -> Generated:
        """Write the narrative for ``task.skeleton``.

        ``previous_error`` is the reason an earlier answer for the same task was
        rejected; it is fed back to the model so the retry can fix it.
        """
        messages = build_messages(task, previous_error)
        try:
            completion = await self._client.chat.completions.parse(
                model=self._model,
                messages=messages,
                response_format=PersonaDraftResponse,
                temperature=self._temperature,
                seed=task.seed % SEED_MODULUS,
            )
        except openai.LengthFinishReasonError as exc:
            raise _invalid_output("the answer was cut off at the token limit") from exc
        except openai.ContentFilterFinishReasonError as exc:
            raise _invalid_output("the answer was stopped by the content filter") from exc
        except ValidationError as exc:
            raise _invalid_output(_summarize_validation_error(exc)) from exc
        except json.JSONDecodeError as exc:
            raise _invalid_output(f"not valid JSON ({exc.msg})") from exc
        except openai.APIError as exc:
            raise self._api_error(exc) from exc
        except openai.OpenAIError as exc:
            raise GenerationError(
                self._scrub(f"OpenAI client error: {type(exc).__name__}: {exc}"), retryable=False
            ) from exc
        return self._to_generated(completion)

    async def aclose(self) -> None:
        await self._client.close()

    def _to_generated(self, completion: ParsedChatCompletion[PersonaDraftResponse]) -> Generated:
        if not completion.choices:
            raise _invalid_output("the response has no choices")
        message = completion.choices[0].message
        if message.refusal:
            raise GenerationError(
                self._scrub(f"model refused: {_shorten(message.refusal)}"), retryable=False
            )
        parsed = message.parsed
        if parsed is None:
            raise _invalid_output("the response has no content")
        try:
            draft = PersonaDraft.model_validate(parsed.model_dump())
        except ValidationError as exc:  # pragma: no cover - the mirror has the same rules
            raise _invalid_output(_summarize_validation_error(exc)) from exc
        return Generated(draft=draft, usage=_usage(completion.usage))

    def _api_error(self, exc: openai.APIError) -> GenerationError:
        """Map an SDK error (after the SDK's own retries) onto a ``GenerationError``."""
        model = self._model
        if isinstance(exc, openai.APITimeoutError):
            return GenerationError("OpenAI request timed out; retries exhausted", retryable=True)
        if isinstance(exc, openai.APIConnectionError):
            cause = type(exc.__cause__).__name__ if exc.__cause__ else "connection error"
            return GenerationError(
                f"could not reach the OpenAI API ({cause}); check OPENAI_BASE_URL and the network",
                retryable=True,
            )
        if isinstance(exc, openai.AuthenticationError):
            return GenerationError(
                f"OpenAI rejected the API key ({exc.status_code}): check OPENAI_API_KEY",
                retryable=False,
            )
        if isinstance(exc, openai.PermissionDeniedError):
            return GenerationError(
                f"OpenAI denied access to model {model!r} ({exc.status_code}): check the API "
                "key's project permissions and OPENAI_MODEL",
                retryable=False,
            )
        if isinstance(exc, openai.NotFoundError):
            return GenerationError(
                f"OpenAI does not know model {model!r} or the endpoint ({exc.status_code}): "
                "check OPENAI_MODEL and OPENAI_BASE_URL",
                retryable=False,
            )
        if isinstance(exc, openai.BadRequestError):
            return GenerationError(
                self._scrub(
                    f"OpenAI rejected the request ({exc.status_code}): {_api_message(exc)}; "
                    "check that OPENAI_MODEL supports structured outputs and OPENAI_TEMPERATURE"
                ),
                retryable=False,
            )
        if isinstance(exc, openai.RateLimitError):
            if exc.code == "insufficient_quota":
                return GenerationError(
                    "OpenAI quota exhausted (429 insufficient_quota): check the account's "
                    "billing and usage limits",
                    retryable=False,
                )
            return GenerationError(
                "OpenAI rate limit (429) persisted after retries", retryable=True
            )
        if isinstance(exc, openai.InternalServerError):
            return GenerationError(
                f"OpenAI server error ({exc.status_code}) persisted after retries", retryable=True
            )
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            transient = status in _TRANSIENT_STATUSES or status >= 500
            return GenerationError(
                self._scrub(f"OpenAI API error ({status}): {_api_message(exc)}"),
                retryable=transient,
            )
        # APIResponseValidationError and other responses the SDK could not use.
        return GenerationError(
            self._scrub(f"unusable response from the OpenAI API: {type(exc).__name__}"),
            retryable=True,
        )

    def _scrub(self, text: str) -> str:
        """Remove the API key (and anything key-shaped) and cap the length."""
        if self._api_key:
            text = text.replace(self._api_key, "***")
        text = _KEY_PATTERN.sub("sk-***", text)
        return _shorten(text, MAX_REASON_CHARS)


def _invalid_output(summary: str) -> GenerationError:
    return GenerationError(f"invalid model output: {_shorten(summary, 400)}", retryable=True)


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


def _usage(usage: CompletionUsage | None) -> TokenUsage:
    if usage is None:
        return TokenUsage()
    return TokenUsage(
        prompt_tokens=max(usage.prompt_tokens or 0, 0),
        completion_tokens=max(usage.completion_tokens or 0, 0),
    )


def _shorten(text: str, limit: int = _MAX_DETAIL_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
