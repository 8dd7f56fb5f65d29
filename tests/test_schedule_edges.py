"""Cron schedules at their edges, through the real server on both backends: a tick or a trigger
whose derived run id a caller took first, an hour of late ticks, a tick buffered before a pause
or a change of overlap. (The other schedule tests: tests/test_schedules.py.)"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import ServingFactory
from test_schedules import _resume, asking, scheduled_runs, ticking, until

from runservice.client import Client
from runservice.engine import schedules as schedules_module
from runservice.engine.schedules import tick_run_id, trigger_run_id
from runservice.errors import AlreadyExists
from runservice.model import RunStatus
from runservice.workflow.schedule import next_tick, previous_tick

pytestmark = pytest.mark.timeout(60)

SCHEDULES = "runservice.engine.schedules"
YEARLY = "0 0 1 1 *"  # no cron tick during a test: only triggers fire


async def test_a_tick_whose_run_id_a_caller_took_is_passed_over(
    serving: ServingFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Anyone can derive a tick's run id. A run made with it before the tick made the tick's
    transaction roll back as "lost": the schedule stayed due at that tick, tried it again every
    claim interval and never fired again, even after a restart (schedules audit)."""
    caplog.set_level(logging.INFO, SCHEDULES)
    ran: Counter[str] = Counter()
    workflow = ticking("squat", ran)
    async with (
        serving(tmp_path / "runs.db", workflows=[workflow]) as served,
        Client(served.address) as client,
    ):
        schedule = await client.schedules.get("squat")
        assert schedule.next_tick is not None
        target = next_tick(schedule.cron, schedule.timezone, schedule.next_tick + 1)  # 2 ticks ahead
        squatted = tick_run_id("squat", target)
        await client.get_workflow(workflow.id).create_run(run_id=squatted)
        assert time.time() < target, "the run was made after its tick"

        async def past_it() -> bool:
            return any((run.schedule_tick or 0) > target for run in await scheduled_runs(client, workflow.id))

        await until(past_it, 10, "a tick after the taken one to fire")
        runs = {run.run_id: run for run in await scheduled_runs(client, workflow.id)}
        # The caller's run is untouched and not taken for the schedule's.
        assert runs[squatted].status is RunStatus.PENDING and runs[squatted].schedule_id is None
        ticks = sorted(run.schedule_tick for run in runs.values() if run.schedule_tick is not None)
        assert target not in ticks and len(ticks) == len(set(ticks))
        assert (await client.schedules.get("squat")).next_tick > target  # type: ignore[operator]
    warned = [r.getMessage() for r in caplog.records if r.name == SCHEDULES and r.levelno >= logging.WARNING]
    assert len(warned) == 1 and squatted in warned[0] and "squat" in warned[0], warned


