"""Loading the workflows an author's modules define.

Like uvicorn and celery, the app directory (the working directory unless told otherwise) goes
first on `sys.path` before the modules are imported: the installed `runservice` script starts
with its own bin directory there, so without it `--workflows my_app.workflows` would not find
`my_app/` beside the author.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import sysconfig
import threading
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from runservice.workflow import Workflow

_NOT_THE_AUTHORS = (
    "<frozen",
    str(Path(__file__).resolve().parent.parent),
    str(Path(importlib.__file__).resolve().parent),
)
"""Frames of ours and of the import machinery: an error's location is the last frame outside them."""
_LIBRARIES = tuple(
    {
        str(form) + os.sep
        for name in ("stdlib", "platstdlib", "purelib", "platlib")
        for form in (Path(sysconfig.get_path(name)), Path(sysconfig.get_path(name)).resolve())
    }
)
"""The standard library and the installed packages: frames an author's line called into."""


class WorkflowLoadError(Exception):
    """A workflows module cannot be served."""


@dataclass(frozen=True, slots=True)
class LoadedModule:
    """One workflows module and the committed workflows it defines."""

    name: str
    file: str | None
    workflows: tuple[Workflow, ...]


def use_app_dir(app_dir: str | os.PathLike[str]) -> Path:
    """Put `app_dir` (resolved) first on `sys.path`, once; it must be a directory."""
    path = Path(app_dir).expanduser().resolve()
    if not path.is_dir():
        raise WorkflowLoadError(f"app directory {str(app_dir)!r} is not a directory")
    entry = str(path)
    if entry in sys.path:
        sys.path.remove(entry)
    sys.path.insert(0, entry)
    # A module written after this process looked at the directory must still be found.
    importlib.invalidate_caches()
    return path


def load_modules(
    modules: Sequence[str], *, app_dir: str | os.PathLike[str] | None = "."
) -> list[LoadedModule]:
    """Import `modules` (from `app_dir` first; None leaves `sys.path` alone) and collect
    their committed workflows: each module's `WORKFLOWS` list, else every Workflow attribute."""
    where = use_app_dir(app_dir) if app_dir is not None else None
    loaded: list[LoadedModule] = []
    seen: dict[tuple[str, str], tuple[str, Workflow]] = {}
    for name in dict.fromkeys(modules):  # a module named twice is loaded (and counted) once
        module = _import(name, where)
        declared = getattr(module, "WORKFLOWS", None)
        if declared is not None:
            if not isinstance(declared, list | tuple):
                raise WorkflowLoadError(f"{name}.WORKFLOWS must be a list of workflows")
            candidates = list(declared)
        else:
            candidates = [value for value in vars(module).values() if isinstance(value, Workflow)]
        if not candidates:
            raise WorkflowLoadError(f"module {name!r} defines no workflows (create_workflow(...).commit())")
        kept: list[Workflow] = []
        for workflow in candidates:
            if not isinstance(workflow, Workflow):
                raise WorkflowLoadError(f"{name}.WORKFLOWS holds {workflow!r}, which is not a workflow")
            if not workflow.committed:
                raise WorkflowLoadError(
                    f"workflow {workflow.id!r} in module {name!r} is not committed: call .commit() on it"
                )
            # Versions of one workflow are served side by side; one version is one definition.
            first, other = seen.setdefault((workflow.id, workflow.version), (name, workflow))
            if other is not workflow:
                raise WorkflowLoadError(
                    f"two workflows have the id {workflow.id!r} and version {workflow.version!r}"
                    f" (in {first!r} and {name!r})"
                )
            if not any(known is workflow for known in kept):  # one module may list it twice
                kept.append(workflow)
        loaded.append(LoadedModule(name=name, file=getattr(module, "__file__", None), workflows=tuple(kept)))
    return loaded


def load_workflows(modules: Sequence[str], *, app_dir: str | os.PathLike[str] | None = ".") -> list[Workflow]:
    """The committed workflows of `modules`, imported with `app_dir` first on `sys.path`,
    in registration order (the last version of a workflow id is its newest)."""
    loaded = load_modules(modules, app_dir=app_dir)
    found = {(wf.id, wf.version): wf for module in loaded for wf in module.workflows}
    return list(found.values())


def _import(name: str, app_dir: Path | None) -> object:
    with _own_interrupts() as interrupted:
        try:
            return importlib.import_module(name)
        # The author's module can fail in any way; report it in one line. SystemExit and
        # KeyboardInterrupt too: a module that calls sys.exit() (a script's `main()` run at
        # import, an argparse error) made `serve` and `check` exit silently with its code
        # (3 reads as "run failed" in the CLI's table), and one that raised KeyboardInterrupt
        # printed a traceback (an audit). A Ctrl-C of ours while it imports stays an interrupt.
        except (Exception, SystemExit, KeyboardInterrupt) as exc:
            if isinstance(exc, KeyboardInterrupt) and interrupted:
                raise
            if isinstance(exc, ModuleNotFoundError) and exc.name and _is_prefix(exc.name, name):
                looked = f" (looked in the app directory {app_dir}; see --app-dir)" if app_dir else ""
                raise WorkflowLoadError(f"cannot import workflows module {name!r}: {exc}{looked}") from exc
            location = _location(exc)
            at = f" at {location}" if location else ""
            detail = _detail(exc)
            raise WorkflowLoadError(
                f"cannot import workflows module {name!r}: {type(exc).__name__}{at}: {detail}"
            ) from exc


def _detail(exc: BaseException) -> str:
    """What an import failure says, on one line."""
    if isinstance(exc, SystemExit):
        return f"the module exited while it was imported (sys.exit({exc.code!r}))"
    if isinstance(exc, KeyboardInterrupt) and not str(exc):
        return "the module raised it while it was imported"
    return str(exc).replace("\n", " ")


@contextlib.contextmanager
def _own_interrupts() -> Iterator[list[bool]]:
    """While a module imports, tell a real Ctrl-C (SIGINT: non-empty list) from a module that
    raises KeyboardInterrupt itself (empty). Only where Python's own handler is installed, on
    the main thread; elsewhere (the engine process ignores SIGINT) it is always the module's."""
    seen: list[bool] = []
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield seen
        return

    def on_interrupt(signum: int, frame: object) -> None:
        seen.append(True)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _is_prefix(missing: str, name: str) -> bool:
    return name == missing or name.startswith(missing + ".")


def _location(exc: BaseException) -> str | None:
    """FILE:LINE of the author's code that raised: a syntax error's position, else the
    innermost traceback frame that is neither ours nor the import machinery's, nor, when the
    author's code called it, a library's (the standard library's argparse exits for a module
    that parses the command line at import: its line is not the one to fix)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    found = authors = None
    for frame in traceback.extract_tb(exc.__traceback__):
        # "<string>": code made at run time, such as a dataclass's __init__ (Schedule's).
        if frame.filename.startswith(_NOT_THE_AUTHORS) or frame.filename.startswith("<"):
            continue
        found = f"{frame.filename}:{frame.lineno}"
        if not frame.filename.startswith(_LIBRARIES):
            authors = found
    return authors or found
