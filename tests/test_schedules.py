"""Cron schedules through the real server: ticks fire once over a restart, pause and resume,
trigger, the overlap and missed-tick policies, bad declarations, and the run's record of its
schedule and tick. (Two replicas on one PostgreSQL: tests/test_schedule_replicas.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import re
import sqlite3
import time
import zoneinfo
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from clitools import Result, runservice
from conftest import Databases, ServingFactory
from process import ROOT, server_env
from pydantic import BaseModel

from runservice import StepContext, create_step, create_workflow
from runservice.client import Client, SyncClient
from runservice.config import ConfigError, Settings
from runservice.engine import Engine
from runservice.engine.schedules import trigger_run_id
from runservice.errors import FailedPrecondition, RunNotFound, ScheduleNotFound, WorkflowDefinitionError
from runservice.model import RunStatus
from runservice.storage import open_store
from runservice.workflow import Schedule, Workflow
from runservice.workflow import schedule as schedule_module
from runservice.workflow.schedule import next_tick, previous_tick

pytestmark = pytest.mark.timeout(60)

EVERY_SECOND = "* * * * * *"


def ticking(schedule_id: str, ran: Counter[str], **options: Any) -> Workflow:
    """A workflow with one quick step (counting its executions per run) and one schedule."""

    @create_step("count")
    async def count(ctx: StepContext) -> Any:
        ran[ctx.run_id] += 1
        return {"input": ctx.input_data}

    options.setdefault("cron", EVERY_SECOND)
    return create_workflow(f"wf-{schedule_id}").then(count).schedule(schedule_id, **options).commit()


def asking(schedule_id: str, **options: Any) -> Workflow:
    """A workflow whose run suspends until resumed (so it stays active), with one schedule."""

    @create_step("ask")
    async def ask(ctx: StepContext) -> Any:
        if ctx.resume_data is None:
            await ctx.suspend({"go": "?"})
            return None
        return {"done": ctx.resume_data}

    options.setdefault("cron", EVERY_SECOND)
    return create_workflow(f"wf-{schedule_id}").then(ask).schedule(schedule_id, **options).commit()


async def until(check: Callable[[], Awaitable[bool]], limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def scheduled_runs(client: Client, workflow_id: str) -> list[Any]:
    """Every run of the workflow, oldest tick first."""
    runs, _ = await client.get_workflow(workflow_id).runs(page_size=1000)
    return sorted(runs, key=lambda run: run.schedule_tick or 0.0)


# -- ticking -----------------------------------------------------------------------------------


async def test_a_schedule_pointed_at_a_tick_it_fired_moves_on(
    serving: ServingFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resumed by a server whose clock is 2 s behind the one that fired it, a schedule's next
    tick is one it fired already: the tick's record refused it as "lost", the schedule stayed
    due at that tick, and it never fired again (schedules audit)."""
    ran: Counter[str] = Counter()
    workflow = ticking("skewed", ran)
    async with (
        serving(tmp_path / "runs.db", workflows=[workflow]) as served,
        Client(served.address) as client,
    ):
        async with asyncio.timeout(10):
            while len(await scheduled_runs(client, workflow.id)) < 4:
                await asyncio.sleep(0.1)
        await client.schedules.pause("skewed")
        before = await scheduled_runs(client, workflow.id)
        real = time.time
        with monkeypatch.context() as behind:
            behind.setattr(time, "time", lambda: real() - 2)  # the server shares this process
            resumed = await client.schedules.resume("skewed")
        assert resumed.next_tick is not None and resumed.next_tick <= before[-1].schedule_tick
        async with asyncio.timeout(10):
            while len(await scheduled_runs(client, workflow.id)) <= len(before):
                await asyncio.sleep(0.1)
        after = await scheduled_runs(client, workflow.id)
        ticks = [run.schedule_tick for run in after]
        assert len(ticks) == len(set(ticks)), "no tick fired twice"


async def test_each_tick_fires_once_over_a_restart(serving: ServingFactory, tmp_path: Path) -> None:
    ran: Counter[str] = Counter()
    db = tmp_path / "runs.db"
    before: list[Any] = []
    for round_ in range(2):
        workflow = ticking("every-second", ran, input_data={"n": 1})
        async with serving(db, workflows=[workflow]) as served, Client(served.address) as client:

            async def enough(floor: int = 2 + len(before), workflow_id: str = workflow.id) -> bool:
                return len(await scheduled_runs(client, workflow_id)) >= floor

            await until(enough, 10, "scheduled runs")
            runs = await scheduled_runs(client, workflow.id)
            if round_ == 0:
                before = runs
        # The server is stopped here: round 2 starts a new one on the same database.
    ticks = [run.schedule_tick for run in runs]
    assert all(run.schedule_id == "every-second" for run in runs)
    assert len(set(ticks)) == len(ticks), "a tick fired twice"
    assert all(tick is not None and tick == int(tick) for tick in ticks), ticks  # whole seconds
    assert {run.run_id for run in before} <= {run.run_id for run in runs}
    # Each tick's run ran its step once, and ticks before the restart did not fire again after it.
    assert all(ran[run.run_id] == 1 for run in runs if run.status is RunStatus.SUCCESS), ran
    after = [run for run in runs if run.run_id not in {r.run_id for r in before}]
    assert after and min(r.schedule_tick for r in after) > max(r.schedule_tick for r in before)
    assert all(run.input == {"n": 1} for run in runs if run.input is not None)


