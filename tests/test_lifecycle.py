"""A real server process: stopping in phases on SIGTERM; start-up failures are one line, no traceback."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from process import ROOT, ServerProcess, serve_argv, server_env, start_server

from runservice.client import Client
from runservice.model import RunStatus

pytestmark = pytest.mark.timeout(90)

SLOW_FLOWS = '''
import asyncio
import os
from pathlib import Path

from runservice.workflow import create_step, create_workflow

MARKS = Path(os.environ["OPS_MARKS"])


def mark(name: str) -> int:
    """Append `name` to the marks file; return how many times it was marked before."""
    before = MARKS.read_text().split().count(name) if MARKS.exists() else 0
    with MARKS.open("a") as out:
        out.write(name + "\\n")
    return before


@create_step("short")
async def short(ctx):
    mark("short")
    await asyncio.sleep(3.5)
    mark("short-done")
    return {"done": "short"}


@create_step("long")
async def long(ctx):
    if mark("long") == 0:  # only the first execution is long; the re-driven one is quick
        await asyncio.sleep(60)
    mark("long-done")
    return {"done": "long"}


@create_step("stubborn")
async def stubborn(ctx):
    if mark("stubborn") == 0:  # the first execution ignores every cancellation for a minute
        for _ in range(60):
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                pass
    return {"done": "stubborn"}


@create_step("stubborn-item")
async def stubborn_item(ctx):
    if mark("stubborn-item") < 2:  # each item's first execution ignores every cancellation
        for _ in range(60):
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                pass
    return {"done": ctx.input_data}


@create_step("swallow-once")
async def swallow_once(ctx):
    mark("swallow-once")
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        pass
    return {"done": "swallow-once"}


short_flow = create_workflow("short-flow").then(short).commit()
long_flow = create_workflow("long-flow").then(long).commit()
stubborn_flow = create_workflow("stubborn-flow").then(stubborn).commit()
swallow_flow = create_workflow("swallow-flow").then(swallow_once).commit()
stubborn_items = create_workflow("stubborn-items").foreach(stubborn_item, concurrency=2).commit()
'''


def marks(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


async def health_status(address: str) -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="runservice.v1.RunService"), timeout=2
        )
        return int(reply.status)


LAYOUTS = pytest.mark.parametrize(
    "layout", [(), ("--engine-process",)], ids=["one-process", "engine-process"]
)
"""`serve` as one process, and with the engine in a second one (`--engine-process`)."""


def logged_at(line: str) -> float:
    """The time of a server log line (`2026-11-29 18:55:29,361 ERROR ...`), in seconds."""
    stamp = dt.datetime.strptime(" ".join(line.split()[:2]), "%Y-%m-%d %H:%M:%S,%f")
    return stamp.timestamp()


def slow_flows_app(
    tmp_path: Path, grace: str, layout: tuple[str, ...]
) -> tuple[tuple[str, ...], dict[str, str]]:
    """`serve` arguments and environment for SLOW_FLOWS (marks in tmp_path/marks.txt)."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "slow_flows.py").write_text(SLOW_FLOWS)
    env = server_env(PYTHONPATH=str(tmp_path / "app"), OPS_MARKS=str(tmp_path / "marks.txt"))
    args = ("--data-dir", str(tmp_path / "data"), "--workflows", "slow_flows", "--grace", grace, *layout)
    return args, env


async def next_boot_finishes(
    args: tuple[str, ...], env: dict[str, str], left: tuple[str, str], ended: tuple[str, str]
) -> None:
    """A new server on the same data re-drives the run `left` (workflow, run id) to success,
    and the run that `ended` stays succeeded."""
    again = await start_server(serve_argv(*args), env=env)
    try:
        async with Client(again.address, timeout=10) as client:
            workflow, run_id = left
            for _ in range(200):
                run = await client.get_workflow(workflow).run_by_id(run_id)
                if run.status is not RunStatus.RUNNING:
                    break
                await asyncio.sleep(0.05)
            assert run.status is RunStatus.SUCCESS and run.result == {"done": run_id.removesuffix("-run")}
            done = await client.get_workflow(ended[0]).run_by_id(ended[1])
            assert done.status is RunStatus.SUCCESS
        assert await again.stop() == 0
    finally:
        await again.kill()


