"""Item-kNN similarity kernel against its dense reference, plus hand cases and invariants."""

from __future__ import annotations

import numba as nb
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from lensrec.errors import ConfigError
from lensrec.kernels.knn import (
    _reference_item_knn,
    _reference_similarity,
    bm25_weight,
    item_knn,
    tfidf_weight,
)


def _random_matrix(gen: np.random.Generator, n_users: int, n_items: int, density: float, valued):
    mask = gen.random((n_users, n_items)) < density
    vals = gen.integers(1, 6, (n_users, n_items)).astype(np.float64) if valued else 1.0
    return np.where(mask, vals, 0.0)


def _knn(x: np.ndarray, k: int, **kw):
    m = sp.csr_matrix(x.astype(np.float32))
    indptr, indices, data = item_knn(m.indptr, m.indices, m.data, x.shape[1], k, **kw)
    return [
        list(
            zip(
                indices[indptr[i] : indptr[i + 1]].tolist(),
                data[indptr[i] : indptr[i + 1]],
                strict=True,
            )
        )
        for i in range(x.shape[1])
    ]


def _assert_matches(got, want, sim, k):
    """Same scores in the same order; every kept pair has its true similarity; same neighbours
    unless scores tie (within rounding) around the cut."""
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert len(g) == len(w), (i, g, w)
        gs = np.array([s for _, s in g], np.float64)
        ws = np.array([s for _, s in w], np.float64)
        np.testing.assert_allclose(gs, ws, rtol=2e-6, atol=1e-7)
        for j, s in g:
            assert j != i
            np.testing.assert_allclose(s, sim[i, j], rtol=2e-6, atol=1e-7)
        # neighbour identities: exact unless two reference scores are within rounding
        all_s = np.sort(np.float32(sim[i][np.isfinite(sim[i])]))
        gaps = np.diff(all_s)
        if not np.any((gaps > 0) & (gaps < 1e-5 * np.abs(all_s[1:]).max(initial=1))):
            assert [j for j, _ in g] == [j for j, _ in w], (i, g, w)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_users=st.integers(1, 12),
    n_items=st.integers(1, 10),
    k=st.integers(1, 12),
    weighting=st.sampled_from(["cosine", "tfidf", "bm25", "dot"]),
    valued=st.booleans(),
    binary=st.booleans(),
    shrink=st.sampled_from([0.0, 0.5, 3.0]),
)
def test_item_knn_matches_reference(seed, n_users, n_items, k, weighting, valued, binary, shrink):
    gen = np.random.default_rng(seed)
    x = _random_matrix(gen, n_users, n_items, 0.4, valued)
    if weighting not in ("cosine", "tfidf"):
        shrink = 0.0
    kw = dict(weighting=weighting, binary=binary, shrink=shrink)
    got = _knn(x, k, **kw)
    want = _reference_item_knn(x, k, **kw)
    sim, _ = _reference_similarity(x, **kw)
    _assert_matches(got, want, sim, k)


def test_cosine_hand_case():
    # items a=(1,1,1), b=(1,0,1), c=(0,1,1) over three users
    x = np.array([[1, 1, 0], [1, 0, 1], [1, 1, 1]], dtype=np.float64)
    rows = _knn(x, 2)
    c_ab = 2 / np.sqrt(6)
    assert [j for j, _ in rows[0]] == [1, 2]  # tie: lower index first
    np.testing.assert_allclose([s for _, s in rows[0]], [c_ab, c_ab], rtol=1e-6)
    assert [j for j, _ in rows[1]] == [0, 2]
    np.testing.assert_allclose([s for _, s in rows[1]], [c_ab, 0.5], rtol=1e-6)
    assert [j for j, _ in _knn(x, 1)[2]] == [0]
    # co-occurrence counts with "dot" on binary data
    rows = _knn(x, 2, weighting="dot")
    assert [(j, float(s)) for j, s in rows[1]] == [(0, 2.0), (2, 1.0)]


def test_shrink_pulls_down_rare_pairs():
    x = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 0]], dtype=np.float64)
    plain = _knn(x, 3)
    shrunk = _knn(x, 3, shrink=10.0)
    # (2, 3) share their only user: cosine 1; shrinkage divides by 1 * 1 + 10
    assert dict(plain[2])[3] == pytest.approx(1.0)
    assert dict(shrunk[2])[3] == pytest.approx(1 / 11)
    # (0, 1): dot 2, norms sqrt(3) and sqrt(2)
    assert dict(shrunk[0])[1] == pytest.approx(2 / (np.sqrt(6) + 10))


