"""ALS (iALS): normal equations, confidence, fold-in, partial_fit_users, parameters, ml-100k."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lensrec import Interactions
from lensrec.data.planted import make_blocks
from lensrec.errors import ConfigError, DataError
from lensrec.models import ALS, load
from lensrec.models._validation import RankingValidation


def _random_data(rng: np.random.Generator, n_users=120, n_items=90, ratings=False) -> Interactions:
    x = rng.random((n_users, n_items)) < 0.15
    x[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    x[rng.integers(0, n_users, n_items), np.arange(n_items)] = True
    u, i = np.nonzero(x)
    r = rng.integers(1, 6, u.size).astype(np.float32) if ratings else None
    return Interactions.from_arrays(u, i, r)


def _normal_equations(model: ALS, data: Interactions, values: np.ndarray | None = None):
    """``(A_u, b_u)`` of every user from the objective's definition, dense, float64."""
    x = data.csr("rating" if values is not None else "binary").toarray().astype(np.float64)
    observed = data.csr().toarray() > 0
    t = np.log1p(x) if model.confidence == "log" else x
    scale = t[observed].mean()
    c = np.where(observed, 1.0 + model.alpha * t / scale, model.unobserved_weight)
    Y = model.item_factors_.astype(np.float64)
    n_items = Y.shape[0]
    out = []
    for u in range(x.shape[0]):
        n_u = observed[u].sum()
        lam = model.reg * (n_u + model.unobserved_weight * n_items) ** model.reg_frequency_exponent
        A = Y.T @ (c[u][:, None] * Y) + lam * np.eye(Y.shape[1])
        b = Y.T @ (c[u] * observed[u])
        out.append((A, b))
    return out


@pytest.mark.parametrize(
    "params",
    [
        {},  # the defaults: Rendle et al.'s frequency-scaled regularisation
        {"reg_frequency_exponent": 0.0, "reg": 0.1, "alpha": 5.0},  # Hu et al.
        {"unobserved_weight": 0.2, "confidence": "log", "alpha": 3.0},
    ],
)
def test_user_vectors_solve_the_normal_equations(rng, params):
    data = _random_data(rng, ratings=True)
    model = ALS(factors=6, epochs=3, solver="cholesky", **params, random_state=0).fit(data)
    assert model.factors_ == 6
    for u, (A, b) in enumerate(_normal_equations(model, data, data.ratings)):
        np.testing.assert_allclose(A @ model.user_factors_[u], b, rtol=2e-4, atol=2e-4)


