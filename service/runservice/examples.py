"""The bundled example workflows, served by `runservice serve` when no --workflows is given.

They are ordinary user code: they import only the authoring API (runservice.workflow),
so they double as a template for `my_app/workflows.py`.

- `city-weather`: a fake forecast for a city (no network), then activities that suit it.
- `human-approval`: drafts a proposal, suspends for a human decision, then notifies.
- `cancellable-report`: a long step that streams progress and stops cleanly on Cancel.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any, Literal

from pydantic import BaseModel, Field

from runservice.workflow import StepContext, Workflow, create_step, create_workflow

log = logging.getLogger(__name__)

# -- city-weather ------------------------------------------------------------------------------

CONDITIONS = ("sunny", "partly cloudy", "overcast", "rainy", "stormy", "snowy")

ACTIVITIES = {
    "sunny": "Morning: a walk in the old town. Afternoon: a picnic in the park. Evening: a terrace.",
    "partly cloudy": "Morning: a bike tour. Afternoon: the botanical garden. Evening: a rooftop bar.",
    "overcast": "Morning: the city museum. Afternoon: a market hall. Evening: a jazz club.",
    "rainy": "Morning: the art gallery. Afternoon: a cooking class. Evening: the cinema.",
    "stormy": "Stay in: a board-game café nearby, then a long dinner indoors.",
    "snowy": "Morning: a winter walk. Afternoon: hot chocolate in a café. Evening: a concert hall.",
}


class CityInput(BaseModel):
    city: str = Field(min_length=1, description="City name, for example 'Paris'")


class Forecast(BaseModel):
    city: str
    temperature_c: float = Field(description="Forecast temperature in degrees Celsius")
    conditions: str = Field(description="One of: " + ", ".join(CONDITIONS))


class Activities(BaseModel):
    activities: str


def fake_forecast(city: str) -> Forecast:
    """A deterministic forecast derived from the city name (same city, same weather)."""
    seed = hashlib.sha256(city.strip().lower().encode()).digest()
    temperature = round(-5 + seed[0] / 255 * 40, 1)
    if temperature < 2:
        likely: tuple[str, ...] = ("snowy", "overcast", "sunny")
    elif temperature > 26:
        likely = ("sunny", "partly cloudy", "stormy")
    else:
        likely = ("sunny", "partly cloudy", "overcast", "rainy", "stormy")
    return Forecast(city=city, temperature_c=temperature, conditions=likely[seed[1] % len(likely)])


@create_step(
    "fetch-weather",
    input_schema=CityInput,
    output_schema=Forecast,
    description="Fetch the forecast for a city (a deterministic fake: no network)",
)
async def fetch_weather(ctx: StepContext) -> Forecast:
    data = CityInput.model_validate(ctx.input_data)
    return fake_forecast(data.city)


@create_step(
    "plan-activities",
    input_schema=Forecast,
    output_schema=Activities,
    description="Suggest activities that suit the forecast",
)
async def plan_activities(ctx: StepContext) -> Activities:
    forecast = Forecast.model_validate(ctx.input_data)
    plan = ACTIVITIES.get(forecast.conditions, ACTIVITIES["overcast"])
    if forecast.temperature_c >= 28:
        plan += " Keep to the shade around midday."
    summary = f"{forecast.city}: {forecast.conditions}, {forecast.temperature_c} °C."
    return Activities(activities=f"{summary} {plan}")


city_weather = (
    create_workflow(
        "city-weather",
        input_schema=CityInput,
        output_schema=Activities,
        description="Forecast the weather for a city and plan activities for it",
    )
    .then(fetch_weather)
    .then(plan_activities)
    .commit()
)

# -- human-approval ----------------------------------------------------------------------------


class ApprovalRequest(BaseModel):
    amount: float = Field(gt=0, description="Amount requested")
    requester: str = Field(min_length=1)


class Proposal(BaseModel):
    amount: float
    requester: str
    summary: str


class ApprovalPrompt(BaseModel):
    """What the suspended step shows the approver (its suspend payload)."""

    reason: str
    amount: float


class Decision(BaseModel):
    """What the approver sends back with Resume (the resume data)."""

    approved: bool
    approver: str = Field(min_length=1)


class Outcome(BaseModel):
    status: Literal["approved", "rejected"]
    approver: str
    message: str


@create_step(
    "draft",
    input_schema=ApprovalRequest,
    output_schema=Proposal,
    description="Draft a proposal from the request",
)
async def draft(ctx: StepContext) -> Proposal:
    request = ApprovalRequest.model_validate(ctx.input_data)
    return Proposal(
        amount=request.amount,
        requester=request.requester,
        summary=f"{request.requester} requests {request.amount:.2f}",
    )


@create_step(
    "approve",
    input_schema=Proposal,
    output_schema=Decision,
    resume_schema=Decision,
    suspend_schema=ApprovalPrompt,
    description="Wait for a human to approve or reject the proposal (resume with {approved, approver})",
)
async def approve(ctx: StepContext) -> Any:
    proposal = Proposal.model_validate(ctx.input_data)
    if ctx.resume_data is None:
        await ctx.suspend({"reason": f"approval needed: {proposal.summary}", "amount": proposal.amount})
        return None
    decision = Decision.model_validate(ctx.resume_data)
    if not decision.approved:
        return ctx.bail(
            Outcome(
                status="rejected",
                approver=decision.approver,
                message=f"{proposal.summary}: rejected by {decision.approver}",
            )
        )
    return decision


@create_step(
    "notify",
    input_schema=Decision,
    output_schema=Outcome,
    description="Tell the requester the outcome",
)
async def notify(ctx: StepContext) -> Outcome:
    decision = Decision.model_validate(ctx.input_data)
    proposal = Proposal.model_validate(ctx.get_step_result("draft"))
    return Outcome(
        status="approved",
        approver=decision.approver,
        message=f"{proposal.summary}: approved by {decision.approver}; {proposal.requester} was notified",
    )


human_approval = (
    create_workflow(
        "human-approval",
        input_schema=ApprovalRequest,
        output_schema=Outcome,
        description="Draft a proposal, suspend until a human approves or rejects it, then notify",
    )
    .then(draft)
    .then(approve)
    .then(notify)
    .commit()
)

# -- cancellable-report ------------------------------------------------------------------------

TICK = 0.1
"""Seconds between checks of the abort signal."""


class ReportRequest(BaseModel):
    title: str = "quarterly report"
    seconds: float = Field(default=30.0, ge=0, le=3600, description="How long the report takes")
    chunks: int = Field(default=30, ge=1, le=1000, description="How many progress chunks to write")


class Report(BaseModel):
    title: str
    chunks_written: int
    seconds: float


class ReportCanceled(Exception):
    """Raised by the report step when it sees the abort signal."""


@create_step(
    "generate",
    input_schema=ReportRequest,
    output_schema=Report,
    description="Build a report slowly, writing progress chunks; stops as soon as the run is canceled",
)
async def generate(ctx: StepContext) -> Report:
    request = ReportRequest.model_validate(ctx.input_data)
    loop = asyncio.get_running_loop()
    started = loop.time()
    written = 0
    try:
        for index in range(1, request.chunks + 1):
            due = started + request.seconds * index / request.chunks
            while (left := due - loop.time()) > 0:
                if ctx.abort_signal.is_set():
                    raise ReportCanceled(f"{request.title!r} canceled after {written} chunks")
                await asyncio.sleep(min(TICK, left))
            await ctx.writer.write(
                {"chunk": index, "of": request.chunks, "percent": round(100 * index / request.chunks)}
            )
            written = index
        return Report(title=request.title, chunks_written=written, seconds=round(loop.time() - started, 3))
    finally:
        # Runs on success, on error and when Cancel cancels this task: release what the step holds.
        log.info("report %r: cleaned up after %d of %d chunks", request.title, written, request.chunks)


cancellable_report = (
    create_workflow(
        "cancellable-report",
        input_schema=ReportRequest,
        output_schema=Report,
        description="A slow report that streams progress; Cancel stops it mid-way",
    )
    .then(generate)
    .commit()
)

# -- order-fulfilment: parallel, branch, a loop and foreach in one graph ----------------------------


class Order(BaseModel):
    order_id: str
    items: list[str] = Field(min_length=1)
    express: bool = False


class Line(BaseModel):
    item: str
    order_id: str


class Picked(BaseModel):
    item: str
    shelf: int


class Shipment(BaseModel):
    parcels: int
    carrier: str = ""
    attempts: int = 0


@create_step("check-stock", input_schema=Order, description="Confirm every item is in stock")
async def check_stock(ctx: StepContext) -> dict[str, Any]:
    return {"in_stock": True, "items": len(ctx.input_data.items)}


@create_step("check-fraud", input_schema=Order, description="Score the order for fraud")
async def check_fraud(ctx: StepContext) -> dict[str, Any]:
    return {"score": int(hashlib.sha256(ctx.input_data.order_id.encode()).hexdigest(), 16) % 10}


@create_step("pick-item", input_schema=Line, output_schema=Picked, description="Pick one item from its shelf")
async def pick_item(ctx: StepContext) -> Picked:
    await asyncio.sleep(0.05)
    return Picked(
        item=ctx.input_data.item, shelf=int(hashlib.sha256(ctx.input_data.item.encode()).hexdigest(), 16) % 40
    )


@create_step(
    "book-express", input_schema=Shipment, output_schema=Shipment, description="Book an express courier"
)
async def book_express(ctx: StepContext) -> Shipment:
    return Shipment(parcels=ctx.input_data.parcels, carrier="express")


@create_step("book-standard", input_schema=Shipment, output_schema=Shipment, description="Book the post")
async def book_standard(ctx: StepContext) -> Shipment:
    return Shipment(parcels=ctx.input_data.parcels, carrier="standard")


@create_step(
    "confirm-pickup", input_schema=Shipment, output_schema=Shipment, description="Ask the carrier to confirm"
)
async def confirm_pickup(ctx: StepContext) -> Shipment:
    await asyncio.sleep(0.05)
    return Shipment(
        parcels=ctx.input_data.parcels, carrier=ctx.input_data.carrier, attempts=ctx.input_data.attempts + 1
    )


def _lines(ctx: Any) -> list[dict[str, str]]:
    order = ctx.get_init_data()
    return [{"item": item, "order_id": order["order_id"]} for item in order["items"]]


def _shipment(ctx: Any) -> dict[str, int]:
    return {"parcels": len(ctx.input_data)}


def is_express(ctx: Any) -> bool:
    return bool(ctx.get_init_data().get("express"))


def is_standard(ctx: Any) -> bool:
    return not ctx.get_init_data().get("express")


def confirmed(ctx: Any) -> bool:
    return bool(ctx.iteration_count >= 2)


def _booked(ctx: Any) -> Any:
    return next(iter(ctx.input_data.values()))


order_fulfilment = (
    create_workflow(
        "order-fulfilment",
        input_schema=Order,
        output_schema=Shipment,
        description="Checks an order in parallel, picks each item (foreach), books a carrier (branch) "
        "and polls it until the pickup is confirmed (loop)",
    )
    .parallel([check_stock, check_fraud])
    .map(_lines, id="order-lines")
    .foreach(pick_item, concurrency=2)
    .map(_shipment, id="shipment")
    .branch([(is_express, book_express), (is_standard, book_standard)])
    .map(_booked, id="booked")
    .dountil(confirm_pickup, confirmed)
    .commit()
)

WORKFLOWS: list[Workflow] = [city_weather, human_approval, cancellable_report, order_fulfilment]
