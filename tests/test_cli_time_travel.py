"""`runservice time-travel` and `runservice fork` (and `runs --forked-from`) run as the
installed console script against a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from clitools import Result, cli_workflows, runservice
from conftest import ServingFactory

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def target(serving: ServingFactory, tmp_path: Path) -> AsyncIterator[str]:
    async with serving(tmp_path / "runs.db", workflows=cli_workflows()) as served:
        yield served.address


async def cli(target: str, *args: str) -> Result:
    return await runservice(*args, "--target", target)


async def test_time_travel_fork_and_list_forks(target: str) -> None:
    started = await cli(target, "start", "echo", "-i", '{"count": 1}', "--wait", "--run-id", "cli-tt")
    assert started.code == 0, started.err

    travelled = await cli(
        target, "time-travel", "cli-tt", "--step", "bump", "-i", '{"count": 41}', "--wait", "--json"
    )
    assert travelled.code == 0, travelled.err
    run = travelled.json()
    assert run["status"] == "success" and run["result"] == {"count": 42}
    assert run["travel"]["count"] == 1

    forked = await cli(
        target, "fork", "cli-tt", "--step", "bump", "-i", '{"count": 9}', "--new-run-id", "cli-fork", "--wait"
    )
    assert forked.code == 0, forked.err
    assert forked.out.splitlines()[0] == "run cli-fork (echo) success"

    listed = await cli(target, "runs", "--forked-from", "cli-tt", "--json")
    assert [r["run_id"] for r in listed.json()["runs"]] == ["cli-fork"]
    shown = await cli(target, "show", "cli-fork")
    assert "forked from: cli-tt" in shown.out

    watched = await cli(target, "watch", "cli-tt")  # piped: one line per event, to the new finish
    assert watched.code == 0, watched.err
    kinds = [line.split()[2] for line in watched.out.splitlines()]
    assert kinds.count("finish") == 2 and kinds[kinds.index("time-travel") + 1] == "start"

    unknown = await cli(target, "time-travel", "cli-tt", "--step", "nope")
    assert unknown.code != 0 and "nope" in unknown.err and "Traceback" not in unknown.err
    # The message is the violation: said once (it was repeated in parentheses: an audit).
    assert unknown.err.count("has no step 'nope'") == 1, unknown.err


async def test_a_travel_or_fork_waited_on_that_fails_exits_3(target: str) -> None:
    """As `start --wait` does (README, exit codes: an audit found these two undocumented)."""
    failed = await cli(target, "start", "failing", "-i", '{"value": 1}', "--wait", "--run-id", "cli-tt-fail")
    assert failed.code == 3, failed.err
    travelled = await cli(target, "time-travel", "cli-tt-fail", "--step", "broken", "--wait")
    assert travelled.code == 3 and travelled.out.startswith("run cli-tt-fail (failing) failed"), travelled
    forked = await cli(target, "fork", "cli-tt-fail", "--step", "broken", "--new-run-id", "cli-f", "--wait")
    assert forked.code == 3 and forked.out.startswith("run cli-f (failing) failed"), forked
    unwaited = await cli(target, "fork", "cli-tt-fail", "--step", "broken")
    assert unwaited.code == 0, unwaited


async def test_time_travel_with_resume_data(target: str) -> None:
    started = await cli(
        target,
        "start",
        "human-approval",
        "-i",
        '{"amount": 120, "requester": "ada"}',
        "--wait",
        "--run-id",
        "cli-tt-ask",
    )
    assert started.code == 0, started.err
    assert started.out.splitlines()[0] == "run cli-tt-ask (human-approval) suspended"

    refused = await cli(
        target, "time-travel", "cli-tt-ask", "--step", "approve", "--resume-data", '{"approved": "maybe"}'
    )
    assert refused.code != 0 and "resume_data" in refused.err and "Traceback" not in refused.err

    travelled = await cli(
        target,
        "time-travel",
        "cli-tt-ask",
        "--step",
        "approve",
        "--resume-data",
        '{"approved": true, "approver": "grace"}',
        "--wait",
        "--json",
    )
    assert travelled.code == 0, travelled.err
    run = travelled.json()
    assert run["status"] == "success" and run["travel"]["count"] == 1
    approve = next(s for s in run["steps"] if s["path"] == ["approve"])
    assert approve["resume_payload"] == {"approved": True, "approver": "grace"}
