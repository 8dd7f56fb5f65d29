"""Versioned definitions through the real server, on both backends.

Two versions of one workflow are served side by side: new runs start on the newest, runs
in flight finish on the version they started on, and a run whose version is no longer
served (or whose version now has another step graph) is refused with FAILED_PRECONDITION
and a stable reason, left intact until a server serves its definition again.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from clitools import runservice
from conftest import Databases, ServingFactory
from process import ROOT, ServerProcess, serve_argv, server_env, start_server
from pydantic import BaseModel

from runservice import errors
from runservice.client import Client, RunHandle
from runservice.engine import leases
from runservice.engine.versions import not_served
from runservice.model import Run, RunStatus
from runservice.storage import Claim, RunQuery, RunWrite, open_store
from runservice.storage import postgres as pg
from runservice.storage import sqlite as sqlite_store
from runservice.v1 import run_service_pb2, run_service_pb2_grpc
from runservice.workflow import StepContext, Workflow, create_step, create_workflow

pytestmark = pytest.mark.timeout(60)


class Decision(BaseModel):
    approved: bool


HOLD = {"on": False}
"""While on, the `prepare` step waits (a run is left `running` when its server stops)."""


@create_step("prepare")
async def prepare(ctx: StepContext) -> dict[str, Any]:
    while HOLD["on"]:
        await asyncio.sleep(0.02)
    return {"n": ctx.input_data["n"]}


@create_step("gate", resume_schema=Decision)
async def gate(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        await ctx.suspend({"ask": "approve?"})
        return None
    return {"approved": ctx.resume_data.approved}


@create_step("finish_v1")
async def finish_v1(ctx: StepContext) -> dict[str, Any]:
    return {"by": "v1", **ctx.input_data}


@create_step("finish_v2")
async def finish_v2(ctx: StepContext) -> dict[str, Any]:
    return {"by": "v2", **ctx.input_data}


@create_step("audit")
async def audit(ctx: StepContext) -> dict[str, Any]:
    return {**ctx.input_data, "by": "v1-changed"}


def review(version: str | None, *steps: Any) -> Workflow:
    workflow = create_workflow("review") if version is None else create_workflow("review", version=version)
    for step in steps:
        workflow.then(step)
    return workflow.commit()


V1 = review(None, prepare, gate, finish_v1)  # no version given: the default, "1"
V2 = review("2", prepare, gate, finish_v2)
V1_CHANGED = review("1", prepare, gate, finish_v1, audit)  # the same version id, another graph


@pytest.fixture(autouse=True)
def released() -> None:
    HOLD["on"] = False


def test_version_and_digest_identify_a_definition() -> None:
    assert V1.version == "1" and V1_CHANGED.version == "1" and V2.version == "2"
    assert V1.digest.startswith("sha256:") and len(V1.digest) == len("sha256:") + 64
    # The digest is the graph: the same graph built again has the same digest...
    assert review("7", prepare, gate, finish_v1).digest == V1.digest
    # ...and another graph has another.
    assert len({V1.digest, V2.digest, V1_CHANGED.digest}) == 3


async def test_digest_is_stable_across_processes() -> None:
    # Generated ids (sleep_1, mapping_2) and schemas only: nothing of the process's memory.
    code = (
        "from runservice.workflow import clone_step, create_workflow, create_step\n"
        "from pydantic import BaseModel\n"
        "class N(BaseModel):\n    n: int\n"
        "@create_step('s', input_schema=N)\nasync def s(ctx): return ctx.input_data\n"
        "wf = (create_workflow('w', input_schema=N).then(s).sleep(1).map(lambda c: c.input_data)"
        ".branch([(lambda c: True, clone_step(s, id='t'))]).commit())\n"
        "print(wf.digest)\n"
    )
    digests = set()
    for _ in range(2):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        digests.add(out.decode().strip())
    here: dict[str, Any] = {}
    exec(code.replace("print(wf.digest)", ""), here)
    assert digests == {here["wf"].digest}


async def show(target: str, run_id: str) -> str:
    """`runservice show RUN`'s output."""
    shown = await runservice("show", run_id, "--target", target)
    assert shown.code == 0, shown.err
    return shown.out


