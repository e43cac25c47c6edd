"""The interface every persona generator implements.

The worker samples a ``Skeleton`` (demographics) first and asks a generator
only for the narrative ``PersonaDraft``; swapping OpenAI for the offline
generator, or for any OpenAI-compatible server, changes nothing else.
"""

import uuid
from dataclasses import dataclass
from typing import Protocol

from persona_contracts import PersonaDraft, Skeleton, TokenUsage


@dataclass(frozen=True, slots=True)
class GenerationTask:
    """Everything a generator needs for one persona."""

    brief: str
    skeleton: Skeleton
    ordinal: int
    seed: int
    locale: str | None = None
    """The language to write in (the plan's); English when unset."""
    subject: str | None = None
    """What the research is about (the plan's subject): part of interests, goals and pains."""
    request_id: uuid.UUID | None = None
    """Sent along (e.g. as a client request id header) so provider logs can be traced."""
    previous_error: str | None = None
    """Why the previous attempt's output was rejected; fed back to the model."""
    variant: int = 0
    """Bumped to ask for a different persona (after a near-duplicate)."""


@dataclass(frozen=True, slots=True)
class Generated:
    draft: PersonaDraft
    usage: TokenUsage
    attempts: int = 1
    """Calls it took, including retries (their tokens are included in ``usage``)."""


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
