"""Logging a failure of the engine's background loops (claims, heartbeats, schedule ticks)."""

from __future__ import annotations

import logging
import sys

from runservice import logs
from runservice.errors import DataLoss, StorageUnavailable


def log_failure(log: logging.Logger, message: str, *args: object) -> None:
    """Log the exception being handled: one warning line for a database that did not answer
    (a trace adds nothing) or for stored data that does not decode (the data is at fault,
    not the code), a trace at ERROR for anything else."""
    _log(log, sys.exc_info()[1], None, message, *args)


def log_loop_failure(failures: logs.LoopFailures, message: str, *args: object) -> None:
    """`log_failure` for a background loop, which meets the same failure at every turn while
    it lasts (claims, lease renewals, schedule ticks, retention): each message is logged at
    most every `logs.REPEAT_EVERY` seconds, saying how often it was left out, until the loop
    says a turn succeeded (`failures.recovered()`; `logs.LoopFailures`)."""
    _log(failures.log, sys.exc_info()[1], failures, message, *args)


def _log(
    log: logging.Logger,
    error: BaseException | None,
    failures: logs.LoopFailures | None,
    message: str,
    *args: object,
) -> None:
    if isinstance(error, StorageUnavailable | DataLoss):
        level, message, args, trace = logging.WARNING, f"{message}: %s", (*args, error.message), None
    else:
        level, trace = logging.ERROR, error
    if failures is not None:
        failures.failed(level, message, *args, exc_info=trace, kind=type(error))
    else:
        log.log(level, message, *args, exc_info=trace)
