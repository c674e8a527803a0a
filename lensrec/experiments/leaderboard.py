"""The leaderboard: a table computed from the run records, grouped by protocol, and its text form."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from ..errors import ConfigError
from .records import RunRecord, _atomic_write, _jsonable, load_runs
from .spec import filter_text, relevance_rule

__all__ = [
    "leaderboard",
    "write_leaderboard_csv",
    "format_leaderboard",
    "LOWER_IS_BETTER",
    "PROTOCOL_COLUMNS",
]

LOWER_IS_BETTER = ("rmse", "mae", "mse")
"""Metric names (before any ``@k``) where smaller is better; every other metric sorts descending."""

_HIDDEN_PARAMS = ("random_state", "show_progress", "verbose", "callback")


def _lower_is_better(metric: str) -> bool:
    base = metric.split("@")[0].lower()
    return base in LOWER_IS_BETTER or base.split("_")[0] in LOWER_IS_BETTER


def _default_metric(names: list[str]) -> str | None:
    for prefix in ("ndcg", "rmse"):
        hits = sorted(n for n in names if n.split("@")[0].lower() == prefix)
        if hits:
            return hits[0]
    return sorted(names)[0] if names else None


def resolve_metric(present: Iterable[str], metric: str | None) -> str | None:
    """The column a metric name means among ``present``: itself, or for a bare name such as
    ``"ndcg"`` (as ``evaluate --metrics`` takes) that metric at k = 10 when there, else at
    the smallest k. None when nothing matches."""
    names = list(present)
    if metric is None or metric in names:
        return metric
    if "@" in metric:
        return None
    base = metric.lower()
    at_k = [n for n in names if n.split("@")[0].lower() == base and n.partition("@")[2].isdigit()]
    if not at_k:
        return None
    ten = [n for n in at_k if int(n.partition("@")[2]) == 10]
    return ten[0] if ten else min(at_k, key=lambda n: int(n.partition("@")[2]))


def _key_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={params[k]}" for k in sorted(params) if k not in _HIDDEN_PARAMS)


def _changed_params(model: str, params: Mapping[str, Any]) -> str:
    """The parameters that differ from the registered model's defaults ("defaults" if none).

    For a model name lensrec does not know (any more), every key parameter.
    """
    from ..models import MODELS

    cls = MODELS.get(model)
    if cls is None:
        return _key_params(params)
    try:
        defaults = _jsonable(cls().get_params())
    except Exception:  # a model whose constructor needs arguments
        return _key_params(params)
    changed = {k: v for k, v in params.items() if k not in defaults or defaults[k] != v}
    return _key_params(changed) or "defaults"


#: protocol columns: runs are comparable only when all of these agree
PROTOCOL_COLUMNS = ("dataset", "filters", "split", "seed", "k", "relevance")


def _protocol_of(r: RunRecord) -> dict[str, Any]:
    """A record's protocol; older records without one get what can be read back."""
    proto = r.extra.get("protocol")
    if isinstance(proto, dict):
        return {c: proto.get(c) for c in PROTOCOL_COLUMNS}
    filters = r.extra.get("filters") or {}
    ks = sorted({int(m.split("@")[1]) for m in r.metrics if "@" in m and m.split("@")[1].isdigit()})
    return {
        "dataset": r.dataset,
        "filters": filter_text(filters.get("min_rating"), filters.get("kcore")),
        "split": r.split,
        "seed": r.extra.get("seed"),
        "k": ",".join(map(str, ks)) or "10",  # the CLI's default k before records kept it
        "relevance": relevance_rule(None),
    }


