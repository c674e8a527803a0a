"""lensrec.testing.strategies: the drawn data respects its bounds; importing lensrec.testing
does not import hypothesis."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lensrec.testing.strategies import int_ids, interactions, str_ids, uuid_ids


def test_lensrec_testing_does_not_import_hypothesis() -> None:
    code = "import sys, lensrec, lensrec.testing\nprint('hypothesis' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@settings(max_examples=50, deadline=None)
@given(
    st.data(),
    st.integers(1, 30),
    st.integers(0, 30),
    st.integers(1, 4),
    st.integers(1, 4),
    st.booleans(),
)
def test_interactions_respect_bounds(data, lo, extra, max_users, max_items, timestamps) -> None:
    hi = lo + extra
    inter = data.draw(
        interactions(
            min_rows=lo,
            max_rows=hi,
            max_users=max_users,
            max_items=max_items,
            timestamps=timestamps,
            ratings=[1.0, 3.0],
        )
    )
    assert lo <= inter.stats["rows_read"] <= hi
    assert 1 <= len(inter) == inter.stats["rows_read"] - inter.stats["duplicates_dropped"]
    assert inter.n_users <= max_users and inter.n_items <= max_items
    assert (inter.timestamps is not None) == timestamps
    assert inter.ratings is not None and set(inter.ratings.tolist()) <= {1.0, 3.0}


@settings(max_examples=30, deadline=None)
@given(
    st.data(), st.sampled_from([int_ids, str_ids, uuid_ids]), st.integers(1, 5), st.integers(0, 10)
)
def test_id_lists_are_unique_and_sized(data, strategy, lo, extra) -> None:
    ids = data.draw(strategy(min_size=lo, max_size=lo + extra))
    assert lo <= len(ids) <= lo + extra
    assert len(set(ids)) == len(ids)
    # every id survives a round trip through a numpy array (no trailing NUL, int64 range)
    assert np.asarray(ids).tolist() == list(ids)
