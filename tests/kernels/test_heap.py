"""The bounded heap shared by the top-k kernels, against sorting."""

from __future__ import annotations

import numba as nb
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lensrec.kernels._heap import heap_drain, heap_push


@nb.njit
def _best(scores, columns, k):
    heap_s = np.empty(k, dtype=np.float32)
    heap_i = np.empty(k, dtype=np.int32)
    size = 0
    for t in range(scores.shape[0]):
        size = heap_push(heap_s, heap_i, size, k, scores[t], columns[t])
    out_ids = np.full((1, k), -1, dtype=np.int32)
    out_scores = np.full((1, k), np.nan, dtype=np.float32)
    heap_drain(heap_s, heap_i, size, out_ids, out_scores, 0)
    return out_ids[0], out_scores[0], size


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-3, 3), min_size=0, max_size=40),
    st.integers(1, 12),
    st.randoms(use_true_random=False),
)
def test_keeps_the_k_best_best_first_lower_column_on_ties(levels, k, rand):
    # few distinct scores: many ties; columns offered in a shuffled order
    columns = list(range(len(levels)))
    rand.shuffle(columns)
    scores = np.array([levels[c] for c in columns], dtype=np.float32)
    ids, out, size = _best(scores, np.array(columns, dtype=np.int32), k)
    want = sorted(range(len(levels)), key=lambda c: (-levels[c], c))[:k]
    assert size == len(want)
    assert ids[:size].tolist() == want
    assert out[:size].tolist() == [float(levels[c]) for c in want]
    assert (ids[size:] == -1).all() and np.isnan(out[size:]).all()  # the caller pads
