"""Pure, vectorised evaluation metrics.

Ranking metrics take ``recommended`` (int32 ``[n, k]`` item indices, best first, padded with
-1) and ``relevant`` (a scipy CSR matrix with ``n`` rows aligned to the rows of
``recommended``; a stored nonzero marks a relevant item, its value is the graded gain used by
``ndcg_at_k(..., gain="graded")``) and return one float64 value per row. The caller takes
the mean. Rows whose relevant set is empty get NaN (the protocol skips such users before
calling; :func:`numpy.nanmean` ignores them otherwise).

Conventions (the usual ones; each function says which it uses):

* ``k`` defaults to the width of ``recommended``; a smaller ``k`` looks at the first ``k``
  columns only; a larger one treats the missing columns as padding.
* Padding (-1) and item indices outside ``[0, relevant.shape[1])`` never count as hits.
* A list must not repeat an item (models never do); repeated items raise ``ValueError``.

Hits are found with one sparse element-wise product (the recommended lists as a sparse
matrix whose values encode the list position, times the relevant matrix): no Python loop
over users; 100k users x k=100 takes a fraction of a second.

Rating metrics (:func:`rmse`, :func:`mae`, :func:`r2`) take aligned ``true`` and
``predicted`` arrays; :func:`per_user_errors` gives the per-user sums behind confidence
intervals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from ..errors import ConfigError

__all__ = [
    "precision_at_k",
    "recall_at_k",
    "hit_rate_at_k",
    "ndcg_at_k",
    "average_precision_at_k",
    "average_precision_at_k_div_k",
    "reciprocal_rank_at_k",
    "coverage_at_k",
    "ranking_metrics",
    "rmse",
    "mae",
    "r2",
    "per_user_errors",
    "per_user_rmse",
    "MetricInfo",
    "MetricSpec",
    "METRICS",
    "parse_metric",
]

Gain = Literal["binary", "graded", "exponential"]


# --------------------------------------------------------------------------------------
# shared machinery
# --------------------------------------------------------------------------------------
class _Hits(NamedTuple):
    hit: np.ndarray  # bool [n, w]: position j of row i holds a relevant item
    rows: np.ndarray  # int64 [h]: row of each hit
    cols: np.ndarray  # int64 [h]: list position (0-based) of each hit
    n_rel: np.ndarray  # int64 [n]: relevant items per row
    k: int  # cut-off used for denominators
    rel: sp.csr_matrix  # canonical relevant matrix (zeros removed)


def _check_recommended(recommended: npt.ArrayLike, k: int | None) -> tuple[np.ndarray, int]:
    rec = np.asarray(recommended)
    if rec.ndim != 2:
        raise ValueError(f"recommended must be 2-d [n_users, k], got shape {rec.shape}")
    if rec.size and rec.dtype.kind not in "iu":
        raise TypeError(f"recommended must hold integer item indices, got dtype {rec.dtype}")
    width = rec.shape[1]
    if k is None:
        k = width
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    k = int(k)
    if k < width:
        rec = rec[:, :k]
    return rec.astype(np.int64, copy=False), k


def _check_relevant(relevant: sp.spmatrix | sp.sparray, n: int) -> sp.csr_matrix:
    if not sp.issparse(relevant):
        raise TypeError(f"relevant must be a scipy sparse matrix, got {type(relevant).__name__}")
    rel = sp.csr_matrix(relevant)
    if rel.shape[0] != n:
        raise ValueError(
            f"relevant has {rel.shape[0]} rows but recommended has {n}; "
            "row i of relevant must belong to the user of row i of recommended"
        )
    if not rel.has_canonical_format or (rel.data == 0).any():
        rel = rel.copy()
        rel.sum_duplicates()
        rel.eliminate_zeros()
    return rel


def _hits(recommended: npt.ArrayLike, relevant: sp.spmatrix | sp.sparray, k: int | None) -> _Hits:
    rec, k = _check_recommended(recommended, k)
    n, w = rec.shape
    rel = _check_relevant(relevant, n)
    n_items = rel.shape[1]
    n_rel = np.diff(rel.indptr).astype(np.int64)
    valid = (rec >= 0) & (rec < n_items)
    if w > 1:
        srt = np.sort(np.where(valid, rec, -1), axis=1)
        if ((srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)).any():
            row = int(np.flatnonzero(((srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)).any(1))[0])
            raise ValueError(f"recommended row {row} repeats an item; lists must not repeat items")
    hit = np.zeros((n, w), dtype=bool)
    if n == 0 or w == 0 or rel.nnz == 0 or not valid.any():
        empty = np.zeros(0, np.int64)
        return _Hits(hit, empty, empty, n_rel, k, rel)
    # recommended lists as a sparse matrix whose value is 1 + the flat position (exact in
    # float64); the element-wise product keeps exactly the (row, item) pairs that are hits
    flat = np.arange(1, n * w + 1, dtype=np.float64).reshape(n, w)
    counts = valid.sum(axis=1)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    listed = sp.csr_matrix((flat[valid], rec[valid], indptr), shape=(n, n_items))
    ones = sp.csr_matrix(
        (np.ones(rel.nnz, dtype=np.float64), rel.indices, rel.indptr), shape=rel.shape
    )
    prod = listed.multiply(ones)
    pos = np.asarray(sp.coo_matrix(prod).data, dtype=np.int64) - 1
    rows, cols = np.divmod(pos, w)
    hit[rows, cols] = True
    return _Hits(hit, rows, cols, n_rel, k, rel)


def _nan_empty(values: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    out = values.astype(np.float64, copy=False)
    out[n_rel == 0] = np.nan
    return out


def _discounts(k: int) -> np.ndarray:
    """``1 / log2(rank + 1)`` for ranks 1..k."""
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def _truncate(h: _Hits, k: int) -> _Hits:
    """The same hits seen through a shorter cut-off ``k <= h.k`` (binary metrics only)."""
    if k == h.k:
        return h
    keep = h.cols < k
    return _Hits(h.hit[:, :k], h.rows[keep], h.cols[keep], h.n_rel, k, h.rel)


def _precision(h: _Hits) -> np.ndarray:
    return _nan_empty(h.hit.sum(axis=1) / h.k, h.n_rel)


def _recall(h: _Hits) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return _nan_empty(h.hit.sum(axis=1) / h.n_rel, h.n_rel)


def _hit_rate(h: _Hits) -> np.ndarray:
    return _nan_empty(np.asarray(h.hit.any(axis=1), dtype=np.float64), h.n_rel)


def _ndcg(h: _Hits) -> np.ndarray:
    disc = _discounts(h.k)
    dcg = (h.hit * disc[: h.hit.shape[1]]).sum(axis=1)
    cum = np.concatenate([[0.0], np.cumsum(disc)])
    idcg = cum[np.minimum(h.n_rel, h.k)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return _nan_empty(dcg / idcg, h.n_rel)


def _ap_sum(h: _Hits) -> np.ndarray:
    cum = np.cumsum(h.hit, axis=1)
    ranks = np.arange(1, h.hit.shape[1] + 1, dtype=np.float64)
    return (h.hit * (cum / ranks)).sum(axis=1)


def _map(h: _Hits) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return _nan_empty(_ap_sum(h) / np.minimum(h.n_rel, h.k), h.n_rel)


def _map_k(h: _Hits) -> np.ndarray:
    return _nan_empty(_ap_sum(h) / h.k, h.n_rel)


def _mrr(h: _Hits) -> np.ndarray:
    any_hit = np.asarray(h.hit.any(axis=1))
    first = np.argmax(h.hit, axis=1) if h.hit.shape[1] else np.zeros(len(any_hit), np.int64)
    return _nan_empty(np.where(any_hit, 1.0 / (first + 1.0), 0.0), h.n_rel)


_PER_USER: dict[str, Callable[[_Hits], np.ndarray]] = {
    "precision": _precision,
    "recall": _recall,
    "hit_rate": _hit_rate,
    "ndcg": _ndcg,
    "map": _map,
    "map_k": _map_k,
    "mrr": _mrr,
}


def ranking_metrics(
    recommended: npt.ArrayLike,
    relevant: sp.spmatrix | sp.sparray,
    specs: list[tuple[str, int]],
) -> dict[str, np.ndarray]:
    """Several per-user ranking metrics from one hit computation.

    ``specs`` lists ``(name, k)`` pairs (names from :data:`METRICS` of kind "ranking",
    binary gain); ``recommended`` should be at least ``max(k)`` wide. Returns
    ``{"ndcg@10": array, ...}``, each equal to calling the single function with that ``k``.
    """
    if not specs:
        return {}
    k_max = max(k for _, k in specs)
    h = _hits(recommended, relevant, k_max)
    out: dict[str, np.ndarray] = {}
    for name, k in specs:
        if name not in _PER_USER:
            raise ValueError(
                f"{name!r} is not a per-user ranking metric; known: {', '.join(_PER_USER)}"
            )
        out[f"{name}@{k}"] = _PER_USER[name](_truncate(h, int(k)))
    return out


# --------------------------------------------------------------------------------------
# ranking metrics
# --------------------------------------------------------------------------------------
def precision_at_k(
    recommended: npt.ArrayLike, relevant: sp.spmatrix | sp.sparray, k: int | None = None
) -> np.ndarray:
    """Share of the ``k`` list slots holding a relevant item: ``hits / k``.

    Padding counts as a miss (a short list is not rewarded). NaN where no item is relevant.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> rel = sp.csr_matrix(np.array([[1, 0, 1, 0]]))
    >>> precision_at_k(np.array([[2, 1, -1]]), rel).tolist()
    [0.3333333333333333]
    """
    return _precision(_hits(recommended, relevant, k))


def recall_at_k(
    recommended: npt.ArrayLike, relevant: sp.spmatrix | sp.sparray, k: int | None = None
) -> np.ndarray:
    """Share of the relevant items that appear in the list: ``hits / |relevant|``.

    NaN where no item is relevant.
    """
    return _recall(_hits(recommended, relevant, k))


def hit_rate_at_k(
    recommended: npt.ArrayLike, relevant: sp.spmatrix | sp.sparray, k: int | None = None
) -> np.ndarray:
    """1.0 where the list holds at least one relevant item, else 0.0; NaN where none is relevant."""
    return _hit_rate(_hits(recommended, relevant, k))


def ndcg_at_k(
    recommended: npt.ArrayLike,
    relevant: sp.spmatrix | sp.sparray,
    k: int | None = None,
    *,
    gain: Gain = "binary",
) -> np.ndarray:
    """Normalised discounted cumulative gain.

    ``DCG = sum_{rank r <= k, hit} g / log2(r + 1)``; the ideal DCG places the
    ``min(k, |relevant|)`` largest gains at the top. ``NDCG = DCG / IDCG``.

    Parameters
    ----------
    gain : {"binary", "graded", "exponential"}, default "binary"
        ``"binary"``: every relevant item has gain 1. ``"graded"``: the gain is the value
        stored in ``relevant`` (e.g. the rating). ``"exponential"``: ``2**value - 1``. Gains
        should be positive.

    Returns NaN where no item is relevant.
    """
    if gain not in ("binary", "graded", "exponential"):
        raise ValueError(f"gain must be 'binary', 'graded' or 'exponential', got {gain!r}")
    h = _hits(recommended, relevant, k)
    if gain == "binary":
        return _ndcg(h)
    n = h.hit.shape[0]
    disc = _discounts(h.k)
    rel = h.rel
    values = rel.data.astype(np.float64)
    g_all = values if gain == "graded" else np.exp2(values) - 1.0
    # gains of the hits: look each hit up in the (canonical) relevant matrix
    row_of = np.repeat(np.arange(n, dtype=np.int64), h.n_rel)
    keys = row_of * rel.shape[1] + rel.indices
    rec, _ = _check_recommended(recommended, h.k)
    qk = h.rows * rel.shape[1] + rec[h.rows, h.cols]
    g_hit = g_all[np.searchsorted(keys, qk)]
    dcg = np.bincount(h.rows, weights=g_hit * disc[h.cols], minlength=n)
    # ideal: gains sorted descending within each row, the first k discounted
    order = np.lexsort((-g_all, row_of))
    rank = np.arange(rel.nnz, dtype=np.int64) - rel.indptr[row_of].astype(np.int64)
    top = rank < h.k
    idcg = np.bincount(row_of[top], weights=g_all[order][top] * disc[rank[top]], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _nan_empty(dcg / idcg, h.n_rel)


def average_precision_at_k(
    recommended: npt.ArrayLike, relevant: sp.spmatrix | sp.sparray, k: int | None = None
) -> np.ndarray:
    """Average precision, normalised by ``min(k, |relevant|)`` (metric name ``"map"``).

    ``AP = sum_{rank r <= k, hit} precision@r / min(k, |relevant|)``, so a perfect list scores
    1 even when more than ``k`` items are relevant. NaN where no item is relevant.
    """
    return _map(_hits(recommended, relevant, k))


def average_precision_at_k_div_k(
    recommended: npt.ArrayLike, relevant: sp.spmatrix | sp.sparray, k: int | None = None
) -> np.ndarray:
    """Average precision divided by ``k`` (metric name ``"map_k"``).

    ``sum_{rank r <= k, hit} precision@r / k``: users with fewer than ``k`` relevant items
    cannot reach 1 (the ``divide_by_k`` variant found in some libraries). NaN where no item
    is relevant.
    """
    return _map_k(_hits(recommended, relevant, k))


def reciprocal_rank_at_k(
    recommended: npt.ArrayLike, relevant: sp.spmatrix | sp.sparray, k: int | None = None
) -> np.ndarray:
    """``1 / rank`` of the first relevant item in the list, 0 if none (mean: MRR).

    NaN where no item is relevant.
    """
    return _mrr(_hits(recommended, relevant, k))


def coverage_at_k(recommended: npt.ArrayLike, n_items: int, k: int | None = None) -> float:
    """Share of the catalogue (``n_items``) appearing in at least one list (a scalar).

    Padding and indices outside ``[0, n_items)`` are ignored.
    """
    rec, _ = _check_recommended(recommended, k)
    if n_items <= 0:
        raise ValueError(f"n_items must be positive, got {n_items}")
    vals = rec[(rec >= 0) & (rec < n_items)]
    if vals.size == 0:
        return 0.0
    seen = np.zeros(n_items, dtype=bool)
    seen[vals] = True
    return float(seen.sum() / n_items)


# --------------------------------------------------------------------------------------
# rating metrics
# --------------------------------------------------------------------------------------
def _pair(true: npt.ArrayLike, predicted: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(true, dtype=np.float64).ravel()
    p = np.asarray(predicted, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"true and predicted differ in length: {t.size} vs {p.size}")
    return t, p


def rmse(true: npt.ArrayLike, predicted: npt.ArrayLike) -> float:
    """Root mean squared error, ``sqrt(mean((true - predicted)**2))``; NaN for empty input."""
    t, p = _pair(true, predicted)
    return float(np.sqrt(np.mean((t - p) ** 2))) if t.size else float("nan")


def mae(true: npt.ArrayLike, predicted: npt.ArrayLike) -> float:
    """Mean absolute error, ``mean(|true - predicted|)``; NaN for empty input."""
    t, p = _pair(true, predicted)
    return float(np.mean(np.abs(t - p))) if t.size else float("nan")


def r2(true: npt.ArrayLike, predicted: npt.ArrayLike) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` (SS_tot around the mean of true).

    NaN when ``true`` is empty or constant (SS_tot = 0).
    """
    t, p = _pair(true, predicted)
    if t.size == 0:
        return float("nan")
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    if ss_tot == 0.0:
        return float("nan")
    return 1.0 - float(np.sum((t - p) ** 2)) / ss_tot


