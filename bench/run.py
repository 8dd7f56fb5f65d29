"""`python -m bench [--quick] [--only PARTS] [--rounds N] [--database-url URL] [--json out.json]`.

Runs the references and runservice in one go and prints every figure next to its
reference measured in the same run, plus the published figures of SPEC.md.
With `--database-url postgresql://...`, a bare asyncpg commit loop on that database
is measured too and runservice runs on that database (each in a scratch schema,
dropped afterwards) instead of an SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import asyncpg_ref, echo, sqlite_ref
from bench.load import LoadResult
from bench.report import Row, medians, ratio, render

PARTS = ("echo", "sqlite", "postgres", "runservice", "foreach")
"""`postgres` runs only with --database-url. `foreach` is in process (engine and store, no gRPC)."""

PUBLISHED = {
    "echo_concurrent": "grpc.aio echo: ~7,400 calls/s",
    "sqlite_single": "aiosqlite: ~6,000 commits/s",
    "sqlite_batched_rows": "aiosqlite: ~250,000 rows/s",
    "runs_sequential": "Mastra ~1,770; DBOS ~210",
    "runs_concurrent": "Mastra ~540; DBOS ~170",
    "suspend_resume": "Mastra ~580",
    "rss_per_suspended_run": "Mastra ~35 KB",
}
"""SPEC.md's figures (other machines' runs of the same 2-core size), for context only."""


@dataclass
class Settings:
    concurrency: int = 64
    echo_sequential: int = 5_000
    echo_concurrent: int = 20_000
    sqlite_commits: int = 3_000
    sqlite_batched_commits: int = 300
    rows_per_commit: int = 100
    postgres_commits: int = 3_000
    postgres_concurrent_commits: int = 10_000
    runs_sequential: int = 2_000
    runs_concurrent: int = 5_000
    suspend_resume: int = 3_000
    suspended: int = 2_000
    foreach_items: tuple[int, ...] = (1_000, 10_000)
    foreach_repeat: int = 5
    max_seconds: float = 20.0
    stored_runs: int = 0
    caller_run_ids: bool = False

    @classmethod
    def quick(cls) -> Settings:
        return cls(
            echo_sequential=500,
            echo_concurrent=2_000,
            sqlite_commits=300,
            sqlite_batched_commits=30,
            postgres_commits=300,
            postgres_concurrent_commits=1_000,
            runs_sequential=200,
            runs_concurrent=500,
            suspend_resume=300,
            suspended=300,
            foreach_items=(100, 1_000),
            foreach_repeat=1,
            max_seconds=5.0,
        )


@dataclass
class Outcome:
    figures: dict[str, float] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1])
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON here")
    parser.add_argument("--quick", action="store_true", help="a tenth of the counts (a smoke run)")
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"comma-separated parts to run (default: {','.join(PARTS)})"
    )
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight (default 64)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        metavar="N",
        help="run every part N times in turn and report each figure's median and range, and the"
        " median of its same-run ratios (default 1)",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="postgresql://user@host/db: measure the asyncpg reference and runservice on this database",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="runservice processes sharing the database (more than 1 needs --database-url)",
    )
    parser.add_argument(
        "--engine-process",
        action="store_true",
        help="serve runservice with --engine-process (the engine in a second process)",
    )
    parser.add_argument(
        "--stored-runs",
        type=int,
        default=0,
        metavar="N",
        help="store N 3-step runs before runservice's timed measurements (default 0: a new database)",
    )
    parser.add_argument(
        "--caller-run-ids",
        action="store_true",
        help="start runs with random UUID4 ids chosen by the caller, not the server's time-ordered ids",
    )
    args = parser.parse_args(argv)
    if args.database_url and not args.database_url.startswith(("postgresql://", "postgres://")):
        parser.error("--database-url must be a postgresql:// URL")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.replicas < 1 or (args.replicas > 1 and not args.database_url):
        parser.error("--replicas: 1, or more with a PostgreSQL --database-url")
    unknown = set(args.only.split(",")) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings.quick() if args.quick else Settings()
    settings.concurrency = args.concurrency
    settings.stored_runs = args.stored_runs
    settings.caller_run_ids = args.caller_run_ids
    parts = args.only.split(",")
    if not args.database_url:
        parts = [part for part in parts if part != "postgres"]
    started = time.perf_counter()
    rounds = []
    for number in range(args.rounds):
        if args.rounds > 1:
            print(f"bench: round {number + 1} of {args.rounds}", file=sys.stderr, flush=True)
        rounds.append(
            asyncio.run(run(settings, parts, args.database_url, args.replicas, args.engine_process))
        )
    outcome = rounds[0] if args.rounds == 1 else _medians(rounds)
    outcome.details["total_seconds"] = round(time.perf_counter() - started, 1)

    print(render(outcome.rows))
    for error in outcome.errors:
        print(f"\nERROR {error}", file=sys.stderr)
    each = f", medians of {args.rounds} rounds" if args.rounds > 1 else ""
    print(f"\n{len(outcome.rows)} figures{each} in {outcome.details['total_seconds']} s on {_machine()}")
    if args.json:
        args.json.write_text(json.dumps(_as_json(outcome, settings), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 1 if outcome.errors else 0


async def run(
    settings: Settings,
    parts: list[str],
    database_url: str | None = None,
    replicas: int = 1,
    engine_process: bool = False,
) -> Outcome:
    out = Outcome()
    n = settings.concurrency
    if "echo" in parts:
        await _part(out, "echo", _echo(out, settings, n))
    if "sqlite" in parts:
        await _part(out, "sqlite", _sqlite(out, settings))
    if "postgres" in parts and database_url:
        await _part(out, "postgres", _postgres(out, settings, database_url, n))
    if "runservice" in parts:
        out.details["runservice_database"] = "postgresql" if database_url else "sqlite"
        out.details["runservice_replicas"] = replicas
        out.details["runservice_engine_process"] = engine_process
        out.details["runservice_caller_run_ids"] = settings.caller_run_ids
        out.details["runservice_stored_runs"] = settings.stored_runs
        await _part(out, "runservice", _service(out, settings, n, database_url, replicas, engine_process))
    if "foreach" in parts:
        await _part(out, "foreach", _foreach(out, settings, database_url))
    return out


async def _part(out: Outcome, name: str, work: Any) -> None:
    print(f"bench: {name}...", file=sys.stderr, flush=True)
    try:
        await work
    except Exception as exc:
        out.errors.append(f"{name}: {type(exc).__name__}: {exc}")
        if os.environ.get("BENCH_TRACEBACK"):
            traceback.print_exc()


async def _echo(out: Outcome, s: Settings, n: int) -> None:
    results = await echo.measure(
        sequential=s.echo_sequential, concurrent=s.echo_concurrent, concurrency=n, max_seconds=s.max_seconds
    )
    _record(out, "echo_sequential", "echo, 1 in flight", results.sequential, "calls/s")
    _record(out, "echo_concurrent", f"echo, {n} in flight", results.concurrent, "calls/s")


async def _sqlite(out: Outcome, s: Settings) -> None:
    results = await sqlite_ref.measure(
        commits=s.sqlite_commits,
        batched_commits=s.sqlite_batched_commits,
        rows_per_commit=s.rows_per_commit,
        max_seconds=s.max_seconds,
    )
    _record(out, "sqlite_single", "sqlite, 1 row/commit", results.single, "commits/s")
    out.figures["sqlite_batched_rows"] = results.rows_rate
    out.rows.append(
        Row(
            f"sqlite, {results.rows_per_commit} rows/commit",
            results.rows_rate,
            "rows/s",
            published=PUBLISHED["sqlite_batched_rows"],
        )
    )


async def _postgres(out: Outcome, s: Settings, url: str, n: int) -> None:
    results = await asyncpg_ref.measure(
        url,
        commits=s.postgres_commits,
        batched_commits=s.sqlite_batched_commits,
        rows_per_commit=s.rows_per_commit,
        concurrent_commits=s.postgres_concurrent_commits,
        concurrency=n,
        max_seconds=s.max_seconds,
    )
    _record(out, "postgres_single", "asyncpg, 1 row/commit", results.single, "commits/s")
    out.figures["postgres_batched_rows"] = results.rows_rate
    out.rows.append(Row(f"asyncpg, {results.rows_per_commit} rows/commit", results.rows_rate, "rows/s"))
    _record(
        out, "postgres_concurrent", f"asyncpg, 1 row/commit, {n} connections", results.concurrent, "commits/s"
    )


async def _service(
    out: Outcome,
    s: Settings,
    n: int,
    database_url: str | None = None,
    replicas: int = 1,
    engine_process: bool = False,
) -> None:
    from bench import service_runs  # imports the generated stubs, needed only here

    counts = service_runs.Counts(
        sequential=s.runs_sequential,
        concurrent=s.runs_concurrent,
        suspend_resume=s.suspend_resume,
        suspended=s.suspended,
        concurrency=n,
        max_seconds=s.max_seconds,
        stored=s.stored_runs,
    )
    results = await service_runs.measure(counts, database_url, replicas, engine_process, s.caller_run_ids)
    f = out.figures
    on_pg = database_url is not None
    db = (f" (postgresql, {replicas} replicas)" if replicas > 1 else " (postgresql)") if on_pg else ""
    if engine_process:
        db += " (--engine-process)"
    if s.caller_run_ids:
        db += " (caller's run ids)"
    if s.stored_runs:
        db += f" ({s.stored_runs:,} runs stored)"
    commits, commits_label = (
        ("postgres_single", "asyncpg commits/s") if on_pg else ("sqlite_single", "sqlite commits/s")
    )
    seq = _record(out, "runs_sequential", f"3-step runs, 1 in flight{db}", results.sequential, "runs/s")
    f["runs_p50_ms"] = results.sequential.percentile(0.50) * 1000
    f["runs_p99_ms"] = results.sequential.percentile(0.99) * 1000
    out.rows.append(Row("  latency p50", f["runs_p50_ms"], "ms"))
    out.rows.append(Row("  latency p99", f["runs_p99_ms"], "ms"))
    _against(out, seq, "echo_sequential", "echo, 1 in flight")
    _against(out, seq, commits, commits_label)
    _server_cpu(out, results, "sequential", "runs_sequential", "us/run")

    many = _record(out, "runs_concurrent", f"3-step runs, {n} in flight{db}", results.concurrent, "runs/s")
    _against(out, many, "echo_concurrent", f"echo, {n} in flight")
    _against(out, many, commits, commits_label)
    if on_pg:
        _against(out, many, "postgres_concurrent", f"asyncpg commits/s, {n} connections")
    _server_cpu(out, results, "concurrent", "runs_concurrent", "us/run")

    trips = _record(
        out, "suspend_resume", f"suspend+resume, {n} in flight{db}", results.suspend_resume, "round trips/s"
    )
    _against(out, trips, "echo_concurrent", f"echo, {n} in flight")
    _server_cpu(out, results, "suspend_resume", "suspend_resume", "us/trip")

    f["rss_per_suspended_run"] = results.rss_kb_per_suspended_run
    out.rows.append(
        Row(
            f"server RSS per suspended run ({results.suspended_runs.done} runs)",
            results.rss_kb_per_suspended_run,
            "KB",
            published=PUBLISHED["rss_per_suspended_run"],
        )
    )
    out.details["rss_kb"] = {"before": results.rss_before_kb, "after": results.rss_after_kb}
    for name, result in (
        ("sequential", results.sequential),
        ("concurrent", results.concurrent),
        ("suspend_resume", results.suspend_resume),
        ("suspended_runs", results.suspended_runs),
    ):
        if result.errors:
            out.errors.append(f"runservice {name}: {result.errors} failed, first: {result.first_error}")


def _server_cpu(out: Outcome, results: Any, name: str, key: str, unit: str) -> None:
    """Rows for where the server's CPU went in one measurement (Linux: from /proc)."""
    cpu = results.cpu.get(name)
    if cpu is None:
        return
    out.figures[f"{key}_server_cpu_us"] = cpu.per_op_us
    out.figures[f"{key}_loop_busy"] = cpu.loop_busy
    out.rows.append(Row("  server CPU (all threads)", cpu.per_op_us, unit))
    out.rows.append(Row("  server event loop busy", cpu.loop_busy * 100, "%"))


