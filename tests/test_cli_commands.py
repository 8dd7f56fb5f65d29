"""The people's CLI (`runservice workflows | graph | start | resume | cancel | runs | show | delete`)
run as the installed console script against a real server, text and --json, and its exit codes."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from clitools import ROOT, RUNSERVICE, Result, clean_env, cli_workflows, runservice
from conftest import ServingFactory

from runservice import __version__
from runservice.client import Client
from runservice.model import RunStatus

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def target(serving: ServingFactory, tmp_path: Path) -> AsyncIterator[str]:
    async with serving(tmp_path / "runs.db", workflows=cli_workflows()) as served:
        yield served.address


async def cli(target: str, *args: str, stdin: str | None = None) -> Result:
    return await runservice(*args, "--target", target, stdin=stdin)


def one_error_line(result: Result, *parts: str) -> str:
    """The single stderr line of a failed command, checked to hold `parts`."""
    lines = result.error_lines
    assert len(lines) == 1, result.err
    assert lines[0].startswith("runservice: error: "), lines[0]
    for part in parts:
        assert part in lines[0], lines[0]
    assert "Traceback" not in result.err
    return lines[0]


# -- the command itself -------------------------------------------------------------------------


async def test_version_help_and_usage_errors() -> None:
    version = await runservice("--version")
    assert version.code == 0 and version.out.strip() == f"runservice {__version__}"

    bare = await runservice()
    assert bare.code == 2 and "COMMAND" in bare.err

    for command in ("workflows", "graph", "start", "resume", "cancel", "runs", "show", "delete", "watch"):
        helped = await runservice(command, "--help")
        assert helped.code == 0 and "--target" in helped.out and "--json" in helped.out, command

    unknown = await runservice("runs", "--no-such-flag")
    assert unknown.code == 2 and "--no-such-flag" in unknown.err
    # Out of range: usage errors (exit 2), not calls the server refuses (exit 1).
    negative = await runservice("watch", "some-run", "--after", "-5")
    assert negative.code == 2 and "'-5' must be from 0 to" in negative.err
    for limit in ("0", "5000", "ten"):
        page = await runservice("runs", "--limit", limit)
        assert page.code == 2 and f"'{limit}'" in page.err, page.err
    missing = await runservice("show")
    assert missing.code == 2 and "RUN" in missing.err
    # What a request cannot carry is a usage error too, not a traceback (audit).
    for timeout in ("nan", "inf", "-1"):
        late = await runservice("start", "echo", "--run-timeout", timeout)
        assert late.code == 2 and f"'{timeout}' must be a finite number" in late.err, late.err
    # Past gRPC's deadlines (int64 nanoseconds: the year 2262) a call failed at once,
    # DEADLINE_EXCEEDED, and a sequence past Watch's int64 was a ValueError traceback.
    for flag in ("--timeout", "--run-timeout"):
        far_off = await runservice("start", "echo", flag, "1e10", "--target", "127.0.0.1:9")
        assert far_off.code == 2 and "'1e10' must be at most 1000000000 seconds" in far_off.err, far_off.err
    after = await runservice("watch", "some-run", "--after", str(2**63), "--target", "127.0.0.1:9")
    assert after.code == 2 and f"'{2**63}' must be from 0 to {2**63 - 1}" in after.err, after.err
    # Each was accepted: a NaN or negative give-up meant "never" in silence, a negative or NaN
    # health timeout failed as DEADLINE_EXCEEDED (a probe's mistake read as a dead server),
    # `garbage` was checked as 127.0.0.1:garbage, and --version without --workflow was left to
    # the server to refuse.
    for give_up in ("nan", "-5", "inf"):
        watched = await runservice("watch", "some-run", "--give-up-after", give_up, "--target", "127.0.0.1:9")
        assert watched.code == 2 and f"'{give_up}' must be from 0 (never) to" in watched.err, watched.err
    for timeout in ("-1", "nan", "0"):
        probe = await runservice("health", "--address", "127.0.0.1:9", "--timeout", timeout)
        assert probe.code == 2 and f"'{timeout}' must be a finite number more than 0" in probe.err, probe.err
    for address in ("garbage", "127.0.0.1:0", "127.0.0.1:65536", "host:", "127.0.0.1:http"):
        probe = await runservice("health", "--address", address)
        assert probe.code == 2, probe.err
        assert f"'{address}' must be HOST:PORT with a port from 1 to 65535" in probe.err, probe.err
    versioned = await runservice("runs", "--version", "1", "--target", "127.0.0.1:9")
    assert versioned.code == 2
    one_error_line(versioned, "--version needs --workflow: a version is one workflow's")
    far = await runservice("resume", "some-run", "--data", "{}", "--index", "99999999999")
    assert far.code == 2 and "'99999999999' must be from 0 to 2147483647" in far.err, far.err
    garbled = await runservice("show", "run-\udcff", "--target", "127.0.0.1:9")  # the byte 0xff
    assert garbled.code == 2 and "is not valid UTF-8" in garbled.err, garbled.err
    assert "Traceback" not in late.err + far.err + garbled.err


async def test_help_lists_every_exit_code_and_the_commands_that_exit_3() -> None:
    """`--help` left out 130, and README and help named only start, resume and watch for 3
    (time-travel and fork with --wait exit 3 too: tests/test_cli_time_travel.py; audit)."""
    helped = await runservice("--help")
    assert helped.code == 0, helped.err
    epilog = " ".join(helped.out.split())
    for told in ("0 done", "1 the call failed", "2 usage", "3 the run ended failed or canceled", "130"):
        assert told in epilog, epilog
    assert "time-travel and fork with --wait" in epilog, epilog
    readme = (ROOT / "README.md").read_text()
    exit_3 = next(line for line in readme.splitlines() if line.startswith("| 3 |"))
    for command in ("start", "resume", "time-travel", "fork"):
        assert f"`{command} --wait`" in exit_3, exit_3
    assert "`watch`" in exit_3


async def test_usage_errors_with_json_are_json_on_stdout_too() -> None:
    """Errors with --json go to stdout as `{"error": {...}}` too; usage errors printed nothing
    there (`start city-weather --input '[1,2' --json`: exit 2, stdout empty; audit)."""
    down = ("--target", "127.0.0.1:9")  # none of them gets as far as calling a server
    for args, message in (
        (("start", "city-weather", "--input", "[1,2"), "--input: the argument is not JSON"),  # UsageError
        (("runs", "--limit", "0"), "argument --limit/-n: '0' must be from 1 to 1000"),  # argparse's
        (("start",), "the following arguments are required: WORKFLOW"),
        (("cancel",), "name a run, or select runs with"),
        (("runs", "--no-such-flag"), "unrecognized arguments: --no-such-flag"),
    ):
        done = await runservice(*args, *down, "--json")
        assert done.code == 2, done.err
        assert message in done.err
        error = done.json()["error"]
        assert set(error) == {"code", "reason", "message", "metadata", "violations"}, error
        assert error["code"] == "INVALID_ARGUMENT" and error["reason"] == "USAGE", error
        assert error["message"].startswith(message) and error["metadata"] == {} and error["violations"] == []
        plain = await runservice(*args, *down)
        assert plain.code == 2 and plain.out == "" and message in plain.err
    # `check` keeps its own JSON shape for every error.
    for args in (("check", "--json", "--workflows", ""), ("check", "--json", "--no-such-flag")):
        checked = await runservice(*args, env=clean_env())
        assert checked.code == 2 and checked.json()["ok"] is False and checked.json()["error"], checked.out


async def test_output_the_terminal_cannot_encode_is_escaped_not_an_error(target: str) -> None:
    """On an ASCII stdout (LANG=C elsewhere, PYTHONIOENCODING=ascii) the first `°C` of a result
    ended the output half-way with exit 2, `'...' is not valid UTF-8` and the whole output pasted
    into the message (audit). Text now escapes it, JSON writes JSON escapes (the same JSON)."""
    started = await cli(
        target, "start", "city-weather", "-i", '{"city": "Oslo"}', "--run-id", "deg", "--wait"
    )
    assert started.code == 0 and "°C" in started.out, started.err
    ascii_only = clean_env(PYTHONIOENCODING="ascii")

    async def run(*args: str) -> Result:
        done = await runservice(*args, "--target", target, env=ascii_only)
        assert done.code == 0 and done.err == "", done.err
        assert done.out.isascii(), done.out
        return done

    text = await run("show", "deg")
    assert "\\xb0C" in text.out and text.out.splitlines()[0] == "run deg (city-weather) success"
    as_json = await run("show", "deg", "--json")
    assert "\\u00b0C" in as_json.out and "°C" in as_json.json()["result"]["activities"]
    lines = (await run("watch", "deg", "--json")).out.splitlines()
    assert "°C" in json.loads(lines[-1])["data"]["activities"]
    assert "\\xb0C" in (await run("watch", "deg")).out

    # What still is a usage error: an argument that cannot be sent, said in a short line.
    padding = "x" * 5000
    surrogate = await cli(target, "start", "echo", "--input", f'{{"count": 1, "a": "{padding}\\udcff"}}')
    assert surrogate.code == 2
    line = one_error_line(surrogate, "is not valid UTF-8", "\\udcff")
    assert len(line) < 200, line


CTRL_C_ON_IMPORT = """
import os
import signal
import sys


