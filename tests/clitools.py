"""Running the installed `runservice` console script as a real subprocess, asynchronously
(so a server running in the test's own event loop keeps serving while the command runs)."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

RUNSERVICE = Path(sys.executable).parent / "runservice"
"""The console script pip installed next to this interpreter (.venv/bin/runservice)."""

COMMAND_TIMEOUT = 30.0


def _this_checkout() -> list[str]:
    """What the console script needs on PYTHONPATH to run this checkout's code: nothing when
    the package is installed from it (`pip install -e .`, as dev.py and CI do), this
    checkout's service/ and stubs/ when it is an editable install of another one (a git
    worktree sharing its venv: the commands would run the other tree's code)."""
    try:
        text = importlib.metadata.distribution("runservice").read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return []
    installed = json.loads(text or "{}")
    if not installed.get("dir_info", {}).get("editable"):
        return []
    source = Path(urllib.request.url2pathname(urllib.parse.urlparse(installed.get("url", "")).path))
    if source.resolve() == ROOT:
        return []
    return [str(ROOT / "service"), str(ROOT / "stubs")]


_CHECKOUT = _this_checkout()


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without RUNSERVICE_* settings or PYTHONPATH (the script must not need
    it), but for `extra`'s and `_this_checkout`'s."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNSERVICE_") and k != "PYTHONPATH"}
    paths = [*extra.pop("PYTHONPATH", "").split(os.pathsep), *_CHECKOUT]
    env.update(extra)
    if any(paths):
        env["PYTHONPATH"] = os.pathsep.join(path for path in paths if path)
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
