"""SVD (Funk, per-rating SGD): the model against the plain reference epoch, hyper-parameters,
early stopping, fold-in, Surprise parity, determinism and a quality floor."""

from __future__ import annotations

import numpy as np
import pytest

from lensrec import Interactions, load
from lensrec.kernels.svd import _reference_sgd_epoch
from lensrec.models import MODELS
from lensrec.models.svd_sgd import SVD
from lensrec.testing import make_ratings


@pytest.fixture(scope="module")
def data() -> Interactions:
    return make_ratings(n_users=40, n_items=30, density=0.3, random_state=2)


@pytest.fixture(scope="module")
def planted() -> tuple[Interactions, Interactions]:
    data = make_ratings(n_users=150, n_items=100, density=0.35, factors=3, random_state=7)
    mask = np.random.default_rng(3).random(len(data)) < 0.15
    return data.subset(~mask), data.subset(mask)


def _rmse(model: SVD, data: Interactions) -> float:
    pred = model.predict(data.users, data.items)
    return float(np.sqrt(np.mean((pred - data.ratings) ** 2)))


def _reference_fit(data, k, epochs, lr, reg, decay, init, order, biased=True):
    """Epochs of the plain reference from a constant initialisation (init_std=0)."""
    n_u, n_i = data.n_users, data.n_items
    pu, qi = np.full((n_u, k), init), np.full((n_i, k), init)
    bu, bi = np.zeros(n_u), np.zeros(n_i)
    mu = float(data.ratings.astype(np.float64).mean()) if biased else 0.0
    for epoch in range(epochs):
        rates = tuple(r * decay**epoch for r in lr)
        _reference_sgd_epoch(data.users, data.items, data.ratings.astype(np.float64), order,
                             mu, rates, reg, biased, pu, bu, qi, bi)  # fmt: skip
    return mu, pu, bu, qi, bi


@pytest.mark.parametrize("order", ["file", "user"])
@pytest.mark.parametrize("biased", [True, False])
def test_fit_equals_the_reference_epochs(data, order, biased):
    lr, reg = (0.011, 0.007, 0.013, 0.009), (0.05, 0.03, 0.02, 0.04)
    model = SVD(
        factors=3, epochs=4, init_mean=0.1, init_std=0.0, learning_rate_decay=0.9,
        lr_bu=lr[0], lr_bi=lr[1], lr_pu=lr[2], lr_qi=lr[3],
        reg_bu=reg[0], reg_bi=reg[1], reg_pu=reg[2], reg_qi=reg[3],
        order=order, biased=biased, random_state=0,
    ).fit(data)  # fmt: skip
    visit = np.arange(len(data)) if order == "file" else np.argsort(data.users, kind="stable")
    mu, pu, bu, qi, bi = _reference_fit(data, 3, 4, lr, reg, 0.9, 0.1, visit, biased)
    assert model.global_mean_ == pytest.approx(mu)
    np.testing.assert_allclose(model.user_factors_, pu, atol=2e-5)
    np.testing.assert_allclose(model.item_factors_, qi, atol=2e-5)
    np.testing.assert_allclose(model.user_bias_, bu, atol=2e-5)
    np.testing.assert_allclose(model.item_bias_, bi, atol=2e-5)
    expect = mu + bu[data.users] + bi[data.items] + (pu[data.users] * qi[data.items]).sum(1)
    np.testing.assert_allclose(model.predict(data.users, data.items, clip=False), expect,
                               atol=1e-4)  # fmt: skip
    if not biased:
        assert not model.user_bias_.any() and model.global_mean_ == 0.0


def test_shared_rates_are_the_per_parameter_defaults(data):
    a = SVD(factors=4, epochs=3, learning_rate=0.02, reg=0.07, random_state=1).fit(data)
    b = SVD(factors=4, epochs=3, lr_bu=0.02, lr_bi=0.02, lr_pu=0.02, lr_qi=0.02,
            reg_bu=0.07, reg_bi=0.07, reg_pu=0.07, reg_qi=0.07, random_state=1).fit(data)  # fmt: skip
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)