class CtrlC:
    \"\"\"A Ctrl-C exactly as the command starts importing INTERRUPT_ON_IMPORT.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name == os.environ["INTERRUPT_ON_IMPORT"]:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None


sys.meta_path.insert(0, CtrlC())
"""


@pytest.mark.parametrize(
    ("module", "command"),
    [
        ("argparse", ("runs",)),  # the command's own module, as it loads
        ("runservice.workflow", ("workflows",)),  # the package's authoring API
        ("rich", ("workflows",)),  # a subcommand's module
        ("pydantic_settings", ("runs",)),  # the configuration
        ("grpc", ("show", "some-run")),  # the client, once the command runs
        ("runservice.examples", ("check", "--workflows", "runservice.examples")),  # a workflows module
    ],
)
async def test_ctrl_c_at_any_point_exits_130_quietly(
    tmp_path: Path, module: str, command: tuple[str, ...]
) -> None:
    """Every command imported its subcommands' modules (rich, pydantic, gRPC: half a second)
    before `main` could treat Ctrl-C as an interrupt: a Ctrl-C then printed a KeyboardInterrupt
    traceback (audit). The interrupt comes as the command imports `module` (a sitecustomize
    that sends SIGINT from an import hook), each time a different stage."""
    (tmp_path / "sitecustomize.py").write_text(CTRL_C_ON_IMPORT)
    env = clean_env(PYTHONPATH=str(tmp_path), INTERRUPT_ON_IMPORT=module)
    target = () if command[0] == "check" else ("--target", "127.0.0.1:9")
    done = await runservice(*command, *target, env=env)
    assert done.code == 130, done.err
    assert "Traceback" not in done.err and done.err.strip() == "" and done.out == "", done.err


async def test_unreachable_server_is_one_line_and_exit_1(unused_tcp_port: int) -> None:
    down = f"127.0.0.1:{unused_tcp_port}"
    result = await runservice("workflows", "--target", down)
    assert result.code == 1
    line = one_error_line(result, "UNAVAILABLE", down, "RUNSERVICE_TARGET")
    assert "TLS" not in line  # refused: nothing listens, so TLS is not the question
    probe = await runservice("health", "--address", down)
    assert probe.code == 1 and f"is a server running at {down}? see --address" in probe.err, probe.err
    assert "TLS" not in probe.err

    # The target also comes from the environment.
    from_env = await runservice("runs", "--json", env=clean_env(RUNSERVICE_TARGET=down))
    assert from_env.code == 1 and from_env.json()["error"]["code"] == "UNAVAILABLE"


async def test_health_of_a_service_without_a_status_says_so(target: str) -> None:
    """NOT_FOUND came with an empty message: `health check of ... failed: NOT_FOUND: ` (audit)."""
    from runservice.client.health import SERVICES

    for service in SERVICES:  # the ones the message names are the server's
        known = await runservice("health", "--address", target, "--service", service)
        assert known.code == 0 and known.out.split() == [target, "SERVING"], known
    unknown = await runservice("health", "--address", target, "--service", "nope")
    assert unknown.code == 1 and unknown.out == "", unknown
    assert unknown.err.strip() == (
        f"runservice: health: health check of {target} failed: the server has no health status for "
        "service 'nope' (a runservice server has one for '', 'runservice.v1.RunService', "
        "'runservice.v1.ScheduleService')"
    )


async def test_unusable_tls_files_and_token_are_one_line_usage_errors(target: str, tmp_path: Path) -> None:
    """Each was a Python traceback (FileNotFoundError, IsADirectoryError, gRPC's batch error)."""
    missing = await cli(target, "workflows", "--tls-ca", str(tmp_path / "absent.pem"))
    assert missing.code == 2
    one_error_line(missing, "absent.pem", "No such file")
    directory = await cli(target, "workflows", "--tls-cert", str(tmp_path), "--tls-key", str(tmp_path))
    assert directory.code == 2
    one_error_line(directory, str(tmp_path), "Is a directory")
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate\n")
    garbage = await cli(target, "workflows", "--tls-ca", str(not_pem))
    assert garbage.code == 2
    one_error_line(garbage, "not.pem", "is not a PEM file")
    # TLS to a plaintext server: gRPC's INFO lines about the handshake came first.
    mismatch = await cli(target, "workflows", "--tls")
    assert mismatch.code == 1
    one_error_line(mismatch, "UNAVAILABLE")
    empty = await runservice("workflows", "--target", "")
    assert empty.code == 2
    one_error_line(empty, "target is empty")
    for token in ("secret-token-1\n", "sécret"):
        refused = await runservice("workflows", "--target", target, env=clean_env(RUNSERVICE_TOKEN=token))
        assert refused.code == 2
        one_error_line(refused, "RUNSERVICE_TOKEN", "printable ASCII")


async def test_target_from_the_environment(target: str) -> None:
    result = await runservice("workflows", "--json", env=clean_env(RUNSERVICE_TARGET=target))
    assert result.code == 0, result.err
    assert "echo" in {wf["id"] for wf in result.json()["workflows"]}


# -- workflows and graph ----------------------------------------------------------------------------


async def test_workflows_lists_ids_steps_and_inputs(target: str) -> None:
    listed = await cli(target, "workflows", "--json")
    assert listed.code == 0, listed.err
    by_id = {wf["id"]: wf for wf in listed.json()["workflows"]}
    assert {"echo", "approval", "shapes", "human-approval", "order-fulfilment"} <= set(by_id)
    assert set(by_id["approval"]["steps"]) == {"bump", "ask", "report"}
    assert by_id["echo"]["input_schema"]["required"] == ["count"]
    # As gRPC gives them, named and the newest flagged (bare [version, digest] pairs: an audit).
    echo = by_id["echo"]
    assert echo["versions"] == [{"version": "1", "digest": echo["digest"], "newest": True}]

    text = await cli(target, "workflows")
    assert text.code == 0, text.err
    rows = {line.split()[0]: line for line in text.out.splitlines()[1:] if line.strip()}
    assert set(rows) == set(by_id)
    assert re.search(r"^echo\s+1\s+\{count: integer\}\s+Adds one to a count$", rows["echo"])
    # Fields sorted: the schema crosses the wire as a Struct, which keeps no order.
    assert "{chunks?: integer, seconds?: number, title?: string}" in rows["cancellable-report"]
    assert "\x1b[" not in text.out  # piped: no colours


async def test_graph_is_a_mermaid_flowchart_of_every_construct(target: str) -> None:
    shapes = await cli(target, "graph", "shapes")
    assert shapes.code == 0, shapes.err
    chart = shapes.out
    assert chart.startswith("---\ntitle: shapes\n---\nflowchart TD\n")
    # the nested workflow is a subgraph holding its own step; parallel forks and joins; sleep; map
    assert re.search(r'subgraph sg\d+\["workflow inner"\]\n\s+n\d+\["inner-bump"\]\n\s+end', chart)
    fork = re.search(r'(n\d+)\{\{"parallel"\}\}', chart)
    join = re.search(r'(n\d+)\{\{"join"\}\}', chart)
    assert fork and join
    for step in ("double", "triple"):
        node = re.search(rf'(n\d+)\["{step}"\]', chart)
        assert node, step
        assert f"{fork[1]} --> {node[1]}" in chart and f"{node[1]} --> {join[1]}" in chart
    assert re.search(r'n\d+\(\["sleep 0\.01s"\]\)', chart)
    assert re.search(r'n\d+\[/"map [^"]+"/\]', chart)
    assert "start --> " in chart and " --> done" in chart

    order = await cli(target, "graph", "order-fulfilment")
    assert order.code == 0, order.err
    assert re.search(r'subgraph sg\d+\["foreach, 2 at a time"\]\n\s+n\d+\["pick-item"\]', order.out)
    assert '-->|"is_express"|' in order.out and '-->|"is_standard"|' in order.out
    loop = re.search(r'(n\d+)\["confirm-pickup"\]', order.out)
    check = re.search(r'(n\d+)\{"dountil"\}', order.out)
    assert loop and check
    assert f'{check[1]} -->|"condition false"| {loop[1]}' in order.out
    assert f'{check[1]} -->|"condition true"| done' in order.out

    approval = await cli(target, "graph", "approval", "--json")
    data = approval.json()
    assert data["workflow_id"] == "approval" and [n["id"] for n in data["step_graph"]] == [
        "bump",
        "ask",
        "report",
    ]
    ask = re.search(r'(n\d+)\["ask"\]', data["mermaid"])
    assert ask and f"class {ask[1]} suspends" in data["mermaid"]  # a step that can suspend is dashed

    missing = await cli(target, "graph", "no-such-workflow")
    assert missing.code == 1
    one_error_line(missing, "NOT_FOUND WORKFLOW_NOT_FOUND", "no-such-workflow")


# -- start, resume, cancel ----------------------------------------------------------------------------


async def test_start_waits_and_reports_the_result(target: str) -> None:
    done = await cli(target, "start", "echo", "--input", '{"count": 41}', "--wait")
    assert done.code == 0, done.err
    lines = done.out.splitlines()
    assert re.fullmatch(r"run \S+ \(echo\) success", lines[0])
    assert lines[1] == 'result: {"count": 42}'

    as_json = await cli(
        target, "start", "echo", "-i", '{"count": 1}', "--wait", "--json", "--run-id", "echo-1"
    )
    run = as_json.json()
    assert run["run_id"] == "echo-1" and run["status"] == "success" and run["result"] == {"count": 2}
    assert [step["path"] for step in run["steps"]] == [["bump"]]


async def test_start_names_runs_by_time_unless_a_request_id_names_them(target: str) -> None:
    """Without --run-id a run gets a time-ordered id (UUIDv7); with --request-id the server
    derives it from the key, so the same command run again finds the same run."""
    started = [await cli(target, "start", "echo", "-i", '{"count": 1}', "--json") for _ in range(2)]
    ids = [uuid.UUID(done.json()["run_id"]) for done in started]
    assert [i.version for i in ids] == [7, 7] and ids[0] < ids[1]
    keyed = [
        await cli(target, "start", "echo", "-i", '{"count": 1}', "--request-id", "cli-key-1", "--json")
        for _ in range(2)
    ]
    assert keyed[0].code == keyed[1].code == 0, keyed[1].err
    assert keyed[0].json()["run_id"] == keyed[1].json()["run_id"]


async def test_start_without_input_sends_an_empty_object_to_an_object_input(target: str) -> None:
    """Its fields' defaults apply (before, null was sent and refused as not a dictionary)."""
    started = await cli(target, "start", "cancellable-report", "--run-id", "no-input", "--json")
    assert started.code == 0, started.err
    assert started.json()["input"]["seconds"] == 30  # the default
    assert (await cli(target, "cancel", "no-input")).code == 0
    missing = await cli(target, "start", "echo")  # a required field is named
    assert missing.code == 1 and "count" in missing.err and "VALIDATION_FAILED" in missing.err


async def test_start_without_wait_returns_at_once(target: str) -> None:
    started = await cli(target, "start", "sluggish", "-i", '{"value": 1}', "--run-id", "slow-1", "--json")
    assert started.code == 0, started.err
    assert started.json()["status"] in ("pending", "running")
    text = await cli(target, "cancel", "slow-1")
    assert text.code == 0, text.err
    assert text.out.splitlines()[0] == "run slow-1 (sluggish) canceled"


async def test_start_with_a_timeout_ends_the_run_at_its_deadline(target: str) -> None:
    done = await cli(
        target, "start", "sluggish", "-i", '{"value": 1}', "--run-timeout", "0.3", "--wait", "--json"
    )
    assert done.code != 0
    run = done.json()
    assert run["status"] == "failed" and run["error"]["name"] == "RunTimeoutError"
    assert run["deadline"] == pytest.approx(run["started_at"] + 0.3, abs=0.01)


async def test_start_input_from_a_file_and_stdin_and_every_option(target: str, tmp_path: Path) -> None:
    (tmp_path / "input.json").write_text('{"value": 5}')
    from_file = await cli(
        target, "start", "stateful", "--input", f"@{tmp_path / 'input.json'}", "--wait", "--json",
        "--state", '{"seen": ["cli"], "total": 1}', "--context", '{"tenant": "acme"}',
        "--resource-id", "user-7", "--run-id", "stateful-1",
    )  # fmt: skip
    assert from_file.code == 0, from_file.err
    result = from_file.json()["result"]
    assert result["state"] == {"seen": ["cli", "remember"], "total": 6}
    assert result["tenant"] == "acme" and result["resource"] == "user-7" and result["init"] == {"value": 5}

    from_stdin = await cli(target, "start", "echo", "--input", "-", "--wait", "--json", stdin='{"count": 9}')
    assert from_stdin.json()["result"] == {"count": 10}


async def test_start_errors(target: str, tmp_path: Path) -> None:
    invalid = await cli(target, "start", "echo", "--input", '{"count": "many"}', "--wait")
    assert invalid.code == 1 and invalid.out == ""
    one_error_line(invalid, "INVALID_ARGUMENT VALIDATION_FAILED", "count", "(input_data.count: ")

    invalid_json = await cli(target, "start", "echo", "--input", '{"count": "many"}', "--json")
    error = invalid_json.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT" and error["reason"] == "VALIDATION_FAILED"
    assert [v["field"] for v in error["violations"]] == ["input_data.count"]

    unknown = await cli(target, "start", "nope", "--input", "{}")
    assert unknown.code == 1
    one_error_line(unknown, "NOT_FOUND WORKFLOW_NOT_FOUND", "'nope'")

    not_json = await cli(target, "start", "echo", "--input", "{count: 1}")
    assert not_json.code == 2
    one_error_line(not_json, "--input", "not JSON")
    no_file = await cli(target, "start", "echo", "--input", f"@{tmp_path / 'missing.json'}")
    assert no_file.code == 2
    one_error_line(no_file, "--input", "missing.json")
    # UTF-16 with a byte-order mark, as PowerShell's `>` writes: a traceback before.
    (tmp_path / "utf16.json").write_bytes('{"count": 1}'.encode("utf-16"))
    utf16 = await cli(target, "start", "echo", "--input", f"@{tmp_path / 'utf16.json'}")
    assert utf16.code == 2
    one_error_line(utf16, "--input", "utf16.json", "is not UTF-8 text")
    # UTF-8 with a byte-order mark (Notepad's): JSON all the same.
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + b'{"count": 1}')
    bom = await cli(target, "start", "echo", "--input", f"@{tmp_path / 'bom.json'}", "--wait", "--json")
    assert bom.code == 0, bom.err
    assert bom.json()["result"] == {"count": 2}

    first = await cli(target, "start", "echo", "-i", '{"count": 1}', "--run-id", "twice", "--wait")
    assert first.code == 0, first.err
    again = await cli(target, "start", "echo", "-i", '{"count": 1}', "--run-id", "twice")
    assert again.code == 1
    one_error_line(again, "ALREADY_EXISTS RUN_ALREADY_STARTED", "twice")


