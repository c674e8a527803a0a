"""SLIM: sparse linear item-item weights by non-negative ElasticNet per item.

Ning & Karypis (2011), "SLIM: Sparse linear methods for top-N recommender systems". For every
target item ``j`` the column ``w_j`` of ``W`` solves

    min_w  1/2 ||x_j - X w||^2 + l1 * |w|_1 + 1/2 * l2 * ||w||^2   s.t.  w >= 0,  w_j = 0

where ``X`` is the user x item matrix and ``x_j`` its column ``j``. Expanding the square, only
the item Gram matrix ``G = X^T X`` enters: ``1/2 w^T G w - G[:, j]^T w`` (+ const), so each
target is a small quadratic program solved here by cyclic coordinate descent (Friedman,
Hastie & Tibshirani 2010, "Regularization paths for generalized linear models via coordinate
descent"), with glmnet's active-set strategy: a full sweep, then sweeps over the nonzero
weights, then a full sweep again to let the KKT conditions of the zero weights be checked. A
coordinate update is ``w_k = max(0, (r_k + G_kk w_k - l1) / (G_kk + l2))`` with the residual
gradient ``r = G[:, j] - G w`` kept up to date.

Cyclic coordinate descent crawls on correlated items (hundreds of sweeps on MovieLens-like
data), so after a few active-set sweeps the active set gets an exact step: with the signs
known, the restricted problem is the linear system ``(G_SS + l2 I) w_S = G_Sj - l1``, solved by
Cholesky; if a weight of the solution is not positive, the step stops where the first weight
reaches zero (Lawson & Hanson's NNLS move; the objective still decreases). The optimum is then
typically reached in 20-50 sweeps instead of several hundred. ``newton_max`` bounds the active
set size for which the ``O(|S|^3)`` step is taken.

Two ways to get ``G``:

* :func:`slim_from_gram`: the full dense Gram matrix (float32 is enough; ``n_items^2`` values,
  the caller checks the memory). Exact SLIM.
* :func:`slim_from_candidates`: fsSLIM (Ning & Karypis 2011, section 4.3): each target may only
  use the items of its candidate list (e.g. its top-N neighbours from
  :func:`lensrec.kernels.knn.item_knn`); the Gram matrix restricted to those items is gathered
  per target from the full Gram matrix, computed once: dense while it fits in
  ``_DENSE_GRAM_BYTES``, else as a sparse co-occurrence matrix while that fits in
  ``_SPARSE_GRAM_BYTES``, else (low memory, slow) summed per target from the interactions.

The stopping rule is scikit-learn's: a sweep whose largest weight change is at most
``tol * max|w|``. ``max_iter`` bounds the sweeps (full or over the active set).

Mapping from scikit-learn's ``ElasticNet(alpha, l1_ratio, positive=True, fit_intercept=False)``
(the SLIM of RecBole and of Ferrari Dacrema et al.), whose loss is this one divided by
``n_users``: ``l1 = alpha * l1_ratio * n_users``, ``l2 = alpha * (1 - l1_ratio) * n_users``.

Result orientation: ``W`` is ``[n_items, n_items]`` with rows = source (history) items and
columns = target items; a user's scores are ``history_row @ W``. ``W`` has a zero diagonal and
only positive entries.
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from ..errors import ConfigError
from ._csr import csr_parts
from .linear import gram_matrix

__all__ = [
    "SlimResult",
    "slim_from_gram",
    "slim_from_candidates",
    "_reference_slim",
    "_kkt_violation",
]

_BLOCK_BYTES = 64 << 20  # dense output buffer per block of targets in slim_from_gram
_DENSE_GRAM_BYTES = 1 << 30  # fsSLIM gathers from a dense float32 Gram matrix up to this size
_SPARSE_GRAM_BYTES = 2 << 30  # ... else from a sparse one up to this size (else: interactions)
_NEWTON_AFTER = 6  # active-set sweeps before an exact step on the active set


class SlimResult(NamedTuple):
    """SLIM weights as a CSR ``W`` (rows: source items, columns: target items)."""

    indptr: npt.NDArray[np.int64]
    """``[n_items + 1]``."""
    indices: npt.NDArray[np.int32]
    """Target item of each weight, sorted within a row."""
    data: npt.NDArray[np.float32]
    """The positive weights."""
    sweeps: npt.NDArray[np.int32]
    """``[n_items]`` sweeps used per target; ``max_iter`` means the tolerance was not met."""


@nb.njit(cache=True, nogil=True)
def _update(a, c, r, w, l1, l2):
    """One coordinate step on ``c``; returns the change of ``w[c]`` (``r`` not touched)."""
    acc = np.float64(a[c, c])
    den = acc + l2
    if den <= 0.0:  # an item with no interactions and no l2: its weight stays 0
        return 0.0
    old = w[c]
    new = (r[c] + acc * old - l1) / den
    if new < 0.0:
        new = 0.0
    w[c] = new
    return new - old


@nb.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _newton(a, b, act, na, l1, l2, w, chol, z):
    """Exact step on the active set ``S = act[:na]`` (all ``w[S] > 0``).

    With the signs fixed, the problem restricted to ``S`` is the linear system
    ``(A_SS + l2 I) z = b_S - l1``, solved by Cholesky in ``chol`` (``[>= na, >= na]``). If
    every ``z > 0`` the weights jump to ``z``; otherwise they move from ``w`` towards ``z``
    until the first weight reaches zero (the objective decreases along that segment, as in
    Lawson & Hanson's NNLS). Returns False when the system is not positive definite (no step).
    """
    for s in range(na):
        cs = act[s]
        row = a[cs]
        for t in range(s + 1):
            chol[s, t] = row[act[t]]
        chol[s, s] += l2
    for j in range(na):
        d = chol[j, j]
        for k in range(j):
            d -= chol[j, k] * chol[j, k]
        if not d > 0.0:
            return False
        d = np.sqrt(d)
        chol[j, j] = d
        for i in range(j + 1, na):
            v = chol[i, j]
            for k in range(j):
                v -= chol[i, k] * chol[j, k]
            chol[i, j] = v / d
    for i in range(na):
        v = b[act[i]] - l1
        for k in range(i):
            v -= chol[i, k] * z[k]
        z[i] = v / chol[i, i]
    for i in range(na - 1, -1, -1):
        v = z[i]
        for k in range(i + 1, na):
            v -= chol[k, i] * z[k]
        z[i] = v / chol[i, i]
    step = 1.0
    hit = -1
    for i in range(na):
        if z[i] <= 0.0:
            wi = w[act[i]]
            t = wi / (wi - z[i])
            if t < step:
                step = t
                hit = i
    for i in range(na):
        c = act[i]
        v = w[c] + step * (z[i] - w[c])
        w[c] = v if v > 0.0 and i != hit else 0.0
    return True


@nb.njit(cache=True, nogil=True)
def _cd(a, b, m, excl, l1, l2, max_iter, tol, w, r, act, chol, z):
    """Coordinate descent for ``min 1/2 w'Aw - b'w + l1|w|_1 + l2/2 |w|^2, w >= 0``.

    ``a`` is ``[>= m, >= m]`` (only ``a[:m, :m]`` is used), ``b`` ``[>= m]``; coordinate
    ``excl`` (or -1) is held at 0. ``w``, ``r`` (float64) and ``act`` (int) are work arrays of
    length ``>= m``; ``w[:m]`` holds the solution. ``chol`` ``[p, p]`` and ``z`` ``[p]`` are
    the work space of the exact active-set step, taken when the active set has at most ``p``
    items (``p = 0``: never). Returns the number of sweeps.
    """
    for t in range(m):
        w[t] = 0.0
        r[t] = b[t]
    sweeps = 0
    while sweeps < max_iter:
        # full sweep: every coordinate, full residual kept
        sweeps += 1
        max_d = 0.0
        max_w = 0.0
        na = 0
        for c in range(m):
            if c == excl:
                continue
            d = _update(a, c, r, w, l1, l2)
            if d != 0.0:
                row = a[c]
                for t in range(m):
                    r[t] -= d * row[t]
                if abs(d) > max_d:
                    max_d = abs(d)
            if w[c] > 0.0:
                act[na] = c
                na += 1
                if w[c] > max_w:
                    max_w = w[c]
        if max_d <= tol * max_w:
            break
        # active set: only the nonzero weights, residual kept on them only; a few sweeps,
        # then an exact step on the active set when it is small enough for ``chol``
        newton = 0 < na <= chol.shape[0]
        inner = 0
        while sweeps < max_iter:
            sweeps += 1
            inner += 1
            max_d = 0.0
            max_w = 0.0
            for s in range(na):
                c = act[s]
                d = _update(a, c, r, w, l1, l2)
                if d != 0.0:
                    row = a[c]
                    for s2 in range(na):
                        t = act[s2]
                        r[t] -= d * row[t]
                    if abs(d) > max_d:
                        max_d = abs(d)
                if w[c] > max_w:
                    max_w = w[c]
            if max_d <= tol * max_w or (newton and inner >= _NEWTON_AFTER):
                break
        if newton and sweeps < max_iter:
            sweeps += 1
            nk = 0
            for s in range(na):
                if w[act[s]] > 0.0:
                    act[nk] = act[s]
                    nk += 1
            na = nk
            _newton(a, b, act, na, l1, l2, w, chol, z)
        # the inactive residuals are stale: recompute r = b - A w from the active weights
        for t in range(m):
            r[t] = b[t]
        for s in range(na):
            c = act[s]
            wc = w[c]
            if wc != 0.0:
                row = a[c]
                for t in range(m):
                    r[t] -= wc * row[t]
    return sweeps


@nb.njit(cache=True, parallel=True, nogil=True)
def slim_gram_kernel(gram, start, stop, l1, l2, max_iter, tol, newton_max, n_blocks, out, sweeps):
    """Targets ``start..stop-1`` on the dense Gram matrix ``gram`` ``[n, n]`` (symmetric).

    Row ``j - start`` of ``out`` ``[stop - start, n]`` (float32) receives ``w_j``; ``sweeps[j]``
    the sweeps used. Targets are dealt round-robin to ``n_blocks`` work blocks; each target
    depends only on ``gram``, so the result is the same for any thread count.
    """
    n = gram.shape[0]
    for blk in nb.prange(n_blocks):
        w = np.empty(n, dtype=np.float64)
        r = np.empty(n, dtype=np.float64)
        act = np.empty(n, dtype=np.int64)
        nmax = min(n, newton_max)
        chol = np.empty((nmax, nmax), dtype=np.float64)
        z = np.empty(nmax, dtype=np.float64)
        for j in range(start + blk, stop, n_blocks):
            sweeps[j] = _cd(gram, gram[j], n, j, l1, l2, max_iter, tol, w, r, act, chol, z)
            o = out[j - start]
            for t in range(n):
                o[t] = w[t]


@nb.njit(cache=True, parallel=True, nogil=True)
def slim_candidates_kernel(
    user_indptr,
    user_items,
    user_values,
    item_indptr,
    item_users,
    item_values,
    cand_indptr,
    cand_items,
    max_cand,
    l1,
    l2,
    max_iter,
    tol,
    newton_max,
    n_blocks,
    out,
    sweeps,
):
    """fsSLIM: target ``j`` may only use ``cand_items[cand_indptr[j]:cand_indptr[j+1]]``.

    Candidates must be distinct and must not contain ``j``; ``max_cand`` is the longest list.
    For each target the Gram matrix of ``candidates + [j]`` is summed over the users of those
    items (each user once: a stamp array marks the users seen for ``j``), then solved by
    :func:`_cd`. ``out`` (float32, aligned with ``cand_items``) receives the weights,
    ``sweeps[j]`` the sweeps used. Same result for any thread count.
    """
    n_items = item_indptr.size - 1
    n_users = user_indptr.size - 1
    for blk in nb.prange(n_blocks):
        size = max_cand + 1
        g = np.empty((size, size), dtype=np.float64)
        bvec = np.empty(size, dtype=np.float64)
        w = np.empty(size, dtype=np.float64)
        r = np.empty(size, dtype=np.float64)
        act = np.empty(size, dtype=np.int64)
        nmax = min(size, newton_max)
        chol = np.empty((nmax, nmax), dtype=np.float64)
        z = np.empty(nmax, dtype=np.float64)
        lp = np.empty(size, dtype=np.int64)
        lv = np.empty(size, dtype=np.float64)
        pos = np.full(n_items, -1, dtype=np.int64)
        stamp = np.full(n_users, -1, dtype=np.int64)
        for j in range(blk, n_items, n_blocks):
            c0 = cand_indptr[j]
            m = cand_indptr[j + 1] - c0
            if m == 0:
                sweeps[j] = 0
                continue
            for t in range(m):
                pos[cand_items[c0 + t]] = t
            pos[j] = m
            for s in range(m + 1):
                for t in range(m + 1):
                    g[s, t] = 0.0
            # Gram of candidates + [j], one pass per user who has any of them
            for s in range(m + 1):
                a = j if s == m else cand_items[c0 + s]
                for p in range(item_indptr[a], item_indptr[a + 1]):
                    u = item_users[p]
                    if stamp[u] == j:
                        continue
                    stamp[u] = j
                    nl = 0
                    for q in range(user_indptr[u], user_indptr[u + 1]):
                        pb = pos[user_items[q]]
                        if pb >= 0:
                            lp[nl] = pb
                            lv[nl] = user_values[q]
                            nl += 1
                    for x in range(nl):
                        gx = g[lp[x]]
                        vx = lv[x]
                        for y in range(nl):
                            gx[lp[y]] += vx * lv[y]
            for t in range(m):
                bvec[t] = g[m, t]
            sweeps[j] = _cd(g, bvec, m, -1, l1, l2, max_iter, tol, w, r, act, chol, z)
            for t in range(m):
                out[c0 + t] = w[t]
                pos[cand_items[c0 + t]] = -1
            pos[j] = -1


@nb.njit(cache=True, parallel=True, nogil=True)
def slim_candidates_dense_kernel(
    gram,
    cand_indptr,
    cand_items,
    max_cand,
    l1,
    l2,
    max_iter,
    tol,
    newton_max,
    n_blocks,
    out,
    sweeps,
):
    """fsSLIM with each target's restricted Gram matrix gathered from the dense ``gram``.

    As :func:`slim_candidates_kernel` (same candidates, outputs and thread independence), but
    the ``(m + 1)^2`` entries of target ``j``'s Gram matrix (candidates, then ``j``) are read
    from ``gram`` ``[n_items, n_items]`` (symmetric) instead of summed over the interactions.
    """
    n_items = cand_indptr.size - 1
    for blk in nb.prange(n_blocks):
        size = max_cand + 1
        g = np.empty((size, size), dtype=np.float64)
        bvec = np.empty(size, dtype=np.float64)
        w = np.empty(size, dtype=np.float64)
        r = np.empty(size, dtype=np.float64)
        act = np.empty(size, dtype=np.int64)
        nmax = min(size, newton_max)
        chol = np.empty((nmax, nmax), dtype=np.float64)
        z = np.empty(nmax, dtype=np.float64)
        for j in range(blk, n_items, n_blocks):
            c0 = cand_indptr[j]
            m = cand_indptr[j + 1] - c0
            if m == 0:
                sweeps[j] = 0
                continue
            for s in range(m + 1):
                row = gram[j if s == m else cand_items[c0 + s]]
                gs = g[s]
                for t in range(s + 1):
                    v = np.float64(row[j if t == m else cand_items[c0 + t]])
                    gs[t] = v
                    g[t, s] = v
            for t in range(m):
                bvec[t] = g[m, t]
            sweeps[j] = _cd(g, bvec, m, -1, l1, l2, max_iter, tol, w, r, act, chol, z)
            for t in range(m):
                out[c0 + t] = w[t]


@nb.njit(cache=True, nogil=True)
def _cooccurrence_row(
    i,
    item_indptr,
    item_users,
    item_values,
    user_indptr,
    user_items,
    user_values,
    acc,
    mark,
    touched,
):
    """Sum row ``i`` of ``X^T X`` into ``acc`` at the columns listed (unsorted) in
    ``touched``; returns their number. ``mark[c] == i`` flags the columns already listed."""
    nt = 0
    for p in range(item_indptr[i], item_indptr[i + 1]):
        u = item_users[p]
        wu = np.float64(item_values[p])
        for q in range(user_indptr[u], user_indptr[u + 1]):
            c = user_items[q]
            if mark[c] != i:
                mark[c] = i
                acc[c] = 0.0
                touched[nt] = c
                nt += 1
            acc[c] += wu * user_values[q]
    return nt


@nb.njit(cache=True, parallel=True, nogil=True)
def cooccurrence_counts(item_indptr, item_users, user_indptr, user_items, n_blocks, counts):
    """``counts[i]``: the number of items sharing a user with item ``i`` (itself included)."""
    n_items = item_indptr.size - 1
    for blk in nb.prange(n_blocks):
        mark = np.full(n_items, -1, dtype=np.int64)
        for i in range(blk, n_items, n_blocks):
            nt = 0
            for p in range(item_indptr[i], item_indptr[i + 1]):
                u = item_users[p]
                for q in range(user_indptr[u], user_indptr[u + 1]):
                    c = user_items[q]
                    if mark[c] != i:
                        mark[c] = i
                        nt += 1
            counts[i] = nt


@nb.njit(cache=True, parallel=True, nogil=True)
def cooccurrence_fill(
    item_indptr, item_users, item_values, user_indptr, user_items, user_values, n_blocks,
    g_indptr, g_indices, g_data,
):  # fmt: skip
    """Fill the CSR ``X^T X`` (rows sorted) whose ``g_indptr`` came from the counts."""
    n_items = item_indptr.size - 1
    for blk in nb.prange(n_blocks):
        acc = np.zeros(n_items, dtype=np.float64)
        mark = np.full(n_items, -1, dtype=np.int64)
        touched = np.empty(n_items, dtype=np.int32)
        for i in range(blk, n_items, n_blocks):
            nt = _cooccurrence_row(
                i, item_indptr, item_users, item_values, user_indptr, user_items, user_values,
                acc, mark, touched,
            )  # fmt: skip
            cols = touched[:nt]
            cols.sort()
            o = g_indptr[i]
            for t in range(nt):
                c = cols[t]
                g_indices[o + t] = c
                g_data[o + t] = acc[c]


@nb.njit(cache=True, parallel=True, nogil=True)
def slim_candidates_sparse_kernel(
    g_indptr, g_indices, g_data, cand_indptr, cand_items, max_cand, l1, l2, max_iter, tol,
    newton_max, n_blocks, out, sweeps,
):  # fmt: skip
    """fsSLIM with each target's restricted Gram matrix gathered from the sparse ``X^T X``.

    As :func:`slim_candidates_dense_kernel`, with the Gram matrix a CSR with sorted rows
    (``g_*``); a row is scanned when it is short compared with the candidate list, else
    each candidate is looked up by binary search.
    """
    n_items = cand_indptr.size - 1
    for blk in nb.prange(n_blocks):
        size = max_cand + 1
        g = np.empty((size, size), dtype=np.float64)
        bvec = np.empty(size, dtype=np.float64)
        w = np.empty(size, dtype=np.float64)
        r = np.empty(size, dtype=np.float64)
        act = np.empty(size, dtype=np.int64)
        nmax = min(size, newton_max)
        chol = np.empty((nmax, nmax), dtype=np.float64)
        z = np.empty(nmax, dtype=np.float64)
        pos = np.full(n_items, -1, dtype=np.int64)
        for j in range(blk, n_items, n_blocks):
            c0 = cand_indptr[j]
            m = cand_indptr[j + 1] - c0
            if m == 0:
                sweeps[j] = 0
                continue
            for t in range(m):
                pos[cand_items[c0 + t]] = t
            pos[j] = m
            for s in range(m + 1):
                a = j if s == m else cand_items[c0 + s]
                gs = g[s]
                for t in range(m + 1):
                    gs[t] = 0.0
                lo = g_indptr[a]
                hi = g_indptr[a + 1]
                if hi - lo <= 8 * (m + 1):
                    for q in range(lo, hi):
                        pb = pos[g_indices[q]]
                        if pb >= 0:
                            gs[pb] = g_data[q]
                else:
                    for t in range(m + 1):
                        b = j if t == m else cand_items[c0 + t]
                        q = lo + np.searchsorted(g_indices[lo:hi], b)
                        if q < hi and g_indices[q] == b:
                            gs[t] = g_data[q]
            for t in range(m):
                bvec[t] = g[m, t]
            sweeps[j] = _cd(g, bvec, m, -1, l1, l2, max_iter, tol, w, r, act, chol, z)
            for t in range(m):
                out[c0 + t] = w[t]
                pos[cand_items[c0 + t]] = -1
            pos[j] = -1


def _check(l1: float, l2: float, max_iter: int, tol: float, newton_max: int) -> None:
    if int(newton_max) < 0:
        raise ConfigError(f"newton_max must be >= 0; got {newton_max!r}")
    if not (l1 >= 0 and l2 >= 0):
        raise ConfigError(f"l1 and l2 must be >= 0; got l1={l1!r}, l2={l2!r}")
    if int(max_iter) < 1:
        raise ConfigError(f"max_iter (sweeps) must be >= 1; got {max_iter!r}")
    if not tol >= 0:
        raise ConfigError(f"tol must be >= 0; got {tol!r}")


def _n_blocks(n: int) -> int:
    return max(1, min(n, 8 * nb.get_num_threads()))


def _result_from_targets(
    t_indptr: np.ndarray, sources: np.ndarray, weights: np.ndarray, n: int, sweeps: np.ndarray
) -> SlimResult:
    """Per-target lists (CSR of ``W^T``) -> CSR of ``W``, keeping positive weights only."""
    wt = sp.csr_matrix((weights, sources, t_indptr), shape=(n, n))
    wt.eliminate_zeros()
    w = wt.T.tocsr()
    w.sort_indices()
    return SlimResult(*csr_parts(w), sweeps)


def slim_from_gram(
    gram: np.ndarray,
    l1: float,
    l2: float,
    *,
    max_iter: int = 100,
    tol: float = 1e-4,
    newton_max: int = 512,
) -> SlimResult:
    """Exact SLIM on a dense item Gram matrix ``G = X^T X``.

    Parameters
    ----------
    gram
        Symmetric ``[n_items, n_items]`` float32 or float64 (float32 halves the memory and is
        plenty: the solves run in float64), e.g. from
        :func:`lensrec.kernels.linear.gram_matrix`.
    l1, l2
        L1 and L2 penalties, in the units of ``1/2 ||x_j - X w||^2`` (see the module docstring
        for scikit-learn's ``alpha`` / ``l1_ratio``).
    max_iter
        Sweeps per target (full or active-set; an exact active-set step counts as one).
    tol
        Stop when a sweep changes no weight by more than ``tol * max|w|``.
    newton_max
        Largest active set given an exact (Cholesky) step; 0 gives plain coordinate descent.

    Returns
    -------
    SlimResult
        CSR of ``W`` (rows: source items, columns: target items; scores = ``history @ W``).
        Targets are solved in blocks; besides ``gram``, a float32 buffer of at most ~64 MiB.

    Raises
    ------
    ConfigError
        Negative penalties, ``max_iter < 1``, negative ``tol`` or a non-square ``gram``.
    """
    _check(l1, l2, max_iter, tol, newton_max)
    if gram.ndim != 2 or gram.shape[0] != gram.shape[1]:
        raise ConfigError(f"gram must be square; got shape {gram.shape}")
    n = gram.shape[0]
    gram = np.ascontiguousarray(gram)
    sweeps = np.zeros(n, dtype=np.int32)
    block = max(1, min(n, _BLOCK_BYTES // max(1, 4 * n)))
    t_counts = np.zeros(n, dtype=np.int64)
    src_parts: list[np.ndarray] = []
    val_parts: list[np.ndarray] = []
    for start in range(0, n, block):
        stop = min(n, start + block)
        out = np.empty((stop - start, n), dtype=np.float32)
        slim_gram_kernel(
            gram,
            start,
            stop,
            float(l1),
            float(l2),
            int(max_iter),
            float(tol),
            int(newton_max),
            _n_blocks(stop - start),
            out,
            sweeps,
        )
        rows, cols = np.nonzero(out > 0)
        t_counts[start:stop] = np.bincount(rows, minlength=stop - start)
        src_parts.append(cols.astype(np.int32))
        val_parts.append(out[rows, cols])
    t_indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(t_counts, out=t_indptr[1:])
    sources = np.concatenate(src_parts) if src_parts else np.empty(0, np.int32)
    weights = np.concatenate(val_parts) if val_parts else np.empty(0, np.float32)
    return _result_from_targets(t_indptr, sources, weights, n, sweeps)


def slim_from_candidates(
    indptr: npt.NDArray[np.integer],
    indices: npt.NDArray[np.int32],
    data: npt.NDArray[np.floating],
    n_items: int,
    cand_indptr: npt.NDArray[np.integer],
    cand_indices: npt.NDArray[np.int32],
    l1: float,
    l2: float,
    *,
    max_iter: int = 100,
    tol: float = 1e-4,
    newton_max: int = 512,
) -> SlimResult:
    """fsSLIM: SLIM with each target's weights restricted to a candidate list.

    Parameters
    ----------
    indptr, indices, data
        The user x item interaction matrix (CSR, ``n_users + 1`` indptr).
    n_items
        Number of items.
    cand_indptr, cand_indices
        CSR ``[n_items, n_items]``: row ``j`` lists the items target ``j`` may use, e.g. the
        ``item_knn`` result (its row ``j``: ``j``'s neighbours). ``j`` itself and repeats are
        dropped.
    l1, l2, max_iter, tol, newton_max
        As in :func:`slim_from_gram`.

    Returns
    -------
    SlimResult
        CSR of ``W`` (rows: source items, columns: target items). With every other item as a
        candidate the result equals :func:`slim_from_gram`'s.

    Notes
    -----
    Each target's ``(N + 1)^2`` Gram matrix is gathered from ``G = X^T X`` computed once:

    * dense float32 (:func:`lensrec.kernels.linear.gram_matrix`) while ``4 n_items^2`` bytes
      are at most ``_DENSE_GRAM_BYTES`` (1 GiB: up to 16,384 items);
    * else a CSR of the co-occurring pairs (8 bytes per pair, counted first) while that is at
      most ``_SPARSE_GRAM_BYTES`` (2 GiB);
    * else summed per target from the interactions (no extra memory, but each target reads
      every row of every user of its candidates: 260 s instead of ~2 s on synthetic 1M).

    Beside that, ``O(N^2)`` work space per thread. The result does not depend on the source
    (the same Gram entries; exactly so for integer-valued data).
    """
    _check(l1, l2, max_iter, tol, newton_max)
    indptr = np.asarray(indptr)
    n_users = indptr.size - 1
    user_m = sp.csr_matrix(
        (np.asarray(data, np.float32), np.asarray(indices, np.int32), indptr),
        shape=(n_users, n_items),
    )
    # candidates: drop the diagonal and repeats, sort each row
    cand_indptr = np.asarray(cand_indptr, np.int64)
    cand_indices = np.asarray(cand_indices, np.int32)
    rows = np.repeat(np.arange(n_items, dtype=np.int32), np.diff(cand_indptr))
    keep = cand_indices != rows
    cand = sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (rows[keep], cand_indices[keep])),
        shape=(n_items, n_items),
    )  # built from (row, column) pairs: repeats summed, rows sorted
    c_indptr, c_indices, _ = csr_parts(cand)
    max_cand = int(np.diff(c_indptr).max()) if n_items else 0
    out = np.zeros(c_indices.size, dtype=np.float32)
    sweeps = np.zeros(n_items, dtype=np.int32)
    if n_items and c_indices.size:
        targets = (c_indptr, c_indices, max_cand)
        solver = (float(l1), float(l2), int(max_iter), float(tol), int(newton_max))
        _candidate_weights(user_m, n_items, targets, solver, _n_blocks(n_items), out, sweeps)
    return _result_from_targets(c_indptr, c_indices, out, n_items, sweeps)


def _candidate_weights(
    user_m: sp.csr_matrix,
    n_items: int,
    targets: tuple[np.ndarray, np.ndarray, int],
    solver: tuple[float, float, int, float, int],
    blocks: int,
    out: np.ndarray,
    sweeps: np.ndarray,
) -> None:
    """Fill ``out`` and ``sweeps`` by the fastest fsSLIM kernel whose Gram matrix fits.

    Measured on synthetic 1M (6,040 x 3,706, 200 candidates, 2 threads, busy machine; CPU
    seconds): interactions 91, sparse co-occurrence 6.2 (at this density ``G`` is nearly
    full, so the dense form is the better one), dense 1.1.
    """
    if 4 * n_items * n_items <= _DENSE_GRAM_BYTES:
        gram = gram_matrix(user_m.indptr, user_m.indices, user_m.data, n_items, np.float32)
        slim_candidates_dense_kernel(gram, *targets, *solver, blocks, out, sweeps)
        return
    item_m = user_m.tocsc()
    users = csr_parts(user_m, None)
    items = csr_parts(item_m, None)
    counts = np.zeros(n_items, dtype=np.int64)
    cooccurrence_counts(items[0], items[1], users[0], users[1], blocks, counts)
    g_indptr = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(counts, out=g_indptr[1:])
    nnz = int(g_indptr[-1])
    if 8 * nnz <= _SPARSE_GRAM_BYTES:
        g_indices = np.empty(nnz, dtype=np.int32)
        g_data = np.empty(nnz, dtype=np.float32)
        cooccurrence_fill(*items, *users, blocks, g_indptr, g_indices, g_data)
        slim_candidates_sparse_kernel(
            g_indptr, g_indices, g_data, *targets, *solver, blocks, out, sweeps
        )
        return
    slim_candidates_kernel(*users, *items, *targets, *solver, blocks, out, sweeps)


def _reference_slim(
    x: np.ndarray,
    l1: float,
    l2: float,
    sweeps: int = 500,
    candidates: list[list[int]] | None = None,
    tol: float = 0.0,
) -> np.ndarray:
    """Plain coordinate descent on the residual ``x_j - X w`` (tests only).

    ``x`` is a small dense user x item array; returns the dense ``W`` (source x target). Every
    coordinate step recomputes the residual from scratch. Stops after ``sweeps`` sweeps or once
    no weight moved by more than ``tol`` in a sweep.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[1]
    out = np.zeros((n, n))
    for j in range(n):
        allowed = [k for k in range(n) if k != j] if candidates is None else candidates[j]
        w = np.zeros(n)
        for _ in range(sweeps):
            moved = 0.0
            for k in allowed:
                if k == j:
                    continue
                col = x[:, k]
                sq = col @ col
                if sq + l2 == 0:
                    continue
                resid = x[:, j] - x @ w
                z = col @ resid + sq * w[k]
                new = max(0.0, (z - l1) / (sq + l2))
                moved = max(moved, abs(new - w[k]))
                w[k] = new
            if moved <= tol:  # converged: a fixed sweep count can stop short on correlated items
                break
        out[:, j] = w
    return out


def _kkt_violation(x: np.ndarray, w: np.ndarray, l1: float, l2: float) -> float:
    """Largest violation of SLIM's optimality conditions by ``w`` (tests only).

    For target ``j`` and source ``k != j`` the gradient of the smooth part plus ``l1`` is
    ``g_k = (G w_j)_k - G_kj + l1 + l2 w_kj``; at the optimum ``g_k = 0`` where ``w_kj > 0``
    and ``g_k >= 0`` where ``w_kj = 0``. Also flags negative weights and a nonzero diagonal.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    g = x.T @ x
    grad = g @ w - g + l1 + l2 * w
    n = w.shape[0]
    off = ~np.eye(n, dtype=bool)
    pos = (w > 0) & off
    zero = (w == 0) & off
    viol = 0.0
    if pos.any():
        viol = max(viol, float(np.abs(grad[pos]).max()))
    if zero.any():
        viol = max(viol, float(np.maximum(-grad[zero], 0).max()))
    viol = max(viol, float(np.maximum(-w, 0).max()), float(np.abs(np.diag(w)).max()))
    return viol
