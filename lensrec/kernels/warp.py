"""WARP (and k-OS WARP) trained by Hogwild SGD or AdaGrad.

Weston, Bengio & Usunier, "WSABIE: Scaling Up To Large Vocabulary Image Annotation"
(IJCAI 2011) for the Weighted Approximate-Rank Pairwise loss; Weston, Yee & Weiss, "Learning to
Rank Recommendations with the k-Order Statistic Loss" (RecSys 2013) for k-OS; the sampling and
the loss weight follow LightFM's WARP (Kula 2015). AdaGrad: Duchi, Hazan & Singer (JMLR 2011).

Score ``s_ui = x_u . y_i + b_i``. An epoch visits every observed entry ``(u, i)`` once, in a
pseudo-random order (a keyed Feistel permutation of ``0..nnz-1``: uniform-looking, no memory,
the same for every thread count). For each, negatives ``j`` are drawn uniformly until one
violates the margin, ``s_uj > s_ui - 1``, or ``max_sampled`` draws are spent. A violating
draw that is a positive of ``u`` (binary search in the sorted row) is discarded but counted,
as in LightFM. With ``N`` draws spent, the rank of ``i`` is estimated as
``floor((n_items - 1) / N)`` and one step descends

    L * (1 - s_ui + s_uj) + reg/2 (|x_u|^2 + |y_i|^2 + |y_j|^2) + reg_bias/2 (b_i^2 + b_j^2),
    L = min(ln(max(1, floor((n_items - 1) / N))), 10)

(LightFM clips ``L`` at 10 too). k-OS (``kos_k >= 1``): the positive is not the visited
entry's item but the ``kos_k``-th highest scored of ``kos_n`` items drawn (with replacement)
from the user's row.

Step sizes. ``adagrad=True`` (the default in the model, as in LightFM): per-parameter AdaGrad,
``G += g^2; p -= learning_rate * g / sqrt(G)``, with accumulators the caller initialises to 1
(LightFM's choice, which caps the first steps at ``learning_rate``). WARP's gradients carry the
rank weight ``L``, from 0 to ~ln(n_items); AdaGrad divides that scale out per coordinate, so one
learning rate works across catalogue sizes, and rows updated often (popular items, heavy users)
get smaller steps than rare ones without a decay schedule. It costs an accumulator per
parameter, touched only on the (minority of) draws that update. ``adagrad=False``: plain SGD.

Parallelism and determinism: ``prange`` over blocks of ``_SAMPLES`` visits; block ``b`` draws
negatives (and k-OS positives) from its own splitmix64 stream seeded by ``(seed, b)``. Updates
race (Hogwild). With one thread an epoch is bit-for-bit repeatable.

The random streams, the row search, the prefetch hints, the block and batch scaffolding and the
docs of the arguments both kernels take come from :mod:`._sampling`, shared with BPR. numba's cache keys on the content of *this* file only: after editing those helpers,
delete ``__pycache__/warp.*`` (or change this file) or the old code keeps running.
"""

from __future__ import annotations

import math
from typing import Any

import numba as nb
import numpy as np

from ._sampling import (
    FASTMATH,
    MASK64,
    ReferenceStream,
    below,
    block_span,
    draw_in_row,
    entry_pairs,
    epoch_blocks,
    fold_in_block,
    fold_in_blocks,
    in_row,
    load_batch,
    mix64,
    next_bits,
    prefetch,
    prefetch_row,
    reference_mix64,
    reference_rows,
    stream,
)

__all__ = [
    "warp_epoch",
    "warp_fold_in",
    "_reference_warp_epoch",
    "_reference_warp_update",
]

_SAMPLES = 4096  # visits per RNG block
_BATCH = 32  # visits whose user and positive rows are prefetched together
_CHUNK = 4  # negatives drawn and prefetched together
_MAX_LOSS = 10.0
_KEY = 0xD1B54A32D192ED03  # spreads the permutation's round keys


