"""Run records: save / load round trip, atomic files, warnings on bad files, leaderboard order."""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lensrec import ConfigError
from lensrec import experiments as E
from lensrec.errors import LensrecWarning


def make(model="biased-mf", metrics=None, fit=1.5, split="ua", **kw):
    return E.RunRecord.create(
        dataset="ml-100k",
        split=split,
        model=model,
        params={"factors": np.int64(32), "learning_rate": 0.01, "random_state": 42},
        metrics=metrics if metrics is not None else {"rmse": 0.93, "ndcg@10": 0.1},
        ci={"rmse": (0.92, np.float32(0.94))},
        n_users_evaluated=943,
        timings={"fit_seconds": fit, "eval_seconds": 0.2},
        extra={"split_report": {"rows_dropped": np.int64(3)}, "seed": 42},
        **kw,
    )


def test_create_stamps_time_versions_and_commit():
    rec = make()
    created = datetime.fromisoformat(rec.created)
    assert created.utcoffset().total_seconds() == 0
    assert set(rec.versions) == {"python", "lensrec", "numpy", "scipy", "polars", "numba"}
    assert rec.versions["numpy"] == np.__version__ and rec.versions["polars"] == pl.__version__
    in_repo = shutil.which("git") and (Path(E.__file__).resolve().parents[2] / ".git").exists()
    if in_repo:
        assert re.fullmatch(r"[0-9a-f]{40}", rec.git_commit or "")
    else:
        assert rec.git_commit is None
    assert "biased-mf" in rec.run_id and rec.run_id != make().run_id


def test_git_commit_outside_a_repo_is_none(tmp_path):
    assert E.git_commit(tmp_path) is None


