"""BPR: Bayesian personalised ranking by Hogwild SGD on sampled triples (Rendle et al. 2009)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numba
import numpy as np
import scipy.sparse as sp

from .._config import seed_from
from ..data.interactions import Interactions
from ..kernels.bpr import _SAMPLES, bpr_epoch, bpr_fold_in
from ..types import IndexArray, RandomState
from ._params import Interval
from ._trainer import EpochTrainer
from .als import VALID_K, RankingValidation, _rank
from .base import Callback, Capabilities, Recommender, register

__all__ = ["BPR"]

_log = logging.getLogger(__name__)

#: seed of the fold-in kernels' streams: fold-in is a function of the history alone
_FOLD_IN_SEED = 12345


def _fold_in_rows(
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
    indices = h.indices.astype(np.int32)
    X = np.zeros((h.shape[0], f), dtype=np.float32)
    bounds = np.zeros(2, dtype=np.int64)
    with at_most_threads(1):  # one block per call: nothing to share
        for r in range(h.shape[0]):
            lo, hi = int(h.indptr[r]), int(h.indptr[r + 1])
            if hi > lo:
                bounds[1] = hi - lo
                kernel(bounds, indices[lo:hi], X[r : r + 1])
    return X


@contextlib.contextmanager
def at_most_threads(n: int) -> Iterator[None]:
    """numba's thread count capped at ``n`` (>= 1) inside the block.

    The epoch kernels split work into blocks of ``_SAMPLES`` draws, each with its own random
    stream; with fewer blocks than threads the extra threads only add the cost of waking
    the pool (milliseconds per call on a busy machine), and the result is the same.
    """
    old = numba.get_num_threads()
    numba.set_num_threads(max(1, min(old, int(n))))
    try:
        yield
    finally:
        numba.set_num_threads(old)


class _BiasedFactorRanker(Recommender):
    """Scores ``x_u . y_i + b_i`` from ``user_factors_``, ``item_factors_``, ``item_bias_``.

    Shared by BPR and WARP: the packed vectors, similar items by cosine of the item factors
    (the bias is popularity, not likeness), and the epoch loop with optional early stopping
    on validation NDCG@10.
    """

    capabilities: ClassVar[Capabilities] = Capabilities(folds_in=True, epoch_trained=True)
    factors: int
    epochs: int
    patience: int
    user_factors_: np.ndarray
    item_factors_: np.ndarray
    item_bias_: np.ndarray

    def _user_vectors(self, users: IndexArray) -> np.ndarray:
        out = np.empty((len(users), self.user_factors_.shape[1] + 1), dtype=np.float32)
        out[:, :-1] = self.user_factors_[users]
        out[:, -1] = 1.0
        return out

    def _item_vectors(self) -> np.ndarray:
        return np.concatenate([self.item_factors_, self.item_bias_[:, None]], axis=1)

    def _similarity_vectors(self) -> np.ndarray:
        return self.item_factors_

    def _fold_in_vectors(self, X: np.ndarray) -> np.ndarray:
        out = np.empty((X.shape[0], X.shape[1] + 1), dtype=np.float32)
        out[:, :-1] = X
        out[:, -1] = 1.0
        return out

    def _init_factors(
        self, gen: np.random.Generator, x: sp.csr_matrix
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Normal factors with standard deviation ``0.1 / sqrt(f)``, zero biases, zero
        vectors for users without training rows (never updated: they rank by the item
        biases); sets ``factors_`` (``factors`` capped at a tenth of the smaller side)."""
        n_users, n_items = x.shape
        f = _rank(int(self.factors), n_users, n_items)
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

    def _run_epochs(
        self,
        owner: str,
        step: Callable[[int], dict[str, float]],
        params: tuple[np.ndarray, ...],
        valid: Interactions | None,
        *,
        hint: str,
        show_progress: bool,
        callback: Callback | None,
    ) -> tuple[tuple[np.ndarray, ...], Any]:
        """Run ``epochs`` epochs of ``step``; with ``valid``, early-stop on NDCG@10."""
        U, V, b = params[:3]
        validate = None
        if valid is not None and len(valid):
            check = RankingValidation(self.user_items_, valid)
            if len(check):

                def validate() -> float:
                    return check(lambda users: U[users] @ V.T + b)

        trainer: EpochTrainer[tuple[np.ndarray, ...]] = EpochTrainer(
            owner,
            epochs=int(self.epochs),
            patience=int(self.patience),
            mode="max",
            metric=f"valid_ndcg@{VALID_K}",
            hint=hint,
            show_progress=show_progress,
            callback=callback,
        )
        log, best = trainer.run(step, validate, lambda: tuple(p.copy() for p in params))
        return (best if best is not None else params), log