def leaderboard(
    runs_dir: str | Path = "runs",
    metric: str | None = None,
    *,
    latest_only: bool = True,
    run_ids: Iterable[str] | None = None,
) -> pl.DataFrame:
    """One row per run record, grouped by protocol, best first inside each group.

    Columns: ``run_id``, ``created``, the protocol (``dataset``, ``filters``, ``split``,
    ``seed``, ``k``, ``relevance``: numbers are comparable only within one protocol),
    ``model``, ``params`` (``name=value`` text, seeds left out), ``changed`` (only those that
    differ from the model's defaults, or ``"defaults"``), one column per metric, ``n_users``,
    ``fit_seconds`` and ``config_key``.

    ``latest_only`` keeps the latest run of each identical configuration (protocol, model,
    parameters); the others stay in the records. ``run_ids`` restricts the table to those
    runs (e.g. the runs of one ``lensrec benchmark``). ``metric`` defaults to the first
    ``ndcg@k``, else ``rmse``, else the first metric name; rmse, mae and mse sort
    ascending, every other metric descending; runs without the metric come last.

    Raises
    ------
    ConfigError
        When ``metric`` is given and no run has it (the message lists the metrics there are).
    """
    records = load_runs(runs_dir)
    if run_ids is not None:
        wanted = set(run_ids)
        records = [r for r in records if r.run_id in wanted]
    if latest_only:
        latest: dict[str, RunRecord] = {}
        for r in records:  # oldest first: later ones replace earlier ones
            latest[str(r.extra.get("config_key") or r.run_id)] = r
        records = sorted(latest.values(), key=lambda r: (r.created, r.run_id))
    names = sorted({m for r in records for m in r.metrics})
    rows = []
    for r in records:
        row: dict[str, Any] = {"run_id": r.run_id, "created": r.created}
        proto = _protocol_of(r)
        row.update({c: None if proto[c] is None else str(proto[c]) for c in PROTOCOL_COLUMNS})
        row["model"] = r.model
        row["params"] = _key_params(r.params)
        row["changed"] = _changed_params(r.model, r.params)
        for m in names:
            row[m] = r.metrics.get(m)
        row["n_users"] = r.n_users_evaluated
        row["fit_seconds"] = r.timings.get("fit_seconds")
        row["config_key"] = r.extra.get("config_key")
        rows.append(row)
    schema: dict[str, Any] = {
        "run_id": pl.Utf8,
        "created": pl.Utf8,
        **{c: pl.Utf8 for c in PROTOCOL_COLUMNS},
        "model": pl.Utf8,
        "params": pl.Utf8,
        "changed": pl.Utf8,
        **{m: pl.Float64 for m in names},
        "n_users": pl.Int64,
        "fit_seconds": pl.Float64,
        "config_key": pl.Utf8,
    }
    df = pl.DataFrame(rows, schema=schema)
    if metric is not None and resolve_metric(names, metric) is None:
        raise ConfigError(
            f"no run has metric {metric!r}; metrics in {runs_dir}: {', '.join(names) or '(none)'}"
        )
    if df.height == 0:
        return df
    # each protocol block sorted by its own metric: the one asked for, else ndcg@k when the
    # block ranks, rmse when every run in it predicts ratings
    group = list(PROTOCOL_COLUMNS)
    blocks = []
    for _, part in df.group_by(group, maintain_order=True):
        present = [m for m in names if part[m].drop_nulls().len() > 0]
        every = [m for m in present if part[m].null_count() == 0]
        key: str | None
        if metric is not None:
            key = resolve_metric(present, metric) or resolve_metric(names, metric)
        elif "rmse" in every:
            key = "rmse"
        else:
            key = _default_metric(present)
        if key is not None:
            part = part.sort(
                [key, "created"], descending=[not _lower_is_better(key), False], nulls_last=True
            )
        blocks.append(part)
    return pl.concat(blocks).sort(group, maintain_order=True)


def write_leaderboard_csv(df: pl.DataFrame, path: str | Path) -> Path:
    """Write the leaderboard as CSV, atomically; returns the path."""
    out = Path(path)
    _atomic_write(out, lambda p: df.write_csv(p), what="the leaderboard CSV")
    return out


#: metrics shown in the text table, in this order, when a group has them (the CSV has all)
_SHOWN = ("rmse", "mae", "ndcg", "recall", "precision", "hit_rate", "map", "mrr")


def _shown_metrics(df: pl.DataFrame, metric_cols: list[str], max_metrics: int) -> list[str]:
    present = [c for c in metric_cols if df[c].drop_nulls().len() > 0]
    ks = sorted({int(c.split("@")[1]) for c in present if "@" in c and c.split("@")[1].isdigit()})
    first_k = ks[0] if ks else None
    out = []
    for base in _SHOWN:
        for c in present:
            name, _, kk = c.partition("@")
            if name == base and (not kk or (kk.isdigit() and int(kk) == first_k)):
                out.append(c)
    return out[:max_metrics]


def format_leaderboard(
    df: pl.DataFrame, *, digits: int = 4, max_params: int = 28, max_metrics: int = 5
) -> str:
    """A plain-text leaderboard, one block per protocol, readable in 100 columns.

    Each block starts with its protocol (dataset, filters, split, seed, k, relevance rule);
    rows give rank, model, the parameters that differ from the model's defaults, a few
    metrics (rmse, mae, then ndcg, recall, precision, ... at the group's first k) and the
    fit seconds. Every metric and parameter is in the CSV.
    """
    fixed = {"run_id", "created", *PROTOCOL_COLUMNS, "model", "params", "changed"}
    fixed |= {"n_users", "fit_seconds", "config_key"}
    metric_cols = [c for c in df.columns if c not in fixed]
    out: list[str] = []
    group_cols = [c for c in PROTOCOL_COLUMNS if c in df.columns]
    for _, part in df.group_by(group_cols, maintain_order=True):
        first = part.row(0, named=True)
        proto = (
            f"{first.get('dataset')} | filters: {first.get('filters') or 'none'} | "
            f"split: {first.get('split')} | seed: {first.get('seed')}"
        )
        shown = _shown_metrics(part, metric_cols, max_metrics)
        if any("@" in c for c in shown):
            proto += f" | relevant: {first.get('relevance')}"
        if out:
            out.append("")
        out.append(proto)
        header = ["#", "model", "params", *shown, "users", "fit s"]
        lines = [header]
        for rank, row in enumerate(part.iter_rows(named=True), start=1):
            params = (row.get("changed") or row.get("params")) or ""
            if len(params) > max_params:
                params = params[: max_params - 3] + "..."
            cells = [str(rank), row["model"], params]
            cells += ["-" if row[m] is None else f"{row[m]:.{digits}f}" for m in shown]
            cells.append(str(row["n_users"]))
            cells.append("-" if row["fit_seconds"] is None else f"{row['fit_seconds']:.2f}")
            lines.append(cells)
        numeric = {0, *range(3, len(header))}
        widths = [max(len(line[j]) for line in lines) for j in range(len(header))]
        for n, line in enumerate(lines):
            cells = [
                c.rjust(w) if j in numeric else c.ljust(w)
                for j, (c, w) in enumerate(zip(line, widths, strict=True))
            ]
            out.append("  ".join(cells).rstrip())
            if n == 0:
                out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
