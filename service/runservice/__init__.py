"""runservice: durable Mastra-style workflows served over gRPC.

Authors import the authoring API from here::

    from runservice import StepContext, create_step, create_workflow

Callers import the generated stubs as `runservice.v1` (they live in `stubs/runservice/v1`
in the repository and are merged into this package when it is built).
"""

from pathlib import Path as _Path

# In a checkout (tests, an editable install) the generated stubs sit beside the code in
# stubs/runservice/v1; naming that folder here makes `runservice.v1` importable whatever put
# this package on the path. A built wheel holds both in one folder, so there is none to add.
_STUBS = _Path(__file__).resolve().parent.parent.parent / "stubs" / "runservice"
if _STUBS.is_dir() and str(_STUBS) not in __path__:
    __path__.append(str(_STUBS))

from runservice.workflow import (  # noqa: E402 (the package path must be complete first)
    Bail,
    ConditionContext,
    RetryConfig,
    Schedule,
    Schema,
    SchemaViolation,
    Step,
    StepContext,
    Workflow,
    create_step,
    create_workflow,
)

__version__ = "0.1.0"

__all__ = [
    "Bail",
    "ConditionContext",
    "RetryConfig",
    "Schedule",
    "Schema",
    "SchemaViolation",
    "Step",
    "StepContext",
    "Workflow",
    "__version__",
    "create_step",
    "create_workflow",
]
