"""The correlation id of the work in progress, carried from HTTP into Kafka and back.

The API takes the caller's ``X-Correlation-Id`` (or makes one), logs with it and
sends it as a Kafka header with the request event; the worker logs with it and
sends it on with ``persona.created`` / ``persona.failed``, so one id follows a
request through every process. A context variable holds it because it belongs to
the task doing the work, and tasks the work starts inherit it.
"""

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

from loguru import logger

HEADER = "x-correlation-id"
MAX_CHARS = 64

_current: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def sanitize(value: str | None) -> str | None:
    """The caller's id if it is usable (printable, bounded), else ``None``."""
    if not value:
        return None
    text = value[:MAX_CHARS]
    return text if text.isprintable() else None


def new_id() -> str:
    return uuid.uuid4().hex


def from_headers(headers: Mapping[str, object]) -> str | None:
    value = headers.get(HEADER)
    return sanitize(value) if isinstance(value, str) else None


def headers() -> dict[str, str]:
    """Kafka headers that pass the current id on (none outside correlated work)."""
    cid = _current.get()
    return {HEADER: cid} if cid else {}


@contextmanager
def correlated(correlation_id: str) -> Iterator[None]:
    """Run the block, and the tasks it starts, under ``correlation_id`` (logs included)."""
    token = _current.set(correlation_id)
    try:
        with logger.contextualize(correlation_id=correlation_id):
            yield
    finally:
        _current.reset(token)
