"""Regenerate the Python stubs from protos/ (`python scripts/gen_stubs.py [OUT_DIR]`).

With no argument the stubs are written to stubs/; CI writes them to a temporary
folder and compares (see scripts/check_stubs.py).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"


def generate(out: Path) -> None:
    """Write *_pb2.py, *_pb2.pyi, *_pb2_grpc.py and the typed *_pb2_grpc.pyi into `out`."""
    package_dir = out / "runservice" / "v1"
    if package_dir.exists():
        shutil.rmtree(package_dir)
    package_dir.mkdir(parents=True)
    bin_dir = Path(sys.executable).parent
    sources = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / "runservice" / "v1").glob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--mypy_grpc_out=async_only:{out}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    # No runservice/__init__.py here: that file is the package's own (service/runservice/),
    # which extends its __path__ to this folder; the wheel merges the two.
    (package_dir / "__init__.py").write_text("")
    (package_dir / "py.typed").write_text("")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "stubs")