CHANGES = [
    {"factors": 5}, {"epochs": 3}, {"learning_rate": 0.02}, {"reg": 0.3},
    {"lr_bu": 0.05}, {"lr_bi": 0.05}, {"lr_pu": 0.05}, {"lr_qi": 0.05},
    {"reg_bu": 0.5}, {"reg_bi": 0.5}, {"reg_pu": 0.5}, {"reg_qi": 0.5},
    {"init_mean": 0.1}, {"init_std": 0.3}, {"biased": False}, {"learning_rate_decay": 0.8},
    {"order": "user"}, {"order": "file"}, {"valid_fraction": 0.2}, {"random_state": 1},
]  # fmt: skip


@pytest.mark.parametrize("change", CHANGES, ids=str)
def test_each_hyper_parameter_changes_the_model(data, change):
    base = {"factors": 4, "epochs": 6, "random_state": 0}
    ref = SVD(**base).fit(data).predict(data.users, data.items)
    got = SVD(**{**base, **change}).fit(data).predict(data.users, data.items)
    assert not np.allclose(ref, got)


def test_parallel_with_one_thread_is_the_serial_model(data, monkeypatch):
    monkeypatch.setenv("LENSREC_THREADS", "1")
    a = SVD(factors=4, epochs=4, random_state=3).fit(data)
    b = SVD(factors=4, epochs=4, parallel=True, random_state=3).fit(data)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_bias_, b.item_bias_)


def test_parallel_learns(planted, monkeypatch):
    monkeypatch.setenv("LENSREC_THREADS", "2")
    train, test = planted
    serial = SVD(factors=8, epochs=30, random_state=0).fit(train)
    hog = SVD(factors=8, epochs=30, parallel=True, random_state=0).fit(train)
    assert _rmse(hog, test) < _rmse(serial, test) + 0.02


def test_valid_early_stopping_patience_and_best_epoch(planted):
    train, test = planted
    m = SVD(factors=8, epochs=200, learning_rate=0.03, reg=0.01, patience=3, random_state=0)
    m.fit(train, test)
    curve = m.history_["valid_rmse"]
    assert len(curve) < 200  # over-fits with little regularisation, so it stops
    assert m.best_epoch_ == int(np.argmin(curve)) + 1
    assert len(curve) - m.best_epoch_ == 3  # patience epochs after the best one
    assert _rmse(m, test) == pytest.approx(min(curve), abs=1e-5)  # best epoch restored
    # without validation: exactly `epochs`, no validation curve
    plain = SVD(factors=8, epochs=7, random_state=0).fit(train)
    assert plain.best_epoch_ == 7 and plain.history_["valid_rmse"] == []
    assert len(plain.history_["train_loss"]) == 7


def test_valid_fraction_holds_out_then_refits(planted):
    train, _ = planted
    m = SVD(factors=8, epochs=100, learning_rate=0.03, reg=0.01, patience=2,
            valid_fraction=0.2, random_state=0).fit(train)  # fmt: skip
    # early-stopped on the hold-out (patience 2 after the best epoch), then refit for
    # best_epoch_ epochs
    assert 0 < m.best_epoch_ < 100 and len(m.history_["valid_rmse"]) == m.best_epoch_ + 2
    assert m.epochs_ == m.best_epoch_  # the earlier name


def test_a_model_saved_before_best_epoch_loads_with_it(planted, tmp_path):
    m = SVD(factors=4, epochs=3, random_state=0).fit(planted[0])
    del m.best_epoch_  # as SVD saved it before: epochs_ only
    loaded = load(m.save(tmp_path / "svd.lensrec"))
    assert loaded.best_epoch_ == loaded.epochs_ == 3


def test_training_loss_falls(planted):
    m = SVD(factors=8, epochs=20, random_state=0).fit(planted[0])
    loss = m.history_["train_loss"]
    assert loss[-1] < 0.7 * loss[0]