@LAYOUTS
async def test_sigterm_stops_in_phases(tmp_path: Path, layout: tuple[str, ...]) -> None:
    args, env = slow_flows_app(tmp_path, "4", layout)
    mark_file = tmp_path / "marks.txt"
    server = await start_server(serve_argv(*args, "--drain-delay", "2.5"), env=env)
    try:
        async with Client(server.address, timeout=10) as client:
            await (await client.get_workflow("short-flow").create_run(run_id="short-run")).start()
            await (await client.get_workflow("long-flow").create_run(run_id="long-run")).start()
            while not {"short", "long"} <= set(marks(mark_file)):
                await asyncio.sleep(0.05)
            assert await health_status(server.address) == health_pb2.HealthCheckResponse.SERVING

            assert "short-done" not in marks(mark_file)  # still running when the signal comes
            server.proc.send_signal(15)
            loop = asyncio.get_running_loop()
            signalled = loop.time()
            # Draining: health says NOT_SERVING while calls are still answered.
            while await health_status(server.address) != health_pb2.HealthCheckResponse.NOT_SERVING:
                await asyncio.sleep(0.02)
            run = await client.get_workflow("long-flow").run_by_id("long-run")
            assert run.status is RunStatus.RUNNING
            assert len(await client.list_workflows()) == 5
            assert loop.time() - signalled < 2.5, "health should turn NOT_SERVING before the drain delay ends"
        assert await server.stop(15, signalled=True) == 0
    finally:
        await server.kill()
    # The short step finished inside the grace period; the long one was left and logged.
    assert "short-done" in marks(mark_file) and "long-done" not in marks(mark_file)
    assert "run long-run left running at its last checkpoint" in server.text
    # The file by its absolute path: a relative one depends on a working directory the log lacks.
    assert f"(database: SQLite file {tmp_path / 'data' / 'runservice.db'})" in server.text
    assert "waiting up to 4.0s for 2 running runs to settle" in server.text
    assert "short-run left" not in server.text and "Traceback" not in server.text

    # The next boot re-drives the run that was left, and the short one stays done.
    await next_boot_finishes(args, env, ("long-flow", "long-run"), ("short-flow", "short-run"))
    assert marks(mark_file).count("short") == 1 and marks(mark_file).count("long") == 2


@LAYOUTS
async def test_a_body_that_ignores_cancellation_does_not_hold_the_stop(
    tmp_path: Path, layout: tuple[str, ...]
) -> None:
    """A body that catches every CancelledError held the stop for as long as it ran (an audit
    saw 57 s past a 3 s grace: an orchestrator's SIGKILL in production), and a run whose body
    ended on its own as it was cancelled was logged as left at its last checkpoint."""
    args, env = slow_flows_app(tmp_path, "1", layout)
    mark_file = tmp_path / "marks.txt"
    server = await start_server(serve_argv(*args, "--drain-delay", "0"), env=env)
    try:
        async with Client(server.address, timeout=10) as client:
            await (await client.get_workflow("stubborn-flow").create_run(run_id="stubborn-run")).start()
            await (await client.get_workflow("swallow-flow").create_run(run_id="swallow-run")).start()
            items = await client.get_workflow("stubborn-items").create_run(run_id="items-run")
            await items.start(input_data=[1, 2])
            while (
                not {"stubborn", "swallow-once"} <= set(marks(mark_file))
                or marks(mark_file).count("stubborn-item") < 2
            ):
                await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        signalled = loop.time()
        assert await server.stop(30) == 0
        assert loop.time() - signalled < 15, "the stop waited for the body that ignores cancellation"
    finally:
        await server.kill()
    # Waited for once (2 s), not again by the engine's close and the process's exit (an audit
    # measured 8.9 s past a 1 s grace: three waits of 2 s), the tasks of a foreach's items
    # (cancelled with their run's) neither (a review: 2 s more).
    assert server.text.count("run stubborn-run did not stop within 2.0s of being cancelled") == 1
    (gave_up,) = [
        line for line in server.text.splitlines() if "did not stop within" in line and "items-run" in line
    ]
    (exited,) = [line for line in server.text.splitlines() if "tasks did not end when cancelled" in line]
    assert "run stubborn-run" in exited and "run items-run" in exited
    assert logged_at(exited) - logged_at(gave_up) < 1.9, (
        "the exit waited again for what the engine gave up on"
    )
    assert "run swallow-run ended success as the engine stopped" in server.text
    assert "swallow-run left" not in server.text and "Traceback" not in server.text

    # The run left behind is re-driven at the next boot; the one that ended stays done.
    await next_boot_finishes(args, env, ("stubborn-flow", "stubborn-run"), ("swallow-flow", "swallow-run"))
    assert marks(mark_file).count("stubborn") == 2 and marks(mark_file).count("swallow-once") == 1


