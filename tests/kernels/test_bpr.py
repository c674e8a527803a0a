"""BPR epoch and fold-in kernels against their references and on problems with known answers."""

from __future__ import annotations

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from lensrec.kernels.bpr import (
    _fill_tables_parallel,
    _filter_slot,
    _filtered_in_row,
    _in_row,
    _reference_bpr_epoch,
    _reference_bpr_update,
    _sampling_tables,
    bpr_epoch,
    bpr_fold_in,
)


def _csr(rows, n_items):
    indptr = np.cumsum([0] + [len(r) for r in rows]).astype(np.int32)
    indices = np.concatenate([np.sort(np.asarray(r, dtype=np.int32)) for r in rows])
    return sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), (len(rows), n_items))


def _planted(n_groups=4, per_group=10, items_per_group=10, keep=0.6, seed=0):
    # users of group g like items of block g (a share `keep` of them): a ranking with a known
    # right answer, block-diagonal
    gen = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        block = np.arange(g * items_per_group, (g + 1) * items_per_group)
        for _ in range(per_group):
            rows.append(block[gen.random(items_per_group) < keep])
    return _csr(rows, n_groups * items_per_group), np.repeat(np.arange(n_groups), per_group)


def _init(rng, n_users, n_items, f, scale=0.1):
    return (
        rng.normal(0, scale, (n_users, f)).astype(np.float32),
        rng.normal(0, scale, (n_items, f)).astype(np.float32),
        rng.normal(0, scale, n_items).astype(np.float32),
    )


@pytest.fixture
def one_thread():
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(old)


def _objective(xu, yi, yj, bi, bj, reg, reg_bias):
    x = xu @ (yi - yj) + bi - bj
    return -np.log(1.0 / (1.0 + np.exp(-x))) + 0.5 * (
        reg * (xu @ xu + yi @ yi + yj @ yj) + reg_bias * (bi * bi + bj * bj)
    )


def test_reference_update_is_a_gradient_step(rng):
    # the reference's step equals -lr * (finite-difference gradient of the objective)
    f, lr, reg, reg_bias = 4, 0.1, 0.03, 0.01
    xu, yi, yj = (rng.normal(0, 0.5, f) for _ in range(3))
    bi, bj = 0.2, -0.1
    params = np.concatenate([xu, yi, yj, [bi, bj]])

    def obj(p):
        return _objective(p[:f], p[f : 2 * f], p[2 * f : 3 * f], p[-2], p[-1], reg, reg_bias)

    eps = 1e-6
    grad = np.array(
        [(obj(params + eps * e) - obj(params - eps * e)) / (2 * eps) for e in np.eye(len(params))]
    )
    new = _reference_bpr_update(xu, yi, yj, bi, bj, lr, reg, reg_bias)
    got = np.concatenate([new[0], new[1], new[2], [new[3], new[4]]])
    np.testing.assert_allclose(got, params - lr * grad, atol=1e-8)
    assert new[5] == pytest.approx(-np.log(1 / (1 + np.exp(-(xu @ (yi - yj) + bi - bj)))))


