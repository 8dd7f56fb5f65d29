"""Running the installed `runservice` console script as a real subprocess, asynchronously
(so a server running in the test's own event loop keeps serving while the command runs)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNSERVICE = Path(sys.executable).parent / "runservice"
"""The console script pip installed next to this interpreter (.venv/bin/runservice)."""

COMMAND_TIMEOUT = 30.0


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without RUNSERVICE_* settings or PYTHONPATH (the script must not need it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNSERVICE_") and k != "PYTHONPATH"}
    env.update(extra)
    return env


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def error_lines(self) -> list[str]:
        return self.err.strip().splitlines()


async def runservice(
    *args: str,
    stdin: str | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Result:
    """Run `runservice ARGS...` to the end; its exit code, stdout and stderr."""
    assert RUNSERVICE.exists(), f"the console script is not installed at {RUNSERVICE}"
    proc = await asyncio.create_subprocess_exec(
        str(RUNSERVICE), *args,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=cwd, env=env or clean_env(),
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(stdin.encode() if stdin is not None else None), COMMAND_TIMEOUT
        )
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def cli_workflows() -> list[Any]:
    """What the CLI tests serve: tests.workflows, the bundled examples and a few flows."""
    import flows
    import workflows

    from runservice import examples

    extra = [flows.each, flows.outer, flows.two_questions, flows.failing, flows.stateful, flows.sluggish]
    return [*workflows.WORKFLOWS, *examples.WORKFLOWS, *extra]
