"""Workflows for the multi-replica tests (tests/test_replicas.py), served by real processes.

Every body records each execution (run id, step, pid, phase) in a side SQLite file named by
the REPLICA_SIDE_DB environment variable, so a test can tell which process ran what, and
how often, across kills and pauses.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from typing import Any

from runservice import StepContext, create_step, create_workflow


def record(ctx: StepContext, step: str, phase: str) -> None:
    path = os.environ.get("REPLICA_SIDE_DB")
    if not path:
        return
    conn = sqlite3.connect(path, timeout=30)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS ran (run_id TEXT, step TEXT, pid INTEGER, phase TEXT, at REAL)"
        )
        conn.execute(
            "INSERT INTO ran VALUES (?, ?, ?, ?, ?)", (ctx.run_id, step, os.getpid(), phase, time.time())
        )
        conn.commit()
    finally:
        conn.close()


@create_step("first")
async def first(ctx: StepContext) -> dict[str, Any]:
    record(ctx, "first", "done")
    return {"seconds": float(ctx.input_data.get("seconds", 1.0)), "n": int(ctx.input_data.get("n", 0))}


@create_step("slow")
async def slow(ctx: StepContext) -> dict[str, Any]:
    record(ctx, "slow", "start")
    try:
        await asyncio.sleep(float(ctx.input_data["seconds"]))
    except asyncio.CancelledError:
        record(ctx, "slow", "cancelled")
        raise
    record(ctx, "slow", "done")
    return {"n": ctx.input_data["n"] + 1}


@create_step("last")
async def last(ctx: StepContext) -> dict[str, Any]:
    record(ctx, "last", "done")
    return {"n": ctx.input_data["n"] * 10}


relay = create_workflow("relay").then(first).then(slow).then(last).commit()


@create_step("ask")
async def ask(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        await ctx.suspend({"question": "go on?"})
        return None
    record(ctx, "ask", "done")
    return {"answer": ctx.resume_data}


asker = create_workflow("asker").then(ask).commit()


@create_step("reporting")
async def reporting(ctx: StepContext) -> Any:
    """Writes progress as best effort: a failed write is noted and the work goes on (a body
    that catches Exception around its writes, as many do)."""
    try:
        for chunk in range(200):
            await asyncio.sleep(0.2)
            try:
                await ctx.writer.write({"chunk": chunk})
            except Exception as exc:
                record(ctx, "reporting", f"write failed: {type(exc).__name__}")
            record(ctx, "reporting", f"chunk {chunk}")
        return {"chunks": 200}
    except asyncio.CancelledError:
        record(ctx, "reporting", f"cancelled, abort {'set' if ctx.abort_signal.is_set() else 'unset'}")
        raise


reporter = create_workflow("reporter").then(reporting).then(last).commit()

WORKFLOWS = [relay, asker, reporter]
