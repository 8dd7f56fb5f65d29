"""Runs that end on the less-travelled paths, in process on SQLite and PostgreSQL: a Cancel that
meets the claim loop, a sleep beside a branch that ended, a foreach a Cancel or a deadline cuts,
and what the log of a canceled run tells a Watch. In each, the run's status agrees with its
steps and items, GetRun with the log, and no body runs on under a run that ended."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Databases

from runservice.engine import Engine
from runservice.errors import RunBelongsToOtherWorkflow, RunNotFound, StepNotSuspended, StorageUnavailable
from runservice.model import EventType, Run, RunStatus, StepStatus
from runservice.storage import RunWrite, Store, open_store
from runservice.storage.sqlite import SqliteStore
from runservice.workflow import StepContext, clone_step, create_step, create_workflow

pytestmark = pytest.mark.timeout(60)

UNFINISHED = {StepStatus.RUNNING, StepStatus.WAITING, StepStatus.SUSPENDED}
FINISHED: list[str] = []
"""Runs whose `slow` body ran to its end."""


@create_step("ask")
async def ask(ctx: StepContext) -> Any:
    if ctx.resume_data is not None:
        return {"answer": ctx.resume_data}
    return await ctx.suspend({"question": 1})


@create_step("item")
async def item(ctx: StepContext) -> Any:
    """A negative item suspends; any other takes 30 s."""
    if ctx.resume_data is not None:
        return ctx.input_data
    if ctx.input_data < 0:
        return await ctx.suspend({"why": ctx.input_data})
    await asyncio.sleep(30)
    return ctx.input_data


@create_step("item-ask")
async def item_ask(ctx: StepContext) -> Any:
    if ctx.resume_data is not None:
        return ctx.input_data
    return await ctx.suspend({"item": ctx.input_data})


@create_step("quick")
async def quick(ctx: StepContext) -> Any:
    return {"n": 1}


@create_step("slow")
async def slow(ctx: StepContext) -> Any:
    await asyncio.sleep(3)
    FINISHED.append(ctx.run_id)
    return {"slow": True}


each = create_workflow("each").foreach(item, concurrency=2).commit()
each_ask = create_workflow("each-ask").foreach(item_ask, concurrency=2).commit()
approval = create_workflow("approval").then(ask).commit()
napper = create_workflow("napper").sleep(30).then(quick).commit()
nap_beside = create_workflow("nap-beside").parallel([napper, clone_step(quick, id="beside")]).commit()
quick_alone = create_workflow("quick-alone").then(clone_step(quick, id="alone")).commit()
timed_inner = create_workflow("timed-inner", timeout=0.5).then(ask).commit()
woken = create_workflow("woken").parallel([timed_inner], allow_failure=True).then(slow).commit()

EVENTS: dict[str, asyncio.Event] = {}


@create_step("think-then-ask")
async def think_then_ask(ctx: StepContext) -> Any:
    if ctx.resume_data is not None:
        return {"answer": ctx.resume_data}
    EVENTS["entered"].set()
    await EVENTS["go_on"].wait()
    return await ctx.suspend({"question": 1})


@create_step("ends-during-the-commit")
async def ends_during_the_commit(ctx: StepContext) -> Any:
    await EVENTS["sleep_committing"].wait()
    return {"beside": True}


asker = create_workflow("asker").then(think_then_ask).commit()
late_napper = create_workflow("late-napper").then(clone_step(quick, id="first")).sleep(30).then(quick)
late_napper = late_napper.commit()
nap_after = create_workflow("nap-after").parallel([ends_during_the_commit, late_napper]).commit()

RESUMED: list[tuple[str, str, Any]] = []
"""(run id, step id, resume data) of every resumed body that ran."""


@create_step("counted-ask")
async def counted_ask(ctx: StepContext) -> Any:
    if ctx.resume_data is None:
        return await ctx.suspend({"question": 1})
    RESUMED.append((ctx.run_id, "ask", ctx.resume_data))
    return {"answer": ctx.resume_data}


two_asks = (
    create_workflow("two-asks")
    .parallel([clone_step(counted_ask, id="ask-a"), clone_step(counted_ask, id="ask-b")])
    .commit()
)

CONDITIONS: list[tuple[str, str]] = []
"""(what, how it ended) of every slow condition or duration function that was called."""


def thinking(what: str, answer: Any) -> Callable[[Any], Any]:
    """A condition or a sleep's duration that takes 30 s to decide (a remote check)."""

    async def decide(ctx: Any) -> Any:
        CONDITIONS.append((what, "asked"))
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            CONDITIONS.append((what, "cancelled" if ctx.abort_signal.is_set() else "cancelled, no abort"))
            raise
        CONDITIONS.append((what, "answered"))
        return answer

    return decide


