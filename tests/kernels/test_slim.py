"""SLIM coordinate descent against a plain reference, the KKT conditions and invariants."""

from __future__ import annotations

import numba as nb
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import lensrec.kernels.slim as slim_module
from lensrec.data.synthetic import synthetic
from lensrec.errors import ConfigError
from lensrec.kernels.knn import item_knn
from lensrec.kernels.linear import gram_matrix
from lensrec.kernels.slim import (
    _kkt_violation,
    _reference_slim,
    slim_from_candidates,
    slim_from_gram,
)

TIGHT = dict(max_iter=5000, tol=1e-12)


def _binary(gen, n_users, n_items, density):
    return (gen.random((n_users, n_items)) < density).astype(np.float32)


def _dense(res, n):
    return sp.csr_matrix((res.data, res.indices, res.indptr), shape=(n, n)).toarray()


def _from_gram(x, l1, l2, dtype=np.float32, **kw):
    m = sp.csr_matrix(x)
    g = gram_matrix(m.indptr, m.indices, m.data, x.shape[1], dtype)
    res = slim_from_gram(g, l1, l2, **kw)
    return _dense(res, x.shape[1]), res


def _from_candidates(x, cand_indptr, cand_indices, l1, l2, **kw):
    m = sp.csr_matrix(x)
    res = slim_from_candidates(
        m.indptr, m.indices, m.data, x.shape[1], cand_indptr, cand_indices, l1, l2, **kw
    )
    return _dense(res, x.shape[1]), res


#: where slim_from_candidates takes its Gram matrix from: (dense bytes, sparse bytes) caps
GRAM_SOURCES = {"dense": (1 << 40, 1 << 40), "sparse": (0, 1 << 40), "interactions": (0, 0)}


@pytest.fixture(params=list(GRAM_SOURCES))
def gram_source(request, monkeypatch):
    dense, sparse = GRAM_SOURCES[request.param]
    monkeypatch.setattr(slim_module, "_DENSE_GRAM_BYTES", dense)
    monkeypatch.setattr(slim_module, "_SPARSE_GRAM_BYTES", sparse)
    return request.param


def _all_candidates(n):
    indices = np.tile(np.arange(n, dtype=np.int32), n)  # includes each item itself
    return np.arange(n + 1, dtype=np.int64) * n, indices


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_users=st.integers(2, 25),
    n_items=st.integers(2, 9),
    l1=st.sampled_from([0.0, 0.1, 1.0, 3.0]),
    l2=st.sampled_from([0.5, 2.0, 10.0]),
    valued=st.booleans(),
)
def test_slim_matches_reference(seed, n_users, n_items, l1, l2, valued):
    gen = np.random.default_rng(seed)
    x = _binary(gen, n_users, n_items, 0.4)
    if valued:
        x *= gen.integers(1, 6, x.shape).astype(np.float32)
    got, res = _from_gram(x, l1, l2, dtype=np.float64, **TIGHT)
    want = _reference_slim(x, l1, l2, sweeps=20_000, tol=1e-13)  # run to convergence
    scale = max(1.0, np.abs(want).max())
    np.testing.assert_allclose(got, want, atol=2e-5 * scale)
    # the fsSLIM path with every item as candidate solves the same problem
    cp, ci = _all_candidates(n_items)
    got_c, _ = _from_candidates(x, cp, ci, l1, l2, **TIGHT)
    np.testing.assert_allclose(got_c, got, atol=2e-5 * scale)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_items=st.integers(2, 15),
    l1=st.sampled_from([0.0, 0.5, 2.0]),
    l2=st.sampled_from([0.0, 0.1, 5.0]),
)
def test_slim_satisfies_kkt(seed, n_items, l1, l2):
    gen = np.random.default_rng(seed)
    x = _binary(gen, 30, n_items, 0.3)
    w, res = _from_gram(x, l1, l2, dtype=np.float64, **TIGHT)
    g_scale = max(1.0, float((x.T @ x).max()))
    assert _kkt_violation(x, w, l1, l2) <= 1e-4 * g_scale
    assert np.all(res.sweeps <= TIGHT["max_iter"])


def test_kkt_check_can_fail(rng):
    # the optimality check itself: a perturbed optimum violates it
    x = _binary(rng, 30, 8, 0.4)
    w, _ = _from_gram(x, 0.5, 1.0, dtype=np.float64, **TIGHT)
    bad = w.copy()
    bad[np.unravel_index(np.argmax(w), w.shape)] *= 1.5
    assert _kkt_violation(x, bad, 0.5, 1.0) > 1e-2


