"""Precomputed top-K lists: what an exported store serves, answered without the model.

A list of ``K`` items per user, computed once (:func:`precompute`) with the user's seen items
already excluded. A query for ``k <= K`` items filters the list (extra exclusions, an
allow-list) and reports the rows the list cannot fill, so the caller can ask the model or
go down the fallback chain for those rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError
from ..types import IndexArray, ScoreArray
from .exact import check_search_args

__all__ = ["PrecomputedIndex", "precompute"]


class PrecomputedIndex:
    """Stored top-``K`` lists per user.

    Parameters
    ----------
    ids : int32 [n_users, K]
        Item indices per user, best first, padded with -1.
    scores : float32 [n_users, K]
        Their scores, padded with -inf.
    n_items : int
        Catalogue size (for checking candidates).

    ``search(users, k, exclude=, candidates=)`` takes user indices (row numbers of the
    lists) and returns ``(ids, scores)`` like every index, plus nothing else; rows the list
    could not fill to ``k`` (after filtering) are in :meth:`short_rows` of the same call
    arguments, or use :meth:`search_with_short`.
    """

    kind = "precomputed"

    def __init__(self, ids: np.ndarray, scores: np.ndarray, n_items: int):
        ids = np.ascontiguousarray(ids, dtype=np.int32)
        scores = np.ascontiguousarray(scores, dtype=np.float32)
        if ids.ndim != 2 or ids.shape != scores.shape:
            raise ValueError(
                f"ids and scores must be [n_users, K], got {ids.shape}, {scores.shape}"
            )
        ids.setflags(write=False)
        scores.setflags(write=False)
        self.ids = ids
        self.scores = scores
        self._n_items = int(n_items)

    @property
    def n_items(self) -> int:
        return self._n_items

    @property
    def depth(self) -> int:
        """``K``, the stored list length."""
        return int(self.ids.shape[1])

    def search(
        self,
        users: np.ndarray,
        k: int,
        *,
        exclude: sp.csr_matrix | None = None,
        candidates: np.ndarray | None = None,
    ) -> tuple[IndexArray, ScoreArray]:
        """Top-``k`` of each user's stored list after filtering (see the module docstring)."""
        ids, scores, _ = self.search_with_short(users, k, exclude=exclude, candidates=candidates)
        return ids, scores

    def search_with_short(
        self,
        users: np.ndarray,
        k: int,
        *,
        exclude: sp.csr_matrix | None = None,
        candidates: np.ndarray | None = None,
    ) -> tuple[IndexArray, ScoreArray, np.ndarray]:
        """As :meth:`search`, plus a bool ``[n]`` mask of rows whose filtered list has fewer
        than ``k`` items although the stored list was full (the answer may be incomplete)."""
        k, cand = check_search_args(k, candidates, self.n_items)
        u = np.asarray(users).reshape(-1)
        if u.size and (u.dtype.kind not in "iu" or u.min() < 0 or u.max() >= self.ids.shape[0]):
            raise ConfigError(f"users must be row indices in [0, {self.ids.shape[0]})")
        rows = self.ids[u]
        rs = self.scores[u]
        keep = rows >= 0
        if cand is not None:
            keep &= np.isin(rows, cand)
        if exclude is not None and exclude.nnz:
            ex = sp.csr_matrix(exclude)
            if ex.shape[0] != u.size:
                raise ValueError(f"exclude has {ex.shape[0]} rows for {u.size} users")
            r_idx, c_idx = np.nonzero(keep)
            hit = np.asarray(ex[r_idx, rows[r_idx, c_idx]]).reshape(-1) != 0
            keep[r_idx[hit], c_idx[hit]] = False
        # stable compaction of the kept entries to the front, row by row
        order = np.argsort(~keep, axis=1, kind="stable")
        rows = np.take_along_axis(rows, order, axis=1)
        rs = np.take_along_axis(rs, order, axis=1)
        kept = keep.sum(axis=1)
        out_ids = np.full((u.size, k), -1, dtype=np.int32)
        out_scores = np.full((u.size, k), -np.inf, dtype=np.float32)
        width = min(k, rows.shape[1])
        valid = np.arange(width)[None, :] < kept[:, None]
        out_ids[:, :width] = np.where(valid, rows[:, :width], -1)
        out_scores[:, :width] = np.where(valid, rs[:, :width], -np.inf)
        full = (self.ids[u] >= 0).sum(axis=1) == self.depth
        short = (kept < k) & (full | (k > self.depth))
        return out_ids, out_scores, short


def precompute(model: Any, k: int = 100, *, users: np.ndarray | None = None) -> PrecomputedIndex:
    """Every training user's top-``k`` from ``model`` (seen items excluded), as a
    :class:`PrecomputedIndex` whose row ``u`` is user index ``u``.

    ``users`` (int32 user indices) computes the lists of those users only, row ``r`` of the
    result being ``users[r]``: an export walks the users in blocks this way.
    """
    u = (
        np.arange(model.n_users, dtype=np.int32)
        if users is None
        else np.asarray(users, dtype=np.int32).reshape(-1)
    )
    ids, scores = model.recommend(u, k=min(int(k), model.n_items))
    if ids.shape[1] < k:
        pad = k - ids.shape[1]
        ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
        scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
    return PrecomputedIndex(ids, scores, model.n_items)
