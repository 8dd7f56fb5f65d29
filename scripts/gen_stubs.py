"""Regenerate the Python stubs from protos/ (`python scripts/gen_stubs.py [OUT_DIR]`).

With no argument the stubs are written to stubs/; CI writes them to a temporary
folder and compares (see scripts/check_stubs.py). Besides the Python code, the package
gets the contract's descriptor set with its comments (`descriptor_set.binpb`, served by
server reflection) and the published gRPC service config (`service_config.json`, loaded by
the Python clients). protos/google/rpc is vendored for other languages only: Python gets
those types from googleapis-common-protos.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
DESCRIPTOR_SET = "descriptor_set.binpb"
SERVICE_CONFIG = "service_config.json"


def generate(out: Path) -> None:
    """Write the Python code (*_pb2.py, .pyi, *_pb2_grpc.py, typed .pyi), descriptor set, service config."""
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
        f"--descriptor_set_out={package_dir / DESCRIPTOR_SET}",
        "--include_source_info",
        "--include_imports",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    # No runservice/__init__.py here: that file is the package's own (service/runservice/),
    # which extends its __path__ to this folder; the wheel merges the two.
    (package_dir / "__init__.py").write_text("")
    (package_dir / "py.typed").write_text("")
    shutil.copyfile(PROTOS / "runservice" / "v1" / SERVICE_CONFIG, package_dir / SERVICE_CONFIG)


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "stubs")
