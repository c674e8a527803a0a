"""ALS baseline kernel against its dense reference and against Surprise's BaselineOnly."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lensrec.kernels.baseline import _reference_als_biases, als_biases


def _tiny(rng, n_users=30, n_items=20, density=0.3):
    mask = rng.random((n_users, n_items)) < density
    mask[np.arange(n_users), rng.integers(0, n_items, n_users)] = True  # every user rates
    mask[rng.integers(0, n_users, n_items), np.arange(n_items)] = True  # every item rated
    users, items = np.nonzero(mask)
    ratings = rng.integers(1, 6, users.size).astype(np.float32)
    return users.astype(np.int32), items.astype(np.int32), ratings


def _csr(rows, cols, vals, n_rows, n_cols):
    m = sp.csr_matrix((vals, (rows, cols)), shape=(n_rows, n_cols))
    m.sort_indices()
    return m.indptr.astype(np.int64), m.indices.astype(np.int32), m.data.astype(np.float32)


def _fit(users, items, ratings, n_users, n_items, reg_u, reg_i, epochs, dtype=np.float64):
    mu = float(ratings.astype(np.float64).mean())
    bu = np.empty(n_users, dtype)
    bi = np.empty(n_items, dtype)
    als_biases(
        *_csr(users, items, ratings, n_users, n_items),
        *_csr(items, users, ratings, n_items, n_users),
        mu, reg_u, reg_i, epochs, bu, bi,
    )  # fmt: skip
    return mu, bu, bi


@pytest.mark.parametrize("reg_u, reg_i, epochs", [(15.0, 10.0, 10), (0.5, 2.0, 3), (0.0, 0.0, 1)])
def test_matches_dense_reference(rng, reg_u, reg_i, epochs):
    users, items, ratings = _tiny(rng)
    mu, bu, bi = _fit(users, items, ratings, 30, 20, reg_u, reg_i, epochs)
    ref_bu, ref_bi = _reference_als_biases(users, items, ratings, 30, 20, mu, reg_u, reg_i, epochs)
    np.testing.assert_allclose(bu, ref_bu, rtol=0, atol=1e-12)
    np.testing.assert_allclose(bi, ref_bi, rtol=0, atol=1e-12)


def test_float32_outputs_and_empty_rows(rng):
    users, items, ratings = _tiny(rng)
    # two extra users and an extra item with no ratings get bias zero
    mu, bu, bi = _fit(users, items, ratings, 32, 21, 15.0, 10.0, 10, dtype=np.float32)
    ref_bu, ref_bi = _reference_als_biases(users, items, ratings, 32, 21, mu, 15.0, 10.0, 10)
    np.testing.assert_allclose(bu, ref_bu, atol=1e-6)
    np.testing.assert_allclose(bi, ref_bi, atol=1e-6)
    assert bu[30] == 0.0 and bu[31] == 0.0 and bi[20] == 0.0


def test_one_epoch_by_hand():
    # two users, two items: r(0,0)=5, r(0,1)=3, r(1,0)=4; mu = 4
    users = np.array([0, 0, 1], np.int32)
    items = np.array([0, 1, 0], np.int32)
    ratings = np.array([5, 3, 4], np.float32)
    mu, bu, bi = _fit(users, items, ratings, 2, 2, 1.0, 1.0, 1)
    # items first with b_u = 0: b_0 = (1 + 0) / (1 + 2), b_1 = -1 / (1 + 1)
    assert bi == pytest.approx([1 / 3, -0.5])
    # then users: b_0 = ((1 - 1/3) + (-1 + 0.5)) / 3, b_1 = (0 - 1/3) / 2
    assert bu == pytest.approx([(2 / 3 - 0.5) / 3, -1 / 6])


def test_regularisation_shrinks(rng):
    users, items, ratings = _tiny(rng)
    _, bu_lo, bi_lo = _fit(users, items, ratings, 30, 20, 0.1, 0.1, 10)
    _, bu_hi, bi_hi = _fit(users, items, ratings, 30, 20, 50.0, 50.0, 10)
    assert np.abs(bu_hi).sum() < np.abs(bu_lo).sum()
    assert np.abs(bi_hi).sum() < np.abs(bi_lo).sum()


def test_matches_surprise_baseline_only(rng):
    surprise = pytest.importorskip("surprise")
    users, items, ratings = _tiny(rng)
    ur: dict[int, list] = {u: [] for u in range(30)}
    ir: dict[int, list] = {i: [] for i in range(20)}
    for u, i, r in zip(users.tolist(), items.tolist(), ratings.tolist(), strict=True):
        ur[u].append((i, r))
        ir[i].append((u, r))
    trainset = surprise.Trainset(
        ur, ir, 30, 20, users.size, (1, 5), {u: u for u in range(30)}, {i: i for i in range(20)}
    )
    algo = surprise.BaselineOnly(
        bsl_options={"method": "als", "reg_u": 12.0, "reg_i": 5.0, "n_epochs": 7}, verbose=False
    )
    algo.fit(trainset)
    mu, bu, bi = _fit(users, items, ratings, 30, 20, 12.0, 5.0, 7, dtype=np.float32)
    assert mu == pytest.approx(trainset.global_mean)
    np.testing.assert_allclose(bu, algo.bu, rtol=0, atol=1e-5)
    np.testing.assert_allclose(bi, algo.bi, rtol=0, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_serial_and_parallel_half_steps_give_the_same_bits(rng, dtype):
    users, items, ratings = _tiny(rng, n_users=300, n_items=120)
    mu = float(ratings.astype(np.float64).mean())
    ucsr = _csr(users, items, ratings, 300, 120)
    icsr = _csr(items, users, ratings, 120, 300)
    out = []
    for parallel in (True, False):
        bu, bi = np.full(300, np.nan, dtype), np.full(120, np.nan, dtype)
        als_biases(*ucsr, *icsr, mu, 5.0, 3.0, 10, bu, bi, parallel)
        out.append((bu, bi))
    assert np.array_equal(out[0][0], out[1][0]) and np.array_equal(out[0][1], out[1][1])
    ref_bu, _ = _reference_als_biases(users, items, ratings, 300, 120, mu, 5.0, 3.0, 10)
    np.testing.assert_allclose(out[1][0], ref_bu, atol=1e-12 if dtype == np.float64 else 1e-6)
