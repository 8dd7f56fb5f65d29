"""Fail when the committed stubs differ from freshly generated ones."""

from __future__ import annotations

import filecmp
import sys
import tempfile
from pathlib import Path

from gen_stubs import ROOT, generate


def main() -> int:
    committed = ROOT / "stubs" / "runservice"
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = Path(tmp) / "runservice"
        stale = _differences(filecmp.dircmp(committed, fresh))
    if stale:
        print("stubs/ is stale; run `python3 dev.py gen` and commit:", *stale, sep="\n  ")
        return 1
    print("stubs/ is up to date")
    return 0


def _differences(cmp: filecmp.dircmp[str]) -> list[str]:
    found = [*cmp.left_only, *cmp.right_only, *cmp.diff_files, *cmp.funny_files]
    for sub in cmp.subdirs.values():
        found += [f"{Path(sub.left).name}/{name}" for name in _differences(sub)]
    return [name for name in found if name != "__pycache__"]


if __name__ == "__main__":
    sys.exit(main())
