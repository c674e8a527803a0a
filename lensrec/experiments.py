"""Run records: one JSON file per evaluated run, and the leaderboard built from them.

Layout of a runs directory::

    runs/
      <run_id>.json                 the RunRecord (metrics are means; CIs; timings; versions)
      <run_id>.per_user.parquet     per-user metric values, long format (metric, position, value)

Files are written atomically (a temporary file in the same directory, then ``os.replace``),
so a reader never sees half a record. The leaderboard is computed from these files and never
edited by hand.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import re
import secrets
import subprocess
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ._io import atomic_write, jsonable
from .errors import ConfigError, LensrecWarning, SplitDropWarning

__all__ = [
    "RunRecord",
    "save_run",
    "load_runs",
    "load_per_user",
    "leaderboard",
    "write_leaderboard_csv",
    "format_leaderboard",
    "package_versions",
    "git_commit",
    "LOWER_IS_BETTER",
]

_log = logging.getLogger(__name__)

LOWER_IS_BETTER = ("rmse", "mae", "mse")
"""Metric names (before any ``@k``) where smaller is better; every other metric sorts descending."""

_HIDDEN_PARAMS = ("random_state", "show_progress", "verbose", "callback")
_PER_USER_SUFFIX = ".per_user.parquet"


# --- environment -----------------------------------------------------------------------------
def package_versions() -> dict[str, str | None]:
    """Versions of python, lensrec and the core libraries (None where one is missing)."""
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("lensrec", "numpy", "scipy", "polars", "numba"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(path: str | Path | None = None) -> str | None:
    """``git rev-parse HEAD`` of the repository holding ``path`` (default: lensrec's source).

    None when git is missing, the path is not in a repository, or git fails.
    """
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        res = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = res.stdout.strip()
    return sha if res.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", sha) else None


# --- the record ------------------------------------------------------------------------------
@dataclass
class RunRecord:
    """Everything needed to compare and re-make one evaluated run.

    Attributes
    ----------
    run_id : str
        Unique id, also the file name: ``<UTC time>-<model>-<random hex>``.
    created : str
        UTC time of creation, ISO 8601 (``2026-11-22T07:09:13+00:00``).
    dataset, split, model : str
        Dataset name or path, split spec (``"ua"``, ``"last:3"``), model name (``"biased-mf"``).
    params : dict
        The model's ``get_params()``.
    metrics : dict[str, float]
        Mean of each metric over the evaluated users (None where not finite).
    ci : dict[str, list[float]]
        ``[lo, hi]`` confidence interval of each metric's mean, where computed.
    n_users_evaluated : int
        Users that had test rows and were scored.
    timings : dict[str, float]
        ``fit_seconds``, ``eval_seconds`` (and any other phases).
    versions : dict[str, str | None]
        python, lensrec, numpy, scipy, polars, numba.
    git_commit : str or None
        ``git rev-parse HEAD`` of the lensrec source, when it is a git checkout.
    extra : dict
        Anything else (filters, split report, seed, ...); must be JSON-serialisable.
    per_user_file : str or None
        Name of the side Parquet file (same directory) once :func:`save_run` wrote one.
    """

    run_id: str
    created: str
    dataset: str
    split: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float | None] = field(default_factory=dict)
    ci: dict[str, list[float | None]] = field(default_factory=dict)
    n_users_evaluated: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str | None] = field(default_factory=dict)
    git_commit: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    per_user_file: str | None = None

    @classmethod
    def create(
        cls,
        *,
        dataset: str,
        split: str,
        model: str,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        ci: Mapping[str, Iterable[float]] | None = None,
        n_users_evaluated: int = 0,
        timings: Mapping[str, float] | None = None,
        extra: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> RunRecord:
        """A new record stamped with the time, a fresh id, package versions and git commit."""
        now = datetime.now(UTC).replace(microsecond=0)
        if run_id is None:
            slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(model)).strip("-") or "model"
            run_id = f"{now:%Y%m%dT%H%M%SZ}-{slug}-{secrets.token_hex(3)}"
        return cls(
            run_id=run_id,
            created=now.isoformat(),
            dataset=str(dataset),
            split=str(split),
            model=str(model),
            params=_jsonable(dict(params or {})),
            metrics={str(k): _num(v) for k, v in (metrics or {}).items()},
            ci={str(k): [_num(x) for x in v] for k, v in (ci or {}).items()},
            n_users_evaluated=int(n_users_evaluated),
            timings={str(k): float(v) for k, v in (timings or {}).items()},
            versions=package_versions(),
            git_commit=git_commit(),
            extra=_jsonable(dict(extra or {})),
        )

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        """Rebuild from :meth:`to_dict` output; unknown keys go to ``extra``, missing required ones raise."""
        names = {f.name for f in fields(cls)}
        missing = [k for k in ("run_id", "dataset", "split", "model") if k not in data]
        if missing:
            raise KeyError(f"run record lacks {', '.join(missing)}")
        known = {k: v for k, v in data.items() if k in names}
        unknown = {k: v for k, v in data.items() if k not in names}
        rec = cls(**{"created": "", **known})
        if unknown:
            rec.extra = {**rec.extra, **unknown}
        return rec


def _num(x: Any) -> float | None:
    if x is None:
        return None
    f = float(x)
    return f if math.isfinite(f) else None


_jsonable = jsonable


def _atomic_write(path: Path, write: Any, what: str = "--runs-dir") -> None:
    """Call ``write(tmp_path)`` then move the finished file over ``path`` (see lensrec._io)."""
    atomic_write(path, write, what=what)


def save_run(
    record: RunRecord,
    runs_dir: str | Path = "runs",
    per_user: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Write ``<runs_dir>/<run_id>.json`` atomically and return its path.

    ``per_user`` (metric name -> values per evaluated user; arrays may differ in length) goes
    to ``<run_id>.per_user.parquet`` beside it, in long format with columns ``metric``,
    ``position`` (index in the array) and ``value``. It is written before the JSON file, so a
    record never names a side file that is not there.
    """
    runs = Path(runs_dir)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", record.run_id) or record.run_id.startswith("."):
        raise ConfigError(
            f"run_id {record.run_id!r} is not a safe file name (letters, digits, '_', '.', '-')"
        )
    if per_user:
        frames = []
        for name, values in per_user.items():
            arr = np.asarray(values, dtype=np.float64).reshape(-1)
            frames.append(
                pl.DataFrame(
                    {
                        "metric": pl.Series([str(name)] * arr.size, dtype=pl.Utf8),
                        "position": np.arange(arr.size, dtype=np.int64),
                        "value": arr,
                    }
                )
            )
        table = pl.concat(frames) if frames else None
        side = runs / f"{record.run_id}{_PER_USER_SUFFIX}"
        if table is not None:
            _atomic_write(side, lambda p: table.write_parquet(p))
            record.per_user_file = side.name
    path = runs / f"{record.run_id}.json"
    text = json.dumps(record.to_dict(), indent=2, sort_keys=True, allow_nan=False)
    _atomic_write(path, lambda p: p.write_text(text + "\n", encoding="utf-8"))
    _log.debug("run record written to %s", path)
    return path


def load_runs(runs_dir: str | Path = "runs") -> list[RunRecord]:
    """Every readable run record in ``runs_dir``, oldest first.

    Files that cannot be read or parsed are skipped with a :class:`LensrecWarning` naming
    each of them. A missing directory gives an empty list.
    """
    runs = Path(runs_dir)
    if not runs.is_dir():
        return []
    out: list[RunRecord] = []
    bad: list[str] = []
    for path in sorted(runs.glob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            out.append(RunRecord.from_dict(data))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            bad.append(f"{path} ({type(exc).__name__}: {exc})")
    if bad:
        warnings.warn(
            f"skipped {len(bad)} unreadable run record(s): " + "; ".join(bad),
            LensrecWarning,
            stacklevel=2,
        )
    out.sort(key=lambda r: (r.created, r.run_id))
    return out


def load_per_user(record: RunRecord, runs_dir: str | Path = "runs") -> dict[str, np.ndarray]:
    """The per-user arrays saved with ``record`` (empty when none were saved)."""
    if not record.per_user_file:
        return {}
    table = pl.read_parquet(Path(runs_dir) / record.per_user_file)
    out: dict[str, np.ndarray] = {}
    for (name,), part in table.sort("position").group_by("metric", maintain_order=True):
        out[str(name)] = part["value"].to_numpy()
    return out


# --- leaderboard -----------------------------------------------------------------------------
def _lower_is_better(metric: str) -> bool:
    base = metric.split("@")[0].lower()
    return base in LOWER_IS_BETTER or base.split("_")[0] in LOWER_IS_BETTER


def _default_metric(names: list[str]) -> str | None:
    for prefix in ("ndcg", "rmse"):
        hits = sorted(n for n in names if n.split("@")[0].lower() == prefix)
        if hits:
            return hits[0]
    return sorted(names)[0] if names else None


def _key_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={params[k]}" for k in sorted(params) if k not in _HIDDEN_PARAMS)


def _changed_params(model: str, params: Mapping[str, Any]) -> str:
    """The parameters that differ from the registered model's defaults ("defaults" if none).

    For a model name lensrec does not know (any more), every key parameter.
    """
    from .models import MODELS

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
    if metric is not None and metric not in names:
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
            key = metric
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


# --- running an evaluation from a spec ------------------------------------------------------
RATING_MODEL_NOTE = (
    "rating models rank the whole catalogue by predicted rating and usually lose to "
    "popularity on top-N metrics (they never learned which items people choose to rate); "
    "for top-N lists use a ranking model (als, bpr, warp, ease, slim, item-knn)"
)
"""Printed with the ranking metrics of a rating model (README: "Rating models on ranking")."""

DROPPED_WARN_SHARE = 0.2
"""Warn when a split drops more than this share of its test part as cold rows."""


def relevance_rule(threshold: float | None) -> str:
    """What counts as relevant, in words: ``"every test item"`` or ``"rating >= 4"``."""
    return "every test item" if threshold is None else f"rating >= {threshold:g}"


@dataclass(frozen=True)
class RunSpec:
    """One evaluation to run: dataset, filters, split, model, parameters, cut-offs.

    The same spec gives the same run (the seed drives the split and the model). ``tune``,
    ``benchmark``, ``report`` and the CLI's ``evaluate`` all go through :func:`run_spec`.

    Attributes
    ----------
    dataset : str
        A MovieLens name (``"ml-100k"``) or a file path.
    split : str
        A split spec (``"ua"``, ``"last:3"``, ``"temporal:0.1"``, ...).
    model : str
        A registered model name (``"biased-mf"``, ``"popularity"``, ...).
    params : dict
        Hyper-parameters (``random_state`` defaults to ``seed``).
    k : tuple of int
        Cut-offs for ranking metrics.
    seed : int or None
        Seeds the split (where chance enters) and the model.
    min_rating, kcore : optional
        Filters applied before the split: keep ratings >= ``min_rating`` (positives);
        iterative ``kcore`` on users and items.
    metrics : tuple of str or None
        Metric names; None for every metric that applies.
    relevance_threshold : float or None
        A test item is relevant when its rating is >= this; None: every test item.
    load_options : dict
        Column mapping and parsing options for file datasets (see ``load_table``).
    """

    dataset: str = "ml-100k"
    split: str = "ua"
    model: str = "biased-mf"
    params: Mapping[str, Any] = field(default_factory=dict)
    k: tuple[int, ...] = (10,)
    seed: int | None = 42
    min_rating: float | None = None
    kcore: int | None = None
    metrics: tuple[str, ...] | None = None
    relevance_threshold: float | None = None
    load_options: Mapping[str, Any] = field(default_factory=dict)

    _KEYS = (
        "dataset split model params k seed min_rating kcore metrics relevance_threshold"
    ).split()

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], *, where: str = "run") -> RunSpec:
        """Build from a config mapping (a benchmark TOML ``[[runs]]`` table), checking it.

        Raises :class:`ConfigError` naming ``where``, the key and what was expected.
        """
        unknown = sorted(set(raw) - set(cls._KEYS))
        if unknown:
            raise ConfigError(
                f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(cls._KEYS)}"
            )
        if "model" not in raw:
            raise ConfigError(f"{where}: missing key 'model' (e.g. model = \"popularity\")")
        values: dict[str, Any] = {}
        for key in ("dataset", "split", "model"):
            if key in raw:
                if not isinstance(raw[key], str) or not raw[key].strip():
                    raise ConfigError(
                        f"{where}: {key} must be a non-empty string, got {raw[key]!r}"
                    )
                values[key] = raw[key].strip()
        if "params" in raw:
            if not isinstance(raw["params"], Mapping):
                raise ConfigError(
                    f"{where}: params must be a table of name = value, got {raw['params']!r}"
                )
            values["params"] = dict(raw["params"])
        if "k" in raw:
            values["k"] = parse_ks(raw["k"], where=f"{where}: k")
        if "seed" in raw:
            seed = raw["seed"]
            if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
                raise ConfigError(f"{where}: seed must be an integer, got {seed!r}")
            values["seed"] = seed
        for key in ("min_rating", "relevance_threshold"):
            if raw.get(key) is not None:
                v = raw[key]
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise ConfigError(f"{where}: {key} must be a number, got {v!r}")
                values[key] = float(v)
        if raw.get("kcore") is not None:
            if (
                isinstance(raw["kcore"], bool)
                or not isinstance(raw["kcore"], int)
                or raw["kcore"] < 1
            ):
                raise ConfigError(
                    f"{where}: kcore must be a positive integer, got {raw['kcore']!r}"
                )
            values["kcore"] = raw["kcore"]
        if raw.get("metrics") is not None:
            values["metrics"] = parse_metric_names(raw["metrics"], where=f"{where}: metrics")
        return cls(**values)

    def filters(self) -> dict[str, Any]:
        """The filters applied before the split (part of the protocol)."""
        return {"min_rating": self.min_rating, "kcore": self.kcore}

    def protocol(self) -> dict[str, Any]:
        """What makes two runs comparable: dataset, filters, split, seed, k, relevance rule."""
        return {
            "dataset": self.dataset,
            "filters": filter_text(self.min_rating, self.kcore),
            "split": self.split,
            "seed": self.seed,
            "k": ",".join(map(str, self.k)),
            "relevance": relevance_rule(self.relevance_threshold),
        }


