"""The evaluation protocol: recommend for test users, score the lists, attach intervals.

:func:`evaluate` knows models only through their public contract (``recommend`` and, for
rating models, ``predict``); it never imports :mod:`lensrec.models`.
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from .._config import seed_is_random_state
from ..data.interactions import Interactions
from ..errors import ConfigError, EvaluationWarning
from ..types import RandomState
from . import metrics as _m
from .stats import bootstrap_ci, bootstrap_cis

__all__ = ["evaluate", "EvalResult", "DEFAULT_RANKING_METRICS", "DEFAULT_RATING_METRICS"]

_log = logging.getLogger(__name__)

DEFAULT_RANKING_METRICS: tuple[str, ...] = (
    "precision",
    "recall",
    "ndcg",
    "map",
    "mrr",
    "hit_rate",
    "coverage",
)
"""Computed at every ``k`` when ``metrics`` is None."""

DEFAULT_RATING_METRICS: tuple[str, ...] = ("rmse", "mae", "r2")
"""Added when ``metrics`` is None, the model has ``predict`` and the test set has ratings."""

#: users per ``recommend`` call when ``batch_size`` is None
DEFAULT_BATCH_SIZE = 4096
#: test rows per ``predict`` call
_PREDICT_BATCH = 1 << 20


class _Ranker(Protocol):
    def recommend(
        self, users: npt.ArrayLike, k: int = 10, *, exclude: Any = None, items: Any = None
    ) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class EvalResult:
    """What :func:`evaluate` measured.

    Attributes
    ----------
    metrics : dict[str, float]
        Mean over users per metric label (``"ndcg@10"``, ``"coverage@10"``, ``"rmse"``).
        Rating metrics are over all test ratings (of the requested users when ``users`` is
        given), not a mean of per-user values.
    ci : dict[str, tuple[float, float]]
        Bootstrap interval (over users) per metric; absent for ``coverage`` and ``r2`` and
        when ``ci=False``.
    per_user : dict[str, ndarray]
        float64 value per user: ranking metrics aligned with ``users``; ``rmse`` and ``mae``
        (each user's own) aligned with ``rating_users``.
    users : int32 ndarray
        User indices evaluated by the ranking metrics (sorted).
    n_users : int
        ``len(users)``.
    skipped_users : int32 ndarray
        Requested (or test) users left out because they have no relevant test item.
    rating_users : int32 ndarray
        Users behind the per-user rating values.
    k : list[int]
        The cut-offs used.
    seconds : float
        Wall time of the evaluation.
    """

    metrics: dict[str, float]
    ci: dict[str, tuple[float, float]]
    per_user: dict[str, np.ndarray]
    users: np.ndarray
    n_users: int
    skipped_users: np.ndarray
    seconds: float
    k: list[int] = field(default_factory=list)
    rating_users: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    n_ratings: int = 0

    def __getitem__(self, metric: str) -> float:
        """``result["ndcg@10"]``: the mean of one metric (a bare ``"ndcg"`` when only one k
        was evaluated); an unknown name raises ``KeyError`` listing the metrics there are."""
        if metric in self.metrics:
            return self.metrics[metric]
        at_k = [m for m in self.metrics if m.split("@")[0] == metric and "@" in m]
        if len(at_k) == 1:
            return self.metrics[at_k[0]]
        hint = f" (several k: say which, e.g. {at_k[0]!r})" if at_k else ""
        raise KeyError(f"no metric {metric!r}{hint}; there are: {', '.join(self.metrics)}")

    def __contains__(self, metric: object) -> bool:
        return metric in self.metrics

    def keys(self) -> list[str]:
        """The metric labels, in report order."""
        return list(self.metrics)

    def to_frame(self) -> Any:
        """One row per metric: ``metric``, ``value``, ``ci_lo``, ``ci_hi`` (null without an
        interval), as a polars DataFrame."""
        import polars as pl

        rows = [
            {
                "metric": name,
                "value": float(value),
                "ci_lo": None if name not in self.ci else float(self.ci[name][0]),
                "ci_hi": None if name not in self.ci else float(self.ci[name][1]),
            }
            for name, value in self.metrics.items()
        ]
        schema = {"metric": pl.String, "value": pl.Float64, "ci_lo": pl.Float64,
                  "ci_hi": pl.Float64}  # fmt: skip
        return pl.DataFrame(rows, schema=schema)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no per-user arrays); NaN becomes None."""

        def num(x: float) -> float | None:
            return None if x is None or not math.isfinite(x) else float(x)

        out = {
            "metrics": {name: num(v) for name, v in self.metrics.items()},
            "ci": {name: [num(lo), num(hi)] for name, (lo, hi) in self.ci.items()},
            "n_users": int(self.n_users),
            "n_skipped_users": int(self.skipped_users.size),
            "n_ratings": int(self.n_ratings),
            "k": [int(k) for k in self.k],
            "seconds": float(self.seconds),
        }
        json.dumps(out)  # fail here, not in the caller, if something is not JSON-able
        return out

    def format(self, digits: int = 4) -> str:
        """A plain-text table: metric, value and interval, one metric per line."""
        rows = [("metric", "value", "95% CI" if self.ci else "")]
        for name, value in self.metrics.items():
            ci = self.ci.get(name)
            ci_txt = "" if ci is None else f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
            rows.append((name, f"{value:.{digits}f}", ci_txt))
        w0 = max(len(r[0]) for r in rows)
        w1 = max(len(r[1]) for r in rows)
        lines = [f"{a:<{w0}}  {b:>{w1}}  {c}".rstrip() for a, b, c in rows]
        skipped = f", {self.skipped_users.size:,} skipped (no relevant item)"
        lines.append(
            f"{self.n_users:,} users{skipped if self.skipped_users.size else ''}; "
            f"{self.seconds:.2f}s"
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def _ks(k: int | Sequence[int]) -> list[int]:
    ks = [k] if isinstance(k, (int, np.integer)) else list(k)
    if not ks:
        raise ConfigError("k must be a positive integer or a non-empty list of them")
    for v in ks:
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ConfigError(f"k must be positive integers, got {k!r}")
    return sorted({int(v) for v in ks})


def _relevant_matrix(
    train: Interactions,
    test: Interactions,
    relevance_threshold: float | None,
    exclude_seen: bool,
) -> sp.csr_matrix:
    """Binary users x items CSR of relevant test items (seen train items removed when asked)."""
    keep = np.ones(len(test), dtype=bool)
    if relevance_threshold is not None:
        if test.ratings is None:
            raise ConfigError(
                "relevance_threshold needs a test set with ratings; this one is implicit"
            )
        keep &= test.ratings >= relevance_threshold
    rel = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (test.users[keep], test.items[keep])),
        shape=(train.n_users, train.n_items),
    )
    rel.sum_duplicates()
    rel.data[:] = 1.0
    if exclude_seen and len(train):
        seen = train.csr()
        # an item seen in training can never be recommended, so it never counts as relevant
        overlap = rel.multiply(seen)
        if overlap.nnz:
            rel = (rel - (overlap != 0).astype(np.float32)).tocsr()
            rel.eliminate_zeros()
    rel.sort_indices()
    return rel


