"""A lock per key, alive only while someone holds or awaits it."""

from __future__ import annotations

import asyncio


class KeyedLock:
    """`async with locks(key):` serializes the holders of one key and no others.

    Unlike a fixed set of striped locks, two keys never share a lock, so a Start
    never waits for an unrelated run's commit.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def __call__(self, key: str) -> _Entry:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(self._entries, key)
        return entry

    def __len__(self) -> int:
        """Keys currently held or awaited."""
        return len(self._entries)


class _Entry:
    __slots__ = ("_entries", "_key", "_lock", "_users")

    def __init__(self, entries: dict[str, _Entry], key: str) -> None:
        self._entries = entries
        self._key = key
        self._lock = asyncio.Lock()
        self._users = 0

    async def __aenter__(self) -> None:
        self._users += 1
        try:
            await self._lock.acquire()
        except BaseException:
            self._leave()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()
        self._leave()

    def _leave(self) -> None:
        self._users -= 1
        if self._users == 0:
            del self._entries[self._key]