slow_loop = create_workflow("slow-loop").dowhile(quick, thinking("loop", True)).commit()
slow_branch = (
    create_workflow("slow-branch")
    .branch([(thinking("branch", True), clone_step(quick, id="chosen"))])
    .commit()
)
slow_sleep = create_workflow("slow-sleep").sleep(thinking("sleep", 0.0)).then(quick).commit()

WORKFLOWS = [
    each,
    each_ask,
    approval,
    nap_beside,
    quick_alone,
    woken,
    asker,
    nap_after,
    two_asks,
    napper,
    slow_loop,
    slow_branch,
    slow_sleep,
]


@pytest.fixture
async def store(databases: Databases, tmp_path: Path) -> AsyncIterator[Store]:
    opened = open_store(await databases.url_for(tmp_path / "runs.db"))
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def until(engine: Engine, run_id: str, check: Callable[[Run], bool], limit: float = 10) -> Run:
    async with asyncio.timeout(limit):
        while not check(run := await engine.get_run(run_id)):
            await asyncio.sleep(0.02)
    return run


def record(run: Run, *path: str) -> Any:
    return next(s for s in run.steps if s.path == path)


def items_of(run: Run, step: str) -> list[StepStatus]:
    return [i.status for i in record(run, step).foreach_items]


def some_item_suspended(run: Run) -> bool:
    return any(i.status is StepStatus.SUSPENDED for s in run.steps for i in s.foreach_items)


CANCELING: contextvars.ContextVar[bool] = contextvars.ContextVar("canceling", default=False)


async def test_a_cancel_that_read_the_run_before_the_claim_loop_woke_it_stops_the_drive(
    store: Store,
) -> None:
    """The Cancel reads the run suspended; before it writes, the claim loop wakes the run (a
    nested workflow's deadline passed) and drives it on. The Cancel must stop that drive, not
    write over it: before, the run read canceled while `slow` ran to its end, running for ever
    in the record."""
    async with Engine(store, WORKFLOWS, claim_interval=0.1) as engine:
        run = await engine.start("woken", run_id="race", wait=True)
        assert run.status is RunStatus.SUSPENDED
        load = engine._load
        held = False

        async def stale_load(*args: Any, **kwargs: Any) -> Run:
            nonlocal held
            read = await load(*args, **kwargs)
            if CANCELING.get() and not held:  # the Cancel's read, held until the drive went on
                held = True
                await until(engine, "race", lambda r: any(s.path == ("slow",) for s in r.steps))
            return read

        engine._load = stale_load  # type: ignore[method-assign]
        CANCELING.set(True)
        canceled = await engine.cancel("race")
        CANCELING.set(False)
        await asyncio.sleep(3.5)  # past the end `slow` would have reached
        final = await engine.get_run("race")
    assert "race" not in FINISHED  # Cancel stops real work
    for read in (canceled, final):
        assert read.status is RunStatus.CANCELED
        assert [s.key for s in read.steps if s.status in UNFINISHED] == []
        # What the drive recorded before it stopped stays: the nested workflow timed out.
        assert record(read, "timed-inner").status is StepStatus.FAILED
        assert record(read, "slow").status is StepStatus.CANCELED


async def test_a_sleep_beside_a_branch_that_ended_leaves_the_run_waiting_and_its_room_free(
    store: Store,
) -> None:
    async with Engine(store, WORKFLOWS, max_active_runs=1) as engine:
        await engine.start("nap-beside", run_id="napping", input_data={})
        run = await until(engine, "napping", lambda r: any(s.key == "beside" for s in r.steps))
        run = await until(engine, "napping", lambda r: r.status is RunStatus.WAITING)
        assert [(s.key, s.status) for s in run.steps] == [
            ("napper", StepStatus.RUNNING),
            ("napper.sleep_1", StepStatus.WAITING),
            ("beside", StepStatus.SUCCESS),
        ]
        waiting, _ = await engine.list_runs(workflow_id="nap-beside", statuses=[RunStatus.WAITING])
        assert [r.run_id for r in waiting] == ["napping"]
        # The one run of room is free: another run goes on at once, not after the 30 s nap.
        await engine.start("quick-alone", run_id="next", input_data={})
        await until(engine, "next", lambda r: r.status is RunStatus.SUCCESS, limit=5)


