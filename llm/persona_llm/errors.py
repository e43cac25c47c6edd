"""What a failed LLM call means, in the one vocabulary every caller and the retry loop share.

A call reports failure as a ``GenerationError`` whose ``FailureKind`` tells the
retry loop what the next attempt should do, and whose ``reason`` is safe to store
on a failed persona and show to users (no keys, bounded length).
"""

from enum import StrEnum

from persona_contracts import TokenUsage


class FailureKind(StrEnum):
    """What a failed call means for the next attempt."""

    RATE_LIMITED = "rate_limited"
    """429: slow down every call sharing the rate limiter (honour ``retry_after``), then retry."""
    TRANSIENT = "transient"
    """5xx, timeout, connection error: retry with backoff."""
    INVALID_OUTPUT = "invalid_output"
    """The answer failed validation: retry with the error fed back."""
    FATAL = "fatal"
    """Refusal, bad key, bad request: retrying cannot help."""


MAX_REASON_CHARS = 500
"""The longest failure reason stored and shown."""
INVALID_OUTPUT_PREFIX = "invalid model output: "


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class GenerationError(Exception):
    """An LLM call could not produce a usable answer; ``reason`` is safe to store and show."""

    def __init__(
        self,
        reason: str,
        *,
        kind: FailureKind = FailureKind.FATAL,
        retry_after: float | None = None,
        usage: TokenUsage | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.retry_after = retry_after
        self.usage = usage or TokenUsage()  # tokens a rejected answer still cost
        self.attempts = attempts  # calls made before giving up

    @property
    def retryable(self) -> bool:
        return self.kind is not FailureKind.FATAL
