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
rule it out, of a binary search in the sorted CSR row.

Parallelism: ``prange`` over blocks of ``_SAMPLES`` samples; block ``b`` draws from its own
splitmix64 stream seeded by ``(seed, b)``, so the triples drawn do not depend on the thread
count. The updates race (Hogwild). With one thread the epoch is bit-for-bit repeatable; with
more, the triples are the same but the interleaving of updates is not.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = [
    "bpr_epoch",
    "bpr_fold_in",
    "_reference_bpr_epoch",
    "_reference_bpr_update",
]

_FAST = {"reassoc", "contract", "arcp"}
_SAMPLES = 4096  # samples per RNG block
_BATCH = 32  # samples whose memory is prefetched together (software pipelining)
_ROWS = 64  # rows per RNG block in the fold-in kernel
_GOLDEN = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1


# --- random numbers (shared with warp.py) ---------------------------------------------------
@nb.njit(cache=True, nogil=True)
def _mix64(z):
    # the splitmix64 output function (Steele, Lea & Flood 2014); uint64 arithmetic wraps
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@nb.njit(cache=True, nogil=True)
def _stream(seed, block):
    """Initial state of the stream of ``block`` under ``seed`` (a hash of both)."""
    return _mix64(np.uint64(seed) ^ _mix64(np.uint64(block) + np.uint64(_GOLDEN)))


@nb.njit(cache=True, nogil=True)
def _next(state):
    """Advance a splitmix64 stream: return ``(new_state, 64 random bits)``."""
    state = state + np.uint64(_GOLDEN)
    return state, _mix64(state)


