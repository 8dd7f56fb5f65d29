"""Versions of one workflow for the rolling-deploy test (tests/test_versions.py), served by
real processes: VERSIONED_WORKFLOWS="1,2" serves version 1 and 2 (the last is newest)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from runservice import StepContext, create_step, create_workflow


@create_step("slow")
async def slow(ctx: StepContext) -> dict[str, Any]:
    await asyncio.sleep(float(ctx.input_data["seconds"]))
    return {}


def finish(version: str) -> Any:
    @create_step(f"finish_v{version}")
    async def body(ctx: StepContext) -> dict[str, Any]:
        return {"by": version, "pid": os.getpid()}

    return body


WORKFLOWS = [
    create_workflow("deployed", version=version).then(slow).then(finish(version)).commit()
    for version in os.environ.get("VERSIONED_WORKFLOWS", "1").split(",")
]