# --- the epoch's visiting order: a keyed Feistel permutation, by cycle walking ---------------
@nb.njit(cache=True, nogil=True)
def _perm_keys(seed):
    keys = np.empty(4, dtype=np.uint64)
    for r in range(4):
        keys[r] = mix64(np.uint64(seed) ^ (np.uint64(_KEY) * np.uint64(r + 1)))
    return keys


@nb.njit(cache=True, nogil=True)
def _half_bits(n):
    h = 1
    while (np.int64(1) << (2 * h)) < n:
        h += 1
    return h


@nb.njit(cache=True, nogil=True)
def _permute(s, n, h, keys):
    """The image of ``s`` in ``0..n-1`` under the permutation of ``keys`` (cycle walking)."""
    mask = (np.uint64(1) << np.uint64(h)) - np.uint64(1)
    x = np.uint64(s)
    while True:
        left = x >> np.uint64(h)
        right = x & mask
        for r in range(4):
            tmp = right
            right = left ^ (mix64(right ^ keys[r]) & mask)
            left = tmp
        x = (left << np.uint64(h)) | right
        if x < np.uint64(n):
            return np.int64(x)


@nb.njit(cache=True, nogil=True, fastmath=FASTMATH)
def _score(xu, y, b):
    s = b
    for k in range(xu.shape[0]):
        s += xu[k] * y[k]
    return s


@nb.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def _kos_positive(state, indices, lo, hi, xu, item_factors, item_bias, kos_k, kos_n, buf_i, buf_s):
    # draw kos_n positives from the row, return the kos_k-th highest scored (ties: first drawn)
    for t in range(kos_n):
        state, i = draw_in_row(state, indices, lo, hi)
        buf_i[t] = i
        buf_s[t] = _score(xu, item_factors[i], item_bias[i])
    k = min(kos_k, kos_n)
    for r in range(k):  # partial selection sort, descending, stable
        best = r
        for t in range(r + 1, kos_n):
            if buf_s[t] > buf_s[best]:
                best = t
        if best != r:
            si = buf_i[best]
            ss = buf_s[best]
            for t in range(best, r, -1):
                buf_i[t] = buf_i[t - 1]
                buf_s[t] = buf_s[t - 1]
            buf_i[r] = si
            buf_s[r] = ss
    return state, buf_i[k - 1]


@nb.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def _search_negative(state, indices, lo, hi, xu, s_pos, item_factors, item_bias, max_sampled, cand):
    # draw negatives in chunks of _CHUNK (prefetched together) until one violates the margin;
    # returns (state, j or -1, draws spent, s_uj)
    n_items = item_factors.shape[0]
    sampled = 0
    while sampled < max_sampled:
        m = min(_CHUNK, max_sampled - sampled)
        for t in range(m):
            state, z = next_bits(state)
            j = below(z, n_items)
            cand[t] = j
            prefetch_row(item_factors, j)
            prefetch(item_bias, j)
        for t in range(m):
            sampled += 1
            j = cand[t]
            s_neg = _score(xu, item_factors[j], item_bias[j])
            if s_neg > s_pos - np.float32(1.0) and not in_row(indices, lo, hi, j):
                return state, j, sampled, s_neg
    return state, -1, sampled, np.float32(0.0)


