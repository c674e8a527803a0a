"""EDA plots and learning curves: real PNG files of non-trivial size; missing matplotlib named."""

from __future__ import annotations

import builtins
import sys

import numpy as np
import pytest

from lensrec import Interactions

pytest.importorskip("matplotlib", reason="plots need the matplotlib extra")

from lensrec import plots  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def is_png(path, min_bytes=5_000) -> bool:
    data = path.read_bytes()
    return data[:8] == PNG_MAGIC and len(data) >= min_bytes


@pytest.fixture
def explicit(rng) -> Interactions:
    n = 5000
    users = (rng.zipf(1.6, n) % 300).astype(np.int64)
    items = (rng.zipf(1.4, n) % 500).astype(np.int64)
    ratings = rng.choice([1, 2, 3, 4, 5], n, p=[0.05, 0.1, 0.3, 0.35, 0.2])
    return Interactions.from_arrays(users, items, ratings, np.arange(n), name="toy")


def test_eda_plots_write_three_pngs(explicit, tmp_path):
    paths = plots.eda_plots(explicit, tmp_path / "eda")
    assert [p.name for p in paths] == [
        "ratings_per_user.png",
        "ratings_per_item.png",
        "rating_distribution.png",
    ]
    for p in paths:
        assert p.exists() and is_png(p), p


def test_eda_plots_skip_rating_bars_for_implicit(explicit, tmp_path):
    paths = plots.eda_plots(explicit.with_ratings(None), tmp_path)
    assert [p.name for p in paths] == ["ratings_per_user.png", "ratings_per_item.png"]
    assert not (tmp_path / "rating_distribution.png").exists()
    assert all(is_png(p) for p in paths)


def test_learning_curve(tmp_path):
    out = plots.learning_curve(
        {"train_rmse": [1.1, 0.95, 0.9], "valid_rmse": [1.12, 1.0, 1.01]}, tmp_path / "lc.png"
    )
    assert is_png(out)
    with pytest.raises(ValueError, match="non-empty"):
        plots.learning_curve({"x": []}, tmp_path / "none.png")


def test_missing_matplotlib_names_the_extra(explicit, tmp_path, monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"pip install lensrec\[plots\]"):
        plots.eda_plots(explicit, tmp_path)
