"""The report's figures: learning curves, embedding maps (UMAP, t-SNE), metric against k,
tuning history and parameter importance.

Each function returns a matplotlib ``Figure`` drawn on the Agg canvas (no pyplot, nothing on
screen); :func:`lensrec.plots._png` turns it into PNG bytes. Figures label what they show
directly (series names at the line ends, genre names at their clusters, axis labels in the
series' colours), so a reader does not hunt for a legend. matplotlib is the ``plots`` extra;
UMAP needs ``umap-learn`` and t-SNE scikit-learn (which umap-learn brings); each raises
:class:`~lensrec.errors.MissingExtraError` naming the extra when it is missing.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import math
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import MissingExtraError
from ..plots import _figure

__all__ = [
    "learning_curves",
    "embed_2d",
    "item_map",
    "user_map",
    "metric_vs_k",
    "tuning_history",
    "importance_bars",
    "main_genres",
    "GENRE_PRIORITY",
    "umap_ready_when",
]

_log = logging.getLogger(__name__)

#: a film's main genre is the first of its genres in this order (distinctive genres first:
#: "Star Wars" is Sci-Fi rather than Action, "Toy Story" Animation rather than Comedy)
GENRE_PRIORITY = (
    "Animation", "Children's", "Horror", "Sci-Fi", "Documentary", "Western", "Musical",
    "Film-Noir", "War", "Mystery", "Fantasy", "Crime", "Romance", "Thriller", "Action",
    "Adventure", "Comedy", "Drama",
)  # fmt: skip

_PALETTE = (
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#7f7f7f",
)  # fmt: skip


def main_genres(genres: Sequence[Sequence[str] | None]) -> list[str]:
    """Each item's main genre (see :data:`GENRE_PRIORITY`); ``"unknown"`` when it has none."""
    rank = {g: i for i, g in enumerate(GENRE_PRIORITY)}
    out = []
    for gs in genres:
        gs = [g for g in (gs or []) if g and g != "unknown"]
        out.append(min(gs, key=lambda g: rank.get(g, len(rank))) if gs else "unknown")
    return out


# --- learning curves ---------------------------------------------------------------------
def learning_curves(histories: Mapping[str, Mapping[str, Sequence[float]]]) -> Any:
    """One panel per model: train loss (left axis, blue) and the validation metric (right
    axis, orange) against the epoch; the kept (best) epoch is marked."""
    items = [(m, h) for m, h in histories.items() if any(len(v) for v in h.values())]
    if not items:
        raise ValueError("learning_curves needs at least one model with a history")
    cols = min(3, len(items))
    rows = math.ceil(len(items) / cols)
    fig = _figure(4.2 * cols, 3.0 * rows)
    for n, (model, hist) in enumerate(items):
        ax = fig.add_subplot(rows, cols, n + 1)
        ax.set_title(model)
        ax.set_xlabel("epoch")
        train = [k for k in hist if k == "train_loss" and len(hist[k])]
        valid = [k for k in hist if k.startswith("valid_") and len(hist[k])]
        if train:
            y = np.asarray(hist[train[0]], float)
            ax.plot(np.arange(1, y.size + 1), y, color="#1f77b4")
            ax.set_ylabel("train loss", color="#1f77b4")
        if valid:
            name = valid[0]
            y = np.asarray(hist[name], float)
            vx = ax.twinx() if train else ax
            x = np.arange(1, y.size + 1)
            vx.plot(x, y, color="#ff7f0e")
            best = (
                int(np.nanargmin(y)) if "rmse" in name or "loss" in name else int(np.nanargmax(y))
            )
            vx.scatter([x[best]], [y[best]], s=40, facecolors="none", edgecolors="black", zorder=3)
            vx.annotate(f"kept: epoch {x[best]}", (x[best], y[best]), textcoords="offset points",
                        xytext=(4, 6), fontsize=7)  # fmt: skip
            vx.set_ylabel(name.replace("_", " "), color="#ff7f0e")
    return fig


