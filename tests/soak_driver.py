"""The kill -9 soak: a real server process, mixed runs, SIGKILLs at random moments, restarts.

`Soak(config, tmp).run()` drives everything and returns a `Report`; tests/test_soak.py asserts on
it. Every finding is an `Anomaly` (kind, run id, what was expected and what was stored). Kinds:

  outcome        wrong_result, wrong_status, not_terminal (vs soak_workflows.expected), run_missing
  event log      sequence_gap (not 1..N or N != last_seq), duplicate_step_result (path+iteration),
                 duplicate_item_result (foreach path+index), missing_step_result
  step records   bad_step_record (non-success record in a successful run, foreach record whose
                 payload/items/output do not match the input), missing_step_record (a body ran,
                 no record)
  executions     rerun_same_process, rerun_unexplained (first process was not killed),
                 rerun_after_commit (its outcome was committed before the kill),
                 ran_after_pause (a paused replica started a body another replica ran too),
                 resumed_without_request (a body got resume data nobody sent for it)
  resumes        accepted_resume_lost (acknowledged, a kill, target suspended again),
                 accepted_resume_ignored (the same with no kill), resume_rejected,
                 suspended_without_target, start_retry_rejected
  repeats        repeat_rejected, repeat_changed_run (same request_id again changed a settled run)
  watchers       watch_gap, watch_duplicate, watch_mismatch (vs the stored event), watch_incomplete,
                 watch_error
  liveness       recovery_stalled (active at a kill, no event within RECOVERY_BOUND after the
                 restart), stalled (no event for STALL_BOUND while the server was up)

A rerun is legitimate only when the process running the body was killed before the body's outcome
was committed; those are counted (`reruns_in_flight`, and by workflow in `rerun_coverage`).
The seed fixes the plan (runs, inputs, kill points), not the instant each kill lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import socket
import sqlite3
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import soak_workflows
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.proc import child_pids
from runservice import errors
from runservice.client import Client, RunHandle, event_from_proto
from runservice.model import Event, EventType, Run, RunStatus, StepPath, StepRecord, StepStatus
from runservice.v1 import run_service_pb2

ROOT = Path(__file__).resolve().parent.parent

# Channel options for a server that dies and comes back on the same port: reconnect fast.
CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
]
CALL_TIMEOUT = 20.0
"""Per-call deadline: generous, a loaded 2-core machine can be slow without being wrong."""
STARTUP_TIMEOUT = 60.0
LEASE_SECONDS = 3.0
"""A PostgreSQL soak's `--lease-seconds`: how long a killed server's runs stay its own."""
PAUSE_SECONDS = LEASE_SECONDS + 1.5
"""With several replicas every third kill is a SIGSTOP for this long, then a SIGCONT: the other
replicas take the paused one's runs over meanwhile, and once it goes on it must commit nothing
for them, nor start their bodies again."""
PAUSE_GRACE = 0.25
"""A body whose start a pause cut in two (the engine had checked its lease, the body had not yet
noted its start) notes it this soon after the SIGCONT; any later start is a zombie's. After a
SIGCONT the process's loop first runs every timer and callback the pause held back, which on a
loaded machine (the suite on two workers, beside PostgreSQL and other servers) takes longer than
0.02 s: one run of the suite reported two starts 0.06 and 0.09 s after a SIGCONT as zombies',
and the same seed alone passed three times. A zombie's later bodies still start past this."""
OUTAGE_SECONDS = 1.0
"""With a database server of the soak's own, every third kill stops it for this long instead (the
runservice servers run on): their commits and reads fail meanwhile, and every run goes on after."""
RECOVERY_BOUND = 30.0
"""Seconds after a restart within which every run active at the kill must move or settle."""
STALL_BOUND = 45.0
"""Seconds (server up) an unsettled run may go without a new event before it counts as stalled."""
POLL = 0.25


@dataclass
class Config:
    runs: int = 300
    kills: int = 7
    seed: int = 0
    in_flight: int = 24
    """Runs driven at the same time."""
    watch_share: float = 0.5
    """Share of runs with a reconnecting watcher."""
    budget: float = 200.0
    """Wall-clock bound of the driving phase (seconds); what is unsettled then is reported."""
    workflows: tuple[str, ...] = ()
    """Only these workflows (all when empty), to look at one construct."""
    serve_args: tuple[str, ...] = ()
    """More flags of `runservice serve` (`--engine-process`: the kill hits the front, and the
    kernel kills its engine process with it)."""
    database_url: str | None = None
    """A PostgreSQL database to serve from (else the server's SQLite file); its leases expire
    after `LEASE_SECONDS`, so a restarted server takes the killed one's runs over that soon."""
    replicas: int = 1
    """Servers sharing `database_url`, all serving at once. Every call and watch goes to one of
    those serving, picked at random; each kill hits one of them, and the others take its runs
    over when their leases expire (before it comes back, often)."""
    database_server: Any = None
    """The PostgreSQL server of `database_url` when the soak may stop it (tests/postgres.py's
    `PostgresServer`, of this soak alone): every third kill is then an outage of the database
    (`OUTAGE_SECONDS`), not of a runservice server."""

    @classmethod
    def from_env(cls) -> Config:
        seed = os.environ.get("RUNSERVICE_SOAK_SEED")
        return cls(
            runs=int(os.environ.get("RUNSERVICE_SOAK_RUNS", cls.runs)),
            kills=int(os.environ.get("RUNSERVICE_SOAK_KILLS", cls.kills)),
            seed=int(seed) if seed else random.SystemRandom().randrange(1, 2**31),
            in_flight=int(os.environ.get("RUNSERVICE_SOAK_IN_FLIGHT", cls.in_flight)),
            budget=float(os.environ.get("RUNSERVICE_SOAK_BUDGET", cls.budget)),
            workflows=tuple(w for w in os.environ.get("RUNSERVICE_SOAK_WORKFLOWS", "").split(",") if w),
        )


@dataclass(frozen=True)
class Anomaly:
    kind: str
    run_id: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.run_id}: {self.detail}"


