"""Funk SVD kernels against the plain reference and against Surprise's SVD."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from lensrec.kernels.svd import _reference_sgd_epoch, predict_pairs, sgd_epoch, sgd_epoch_hogwild

LR = (0.011, 0.007, 0.013, 0.009)
REG = (0.05, 0.03, 0.02, 0.04)


def _tiny(rng, n_users=25, n_items=18, density=0.35):
    mask = rng.random((n_users, n_items)) < density
    mask[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    mask[rng.integers(0, n_users, n_items), np.arange(n_items)] = True
    users, items = np.nonzero(mask)
    perm = rng.permutation(users.size)  # rows not grouped by user
    ratings = rng.integers(1, 6, users.size).astype(np.float32)
    return users[perm].astype(np.int32), items[perm].astype(np.int32), ratings[perm]


def _packed(factors, bias):
    return np.ascontiguousarray(np.column_stack([factors, bias]))


def _run(kernel, users, items, ratings, order, mu, up, ip, biased=True, **kw):
    rates = np.array(LR), np.array(REG)
    return kernel((users, items, ratings), order, biased, mu, *rates, (up, ip), **kw)


@pytest.mark.parametrize("biased", [True, False])
def test_epoch_matches_reference(rng, biased):
    users, items, ratings = _tiny(rng)
    k = 6
    order = rng.permutation(users.size).astype(np.int32)
    mu = float(ratings.mean()) if biased else 0.0
    pu, qi = rng.normal(0, 0.3, (25, k)), rng.normal(0, 0.3, (18, k))
    bu, bi = rng.normal(0, 0.2, 25), rng.normal(0, 0.2, 18)
    up, ip = _packed(pu, bu), _packed(qi, bi)
    up32, ip32 = up.astype(np.float32), ip.astype(np.float32)
    loss = _run(sgd_epoch, users, items, ratings, order, mu, up, ip, biased)
    loss32 = _run(sgd_epoch, users, items, ratings, order, mu, up32, ip32, biased)
    ref_bu, ref_bi = bu.copy(), bi.copy()
    ref_loss = _reference_sgd_epoch(
        users, items, ratings, order, mu, LR, REG, biased, pu, ref_bu, qi, ref_bi
    )
    # float64: equal up to the summation order of the (vectorised) dot product
    np.testing.assert_allclose(up, _packed(pu, ref_bu), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ip, _packed(qi, ref_bi), rtol=0, atol=1e-12)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(up32, up, rtol=0, atol=2e-5)
    np.testing.assert_allclose(ip32, ip, rtol=0, atol=2e-5)
    assert loss32 == pytest.approx(ref_loss, rel=1e-5)
    if not biased:
        assert np.array_equal(up[:, k], bu) and np.array_equal(ip[:, k], bi)


def test_order_matters_and_subset(rng):
    users, items, ratings = _tiny(rng)
    up0 = rng.normal(0, 0.1, (25, 5))
    ip0 = rng.normal(0, 0.1, (18, 5))
    a = [up0.copy(), ip0.copy()]
    b = [up0.copy(), ip0.copy()]
    _run(sgd_epoch, users, items, ratings, np.arange(users.size), 3.0, *a)
    _run(sgd_epoch, users, items, ratings, np.arange(users.size)[::-1].copy(), 3.0, *b)
    assert not np.allclose(a[0], b[0])
    # an empty order changes nothing and reports zero loss
    c = [up0.copy(), ip0.copy()]
    assert _run(sgd_epoch, users, items, ratings, np.empty(0, np.int64), 3.0, *c) == 0.0
    assert np.array_equal(c[0], up0)


def test_hogwild_one_thread_equals_serial(rng):
    users, items, ratings = _tiny(rng)
    order = rng.permutation(users.size).astype(np.int32)
    up0 = rng.normal(0, 0.1, (25, 8)).astype(np.float32)
    ip0 = rng.normal(0, 0.1, (18, 8)).astype(np.float32)
    serial = [up0.copy(), ip0.copy()]
    hog = [up0.copy(), ip0.copy()]
    loss_s = _run(sgd_epoch, users, items, ratings, order, 3.0, *serial)
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        loss_h = _run(sgd_epoch_hogwild, users, items, ratings, order, 3.0, *hog, block_size=7)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(serial[0], hog[0]) and np.array_equal(serial[1], hog[1])
    assert loss_h == pytest.approx(loss_s, rel=1e-6)


def test_hogwild_parallel_learns_like_serial(rng):
    users, items, ratings = _tiny(rng, 60, 40, 0.4)
    up0 = rng.normal(0, 0.1, (60, 4)).astype(np.float32)
    ip0 = rng.normal(0, 0.1, (40, 4)).astype(np.float32)
    serial = [up0.copy(), ip0.copy()]
    hog = [up0.copy(), ip0.copy()]
    mu = float(ratings.mean())
    for epoch in range(15):
        order = np.random.default_rng(epoch).permutation(users.size)
        loss_s = _run(sgd_epoch, users, items, ratings, order, mu, *serial)
        loss_h = _run(sgd_epoch_hogwild, users, items, ratings, order, mu, *hog, block_size=16)
    assert np.isfinite(loss_h) and loss_h == pytest.approx(loss_s, rel=0.05)


def test_predict_pairs(rng):
    up = rng.normal(0, 1, (5, 4)).astype(np.float32)
    ip = rng.normal(0, 1, (7, 4)).astype(np.float32)
    u = np.array([0, 4, 2, 2], np.int32)
    i = np.array([6, 0, 3, 3], np.int32)
    out = np.empty(4, np.float32)
    predict_pairs(u, i, 3.5, up, ip, out)
    expect = 3.5 + up[u, 3] + ip[i, 3] + (up[u, :3] * ip[i, :3]).sum(1)
    np.testing.assert_allclose(out, expect, rtol=1e-6)


def test_matches_surprise_svd_with_its_init(rng):
    """Surprise's SVD after 1 and 2 epochs, its init reproduced from its RandomState.

    Surprise draws ``pu`` then ``qi`` from ``RandomState(random_state).normal(init_mean,
    init_std_dev)`` and visits ``trainset.all_ratings()``: users in inner-id order, each
    user's ratings in insertion order. The same draws, the same order, float64 parameters.
    """
    surprise = pytest.importorskip("surprise")
    users, items, ratings = _tiny(rng)
    ur: dict[int, list] = {u: [] for u in range(25)}
    ir: dict[int, list] = {i: [] for i in range(18)}
    positions: dict[int, list] = {u: [] for u in range(25)}
    for j, (u, i, r) in enumerate(
        zip(users.tolist(), items.tolist(), ratings.tolist(), strict=True)
    ):
        ur[u].append((i, r))
        ir[i].append((u, r))
        positions[u].append(j)
    order = np.array([j for u in range(25) for j in positions[u]], np.int64)
    trainset = surprise.Trainset(
        ur, ir, 25, 18, users.size, (1, 5), {u: u for u in range(25)}, {i: i for i in range(18)}
    )
    k, seed = 7, 42
    for epochs in (1, 2):
        algo = surprise.SVD(
            n_factors=k, n_epochs=epochs, init_mean=0.05, init_std_dev=0.2, lr_bu=LR[0],
            lr_bi=LR[1], lr_pu=LR[2], lr_qi=LR[3], reg_bu=REG[0], reg_bi=REG[1],
            reg_pu=REG[2], reg_qi=REG[3], random_state=seed,
        )  # fmt: skip
        algo.fit(trainset)
        init = np.random.RandomState(seed)
        pu = init.normal(0.05, 0.2, (25, k))
        qi = init.normal(0.05, 0.2, (18, k))
        up, ip = _packed(pu, np.zeros(25)), _packed(qi, np.zeros(18))
        for _ in range(epochs):
            _run(sgd_epoch, users, items, ratings, order, trainset.global_mean, up, ip)
        np.testing.assert_allclose(up[:, :k], algo.pu, rtol=0, atol=1e-10)
        np.testing.assert_allclose(ip[:, :k], algo.qi, rtol=0, atol=1e-10)
        np.testing.assert_allclose(up[:, k], algo.bu, rtol=0, atol=1e-10)
        np.testing.assert_allclose(ip[:, k], algo.bi, rtol=0, atol=1e-10)
        # float32, as lensrec trains: within 1e-5 of Surprise
        up32 = _packed(pu, np.zeros(25)).astype(np.float32)
        ip32 = _packed(qi, np.zeros(18)).astype(np.float32)
        for _ in range(epochs):
            _run(sgd_epoch, users, items, ratings, order, trainset.global_mean, up32, ip32)
        np.testing.assert_allclose(up32[:, :k], algo.pu, rtol=0, atol=1e-5)
        np.testing.assert_allclose(ip32[:, k], algo.bi, rtol=0, atol=1e-5)
