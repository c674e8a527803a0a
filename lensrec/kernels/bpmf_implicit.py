"""BPMF with implicit feedback (Bayesian SVD++, and its "flipped" item side) by Gibbs sampling.

Koren's SVD++ (KDD 2008) adds to a user's factors what the user rated, whatever the
ratings: ``P_u = p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j``; Rendle et al.'s "flipped" variant
(Rendle, Zhang & Koren, "On the difficulty of evaluating baselines", 2019) does the same for
items with the users who rated them: ``Q_i = q_i + |N(i)|^-1/2 sum_{v in N(i)} z_v``. The
rating model is BPMF's (:mod:`lensrec.kernels.bpmf`) with those effective rows:

    r_ui ~ N(mu + P_u . Q_i + b_u + b_i, 1 / alpha)

and each implicit vector ``y_j`` (``z_v``) has a Gaussian prior whose mean and precision
have a Normal-Wishart hyperprior, like the rows'.

**Sampling ``y_j``.** ``y_j`` enters the predictions of every rating of every user who rated
``j``, through ``c_u y_j . Q_i`` (``c_u = |N(u)|^-1/2``). Given everything else its
conditional is Gaussian with

    precision = Lambda + alpha sum_{u in N(j)} c_u^2 G_u,      G_u = sum_{i in R(u)} Q_i Q_i^T
    h         = Lambda m + alpha sum_{u in N(j)} c_u (E_u + c_u G_u y_j),  E_u = sum_i Q_i e_ui

(``e_ui`` the current residual, ``R(u)`` the user's ratings). ``G_u`` and ``E_u`` are per user,
so a draw costs ``O(|N(j)| k^2 + k^3)`` and never touches the ratings: after ``y_j`` moves by
``delta``, every residual of ``u`` falls by ``c_u delta . Q_i``, so ``E_u -= c_u G_u delta``.
The ``y_j`` are drawn one after another (each draw sees the ones before: a true Gibbs scan),
``y_j`` from the random stream ``(seed, stream, j)``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .bpmf import _fill_normals, _gaussian_draw, _stream_state

__all__ = [
    "implicit_sums",
    "offset_ratings",
    "residual_stats",
    "sample_implicit",
    "_reference_sample_implicit",
]


@nb.njit(cache=True, nogil=True, parallel=True)
def implicit_sums(indptr, indices, coef, vectors, out):
    """``out[r] = coef[r] * sum_{c in row r} vectors[c]`` (float64 ``[n_rows, k]``)."""
    k = vectors.shape[1]
    for r in nb.prange(out.shape[0]):
        for f in range(k):
            out[r, f] = 0.0
        for t in range(indptr[r], indptr[r + 1]):
            v = vectors[indices[t]]
            for f in range(k):
                out[r, f] += v[f]
        for f in range(k):
            out[r, f] *= coef[r]


@nb.njit(cache=True, nogil=True, parallel=True)
def offset_ratings(indptr, indices, ratings, offset, other, out):
    """``out[t] = ratings[t] - offset[r] . other[c, :k]`` for each entry ``t = (r, c)``: the
    targets of a row's own ``[p, b]`` once its implicit part ``offset`` is taken out."""
    k = offset.shape[1]
    for r in nb.prange(indptr.shape[0] - 1):
        for t in range(indptr[r], indptr[r + 1]):
            y = other[indices[t]]
            s = 0.0
            for f in range(k):
                s += offset[r, f] * y[f]
            out[t] = ratings[t] - s


@nb.njit(cache=True, nogil=True, parallel=True)
def residual_stats(indptr, indices, ratings, mu, own, other, gram, resid):
    """Per row ``r``: ``gram[r] = sum_c Q_c Q_c^T`` (float32 ``[k, k]``) and
    ``resid[r] = sum_c Q_c e_rc`` over its entries, with ``Q_c = other[c, :k]`` and the
    residual ``e_rc = rating - mu - own[r, :k] . Q_c - own[r, k] - other[c, k]``."""
    k = own.shape[1] - 1
    for r in nb.prange(indptr.shape[0] - 1):
        g = np.zeros((k, k))
        e_sum = resid[r]
        for p in range(k):
            e_sum[p] = 0.0
        x = own[r]
        for t in range(indptr[r], indptr[r + 1]):
            y = other[indices[t]]
            pred = mu + x[k] + y[k]
            for f in range(k):
                pred += x[f] * y[f]
            e = ratings[t] - pred
            for p in range(k):
                e_sum[p] += y[p] * e
                yp = y[p]
                for q in range(p + 1):
                    g[p, q] += yp * y[q]
        for p in range(k):
            for q in range(p + 1):
                gram[r, p, q] = g[p, q]
                gram[r, q, p] = g[p, q]