@pytest.mark.parametrize("workflow", ["slow-loop", "slow-branch", "slow-sleep"])
async def test_a_cancel_stops_a_condition_or_a_sleeps_duration_that_is_deciding(
    store: Store, workflow: str
) -> None:
    """A loop's or a branch's condition and a sleep's duration function are user code that may
    take long (a remote check): a Cancel cancels them as it cancels a body (`abort_signal` set),
    and nothing starts after it. Before, only bodies were cancelled: the Cancel waited its
    grace (10 s), answered `running`, and the run went on until the condition returned, a
    branch it chose logging a start after the Cancel (cancel audit)."""
    what = workflow.removeprefix("slow-")
    async with Engine(store, WORKFLOWS, cancel_grace=5.0) as engine:
        await engine.start(workflow, run_id=workflow, input_data={})
        async with asyncio.timeout(10):
            while (what, "asked") not in CONDITIONS:
                await asyncio.sleep(0.02)
        async with asyncio.timeout(2):  # well within the grace: not its end
            canceled = await engine.cancel(workflow)
        assert canceled.status is RunStatus.CANCELED, canceled.error
        assert (what, "cancelled") in CONDITIONS and (what, "answered") not in CONDITIONS
        events = await store.read_events(workflow, 0)
        started = [e.step.path for e in events if e.type is EventType.STEP_START and e.step is not None]
        assert started == ([("quick",)] if what == "loop" else [])  # none after the Cancel
        assert not [s for s in (await engine.get_run(workflow)).steps if s.status in UNFINISHED]


async def test_a_cancel_of_a_driven_foreach_cancels_its_suspended_items(store: Store) -> None:
    async with Engine(store, WORKFLOWS) as engine:
        await engine.start("each", run_id="driven", input_data=[-1, 5])
        await until(engine, "driven", some_item_suspended)
        canceled = await engine.cancel("driven")
        again = await engine.get_run("driven")
    for read in (canceled, again):
        assert read.status is RunStatus.CANCELED
        assert items_of(read, "item") == [StepStatus.CANCELED, StepStatus.CANCELED]


async def test_a_deadline_that_cuts_a_driven_foreach_cancels_its_suspended_items(store: Store) -> None:
    async with Engine(store, WORKFLOWS, claim_interval=0.1) as engine:
        await engine.start("each", run_id="cut", input_data=[-1, 5], run_timeout=0.5)
        done = await until(engine, "cut", lambda r: r.status is RunStatus.FAILED)
    assert items_of(done, "item") == [StepStatus.CANCELED, StepStatus.CANCELED]


async def test_a_suspended_foreach_past_its_deadline_cancels_its_items(store: Store) -> None:
    async with Engine(store, WORKFLOWS, claim_interval=0.1) as engine:
        run = await engine.start("each-ask", run_id="late", input_data=[1, 2], run_timeout=0.5, wait=True)
        assert run.status is RunStatus.SUSPENDED
        done = await until(engine, "late", lambda r: r.status is RunStatus.FAILED)
    assert record(done, "item-ask").status is StepStatus.CANCELED
    assert items_of(done, "item-ask") == [StepStatus.CANCELED, StepStatus.CANCELED]


async def test_the_log_of_a_canceled_suspended_run_tells_its_steps_end(store: Store) -> None:
    async with Engine(store, WORKFLOWS) as engine:
        run = await engine.start("approval", run_id="asked", wait=True)
        assert run.status is RunStatus.SUSPENDED
        canceled = await engine.cancel("asked")
        assert [s.status for s in canceled.steps] == [StepStatus.CANCELED]
        # What Watch(include_workflow_state) sends with the last event: the state the log builds.
        state = await engine.workflow_state_at("asked", canceled.last_sequence)
        events = await store.read_events("asked", after=0)
    assert state.status is RunStatus.CANCELED
    assert [s.status for s in state.steps] == [StepStatus.CANCELED]
    assert [e.type for e in events][-3:] == [
        EventType.STEP_RESULT,
        EventType.WORKFLOW_CANCELED,
        EventType.WORKFLOW_FINISH,
    ]
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))