async def test_a_trigger_whose_run_id_a_caller_took_is_run_id_in_use(
    serving: ServingFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """TriggerSchedule answered NOT_FOUND SCHEDULE_NOT_FOUND, for a schedule that exists, when
    the run id its request id derives was taken (schedules audit). Its warning says what the
    caller was answered, not that a tick was passed over."""
    caplog.set_level(logging.INFO, SCHEDULES)
    workflow = asking("taken", cron=YEARLY, overlap="allow")
    async with (
        serving(tmp_path / "runs.db", workflows=[workflow]) as served,
        Client(served.address) as client,
    ):
        squatted = trigger_run_id("taken", "req-1")
        await client.get_workflow(workflow.id).create_run(run_id=squatted)
        for _ in range(2):  # a retry is refused alike: nothing was recorded
            with pytest.raises(AlreadyExists) as refused:
                await client.schedules.trigger("taken", request_id="req-1")
            assert refused.value.reason == "RUN_ID_IN_USE"
            assert refused.value.metadata["schedule_id"] == "taken"
            assert refused.value.metadata["run_id"] == squatted
        assert [run.run_id for run in await scheduled_runs(client, workflow.id)] == [squatted]
        # Another request id fires, and its retry still answers with its first run.
        fired = await client.schedules.trigger("taken", request_id="req-2")
        assert fired.outcome == "started" and fired.run is not None
        again = await client.schedules.trigger("taken", request_id="req-2")
        assert again.run is not None and again.run.run_id == fired.run.run_id and again.tick == fired.tick
        assert len(await scheduled_runs(client, workflow.id)) == 2
    warned = [r.getMessage() for r in caplog.records if r.name == SCHEDULES and "held by" in r.getMessage()]
    assert len(warned) == 2 and all("a trigger started nothing" in line for line in warned), warned
    assert all("RUN_ID_IN_USE" in line and "passed over" not in line for line in warned), warned


class Ahead:
    """The `time` module as the schedule loop sees it, its clock `seconds` ahead of the real one
    (the rest of the server keeps the real clock)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def time(self) -> float:
        return time.time() + self.seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


async def test_late_ticks_are_coalesced_into_the_most_recent(
    serving: ServingFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server ran but could not fire for an hour (its clock jumped forward, as it would
    after a stopped process or a database outage): each late tick fired in turn, an every-minute
    schedule's 60 runs back to back (schedules audit: 34 after a 30 s SIGSTOP of an every-second
    one). Only the most recent late tick fires; the others are passed over, in one log line."""
    caplog.set_level(logging.INFO, SCHEDULES)
    ran: Counter[str] = Counter()
    workflow = ticking("gap", ran, cron="* * * * *")
    async with (
        serving(tmp_path / "runs.db", workflows=[workflow]) as served,
        Client(served.address) as client,
    ):
        before = time.time()
        monkeypatch.setattr(schedules_module, "time", Ahead(3600))
        jumped = time.time() + 3600  # ticks after it come on time (a slow test may see one)

        async def fired() -> bool:
            return any(
                (run.schedule_tick or 0) > before + 120 for run in await scheduled_runs(client, workflow.id)
            )

        await until(fired, 10, "the most recent late tick")
        await asyncio.sleep(1.0)  # a catch-up would go on meanwhile
        runs = await scheduled_runs(client, workflow.id)
        schedule = await client.schedules.get("gap")
    ticks = [run.schedule_tick or 0 for run in runs]
    late = [tick for tick in ticks if before + 120 < tick <= jumped]
    # (A tick due in the instant before the jump may have fired on time, and so may the minute
    # after the jump, on a slow machine.)
    assert len(late) == 1 and len(runs) <= 3, ticks
    assert late[0] == previous_tick("* * * * *", "UTC", late[0] + 59)  # a minute's tick
    assert late[0] > before + 3600 - 120 and schedule.next_tick is not None
    assert schedule.next_tick >= late[0] + 60
    passed = [
        r.getMessage() for r in caplog.records if r.name == SCHEDULES and "passed over" in r.getMessage()
    ]
    assert len(passed) == 1 and "only the most recent" in passed[0], passed


async def buffered_behind_a_suspended_run(
    client: Client, workflow_id: str, schedule_id: str
) -> tuple[Any, float]:
    """The schedule's first run, suspended, and the tick `buffer_one` keeps behind it."""

    async def suspended() -> bool:
        runs = await scheduled_runs(client, workflow_id)
        return len(runs) >= 1 and runs[0].status is RunStatus.SUSPENDED

    await until(suspended, 10, "the first run to suspend")

    async def buffered() -> bool:
        return (await client.schedules.get(schedule_id)).pending_tick is not None

    await until(buffered, 5, "a buffered tick")
    pending = (await client.schedules.get(schedule_id)).pending_tick
    assert pending is not None
    return (await scheduled_runs(client, workflow_id))[0], pending


async def test_a_tick_buffered_before_a_pause_does_not_fire_at_resume(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """Pausing kept the tick `buffer_one` had buffered: resumed, even a week later, the schedule
    fired that old tick at once, though resuming fires from the next tick after now (schedules
    audit)."""
    workflow = asking("paused-buffer", overlap="buffer_one")
    async with (
        serving(tmp_path / "runs.db", workflows=[workflow]) as served,
        Client(served.address) as client,
    ):
        first, stale = await buffered_behind_a_suspended_run(client, workflow.id, "paused-buffer")
        paused = await client.schedules.pause("paused-buffer")
        assert paused.paused and paused.pending_tick is None
        await _resume(client, workflow.id, first.run_id)  # the active run ends while paused
        resumed_at = time.time()
        resumed = await client.schedules.resume("paused-buffer")
        assert resumed.pending_tick is None

        async def ticking_again() -> bool:
            runs = await scheduled_runs(client, workflow.id)
            return any((run.schedule_tick or 0) > resumed_at for run in runs)

        await until(ticking_again, 10, "a tick after the resume")
        ticks = [run.schedule_tick for run in await scheduled_runs(client, workflow.id)]
    assert stale not in ticks and all(tick > resumed_at for tick in ticks[1:]), (stale, ticks)


async def test_a_tick_buffered_under_buffer_one_is_dropped_when_declared_with_another_overlap(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """Declared again with `allow`, a schedule kept the tick `buffer_one` had buffered, and it
    started at once, alongside the run it was kept behind."""
    db = tmp_path / "runs.db"
    async with (
        serving(db, workflows=[asking("redeclared", cron=YEARLY, overlap="buffer_one")]) as served,
        Client(served.address) as client,
    ):
        first = await client.schedules.trigger("redeclared")
        assert first.outcome == "started" and first.run is not None
        assert (await client.schedules.trigger("redeclared")).outcome == "buffered"
    allowing = asking("redeclared", cron=YEARLY, overlap="allow")
    async with serving(db, workflows=[allowing]) as served, Client(served.address) as client:
        schedule = await client.schedules.get("redeclared")
        assert schedule.overlap == "allow" and schedule.pending_tick is None
        await asyncio.sleep(0.5)  # a turn or more of the schedule loop
        assert [run.run_id for run in await scheduled_runs(client, allowing.id)] == [first.run.run_id]
