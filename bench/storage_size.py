"""`python -m bench.storage_size [--mb 1]`: bytes on disk for one run with a large input.

Runs one run of a 3-step pass-through workflow (each step returns its input) with an
input of `--mb` MB (one string) on a fresh SQLite store, closes it (the WAL is
checkpointed into the file) and prints the database file's growth over the same run
with a tiny input. Without de-duplication the value is stored once per copy: run input,
each step's payload and output (in its record and in its events), the result.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from runservice.engine import Engine
from runservice.storage.sqlite import SqliteStore
from runservice.workflow import StepContext, create_step, create_workflow


def _step(step_id: str) -> Any:
    @create_step(step_id)
    async def passthrough(ctx: StepContext) -> Any:
        return ctx.input_data

    return passthrough


PASS3 = create_workflow("pass3").then(_step("one")).then(_step("two")).then(_step("three")).commit()


async def file_size(tmp: str, name: str, data: Any) -> int:
    path = str(Path(tmp) / f"{name}.db")
    store = SqliteStore(path)
    await store.open()
    try:
        async with Engine(store, [PASS3]) as engine:
            run = await engine.start(workflow_id="pass3", input_data=data, wait=True)
            assert run.status.value == "success", run
            assert run.result == data
            again = await engine.get_run(run.run_id)
            assert [step.output == data for step in again.steps] == [True, True, True]
    finally:
        await store.close()
    return _file_size(path)


def _file_size(path: str) -> int:
    """The database file's size; closing the store checkpointed the WAL into it."""
    wal = f"{path}-wal"
    assert not os.path.exists(wal) or os.path.getsize(wal) == 0
    return os.path.getsize(path)


async def run(megabytes: float) -> int:
    data = {"blob": "x" * int(megabytes * 1_000_000)}
    with tempfile.TemporaryDirectory() as tmp:
        small = await file_size(tmp, "small", {"blob": "x"})
        large = await file_size(tmp, "large", data)
    grown = large - small
    print(f"input: {len(data['blob']):,} bytes through 3 pass-through steps")
    print(f"database file: {large:,} bytes; a tiny-input run: {small:,} bytes")
    print(f"bytes on disk for the large value: {grown:,} ({grown / len(data['blob']):.2f} x the input)")
    return 0


def main(argv: list[str] | None = None) -> int:
    about = __doc__.split("\n\n")[1]
    parser = argparse.ArgumentParser(prog="python -m bench.storage_size", description=about)
    parser.add_argument("--mb", type=float, default=1.0, help="input size in MB (default 1)")
    args = parser.parse_args(argv)
    return asyncio.run(run(args.mb))


if __name__ == "__main__":
    sys.exit(main())
