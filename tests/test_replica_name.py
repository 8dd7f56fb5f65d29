"""`--replica-name` on PostgreSQL: a server that restarts under its name takes over at once the
runs its previous process left, instead of after their leases end; a server of another name
waits for the leases, and one that finds its name held by a live server takes over nothing.
In process, two engines on one database: closing an engine leaves its runs `running` and
leased, as a killed process does (test_soak.py does the same with SIGKILL)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from conftest import Databases, Served, serving_on
from holding import Count, Hold

from runservice.model import RunStatus
from runservice.workflow import StepContext, create_step, create_workflow

pytestmark = pytest.mark.timeout(60)

LEASE = 30.0
"""Far longer than any wait here: only a take-over makes a left run move."""


gate = Hold()
"""Holds `hold` while the first engine drives it; `gate.entered` has every body's input."""


@create_step("hold", input_schema=Count, output_schema=Count)
async def hold(ctx: StepContext) -> Count:
    await gate.enter(ctx.input_data.count)
    return Count(count=ctx.input_data.count + 1)


held = create_workflow("held", input_schema=Count, output_schema=Count).then(hold).commit()


@pytest.fixture(autouse=True)
def fresh_gate() -> None:
    gate.reset()


def serving(url: str, name: str | None) -> AbstractAsyncContextManager[Served]:
    return serving_on(url, workflows=[held], lease_seconds=LEASE, replica_name=name)


async def left_running(url: str, name: str | None, count: int) -> str:
    """A run whose body started on a server named `name`, which then stops with the run
    `running` and leased to it."""
    async with serving(url, name) as served:
        run = await served.engine.start("held", input_data={"count": count})
        await until(lambda: count in gate.entered)
    return run.run_id


async def until(check: Any, within: float = 10.0) -> None:
    bound = time.monotonic() + within
    while not check():
        assert time.monotonic() < bound, "not within the bound"
        await asyncio.sleep(0.02)


async def settled(served: Served, run_id: str, within: float) -> RunStatus:
    bound = time.monotonic() + within
    while (status := (await served.engine.get_run(run_id)).status) is RunStatus.RUNNING:
        if time.monotonic() > bound:
            break
        await asyncio.sleep(0.05)
    return status


async def test_a_restart_under_the_same_name_takes_the_runs_over_at_once(
    pg_databases: Databases, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="runservice.engine")
    url = await pg_databases.url_for(tmp_path / "runs.db")
    run_id = await left_running(url, "alpha", 1)
    gate.release()
    async with serving(url, "alpha") as again:
        assert await settled(again, run_id, within=10) is RunStatus.SUCCESS
        assert (await again.engine.get_run(run_id)).result == {"count": 2}
    assert "taking over 1 runs left by an earlier process named 'alpha'" in caplog.text
    assert gate.entered == [1, 1]  # the body cut by the stop ran again, once


async def test_another_name_waits_for_the_leases(pg_databases: Databases, tmp_path: Path) -> None:
    url = await pg_databases.url_for(tmp_path / "runs.db")
    run_id = await left_running(url, "alpha", 1)
    gate.release()
    async with serving(url, "beta") as other:
        assert await settled(other, run_id, within=2) is RunStatus.RUNNING
        assert await other.store.count_unowned() == 0  # still leased to the stopped process
    async with serving(url, None) as unnamed:
        assert await settled(unnamed, run_id, within=1) is RunStatus.RUNNING
    async with serving(url, "alpha") as named:
        assert await settled(named, run_id, within=10) is RunStatus.SUCCESS


async def test_a_name_held_by_a_live_server_takes_nothing_over_until_it_is_gone(
    pg_databases: Databases, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The second server of a name takes nothing from the live first one; once the first is
    gone (as a killed process whose session the database ends a moment later), the second
    gets the name and takes over what the first left."""
    caplog.set_level(logging.INFO, logger="runservice.storage")
    url = await pg_databases.url_for(tmp_path / "runs.db")
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(serving(url, "alpha"))
        run = await first.engine.start("held", input_data={"count": 1})
        await until(lambda: gate.entered == [1])
        async with serving(url, "alpha") as second:
            assert "another session holds the replica name 'alpha'" in caplog.text
            await asyncio.sleep(1.5)
            assert gate.entered == [1]  # nothing taken from the live first server
            await stack.aclose()  # the first server goes, its run left running and leased
            gate.release()
            assert await settled(second, run.run_id, within=10) is RunStatus.SUCCESS
        assert gate.entered == [1, 1]
    assert "taking over 1 runs left by an earlier process named 'alpha'" in caplog.text