@nb.njit(cache=True, nogil=True)
def _below(z, n):
    """Map 64 random bits to ``0..n-1`` (``n < 2**32``) by the high 32 bits times ``n``."""
    return np.int64(((z >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))


@nb.njit(cache=True, nogil=True)
def _in_row(indices, lo, hi, item):
    """Whether ``item`` is among the sorted ``indices[lo:hi]`` (binary search).

    Branch-free halving (the comparison picks the next base by a conditional move): the
    outcome of each comparison is a coin flip, and a mispredicted branch per probe cost more
    than the probes themselves.
    """
    n = hi - lo
    if n <= 0:
        return False
    base = lo
    while n > 1:
        half = n >> 1
        base = base + half if indices[base + half] <= item else base
        n -= half
    return indices[base] == item


@nb.njit(cache=True, nogil=True)
def _draw_negative(state, indices, lo, hi, n_items, max_tries):
    """Draw an item not in ``indices[lo:hi]``; ``-1`` after ``max_tries`` positives."""
    for _ in range(max_tries):
        state, z = _next(state)
        j = _below(z, n_items)
        if not _in_row(indices, lo, hi, j):
            return state, j
    return state, -1


@nb.njit(cache=True, nogil=True)
def _entry_pairs(indptr, indices):
    # (row << 32) | column of every entry: one cache line per sampled entry instead of two
    out = np.empty(indices.shape[0], dtype=np.int64)
    for u in range(indptr.shape[0] - 1):
        for idx in range(indptr[u], indptr[u + 1]):
            out[idx] = (np.int64(u) << 32) | np.int64(indices[idx])
    return out


# --- a per-row bit filter in front of the binary search (shared with warp.py) ----------------
# Row u owns a segment of 64-bit words: an exact bitmap of the catalogue when that is no larger
# than ~_FILTER_BITS bits per entry of the row, otherwise a power-of-two number of bits,
# at least _FILTER_BITS per entry, indexed by a multiplicative hash of the item (a one-hash
# Bloom filter: a clear bit proves "not in the row", a set bit needs the binary search).
_FILTER_BITS = 16
_HASH = 0x9E3779B97F4A7C15
_PARALLEL_TABLES = 1 << 22  # entries from which the tables are filled in parallel


@nb.njit(cache=True, nogil=True)
def _filter_words(n, exact_words):
    if n <= 0:
        return 0
    bits = 64
    while bits < _FILTER_BITS * n:
        bits <<= 1
    return min(bits >> 6, exact_words)


@nb.njit(cache=True, nogil=True)
def _filter_offsets(indptr, n_items):
    n_rows = indptr.shape[0] - 1
    exact_words = (np.int64(n_items) + 63) >> 6
    offsets = np.empty(n_rows + 1, dtype=np.int64)
    offsets[0] = 0
    for u in range(n_rows):
        offsets[u + 1] = offsets[u] + _filter_words(indptr[u + 1] - indptr[u], exact_words)
    return offsets


@nb.njit(cache=True, nogil=True)
def _fill_tables(indptr, indices, n_items, offsets, words, pairs, u0, u1):
    """Entry pairs and filter bits of rows ``u0..u1-1`` (disjoint entries and words)."""
    exact_words = (np.int64(n_items) + 63) >> 6
    for u in range(u0, u1):
        for idx in range(indptr[u], indptr[u + 1]):
            item = indices[idx]
            pairs[idx] = (np.int64(u) << 32) | np.int64(item)
            w, bit = _filter_slot(offsets, u, item, exact_words)
            words[w] |= np.uint64(1) << bit


@nb.njit(cache=True, nogil=True, parallel=True)
def _fill_tables_parallel(indptr, indices, n_items, offsets, words, pairs):
    n_rows = indptr.shape[0] - 1
    n_blocks = min(n_rows, 64)
    for blk in nb.prange(n_blocks):  # rows own disjoint entries and words: no races
        u0 = blk * n_rows // n_blocks
        u1 = (blk + 1) * n_rows // n_blocks
        _fill_tables(indptr, indices, n_items, offsets, words, pairs, u0, u1)


@nb.njit(cache=True, nogil=True)
def _sampling_tables(indptr, indices, n_items):
    """``(pairs, offsets, words)``: :func:`_entry_pairs` and every row's bit filter (row
    ``u``'s words are ``words[offsets[u]:offsets[u + 1]]``).

    Filled in one pass over the rows, in parallel only from ``_PARALLEL_TABLES`` entries: a
    parallel region wakes the threads and ends at a barrier, which on a busy machine cost
    more than the serial fill of synthetic 1M (~4 ms).
    """
    offsets = _filter_offsets(indptr, n_items)
    words = np.zeros(offsets[-1], dtype=np.uint64)
    pairs = np.empty(indices.shape[0], dtype=np.int64)
    if indices.shape[0] >= _PARALLEL_TABLES:
        _fill_tables_parallel(indptr, indices, n_items, offsets, words, pairs)
    else:
        _fill_tables(indptr, indices, n_items, offsets, words, pairs, 0, indptr.shape[0] - 1)
    return pairs, offsets, words


@nb.njit(cache=True, nogil=True, inline="always")
def _filter_slot(offsets, u, item, exact_words):
    """``(word, bit)`` of ``item`` in row ``u``'s filter."""
    w0 = offsets[u]
    nw = offsets[u + 1] - w0
    if nw >= exact_words:
        pos = np.uint64(item)
    else:
        pos = ((np.uint64(item) * np.uint64(_HASH)) >> np.uint64(32)) & np.uint64(64 * nw - 1)
    return w0 + np.int64(pos >> np.uint64(6)), pos & np.uint64(63)


@nb.njit(cache=True, nogil=True, inline="always")
def _filtered_in_row(indices, lo, hi, offsets, words, exact_words, u, item):
    """Whether ``item`` is in row ``u`` (``indices[lo:hi]``), the filter asked first."""
    w, bit = _filter_slot(offsets, u, item, exact_words)
    if (words[w] >> bit) & np.uint64(1) == np.uint64(0):
        return False
    if offsets[u + 1] - offsets[u] >= exact_words:
        return True
    return _in_row(indices, lo, hi, item)


# --- software prefetch (shared with warp.py) ------------------------------------------------
def _prefetch_call(builder, ptr):
    i8p = ir.IntType(8).as_pointer()
    i32 = ir.IntType(32)
    fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
    fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
    # read, high temporal locality, data cache
    builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])


@intrinsic
def _prefetch(typingctx, arr, idx):
    """Hint the CPU to fetch ``arr[idx]`` (1-D) into cache; no effect on results."""
    if not isinstance(arr, types.Array) or arr.ndim != 1:
        return None

    def codegen(context, builder, signature, args):
        aryty, idxty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        ind = context.cast(builder, args[1], idxty, types.intp)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [ind], wraparound=False)
        _prefetch_call(builder, ptr)
        return context.get_dummy_value()

    return types.void(arr, idx), codegen


