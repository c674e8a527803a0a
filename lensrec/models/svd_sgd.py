"""SVD: Funk's biased matrix factorisation by per-rating SGD, with Surprise's ``SVD`` semantics."""

from __future__ import annotations

import logging
from typing import ClassVar, Literal

import numpy as np
import scipy.sparse as sp

from ..kernels.svd import predict_pairs, sgd_epoch, sgd_epoch_hogwild
from ..types import IndexArray
from ._sgd import (
    AUTO_REG_EXPONENT,
    AUTO_REG_FLOOR,
    BiasedSGDModel,
    EpochLayout,
    RatingArrays,
    SGDKernels,
    auto_reg,
    loss_ceiling,
    rating_arrays,
    ridge_fold_in,
)
from .base import register

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

    The parameters SVD shares with SVD++ are documented on
    :class:`~lensrec.models._sgd.BiasedSGDModel`, and listed here with SVD's own.

    Parameters
    ----------
    biased : bool, default True
        Learn ``mu``, ``b_u`` and ``b_i``; False is Funk's plain ``q_i . p_u`` (``mu = 0``).
    order : {"shuffle", "user", "file"}, default "shuffle"
        The order ratings are visited in each epoch: a new random permutation every epoch;
        grouped by user (user index order, each user's ratings in the training data's row
        order: Surprise's order); or the training data's row order.
    parallel : bool, default False
        Hogwild epochs over blocks of the order on all threads (``LENSREC_THREADS``); with
        one thread, the serial model bit for bit, with more, not repeatable. On 2 cores it
        was slower than serial on ml-100k and at 1M ratings (small, hot rows the threads
        contend for) and 1.6x faster at 10M (4.5 -> 2.8 s per epoch, the same RMSE).

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

    Examples
    --------
    >>> from lensrec.testing import make_ratings
    >>> model = SVD(factors=8, epochs=5, random_state=0).fit(make_ratings())
    >>> model.predict([0, 1], [0, 1]).shape
    (2,)
    """

    _PLACED_AFTER: ClassVar[dict[str, str]] = {"biased": "init_std"}
    _kernels: ClassVar[SGDKernels] = SGDKernels(
        sgd_epoch, sgd_epoch_hogwild, _HOGWILD_BLOCK, predict_pairs
    )

    # Literal[True, False] rather than bool: its message lists the values in this order
    biased: Literal[True, False] = True
    order: Literal["shuffle", "user", "file"] = "shuffle"

    # --- training ------------------------------------------------------------------------
    def _is_biased(self) -> bool:
        return bool(self.biased)

    def _layout(
        self, ratings: RatingArrays, shape: tuple[int, int], params: tuple[np.ndarray, ...]
    ) -> EpochLayout:
        """Rating by rating in ``order``: ``sgd_epoch(ratings, order, biased, ...)``."""
        users = ratings[0]
        if self.order == "user":
            order = np.argsort(users, kind="stable").astype(np.int32)
        else:
            order = np.arange(len(users), dtype=np.int32)
        return EpochLayout((ratings, order, self._is_biased()), order, lambda: params)

    # --- scoring -------------------------------------------------------------------------
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
