"""`runservice watch RUN`: one line per event when piped, JSON lines with --json, and a live
`rich` table of the steps on a terminal (run here under a pseudo-terminal)."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import re
import signal
import struct
import subprocess
import termios
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from clitools import RUNSERVICE, clean_env, cli_workflows, runservice
from conftest import ServingFactory
from process import serve_argv, start_server

pytestmark = pytest.mark.timeout(60)

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
async def target(serving: ServingFactory, tmp_path: Path) -> AsyncIterator[str]:
    async with serving(tmp_path / "runs.db", workflows=cli_workflows()) as served:
        yield served.address


async def until(condition: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(15):
        while not condition():
            await asyncio.sleep(0.05)
    assert condition(), what


async def suspended_run(target: str, run_id: str) -> None:
    started = await runservice(
        "start", "approval", "-i", '{"count": 1}', "--run-id", run_id, "--wait", "--target", target
    )
    assert started.code == 0 and "suspended" in started.out, started.err


async def test_piped_watch_prints_a_line_per_event_across_suspend_and_resume(target: str) -> None:
    await suspended_run(target, "w1")
    proc = await asyncio.create_subprocess_exec(
        str(RUNSERVICE), "watch", "w1", "--target", target,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    while not (lines and lines[-1].split()[2:4] == ["finish", "suspended"]):
        lines.append((await asyncio.wait_for(proc.stdout.readline(), 15)).decode().rstrip("\n"))
    assert proc.returncode is None  # still following the suspended run

    resumed = await runservice("resume", "w1", "-d", '{"approved": true}', "--target", target)
    assert resumed.code == 0, resumed.err
    rest, err = await asyncio.wait_for(proc.communicate(), 15)
    lines += rest.decode().splitlines()
    assert proc.returncode == 0, err.decode()

    assert not any(ANSI.search(line) for line in lines)
    parsed = [line.split(maxsplit=5) for line in lines]
    assert [int(p[0]) for p in parsed] == list(range(1, len(lines) + 1))  # every event, in order
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", p[1]) for p in parsed)
    kinds = [(p[2], p[3]) for p in parsed if p[2].startswith("step-")]
    assert kinds == [
        ("step-start", "bump"), ("step-result", "bump"), ("step-start", "ask"), ("step-suspended", "ask"),
        ("step-start", "ask"), ("step-result", "ask"), ("step-start", "report"), ("step-result", "report"),
    ]  # fmt: skip
    assert re.search(r'step-suspended +ask +suspended \{"question": "approve 2\?"\}$', lines[4])
    starts = [p[3:] for p in parsed if p[2] == "start"]  # each says what began it
    assert starts == [["running", "start"], ["running", "resume"]]
    assert lines[-1].split(maxsplit=4)[2:] == ["finish", "success", 'result={"verdict": "approved"}']


async def test_json_watch_of_a_finished_run_and_after(target: str) -> None:
    done = await runservice(
        "start", "echo", "-i", '{"count": 1}', "--run-id", "w2", "--wait", "--target", target
    )
    assert done.code == 0
    watched = await runservice("watch", "w2", "--json", "--target", target)
    assert watched.code == 0, watched.err
    events = [json.loads(line) for line in watched.out.splitlines()]
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "workflow-start" and events[-1]["type"] == "workflow-finish"
    assert events[0]["cause"] == "start" and events[-1]["cause"] is None
    assert events[-1]["run_status"] == "success" and events[-1]["data"] == {"count": 2}
    assert events[2]["step"]["path"] == ["bump"] and events[2]["step"]["output"] == {"count": 2}

    later = await runservice("watch", "w2", "--json", "--after", str(len(events) - 1), "--target", target)
    assert [json.loads(line)["sequence"] for line in later.out.splitlines()] == [len(events)]


async def test_watch_exit_codes(target: str) -> None:
    failed = await runservice(
        "start", "failing", "-i", '{"value": 1}', "--run-id", "w3", "--wait", "--target", target
    )
    assert failed.code == 3
    watched = await runservice("watch", "w3", "--target", target)
    assert watched.code == 3
    assert watched.out.splitlines()[-1].split(maxsplit=4)[2:] == ["finish", "failed", "ValueError: boom"]

    missing = await runservice("watch", "nope", "--target", target)
    assert missing.code == 1
    assert missing.err.strip().splitlines() == [
        "runservice: error: NOT_FOUND RUN_NOT_FOUND: run 'nope' not found"
    ]


class Terminal:
    """A child process whose stdout is a pseudo-terminal, and everything it drew."""

    def __init__(self, proc: asyncio.subprocess.Process, master: int) -> None:
        self.proc = proc
        self.master = master
        self.raw = b""
        self.closed = asyncio.Event()
        asyncio.get_running_loop().add_reader(master, self._read)

    def _read(self) -> None:
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the child closed the terminal
            chunk = b""
        if chunk:
            self.raw += chunk
            return
        asyncio.get_running_loop().remove_reader(self.master)
        self.closed.set()

    @property
    def text(self) -> str:
        return self.raw.decode(errors="replace")

    @property
    def screen_text(self) -> str:
        """What was drawn, without the escape sequences."""
        return ANSI.sub("", self.text)

    async def finish(self) -> int:
        code = await asyncio.wait_for(self.proc.wait(), 15)
        await asyncio.wait_for(self.closed.wait(), 5)
        os.close(self.master)
        return code


async def open_terminal(*args: str) -> Terminal:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = clean_env(TERM="xterm-256color")
    for name in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(name, None)
    proc = await asyncio.create_subprocess_exec(
        str(RUNSERVICE), *args, stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE, env=env
    )
    os.close(slave)
    return Terminal(proc, master)


async def test_live_display_on_a_terminal_shows_steps_progressing(target: str) -> None:
    await suspended_run(target, "w4")
    term = await open_terminal("watch", "w4", "--target", target)

    # The table shows the steps so far, the suspended one and how to resume it.
    await until(lambda: "waiting to be resumed" in term.screen_text, "the suspended run drawn")
    before = term.screen_text
    assert re.search(r"STEP\s+STATUS\s+TIME\s+DETAIL", before)
    assert re.search(r"bump\s+success", before) and re.search(r"ask\s+suspended", before)
    assert "runservice resume w4 --data JSON" in before
    assert "report" not in before
    assert "\x1b[?25l" in term.text  # a live display: the cursor is hidden while it redraws
    assert "\x1b[32msuccess" in term.text  # in colour

    resumed = await runservice("resume", "w4", "-d", '{"approved": true}', "--target", target)
    assert resumed.code == 0, resumed.err
    assert await term.finish() == 0
    after = term.screen_text[len(before) :]
    # Redrawn in place (cursor up, erase line), now with the resumed step and the last one.
    assert "\x1b[1A" in term.text and "\x1b[2K" in term.text
    assert re.search(r"ask\s+success", after) and re.search(r"report\s+success", after)
    assert 'result: {"verdict": "approved"}' in after
    assert "\x1b[?25h" in term.text  # the cursor is back
    assert term.proc.stderr is not None
    assert await term.proc.stderr.read() == b""


async def test_live_display_shows_a_running_step_and_its_writer_output(target: str) -> None:
    started = await runservice(
        "start", "cancellable-report", "-i", '{"seconds": 20}', "--run-id", "w5", "--target", target
    )
    assert started.code == 0, started.err
    term = await open_terminal("watch", "w5", "--target", target)
    # The report's step writes a progress chunk every second: the table shows it while it runs.
    chunk = re.compile(r'generate\s+running\s+(\d+\.\d+s)\s+\{"chunk": \d+, "of": 30, "percent": \d+\}')
    await until(lambda: chunk.search(term.screen_text) is not None, "the running step with its last chunk")
    # Its time keeps counting between events.
    await until(lambda: len(set(chunk.findall(term.screen_text))) >= 3, "the running time ticking")
    canceled = await runservice("cancel", "w5", "--target", target)
    assert canceled.code == 0
    assert await term.finish() == 3  # the run ended canceled
    assert re.search(r"generate\s+canceled", term.screen_text)
    assert "canceled" in term.screen_text.splitlines()[-1]


async def test_ctrl_c_stops_a_watch_quietly(target: str) -> None:
    await suspended_run(target, "w6")
    proc = await asyncio.create_subprocess_exec(
        str(RUNSERVICE), "watch", "w6", "--target", target,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
    )  # fmt: skip
    assert proc.stdout is not None
    while b"finish" not in await asyncio.wait_for(proc.stdout.readline(), 15):
        pass
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 130
    assert err.decode().strip() == ""


async def test_a_watch_gives_up_on_a_server_that_stays_away(tmp_path: Path) -> None:
    """A watched server killed and never restarted: `runservice watch` says on stderr each time
    it reconnects, and after `--give-up-after` seconds with no answer exits 1 with one error
    line that names the last sequence (it reconnected forever, saying nothing)."""
    server = await start_server(
        serve_argv("--data-dir", str(tmp_path / "data"), "--workflows", "tests.workflows")
    )
    try:
        await suspended_run(server.address, "w-away")
        proc = await asyncio.create_subprocess_exec(
            str(RUNSERVICE), "watch", "w-away", "--target", server.address, "--give-up-after", "1.5",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
        )  # fmt: skip
        assert proc.stdout is not None
        while b"finish" not in await asyncio.wait_for(proc.stdout.readline(), 15):
            pass
    finally:
        await server.kill()
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 1, lines
    told = "runservice: watch: watch of run w-away ended with UNAVAILABLE"
    assert any(line.startswith(told) for line in lines), lines
    assert "WATCH_GAVE_UP" in lines[-1] and "resume after sequence 6" in lines[-1], lines[-1]
