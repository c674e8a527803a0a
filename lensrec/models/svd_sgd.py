"""SVD: Funk's biased matrix factorisation by per-rating SGD, with Surprise's ``SVD`` semantics."""

from __future__ import annotations

import logging
from typing import Annotated, ClassVar, Literal

import numpy as np
import scipy.sparse as sp

from ..kernels import readonly
from ..kernels.svd import predict_pairs, sgd_epoch, sgd_epoch_hogwild
from ..types import IndexArray, RandomState, ScoreArray
from ._params import Range, Search
from ._sgd import (
    AUTO_REG_EXPONENT,
    AUTO_REG_FLOOR,
    BiasedSGDModel,
    EpochPlan,
    auto_reg,
    loss_ceiling,
    rating_arrays,
    ridge_fold_in,
)
from .base import Capabilities, register

__all__ = [
    "SVD",
    # shared with SVD++, defined in ._sgd
    "AUTO_REG_EXPONENT",
    "AUTO_REG_FLOOR",
    "auto_reg",
    "loss_ceiling",
    "rating_arrays",
    "ridge_fold_in",
]

_log = logging.getLogger(__name__)

#: ratings per Hogwild block (each block runs serially on one thread)
_HOGWILD_BLOCK = 4096


@register("svd")
class SVD(BiasedSGDModel):
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
    factors: Annotated[int, Range(1), Search(8, 256, log=True)] = 100
    epochs: Annotated[int, Range(1), Search(10, 100, log=True)] = 40
    learning_rate: Annotated[float, Range(0.0, low_open=True), Search(0.001, 0.05, log=True)] = 0.01
    reg: Annotated[float | Literal["auto"], Range(0.0), Search(0.005, 0.3, log=True)] = "auto"
    lr_bu: Annotated[float | None, Range(0.0)] = None
    lr_bi: Annotated[float | None, Range(0.0)] = None
    lr_pu: Annotated[float | None, Range(0.0)] = None
    lr_qi: Annotated[float | None, Range(0.0)] = None
    reg_bu: Annotated[float | None, Range(0.0)] = None
    reg_bi: Annotated[float | None, Range(0.0)] = None
    reg_pu: Annotated[float | None, Range(0.0)] = None
    reg_qi: Annotated[float | None, Range(0.0)] = None
    init_mean: float = 0.0
    init_std: Annotated[float, Range(0.0)] = 0.1
    # Literal[True, False] rather than bool: its message lists the values in this order
    biased: Literal[True, False] = True
    learning_rate_decay: Annotated[float, Range(0.0, 1.0, low_open=True), Search(0.8, 1.0)] = 1.0
    order: Literal["shuffle", "user", "file"] = "shuffle"
    parallel: bool = False
    valid_fraction: Annotated[float, Range(0.0, 0.5, high_open=True)] = 0.0
    patience: Annotated[int, Range(1)] = 5
    tol: Annotated[float, Range(0.0)] = 1e-4
    random_state: RandomState = None

    @classmethod
    def warm_up(cls) -> None:
        """Compile the serial and Hogwild epochs and the predictions on tiny data."""
        from ..data.planted import make_ratings

        data = make_ratings(n_users=8, n_items=6, density=0.8, random_state=0)
        for parallel in (False, True):
            # a hold-out, validation and the refit: every call site (all read-only rows)
            model = cls(factors=2, epochs=2, parallel=parallel, valid_fraction=0.25)
            model.fit(data).predict([0], [0])

    # --- training ------------------------------------------------------------------------
    def _is_biased(self) -> bool:
        return bool(self.biased)

    def _epoch_plan(
        self,
        ratings: tuple[np.ndarray, np.ndarray, np.ndarray],
        shape: tuple[int, int],
        mu: float,
        params: tuple[np.ndarray, ...],
    ) -> EpochPlan:
        """Rating by rating in ``order`` (serial, or Hogwild over blocks of the order)."""
        users, items, values = ratings
        up, ip = params
        if self.order == "user":
            order = np.argsort(users, kind="stable").astype(np.int32)
        else:
            order = np.arange(len(users), dtype=np.int32)
        rates, (reg_bu, reg_bi, reg_pu, reg_qi) = self._rates()
        biased = self._is_biased()
        parallel = bool(self.parallel)

        def run(scale: float) -> float:
            lr_bu, lr_bi, lr_pu, lr_qi = (r * scale for r in rates)
            if parallel:
                return float(
                    sgd_epoch_hogwild(
                        users, items, values, order, mu, lr_bu, lr_bi, lr_pu, lr_qi,
                        reg_bu, reg_bi, reg_pu, reg_qi, biased, up, ip, _HOGWILD_BLOCK,
                    )
                )  # fmt: skip
            return float(
                sgd_epoch(
                    users, items, values, order, mu, lr_bu, lr_bi, lr_pu, lr_qi,
                    reg_bu, reg_bi, reg_pu, reg_qi, biased, up, ip,
                )
            )  # fmt: skip

        def predict(u: np.ndarray, i: np.ndarray, out: np.ndarray) -> None:
            predict_pairs(readonly(u), readonly(i), mu, up, ip, out)

        return EpochPlan(order, run, predict)

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
            readonly(np.ascontiguousarray(users, np.int32)),
            readonly(np.ascontiguousarray(items, np.int32)),
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

    def _fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        """Exact ridge fold-in: ``p_u, b_u`` where the SGD steps on the history's ratings
        sum to zero with the items fixed (see :func:`ridge_fold_in`)."""
        sol = self._ridge_fold_in(history)
        k = self.item_factors_.shape[1]
        out = np.empty((history.shape[0], k + 2), dtype=np.float32)
        out[:, :k] = sol[:, :k]
        out[:, -2] = float(self.global_mean_) + sol[:, k]
        out[:, -1] = 1.0
        return out