@LAYOUTS
async def test_an_open_health_watch_ends_at_the_drain_and_does_not_hold_the_stop(
    tmp_path: Path, layout: tuple[str, ...]
) -> None:
    """A mesh keeps a health Watch open per connection. It is told NOT_SERVING, then ends with
    UNAVAILABLE once the drain delay is over; before, it held the stop for the whole grace."""
    args = ("--data-dir", str(tmp_path / "data"), "--grace", "20", "--drain-delay", "0.5", *layout)
    server = await start_server(serve_argv(*args))
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
            assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
            server.proc.send_signal(15)
            loop = asyncio.get_running_loop()
            signalled = loop.time()
            assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                await watch.read()
            assert ended.value.code() is grpc.StatusCode.UNAVAILABLE
            assert await server.stop(15, signalled=True) == 0
            assert loop.time() - signalled < 10, "the stop waited for the open health Watch"
    finally:
        await server.kill()
    assert "Traceback" not in server.text


# -- start-up failures ---------------------------------------------------------------------------


def run_serve(*args: str, file_size_limit: int | None = None) -> subprocess.CompletedProcess[str]:
    """`serve ARGS` to its end; with `file_size_limit`, no file may grow past that many bytes
    (RLIMIT_FSIZE: a write past it fails as on a full disk)."""
    argv = [sys.executable, "-m", "runservice", "serve", *args]
    if file_size_limit is not None:
        # The limit is set by a small launcher that then becomes the server, not by a
        # `preexec_fn`: that makes subprocess fork() this gRPC-using process, which runs
        # gRPC's fork handlers while other tests' gRPC threads are busy.
        launcher = (
            "import os, resource, sys; "
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({file_size_limit}, resource.RLIM_INFINITY)); "
            "os.execv(sys.argv[1], sys.argv[1:])"
        )
        argv = [sys.executable, "-c", launcher, *argv]
    return subprocess.run(argv, cwd=ROOT, env=server_env(), capture_output=True, text=True, timeout=30)