@nb.njit(cache=True, nogil=True, parallel=True, fastmath=FASTMATH, error_model="numpy")
def warp_epoch(
    indptr, indices, user_factors, item_factors, item_bias, user_accum, item_accum, bias_accum,
    learning_rate, reg, reg_bias, max_sampled, adagrad, kos_k, kos_n, seed,
):  # fmt: skip
    """Run one WARP epoch in place; return ``(mean_loss, share_updated, mean_sampled)``.

    Parameters
    ----------
    user_accum, item_accum, bias_accum : float32, shaped like the factors and biases
        AdaGrad accumulators (start them at 1), updated in place; read only when ``adagrad``
        (pass ``[0, f]`` / ``[0]`` arrays otherwise).
    max_sampled : int
        Negative draws per visit at most (LightFM's ``max_sampled``, default 10 there).
    adagrad : bool
    kos_k, kos_n : int
        ``kos_k = 0`` (or ``kos_n = 0``): plain WARP. Otherwise k-OS: the positive is the
        ``min(kos_k, kos_n)``-th highest scored of ``kos_n`` items drawn from the user's row
        (LightFM: k=5, n=10).

    The other arguments (the training CSR, the factors and biases it updates in place, the
    step size, the L2 weights, the seed, which also keys the visiting order) are those every
    kernel takes, described once in :mod:`._sampling` with the limits on ``nnz`` and
    ``n_items``.

    Returns
    -------
    mean_loss : float
        Mean over visits of ``L * (1 - s_ui + s_uj)`` for the violating draw (0 when none was
        found), before the step: the sampled WARP loss.
    share_updated : float
        Share of visits that found a violating negative (and so made a step, unless its
        weight ``L`` was 0).
    mean_sampled : float
        Mean negative draws per visit; grows as the model learns (the cost of an epoch).
    """
    nnz = indices.shape[0]
    n_items, f = item_factors.shape
    if nnz == 0 or n_items < 2:
        return 0.0, 0.0, 0.0
    pairs = entry_pairs(indptr, indices)
    keys = _perm_keys(seed)
    h = _half_bits(nnz)
    blocks, loss_b, updated_b, sampled_b = epoch_blocks(nnz, _SAMPLES)
    lr, rg, rb = np.float32(learning_rate), np.float32(reg), np.float32(reg_bias)
    for blk in nb.prange(blocks):
        state = stream(seed, blk)
        first, count = block_span(blk, _SAMPLES, nnz)
        bu = np.empty(_BATCH, dtype=np.int64)
        bi = np.empty(_BATCH, dtype=np.int64)
        cand = np.empty(_CHUNK, dtype=np.int64)
        kos_i = np.empty(max(kos_n, 1), dtype=np.int64)
        kos_s = np.empty(max(kos_n, 1), dtype=np.float32)
        loss = 0.0
        updated = 0
        sampled_all = 0
        for b0 in range(0, count, _BATCH):
            m = min(_BATCH, count - b0)
            for t in range(m):  # entries, in the epoch's visiting order
                e = _permute(first + b0 + t, nnz, h, keys)
                bu[t] = e
                prefetch(pairs, e)
            load_batch(pairs, bu, bi, m, indptr, user_factors, item_factors, item_bias)
            for t in range(m):
                u = bu[t]
                lo = indptr[u]
                hi = indptr[u + 1]
                xu = user_factors[u]
                if kos_k > 0 and kos_n > 0:
                    state, i = _kos_positive(
                        state, indices, lo, hi, xu, item_factors, item_bias, kos_k, kos_n,
                        kos_i, kos_s,
                    )  # fmt: skip
                else:
                    i = bi[t]
                yi = item_factors[i]
                s_pos = _score(xu, yi, item_bias[i])
                state, j, sampled, s_neg = _search_negative(
                    state, indices, lo, hi, xu, s_pos, item_factors, item_bias, max_sampled, cand
                )
                sampled_all += sampled
                if j < 0:
                    continue
                w = min(math.log(max(1.0, math.floor((n_items - 1) / sampled))), _MAX_LOSS)
                loss += w * (1.0 - s_pos + s_neg)
                updated += 1
                if w == 0.0:
                    continue
                wf = np.float32(w)
                yj = item_factors[j]
                # every gradient from the parameters before the step (coordinates are independent)
                for k in range(f):
                    a = xu[k]
                    b = yi[k]
                    c = yj[k]
                    gu = wf * (c - b) + rg * a
                    gi = -wf * a + rg * b
                    gj = wf * a + rg * c
                    if adagrad:
                        au = user_accum[u, k] + gu * gu
                        ai = item_accum[i, k] + gi * gi
                        aj = item_accum[j, k] + gj * gj
                        user_accum[u, k] = au
                        item_accum[i, k] = ai
                        item_accum[j, k] = aj
                        xu[k] = a - lr * gu / np.sqrt(au)
                        yi[k] = b - lr * gi / np.sqrt(ai)
                        yj[k] = c - lr * gj / np.sqrt(aj)
                    else:
                        xu[k] = a - lr * gu
                        yi[k] = b - lr * gi
                        yj[k] = c - lr * gj
                gi_b = -wf + rb * item_bias[i]
                gj_b = wf + rb * item_bias[j]
                if adagrad:
                    ai = bias_accum[i] + gi_b * gi_b
                    bias_accum[i] = ai
                    item_bias[i] -= lr * gi_b / np.sqrt(ai)
                    aj = bias_accum[j] + gj_b * gj_b
                    bias_accum[j] = aj
                    item_bias[j] -= lr * gj_b / np.sqrt(aj)
                else:
                    item_bias[i] -= lr * gi_b
                    item_bias[j] -= lr * gj_b
        loss_b[blk] = loss
        updated_b[blk] = updated
        sampled_b[blk] = sampled_all
    return loss_b.sum() / nnz, updated_b.sum() / nnz, sampled_b.sum() / nnz


