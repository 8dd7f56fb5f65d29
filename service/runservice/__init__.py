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

TYPE_CHECKING = False
"""typing.TYPE_CHECKING (mypy takes the name), without importing typing: a command's first
milliseconds, before it can treat a Ctrl-C as an interrupt, are spent importing this package."""
if TYPE_CHECKING:
    from runservice.workflow import (
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


def __getattr__(name: str) -> object:
    """The authoring API, imported from `runservice.workflow` when first asked for (PEP 562).
    Not at import: pydantic and the rest take about 0.1 s, and the `runservice` command
    imports this package before it can treat a Ctrl-C as an interrupt (it printed a
    KeyboardInterrupt traceback when one came while this package imported: an audit)."""
    if name in __all__ and name != "__version__":
        from runservice import workflow

        value = getattr(workflow, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