async def test_a_wait_cut_short_names_the_run_that_goes_on(target: str) -> None:
    """`start --wait` without --run-id never told the run's id when its wait ended early (a
    --timeout, Ctrl-C), and the run went on."""
    cut = await cli(target, "start", "sluggish", "-i", '{"value": 1}', "--wait", "--timeout", "1")
    assert cut.code == 1
    line = one_error_line(cut, "DEADLINE_EXCEEDED", "may still be running")
    found = re.search(r"\(runservice watch (\S+)\)$", line)
    assert found is not None, line
    run_id = found.group(1)
    shown = await cli(target, "show", run_id, "--json")
    assert shown.code == 0 and shown.json()["status"] == "running"

    proc = await asyncio.create_subprocess_exec(
        str(RUNSERVICE), "start", "sluggish", "-i", '{"value": 2}', "--wait", "--target", target, "--json",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
    )  # fmt: skip
    await asyncio.sleep(2.0)  # connected and waiting
    proc.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 130
    (interrupted,) = err.decode().strip().splitlines()
    assert interrupted.startswith("runservice: error: interrupted; run ")
    assert "may still be running (runservice watch " in interrupted
    error = Result(130, out.decode(), "").json()["error"]  # with --json, a script gets the run
    assert error["code"] == "CANCELLED" and error["metadata"] == {"run_id": interrupted.split()[4]}
    for run in (run_id, interrupted.split()[4]):
        assert (await cli(target, "cancel", run)).code == 0


