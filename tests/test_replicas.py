"""Several replicas on one PostgreSQL database, as real `runservice serve` processes.

Every call works whichever replica receives it; a replica killed with SIGKILL has its runs
finished by the others once its leases expire; a replica paused past its leases (SIGSTOP)
commits nothing for the runs it lost when it continues; watchers that reconnect to another
replica see the whole log. Bodies record each execution in a side SQLite file
(tests/replica_workflows.py), so the tests know which process ran what and how often.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from process import ROOT, ServerProcess, serve_argv, server_env, start_server

from runservice.client import Client, RunHandle
from runservice.model import Event, EventType, Run, RunStatus
from runservice.storage import open_store
from runservice.v1 import run_service_pb2, run_service_pb2_grpc

pytestmark = pytest.mark.timeout(180)

LEASE = 2.0
"""Lease seconds of the replicas: short, so a takeover happens within the test's patience."""


@contextlib.asynccontextmanager
async def replicas(url: str, side_db: Path, count: int) -> AsyncIterator[list[ServerProcess]]:
    env = server_env(PYTHONPATH=str(ROOT / "tests"), REPLICA_SIDE_DB=str(side_db))
    args = ["--database-url", url, "--workflows", "replica_workflows", "--heartbeat", "0.5"]
    args += ["--lease-seconds", str(LEASE), "--claim-interval", "0.2", "--grace", "1"]
    started: list[ServerProcess] = []
    try:
        for _ in range(count):
            started.append(await start_server(serve_argv(*args), env=env))
        yield started
    except BaseException:
        for name, server in zip("ABCDEFG", started, strict=False):  # what each replica said
            state = f"pid {server.proc.pid}, exit {server.proc.returncode}"
            print(f"--- replica {name} ({state}):\n{server.text[-4000:]}")
        raise
    finally:
        for server in started:
            if server.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    server.proc.send_signal(signal.SIGCONT)
                await server.kill()


def executions(side_db: Path) -> list[tuple[str, str, int, str]]:
    """(run id, step, pid, phase) of every body execution so far."""
    if not side_db.exists():
        return []
    conn = sqlite3.connect(side_db, timeout=30)
    try:
        return list(conn.execute("SELECT run_id, step, pid, phase FROM ran ORDER BY rowid"))
    except sqlite3.OperationalError:  # no body ran yet
        return []
    finally:
        conn.close()


async def until(check: Callable[[], Awaitable[bool] | bool], limit: float, what: str) -> None:
    """Poll `check` (sync or async) until it holds; fail after `limit` seconds."""
    deadline = time.monotonic() + limit
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def started(side_db: Path, count: int) -> Callable[[], bool]:
    """`count` slow steps have started."""
    return lambda: sum(1 for _, s, _, p in executions(side_db) if s == "slow" and p == "start") >= count


async def stored(url: str, run_ids: Sequence[str]) -> tuple[dict[str, Run], dict[str, list[Event]]]:
    store = open_store(url)
    await store.open()
    try:
        runs: dict[str, Run] = {}
        logs: dict[str, list[Event]] = {}
        for run_id in run_ids:
            run = await store.get_run(run_id, steps=True)
            assert run is not None
            runs[run_id] = run
            logs[run_id] = await store.read_events(run_id, 0, 10_000)
        return runs, logs
    finally:
        await store.close()


def check_log(events: list[Event]) -> None:
    """Gap-free sequences, and one committed result per step and one finish per run."""
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    results = Counter(e.step.path for e in events if e.type is EventType.STEP_RESULT and e.step)
    assert all(count == 1 for count in results.values()), results
    finishes = [e for e in events if e.type is EventType.WORKFLOW_FINISH and e.run_status.terminal]
    assert len(finishes) == 1


async def watch_anywhere(addresses: list[str], run_id: str, seen: list[int]) -> None:
    """Follow a run's events, moving to the next replica whenever a stream breaks."""
    last, turn = 0, 0
    while True:
        address = addresses[turn % len(addresses)]
        turn += 1
        try:
            async with grpc.aio.insecure_channel(address) as channel:
                stub = run_service_pb2_grpc.RunServiceStub(channel)
                call = stub.Watch(run_service_pb2.WatchRequest(run_id=run_id, after_sequence=last))
                async for response in call:
                    for event in response.events:
                        assert event.sequence == last + 1, (event.sequence, last)
                        last = event.sequence
                        seen.append(last)
                    if response.end_of_stream:
                        return
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.2)


