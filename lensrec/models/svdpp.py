"""SVD++: biased matrix factorisation plus the implicit feedback of which items a user rated."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
import scipy.sparse as sp

from ..kernels import csr_parts, readonly, triples_by_row
from ..kernels.svdpp import implicit_sums, predict_pairs, svdpp_epoch, svdpp_epoch_hogwild
from ..types import IndexArray, RandomState, ScoreArray
from ._params import Range, Search
from ._sgd import BiasedSGDModel, EpochPlan
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

    Parameters
    ----------
    factors : int, default 100
        Latent dimensions (Surprise's ``n_factors``).
    epochs : int, default 30
        Epochs (the maximum with validation).
    learning_rate : float, default 0.01
        Step size of every parameter in the first epoch (Surprise's ``lr_all``).
    reg : float or "auto", default "auto"
        L2 weight of every parameter but ``y_j``, applied at each of its ratings
        (``reg_all``). ``"auto"`` scales it with the number ``n`` of training ratings, as
        SVD's: ``0.1 * (n / 100,000) ** -0.25`` within [0.02, 0.1] (0.1 up to ml-100k's
        size, 0.056 at 1M ratings, 0.032 at 10M; :func:`lensrec.models.svd_sgd.auto_reg`).
        The value used is ``reg_used_``.
    lr_bu, lr_bi, lr_pu, lr_qi : float or None, default None
        Per-parameter learning rates; None takes ``learning_rate``.
    lr_yj : float or None, default 0.005
        Learning rate of the implicit factors ``y_j`` (None: ``learning_rate``).
    reg_bu, reg_bi, reg_pu, reg_qi : float or None, default None
        Per-parameter regularisation; None takes ``reg``.
    reg_yj : float or None, default 0.005
        Regularisation of the implicit factors (None: ``reg``). They need far less than the
        explicit ones: on ml-100k validation sets ``reg_yj = reg = 0.1`` gives 0.9218,
        ``reg_yj = 0.005`` 0.9155 (at 30 epochs).
    init_mean, init_std : float, default 0.0 and 0.1
        ``p_u``, ``q_i`` and ``y_j`` start as ``normal(init_mean, init_std)`` draws.
    learning_rate_decay : float in (0, 1], default 1.0
        Every learning rate is multiplied by this after each epoch.
    order : {"shuffle", "user"}, default "shuffle"
        The order users are visited in each epoch (each user's ratings in row order): a new
        random permutation every epoch, or user index order (Surprise's order).
    parallel : bool, default False
        Hogwild epochs over blocks of users on all threads; with one thread, the serial
        model bit for bit, with more, not repeatable. On 2 cores: slower than serial at 1M
        ratings, 2x faster at 10M (1.8 -> 0.9 s per epoch, the same RMSE).
    valid_fraction : float, default 0.0
        With no ``valid`` given: hold out this random share of the ratings for early
        stopping, then refit on all of them (0: exactly ``epochs``).
    patience : int, default 5
        With validation: epochs without an improvement of more than ``tol`` before stopping.
    tol : float, default 1e-4
        Minimum improvement of the validation RMSE that resets ``patience``.
    random_state : None, int or numpy Generator
        Seeds the initialisation, the hold-out and the shuffles.

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
    history_ : dict of lists of float
        ``"train_loss"`` and ``"valid_rmse"`` per epoch (of the early-stopping run).
    best_epoch_ : int
        1-based epoch whose parameters were kept: the best validation RMSE's; with a
        ``valid_fraction`` hold-out, the number of epochs the final model was retrained for
        on all ratings; without validation, the number of epochs run.
    epochs_ : int
        The same number (its earlier name).
    reg_used_ : float
        The shared regularisation used (``reg``, or the ``"auto"`` value).

    Examples
    --------
    >>> from lensrec.testing import make_ratings
    >>> model = SVDpp(factors=4, epochs=5, random_state=0).fit(make_ratings())
    >>> model.predict([0], [1]).dtype
    dtype('float32')
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        needs_ratings=True,
        predicts_ratings=True,
        folds_in=True,
        fold_in_needs_ratings=True,
        uses_history=True,
        epoch_trained=True,
    )
    #: the parameters with their own ``lr_<p>`` and ``reg_<p>`` overrides, in kernel order
    _PARAMS: ClassVar[tuple[str, ...]] = ("bu", "bi", "pu", "qi", "yj")

    factors: Annotated[int, Range(1), Search(8, 256, log=True)] = 100
    epochs: Annotated[int, Range(1), Search(10, 100, log=True)] = 30
    learning_rate: Annotated[float, Range(0.0, low_open=True), Search(0.001, 0.03, log=True)] = 0.01
    reg: Annotated[float | Literal["auto"], Range(0.0), Search(0.005, 0.3, log=True)] = "auto"
    lr_bu: Annotated[float | None, Range(0.0)] = None
    lr_bi: Annotated[float | None, Range(0.0)] = None
    lr_pu: Annotated[float | None, Range(0.0)] = None
    lr_qi: Annotated[float | None, Range(0.0)] = None
    lr_yj: Annotated[float | None, Range(0.0)] = 0.005
    reg_bu: Annotated[float | None, Range(0.0)] = None
    reg_bi: Annotated[float | None, Range(0.0)] = None
    reg_pu: Annotated[float | None, Range(0.0)] = None
    reg_qi: Annotated[float | None, Range(0.0)] = None
    reg_yj: Annotated[float | None, Range(0.0), Search(0.005, 0.3, log=True)] = 0.005
    init_mean: float = 0.0
    init_std: Annotated[float, Range(0.0)] = 0.1
    learning_rate_decay: Annotated[float, Range(0.0, 1.0, low_open=True), Search(0.8, 1.0)] = 1.0
    order: Literal["shuffle", "user"] = "shuffle"
    parallel: bool = False
    valid_fraction: Annotated[float, Range(0.0, 0.5, high_open=True)] = 0.0
    patience: Annotated[int, Range(1)] = 5
    tol: Annotated[float, Range(0.0)] = 1e-4
    random_state: RandomState = None

    @classmethod
    def warm_up(cls) -> None:
        """Compile the serial and Hogwild epochs, the implicit sums and the predictions."""
        from ..data.planted import make_ratings

        data = make_ratings(n_users=8, n_items=6, density=0.8, random_state=0)
        for parallel in (False, True):
            model = cls(factors=2, epochs=2, parallel=parallel, valid_fraction=0.25)
            model.fit(data).predict([0], [0])
        model.recommend([0], k=2)
        model.recommend(None, k=2, history=data.csr("rating")[:2])

    # --- training ------------------------------------------------------------------------
    def _init_extra(self, gen: np.random.Generator, n_items: int) -> tuple[np.ndarray, ...]:
        """The implicit factors ``y_j ~ normal(init_mean, init_std)``."""
        k = int(self.factors)
        mean, std = float(self.init_mean), float(self.init_std)
        return (gen.normal(mean, std, (n_items, k)).astype(np.float32),)

    def _keep_extra(self, extra: tuple[np.ndarray, ...]) -> None:
        self.implicit_factors_ = np.ascontiguousarray(extra[0])

    def _epoch_plan(
        self,
        ratings: tuple[np.ndarray, np.ndarray, np.ndarray],
        shape: tuple[int, int],
        mu: float,
        params: tuple[np.ndarray, ...],
    ) -> EpochPlan:
        """User by user in ``order``, each user's ratings in row order (serial, or Hogwild
        over blocks of users)."""
        n_users, n_items = shape
        up, ip, yj = params
        indptr, r_items, r_values, imp_indptr, imp_items = _grouped(*ratings, n_users, n_items)
        user_order = np.arange(n_users, dtype=np.int32)
        rates, regs = (np.array(v, dtype=np.float64) for v in self._rates())
        parallel = bool(self.parallel)

        def run(scale: float) -> float:
            args = (indptr, r_items, r_values, imp_indptr, imp_items, user_order, mu,
                    rates * scale, regs, up, ip, yj)  # fmt: skip
            if parallel:
                return float(svdpp_epoch_hogwild(*args, _HOGWILD_BLOCK))
            return float(svdpp_epoch(*args))

        def predict(u: np.ndarray, i: np.ndarray, out: np.ndarray) -> None:
            sums = np.empty((n_users, yj.shape[1]), dtype=np.float32)
            implicit_sums(imp_indptr, imp_items, yj, sums)
            predict_pairs(readonly(u), readonly(i), mu, up, ip, sums, out)

        return EpochPlan(user_order, run, predict)

    # --- scoring -------------------------------------------------------------------------
    def _packed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``[p_u | b_u]``, ``[q_i | b_i]`` and the training users' implicit sums."""

        def pack() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            up = np.ascontiguousarray(np.column_stack([self.user_factors_, self.user_bias_]))
            ip = np.ascontiguousarray(np.column_stack([self.item_factors_, self.item_bias_]))
            return up, ip, _sums(self.user_items_, self.implicit_factors_)

        return self._cached("packed", pack)

    def _predict(self, users: IndexArray, items: IndexArray) -> ScoreArray:
        up, ip, sums = self._packed()
        out = np.empty(len(users), dtype=np.float32)
        predict_pairs(
            readonly(np.ascontiguousarray(users, np.int32)),
            readonly(np.ascontiguousarray(items, np.int32)),
            float(self.global_mean_),
            up,
            ip,
            sums,
            out,
        )
        return out

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
