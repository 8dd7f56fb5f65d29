"""Recovery of every construct from what was committed at each point of its life.

Each test runs a workflow on a real engine and SQLite file, holds one or more step
bodies at a chosen point, then stops the engine the hard way (`Engine.aclose` cancels
every run task; nothing staged is committed) and boots a new engine on the same file,
as a restarted process would. The probe counts every body execution, so the tests can
say which bodies ran again: only those that were in flight when the engine stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterable
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from pydantic import BaseModel

from runservice.engine import Engine
from runservice.errors import InvalidArgument, RequestIdReused, StepNotSuspended
from runservice.model import (
    Event,
    EventType,
    Run,
    RunStatus,
    StepRecord,
    StepStatus,
    fork_run_id,
    request_run_id,
)
from runservice.storage import RunWrite, Store, open_store
from runservice.workflow import StepContext, Workflow, clone_step, create_step, create_workflow

pytestmark = pytest.mark.timeout(30)


class Probe:
    """Counts body executions and holds the bodies a test names until it lets them go."""

    def __init__(self) -> None:
        self.ran: Counter[str] = Counter()
        self.hold: set[str] = set()
        self.entered: dict[str, asyncio.Event] = {}

    def _entered(self, key: str) -> asyncio.Event:
        return self.entered.setdefault(key, asyncio.Event())

    async def body(self, key: str) -> None:
        self.ran[key] += 1
        self._entered(key).set()
        if key in self.hold:
            await asyncio.Event().wait()  # until the engine is stopped

    async def wait_entered(self, *keys: str) -> None:
        async with asyncio.timeout(10):
            for key in keys:
                await self._entered(key).wait()

    def reset_entered(self) -> None:
        self.entered.clear()


probe = Probe()


@pytest.fixture(autouse=True)
def fresh_probe() -> None:
    global probe
    probe.__init__()  # type: ignore[misc]


class N(BaseModel):
    n: int


class Answer(BaseModel):
    ok: bool


@create_step("explode", input_schema=N)
async def explode(ctx: StepContext) -> list[int]:
    await probe.body("explode")
    return list(range(ctx.input_data.n))


@create_step("square")
async def square(ctx: StepContext) -> int:
    await probe.body(f"square[{ctx.input_data}]")
    return int(ctx.input_data) ** 2


@create_step("collect")
async def collect(ctx: StepContext) -> dict[str, int]:
    await probe.body("collect")
    return {"n": sum(ctx.input_data)}


squares = (
    create_workflow("squares", input_schema=N)
    .then(explode)
    .foreach(square, concurrency=3)
    .sleep(0.01)
    .then(collect)
    .commit()
)


@create_step("first")
async def first(ctx: StepContext) -> int:
    await probe.body("first")
    return int(ctx.input_data["n"]) + 1


@create_step("second")
async def second(ctx: StepContext) -> int:
    await probe.body("second")
    return int(ctx.input_data) * 10


sequence = create_workflow("sequence").then(first).then(second).commit()


@create_step("left")
async def left(ctx: StepContext) -> str:
    await probe.body("left")
    return "L"


@create_step("right")
async def right(ctx: StepContext) -> str:
    await probe.body("right")
    return "R"


@create_step("broken-branch")
async def broken_branch(ctx: StepContext) -> str:
    await probe.body("broken-branch")
    raise RuntimeError("this branch always fails")


sides = create_workflow("sides").parallel([left, right]).commit()
tolerant = create_workflow("tolerant").parallel([broken_branch, right], allow_failure=True).commit()


@create_step("approve", resume_schema=Answer)
async def approve(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        await ctx.suspend({"question": "ok?"})
        return None
    await probe.body("approve-resumed")
    return {"approved": ctx.resume_data.ok}


gate = create_workflow("gate").then(approve).commit()


@create_step("ask-item", resume_schema=Answer)
async def ask_item(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        await ctx.suspend({"item": ctx.input_data})
        return None
    await probe.body(f"ask-item[{ctx.input_data}]")
    return {"item": ctx.input_data, "ok": ctx.resume_data.ok}


asking_each = create_workflow("asking-each").foreach(ask_item, concurrency=4).commit()

item_flow = create_workflow("item-flow").then(ask_item).commit()
nested_each = create_workflow("nested-each").foreach(item_flow, concurrency=4).commit()
squares_one = create_workflow("squares-one").foreach(square).commit()


@create_step("pair")
async def pair(ctx: StepContext) -> list[int]:
    return [len(str(ctx.input_data)), 7]


asking_rounds = (
    create_workflow("asking-rounds")
    .dountil(
        create_workflow("round").then(pair).foreach(ask_item).map(lambda ctx: len(ctx.input_data)).commit(),
        lambda ctx: ctx.iteration_count >= 2,
    )
    .commit()
)
asking_one = create_workflow("asking-one").foreach(ask_item).commit()


@create_step("ask-left", resume_schema=Answer)
async def ask_left(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        await ctx.suspend({"side": "left"})
        return None
    await probe.body("ask-left-resumed")
    return "L"


@create_step("ask-right", resume_schema=Answer)
async def ask_right(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        await ctx.suspend({"side": "right"})
        return None
    await probe.body("ask-right-resumed")
    return "R"


asking_sides = create_workflow("asking-sides").parallel([ask_left, ask_right]).commit()

inner = create_workflow("inner").then(approve).commit()
middle = create_workflow("middle").then(inner).commit()
outer = create_workflow("outer").then(middle).commit()


@create_step("ask-count", resume_schema=Answer)
async def ask_count(ctx: StepContext) -> Any:
    count = int(ctx.input_data["count"])
    if ctx.resume_data is None:
        await ctx.suspend({"count": count})
        return None
    await probe.body(f"ask-count[{count}]")
    return {"count": count + 1}


counting = create_workflow("counting").dountil(ask_count, lambda ctx: ctx.input_data["count"] >= 2).commit()


@create_step("remember-item")
async def remember_item(ctx: StepContext) -> int:
    ctx.set_state({f"seen-{ctx.input_data}": True})
    ctx.request_context[f"item-{ctx.input_data}"] = "done"
    await probe.body(f"remember-item[{ctx.input_data}]")
    return int(ctx.input_data) * 10


remembering_each = create_workflow("remembering-each").foreach(remember_item).commit()


@create_step("ask-and-remember")
async def ask_and_remember(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        ctx.set_state({"asked": True})
        ctx.request_context["asked"] = "yes"
        await probe.body("ask-and-remember")
        await ctx.suspend({"q": 1})
    return ctx.resume_data


@create_step("remember-slowly")
async def remember_slowly(ctx: StepContext) -> str:
    ctx.set_state({"slow": True})
    await probe.body("remember-slowly")
    return "slow"


remembering_sides = (
    create_workflow("remembering-sides").parallel([ask_and_remember, remember_slowly]).commit()
)


def _noting(name: str, state: dict[str, Any] | None = None) -> Any:
    async def execute(ctx: StepContext) -> Any:
        if state is not None:
            ctx.set_state(state)
        await probe.body(name)
        return ctx.input_data

    return create_step(name, execute=execute)


remembering_in_turn = (
    create_workflow("remembering-in-turn")
    .then(_noting("note-a", {"a": [1, 2]}))
    .then(_noting("pass-on"))
    .then(_noting("note-b", {"b": {"c": True}}))
    .then(_noting("last"))
    .commit()
)
"""Two steps set the state, two leave it as it is."""


@create_step("flag-context")
async def flag_context(ctx: StepContext) -> Any:
    ctx.request_context["n"] = True  # was 1, which Python's == takes for True
    await probe.body("flag-context")
    return ctx.input_data


flagging = create_workflow("flagging").then(flag_context).then(_noting("after-flag")).commit()
"""A step changes a request context value for one Python's `==` takes for the same."""


@create_step("add-one")
async def add_one(ctx: StepContext) -> int:
    await probe.body(f"add-one[{ctx.input_data}]")
    return int(ctx.input_data) + 1