def _check_pair(train: Interactions, test: Interactions) -> None:
    if not isinstance(train, Interactions) or not isinstance(test, Interactions):
        raise TypeError("train and test must be Interactions")
    if test.n_items != train.n_items or test.n_users != train.n_users:
        raise ConfigError(
            f"test must share train's IdMaps (train {train.n_users} users x {train.n_items} items, "
            f"test {test.n_users} x {test.n_items}); make both with lensrec.split"
        )


#: share of test pairs already in the model's training pairs above which evaluate refuses
MAX_TEST_OVERLAP = 0.5


def _check_not_swapped(model: Any, train: Interactions, test: Interactions) -> None:
    """Refuse a test part the model was fitted on (train and test swapped); warn on less.

    The model's own training pairs (``user_items_``) are compared with the test pairs: more
    than half of them shared means the two arguments were swapped or the model was fitted
    on the test part, and every metric would be meaningless. Some overlap, or a "train"
    smaller than "test", warns.
    """
    n_test = len(test)
    if n_test == 0:
        return
    fitted = getattr(model, "user_items_", None)
    if isinstance(fitted, sp.spmatrix | sp.sparray) and fitted.shape == (
        train.n_users,
        train.n_items,
    ):
        pairs = sp.csr_matrix(
            (np.ones(n_test, dtype=np.float32), (test.users, test.items)), shape=fitted.shape
        )
        pairs.sum_duplicates()
        n_pairs = pairs.nnz
        shared = pairs.multiply(fitted != 0).nnz
        if shared > MAX_TEST_OVERLAP * n_pairs:
            raise ConfigError(
                f"{shared:,} of the {n_pairs:,} test (user, item) pairs are pairs the model was "
                "fitted on: the test part is (part of) the training data. Are train and test "
                "swapped? Call evaluate(model, train, test) with the part the model was fitted "
                "on first"
            )
        if shared:
            warnings.warn(
                f"{shared:,} of the {n_pairs:,} test (user, item) pairs were in the model's "
                "training data; metrics on them measure recall of the training set, not "
                "generalisation",
                EvaluationWarning,
                stacklevel=3,
            )
    if len(train) < n_test:
        warnings.warn(
            f"'train' has fewer rows ({len(train):,}) than 'test' ({n_test:,}): are train and "
            "test swapped? The signature is evaluate(model, train, test)",
            EvaluationWarning,
            stacklevel=3,
        )


