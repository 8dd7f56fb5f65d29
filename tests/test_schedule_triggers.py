"""TriggerSchedule with a request id, through the real server on both backends: a retry returns
the first outcome (the same run, or the same skip or buffer, with the same tick) and fires
nothing, also after a restart; another request id fires again."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import orjson
import pytest
from clitools import runservice
from conftest import Databases, ServingFactory
from test_schedules import asking

from runservice import limits
from runservice.client import Client, SyncClient
from runservice.engine.retention import Retention
from runservice.engine.schedules import legacy_trigger_key, trigger_run_id
from runservice.errors import InvalidArgument
from runservice.model import RunStatus

pytestmark = pytest.mark.timeout(60)

YEARLY = "0 0 1 1 *"  # no cron tick during a test: only triggers fire


async def run_ids(client: Client, workflow_id: str) -> set[str]:
    runs, _ = await client.get_workflow(workflow_id).runs(page_size=1000)
    return {run.run_id for run in runs}


async def until(check: Callable[[], Awaitable[bool]], limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_retried_trigger_returns_its_run_and_starts_nothing(
    serving: ServingFactory, tmp_path: Path
) -> None:
    workflow = asking("retried", cron=YEARLY, overlap="allow")
    db = tmp_path / "runs.db"
    async with serving(db, workflows=[workflow]) as served, Client(served.address) as client:
        first = await client.schedules.trigger("retried", request_id="req-1")
        assert first.outcome == "started" and first.run is not None and first.tick is not None
        again = await client.schedules.trigger("retried", request_id="req-1")
        assert again.outcome == "started" and again.run is not None
        assert again.run.run_id == first.run.run_id and again.tick == first.tick
        assert again.run.schedule_id == "retried"
        assert await run_ids(client, workflow.id) == {first.run.run_id}
        # Another request id fires again (overlap allow: a second run while the first waits).
        other = await client.schedules.trigger("retried", request_id="req-2")
        assert other.outcome == "started" and other.run is not None
        assert other.run.run_id != first.run.run_id and other.tick != first.tick
        assert await run_ids(client, workflow.id) == {first.run.run_id, other.run.run_id}
        # Without a request id the client makes a fresh one: each call fires.
        fresh = await client.schedules.trigger("retried")
        assert fresh.outcome == "started" and fresh.run is not None
        assert fresh.run.run_id not in {first.run.run_id, other.run.run_id}
        ids = await run_ids(client, workflow.id)
        assert len(ids) == 3
    # A new server on the same database remembers both requests.
    async with serving(db, workflows=[workflow]) as served, Client(served.address) as client:
        for request_id, before in (("req-1", first), ("req-2", other)):
            retried = await client.schedules.trigger("retried", request_id=request_id)
            assert retried.outcome == "started" and retried.run is not None and before.run is not None
            assert retried.run.run_id == before.run.run_id and retried.tick == before.tick
        assert await run_ids(client, workflow.id) == ids


async def test_a_retried_skip_or_buffer_returns_the_first_outcome(
    serving: ServingFactory, tmp_path: Path
) -> None:
    workflow = asking("buffered", cron=YEARLY, overlap="buffer_one")
    db = tmp_path / "runs.db"
    async with serving(db, workflows=[workflow]) as served, Client(served.address) as client:
        started = await client.schedules.trigger("buffered", request_id="a")
        assert started.outcome == "started" and started.run is not None
        active = started.run.run_id
        buffered = await client.schedules.trigger("buffered", request_id="b")
        assert buffered.outcome == "buffered" and buffered.active_run_id == active and buffered.run is None
        skipped = await client.schedules.trigger("buffered", request_id="c")
        assert skipped.outcome == "skipped" and skipped.active_run_id == active
        pending = (await client.schedules.get("buffered")).pending_tick
        assert pending == buffered.tick

        async def same_outcomes() -> None:
            for request_id, before in (("a", started), ("b", buffered), ("c", skipped)):
                retried = await client.schedules.trigger("buffered", request_id=request_id)
                assert (retried.outcome, retried.tick, retried.active_run_id) == (
                    before.outcome,
                    before.tick,
                    before.active_run_id,
                ), request_id
                assert (retried.run and retried.run.run_id) == (before.run and before.run.run_id)

        await same_outcomes()
        # A retry of the skipped trigger did not take the buffered slot's place, nor add a run.
        assert (await client.schedules.get("buffered")).pending_tick == pending
        assert await run_ids(client, workflow.id) == {active}
    async with serving(db, workflows=[workflow]) as served, Client(served.address) as client:
        await same_outcomes()
        # The active run ends: the buffered tick starts its one run; retries still start nothing.
        handle = await client.get_workflow(workflow.id).create_run(active)
        assert (await handle.resume_async("yes")).status is RunStatus.SUCCESS

        async def two_runs() -> bool:
            return len(await run_ids(client, workflow.id)) == 2

        await until(two_runs, 10, "the buffered tick's run")
        await same_outcomes()
        assert len(await run_ids(client, workflow.id)) == 2


async def test_concurrent_retries_of_one_trigger_start_one_run(
    serving: ServingFactory, tmp_path: Path
) -> None:
    workflow = asking("raced", cron=YEARLY, overlap="allow")
    async with (
        serving(tmp_path / "runs.db", workflows=[workflow]) as served,
        Client(served.address) as client,
    ):
        replies = await asyncio.gather(
            *(client.schedules.trigger("raced", request_id="same") for _ in range(4))
        )
        assert {reply.outcome for reply in replies} == {"started"}
        assert len({reply.run.run_id for reply in replies if reply.run is not None}) == 1
        assert len({reply.tick for reply in replies}) == 1
        assert len(await run_ids(client, workflow.id)) == 1


async def test_blocking_client_and_cli_pass_the_request_id(serving: ServingFactory, tmp_path: Path) -> None:
    workflow = asking("keyed", cron=YEARLY, overlap="allow")
    async with (
        serving(tmp_path / "runs.db", workflows=[workflow]) as served,
        Client(served.address) as client,
    ):
        sync = SyncClient(served.address)
        try:
            first = await asyncio.to_thread(sync.schedules.trigger, "keyed", request_id="sync-1")
            again = await asyncio.to_thread(sync.schedules.trigger, "keyed", request_id="sync-1")
        finally:
            sync.close()
        assert first.run is not None and again.run is not None and again.run.run_id == first.run.run_id
        cli = [
            ("schedules", "trigger", "keyed", "--request-id", "cli-1", "--json", "--target", served.address)
        ] * 2
        fired = [await runservice(*args) for args in cli]
        assert all(result.code == 0 for result in fired), [result.err for result in fired]
        cli_runs = {result.json()["run"]["run_id"] for result in fired}
        assert len(cli_runs) == 1 and first.run.run_id not in cli_runs
        assert await run_ids(client, workflow.id) == {first.run.run_id, *cli_runs}
        # A request id longer than an id is refused, and fires nothing.
        with pytest.raises(InvalidArgument) as refused:
            await client.schedules.trigger("keyed", request_id="k" * (limits.ID + 1))
        assert "request_id" in str(refused.value)
        assert len(await run_ids(client, workflow.id)) == 2


async def test_schedule_history_is_forgotten_once_old_but_a_kept_runs_origin_stays(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """The retention sweep forgets, after a day (here half a second), trigger outcomes and the
    tick records whose run is gone or that started none: an every-minute schedule left 525,000
    rows a year. A tick whose run is kept stays, so the run still names its schedule."""
    workflow = asking("swept", cron=YEARLY, overlap="skip")
    async with (
        serving(tmp_path / "runs.db", workflows=[workflow]) as served,
        Client(served.address) as client,
    ):
        kept = await client.schedules.trigger("swept", request_id="kept")
        assert kept.outcome == "started" and kept.run is not None
        skipped = await client.schedules.trigger("swept", request_id="skipped")
        assert skipped.outcome == "skipped"
        handle = await client.get_workflow(workflow.id).create_run(kept.run.run_id)
        assert (await handle.resume_async("yes")).status is RunStatus.SUCCESS
        deleted = await client.schedules.trigger("swept", request_id="deleted")
        assert deleted.outcome == "started" and deleted.run is not None
        gone = await client.get_workflow(workflow.id).create_run(deleted.run.run_id)
        assert (await gone.resume_async("yes")).status is RunStatus.SUCCESS
        await client.get_workflow(workflow.id).delete_run_by_id(deleted.run.run_id)
        await asyncio.sleep(0.6)
        young = await client.schedules.trigger("swept", request_id="young")
        assert young.outcome == "started" and young.run is not None

        sweeper = Retention(served.store, 0, marks=0.5)
        assert await sweeper.sweep() == 0
        # Two trigger outcomes and two ticks (skipped, deleted), and the DeleteRun's request mark.
        assert sweeper.forgotten == 5
        assert await served.store.forget_schedule_history(time.time() - 0.5, 10) == 0
        for request_id in ("skipped", "deleted"):
            assert await served.store.trigger_request("swept", request_id) is None, request_id
        for request_id in ("kept", "young"):
            assert await served.store.trigger_request("swept", request_id) is not None, request_id
        # A retry of the kept run's trigger still answers with its run (its record stays).
        retried = await client.schedules.trigger("swept", request_id="kept")
        assert retried.outcome == "started" and retried.run is not None
        assert retried.run.run_id == kept.run.run_id
        origins = await served.store.schedule_origins([kept.run.run_id, young.run.run_id])
        assert origins == {kept.run.run_id: ("swept", kept.tick), young.run.run_id: ("swept", young.tick)}
        assert (await client.get_workflow(workflow.id).run_by_id(kept.run.run_id)).schedule_id == "swept"
        # Forgotten, a retry fires again: a day after, a retry is a new trigger.
        again = await client.schedules.trigger("swept", request_id="deleted")
        assert again.outcome == "skipped" and again.active_run_id == young.run.run_id


async def record_as_before_schedule_triggers(
    database: str, schedule_id: str, request_id: str, record: dict[str, object]
) -> None:
    """A trigger's first outcome as a version before `schedule_triggers` (SQLite schema 12,
    PostgreSQL 10) recorded it: a `requests` row under a derived key, the record in `kind`."""
    row = (
        legacy_trigger_key(schedule_id, request_id),
        "trigger " + orjson.dumps(record).decode(),
        request_id,
    )
    if database.startswith("postgresql://"):
        conn = await asyncpg.connect(database)
        try:
            await conn.execute("INSERT INTO requests (run_id, kind, request_id) VALUES ($1, $2, $3)", *row)
        finally:
            await conn.close()
        return

    def insert() -> None:
        with sqlite3.connect(database, timeout=10) as conn:
            conn.execute("INSERT INTO requests (run_id, kind, request_id) VALUES (?, ?, ?)", row)
        conn.close()

    await asyncio.to_thread(insert)


async def test_a_trigger_recorded_before_schedule_triggers_still_answers_its_retries(
    serving: ServingFactory, databases: Databases, tmp_path: Path
) -> None:
    """The migration to `schedule_triggers` copied none of the `requests` rows that held the
    first outcomes before it (audit): after an upgrade, a retry of a trigger that had started
    a run answered SCHEDULE_NOT_FOUND (its run id was taken), and one that had been skipped
    started a run once the active one ended. Those rows are still read."""
    workflow = asking("legacy", cron=YEARLY, overlap="skip")
    db = tmp_path / "runs.db"
    async with serving(db, workflows=[workflow]) as served, Client(served.address) as client:
        earlier = time.time() - 3600
        run_id = trigger_run_id("legacy", "old-started")  # the run the old trigger started
        handle = await client.get_workflow(workflow.id).create_run(run_id)
        assert (await handle.start_async({})).status is RunStatus.SUSPENDED
        url = await databases.url_for(db)
        started = {"outcome": "started", "tick": earlier, "run_id": run_id, "active_run_id": None}
        skipped = {"outcome": "skipped", "tick": earlier + 1, "run_id": None, "active_run_id": run_id}
        await record_as_before_schedule_triggers(url, "legacy", "old-started", started)
        await record_as_before_schedule_triggers(url, "legacy", "old-skipped", skipped)
        assert (await handle.resume_async("yes")).status is RunStatus.SUCCESS  # nothing active now

        again = await client.schedules.trigger("legacy", request_id="old-started")
        assert again.outcome == "started" and again.tick == earlier
        assert again.run is not None and again.run.run_id == run_id
        still = await client.schedules.trigger("legacy", request_id="old-skipped")
        assert still.outcome == "skipped" and still.tick == earlier + 1 and still.active_run_id == run_id
        assert await run_ids(client, workflow.id) == {run_id}  # nothing fired again
        fresh = await client.schedules.trigger("legacy", request_id="new")  # a new one fires
        assert fresh.outcome == "started" and fresh.run is not None and fresh.run.run_id != run_id
