"""Gram matrix, EASE weights and randomized SVD against closed forms and full decompositions."""

from __future__ import annotations

import tracemalloc

import numba as nb
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from hypothesis import given, settings
from hypothesis import strategies as st

from lensrec._config import single_threaded_blas
from lensrec.errors import ConfigError
from lensrec.kernels.linear import (
    _reference_ease_weights,
    _reference_gram_matrix,
    _reference_randomized_svd,
    ease_memory_bytes,
    ease_weights,
    gram_matrix,
    randomized_svd,
)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # tiny matrices: BLAS threads only cost here (and OpenBLAS's threaded potrf/potri crawl
    # when other processes share the cores)
    with single_threaded_blas():
        yield


def _sparse(gen, n_users, n_items, density, valued=False):
    mask = gen.random((n_users, n_items)) < density
    vals = gen.integers(1, 6, mask.shape) if valued else 1
    return np.where(mask, vals, 0).astype(np.float32)


def _gram(x, dtype=np.float64):
    m = sp.csr_matrix(x)
    return gram_matrix(m.indptr, m.indices, m.data, x.shape[1], dtype)


# --- Gram matrix -----------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_users=st.integers(1, 20),
    n_items=st.integers(1, 12),
    valued=st.booleans(),
)
def test_gram_matches_reference(seed, n_users, n_items, valued):
    x = _sparse(np.random.default_rng(seed), n_users, n_items, 0.4, valued)
    np.testing.assert_array_equal(_gram(x), _reference_gram_matrix(x))
    np.testing.assert_allclose(_gram(x, np.float32), _reference_gram_matrix(x), rtol=1e-6)


def test_gram_unsorted_rows_and_repeats_leave_the_input_alone(rng):
    # rows given unsorted and with a repeated (user, item) entry: X^T X of the dense matrix
    # in which repeats add up, and the caller's arrays are not sorted in place
    indptr = np.array([0, 4, 6, 9], np.int32)
    indices = np.array([3, 0, 2, 0, 1, 4, 4, 1, 3], np.int32)
    data = np.array([1, 2, 1, 3, 1, 2, 1, 1, 1], np.float32)
    x = np.zeros((3, 5))
    np.add.at(x, (np.repeat(np.arange(3), np.diff(indptr)), indices), data)
    before = indices.copy(), data.copy()
    for dtype in (np.float64, np.float32):
        got = gram_matrix(indptr, indices, data, 5, dtype)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, _reference_gram_matrix(x))
    np.testing.assert_array_equal(indices, before[0])
    np.testing.assert_array_equal(data, before[1])


def test_gram_many_items_popular_first(rng):
    # more items than the kernel's work blocks, popularity skewed to low ids (the lower
    # triangle of row i is longest for popular items): exact in float64, symmetric
    n_items = 700
    p = 0.5 / (1.0 + np.arange(n_items)) ** 0.7
    x = (rng.random((150, n_items)) < p).astype(np.float32)
    x[rng.random(x.shape) < 0.2] *= 3.0
    got = _gram(x)
    np.testing.assert_array_equal(got, _reference_gram_matrix(x))
    np.testing.assert_array_equal(_gram(x, np.float32), _reference_gram_matrix(x))


@pytest.mark.skipif(nb.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_gram_does_not_depend_on_thread_count(rng):
    x = _sparse(rng, 120, 300, 0.1, valued=True) * rng.random((120, 300)).astype(np.float32)
    old = nb.get_num_threads()
    outs = []
    try:
        for threads in (1, 2):
            nb.set_num_threads(threads)
            outs.append(_gram(x, np.float32))
    finally:
        nb.set_num_threads(old)
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_allclose(outs[0], _reference_gram_matrix(x), rtol=1e-5, atol=1e-5)


# --- EASE ------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_items=st.integers(1, 12),
    reg=st.sampled_from([0.1, 1.0, 50.0]),
    valued=st.booleans(),
)
def test_ease_matches_closed_form(seed, n_items, reg, valued):
    x = _sparse(np.random.default_rng(seed), 30, n_items, 0.3, valued)
    g = _gram(x)
    want = _reference_ease_weights(g, reg)
    got = ease_weights(g, reg)
    assert got is g  # in place
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert np.all(np.diag(got) == 0)


