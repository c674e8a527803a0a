"""iALS half-steps (CG and Cholesky) and the loss against dense NumPy references."""

from __future__ import annotations

import numba
import numpy as np
import pytest
import scipy.sparse as sp

from lensrec.kernels.als import (
    _reference_als_half_step,
    _reference_als_loss,
    als_half_step_cg,
    als_half_step_cholesky,
    als_loss,
    gram,
)

# (reg, freq_exponent, w0): Hu et al.; Rendle's frequency-scaled regularisation with a small
# unobserved weight; no unobserved weight at all
SETTINGS = [(0.1, 0.0, 1.0), (0.05, 0.5, 0.3), (0.2, 1.0, 0.0)]


def _problem(rng, n_rows=30, n_cols=20, f=5, density=0.3):
    m = sp.random(n_rows, n_cols, density=density, random_state=rng, format="csr")
    m = m.astype(np.float32)
    m.data = (1.0 + 3.0 * rng.random(m.nnz)).astype(np.float32)  # confidences in [1, 4)
    for u in (0, 7):  # two rows without entries
        m.data[m.indptr[u] : m.indptr[u + 1]] = 0.0
    m.eliminate_zeros()
    Y = rng.normal(0.0, 0.4, (n_cols, f)).astype(np.float32)
    X = rng.normal(0.0, 0.1, (n_rows, f)).astype(np.float32)
    return m, X, Y


def _numpy_cg(m, Y, X, reg, w0, steps):
    # plain float64 CG from the normal equations written out densely, warm-started
    out = X.astype(np.float64).copy()
    Y64 = Y.astype(np.float64)
    for u in range(m.shape[0]):
        cols = m.indices[m.indptr[u] : m.indptr[u + 1]]
        if cols.size == 0:
            out[u] = 0.0
            continue
        c = m.data[m.indptr[u] : m.indptr[u + 1]].astype(np.float64)
        A = w0 * Y64.T @ Y64 + (Y64[cols].T * (c - w0)) @ Y64[cols] + reg * np.eye(Y.shape[1])
        b = Y64[cols].T @ c
        x = out[u]
        r = b - A @ x
        p = r.copy()
        for _ in range(steps):
            ap = A @ p
            alpha = (r @ r) / (p @ ap)
            x = x + alpha * p
            r_new = r - alpha * ap
            p = r_new + (r_new @ r_new) / (r @ r) * p
            r = r_new
        out[u] = x
    return out


@pytest.mark.parametrize("reg,freq_exponent,w0", SETTINGS)
def test_cg_with_enough_steps_equals_exact_solution(rng, reg, freq_exponent, w0):
    m, X, Y = _problem(rng)
    ref = _reference_als_half_step(m.indptr, m.indices, m.data, Y, reg, freq_exponent, w0)
    als_half_step_cg(m.indptr, m.indices, m.data, Y, X, gram(Y), reg, freq_exponent, w0, 25)
    np.testing.assert_allclose(X, ref, rtol=1e-4, atol=1e-5)
    assert np.all(X[[0, 7]] == 0)