@pytest.mark.timeout(150)
async def test_a_wait_cut_short_names_the_run_in_json_and_with_a_request_id(
    serving: ServingFactory, tmp_path: Path
) -> None:
    """`start --wait --json` cut short gave `"metadata": {}` (only stderr named the run), and
    with --request-id, whose run id the server derives, nothing named it at all: not after a
    --timeout, nor when a stopping server ended the wait UNAVAILABLE (audit)."""
    start = ("start", "sluggish", "-i", '{"value": 1}')
    async with serving(tmp_path / "runs.db", workflows=cli_workflows()) as served:
        target = served.address
        for key in ((), ("--request-id", "rq-cut")):
            cut = await cli(target, *start, *key, "--wait", "--timeout", "1", "--json")
            assert cut.code == 1
            error = cut.json()["error"]
            assert error["code"] == "DEADLINE_EXCEEDED", error
            run_id = error["metadata"]["run_id"]
            one_error_line(cut, f"run {run_id} may still be running (runservice watch {run_id})")
            shown = await cli(target, "show", run_id, "--json")
            assert shown.code == 0 and shown.json()["status"] == "running", shown.err
        again = await cli(target, *start, "--request-id", "rq-cut", "--json")  # the same run
        assert again.code == 0 and again.json()["run_id"] == run_id, again.err
        # So do time travel and fork (a fork without --new-run-id: its id chosen, or derived).
        assert (await cli(target, "cancel", run_id)).code == 0
        for travel in (
            ("time-travel", run_id),
            ("fork", run_id),
            ("fork", run_id, "--request-id", "rq-fork"),
        ):
            cut = await cli(target, *travel, "--step", "slow", "--wait", "--timeout", "1", "--json")
            assert cut.code == 1 and cut.json()["error"]["code"] == "DEADLINE_EXCEEDED", cut.out
            named = cut.json()["error"]["metadata"]["run_id"]
            assert f"run {named} may still be running" in cut.err
            shown = (await cli(target, "show", named, "--json")).json()
            assert shown["status"] == "running", shown
            assert (named == run_id) if travel[0] == "time-travel" else (shown["forked_from"] == run_id)
            assert (await cli(target, "cancel", named)).code == 0

        async def running() -> int:
            return len((await cli(target, "runs", "--status", "running", "--json")).json()["runs"])

        before = await running()
        proc = await asyncio.create_subprocess_exec(
            str(RUNSERVICE), *start, "--request-id", "rq-drain", "--wait", "--json", "--target", target,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
        )  # fmt: skip
        async with asyncio.timeout(20):
            while await running() == before:  # until its run started
                await asyncio.sleep(0.05)
    out, err = await asyncio.wait_for(proc.communicate(), 30)  # the server stopped
    assert proc.returncode == 1, err
    error = Result(1, out.decode(), err.decode()).json()["error"]
    assert error["code"] == "UNAVAILABLE", error
    drained = error["metadata"]["run_id"]
    assert f"run {drained} may still be running" in err.decode()
    async with serving(tmp_path / "runs.db", workflows=cli_workflows()) as served:
        shown = await cli(served.address, "show", drained, "--json")
        assert shown.code == 0 and shown.json()["workflow_id"] == "sluggish", shown.err
        assert (await cli(served.address, "cancel", drained, run_id)).code == 0


