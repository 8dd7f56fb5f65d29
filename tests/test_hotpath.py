"""The hot path's shortcuts behave like what they replace (issue 9: CPU per run).

`model.evolve` is `dataclasses.replace`; the log handler writes every line, in order, within
its flush interval; the claim query and the ListRuns pages by resource read only the indexes
made for them.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import datetime
import io
import json
import logging
import os
import re
import sqlite3
import threading
import warnings
from pathlib import Path

import pytest

from runservice import logs
from runservice.model import Run, RunStatus, StepRecord, StepStatus, evolve
from runservice.storage import Claim, RunQuery, RunWrite
from runservice.storage.sqlite import SqliteStore

pytestmark = pytest.mark.timeout(30)


def test_evolve_is_replace_for_slotted_and_other_dataclasses() -> None:
    record = StepRecord(("a",), StepStatus.RUNNING, payload={"v": 1}, started_at=1.0)
    done = evolve(record, status=StepStatus.SUCCESS, output={"v": 2}, ended_at=2.0)
    assert done == dataclasses.replace(record, status=StepStatus.SUCCESS, output={"v": 2}, ended_at=2.0)
    assert record.status is StepStatus.RUNNING and record.output is None  # the original is untouched
    run = Run(run_id="r", workflow_id="w", status=RunStatus.RUNNING, created_at=1.0, updated_at=1.0)
    assert evolve(run, last_sequence=3) == dataclasses.replace(run, last_sequence=3)
    with pytest.raises(TypeError, match="nope"):
        evolve(record, nope=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        done.status = StepStatus.FAILED  # type: ignore[misc]

    @dataclasses.dataclass(frozen=True)
    class Checked:  # no slots, and an __init__ that does more: replace's own path
        n: int

        def __post_init__(self) -> None:
            if self.n < 0:
                raise ValueError("negative")

    @dataclasses.dataclass(frozen=True, slots=True)
    class Slotted:  # a copier made for a class met for the first time, every field copied
        name: str
        tags: tuple[str, ...] = ()
        extra: dict[str, int] = dataclasses.field(default_factory=dict)

    first = Slotted("a", ("t",), {"x": 1})
    second = evolve(first, name="b")
    assert second == Slotted("b", ("t",), {"x": 1}) and second.extra is first.extra
    with pytest.raises(TypeError, match="nope"):
        evolve(first, name="c", nope=1)

    assert evolve(Checked(1), n=2) == Checked(2)
    with pytest.raises(ValueError, match="negative"):
        evolve(Checked(1), n=-1)


class _Writes(io.StringIO):
    """A stream that remembers each write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


async def test_lines_made_on_a_loop_are_written_together_in_order_within_the_flush_interval() -> None:
    stream = _Writes()
    handler = logs.handler("text", stream=stream)
    logger = logging.getLogger("tests.hotpath.batching")
    logger.addHandler(handler)
    logger.propagate, logger.level = False, logging.INFO
    try:
        for i in range(3):
            logger.info("line %d", i)
        assert stream.writes == []  # kept for the interval
        await asyncio.sleep(logs.FLUSH_SECONDS * 3)  # the flush timer is due first
        (batch,) = stream.writes
        assert [line.rpartition(" ")[2] for line in batch.splitlines()] == ["0", "1", "2"]

        logger.info("kept")
        logger.warning("at once")  # with the lines kept before it, in one write
        assert stream.writes[1].splitlines()[0].endswith("INFO tests.hotpath.batching kept")
        assert stream.writes[1].splitlines()[1].endswith("WARNING tests.hotpath.batching at once")

        async def on_another_loop() -> None:
            logger.info("kept on a loop that ends")

        interval, logs.FLUSH_SECONDS = logs.FLUSH_SECONDS, 3600.0  # that loop ends before its timer
        try:
            thread = threading.Thread(target=asyncio.run, args=(on_another_loop(),))
            thread.start()
            thread.join()
        finally:
            logs.FLUSH_SECONDS = interval
        assert len(stream.writes) == 2
        logger.info("kept on this loop")
        await asyncio.sleep(logs.FLUSH_SECONDS * 3)
        assert [line.partition("batching ")[2] for line in stream.writes[2].splitlines()] == [
            "kept on a loop that ends",
            "kept on this loop",
        ]

        logger.info("before a flush")
        handler.flush()  # as logging.shutdown does at exit
        assert stream.writes[3].endswith("before a flush\n")
        await asyncio.sleep(logs.FLUSH_SECONDS * 3)
        assert len(stream.writes) == 4  # the timer found nothing left

        # A batch larger than one atomic pipe write goes out in whole lines, none torn.
        for i in range(100):
            logger.info("é" * 60 + f" {i}")
        logger.info("x" * 5000)  # a line longer than that goes alone
        await asyncio.sleep(logs.FLUSH_SECONDS * 3)
        batches = stream.writes[4:]
        assert len(batches) > 2 and all(batch.endswith("\n") for batch in batches)
        assert all(len(batch.encode()) <= logs.ATOMIC_WRITE for batch in batches[:-1])
        assert batches[-1].endswith("x" * 5000 + "\n") and batches[-1].count("\n") == 1
        numbers = [line.rpartition(" ")[2] for batch in batches[:-1] for line in batch.splitlines()]
        assert numbers == [str(i) for i in range(100)]
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


