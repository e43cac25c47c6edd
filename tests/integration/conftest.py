"""Fixtures shared by the integration tests: the API as a client, the fake OpenAI server."""

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from persona_api.app import create_app
from persona_infra.settings import Settings
from tests.support.fake_openai import FakeOpenAI
from tests.support.serve import serve


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API on ``settings``' servers, served on loopback, with a client for it."""
    async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fresh_fake(fake: FakeOpenAI) -> Iterator[None]:
    """A clean script and counters per test, and no request left running after it."""
    fake.reset()
    fake.latency = 0.0
    yield
    assert fake.wait_idle(), "a request was still running on the fake after the test"