def filter_text(min_rating: float | None, kcore: int | None) -> str:
    """Filters in words: ``"none"``, ``"rating>=4"``, ``"rating>=4, kcore=10"``."""
    parts = []
    if min_rating is not None:
        parts.append(f"rating>={min_rating:g}")
    if kcore:
        parts.append(f"kcore={kcore}")
    return ", ".join(parts) or "none"


def parse_ks(value: Any, *, where: str = "--k") -> tuple[int, ...]:
    """``10``, ``"5,10,20"`` or ``[5, 10]`` as a sorted tuple of positive ints (ConfigError)."""
    if isinstance(value, bool):
        items: list[Any] = [value]
    elif isinstance(value, int):
        items = [value]
    elif isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    ks: list[int] = []
    for item in items:
        try:
            if isinstance(item, bool) or isinstance(item, float):
                raise ValueError
            ks.append(int(item))
        except (TypeError, ValueError):
            ks = []
            break
    if not ks or min(ks) < 1:
        raise ConfigError(f"{where} takes positive integers (10, or 5,10,20), got {value!r}")
    return tuple(sorted(set(ks)))


def parse_metric_names(value: Any, *, where: str = "--metrics") -> tuple[str, ...]:
    """Metric names from ``"ndcg,recall@20"`` or a list; each checked (ConfigError)."""
    from .evaluate.metrics import parse_metric

    if isinstance(value, str):
        names = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        names = [v.strip() for v in value if v.strip()]
    else:
        raise ConfigError(f"{where} takes metric names such as ndcg,recall@20, got {value!r}")
    if not names:
        raise ConfigError(
            f"{where} names no metric (e.g. ndcg,recall@20,map_k,rmse), got {value!r}"
        )
    for name in names:
        parse_metric(name)  # raises ConfigError naming the known metrics
    return tuple(names)


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
               if self.compile_seconds >= 0.05 else ""),
            self.result.format(),
        ]  # fmt: skip
        if any("@" in m for m in self.result.metrics):
            lines.append(f"relevant: {spec.extra.get('protocol', {}).get('relevance')}")
        lines += [f"note: {n}" for n in self.notes]
        lines.append(f"run record: {self.path}")
        return "\n".join(lines)