#: rows of one implicit vector above which its sums are split into chunks of ``_CHUNK``
#: rows run in parallel (a popular item's thousands of users); the chunk sums are added in
#: chunk order, so the draw does not depend on the thread count
_PAR_MIN = 1024
_CHUNK = 256
_FAST = {"contract", "reassoc", "nsz", "arcp"}


@nb.njit(cache=True, nogil=True, fastmath=_FAST, inline="always")
def _visit(lo, hi, feat_rows, coef, gram, resid, pending, dirty, alpha, h, acc_prec):
    # h += alpha sum c E_r and acc_prec += alpha sum c^2 G_r over rows [lo, hi), each row's
    # deferred shifts applied first (E_r -= G_r (sum of c delta))
    k = h.shape[0]
    for t in range(lo, hi):
        r = feat_rows[t]
        g = gram[r]
        e_row = resid[r]
        if dirty[r]:
            pend = pending[r]
            for p in range(k):
                s = 0.0
                for q in range(k):
                    s += g[p, q] * pend[q]
                e_row[p] -= s
            for p in range(k):
                pend[p] = 0.0
            dirty[r] = False
        c = coef[r]
        ac = alpha * c
        acc = ac * c
        for p in range(k):
            h[p] += ac * e_row[p]
            for q in range(k):
                acc_prec[p, q] += acc * g[p, q]


