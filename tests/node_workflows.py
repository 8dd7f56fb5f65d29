"""The workflow of the Node.js client's tests against a server process they kill, restart and
pause (clients/node/test/process.test.ts): `runservice serve --workflows tests.node_workflows`."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

from runservice.workflow import StepContext, create_step, create_workflow


class Seconds(BaseModel):
    seconds: float


@create_step("nap", input_schema=Seconds, output_schema=Seconds)
async def nap(ctx: StepContext) -> Seconds:
    """Long enough for a test to stop the server while a call waits for the run."""
    await asyncio.sleep(ctx.input_data.seconds)
    return Seconds(seconds=ctx.input_data.seconds)


napping = create_workflow("nap", input_schema=Seconds, output_schema=Seconds).then(nap).commit()

WORKFLOWS = [napping]