async def test_a_failed_run_exits_3(target: str) -> None:
    failed = await cli(target, "start", "failing", "-i", '{"value": 1}', "--wait")
    assert failed.code == 3, failed.err
    assert re.fullmatch(r"run \S+ \(failing\) failed", failed.out.splitlines()[0])
    assert "error: ValueError: boom" in failed.out
    assert failed.err == ""


async def test_resume_a_suspended_run(target: str) -> None:
    suspended = await cli(target, "start", "approval", "-i", '{"count": 1}', "--run-id", "ap-1", "--wait")
    assert suspended.code == 0, suspended.err
    assert suspended.out.splitlines() == [
        "run ap-1 (approval) suspended",
        'suspended: ask {"question": "approve 2?"}',
        "resume with: runservice resume ap-1 --data JSON",
    ]
    # Read without the steps' JSON, the payload is left out, not shown as null (a review).
    lean = await cli(target, "show", "ap-1", "--view", "without_payloads")
    assert lean.code == 0 and "suspended: ask\n" in lean.out and "null" not in lean.out, lean.out
    full = await cli(target, "show", "ap-1")
    assert full.code == 0 and 'suspended: ask {"question": "approve 2?"}' in full.out

    wrong = await cli(target, "resume", "ap-1", "--data", '{"approved": "perhaps"}')
    assert wrong.code == 1
    one_error_line(wrong, "INVALID_ARGUMENT VALIDATION_FAILED")

    resumed = await cli(target, "resume", "ap-1", "--step", "ask", "--data", '{"approved": true}', "--wait")
    assert resumed.code == 0, resumed.err
    assert resumed.out.splitlines()[:2] == ["run ap-1 (approval) success", 'result: {"verdict": "approved"}']

    again = await cli(target, "resume", "ap-1", "--data", '{"approved": true}')
    assert again.code == 1
    one_error_line(again, "FAILED_PRECONDITION RUN_NOT_SUSPENDED", "ap-1")


