"""Top-k selection with seen-item exclusion: the one shared ranking kernel.

Arrays in, arrays out: a dense float32 score block ``[b, n]`` for ``b`` users, an optional
CSR of items to exclude (``indptr, indices`` of the same ``b`` rows) and ``k``.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np

from ._heap import heap_drain, heap_push

__all__ = ["topk_rows", "_reference_topk_rows"]


_CHUNK = 32  # columns per skip test in topk_rows


#: below this many score values (rows x columns) a call runs on the calling thread: a
#: parallel region costs more than the work there (on 2 busy cores, one 1,682-item row took
#: ~5 ms through the parallel kernel against microseconds serially). Same answer either way.
PARALLEL_MIN_VALUES = 1 << 18

_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """One thread pool per process (made again in a forked child, whose copy has no
    threads)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(max(1, os.cpu_count() or 1),
                                                     thread_name_prefix="lensrec-topk"))  # fmt: skip
        return _pool[1]


def topk_rows(scores, k, excl_indptr, excl_indices, out_ids, out_scores):
    """Fill ``out_ids`` / ``out_scores`` ``[b, k]`` with each row's best ``k`` columns.

    Columns listed in row ``r`` of the exclusion CSR (``excl_indptr`` of length ``b + 1``,
    sorted ``excl_indices``; an all-zero indptr excludes nothing) are skipped, and so are
    ``-inf`` scores. Best first; equal scores go to the lower column. Rows with fewer than
    ``k`` candidates are padded with ``-1`` / ``-inf``. NaN scores are treated as ``-inf``.

    A block of at least ``PARALLEL_MIN_VALUES`` scores is cut into one run of rows per
    thread (numba's thread count in force for the caller: ``LENSREC_THREADS``), each run
    ranked by the same serial kernel, which releases the GIL; smaller blocks run on the
    calling thread. The answer is the same bit for bit. (This was a ``parallel=True``
    kernel: the same speed, and one more compile of about 3 s on a first run.)
    """
    import numba

    n = scores.shape[0]
    threads = min(numba.get_num_threads(), n) if scores.size >= PARALLEL_MIN_VALUES else 1
    if threads <= 1:
        _topk_rows_serial(scores, k, excl_indptr, excl_indices, out_ids, out_scores)
        return
    cuts = [n * t // threads for t in range(threads + 1)]
    parts = [
        (scores[a:b], k, excl_indptr[a : b + 1], excl_indices, out_ids[a:b], out_scores[a:b])
        for a, b in zip(cuts[:-1], cuts[1:], strict=True)
    ]
    pool = _executor()
    futures = [pool.submit(_topk_rows_serial, *part) for part in parts[1:]]
    _topk_rows_serial(*parts[0])  # the calling thread takes the first run
    for future in futures:
        future.result()


@nb.njit(cache=True, nogil=True)
def _topk_row(scores, r, k, excl_indptr, excl_indices, out_ids, out_scores):
    """Row ``r`` of :func:`topk_rows`."""
    n = scores.shape[1]
    heap_s = np.empty(k, dtype=np.float32)
    heap_i = np.empty(k, dtype=np.int32)
    size = 0
    # the exclusion row is walked lazily: most columns lose to the current k-th best and
    # are skipped by one comparison, before any exclusion check
    e1 = excl_indptr[r + 1]
    ep = excl_indptr[r]
    for j0 in range(0, n, _CHUNK):
        j1 = min(j0 + _CHUNK, n)
        if size == k:
            # a chunk with no column above the k-th best is skipped whole: counting
            # comparisons vectorises (NaN never compares greater)
            thr = heap_s[0]
            c = 0
            for j in range(j0, j1):
                c += scores[r, j] > thr
            if c == 0:
                continue
        for j in range(j0, j1):
            s = scores[r, j]
            if size == k:
                if not (s > heap_s[0]):  # not better than the k-th best (or NaN)
                    continue
            elif not (s > -np.inf):  # -inf or NaN
                continue
            while ep < e1 and excl_indices[ep] < j:
                ep += 1
            if ep < e1 and excl_indices[ep] == j:
                continue
            size = heap_push(heap_s, heap_i, size, k, s, j)
    # pop worst first into the tail of the output: the row ends up best first
    for t in range(k):
        out_ids[r, t] = -1
        out_scores[r, t] = -np.inf
    heap_drain(heap_s, heap_i, size, out_ids, out_scores, r)


@nb.njit(cache=True, nogil=True)
def _topk_rows_serial(scores, k, excl_indptr, excl_indices, out_ids, out_scores):
    for r in range(scores.shape[0]):
        _topk_row(scores, r, k, excl_indptr, excl_indices, out_ids, out_scores)


def _reference_topk_rows(
    scores: np.ndarray, k: int, exclude: list[set[int]] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Slow, obviously-correct top-k used only by tests."""
    b, n = scores.shape
    ids = np.full((b, k), -1, dtype=np.int32)
    out = np.full((b, k), -np.inf, dtype=np.float32)
    for r in range(b):
        cand = [
            (-float(scores[r, j]), j)
            for j in range(n)
            if (exclude is None or j not in exclude[r]) and scores[r, j] > -np.inf
        ]
        cand.sort()
        for t, (neg, j) in enumerate(cand[:k]):
            ids[r, t] = j
            out[r, t] = -neg
    return ids, out