def test_fold_in_solves_the_users_sgd_fixed_point(data):
    m = SVD(factors=4, epochs=20, reg=0.05, random_state=0).fit(data)
    hist = data.csr("rating")[:5]
    vec = m._fold_in(hist)
    k = 4
    for r in range(5):
        items = hist.indices[hist.indptr[r] : hist.indptr[r + 1]]
        y = hist.data[hist.indptr[r] : hist.indptr[r + 1]]
        p, b = vec[r, :k].astype(np.float64), vec[r, k] - m.global_mean_
        q = m.item_factors_[items].astype(np.float64)
        err = y - (m.global_mean_ + b + m.item_bias_[items] + q @ p)
        # every rating's SGD step summed: e q_i - reg p_u and e - reg b_u, all zero
        np.testing.assert_allclose(err @ q - len(items) * 0.05 * p, 0, atol=1e-3)
        assert err.sum() - len(items) * 0.05 * b == pytest.approx(0, abs=1e-3)


def test_fold_in_recovers_training_users(planted):
    train, _ = planted
    m = SVD(factors=8, epochs=30, random_state=0).fit(train)
    hist = train.csr("rating")[:10]
    folded = m._fold_in(hist) @ m._item_vectors().T
    learned = m._user_vectors(np.arange(10, dtype=np.int32)) @ m._item_vectors().T
    corr = [np.corrcoef(folded[u], learned[u])[0, 1] for u in range(10)]
    assert min(corr) > 0.9, corr


def test_same_seed_same_model(data):
    a = SVD(factors=4, epochs=5, random_state=9).fit(data)
    b = SVD(factors=4, epochs=5, random_state=9).fit(data)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)


def test_registered():
    assert MODELS["svd"] is SVD


def _ua():
    from lensrec.data import load_dataset
    from lensrec.split import grouplens

    return grouplens(load_dataset("ml-100k"), "ua")


@pytest.mark.realdata
def test_quality_floor_ml100k_ua():
    split = _ua()
    rmse = _rmse(SVD(random_state=0).fit(split.train), split.test)
    assert rmse < 0.935, rmse


@pytest.mark.realdata
def test_surprise_settings_match_surprise_on_ml100k_ua():
    """Surprise's SVD defaults and order: RMSE within 0.005 of Surprise's own."""
    surprise = pytest.importorskip("surprise")
    split = _ua()
    tr, te = split.train, split.test
    ur: dict[int, list] = {u: [] for u in range(tr.n_users)}
    ir: dict[int, list] = {i: [] for i in range(tr.n_items)}
    for u, i, r in zip(tr.users.tolist(), tr.items.tolist(), tr.ratings.tolist(), strict=True):
        ur[u].append((i, r))
        ir[i].append((u, r))
    trainset = surprise.Trainset(
        ur, ir, tr.n_users, tr.n_items, len(tr), (1, 5),
        {u: u for u in range(tr.n_users)}, {i: i for i in range(tr.n_items)},
    )  # fmt: skip
    algo = surprise.SVD(random_state=0).fit(trainset)
    theirs = np.clip(
        [algo.estimate(u, i) for u, i in zip(te.users.tolist(), te.items.tolist(), strict=True)],
        1, 5,
    )  # fmt: skip
    their_rmse = float(np.sqrt(np.mean((theirs - te.ratings) ** 2)))
    ours = SVD(epochs=20, learning_rate=0.005, reg=0.02, order="user", random_state=0)
    assert abs(_rmse(ours.fit(tr), te) - their_rmse) < 0.005


def test_auto_reg_scales_with_the_number_of_ratings(data):
    from lensrec.errors import ConfigError
    from lensrec.models.svd_sgd import auto_reg

    assert auto_reg(1_000, 0.1) == 0.1 and auto_reg(100_000, 0.1) == pytest.approx(0.1)
    assert auto_reg(1_000_000, 0.1) == pytest.approx(0.1 * 10**-0.25)
    assert auto_reg(10**9, 0.1) == 0.02
    auto = SVD(factors=4, epochs=3, random_state=0).fit(data)
    assert auto.reg_used_ == auto_reg(len(data), 0.1)
    fixed = SVD(factors=4, epochs=3, reg=auto.reg_used_, random_state=0).fit(data)
    np.testing.assert_array_equal(auto.user_factors_, fixed.user_factors_)
    with pytest.raises(ConfigError, match="reg"):
        SVD(reg="large").fit(data)
