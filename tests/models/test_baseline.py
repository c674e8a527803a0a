"""Baseline: hand-checked ALS steps, the regularised least-squares optimum, Surprise, fold-in."""

from __future__ import annotations

import numpy as np
import pytest

from lensrec import Interactions
from lensrec.models import MODELS
from lensrec.models.baseline import Baseline
from lensrec.testing import make_ratings


def _three_ratings() -> Interactions:
    # u0: i0=5, i1=3; u1: i0=4  -> mu = 4
    return Interactions.from_arrays([0, 0, 1], [0, 1, 0], [5.0, 3.0, 4.0])


def test_one_als_round_by_hand():
    m = Baseline(reg_user=1.0, reg_item=1.0, epochs=1).fit(_three_ratings())
    assert m.global_mean_ == pytest.approx(4.0)
    # items first from zero user biases, then users from the new item biases
    b_i0, b_i1 = (1 + 0) / (1 + 2), -1 / (1 + 1)
    b_u0 = ((5 - 4 - b_i0) + (3 - 4 - b_i1)) / (1 + 2)
    b_u1 = (4 - 4 - b_i0) / (1 + 1)
    np.testing.assert_allclose(m.item_bias_, [b_i0, b_i1], rtol=1e-6)
    np.testing.assert_allclose(m.user_bias_, [b_u0, b_u1], rtol=1e-6)
    np.testing.assert_allclose(
        m.predict([0, 1, 1], [1, 0, 1], clip=False),
        [4 + b_u0 + b_i1, 4 + b_u1 + b_i0, 4 + b_u1 + b_i1],
        rtol=1e-6,
    )


def test_converges_to_the_regularised_least_squares_optimum():
    data = make_ratings(n_users=30, n_items=20, density=0.4, random_state=3)
    reg_u, reg_i = 2.5, 4.0
    m = Baseline(reg_user=reg_u, reg_item=reg_i, epochs=300).fit(data)
    # the optimum of sum (r - mu - b_u - b_i)^2 + reg_u |b_u|^2 + reg_i |b_i|^2, solved directly
    n_u, n_i = data.n_users, data.n_items
    x = np.zeros((len(data), n_u + n_i))
    x[np.arange(len(data)), data.users] = 1.0
    x[np.arange(len(data)), n_u + data.items] = 1.0
    y = data.ratings - data.ratings.mean()
    lam = np.diag(np.r_[np.full(n_u, reg_u), np.full(n_i, reg_i)])
    sol = np.linalg.solve(x.T @ x + lam, x.T @ y)
    np.testing.assert_allclose(m.user_bias_, sol[:n_u], atol=1e-4)
    np.testing.assert_allclose(m.item_bias_, sol[n_u:], atol=1e-4)


def test_matches_surprise_baseline_only():
    surprise = pytest.importorskip("surprise")
    data = make_ratings(n_users=25, n_items=15, density=0.4, random_state=5)
    ur: dict[int, list] = {u: [] for u in range(data.n_users)}
    ir: dict[int, list] = {i: [] for i in range(data.n_items)}
    for u, i, r in zip(
        data.users.tolist(), data.items.tolist(), data.ratings.tolist(), strict=True
    ):
        ur[u].append((i, r))
        ir[i].append((u, r))
    trainset = surprise.Trainset(
        ur, ir, data.n_users, data.n_items, len(data), (1, 5),
        {u: u for u in range(data.n_users)}, {i: i for i in range(data.n_items)},
    )  # fmt: skip
    algo = surprise.BaselineOnly(
        bsl_options={"method": "als", "reg_u": 7, "reg_i": 3, "n_epochs": 6}, verbose=False
    ).fit(trainset)
    m = Baseline(reg_user=7, reg_item=3, epochs=6).fit(data)
    np.testing.assert_allclose(m.user_bias_, algo.bu, atol=1e-6)
    np.testing.assert_allclose(m.item_bias_, algo.bi, atol=1e-6)


@pytest.mark.parametrize("change", [{"reg_user": 50.0}, {"reg_item": 50.0}, {"epochs": 1}], ids=str)
def test_each_hyper_parameter_changes_the_fit(change):
    data = make_ratings(random_state=2)
    ref = Baseline().fit(data)
    other = Baseline(**change).fit(data)
    assert not np.allclose(
        ref.predict(data.users, data.items), other.predict(data.users, data.items)
    )


def test_same_list_for_everyone_by_item_bias():
    data = make_ratings(random_state=4)
    m = Baseline().fit(data)
    ids, scores = m.recommend([0, 1], k=data.n_items, exclude=None)
    want = np.argsort(-m.item_bias_, kind="stable")
    np.testing.assert_array_equal(ids[0], want)
    np.testing.assert_array_equal(ids[1], want)
    # scores are the predicted ratings (unclipped)
    np.testing.assert_allclose(scores[1], m.predict(np.full(data.n_items, 1), want, clip=False))


def test_fold_in_gives_a_training_user_their_own_bias():
    data = make_ratings(random_state=6)
    m = Baseline().fit(data)
    hist = data.csr("rating")[[3, 8]]
    folded, f_scores = m.recommend(None, k=5, history=hist, exclude=None)
    known, k_scores = m.recommend([3, 8], k=5, exclude=None)
    # the last ALS step is a user step: a user's bias is exactly the fold-in of their ratings
    np.testing.assert_array_equal(folded, known)
    np.testing.assert_allclose(f_scores, k_scores, atol=1e-5)


def test_is_the_fallback_for_unknown_ids():
    data = make_ratings(random_state=1)
    m = Baseline().fit(data)
    pred, fell = m.predict([0, data.n_users], [data.n_items, 1], missing="baseline",
                           return_fallback=True, clip=False)  # fmt: skip
    assert fell.tolist() == [True, True]
    np.testing.assert_allclose(
        pred, [m.global_mean_ + m.user_bias_[0], m.global_mean_ + m.item_bias_[1]], rtol=1e-6
    )


def test_registered():
    assert MODELS["baseline"] is Baseline


@pytest.mark.realdata
def test_quality_floor_ml100k_ua():
    from lensrec.data import load_dataset
    from lensrec.split import grouplens

    split = grouplens(load_dataset("ml-100k"), "ua")
    m = Baseline().fit(split.train)
    pred = m.predict(split.test.users, split.test.items)
    rmse = float(np.sqrt(np.mean((pred - split.test.ratings) ** 2)))
    assert rmse < 0.962, rmse  # 0.9583 measured (0.9638 with Surprise's reg_u=15, reg_i=10)
