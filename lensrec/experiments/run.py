"""Running an evaluation from a spec: load, split, fit, evaluate, record (cross-validation too)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, LensrecWarning, SplitDropWarning
from .records import RunRecord, save_run
from .spec import RunSpec, config_key, parse_metric_names, relevance_rule

__all__ = [
    "RunOutcome",
    "run_spec",
    "load_spec_data",
    "data_summary",
    "warm_up_quietly",
    "RATING_MODEL_NOTE",
    "DROPPED_WARN_SHARE",
    "USERS_KEY",
    "RATING_USERS_KEY",
]

RATING_MODEL_NOTE = (
    "rating models rank the whole catalogue by predicted rating and usually lose to "
    "popularity on top-N metrics (they never learned which items people choose to rate); "
    "for top-N lists use a ranking model (als, bpr, warp, ease, slim, item-knn)"
)
"""Printed with the ranking metrics of a rating model (README: "Rating models on ranking")."""

USERS_KEY = "_users"
"""Per-user file entry: the user indices behind the ranking metrics' values."""
RATING_USERS_KEY = "_rating_users"
"""Per-user file entry: the user indices behind ``rmse`` / ``mae`` per user."""

DROPPED_WARN_SHARE = 0.2
"""Warn when a split drops more than this share of its test part as cold rows."""


@dataclass
class RunOutcome:
    """What :func:`run_spec` did: the record written, the evaluation, the split, the model."""

    record: RunRecord
    path: Path
    result: Any
    split: Any
    model: Any
    fit_seconds: float
    compile_seconds: float
    notes: list[str] = field(default_factory=list)
    data_summary: str = ""

    def text(self) -> str:
        """The report a person reads: split, fit, metrics, relevance rule and notes."""
        spec = self.record
        lines = [
            f"{spec.model} on {spec.dataset} / {spec.split} "
            f"(filters: {spec.extra.get('protocol', {}).get('filters', 'none')})",
            *([f"data   {self.data_summary}"] if self.data_summary else []),
            f"split  {self.split.summary()}",
            f"fit    {self.fit_seconds:.2f}s"
            + (f" (+{self.compile_seconds:.2f}s kernel compilation, not counted)"
               if self.compile_seconds >= 0.05 else "")
            + validation_text(spec.extra.get("validation")),
            self.result.format(),
        ]  # fmt: skip
        if any("@" in m for m in self.result.metrics):
            lines.append(f"relevant: {spec.extra.get('protocol', {}).get('relevance')}")
        lines += [f"note: {n}" for n in self.notes]
        lines.append(f"run record: {self.path}")
        return "\n".join(lines)


def validation_text(info: dict[str, Any] | None) -> str:
    """``"; 37 epochs chosen on ... (refit on all training rows)"`` for a fit line."""
    if not info or "validation" not in info:
        return ""
    text = f"; {info.get('epochs_chosen', '?')} epochs chosen on {info['validation']}"
    if info.get("valid_rows"):
        text += f" ({info['valid_rows']:,} rows)"
    if info.get("refit"):
        text += ", then refit on all training rows"
    return text


def load_spec_data(spec: RunSpec, *, progress: bool = False) -> Any:
    """The spec's dataset, loaded and filtered (the part a benchmark can share across runs)."""
    from .. import split as splits
    from ..data import load_dataset

    inter = load_dataset(spec.dataset, progress=progress, **dict(spec.load_options))
    if spec.min_rating is not None:
        inter = splits.min_rating(inter, spec.min_rating)
    if spec.kcore:
        inter = splits.kcore(inter, spec.kcore)
    return inter


class _ImplicitRuns(str):
    """The default ``runs_dir``: ``"runs"``, but known to be the caller's silence."""


_DEFAULT_RUNS = _ImplicitRuns("runs")
_said_default_runs = False


