"""The OpenAI generator: one Chat Completions call with Structured Outputs per persona.

The call itself, its error mapping and its strict schema are ``StructuredChat``'s
(``llm/chat.py``), shared with the other LLM callers; what is persona-specific stays
here: the prompt, the seed and the trace header of a task, and the answer's model.
Retrying is ``ResilientGenerator``'s job (``consumers/resilience.py``).

``task.previous_error`` (why the last answer was rejected) is fed back to the
model, and ``task.variant`` shifts the seed so a regeneration differs.

The Batch API path builds its lines with ``batch_line`` and reads their answers with
``read``: the same request and the same answer handling as ``generate``, without a call.
"""

from typing import Annotated, Any, Self

from openai import AsyncOpenAI
from pydantic import Field

from persona_contracts import PersonaDraft, TokenUsage
from persona_contracts.persona import ShortText
from persona_infra.settings import ResponseFormat, Settings
from persona_llm.chat import StructuredChat, openai_client
from persona_worker.generators.base import Generated, GenerationTask
from persona_worker.generators.prompts import build_messages

# OpenAI accepts seeds as 64-bit integers; stay well inside for compatible servers.
SEED_MODULUS = 2**31
# Added to the seed once per ``task.variant``: a regeneration must not replay the same sample.
VARIANT_SEED_STEP = 1_000_003


class PersonaDraftResponse(PersonaDraft):
    """A fictional persona's narrative fields, written around a fixed demographic skeleton."""

    # The schema sent is named and described after this class. Strict Structured
    # Outputs makes every property required, so ``tags`` is required here too (no
    # ``PersonaDraft.tags = []`` default): an answer without it is rejected as the
    # schema says, not silently completed.
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
        response_format: ResponseFormat = ResponseFormat.JSON_SCHEMA,
    ) -> None:
        """Use (and, on ``aclose``, close) ``client``; ``temperature=None`` leaves it to the
        server's default; ``response_format`` as ``StructuredChat`` takes it."""
        self._client = client
        self._chat = StructuredChat(
            client,
            PersonaDraftResponse,
            model=model,
            temperature=temperature,
            response_format=response_format,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """A generator with its own client, configured from the LLM settings (``OPENAI_*``,
        ``AZURE_OPENAI_*``)."""
        return cls(
            openai_client(settings),
            model=settings.llm_model,
            temperature=settings.openai_temperature,
            response_format=settings.openai_response_format,
        )

    @property
    def model(self) -> str:
        return self._chat.model

    @property
    def client(self) -> AsyncOpenAI:
        """The client calls go through; the Batch API path uploads files and creates
        batches with it (the generator closes it)."""
        return self._client

    async def generate(self, task: GenerationTask) -> Generated:
        """Write the narrative for ``task.skeleton`` with exactly one API request.

        ``task.previous_error``, the reason an earlier answer for the same task was
        rejected, is fed back to the model so the retry can fix it.
        """
        answer, usage = await self._chat.complete(
            build_messages(task), seed=seed_for(task), headers=_trace_headers(task)
        )
        return _generated(answer, usage)

    def batch_line(self, task: GenerationTask) -> dict[str, Any]:
        """The request body ``generate`` would send for ``task``: the ``body`` of its Batch
        API line (the caller adds ``custom_id``, ``method`` and ``url``)."""
        return self._chat.request_body(build_messages(task), seed=seed_for(task))

    def read(self, body: Any) -> Generated:
        """The persona in a ``chat.completion`` ``body`` (a Batch API answer), judged as
        ``generate`` judges its own answer: raises ``GenerationError`` the same way."""
        answer, usage = self._chat.read_answer(body)
        return _generated(answer, usage)

    async def aclose(self) -> None:
        await self._client.close()


def _generated(answer: PersonaDraftResponse, usage: TokenUsage) -> Generated:
    return Generated(draft=PersonaDraft.model_validate(answer.model_dump()), usage=usage)


def seed_for(task: GenerationTask) -> int:
    """The sampling seed sent for ``task``; each ``variant`` gets a different one."""
    return (task.seed + task.variant * VARIANT_SEED_STEP) % SEED_MODULUS


def _trace_headers(task: GenerationTask) -> dict[str, str]:
    """OpenAI's ``X-Client-Request-Id`` ties a provider-side call to its request and ordinal."""
    if task.request_id is None:
        return {}
    return {"X-Client-Request-Id": f"{task.request_id}:{task.ordinal}:{task.variant}"}
