"""Baseline: global mean + user bias + item bias, fitted by regularised alternating least squares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ..data.interactions import Interactions
from ..kernels.baseline import als_biases
from ..types import IndexArray, RandomState, ScoreArray
from ._params import Range, Search
from .base import Callback, Capabilities, Query, RatingPredictor, register

__all__ = ["Baseline", "fit_biases", "fold_in_user_bias"]


def _csr_arrays(m: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indptr int64, indices int32, data float32)``: the one dtype signature kernels see."""
    return (
        np.ascontiguousarray(m.indptr, dtype=np.int64),
        np.ascontiguousarray(m.indices, dtype=np.int32),
        np.ascontiguousarray(m.data, dtype=np.float32),
    )


#: ratings from which the ALS half steps run rows in parallel: below it the 2 * epochs
#: parallel regions cost more than their work (see :func:`~lensrec.kernels.baseline.als_biases`)
PARALLEL_MIN_RATINGS = 1_000_000


def fit_biases(
    ratings: sp.csr_matrix, reg_user: float, reg_item: float, epochs: int
) -> tuple[float, np.ndarray, np.ndarray]:
    """``(mu, b_u, b_i)`` (float64) by ``epochs`` rounds of regularised ALS on a users x
    items rating CSR (see :func:`lensrec.kernels.baseline.als_biases`), in parallel from
    ``PARALLEL_MIN_RATINGS`` ratings (the same numbers either way). Shared by
    :class:`Baseline` and :class:`~lensrec.models.knn_baseline.KNNBaseline`."""
    m = sp.csr_matrix(ratings)
    mu = float(m.data.astype(np.float64).mean()) if m.nnz else 0.0
    by_item = m.T.tocsr()
    by_item.sort_indices()
    user_bias = np.zeros(m.shape[0])
    item_bias = np.zeros(m.shape[1])
    als_biases(
        *_csr_arrays(m), *_csr_arrays(by_item), mu, float(reg_user), float(reg_item),
        int(epochs), user_bias, item_bias, m.nnz >= PARALLEL_MIN_RATINGS,
    )  # fmt: skip
    return mu, user_bias, item_bias


def fold_in_user_bias(
    history: sp.csr_matrix, mu: float, item_bias: np.ndarray, reg_user: float
) -> np.ndarray:
    """``b_u = sum_i (r_ui - mu - b_i) / (reg_user + n_u)`` per history row (float64).

    The user half-step of the ALS fit with the item biases fixed: exactly the bias the fit
    gives a training user with the same ratings. An empty row gives 0.
    """
    h = sp.csr_matrix(history)
    resid = h.data.astype(np.float64) - mu - item_bias[h.indices]
    counts = np.diff(h.indptr)
    rows = np.repeat(np.arange(h.shape[0]), counts)
    sums = np.bincount(rows, weights=resid, minlength=h.shape[0])
    return sums / (float(reg_user) + counts)


