"""Small workflows for the gRPC edge tests.

Served in-process by conftest and by `runservice serve --workflows tests.workflows`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from runservice.workflow import StepContext, clone_step, create_step, create_workflow


class Count(BaseModel):
    count: int


class Question(BaseModel):
    question: str


class Decision(BaseModel):
    approved: bool


class Verdict(BaseModel):
    verdict: str


@create_step("bump", input_schema=Count, output_schema=Count, description="Adds one")
async def bump(ctx: StepContext) -> Count:
    return Count(count=ctx.input_data.count + 1)


@create_step(
    "ask", input_schema=Count, output_schema=Decision, suspend_schema=Question, resume_schema=Decision
)
async def ask(ctx: StepContext) -> Any:
    """Suspends until a decision comes in."""
    if ctx.resume_data is None:
        await ctx.suspend({"question": f"approve {ctx.input_data.count}?"})
        return None
    return ctx.resume_data


@create_step("report", input_schema=Decision, output_schema=Verdict)
async def report(ctx: StepContext) -> Verdict:
    return Verdict(verdict="approved" if ctx.input_data.approved else "rejected")


@create_step("double", input_schema=Count, output_schema=Count)
async def double(ctx: StepContext) -> Count:
    return Count(count=ctx.input_data.count * 2)


@create_step("triple", input_schema=Count, output_schema=Count)
async def triple(ctx: StepContext) -> Count:
    return Count(count=ctx.input_data.count * 3)


echo = (
    create_workflow("echo", input_schema=Count, output_schema=Count, description="Adds one to a count")
    .then(bump)
    .commit()
)

approval = (
    create_workflow("approval", input_schema=Count, output_schema=Verdict, description="Asks a human")
    .then(bump)
    .then(ask)
    .then(report)
    .commit()
)

inner = (
    create_workflow("inner", input_schema=Count, output_schema=Count)
    .then(clone_step(bump, id="inner-bump"))
    .commit()
)

shapes = (
    create_workflow("shapes", input_schema=Count, description="Every kind of graph node the tests look at")
    .then(inner)
    .parallel([double, triple])
    .sleep(0.01)
    .map({"total": {"value": 1}})
    .commit()
)

WORKFLOWS = [echo, approval, shapes]
