"""EASE: a closed-form linear item-item model with a zero diagonal (Steck 2019)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from .._config import single_threaded_blas
from ..data.interactions import Interactions
from ..kernels.linear import ease_memory_bytes, ease_weights, gram_matrix
from ..types import IndexArray, RandomState, ScoreArray
from ._params import Range, Search
from .base import Callback, Capabilities, Query, Recommender, register

__all__ = ["EASE"]

_log = logging.getLogger(__name__)

#: catalogue size from which the inversion uses the configured BLAS threads (below: one)
_THREADED_FROM = 8192


def _binary(history: sp.csr_matrix) -> sp.csr_matrix:
    """The same rows with every stored value 1 (the models are fitted on 0/1 data)."""
    out = sp.csr_matrix(
        (np.ones(history.nnz, np.float32), history.indices, history.indptr), shape=history.shape
    )
    return out


def _top_items(counts: np.ndarray, limit: int | None) -> np.ndarray:
    """Indices (sorted) of the ``limit`` most frequent items; ties go to the lower index."""
    n = counts.size
    if limit is None or limit >= n:
        return np.arange(n, dtype=np.int32)
    order = np.argsort(-counts, kind="stable")[: int(limit)]
    return np.sort(order).astype(np.int32)


@register("ease")
class EASE(Recommender):
    """Embarrassingly Shallow Autoencoder: item-item weights in closed form.

    Steck (2019), "Embarrassingly shallow autoencoders for sparse data" (WWW). With ``X``
    the binary user x item matrix, the weights solve

        min_B ||X - X B||_F^2 + reg * ||B||_F^2   s.t.  diag(B) = 0,

    whose solution is ``B = I - P diag(1 / diag(P))`` with ``P = (X^T X + reg I)^-1``
    (``B[j, j] = 0``). A user's scores are ``x_u @ B``: a new user's history scores exactly
    like a training user's (fold-in is the model itself). Fitting builds the dense item Gram
    matrix and inverts it in place (:func:`lensrec.kernels.linear.ease_weights`), in
    float32: memory is one ``n_items x n_items`` float32 matrix (``4 n_items^2`` bytes:
    1.6 GB for 20,000 items) and ``fit`` refuses up front, with the numbers, when that
    would not fit in the available memory. Time is ``O(n_items^3)`` for the inverse plus
    ``sum over users of |items|^2`` for the Gram matrix. float32 instead of float64 halves
    the memory; on ml-100k and on a synthetic ml-1m-sized set the top-10 lists equal
    float64's for over 99.9% of the entries.

    Any interactions work: the model is fitted on which items each user has (ratings, when
    present, are not used as values; filter positives first, e.g. ``--min-rating 4``).

    Parameters
    ----------
    reg : float, default 200.0
        L2 penalty ``lambda`` on ``B``, added to the Gram matrix's diagonal. Larger values
        shrink the weights of items seen by few users towards zero. 200 was chosen on
        validation sets carved from the training part of ml-100k (ratings >= 4; each user's
        last 3 training positives, by timestamp and by file order; 50 to 1000 tried): the
        best values were 150 and 250 there, and 200 is within 0.6% of both in NDCG@10. Steck used 500 on ML-20M and Netflix, 200 on MSD: larger
        data tolerates (and gets little from tuning) larger values.
    max_items : int or None, default None
        Keep only the ``max_items`` most frequent items (ties: the lower index): the Gram
        matrix, the memory and the time shrink to that catalogue. The other items are never
        recommended (and give no similar items); in histories they are ignored. None keeps
        every item.
    random_state : ignored
        Fitting is deterministic; kept for the common contract.

    Attributes
    ----------
    weights_ : float32 [n_kept, n_kept]
        ``B``: rows are history items, columns the items scored, over the kept items.
    kept_items_ : int32 [n_kept]
        Item indices (sorted) that ``weights_`` rows and columns refer to; all items unless
        ``max_items`` cut the catalogue.

    Examples
    --------
    >>> from lensrec.data.planted import make_blocks
    >>> data, _, item_group = make_blocks(random_state=0)
    >>> model = EASE(reg=10.0).fit(data)
    >>> ids, _ = model.recommend_for_history([0, 1, 2], k=3)
    >>> bool((item_group[ids[0]] == item_group[0]).all())
    True
    """

    capabilities: ClassVar[Capabilities] = Capabilities(folds_in=True, uses_history=True)

    reg: Annotated[float, Range(0.0, low_open=True), Search(10.0, 5000.0, log=True)] = 200.0
    max_items: Annotated[int | None, Range(1)] = None
    random_state: RandomState = None

    # --- memory --------------------------------------------------------------------------
    def _n_kept(self, n_items: int) -> int:
        return n_items if self.max_items is None else min(int(self.max_items), n_items)

    def estimate_memory(self, n_users: int, n_items: int, nnz: int) -> int:
        """One float32 ``n_kept x n_kept`` matrix (Gram -> inverse -> weights in place), a
        transposed copy of the interactions, and one score block while recommending."""
        m = self._n_kept(n_items)
        return int(ease_memory_bytes(m, np.float32) + 24 * nnz + 4 * (n_users + n_items))

    # --- fitting -------------------------------------------------------------------------
    @classmethod
    def warm_up(cls, params: Mapping[str, Any] | None = None) -> None:
        """Compile the Gram and in-place inversion kernels (float32) on tiny data."""
        from ..data.planted import make_blocks

        data, _, _ = make_blocks(n_groups=2, users_per_group=4, items_per_group=3)
        cls(reg=1.0).fit(data).recommend([0], k=2)

    def _fit(
        self,
        train: Interactions,
        valid: Interactions | None,
        gen: np.random.Generator,
        *,
        show_progress: bool,
        callback: Callback | None,
    ) -> None:
        x = train.csr()
        kept = _top_items(np.diff(x.tocsc().indptr), self.max_items)
        if kept.size < train.n_items:
            x = sp.csr_matrix(x[:, kept])
            x.sort_indices()
        gram = gram_matrix(x.indptr, x.indices, x.data, int(kept.size), dtype=np.float32)
        _log.debug("EASE: Gram matrix %d x %d built", kept.size, kept.size)
        # LAPACK threads: on a busy machine (2 cores, several jobs) multi-threaded OpenBLAS
        # took 2.9-9.9 s to invert 3,706 items where one thread took 1.2 s; the threads pay
        # only on large catalogues
        small = kept.size < _THREADED_FROM
        with single_threaded_blas() if small else contextlib.nullcontext():
            self.weights_ = ease_weights(gram, float(self.reg))
        self.kept_items_ = kept

    # --- scoring -------------------------------------------------------------------------
    def _all_kept(self) -> bool:
        return bool(self.kept_items_.size == self.n_items)

    def _score(self, query: Query, items: IndexArray | None) -> ScoreArray:
        assert query.history is not None  # uses_history: the base fills every row
        h = _binary(query.history)
        if self._all_kept():
            scores = np.asarray(h @ self.weights_, dtype=np.float32)
        else:
            kept = self.kept_items_
            scores = np.full((h.shape[0], self.n_items), -np.inf, dtype=np.float32)
            scores[:, kept] = h[:, kept] @ self.weights_
        return scores if items is None else np.ascontiguousarray(scores[:, items])

    def _similar_scores(self, items: IndexArray) -> ScoreArray:
        """Row ``i`` of ``B``: the scores a user with only item ``i`` would get."""
        if self._all_kept():
            return np.array(self.weights_[items], dtype=np.float32)
        pos = np.full(self.n_items, -1, dtype=np.int64)
        pos[self.kept_items_] = np.arange(self.kept_items_.size)
        out = np.full((len(items), self.n_items), -np.inf, dtype=np.float32)
        rows = pos[items]
        ok = rows >= 0
        out[np.ix_(np.flatnonzero(ok), self.kept_items_)] = self.weights_[rows[ok]]
        return out
