"""WARP: weighted approximate-rank pairwise loss (Weston et al. 2011), as LightFM trains it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp

from .._config import seed_from
from ..kernels.warp import _SAMPLES, warp_epoch, warp_fold_in
from ._factor_ranker import Factors, Step, _FactorRanker
from ._params import Range, Search
from .base import register

__all__ = ["WARP"]

_log = logging.getLogger(__name__)


@register("warp")
class WARP(_FactorRanker):
    """Matrix factorisation for top-of-the-list ranking with the WARP (or k-OS) loss.

    Weston, Bengio & Usunier, "WSABIE: Scaling Up To Large Vocabulary Image Annotation"
    (IJCAI 2011); k-OS: Weston, Yee & Weiss, "Learning to Rank Recommendations with the
    k-Order Statistic Loss" (RecSys 2013); the sampling, the rank weight and the AdaGrad
    schedule follow LightFM (Kula 2015). Scores are ``s_ui = x_u . y_i + b_i``. An epoch
    visits every observed ``(u, i)`` once in a random order; for each, items are drawn
    uniformly until one the user does not have violates the margin (``s_uj > s_ui - 1``)
    or ``max_sampled`` draws are spent. With ``N`` draws the rank of ``i`` is estimated as
    ``(n_items - 1) // N`` and one step descends ``L (1 - s_ui + s_uj)`` plus L2 penalties,
    ``L = min(ln(rank), 10)``: a positive already near the top (many draws before a
    violation) gets a small update, a buried one a large update. With ``loss="k-os"`` the
    positive is the ``k``-th best scored of ``n`` items drawn from the user's history
    (LightFM's k-OS WARP), which concentrates on the items a user ranks worst. The steps run
    Hogwild-parallel in blocks with their own random streams (:mod:`lensrec.kernels.warp`).
    Only which items a user has counts: values (ratings, counts) are ignored.

    {fold_in}

    Parameters
    ----------
    {factors}
    learning_rate : float, default 0.02
        Step size: AdaGrad's base rate, or the SGD step. LightFM's default is 0.05; on
        validation sets carved from the training part of ml-100k (ratings >= 4; each
        user's last 3 training positives, by timestamp and by file order) 0.05 overfits
        after 10-30 epochs while 0.02 keeps improving to 60-100 (NDCG@10 +5-10%), and
        ``epochs=100`` at 0.02 also learns small catalogues (the planted known-answer
        data), where 50 epochs do not.
    learning_schedule : {"adagrad", "sgd"}, default "adagrad"
        ``"adagrad"`` divides each parameter's gradient by the root of its accumulated
        squared gradients (accumulators start at 1, as in LightFM): the rank weight's scale
        is divided out per coordinate and frequent rows take smaller steps. ``"sgd"``:
        constant steps.
    reg : float, default 0.0
        L2 weight on the factors of each update (LightFM's ``item_alpha`` / ``user_alpha``
        are 0 by default too; early stopping and ``max_sampled`` regularise).
    reg_bias : float, default 0.0
        L2 weight on the item biases.
    max_sampled : int, default 30
        Negative draws per visit at most (LightFM: 10). More draws find violations near the
        top of the list, which is what top-k metrics reward, at more cost per epoch late in
        training (on ml-100k validation 30 and 100 tied, both ahead of 10).
    loss : {"warp", "k-os"}, default "warp"
    k : int, default 5
        k-OS only: the positive is the ``k``-th best of ``n`` drawn positives.
    n : int, default 10
        k-OS only: positives drawn per visit.
    epochs : int, default 100
        Passes over the interactions; fewer when early stopping ends training.
    patience : int, default 5
        With a ``valid`` set passed to ``fit``: stop after this many epochs without a better
        validation NDCG@10 and keep the best epoch's parameters.
    {fold_in_epochs}
    {random_state}

    Attributes
    ----------
    history_ : dict of lists of float
        Per epoch: ``"train_loss"`` (the sampled WARP loss per visit, before each step),
        ``"share_updated"`` (visits that found a violating negative), ``"mean_sampled"``
        (draws per visit: grows as the model learns), ``"valid_ndcg@10"`` when validating,
        and ``"seconds"``.
    {attributes}

    Examples
    --------
    k-OS WARP on planted groups; the draws per visit grow as violations get rarer, and a new
    user who has three items of group 0 is recommended more of group 0:

    >>> from lensrec.data.planted import make_blocks
    >>> data, _, item_group = make_blocks(random_state=0)
    >>> model = WARP(factors=8, loss="k-os", random_state=0).fit(data)
    >>> sampled = model.history_["mean_sampled"]
    >>> bool(sampled[-1] > 5 * sampled[0])
    True
    >>> ids, _ = model.recommend_for_history([0, 1, 2], k=3)
    >>> item_group[ids[0]].tolist()
    [0, 0, 0]
    """

    _hint: ClassVar[str] = "lower learning_rate (or use learning_schedule='adagrad')"
    _samples: ClassVar[int] = _SAMPLES
    _warm_up_variants: ClassVar[tuple[Mapping[str, Any], ...]] = tuple(
        {"learning_schedule": schedule, "loss": loss}
        for schedule in ("adagrad", "sgd")
        for loss in ("warp", "k-os")
    )

    learning_rate: Annotated[float, Range(0.0, low_open=True), Search(0.005, 0.3, log=True)] = 0.02
    learning_schedule: Literal["adagrad", "sgd"] = "adagrad"
    reg: Annotated[float, Range(0.0), Search(1e-6, 1e-2, log=True)] = 0.0
    reg_bias: Annotated[float, Range(0.0)] = 0.0
    max_sampled: Annotated[int, Range(1), Search(5, 200, log=True)] = 30
    loss: Literal["warp", "k-os"] = "warp"
    k: Annotated[int, Range(1)] = 5
    n: Annotated[int, Range(1)] = 10
    epochs: Annotated[int, Range(1), Search(5, 200, log=True)] = 100
    patience: Annotated[int, Range(1)] = 5

    def _epoch_step(
        self, x: sp.csr_matrix, p: Factors, gen: np.random.Generator
    ) -> tuple[Step, tuple[np.ndarray, ...]]:
        n_users, n_items = x.shape
        f = p.U.shape[1]
        adagrad = self.learning_schedule == "adagrad"
        rows = (n_users, n_items) if adagrad else (0, 0)
        accums = (
            np.ones((rows[0], f), np.float32),
            np.ones((rows[1], f), np.float32),
            np.ones(rows[1], np.float32),
        )
        kos_k, kos_n = (int(self.k), int(self.n)) if self.loss == "k-os" else (0, 0)
        lr, reg, reg_bias = float(self.learning_rate), float(self.reg), float(self.reg_bias)
        max_sampled = int(self.max_sampled)

        def step(epoch: int) -> dict[str, float]:
            loss, updated, sampled = warp_epoch(
                x.indptr, x.indices, *p, *accums, lr, reg, reg_bias, max_sampled, adagrad,
                kos_k, kos_n, seed_from(gen),
            )  # fmt: skip
            return {
                "train_loss": float(loss),
                "share_updated": float(updated),
                "mean_sampled": float(sampled),
            }

        return step, accums

    def _fold_in_kernel(self) -> tuple[Callable[..., None], tuple[Any, ...]]:
        return warp_fold_in, (int(self.max_sampled), self.learning_schedule == "adagrad")
