"""The developer tooling: the import-layer check, dev.py's gates, the CI entry point, the benchmark."""

from __future__ import annotations

import importlib.util
import json
import statistics
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest
from postgres import PostgresServer

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
    for name, text in {"service/runservice/__init__.py": "", **files}.items():
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
            "service/runservice/cli.py": "",
            "service/runservice/model.py": "",
            "service/runservice/engine/__init__.py": "",
            "service/runservice/engine/run.py": """
                from runservice.model import Json          # down: fine
                from runservice import cli                 # up: violation
                """,
            "service/runservice/workflow/__init__.py": "",
            "service/runservice/workflow/step.py": """
                def later():
                    from ..engine import run            # relative, inside a function: still counts
                """,
        },
    )
    assert reasons(root) == [
        ("runservice.engine.run", "runservice.cli"),
        ("runservice.workflow.step", "runservice.engine"),
        ("runservice.workflow.step", "runservice.engine.run"),
    ]
    assert layers.main([str(root)]) == 1


def test_the_special_rules(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "service/runservice/config.py": "",
            "service/runservice/client.py": "import grpc\nfrom runservice.server import app\n",
            "service/runservice/server/__init__.py": "from google.rpc import status_pb2\n",
            "service/runservice/server/app.py": "from runservice.config import Config\n",
            "service/runservice/engine/__init__.py": (
                "import grpc_health.v1\nfrom runservice.v1 import run_pb2\n"
            ),
            "service/runservice/engine/store.py": "from runservice.storage.sqlite import SqliteStore\n",
            "service/runservice/storage/__init__.py": "",
            "service/runservice/storage/sqlite.py": "from google.protobuf import struct_pb2\n",
            "service/runservice/examples.py": (
                "from runservice.storage import Store\nfrom runservice.workflow import Step\n"
            ),
            "service/runservice/workflow/__init__.py": "",
            "service/runservice/metrics.py": "",
        },
    )
    assert sorted(reasons(root)) == [
        ("runservice.client", "runservice.server"),
        ("runservice.client", "runservice.server.app"),
        ("runservice.engine", "grpc_health.v1"),
        ("runservice.engine", "runservice.v1"),
        ("runservice.engine.store", "runservice.storage.sqlite"),
        ("runservice.examples", "runservice.storage"),
        ("runservice.server.app", "runservice.config"),
        ("runservice.storage.sqlite", "google.protobuf"),
    ]