@nb.njit(cache=True, nogil=True, parallel=True, fastmath=FASTMATH, error_model="numpy")
def warp_fold_in(
    indptr, indices, item_factors, item_bias, X, epochs, learning_rate, reg, max_sampled, adagrad,
    seed,
):  # fmt: skip
    """Fit user vectors ``X`` in place for the histories in the CSR, items held fixed.

    For each row ``u``, ``epochs * n_u`` WARP steps on ``x_u`` only: the positive drawn
    uniformly from the row, the negative searched as in :func:`warp_epoch` (``max_sampled``
    draws at most), the gradient ``L (y_j - y_i) + reg x_u``; AdaGrad with fresh
    accumulators (1) when ``adagrad``. Rows are independent, so the result does not depend
    on the thread count. The arguments are those every fold-in kernel takes
    (:mod:`._sampling`) with ``max_sampled, adagrad`` before ``seed``.
    """
    n_rows, f = X.shape
    n_items = item_factors.shape[0]
    if n_items < 2:
        return
    lr, rg = np.float32(learning_rate), np.float32(reg)
    for blk in nb.prange(fold_in_blocks(n_rows)):
        state, first, stop = fold_in_block(seed, blk, n_rows)
        acc = np.empty(f, dtype=np.float32)
        cand = np.empty(_CHUNK, dtype=np.int64)
        for u in range(first, stop):
            lo, hi = indptr[u], indptr[u + 1]
            if hi == lo:
                continue
            xu = X[u]
            acc[:] = 1.0
            for _ in range(epochs * (hi - lo)):
                state, i = draw_in_row(state, indices, lo, hi)
                yi = item_factors[i]
                s_pos = _score(xu, yi, item_bias[i])
                state, j, sampled, s_neg = _search_negative(
                    state, indices, lo, hi, xu, s_pos, item_factors, item_bias, max_sampled, cand
                )
                if j < 0:
                    continue
                w = min(math.log(max(1.0, math.floor((n_items - 1) / sampled))), _MAX_LOSS)
                wf = np.float32(w)
                yj = item_factors[j]
                for k in range(f):
                    g = wf * (yj[k] - yi[k]) + rg * xu[k]
                    if adagrad:
                        acc[k] += g * g
                        xu[k] -= lr * g / np.sqrt(acc[k])
                    else:
                        xu[k] -= lr * g


# --- slow NumPy references, used only by tests ---------------------------------------------
def _ref_permute(s: int, n: int, seed: int) -> int:
    keys = [reference_mix64((seed & MASK64) ^ ((_KEY * (r + 1)) & MASK64)) for r in range(4)]
    h = 1
    while (1 << (2 * h)) < n:
        h += 1
    mask = (1 << h) - 1
    x = s
    while True:
        left, right = x >> h, x & mask
        for key in keys:
            left, right = right, left ^ (reference_mix64(right ^ key) & mask)
        x = (left << h) | right
        if x < n:
            return x


