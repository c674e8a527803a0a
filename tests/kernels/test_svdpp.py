"""SVD++ kernels against the plain reference and, where the variants coincide, Surprise."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from lensrec.kernels.svdpp import (
    _reference_svdpp_epoch,
    implicit_sums,
    predict_pairs,
    svdpp_epoch,
    svdpp_epoch_hogwild,
)

LR = np.array([0.011, 0.007, 0.013, 0.009, 0.017])
REG = np.array([0.05, 0.03, 0.02, 0.04, 0.06])


def _epoch(kernel, indptr, indices, ratings, imp_indptr, imp_indices, order, mu, lr, reg, *rest):
    """``kernel`` on the arguments of :func:`_reference_svdpp_epoch`'s layout, packed as the
    kernels take them: ``up, ip, y`` (then the Hogwild block size) in ``rest``."""
    rows = (indptr, indices, ratings, imp_indptr, imp_indices)
    return kernel(rows, order, mu, lr, reg, rest[:3], *rest[3:])


def _tiny(rng, n_users=20, n_items=15, density=0.35, one_per_user=False):
    """User-grouped CSR ``(indptr, indices, ratings)``; rows in random (not sorted) order."""
    rows = []
    for _ in range(n_users):
        if one_per_user:
            its = rng.integers(0, n_items, 1)
        else:
            its = np.flatnonzero(rng.random(n_items) < density)
            if its.size == 0:
                its = rng.integers(0, n_items, 1)
        rows.append(rng.permutation(its))
    indptr = np.zeros(n_users + 1, np.int64)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    indices = np.concatenate(rows).astype(np.int32)
    ratings = rng.integers(1, 6, indices.size).astype(np.float32)
    return indptr, indices, ratings


def _init(rng, n_users, n_items, k, dtype=np.float64):
    pu = rng.normal(0, 0.3, (n_users, k))
    qi = rng.normal(0, 0.3, (n_items, k))
    yj = rng.normal(0, 0.3, (n_items, k))
    bu = rng.normal(0, 0.2, n_users)
    bi = rng.normal(0, 0.2, n_items)
    return pu, qi, yj, bu, bi


def _packed(f, b, dtype=np.float64):
    return np.ascontiguousarray(np.column_stack([f, b]), dtype=dtype)


@pytest.mark.parametrize("implicit_is_rated", [True, False])
def test_epoch_matches_reference(rng, implicit_is_rated):
    indptr, indices, ratings = _tiny(rng)
    if implicit_is_rated:
        imp_indptr, imp_indices = indptr, indices
    else:  # N(u) from another pattern, with an empty row
        imp_indptr, imp_indices, _ = _tiny(rng, density=0.5)
        imp_indices = np.delete(imp_indices, np.arange(imp_indptr[3], imp_indptr[4]))
        imp_indptr = imp_indptr.copy()
        imp_indptr[4:] -= imp_indptr[4] - imp_indptr[3]
    k, mu = 5, float(ratings.mean())
    pu, qi, yj, bu, bi = _init(rng, 20, 15, k)
    order = rng.permutation(20).astype(np.int32)
    up, ip, y = _packed(pu, bu), _packed(qi, bi), yj.copy()
    up32, ip32, y32 = up.astype(np.float32), ip.astype(np.float32), y.astype(np.float32)
    args = (indptr, indices, ratings, imp_indptr, imp_indices, order, mu, LR, REG)
    loss = _epoch(svdpp_epoch, *args, up, ip, y)
    loss32 = _epoch(svdpp_epoch, *args, up32, ip32, y32)
    ref_loss = _reference_svdpp_epoch(*args, pu, bu, qi, bi, yj)
    np.testing.assert_allclose(up, _packed(pu, bu), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ip, _packed(qi, bi), rtol=0, atol=1e-12)
    np.testing.assert_allclose(y, yj, rtol=0, atol=1e-12)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(up32, up, atol=2e-5)
    np.testing.assert_allclose(y32, y, atol=2e-5)
    assert loss32 == pytest.approx(ref_loss, rel=1e-5)


def test_implicit_factors_matter(rng):
    indptr, indices, ratings = _tiny(rng)
    pu, qi, yj, bu, bi = _init(rng, 20, 15, 4)
    order = np.arange(20)
    runs = []
    for scale in (1.0, 0.0):
        up, ip, y = _packed(pu, bu), _packed(qi, bi), yj * scale
        _epoch(
            svdpp_epoch, indptr, indices, ratings, indptr, indices, order, 3.0, LR, REG, up, ip, y
        )
        runs.append(up)
    assert not np.allclose(runs[0], runs[1])


def test_hogwild_one_thread_equals_serial(rng):
    indptr, indices, ratings = _tiny(rng)
    pu, qi, yj, bu, bi = _init(rng, 20, 15, 6)
    order = rng.permutation(20)
    a = [_packed(pu, bu, np.float32), _packed(qi, bi, np.float32), yj.astype(np.float32)]
    b = [x.copy() for x in a]
    args = (indptr, indices, ratings, indptr, indices, order, 3.0, LR, REG)
    loss_a = _epoch(svdpp_epoch, *args, *a)
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        loss_b = _epoch(svdpp_epoch_hogwild, *args, *b, 3)
    finally:
        numba.set_num_threads(before)
    for x, z in zip(a, b, strict=True):
        assert np.array_equal(x, z)
    assert loss_b == pytest.approx(loss_a, rel=1e-6)


def test_implicit_sums_and_predict(rng):
    indptr, indices, _ = _tiny(rng)
    indptr = indptr.copy()
    indices = np.delete(indices, np.arange(indptr[0], indptr[1]))  # user 0: empty history
    indptr[1:] -= indptr[1]
    pu, qi, yj, bu, bi = _init(rng, 20, 15, 4)
    s = np.empty((20, 4))
    implicit_sums(indptr, indices, yj, s)
    for u in range(20):
        nu = indices[indptr[u] : indptr[u + 1]]
        expect = yj[nu].sum(0) / np.sqrt(len(nu)) if len(nu) else np.zeros(4)
        np.testing.assert_allclose(s[u], expect, atol=1e-12)
    users = np.array([0, 3, 19, 3], np.int32)
    items = np.array([1, 14, 0, 1], np.int32)
    out = np.empty(4)
    predict_pairs(users, items, 3.5, _packed(pu, bu), _packed(qi, bi), s, out)
    expect = 3.5 + bu[users] + bi[items] + (qi[items] * (pu[users] + s[users])).sum(1)
    np.testing.assert_allclose(out, expect, atol=1e-12)


def _surprise_fit(surprise, indptr, indices, ratings, n_users, n_items, k, epochs, lr, reg, seed):
    ur = {u: [] for u in range(n_users)}
    ir: dict[int, list] = {i: [] for i in range(n_items)}
    for u in range(n_users):
        for p in range(indptr[u], indptr[u + 1]):
            ur[u].append((int(indices[p]), float(ratings[p])))
            ir[int(indices[p])].append((u, float(ratings[p])))
    trainset = surprise.Trainset(
        ur, ir, n_users, n_items, indices.size, (1, 5),
        {u: u for u in range(n_users)}, {i: i for i in range(n_items)},
    )  # fmt: skip
    names = ("bu", "bi", "pu", "qi", "yj")
    algo = surprise.SVDpp(
        n_factors=k, n_epochs=epochs, init_mean=0.0, init_std_dev=0.2, random_state=seed,
        cache_ratings=True, **{f"lr_{n}": float(v) for n, v in zip(names, lr, strict=True)},
        **{f"reg_{n}": float(v) for n, v in zip(names, reg, strict=True)},
    )  # fmt: skip
    algo.fit(trainset)
    init = np.random.RandomState(seed)  # Surprise draws pu, qi, yj in this order
    pu = init.normal(0.0, 0.2, (n_users, k))
    qi = init.normal(0.0, 0.2, (n_items, k))
    yj = init.normal(0.0, 0.2, (n_items, k))
    return algo, trainset.global_mean, pu, qi, yj


@pytest.mark.parametrize("case", ["frozen_y", "one_rating_per_user"])
def test_matches_surprise_where_the_variants_coincide(rng, case):
    """Surprise's SVDpp (its init reproduced) where the per-user variant is exact.

    With ``lr_yj = 0`` the implicit factors never move; with one rating per user the single
    ``y`` step is the same in both. Users are visited in inner-id order, as Surprise does.
    """
    surprise = pytest.importorskip("surprise")
    one = case == "one_rating_per_user"
    indptr, indices, ratings = _tiny(rng, 20, 15, one_per_user=one)
    used = np.unique(indices)  # Surprise's trainset knows only rated items
    indices = np.searchsorted(used, indices).astype(np.int32)
    lr = LR.copy()
    reg = REG.copy()
    if not one:
        lr[4] = 0.0
        reg[4] = 0.0
    k = 4
    for epochs in (1, 2):
        algo, mu, pu, qi, yj = _surprise_fit(
            surprise, indptr, indices, ratings, 20, used.size, k, epochs, lr, reg, seed=7
        )
        up, ip = _packed(pu, np.zeros(20)), _packed(qi, np.zeros(used.size))
        args = (indptr, indices, ratings, indptr, indices, np.arange(20), mu, lr, reg)
        for _ in range(epochs):
            _epoch(svdpp_epoch, *args, up, ip, yj)
        np.testing.assert_allclose(up[:, :k], algo.pu, atol=1e-10)
        np.testing.assert_allclose(up[:, k], algo.bu, atol=1e-10)
        np.testing.assert_allclose(ip[:, :k], algo.qi, atol=1e-10)
        np.testing.assert_allclose(ip[:, k], algo.bi, atol=1e-10)
        np.testing.assert_allclose(yj, algo.yj, atol=1e-10)