@register("baseline")
class Baseline(RatingPredictor):
    """The baseline predictor ``r_hat = mu + b_u + b_i`` with regularised biases.

    ``mu`` is the training mean; the user and item biases minimise

        sum_(u,i) (r_ui - mu - b_u - b_i)^2 + reg_user * sum_u b_u^2 + reg_item * sum_i b_i^2

    by alternating exact least squares, starting from zero: each epoch sets every item bias
    given the user biases, then every user bias given the item biases (Koren, "Factor in
    the neighbors: scalable and accurate collaborative filtering", TKDD 4(1), 2010, section
    2.1; Surprise's ``BaselineOnly`` with ``method="als"``). It is
    the reference every rating model has to beat, and the fallback estimate of every lensrec
    rating model for users or items it never saw (``predict(..., missing="baseline")``).

    Rankings: ``b_u`` shifts all of a user's predictions alike, so every user gets the same
    list, by ``b_i`` (``capabilities.personalized`` is False); scores are the predicted
    ratings. A user given only by a history of ratings gets ``b_u`` from them (the ALS user
    step with the item biases fixed).

    Parameters
    ----------
    reg_user : float, default 5.0
        L2 weight on the user biases (Surprise's ``reg_u``): a user with ``n`` ratings has
        their mean residual shrunk by ``n / (n + reg_user)``.
    reg_item : float, default 3.0
        L2 weight on the item biases (Surprise's ``reg_i``). Both defaults were chosen on
        validation sets carved from ml-100k training parts (mean validation RMSE 0.9510,
        against 0.9549 with Surprise's ``reg_u=15, reg_i=10``; ``benchmarks/README.md``).
    epochs : int, default 10
        ALS rounds (item step then user step); 10 is converged to about 1e-4 on MovieLens.
    random_state : ignored
        The fit is deterministic; kept for the common contract.

    Attributes
    ----------
    global_mean_ : float
        Mean training rating ``mu``.
    user_bias_, item_bias_ : float32 [n_users], [n_items]
        ``b_u`` and ``b_i``.

    Examples
    --------
    >>> from lensrec.testing import make_ratings
    >>> model = Baseline().fit(make_ratings())
    >>> manual = model.global_mean_ + model.user_bias_[0] + model.item_bias_[0]
    >>> bool(abs(model.predict([0], [0], clip=False)[0] - manual) < 1e-5)
    True
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        needs_ratings=True,
        predicts_ratings=True,
        folds_in=True,
        fold_in_needs_ratings=True,
        similar_items=False,
        personalized=False,
    )
    reg_user: Annotated[float, Range(0.0), Search(0.1, 100.0, log=True)] = 5.0
    reg_item: Annotated[float, Range(0.0), Search(0.1, 100.0, log=True)] = 3.0
    epochs: Annotated[int, Range(1)] = 10
    random_state: RandomState = None

    @classmethod
    def warm_up(cls, params: Mapping[str, Any] | None = None) -> None:
        """Compile the ALS kernel (serial and parallel) on tiny data."""
        from ..data.planted import make_ratings

        cls().fit(make_ratings(n_users=6, n_items=5, density=0.8)).predict([0], [0])
        m = make_ratings(n_users=6, n_items=5, density=0.8).csr("rating")
        als_biases(*_csr_arrays(m), *_csr_arrays(m.T.tocsr()), 3.0, 1.0, 1.0, 1,
                   np.zeros(6), np.zeros(5), True)  # fmt: skip

    def _fit(
        self,
        train: Interactions,
        valid: Interactions | None,
        gen: np.random.Generator,
        *,
        show_progress: bool,
        callback: Callback | None,
    ) -> None:
        mu, bu, bi = fit_biases(train.csr("rating"), self.reg_user, self.reg_item, self.epochs)
        self.global_mean_ = mu
        self.user_bias_ = bu.astype(np.float32)
        self.item_bias_ = bi.astype(np.float32)

    def _predict(self, users: IndexArray, items: IndexArray) -> ScoreArray:
        out = self.global_mean_ + self.user_bias_[users].astype(np.float64)
        return (out + self.item_bias_[items]).astype(np.float32)

    def _score(self, query: Query, items: IndexArray | None) -> ScoreArray:
        bu = np.zeros(len(query), dtype=np.float64)
        known = query.known
        bu[known] = self.user_bias_[query.users[known]]
        if (~known).any():
            assert query.history is not None  # unknown users come with a history
            bu[~known] = fold_in_user_bias(
                query.history[~known],
                float(self.global_mean_),
                self.item_bias_.astype(np.float64),
                float(self.reg_user),
            )
        ib = self.item_bias_ if items is None else self.item_bias_[items]
        scores = (self.global_mean_ + bu)[:, None] + ib[None, :].astype(np.float64)
        return np.ascontiguousarray(scores, dtype=np.float32)
