"""Funk SVD: biased matrix factorisation by per-rating stochastic gradient descent.

The model of Funk's Netflix Prize write-up (2006) in the biased form of Koren, Bell & Volinsky
(2009, "Matrix factorization techniques for recommender systems", IEEE Computer, eq. 5),
with the semantics of Surprise's ``SVD``:

    r_hat = mu + b_u + b_i + q_i . p_u

and for each training rating, in the order given, with ``e = r - r_hat`` computed first,

    b_u <- b_u + lr_bu * (e - reg_bu * b_u)
    b_i <- b_i + lr_bi * (e - reg_bi * b_i)
    p_u <- p_u + lr_pu * (e * q_i - reg_pu * p_u)
    q_i <- q_i + lr_qi * (e * p_u - reg_qi * q_i)

where the two factor updates both read the values from before this rating's update. With
``biased=False`` the biases stay untouched (the caller passes ``mu = 0`` and zero biases for
Surprise's unbiased variant).

The parameters are packed: row ``u`` of ``user_params`` ``[n_users, k + 1]`` holds ``p_u`` in
columns ``0..k-1`` and ``b_u`` in column ``k``; the same for items (one contiguous block per
row and rating; the layout of :mod:`lensrec.kernels.biased_mf`). Initialisation (Surprise:
``normal(init_mean, init_std)`` factors, zero biases), the order of the ratings in each epoch
(shuffled, file order or grouped by user: the kernel takes an ``order`` array) and any
learning-rate decay between epochs belong to the caller.

Arithmetic is in the dtype of the parameters (float32 in lensrec, float64 to compare with
Surprise); the learning rates, regularisation and ``mu`` are cast to it once per call.
:func:`sgd_epoch` is serial and bit-for-bit repeatable; :func:`sgd_epoch_hogwild` runs blocks of
the order array in parallel without locks (Hogwild, Niu et al. 2011), which is repeatable only
with one thread, where it gives exactly the parameters of :func:`sgd_epoch`.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = [
    "predict_pairs",
    "sgd_epoch",
    "sgd_epoch_hogwild",
    "_reference_sgd_epoch",
]

# reassociation lets LLVM vectorise the dot product; no "nnan"/"ninf", so a diverging run still
# shows up as a non-finite loss. Deterministic for a given machine and build.
_FAST = {"reassoc", "contract", "arcp"}


@nb.njit(cache=True, nogil=True, inline="always")
def _hyper(params, mu, lr_bu, lr_bi, lr_pu, lr_qi, reg_bu, reg_bi, reg_pu, reg_qi):
    # the scalars in the parameters' dtype (a typed buffer casts them on store)
    h = np.empty(10, dtype=params.dtype)
    h[0] = mu
    h[1] = lr_bu
    h[2] = lr_bi
    h[3] = lr_pu
    h[4] = lr_qi
    h[5] = reg_bu
    h[6] = reg_bi
    h[7] = reg_pu
    h[8] = reg_qi
    h[9] = 0.0
    return h


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
def _sgd_range(users, items, ratings, order, start, stop, h, biased, user_params, item_params):
    # SGD over order[start:stop]; returns the sum of squared errors before each update
    k = user_params.shape[1] - 1
    mu, lr_bu, lr_bi, lr_pu, lr_qi = h[0], h[1], h[2], h[3], h[4]
    reg_bu, reg_bi, reg_pu, reg_qi = h[5], h[6], h[7], h[8]
    total = 0.0
    for t in range(start, stop):
        j = order[t]
        pu = user_params[users[j]]
        qi = item_params[items[j]]
        dot = h[9]
        for f in range(k):
            dot += qi[f] * pu[f]
        err = ratings[j] - (mu + pu[k] + qi[k] + dot)
        total += err * err
        if biased:
            pu[k] += lr_bu * (err - reg_bu * pu[k])
            qi[k] += lr_bi * (err - reg_bi * qi[k])
        for f in range(k):
            puf = pu[f]
            qif = qi[f]
            pu[f] = puf + lr_pu * (err * qif - reg_pu * puf)
            qi[f] = qif + lr_qi * (err * puf - reg_qi * qif)
    return total


@nb.njit(cache=True, nogil=True)
def sgd_epoch(
    users,
    items,
    ratings,
    order,
    mu,
    lr_bu,
    lr_bi,
    lr_pu,
    lr_qi,
    reg_bu,
    reg_bi,
    reg_pu,
    reg_qi,
    biased,
    user_params,
    item_params,
):
    """Run one SGD epoch over the ratings in ``order``, in place; return the epoch's MSE.

    Parameters
    ----------
    users, items : int32 [n]
        Indices of the training ratings.
    ratings : float32 [n]
    order : int32 or int64 [m]
        Positions into the rating arrays, visited in this order (a permutation of ``0..n-1``
        for a full epoch; any subset works).
    mu : float
        Global mean (0 for the unbiased model).
    lr_bu, lr_bi, lr_pu, lr_qi : float
        Learning rates of the user and item biases and factors.
    reg_bu, reg_bi, reg_pu, reg_qi : float
        Their L2 regularisation.
    biased : bool
        Update the biases (column ``k``); when false they are left as they are.
    user_params, item_params : float32 or float64 [n_users, k + 1], [n_items, k + 1]
        Factors in columns ``0..k-1``, bias in column ``k``; updated in place.

    Returns
    -------
    float
        Mean over ``order`` of the squared error of each rating, each evaluated just before
        its own update (the running training MSE of the epoch).
    """
    h = _hyper(user_params, mu, lr_bu, lr_bi, lr_pu, lr_qi, reg_bu, reg_bi, reg_pu, reg_qi)
    n = order.shape[0]
    total = _sgd_range(users, items, ratings, order, 0, n, h, biased, user_params, item_params)
    return total / max(n, 1)


@nb.njit(cache=True, nogil=True, parallel=True)
def sgd_epoch_hogwild(
    users,
    items,
    ratings,
    order,
    mu,
    lr_bu,
    lr_bi,
    lr_pu,
    lr_qi,
    reg_bu,
    reg_bi,
    reg_pu,
    reg_qi,
    biased,
    user_params,
    item_params,
    block_size,
):
    """:func:`sgd_epoch` with blocks of ``block_size`` positions of ``order`` run in parallel.

    Threads update shared rows without locks (Hogwild): with more than one thread the result
    depends on scheduling; with one thread the blocks run in order and the parameters are
    bit-for-bit those of :func:`sgd_epoch` (the returned MSE may differ in the last digits,
    being summed per block). Parameters and return value as :func:`sgd_epoch`.
    """
    h = _hyper(user_params, mu, lr_bu, lr_bi, lr_pu, lr_qi, reg_bu, reg_bi, reg_pu, reg_qi)
    n = order.shape[0]
    n_blocks = (n + block_size - 1) // block_size
    losses = np.zeros(n_blocks)
    for b in nb.prange(n_blocks):
        start = b * block_size
        stop = min(start + block_size, n)
        losses[b] = _sgd_range(
            users, items, ratings, order, start, stop, h, biased, user_params, item_params
        )
    return losses.sum() / max(n, 1)


@nb.njit(cache=True, nogil=True, parallel=True, fastmath=_FAST)
def predict_pairs(users, items, mu, user_params, item_params, out):
    """Fill ``out`` [n] with ``mu + b_u + b_i + q_i . p_u`` for each (user, item) pair."""
    k = user_params.shape[1] - 1
    for j in nb.prange(users.shape[0]):
        pu = user_params[users[j]]
        qi = item_params[items[j]]
        z = mu + pu[k] + qi[k]
        for f in range(k):
            z += qi[f] * pu[f]
        out[j] = z


# --- slow reference, used only by tests ---------------------------------------------------
def _reference_sgd_epoch(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    order: np.ndarray,
    mu: float,
    lr: tuple[float, float, float, float],
    reg: tuple[float, float, float, float],
    biased: bool,
    user_factors: np.ndarray,
    user_bias: np.ndarray,
    item_factors: np.ndarray,
    item_bias: np.ndarray,
) -> float:
    """The epoch written plainly with separate factor and bias arrays, updated in place.

    ``lr`` and ``reg`` are ``(bu, bi, pu, qi)``. Returns the mean squared error as
    :func:`sgd_epoch` does.
    """
    lr_bu, lr_bi, lr_pu, lr_qi = lr
    reg_bu, reg_bi, reg_pu, reg_qi = reg
    total = 0.0
    for j in order:
        u, i, r = users[j], items[j], ratings[j]
        err = r - (mu + user_bias[u] + item_bias[i] + float(item_factors[i] @ user_factors[u]))
        total += err * err
        if biased:
            user_bias[u] += lr_bu * (err - reg_bu * user_bias[u])
            item_bias[i] += lr_bi * (err - reg_bi * item_bias[i])
        pu = user_factors[u].copy()
        qi = item_factors[i].copy()
        user_factors[u] = pu + lr_pu * (err * qi - reg_pu * pu)
        item_factors[i] = qi + lr_qi * (err * pu - reg_qi * qi)
    return total / max(len(order), 1)