async def test_run_records_schedule_and_tick(serving: ServingFactory, tmp_path: Path) -> None:
    ran: Counter[str] = Counter()
    workflow = ticking("recorded", ran)
    async with (
        serving(tmp_path / "runs.db", workflows=[workflow]) as served,
        Client(served.address) as client,
    ):

        async def one() -> bool:
            return len(await scheduled_runs(client, workflow.id)) >= 1

        await until(one, 10, "a scheduled run")
        listed = (await scheduled_runs(client, workflow.id))[0]
        got = await client.get_workflow(workflow.id).run_execution_result(listed.run_id)
        assert got.schedule_id == listed.schedule_id == "recorded"
        assert got.schedule_tick == listed.schedule_tick
        assert got.schedule_tick is not None and abs(got.schedule_tick - got.created_at) < 2
        schedule = await client.schedules.get("recorded")
        assert schedule.last_run_id is not None and schedule.last_tick is not None
        # A run started by a caller has no schedule.
        manual = await client.get_workflow(workflow.id).create_run()
        await manual.start_async(input_data=None)
        plain = await client.get_workflow(workflow.id).run_execution_result(manual.run_id)
        assert plain.schedule_id is None and plain.schedule_tick is None


async def test_pause_stops_ticks_resume_restarts_them(serving: ServingFactory, tmp_path: Path) -> None:
    ran: Counter[str] = Counter()
    db = tmp_path / "runs.db"
    async with serving(db, workflows=[ticking("pausable", ran)]) as served, Client(served.address) as client:
        paused = await client.schedules.pause("pausable")
        assert paused.paused
        count = len(await scheduled_runs(client, "wf-pausable"))
        await asyncio.sleep(2.5)
        assert len(await scheduled_runs(client, "wf-pausable")) == count, "a paused schedule fired"
    # Paused through the API survives a restart (the declaration does not unpause it).
    async with serving(db, workflows=[ticking("pausable", ran)]) as served, Client(served.address) as client:
        assert (await client.schedules.get("pausable")).paused
        await asyncio.sleep(1.5)
        assert len(await scheduled_runs(client, "wf-pausable")) == count
        resumed = await client.schedules.resume("pausable")
        assert not resumed.paused and resumed.next_tick is not None and resumed.next_tick > time.time() - 1

        async def more() -> bool:
            return len(await scheduled_runs(client, "wf-pausable")) >= count + 2

        await until(more, 10, "ticks after resume")


async def test_trigger_fires_now(serving: ServingFactory, tmp_path: Path) -> None:
    ran: Counter[str] = Counter()
    yearly = ticking("yearly", ran, cron="0 0 1 1 *", input_data={"why": "trigger"})
    async with serving(tmp_path / "runs.db", workflows=[yearly]) as served, Client(served.address) as client:
        assert await scheduled_runs(client, yearly.id) == []
        before = time.time()
        fired = await client.schedules.trigger("yearly")
        assert fired.outcome == "started" and fired.run is not None
        assert fired.run.schedule_id == "yearly" and fired.tick is not None and fired.tick >= before - 0.01
        done = await client.get_workflow(yearly.id).run_execution_result(fired.run.run_id)
        assert done.schedule_tick == pytest.approx(fired.tick, abs=1e-3)
        assert done.input == {"why": "trigger"}

        async def finished() -> bool:
            run = await client.get_workflow(yearly.id).run_execution_result(fired.run.run_id)  # type: ignore[union-attr]
            return run.status is RunStatus.SUCCESS

        await until(finished, 10, "the triggered run")
        assert ran[fired.run.run_id] == 1
        # The cadence is untouched: the next tick is still next New Year.
        schedule = await client.schedules.get("yearly")
        assert schedule.next_tick is not None and schedule.next_tick > time.time() + 60
        # A paused schedule can still be triggered.
        await client.schedules.pause("yearly")
        assert (await client.schedules.trigger("yearly")).outcome == "started"
        with pytest.raises(ScheduleNotFound) as missing:
            await client.schedules.trigger("no-such-schedule")
        assert missing.value.reason == "SCHEDULE_NOT_FOUND"


