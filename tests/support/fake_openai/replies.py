"""Scripted replies and the record of each answer (see the package docstring)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Literal

ReplyKind = Literal["ok", "status", "malformed", "refusal", "truncated", "delay"]


@dataclass(frozen=True, slots=True)
class ReplyRecord:
    """One answered chat request: when it arrived and was answered, and how."""

    number: int
    """1-based order of arrival among chat requests; one refused by the request checks
    takes no number, a capacity rejection does (and counts for ``wait_for_calls``)."""
    arrived: float
    sent: float
    """``time.monotonic()`` just before the response was handed to the server."""
    status_code: int
    kind: str
    """The scripted reply's kind, or ``"capacity"`` for a capacity rejection."""
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
