"""Blends: the weight fits recover planted weights, a blend is no worse than its best
component on held-out ratings, bad component lists are clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from lensrec import ConfigError
from lensrec.data.planted import make_ratings
from lensrec.models import MODELS
from lensrec.models.blend import _standardise, fit_linear, fit_logistic


def test_fit_linear_recovers_planted_weights(rng):
    p = rng.normal(3.5, 1.0, size=(20_000, 3))
    y = 0.4 + 0.7 * p[:, 0] + 0.25 * p[:, 1] + 0.0 * p[:, 2] + rng.normal(0, 0.1, 20_000)
    w, b = fit_linear(p, y, reg=0.0)
    np.testing.assert_allclose(w, [0.7, 0.25, 0.0], atol=0.005)
    assert b == pytest.approx(0.4, abs=0.03)
    # the ridge penalty shrinks the weights towards zero, never past it
    w_reg, _ = fit_linear(p, y, reg=1.0)
    assert 0 < w_reg[0] < w[0]


def test_fit_linear_equals_the_normal_equations(rng):
    x = rng.normal(size=(50, 2))
    y = rng.normal(size=50)
    w, b = fit_linear(x, y, reg=0.0)
    a = np.hstack([x, np.ones((50, 1))])
    ref = np.linalg.lstsq(a, y, rcond=None)[0]
    np.testing.assert_allclose([*w, b], ref, atol=1e-10)


def test_fit_logistic_recovers_planted_weights(rng):
    x = rng.normal(size=(40_000, 2))
    truth = np.array([1.5, -0.5])
    p = 1 / (1 + np.exp(-(x @ truth - 1.0)))
    labels = (rng.random(40_000) < p).astype(float)
    w, b = fit_logistic(x, labels, reg=0.0)
    np.testing.assert_allclose(w, truth, atol=0.06)
    assert b == pytest.approx(-1.0, abs=0.06)


def test_standardise_rows():
    s = _standardise(np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0], [0.0, -np.inf, 2.0]]))
    np.testing.assert_allclose(s[0], [-1.2247449, 0.0, 1.2247449], atol=1e-6)
    np.testing.assert_array_equal(s[1], [0.0, 0.0, 0.0])
    assert np.isfinite(s[2]).all() and s[2, 1] == s[2, 0]  # -inf becomes the row's minimum


def test_blend_is_no_worse_than_its_best_component():
    from lensrec import split as S
    from lensrec.evaluate.metrics import rmse

    data = make_ratings(150, 100, 0.3, random_state=7)
    sp = S.make_split(data, "random:0.2", random_state=1)
    blend = MODELS["blend"](components="baseline,biased-mf", random_state=3).fit(sp.train)
    truth = sp.test.ratings.astype(np.float64)
    got = rmse(truth, blend.predict(sp.test.users, sp.test.items))
    singles = []
    for name in ("baseline", "biased-mf"):
        m = MODELS[name](random_state=3)
        from lensrec.models._validation import fit_with_validation

        fit_with_validation(m, sp.train, split=None, random_state=3)
        singles.append(rmse(truth, m.predict(sp.test.users, sp.test.items)))
    assert got <= min(singles) + 0.005, (got, singles)
    assert set(blend.component_weights) == {"baseline", "biased-mf"}


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("blend", {"components": ""}, "components is empty"),
        ("blend", {"components": "baseline,baseline"}, "repeats a model"),
        ("blend", {"components": "popularity"}, "does not predict ratings"),
        ("blend", {"components": "nope"}, "unknown model 'nope'"),
        ("blend", {"component_params": {"svd": {}}}, "not in components"),
    ],
)
def test_bad_components(name, params, message):
    with pytest.raises(ConfigError, match=message):
        MODELS[name](**params).fit(make_ratings())