async def test_resume_by_step_path_label_and_foreach_index(target: str) -> None:
    # Two suspended steps: the step must be named.
    two = await cli(target, "start", "two-questions", "-i", '{"value": 1}', "--run-id", "tq", "--wait")
    assert two.code == 0 and "--step ask-a" in two.out and "--step ask-b" in two.out
    unnamed = await cli(target, "resume", "tq", "--data", '{"approved": true}')
    assert unnamed.code == 1
    one_error_line(unnamed, "FAILED_PRECONDITION MULTIPLE_SUSPENDED_STEPS")
    named = await cli(
        target, "resume", "tq", "--step", "ask-a", "--data", '{"approved": true}', "--wait", "--json"
    )
    assert named.json()["suspended"] == [["ask-b"]]

    # A step three workflows deep, named by its dotted path, then by its label.
    nested = await cli(target, "start", "outer", "-i", '{"value": 1}', "--run-id", "nest", "--wait", "--json")
    assert nested.json()["suspended"] == [["middle", "innermost", "approve"]]
    bad_step = await cli(target, "resume", "nest", "--step", "middle.approve", "--data", '{"approved": true}')
    assert bad_step.code == 1
    one_error_line(bad_step, "FAILED_PRECONDITION STEP_NOT_SUSPENDED")
    by_label = await cli(
        target, "resume", "nest", "--label", "manager", "--data", '{"approved": true}', "--wait"
    )
    assert by_label.code == 0, by_label.err
    assert 'result: {"text": "approved"}' in by_label.out

    # A foreach with two suspended items: resume one by index, the other by its label.
    items = '[{"value": -1}, {"value": 2}, {"value": -3}]'
    each = await cli(target, "start", "each", "-i", items, "--run-id", "each-1", "--wait", "--json")
    assert each.json()["status"] == "suspended"
    first = await cli(
        target, "resume", "each-1", "--step", "check-item", "--index", "0", "-d", '{"approved": true}',
        "--wait", "--json",
    )  # fmt: skip
    assert first.code == 0 and first.json()["status"] == "suspended"
    last = await cli(
        target, "resume", "each-1", "--label", "item-3", "-d", '{"approved": true}', "--wait", "--json"
    )
    assert last.code == 0, last.err
    assert last.json()["result"] == [{"value": 10}, {"value": 20}, {"value": 30}]