# -- policies ----------------------------------------------------------------------------------


async def test_overlap_skip(serving: ServingFactory, tmp_path: Path) -> None:
    workflow = asking("skipper", overlap="skip")
    async with (
        serving(tmp_path / "runs.db", workflows=[workflow]) as served,
        Client(served.address) as client,
    ):

        async def suspended() -> bool:
            runs = await scheduled_runs(client, workflow.id)
            return len(runs) >= 1 and runs[0].status is RunStatus.SUSPENDED

        await until(suspended, 10, "the first run to suspend")
        await asyncio.sleep(2.2)  # two ticks or more while it is suspended
        runs = await scheduled_runs(client, workflow.id)
        assert len(runs) == 1, "a tick started a run while the previous one was active"
        first = runs[0]
        skipped = await client.schedules.trigger("skipper")
        assert skipped.outcome == "skipped" and skipped.active_run_id == first.run_id and skipped.run is None
        resumed = await _resume(client, workflow.id, first.run_id)
        assert resumed.status is RunStatus.SUCCESS

        async def next_one() -> bool:
            return len(await scheduled_runs(client, workflow.id)) >= 2

        await until(next_one, 10, "a tick after the active run ended")


async def test_overlap_allow(serving: ServingFactory, tmp_path: Path) -> None:
    workflow = asking("allower", overlap="allow")
    async with (
        serving(tmp_path / "runs.db", workflows=[workflow]) as served,
        Client(served.address) as client,
    ):

        async def overlapping() -> bool:
            runs = await scheduled_runs(client, workflow.id)
            return sum(run.status is RunStatus.SUSPENDED for run in runs) >= 3

        await until(overlapping, 10, "three overlapping runs")
        assert (await client.schedules.trigger("allower")).outcome == "started"


async def test_overlap_buffer_one(serving: ServingFactory, tmp_path: Path) -> None:
    workflow = asking("buffer", overlap="buffer_one")
    async with (
        serving(tmp_path / "runs.db", workflows=[workflow]) as served,
        Client(served.address) as client,
    ):

        async def suspended() -> bool:
            runs = await scheduled_runs(client, workflow.id)
            return len(runs) >= 1 and runs[0].status is RunStatus.SUSPENDED

        await until(suspended, 10, "the first run to suspend")
        first = (await scheduled_runs(client, workflow.id))[0]

        async def buffered() -> bool:
            return (await client.schedules.get("buffer")).pending_tick is not None

        await until(buffered, 5, "a buffered tick")
        await asyncio.sleep(1.5)  # more ticks: skipped, the one buffered is kept
        schedule = await client.schedules.get("buffer")
        pending = schedule.pending_tick
        assert pending is not None and first.schedule_tick is not None and pending > first.schedule_tick
        assert len(await scheduled_runs(client, workflow.id)) == 1
        again = await client.schedules.trigger("buffer")
        assert again.outcome == "skipped" and again.active_run_id == first.run_id  # one is already pending
        # A pause drops the buffered tick (a resumed schedule fires from the next tick after now:
        # tests/test_schedule_edges.py); a trigger buffered during the pause, asked for then, is
        # kept. Paused, no cron tick races it; it is not fired while paused.
        assert (await client.schedules.pause("buffer")).pending_tick is None
        asked = await client.schedules.trigger("buffer")
        assert asked.outcome == "buffered" and asked.active_run_id == first.run_id
        await _resume(client, workflow.id, first.run_id)
        await asyncio.sleep(0.6)
        assert len(await scheduled_runs(client, workflow.id)) == 1
        await client.schedules.resume("buffer")

        async def started() -> bool:
            return any(
                r.schedule_tick == pytest.approx(asked.tick, abs=1e-3)
                for r in await scheduled_runs(client, workflow.id)
            )

        await until(started, 5, "the buffered trigger's run")
        assert pending not in [r.schedule_tick for r in await scheduled_runs(client, workflow.id)]


async def _resume(client: Client, workflow_id: str, run_id: str) -> Any:
    """Resume a suspended scheduled run (CreateRun of an existing id is a handle on it)."""
    handle = await client.get_workflow(workflow_id).create_run(run_id)
    return await handle.resume_async("yes")


