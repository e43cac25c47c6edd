"""The interface every persona generator implements.

The worker samples a ``Skeleton`` (demographics) first and asks a generator
only for the narrative ``PersonaDraft``; swapping OpenAI for the offline
generator, or for any OpenAI-compatible server, changes nothing else.
"""

from dataclasses import dataclass
from typing import Protocol

from persona_pipeline.contracts import PersonaDraft, Skeleton, TokenUsage


@dataclass(frozen=True, slots=True)
class GenerationTask:
    """Everything a generator needs for one persona."""

    brief: str
    skeleton: Skeleton
    ordinal: int
    seed: int
    locale: str | None = None


@dataclass(frozen=True, slots=True)
class Generated:
    draft: PersonaDraft
    usage: TokenUsage


class GenerationError(Exception):
    """A persona could not be generated; ``reason`` is safe to store and show."""

    def __init__(self, reason: str, *, retryable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class PersonaGenerator(Protocol):
    @property
    def name(self) -> str:
        """Label stored on every persona (``openai`` or ``offline``)."""
        ...

    @property
    def model(self) -> str:
        """The model name stored on every persona."""
        ...

    async def generate(self, task: GenerationTask) -> Generated:
        """Write the narrative for one skeleton; raise ``GenerationError`` on failure."""
        ...

    async def aclose(self) -> None:
        """Release network clients; a no-op for generators that hold none."""
        ...
