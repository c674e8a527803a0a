"""kNN-baseline kernels against the dense references and Surprise's KNNBaseline."""

from __future__ import annotations

import numpy as np
import pytest

from lensrec.kernels.baseline import als_biases
from lensrec.kernels.knn_baseline import (
    _reference_pearson_baseline,
    _reference_predict_pairs,
    _reference_topk,
    pearson_baseline_dense,
    pearson_baseline_topk,
    predict_pairs_dense,
    predict_pairs_topk,
)

N_USERS, N_ITEMS = 40, 25


def _tiny(rng, density=0.4):
    """Ratings in a random row order, every user and item present."""
    mask = rng.random((N_USERS, N_ITEMS)) < density
    mask[np.arange(N_USERS), rng.integers(0, N_ITEMS, N_USERS)] = True
    mask[rng.integers(0, N_USERS, N_ITEMS), np.arange(N_ITEMS)] = True
    users, items = np.nonzero(mask)
    perm = rng.permutation(users.size)
    ratings = rng.integers(1, 6, users.size).astype(np.float32)
    return users[perm].astype(np.int32), items[perm].astype(np.int32), ratings[perm]


def _csr(rows, cols, vals, n_rows, n_cols, sort=True):
    """CSR arrays; ``sort=False`` keeps each row in the input's order."""
    order = np.argsort(rows, kind="stable")
    if sort:
        order = np.lexsort((cols, rows))
    indptr = np.zeros(n_rows + 1, np.int64)
    np.add.at(indptr, rows + 1, 1)
    return np.cumsum(indptr), cols[order].astype(np.int32), vals[order].astype(np.float32)


class Setup:
    def __init__(self, rng, reg_u=15.0, reg_i=10.0, epochs=10):
        self.users, self.items, self.ratings = _tiny(rng)
        self.ucsr = _csr(self.users, self.items, self.ratings, N_USERS, N_ITEMS)
        self.icsr = _csr(self.items, self.users, self.ratings, N_ITEMS, N_USERS)
        self.ucsr_unsorted = _csr(self.users, self.items, self.ratings, N_USERS, N_ITEMS, False)
        self.mu = float(self.ratings.astype(np.float64).mean())
        self.bu = np.empty(N_USERS)
        self.bi = np.empty(N_ITEMS)
        als_biases(*self.ucsr, *self.icsr, self.mu, reg_u, reg_i, epochs, self.bu, self.bi)

    def base(self):
        return (*self.icsr, *self.ucsr, self.mu, self.bu, self.bi)

    def dense(self, shrinkage=100.0, min_support=1, dtype=np.float64, n_blocks=3):
        out = np.full((N_ITEMS, N_ITEMS), np.nan, dtype)
        pearson_baseline_dense(*self.base(), shrinkage, min_support, n_blocks, out)
        return out

    def rows(self, csr):
        indptr, idx, vals = csr
        spans = [slice(indptr[u], indptr[u + 1]) for u in range(N_USERS)]
        return [list(zip(idx[r].tolist(), vals[r].tolist(), strict=True)) for r in spans]


@pytest.mark.parametrize("shrinkage, min_support", [(100.0, 1), (0.0, 1), (10.0, 4)])
def test_dense_similarity_matches_reference(rng, shrinkage, min_support):
    s = Setup(rng)
    sim = s.dense(shrinkage, min_support)
    ref = _reference_pearson_baseline(
        s.users, s.items, s.ratings, N_USERS, N_ITEMS, s.mu, s.bu, s.bi, shrinkage, min_support
    )
    np.testing.assert_allclose(sim, ref, rtol=0, atol=1e-12)
    assert np.array_equal(sim, sim.T)  # sums over raters in the same order both ways
    assert np.abs(sim).max() <= 1.0 + 1e-12
    # the block count only changes how the work is cut
    assert np.array_equal(s.dense(shrinkage, min_support, n_blocks=1), sim)


def test_shrinkage_by_hand():
    # items 0 and 1 rated by users 0, 1, 2; all biases 0, mu = 0: residuals are the ratings
    users = np.array([0, 0, 1, 1, 2, 2], np.int32)
    items = np.array([0, 1, 0, 1, 0, 1], np.int32)
    ratings = np.array([1, 2, 2, 1, 3, 3], np.float32)
    ucsr = _csr(users, items, ratings, 3, 2)
    icsr = _csr(items, users, ratings, 2, 3)
    out = np.empty((2, 2))
    zeros = np.zeros(3), np.zeros(2)
    pearson_baseline_dense(*icsr, *ucsr, 0.0, *zeros, 2.0, 1, 1, out)
    rho = (1 * 2 + 2 * 1 + 3 * 3) / np.sqrt((1 + 4 + 9) * (4 + 1 + 9))
    assert out[0, 1] == pytest.approx(rho * 2 / (2 + 2.0))
    assert out[0, 0] == 1.0


@pytest.mark.parametrize("n_neighbors", [1, 4, N_ITEMS - 1, N_ITEMS + 3])
def test_topk_matches_reference(rng, n_neighbors):
    s = Setup(rng)
    sim = s.dense(20.0)
    ids = np.empty((N_ITEMS, n_neighbors), np.int32)
    vals = np.empty((N_ITEMS, n_neighbors))
    pearson_baseline_topk(*s.base(), 20.0, 1, 3, ids, vals)
    ref_ids, ref_vals = _reference_topk(sim, n_neighbors)
    assert np.array_equal(ids, ref_ids)
    np.testing.assert_allclose(vals, ref_vals, rtol=0, atol=1e-12)


