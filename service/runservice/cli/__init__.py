"""The `runservice` command: one module per group of subcommands, each registering its parser."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from runservice.cli import health, serve


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand; each sets `handler` to the function that runs it."""
    parser = argparse.ArgumentParser(prog="runservice", description="Durable workflow run service.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve.add_parser(commands)
    health.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The `runservice` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    code: int = handler(args)
    return code
