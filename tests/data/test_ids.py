"""IdMap: round trips (ints, strings, UUID strings), missing-id policies, error messages."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lensrec.data import IdMap
from lensrec.errors import UnknownIdError
from lensrec.testing.strategies import int_ids, str_ids, uuid_ids


@pytest.mark.parametrize(
    "ids", [int_ids(), str_ids(), uuid_ids()], ids=["ints", "strings", "uuids"]
)
def test_round_trip(ids):
    @settings(max_examples=60, deadline=None)
    @given(ids)
    def check(values):
        m = IdMap(values, kind="user")
        assert len(m) == len(values)
        idx = m.index(values)
        assert idx.dtype == np.int32
        assert sorted(idx.tolist()) == list(range(len(values)))  # dense 0..n-1
        assert m.external(idx).tolist() == list(values)
        assert all(v in m for v in values[:5])

    check()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(["a", "b", "550e8400-e29b-41d4-a716-446655440000", "z"]),
        min_size=1,
        max_size=50,
    )
)
def test_build_codes_point_back_to_values(values):
    m, codes = IdMap.build(values, kind="item")
    assert len(m) == len(set(values))
    assert m.ids[codes].tolist() == values


def test_on_missing_policies():
    m = IdMap([10, 20, 30], kind="item")
    assert m.index([30, 99, 10], on_missing="mark").tolist() == [2, -1, 0]
    assert m.index([30, 99, 10], on_missing="drop").tolist() == [2, 0]
    with pytest.raises(UnknownIdError) as info:
        m.index([30, 99, 98], on_missing="raise")
    assert "99" in str(info.value) and "98" in str(info.value)
    assert info.value.count == 2 and info.value.kind == "item"
    with pytest.raises(ValueError):
        m.index([99], on_missing="ignore")


def test_error_quotes_at_most_five_ids_and_counts_the_rest():
    m = IdMap(["a"], kind="user")
    with pytest.raises(UnknownIdError) as info:
        m.index([f"x{k}" for k in range(8)])
    msg = str(info.value)
    assert "'x0'" in msg and "'x4'" in msg and "'x5'" not in msg
    assert "3 more" in msg


def test_string_queries_on_integer_map():
    m = IdMap([1, 2, 3])
    assert m.lookup(["2", "nope"]).tolist() == [1, -1]  # CLI input arrives as text


def test_duplicates_rejected_and_arrays_read_only():
    with pytest.raises(ValueError, match="unique"):
        IdMap([1, 2, 1])
    m = IdMap([3, 1, 2])
    assert m.ids.tolist() == [1, 2, 3]
    with pytest.raises(ValueError):
        m.ids[0] = 5
    with pytest.raises(IndexError):
        m.external([3])


def test_subset_remaps_and_drops():
    m = IdMap(["a", "b", "c", "d"])
    sub, remap = m.subset([3, 1, 1])
    assert sub.to_list() == ["b", "d"]
    assert remap.tolist() == [-1, 0, -1, 1]
