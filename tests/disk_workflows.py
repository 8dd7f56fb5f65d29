"""Workflows for the full-disk and device-error tests (tests/test_disk_full.py,
tests/test_device_errors.py), served by a real `runservice serve`, and those tests' shared steps."""

from __future__ import annotations

import asyncio
from pathlib import Path

from runservice.client import Client, RunHandle
from runservice.model import Run, RunStatus
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


async def start_gated(client: Client, gate: Path) -> tuple[RunHandle, RunHandle]:
    """Runs `gated-run`, started and waiting for `gate`, and `later-run`, created only."""
    gated_run = await client.get_workflow("gated").create_run(run_id="gated-run")
    later_run = await client.get_workflow("gated").create_run(run_id="later-run")
    await gated_run.start({"gate": str(gate)})
    for _ in range(200):
        if opened(waiting(gate)):
            return gated_run, later_run
        await asyncio.sleep(0.02)
    raise AssertionError("the gated step never started")


async def settled(client: Client, run_id: str) -> Run:
    """The `gated` run `run_id` once it is no longer running (a drive that waits through an
    outage doubles its waits up to 5 s; a restarted server re-drives it)."""
    for _ in range(200):
        run = await client.get_workflow("gated").run_by_id(run_id)
        if run.status is not RunStatus.RUNNING:
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} is still running")


async def assert_both_went_on(client: Client, later_run: RunHandle, gate: Path) -> None:
    """The Start of `later-run` refused before succeeds when retried with its request id, and
    `gated-run` ends `success` with a gap-free log."""
    started = await later_run.start_async({"gate": str(gate)}, request_id="later-start")
    assert started.status is RunStatus.SUCCESS and started.result == "passed gate"
    run = await settled(client, "gated-run")
    assert run.status is RunStatus.SUCCESS and run.result == "passed gate"
    gated_run = await client.get_workflow("gated").create_run(run_id="gated-run")  # the same run
    events = [event async for event in gated_run.watch_events()]
    assert [event.sequence for event in events] == list(range(1, len(events) + 1))
