"""Item-item nearest neighbours on implicit data: a sparse top-k similarity matrix.

The similarity of two items is the dot product of their (weighted) columns of the user x item
matrix, optionally divided by the product of their norms plus a shrinkage term. It is computed
one item at a time, never as a dense items x items matrix: for item ``i`` the kernel walks its
users (the item -> users CSC structure) and, for each, that user's items (the user -> items CSR
structure), summing the products into a dense accumulator of length ``n_items`` that belongs
to a block of items (a flag array and a list record the entries touched for ``i``; only those
are read and reset). The best ``k`` other items are kept with a small heap. The work is
``sum over users of |items of user|^2``, the same as one sparse product ``X^T X``, but memory
stays at ``8 * n_items * k`` bytes for the result plus ``13 * n_items`` per thread.

Weightings (the names and formulas follow implicit's ``nearest_neighbours`` module, so results
can be compared):

``"cosine"``
    cosine of the raw (or binary) columns (Sarwar et al. 2001, "Item-based collaborative
    filtering recommendation algorithms").
``"tfidf"``
    cosine of the columns after TF-IDF weighting: ``sqrt(x_ui) * idf_u``, where
    ``idf_u = log(n_items) - log1p(|items of u|)`` (a user who saw everything says little).
``"bm25"``
    plain dot product of the columns after Okapi BM25 weighting (Robertson & Zaragoza 2009,
    "The probabilistic relevance framework: BM25 and beyond"), items as documents and users as
    terms: ``x_ui * (k1 + 1) / (k1 * L_i + x_ui) * idf_u`` with the length norm
    ``L_i = (1 - b) + b * s_i / mean(s)``, ``s_i`` the sum of item ``i``'s column.
``"dot"``
    plain dot product of the raw (or binary) columns: co-occurrence counts when binary. Used
    to pick candidate neighbours (fsSLIM).

Shrinkage (``cosine`` and ``tfidf`` only) divides by ``|x_i| |x_j| + shrink`` instead of
``|x_i| |x_j|``, which pulls down the similarity of items seen by few users (the form used by
Ferrari Dacrema et al. 2019, "Are we really making much progress?").
"""

from __future__ import annotations

from typing import Literal

import numba as nb
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from ..errors import ConfigError
from ._csr import csr_parts
from ._heap import heap_drain, heap_push

__all__ = [
    "Weighting",
    "WEIGHTINGS",
    "item_knn",
    "item_knn_kernel",
    "bm25_weight",
    "tfidf_weight",
    "weighted_values",
    "_reference_similarity",
    "_reference_item_knn",
]

Weighting = Literal["cosine", "tfidf", "bm25", "dot"]
WEIGHTINGS: tuple[str, ...] = ("cosine", "tfidf", "bm25", "dot")
_NORMALISED = ("cosine", "tfidf")


def _user_of_entry(indptr: np.ndarray) -> np.ndarray:
    """Row index of every stored entry of a CSR (``indptr`` of length ``n_rows + 1``)."""
    return np.repeat(np.arange(indptr.size - 1, dtype=np.int32), np.diff(indptr))


def _idf(indptr: np.ndarray, n_items: int) -> np.ndarray:
    """``log(n_items) - log1p(items per user)``, one value per user (float64)."""
    per_user = np.diff(indptr).astype(np.float64)
    return np.log(float(n_items)) - np.log1p(per_user)


def tfidf_weight(
    indptr: npt.NDArray[np.integer],
    indices: npt.NDArray[np.int32],
    data: npt.NDArray[np.floating],
    n_items: int,
) -> npt.NDArray[np.float32]:
    """TF-IDF weights of a user x item CSR: ``sqrt(x_ui) * (log(n_items) - log1p(n_u))``.

    ``n_u`` is the number of stored entries in user ``u``'s row. Returns the new ``data``
    (float32, aligned with ``indices``); the structure is unchanged. Same as implicit's
    ``tfidf_weight(user_items.T).T``.
    """
    del indices  # the weight depends on the row (user) and the value only
    idf = _idf(np.asarray(indptr), n_items)
    rows = _user_of_entry(np.asarray(indptr))
    out = np.sqrt(np.asarray(data, dtype=np.float64)) * idf[rows]
    return out.astype(np.float32)


