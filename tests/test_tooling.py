"""The developer tooling: the import-layer check, dev.py's gates, the CI entry point, the benchmark."""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


layers = load(ROOT / "scripts" / "check_layers.py")
dev = load(ROOT / "dev.py")


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in {"service/__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def reasons(root: Path) -> list[tuple[str, str]]:
    return [(v.module, v.imported) for v in layers.check(root)]


def test_the_tree_respects_the_layers() -> None:
    violations = layers.check(ROOT)
    assert violations == [], "\n".join(map(str, violations))


def test_an_upward_import_is_a_violation(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "service/cli.py": "",
            "service/model.py": "",
            "service/engine/__init__.py": "",
            "service/engine/run.py": """
                from service.model import Json          # down: fine
                from service import cli                 # up: violation
                """,
            "service/workflow/__init__.py": "",
            "service/workflow/step.py": """
                def later():
                    from ..engine import run            # relative, inside a function: still counts
                """,
        },
    )
    assert reasons(root) == [
        ("service.engine.run", "service.cli"),
        ("service.workflow.step", "service.engine"),
        ("service.workflow.step", "service.engine.run"),
    ]
    assert layers.main([str(root)]) == 1


def test_the_special_rules(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "service/config.py": "",
            "service/client.py": "import grpc\nfrom service.server import app\n",
            "service/server/__init__.py": "from google.rpc import status_pb2\n",
            "service/server/app.py": "from service.config import Config\n",
            "service/engine/__init__.py": "import grpc_health.v1\nfrom runservice.v1 import run_pb2\n",
            "service/engine/store.py": "from service.storage.sqlite import SqliteStore\n",
            "service/storage/__init__.py": "",
            "service/storage/sqlite.py": "from google.protobuf import struct_pb2\n",
            "service/examples.py": "from service.storage import Store\nfrom service.workflow import Step\n",
            "service/workflow/__init__.py": "",
            "service/metrics.py": "",
        },
    )
    assert sorted(reasons(root)) == [
        ("service.client", "service.server"),
        ("service.client", "service.server.app"),
        ("service.engine", "grpc_health.v1"),
        ("service.engine", "runservice.v1"),
        ("service.engine.store", "service.storage.sqlite"),
        ("service.examples", "service.storage"),
        ("service.server.app", "service.config"),
        ("service.storage.sqlite", "google.protobuf"),
    ]


def test_an_unassigned_module_must_be_placed(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path, {"service/metrics.py": "from service.model import Json\n", "service/model.py": ""}
    )
    [violation] = layers.check(root)
    assert "not assigned to a layer" in violation.why


def test_dev_test_runs_every_gate_in_order() -> None:
    names = [name for name, _, _ in dev.gates()]
    assert names == [
        "ruff check",
        "ruff format",
        "mypy",
        "buf lint",
        "buf format",
        "stub freshness",
        "hadolint",
        "import layers",
    ]


def test_dev_reinstalls_only_when_pyproject_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stamp = tmp_path / "stamp"
    monkeypatch.setattr(dev, "tool", lambda name: tmp_path / name)
    (tmp_path / "runservice").write_text("")
    assert dev.needs_install(stamp)
    stamp.write_text(dev.install_digest() + "\n")
    assert not dev.needs_install(stamp)
    stamp.write_text("an older pyproject.toml\n")
    assert dev.needs_install(stamp)


def test_ci_and_make_go_through_dev_py() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in ci
    assert ci.rstrip().endswith("python3 dev.py test")
    makefile = (ROOT / "Makefile").read_text()
    for target in ("serve", "test", "gen", "bench", "fmt"):
        assert f"\n{target}:\n\t$(PYTHON) dev.py {target}" in makefile


@pytest.mark.timeout(60)
def test_bench_references_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bench.run import main

    out = tmp_path / "bench.json"
    assert main(["--quick", "--only", "echo,sqlite", "--concurrency", "8", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())["figures"]
    assert set(figures) == {"echo_sequential", "echo_concurrent", "sqlite_single", "sqlite_batched_rows"}
    assert all(value > 0 for value in figures.values())
    assert "echo, 8 in flight" in capsys.readouterr().out


@pytest.mark.timeout(60)
async def test_bench_runservice_smoke() -> None:
    from bench import service_runs

    counts = service_runs.Counts(
        sequential=20, concurrent=40, suspend_resume=20, suspended=20, concurrency=8, max_seconds=10
    )
    results = await service_runs.measure(counts)
    for result in (results.sequential, results.concurrent, results.suspend_resume, results.suspended_runs):
        assert result.errors == 0, result.first_error
    assert results.sequential.done == 20
    assert results.suspended_runs.done == 20
    assert results.rss_before_kb > 0
