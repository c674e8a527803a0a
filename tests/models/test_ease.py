"""EASE: the closed form by hand, fold-in identity, max_items, the memory refusal, ml-100k."""

from __future__ import annotations

import re

import numpy as np
import pytest

import lensrec.models.base as base
from lensrec import Interactions, load
from lensrec.errors import ConfigError
from lensrec.models import EASE


def _binary_data(rng: np.random.Generator, n_users: int = 40, n_items: int = 15) -> Interactions:
    """Random 0/1 data where every user and item has at least one interaction."""
    x = rng.random((n_users, n_items)) < 0.3
    x[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    x[rng.integers(0, n_users, n_items), np.arange(n_items)] = True
    u, i = np.nonzero(x)
    return Interactions.from_arrays(u, i)


def _closed_form(x: np.ndarray, reg: float) -> np.ndarray:
    """Steck (2019), eq. 8: B = I - P diag(1/diag P), P = (X^T X + reg I)^-1, in float64."""
    p = np.linalg.inv(x.T @ x + reg * np.eye(x.shape[1]))
    b = np.eye(x.shape[1]) - p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


@pytest.fixture
def data(rng) -> Interactions:
    return _binary_data(rng)


def test_weights_equal_the_closed_form(data):
    x = data.csr().toarray().astype(np.float64)
    for reg in (0.5, 20.0):
        model = EASE(reg=reg).fit(data)
        np.testing.assert_allclose(model.weights_, _closed_form(x, reg), atol=2e-5)
        assert np.all(np.diag(model.weights_) == 0)


def test_scores_are_history_times_weights(data):
    model = EASE(reg=3.0).fit(data)
    x = data.csr().toarray().astype(np.float64)
    want = x @ _closed_form(x, 3.0)
    ids, scores = model.recommend(np.arange(data.n_users), k=4, exclude=None)
    for u in range(data.n_users):
        np.testing.assert_allclose(scores[u], want[u, ids[u]], atol=1e-4)
        assert scores[u, -1] >= np.sort(want[u])[-4] - 1e-4  # nothing better was left out


def test_ratings_are_not_used_as_values(rng):
    data = _binary_data(rng)
    stars = Interactions.from_arrays(
        data.user_ids.ids[data.users], data.item_ids.ids[data.items], rng.integers(1, 6, len(data))
    )
    a = EASE(reg=2.0).fit(data)
    b = EASE(reg=2.0).fit(stars)
    np.testing.assert_array_equal(a.weights_, b.weights_)
    users = np.arange(data.n_users)
    np.testing.assert_array_equal(a.recommend(users, k=5)[0], b.recommend(users, k=5)[0])


def test_fold_in_of_a_training_user_is_identical(data):
    model = EASE(reg=5.0).fit(data)
    seen = data.csr()
    fitted_ids, fitted_scores = model.recommend(np.arange(data.n_users), k=6)
    for u in range(data.n_users):
        items = seen.indices[seen.indptr[u] : seen.indptr[u + 1]]
        ids, scores = model.recommend_for_history(items, k=6)
        np.testing.assert_array_equal(ids[0], fitted_ids[u])
        np.testing.assert_array_equal(scores[0], fitted_scores[u])


def test_reg_changes_the_result(data):
    users = np.arange(data.n_users)
    a = EASE(reg=0.1).fit(data)
    b = EASE(reg=100.0).fit(data)
    assert not np.allclose(a.weights_, b.weights_)
    assert not np.array_equal(a.recommend(users, k=5)[1], b.recommend(users, k=5)[1])
    # larger reg shrinks every weight towards zero
    assert np.abs(b.weights_).max() < np.abs(a.weights_).max()


def test_max_items_keeps_the_most_frequent(rng):
    data = _binary_data(rng, n_users=60, n_items=20)
    counts = np.bincount(data.items, minlength=data.n_items)
    model = EASE(reg=2.0, max_items=8).fit(data)
    top = np.argsort(-counts, kind="stable")[:8]
    np.testing.assert_array_equal(model.kept_items_, np.sort(top))
    x = data.csr().toarray().astype(np.float64)[:, model.kept_items_]
    np.testing.assert_allclose(model.weights_, _closed_form(x, 2.0), atol=2e-5)
    ids, _ = model.recommend(np.arange(data.n_users), k=12, exclude=None)
    got = ids[ids >= 0]
    assert np.isin(got, model.kept_items_).all()  # others are never recommended
    assert (ids >= 0).sum(axis=1).max() == 8  # and lists stop at the kept catalogue
    sim_ids, _ = model.similar_items(np.arange(data.n_items), k=3)
    dropped = np.setdiff1d(np.arange(data.n_items), model.kept_items_)
    assert (sim_ids[dropped] == -1).all()
    assert np.isin(sim_ids[model.kept_items_], model.kept_items_).all()
    full = EASE(reg=2.0).fit(data)
    assert full.kept_items_.size == data.n_items
    assert not np.array_equal(
        full.recommend(np.arange(5), k=5)[0], model.recommend(np.arange(5), k=5)[0]
    )


def test_similar_items_are_rows_of_the_weights(data):
    model = EASE(reg=4.0).fit(data)
    x = data.csr().toarray().astype(np.float64)
    b = _closed_form(x, 4.0)
    ids, scores = model.similar_items(np.arange(data.n_items), k=3)
    for i in range(data.n_items):
        row = b[i].copy()
        row[i] = -np.inf
        np.testing.assert_allclose(scores[i], np.sort(row)[::-1][:3], atol=2e-5)
        assert i not in ids[i]


def test_refuses_a_catalogue_too_large_for_memory(monkeypatch):
    n_items = 16_000  # 0.95 GiB of float32 for the Gram matrix
    data = Interactions.from_arrays(np.arange(n_items) % 50, np.arange(n_items))
    monkeypatch.setattr(base, "available_memory", lambda: 1 << 29)  # 0.5 GiB available
    model = EASE()
    with pytest.raises(ConfigError, match=r"GiB.*available") as info:
        model.fit(data)
    msg = str(info.value)
    need, have = (float(v) for v in re.findall(r"([\d.]+) GiB", msg))
    # one float32 n x n matrix (the Gram matrix, inverted in place) and small change
    assert need == pytest.approx(4 * n_items**2 / 2**30, abs=0.02)
    assert have == 0.5
    assert not model.is_fitted
    # keeping the most frequent items makes it fit
    small = EASE(max_items=500).fit(data)
    assert small.weights_.shape == (500, 500)


def test_refuses_at_once_on_this_machine():
    n_items = 400_000  # 640 GB of float32 for the Gram matrix
    if base.available_memory() > 4 * n_items**2:
        pytest.skip("this machine has room for a 400k x 400k float32 matrix")
    data = Interactions.from_arrays(np.arange(n_items) % 1000, np.arange(n_items))
    with pytest.raises(ConfigError, match=r"EASE would need about [\d.]+ GiB"):
        EASE().fit(data)


def test_save_load_keeps_the_weights(data, tmp_path):
    model = EASE(reg=3.0, max_items=10).fit(data)
    back = load(model.save(tmp_path / "ease.lrec"))
    np.testing.assert_array_equal(back.weights_, model.weights_)
    np.testing.assert_array_equal(back.kept_items_, model.kept_items_)
    users = np.arange(data.n_users)
    np.testing.assert_array_equal(back.recommend(users, k=4)[0], model.recommend(users, k=4)[0])


@pytest.mark.realdata
def test_quality_floor_ml100k(ml100k_positives):
    from lensrec.evaluate import evaluate
    from lensrec.split import make_split

    metrics = ["ndcg@10", "hit_rate@10", "map_k@10"]
    split = make_split(ml100k_positives, "last:3:row")
    model = EASE(random_state=0).fit(split.train)
    got = evaluate(model, split.train, split.test, k=10, metrics=metrics, ci=False).metrics
    # measured 0.646 / 0.0464 with the defaults; issue 8's targets are 0.63 / 0.045
    assert got["hit_rate@10"] >= 0.63, got
    assert got["map_k@10"] >= 0.045, got
    split = make_split(ml100k_positives, "last:3")
    model = EASE(random_state=0).fit(split.train)
    got = evaluate(model, split.train, split.test, k=10, metrics=metrics, ci=False).metrics
    assert got["ndcg@10"] >= 0.10, got  # measured 0.107
