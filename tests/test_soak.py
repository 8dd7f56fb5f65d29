"""The kill -9 soak of issue 11: a real server killed with SIGKILL at random moments, restarted on the
same data, while a few hundred mixed runs are driven, resumed and watched (tests/soak_driver.py); on
SQLite in both layouts, and on PostgreSQL with one server, with two replicas, and with one server
whose database goes away and comes back.

Size and seed come from the environment, for a longer local run:
RUNSERVICE_SOAK_RUNS (300), RUNSERVICE_SOAK_KILLS (7), RUNSERVICE_SOAK_SEED (random, printed; it fixes
the plan of runs, inputs and kill points, not the exact instant each kill lands),
RUNSERVICE_SOAK_BUDGET (seconds of driving, 200), RUNSERVICE_SOAK_IN_FLIGHT (24 runs at once),
RUNSERVICE_SOAK_TIMEOUT (pytest timeout, 600), RUNSERVICE_SOAK_WORKFLOWS (comma-separated ids of
tests/soak_workflows.py, to soak one construct; all by default).
Run it alone with `.venv/bin/python -m pytest -q tests/test_soak.py -s`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path

import pytest
from conftest import Databases
from postgres import PostgresServer, find_bin_dir
from soak_driver import Config, Soak

pytestmark = pytest.mark.timeout(int(os.environ.get("RUNSERVICE_SOAK_TIMEOUT", "600")))


@pytest.mark.parametrize(
    "layout", [("--max-active-runs", "10"), ("--engine-process",)], ids=["one-process", "engine-process"]
)
async def test_kill_9_soak(tmp_path: Path, layout: tuple[str, ...]) -> None:
    """With `--engine-process` the kill hits the front, and its engine process dies with it. In
    one process the server drives at most 10 of the soak's 24 runs in flight: the rest wait for
    room, stored with no owner, when a kill lands too."""
    await _soak(dataclasses.replace(Config.from_env(), serve_args=layout), tmp_path)


async def test_kill_9_soak_on_postgresql(tmp_path: Path, pg_databases: Databases) -> None:
    """The same on PostgreSQL: internal progress there commits without waiting for the WAL
    flush, and the restarted server, under the killed one's `--replica-name`, takes its runs
    over at once (without the name, once their leases expire: the replicas case)."""
    url = await pg_databases.url_for(tmp_path / "soak")
    config = dataclasses.replace(Config.from_env(), database_url=url, serve_args=("--replica-name", "soak"))
    await _soak(config, tmp_path)


async def test_kill_9_soak_on_postgresql_replicas(tmp_path: Path, pg_databases: Databases) -> None:
    """Two replicas on one PostgreSQL database, both serving: every call and watch goes to either,
    each kill hits one of them, and the other takes its runs over when their leases expire. Every
    third kill is a SIGSTOP past the leases instead: the paused replica, once it goes on, commits
    nothing for the runs it lost and starts none of their bodies."""
    url = await pg_databases.url_for(tmp_path / "soak")
    await _soak(dataclasses.replace(Config.from_env(), database_url=url, replicas=2), tmp_path)


async def test_kill_9_soak_on_postgresql_with_outages(tmp_path: Path) -> None:
    """One server on a PostgreSQL server of the soak's own, and every third kill stops the
    database for a second instead (`pg_ctl stop -m fast`, then a start on the same data):
    calls meanwhile are refused as retryable, the runs wait, and every run goes on after it,
    with no body run again whose result was committed."""
    bin_dir = find_bin_dir()
    assert bin_dir is not None, "PostgreSQL's binaries are missing (.ci/run installs them)"
    database = PostgresServer(bin_dir)
    await asyncio.to_thread(database.start)
    try:
        url = await database.create_database()
        config = dataclasses.replace(
            Config.from_env(),
            database_url=url,
            database_server=database,
            serve_args=("--replica-name", "soak"),  # held again after each outage
        )
        await _soak(config, tmp_path)
    finally:
        await asyncio.to_thread(database.stop)
    # The outages were warnings: no run failed for them, nothing logged a trace.
    log = (tmp_path / "server.log").read_text(errors="replace")
    assert "storage failed" in log or "the database is unavailable" in log
    assert " ERROR " not in log and "Traceback" not in log, log[-3000:]


async def _soak(config: Config, tmp_path: Path) -> None:
    print(f"\nsoak: seed {config.seed} (RUNSERVICE_SOAK_SEED={config.seed}), data in {tmp_path}", flush=True)
    report = await Soak(config, tmp_path).run()
    for anomaly in report.anomalies:
        print(anomaly)
    print("kills hit bodies of:", dict(sorted(report.rerun_coverage.items())))
    print(report.summary(), flush=True)
    # The soak itself did what it claims: every kill happened, runs were watched and resumed.
    assert len(report.kills) == config.kills
    assert report.watched_events > 0 and report.resumes_sent > 0
    assert not report.anomalies, report.summary() + "\n" + "\n".join(map(str, report.anomalies[:40]))
