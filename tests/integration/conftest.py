"""Fixtures shared by the tests that talk to the fake OpenAI-compatible server."""

from collections.abc import Iterator

import pytest

from tests.support.fake_openai import FakeOpenAI


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
