"""SVD: Funk's biased matrix factorisation by per-rating SGD, with Surprise's ``SVD`` semantics."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from .._config import seed_from
from ..data.interactions import Interactions
from ..errors import ConfigError
from ..kernels.biased_mf import shuffled_order
from ..kernels.svd import predict_pairs, sgd_epoch, sgd_epoch_hogwild
from ..types import IndexArray, RandomState, ScoreArray
from ._params import Interval, Options
from ._trainer import EpochTrainer, TrainLog, holdout_then_refit
from .base import Callback, Capabilities, RatingPredictor, register

__all__ = ["SVD"]

_log = logging.getLogger(__name__)

#: ratings per Hogwild block (each block runs serially on one thread)
_HOGWILD_BLOCK = 4096

_ORDERS = ("shuffle", "user", "file")


class _Rate(Interval):
    """A per-parameter override: None (use the shared value) or a number >= 0."""


class _Reg(Interval):
    """A number >= 0 or ``"auto"``."""

    def describe(self) -> str:
        return 'a number >= 0 or "auto"'

    def ok(self, value: Any) -> bool:
        return value == "auto" if isinstance(value, str) else super().ok(value)


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


def validation_rmse(
    predict: Callable[[np.ndarray, np.ndarray, np.ndarray], None],
    valid: tuple[np.ndarray, np.ndarray, np.ndarray],
    scale: tuple[float, float],
) -> Callable[[], float]:
    """A ``validate()`` for the trainer: RMSE of the clipped predictions (as ``predict`` clips)."""
    out = np.empty(len(valid[0]), dtype=np.float32)
    lo, hi = np.float32(scale[0]), np.float32(scale[1])
    truth = valid[2].astype(np.float64)

    def validate() -> float:
        predict(valid[0], valid[1], out)
        np.clip(out, lo, hi, out=out)
        return float(np.sqrt(np.mean((out - truth) ** 2)))

    return validate


@register("svd")
class SVD(RatingPredictor):
    """Funk SVD: biased matrix factorisation trained by per-rating stochastic gradient descent.

    Predicts ``r_hat = mu + b_u + b_i + q_i . p_u`` (Funk, "Netflix update: try this at
    home", 2006; the biased form of Koren, Bell & Volinsky, "Matrix factorization techniques
    for recommender systems", IEEE Computer 2009, eq. 5). Each epoch visits every training
    rating once and, with ``e = r - r_hat``, steps

        b_u += lr_bu (e - reg_bu b_u)          b_i += lr_bi (e - reg_bi b_i)
        p_u += lr_pu (e q_i - reg_pu p_u)      q_i += lr_qi (e p_u - reg_qi q_i)

    (both factor steps from the values before the update): the update rule, parameter
    meanings and initialisation of Surprise's ``SVD``, whose names the per-parameter
    overrides keep. ``mu`` is the training mean (fixed), biases start at 0 and factors at
    ``normal(init_mean, init_std)``. The learning rates are multiplied by
    ``learning_rate_decay`` after each epoch. The kernel is numba, with no Python per
    rating; ``parallel=True`` runs blocks of ratings on all threads without locks (Hogwild,
    Niu et al., NIPS 2011).

    Training runs exactly ``epochs`` epochs on all the ratings, as Surprise does, unless
    there is validation: a ``valid`` given to ``fit``, or ``valid_fraction`` > 0, which holds
    out that share of the training ratings, stops after ``patience`` epochs without a better
    validation RMSE, and then retrains on all ratings for the best number of epochs.

    Parameters
    ----------
    factors : int, default 100
        Latent dimensions (Surprise's ``n_factors``).
    epochs : int, default 40
        Epochs (the maximum with validation).
    learning_rate : float, default 0.01
        Step size of every parameter (Surprise's ``lr_all``) in the first epoch.
    reg : float or "auto", default "auto"
        L2 weight of every parameter, applied at each of its ratings (``reg_all``).
        ``"auto"`` scales it with the number ``n`` of training ratings:
        ``0.1 * (n / 100,000) ** -0.25`` within [0.02, 0.1] (0.1 up to ml-100k's size, 0.056
        at 1M ratings, 0.032 at 10M; :func:`auto_reg`). The value used is ``reg_used_``.
    lr_bu, lr_bi, lr_pu, lr_qi : float or None, default None
        Per-parameter learning rates; None takes ``learning_rate``.
    reg_bu, reg_bi, reg_pu, reg_qi : float or None, default None
        Per-parameter regularisation; None takes ``reg``.
    init_mean, init_std : float, default 0.0 and 0.1
        The factors start as independent ``normal(init_mean, init_std)`` draws.
    biased : bool, default True
        Learn ``mu``, ``b_u`` and ``b_i``; False is Funk's plain ``q_i . p_u`` (``mu = 0``).
    learning_rate_decay : float in (0, 1], default 1.0
        Every learning rate is multiplied by this after each epoch (1: constant, as Surprise).
    order : {"shuffle", "user", "file"}, default "shuffle"
        The order ratings are visited in each epoch: a new random permutation every epoch;
        grouped by user (user index order, each user's ratings in the training data's row
        order: Surprise's order); or the training data's row order.
    parallel : bool, default False
        Hogwild epochs over blocks of the order on all threads (``LENSREC_THREADS``); with
        one thread, the serial model bit for bit, with more, not repeatable. On 2 cores it
        was slower than serial on ml-100k and at 1M ratings (small, hot rows the threads
        contend for) and 1.6x faster at 10M (4.5 -> 2.8 s per epoch, the same RMSE).
    valid_fraction : float, default 0.0
        With no ``valid`` given: hold out this random share of the training ratings for
        early stopping, then refit on all of them (0: no hold-out, exactly ``epochs``).
    patience : int, default 5
        With validation: epochs without an improvement of more than ``tol`` before stopping;
        the best epoch's parameters are kept.
    tol : float, default 1e-4
        Minimum improvement of the validation RMSE that resets ``patience``.
    random_state : None, int or numpy Generator
        Seeds the initialisation, the hold-out and each epoch's shuffle; serial training is
        bit-for-bit repeatable.

    Notes
    -----
    The defaults differ from Surprise's (``n_factors=100, n_epochs=20, lr_all=0.005,
    reg_all=0.02``): they were chosen on validation sets carved from the training parts of
    ml-100k (never a test part), where Surprise's defaults under-train and under-regularise,
    and of 1M and 10M synthetic ratings, where a fixed ``reg=0.1`` over-regularises (hence
    ``reg="auto"``; see ``benchmarks/README.md``). Surprise's model is
    ``SVD(epochs=20, learning_rate=0.005, reg=0.02, order="user")``.

    Attributes
    ----------
    global_mean_ : float
        ``mu`` (0 when not ``biased``).
    user_bias_, item_bias_ : float32 [n_users], [n_items]
    user_factors_, item_factors_ : float32 [n_users, factors], [n_items, factors]
    history_ : dict of lists of float
        ``"train_loss"`` (running MSE of each epoch) and ``"valid_rmse"`` (empty without
        validation); of the early-stopping run when the model was refit.
    epochs_ : int
        Epochs the returned parameters were trained for.
    reg_used_ : float
        The shared regularisation used (``reg``, or the ``"auto"`` value).

    Examples
    --------
    >>> from lensrec.testing import make_ratings
    >>> model = SVD(factors=8, epochs=5, random_state=0).fit(make_ratings())
    >>> model.predict([0, 1], [0, 1]).shape
    (2,)
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        needs_ratings=True,
        predicts_ratings=True,
        folds_in=True,
        fold_in_needs_ratings=True,
        epoch_trained=True,
    )
    search_space: ClassVar[dict[str, tuple[Any, ...]]] = {
        "factors": ("int", 8, 256, "log"),
        "epochs": ("int", 10, 100, "log"),
        "learning_rate": ("float", 0.001, 0.05, "log"),
        "reg": ("float", 0.005, 0.3, "log"),
        "learning_rate_decay": ("float", 0.8, 1.0, "linear"),
    }
    _constraints: ClassVar[dict[str, Any]] = {
        "factors": Interval(int, 1),
        "epochs": Interval(int, 1),
        "learning_rate": Interval(float, 0.0, low_open=True),
        "reg": _Reg(float, 0.0),
        **{f"lr_{p}": _Rate(float, 0.0, allow_none=True) for p in ("bu", "bi", "pu", "qi")},
        **{f"reg_{p}": _Rate(float, 0.0, allow_none=True) for p in ("bu", "bi", "pu", "qi")},
        "init_mean": Interval(float),
        "init_std": Interval(float, 0.0),
        "biased": Options((True, False)),
        "learning_rate_decay": Interval(float, 0.0, 1.0, low_open=True),
        "order": Options(_ORDERS),
        "parallel": Options((False, True)),
        "valid_fraction": Interval(float, 0.0, 0.5, high_open=True),
        "patience": Interval(int, 1),
        "tol": Interval(float, 0.0),
    }

    def __init__(
        self,
        *,
        factors: int = 100,
        epochs: int = 40,
        learning_rate: float = 0.01,
        reg: float | str = "auto",
        lr_bu: float | None = None,
        lr_bi: float | None = None,
        lr_pu: float | None = None,
        lr_qi: float | None = None,
        reg_bu: float | None = None,
        reg_bi: float | None = None,
        reg_pu: float | None = None,
        reg_qi: float | None = None,
        init_mean: float = 0.0,
        init_std: float = 0.1,
        biased: bool = True,
        learning_rate_decay: float = 1.0,
        order: str = "shuffle",
        parallel: bool = False,
        valid_fraction: float = 0.0,
        patience: int = 5,
        tol: float = 1e-4,
        random_state: RandomState = None,
    ):
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.lr_bu = lr_bu
        self.lr_bi = lr_bi
        self.lr_pu = lr_pu
        self.lr_qi = lr_qi
        self.reg_bu = reg_bu
        self.reg_bi = reg_bi
        self.reg_pu = reg_pu
        self.reg_qi = reg_qi
        self.init_mean = init_mean
        self.init_std = init_std
        self.biased = biased
        self.learning_rate_decay = learning_rate_decay
        self.order = order
        self.parallel = parallel
        self.valid_fraction = valid_fraction
        self.patience = patience
        self.tol = tol
        self.random_state = random_state

    @classmethod
    def warm_up(cls) -> None:
        """Compile the serial and Hogwild epochs and the predictions on tiny data."""
        from ..data.planted import make_ratings

        data = make_ratings(n_users=8, n_items=6, density=0.8, random_state=0)
        for parallel in (False, True):
            # with a hold-out (fancy-indexed, writable arrays) and without (the data's own)
            for fraction in (0.0, 0.25):
                model = cls(factors=2, epochs=2, parallel=parallel, valid_fraction=fraction)
                model.fit(data).predict([0], [0])

    def _rates(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        lr, reg = float(self.learning_rate), float(self.reg_used_)
        rates = tuple(_override(getattr(self, f"lr_{p}"), lr) for p in ("bu", "bi", "pu", "qi"))
        regs = tuple(_override(getattr(self, f"reg_{p}"), reg) for p in ("bu", "bi", "pu", "qi"))
        return rates, regs

    # --- training ------------------------------------------------------------------------
    def _fit(
        self,
        train: Interactions,
        valid: Interactions | None,
        gen: np.random.Generator,
        *,
        show_progress: bool,
        callback: Callback | None,
    ) -> None:
        users, items, ratings = rating_arrays(train, "SVD")
        self.reg_used_ = auto_reg(len(users), 0.1) if self.reg == "auto" else float(self.reg)
        valid_arrays = None
        if valid is not None and len(valid):
            valid_arrays = rating_arrays(valid, "SVD (validation data)")
        shape = (train.n_users, train.n_items)
        scale = (float(self.rating_scale_[0]), float(self.rating_scale_[1]))

        def train_on(
            rows: np.ndarray | None, hold: np.ndarray | None, epochs: int, is_refit: bool
        ) -> tuple[tuple[float, np.ndarray, np.ndarray], TrainLog]:
            if rows is None:
                arrays = (users, items, ratings)
                check = valid_arrays if not is_refit else None
            else:
                assert hold is not None
                arrays = (users[rows], items[rows], ratings[rows])
                check = (users[hold], items[hold], ratings[hold])
            return self._train(
                *arrays, shape, gen, epochs, check, scale,
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
        mu, up, ip = again if again is not None else first
        k = int(self.factors)
        self.global_mean_ = mu
        self.user_factors_ = np.ascontiguousarray(up[:, :k])
        self.item_factors_ = np.ascontiguousarray(ip[:, :k])
        self.user_bias_ = np.ascontiguousarray(up[:, k])
        self.item_bias_ = np.ascontiguousarray(ip[:, k])
        self.history_ = {
            "train_loss": log.history.get("train_loss", []),
            "valid_rmse": log.history.get("valid_rmse", []),
        }
        self.epochs_ = log.best_epoch if log.best_epoch > 0 else log.epochs_run

    def _train(
        self,
        users: np.ndarray,
        items: np.ndarray,
        ratings: np.ndarray,
        shape: tuple[int, int],
        gen: np.random.Generator,
        epochs: int,
        valid: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
        scale: tuple[float, float],
        *,
        show_progress: bool,
        callback: Callback | None,
    ) -> tuple[tuple[float, np.ndarray, np.ndarray], TrainLog]:
        """Initialise and train on one set of ratings; return ``((mu, up, ip), log)``."""
        k = int(self.factors)
        n_users, n_items = shape
        biased = bool(self.biased)
        mu = float(ratings.astype(np.float64).mean()) if biased and len(ratings) else 0.0
        # Surprise's initialisation: factors ~ normal(init_mean, init_std), biases 0
        up = np.zeros((n_users, k + 1), dtype=np.float32)
        ip = np.zeros((n_items, k + 1), dtype=np.float32)
        mean, std = float(self.init_mean), float(self.init_std)
        up[:, :k] = gen.normal(mean, std, (n_users, k))
        ip[:, :k] = gen.normal(mean, std, (n_items, k))
        n = len(users)
        if self.order == "user":
            order = np.argsort(users, kind="stable").astype(np.int32)
        else:
            order = np.arange(n, dtype=np.int32)
        rates, regs = self._rates()
        decay = float(self.learning_rate_decay)
        parallel = bool(self.parallel)
        shuffle = self.order == "shuffle"

        reg_bu, reg_bi, reg_pu, reg_qi = regs

        def step(epoch: int) -> float:
            if shuffle:
                shuffled_order(order, seed_from(gen))
            lr_bu, lr_bi, lr_pu, lr_qi = (r * decay ** (epoch - 1) for r in rates)
            if parallel:
                return float(
                    sgd_epoch_hogwild(
                        users, items, ratings, order, mu, lr_bu, lr_bi, lr_pu, lr_qi,
                        reg_bu, reg_bi, reg_pu, reg_qi, biased, up, ip, _HOGWILD_BLOCK,
                    )
                )  # fmt: skip
            return float(
                sgd_epoch(
                    users, items, ratings, order, mu, lr_bu, lr_bi, lr_pu, lr_qi,
                    reg_bu, reg_bi, reg_pu, reg_qi, biased, up, ip,
                )
            )  # fmt: skip

        validate = None
        if valid is not None:
            validate = validation_rmse(
                lambda u, i, out: predict_pairs(u, i, mu, up, ip, out), valid, scale
            )
        trainer: EpochTrainer[tuple[np.ndarray, np.ndarray]] = EpochTrainer(
            "SVD",
            epochs=epochs,
            patience=int(self.patience),
            tol=float(self.tol),
            mode="min",
            metric="valid_rmse",
            loss_ceiling=loss_ceiling(ratings),
            hint="lower learning_rate or raise reg",
            show_progress=show_progress,
            callback=callback,
        )
        log, best = trainer.run(step, validate, lambda: (up.copy(), ip.copy()))
        if best is not None:
            return (mu, best[0], best[1]), log
        return (mu, up, ip), log

    # --- scoring -------------------------------------------------------------------------
    def _packed(self) -> tuple[np.ndarray, np.ndarray]:
        def pack() -> tuple[np.ndarray, np.ndarray]:
            up = np.column_stack([self.user_factors_, self.user_bias_])
            ip = np.column_stack([self.item_factors_, self.item_bias_])
            return np.ascontiguousarray(up, np.float32), np.ascontiguousarray(ip, np.float32)

        return self._cached("packed", pack)

    def _predict(self, users: IndexArray, items: IndexArray) -> ScoreArray:
        up, ip = self._packed()
        out = np.empty(len(users), dtype=np.float32)
        predict_pairs(
            np.ascontiguousarray(users, np.int32),
            np.ascontiguousarray(items, np.int32),
            float(self.global_mean_),
            up,
            ip,
            out,
        )
        return out

    def _user_vectors(self, users: IndexArray) -> np.ndarray:
        """``[p_u, mu + b_u, 1]``: its dot product with ``[q_i, 1, b_i]`` is the prediction."""
        out = np.empty((len(users), self.user_factors_.shape[1] + 2), dtype=np.float32)
        out[:, :-2] = self.user_factors_[users]
        out[:, -2] = self.user_bias_[users] + np.float32(self.global_mean_)
        out[:, -1] = 1.0
        return out

    def _item_vectors(self) -> np.ndarray:
        out = np.empty((self.item_factors_.shape[0], self.item_factors_.shape[1] + 2), np.float32)
        out[:, :-2] = self.item_factors_
        out[:, -2] = 1.0
        out[:, -1] = self.item_bias_
        return out

    def _fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        """Exact ridge fold-in: ``p_u, b_u`` where the SGD steps on the history's ratings
        sum to zero with the items fixed (see :func:`ridge_fold_in`)."""
        _, regs = self._rates()
        sol = ridge_fold_in(
            history, self.item_factors_, self.item_bias_.astype(np.float64),
            float(self.global_mean_), regs[2], regs[0], bool(self.biased),
        )  # fmt: skip
        k = self.item_factors_.shape[1]
        out = np.empty((history.shape[0], k + 2), dtype=np.float32)
        out[:, :k] = sol[:, :k]
        out[:, -2] = float(self.global_mean_) + sol[:, k]
        out[:, -1] = 1.0
        return out

    def _similarity_vectors(self) -> np.ndarray:
        return self.item_factors_
