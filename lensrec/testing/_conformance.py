"""The conformance suite every model must pass."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..data.interactions import Interactions
from ..errors import ModelFormatError, NotFittedError, UnknownIdError
from ..models.base import RatingPredictor, Recommender, load


def make_ratings(
    n_users: int = 60,
    n_items: int = 40,
    density: float = 0.3,
    *,
    factors: int = 3,
    random_state: int = 0,
    string_ids: bool = False,
) -> Interactions:
    """Small explicit ratings from a planted low-rank model (1..5 scale), with timestamps."""
    gen = np.random.default_rng(random_state)
    p = gen.normal(size=(n_users, factors))
    q = gen.normal(size=(n_items, factors))
    mask = gen.random((n_users, n_items)) < density
    mask[np.arange(n_users), gen.integers(0, n_items, n_users)] = True  # every user rates
    mask[gen.integers(0, n_users, n_items), np.arange(n_items)] = True  # every item is rated
    u, i = np.nonzero(mask)
    raw = (p[u] * q[i]).sum(1) + gen.normal(scale=0.3, size=u.size)
    r = np.clip(np.round(3 + raw), 1, 5)
    t = 1_000_000 + gen.permutation(u.size)
    users = np.array([f"u-{x}" for x in u]) if string_ids else u + 100
    items = np.array([f"i-{x}" for x in i]) if string_ids else i + 1000
    return Interactions.from_arrays(users, items, r, t, name="planted")


def make_checkerboard(n: int = 20) -> Interactions:
    """Implicit checkerboard: user u likes item i when u + i is even (known answer)."""
    u, i = np.nonzero((np.add.outer(np.arange(n), np.arange(n)) % 2) == 0)
    return Interactions.from_arrays(u, i, name="checkerboard")


def _fresh(factory: Callable[..., Recommender], **kw: Any) -> Recommender:
    return factory(**kw)


def check_model(
    factory: Callable[..., Recommender],
    train: Interactions,
    *,
    k: int = 5,
    deterministic: bool = True,
) -> None:
    """Run every contract check on a model class or factory taking ``random_state=``.

    Raises AssertionError naming the broken rule. Checks: unfitted use raises
    NotFittedError; fit returns self; the same seed gives the same output; a batch row
    equals the single-user answer; excluded items never appear; ``items=`` restricts
    candidates; padding is -1 / -inf and scores are sorted; similar_items never returns the
    query item; unknown indices raise UnknownIdError; get_params/set_params round-trip;
    save/load gives identical output; a foreign or corrupt file raises ModelFormatError;
    ``warm_up`` runs on its own.
    """
    model = _fresh(factory, random_state=42)
    name = type(model).__name__
    type(model).warm_up()  # must run before any fit, on its own data, without error
    assert not model.is_fitted, f"{name}: warm_up must not touch instances"

    # unfitted use
    for call in (lambda: model.recommend([0], k=k), lambda: model.similar_items([0], k=k)):
        try:
            call()
        except NotFittedError:
            pass
        else:
            raise AssertionError(f"{name}: use before fit must raise NotFittedError")

    params = model.get_params()
    assert model.fit(train) is model, f"{name}: fit must return self"
    assert model.get_params() == params, f"{name}: fit must not change hyper-parameters"
    clone = type(model)(**params)
    assert clone.get_params() == params, f"{name}: get_params does not round-trip"

    users = np.arange(train.n_users, dtype=np.int32)
    seen = train.csr()
    ids, scores = model.recommend(users, k=k, exclude=seen)
    assert ids.shape == (train.n_users, k) and ids.dtype == np.int32, f"{name}: ids shape/dtype"
    assert scores.shape == (train.n_users, k) and scores.dtype == np.float32, f"{name}: scores"
    # sorted, padded, no NaN
    assert not np.isnan(scores).any(), f"{name}: NaN scores"
    finite = np.isfinite(scores)
    s = np.where(finite, scores, -np.inf)
    assert np.all(s[:, :-1] >= s[:, 1:]), f"{name}: scores not sorted best first"
    assert np.array_equal(ids < 0, ~finite), f"{name}: padding must be -1 with -inf"
    # exclusion
    for row, u in enumerate(users):
        got = ids[row][ids[row] >= 0]
        seen_u = seen.indices[seen.indptr[u] : seen.indptr[u + 1]]
        assert not np.intersect1d(got, seen_u).size, f"{name}: seen item recommended to user {u}"
        assert np.unique(got).size == got.size, f"{name}: duplicate items in a list"
        n_unseen = train.n_items - seen_u.size
        assert got.size <= min(k, n_unseen), f"{name}: list longer than the unseen catalogue"
    # batch equals single
    for u in users[:: max(1, len(users) // 5)]:
        one_ids, one_scores = model.recommend([u], k=k, exclude=seen)
        assert np.array_equal(one_ids[0], ids[u]), (
            f"{name}: batch row differs from single for user {u}"
        )
        np.testing.assert_allclose(one_scores[0], scores[u], rtol=1e-5, atol=1e-6)
    # candidate restriction
    cand = np.arange(0, train.n_items, 2, dtype=np.int32)
    c_ids, _ = model.recommend(users[:5], k=k, items=cand)
    got = c_ids[c_ids >= 0]
    assert np.isin(got, cand).all(), f"{name}: items= not respected"
    # similar items
    items = np.arange(min(train.n_items, 10), dtype=np.int32)
    sim_ids, sim_scores = model.similar_items(items, k=k)
    assert sim_ids.shape == (items.size, k), f"{name}: similar_items shape"
    for row, it in enumerate(items):
        assert it not in sim_ids[row], f"{name}: similar_items returned the query item {it}"
    # unknown indices
    for bad in (
        lambda: model.recommend([train.n_users], k=k),
        lambda: model.similar_items([-1], k=k),
    ):
        try:
            bad()
        except UnknownIdError:
            pass
        else:
            raise AssertionError(f"{name}: an unknown index must raise UnknownIdError")
    if isinstance(model, RatingPredictor):
        pred = model.predict(train.users, train.items)
        assert pred.dtype == np.float32 and pred.shape == (len(train),), f"{name}: predict shape"
        assert np.isfinite(pred).all(), f"{name}: predict gave non-finite values"
        try:
            model.predict([train.n_users], [0])
        except UnknownIdError:
            pass
        else:
            raise AssertionError(f"{name}: predict on an unknown user must raise UnknownIdError")
        nan = model.predict([train.n_users, 0], [0, 0], missing="nan")
        assert np.isnan(nan[0]) and np.isfinite(nan[1]), f"{name}: predict(missing='nan')"

    # determinism
    if deterministic:
        again = _fresh(factory, random_state=42).fit(train)
        ids2, scores2 = again.recommend(users, k=k, exclude=seen)
        assert np.array_equal(ids, ids2), f"{name}: same seed gave different recommendations"
        np.testing.assert_allclose(scores, scores2, rtol=1e-6, atol=1e-6)
        # refit of the same object starts from scratch
        model.fit(train)
        ids3, _ = model.recommend(users, k=k, exclude=seen)
        assert np.array_equal(ids, ids3), f"{name}: refit did not start from scratch"

    # save / load
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.lrec"
        model.save(path)
        back = load(path)
        assert type(back) is type(model), f"{name}: load gave {type(back).__name__}"
        assert back.get_params() == model.get_params(), f"{name}: params lost in save/load"
        assert back.user_ids_ == model.user_ids_ and back.item_ids_ == model.item_ids_
        b_ids, b_scores = back.recommend(users, k=k, exclude=seen)
        m_ids, m_scores = model.recommend(users, k=k, exclude=seen)
        assert np.array_equal(b_ids, m_ids), f"{name}: loaded model recommends differently"
        np.testing.assert_array_equal(b_scores, m_scores)
        if isinstance(model, RatingPredictor):
            assert isinstance(back, RatingPredictor)  # same type, checked above
            np.testing.assert_array_equal(
                back.predict(train.users, train.items), model.predict(train.users, train.items)
            )
        # corrupt and foreign files
        raw = path.read_bytes()
        corrupt = Path(tmp) / "corrupt.lrec"
        corrupt.write_bytes(raw[: len(raw) // 2])
        foreign = Path(tmp) / "foreign.lrec"
        foreign.write_bytes(b"PK\x03\x04 not really a zip")
        for bad_path in (corrupt, foreign):
            try:
                load(bad_path)
            except ModelFormatError:
                pass
            else:
                raise AssertionError(f"{name}: loading {bad_path.name} must raise ModelFormatError")