to_three = create_workflow("to-three").dountil(add_one, lambda ctx: ctx.input_data % 3 == 0).commit()
to_six = create_workflow("to-six").dowhile(to_three, lambda ctx: ctx.input_data < 6).commit()


@create_step("after-nap")
async def after_nap(ctx: StepContext) -> Any:
    await probe.body("after-nap")
    return ctx.input_data


napping = create_workflow("napping").sleep(0.6).then(after_nap).commit()


@create_step("wobbly")
async def wobbly(ctx: StepContext) -> Any:
    await probe.body(f"wobbly[{ctx.retry_count}]")
    raise RuntimeError(f"attempt {ctx.retry_count} fails")


retried = create_workflow("retried", retry_config={"attempts": 2, "delay": 30}).then(wobbly).commit()
"""Each failed attempt waits 30 s before the next: the engine is stopped in that delay."""


@create_step("wobbly-item")
async def wobbly_item(ctx: StepContext) -> Any:
    await probe.body(f"wobbly-item[{ctx.input_data}]#{ctx.retry_count}")
    raise RuntimeError(f"attempt {ctx.retry_count} fails")


retried_each = (
    create_workflow("retried-each", retry_config={"attempts": 1, "delay": 30}).foreach(wobbly_item).commit()
)


@create_step("wobbly-resumed")
async def wobbly_resumed(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        await ctx.suspend({"q": "go?"})
        return None
    await probe.body(f"wobbly-resumed[{ctx.retry_count}]")
    raise RuntimeError(f"attempt {ctx.retry_count} fails")


retried_resumed = (
    create_workflow("retried-resumed", retry_config={"attempts": 2, "delay": 30})
    .then(wobbly_resumed)
    .commit()
)
"""A step that suspends, then fails every attempt after its resume, 30 s apart."""

retried_resumed_each = (
    create_workflow("retried-resumed-each", retry_config={"attempts": 2, "delay": 30})
    .foreach(wobbly_resumed)
    .commit()
)
"""The same step as a foreach's: each item suspends, then fails every attempt after its resume."""


@create_step("ask-first", resume_schema=Answer)
async def ask_first(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        await ctx.suspend({"q": "first"})
        return None
    await probe.body("ask-first")
    return {"first": ctx.resume_data.ok}


@create_step("ask-second", resume_schema=Answer)
async def ask_second(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        await ctx.suspend({"q": "second"})
        return None
    return {"second": ctx.resume_data.ok}


asking_twice = (
    create_workflow("asking-twice")
    .then(create_workflow("twice-inner").then(ask_first).then(ask_second).commit())
    .commit()
)

WORKFLOWS = [
    asking_twice,
    retried,
    retried_each,
    retried_resumed,
    retried_resumed_each,
    napping,
    to_six,
    remembering_each,
    remembering_sides,
    remembering_in_turn,
    flagging,
    squares,
    sequence,
    sides,
    tolerant,
    gate,
    asking_each,
    nested_each,
    squares_one,
    asking_one,
    asking_rounds,
    asking_sides,
    outer,
    counting,
]


@pytest.fixture
async def db(databases: Any, tmp_path: Path) -> str:
    """The test's database URL (an SQLite file, or a PostgreSQL database: see conftest)."""
    url: str = await databases.url_for(tmp_path / "runs.db")
    return url


@contextlib.asynccontextmanager
async def booted(
    url: str, workflows: Iterable[Workflow] = WORKFLOWS, **options: Any
) -> AsyncIterator[Engine]:
    """An engine on the database at `url` (with Engine `options`); leaving the block stops it
    the hard way.

    Leases are short, so on a shared database (PostgreSQL) the next engine takes over the
    stopped one's runs within a second, as a replica would after a crash."""
    store: Store = open_store(url)
    await store.open()
    try:
        engine = Engine(store, workflows, lease_seconds=0.5, claim_interval=0.05, **options)
        await engine.__aenter__()
        try:
            yield engine
        finally:
            await engine.aclose()
    finally:
        await store.close()


async def settled(engine: Engine, run_id: str, *, allow: Iterable[RunStatus] = ()) -> Run:
    """The run once it is terminal or suspended (polling the store)."""
    wanted = {RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.CANCELED, RunStatus.SUSPENDED, *allow}
    deadline = time.monotonic() + 10
    while True:
        run = await engine.get_run(run_id)
        if run.status in wanted:
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run.status}"
        await asyncio.sleep(0.01)


def results_per_step(run: Run) -> Counter[str]:
    return Counter(".".join(s.path) for s in run.steps)


async def engine_events(url: str, run_id: str) -> list[Event]:
    """Every event of the run in the store, as a Watch from the start reads them."""
    store: Store = open_store(url)
    await store.open()
    try:
        return await store.read_events(run_id, 0)
    finally:
        await store.close()


async def told(
    events: Awaitable[list[Event]], path: tuple[str, ...], kind: EventType = EventType.STEP_START
) -> int:
    """How many of `events` of type `kind` are about the step at `path`."""
    return sum(1 for event in await events if event.type is kind and event.step and event.step.path == path)


async def test_a_sleep_re_driven_after_a_stop_is_told_of_once(db: str) -> None:
    """A run stopped while it sleeps goes on sleeping until its stored wake time after the
    restart, and its log tells of the sleep once (before, a second STEP_WAITING)."""
    async with booted(db) as engine:
        run = await engine.start("napping", input_data={"n": 1})
        while (await engine.get_run(run.run_id)).status is not RunStatus.WAITING:
            await asyncio.sleep(0.01)
    async with booted(db) as engine:
        done = await settled(engine, run.run_id)
    assert done.status is RunStatus.SUCCESS and done.result == {"n": 1}
    nap = next(s.path for s in done.steps if s.path != ("after-nap",))
    assert await told(engine_events(db, run.run_id), nap, EventType.STEP_WAITING) == 1


async def test_a_foreach_items_retries_go_on_from_the_attempt_a_crash_left(db: str) -> None:
    """As a step's: each failed attempt of an item is committed on its row before the delay."""
    async with booted(db) as engine:
        run = await engine.start("retried-each", input_data=[7])
        await probe.wait_entered("wobbly-item[7]#0")
        await asyncio.sleep(0.2)  # attempt 0 failed: into the 30 s delay
    async with booted(db) as engine:  # attempt 1 runs at once, and is the last
        done = await settled(engine, run.run_id)
    assert done.status is RunStatus.FAILED and done.error is not None
    assert done.error.message == "attempt 1 fails"
    assert probe.ran == Counter({"wobbly-item[7]#0": 1, "wobbly-item[7]#1": 1})


# -- runs interrupted in a body ---------------------------------------------------------------------


async def test_retries_go_on_from_the_attempt_a_crash_left(db: str) -> None:
    """Each failed attempt is committed before the retry's delay. Before, a re-driven step
    started again at attempt 0 with its whole retry budget: an audit saw 9 executions of a
    step allowed 3, and 248 of ten steps allowed 40 under frequent kills."""
    async with booted(db) as engine:
        run = await engine.start("retried")
        await probe.wait_entered("wobbly[0]")
        await asyncio.sleep(0.2)  # attempt 0 failed: into the 30 s delay
    async with booted(db) as engine:  # attempt 1 runs at once, then its delay
        await probe.wait_entered("wobbly[1]")
        await asyncio.sleep(0.2)
    async with booted(db) as engine:
        done = await settled(engine, run.run_id)
    assert done.status is RunStatus.FAILED and done.error is not None
    assert done.error.message == "attempt 2 fails"
    assert probe.ran == Counter({"wobbly[0]": 1, "wobbly[1]": 1, "wobbly[2]": 1})
    (record,) = done.steps
    assert (record.status, record.attempt) == (StepStatus.FAILED, 2)


@pytest.mark.parametrize(
    ("workflow", "data", "index"), [("retried-resumed", None, None), ("retried-resumed-each", [7], 0)]
)
async def test_a_resumed_step_or_items_retries_go_on_from_the_attempt_a_crash_left(
    db: str, workflow: str, data: Any, index: int | None
) -> None:
    """As a step's first run. Before, a resumed step re-driven after a crash in its retries
    started again at attempt 0 with its whole retry budget (an audit's reading), and a resumed
    foreach item lost its accepted resume, ran again without it and suspended again."""
    async with booted(db) as engine:
        run = await engine.start(workflow, input_data=data, wait=True)
        assert run.status is RunStatus.SUSPENDED
        await engine.resume(run.run_id, for_each_index=index, resume_data={"go": True})
        await probe.wait_entered("wobbly-resumed[0]")
        await asyncio.sleep(0.2)  # attempt 0 failed: into the 30 s delay
    async with booted(db) as engine:  # attempt 1 runs at once, with the resume, then its delay
        await probe.wait_entered("wobbly-resumed[1]")
        await asyncio.sleep(0.2)
    async with booted(db) as engine:
        done = await settled(engine, run.run_id)
    assert done.status is RunStatus.FAILED and done.error is not None
    assert done.error.message == "attempt 2 fails"
    assert probe.ran == Counter({"wobbly-resumed[0]": 1, "wobbly-resumed[1]": 1, "wobbly-resumed[2]": 1})
    (record,) = done.steps
    assert record.status is StepStatus.FAILED


async def test_a_sequence_reruns_only_the_step_in_flight(db: str) -> None:
    probe.hold = {"second"}
    async with booted(db) as engine:
        run = await engine.start("sequence", input_data={"n": 4})
        await probe.wait_entered("second")
    probe.hold.clear()
    async with booted(db) as engine:
        done = await settled(engine, run.run_id)
    assert done.status is RunStatus.SUCCESS and done.result == 50
    assert probe.ran == Counter({"first": 1, "second": 2})


async def test_a_foreach_keeps_committed_items_and_runs_the_rest(db: str) -> None:
    """Issue 11 #0: the recovered foreach once finished with [] and a wrong run result."""
    probe.hold = {"square[3]", "square[4]"}
    async with booted(db) as engine:
        run = await engine.start("squares", input_data={"n": 6})
        await probe.wait_entered("square[3]", "square[4]")
        while True:  # item 5 (not held) is committed on its own, however loaded the machine
            stored = await engine.get_run(run.run_id)
            foreach = next(s for s in stored.steps if s.path == ("square",))
            if 5 in {i.index for i in foreach.foreach_items}:
                break
            await asyncio.sleep(0.01)
    assert foreach.payload == [0, 1, 2, 3, 4, 5], "the foreach record keeps its items"
    assert {i.index for i in foreach.foreach_items if i.status is StepStatus.SUCCESS} >= {0}
    probe.hold.clear()
    async with booted(db) as engine:
        done = await settled(engine, run.run_id)
    assert done.status is RunStatus.SUCCESS
    assert done.result == {"n": sum(i * i for i in range(6))}
    square_record = next(s for s in done.steps if s.path == ("square",))
    assert square_record.output == [i * i for i in range(6)]
    committed_before = {i.index for i in foreach.foreach_items if i.status is StepStatus.SUCCESS}
    for index in range(6):
        expected = 1 if index in committed_before or index == 5 else 2
        assert probe.ran[f"square[{index}]"] == expected, (index, probe.ran)
    assert probe.ran["explode"] == 1 and probe.ran["collect"] == 1


async def test_a_foreach_one_at_a_time_reruns_only_the_item_in_flight(db: str) -> None:
    probe.hold = {"square[3]"}
    async with booted(db) as engine:
        run = await engine.start("squares-one", input_data=list(range(6)))
        await probe.wait_entered("square[3]")
        stored = await engine.get_run(run.run_id)
    [foreach] = stored.steps
    assert [(i.index, i.output) for i in foreach.foreach_items] == [(0, 0), (1, 1), (2, 4)]
    probe.hold.clear()
    async with booted(db) as engine:
        done = await settled(engine, run.run_id)
    assert done.status is RunStatus.SUCCESS and done.result == [i * i for i in range(6)]
    assert probe.ran == Counter({f"square[{i}]": 2 if i == 3 else 1 for i in range(6)})


async def test_a_foreach_record_an_early_version_overwrote_is_driven_again_from_its_input(db: str) -> None:
    """The earliest versions overwrote a running foreach's record with an item's (no items, no
    payload: `{"path": ["square"], "status": "running", "position": 0}`), and a server upgraded
    from one failed that run for good (RecoveryError, audit). Its items are the step's input
    again: they run again, as bodies in flight after a crash do."""
    probe.hold = {"square[2]"}
    async with booted(db) as engine:
        run = await engine.start("squares-one", input_data=list(range(4)))
        await probe.wait_entered("square[2]")
        stored = await engine.get_run(run.run_id)
    [foreach] = stored.steps
    store = open_store(db)
    await store.open()
    try:
        overwritten = StepRecord(foreach.path, StepStatus.RUNNING, position=foreach.position)
        await store.write(RunWrite(run.run_id, steps=(overwritten,), clear_items=(foreach.path,)))
    finally:
        await store.close()
    probe.hold.clear()
    async with booted(db) as engine:
        done = await settled(engine, run.run_id)
    assert done.status is RunStatus.SUCCESS and done.result == [i * i for i in range(4)], done.error
    assert probe.ran == Counter({"square[0]": 2, "square[1]": 2, "square[2]": 2, "square[3]": 1})


asking_many = create_workflow("asking-many").foreach(ask_item, concurrency=200).commit()


async def sql(url: str, statement: str, *args: Any) -> list[tuple[Any, ...]]:
    """One statement on the test's database beside the store, as a hand edit would run it
    (`$n` parameters, `?n` on SQLite)."""
    if url.startswith("postgresql://"):
        conn = await asyncpg.connect(url)
        try:
            return [tuple(row) for row in await conn.fetch(statement, *args)]
        finally:
            await conn.close()
    with contextlib.closing(sqlite3.connect(url)) as conn, conn:
        return conn.execute(re.sub(r"\$(\d+)", r"?\1", statement), args).fetchall()


async def count_item_writes(url: str) -> None:
    """Count every foreach item row the store inserts or updates (in `item_writes`), with a
    trigger of the database itself: what the store writes, however it batches it."""
    await sql(url, "CREATE TABLE item_writes (n integer NOT NULL)")
    await sql(url, "INSERT INTO item_writes VALUES (0)")
    if url.startswith("postgresql://"):
        await sql(
            url,
            "CREATE FUNCTION count_item_write() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN UPDATE item_writes SET n = n + 1; RETURN NULL; END $$",
        )
        await sql(
            url,
            "CREATE TRIGGER item_written AFTER INSERT OR UPDATE ON foreach_items"
            " FOR EACH ROW EXECUTE FUNCTION count_item_write()",
        )
        return
    for event in ("INSERT", "UPDATE"):
        await sql(
            url,
            f"CREATE TRIGGER item_{event.lower()} AFTER {event} ON foreach_items"
            " BEGIN UPDATE item_writes SET n = n + 1; END",
        )


async def item_writes(url: str) -> int:
    [(count,)] = await sql(url, "SELECT n FROM item_writes")
    return int(count)


async def test_resuming_one_item_of_a_large_foreach_writes_that_items_rows_only(db: str) -> None:
    """A resume of one item of N wrote every item's row twice (the accepted resume on a record
    carrying all items, then each item the re-drive had loaded): O(N) per resume, O(N²) to
    resume them all (audit). Now the rows of the resumed item only, whatever N is."""
    async with booted(db, [asking_many]) as engine:
        run = await engine.start("asking-many", input_data=list(range(200)), wait=True)
        assert run.status is RunStatus.SUSPENDED and len(run.steps[0].foreach_items) == 200
        await count_item_writes(db)
        for resumed, index in enumerate((7, 150), start=1):
            before = await item_writes(db)
            after = await engine.resume(run.run_id, for_each_index=index, resume_data={"ok": True}, wait=True)
            # The accepted resume, then the item's outcome.
            assert await item_writes(db) - before <= 2, index
            assert after.status is RunStatus.SUSPENDED
            items = after.steps[0].foreach_items
            assert [i.index for i in items] == list(range(200))
            assert sum(1 for i in items if i.status is StepStatus.SUCCESS) == resumed
            assert items[index].status is StepStatus.SUCCESS
            assert items[index].output == {"item": index, "ok": True}
        with pytest.raises(StepNotSuspended):  # a second resume of the same item is refused
            await engine.resume(run.run_id, for_each_index=7, resume_data={"ok": True}, wait=True)
    assert probe.ran == Counter({"ask-item[7]": 1, "ask-item[150]": 1})


async def move_items_inline(url: str, run_id: str) -> None:
    """Store the run's foreach items inside its foreach record, and no item rows, as versions
    before item rows existed did (JSON as text on SQLite, bytea on PostgreSQL)."""
    [(record,)] = await sql(url, "SELECT record FROM steps WHERE run_id = $1", run_id)
    rows = await sql(url, "SELECT item FROM foreach_items WHERE run_id = $1 ORDER BY item_index", run_id)
    data = orjson.loads(record)
    data["foreach_items"] = [orjson.loads(item) for (item,) in rows]
    body = orjson.dumps(data)
    await sql(
        url,
        "UPDATE steps SET record = $2 WHERE run_id = $1",
        run_id,
        body if isinstance(record, bytes) else body.decode(),
    )
    await sql(url, "DELETE FROM foreach_items WHERE run_id = $1", run_id)


async def stored_items(url: str, run_id: str) -> tuple[bool, list[int]]:
    """Whether the run's foreach record holds items inline, and the indexes of its item rows."""
    [(record,)] = await sql(url, "SELECT record FROM steps WHERE run_id = $1", run_id)
    rows = await sql(
        url, "SELECT item_index FROM foreach_items WHERE run_id = $1 ORDER BY item_index", run_id
    )
    return "foreach_items" in orjson.loads(record), [index for (index,) in rows]


async def test_a_suspended_foreach_with_its_items_inline_resumes_and_moves_them_to_rows(db: str) -> None:
    async with booted(db) as engine:
        run = await engine.start("asking-each", input_data=[0, 1, 2], wait=True)
        assert [i.status for i in run.steps[0].foreach_items] == [StepStatus.SUSPENDED] * 3
    await move_items_inline(db, run.run_id)
    assert await stored_items(db, run.run_id) == (True, [])
    async with booted(db) as engine:
        after = await engine.resume(run.run_id, for_each_index=1, resume_data={"ok": True}, wait=True)
        assert after.status is RunStatus.SUSPENDED
        statuses = [i.status for i in after.steps[0].foreach_items]
        assert statuses == [StepStatus.SUSPENDED, StepStatus.SUCCESS, StepStatus.SUSPENDED]
    assert await stored_items(db, run.run_id) == (False, [0, 1, 2])
    async with booted(db) as engine:
        done = await engine.resume(run.run_id, resume_data={"ok": False}, wait=True)
    assert done.status is RunStatus.SUCCESS
    assert done.result == [{"item": 0, "ok": False}, {"item": 1, "ok": True}, {"item": 2, "ok": False}]
    assert probe.ran == Counter({"ask-item[0]": 1, "ask-item[1]": 1, "ask-item[2]": 1})


async def test_a_running_foreach_with_its_items_inline_goes_on_and_moves_them_to_rows(db: str) -> None:
    probe.hold = {"square[2]"}
    async with booted(db) as engine:
        run = await engine.start("squares-one", input_data=list(range(4)))
        await probe.wait_entered("square[2]")
    await move_items_inline(db, run.run_id)
    assert await stored_items(db, run.run_id) == (True, [])
    probe.hold.clear()
    async with booted(db) as engine:
        done = await settled(engine, run.run_id)
    assert done.status is RunStatus.SUCCESS and done.result == [i * i for i in range(4)], done.error
    assert probe.ran == Counter({"square[0]": 1, "square[1]": 1, "square[2]": 2, "square[3]": 1})
    assert await stored_items(db, run.run_id) == (False, [0, 1, 2, 3])


async def test_a_nested_workflow_re_driven_after_a_crash_records_its_next_suspension(db: str) -> None:
    """A crash while a resumed step inside a nested workflow ran: the re-drive suspended on
    the next step, but the nested workflow's record stayed `running` in a suspended run, with
    the first suspension's payload (audit). It is recorded suspended, with the new one."""
    probe.hold = {"ask-first"}
    async with booted(db) as engine:
        run = await engine.start("asking-twice", wait=True)
        assert run.status is RunStatus.SUSPENDED
        await engine.resume(run.run_id, step=["twice-inner", "ask-first"], resume_data={"ok": True})
        await probe.wait_entered("ask-first")
        async with asyncio.timeout(5):  # the resumed nested workflow's start is committed
            while True:
                stored = await engine.get_run(run.run_id)
                if next(s for s in stored.steps if s.path == ("twice-inner",)).status is StepStatus.RUNNING:
                    break
                await asyncio.sleep(0.01)
    probe.hold.clear()
    async with booted(db) as engine:
        after = await settled(engine, run.run_id)
    assert after.status is RunStatus.SUSPENDED and after.suspended == (("twice-inner", "ask-second"),)
    inner = next(s for s in after.steps if s.path == ("twice-inner",))
    assert inner.status is StepStatus.SUSPENDED and inner.suspend_payload == {"q": "second"}
    assert inner.suspended_at is not None and inner.resumed_at is not None
    assert inner.suspended_at > inner.resumed_at
    assert probe.ran["ask-first"] == 2


async def test_a_foreach_one_at_a_time_resumes_item_by_item_across_restarts(db: str) -> None:
    async with booted(db) as engine:
        run = await engine.start("asking-one", input_data=[0, 1, 2], wait=True)
        assert [i.status for i in run.steps[0].foreach_items] == [StepStatus.SUSPENDED]
        probe.hold = {"ask-item[1]"}
        await engine.resume(run.run_id, resume_data={"ok": True}, wait=True)
        await engine.resume(run.run_id, resume_data={"ok": True})  # item 1, held: the engine stops
        await probe.wait_entered("ask-item[1]")
    probe.hold.clear()
    async with booted(db) as engine:
        after = await settled(engine, run.run_id)
        assert after.status is RunStatus.SUSPENDED
        statuses = [i.status for i in after.steps[0].foreach_items]
        assert statuses == [StepStatus.SUCCESS, StepStatus.SUCCESS, StepStatus.SUSPENDED]
        assert after.resume_labels == {} and after.suspended == (("ask-item",),)
        done = await engine.resume(run.run_id, for_each_index=2, resume_data={"ok": False}, wait=True)
    assert done.status is RunStatus.SUCCESS
    assert done.result == [{"item": 0, "ok": True}, {"item": 1, "ok": True}, {"item": 2, "ok": False}]
    assert probe.ran == Counter({"ask-item[0]": 1, "ask-item[1]": 2, "ask-item[2]": 1})


async def test_a_foreach_in_a_loop_starts_over_in_each_iteration(db: str) -> None:
    async with booted(db) as engine:
        run = await engine.start("asking-rounds", input_data=5, wait=True)
        for asked in range(1, 5):
            assert run.status is RunStatus.SUSPENDED, asked
            [foreach] = [s for s in run.steps if s.path[-1] == "ask-item"]
            assert len(foreach.foreach_items) == (asked - 1) % 2 + 1, "this iteration's items only"
            run = await engine.resume(run.run_id, resume_data={"ok": True}, wait=True)
    assert run.status is RunStatus.SUCCESS and run.result == 2
    assert probe.ran == Counter({"ask-item[1]": 2, "ask-item[7]": 2})


async def test_a_parallel_block_reruns_only_the_branch_in_flight(db: str) -> None:
    probe.hold = {"right"}
    async with booted(db) as engine:
        run = await engine.start("sides")
        await probe.wait_entered("left", "right")
        await asyncio.sleep(0.1)  # the left branch's result is committed by the start flush
        stored = await engine.get_run(run.run_id)
    assert any(s.path == ("left",) and s.status is StepStatus.SUCCESS for s in stored.steps)
    probe.hold.clear()
    async with booted(db) as engine:
        done = await settled(engine, run.run_id)
    assert done.result == {"left": "L", "right": "R"}
    assert probe.ran == Counter({"left": 1, "right": 2})


async def test_a_committed_failure_is_not_run_again(db: str) -> None:
    probe.hold = {"right"}
    async with booted(db) as engine:
        run = await engine.start("tolerant")
        await probe.wait_entered("broken-branch", "right")
        await asyncio.sleep(0.1)
        stored = await engine.get_run(run.run_id)
    assert any(s.path == ("broken-branch",) and s.status is StepStatus.FAILED for s in stored.steps)
    probe.hold.clear()
    async with booted(db) as engine:
        done = await settled(engine, run.run_id)
    assert done.status is RunStatus.SUCCESS and done.result == {"broken-branch": None, "right": "R"}
    assert probe.ran["broken-branch"] == 1
    assert results_per_step(done)["broken-branch"] == 1


async def test_what_a_finished_item_set_survives_a_crash_before_the_foreach_ends(db: str) -> None:
    probe.hold = {"remember-item[1]"}
    async with booted(db) as engine:
        run = await engine.start("remembering-each", input_data=[0, 1])
        await probe.wait_entered("remember-item[1]")  # item 0's outcome is committed first
    probe.hold.clear()
    async with booted(db) as engine:
        done = await settled(engine, run.run_id)
    assert done.status is RunStatus.SUCCESS and done.result == [0, 10]
    assert probe.ran == Counter({"remember-item[0]": 1, "remember-item[1]": 2})
    assert done.state == {"seen-0": True, "seen-1": True}
    assert done.request_context == {"item-0": "done", "item-1": "done"}


async def test_what_a_suspended_branch_set_survives_a_crash_of_its_sibling(db: str) -> None:
    probe.hold = {"remember-slowly"}
    async with booted(db) as engine:
        run = await engine.start("remembering-sides", input_data={})
        await probe.wait_entered("ask-and-remember", "remember-slowly")
        async with asyncio.timeout(10):  # the suspension is committed as soon as it happens
            while not any(
                s.path == ("ask-and-remember",) and s.status is StepStatus.SUSPENDED
                for s in (await engine.get_run(run.run_id)).steps
            ):
                await asyncio.sleep(0.01)
    probe.hold.clear()
    async with booted(db) as engine:
        suspended = await settled(engine, run.run_id)
        assert suspended.status is RunStatus.SUSPENDED
        assert probe.ran == Counter({"ask-and-remember": 1, "remember-slowly": 2})
        assert suspended.state == {"asked": True, "slow": True}
        assert suspended.request_context == {"asked": "yes"}
        done = await engine.resume(run.run_id, resume_data="go", wait=True)
    assert done.status is RunStatus.SUCCESS
    assert done.result == {"ask-and-remember": "go", "remember-slowly": "slow"}
    assert done.state == {"asked": True, "slow": True}


async def test_the_state_is_written_when_a_step_changed_it_and_survives_a_crash(db: str) -> None:
    """A step's change of the state is committed with its record (read back while the next
    body runs, and after a crash); a step that changed nothing does not write it again, nor
    does the settling commit."""
    probe.hold = {"last"}
    written: list[Any] = []
    async with booted(db) as engine:
        write = engine._store.write

        async def spy(change: RunWrite, **options: Any) -> Any:
            if "state" in change.patch:
                written.append(change.patch["state"])
            return await write(change, **options)

        engine._store.write = spy  # type: ignore[method-assign]
        run = await engine.start("remembering-in-turn", input_data={"x": 1})
        await probe.wait_entered("last")
        stored = await engine.get_run(run.run_id)
        assert stored.state == {"a": [1, 2], "b": {"c": True}}
        assert written == [{"a": [1, 2]}, {"a": [1, 2], "b": {"c": True}}]
    probe.hold.clear()
    async with booted(db) as engine:
        done = await settled(engine, run.run_id)
    assert done.status is RunStatus.SUCCESS and done.result == {"x": 1}
    assert done.state == {"a": [1, 2], "b": {"c": True}}
    assert probe.ran == Counter({"note-a": 1, "pass-on": 1, "note-b": 1, "last": 2})


async def test_a_request_context_value_changed_to_an_equal_python_value_is_written(db: str) -> None:
    """A body that changed a context value from 1 to true changed it in JSON, though not for
    Python's `==`: the step's commit writes it (before, only the settling commit did, so a
    crash between lost it)."""
    probe.hold = {"after-flag"}
    async with booted(db) as engine:
        run = await engine.start("flagging", input_data={"x": 1}, request_context={"n": 1})
        await probe.wait_entered("after-flag")
        stored = (await engine.get_run(run.run_id)).request_context
        assert stored == {"n": True} and stored["n"] is True  # `==` alone takes 1 for True
    probe.hold.clear()


async def test_a_loop_in_a_nested_loop_body_recovers_in_its_outer_iteration(db: str) -> None:
    """The next outer iteration drops the inner records of the one before in the commit of
    its start: a crash after it never brings the earlier iteration's records back."""
    probe.hold = {"add-one[4]"}
    async with booted(db) as engine:
        run = await engine.start("to-six", input_data=0)
        await probe.wait_entered("add-one[4]")
        await asyncio.sleep(0.1)  # the start of add-one[4] is committed
        stored = await engine.get_run(run.run_id)
    inner = next(s for s in stored.steps if s.path == ("to-three", "add-one"))
    assert (inner.payload, inner.iteration, inner.status) == (4, 2, StepStatus.RUNNING)
    probe.hold.clear()
    async with booted(db) as engine:
        done = await settled(engine, run.run_id)
    assert done.status is RunStatus.SUCCESS and done.result == 6
    assert probe.ran == Counter({f"add-one[{n}]": 2 if n == 4 else 1 for n in range(6)})


# -- accepted resumes interrupted in flight (issue 11 #1) ----------------------------------------------


async def test_a_resumed_step_in_flight_is_resumed_again(db: str) -> None:
    probe.hold = {"approve-resumed"}
    async with booted(db) as engine:
        run = await engine.start("gate", wait=True)
        assert run.status is RunStatus.SUSPENDED
        await engine.resume(run.run_id, resume_data={"ok": True}, request_id="r1")
        await probe.wait_entered("approve-resumed")
        await asyncio.sleep(0.1)  # the resumed start is committed
    probe.hold.clear()
    async with booted(db) as engine:
        done = await settled(engine, run.run_id)
        assert done.status is RunStatus.SUCCESS and done.result == {"approved": True}
        again = await engine.resume(run.run_id, resume_data={"ok": True}, request_id="r1")
        assert again.status is RunStatus.SUCCESS and again.result == {"approved": True}
    assert probe.ran["approve-resumed"] == 2


async def test_a_resume_accepted_just_before_the_stop_is_carried_out(db: str) -> None:
    async with booted(db) as engine:
        run = await engine.start("gate", wait=True)
        probe.hold = {"approve-resumed"}
        await engine.resume(run.run_id, resume_data={"ok": True})
        # stopped at once: the acceptance is committed, the body may not have started
    probe.hold.clear()
    async with booted(db) as engine:
        done = await settled(engine, run.run_id)
    assert done.status is RunStatus.SUCCESS and done.result == {"approved": True}


async def test_a_resumed_foreach_item_in_flight_is_resumed_again(db: str) -> None:
    async with booted(db) as engine:
        run = await engine.start("asking-each", input_data=[0, 1, 2], wait=True)
        assert run.status is RunStatus.SUSPENDED
        probe.hold = {"ask-item[1]"}
        await engine.resume(run.run_id, for_each_index=1, resume_data={"ok": True}, request_id="item1")
        await probe.wait_entered("ask-item[1]")
        await asyncio.sleep(0.1)
    probe.hold.clear()
    async with booted(db) as engine:
        after = await settled(engine, run.run_id)
        assert after.status is RunStatus.SUSPENDED
        [foreach] = [s for s in after.steps if s.path == ("ask-item",)]
        statuses = {i.index: i.status for i in foreach.foreach_items}
        assert statuses == {0: StepStatus.SUSPENDED, 1: StepStatus.SUCCESS, 2: StepStatus.SUSPENDED}
        repeat = await engine.resume(
            run.run_id, for_each_index=1, resume_data={"ok": True}, request_id="item1"
        )
        assert repeat.status is RunStatus.SUSPENDED
        for index in (0, 2):
            await engine.resume(run.run_id, for_each_index=index, resume_data={"ok": index == 0}, wait=True)
        done = await settled(engine, run.run_id)
    assert done.status is RunStatus.SUCCESS
    assert done.result == [
        {"item": 0, "ok": True},
        {"item": 1, "ok": True},
        {"item": 2, "ok": False},
    ]
    assert probe.ran == Counter({"ask-item[0]": 1, "ask-item[1]": 2, "ask-item[2]": 1})


async def test_a_resumed_parallel_branch_in_flight_is_resumed_again(db: str) -> None:
    async with booted(db) as engine:
        run = await engine.start("asking-sides", wait=True)
        assert set(run.suspended) == {("ask-left",), ("ask-right",)}
        probe.hold = {"ask-right-resumed"}
        await engine.resume(run.run_id, step=["ask-right"], resume_data={"ok": True})
        await probe.wait_entered("ask-right-resumed")
        await asyncio.sleep(0.1)
    probe.hold.clear()
    async with booted(db) as engine:
        after = await settled(engine, run.run_id)
        assert after.status is RunStatus.SUSPENDED and after.suspended == (("ask-left",),)
        done = await engine.resume(run.run_id, step=["ask-left"], resume_data={"ok": True}, wait=True)
    assert done.status is RunStatus.SUCCESS and done.result == {"ask-left": "L", "ask-right": "R"}
    assert probe.ran == Counter({"ask-right-resumed": 2, "ask-left-resumed": 1})


async def test_a_resumed_nested_step_in_flight_is_resumed_again(db: str) -> None:
    async with booted(db) as engine:
        run = await engine.start("outer", wait=True)
        assert run.suspended == (("middle", "inner", "approve"),)
        probe.hold = {"approve-resumed"}
        await engine.resume(run.run_id, step=["middle", "inner", "approve"], resume_data={"ok": True})
        await probe.wait_entered("approve-resumed")
        await asyncio.sleep(0.1)
    probe.hold.clear()
    async with booted(db) as engine:
        done = await settled(engine, run.run_id)
    assert done.status is RunStatus.SUCCESS and done.result == {"approved": True}
    assert probe.ran["approve-resumed"] == 2
    # Started once and resumed once; the re-drive goes on inside without telling of it again.
    assert await told(engine_events(db, run.run_id), ("middle",)) == 2
    finished = {".".join(s.path): s.status for s in done.steps}
    assert finished == {
        "middle": StepStatus.SUCCESS,
        "middle.inner": StepStatus.SUCCESS,
        "middle.inner.approve": StepStatus.SUCCESS,
    }


async def test_a_resumed_loop_iteration_in_flight_is_resumed_again(db: str) -> None:
    async with booted(db) as engine:
        run = await engine.start("counting", input_data={"count": 0}, wait=True)
        assert run.status is RunStatus.SUSPENDED
        probe.hold = {"ask-count[0]"}
        await engine.resume(run.run_id, resume_data={"ok": True})
        await probe.wait_entered("ask-count[0]")
        await asyncio.sleep(0.1)
    probe.hold.clear()
    async with booted(db) as engine:
        after = await settled(engine, run.run_id)
        assert after.status is RunStatus.SUSPENDED, "iteration 2 asks again"
        [body] = after.steps
        assert body.iteration == 2 and body.suspend_payload == {"count": 1}
        done = await engine.resume(run.run_id, resume_data={"ok": True}, wait=True)
    assert done.status is RunStatus.SUCCESS and done.result == {"count": 2}
    assert probe.ran == Counter({"ask-count[0]": 2, "ask-count[1]": 1})


# -- foreach over a nested workflow whose items suspend (issue 11 #0b) -----------------------------


async def test_a_foreach_of_nested_workflows_resumes_item_by_item(db: str) -> None:
    async with booted(db) as engine:
        run = await engine.start("nested-each", input_data=[10, 20], wait=True)
        assert run.status is RunStatus.SUSPENDED
        assert set(run.suspended) == {("item-flow", "[0]", "ask-item"), ("item-flow", "[1]", "ask-item")}
        one = await engine.resume(
            run.run_id, step=["item-flow", "[1]", "ask-item"], resume_data={"ok": True}, wait=True
        )
        assert one.status is RunStatus.SUSPENDED
        assert one.suspended == (("item-flow", "[0]", "ask-item"),)
        since = [e async for batch in engine.follow(run.run_id, after=run.last_sequence, until_settled=True)
                 for e in batch]  # fmt: skip
        progress = [e.progress.current_index for e in since if e.progress is not None]
        assert progress == [1], "only the resumed item reports progress"
        probe.hold = {"ask-item[10]"}
        await engine.resume(run.run_id, for_each_index=0, resume_data={"ok": False})
        await probe.wait_entered("ask-item[10]")
        await asyncio.sleep(0.1)
    probe.hold.clear()
    async with booted(db) as engine:
        done = await settled(engine, run.run_id)
    assert done.status is RunStatus.SUCCESS
    assert done.result == [{"item": 10, "ok": False}, {"item": 20, "ok": True}]
    assert probe.ran == Counter({"ask-item[20]": 1, "ask-item[10]": 2})


async def test_a_resume_naming_no_item_of_a_foreach_of_workflows_resumes_every_item(db: str) -> None:
    """As a foreach of steps' (Mastra, B.5): before, it was refused (MULTIPLE_SUSPENDED_STEPS),
    so each item had to be resumed on its own. Every item's resume is accepted in one commit,
    and each is carried out after a crash."""
    probe.hold = {"ask-item[10]", "ask-item[20]", "ask-item[30]"}
    async with booted(db) as engine:
        run = await engine.start("nested-each", input_data=[10, 20, 30], wait=True)
        assert len(run.suspended) == 3
        await engine.resume(run.run_id, step=["item-flow"], resume_data={"ok": True})
        await probe.wait_entered("ask-item[10]", "ask-item[20]", "ask-item[30]")
    probe.hold.clear()
    async with booted(db) as engine:
        done = await settled(engine, run.run_id)
        assert done.status is RunStatus.SUCCESS
        assert done.result == [{"item": n, "ok": True} for n in (10, 20, 30)]
        again = await engine.start("nested-each", input_data=[40, 50], wait=True)
        assert (await engine.resume(again.run_id, resume_data={"ok": False}, wait=True)).result == [
            {"item": 40, "ok": False},
            {"item": 50, "ok": False},
        ]
    assert probe.ran == Counter({"ask-item[10]": 2, "ask-item[20]": 2, "ask-item[30]": 2, "ask-item[40]": 1,
                                 "ask-item[50]": 1})  # fmt: skip


# -- one bad run never stops the others (issue 11 #0c) ---------------------------------------------


class Strict(BaseModel):
    ok: bool
    reason: str


@create_step("approve", resume_schema=Strict)
async def approve_strict(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        await ctx.suspend({"question": "ok?"})
        return None
    return {"approved": ctx.resume_data.ok}


gate_v2 = create_workflow("gate").then(approve_strict).commit()


async def test_a_stored_resume_that_no_longer_validates_fails_its_run_alone(db: str) -> None:
    async with booted(db) as engine:
        bad = await engine.start("gate", wait=True)
        probe.hold = {"approve-resumed", "second"}
        await engine.resume(bad.run_id, resume_data={"ok": True})
        good = await engine.start("sequence", input_data={"n": 1})
        await probe.wait_entered("approve-resumed", "second")
        await asyncio.sleep(0.1)
    probe.hold.clear()
    # gate_v2 changed the step graph under the same version: a run that recorded the old
    # digest is not driven by it at all (tests/test_versions.py). Only a run stored before
    # digests existed (none recorded) reaches it, and its stored resume fails that run alone.
    store = open_store(db)
    await store.open()
    try:
        await store.write(RunWrite(bad.run_id, patch={"definition_digest": ""}))
    finally:
        await store.close()
    workflows = [w for w in WORKFLOWS if w.id != "gate"] + [gate_v2]
    async with booted(db, workflows) as engine:
        failed = await settled(engine, bad.run_id)
        ok = await settled(engine, good.run_id)
    assert ok.status is RunStatus.SUCCESS and ok.result == 20
    assert failed.status is RunStatus.FAILED
    assert failed.error is not None and failed.error.name == "ResumeValidationError"
    assert "reason" in failed.error.message


# -- resume checks (issue 11 #6) ----------------------------------------------------------------------


async def test_for_each_index_must_name_a_suspended_item_of_a_foreach(db: str) -> None:
    async with booted(db) as engine:
        run = await engine.start("asking-each", input_data=[0, 1], wait=True)
        with pytest.raises(InvalidArgument) as past_end:
            await engine.resume(run.run_id, for_each_index=2, resume_data={"ok": True})
        assert past_end.value.violations[0].field == "for_each_index"
        await engine.resume(run.run_id, for_each_index=0, resume_data={"ok": True}, wait=True)
        with pytest.raises(StepNotSuspended):
            await engine.resume(run.run_id, for_each_index=0, resume_data={"ok": True})
        gate_run = await engine.start("gate", wait=True)
        with pytest.raises(InvalidArgument) as not_foreach:
            await engine.resume(gate_run.run_id, for_each_index=0, resume_data={"ok": True})
        assert not_foreach.value.violations[0].field == "for_each_index"
        unchanged = await engine.get_run(gate_run.run_id)
        assert unchanged.status is RunStatus.SUSPENDED and unchanged.last_sequence == gate_run.last_sequence


# -- smaller rules of the engine (issue 11 #2, #7, #10, #13) ------------------------------------------


napper = create_workflow("napper").sleep(lambda ctx: ctx.input_data["seconds"]).commit()


@pytest.mark.parametrize("seconds", [float("nan"), float("inf"), 1e12])
async def test_a_sleep_that_cannot_be_stored_fails_its_step(db: str, seconds: float) -> None:
    async with booted(db, [napper]) as engine:
        done = await engine.start("napper", input_data={"seconds": seconds}, wait=True)
        assert done.status is RunStatus.FAILED
        assert done.error is not None and done.error.name == "SleepError"
        stored = await engine.get_run(done.run_id)
        assert stored.wake_at is None and all(s.wake_at is None for s in stored.steps)


async def test_a_request_id_alone_makes_start_idempotent(db: str) -> None:
    async with booted(db) as engine:
        first = await engine.start("sequence", input_data={"n": 1}, request_id="once", wait=True)
        again = await engine.start("sequence", input_data={"n": 1}, request_id="once", wait=True)
        with pytest.raises(RequestIdReused):  # other input: not a retry of that Start
            await engine.start("sequence", input_data={"n": 9}, request_id="once", wait=True)
        other = await engine.start("sequence", input_data={"n": 2}, request_id="twice", wait=True)
        runs, _ = await engine.list_runs(workflow_id="sequence")
    assert again.run_id == first.run_id and again.result == first.result == 20
    assert other.run_id != first.run_id
    assert len(runs) == 2 and probe.ran["first"] == 2


async def test_a_start_reusing_its_request_id_with_another_field_is_refused_naming_it(db: str) -> None:
    """A request id stands for the whole Start: one with the id of an earlier Start and
    another initial state, request context or timeout was answered with the first run, whose
    state, context and deadline were not the ones asked for (only the input was compared).
    The same request is still a retry, with another `wait` or trace id (each attempt's own)."""
    sent: dict[str, Any] = {
        "input_data": {"n": 1},
        "initial_state": {"step": "one"},
        "request_context": {"tenant": "t-1"},
        "run_timeout": 60.0,
    }
    async with booted(db) as engine:
        first = await engine.start("sequence", **sent, request_id="once", wait=True)
        again = await engine.start("sequence", **sent, request_id="once", trace_id="ab" * 16)
        assert (again.run_id, again.trace_id, again.deadline) == (
            first.run_id,
            first.trace_id,
            first.deadline,
        )
        for field, other, named in (
            ("input_data", {"n": 2}, "input_data"),
            ("initial_state", {"step": "two"}, "initial_state"),
            ("initial_state", None, "initial_state"),
            ("request_context", {"tenant": "t-2"}, "request_context"),
            ("request_context", None, "request_context"),
            ("run_timeout", 30.0, "timeout"),  # StartRequest's name for it
            ("run_timeout", None, "timeout"),
        ):
            with pytest.raises(RequestIdReused) as reused:
                await engine.start("sequence", **{**sent, field: other}, request_id="once")
            assert reused.value.metadata == {"run_id": first.run_id, "request_id": "once", "field": named}
        # Unset state and context are the empty ones they mean: the same request.
        bare = await engine.start("sequence", input_data={"n": 3}, request_id="bare", wait=True)
        same = await engine.start(
            "sequence", input_data={"n": 3}, initial_state={}, request_context={}, request_id="bare"
        )
        assert same.run_id == bare.run_id
    assert probe.ran["first"] == 2


def input_mark(request_id: str, input_data: Any) -> str:
    """The mark a Start with a request id left from commit e9c4c95 on (its request id and a
    digest of its input only), written out here as those versions made it."""
    body = orjson.dumps(input_data, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return f"{request_id}#input:{hashlib.blake2b(body, digest_size=16).hexdigest()}"


@pytest.mark.parametrize("old_form", ["plain", "input"])
async def test_a_start_marked_by_an_earlier_version_is_repeated_by_its_retry(db: str, old_form: str) -> None:
    """A retry that comes just after an upgrade is still one: a mark an earlier version left
    (the plain request id before commit e9c4c95, the id and a digest of the input since) is
    compared on the fields it recorded, and only those."""
    async with booted(db) as engine:  # as the earlier version: a run started under the derived id...
        run_id = request_run_id("sequence", "old-1", None)
        started = await engine.start("sequence", run_id=run_id, input_data={"n": 1}, wait=True)
        mark = "old-1" if old_form == "plain" else input_mark("old-1", {"n": 1})
        assert (await engine._store.write(RunWrite(run_id, requests=(("start", mark),)))).applied
        assert await engine._store.request_ids(run_id, "start") == [mark]  # ...and that mark only
    async with booted(db) as engine:  # upgraded
        again = await engine.start("sequence", input_data={"n": 1}, request_id="old-1", wait=True)
        assert (again.run_id, again.result) == (started.run_id, started.result)
        # Not recorded by either form: not compared.
        other_state = await engine.start(
            "sequence", input_data={"n": 1}, initial_state={"k": 1}, request_id="old-1"
        )
        assert other_state.run_id == run_id
        if old_form == "input":
            with pytest.raises(RequestIdReused) as reused:
                await engine.start("sequence", input_data={"n": 2}, request_id="old-1")
            assert reused.value.metadata["field"] == "input_data"
        else:
            assert (await engine.start("sequence", input_data={"n": 2}, request_id="old-1")).run_id == run_id
        assert await engine._store.request_ids(run_id, "start") == [mark]
    assert probe.ran["first"] == 1


async def test_a_fork_marked_by_an_earlier_version_is_repeated_by_its_retry(db: str) -> None:
    """Before ForkRun's mark had digests it was the plain request id: a retry after an upgrade
    finds the fork, and nothing recorded is compared."""
    async with booted(db) as engine:  # as the earlier version
        source = await engine.start("sequence", input_data={"n": 1}, wait=True)
        fork_id = fork_run_id(source.run_id, "fork-1")
        fork = await engine.fork(source.run_id, new_run_id=fork_id, step=["second"], input_data=5, wait=True)
        assert (await engine._store.write(RunWrite(fork_id, requests=(("fork", "fork-1"),)))).applied
    async with booted(db) as engine:  # upgraded
        again = await engine.fork(source.run_id, step=["second"], input_data=5, request_id="fork-1")
        assert (again.run_id, again.last_sequence) == (fork.run_id, fork.last_sequence)
        assert await engine._store.request_ids(fork_id, "fork") == ["fork-1"]
    assert probe.ran["second"] == 2  # the run's, and the fork's once


async def test_a_resume_or_time_travel_keeps_the_plain_request_id_earlier_versions_look_up(db: str) -> None:
    """Earlier versions tell a retried Resume or TimeTravel by looking its plain request id up
    exactly: a run resumed or time travelled by this version must still have that row, or a
    retry that lands on an older replica (a rolling upgrade, a rollback) would resume or time
    travel the run a second time. The mark with the digests is a row of its own kind beside
    it, and both go with the run when it is deleted."""
    async with booted(db) as engine:
        store = engine._store
        run = await engine.start("gate", wait=True)
        await engine.resume(run.run_id, resume_data={"ok": True}, request_id="r-new", wait=True)
        travelled = await engine.time_travel(run.run_id, step=["approve"], request_id="t-new", wait=True)
        assert travelled.status is RunStatus.SUSPENDED
        for kind, request_id, tag in (
            ("resume", "r-new", "#resume:"),
            ("time-travel", "t-new", "#time-travel:"),
        ):
            assert await store.has_request(run.run_id, kind, request_id)  # an older version's lookup
            assert await store.request_ids(run.run_id, kind) == [request_id]
            [mark] = await store.request_ids(run.run_id, f"{kind}-mark")
            assert mark.startswith(request_id + tag)
        await engine.delete_run(run.run_id)
        for kind in ("resume", "resume-mark", "time-travel", "time-travel-mark"):
            assert await store.request_ids(run.run_id, kind) == []


async def test_a_resume_marked_by_an_earlier_version_is_repeated_by_its_retry(db: str) -> None:
    """Before a Resume's mark had digests it was the plain request id alone: a retry after an
    upgrade is answered with the first outcome, and so is one with other resume data, as
    nothing was recorded to compare it with."""
    async with booted(db) as engine:  # as the earlier version: a resume and its plain request id
        run = await engine.start("gate", wait=True)
        resumed = await engine.resume(run.run_id, resume_data={"ok": True}, wait=True)
        assert (await engine._store.write(RunWrite(run.run_id, requests=(("resume", "old-r"),)))).applied
    async with booted(db) as engine:  # upgraded
        for data in ({"ok": True}, {"ok": False}):
            again = await engine.resume(run.run_id, resume_data=data, request_id="old-r", wait=True)
            assert (again.last_sequence, again.result) == (resumed.last_sequence, {"approved": True})
        assert await engine._store.request_ids(run.run_id, "resume-mark") == []
    assert probe.ran["approve-resumed"] == 1


async def test_a_time_travel_marked_by_an_earlier_version_is_repeated_by_its_retry(db: str) -> None:
    """As a Resume's: a TimeTravel recorded with its plain request id alone is repeated by a
    retry after an upgrade, whatever it sends, and the run is not time travelled again."""
    async with booted(db) as engine:  # as the earlier version
        source = await engine.start("sequence", input_data={"n": 1}, wait=True)
        travelled = await engine.time_travel(source.run_id, step=["second"], input_data=5, wait=True)
        assert (
            await engine._store.write(RunWrite(source.run_id, requests=(("time-travel", "old-t"),)))
        ).applied
    async with booted(db) as engine:  # upgraded
        for sent in (5, 6):
            again = await engine.time_travel(
                source.run_id, step=["second"], input_data=sent, request_id="old-t", wait=True
            )
            assert (again.last_sequence, again.result) == (travelled.last_sequence, travelled.result)
            assert again.travel is not None and again.travel.count == 1
        assert await engine._store.request_ids(source.run_id, "time-travel-mark") == []
    assert probe.ran["second"] == 2  # the run's, and the time travel's once


async def test_cancel_remembers_its_request_id(db: str) -> None:
    async with booted(db) as engine:
        run = await engine.start("gate", wait=True)
        canceled = await engine.cancel(run.run_id, request_id="stop-1")
        assert canceled.status is RunStatus.CANCELED
        repeat = await engine.cancel(run.run_id, request_id="stop-1")
        assert repeat.status is RunStatus.CANCELED and repeat.last_sequence == canceled.last_sequence
        probe.hold = {"second"}
        active = await engine.start("sequence", input_data={"n": 1})
        await probe.wait_entered("second")
        stopped = await engine.cancel(active.run_id, request_id="stop-2")
        assert stopped.status is RunStatus.CANCELED
        assert await engine._store.has_request(active.run_id, "cancel", "stop-2")


async def test_a_failed_step_is_logged_with_its_traceback(db: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="runservice.engine.driver")
    async with booted(db) as engine:
        done = await engine.start("tolerant", wait=True)
    assert done.status is RunStatus.SUCCESS
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.exc_info is not None and "always fails" in str(record.exc_info[1])
    assert record.__dict__["run_id"] == done.run_id and record.__dict__["step_path"] == "broken-branch"
    assert record.__dict__["attempt"] == 0
    assert done.steps[0].error is not None and "Traceback" not in done.steps[0].error.message


# -- what a step produces is bounded (issue 11 #3) -----------------------------------------------

BIG = "x" * (1024 * 1024 + 1)


@create_step("too-big")
async def too_big(ctx: StepContext) -> Any:
    kind = ctx.input_data["kind"]
    if kind == "output":
        return {"blob": BIG}
    if kind == "suspend":
        await ctx.suspend({"blob": BIG})
        return None
    if kind == "state":
        ctx.set_state({"blob": BIG})
    return {"blob": "x" * 900_000}


@create_step("more")
async def more(ctx: StepContext) -> Any:
    return {"blob": "y" * 900_000}


bulky = create_workflow("bulky").then(too_big).commit()
growing = create_workflow("growing").then(more)
for number in range(2, 9):
    growing = growing.then(clone_step(more, id=f"more-{number}"))
growing = growing.commit()


@pytest.mark.parametrize("kind", ["output", "suspend", "state"])
async def test_a_step_over_a_size_limit_fails_and_nothing_big_is_stored(db: str, kind: str) -> None:
    async with booted(db, [bulky]) as engine:
        done = await engine.start("bulky", input_data={"kind": kind}, wait=True)
        stored = await engine.get_run(done.run_id)
    assert done.status is RunStatus.FAILED
    assert done.error is not None and done.error.name == "PayloadTooLarge"
    assert BIG not in str(stored)


async def test_a_run_over_its_total_size_fails_at_the_step_that_crosses_it(db: str) -> None:
    async with booted(db, [growing]) as engine:
        done = await engine.start("growing", wait=True)
    assert done.status is RunStatus.FAILED and done.error is not None
    assert done.error.name == "PayloadTooLarge" and "run is" in done.error.message
    finished = [s for s in done.steps if s.status is StepStatus.SUCCESS]
    assert len(finished) == 6  # 6 x 900 kB fit in 6 MiB; the 7th would not
