"""Fail when a module of `runservice` imports a layer above its own (`python scripts/check_layers.py [ROOT]`).

Layers, top to bottom (a module may import its own layer and the ones below):

    runservice.__main__
    runservice.cli, runservice.config          (runservice.config: imported by runservice.cli only)
    runservice.server | runservice.client      (these two never import each other)
    runservice.wire                         (JSON and times in protobuf types, shared by both edges)
    runservice.engine                       (never runservice.storage.sqlite/.postgres: it gets a Store)
    runservice.storage
    runservice.workflow, runservice.examples   (examples are user code: workflow, model, errors only)
    runservice.model, runservice.errors, runservice.limits, runservice.logs   (logs: stdlib only)

Only runservice.server*, runservice.client and runservice.wire may import grpc, grpc_*, google.rpc,
google.protobuf or the generated stubs (runservice.*). Every import counts, including
imports inside functions and under `if TYPE_CHECKING:`. Stdlib only.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LAYERS: dict[str, int] = {
    "runservice.__main__": 6,
    "runservice.cli": 5,
    "runservice.config": 5,
    "runservice.server": 4,
    "runservice.client": 4,
    "runservice.wire": 4,
    "runservice.engine": 3,
    "runservice.storage": 2,
    "runservice.workflow": 1,
    "runservice.examples": 1,
    "runservice.model": 0,
    "runservice.limits": 0,
    "runservice.errors": 0,
    "runservice.logs": 0,
}
"""Top-level parts of the package and their layer (higher imports lower)."""

PACKAGE_INIT_LAYER = 1
"""`runservice/__init__.py` itself: it re-exports the authoring API and nothing above it."""

TRANSPORT_OWNERS = ("runservice.server", "runservice.client", "runservice.wire")
EXAMPLES_MAY_IMPORT = ("runservice.workflow", "runservice.model", "runservice.errors")


@dataclass(frozen=True, slots=True)
class Violation:
    path: Path
    line: int
    module: str
    imported: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.module} imports {self.imported}: {self.why}"


SOURCE_ROOT = "service"
"""The folder that holds the `runservice` package (the design card's `service/`)."""

STUBS = "runservice.v1"
"""The generated stubs: part of the package on disk, but transport to the layer rules."""


def check(root: Path = ROOT) -> list[Violation]:
    """Every violation in `root/service/runservice/**/*.py`."""
    package = root / SOURCE_ROOT / "runservice"
    found: list[Violation] = []
    for path in sorted(package.rglob("*.py")):
        module = module_name(path, root)
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except SyntaxError as exc:
            found.append(
                Violation(_rel(path, root), exc.lineno or 0, module, "-", f"syntax error: {exc.msg}")
            )
            continue
        for line, imported in imports_of(tree, module, path.name == "__init__.py", root):
            why = judge(module, imported)
            if why:
                found.append(Violation(_rel(path, root), line, module, imported, why))
    return found


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root / SOURCE_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(tree: ast.AST, module: str, is_package: bool, root: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute name) of every import; `from a import b` also gives `a.b` when b is a module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            yield node.lineno, base
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                if _is_module(candidate, root) or base == "google":
                    yield node.lineno, candidate


def layer_of(module: str) -> int | None:
    if module == "runservice":
        return PACKAGE_INIT_LAYER
    for prefix, layer in LAYERS.items():
        if _within(module, prefix):
            return layer
    return None


def judge(module: str, imported: str) -> str | None:
    """Why `module` may not import `imported`, or None when it may."""
    if is_transport(imported):
        if not any(_within(module, owner) for owner in TRANSPORT_OWNERS):
            return "only runservice.server and runservice.client may use gRPC, protobuf or the stubs"
        return None
    if not _within(imported, "runservice"):
        return None
    own, other = layer_of(module), layer_of(imported)
    if own is None:
        return f"{module} is not assigned to a layer (add it to LAYERS in scripts/check_layers.py)"
    if other is None:
        return f"{imported} is not assigned to a layer (add it to LAYERS in scripts/check_layers.py)"
    if _within(module, "runservice.examples") and not any(
        _within(imported, ok) for ok in EXAMPLES_MAY_IMPORT
    ):
        return "examples are user code: they may import only the workflow, model and errors modules"
    if _within(imported, "runservice.config") and not (
        _within(module, "runservice.cli")
        or _within(module, "runservice.config")
        or module == "runservice.__main__"
    ):
        return "runservice.config may be imported only by runservice.cli"
    if _within(module, "runservice.engine") and any(
        _within(imported, f"runservice.storage.{store}") for store in ("sqlite", "postgres")
    ):
        return "the engine depends on the Store protocol (runservice.storage), never on a store itself"
    for a, b in (("runservice.server", "runservice.client"), ("runservice.client", "runservice.server")):
        if _within(module, a) and _within(imported, b):
            return "runservice.server and runservice.client must not import each other"
    if other > own:
        return (
            f"{_part(module)} (layer {own}) may not import {_part(imported)} (layer {other}): imports go down"
        )
    return None


def is_transport(module: str) -> bool:
    """gRPC, its plugins (grpc_health...), protobuf and google.rpc types, or the generated stubs."""
    top = _top(module)
    return (
        top == "grpc"
        or _within(module, STUBS)
        or top.startswith("grpc_")
        or _within(module, "google.rpc")
        or _within(module, "google.protobuf")
    )


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    if not is_package:
        parts.pop()
    parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
    return ".".join([*parts, node.module] if node.module else parts)


def _is_module(name: str, root: Path) -> bool:
    base = root.joinpath(SOURCE_ROOT, *name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _top(module: str) -> str:
    return module.split(".", 1)[0]


def _part(module: str) -> str:
    return next((p for p in LAYERS if _within(module, p)), module)


def _rel(path: Path, root: Path) -> Path:
    return path.relative_to(root)


def main(argv: list[str]) -> int:
    root = Path(argv[0]).resolve() if argv else ROOT
    violations = check(root)
    for violation in violations:
        print(violation)
    if violations:
        print(f"{len(violations)} import-layer violation(s); see the layer list in scripts/check_layers.py")
        return 1
    print("import layers: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
