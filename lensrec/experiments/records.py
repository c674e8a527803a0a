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

from .._io import atomic_write, jsonable
from ..errors import ConfigError, LensrecWarning

__all__ = [
    "RunRecord",
    "save_run",
    "load_runs",
    "load_per_user",
    "package_versions",
    "git_commit",
]

_log = logging.getLogger(__name__)

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
