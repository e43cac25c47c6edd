"""Files and batches as OpenAI's Batch API keeps them, without the HTTP layer.

A batch moves through its states on a clock: each state lasts ``step_s`` seconds
and moves are made lazily, whenever a batch is looked at (``advance``), so no
background task can race a test. Lines are answered when ``in_progress`` ends,
through the ``answer_line`` callback (the server's chat logic). Not thread-safe
on its own: the server calls it under its lock.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ENDPOINT = "/v1/chat/completions"
WINDOW = "24h"
DAY_S = 86_400
FINAL = frozenset({"completed", "failed", "expired", "cancelled"})
EXPIRED_ERROR = {
    "code": "batch_expired",
    "message": "This request could not be executed before the completion window expired.",
}

AnswerLine = Callable[[dict[str, Any], str], tuple[int, dict[str, Any]]]
"""(line body, API key) → (status code, response body), like one chat call."""


class ApiError(Exception):
    """A request the Files or Batch API refuses, with OpenAI's error fields."""

    def __init__(
        self, status_code: int, message: str, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.param = param
        self.code = code


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


@dataclass
class StoredFile:
    """An uploaded (or batch-written) file and the bytes it holds."""

    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def describe(self) -> dict[str, Any]:
        """The ``FileObject`` OpenAI returns for it."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
            "expires_at": None,
        }


@dataclass
class BatchJob:
    """One batch: its public ``Batch`` object and what the fake needs to run it."""

    batch: dict[str, Any]
    raw_lines: list[tuple[int, str]]
    """(1-based line number, text) of each non-blank input line."""
    key: str
    created: float
    """``time.monotonic()`` at creation; ``due`` is when the current state ends."""
    due: float
    expire_after: int | None = None
    failure: tuple[str, str] | None = None
    lines: list[dict[str, Any]] = field(default_factory=list)
    output: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return str(self.batch["status"])

    def move(self, status: str, at: float) -> None:
        """Enter ``status`` at monotonic time ``at`` (stamping ``<status>_at``)."""
        self.batch["status"] = status
        created_at = int(self.batch["created_at"])
        self.batch[f"{status}_at"] = created_at + int(at - self.created)


class BatchStore:
    """Files and batches by id, in creation order."""

    def __init__(self, step_s: float, answer_line: AnswerLine) -> None:
        self.step_s = step_s
        self._answer_line = answer_line
        self.reset()

    def reset(self) -> None:
        self.files: dict[str, StoredFile] = {}
        self.jobs: dict[str, BatchJob] = {}
        self.held = False
        self.created = 0
        self.next_expire: int | None = None
        self.next_failure: tuple[str, str] | None = None

    # -- files ---------------------------------------------------------------

    def add_file(self, data: bytes, filename: str, purpose: str) -> StoredFile:
        stored = StoredFile(new_id("file-"), filename, purpose, data, int(time.time()))
        self.files[stored.id] = stored
        return stored

    def file(self, file_id: str) -> StoredFile:
        if (stored := self.files.get(file_id)) is None:
            raise ApiError(404, f"No such File object: {file_id}", "id")
        return stored

    def delete_file(self, file_id: str) -> dict[str, Any]:
        self.file(file_id)
        del self.files[file_id]
        return {"id": file_id, "object": "file", "deleted": True}

    # -- batches -------------------------------------------------------------

    def create(self, params: dict[str, Any], key: str, now: float) -> dict[str, Any]:
        """A new ``validating`` batch for ``params`` (the create call's body)."""
        source = self._input_file(params.get("input_file_id"))
        _check_create(params)
        created_at = int(time.time())
        batch = _new_batch(source.id, created_at, params.get("metadata"))
        job = BatchJob(batch, _raw_lines(source.data), key, now, now + self.step_s)
        job.expire_after, self.next_expire = self.next_expire, None
        job.failure, self.next_failure = self.next_failure, None
        self.jobs[batch["id"]] = job
        self.created += 1
        return copy.deepcopy(batch)

    def get(self, batch_id: str, now: float) -> dict[str, Any]:
        job = self._job(batch_id)
        self._advance(job, now)
        return copy.deepcopy(job.batch)

    def cancel(self, batch_id: str, now: float) -> dict[str, Any]:
        """Start cancelling: lines not answered yet never will be."""
        job = self._job(batch_id)
        self._advance(job, now)
        if job.status in FINAL:
            raise ApiError(400, f"Cannot cancel a batch with status '{job.status}'.", "batch_id")
        if job.status != "cancelling":
            job.move("cancelling", now)
            job.due = now + self.step_s
        return copy.deepcopy(job.batch)

    def listing(self, limit: int, after: str | None, now: float) -> dict[str, Any]:
        """A page of batches, newest first, after the batch ``after`` (a cursor)."""
        newest_first = list(reversed(self.all(now)))
        ids = [batch["id"] for batch in newest_first]
        start = 0
        if after is not None:
            if after not in ids:
                raise ApiError(400, f"No batch found with id '{after}'.", "after")
            start = ids.index(after) + 1
        page = newest_first[start : start + limit]
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": start + limit < len(newest_first),
        }

    def all(self, now: float) -> list[dict[str, Any]]:
        """Every batch in its current state, in creation order (copies)."""
        return [self.get(batch_id, now) for batch_id in self.jobs]

    def input_lines(self, batch_id: str) -> list[dict[str, Any]]:
        """The input lines of a batch that parse as JSON objects, in file order."""
        parsed = (_parse(text) for _, text in self._job(batch_id).raw_lines)
        return [line for line in parsed if isinstance(line, dict)]

    def hold(self, now: float) -> None:
        for job in self.jobs.values():
            self._advance(job, now)
        self.held = True

    def release(self, now: float) -> None:
        """Let held batches go on: ``in_progress`` ends one step after it began, or now."""
        for job in self.jobs.values():
            self._advance(job, now)
            if job.status == "in_progress":
                job.due = max(job.due, now)
        self.held = False

    # -- the state machine ---------------------------------------------------

    def _job(self, batch_id: str) -> BatchJob:
        if (job := self.jobs.get(batch_id)) is None:
            raise ApiError(404, f"No batch found with id '{batch_id}'.", "batch_id")
        return job

    def _input_file(self, file_id: Any) -> StoredFile:
        source = self.files.get(file_id) if isinstance(file_id, str) else None
        if source is None:
            raise ApiError(400, f"Could not find file with ID '{file_id}'.", "input_file_id")
        if source.purpose != "batch":
            message = f"File {file_id} has purpose '{source.purpose}', expected 'batch'."
            raise ApiError(400, message, "input_file_id")
        return source

    def _advance(self, job: BatchJob, now: float) -> None:
        """Make every move that was due by ``now``, each at the time it was due."""
        while job.status not in FINAL and job.due <= now:
            if job.status == "in_progress" and self.held:
                return
            at = job.due
            self._step(job, at)
            job.due = at + self.step_s

    def _step(self, job: BatchJob, at: float) -> None:
        if job.status == "validating":
            self._validate(job, at)
        elif job.status == "in_progress":
            self._run(job, at)
        elif job.status == "finalizing":
            self._finish(job, "completed", at)
        elif job.status == "cancelling":
            self._finish(job, "cancelled", at)

    def _validate(self, job: BatchJob, at: float) -> None:
        if job.failure is not None:
            code, message = job.failure
            problems = [{"code": code, "message": message, "param": None, "line": None}]
        else:
            problems = _line_problems(job.raw_lines)
        if problems:
            job.batch["errors"] = {"object": "list", "data": problems}
            job.move("failed", at)
            return
        job.lines = [json.loads(text) for _, text in job.raw_lines]
        job.batch["request_counts"]["total"] = len(job.lines)
        job.batch["model"] = str(job.lines[0]["body"]["model"])
        job.move("in_progress", at)

    def _run(self, job: BatchJob, at: float) -> None:
        """Answer the lines (only the first ``expire_after`` if the batch is to expire)."""
        answered = len(job.lines) if job.expire_after is None else job.expire_after
        for line in job.lines[:answered]:
            self._answer(job, line)
        if job.expire_after is None:
            job.move("finalizing", at)
            return
        for line in job.lines[answered:]:
            job.errors.append(_result(line, None, EXPIRED_ERROR))
            job.batch["request_counts"]["failed"] += 1
        self._finish(job, "expired", at)

    def _answer(self, job: BatchJob, line: dict[str, Any]) -> None:
        status_code, body = self._answer_line(line["body"], job.key)
        response = {"status_code": status_code, "request_id": new_id("req_"), "body": body}
        counts = job.batch["request_counts"]
        if 200 <= status_code < 300:
            job.output.append(_result(line, response, None))
            counts["completed"] += 1
            _add_usage(job.batch["usage"], body.get("usage") or {})
        else:
            job.errors.append(_result(line, response, None))
            counts["failed"] += 1

    def _finish(self, job: BatchJob, status: str, at: float) -> None:
        """Enter a final state, writing the output and error files that have lines."""
        batch_id = job.batch["id"]
        for results, field_name, suffix in (
            (job.output, "output_file_id", "output"),
            (job.errors, "error_file_id", "error"),
        ):
            if results:
                data = "".join(json.dumps(result) + "\n" for result in results).encode()
                written = self.add_file(data, f"{batch_id}_{suffix}.jsonl", "batch_output")
                job.batch[field_name] = written.id
        job.move(status, at)


def _check_create(params: dict[str, Any]) -> None:
    if params.get("endpoint") != ENDPOINT:
        message = f"Invalid endpoint {params.get('endpoint')!r}: this server batches {ENDPOINT}."
        raise ApiError(400, message, "endpoint")
    if params.get("completion_window") != WINDOW:
        window = params.get("completion_window")
        message = f"Invalid value: {window!r}. Supported values are: '24h'."
        raise ApiError(400, message, "completion_window")
    metadata = params.get("metadata")
    if metadata is None:
        return
    if (
        not isinstance(metadata, dict)
        or len(metadata) > 16
        or not all(isinstance(k, str) and len(k) <= 64 for k in metadata)
        or not all(isinstance(v, str) and len(v) <= 512 for v in metadata.values())
    ):
        message = "metadata: at most 16 string pairs (keys up to 64, values up to 512 characters)."
        raise ApiError(400, message, "metadata")


def _new_batch(file_id: str, created_at: int, metadata: Any) -> dict[str, Any]:
    """A ``Batch`` object just created: every field the SDK's model has."""
    batch: dict[str, Any] = {
        "id": new_id("batch_"),
        "object": "batch",
        "endpoint": ENDPOINT,
        "model": None,
        "errors": None,
        "input_file_id": file_id,
        "completion_window": WINDOW,
        "status": "validating",
        "output_file_id": None,
        "error_file_id": None,
        "created_at": created_at,
        "expires_at": created_at + DAY_S,
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
        "usage": {
            "input_tokens": 0,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 0,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 0,
        },
        "metadata": metadata,
    }
    for status in ("in_progress", "finalizing", "completed", "failed", "expired"):
        batch[f"{status}_at"] = None
    batch["cancelling_at"] = batch["cancelled_at"] = None
    return batch


def _raw_lines(data: bytes) -> list[tuple[int, str]]:
    """Numbered non-blank lines (split on ``\\n`` only: JSON may hold other line breaks)."""
    text = data.decode("utf-8", errors="replace")
    numbered = enumerate((line.rstrip("\r") for line in text.split("\n")), start=1)
    return [(number, line) for number, line in numbered if line.strip()]


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _line_problems(raw_lines: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """What OpenAI's validation reports for an input file: one error per bad line."""
    if not raw_lines:
        message = (
            "The batch input file is empty. "
            "Please ensure that the batch contains at least one request."
        )
        return [{"code": "empty_file", "message": message, "param": None, "line": None}]
    problems: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, text in raw_lines:
        problem = _line_problem(_parse(text), seen)
        if problem is not None:
            code, message, param = problem
            problems.append({"code": code, "message": message, "param": param, "line": number})
    return problems


def _line_problem(line: Any, seen: set[str]) -> tuple[str, str, str | None] | None:
    """(code, message, param) of what is wrong with one parsed line, if anything."""
    if not isinstance(line, dict):
        return "invalid_json_line", "This line is not parseable as valid JSON.", None
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str):
        return "missing_required_parameter", "Missing required parameter: 'custom_id'.", "custom_id"
    if custom_id in seen:
        message = (
            "The custom_id for this request is a duplicate of another request. "
            "The custom_id parameter must be unique for each request in a batch."
        )
        return "duplicate_custom_id", message, "custom_id"
    seen.add(custom_id)
    if line.get("method") != "POST":
        return "invalid_method", "The 'method' of each request must be 'POST'.", "method"
    if line.get("url") != ENDPOINT:
        message = "The URL provided for this request does not match the batch endpoint."
        return "invalid_url", message, "url"
    body = line.get("body")
    if not isinstance(body, dict) or "model" not in body:
        message = "Missing required parameter: 'body.model'."
        return "missing_required_parameter", message, "body.model"
    return None


def _result(
    line: dict[str, Any], response: dict[str, Any] | None, error: dict[str, Any] | None
) -> dict[str, Any]:
    """One line of an output or error file."""
    return {
        "id": new_id("batch_req_"),
        "custom_id": line["custom_id"],
        "response": response,
        "error": error,
    }


def _add_usage(total: dict[str, Any], usage: dict[str, Any]) -> None:
    """Add one completion's usage to a batch's ``usage``."""
    prompt, completion = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0))
    total["input_tokens"] += prompt
    total["input_tokens_details"]["cached_tokens"] += cached
    total["output_tokens"] += completion
    total["total_tokens"] += prompt + completion
