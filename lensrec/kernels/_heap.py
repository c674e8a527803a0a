"""The bounded heap that keeps the ``k`` best ``(score, column)`` pairs, shared by the top-k
kernels (:mod:`.topk`, :mod:`.knn`).

A min-heap in two arrays of length ``k`` (float32 scores, int32 columns) whose root is the
worst pair kept. Order: the higher score ranks first; on equal scores, the lower column. The
caller keeps the heap's size and never offers NaN.

numba's cache keys a compiled kernel on the content of the kernel's own file only: after
editing this module, delete ``lensrec/kernels/__pycache__/topk.*`` and ``knn.*`` (or touch
``topk.py`` and ``knn.py``), or the kernels keep running the old heap.
"""

from __future__ import annotations

import numba as nb

__all__ = ["heap_drain", "heap_push", "sift_down"]


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
def sift_down(heap_s, heap_i, size, pos):
    """Restore the heap order below ``pos`` in a heap of ``size`` entries."""
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


@nb.njit(cache=True, nogil=True, inline="always")
def heap_push(heap_s, heap_i, size, k, s, j):
    """Offer the pair ``(s, j)`` to a heap of ``size`` of at most ``k`` entries; return the new
    size. A full heap keeps the pair only if it ranks above the root (the worst kept)."""
    if size < k:
        # insert and sift up
        pos = size
        heap_s[pos] = s
        heap_i[pos] = j
        while pos > 0:
            parent = (pos - 1) // 2
            if not _worse(heap_s, heap_i, pos, parent):
                break
            _swap(heap_s, heap_i, pos, parent)
            pos = parent
        return size + 1
    if s > heap_s[0] or (s == heap_s[0] and j < heap_i[0]):
        heap_s[0] = s
        heap_i[0] = j
        sift_down(heap_s, heap_i, size, 0)
    return size


@nb.njit(cache=True, nogil=True, inline="always")
def heap_drain(heap_s, heap_i, size, out_ids, out_scores, row):
    """Pop the ``size`` entries worst first into ``out_*[row, size - 1]`` down to
    ``out_*[row, 0]``: the row's first ``size`` slots end up best first (the heap is used up;
    the caller pads the rest)."""
    m = size
    while m > 0:
        out_ids[row, m - 1] = heap_i[0]
        out_scores[row, m - 1] = heap_s[0]
        m -= 1
        heap_s[0] = heap_s[m]
        heap_i[0] = heap_i[m]
        sift_down(heap_s, heap_i, m, 0)