@intrinsic
def _prefetch_row(typingctx, arr, row):
    """Hint the CPU to fetch every cache line of row ``row`` of a C-contiguous 2-D array."""
    if not isinstance(arr, types.Array) or arr.ndim != 2 or arr.layout != "C":
        return None

    def codegen(context, builder, signature, args):
        aryty, rowty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        ind = context.cast(builder, args[1], rowty, types.intp)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [ind, zero], wraparound=False)
        base = builder.bitcast(ptr, ir.IntType(8).as_pointer())
        itemsize = context.get_abi_sizeof(context.get_data_type(aryty.dtype))
        ncols = cgutils.unpack_tuple(builder, ary.shape, 2)[1]
        nbytes = builder.mul(ncols, context.get_constant(types.intp, itemsize))
        step = context.get_constant(types.intp, 64)
        with cgutils.for_range_slice(builder, zero, nbytes, step) as (off, _):
            _prefetch_call(builder, builder.gep(base, [off]))
        # numpy aligns to 16 bytes, not to cache lines: a 256-byte row usually spans 5 lines
        one = context.get_constant(types.intp, 1)
        with builder.if_then(builder.icmp_signed(">", nbytes, zero)):
            _prefetch_call(builder, builder.gep(base, [builder.sub(nbytes, one)]))
        return context.get_dummy_value()

    return types.void(arr, row), codegen


