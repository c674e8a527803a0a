"""Confidence intervals and paired comparisons over per-user metric values.

Everything here resamples users (the unit of evaluation), with a seeded
:class:`numpy.random.Generator`: the same inputs and ``random_state`` give the same interval.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from .._config import rng
from ..types import RandomState

__all__ = ["bootstrap_ci", "bootstrap_cis", "paired_test", "PairedTest"]

#: drawn indices per resampling chunk (resamples x users): ~32 MB of int32, 64 MB gathered
_CHUNK_ENTRIES = 1 << 23


def _check_level(level: float) -> float:
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    return float(level)


def _boot_means(
    values: np.ndarray,
    weights: np.ndarray | None,
    n_boot: int,
    gen: np.random.Generator,
) -> np.ndarray:
    """Means of ``n_boot`` resamples of the columns of ``values`` ``[m, n]`` -> ``[m, n_boot]``.

    All ``m`` rows share the same resampled users (weighted means when ``weights`` [n] is
    given). Indices are drawn in chunks of at most ``_CHUNK_ENTRIES``.
    """
    m, n = values.shape
    out = np.empty((m, n_boot), dtype=np.float64)
    chunk = max(1, _CHUNK_ENTRIES // max(n, 1))
    itype = np.int32 if n < np.iinfo(np.int32).max else np.int64
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = gen.integers(0, n, size=(stop - start, n), dtype=itype)
        if weights is None:
            for j in range(m):
                out[j, start:stop] = values[j][idx].mean(axis=1)
        else:
            w = weights[idx]
            w_sum = w.sum(axis=1)
            for j in range(m):
                out[j, start:stop] = (values[j][idx] * w).sum(axis=1) / w_sum
    return out


def _percentile_ci(means: np.ndarray, level: float) -> np.ndarray:
    """``[m, 2]`` percentile intervals from bootstrap means ``[m, n_boot]``."""
    alpha = (1.0 - level) / 2.0
    return np.quantile(means, [alpha, 1.0 - alpha], axis=1).T


def bootstrap_cis(
    values: npt.ArrayLike,
    level: float = 0.95,
    n_boot: int = 1000,
    random_state: RandomState = 0,
) -> np.ndarray:
    """Intervals for several metrics over the same users, from one set of resamples.

    ``values`` is ``[m, n]`` (one row per metric, one column per user, no NaN: rows with a NaN
    fall back to :func:`bootstrap_ci` separately). Returns ``[m, 2]`` (lo, hi). Cheaper than
    ``m`` calls when ``n`` is large, and the intervals are jointly resampled.
    """
    level = _check_level(level)
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot!r}")
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    m, n = v.shape
    out = np.full((m, 2), np.nan)
    finite = ~np.isnan(v).any(axis=1)
    if n >= 2 and finite.any():
        gen = rng(random_state)
        out[finite] = _percentile_ci(_boot_means(v[finite], None, int(n_boot), gen), level)
    elif n == 1:
        out[:] = v[:, [0, 0]]
    for j in np.flatnonzero(~finite):
        out[j] = bootstrap_ci(v[j], level, n_boot, random_state)
    return out


def bootstrap_ci(
    values: npt.ArrayLike,
    level: float = 0.95,
    n_boot: int = 1000,
    random_state: RandomState = 0,
    *,
    weights: npt.ArrayLike | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values``.

    Parameters
    ----------
    values : float array
        One value per user; NaNs are dropped (with their weights).
    level : float, default 0.95
        Coverage of the interval.
    n_boot : int, default 1000
        Number of resamples; drawn in chunks so the index matrix stays under ~64 MB.
    random_state : None, int or Generator, default 0
        Seed of the resampling.
    weights : float array, optional
        Resample ``(value, weight)`` pairs and take the weighted mean
        ``sum(w * v) / sum(w)``, e.g. per-user mean squared error weighted by the number of
        ratings gives an interval for the global MSE.

    Returns
    -------
    (lo, hi) : floats
        NaN, NaN when no finite value is left; ``(v, v)`` for a single value.

    Examples
    --------
    >>> lo, hi = bootstrap_ci([0.0, 1.0] * 50, random_state=0)
    >>> 0.35 < lo < 0.5 < hi < 0.65
    True
    """
    level = _check_level(level)
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot!r}")
    v = np.asarray(values, dtype=np.float64).ravel()
    w = None
    keep = ~np.isnan(v)
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64).ravel()
        if w.shape != v.shape:
            raise ValueError(f"weights has {w.size} entries but values has {v.size}")
        keep &= ~np.isnan(w)
        w = w[keep]
    v = v[keep]
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size == 1:
        return float(v[0]), float(v[0])
    gen = rng(random_state)
    means = _boot_means(v[None, :], w, int(n_boot), gen)
    lo, hi = _percentile_ci(means, level)[0]
    return float(lo), float(hi)


class PairedTest(NamedTuple):
    """Comparison of two models on the same users (``a - b``).

    ``mean_diff``: mean of the paired differences; ``p_value``: two-sided paired t-test;
    ``ci``: percentile bootstrap interval of ``mean_diff``; ``n``: pairs used (both finite).
    """

    mean_diff: float
    p_value: float
    ci: tuple[float, float]
    n: int


def paired_test(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    level: float = 0.95,
    n_boot: int = 1000,
    random_state: RandomState = 0,
) -> PairedTest:
    """Compare per-user values of two models evaluated on the same users, row by row.

    Pairs where either value is NaN are dropped. The p-value is scipy's two-sided paired
    t-test (:func:`scipy.stats.ttest_rel`); NaN when fewer than two pairs remain or every
    difference is equal. The interval is a bootstrap of the mean difference over users.

    Examples
    --------
    >>> r = paired_test([0.5, 0.6, 0.7, 0.8], [0.4, 0.5, 0.5, 0.7])
    >>> round(r.mean_diff, 3), r.n
    (0.125, 4)
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(
            f"a and b must hold one value per user for the same users; got {x.size} and {y.size}"
        )
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    n = int(x.size)
    if n == 0:
        return PairedTest(float("nan"), float("nan"), (float("nan"), float("nan")), 0)
    d = x - y
    if n < 2 or np.all(d == d[0]):
        p = float("nan")
    else:
        from scipy import stats  # imported here: scipy.stats costs ~0.4 s to import

        p = float(stats.ttest_rel(x, y).pvalue)
    ci = bootstrap_ci(d, level=level, n_boot=n_boot, random_state=random_state)
    return PairedTest(float(d.mean()), p, ci, n)