async def test_a_forked_child_does_not_write_the_lines_its_parent_kept() -> None:
    """A step body may fork (multiprocessing's default on Linux); the parent writes what it kept."""
    read, write = os.pipe()
    stream = io.StringIO()
    handler = logs.handler("text", stream=stream)
    assert isinstance(handler, logs.LineBatchingHandler)
    logger = logging.getLogger("tests.hotpath.fork")
    logger.addHandler(handler)
    logger.propagate, logger.level = False, logging.INFO
    try:
        logger.info("kept by the parent")
        with warnings.catch_warnings():  # Python 3.12 warns of fork() in a process with threads
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: report what it would write, and leave at once
            os.write(write, repr(handler._lines).encode())
            os._exit(0)
        os.close(write)
        _, status = await asyncio.to_thread(os.waitpid, pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert os.read(read, 4096) == b"[]"
        await asyncio.sleep(logs.FLUSH_SECONDS * 3)
        assert stream.getvalue().endswith("kept by the parent\n")
    finally:
        os.close(read)
        logger.removeHandler(handler)
        logger.propagate = True


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("role", [None, "engine"])
@pytest.mark.parametrize("run", [None, ("run-1", "0af7651916cd43dd8448eb211c80319c")])
async def test_an_access_line_made_without_a_record_is_the_records_line(
    fmt: str, role: str | None, run: tuple[str, str] | None
) -> None:
    root, access = logging.getLogger(), logging.getLogger(logs.ACCESS_LOGGER)
    saved = root.handlers[:], root.level
    stream = io.StringIO()

    def log_both() -> None:  # in a context of its own, as an RPC's task has
        if run is not None:
            logs.bind_run(*run)
        logs.log_access("/runservice.v1.RunService/GetRun", "NOT_FOUND", 1.5, "ipv4:127.0.0.1:5")
        access.addFilter(everything)  # a filter the handler does not own: through logging
        try:
            assert logs._lean_handler() is None
            logs.log_access("/runservice.v1.RunService/GetRun", "NOT_FOUND", 1.5, "ipv4:127.0.0.1:5")
        finally:
            access.removeFilter(everything)

    def everything(record: logging.LogRecord) -> bool:
        return True

    try:
        logs.configure("INFO", fmt, role=role)
        installed = logs._lean_handler()
        assert installed is not None and installed is root.handlers[0]
        installed.setStream(stream)
        contextvars.copy_context().run(log_both)
        installed.flush()
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    lean, logged = stream.getvalue().splitlines()
    if fmt == "json":
        lean_object, logged_object = json.loads(lean), json.loads(logged)
        assert abs(_iso_seconds(lean_object.pop("time")) - _iso_seconds(logged_object.pop("time"))) < 1
        assert list(lean_object.items()) == list(logged_object.items())  # the same keys in the same order
        assert lean_object["duration_ms"] == 1.5 and lean_object.get("role") == role
        assert lean_object.get("run_id") == (run[0] if run else None)
    else:
        lean_time, _, lean_rest = lean.partition(" INFO ")
        logged_time, _, logged_rest = logged.partition(" INFO ")
        assert lean_rest == logged_rest
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}", lean_time), lean_time
        assert len(lean_time) == len(logged_time)
        assert lean_rest.startswith("runservice.access /runservice.v1.RunService/GetRun NOT_FOUND 1.500ms")
        assert (f"role={role}" in lean_rest) == (role is not None)
        assert ("run_id=" in lean_rest) == (run is not None)
        assert run is None or f"run_id={run[0]} trace_id={run[1]}" in lean_rest


