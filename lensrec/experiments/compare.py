"""Which gaps are real: intervals and paired tests on the leaderboard, and ``runs compare``.

Every run record keeps its per-user metric values (and, from this release, the user indices
behind them). Two runs of one protocol evaluated the same users, so their difference can be
tested user by user: :func:`lensrec.evaluate.stats.paired_test` gives the mean difference, a
paired t-test p-value and a bootstrap interval of the difference. :func:`add_stats` puts, on
every leaderboard row, the main metric's 95% bootstrap interval and the paired test against
the best run of its protocol block; :func:`compare_runs` tests two runs on every metric they
share.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from ..errors import ConfigError
from .leaderboard import PROTOCOL_COLUMNS, _default_metric, _lower_is_better, resolve_metric
from .records import RunRecord, _atomic_write, load_per_user, load_runs

__all__ = [
    "STATS_COLUMNS",
    "add_stats",
    "block_metric",
    "paired_values",
    "compare_runs",
    "format_compare",
    "format_board",
    "write_board",
]

#: columns :func:`add_stats` adds
STATS_COLUMNS = (
    "metric",
    "value",
    "ci_lo",
    "ci_hi",
    "vs_best",
    "vs_best_lo",
    "vs_best_hi",
    "p_vs_best",
    "n_paired",
)

_USERS = {"rmse": "_rating_users", "mae": "_rating_users"}


def _users_key(metric: str) -> str:
    return _USERS.get(metric, "_users")


def block_metric(part: pl.DataFrame, metric: str | None = None) -> str | None:
    """The metric a protocol block is ranked by: ``metric`` when given, rmse when every run
    of the block has it, else the first ndcg@k, else the first metric (as ``leaderboard``)."""
    fixed = {"run_id", "created", *PROTOCOL_COLUMNS, "model", "params", "changed"}
    fixed |= {"n_users", "fit_seconds", "config_key", *STATS_COLUMNS}
    names = [c for c in part.columns if c not in fixed and part[c].dtype.is_numeric()]
    present = [m for m in names if part[m].drop_nulls().len() > 0]
    if metric is not None:
        return resolve_metric(present, metric)
    if "rmse" in present and part["rmse"].null_count() == 0:
        return "rmse"
    return _default_metric(present)


def paired_values(
    a: RunRecord, b: RunRecord, metric: str, runs_dir: str | Path
) -> tuple[np.ndarray, np.ndarray] | None:
    """The two runs' per-user values of ``metric`` on the users both evaluated, aligned.

    Users are matched by index when both records kept them, else by position when both
    arrays have the same length (same protocol, same users). None when either run has no
    per-user values for the metric (cross-validation runs keep none) or they cannot be
    aligned.
    """
    pa, pb = load_per_user(a, runs_dir), load_per_user(b, runs_dir)
    if metric not in pa or metric not in pb:
        return None
    va, vb = pa[metric], pb[metric]
    key = _users_key(metric)
    ua, ub = pa.get(key), pb.get(key)
    if ua is not None and ub is not None and ua.size == va.size and ub.size == vb.size:
        _, ia, ib = np.intersect1d(ua.astype(np.int64), ub.astype(np.int64), return_indices=True)
        return va[ia], vb[ib]
    if va.size == vb.size:
        return va, vb
    return None


def add_stats(
    df: pl.DataFrame,
    runs_dir: str | Path = "runs",
    *,
    metric: str | None = None,
    level: float = 0.95,
    n_boot: int = 1000,
    random_state: int = 0,
) -> pl.DataFrame:
    """The leaderboard with, per row, its block's main metric, its interval and the paired
    test against the block's best run.

    Added columns: ``metric`` (the block's main metric), ``value``, ``ci_lo`` / ``ci_hi``
    (the record's bootstrap interval, else one computed from the per-user values),
    ``vs_best`` (mean per-user difference, this run minus the best), ``vs_best_lo`` /
    ``vs_best_hi`` (bootstrap interval of that difference), ``p_vs_best`` (two-sided paired
    t-test) and ``n_paired`` (users in the comparison). The best row has no comparison. A
    block of cross-validation runs has no per-user values: no comparison either.
    """
    from ..evaluate.stats import bootstrap_ci, paired_test

    records = {r.run_id: r for r in load_runs(runs_dir)}
    group = [c for c in PROTOCOL_COLUMNS if c in df.columns]
    blocks = []
    for _, part in df.group_by(group, maintain_order=True):
        key = block_metric(part, metric)
        rows = part.to_dicts()
        best = rows[0] if key is not None else None
        stats: list[dict[str, Any]] = []
        for row in rows:
            out: dict[str, Any] = dict.fromkeys(STATS_COLUMNS)
            out["metric"] = key
            rec = records.get(row["run_id"])
            if key is None or rec is None or row.get(key) is None:
                stats.append(out)
                continue
            out["value"] = row[key]
            ci = rec.ci.get(key) or []
            if len(ci) == 2 and ci[0] is not None and ci[1] is not None:
                out["ci_lo"], out["ci_hi"] = float(ci[0]), float(ci[1])
            else:
                per = load_per_user(rec, runs_dir).get(key)
                if per is not None and per.size > 1:
                    out["ci_lo"], out["ci_hi"] = bootstrap_ci(
                        per, level=level, n_boot=n_boot, random_state=random_state
                    )
            if best is not None and row["run_id"] != best["run_id"]:
                other = records.get(best["run_id"])
                pair = None if other is None else paired_values(rec, other, key, runs_dir)
                if pair is not None and pair[0].size:
                    t = paired_test(pair[0], pair[1], level=level, n_boot=n_boot,
                                    random_state=random_state)  # fmt: skip
                    out.update(vs_best=t.mean_diff, vs_best_lo=t.ci[0], vs_best_hi=t.ci[1],
                               p_vs_best=t.p_value, n_paired=t.n)  # fmt: skip
            stats.append(out)
        schema = {
            "metric": pl.Utf8,
            **{c: pl.Float64 for c in STATS_COLUMNS if c not in ("metric", "n_paired")},
            "n_paired": pl.Int64,
        }
        extra = pl.DataFrame(stats, schema=schema)
        blocks.append(pl.concat([part.drop([c for c in STATS_COLUMNS if c in part.columns]),
                                 extra], how="horizontal"))  # fmt: skip
    if not blocks:
        return df.with_columns([pl.lit(None).alias(c) for c in STATS_COLUMNS])
    return pl.concat(blocks, how="diagonal_relaxed")


def _p_text(p: float | None) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _verdict(row: dict[str, Any], first: bool, alpha: float = 0.05) -> str:
    """``best``, ``worse`` (p < alpha), ``tie`` (p >= alpha) or ``-`` (no comparison)."""
    if first:
        return "best" if row.get("value") is not None else "-"
    if row.get("vs_best") is None:
        return "-"
    p = row.get("p_vs_best")
    if p is None or math.isnan(p):
        return "-"
    return "worse" if p < alpha else "tie"


def _other_cutoffs(part: pl.DataFrame, metric: str) -> list[str]:
    """Columns of ``metric``'s name at the block's other k (``ndcg@5``, ``ndcg@20`` beside
    ``ndcg@10``), in k order, those that have values."""
    base, _, k = metric.partition("@")
    if not k.isdigit():
        return []
    found = [
        c
        for c in part.columns
        if c != metric
        and c.partition("@")[0] == base
        and c.partition("@")[2].isdigit()
        and part[c].dtype.is_numeric()
        and part[c].drop_nulls().len() > 0
    ]
    return sorted(found, key=lambda c: int(c.partition("@")[2]))


def format_board(
    df: pl.DataFrame,
    *,
    kind: Literal["text", "markdown"] = "text",
    digits: int = 4,
    max_params: int = 28,
) -> str:
    """The leaderboard with intervals and paired tests, one block per protocol.

    Columns: rank, model, the parameters that differ from the defaults, the main metric with
    its 95% interval, the difference to the best run with its interval, the paired test's
    p-value and a verdict (``worse`` when p < 0.05, else ``tie``), users and fit seconds.
    """
    if "metric" not in df.columns:
        raise ValueError("format_board needs the columns add_stats adds")
    out: list[str] = []
    group = [c for c in PROTOCOL_COLUMNS if c in df.columns]
    for _, part in df.group_by(group, maintain_order=True):
        first = part.row(0, named=True)
        metric = first.get("metric") or "-"
        better = "lower" if metric != "-" and _lower_is_better(metric) else "higher"
        proto = (
            f"{first.get('dataset')} | filters: {first.get('filters') or 'none'} | "
            f"split: {first.get('split')} | seed: {first.get('seed')}"
        )
        if "@" in metric:
            proto += f" | relevant: {first.get('relevance')}"
        proto += f" | ranked by {metric} ({better} is better)"
        # the same metric at the block's other cut-offs (a block evaluated at --k 5,10,20)
        other_ks = _other_cutoffs(part, metric)
        header = ["#", "model", "params", f"{metric} [95% CI]", *other_ks, "vs best [95% CI]",
                  "p", "verdict", "users", "fit s"]  # fmt: skip
        lines = [header]
        for rank, row in enumerate(part.iter_rows(named=True), start=1):
            params = (row.get("changed") or row.get("params")) or ""
            if kind == "text" and len(params) > max_params:
                params = params[: max_params - 3] + "..."
            value = row.get("value")
            if value is None:
                cell = "-"
            elif row.get("ci_lo") is not None and row.get("ci_hi") is not None:
                cell = f"{value:.{digits}f} [{row['ci_lo']:.{digits}f}, {row['ci_hi']:.{digits}f}]"
            else:
                cell = f"{value:.{digits}f}"
            diff = row.get("vs_best")
            if diff is None:
                dcell = "-"
            else:
                dcell = (
                    f"{diff:+.{digits}f} [{row['vs_best_lo']:+.{digits}f}, "
                    f"{row['vs_best_hi']:+.{digits}f}]"
                )
            fit = row.get("fit_seconds")
            others = ["-" if row.get(c) is None else f"{row[c]:.{digits}f}" for c in other_ks]
            lines.append([
                str(rank), str(row["model"]), params, cell, *others, dcell,
                _p_text(row.get("p_vs_best")),
                _verdict(row, rank == 1), str(row.get("n_users") or "-"), "-" if fit is None else f"{fit:.2f}",
            ])  # fmt: skip
        if out:
            out.append("")
        if kind == "markdown":
            out.append(f"**{proto}**")
            out.append("")
            out.append("| " + " | ".join(header) + " |")
            numeric = {0, *range(3, 6 + len(other_ks)), 7 + len(other_ks), 8 + len(other_ks)}
            out.append("|" + "|".join("---:" if j in numeric else "---"
                                      for j in range(len(header))) + "|")  # fmt: skip
            for line in lines[1:]:
                out.append("| " + " | ".join(c.replace("|", "\\|") for c in line) + " |")
            continue
        out.append(proto)
        widths = [max(len(line[j]) for line in lines) for j in range(len(header))]
        numeric = {0, *range(3, 6 + len(other_ks)), 7 + len(other_ks), 8 + len(other_ks)}
        for n, line in enumerate(lines):
            cells = [c.rjust(w) if j in numeric else c.ljust(w)
                     for j, (c, w) in enumerate(zip(line, widths, strict=True))]  # fmt: skip
            out.append("  ".join(cells).rstrip())
            if n == 0:
                out.append("  ".join("-" * w for w in widths))
    if kind == "text" and out:
        out.append("")
        out.append("vs best: mean per-user difference to the block's best run, paired over the "
                   "same users (bootstrap 95% CI, two-sided paired t-test); worse: p < 0.05")  # fmt: skip
    return "\n".join(out)


def write_board(df: pl.DataFrame, path: str | Path) -> Path:
    """Write the leaderboard by the file's suffix: ``.csv``, ``.parquet``, ``.md`` (Markdown
    with intervals and tests, needs :func:`add_stats` columns) or ``.txt``; atomically."""
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix == ".csv":
        _atomic_write(out, lambda p: df.write_csv(p), what="the leaderboard")
    elif suffix == ".parquet":
        _atomic_write(out, lambda p: df.write_parquet(p), what="the leaderboard")
    elif suffix in (".md", ".txt"):
        text = format_board(df, kind="markdown" if suffix == ".md" else "text") + "\n"
        _atomic_write(out, lambda p: p.write_text(text, encoding="utf-8"), what="the leaderboard")
    else:
        raise ConfigError(f"{out}: the leaderboard is written as .csv, .parquet, .md or .txt")
    return out


def _find(records: Iterable[RunRecord], ref: str) -> RunRecord:
    """A record by run id, a unique prefix of one, or a path to its JSON file."""
    name = Path(ref).name.removesuffix(".json")
    recs = list(records)
    exact = [r for r in recs if r.run_id == name]
    if exact:
        return exact[0]
    hits = [r for r in recs if r.run_id.startswith(name)] or [r for r in recs if name in r.run_id]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise ConfigError(f"no run record matches {ref!r}")
    raise ConfigError(
        f"{ref!r} matches {len(hits)} run records ({', '.join(r.run_id for r in hits[:3])}, ...); "
        "give more of the run id"
    )


def compare_runs(
    a: str,
    b: str,
    runs_dir: str | Path = "runs",
    *,
    level: float = 0.95,
    n_boot: int = 1000,
    random_state: int = 0,
) -> dict[str, Any]:
    """Paired comparison of two runs (``a - b``) on every metric both have.

    ``a`` and ``b`` are run ids (or unique parts of them, or paths to the JSON files). Returns
    ``{"a": record, "b": record, "same_protocol": bool, "rows": [...]}``, each row with
    ``metric``, ``a``, ``b``, ``diff`` (the difference of the runs' values), and from the
    paired test over the users both evaluated: ``per_user_diff`` (mean per-user difference;
    equal to ``diff`` for ranking metrics, not for rmse / mae, which are over ratings),
    ``lo`` / ``hi`` (its bootstrap interval), ``p`` (paired t-test) and ``n``.
    """
    from ..evaluate.stats import paired_test
    from .leaderboard import _protocol_of

    folder = Path(runs_dir)
    if Path(a).suffix == ".json" and Path(a).parent != Path("."):
        folder = Path(a).parent
    records = load_runs(folder)
    if not records:
        raise ConfigError(f"no run records in {folder}")
    ra, rb = _find(records, a), _find(records, b)
    rows = []
    for name in [m for m in ra.metrics if m in rb.metrics]:
        va, vb = ra.metrics[name], rb.metrics[name]
        row: dict[str, Any] = {"metric": name, "a": va, "b": vb, "diff": None, "lo": None,
                               "hi": None, "p": None, "n": None}  # fmt: skip
        if va is not None and vb is not None:
            row["diff"] = va - vb
        pair = paired_values(ra, rb, name, folder)
        if pair is not None and pair[0].size:
            t = paired_test(pair[0], pair[1], level=level, n_boot=n_boot, random_state=random_state)
            row.update(lo=t.ci[0], hi=t.ci[1], p=t.p_value, n=t.n, per_user_diff=t.mean_diff)
            if row["diff"] is None:
                row["diff"] = t.mean_diff
        rows.append(row)
    return {
        "a": ra,
        "b": rb,
        "same_protocol": _protocol_of(ra) == _protocol_of(rb),
        "rows": rows,
    }


def format_compare(result: dict[str, Any], digits: int = 4) -> str:
    """The comparison as text: one line per metric with the difference, its interval and p."""
    ra, rb = result["a"], result["b"]
    lines = [f"A  {ra.run_id}  {ra.model} on {ra.dataset} / {ra.split}",
             f"B  {rb.run_id}  {rb.model} on {rb.dataset} / {rb.split}"]  # fmt: skip
    if not result["same_protocol"]:
        lines.append("note: the runs differ in protocol (data, filters, split, seed, k or "
                     "relevance): their numbers are not comparable user by user")  # fmt: skip
    header = ["metric", "A", "B", "A - B", "95% CI", "p", "users"]
    table = [header]
    for row in result["rows"]:

        def f(v: Any) -> str:
            return "-" if v is None else f"{v:.{digits}f}"

        ci = "-" if row["lo"] is None else f"[{row['lo']:+.{digits}f}, {row['hi']:+.{digits}f}]"
        diff = "-" if row["diff"] is None else f"{row['diff']:+.{digits}f}"
        table.append([row["metric"], f(row["a"]), f(row["b"]), diff, ci, _p_text(row["p"]),
                      "-" if row["n"] is None else str(row["n"])])  # fmt: skip
    widths = [max(len(r[j]) for r in table) for j in range(len(header))]
    for n, r in enumerate(table):
        lines.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w)
                               for j, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip())  # fmt: skip
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("A - B: mean per-user difference over the users both runs evaluated (for rmse "
                 "the difference of the runs' RMSE; its interval and p are on per-user RMSE); "
                 "p: two-sided paired t-test")  # fmt: skip
    return "\n".join(lines)
