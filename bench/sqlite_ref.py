"""Reference B, the storage ceiling: a bare aiosqlite commit loop (WAL, synchronous=FULL)."""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from bench.load import LoadResult

ROW = json.dumps({"type": "workflow-step-result", "step": {"path": ["add-a"], "output": {"value": 2}}})


@dataclass
class SqliteResults:
    single: LoadResult
    """One row per commit: `rate` is commits/s."""
    batched: LoadResult
    """`rows_per_commit` rows per commit: `rate` is commits/s, `rows_rate` rows/s."""
    rows_per_commit: int

    @property
    def rows_rate(self) -> float:
        return self.batched.rate * self.rows_per_commit


async def _commit_loop(
    db: aiosqlite.Connection, *, commits: int, rows: int, max_seconds: float
) -> LoadResult:
    result = LoadResult()
    started = time.perf_counter()
    deadline = started + max_seconds
    sequence = 0
    while result.done < commits and time.perf_counter() < deadline:
        batch = []
        for _ in range(rows):
            sequence += 1
            batch.append((f"run-{sequence % 997}", sequence, ROW))
        await db.executemany("INSERT INTO events (run_id, sequence, data) VALUES (?, ?, ?)", batch)
        await db.commit()
        result.done += 1
    result.elapsed = time.perf_counter() - started
    return result


async def measure(
    *, commits: int, batched_commits: int, rows_per_commit: int, max_seconds: float
) -> SqliteResults:
    """Commits/s with one row per commit and rows/s with `rows_per_commit`, on a temporary file."""
    with tempfile.TemporaryDirectory(prefix="runservice-bench-") as tmp:
        async with aiosqlite.connect(Path(tmp) / "bench.db") as db:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=FULL")
            await db.execute(
                "CREATE TABLE events (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL,"
                " sequence INTEGER NOT NULL, data TEXT NOT NULL)"
            )
            await db.commit()
            await _commit_loop(db, commits=50, rows=1, max_seconds=5)  # warm up
            single = await _commit_loop(db, commits=commits, rows=1, max_seconds=max_seconds)
            batched = await _commit_loop(
                db, commits=batched_commits, rows=rows_per_commit, max_seconds=max_seconds
            )
    return SqliteResults(single, batched, rows_per_commit)