async def test_any_call_at_any_replica(pg_databases: Any, tmp_path: Path) -> None:
    url = await pg_databases.url_for("any-replica")
    side = tmp_path / "ran.db"
    async with (
        replicas(url, side, 3) as (a, b, c),
        Client(a.address) as on_a,
        Client(b.address) as on_b,
        Client(c.address) as on_c,
    ):
        # Started on A, watched on B, resumed on C.
        asking = await on_a.get_workflow("asker").create_run()
        suspended = await asking.start_async(input_data={})
        assert suspended.status is RunStatus.SUSPENDED
        seen: list[int] = []
        watcher = asyncio.create_task(watch_anywhere([b.address], asking.run_id, seen))
        resumed = await on_c.get_workflow("asker").create_run(run_id=asking.run_id)
        done = await resumed.resume_async(resume_data={"yes": True})
        assert done.status is RunStatus.SUCCESS and done.result == {"answer": {"yes": True}}
        await asyncio.wait_for(watcher, 20)
        assert seen == list(range(1, done.last_sequence + 1))
        # Every replica reads the same run; listings see it too.
        for client in (on_a, on_b, on_c):
            again = await client.get_workflow("asker").run_execution_result(asking.run_id)
            assert again.status is RunStatus.SUCCESS and again.last_sequence == done.last_sequence
        listed, _ = await on_b.get_workflow("asker").runs()
        assert asking.run_id in [r.run_id for r in listed]

        # A long step runs on A; Cancel reaches C and really stops it on A.
        relay = await on_a.get_workflow("relay").create_run()
        await relay.start(input_data={"seconds": 60, "n": 1})
        await until(started(side, 1), 20, "the slow step to start")
        restarted = await (await on_b.get_workflow("relay").create_run(run_id=relay.run_id)).restart()
        assert restarted.status is RunStatus.RUNNING  # A drives it: B leaves it alone
        canceling = await on_c.get_workflow("relay").create_run(run_id=relay.run_id)
        canceled = await canceling.cancel(request_id="stop-it")
        assert canceled.status is RunStatus.CANCELED
    ran = executions(side)
    slow = [(pid, phase) for run_id, step, pid, phase in ran if run_id == relay.run_id and step == "slow"]
    assert [phase for _, phase in slow] == ["start", "cancelled"]
    assert {pid for pid, _ in slow} == {a.proc.pid}, "the step ran and was stopped on its owner, A"
    runs, logs = await stored(url, [asking.run_id, relay.run_id])
    for run_id in runs:
        check_log(logs[run_id])


async def test_a_killed_replicas_runs_finish_on_the_others(pg_databases: Any, tmp_path: Path) -> None:
    url = await pg_databases.url_for("killed")
    side = tmp_path / "ran.db"
    count = 12
    async with replicas(url, side, 2) as (a, b):
        async with Client(a.address) as on_a:
            runs = []
            for n in range(count):
                run = await on_a.get_workflow("relay").create_run()
                await run.start(input_data={"seconds": 3.0 + (n % 4) * 0.5, "n": n})
                runs.append(run.run_id)
        seen: dict[str, list[int]] = {run_id: [] for run_id in runs}
        watchers = [
            asyncio.create_task(watch_anywhere([a.address, b.address], run_id, seen[run_id]))
            for run_id in runs
        ]
        await until(started(side, count), 30, "every slow step to start on A")
        a.proc.kill()  # SIGKILL: no shutdown, no lease released
        await a.proc.wait()
        killed_at = time.monotonic()

        async def all_done() -> bool:
            async with Client(b.address) as on_b:
                workflow = on_b.get_workflow("relay")
                results = [await workflow.run_execution_result(run_id) for run_id in runs]
            return all(r.status is RunStatus.SUCCESS for r in results)

        await until(all_done, LEASE + 30, "B to finish A's runs")
        takeover = time.monotonic() - killed_at
        await asyncio.wait_for(asyncio.gather(*watchers), 30)
    print(f"\nreplicas: {count} runs of a SIGKILLed replica finished on the other {takeover:.1f}s later")
    stored_runs, logs = await stored(url, runs)
    ran = executions(side)
    for n, run_id in enumerate(runs):
        assert stored_runs[run_id].result == {"n": (n + 1) * 10}
        check_log(logs[run_id])
        assert seen[run_id] == [e.sequence for e in logs[run_id]], "a watcher missed or repeated events"
        firsts = [p for r, s, p, _ in ran if r == run_id and s == "first"]
        assert firsts == [a.proc.pid], "a step committed before the kill never runs again"
        lasts = [p for r, s, p, _ in ran if r == run_id and s == "last"]
        assert lasts == [b.proc.pid], "B finished the run A started"


