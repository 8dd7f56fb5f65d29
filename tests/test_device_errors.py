"""A device that fails under a real `runservice serve` on SQLite.

tests/failing_device.c, preloaded into the server, makes fsync and fdatasync fail with EIO
while one flag file exists, and SQLite's reads (pread64) while another does.

A failed sync fails the store stop. After such a failure the kernel may have dropped pages of earlier unsynced
commits, so nothing later may be told as durable: the request whose commit failed, and every
request after it, is refused as UNAVAILABLE with reason STORAGE_FAILED; the server stops at
once with exit code 1 and one line saying why; no run is marked failed for it. Restarted on
a working disk, it recovers every run from what is on disk, and the refused Start succeeds
when retried with its request id.

A failed read is refused as UNAVAILABLE with reason STORAGE_UNAVAILABLE (retry): the server
goes on, and answers once the device reads again.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest
from disk_workflows import assert_both_went_on, settled, start_gated
from packages import build_preload
from process import ServerProcess, serve_argv, server_env, start_server

from runservice.client import Client
from runservice.errors import StorageFailed, StorageUnavailable
from runservice.model import RunStatus

pytestmark = pytest.mark.timeout(90)

LAYOUTS = pytest.mark.parametrize(
    "layout", [(), ("--engine-process",)], ids=["one-process", "engine-process"]
)


@pytest.fixture(scope="module")
def failing_device(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/failing_device.c, built with the machine's C compiler."""
    return build_preload(
        Path(__file__).with_name("failing_device.c"), tmp_path_factory.mktemp("failing-device")
    )


async def start_on_the_device(
    tmp_path: Path, failing_device: Path, flag_variable: str, *args: str
) -> tuple[ServerProcess, Path]:
    """A server of `tests.disk_workflows` on the preloaded device, and the flag file that sets it
    off while it exists (`flag_variable` names the failure: FAILSYNC_FLAG, SLOWSYNC_FLAG)."""
    flag = tmp_path / flag_variable.lower()
    argv = serve_argv("--data-dir", str(tmp_path / "data"), "--workflows", "tests.disk_workflows", *args)
    env = server_env(LD_PRELOAD=str(failing_device), **{flag_variable: str(flag)})
    return await start_server(argv, env=env), flag


async def exited(server: ServerProcess, limit: float = 20.0) -> int:
    """The exit code of a server that stops by itself."""
    return await server.stop(limit, signalled=True)


def assert_stopped_for_a_failed_sync(server: ServerProcess) -> None:
    """One ERROR line naming the failed sync, then `serve`'s last line; no traceback."""
    text = server.text
    assert "Traceback" not in text, text[-3000:]
    assert text.count("the disk failed to sync") == 1, text[-3000:]
    assert "runservice: error: stopped: the database's disk failed to sync a write" in text, text[-3000:]


@LAYOUTS
async def test_a_failed_fsync_stops_the_server_and_loses_nothing(
    tmp_path: Path, failing_device: Path, layout: tuple[str, ...]
) -> None:
    data, gate, flag = tmp_path / "data", tmp_path / "gate", tmp_path / "fail-syncs"
    argv = serve_argv("--data-dir", str(data), "--workflows", "tests.disk_workflows", *layout)
    env = server_env(LD_PRELOAD=str(failing_device), FAILSYNC_FLAG=str(flag))
    server = await start_server(argv, env=env)
    try:
        async with Client(server.address, timeout=10, retry=None) as client:
            _, later = await start_gated(client, gate)
            # The checkpointer syncs what was committed within a second; past it, the next
            # sync is the Start's own commit.
            await asyncio.sleep(1.5)

            flag.touch()
            with pytest.raises(StorageFailed) as refused:
                await later.start({"gate": str(gate)}, request_id="later-start")
            assert refused.value.reason == "STORAGE_FAILED"
            assert "fdatasync of the WAL failed: Input/output error" in str(refused.value)
            gate.touch()  # the gated run's next commits are refused too
        assert await exited(server) == 1
    finally:
        await server.kill()
    assert_stopped_for_a_failed_sync(server)
    assert "failed while driving" not in server.text, server.text[-3000:]

    flag.unlink()
    server = await start_server(argv, env=env)
    try:
        async with Client(server.address, timeout=10, retry=None) as client:
            later = await client.get_workflow("gated").create_run(run_id="later-run")  # the same run
            await assert_both_went_on(client, later, gate)
        assert await server.stop() == 0
    finally:
        await server.kill()
    assert " ERROR " not in server.text and "Traceback" not in server.text, server.text[-3000:]


