"""`runservice backup` and `runservice restore`: the embedded SQLite database, safely copied.

`backup DEST` writes a consistent, compacted copy of the database while the server runs (a
`cp` of the file while it writes may miss commits still in its `-wal` file). `restore BACKUP`
puts a backup in the database's place while no server uses it, moving the current database
aside. Both find the database as `serve` does (`--data-dir`, `--database-url` and their
RUNSERVICE_ variables). A PostgreSQL database is backed up with PostgreSQL's own tools.
Exit codes: 0 done, 1 it could not be done, 2 usage. An error is one line on stderr and, with
`--json`, also `{"error": {...}}` on stdout, as every command's (cli/common.py).
"""

from __future__ import annotations

import argparse
import dataclasses

from runservice.cli.common import EXIT_CALL, EXIT_OK, fail, fail_usage, local_error_json, print_json
from runservice.config import ConfigError, Settings
from runservice.storage import redact_url, sqlite_path
from runservice.storage.sqlite_backup import BackupError, Copy, back_up, restore


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `backup` and `restore`."""
    backup = commands.add_parser(
        "backup",
        help="copy the SQLite database consistently, while the server runs",
        description="Write a consistent, compacted copy of the server's SQLite database to DEST (a new "
        "file), while the server runs: every run committed before the copy began. Back up a PostgreSQL "
        "database with pg_dump.",
    )
    backup.add_argument("destination", metavar="DEST", help="the file to write (must not exist)")
    restore_parser = commands.add_parser(
        "restore",
        help="put a backup in place of the SQLite database (server stopped)",
        description="Put BACKUP (made by `runservice backup`) in place of the server's SQLite database. "
        "The server must be stopped; the database it replaces is moved aside, with its -wal file, to "
        "<database>.before-restore-<time>. Schema migrations, if the backup is older, apply when the "
        "server starts.",
    )
    restore_parser.add_argument("backup", metavar="BACKUP", help="a file `runservice backup` wrote")
    for parser, handler in ((backup, run_backup), (restore_parser, run_restore)):
        parser.add_argument(
            "--data-dir", help="the server's data directory (RUNSERVICE_DATA_DIR; default ./data)"
        )
        parser.add_argument(
            "--database-url",
            help="the server's database, instead of the data dir's (RUNSERVICE_DATABASE_URL)",
        )
        parser.add_argument("--json", action="store_true", help="print what was done as JSON")
        parser.set_defaults(handler=handler)


def run_backup(args: argparse.Namespace) -> int:
    """`runservice backup DEST`."""
    database = _database(args)
    if isinstance(database, int):
        return database
    try:
        copy = back_up(database, args.destination)
    except (BackupError, OSError) as exc:
        return _fail(args, exc, database=database, destination=args.destination)
    _report(args, copy, f"backed up {database} to {copy.path}")
    return EXIT_OK


def run_restore(args: argparse.Namespace) -> int:
    """`runservice restore BACKUP`."""
    database = _database(args)
    if isinstance(database, int):
        return database
    try:
        copy = restore(args.backup, database)
    except (BackupError, OSError) as exc:
        return _fail(args, exc, database=database, backup=args.backup)
    moved = f"; the database it replaced is now {copy.replaced}" if copy.replaced else ""
    _report(args, copy, f"restored {args.backup} to {database}{moved}")
    return EXIT_OK


def _database(args: argparse.Namespace) -> str | int:
    """The SQLite file the server uses, or an exit code after saying why there is none."""
    try:
        url = Settings.load(data_dir=args.data_dir, database_url=args.database_url).database
    except ConfigError as exc:
        return fail_usage(str(exc), args)
    path = sqlite_path(url)
    if path is None:
        return fail_usage(
            f"{args.command}: {redact_url(url)} is not an SQLite database: back up and restore PostgreSQL"
            " with its own tools (pg_dump, pg_restore, or your provider's snapshots)",
            args,
        )
    return path


_REASONS = {"backup": "BACKUP_FAILED", "restore": "RESTORE_FAILED"}
"""The `reason` of a failed `backup` or `restore` in `--json` output (its code:
FAILED_PRECONDITION, as the files are not in a state it can be done in: a database missing,
a destination that exists or cannot be written, a server holding the database, a damaged
backup). The message says which."""


def _fail(args: argparse.Namespace, exc: Exception, **files: str) -> int:
    """Report a backup or restore that could not be done in one line, and with --json also as
    `{"error": {...}}` on stdout, naming the `files` in its metadata; EXIT_CALL."""
    if args.json:
        error = local_error_json("FAILED_PRECONDITION", _REASONS[args.command], str(exc), files)
        print_json({"error": error})
    return fail(f"{args.command}: {exc}", EXIT_CALL)


def _report(args: argparse.Namespace, copy: Copy, what: str) -> None:
    if args.json:
        print_json(dataclasses.asdict(copy))
        return
    size = copy.bytes / 1e6
    print(
        f"{what}: {copy.runs} runs, schema version {copy.schema_version}, {size:.1f} MB, {copy.seconds:.2f}s"
    )
