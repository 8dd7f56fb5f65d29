"""Backing up the embedded SQLite database while it serves, and restoring a backup.

A copy of the file taken while a server writes (`cp`, most volume snapshots) is not a
database one can trust: commits live in the `-wal` file beside it until a checkpoint moves
them, so the copy may miss them or hold half of a checkpoint. `back_up` asks SQLite for a
copy instead (`VACUUM INTO` on a read-only connection): one snapshot, every commit made
before it began and nothing after, compacted (the space deleted runs freed is left out), and
synced to disk before it is named. It takes no lock a server needs; the server's writes go
on meanwhile (only its WAL cannot be checkpointed past the snapshot until the copy is done).

`restore` puts a backup in the database's place. It needs the server stopped (it takes the
lock file a server holds), checks the backup first, moves the current database, with its
`-wal` file, aside rather than deleting it, and copies the backup as `back_up` copies (so a
database file with commits still in its own `-wal`, left by a killed server, restores
whole). Backing up and restoring is also how the file shrinks after many runs were deleted.
A backup, and a database `restore` puts in place, is made 0600 (its owner's alone), as a new
database is; the database it replaces is moved aside with the mode it had.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from runservice.storage import create_private
from runservice.storage.sqlite import MIGRATIONS, SCHEMA_VERSION, lock_database, unusable_versions

_SIDE_FILES = ("-wal", "-shm")
"""What SQLite keeps beside a database in WAL mode (`<name>-wal`, `<name>-shm`)."""


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why, in one line."""


@dataclass(frozen=True, slots=True)
class Copy:
    """A database file written by `back_up` or put in place by `restore`."""

    path: str
    bytes: int
    runs: int
    schema_version: int
    seconds: float
    replaced: str | None = None
    """`restore`: where the database it replaced was moved (None: there was none)."""


def back_up(database: str, destination: str) -> Copy:
    """Write a consistent, compacted copy of `database` to `destination` (a new file), while
    a server may be writing to it."""
    began = time.monotonic()
    if not Path(database).is_file():
        raise BackupError(f"no database at {database}")
    target = Path(destination)
    if target.exists():
        raise BackupError(f"{destination} already exists: back up to a new file")
    if not target.parent.is_dir():
        raise BackupError(f"no directory {target.parent} to write {target.name} in")
    try:
        _copy(database, target)
    except sqlite3.Error as exc:
        raise BackupError(f"could not back up {database}: {exc}") from None
    runs, version = _describe(str(target))
    return Copy(str(target), target.stat().st_size, runs, version, time.monotonic() - began)


def restore(backup: str, database: str) -> Copy:
    """Put `backup` in place of `database` while no server uses it; the database it replaces
    (if any) is moved aside, with its `-wal` file, to `<database>.before-restore-<time>`."""
    began = time.monotonic()
    if not Path(backup).is_file():
        raise BackupError(f"no backup at {backup}")
    if Path(database).exists() and os.path.samefile(backup, database):
        raise BackupError(f"{backup} is the database itself: restore a backup of it")
    try:
        lock = lock_database(database)
    except RuntimeError:
        raise BackupError(f"database {database} is in use by a runservice server: stop it first") from None
    target = Path(database)
    partial = _partial(target)
    try:
        _check(backup)
        # The copy first, beside the database: a copy that fails (a full disk) leaves the
        # database in place, as it was. Before, it had been moved aside already, and the next
        # `serve` started from an empty file with every run gone from view.
        try:
            _snapshot(backup, partial)
        except (sqlite3.Error, OSError) as exc:
            raise BackupError(f"could not copy {backup}: {exc}; {database} is left as it was") from None
        replaced = None
        moved: list[str] = []
        if target.exists():
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            aside = target.with_name(f"{target.name}.before-restore-{stamp}")
            for suffix in ("", *_SIDE_FILES):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(f"{target}{suffix}", f"{aside}{suffix}")
                    moved.append(suffix)
            replaced = str(aside)
        for suffix in _SIDE_FILES:  # never a stale WAL beside the restored file
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{target}{suffix}")
        try:
            os.rename(partial, target)
            _sync_directory(target.parent)
        except OSError as exc:
            for suffix in moved:  # the database back where it was
                os.rename(f"{replaced}{suffix}", f"{target}{suffix}")
            raise BackupError(
                f"could not put {backup} in place: {exc}; {database} is left as it was"
            ) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        os.close(lock)
    runs, version = _describe(str(target))
    return Copy(str(target), target.stat().st_size, runs, version, time.monotonic() - began, replaced)


def _copy(source: str, target: Path) -> None:
    """Write `source` as one consistent snapshot (with what its own `-wal` file holds) to a
    new file at `target`, synced before it gets its name."""
    partial = _partial(target)
    try:
        _snapshot(source, partial)
        os.rename(partial, target)
        _sync_directory(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()


def _partial(target: Path) -> Path:
    """Where a copy meant for `target` is written until it is whole (same directory: a rename)."""
    return target.with_name(f".{target.name}.partial-{os.getpid()}")


def _snapshot(source: str, partial: Path) -> None:
    """`source` as one consistent snapshot (with what its own `-wal` file holds) in the new
    file `partial`, synced, which only its owner may read (every run's inputs and outputs:
    SQLite would make it 0644)."""
    create_private(str(partial))  # VACUUM INTO fills an empty file
    conn = _read_only(source)
    try:
        conn.execute("VACUUM INTO ?", (str(partial),))
    finally:
        conn.close()
    _sync(partial)


def _read_only(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def _check(backup: str) -> None:
    """Refuse a file that is not an intact runservice database this code can open."""
    try:
        conn = _read_only(backup)
        try:
            (verdict,) = conn.execute("PRAGMA quick_check").fetchone()
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            unusable: set[int] = set()
            if version > SCHEMA_VERSION and "schema_migrations" not in tables:
                unusable = {version}
            elif version > SCHEMA_VERSION:  # a newer runservice's: usable if it says so
                applied = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
                unusable = unusable_versions(conn, applied - MIGRATIONS.keys())
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(f"{backup} is not a runservice database: {exc}") from None
    if verdict != "ok":
        raise BackupError(f"{backup} is damaged (quick_check: {verdict})")
    if "runs" not in tables or not version:
        raise BackupError(f"{backup} is not a runservice database (no runs table or schema version)")
    if unusable:
        raise BackupError(
            f"{backup} has schema version {version}; this runservice knows {SCHEMA_VERSION}: restore it"
            " with the runservice that made it"
        )


def _describe(path: str) -> tuple[int, int]:
    """How many runs the file holds, and its schema version."""
    conn = _read_only(path)
    try:
        (runs,) = conn.execute("SELECT count(*) FROM runs").fetchone()
        (version,) = conn.execute("PRAGMA user_version").fetchone()
    finally:
        conn.close()
    return int(runs), int(version)


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_directory(path: Path) -> None:
    """Make a rename in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
