"""BPR: determinism, parameters, fold-in, early stopping, learning curve, ml-100k."""

from __future__ import annotations

import numpy as np
import pytest

from lensrec import Interactions
from lensrec.data.planted import make_blocks
from lensrec.errors import ConfigError
from lensrec.models import BPR

FAST = {"factors": 8, "epochs": 5}


@pytest.fixture
def blocks():
    return make_blocks(n_groups=4, users_per_group=30, items_per_group=25, density=0.4,
                       noise=0.02, random_state=3)  # fmt: skip


@pytest.fixture
def one_thread(monkeypatch):
    monkeypatch.setenv("LENSREC_THREADS", "1")


def _scores(model: BPR) -> np.ndarray:
    return model.user_factors_ @ model.item_factors_.T + model.item_bias_


def test_one_thread_is_bitwise_repeatable(blocks, one_thread):
    data = blocks[0]
    a = BPR(**FAST, random_state=5).fit(data)
    b = BPR(**FAST, random_state=5).fit(data)
    for name in ("user_factors_", "item_factors_", "item_bias_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    c = BPR(**FAST, random_state=6).fit(data)
    assert not np.array_equal(a.item_factors_, c.item_factors_)


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("factors", 4),
        ("learning_rate", 0.01),
        ("reg", 0.1),
        ("reg_bias", 0.1),
        ("epochs", 8),
        ("max_tries", 1),
        ("random_state", 1),
    ],
)
def test_each_parameter_changes_the_result(blocks, one_thread, param, value):
    data = blocks[0]
    if param == "max_tries":  # a user owning most of the catalogue needs redraws
        users = np.concatenate([data.users, np.zeros(90, np.int32)])
        items = np.concatenate([data.items, np.arange(90, dtype=np.int32)])
        data = Interactions.from_arrays(users, items)
    base = {**FAST, "random_state": 0}
    a = BPR(**base).fit(data)
    b = BPR(**{**base, param: value}).fit(data)
    sa, sb = _scores(a), _scores(b)
    assert sa.shape != sb.shape or np.abs(sa - sb).max() > 1e-3, param


def test_fold_in_epochs_changes_the_fold_in(blocks):
    data = blocks[0]
    a = BPR(**FAST, random_state=0).fit(data)
    b = BPR(**FAST, fold_in_epochs=3, random_state=0).fit(data)
    hist = data.csr()[:5]
    assert np.abs(a._fold_in(hist) - b._fold_in(hist)).max() > 1e-3


def test_fold_in_depends_on_the_history_alone(blocks):
    data, user_group, item_group = blocks
    model = BPR(random_state=0).fit(data)
    hist = data.csr()
    rows = [hist[[3]], hist[[40, 3]], hist[[7, 8, 9, 3]]]
    vectors = [model._fold_in(r)[-1] for r in rows]
    np.testing.assert_array_equal(vectors[0], vectors[1])
    np.testing.assert_array_equal(vectors[0], vectors[2])
    # a new user with a few items of one group gets that group's items
    group = 2
    items = np.flatnonzero(item_group == group)[:6]
    ids, _ = model.recommend_for_history(items, k=5)
    assert (item_group[ids[0]] == group).mean() >= 0.8


def test_fold_in_of_training_users_agrees_with_their_fitted_lists(blocks):
    data, user_group, item_group = blocks
    model = BPR(random_state=0).fit(data)
    users = np.arange(data.n_users)
    fitted, _ = model.recommend(users, k=10)
    folded, _ = model.recommend(None, k=10, history=data.csr())
    overlap = np.mean([np.intersect1d(a, b).size / 10 for a, b in zip(fitted, folded, strict=True)])
    assert overlap > 0.6, overlap
    assert (item_group[folded] == user_group[:, None]).mean() > 0.8


def test_learning_curve(blocks):
    model = BPR(factors=8, epochs=20, random_state=0).fit(blocks[0])
    loss, auc = model.history_["train_loss"], model.history_["train_auc"]
    assert len(loss) == 20 and len(model.history_["seconds"]) == 20
    assert loss[-1] < 0.5 * loss[0] and auc[-1] > auc[0] and auc[-1] > 0.9
    assert "valid_ndcg@10" not in model.history_ and model.best_epoch_ == 20


def test_early_stopping_keeps_the_best_epoch(blocks, one_thread):
    data = blocks[0]
    gen = np.random.default_rng(0)
    hold = gen.random(len(data)) < 0.2
    train, valid = data.subset(~hold), data.subset(hold)
    # a large step overfits after a few epochs
    params = {"factors": 16, "learning_rate": 0.3, "reg": 0.0, "random_state": 0}
    long = BPR(epochs=40, patience=40, **params).fit(train, valid)
    curve = long.history_["valid_ndcg@10"]
    assert long.best_epoch_ == int(np.argmax(curve)) + 1 < 40
    short = BPR(epochs=40, patience=2, **params).fit(train, valid)
    assert len(short.history_["valid_ndcg@10"]) < 40
    again = BPR(epochs=long.best_epoch_, **params).fit(train)
    np.testing.assert_array_equal(again.item_factors_, long.item_factors_)


def test_similar_items_ignore_the_bias(blocks):
    data, _, item_group = blocks
    model = BPR(random_state=0).fit(data)
    ids, _ = model.similar_items(np.arange(0, data.n_items, 10), k=5)
    assert (item_group[ids] == item_group[np.arange(0, data.n_items, 10)][:, None]).mean() > 0.8


def test_bad_parameters(blocks):
    for bad in ({"learning_rate": 0.0}, {"max_tries": 0}, {"factors": 0}, {"reg": -1.0}):
        with pytest.raises(ConfigError):
            BPR(**bad).fit(blocks[0])


@pytest.mark.realdata
def test_quality_floor_ml100k():
    from lensrec.data import load_dataset
    from lensrec.evaluate import evaluate
    from lensrec.split import make_split, min_rating

    try:
        data = min_rating(load_dataset("ml-100k"), 4)
    except Exception as exc:  # no cache and no network here
        pytest.skip(f"ml-100k unavailable: {exc}")
    metrics = ["ndcg@10", "hit_rate@10", "map_k@10"]
    split = make_split(data, "last:3:row")
    model = BPR(random_state=0).fit(split.train)
    got = evaluate(model, split.train, split.test, k=10, metrics=metrics, ci=False).metrics
    assert got["hit_rate@10"] >= 0.56 and got["map_k@10"] >= 0.034, got  # measured 0.596 / 0.038
