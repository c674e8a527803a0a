"""WARP epoch and fold-in kernels against their references and on problems with known answers."""

from __future__ import annotations

import numba
import numpy as np
import pytest
import scipy.sparse as sp

from lensrec.kernels.warp import (
    _perm_keys,
    _permute,
    _ref_permute,
    _reference_warp_epoch,
    _reference_warp_update,
    warp_epoch,
    warp_fold_in,
)


def _csr(rows, n_items):
    indptr = np.cumsum([0] + [len(r) for r in rows]).astype(np.int32)
    indices = np.concatenate([np.sort(np.asarray(r, dtype=np.int32)) for r in rows])
    return sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), (len(rows), n_items))


def _planted(n_groups=4, per_group=10, items_per_group=10, keep=0.6, seed=0):
    gen = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        block = np.arange(g * items_per_group, (g + 1) * items_per_group)
        for _ in range(per_group):
            rows.append(block[gen.random(items_per_group) < keep])
    return _csr(rows, n_groups * items_per_group), np.repeat(np.arange(n_groups), per_group)


def _state(rng, n_users, n_items, f, scale=0.1):
    U = rng.normal(0, scale, (n_users, f)).astype(np.float32)
    V = rng.normal(0, scale, (n_items, f)).astype(np.float32)
    b = rng.normal(0, scale, n_items).astype(np.float32)
    return [U, V, b, np.ones_like(U), np.ones_like(V), np.ones_like(b)]


def _epoch(
    m, state, lr=0.05, reg=0.01, reg_bias=0.001, max_sampled=10, adagrad=True, k=0, n=0, seed=0
):
    return warp_epoch(
        m.indptr, m.indices, *state, lr, reg, reg_bias, max_sampled, adagrad, k, n, seed
    )


@pytest.fixture
def one_thread():
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(old)


def test_visiting_order_is_a_permutation():
    for n, seed in [(1, 0), (7, 3), (1000, 5), (4097, 9)]:
        keys = _perm_keys(seed)
        h = 1
        while (1 << (2 * h)) < n:
            h += 1
        got = [_permute(s, n, h, keys) for s in range(n)]
        assert sorted(got) == list(range(n))
        assert got == [_ref_permute(s, n, seed) for s in range(n)]
    assert got != list(range(n))  # not the identity


@pytest.mark.parametrize("adagrad", [False, True])
def test_reference_update_is_a_gradient_step(rng, adagrad):
    f, lr, reg, reg_bias, w = 4, 0.1, 0.03, 0.01, 1.7
    xu, yi, yj = (rng.normal(0, 0.5, f) for _ in range(3))
    bi, bj = 0.2, -0.1
    params = np.concatenate([xu, yi, yj, [bi, bj]])

    def obj(p):
        xu, yi, yj, bi, bj = p[:f], p[f : 2 * f], p[2 * f : 3 * f], p[-2], p[-1]
        hinge = 1.0 - (xu @ yi + bi) + (xu @ yj + bj)
        l2 = reg * (xu @ xu + yi @ yi + yj @ yj) + reg_bias * (bi * bi + bj * bj)
        return w * hinge + 0.5 * l2

    eps = 1e-6
    grad = np.array(
        [(obj(params + eps * e) - obj(params - eps * e)) / (2 * eps) for e in np.eye(len(params))]
    )
    acc = (np.full(f, 2.0), np.full(f, 3.0), np.ones(f), 1.5, 1.0) if adagrad else None
    new = _reference_warp_update(xu, yi, yj, bi, bj, w, lr, reg, reg_bias, acc)
    got = np.concatenate([new[0], new[1], new[2], [new[3], new[4]]])
    if adagrad:
        g2 = np.concatenate([np.full(f, 2.0), np.full(f, 3.0), np.ones(f), [1.5, 1.0]]) + grad**2
        np.testing.assert_allclose(got, params - lr * grad / np.sqrt(g2), atol=1e-8)
    else:
        np.testing.assert_allclose(got, params - lr * grad, atol=1e-8)


@pytest.mark.parametrize(
    "adagrad,k,n,max_sampled", [(True, 0, 0, 10), (False, 0, 0, 3), (True, 2, 5, 10)]
)
def test_epoch_matches_reference(rng, one_thread, adagrad, k, n, max_sampled):
    # user 0 owns every item (never finds a negative); 5000 visits cross a block boundary
    n_items = 40
    rows = [list(range(n_items))] + [
        np.flatnonzero(rng.random(n_items) < p) for p in rng.uniform(0.1, 0.9, 260)
    ]
    rows = [r if len(r) else [0] for r in rows]
    m = _csr(rows, n_items)
    state = _state(rng, len(rows), n_items, 5, scale=0.3)
    ref_state = [a.astype(np.float64) for a in state]
    got = _epoch(m, state, adagrad=adagrad, k=k, n=n, max_sampled=max_sampled, seed=17)
    ref = _reference_warp_epoch(
        m.indptr, m.indices, *ref_state, 0.05, 0.01, 0.001, max_sampled, adagrad, k, n, 17
    )
    assert m.nnz > 4096
    # the same draws and violations (the kernel divides by multiplying with 1 / nnz)
    assert got[1] == pytest.approx(ref[1], rel=1e-12)
    assert got[2] == pytest.approx(ref[2], rel=1e-12)
    assert 0 < got[1] < 1
    assert got[0] == pytest.approx(ref[0], rel=1e-4)
    for a, r in zip(state, ref_state, strict=True):
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-4)


