"""ALS: implicit alternating least squares (Hu, Koren & Volinsky 2008; Rendle et al. 2021)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar, Literal, Self

import numba
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from .._config import single_threaded_blas
from ..data.ids import IdMap
from ..data.interactions import Interactions
from ..errors import ConfigError, DataError
from ..kernels import csr_parts
from ..kernels.als import als_half_step_cg, als_half_step_cholesky, als_loss, gram
from ..types import IndexArray, RandomState
from ._factor_ranker import rank_cap
from ._params import Range, Search
from ._trainer import EpochTrainer
from ._validation import VALID_K, RankingValidation
from .base import Callback, Capabilities, Recommender, register

__all__ = ["ALS"]

_log = logging.getLogger(__name__)

#: factor sizes up to this use the exact Cholesky solve for fold-in; above, CG with many steps
_CHOLESKY_FOLD_IN_MAX = 256
_FOLD_IN_CG_STEPS = 64


def history_csr(
    model: Recommender,
    items: npt.ArrayLike | Sequence[npt.ArrayLike] | sp.spmatrix | sp.sparray,
    ratings: npt.ArrayLike | Sequence[npt.ArrayLike] | None,
) -> sp.csr_matrix:
    """A checked float32 CSR ``[n, n_items]`` from a CSR or item-index rows (+ values)."""
    if sp.issparse(items):
        if ratings is not None:
            raise ConfigError("give the values inside the sparse matrix, not as ratings=")
        return model._history_csr(items, None)
    seq = list(items)  # type: ignore[arg-type]
    rows = [np.atleast_1d(np.asarray(r)) for r in seq]
    h = model._history_csr(rows, None)
    if ratings is None:
        return h
    vals = [np.atleast_1d(np.asarray(r, dtype=np.float32)) for r in list(ratings)]  # type: ignore[arg-type]
    if len(vals) != len(rows) or any(v.size != r.size for v, r in zip(vals, rows, strict=True)):
        raise ValueError("ratings must align with items (one value per item, row by row)")
    lengths = np.array([r.size for r in rows], dtype=np.int64)
    out = sp.csr_matrix(
        (
            np.concatenate(vals) if vals else np.zeros(0, np.float32),
            np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64),
            np.concatenate([[0], np.cumsum(lengths)]),
        ),
        shape=(len(rows), model.n_items),
    )
    return model._history_csr(out, None)


#: interactions per block when computing confidences (bounds the float64 temporaries)
_CONF_BLOCK = 1 << 20


# --- the model ----------------------------------------------------------------------------------
@register("als")
class ALS(Recommender):
    """Implicit-feedback matrix factorisation by alternating least squares (iALS).

    Hu, Koren & Volinsky, "Collaborative Filtering for Implicit Feedback Datasets" (ICDM
    2008), with what Rendle, Krichene, Zhang & Koren, "Revisiting the Performance of iALS on
    Item Recommendation Benchmarks" (RecSys 2022; arXiv 2110.14037, 2021) showed matters: a
    weight for the unobserved entries and regularisation scaled by row frequency. Every
    (user, item) cell is a target: 1 where the user interacted, 0 elsewhere. The model
    minimises

        sum_(u,i observed) c_ui (1 - x_u . y_i)^2 + w0 sum_(u,i unobserved) (x_u . y_i)^2
            + sum_u lam_u |x_u|^2 + sum_i lam_i |y_i|^2

    with confidence ``c_ui = 1 + alpha * t(r_ui) / mean(t(r))`` (``t`` the identity for
    ``confidence="linear"``, ``log(1 + r)`` for ``"log"``; ``r`` the interaction's value:
    1 for implicit data, else the rating or count), ``w0 = unobserved_weight`` and
    ``lam_u = reg * (n_u + w0 * n_items) ** reg_frequency_exponent`` (``n_u`` the row's
    interactions; likewise for items). Dividing by the mean makes ``alpha`` the mean extra
    confidence of an observed entry whatever the values' scale, so one default serves
    binary data, ratings >= 4 and play counts alike; on binary data ``c = 1 + alpha``,
    Hu et al.'s linear confidence. An iteration solves the item rows with the users fixed,
    then the user rows with the items fixed (:mod:`lensrec.kernels.als`: the normal
    equations through the Gram matrix, by a few warm-started conjugate-gradient steps per
    row in blocks, or exactly by Cholesky), so the user vectors always fit the final items.

    Scores are ``x_u . y_i``. A user the model never saw is folded in by the same exact
    least-squares user step on their history (items fixed): a training user's own history
    gives back, up to the CG tolerance, their fitted vector. :meth:`partial_fit_users`
    adds such users to the model for good.

    Parameters
    ----------
    factors : int, default 64
        Latent dimensions. Time per iteration grows as ``nnz * f + (n_users + n_items) *
        f^2``; the blocked CG keeps f up to 1024 usable. The rank used (``factors_``) is at
        most a tenth of ``min(n_users, n_items)``: on a matrix not much larger than the
        rank, the factors reproduce the observed cells and rank unseen items by noise.
    reg : float, default 0.01
        L2 weight ``reg`` in ``lam_u`` and ``lam_i`` (> 0). With the frequency exponent at
        1 it is a share of each row's total weight. The defaults (``reg``, ``alpha``,
        ``unobserved_weight``, ``reg_frequency_exponent``, ``factors``, ``epochs``) were
        chosen on validation sets carved from the training part of ml-100k (ratings >= 4;
        each user's last 3 training positives, by timestamp and by file order): exponent
        1 beat 0 and 0.5 clearly, ``reg`` 0.005 and 0.02 lost 3-20% NDCG@10 against 0.01,
        and factors from 32 to 256 were within 1% of each other there (see
        ``benchmarks/README.md``).
    alpha : float, default 1.0
        Mean extra confidence of an observed entry (see above): observed cells weigh
        ``1 + alpha`` on average, unobserved ones ``unobserved_weight``. 0.3 to 1 were
        best on ml-100k; the larger value is kept because larger catalogues (more
        unobserved mass per user) want more.
    confidence : {"linear", "log"}, default "linear"
        How an interaction's value becomes confidence: in proportion, or through
        ``log(1 + r)`` (Hu et al.'s choice for heavy-tailed counts).
    unobserved_weight : float, default 1.0
        ``w0``, the weight of each unobserved cell (Hu et al.: 1; Rendle et al. tune it).
    reg_frequency_exponent : float in [0, 1], default 1.0
        ``0``: the same ``reg`` for every row (Hu et al., implicit); ``1``: ``reg`` in
        proportion to the row's total weight ``n_u + w0 n_items`` (Rendle et al.), which
        keeps one ``reg`` meaningful across catalogue sizes.
    epochs : int, default 15
        Iterations (one item half-step and one user half-step each).
    cg_steps : int, default 3
        Conjugate-gradient steps per row and half-step (warm-started from the previous
        iteration); ignored by ``solver="cholesky"``.
    solver : {"cg", "cholesky"}, default "cg"
        ``"cholesky"`` solves every row exactly: O(n_u f^2 + f^3) per row, for small ``f``.
    patience : int, default 3
        With a ``valid`` set passed to ``fit``: stop after this many iterations without a
        better validation NDCG@10 and keep the best iteration's factors. Without one, all
        ``epochs`` iterations run.
    random_state : None, int or numpy Generator
        Seeds the initial factors. Rows are solved independently, so the model does not
        depend on the thread count (up to the BLAS library's own blocking).

    Attributes
    ----------
    user_factors_ : float32 [n_users, factors_]
    item_factors_ : float32 [n_items, factors_]
    factors_ : int
        The rank used: ``factors``, capped at a tenth of ``min(n_users, n_items)``.
    value_scale_ : float
        ``mean(t(r))`` over the training interactions, the divisor in the confidence (kept
        so fold-in and :meth:`partial_fit_users` weigh new histories the same way).
    history_ : dict of lists of float
        Per iteration: ``"train_loss"`` (the objective above divided by the total weight of
        all cells, ``sum c + w0 * unobserved``), ``"valid_ndcg@10"`` when validating, and
        ``"seconds"``.
    best_epoch_ : int
        Iteration whose factors were kept (the last one without validation).

    Examples
    --------
    >>> from lensrec.data.planted import make_blocks
    >>> data, _, item_group = make_blocks(random_state=0)
    >>> model = ALS(factors=8, random_state=0).fit(data)
    >>> ids, _ = model.recommend_for_history([0, 1, 2], k=3)
    >>> bool((item_group[ids[0]] == item_group[0]).all())
    True
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        folds_in=True, epoch_trained=True, uses_validation=True
    )
    #: runs refit on all training rows for the epochs chosen on the carved validation set
    refit_after_validation: ClassVar[bool] = True

    factors: Annotated[int, Range(1), Search(16, 512, log=True)] = 64
    reg: Annotated[float, Range(0.0, low_open=True), Search(1e-4, 1.0, log=True)] = 0.01
    alpha: Annotated[float, Range(0.0), Search(0.1, 100.0, log=True)] = 1.0
    confidence: Literal["linear", "log"] = "linear"
    unobserved_weight: Annotated[float, Range(0.0), Search(0.01, 1.0, log=True)] = 1.0
    reg_frequency_exponent: Annotated[float, Range(0.0, 1.0), Search(0.0, 1.0)] = 1.0
    epochs: Annotated[int, Range(1), Search(5, 30)] = 15
    cg_steps: Annotated[int, Range(1)] = 3
    solver: Literal["cg", "cholesky"] = "cg"
    patience: Annotated[int, Range(1)] = 3
    random_state: RandomState = None

    @classmethod
    def warm_up(cls, params: Mapping[str, Any] | None = None) -> None:
        """Compile on tiny data the solver ``params`` select, the loss and the ranking; with
        ``params=None`` both solvers and the fold-in too (an exact Cholesky solve, about a
        quarter of ALS's compile time, which fitting with ``solver="cg"`` never calls)."""
        from ..data.planted import make_blocks

        data = make_blocks(n_groups=2, users_per_group=6, items_per_group=5, random_state=0)[0]
        solvers: tuple[Literal["cg", "cholesky"], ...] = ("cg", "cholesky")
        if params is not None:
            solvers = (params.get("solver", cls.solver),)
        for solver in solvers:
            model = cls(factors=4, epochs=2, solver=solver, random_state=0).fit(data, data)
            if params is None:
                model.recommend_for_history([0, 1], k=2)

    def estimate_memory(self, n_users: int, n_items: int, nnz: int) -> int:
        """Both CSR orientations with confidences, the factors and a snapshot of them."""
        f = int(self.factors)
        return int(28 * nnz + 4 * 3 * f * (n_users + n_items))

    # --- confidence ----------------------------------------------------------------------
    def _transform(self, values: np.ndarray) -> np.ndarray:
        v = values.astype(np.float64)
        if v.size and v.min() < 0:
            raise DataError(
                f"ALS uses interaction values as confidence and they must be >= 0; got "
                f"{v.min():g} (filter positives first, e.g. --min-rating 4)"
            )
        return np.log1p(v) if self.confidence == "log" else v

    def _confidence(self, values: np.ndarray, scale: float) -> np.ndarray:
        t = self._transform(values)
        return (1.0 + float(self.alpha) * t / scale).astype(np.float32)

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
        x = self.user_items_
        # confidences in blocks: float64 temporaries of the whole nnz (three of them at
        # once) were the peak of the fit at 10M interactions
        data = x.data
        total = 0.0
        for s in range(0, data.size, _CONF_BLOCK):
            total += float(self._transform(data[s : s + _CONF_BLOCK]).sum())
        scale = total / data.size if data.size else 1.0
        scale = scale if scale > 0 else 1.0
        if data.size and data.min() == data.max():
            # binary (or otherwise constant) data: one confidence for every entry, so the
            # kernels get one value instead of two float32 arrays of nnz (80 MB at 10M)
            conf = self._confidence(data[:1], scale)
            pattern = sp.csr_matrix(
                (np.ones(x.nnz, dtype=np.bool_), x.indices, x.indptr), shape=x.shape
            )
            u_ptr, u_idx, _ = csr_parts(pattern, None)
            i_ptr, i_idx, _ = csr_parts(pattern.T.tocsr(), None)  # rows sorted by user
            del pattern
            u_conf = i_conf = conf
            total_observed = float(conf[0]) * x.nnz
        else:
            conf = np.empty(data.size, dtype=np.float32)
            for s in range(0, data.size, _CONF_BLOCK):
                conf[s : s + _CONF_BLOCK] = self._confidence(data[s : s + _CONF_BLOCK], scale)
            ui = sp.csr_matrix((conf, x.indices, x.indptr), shape=x.shape)
            iu = ui.T.tocsr()
            iu.sort_indices()
            u_ptr, u_idx, u_conf = csr_parts(ui)
            i_ptr, i_idx, i_conf = csr_parts(iu)
            total_observed = float(conf.sum(dtype=np.float64))

        n_users, n_items = x.shape
        f = rank_cap(int(self.factors), n_users, n_items)
        if f < int(self.factors):
            _log.info(
                "ALS: factors=%d capped at %d, a tenth of the %d x %d matrix's smaller side",
                self.factors, f, n_users, n_items,
            )  # fmt: skip
        std = np.float32(0.1 / np.sqrt(f))
        X = gen.standard_normal((n_users, f), dtype=np.float32) * std
        Y = gen.standard_normal((n_items, f), dtype=np.float32) * std
        X[np.diff(u_ptr) == 0] = 0.0
        Y[np.diff(i_ptr) == 0] = 0.0
        reg, e, w0 = (
            float(self.reg),
            float(self.reg_frequency_exponent),
            float(self.unobserved_weight),
        )
        cg = self.solver == "cg"
        steps = int(self.cg_steps)
        threads = numba.get_num_threads()  # LENSREC_THREADS, applied by fit
        total_weight = total_observed + w0 * (n_users * n_items - x.nnz)
        total_weight = total_weight if total_weight > 0 else 1.0

        def half(ptr, idx, c, fixed, solve, g):
            if cg:
                als_half_step_cg(ptr, idx, c, fixed, solve, g, reg, e, w0, steps, threads)
            else:
                als_half_step_cholesky(ptr, idx, c, fixed, solve, g, reg, e, w0)

        def step(epoch: int) -> float:
            with single_threaded_blas():
                half(i_ptr, i_idx, i_conf, X, Y, gram(X))
                gy = gram(Y)
                half(u_ptr, u_idx, u_conf, Y, X, gy)
                loss = als_loss(u_ptr, u_idx, u_conf, X, Y, gy, reg, e, w0)
            return float(loss) / total_weight

        validate = None
        if valid is not None and len(valid):
            check = RankingValidation(x, valid)
            if len(check):

                def validate() -> float:
                    return check(lambda users: X[users] @ Y.T)

        trainer: EpochTrainer[tuple[np.ndarray, np.ndarray]] = EpochTrainer(
            "ALS",
            epochs=int(self.epochs),
            patience=int(self.patience),
            mode="max",
            metric=f"valid_ndcg@{VALID_K}",
            hint="raise reg, or lower alpha",
            show_progress=show_progress,
            callback=callback,
        )
        log, best = trainer.run(step, validate, lambda: (X.copy(), Y.copy()))
        if best is not None:
            X, Y = best
        self.user_factors_ = X
        self.item_factors_ = Y
        self.factors_ = f
        self.value_scale_ = scale
        self.history_ = {key: list(v) for key, v in log.history.items()}
        self.best_epoch_ = log.best_epoch if log.best_epoch > 0 else log.epochs_run

    # --- scoring -------------------------------------------------------------------------
    def _user_vectors(self, users: IndexArray) -> np.ndarray:
        return self.user_factors_[users]

    def _item_vectors(self) -> np.ndarray:
        return self.item_factors_

    def _fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        """The exact user half-step on the history rows, items fixed (values as confidence)."""
        Y = np.ascontiguousarray(self.item_factors_, dtype=np.float32)
        f = Y.shape[1]
        out = np.zeros((history.shape[0], f), dtype=np.float32)
        if history.nnz == 0:
            return out
        h = sp.csr_matrix(history)
        h.sort_indices()
        conf = self._confidence(h.data, float(self.value_scale_))
        ptr, idx, _ = csr_parts(h, None)
        reg, e, w0 = (
            float(self.reg),
            float(self.reg_frequency_exponent),
            float(self.unobserved_weight),
        )
        g = self._cached("gram", self._gram)
        # no BLAS pinning here: a query changes no process-wide setting (concurrent callers)
        if f <= _CHOLESKY_FOLD_IN_MAX:
            als_half_step_cholesky(ptr, idx, conf, Y, out, g, reg, e, w0)
        else:
            als_half_step_cg(ptr, idx, conf, Y, out, g, reg, e, w0, _FOLD_IN_CG_STEPS,
                             numba.get_num_threads())  # fmt: skip
        return out

    def _gram(self) -> np.ndarray:
        return gram(np.ascontiguousarray(self.item_factors_, dtype=np.float32))

    def _prepare_model(self) -> None:
        self._cached("gram", self._gram)

    # --- incremental ---------------------------------------------------------------------
    def partial_fit_users(
        self,
        user_ids: npt.ArrayLike,
        items: npt.ArrayLike | Sequence[npt.ArrayLike] | sp.spmatrix | sp.sparray,
        *,
        ratings: npt.ArrayLike | Sequence[npt.ArrayLike] | None = None,
    ) -> Self:
        """Add users to the fitted model (or refresh known ones) without touching the items.

        Each user's vector is the exact least-squares user step on the given history with
        the item factors fixed, the same as fold-in; the history becomes the user's row of
        ``user_items_`` (so ``recommend`` excludes it), replacing the old row of a user the
        model already knew. Item factors, and every other user, stay as they are.

        Parameters
        ----------
        user_ids : array of external user ids, length n
            Ids new to the model are added; known ids are re-solved from their new history.
        items : CSR [n, n_items] or list of n item-index arrays
            Each user's full history (item indices: ``model.item_ids_.index(ids)``).
        ratings : list of n value arrays, optional
            Values aligned with ``items`` (ratings, counts), used as confidence as in
            training; default 1 per item. With a CSR, its values are used.

        Returns
        -------
        self
            User indices can shift (ids are kept sorted): look users up again with
            ``model.user_ids_.index(...)``.
        """
        self._require_fitted()
        ids = np.asarray(user_ids).reshape(-1)
        h = history_csr(self, items, ratings)
        if h.shape[0] != ids.size:
            raise ValueError(f"{ids.size} user ids for {h.shape[0]} history rows")
        if np.unique(ids).size != ids.size:
            raise ValueError("user_ids must be unique")
        vectors = self._fold_in(h)
        old = self.user_ids_
        known = old.lookup(ids)
        new_ids = ids[known < 0]
        if new_ids.size:
            merged = IdMap(np.concatenate([old.ids, new_ids]), kind=old.kind)
        else:
            merged = old
        pos_old = merged.index(old.ids) if new_ids.size else np.arange(len(old), dtype=np.int32)
        pos_given = merged.index(ids)
        n = len(merged)
        X = np.zeros((n, self.user_factors_.shape[1]), dtype=np.float32)
        X[pos_old] = self.user_factors_
        X[pos_given] = vectors
        # user_items_: old rows at their new positions, given rows replacing or added
        take = np.empty(n, dtype=np.int64)
        take[pos_old] = np.arange(len(old))
        take[pos_given] = len(old) + np.arange(ids.size)
        rows = sp.csr_matrix(sp.vstack([self.user_items_, h], format="csr")[take], dtype=np.float32)
        rows.sort_indices()
        rows.indices = rows.indices.astype(np.int32)
        self.user_ids_ = merged
        self.user_factors_ = X
        self.user_items_ = rows
        self._prepare()
        return self
