"""Reading the Dockerfile's final stage (tests run what the image runs, without a container engine)."""

from __future__ import annotations

import re
from pathlib import Path


def final_stage(dockerfile: Path) -> list[str]:
    """Instructions of the last stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    last_from = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    return lines[last_from:]


def instruction(stage: list[str], name: str) -> str:
    found = [line[len(name) :].strip() for line in stage if line.upper().startswith(name + " ")]
    assert found, f"no {name} in the final stage"
    return found[-1]


def image_env(stage: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in stage:
        if line.upper().startswith("ENV "):
            for key, value in re.findall(r"(\w+)=(\S+)", line[4:]):
                env[key] = value
    return env
