"""kNN-baseline kernels against the dense references and Surprise's KNNBaseline; the row
scoring kernels against the pair kernels (bit for bit) and the references."""

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
    score_rows_dense,
    score_rows_topk,
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


def _ties(sim, levels=4):
    """The similarity rounded to a few values (many exact ties), diagonal kept at 1."""
    out = np.round(sim * levels) / levels
    np.fill_diagonal(out, 1.0)
    return out


@pytest.mark.parametrize("k, min_k", [(40, 1), (3, 1), (3, 2), (1, 1), (5, 4)])
@pytest.mark.parametrize("tied", [False, True], ids=["distinct", "tied"])
def test_score_rows_dense_equals_pair_predictions_bitwise(rng, k, min_k, tied):
    s = Setup(rng)
    sim = s.dense(5.0, dtype=np.float32)
    if tied:  # equal similarities: the earlier item in the row wins in both kernels
        sim = _ties(sim).astype(np.float32)
    indptr, idx, vals = s.ucsr_unsorted
    bias = rng.normal(0, 0.3, N_USERS)  # any row biases (fold-in rows have their own)
    cand = np.arange(N_ITEMS, dtype=np.int32)
    out = np.empty((N_USERS, N_ITEMS), np.float32)
    score_rows_dense(indptr, idx, vals, s.mu, bias, s.bi, sim, cand, k, min_k, out)
    users = np.repeat(np.arange(N_USERS, dtype=np.int32), N_ITEMS)
    items = np.tile(cand, N_USERS)
    pairs = np.empty(users.size, np.float32)
    used = np.empty(users.size, np.int32)
    predict_pairs_dense(users, items, s.mu, bias, s.bi, indptr, idx, vals, sim, k, min_k,
                        pairs, used)  # fmt: skip
    assert np.array_equal(out.ravel(), pairs)
    ref, _ = _reference_predict_pairs(users, items, s.mu, bias, s.bi, s.rows(s.ucsr_unsorted),
                                      sim.astype(np.float64), k, min_k)  # fmt: skip
    np.testing.assert_allclose(out.ravel(), ref, rtol=0, atol=1e-5)
    # candidates in any order, repeated: the same numbers in their columns
    some = rng.integers(0, N_ITEMS, 9).astype(np.int32)
    part = np.empty((N_USERS, some.size), np.float32)
    score_rows_dense(indptr, idx, vals, s.mu, bias, s.bi, sim, some, k, min_k, part)
    assert np.array_equal(part, out[:, some])


def test_score_rows_dense_reads_the_transposed_similarity(rng):
    # sim_t[j, i] = s_ij: an asymmetric similarity passed transposed gives the pair answers
    s = Setup(rng)
    sim = s.dense(5.0) * rng.uniform(0.5, 1.5, (N_ITEMS, N_ITEMS))
    indptr, idx, vals = s.ucsr
    cand = np.arange(N_ITEMS, dtype=np.int32)
    out = np.empty((N_USERS, N_ITEMS))
    score_rows_dense(indptr, idx, vals, s.mu, s.bu, s.bi, np.ascontiguousarray(sim.T), cand,
                     4, 1, out)  # fmt: skip
    ref, _ = _reference_predict_pairs(np.repeat(np.arange(N_USERS), N_ITEMS),
                                      np.tile(cand, N_USERS), s.mu, s.bu, s.bi, s.rows(s.ucsr),
                                      sim, 4, 1)  # fmt: skip
    np.testing.assert_allclose(out.ravel(), ref, rtol=0, atol=1e-12)


def test_score_rows_dense_empty_rows_and_no_candidates(rng):
    s = Setup(rng)
    sim = s.dense(5.0)
    indptr = np.zeros(3, np.int64)  # two rows without history: the baseline
    empty_i, empty_r = np.empty(0, np.int32), np.empty(0, np.float32)
    bias = np.array([0.5, -0.25])
    out = np.empty((2, N_ITEMS))
    cand = np.arange(N_ITEMS, dtype=np.int32)
    score_rows_dense(indptr, empty_i, empty_r, s.mu, bias, s.bi, sim, cand, 5, 1, out)
    np.testing.assert_array_equal(out, s.mu + bias[:, None] + s.bi[None, :])
    none = np.empty((2, 0))
    score_rows_dense(indptr, empty_i, empty_r, s.mu, bias, s.bi, sim, cand[:0], 5, 1, none)


@pytest.mark.parametrize("n_neighbors", [2, 6, N_ITEMS - 1])
@pytest.mark.parametrize("n_blocks", [1, 3])
def test_score_rows_topk_equals_pair_predictions_bitwise(rng, n_neighbors, n_blocks):
    s = Setup(rng)
    ids = np.empty((N_ITEMS, n_neighbors), np.int32)
    vals_nb = np.empty((N_ITEMS, n_neighbors), np.float32)
    pearson_baseline_topk(*s.base(), 5.0, 1, 2, ids, vals_nb)
    indptr, idx, vals = s.ucsr  # sorted rows (the pair kernel binary-searches them)
    cand = np.arange(N_ITEMS, dtype=np.int32)
    users = np.repeat(np.arange(N_USERS, dtype=np.int32), N_ITEMS)
    items = np.tile(cand, N_USERS)
    kept = np.zeros((N_ITEMS, N_ITEMS))  # the dense similarity restricted to the kept lists
    for i in range(N_ITEMS):
        kept[i, ids[i][ids[i] >= 0]] = vals_nb[i][ids[i] >= 0]
    for k, min_k in [(3, 1), (10, 2), (1, 1)]:
        out = np.empty((N_USERS, N_ITEMS), np.float32)
        score_rows_topk(indptr, idx, vals, s.mu, s.bu, s.bi, ids, vals_nb, cand, k, min_k,
                        n_blocks, out)  # fmt: skip
        pairs = np.empty(users.size, np.float32)
        used = np.empty(users.size, np.int32)
        predict_pairs_topk(users, items, s.mu, s.bu, s.bi, indptr, idx, vals, ids, vals_nb, k,
                           min_k, pairs, used)  # fmt: skip
        assert np.array_equal(out.ravel(), pairs)
        # against the reference on pairs the user did not rate (rated ones differ by design:
        # the kept lists never hold the item itself)
        ref, _ = _reference_predict_pairs(users, items, s.mu, s.bu, s.bi, s.rows(s.ucsr),
                                          kept, k, min_k)  # fmt: skip
        unrated = np.ones((N_USERS, N_ITEMS), bool)
        unrated[s.users, s.items] = False
        np.testing.assert_allclose(out.ravel()[unrated.ravel()], ref[unrated.ravel()], rtol=0,
                                   atol=1e-5)  # fmt: skip
