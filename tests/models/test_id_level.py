"""The id-level front door: recommend_ids / recommend_history_ids / similar_ids speak the ids
in the data (here 1-based, as MovieLens), never the dense indices the index-level calls take."""

from __future__ import annotations

import math
import warnings

import polars as pl
import pytest

from lensrec import Interactions
from lensrec.errors import UnknownIdError, UnknownIdWarning
from lensrec.models import ItemKNN, Popularity

# user u has items 1..u: item j is held by users j..5, so counts are 5, 4, 3, 2, 1
ROWS = [(u, i) for u in range(1, 6) for i in range(1, u + 1)]
TITLES = {i: f"Film {i}" for i in range(1, 6)}


@pytest.fixture(scope="module")
def data() -> Interactions:
    frame = pl.DataFrame({"user": [u for u, _ in ROWS], "item": [i for _, i in ROWS]})
    info = pl.DataFrame({"item_id": list(TITLES), "title": list(TITLES.values())})
    return Interactions.from_frame(
        frame, user="user", item="item", rating=None, timestamp=None, item_info=info
    )


def test_recommend_ids_is_the_user_with_that_id_not_that_index(data):
    pop = Popularity().fit(data)
    frame = pop.recommend_ids(2, k=3)  # user 2 saw items 1 and 2
    assert frame["user"].to_list() == [2, 2, 2]
    assert frame["item"].to_list() == [3, 4, 5]
    assert frame["title"].to_list() == ["Film 3", "Film 4", "Film 5"]
    assert frame["n_train"].to_list() == [3, 2, 1]
    assert frame["rank"].to_list() == [1, 2, 3]
    assert frame["fallback"].null_count() == 3
    # the index-level call with the same number is another user (id 3, who saw 1..3)
    ids, _ = pop.recommend([2], k=3)
    assert pop.item_ids_.external(ids[0][ids[0] >= 0]).tolist() == [4, 5]


def test_recommend_ids_for_several_users_and_unknown_ones(data):
    pop = Popularity().fit(data)
    frame = pop.recommend_ids([1, 4], k=2)
    assert frame.select("user", "item").rows() == [(1, 2), (1, 3), (4, 5)]
    with pytest.raises(UnknownIdError, match="99"):
        pop.recommend_ids(99)
    fb = pop.recommend_ids(99, k=2, on_unknown="fallback")
    assert fb["item"].to_list() == [1, 2] and fb["fallback"][0] == "unknown user 99"


def test_recommend_history_ids_names_unknown_items(data):
    pop = Popularity().fit(data)
    with pytest.warns(UnknownIdWarning, match="777"):
        frame = pop.recommend_history_ids([1, 777], k=2)
    assert frame["item"].to_list() == [2, 3] and frame["title"][0] == "Film 2"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pop.recommend_history_ids([5], k=1)["item"].to_list() == [1]


def test_similar_ids_by_external_item_id(data):
    knn = ItemKNN(weighting="cosine").fit(data)
    # item 5 is held by user 5 only; item j by users j..5: cosine 1 / sqrt(6 - j)
    frame = knn.similar_ids(5, k=3)
    assert frame["query"].to_list() == [5, 5, 5]
    assert frame["item"].to_list() == [4, 3, 2]
    assert frame["score"].to_list() == pytest.approx([1 / math.sqrt(2), 1 / math.sqrt(3), 0.5])
    assert frame["title"].to_list() == ["Film 4", "Film 3", "Film 2"]
    both = knn.similar_ids([5, 1], k=1)
    assert both.select("query", "item").rows() == [(5, 4), (1, 2)]