# --- embedding maps ----------------------------------------------------------------------
_UMAP_CACHED = False
#: up to this many points UMAP gets the cosine distance matrix (float32, 64 MiB at the most)
_PRECOMPUTED_MAX = 4096
#: called once before umap-learn is first used (``lensrec benchmark`` waits there for the
#: worker that compiles it, see :func:`umap_ready_when`)
_UMAP_WAIT: Callable[[], None] | None = None


@contextlib.contextmanager
def umap_ready_when(wait: Callable[[], None]) -> Iterator[None]:
    """Within this block, call ``wait()`` before umap-learn is first used: the report draws
    its other figures while another process is still compiling UMAP's functions."""
    global _UMAP_WAIT
    _UMAP_WAIT = wait
    try:
        yield
    finally:
        _UMAP_WAIT = None


@contextlib.contextmanager
def _lazy_signatures(prefixes: tuple[str, ...]) -> Iterator[None]:
    """While modules named ``prefixes`` are imported, their numba functions declared with
    explicit signatures compile when first called instead of at import.

    pynndescent declares dozens of such functions (random-projection trees, sparse and
    quantised metrics); numba compiles them all while ``import umap`` runs, about 13 s of a
    first run on 2 cores, although a report's maps call none of them. Dropping the
    signature only defers the compile: a function that is called is compiled for the
    types it is called with (and cached, see :func:`_umap`).
    """
    import numba

    saved = numba.njit, numba.jit

    def lazy(decorate: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(decorate)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if args and not callable(args[0]) and caller.startswith(prefixes):
                args = args[1:]  # the signature (or a list of them): compile on first call
            return decorate(*args, **kwargs)

        return wrapper

    numba.njit, numba.jit = lazy(saved[0]), lazy(saved[1])
    try:
        yield
    finally:
        numba.njit, numba.jit = saved


def _umap() -> Any:
    """``umap`` with its numba functions cached on disk.

    umap-learn and pynndescent jit most of their functions without ``cache=True``, so every
    process compiled them again: about 18 s of every report on 2 cores, more than the maps
    themselves. numba's :meth:`Dispatcher.enable_caching` gives them the on-disk cache
    lensrec's own kernels have (beside their sources, or under ``NUMBA_CACHE_DIR``); a
    function numba cannot cache (dynamic globals) is compiled as before. The first import
    defers the functions pynndescent would compile eagerly (:func:`_lazy_signatures`).
    """
    global _UMAP_CACHED
    if _UMAP_WAIT is not None:
        _UMAP_WAIT()
    try:
        if "umap" in sys.modules:
            import umap
        else:
            with _lazy_signatures(("umap", "pynndescent")):
                import umap
    except ImportError:
        raise MissingExtraError("UMAP maps", "plots", "umap-learn") from None
    if not _UMAP_CACHED:
        from numba.core.dispatcher import Dispatcher

        for name, module in list(sys.modules.items()):
            if module is None or not name.startswith(("umap", "pynndescent")):
                continue
            for fn in list(vars(module).values()):
                cache = getattr(fn, "_cache", None)
                if isinstance(fn, Dispatcher) and type(cache).__name__ == "NullCache":
                    try:
                        fn.enable_caching()
                    except Exception as exc:  # noqa: BLE001 - compiled each time, as before
                        _log.debug("umap: %s not cached: %s", name, exc)
        _UMAP_CACHED = True
    return umap


def warm_umap() -> None:
    """Compile (or load from the cache) what a report's UMAP maps run, on tiny data: run by
    ``lensrec benchmark``'s kernel-compiling workers so the report finds it cached."""
    x = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32)
    embed_2d(x, "umap")


#: scikit-learn renamed ``n_iter`` to ``max_iter`` in 1.5 (and removed ``n_iter`` in 1.7)
_TSNE_ITER = "max_iter"