@dataclass
class Kill:
    """One kill -9 and the restart after it."""

    number: int
    pid: int
    at: float
    children: tuple[int, ...] = ()
    """The server's child processes when it was killed (its engine process), killed with it."""
    down_at: float = 0.0
    """When every process of the server was gone (or stopped): its engine process dies a few
    milliseconds after the kill, and may start a body or commit meanwhile."""
    restarted_at: float = 0.0
    serving_at: float = 0.0
    recovered_at: float | None = None
    how: str = "at random"
    paused: bool = False
    """A SIGSTOP, not a kill: the process went on at `restarted_at` (its SIGCONT)."""
    outage: bool = False
    """The database stopped (`at`, down at `down_at`) and started again (`restarted_at`), not a
    runservice process: every process's body in flight then, or started before it was back, may run
    again."""
    active: int = 0
    """Runs running or waiting in the database at the kill."""
    stalled: list[str] = field(default_factory=list)

    @property
    def origin(self) -> float:
        """Where recovery is timed from: the restart, or the pause itself (the other replicas
        take the paused one's runs over while it is stopped)."""
        return self.at if self.paused else self.restarted_at

    def describe(self) -> str:
        serving = self.serving_at - self.restarted_at
        recovered = (
            f"{self.recovered_at - self.origin:.2f}s"
            if self.recovered_at is not None
            else f">{RECOVERY_BOUND:.0f}s ({len(self.stalled)} not moving)"
        )
        return (
            f"kill {self.number} {self.how} (pid {self.pid}): serving after {serving:.2f}s, "
            f"{self.active} active runs moving/settled after {recovered}"
        )


@dataclass
class Target:
    """A suspended step (or foreach item) a resume addresses."""

    path: StepPath
    index: int | None
    iteration: int

    @property
    def key(self) -> tuple[StepPath, int | None, int]:
        return (self.path, self.index, self.iteration)

    def data(self) -> dict[str, int]:
        index = self.index
        if index is None:
            index = next((int(p[1:-1]) for p in self.path if p.startswith("[")), None)
        return {"add": soak_workflows.resume_value(index, self.iteration)}

    def request_id(self, run_id: str) -> str:
        index = "" if self.index is None else f"#{self.index}"
        return f"resume:{run_id}:{'.'.join(self.path)}{index}@{self.iteration}"


@dataclass
class RunPlan:
    run_id: str
    workflow_id: str
    input: dict[str, Any]
    watched: bool
    accepted: dict[tuple[StepPath, int | None, int], str] = field(default_factory=dict)
    """Resumes the server acknowledged: target key -> request id."""
    sent: set[tuple[str, int | None, int]] = field(default_factory=set)
    """Every resume the driver sent, acknowledged or not: (path, foreach index, iteration)."""
    sent_at: dict[tuple[StepPath, int | None, int], float] = field(default_factory=dict)
    """Target key -> when its resume was (last) sent."""
    settled_after: dict[tuple[StepPath, int | None, int], float] = field(default_factory=dict)
    """Target key -> the run's update time when it was first seen suspended after that resume."""
    reported: set[tuple[StepPath, int | None, int]] = field(default_factory=set)
    """Acknowledged targets already reported as suspended again (each is reported once)."""
    started: bool = False
    done: str = ""
    """Why driving stopped: terminal, stuck, stalled, budget."""
    watch_events: list[Event] = field(default_factory=list)
    watch_reconnects: int = 0
    watch_ended: bool = False

    def handle(self, client: Client) -> RunHandle:
        return RunHandle(client, self.workflow_id, self.run_id)

    async def get(self, client: Client) -> Run:
        return await client.get_workflow(self.workflow_id).run_by_id(self.run_id)


@dataclass
class Report:
    config: Config
    plans: list[RunPlan]
    kills: list[Kill]
    anomalies: list[Anomaly]
    reruns_in_flight: int
    repeats_checked: int
    elapsed: float
    rerun_coverage: Counter[str]

    @property
    def watched_events(self) -> int:
        return sum(len(plan.watch_events) for plan in self.plans)

    @property
    def resumes_sent(self) -> int:
        return sum(len(plan.sent) for plan in self.plans)

    def counts(self) -> Counter[str]:
        return Counter(a.kind for a in self.anomalies)

    def summary(self) -> str:
        recovery = ", ".join(
            f"{k.recovered_at - k.origin:.2f}s" if k.recovered_at is not None else "stalled"
            for k in self.kills
        )
        serving = ", ".join(f"{k.serving_at - k.restarted_at:.2f}s" for k in self.kills)
        kinds = ", ".join(f"{kind}={n}" for kind, n in sorted(self.counts().items())) or "none"
        return (
            f"soak seed={self.config.seed}: {len(self.plans)} runs, {len(self.kills)} kills, "
            f"restart->SERVING [{serving}], restart->active runs moving [{recovery}], "
            f"resumes {self.resumes_sent}, watchers {sum(p.watched for p in self.plans)} "
            f"({self.watched_events} events, {sum(p.watch_reconnects for p in self.plans)} reconnects), "
            f"in-flight reruns {self.reruns_in_flight}, repeated request_ids {self.repeats_checked}, "
            f"{self.elapsed:.0f}s; anomalies: {len(self.anomalies)} ({kinds})"
        )


