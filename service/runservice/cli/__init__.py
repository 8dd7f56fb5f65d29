"""The `runservice` command: one module per group of subcommands, each registering its parser.

    serve                       serve workflows (cli/serve.py)
    check                       load workflow modules and report what they define (cli/check.py)
    workflows, graph            what a server runs (cli/workflows.py)
    start, resume, cancel,
    runs, show, delete          runs (cli/runs.py)
    watch                       follow a run live (cli/watch.py)
    schedules                   cron schedules: list, get, pause, resume, trigger (cli/schedules.py)
    backup, restore             the SQLite database, copied consistently (cli/backup.py)

Exit codes are listed in cli/common.py: 0 done, 1 a failed call, 2 usage, 3 a run that
ended failed or canceled, 130 interrupted.

This module imports the standard library alone: the subcommands' modules (rich, pydantic,
gRPC: about half a second) are imported inside `main`, where a Ctrl-C is an interrupt (130,
quietly), not a KeyboardInterrupt traceback from an import (an audit).
"""

from __future__ import annotations

import os

from runservice.cli import _loading  # first: a Ctrl-C while this package loads exits 130 quietly

# gRPC's fork handlers are for a process that forks and goes on using gRPC in the child.
# This one only forks to exec (the engine process; a step body's subprocess, under uvloop
# a real fork()), and there the handlers print "Other threads are currently calling into
# gRPC, skipping fork() handlers" on every fork while a call is in flight, or hold the fork
# while gRPC's threads drain. gRPC reads the setting when it is imported: it must come first.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
# gRPC 1.6x and later print INFO lines by default (a failed TLS handshake, for one): in a
# command's stderr they come before its one-line error, and in the server's log once per bad
# client. ERROR keeps what an operator needs; our own messages say the rest.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import argparse
import codecs
import io
import sys
from collections.abc import Sequence
from typing import NoReturn, cast

from runservice import __version__

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
"""As cli/common.py has them (not imported from there before `main` guards against Ctrl-C)."""


class _ArgumentError(Exception):
    """What argparse refused, raised instead of its exit so that `main` can report it as JSON
    too when --json was given."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors `main` reports (its subcommands' parsers are _Parsers too)."""

    def error(self, message: str) -> NoReturn:
        raise _ArgumentError(self, message)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand; each sets `handler` to the function that runs it."""
    from runservice.cli import backup, check, health, runs, schedules, serve, watch, workflows
    from runservice.cli.common import client_options

    parser = _Parser(
        prog="runservice",
        description="Durable workflow run service: serve workflows, and start, follow and manage their runs.",
        epilog="Every command that calls a server takes --target (RUNSERVICE_TARGET), --timeout and --json. "
        "Exit codes: 0 done, 1 the call failed, 2 usage, 3 the run ended failed or canceled "
        "(start, resume, time-travel and fork with --wait; watch), 130 interrupted (Ctrl-C).",
    )
    parser.add_argument("--version", action="version", version=f"runservice {__version__}")
    # Each subcommand's parser is a _Parser too (argparse makes them of the parent's class).
    commands = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", metavar="COMMAND"),
    )
    parent = client_options()
    serve.add_parser(commands)
    health.add_parser(commands)
    check.add_parser(commands)
    workflows.add_parsers(commands, parent)
    runs.add_parsers(commands, parent)
    watch.add_parser(commands, parent)
    schedules.add_parsers(commands, parent)
    backup.add_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The `runservice` command."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        # Ctrl-C wherever a command did not handle it itself: while its modules load (the
        # first half second of every command), while a workflows module imports, a backup.
        print(file=sys.stderr)  # the shell's prompt goes on the next line, not after "^C"
        return EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    _never_fail_to_encode()
    parser = build_parser()
    given = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(given)
    except _ArgumentError as exc:
        return _usage_error(exc, given)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code: int = handler(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`runservice runs | head -1`): stop quietly, as cat does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code


def _usage_error(exc: _ArgumentError, given: list[str]) -> int:
    """argparse's usage and error lines on stderr, as argparse prints them; with --json on the
    command line also the error on stdout, as for every error (an argument that is not JSON
    printed nothing there: an audit). `check` keeps its own shape, `{"ok": false, "error": ...}`."""
    from runservice.cli.common import print_json, usage_error_json

    exc.parser.print_usage(sys.stderr)
    print(f"{exc.parser.prog}: error: {exc.message}", file=sys.stderr)
    options = given[: given.index("--")] if "--" in given else given
    if "--json" in options:
        # The command is the first word (the top parser reports unrecognized arguments).
        command = next((word for word in options if not word.startswith("-")), "")
        print_json(
            {"ok": False, "error": exc.message}
            if command == "check"
            else {"error": usage_error_json(exc.message)}
        )
    return EXIT_USAGE


def _never_fail_to_encode() -> None:
    """Have stdout and stderr write what their encoding lacks as escapes (`\\xb0`), as
    stderr does by default: on an ASCII terminal (LANG=C, PYTHONIOENCODING=ascii) the first
    `°C` of a run's result ended the output half-way, reported as a usage error (audit).
    The bytes of a file name that is not UTF-8 (surrogate escapes) are written as they were.
    An error handler already chosen to be lenient (replace, ignore) is kept."""
    codecs.register_error(_OUTPUT_ERRORS, _escape)
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors in ("strict", "surrogateescape"):
            stream.reconfigure(errors=_OUTPUT_ERRORS)


_OUTPUT_ERRORS = "runservice.escape"


def _escape(exc: UnicodeError) -> tuple[str | bytes, int]:
    if isinstance(exc, UnicodeEncodeError) and all(
        0xDC80 <= ord(char) <= 0xDCFF for char in exc.object[exc.start : exc.end]
    ):
        return codecs.lookup_error("surrogateescape")(exc)
    return codecs.backslashreplace_errors(exc)


_loading.done()