async def test_a_cancel_that_fails_after_its_claim_leaves_the_run_free(store: Store) -> None:
    """The Cancel's claim holds nothing once made: if the cancel itself fails (the database went
    away between the two writes), a Resume takes the run at once rather than RUN_CLAIMED until a
    restart (on SQLite a claim's lease never ends)."""
    async with Engine(store, WORKFLOWS) as engine:
        run = await engine.start("approval", run_id="kept", wait=True)
        assert run.status is RunStatus.SUSPENDED

        async def failing(*args: Any, **kwargs: Any) -> Any:
            raise StorageUnavailable("the database went away")

        engine._cancel_idle = failing  # type: ignore[method-assign]
        with pytest.raises(StorageUnavailable):
            await engine.cancel("kept")
        resumed = await asyncio.wait_for(engine.resume("kept", resume_data="yes", wait=True), 5)
    assert resumed.status is RunStatus.SUCCESS


async def test_a_body_that_ends_while_a_sleep_is_committed_leaves_the_run_waiting(store: Store) -> None:
    """The sleep decides `running` (a sibling body runs), and that body ends while the sleep's
    commit is in flight: the run must still rest, not hold its room for the whole sleep."""
    EVENTS["sleep_committing"] = asyncio.Event()
    write = store.write

    async def slow_sleep_commit(change: RunWrite, *, durable: bool = True) -> Any:
        if any(e.type is EventType.STEP_WAITING for e in change.events):
            EVENTS["sleep_committing"].set()
            await asyncio.sleep(0.3)  # a commit that takes a while (an fsync under load)
        return await write(change, durable=durable)

    store.write = slow_sleep_commit  # type: ignore[method-assign]
    async with Engine(store, WORKFLOWS, max_active_runs=1) as engine:
        await engine.start("nap-after", run_id="napping", input_data={})
        run = await until(engine, "napping", lambda r: r.status is RunStatus.WAITING)
        assert record(run, "ends-during-the-commit").status is StepStatus.SUCCESS
        await engine.start("quick-alone", run_id="next", input_data={})
        await until(engine, "next", lambda r: r.status is RunStatus.SUCCESS, limit=5)


def replica(store: Store, name: str) -> Engine:
    # A 6 s lease: heartbeats every 2 s, as in production (a third of the lease).
    return Engine(store, WORKFLOWS, owner=name, lease_seconds=6.0, claim_interval=0.05, cancel_grace=1.0)


@contextlib.asynccontextmanager
async def two_replicas(store: Store) -> AsyncIterator[tuple[Engine, Engine]]:
    """Replicas "a" and "b" on `store`, as on PostgreSQL (SQLite's store told it is shared:
    leases and heartbeats)."""
    if isinstance(store, SqliteStore):
        store.exclusive = False
    async with replica(store, "a") as a, replica(store, "b") as b:
        yield a, b


async def test_a_cancel_taken_elsewhere_of_a_run_that_then_suspends_cancels_it(store: Store) -> None:
    """Replica B asks A (through the store) to stop the run A drives; A's step suspends before
    A's heartbeat reads the ask, and A's settling commit clears it. B cancels the run then: it
    answered `suspended` before, and so did every retry with the same request id."""
    EVENTS["entered"], EVENTS["go_on"] = asyncio.Event(), asyncio.Event()
    async with two_replicas(store) as (a, b):
        await a.start("asker", run_id="asked-elsewhere")
        await asyncio.wait_for(EVENTS["entered"].wait(), 10)
        cancel = asyncio.create_task(b.cancel("asked-elsewhere", request_id="c1"))
        async with asyncio.timeout(5):  # B asked A through the store
            while not (await store.get_run("asked-elsewhere")).cancel_requested:  # type: ignore[union-attr]
                await asyncio.sleep(0.01)
        EVENTS["go_on"].set()  # A's step suspends before A's next heartbeat reads the ask
        canceled = await asyncio.wait_for(cancel, 30)
        await asyncio.sleep(2.5)  # past A's next heartbeat
        final = await a.get_run("asked-elsewhere")
        retried = await b.cancel("asked-elsewhere", request_id="c1")  # the client's retry
    assert canceled.status is RunStatus.CANCELED
    assert final.status is RunStatus.CANCELED
    assert retried.status is RunStatus.CANCELED and retried.last_sequence == final.last_sequence


