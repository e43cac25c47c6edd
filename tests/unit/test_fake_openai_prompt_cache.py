"""The fake's prompt caching, which shows whether a client orders its prompt for the cache.

OpenAI bills a prompt prefix it has seen recently as cached tokens (in 128-token
steps, from 1024 tokens on); the fake does the same when asked, so a client that
puts its constant instructions first is seen to earn cached tokens.
"""

from collections.abc import AsyncIterator

import openai
import pytest
from openai import AsyncOpenAI
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletionMessageParam

from tests.support.fake_openai import FakeOpenAI, ok, status
from tests.support.fake_openai.prompt_cache import PromptCache

INSTRUCTIONS = "You write realistic personas for product research. " * 120  # ~1500 tokens


def _messages(first: str, second: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "system", "content": first}, {"role": "user", "content": second}]


async def _usage(fake: FakeOpenAI, messages: list[ChatCompletionMessageParam]) -> CompletionUsage:
    async with AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as client:
        completion = await client.chat.completions.create(model="gpt-test", messages=messages)
    assert completion.usage is not None
    return completion.usage


def _cached(usage: CompletionUsage) -> int:
    assert usage.prompt_tokens_details is not None
    return usage.prompt_tokens_details.cached_tokens or 0


@pytest.fixture
async def caching() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(prompt_cache_min_tokens=1024) as fake:
        yield fake


async def test_constant_prefix_first_earns_cached_tokens(caching: FakeOpenAI) -> None:
    first = await _usage(caching, _messages(INSTRUCTIONS, "Occupation: nurse"))
    second = await _usage(caching, _messages(INSTRUCTIONS, "Occupation: baker"))
    assert _cached(first) == 0  # nothing seen yet
    cached = _cached(second)
    assert cached >= 1024
    assert cached % 128 == 0
    assert cached <= second.prompt_tokens


async def test_varying_part_first_earns_none(caching: FakeOpenAI) -> None:
    await _usage(caching, _messages("Persona 1 of 2, Occupation: nurse.", INSTRUCTIONS))
    second = await _usage(caching, _messages("Persona 2 of 2, Occupation: baker.", INSTRUCTIONS))
    assert _cached(second) == 0


async def test_shared_prefix_below_the_minimum_earns_none() -> None:
    short = INSTRUCTIONS[:3600]  # ~900 tokens in common
    async with FakeOpenAI(prompt_cache_min_tokens=1024) as fake:
        await _usage(fake, _messages(short, "Occupation: nurse"))
        assert _cached(await _usage(fake, _messages(short, "Occupation: baker"))) == 0
    async with FakeOpenAI(prompt_cache_min_tokens=512) as fake:
        await _usage(fake, _messages(short, "Occupation: nurse"))
        assert _cached(await _usage(fake, _messages(short, "Occupation: baker"))) == 896


async def test_scripted_errors_do_not_fill_the_cache(caching: FakeOpenAI) -> None:
    caching.script(status(500), ok())
    async with AsyncOpenAI(base_url=caching.base_url, api_key="k", max_retries=0) as client:
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(
                model="gpt-test", messages=_messages(INSTRUCTIONS, "a")
            )
    assert _cached(await _usage(caching, _messages(INSTRUCTIONS, "b"))) == 0


async def test_caching_is_off_by_default() -> None:
    async with FakeOpenAI() as fake:
        await _usage(fake, _messages(INSTRUCTIONS, "Occupation: nurse"))
        usage = await _usage(fake, _messages(INSTRUCTIONS, "Occupation: baker"))
    assert usage.prompt_tokens_details is None


def test_only_the_last_256_prompts_count() -> None:
    cache = PromptCache(min_tokens=1024)
    prompt = "x" * 8192
    assert cache.cached_tokens(prompt, 2048) == 0
    assert cache.cached_tokens(prompt, 2048) == 2048
    for index in range(256):
        cache.cached_tokens(f"{index:04d}" + prompt, 2048)
    assert cache.cached_tokens(prompt, 2048) == 0
