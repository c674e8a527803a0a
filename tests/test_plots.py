"""EDA plots and learning curves: real PNG files of non-trivial size; missing matplotlib named."""

from __future__ import annotations

import builtins
import sys

import numpy as np
import pytest

from lensrec import Interactions
from lensrec.errors import ConfigError

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


def hide_matplotlib(monkeypatch) -> None:
    """Make ``import matplotlib`` fail, as on an install without the plots extra."""
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_missing_matplotlib_is_a_config_error_naming_a_command_that_works(
    explicit, tmp_path, monkeypatch
):
    hide_matplotlib(monkeypatch)
    for call in (
        lambda: plots.eda_plots(explicit, tmp_path / "eda"),
        lambda: plots.learning_curve({"x": [1.0]}, tmp_path / "lc.png"),
    ):
        with pytest.raises(ConfigError) as info:
            call()
        msg = str(info.value)
        assert "pip install -e '.[plots]'" in msg  # works from a clone
        assert "pip install 'lensrec[plots]'" in msg and "\n" not in msg
    assert not (tmp_path / "eda").exists()


def test_count_histogram_axis_starts_at_the_data_minimum_with_labelled_ticks(rng):
    counts = np.concatenate([np.full(30, 20), rng.integers(20, 738, 900), [737]])
    inter = Interactions.from_arrays(
        np.repeat(np.arange(counts.size), counts), np.concatenate([np.arange(c) for c in counts])
    )
    ax = plots.eda_figures(inter)["ratings_per_user.png"].axes[0]
    assert ax.get_xlim()[0] == 20  # the smallest count, not 1
    labels = [t.get_text() for t in ax.get_xticklabels()]
    ticks = [float(t) for t in ax.get_xticks()]
    assert labels[0] == "20" and labels[-1] == "737" and ticks[0] == 20 and ticks[-1] == 737
    assert all(label for label in labels) and len(labels) >= 4  # every tick is labelled
    assert "50" in labels and "100" in labels and "500" in labels
    assert not any(t.label1.get_text() for t in ax.xaxis.get_minor_ticks())


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        (20, 737, [20, 50, 100, 200, 500, 737]),
        (1, 583, [1, 2, 5, 10, 20, 50, 100, 200, 583]),
        (3, 3, [3]),
        (9, 11, [9, 11]),
    ],
)
def test_count_ticks(lo, hi, expected):
    assert plots.count_ticks(lo, hi) == expected


def test_eda_out_that_is_a_file_or_unwritable_is_one_config_error_and_writes_nothing(
    tmp_path, monkeypatch
):
    explicit = Interactions.from_arrays([1, 1, 2], [1, 2, 1], [4.0, 5.0, 3.0], name="tiny")
    a_file = tmp_path / "eda"
    a_file.write_text("not a directory")
    for out in (a_file, a_file / "sub"):
        with pytest.raises(ConfigError) as info:
            plots.eda_plots(explicit, out)
        assert str(a_file) in str(info.value) and "\n" not in str(info.value)
    assert a_file.read_text() == "not a directory"

    import lensrec._io as io_mod

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(io_mod.tempfile, "mkstemp", refuse)  # a read-only directory
    out = tmp_path / "ro"
    out.mkdir()
    with pytest.raises(ConfigError, match="not writable"):
        plots.eda_plots(explicit, out)
    assert list(out.iterdir()) == []
