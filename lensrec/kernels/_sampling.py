"""Random streams, sampling from a CSR and the loop scaffolding shared by the BPR and WARP
kernels.

* **Streams.** splitmix64 (Steele, Lea & Flood, OOPSLA 2014): a block of work seeds its own
  stream from ``(seed, block)`` with :func:`stream`, advances it with :func:`next_bits` and
  maps the bits to ``0..n-1`` with :func:`below`; what a block draws does not depend on the
  thread count. :class:`ReferenceStream` is the same stream in plain Python, for references.
* **Rows.** :func:`in_row` (branch-free binary search in a sorted CSR row),
  :func:`draw_negative` (an item not in a row) and :func:`entry_pairs` (``(row << 32) | col``
  of every entry, so a sampled entry costs one cache line).
* **Bit filters.** :func:`sampling_tables` builds :func:`entry_pairs` and a small bit filter
  per row in front of the binary search; :func:`filter_slot` and :func:`filtered_in_row` ask
  it. Row ``u`` owns a segment of 64-bit words: an exact bitmap of the catalogue when that is
  no larger than about ``FILTER_BITS`` bits per entry of the row, otherwise a power-of-two
  number of bits, at least ``FILTER_BITS`` per entry, indexed by a multiplicative hash of the
  item (a one-hash Bloom filter: a clear bit proves "not in the row", a set bit needs the
  binary search).
* **Prefetch.** :func:`prefetch` and :func:`prefetch_row` hint the CPU to fetch memory a
  later step will read (no effect on results).
* **Blocks.** Work is cut into blocks of a fixed size, each with its own stream
  (:func:`block_count`, :func:`block_span`); an epoch tallies per block (:func:`epoch_blocks`)
  and sums after the parallel loop, so its sums do not depend on the thread count. An epoch
  works a block in batches: it fills ``bu`` with entry numbers and :func:`load_batch` turns
  them into users and positives, prefetching what the steps will read. A fold-in kernel
  runs blocks of ``FOLD_IN_ROWS`` rows (:func:`fold_in_blocks`, :func:`fold_in_block`), drawing each step's
  positive from the row with :func:`draw_in_row`.

``nnz`` and ``n_items`` must stay below 2**32 (entry pairs and the 32-bit multiply-shift).

The arguments the kernels share, in this order, documented here once:

* ``indptr`` (int32 or int64 [n_rows + 1]), ``indices`` (int32 [nnz]): a users x items CSR,
  indices sorted within each row, values unused: the training data of an epoch, or the
  histories of a fold-in (one row per user to fold in);
* ``user_factors`` (float32 [n_users, f]), ``item_factors`` (float32 [n_items, f]),
  ``item_bias`` (float32 [n_items]): C-contiguous; an epoch updates all three in place; a
  fold-in takes ``item_factors, item_bias`` (read only) and then ``X`` (float32
  [n_rows, f]), the user vectors it fits in place from their given values (zeros are
  fine), and ``epochs`` (passes over each row: ``epochs * n_u`` steps; an empty row is left
  as it is);
* ``learning_rate``, ``reg`` and an epoch's ``reg_bias`` (floats, used as float32): the step
  size and the L2 weights on the factors and on the item biases;
* the kernel's own arguments, then (last in a fold-in) ``seed`` (int), which seeds every
  block's stream.

numba's cache keys a compiled kernel on the content of the kernel's own file only: after
editing this module, delete ``lensrec/kernels/__pycache__/bpr.*`` and ``warp.*`` (or touch
``bpr.py`` and ``warp.py``), or the kernels keep running the old helpers.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = [
    "FASTMATH",
    "MASK64",
    "ReferenceStream",
    "FOLD_IN_ROWS",
    "below",
    "block_count",
    "block_span",
    "draw_in_row",
    "draw_negative",
    "entry_pairs",
    "epoch_blocks",
    "fill_tables_parallel",
    "filter_slot",
    "filtered_in_row",
    "fold_in_block",
    "fold_in_blocks",
    "in_row",
    "load_batch",
    "mix64",
    "next_bits",
    "prefetch",
    "prefetch_row",
    "reference_mix64",
    "reference_rows",
    "sampling_tables",
    "stream",
    "unpack",
]

GOLDEN = 0x9E3779B97F4A7C15
MASK64 = (1 << 64) - 1
#: numba ``fastmath`` flags of the kernels' float code: reassociation, contraction (FMA) and
#: reciprocals, but not ``nnan`` / ``ninf`` (NaN and inf keep their meaning)
FASTMATH = {"reassoc", "contract", "arcp"}


# --- random numbers -------------------------------------------------------------------------
@nb.njit(cache=True, nogil=True)
def mix64(z):
    """The splitmix64 output function; uint64 arithmetic wraps."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@nb.njit(cache=True, nogil=True)
def stream(seed, block):
    """Initial state of the stream of ``block`` under ``seed`` (a hash of both)."""
    return mix64(np.uint64(seed) ^ mix64(np.uint64(block) + np.uint64(GOLDEN)))