@pytest.mark.parametrize("missed", ["skip", "run_once"])
async def test_missed_ticks(
    serving: ServingFactory, databases: Databases, tmp_path: Path, missed: str
) -> None:
    ran: Counter[str] = Counter()
    db = tmp_path / "runs.db"
    daily = "0 0 * * *"  # midnight UTC: never on time while this test runs (barring midnight itself)
    async with serving(db, workflows=[ticking("daily", ran, cron=daily, missed=missed)]):
        pass
    # Nothing ran for two days: the schedule's next tick is the day before yesterday's midnight.
    midnight = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    url = await databases.url_for(db)
    if url.startswith("postgresql://"):
        pg = await asyncpg.connect(url)
        try:
            await pg.execute("UPDATE schedules SET next_tick = $1", midnight - 2 * 86400)
        finally:
            await pg.close()
    else:
        conn = sqlite3.connect(db)
        with conn:
            conn.execute("UPDATE schedules SET next_tick = ?", (midnight - 2 * 86400,))
        conn.close()
    async with (
        serving(db, workflows=[ticking("daily", ran, cron=daily, missed=missed)]) as served,
        Client(served.address) as client,
    ):

        async def moved() -> bool:
            tick = (await client.schedules.get("daily")).next_tick
            return tick is not None and tick > time.time()

        await until(moved, 5, "the schedule to move past the missed ticks")
        await asyncio.sleep(0.3)
        runs = await scheduled_runs(client, "wf-daily")
        assert (await client.schedules.get("daily")).next_tick == midnight + 86400
    if missed == "skip":
        assert runs == []
    else:  # one run, for the most recent missed tick
        assert [run.schedule_tick for run in runs] == [midnight]


# -- declarations ------------------------------------------------------------------------------


def test_bad_cron_and_time_zone_fail_at_definition() -> None:
    with pytest.raises(WorkflowDefinitionError, match="invalid cron expression"):
        Schedule(id="bad", cron="61 * * * *")
    with pytest.raises(WorkflowDefinitionError, match="5 fields"):
        create_workflow("w").schedule("bad", "* * *")
    with pytest.raises(WorkflowDefinitionError, match="unknown time zone 'Mars/Olympus'"):
        Schedule(id="bad", cron="* * * * *", timezone="Mars/Olympus")
    with pytest.raises(WorkflowDefinitionError, match="overlap must be one of"):
        Schedule(id="bad", cron="* * * * *", overlap="queue")
    with pytest.raises(WorkflowDefinitionError, match="missed must be one of"):
        Schedule(id="bad", cron="* * * * *", missed="all")
    with pytest.raises(WorkflowDefinitionError, match="schedule id"):
        Schedule(id="a.b", cron="* * * * *")
    with pytest.raises(WorkflowDefinitionError, match="twice"):
        create_workflow("w").schedule("s", "* * * * *").schedule("s", "* * * * *")
    # The create_workflow form declares the same thing.
    workflow = create_workflow(
        "w", schedules=[Schedule(id="s", cron="* * * * * */5", timezone="Europe/Paris")]
    )
    assert [(s.id, s.workflow_id, s.timezone) for s in workflow.schedules] == [("s", "w", "Europe/Paris")]


def test_a_cron_that_never_matches_fails_at_definition() -> None:
    """February 30 parses, but no tick ever comes: refused when declared, not at the first boot."""
    for never in ("0 0 30 2 *", "0 0 31 4 *", "* * 30 2 * 0"):
        with pytest.raises(
            WorkflowDefinitionError, match=f"schedule 'x': cron expression '{re.escape(never)}' never"
        ):
            Schedule(id="x", cron=never)
    Schedule(id="leap", cron="0 0 29 2 *")  # rare, but it comes


def test_a_schedule_every_replica_would_compute_apart_fails_at_definition() -> None:
    """croniter draws an `R` field anew at every parse, and `localtime` is each host's zone:
    replicas (and each turn of one) computed other ticks, named by their times (audit)."""
    for random in ("R * * * *", "0 R * * *", "R(10-20) * * * *", "r/5 * * * *", "0 0 * * R"):
        with pytest.raises(WorkflowDefinitionError, match="random field"):
            Schedule(id="x", cron=random)
    for host in ("localtime", "posixrules"):
        with pytest.raises(WorkflowDefinitionError, match="each host's own"):
            Schedule(id="x", cron="0 9 * * *", timezone=host)
    Schedule(id="names", cron="0 9 * MAR FRI")  # month and day names are no random field


async def test_serve_refuses_a_cron_that_never_matches_in_one_line(tmp_path: Path) -> None:
    never = await runservice(
        "serve",
        "--data-dir",
        str(tmp_path),
        "--address",
        "127.0.0.1:0",
        "--schedules",
        '[{"id": "feb30", "workflow": "w", "cron": "0 0 30 2 *"}]',
        env=server_env(),  # the checkout's code, whichever package the console script installed
    )
    assert never.code == 2, never.err
    assert never.error_lines == [never.err.strip()] and "feb30" in never.err and "never matches" in never.err


def _local(tick: float, timezone: str) -> str:
    return dt.datetime.fromtimestamp(tick, zoneinfo.ZoneInfo(timezone)).isoformat()