@register("bpr")
class BPR(_BiasedFactorRanker):
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

    A user the model never saw is folded in by ``fold_in_epochs`` passes of the same SGD
    steps over their history on a fresh (zero) user vector, the items held fixed.

    Parameters
    ----------
    factors : int, default 64
        Latent dimensions; the rank used (``factors_``) is at most a tenth of
        ``min(n_users, n_items)``, as for :class:`~lensrec.models.als.ALS`.
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
    patience : int, default 5
        With a ``valid`` set passed to ``fit``: stop after this many epochs without a better
        validation NDCG@10 and keep the best epoch's parameters. Without one, all ``epochs``
        run.
    max_tries : int, default 20
        Negative draws per triple before the triple is skipped (only users who have almost
        the whole catalogue run out).
    fold_in_epochs : int, default 30
        Passes over a new user's history when folding them in.
    random_state : None, int or numpy Generator
        Seeds the initialisation and every epoch's streams. With ``LENSREC_THREADS=1`` the
        same seed gives a bit-for-bit identical model; with more threads the Hogwild
        updates interleave differently from run to run.

    Attributes
    ----------
    user_factors_ : float32 [n_users, factors_]
    item_factors_ : float32 [n_items, factors_]
    item_bias_ : float32 [n_items]
    factors_ : int
        The rank used.
    history_ : dict of lists of float
        Per epoch: ``"train_loss"`` (mean ``-ln sigmoid(s_ui - s_uj)`` of the sampled
        triples, before each step), ``"train_auc"`` (their share ranked right),
        ``"valid_ndcg@10"`` when validating, and ``"seconds"``.
    best_epoch_ : int
        Epoch whose parameters were kept (the last one without validation).

    Examples
    --------
    >>> from lensrec.data.planted import make_blocks
    >>> data, _, item_group = make_blocks(random_state=0)
    >>> model = BPR(factors=8, random_state=0).fit(data)
    >>> ids, _ = model.recommend([0], k=3)
    >>> bool((item_group[ids[0]] == 0).all())
    True
    """

    search_space: ClassVar[dict[str, tuple[Any, ...]]] = {
        "factors": ("int", 16, 256, "log"),
        "learning_rate": ("float", 0.005, 0.2, "log"),
        "reg": ("float", 1e-4, 0.1, "log"),
        "reg_bias": ("float", 1e-4, 0.1, "log"),
        "epochs": ("int", 10, 300, "log"),
    }
    _constraints: ClassVar[dict[str, Any]] = {
        "factors": Interval(int, 1),
        "learning_rate": Interval(float, 0.0, low_open=True),
        "reg": Interval(float, 0.0),
        "reg_bias": Interval(float, 0.0),
        "epochs": Interval(int, 1),
        "patience": Interval(int, 1),
        "max_tries": Interval(int, 1),
        "fold_in_epochs": Interval(int, 1),
    }

    def __init__(
        self,
        *,
        factors: int = 64,
        learning_rate: float = 0.05,
        reg: float = 0.01,
        reg_bias: float = 0.0,
        epochs: int = 100,
        patience: int = 5,
        max_tries: int = 20,
        fold_in_epochs: int = 30,
        random_state: RandomState = None,
    ):
        self.factors = factors
        self.learning_rate = learning_rate
        self.reg = reg
        self.reg_bias = reg_bias
        self.epochs = epochs
        self.patience = patience
        self.max_tries = max_tries
        self.fold_in_epochs = fold_in_epochs
        self.random_state = random_state

    @classmethod
    def warm_up(cls) -> None:
        """Compile the epoch and fold-in kernels on tiny data."""
        from ..data.planted import make_blocks

        data = make_blocks(n_groups=2, users_per_group=6, items_per_group=5, random_state=0)[0]
        model = cls(factors=4, epochs=2, random_state=0).fit(data, data)
        model.recommend_for_history([0, 1], k=2)

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
        indptr, indices = x.indptr, x.indices
        U, V, b = self._init_factors(gen, x)
        lr, reg, reg_bias = float(self.learning_rate), float(self.reg), float(self.reg_bias)
        tries = int(self.max_tries)

        blocks = -(-x.nnz // _SAMPLES)

        def step(epoch: int) -> dict[str, float]:
            with at_most_threads(blocks):
                loss, auc, skipped = bpr_epoch(
                    indptr, indices, U, V, b, x.nnz, lr, reg, reg_bias, seed_from(gen), tries
                )
            if skipped:
                _log.debug("BPR epoch %d: %d triples without a negative", epoch, skipped)
            return {"train_loss": float(loss), "train_auc": float(auc)}

        (U, V, b), log = self._run_epochs(
            "BPR", step, (U, V, b), valid, hint="lower learning_rate or raise reg",
            show_progress=show_progress, callback=callback,
        )  # fmt: skip
        self.user_factors_ = U
        self.item_factors_ = V
        self.item_bias_ = b
        self.history_ = {key: list(v) for key, v in log.history.items()}
        self.best_epoch_ = log.best_epoch if log.best_epoch > 0 else log.epochs_run

    def _fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        """``fold_in_epochs`` passes of BPR steps on a zero user vector, items fixed."""
        V = np.ascontiguousarray(self.item_factors_)
        b = np.ascontiguousarray(self.item_bias_)
        lr, reg, epochs, tries = (
            float(self.learning_rate), float(self.reg), int(self.fold_in_epochs),
            int(self.max_tries),
        )  # fmt: skip

        def one(indptr: np.ndarray, indices: np.ndarray, X: np.ndarray) -> None:
            bpr_fold_in(indptr, indices, V, b, X, epochs, lr, reg, _FOLD_IN_SEED, tries)

        return self._fold_in_vectors(_fold_in_rows(history, V.shape[1], one))