def run_spec(
    spec: RunSpec,
    *,
    data: Any = None,
    runs_dir: str | Path | None = _DEFAULT_RUNS,
    show_progress: bool = False,
    extra: Mapping[str, Any] | None = None,
    model_dir: str | Path | None = None,
) -> RunOutcome:
    """Load (unless ``data`` is given, already filtered), split, fit, evaluate, record.

    The record is written under ``runs_dir``, by default ``./runs`` in the current
    directory (the first time that default is used in a process, a
    :class:`~lensrec.errors.LensrecWarning` says where); ``runs_dir=None`` writes nothing.

    A cross-validation spec (``cv:5``, ``cv:u``) fits and evaluates every fold; the record's
    metrics are the means over folds, its intervals 95% t-intervals over the fold values,
    and ``extra["folds"]`` keeps each fold's metrics.

    Raises :class:`ConfigError` for an empty test part or a relevance rule that leaves no
    relevant item (never NaN metrics); warns (:class:`SplitDropWarning`) when the split drops
    more than a fifth of its test part as cold rows. ``runs_dir=None`` writes no record.
    ``extra`` is merged into the record's ``extra`` (tuning puts ``"tuning"`` there).
    ``model_dir`` saves the fitted model as ``<model_dir>/<config_key>.lrec`` (single
    splits; ``extra["model_file"]`` names it; a later run of the same configuration replaces
    it) for the report's similar items and user lists. The
    per-user file also holds the user indices behind the values (``USERS_KEY``,
    ``RATING_USERS_KEY``), so runs can be paired user by user.
    """
    import time

    from .. import split as splits
    from ..models import MODELS

    extra_given = dict(extra or {})
    cls = MODELS[spec.model]
    params = dict(spec.params)
    if "random_state" in cls._param_names() and "random_state" not in params:
        params["random_state"] = spec.seed
    cls().set_params(**params).check_params()  # before any data is loaded
    if spec.metrics is not None:
        parse_metric_names(list(spec.metrics))
    if data is None:
        data = load_spec_data(spec, progress=show_progress)
    if splits.is_fold_family(spec.split):
        folds = splits.make_folds(data, spec.split, random_state=spec.seed)
    else:
        folds = [splits.make_split(data, spec.split, random_state=spec.seed)]
    t0 = time.perf_counter()
    warm_up_quietly(cls, params)
    compile_seconds = time.perf_counter() - t0
    notes: list[str] = []
    runs = [_fit_and_evaluate(spec, cls, params, sp, notes, show_progress) for sp in folds]
    model, result, sp, fit_seconds, eval_seconds = runs[0]
    fold_metrics: list[dict[str, float]] = []
    if len(runs) > 1:
        fold_metrics = [r[1].metrics for r in runs]
        result = _combine_folds([r[1] for r in runs])
        fit_seconds = float(np.mean([r[3] for r in runs]))
        eval_seconds = float(np.mean([r[4] for r in runs]))
        sp = _FoldsSummary(spec.split, [r[2] for r in runs])
        notes.append(
            f"{len(runs)} folds: metrics are the means over folds, intervals 95% t-intervals "
            "over the fold values; fit seconds are the mean per fold"
        )
    if any("@" in m for m in result.metrics) and cls.capabilities.predicts_ratings:
        notes.append(RATING_MODEL_NOTE)
    if result.metrics.get("cold_share", 0.0) >= 0.01:
        notes.append(
            f"{result.metrics['cold_share']:.1%} of the test ratings have a user or item unseen "
            "in training: rmse / mae are on the rest (warm); rmse_cold uses the baseline "
            "fallback for them; rmse_all is on every test rating"
        )
    protocol = spec.protocol()
    rec_extra: dict[str, Any] = {
        "filters": spec.filters(),
        "split_report": runs[0][2].report if len(runs) == 1 else [r[2].report for r in runs],
        "seed": spec.seed,
        "protocol": protocol,
        "config_key": config_key(protocol, spec.model, model.get_params()),
    }
    validation = getattr(model, "validation_", None)
    if validation:
        rec_extra["validation"] = validation
    if fold_metrics:
        rec_extra["folds"] = fold_metrics
    rec_extra.update(extra_given)
    record = RunRecord.create(
        dataset=spec.dataset,
        split=spec.split,
        model=spec.model,
        params=model.get_params(),
        metrics=result.metrics,
        ci={name: list(v) for name, v in result.ci.items()},
        n_users_evaluated=int(result.n_users),
        timings={
            "fit_seconds": fit_seconds,
            "compile_seconds": compile_seconds,
            "eval_seconds": eval_seconds,
        },
        extra=rec_extra,
    )
    path = Path("-")
    if runs_dir is not None:
        if model_dir is not None and len(runs) == 1:
            # one file per configuration, the latest run's: a benchmark rerun replaces its
            # models instead of adding ~50 MB of them every time (an older record of the
            # same configuration now finds this run's model, fitted the same way)
            target = Path(model_dir) / f"{rec_extra['config_key']}.lrec"
            model.save(target, meta={"run_id": record.run_id, "dataset": spec.dataset,
                                     "split": spec.split})  # fmt: skip
            record.extra["model_file"] = str(target)
        per_user = dict(result.per_user)
        if per_user:  # which users the values belong to, for paired tests between runs
            if result.users.size:
                per_user[USERS_KEY] = result.users.astype(np.float64)
            if result.rating_users.size:
                per_user[RATING_USERS_KEY] = result.rating_users.astype(np.float64)
        path = save_run(record, runs_dir, per_user=per_user)
        global _said_default_runs
        if type(runs_dir) is _ImplicitRuns and not _said_default_runs:
            _said_default_runs = True
            warnings.warn(
                f"run_spec recorded this run in {Path(runs_dir).resolve()} (the default "
                "runs_dir, said once); pass runs_dir= to choose the directory, or "
                "runs_dir=None to record nothing",
                LensrecWarning,
                stacklevel=2,
            )
    return RunOutcome(
        record, path, result, sp, model, fit_seconds, compile_seconds, notes, data_summary(data)
    )