class UserErrors(NamedTuple):
    """Per-user error sums: ``users`` (sorted, int32), ``n_ratings``, ``sse``, ``sae`` (float64)."""

    users: np.ndarray
    n_ratings: np.ndarray
    sse: np.ndarray
    sae: np.ndarray


def per_user_errors(
    users: npt.ArrayLike, true: npt.ArrayLike, predicted: npt.ArrayLike
) -> UserErrors:
    """Number of ratings, sum of squared and of absolute errors for each user present.

    Global RMSE is ``sqrt(sse.sum() / n_ratings.sum())``; bootstrapping users with weights
    ``n_ratings`` over ``sse / n_ratings`` gives an interval for it (see :mod:`lensrec.evaluate.stats`).
    """
    t, p = _pair(true, predicted)
    u = np.asarray(users).ravel()
    if u.shape != t.shape:
        raise ValueError(f"users has {u.size} entries but true has {t.size}")
    uniq, inv = np.unique(u, return_inverse=True)
    d = t - p
    return UserErrors(
        users=uniq.astype(np.int32),
        n_ratings=np.bincount(inv, minlength=uniq.size).astype(np.float64),
        sse=np.bincount(inv, weights=d * d, minlength=uniq.size),
        sae=np.bincount(inv, weights=np.abs(d), minlength=uniq.size),
    )


