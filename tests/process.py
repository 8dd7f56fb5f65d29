"""A real `runservice serve` process for tests: start it, wait until it listens, stop it with SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 20.0


def server_env(**extra: str) -> dict[str, str]:
    """This environment without RUNSERVICE_* variables, with the checkout on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNSERVICE_")}
    paths = [
        str(ROOT),
        str(ROOT / "service"),
        str(ROOT / "stubs"),
        *extra.pop("PYTHONPATH", "").split(os.pathsep),
    ]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.update(extra)
    return env


@dataclass
class ServerProcess:
    proc: asyncio.subprocess.Process
    address: str = ""
    log: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    @property
    def text(self) -> str:
        return "".join(self.log)

    async def stop(self, limit: float = 15.0, *, signalled: bool = False) -> int:
        """SIGTERM (unless `signalled` already), then the exit code (within `limit` seconds)."""
        if not signalled:
            self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), limit)
        if self.reader is not None:
            await self.reader
        return code

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self.reader is not None:
            self.reader.cancel()


async def start_server(
    argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> ServerProcess:
    """Run `argv` (a command that serves), wait for its `listening on ADDRESS` log line."""
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=env or server_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    server = ServerProcess(proc)
    assert proc.stderr is not None
    stderr = proc.stderr

    async def until_listening() -> None:
        while line := (await stderr.readline()).decode():
            server.log.append(line)
            found = re.search(r"listening on (\S+)", line)
            if found:
                server.address = found.group(1).replace("0.0.0.0", "127.0.0.1")
                return
        raise RuntimeError("the server exited before listening:\n" + server.text)

    try:
        await asyncio.wait_for(until_listening(), STARTUP_TIMEOUT)
    except BaseException:
        await server.kill()
        raise

    async def keep_reading() -> None:  # a full pipe would block the server's logging
        while line := (await stderr.readline()).decode():
            server.log.append(line)

    server.reader = asyncio.create_task(keep_reading())
    return server


def serve_argv(*args: str) -> list[str]:
    """`python -m runservice serve --address 127.0.0.1:0 ARGS`."""
    return [sys.executable, "-m", "runservice", "serve", "--address", "127.0.0.1:0", *args]
