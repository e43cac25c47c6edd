import pytest

from tests.support.fake_time import FakeTime


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()