@nb.njit(cache=True, nogil=True)
def next_bits(state):
    """Advance a splitmix64 stream: return ``(new_state, 64 random bits)``."""
    state = state + np.uint64(GOLDEN)
    return state, mix64(state)


@nb.njit(cache=True, nogil=True)
def below(z, n):
    """Map 64 random bits to ``0..n-1`` (``n < 2**32``) by the high 32 bits times ``n``."""
    return np.int64(((z >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))


# --- rows of a CSR --------------------------------------------------------------------------
@nb.njit(cache=True, nogil=True)
def in_row(indices, lo, hi, item):
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
def draw_negative(state, indices, lo, hi, n_items, max_tries):
    """Draw an item not in ``indices[lo:hi]``; ``-1`` after ``max_tries`` positives.

    Returns ``(new_state, item)``.
    """
    for _ in range(max_tries):
        state, z = next_bits(state)
        j = below(z, n_items)
        if not in_row(indices, lo, hi, j):
            return state, j
    return state, -1


@nb.njit(cache=True, nogil=True, inline="always")
def draw_in_row(state, indices, lo, hi):
    """An item drawn uniformly from the row ``indices[lo:hi]`` (``hi > lo``).

    Returns ``(new_state, item)``.
    """
    state, z = next_bits(state)
    return state, indices[lo + below(z, hi - lo)]


@nb.njit(cache=True, nogil=True)
def entry_pairs(indptr, indices):
    """``(row << 32) | column`` of every entry (int64 ``[nnz]``): one cache line per sampled
    entry instead of two."""
    out = np.empty(indices.shape[0], dtype=np.int64)
    for u in range(indptr.shape[0] - 1):
        for idx in range(indptr[u], indptr[u + 1]):
            out[idx] = (np.int64(u) << 32) | np.int64(indices[idx])
    return out


@nb.njit(cache=True, nogil=True, inline="always")
def unpack(pair):
    """``(row, column)`` of an :func:`entry_pairs` entry."""
    return pair >> 32, pair & 0xFFFFFFFF


# --- a per-row bit filter in front of the binary search -------------------------------------
FILTER_BITS = 16
HASH = 0x9E3779B97F4A7C15
PARALLEL_TABLES = 1 << 22  # entries from which the tables are filled in parallel


@nb.njit(cache=True, nogil=True)
def _filter_words(n, exact_words):
    if n <= 0:
        return 0
    bits = 64
    while bits < FILTER_BITS * n:
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


@nb.njit(cache=True, nogil=True, inline="always")
def filter_slot(offsets, u, item, exact_words):
    """``(word, bit)`` of ``item`` in row ``u``'s filter (``exact_words``: the words of an
    exact bitmap of the catalogue, ``ceil(n_items / 64)``)."""
    w0 = offsets[u]
    nw = offsets[u + 1] - w0
    if nw >= exact_words:
        pos = np.uint64(item)
    else:
        pos = ((np.uint64(item) * np.uint64(HASH)) >> np.uint64(32)) & np.uint64(64 * nw - 1)
    return w0 + np.int64(pos >> np.uint64(6)), pos & np.uint64(63)


@nb.njit(cache=True, nogil=True)
def _fill_tables(indptr, indices, n_items, offsets, words, pairs, u0, u1):
    """Entry pairs and filter bits of rows ``u0..u1-1`` (disjoint entries and words)."""
    exact_words = (np.int64(n_items) + 63) >> 6
    for u in range(u0, u1):
        for idx in range(indptr[u], indptr[u + 1]):
            item = indices[idx]
            pairs[idx] = (np.int64(u) << 32) | np.int64(item)
            w, bit = filter_slot(offsets, u, item, exact_words)
            words[w] |= np.uint64(1) << bit


@nb.njit(cache=True, nogil=True, parallel=True)
def fill_tables_parallel(indptr, indices, n_items, offsets, words, pairs):
    """:func:`sampling_tables`' fill of ``words`` and ``pairs`` over blocks of rows in
    parallel (the same bits as the serial fill)."""
    n_rows = indptr.shape[0] - 1
    n_blocks = min(n_rows, 64)
    for blk in nb.prange(n_blocks):  # rows own disjoint entries and words: no races
        u0 = blk * n_rows // n_blocks
        u1 = (blk + 1) * n_rows // n_blocks
        _fill_tables(indptr, indices, n_items, offsets, words, pairs, u0, u1)


@nb.njit(cache=True, nogil=True)
def sampling_tables(indptr, indices, n_items):
    """``(pairs, offsets, words)``: :func:`entry_pairs` and every row's bit filter (row
    ``u``'s words are ``words[offsets[u]:offsets[u + 1]]``).

    Filled in one pass over the rows, in parallel only from ``PARALLEL_TABLES`` entries: a
    parallel region wakes the threads and ends at a barrier, which on a busy machine cost
    more than the serial fill of synthetic 1M (~4 ms).
    """
    offsets = _filter_offsets(indptr, n_items)
    words = np.zeros(offsets[-1], dtype=np.uint64)
    pairs = np.empty(indices.shape[0], dtype=np.int64)
    if indices.shape[0] >= PARALLEL_TABLES:
        fill_tables_parallel(indptr, indices, n_items, offsets, words, pairs)
    else:
        _fill_tables(indptr, indices, n_items, offsets, words, pairs, 0, indptr.shape[0] - 1)
    return pairs, offsets, words


@nb.njit(cache=True, nogil=True, inline="always")
def filtered_in_row(indices, lo, hi, offsets, words, exact_words, u, item):
    """Whether ``item`` is in row ``u`` (``indices[lo:hi]``), the filter asked first."""
    w, bit = filter_slot(offsets, u, item, exact_words)
    if (words[w] >> bit) & np.uint64(1) == np.uint64(0):
        return False
    if offsets[u + 1] - offsets[u] >= exact_words:
        return True
    return in_row(indices, lo, hi, item)


# --- software prefetch ----------------------------------------------------------------------
def _prefetch_call(builder, ptr):
    i8p = ir.IntType(8).as_pointer()
    i32 = ir.IntType(32)
    fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
    fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
    # read, high temporal locality, data cache
    builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])


