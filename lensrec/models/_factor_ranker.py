"""What BPR and WARP share: scores ``x_u . y_i + b_i``, the epoch loop with early stopping on
validation NDCG@10, and fold-in by a few passes of the model's own steps.

A subclass gives its hyper-parameters, :meth:`_FactorRanker._epoch_step` (one Hogwild epoch
of its kernel over the training matrix) and :meth:`_FactorRanker._fold_in_kernel` (its
fold-in kernel and the arguments only it takes). Everything else — the shared
hyper-parameters and their docs, initialisation, the trainer, the learned attributes,
packing the vectors, fold-in row by row, ``warm_up`` — is written here once.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import textwrap
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, NamedTuple

import numpy as np
import scipy.sparse as sp

from .._config import numba_threads
from ..data.interactions import Interactions
from ..kernels import csr_parts
from ..types import IndexArray, RandomState
from ._params import Range, Search
from ._trainer import EpochTrainer
from ._validation import VALID_K, RankingValidation
from .base import Callback, Capabilities, Recommender

__all__ = ["FOLD_IN_SEED", "SHARED_DOCS", "Factors", "fill_doc", "fold_in_rows", "rank_cap"]

_log = logging.getLogger(__name__)

#: seed of the fold-in kernels' streams: fold-in is a function of the history alone
FOLD_IN_SEED = 12345

Step = Callable[[int], dict[str, float]]


class Factors(NamedTuple):
    """What an epoch trains in place: user factors ``U`` [n_users, f], item factors ``V``
    [n_items, f] and item biases ``b`` [n_items], float32 and C-contiguous (the leading
    arrays of both epoch kernels, in their order)."""

    U: np.ndarray
    V: np.ndarray
    b: np.ndarray


#: the docs of what every factor ranker has, written once: a line ``{name}`` of a subclass's
#: docstring (and of ``_FactorRanker``'s) stands for ``SHARED_DOCS[name]``
SHARED_DOCS: dict[str, str] = {
    "fold_in": """\
A user the model never saw is folded in by ``fold_in_epochs`` passes of the model's own
steps over their history on a fresh (zero) user vector, the items held fixed.""",
    "factors": """\
factors : int, default 64
    Latent dimensions; the rank used (``factors_``) is at most a tenth of
    ``min(n_users, n_items)``, as for :class:`~lensrec.models.als.ALS`.""",
    "fold_in_epochs": """\
fold_in_epochs : int, default 30
    Passes over a new user's history when folding them in.""",
    "random_state": """\
random_state : None, int or numpy Generator
    Seeds the initialisation and every epoch's sampling (what is drawn, in what order).
    With ``LENSREC_THREADS=1`` the same seed gives a bit-for-bit identical model; with
    more threads the Hogwild updates interleave differently from run to run.""",
    "attributes": """\
user_factors_ : float32 [n_users, factors_]
item_factors_ : float32 [n_items, factors_]
item_bias_ : float32 [n_items]
factors_ : int
    The rank used.
best_epoch_ : int
    Epoch whose parameters were kept (the last one without validation).""",
}


