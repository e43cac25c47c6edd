"""MongoDB access: one async client per process and the indexes every query relies on.

Uses PyMongo's native async API (``AsyncMongoClient``), the maintained successor
of Motor, which reached end of life in May 2026.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pymongo
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, WriteConcern
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from persona_infra.settings import Settings

Document = dict[str, object]

DUPLICATE_KEY = 11000

# What closing the client may spend telling the server its sessions are over.
CLOSE_BUDGET_S = 0.5

# Personas and request state must survive a crash once acknowledged.
JOURNALED = WriteConcern(w="majority", j=True)


def connect(settings: Settings) -> AsyncMongoClient[Document]:
    """Create the process's client; it connects lazily, so this never blocks."""
    return AsyncMongoClient(
        settings.mongodb_uri.get_secret_value(),
        # One bound for every operation as a whole (selection, retries, socket reads), so
        # a frozen server fails calls within MONGODB_TIMEOUT_MS instead of hanging them.
        timeoutMS=settings.mongodb_timeout_ms,
        serverSelectionTimeoutMS=settings.mongodb_timeout_ms,
        connectTimeoutMS=settings.mongodb_timeout_ms,
        maxIdleTimeMS=settings.mongodb_max_idle_ms,
        appname=settings.service_name,
        tz_aware=True,
        uuidRepresentation="standard",
    )


async def disconnect(client: AsyncMongoClient[Document]) -> None:
    """Close ``client`` within ``CLOSE_BUDGET_S``, whether the server still answers or not.

    ``close()`` first asks a server to end the client's sessions; with the database gone
    (a stack stopping all at once) choosing that server waits all of ``MONGODB_TIMEOUT_MS``
    for a courtesy the server performs itself once the sessions expire."""
    with pymongo.timeout(CLOSE_BUDGET_S):
        await client.close()


async def insert_new(
    collection: AsyncCollection[Document], documents: Sequence[dict[str, Any]]
) -> list[bool]:
    """Insert ``documents`` in one round trip; per document, ``False`` if its unique key
    existed already (any other write error is raised).

    ``ordered=False`` keeps one duplicate from blocking the rest: the idempotent writes of
    redelivered work rely on this."""
    try:
        await collection.insert_many(documents, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        duplicates = {e["index"] for e in errors}
        return [i not in duplicates for i in range(len(documents))]
    return [True] * len(documents)


@dataclass(frozen=True, slots=True)
class Collections:
    """The collections of the pipeline's database, with their write concerns applied."""

    personas: AsyncCollection[Document]
    requests: AsyncCollection[Document]
    stats: AsyncCollection[Document]
    idempotency: AsyncCollection[Document]
    """``Idempotency-Key`` -> request id, for a day."""
    leases: AsyncCollection[Document]
    """Who runs a once-per-deployment task (the reconciler), until when."""
    shards: AsyncCollection[Document]
    """The parts of large requests: which worker generates each, and what it stored."""

    @classmethod
    def of(cls, db: AsyncDatabase[Document]) -> "Collections":
        return cls(
            personas=db.get_collection("personas", write_concern=JOURNALED),
            requests=db.get_collection("requests", write_concern=JOURNALED),
            stats=db.get_collection("stats", write_concern=JOURNALED),
            idempotency=db.get_collection("idempotency", write_concern=JOURNALED),
            leases=db.get_collection("leases", write_concern=JOURNALED),
            shards=db.get_collection("shards", write_concern=JOURNALED),
        )


FILTER_FIELDS = {
    "country": "keys.country",
    "city": "keys.city",
    "occupation": "keys.occupation",
    "tag": "keys.tags",
    "interest": "keys.interests",
    "gender": "gender",
    "generator": "generator",
    "age": "age",
    "request": "request_id",
}

PERSONA_INDEXES = [
    # Exactly-once storage: a redelivered request can never add a second copy.
    IndexModel(
        [("request_id", ASCENDING), ("ordinal", ASCENDING)],
        unique=True,
        name="request_ordinal_unique",
    ),
    # Keyset pagination: one unique sortable field, so a page is a plain range scan.
    IndexModel([("sort_key", DESCENDING)], unique=True, name="sort_key"),
    IndexModel([("age_key", ASCENDING)], unique=True, name="age_key"),
    # One (filter, sort_key) index per filter: an equality match, then a keyset range.
    *(
        IndexModel([(field, ASCENDING), ("sort_key", DESCENDING)], name=f"{name}_sort")
        for name, field in FILTER_FIELDS.items()
    ),
    # Portable search (no $text on every MongoDB-compatible server): multikey terms.
    IndexModel([("search_terms", ASCENDING), ("sort_key", DESCENDING)], name="search_sort"),
    # Near-duplicate checks compare a new persona with the newest of the same brief.
    IndexModel([("brief_key", ASCENDING), ("sort_key", DESCENDING)], name="brief_sort"),
]


IDEMPOTENCY_TTL_S = 24 * 3600
"""How long a retry with the same ``Idempotency-Key`` returns the same request."""

REQUEST_INDEXES = [
    # The reconciler's scan: requests not final whose progress stopped, oldest first.
    IndexModel([("status", ASCENDING), ("progress_at", ASCENDING)], name="status_progress"),
    # The batch poller's scan: requests waiting for a provider batch, due first.
    IndexModel([("status", ASCENDING), ("poll_at", ASCENDING)], name="status_poll"),
]


SHARD_INDEXES = [
    # A request's shards, and how many of them are done.
    IndexModel([("request_id", ASCENDING), ("status", ASCENDING)], name="request_status"),
]


async def ensure_indexes(collections: Collections) -> None:
    """Create the indexes if missing; idempotent, safe for every replica to run at start."""
    await collections.personas.create_indexes(PERSONA_INDEXES)
    await collections.requests.create_indexes(REQUEST_INDEXES)
    await collections.shards.create_indexes(SHARD_INDEXES)
    await collections.idempotency.create_index(
        "created_at", expireAfterSeconds=IDEMPOTENCY_TTL_S, name="expire"
    )


async def ping(client: AsyncMongoClient[Document]) -> None:
    await client.admin.command("ping")