def test_an_unassigned_module_must_be_placed(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "service/runservice/metrics.py": "from runservice.model import Json\n",
            "service/runservice/model.py": "",
        },
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
        "node types freshness",
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
def test_bench_rounds_report_medians_and_ranges(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bench.report import Row, medians, render
    from bench.run import main

    out = tmp_path / "bench.json"
    assert main(["--quick", "--only", "echo", "--rounds", "3", "--concurrency", "8", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    rounds = report["details"]["rounds"]
    assert len(rounds) == 3
    for key in ("echo_sequential", "echo_concurrent"):
        assert report["figures"][key] == pytest.approx(statistics.median(r[key] for r in rounds), abs=1e-3)
    (row,) = [row for row in report["rows"] if row["label"] == "echo, 8 in flight"]
    assert row["range"][0] <= row["value"] <= row["range"][1]
    assert "medians of 3 rounds" in capsys.readouterr().out

    # A ratio is the median of the rounds' same-run ratios, not a ratio of two medians.
    runs = [Row("runs", v, "runs/s", [("echo", e, v / e)]) for v, e in ((10, 100), (30, 100), (20, 40))]
    (combined,) = medians([[row] for row in runs])
    assert combined.value == 20 and combined.spread == (10, 30)
    assert combined.references == [("echo", 100, 0.3)] and combined.ratio_spreads == [(0.1, 0.5)]
    assert "0.100-0.500" in render([combined]) and "10.00-30.00" in render([combined])
    # An indented row belongs to the figure above it: two figures' "  p50" rows stay apart.
    one = [Row("a", 1, "x"), Row("  p50", 1, "ms"), Row("b", 5, "x"), Row("  p50", 5, "ms")]
    two = [Row("a", 3, "x"), Row("  p50", 3, "ms"), Row("b", 7, "x"), Row("  p50", 7, "ms")]
    assert [(row.label, row.value) for row in medians([one, two])] == [
        ("a", 2),
        ("  p50", 2),
        ("b", 6),
        ("  p50", 6),
    ]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("caller_run_ids", [False, True], ids=["server-ids", "caller-ids"])
async def test_bench_runservice_smoke(caller_run_ids: bool) -> None:
    from bench import service_runs

    counts = service_runs.Counts(
        sequential=20,
        concurrent=40,
        suspend_resume=20,
        suspended=20,
        concurrency=8,
        max_seconds=10,
        stored=16,
    )
    results = await service_runs.measure(counts, caller_run_ids=caller_run_ids)
    for result in (results.sequential, results.concurrent, results.suspend_resume, results.suspended_runs):
        assert result.errors == 0, result.first_error
    assert results.sequential.done == 20
    assert results.suspended_runs.done == 20
    assert results.rss_before_kb > 0
    if sys.platform == "linux":  # the server's CPU is read from /proc
        assert set(results.cpu) == {"sequential", "concurrent", "suspend_resume"}
        for cpu in results.cpu.values():  # clock ticks of 10 ms: a short measurement may read 0
            assert cpu.per_op_us >= 0 and 0 <= cpu.loop_busy <= 1


@pytest.mark.timeout(90)
async def test_bench_split_smoke() -> None:
    """`python -m bench.split`: `serve` and `serve --engine-process` both run 3-step runs to
    success, and the CPU read covers the engine process too."""
    from bench import split

    figures = await split.compare(seconds=0.5, rounds=1, concurrencies=(4,))
    assert [(figure.layout, figure.concurrency) for figure in figures] == [
        ("one process", 4),
        ("engine process", 4),
    ]
    for figure in figures:
        assert figure.result.done > 0 and figure.result.errors == 0, figure.result.first_error
    if sys.platform == "linux":  # from /proc; the engine process does the steps, so it has CPU
        assert all(figure.cpu_us > 0 for figure in figures)


async def _scratch_schemas(url: str) -> int:
    """How many schemas the benches made (`runservice...`) are left in the database of `url`."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        left: int = await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'runservice%'")
    finally:
        await conn.close()
    return left


@pytest.mark.timeout(90)
async def test_bench_on_postgresql_smoke(postgres_server: PostgresServer) -> None:
    """`bench --database-url`: the asyncpg reference and runservice on that database, in scratch
    schemas that are dropped afterwards."""
    from bench import asyncpg_ref, service_runs

    url = await postgres_server.create_database(migrated=False)
    try:
        reference = await asyncpg_ref.measure(
            url,
            commits=30,
            batched_commits=5,
            rows_per_commit=10,
            concurrent_commits=40,
            concurrency=4,
            max_seconds=5,
        )
        assert (reference.single.done, reference.batched.done, reference.concurrent.done) == (30, 5, 40)
        counts = service_runs.Counts(
            sequential=10, concurrent=20, suspend_resume=10, suspended=10, concurrency=4, max_seconds=10
        )
        results = await service_runs.measure(counts, url)
        for result in (
            results.sequential,
            results.concurrent,
            results.suspend_resume,
            results.suspended_runs,
        ):
            assert result.errors == 0, result.first_error
        assert results.concurrent.done == 20
        assert await _scratch_schemas(url) == 0
    finally:
        await postgres_server.drop_database(url)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("layout", ["sqlite", "postgresql"])
async def test_bench_listing_smoke(
    layout: str, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m bench.listing [--database-url URL]`: every filter is timed and planned, on
    a scratch SQLite file or a scratch schema that is dropped afterwards."""
    from bench import listing

    url = None
    if layout == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = await server.create_database(migrated=False)
    try:
        assert await listing.run(runs=2_000, repeat=2, database_url=url) == 0
    finally:
        if url is not None:
            await server.drop_database(url)
    out = capsys.readouterr().out
    for name in listing.cases(0.0):
        line = next(line for line in out.splitlines() if line.startswith(name))
        assert ("runs_by" in line) if layout == "sqlite" else ("Scan" in line), line


@pytest.mark.timeout(120)
async def test_benches_on_postgresql_smoke(
    postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bench.storage_size`, `bench.inprocess` and `bench.watchers` with `--database-url`: each
    measures on scratch schemas of that database and drops them."""
    from bench import inprocess, storage_size, watchers

    url = await postgres_server.create_database(migrated=False)
    try:
        assert await storage_size.run(0.5, url) == 0  # it checks that every copy reads back
        grown = next(line for line in capsys.readouterr().out.splitlines() if "large value" in line)
        assert float(grown.split("(")[1].split(" x")[0]) < 1.5, grown
        measured = await inprocess.measure(20, 4, "full", 10.0, database_url=url)
        assert len(measured) == 3 and not any(m.result.errors for m in measured), [m.line() for m in measured]
        rates = await watchers.measure(watchers=8, chunks=5, channels=2, repeat=1, database_url=url)
        assert len(rates) == 1 and rates[0] > 0
        assert await _scratch_schemas(url) == 0
    finally:
        await postgres_server.drop_database(url)


@pytest.mark.timeout(60)
def test_bench_inprocess_rounds_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m bench.inprocess --rounds 2`: each figure's median with its range."""
    from bench import inprocess

    assert inprocess.main(["--runs", "20", "--concurrency", "4", "--rounds", "2", "--max-seconds", "10"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "medians of 2 rounds" in out[0]
    assert [line.split("  ")[0] for line in out[1:]] == [
        "3-step runs, 1 in flight",
        "3-step runs, 4 in flight",
        "suspend+resume, 4 in flight",
    ]
    assert all(line.count("(") == 3 and "ERRORS" not in line for line in out[1:])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["three", "suspend"])
async def test_bench_instructions_child_counts_the_stores_commits(kind: str) -> None:
    """`python -m bench.instructions`'s child: the operations run to their end on the real
    engine and store, and the commits and fsyncs it reports are those of the counted ones."""
    from bench import instructions

    commits, syncs = await instructions.run_child(kind, 1, 10, "full")
    # 3-step runs: 4 commits each, the last synced; suspend+resume: 4 commits, 2 synced
    # (the lease keeper may add a renewal).
    assert 40 <= commits <= 42 and syncs >= (10 if kind == "three" else 20), (commits, syncs)
    few = instructions.Counted(1_000, 10, 2)
    many = instructions.Counted(5_000, 50, 12)
    assert instructions.per_op("x", few, many, (10, 30)) == instructions.PerOp("x", 200, 2, 0.5)


@pytest.mark.timeout(60)
def test_bench_instructions_reads_callgrinds_total(tmp_path: Path) -> None:
    """The instruction count is read off a real callgrind run (valgrind is a dev tool: the
    bench says so when it is missing, and this test needs it)."""
    import shutil

    from bench import instructions

    valgrind = shutil.which("valgrind")
    if valgrind is None:
        pytest.skip("valgrind is not installed")
    small, _ = instructions.under_callgrind(valgrind, [sys.executable, "-S", "-c", "pass"], tmp_path)
    large, out = instructions.under_callgrind(
        valgrind, [sys.executable, "-S", "-c", "print(sum(range(200_000)))"], tmp_path
    )
    assert out.strip() == str(sum(range(200_000)))
    assert 0 < small < large
    with pytest.raises(RuntimeError, match="no total"):
        instructions.collected("==1== Events : Ir\n")


@pytest.mark.timeout(60)
async def test_bench_storage_size_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m bench.storage_size` on SQLite: a large value is stored about once."""
    from bench import storage_size

    assert await storage_size.run(0.05) == 0
    grown = next(line for line in capsys.readouterr().out.splitlines() if "large value" in line)
    assert float(grown.split("(")[1].split(" x")[0]) < 1.5, grown


def test_the_wheel_lists_every_package_folder() -> None:
    """pyproject lists the packages by hand (one package from two roots); none may be missed."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    source = ROOT / "service"
    on_disk = {".".join(init.parent.relative_to(source).parts) for init in source.rglob("__init__.py")} | {
        "runservice.v1"
    }
    assert set(config["packages"]) == on_disk
    assert (ROOT / config["package-dir"]["runservice.v1"] / "__init__.py").is_file()


def test_the_stubs_join_the_package_in_a_checkout() -> None:
    import runservice
    from runservice.v1 import run_service_pb2

    assert Path(run_service_pb2.__file__).is_relative_to(ROOT / "stubs")
    assert callable(runservice.create_workflow) and callable(runservice.create_step)