async def test_two_versions_side_by_side_and_refusals(tmp_path: Path, serving: ServingFactory) -> None:
    db = tmp_path / "runs.db"
    async with serving(db, workflows=[V1]) as served, Client(served.address, timeout=10.0) as client:
        handle = client.get_workflow("review")
        details = await handle.details()
        assert (details.version, details.digest, details.versions) == ("1", V1.digest, (("1", V1.digest),))
        old = await handle.create_run(run_id="old")
        suspended = await old.start_async(input_data={"n": 1})
        assert suspended.status is RunStatus.SUSPENDED
        assert (suspended.definition_version, suspended.definition_digest) == ("1", V1.digest)
        stranded = await handle.create_run(run_id="stranded")
        await stranded.start_async(input_data={"n": 2})

    # Deploy v2 next to v1: new runs start on v2, the v1 runs finish on v1's steps.
    async with serving(db, workflows=[V1, V2]) as served, Client(served.address, timeout=10.0) as client:
        handle = client.get_workflow("review")
        details = await handle.details()
        assert details.version == "2" and details.digest == V2.digest
        assert details.versions == (("1", V1.digest), ("2", V2.digest))
        assert [n["id"] for n in details.step_graph] == ["prepare", "gate", "finish_v2"]
        listed = await client.list_workflows()
        assert [(w.id, w.version, w.versions) for w in listed] == [("review", "2", details.versions)]

        new = await handle.create_run(run_id="new")
        started = await new.start_async(input_data={"n": 3})
        assert (started.definition_version, started.definition_digest) == ("2", V2.digest)
        assert (await new.resume_async(resume_data={"approved": True})).result == {
            "by": "v2",
            "approved": True,
        }

        resumed = await client.get_workflow("review").create_run(run_id="old")
        finished = await resumed.resume_async(resume_data={"approved": False})
        assert finished.status is RunStatus.SUCCESS
        assert finished.result == {"by": "v1", "approved": False}
        assert [s.path[-1] for s in finished.steps] == ["prepare", "gate", "finish_v1"]
        assert finished.definition_version == "1"

        # Which runs still need v1 (the operator's check before retiring it).
        on_v1, _ = await handle.runs(version="1", full=True)
        assert {r.run_id: r.status for r in on_v1} == {
            "old": RunStatus.SUCCESS,
            "stranded": RunStatus.SUSPENDED,
        }
        active_v1, _ = await handle.runs(version="1", status=[RunStatus.SUSPENDED, RunStatus.RUNNING])
        assert [r.run_id for r in active_v1] == ["stranded"]
        on_v2, _ = await handle.runs(version="2")
        assert [(r.run_id, r.definition_version) for r in on_v2] == [("new", "2")]
        assert (await handle.runs(version="9"))[0] == []
        got = await handle.run_by_id("new")
        assert (got.definition_version, got.definition_digest) == ("2", V2.digest)

    # v1 retired too early: resuming its run is refused, the run is left as it was.
    async with serving(db, workflows=[V2]) as served, Client(served.address, timeout=10.0) as client:
        handle = client.get_workflow("review")
        run = await handle.create_run(run_id="stranded")
        with pytest.raises(errors.WorkflowVersionUnavailable) as gone:
            await run.resume_async(resume_data={"approved": True})
        assert gone.value.reason == "WORKFLOW_VERSION_UNAVAILABLE"
        assert gone.value.metadata["recorded_version"] == "1"
        assert gone.value.metadata["served_versions"] == "2"
        with pytest.raises(errors.WorkflowVersionUnavailable):  # time travel and fork need it too
            await run.time_travel("gate")
        with pytest.raises(errors.WorkflowVersionUnavailable):
            await run.fork("gate")
        async with grpc.aio.insecure_channel(served.address) as channel:
            stub = run_service_pb2_grpc.RunServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as raw:
                await stub.Resume(run_service_pb2.ResumeRequest(workflow_id="review", run_id="stranded"))
            assert raw.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        intact = await handle.run_by_id("stranded")
        assert intact.status is RunStatus.SUSPENDED and intact.definition_version == "1"
        assert [(s.path[-1], s.status.value) for s in intact.steps] == [
            ("prepare", "success"),
            ("gate", "suspended"),
        ]
        assert [r.run_id for r in (await handle.runs(version="1", status="suspended"))[0]] == ["stranded"]
        # `show` says so, instead of suggesting a `resume` that can only fail (an audit).
        shown = await show(served.address, "stranded")
        assert "cannot be resumed here: version '1', which it started on, is not served (served: 2)" in shown
        assert "resume with" not in shown

    # Version "1" served again, but with another graph: refused with its own reason.
    async with (
        serving(db, workflows=[V1_CHANGED, V2]) as served,
        Client(served.address, timeout=10.0) as client,
    ):
        run = await client.get_workflow("review").create_run(run_id="stranded")
        with pytest.raises(errors.WorkflowDefinitionChanged) as changed:
            await run.resume_async(resume_data={"approved": True})
        assert changed.value.reason == "WORKFLOW_DEFINITION_CHANGED"
        meta = changed.value.metadata
        assert (meta["recorded_version"], meta["served_version"]) == ("1", "1")
        assert (meta["recorded_digest"], meta["served_digest"]) == (V1.digest, V1_CHANGED.digest)
        assert (await run.client.get_workflow("review").run_by_id("stranded")).status is RunStatus.SUSPENDED
        shown = await show(served.address, "stranded")
        assert "cannot be resumed here: version '1' is served with another step graph" in shown
        assert "resume with" not in shown

    # The original v1 back: the stranded run finishes on it.
    async with serving(db, workflows=[V1, V2]) as served, Client(served.address, timeout=10.0) as client:
        shown = await show(served.address, "stranded")
        assert "resume with: runservice resume stranded --data JSON" in shown and "cannot" not in shown
        run = await client.get_workflow("review").create_run(run_id="stranded")
        done = await run.resume_async(resume_data={"approved": True})
        assert done.result == {"by": "v1", "approved": True}


