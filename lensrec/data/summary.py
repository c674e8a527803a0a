"""A dataset at a glance: counts, density, rating histogram, activity quantiles, time span."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np

from .interactions import Interactions
from .tabular import infer_rating_scale

__all__ = ["describe", "format_summary", "scale_line"]

_SCALE_HOW = {
    "declared": "declared",
    "inferred": "inferred from the data",
    "observed": "the range of the data; no common scale fits",
}

_QUANTILES = (0.0, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)
_MAX_DISTINCT = 20  # more distinct rating values than this are binned
_BINS = 10


def _quantiles(counts: np.ndarray) -> dict[str, float]:
    if counts.size == 0:
        return {}
    qs = np.quantile(counts, _QUANTILES)
    names = ["min", "p25", "median", "p75", "p90", "p99", "max"]
    out = {n: float(q) for n, q in zip(names, qs, strict=True)}
    out["mean"] = float(counts.mean())
    return out


def _histogram(r: np.ndarray) -> list[list[Any]]:
    """``[[value, count], ...]`` for few distinct values, else ``[[low, high, count], ...]`` bins."""
    values, counts = np.unique(r, return_counts=True)
    if values.size <= _MAX_DISTINCT:
        return [[float(v), int(c)] for v, c in zip(values, counts, strict=True)]
    hist, edges = np.histogram(r, bins=_BINS)
    return [[float(edges[k]), float(edges[k + 1]), int(hist[k])] for k in range(_BINS)]


def _iso(ts: int) -> str:
    return _dt.datetime.fromtimestamp(int(ts), _dt.UTC).isoformat(timespec="seconds")


def describe(inter: Interactions) -> dict[str, Any]:
    """Summary statistics of a dataset, as plain JSON-ready Python values.

    Returns
    -------
    dict
        ``name``, ``source``, ``users``, ``items``, ``interactions``, ``ratings`` (count of
        explicit ratings, 0 for implicit data), ``density``, ``rating_mean``,
        ``rating_histogram`` (``[[value, count], ...]``, or ``[[low, high, count], ...]``
        bins when there are more than 20 distinct values), ``user_counts`` and
        ``item_counts`` (min, p25, median, p75, p90, p99, max, mean of interactions per
        user / item), ``time_span`` (first, last as ISO dates, days; None without
        timestamps), ``duplicates_dropped``, ``rows_read``, ``rating_scale`` (``low``,
        ``high``, ``step``, ``source``: ``"declared"``, ``"inferred"`` or ``"observed"``;
        None for implicit data) and ``rating_outliers`` (``count``, and ``line`` and
        ``value`` of the first rating outside an inferred scale; None when there are none).

    Examples
    --------
    >>> inter = Interactions.from_arrays([1, 1, 2], [10, 11, 10], [4.0, 5.0, 4.0])
    >>> d = describe(inter)
    >>> d["users"], d["items"], d["rating_histogram"]
    (2, 2, [[4.0, 2], [5.0, 1]])
    """
    n = len(inter)
    out: dict[str, Any] = {
        "name": inter.name,
        "source": inter.stats.get("source"),
        "users": inter.n_users,
        "items": inter.n_items,
        "interactions": n,
        "ratings": n if inter.ratings is not None else 0,
        "density": float(inter.density),
        "rating_mean": None,
        "rating_histogram": [],
        "user_counts": _quantiles(inter.user_counts()),
        "item_counts": _quantiles(inter.item_counts()),
        "time_span": None,
        "duplicates_dropped": int(inter.stats.get("duplicates_dropped", 0)),
        "rows_read": int(inter.stats.get("rows_read", n)),
    }
    out["rating_scale"] = inter.stats.get("rating_scale")
    out["rating_outliers"] = inter.stats.get("rating_outliers")
    if inter.stats.get("item_info"):
        out["item_info"] = inter.stats["item_info"]
    if inter.ratings is not None and n:
        r = inter.ratings.astype(np.float64)
        out["rating_mean"] = float(r.mean())
        out["rating_histogram"] = _histogram(r)
        if out["rating_scale"] is None:  # built in memory: infer it here (no lines to name)
            guess = infer_rating_scale(r)
            if guess is not None:
                out["rating_scale"] = {**guess.scale.to_dict(), "source": guess.source}
                if guess.outliers.size:
                    out["rating_outliers"] = {"count": int(guess.outliers.size)}
    if inter.timestamps is not None and n:
        lo, hi = int(inter.timestamps.min()), int(inter.timestamps.max())
        out["time_span"] = {
            "first": _iso(lo),
            "last": _iso(hi),
            "days": round((hi - lo) / 86400, 1),
        }
    return out


def format_summary(d: dict[str, Any], *, width: int = 40) -> str:
    """The :func:`describe` dict as text, the rating histogram drawn with ``#`` bars.

    Examples
    --------
    >>> inter = Interactions.from_arrays([1, 1, 2], [10, 11, 10], [4.0, 5.0, 4.0])
    >>> print(format_summary(describe(inter)).splitlines()[-1])
      5    1  ####################
    """
    lines = [
        f"dataset       {d.get('name') or 'unnamed'}"
        + (f"  ({d['source']})" if d.get("source") else ""),
        f"users         {d['users']:,}",
        f"items         {d['items']:,}",
        f"interactions  {d['interactions']:,}" + ("" if d.get("ratings") else "  (implicit)"),
        f"density       {d['density']:.4%}",
    ]
    if d.get("duplicates_dropped"):
        lines.append(
            f"duplicates    {d['duplicates_dropped']:,} dropped of {d.get('rows_read', 0):,} rows read"
        )
    span = d.get("time_span")
    if span:
        lines.append(f"time span     {span['first']} .. {span['last']} ({span['days']:,} days)")
    for key, label in (("user_counts", "per user"), ("item_counts", "per item")):
        q = d.get(key) or {}
        if q:
            lines.append(
                f"{label:<13} min {q['min']:g}  median {q['median']:g}  mean {q['mean']:.1f}  "
                f"p90 {q['p90']:g}  p99 {q['p99']:g}  max {q['max']:g}"
            )
    info = d.get("item_info")
    if info:
        lines.append(
            f"item info     {info['matched']:,} of the items have a title ({info['source']}, "
            f"{info['rows']:,} rows)"
        )
    scale = scale_line(d)
    if scale:
        lines.append(f"rating scale  {scale}")
    hist = d.get("rating_histogram") or []
    if hist:
        lines.append(f"ratings       mean {d['rating_mean']:.3f}")
        counts = [row[-1] for row in hist]
        top = max(counts) or 1
        cw = max(len(f"{c:,}") for c in counts)
        for row in hist:
            label = f"{row[0]:g}" if len(row) == 2 else f"{row[0]:.3g}-{row[1]:.3g}"
            bar = "#" * max(1 if row[-1] else 0, round(width * row[-1] / top))
            lines.append(f"  {label:<4} {row[-1]:>{cw},}  {bar}")
    return "\n".join(lines)


def scale_line(stats: dict[str, Any]) -> str | None:
    """The rating scale of a load, for people: ``"1..5 in steps of 1 (inferred from the data;
    1 rating outside it, first at line 4: 7)"``; None when there is no scale (implicit data).

    ``stats`` is ``Interactions.stats`` or a :func:`describe` dict (``rating_scale`` and
    ``rating_outliers`` keys).

    Examples
    --------
    >>> scale_line({"rating_scale": {"low": 1.0, "high": 5.0, "step": 1.0, "source": "inferred"},
    ...             "rating_outliers": {"count": 1, "line": 4, "value": 7.0}})
    '1..5 in steps of 1 (inferred from the data; 1 rating outside it, first at line 4: 7)'
    """
    sc = stats.get("rating_scale")
    if not sc:
        return None
    fmt = "{:g}".format
    text = f"{fmt(sc['low'])}..{fmt(sc['high'])}"
    if sc.get("step"):
        text += f" in steps of {fmt(sc['step'])}"
    how = _SCALE_HOW.get(sc.get("source", ""), sc.get("source", ""))
    out = stats.get("rating_outliers") or {}
    if out.get("count"):
        n = int(out["count"])
        how += f"; {n:,} rating{'s' if n != 1 else ''} outside it"
        if out.get("line") is not None:
            how += f", first at line {out['line']}: {fmt(out['value'])}"
    return f"{text} ({how})"
