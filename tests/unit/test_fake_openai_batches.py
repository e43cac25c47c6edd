"""The fake's Files and Batch APIs, driven by the real SDK as a batch client drives OpenAI's.

Batch clients are judged on what OpenAI does over hours (validation failures,
expiry, cancels, partial error files); the fake plays each of those in a fraction
of a second, so these tests pin the shapes and state moves a client relies on.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, Final

import openai
import pytest
from openai import AsyncOpenAI
from openai.types import Batch, FileObject

from tests.support.fake_openai import FakeOpenAI, ok, status

STEP_S = 0.02
CHAT: Final = "/v1/chat/completions"
FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {
        "name": "persona",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "bio": {"type": "string"}},
            "required": ["name", "bio"],
            "additionalProperties": False,
        },
    },
}


def _line(custom_id: str, occupation: str, **body: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": f"Occupation: {occupation}"}]
    request = {"model": "gpt-4o-mini", "messages": messages, "response_format": FORMAT, **body}
    return {"custom_id": custom_id, "method": "POST", "url": CHAT, "body": request}


def _jsonl(lines: list[Any]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def _lines(count: int) -> list[dict[str, Any]]:
    return [_line(f"p-{index}", f"job {index}") for index in range(count)]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(batch_step_s=STEP_S) as started:
        yield started


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as sdk:
        yield sdk


async def _submit(client: AsyncOpenAI, lines: list[Any], **metadata: str) -> Batch:
    uploaded = await client.files.create(file=("in.jsonl", _jsonl(lines)), purpose="batch")
    return await client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata=metadata or None,
    )


async def _until(client: AsyncOpenAI, batch_id: str, *statuses: str) -> Batch:
    """Poll a batch until it is in one of ``statuses`` (2 s at most)."""
    for _ in range(200):
        batch = await client.batches.retrieve(batch_id)
        if batch.status in statuses:
            return batch
        await asyncio.sleep(STEP_S / 2)
    raise AssertionError(f"batch {batch_id} is still {batch.status}")


async def _results(client: AsyncOpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    content = await client.files.content(file_id)
    return [json.loads(line) for line in content.text.splitlines()]


async def test_a_batch_runs_end_to_end(fake: FakeOpenAI, client: AsyncOpenAI) -> None:
    created = await _submit(client, _lines(3), request="r-1")
    assert created.status == "validating"
    assert created.expires_at == created.created_at + 86_400
    assert created.in_progress_at is None
    assert created.output_file_id is None
    assert created.errors is None
    assert created.metadata == {"request": "r-1"}
    done = await _until(client, created.id, "completed")
    assert done.in_progress_at is not None
    assert done.finalizing_at is not None
    assert done.completed_at is not None
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed) == (3, 3)
    assert done.request_counts.failed == 0
    assert done.error_file_id is None
    assert done.model == "gpt-4o-mini"
    assert done.usage is not None
    assert done.usage.output_tokens > 0
    results = await _results(client, done.output_file_id)
    assert [result["custom_id"] for result in results] == ["p-0", "p-1", "p-2"]
    for index, result in enumerate(results):
        assert result["id"].startswith("batch_req_")
        assert result["error"] is None
        assert result["response"]["status_code"] == 200
        body = result["response"]["body"]
        assert body["object"] == "chat.completion"
        answer = json.loads(body["choices"][0]["message"]["content"])
        assert set(answer) == {"name", "bio"}
        assert f"job {index}" in answer["bio"]
    Batch.model_validate(fake.batches[0])  # every field the SDK's model has
    assert fake.batches_created == 1
    assert [line["custom_id"] for line in fake.batch_lines(created.id)] == ["p-0", "p-1", "p-2"]
    assert len(fake.batch_requests) == 3
    assert fake.requests == []
    assert fake.replies == []
    assert fake.calls_by_path["/v1/files"] == 1


async def test_files_are_stored_described_and_deleted(client: AsyncOpenAI) -> None:
    uploaded = await client.files.create(file=("in.jsonl", b'{"a": 1}\n'), purpose="batch")
    FileObject.model_validate(uploaded.model_dump())
    assert uploaded.id.startswith("file-")
    assert (uploaded.bytes, uploaded.filename, uploaded.status) == (9, "in.jsonl", "processed")
    assert (await client.files.retrieve(uploaded.id)).purpose == "batch"
    assert (await client.files.content(uploaded.id)).content == b'{"a": 1}\n'
    deleted = await client.files.delete(uploaded.id)
    assert (deleted.id, deleted.deleted) == (uploaded.id, True)
    with pytest.raises(openai.NotFoundError):
        await client.files.content(uploaded.id)
    with pytest.raises(openai.BadRequestError, match="purpose"):
        await client.files.create(file=("in.jsonl", b"{}\n"), purpose="fine-tune")


async def test_bad_create_calls_are_refused(client: AsyncOpenAI) -> None:
    uploaded = await client.files.create(file=("in.jsonl", _jsonl(_lines(1))), purpose="batch")
    create = client.batches.create
    with pytest.raises(openai.BadRequestError, match="file"):
        await create(input_file_id="file-nope", endpoint=CHAT, completion_window="24h")
    with pytest.raises(openai.BadRequestError, match="endpoint"):
        await create(input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h")
    with pytest.raises(openai.BadRequestError, match="24h"):
        await create(
            input_file_id=uploaded.id,
            endpoint=CHAT,
            completion_window="24h",
            extra_body={"completion_window": "1h"},
        )
    metadata = {f"k{index}": "v" for index in range(17)}
    with pytest.raises(openai.BadRequestError, match="metadata"):
        await create(
            input_file_id=uploaded.id, endpoint=CHAT, completion_window="24h", metadata=metadata
        )
    with pytest.raises(openai.NotFoundError):
        await client.batches.retrieve("batch_nope")


async def test_scripted_batch_errors_go_to_the_error_file(
    fake: FakeOpenAI, client: AsyncOpenAI
) -> None:
    fake.script(status(503))  # the chat script is not the batch's
    fake.script_batch(ok(), status(429, message="Slow down."))
    done = await _until(client, (await _submit(client, _lines(3))).id, "completed")
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (2, 1)
    assert [result["custom_id"] for result in await _results(client, done.output_file_id)] == [
        "p-0",
        "p-2",
    ]
    [failed] = await _results(client, done.error_file_id)
    assert failed["custom_id"] == "p-1"
    assert failed["error"] is None
    assert failed["response"]["status_code"] == 429
    assert failed["response"]["body"]["error"]["message"] == "Slow down."
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}]
        )


async def test_batch_lines_get_the_request_checks(fake: FakeOpenAI, client: AsyncOpenAI) -> None:
    refused = _line("no-json", "nurse", response_format={"type": "json_object"})
    done = await _until(client, (await _submit(client, [refused])).id, "completed")
    assert done.output_file_id is None
    [failed] = await _results(client, done.error_file_id)
    assert failed["response"]["status_code"] == 400
    assert failed["response"]["body"]["error"]["param"] == "messages"
    assert fake.batch_requests == []  # refused before running, like a chat request


async def test_invalid_lines_fail_the_batch_at_validation(client: AsyncOpenAI) -> None:
    lines: list[Any] = [
        _line("a", "nurse"),
        _line("a", "baker"),
        {**_line("b", "nurse"), "url": "/v1/embeddings"},
        {**_line("c", "nurse"), "body": {"messages": []}},
    ]
    content = _jsonl(lines) + b"not json\n"
    uploaded = await client.files.create(file=("in.jsonl", content), purpose="batch")
    created = await client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    failed = await _until(client, created.id, "failed")
    assert failed.failed_at is not None
    assert failed.in_progress_at is None
    assert failed.errors is not None
    assert failed.errors.data is not None
    problems = [(error.line, error.code, error.param) for error in failed.errors.data]
    assert problems == [
        (2, "duplicate_custom_id", "custom_id"),
        (3, "invalid_url", "url"),
        (4, "missing_required_parameter", "body.model"),
        (5, "invalid_json_line", None),
    ]


async def test_fail_next_batch(fake: FakeOpenAI, client: AsyncOpenAI) -> None:
    fake.fail_next_batch(message="Enqueued token limit reached.")
    failed = await _until(client, (await _submit(client, _lines(2))).id, "failed")
    assert failed.errors is not None
    assert failed.errors.data is not None
    assert [error.message for error in failed.errors.data] == ["Enqueued token limit reached."]
    assert fake.batch_requests == []
    after = await _until(client, (await _submit(client, _lines(1))).id, "completed", "failed")
    assert after.status == "completed"  # only the next batch fails


async def test_hold_keeps_batches_in_progress_until_released(
    fake: FakeOpenAI, client: AsyncOpenAI
) -> None:
    fake.hold_batches()
    created = await _submit(client, _lines(2))
    await _until(client, created.id, "in_progress")
    await asyncio.sleep(STEP_S * 5)
    assert (await client.batches.retrieve(created.id)).status == "in_progress"
    assert fake.batch_requests == []
    fake.release_batches()
    done = await _until(client, created.id, "completed")
    assert done.request_counts is not None
    assert done.request_counts.completed == 2


async def test_cancel_answers_no_further_line(fake: FakeOpenAI, client: AsyncOpenAI) -> None:
    fake.hold_batches()
    created = await _submit(client, _lines(2))
    await _until(client, created.id, "in_progress")
    cancelling = await client.batches.cancel(created.id)
    assert cancelling.status == "cancelling"
    assert cancelling.cancelling_at is not None
    cancelled = await _until(client, created.id, "cancelled")
    assert cancelled.cancelled_at is not None
    assert cancelled.output_file_id is None
    assert cancelled.error_file_id is None
    assert fake.batch_requests == []
    with pytest.raises(openai.BadRequestError, match="cancelled"):
        await client.batches.cancel(created.id)


async def test_an_expiring_batch_answers_only_its_first_lines(
    fake: FakeOpenAI, client: AsyncOpenAI
) -> None:
    fake.expire_next_batch(answered=2)
    expired = await _until(client, (await _submit(client, _lines(4))).id, "expired")
    assert expired.expired_at is not None
    assert expired.completed_at is None
    assert expired.request_counts is not None
    assert (expired.request_counts.completed, expired.request_counts.failed) == (2, 2)
    answered = await _results(client, expired.output_file_id)
    assert [result["custom_id"] for result in answered] == ["p-0", "p-1"]
    unanswered = await _results(client, expired.error_file_id)
    assert [result["custom_id"] for result in unanswered] == ["p-2", "p-3"]
    assert unanswered[0]["response"] is None
    assert unanswered[0]["error"]["code"] == "batch_expired"
    assert len(fake.batch_requests) == 2


async def test_batches_are_listed_newest_first(client: AsyncOpenAI) -> None:
    ids = [(await _submit(client, _lines(1), n=str(index))).id for index in range(3)]
    page = await client.batches.list(limit=2)
    assert [batch.id for batch in page.data] == [ids[2], ids[1]]
    assert page.has_more
    rest = await client.batches.list(limit=2, after=ids[1])
    assert [batch.id for batch in rest.data] == [ids[0]]
    assert not rest.has_more
    assert [batch.id async for batch in client.batches.list(limit=1)] == ids[::-1]


async def test_batch_usage_counts_cached_tokens_when_caching_is_on() -> None:
    instructions = "Write realistic personas for product research. " * 120
    lines = [
        _line(f"p-{index}", "nurse", messages=[{"role": "system", "content": instructions}])
        for index in range(2)
    ]
    async with (
        FakeOpenAI(batch_step_s=STEP_S, prompt_cache_min_tokens=1024) as fake,
        AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as client,
    ):
        done = await _until(client, (await _submit(client, lines)).id, "completed")
        results = await _results(client, done.output_file_id)
    cached = [r["response"]["body"]["usage"]["prompt_tokens_details"] for r in results]
    assert cached[0]["cached_tokens"] == 0
    assert cached[1]["cached_tokens"] >= 1024
    assert done.usage is not None
    assert done.usage.input_tokens_details.cached_tokens == cached[1]["cached_tokens"]
