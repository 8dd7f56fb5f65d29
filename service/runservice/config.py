"""Settings of `runservice serve`: one pydantic-settings object behind the flags and `RUNSERVICE_*`.

Precedence: defaults, then `RUNSERVICE_<NAME>` environment variables, then flags. Every field
is one setting; `cli/serve.py` builds its flags from the fields, and the README table lists them.
A `RUNSERVICE_*` variable that names no setting is reported by `unknown_variables` (serve logs it).
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from runservice.errors import WorkflowDefinitionError
from runservice.limits import ACTIVE_RUNS_BOUND, GRPC_INT
from runservice.storage import check_database_url, redact_url
from runservice.workflow.schedule import Schedule

if TYPE_CHECKING:
    from runservice.workflow import Workflow

PREFIX = "RUNSERVICE_"
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_MIB = 1024 * 1024
MIN_MESSAGE_SIZE = 64 * 1024
"""The smallest `max_message_size` accepted."""
MAX_MESSAGE_SIZE = 256 * _MIB
"""The largest `max_message_size` accepted: gRPC takes its limits as 32-bit ints, and the
server receives up to four times it (`RECEIVE_SLACK`) to answer a larger request with details.
512 MiB and more failed the start with a traceback (an audit)."""
_REPLICA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
"""Units of a duration (`retention`, the CLI's `--since`): seconds, minutes, hours, days."""

SECRET_SETTINGS = frozenset({"tokens"})
"""Settings read only from the environment: a flag would show the secret in `ps`."""


def parse_duration(text: str) -> float:
    """Seconds in `text`: a number of seconds, or a number with s, m, h or d (`30d`).
    ValueError otherwise (NaN and infinity are left to the caller's own bounds)."""
    text = text.strip().lower()
    scale = _UNITS.get(text[-1:], 1.0) if text else 1.0
    number = text[:-1] if text[-1:] in _UNITS else text
    try:
        return float(number) * scale
    except ValueError:
        raise ValueError("is not a duration (seconds, or a number with s, m, h or d: 30d)") from None


class ConfigError(ValueError):
    """A setting has a value that cannot be used."""


class Settings(BaseSettings):
    """Everything `serve` needs; `database` resolves the database URL."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX,
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        env_ignore_empty=True,
    )

    address: str = Field("127.0.0.1:50051", description="HOST:PORT to listen on")
    data_dir: str = Field("./data", description="directory of runservice.db and runservice.address")
    database_url: str | None = Field(
        None,
        description="`sqlite:///relative/file.db`, `sqlite:////absolute/file.db` or "
        "`postgresql://user@host/db` (overrides the data dir)",
    )
    durability: str = Field(
        "full",
        description="SQLite: full (whatever a caller or watcher is told survives a power loss) or "
        "normal (no fsync ever: a power loss may lose replies and events already delivered)",
    )
    workflows: Annotated[tuple[str, ...], NoDecode] = Field(
        ("runservice.examples",), description="comma-separated modules whose workflows are served"
    )
    app_dir: str = Field(".", description="directory the workflows modules are imported from")
    grace: float = Field(
        10.0,
        validation_alias=AliasChoices("grace", PREFIX + "SHUTDOWN_GRACE", PREFIX + "GRACE"),
        description="seconds in-flight RPCs and running steps get to finish on SIGTERM "
        "(variable RUNSERVICE_SHUTDOWN_GRACE or RUNSERVICE_GRACE)",
    )
    drain_delay: float = Field(
        0.0,
        description="seconds health reports NOT_SERVING while still serving, before the listener closes",
    )
    heartbeat: float = Field(
        15.0, description="seconds of silence after which Stream and Watch send a heartbeat"
    )
    lease_seconds: float = Field(
        10.0,
        description="seconds a replica keeps an active run without renewing its lease (PostgreSQL); "
        "a run of a dead replica is taken over after it",
    )
    claim_interval: float = Field(
        1.0, description="seconds between looks for active runs that no replica drives"
    )
    retention: float = Field(
        0.0,
        description="how long a settled run (succeeded, failed or canceled) is kept after it ended, "
        "then deleted with its events: seconds, or a number with s, m, h or d (30d); 0: kept for ever. "
        "Suspended runs are never deleted",
    )
    replica_name: str | None = Field(
        None,
        description="a name unique to this server among those sharing a PostgreSQL database and kept "
        "across its restarts (a StatefulSet pod's name): a restarted server takes over the runs its "
        "previous process left at once, not after their leases; unset: a fresh identity each start",
    )
    max_active_runs: int = Field(
        10_000,
        description="runs one server drives at once, sleeping ones aside; past it, runs started or "
        "resumed are stored and wait until some server has room; 0: no limit",
    )
    workflow_max_active_runs: str | None = Field(
        None,
        description="bounds on one workflow's runs driven at once (by all the servers sharing the "
        "database together: give each the same), replacing those the "
        "workflows' authors set (create_workflow(..., max_active_runs=N)): WORKFLOW=N[,WORKFLOW=N], "
        "0 for no bound of its own",
    )
    # From the levels the validator takes: CRITICAL, taken, was left out of `serve --help` (audit).
    log_level: str = Field("INFO", description=f"{', '.join(_LOG_LEVELS[:-1])} or {_LOG_LEVELS[-1]}")
    log_format: str = Field("text", description="text, or json for one JSON object per line")
    access_log: bool = Field(True, description="one log line per RPC (method, code, duration, peer)")
    metrics_address: str | None = Field(
        None, description="HOST:PORT serving Prometheus metrics at /metrics; unset: no metrics"
    )
    tracing: bool = Field(False, description="OpenTelemetry spans of runs and steps")
    engine_process: bool = Field(
        False,
        description="run the engine and the store in a second process, so the gRPC edge and the engine "
        "each have a core: more runs/s under load, about 0.1 ms more per call",
    )
    tokens_file: str | None = Field(
        None,
        description="bearer tokens: one per line, or a .toml/.json file with per-token options",
    )
    tokens_poll_interval: float = Field(
        2.0,
        description="seconds between looks at --tokens-file for changes; a change is read once the file "
        "held still from one look to the next, so an edit takes effect within twice this (SIGHUP: at once)",
    )
    tokens: str | None = Field(
        None, description="comma-separated bearer tokens with full access (environment only)"
    )
    tls_cert: str | None = Field(
        None, description="PEM certificate chain: serve TLS (reloaded on change/SIGHUP)"
    )
    tls_key: str | None = Field(None, description="PEM private key of --tls-cert")
    tls_client_ca: str | None = Field(None, description="PEM CA bundle: require client certificates (mTLS)")
    max_message_size: int = Field(8 * _MIB, description="largest request or reply in bytes")
    max_concurrent_streams: int = Field(1000, description="concurrent calls per connection (HTTP/2)")
    max_streams_per_caller: int = Field(
        1000, description="open Stream/Watch calls per caller (token, else peer address); 0: no limit"
    )
    schedules: str | None = Field(
        None,
        description="cron schedules besides the workflows' own: a JSON array of objects (id, workflow, "
        "cron, timezone, input_data, overlap, missed, resource_id, description), or the path of a "
        ".json or .toml file holding one (TOML: [[schedules]] tables)",
    )

    @field_validator(
        "grace",
        "heartbeat",
        "drain_delay",
        "lease_seconds",
        "claim_interval",
        "tokens_poll_interval",
        mode="before",
    )
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise ValueError("is not a number of seconds") from None
        return value

    @field_validator("retention", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_duration(value)
        return value

    @field_validator("grace", "drain_delay", "retention")
    @classmethod
    def _not_negative(cls, value: float) -> float:
        if not math.isfinite(value) or value < 0:
            raise ValueError("must be a finite number >= 0")
        return value

    @field_validator("heartbeat", "lease_seconds", "claim_interval", "tokens_poll_interval")
    @classmethod
    def _positive(cls, value: float) -> float:
        if not math.isfinite(value) or value <= 0:
            raise ValueError("must be a finite positive number")
        return value

    @field_validator("replica_name")
    @classmethod
    def _replica_name(cls, value: str | None) -> str | None:
        if value == "":
            return None  # an empty variable: unset
        if value is not None and not _REPLICA_NAME.fullmatch(value):
            raise ValueError("must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @field_validator("max_concurrent_streams")
    @classmethod
    def _positive_int(cls, value: int) -> int:
        # gRPC takes it as a C int: above that the start crashed (OverflowError, an audit).
        if not 0 < value <= GRPC_INT:
            raise ValueError(f"must be from 1 to {GRPC_INT}")
        return value

    @field_validator("max_message_size")
    @classmethod
    def _message_size(cls, value: int) -> int:
        # Below this even a run's summary (its error message, its labels) may not fit a reply.
        if value < MIN_MESSAGE_SIZE:
            raise ValueError(f"must be at least {MIN_MESSAGE_SIZE} bytes (64 KiB)")
        if value > MAX_MESSAGE_SIZE:
            raise ValueError(f"must be at most {MAX_MESSAGE_SIZE} bytes (256 MiB)")
        return value

    @field_validator("max_streams_per_caller", "max_active_runs")
    @classmethod
    def _limit(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must be >= 0 (0: no limit)")
        return value

    @field_validator("workflows", mode="before")
    @classmethod
    def _modules(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not value:
            raise ValueError("name at least one module")
        return tuple(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> Any:
        level = str(value).upper()
        if level not in _LOG_LEVELS:
            raise ValueError(f"is not one of {', '.join(_LOG_LEVELS)}")
        return level

    @field_validator("address", "metrics_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return value
        host, _, port = value.rpartition(":")
        # Checked here: gRPC and the resolver would take port 99999 as 99999 % 65536.
        if not host or not port.isdigit() or int(port) > 65535:
            raise ValueError("must be HOST:PORT with a port from 0 to 65535")
        return value

    @field_validator("tokens", "tokens_file")
    @classmethod
    def _auth_given(cls, value: str | None) -> str | None:
        # Fail closed: a secret that reached the process empty turned authentication off.
        if value is not None and not value.strip():
            raise ValueError("is set but empty: unset it to serve without authentication")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value:
            check_database_url(value)  # `sqlite://name`, a port that is not one, another scheme
        return value

    @field_validator("durability", mode="before")
    @classmethod
    def _durability(cls, value: Any) -> Any:
        mode = str(value).lower()
        if mode not in ("full", "normal"):
            raise ValueError("is not full or normal")
        return mode

    @field_validator("log_format", mode="before")
    @classmethod
    def _log_format(cls, value: Any) -> Any:
        fmt = str(value).lower()
        if fmt not in ("text", "json"):
            raise ValueError("is not text or json")
        return fmt

    @field_validator("schedules")
    @classmethod
    def _schedules(cls, value: str | None) -> str | None:
        if value is not None:
            parse_schedules(value)  # a bad cron, time zone or policy is an error at load time
        return value

    @field_validator("workflow_max_active_runs")
    @classmethod
    def _workflow_limits(cls, value: str | None) -> str | None:
        if value is not None:
            parse_workflow_limits(value)
        return value

    def workflow_limits(self) -> dict[str, int]:
        """The `workflow_max_active_runs` setting: workflow id -> its bound (0: none)."""
        return (
            {}
            if self.workflow_max_active_runs is None
            else parse_workflow_limits(self.workflow_max_active_runs)
        )

    def declared_schedules(self) -> list[Schedule]:
        """The schedules of the `schedules` setting, checked (cron, time zone, policies)."""
        return [] if self.schedules is None else parse_schedules(self.schedules)

    @property
    def database(self) -> str:
        """The database URL: `database_url`, else `runservice.db` in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir).expanduser().resolve() / 'runservice.db'}"

    @property
    def address_file(self) -> Path:
        """Where the server writes the address it listens on (read by `runservice health`)."""
        return Path(self.data_dir).expanduser() / "runservice.address"

    @property
    def probe_socket(self) -> Path:
        """The Unix socket serving the health service alone, in plaintext (`runservice health`):
        one per host, so replicas sharing a data directory (a volume) keep their own."""
        return Path(self.data_dir).expanduser() / f"runservice.{socket.gethostname()}.sock"

    @classmethod
    def load(cls, **flags: Any) -> Settings:
        """Defaults, then `RUNSERVICE_*` variables, then `flags` (None means "not given").

        Raises ConfigError with one line naming the setting and where its value came from.
        """
        given = {name: value for name, value in flags.items() if value is not None}
        try:
            return cls(**given)
        except ValidationError as exc:
            raise ConfigError(_describe(exc, given)) from None


