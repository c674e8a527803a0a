"""SLIM: the one-weight case by hand, optimality, fsSLIM, hyper-parameters, memory, ml-100k."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import lensrec.models.base as base
from lensrec import Interactions, load
from lensrec.errors import ConfigError
from lensrec.models import SLIM


def _binary_data(rng: np.random.Generator, n_users: int = 50, n_items: int = 14) -> Interactions:
    x = rng.random((n_users, n_items)) < 0.3
    x[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    x[rng.integers(0, n_users, n_items), np.arange(n_items)] = True
    u, i = np.nonzero(x)
    return Interactions.from_arrays(u, i)


def _kkt_violation(x: np.ndarray, w: np.ndarray, l1: float, l2: float) -> float:
    """Largest violation of the optimality conditions of every target's problem.

    For target j, source k != j: g = (X^T X w_j)_k - (X^T x_j)_k + l1 + l2 w_kj must be 0
    where w_kj > 0 and >= 0 where w_kj = 0.
    """
    g = x.T @ x
    grad = g @ w - g + l1 + l2 * w
    off = ~np.eye(w.shape[0], dtype=bool)
    pos, zero = (w > 0) & off, (w == 0) & off
    return max(
        float(np.abs(grad[pos]).max()) if pos.any() else 0.0,
        float(np.maximum(-grad[zero], 0).max()) if zero.any() else 0.0,
    )


@pytest.fixture
def data(rng) -> Interactions:
    return _binary_data(rng)


def test_two_items_by_hand():
    # users 0-3 have item a, users 2-5 item b: a.a = 4, a.b = 2, b.b = 4
    u = [0, 1, 2, 3, 2, 3, 4, 5]
    i = ["a", "a", "a", "a", "b", "b", "b", "b"]
    data = Interactions.from_arrays(u, i)
    l1, l2 = 0.5, 1.0
    w = SLIM(l1=l1, l2=l2, tol=0.0).fit(data).weights_.toarray()
    # one source per target: w = max(0, (a.b - l1) / (a.a + l2))
    want = (2 - l1) / (4 + l2)
    np.testing.assert_allclose(w, [[0.0, want], [want, 0.0]], rtol=1e-6)
    # an L1 penalty above the co-occurrence zeroes the weight
    assert SLIM(l1=2.5, l2=l2).fit(data).weights_.nnz == 0


def test_weights_are_optimal_nonnegative_sparse_and_zero_diagonal(data):
    l1, l2 = 0.3, 2.0
    model = SLIM(l1=l1, l2=l2, max_iter=1000, tol=1e-9).fit(data)
    assert sp.isspmatrix_csr(model.weights_) and model.weights_.dtype == np.float32
    w = model.weights_.toarray().astype(np.float64)
    assert (w >= 0).all() and np.all(np.diag(w) == 0)
    assert (w == 0).mean() > 0.2  # the L1 term zeroes weights
    x = data.csr().toarray().astype(np.float64)
    assert _kkt_violation(x, w, l1, l2) < 1e-3


def test_scores_and_fold_in(data):
    model = SLIM(l1=0.2, l2=1.0).fit(data)
    x = data.csr().toarray()
    want = x @ model.weights_.toarray()
    ids, scores = model.recommend(np.arange(data.n_users), k=5)
    for u in range(data.n_users):
        np.testing.assert_allclose(scores[u], want[u, ids[u]], rtol=1e-5, atol=1e-6)
        items = np.flatnonzero(x[u])
        f_ids, f_scores = model.recommend_for_history(items, k=5)
        np.testing.assert_array_equal(f_ids[0], ids[u])
        np.testing.assert_array_equal(f_scores[0], scores[u])


def test_candidates_restrict_the_weights(data):
    x = data.csr().toarray().astype(np.float64)
    exact = SLIM(l1=0.2, l2=1.0, tol=1e-8, max_iter=500).fit(data).weights_.toarray()
    every = SLIM(l1=0.2, l2=1.0, tol=1e-8, max_iter=500, neighbours=data.n_items).fit(data)
    np.testing.assert_allclose(every.weights_.toarray(), exact, atol=1e-4)
    few = SLIM(l1=0.2, l2=1.0, neighbours=3).fit(data).weights_.toarray()
    # target j may only use its 3 most cosine-similar items (ties: any of the tied ones)
    norms = np.sqrt((x * x).sum(0))
    cos = (x.T @ x) / np.outer(norms, norms)
    np.fill_diagonal(cos, -np.inf)
    for j in range(data.n_items):
        used = np.flatnonzero(few[:, j])
        assert used.size <= 3
        third = np.sort(cos[j])[::-1][2]
        assert (cos[j, used] >= third - 1e-6).all()
    assert not np.allclose(few, exact)


def test_each_hyper_parameter_changes_the_result(data):
    def w(**kw):
        return SLIM(**{"l1": 0.2, "l2": 1.0, **kw}).fit(data).weights_.toarray()

    ref = w()
    assert not np.allclose(w(l1=1.0), ref)
    assert not np.allclose(w(l2=10.0), ref)
    assert not np.allclose(w(neighbours=2), ref)
    assert not np.allclose(w(max_iter=1, tol=0.0), w(max_iter=200, tol=0.0))
    assert not np.allclose(w(tol=0.5), w(tol=1e-9))
    assert (w(l1=1.0) > 0).sum() < (ref > 0).sum()  # more L1, sparser


def test_sweeps_and_save_load_keep_sparse_state(data, tmp_path):
    model = SLIM(l1=0.2, l2=1.0, max_iter=2, tol=0.0).fit(data)
    assert (model.sweeps_ <= 2).all()
    back = load(model.save(tmp_path / "slim.lrec"))
    assert sp.isspmatrix_csr(back.weights_)
    assert (back.weights_ != model.weights_).nnz == 0


def test_similar_items_are_rows_of_the_weights(data):
    model = SLIM(l1=0.5, l2=1.0).fit(data)
    w = model.weights_.toarray()
    ids, scores = model.similar_items(np.arange(data.n_items), k=data.n_items)
    for i in range(data.n_items):
        n_pos = int((w[i] > 0).sum())
        assert (ids[i, :n_pos] >= 0).all() and (ids[i, n_pos:] == -1).all()
        np.testing.assert_allclose(scores[i, :n_pos], np.sort(w[i][w[i] > 0])[::-1])


def test_exact_refuses_a_large_catalogue_and_neighbours_fit(monkeypatch):
    # 20k items: exact SLIM needs a 1.6 GB Gram; fsSLIM reads its candidate Grams from a
    # sparse co-occurrence table (the dense one would pass 1 GiB), small here
    n_items = 20_000
    data = Interactions.from_arrays(np.arange(n_items) % 50, np.arange(n_items))
    monkeypatch.setattr(base, "available_memory", lambda: 1 << 30)
    with pytest.raises(ConfigError, match=r"SLIM would need about [\d.]+ GiB"):
        SLIM().fit(data)
    model = SLIM(neighbours=20).fit(data)
    assert model.weights_.shape == (n_items, n_items)


@pytest.mark.realdata
def test_quality_floor_ml100k(ml100k_positives):
    from lensrec.evaluate import evaluate
    from lensrec.split import make_split

    split = make_split(ml100k_positives, "last:3:row")
    model = SLIM(random_state=0).fit(split.train)
    metrics = ["ndcg@10", "hit_rate@10", "map_k@10"]
    got = evaluate(model, split.train, split.test, k=10, metrics=metrics, ci=False).metrics
    # measured 0.642 / 0.0458 with the defaults
    assert got["hit_rate@10"] >= 0.62, got
    assert got["map_k@10"] >= 0.044, got
