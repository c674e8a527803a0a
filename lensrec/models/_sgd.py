"""What SVD and SVD++ share: per-rating SGD on a biased factor model, trained one way.

:class:`BiasedSGDModel` owns the fit path of both: the ratings and ``reg="auto"``, the
hold-out / early-stopping / refit plumbing (:func:`~._trainer.holdout_then_refit`), the
Surprise-style initialisation, the epoch loop with its shuffles and learning-rate decay
(:class:`~._trainer.EpochTrainer`), the fitted attributes, and the ridge fold-in of users
never seen. A subclass says how an epoch runs (:meth:`BiasedSGDModel._epoch_plan`) and, for
SVD++, which extra parameters it learns (:meth:`BiasedSGDModel._init_extra`,
:meth:`BiasedSGDModel._keep_extra`).

The helpers below (``auto_reg``, ``rating_arrays``, ``loss_ceiling``, ``ridge_fold_in``) are
re-exported by :mod:`lensrec.models.svd_sgd`, where they were first written. Validation is
:class:`~._validation.RatingValidation`, as for every rating model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple

import numpy as np
import scipy.sparse as sp

from .._config import seed_from
from ..data.interactions import Interactions
from ..errors import ConfigError
from ..kernels import readonly
from ..kernels.biased_mf import shuffled_order
from ._trainer import EpochTrainer, TrainLog, holdout_then_refit
from ._validation import RatingValidation
from .base import Callback, RatingPredictor

__all__ = [
    "AUTO_REG_EXPONENT",
    "AUTO_REG_FLOOR",
    "BiasedSGDModel",
    "EpochPlan",
    "auto_reg",
    "loss_ceiling",
    "rating_arrays",
    "ridge_fold_in",
]


#: ``reg="auto"``: its exponent in the number of ratings and its floor
AUTO_REG_EXPONENT = 0.25
AUTO_REG_FLOOR = 0.02


def auto_reg(n_ratings: int, at_100k: float) -> float:
    """``at_100k * (n / 100,000) ** -0.25`` within ``[0.02, at_100k]`` (``reg="auto"``).

    L2 applied at every rating weighs more on a row the more ratings it has; on validation
    sets carved from training data the best per-rating weight of SVD at 40 epochs fell with
    the size of the data: 0.1 on ml-100k, 0.035-0.05 at 1M synthetic ratings, 0.03 at 10M
    (``benchmarks/README.md``). Smaller data keeps ``at_100k``.
    """
    ratio = max(float(n_ratings), 1.0) / 100_000.0
    return float(min(at_100k, max(AUTO_REG_FLOOR, at_100k * ratio**-AUTO_REG_EXPONENT)))


def _override(value: float | None, shared: float) -> float:
    return float(shared if value is None else value)


def rating_arrays(data: Interactions, owner: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(users int32, items int32, ratings float32)``, contiguous; refuses NaN ratings."""
    if data.ratings is None:
        raise ConfigError(f"{owner} needs explicit ratings; the data is implicit")
    ratings = np.ascontiguousarray(data.ratings, dtype=np.float32)
    if not np.all(np.isfinite(ratings)):
        raise ConfigError(f"{owner}: the ratings contain NaN or infinite values")
    return (
        np.ascontiguousarray(data.users, dtype=np.int32),
        np.ascontiguousarray(data.items, dtype=np.int32),
        ratings,
    )


def loss_ceiling(ratings: np.ndarray) -> float:
    """A train MSE far above predicting the mean (about the variance): divergence."""
    variance = float(np.var(ratings.astype(np.float64))) if len(ratings) else 1.0
    return 1e3 * max(variance, 1e-3) + 1e3


def ridge_fold_in(
    history: sp.csr_matrix,
    item_factors: np.ndarray,
    item_bias: np.ndarray,
    mu: float,
    reg_factors: float,
    reg_bias: float,
    biased: bool,
    offsets: np.ndarray | None = None,
) -> np.ndarray:
    """``[p_u, b_u]`` per history row minimising the per-rating SGD objective, items fixed.

    ``sum_i (r_ui - mu - b_i - q_i . (p_u + o_u) - b_u)^2 + n (reg_factors |p_u|^2 +
    reg_bias b_u^2)`` over the row's ``n`` ratings: the point where the SGD updates of one
    user sum to zero (each rating applies the L2 once). ``o_u`` (``offsets`` [m, k], e.g.
    SVD++'s implicit sum) is added to ``p_u``; without ``biased`` ``b_u`` stays 0. An empty
    row gives zeros. Returns float64 ``[m, k + 1]``.
    """
    k = item_factors.shape[1]
    out = np.zeros((history.shape[0], k + 1))
    for r in range(history.shape[0]):
        lo, hi = history.indptr[r], history.indptr[r + 1]
        items = history.indices[lo:hi]
        n = items.size
        if n == 0:
            continue
        q = item_factors[items].astype(np.float64)
        y = history.data[lo:hi].astype(np.float64) - mu - item_bias[items]
        if offsets is not None:
            y = y - q @ offsets[r]
        if biased:
            x = np.empty((n, k + 1))
            x[:, :k] = q
            x[:, k] = 1.0
            lam = np.full(k + 1, n * reg_factors)
            lam[k] = n * reg_bias
            out[r] = np.linalg.solve(x.T @ x + np.diag(lam), x.T @ y)
        else:
            out[r, :k] = np.linalg.solve(q.T @ q + n * reg_factors * np.eye(k), q.T @ y)
    return out


