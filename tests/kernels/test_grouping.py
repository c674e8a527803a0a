"""Grouping kernels against their NumPy references."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lensrec.kernels.grouping import (
    _reference_group_order,
    _reference_sort_within_groups,
    group_order,
    sort_within_groups,
)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(0, 9), max_size=200),
    st.lists(st.integers(-3, 3), min_size=200, max_size=200),
)
def test_group_order_and_within_match_reference(keys, values):
    k = np.array(keys, dtype=np.int32)
    v = np.array(values[: k.size], dtype=np.int64)
    order = group_order(k, 10)
    assert np.array_equal(order, _reference_group_order(k, 10))
    assert np.array_equal(sort_within_groups(k, 10, v), _reference_sort_within_groups(k, v))


def test_group_order_hand_built():
    keys = np.array([2, 0, 2, 1, 0], dtype=np.int32)
    assert group_order(keys, 3).tolist() == [1, 4, 3, 0, 2]
    values = np.array([5, 9, 1, 0, 9], dtype=np.int64)  # key 0: 9, 9 (tie, row order); key 2: 5, 1
    assert sort_within_groups(keys, 3, values).tolist() == [1, 4, 3, 2, 0]
