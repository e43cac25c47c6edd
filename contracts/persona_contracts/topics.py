"""Kafka topic names and the worker's consumer group.

Kept in the contracts because producers, the worker and downstream consumers
must agree on them; deployments may prefix them (see ``Settings.topic_prefix``).
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topics:
    """The pipeline's topics, optionally namespaced by a prefix (``"staging."``)."""

    prefix: str = ""

    @property
    def requests(self) -> str:
        return f"{self.prefix}persona.requests"

    @property
    def created(self) -> str:
        return f"{self.prefix}persona.created"

    @property
    def failed(self) -> str:
        return f"{self.prefix}persona.failed"

    @property
    def dead_letter(self) -> str:
        return f"{self.prefix}persona.requests.dlq"

    def all(self) -> tuple[str, ...]:
        return (self.requests, self.created, self.failed, self.dead_letter)


CONSUMER_GROUP = "persona-generators"
