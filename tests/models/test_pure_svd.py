"""PureSVD: numpy's SVD on tiny matrices, fold-in identity, hyper-parameters, ml-100k."""

from __future__ import annotations

import numpy as np
import pytest

from lensrec import Interactions
from lensrec.data.planted import make_blocks
from lensrec.models import PureSVD


def _random_binary(rng: np.random.Generator, n_users: int = 90, n_items: int = 60) -> Interactions:
    x = rng.random((n_users, n_items)) < 0.25
    x[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    x[rng.integers(0, n_users, n_items), np.arange(n_items)] = True
    u, i = np.nonzero(x)
    return Interactions.from_arrays(u, i)


def _numpy_svd(x: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u, s, vt = np.linalg.svd(x.astype(np.float64), full_matrices=False)
    return u[:, :rank], s[:rank], vt[:rank].T


@pytest.mark.parametrize("which", ["blocks", "random"])
def test_equals_numpy_svd(rng, which):
    if which == "blocks":  # a clear gap after 4 singular values: the default iteration is enough
        data = make_blocks(n_groups=4, users_per_group=20, items_per_group=12, density=0.6)[0]
        model = PureSVD(factors=4, random_state=0).fit(data)
        tol = 1e-4
    else:  # a flat spectrum: more power iterations
        data = _random_binary(rng)
        model = PureSVD(factors=5, n_iter=40, random_state=0).fit(data)
        tol = 2e-3
    x = data.csr().toarray()
    u, s, v = _numpy_svd(x, model.factors_)
    np.testing.assert_allclose(model.singular_values_, s, rtol=tol)
    # the same subspace (signs and rotations within it aside) and the same projection
    vv = model.item_factors_.astype(np.float64)
    np.testing.assert_allclose(vv @ vv.T, v @ v.T, atol=tol)
    np.testing.assert_allclose(model.user_factors_ @ vv.T, (u * s) @ v.T, atol=10 * tol)
    ids, scores = model.recommend(np.arange(data.n_users), k=5, exclude=None)
    want = x @ v @ v.T  # Cremonesi et al.: r_u V V^T
    for r in range(data.n_users):
        np.testing.assert_allclose(scores[r], want[r, ids[r]], atol=10 * tol)


def test_fold_in_of_a_training_user_is_identical(rng):
    data = _random_binary(rng)
    model = PureSVD(factors=5, random_state=0).fit(data)
    seen = data.csr()
    fitted_ids, fitted_scores = model.recommend(np.arange(data.n_users), k=6)
    for u in range(data.n_users):
        items = seen.indices[seen.indptr[u] : seen.indptr[u + 1]]
        ids, scores = model.recommend_for_history(items, k=6)
        np.testing.assert_array_equal(ids[0], fitted_ids[u])
        np.testing.assert_allclose(scores[0], fitted_scores[u], rtol=1e-6, atol=1e-7)


def test_each_hyper_parameter_changes_the_result(rng):
    data = _random_binary(rng)

    def fit(**kw):
        return PureSVD(**{"factors": 5, "random_state": 0, **kw}).fit(data)

    ref = fit()
    assert fit(factors=3).item_factors_.shape[1] == 3
    users = np.arange(data.n_users)
    assert not np.array_equal(fit(factors=3).recommend(users, k=5)[0], ref.recommend(users, k=5)[0])
    assert not np.allclose(fit(n_iter=0).singular_values_, ref.singular_values_)
    # the seed of the random test matrix
    np.testing.assert_array_equal(fit().item_factors_, ref.item_factors_)
    assert not np.allclose(fit(n_iter=0, random_state=1).singular_values_,
                           fit(n_iter=0).singular_values_)  # fmt: skip


def test_rank_is_capped_at_a_tenth_of_the_smaller_side(rng):
    data = _random_binary(rng, n_users=90, n_items=60)
    model = PureSVD(factors=50, random_state=0).fit(data)
    assert model.factors_ == 6 and model.item_factors_.shape == (60, 6)
    assert model.get_params()["factors"] == 50


def test_similar_items_are_cosines_of_item_factors(rng):
    data = _random_binary(rng)
    model = PureSVD(factors=5, random_state=0).fit(data)
    v = model.item_factors_.astype(np.float64)
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    cos = unit @ unit.T
    ids, scores = model.similar_items(np.arange(data.n_items), k=3)
    for i in range(data.n_items):
        row = cos[i].copy()
        row[i] = -np.inf
        np.testing.assert_allclose(scores[i], np.sort(row)[::-1][:3], atol=1e-5)


@pytest.mark.realdata
def test_quality_floor_ml100k(ml100k_positives):
    from lensrec.evaluate import evaluate
    from lensrec.split import make_split

    split = make_split(ml100k_positives, "last:3:row")
    model = PureSVD(random_state=0).fit(split.train)
    metrics = ["ndcg@10", "hit_rate@10", "map_k@10"]
    got = evaluate(model, split.train, split.test, k=10, metrics=metrics, ci=False).metrics
    # measured 0.614 / 0.0412 with the defaults
    assert got["hit_rate@10"] >= 0.59, got
    assert got["map_k@10"] >= 0.039, got
