"""Debian packages the tests need, installed on demand when the tests run as root (as CI does)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def debian_install(package: str, *, provides: str) -> None:
    """`apt-get install package` when the command `provides` is missing and this process may
    install (root, apt-get here); the package lists are updated and the install tried again
    only if the first try did not bring it. Does nothing otherwise: the caller looks for the command again."""
    if shutil.which(provides) or not (
        hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get")
    ):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    subprocess.run(install, env=env, capture_output=True, timeout=300)
    if shutil.which(provides) is None:  # stale package lists
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=300)
        subprocess.run(install, env=env, capture_output=True, timeout=300)


def build_preload(source: Path, into: Path) -> Path:
    """The LD_PRELOAD library `into/<source's stem>.so` built from the C file `source` (in
    tests/) with the machine's C compiler (Debian's gcc, installed when missing and the tests
    run as root)."""
    if not (shutil.which("cc") or shutil.which("gcc")):
        debian_install("gcc", provides="gcc")
    compiler = shutil.which("cc") or shutil.which("gcc")
    assert compiler, f"a C compiler (cc) is needed to build {source.name}"
    library = into / f"{source.stem}.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"], check=True)
    return library
