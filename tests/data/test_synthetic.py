"""synthetic(): exact size, no duplicate pairs, skew, time order, learnable ratings, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from lensrec.data import synthetic


@pytest.fixture(scope="module")
def data():
    return synthetic(2000, 1000, 60_000, random_state=7)


def test_exact_size_ids_and_no_duplicate_pairs(data):
    assert len(data) == 60_000
    assert (data.n_users, data.n_items) == (2000, 1000)
    assert data.user_ids.to_list()[:3] == [1, 2, 3]
    keys = data.users.astype(np.int64) * data.n_items + data.items
    assert np.unique(keys).size == len(data)
    assert data.user_counts().min() >= 1  # every user has something
    assert data.user_counts().max() <= 500  # at most half the catalogue


def test_ratings_on_the_one_to_five_scale(data):
    r = data.ratings
    assert r.dtype == np.float32
    assert set(np.unique(r).tolist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert len(np.unique(r)) >= 4  # spread, not a constant
    assert 3.0 < r.mean() < 4.2


def test_timestamps_increase_per_user_and_rows_are_in_time_order(data):
    ts, u = data.timestamps, data.users
    assert np.all(np.diff(ts) >= 0)
    order = np.lexsort((np.arange(len(data)), u))
    same = np.diff(u[order]) == 0
    assert np.all(np.diff(ts[order])[same] > 0)


def test_popularity_and_activity_are_skewed(data):
    counts = np.sort(data.item_counts())[::-1]
    top10 = counts[: data.n_items // 10].sum() / counts.sum()
    assert top10 > 0.4  # Zipf(1) over 1000 items puts ~2/3 of the mass on the top 10%
    flat = synthetic(2000, 1000, 60_000, popularity_exponent=0.0, random_state=7)
    flat_counts = np.sort(flat.item_counts())[::-1]
    assert flat_counts[:100].sum() / flat_counts.sum() < 0.2
    uc = data.user_counts()
    assert uc.max() > 4 * np.median(uc)  # log-normal activity: a long tail of heavy users


def test_ratings_carry_learnable_structure(data):
    # item means estimated on half the rows predict the other half better than the global mean
    rng = np.random.default_rng(0)
    train = rng.random(len(data)) < 0.5
    r = data.ratings.astype(np.float64)
    mu = r[train].mean()
    sums = np.bincount(data.items[train], weights=r[train] - mu, minlength=data.n_items)
    cnt = np.bincount(data.items[train], minlength=data.n_items)
    item_bias = sums / (cnt + 5.0)
    test = ~train
    rmse_mean = np.sqrt(np.mean((r[test] - mu) ** 2))
    rmse_item = np.sqrt(np.mean((r[test] - mu - item_bias[data.items[test]]) ** 2))
    assert rmse_item < rmse_mean - 0.03


def test_same_seed_same_data_other_seed_other_data():
    a = synthetic(300, 200, 3000, random_state=1)
    b = synthetic(300, 200, 3000, random_state=1)
    c = synthetic(300, 200, 3000, random_state=2)
    for col in ("users", "items", "ratings", "timestamps"):
        np.testing.assert_array_equal(getattr(a, col), getattr(b, col))
    assert not np.array_equal(a.items, c.items)


def test_implicit_and_argument_checks():
    imp = synthetic(50, 40, 500, implicit=True, random_state=0)
    assert imp.ratings is None and len(imp) == 500
    with pytest.raises(ValueError, match="half"):
        synthetic(10, 10, 60)
    with pytest.raises(ValueError):
        synthetic(0, 10, 5)


@pytest.mark.parametrize("exponent", [1.0, 3.0])
def test_dense_skewed_catalogue_still_exact(exponent):
    # every user wants half the catalogue; with exponent 3 the tail items are so rare that
    # rejection sampling gives up and the exact (Gumbel top-k) path has to finish the job
    d = synthetic(10, 200, 1000, activity_sigma=0.01, popularity_exponent=exponent, random_state=3)
    assert len(d) == 1000
    assert np.unique(d.users.astype(np.int64) * 200 + d.items).size == 1000
    assert d.user_counts().tolist() == [100] * 10
