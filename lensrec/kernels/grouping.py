"""Grouping kernels: stable counting sort of rows by a small integer key, per-group sorts.

Used by :mod:`lensrec.split` to put each user's rows together (in row order, in random
order or in time order) in O(n) instead of an O(n log n) stable sort over all rows.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["group_order", "sort_within_groups"]


@nb.njit(cache=True, nogil=True)
def group_order(keys: np.ndarray, n_keys: int) -> np.ndarray:
    """Stable order of ``keys`` (ints in ``0..n_keys-1``): ``np.argsort(keys, kind="stable")``.

    Counting sort, O(n + n_keys). Returns int64 row positions.
    """
    starts = np.zeros(n_keys + 1, dtype=np.int64)
    for r in range(keys.size):
        starts[keys[r] + 1] += 1
    for j in range(n_keys):
        starts[j + 1] += starts[j]
    out = np.empty(keys.size, dtype=np.int64)
    for r in range(keys.size):
        k = keys[r]
        out[starts[k]] = r
        starts[k] += 1
    return out


@nb.njit(cache=True, nogil=True)
def sort_within_groups(
    order: np.ndarray, keys: np.ndarray, n_keys: int, values: np.ndarray
) -> np.ndarray:
    """Stably re-sort each key's run of ``order`` by ``values`` (ties keep their place).

    ``order`` must list rows grouped by ascending key (as :func:`group_order` gives);
    returns a new order grouped by key and, inside a key, by ``(values, previous position)``.
    """
    counts = np.zeros(n_keys + 1, dtype=np.int64)
    for r in range(keys.size):
        counts[keys[r] + 1] += 1
    for j in range(n_keys):
        counts[j + 1] += counts[j]
    out = order.copy()
    for j in range(n_keys):
        lo, hi = counts[j], counts[j + 1]
        if hi - lo < 2:
            continue
        seg = order[lo:hi]
        sub = np.argsort(values[seg], kind="mergesort")
        out[lo:hi] = seg[sub]
    return out


def _reference_group_order(keys: np.ndarray, n_keys: int) -> np.ndarray:
    """Obviously-correct NumPy reference of :func:`group_order` (tests only)."""
    return np.argsort(keys, kind="stable").astype(np.int64)


def _reference_sort_within_groups(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Reference of ``sort_within_groups(group_order(keys), ...)``: by (key, value, row)."""
    return np.lexsort((np.arange(keys.size), values, keys)).astype(np.int64)