def _ticks(cron: str, timezone: str, start: str, count: int) -> list[str]:
    """The next `count` ticks after `start` (ISO, with its offset), as local ISO times."""
    tick, found = dt.datetime.fromisoformat(start).timestamp(), []
    for _ in range(count):
        tick = next_tick(cron, timezone, tick)
        found.append(_local(tick, timezone))
    return found


def test_daylight_saving_changes_fire_each_local_time_once() -> None:
    """The autumn change repeats an hour: a daily tick in it fires once (its first occurrence),
    while a cron of every hour fires at every real hour; the spring change skips an hour: a
    daily tick in it fires once, just after the gap."""
    new_york, paris = "America/New_York", "Europe/Paris"
    assert _ticks("30 1 * * *", new_york, "2024-11-02T12:00:00-04:00", 3) == [
        "2024-11-03T01:30:00-04:00",
        "2024-11-04T01:30:00-05:00",
        "2024-11-05T01:30:00-05:00",
    ]
    assert _ticks("30 2 * * *", paris, "2024-10-26T12:00:00+02:00", 2) == [
        "2024-10-27T02:30:00+02:00",
        "2024-10-28T02:30:00+01:00",
    ]
    assert _ticks("0 * * * *", new_york, "2024-11-02T23:30:00-04:00", 4) == [
        "2024-11-03T00:00:00-04:00",
        "2024-11-03T01:00:00-04:00",
        "2024-11-03T01:00:00-05:00",  # the same local hour, one real hour later
        "2024-11-03T02:00:00-05:00",
    ]
    assert _ticks("30 2 * * *", paris, "2024-03-30T12:00:00+01:00", 2) == [
        "2024-03-31T03:00:00+02:00",
        "2024-04-01T02:30:00+02:00",
    ]
    # The latest tick at or before a time agrees: after the repeated hour, the first occurrence.
    after = dt.datetime.fromisoformat("2024-11-03T03:00:00-05:00").timestamp()
    assert _local(previous_tick("30 1 * * *", new_york, after), new_york) == "2024-11-03T01:30:00-04:00"
    assert _local(previous_tick("0 * * * *", new_york, after), new_york) == "2024-11-03T03:00:00-05:00"


def test_the_documented_seconds_examples_mean_what_they_say() -> None:
    """The seconds field trails: the README's and the module's examples tick as they claim."""
    readme = (ROOT / "README.md").read_text()
    for text, claim, step in (
        (readme, "every ten seconds", 10.0),
        (schedule_module.__doc__ or "", "every five seconds", 5.0),
    ):
        found = re.search(rf"`([^`]+)`: {claim}", text)
        assert found is not None, claim
        start = dt.datetime(2024, 5, 1, 12, 3, 7, tzinfo=dt.UTC).timestamp()
        ticks = [next_tick(found[1], "UTC", start)]
        for _ in range(3):
            ticks.append(next_tick(found[1], "UTC", ticks[-1]))
        assert [b - a for a, b in itertools.pairwise(ticks)] == [step] * 3, (found[1], claim)


class Order(BaseModel):
    quantity: int


async def test_bad_schedule_input_and_duplicates_fail_at_load(tmp_path: Path) -> None:
    @create_step("noop")
    async def noop(ctx: StepContext) -> Any:
        return None

    # Declared in code: refused where it is declared, while the module loads.
    with pytest.raises(WorkflowDefinitionError, match="schedule 'typed': input_data fails the workflow's"):
        create_workflow("typed", input_schema=Order).then(noop).schedule("typed", "* * * * *", input_data={})
    with pytest.raises(WorkflowDefinitionError, match="schedule 'typed': initial state fails the workflow's"):
        create_workflow("stateful", state_schema=Order).schedule("typed", "* * * * *")
    store = open_store(str(tmp_path / "runs.db"))
    await store.open()
    try:
        # Declared beside the workflows (the configuration's): refused when the engine is made.
        typed = create_workflow("typed", input_schema=Order).then(noop).commit()
        loose = Schedule(id="loose", cron="* * * * *", workflow_id="typed", input_data={"quantity": "many"})
        with pytest.raises(WorkflowDefinitionError, match="schedule 'loose': input_data"):
            Engine(store, [typed], schedules=[loose])
        other = create_workflow("other").then(noop).schedule("typed", "* * * * *").commit()
        good = create_workflow("good", input_schema=Order).then(noop)
        good.schedule("typed", "* * * * *", input_data={"quantity": 1}).commit()
        with pytest.raises(WorkflowDefinitionError, match="two schedules have the id 'typed'"):
            Engine(store, [good, other])
        stray = Schedule(id="stray", cron="* * * * *", workflow_id="nowhere")
        with pytest.raises(WorkflowDefinitionError, match="not served"):
            Engine(store, [good], schedules=[stray])
    finally:
        await store.close()


