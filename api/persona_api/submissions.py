"""Accepting a generation request: idempotent, bounded, and never lost once accepted.

``submit`` records the request (so the status URL works and the reconciler can
re-drive it), then publishes it within ``KAFKA_PUBLISH_TIMEOUT_S``. A publish that does
not complete in time is a 503, and the request is marked *not queued*: the worker
ignores a late copy of its event, so nothing is generated behind the client's back.

With an ``Idempotency-Key`` (scoped to the caller), a retry returns the request the
key was first used for: the same one if it was queued, queued now if it was not, and
a 422 if the body differs from the first one.
"""

import asyncio
import uuid
from typing import Annotated

from aiokafka.errors import KafkaError
from fastapi import Depends, Request
from loguru import logger
from pymongo.errors import PyMongoError

from persona_api.idempotency_store import IdempotencyStore
from persona_api.problems import ProblemError
from persona_api.request_records import RequestRecords
from persona_contracts import PersonaRequested
from persona_producers.publisher import RequestPublisher

NOT_QUEUED = "Kafka did not take the request within KAFKA_PUBLISH_TIMEOUT_S"


class Submissions:
    def __init__(
        self,
        requests: RequestRecords,
        keys: IdempotencyStore,
        publisher: RequestPublisher,
        publish_timeout_s: float,
    ) -> None:
        self._requests = requests
        self._keys = keys
        self._publisher = publisher
        self._timeout_s = publish_timeout_s

    async def submit(self, event: PersonaRequested, idempotency_key: str | None) -> uuid.UUID:
        """Queue ``event`` (or, for a retried key, the request first queued under it) and
        return the id of the request that stands."""
        self._publisher.check_size(event)
        if idempotency_key is None:
            return await self._record_and_publish(event)
        claim = await self._keys.claim(idempotency_key, event.request_id, event.content_hash())
        if claim.new:
            return await self._record_and_publish(event)
        if claim.content_hash != event.content_hash():
            raise ProblemError(
                422,
                "Idempotency-Key reused",
                "This Idempotency-Key was first sent with another body; send a new key for "
                "new work, or the first body to retry it.",
            )
        return await self._retried(event.model_copy(update={"request_id": claim.request_id}))

    async def _retried(self, event: PersonaRequested) -> uuid.UUID:
        """A retry: queue it again if it never was; record it if the first attempt failed
        before recording it; otherwise it stands as it is."""
        requeued = await self._requests.requeue(event.request_id)
        if requeued is not None:
            await self._publish(requeued)
        elif await self._requests.get(event.request_id) is None:
            await self._record_and_publish(event)
        return event.request_id

    async def _record_and_publish(self, event: PersonaRequested) -> uuid.UUID:
        await self._requests.record_pending(event)
        await self._publish(event)
        return event.request_id

    async def _publish(self, event: PersonaRequested) -> None:
        """Publish within the timeout, then confirm the record queued. A failed confirm is
        only logged: the event is in Kafka and will run, so answering 503 would be wrong."""
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._publisher.publish(event)
        except (TimeoutError, KafkaError) as exc:
            await self._requests.mark_unqueued(event.request_id, NOT_QUEUED)
            raise ProblemError(
                503,
                "Service unavailable",
                "The request could not be queued (Kafka did not answer in time) and will not "
                "run. Retry shortly, with the same Idempotency-Key to be sure it runs once.",
            ) from exc
        try:
            await self._requests.mark_queued(event.request_id)
        except PyMongoError as exc:
            logger.warning("request {} is queued but not marked so: {}", event.request_id, exc)


async def get_submissions(request: Request) -> Submissions:
    submissions: Submissions = request.app.state.context.submissions
    return submissions


SubmissionsDep = Annotated[Submissions, Depends(get_submissions)]