async def test_cancel(target: str) -> None:
    await cli(target, "start", "cancellable-report", "-i", '{"seconds": 30}', "--run-id", "rep")
    canceled = await cli(target, "cancel", "rep", "--json")
    assert canceled.code == 0 and canceled.json()["status"] == "canceled"
    # Cancel of a finished run is fine and changes nothing.
    again = await cli(target, "cancel", "rep")
    assert again.code == 0 and again.out.startswith("run rep (cancellable-report) canceled")
    missing = await cli(target, "cancel", "no-such-run")
    assert missing.code == 1
    one_error_line(missing, "NOT_FOUND RUN_NOT_FOUND")


async def test_timeout_gives_up_with_deadline_exceeded(target: str) -> None:
    result = await cli(
        target, "start", "cancellable-report", "-i", '{"seconds": 30}', "--wait", "--timeout", "0.5"
    )
    assert result.code == 1
    one_error_line(result, "DEADLINE_EXCEEDED", "0.5 s")
    bad = await cli(target, "runs", "--timeout", "soon")
    assert bad.code == 2 and "--timeout" in bad.err


# -- runs, show, delete ---------------------------------------------------------------------------------


async def test_runs_since_and_before(target: str) -> None:
    """`--since` and `--before` take an age or an ISO 8601 time; anything else is a usage error."""
    async with Client(target, timeout=10) as client:
        echo = client.get_workflow("echo")
        await (await echo.create_run(run_id="older")).start_async({"count": 1})
        await asyncio.sleep(1.2)
        between = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=0.6)
        await (await echo.create_run(run_id="newer")).start_async({"count": 2})

    def listed(result: Result) -> list[str]:
        assert result.code == 0, result.err
        return [run["run_id"] for run in result.json()["runs"]]

    # "newer" too may be over a second old once a loaded machine has started the CLI.
    assert "older" not in listed(await cli(target, "runs", "--since", "1s", "--json"))
    assert listed(await cli(target, "runs", "--since", "1h", "--json")) == ["newer", "older"]
    iso = between.isoformat().replace("+00:00", "Z")
    assert listed(await cli(target, "runs", "--since", iso, "--json")) == ["newer"]
    assert listed(await cli(target, "runs", "--before", iso, "--json")) == ["older"]
    assert listed(await cli(target, "runs", "--since", "10m", "--before", iso, "--json")) == ["older"]
    for flag, bad in (("--since", "yesterday"), ("--before", "-5m"), ("--since", "nan")):
        refused = await cli(target, "runs", f"{flag}={bad}")
        assert refused.code == 2
        one_error_line(refused, flag, repr(bad))


async def test_runs_filters_and_pages(target: str) -> None:
    for n in range(3):
        done = await cli(target, "start", "echo", "-i", f'{{"count": {n}}}', "--run-id", f"e{n}", "--wait")
        assert done.code == 0, done.err
    await cli(
        target, "start", "approval", "-i", '{"count": 1}', "--run-id", "a0", "--resource-id", "r1", "--wait"
    )

    everything = await cli(target, "runs", "--json")
    assert [run["run_id"] for run in everything.json()["runs"]] == ["a0", "e2", "e1", "e0"]  # newest first

    echo = await cli(target, "runs", "--workflow", "echo", "--json")
    assert {run["run_id"] for run in echo.json()["runs"]} == {"e0", "e1", "e2"}
    suspended = await cli(target, "runs", "--status", "suspended,failed", "--json")
    assert [run["run_id"] for run in suspended.json()["runs"]] == ["a0"]
    owned = await cli(target, "runs", "--resource", "r1", "--json")
    assert [run["run_id"] for run in owned.json()["runs"]] == ["a0"]
    assert owned.json()["runs"][0]["input"] is None  # a summary
    full = await cli(target, "runs", "--resource", "r1", "--json", "--full")
    assert full.json()["runs"][0]["input"] == {"count": 1}

    page = await cli(target, "runs", "--limit", "3", "--json")
    first = page.json()
    assert len(first["runs"]) == 3 and first["next_page_token"]
    rest = await cli(target, "runs", "--limit", "3", "--page-token", first["next_page_token"], "--json")
    assert [run["run_id"] for run in rest.json()["runs"]] == ["e0"] and rest.json()["next_page_token"] == ""

    text = await cli(target, "runs", "--limit", "3")
    assert text.code == 0
    lines = text.out.splitlines()
    assert lines[0].split() == ["RUN", "WORKFLOW", "STATUS", "RESOURCE", "CREATED", "UPDATED"]
    assert lines[1].split()[:4] == ["a0", "approval", "suspended", "r1"]
    assert len(lines) == 4 and all(line == line.rstrip() for line in lines)
    assert f"--page-token {first['next_page_token']}" in text.err

    bad = await cli(target, "runs", "--status", "sleeping")
    assert bad.code == 2
    one_error_line(bad, "--status", "sleeping")
    # A violation the message says already is not said again in parentheses (audit).
    garbage = await cli(target, "runs", "--page-token", "garbage")
    line = one_error_line(garbage, "INVALID_ARGUMENT INVALID_REQUEST", "page_token: not a token")
    assert line.count("page_token:") == 1, line