def test_cg_with_many_steps_matches_cholesky(rng):
    data = _random_data(rng)
    exact = ALS(factors=6, epochs=4, solver="cholesky", random_state=0).fit(data)
    cg = ALS(factors=6, epochs=4, cg_steps=12, random_state=0).fit(data)
    np.testing.assert_allclose(cg.user_factors_, exact.user_factors_, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(cg.item_factors_, exact.item_factors_, rtol=1e-3, atol=1e-4)


def test_alpha_is_scale_free(rng):
    # confidence is 1 + alpha * r / mean(r): scaling every value changes nothing
    data = _random_data(rng, ratings=True)
    scaled = data.with_ratings(data.ratings * 10)
    a = ALS(factors=5, epochs=3, random_state=0).fit(data)
    b = ALS(factors=5, epochs=3, random_state=0).fit(scaled)
    np.testing.assert_allclose(a.user_factors_, b.user_factors_, rtol=1e-4, atol=1e-6)
    assert b.value_scale_ == pytest.approx(10 * a.value_scale_)


def test_loss_is_the_objective_per_unit_weight_and_falls(rng):
    data = _random_data(rng)
    model = ALS(factors=5, epochs=6, solver="cholesky", random_state=0).fit(data)
    losses = model.history_["train_loss"]
    assert len(losses) == 6 and np.all(np.diff(losses) <= 1e-9)
    # the last loss from the definition (dense), with the final factors
    X, Y = model.user_factors_.astype(np.float64), model.item_factors_.astype(np.float64)
    obs = data.csr().toarray() > 0
    c = np.where(obs, 1.0 + model.alpha, model.unobserved_weight)
    lam_u = model.reg * (obs.sum(1) + data.n_items) ** model.reg_frequency_exponent
    lam_i = model.reg * (obs.sum(0) + data.n_users) ** model.reg_frequency_exponent
    total = (c * (obs - X @ Y.T) ** 2).sum()
    total += (lam_u * (X**2).sum(1)).sum() + (lam_i * (Y**2).sum(1)).sum()
    assert losses[-1] == pytest.approx(total / c.sum(), rel=1e-4)


def test_negative_values_are_refused(rng):
    data = _random_data(rng, ratings=True)
    with pytest.raises(DataError, match=">= 0"):
        ALS(factors=4, epochs=1).fit(data.with_ratings(data.ratings - 3))


def test_factors_capped_on_a_small_matrix():
    data = make_blocks(n_groups=2, users_per_group=10, items_per_group=20)[0]  # 20 x 40
    model = ALS(factors=64, epochs=2, random_state=0).fit(data)
    assert model.factors_ == 2 and model.user_factors_.shape == (20, 2)


# --- fold-in and partial fit --------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_fold_in_of_a_training_user_matches_the_fitted_vector(rng, solver):
    data = _random_data(rng, n_users=200, n_items=150, ratings=True)
    model = ALS(factors=12, epochs=10, solver=solver, random_state=0).fit(data)
    rows = model.user_items_
    folded = model._fold_in(rows)
    err = np.linalg.norm(folded - model.user_factors_) / np.linalg.norm(model.user_factors_)
    # Cholesky: the same solve; CG: the fitted vectors are 3 warm-started steps from it
    assert err < (1e-5 if solver == "cholesky" else 5e-3), err
    users = np.arange(data.n_users)
    fitted, _ = model.recommend(users, k=10)
    seen = [rows.indices[rows.indptr[u] : rows.indptr[u + 1]] for u in users]
    values = [rows.data[rows.indptr[u] : rows.indptr[u + 1]] for u in users]
    new, _ = model.recommend_for_history(seen, k=10, ratings=values)
    assert (fitted == new).mean() > 0.98


def test_fold_in_uses_values_as_confidence(rng):
    data = _random_data(rng, ratings=True)
    model = ALS(factors=6, epochs=3, random_state=0).fit(data)
    items = np.array([1, 5, 9])
    ones = model._fold_in(sp.csr_matrix((np.ones(3, np.float32), items, [0, 3]), shape=(1, 90)))
    rated = model._fold_in(
        sp.csr_matrix((np.array([5, 1, 1], np.float32), items, [0, 3]), shape=(1, 90))
    )
    assert not np.allclose(ones, rated)


def test_partial_fit_users_adds_and_refreshes_users(rng, tmp_path):
    data = _random_data(rng)
    model = ALS(factors=6, epochs=4, solver="cholesky", random_state=0).fit(data)
    old_x = model.user_factors_.copy()
    old_ids = model.user_ids_.ids.copy()
    hist_new = [np.array([0, 3, 7]), np.array([2, 4])]
    hist_known = np.array([10, 11, 12, 13])
    known_id = old_ids[5]
    ids = np.array([10_000, known_id, -7])
    rows = [hist_new[0], hist_known, hist_new[1]]
    want = model._fold_in(model._history_csr(rows, None))
    assert model.partial_fit_users(ids, rows) is model
    assert model.n_users == data.n_users + 2
    pos = model.user_ids_.index(ids)
    np.testing.assert_allclose(model.user_factors_[pos], want, rtol=1e-6, atol=1e-7)
    # the other users and every item are untouched (only their indices may have moved)
    others = np.setdiff1d(old_ids, [known_id])
    np.testing.assert_array_equal(
        model.user_factors_[model.user_ids_.index(others)],
        old_x[np.searchsorted(old_ids, others)],
    )
    # histories are the users' rows now: seen items are excluded
    got, _ = model.recommend(pos, k=model.n_items)
    for row, hist in zip(got, rows, strict=True):
        assert not np.isin(row[row >= 0], hist).any()
        assert (row >= 0).sum() == model.n_items - hist.size
    back = load(model.save(tmp_path / "m.lrec"))
    np.testing.assert_array_equal(back.recommend(pos, k=5)[0], model.recommend(pos, k=5)[0])
    with pytest.raises(ValueError, match="unique"):
        model.partial_fit_users([1, 1], [[0], [1]])
    with pytest.raises(ValueError, match="rows"):
        model.partial_fit_users([1, 2], [[0]])


def test_partial_fit_users_with_values(rng):
    data = _random_data(rng, ratings=True)
    model = ALS(factors=6, epochs=3, random_state=0).fit(data)
    model.partial_fit_users([99_999], [[1, 2]], ratings=[[5, 1]])
    u = model.user_ids_.index([99_999])
    row = model.user_items_[u]
    np.testing.assert_array_equal(row.data, [5, 1])


# --- parameters, determinism, training loop -----------------------------------------------------
FAST = {"factors": 6, "epochs": 3}


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("factors", 4),
        ("reg", 0.1),
        ("alpha", 5.0),
        ("confidence", "log"),
        ("unobserved_weight", 0.3),
        ("reg_frequency_exponent", 0.0),
        ("epochs", 5),
        ("cg_steps", 1),
        ("solver", "cholesky"),
        ("random_state", 1),
    ],
)
def test_each_parameter_changes_the_result(rng, param, value):
    data = _random_data(rng, ratings=True)
    base = {**FAST, "random_state": 0}
    a = ALS(**base).fit(data)
    b = ALS(**{**base, param: value}).fit(data)
    sa = a.user_factors_ @ a.item_factors_.T
    sb = b.user_factors_ @ b.item_factors_.T
    assert np.abs(sa - sb).max() > 1e-3, param