@LAYOUTS
async def test_a_sync_that_fails_while_steps_finish_after_a_stop_is_an_error_exit(
    tmp_path: Path, failing_device: Path, layout: tuple[str, ...]
) -> None:
    """SIGTERM, then a running step's result fails to sync within the grace period: the stop
    is an error (exit 1, the device named), for a supervisor to see; with the engine in its
    own process as well as in one."""
    server, flag = await start_on_the_device(
        tmp_path, failing_device, "FAILSYNC_FLAG", "--drain-delay", "0.5", "--grace", "10", *layout
    )
    gate = tmp_path / "gate"
    try:
        async with Client(server.address, timeout=10, retry=None) as client:
            await start_gated(client, gate)
        await asyncio.sleep(1.5)  # the checkpointer synced what came before
        server.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(1.0)  # past the drain delay: running steps have their grace
        flag.touch()
        gate.touch()  # the gated step ends; its result's commit fails to sync
        assert await exited(server, 30) == 1
    finally:
        await server.kill()
    assert_stopped_for_a_failed_sync(server)


async def test_a_read_whose_sync_fails_stops_the_server(tmp_path: Path, failing_device: Path) -> None:
    """A read of a run whose progress nobody was told of syncs it first: a barrier, an fsync of
    the WAL with no commit of its own. A failed one stops the server as a failed commit does."""
    gate = tmp_path / "gate"
    server, flag = await start_on_the_device(tmp_path, failing_device, "FAILSYNC_FLAG")
    try:
        async with Client(server.address, timeout=10, retry=None) as client:
            await start_gated(client, gate)  # its step's start is committed unsynced
            # The checkpointer syncs what was committed within a second; past it, the next
            # sync is the read's barrier.
            await asyncio.sleep(1.5)
            flag.touch()
            with pytest.raises(StorageFailed) as refused:
                await client.get_workflow("gated").run_by_id("gated-run")
            assert refused.value.reason == "STORAGE_FAILED"
            assert "fdatasync of the WAL failed: Input/output error" in str(refused.value)
            gate.touch()
        assert await exited(server) == 1
    finally:
        await server.kill()
    assert_stopped_for_a_failed_sync(server)


async def test_a_checkpoint_whose_sync_fails_stops_the_server(tmp_path: Path, failing_device: Path) -> None:
    """With `--durability normal` no commit syncs; the WAL checkpointer's syncs of the database
    file still do, and a failed one stops the server the same way."""
    data, gate, flag = tmp_path / "data", tmp_path / "gate", tmp_path / "fail-syncs"
    served = ("--workflows", "tests.disk_workflows", "--durability", "normal")
    argv = serve_argv("--data-dir", str(data), *served)
    server = await start_server(argv, env=server_env(LD_PRELOAD=str(failing_device), FAILSYNC_FLAG=str(flag)))
    try:
        async with Client(server.address, timeout=10, retry=None) as client:
            flag.touch()
            gated = await client.get_workflow("gated").create_run(run_id="gated-run")
            await gated.start({"gate": str(gate)})  # committed unsynced: the checkpointer syncs it
            assert await exited(server) == 1
    finally:
        await server.kill()
    assert_stopped_for_a_failed_sync(server)

    flag.unlink()
    gate.touch()
    server = await start_server(argv)
    try:
        async with Client(server.address, timeout=10, retry=None) as client:
            run = await settled(client, "gated-run")
            assert run.status is RunStatus.SUCCESS and run.result == "passed gate"
        assert await server.stop() == 0
    finally:
        await server.kill()


async def test_a_failed_read_is_refused_as_retryable_and_the_server_goes_on(
    tmp_path: Path, failing_device: Path
) -> None:
    data, flag = tmp_path / "data", tmp_path / "fail-reads"
    argv = serve_argv("--data-dir", str(data), "--workflows", "tests.disk_workflows")
    server = await start_server(argv, env=server_env(LD_PRELOAD=str(failing_device), FAILREAD_FLAG=str(flag)))
    try:
        async with Client(server.address, timeout=10, retry=None) as client:
            workflow = client.get_workflow("gated")
            await workflow.create_run(run_id="read-run")  # a write: every reader reads its pages anew
            flag.touch()
            with pytest.raises(StorageUnavailable) as refused:
                await workflow.run_by_id("read-run")  # a point read, on the event loop
            assert refused.value.reason == "STORAGE_UNAVAILABLE"
            assert "SQLITE_IOERR" in str(refused.value)  # _CORRUPTFS: how SQLite names EIO on a read
            with pytest.raises(StorageUnavailable):
                await workflow.runs()  # a scan, on a reader thread
            flag.unlink()
            assert (await workflow.run_by_id("read-run")).status is RunStatus.PENDING
            assert [run.run_id for run in (await workflow.runs())[0]] == ["read-run"]
        assert await server.stop() == 0
    finally:
        await server.kill()
    assert " ERROR " not in server.text and "Traceback" not in server.text, server.text[-3000:]