def test_zero_diagonal_nonnegative_and_sparser_with_l1(rng):
    x = _binary(rng, 200, 30, 0.15)
    nnz = []
    for l1 in (0.0, 1.0, 5.0, 20.0):
        w, _ = _from_gram(x, l1, 1.0)
        assert np.all(np.diag(w) == 0)
        assert np.all(w >= 0)
        nnz.append(np.count_nonzero(w))
    assert nnz == sorted(nnz, reverse=True) and nnz[0] > nnz[-1]


def test_l1_above_every_co_occurrence_gives_zero():
    # w = 0 is optimal iff l1 >= G[k, j] for all k != j (the gradient at 0 is l1 - G[k, j])
    x = np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1], [1, 0, 0]], dtype=np.float32)
    g = x.T @ x
    top = float((g - np.diag(np.diag(g))).max())
    w, _ = _from_gram(x, top, 0.5)
    assert np.count_nonzero(w) == 0
    w, _ = _from_gram(x, top - 0.1, 0.5)
    assert np.count_nonzero(w) > 0


def test_block_diagonal_data_has_no_cross_block_weights(rng):
    a = _binary(rng, 40, 6, 0.4)
    b = _binary(rng, 30, 5, 0.4)
    x = np.zeros((70, 11), np.float32)
    x[:40, :6] = a
    x[40:, 6:] = b
    w, _ = _from_gram(x, 0.1, 1.0)
    assert np.all(w[:6, 6:] == 0) and np.all(w[6:, :6] == 0)
    assert np.count_nonzero(w[:6, :6]) > 0 and np.count_nonzero(w[6:, 6:]) > 0


def test_candidates_restrict_and_match_reference(rng, gram_source):
    x = _binary(rng, 60, 14, 0.3)
    m = sp.csr_matrix(x)
    kp, ki, _ = item_knn(m.indptr, m.indices, m.data, 14, 4)
    w, res = _from_candidates(x, kp, ki, 0.2, 1.0, **TIGHT)
    cands = [ki[kp[j] : kp[j + 1]].tolist() for j in range(14)]
    want = _reference_slim(x, 0.2, 1.0, sweeps=400, candidates=cands)
    np.testing.assert_allclose(w, want, atol=2e-5 * max(1.0, want.max()))
    for j in range(14):  # column j only uses j's candidates
        outside = np.setdiff1d(np.arange(14), cands[j])
        assert np.all(w[outside, j] == 0)


def test_candidate_repeats_and_self_are_ignored(rng, gram_source):
    x = _binary(rng, 50, 6, 0.4)
    cp, ci = _all_candidates(6)
    clean, _ = _from_candidates(x, cp, ci, 0.3, 1.0, **TIGHT)
    # every row listed twice, in reverse order
    ci2 = np.concatenate([ci.reshape(6, 6), ci.reshape(6, 6)[:, ::-1]], axis=1).ravel()
    messy, _ = _from_candidates(x, np.arange(7) * 12, ci2, 0.3, 1.0, **TIGHT)
    np.testing.assert_allclose(messy, clean, atol=1e-7)


def test_unused_item_without_l2_stays_zero():
    x = np.array([[1, 0, 1], [1, 0, 1], [0, 0, 1]], dtype=np.float32)
    w, _ = _from_gram(x, 0.1, 0.0)
    assert np.all(np.isfinite(w))
    assert np.all(w[1] == 0) and np.all(w[:, 1] == 0)


def test_max_iter_bounds_sweeps_and_tol_stops_early(rng):
    x = _binary(rng, 100, 20, 0.2)
    _, one = _from_gram(x, 0.1, 0.5, max_iter=1)
    assert np.all(one.sweeps <= 1)
    w_loose, loose = _from_gram(x, 0.1, 0.5, max_iter=1000, tol=1e-1)
    w_tight, tight = _from_gram(x, 0.1, 0.5, max_iter=1000, tol=1e-10)
    assert loose.sweeps.sum() < tight.sweeps.sum()
    assert _kkt_violation(x, w_tight, 0.1, 0.5) < _kkt_violation(x, w_loose, 0.1, 0.5)


def test_exact_active_set_step_saves_sweeps():
    # correlated items: plain coordinate descent needs hundreds of sweeps, the exact step few
    x = synthetic(300, 60, 4000, implicit=True, random_state=0).csr("binary").toarray()
    x = x.astype(np.float32)
    plain, p_res = _from_gram(x, 0.5, 2.0, dtype=np.float64, newton_max=0, **TIGHT)
    fast, f_res = _from_gram(x, 0.5, 2.0, dtype=np.float64, **TIGHT)
    assert np.median(p_res.sweeps) > 150
    assert f_res.sweeps.max() < 100
    np.testing.assert_allclose(fast, plain, atol=1e-5 * plain.max())
    assert _kkt_violation(x, fast, 0.5, 2.0) < 1e-4