def bm25_weight(
    indptr: npt.NDArray[np.integer],
    indices: npt.NDArray[np.int32],
    data: npt.NDArray[np.floating],
    n_items: int,
    k1: float = 1.2,
    b: float = 0.75,
) -> npt.NDArray[np.float32]:
    """BM25 weights of a user x item CSR, items as documents and users as terms.

    ``x_ui * (k1 + 1) / (k1 * L_i + x_ui) * idf_u`` with ``idf_u = log(n_items) - log1p(n_u)``
    and ``L_i = (1 - b) + b * s_i / mean_i(s_i)`` (``s_i`` the column sum, the mean over all
    ``n_items`` items). Returns the new ``data`` (float32, aligned with ``indices``). Same as
    implicit's ``bm25_weight(user_items.T, K1=k1, B=b).T``.
    """
    x = np.asarray(data, dtype=np.float64)
    cols = np.asarray(indices)
    idf = _idf(np.asarray(indptr), n_items)
    rows = _user_of_entry(np.asarray(indptr))
    col_sums = np.bincount(cols, weights=x, minlength=n_items)
    mean = col_sums.mean() if n_items else 0.0
    length_norm = (1.0 - b) + b * col_sums / (mean if mean > 0 else 1.0)
    out = x * (k1 + 1.0) / (k1 * length_norm[cols] + x) * idf[rows]
    return out.astype(np.float32)


@nb.njit(cache=True, parallel=True, nogil=True)
def item_knn_kernel(
    item_indptr,
    item_users,
    item_values,
    user_indptr,
    user_items,
    user_values,
    norms,
    shrink,
    k,
    n_blocks,
    out_ids,
    out_scores,
):
    """Fill ``out_ids`` / ``out_scores`` ``[n_items, k]`` with each item's ``k`` best neighbours.

    ``item_*`` is the CSC of the weighted user x item matrix (item -> users), ``user_*`` its
    CSR (user -> items) with the same values. The score of ``(i, j)`` is
    ``dot(x_i, x_j) / (norms[i] * norms[j] + shrink)`` (accumulated in float64, stored as
    float32); pass ``norms = 1`` and ``shrink = 0`` for plain dot products. Item ``i`` itself,
    items that share no user with ``i`` and zero or NaN scores are never neighbours. Rows are
    best first (ties: lower item index first), padded with ``-1`` / ``0``.

    Items are dealt to ``n_blocks`` blocks round-robin (item ``i`` to block ``i % n_blocks``,
    which balances popular and rare items); a block owns one accumulator. Each item's row
    depends on nothing but the input, so the result is the same for any thread count.
    """
    n_items = item_indptr.size - 1
    for blk in nb.prange(n_blocks):
        acc = np.zeros(n_items, dtype=np.float64)
        flag = np.zeros(n_items, dtype=np.uint8)
        touched = np.empty(n_items + 1, dtype=np.int32)
        heap_s = np.empty(k, dtype=np.float32)
        heap_i = np.empty(k, dtype=np.int32)
        for i in range(blk, n_items, n_blocks):
            # 1. dot products of item i with every item sharing a user, branch-free: the item
            # is always written at the end of the touched list, which grows only when it is new
            nt = 0
            for p in range(item_indptr[i], item_indptr[i + 1]):
                u = item_users[p]
                w = np.float64(item_values[p])
                for q in range(user_indptr[u], user_indptr[u + 1]):
                    j = user_items[q]
                    acc[j] += w * user_values[q]
                    touched[nt] = j
                    nt += 1 - flag[j]
                    flag[j] = 1
            # 2. keep the k best by a min-heap whose root is the worst kept
            size = 0
            ni = norms[i]
            for t in range(nt):
                j = touched[t]
                dot = acc[j]
                acc[j] = 0.0
                flag[j] = 0
                if j == i:
                    continue
                s = np.float32(dot / (ni * norms[j] + shrink))
                if not (s != 0.0 and s == s):  # zero or NaN
                    continue
                size = heap_push(heap_s, heap_i, size, k, s, j)
            # 3. pop worst first into the tail: the row ends up best first
            for t in range(size, k):
                out_ids[i, t] = -1
                out_scores[i, t] = 0.0
            heap_drain(heap_s, heap_i, size, out_ids, out_scores, i)


