"""`runservice serve` as a real process: startup, SIGTERM, bad configuration, resume after a restart."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from socket import gethostname

import pytest
from postgres import PostgresServer

from runservice import errors
from runservice.cli.common import status_code
from runservice.client import Client
from runservice.config import SECRET_SETTINGS, ConfigError, Settings, env_name
from runservice.model import RunStatus
from runservice.server import status as server_status

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

pytestmark = pytest.mark.timeout(60)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNSERVICE_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [
            str(ROOT),
            str(ROOT / "service"),
            str(ROOT / "stubs"),
            *extra.pop("PYTHONPATH", "").split(os.pathsep),
        ]
    )
    env.update(extra)
    return env


@dataclass
class ServerProcess:
    proc: asyncio.subprocess.Process
    address: str = ""
    log: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    async def stop(self) -> int:
        """SIGTERM, then the exit code (within STOP_TIMEOUT seconds)."""
        self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT)
        if self.reader is not None:
            await self.reader
        return code


Launcher = Callable[..., Awaitable[ServerProcess]]


@pytest.fixture
async def launch() -> AsyncIterator[Launcher]:
    """Start `python -m service serve ARGS` and wait until it logs its port; kills leftovers at the end."""
    started: list[ServerProcess] = []

    async def start(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "runservice", "serve", "--address", "127.0.0.1:0", *args,
            cwd=ROOT, env=env or _env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        server = ServerProcess(proc)
        started.append(server)
        assert proc.stderr is not None
        stderr = proc.stderr

        async def until_listening() -> None:
            while line := (await stderr.readline()).decode():
                server.log.append(line)
                found = re.search(r"listening on (\S+)", line)
                if found:
                    server.address = found.group(1)
                    return
            pytest.fail("the server exited before listening:\n" + "".join(server.log))

        await asyncio.wait_for(until_listening(), STARTUP_TIMEOUT)

        async def keep_reading() -> None:  # a full pipe would block the server's logging
            while line := (await stderr.readline()).decode():
                server.log.append(line)

        server.reader = asyncio.create_task(keep_reading())
        return server

    yield start
    for server in started:
        if server.proc.returncode is None:
            server.proc.kill()
            await server.proc.wait()
        if server.reader is not None:
            server.reader.cancel()


async def test_serve_examples_and_stop_on_sigterm(launch: Launcher, tmp_path: Path) -> None:
    server = await launch("--data-dir", str(tmp_path / "data"))
    assert re.fullmatch(r"127\.0\.0\.1:\d+", server.address) and not server.address.endswith(":0")
    async with Client(server.address, timeout=10.0) as client:
        ids = {wf.id for wf in await client.list_workflows()}
    assert {"city-weather", "human-approval", "cancellable-report"} <= ids
    assert await server.stop() == 0
    log = "".join(server.log)
    assert f"serving {len(ids)} workflows on {server.address}" in log
    assert (tmp_path / "data" / "runservice.db").exists()
    assert "Traceback" not in log


async def test_resume_after_a_real_server_restart(launch: Launcher, tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    first = await launch("--data-dir", data, "--workflows", "tests.workflows")
    async with Client(first.address, timeout=10.0) as client:
        run = await client.get_workflow("approval").create_run(run_id="restart-me")
        suspended = await run.start_async(input_data={"count": 41})
        assert suspended.status is RunStatus.SUSPENDED
    assert await first.stop() == 0

    # The second process reads its workflows module from the environment instead.
    second = await launch("--data-dir", data, env=_env(RUNSERVICE_WORKFLOWS="tests.workflows"))
    async with Client(second.address, timeout=10.0) as client:
        wf = client.get_workflow("approval")
        before = await wf.run_by_id("restart-me")
        assert before.status is RunStatus.SUSPENDED and before.suspended == (("ask",),)
        again = await wf.create_run(run_id="restart-me")
        done = await again.resume_async(resume_data={"approved": True})
        assert done.status is RunStatus.SUCCESS and done.result == {"verdict": "approved"}
        bump = next(step for step in done.steps if step.path == ("bump",))
        assert bump.output == {"count": 42}
    assert await second.stop() == 0


async def test_serve_on_postgresql_resumes_after_a_restart(
    launch: Launcher, postgres_server: PostgresServer
) -> None:
    empty = await postgres_server.create_database(migrated=False)
    user, host = empty.split("://", 1)[1].split("@", 1)
    url = f"postgresql://{user}:not-logged@{host}"  # trust auth ignores the password; logs must too
    first = await launch("--database-url", url, "--workflows", "tests.workflows")
    async with Client(first.address, timeout=10.0) as client:
        run = await client.get_workflow("approval").create_run(run_id="pg-restart")
        suspended = await run.start_async(input_data={"count": 1})
        assert suspended.status is RunStatus.SUSPENDED
    assert await first.stop() == 0
    log = "".join(first.log)
    assert "migrated the database schema to version 1" in log
    assert "not-logged" not in log and f"{user}:***@" in log

    second = await launch(env=_env(RUNSERVICE_WORKFLOWS="tests.workflows", RUNSERVICE_DATABASE_URL=url))
    async with Client(second.address, timeout=10.0) as client:
        again = await client.get_workflow("approval").create_run(run_id="pg-restart")
        done = await again.resume_async(resume_data={"approved": True})
        assert done.status is RunStatus.SUCCESS and done.result == {"verdict": "approved"}
    assert await second.stop() == 0
    assert "migrated" not in "".join(second.log)  # already at the current version
    await postgres_server.drop_database(empty)


def test_unreachable_postgresql_is_a_clean_failure() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = _run_cli("--database-url", f"postgresql://u:secret@127.0.0.1:{port}/db")
    assert done.returncode == 1
    assert "cannot open PostgreSQL database" in done.stderr and "secret" not in done.stderr
    assert "Traceback" not in done.stderr


def _run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runservice", "serve", "--address", "127.0.0.1:0", *args],
        cwd=ROOT, env=env or _env(), capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def test_unknown_workflows_module_is_a_one_line_error(tmp_path: Path) -> None:
    done = _run_cli("--data-dir", str(tmp_path), "--workflows", "no_such_module_here")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no_such_module_here" in lines[0] and "Traceback" not in done.stderr


def test_uncommitted_workflow_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "draft_flows.py").write_text(
        "from runservice.workflow import create_step, create_workflow\n"
        "@create_step('only')\n"
        "async def only(ctx):\n"
        "    return 1\n"
        "draft = create_workflow('draft').then(only)\n"
    )
    done = _run_cli(
        "--data-dir", str(tmp_path), "--workflows", "draft_flows", env=_env(PYTHONPATH=str(tmp_path))
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "'draft'" in lines[0] and "not committed" in lines[0]


def test_bad_setting_is_a_one_line_error(tmp_path: Path) -> None:
    done = _run_cli("--data-dir", str(tmp_path), env=_env(RUNSERVICE_HEARTBEAT="often"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "runservice: error: heartbeat (environment): 'often' is not a number of seconds"
    ]


@pytest.mark.parametrize("variable", ["RUNSERVICE_TOKENS", "RUNSERVICE_TOKENS_FILE"])
def test_an_empty_auth_variable_fails_closed(tmp_path: Path, variable: str) -> None:
    """Empty variables are ignored, and an empty secret turned authentication off."""
    done = _run_cli("--data-dir", str(tmp_path), env=_env(**{variable: ""}))
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.endswith(f"{variable} is set but empty: unset it to serve without authentication")
    assert not (tmp_path / "runservice.db").exists()


def test_two_variables_of_one_setting_that_disagree_are_refused(tmp_path: Path) -> None:
    """pydantic took one of RUNSERVICE_SHUTDOWN_GRACE and RUNSERVICE_GRACE and ignored the other."""
    done = _run_cli(
        "--data-dir", str(tmp_path), env=_env(RUNSERVICE_SHUTDOWN_GRACE="30", RUNSERVICE_GRACE="5")
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "runservice: error: grace (environment): RUNSERVICE_SHUTDOWN_GRACE='30' and RUNSERVICE_GRACE='5'"
        " disagree: set one of them"
    ]
    assert not (tmp_path / "runservice.db").exists()


def test_settings_from_env_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "RUNSERVICE_ADDRESS": "0.0.0.0:6000",
        "RUNSERVICE_WORKFLOWS": "a.b, c.d",
        "RUNSERVICE_SHUTDOWN_GRACE": "3",
        "RUNSERVICE_DATA_DIR": str(tmp_path),
        "RUNSERVICE_LOG_LEVEL": "debug",
        "RUNSERVICE_MAX_STREAMS_PER_CALLER": "5",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.load()
    assert settings.address == "0.0.0.0:6000" and settings.workflows == ("a.b", "c.d")
    assert settings.grace == 3.0 and settings.heartbeat == 15.0 and settings.log_level == "DEBUG"
    assert settings.max_streams_per_caller == 5
    assert settings.database == f"sqlite:///{tmp_path.resolve() / 'runservice.db'}"
    flagged = Settings.load(address="127.0.0.1:7000", database_url="sqlite:///x.db", grace=None)
    assert (
        flagged.address == "127.0.0.1:7000" and flagged.database == "sqlite:///x.db" and flagged.grace == 3.0
    )
    monkeypatch.delenv("RUNSERVICE_SHUTDOWN_GRACE")
    monkeypatch.setenv("RUNSERVICE_GRACE", "4")  # the short name works too
    assert Settings.load().grace == 4.0
    with pytest.raises(ConfigError, match=r"^heartbeat \(flag\): '0' must be a finite positive number$"):
        Settings.load(heartbeat="0")
    with pytest.raises(
        ConfigError, match=r"^lease-seconds \(flag\): 'nan' must be a finite positive number$"
    ):
        Settings.load(lease_seconds="nan")
    with pytest.raises(ConfigError, match=r"^grace \(flag\): 'inf' must be a finite number >= 0$"):
        Settings.load(grace="inf")
    with pytest.raises(ConfigError, match=r"^max-active-runs \(flag\): '-1' must be >= 0 \(0: no limit\)$"):
        Settings.load(max_active_runs="-1")


def test_retention_takes_a_duration_with_a_unit() -> None:
    assert Settings.load().retention == 0.0  # kept for ever unless asked
    assert [
        Settings.load(retention=text).retention for text in ("30d", "12h", "90m", "45s", "600", "1.5d")
    ] == [
        30 * 86400.0,
        12 * 3600.0,
        90 * 60.0,
        45.0,
        600.0,
        1.5 * 86400.0,
    ]
    for bad, why in (
        ("soon", "is not a duration"),
        ("-1d", "must be a finite number >= 0"),
        ("inf", "finite"),
    ):
        with pytest.raises(ConfigError, match=rf"^retention \(flag\): '{bad}' .*{why}"):
            Settings.load(retention=bad)


def test_unknown_variable_is_one_warning_line(tmp_path: Path) -> None:
    done = _run_cli(
        "--data-dir", str(tmp_path), "--workflows", "no_such_module_here",
        env=_env(
            RUNSERVICE_GRACEFUL="3", RUNSERVICE_HEARTBEET="1", RUNSERVICE_GRACE="2",
            RUNSERVICE_TARGET="127.0.0.1:1", RUNSERVICE_TOKEN="t",  # the command-line client's
        ),
    )  # fmt: skip
    warnings = [line for line in done.stderr.splitlines() if "unknown environment variables" in line]
    assert len(warnings) == 1
    assert warnings[0].endswith("RUNSERVICE_GRACEFUL, RUNSERVICE_HEARTBEET"), warnings[0]


@pytest.mark.parametrize("port", ["99999", "65536", "abc", "", "-1"])
def test_an_address_without_a_valid_port_is_a_one_line_usage_error(tmp_path: Path, port: str) -> None:
    """Before, 99999 was taken as 99999 % 65536 (the server listened elsewhere than asked),
    and a name printed gRPC's own log line, then exited 1."""
    for flag in ("--address", "--metrics-address"):
        done = _run_cli("--data-dir", str(tmp_path), flag, f"127.0.0.1:{port}")
        assert done.returncode == 2, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert "from 0 to 65535" in line and flag.lstrip("-") in line, line


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--max-concurrent-streams", "2147483648", "'2147483648' must be from 1 to 2147483647"),
        ("--max-concurrent-streams", "0", "'0' must be from 1 to 2147483647"),
        (
            "--workflow-max-active-runs",
            "city-weather=4294967296",
            "'city-weather=4294967296': must be at most 4294967295",
        ),
    ],
)
def test_an_integer_setting_out_of_its_range_is_a_one_line_usage_error(
    tmp_path: Path, flag: str, value: str, expected: str
) -> None:
    """gRPC takes --max-concurrent-streams as a C int: 2**31 crashed the start with a 33-line
    OverflowError traceback; a workflow bound past a uint32 made ListWorkflows fail INTERNAL."""
    name = flag.removeprefix("--")
    for args, env, source in (
        ((flag, value), _env(), "flag"),
        ((), _env(**{env_name(name.replace("-", "_")): value}), "environment"),
    ):
        done = _run_cli("--data-dir", str(tmp_path), *args, env=env)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines() == [f"runservice: error: {name} ({source}): {expected}"]
    assert not (tmp_path / "runservice.db").exists()