def embed_2d(vectors: np.ndarray, method: str, *, random_state: int = 0) -> np.ndarray:
    """``[n, d]`` vectors to ``[n, 2]`` by ``"umap"`` (cosine metric) or ``"tsne"``."""
    x = np.asarray(vectors, dtype=np.float32)
    if method == "umap":
        if x.shape[0] <= _PRECOMPUTED_MAX:
            # the same cosine distances, computed at once: umap-learn's small-data path
            # would call a jitted metric pair by pair through scikit-learn (seconds per map)
            unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
            dist = np.clip(1.0 - unit @ unit.T, 0.0, 2.0)
            np.fill_diagonal(dist, 0.0)
            x, metric = dist, "precomputed"
        else:
            metric = "cosine"
        # 200 layout epochs, umap-learn's own choice above 10,000 points (500 below it):
        # the maps' clusters are settled by then, at 2/5 of the time
        reducer = _umap().UMAP(n_neighbors=15, min_dist=0.1, metric=metric, n_epochs=200,
                               random_state=random_state, n_jobs=1)  # fmt: skip
        with warnings.catch_warnings():  # "inverse_transform will be unavailable": unused
            warnings.filterwarnings("ignore", "using precomputed metric", UserWarning)
            return np.asarray(reducer.fit_transform(x), dtype=np.float64)
    if method == "tsne":
        try:
            from sklearn.manifold import TSNE
        except ImportError:
            raise MissingExtraError("t-SNE maps", "plots", "scikit-learn") from None
        global _TSNE_ITER
        if "max_iter" not in inspect.signature(TSNE).parameters:
            _TSNE_ITER = "n_iter"
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.maximum(norms, 1e-12)
        perplexity = float(min(30, max(2, (x.shape[0] - 1) // 3)))
        # 500 iterations (250 of them exaggerated) instead of 1000: a few thousand points
        # have settled by then, at half the time
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=random_state,
                    **{_TSNE_ITER: 500})  # fmt: skip
        return np.asarray(tsne.fit_transform(x), dtype=np.float64)
    raise ValueError(f"method must be umap or tsne, got {method!r}")


def item_map(
    xy: np.ndarray,
    genres: Sequence[str],
    titles: Sequence[str],
    label: Mapping[int, str],
    *,
    title: str,
    max_genres: int = 8,
) -> Any:
    """Items as points coloured by main genre; each genre's name written at its points'
    median in its colour; the items in ``label`` (row -> short name) marked and named."""
    fig = _figure(8.5, 6.5)
    ax = fig.add_subplot()
    genres = list(genres)
    counts: dict[str, int] = {}
    for g in genres:
        counts[g] = counts.get(g, 0) + 1
    top = [g for g, _ in sorted(counts.items(), key=lambda kv: -kv[1]) if g != "unknown"]
    top = top[:max_genres]
    colour = {g: _PALETTE[i % len(_PALETTE)] for i, g in enumerate(top)}
    arr = np.asarray(genres)
    other = ~np.isin(arr, top)
    ax.scatter(xy[other, 0], xy[other, 1], s=6, c="#cccccc", linewidths=0)
    for n, g in enumerate(top):
        m = arr == g
        ax.scatter(xy[m, 0], xy[m, 1], s=9, c=colour[g], linewidths=0, alpha=0.8)
        # the key is the genre names themselves, written in their colours beside the map
        ax.text(1.02, 0.98 - 0.06 * n, f"{g} ({int(m.sum())})", color=colour[g], fontsize=9,
                fontweight="bold", transform=ax.transAxes, va="top")  # fmt: skip
    ax.text(1.02, 0.98 - 0.06 * len(top), "other genres", color="#999999", fontsize=9,
            transform=ax.transAxes, va="top")  # fmt: skip
    # labels fan out so that neighbours (the Star Wars films) stay readable
    placed: list[tuple[float, float]] = []
    span = float(np.ptp(xy[:, 1])) or 1.0
    for row, name in label.items():
        x, y = float(xy[row, 0]), float(xy[row, 1])
        crowd = sum(abs(x - px) < 0.08 * span and abs(y - py) < 0.08 * span for px, py in placed)
        placed.append((x, y))
        ax.scatter([x], [y], s=50, facecolors="none", edgecolors="black")
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(8, 6 + 13 * crowd),
                    fontsize=8, arrowprops={"arrowstyle": "-", "lw": 0.5},
                    bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 0.5})  # fmt: skip
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def user_map(xy: np.ndarray, activity: np.ndarray, *, title: str) -> Any:
    """Users as points coloured by their number of ratings (log scale, labelled colour bar)."""
    from matplotlib.colors import LogNorm

    fig = _figure(7.0, 6.0)
    ax = fig.add_subplot()
    act = np.maximum(np.asarray(activity, float), 1)
    order = np.argsort(act)
    sc = ax.scatter(xy[order, 0], xy[order, 1], c=act[order], s=8, cmap="viridis",
                    norm=LogNorm(vmin=act.min(), vmax=act.max()), linewidths=0)  # fmt: skip
    bar = fig.colorbar(sc, ax=ax)
    bar.set_label("ratings by the user (log scale)")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