def _check(weighting: str, k: int, shrink: float) -> None:
    if weighting not in WEIGHTINGS:
        raise ConfigError(f"weighting must be one of {', '.join(WEIGHTINGS)}; got {weighting!r}")
    if int(k) < 1:
        raise ConfigError(f"k (neighbours per item) must be >= 1; got {k!r}")
    if not shrink >= 0:
        raise ConfigError(f"shrink must be >= 0; got {shrink!r}")
    if shrink > 0 and weighting not in _NORMALISED:
        raise ConfigError(
            f"shrink applies to the normalised weightings (cosine, tfidf), not {weighting!r}; "
            "leave shrink=0"
        )


def weighted_values(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    n_items: int,
    weighting: Weighting,
    *,
    binary: bool = False,
    k1: float = 1.2,
    b: float = 0.75,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]:
    """The weighted ``data`` of a user x item CSR and the per-item norms the kernel divides by.

    Norms are the L2 norms of the weighted columns for ``cosine`` / ``tfidf`` and ones for
    ``bm25`` / ``dot``.
    """
    x = np.ones(len(indices), np.float32) if binary else np.asarray(data, np.float32)
    if weighting == "tfidf":
        x = tfidf_weight(indptr, indices, x, n_items)
    elif weighting == "bm25":
        x = bm25_weight(indptr, indices, x, n_items, k1, b)
    if weighting in _NORMALISED:
        x64 = x.astype(np.float64)
        norms = np.sqrt(np.bincount(indices, weights=x64 * x64, minlength=n_items))
    else:
        norms = np.ones(n_items, np.float64)
    return x, norms


def item_knn(
    indptr: npt.NDArray[np.integer],
    indices: npt.NDArray[np.int32],
    data: npt.NDArray[np.floating],
    n_items: int,
    k: int,
    *,
    weighting: Weighting = "cosine",
    binary: bool = False,
    shrink: float = 0.0,
    k1: float = 1.2,
    b: float = 0.75,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.float32]]:
    """Top-``k`` item-item similarities of a user x item CSR, as an items x items CSR.

    Parameters
    ----------
    indptr, indices, data
        The user x item interaction matrix in CSR form (``indptr`` of length
        ``n_users + 1``; within a row, distinct item indices).
    n_items
        Number of items (columns).
    k
        Neighbours kept per item (fewer when fewer items share a user with it).
    weighting
        ``"cosine"``, ``"tfidf"``, ``"bm25"`` or ``"dot"`` (see the module docstring).
    binary
        Treat every stored value as 1 before weighting.
    shrink
        Added to the norm product in the denominator (``cosine`` and ``tfidf`` only).
    k1, b
        BM25 parameters (``bm25`` only; implicit's defaults).

    Returns
    -------
    indptr, indices, data
        CSR ``[n_items, n_items]`` (int64 indptr, int32 indices, float32 values): row ``i``
        holds ``i``'s neighbours ``j`` with ``S[i, j] = sim(i, j)``, **best first** (not sorted
        by column: ``scipy``'s ``sort_indices()`` gives the canonical order). No diagonal. For
        ``cosine`` / ``tfidf`` / ``dot`` the full similarity is symmetric, the top-k cut is
        not. Scoring ``history_row @ S`` sums, for each candidate, the similarities from the
        history items that keep it among their ``k`` neighbours (implicit's convention);
        ``history_row @ S.T`` uses each candidate's own ``k`` neighbours instead.

    Raises
    ------
    ConfigError
        Unknown weighting, ``k < 1``, negative shrink or shrink with ``bm25`` / ``dot``.
    """
    _check(weighting, k, shrink)
    indptr = np.asarray(indptr)
    indices = np.asarray(indices, dtype=np.int32)
    n_users = indptr.size - 1
    x, norms = weighted_values(indptr, indices, data, n_items, weighting, binary=binary, k1=k1, b=b)
    user_m = sp.csr_matrix((x, indices, indptr), shape=(n_users, n_items))
    item_m = user_m.tocsc()
    k_eff = max(1, min(int(k), n_items - 1))
    out_ids = np.empty((n_items, k_eff), dtype=np.int32)
    out_scores = np.empty((n_items, k_eff), dtype=np.float32)
    if n_items > 0:
        n_blocks = max(1, min(n_items, 8 * nb.get_num_threads()))
        item_knn_kernel(
            *csr_parts(item_m, None),
            *csr_parts(user_m, None),
            norms,
            float(shrink),
            k_eff,
            n_blocks,
            out_ids,
            out_scores,
        )
    keep = out_ids >= 0
    counts = keep.sum(axis=1)
    out_indptr = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(counts, out=out_indptr[1:])
    return out_indptr, out_ids[keep], out_scores[keep]