def _reference_warp_update(
    xu: np.ndarray,
    yi: np.ndarray,
    yj: np.ndarray,
    bi: float,
    bj: float,
    weight: float,
    learning_rate: float,
    reg: float,
    reg_bias: float,
    accums: tuple[np.ndarray, np.ndarray, np.ndarray, float, float] | None = None,
) -> tuple[np.ndarray, ...]:
    """One WARP step from the gradient of ``weight * (1 - s_ui + s_uj)`` + L2 (float64).

    ``accums`` (AdaGrad accumulators of ``xu, yi, yj, bi, bj``) switches AdaGrad on; they
    are returned updated after the new parameters.
    """
    xu, yi, yj = (np.asarray(v, dtype=np.float64) for v in (xu, yi, yj))
    grads: tuple[Any, ...] = (
        weight * (yj - yi) + reg * xu,
        -weight * xu + reg * yi,
        weight * xu + reg * yj,
        -weight + reg_bias * bi,
        weight + reg_bias * bj,
    )
    params: tuple[Any, ...] = (xu, yi, yj, bi, bj)
    if accums is None:
        return tuple(p - learning_rate * g for p, g in zip(params, grads, strict=True))
    new_acc = tuple(a + g * g for a, g in zip(accums, grads, strict=True))
    new = tuple(
        p - learning_rate * g / np.sqrt(a) for p, g, a in zip(params, grads, new_acc, strict=True)
    )
    return new + new_acc


def _reference_warp_epoch(
    indptr: np.ndarray,
    indices: np.ndarray,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    item_bias: np.ndarray,
    user_accum: np.ndarray,
    item_accum: np.ndarray,
    bias_accum: np.ndarray,
    learning_rate: float,
    reg: float,
    reg_bias: float,
    max_sampled: int,
    adagrad: bool,
    kos_k: int,
    kos_n: int,
    seed: int,
) -> tuple[float, float, float]:
    """:func:`warp_epoch` with one thread, visit by visit in float64 (arrays updated), in
    the kernel's visiting order; a k-OS visit draws its positives before its negatives."""
    rows = reference_rows(indptr)
    nnz, n_items = len(indices), item_factors.shape[0]
    loss, updated, sampled_all = 0.0, 0, 0

    def score(u: int, i: int) -> float:
        return float(user_factors[u] @ item_factors[i] + item_bias[i])

    for s in range(nnz):
        if s % _SAMPLES == 0:
            draws = ReferenceStream(seed, s // _SAMPLES)
        e = _ref_permute(s, nnz, seed)
        u, i = int(rows[e]), int(indices[e])
        row = indices[indptr[u] : indptr[u + 1]]
        if kos_k > 0:
            drawn = [int(row[draws.below(len(row))]) for _ in range(kos_n)]
            ranked = sorted(drawn, key=lambda item: -score(u, item))  # stable
            i = ranked[min(kos_k, kos_n) - 1]
        s_pos = score(u, i)
        positives = set(row.tolist())
        j, sampled = -1, 0
        while sampled < max_sampled and j < 0:
            chunk = [draws.below(n_items) for _ in range(min(_CHUNK, max_sampled - sampled))]
            for c in chunk:
                sampled += 1
                if score(u, c) > s_pos - 1.0 and c not in positives:
                    j = c
                    break
        sampled_all += sampled
        if j < 0:
            continue
        w = min(np.log(max(1.0, np.floor((n_items - 1) / sampled))), _MAX_LOSS)
        loss += w * (1.0 - s_pos + score(u, j))
        updated += 1
        if w == 0.0:
            continue
        acc = (
            (
                user_accum[u],
                item_accum[i],
                item_accum[j],
                float(bias_accum[i]),
                float(bias_accum[j]),
            )
            if adagrad
            else None
        )
        new = _reference_warp_update(
            user_factors[u], item_factors[i], item_factors[j],
            float(item_bias[i]), float(item_bias[j]), w, learning_rate, reg, reg_bias, acc,
        )  # fmt: skip
        user_factors[u], item_factors[i], item_factors[j] = new[0], new[1], new[2]
        item_bias[i], item_bias[j] = new[3], new[4]
        if adagrad:
            user_accum[u], item_accum[i], item_accum[j] = new[5], new[6], new[7]
            bias_accum[i], bias_accum[j] = new[8], new[9]
    return loss / nnz, updated / nnz, sampled_all / nnz
