"""Bayesian personalised ranking (BPR) trained by Hogwild SGD on sampled triples.

Rendle, Freudenthaler, Gantner & Schmidt-Thieme, "BPR: Bayesian Personalized Ranking from
Implicit Feedback" (UAI 2009), LearnBPR with bootstrap sampling; Hogwild (Niu, Recht, Ré &
Wright, NIPS 2011) for the lock-free parallel updates.

The score is ``s_ui = x_u . y_i + b_i``. One SGD step on a triple ``(u, i, j)`` with ``i`` a
positive of ``u`` and ``j`` not one ascends

    ln sigmoid(s_ui - s_uj) - reg/2 (|x_u|^2 + |y_i|^2 + |y_j|^2) - reg_bias/2 (b_i^2 + b_j^2)

(all parameters move from their values before the step). ``(u, i)`` is drawn uniformly from
the observed entries (with replacement, as LearnBPR does); ``j`` uniformly from all items and
drawn again while it is a positive of ``u``, at most ``max_tries`` draws; a triple without a
negative is skipped and counted. Whether ``j`` is a positive is asked of a small per-row bit
filter first (exact for long rows, hashed for short ones) and, when a hashed filter cannot
rule it out, of a binary search in the sorted CSR row. The streams, the filter, the row
search, the prefetch hints, the block and batch scaffolding and the docs of the arguments
both kernels take are in :mod:`._sampling`, shared with WARP.

Parallelism: ``prange`` over blocks of ``_SAMPLES`` samples; block ``b`` draws from its own
splitmix64 stream seeded by ``(seed, b)``, so the triples drawn do not depend on the thread
count. The updates race (Hogwild). With one thread the epoch is bit-for-bit repeatable; with
more, the triples are the same but the interleaving of updates is not.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from ._sampling import (
    FASTMATH,
    ReferenceStream,
    below,
    block_span,
    draw_in_row,
    draw_negative,
    epoch_blocks,
    fill_tables_parallel,
    filter_slot,
    filtered_in_row,
    fold_in_block,
    fold_in_blocks,
    in_row,
    load_batch,
    next_bits,
    prefetch,
    prefetch_row,
    reference_rows,
    sampling_tables,
    stream,
)

__all__ = [
    "bpr_epoch",
    "bpr_fold_in",
    "_reference_bpr_epoch",
    "_reference_bpr_update",
]

_SAMPLES = 4096  # samples per RNG block
_BATCH = 32  # samples whose memory is prefetched together (software pipelining)

# the names tests/kernels/test_bpr.py imports from this module (the helpers live in _sampling)
_fill_tables_parallel = fill_tables_parallel
_filter_slot = filter_slot
_filtered_in_row = filtered_in_row
_in_row = in_row
_sampling_tables = sampling_tables


# --- kernels --------------------------------------------------------------------------------
@nb.njit(cache=True, nogil=True, parallel=True, fastmath=FASTMATH, error_model="numpy")
def bpr_epoch(
    indptr, indices, user_factors, item_factors, item_bias, n_samples, learning_rate, reg,
    reg_bias, seed, max_tries,
):  # fmt: skip
    """Run ``n_samples`` BPR SGD steps in place; return ``(mean_loss, share_correct, skipped)``.

    Parameters
    ----------
    n_samples : int
        Triples to draw; ``nnz`` is one epoch.
    max_tries : int
        Negative draws per triple before it is skipped (``>= 1``).

    The other arguments (the training CSR, the factors and biases it updates in place, the
    step size, the L2 weights, the seed of every block's streams) are those every kernel
    takes, described once in :mod:`._sampling` with the limits on ``nnz`` and ``n_items``.

    Returns
    -------
    mean_loss : float
        Mean of ``-ln sigmoid(s_ui - s_uj)`` over the triples used, each taken before its
        step (the regularisation terms are not included).
    share_correct : float
        Share of those triples already ranked right (``s_ui > s_uj``); implicit reports it
        as "train AUC".
    skipped : int
        Triples skipped because ``max_tries`` draws found only positives.

    Notes
    -----
    Memory latency and mispredicted branches, more than arithmetic, bound BPR. A step touches
    ~20 scattered cache lines (the entry, the filter's offsets and word, three factor rows of
    usually 5 lines each, as numpy aligns rows to 16 bytes, two biases). A plain binary search
    for the negative check cost half of the epoch: rows are drawn in proportion to their
    length (~400 entries on average on synthetic 1M), and every probe is a coin-flip branch.
    So:

    * each row gets a small bit filter (:func:`._sampling.sampling_tables`, built at the start
      of the call, 16-32 bits per entry or an exact bitmap of the catalogue for long rows;
      24 MiB on synthetic 10M, beside the 8 bytes per entry of the entry table): one prefetched word
      answers "not a positive" for most candidates; only a set bit of a hashed filter leads
      to the (branch-free) binary search;
    * each block works in batches of ``_BATCH`` triples: it draws the batch's entries and first
      negative candidates and prefetches everything they will touch (factor rows, biases,
      filter words), checks the candidates, then runs the batch's SGD steps one after the
      other (the same steps as a plain loop, in the same order);
    * one float32 ``exp`` per step gives both the gradient weight and the loss term, and the
      loss's logarithm is taken once per batch (of the product of the ``1 + exp(-|x|)``).

    Block ``b`` draws entries from stream ``2b`` and negatives from stream ``2b + 1``: first
    one candidate per triple of the batch, then, in batch order, redraws for the candidates
    that were positives.
    """
    nnz = indices.shape[0]
    n_items, f = item_factors.shape
    if nnz == 0 or n_items == 0 or n_samples <= 0:
        return 0.0, 0.0, max(n_samples, 0)
    pairs, offsets, words = sampling_tables(indptr, indices, n_items)
    exact_words = (np.int64(n_items) + 63) >> 6
    blocks, loss_b, correct_b, skipped_b = epoch_blocks(n_samples, _SAMPLES)
    lr, rg, rb = np.float32(learning_rate), np.float32(reg), np.float32(reg_bias)
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for blk in nb.prange(blocks):
        s_pos = stream(seed, 2 * blk)
        s_neg = stream(seed, 2 * blk + 1)
        count = block_span(blk, _SAMPLES, n_samples)[1]
        bu = np.empty(_BATCH, dtype=np.int64)
        bi = np.empty(_BATCH, dtype=np.int64)
        bj = np.empty(_BATCH, dtype=np.int64)
        bw = np.empty(_BATCH, dtype=np.int64)
        bb = np.empty(_BATCH, dtype=np.uint64)
        loss = 0.0
        correct = 0
        skipped = 0
        for b0 in range(0, count, _BATCH):
            m = min(_BATCH, count - b0)
            for t in range(m):  # entries
                s_pos, z = next_bits(s_pos)
                e = below(z, nnz)
                bu[t] = e
                prefetch(pairs, e)
            load_batch(pairs, bu, bi, m, offsets, user_factors, item_factors, item_bias)
            for t in range(m):  # first negative candidates
                s_neg, z = next_bits(s_neg)
                j = below(z, n_items)
                bj[t] = j
                prefetch_row(item_factors, j)
                prefetch(item_bias, j)
            for t in range(m):  # the filter words the negative check will read
                w, bit = filter_slot(offsets, bu[t], bj[t], exact_words)
                bw[t] = w
                bb[t] = bit
                prefetch(words, w)
            for t in range(m):  # negative check, redraws
                if (words[bw[t]] >> bb[t]) & np.uint64(1) == np.uint64(0):
                    continue  # the filter proves it: not a positive
                u = bu[t]
                lo = indptr[u]
                hi = indptr[u + 1]
                j = bj[t]
                if offsets[u + 1] - offsets[u] < exact_words and not in_row(indices, lo, hi, j):
                    continue  # a false alarm of a hashed filter
                tries = 1
                while True:
                    if tries >= max_tries:
                        j = -1
                        break
                    s_neg, z = next_bits(s_neg)
                    j = below(z, n_items)
                    tries += 1
                    if not filtered_in_row(indices, lo, hi, offsets, words, exact_words, u, j):
                        break
                bj[t] = j
            prod = 1.0  # of 1 + exp(-|x|) <= 2 over the batch: <= 2**_BATCH
            for t in range(m):  # the SGD steps
                j = bj[t]
                if j < 0:
                    skipped += 1
                    continue
                i = bi[t]
                xu = user_factors[bu[t]]
                yi = item_factors[i]
                yj = item_factors[j]
                x = item_bias[i] - item_bias[j]
                for k in range(f):
                    x += xu[k] * (yi[k] - yj[k])
                if x > zero:
                    correct += 1
                # -ln sigmoid(x) = max(-x, 0) + ln(1 + exp(-|x|)), without overflow; the
                # gradient weight sigmoid(-x) from the same exponential
                ex = np.exp(-abs(x))
                inv = one / (one + ex)
                g = ex * inv if x >= zero else inv
                loss += max(-x, zero)
                prod *= 1.0 + ex
                for k in range(f):
                    a = xu[k]
                    b = yi[k]
                    c = yj[k]
                    xu[k] = a + lr * (g * (b - c) - rg * a)
                    yi[k] = b + lr * (g * a - rg * b)
                    yj[k] = c + lr * (-g * a - rg * c)
                item_bias[i] += lr * (g - rb * item_bias[i])
                item_bias[j] += lr * (-g - rb * item_bias[j])
            loss += math.log(prod)
        loss_b[blk] = loss
        correct_b[blk] = correct
        skipped_b[blk] = skipped
    skipped_all = skipped_b.sum()
    used = n_samples - skipped_all
    if used == 0:
        return 0.0, 0.0, skipped_all
    return loss_b.sum() / used, correct_b.sum() / used, skipped_all


@nb.njit(cache=True, nogil=True, parallel=True, fastmath=FASTMATH, error_model="numpy")
def bpr_fold_in(
    indptr, indices, item_factors, item_bias, X, epochs, learning_rate, reg, max_tries, seed
):
    """Fit user vectors ``X`` in place for the histories in the CSR, items held fixed.

    For each row ``u``, ``epochs * n_u`` BPR steps on ``x_u`` only (positives drawn from the
    row, negatives as in :func:`bpr_epoch`, ``max_tries`` draws at most). Rows are
    independent, so the result does not depend on the thread count; each block of rows
    (:func:`._sampling.fold_in_block`) draws from its own stream. The arguments are those
    every fold-in kernel takes (:mod:`._sampling`), with ``max_tries`` before ``seed``.
    """
    n_rows, f = X.shape
    n_items = item_factors.shape[0]
    lr, rg = np.float32(learning_rate), np.float32(reg)
    for blk in nb.prange(fold_in_blocks(n_rows)):
        state, first, stop = fold_in_block(seed, blk, n_rows)
        for u in range(first, stop):
            lo, hi = indptr[u], indptr[u + 1]
            if hi == lo:
                continue
            xu = X[u]
            for _ in range(epochs * (hi - lo)):
                state, i = draw_in_row(state, indices, lo, hi)
                state, j = draw_negative(state, indices, lo, hi, n_items, max_tries)
                if j < 0:
                    continue
                yi = item_factors[i]
                yj = item_factors[j]
                x = item_bias[i] - item_bias[j]
                for k in range(f):
                    x += xu[k] * (yi[k] - yj[k])
                g = np.float32(1.0) / (np.float32(1.0) + np.exp(x))
                for k in range(f):
                    xu[k] += lr * (g * (yi[k] - yj[k]) - rg * xu[k])


# --- slow NumPy references, used only by tests ---------------------------------------------
def _reference_bpr_update(
    xu: np.ndarray,
    yi: np.ndarray,
    yj: np.ndarray,
    bi: float,
    bj: float,
    learning_rate: float,
    reg: float,
    reg_bias: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float, float]:
    """One BPR step on a triple from the gradient of the objective (float64).

    Returns the new ``(xu, yi, yj, bi, bj)`` and the loss ``-ln sigmoid(s_ui - s_uj)``.
    """
    xu, yi, yj = (np.asarray(v, dtype=np.float64) for v in (xu, yi, yj))
    x = float(xu @ (yi - yj) + bi - bj)
    g = 1.0 / (1.0 + np.exp(x))  # d ln sigmoid(x) / dx
    lr = learning_rate
    return (
        xu + lr * (g * (yi - yj) - reg * xu),
        yi + lr * (g * xu - reg * yi),
        yj + lr * (-g * xu - reg * yj),
        bi + lr * (g - reg_bias * bi),
        bj + lr * (-g - reg_bias * bj),
        float(np.log1p(np.exp(-x))),
    )


def _reference_bpr_epoch(
    indptr: np.ndarray,
    indices: np.ndarray,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    item_bias: np.ndarray,
    n_samples: int,
    learning_rate: float,
    reg: float,
    reg_bias: float,
    seed: int,
    max_tries: int,
) -> tuple[float, float, int]:
    """:func:`bpr_epoch` with one thread, triple by triple in float64 (arrays updated).

    As the kernel does, each batch draws its entries and first negative candidates before it
    redraws the candidates that were positives, then takes its steps in order.
    """
    rows = reference_rows(indptr)
    nnz, n_items = len(indices), item_factors.shape[0]
    loss, correct, skipped = 0.0, 0, 0
    for b0 in range(0, n_samples, _BATCH):
        if b0 % _SAMPLES == 0:
            pos = ReferenceStream(seed, 2 * (b0 // _SAMPLES))
            neg = ReferenceStream(seed, 2 * (b0 // _SAMPLES) + 1)
        m = min(_BATCH, n_samples - b0, _SAMPLES - b0 % _SAMPLES)
        entries = [pos.below(nnz) for _ in range(m)]
        candidates = [neg.below(n_items) for _ in range(m)]
        triples = []
        for e, j in zip(entries, candidates, strict=True):
            u, i = int(rows[e]), int(indices[e])
            positives = set(indices[indptr[u] : indptr[u + 1]].tolist())
            if j in positives:
                j = neg.negative(positives, n_items, max_tries - 1) if max_tries > 1 else -1
            triples.append((u, i, j))
        for u, i, j in triples:
            if j < 0:
                skipped += 1
                continue
            xu, yi, yj, bi, bj, lo = _reference_bpr_update(
                user_factors[u], item_factors[i], item_factors[j],
                float(item_bias[i]), float(item_bias[j]), learning_rate, reg, reg_bias,
            )  # fmt: skip
            correct += lo < np.log(2.0)  # s_ui > s_uj  <=>  loss < ln 2
            loss += lo
            user_factors[u], item_factors[i], item_factors[j] = xu, yi, yj
            item_bias[i], item_bias[j] = bi, bj
    used = n_samples - skipped
    return (loss / used, correct / used, skipped) if used else (0.0, 0.0, skipped)
