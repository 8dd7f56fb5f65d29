"""Schemas: any type pydantic can validate (a BaseModel class, `list[str]`, `dict[str, int]`...)."""

from __future__ import annotations

from typing import Any

import pydantic
import pydantic_core

from runservice.errors import FieldViolation
from runservice.model import Json


class SchemaViolation(Exception):
    """Data failed a schema; `violations` says where and why."""

    def __init__(self, what: str, violations: list[FieldViolation]) -> None:
        listed = "; ".join(f"{v.field or '(root)'}: {v.description}" for v in violations)
        super().__init__(f"{what}: {listed}")
        self.what = what
        self.violations = violations
        self.details = [{"field": v.field, "description": v.description} for v in violations]


class SuspendPayloadRefused(SchemaViolation):
    """`ctx.suspend` got a payload its step's `suspend_schema` refuses: the step fails with
    `SuspendValidationError`. Its own class, so that a SchemaViolation a body raises for its
    own reasons is a failure like any other (and retried)."""


class Schema:
    """A validating wrapper around a pydantic type."""

    __slots__ = ("_adapter", "type")

    def __init__(self, type_: Any) -> None:
        self.type = type_
        self._adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(type_)

    def validate(self, data: Any, what: str) -> tuple[Any, Json]:
        """Validate `data`; return the typed value and its JSON form (defaults applied).

        By pydantic's rules for Python data first, as any pydantic user expects of a dict (a
        union `datetime | str` keeps a string, a body's model instance is taken as it is).
        Data a schema refuses there is asked again as the JSON document it is: a strict schema
        (`ConfigDict(strict=True)`, zod's way) refuses an ISO string for a datetime and a
        value for an Enum as Python data, the only forms JSON has for them, so it could not be
        used at all (differential audit). What both refuse is refused with JSON's reasons.

        Raises SchemaViolation naming `what` (for example "input data").
        """
        try:
            try:
                value = self._adapter.validate_python(data)
            except pydantic.ValidationError:
                value = self._adapter.validate_json(pydantic_core.to_json(data))
        except pydantic_core.PydanticSerializationError as exc:
            violation = FieldViolation(field="", description=f"not JSON data: {exc}")
            raise SchemaViolation(f"invalid {what}", [violation]) from None
        except pydantic.ValidationError as exc:
            raise SchemaViolation(f"invalid {what}", _violations(exc)) from None
        except (SystemExit, KeyboardInterrupt) as exc:
            # A validator's (user code): as any other exception of one, never the server's
            # exit, which asyncio takes out of the event loop (audit).
            raise RuntimeError(f"a validator of the {what} raised {type(exc).__name__}({exc})") from exc
        return value, to_jsonable(value)

    def json_schema(self) -> dict[str, Json]:
        schema: dict[str, Json] = self._adapter.json_schema()
        return schema

    @property
    def model_fields(self) -> dict[str, bool] | None:
        """Field name -> required, when the schema is a pydantic model; else None."""
        if isinstance(self.type, type) and issubclass(self.type, pydantic.BaseModel):
            return {name: f.is_required() for name, f in self.type.model_fields.items()}
        return None


def as_schema(value: Any) -> Schema | None:
    """Accept a Schema, a type, or None (no schema: any JSON is accepted)."""
    if value is None or isinstance(value, Schema):
        return value
    return Schema(value)


_PLAIN = frozenset({int, str, bool, type(None)})
"""Values that are JSON data as they are (floats are not: pydantic decides about NaN)."""


def to_jsonable(value: Any) -> Json:
    """Turn a step's return value (model, dataclass, dict, list, date...) into JSON data."""
    if type(value) in _PLAIN:  # exact types: a subclass (an IntEnum, say) goes to pydantic
        return value
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    return pydantic_core.to_jsonable_python(value)


def _violations(exc: pydantic.ValidationError) -> list[FieldViolation]:
    return [
        FieldViolation(field=".".join(str(part) for part in error["loc"]), description=error["msg"])
        for error in exc.errors(include_url=False)
    ]