def test_every_setting_is_a_flag_and_a_readme_row() -> None:
    readme = (ROOT / "README.md").read_text()
    parser_help = subprocess.run(
        [sys.executable, "-m", "runservice", "serve", "--help"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    for name in Settings.model_fields:
        assert f"`{env_name(name)}`" in readme, name
        if name not in SECRET_SETTINGS:
            flag = "--" + name.replace("_", "-")
            assert flag in parser_help and f"`{flag}`" in readme, name
    # What the validators take, in help and README alike (CRITICAL was only in the README).
    levels = "DEBUG, INFO, WARNING, ERROR or CRITICAL"
    assert levels in " ".join(parser_help.split())
    assert f"| {levels} |" in readme


def test_default_settings_give_the_default_edge(monkeypatch: pytest.MonkeyPatch) -> None:
    from runservice.cli.serve import edge_options
    from runservice.server import EdgeOptions

    for name in [n for n in os.environ if n.startswith("RUNSERVICE_")]:
        monkeypatch.delenv(name)
    # The health socket is the data directory's: not an edge setting of its own.
    socket = Path("data") / f"runservice.{gethostname()}.sock"
    assert edge_options(Settings.load()) == EdgeOptions(probe_socket=socket)


def test_the_cli_names_the_status_code_of_every_branch_of_the_error_tree() -> None:
    """`runservice: error: CODE REASON: ...` and --json's `code` use the server's code for each
    branch (before, RESOURCE_EXHAUSTED errors showed their reason as the code)."""
    for cls, code in server_status.CODES.items():
        if cls is errors.ServiceError or not issubclass(cls, errors.ServiceError):
            continue
        error = cls.__new__(cls)
        errors.ServiceError.__init__(error, "message", reason="SOME_REASON")
        assert status_code(error) == code.name, cls


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app@127.0.0.1:1/db?password=hunter2",  # asyncpg reads it from the query too
        "postgresql://app:hunter2@127.0.0.1:1/db",
        "postgresql+asyncpg://app:hunter2@127.0.0.1:1/db",  # not a URL we take: said without it
    ],
)
def test_a_database_password_is_never_printed(tmp_path: Path, url: str) -> None:
    done = _run_cli("--data-dir", str(tmp_path), "--database-url", url)
    assert done.returncode != 0
    assert "hunter2" not in done.stderr and "***" in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # Was `cannot serve: invalid literal for int() with base 10: 'abc'`, exit 1.
        ("postgresql://app:hunter2@127.0.0.1:abc/db", "is not a PostgreSQL URL (port could not be cast"),
        ("postgresql://app:hunter2@127.0.0.1:70000/db", "is not a PostgreSQL URL (port out of range"),
        # Was `cannot serve: Invalid IPv6 URL`, exit 1.
        ("postgresql://app:hunter2@[bad/db?password=hunter2", "is not a PostgreSQL URL (invalid ipv6 url)"),
        # Exit 1, though a configuration error.
        ("mysql://app:hunter2@db/x", "is not a database URL runservice takes"),
        # The password was printed as given: only PostgreSQL URLs were redacted.
        ("sqlite://admin:hunter2@db/x", "is not an SQLite URL"),
    ],
)
def test_a_database_url_of_the_wrong_shape_is_a_one_line_usage_error(
    tmp_path: Path, url: str, expected: str
) -> None:
    """Checked with the settings: one line naming the setting and where it came from, exit 2,
    the URL without its password, whatever its scheme."""
    for args, env, source in (
        (("--database-url", url), _env(), "flag"),
        ((), _env(RUNSERVICE_DATABASE_URL=url), "environment"),
    ):
        done = _run_cli("--data-dir", str(tmp_path), *args, env=env)
        assert done.returncode == 2, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith(f"runservice: error: database-url ({source}): '") and expected in line, line
        assert "hunter2" not in line and ":***@" in line, line
    assert not list(tmp_path.iterdir())