def test_single_triple_matches_reference_update(rng, one_thread):
    # one user, one positive, two items: the only triple is (0, 0, 1)
    m = _csr([[0]], 2)
    U, V, b = _init(rng, 1, 2, 6, scale=0.5)
    want = _reference_bpr_update(U[0], V[0], V[1], b[0], b[1], 0.05, 0.02, 0.01)
    loss, correct, skipped = bpr_epoch(m.indptr, m.indices, U, V, b, 1, 0.05, 0.02, 0.01, 3, 5)
    np.testing.assert_allclose(U[0], want[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(V[0], want[1], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(V[1], want[2], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(b, [want[3], want[4]], rtol=1e-5, atol=1e-7)
    assert loss == pytest.approx(want[5], rel=1e-5) and skipped == 0


@pytest.mark.parametrize("n_samples,max_tries", [(9000, 3), (100, 1)])
def test_epoch_matches_reference(rng, one_thread, n_samples, max_tries):
    # user 0 owns every item (always skipped), some users own most of the catalogue (redraws);
    # 9000 samples cross a block boundary
    n_items = 12
    rows = [list(range(n_items))] + [
        np.flatnonzero(rng.random(n_items) < p) for p in rng.uniform(0.1, 0.9, 30)
    ]
    rows = [r if len(r) else [0] for r in rows]
    m = _csr(rows, n_items)
    U, V, b = _init(rng, len(rows), n_items, 5)
    R = [a.astype(np.float64) for a in (U, V, b)]
    got = bpr_epoch(m.indptr, m.indices, U, V, b, n_samples, 0.05, 0.01, 0.001, 11, max_tries)
    ref = _reference_bpr_epoch(m.indptr, m.indices, *R, n_samples, 0.05, 0.01, 0.001, 11, max_tries)
    assert got[2] == ref[2] and got[2] > 0
    assert got[0] == pytest.approx(ref[0], rel=1e-4)
    assert got[1] == pytest.approx(ref[1], abs=2 / n_samples)
    np.testing.assert_allclose(U, R[0], atol=1e-4)
    np.testing.assert_allclose(V, R[1], atol=1e-4)
    np.testing.assert_allclose(b, R[2], atol=1e-4)


@settings(max_examples=50, deadline=None)
@given(row=st.lists(st.integers(0, 200), max_size=40, unique=True), item=st.integers(-1, 201))
def test_in_row_is_membership(row, item):
    indices = np.array([7, *sorted(row), 7], np.int32)  # the row sits inside a larger array
    assert _in_row(indices, 1, 1 + len(row), item) == (item in row)


def test_row_filters_answer_membership_exactly(rng):
    # rows from empty to a third of a 1000-item catalogue: hashed filters (1 to 16 words),
    # exact bitmaps (16 words) and a row of every item; every (row, item) pair is asked
    n_items = 1000
    lengths = [0, 1, 2, 4, 5, 30, 63, 64, 65, 200, 333, n_items]
    rows = [np.sort(rng.choice(n_items, n, replace=False)) for n in lengths]
    m = _csr([r.tolist() for r in rows], n_items)
    pairs, offsets, words = _sampling_tables(m.indptr, m.indices, n_items)
    np.testing.assert_array_equal(pairs >> 32, np.repeat(np.arange(len(rows)), lengths))
    np.testing.assert_array_equal(pairs & 0xFFFFFFFF, m.indices)
    n_words = np.diff(offsets)
    exact = (n_items + 63) // 64
    assert n_words[0] == 0 and 1 <= n_words[1] < exact and n_words[-1] == exact
    assert np.all(n_words <= exact)
    for u, row in enumerate(rows):
        members = set(row.tolist())
        lo, hi = m.indptr[u], m.indptr[u + 1]
        if hi == lo:
            continue
        got = [
            _filtered_in_row(m.indices, lo, hi, offsets, words, exact, u, j) for j in range(n_items)
        ]
        assert got == [j in members for j in range(n_items)], u
    # the parallel fill (used from _PARALLEL_TABLES entries) builds the same tables
    par_words, par_pairs = np.zeros_like(words), np.empty_like(pairs)
    _fill_tables_parallel(m.indptr, m.indices, n_items, offsets, par_words, par_pairs)
    np.testing.assert_array_equal(par_words, words)
    np.testing.assert_array_equal(par_pairs, pairs)


def test_epoch_matches_reference_with_hashed_filters(rng, one_thread):
    # a 2000-item catalogue: rows of up to 64 items get hashed filters, whose false alarms go
    # to the binary search; two rows of nearly every item get exact bitmaps and are mostly
    # skipped (max_tries=2). The triples and steps must still be the reference's.
    n_items = 2000
    lengths = [*rng.integers(5, 64, 30), 1990, 1995]
    rows = [rng.choice(n_items, n, replace=False) for n in lengths]
    m = _csr(rows, n_items)
    _, offsets, words = _sampling_tables(m.indptr, m.indices, n_items)
    n_words = np.diff(offsets)
    assert (n_words[:-2] < 32).all() and (n_words[-2:] == 32).all()
    false_alarms = 0  # items outside a hashed row whose filter bit is set
    for u in range(len(rows) - 2):
        for j in set(range(n_items)) - set(rows[u].tolist()):
            w, bit = _filter_slot(offsets, u, j, 32)
            false_alarms += int(words[w] >> bit) & 1
    assert false_alarms > 1000
    U, V, b = _init(rng, len(rows), n_items, 4)
    R = [a.astype(np.float64) for a in (U, V, b)]
    got = bpr_epoch(m.indptr, m.indices, U, V, b, 5000, 0.05, 0.01, 0.001, 4, 2)
    ref = _reference_bpr_epoch(m.indptr, m.indices, *R, 5000, 0.05, 0.01, 0.001, 4, 2)
    assert got[2] == ref[2] and got[2] > 0
    assert got[0] == pytest.approx(ref[0], rel=1e-4)
    assert got[1] == pytest.approx(ref[1], abs=2 / 5000)
    np.testing.assert_allclose(U, R[0], atol=1e-4)
    np.testing.assert_allclose(V, R[1], atol=1e-4)
    np.testing.assert_allclose(b, R[2], atol=1e-4)


def test_one_thread_is_bitwise_repeatable(rng, one_thread):
    m, _ = _planted()
    start = _init(rng, m.shape[0], m.shape[1], 8)
    outs = []
    for _ in range(2):
        U, V, b = (a.copy() for a in start)
        stats = bpr_epoch(m.indptr, m.indices, U, V, b, 10_000, 0.05, 0.01, 0.0, 5, 10)
        outs.append((U, V, b, stats))
    for a, c in zip(outs[0], outs[1], strict=True):
        np.testing.assert_array_equal(a, c)
    U, V, b = (a.copy() for a in start)
    bpr_epoch(m.indptr, m.indices, U, V, b, 10_000, 0.05, 0.01, 0.0, 6, 10)
    assert not np.array_equal(U, outs[0][0])  # the seed matters


def test_epochs_learn_a_planted_ranking(rng):
    m, group = _planted()
    U, V, b = _init(rng, m.shape[0], m.shape[1], 8, scale=0.01)
    losses = []
    for epoch in range(30):
        loss, correct, _ = bpr_epoch(m.indptr, m.indices, U, V, b, m.nnz, 0.1, 0.01, 0.0, epoch, 10)
        losses.append(loss)
    assert losses[-1] < 0.5 * losses[0]
    scores = U @ V.T + b
    item_group = np.arange(m.shape[1]) // 10
    same = scores[group[:, None] == item_group[None, :]].mean()
    other = scores[group[:, None] != item_group[None, :]].mean()
    assert same > other + 1.0
    assert correct > 0.9


def test_negatives_are_never_positives(one_thread):
    # user 0 likes items 0-2 of 4, so its only negative is item 3; user 1 likes all 4 and is
    # always skipped. With zero factors and no regularisation only the biases move: a
    # positive's bias can only rise and item 3's only fall, unless a positive is drawn as a
    # negative.
    m = _csr([[0, 1, 2], [0, 1, 2, 3]], 4)
    U = np.zeros((2, 3), np.float32)
    V = np.zeros((4, 3), np.float32)
    b = np.zeros(4, np.float32)
    total_skipped = 0
    for seed in range(300):
        before = b.copy()
        _, _, skipped = bpr_epoch(m.indptr, m.indices, U, V, b, 1, 0.1, 0.0, 0.0, seed, 50)
        total_skipped += skipped
        assert np.all(b[:3] >= before[:3]) and b[3] <= before[3]
        assert np.isclose(b[3] - before[3], -(b[:3] - before[:3]).sum(), atol=1e-6) or skipped
    assert b[3] < 0 and 300 * 4 / 7 * 0.7 < total_skipped < 300 * 4 / 7 * 1.3
    assert not U.any() and not V.any()


def test_fold_in_recovers_the_group(rng):
    # item factors from a model trained on the planted problem; a new user with a history of
    # group-2 items should rank group-2 items above the others
    m, _ = _planted()
    U, V, b = _init(rng, m.shape[0], m.shape[1], 8, scale=0.01)
    for epoch in range(30):
        bpr_epoch(m.indptr, m.indices, U, V, b, m.nnz, 0.1, 0.01, 0.0, epoch, 10)
    hist = _csr([[20, 23, 25, 27], [3, 5]], m.shape[1])
    X = np.zeros((2, 8), np.float32)
    bpr_fold_in(hist.indptr, hist.indices, V, b, X, 30, 0.1, 0.01, 10, 1)
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
            bpr_fold_in(m.indptr, m.indices, V, b, X, 3, 0.05, 0.01, 10, 9)
            outs.append(X)
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(outs[0], outs[1])
    assert np.abs(outs[0]).sum() > 0
