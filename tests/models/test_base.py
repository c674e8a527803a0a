"""The model contract: base-class behaviour, parameter checks, save/load, Popularity."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from lensrec import ConfigError, Interactions, ModelFormatError, NotFittedError, UnknownIdError
from lensrec.models import Popularity, Recommender, load
from lensrec.models._params import Interval, Options
from lensrec.testing import check_model, make_checkerboard, make_ratings


def _data():
    # items: a (3 users), b (1), c (1), d (2)
    return Interactions.from_arrays(
        [1, 1, 2, 3, 3, 4, 4], ["a", "b", "a", "a", "c", "d", "d2"], [5, 3, 4, 2, 5, 1, 2]
    )


def test_popularity_hand_case():
    data = _data()
    model = Popularity().fit(data)
    # counts by item index (a, b, c, d, d2) = 3, 1, 1, 1, 1
    np.testing.assert_array_equal(model.item_scores_, [3, 1, 1, 1, 1])
    user1 = data.user_ids.index([1])
    ids, scores = model.recommend(user1, k=3, exclude=data.csr())
    # user 1 saw a and b; remaining ties broken by lower index: c, d, d2
    assert data.item_ids.external(ids[0]).tolist() == ["c", "d", "d2"]


def test_popularity_by_rating_is_damped_mean():
    data = _data()
    model = Popularity(by="rating", damping=1.0).fit(data)
    mean = np.mean([5, 3, 4, 2, 5, 1, 2])
    # item a: ratings 5, 4, 2 -> (11 + mean) / 4
    assert model.item_scores_[0] == pytest.approx((11 + mean) / 4, rel=1e-6)
    assert model.item_scores_[2] == pytest.approx((5 + mean) / 2, rel=1e-6)


def test_popularity_min_rating_changes_result():
    data = _data()
    plain = Popularity().fit(data).item_scores_
    pos = Popularity(min_rating=4).fit(data).item_scores_
    # only ratings >= 4: a has 2 (5, 4), c has 1 (5), b/d/d2 none
    np.testing.assert_array_equal(pos, [2, 0, 1, 0, 0])
    assert not np.array_equal(plain, pos)


def test_not_fitted_and_bad_params():
    with pytest.raises(NotFittedError, match="Popularity"):
        Popularity().recommend([0])
    with pytest.raises(ConfigError, match="by must be one of"):
        Popularity(by="votes").fit(_data())
    with pytest.raises(ConfigError, match="damping"):
        Popularity(damping=-1.0).fit(_data())
    with pytest.raises(ConfigError, match="no parameter"):
        Popularity().set_params(nope=1)


def test_unknown_user_index():
    model = Popularity().fit(_data())
    with pytest.raises(UnknownIdError):
        model.recommend([99])


def test_items_restriction_and_padding():
    data = _data()
    model = Popularity().fit(data)
    ids, scores = model.recommend([0], k=4, exclude=data.csr(), items=[0, 1, 2])
    # user 0 (external 1) saw a, b -> only c left of the candidates
    assert ids[0].tolist() == [2, -1, -1, -1]
    assert np.isneginf(scores[0, 1:]).all()


def test_interval_and_options():
    rule = Interval(int, 1, None)
    assert rule.ok(3) and not rule.ok(0) and not rule.ok(1.5) and not rule.ok(True)
    assert not Interval(float, 0, 1, low_open=True).ok(0.0)
    assert Options(("a", "b")).ok("a") and not Options(("a",)).ok("c")


def test_repr_and_get_params():
    m = Popularity(damping=3.0)
    assert repr(m) == "Popularity(damping=3.0)"
    assert m.get_params() == {
        "by": "count",
        "damping": 3.0,
        "min_rating": None,
        "random_state": None,
    }


def test_load_refuses_foreign_class(tmp_path):
    import json
    import zipfile

    path = tmp_path / "evil.lrec"
    with zipfile.ZipFile(path, "w") as zf:
        header = {
            "format": "lensrec-model",
            "format_version": 1,
            "class": "os.system",
            "params": {},
        }
        zf.writestr("header.json", json.dumps(header))
    with pytest.raises(ModelFormatError, match="not registered"):
        load(path)
    path2 = tmp_path / "future.lrec"
    with zipfile.ZipFile(path2, "w") as zf:
        zf.writestr("header.json", json.dumps({"format": "lensrec-model", "format_version": 99}))
    with pytest.raises(ModelFormatError, match="version 99"):
        load(path2)


def test_save_is_atomic_and_leaves_no_temp(tmp_path):
    model = Popularity().fit(_data())
    path = model.save(tmp_path / "m.lrec")
    assert [p.name for p in tmp_path.iterdir()] == ["m.lrec"]
    assert load(path).item_scores_.tolist() == model.item_scores_.tolist()


class _IgnoresExclusion(Recommender):
    """A deliberately broken model: it recommends seen items."""

    _constraints: ClassVar[dict] = {}

    def __init__(self, *, random_state=None):
        self.random_state = random_state

    def _fit(self, train, valid, gen, *, show_progress, callback):
        self.scores_ = np.arange(train.n_items, dtype=np.float32)

    def _score(self, users, items):
        s = self.scores_ if items is None else self.scores_[items]
        return np.broadcast_to(s, (len(users), s.size))

    def recommend(self, users, k=10, *, exclude=None, items=None):  # drops exclusion: broken
        return super().recommend(users, k, exclude=None, items=items)


class _Random(Popularity):
    """Broken determinism: ignores random_state."""

    def _fit(self, train, valid, gen, *, show_progress, callback):
        self.item_scores_ = np.random.default_rng().random(train.n_items).astype(np.float32)


def test_conformance_suite_catches_broken_models():
    data = make_ratings(n_users=20, n_items=15)
    with pytest.raises(AssertionError, match="seen item"):
        check_model(_IgnoresExclusion, data)
    with pytest.raises(AssertionError, match="same seed"):
        check_model(_Random, data)


def test_checkerboard_popularity_has_no_preference():
    data = make_checkerboard(6)
    model = Popularity().fit(data)
    assert np.unique(model.item_scores_).size == 1