def _reference_similarity(
    x: np.ndarray,
    weighting: str = "cosine",
    *,
    binary: bool = False,
    shrink: float = 0.0,
    k1: float = 1.2,
    b: float = 0.75,
) -> tuple[np.ndarray, np.ndarray]:
    """Dense NumPy reference (tests only): the full item x item similarity and a mask of the
    pairs that share at least one user. ``x`` is a small dense user x item array whose
    nonzeros are the interactions."""
    x = np.asarray(x, dtype=np.float64)
    n_items = x.shape[1]
    present = x != 0
    if binary:
        x = present.astype(np.float64)
    w = x.copy()
    idf = np.log(n_items) - np.log1p(present.sum(axis=1))  # per user
    if weighting == "tfidf":
        w = np.where(present, np.sqrt(np.abs(x)) * idf[:, None], 0.0)
    elif weighting == "bm25":
        col_sums = x.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            ln = (1 - b) + b * col_sums / col_sums.mean()
            w = np.where(present, x * (k1 + 1) / (k1 * ln[None, :] + x) * idf[:, None], 0.0)
    dots = w.T @ w
    if weighting in ("cosine", "tfidf"):
        norm = np.sqrt((w * w).sum(axis=0))
        with np.errstate(invalid="ignore", divide="ignore"):
            sim = dots / (np.outer(norm, norm) + shrink)
    else:
        sim = dots
    share = (present.T.astype(np.int64) @ present.astype(np.int64)) > 0
    return sim, share


def _reference_item_knn(
    x: np.ndarray,
    k: int,
    weighting: str = "cosine",
    *,
    binary: bool = False,
    shrink: float = 0.0,
    k1: float = 1.2,
    b: float = 0.75,
) -> list[list[tuple[int, float]]]:
    """Dense NumPy reference of :func:`item_knn` (tests only): per item,
    ``[(neighbour, score), ...]`` best first, ties to the lower index."""
    sim, share = _reference_similarity(x, weighting, binary=binary, shrink=shrink, k1=k1, b=b)
    n_items = sim.shape[0]
    out = []
    for i in range(n_items):
        cand = []
        for j in range(n_items):
            s = np.float32(sim[i, j])
            if j != i and share[i, j] and s != 0 and not np.isnan(s):
                cand.append((-float(s), j))
        cand.sort()
        out.append([(j, -neg) for neg, j in cand[:k]])
    return out
