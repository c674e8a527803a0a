"""Implicit alternating least squares (iALS): one half-step, solved by CG or Cholesky.

Hu, Koren & Volinsky, "Collaborative Filtering for Implicit Feedback Datasets" (ICDM 2008);
Rendle, Krichene, Zhang & Koren, "Revisiting the Performance of iALS on Item Recommendation
Benchmarks" (RecSys 2022, arXiv 2110.14037, 2021).

A half-step updates every row ``x_u`` of ``X`` with ``Y`` fixed; the model calls it twice per
iteration (users given items on the users x items CSR, then items given users on its
transpose). Row ``u`` minimises

    sum_{i observed} c_ui (1 - x_u.y_i)^2  +  w0 * sum_{i unobserved} (x_u.y_i)^2  +  lam_u |x_u|^2

where ``c_ui`` is the confidence held in the CSR data (the caller computes it, e.g.
``1 + alpha * r`` or ``1 + alpha * log(1 + r / eps)``: the kernels only read it), ``w0`` the
weight of unobserved entries and ``lam_u = reg * (n_u + w0 * n_cols) ** freq_exponent``
(Rendle et al.'s frequency-scaled regularisation; ``freq_exponent = 0`` is plain ``reg``).
Hu et al.'s model is ``w0 = 1``. Rendle et al. weight *all* entries by ``w0`` (observed ones
too); that form is this one with ``c_ui + w0`` passed as the confidence. The normal equations

    (w0 G + sum_obs (c_ui - w0) y_i y_i^T + lam_u I) x_u = sum_obs c_ui y_i,   G = Y^T Y

use the Gram matrix ``G`` computed once per half-step (the "YᵀY trick"): a row costs
O(f^2 + n_u f) per product with the matrix, never O(n_cols f).

Rows are processed in blocks (``prange`` over blocks of 64 rows, 256 when f >= 512). In the
CG solver the rows of a block advance in lockstep, so the Gram part of ``A p`` for the whole
block is one ``[block, f] x [f, f]`` product (BLAS sgemm through ``np.dot``) that reads ``G``
once per block instead of once per row: about 5x the throughput of a per-row loop at f = 64,
and what keeps f = 1024 usable (the blocked solve). The sparse part
``sum (c - w0) y_i (y_i . p)`` is a fused loop per row over rows of ``Y`` gathered once per
block. Each row's CG is still its own (own step sizes, own stopping), so the result is the
per-row algorithm's. Vectors and dot products are float32; the step sizes float64 scalars.
Measured at 1M interactions, f = 64, 15 iterations of 3 CG steps: float64 accumulation of the
dot products took 45% more time for the same final loss to 7 digits.

BLAS must be single-threaded while these kernels run: each numba thread calls sgemm itself, and
OpenBLAS's own threads then spin against numba's. Measured here (5k x 2k, 100k entries, 2
numba threads, 2 iterations): f = 128 took 13 s with OpenBLAS at its default 2 threads and
0.13 s with one; f = 1024 12 s and 2.9 s. Wrap the calls in
``threadpoolctl.threadpool_limits(1, user_api="blas")`` (or set ``OPENBLAS_NUM_THREADS=1``
before numpy is imported). :func:`gram` itself is an ordinary multi-threaded BLAS call.

Reproducibility: no randomness; rows are independent, so the result does not depend on the
thread count (up to the BLAS library's own blocking, which may differ between machines).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ._prefetch import prefetch_row

__all__ = [
    "als_half_step_cg",
    "als_half_step_cholesky",
    "als_loss",
    "gram",
    "_reference_als_half_step",
    "_reference_als_loss",
]

# reassociation lets LLVM vectorise the dot products and axpys; no "nnan"/"ninf" so a diverging
# run still shows non-finite factors. Deterministic for a given machine.
_FAST = {"reassoc", "contract", "arcp"}
_BLOCK = 64  # rows per block (f < 512): the lockstep CG's sgemm is [64, f] x [f, f]
_BLOCK_WIDE = 256  # rows per block for f >= 512: amortises sgemm's packing of the f x f Gram
_GATHER = 1 << 22  # floats (16 MiB) of gathered Y rows per block, reread by every CG step
_AHEAD = 8  # interactions ahead whose row is prefetched: 4, 8 and 16 measured alike at 33M


def gram(Y: np.ndarray) -> np.ndarray:
    """Return ``Y^T Y`` as a C-contiguous float32 ``[f, f]`` array (one BLAS sgemm call).

    float32 accumulation (blocked inside BLAS) is accurate to ~1e-6 relative, far below what
    3 CG steps resolve; float64 would cost the conversion of ``Y`` and twice the flops.
    """
    return np.ascontiguousarray(Y.T @ Y, dtype=np.float32)


@nb.njit(cache=True, nogil=True)
def _row_reg(reg, freq_exponent, n_row, w0, n_cols):
    if freq_exponent == 0.0:
        return reg
    return reg * (n_row + w0 * n_cols) ** freq_exponent


@nb.njit(cache=True, nogil=True, parallel=True, fastmath=_FAST, error_model="numpy")
def als_half_step_cg(
    indptr, indices, conf, Y, X, gram, reg, freq_exponent, w0, cg_steps, threads=1, gather=_GATHER
):
    """Update every row of ``X`` in place by ``cg_steps`` conjugate-gradient steps.

    Warm-started from the current ``X``; the ``f x f`` system matrix is never formed:
    ``A p = w0 G p + sum_obs (c - w0) y_i (y_i . p) + lam p``. A row whose residual vanishes
    stops early. A row with no entries gets ``x = 0`` (the exact minimiser).

    Parameters
    ----------
    indptr : int32 or int64 [n_rows + 1]
    indices : int32 [nnz]
        Column (other side) indices, any order within a row.
    conf : float32 [nnz] or [1]
        Confidence ``c_ui > 0`` of each observed entry; the target is 1. One value: the
        same confidence for every entry (binary data: no array of nnz to hold).
    Y : float32 [n_cols, f]
        The fixed side (C-contiguous).
    X : float32 [n_rows, f]
        The side being solved (C-contiguous), updated in place.
    gram : float32 [f, f]
        ``Y^T Y`` (:func:`gram`), C-contiguous.
    reg, freq_exponent, w0 : float
        ``lam_u = reg * (n_u + w0 * n_cols) ** freq_exponent``; ``w0`` the unobserved weight.
    cg_steps : int
        CG steps per row (3 is the usual choice with warm starts; ``f`` gives the exact
        solution in exact arithmetic).
    threads : int
        Parallel threads (``numba.get_num_threads()`` at the caller: numba cannot cache a
        kernel that asks for it). Blocks go to threads in turn, each with one gather buffer.
    gather : int
        Floats of gathered rows of ``Y`` per block (see the notes).

    Run it with BLAS limited to one thread (see the module notes): up to 100x slower otherwise.

    Notes
    -----
    The rows ``y_i`` a block needs are copied once, in the first pass, into a block buffer
    (up to ``gather`` floats; rows that do not fit are read in place) so that the
    ``cg_steps`` further passes read contiguous memory, streamed or cache-resident, instead
    of scattered rows of ``Y``: at 1M interactions and f = 64 this halves the time of a
    half-step. With 1 MiB buffers, a block of 64 popular items at 33M interactions (64 x
    370 rows on average) no longer fitted and was read in place three more times, from a
    53 MB ``Y`` far beyond the caches; 16 MiB buffers cut that item half-step by 17%.
    """
    n_rows, f = X.shape
    n_cols = Y.shape[0]
    bs = _BLOCK if f < 512 else _BLOCK_WIDE
    n_blocks = (n_rows + bs - 1) // bs
    w0f = np.float32(w0)
    zero = np.float32(0.0)
    cap = max(gather // f, 1)  # gathered rows per block
    cmask = 0 if conf.shape[0] == 1 else -1  # conf[idx & cmask]: one value, or one per entry
    widest = 1  # the most rows any block gathers
    for blk in range(n_blocks):
        lo_b = indptr[blk * bs]
        hi_b = indptr[min(blk * bs + bs, n_rows)]
        widest = max(widest, min(hi_b - lo_b, cap))
    # one gather buffer per thread, made once: a buffer per block came from each thread's
    # own malloc arena, which kept it, and the fit's peak grew by one buffer per arena
    slots = max(1, min(threads, n_blocks))
    buffers = np.empty((slots, widest, f), dtype=np.float32)
    for slot in nb.prange(slots):  # blocks slot, slot + slots, ...: one buffer each
        YG = buffers[slot]
        R = np.empty((bs, f), dtype=np.float32)
        P = np.empty((bs, f), dtype=np.float32)
        AP = np.empty((bs, f), dtype=np.float32)
        rs = np.empty(bs, dtype=np.float64)
        lam = np.empty(bs, dtype=np.float32)
        offset = np.empty(bs, dtype=np.int64)  # row b's entries at YG[offset[b]:], or -1
        for blk in range(slot, n_blocks, slots):
            start = blk * bs
            stop = min(start + bs, n_rows)
            n = stop - start
            rs[:] = 0.0
            need = min(indptr[stop] - indptr[start], cap)
            used = 0
            end = indptr[stop]
            Xb = X[start:stop]
            np.dot(Xb, gram, AP[:n])  # G x for every row of the block (G is symmetric)
            # first pass: initial residual r = b - A x, gathering the rows of Y
            for b in range(n):
                u = start + b
                x = Xb[b]
                r = R[b]
                p = P[b]
                lo = indptr[u]
                hi = indptr[u + 1]
                if lo == hi:
                    for j in range(f):
                        x[j] = zero
                        p[j] = zero
                    continue
                gathered = used + (hi - lo) <= need
                offset[b] = used if gathered else -1
                lb = np.float32(_row_reg(reg, freq_exponent, hi - lo, w0, n_cols))
                lam[b] = lb
                gx = AP[b]
                for j in range(f):
                    r[j] = -w0f * gx[j] - lb * x[j]
                for idx in range(lo, hi):
                    if idx + _AHEAD < end:  # start loading a row needed soon (_prefetch)
                        prefetch_row(Y, indices[idx + _AHEAD])
                    y = Y[indices[idx]]
                    c = conf[idx & cmask]
                    d = zero
                    if gathered:
                        g = YG[used]
                        used += 1
                        for j in range(f):
                            g[j] = y[j]
                            d += y[j] * x[j]
                    else:
                        for j in range(f):
                            d += y[j] * x[j]
                    coef = c - (c - w0f) * d
                    for j in range(f):
                        r[j] += coef * y[j]
                s = zero
                for j in range(f):
                    p[j] = r[j]
                    s += r[j] * r[j]
                rs[b] = s
            for step in range(cg_steps):
                np.dot(P[:n], gram, AP[:n])
                for b in range(n):
                    if rs[b] <= 1e-30:
                        continue
                    u = start + b
                    p = P[b]
                    ap = AP[b]
                    lb = lam[b]
                    for j in range(f):
                        ap[j] = w0f * ap[j] + lb * p[j]
                    lo = indptr[u]
                    hi = indptr[u + 1]
                    off = offset[b]
                    for idx in range(lo, hi):
                        y = YG[off + idx - lo] if off >= 0 else Y[indices[idx]]
                        d = zero
                        for j in range(f):
                            d += y[j] * p[j]
                        d *= conf[idx & cmask] - w0f
                        for j in range(f):
                            ap[j] += d * y[j]
                    pap = zero
                    for j in range(f):
                        pap += p[j] * ap[j]
                    if not pap > 0.0:  # numerical breakdown (or a singular system): stop this row
                        rs[b] = 0.0
                        for j in range(f):
                            p[j] = zero
                        continue
                    alpha = np.float32(rs[b] / pap)
                    x = Xb[b]
                    r = R[b]
                    s = zero
                    for j in range(f):
                        x[j] += alpha * p[j]
                        r[j] -= alpha * ap[j]
                        s += r[j] * r[j]
                    if s <= 1e-30:  # converged
                        rs[b] = 0.0
                        for j in range(f):
                            p[j] = zero
                        continue
                    if step == cg_steps - 1:  # no next direction needed
                        continue
                    beta = np.float32(s / rs[b])
                    for j in range(f):
                        p[j] = r[j] + beta * p[j]
                    rs[b] = s


@nb.njit(cache=True, nogil=True)
def _solve_cholesky(L, b, x):
    # solve L L^T x = b for lower-triangular L (float64), b and x float64 [f]
    f = b.shape[0]
    for i in range(f):
        s = b[i]
        for k in range(i):
            s -= L[i, k] * x[k]
        x[i] = s / L[i, i]
    for i in range(f - 1, -1, -1):
        s = x[i]
        for k in range(i + 1, f):
            s -= L[k, i] * x[k]
        x[i] = s / L[i, i]


@nb.njit(cache=True, nogil=True, parallel=True)
def als_half_step_cholesky(indptr, indices, conf, Y, X, gram, reg, freq_exponent, w0):
    """Update every row of ``X`` in place by the exact solution of its normal equations.

    Forms ``A = w0 G + sum_obs (c - w0) y_i y_i^T + lam I`` in float64 (the sum as one
    ``[f, n_u] x [n_u, f]`` product of the gathered rows) and solves it by Cholesky. Costs
    O(n_u f^2 + f^3) per row: use it for small ``f``, for fold-in of new users and as the
    reference solver; :func:`als_half_step_cg` for training. Arguments as in
    :func:`als_half_step_cg` (``X`` is only written). Raises numpy's ``LinAlgError`` when
    ``A`` is not positive definite (``reg = 0`` with a rank-deficient row).
    """
    n_rows, f = X.shape
    n_cols = Y.shape[0]
    bs = _BLOCK if f < 512 else _BLOCK_WIDE
    n_blocks = (n_rows + bs - 1) // bs
    G = gram.astype(np.float64) * w0
    cmask = 0 if conf.shape[0] == 1 else -1
    for blk in nb.prange(n_blocks):
        start = blk * bs
        stop = min(start + bs, n_rows)
        longest = 0
        for u in range(start, stop):
            longest = max(longest, indptr[u + 1] - indptr[u])
        Yu = np.empty((max(longest, 1), f), dtype=np.float64)
        Yw = np.empty((max(longest, 1), f), dtype=np.float64)
        A = np.empty((f, f), dtype=np.float64)
        rhs = np.empty(f, dtype=np.float64)
        sol = np.empty(f, dtype=np.float64)
        for u in range(start, stop):
            lo = indptr[u]
            hi = indptr[u + 1]
            n_u = hi - lo
            if n_u == 0:
                for j in range(f):
                    X[u, j] = 0.0
                continue
            for j in range(f):
                rhs[j] = 0.0
            for t in range(n_u):
                y = Y[indices[lo + t]]
                c = np.float64(conf[(lo + t) & cmask])
                cw = c - w0
                for j in range(f):
                    v = np.float64(y[j])
                    Yu[t, j] = v
                    Yw[t, j] = cw * v
                    rhs[j] += c * v
            np.dot(Yw[:n_u].T, Yu[:n_u], A)
            lam = _row_reg(reg, freq_exponent, n_u, w0, n_cols)
            for i in range(f):
                for j in range(f):
                    A[i, j] += G[i, j]
                A[i, i] += lam
            L = np.linalg.cholesky(A)  # allocates f x f per row; O(f^3) work dwarfs it
            _solve_cholesky(L, rhs, sol)
            for j in range(f):
                X[u, j] = sol[j]


@nb.njit(cache=True, nogil=True, parallel=True, fastmath=_FAST, error_model="numpy")
def als_loss(indptr, indices, conf, X, Y, gram, reg, freq_exponent, w0):
    """Return the full iALS objective (float) for users ``X`` and items ``Y``.

    ``sum_obs c (1 - s)^2 + w0 sum_unobs s^2 + sum_u lam_u |x_u|^2 + sum_i lam_i |y_i|^2``
    with ``s = x_u . y_i``, ``lam_u = reg (n_u + w0 n_items)^freq_exponent`` and
    ``lam_i = reg (n_i + w0 n_users)^freq_exponent``, computed cheaply as
    ``w0 x_u^T G x_u + sum_obs [c (1 - s)^2 - w0 s^2]`` per user (``G = Y^T Y``, ``gram``):
    O(n_users f^2 + nnz f). ``indptr, indices, conf`` is the users x items CSR. The total is
    returned unnormalised; divide by ``sum c + w0 (n_users n_items - nnz)`` for a per-entry
    value comparable across data sets.
    """
    n_users, f = X.shape
    n_items = Y.shape[0]
    counts = np.zeros(n_items, dtype=np.int64)
    for idx in range(indices.shape[0]):
        counts[indices[idx]] += 1
    bs = _BLOCK if f < 512 else _BLOCK_WIDE
    n_blocks = (n_users + bs - 1) // bs
    w0f = np.float32(w0)
    cmask = 0 if conf.shape[0] == 1 else -1
    total = 0.0
    for blk in nb.prange(n_blocks):
        start = blk * bs
        stop = min(start + bs, n_users)
        n = stop - start
        GX = np.empty((bs, f), dtype=np.float32)
        end = indptr[stop]
        np.dot(X[start:stop], gram, GX[:n])
        part = 0.0
        for b in range(n):
            u = start + b
            x = X[u]
            gx = GX[b]
            quad = np.float32(0.0)
            norm = np.float32(0.0)
            for j in range(f):
                quad += x[j] * gx[j]
                norm += x[j] * x[j]
            obs = 0.0
            for idx in range(indptr[u], indptr[u + 1]):
                if idx + _AHEAD < end:
                    prefetch_row(Y, indices[idx + _AHEAD])
                y = Y[indices[idx]]
                s = np.float32(0.0)
                for j in range(f):
                    s += y[j] * x[j]
                c = conf[idx & cmask]
                e = np.float32(1.0) - s
                obs += np.float64(c * e * e - w0f * s * s)
            lam = _row_reg(reg, freq_exponent, indptr[u + 1] - indptr[u], w0, n_items)
            part += w0 * np.float64(quad) + obs + lam * np.float64(norm)
        total += part
    item_part = 0.0
    for i in nb.prange(n_items):
        y = Y[i]
        norm = np.float32(0.0)
        for j in range(f):
            norm += y[j] * y[j]
        item_part += _row_reg(reg, freq_exponent, counts[i], w0, n_users) * np.float64(norm)
    return total + item_part


# --- slow NumPy references, used only by tests ---------------------------------------------
def _reference_als_half_step(
    indptr: np.ndarray,
    indices: np.ndarray,
    conf: np.ndarray,
    Y: np.ndarray,
    reg: float,
    freq_exponent: float,
    w0: float,
) -> np.ndarray:
    """The exact half-step from the definition: dense weights per row, float64 solve."""
    n_rows = len(indptr) - 1
    n_cols, f = Y.shape
    Y64 = Y.astype(np.float64)
    out = np.zeros((n_rows, f))
    for u in range(n_rows):
        cols = indices[indptr[u] : indptr[u + 1]]
        if cols.size == 0:
            continue
        c = np.full(n_cols, float(w0))
        c[cols] = conf[indptr[u] : indptr[u + 1]]
        p = np.zeros(n_cols)
        p[cols] = 1.0
        lam = reg * (cols.size + w0 * n_cols) ** freq_exponent
        A = Y64.T @ (c[:, None] * Y64) + lam * np.eye(f)
        out[u] = np.linalg.solve(A, Y64.T @ (c * p))
    return out


def _reference_als_loss(
    indptr: np.ndarray,
    indices: np.ndarray,
    conf: np.ndarray,
    X: np.ndarray,
    Y: np.ndarray,
    reg: float,
    freq_exponent: float,
    w0: float,
) -> float:
    """The objective from the definition, over the dense users x items matrix."""
    n_users, n_items = X.shape[0], Y.shape[0]
    C = np.full((n_users, n_items), float(w0))
    P = np.zeros((n_users, n_items))
    for u in range(n_users):
        cols = indices[indptr[u] : indptr[u + 1]]
        C[u, cols] = conf[indptr[u] : indptr[u + 1]]
        P[u, cols] = 1.0
    S = X.astype(np.float64) @ Y.astype(np.float64).T
    n_u = (P > 0).sum(1)
    n_i = (P > 0).sum(0)
    lam_u = reg * (n_u + w0 * n_items) ** freq_exponent
    lam_i = reg * (n_i + w0 * n_users) ** freq_exponent
    reg_term = (lam_u * (X.astype(np.float64) ** 2).sum(1)).sum()
    reg_term += (lam_i * (Y.astype(np.float64) ** 2).sum(1)).sum()
    return float((C * (P - S) ** 2).sum() + reg_term)
