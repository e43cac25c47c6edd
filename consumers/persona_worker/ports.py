"""What the generation use case needs from storage, as protocols.

The use case (``stages``, ``generation``, ``batch_generation``) is written against these,
not against MongoDB: ``persona_writes``, ``request_writes`` and ``stats_writes``
implement them for production and the integration tests, and in-memory fakes implement
them for fast unit tests of the use case's rules (redelivery, partial failure,
near-duplicates, cancel).
"""

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from persona_contracts import (
    GenerationMode,
    Persona,
    PersonaRequested,
    RequestState,
    ShardRequested,
)
from persona_contracts.plan import AudiencePlan, Planning
from persona_worker.request_writes import Settlement
from persona_worker.shard_writes import ShardTotals


class PersonaWrites(Protocol):
    async def insert_many(self, documents: Sequence[dict[str, Any]]) -> list[bool]:
        """Store documents; per document, ``False`` if its ``(request_id, ordinal)`` existed."""
        ...

    async def for_request(
        self, request_id: uuid.UUID, ordinals: range | None = None
    ) -> dict[int, Persona]: ...

    async def recent_signatures(self, brief: str, limit: int) -> list[tuple[str, list[int]]]:
        """``(id, minhash)`` of the newest personas of the same brief."""
        ...

    async def get(self, persona_id: uuid.UUID) -> Persona | None: ...


class RequestWrites(Protocol):
    async def mark_generating(
        self, request: PersonaRequested, generator: str, mode: GenerationMode
    ) -> AudiencePlan | None:
        """Take the request; its stored plan, if any. Raises ``NotStartedError`` and
        ``RequestConflictError`` (``request_writes.py``) for deliveries not to run."""
        ...

    async def keep_plan(self, request_id: uuid.UUID, plan: AudiencePlan) -> AudiencePlan: ...

    async def plan_of(self, request_id: uuid.UUID) -> AudiencePlan | None: ...

    async def heartbeat(self, request_id: uuid.UUID) -> None: ...

    async def cancel_requested(self, request_id: uuid.UUID) -> bool: ...

    async def reject(self, request_id: uuid.UUID, reason: str) -> None: ...

    async def finish(
        self,
        request: PersonaRequested,
        personas: Mapping[int, Persona],
        failures: dict[int, str],
        retries: int,
        planning: Planning,
        *,
        cancelled: bool = False,
    ) -> Settlement: ...

    async def mark_sharded(self, request_id: uuid.UUID, shards: int) -> None: ...

    async def finish_sharded(
        self,
        request: PersonaRequested,
        totals: ShardTotals,
        planning: Planning,
        *,
        cancelled: bool = False,
    ) -> RequestState: ...


class ShardWrites(Protocol):
    """The shards of large requests (``sharding.py``)."""

    async def create(self, parts: Iterable[ShardRequested]) -> None: ...

    async def undone(self, request_id: uuid.UUID) -> set[int]: ...

    async def claim(
        self, request_id: uuid.UUID, shard: int, owner: str, lease_s: float
    ) -> bool: ...

    async def renew(
        self, request_id: uuid.UUID, shard: int, owner: str, lease_s: float
    ) -> None: ...

    async def finish(
        self,
        request_id: uuid.UUID,
        shard: int,
        personas: Mapping[int, Persona],
        failures: Mapping[int, str],
        retries: int,
    ) -> bool: ...

    async def totals(self, request_id: uuid.UUID) -> ShardTotals: ...


class BatchRequestWrites(RequestWrites, Protocol):
    """What batch mode needs on top: recording and polling a request's provider batch."""

    async def mark_batch(
        self, request_id: uuid.UUID, state: RequestState, batch: Mapping[str, Any], poll_s: float
    ) -> None: ...

    async def batch_polled(
        self,
        request_id: uuid.UUID,
        state: RequestState,
        progress: Mapping[str, Any],
        poll_s: float,
    ) -> None: ...

    async def claim_due_batches(
        self, owner: str, lease_s: float, limit: int
    ) -> list[dict[str, Any]]: ...


class StatsWrites(Protocol):
    async def apply(
        self, new: Sequence[Persona], failed_delta: int = 0, near_duplicates: int = 0
    ) -> None: ...