@pytest.mark.parametrize("k, min_k", [(40, 1), (3, 1), (3, 2), (1, 1), (5, 4)])
def test_dense_predictions_match_reference(rng, k, min_k):
    s = Setup(rng)
    sim = s.dense(5.0)
    users = rng.integers(0, N_USERS, 200).astype(np.int32)
    items = rng.integers(0, N_ITEMS, 200).astype(np.int32)
    out = np.empty(200)
    used = np.empty(200, np.int32)
    predict_pairs_dense(users, items, s.mu, s.bu, s.bi, *s.ucsr_unsorted, sim, k, min_k, out, used)
    ref, ref_used = _reference_predict_pairs(
        users, items, s.mu, s.bu, s.bi, s.rows(s.ucsr_unsorted), sim, k, min_k
    )
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)
    assert np.array_equal(used, ref_used)
    baseline = s.mu + s.bu[users] + s.bi[items]
    assert np.array_equal(out[used == 0], baseline[used == 0])
    assert (used > 0).any() and (used <= k).all()


@pytest.mark.parametrize("n_neighbors", [2, 6, N_ITEMS - 1])
def test_topk_predictions_equal_dense_on_kept_neighbours(rng, n_neighbors):
    s = Setup(rng)
    sim = s.dense(5.0)
    ids = np.empty((N_ITEMS, n_neighbors), np.int32)
    vals = np.empty((N_ITEMS, n_neighbors))
    pearson_baseline_topk(*s.base(), 5.0, 1, 2, ids, vals)
    kept = np.zeros_like(sim)  # the dense similarity restricted to the kept neighbours
    for i in range(N_ITEMS):
        kept[i, ids[i][ids[i] >= 0]] = vals[i][ids[i] >= 0]
    # pairs the user has not rated (a rated item would be its own neighbour in the dense form)
    rated = set(zip(s.users.tolist(), s.items.tolist(), strict=True))
    pairs = [(u, i) for u in range(N_USERS) for i in range(N_ITEMS) if (u, i) not in rated]
    pick = rng.choice(len(pairs), 300, replace=False)
    users = np.array([pairs[p][0] for p in pick], np.int32)
    items = np.array([pairs[p][1] for p in pick], np.int32)
    for k, min_k in [(3, 1), (10, 2)]:
        a, ka = np.empty(300), np.empty(300, np.int32)
        b, kb = np.empty(300), np.empty(300, np.int32)
        predict_pairs_topk(users, items, s.mu, s.bu, s.bi, *s.ucsr, ids, vals, k, min_k, a, ka)
        predict_pairs_dense(users, items, s.mu, s.bu, s.bi, *s.ucsr, kept, k, min_k, b, kb)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
        assert np.array_equal(ka, kb)
        if n_neighbors == N_ITEMS - 1:  # everything kept: the full dense answer
            c, kc = np.empty(300), np.empty(300, np.int32)
            predict_pairs_dense(users, items, s.mu, s.bu, s.bi, *s.ucsr, sim, k, min_k, c, kc)
            np.testing.assert_allclose(a, c, rtol=0, atol=1e-12)


def test_matches_surprise_knn_baseline(rng):
    surprise = pytest.importorskip("surprise")
    s = Setup(rng, reg_u=15.0, reg_i=10.0, epochs=10)
    ur = {u: [] for u in range(N_USERS)}
    ir: dict[int, list] = {i: [] for i in range(N_ITEMS)}
    for u, i, r in zip(s.users.tolist(), s.items.tolist(), s.ratings.tolist(), strict=True):
        ur[u].append((i, r))
        ir[i].append((u, r))
    trainset = surprise.Trainset(
        ur, ir, N_USERS, N_ITEMS, s.users.size, (1, 5),
        {u: u for u in range(N_USERS)}, {i: i for i in range(N_ITEMS)},
    )  # fmt: skip
    k, min_k = 5, 2
    algo = surprise.KNNBaseline(
        k=k, min_k=min_k, verbose=False,
        sim_options={"name": "pearson_baseline", "user_based": False, "shrinkage": 100},
        bsl_options={"method": "als", "reg_u": 15, "reg_i": 10, "n_epochs": 10},
    )  # fmt: skip
    algo.fit(trainset)
    np.testing.assert_allclose(s.bu, algo.bu, atol=1e-10)
    sim64 = s.dense(100.0)
    sim32 = s.dense(100.0, dtype=np.float32)
    np.testing.assert_allclose(sim64, algo.sim, rtol=0, atol=1e-10)
    pairs = [(u, i) for u in range(N_USERS) for i in range(N_ITEMS)]
    users = np.array([p[0] for p in pairs], np.int32)
    items = np.array([p[1] for p in pairs], np.int32)
    expect = np.array([algo.predict(u, i, clip=False).est for u, i in pairs])
    for sim in (sim64, sim32):
        out = np.empty(len(pairs))
        used = np.empty(len(pairs), np.int32)
        predict_pairs_dense(
            users, items, s.mu, s.bu, s.bi, *s.ucsr_unsorted, sim, k, min_k, out, used
        )
        np.testing.assert_allclose(out, expect, rtol=0, atol=1e-4 if sim is sim32 else 1e-10)
    assert (used >= min_k).any() and (used == 0).any()