async def test_a_paused_replica_commits_nothing_for_the_runs_it_lost(
    pg_databases: Any, tmp_path: Path
) -> None:
    url = await pg_databases.url_for("paused")
    side = tmp_path / "ran.db"
    count = 4
    async with replicas(url, side, 2) as (a, b):
        async with Client(a.address) as on_a:
            runs = []
            for n in range(count):
                run = await on_a.get_workflow("relay").create_run()
                await run.start(input_data={"seconds": 3.0, "n": n})
                runs.append(run.run_id)
        await until(started(side, count), 30, "every slow step to start on A")
        a.proc.send_signal(signal.SIGSTOP)  # A keeps its tasks but renews nothing

        async def all_done() -> bool:
            async with Client(b.address) as on_b:
                workflow = on_b.get_workflow("relay")
                results = [await workflow.run_execution_result(run_id) for run_id in runs]
            return all(r.status is RunStatus.SUCCESS for r in results)

        await until(all_done, LEASE + 30, "B to take over and finish the runs")
        before, logs_before = await stored(url, runs)
        a.proc.send_signal(signal.SIGCONT)  # A's bodies finish their sleep and try to commit
        await until(
            lambda: sum(1 for _, s, p, _ in executions(side) if s == "slow" and p == a.proc.pid) >= 2 * count,
            30,
            "A's paused bodies to end",
        )
        await asyncio.sleep(LEASE)  # time for A to try its commits (and be fenced)
        assert a.proc.returncode is None, "A is still serving"
    after, logs_after = await stored(url, runs)
    for run_id in runs:
        assert after[run_id].result == before[run_id].result
        assert [e.sequence for e in logs_after[run_id]] == [e.sequence for e in logs_before[run_id]]
        check_log(logs_after[run_id])
    assert "lease lost" in a.text


async def test_a_body_writing_on_a_stalled_replica_sees_a_cancel_taken_elsewhere_as_a_cancel(
    pg_databases: Any, tmp_path: Path
) -> None:
    """A replica stalled (SIGSTOP) while another took a Cancel of its run: once it goes on, the
    body's next progress write renews the lease first, as a body's start does, and the body
    gets its CancelledError with `abort_signal` set. Before, the write raised LeaseLost, an
    Exception a body that catches them around its writes went on past, abort unset (cancel
    audit, D3)."""
    url = await pg_databases.url_for("stalled-cancel")
    side = tmp_path / "ran.db"
    async with replicas(url, side, 2) as (a, b):
        async with Client(a.address) as on_a:
            run = await on_a.get_workflow("reporter").create_run()
            await run.start(input_data={})
        await until(lambda: any(p == "chunk 2" for _, _, _, p in executions(side)), 20, "progress on A")
        a.proc.send_signal(signal.SIGSTOP)
        async with Client(b.address) as on_b:
            canceled = await RunHandle(on_b, "reporter", run.run_id).cancel()
        assert canceled.status is RunStatus.CANCELED
        a.proc.send_signal(signal.SIGCONT)
        await until(
            lambda: any(p.startswith("cancelled") for *_, p in executions(side)), 20, "A's body to stop"
        )
    phases = [p for r, s, pid, p in executions(side) if pid == a.proc.pid and s == "reporting"]
    assert phases[-1] == "cancelled, abort set", phases[-5:]
    assert not [p for p in phases if p.startswith("write failed")], phases[-5:]
    assert not [s for _, s, _, _ in executions(side) if s == "last"]


async def test_a_killed_owners_run_still_ends_at_its_deadline(pg_databases: Any, tmp_path: Path) -> None:
    """The deadline is stored: the replica that takes over a run from a killed owner stops it
    at the deadline, and a suspended run past its deadline is ended once, by one replica."""
    url = await pg_databases.url_for("deadline")
    side = tmp_path / "ran.db"
    async with replicas(url, side, 2) as (a, b):
        async with Client(a.address) as on_a:
            relay = await on_a.get_workflow("relay").create_run()
            await relay.start(input_data={"seconds": 60.0, "n": 1}, run_timeout=LEASE + 2.0)
            asker = await on_a.get_workflow("asker").create_run()
            suspended = await asker.start_async(run_timeout=LEASE + 2.0)
            assert suspended.status is RunStatus.SUSPENDED
        await until(started(side, 1), 30, "the slow step to start on A")
        a.proc.kill()  # SIGKILL: its lease on the relay run lapses; nobody else has its timer
        await a.proc.wait()

        async def ended() -> bool:
            async with Client(b.address) as on_b:
                runs = [
                    await on_b.get_workflow(w).run_execution_result(r)
                    for w, r in (("relay", relay.run_id), ("asker", asker.run_id))
                ]
            return all(r.status.terminal for r in runs)

        await until(ended, LEASE + 30, "B to end both runs at their deadline")
    stored_runs, logs = await stored(url, [relay.run_id, asker.run_id])
    for run_id, run in stored_runs.items():
        assert run.status is RunStatus.FAILED, run
        assert run.error is not None and run.error.name == "RunTimeoutError"
        assert run.deadline is not None and run.ended_at is not None and run.ended_at >= run.deadline
        finishes = [e for e in logs[run_id] if e.type is EventType.WORKFLOW_FINISH]
        assert finishes[-1].run_status is RunStatus.FAILED
        assert [e.sequence for e in logs[run_id]] == list(range(1, len(logs[run_id]) + 1))
    ran = executions(side)
    assert not [s for r, s, _, _ in ran if r == relay.run_id and s == "last"], "nothing ran past the deadline"
