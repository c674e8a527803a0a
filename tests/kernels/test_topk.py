"""The shared top-k kernel against its slow reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lensrec.kernels.topk import _reference_topk_rows, topk_rows


def _run(scores, k, exclude):
    b = scores.shape[0]
    indptr = np.zeros(b + 1, dtype=np.int64)
    idx = []
    for r, ex in enumerate(exclude):
        row = sorted(ex)
        idx.extend(row)
        indptr[r + 1] = indptr[r] + len(row)
    indices = np.array(idx, dtype=np.int32)
    ids = np.empty((b, k), np.int32)
    out = np.empty((b, k), np.float32)
    topk_rows(np.ascontiguousarray(scores, np.float32), k, indptr, indices, ids, out)
    return ids, out


@settings(max_examples=60, deadline=None)
@given(
    b=st.integers(1, 6),
    n=st.integers(1, 25),
    k=st.integers(1, 30),
    seed=st.integers(0, 2**31 - 1),
    levels=st.integers(1, 6),
)
def test_topk_matches_reference(b, n, k, seed, levels):
    gen = np.random.default_rng(seed)
    # few distinct levels force ties; some -inf entries are not candidates
    scores = gen.integers(0, levels, (b, n)).astype(np.float32)
    scores[gen.random((b, n)) < 0.15] = -np.inf
    exclude = [set(np.flatnonzero(gen.random(n) < 0.3).tolist()) for _ in range(b)]
    ids, out = _run(scores, k, exclude)
    ref_ids, ref_out = _reference_topk_rows(scores, k, exclude)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(out, ref_out)


def test_topk_hand_case():
    scores = np.array([[0.1, 0.9, 0.5, 0.9, -np.inf]], dtype=np.float32)
    ids, out = _run(scores, 4, [{2}])
    # 0.9 at columns 1 and 3 (tie -> lower column first), then 0.1 at 0; 2 excluded, 4 is -inf
    assert ids.tolist() == [[1, 3, 0, -1]]
    assert out[0, :3].tolist() == [np.float32(0.9), np.float32(0.9), np.float32(0.1)]
    assert out[0, 3] == -np.inf


def test_topk_nan_is_not_a_candidate():
    scores = np.array([[np.nan, 1.0, np.nan]], dtype=np.float32)
    ids, _ = _run(scores, 3, [set()])
    assert ids.tolist() == [[1, -1, -1]]


@pytest.mark.parametrize("seed", range(4))
def test_topk_long_rows_skip_chunks_correctly(seed):
    """Rows far longer than the skip chunk: ties, NaN, -inf and exclusions across chunks."""
    gen = np.random.default_rng(seed)
    b, n, k = 6, 1000, 7
    scores = np.round(gen.standard_normal((b, n)), 1).astype(np.float32)  # many ties
    scores[gen.random((b, n)) < 0.05] = -np.inf
    scores[gen.random((b, n)) < 0.05] = np.nan
    exclude = [
        set(np.argsort(-np.nan_to_num(scores[r], nan=-9))[: 3 + r].tolist()) for r in range(b)
    ]
    ids, out = _run(scores, k, exclude)
    ref_ids, ref_out = _reference_topk_rows(np.nan_to_num(scores, nan=-np.inf), k, exclude)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(out, ref_out)


def test_serial_and_threaded_paths_agree_with_the_reference(monkeypatch):
    import numba

    from lensrec.kernels.topk import PARALLEL_MIN_VALUES, _topk_rows_serial, topk_rows

    gen = np.random.default_rng(3)
    b, n, k = 260, 1024, 17
    assert b * n >= PARALLEL_MIN_VALUES  # topk_rows takes the parallel path for this block
    scores = gen.integers(0, 50, (b, n)).astype(np.float32)  # many ties
    scores[gen.random((b, n)) < 0.05] = -np.inf
    exclude = [set(np.flatnonzero(gen.random(n) < 0.1).tolist()) for _ in range(b)]
    ids, out = _run(scores, k, exclude)
    ref_ids, ref_out = _reference_topk_rows(scores, k, exclude)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(out, ref_out)
    indptr = np.concatenate([[0], np.cumsum([len(e) for e in exclude])]).astype(np.int64)
    indices = np.array([j for e in exclude for j in sorted(e)], dtype=np.int32)
    got_i = np.empty((b, k), np.int32)
    got_s = np.empty((b, k), np.float32)
    _topk_rows_serial(scores, k, indptr, indices, got_i, got_s)
    np.testing.assert_array_equal(got_i, ref_ids)
    np.testing.assert_array_equal(got_s, ref_out)
    for threads in (2, 3, 7):  # runs of rows of unequal length, cut at 86/87 or 37/38 rows
        monkeypatch.setattr(numba, "get_num_threads", lambda t=threads: t)
        got_i = np.full((b, k), -7, np.int32)
        got_s = np.full((b, k), 7, np.float32)
        topk_rows(scores, k, indptr, indices, got_i, got_s)
        np.testing.assert_array_equal(got_i, ref_ids)
        np.testing.assert_array_equal(got_s, ref_out)
