"""Property-based tests (hypothesis) of JSON <-> google.protobuf.Value and of the size limits.

- finite JSON survives the round trip (whole numbers within 2^53 come back as ints);
- a NaN or an Infinity anywhere in a request's JSON is refused, naming its path;
- writing a Value is total: non-finite numbers and ints beyond a double become null;
- `limits.json_size` is exactly the encoded size of the Value (the documented bound is 0),
  so checking a limit on the data and on the wire agree.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runservice import errors, limits
from runservice.engine.scope import StateSizes
from runservice.server import convert
from runservice.v1 import run_service_pb2
from runservice.wire import fill, from_value, to_value

pytestmark = pytest.mark.timeout(120)

# Small and quick enough for CI on 2 shared cores; a failing case is shrunk anyway.
CI = settings(max_examples=60, deadline=1000, suppress_health_check=[HealthCheck.too_slow])

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
finite_json = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


@CI
@given(finite_json)
def test_finite_json_round_trips(data: Any) -> None:
    back = from_value(to_value(data))
    assert back == data
    assert _whole_numbers_are_ints(back)


def _whole_numbers_are_ints(data: Any) -> bool:
    if isinstance(data, float):
        return not (data.is_integer() and abs(data) <= 2**53)
    if isinstance(data, dict):
        return all(_whole_numbers_are_ints(v) for v in data.values())
    if isinstance(data, list):
        return all(_whole_numbers_are_ints(v) for v in data)
    return True


def _insert(data: Any, bad: float, choice: int) -> tuple[Any, str]:
    """`data` with `bad` placed somewhere (picked by `choice`), and that place's path."""
    if isinstance(data, dict) and data and choice % 3:
        key = sorted(data)[choice % len(data)]
        inner, path = _insert(data[key], bad, choice // 3)
        return {**data, key: inner}, f".{key}{path}"
    if isinstance(data, list) and data and choice % 3:
        i = choice % len(data)
        inner, path = _insert(data[i], bad, choice // 3)
        return [*data[:i], inner, *data[i + 1 :]], f"[{i}]{path}"
    return bad, ""


def _value_with(obj: Any) -> Any:
    """A Value holding `obj`, NaN and Infinity included (bypassing the total writer)."""
    from google.protobuf import struct_pb2

    out = struct_pb2.Value()
    if isinstance(obj, dict):
        out.struct_value.SetInParent()
        for key, item in obj.items():
            out.struct_value.fields[key].CopyFrom(_value_with(item))
    elif isinstance(obj, list):
        out.list_value.SetInParent()
        for item in obj:
            out.list_value.values.add().CopyFrom(_value_with(item))
    elif isinstance(obj, bool):
        out.bool_value = obj
    elif isinstance(obj, int | float):
        out.number_value = obj
    elif isinstance(obj, str):
        out.string_value = obj
    else:
        out.null_value = struct_pb2.NULL_VALUE
    return out


@CI
@given(
    st.dictionaries(st.text(alphabet="abcxyz", min_size=1, max_size=4), finite_json, max_size=4),
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.integers(min_value=0, max_value=10_000),
)
def test_non_finite_numbers_are_refused_with_their_path(data: Any, bad: float, choice: int) -> None:
    poisoned, path = _insert(data, bad, choice)
    request = run_service_pb2.StartRequest(workflow_id="echo")
    request.input_data.CopyFrom(_value_with(poisoned))
    with pytest.raises(errors.InvalidArgument) as refused:
        convert.start_args(request)
    assert refused.value.reason == "INVALID_REQUEST"
    assert [v.field for v in refused.value.violations] == [f"input_data{path}"]


@CI
@given(
    st.recursive(
        st.floats() | st.integers(min_value=-(2**1100), max_value=2**1100) | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=4),
        max_leaves=12,
    )
)
def test_writing_a_value_is_total(data: Any) -> None:
    """Whatever numbers a step hands back, conversion never raises; non-finite become null."""
    value = to_value(data)
    back = from_value(value)
    assert _all_finite(back)


def _all_finite(data: Any) -> bool:
    if isinstance(data, float):
        return math.isfinite(data)
    if isinstance(data, list):
        return all(_all_finite(v) for v in data)
    return True


@CI
@given(finite_json)
def test_size_measure_is_the_encoded_size(data: Any) -> None:
    assert limits.json_size(data) == to_value(data).ByteSize()


@CI
@given(
    st.dictionaries(st.text(max_size=8), finite_json, max_size=5),
    st.lists(st.dictionaries(st.sampled_from("abcdef"), finite_json, max_size=3), max_size=8),
)
def test_the_run_states_size_kept_entry_by_entry_is_its_measure(
    initial: dict[str, Any], patches: list[dict[str, Any]]
) -> None:
    """`set_state` measures only what it sets (engine/scope.py): the size it keeps is the
    whole state's measure after any sequence of patches."""
    state = dict(initial)
    sizes = StateSizes(state)
    for index, patch in enumerate(patches):
        assert sizes.size(patch) == limits.json_size({**state, **patch})
        if index % 2:
            sizes.merged(patch)
        else:  # checked and merged with one measure of the patch (a step's attempt that ends)
            sizes.merge(patch)
        assert sizes.size({}) == limits.json_size(state)


@CI
@given(finite_json, st.integers(min_value=0, max_value=400))
def test_a_limit_refuses_exactly_what_is_over_it(data: Any, limit: int) -> None:
    size = 0 if data is None else to_value(data).ByteSize()  # None is an unset field
    if size > limit:
        with pytest.raises(errors.PayloadTooLarge) as refused:
            limits.check("input_data", data, limit)
        assert refused.value.metadata == {"field": "input_data", "size": str(size), "limit": str(limit)}
    else:
        assert limits.check("input_data", data, limit) == size


@CI
@given(st.text(max_size=3000))
def test_request_size_checks_agree_with_the_measure(text: str) -> None:
    """The server measures a request field with ByteSize(); the engine measures data with
    json_size: a value at a limit is accepted by both or refused by both."""
    request = run_service_pb2.StartRequest(workflow_id="echo")
    fill(request.input_data, {"t": text})
    assert request.input_data.ByteSize() == limits.json_size({"t": text})


def test_step_and_run_checks_name_what_is_too_large() -> None:
    big = "z" * limits.STEP_OUTPUT
    with pytest.raises(errors.PayloadTooLarge) as refused:
        limits.check_step_output(("outer", "inner"), big)
    assert refused.value.metadata["field"] == "steps.outer.inner.output"
    limits.check_step_output(("s",), "z" * 1000)
    with pytest.raises(errors.PayloadTooLarge) as refused:
        StateSizes({}).check({"s": big})
    assert refused.value.metadata["field"] == "state"
    assert limits.check_run_total([None, {"a": 1}, "xy"]) == limits.json_size({"a": 1}) + limits.json_size(
        "xy"
    )
    with pytest.raises(errors.PayloadTooLarge) as refused:
        limits.check_run_total([big] * 7)
    assert refused.value.metadata["limit"] == str(limits.RUN_TOTAL)


def test_the_run_states_size_sees_a_list_or_dict_grown_in_place() -> None:
    """A body's `ctx.state` hands out the state's own lists and dicts: one grown in place, then
    another key set, is measured anew (review: the 1 MiB limit let 1.2 MB through)."""
    state: dict[str, Any] = {"items": [], "table": {}, "text": "t"}
    sizes = StateSizes(state)
    assert sizes.size({}) == limits.json_size(state)
    state["items"].append("x" * 1000)  # in place, no set_state
    state["table"]["k"] = [1, 2]
    assert sizes.size({"other": 1}) == limits.json_size({**state, "other": 1})
    sizes.merged({"items": state["items"] + ["y"]})
    assert sizes.size({}) == limits.json_size(state)
