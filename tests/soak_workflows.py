"""Workflows of the kill -9 soak (tests/test_soak.py), with the reference answer of each.

Served by a real `runservice serve --workflows soak_workflows` process. Every step body
records each execution in a side SQLite ledger, so the soak can tell how often each body
ran and in which process: one row per execution with run id, step path, foreach index,
loop iteration, attempt, phase and pid; `ended` is set only when the body finished. Each
process writes a file of its own, `<SOAK_LEDGER>.<pid>` (`ledger_files` lists them): a
process the soak pauses must not hold a lock that the other replicas' bodies wait for.
Bodies take a few random milliseconds, so kills land mid-step.

`expected(workflow_id, input)` computes, in plain Python, the output a run must end with;
resume data is `resume_value(index, iteration)`, so the reference knows it too.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from runservice.workflow import StepContext, Workflow, clone_step, create_step, create_workflow

LEDGER_ENV = "SOAK_LEDGER"

LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    path TEXT NOT NULL,
    idx INTEGER NOT NULL,
    iteration INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    phase TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started REAL NOT NULL,
    ended REAL
)
"""
"""`idx` is -1 outside foreach; `iteration` 0 outside loops; `phase` is `run` for a step
that never suspends, `suspend` for a first execution that suspends, `resume` after a resume."""


def ledger_files(base: Path) -> list[Path]:
    """The ledger files of every process that ran a body (see the module docstring)."""
    return sorted(p for p in base.parent.glob(f"{base.name}.*") if p.suffix[1:].isdigit())


_created: set[str] = set()
"""Ledger files this process created (the schema once per file)."""


def _ledger() -> sqlite3.Connection | None:
    base = os.environ.get(LEDGER_ENV)
    if not base:
        return None
    path = f"{base}.{os.getpid()}"
    # One connection per write: a kill -9 can land anywhere, and WAL survives it;
    # NORMAL sync is enough (only the process dies, not the OS).
    db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    if path not in _created:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(LEDGER_SCHEMA)
        _created.add(path)
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def _begin(ctx: StepContext, phase: str, index: int, iteration: int) -> int | None:
    started = time.time()  # first: the soak times a body's start against its process's pauses
    db = _ledger()
    if db is None:
        return None
    path = ".".join(ctx._runtime._path)  # type: ignore[attr-defined]
    try:
        cursor = db.execute(
            "INSERT INTO executions (run_id, path, idx, iteration, attempt, phase, pid, started)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (ctx.run_id, path, index, iteration, ctx.retry_count, phase, os.getpid(), started),
        )
        return cursor.lastrowid
    finally:
        db.close()


def _end(row: int | None) -> None:
    db = _ledger()
    if db is None or row is None:
        return
    try:
        db.execute("UPDATE executions SET ended = ? WHERE id = ?", (time.time(), row))
    finally:
        db.close()


async def _work(ctx: StepContext, phase: str = "run", index: int = -1, iteration: int = 0) -> int | None:
    """Record the start of an execution, then spend a few milliseconds."""
    row = _begin(ctx, phase, index, iteration)
    await asyncio.sleep(random.uniform(0.002, 0.02))
    return row


def resume_value(index: int | None, iteration: int) -> int:
    """The `add` the soak driver resumes a target with (foreach index, loop iteration)."""
    return 10 * (index if index is not None and index >= 0 else 0) + iteration + 3


class Add(BaseModel):
    add: int


def _n(data: Any) -> Any:
    return data["n"]


# -- sequential ------------------------------------------------------------------------------


@create_step("seq-add1")
async def seq_add1(ctx: StepContext) -> Any:
    row = await _work(ctx)
    _end(row)
    return {"n": _n(ctx.input_data) + 1}


@create_step("seq-double")
async def seq_double(ctx: StepContext) -> Any:
    row = await _work(ctx)
    _end(row)
    return {"n": _n(ctx.input_data) * 2}


@create_step("seq-add3")
async def seq_add3(ctx: StepContext) -> Any:
    row = await _work(ctx)
    _end(row)
    return {"n": _n(ctx.input_data) + 3}


seq = create_workflow("soak-seq").then(seq_add1).then(seq_double).then(seq_add3).commit()

# -- parallel --------------------------------------------------------------------------------