@pytest.mark.parametrize("reg,freq_exponent,w0", SETTINGS)
def test_cholesky_equals_exact_solution(rng, reg, freq_exponent, w0):
    m, X, Y = _problem(rng)
    ref = _reference_als_half_step(m.indptr, m.indices, m.data, Y, reg, freq_exponent, w0)
    als_half_step_cholesky(m.indptr, m.indices, m.data, Y, X, gram(Y), reg, freq_exponent, w0)
    np.testing.assert_allclose(X, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reg,freq_exponent,w0", SETTINGS)
def test_loss_matches_reference(rng, reg, freq_exponent, w0):
    m, X, Y = _problem(rng)
    got = als_loss(m.indptr, m.indices, m.data, X, Y, gram(Y), reg, freq_exponent, w0)
    ref = _reference_als_loss(m.indptr, m.indices, m.data, X, Y, reg, freq_exponent, w0)
    assert got == pytest.approx(ref, rel=1e-5)


def test_three_cg_steps_follow_plain_cg_including_long_rows(rng):
    # f = 512: the wide-block path; row 0 is too long for the gather buffer (read in place),
    # row 1 is gathered, row 2 is empty
    f, n_cols = 512, 700
    rows = [rng.choice(n_cols, 600, replace=False), rng.choice(n_cols, 10, replace=False), []]
    m = sp.csr_matrix(
        (
            np.concatenate([1.0 + rng.random(len(r)) for r in rows]).astype(np.float32),
            np.concatenate([np.sort(r) for r in rows]).astype(np.int32),
            np.cumsum([0] + [len(r) for r in rows]),
        ),
        shape=(3, n_cols),
    )
    Y = rng.normal(0.0, 0.05, (n_cols, f)).astype(np.float32)
    X = rng.normal(0.0, 0.05, (3, f)).astype(np.float32)
    ref = _numpy_cg(m, Y, X, reg=0.5, w0=0.5, steps=3)
    als_half_step_cg(m.indptr, m.indices, m.data, Y, X, gram(Y), 0.5, 0.0, 0.5, 3)
    np.testing.assert_allclose(X, ref, rtol=2e-3, atol=2e-4 * np.abs(ref).max())


def test_half_steps_never_raise_the_loss(rng):
    m, X, Y = _problem(rng, n_rows=80, n_cols=50, f=8, density=0.15)
    t = m.T.tocsr()
    reg, fe, w0 = 0.05, 0.5, 0.5
    before = als_loss(m.indptr, m.indices, m.data, X, Y, gram(Y), reg, fe, w0)
    for _ in range(3):
        als_half_step_cg(m.indptr, m.indices, m.data, Y, X, gram(Y), reg, fe, w0, 3)
        mid = als_loss(m.indptr, m.indices, m.data, X, Y, gram(Y), reg, fe, w0)
        als_half_step_cg(t.indptr, t.indices, t.data, X, Y, gram(X), reg, fe, w0, 3)
        after = als_loss(m.indptr, m.indices, m.data, X, Y, gram(Y), reg, fe, w0)
        assert mid <= before * (1 + 1e-6) and after <= mid * (1 + 1e-6)
        before = after


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_result_does_not_depend_on_thread_count(rng):
    m, X, Y = _problem(rng, n_rows=300, n_cols=40, f=6, density=0.1)
    old = numba.get_num_threads()
    outs = []
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            for slots, gather in ((threads, 1 << 22), (threads, 24), (3, 1 << 22)):
                Xc = X.copy()
                als_half_step_cg(m.indptr, m.indices, m.data, Y, Xc, gram(Y), 0.1, 0.0, 1.0,
                                 3, slots, gather)  # fmt: skip
                outs.append(Xc)
    finally:
        numba.set_num_threads(old)
    for out in outs[1:]:  # a gather of 24 floats (4 rows) reads most rows in place
        np.testing.assert_array_equal(outs[0], out)


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_one_confidence_for_all_entries_equals_the_full_array(rng, solver):
    """Binary data hands the kernels one confidence instead of an array of nnz."""
    m, X, Y = _problem(rng, n_rows=60, n_cols=30, f=6, density=0.2)
    full = np.full(m.nnz, 2.5, dtype=np.float32)
    one = np.array([2.5], dtype=np.float32)
    outs = []
    for conf in (full, one):
        Xc = X.copy()
        if solver == "cg":
            als_half_step_cg(m.indptr, m.indices, conf, Y, Xc, gram(Y), 0.1, 1.0, 0.5, 3, 2)
        else:
            als_half_step_cholesky(m.indptr, m.indices, conf, Y, Xc, gram(Y), 0.1, 1.0, 0.5)
        loss = als_loss(m.indptr, m.indices, conf, Xc, Y, gram(Y), 0.1, 1.0, 0.5)
        outs.append((Xc, loss))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    assert outs[0][1] == outs[1][1]
    ref = _reference_als_half_step(m.indptr, m.indices, full, Y, 0.1, 1.0, 0.5)
    if solver == "cholesky":
        np.testing.assert_allclose(outs[1][0], ref, rtol=1e-4, atol=1e-6)
