"""CPU per run of workflows that carry a large state through steps that do not touch it.

`python -m bench.state [--kb 32] [--runs 200] [--rounds 5] [--workflow set|initial]`
(the tree under test on PYTHONPATH). In process, a scratch SQLite store (synchronous=FULL),
one run at a time, started with `wait`:
- set: the first step sets `--kb` KB of state, five more steps pass their input on;
- initial: the run starts with `--kb` KB of initial_state, six steps pass their input on.
Prints process CPU per run (median of rounds, and the range).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import time
from typing import Any

import uvloop

from bench.inprocess import scratch_store
from runservice.engine import Engine
from runservice.model import RunStatus
from runservice.workflow import StepContext, create_step, create_workflow

KB = 32


def big_state() -> dict[str, Any]:
    docs = []
    size = 0
    i = 0
    while size < KB * 1024:
        doc = {"id": i, "title": f"document {i}", "text": "lorem ipsum dolor sit amet " * 3, "score": i * 0.5}
        docs.append(doc)
        size += 130
        i += 1
    return {"docs": docs, "cursor": 0}


async def _set(ctx: StepContext) -> Any:
    ctx.set_state(big_state())
    return ctx.input_data


async def _pass(ctx: StepContext) -> Any:
    return ctx.input_data


def _workflow(name: str, first: Any) -> Any:
    builder = create_workflow(name).then(create_step("s0", execute=first))
    for n in range(1, 6):
        builder = builder.then(create_step(f"s{n}", execute=_pass))
    return builder.commit()


WORKFLOWS = [_workflow("carry-set", _set), _workflow("carry-initial", _pass)]


async def measure(runs: int, workflow: str) -> float:
    async with scratch_store("full", None) as store:
        await store.open()
        try:
            async with Engine(
                store, WORKFLOWS, heartbeat=3600.0, lease_seconds=21600.0, claim_interval=3600.0
            ) as engine:
                initial = big_state() if workflow == "initial" else None

                async def one() -> None:
                    run = await engine.start(
                        f"carry-{workflow}", input_data={"value": 1}, initial_state=initial, wait=True
                    )
                    if run.status is not RunStatus.SUCCESS:
                        raise RuntimeError(f"{run.run_id}: {run.status} {run.error}")

                for _ in range(20):
                    await one()
                gc.collect()
                gc.freeze()
                start = time.process_time()
                for _ in range(runs):
                    await one()
                return (time.process_time() - start) / runs
        finally:
            await store.close()


def main() -> int:
    global KB
    if os.environ.get("UNDER_CALLGRIND"):  # as bench/instructions.py: nothing driven by clocks
        from runservice.engine import outbox
        from runservice.storage import sqlite

        outbox.START_FLUSH_DELAY = 3600.0
        sqlite._LOOP_SYNC_LIMIT = float("inf")
        sqlite._CHECKPOINT_INTERVAL = 3600.0
    parser = argparse.ArgumentParser()
    parser.add_argument("--kb", type=int, default=32)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workflow", choices=("set", "initial"), default="set")
    args = parser.parse_args()
    KB = args.kb
    figures = []
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        for _ in range(args.rounds):
            figures.append(runner.run(measure(args.runs, args.workflow)) * 1e6)
    print(
        f"{args.workflow} {args.kb} KB: {statistics.median(figures):,.0f} us CPU/run"
        f" ({min(figures):,.0f}-{max(figures):,.0f}) over {args.rounds} rounds of {args.runs}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