def per_user_rmse(
    users: npt.ArrayLike, true: npt.ArrayLike, predicted: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Each user's own RMSE: ``(users sorted int32, rmse float64)``."""
    e = per_user_errors(users, true, predicted)
    return e.users, np.sqrt(e.sse / e.n_ratings)


# --------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricInfo:
    """A registered metric: ``kind`` is "ranking" (per-user, needs k), "catalogue"
    (one scalar over all lists, needs k) or "rating"."""

    name: str
    kind: Literal["ranking", "catalogue", "rating"]
    func: Callable[..., object]
    higher_is_better: bool
    description: str


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("precision", "ranking", precision_at_k, True, "hits / k"),
        MetricInfo("recall", "ranking", recall_at_k, True, "hits / |relevant|"),
        MetricInfo("hit_rate", "ranking", hit_rate_at_k, True, "any hit in the list"),
        MetricInfo("ndcg", "ranking", ndcg_at_k, True, "normalised DCG, binary gain"),
        MetricInfo("map", "ranking", average_precision_at_k, True, "AP / min(k, |relevant|)"),
        MetricInfo("map_k", "ranking", average_precision_at_k_div_k, True, "AP / k"),
        MetricInfo("mrr", "ranking", reciprocal_rank_at_k, True, "1 / rank of the first hit"),
        MetricInfo("coverage", "catalogue", coverage_at_k, True, "share of items recommended"),
        MetricInfo("rmse", "rating", rmse, False, "root mean squared error"),
        MetricInfo("mae", "rating", mae, False, "mean absolute error"),
        MetricInfo("r2", "rating", r2, True, "coefficient of determination"),
    )
}
"""Every metric by name."""