def fill_doc(doc: str, parts: Mapping[str, str]) -> str:
    """``doc`` with every line that is only ``{name}`` replaced by ``parts[name]``, indented
    as that line was (pandas-style shared docs; an unknown name raises KeyError)."""
    return re.sub(
        r"^([ \t]*)\{(\w+)\}[ \t]*$",
        lambda m: textwrap.indent(parts[m.group(2)], m.group(1)),
        doc,
        flags=re.MULTILINE,
    )


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
    best epoch's parameters; runs (``lensrec evaluate``, ``benchmark``, ``train``, tuning)
    carve that set from the training part by the split's rule and then refit on the whole
    training part for the chosen number of epochs (``refit_after_validation``).

    {fold_in}

    The hyper-parameters below are the ones every factor ranker has; a subclass declares
    the rest (``learning_rate``, ``reg``, ``epochs``, ``patience``, ...) with its own
    defaults and ranges.

    Parameters
    ----------
    {factors}
    {fold_in_epochs}
    {random_state}

    Attributes
    ----------
    {attributes}
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
    #: the constructor arguments ``warm_up`` fits a tiny model with, one entry per fit (each
    #: kernel path a model can take at least once)
    _warm_up_variants: ClassVar[tuple[Mapping[str, Any], ...]] = ({},)

    factors: Annotated[int, Range(1), Search(16, 256, log=True)] = 64
    fold_in_epochs: Annotated[int, Range(1)] = 30
    random_state: RandomState = None
    if TYPE_CHECKING:  # declared by the subclasses (as fields, each its own range) and by fit
        learning_rate: float
        reg: float
        epochs: int
        patience: int
        user_factors_: np.ndarray = dataclasses.field(init=False)
        item_factors_: np.ndarray = dataclasses.field(init=False)
        item_bias_: np.ndarray = dataclasses.field(init=False)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Complete the subclass's docstring from :data:`SHARED_DOCS` (so ``help`` shows
        every parameter and attribute), then generate its constructor as every model's."""
        if cls.__doc__:
            cls.__doc__ = fill_doc(cls.__doc__, SHARED_DOCS)
        super().__init_subclass__(**kwargs)

    @classmethod
    def _param_names(cls) -> list[str]:
        """In the docs' order: ``factors``, the model's own, ``fold_in_epochs``,
        ``random_state`` (a dataclass lists the inherited fields first), so that
        ``get_params``, ``repr`` and the search space read as they always did."""
        last = ["fold_in_epochs", "random_state"]
        return [n for n in super()._param_names() if n not in last] + last

    @classmethod
    def warm_up(cls, params: Mapping[str, Any] | None = None) -> None:
        """Compile the epoch and fold-in kernels on tiny data: a two-epoch fit with
        validation and a fold-in for each of ``_warm_up_variants``."""
        from ..data.planted import make_blocks

        data = make_blocks(n_groups=2, users_per_group=6, items_per_group=5, random_state=0)[0]
        for variant in cls._warm_up_variants:
            model = cls(factors=4, epochs=2, random_state=0, **variant).fit(data, data)
            model.recommend_for_history([0, 1], k=2)

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
        self, x: sp.csr_matrix, p: Factors, gen: np.random.Generator
    ) -> tuple[Step, tuple[np.ndarray, ...]]:
        """``(step, extra)``: ``step(epoch)`` runs one epoch in place on ``p`` (and the
        ``extra`` arrays it owns, e.g. AdaGrad accumulators, snapshotted with them) and
        returns its metrics."""
        raise NotImplementedError

    def _fold_in_kernel(self) -> tuple[Callable[..., None], tuple[Any, ...]]:
        """``(kernel, extra)``: the model's fold-in kernel, called as ``kernel(indptr,
        indices, item_factors, item_bias, X, fold_in_epochs, learning_rate, reg, *extra,
        FOLD_IN_SEED)``, and the arguments only it takes."""
        raise NotImplementedError

    def _init_factors(self, gen: np.random.Generator, x: sp.csr_matrix) -> Factors:
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
        return Factors(U, V, np.zeros(n_items, dtype=np.float32))

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
        p = self._init_factors(gen, x)
        step, extra = self._epoch_step(x, p, gen)
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
                    return check(lambda users: p.U[users] @ p.V.T + p.b)

        params = (*p, *extra)
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
        log, best = trainer.run(capped, validate, lambda: tuple(a.copy() for a in params))
        U, V, b = (best if best is not None else params)[:3]
        self.user_factors_, self.item_factors_, self.item_bias_ = U, V, b
        self.history_ = {key: list(v) for key, v in log.history.items()}
        self.best_epoch_ = log.best_epoch if log.best_epoch > 0 else log.epochs_run

    def _fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        """``fold_in_epochs`` passes of the model's own steps on a zero user vector, items
        fixed."""
        V = np.ascontiguousarray(self.item_factors_)
        b = np.ascontiguousarray(self.item_bias_)
        kernel, extra = self._fold_in_kernel()
        epochs, lr, reg = int(self.fold_in_epochs), float(self.learning_rate), float(self.reg)

        def one(indptr: np.ndarray, indices: np.ndarray, X: np.ndarray) -> None:
            kernel(indptr, indices, V, b, X, epochs, lr, reg, *extra, FOLD_IN_SEED)

        return self._with_one(fold_in_rows(history, V.shape[1], one))


_FactorRanker.__doc__ = fill_doc(_FactorRanker.__doc__ or "", SHARED_DOCS)