READING: contextvars.ContextVar[bool] = contextvars.ContextVar("reading", default=False)


@contextlib.contextmanager
def reads_held(engine: Engine, meanwhile: Callable[[], Any]) -> Iterator[None]:
    """In the block, `engine`'s first read of a run waits for `meanwhile()` (another replica's
    whole change of the run) before it returns what it read."""
    load = engine._load

    async def stale_load(*args: Any, **kwargs: Any) -> Run:
        read = await load(*args, **kwargs)
        if READING.get():
            READING.set(False)  # the first read only: the next reads what is stored
            await meanwhile()
        return read

    engine._load = stale_load  # type: ignore[method-assign]
    READING.set(True)
    try:
        yield
    finally:
        READING.set(False)
        engine._load = load  # type: ignore[method-assign]


async def test_a_resume_read_before_another_replicas_resume_of_the_same_step_is_refused(
    store: Store,
) -> None:
    """Replica A reads the run for a Resume of `ask-a`; B resumes `ask-a` and the run suspends
    again (on `ask-b`) before A writes. A's write found the status it expected and applied:
    both Resumes were answered OK and the body ran twice (a chaos audit). Now A's write finds
    the run changed, A reads it again, and `ask-a` is no longer suspended."""
    RESUMED.clear()
    async with two_replicas(store) as (a, b):
        run = await a.start("two-asks", run_id="asked-twice", wait=True)
        assert run.status is RunStatus.SUSPENDED

        async def b_resumes() -> None:
            done = await b.resume("asked-twice", step=["ask-a"], resume_data="from b", wait=True)
            assert done.status is RunStatus.SUSPENDED and done.suspended == (("ask-b",),)

        with reads_held(a, b_resumes), pytest.raises(StepNotSuspended):
            await a.resume("asked-twice", step=["ask-a"], resume_data="from a", wait=True)
        final = await a.get_run("asked-twice")
    assert RESUMED == [("asked-twice", "ask", "from b")]
    assert final.status is RunStatus.SUSPENDED and final.suspended == (("ask-b",),)
    assert record(final, "ask-a").output == {"answer": "from b"}


async def test_a_time_travel_read_before_another_replicas_resume_plans_from_the_run_as_it_is(
    store: Store,
) -> None:
    """Replica A reads the run for a time travel to `ask-b`; B resumes `ask-a` meanwhile. A's
    write applied on the records it had read: the run listed `ask-a` suspended with a `success`
    record, and a Resume of it was then accepted and ran nothing (a chaos audit)."""
    RESUMED.clear()
    async with two_replicas(store) as (a, b):
        run = await a.start("two-asks", run_id="travelled", wait=True)
        assert run.status is RunStatus.SUSPENDED

        async def b_resumes() -> None:
            await b.resume("travelled", step=["ask-a"], resume_data="from b", wait=True)

        with reads_held(a, b_resumes):
            travelled = await a.time_travel("travelled", step=["ask-b"], wait=True)
        assert travelled.status is RunStatus.SUSPENDED and travelled.suspended == (("ask-b",),)
        assert record(travelled, "ask-a").status is StepStatus.SUCCESS
        with pytest.raises(StepNotSuspended):
            await b.resume("travelled", step=["ask-a"], resume_data="again", wait=True)
    assert RESUMED == [("travelled", "ask", "from b")]


async def test_a_resume_read_before_the_run_was_deleted_and_made_anew_applies_to_the_new_run_as_it_is(
    store: Store,
) -> None:
    """Replica A reads the run for a Resume; B deletes it and starts a new run under its id,
    which reaches the same sequence. A's write applied the old run's records and request
    context to the new run (a review). Now A reads the new run again and resumes it as it is."""
    RESUMED.clear()
    async with two_replicas(store) as (a, b):
        old = await a.start("two-asks", run_id="reborn", request_context={"gen": 1}, wait=True)
        assert old.status is RunStatus.SUSPENDED

        async def b_makes_it_anew() -> None:
            await b.delete_run("reborn")
            new = await b.start("two-asks", run_id="reborn", request_context={"gen": 2}, wait=True)
            assert new.status is RunStatus.SUSPENDED and new.last_sequence == old.last_sequence

        with reads_held(a, b_makes_it_anew):
            await a.resume("reborn", step=["ask-a"], resume_data="from a", wait=True)
        final = await a.get_run("reborn")
    assert final.request_context == {"gen": 2}
    assert record(final, "ask-a").started_at >= final.created_at
    assert RESUMED == [("reborn", "ask", "from a")]


