"""The HTML report, opened in real headless Chromium: the page loads, every image decodes, no
console error; its sections and tables hold what the records say; the figures' helpers."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from lensrec.data.planted import make_ratings
from lensrec.experiments import RunSpec, run_spec
from lensrec.report import build_report
from lensrec.report.figures import main_genres

_CHECK = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push('error: ' + e.message), true);
const _ce = console.error;
console.error = (...a) => { window.__errors.push('console: ' + a.join(' ')); _ce(...a); };
window.addEventListener('load', () => {
  const im = Array.from(document.images);
  const bad = im.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt);
  document.body.setAttribute('data-check', JSON.stringify(
    {n: im.length, bad: bad, errors: window.__errors,
     sizes: im.map(i => [i.naturalWidth, i.naturalHeight])}));
});
</script>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("Chromium is missing in CI (.ci/run installs Debian's chromium)")
    pytest.skip("Chromium is not installed (apt-get install -y chromium); CI installs it")


def open_in_chromium(page: Path, tmp: Path) -> dict:
    """Load a copy of ``page`` with a checking script in headless Chromium; return what the
    script saw (images, their sizes, errors) and Chromium's console lines."""
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text  # the report itself has no script
    checked = tmp / "checked.html"
    checked.write_text(text.replace("</title>", "</title>" + _CHECK, 1), encoding="utf-8")
    profile = tmp / "profile"
    res = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--no-first-run",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=10000", "--dump-dom", checked.as_uri()],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    m = re.search(r"data-check=\"([^\"]*)\"", res.stdout)
    assert m, f"the page did not finish loading: {res.stdout[:500]} {res.stderr[-1000:]}"
    seen = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    seen["console"] = [line for line in res.stderr.splitlines() if "CONSOLE" in line]
    return seen


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three runs on a planted dataset read from a file: two rating models and popularity."""
    root = tmp_path_factory.mktemp("report")
    data = make_ratings(120, 80, 0.25, random_state=4)
    csv = root / "ratings.csv"
    data.to_frame().select(["user_id", "item_id", "rating", "timestamp"]).write_csv(csv)
    models = {}
    for name in ("biased-mf", "baseline", "popularity"):
        spec = RunSpec(dataset=str(csv), split="last:2", model=name, seed=3,
                       params={"epochs": 15} if name == "biased-mf" else {})  # fmt: skip
        out = run_spec(spec, runs_dir=root / "runs", model_dir=root / "runs" / "models")
        models[out.record.run_id] = out.model
    return root / "runs", models


def test_report_renders_in_chromium_with_every_image(runs, tmp_path):
    folder, models = runs
    out = build_report(folder, models=models, out=tmp_path / "r.html")
    assert out.images >= 6  # 3 EDA + learning curves + 2 item maps + user map
    seen = open_in_chromium(out.path, tmp_path)
    assert seen["n"] == out.images and seen["bad"] == []
    assert all(w > 100 and h > 100 for w, h in seen["sizes"])
    assert seen["errors"] == [] and seen["console"] == []


def test_report_holds_the_leaderboard_and_the_lists(runs, tmp_path):
    folder, models = runs
    out = build_report(folder, models=models, out=tmp_path / "r.html", maps=False)
    page = out.path.read_text(encoding="utf-8")
    from lensrec.experiments import leaderboard

    board = leaderboard(folder)
    # popularity has no rmse: the block is ranked by ndcg@10, in the leaderboard's order
    assert "Ranked by <b>ndcg@10</b>" in page
    rows = re.findall(r"<tr class=\"(?:best)?\"><td class=\"num\">\d+</td><td>([^<]+)</td>", page)
    assert rows == board["model"].to_list()
    values = sorted(board["ndcg@10"].to_list(), reverse=True)
    assert f'<td class="num">{values[0]:.4f}</td>' in page
    assert "A sample user" in page and "Held out for test" in page
    assert 'src="http' not in page and 'href="http' not in page  # self-contained


def test_report_from_saved_model_files(runs, tmp_path):
    """Without models in memory the saved model files are loaded (``lensrec report``)."""
    folder, _ = runs
    out = build_report(folder, out=tmp_path / "r.html", maps=False)
    page = out.path.read_text(encoding="utf-8")
    assert "A sample user" in page and "no fitted model" not in page


def test_report_cli_writes_and_prints_the_path(runs, tmp_path):
    folder, _ = runs
    import sys

    res = subprocess.run(
        [sys.executable, "-m", "lensrec.cli", "report", "--runs-dir", str(folder), "--out",
         str(tmp_path / "x.html"), "--no-maps"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert str((tmp_path / "x.html").resolve()) in res.stdout.splitlines()[-1]
    empty = subprocess.run(
        [sys.executable, "-m", "lensrec.cli", "report", "--runs-dir", str(tmp_path / "none")],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )  # fmt: skip
    assert empty.returncode == 2 and "no run records" in empty.stderr


def test_main_genre_prefers_the_distinctive_genre():
    assert main_genres(
        [
            ["Action", "Adventure", "Romance", "Sci-Fi", "War"],
            ["Animation", "Children's", "Comedy"],
            ["Drama"],
            [],
            None,
            ["Horror", "Thriller"],
        ]
    ) == [  # fmt: skip
        "Sci-Fi",
        "Animation",
        "Drama",
        "unknown",
        "unknown",
        "Horror",
    ]


@pytest.mark.realdata
def test_ml100k_item_map_puts_star_wars_films_together(tmp_path):
    """biased-mf on ml-100k ua: on the UMAP map the three Star Wars films are closer to each
    other than 95% of item pairs, and the famous films' similar-item lists have titles."""
    try:
        spec = RunSpec(dataset="ml-100k", split="ua", model="biased-mf", seed=42)
        out = run_spec(spec, runs_dir=tmp_path / "runs")
    except Exception as exc:  # no network and no cache
        pytest.skip(f"ml-100k not available: {exc}")
    rep = build_report(tmp_path / "runs", models={out.record.run_id: out.model})
    stat = rep.stats["star_wars_umap_biased-mf"]
    assert stat["share_of_pairs_closer"] < 0.05, stat
    page = rep.path.read_text(encoding="utf-8")
    assert "Toy Story (1995)" in page and "Empire Strikes Back" in page
    assert "Sci-Fi (" in page or rep.images >= 7
    seen = open_in_chromium(rep.path, tmp_path)
    assert seen["bad"] == [] and seen["errors"] == [] and seen["n"] == rep.images
    assert np.isfinite(stat["mean_distance"])


def test_umap_map_separates_cosine_clusters_and_caches_umaps_functions():
    """Two groups of vectors pointing two ways (lengths varying freely, so only the cosine
    sees the groups): on the UMAP map every point's nearest neighbour is in its own group.
    And after the first map umap-learn's jitted functions carry numba's on-disk cache."""
    pytest.importorskip("umap")
    from numba.core.dispatcher import Dispatcher

    from lensrec.report import figures

    gen = np.random.default_rng(0)
    axes = np.zeros((2, 16), np.float32)
    axes[0, :8] = 1.0
    axes[1, 8:] = 1.0
    group = np.repeat([0, 1], 60)
    x = (axes[group] + 0.3 * gen.normal(size=(120, 16))) * gen.uniform(0.1, 10.0, (120, 1))
    xy = figures.embed_2d(x.astype(np.float32), "umap", random_state=0)
    assert xy.shape == (120, 2) and np.isfinite(xy).all()
    d = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    np.fill_diagonal(d, np.inf)
    assert (group[d.argmin(axis=1)] == group).all()
    import umap.layouts

    jitted = [f for f in vars(umap.layouts).values() if isinstance(f, Dispatcher)]
    assert jitted and all(type(f._cache).__name__ != "NullCache" for f in jitted)