def test_ease_hand_case():
    # two items always seen together by 2 users: G = [[2, 2], [2, 2]]
    # P = inv([[2+r, 2], [2, 2+r]]) and B[0, 1] = -P[0, 1] / P[1, 1] = 2 / (2 + r)
    g = np.array([[2.0, 2.0], [2.0, 2.0]])
    b = ease_weights(g, 1.0)
    np.testing.assert_allclose(b, [[0.0, 2 / 3], [2 / 3, 0.0]], rtol=1e-12)


def test_ease_float32(rng):
    x = _sparse(rng, 80, 25, 0.2)
    want = _reference_ease_weights(_reference_gram_matrix(x), 10.0)
    got = ease_weights(_gram(x, np.float32), 10.0)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5 * np.abs(want).max())


def test_ease_block_diagonal_has_no_cross_block_weights(rng):
    x = np.zeros((70, 13), np.float32)
    x[:40, :7] = _sparse(rng, 40, 7, 0.4)
    x[40:, 7:] = _sparse(rng, 30, 6, 0.4)
    b = ease_weights(_gram(x), 5.0)
    assert np.abs(b[:7, 7:]).max() <= 1e-12 * np.abs(b).max()
    assert np.abs(b[7:, :7]).max() <= 1e-12 * np.abs(b).max()
    assert np.abs(b[:7, :7]).max() > 0 and np.abs(b[7:, 7:]).max() > 0


def test_ease_peak_memory_is_one_matrix(rng):
    n = 400
    x = _sparse(rng, 300, n, 0.02)
    m = sp.csr_matrix(x)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        ease_weights(gram_matrix(m.indptr, m.indices, m.data, n), 10.0)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    budget = ease_memory_bytes(n, np.float64)
    assert n * n * 8 <= budget
    # the interactions' transposed copy is small here; a second n x n matrix would double it
    assert peak <= 1.2 * budget, (peak, budget)


def test_ease_memory_bytes_numbers():
    assert ease_memory_bytes(100_000, np.float64) >= 100_000**2 * 8  # 80 GB
    assert ease_memory_bytes(100_000, np.float32) >= 100_000**2 * 4
    assert ease_memory_bytes(100_000, np.float64) < 1.001 * 100_000**2 * 8
    assert ease_memory_bytes(0) == 0


@pytest.mark.parametrize("reg", [0.0, -1.0, np.nan])
def test_ease_rejects_bad_reg(reg):
    with pytest.raises(ConfigError):
        ease_weights(np.eye(3), reg)


@pytest.mark.parametrize(
    "gram",
    [
        np.ones((2, 3)),  # not square
        np.eye(6)[::2, ::2],  # not contiguous
        np.eye(3, dtype=np.int64),  # not float
        np.asfortranarray(np.arange(9.0).reshape(3, 3)),  # Fortran order
    ],
)
def test_ease_rejects_bad_gram(gram):
    with pytest.raises(ConfigError):
        ease_weights(gram, 1.0)


# --- randomized SVD --------------------------------------------------------------------------


def _planted(gen, m, n, s):
    u, _ = np.linalg.qr(gen.standard_normal((m, len(s))))
    v, _ = np.linalg.qr(gen.standard_normal((n, len(s))))
    return (u * s) @ v.T


def test_randomized_svd_recovers_planted_low_rank(rng):
    s_true = np.array([40.0, 25.0, 12.0, 6.0, 3.0, 1.0])
    a = _planted(rng, 250, 90, s_true)
    csr = sp.csr_matrix(a)
    u, s, vt = randomized_svd(csr, 6, seed=3, dtype=np.float64)
    _, s_ref, _ = _reference_randomized_svd(a, 6)
    np.testing.assert_allclose(s, s_ref, rtol=1e-8)
    np.testing.assert_allclose(s, s_true, rtol=1e-8)
    np.testing.assert_allclose((u * s) @ vt, a, atol=1e-9 * s_true[0])
    np.testing.assert_allclose(u.T @ u, np.eye(6), atol=1e-10)
    np.testing.assert_allclose(vt @ vt.T, np.eye(6), atol=1e-10)
    # float32: same values to float32 accuracy
    u32, s32, vt32 = randomized_svd(csr, 6, seed=3)
    assert s32.dtype == np.float32 and u32.dtype == np.float32
    np.testing.assert_allclose(s32, s_true, rtol=1e-4)
    np.testing.assert_allclose((u32 * s32) @ vt32, a, atol=1e-4 * s_true[0])


