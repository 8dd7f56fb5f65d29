"""The Node.js client package (clients/node): install it from its lock file, check its generated types.

    python scripts/node_client.py           fail when clients/node/generated differs from fresh types
    python scripts/node_client.py install   `npm ci` in clients/node when the lock file changed
    python scripts/node_client.py gen       regenerate clients/node/generated (part of `dev.py gen`)

The types come from the same contract as the Python stubs (proto-loader-gen-types, run by
clients/node/scripts/gen-types.mjs). Node is needed: on CI (CI=true) a missing node or npm is
an error; on a developer machine without Node the check says so and passes.
"""

from __future__ import annotations

import filecmp
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "clients" / "node"
GENERATED = PACKAGE / "generated"
STAMP = PACKAGE / "node_modules" / ".runservice-lock-stamp"


class NodeMissing(RuntimeError):
    """node or npm is not on PATH."""


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def executables() -> tuple[str, str]:
    """Paths of node and npm, or NodeMissing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise NodeMissing("node and npm are needed for the Node.js client (apt-get install nodejs npm)")
    return node, npm


def install() -> None:
    """`npm ci` from package-lock.json, unless node_modules already matches it."""
    _, npm = executables()
    digest = hashlib.sha256((PACKAGE / "package-lock.json").read_bytes()).hexdigest()
    if STAMP.is_file() and STAMP.read_text().strip() == digest:
        return
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=PACKAGE, check=True, timeout=600)
    STAMP.write_text(digest + "\n")


def generate(out: Path) -> None:
    node, _ = executables()
    subprocess.run([node, "scripts/gen-types.mjs", str(out)], cwd=PACKAGE, check=True, timeout=120)


def stale() -> list[str]:
    """Files of generated/ that differ from freshly generated ones."""
    install()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "generated"
        generate(fresh)
        return _differences(filecmp.dircmp(GENERATED, fresh))


def _differences(cmp: filecmp.dircmp[str]) -> list[str]:
    found = [*cmp.left_only, *cmp.right_only, *cmp.diff_files, *cmp.funny_files]
    for sub in cmp.subdirs.values():
        found += [f"{Path(sub.left).name}/{name}" for name in _differences(sub)]
    return found


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["install"]:
            install()
            return 0
        if argv[:1] == ["gen"]:
            install()
            generate(GENERATED)
            return 0
        differences = stale()
    except NodeMissing as exc:
        if on_ci():
            print(f"FAILED: {exc}")
            return 1
        print(f"skipped: {exc}")
        return 0
    if differences:
        print(
            "clients/node/generated is stale; run `npm run gen` in clients/node and commit:",
            *differences,
            sep="\n  ",
        )
        return 1
    print("clients/node/generated is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
