"""The kill -9 soak of issue 11: a real server killed with SIGKILL at random moments, restarted on the
same data, while a few hundred mixed runs are driven, resumed and watched (tests/soak_driver.py).

Size and seed come from the environment, for a longer local run:
RUNSERVICE_SOAK_RUNS (300), RUNSERVICE_SOAK_KILLS (7), RUNSERVICE_SOAK_SEED (random, printed; it fixes
the plan of runs, inputs and kill points, not the exact instant each kill lands),
RUNSERVICE_SOAK_BUDGET (seconds of driving, 200), RUNSERVICE_SOAK_IN_FLIGHT (24 runs at once),
RUNSERVICE_SOAK_TIMEOUT (pytest timeout, 600), RUNSERVICE_SOAK_WORKFLOWS (comma-separated ids of
tests/soak_workflows.py, to soak one construct; all by default).
Run it alone with `.venv/bin/python -m pytest -q tests/test_soak.py -s`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from soak_driver import Config, Soak

pytestmark = pytest.mark.timeout(int(os.environ.get("RUNSERVICE_SOAK_TIMEOUT", "600")))

KNOWN_DEFECTS_ISSUE_11 = frozenset(
    {
        "wrong_result",  # item 0: a foreach recovered after a kill finishes with lost or wrong items
        "bad_step_record",  # item 0: a successful run keeps suspended/running item records
        "accepted_resume_ignored",  # item 0b: foreach over a nested workflow, resume accepted, nothing runs
        "accepted_resume_lost",  # item 1 (and 0b): an acknowledged resume is not carried out after a kill
        "resumed_without_request",  # item 1: at boot every suspended item is resumed with one item's data
        # item 1 in a parallel branch / plain step: killed after its resumed start was committed, the
        # step is re-run from scratch without its resume data (and suspends again)
        "rerun_after_commit",
        "not_terminal",  # the runs left suspended forever by the three above
    }
)
"""Anomaly kinds today's engine is known to produce (issue 11 "What broke" 0, 0b, 1): the test
xfails on them alone. Delete this set once those fixes are merged: every anomaly then fails."""


async def test_kill_9_soak(tmp_path: Path) -> None:
    config = Config.from_env()
    print(f"\nsoak: seed {config.seed} (RUNSERVICE_SOAK_SEED={config.seed}), data in {tmp_path}", flush=True)
    report = await Soak(config, tmp_path).run()
    for anomaly in report.anomalies:
        print(anomaly)
    print("kills hit bodies of:", dict(sorted(report.rerun_coverage.items())))
    print(report.summary(), flush=True)
    # The soak itself did what it claims: every kill happened, runs were watched and resumed.
    assert len(report.kills) == config.kills
    assert report.watched_events > 0 and report.resumes_sent > 0
    unknown = [a for a in report.anomalies if a.kind not in KNOWN_DEFECTS_ISSUE_11]
    assert not unknown, report.summary() + "\n" + "\n".join(map(str, unknown[:40]))
    if report.anomalies:
        pytest.xfail("known issue 11 defects only: " + report.summary())
