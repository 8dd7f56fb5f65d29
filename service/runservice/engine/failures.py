"""Logging a failure of the engine's background loops (claims, heartbeats, schedule ticks)."""

from __future__ import annotations

import logging
import sys

from runservice.errors import DataLoss, StorageUnavailable


def log_failure(log: logging.Logger, message: str, *args: object) -> None:
    """Log the exception being handled: one warning line for a database that did not answer
    (during an outage each loop says so every turn, and a trace adds nothing) or for stored
    data that does not decode (the data is at fault, not the code), a trace at ERROR for
    anything else."""
    error = sys.exc_info()[1]
    if isinstance(error, StorageUnavailable | DataLoss):
        log.warning(f"{message}: %s", *args, error.message)
    else:
        log.exception(message, *args)
