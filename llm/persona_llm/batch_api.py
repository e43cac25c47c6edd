"""The OpenAI Batch API as the worker uses it: upload, create, find, poll, read, cancel.

A batch is a JSONL file of Chat Completions calls (``custom_id`` names each), answered
within the completion window (24 h) at half the synchronous price and under separate,
higher limits. This module knows the wire format and the SDK; which calls go into a
batch and what their answers become is the worker's (``consumers/batch_generation.py``).

Every batch carries ``metadata`` naming its request and round, so a worker that died
between creating a batch and recording it finds it again (``find``) instead of paying
for a second one. Errors are ``BatchApiError``: ``retryable`` when waiting may help
(network, 5xx, 429), otherwise the request cannot go through the Batch API at all (a
server without one, a rejected key) and the reason says what to change.
"""

import contextlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import openai
from openai import AsyncOpenAI
from openai.types import Batch

from persona_llm.errors import FailureKind, GenerationError, truncate

ENDPOINT: Literal["/v1/chat/completions"] = "/v1/chat/completions"
COMPLETION_WINDOW: Literal["24h"] = "24h"
FINAL = frozenset({"completed", "failed", "expired", "cancelled"})
RUNNING = frozenset({"in_progress", "finalizing", "cancelling"})
MAX_LISTED = 1000
"""How many of the account's newest batches ``find`` looks through."""
_MAX_REASON = 300


class BatchApiError(Exception):
    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class BatchSnapshot:
    """A batch as the provider reported it."""

    id: str
    status: str
    total: int
    completed: int
    failed: int
    created_at: datetime
    output_file_id: str | None = None
    error_file_id: str | None = None
    error: str | None = None
    """Why a ``failed`` batch failed (its first validation error)."""

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    @property
    def is_running(self) -> bool:
        return self.status in RUNNING

    @classmethod
    def of(cls, batch: Batch) -> "BatchSnapshot":
        counts = batch.request_counts
        first = batch.errors.data[0] if batch.errors and batch.errors.data else None
        return cls(
            id=batch.id,
            status=batch.status,
            total=counts.total if counts else 0,
            completed=counts.completed if counts else 0,
            failed=counts.failed if counts else 0,
            created_at=datetime.fromtimestamp(batch.created_at, UTC),
            output_file_id=batch.output_file_id,
            error_file_id=batch.error_file_id,
            error=truncate(first.message or first.code or "", _MAX_REASON) if first else None,
        )


@dataclass(frozen=True, slots=True)
class LineResult:
    """One call's outcome: the chat completion body, or why there is none."""

    custom_id: str
    body: Any = None
    error: GenerationError | None = None


class BatchApi:
    def __init__(self, client: AsyncOpenAI) -> None:
        self._client = client

    async def submit(
        self, lines: Mapping[str, Mapping[str, Any]], metadata: Mapping[str, str]
    ) -> BatchSnapshot:
        """Upload ``lines`` (custom_id → Chat Completions body) and create their batch."""
        payload = "".join(
            json.dumps({"custom_id": key, "method": "POST", "url": ENDPOINT, "body": body}) + "\n"
            for key, body in lines.items()
        ).encode()
        with _mapped("upload the batch file (POST /v1/files)", creates=True):
            uploaded = await self._client.files.create(
                file=("personas.jsonl", payload, "application/jsonl"), purpose="batch"
            )
        with _mapped("create the batch (POST /v1/batches)", creates=True):
            batch = await self._client.batches.create(
                input_file_id=uploaded.id,
                endpoint=ENDPOINT,
                completion_window=COMPLETION_WINDOW,
                metadata=dict(metadata),
            )
        return BatchSnapshot.of(batch)

    async def find(self, metadata: Mapping[str, str], since: datetime) -> BatchSnapshot | None:
        """The newest batch created since ``since`` carrying all of ``metadata``."""
        seen = 0
        with _mapped("list batches (GET /v1/batches)", creates=True):
            async for batch in self._client.batches.list(limit=100):
                seen += 1
                if batch.created_at < since.timestamp() - 60 or seen > MAX_LISTED:
                    return None
                if all((batch.metadata or {}).get(k) == v for k, v in metadata.items()):
                    return BatchSnapshot.of(batch)
        return None

    async def retrieve(self, batch_id: str) -> BatchSnapshot:
        with _mapped(f"retrieve batch {batch_id}"):
            return BatchSnapshot.of(await self._client.batches.retrieve(batch_id))

    async def cancel(self, batch_id: str) -> BatchSnapshot:
        with _mapped(f"cancel batch {batch_id}"):
            return BatchSnapshot.of(await self._client.batches.cancel(batch_id))

    async def results(self, snapshot: BatchSnapshot) -> list[LineResult]:
        """Every answered or failed call of a final batch, from its output and error files."""
        results: list[LineResult] = []
        for file_id in (snapshot.output_file_id, snapshot.error_file_id):
            if file_id:
                with _mapped(f"download batch file {file_id}"):
                    content = await self._client.files.content(file_id)
                results.extend(_parse_lines(content.text.splitlines()))
        return results


@contextlib.contextmanager
def _mapped(step: str, *, creates: bool = False) -> Iterator[None]:
    """Turns the SDK's errors into ``BatchApiError`` naming the step that failed; a 404
    on a ``creates`` step means the server has no Batch API."""
    try:
        yield
    except openai.APIError as exc:
        raise _api_error(step, exc, creates=creates) from exc


def _api_error(step: str, exc: openai.APIError, *, creates: bool) -> BatchApiError:
    if isinstance(exc, openai.APIConnectionError | openai.APITimeoutError):
        return BatchApiError(f"could not {step}: {type(exc).__name__}", retryable=True)
    status = getattr(exc, "status_code", None)
    if creates and isinstance(exc, openai.NotFoundError):
        return BatchApiError(
            f"the server has no Batch API (404 when trying to {step}); send mode `sync` or "
            "unset OPENAI_BATCH_THRESHOLD for this server",
            retryable=False,
        )
    retryable = status is None or status >= 500 or status in {408, 409, 429}
    detail = truncate(" ".join(str(exc.message).split()), _MAX_REASON)
    return BatchApiError(f"could not {step} ({status}): {detail}", retryable=retryable)


def _parse_lines(lines: Iterable[str]) -> list[LineResult]:
    results = []
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            results.append(_line_result(record))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # a line we cannot attribute to a call: its ordinal goes round again
    return results


def _line_result(record: Mapping[str, Any]) -> LineResult:
    custom_id = str(record["custom_id"])
    response = record.get("response") or {}
    error = record.get("error")
    status = response.get("status_code")
    if status == 200 and not error:
        return LineResult(custom_id, body=response.get("body"))
    if error:
        code = str(error.get("code") or "error")
        message = str(error.get("message") or code)
        return LineResult(custom_id, error=_line_error(code, message, status))
    body = response.get("body") or {}
    message = str((body.get("error") or {}).get("message") or f"HTTP {status}")
    return LineResult(custom_id, error=_line_error(f"HTTP {status}", message, status))


def _line_error(code: str, message: str, status: int | None) -> GenerationError:
    """A call the batch did not answer: fatal for a request the server refused (4xx but
    429), otherwise worth another round."""
    fatal = status is not None and 400 <= status < 500 and status != 429
    kind = FailureKind.FATAL if fatal else FailureKind.TRANSIENT
    reason = truncate(f"batch call failed ({code}): {' '.join(message.split())}", _MAX_REASON)
    return GenerationError(reason, kind=kind)
