#!/usr/bin/env python3
"""The developer commands. Needs only Python 3.11+; everything else is installed into .venv.

    python3 dev.py serve [ARGS...]   serve the bundled examples (runservice serve ARGS...)
    python3 dev.py test [PYTEST_ARGS...]
                                     every quality gate, then the test suite
    python3 dev.py gen               regenerate stubs/ and clients/node/generated/ from protos/
    python3 dev.py bench [ARGS...]   run the benchmark (python -m bench ARGS...)
    python3 dev.py fmt               format and auto-fix lint

Each command first makes sure .venv exists and holds the project with its dev extras;
it reinstalls only when pyproject.toml changed since the last install.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".runservice-install-stamp"
PYPROJECT = ROOT / "pyproject.toml"


def say(message: str) -> None:
    print(f"dev.py: {message}", flush=True)


def run(argv: Sequence[str | Path], *, cwd: Path = ROOT) -> int:
    return subprocess.call([str(a) for a in argv], cwd=cwd)


def tool(name: str) -> Path:
    return BIN / (f"{name}.exe" if os.name == "nt" else name)


# -- bootstrap ---------------------------------------------------------------------------------


def install_digest() -> str:
    """What an install depends on: pyproject.toml."""
    return hashlib.sha256(PYPROJECT.read_bytes()).hexdigest()


def needs_install(stamp: Path = STAMP) -> bool:
    if not stamp.is_file() or not tool("runservice").exists():
        return True
    return stamp.read_text().strip() != install_digest()


def bootstrap() -> None:
    """Create .venv and (re)install the project in it when needed."""
    if sys.version_info < (3, 11):  # noqa: UP036 (dev.py may be started by an older python3)
        sys.exit(f"dev.py: Python 3.11 or newer is needed, this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        say(f"creating {VENV.relative_to(ROOT)}")
        if run([sys.executable, "-m", "venv", VENV]) != 0:
            sys.exit("dev.py: could not create .venv (on Debian/Ubuntu: apt-get install python3-venv)")
    if not needs_install():
        return
    say("installing the project and its dev tools into .venv (new venv or pyproject.toml changed)")
    pip: list[str | Path] = [PYTHON, "-m", "pip", "--disable-pip-version-check"]
    if run([*pip, "install", "--quiet", "-e", ".[dev]"]) != 0:
        sys.exit("dev.py: pip install -e '.[dev]' failed (see above)")
    STAMP.write_text(install_digest() + "\n")


# -- commands ----------------------------------------------------------------------------------


def gates() -> list[tuple[str, list[str | Path], Path]]:
    """The quality gates of `dev.py test`, in order: (name, argv, working directory)."""
    protos = ROOT / "protos"
    return [
        ("ruff check", [tool("ruff"), "check", "."], ROOT),
        ("ruff format", [tool("ruff"), "format", "--check", "."], ROOT),
        ("mypy", [tool("mypy")], ROOT),
        ("buf lint", [tool("buf"), "lint"], protos),
        ("buf format", [tool("buf"), "format", "-d", "--exit-code"], protos),
        ("stub freshness", [PYTHON, "scripts/check_stubs.py"], ROOT),
        ("node types freshness", [PYTHON, "scripts/node_client.py"], ROOT),
        ("hadolint", [tool("hadolint"), "Dockerfile"], ROOT),
        ("import layers", [PYTHON, "scripts/check_layers.py"], ROOT),
    ]


TEST_WORKERS = ["-n", "2", "--dist", "loadfile"]
"""pytest's workers in `dev.py test` (pytest-xdist): most tests wait on the servers, databases
and proxies they start, so two workers halve the suite's time on a 2-core machine. Two, not
`auto`: the tests' waits are set for servers that share the machine with one other test at
most. Whole files go to one worker, so a module's fixtures start once. `-n 0` among the
arguments runs everything in one process."""


def cmd_test(args: list[str]) -> int:
    for name, argv, cwd in gates():
        say(f"--- {name}")
        code = run(argv, cwd=cwd)
        if code != 0:
            say(f"FAILED: {name} (exit {code}); fix it and run `python3 dev.py test` again")
            return code
    say("--- pytest")
    code = run([PYTHON, "-m", "pytest", *TEST_WORKERS, *args])
    if code == 5:
        say("FAILED: pytest collected no tests")
    elif code != 0:
        say(f"FAILED: pytest (exit {code})")
    else:
        say("all gates and tests passed")
    return code


def cmd_serve(args: list[str]) -> int:
    argv = [str(tool("runservice")), "serve", *args]
    if os.name == "nt":  # from the caller's directory: it is the app directory of --workflows
        return run(argv, cwd=Path.cwd())
    os.execv(argv[0], argv)


def cmd_gen(args: list[str]) -> int:
    """The Python stubs and descriptor set, then the Node.js types (skipped without Node)."""
    return run([PYTHON, "scripts/gen_stubs.py", *args]) or run([PYTHON, "scripts/node_client.py", "gen"])


def cmd_bench(args: list[str]) -> int:
    return run([PYTHON, "-m", "bench", *args])


def cmd_fmt(args: list[str]) -> int:
    return run([tool("ruff"), "format", "."]) or run([tool("ruff"), "check", "--fix", "."])


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "serve": cmd_serve,
    "test": cmd_test,
    "gen": cmd_gen,
    "bench": cmd_bench,
    "fmt": cmd_fmt,
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__)
        return 0 if argv[:1] in (["-h"], ["--help"], ["help"]) else 2
    bootstrap()
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
