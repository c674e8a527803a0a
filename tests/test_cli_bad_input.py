"""Bad input on the command line: one line on stderr, exit 2, no traceback, nothing half-written.

One row per case (issue: "what a newcomer trips over"). Data-layer cases (malformed files,
downloads) are in tests/data/test_bad_input.py.
"""

from __future__ import annotations

import pytest

from lensrec.cli import main


@pytest.fixture
def ratings_csv(tmp_path):
    rows = ["user,item,rating,timestamp"]
    t = 1_000_000
    for u in range(30):
        for i in range(12):
            if (u * 7 + i * 3) % 4:
                rows.append(f"u{u},i{(u + i) % 20},{1 + (u + i) % 5},{t}")
                t += 1
    path = tmp_path / "r.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def model_file(ratings_csv, tmp_path):
    out = tmp_path / "m.lrec"
    args = ["train", "--dataset", str(ratings_csv), "--split", "random:0.2", "--model", "biased-mf"]
    assert main([*args, "--set", "epochs=2", "--out", str(out)]) == 0
    return out


def _toml(tmp_path, text):
    path = tmp_path / "bench.toml"
    path.write_text(text)
    return str(path)


def _eval(csv, *extra):
    return ["evaluate", "--dataset", str(csv), "--runs-dir", str(csv.parent / "runs"), *extra]


