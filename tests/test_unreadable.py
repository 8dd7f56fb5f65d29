"""A run whose stored data does not decode (a row changed by hand, written by a newer
runservice, or damaged) is refused as DATA_LOSS (`RUN_UNREADABLE`, naming the run and the
part) with one log line, never an INTERNAL error with a traceback; the other runs read as
before, and the unreadable one can be deleted. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import run_writes
from conftest import Databases, serving_on

from runservice import errors
from runservice.client import Client
from runservice.model import RunStatus
from runservice.storage import Claim, RunWrite, rows
from runservice.storage.sqlite import SqliteStore

pytestmark = pytest.mark.timeout(60)

BAD = b"{not json"

CORRUPTIONS = {
    "row": ("UPDATE runs SET state = {bad} WHERE run_id = {run}", "bad-row"),
    "step records": ("UPDATE steps SET record = {bad} WHERE run_id = {run}", "bad-steps"),
    "events": ("UPDATE events SET body = {bad} WHERE run_id = {run} AND seq = 2", "bad-events"),
}
ACTIVE = "bad-active"
"""A run made active again by hand, its step records damaged: the boot cannot re-drive it."""
REACTIVATE = "UPDATE runs SET status = 'running', ended_at = NULL WHERE run_id = {run}"


async def corrupt(url: str) -> None:
    """Write BAD into one part of each of the runs CORRUPTIONS names, as a hand edit would."""
    if url.startswith("postgresql://"):
        conn = await asyncpg.connect(url)
        try:
            for sql, run in [*CORRUPTIONS.values(), (CORRUPTIONS["step records"][0], ACTIVE)]:
                await conn.execute(sql.format(bad="$1", run="$2"), BAD, run)
            await conn.execute(REACTIVATE.format(run="$1"), ACTIVE)
        finally:
            await conn.close()
        return
    with sqlite3.connect(url) as db:
        for sql, run in [*CORRUPTIONS.values(), (CORRUPTIONS["step records"][0], ACTIVE)]:
            # The text type, as the store writes JSON on SQLite (a BLOB in a column is a reference).
            db.execute(sql.format(bad="?", run="?"), (BAD.decode(), run))
        db.execute(REACTIVATE.format(run="?"), (ACTIVE,))
    db.close()


async def test_an_unreadable_run_is_data_loss_and_the_others_read(
    databases: Databases, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rows, "_noticed", {})  # each run is logged once a minute per process
    url = await databases.url_for(tmp_path / "runs.db")
    ids = ["good", ACTIVE, *(run for _, run in CORRUPTIONS.values())]
    async with serving_on(url) as served, Client(served.address, timeout=10) as client:
        for run_id in ids:
            run = await client.get_workflow("echo").create_run(run_id=run_id)
            assert (await run.start_async(input_data={"count": 1})).status is RunStatus.SUCCESS
    await corrupt(url)

    async with serving_on(url) as served, Client(served.address, timeout=10) as client:
        echo = client.get_workflow("echo")
        good = await echo.run_by_id("good")
        assert good.status is RunStatus.SUCCESS and good.result is not None

        async def refused(call: Any) -> errors.ServiceError:
            with pytest.raises(errors.DataLoss) as caught:
                await call
            return caught.value

        for part, (_, run_id) in CORRUPTIONS.items():
            if part == "events":
                error = await refused(_drain(client, run_id))
            else:
                error = await refused(echo.run_by_id(run_id))
            assert isinstance(error, errors.RunUnreadable)
            assert error.reason == "RUN_UNREADABLE"
            assert error.metadata == {"run_id": run_id, "part": part}
            assert (
                f"run '{run_id}' cannot be read: what is stored as its {part} does not decode"
                in error.message
            )
        # The summary listing reads no JSON column it could fail on; the full one names the run.
        summary, _ = await echo.runs()
        assert {run.run_id for run in summary} == set(ids)
        listing = await refused(echo.runs(full=True))
        assert listing.metadata == {"run_id": "bad-row", "part": "row"}

        # The active one could not be re-driven: it ended failed, saying why, without a traceback.
        for _ in range(100):
            summary, _ = await echo.runs()
            if {run.run_id: run.status for run in summary}[ACTIVE] is RunStatus.FAILED:
                break
            await asyncio.sleep(0.05)
        assert {run.run_id: run.status for run in summary}[ACTIVE] is RunStatus.FAILED

        # The unreadable runs can be deleted; the listing then reads again.
        for run_id in [ACTIVE, *(run for _, run in CORRUPTIONS.values())]:
            await echo.delete_run_by_id(run_id)
        runs, _ = await echo.runs()
        assert [run.run_id for run in runs] == ["good"]

    lines = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
    assert any(
        line.startswith("run bad-row cannot be read: what is stored as its row does not") for line in lines
    )
    assert any(
        line.startswith(f"run {ACTIVE}: cannot be recovered: run '{ACTIVE}' cannot be") for line in lines
    )
    assert not [r for r in caplog.records if r.exc_info], "no traceback was logged"


async def _drain(client: Client, run_id: str) -> None:
    async for _ in client.follow(run_id, 0):
        pass


async def _set_status(url: str, run_id: str, status: str) -> None:
    if url.startswith("postgresql://"):
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("UPDATE runs SET status = $1 WHERE run_id = $2", status, run_id)
        finally:
            await conn.close()
        return
    with sqlite3.connect(url) as db:
        db.execute("UPDATE runs SET status = ? WHERE run_id = ?", (status, run_id))
    db.close()


async def test_a_status_this_code_does_not_know_fails_its_own_changes_not_a_batch(
    databases: Databases, tmp_path: Path
) -> None:
    """A status read back in the writer (a delete, a conflicting create, a change whose
    condition failed) was decoded there: one unknown status failed every change of its batch
    (an audit saw resumes of other runs answered INTERNAL, and a resumed run ended failed).
    Now only that run's changes are refused, the overlap check of a schedule ignores it, and
    it can be deleted."""
    url = await databases.url_for(tmp_path / "runs.db")
    good = [f"good-{i}" for i in range(8)]
    async with serving_on(url) as served, Client(served.address, timeout=10) as client:
        approval = client.get_workflow("approval")
        for run_id in [*good, "odd"]:
            run = await approval.create_run(run_id=run_id)
            assert (await run.start_async(input_data={"count": 1})).status is RunStatus.SUSPENDED
    await _set_status(url, "odd", "paused")  # a newer release's status, or a hand edit

    async with serving_on(url) as served, Client(served.address, timeout=10) as client:
        approval = client.get_workflow("approval")

        async def resume(run_id: str) -> RunStatus:
            run = await approval.create_run(run_id=run_id)
            return (await run.resume_async(resume_data={"approved": True})).status

        async def start_odd() -> BaseException | None:
            try:
                await (await approval.create_run(run_id="odd")).start_async(input_data={"count": 1})
            except Exception as exc:  # the answer for the odd run itself
                return exc
            return None

        outcomes = await asyncio.gather(*(resume(run_id) for run_id in good), start_odd(), start_odd())
        assert outcomes[: len(good)] == [RunStatus.SUCCESS] * len(good)
        for refused in outcomes[len(good) :]:
            assert isinstance(refused, errors.RunUnreadable | errors.AlreadyExists), refused
        with pytest.raises(errors.RunUnreadable) as unreadable:
            await approval.run_by_id("odd")
        assert unreadable.value.metadata == {"run_id": "odd", "part": "status"}
        await approval.delete_run_by_id("odd")
        with pytest.raises(errors.RunNotFound):
            await approval.run_by_id("odd")


@pytest.mark.parametrize(
    "edit",
    [
        "last_seq = 'x'",
        "epoch = 'x'",
        "owner = 'gone', lease_expires_at = 'x'",
        "last_seq = 9223372036854775807",
        "epoch = 9223372036854775807",
    ],
    ids=["sequence", "epoch", "lease-end", "sequence-at-64-bits", "epoch-at-64-bits"],
)
async def test_a_row_whose_numbers_are_text_fails_its_own_change_not_a_batch(
    tmp_path: Path, edit: str
) -> None:
    """SQLite keeps whatever a hand edit writes in a number column. The writer reads a run's
    sequence, epoch and lease end before it changes the run (a claim adds one to the epoch
    and compares the lease end with now): text there, or a number the change would carry
    past 64 bits, refuses that change as RUN_UNREADABLE, and the other changes of its batch
    commit."""
    store = SqliteStore(str(tmp_path / "runs.db"))
    await store.open()
    try:
        for run_id in ("odd", "good"):
            assert (await store.write(run_writes.new_run(run_id))).applied
        with sqlite3.connect(tmp_path / "runs.db") as db:
            db.execute(f"UPDATE runs SET {edit} WHERE run_id = 'odd'")
        db.close()
        claim = RunWrite("odd", claim=Claim("here", 30.0), events=run_writes.progress("odd").events)
        # Submitted together: one batch, one transaction.
        odd, good = store.submit(claim), store.submit(run_writes.progress("good"))
        assert (await good).applied
        with pytest.raises(errors.RunUnreadable) as refused:
            await odd
        assert refused.value.metadata == {"run_id": "odd", "part": "row"}
        assert (await store.write(run_writes.finish("good"))).status is RunStatus.SUCCESS
    finally:
        await store.close()
