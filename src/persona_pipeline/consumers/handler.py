"""The Kafka-facing edge of the worker: decode, dead-letter, process, then ack.

Acknowledgement is manual. A valid request is acked only after
``GenerationService.process`` returns (personas stored and announced); an
infrastructure failure nacks, which seeks back so the request is redelivered
after a growing pause instead of being skipped.
"""

from dataclasses import dataclass, field

import anyio
from faststream.kafka.message import KafkaMessage
from loguru import logger
from pydantic import ValidationError

from persona_pipeline.consumers.emitter import DeadLetters
from persona_pipeline.consumers.service import GenerationService, now_ms
from persona_pipeline.contracts import PersonaRequested
from persona_pipeline.core.metrics import PipelineMetrics

MAX_BACKOFF_S = 30.0


@dataclass
class RequestHandler:
    service: GenerationService
    dead_letters: DeadLetters
    metrics: PipelineMetrics
    base_backoff_s: float = 0.5
    _consecutive_failures: int = field(default=0, init=False)

    async def __call__(self, message: KafkaMessage) -> None:
        try:
            request = PersonaRequested.model_validate_json(message.body)
        except ValidationError as exc:
            await self._dead_letter(message, exc)
            return
        with logger.contextualize(request_id=str(request.request_id)):
            await self._process(message, request)

    async def _process(self, message: KafkaMessage, request: PersonaRequested) -> None:
        try:
            state = await self.service.process(request)
        except Exception:
            self._consecutive_failures += 1
            pause = min(self.base_backoff_s * 2 ** (self._consecutive_failures - 1), MAX_BACKOFF_S)
            logger.exception("request failed; redelivering in {:.1f}s", pause)
            self.metrics.requests_consumed.labels("retried").inc()
            await anyio.sleep(pause)
            await message.nack()
            return
        self._consecutive_failures = 0
        await message.ack()
        self.metrics.requests_consumed.labels(state.value).inc()

    async def _dead_letter(self, message: KafkaMessage, error: ValidationError) -> None:
        record = message.raw_message
        assert not isinstance(record, tuple), "the request subscriber is not a batch subscriber"
        summary = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors()[:10]
        )
        logger.warning("invalid request event at offset {}: {}", record.offset, summary)
        await self.dead_letters.send(
            body=message.body,
            key=record.key,
            error=summary,
            failed_at=now_ms(),
            partition=record.partition,
            offset=record.offset,
        )
        await message.ack()
        self.metrics.requests_consumed.labels("dead_lettered").inc()
