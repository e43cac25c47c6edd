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

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from aiokafka import ConsumerRecord
from faststream.kafka.message import KafkaMessage
from faststream.message import StreamMessage
from loguru import logger
from pydantic import BaseModel, ValidationError

from persona_audience.planner import AudienceError
from persona_contracts import PersonaRequested, ShardRequested
from persona_infra import correlation
from persona_worker.emitter import DeadLetters
from persona_worker.generation import RequestGeneration
from persona_worker.metrics import PipelineMetrics
from persona_worker.request_writes import RequestConflictError
from persona_worker.stages import now_ms

MAX_BACKOFF_S = 30.0
T = TypeVar("T")
E = TypeVar("E", bound=BaseModel)
UNDECODABLE_HEADERS = "x-persona-undecodable-headers"
"""Set by ``parse_leniently`` to the names of headers that were not UTF-8."""
Parse = Callable[[ConsumerRecord[bytes, bytes]], Awaitable[StreamMessage[Any]]]


async def parse_leniently(
    record: ConsumerRecord[bytes, bytes], original: Parse
) -> StreamMessage[Any]:
    """FastStream's parser, except that a header value that is not UTF-8 does not make the
    message vanish before any handler sees it: the header is replaced and named in
    ``UNDECODABLE_HEADERS``, and the handler dead-letters the message."""
    try:
        return await original(record)
    except UnicodeDecodeError:
        names = [name for name, value in record.headers if not _utf8(value)]
        safe = [(name, value if _utf8(value) else b"") for name, value in record.headers]
        marked = [*safe, (UNDECODABLE_HEADERS, ",".join(names).encode("utf-8", "replace"))]
        return await original(dataclasses.replace(record, headers=marked))


def _utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


@dataclass
class RequestHandler:
    generation: RequestGeneration
    dead_letters: DeadLetters
    metrics: PipelineMetrics
    base_backoff_s: float = 0.5

    async def __call__(self, message: KafkaMessage) -> None:
        """Settle one request, logging and publishing under the producer's correlation id
        (the request id when the producer sent none)."""
        request = await self._decode(message, PersonaRequested)
        if request is None:
            return
        request_id = str(request.request_id)
        with (
            correlation.correlated(correlation.from_headers(message.headers) or request_id),
            logger.contextualize(request_id=request_id),
        ):
            outcome = await self._settle(message, request)
        self.metrics.requests_consumed.labels(outcome).inc()

    async def on_shard(self, message: KafkaMessage) -> None:
        """Generate and settle one shard of a large request (``persona.shards``)."""
        shard = await self._decode(message, ShardRequested)
        if shard is None:
            return
        request_id = str(shard.request.request_id)
        with (
            correlation.correlated(correlation.from_headers(message.headers) or request_id),
            logger.contextualize(request_id=request_id, shard=shard.shard),
        ):
            await self._until_done(lambda: self.generation.process_shard(shard))
        self.metrics.requests_consumed.labels("shard").inc()

    async def _decode(self, message: KafkaMessage, event: type[E]) -> E | None:
        """The message's event, or None once an unusable message was dead-lettered."""
        try:
            decoded = event.model_validate_json(message.body)
            _check_headers(message)
        except (ValidationError, UnreadableHeadersError) as exc:
            reason = _summary(exc) if isinstance(exc, ValidationError) else str(exc)
            sent_id = correlation.from_headers(message.headers)
            with correlation.correlated(sent_id or correlation.new_id()):
                await self._until_done(lambda: self._dead_letter(message, reason))
            self.metrics.requests_consumed.labels("dead_lettered").inc()
            return None
        return decoded

    async def _settle(self, message: KafkaMessage, request: PersonaRequested) -> str:
        """Process the request; a request that must not run is dead-lettered or ignored."""
        try:
            state = await self._until_done(lambda: self.generation.process(request))
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
        await self.generation.stages.requests.reject(request.request_id, reason)
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
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )


class UnreadableHeadersError(ValueError):
    """The event carries headers that are not UTF-8."""


def _check_headers(message: KafkaMessage) -> None:
    names = message.headers.get(UNDECODABLE_HEADERS)
    if names is not None:
        raise UnreadableHeadersError(f"header(s) {names} are not UTF-8 text; send text headers")


def _summary(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors()[:10]
    )
