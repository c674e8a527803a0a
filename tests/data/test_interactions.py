"""Interactions: duplicate policy, CSR, subset / compact / reindex, side tables."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from lensrec.data import IdMap, Interactions
from lensrec.errors import DataError, UnknownIdError


def _frame() -> pl.DataFrame:
    # (u1, i1) appears three times: latest timestamp 30 has rating 2
    return pl.DataFrame(
        {
            "user": [1, 1, 2, 1, 3, 1],
            "item": [10, 20, 10, 10, 30, 10],
            "rating": [5.0, 4.0, 3.0, 2.0, 1.0, 4.5],
            "timestamp": [10, 11, 12, 30, 13, 20],
        }
    )


def test_duplicates_keep_latest_by_timestamp_and_are_counted():
    inter = Interactions.from_frame(_frame(), user="user", item="item")
    assert len(inter) == 4
    assert inter.stats == {"rows_read": 6, "duplicates_dropped": 2}
    f = inter.to_frame()
    kept = f.filter((pl.col("user_id") == 1) & (pl.col("item_id") == 10))
    assert kept["rating"].to_list() == [2.0] and kept["timestamp"].to_list() == [30]
    # the survivors keep the original row order
    assert f["timestamp"].to_list() == [11, 12, 30, 13]


def test_duplicates_without_timestamps_keep_the_later_row():
    inter = Interactions.from_frame(_frame(), user="user", item="item", timestamp=None)
    kept = inter.to_frame().filter((pl.col("user_id") == 1) & (pl.col("item_id") == 10))
    assert kept["rating"].to_list() == [4.5]


def test_duplicates_error_and_keep():
    with pytest.raises(DataError) as info:
        Interactions.from_frame(_frame(), user="user", item="item", duplicates="error", name="f")
    assert info.value.line in (1, 4, 6)
    assert len(Interactions.from_frame(_frame(), user="user", item="item", duplicates="keep")) == 6


def test_csr_binary_and_rating():
    inter = Interactions.from_frame(_frame(), user="user", item="item")
    b = inter.csr()
    r = inter.csr("rating")
    assert b.shape == (3, 3) and b.dtype == np.float32
    assert b.toarray().tolist() == [[1, 1, 0], [1, 0, 0], [0, 0, 1]]
    assert r.toarray().tolist() == [[2, 4, 0], [3, 0, 0], [0, 0, 1]]
    assert inter.csr() is b  # computed once
    with pytest.raises(DataError):
        inter.with_ratings(None).csr("rating")


def test_subset_shares_maps_and_compact_renumbers():
    inter = Interactions.from_frame(_frame(), user="user", item="item")
    sub = inter.subset(inter.items == inter.item_ids.index([10])[0])
    assert sub.user_ids is inter.user_ids and sub.n_items == 3
    assert len(sub) == 2
    comp = sub.compact()
    assert comp.user_ids.to_list() == [1, 2] and comp.item_ids.to_list() == [10]
    assert comp.csr().shape == (2, 1)
    assert np.array_equal(comp.ratings, sub.ratings)


def test_reindex_drops_cold_rows_and_reports_them():
    inter = Interactions.from_frame(_frame(), user="user", item="item")
    users, items = IdMap([1, 2], kind="user"), IdMap([10, 99], kind="item")
    out, report = inter.reindex(users, items)
    assert report == {"cold_user_rows": 1, "cold_item_rows": 1, "cold_users": 1, "cold_items": 2}
    assert out.to_frame().select("user_id", "item_id").rows() == [(2, 10), (1, 10)]


def test_from_frame_with_given_maps_raises_on_unknown_ids():
    users, items = IdMap([1, 2]), IdMap([10, 20])
    with pytest.raises(UnknownIdError, match="3"):
        Interactions.from_frame(_frame(), user="user", item="item", user_ids=users, item_ids=items)


def test_missing_column_and_bad_rating_name_the_source():
    with pytest.raises(DataError, match="missing column"):
        Interactions.from_frame(_frame(), user="u", item="item", source="x.csv")
    bad = _frame().with_columns(pl.Series("rating", [5.0, None, 3.0, 2.0, 1.0, 4.5]))
    with pytest.raises(DataError) as info:
        Interactions.from_frame(bad, user="user", item="item", source="x.csv")
    assert (info.value.file, info.value.line) == ("x.csv", 2)


def test_arrays_are_read_only_and_titles_fall_back_to_ids():
    info = pl.DataFrame({"item_id": [10], "title": ["Ten"]})
    inter = Interactions.from_frame(_frame(), user="user", item="item", item_info=info)
    with pytest.raises(ValueError):
        inter.users[0] = 1
    assert inter.titles(inter.item_ids.index([10, 20])) == ["Ten", "20"]


def test_require_columns_names_what_is_missing_and_what_is_there_escaped():
    from lensrec.data.interactions import require_columns

    require_columns(["u", "i"], ["u", None, "i"], file="f.csv")  # all there: no error
    have = ["user\x1b[31m\x00", *[f"c{k}" for k in range(20)]]
    with pytest.raises(DataError) as info:
        require_columns(have, ["user", "item"], file="f.csv", line=1)
    err = info.value
    assert (err.file, err.line) == ("f.csv", 1)
    assert err.reason.startswith("missing column(s) 'user', 'item'; the columns are [")
    assert "user\\x1b[31m\\x00" in err.reason  # escaped, as repr would show it
    assert str(err).isprintable()
    assert "... (21 in all)" in err.reason and "c19" not in err.reason  # a long header is cut
    with pytest.raises(DataError, match="the first line has 2 fields"):
        require_columns(
            ["column_1", "column_2"], ["column_3"], file="f", found="the first line has 2 fields"
        )