def assert_one_line_failure(done: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert done.returncode != 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("runservice: error: ")
    for text in expected:
        assert text in lines[0], lines[0]


SHELLING_FLOWS = """
import asyncio

from runservice.workflow import create_step, create_workflow


@create_step("shell-out")
async def shell_out(ctx):
    for _ in range(3):
        process = await asyncio.create_subprocess_exec("true")
        await process.wait()
    return {"exit": process.returncode}


shelling = create_workflow("shelling").then(shell_out).commit()
"""


@LAYOUTS
async def test_step_bodies_that_fork_leave_no_grpc_fork_lines(
    tmp_path: Path, layout: tuple[str, ...]
) -> None:
    """Under uvloop a body's subprocess is a real fork(). With gRPC's fork handlers on (its
    default), each fork while a call was in flight logged "Other threads are currently
    calling into gRPC, skipping fork() handlers" in the server's log."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "shelling_flows.py").write_text(SHELLING_FLOWS)
    env = server_env(PYTHONPATH=str(tmp_path / "app"))
    args = ("--data-dir", str(tmp_path / "data"), "--workflows", "shelling_flows", *layout)
    server = await start_server(serve_argv(*args), env=env)
    try:
        async with Client(server.address, timeout=30) as client:
            workflow = client.get_workflow("shelling")

            async def one() -> RunStatus:
                run = await workflow.create_run()
                return (await run.start_async()).status

            assert set(await asyncio.gather(*(one() for _ in range(40)))) == {RunStatus.SUCCESS}
        assert await server.stop() == 0
    finally:
        await server.kill()
    assert "fork() handlers" not in server.text, server.text


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    done = run_serve("--address", "127.0.0.1:0", "--data-dir", str(blocker))
    assert_one_line_failure(done, str(blocker), "not a directory")


def test_data_dir_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    done = run_serve("--address", "127.0.0.1:0", "--data-dir", str(blocker / "data"))
    assert_one_line_failure(done, "cannot create the data directory", str(blocker / "data"))


@LAYOUTS
def test_corrupt_database(tmp_path: Path, layout: tuple[str, ...]) -> None:
    (tmp_path / "runservice.db").write_bytes(b"this is not a database" * 100)
    done = run_serve("--address", "127.0.0.1:0", "--data-dir", str(tmp_path), *layout)
    assert_one_line_failure(done, "database", "corrupt")


@LAYOUTS
def test_full_disk(tmp_path: Path, layout: tuple[str, ...]) -> None:
    done = run_serve("--address", "127.0.0.1:0", "--data-dir", str(tmp_path), *layout, file_size_limit=1)
    assert_one_line_failure(done, "database", "SQLITE_IOERR", "disk full")


@LAYOUTS
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "import sys\nX = 1\nsys.exit(3)\n",
            "SystemExit at {file}:3: the module exited while it was imported",
        ),
        ("X = 1\nraise KeyboardInterrupt\n", "KeyboardInterrupt at {file}:2: the module raised it"),
    ],
    ids=["sys-exit", "keyboard-interrupt"],
)
def test_a_module_that_exits_as_it_is_imported(
    tmp_path: Path, layout: tuple[str, ...], source: str, expected: str
) -> None:
    """A module that calls sys.exit() at import made `serve` exit with its code (3: "run failed"
    in the CLI's table) without a word; with --engine-process the one line had no cause; one
    that raised KeyboardInterrupt printed a traceback (audit). Now: the usage error of any
    module that does not import, with the file and line."""
    module = tmp_path / "app" / "quits_at_import.py"
    module.parent.mkdir()
    module.write_text(source)
    done = run_serve(
        "--address", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"), "--app-dir", str(module.parent),
        "--workflows", "quits_at_import", *layout,
    )  # fmt: skip
    assert_one_line_failure(
        done, "cannot import workflows module 'quits_at_import'", expected.format(file=module)
    )
    assert done.returncode == 2


@LAYOUTS
def test_database_of_a_newer_schema(tmp_path: Path, layout: tuple[str, ...]) -> None:
    with sqlite3.connect(tmp_path / "runservice.db") as conn:
        conn.execute("PRAGMA user_version = 999")
    done = run_serve("--address", "127.0.0.1:0", "--data-dir", str(tmp_path), *layout)
    assert_one_line_failure(done, "schema version 999")


def test_taken_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_serve("--address", f"127.0.0.1:{port}", "--data-dir", str(tmp_path))
        assert_one_line_failure(done, f"cannot listen on 127.0.0.1:{port}")
        assert "metrics" not in done.stderr
        # The metrics port taken: said to be the metrics address, not as if the gRPC one (audit).
        metrics = run_serve(
            "--address", "127.0.0.1:0", "--metrics-address", f"127.0.0.1:{port}", "--data-dir", str(tmp_path)
        )
        assert_one_line_failure(metrics, f"cannot listen on the metrics address 127.0.0.1:{port}")


async def test_a_metrics_port_taken_after_the_check_names_the_metrics_address() -> None:
    """`serve` checks both ports before binding; one taken between that check and the bind
    fails in the metrics endpoint, which says which listener it is too."""
    from runservice.server.metrics import MetricsEndpoint

    async def render() -> bytes:
        return b""

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(OSError, match=f"^cannot listen on the metrics address {address}: "):
            await MetricsEndpoint(render, address).start()


def test_unresolvable_host_and_a_metrics_port_shared_with_the_address(tmp_path: Path) -> None:
    """Each printed gRPC's own error line first, and the shared port's cause only in it."""
    done = run_serve("--address", "999.1.1.1:50051", "--data-dir", str(tmp_path))
    assert_one_line_failure(done, "999.1.1.1:50051", "cannot resolve")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"127.0.0.1:{port}"
    done = run_serve("--address", address, "--metrics-address", address, "--data-dir", str(tmp_path))
    assert_one_line_failure(done, "metrics_address", address, "a port of its own")
    assert done.returncode == 2


def test_an_sqlite_url_with_a_host_is_a_usage_error(tmp_path: Path) -> None:
    """`sqlite://runs.db` made a directory `sqlite:` and a database in it."""
    done = run_serve("--address", "127.0.0.1:0", "--database-url", f"sqlite://{tmp_path.name}.db")
    assert_one_line_failure(
        done, "database-url (flag): 'sqlite://", "is not an SQLite URL", "sqlite:////absolute"
    )
    assert done.stderr.count("sqlite://") == 3  # the value once, and the two forms
    assert done.returncode == 2
    assert not (ROOT / "sqlite:").exists()


def test_bad_tls_file(tmp_path: Path) -> None:
    done = run_serve(
        "--address", "127.0.0.1:0", "--data-dir", str(tmp_path),
        "--tls-cert", str(tmp_path / "absent.pem"), "--tls-key", str(tmp_path / "absent.key"),
    )  # fmt: skip
    assert_one_line_failure(done, "absent.pem")


@LAYOUTS
async def test_second_server_on_the_same_data_dir(tmp_path: Path, layout: tuple[str, ...]) -> None:
    first: ServerProcess = await start_server(serve_argv("--data-dir", str(tmp_path), *layout))
    try:
        done = await asyncio.to_thread(
            run_serve, "--address", "127.0.0.1:0", "--data-dir", str(tmp_path), *layout
        )
        assert_one_line_failure(done, "in use by another runservice process")
        assert await first.stop() == 0
    finally:
        await first.kill()


# -- TLS, tokens and SIGHUP through the real command ----------------------------------------------


async def test_serve_with_tls_tokens_and_sighup_reload(tmp_path: Path) -> None:
    import trustme

    from runservice import errors

    first_ca, second_ca = trustme.CA(), trustme.CA()
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"

    def issue(ca: trustme.CA) -> None:
        leaf = ca.issue_cert("127.0.0.1")
        cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        key.write_bytes(leaf.private_key_pem.bytes())

    issue(first_ca)
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("file-token\n")
    env = server_env(RUNSERVICE_TOKENS="env-token", RUNSERVICE_TLS_KEY=str(key))
    args = ("--data-dir", str(tmp_path / "data"), "--tokens-file", str(tokens), "--tls-cert", str(cert))
    server = await start_server(serve_argv(*args), env=env)
    try:
        for ca, token in ((first_ca, "file-token"), (first_ca, "env-token")):
            credentials = grpc.ssl_channel_credentials(ca.cert_pem.bytes())
            async with Client(server.address, credentials=credentials, token=token, timeout=5) as client:
                assert len(await client.list_workflows()) == 4  # the bundled examples
        async with Client(
            server.address, credentials=grpc.ssl_channel_credentials(first_ca.cert_pem.bytes()), timeout=5
        ) as anonymous:
            with pytest.raises(errors.Unauthenticated):
                await anonymous.list_workflows()

        # SIGHUP: the next handshake reads the (new) certificate files; the tokens file is read again.
        await asyncio.to_thread(issue, second_ca)
        await asyncio.to_thread(tokens.write_text, "rotated-token\n")
        server.proc.send_signal(1)
        for _ in range(100):
            if "SIGHUP received" in server.text:
                break
            await asyncio.sleep(0.02)
        credentials = grpc.ssl_channel_credentials(second_ca.cert_pem.bytes())
        async with Client(
            server.address, credentials=credentials, token="rotated-token", timeout=5
        ) as client:
            assert len(await client.list_workflows()) == 4  # the bundled examples
        async with Client(server.address, credentials=credentials, token="file-token", timeout=5) as client:
            with pytest.raises(errors.Unauthenticated):  # dropped from the file
                await client.list_workflows()
        assert "TLS certificate reloaded" in server.text and "tokens reloaded (2 tokens)" in server.text
        assert await server.stop() == 0
    finally:
        await server.kill()
    for secret in ("file-token", "env-token", "rotated-token"):  # secrets are never logged
        assert secret not in server.text
