"""Tenant scoping and read-only tokens, applied by the servicer to the caller of each RPC.

A caller bound to resource ids sees only runs whose `resource_id` is one of them: any other
run is `RUN_NOT_FOUND`, exactly as a missing one, so no other tenant's run ids leak. The
engine knows nothing of callers: the servicer checks here before it calls the engine, and
filters `ListRuns`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from runservice import errors, model
from runservice.engine import Engine
from runservice.server.auth import CALLER, Caller


def caller() -> Caller:
    """The caller of the RPC being handled (anonymous with full access when auth is off)."""
    return CALLER.get()


def check_writer(method: str) -> None:
    """PermissionDenied for a read-only caller."""
    who = caller()
    if who.read_only:
        raise errors.PermissionDenied(
            f"token {who.name!r} is read-only: {method} is not allowed",
            reason="TOKEN_READ_ONLY",
            metadata={"method": method},
        )


def check_resource(resource_id: str | None, method: str) -> None:
    """PermissionDenied when a scoped caller creates a run outside its resources."""
    who = caller()
    if not who.may_see(resource_id):
        raise errors.PermissionDenied(
            f"this token may only {method} runs with resource_id in its scope",
            reason="RESOURCE_NOT_ALLOWED",
            metadata={"method": method},
        )


async def check_run(engine: Engine, run_id: str | None, workflow_id: str | None = None) -> float | None:
    """RunNotFound when the run exists but is outside the caller's scope (no-op without a scope).
    Returns the checked run's `created_at` (None without a scope), for the engine's `born`: the
    check holds for that run only, not one of another resource made under its id before the
    engine reads it (an audit: a tenant's Resume, Cancel or Delete acted on another's run).

    Scope first, workflow second: a run the caller may not see is not found whatever workflow
    the request names (naming the wrong one answered RUN_WORKFLOW_MISMATCH, with the run's
    workflow, for any run)."""
    who = caller()
    if who.resources is None or not run_id:
        return None
    run = await engine.get_run(run_id)
    if not who.may_see(run.resource_id):
        raise errors.RunNotFound(run_id)
    if workflow_id and run.workflow_id != workflow_id:
        raise errors.RunWorkflowMismatch(run_id, workflow_id, run.workflow_id)
    return run.created_at


def check_chosen_run_id(run_id: str | None) -> None:
    """RunIdReserved when a scoped caller chose a run id of the form the server derives (the
    canonical text of a version-5 UUID): another tenant's are predictable (a request id is
    often a business key), and one taken ahead would block that tenant's Start, or hand it a
    run that is not its own. Callers with full access are trusted with them."""
    if caller().resources is None or not run_id:
        return
    try:
        parsed = uuid.UUID(run_id)
    except ValueError:
        return
    if parsed.version == 5 and str(parsed) == run_id:
        raise errors.RunIdReserved(run_id)


async def check_new_run(engine: Engine, run_id: str | None, resource_id: str | None, method: str) -> None:
    """Start/CreateRun: the resource must be in scope, and an existing run id must be the caller's.
    (The engine checks again as it writes: a run id is its resource's.)"""
    check_resource(resource_id, method)
    who = caller()
    if who.resources is None or not run_id:
        return
    try:
        existing = await engine.get_run(run_id)
    except errors.RunNotFound:
        return
    if not who.may_see(existing.resource_id):
        raise errors.PermissionDenied(
            f"run id {run_id!r} cannot be used with this token",
            reason="RESOURCE_NOT_ALLOWED",
            metadata={"method": method},
        )


def check_visible(run: model.Run) -> model.Run:
    """`run`, or RunNotFound when it is outside the caller's scope."""
    if not caller().may_see(run.resource_id):
        raise errors.RunNotFound(run.run_id)
    return run


def list_filter(resource_id: str | None) -> tuple[str | None, frozenset[str] | None, bool]:
    """(resource_id, resource_ids to ask the engine for, whether nothing can match) for
    ListRuns. The scope is part of the query, so a page, and the run its token points after,
    hold nothing of another tenant (filtered after reading, a page token carried the id of a
    run of another resource)."""
    who = caller()
    if who.resources is None:
        return resource_id, None, False
    if resource_id is not None:
        return resource_id, None, resource_id not in who.resources
    if len(who.resources) == 1:
        return next(iter(who.resources)), None, False
    return None, who.resources, not who.resources


def visible(runs: Sequence[model.Run]) -> list[model.Run]:
    """The runs of `runs` the caller may see."""
    who = caller()
    return [run for run in runs if who.may_see(run.resource_id)]
