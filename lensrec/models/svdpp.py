"""SVD++: biased matrix factorisation plus the implicit feedback of which items a user rated."""

from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar, Literal

import numpy as np
import scipy.sparse as sp

from ..data.interactions import Interactions
from ..kernels import csr_parts, triples_by_row
from ..kernels.svdpp import implicit_sums, predict_pairs, svdpp_epoch, svdpp_epoch_hogwild
from ..types import IndexArray, ScoreArray
from ._params import Range, Search
from ._sgd import BiasedSGDModel, EpochLayout, RatingArrays, SGDKernels
from .base import Capabilities, Query, register

__all__ = ["SVDpp"]

#: users per Hogwild block
_HOGWILD_BLOCK = 64


def _grouped(
    users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_users: int, n_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ratings grouped by user in row order (duplicates kept, as separate ratings) and the
    implicit pattern ``N(u)`` (distinct items, sorted): ``(indptr, items, ratings, imp_indptr,
    imp_items)`` with int64 indptr, int32 indices and float32 ratings."""
    pattern = sp.csr_matrix(
        (np.ones(len(users), np.float32), (users, items)), shape=(n_users, n_items)
    )
    pattern.sum_duplicates()
    pattern.sort_indices()
    imp_indptr, imp_items, _ = csr_parts(pattern)
    return (*triples_by_row(users, items, ratings, n_users), imp_indptr, imp_items)


def _sums(history: sp.csr_matrix, implicit: np.ndarray) -> np.ndarray:
    """``|N(u)|^-1/2 sum_{j in N(u)} y_j`` per history row (float32 ``[m, k]``)."""
    out = np.empty((history.shape[0], implicit.shape[1]), dtype=np.float32)
    indptr, indices, _ = csr_parts(history, None)
    implicit_sums(indptr, indices, implicit, out)
    return out


@register("svdpp")
class SVDpp(BiasedSGDModel):
    """SVD++: biased matrix factorisation with implicit feedback (Koren 2008).

    Predicts ``r_hat = mu + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j)``
    (Koren, "Factorization meets the neighborhood: a multifaceted collaborative filtering
    model", KDD 2008, section 4), where ``N(u)`` is the set of items the user rated: which
    items someone chose to rate says something about them beyond the ratings themselves.
    Trained by per-rating SGD on Surprise's ``SVDpp`` objective (squared error plus L2 on
    every parameter, per rating), with the numba kernel
    :func:`lensrec.kernels.svdpp.svdpp_epoch`: users one at a time, the implicit sum
    computed once per user and the ``y_j`` moved once per user by the summed gradient
    (MyMediaLite's formulation), so an epoch costs O(ratings x factors) instead of
    Surprise's O(ratings x |N(u)| x factors). The learning rates are multiplied by
    ``learning_rate_decay`` after each epoch.

    The implicit part comes from the user's history: a known user's training items, or the
    history given with a query. A user the model never saw is scored from their history of
    ratings: the implicit sum from its items and ``p_u, b_u`` by exact ridge fold-in (the
    point where the SGD steps on those ratings sum to zero, the items fixed).

    Training runs exactly ``epochs`` epochs unless there is validation (a ``valid`` given to
    ``fit``, or ``valid_fraction`` > 0: hold out, early-stop, refit on all ratings).

    The parameters SVD++ shares with SVD are documented on
    :class:`~lensrec.models._sgd.BiasedSGDModel`, and listed here with SVD++'s own.

    Parameters
    ----------
    lr_yj : float or None, default 0.005
        Learning rate of the implicit factors ``y_j`` (None: ``learning_rate``).
    reg_yj : float or None, default 0.005
        Regularisation of the implicit factors (None: ``reg``). They need far less than the
        explicit ones: on ml-100k validation sets ``reg_yj = reg = 0.1`` gives 0.9218,
        ``reg_yj = 0.005`` 0.9155 (at 30 epochs).
    order : {"shuffle", "user"}, default "shuffle"
        The order users are visited in each epoch (each user's ratings in row order): a new
        random permutation every epoch, or user index order (Surprise's order).
    parallel : bool, default False
        Hogwild epochs over blocks of users on all threads; with one thread, the serial
        model bit for bit, with more, not repeatable. On 2 cores: slower than serial at 1M
        ratings, 2x faster at 10M (1.8 -> 0.9 s per epoch, the same RMSE).

    Notes
    -----
    Surprise's model is ``SVDpp(factors=20, epochs=20, learning_rate=0.007, reg=0.02,
    lr_yj=None, reg_yj=None, order="user")`` (up to the per-user ``y`` step described
    above). lensrec's defaults were chosen on validation sets carved from the ml-100k
    training parts, never a test part: mean validation RMSE 0.9155, against 0.9316 for the
    best of Surprise-like settings (20 factors, ``reg`` 0.02); ``reg="auto"`` follows the
    measurements at 1M synthetic ratings, where the best ``reg`` was 0.035-0.05 as for SVD
    (``benchmarks/README.md``).

    Attributes
    ----------
    global_mean_ : float
    user_bias_, item_bias_ : float32 [n_users], [n_items]
    user_factors_, item_factors_, implicit_factors_ : float32 [n, factors]
        ``p_u``, ``q_i`` and ``y_j``.

    Examples
    --------
    >>> from lensrec.testing import make_ratings
    >>> model = SVDpp(factors=4, epochs=5, random_state=0).fit(make_ratings())
    >>> model.predict([0], [1]).dtype
    dtype('float32')
    """

    capabilities: ClassVar[Capabilities] = dataclasses.replace(
        BiasedSGDModel.capabilities, uses_history=True
    )
    _PARAMS: ClassVar[tuple[str, ...]] = ("bu", "bi", "pu", "qi", "yj")
    _PLACED_AFTER: ClassVar[dict[str, str]] = {"lr_yj": "lr_qi", "reg_yj": "reg_qi"}
    _kernels: ClassVar[SGDKernels] = SGDKernels(
        svdpp_epoch, svdpp_epoch_hogwild, _HOGWILD_BLOCK, predict_pairs
    )

    epochs: Annotated[int, Range(1), Search(10, 100, log=True)] = 30
    learning_rate: Annotated[float, Range(0.0, low_open=True), Search(0.001, 0.03, log=True)] = 0.01
    lr_yj: Annotated[float | None, Range(0.0)] = 0.005
    reg_yj: Annotated[float | None, Range(0.0), Search(0.005, 0.3, log=True)] = 0.005
    order: Literal["shuffle", "user"] = "shuffle"

    def _warm_up_queries(self, data: Interactions) -> None:
        """The implicit sums of known users' and of given histories."""
        self.recommend([0], k=2)
        self.recommend(None, k=2, history=data.csr("rating")[:2])

    # --- training ------------------------------------------------------------------------
    def _init_extra(self, gen: np.random.Generator, n_items: int) -> tuple[np.ndarray, ...]:
        """The implicit factors ``y_j ~ normal(init_mean, init_std)``."""
        k = int(self.factors)
        mean, std = float(self.init_mean), float(self.init_std)
        return (gen.normal(mean, std, (n_items, k)).astype(np.float32),)

    def _keep_extra(self, extra: tuple[np.ndarray, ...]) -> None:
        self.implicit_factors_ = np.ascontiguousarray(extra[0])

    def _layout(
        self, ratings: RatingArrays, shape: tuple[int, int], params: tuple[np.ndarray, ...]
    ) -> EpochLayout:
        """User by user in ``order``, each user's ratings in row order:
        ``svdpp_epoch(rows, user_order, ...)``."""
        n_users, n_items = shape
        rows = _grouped(*ratings, n_users, n_items)
        user_order = np.arange(n_users, dtype=np.int32)
        up, ip, yj = params

        def scoring() -> tuple[np.ndarray, ...]:
            sums = np.empty((n_users, yj.shape[1]), dtype=np.float32)
            implicit_sums(rows[3], rows[4], yj, sums)
            return up, ip, sums

        return EpochLayout((rows, user_order), user_order, scoring)

    # --- scoring -------------------------------------------------------------------------
    def _packed_extra(self) -> tuple[np.ndarray, ...]:
        """The training users' implicit sums."""
        return (_sums(self.user_items_, self.implicit_factors_),)

    def _score(self, query: Query, items: IndexArray | None) -> ScoreArray:
        """``mu + b_u + b_i + q_i . (p_u + s_u)`` with ``s_u`` from each row's history."""
        assert query.history is not None  # uses_history: the base fills known users' rows
        k = self.item_factors_.shape[1]
        mu = float(self.global_mean_)
        s = _sums(query.history, self.implicit_factors_)
        uv = np.empty((len(query), k + 2), dtype=np.float32)
        uv[:, -1] = 1.0
        known = query.known
        if known.any():
            u = query.users[known]
            uv[known, :k] = self.user_factors_[u] + s[known]
            uv[known, k] = self.user_bias_[u] + np.float32(mu)
        if (~known).any():
            sol = self._ridge_fold_in(query.history[~known], offsets=s[~known].astype(np.float64))
            uv[~known, :k] = sol[:, :k] + s[~known]
            uv[~known, k] = mu + sol[:, k]
        iv = self._cached("item_vectors", self._item_vectors)
        if items is not None:
            iv = iv[items]
        return np.ascontiguousarray(uv @ iv.T, dtype=np.float32)
