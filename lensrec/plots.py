"""Exploratory plots of an Interactions table and training curves, as PNG files.

matplotlib is an extra (``pip install lensrec[plots]``), imported only when a plot is drawn.
Figures are drawn with the Agg canvas directly (``matplotlib.figure.Figure`` +
``FigureCanvasAgg``): no pyplot, no global backend switch, nothing opened on screen.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .data.interactions import Interactions

__all__ = ["eda_plots", "learning_curve"]

_log = logging.getLogger(__name__)


def _figure(width: float = 6.4, height: float = 4.0) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "lensrec plots need matplotlib, which is not installed; install it with: pip install lensrec[plots]"
        ) from None
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    _log.debug("wrote %s", path)
    return path


def _count_histogram(counts: np.ndarray, what: str, per: str, path: Path, title: str) -> Path:
    """Histogram of per-user (per-item) counts on log-spaced bins with a log y axis."""
    fig = _figure()
    ax = fig.add_subplot()
    counts = counts[counts > 0]
    if counts.size:
        hi = max(int(counts.max()), 2)
        bins = np.unique(np.geomspace(1, hi + 1, num=min(50, hi + 1)).astype(np.int64))
        if bins.size < 2:
            bins = np.array([1, 2])
        ax.hist(counts, bins=bins, color="#3b6ea5", edgecolor="white", linewidth=0.3)
        ax.set_xscale("log")
        ax.set_yscale("log")
        med = float(np.median(counts))
        ax.axvline(med, color="#c0392b", linestyle="--", linewidth=1, label=f"median {med:g}")
        ax.legend(frameon=False)
    ax.set_xlabel(f"{what} per {per} (log scale)")
    ax.set_ylabel(f"{per}s (log scale)")
    ax.set_title(title)
    return _save(fig, path)


def eda_plots(inter: Interactions, out_dir: str | Path) -> list[Path]:
    """Write the exploratory plots of ``inter`` to ``out_dir`` and return their paths.

    * ``ratings_per_user.png``: histogram of interactions per user (log-log);
    * ``ratings_per_item.png``: the same per item (the popularity long tail);
    * ``rating_distribution.png``: one bar per distinct rating value, with its share;
      skipped for implicit data (no ratings).

    Raises
    ------
    ImportError
        When matplotlib is missing (the message names ``pip install lensrec[plots]``).
    """
    out = Path(out_dir)
    name = inter.name or "interactions"
    what = "ratings" if inter.has_ratings else "interactions"
    paths = [
        _count_histogram(
            inter.user_counts(),
            what,
            "user",
            out / "ratings_per_user.png",
            f"{name}: {what} per user ({inter.n_users:,} users)",
        ),
        _count_histogram(
            inter.item_counts(),
            what,
            "item",
            out / "ratings_per_item.png",
            f"{name}: {what} per item ({inter.n_items:,} items)",
        ),
    ]
    if inter.ratings is not None and len(inter):
        values, counts = np.unique(inter.ratings, return_counts=True)
        fig = _figure()
        ax = fig.add_subplot()
        labels = [f"{v:g}" for v in values.tolist()]
        bars = ax.bar(labels, counts, color="#3b6ea5")
        total = counts.sum()
        for bar, c in zip(bars, counts.tolist(), strict=True):
            ax.annotate(
                f"{c / total:.0%}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        ax.set_xlabel("rating")
        ax.set_ylabel("ratings")
        ax.set_title(f"{name}: rating distribution (mean {float(inter.ratings.mean()):.2f})")
        paths.append(_save(fig, out / "rating_distribution.png"))
    else:
        _log.info("rating distribution skipped: %s has no ratings", name)
    return paths


def learning_curve(
    history: Mapping[str, Sequence[float]],
    path: str | Path,
    *,
    title: str = "learning curve",
    xlabel: str = "epoch",
) -> Path:
    """Plot each named series of ``history`` (e.g. ``{"train_rmse": [...], "valid_rmse": [...]}``)
    against its epoch number (1, 2, ...) and write a PNG to ``path``.

    Raises
    ------
    ValueError
        When ``history`` has no non-empty series.
    """
    series = {str(k): np.asarray(v, dtype=np.float64) for k, v in history.items() if len(v)}
    if not series:
        raise ValueError("learning_curve needs at least one non-empty series in history")
    fig = _figure()
    ax = fig.add_subplot()
    for label, values in series.items():
        x = np.arange(1, values.size + 1)
        ax.plot(x, values, marker="o" if values.size <= 30 else None, markersize=3, label=label)
        if np.isfinite(values).any():
            best = int(np.nanargmin(values)) if _lower_better(label) else int(np.nanargmax(values))
            ax.scatter(
                [x[best]], [values[best]], s=40, facecolors="none", edgecolors="black", zorder=3
            )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("value")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    return _save(fig, Path(path))


def _lower_better(label: str) -> bool:
    low = label.lower()
    return any(word in low for word in ("loss", "rmse", "mae", "mse", "error"))
