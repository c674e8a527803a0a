"""SLIM: sparse non-negative item-item weights, one ElasticNet per item (Ning & Karypis 2011)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ..data.interactions import Interactions
from ..kernels.knn import item_knn
from ..kernels.linear import gram_matrix
from ..kernels.slim import SlimResult, slim_from_candidates, slim_from_gram
from ..types import IndexArray, RandomState, ScoreArray
from ._params import Range, Search
from .base import Callback, Capabilities, Query, Recommender, register
from .ease import _binary

__all__ = ["SLIM"]

_log = logging.getLogger(__name__)

#: float32 output buffer of one block of targets in the exact solver (kernels.slim)
_BLOCK_BYTES = 64 << 20


@register("slim")
class SLIM(Recommender):
    """Sparse LInear Method: each item's column of ``W`` from a non-negative ElasticNet.

    Ning & Karypis (2011), "SLIM: Sparse linear methods for top-N recommender systems"
    (ICDM). With ``X`` the binary user x item matrix and ``x_j`` its column ``j``, every
    target item ``j`` gets the weights

        min_w  1/2 ||x_j - X w||^2 + l1 |w|_1 + l2/2 ||w||^2   s.t.  w >= 0,  w_j = 0,

    solved by coordinate descent on the item Gram matrix, in parallel over target items
    (:mod:`lensrec.kernels.slim`). ``W`` is sparse (the L1 term zeroes most weights) and is
    kept as a CSR; a user's scores are ``x_u @ W``, so a new user's history scores exactly
    like a training user's. The penalties are in the units of the squared error summed over
    users: scikit-learn's ``ElasticNet(alpha, l1_ratio, positive=True)`` (the SLIM of
    RecBole and of Ferrari Dacrema et al. 2019) corresponds to
    ``l1 = alpha * l1_ratio * n_users`` and ``l2 = alpha * (1 - l1_ratio) * n_users``.

    Two solvers. ``neighbours=None`` (exact SLIM) uses the dense item Gram matrix:
    ``4 n_items^2`` bytes (float32), which ``fit`` checks against the available memory and
    refuses up front with the numbers. ``neighbours=N`` is fsSLIM (the paper's section 4.3):
    target ``j`` may only use its ``N`` most cosine-similar items
    (:func:`lensrec.kernels.knn.item_knn`), and the small ``N x N`` Gram matrices are built
    per target from the interactions: memory linear in the catalogue, for large ones.

    Any interactions work: the model is fitted on which items each user has (ratings, when
    present, are not used as values; filter positives first, e.g. ``--min-rating 4``).

    Parameters
    ----------
    l1 : float, default 1.0
        L1 penalty: larger gives sparser ``W`` (fewer neighbours per item).
    l2 : float, default 50.0
        L2 penalty: shrinks the weights, mostly of rarely seen items.
        The defaults ``(l1, l2) = (1, 50)`` were chosen on validation sets carved from the
        training part of ml-100k (ratings >= 4; each user's last 3 training positives by
        timestamp and by file order) over ``l1`` in {0.1 .. 10} x ``l2`` in {10 .. 300}.
    neighbours : int or None, default None
        None: exact SLIM on the dense Gram matrix. An int: fsSLIM, each target restricted
        to its ``neighbours`` most cosine-similar items: for catalogues whose Gram matrix
        does not fit. On the ml-100k validation sets above, 100 or 200 neighbours were
        within 2% of exact SLIM's NDCG@10; while the dense Gram matrix fits, the exact
        solver is also the faster one (see ``benchmarks/README.md``).
    max_iter : int, default 100
        Coordinate-descent sweeps per target item at most.
    tol : float, default 1e-4
        A target stops when a sweep changes no weight by more than ``tol * max|w|``.
    random_state : ignored
        Fitting is deterministic (and the same for any thread count); kept for the contract.

    Attributes
    ----------
    weights_ : CSR float32 [n_items, n_items]
        ``W``: row ``i`` holds the weights from history item ``i`` to the items it
        recommends (column ``j``: target ``j``). Zero diagonal, positive entries only.
    sweeps_ : int32 [n_items]
        Sweeps used per target item (``max_iter``: the tolerance was not met).

    Examples
    --------
    >>> from lensrec.data.planted import make_blocks
    >>> data, _, item_group = make_blocks(random_state=0)
    >>> model = SLIM().fit(data)
    >>> ids, _ = model.recommend_for_history([0, 1, 2], k=3)
    >>> bool((item_group[ids[0]] == item_group[0]).all())
    True
    """

    capabilities: ClassVar[Capabilities] = Capabilities(folds_in=True, uses_history=True)

    l1: Annotated[float, Range(0.0), Search(0.01, 50.0, log=True)] = 1.0
    l2: Annotated[float, Range(0.0), Search(1.0, 1000.0, log=True)] = 50.0
    neighbours: Annotated[int | None, Range(1)] = None
    max_iter: Annotated[int, Range(1)] = 100
    tol: Annotated[float, Range(0.0)] = 1e-4
    random_state: RandomState = None

    def estimate_memory(self, n_users: int, n_items: int, nnz: int) -> int:
        """Exact: the float32 Gram matrix plus one block of targets; fsSLIM: the candidate
        lists, per-thread ``N x N`` Gram matrices and the item co-occurrences they are read
        from. Both: copies of the interactions and the result."""
        linear = 24 * nnz + 16 * (n_users + n_items)
        if self.neighbours is None:
            return int(4 * n_items * n_items + min(_BLOCK_BYTES, 4 * n_items * n_items) + linear)
        n = min(int(self.neighbours), max(n_items - 1, 1))
        # the candidate Grams are read from X^T X computed once: dense float32 up to 1 GiB,
        # else a sparse co-occurrence table of up to 2 GiB (see kernels.slim)
        if 4 * n_items * n_items <= 2**30:
            gram = 4 * n_items * n_items
        else:  # about one (pair, value) entry per co-occurrence: nnz x mean items per user
            gram = min(2**31, 12 * nnz * max(1, nnz // max(n_users, 1)))
        return int(12 * n_items * n + 64 * n * n + gram + linear)

    @classmethod
    def warm_up(cls, params: Mapping[str, Any] | None = None) -> None:
        """Compile the exact and the candidate (fsSLIM) solvers on tiny data."""
        from ..data.planted import make_blocks

        data, _, _ = make_blocks(n_groups=2, users_per_group=4, items_per_group=3)
        for neighbours in (None, 3):
            cls(neighbours=neighbours).fit(data).recommend([0], k=2)

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
        n = train.n_items
        max_iter, tol = int(self.max_iter), float(self.tol)
        res: SlimResult
        if self.neighbours is None:
            gram = gram_matrix(x.indptr, x.indices, x.data, n, dtype=np.float32)
            res = slim_from_gram(gram, float(self.l1), float(self.l2), max_iter=max_iter, tol=tol)
            del gram
        else:
            c_indptr, c_indices, _ = item_knn(
                x.indptr, x.indices, x.data, n, int(self.neighbours), weighting="cosine"
            )
            res = slim_from_candidates(
                x.indptr, x.indices, x.data, n, c_indptr, c_indices,
                float(self.l1), float(self.l2), max_iter=max_iter, tol=tol,
            )  # fmt: skip
        self.weights_ = sp.csr_matrix((res.data, res.indices, res.indptr), shape=(n, n))
        self.sweeps_ = res.sweeps
        _log.debug(
            "SLIM: %d weights (%.1f per item), median %d sweeps",
            res.data.size,
            res.data.size / max(n, 1),
            int(np.median(res.sweeps)) if n else 0,
        )

    def _score(self, query: Query, items: IndexArray | None) -> ScoreArray:
        assert query.history is not None  # uses_history: the base fills every row
        scores = np.asarray((_binary(query.history) @ self.weights_).toarray(), dtype=np.float32)
        return scores if items is None else np.ascontiguousarray(scores[:, items])

    def _similar_scores(self, items: IndexArray) -> ScoreArray:
        """Row ``i`` of ``W`` (what item ``i`` alone recommends); items it gives no weight
        are not similar (``-inf``)."""
        return _sparse_rows(self.weights_, items)


def _sparse_rows(matrix: sp.csr_matrix, items: IndexArray) -> ScoreArray:
    """Dense ``[len(items), n]`` rows of a sparse matrix, ``-inf`` where nothing is stored."""
    rows = matrix[items]
    out = np.full(rows.shape, -np.inf, dtype=np.float32)
    r = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
    out[r, rows.indices] = rows.data
    return out
