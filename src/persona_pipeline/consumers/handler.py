"""The Kafka-facing edge of the worker: decode, dead-letter or process one request.

Offsets are not this module's concern (``Dispatcher`` commits them once a
request returns). What it guarantees is that it returns only when the request
is settled: stored and announced, or dead-lettered. An infrastructure failure
(database or broker unreachable) is retried in place with a growing pause, so
the request's offset stays uncommitted until it succeeds or the worker stops.

A request that is valid JSON but cannot be planned (its brief and constraints
contradict each other, or name a place nobody knows), or that reuses a stored
request's id for other content, is dead-lettered like an invalid one, with the
reason; retrying could not change the answer. A late copy of a request the API
answered 503 for ("not queued") is acknowledged and ignored: the client was told it
would not run.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio
from faststream.kafka.message import KafkaMessage
from loguru import logger
from pydantic import ValidationError

from persona_pipeline.audience.planner import AudienceError
from persona_pipeline.consumers.emitter import DeadLetters
from persona_pipeline.consumers.service import GenerationService, now_ms
from persona_pipeline.contracts import PersonaRequested
from persona_pipeline.core import correlation
from persona_pipeline.core.metrics import PipelineMetrics
from persona_pipeline.core.request_store import RequestConflictError

MAX_BACKOFF_S = 30.0
T = TypeVar("T")


@dataclass
class RequestHandler:
    service: GenerationService
    dead_letters: DeadLetters
    metrics: PipelineMetrics
    base_backoff_s: float = 0.5

    async def __call__(self, message: KafkaMessage) -> None:
        """Settle one request, logging and publishing under the producer's correlation id
        (the request id when the producer sent none)."""
        sent_id = correlation.from_headers(message.headers)
        try:
            request = PersonaRequested.model_validate_json(message.body)
        except ValidationError as exc:
            reason = _summary(exc)
            with correlation.correlated(sent_id or correlation.new_id()):
                await self._until_done(lambda: self._dead_letter(message, reason))
            self.metrics.requests_consumed.labels("dead_lettered").inc()
            return
        request_id = str(request.request_id)
        with (
            correlation.correlated(sent_id or request_id),
            logger.contextualize(request_id=request_id),
        ):
            outcome = await self._settle(message, request)
        self.metrics.requests_consumed.labels(outcome).inc()

    async def _settle(self, message: KafkaMessage, request: PersonaRequested) -> str:
        """Process the request; a request that must not run is dead-lettered or ignored."""
        try:
            state = await self._until_done(lambda: self.service.process(request))
        except AudienceError as exc:
            reason = f"cannot plan the audience: {exc}"
            await self._until_done(lambda: self._reject(message, request, reason))
            return "dead_lettered"
        except RequestConflictError as exc:
            conflict = exc.reason
            if exc.unqueued:
                logger.warning("ignored request {}: {}", request.request_id, conflict)
                return "ignored"
            await self._until_done(lambda: self._dead_letter(message, conflict))
            return "dead_lettered"
        return state.value

    async def _until_done(self, step: Callable[[], Awaitable[T]]) -> T:
        failures = 0
        while True:
            try:
                return await step()
            except (AudienceError, RequestConflictError):
                raise  # the request itself is at fault: no retry can help
            except Exception:
                failures += 1
                pause = min(self.base_backoff_s * 2 ** (failures - 1), MAX_BACKOFF_S)
                logger.exception("request step failed; retrying in {:.1f}s", pause)
                self.metrics.requests_consumed.labels("retried").inc()
                await anyio.sleep(pause)

    async def _reject(self, message: KafkaMessage, request: PersonaRequested, reason: str) -> None:
        await self.service.requests.reject(request.request_id, reason)
        await self._dead_letter(message, reason)

    async def _dead_letter(self, message: KafkaMessage, summary: str) -> None:
        record = message.raw_message
        assert not isinstance(record, tuple), "the request subscriber is not a batch subscriber"
        logger.warning("invalid request event at offset {}: {}", record.offset, summary)
        await self.dead_letters.send(
            body=message.body,
            key=record.key,
            error=summary,
            failed_at=now_ms(),
            partition=record.partition,
            offset=record.offset,
        )


def _summary(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors()[:10]
    )
