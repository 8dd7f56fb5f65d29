"""JSON data and times in protobuf's well-known types; shared by the server and the client.

JSON travels as `google.protobuf.Value`, whose numbers are doubles: a whole number within
±2^53 is read back as an `int`, so callers get `{"count": 3}`, not `3.0`. An unset Value
field means None.

Writing is total, so no stored value can make a read fail: a non-finite number (NaN,
±Infinity; JSON has none) or an int beyond a double's range is written as null, and a
time outside what `google.protobuf.Timestamp` can carry (years 1 to 9999) is clamped to
the nearest end of that range (NaN times are left unset). Requests never bring such
values in: the server rejects non-finite numbers (`non_finite_path`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from google.protobuf import duration_pb2, message, struct_pb2, timestamp_pb2

from runservice.model import Json

_MAX_EXACT = 2**53
_MAX_DOUBLE_INT = 2**1024  # float(int) overflows from here
# google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
MIN_TIME = -62_135_596_800
MAX_TIME = 253_402_300_799


def fill(value: struct_pb2.Value, obj: Any) -> None:
    """Write JSON data (or a pydantic model) into `value`; None becomes null_value."""
    # Exact types first: every run response goes through here, and the isinstance chain
    # with an ABC check costs several times more. Subclasses take the general path.
    kind = type(obj)
    if kind is str:
        value.string_value = obj
    elif kind is dict:
        struct = value.struct_value
        struct.SetInParent()  # an empty dict is still a struct, not an unset Value
        fields = struct.fields
        for key, item in obj.items():
            fill(fields[key if type(key) is str else str(key)], item)
    elif kind is float:
        if obj - obj == 0.0:  # finite: NaN and ±inf give NaN
            value.number_value = obj
        else:
            value.null_value = struct_pb2.NULL_VALUE
    elif kind is int:
        if -_MAX_DOUBLE_INT < obj < _MAX_DOUBLE_INT:
            value.number_value = obj
        else:
            value.null_value = struct_pb2.NULL_VALUE
    elif kind is bool:
        value.bool_value = obj
    elif obj is None:
        value.null_value = struct_pb2.NULL_VALUE
    elif kind is list:
        items = value.list_value
        items.SetInParent()
        add = items.values.add
        for item in obj:
            fill(add(), item)
    else:
        _fill_other(value, obj)


def _fill_other(value: struct_pb2.Value, obj: Any) -> None:
    # bool before int: bool is an int subclass.
    if isinstance(obj, bool):
        value.bool_value = obj
    elif isinstance(obj, int):
        fill(value, int(obj))
    elif isinstance(obj, float):
        fill(value, float(obj))
    elif isinstance(obj, str):
        value.string_value = obj
    elif isinstance(obj, Mapping):
        fill(value, dict(obj))
    elif isinstance(obj, list | tuple):
        fill(value, list(obj))
    elif hasattr(obj, "model_dump"):  # a pydantic model given as input
        fill(value, obj.model_dump(mode="json"))
    else:
        raise TypeError(f"not JSON data: {type(obj).__name__}")


def to_value(obj: Any) -> struct_pb2.Value:
    """JSON data as a new Value (None becomes null_value)."""
    value = struct_pb2.Value()
    fill(value, obj)
    return value


def optional_value(obj: Any) -> struct_pb2.Value | None:
    """A Value for a request field, or None (field left unset) for None."""
    return None if obj is None else to_value(obj)


def set_value(target: struct_pb2.Value, obj: Json) -> None:
    """Fill a Value field unless `obj` is None (unset means None)."""
    if obj is not None:
        fill(target, obj)


def from_value(value: struct_pb2.Value) -> Json:
    """A Value as Python data; an unset Value and null are None."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        if number.is_integer() and -_MAX_EXACT <= number <= _MAX_EXACT:
            return int(number)
        return number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return {key: from_value(item) for key, item in value.struct_value.fields.items()}
    if kind == "list_value":
        return [from_value(item) for item in value.list_value.values]
    return None


def non_finite_path(obj: Json, path: str) -> str | None:
    """The path (`path.key[2].x`) of the first NaN or ±Infinity in JSON data, or None."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else path
    if isinstance(obj, dict):
        for key, item in obj.items():
            found = non_finite_path(item, f"{path}.{key}")
            if found is not None:
                return found
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            found = non_finite_path(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def read_value(msg: message.Message, name: str) -> Json:
    """The Value field `name` of `msg` as Python data; None when unset."""
    if msg.HasField(name):
        value: struct_pb2.Value = getattr(msg, name)
        return from_value(value)
    return None


def set_time(target: timestamp_pb2.Timestamp, seconds: float | None) -> None:
    """Fill a Timestamp field from POSIX seconds unless None (or NaN); clamped to its range."""
    if seconds is None or seconds != seconds:  # None or NaN: nothing to say
        return
    if not MIN_TIME <= seconds <= MAX_TIME:  # ±inf and far-off times: the nearest end
        target.seconds = MIN_TIME if seconds < MIN_TIME else MAX_TIME
        target.nanos = 0
        return
    whole = math.floor(seconds)
    nanos = round((seconds - whole) * 1e9)
    if nanos >= 1_000_000_000:  # rounding can carry into the next second
        whole, nanos = whole + 1, nanos - 1_000_000_000
    target.seconds = whole
    target.nanos = nanos


def read_time(msg: message.Message, name: str) -> float | None:
    """The Timestamp field `name` of `msg` as POSIX seconds; None when unset."""
    if not msg.HasField(name):
        return None
    ts: timestamp_pb2.Timestamp = getattr(msg, name)
    return ts.seconds + ts.nanos / 1e9


def timestamp(when: float | dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    """A new Timestamp from POSIX seconds or a datetime; None for None."""
    if when is None:
        return None
    ts = timestamp_pb2.Timestamp()
    set_time(ts, when.timestamp() if isinstance(when, dt.datetime) else float(when))
    return ts


def set_duration(target: duration_pb2.Duration, seconds: float | None) -> None:
    """Fill a Duration field from seconds unless None."""
    if seconds is None:
        return
    whole = math.floor(seconds)
    nanos = round((seconds - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    target.seconds = whole
    target.nanos = nanos


def read_duration(msg: message.Message, name: str) -> float | None:
    """The Duration field `name` of `msg` as seconds; None when unset."""
    if not msg.HasField(name):
        return None
    value: duration_pb2.Duration = getattr(msg, name)
    return value.seconds + value.nanos / 1e9


def duration(seconds: float | dt.timedelta | None) -> duration_pb2.Duration | None:
    """A new Duration from seconds or a timedelta; None for None."""
    if seconds is None:
        return None
    value = duration_pb2.Duration()
    set_duration(value, seconds.total_seconds() if isinstance(seconds, dt.timedelta) else float(seconds))
    return value