def test_randomized_svd_top_values_of_a_noisy_matrix(rng):
    # low rank plus noise: the leading triplets match the full SVD's
    a = _planted(rng, 300, 120, np.array([60.0, 40.0, 30.0, 20.0]))
    a += 0.05 * rng.standard_normal(a.shape)
    u, s, vt = randomized_svd(sp.csr_matrix(a), 4, seed=0, dtype=np.float64)
    u_ref, s_ref, vt_ref = _reference_randomized_svd(a, 4)
    np.testing.assert_allclose(s, s_ref, rtol=1e-6)
    np.testing.assert_allclose(np.abs(np.sum(u * u_ref, axis=0)), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.abs(np.sum(vt * vt_ref, axis=1)), 1.0, atol=1e-6)


def test_randomized_svd_agrees_with_svds_on_sparse_data(rng):
    # users in 5 taste groups of different sizes, each liking its own items; sparse noise
    groups = rng.integers(0, 5, 600)
    item_group = rng.integers(0, 5, 200)
    like = (groups[:, None] == item_group[None, :]) * (0.2 + 0.15 * groups[:, None])
    x = (rng.random((600, 200)) < like + 0.01).astype(np.float64)
    csr = sp.csr_matrix(x)
    _, s, vt = randomized_svd(csr, 5, seed=1, dtype=np.float64, n_iter=6)
    _, s_svds, vt_svds = spla.svds(csr, k=5, random_state=0)
    order = np.argsort(-s_svds)
    np.testing.assert_allclose(s, s_svds[order], rtol=1e-6)
    np.testing.assert_allclose(np.abs(np.sum(vt * vt_svds[order], axis=1)), 1.0, atol=1e-5)


def test_randomized_svd_power_iterations_help_on_a_flat_spectrum(rng):
    x = sp.csr_matrix((rng.random((400, 150)) < 0.05).astype(np.float64))
    _, s_ref, _ = _reference_randomized_svd(x, 10)
    err = []
    for n_iter in (0, 4):
        _, s, _ = randomized_svd(x, 10, oversample=5, n_iter=n_iter, dtype=np.float64)
        assert np.all(s <= s_ref * (1 + 1e-9))  # Ritz values never exceed the true ones
        err.append(np.abs(s - s_ref).max())
    assert err[1] < err[0]


def test_randomized_svd_is_seeded(rng):
    x = sp.csr_matrix((rng.random((100, 60)) < 0.1).astype(np.float32))
    a = randomized_svd(x, 5, n_iter=1, seed=7)
    b = randomized_svd(x, 5, n_iter=1, seed=7)
    c = randomized_svd(x, 5, n_iter=1, seed=8)
    for p, q in zip(a, b, strict=True):
        np.testing.assert_array_equal(p, q)
    assert not np.array_equal(a[1], c[1])
    u = a[0]
    assert np.all(u[np.argmax(np.abs(u), axis=0), np.arange(5)] > 0)  # sign convention


@pytest.mark.parametrize("kw", [dict(rank=0), dict(rank=61), dict(oversample=-1), dict(n_iter=-1)])
def test_randomized_svd_bad_arguments(kw):
    x = sp.csr_matrix(np.eye(100, 60))
    args = dict(rank=5) | kw
    with pytest.raises(ConfigError):
        randomized_svd(x, **args)


def test_gram_same_for_any_thread_count(rng):
    x = _sparse(rng, 90, 40, 0.2, valued=True)
    before = nb.get_num_threads()
    try:
        nb.set_num_threads(1)
        one = _gram(x, np.float32)
        nb.set_num_threads(nb.config.NUMBA_NUM_THREADS)
        many = _gram(x, np.float32)
    finally:
        nb.set_num_threads(before)
    np.testing.assert_array_equal(one, many)


def test_randomized_svd_pins_blas_to_one_thread_on_small_blocks(rng, monkeypatch):
    # the QR and SVD calls see one BLAS thread even when the caller allows more
    from threadpoolctl import threadpool_info, threadpool_limits

    import lensrec.kernels.linear as linear

    seen: list[int] = []
    qr = linear.sla.qr

    def spy(*args, **kwargs):
        seen.append(blas_threads())
        return qr(*args, **kwargs)

    monkeypatch.setattr(linear.sla, "qr", spy)
    a = sp.csr_matrix(_sparse(rng, 60, 40, 0.2))

    def blas_threads() -> int:
        return max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")

    with threadpool_limits(limits=2, user_api="blas"):
        if blas_threads() < 2:
            pytest.skip("BLAS cannot use 2 threads here")
        randomized_svd(a, 3, seed=0)
        after = blas_threads()
    assert seen and set(seen) == {1}
    assert after == 2  # restored for the caller
