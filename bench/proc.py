"""Server processes for the benchmark: start, find the port in the log, drain output, stop, RSS."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import re
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

LISTENING = re.compile(r"listening on (?P<host>[0-9.]+|\[[0-9a-fA-F:]+\]|localhost):(?P<port>\d+)")


class ServerFailed(RuntimeError):
    """The server process died or never said where it listens."""


class ServerProcess:
    """A child process that logs `listening on HOST:PORT` once it serves.

    Its stdout and stderr are read continuously (so it never blocks on a full pipe) and
    the last lines are kept for error messages.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        listening: re.Pattern[str] = LISTENING,
    ):
        self.argv = list(argv)
        self.listening = listening
        """The line that says it serves: groups `host` and `port`, or one group `address`."""
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.address = ""
        self.tail: collections.deque[str] = collections.deque(maxlen=40)
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[str] | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None, "not started"
        return self._proc.pid

    async def start(self, startup_seconds: float = 60.0) -> str:
        """Start the process and return its address (`host:port`) once it logs that it listens."""
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
        )
        self._ready = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read())
        try:
            self.address = await asyncio.wait_for(asyncio.shield(self._ready), startup_seconds)
        except (TimeoutError, ServerFailed) as exc:
            await self.stop()
            raise ServerFailed(f"{self.argv[0]} did not start: {exc}\n{self.last_lines()}") from None
        return self.address

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None and self._ready is not None
        async for raw in self._proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.tail.append(line)
            match = self.listening.search(line)
            if match and not self._ready.done():
                found = match.groupdict()
                self._ready.set_result(found.get("address") or f"{found['host']}:{found['port']}")
        if not self._ready.done():
            code = await self._proc.wait()
            self._ready.set_exception(ServerFailed(f"exited with code {code}"))

    def last_lines(self) -> str:
        return "\n".join(f"    | {line}" for line in self.tail)

    def rss_kb(self) -> int:
        """Resident set size of the process and its children (the engine process of
        `serve --engine-process`), from /proc, in KiB."""
        total = 0
        for pid in self._family():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
            else:
                raise ServerFailed(f"no VmRSS in /proc/{pid}/status")
        return total

    def cpu_seconds(self) -> tuple[float, float] | None:
        """CPU seconds (user + system) so far of the process and its children, every thread,
        and of the busiest main thread among them (an event loop); None where there is no /proc."""
        try:
            pids = self._family()
            return (
                sum(_stat_cpu(f"/proc/{pid}/stat") for pid in pids),
                max(_stat_cpu(f"/proc/{pid}/task/{pid}/stat") for pid in pids),
            )
        except OSError:
            return None

    def _family(self) -> list[int]:
        """This process and its live children."""
        return [self.pid, *child_pids(self.pid)]

    async def stop(self, grace: float = 15.0) -> int | None:
        """SIGTERM, wait up to `grace` seconds, then SIGKILL. Returns the exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reader, 5)
        return proc.returncode


def child_pids(pid: int) -> list[int]:
    """The live child processes of `pid` (Linux /proc; the children of each of its threads)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found.extend(int(child) for child in (task / "children").read_text().split())
    return found


def _stat_cpu(path: str) -> float:
    # Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a server child: ours without RUNSERVICE_* settings (except the log
    level, and the durability setting, so `RUNSERVICE_DURABILITY=normal python -m bench` measures it)."""
    kept = ("RUNSERVICE_LOG_LEVEL", "RUNSERVICE_DURABILITY")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNSERVICE_") or k in kept}
    env.update(extra or {})
    return env