CASES = {
    # name: (argv builder, text expected in the one-line error)
    "empty test part": (lambda c, m, t: _eval(c, "--split", "last:1000"), "no test rows"),
    "no relevant item": (
        lambda c, m, t: _eval(
            c, "--split", "last:2", "--model", "popularity", "--relevance-threshold", "9"
        ),
        "relevant",
    ),
    "--metrics ,": (
        lambda c, m, t: _eval(c, "--split", "last:2", "--metrics", ","),
        "names no metric",
    ),
    "--k 0": (lambda c, m, t: _eval(c, "--split", "last:2", "--k", "0"), "--k"),
    "--set not name=value": (lambda c, m, t: _eval(c, "--set", "factors"), "name=value"),
    "--set unknown parameter": (lambda c, m, t: _eval(c, "--set", "nope=1"), "no parameter 'nope'"),
    "--set bad value": (lambda c, m, t: _eval(c, "--set", "factors=-3"), "factors must be"),
    "diverging learning rate": (
        lambda c, m, t: _eval(c, "--split", "last:2", "--set", "learning_rate=1e6"),
        "diverged",
    ),
    "unknown model": (lambda c, m, t: _eval(c, "--model", "nope"), "unknown model 'nope'"),
    "rating model on implicit data": (
        lambda c, m, t: _eval(
            c,
            "--split",
            "last:2",
            "--model",
            "biased-mf",
            "--min-rating",
            "1",
            "--rating-col",
            "nope",
        ),
        "nope",
    ),
    "similar -k -1": (lambda c, m, t: ["similar", str(m), "--item", "i1", "-k", "-1"], "k must be"),
    "similar -k 0": (lambda c, m, t: ["similar", str(m), "--item", "i1", "-k", "0"], "k must be"),
    "recommend -k 0": (
        lambda c, m, t: ["recommend", str(m), "--user", "u1", "-k", "0"],
        "k must be",
    ),
    "recommend unknown user": (
        lambda c, m, t: ["recommend", str(m), "--user", "zz"],
        "unknown user",
    ),
    "recommend without user or history": (lambda c, m, t: ["recommend", str(m)], "--user"),
    "rating model fold-in without ratings": (
        lambda c, m, t: ["recommend", str(m), "--history", "i1,i2"],
        "--ratings",
    ),
    "not a model file": (
        lambda c, m, t: ["recommend", str(c), "--user", "u1"],
        "not a lensrec model",
    ),
    "model file is a directory": (
        lambda c, m, t: ["recommend", str(t), "--user", "u1"],
        "directory",
    ),
    "--out is a directory": (
        lambda c, m, t: [
            "train",
            "--dataset",
            str(c),
            "--split",
            "none",
            "--model",
            "popularity",
            "--out",
            str(t),
        ],
        "is a directory",
    ),
    "--out under a file": (
        lambda c, m, t: [
            "train",
            "--dataset",
            str(c),
            "--split",
            "none",
            "--model",
            "popularity",
            "--out",
            str(c / "m.lrec"),
        ],
        "not a directory",
    ),
    "--out not writable": (
        lambda c, m, t: [
            "train",
            "--dataset",
            str(c),
            "--split",
            "none",
            "--model",
            "popularity",
            "--out",
            "/proc/lensrec-test/m.lrec",
        ],
        "/proc",
    ),
    "--runs-dir is a file": (
        lambda c, m, t: [
            "evaluate",
            "--dataset",
            str(c),
            "--split",
            "last:2",
            "--model",
            "popularity",
            "--runs-dir",
            str(c),
        ],
        "not a directory",
    ),
    "benchmark config missing model": (
        lambda c, m, t: [
            "benchmark",
            _toml(t, f'dataset = "{c}"\n[[runs]]\nsplit = "last:2"\n'),
            "--runs-dir",
            str(t / "runs"),
        ],
        "missing key 'model'",
    ),
    "benchmark config without runs": (
        lambda c, m, t: ["benchmark", _toml(t, f'dataset = "{c}"\n')],
        "[[runs]]",
    ),
    "benchmark config bad params": (
        lambda c, m, t: [
            "benchmark",
            _toml(t, f'dataset = "{c}"\n[[runs]]\nmodel = "popularity"\nparams = 3\n'),
        ],
        "params must be a table",
    ),
    "benchmark config bad k": (
        lambda c, m, t: [
            "benchmark",
            _toml(t, f'dataset = "{c}"\n[[runs]]\nmodel = "popularity"\nk = "ten"\n'),
        ],
        "k takes positive integers",
    ),
    "benchmark config unknown key": (
        lambda c, m, t: [
            "benchmark",
            _toml(t, f'dataset = "{c}"\n[[runs]]\nmodel = "popularity"\nmodle = 1\n'),
        ],
        "unknown key 'modle'",
    ),
    "benchmark config not TOML": (
        lambda c, m, t: ["benchmark", _toml(t, "dataset = \n")],
        "cannot read the benchmark config",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_exit_2(case, ratings_csv, model_file, tmp_path, capsys):
    build, expected = CASES[case]
    capsys.readouterr()
    workdir = tmp_path / "work"
    workdir.mkdir()
    before = {p.name for p in workdir.iterdir()}
    code = main(build(ratings_csv, model_file, workdir))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    lines = err.splitlines()
    assert lines[-1].startswith("lensrec: error: "), err
    assert "Traceback" not in err
    assert expected in lines[-1], lines[-1]
    # nothing half-written where the command was told to write
    leftovers = {p.name for p in workdir.iterdir()} - before
    assert not [n for n in leftovers if n.endswith(".tmp") or n.endswith(".lrec")], leftovers


def test_recommend_without_training_data_never_returns_seen_items(
    model_file, ratings_csv, tmp_path, capsys
):
    """The model file carries the seen items: deleting the data changes nothing."""
    import json

    import lensrec

    model = lensrec.load(model_file)
    ratings_csv.unlink()
    capsys.readouterr()
    for user in ("u1", "u2", "u3"):
        assert main(["recommend", str(model_file), "--user", user, "-k", "10", "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)["items"]
        u = model.user_ids_.index([user])[0]
        seen = model.user_items_.indices[
            model.user_items_.indptr[u] : model.user_items_.indptr[u + 1]
        ]
        got = model.item_ids_.index([r["item"] for r in rows])
        assert rows and not set(got) & set(seen.tolist())


def test_old_model_file_without_seen_items_needs_no_exclude(model_file, tmp_path, capsys):
    """A model file that cannot exclude seen items says so, unless --no-exclude."""
    import io
    import json
    import zipfile

    old = tmp_path / "old.lrec"
    with zipfile.ZipFile(model_file) as src, zipfile.ZipFile(old, "w") as dst:
        header = json.loads(src.read("header.json"))
        header["state"].pop("user_items_")
        dst.writestr("header.json", json.dumps(header))
        for name in src.namelist():
            if name != "header.json" and not name.startswith("state/user_items_/"):
                dst.writestr(name, io.BytesIO(src.read(name)).getvalue())
    capsys.readouterr()
    assert main(["recommend", str(old), "--user", "u1"]) == 2
    assert "--no-exclude" in capsys.readouterr().err
    assert main(["recommend", str(old), "--user", "u1", "--no-exclude"]) == 0


def test_benchmark_twice_prints_one_table(ratings_csv, tmp_path, capsys):
    config = _toml(
        tmp_path,
        f'dataset = "{ratings_csv}"\n[[runs]]\nmodel = "popularity"\nsplit = "last:2"\n'
        '[[runs]]\nmodel = "popularity"\nsplit = "last:2"\nparams = {by = "rating"}\n',
    )
    runs = str(tmp_path / "runs")
    assert main(["benchmark", config, "--runs-dir", runs]) == 0
    first = capsys.readouterr().out
    assert main(["benchmark", config, "--runs-dir", runs]) == 0
    second = capsys.readouterr().out
    table = [line for line in second.splitlines() if line.lstrip()[:1].isdigit()]
    assert len(table) == 2, second  # two configurations, not four rows
    assert main(["leaderboard", "--runs-dir", runs]) == 0
    board = [line for line in capsys.readouterr().out.splitlines() if line.lstrip()[:1].isdigit()]
    assert len(board) == 2
    assert "filters: none" in first


def test_leaderboard_never_mixes_filtered_and_unfiltered_runs(ratings_csv, tmp_path, capsys):
    runs = str(tmp_path / "runs")
    base = [
        "evaluate",
        "--dataset",
        str(ratings_csv),
        "--split",
        "last:2",
        "--model",
        "popularity",
        "--runs-dir",
        runs,
    ]
    assert main(base) == 0
    assert main([*base, "--min-rating", "4"]) == 0
    capsys.readouterr()
    assert main(["leaderboard", "--runs-dir", runs]) == 0
    blocks = capsys.readouterr().out.split("\n\n")
    heads = [b.splitlines()[0] for b in blocks if "filters:" in b]
    assert any("filters: none" in h for h in heads) and any("rating>=4" in h for h in heads)
    assert len(heads) == 2


def test_quick_benchmark_is_the_default_protocols_with_fewer_models(ratings_csv, tmp_path, capsys):
    """``--quick`` keeps the default's data, protocols and per-run settings (every quick run is
    one of the default runs, both protocols present, a model of each family); a config file
    with it is refused in one line."""
    from lensrec.cli import DEFAULT_BENCHMARK, QUICK_BENCHMARK
    from lensrec.models import MODELS

    quick = QUICK_BENCHMARK["runs"]
    assert quick and all(run in DEFAULT_BENCHMARK["runs"] for run in quick)
    assert QUICK_BENCHMARK["dataset"] == DEFAULT_BENCHMARK["dataset"]
    kinds = {MODELS[r["model"]].capabilities.predicts_ratings for r in quick}
    assert kinds == {True, False} and {r["split"] for r in quick} == {"ua", "last:3"}
    assert len(quick) < len(DEFAULT_BENCHMARK["runs"])
    config = _toml(tmp_path, f'dataset = "{ratings_csv}"\n[[runs]]\nmodel = "popularity"\n')
    capsys.readouterr()
    assert main(["benchmark", config, "--quick", "--runs-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--quick" in err[0]
