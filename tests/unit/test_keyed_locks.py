"""Deliveries of one request run one after the other; other requests do not wait."""

import asyncio

from persona_worker.generation import KeyedLocks


async def test_one_key_at_a_time_other_keys_meanwhile() -> None:
    locks: KeyedLocks[str] = KeyedLocks()
    order: list[str] = []
    first_in = asyncio.Event()
    release = asyncio.Event()

    async def run(key: str, name: str, wait: bool) -> None:
        async with locks.hold(key):
            order.append(f"{name} in")
            if wait:
                first_in.set()
                await release.wait()
            order.append(f"{name} out")

    first = asyncio.create_task(run("a", "first", wait=True))
    await first_in.wait()
    copy = asyncio.create_task(run("a", "copy", wait=False))
    other = asyncio.create_task(run("b", "other", wait=False))
    await other
    assert order == ["first in", "other in", "other out"]  # "b" did not wait, the copy did
    release.set()
    await asyncio.gather(first, copy)
    assert order[3:] == ["first out", "copy in", "copy out"]
    assert len(locks) == 0  # nothing kept for keys nobody holds


async def test_a_cancelled_waiter_leaves_no_lock_behind() -> None:
    locks: KeyedLocks[str] = KeyedLocks()
    release = asyncio.Event()

    async def hold() -> None:
        async with locks.hold("a"):
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter.cancel()
    release.set()
    await holder
    await asyncio.gather(waiter, return_exceptions=True)
    assert len(locks) == 0
