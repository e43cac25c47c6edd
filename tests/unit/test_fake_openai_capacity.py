"""The fake's capacity mode: a server that sheds load with 429s once K calls are in flight.

Benchmarks use it to measure how a client copes with a hard concurrency limit, so
the fake must never answer more than K at once and must count what it refused.
"""

import asyncio

import openai
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from tests.support.fake_openai import FakeOpenAI, ok

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Occupation: nurse"}]


def _client(fake: FakeOpenAI) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)


async def _call(client: AsyncOpenAI) -> int | openai.RateLimitError:
    """One chat call: its status code, or the 429 it raised."""
    try:
        await client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    except openai.RateLimitError as error:
        return error
    return 200


async def _wave(fake: FakeOpenAI, calls: int) -> list[int | openai.RateLimitError]:
    async with _client(fake) as client:
        return list(await asyncio.gather(*(_call(client) for _ in range(calls))))


async def test_calls_over_capacity_are_refused_at_once_and_counted() -> None:
    async with FakeOpenAI(capacity=2, latency=0.3) as fake:
        started = asyncio.get_running_loop().time()
        results = await _wave(fake, 5)
        refused = [result for result in results if isinstance(result, openai.RateLimitError)]
        assert results.count(200) == 2
        assert len(refused) == 3
        assert fake.rejected_for_capacity == 3
        assert fake.calls == 5
        assert fake.max_in_flight == 2
        assert fake.in_flight == 0
        assert asyncio.get_running_loop().time() - started < 1.0  # nobody queued behind
    error = refused[0]
    assert error.code == "rate_limit_exceeded"
    assert isinstance(error.body, dict)
    assert error.body["type"] == "requests"
    assert "too many requests in flight" in error.body["message"]
    assert "retry-after" not in error.response.headers


async def test_capacity_rejections_are_recorded_as_replies_but_consume_no_script() -> None:
    async with FakeOpenAI(capacity=1, latency=0.3) as fake:
        fake.script(ok(content={"scripted": True}))
        await _wave(fake, 3)
        kinds = sorted(record.kind for record in fake.replies)
        assert kinds == ["capacity", "capacity", "ok"]
        assert {record.status_code for record in fake.replies if record.kind == "capacity"} == {429}
        assert len(fake.requests) == 1  # the refused bodies were never handled
        async with _client(fake) as client:
            completion = await client.chat.completions.create(model="gpt-test", messages=MESSAGES)
        assert "scripted" not in (completion.choices[0].message.content or "")


async def test_capacity_retry_after_is_sent_when_asked() -> None:
    async with FakeOpenAI(capacity=1, latency=0.3, capacity_retry_after=1.5) as fake:
        results = await _wave(fake, 2)
    refused = [result for result in results if isinstance(result, openai.RateLimitError)]
    assert [error.response.headers["retry-after"] for error in refused] == ["1.5"]


async def test_no_capacity_means_no_limit() -> None:
    async with FakeOpenAI(latency=0.2) as fake:
        assert await _wave(fake, 8) == [200] * 8
        assert fake.rejected_for_capacity == 0
        assert fake.max_in_flight == 8


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        FakeOpenAI(capacity=0)
