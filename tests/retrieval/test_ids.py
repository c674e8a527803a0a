"""Id translation and result shaping: what the CLI and the server show people."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from lensrec import Interactions
from lensrec.errors import ConfigError, UnknownIdError
from lensrec.models import ALS, BiasedMF, ItemKNN
from lensrec.retrieval import recommend_history, recommend_user, similar, translate_history


@pytest.fixture(scope="module")
def data() -> Interactions:
    # users u0..u5; items "i0".."i5"; item i0 is the most popular, then i1, ...
    rows = [(u, i) for u in range(6) for i in range(6) if i <= 5 - u or i == 0]
    users = [f"u{u}" for u, _ in rows]
    items = [f"i{i}" for _, i in rows]
    ratings = [float(1 + (u + i) % 5) for u, i in rows]
    return Interactions.from_arrays(users, items, ratings)


@pytest.fixture(scope="module")
def als(data):
    return ALS(factors=2, epochs=3, random_state=0).fit(data)


def test_translate_history_reports_unknown_ids_in_order(als):
    idx, vals, unknown, n = translate_history(als, ["i2", "zz", "i0", "yy"], [5, 4, 3, 2])
    assert als.item_ids_.external(idx).tolist() == ["i2", "i0"]
    assert vals.tolist() == [5.0, 3.0] and unknown == ["zz", "yy"] and n == 2
    with pytest.raises(ConfigError, match="2 ratings for 3"):
        translate_history(als, ["i1", "i2", "i3"], [1, 2])


def test_history_of_unknown_ids_only_falls_back_to_popularity(als, data):
    answer = recommend_history(als, ["nope", "never"], k=3)
    assert answer.fallback == "all history items unknown"
    assert answer.unknown == ["nope", "never"] and answer.n_unknown == 2 and answer.used == 0
    counts = {i: int((np.asarray(data.item_ids.external(data.items)) == i).sum()) for i in
              ["i0", "i1", "i2", "i3", "i4", "i5"]}  # fmt: skip
    want = sorted(counts, key=lambda i: (-counts[i], i))[:3]
    assert answer.items == want and answer.score_name == "popularity"
    assert answer.to_dict()["fallback"] is True
    empty = recommend_history(als, [], k=2)
    assert empty.fallback == "empty history" and empty.n_unknown == 0


def test_history_with_some_unknown_ids_is_answered_by_the_model(als):
    answer = recommend_history(als, ["i5", "missing"], k=3)
    assert answer.fallback is None and answer.used == 1 and answer.unknown == ["missing"]
    assert "i5" not in answer.items  # the history is excluded
    want_ids, _ = als.recommend_for_history([als.item_ids_.index(["i5"])[0]], k=3)
    assert answer.items == als.item_ids_.external(want_ids[0][want_ids[0] >= 0]).tolist()
    d = answer.to_dict()
    assert d["unknown_items"] == ["missing"] and d["items"][0]["rank"] == 1
    frame = answer.to_frame()
    assert isinstance(frame, pl.DataFrame) and frame["item"].to_list() == answer.items


def test_recommend_user_by_external_id(als, data):
    answer = recommend_user(als, "u3", k=10)
    seen = set(data.item_ids.external(data.items[data.users == data.user_ids.index(["u3"])[0]]))
    assert answer.items and not seen & set(answer.items)
    assert answer.n_train is not None and all(n > 0 for n in answer.n_train)
    with pytest.raises(UnknownIdError, match="--history"):
        recommend_user(als, "stranger")
    unknown = recommend_user(als, "stranger", k=2, on_unknown="fallback")
    assert unknown.fallback and unknown.items == ["i0", "i1"]


def test_models_without_fold_in_fall_back_with_the_reason(data):
    knn = ItemKNN(random_state=0).fit(data)  # folds in
    assert recommend_history(knn, ["i1"], k=2).fallback is None
    from lensrec.models import Baseline

    base = Baseline().fit(data)
    if not type(base).capabilities.folds_in:
        answer = recommend_history(base, ["i1"], k=2)
        assert answer.fallback and "cannot score users it never saw" in answer.fallback


def test_rating_models_need_ratings_for_fold_in(data):
    mf = BiasedMF(factors=2, epochs=3, random_state=0).fit(data)
    with pytest.raises(ConfigError, match="ratings"):
        recommend_history(mf, ["i1", "i2"], k=2)
    answer = recommend_history(mf, ["i1", "i2"], k=2, ratings=[5, 1])
    assert answer.score_name == "predicted" and len(answer) == 2


def test_similar_never_returns_the_item_and_honours_min_count(als, data):
    answer = similar(als, "i1", k=5)
    assert "i1" not in answer.items and answer.score_name == "similarity"
    busy = similar(als, "i1", k=5, min_count=4)
    counts = dict(zip(als.item_ids_.ids.tolist(), np.bincount(data.items).tolist(), strict=True))
    assert busy.items and all(counts[i] >= 4 for i in busy.items)