def test_one_thread_is_bitwise_repeatable(rng, one_thread):
    m, _ = _planted()
    start = _state(rng, m.shape[0], m.shape[1], 8)
    outs = []
    for _ in range(2):
        state = [a.copy() for a in start]
        stats = _epoch(m, state, k=3, n=5, seed=4)
        outs.append((*state, stats))
    for a, c in zip(outs[0], outs[1], strict=True):
        np.testing.assert_array_equal(a, c)
    state = [a.copy() for a in start]
    _epoch(m, state, k=3, n=5, seed=5)
    assert not np.array_equal(state[0], outs[0][0])  # the seed matters


@pytest.mark.parametrize(
    "adagrad,k,n,lr", [(True, 0, 0, 0.1), (False, 0, 0, 0.02), (True, 2, 4, 0.1)]
)
def test_epochs_learn_a_planted_ranking(rng, adagrad, k, n, lr):
    m, group = _planted()
    state = _state(rng, m.shape[0], m.shape[1], 8, scale=0.01)
    losses = []
    for epoch in range(25):
        losses.append(_epoch(m, state, lr=lr, adagrad=adagrad, k=k, n=n, seed=epoch)[0])
    assert losses[-1] < 0.5 * losses[0]
    U, V, b = state[:3]
    scores = U @ V.T + b
    item_group = np.arange(m.shape[1]) // 10
    same = scores[group[:, None] == item_group[None, :]].mean()
    other = scores[group[:, None] != item_group[None, :]].mean()
    assert same > other + 1.0


def test_negatives_are_never_positives(one_thread):
    # user 0 likes items 0-2 of 4, so its only negative is item 3; user 1 likes all 4 and
    # never finds one. With zero factors and no regularisation only the biases move: a
    # positive's bias can only rise and item 3's only fall, unless a positive is used as a
    # negative.
    m = _csr([[0, 1, 2], [0, 1, 2, 3]], 4)
    state = [np.zeros((2, 3), np.float32), np.zeros((4, 3), np.float32), np.zeros(4, np.float32)]
    state += [np.ones_like(a) for a in state]
    b = state[2]
    for seed in range(40):
        before = b.copy()
        _, share, _ = _epoch(m, state, lr=0.05, reg=0.0, reg_bias=0.0, max_sampled=50, seed=seed)
        assert share <= 3 / 7
        assert np.all(b[:3] >= before[:3]) and b[3] <= before[3]
    assert b[3] < 0 and np.all(b[:3] > 0)
    assert not state[0].any() and not state[1].any()


@pytest.mark.parametrize("adagrad", [True, False])
def test_fold_in_recovers_the_group(rng, adagrad):
    m, _ = _planted()
    state = _state(rng, m.shape[0], m.shape[1], 8, scale=0.01)
    for epoch in range(25):
        _epoch(m, state, lr=0.1, seed=epoch)
    V, b = state[1], state[2]
    hist = _csr([[20, 23, 25, 27], [3, 5]], m.shape[1])
    X = np.zeros((2, 8), np.float32)
    warp_fold_in(
        hist.indptr, hist.indices, V, b, X, 30, 0.1 if adagrad else 0.02, 0.01, 10, adagrad, 1
    )
    scores = X @ V.T + b
    groups = np.arange(m.shape[1]) // 10
    assert scores[0, groups == 2].mean() > scores[0, groups != 2].mean() + 1.0
    assert scores[1, groups == 0].mean() > scores[1, groups != 0].mean() + 1.0


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_fold_in_does_not_depend_on_thread_count(rng):
    m, _ = _planted(n_groups=8, per_group=20)  # 160 rows: three row blocks
    V = rng.normal(0, 0.3, (m.shape[1], 6)).astype(np.float32)
    b = rng.normal(0, 0.1, m.shape[1]).astype(np.float32)
    old = numba.get_num_threads()
    outs = []
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            X = np.zeros((m.shape[0], 6), np.float32)
            warp_fold_in(m.indptr, m.indices, V, b, X, 3, 0.05, 0.01, 10, True, 9)
            outs.append(X)
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(outs[0], outs[1])
    assert np.abs(outs[0]).sum() > 0
