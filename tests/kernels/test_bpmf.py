"""BPMF Gibbs kernels: the row sampler's law, reproducibility, hyper-parameters, a planted chain."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from lensrec.kernels.bpmf import (
    ROW_BLOCK,
    _reference_row_posterior,
    _reference_sample_rows,
    augment,
    predict_pairs,
    sample_alpha,
    sample_hyper,
    sample_rows,
    squared_error,
    update_mean_factors,
)


def _csr(rows, cols, vals, n_rows):
    order = np.lexsort((cols, rows))
    indptr = np.zeros(n_rows + 1, np.int64)
    np.add.at(indptr, rows + 1, 1)
    return np.cumsum(indptr), cols[order].astype(np.int32), vals[order].astype(np.float32)


def _prior(rng, d):
    m = rng.normal(0, 0.3, (d, d))
    return rng.normal(0, 0.2, d), m @ m.T + d * np.eye(d)


def _random_problem(rng, n_rows=150, n_other=12, k=3, density=0.4):
    mask = rng.random((n_rows, n_other)) < density
    mask[5] = False  # a row without ratings: drawn from the prior
    rows, cols = np.nonzero(mask)
    ratings = rng.integers(1, 6, rows.size).astype(np.float32)
    other = rng.normal(0, 0.5, (n_other, k + 1))
    return _csr(rows, cols, ratings, n_rows), other


def test_rows_match_reference_with_the_same_normals(rng):
    (indptr, indices, ratings), other = _random_problem(rng)
    prior_mean, prior_prec = _prior(rng, 4)
    out = np.empty((150, 4))
    sample_rows(indptr, indices, ratings, other, 3.4, 2.0, prior_mean, prior_prec, 11, 5, out)
    ref = _reference_sample_rows(
        indptr, indices, ratings, other, 3.4, 2.0, prior_mean, prior_prec, 11, 5, 150
    )
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-10)
    out2 = np.empty((150, 4))
    sample_rows(indptr, indices, ratings, other, 3.4, 2.0, prior_mean, prior_prec, 11, 6, out2)
    assert not np.allclose(out, out2)  # another stream, other draws


def test_row_sampler_mean_and_covariance_match_the_closed_form(rng):
    # one row's ratings repeated in n rows: n independent draws of the same conditional
    n, k = 6000, 2
    other = rng.normal(0, 0.8, (5, k + 1))
    row_items = np.array([0, 2, 3, 4], np.int32)
    row_ratings = np.array([4.0, 2.0, 5.0, 3.0], np.float32)
    indptr = np.arange(n + 1, dtype=np.int64) * row_items.size
    indices = np.tile(row_items, n)
    ratings = np.tile(row_ratings, n)
    prior_mean, prior_prec = _prior(rng, k + 1)
    alpha, mu = 1.5, 3.5
    out = np.empty((n, k + 1))
    sample_rows(indptr, indices, ratings, other, mu, alpha, prior_mean, prior_prec, 3, 0, out)
    mean, cov = _reference_row_posterior(
        other[row_items], row_ratings.astype(np.float64), mu, alpha, prior_mean, prior_prec
    )
    se = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(out.mean(0) - mean) < 4.5 * se)
    emp = np.cov(out.T)
    assert np.linalg.norm(emp - cov) / np.linalg.norm(cov) < 0.08
    # standardised draws are N(0, I): whitening by the closed-form covariance
    white = np.linalg.solve(np.linalg.cholesky(cov), (out - mean).T).T
    np.testing.assert_allclose(np.cov(white.T), np.eye(k + 1), atol=0.08)


def test_same_chain_whatever_the_thread_count(rng):
    (indptr, indices, ratings), other = _random_problem(rng, n_rows=5 * ROW_BLOCK + 3)
    prior_mean, prior_prec = _prior(rng, 4)
    outs = []
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, before}):
            numba.set_num_threads(threads)
            out = np.empty((5 * ROW_BLOCK + 3, 4), np.float32)
            sample_rows(
                indptr, indices, ratings, other, 3.0, 2.0, prior_mean, prior_prec, 9, 1, out
            )
            outs.append(out)
    finally:
        numba.set_num_threads(before)
    assert all(np.array_equal(outs[0], o) for o in outs)


def test_hyper_sampler_moments(rng):
    d, n = 3, 40
    x = rng.normal(1.0, 0.7, (n, d))
    gen = np.random.default_rng(1)
    draws = [sample_hyper(x, gen) for _ in range(3000)]
    means = np.array([m for m, _ in draws])
    precs = np.array([p for _, p in draws])
    # posterior of the paper's eq. 14 with mu0 = 0, beta0 = 2, nu0 = d, W0 = I
    xbar = x.mean(0)
    scatter = (x - xbar).T @ (x - xbar)
    w = np.linalg.inv(np.eye(d) + scatter + (2 * n / (2 + n)) * np.outer(xbar, xbar))
    nu = d + n
    np.testing.assert_allclose(precs.mean(0), nu * w, rtol=0, atol=0.05 * np.abs(nu * w).max())
    np.testing.assert_allclose(means.mean(0), n * xbar / (2 + n), atol=0.03)
    assert np.all(np.linalg.eigvalsh(precs) > 0)


def test_alpha_sampler():
    gen = np.random.default_rng(0)
    draws = np.array([sample_alpha(50.0, 100, gen, a0=1.0, b0=1.0) for _ in range(4000)])
    assert draws.mean() == pytest.approx((1 + 50) / (1 + 25), rel=0.02)


def test_predict_pairs_and_squared_error(rng):
    x = rng.normal(0, 1, (6, 4))
    y = rng.normal(0, 1, (5, 4))
    users = rng.integers(0, 6, 9000).astype(np.int32)  # more than one partial-sum block
    items = rng.integers(0, 5, 9000).astype(np.int32)
    ratings = rng.integers(1, 6, 9000).astype(np.float32)
    expect = 3.0 + (x[users, :3] * y[items, :3]).sum(1) + x[users, 3] + y[items, 3]
    out = np.empty(9000)
    predict_pairs(users, items, 3.0, x, y, out, False)
    np.testing.assert_allclose(out, expect, atol=1e-12)
    predict_pairs(users, items, 3.0, x, y, out, True)
    np.testing.assert_allclose(out, 2 * expect, atol=1e-12)
    sse = squared_error(users, items, ratings, 3.0, x, y)
    assert sse == pytest.approx(((ratings - expect) ** 2).sum(), rel=1e-12)
    xa, ya = augment(x, y)
    np.testing.assert_allclose(3.0 + (xa[users] * ya[items]).sum(1), expect, atol=1e-12)


def test_running_mean_factors(rng):
    samples = [(rng.normal(0, 1, (30, 3)), rng.normal(0, 1, (20, 3))) for _ in range(4)]
    exact = np.mean([np.dot(*augment(u, v)[:1], augment(u, v)[1].T) for u, v in samples], 0)
    a = b = None
    for s, (u, v) in enumerate(samples):
        a, b, dropped = update_mean_factors(a, b, u, v, s, rank=16)  # 4 samples x 4 <= 16
        assert dropped == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(a @ b.T, exact, atol=1e-10)
    a = b = None
    for s, (u, v) in enumerate(samples):
        a, b, dropped = update_mean_factors(a, b, u, v, s, rank=5)
    assert a.shape == (30, 5) and b.shape == (20, 5) and dropped > 0.0
    # close to the mean still, and no worse than twice the best rank-5 error of the mean
    sv = np.linalg.svd(exact, compute_uv=False)
    best = np.sqrt((sv[5:] ** 2).sum())
    assert np.linalg.norm(a @ b.T - exact) <= 2 * best


def test_chain_recovers_a_planted_low_rank_matrix():
    gen = np.random.default_rng(5)
    n_users, n_items, k = 200, 150, 3
    p = gen.normal(0, 0.7, (n_users, k))
    q = gen.normal(0, 0.7, (n_items, k))
    truth = 3.5 + p @ q.T + gen.normal(0, 0.3, n_users)[:, None] + gen.normal(0, 0.3, n_items)
    mask = gen.random((n_users, n_items)) < 0.3
    test_mask = ~mask & (gen.random((n_users, n_items)) < 0.05)
    users, items = np.nonzero(mask)
    ratings = (truth[users, items] + gen.normal(0, 0.2, users.size)).astype(np.float32)
    t_users, t_items = (a.astype(np.int32) for a in np.nonzero(test_mask))
    t_truth = truth[t_users, t_items]
    u_csr = _csr(users, items, ratings, n_users)
    i_csr = _csr(items, users, ratings, n_items)
    mu = float(ratings.mean())
    x = gen.normal(0, 0.1, (n_users, k + 1))
    y = gen.normal(0, 0.1, (n_items, k + 1))
    total = np.zeros(t_users.size)
    kept = 0
    alpha = 2.0
    for s in range(60):
        m_v, l_v = sample_hyper(y, gen)
        m_u, l_u = sample_hyper(x, gen)
        sample_rows(*u_csr, y, mu, alpha, m_u, l_u, 17, 2 * s, x)
        sample_rows(*i_csr, x, mu, alpha, m_v, l_v, 17, 2 * s + 1, y)
        sse = squared_error(users.astype(np.int32), items.astype(np.int32), ratings, mu, x, y)
        alpha = sample_alpha(sse, users.size, gen)
        if s >= 20:
            predict_pairs(t_users, t_items, mu, x, y, total, True)
            kept += 1
    rmse = np.sqrt(np.mean((total / kept - t_truth) ** 2))
    baseline = np.sqrt(np.mean((mu - t_truth) ** 2))
    assert rmse < 0.2 and rmse < 0.25 * baseline
    assert 1 / np.sqrt(alpha) == pytest.approx(0.2, rel=0.25)  # the planted noise level