def test_configuration_declares_schedules(tmp_path: Path) -> None:
    text = '[{"id": "nightly", "workflow": "w", "cron": "0 3 * * *", "timezone": "Asia/Tokyo"}]'
    settings = Settings.load(schedules=text)
    [nightly] = settings.declared_schedules()
    assert (nightly.id, nightly.workflow_id, nightly.timezone) == ("nightly", "w", "Asia/Tokyo")
    toml = tmp_path / "schedules.toml"
    toml.write_text('[[schedules]]\nid = "t"\nworkflow = "w"\ncron = "* * * * * */10"\nmissed = "run_once"\n')
    [from_file] = Settings.load(schedules=str(toml)).declared_schedules()
    assert from_file.missed == "run_once"
    for bad, message in (
        ('[{"id": "x", "workflow": "w", "cron": "0 25 * * *"}]', "invalid cron expression"),
        (
            '[{"id": "x", "workflow": "w", "cron": "* * * * *", "timezone": "Nowhere/Land"}]',
            "unknown time zone",
        ),
        ('[{"id": "x", "cron": "* * * * *"}]', "workflow"),
        ("[{", "not valid JSON"),
    ):
        with pytest.raises(ConfigError, match=message):
            Settings.load(schedules=bad)


async def test_serve_refuses_bad_schedules_clearly(tmp_path: Path) -> None:
    bad = await runservice(
        "serve", "--data-dir", str(tmp_path), "--schedules", '[{"id": "x", "workflow": "w", "cron": "* * *"}]'
    )
    assert bad.code == 2 and "schedules" in bad.err and "5 fields" in bad.err and "Traceback" not in bad.err
    stray = await runservice(
        "serve",
        "--data-dir",
        str(tmp_path),
        "--address",
        "127.0.0.1:0",
        "--schedules",
        '[{"id": "x", "workflow": "no-such-workflow", "cron": "* * * * *"}]',
    )
    assert stray.code == 2 and "no-such-workflow" in stray.err and "not served" in stray.err
    # An input the workflow's schema refuses is found while loading, not at the engine's start.
    refused = await runservice(
        "serve",
        "--data-dir",
        str(tmp_path),
        "--address",
        "127.0.0.1:0",
        "--schedules",
        '[{"id": "paris", "workflow": "city-weather", "cron": "* * * * *", "input_data": {"city": ""}}]',
    )
    assert refused.code == 2 and "Traceback" not in refused.err, refused.err
    assert refused.error_lines == [
        "runservice: error: schedules: schedule 'paris': input_data fails the workflow's schema: "
        "city: String should have at least 1 character"
    ]


async def test_time_zone_and_listing(serving: ServingFactory, tmp_path: Path) -> None:
    ran: Counter[str] = Counter()
    tokyo = ticking("tokyo-nine", ran, cron="0 9 * * *", timezone="Asia/Tokyo", description="9 am in Tokyo")
    async with serving(tmp_path / "runs.db", workflows=[tokyo]) as served, Client(served.address) as client:
        [listed] = await client.schedules.list()
        assert (listed.schedule_id, listed.workflow_id, listed.cron) == ("tokyo-nine", tokyo.id, "0 9 * * *")
        assert (listed.overlap, listed.missed, listed.description) == ("skip", "skip", "9 am in Tokyo")
        assert listed.next_tick is not None
        utc = dt.datetime.fromtimestamp(listed.next_tick, dt.UTC)
        assert (utc.hour, utc.minute, utc.second) == (0, 0, 0)  # 09:00 in Tokyo is 00:00 UTC
        assert await client.schedules.list("other-workflow") == []
        with pytest.raises(ScheduleNotFound):
            await client.schedules.get("nope")
        # The blocking client has the same calls.
        sync = SyncClient(served.address)
        try:
            got = await asyncio.to_thread(sync.schedules.get, "tokyo-nine")
            assert got == listed
            paused = await asyncio.to_thread(sync.schedules.pause, "tokyo-nine")
            assert paused.paused and paused.next_tick is None
        finally:
            sync.close()
        # The CLI group.
        listed_cli = await runservice("schedules", "list", "--json", "--target", served.address)
        assert listed_cli.code == 0, listed_cli.err
        assert listed_cli.json()["schedules"][0]["schedule_id"] == "tokyo-nine"
        resumed = await runservice("schedules", "resume", "tokyo-nine", "--target", served.address)
        assert resumed.code == 0 and "active" in resumed.out
        fired = await runservice("schedules", "trigger", "tokyo-nine", "--json", "--target", served.address)
        assert fired.code == 0 and fired.json()["outcome"] == "started"
        # Times say their zone (audit: NEXT was printed bare, in UTC, next to ZONE Asia/Tokyo):
        # a schedule's in its own zone, with the offset; a run's with its offset.
        table = await runservice("schedules", "list", "--target", served.address)
        [row] = [line for line in table.out.splitlines() if line.startswith("tokyo-nine")]
        assert re.search(r" \d{4}-\d\d-\d\d 09:00:00\+09:00( |$)", row), row
        shown = await runservice("schedules", "get", "tokyo-nine", "--target", served.address)
        assert re.search(r"^next tick: \d{4}-\d\d-\d\d 09:00:00\+09:00$", shown.out, re.M), shown.out
        runs = await runservice("runs", "-w", tokyo.id, "--target", served.address)
        [run_row] = runs.out.splitlines()[1:]
        stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d"
        assert re.search(rf"{stamp}\s+{stamp}$", run_row), run_row  # CREATED and UPDATED
        missing = await runservice("schedules", "get", "nope", "--target", served.address)
        assert missing.code == 1 and "SCHEDULE_NOT_FOUND" in missing.err + missing.out


