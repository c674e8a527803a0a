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

The epoch kernels here and in :mod:`lensrec.kernels.svdpp` take their arguments alike: the
ratings in the kernel's layout and the visiting order (tuples of arrays), ``mu``, one float64
array of learning rates and one of regularisations in kernel order, and the parameter arrays
as one tuple (Hogwild: then the block size). A rating's bias and factor steps are written
once, here (:func:`_step_biases`, :func:`_step_factor`, inlined), and used by SVD++'s user
pass too. numba's cache keys a compiled kernel on the content of the kernel's own file only:
after editing those helpers, delete ``lensrec/kernels/__pycache__/svdpp.*`` (or touch
``svdpp.py``), or SVD++ keeps running the old steps.
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
def _hyper(params, mu, learning_rates, regs):
    # mu, the n learning rates, the n regularisations and a 0, in the parameters' dtype (a
    # typed buffer casts them on store): one cast per epoch, none per rating
    n = learning_rates.shape[0]
    h = np.empty(2 * n + 2, dtype=params.dtype)
    h[0] = mu
    for t in range(n):
        h[1 + t] = learning_rates[t]
        h[1 + n + t] = regs[t]
    h[2 * n + 1] = 0.0
    return h


@nb.njit(cache=True, nogil=True, inline="always")
def _step_biases(pu, qi, k, err, lr_bu, lr_bi, reg_bu, reg_bi):
    # one rating's bias step (column k of the packed rows), shared with SVD++
    pu[k] += lr_bu * (err - reg_bu * pu[k])
    qi[k] += lr_bi * (err - reg_bi * qi[k])


@nb.njit(cache=True, nogil=True, inline="always")
def _step_factor(pu, qi, f, zf, err, lr_pu, lr_qi, reg_pu, reg_qi):
    # one rating's step of factor f, both from the values before it; q_i moves along zf, the
    # user's side of the prediction (p_u[f]; SVD++'s p_u[f] + s_u[f]); returns the old q_i[f]
    puf = pu[f]
    qif = qi[f]
    pu[f] = puf + lr_pu * (err * qif - reg_pu * puf)
    qi[f] = qif + lr_qi * (err * zf - reg_qi * qif)
    return qif


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
def _sgd_range(ratings, order, start, stop, biased, h, params):
    # SGD over order[start:stop]; returns the sum of squared errors before each update
    users, items, values = ratings
    user_params, item_params = params
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
        err = values[j] - (mu + pu[k] + qi[k] + dot)
        total += err * err
        if biased:
            _step_biases(pu, qi, k, err, lr_bu, lr_bi, reg_bu, reg_bi)
        for f in range(k):
            _step_factor(pu, qi, f, pu[f], err, lr_pu, lr_qi, reg_pu, reg_qi)
    return total


@nb.njit(cache=True, nogil=True)
def sgd_epoch(ratings, order, biased, mu, learning_rates, regs, params):
    """Run one SGD epoch over the ratings in ``order``, in place; return the epoch's MSE.

    Parameters
    ----------
    ratings : tuple of int32 [n], int32 [n], float32 [n]
        ``(users, items, values)`` of the training ratings.
    order : int32 or int64 [m]
        Positions into the rating arrays, visited in this order (a permutation of ``0..n-1``
        for a full epoch; any subset works).
    biased : bool
        Update the biases (column ``k``); when false they are left as they are.
    mu : float
        Global mean (0 for the unbiased model).
    learning_rates, regs : float64 [p]
        The learning rate and the L2 regularisation of each kind of parameter, in kernel
        order: ``(bu, bi, pu, qi)`` here, ``(bu, bi, pu, qi, yj)`` in SVD++.
    params : tuple of float32 or float64 [n_users, k + 1], [n_items, k + 1]
        ``(user_params, item_params)``: factors in columns ``0..k-1``, bias in column ``k``;
        updated in place.

    Returns
    -------
    float
        Mean over ``order`` of the squared error of each rating, each evaluated just before
        its own update (the running training MSE of the epoch).
    """
    h = _hyper(params[0], mu, learning_rates, regs)
    n = order.shape[0]
    return _sgd_range(ratings, order, 0, n, biased, h, params) / max(n, 1)


@nb.njit(cache=True, nogil=True, parallel=True)
def sgd_epoch_hogwild(ratings, order, biased, mu, learning_rates, regs, params, block_size):
    """:func:`sgd_epoch` with blocks of ``block_size`` positions of ``order`` run in parallel.

    Threads update shared rows without locks (Hogwild): with more than one thread the result
    depends on scheduling; with one thread the blocks run in order and the parameters are
    bit-for-bit those of :func:`sgd_epoch` (the returned MSE may differ in the last digits,
    being summed per block). Parameters and return value as :func:`sgd_epoch`.
    """
    h = _hyper(params[0], mu, learning_rates, regs)
    n = order.shape[0]
    n_blocks = (n + block_size - 1) // block_size
    losses = np.zeros(n_blocks)
    for b in nb.prange(n_blocks):
        start = b * block_size
        stop = min(start + block_size, n)
        losses[b] = _sgd_range(ratings, order, start, stop, biased, h, params)
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