def test_same_result_for_any_thread_count(rng):
    x = _binary(rng, 80, 25, 0.2)
    m = sp.csr_matrix(x)
    kp, ki, _ = item_knn(m.indptr, m.indices, m.data, 25, 6)
    before = nb.get_num_threads()
    try:
        nb.set_num_threads(1)
        one = (_from_gram(x, 0.2, 1.0)[0], _from_candidates(x, kp, ki, 0.2, 1.0)[0])
        nb.set_num_threads(nb.config.NUMBA_NUM_THREADS)
        many = (_from_gram(x, 0.2, 1.0)[0], _from_candidates(x, kp, ki, 0.2, 1.0)[0])
    finally:
        nb.set_num_threads(before)
    np.testing.assert_array_equal(one[0], many[0])
    np.testing.assert_array_equal(one[1], many[1])


def test_parameters_change_the_result(rng):
    x = _binary(rng, 80, 15, 0.25)
    base, _ = _from_gram(x, 0.5, 1.0)
    assert not np.allclose(base, _from_gram(x, 2.0, 1.0)[0])
    assert not np.allclose(base, _from_gram(x, 0.5, 10.0)[0])


@pytest.mark.parametrize(
    "kw",
    [
        dict(l1=-1.0),
        dict(l2=-0.1),
        dict(max_iter=0),
        dict(tol=-1.0),
        dict(l1=np.nan),
        dict(newton_max=-1),
    ],
)
def test_bad_arguments(kw):
    args = dict(l1=0.1, l2=0.1, max_iter=10, tol=1e-4) | kw
    with pytest.raises(ConfigError):
        slim_from_gram(np.eye(3, dtype=np.float32), **args)
    with pytest.raises(ConfigError):
        slim_from_gram(np.ones((2, 3), np.float32), 0.1, 0.1)


def test_candidate_gram_sources_agree(rng, monkeypatch):
    # valued data, skewed popularity, uneven candidate lists (some empty, some long enough
    # for the sparse source's binary search, some short enough for its row scan): the three
    # sources of the restricted Gram matrices give the same weights
    n_items = 40
    p = 0.6 / (1.0 + np.arange(n_items)) ** 0.8
    x = (rng.random((120, n_items)) < p).astype(np.float32)
    x *= rng.integers(1, 6, x.shape).astype(np.float32)
    sizes = rng.integers(0, n_items, n_items)
    sizes[:3] = (0, 1, n_items)
    rows = [rng.choice(n_items, k, replace=False) for k in sizes]
    cp = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    ci = np.concatenate(rows).astype(np.int32)
    got = {}
    for name, (dense, sparse) in GRAM_SOURCES.items():
        monkeypatch.setattr(slim_module, "_DENSE_GRAM_BYTES", dense)
        monkeypatch.setattr(slim_module, "_SPARSE_GRAM_BYTES", sparse)
        got[name] = _from_candidates(x, cp, ci, 0.5, 2.0, **TIGHT)
    want = _reference_slim(x, 0.5, 2.0, sweeps=400, candidates=[r.tolist() for r in rows])
    scale = max(1.0, np.abs(want).max())
    for name, (w, res) in got.items():
        np.testing.assert_allclose(w, want, atol=2e-5 * scale, err_msg=name)
        assert res.sweeps[0] == 0  # no candidates, no solve
    assert np.count_nonzero(want) > 20


def test_sparse_cooccurrence_matches_gram(rng):
    x = (rng.random((50, 30)) < 0.2).astype(np.float32) * rng.integers(1, 4, (50, 30))
    x[:, 7] = 0  # an item nobody has: an empty row
    m = sp.csr_matrix(x.astype(np.float32))
    c = m.tocsc()
    counts = np.zeros(30, np.int64)
    slim_module.cooccurrence_counts(c.indptr, c.indices, m.indptr, m.indices, 4, counts)
    g_indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    g_indices = np.empty(g_indptr[-1], np.int32)
    g_data = np.empty(g_indptr[-1], np.float32)
    slim_module.cooccurrence_fill(
        c.indptr, c.indices, c.data, m.indptr, m.indices, m.data, 4, g_indptr, g_indices, g_data
    )
    g = sp.csr_matrix((g_data, g_indices, g_indptr), shape=(30, 30))
    assert g.has_sorted_indices
    want = x.astype(np.float64).T @ x
    np.testing.assert_array_equal(g.toarray(), want)
    assert g.nnz == np.count_nonzero(want)  # stored entries: exactly the co-occurring pairs
