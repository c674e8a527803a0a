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
        ("blend", {"components": "popularity"}, "no component of"),
        ("blend", {"components": "nope"}, "unknown model 'nope'"),
        ("blend", {"component_params": {"svd": {}}}, "not in components"),
    ],
)
def test_bad_components(name, params, message):
    with pytest.raises(ConfigError, match=message):
        MODELS[name](**params).fit(make_ratings())


def _support_by_hand(train, users, items):
    """log(1 + count) of each pair's user and item in ``train``, counted independently."""
    nu = np.zeros(train.n_users)
    ni = np.zeros(train.n_items)
    for u, i in zip(train.users.tolist(), train.items.tolist(), strict=True):
        nu[u] += 1
        ni[i] += 1
    return np.log1p(nu[users]), np.log1p(ni[items])


def test_support_blend_predicts_its_own_formula_and_ranks_as_it_predicts():
    """predict is intercept + sum_j (w_j + a_j s_u + c_j s_i) p_j + a s_u + c s_i, with the
    supports counted by hand and each component's own prediction; the catalogue scores of
    a user equal the predictions for the same pairs (two code paths, one formula)."""
    data = make_ratings(80, 50, 0.3, random_state=5)
    blend = MODELS["blend"](components="baseline,biased-mf", random_state=2).fit(data)
    assert blend.support_weights_.shape == (3, 2)
    assert np.abs(blend.support_weights_).sum() > 0  # the support terms were fitted
    users = np.repeat(np.arange(10), 5).astype(np.int32)
    items = np.tile(np.arange(0, 50, 10), 10).astype(np.int32)
    lu, li = _support_by_hand(data, users, items)
    su, si = lu - blend.support_centre_[0], li - blend.support_centre_[1]
    a = blend.support_weights_
    want = blend.intercept_ + a[-1, 0] * su + a[-1, 1] * si
    for j, m in enumerate(blend._models()):
        p = np.asarray(m.predict(users, items, clip=False), np.float64)
        want = want + (blend.weights_[j] + a[j, 0] * su + a[j, 1] * si) * p
    got = blend.predict(users, items, clip=False)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    ranked = blend.recommend(np.arange(10), k=50, exclude=None)
    by_pair = {}
    for u, (ids, sc) in enumerate(zip(ranked.ids, ranked.scores, strict=True)):
        for i, s in zip(ids.tolist(), sc.tolist(), strict=True):
            by_pair[(u, i)] = s
    np.testing.assert_allclose([by_pair[(u, i)] for u, i in zip(users, items, strict=True)],
                               got, rtol=1e-5, atol=1e-5)  # fmt: skip


def test_support_off_is_the_plain_linear_blend():
    data = make_ratings(80, 50, 0.3, random_state=5)
    blend = MODELS["blend"](components="baseline,biased-mf", support=False,
                            random_state=2).fit(data)  # fmt: skip
    np.testing.assert_array_equal(blend.support_weights_, 0.0)
    users, items = data.users[:40], data.items[:40]
    want = blend.intercept_ + sum(
        w * np.asarray(m.predict(users, items, clip=False), np.float64)
        for w, m in zip(blend.weights_, blend._models(), strict=True)
    )
    np.testing.assert_allclose(blend.predict(users, items, clip=False), want, rtol=1e-5, atol=1e-5)


def test_a_ranking_component_adds_its_pair_score():
    """A ranking component's input for (u, i) is its catalogue score of i for u, scored from
    u's training rows; the blend predicts with it, saves and loads."""
    from lensrec.models.base import Query
    from lensrec.models.blend import _pair_scores

    data = make_ratings(80, 50, 0.3, random_state=5)
    ease = MODELS["ease"]().fit(data)
    users = np.array([3, 0, 3, 7, 0], np.int32)
    items = np.array([1, 2, 9, 4, 2], np.int32)
    got = _pair_scores(ease, users, items)
    for u, i, g in zip(users, items, got, strict=True):
        row = ease._score(Query(np.array([u], np.int32), ease.user_items_[[u]]), None)
        assert g == pytest.approx(float(np.asarray(row)[0, i]), rel=1e-6)
    blend = MODELS["blend"](components="baseline,ease", random_state=1).fit(data)
    assert set(blend.component_weights) == {"baseline", "ease"}
    p = blend.predict(users, items)
    assert np.isfinite(p).all()


def test_ranking_components_alone_are_refused():
    with pytest.raises(ConfigError, match="no component of"):
        MODELS["blend"](components="ease,als").fit(make_ratings())