async def test_schedules_of_workflows_served_elsewhere(serving: ServingFactory, tmp_path: Path) -> None:
    """A server keeps (and never fires) the schedules of workflows it does not serve: another
    replica serves them. Its own undeclared schedules are removed at boot."""
    ran: Counter[str] = Counter()
    db = tmp_path / "runs.db"
    async with serving(db, workflows=[ticking("theirs", ran, cron="0 0 1 1 *"), ticking("gone", ran)]):
        pass

    @create_step("noop")
    async def noop(ctx: StepContext) -> Any:
        return None

    unscheduled = create_workflow("wf-gone").then(noop).commit()  # its schedule is no longer declared
    mine = ticking("mine", ran, cron="0 0 1 1 *")
    async with serving(db, workflows=[mine, unscheduled]) as served, Client(served.address) as client:
        assert [s.schedule_id for s in await client.schedules.list()] == ["mine", "theirs"]
        with pytest.raises(FailedPrecondition) as refused:
            await client.schedules.trigger("theirs")
        assert refused.value.reason == "SCHEDULE_WORKFLOW_NOT_SERVED"
        assert refused.value.metadata == {"schedule_id": "theirs", "workflow_id": "wf-theirs"}


async def test_a_schedule_of_a_workflow_no_server_serves_is_warned_of_and_shown_overdue(
    serving: ServingFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A workflow retired from every server leaves its schedule stored (no server may prune
    what another replica could serve): it never fires, and it read `active` with its next
    tick in the past for ever, with nothing logged (audit)."""
    ran: Counter[str] = Counter()
    db = tmp_path / "runs.db"
    async with serving(db, workflows=[ticking("retired", ran)]):
        pass
    # A second may pass while that server runs (a busy machine): a tick it fired is its own.
    before = Counter(ran)

    @create_step("noop")
    async def noop(ctx: StepContext) -> Any:
        return None

    async with serving(db, workflows=[create_workflow("other").then(noop).commit()]) as served:
        served.engine.schedules.grace = 0.2  # 5 s: a tick later than that and the poll fired nowhere
        warned = "schedule retired: tick "
        async with asyncio.timeout(10):
            while not [r for r in caplog.records if r.getMessage().startswith(warned)]:
                await asyncio.sleep(0.05)
        [warning] = [r for r in caplog.records if r.getMessage().startswith(warned)]  # once, not per look
        assert warning.levelname == "WARNING"
        assert "this server does not serve that workflow; no server fires it" in warning.getMessage()

        await served.store.set_schedule_paused("retired", True, None)
        await served.store.set_schedule_paused("retired", False, time.time() - 3600)  # an hour overdue
        listed = await runservice("schedules", "list", "--target", served.address)
        assert listed.code == 0, listed.err
        [row] = [line for line in listed.out.splitlines() if line.startswith("retired")]
        assert " overdue " in row and " active " not in row
        got = await runservice("schedules", "get", "retired", "--target", served.address)
        assert got.code == 0 and got.out.startswith("retired: overdue\n"), got.out
        assert "is workflow 'wf-retired' served?" in got.out
        assert ran == before  # nothing fired it once its workflow was retired


async def test_the_schedule_loop_stops_when_closed_as_it_wakes(tmp_path: Path) -> None:
    """A wake-up (a run ending) that completes just as the loop is cancelled at shutdown: the
    loop stops. With `asyncio.wait_for` (Python 3.11) the cancellation was swallowed there and
    the loop, and the engine's shutdown with it, never ended."""
    store = open_store(str(tmp_path / "runs.db"))
    await store.open()
    try:
        engine = Engine(store, [asking("closing", cron="0 0 1 1 *")], claim_interval=60.0)
        async with engine:
            await asyncio.sleep(0.3)  # the loop has looked once and waits for a wake-up
            engine.schedules.wake()
            await asyncio.sleep(0)  # the wake-up's wait is done; the loop has not resumed yet
            await asyncio.wait_for(engine.schedules.aclose(), 5)
    finally:
        await store.close()


async def test_a_cancelled_trigger_still_drives_the_run_it_created(tmp_path: Path) -> None:
    """A TriggerSchedule cancelled (a client's deadline, a dropped connection) once its tick's
    transaction was handed to the store: the run it created is driven all the same, as Start's
    is, instead of staying `running` with no drive (on SQLite no lease ever expires for it)."""
    ran: Counter[str] = Counter()
    workflow = ticking("cancelled", ran, cron="0 0 1 1 *", overlap="allow")
    store = open_store(str(tmp_path / "runs.db"))
    await store.open()
    try:
        async with Engine(store, [workflow], claim_interval=0.1) as engine:
            # Cut each trigger a little later than the last, across the window of its write,
            # until a few were cut after it (however slow the machine's reads are). The window
            # may be a turn or two wide (a lone synced commit is made on the loop, without a
            # hand-off): once a trigger ends before its cut, sweep again from the start (it
            # was a single sweep, and one cut in it made this test fail now and then).
            created = 0
            for sweep in range(50):
                for turns in range(400):
                    request_id = f"r{sweep}-{turns}"
                    triggered = engine.schedules.trigger("cancelled", request_id=request_id)
                    trigger = asyncio.create_task(triggered)
                    for _ in range(turns):
                        await asyncio.sleep(0)
                    trigger.cancel()
                    outcome = (await asyncio.gather(trigger, return_exceptions=True))[0]
                    if not isinstance(outcome, asyncio.CancelledError):
                        break  # it ended before the cut: past the window
                    with contextlib.suppress(RunNotFound):
                        await engine.get_run(trigger_run_id("cancelled", request_id))
                        created += 1
                    if created >= 3:
                        break
                if created >= 3:
                    break
            assert created >= 3, "no trigger was cut after its tick was handed to the store"

            async def all_ended() -> bool:
                runs, _ = await engine.list_runs(workflow_id=workflow.id, page_size=1000)
                return all(run.status is RunStatus.SUCCESS for run in runs)

            await until(all_ended, 5, "every triggered run to end")
    finally:
        await store.close()


async def test_cli_trigger_retried_after_the_active_run_ended_says_it_was_active(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """A retry returns the first outcome, skipped, whose run has ended since: it said the run
    "is still active" (audit); now it says the run was, when triggered."""
    workflow = asking("held", cron="0 0 1 1 *", overlap="skip")
    async with (
        serving(tmp_path / "runs.db", workflows=[workflow]) as served,
        Client(served.address) as client,
    ):

        def trigger(key: str) -> Awaitable[Result]:
            args = ("schedules", "trigger", "held", "--request-id", key, "--target", served.address)
            return runservice(*args, env=server_env())

        started = await trigger("first")
        assert started.code == 0 and "started run" in started.out, started.err
        [run] = await scheduled_runs(client, workflow.id)

        async def suspended() -> bool:
            done = await client.get_workflow(workflow.id).run_execution_result(run.run_id)
            return done.status is RunStatus.SUSPENDED

        await until(suspended, 10, "the triggered run to suspend")
        told = f"held: skipped (overlap skip; run {run.run_id} was active when triggered)"
        skipped = await trigger("second")
        assert skipped.code == 0 and skipped.out.strip() == told, skipped
        assert (await _resume(client, workflow.id, run.run_id)).status is RunStatus.SUCCESS
        again = await trigger("second")
    assert again.code == 0 and again.out.strip() == told, again


async def test_cli_trigger_retried_after_its_run_was_deleted(serving: ServingFactory, tmp_path: Path) -> None:
    """The retry reports the first outcome, started, without the run (not 'still active')."""
    ran: Counter[str] = Counter()
    workflow = ticking("deleted", ran, cron="0 0 1 1 *")
    async with (
        serving(tmp_path / "runs.db", workflows=[workflow]) as served,
        Client(served.address) as client,
    ):
        args = ("schedules", "trigger", "deleted", "--request-id", "K", "--target", served.address)
        first = await runservice(*args, env=server_env())
        assert first.code == 0 and "started run" in first.out, first.err
        [run] = await scheduled_runs(client, workflow.id)

        async def ended() -> bool:
            done = await client.get_workflow(workflow.id).run_execution_result(run.run_id)
            return done.status is RunStatus.SUCCESS

        await until(ended, 10, "the triggered run")
        await client.get_workflow(workflow.id).delete_run_by_id(run.run_id)
        again = await runservice(*args, env=server_env())
    assert again.code == 0, again.err
    assert "started" in again.out and "deleted" in again.out and "active" not in again.out, again.out
