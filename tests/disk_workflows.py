"""Workflows for the full-disk test (tests/test_disk_full.py), served by a real `runservice serve`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from runservice.workflow import StepContext, create_step, create_workflow


def waiting(gate: Path) -> Path:
    """The file the gated step makes when it starts to wait for `gate`."""
    return gate.with_name(f"{gate.name}.waiting")


def opened(gate: Path) -> bool:  # a stat: too short to leave the loop for
    return gate.exists()


@create_step("wait-for-gate")
async def wait_for_gate(ctx: StepContext) -> str:
    """Notes that it started (`waiting(gate)`), then waits until the file `gate` exists."""
    gate = Path(ctx.input_data["gate"])
    waiting(gate).touch()
    while not opened(gate):
        await asyncio.sleep(0.02)
    return gate.name


@create_step("finish")
async def finish(ctx: StepContext) -> str:
    return f"passed {ctx.input_data}"


gated = create_workflow("gated").then(wait_for_gate).then(finish).commit()
"""Returns "passed <gate's name>" once the gate file exists."""