async def test_a_resume_past_the_deadline_read_before_a_time_travel_elsewhere_resumes_the_new_execution(
    store: Store,
) -> None:
    """Replica A reads a run past its deadline for a Resume, and goes to end it; B's time travel
    meanwhile made it a new execution, with no deadline, which suspended again. A's write, on
    the status only, failed that execution with the old deadline after B had answered
    `suspended` (a chaos audit). Now A reads the run again, and resumes it as it is."""
    if isinstance(store, SqliteStore):
        store.exclusive = False
    RESUMED.clear()
    # No claim loop turn meanwhile: it would end the run past its deadline itself.
    options: dict[str, Any] = dict(lease_seconds=6.0, claim_interval=60.0, cancel_grace=1.0)
    async with (
        Engine(store, WORKFLOWS, owner="a", **options) as a,
        Engine(store, WORKFLOWS, owner="b", **options) as b,
    ):
        run = await a.start("two-asks", run_id="late", run_timeout=0.3, wait=True)
        assert run.status is RunStatus.SUSPENDED
        await asyncio.sleep(0.4)  # past its deadline

        async def b_travels() -> None:
            travelled = await b.time_travel("late", step=["ask-a"], wait=True)
            assert travelled.status is RunStatus.SUSPENDED and travelled.deadline is None

        with reads_held(a, b_travels):
            done = await a.resume("late", step=["ask-a"], resume_data="from a", wait=True)
        final = await a.get_run("late")
    assert done.status is RunStatus.SUSPENDED and done.suspended == (("ask-b",),)
    assert final.status is RunStatus.SUSPENDED and final.error is None
    assert RESUMED == [("late", "ask", "from a")]


@pytest.mark.parametrize("call", ["resume", "delete"])
async def test_a_resume_or_a_delete_of_a_run_another_replica_deleted_meanwhile_is_run_not_found(
    store: Store, call: str
) -> None:
    """Each read the run, then found it gone when it wrote: the Resume answered "not suspended
    (status canceled)", the second delete "is running; cancel it first" (a chaos audit)."""
    async with two_replicas(store) as (a, b):
        assert (await a.start("two-asks", run_id="gone", wait=True)).status is RunStatus.SUSPENDED

        async def b_deletes() -> None:
            await b.delete_run("gone")

        with reads_held(a, b_deletes), pytest.raises(RunNotFound):
            if call == "resume":
                await a.resume("gone", step=["ask-a"], resume_data="late", wait=True)
            else:
                await a.delete_run("gone")


async def test_a_delete_read_before_the_run_was_made_anew_leaves_the_new_run(store: Store) -> None:
    """Replica A reads the run to delete it; B deletes it and starts a new run under its id.
    A's delete, on the status only, deleted the new run (a review). Now it finds another run
    under the id: the one it was asked to delete is gone."""
    async with two_replicas(store) as (a, b):
        assert (await a.start("two-asks", run_id="remade", wait=True)).status is RunStatus.SUSPENDED

        async def b_makes_it_anew() -> None:
            await b.delete_run("remade")
            await b.start("two-asks", run_id="remade", request_context={"gen": 2}, wait=True)

        with reads_held(a, b_makes_it_anew), pytest.raises(RunNotFound):
            await a.delete_run("remade", workflow_id="two-asks")
        kept = await b.get_run("remade")
    assert kept.status is RunStatus.SUSPENDED and kept.request_context == {"gen": 2}


async def test_a_time_travel_of_a_run_another_replica_deleted_meanwhile_is_run_not_found(
    store: Store,
) -> None:
    """It said "still running" (a review)."""
    async with two_replicas(store) as (a, b):
        assert (await a.start("two-asks", run_id="travel-gone", wait=True)).status is RunStatus.SUSPENDED

        async def b_deletes() -> None:
            await b.delete_run("travel-gone")

        with reads_held(a, b_deletes), pytest.raises(RunNotFound):
            await a.time_travel("travel-gone", step=["ask-a"], wait=True)


