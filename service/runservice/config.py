"""Settings of `runservice serve`: defaults, overridden by `RUNSERVICE_*` variables, then flags."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PREFIX = "RUNSERVICE_"
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """A setting has a value that cannot be used."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything `serve` needs; `database` resolves the database URL."""

    address: str = "127.0.0.1:50051"
    data_dir: str = "./data"
    database_url: str | None = None
    """Overrides `data_dir` when set (`sqlite:///path/to/file.db`, `postgresql://user@host/db`)."""
    workflows: tuple[str, ...] = ("runservice.examples",)
    """Modules whose committed workflows are served."""
    grace: float = 10.0
    """Seconds in-flight RPCs get to finish on shutdown."""
    heartbeat: float = 15.0
    """Seconds of silence after which Stream and Watch send a heartbeat."""
    log_level: str = "INFO"

    @property
    def database(self) -> str:
        """The database URL: `database_url`, else `runservice.db` in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir).expanduser().resolve() / 'runservice.db'}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Defaults overridden by `RUNSERVICE_ADDRESS`, `_DATA_DIR`, `_DATABASE_URL`,
        `_WORKFLOWS`, `_SHUTDOWN_GRACE`, `_HEARTBEAT` and `_LOG_LEVEL`; empty values are ignored."""
        names = {
            "address": "ADDRESS",
            "data_dir": "DATA_DIR",
            "database_url": "DATABASE_URL",
            "workflows": "WORKFLOWS",
            "grace": "SHUTDOWN_GRACE",
            "heartbeat": "HEARTBEAT",
            "log_level": "LOG_LEVEL",
        }
        raw = {field: environ.get(PREFIX + name, "") for field, name in names.items()}
        return cls().override(**{field: value for field, value in raw.items() if value}, source="environment")

    def override(self, *, source: str = "flags", **values: Any) -> Settings:
        """A copy with the given settings (None means "not given"), parsed and checked."""
        parsed: dict[str, Any] = {}
        for field, value in values.items():
            if value is None:
                continue
            parsed[field] = _parse(field, value, source)
        return dataclasses.replace(self, **parsed)


def _parse(field: str, value: Any, source: str) -> Any:
    where = f"{field.replace('_', '-')} ({source})"
    if field in ("grace", "heartbeat"):
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not a number of seconds") from None
        if number < 0 or (field == "heartbeat" and number == 0):
            raise ConfigError(f"{where}: {value!r} must be {'positive' if field == 'heartbeat' else '>= 0'}")
        return number
    if field == "workflows":
        modules = (
            tuple(part.strip() for part in str(value).split(",") if part.strip())
            if isinstance(value, str)
            else tuple(value)
        )
        if not modules:
            raise ConfigError(f"{where}: name at least one module")
        return modules
    if field == "log_level":
        level = str(value).upper()
        if level not in _LOG_LEVELS:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(_LOG_LEVELS)}")
        return level
    if field == "address" and ":" not in str(value):
        raise ConfigError(f"{where}: {value!r} must be HOST:PORT")
    return str(value)
