"""Bootstrap intervals and the paired test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from lensrec.evaluate.stats import bootstrap_ci, bootstrap_cis, paired_test


def test_ci_contains_mean_and_shrinks_with_n(rng: np.random.Generator) -> None:
    widths = []
    for n in (50, 500, 5000):
        v = rng.random(n)
        lo, hi = bootstrap_ci(v, random_state=1)
        assert lo < v.mean() < hi
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]
    # the width of a 95% interval of a mean of U(0,1) is about 2 * 1.96 * sqrt(1/12 / n):
    # n = 5000 -> 0.016; the bootstrap should be within 20% of it
    assert widths[2] == pytest.approx(2 * 1.96 * math.sqrt(1 / 12 / 5000), rel=0.2)


def test_ci_level_and_seed() -> None:
    v = np.arange(200, dtype=float)
    lo90, hi90 = bootstrap_ci(v, level=0.90)
    lo99, hi99 = bootstrap_ci(v, level=0.99)
    assert lo99 < lo90 < hi90 < hi99
    assert bootstrap_ci(v, random_state=3) == bootstrap_ci(v, random_state=3)
    assert bootstrap_ci(v, random_state=3) != bootstrap_ci(v, random_state=4)
    with pytest.raises(ValueError):
        bootstrap_ci(v, level=1.5)
    with pytest.raises(ValueError):
        bootstrap_ci(v, n_boot=0)


def test_ci_drops_nan_and_degenerate_inputs() -> None:
    assert bootstrap_ci([2.0, np.nan]) == (2.0, 2.0)
    lo, hi = bootstrap_ci([np.nan, np.nan])
    assert math.isnan(lo) and math.isnan(hi)
    assert bootstrap_ci([3.0] * 10) == (3.0, 3.0)
    # NaNs dropped: same interval as without them
    v = np.array([0.1, 0.5, 0.9, 0.3, 0.7])
    assert bootstrap_ci(np.r_[v, np.nan, np.nan], random_state=5) == bootstrap_ci(v, random_state=5)


def test_ci_chunking_does_not_change_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    from lensrec.evaluate import stats

    v = np.random.default_rng(0).random(300)
    full = bootstrap_ci(v, n_boot=400, random_state=9)
    # 300 users per resample, 1000 entries per chunk -> chunks of 3 resamples
    monkeypatch.setattr(stats, "_CHUNK_ENTRIES", 1000)
    assert bootstrap_ci(v, n_boot=400, random_state=9) == pytest.approx(full, abs=1e-15)


def test_weighted_ci() -> None:
    # per-user mean squared error with counts: the weighted mean is the global MSE
    mse = np.array([1.0, 4.0, 0.25, 2.0])
    n = np.array([10.0, 1.0, 5.0, 4.0])
    global_mse = (mse * n).sum() / n.sum()  # (10 + 4 + 1.25 + 8) / 20 = 1.1625
    lo, hi = bootstrap_ci(mse, weights=n, n_boot=2000)
    assert lo <= global_mse <= hi
    # equal weights = unweighted
    assert bootstrap_ci(mse, weights=np.ones(4), random_state=2) == pytest.approx(
        bootstrap_ci(mse, random_state=2)
    )
    with pytest.raises(ValueError):
        bootstrap_ci(mse, weights=[1.0])


def test_bootstrap_cis_shares_resamples() -> None:
    rng = np.random.default_rng(11)
    a = rng.random(400)
    b = 2 * a + 1
    out = bootstrap_cis(np.vstack([a, b, np.r_[a[:-1], np.nan]]), random_state=0)
    # one set of resamples: the interval of 2a + 1 is exactly 2 * interval(a) + 1
    np.testing.assert_allclose(out[1], 2 * out[0] + 1, rtol=1e-12)
    # a row with NaN falls back to the single-metric interval
    assert tuple(out[2]) == pytest.approx(bootstrap_ci(a[:-1], random_state=0))
    assert tuple(out[0]) == pytest.approx(bootstrap_ci(a, random_state=0))


def test_paired_test() -> None:
    a = np.array([0.5, 0.6, 0.7, 0.8, np.nan])
    b = np.array([0.4, 0.5, 0.5, 0.7, 0.1])
    r = paired_test(a, b)
    # last pair dropped; diffs 0.1, 0.1, 0.2, 0.1 -> mean 0.125
    assert r.n == 4
    assert r.mean_diff == pytest.approx(0.125)
    # t = mean / (sd / sqrt(n)): sd of diffs = 0.05 -> t = 0.125 / 0.025 = 5, df 3
    assert r.p_value == pytest.approx(2 * sps.t.sf(5.0, 3), rel=1e-9)
    assert r.ci[0] <= 0.125 <= r.ci[1]
    # identical models: no difference, no p-value
    same = paired_test([0.1, 0.2], [0.1, 0.2])
    assert same.mean_diff == 0.0 and math.isnan(same.p_value)
    with pytest.raises(ValueError):
        paired_test([1.0], [1.0, 2.0])


def test_paired_test_detects_a_real_difference(rng: np.random.Generator) -> None:
    base = rng.random(500)
    better = base + 0.05 + rng.normal(0, 0.02, 500)
    r = paired_test(better, base)
    assert r.p_value < 1e-10
    assert 0.045 < r.ci[0] < r.mean_diff < r.ci[1] < 0.055
