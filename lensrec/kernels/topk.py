"""Top-k selection with seen-item exclusion: the one shared ranking kernel.

Arrays in, arrays out: a dense float32 score block ``[b, n]`` for ``b`` users, an optional
CSR of items to exclude (``indptr, indices`` of the same ``b`` rows) and ``k``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["topk_rows", "_reference_topk_rows"]


@nb.njit(cache=True, nogil=True, inline="always")
def _sift_down(heap_s, heap_i, size, pos):
    # min-heap on score; ties: larger index is "smaller" so lower indices win
    while True:
        left = 2 * pos + 1
        if left >= size:
            return
        small = left
        right = left + 1
        if right < size:
            if heap_s[right] < heap_s[left] or (
                heap_s[right] == heap_s[left] and heap_i[right] > heap_i[left]
            ):
                small = right
        if heap_s[small] < heap_s[pos] or (
            heap_s[small] == heap_s[pos] and heap_i[small] > heap_i[pos]
        ):
            ts = heap_s[pos]
            ti = heap_i[pos]
            heap_s[pos] = heap_s[small]
            heap_i[pos] = heap_i[small]
            heap_s[small] = ts
            heap_i[small] = ti
            pos = small
        else:
            return


@nb.njit(cache=True, parallel=True, nogil=True)
def topk_rows(scores, k, excl_indptr, excl_indices, out_ids, out_scores):
    """Fill ``out_ids`` / ``out_scores`` ``[b, k]`` with each row's best ``k`` columns.

    Columns listed in row ``r`` of the exclusion CSR (``excl_indptr`` of length ``b + 1``;
    pass length-1 ``[0]`` arrays... or all-zero indptr for none) are skipped, and so are
    ``-inf`` scores. Best first; equal scores go to the lower column. Rows with fewer than
    ``k`` candidates are padded with ``-1`` / ``-inf``. NaN scores are treated as ``-inf``.
    """
    b, n = scores.shape
    for r in nb.prange(b):
        heap_s = np.empty(k, dtype=np.float32)
        heap_i = np.empty(k, dtype=np.int32)
        size = 0
        # mark excluded columns by a sorted walk over the exclusion row
        e0 = excl_indptr[r]
        e1 = excl_indptr[r + 1]
        ep = e0
        for j in range(n):
            while ep < e1 and excl_indices[ep] < j:
                ep += 1
            if ep < e1 and excl_indices[ep] == j:
                continue
            s = scores[r, j]
            if not (s > -np.inf):  # -inf or NaN
                continue
            if size < k:
                # insert and sift up
                pos = size
                heap_s[pos] = s
                heap_i[pos] = j
                size += 1
                while pos > 0:
                    parent = (pos - 1) // 2
                    if heap_s[pos] < heap_s[parent] or (
                        heap_s[pos] == heap_s[parent] and heap_i[pos] > heap_i[parent]
                    ):
                        ts = heap_s[pos]
                        ti = heap_i[pos]
                        heap_s[pos] = heap_s[parent]
                        heap_i[pos] = heap_i[parent]
                        heap_s[parent] = ts
                        heap_i[parent] = ti
                        pos = parent
                    else:
                        break
            elif s > heap_s[0]:
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
