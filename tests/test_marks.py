"""Request marks (engine/marks.py) told apart from the request ids callers choose.

A request's mark is its request id, a tag and a digest per field. A caller may choose a request
id that starts with another request's id and looks like a mark of it (`k#input:00ff`): that is
another request's id, never a mark of `k` (review: a Start with request id `k` on a run holding
such an id was refused as REQUEST_ID_REUSED).
"""

from __future__ import annotations

import hashlib

import orjson
import pytest

from runservice.engine.marks import RESUME_BEGAN, START, TIME_TRAVEL, TIME_TRAVEL_BEGAN, began_at, began_row
from runservice.errors import RequestIdReused

pytestmark = pytest.mark.timeout(10)

SENT: tuple[object, ...] = ({"a": 2, "b": 1}, {}, {}, None)


def test_a_retry_repeats_its_mark_and_a_reuse_is_refused_naming_the_field() -> None:
    mark = START.mark("k", SENT)
    assert START.mark("k", ({"b": 1, "a": 2}, {}, {}, None)) == mark  # key order is no change
    assert START.repeats("r", mark, [mark.text])
    with pytest.raises(RequestIdReused) as reused:
        START.repeats("r", START.mark("k", ({"a": 3}, {}, {}, None)), [mark.text])
    assert reused.value.metadata["field"] == "input_data"


def test_an_older_versions_mark_is_compared_on_what_it_recorded() -> None:
    body = orjson.dumps({"a": 2, "b": 1}, option=orjson.OPT_SORT_KEYS)
    older = "k#input:" + hashlib.blake2b(body, digest_size=16).hexdigest()
    assert START.repeats("r", START.mark("k", SENT), [older])
    assert START.repeats("r", START.mark("k", SENT), ["k"])  # the plain id of the first versions


@pytest.mark.parametrize("chosen", ["k#input:00ff", "k#start:abcd", "k#start:" + "0" * 32 + ".xyz"])
def test_a_callers_request_id_shaped_like_a_mark_is_another_requests(chosen: str) -> None:
    assert not START.repeats("r", START.mark("k", SENT), [chosen])


def test_where_a_resume_began_is_read_back_for_its_request_id_only() -> None:
    rows = [began_row("r-1", 7)[1], began_row("r-1#2", 12)[1], began_row("other", 3)[1]]
    assert began_row("r-1", 7)[0] == RESUME_BEGAN
    assert (began_at(rows, "r-1"), began_at(rows, "r-1#2"), began_at(rows, "r-2")) == (7, 12, None)


def test_a_field_added_later_is_left_out_while_unset_and_compared_as_unset_when_missing() -> None:
    """`resume_data` came to TimeTravel after its marks: a mark without it is the one earlier
    versions wrote and read (and the one they left compares as made without it), one with it
    is refused for a retry without it, and the other way round."""
    sent: tuple[object, ...] = (["ask"], (), None, {})
    plain = TIME_TRAVEL.mark("k", (*sent, None))
    assert plain.text.count(".") == 3  # four digests: the form before resume_data
    resumed = TIME_TRAVEL.mark("k", (*sent, {"add": 1}))
    assert resumed.text.startswith(plain.text + ".")
    assert TIME_TRAVEL.repeats("r", plain, [plain.text])
    assert TIME_TRAVEL.repeats("r", resumed, [resumed.text])
    for mine, stored in ((resumed, plain), (plain, resumed), (TIME_TRAVEL.mark("k", (*sent, 2)), resumed)):
        with pytest.raises(RequestIdReused) as reused:
            TIME_TRAVEL.repeats("r", mine, [stored.text])
        assert reused.value.metadata["field"] == "resume_data"


def test_where_a_time_travel_began_has_rows_of_its_own_kind() -> None:
    assert began_row("t-1", 9, TIME_TRAVEL_BEGAN) == (TIME_TRAVEL_BEGAN, "t-1#9") != began_row("t-1", 9)