def _resolve_metrics(
    metrics: Iterable[str] | None, ks: list[int], model: Any, test: Interactions
) -> tuple[list[tuple[str, int]], list[int], list[str]]:
    """(ranking (name, k) pairs, coverage ks, rating names) in the order to report them."""
    if metrics is None:
        names: list[str] = list(DEFAULT_RANKING_METRICS)
        if callable(getattr(model, "predict", None)) and test.ratings is not None:
            names += list(DEFAULT_RATING_METRICS)
        specs = [_m.parse_metric(n) for n in names]
    else:
        if isinstance(metrics, str):
            metrics = [metrics]
        specs = [_m.parse_metric(n) for n in metrics]
    ranking: list[tuple[str, int]] = []
    coverage: list[int] = []
    rating: list[str] = []
    for spec in specs:
        kind = spec.info.kind
        if kind == "rating":
            if spec.name not in rating:
                rating.append(spec.name)
            continue
        for k in ks if spec.k is None else [spec.k]:
            target = coverage if kind == "catalogue" else ranking
            item = k if kind == "catalogue" else (spec.name, k)
            if item not in target:
                target.append(item)  # type: ignore[arg-type]
    if rating:
        if not callable(getattr(model, "predict", None)):
            raise ConfigError(
                f"rating metrics ({', '.join(rating)}) need a model with predict(); "
                f"{type(model).__name__} only ranks"
            )
        if test.ratings is None:
            raise ConfigError(f"rating metrics ({', '.join(rating)}) need a test set with ratings")
    if (ranking or coverage) and not callable(getattr(model, "recommend", None)):
        raise ConfigError(
            f"ranking metrics need a model with recommend(); {type(model).__name__} has none"
        )
    return ranking, coverage, rating


def _recommend_all(
    model: _Ranker,
    users: np.ndarray,
    k: int,
    exclude: sp.csr_matrix | None,
    batch_size: int,
) -> np.ndarray:
    out = np.full((users.size, k), -1, dtype=np.int32)
    for start in range(0, users.size, batch_size):
        block = users[start : start + batch_size]
        ids, _ = model.recommend(block, k, exclude=exclude)
        ids = np.asarray(ids)
        if ids.shape != (block.size, k):
            raise ValueError(
                f"{type(model).__name__}.recommend returned shape {ids.shape}, "
                f"expected ({block.size}, {k})"
            )
        out[start : start + block.size] = ids
    return out


def _cold_metrics(
    model: Any,
    cold: Any,
    warm_truth: np.ndarray,
    warm_pred: np.ndarray,
    rating: list[str],
    out: dict[str, float],
) -> None:
    """Rating metrics on the cold test rows (baseline fallback) and on warm + cold together."""
    try:
        pred = np.asarray(
            model.predict(cold.users, cold.items, missing="baseline"), dtype=np.float64
        )
    except TypeError:  # a model without the baseline fallback: nothing to report
        return
    truth = np.asarray(cold.ratings, dtype=np.float64)
    ok = np.isfinite(pred)
    truth, pred = truth[ok], pred[ok]
    n_cold, n_warm = truth.size, warm_truth.size
    if n_cold == 0:
        return
    out["cold_share"] = n_cold / (n_cold + n_warm)
    err_c, err_w = pred - truth, warm_pred - warm_truth
    if "rmse" in rating:
        out["rmse_cold"] = float(np.sqrt(np.mean(err_c**2)))
        out["rmse_all"] = float(np.sqrt((np.sum(err_c**2) + np.sum(err_w**2)) / (n_cold + n_warm)))
    if "mae" in rating:
        out["mae_cold"] = float(np.mean(np.abs(err_c)))
        out["mae_all"] = float((np.sum(np.abs(err_c)) + np.sum(np.abs(err_w))) / (n_cold + n_warm))


