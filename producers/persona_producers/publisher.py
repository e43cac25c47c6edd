"""The one way requests enter the pipeline, shared by the CLI and the HTTP API."""

from faststream.kafka import KafkaBroker

from persona_contracts import PersonaRequested, Topics
from persona_infra.kafka import Publisher, publish_event


class EventTooLargeError(ValueError):
    """A request event over ``MAX_EVENT_BYTES``: refused here rather than at the broker,
    where it could never be delivered or dead-lettered whole."""


class RequestPublisher:
    """Publishes ``PersonaRequested`` keyed by request id (a redelivery keeps its partition)."""

    def __init__(self, publisher: Publisher, max_event_bytes: int) -> None:
        self._publisher = publisher
        self._max_event_bytes = max_event_bytes

    @classmethod
    def on(cls, broker: KafkaBroker, topics: Topics, max_event_bytes: int) -> "RequestPublisher":
        return cls(
            broker.publisher(
                topics.requests,
                title="persona.requests",
                schema=PersonaRequested,
                description="Requests to generate personas.",
            ),
            max_event_bytes,
        )

    def check_size(self, request: PersonaRequested) -> None:
        size = len(request.model_dump_json())
        if size > self._max_event_bytes:
            raise EventTooLargeError(
                f"the request event is {size} bytes, over MAX_EVENT_BYTES "
                f"({self._max_event_bytes}); send a smaller audience or fewer constraints"
            )

    async def publish(self, request: PersonaRequested) -> None:
        """Keyed by request id; the current correlation id, if any, goes along as a header."""
        self.check_size(request)
        await publish_event(self._publisher, request, str(request.request_id))