# --- metric against k --------------------------------------------------------------------
def metric_vs_k(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]], metric: str) -> Any:
    """One line per model (``model -> (ks, values)``), each named at its right end."""
    fig = _figure(7.0, 4.5)
    ax = fig.add_subplot()
    ends = []
    for n, (model, (ks, values)) in enumerate(curves.items()):
        c = _PALETTE[n % len(_PALETTE)]
        ax.plot(ks, values, marker="o", markersize=3, color=c)
        ends.append((float(values[-1]), model, c, ks[-1]))
    # spread the end labels so they do not overlap
    ends.sort()
    lo, hi = ax.get_ylim()
    gap = (hi - lo) * 0.045
    last = -math.inf
    for y, model, c, k in ends:
        y_text = max(y, last + gap)
        ax.annotate(model, (k, y), xytext=(k * 1.08, y_text), color=c, fontsize=8, va="center",
                    arrowprops={"arrowstyle": "-", "lw": 0.4, "color": c})  # fmt: skip
        last = y_text
    ax.set_xscale("log")
    ks_all = sorted({int(k) for ks, _ in curves.values() for k in ks})
    ax.set_xticks(ks_all, [str(k) for k in ks_all])
    ax.set_xlim(min(ks_all) * 0.9, max(ks_all) * 2.2)
    ax.set_xlabel("k (list length, log scale)")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} against k")
    ax.grid(alpha=0.3)
    return fig


# --- tuning ------------------------------------------------------------------------------
def tuning_history(history: Sequence[Mapping[str, Any]], metric: str, direction: str) -> Any:
    """Each trial's validation value (dots), the best so far (line), pruned trials as
    crosses on the lower edge."""
    fig = _figure(6.4, 3.8)
    ax = fig.add_subplot()
    done = [(h["n"] + 1, h["value"]) for h in history if h.get("state") == "complete"
            and h.get("value") is not None]  # fmt: skip
    if done:
        x, y = np.array(done, dtype=float).T
        order = np.argsort(x)
        x, y = x[order], y[order]
        ax.scatter(x, y, s=14, color="#1f77b4", label="trial")
        best = np.minimum.accumulate(y) if direction == "minimize" else np.maximum.accumulate(y)
        ax.step(x, best, where="post", color="#d62728")
        ax.annotate("best so far", (x[-1], best[-1]), xytext=(-60, 10),
                    textcoords="offset points", color="#d62728", fontsize=8)  # fmt: skip
    pruned = [h["n"] + 1 for h in history if h.get("state") == "pruned"]
    if pruned:
        lo, _ = ax.get_ylim()
        ax.scatter(pruned, [lo] * len(pruned), marker="x", color="#7f7f7f", clip_on=False)
        ax.annotate("x: pruned", (pruned[0], lo), xytext=(2, 6), textcoords="offset points",
                    fontsize=7, color="#7f7f7f")  # fmt: skip
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    return fig


def importance_bars(importances: Mapping[str, float]) -> Any:
    """Horizontal bars, most important parameter on top, values written on the bars."""
    names = list(importances)[::-1]
    vals = [float(importances[n]) for n in names]
    fig = _figure(6.0, 0.45 * len(names) + 1.2)
    ax = fig.add_subplot()
    ax.barh(names, vals, color="#3b6ea5")
    for i, v in enumerate(vals):
        ax.text(v, i, f" {v:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, max(vals + [0.01]) * 1.2)
    ax.set_xlabel("importance (fANOVA share of the validation metric's variance)")
    return fig