def load_spec_data(spec: RunSpec, *, progress: bool = False) -> Any:
    """The spec's dataset, loaded and filtered (the part a benchmark can share across runs)."""
    from . import split as splits
    from .data import load_dataset

    inter = load_dataset(spec.dataset, progress=progress, **dict(spec.load_options))
    if spec.min_rating is not None:
        inter = splits.min_rating(inter, spec.min_rating)
    if spec.kcore:
        inter = splits.kcore(inter, spec.kcore)
    return inter


def run_spec(
    spec: RunSpec,
    *,
    data: Any = None,
    runs_dir: str | Path | None = "runs",
    show_progress: bool = False,
) -> RunOutcome:
    """Load (unless ``data`` is given, already filtered), split, fit, evaluate, record.

    A cross-validation spec (``cv:5``, ``cv:u``) fits and evaluates every fold; the record's
    metrics are the means over folds, its intervals 95% t-intervals over the fold values,
    and ``extra["folds"]`` keeps each fold's metrics.

    Raises :class:`ConfigError` for an empty test part or a relevance rule that leaves no
    relevant item (never NaN metrics); warns (:class:`SplitDropWarning`) when the split drops
    more than a fifth of its test part as cold rows. ``runs_dir=None`` writes no record.
    """
    import time

    from . import split as splits
    from .models import MODELS

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
    warm_up_quietly(cls)
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
    extra: dict[str, Any] = {
        "filters": spec.filters(),
        "split_report": runs[0][2].report if len(runs) == 1 else [r[2].report for r in runs],
        "seed": spec.seed,
        "protocol": protocol,
        "config_key": config_key(protocol, spec.model, model.get_params()),
    }
    if fold_metrics:
        extra["folds"] = fold_metrics
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
        extra=extra,
    )
    path = Path("-")
    if runs_dir is not None:
        path = save_run(record, runs_dir, per_user=result.per_user)
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

    from . import split as splits
    from .evaluate import evaluate

    if cls.capabilities.uses_validation and sp.valid is None:
        sp = splits.carve_validation(sp, random_state=spec.seed)
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
        warnings.warn(msg, SplitDropWarning, stacklevel=3)
        notes.append(msg)
    model = cls().set_params(**params)
    t0 = time.perf_counter()
    model.fit(sp.train, sp.valid, show_progress=show_progress)
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
    from .data.summary import scale_line

    what = "ratings" if data.ratings is not None else "interactions"
    text = f"{len(data):,} {what}, {data.n_users:,} users, {data.n_items:,} items"
    scale = scale_line(data.stats)
    if scale:
        text += f"; rating scale {scale}"
    return text


def warm_up_quietly(cls: Any) -> None:
    """Compile a model's kernels without logging the warm-up fits as if they were fits."""
    root = logging.getLogger("lensrec")
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        cls.warm_up()
    finally:
        root.setLevel(level)


def config_key(protocol: Mapping[str, Any], model: str, params: Mapping[str, Any]) -> str:
    """A short hash of protocol + model + parameters: identical configurations share it."""
    import hashlib

    blob = json.dumps(jsonable([protocol, model, dict(params)]), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