class ScheduleSetting(BaseModel):
    """One schedule of the `schedules` setting; `workflow` names a served workflow."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    workflow: str
    cron: str
    timezone: str = "UTC"
    input_data: Any = None
    overlap: str = "skip"
    missed: str = "skip"
    resource_id: str | None = None
    description: str = ""


def parse_workflow_limits(value: str) -> dict[str, int]:
    """`WORKFLOW=N[,WORKFLOW=N]` as {workflow id: N}; raises ValueError naming what is wrong."""
    limits: dict[str, int] = {}
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        workflow_id, equals, number = (text.strip() for text in item.partition("="))
        if not workflow_id or not equals:
            raise ValueError(f"{item!r} is not WORKFLOW=N")
        if workflow_id in limits:
            raise ValueError(f"workflow {workflow_id!r} is given twice")
        try:
            bound = int(number)
        except ValueError:
            raise ValueError(f"{item!r}: {number!r} is not a whole number") from None
        if bound < 0:
            raise ValueError(f"{item!r}: must be >= 0 (0: no bound of its own)")
        if bound > ACTIVE_RUNS_BOUND:  # ListWorkflows carries it as a uint32
            raise ValueError(f"{item!r}: must be at most {ACTIVE_RUNS_BOUND}")
        limits[workflow_id] = bound
    return limits


def parse_schedules(value: str) -> list[Schedule]:
    """The schedules of the `schedules` setting: JSON text, or a .json / .toml file's path.
    Raises ValueError naming what is wrong."""
    text = value.strip()
    if not text.startswith("["):
        path = Path(text).expanduser()
        if path.suffix not in (".json", ".toml"):
            raise ValueError("is neither a JSON array nor the path of a .json or .toml file")
        try:
            content = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            data: Any = tomllib.loads(content) if path.suffix == ".toml" else json.loads(content)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path} is not valid {path.suffix[1:].upper()}: {exc}") from None
        if isinstance(data, dict):
            data = data.get("schedules", [])
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"is not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise ValueError("must be a list of schedules")
    schedules: list[Schedule] = []
    for index, entry in enumerate(data):
        try:
            item = ScheduleSetting.model_validate(entry)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ValueError(f"schedule #{index + 1}: {where}: {first['msg'].lower()}") from None
        try:
            schedules.append(
                Schedule(
                    id=item.id,
                    cron=item.cron,
                    timezone=item.timezone,
                    input_data=item.input_data,
                    overlap=item.overlap,
                    missed=item.missed,
                    resource_id=item.resource_id,
                    description=item.description,
                    workflow_id=item.workflow,
                )
            )
        except WorkflowDefinitionError as exc:
            raise ValueError(str(exc)) from None
    return schedules


def check_served_schedules(schedules: Iterable[Schedule], workflows: Iterable[Workflow]) -> None:
    """ConfigError for a schedule of the `schedules` setting that the engine would refuse at its
    start: one of a workflow not among `workflows`, one whose input (or the empty initial state)
    the workflow's schemas refuse, or one whose id another schedule has. `serve` and `check` both
    call it, so `check` passes the schedules `serve` takes and refuses the others."""
    newest = {workflow.id: workflow for workflow in workflows}  # the version the scheduler uses
    # A clash of ids was refused only when the engine was made, the database already open
    # ("cannot serve", exit 1), and `check` did not see it.
    declared_by = {own.id: workflow.id for workflow in newest.values() for own in workflow.schedules}
    given: set[str] = set()
    for schedule in schedules:
        if schedule.id in declared_by or schedule.id in given:
            other = (
                f"workflow {declared_by[schedule.id]!r} declares one too"
                if schedule.id in declared_by
                else "the setting gives it twice"
            )
            raise ConfigError(f"schedules: two schedules have the id {schedule.id!r} ({other})")
        given.add(schedule.id)
        workflow = newest.get(schedule.workflow_id)
        if workflow is None:
            raise ConfigError(
                f"schedules: schedule {schedule.id!r} names workflow {schedule.workflow_id!r}, "
                f"which is not served (served: {', '.join(sorted(newest))})"
            )
        try:
            workflow.scheduled_run_data(schedule.input_data, f"schedule {schedule.id!r}")
        except WorkflowDefinitionError as exc:
            raise ConfigError(f"schedules: {exc}") from None


def check_auth_variables(flags: Mapping[str, Any]) -> None:
    """ConfigError when `RUNSERVICE_TOKENS` or `RUNSERVICE_TOKENS_FILE` is set but empty and no
    flag gives the setting. Empty variables are ignored (`env_ignore_empty`), but for these a
    secret that reached the server empty would turn authentication off: `serve` fails closed."""
    for name in ("tokens", "tokens_file"):
        variable = env_name(name)
        if flags.get(name) is None and variable in os.environ and not os.environ[variable].strip():
            raise ConfigError(
                f"{name.replace('_', '-')} (environment): {variable} is set but empty:"
                " unset it to serve without authentication"
            )


def check_alias_variables(flags: Mapping[str, Any]) -> None:
    """ConfigError when two variables of one setting (`RUNSERVICE_SHUTDOWN_GRACE` and
    `RUNSERVICE_GRACE`) are both set, differently, and no flag gives it: pydantic would take one
    in silence, and the operator who set the other would not learn it is ignored."""
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        if flags.get(field) is not None or not isinstance(alias, AliasChoices):
            continue
        names = [str(choice).upper() for choice in alias.choices if str(choice).upper().startswith(PREFIX)]
        given = {name: os.environ[name].strip() for name in names if os.environ.get(name, "").strip()}
        if len(set(given.values())) > 1:
            both = " and ".join(f"{name}={value!r}" for name, value in given.items())
            raise ConfigError(f"{field.replace('_', '-')} (environment): {both} disagree: set one of them")


def env_name(field: str) -> str:
    """The main environment variable of a setting."""
    return PREFIX + ("SHUTDOWN_GRACE" if field == "grace" else field.upper())


def known_variables() -> frozenset[str]:
    """Every `RUNSERVICE_*` variable a setting reads."""
    names: set[str] = set()
    for field, info in Settings.model_fields.items():
        names.add(PREFIX + field.upper())
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice).upper() for choice in alias.choices if str(choice).startswith(PREFIX))
    return frozenset(names)


TARGET_ENV = PREFIX + "TARGET"
"""The server the command-line client calls."""
TOKEN_ENV = PREFIX + "TOKEN"
"""The command-line client's bearer token."""
CLIENT_VARIABLES = frozenset({TARGET_ENV, TOKEN_ENV})
"""Variables the command-line client reads: not the server's settings, but not typos either."""


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """`RUNSERVICE_*` variables that no setting reads (a typo, or a setting that does not exist)."""
    known = known_variables() | CLIENT_VARIABLES
    env = os.environ if environ is None else environ
    return sorted(name for name in env if name.upper().startswith(PREFIX) and name.upper() not in known)


def _describe(exc: ValidationError, flags: Mapping[str, Any]) -> str:
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "settings"
    # The field itself, else the setting an alias (RUNSERVICE_SHUTDOWN_GRACE) stands for; an
    # exact match first, or `metrics_address` would be reported as `address`.
    name = field if field in Settings.model_fields else None
    name = name or next((f for f in Settings.model_fields if field.upper().endswith(f.upper())), field)
    source = "flag" if name in flags else "environment"
    error = first.get("ctx", {}).get("error")
    message = str(error) if error is not None else first["msg"].lower()
    value = first["input"]
    if name == "database_url" and isinstance(value, str):
        value = redact_url(value)  # its password, whatever the scheme, is never shown
    given = repr(value)
    if message.startswith(given):  # the message names the value itself: not twice
        return f"{name.replace('_', '-')} ({source}): {message}"
    return f"{name.replace('_', '-')} ({source}): {given} {message}"
