"""What the image runs, without a container engine: the wheel the Dockerfile builds, installed into a
fresh virtual environment, started with the Dockerfile's ENTRYPOINT + CMD and ENV, checked with its
HEALTHCHECK command, used for one run, then stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import venv
import zipfile
from pathlib import Path
from socket import gethostname

import pytest
from dockerfile import final_stage, image_env, instruction
from process import ROOT, start_server

from runservice.client import Client
from runservice.model import RunStatus

pytestmark = pytest.mark.timeout(180)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


INIT = ["/usr/bin/tini", "--"]
"""The image's PID 1, before the command (Debian's tini: not on this machine)."""


def test_dockerfile_shape() -> None:
    stage = final_stage(ROOT / "Dockerfile")
    assert instruction(stage, "USER").split(":")[0] not in ("0", "root")
    assert json.loads(instruction(stage, "VOLUME")) == ["/data"]
    # Exec form, under tini: SIGTERM reaches the server, and orphans of steps' processes are reaped.
    assert json.loads(instruction(stage, "ENTRYPOINT")) == [*INIT, "runservice"]
    made = " ".join(line for line in stage if line.upper().startswith("RUN "))
    assert "apt-get install -y --no-install-recommends tini" in made, made
    healthcheck = instruction(stage, "HEALTHCHECK")
    assert json.loads(healthcheck.split(" CMD ", 1)[1]) == ["runservice", "health"]
    assert image_env(stage)["RUNSERVICE_DATA_DIR"] == "/data"
    # The volume's directory is the image user's alone, as the server makes a data directory.
    assert "chown runservice:runservice /data" in made and "chmod 0700 /data" in made, made


async def test_the_image_command_line_from_a_fresh_venv(tmp_path: Path) -> None:
    # The build stage: COPY pyproject.toml README.md stubs service, then `pip wheel` the project.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("stubs", "service"):
        shutil.copytree(
            ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    await asyncio.to_thread(
        subprocess.run,
        [*pip, "wheel", "--no-deps", "--wheel-dir", str(wheels), str(source)],
        check=True,
        timeout=120,
    )
    (wheel,) = wheels.glob("runservice-*.whl")
    # PEP 561 markers: without the package's, a caller's `mypy --strict` skipped every
    # `from runservice.client import ...` as untyped.
    assert {"runservice/py.typed", "runservice/v1/py.typed"} <= set(zipfile.ZipFile(wheel).namelist())
    # A fresh venv holding the wheel and its dependencies (from the package index, or pip's cache).
    env_dir = tmp_path / "venv"
    await asyncio.to_thread(venv.create, env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    await asyncio.to_thread(
        subprocess.run,
        [
            str(bin_dir / "python"),
            "-m",
            "pip",
            "--disable-pip-version-check",
            "--quiet",
            "install",
            f"{wheel}[otlp]",  # as the image installs it
        ],
        check=True,
        timeout=150,
    )
    exporter = await asyncio.to_thread(
        subprocess.run,
        [str(bin_dir / "python"), "-c", "import opentelemetry.exporter.otlp.proto.grpc.trace_exporter"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert exporter.returncode == 0, exporter.stderr  # the image exports spans when asked to

    stage = final_stage(ROOT / "Dockerfile")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNSERVICE_", "PYTHON"))}
    env.update(image_env(stage))
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH'].replace('/opt/venv/bin:', '')}"
    data = tmp_path / "data"
    env["RUNSERVICE_DATA_DIR"] = str(data)  # the image's /data volume
    entrypoint = json.loads(instruction(stage, "ENTRYPOINT"))[len(INIT) :]  # what tini starts
    cmd = json.loads(instruction(stage, "CMD"))
    healthcheck = json.loads(instruction(stage, "HEALTHCHECK").split(" CMD ", 1)[1])
    # The command line adds its own --address: the health check must follow it, not RUNSERVICE_ADDRESS.
    port = free_port()
    argv = [str(bin_dir / entrypoint[0]), *entrypoint[1:], *cmd, "--address", f"0.0.0.0:{port}"]
    workdir = tmp_path / "app"
    workdir.mkdir()
    server = await start_server(argv, env=env, cwd=workdir)
    try:
        assert server.address == f"127.0.0.1:{port}"
        check = await asyncio.to_thread(
            subprocess.run,
            [str(bin_dir / healthcheck[0]), *healthcheck[1:]],
            env=env, cwd=workdir, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert check.returncode == 0, check.stderr
        # On the data directory's health socket (what works unchanged with TLS on).
        socket = data / f"runservice.{gethostname()}.sock"
        assert check.stdout.strip() == f"unix:{socket.resolve()} SERVING"
        async with Client(server.address, timeout=10) as client:
            run = await client.get_workflow("city-weather").create_run()
            done = await run.start_async(input_data={"city": "Lisbon"})
            assert done.status is RunStatus.SUCCESS
        assert await server.stop() == 0
    finally:
        await server.kill()
    assert (data / "runservice.db").exists()
    assert "Traceback" not in server.text
    # Stopped: the health check now fails.
    check = await asyncio.to_thread(
        subprocess.run,
        [str(bin_dir / healthcheck[0]), *healthcheck[1:]],
        env=env, cwd=workdir, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert check.returncode == 1