async def _foreach(out: Outcome, s: Settings, database_url: str | None) -> None:
    from bench import foreach

    counts = list(s.foreach_items)
    results = await asyncio.to_thread(foreach.measure_as_served, counts, s.foreach_repeat, database_url)
    db = " (postgresql)" if database_url else ""
    for count in counts:
        key = f"foreach_{count}_ms"
        out.figures[key] = results.ms[count]
        out.figures[f"foreach_{count}_us_per_item"] = results.per_item_us(count)
        out.details[key] = results.runs[count]
        label = f"foreach over {count:,} items, concurrency 1, in process{db}"
        out.rows.append(Row(label, results.ms[count], "ms"))
        out.rows.append(Row("  per item", results.per_item_us(count), "us"))
        out.figures[f"foreach_{count}_cpu_us_per_item"] = results.cpu_per_item_us(count)
        out.rows.append(Row("  CPU per item (process, all threads)", results.cpu_per_item_us(count), "us"))


def _medians(rounds: list[Outcome]) -> Outcome:
    """Several rounds as one outcome: each figure's median (ratios: the median of the rounds'
    same-run ratios), every round's figures under `details["rounds"]`, every round's errors."""
    keys = dict.fromkeys(key for outcome in rounds for key in outcome.figures)
    figures = {key: statistics.median(o.figures[key] for o in rounds if key in o.figures) for key in keys}
    return Outcome(
        figures=figures,
        rows=medians([outcome.rows for outcome in rounds]),
        errors=[f"round {n}: {error}" for n, o in enumerate(rounds, 1) for error in o.errors],
        details={**rounds[0].details, "rounds": [o.figures for o in rounds]},
    )


def _record(out: Outcome, key: str, label: str, result: LoadResult, unit: str) -> Row:
    out.figures[key] = result.rate
    out.details[key] = {"done": result.done, "errors": result.errors, "seconds": round(result.elapsed, 3)}
    if result.errors:
        out.errors.append(f"{label}: {result.errors} failed, first: {result.first_error}")
    row = Row(label, result.rate, unit, published=PUBLISHED.get(key, ""))
    out.rows.append(row)
    return row


def _against(out: Outcome, row: Row, reference_key: str, reference_label: str) -> None:
    """Attach a same-run reference to `row` (when that reference was measured)."""
    reference = out.figures.get(reference_key)
    if reference is None:
        return
    row.references.append((reference_label, reference, ratio(row.value, reference)))


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def _as_json(outcome: Outcome, settings: Settings) -> dict[str, Any]:
    return {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "settings": settings.__dict__,
        "figures": {k: round(v, 3) for k, v in outcome.figures.items()},
        "rows": [row.to_json() for row in outcome.rows],
        "published": PUBLISHED,
        "details": outcome.details,
        "errors": outcome.errors,
    }
