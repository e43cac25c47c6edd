"""Verifying presented keys under a flood of unknown ones: one verification per key and
per process, and each client's share of the verifications bounded, so a valid key is
never held up."""

import asyncio
import threading
from collections.abc import Iterator

import pytest

from persona_api import key_ring as verification
from persona_api.key_ring import KeyRing, VerificationBusyError
from persona_infra.api_keys import (
    KeyEntry,
    Role,
)
from tests.support.keys import KEY, ring


class HeldMatch:
    """``KeyRing.match`` held until released, counting the calls (each one an scrypt run)."""

    def __init__(self, keys: KeyRing) -> None:
        self.real = keys.match
        self.calls = 0
        self.release = threading.Event()

    def __call__(self, presented: str) -> KeyEntry | None:
        self.calls += 1
        self.release.wait(10)
        return self.real(presented)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[KeyRing, HeldMatch]]:
    keys = ring(writer=(Role.WRITER, KEY))
    match = HeldMatch(keys)
    monkeypatch.setattr(keys, "match", match)
    yield keys, match
    match.release.set()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_requests_with_the_same_key_share_one_verification(
    held: tuple[KeyRing, HeldMatch],
) -> None:
    keys, match = held
    first = [asyncio.create_task(keys.verify(KEY, "10.0.0.1")) for _ in range(20)]
    await settle()
    first[0].cancel()  # a client leaving early does not cancel the others' verification
    match.release.set()
    results = await asyncio.gather(*first[1:])
    assert {(p.name, p.role) for p in results if p} == {("writer", Role.WRITER)}
    assert len(results) == 19
    assert match.calls == 1


async def test_one_client_has_at_most_its_share_of_unknown_keys_in_verification(
    held: tuple[KeyRing, HeldMatch],
) -> None:
    keys, match = held
    flood = [asyncio.create_task(keys.verify(f"random-key-{i:06}", "10.0.0.1")) for i in range(2)]
    await settle()
    with pytest.raises(VerificationBusyError):
        await keys.verify("random-key-000002", "10.0.0.1")
    valid = asyncio.create_task(keys.verify(KEY, "10.0.0.2"))  # another client is admitted
    await settle()
    match.release.set()
    assert await asyncio.gather(*flood) == [None, None]
    principal = await valid
    assert principal is not None
    assert principal.name == "writer"
    assert await keys.verify("random-key-000003", "10.0.0.1") is None  # its share is back


async def test_unknown_keys_in_verification_are_bounded_in_all(
    held: tuple[KeyRing, HeldMatch], monkeypatch: pytest.MonkeyPatch
) -> None:
    keys, match = held
    monkeypatch.setattr(verification, "MAX_PENDING_VERIFICATIONS", 3)
    pending = [
        asyncio.create_task(keys.verify(f"random-key-{i:06}", f"10.0.0.{i}")) for i in range(3)
    ]
    await settle()
    with pytest.raises(VerificationBusyError):
        await keys.verify("random-key-000099", "10.0.0.99")
    with pytest.raises(VerificationBusyError):
        await keys.verify("random-key-000098")  # without a client, the total still applies
    match.release.set()
    assert await asyncio.gather(*pending) == [None, None, None]
    assert await keys.verify("random-key-000001", "10.0.0.1") is None  # cached: no scrypt
    assert match.calls == 3
