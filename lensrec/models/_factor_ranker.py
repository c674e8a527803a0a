"""What BPR and WARP share: scores ``x_u . y_i + b_i``, the epoch loop with early stopping on
validation NDCG@10, and fold-in by a few passes of the model's own steps.

A subclass gives two things: :meth:`_FactorRanker._epoch_step` (one Hogwild epoch of its
kernel over the training matrix) and :meth:`_FactorRanker._fold_in_step` (its fold-in kernel
for one history row). Everything else — initialisation, the trainer, the learned attributes,
packing the vectors, fold-in row by row — is written here once.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import scipy.sparse as sp

from .._config import numba_threads
from ..data.interactions import Interactions
from ..kernels import csr_parts
from ..types import IndexArray
from ._trainer import EpochTrainer
from ._validation import VALID_K, RankingValidation
from .base import Callback, Capabilities, Recommender

__all__ = ["FOLD_IN_SEED", "fold_in_rows", "rank_cap"]

_log = logging.getLogger(__name__)

#: seed of the fold-in kernels' streams: fold-in is a function of the history alone
FOLD_IN_SEED = 12345

Step = Callable[[int], dict[str, float]]


def rank_cap(factors: int, n_users: int, n_items: int) -> int:
    """``factors``, at most a tenth of the matrix's smaller side (and at least 1)."""
    return max(1, min(factors, min(n_users, n_items) // 10))


def fold_in_rows(
    history: sp.csr_matrix, f: int, kernel: Callable[[np.ndarray, np.ndarray, np.ndarray], None]
) -> np.ndarray:
    """Zero user vectors ``[n, f]`` fitted row by row by a fold-in kernel.

    The kernels draw from one random stream per block of rows, so a row's result would
    depend on the rows batched with it; one call per row (each the first row of its own
    block, seeded alike) makes a user's fold-in a function of their history alone, as
    ``recommend`` promises (a batch row equals the single-user answer).
    """
    h = sp.csr_matrix(history)
    h.sort_indices()
    indptr, indices, _ = csr_parts(h, None)
    X = np.zeros((h.shape[0], f), dtype=np.float32)
    bounds = np.zeros(2, dtype=np.int64)
    with numba_threads(1):  # one block per call: nothing to share
        for r in range(h.shape[0]):
            lo, hi = int(indptr[r]), int(indptr[r + 1])
            if hi > lo:
                bounds[1] = hi - lo
                kernel(bounds, indices[lo:hi], X[r : r + 1])
    return X


class _FactorRanker(Recommender):
    """Scores ``x_u . y_i + b_i`` from ``user_factors_``, ``item_factors_``, ``item_bias_``,
    trained epoch by epoch by a sampling kernel (BPR, WARP).

    With a ``valid`` set, ``fit`` early-stops on its NDCG@10 (``patience``) and keeps the
    best epoch; runs (``lensrec evaluate``, ``benchmark``, ``train``, tuning) carve that set
    from the training part by the split's rule and then refit on the whole training part for
    the chosen number of epochs (``refit_after_validation``).
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        folds_in=True, epoch_trained=True, uses_validation=True
    )
    #: runs refit on all training rows for the epochs chosen on the carved validation set
    refit_after_validation: ClassVar[bool] = True
    #: owner name and divergence hint for the trainer
    _hint: ClassVar[str] = "lower learning_rate or raise reg"
    #: the kernels' block size (triples per random stream): caps useful threads
    _samples: ClassVar[int] = 1 << 14
    if TYPE_CHECKING:  # declared by the subclasses (as fields) and by fit
        factors: int
        epochs: int
        patience: int
        user_factors_: np.ndarray = dataclasses.field(init=False)
        item_factors_: np.ndarray = dataclasses.field(init=False)
        item_bias_: np.ndarray = dataclasses.field(init=False)

    # --- scoring -------------------------------------------------------------------------
    def _user_vectors(self, users: IndexArray) -> np.ndarray:
        return self._with_one(self.user_factors_[users])

    def _item_vectors(self) -> np.ndarray:
        return np.concatenate([self.item_factors_, self.item_bias_[:, None]], axis=1)

    def _similarity_vectors(self) -> np.ndarray:
        # the bias is popularity, not likeness
        return self.item_factors_

    @staticmethod
    def _with_one(X: np.ndarray) -> np.ndarray:
        out = np.empty((X.shape[0], X.shape[1] + 1), dtype=np.float32)
        out[:, :-1] = X
        out[:, -1] = 1.0
        return out

    # --- training ------------------------------------------------------------------------
    def _epoch_step(
        self,
        x: sp.csr_matrix,
        U: np.ndarray,
        V: np.ndarray,
        b: np.ndarray,
        gen: np.random.Generator,
    ) -> tuple[Step, tuple[np.ndarray, ...]]:
        """``(step, extra)``: ``step(epoch)`` runs one epoch in place on ``U, V, b`` (and the
        ``extra`` arrays it owns, e.g. AdaGrad accumulators, snapshotted with them) and
        returns its metrics."""
        raise NotImplementedError

    def _fold_in_step(
        self, V: np.ndarray, b: np.ndarray
    ) -> Callable[[np.ndarray, np.ndarray, np.ndarray], None]:
        """``one(bounds, indices, X)``: the fold-in kernel on one history row."""
        raise NotImplementedError

    def _init_factors(
        self, gen: np.random.Generator, x: sp.csr_matrix
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Normal factors with standard deviation ``0.1 / sqrt(f)``, zero biases, zero
        vectors for users without training rows (never updated: they rank by the item
        biases); sets ``factors_`` (``factors`` capped at a tenth of the smaller side)."""
        n_users, n_items = x.shape
        f = rank_cap(int(self.factors), n_users, n_items)
        if f < int(self.factors):
            _log.info(
                "%s: factors=%d capped at %d, a tenth of the %d x %d matrix's smaller side",
                type(self).__name__, self.factors, f, n_users, n_items,
            )  # fmt: skip
        self.factors_ = f
        std = np.float32(0.1 / np.sqrt(f))
        U = gen.standard_normal((n_users, f), dtype=np.float32) * std
        V = gen.standard_normal((n_items, f), dtype=np.float32) * std
        U[np.diff(x.indptr) == 0] = 0.0
        return U, V, np.zeros(n_items, dtype=np.float32)

    def _fit(
        self,
        train: Interactions,
        valid: Interactions | None,
        gen: np.random.Generator,
        *,
        show_progress: bool,
        callback: Callback | None,
    ) -> None:
        x = self.user_items_
        U, V, b = self._init_factors(gen, x)
        step, extra = self._epoch_step(x, U, V, b, gen)
        blocks = -(-x.nnz // self._samples)

        def capped(epoch: int) -> dict[str, float]:
            # fewer blocks than threads: the extra threads would only add wake-up costs
            with numba_threads(blocks):
                return step(epoch)

        validate = None
        if valid is not None and len(valid):
            check = RankingValidation(x, valid)
            if len(check):

                def validate() -> float:
                    return check(lambda users: U[users] @ V.T + b)

        params = (U, V, b, *extra)
        trainer: EpochTrainer[tuple[np.ndarray, ...]] = EpochTrainer(
            type(self).__name__,
            epochs=int(self.epochs),
            patience=int(self.patience),
            mode="max",
            metric=f"valid_ndcg@{VALID_K}",
            hint=self._hint,
            show_progress=show_progress,
            callback=callback,
        )
        log, best = trainer.run(capped, validate, lambda: tuple(p.copy() for p in params))
        U, V, b = (best if best is not None else params)[:3]
        self.user_factors_ = U
        self.item_factors_ = V
        self.item_bias_ = b
        self.history_ = {key: list(v) for key, v in log.history.items()}
        self.best_epoch_ = log.best_epoch if log.best_epoch > 0 else log.epochs_run

    def _fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        """``fold_in_epochs`` passes of the model's own steps on a zero user vector, items
        fixed."""
        V = np.ascontiguousarray(self.item_factors_)
        b = np.ascontiguousarray(self.item_bias_)
        return self._with_one(fold_in_rows(history, V.shape[1], self._fold_in_step(V, b)))