async def test_a_read_of_a_commit_whose_fsync_is_under_way_waits_for_it(
    tmp_path: Path, failing_device: Path
) -> None:
    """A synced commit is visible to readers from its COMMIT on, while its fsync of the WAL is
    under way: a read that sees it answers only once that fsync is done (what it tells must
    survive a power loss). A read of another run does not wait for it."""
    server, flag = await start_on_the_device(tmp_path, failing_device, "SLOWSYNC_FLAG")
    try:
        async with Client(server.address, timeout=30, retry=None) as client:
            workflow = client.get_workflow("gated")
            await workflow.create_run(run_id="other")
            flag.touch()  # every fsync now takes 300 ms more
            # Slow: from now on synced commits leave the loop, which reads meanwhile.
            await workflow.create_run(run_id="first")
            loop = asyncio.get_running_loop()
            began = loop.time()
            creating = asyncio.create_task(workflow.create_run(run_id="second"))
            await asyncio.sleep(0.1)  # committed long since; its fsync takes 300 ms
            other = await workflow.run_by_id("other")
            other_read = loop.time() - began
            second = await workflow.run_by_id("second")
            second_read = loop.time() - began
            await creating
            created = loop.time() - began
            flag.unlink()
        assert other.status is RunStatus.PENDING and other_read < 0.25, other_read
        assert second.status is RunStatus.PENDING
        assert second_read >= 0.3 and second_read >= created - 0.1, (second_read, created)
        assert await server.stop() == 0
    finally:
        await server.kill()


async def test_a_read_of_a_schedule_whose_change_is_being_synced_waits_for_it(
    tmp_path: Path, failing_device: Path
) -> None:
    """The same for a schedule: a GetSchedule that sees a pause whose fsync is under way answers
    once it is done. A read of a run meanwhile does not wait for it."""
    schedule = {"id": "yearly", "workflow": "gated", "cron": "0 0 1 1 *", "input_data": {"gate": "-"}}
    server, flag = await start_on_the_device(
        tmp_path, failing_device, "SLOWSYNC_FLAG", "--schedules", json.dumps([schedule])
    )
    try:
        async with Client(server.address, timeout=30, retry=None) as client:
            assert not (await client.schedules.get("yearly")).paused
            await client.get_workflow("gated").create_run(run_id="other")
            flag.touch()  # every fsync now takes 300 ms more
            await client.get_workflow("gated").create_run(run_id="first")  # synced commits leave the loop
            loop = asyncio.get_running_loop()
            began = loop.time()
            pausing = asyncio.create_task(client.schedules.pause("yearly"))
            await asyncio.sleep(0.1)  # committed long since; its fsync takes 300 ms
            await client.get_workflow("gated").run_by_id("other")
            other_read = loop.time() - began
            seen = await client.schedules.get("yearly")
            read = loop.time() - began
            await pausing
            flag.unlink()
        assert seen.paused and read >= 0.3, (seen.paused, read)
        assert other_read < 0.25, other_read
        assert await server.stop() == 0
    finally:
        await server.kill()


async def test_a_slow_disks_syncs_leave_the_event_loop(tmp_path: Path, failing_device: Path) -> None:
    """A synced commit of a lone change runs on the event loop when the disk is quick (it saves
    two thread hand-offs); on a disk whose fsync is slow, after the first such commit every
    synced commit goes to the writer thread, so the server goes on answering meanwhile."""
    server, flag = await start_on_the_device(tmp_path, failing_device, "SLOWSYNC_FLAG")
    try:
        async with Client(server.address, timeout=30, retry=None) as client:
            workflow = client.get_workflow("gated")
            await workflow.create_run(run_id="probe")
            flag.touch()  # every fsync now takes 300 ms more
            waits: list[float] = []
            creating = True

            async def probe() -> None:
                loop = asyncio.get_running_loop()
                while creating:
                    began = loop.time()
                    await workflow.run_by_id("probe")  # a point read on the server's loop
                    waits.append(loop.time() - began)
                    await asyncio.sleep(0.02)

            prober = asyncio.create_task(probe())
            began = asyncio.get_running_loop().time()
            try:
                for index in range(5):  # one durable (synced) commit each, one at a time
                    await workflow.create_run(run_id=f"slow-{index}")
            finally:
                creating = False
                await prober
            assert asyncio.get_running_loop().time() - began >= 5 * 0.3  # the syncs were slow
            stalled = [wait for wait in waits if wait >= 0.25]
            assert len(stalled) <= 1 and len(waits) >= 20, (stalled, len(waits))

            # A disk quick again, then slow once more (a disk whose syncs stall now and then):
            # enough quick commits for any average to forget the stall, and the next slow sync
            # still keeps off the loop (review: each stall after a quiet spell held it).
            flag.unlink()
            for index in range(60):
                await workflow.create_run(run_id=f"quick-{index}")
            flag.touch()
            waits.clear()
            creating = True
            prober = asyncio.create_task(probe())
            try:
                for index in range(2):
                    await workflow.create_run(run_id=f"slow-again-{index}")
            finally:
                creating = False
                await prober
            assert not [wait for wait in waits if wait >= 0.25] and len(waits) >= 5, waits
            flag.unlink()
        assert await server.stop() == 0
    finally:
        await server.kill()
