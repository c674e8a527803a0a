"""Exploratory plots of an Interactions table and training curves, as PNG files.

matplotlib is an extra (``pip install 'lensrec[plots]'``, from a clone
``pip install -e '.[plots]'``), imported only when a plot is drawn; without it the functions
raise :class:`~lensrec.errors.MissingExtraError` (a ``ConfigError``) naming both commands.
Figures are drawn with the Agg canvas directly (``matplotlib.figure.Figure`` +
``FigureCanvasAgg``): no pyplot, no global backend switch, nothing opened on screen. Every
figure is drawn in memory first and each file is written atomically (:mod:`lensrec._io`),
so a bad output path fails before any file is written and a failure never leaves half a PNG.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_write_bytes
from .data.interactions import Interactions
from .errors import MissingExtraError

__all__ = ["eda_figures", "eda_plots", "learning_curve"]

_log = logging.getLogger(__name__)


def _require_matplotlib() -> None:
    """Raise :class:`MissingExtraError` naming the install command when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingExtraError("lensrec plots", "plots", "matplotlib") from None


def _figure(width: float = 6.4, height: float = 4.0) -> Any:
    _require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _write_all(pngs: Mapping[Path, bytes], what: str) -> list[Path]:
    """Write finished PNGs, each atomically; the first write checks the directory."""
    out = []
    for path, data in pngs.items():
        atomic_write_bytes(path, data, what=what)
        _log.debug("wrote %s", path)
        out.append(path)
    return out


def count_ticks(lo: int, hi: int) -> list[int]:
    """Tick positions for a log axis from ``lo`` to ``hi``: both ends plus the 1-2-5 values
    between them that are not crowded against an end (within a factor 1.25)."""
    if hi <= lo:
        return [lo]
    ticks = [lo]
    for decade in range(int(math.log10(max(lo, 1))), int(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10**decade
            if lo * 1.25 <= v <= hi / 1.25:
                ticks.append(v)
    return [*ticks, hi]


def _count_histogram(counts: np.ndarray, what: str, per: str, title: str) -> Any:
    """Histogram of per-user (per-item) counts on log-spaced bins with log axes.

    The x axis starts at the smallest count in the data (not at 1) and ends at the largest;
    its ticks are labelled with plain numbers, those two ends included.
    """
    from matplotlib.ticker import FuncFormatter, NullFormatter, NullLocator

    fig = _figure()
    ax = fig.add_subplot()
    counts = counts[counts > 0]
    if counts.size:
        lo, hi = int(counts.min()), int(counts.max())
        edges = np.geomspace(lo, hi + 1, num=min(50, hi - lo + 2))
        bins = np.unique(np.round(edges).astype(np.int64))
        if bins.size < 2:
            bins = np.array([lo, lo + 1])
        ax.hist(counts, bins=bins, color="#3b6ea5", edgecolor="white", linewidth=0.3)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi + 1)
        ticks = count_ticks(lo, hi)
        ax.set_xticks(ticks, [f"{t:,}" for t in ticks])  # after the log scale
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        med = float(np.median(counts))
        ax.axvline(med, color="#c0392b", linestyle="--", linewidth=1, label=f"median {med:g}")
        ax.legend(frameon=False)
    ax.set_xlabel(f"{what} per {per} (log scale, from the smallest count)")
    ax.set_ylabel(f"{per}s (log scale)")
    ax.set_title(title)
    return fig


def eda_figures(inter: Interactions) -> dict[str, Any]:
    """The exploratory figures of ``inter`` (matplotlib ``Figure`` objects) by file name.

    * ``ratings_per_user.png``: histogram of interactions per user (log-log), the x axis from
      the smallest to the largest count with labelled ticks;
    * ``ratings_per_item.png``: the same per item (the popularity long tail);
    * ``rating_distribution.png``: one bar per distinct rating value, with its share;
      skipped for implicit data (no ratings).

    Raises
    ------
    ConfigError
        When matplotlib is missing (the message names the install command).
    """
    _require_matplotlib()  # before any work
    name = inter.name or "interactions"
    what = "ratings" if inter.has_ratings else "interactions"
    figs = {
        "ratings_per_user.png": _count_histogram(
            inter.user_counts(), what, "user", f"{name}: {what} per user ({inter.n_users:,} users)"
        ),
        "ratings_per_item.png": _count_histogram(
            inter.item_counts(), what, "item", f"{name}: {what} per item ({inter.n_items:,} items)"
        ),
    }
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
        figs["rating_distribution.png"] = fig
    else:
        _log.info("rating distribution skipped: %s has no ratings", name)
    return figs


def eda_plots(inter: Interactions, out_dir: str | Path) -> list[Path]:
    """Write the exploratory plots of ``inter`` (:func:`eda_figures`) to ``out_dir`` as PNG
    files and return their paths.

    All figures are drawn before the first file is written; each file is written atomically.

    Raises
    ------
    ConfigError
        When matplotlib is missing (naming the install command), or ``out_dir`` cannot be
        used: a file where the directory should be, a read-only or otherwise unwritable
        directory (nothing is written then).
    """
    out = Path(out_dir)
    pngs = {out / fname: _png(fig) for fname, fig in eda_figures(inter).items()}
    return _write_all(pngs, "the EDA output directory")


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
    ConfigError
        When matplotlib is missing, or ``path`` cannot be written.
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
    return _write_all({Path(path): _png(fig)}, "the learning-curve file")[0]


def _lower_better(label: str) -> bool:
    low = label.lower()
    return any(word in low for word in ("loss", "rmse", "mae", "mse", "error"))
