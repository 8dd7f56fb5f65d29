"""KeyedLock: one lock per key, forgotten once nobody holds or awaits it."""

from __future__ import annotations

import asyncio

import pytest

from runservice.engine.locks import KeyedLock


async def test_same_key_serializes_other_keys_do_not_wait() -> None:
    locks = KeyedLock()
    order: list[str] = []
    release = asyncio.Event()

    async def hold(key: str, name: str) -> None:
        async with locks(key):
            order.append(f"{name} in")
            if name == "first":
                await release.wait()
            order.append(f"{name} out")

    first = asyncio.create_task(hold("run-1", "first"))
    await asyncio.sleep(0)
    second = asyncio.create_task(hold("run-1", "second"))
    other = asyncio.create_task(hold("run-2", "other"))
    await other  # a different key goes through while run-1 is held
    assert order == ["first in", "other in", "other out"]
    release.set()
    await asyncio.gather(first, second)
    assert order[3:] == ["first out", "second in", "second out"]
    assert len(locks) == 0


async def test_cancelled_waiter_leaves_no_entry_behind() -> None:
    locks = KeyedLock()
    release = asyncio.Event()

    async def hold() -> None:
        async with locks("run-1"):
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    release.set()
    await holder
    assert len(locks) == 0
