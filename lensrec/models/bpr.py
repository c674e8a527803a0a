"""BPR: Bayesian personalised ranking by Hogwild SGD on sampled triples (Rendle et al. 2009)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from .._config import seed_from
from ..kernels.bpr import _SAMPLES, bpr_epoch, bpr_fold_in
from ._factor_ranker import Factors, Step, _FactorRanker
from ._params import Range, Search
from .base import register

__all__ = ["BPR"]

_log = logging.getLogger(__name__)


@register("bpr")
class BPR(_FactorRanker):
    """Bayesian personalised ranking: pairwise matrix factorisation by SGD.

    Rendle, Freudenthaler, Gantner & Schmidt-Thieme, "BPR: Bayesian Personalized Ranking
    from Implicit Feedback" (UAI 2009). Scores are ``s_ui = x_u . y_i + b_i``; LearnBPR
    draws an observed ``(u, i)`` uniformly, an item ``j`` the user does not have (uniformly,
    redrawn while it is a positive, checked by binary search in the user's sorted row), and
    takes one SGD step on ``ln sigmoid(s_ui - s_uj)`` minus L2 penalties. An epoch is as
    many steps as there are interactions, run Hogwild-parallel (Niu et al., NIPS 2011) in
    blocks with their own random streams (:mod:`lensrec.kernels.bpr`). Only which items a
    user has counts: interaction values (ratings, counts) are ignored, so filter positives
    first (``--min-rating 4``).

    {fold_in}

    Parameters
    ----------
    {factors}
    learning_rate : float, default 0.05
        SGD step size (constant).
    reg : float, default 0.01
        L2 weight on the user and item factors of each triple. ``learning_rate``, ``reg``
        and ``epochs`` were chosen on validation sets carved from the training part of
        ml-100k (ratings >= 4; each user's last 3 training positives, by timestamp and by
        file order): 0.01 beat 0.002 and 0.0005 at every step size; more epochs still
        helped a little at 300-600 (+5% NDCG@10), at 3-6 times the cost.
    reg_bias : float, default 0.0
        L2 weight on the item biases.
    epochs : int, default 100
        Passes (``nnz`` triples each); fewer when early stopping ends training.
    patience : int, default 20
        With a ``valid`` set passed to ``fit``: stop after this many epochs without a better
        validation NDCG@10 and keep the best epoch's parameters. Without one, all ``epochs``
        run. BPR's validation NDCG stays flat for its first 10 or so epochs (it learns
        popularity first) and is noisy later: at 5, runs stopped at epoch 6 and kept epoch 1
        (ml-100k last:3 NDCG@10 0.054 instead of 0.086).
    max_tries : int, default 20
        Negative draws per triple before the triple is skipped (only users who have almost
        the whole catalogue run out).
    {fold_in_epochs}
    {random_state}

    Attributes
    ----------
    history_ : dict of lists of float
        Per epoch: ``"train_loss"`` (mean ``-ln sigmoid(s_ui - s_uj)`` of the sampled
        triples, before each step), ``"train_auc"`` (their share ranked right),
        ``"valid_ndcg@10"`` when validating, and ``"seconds"``.
    {attributes}

    Examples
    --------
    >>> from lensrec.data.planted import make_blocks
    >>> data, _, item_group = make_blocks(random_state=0)
    >>> model = BPR(factors=8, random_state=0).fit(data)
    >>> ids, _ = model.recommend([0], k=3)
    >>> bool((item_group[ids[0]] == 0).all())
    True
    """

    _samples: ClassVar[int] = _SAMPLES

    learning_rate: Annotated[float, Range(0.0, low_open=True), Search(0.005, 0.2, log=True)] = 0.05
    reg: Annotated[float, Range(0.0), Search(1e-4, 0.1, log=True)] = 0.01
    reg_bias: Annotated[float, Range(0.0), Search(1e-4, 0.1, log=True)] = 0.0
    epochs: Annotated[int, Range(1), Search(10, 300, log=True)] = 100
    patience: Annotated[int, Range(1)] = 20
    max_tries: Annotated[int, Range(1)] = 20

    def _epoch_step(
        self, x: sp.csr_matrix, p: Factors, gen: np.random.Generator
    ) -> tuple[Step, tuple[np.ndarray, ...]]:
        lr, reg, reg_bias = float(self.learning_rate), float(self.reg), float(self.reg_bias)
        tries = int(self.max_tries)

        def step(epoch: int) -> dict[str, float]:
            loss, auc, skipped = bpr_epoch(
                x.indptr, x.indices, *p, x.nnz, lr, reg, reg_bias, seed_from(gen), tries
            )
            if skipped:
                _log.debug("BPR epoch %d: %d triples without a negative", epoch, skipped)
            return {"train_loss": float(loss), "train_auc": float(auc)}

        return step, ()

    def _fold_in_kernel(self) -> tuple[Callable[..., None], tuple[Any, ...]]:
        return bpr_fold_in, (int(self.max_tries),)