def _gone(pids: tuple[int, ...]) -> bool:
    return not any(Path(f"/proc/{pid}").exists() for pid in pids)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`python -m runservice serve` on a fixed port and data dir, killed and restarted at will."""

    def __init__(self, tmp: Path, port: int, ledger: Path, serve_args: tuple[str, ...] = ()) -> None:
        self.serve_args = serve_args
        self.address = f"127.0.0.1:{port}"
        tmp.mkdir(parents=True, exist_ok=True)
        self.up = asyncio.Event()
        """Set while this server is believed to serve (cleared during a kill and restart)."""
        self.client: Client | None = None
        self.data_dir = tmp / "data"
        self.log_path = tmp / "server.log"
        self.ledger = ledger
        self.proc: asyncio.subprocess.Process | None = None
        self.pids: list[int] = []

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNSERVICE_")}
        env["PYTHONPATH"] = os.pathsep.join(str(ROOT / part) for part in ("service", "stubs", "tests"))
        env[soak_workflows.LEDGER_ENV] = str(self.ledger)
        return env

    async def start(self) -> float:
        """Spawn the server; returns the spawn time."""
        spawned = time.time()
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "runservice", "serve", "--address", self.address,
                "--data-dir", str(self.data_dir), "--workflows", "soak_workflows", "--log-level", "WARNING",
                *self.serve_args, cwd=ROOT, env=self._env(), stdout=asyncio.subprocess.DEVNULL, stderr=log,
            )  # fmt: skip
        self.pids.append(self.proc.pid)
        return spawned

    def signal_all(self, signum: int) -> tuple[int, tuple[int, ...], float]:
        """Send `signum` to the server and its children; returns their pids and the time."""
        assert self.proc is not None
        children = tuple(child_pids(self.proc.pid))
        at = time.time()
        for pid in (self.proc.pid, *children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        return self.proc.pid, children, at

    async def kill(self) -> tuple[int, tuple[int, ...], float]:
        """SIGKILL the server; returns its pid, its children's (gone too: see `Config.serve_args`)
        and the kill time."""
        assert self.proc is not None
        children = tuple(child_pids(self.proc.pid))
        at = time.time()
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        while not _gone(children):
            await asyncio.sleep(0.005)  # reaped by init once the kernel has killed it
        return self.proc.pid, children, at

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 30.0)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    def exited(self) -> bool:
        return self.proc is None or self.proc.returncode is not None

    @property
    def db_path(self) -> Path:
        return self.data_dir / "runservice.db"

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


_STEPS_WITH_ITEMS = (
    "SELECT s.run_id, s.record, (SELECT '[' || group_concat(f.item, ',') || ']' FROM foreach_items f"
    " WHERE f.run_id = s.run_id AND f.path_key = s.path_key) FROM steps s"
)


_PG_STEPS_WITH_ITEMS = (
    "SELECT s.run_id, s.record, (SELECT '[' || string_agg(convert_from(f.item, 'UTF8'), ',') || ']'"
    " FROM foreach_items f WHERE f.run_id = s.run_id AND f.path_key = s.path_key) FROM steps s"
)

Stored = tuple[dict[str, tuple[Any, ...]], dict[str, list[Event]], dict[str, list[tuple[Any, Any]]]]
"""What the database holds: run id -> (status, result, error, last_seq); run id -> its events in
order; run id -> (step record JSON, its foreach items as a JSON array or None)."""


def _db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), timeout=30.0)
    db.execute("PRAGMA busy_timeout=30000")
    return db


class StoredRuns:
    """The served database, read straight (not through the server): its SQLite file, or its
    PostgreSQL database. JSON comes back as text or bytes; `json.loads` takes either."""

    def __init__(self, db_path: Path, database_url: str | None) -> None:
        self.db_path = db_path
        self.database_url = database_url
        self._conn: asyncpg.Connection | None = None

    async def _postgres(self) -> asyncpg.Connection:
        """One connection for the many polls of a soak (a new one after a database outage)."""
        if self._conn is None or self._conn.is_closed():
            assert self.database_url is not None
            self._conn = await asyncpg.connect(self.database_url)
        return self._conn

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def active(self) -> dict[str, tuple[str, int]]:
        """run id -> (status, last sequence) of every run; {} while the database is not there yet."""
        sql = "SELECT run_id, status, last_seq FROM runs"
        if self.database_url is not None:
            try:
                rows = await (await self._postgres()).fetch(sql)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                return {}  # the database is down (an outage of the soak's): polled again
        else:
            try:
                with contextlib.closing(_db(self.db_path)) as db:
                    rows = db.execute(sql).fetchall()
            except sqlite3.Error:
                return {}  # the server is still creating the file
        return {run_id: (status, seq) for run_id, status, seq in rows}

    async def everything(self) -> Stored:
        """Every run, event and step record, for the final check (the server is stopped)."""
        runs_sql = "SELECT run_id, status, result, error, last_seq FROM runs"
        events_sql = "SELECT run_id, seq, time, body FROM events ORDER BY run_id, seq"
        if self.database_url is not None:
            conn = await self._postgres()
            runs = await conn.fetch(runs_sql)
            events = await conn.fetch(events_sql)
            steps = await conn.fetch(_PG_STEPS_WITH_ITEMS)
        else:
            with contextlib.closing(_db(self.db_path)) as db:
                runs = db.execute(runs_sql).fetchall()
                events = db.execute(events_sql).fetchall()
                steps = db.execute(_STEPS_WITH_ITEMS).fetchall()
        logs: dict[str, list[Event]] = defaultdict(list)
        for run_id, seq, at, body in events:
            logs[run_id].append(Event.from_json(run_id, seq, at, json.loads(body)))
        records: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
        for run_id, record, items in steps:
            records[run_id].append((record, items))
        return {row[0]: tuple(row[1:]) for row in runs}, logs, records


_SETTLED = {s.value for s in RunStatus if s.settled}


class Soak:
    def __init__(self, config: Config, tmp: Path) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.tmp = tmp
        self.ledger = tmp / "ledger.db"
        serve_args = config.serve_args
        if config.database_url is not None:
            serve_args += ("--database-url", config.database_url, "--lease-seconds", str(LEASE_SECONDS))
        elif config.replicas != 1:
            raise ValueError("several replicas need a database_url")
        self.servers = [
            Server(tmp / f"replica-{n}" if config.replicas > 1 else tmp, free_port(), self.ledger, serve_args)
            for n in range(config.replicas)
        ]
        self.server = self.servers[0]
        self.stored = StoredRuns(self.server.db_path, config.database_url)
        self.anomalies: list[Anomaly] = []
        self.kills: list[Kill] = []
        self.plans: list[RunPlan] = []
        self.routing = random.Random(config.seed + 1)
        """Which replica each call goes to: apart from `rng`, so the plan stays the seed's."""
        self.down_since = 0.0
        self.launched = 0
        self.repeats_checked = 0
        self.start_time = 0.0
        self.rerun_coverage = Counter()
        self.acks = 0
        self.launch_limit = sys.maxsize
        """Runs are not created past this count (the kill loop holds them until its next kill)."""
        """Resumes acknowledged so far (a kill after a resume waits for the next one)."""

    def note(self, kind: str, run_id: str, detail: str) -> None:
        self.anomalies.append(Anomaly(kind, run_id, detail))

    # -- the whole soak --------------------------------------------------------------------

    async def run(self) -> Report:
        self.start_time = time.time()
        workflows = [wf.id for wf in soak_workflows.WORKFLOWS]
        if self.config.workflows:
            unknown = set(self.config.workflows) - set(workflows)
            if unknown:
                raise ValueError(
                    f"RUNSERVICE_SOAK_WORKFLOWS: no workflow {sorted(unknown)}; known: {workflows}"
                )
            workflows = list(self.config.workflows)
        for i in range(self.config.runs):
            workflow_id = workflows[i % len(workflows)] if i < len(workflows) else self.rng.choice(workflows)
            self.plans.append(
                RunPlan(
                    run_id=f"soak-{i:04d}-{workflow_id.removeprefix('soak-')}",
                    workflow_id=workflow_id,
                    input=soak_workflows.make_input(workflow_id, self.rng),
                    watched=self.rng.random() < self.config.watch_share,
                )
            )
        self.rng.shuffle(self.plans)
        span = max(1, self.config.runs)
        thresholds = sorted(
            self.rng.sample(range(span // 10, span * 9 // 10 + 1), min(self.config.kills, span))
        )
        delays = [self.rng.uniform(0.0, 0.5) for _ in thresholds]

        for server in self.servers:
            await server.start()
        async with contextlib.AsyncExitStack() as clients:
            for server in self.servers:
                await self.wait_serving(server, time.time() + STARTUP_TIMEOUT)
                server.up.set()
                server.client = await clients.enter_async_context(
                    Client(server.address, timeout=CALL_TIMEOUT, options=CHANNEL_OPTIONS)
                )
            deadline = time.time() + self.config.budget
            killer = asyncio.create_task(self.kill_loop(thresholds, delays, deadline))
            slots = asyncio.Semaphore(self.config.in_flight)
            drivers = [asyncio.create_task(self.drive(plan, slots, deadline)) for plan in self.plans]
            try:
                await asyncio.gather(killer, *drivers)
            finally:
                for task in (killer, *drivers):
                    task.cancel()
                await asyncio.gather(killer, *drivers, return_exceptions=True)
            await self.repeat_requests(final=True)
        for server in self.servers:
            await server.stop()
        try:
            stored = await self.stored.everything()
        finally:
            await self.stored.close()
        self.check(stored)
        return Report(
            self.config,
            self.plans,
            self.kills,
            self.anomalies,
            self.reruns_in_flight,
            self.repeats_checked,
            time.time() - self.start_time,
            self.rerun_coverage,
        )

    # -- the server's life -------------------------------------------------------------------

    async def wait_serving(self, server: Server, deadline: float) -> float:
        """Poll gRPC health until SERVING; returns when it was seen."""
        async with grpc.aio.insecure_channel(server.address, options=CHANNEL_OPTIONS) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while time.time() < deadline:
                if server.exited():
                    raise RuntimeError("the server exited while starting:\n" + server.log_tail())
                try:
                    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return time.time()
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.02)
        raise RuntimeError("the server did not become SERVING in time:\n" + server.log_tail())

    async def kill_loop(self, thresholds: list[int], delays: list[float], deadline: float) -> None:
        """Kill at seeded points of the launch; every second kill lands just after a resume was
        acknowledged, inside the resumed body or its commit (issue 11, item 1)."""
        for number, (threshold, delay) in enumerate(zip(thresholds, delays, strict=True), 1):
            # Launches wait for this kill once a batch past its threshold is out: restarts take
            # time, and kills must not all fall after the last run finished.
            self.launch_limit = threshold + self.config.in_flight
            while self.launched < threshold and time.time() < deadline:
                await asyncio.sleep(0.01)
            if time.time() >= deadline:
                return
            after_resume = number % 2 == 0
            if after_resume:
                acks = self.acks
                bound = time.time() + 10.0
                while self.acks == acks and time.time() < bound:
                    await asyncio.sleep(0.001)
                await asyncio.sleep(delay / 15)  # 0 to 33 ms: a body takes 2 to 20 ms
            else:
                await asyncio.sleep(delay)
                await self.until_some_run_active(time.time() + 10.0)
            how = "after a resume" if after_resume else "at random"
            if self.config.database_server is not None and number % 3 == 0:
                await self.database_outage(number, how)
            elif len(self.servers) > 1 and number % 3 == 0:
                await self.pause_and_continue(number, how)
            else:
                await self.kill_and_restart(number, how)
        self.launch_limit = sys.maxsize

    async def kill_and_restart(self, number: int, how: str) -> None:
        server = self.routing.choice(self.servers)
        server.up.clear()
        self.down_since = time.time()
        pid, children, at = await server.kill()
        if len(self.servers) > 1:
            how += f" ({server.address})"
        kill = Kill(number, pid, at, children, down_at=time.time(), how=how)
        self.kills.append(kill)
        before = await self.moving_runs()
        kill.active = len(before)
        kill.restarted_at = await server.start()
        # Recovery is watched from the spawn on: a server may re-drive runs before it serves.
        moving = asyncio.create_task(self.until_moving(before, kill.restarted_at + RECOVERY_BOUND))
        try:
            kill.serving_at = await self.wait_serving(server, time.time() + STARTUP_TIMEOUT)
            server.up.set()
            kill.recovered_at, kill.stalled = await moving
        finally:
            moving.cancel()
        for run_id in kill.stalled:
            self.note(
                "recovery_stalled",
                run_id,
                f"active at kill {number}, no new event {RECOVERY_BOUND:.0f}s after the restart",
            )
        print(kill.describe(), flush=True)
        await self.repeat_requests(final=False)

    async def pause_and_continue(self, number: int, how: str) -> None:
        """SIGSTOP a replica past its leases, then SIGCONT it: a zombie owner coming back."""
        server = self.routing.choice(self.servers)
        server.up.clear()
        self.down_since = time.time()
        pid, children, at = server.signal_all(signal.SIGSTOP)
        kill = Kill(number, pid, at, children, at, how=f"{how}, a pause ({server.address})", paused=True)
        self.kills.append(kill)
        before = await self.moving_runs()
        kill.active = len(before)
        # The runs of the paused replica move again once the others take them over.
        moving = asyncio.create_task(self.until_moving(before, at + PAUSE_SECONDS + RECOVERY_BOUND))
        try:
            await asyncio.sleep(PAUSE_SECONDS)
            _, _, kill.restarted_at = server.signal_all(signal.SIGCONT)
            kill.serving_at = await self.wait_serving(server, time.time() + STARTUP_TIMEOUT)
            server.up.set()
            kill.recovered_at, kill.stalled = await moving
        finally:
            moving.cancel()
        for run_id in kill.stalled:
            self.note("recovery_stalled", run_id, f"active at pause {number}, no new event since")
        print(kill.describe(), flush=True)
        await self.repeat_requests(final=False)

    async def database_outage(self, number: int, how: str) -> None:
        """Stop the database for `OUTAGE_SECONDS` under the running servers, then start it again:
        every run active meanwhile must move or settle after it."""
        database = self.config.database_server
        before = await self.moving_runs()
        at = time.time()
        await asyncio.to_thread(database.shut_down)
        kill = Kill(number, 0, at, down_at=time.time(), how=f"{how}, a database outage", outage=True)
        kill.active = len(before)
        self.kills.append(kill)
        await asyncio.sleep(OUTAGE_SECONDS)
        await asyncio.to_thread(database.start_again)
        kill.restarted_at = kill.serving_at = time.time()
        kill.recovered_at, kill.stalled = await self.until_moving(before, kill.restarted_at + RECOVERY_BOUND)
        for run_id in kill.stalled:
            self.note("recovery_stalled", run_id, f"active at outage {number}, no new event since")
        print(kill.describe(), flush=True)
        await self.repeat_requests(final=False)

    async def moving_runs(self) -> dict[str, int]:
        """run id -> last sequence of every run that has started and not settled."""
        return {
            run_id: seq
            for run_id, (status, seq) in (await self.stored.active()).items()
            if status not in _SETTLED and status != RunStatus.PENDING.value
        }

    async def until_some_run_active(self, bound: float) -> None:
        """Wait (boundedly) until some run is running or waiting, so a kill has something to hit."""
        while time.time() < bound:
            runs = await self.stored.active()
            if any(status in ("running", "waiting") for status, _ in runs.values()):
                return
            await asyncio.sleep(0.005)

    async def until_moving(self, before: dict[str, int], bound: float) -> tuple[float | None, list[str]]:
        """When every run active at the kill had a new event or settled (None and the rest if never)."""
        waiting = dict(before)
        while waiting and time.time() < bound:
            await asyncio.sleep(0.01)
            now = await self.stored.active()
            for run_id in list(waiting):
                if run_id not in now:
                    continue
                status, seq = now[run_id]
                if status in _SETTLED or seq > waiting[run_id]:
                    del waiting[run_id]
        return (None, sorted(waiting)) if waiting else (time.time(), [])

    # -- driving one run -----------------------------------------------------------------------

    def all_up(self) -> bool:
        return all(server.up.is_set() for server in self.servers)

    async def serving(self) -> Client:
        """The client of a serving replica, picked at random (waits out a lone server's restart)."""
        while True:
            up = [server for server in self.servers if server.up.is_set()]
            if up:
                client = self.routing.choice(up).client
                assert client is not None
                return client
            waiters = [asyncio.create_task(server.up.wait()) for server in self.servers]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
                await asyncio.gather(*waiters, return_exceptions=True)

    async def call(self, what: str, fn: Any, deadline: float) -> Any:
        """Call `fn(client)` on a serving replica until one answers, waiting out kills; service
        errors are raised."""
        delay = 0.05
        while True:
            client = await self.serving()
            try:
                return await fn(client)
            except errors.ServiceError as exc:
                if exc.reason not in (
                    "UNAVAILABLE",
                    "DEADLINE_EXCEEDED",
                    "CANCELLED",
                    "SERVER_DRAINING",
                    "STORAGE_UNAVAILABLE",
                ):
                    raise
            if time.time() > deadline:
                raise TimeoutError(f"{what}: no answer before the soak's deadline")
            await asyncio.sleep(delay)
            delay = min(1.0, delay * 2)

    async def drive(self, plan: RunPlan, slots: asyncio.Semaphore, deadline: float) -> None:
        async with slots:
            watcher: asyncio.Task[None] | None = None
            try:
                while self.launched >= self.launch_limit and time.time() < deadline:
                    await asyncio.sleep(0.01)
                await self.call(
                    "create",
                    lambda client: client.get_workflow(plan.workflow_id).create_run(plan.run_id),
                    deadline,
                )
                self.launched += 1
                if plan.watched:
                    watcher = asyncio.create_task(self.watch(plan, deadline))
                await self.start_run(plan, deadline)
                await self.follow_run(plan, deadline)
                if watcher is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            asyncio.shield(watcher), max(1.0, min(20.0, deadline - time.time()))
                        )
            except TimeoutError:
                plan.done = plan.done or "budget"
            finally:
                if watcher is not None and not watcher.done():
                    watcher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watcher

    async def start_run(self, plan: RunPlan, deadline: float) -> None:
        request_id = f"start:{plan.run_id}"
        try:
            await self.call(
                "start", lambda client: plan.handle(client).start(plan.input, request_id=request_id), deadline
            )
        except errors.AlreadyExists as exc:
            # Only after an unanswered first attempt; its request_id must make it a repeat.
            self.note(
                "start_retry_rejected", plan.run_id, f"Start retried with its request_id got {exc.reason}"
            )
        plan.started = True

    def targets(self, run: Run) -> list[Target]:
        """What the run waits for: suspended leaf steps, foreach items one by one."""
        records = {s.path: s for s in run.steps}
        found: list[Target] = []
        for path in run.suspended:
            if any(other != path and other[: len(path)] == path for other in run.suspended):
                continue  # a container (nested workflow, foreach over one): resume its leaves
            record = records.get(path)
            if record is None:
                continue
            items = [i.index for i in record.foreach_items if i.status is StepStatus.SUSPENDED]
            if items:
                found.extend(Target(path, index, record.iteration) for index in items)
            else:
                found.append(Target(path, None, record.iteration))
        return found

    async def follow_run(self, plan: RunPlan, deadline: float) -> None:
        last_seq = -1
        last_move = time.time()
        while True:
            if time.time() > deadline:
                plan.done = "budget"
                return
            run = await self.call(
                "get", lambda client: client.get_workflow(plan.workflow_id).run_by_id(plan.run_id), deadline
            )
            if run.last_sequence != last_seq or not self.all_up():
                last_seq = run.last_sequence
                last_move = time.time()
            if self.down_since > last_move:
                last_move = time.time()
            if run.status.terminal:
                plan.done = "terminal"
                return
            if run.status is RunStatus.SUSPENDED:
                if not await self.resume_next(plan, run, deadline):
                    plan.done = "stuck"
                    return
                last_move = time.time()
            elif time.time() - last_move > STALL_BOUND:
                self.note(
                    "stalled",
                    plan.run_id,
                    f"{run.status.value} with no new event for {STALL_BOUND:.0f}s (last sequence {last_seq})",
                )
                plan.done = "stalled"
                return
            await asyncio.sleep(POLL * self.rng.uniform(0.6, 1.4))

    async def resume_next(self, plan: RunPlan, run: Run, deadline: float) -> bool:
        """Resume one target; False when nothing can be resumed (the run is stuck)."""
        targets = self.targets(run)
        if not targets:
            self.note("suspended_without_target", plan.run_id, f"suspended={run.suspended}")
            return False
        for key in plan.accepted:  # when the run settled (suspended) first after each resume
            plan.settled_after.setdefault(key, run.updated_at)
        fresh = []
        for target in targets:
            if target.key in plan.accepted:
                if target.key in plan.reported:
                    continue
                plan.reported.add(target.key)
                # Kills between sending the resume and the run settling after it: with none, it is
                # not a crash defect: the resume was accepted and ignored.
                sent, settled = plan.sent_at[target.key], plan.settled_after[target.key]
                kills = sum(1 for kill in self.kills if sent < kill.at < settled)
                self.note(
                    "accepted_resume_lost" if kills else "accepted_resume_ignored",
                    plan.run_id,
                    f"resume {plan.accepted[target.key]!r} was acknowledged, yet {_where(target)} "
                    f"is suspended again ({kills} kill(s) between the resume and the run settling)",
                )
            else:
                fresh.append(target)
        if not fresh:
            return False
        target = fresh[0]
        request_id = target.request_id(plan.run_id)
        plan.sent.add((".".join(target.path), target.index, target.iteration))
        plan.sent_at[target.key] = time.time()
        try:
            await self.call(
                "resume",
                lambda client: plan.handle(client).resume(
                    target.data(), step=list(target.path), for_each_index=target.index, request_id=request_id
                ),
                deadline,
            )
        except errors.FailedPrecondition as exc:
            if exc.reason == "RUN_NOT_SUSPENDED":
                return True  # another poll will see what the run does now
            self.note("resume_rejected", plan.run_id, f"{request_id}: {exc.reason} {exc}")
            return False
        except errors.ServiceError as exc:
            self.note("resume_rejected", plan.run_id, f"{request_id}: {exc.reason} {exc}")
            return False
        plan.accepted[target.key] = request_id
        self.acks += 1
        return True

    # -- watchers --------------------------------------------------------------------------------

    async def watch(self, plan: RunPlan, deadline: float) -> None:
        """Follow the run with raw Watch calls, reconnecting after the last sequence seen."""
        last = 0
        while time.time() < deadline:
            client = await self.serving()
            call = client.stub.Watch(run_service_pb2.WatchRequest(run_id=plan.run_id, after_sequence=last))
            try:
                async for response in call:
                    for msg in response.events:
                        if msg.sequence != last + 1:
                            kind = "watch_duplicate" if msg.sequence <= last else "watch_gap"
                            self.note(
                                kind, plan.run_id, f"after sequence {last} the watch sent {msg.sequence}"
                            )
                        last = max(last, msg.sequence)
                        event = event_from_proto(msg)
                        if event is not None:
                            plan.watch_events.append(event)
                    if response.end_of_stream:
                        plan.watch_ended = True
                        return
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in (
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.CANCELLED,
                    grpc.StatusCode.UNKNOWN,
                    grpc.StatusCode.INTERNAL,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                ):
                    self.note("watch_error", plan.run_id, f"{exc.code().name}: {exc.details()}")
                    return
            finally:
                call.cancel()
            plan.watch_reconnects += 1
            await asyncio.sleep(self.rng.uniform(0.05, 0.3))

    # -- repeated request ids -----------------------------------------------------------------------

    async def repeat_requests(self, *, final: bool) -> None:
        """Send again some acknowledged Start/Resume requests of settled runs: nothing may change."""
        # Only runs whose driver is done: a resume the driver sends meanwhile would look like a change.
        candidates = [p for p in self.plans if p.started and p.done]
        self.rng.shuffle(candidates)
        sample = candidates if final else candidates[:8]
        deadline = time.time() + 60.0
        if not final:
            # Runs still being driven: resend their last acknowledged resume. The answer must be the
            # first outcome; anything it made run twice shows in the ledger and the event log.
            active = [p for p in self.plans if p.accepted and not p.done]
            for plan in active[:6]:
                key, request_id = list(plan.accepted.items())[-1]
                target = Target(*key)
                try:
                    await self.call(
                        request_id,
                        lambda client, plan=plan, target=target, request_id=request_id: plan.handle(
                            client
                        ).resume(
                            target.data(),
                            step=list(target.path),
                            for_each_index=target.index,
                            request_id=request_id,
                        ),
                        deadline,
                    )
                    self.repeats_checked += 1
                except errors.ServiceError as exc:
                    self.note(
                        "repeat_rejected", plan.run_id, f"repeating {request_id!r} got {exc.reason}: {exc}"
                    )
                except TimeoutError:
                    return
        for plan in sample[:40]:
            try:
                before = await self.call("get", lambda client, plan=plan: plan.get(client), deadline)
                if not before.status.settled:
                    continue
                requests: list[tuple[str, Any]] = [
                    (
                        "start",
                        lambda client, plan=plan: plan.handle(client).start(
                            plan.input, request_id=f"start:{plan.run_id}"
                        ),
                    )
                ]
                for key, request_id in list(plan.accepted.items())[:2]:
                    target = Target(*key)
                    requests.append(
                        (
                            request_id,
                            lambda client, plan=plan, target=target, request_id=request_id: plan.handle(
                                client
                            ).resume(
                                target.data(),
                                step=list(target.path),
                                for_each_index=target.index,
                                request_id=request_id,
                            ),
                        )
                    )
                for what, send in requests:
                    try:
                        await self.call(what, send, deadline)
                    except errors.ServiceError as exc:
                        self.note(
                            "repeat_rejected", plan.run_id, f"repeating {what!r} got {exc.reason}: {exc}"
                        )
                        continue
                    self.repeats_checked += 1
                    after = await self.call("get", lambda client, plan=plan: plan.get(client), deadline)
                    if (after.status, after.last_sequence, after.result) != (
                        before.status,
                        before.last_sequence,
                        before.result,
                    ):
                        self.note(
                            "repeat_changed_run",
                            plan.run_id,
                            f"repeating {what!r} changed the run: "
                            f"{before.status.value}/{before.last_sequence} -> "
                            f"{after.status.value}/{after.last_sequence}",
                        )
                        before = after
            except TimeoutError:
                return

    # -- the checks ------------------------------------------------------------------------------------

    reruns_in_flight = 0
    rerun_coverage: Counter[str]
    """Legitimate reruns (a kill hit the body) by workflow and phase: where the kills landed."""
    hit_by = 0
    ran_paths: set[str] = set()  # noqa: RUF012 (rebound per run while checking)
    """While checking a run: the step paths the ledger saw running."""
    """While checking a run: how many killed processes ran some of its steps."""

    def check(self, stored: Stored) -> None:
        """Compare what is stored with the reference and what the ledger and watchers saw."""
        runs, events, rows = stored
        steps: dict[str, list[StepRecord]] = defaultdict(list)
        for run_id, records in rows.items():
            for record, items in records:
                data = json.loads(record)
                if items is not None:  # a foreach step's items are rows of their own
                    data["foreach_items"] = sorted(json.loads(items), key=lambda item: item["index"])
                steps[run_id].append(StepRecord.from_json(data))
        executions: list[tuple[Any, ...]] = []
        for ledger in soak_workflows.ledger_files(self.ledger):
            with contextlib.closing(_db(ledger)) as db:
                executions += db.execute(
                    "SELECT run_id, path, idx, iteration, phase, pid, started, ended FROM executions"
                ).fetchall()
        executions.sort(key=lambda row: row[6])  # by start, across processes
        killed = {pid for kill in self.kills for pid in (kill.pid, *kill.children)}
        hit: Counter[str] = Counter()
        for run_id, pids in _pids_by_run(executions).items():
            hit[run_id] = len(pids & killed)
        ran: dict[str, set[str]] = defaultdict(set)
        for row in executions:
            ran[row[0]].add(row[1])
        for plan in self.plans:
            self.hit_by = hit[plan.run_id]
            self.ran_paths = ran[plan.run_id]
            self.check_run(
                plan, runs.get(plan.run_id), events.get(plan.run_id, []), steps.get(plan.run_id, [])
            )
        self.check_executions(executions, events)
        self.check_resumed(executions)

    def check_run(
        self, plan: RunPlan, row: tuple[Any, ...] | None, log: list[Event], records: list[StepRecord]
    ) -> None:
        run_id = plan.run_id
        if row is None:
            self.note("run_missing", run_id, "no stored run")
            return
        status, result, error, last_seq = row
        want = soak_workflows.expected(plan.workflow_id, plan.input)
        got = json.loads(result) if result is not None else None
        if status != RunStatus.SUCCESS.value:
            kind = (
                "not_terminal"
                if status not in (RunStatus.FAILED.value, RunStatus.CANCELED.value)
                else "wrong_status"
            )
            self.note(
                kind,
                run_id,
                f"status {status} (driver: {plan.done or 'unfinished'}), expected success with {want}; "
                f"error {error}; its steps ran in {self.hit_by} killed process(es)",
            )
        elif got != want:
            self.note(
                "wrong_result",
                run_id,
                f"finished success with {got}, expected {want} (input {plan.input}); "
                f"its steps ran in {self.hit_by} killed process(es)",
            )
        # Sequences 1..N with no gap, N the run's last sequence.
        seqs = [e.sequence for e in log]
        if seqs != list(range(1, len(seqs) + 1)) or len(seqs) != last_seq:
            self.note(
                "sequence_gap", run_id, f"stored sequences {seqs[:5]}...{seqs[-5:]} with last_seq {last_seq}"
            )
        # Exactly one committed result per step (path + loop iteration) and per foreach item.
        results = Counter(
            (e.step.path, e.step.iteration) for e in log if e.type is EventType.STEP_RESULT and e.step
        )
        for (path, iteration), n in results.items():
            if n > 1:
                self.note(
                    "duplicate_step_result",
                    run_id,
                    f"{'.'.join(path)} iteration {iteration}: {n} STEP_RESULT events",
                )
        items = Counter(
            (e.step.path, e.progress.current_index)
            for e in log
            if e.type is EventType.STEP_PROGRESS
            and e.step
            and e.progress
            and e.progress.iteration_status in (StepStatus.SUCCESS, StepStatus.FAILED)
        )
        for (path, index), n in items.items():
            if n > 1:
                self.note(
                    "duplicate_item_result",
                    run_id,
                    f"{'.'.join(path)} item {index}: {n} final progress events",
                )
        # Stored step records: a successful run has only successful steps, each with exactly one
        # STEP_RESULT for its last iteration, a record for every step whose body ran, and each
        # foreach keeps its items.
        if status == RunStatus.SUCCESS.value:
            stored_paths = {record.key for record in records}
            for key in sorted(self.ran_paths - stored_paths):
                self.note(
                    "missing_step_record", run_id, f"{key} ran but the successful run has no record of it"
                )
            for record in records:
                n = results.get((record.path, record.iteration), 0)
                if n == 0 and record.status is StepStatus.SUCCESS:  # more than one: duplicate_step_result
                    self.note(
                        "missing_step_result",
                        run_id,
                        f"{record.key} iteration {record.iteration}: {n} STEP_RESULT events, step succeeded",
                    )
            for record in records:
                if record.status is not StepStatus.SUCCESS:
                    self.note(
                        "bad_step_record",
                        run_id,
                        f"{record.key} is {record.status.value} in a successful run",
                    )
                elif record.path in soak_workflows.FOREACH_STEPS:
                    size = len(plan.input["values"])  # one item per input value, whatever is stored
                    counts = (len(record.payload or []), len(record.foreach_items), len(record.output or []))
                    if counts != (size, size, size):
                        self.note(
                            "bad_step_record",
                            run_id,
                            f"foreach {record.key} over {size} values: stored payload, item records and "
                            f"output have {counts} items",
                        )
        # Every watcher event (by sequence) equals the stored one.
        stored = {e.sequence: e for e in log}
        for event in plan.watch_events:
            same = stored.get(event.sequence)
            if same is None or _shape(same) != _shape(event):
                self.note(
                    "watch_mismatch",
                    run_id,
                    f"sequence {event.sequence}: watched {_shape(event)}, stored {_shape(same)}",
                )
                break
        terminal = status in (RunStatus.SUCCESS.value, RunStatus.FAILED.value, RunStatus.CANCELED.value)
        if plan.watched and terminal and (not plan.watch_ended or len(plan.watch_events) != len(log)):
            self.note(
                "watch_incomplete",
                run_id,
                f"watcher got {len(plan.watch_events)} of {len(log)} events, ended={plan.watch_ended}",
            )

    def check_resumed(self, executions: list[tuple[Any, ...]]) -> None:
        """A body runs with resume data only for a target the driver resumed (no stray resume)."""
        plans = {plan.run_id: plan for plan in self.plans}
        seen: set[tuple[str, str, int, int]] = set()
        for run_id, path, idx, iteration, phase, pid, _, _ in executions:
            if phase != "resume" or (run_id, path, idx, iteration) in seen:
                continue
            seen.add((run_id, path, idx, iteration))
            sent = plans[run_id].sent
            candidates: set[tuple[str, int | None, int]] = {(path, None, iteration)}
            if "[" not in path and idx >= 0:
                candidates = {(path, idx, iteration)}
            parts = path.split(".")
            for n, part in enumerate(parts):
                if part.startswith("["):  # an item of a foreach over a nested workflow
                    candidates.add((".".join(parts[:n]), int(part[1:-1]), iteration))
            if not candidates & sent:
                self.note(
                    "resumed_without_request",
                    run_id,
                    f"{path}{'' if idx < 0 else f' item {idx}'} ran with resume data in pid {pid}, "
                    f"but the driver never resumed it (resumes sent: {sorted(map(str, sent))})",
                )

    def timeline(self, run_id: str, log: list[Event], first: float, second: float) -> str:
        """What an unexplained rerun's report needs to be told apart: both starts, the stops and
        the run's stored events near them, and the servers' log lines about the run (times in
        seconds since the soak began)."""

        def at(moment: float) -> str:
            return f"+{moment - self.start_time:.3f}"

        lines = [f"starts {at(first)} and {at(second)}"]
        lines += (
            f"kill {k.number} ({'outage' if k.outage else 'pause' if k.paused else 'kill'} of pid {k.pid}): "
            f"at {at(k.at)}, down {at(k.down_at)}, back {at(k.restarted_at)}"
            for k in self.kills
            if k.at - 5 <= second and first <= k.restarted_at + 5
        )
        lines += (
            f"event {e.sequence} {at(e.time)} {e.type.value} {'.'.join(e.step_path)} {e.run_status.value}"
            for e in log
            if first - 5 <= e.time <= second + 5
        )
        for server in self.servers:
            with contextlib.suppress(OSError):
                text = server.log_path.read_text(errors="replace")
                about = [line for line in text.splitlines() if run_id in line]
                lines += (f"{server.address} log: {line}" for line in about[-TIMELINE_LOG_LINES:])
        return "".join(f"\n    {line}" for line in lines)

    def check_executions(self, executions: list[tuple[Any, ...]], events: dict[str, list[Event]]) -> None:
        """A body may run again only when the process running it died (or was paused past its
        leases) before its result was durable; a paused process, once it goes on, starts no
        body another replica runs too."""
        stops: dict[int, list[Kill]] = defaultdict(list)
        outages = [kill for kill in self.kills if kill.outage]
        for kill in self.kills:
            if not kill.outage:
                for pid in (kill.pid, *kill.children):
                    stops[pid].append(kill)

        def when(pid: int, started: float) -> float:
            """When the body began for the soak: a start noted within `PAUSE_GRACE` of a SIGCONT
            was under way at the pause (its lease was checked before)."""
            for k in stops[pid]:
                if k.paused and 0 <= started - k.restarted_at <= PAUSE_GRACE:
                    return k.at
            return started

        def zombie(pid: int, started: float) -> Kill | None:
            """The pause `pid` went on from shortly before `started`, before it could learn that
            its leases were gone (its next heartbeat)."""
            return next(
                (
                    k
                    for k in stops[pid]
                    if k.paused and PAUSE_GRACE < started - k.restarted_at <= LEASE_SECONDS
                ),
                None,
            )

        groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = defaultdict(list)
        for run_id, path, idx, iteration, phase, pid, started, ended in executions:
            groups[(run_id, path, idx, iteration, phase)].append((pid, when(pid, started), ended))
        for (run_id, path, idx, iteration, phase), runs in groups.items():
            item = "" if idx < 0 else f" item {idx}"
            where = f"{path}{item}{'' if not iteration else f' iteration {iteration}'} ({phase})"
            runs.sort(key=lambda execution: execution[1])
            for (pid, started, _), (next_pid, next_started, _) in itertools.pairwise(runs):
                # The kill or pause of the first process between the two starts explains the rerun,
                # and so does an outage of the database.
                stop = next(
                    (k for k in (*stops[pid], *outages) if started <= _cut_off(k) and k.at <= next_started),
                    None,
                )
                if stop is None:
                    # A process just back from a pause past its leases starts no body another
                    # replica runs: that one owns the run now.
                    zombies = (
                        (one, at, zombie(one, at)) for one, at in ((next_pid, next_started), (pid, started))
                    )
                    found = next(((one, at, pause) for one, at, pause in zombies if pause is not None), None)
                    if found is not None:
                        one, at, pause = found
                        other = pid if one == next_pid else next_pid
                        self.note(
                            "ran_after_pause",
                            run_id,
                            f"{where} started in pid {one} {at - pause.restarted_at:.3f}s after it went "
                            f"on from pause {pause.number}; pid {other} ran it too",
                        )
                    elif pid == next_pid:
                        self.note(
                            "rerun_same_process",
                            run_id,
                            f"{where} ran twice in pid {pid}"
                            + self.timeline(run_id, events.get(run_id, []), started, next_started),
                        )
                    else:
                        self.note(
                            "rerun_unexplained",
                            run_id,
                            f"{where} ran in pid {pid} (not killed), then again in pid {next_pid}"
                            + self.timeline(run_id, events.get(run_id, []), started, next_started),
                        )
                    continue
                committed = _committed_before(
                    events.get(run_id, []), path, idx, iteration, phase, stop.down_at
                )
                if committed is not None:
                    how = "paused" if stop.paused else "cut off by the outage" if stop.outage else "killed"
                    self.note(
                        "rerun_after_commit",
                        run_id,
                        f"{where} ran again in pid {next_pid} although its result was committed "
                        f"(sequence {committed}) before pid {pid} was {how}",
                    )
                else:
                    self.reruns_in_flight += 1
                    workflow = run_id.split("-", 2)[-1]
                    self.rerun_coverage[f"{workflow}:{phase}"] += 1