@create_step("par-double")
async def par_double(ctx: StepContext) -> Any:
    row = await _work(ctx)
    _end(row)
    return {"n": _n(ctx.input_data) * 2}


@create_step("par-triple")
async def par_triple(ctx: StepContext) -> Any:
    row = await _work(ctx)
    _end(row)
    return {"n": _n(ctx.input_data) * 3}


@create_step("par-sum")
async def par_sum(ctx: StepContext) -> Any:
    row = await _work(ctx)
    _end(row)
    return {"n": ctx.input_data["par-double"]["n"] + ctx.input_data["par-triple"]["n"]}


par = create_workflow("soak-par").parallel([par_double, par_triple]).then(par_sum).commit()

# -- branch ----------------------------------------------------------------------------------


def _even(ctx: Any) -> bool:
    return bool(ctx.input_data["n"] % 2 == 0)


def _odd(ctx: Any) -> bool:
    return bool(ctx.input_data["n"] % 2 == 1)


@create_step("br-half")
async def br_half(ctx: StepContext) -> Any:
    row = await _work(ctx)
    _end(row)
    return {"n": _n(ctx.input_data) // 2}


@create_step("br-3n1")
async def br_3n1(ctx: StepContext) -> Any:
    row = await _work(ctx)
    _end(row)
    return {"n": _n(ctx.input_data) * 3 + 1}


@create_step("br-collect")
async def br_collect(ctx: StepContext) -> Any:
    row = await _work(ctx)
    _end(row)
    chosen = ctx.input_data.get("br-half") or ctx.input_data.get("br-3n1")
    return {"n": chosen["n"]}


branchy = create_workflow("soak-branch").branch([(_even, br_half), (_odd, br_3n1)]).then(br_collect).commit()

# -- dountil loop ----------------------------------------------------------------------------


@create_step("loop-inc")
async def loop_inc(ctx: StepContext) -> Any:
    data = ctx.input_data
    row = await _work(ctx, iteration=data.get("it", 0) + 1)
    _end(row)
    return {"n": data["n"] + 1, "target": data["target"], "it": data.get("it", 0) + 1}


def _reached(ctx: Any) -> bool:
    return bool(ctx.input_data["n"] >= ctx.input_data["target"])


loop = create_workflow("soak-loop").dountil(loop_inc, _reached).commit()

# -- foreach, sleep, collect (issue 11, item 0) ------------------------------------------------


@create_step("each-explode")
async def each_explode(ctx: StepContext) -> Any:
    row = await _work(ctx)
    _end(row)
    return [{"i": i, "v": v} for i, v in enumerate(ctx.input_data["values"])]


@create_step("each-square")
async def each_square(ctx: StepContext) -> Any:
    item = ctx.input_data
    row = await _work(ctx, index=item["i"])
    _end(row)
    return {"i": item["i"], "sq": item["v"] * item["v"]}


@create_step("each-collect")
async def each_collect(ctx: StepContext) -> Any:
    row = await _work(ctx)
    _end(row)
    return {"n": sum(item["sq"] for item in ctx.input_data)}


each = (
    create_workflow("soak-each")
    .then(each_explode)
    .foreach(each_square, concurrency=3)
    .sleep(0.2)
    .then(each_collect)
    .commit()
)

# -- sleeps ------------------------------------------------------------------------------------


@create_step("nap-add1")
async def nap_add1(ctx: StepContext) -> Any:
    row = await _work(ctx)
    _end(row)
    return {"n": _n(ctx.input_data) + 1, "ms": ctx.input_data["ms"]}


def _nap_length(ctx: Any) -> float:
    return float(ctx.input_data["ms"]) / 1000.0


@create_step("nap-triple")
async def nap_triple(ctx: StepContext) -> Any:
    row = await _work(ctx)
    _end(row)
    return {"n": _n(ctx.input_data) * 3}


nap = create_workflow("soak-nap").then(nap_add1).sleep(_nap_length).then(nap_triple).commit()

# -- nested workflows ----------------------------------------------------------------------------


@create_step("nest-add1")
async def nest_add1(ctx: StepContext) -> Any:
    row = await _work(ctx)
    _end(row)
    return {"n": _n(ctx.input_data) + 1}


@create_step("inner-double")
async def inner_double(ctx: StepContext) -> Any:
    row = await _work(ctx)
    _end(row)
    return {"n": _n(ctx.input_data) * 2}


@create_step("inner-add5")
async def inner_add5(ctx: StepContext) -> Any:
    row = await _work(ctx)
    _end(row)
    return {"n": _n(ctx.input_data) + 5}


@create_step("nest-sub1")
async def nest_sub1(ctx: StepContext) -> Any:
    row = await _work(ctx)
    _end(row)
    return {"n": _n(ctx.input_data) - 1}


inner = create_workflow("soak-inner").then(inner_double).then(inner_add5).commit()
nested = create_workflow("soak-nested").then(nest_add1).then(inner).then(nest_sub1).commit()

# -- suspends: foreach items resumed one by one ---------------------------------------------------


@create_step("ask-item", resume_schema=Add)
async def ask_item(ctx: StepContext) -> Any:
    item = ctx.input_data
    if ctx.resume_data is None:
        row = await _work(ctx, "suspend", index=item["i"])
        await ctx.suspend({"item": item["i"]})
        _end(row)
        return None
    row = await _work(ctx, "resume", index=item["i"])
    _end(row)
    return {"i": item["i"], "v": item["v"] + ctx.resume_data.add}


@create_step("ask-collect")
async def ask_collect(ctx: StepContext) -> Any:
    row = await _work(ctx)
    _end(row)
    return {"n": sum(item["v"] for item in ctx.input_data)}


each_ask = (
    create_workflow("soak-each-ask")
    .then(clone_step(each_explode, id="ask-explode"))
    .foreach(ask_item, concurrency=2)
    .then(ask_collect)
    .commit()
)

# -- suspends: parallel branches resumed by step ----------------------------------------------------


@create_step("pa-left", resume_schema=Add)
async def pa_left(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        row = await _work(ctx, "suspend")
        await ctx.suspend({"side": "left"})
        _end(row)
        return None
    row = await _work(ctx, "resume")
    _end(row)
    return {"n": _n(ctx.input_data) + ctx.resume_data.add}


@create_step("pa-right", resume_schema=Add)
async def pa_right(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        row = await _work(ctx, "suspend")
        await ctx.suspend({"side": "right"})
        _end(row)
        return None
    row = await _work(ctx, "resume")
    _end(row)
    return {"n": _n(ctx.input_data) * ctx.resume_data.add}


@create_step("pa-sum")
async def pa_sum(ctx: StepContext) -> Any:
    row = await _work(ctx)
    _end(row)
    return {"n": ctx.input_data["pa-left"]["n"] + ctx.input_data["pa-right"]["n"]}


par_ask = create_workflow("soak-par-ask").parallel([pa_left, pa_right]).then(pa_sum).commit()

# -- suspends: a nested step resumed by its nested path ---------------------------------------------


@create_step("na-ask", resume_schema=Add)
async def na_ask(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        row = await _work(ctx, "suspend")
        await ctx.suspend({"at": _n(ctx.input_data)})
        _end(row)
        return None
    row = await _work(ctx, "resume")
    _end(row)
    return {"n": _n(ctx.input_data) + ctx.resume_data.add}


@create_step("na-inc")
async def na_inc(ctx: StepContext) -> Any:
    row = await _work(ctx)
    _end(row)
    return {"n": _n(ctx.input_data) + 1}


inner_ask = (
    create_workflow("soak-inner-ask")
    .then(clone_step(inner_double, id="na-double"))
    .then(na_ask)
    .then(na_inc)
    .commit()
)
nested_ask = (
    create_workflow("soak-nested-ask")
    .then(clone_step(nest_add1, id="na-add1"))
    .then(inner_ask)
    .then(clone_step(nap_triple, id="na-triple"))
    .commit()
)

# -- suspends: a foreach over a nested workflow whose items suspend (issue 11, item 0b) ---------------


@create_step("fn-ask", resume_schema=Add)
async def fn_ask(ctx: StepContext) -> Any:
    item = ctx.input_data
    if ctx.resume_data is None:
        row = await _work(ctx, "suspend", index=item["i"])
        await ctx.suspend({"item": item["i"]})
        _end(row)
        return None
    row = await _work(ctx, "resume", index=item["i"])
    _end(row)
    return {"i": item["i"], "v": item["v"] + ctx.resume_data.add}


@create_step("fn-double")
async def fn_double(ctx: StepContext) -> Any:
    item = ctx.input_data
    row = await _work(ctx, index=item["i"])
    _end(row)
    return {"i": item["i"], "v": item["v"] * 2}


fn_item = create_workflow("soak-fn-item").then(fn_ask).then(fn_double).commit()
each_nested_ask = (
    create_workflow("soak-each-nested-ask")
    .then(clone_step(each_explode, id="fn-explode"))
    .foreach(fn_item, concurrency=2)
    .then(clone_step(ask_collect, id="fn-collect"))
    .commit()
)

# -- suspends: a loop whose body suspends on every iteration -------------------------------------------


@create_step("la-ask", resume_schema=Add)
async def la_ask(ctx: StepContext) -> Any:
    data = ctx.input_data
    it = data.get("it", 0) + 1
    if ctx.resume_data is None:
        row = await _work(ctx, "suspend", iteration=it)
        await ctx.suspend({"iteration": it})
        _end(row)
        return None
    row = await _work(ctx, "resume", iteration=it)
    _end(row)
    return {"n": data["n"] + ctx.resume_data.add, "it": it}


def _three_times(ctx: Any) -> bool:
    return bool(ctx.input_data["it"] >= 3)


loop_ask = create_workflow("soak-loop-ask").dountil(la_ask, _three_times).commit()

FOREACH_STEPS = {("each-square",), ("ask-item",), ("soak-fn-item",)}
"""Paths of the foreach steps: their stored record must keep one item per input element."""

WORKFLOWS: list[Workflow] = [
    seq,
    par,
    branchy,
    loop,
    each,
    nap,
    nested,
    each_ask,
    par_ask,
    nested_ask,
    each_nested_ask,
    loop_ask,
]

# -- inputs and the reference answers -----------------------------------------------------------------


def make_input(workflow_id: str, rng: random.Random) -> dict[str, Any]:
    """A random input for a workflow (drawn from the soak's seeded generator)."""
    if workflow_id in ("soak-each", "soak-each-ask", "soak-each-nested-ask"):
        return {"values": [rng.randint(1, 20) for _ in range(rng.randint(3, 6))]}
    if workflow_id == "soak-loop":
        n = rng.randint(0, 30)
        return {"n": n, "target": n + rng.randint(2, 5)}
    if workflow_id == "soak-nap":
        return {"n": rng.randint(0, 50), "ms": rng.randint(50, 400)}
    return {"n": rng.randint(0, 50)}


def expected(workflow_id: str, data: dict[str, Any]) -> Any:
    """The output a successful run of `workflow_id` on `data` must end with."""
    if workflow_id == "soak-seq":
        return {"n": (data["n"] + 1) * 2 + 3}
    if workflow_id == "soak-par":
        return {"n": data["n"] * 5}
    if workflow_id == "soak-branch":
        n = data["n"]
        return {"n": n // 2 if n % 2 == 0 else 3 * n + 1}
    if workflow_id == "soak-loop":
        steps = max(1, data["target"] - data["n"])
        return {"n": data["n"] + steps, "target": data["target"], "it": steps}
    if workflow_id == "soak-each":
        return {"n": sum(v * v for v in data["values"])}
    if workflow_id == "soak-nap":
        return {"n": (data["n"] + 1) * 3}
    if workflow_id == "soak-nested":
        return {"n": ((data["n"] + 1) * 2 + 5) - 1}
    if workflow_id == "soak-each-ask":
        return {"n": sum(v + resume_value(i, 0) for i, v in enumerate(data["values"]))}
    if workflow_id == "soak-par-ask":
        return {"n": (data["n"] + resume_value(None, 0)) + data["n"] * resume_value(None, 0)}
    if workflow_id == "soak-nested-ask":
        return {"n": ((data["n"] + 1) * 2 + resume_value(None, 0) + 1) * 3}
    if workflow_id == "soak-each-nested-ask":
        return {"n": sum((v + resume_value(i, 0)) * 2 for i, v in enumerate(data["values"]))}
    if workflow_id == "soak-loop-ask":
        return {"n": data["n"] + sum(resume_value(None, it) for it in (1, 2, 3)), "it": 3}
    raise KeyError(workflow_id)