def test_bm25_and_tfidf_weights_by_hand():
    # 2 users x 3 items: user 0 saw items 0, 1 (values 1, 3); user 1 saw item 1 (value 2)
    x = sp.csr_matrix(np.array([[1.0, 3.0, 0.0], [0.0, 2.0, 0.0]], np.float32))
    idf0 = np.log(3) - np.log1p(2)
    idf1 = np.log(3) - np.log1p(1)
    tf = tfidf_weight(x.indptr, x.indices, x.data, 3)
    np.testing.assert_allclose(tf, [1 * idf0, np.sqrt(3) * idf0, np.sqrt(2) * idf1], rtol=1e-6)
    k1, b = 1.5, 0.5
    col = np.array([1.0, 5.0, 0.0])
    ln = (1 - b) + b * col / col.mean()
    want = [
        1 * (k1 + 1) / (k1 * ln[0] + 1) * idf0,
        3 * (k1 + 1) / (k1 * ln[1] + 3) * idf0,
        2 * (k1 + 1) / (k1 * ln[1] + 2) * idf1,
    ]
    np.testing.assert_allclose(bm25_weight(x.indptr, x.indices, x.data, 3, k1, b), want, rtol=1e-6)


def test_full_cosine_is_symmetric_and_has_no_diagonal(rng):
    x = _random_matrix(rng, 40, 25, 0.2, valued=True)
    m = sp.csr_matrix(x.astype(np.float32))
    indptr, indices, data = item_knn(m.indptr, m.indices, m.data, 25, 100)
    s = sp.csr_matrix((data, indices, indptr), shape=(25, 25)).toarray()
    assert np.all(np.diag(s) == 0)
    np.testing.assert_allclose(s, s.T, rtol=1e-6)


def test_rows_are_best_first_and_k_bounded(rng):
    x = _random_matrix(rng, 60, 30, 0.3, valued=False)
    m = sp.csr_matrix(x.astype(np.float32))
    indptr, indices, data = item_knn(m.indptr, m.indices, m.data, 30, 5, weighting="bm25")
    assert np.all(np.diff(indptr) <= 5)
    for i in range(30):
        row = data[indptr[i] : indptr[i + 1]]
        assert np.all(np.diff(row) <= 0)
        assert i not in indices[indptr[i] : indptr[i + 1]]


def test_same_result_for_any_thread_count(rng):
    x = _random_matrix(rng, 80, 50, 0.15, valued=True)
    m = sp.csr_matrix(x.astype(np.float32))
    before = nb.get_num_threads()
    try:
        nb.set_num_threads(1)
        one = item_knn(m.indptr, m.indices, m.data, 50, 7, weighting="tfidf")
        nb.set_num_threads(nb.config.NUMBA_NUM_THREADS)
        many = item_knn(m.indptr, m.indices, m.data, 50, 7, weighting="tfidf")
    finally:
        nb.set_num_threads(before)
    for a, b in zip(one, many, strict=True):
        np.testing.assert_array_equal(a, b)


def test_parameters_change_the_result(rng):
    x = _random_matrix(rng, 50, 20, 0.3, valued=True)
    base = _knn(x, 5, weighting="bm25")
    assert _knn(x, 5, weighting="bm25", k1=5.0) != base
    assert _knn(x, 5, weighting="bm25", b=0.0) != base
    assert _knn(x, 5, binary=True) != _knn(x, 5)


def test_item_without_users_has_no_neighbours():
    x = np.array([[1, 0, 1], [1, 0, 0]], dtype=np.float64)
    rows = _knn(x, 3)
    assert rows[1] == []
    assert [j for j, _ in rows[0]] == [2]


@pytest.mark.parametrize(
    "kw",
    [
        dict(weighting="jaccard"),
        dict(k=0),
        dict(shrink=-1.0),
        dict(weighting="bm25", shrink=1.0),
    ],
)
def test_bad_arguments(kw):
    m = sp.csr_matrix(np.eye(3, dtype=np.float32))
    k = kw.pop("k", 2)
    with pytest.raises(ConfigError):
        item_knn(m.indptr, m.indices, m.data, 3, k, **kw)