@nb.njit(cache=True, nogil=True, parallel=True, fastmath=_FAST)
def sample_implicit(
    feat_ptr, feat_rows, coef, gram, resid, prior_mean, prior_prec, alpha, seed, stream, vectors
):
    """Draw every implicit vector in turn, in place (see the module docstring).

    Parameters
    ----------
    feat_ptr, feat_rows : int64 [n_feat + 1], int32 [n]
        For each implicit vector ``j`` the rows it enters (users who rated item ``j``),
        each row at most once per vector.
    coef : float64 [n_rows]
        ``c_r = |N(r)|^-1/2`` of each row.
    gram, resid : float32 [n_rows, k, k], float64 [n_rows, k]
        :func:`residual_stats` of the rows at the current sample; ``resid`` is kept current
        as the vectors move (at the end of the scan, and for each row whenever a draw reads
        it: a row's shifts ``c_r delta`` are summed and applied at its next visit, so each
        visit reads the row's Gram once).
    prior_mean, prior_prec : float64 [k], [k, k]
    alpha : float
    seed, stream : int
        Vector ``j`` draws its normals from the stream ``(seed, stream, j)``.
    vectors : float64 [n_feat, k]

    Notes
    -----
    The vectors are drawn one after another (a Gibbs scan); the sums over a vector's rows
    run in parallel chunks when it has at least ``_PAR_MIN`` rows. The same whatever the
    thread count.
    """
    n_feat, k = vectors.shape
    n_rows = resid.shape[0]
    prior_h = prior_prec @ prior_mean
    pending = np.zeros((n_rows, k))
    dirty = np.zeros(n_rows, dtype=np.bool_)
    prec = np.empty((k, k))
    acc_prec = np.empty((k, k))
    h = np.empty(k)
    z = np.empty(k)
    delta = np.empty(k)
    most = 0
    for j in range(n_feat):
        most = max(most, feat_ptr[j + 1] - feat_ptr[j])
    n_chunks_max = (most + _CHUNK - 1) // _CHUNK
    part_h = np.zeros((n_chunks_max, k))
    part_prec = np.zeros((n_chunks_max, k, k))
    for j in range(n_feat):
        # prec = Lambda + D with D = alpha sum c^2 G_u, and
        # h = Lambda m + alpha sum c E_u + D y_j: the G_u y_j terms sum to D y_j, one
        # product per vector instead of one per user
        lo, hi = feat_ptr[j], feat_ptr[j + 1]
        for p in range(k):
            h[p] = 0.0
            for q in range(k):
                acc_prec[p, q] = 0.0
        if hi - lo >= _PAR_MIN:
            n_chunks = (hi - lo + _CHUNK - 1) // _CHUNK
            for ch in nb.prange(n_chunks):
                ph = part_h[ch]
                pp = part_prec[ch]
                for p in range(k):
                    ph[p] = 0.0
                    for q in range(k):
                        pp[p, q] = 0.0
                a = lo + ch * _CHUNK
                _visit(a, min(hi, a + _CHUNK), feat_rows, coef, gram, resid, pending, dirty,
                       alpha, ph, pp)  # fmt: skip
            for ch in range(n_chunks):
                for p in range(k):
                    h[p] += part_h[ch, p]
                    for q in range(k):
                        acc_prec[p, q] += part_prec[ch, p, q]
        else:
            _visit(lo, hi, feat_rows, coef, gram, resid, pending, dirty, alpha, h, acc_prec)
        yj = vectors[j]
        for p in range(k):
            s = 0.0
            for q in range(k):
                s += acc_prec[p, q] * yj[q]
            h[p] += prior_h[p] + s
        for p in range(k):
            for q in range(p + 1):
                prec[p, q] = acc_prec[p, q] + prior_prec[p, q]
        # the draw: x = prec^-1 h + L^-T z (prec = L L^T)
        _fill_normals(_stream_state(seed, stream, j), z, k)
        _gaussian_draw(prec, h, z, k)
        for p in range(k):
            delta[p] = h[p] - yj[p]
            yj[p] = h[p]
        if hi - lo >= _PAR_MIN:
            for t in nb.prange(lo, hi):
                r = feat_rows[t]
                c = coef[r]
                for p in range(k):
                    pending[r, p] += c * delta[p]
                dirty[r] = True
        else:
            for t in range(lo, hi):
                r = feat_rows[t]
                c = coef[r]
                for p in range(k):
                    pending[r, p] += c * delta[p]
                dirty[r] = True
    for r in range(n_rows):
        if dirty[r]:
            g = gram[r]
            for p in range(k):
                s = 0.0
                for q in range(k):
                    s += g[p, q] * pending[r, q]
                resid[r, p] -= s


# --- slow reference, used only by tests ------------------------------------------------------
def _reference_sample_implicit(
    entries: list[tuple[int, int, float]],
    feature_of: list[list[int]],
    coef: np.ndarray,
    own: np.ndarray,
    other: np.ndarray,
    mu: float,
    implicit: np.ndarray,
    prior_mean: np.ndarray,
    prior_prec: np.ndarray,
    alpha: float,
    seed: int,
    stream: int,
) -> np.ndarray:
    """:func:`sample_implicit` from its definition: residuals recomputed from every rating
    for each draw, the posterior by NumPy, the same normals.

    ``entries`` are ``(row, col, rating)``; ``feature_of[r]`` the implicit vectors of row
    ``r``; ``own[r] = [p_r, b_r]`` *without* the implicit part, which is added here from
    ``implicit``."""
    from .bpmf import block_normals

    vec = implicit.astype(np.float64).copy()
    n_feat, k = vec.shape
    for j in range(n_feat):

        def effective(r: int) -> np.ndarray:
            s = coef[r] * vec[feature_of[r]].sum(0) if feature_of[r] else np.zeros(k)
            return own[r, :k] + s

        prec = prior_prec.copy()
        h = prior_prec @ prior_mean
        for r, c, rating in entries:
            if j not in feature_of[r]:
                continue
            q = other[c, :k]
            x = effective(r)
            e_minus_j = rating - mu - x @ q - own[r, k] - other[c, k] + coef[r] * vec[j] @ q
            prec += alpha * coef[r] ** 2 * np.outer(q, q)
            h += alpha * coef[r] * q * e_minus_j
        lower = np.linalg.cholesky(prec)
        z = block_normals(seed, stream, j, 1, k)[0]
        vec[j] = np.linalg.solve(prec, h) + np.linalg.solve(lower.T, z)
    return vec
