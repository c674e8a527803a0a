"""Leaderboard intervals and paired tests, ``runs compare``: numbers checked against scipy and
hand computation, users aligned by index, the table's files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from lensrec import ConfigError
from lensrec import experiments as E
from lensrec.experiments.compare import add_stats, compare_runs, format_board, write_board

PROTO = {"dataset": "d", "filters": "none", "split": "last:1", "seed": 1, "k": "10",
         "relevance": "every test item"}  # fmt: skip


def _save(runs: Path, model: str, users: np.ndarray, ndcg: np.ndarray, created: str) -> str:
    rec = E.RunRecord.create(
        dataset="d",
        split="last:1",
        model=model,
        params={"x": model},
        metrics={"ndcg@10": float(ndcg.mean())},
        n_users_evaluated=users.size,
        extra={"protocol": PROTO, "config_key": model},
        run_id=f"2026-{model}",
    )
    rec.created = created
    E.save_run(rec, runs, per_user={"ndcg@10": ndcg, "_users": users.astype(float)})
    return rec.run_id


@pytest.fixture
def runs(tmp_path, rng):
    users = np.arange(50)
    best = rng.random(50)
    close = best - 0.01 + rng.normal(0, 0.05, 50)
    far = best - 0.3 + rng.normal(0, 0.05, 50)
    # the "far" run evaluated the same users in another order: pairing is by user index
    order = rng.permutation(50)
    _save(tmp_path, "best", users, best, "2026-01-01T00:00:01")
    _save(tmp_path, "close", users, close, "2026-01-01T00:00:02")
    _save(tmp_path, "far", users[order], far[order], "2026-01-01T00:00:03")
    return tmp_path, best, close, far


def test_paired_columns_match_scipy_and_hand_means(runs):
    path, best, close, far = runs
    board = add_stats(E.leaderboard(path), path)
    rows = {r["model"]: r for r in board.to_dicts()}
    assert board["model"].to_list()[0] == "best"
    assert rows["best"]["vs_best"] is None and rows["best"]["metric"] == "ndcg@10"
    for name, values in (("close", close), ("far", far)):
        r = rows[name]
        assert r["vs_best"] == pytest.approx(float(np.mean(values - best)), abs=1e-12)
        assert r["p_vs_best"] == pytest.approx(stats.ttest_rel(values, best).pvalue, rel=1e-9)
        assert r["n_paired"] == 50
        assert r["vs_best_lo"] < r["vs_best"] < r["vs_best_hi"]
    assert rows["far"]["p_vs_best"] < 1e-10
    assert rows["far"]["vs_best_hi"] < 0  # the interval excludes no difference
    # no record interval: one is computed from the per-user values, around the mean
    assert rows["close"]["ci_lo"] < float(close.mean()) < rows["close"]["ci_hi"]


def test_misaligned_users_would_change_the_answer(runs):
    """Pairing by position instead of user index gives another (wrong) p-value."""
    path, best, _, far = runs
    board = add_stats(E.leaderboard(path), path)
    p = board.filter(pl.col("model") == "far")["p_vs_best"][0]
    per_far = E.load_per_user(next(r for r in E.load_runs(path) if r.model == "far"), path)
    wrong = stats.ttest_rel(per_far["ndcg@10"], best).pvalue
    assert p != pytest.approx(wrong, rel=1e-3)


def test_format_board_text_and_markdown(runs):
    path, *_ = runs
    board = add_stats(E.leaderboard(path), path)
    text = format_board(board)
    assert "ranked by ndcg@10 (higher is better)" in text
    lines = text.splitlines()
    far = next(line for line in lines if line.split()[1:2] == ["far"])
    assert "worse" in far and "<0.001" in far
    md = format_board(board, kind="markdown")
    assert md.count("\n| ") >= 4 and "|---:|" in md


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".md", ".txt"])
def test_write_board_by_suffix(runs, suffix):
    path, *_ = runs
    board = add_stats(E.leaderboard(path), path)
    out = write_board(board, path / f"board{suffix}")
    if suffix == ".csv":
        back = pl.read_csv(out)
        assert back["model"].to_list() == ["best", "close", "far"]
        assert back["p_vs_best"][2] == pytest.approx(board["p_vs_best"][2])
    elif suffix == ".parquet":
        assert pl.read_parquet(out).equals(board)
    else:
        assert "far" in out.read_text()
    with pytest.raises(ConfigError, match=r"\.csv, \.parquet, \.md or \.txt"):
        write_board(board, path / "board.xlsx")


def test_compare_runs_by_hand(runs):
    path, best, close, _ = runs
    res = compare_runs("close", "2026-best", path)
    (row,) = res["rows"]
    assert res["same_protocol"]
    assert row["diff"] == pytest.approx(float(close.mean() - best.mean()))
    assert row["p"] == pytest.approx(stats.ttest_rel(close, best).pvalue, rel=1e-9)
    assert row["n"] == 50
    with pytest.raises(ConfigError, match="no run record matches 'nothing'"):
        compare_runs("nothing", "best", path)
    with pytest.raises(ConfigError, match="matches 3 run records"):
        compare_runs("2026", "best", path)


def test_runs_compare_cli(runs):
    path, *_ = runs
    root = Path(__file__).resolve().parents[2]
    run = [sys.executable, "-m", "lensrec.cli", "runs", "compare"]
    env = {**__import__("os").environ, "PYTHONPATH": str(root)}
    ok = subprocess.run([*run, "far", "best", "--runs-dir", str(path)], capture_output=True,
                        text=True, env=env, timeout=120)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "ndcg@10" in ok.stdout and "<0.001" in ok.stdout
    bad = subprocess.run([*run, "zzz", "best", "--runs-dir", str(path)], capture_output=True,
                         text=True, env=env, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "zzz" in bad.stderr
