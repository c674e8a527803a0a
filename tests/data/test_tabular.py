"""load_table on CSV / TSV / Parquet / '::' files, its DataError discipline, and describe()."""

from __future__ import annotations

import uuid
import warnings

import numpy as np
import polars as pl
import pytest

from lensrec.data import describe, format_summary, load_table
from lensrec.data.summary import scale_line
from lensrec.data.tabular import (
    COMMON_SCALES,
    RatingOutlierWarning,
    RatingScale,
    infer_rating_scale,
)
from lensrec.errors import ConfigError, DataError


def test_csv_with_string_ids_keeps_rows_and_maps_ids(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("u,i,r,t\nalice,x,4,100\nbob,y,3.5,101\nalice,y,5,102\n")
    inter = load_table(p, user="u", item="i", rating="r", timestamp="t")
    assert inter.user_ids.to_list() == ["alice", "bob"]
    assert inter.item_ids.to_list() == ["x", "y"]
    np.testing.assert_array_equal(inter.users, [0, 1, 0])
    np.testing.assert_array_equal(inter.items, [0, 1, 1])
    np.testing.assert_array_equal(inter.ratings, np.array([4, 3.5, 5], np.float32))
    np.testing.assert_array_equal(inter.timestamps, [100, 101, 102])
    assert inter.name == "r" and inter.stats["source"] == str(p)


def test_tsv_uuid_ids_and_leading_zero_ids_stay_strings(tmp_path):
    uids = [str(uuid.UUID(int=k)) for k in (1, 2)]
    p = tmp_path / "r.tsv"
    p.write_text(f"user\titem\n{uids[0]}\t007\n{uids[1]}\t7\n")
    inter = load_table(p, user="user", item="item")
    assert inter.ratings is None
    assert inter.user_ids.to_list() == sorted(uids)
    assert sorted(inter.item_ids.to_list()) == ["007", "7"]  # distinct ids never merge


def test_integer_ids_become_int64(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("user,item\n10,-3\n2,0\n")
    inter = load_table(p, user="user", item="item")
    assert inter.user_ids.is_integer and inter.user_ids.to_list() == [2, 10]
    assert inter.item_ids.to_list() == [-3, 0]


def test_parquet_and_duplicates_policy(tmp_path):
    p = tmp_path / "r.parquet"
    pl.DataFrame(
        {"u": [1, 1, 2], "i": ["a", "a", "b"], "r": [1.0, 5.0, 3.0], "t": [20, 10, 5]}
    ).write_parquet(p)
    inter = load_table(p, user="u", item="i", rating="r", timestamp="t")
    assert len(inter) == 2
    assert inter.stats["duplicates_dropped"] == 1
    # the latest (t=20, rating 1.0) is kept even though it comes first
    assert inter.ratings.tolist() == [1.0, 3.0]
    with pytest.raises(DataError) as info:
        load_table(p, user="u", item="i", rating="r", timestamp="t", duplicates="error")
    assert info.value.line is not None


def test_double_colon_dat_and_headerless_positions(tmp_path):
    p = tmp_path / "ratings.dat"
    p.write_text("1::10::5::100\n2::10::3::200\n")
    inter = load_table(p, user=0, item=1, rating=2, timestamp=3, has_header=False)
    assert (len(inter), inter.n_users, inter.n_items) == (2, 2, 1)
    np.testing.assert_array_equal(inter.timestamps, [100, 200])


def test_datetime_text_timestamps(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("u,i,when\n1,1,2020-01-01T00:00:00\n1,2,2020-01-02T00:00:00\n")
    inter = load_table(p, user="u", item="i", timestamp="when")
    np.testing.assert_array_equal(inter.timestamps, [1577836800, 1577923200])


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("u,i,r\n1,1,4\n1,2,x\n", 3, "'x'"),
        ("u,i,r\n1,1,4\n1,2,NaN\n", 3, "not a finite number"),
        ("u,i,r\n1,1,4\n1,2,\n", 3, "missing value in column 'r'"),
        ("u,i,r\n1,1,4\n1,2,6\n", 3, "outside the scale"),
        ("u,i,r\n1,1,4\n1,2,4.25\n", 3, "outside the scale"),
        ("u,i,r\n1,1,4\n1,2,4,9\n", 3, "expected 3 fields, found 4"),
        ('u,i,r\n1,"a,b",4\n1,2,4,9\n', 3, "expected 3 fields, found 4"),  # quoted commas
        ('u,i,r\n1,1,4\n1,"2,4\n1,3,5\n', 3, "unbalanced quote"),
        ("u,i,r\n1,1,4\n,2,4\n", 3, "missing value in column 'u'"),
        ("u,item,r\n1,1,4\n", 1, "missing column(s) 'i'"),
        ("u,i,r\n", 2, "no data rows"),
        ("", 1, "empty file"),
    ],
)
def test_malformed_csv_names_file_line_and_reason(tmp_path, text, line, reason):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(DataError) as info:
        load_table(p, user="u", item="i", rating="r", rating_scale=(1, 5, 0.5))
    err = info.value
    assert (err.file, err.line) == (str(p), line)
    assert reason in err.reason
    assert str(p) in str(err) and f"line {line}" in str(err)


def test_parquet_errors_name_the_row(tmp_path):
    p = tmp_path / "r.parquet"
    pl.DataFrame({"u": [1, 2, 3], "i": [1, 1, 1], "r": [1.0, float("nan"), 3.0]}).write_parquet(p)
    with pytest.raises(DataError) as info:
        load_table(p, user="u", item="i", rating="r")
    assert info.value.line == 2
    with pytest.raises(DataError, match="missing column"):
        load_table(p, user="user", item="i")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_table(tmp_path / "nope.csv", user="u", item="i")


def test_describe_and_format_summary_on_a_hand_counted_table(tmp_path):
    p = tmp_path / "r.csv"
    # 3 users, 2 items; ratings 5,4,4,1 -> histogram {1:1, 4:2, 5:1}; a dropped duplicate
    p.write_text("u,i,r,t\n1,1,5,0\n1,2,4,86400\n2,1,4,172800\n3,1,2,10\n3,1,1,20\n")
    d = describe(load_table(p, user="u", item="i", rating="r", timestamp="t"))
    assert (d["users"], d["items"], d["interactions"]) == (3, 2, 4)
    assert d["density"] == pytest.approx(4 / 6)
    assert d["rating_histogram"] == [[1.0, 1], [4.0, 2], [5.0, 1]]
    assert d["rating_mean"] == pytest.approx(3.5)
    assert d["duplicates_dropped"] == 1 and d["rows_read"] == 5
    assert d["user_counts"]["max"] == 2 and d["item_counts"]["max"] == 3
    assert d["time_span"] == {
        "first": "1970-01-01T00:00:00+00:00",
        "last": "1970-01-03T00:00:00+00:00",
        "days": 2.0,
    }
    text = format_summary(d, width=10)
    bars = [line for line in text.splitlines() if line.rstrip().endswith("#")]
    assert [b.count("#") for b in bars] == [5, 10, 5]  # 1, 2, 1 ratings against width 10
    assert "duplicates    1 dropped" in text


# --- the rating scale: declared, inferred, observed; outliers flagged, never dropped --------
def _ratings_csv(tmp_path, ratings, name="r.csv"):
    p = tmp_path / name
    rows = "".join(f"{k // 7},{k},{r}\n" for k, r in enumerate(ratings))
    p.write_text("u,i,r\n" + rows)
    return p


@pytest.mark.parametrize(
    ("ratings", "scale", "source"),
    [
        ([1, 2, 3, 4, 5] * 4, (1, 5, 1), "inferred"),
        ([0.5, 1.5, 3, 4.5, 5] * 4, (0.5, 5, 0.5), "inferred"),
        ([1, 4, 6, 7, 2] * 4, (1, 7, 1), "inferred"),
        ([1, 3, 6, 8, 10] * 4, (1, 10, 1), "inferred"),
        ([0, 0, 3, 4, 5] * 4, (0, 5, 1), "observed"),  # many zeros: a 0..5 scale, not outliers
        ([1, 2, 3, 4] * 5, (1, 4, 1), "observed"),  # no 5 anywhere: say only what is there
        ([-9.5, 0.25, 3.1, 10] * 5, (-9.5, 10, None), "observed"),  # continuous (jokes)
        ([1.5, 2.5, 17.5] * 5, (1.5, 17.5, 0.5), "observed"),
    ],
)
def test_scale_is_inferred_and_recorded_without_warnings(tmp_path, ratings, scale, source):
    p = _ratings_csv(tmp_path, ratings)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # legitimate data: no outlier warning
        inter = load_table(p, user="u", item="i", rating="r")
    low, high, step = scale
    assert inter.stats["rating_scale"] == {"low": low, "high": high, "step": step, "source": source}
    assert "rating_outliers" not in inter.stats
    assert len(inter) == len(ratings)


def test_a_seven_among_five_stars_is_kept_and_flagged_with_file_line_value(tmp_path):
    ratings = [4, 5, 3, 1, 2, 5, 4, 3, 7, 4, 5, 2]
    p = _ratings_csv(tmp_path, ratings)
    with pytest.warns(RatingOutlierWarning) as caught:
        inter = load_table(p, user="u", item="i", rating="r")
    assert len(caught) == 1
    w = caught[0].message
    assert (w.file, w.line, w.value, w.count) == (str(p), 10, 7.0, 1)  # header is line 1
    assert str(w).startswith(f"{p}, line 10: rating 7 ")
    assert "1..5 in steps of 1" in str(w) and "\n" not in str(w)
    assert inter.stats["rating_scale"]["source"] == "inferred"
    assert (inter.stats["rating_scale"]["low"], inter.stats["rating_scale"]["high"]) == (1, 5)
    assert inter.stats["rating_outliers"] == {"count": 1, "line": 10, "value": 7.0}
    assert len(inter) == len(ratings) and 7.0 in inter.ratings.tolist()  # kept
    text = format_summary(describe(inter))
    assert (
        "rating scale  1..5 in steps of 1 (inferred from the data; 1 rating outside it, "
        "first at line 10: 7)" in text
    )


def test_outliers_share_bound_and_parquet_rows(tmp_path):
    rng = np.random.default_rng(7)
    r = rng.integers(1, 6, 3000).astype(float)
    r[[100, 2000, 2500]] = [0.0, 9.0, 42.0]  # 3 of 3000 (allowance: 3): still 1..5
    p = tmp_path / "r.parquet"
    pl.DataFrame({"u": np.arange(3000) % 50, "i": np.arange(3000), "r": r}).write_parquet(p)
    with pytest.warns(RatingOutlierWarning, match=r"row 101: rating 0 \(and 2 more\)"):
        inter = load_table(p, user="u", item="i", rating="r")
    assert inter.stats["rating_outliers"] == {"count": 3, "line": 101, "value": 0.0}
    r[:10] = 9.0  # 13 ratings outside 1..5 are too many to be outliers: 0..42 is the scale
    pl.DataFrame({"u": np.arange(3000) % 50, "i": np.arange(3000), "r": r}).write_parquet(p)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inter = load_table(p, user="u", item="i", rating="r")
    assert inter.stats["rating_scale"] == {"low": 0, "high": 42, "step": 1, "source": "observed"}


def test_declared_scale_is_recorded_and_enforced(tmp_path):
    p = _ratings_csv(tmp_path, [1, 2, 3, 4, 5])
    inter = load_table(p, user="u", item="i", rating="r", rating_scale=(1, 5))
    assert inter.stats["rating_scale"] == {"low": 1, "high": 5, "step": None, "source": "declared"}
    assert describe(inter)["rating_scale"]["source"] == "declared"
    assert "rating_scale" not in load_table(p, user="u", item="i").stats  # implicit data


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ((5, 1), "low must be below high"),
        ((1, 1), "low must be below high"),
        ((1, 5, 0), "step must be positive"),
        ((1, 5, -1), "step must be positive"),
        ((1, 5, 3), "divide high - low"),
        ((1,), "(low, high)"),
        ((1, 2, 3, 4), "(low, high)"),
        (("a", "b"), "(low, high)"),
        ((1, float("inf")), "(low, high)"),
    ],
)
def test_bad_rating_scale_is_a_config_error_naming_the_option(value, needle):
    with pytest.raises(ConfigError) as info:
        RatingScale.coerce(value)
    assert "rating_scale" in str(info.value) and "--rating-scale" in str(info.value)
    assert needle in str(info.value)


def test_describe_infers_for_data_built_in_memory():
    from lensrec import Interactions

    inter = Interactions.from_arrays([1, 1, 2, 3], [1, 2, 1, 3], [0.5, 4.5, 5.0, 3.0])
    d = describe(inter)
    assert d["rating_scale"] == {"low": 0.5, "high": 5.0, "step": 0.5, "source": "inferred"}
    assert "rating scale  0.5..5 in steps of 0.5 (inferred from the data)" in format_summary(d)
    assert scale_line(describe(inter.with_ratings(None))) is None


@pytest.mark.parametrize("scale", COMMON_SCALES, ids=str)
def test_every_common_scale_is_found_with_its_planted_outliers(scale, rng):
    grid = np.arange(scale.low, scale.high + scale.step / 2, scale.step)
    r = rng.choice(grid, 3000)
    r[:: len(grid) + 1][: len(grid)] = grid  # every value of the scale occurs
    planted = np.sort(rng.choice(3000, 2, replace=False))
    r[planted] = [scale.high + 40, scale.low - 25]  # far outside, both sides
    guess = infer_rating_scale(r)
    assert (guess.scale, guess.source) == (scale, "inferred")
    assert guess.outliers.tolist() == planted.tolist()
