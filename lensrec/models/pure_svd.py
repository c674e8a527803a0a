"""PureSVD: a truncated SVD of the user x item matrix, unknowns as zeros (Cremonesi et al. 2010)."""

from __future__ import annotations

import logging
from typing import Annotated, ClassVar

import numpy as np
import scipy.sparse as sp

from .._config import seed_from, single_threaded_blas
from ..data.interactions import Interactions
from ..kernels.linear import randomized_svd
from ..types import IndexArray, RandomState
from ._params import Range, Search
from .base import Callback, Capabilities, Recommender, register
from .ease import _binary

__all__ = ["PureSVD"]

_log = logging.getLogger(__name__)


def _rank(factors: int, n_users: int, n_items: int) -> int:
    """``factors``, at most a tenth of the matrix's smaller side (and at least 1)."""
    return max(1, min(factors, min(n_users, n_items) // 10))


@register("pure-svd")
class PureSVD(Recommender):
    """Top-N ranking from the rank-``factors`` truncated SVD ``X ~ U S V^T``.

    Cremonesi, Koren & Turrin (2010), "Performance of recommender algorithms on top-N
    recommendation tasks" (RecSys): treat every missing entry of the binary user x item
    matrix ``X`` as a zero, take its truncated SVD, and score a user by
    ``x_u V V^T``, the projection of their row onto the top item factors. The SVD is
    computed by randomized subspace iteration (Halko, Martinsson & Tropp 2011;
    :func:`lensrec.kernels.linear.randomized_svd`), which only multiplies the sparse ``X``
    by tall dense matrices: time and memory grow with the interactions and
    ``(n_users + n_items) * factors``.

    A factor model: user vectors are ``x_u V`` (= ``U S`` up to the SVD's accuracy), item
    vectors ``V``. A user the model never saw is folded in by the same projection,
    ``history @ V``, so a training user's own items give exactly that user's scores.
    Any interactions work: only which items each user has counts (filter positives first,
    e.g. ``--min-rating 4``).

    Parameters
    ----------
    factors : int, default 20
        Rank of the SVD. Few factors favour popular items, many overfit to the observed
        entries. 20 was chosen on validation sets carved from the training part of
        ml-100k (ratings >= 4; each user's last 3 training positives, by timestamp and by
        file order; a grid of 10 to 200); Cremonesi et al. found 50 best on MovieLens and
        150 on Netflix: larger catalogues want more. The rank used (``factors_``) is at
        most a tenth of ``min(n_users, n_items)``: a rank near the matrix's size
        reproduces the observed entries, and the unseen items it should rank all score
        about zero.
    n_iter : int, default 4
        Power iterations of the randomized SVD: more make the trailing factors more exact
        (4 is scikit-learn's default for small ranks).
    random_state : None, int or numpy Generator
        Seeds the random test matrix of the SVD; the same seed gives the same model.

    Attributes
    ----------
    user_factors_ : float32 [n_users, factors_]
        ``X V``: each training user's row projected on the item factors.
    item_factors_ : float32 [n_items, factors_]
        ``V``: orthonormal columns, the right singular vectors.
    singular_values_ : float32 [factors_]
        ``S``, descending.
    factors_ : int
        The rank used: ``factors``, capped at a tenth of ``min(n_users, n_items)``.

    Examples
    --------
    >>> from lensrec.data.planted import make_blocks
    >>> data, _, item_group = make_blocks(random_state=0)
    >>> model = PureSVD(random_state=0).fit(data)  # factors_ = 4 on this tiny matrix
    >>> ids, _ = model.recommend_for_history([0, 1, 2], k=3)
    >>> bool((item_group[ids[0]] == item_group[0]).all())
    True
    """

    capabilities: ClassVar[Capabilities] = Capabilities(folds_in=True)

    factors: Annotated[int, Range(1), Search(5, 500, log=True)] = 20
    n_iter: Annotated[int, Range(0)] = 4
    random_state: RandomState = None

    def estimate_memory(self, n_users: int, n_items: int, nnz: int) -> int:
        """The interactions and their transpose, plus a few dense ``[n, factors + 10]``
        blocks (the subspace iteration's ``Q`` for users and items)."""
        width = int(self.factors) + 10
        return int(24 * nnz + 4 * 4 * width * (n_users + n_items))

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
        rank = _rank(int(self.factors), *x.shape)
        if rank < int(self.factors):
            _log.info(
                "PureSVD: factors=%d capped at %d, a tenth of the %d x %d matrix's smaller side",
                self.factors, rank, *x.shape,
            )  # fmt: skip
        # the dense work is QR / SVD of tall, thin [n, factors + 10] blocks: one BLAS thread
        # is as fast, and multi-threaded BLAS on such blocks is slow on a busy machine
        with single_threaded_blas():
            _, s, vt = randomized_svd(x, rank, n_iter=int(self.n_iter), seed=seed_from(gen))
        v = np.ascontiguousarray(vt.T, dtype=np.float32)
        self.item_factors_ = v
        self.singular_values_ = s.astype(np.float32)
        self.user_factors_ = np.ascontiguousarray(x @ v, dtype=np.float32)
        self.factors_ = rank

    def _user_vectors(self, users: IndexArray) -> np.ndarray:
        return self.user_factors_[users]

    def _item_vectors(self) -> np.ndarray:
        return self.item_factors_

    def _fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        """``history @ V`` (values ignored: 1 per item, as in training)."""
        return np.asarray(_binary(history) @ self.item_factors_, dtype=np.float32)
