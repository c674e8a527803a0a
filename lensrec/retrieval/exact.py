"""Exact indexes: blocked dot products over item vectors, or a model's own scoring function.

Both answer the one query call of every lensrec index::

    ids, scores = index.search(queries, k, exclude=csr, candidates=items)

``ids`` int32 ``[n, k]`` item indices best first (ties: the lower index), padded with -1;
``scores`` float32 ``[n, k]``, padded with -inf. ``exclude`` is a CSR ``[n, n_items]`` aligned
with the queries (the items each row must not get back, e.g. its history); ``candidates``
sorted unique item indices the answer is restricted to. ``k`` larger than what is left pads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError
from ..types import IndexArray, ScoreArray
from ._blocks import BLOCK_FLOATS, blocked_topk

__all__ = ["ExactIndex", "ScoreIndex", "check_search_args"]


def check_search_args(k: Any, candidates: Any, n_items: int) -> tuple[int, np.ndarray | None]:
    """A positive int ``k`` and candidates as sorted unique int32 indices in range."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    if candidates is None:
        return int(k), None
    cand = np.unique(np.asarray(candidates).reshape(-1))
    if cand.size and (cand.dtype.kind not in "iu" or cand[0] < 0 or cand[-1] >= n_items):
        raise ConfigError(f"candidates must be item indices in [0, {n_items})")
    return int(k), cand.astype(np.int32)


class ExactIndex:
    """Exact maximum-inner-product top-k over item vectors (the default index).

    Parameters
    ----------
    item_vectors : float32 [n_items, d]
        One row per item; a query's score for item ``i`` is ``query @ item_vectors[i]``
        (biases folded into an extra column by the model).
    block_floats : int
        Score values computed per block of queries (memory bound of a search).

    Searches are safe from many threads at once: the index holds only read-only arrays.
    """

    kind = "exact"

    def __init__(self, item_vectors: np.ndarray, *, block_floats: int = BLOCK_FLOATS):
        v = np.ascontiguousarray(item_vectors, dtype=np.float32)
        if v.ndim != 2:
            raise ValueError(f"item_vectors must be 2-d, got shape {v.shape}")
        v.setflags(write=False)
        self.item_vectors = v
        self.block_floats = int(block_floats)

    @property
    def n_items(self) -> int:
        return int(self.item_vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.item_vectors.shape[1])

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        exclude: sp.csr_matrix | None = None,
        candidates: np.ndarray | None = None,
    ) -> tuple[IndexArray, ScoreArray]:
        """Top-``k`` items for each query vector (``[n, d]``), see the module docstring."""
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"queries must be [n, {self.dim}], got shape {q.shape}")
        k, cand = check_search_args(k, candidates, self.n_items)
        v = self.item_vectors if cand is None else np.ascontiguousarray(self.item_vectors[cand])
        return blocked_topk(
            q.shape[0],
            v.shape[0],
            lambda a, b: q[a:b] @ v.T,
            k,
            exclude,
            cand,
            self.n_items,
            self.block_floats,
        )


class ScoreIndex:
    """Exact top-k over a scoring function, for models whose scores are not dot products
    (item-item models, SVD++, fold-in averages).

    Parameters
    ----------
    score : callable
        ``score(queries[start:stop], candidates)`` -> dense float32 ``[stop - start,
        n_items or len(candidates)]``, higher is better (``-inf``: never recommend).
        ``queries`` is anything that slices by rows (a model's :class:`~lensrec.models.Query`).
    n_items : int
        Catalogue size.
    """

    kind = "exact"

    def __init__(
        self,
        score: Callable[[Any, np.ndarray | None], np.ndarray],
        n_items: int,
        *,
        block_floats: int = BLOCK_FLOATS,
    ):
        self.score = score
        self._n_items = int(n_items)
        self.block_floats = int(block_floats)

    @property
    def n_items(self) -> int:
        return self._n_items

    def search(
        self,
        queries: Any,
        k: int,
        *,
        exclude: sp.csr_matrix | None = None,
        candidates: np.ndarray | None = None,
    ) -> tuple[IndexArray, ScoreArray]:
        """Top-``k`` items for each query row, see the module docstring."""
        k, cand = check_search_args(k, candidates, self.n_items)
        n_cols = self.n_items if cand is None else cand.size
        return blocked_topk(
            len(queries),
            n_cols,
            lambda a, b: self.score(queries[a:b], cand),
            k,
            exclude,
            cand,
            self.n_items,
            self.block_floats,
        )
