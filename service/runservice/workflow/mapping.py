"""The step behind `Workflow.map`: a function, or declarative sources resolved at run time."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from runservice.errors import WorkflowDefinitionError
from runservice.model import Json
from runservice.workflow.context import StepContext
from runservice.workflow.schema import as_schema, to_jsonable
from runservice.workflow.step import Step

_SOURCE_KEYS = ({"step", "path"}, {"init_data", "path"}, {"value"}, {"request_context_path"}, {"fn"})
_TYPED = ({"value"}, {"request_context_path"}, {"fn"})
"""Sources that may also name the `schema` of what they give, as in Mastra, where it types the
map step's output and is not checked when the step runs; here it is shown in the workflow's
description (its JSON Schema) and not checked either."""


def mapping_step(
    step_id: str, mapping: Callable[[StepContext], Any] | dict[str, Any], workflow_id: str
) -> Step:
    """Build the synthetic step of a `.map(...)` call."""
    if callable(mapping):
        fn = mapping

        async def run_fn(ctx: StepContext) -> Any:
            result = fn(ctx)
            return await result if inspect.isawaitable(result) else result

        return Step(id=step_id, execute=run_fn, description="map", map_config={"fn": _name(fn)})
    if not isinstance(mapping, dict) or not mapping:
        raise WorkflowDefinitionError(f"workflow {workflow_id!r}: map() needs a function or a non-empty dict")
    for key, source in mapping.items():
        if not isinstance(source, dict) or not _known(set(source)):
            raise WorkflowDefinitionError(
                f"workflow {workflow_id!r}: map key {key!r} has an unknown source {source!r}; use "
                "{'step': s, 'path': 'a.b'}, {'init_data': True, 'path': ...}, {'value': v}, "
                "{'request_context_path': 'a.b'} or {'fn': f} (the last three with an optional "
                "'schema')"
            )
    sources = dict(mapping)
    described = _describe(sources, workflow_id)  # refuses a schema that is not a type

    async def run_sources(ctx: StepContext) -> dict[str, Json]:
        out: dict[str, Json] = {}
        for key, source in sources.items():
            value = _resolve(ctx, step_id, source)
            out[key] = await value if inspect.isawaitable(value) else value
        return out

    return Step(id=step_id, execute=run_sources, description="map", map_config=described)


def _known(keys: set[str]) -> bool:
    if "schema" in keys:
        return keys - {"schema"} in _TYPED
    return any(keys == known or keys == known - {"path"} for known in _SOURCE_KEYS)


def _resolve(ctx: StepContext, step_id: str, source: dict[str, Any]) -> Any:
    if "value" in source:
        return to_jsonable(source["value"])
    if "fn" in source:
        return source["fn"](ctx)
    if "request_context_path" in source:
        return _at(ctx.request_context, source["request_context_path"], "request context", step_id)
    path = source.get("path", ".")
    if "init_data" in source:
        return _at(ctx.get_init_data(), path, "the run input", step_id)
    candidates = source["step"] if isinstance(source["step"], list | tuple) else [source["step"]]
    for candidate in candidates:
        output = ctx.get_step_result(candidate)
        if output is not None:
            name = candidate if isinstance(candidate, str) else candidate.id
            return _at(output, path, f"step {name!r}", step_id)
    names = ", ".join(c if isinstance(c, str) else c.id for c in candidates)
    raise ValueError(f"map {step_id!r}: no result from step {names} (it has not succeeded)")


def _at(data: Json, path: str, where: str, step_id: str) -> Json:
    if path in (".", ""):
        return data
    current = data
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            raise ValueError(f"Invalid path {path} in {where} (map {step_id!r})")
    return current


def _describe(sources: dict[str, Any], workflow_id: str) -> dict[str, Json]:
    out: dict[str, Json] = {}
    for key, source in sources.items():
        entry: dict[str, Json] = {}
        for name, value in source.items():
            if name == "step":
                values = value if isinstance(value, list | tuple) else [value]
                names = [v if isinstance(v, str) else v.id for v in values]
                entry[name] = names if isinstance(value, list | tuple) else names[0]
            elif name == "fn":
                entry[name] = _name(value)
            elif name == "schema":
                try:
                    entry[name] = _schema_json(value)
                except Exception as exc:
                    raise WorkflowDefinitionError(
                        f"workflow {workflow_id!r}: map key {key!r} has a schema that is not a type: {exc}"
                    ) from None
            else:
                entry[name] = to_jsonable(value)
        out[key] = entry
    return out


def _schema_json(schema: Any) -> Json:
    """A map source's `schema` as JSON Schema (None: no schema); raises for what is not a type."""
    checked = as_schema(schema)
    return None if checked is None else checked.json_schema()


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", "fn")