async def test_a_start_of_a_reservation_made_again_meanwhile_checks_the_new_one(store: Store) -> None:
    """Replica A's Start finds the id reserved (its create refused) and checks the reservation;
    B deletes it and reserves the id again for another workflow. A's write, on the status
    only, took the new reservation over and ran its own workflow in it (a review). Now A
    checks the new reservation, and refuses."""
    async with two_replicas(store) as (a, b):
        await a.create_run("quick-alone", run_id="reserved")
        read = store.get_run

        async def get_run_then_remade(run_id: str, *args: Any, **kwargs: Any) -> Run | None:
            found = await read(run_id, *args, **kwargs)
            if READING.get():
                READING.set(False)
                await b.delete_run("reserved")
                await b.create_run("two-asks", run_id="reserved")
            return found

        store.get_run = get_run_then_remade  # type: ignore[method-assign]
        READING.set(True)
        try:
            with pytest.raises(RunBelongsToOtherWorkflow):
                await a.start("quick-alone", run_id="reserved", input_data={}, wait=True)
        finally:
            READING.set(False)
            store.get_run = read  # type: ignore[method-assign]
        kept = await b.get_run("reserved")
    assert kept.workflow_id == "two-asks" and kept.status is RunStatus.PENDING


async def test_an_engine_failure_whose_read_of_the_steps_meets_an_outage_waits_and_stops_them(
    store: Store,
) -> None:
    """`_fail` (the engine's own failure of a run) reads the steps to end them with the run. A
    storage outage on that read made it fail the run without them: a failed run kept a step
    `running` (a review). It waits the outage out as its write does, and reads them again."""
    EVENTS["entered"], EVENTS["go_on"] = asyncio.Event(), asyncio.Event()
    async with replica(store, "a") as a:
        await a.start("asker", run_id="failing")
        await asyncio.wait_for(EVENTS["entered"].wait(), 10)
        await until(a, "failing", lambda r: any(s.status is StepStatus.RUNNING for s in r.steps))
        load = a._load
        outage = [StorageUnavailable("the read connection dropped")]

        async def load_once_down(*args: Any, **kwargs: Any) -> Run:
            if kwargs.get("steps") and outage:
                raise outage.pop()
            return await load(*args, **kwargs)

        a._load = load_once_down  # type: ignore[method-assign]
        await a._fail("failing", "the engine failed", a._drivers["failing"].lease)
        a._load = load  # type: ignore[method-assign]
        failed = await a.get_run("failing")
        EVENTS["go_on"].set()
    assert failed.status is RunStatus.FAILED
    assert [s.status for s in failed.steps] == [StepStatus.CANCELED]


async def test_a_cancel_of_a_run_driven_elsewhere_never_cancels_a_run_made_anew_under_its_id(
    store: Store,
) -> None:
    """Replica A asks B, through the store, to stop the run B drives, then polls until it is
    over. The run ended canceled, was deleted and a new run made under its id before A's poll
    read it: the poll took the new run for the one it asked to stop, and canceled it (an
    audit). Now the poll ends once the id holds another run."""
    async with two_replicas(store) as (a, b):
        await b.start("napper", run_id="job-7", input_data={})
        await until(b, "job-7", lambda r: r.status is RunStatus.WAITING)
        get_run = store.get_run
        remade: list[Run] = []

        async def late_poll(run_id: str, **kwargs: Any) -> Run | None:
            read = await get_run(run_id, **kwargs)
            if READING.get() and not remade and read is not None and read.status is RunStatus.CANCELED:
                READING.set(False)  # B's own reads below are not held
                await b.delete_run(run_id)
                remade.append(await b.start("approval", run_id=run_id, input_data={}, wait=True))
                read = await get_run(run_id, **kwargs)  # what the late poll reads
            return read

        store.get_run = late_poll  # type: ignore[method-assign]
        READING.set(True)
        try:
            await asyncio.wait_for(a.cancel("job-7"), 30)
        finally:
            READING.set(False)
            store.get_run = get_run  # type: ignore[method-assign]
        final = await b.get_run("job-7")
    assert remade and remade[0].status is RunStatus.SUSPENDED
    assert final.status is RunStatus.SUSPENDED and final.created_at == remade[0].created_at