# --- kernels --------------------------------------------------------------------------------
@nb.njit(cache=True, nogil=True, parallel=True, fastmath=_FAST, error_model="numpy")
def bpr_epoch(
    indptr,
    indices,
    user_factors,
    item_factors,
    item_bias,
    n_samples,
    learning_rate,
    reg,
    reg_bias,
    seed,
    max_tries,
):
    """Run ``n_samples`` BPR SGD steps in place; return ``(mean_loss, share_correct, skipped)``.

    Parameters
    ----------
    indptr : int32 or int64 [n_users + 1]
    indices : int32 [nnz]
        The users x items training CSR; indices sorted within each row (values unused).
    user_factors : float32 [n_users, f]
    item_factors : float32 [n_items, f]
    item_bias : float32 [n_items]
        All three C-contiguous and updated in place.
    n_samples : int
        Triples to draw; ``nnz`` is one epoch.
    learning_rate, reg, reg_bias : float
    seed : int
        Seeds every block's streams.
    max_tries : int
        Negative draws per triple before it is skipped (``>= 1``).

    ``nnz`` and ``n_items`` must stay below 2**32 (the draws use 32-bit multiply-shift).

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

    * each row gets a small bit filter (:func:`_sampling_tables`, built at the start of the call,
      16-32 bits per entry or an exact bitmap of the catalogue for long rows; 24 MiB on
      synthetic 10M, beside the 8 bytes per entry of the entry table): one prefetched word
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
    pairs, offsets, words = _sampling_tables(indptr, indices, n_items)
    exact_words = (np.int64(n_items) + 63) >> 6
    n_blocks = (n_samples + _SAMPLES - 1) // _SAMPLES
    loss_b = np.zeros(n_blocks, dtype=np.float64)
    correct_b = np.zeros(n_blocks, dtype=np.int64)
    skipped_b = np.zeros(n_blocks, dtype=np.int64)
    lr = np.float32(learning_rate)
    rg = np.float32(reg)
    rb = np.float32(reg_bias)
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for blk in nb.prange(n_blocks):
        s_pos = _stream(seed, 2 * blk)
        s_neg = _stream(seed, 2 * blk + 1)
        count = min((blk + 1) * _SAMPLES, n_samples) - blk * _SAMPLES
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
                s_pos, z = _next(s_pos)
                e = _below(z, nnz)
                bu[t] = e
                _prefetch(pairs, e)
            for t in range(m):  # users, positives, first negative candidates
                p = pairs[bu[t]]
                u = p >> 32
                i = p & 0xFFFFFFFF
                bu[t] = u
                bi[t] = i
                s_neg, z = _next(s_neg)
                j = _below(z, n_items)
                bj[t] = j
                _prefetch(offsets, u)
                _prefetch_row(user_factors, u)
                _prefetch_row(item_factors, i)
                _prefetch_row(item_factors, j)
                _prefetch(item_bias, i)
                _prefetch(item_bias, j)
            for t in range(m):  # the filter words the negative check will read
                w, bit = _filter_slot(offsets, bu[t], bj[t], exact_words)
                bw[t] = w
                bb[t] = bit
                _prefetch(words, w)
            for t in range(m):  # negative check, redraws
                if (words[bw[t]] >> bb[t]) & np.uint64(1) == np.uint64(0):
                    continue  # the filter proves it: not a positive
                u = bu[t]
                lo = indptr[u]
                hi = indptr[u + 1]
                j = bj[t]
                if offsets[u + 1] - offsets[u] < exact_words and not _in_row(indices, lo, hi, j):
                    continue  # a false alarm of a hashed filter
                tries = 1
                while True:
                    if tries >= max_tries:
                        j = -1
                        break
                    s_neg, z = _next(s_neg)
                    j = _below(z, n_items)
                    tries += 1
                    if not _filtered_in_row(indices, lo, hi, offsets, words, exact_words, u, j):
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


@nb.njit(cache=True, nogil=True, parallel=True, fastmath=_FAST, error_model="numpy")
def bpr_fold_in(
    indptr, indices, item_factors, item_bias, X, epochs, learning_rate, reg, seed, max_tries
):
    """Fit user vectors ``X`` in place for the histories in the CSR, items held fixed.

    For each row ``u``, ``epochs * n_u`` BPR steps on ``x_u`` only (positives drawn from the
    row, negatives as in :func:`bpr_epoch`), starting from the given ``X`` (zeros are fine).
    Rows are independent, so the result does not depend on the thread count; row blocks of
    ``_ROWS`` draw from their own streams. A row with no entries is left as it is.

    Parameters
    ----------
    indptr, indices : CSR of the histories (sorted indices), one row per user to fold in.
    item_factors : float32 [n_items, f]
    item_bias : float32 [n_items]
    X : float32 [n_rows, f]
        Updated in place.
    epochs : int
    learning_rate, reg : float
    seed, max_tries : int
    """
    n_rows, f = X.shape
    n_items = item_factors.shape[0]
    lr = np.float32(learning_rate)
    rg = np.float32(reg)
    n_blocks = (n_rows + _ROWS - 1) // _ROWS
    for blk in nb.prange(n_blocks):
        state = _stream(seed, blk)
        for u in range(blk * _ROWS, min((blk + 1) * _ROWS, n_rows)):
            lo = indptr[u]
            hi = indptr[u + 1]
            if hi == lo:
                continue
            xu = X[u]
            for _ in range(epochs * (hi - lo)):
                state, z = _next(state)
                i = indices[lo + _below(z, hi - lo)]
                state, j = _draw_negative(state, indices, lo, hi, n_items, max_tries)
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
def _ref_mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


class _RefStream:
    """The kernels' random stream of one block, in plain Python integers."""

    def __init__(self, seed: int, block: int):
        self.state = _ref_mix64((seed & _MASK64) ^ _ref_mix64((block + _GOLDEN) & _MASK64))

    def below(self, n: int) -> int:
        self.state = (self.state + _GOLDEN) & _MASK64
        return ((_ref_mix64(self.state) >> 32) * n) >> 32

    def negative(self, positives: set[int], n_items: int, max_tries: int) -> int:
        for _ in range(max_tries):
            j = self.below(n_items)
            if j not in positives:
                return j
        return -1


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
    """:func:`bpr_epoch` with one thread, triple by triple in float64 (arrays updated)."""
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    nnz, n_items = len(indices), item_factors.shape[0]
    loss, correct, skipped = 0.0, 0, 0
    for b0 in range(0, n_samples, _BATCH):
        if b0 % _SAMPLES == 0:
            pos = _RefStream(seed, 2 * (b0 // _SAMPLES))
            neg = _RefStream(seed, 2 * (b0 // _SAMPLES) + 1)
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