class EpochPlan(NamedTuple):
    """How a model runs its epochs on one set of ratings (:meth:`BiasedSGDModel._epoch_plan`)."""

    order: np.ndarray
    """The visiting order (int32); shuffled in place before each epoch when
    ``order == "shuffle"``."""
    run: Callable[[float], float]
    """``run(scale)``: one epoch in place with every learning rate times ``scale``; returns
    the epoch's training loss."""
    predict: Callable[[np.ndarray, np.ndarray, np.ndarray], None]
    """``predict(users, items, out)``: unclipped predictions of the current parameters."""


class BiasedSGDModel(RatingPredictor):
    """The fit path SVD and SVD++ share (see the module docstring); not registered.

    Subclasses declare the hyper-parameters used here (``factors``, ``epochs``,
    ``learning_rate``, ``reg``, ``lr_<p>`` / ``reg_<p>`` for every ``p`` in ``_PARAMS``,
    ``init_mean``, ``init_std``, ``learning_rate_decay``, ``order``, ``valid_fraction``,
    ``patience``, ``tol``) and implement :meth:`_epoch_plan`.

    ``_train`` draws from ``gen`` in a fixed order (user factors, item factors, the extra
    parameters, then one shuffle seed per epoch), so a seed gives the same model bit for bit
    with one thread.
    """

    #: the parameters with their own ``lr_<p>`` and ``reg_<p>`` overrides, in kernel order
    _PARAMS: ClassVar[tuple[str, ...]] = ("bu", "bi", "pu", "qi")

    if TYPE_CHECKING:  # declared by the subclasses (as fields) and by fit
        factors: int
        epochs: int
        learning_rate: float
        reg: float | Literal["auto"]
        init_mean: float
        init_std: float
        learning_rate_decay: float
        order: str
        valid_fraction: float
        patience: int
        tol: float
        reg_used_: float = dataclasses.field(init=False)
        global_mean_: float = dataclasses.field(init=False)
        user_factors_: np.ndarray = dataclasses.field(init=False)
        item_factors_: np.ndarray = dataclasses.field(init=False)
        user_bias_: np.ndarray = dataclasses.field(init=False)
        item_bias_: np.ndarray = dataclasses.field(init=False)
        best_epoch_: int = dataclasses.field(init=False)
        epochs_: int = dataclasses.field(init=False)

    # --- hooks ---------------------------------------------------------------------------
    def _is_biased(self) -> bool:
        """Whether ``mu``, ``b_u`` and ``b_i`` are learnt (SVD's ``biased``)."""
        return True

    def _init_extra(self, gen: np.random.Generator, n_items: int) -> tuple[np.ndarray, ...]:
        """Parameters learnt beside ``[p_u | b_u]`` and ``[q_i | b_i]`` (SVD++: ``y_j``),
        drawn after the factors."""
        return ()

    def _keep_extra(self, extra: tuple[np.ndarray, ...]) -> None:
        """Store the trained extra parameters as fitted attributes."""

    def _epoch_plan(
        self,
        ratings: tuple[np.ndarray, np.ndarray, np.ndarray],
        shape: tuple[int, int],
        mu: float,
        params: tuple[np.ndarray, ...],
    ) -> EpochPlan:
        """The epochs on ``ratings = (users, items, values)`` updating ``params = (up, ip,
        *extra)`` in place, ``up`` / ``ip`` being ``[p_u | b_u]`` / ``[q_i | b_i]``."""
        raise NotImplementedError

    # --- shared ----------------------------------------------------------------------------
    def _rates(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Learning rates and regularisation of ``_PARAMS``, overrides applied."""
        lr, reg = float(self.learning_rate), float(self.reg_used_)
        rates = tuple(_override(getattr(self, f"lr_{p}"), lr) for p in self._PARAMS)
        regs = tuple(_override(getattr(self, f"reg_{p}"), reg) for p in self._PARAMS)
        return rates, regs

    def _fit(
        self,
        train: Interactions,
        valid: Interactions | None,
        gen: np.random.Generator,
        *,
        show_progress: bool,
        callback: Callback | None,
    ) -> None:
        name = type(self).__name__
        # read-only throughout (the hold-out's copies too): the kernels compile one signature
        users, items, ratings = (readonly(a) for a in rating_arrays(train, name))
        self.reg_used_ = auto_reg(len(users), 0.1) if self.reg == "auto" else float(self.reg)
        shape = (train.n_users, train.n_items)
        scale = (float(self.rating_scale_[0]), float(self.rating_scale_[1]))
        given = None
        if valid is not None and len(valid):
            given = RatingValidation(rating_arrays(valid, f"{name} (validation data)"), scale)

        def train_on(
            rows: np.ndarray | None, hold: np.ndarray | None, epochs: int, is_refit: bool
        ) -> tuple[tuple[Any, ...], TrainLog]:
            if rows is None:
                arrays = (users, items, ratings)
                check = given if not is_refit else None
            else:
                assert hold is not None
                arrays = (readonly(users[rows]), readonly(items[rows]), readonly(ratings[rows]))
                check = RatingValidation((users[hold], items[hold], ratings[hold]), scale)
            return self._train(
                arrays, shape, gen, epochs, check,
                show_progress=show_progress and not is_refit,
                callback=None if is_refit else callback,
            )  # fmt: skip

        first, log, again = holdout_then_refit(
            train_on,
            n_rows=len(users),
            epochs=int(self.epochs),
            valid_given=valid is not None,
            valid_fraction=float(self.valid_fraction),
            refit=True,
            gen=gen,
        )
        mu, up, ip, *extra = again if again is not None else first
        k = int(self.factors)
        self.global_mean_ = mu
        self.user_factors_ = np.ascontiguousarray(up[:, :k])
        self.item_factors_ = np.ascontiguousarray(ip[:, :k])
        self._keep_extra(tuple(extra))
        self.user_bias_ = np.ascontiguousarray(up[:, k])
        self.item_bias_ = np.ascontiguousarray(ip[:, k])
        self.history_ = {
            "train_loss": log.history.get("train_loss", []),
            "valid_rmse": log.history.get("valid_rmse", []),
        }
        self.best_epoch_ = log.best_epoch if log.best_epoch > 0 else log.epochs_run
        self.epochs_ = self.best_epoch_  # its earlier name

    def _train(
        self,
        ratings: tuple[np.ndarray, np.ndarray, np.ndarray],
        shape: tuple[int, int],
        gen: np.random.Generator,
        epochs: int,
        check: RatingValidation | None,
        *,
        show_progress: bool,
        callback: Callback | None,
    ) -> tuple[tuple[Any, ...], TrainLog]:
        """Initialise and train on one set of ratings, early-stopping on ``check`` when
        given; return ``((mu, up, ip, *extra), log)``."""
        k = int(self.factors)
        n_users, n_items = shape
        values = ratings[2]
        mu = float(values.astype(np.float64).mean()) if self._is_biased() and len(values) else 0.0
        # Surprise's initialisation: factors ~ normal(init_mean, init_std), biases 0
        mean, std = float(self.init_mean), float(self.init_std)
        up = np.zeros((n_users, k + 1), dtype=np.float32)
        ip = np.zeros((n_items, k + 1), dtype=np.float32)
        up[:, :k] = gen.normal(mean, std, (n_users, k))
        ip[:, :k] = gen.normal(mean, std, (n_items, k))
        params = (up, ip, *self._init_extra(gen, n_items))
        plan = self._epoch_plan(ratings, shape, mu, params)
        decay = float(self.learning_rate_decay)
        shuffle = self.order == "shuffle"

        def step(epoch: int) -> float:
            if shuffle:
                shuffled_order(plan.order, seed_from(gen))
            return plan.run(decay ** (epoch - 1))

        validate = None if check is None else (lambda: check(plan.predict))
        trainer: EpochTrainer[tuple[np.ndarray, ...]] = EpochTrainer(
            type(self).__name__,
            epochs=epochs,
            patience=int(self.patience),
            tol=float(self.tol),
            mode="min",
            metric="valid_rmse",
            loss_ceiling=loss_ceiling(values),
            hint="lower learning_rate or raise reg",
            show_progress=show_progress,
            callback=callback,
        )
        log, best = trainer.run(step, validate, lambda: tuple(p.copy() for p in params))
        return (mu, *(params if best is None else best)), log

    def _after_load(self) -> None:
        super()._after_load()
        if not hasattr(self, "best_epoch_") and hasattr(self, "epochs_"):  # saved before it
            self.best_epoch_ = self.epochs_

    def _ridge_fold_in(
        self, history: sp.csr_matrix, offsets: np.ndarray | None = None
    ) -> np.ndarray:
        """:func:`ridge_fold_in` of the history rows with this model's items and regularisation."""
        _, regs = self._rates()
        return ridge_fold_in(
            history, self.item_factors_, self.item_bias_.astype(np.float64),
            float(self.global_mean_), regs[2], regs[0], self._is_biased(), offsets=offsets,
        )  # fmt: skip

    def _item_vectors(self) -> np.ndarray:
        """``[q_i, 1, b_i]``: against ``[p_u, mu + b_u, 1]`` the predicted rating."""
        out = np.empty((self.item_factors_.shape[0], self.item_factors_.shape[1] + 2), np.float32)
        out[:, :-2] = self.item_factors_
        out[:, -2] = 1.0
        out[:, -1] = self.item_bias_
        return out

    def _similarity_vectors(self) -> np.ndarray:
        return self.item_factors_
