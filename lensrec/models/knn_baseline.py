"""KNNBaseline: Koren's item-based k-NN on baseline residuals, shrunk Pearson-baseline similarity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from .._config import n_threads
from ..data.interactions import Interactions
from ..kernels.knn_baseline import (
    pearson_baseline_dense,
    pearson_baseline_topk,
    predict_pairs_dense,
    predict_pairs_topk,
    score_rows_dense,
    score_rows_topk,
)
from ..types import IndexArray, RandomState, ScoreArray
from ._params import Range, Search
from .base import Callback, Capabilities, Query, RatingPredictor, register
from .baseline import _csr_arrays, fit_biases, fold_in_user_bias

__all__ = ["KNNBaseline"]


@register("knn-baseline")
class KNNBaseline(RatingPredictor):
    """Item-based k-NN on baseline residuals with the shrunk Pearson-baseline similarity.

    Koren ("Factor in the neighbors: scalable and accurate collaborative filtering", TKDD
    4(1), 2010, sections 2.1-2.2 and 3) predicts

        r_hat_ui = b_ui + sum_j s_ij (r_uj - b_uj) / sum_j s_ij,    b_ui = mu + b_u + b_i

    over the ``k`` items ``j`` the user rated that are most similar to ``i`` (only those with
    ``s_ij > 0`` count; with fewer than ``min_k`` of them the prediction is ``b_ui``). The
    baselines are fitted by regularised ALS (as :class:`~lensrec.models.baseline.Baseline`);
    the similarity is the Pearson correlation of the baseline residuals over the users who
    rated both items, shrunk towards 0 by ``(n - 1) / (n - 1 + shrinkage)`` for ``n`` common
    raters. The semantics are Surprise's ``KNNBaseline`` with ``sim_options={"name":
    "pearson_baseline", "user_based": False}``.

    The similarity is computed from the sparse ratings (items -> raters -> their items), never
    from a dense users x items matrix. Up to ``dense_items`` items it is kept as a dense
    ``[n_items, n_items]`` float32 matrix (exact); beyond, only each item's ``n_neighbors``
    most similar items are kept, which loses some accuracy when a user rated few of an item's
    kept neighbours (on ml-100k ``ua``: RMSE 0.939 dense, 0.940 with 400 neighbours, 0.946
    with 200, 0.981 with 50). For a pair the user rated, the dense form counts the item as its own neighbour
    (similarity 1, as Surprise does) and the kept lists never hold the item itself; on
    unrated pairs the two forms agree whenever the neighbours used are among those kept.
    ``fit`` refuses up front when the chosen form would not fit in memory.

    Every user is scored from a history (``capabilities.uses_history``): a known user from
    their training ratings, a user the model never saw from the ratings given, with their
    bias from those ratings (the ALS user step, item biases fixed).

    Parameters
    ----------
    k : int, default 40
        Neighbours used per prediction at most (Surprise's ``k``).
    min_k : int, default 1
        Neighbours needed (with positive similarity); fewer give the baseline.
    shrinkage : float, default 100.0
        Shrinkage of the similarity towards 0 for pairs with few common raters.
    min_support : int, default 1
        Pairs with fewer common raters get similarity 0 (at least 2 always apply).
    reg_user, reg_item : float, default 5.0 and 3.0
        L2 weights of the baseline's user and item biases (Surprise's ``bsl_options``
        ``reg_u`` and ``reg_i``, whose defaults are 15 and 10). Chosen with ``k`` and
        ``shrinkage`` on validation sets carved from ml-100k training parts: mean validation
        RMSE 0.9355 against 0.9376 with Surprise's baseline (``benchmarks/README.md``).
    baseline_epochs : int, default 10
        ALS rounds for the baseline.
    dense_items : int, default 20000
        Largest catalogue kept as a dense similarity matrix (20,000 items take 1.6 GB).
    n_neighbors : int, default 400
        Neighbours kept per item when the catalogue is larger than ``dense_items`` (8 bytes
        each: 280 MB at 87,000 items x 400).
    random_state : ignored
        The fit is deterministic; kept for the common contract.

    Attributes
    ----------
    global_mean_ : float
    user_bias_, item_bias_ : float64 [n_users], [n_items]
        The baseline's biases.
    similarity_ : float32 [n_items, n_items]
        The similarity (dense form; ``s_ii = 1``).
    neighbor_items_, neighbor_sims_ : int32 and float32 [n_items, n_neighbors]
        The kept neighbours, best first, padded with -1 and 0 (top-K form, instead of
        ``similarity_``).

    Examples
    --------
    >>> from lensrec.testing import make_ratings
    >>> model = KNNBaseline(k=10).fit(make_ratings())
    >>> model.similarity_.shape
    (40, 40)
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        needs_ratings=True,
        predicts_ratings=True,
        folds_in=True,
        fold_in_needs_ratings=True,
        uses_history=True,
    )
    k: Annotated[int, Range(1), Search(10, 200, log=True)] = 40
    min_k: Annotated[int, Range(0)] = 1
    shrinkage: Annotated[float, Range(0.0), Search(1.0, 500.0, log=True)] = 100.0
    min_support: Annotated[int, Range(0)] = 1
    reg_user: Annotated[float, Range(0.0), Search(0.5, 50.0, log=True)] = 5.0
    reg_item: Annotated[float, Range(0.0), Search(0.5, 50.0, log=True)] = 3.0
    baseline_epochs: Annotated[int, Range(1)] = 10
    dense_items: Annotated[int, Range(0)] = 20_000
    n_neighbors: Annotated[int, Range(1)] = 400
    random_state: RandomState = None

    @classmethod
    def warm_up(cls, params: Mapping[str, Any] | None = None) -> None:
        """Compile both similarity forms, their predictions and history scoring."""
        from ..data.planted import make_ratings

        data = make_ratings(n_users=8, n_items=6, density=0.8, random_state=0)
        for dense_items in (100, 0):
            model = cls(k=3, dense_items=dense_items, n_neighbors=3).fit(data)
            model.predict([0], [0])
            model.recommend([0], k=2)
            model.recommend(None, k=2, history=data.csr("rating")[:2])

    def _dense(self, n_items: int) -> bool:
        return n_items <= int(self.dense_items)

    def estimate_memory(self, n_users: int, n_items: int, nnz: int) -> int:
        """The similarity (dense ``4 n_items^2`` or ``8 n_items n_neighbors`` bytes), two CSR
        copies of the ratings, the biases and per-thread work arrays of ``n_items``."""
        sim = 4 * n_items * n_items if self._dense(n_items) else 8 * n_items * self.n_neighbors
        work = 4 * n_threads() * 48 * n_items
        return int(sim + 2 * 12 * nnz + 8 * (n_users + n_items) + work)

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
        ratings = train.csr("rating")
        mu, bu, bi = fit_biases(ratings, self.reg_user, self.reg_item, self.baseline_epochs)
        by_item = ratings.T.tocsr()
        by_item.sort_indices()
        n_items = train.n_items
        args = (*_csr_arrays(by_item), *_csr_arrays(ratings), mu, bu, bi,
                float(self.shrinkage), int(self.min_support), 4 * n_threads())  # fmt: skip
        self.global_mean_ = mu
        self.user_bias_ = bu
        self.item_bias_ = bi
        if self._dense(n_items):
            sim = np.empty((n_items, n_items), dtype=np.float32)
            pearson_baseline_dense(*args, sim)
            self.similarity_ = sim
        else:
            width = max(1, min(int(self.n_neighbors), n_items - 1))
            nbr_items = np.empty((n_items, width), dtype=np.int32)
            nbr_sims = np.empty((n_items, width), dtype=np.float32)
            pearson_baseline_topk(*args, nbr_items, nbr_sims)
            self.neighbor_items_ = nbr_items
            self.neighbor_sims_ = nbr_sims

    # --- scoring -------------------------------------------------------------------------
    def _pairs(
        self,
        users: np.ndarray,
        items: np.ndarray,
        user_bias: np.ndarray,
        rows: sp.csr_matrix,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Predictions and neighbours used for pairs; ``users`` index ``rows`` / ``user_bias``."""
        out = np.empty(len(users), dtype=np.float32)
        used = np.empty(len(users), dtype=np.int32)
        common = (
            np.ascontiguousarray(users, np.int32), np.ascontiguousarray(items, np.int32),
            float(self.global_mean_), np.ascontiguousarray(user_bias, np.float64),
            np.ascontiguousarray(self.item_bias_, np.float64), *_csr_arrays(rows),
        )  # fmt: skip
        sim = getattr(self, "similarity_", None)
        if sim is not None:
            predict_pairs_dense(*common, sim, int(self.k), int(self.min_k), out, used)
        else:
            predict_pairs_topk(
                *common, self.neighbor_items_, self.neighbor_sims_, int(self.k),
                int(self.min_k), out, used,
            )  # fmt: skip
        return out, used

    def _predict(self, users: IndexArray, items: IndexArray) -> ScoreArray:
        return self._pairs(users, items, self.user_bias_, self.user_items_)[0]

    def _score(self, query: Query, items: IndexArray | None) -> ScoreArray:
        """Predicted ratings of every candidate from each row's history: per row, the same
        numbers as ``predict`` for the same pairs, computed a row (user) at a time."""
        assert query.history is not None  # uses_history: the base fills known users' rows
        n = len(query)
        bias = np.zeros(n, dtype=np.float64)
        known = query.known
        bias[known] = self.user_bias_[query.users[known]]
        if (~known).any():
            bias[~known] = fold_in_user_bias(
                query.history[~known], float(self.global_mean_), self.item_bias_,
                float(self.reg_user),
            )  # fmt: skip
        cand = (np.arange(self.n_items, dtype=np.int32) if items is None
                else np.ascontiguousarray(items, dtype=np.int32))  # fmt: skip
        out = np.empty((n, cand.size), dtype=np.float32)
        common = (
            *_csr_arrays(query.history), float(self.global_mean_), bias,
            np.ascontiguousarray(self.item_bias_, np.float64),
        )  # fmt: skip
        if getattr(self, "similarity_", None) is not None:
            sim_t = self._cached("similarity_t", self._similarity_by_column)
            score_rows_dense(*common, sim_t, cand, int(self.k), int(self.min_k), out)
        else:
            score_rows_topk(
                *common, self.neighbor_items_, self.neighbor_sims_, cand, int(self.k),
                int(self.min_k), max(1, min(n, 4 * n_threads())), out,
            )  # fmt: skip
        return out

    def _similarity_by_column(self) -> np.ndarray:
        """``sim_t[j, i] = s_ij`` for the row-wise scoring kernel: ``similarity_`` itself when
        it is symmetric (as fitted: exactly so), else a transposed copy."""
        sim = self.similarity_
        step = max(1, (1 << 22) // max(sim.shape[0], 1))
        for start in range(0, sim.shape[0], step):
            if not np.array_equal(sim[start : start + step], sim[:, start : start + step].T):
                return np.ascontiguousarray(sim.T)
        return sim

    def _similar_scores(self, items: IndexArray) -> ScoreArray:
        sim = getattr(self, "similarity_", None)
        if sim is not None:
            return np.ascontiguousarray(sim[items], dtype=np.float32)
        out = np.full((len(items), self.n_items), -np.inf, dtype=np.float32)
        nbr = self.neighbor_items_[items]
        ok = nbr >= 0
        rows = np.repeat(np.arange(len(items)), nbr.shape[1]).reshape(nbr.shape)
        out[rows[ok], nbr[ok]] = self.neighbor_sims_[items][ok]
        return out