def test_save_and_load_round_trip(tmp_path):
    rec = make()
    per_user = {"ndcg@10": np.array([0.0, 0.5, 1.0]), "rmse": np.array([1.25, 0.5])}
    path = E.save_run(rec, tmp_path / "runs", per_user=per_user)
    assert path == tmp_path / "runs" / f"{rec.run_id}.json"
    raw = json.loads(path.read_text())
    assert raw["params"] == {"factors": 32, "learning_rate": 0.01, "random_state": 42}
    assert raw["ci"]["rmse"] == [0.92, pytest.approx(0.94)]
    assert raw["extra"]["split_report"]["rows_dropped"] == 3
    assert raw["per_user_file"] == f"{rec.run_id}.per_user.parquet"
    # no temporary files left behind
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(
        [path.name, raw["per_user_file"]]
    )
    (loaded,) = E.load_runs(tmp_path / "runs")
    assert loaded.run_id == rec.run_id and loaded.metrics == {"rmse": 0.93, "ndcg@10": 0.1}
    assert loaded.n_users_evaluated == 943 and loaded.timings["fit_seconds"] == 1.5
    back = E.load_per_user(loaded, tmp_path / "runs")
    assert set(back) == {"ndcg@10", "rmse"}
    np.testing.assert_array_equal(back["ndcg@10"], [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(back["rmse"], [1.25, 0.5])


def test_non_finite_metrics_become_null(tmp_path):
    rec = make(metrics={"rmse": float("nan"), "ndcg@10": 0.2})
    path = E.save_run(rec, tmp_path)
    text = path.read_text()
    assert "NaN" not in text and json.loads(text)["metrics"]["rmse"] is None


def test_load_runs_warns_naming_bad_files(tmp_path):
    E.save_run(make(), tmp_path)
    (tmp_path / "broken.json").write_text("{ not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "nokeys.json").write_text('{"metrics": {}}')
    with pytest.warns(LensrecWarning) as caught:
        runs = E.load_runs(tmp_path)
    assert len(runs) == 1
    msg = str(caught[0].message)
    assert "broken.json" in msg and "list.json" in msg and "nokeys.json" in msg and "3" in msg


def test_load_runs_missing_dir_is_empty(tmp_path):
    assert E.load_runs(tmp_path / "nope") == []
    assert E.leaderboard(tmp_path / "nope").height == 0


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    rec = make()
    path = E.save_run(rec, tmp_path)
    before = path.read_text()

    def boom(*a, **k):
        raise OSError("disk full")

    import lensrec._io

    monkeypatch.setattr(lensrec._io.os, "replace", boom)
    rec.metrics["rmse"] = 0.5
    with pytest.raises(OSError, match="disk full"):
        E.save_run(rec, tmp_path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # the temp file was removed


def test_unsafe_run_id_refused(tmp_path):
    with pytest.raises(ConfigError, match="safe file name"):
        E.save_run(make(run_id="../evil"), tmp_path)


@pytest.fixture
def board_dir(tmp_path):
    E.save_run(
        make("popularity", {"rmse": 1.02, "ndcg@10": 0.05}, fit=0.01, run_id="r-pop"), tmp_path
    )
    E.save_run(make("biased-mf", {"rmse": 0.91, "ndcg@10": 0.04}, fit=2.0, run_id="r-mf"), tmp_path)
    E.save_run(make("als", {"ndcg@10": 0.12}, fit=1.0, run_id="r-als"), tmp_path)
    return tmp_path


def test_leaderboard_sorts_by_metric_direction(board_dir):
    by_rmse = E.leaderboard(board_dir, metric="rmse")
    assert by_rmse["run_id"].to_list() == ["r-mf", "r-pop", "r-als"]  # ascending, missing last
    by_ndcg = E.leaderboard(board_dir, metric="ndcg@10")
    assert by_ndcg["run_id"].to_list() == ["r-als", "r-pop", "r-mf"]  # descending
    default = E.leaderboard(board_dir)  # ndcg@k first when present
    assert default["run_id"].to_list() == ["r-als", "r-pop", "r-mf"]
    row = by_rmse.row(0, named=True)
    assert (row["dataset"], row["split"], row["model"], row["fit_seconds"], row["n_users"]) == (
        "ml-100k",
        "ua",
        "biased-mf",
        2.0,
        943,
    )
    assert row["params"] == "factors=32, learning_rate=0.01"  # the seed is not a key parameter
    with pytest.raises(ConfigError, match="ndcg@10, rmse"):
        E.leaderboard(board_dir, metric="map@10")


def test_leaderboard_groups_by_dataset_and_split(tmp_path):
    # a better ndcg on another split must not jump ahead of the ua group
    E.save_run(make("a", {"ndcg@10": 0.30}, run_id="r-last", split="last:3"), tmp_path)
    E.save_run(make("b", {"ndcg@10": 0.05}, run_id="r-ua-low"), tmp_path)
    E.save_run(make("c", {"ndcg@10": 0.10}, run_id="r-ua-high"), tmp_path)
    board = E.leaderboard(tmp_path)
    assert board["run_id"].to_list() == ["r-last", "r-ua-high", "r-ua-low"]


def test_leaderboard_csv_and_text(board_dir, tmp_path):
    df = E.leaderboard(board_dir, metric="rmse")
    out = E.write_leaderboard_csv(df, tmp_path / "sub" / "board.csv")
    back = pl.read_csv(out)
    assert back["run_id"].to_list() == ["r-mf", "r-pop", "r-als"]
    assert back["rmse"].to_list()[:2] == [0.91, 1.02]
    text = E.format_leaderboard(df)
    lines = text.splitlines()
    assert lines[0].startswith(
        "ml-100k | filters: none | split: ua"
    )  # the protocol heads the block
    assert lines[1].split()[:3] == ["#", "model", "params"]
    assert set(lines[2]) <= {"-", " "}
    assert len(lines) == 3 + 3
    assert "0.9100" in lines[3] and "biased-mf" in lines[3]
    assert lines[5].split()[1] == "als" and " - " in lines[5]  # missing rmse shown as '-'
    assert max(map(len, lines)) <= 100


def test_leaderboard_text_shows_what_differs_from_the_defaults(tmp_path):
    from lensrec.models import BiasedMF, Popularity

    mf = BiasedMF(random_state=1).get_params()
    E.save_run(
        E.RunRecord.create(
            dataset="d",
            split="ua",
            model="biased-mf",
            params=mf,
            metrics={"rmse": 0.9},
            run_id="r-default",
        ),
        tmp_path,
    )
    E.save_run(
        E.RunRecord.create(
            dataset="d",
            split="ua",
            model="biased-mf",
            params={**mf, "factors": 64, "rating_range": (1.0, 5.0)},
            metrics={"rmse": 0.8},
            run_id="r-changed",
        ),
        tmp_path,
    )
    E.save_run(
        E.RunRecord.create(
            dataset="d",
            split="ua",
            model="popularity",
            params={**Popularity().get_params(), "by": "mean"},
            metrics={"rmse": 1.0},
            run_id="r-pop",
        ),
        tmp_path,
    )
    E.save_run(
        E.RunRecord.create(
            dataset="d",
            split="ua",
            model="gone-model",
            params={"a": 1},
            metrics={"rmse": 1.1},
            run_id="r-gone",
        ),
        tmp_path,
    )
    board = E.leaderboard(tmp_path, metric="rmse")
    changed = dict(zip(board["run_id"].to_list(), board["changed"].to_list(), strict=True))
    assert changed == {
        "r-changed": "factors=64, rating_range=[1.0, 5.0]",
        "r-default": "defaults",
        "r-pop": "by=mean",
        "r-gone": "a=1",
    }
    assert "factors=32" in board.filter(pl.col("run_id") == "r-default")["params"][0]  # all kept
    text = E.format_leaderboard(board, max_params=80).splitlines()
    assert (
        text[3].split()[2:4] == ["factors=64,", "rating_range=[1.0,"]
        and text[4].split()[2] == "defaults"
    )


# --- run_spec: cross-validation and cold rows ----------------------------------------------------
@pytest.fixture
def small_csv(tmp_path):
    from lensrec.testing import make_ratings

    data = make_ratings(n_users=50, n_items=30, density=0.4)
    frame = data.to_frame()
    path = tmp_path / "small.csv"
    frame.write_csv(path)
    return path


def test_run_spec_cross_validation_means_the_folds(small_csv, tmp_path):
    spec = E.RunSpec(dataset=str(small_csv), split="cv:3", model="biased-mf",
                     params={"epochs": 3}, metrics=("rmse", "mae"), seed=1)  # fmt: skip
    out = E.run_spec(spec, runs_dir=tmp_path / "runs")
    folds = out.record.extra["folds"]
    assert len(folds) == 3
    for m in ("rmse", "mae"):
        assert out.result.metrics[m] == pytest.approx(np.mean([f[m] for f in folds]))
        lo, hi = out.result.ci[m]
        assert lo < out.result.metrics[m] < hi
    assert "3 folds" in out.split.summary()


def test_model_files_are_one_per_configuration(small_csv, tmp_path):
    """A rerun replaces its configuration's model file; another configuration adds one."""
    from lensrec.models import load

    models = tmp_path / "runs" / "models"

    def run(epochs: int):
        spec = E.RunSpec(dataset=str(small_csv), split="random:0.2", model="baseline",
                         params={"epochs": epochs}, metrics=("rmse",), seed=1)  # fmt: skip
        return E.run_spec(spec, runs_dir=tmp_path / "runs", model_dir=models)

    first, again, other = run(3), run(3), run(5)
    assert first.record.run_id != again.record.run_id
    assert first.record.extra["model_file"] == again.record.extra["model_file"]
    assert other.record.extra["model_file"] != first.record.extra["model_file"]
    assert sorted(p.name for p in models.iterdir()) == sorted(
        Path(o.record.extra["model_file"]).name for o in (first, other)
    )
    assert load(other.record.extra["model_file"]).get_params()["epochs"] == 5


def test_cold_metrics_add_up_to_all(tmp_path):
    from lensrec import Interactions
    from lensrec.evaluate import evaluate
    from lensrec.models import BiasedMF
    from lensrec.split import make_split

    gen = np.random.default_rng(0)
    n = 600
    users = gen.integers(0, 40, n)
    items = gen.integers(0, 30, n)
    ts = np.arange(n)
    users[-40:] += 100  # new users appear at the end: cold in a temporal split
    data = Interactions.from_arrays(users, items, gen.integers(1, 6, n).astype(float), ts)
    sp = make_split(data, "temporal:0.2")
    model = BiasedMF(epochs=3, random_state=0).fit(sp.train)
    res = evaluate(model, sp.train, sp.test, metrics=["rmse", "mae"], cold=sp.cold_test)
    m = res.metrics
    n_cold, n_warm = len(sp.cold_test), res.n_ratings
    assert m["cold_share"] == pytest.approx(n_cold / (n_cold + n_warm))
    assert m["rmse_all"] ** 2 * (n_cold + n_warm) == pytest.approx(
        m["rmse"] ** 2 * n_warm + m["rmse_cold"] ** 2 * n_cold, rel=1e-6
    )
    # the cold predictions are the baseline fallback: mu + whichever bias is known
    pred = model.predict(sp.cold_test.users, sp.cold_test.items, missing="baseline")
    want = np.sqrt(np.mean((pred - sp.cold_test.ratings) ** 2))
    assert m["rmse_cold"] == pytest.approx(want, rel=1e-6)
