"""The Node.js caller (clients/node) against a real server: its TypeScript is compiled with tsc
(which type-checks every call against the generated types), then `node --test` runs it with
RUNSERVICE_TARGET pointing at a server on a free port, and RUNSERVICE_AUTH_TARGET at a second one
that requires the bearer token RUNSERVICE_AUTH_TOKEN. RUNSERVICE_SERVE is the command of a server
process (tests/node_workflows.py) that process.test.ts starts itself, to kill, restart and pause.
On CI (CI=true) a missing Node fails.

The server serves tests/workflows.py plus `nightly`, whose schedule ticks once a year (1 January,
00:00 UTC), so the only runs it starts during the test are the ones the test triggers. The one
with a token serves tests/workflows.py only."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
from pathlib import Path
from types import ModuleType

import pytest
from conftest import ServingFactory
from edge import losing_first_replies
from edge import serving as serving_with
from process import serve_argv, server_env
from workflows import WORKFLOWS, Count, bump

from runservice import create_workflow
from runservice.server import EdgeOptions
from runservice.server.auth import TokenSet

ROOT = Path(__file__).resolve().parent.parent
NODE_TIMEOUT = 90.0
TESTS = ("runservice.test.js", "schedules.test.js", "auth.test.js", "process.test.js")
TOKEN = "node-caller-secret"

nightly = (
    create_workflow("nightly", input_schema=Count, output_schema=Count, description="Adds one to its input")
    .then(bump)
    .schedule("nightly-echo", "0 0 1 1 *", input_data={"count": 1}, description="Once a year")
    .commit()
)


def _node_client() -> ModuleType:
    spec = importlib.util.spec_from_file_location("node_client", ROOT / "scripts" / "node_client.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


node_client = _node_client()


def require_node() -> None:
    try:
        node_client.executables()
    except node_client.NodeMissing as exc:
        if node_client.on_ci():
            pytest.fail(f"CI must run the Node.js client test: {exc}")
        pytest.skip(str(exc))


async def run(*argv: str, env: dict[str, str] | None = None) -> str:
    """Run a command off the serving loop; fail with its output when it fails or overruns."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=node_client.PACKAGE,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), NODE_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"{' '.join(argv)} did not finish within {NODE_TIMEOUT:.0f}s")
    text = out.decode(errors="replace")
    assert proc.returncode == 0, f"{' '.join(argv)} exited {proc.returncode}:\n{text}"
    return text


@pytest.mark.timeout(240)
async def test_the_node_client_against_a_real_server(serving: ServingFactory, tmp_path: Path) -> None:
    require_node()
    await asyncio.to_thread(node_client.install)  # npm ci from the lock file, once per lock change
    node, _ = node_client.executables()
    build = node_client.PACKAGE / "build"  # inside the package: the JS resolves its node_modules
    shutil.rmtree(build, ignore_errors=True)
    tsc = str(node_client.PACKAGE / "node_modules" / "typescript" / "bin" / "tsc")
    await run(node, tsc, "-p", "tsconfig.json", "--noEmit")
    await run(node, tsc, "-p", "tsconfig.json")
    seen: dict[str, list[str]] = {}
    tokens_file = tmp_path / "node-tokens.toml"  # the Node test rewrites it
    tokens_file.write_text("tokens = []\n")
    serve = {  # process.test.ts adds --address (0 at first, the same one again after a restart)
        "argv": serve_argv(
            *("--data-dir", str(tmp_path / "process-data"), "--workflows", "tests.node_workflows"),
            *("--heartbeat", "0.2", "--metrics-address", "127.0.0.1:0"),
        ),
        "env": server_env(),
        "cwd": str(ROOT),
    }
    async with (
        serving(tmp_path / "runs.db", workflows=[*WORKFLOWS, nightly]) as served,
        losing_first_replies(served.address, seen) as proxy,
        serving_with(
            tmp_path / "auth.db",
            EdgeOptions(tokens=TokenSet.load(str(tokens_file), tokens=TOKEN), tokens_poll_interval=0.05),
        ) as authed,
    ):
        out = await run(
            node,
            "--test",
            "--test-reporter=spec",
            *(str(build / "test" / name) for name in TESTS),
            env={
                "RUNSERVICE_TARGET": served.address,
                "RUNSERVICE_RETRY_PROXY": proxy,
                "RUNSERVICE_PROTOS": str(ROOT / "protos"),
                "RUNSERVICE_AUTH_TARGET": authed.address,
                "RUNSERVICE_AUTH_TOKEN": TOKEN,
                "RUNSERVICE_AUTH_TOKENS_FILE": str(tokens_file),
                "RUNSERVICE_SERVE": json.dumps(serve),
            },
        )
    assert "# fail 0" in out or "fail 0" in out, out
    assert "a Start whose reply was lost is retried with the same requestId: one run" in out
    assert "decodes an error whose status carries a detail of a type outside google.rpc" in out
    assert "a DeleteRun whose reply was lost is retried with the same requestId: it succeeds" in out
    for method in ("Start", "CreateRun", "DeleteRun"):  # filled once, kept by the retry
        calls = seen[method]
        assert len(calls) == 2 and calls[0] == calls[1] != "", (method, calls)
    assert "a CreateRun whose reply was lost is retried with the same runId: one run" in out
    assert "a ForkRun without newRunId or requestId makes a time-ordered run; a requestId names it" in out
    assert "decodes an error's status code, ErrorInfo and BadRequest" in out
    assert "toValue refuses what is not JSON, naming its path, and leaves an undefined property out" in out
    assert "watches one run across a suspend and a resume" in out
    assert "follow reopens a cut Watch from its last sequence: nothing lost, nothing twice" in out
    assert len(seen["Watch"]) == 3 and seen["Watch"][0] == "0" != seen["Watch"][2], seen["Watch"]
    assert "triggers once per request_id: a retry returns the first outcome" in out
    assert "decodes a ScheduleService error: an unknown schedule" in out
    assert "follow with attemptTimeoutMs reopens each Watch its deadline ends: every event once" in out
    assert "a deadline of follow's callOptions bounds each attempt; a fixed one that passed is thrown" in out
    assert "a call without the token is UNAUTHENTICATED (TOKEN_MISSING), a wrong one TOKEN_INVALID" in out
    assert "the token option goes with every call: unary, Stream, follow's Watch, ScheduleService" in out
    assert "per-call interceptors replace the client's: include tokenInterceptor in them" in out
    assert "a token gRPC cannot send throws at construction, with a clear message" in out
    assert "follow reopens a Watch a tokens reload ended (TOKEN_REVOKED)" in out
    assert "a Start failed after gRPC's retries, retried with its error's ids, gets the same run" in out
    assert "follow gives up after giveUpAfterMs of silence while its Watch hangs on a paused server" in out
    assert "follow reads a Watch on to its status OK after endOfStream: the server counts no cancel" in out


def test_node_missing_on_ci_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    assert node_client.main([]) == 1
    monkeypatch.setenv("CI", "")
    assert node_client.main([]) == 0
