"""The one way requests enter the pipeline, shared by the CLI and the HTTP API."""

from faststream.kafka import KafkaBroker

from persona_pipeline.contracts import PersonaRequested, Topics
from persona_pipeline.core.kafka import Publisher, publish_event


class RequestPublisher:
    """Publishes ``PersonaRequested`` keyed by request id (a redelivery keeps its partition)."""

    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher

    @classmethod
    def on(cls, broker: KafkaBroker, topics: Topics) -> "RequestPublisher":
        return cls(
            broker.publisher(
                topics.requests,
                title="persona.requests",
                schema=PersonaRequested,
                description="Requests to generate personas.",
            )
        )

    async def publish(self, request: PersonaRequested) -> None:
        """Keyed by request id; the current correlation id, if any, goes along as a header."""
        await publish_event(self._publisher, request, str(request.request_id))