class MetricSpec(NamedTuple):
    """A metric name with its cut-off (None for rating metrics, or "use the default k")."""

    name: str
    k: int | None

    @property
    def info(self) -> MetricInfo:
        return METRICS[self.name]

    @property
    def label(self) -> str:
        """``"ndcg@10"`` or ``"rmse"``."""
        return self.name if self.k is None else f"{self.name}@{self.k}"


def parse_metric(spec: str) -> MetricSpec:
    """Parse ``"ndcg@10"`` / ``"rmse"`` / ``"recall"`` into a :class:`MetricSpec`.

    A ranking metric without ``@k`` gets ``k=None`` (the caller's default). Unknown names,
    a bad ``k``, or ``@k`` on a rating metric raise :class:`~lensrec.errors.ConfigError`.

    Examples
    --------
    >>> parse_metric("ndcg@10")
    MetricSpec(name='ndcg', k=10)
    >>> parse_metric("RMSE").label
    'rmse'
    """
    if not isinstance(spec, str):
        raise ConfigError(f"a metric is a string like 'ndcg@10', got {spec!r}")
    text = spec.strip().lower()
    name, sep, k_text = text.partition("@")
    name = name.strip().replace("-", "_")
    aliases = {"hr": "hit_rate", "hitrate": "hit_rate", "prec": "precision", "p": "precision"}
    name = aliases.get(name, name)
    if name not in METRICS:
        raise ConfigError(f"unknown metric {spec!r}; known: {', '.join(METRICS)}")
    if not sep:
        return MetricSpec(name, None)
    if METRICS[name].kind == "rating":
        raise ConfigError(f"metric {name!r} takes no cut-off; write {name!r}, not {spec!r}")
    try:
        k = int(k_text)
    except ValueError:
        raise ConfigError(
            f"bad cut-off in {spec!r}: expected a positive integer after '@'"
        ) from None
    if k < 1:
        raise ConfigError(f"bad cut-off in {spec!r}: k must be >= 1")
    return MetricSpec(name, k)