@intrinsic
def prefetch(typingctx, arr, idx):
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
def prefetch_row(typingctx, arr, row):
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


# --- blocks, batches and the kernels' loops -------------------------------------------------
FOLD_IN_ROWS = 64  # rows per random stream in the fold-in kernels


@nb.njit(cache=True, nogil=True, inline="always")
def block_count(total, size):
    """How many blocks of ``size`` hold ``total`` samples (or rows)."""
    return (total + size - 1) // size


@nb.njit(cache=True, nogil=True, inline="always")
def block_span(blk, size, total):
    """``(first, count)``: where block ``blk`` of ``size`` starts and how much it holds."""
    first = blk * size
    return first, min(first + size, total) - first


@nb.njit(cache=True, nogil=True, inline="always")
def epoch_blocks(total, size):
    """``(blocks, loss, count_a, count_b)``: the blocks of ``size`` that hold an epoch's
    ``total`` samples, and zeroed tallies for each (a float64 loss, two int64 counts).

    Inlined: called, it changed how LLVM rounds the epoch's closing divisions (fastmath
    ``arcp``) by one ulp.
    """
    blocks = block_count(total, size)
    loss = np.zeros(blocks, dtype=np.float64)
    return blocks, loss, np.zeros(blocks, dtype=np.int64), np.zeros(blocks, dtype=np.int64)


@nb.njit(cache=True, nogil=True, inline="always")
def load_batch(pairs, bu, bi, m, rows, user_factors, item_factors, item_bias):
    """Turn the entry numbers ``bu[:m]`` into users (``bu``) and positives (``bi``) and
    prefetch what the steps read first: the user's ``rows`` entry (``indptr`` or the
    filter offsets), factor rows and the positive's bias."""
    for t in range(m):
        u, i = unpack(pairs[bu[t]])
        bu[t] = u
        bi[t] = i
        prefetch(rows, u)
        prefetch_row(user_factors, u)
        prefetch_row(item_factors, i)
        prefetch(item_bias, i)


@nb.njit(cache=True, nogil=True, inline="always")
def fold_in_blocks(n_rows):
    """How many blocks of ``FOLD_IN_ROWS`` rows a fold-in of ``n_rows`` rows runs."""
    return block_count(n_rows, FOLD_IN_ROWS)


@nb.njit(cache=True, nogil=True, inline="always")
def fold_in_block(seed, blk, n_rows):
    """Fold-in block ``blk``: ``(stream, first row, row after the last)``."""
    first, count = block_span(blk, FOLD_IN_ROWS, n_rows)
    return stream(seed, blk), first, first + count


# --- the streams in plain Python, for the kernels' references (tests only) ------------------
def reference_mix64(z: int) -> int:
    """:func:`mix64` on Python integers."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def reference_rows(indptr: np.ndarray) -> np.ndarray:
    """The row of every entry of a CSR (the upper half of :func:`entry_pairs`)."""
    return np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))


class ReferenceStream:
    """The kernels' random stream of one block (:func:`stream`), in plain Python integers."""

    def __init__(self, seed: int, block: int):
        self.state = reference_mix64((seed & MASK64) ^ reference_mix64((block + GOLDEN) & MASK64))

    def below(self, n: int) -> int:
        """:func:`next_bits` then :func:`below`."""
        self.state = (self.state + GOLDEN) & MASK64
        return ((reference_mix64(self.state) >> 32) * n) >> 32

    def negative(self, positives: set[int], n_items: int, max_tries: int) -> int:
        """:func:`draw_negative` against a set of positives."""
        for _ in range(max_tries):
            j = self.below(n_items)
            if j not in positives:
                return j
        return -1