async def test_recovery_leaves_a_run_of_an_unserved_version_until_it_is_served(
    tmp_path: Path, serving: ServingFactory, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "runs.db"
    monkeypatch.setattr(leases, "NOT_SERVED_EVERY", 0.2)  # warned of every 5 min in production
    HOLD["on"] = True
    async with serving(db, workflows=[V1]) as served, Client(served.address, timeout=10.0) as client:
        run = await client.get_workflow("review").create_run(run_id="inflight")
        await run.start(input_data={"n": 6})
        doomed = await client.get_workflow("review").create_run(run_id="doomed")
        await doomed.start(input_data={"n": 7})
        await until(lambda: run_status(client, "inflight"), RunStatus.RUNNING)
        await until(lambda: run_status(client, "doomed"), RunStatus.RUNNING)
    # The server stopped with the run `running` in `prepare`. The next one serves v2 only.
    async with serving(db, workflows=[V2]) as served, Client(served.address, timeout=10.0) as client:
        handle = client.get_workflow("review")
        await asyncio.sleep(0.5)  # several claim rounds (every 0.1 s) and, on PostgreSQL, lease ends
        # Left alone, but not in silence: a warning names the definition they wait for.
        warned = "2 run(s) of workflow 'review' are active on version '1' (step graph "
        async with asyncio.timeout(10):
            while not [r for r in caplog.records if r.getMessage().startswith(warned)]:
                await asyncio.sleep(0.05)
        (warning, *_) = [r for r in caplog.records if r.getMessage().startswith(warned)]
        assert warning.levelname == "WARNING"
        assert "this server does not serve version '1'" in warning.getMessage()
        left = await handle.run_by_id("inflight")
        assert left.status is RunStatus.RUNNING and left.error is None
        with pytest.raises(errors.WorkflowVersionUnavailable) as refused:
            await (await handle.create_run(run_id="inflight")).restart(wait=True)
        assert refused.value.metadata["recorded_version"] == "1"
        # A Cancel needs no definition: it still stops a run of an unserved version.
        canceled = await (await handle.create_run(run_id="doomed")).cancel()
        assert canceled.status is RunStatus.CANCELED
        HOLD["on"] = False
        # The claim loop keeps working for the versions it serves.
        other = await handle.create_run()
        await other.start_async(input_data={"n": 5})
        assert (await other.resume_async(resume_data={"approved": True})).result["by"] == "v2"
        assert (await handle.run_by_id("inflight")).status is RunStatus.RUNNING
        # The claim loop never took it (it claims only served definitions), so never failed it.
        assert not [r for r in caplog.records if "inflight" in r.getMessage() and r.levelname != "INFO"]
        assert (await handle.run_by_id("doomed")).status is RunStatus.CANCELED
    # A server that serves v1 again recovers it, on v1's steps.
    async with serving(db, workflows=[V1, V2]) as served, Client(served.address, timeout=10.0) as client:
        await until(lambda: run_status(client, "inflight"), RunStatus.SUSPENDED)
        run = await client.get_workflow("review").create_run(run_id="inflight")
        assert (await run.resume_async(resume_data={"approved": True})).result == {
            "by": "v1",
            "approved": True,
        }


async def run_status(client: Client, run_id: str) -> RunStatus:
    return (await client.get_workflow("review").run_by_id(run_id)).status


async def until(read: Any, wanted: RunStatus, within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while (status := await read()) is not wanted:
            await asyncio.sleep(0.05)
    assert status is wanted


@create_step("other_step")
async def other_step(ctx: StepContext) -> dict[str, Any]:
    return {"other": True}


OTHER = create_workflow("other").then(other_step).commit()
"""What a server that no longer serves `review` at all serves instead."""


async def test_a_workflow_no_longer_served_at_all_strands_no_run_in_silence(
    tmp_path: Path, serving: ServingFactory, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retiring a whole workflow id, not one version of it (audit): its runs were left out of
    the warning and the gauge, `ListRuns(workflow_id=...)` was NOT_FOUND so the retiring
    check could not find them, and a Resume or Restart was NOT_FOUND WORKFLOW_NOT_FOUND
    instead of the promised WORKFLOW_VERSION_UNAVAILABLE."""
    db = tmp_path / "runs.db"
    monkeypatch.setattr(leases, "NOT_SERVED_EVERY", 0.2)  # warned of every 5 min in production
    async with serving(db, workflows=[V1]) as served, Client(served.address, timeout=10.0) as client:
        handle = client.get_workflow("review")
        assert (await (await handle.create_run(run_id="parked")).start_async({"n": 2})).status is (
            RunStatus.SUSPENDED
        )
        HOLD["on"] = True  # the next run is left `running` in `prepare` when the server stops
        await (await handle.create_run(run_id="inflight")).start(input_data={"n": 1})
        await until(lambda: run_status(client, "inflight"), RunStatus.RUNNING)
    HOLD["on"] = False
    async with serving(db, workflows=[OTHER]) as served, Client(served.address, timeout=10.0) as client:
        warned = "1 run(s) of workflow 'review' are active on version '1' (step graph "
        async with asyncio.timeout(10):
            while not [r for r in caplog.records if r.getMessage().startswith(warned)]:
                await asyncio.sleep(0.05)
        (warning, *_) = [r for r in caplog.records if r.getMessage().startswith(warned)]
        assert warning.levelname == "WARNING"
        assert "this server does not serve workflow 'review' at all" in warning.getMessage()
        unowned = await served.store.count_unowned_by_definition()
        assert sum(not_served(unowned, served.engine.served_definitions()).values()) == 1  # the gauge

        # The README's retiring check finds them; an id never seen lists nothing.
        handle = client.get_workflow("review")
        active, _ = await handle.runs(version="1", status=["running", "waiting", "suspended"])
        assert sorted(r.run_id for r in active) == ["inflight", "parked"]
        assert (await client.get_workflow("never-seen").runs())[0] == []

        # CreateRun finds a run of a workflow no longer served (a handle on it), never makes one.
        parked = await handle.create_run(run_id="parked")
        assert parked.last_run is not None and parked.last_run.status is RunStatus.SUSPENDED
        with pytest.raises(errors.WorkflowNotFound):
            await handle.create_run(run_id="fresh")
        with pytest.raises(errors.WorkflowNotFound):
            await client.get_workflow("other-name").create_run(run_id="parked")
        with pytest.raises(errors.WorkflowVersionUnavailable) as refused:
            await parked.resume_async(resume_data={"approved": True})
        assert refused.value.metadata == {
            "run_id": "parked",
            "workflow_id": "review",
            "recorded_version": "1",
            "served_versions": "",
        }
        assert "no version of it is served" in refused.value.message
        with pytest.raises(errors.WorkflowVersionUnavailable):
            await parked.time_travel("gate")
        with pytest.raises(errors.WorkflowVersionUnavailable):
            await parked.fork("gate")
        with pytest.raises(errors.WorkflowVersionUnavailable):
            await RunHandle(client, "review", "inflight").restart(wait=True)
        assert (await handle.run_by_id("parked")).status is RunStatus.SUSPENDED
        assert (await handle.run_by_id("inflight")).status is RunStatus.RUNNING
        # A Cancel needs no definition.
        inflight = await handle.create_run(run_id="inflight")
        assert (await inflight.cancel()).status is RunStatus.CANCELED


async def test_claim_takes_only_runs_of_served_definitions(tmp_path: Path, databases: Databases) -> None:
    store = open_store(await databases.url_for(tmp_path / "claims.db"))
    await store.open()
    try:
        now = time.time()
        recorded = {"a": ("1", "d1"), "b": ("2", "d2"), "c": ("1", ""), "d": ("1", "other"), "e": ("3", "d3")}
        for run_id, (version, digest) in recorded.items():
            run = Run(
                run_id=run_id,
                workflow_id="w",
                status=RunStatus.RUNNING,
                created_at=now,
                updated_at=now,
                definition_version=version,
                definition_digest=digest,
            )
            await store.write(RunWrite(run_id, create=run))
            stored = await store.get_run(run_id)  # both columns round-trip
            assert stored is not None
            assert (stored.definition_version, stored.definition_digest) == (version, digest)
        served = [("w", "1", "d1"), ("w", "1", ""), ("w", "2", "d2")]
        unowned = await store.count_unowned_by_definition()
        assert unowned == {("w", version, digest): 1 for version, digest in recorded.values()}
        assert not_served(unowned, served) == {("w", "1", "other"): 1, ("w", "3", "d3"): 1}
        # A server that serves no version of "w" counts every one of its runs no server drives.
        assert not_served(unowned, [("another", "1", "d1")]) == unowned
        claimed = await store.claim_runs(Claim("me", 60), 10, ["w"], served)
        assert sorted(run_id for run_id, _ in claimed) == ["a", "b", "c"]
        assert await store.claim_runs(Claim("me", 60), 10, ["w"], []) == []
        # Without definitions (an older caller), every run of the workflow may be claimed.
        rest = await store.claim_runs(Claim("me", 60), 10, ["w"])
        assert sorted(run_id for run_id, _ in rest) == ["d", "e"]
        page = await store.list_runs(RunQuery(workflow_id="w", definition_version="1"))
        assert sorted(r.run_id for r in page) == ["a", "c", "d"]
        page = await store.list_runs(
            RunQuery(workflow_id="w", definition_version="1", statuses=frozenset({RunStatus.RUNNING}))
        )
        assert sorted(r.run_id for r in page) == ["a", "c", "d"]
    finally:
        await store.close()


# -- a rolling deploy over replicas (PostgreSQL) ----------------------------------------------


async def test_rolling_deploy_a_run_in_flight_finishes_on_a_replica_serving_its_version(
    pg_databases: Databases, tmp_path: Path
) -> None:
    """A v1 replica dies mid-run; of the next replicas, the one serving only v2 never takes
    the run (it stays `running`), the one serving v1 and v2 finishes it on v1."""
    url = await pg_databases.url_for("rolling")
    args = ["--database-url", url, "--workflows", "versioned_workflows", "--heartbeat", "0.5"]
    args += ["--lease-seconds", "1", "--claim-interval", "0.2", "--grace", "1"]

    def replica(versions: str) -> Any:
        env = server_env(PYTHONPATH=str(ROOT / "tests"), VERSIONED_WORKFLOWS=versions)
        return start_server(serve_argv(*args), env=env)

    old = await replica("1")
    started: list[ServerProcess] = [old]
    try:
        async with Client(old.address, timeout=10.0) as on_old:
            run = await on_old.get_workflow("deployed").create_run(run_id="inflight")
            await run.start(input_data={"seconds": 1.5})

            async def slow_running() -> bool:
                steps = (await run.client.get_workflow("deployed").run_by_id("inflight")).steps
                return any(s.path == ("slow",) for s in steps)

            async with asyncio.timeout(10):
                while not await slow_running():
                    await asyncio.sleep(0.05)
        await old.kill()  # SIGKILL in the middle of `slow`: no lease released

        v2_only = await replica("2")
        started.append(v2_only)
        async with Client(v2_only.address, timeout=10.0) as on_v2:
            handle = on_v2.get_workflow("deployed")
            fresh = await handle.create_run()
            assert (await fresh.start_async(input_data={"seconds": 0})).result == {
                "by": "2",
                "pid": v2_only.proc.pid,
            }
            await asyncio.sleep(2.5)  # the dead owner's lease ended; many claim rounds passed
            left = await handle.run_by_id("inflight")
            assert (left.status, left.definition_version) == (RunStatus.RUNNING, "1")

            both = await replica("1,2")
            started.append(both)
            async with asyncio.timeout(20):
                while (done := await handle.run_by_id("inflight")).status is RunStatus.RUNNING:
                    await asyncio.sleep(0.1)
        assert done.status is RunStatus.SUCCESS
        assert done.result == {"by": "1", "pid": both.proc.pid}
        assert "inflight" not in v2_only.text, "the v2-only replica touched the v1 run"
    finally:
        for server in started:
            await server.kill()


# -- runs stored before versions existed ------------------------------------------------------


async def test_runs_stored_before_versions_are_on_the_default_version(
    tmp_path: Path, serving: ServingFactory, databases: Databases
) -> None:
    """An old-schema database (every migration before this one) with a suspended run is
    migrated: the run reads as version "1" with no digest, and a server serving version
    "1" of its workflow resumes it."""
    current = tmp_path / "current.db"
    async with serving(current, workflows=[V1]) as served, Client(served.address, timeout=10.0) as client:
        await (await client.get_workflow("review").create_run(run_id="legacy")).start_async(
            input_data={"n": 4}
        )
    old: Path | str = tmp_path / "old.db"
    if databases.backend == "sqlite":
        _old_sqlite(Path(old), current)
    else:
        old = await databases.empty()  # its own URL is its key: serving(old) opens it
        await _old_postgres(old, await databases.url_for(current))

    async with (
        serving(old, workflows=[V1_CHANGED, V2]) as served,
        Client(served.address, timeout=10.0) as client,
    ):
        handle = client.get_workflow("review")
        legacy = await handle.run_by_id("legacy")
        assert (legacy.status, legacy.definition_version, legacy.definition_digest) == (
            RunStatus.SUSPENDED,
            "1",
            "",
        )
        assert [r.run_id for r in (await handle.runs(version="1"))[0]] == ["legacy"]
        # No digest was recorded: any served definition of version "1" continues it.
        run = await handle.create_run(run_id="legacy")
        done = await run.resume_async(resume_data={"approved": True})
        assert done.result == {"by": "v1-changed", "approved": True}


_MINE = 6
"""This change's SQLite migration (migrate_v6.sql); older files have every migration before it."""
_MINE_PG = 4
"""This change's PostgreSQL migration (postgres_v4.sql)."""


def _old_sqlite(old: Path, current: Path) -> None:
    """`old`: the schema before this change, holding the rows of `current` (common columns)."""
    before = [v for v in sorted(sqlite_store.MIGRATIONS) if sqlite_store.BASE_VERSION < v < _MINE]
    scripts = ["schema.sql", *(sqlite_store.MIGRATIONS[v] for v in before)]
    version = max([sqlite_store.BASE_VERSION, *before])
    with sqlite3.connect(old) as conn:
        ddl = "\n".join(sqlite_store._resource(name) for name in scripts)
        conn.executescript(f"{ddl}\nPRAGMA user_version = {version};")
        assert "definition_version" not in _sqlite_columns(conn, "main", "runs")
        conn.execute("ATTACH DATABASE ? AS cur", (str(current),))
        tables = [row[0] for row in conn.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = ", ".join(
                c for c in _sqlite_columns(conn, "main", table) if c in _sqlite_columns(conn, "cur", table)
            )
            conn.execute(f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM cur.{table}")
        conn.commit()
        conn.execute("DETACH DATABASE cur")
    conn.close()


def _sqlite_columns(conn: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA {schema}.table_info({table})")]


async def _old_postgres(old_url: str, current_url: str) -> None:
    """Like `_old_sqlite`: the PostgreSQL schema before this change, with `current`'s rows."""
    old = await asyncpg.connect(old_url)
    current = await asyncpg.connect(current_url)
    try:
        await old.execute(pg._MIGRATIONS_TABLE)
        for version, script in pg.MIGRATIONS:
            if version < _MINE_PG:
                await old.execute(pg._resource(script))
                await old.execute(
                    "INSERT INTO schema_migrations (version, script) VALUES ($1, $2)", version, script
                )
        tables = [
            r["table_name"] for r in await old.fetch(_PG_TABLES) if r["table_name"] != "schema_migrations"
        ]
        for table in tables:
            mine = {r["column_name"] for r in await old.fetch(_PG_COLUMNS, table)}
            assert table != "runs" or "definition_version" not in mine
            theirs = [r["column_name"] for r in await current.fetch(_PG_COLUMNS, table)]
            columns = [c for c in theirs if c in mine]
            rows = await current.fetch(f"SELECT {', '.join(columns)} FROM {table}")
            if rows:
                await old.copy_records_to_table(table, records=[tuple(r) for r in rows], columns=columns)
    finally:
        await old.close()
        await current.close()


_PG_TABLES = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
_PG_COLUMNS = (
    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1"
    " ORDER BY ordinal_position"
)