@seed_is_random_state
def evaluate(
    model: Any,
    train: Interactions,
    test: Interactions,
    *,
    k: int | Sequence[int] = 10,
    metrics: Iterable[str] | None = None,
    exclude_seen: bool = True,
    relevance_threshold: float | None = None,
    users: npt.ArrayLike | None = None,
    batch_size: int | None = None,
    ci: bool = True,
    n_boot: int = 1000,
    random_state: RandomState = 0,
    cold: Any = None,
) -> EvalResult:
    """Evaluate a fitted model on a test set that shares the train set's IdMaps.

    Parameters
    ----------
    model : fitted model
        Needs ``recommend(users, k, exclude=None, items=None) -> (ids, scores)`` for ranking
        metrics and ``predict(users, items) -> float32`` for rating metrics.
    train, test : Interactions
        A split (``test`` indexes ``train``'s maps). ``train`` supplies the seen items.
    k : int or list of int, default 10
        Cut-offs; each ranking metric without its own ``@k`` is computed at every ``k``
        (the model is asked once, for ``max(k)`` items).
    metrics : list of str, optional
        Names such as ``"ndcg"``, ``"recall@20"``, ``"rmse"`` (see
        :data:`lensrec.evaluate.METRICS`). Default: :data:`DEFAULT_RANKING_METRICS` at every
        ``k``, plus :data:`DEFAULT_RATING_METRICS` when the model has ``predict`` and
        ``test`` has ratings.
    exclude_seen : bool, default True
        Pass ``exclude=train.csr()`` to ``recommend`` so items seen in training are not
        recommended. The full users x items matrix is passed with every batch; the model
        takes row ``users[i]`` for user ``users[i]``. Test items the user already had in
        training are also dropped from the relevant set, so a seen item never counts.
    relevance_threshold : float, optional
        A test item is relevant when its rating is ``>=`` this; default: every test item.
    users : int array, optional
        User indices to evaluate; default: test users with at least one relevant item.
        Requested users without a relevant item are reported in ``skipped_users``.
    batch_size : int, optional
        Users per ``recommend`` call (default 4096); results do not depend on it.
    ci : bool, default True
        Attach bootstrap intervals over users (``n_boot`` resamples, seeded by
        ``random_state``).
    cold : ColdRows, optional
        The test rows the split dropped as cold (``Split.cold_test``: train indices, -1 for
        the unknown side). With rating metrics, a rating model predicts them with its
        baseline fallback and the result adds ``cold_share`` (share of test ratings that
        are cold), ``rmse_cold`` / ``mae_cold`` and ``rmse_all`` / ``mae_all`` (warm and
        cold together); ``rmse`` and ``mae`` stay on the warm rows.

    Returns
    -------
    EvalResult

    Raises
    ------
    ConfigError
        Unknown metric, bad ``k``, mismatched maps, rating metrics without ratings or
        ``predict``, a threshold on implicit data.
    """
    t0 = time.perf_counter()
    _check_pair(train, test)
    for attr, kind, ids in (
        ("user_ids_", "user", train.user_ids),
        ("item_ids_", "item", train.item_ids),
    ):
        fitted = getattr(model, attr, None)
        if fitted is not None and fitted is not ids and fitted != ids:
            raise ConfigError(
                f"the model's {kind} ids are not train's ({len(fitted):,} vs {len(ids):,} "
                f"{kind}s): evaluate a model on the split it was fitted on"
            )
    _check_not_swapped(model, train, test)
    ks = _ks(k)
    if batch_size is None:
        batch_size = DEFAULT_BATCH_SIZE
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    ranking, coverage, rating = _resolve_metrics(metrics, ks, model, test)

    relevant = _relevant_matrix(train, test, relevance_threshold, exclude_seen)
    n_rel = np.diff(relevant.indptr)
    if users is None:
        candidates = np.unique(test.users).astype(np.int32)
    else:
        candidates = np.unique(np.asarray(users, dtype=np.int64))
        if candidates.size and (candidates[0] < 0 or candidates[-1] >= train.n_users):
            raise ConfigError(f"users must be user indices in [0, {train.n_users})")
        candidates = candidates.astype(np.int32)
    has_rel = n_rel[candidates] > 0
    eval_users = candidates[has_rel]
    skipped = candidates[~has_rel]
    if skipped.size:
        _log.debug("skipping %d users without a relevant test item", skipped.size)

    result_metrics: dict[str, float] = {}
    result_ci: dict[str, tuple[float, float]] = {}
    per_user: dict[str, np.ndarray] = {}

    # --- ranking -------------------------------------------------------------------------
    if ranking or coverage:
        k_max = max([kk for _, kk in ranking] + coverage)
        exclude = train.csr() if exclude_seen else None
        recs = _recommend_all(model, eval_users, k_max, exclude, int(batch_size))
        values = _m.ranking_metrics(recs, relevant[eval_users], ranking)
        for label, arr in values.items():
            per_user[label] = arr
            result_metrics[label] = float(arr.mean()) if arr.size else float("nan")
        for kk in coverage:
            result_metrics[f"coverage@{kk}"] = _m.coverage_at_k(recs, train.n_items, kk)
        if ci and values:
            labels = list(values)
            bounds = bootstrap_cis(
                np.vstack([values[lab] for lab in labels]),
                n_boot=n_boot,
                random_state=random_state,
            )
            for lab, (lo, hi) in zip(labels, bounds, strict=True):
                result_ci[lab] = (float(lo), float(hi))

    # --- rating --------------------------------------------------------------------------
    rating_users = np.zeros(0, np.int32)
    n_ratings = 0
    if rating:
        rows = np.arange(len(test))
        if users is not None:
            rows = rows[np.isin(test.users, candidates)]
        tu, ti = test.users[rows], test.items[rows]
        truth = np.asarray(test.ratings)[rows].astype(np.float64)
        pred = np.empty(rows.size, dtype=np.float64)
        for start in range(0, rows.size, _PREDICT_BATCH):
            stop = start + _PREDICT_BATCH
            pred[start:stop] = np.asarray(model.predict(tu[start:stop], ti[start:stop]))
        ok = np.isfinite(pred)
        if not ok.all():
            _log.warning("%d of %d predictions are not finite; left out", (~ok).sum(), ok.size)
            tu, truth, pred = tu[ok], truth[ok], pred[ok]
        n_ratings = int(truth.size)
        errs = _m.per_user_errors(tu, truth, pred)
        rating_users = errs.users
        for name in rating:
            result_metrics[name] = float(_m.METRICS[name].func(truth, pred))  # type: ignore[arg-type]
            if name == "rmse":
                per_user["rmse"] = np.sqrt(errs.sse / errs.n_ratings)
                if ci:
                    lo, hi = bootstrap_ci(
                        errs.sse / errs.n_ratings,
                        n_boot=n_boot,
                        random_state=random_state,
                        weights=errs.n_ratings,
                    )
                    result_ci["rmse"] = (math.sqrt(lo), math.sqrt(hi)) if lo == lo else (lo, hi)
            elif name == "mae":
                per_user["mae"] = errs.sae / errs.n_ratings
                if ci:
                    result_ci["mae"] = bootstrap_ci(
                        errs.sae / errs.n_ratings,
                        n_boot=n_boot,
                        random_state=random_state,
                        weights=errs.n_ratings,
                    )

        if cold is not None and len(cold) and getattr(cold, "ratings", None) is not None:
            _cold_metrics(model, cold, truth, pred, rating, result_metrics)

    seconds = time.perf_counter() - t0
    _log.debug("evaluated %d users in %.2fs", eval_users.size, seconds)
    return EvalResult(
        metrics=result_metrics,
        ci=result_ci,
        per_user=per_user,
        users=eval_users,
        n_users=int(eval_users.size),
        skipped_users=skipped,
        seconds=seconds,
        k=ks,
        rating_users=rating_users,
        n_ratings=n_ratings,
    )
