"""A Ctrl-C while the `runservice` command's package loads, before `main` can take it.

Imported first by `runservice.cli`, which calls `done()` once it has loaded: until then a
SIGINT exits 130 quietly, as `main` does, instead of a KeyboardInterrupt traceback from an
import. Only in place of Python's own handler, on the main thread: a program that imports
the package keeps its own.
"""

from __future__ import annotations

import os
import signal

EXIT_INTERRUPTED = 130


def _interrupted(signum: int, frame: object) -> None:
    os.write(2, b"\n")  # the shell's prompt goes on the next line, not after "^C"
    os._exit(EXIT_INTERRUPTED)


def _take() -> bool:
    """Whether the handler was put in place of Python's own (not imported for typing: time)."""
    try:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _interrupted)
            return True
    except ValueError:  # not the main thread
        pass
    return False


_TAKEN = _take()


def done() -> None:
    """The package has loaded: Python's own handler again (KeyboardInterrupt, which `main` takes)."""
    if _TAKEN and signal.getsignal(signal.SIGINT) is _interrupted:
        signal.signal(signal.SIGINT, signal.default_int_handler)