def _fit_and_evaluate(
    spec: RunSpec,
    cls: Any,
    params: dict[str, Any],
    sp: Any,
    notes: list[str],
    show_progress: bool,
) -> tuple[Any, Any, Any, float, float]:
    """One split: check it, fit a fresh model, evaluate; returns (model, result, split, s, s)."""
    import time

    from ..evaluate import evaluate
    from ..models._validation import fit_with_validation

    if len(sp.test) == 0:
        raise ConfigError(
            f"split {spec.split!r} leaves no test rows on {spec.dataset} "
            f"({sp.summary()}); choose a smaller test part"
        )
    if sp.test_dropped_share > DROPPED_WARN_SHARE:
        msg = (
            f"split {sp.name or spec.split!r} dropped {sp.test_dropped_share:.0%} of its test "
            "part as cold users or items: the metrics describe only the rest"
        )
        if str(spec.split).startswith("temporal"):
            msg += (
                "; warm-temporal splits by time too but keeps in the test part only users "
                "and items seen in training (--split warm-temporal)"
            )
        warnings.warn(msg, SplitDropWarning, stacklevel=3)
        notes.append(msg)
    model = cls().set_params(**params)
    t0 = time.perf_counter()
    if sp.valid is not None:
        model.fit(sp.train, sp.valid, show_progress=show_progress)
        chosen = getattr(model, "best_epoch_", None)
        model.validation_ = {"validation": "the split's own validation part"} | (
            {} if chosen is None else {"epochs_chosen": int(chosen)}
        )
    else:
        model.validation_ = fit_with_validation(
            model, sp.train, split=spec.split, random_state=spec.seed, show_progress=show_progress
        )
    fit_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = evaluate(
        model,
        sp.train,
        sp.test,
        k=list(spec.k),
        metrics=list(spec.metrics) if spec.metrics is not None else None,
        relevance_threshold=spec.relevance_threshold,
        cold=sp.cold_test,
    )
    eval_seconds = time.perf_counter() - t0
    if any("@" in m for m in result.metrics) and result.n_users == 0:
        raise ConfigError(
            f"no test user has a relevant item ({relevance_rule(spec.relevance_threshold)}); "
            "lower --relevance-threshold or choose another split"
        )
    return model, result, sp, fit_seconds, eval_seconds


def _combine_folds(results: list[Any]) -> Any:
    """One EvalResult for a cross-validation: means over folds and 95% t-intervals."""
    from dataclasses import replace as _replace

    names = [m for m in results[0].metrics if all(m in r.metrics for r in results)]
    n = len(results)
    metrics: dict[str, float] = {}
    ci: dict[str, tuple[float, float]] = {}
    # two-sided 95% Student t quantiles for n - 1 degrees of freedom (n folds)
    t = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
    for m in names:
        vals = np.array([r.metrics[m] for r in results], dtype=np.float64)
        metrics[m] = float(vals.mean())
        if n >= 2 and np.isfinite(vals).all():
            half = t.get(n - 1, 1.96) * float(vals.std(ddof=1)) / np.sqrt(n)
            ci[m] = (metrics[m] - half, metrics[m] + half)
    return _replace(
        results[0],
        metrics=metrics,
        ci=ci,
        per_user={},
        n_users=int(round(np.mean([r.n_users for r in results]))),
        seconds=float(sum(r.seconds for r in results)),
    )


@dataclass
class _FoldsSummary:
    """Stands in for a Split in a cross-validation outcome (``summary()`` and ``report``)."""

    name: str
    folds: list[Any]

    @property
    def report(self) -> dict[str, Any]:
        return {"folds": [f.report for f in self.folds]}

    @property
    def test(self) -> Any:
        return self.folds[0].test

    def summary(self) -> str:
        sizes = [len(f.test) for f in self.folds]
        dropped = [f.test_dropped_share for f in self.folds]
        return (
            f"{self.name}: {len(self.folds)} folds, train {len(self.folds[0].train):,} rows, "
            f"test {min(sizes):,}..{max(sizes):,} rows each "
            f"(cold rows dropped: {min(dropped):.1%}..{max(dropped):.1%} of each test part)"
        )


def data_summary(data: Any) -> str:
    """One line: rows, users, items and, for ratings, the scale (declared or inferred)."""
    from ..data.summary import scale_line

    what = "ratings" if data.ratings is not None else "interactions"
    text = f"{len(data):,} {what}, {data.n_users:,} users, {data.n_items:,} items"
    scale = scale_line(data.stats)
    if scale:
        text += f"; rating scale {scale}"
    return text


def warm_up_quietly(cls: Any, params: Mapping[str, Any] | None = None) -> None:
    """Compile a model's kernels without logging the warm-up fits as if they were fits
    (``params``: the settings about to be fitted, see ``Recommender.warm_up``)."""
    root = logging.getLogger("lensrec")
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        cls.warm_up(params)
    finally:
        root.setLevel(level)