def test_patience_stops_early_and_keeps_the_best_epoch(rng):
    data = _random_data(rng, n_users=200, n_items=120)
    valid_rows = rng.random(len(data)) < 0.2
    train, valid = data.subset(~valid_rows), data.subset(valid_rows)
    # little regularisation: validation NDCG peaks and then falls
    params = {"factors": 12, "reg": 1e-4, "reg_frequency_exponent": 0.0, "random_state": 0}
    full = ALS(epochs=25, patience=25, **params).fit(train, valid)
    short = ALS(epochs=25, patience=1, **params).fit(train, valid)
    curve = full.history_["valid_ndcg@10"]
    assert len(curve) == 25 and full.best_epoch_ == int(np.argmax(curve)) + 1
    assert len(short.history_["valid_ndcg@10"]) < 25
    # the kept factors are those of the best epoch: a fresh run of that many epochs
    again = ALS(epochs=full.best_epoch_, **params).fit(train)
    np.testing.assert_array_equal(again.user_factors_, full.user_factors_)


def test_ranking_validation_matches_evaluate(rng):
    from lensrec.evaluate import evaluate

    data = _random_data(rng, n_users=200, n_items=120)
    valid_rows = rng.random(len(data)) < 0.2
    train, valid = data.subset(~valid_rows), data.subset(valid_rows)
    model = ALS(**FAST, random_state=0).fit(train)
    check = RankingValidation(model.user_items_, valid)
    got = check(lambda users: model.user_factors_[users] @ model.item_factors_.T)
    want = evaluate(model, train, valid, k=10, metrics=["ndcg@10"], ci=False).metrics["ndcg@10"]
    assert got == pytest.approx(want, rel=1e-9)


def test_no_valid_runs_all_epochs_and_callback_can_stop(rng):
    data = _random_data(rng)
    seen = []
    model = ALS(**{**FAST, "epochs": 5}, random_state=0).fit(
        data, callback=lambda epoch, seconds, metrics: seen.append(metrics) or epoch == 2
    )
    assert len(seen) == 2 and "train_loss" in seen[0]
    assert len(model.history_["train_loss"]) == 2 and model.best_epoch_ == 2
    assert len(ALS(**FAST).fit(data).history_["train_loss"]) == FAST["epochs"]


def test_thread_count_does_not_change_the_model(rng, monkeypatch):
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has a single thread here")
    data = _random_data(rng, n_users=300, n_items=200)
    fits = []
    for threads in ("1", "2", "1"):
        monkeypatch.setenv("LENSREC_THREADS", threads)
        fits.append(ALS(**FAST, random_state=3).fit(data))
    np.testing.assert_array_equal(fits[0].user_factors_, fits[2].user_factors_)
    np.testing.assert_allclose(fits[0].user_factors_, fits[1].user_factors_, rtol=1e-5, atol=1e-6)


def test_similar_items_is_the_cosine_of_item_factors(rng):
    data = _random_data(rng)
    model = ALS(**FAST, random_state=0).fit(data)
    v = model.item_factors_.astype(np.float64)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    cos = v @ v.T
    np.fill_diagonal(cos, -np.inf)
    ids, scores = model.similar_items(np.arange(10), k=3)
    np.testing.assert_allclose(scores, np.sort(cos[:10], axis=1)[:, ::-1][:, :3], rtol=1e-5)


def test_bad_parameters(rng):
    data = _random_data(rng)
    for bad in ({"reg": 0.0}, {"confidence": "square"}, {"solver": "lu"}, {"cg_steps": 0}):
        with pytest.raises(ConfigError):
            ALS(**bad).fit(data)


# --- real data ----------------------------------------------------------------------------------
@pytest.mark.realdata
def test_quality_floor_ml100k(ml100k_positives):
    from lensrec.evaluate import evaluate
    from lensrec.split import make_split

    metrics = ["ndcg@10", "hit_rate@10", "map_k@10"]
    split = make_split(ml100k_positives, "last:3:row")
    model = ALS(random_state=0).fit(split.train)
    got = evaluate(model, split.train, split.test, k=10, metrics=metrics, ci=False).metrics
    assert got["hit_rate@10"] >= 0.60 and got["map_k@10"] >= 0.042, got  # measured 0.627 / 0.044
    split = make_split(ml100k_positives, "last:3")
    model = ALS(random_state=0).fit(split.train)
    got = evaluate(model, split.train, split.test, k=10, metrics=metrics, ci=False).metrics
    assert got["ndcg@10"] >= 0.10, got  # measured 0.107
