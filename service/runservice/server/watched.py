"""Files the server reads again when they change: the TLS certificate and key, the tokens file.

A look compares the files' stamp (inode, size, modification and change times of each) with the
stamp they had when they were last read: one `stat` per file, cheap enough for every TLS
handshake. Files whose read failed are not read again until they change, so broken files cost
one log line rather than one per look (per handshake: a log flood); after `RETRY_AFTER` they
are read again anyway, for a change the stamp cannot see (two writes of one size within one
tick of the file system's clock).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import TypeAlias, TypeVar

T = TypeVar("T")

RETRY_AFTER = 60.0
"""Seconds after which files whose read failed are read again even if they look unchanged."""

Stamp: TypeAlias = tuple[tuple[int, int, int, int] | None, ...]
"""Per file: inode, size, mtime and ctime in ns, or None when it cannot be stat'ed."""


def stamp_of(paths: Iterable[str]) -> Stamp:
    """The files' stamp now; a missing file is part of it (None), not an error."""
    stamps: list[tuple[int, int, int, int] | None] = []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            stamps.append(None)
        else:
            # ctime too: a chmod that makes an unreadable file readable changes nothing else.
            stamps.append((info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns))
    return tuple(stamps)


class WatchedFiles:
    """When to read some files again: after they change, when asked, and never in a loop.

    The owner calls `due()` at each look and, when it gives a stamp, reads the files and
    reports with `read(stamp, ok=...)`. Not thread-safe: a caller on several threads holds a lock.
    """

    def __init__(self, paths: Iterable[str], *, stamp: Stamp | None = None, settle: bool = False) -> None:
        """`stamp`: the files' stamp taken just before they were first read (default: now).
        With `settle`, a change is read only at the look after the one that saw it, if the
        files kept that stamp in between: a look between an editor's truncate and its write,
        or between the writes of a long file, reads nothing."""
        self.paths = tuple(paths)
        self._stamp = stamp_of(self.paths) if stamp is None else stamp
        self._settle = settle
        self._seen: Stamp | None = None
        self._requested = False
        self._failed_at: float | None = None

    def request(self) -> None:
        """Read the files at the next look even if they look unchanged (SIGHUP)."""
        self._requested = True

    def due(self) -> Stamp | None:
        """The files' stamp if they are to be read now (take it before reading), else None."""
        stamp = stamp_of(self.paths)
        if self._requested:
            self._requested = False
            return stamp
        if stamp == self._stamp:
            self._seen = None
            failed_at = self._failed_at
            return stamp if failed_at is not None and time.monotonic() - failed_at >= RETRY_AFTER else None
        if self._settle and stamp != self._seen:
            self._seen = stamp
            return None
        return stamp

    @property
    def failing(self) -> bool:
        """Whether the last read failed (the owner still uses what it read before)."""
        return self._failed_at is not None

    def read(self, stamp: Stamp, *, ok: bool) -> None:
        """The files of `stamp` were read: `ok`, or they were refused (not read again until they
        change, or RETRY_AFTER has passed)."""
        self._stamp = stamp
        self._seen = None
        self._failed_at = None if ok else time.monotonic()


async def off_the_loop(read: Callable[[], T], name: str) -> T:
    """`read()` on a daemon thread of its own, awaited. A file on a network file system that
    hangs then blocks that thread only: not the event loop, and not the process's exit (the
    default executor's threads are joined at exit, a hung one for ever)."""
    answer: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        if not answer.set_running_or_notify_cancel():
            return  # its awaiter was cancelled before the thread started
        try:
            answer.set_result(read())
        except BaseException as exc:  # handed to the awaiter, raised there
            answer.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await asyncio.wrap_future(answer)
