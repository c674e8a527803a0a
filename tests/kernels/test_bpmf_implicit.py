"""The implicit-feedback kernels of BPMF (Bayesian SVD++) against their definitions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lensrec.kernels import csr_parts
from lensrec.kernels.bpmf_implicit import (
    _reference_sample_implicit,
    implicit_sums,
    offset_ratings,
    residual_stats,
    sample_implicit,
)


def _problem(seed: int, n_users: int = 9, n_items: int = 7, k: int = 3, density: float = 0.5):
    gen = np.random.default_rng(seed)
    mask = gen.random((n_users, n_items)) < density
    mask[np.arange(n_users), gen.integers(0, n_items, n_users)] = True  # no empty user
    r = np.where(mask, gen.integers(1, 6, (n_users, n_items)), 0).astype(np.float32)
    by_user = csr_parts(sp.csr_matrix(r))
    by_item = csr_parts(sp.csr_matrix(r).tocsc())
    own = gen.normal(size=(n_users, k + 1))  # [p_u, b_u], without the implicit part
    other = gen.normal(size=(n_items, k + 1))  # effective item rows [Q_i, b_i]
    implicit = gen.normal(scale=0.3, size=(n_items, k))  # y_j
    coef = 1.0 / np.sqrt(mask.sum(1))
    return r, mask, by_user, by_item, own, other, implicit, coef


def test_implicit_sums_and_offsets_by_hand():
    r, mask, by_user, _, own, other, implicit, coef = _problem(0)
    out = np.empty((r.shape[0], implicit.shape[1]))
    implicit_sums(by_user[0], by_user[1], coef, implicit, out)
    for u in range(r.shape[0]):
        want = implicit[mask[u]].sum(0) / np.sqrt(mask[u].sum())
        np.testing.assert_allclose(out[u], want, rtol=1e-12)
    adj = np.empty(by_user[2].size)
    offset_ratings(by_user[0], by_user[1], by_user[2], out, other, adj)
    t = 0
    for u in range(r.shape[0]):
        for i in np.flatnonzero(mask[u]):
            assert adj[t] == pytest.approx(r[u, i] - out[u] @ other[i, :3], rel=1e-12)
            t += 1


def test_residual_stats_by_hand():
    r, mask, by_user, _, own, other, _, _ = _problem(1)
    k = own.shape[1] - 1
    gram = np.empty((r.shape[0], k, k), dtype=np.float32)
    resid = np.empty((r.shape[0], k))
    mu = 3.2
    residual_stats(*by_user, mu, own, other, gram, resid)
    for u in range(r.shape[0]):
        q = other[mask[u], :k]
        e = r[u, mask[u]].astype(np.float64) - mu - q @ own[u, :k] - own[u, k] - other[mask[u], k]
        np.testing.assert_allclose(gram[u], q.T @ q, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(resid[u], q.T @ e, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed, n_users", [(0, 9), (1, 9), (2, 9), (3, 1500)])
def test_sample_implicit_equals_the_gibbs_scan_from_its_definition(seed, n_users):
    """Every y_j drawn in turn from its exact conditional (residuals recomputed from every
    rating for each draw, the posterior by NumPy, the same normals): the kernel's deferred
    E_u updates must give the same vectors (to the float32 rounding of its Gram matrices).
    With 1500 users some items have more rows than ``_PAR_MIN``: their sums run in chunks."""
    from lensrec.kernels.bpmf_implicit import _PAR_MIN

    r, mask, by_user, by_item, own, other, implicit, coef = _problem(
        seed, n_users=n_users, density=0.5 if n_users < 100 else 0.8
    )
    assert (np.diff(by_item[0]).max() >= _PAR_MIN) == (n_users > 100)
    n_users, k = r.shape[0], implicit.shape[1]
    mu, alpha = 3.0, 1.7
    gen = np.random.default_rng(seed + 10)
    a = gen.normal(size=(k, k))
    prior_prec = a @ a.T + k * np.eye(k)
    prior_mean = gen.normal(size=k)
    s = np.empty((n_users, k))
    implicit_sums(by_user[0], by_user[1], coef, implicit, s)
    eff = own.copy()
    eff[:, :k] += s
    gram = np.empty((n_users, k, k), dtype=np.float32)
    resid = np.empty((n_users, k))
    residual_stats(*by_user, mu, eff, other, gram, resid)
    got = implicit.copy()
    sample_implicit(by_item[0], by_item[1], coef, gram, resid, prior_mean, prior_prec,
                    alpha, 123, 5, got)  # fmt: skip
    entries = [(u, i, float(r[u, i])) for u in range(n_users) for i in np.flatnonzero(mask[u])]
    feature_of = [list(np.flatnonzero(mask[u])) for u in range(n_users)]
    want = _reference_sample_implicit(entries, feature_of, coef, own, other, mu, implicit,
                                      prior_mean, prior_prec, alpha, 123, 5)  # fmt: skip
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)  # the Gram is float32
    assert np.abs(got - implicit).max() > 0.1  # the vectors moved
    # E_u is kept current: recomputed from scratch at the new vectors it agrees
    implicit_sums(by_user[0], by_user[1], coef, got, s)
    eff[:, :k] = own[:, :k] + s
    fresh = np.empty_like(resid)
    residual_stats(*by_user, mu, eff, other, gram, fresh)
    np.testing.assert_allclose(resid, fresh, rtol=1e-5, atol=1e-5)
