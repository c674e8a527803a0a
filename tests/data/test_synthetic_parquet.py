"""write_synthetic / `lensrec data synth`: chunked Parquet with synthetic()'s invariants."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from lensrec.cli import main
from lensrec.data import load_dataset
from lensrec.data.synthetic import write_synthetic
from lensrec.errors import ConfigError


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "parts"
    write_synthetic(out, 1500, 800, 40_000, chunk_rows=7_000, random_state=3)
    return out


def test_parts_hold_the_exact_number_of_distinct_pairs(parts):
    files = sorted(parts.glob("part-*.parquet"))
    assert len(files) >= 5  # 40k rows in ~7k-row blocks of users
    df = pl.read_parquet(parts / "*.parquet")
    assert df.columns == ["user_id", "item_id", "rating", "timestamp"]
    assert df.height == 40_000
    assert df.select(pl.struct("user_id", "item_id").is_unique().all()).item()
    assert df["user_id"].min() == 1 and df["user_id"].max() == 1500
    assert df["user_id"].n_unique() == 1500  # every user has something
    assert 1 <= df["item_id"].min() and df["item_id"].max() <= 800
    assert set(df["rating"].unique().to_list()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    # each block of users lives in one part: no user is split across parts
    owners = [set(pl.read_parquet(f)["user_id"].to_list()) for f in files]
    assert sum(len(o) for o in owners) == 1500
    for f in files:  # time order inside a part
        assert np.all(np.diff(pl.read_parquet(f)["timestamp"].to_numpy()) >= 0)


def test_timestamps_increase_within_each_user(parts):
    df = pl.read_parquet(parts / "*.parquet").with_row_index("row")
    bad = (
        df.sort("user_id", "row")
        .with_columns(d=pl.col("timestamp").diff().over("user_id"))
        .filter(pl.col("d") <= 0)
    )
    assert bad.height == 0


def test_skew_is_that_of_synthetic(parts):
    df = pl.read_parquet(parts / "*.parquet")
    counts = np.sort(df["item_id"].value_counts()["count"].to_numpy())[::-1]
    assert counts[:80].sum() / counts.sum() > 0.4  # Zipf(1): most mass on the top 10%
    uc = df["user_id"].value_counts()["count"].to_numpy()
    assert uc.max() > 4 * np.median(uc)
    assert uc.max() <= 400  # at most half the catalogue


def test_one_file_equals_the_parts_and_seed_repeats(tmp_path, parts):
    one = write_synthetic(tmp_path / "r.parquet", 1500, 800, 40_000, chunk_rows=7_000,
                          random_state=3)  # fmt: skip
    a = pl.read_parquet(one)
    b = pl.read_parquet(parts / "*.parquet")
    assert a.equals(b)
    other = write_synthetic(tmp_path / "s.parquet", 1500, 800, 40_000, chunk_rows=7_000,
                            random_state=4)  # fmt: skip
    assert not pl.read_parquet(other).equals(a)
    assert not list(tmp_path.glob(".*tmp"))  # no temporary left behind


def test_load_dataset_reads_a_directory_of_parts(parts):
    inter = load_dataset(parts)
    assert len(inter) == 40_000 and inter.n_users == 1500
    assert inter.ratings is not None and inter.timestamps is not None


def test_implicit_has_no_rating_column(tmp_path):
    out = write_synthetic(tmp_path / "i.parquet", 50, 40, 300, implicit=True, random_state=0)
    assert pl.read_parquet(out).columns == ["user_id", "item_id", "timestamp"]


def test_bad_sizes_and_outputs_are_clear_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="more than half"):
        write_synthetic(tmp_path / "x.parquet", 10, 4, 1000)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        write_synthetic(tmp_path / "file", 10, 40, 100)
    assert main(["data", "synth", "--users", "10", "--out", str(tmp_path / "y.parquet")]) == 2
    assert "--users, --items and --interactions" in capsys.readouterr().err


def test_cli_like_takes_the_registry_shape(tmp_path, capsys):
    out = tmp_path / "like.parquet"
    code = main(["data", "synth", "--like", "ml-100k", "--interactions", "5000", "--out", str(out)])
    assert code == 0
    df = pl.read_parquet(out)
    assert df.height == 5000 and df["user_id"].max() <= 943 and df["item_id"].max() <= 1682
    assert "5,000 interactions, 943 users x 1,682 items" in capsys.readouterr().out
