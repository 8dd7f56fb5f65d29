"""Workflows the benchmark runs (served with `runservice serve --workflows bench.workflows`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from runservice.workflow import StepContext, Workflow, create_step, create_workflow


class Number(BaseModel):
    value: float


async def _add_one(ctx: StepContext) -> Number:
    return Number(value=Number.model_validate(ctx.input_data).value + 1)


add_a = create_step("add-a", input_schema=Number, output_schema=Number, execute=_add_one)
add_b = create_step("add-b", input_schema=Number, output_schema=Number, execute=_add_one)
add_c = create_step("add-c", input_schema=Number, output_schema=Number, execute=_add_one)

three_steps = (
    create_workflow(
        "bench-three-steps",
        input_schema=Number,
        output_schema=Number,
        description="Three trivial steps, each adding 1",
    )
    .then(add_a)
    .then(add_b)
    .then(add_c)
    .commit()
)


class Approval(BaseModel):
    ok: bool


@create_step("wait-for-ok", input_schema=Number, output_schema=Number, resume_schema=Approval)
async def wait_for_ok(ctx: StepContext) -> Any:
    """Suspend once; on resume, return the input plus one."""
    if ctx.resume_data is None:
        await ctx.suspend({"waiting": True})
        return None
    return Number(value=Number.model_validate(ctx.input_data).value + 1)


suspend_once = (
    create_workflow(
        "bench-suspend",
        input_schema=Number,
        output_schema=Number,
        description="One step that suspends until resumed",
    )
    .then(wait_for_ok)
    .commit()
)


class Chunks(BaseModel):
    count: int


@create_step("write-chunks", input_schema=Chunks, output_schema=Chunks)
async def write_chunks(ctx: StepContext) -> Chunks:
    """One event per chunk (each `writer.write` is its own commit)."""
    count = Chunks.model_validate(ctx.input_data).count
    for index in range(count):
        await ctx.writer.write({"chunk": index})
    return Chunks(count=count)


chatty = (
    create_workflow(
        "bench-chatty",
        input_schema=Chunks,
        output_schema=Chunks,
        description="One step writing `count` output chunks, for Watch fan-out",
    )
    .then(write_chunks)
    .commit()
)


WORKFLOWS: list[Workflow] = [three_steps, suspend_once, chatty]


async def _square(ctx: StepContext) -> Any:
    return ctx.input_data * ctx.input_data


square_item = create_step("square-item", execute=_square)

foreach_one = (
    create_workflow("bench-foreach", description="A trivial step over every item, one at a time")
    .foreach(square_item)
    .commit()
)

WORKFLOWS.append(foreach_one)
