"""Top-k selection with seen-item exclusion: the one shared ranking kernel.

Arrays in, arrays out: a dense float32 score block ``[b, n]`` for ``b`` users, an optional
CSR of items to exclude (``indptr, indices`` of the same ``b`` rows) and ``k``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["topk_rows", "_reference_topk_rows"]


@nb.njit(cache=True, nogil=True, inline="always")
def _worse(heap_s, heap_i, a, b):
    """Heap order: entry ``a`` ranks below ``b`` (lower score; on ties, the higher column)."""
    return heap_s[a] < heap_s[b] or (heap_s[a] == heap_s[b] and heap_i[a] > heap_i[b])


@nb.njit(cache=True, nogil=True, inline="always")
def _swap(heap_s, heap_i, a, b):
    ts = heap_s[a]
    ti = heap_i[a]
    heap_s[a] = heap_s[b]
    heap_i[a] = heap_i[b]
    heap_s[b] = ts
    heap_i[b] = ti


@nb.njit(cache=True, nogil=True, inline="always")
def _sift_down(heap_s, heap_i, size, pos):
    # min-heap of the k best so far: the root is the worst of them
    while True:
        left = 2 * pos + 1
        if left >= size:
            return
        small = left
        if left + 1 < size and _worse(heap_s, heap_i, left + 1, left):
            small = left + 1
        if not _worse(heap_s, heap_i, small, pos):
            return
        _swap(heap_s, heap_i, small, pos)
        pos = small


_CHUNK = 32  # columns per skip test in topk_rows


@nb.njit(cache=True, parallel=True, nogil=True)
def topk_rows(scores, k, excl_indptr, excl_indices, out_ids, out_scores):
    """Fill ``out_ids`` / ``out_scores`` ``[b, k]`` with each row's best ``k`` columns.

    Columns listed in row ``r`` of the exclusion CSR (``excl_indptr`` of length ``b + 1``,
    sorted ``excl_indices``; an all-zero indptr excludes nothing) are skipped, and so are
    ``-inf`` scores. Best first; equal scores go to the lower column. Rows with fewer than
    ``k`` candidates are padded with ``-1`` / ``-inf``. NaN scores are treated as ``-inf``.
    """
    b, n = scores.shape
    for r in nb.prange(b):
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
                if size < k:
                    # insert and sift up
                    pos = size
                    heap_s[pos] = s
                    heap_i[pos] = j
                    size += 1
                    while pos > 0:
                        parent = (pos - 1) // 2
                        if not _worse(heap_s, heap_i, pos, parent):
                            break
                        _swap(heap_s, heap_i, pos, parent)
                        pos = parent
                else:
                    heap_s[0] = s
                    heap_i[0] = j
                    _sift_down(heap_s, heap_i, size, 0)
        # pop in ascending order into the tail of the output
        for t in range(k):
            out_ids[r, t] = -1
            out_scores[r, t] = -np.inf
        m = size
        while m > 0:
            out_ids[r, m - 1] = heap_i[0]
            out_scores[r, m - 1] = heap_s[0]
            m -= 1
            heap_s[0] = heap_s[m]
            heap_i[0] = heap_i[m]
            _sift_down(heap_s, heap_i, m, 0)


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