TIMELINE_LOG_LINES = 20
"""Server log lines about a run an unexplained rerun's report quotes."""


def _cut_off(stop: Kill) -> float:
    """The latest start of a body whose outcome `stop` may have kept from being committed.

    A killed or paused process starts nothing once it is down. The database being down stops no
    body from starting: a step's start is staged, not committed, before its body runs, and the
    lease is checked against its last renewal. Such a body's outcome then fails to commit, and the
    drive runs it again from the last checkpoint once the database is back.
    """
    return stop.restarted_at if stop.outage else stop.down_at


def _where(target: Target) -> str:
    item = "" if target.index is None else f" item {target.index}"
    return f"{'.'.join(target.path)}{item} (iteration {target.iteration})"


def _pids_by_run(executions: list[tuple[Any, ...]]) -> dict[str, set[int]]:
    pids: dict[str, set[int]] = defaultdict(set)
    for row in executions:
        pids[row[0]].add(row[5])
    return pids


def _committed_before(
    log: list[Event], path: str, idx: int, iteration: int, phase: str, kill_at: float
) -> int | None:
    """The sequence of the committed outcome of one execution, if it was written before `kill_at`."""
    steps = tuple(path.split("."))
    for event in log:
        if event.time >= kill_at or event.step is None or event.step.path != steps:
            continue
        if idx >= 0 and "[" not in path:  # a foreach item: its progress event carries the outcome
            if (
                event.type is EventType.STEP_PROGRESS
                and event.progress
                and event.progress.current_index == idx
            ):
                final = event.progress.iteration_status
                if (phase == "suspend") == (
                    final is StepStatus.SUSPENDED
                ) and final is not StepStatus.RUNNING:
                    return event.sequence
            continue
        if iteration and event.step.iteration != iteration:
            continue
        if phase == "suspend" and event.type is EventType.STEP_SUSPENDED:
            return event.sequence
        if phase != "suspend" and event.type is EventType.STEP_RESULT:
            return event.sequence
    return None


def _shape(event: Event | None) -> tuple[Any, ...] | None:
    """What a watcher's event and the stored one must share."""
    if event is None:
        return None
    step = event.step
    return (
        event.sequence,
        event.type.value,
        event.run_status.value,
        step.path if step else None,
        step.status.value if step else None,
        event.progress.current_index if event.progress else None,
    )