def _iso_seconds(stamp: str) -> float:
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def test_an_access_line_goes_through_logging_where_an_application_added_a_handler() -> None:
    root, access = logging.getLogger(), logging.getLogger(logs.ACCESS_LOGGER)
    saved = root.handlers[:], root.level
    seen: list[logging.LogRecord] = []

    class Kept(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    extra = Kept()
    try:
        logs.configure("INFO", "text")
        root.handlers[0].setStream(io.StringIO())  # type: ignore[attr-defined]
        access.addHandler(extra)
        assert logs._lean_handler() is None
        logs.log_access("/x.v1.X/Get", "OK", 0.25, "ipv4:127.0.0.1:6")
        access.removeHandler(extra)
        root.addHandler(extra)  # a second handler on the root: the same
        assert logs._lean_handler() is None
        logs.log_access("/x.v1.X/Get", "OK", 0.5, "ipv4:127.0.0.1:6")
    finally:
        access.removeHandler(extra)
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert [record.getMessage() for record in seen] == [
        "/x.v1.X/Get OK 0.250ms ipv4:127.0.0.1:6",
        "/x.v1.X/Get OK 0.500ms ipv4:127.0.0.1:6",
    ]
    assert all(record.__dict__["peer"] == "ipv4:127.0.0.1:6" for record in seen)


def test_log_lines_outside_an_event_loop_are_written_at_once() -> None:
    stream = io.StringIO()
    handler = logs.handler("json", stream=stream)
    logger = logging.getLogger("tests.hotpath.plain")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        logger.info("plain")
        assert '"message": "plain"' in stream.getvalue()
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


async def test_claims_and_resource_listings_read_the_indexes_made_for_them(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = SqliteStore(str(path))
    await store.open()
    try:
        for i, resource in enumerate([None, "res", None]):
            run = Run(
                run_id=f"r{i}",
                workflow_id="w",
                status=RunStatus.RUNNING,
                created_at=float(i),
                updated_at=float(i),
                resource_id=resource,
            )
            assert (await store.write(RunWrite(run.run_id, create=run))).applied
        claimed = await store.claim_runs(Claim("me", 10), 10, ["w"])
        assert sorted(run_id for run_id, _ in claimed) == ["r0", "r1", "r2"]
        listed = await store.list_runs(RunQuery(resource_id="res"))
        assert [run.run_id for run in listed] == ["r1"]
        listed = await store.list_runs(
            RunQuery(resource_id="res", workflow_id="w", statuses=frozenset({RunStatus.RUNNING}))
        )
        assert [run.run_id for run in listed] == ["r1"]
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        # Only the run with a resource id is in the resource indexes.
        for index in ("runs_by_resource", "runs_by_workflow_resource", "runs_by_resource_status"):
            (count,) = conn.execute(
                f"SELECT count(*) FROM runs INDEXED BY {index} WHERE resource_id = 'res'"
            ).fetchone()
            assert count == 1
        (sql,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'runs_by_workflow_resource_status'"
        ).fetchone()
        assert "WHERE resource_id IS NOT NULL" in sql
    finally:
        conn.close()
