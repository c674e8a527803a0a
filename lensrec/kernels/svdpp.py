"""SVD++: biased matrix factorisation with implicit feedback, trained user by user.

Koren (2008, "Factorization meets the neighborhood", KDD, section 4) predicts

    r_hat = mu + b_u + b_i + q_i . (p_u + s_u),    s_u = |N(u)|^-1/2 sum_{j in N(u)} y_j

where ``N(u)`` is the set of items the user gave implicit feedback on (usually the items they
rated; any CSR can be passed). The loss is Surprise's ``SVDpp`` objective: squared error plus
L2 on ``b_u, b_i, p_u, q_i`` and on every ``y_j, j in N(u)``, per rating.

Training visits the users in a given order and, for each user, their ratings in CSR row order:

1. ``s_u`` is computed once, O(|N(u)| k);
2. per rating, with ``e = r - r_hat``: ``b_u``, ``b_i``, ``p_u`` and ``q_i`` are updated exactly
   as in Surprise (both factor updates from the values before the step; ``q_i`` moves along
   ``e (p_u + s_u)``), and ``e q_i`` (old ``q_i``) is added to a gradient accumulator ``g``;
3. after the user's ``n_u`` ratings each ``y_j, j in N(u)`` moves once:
   ``y_j <- (1 - lr_yj reg_yj)^n_u y_j + lr_yj |N(u)|^-1/2 g``.

This is the usual efficient variant (MyMediaLite's ``SVDPlusPlus``, LibRec): O(k) per rating
plus O(|N(u)| k) per user and epoch. Surprise instead recomputes ``s_u`` and updates every
``y_j`` on every rating, O(|N(u)| k) per rating, so ``y`` (and so ``s_u``) moves during the
user's ratings; here ``s_u`` is fixed within a user's pass and the ``y`` steps are summed, the
regularisation applied as the ``n_u`` multiplicative shrinks the per-rating steps would make
(stable for any ``n_u``, unlike ``n_u * reg_yj`` in one step). The two agree exactly when
``lr_yj = 0`` or when every user has one rating; otherwise they differ by second-order terms
in the learning rate.

Parameters are packed as in :mod:`lensrec.kernels.svd`: ``[n, k + 1]`` with the bias in
column ``k``; the implicit factors ``y`` are ``[n_items, k]``. :func:`svdpp_epoch` is serial and
bit-for-bit repeatable; :func:`svdpp_epoch_hogwild` runs blocks of users in parallel (their own
rows are private, item rows and ``y`` are shared without locks), repeatable with one thread,
where it equals :func:`svdpp_epoch` exactly.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .svd import _FAST, _hyper, _step_biases, _step_factor

__all__ = [
    "implicit_sums",
    "predict_pairs",
    "svdpp_epoch",
    "svdpp_epoch_hogwild",
    "_reference_svdpp_epoch",
]


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
def _svdpp_users(rows, user_order, start, stop, h, params, s, g):
    # one pass over the users user_order[start:stop]; returns the sum of squared errors
    indptr, indices, ratings, imp_indptr, imp_indices = rows
    user_params, item_params, implicit = params
    k = user_params.shape[1] - 1
    mu = h[0]
    lr_bu, lr_bi, lr_pu, lr_qi, lr_yj = h[1], h[2], h[3], h[4], h[5]
    reg_bu, reg_bi, reg_pu, reg_qi, reg_yj = h[6], h[7], h[8], h[9], h[10]
    total = 0.0
    for t in range(start, stop):
        u = user_order[t]
        pu = user_params[u]
        a = imp_indptr[u]
        b = imp_indptr[u + 1]
        for f in range(k):
            s[f] = h[11]
            g[f] = h[11]
        # s[k], s[k + 1]: scratch slots that cast scalars to the parameters' dtype
        s[k] = 0.0
        if b > a:
            s[k] = 1.0 / math.sqrt(b - a)
        norm = s[k]
        if b > a:
            for p in range(a, b):
                y = implicit[imp_indices[p]]
                for f in range(k):
                    s[f] += y[f]
            for f in range(k):
                s[f] *= norm
        for p in range(indptr[u], indptr[u + 1]):
            qi = item_params[indices[p]]
            dot = h[11]
            for f in range(k):
                dot += qi[f] * (pu[f] + s[f])
            err = ratings[p] - (mu + pu[k] + qi[k] + dot)
            total += err * err
            _step_biases(pu, qi, k, err, lr_bu, lr_bi, reg_bu, reg_bi)
            for f in range(k):
                # q_i moves along p_u + s_u; the y_j step gathers e q_i (the old q_i)
                qif = _step_factor(pu, qi, f, pu[f] + s[f], err, lr_pu, lr_qi, reg_pu, reg_qi)
                g[f] += err * qif
        n_u = indptr[u + 1] - indptr[u]
        if b > a and n_u > 0:
            s[k + 1] = (1.0 - lr_yj * reg_yj) ** n_u
            decay = s[k + 1]
            step = lr_yj * norm
            for p in range(a, b):
                y = implicit[imp_indices[p]]
                for f in range(k):
                    y[f] = decay * y[f] + step * g[f]
    return total


@nb.njit(cache=True, nogil=True, inline="always")
def _rated(indptr, user_order, start, stop):
    # how many ratings the users user_order[start:stop] have
    count = 0
    for t in range(start, stop):
        count += indptr[user_order[t] + 1] - indptr[user_order[t]]
    return count


@nb.njit(cache=True, nogil=True)
def svdpp_epoch(rows, user_order, mu, learning_rates, regs, params):
    """Run one SVD++ epoch over the users in ``user_order``, in place; return the MSE.

    Parameters
    ----------
    rows : tuple (indptr, indices, ratings, imp_indptr, imp_indices)
        The training ratings as a users x items CSR matrix (int64/int32 [n_users + 1], int32
        [n], float32 [n]; each user's ratings are visited in row order), then ``N(u)`` for
        each user as a CSR pattern (int64/int32 [n_users + 1], int32 [m]; usually the same as
        ``indptr, indices``).
    user_order : int32 or int64 [n_visit]
        Users to visit, in order (a permutation of the users for a full epoch).
    mu, learning_rates, regs
        As :func:`lensrec.kernels.svd.sgd_epoch`'s, the rates of ``(bu, bi, pu, qi, yj)``.
    params : tuple (user_params, item_params, implicit)
        ``user_params`` and ``item_params`` as :func:`lensrec.kernels.svd.sgd_epoch`'s, then
        the implicit factors ``y`` (same dtype, [n_items, k]); all updated in place.

    Returns
    -------
    float
        Mean squared error of the visited ratings, each evaluated just before its own update.
    """
    k = params[0].shape[1] - 1
    h = _hyper(params[0], mu, learning_rates, regs)
    s = np.empty(k + 2, dtype=params[0].dtype)
    g = np.empty(k, dtype=params[0].dtype)
    n = user_order.shape[0]
    total = _svdpp_users(rows, user_order, 0, n, h, params, s, g)
    return total / max(_rated(rows[0], user_order, 0, n), 1)


@nb.njit(cache=True, nogil=True, parallel=True)
def svdpp_epoch_hogwild(rows, user_order, mu, learning_rates, regs, params, block_size):
    """:func:`svdpp_epoch` with blocks of ``block_size`` users run in parallel (Hogwild).

    Bit-for-bit equal to :func:`svdpp_epoch` with one thread (up to the summation of the
    returned MSE); scheduling-dependent with more. Parameters as :func:`svdpp_epoch`.
    """
    k = params[0].shape[1] - 1
    h = _hyper(params[0], mu, learning_rates, regs)
    n = user_order.shape[0]
    n_blocks = (n + block_size - 1) // block_size
    losses = np.zeros(n_blocks)
    counts = np.zeros(n_blocks, dtype=np.int64)
    for blk in nb.prange(n_blocks):
        start = blk * block_size
        stop = min(start + block_size, n)
        s = np.empty(k + 2, dtype=params[0].dtype)
        g = np.empty(k, dtype=params[0].dtype)
        losses[blk] = _svdpp_users(rows, user_order, start, stop, h, params, s, g)
        counts[blk] = _rated(rows[0], user_order, start, stop)
    return losses.sum() / max(counts.sum(), 1)


@nb.njit(cache=True, nogil=True, parallel=True, fastmath=_FAST)
def implicit_sums(imp_indptr, imp_indices, implicit, out):
    """Fill ``out`` [n_rows, k] with ``|N|^-1/2 sum_{j in N} y_j`` for each CSR row ``N``.

    The rows can be the training users or any batch of histories (fold-in); an empty row
    gives zeros.
    """
    k = implicit.shape[1]
    for row in nb.prange(out.shape[0]):
        a = imp_indptr[row]
        b = imp_indptr[row + 1]
        for f in range(k):
            out[row, f] = 0.0
        if b > a:
            for p in range(a, b):
                y = implicit[imp_indices[p]]
                for f in range(k):
                    out[row, f] += y[f]
            norm = 1.0 / math.sqrt(b - a)
            for f in range(k):
                out[row, f] *= norm


@nb.njit(cache=True, nogil=True, parallel=True, fastmath=_FAST)
def predict_pairs(users, items, mu, user_params, item_params, user_implicit, out):
    """Fill ``out`` [n] with ``mu + b_u + b_i + q_i . (p_u + s_u)`` for each pair.

    ``user_implicit`` [n_users, k] holds ``s_u`` (from :func:`implicit_sums`).
    """
    k = user_params.shape[1] - 1
    for j in nb.prange(users.shape[0]):
        pu = user_params[users[j]]
        su = user_implicit[users[j]]
        qi = item_params[items[j]]
        z = mu + pu[k] + qi[k]
        for f in range(k):
            z += qi[f] * (pu[f] + su[f])
        out[j] = z


# --- slow reference, used only by tests ---------------------------------------------------
def _reference_svdpp_epoch(
    indptr: np.ndarray,
    indices: np.ndarray,
    ratings: np.ndarray,
    imp_indptr: np.ndarray,
    imp_indices: np.ndarray,
    user_order: np.ndarray,
    mu: float,
    learning_rates: tuple[float, ...],
    regs: tuple[float, ...],
    user_factors: np.ndarray,
    user_bias: np.ndarray,
    item_factors: np.ndarray,
    item_bias: np.ndarray,
    implicit: np.ndarray,
) -> float:
    """The epoch of :func:`svdpp_epoch` in plain NumPy, separate bias arrays, in place."""
    lr_bu, lr_bi, lr_pu, lr_qi, lr_yj = learning_rates
    reg_bu, reg_bi, reg_pu, reg_qi, reg_yj = regs
    total, count = 0.0, 0
    for u in user_order:
        nu = imp_indices[imp_indptr[u] : imp_indptr[u + 1]]
        norm = 1.0 / np.sqrt(len(nu)) if len(nu) else 0.0
        s = implicit[nu].sum(0) * norm
        g = np.zeros(implicit.shape[1])
        rows = range(indptr[u], indptr[u + 1])
        for p in rows:
            i, r = indices[p], ratings[p]
            pu, qi = user_factors[u].copy(), item_factors[i].copy()
            err = r - (mu + user_bias[u] + item_bias[i] + qi @ (pu + s))
            total += err * err
            count += 1
            user_bias[u] += lr_bu * (err - reg_bu * user_bias[u])
            item_bias[i] += lr_bi * (err - reg_bi * item_bias[i])
            user_factors[u] = pu + lr_pu * (err * qi - reg_pu * pu)
            item_factors[i] = qi + lr_qi * (err * (pu + s) - reg_qi * qi)
            g += err * qi
        if len(nu) and len(rows):
            implicit[nu] = (1 - lr_yj * reg_yj) ** len(rows) * implicit[nu] + lr_yj * norm * g
    return total / max(count, 1)
