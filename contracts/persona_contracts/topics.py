"""Kafka topic names and the workers' consumer groups.

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
    def shards(self) -> str:
        """Parts of large requests, which every worker of the group takes."""
        return f"{self.prefix}persona.shards"

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
        return (self.requests, self.shards, self.created, self.failed, self.dead_letter)

    @property
    def group(self) -> str:
        """The workers' consumer group on ``requests``; prefixed like the topics, so two
        deployments sharing a cluster never share a group."""
        return f"{self.prefix}persona-generators"

    @property
    def shard_group(self) -> str:
        """The workers' group on ``shards``: a group of its own, so that each topic's
        partitions are shared among the workers independently of the other's."""
        return f"{self.prefix}persona-shard-generators"
