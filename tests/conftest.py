"""Session-wide test infrastructure: one real broker and database for the whole run.

Each test gets its own topic prefix and database, so tests cannot see each
other's data while sharing the servers (starting them costs about a second).
"""

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from persona_infra.kafka import ensure_topics
from persona_infra.settings import Settings
from tests.support.stack import Endpoints, test_stack


@pytest.fixture(scope="session")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    with test_stack(Path(tmp_path_factory.mktemp("stack"))) as found:
        yield found


@pytest.fixture
async def settings(endpoints: Endpoints) -> AsyncIterator[Settings]:
    """Settings for one test: isolated topics and database on the shared servers."""
    tag = uuid.uuid4().hex[:10]
    configured = Settings(
        kafka_bootstrap_servers=endpoints.kafka,
        mongodb_uri=endpoints.mongodb_uri,  # type: ignore[arg-type]
        mongodb_database=f"test_{tag}",
        kafka_topic_prefix=f"t{tag}.",
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=400,
        generator="offline",  # type: ignore[arg-type]
        openai_api_key=None,
    )
    await ensure_topics(configured)
    yield configured
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(endpoints.mongodb_uri)
    await client.drop_database(configured.mongodb_database)
    await client.close()


def derive(settings: Settings, **changes: object) -> Settings:
    """A validated copy with ``changes`` (``model_copy`` would skip validation)."""
    return Settings(**{**settings.model_dump(), **changes})