async def test_show_a_run_and_its_steps(target: str) -> None:
    await cli(target, "start", "approval", "-i", '{"count": 4}', "--run-id", "sh", "--wait")
    text = await cli(target, "show", "sh")
    assert text.code == 0, text.err
    out = text.out.splitlines()
    assert out[0] == "run sh (approval) suspended"
    assert 'input: {"count": 4}' in out
    steps = {
        line.split()[0]: line.split()
        for line in out[out.index(next(x for x in out if x.startswith("STEP"))) + 1 :]
    }
    assert steps["bump"][1] == "success" and steps["ask"][1] == "suspended"
    assert '{"question": "approve 5?"}' in text.out

    as_json = await cli(target, "show", "sh", "--json")
    run = as_json.json()
    assert run["status"] == "suspended" and run["input"] == {"count": 4}
    assert {tuple(step["path"]): step["status"] for step in run["steps"]} == {
        ("bump",): "success",
        ("ask",): "suspended",
    }
    assert run["last_sequence"] >= 5 and isinstance(run["created_at"], float)

    missing = await cli(target, "show", "nope", "--json")
    assert missing.code == 1 and missing.json()["error"]["reason"] == "RUN_NOT_FOUND"


async def test_delete(target: str) -> None:
    await cli(target, "start", "echo", "-i", '{"count": 1}', "--run-id", "gone", "--wait")
    deleted = await cli(target, "delete", "gone", "--json")
    assert deleted.code == 0 and deleted.json() == {"run_id": "gone", "deleted": True}
    after = await cli(target, "show", "gone")
    assert after.code == 1
    one_error_line(after, "NOT_FOUND RUN_NOT_FOUND", "gone")

    await cli(target, "start", "sluggish", "-i", '{"value": 1}', "--run-id", "busy")
    active = await cli(target, "delete", "busy")
    assert active.code == 1
    one_error_line(active, "FAILED_PRECONDITION RUN_ACTIVE", "busy")
    await cli(target, "cancel", "busy")
    text = await cli(target, "delete", "busy")
    assert text.code == 0 and text.out == "deleted run busy\n"


async def test_cancel_and_delete_many(target: str) -> None:
    """Several run ids, or runs selected with the `runs` filters: a selection is only listed
    until --yes; each run that fails is reported and the rest still done."""
    async with Client(target, timeout=10) as client:  # the runs to act on, made quickly
        for n in range(3):
            approval = client.get_workflow("approval")
            asked = await (await approval.create_run(run_id=f"ask-{n}")).start_async({"count": n})
            assert asked.status is RunStatus.SUSPENDED
        for n in range(3):
            await (await client.get_workflow("echo").create_run(run_id=f"e{n}")).start_async({"count": 1})

    listed = await cli(target, "cancel", "--workflow", "approval")
    assert listed.code == 0 and sorted(listed.out.split()) == ["ask-0", "ask-1", "ask-2"]
    assert "would cancel 3 runs; add --yes to cancel them" in listed.err
    canceled = await cli(target, "cancel", "--workflow", "approval", "--yes", "--json")
    assert canceled.code == 0, canceled.err
    # The listing canceled nothing: all three were still unfinished to be selected here.
    assert canceled.json()["done"] == 3 and {r["outcome"] for r in canceled.json()["runs"]} == {"canceled"}

    # delete's selection is finished runs by default: the canceled and the succeeded ones.
    preview = await cli(target, "delete", "--since", "1h", "--json")
    assert preview.json() == {"dry_run": True, "run_ids": ["e2", "e1", "e0", "ask-2", "ask-1", "ask-0"]}
    gone = await cli(target, "delete", "--status", "canceled", "--yes")
    assert gone.code == 0 and gone.out.strip() == "delete: 3 of 3 runs", gone.out
    left = await cli(target, "runs", "--json")
    assert [run["run_id"] for run in left.json()["runs"]] == ["e2", "e1", "e0"]

    partly = await cli(target, "delete", "e0", "no-such-run", "e1")
    assert partly.code == 1 and partly.out.strip() == "delete: 2 of 3 runs"
    one_error_line(partly, "no-such-run: NOT_FOUND RUN_NOT_FOUND")
    assert [run["run_id"] for run in (await cli(target, "runs", "--json")).json()["runs"]] == ["e2"]

    for args in (("cancel",), ("delete", "e2", "--workflow", "echo"), ("cancel", "--status", "nope")):
        refused = await cli(target, *args)
        assert refused.code == 2
        one_error_line(refused)
