"""What a newcomer trips over on the command line (issue 22): each case gave a wrong or
unhelpful answer without a word before."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lensrec.cli import main


@pytest.fixture(scope="module")
def generous_csv(tmp_path_factory):
    """Generous users (even ids) rate good items (< 15) 5 and the rest 4; the others 4 and 1.

    Additive biases fit the cells [[5, 4], [4, 1]] as 3.5 +- 1 +- 1: a generous user's
    unseen good items are predicted about 5.5, above the scale.
    """
    gen = np.random.default_rng(11)
    rows = ["user,item,rating"]
    for u in range(40):
        for i in gen.choice(30, size=12, replace=False):
            good = i < 15
            rating = (5 if good else 4) if u % 2 == 0 else (4 if good else 1)
            rows.append(f"{u},{i},{rating}")
    path = tmp_path_factory.mktemp("gen") / "generous.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def mf_file(generous_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("mf") / "mf.lrec"
    # the baseline (biases only, little shrinkage) is the additive fit; biased-mf ranks and
    # shows its scores through the same code
    args = ["train", "--dataset", str(generous_csv), "--split", "none", "--model", "baseline"]
    assert main([*args, "--set", "reg_user=0.1", "--set", "reg_item=0.1", "--out", str(out)]) == 0
    return out


def test_user_and_history_together_are_refused(mf_file, capsys):
    assert main(["recommend", str(mf_file), "--user", "4", "--history", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not both" in err
    assert main(["recommend", str(mf_file), "--user", "4", "--ratings", "5"]) == 2
    assert "--ratings goes with --history" in capsys.readouterr().err


def test_rating_model_scores_show_the_ranking_not_a_clipped_column(mf_file, capsys):
    from lensrec import load

    model = load(mf_file)
    assert main(["recommend", str(mf_file), "--user", "4", "-k", "5"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[1].split()[:3] == ["rank", "score", "rating"]
    shown = [float(line.split()[1]) for line in lines[2:-1]]
    ratings = [float(line.split()[2]) for line in lines[2:-1]]
    # the raw scores the list was ranked by, distinct and descending; the model's own answer
    ids, scores = model.recommend(model.user_ids_.index([4]), k=5)
    assert shown == pytest.approx(scores[0].tolist(), abs=1e-4)
    assert shown == sorted(shown, reverse=True) and len(set(shown)) == 5
    assert min(shown) > 5.2 and all(1.0 <= r <= 5.0 for r in ratings)
    assert ratings == pytest.approx(np.clip(scores[0], 1, 5).tolist(), abs=0.01)
    assert "5 of these lie outside the 1-5 scale" in err
    assert main(["recommend", str(mf_file), "--user", "4", "-k", "3", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["items"]
    assert rows[0]["score"] > 5.0 and rows[0]["rating"] <= 5.0


# --- files people really have ----------------------------------------------------------------
def test_utf8_byte_order_mark_is_not_part_of_the_first_column(tmp_path, capsys):
    from lensrec.data import load_dataset

    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfuserId,movieId,rating\n1,10,4\n2,10,5\n1,20,3\n")
    data = load_dataset(path)
    assert data.n_users == 2 and data.n_items == 2 and sorted(data.ratings.tolist()) == [3, 4, 5]
    assert sorted(data.user_ids.ids.tolist()) == [1, 2]
    assert main(["data", "info", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["interactions"] == 3


def test_semicolon_separated_csv_is_sniffed_or_the_fix_is_named(tmp_path, capsys):
    from lensrec.data import load_dataset

    path = tmp_path / "shop.csv"
    path.write_text("uid;sku;stars;ts\nu1;a;4;100\nu2;a;5;101\nu1;b;3;102\n")
    data = load_dataset(path, user="uid", item="sku", rating="stars", timestamp="ts")
    assert len(data) == 3 and data.item_ids.ids.tolist() == ["a", "b"]
    assert sorted(data.ratings.tolist()) == [3.0, 4.0, 5.0]
    # forcing the wrong separator: the message names the fix
    assert main(["data", "info", str(path), "--user-col", "uid", "--item-col", "sku",
                 "--sep", ","]) == 2  # fmt: skip
    assert "--sep ';'" in capsys.readouterr().err


def test_item_info_file_gives_titles_to_data_train_recommend_similar(tmp_path, capsys):
    ratings = tmp_path / "shop.csv"
    lines = ["uid,sku,stars"]
    for u in range(12):  # everyone has A-1 and B-2; half also C-3
        lines += [f"u{u},A-1,5", f"u{u},B-2,4"] + ([f"u{u},C-3,3"] if u % 2 else [])
    lines += ["solo,D-4,2"]
    ratings.write_text("\n".join(lines) + "\n")
    info = tmp_path / "items.csv"
    info.write_bytes(
        b'\xef\xbb\xbfsku,title,brand\nA-1,Alpha kettle,Acme\nB-2,"Beta, the toaster",Bolt\n'
        b"C-3,Gamma grill,Grillo\nZ-9,Not sold,Zed\n"
    )
    cols = ["--dataset", str(ratings), "--user-col", "uid", "--item-col", "sku",
            "--rating-col", "stars", "--item-info", str(info)]  # fmt: skip
    assert main(["data", "info", *cols[1:], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["item_info"]["matched"] == 3
    model = tmp_path / "m.lrec"
    assert main(["train", *cols, "--split", "none", "--model", "popularity",
                 "--out", str(model)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["recommend", str(model), "--user", "u0", "-k", "2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["items"]
    assert [(r["item"], r["title"]) for r in rows] == [("C-3", "Gamma grill"), ("D-4", "D-4")]
    knn = tmp_path / "knn.lrec"
    assert main(["train", *cols, "--split", "none", "--model", "item-knn", "--set",
                 "weighting='cosine'", "--out", str(knn)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["similar", str(knn), "--item", "C-3", "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "(Gamma grill)" in out.splitlines()[0]
    assert "Alpha kettle" in out and "Beta, the toaster" in out


def test_item_info_without_a_title_column_is_one_line(tmp_path, capsys):
    ratings = tmp_path / "r.csv"
    ratings.write_text("user,item,rating\n1,1,4\n2,1,5\n")
    info = tmp_path / "info.csv"
    info.write_text("item,brand\n1,Acme\n")
    assert main(["data", "info", str(ratings), "--item-info", str(info)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no title column" in err and "info.csv" in err


# --- rough edges -----------------------------------------------------------------------------
def test_leaderboard_bare_metric_and_every_k_of_the_block(generous_csv, tmp_path, capsys):
    runs = tmp_path / "runs"
    for model in ("popularity", "item-knn"):
        assert main(["evaluate", "--dataset", str(generous_csv), "--split", "random:0.2",
                     "--model", model, "--k", "5,10,20", "--runs-dir", str(runs)]) == 0  # fmt: skip
    capsys.readouterr()
    for asked in ("ndcg", "ndcg@10"):
        assert main(["leaderboard", "--runs-dir", str(runs), "--metric", asked]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert "ranked by ndcg@10" in lines[0]
        header = lines[1].split()
        assert "ndcg@5" in header and "ndcg@20" in header
        assert header.index("ndcg@5") < header.index("ndcg@20")
    # the values shown are the records' own
    from lensrec.experiments.records import load_runs

    values = {round(r.metrics["ndcg@20"], 4) for r in load_runs(runs)}
    assert main(["leaderboard", "--runs-dir", str(runs), "--metric", "ndcg"]) == 0
    table = capsys.readouterr().out.splitlines()
    col = table[1].split().index("ndcg@20")  # "[95%" "CI]" and "[lo," "hi]" both split
    shown = {float(line.split()[col]) for line in table[3:5]}
    assert shown == values
    assert main(["leaderboard", "--runs-dir", str(runs), "--metric", "nope"]) == 2


def test_models_shows_one_model(capsys):
    assert main(["models", "als"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("als  (ALS)") and "biased-mf" not in out
    assert main(["models", "nope"]) == 2
    assert "no model 'nope'" in capsys.readouterr().err


def test_set_with_a_space_names_the_name_value_form(generous_csv, capsys):
    argv = ["evaluate", "--dataset", str(generous_csv), "--set", "factors", "32"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "name=value" in err and "--set factors=32" in err


def test_split_messages_name_every_form_and_what_train_takes(generous_csv, tmp_path, capsys):
    base = ["--dataset", str(generous_csv), "--model", "popularity"]
    assert main(["evaluate", *base, "--split", "bogus"]) == 2
    err = capsys.readouterr().err
    assert "cv:5" in err and "--split none" in err
    assert main(["train", *base, "--split", "cv:5", "--out", str(tmp_path / "m.lrec")]) == 2
    err = capsys.readouterr().err
    assert "make_folds" not in err and "evaluate" in err and "--split none" in err
    assert not (tmp_path / "m.lrec").exists()


def test_unknown_user_names_history_and_n_train_is_explained(mf_file, capsys):
    assert main(["recommend", str(mf_file), "--user", "99999"]) == 2
    assert "--history" in capsys.readouterr().err
    assert main(["recommend", str(mf_file), "--user", "4", "-k", "2"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("n_train: the item's interactions")


def test_temporal_split_dropping_most_of_its_test_suggests_warm_temporal(tmp_path, capsys):
    # users 0..19 rate early; users 20..39 arrive late with new items: the last 30% by time
    # are mostly cold
    rows = ["user,item,rating,timestamp"]
    t = 0
    for u in range(20):
        for i in range(10):
            rows.append(f"{u},{i},{1 + (u + i) % 5},{t}")
            t += 1
    for u in range(20, 40):
        for i in range(10, 14):
            rows.append(f"{u},{i},{1 + (u + i) % 5},{t}")
            t += 1
    path = tmp_path / "late.csv"
    path.write_text("\n".join(rows) + "\n")
    argv = ["evaluate", "--dataset", str(path), "--split", "temporal:0.3", "--model",
            "popularity", "--runs-dir", str(tmp_path / "runs")]  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "warm-temporal" in out + err


@pytest.mark.parametrize("probe_seconds, said", [(4.2, True), (0.01, False)])
def test_a_slow_first_fold_in_is_said_not_silent(mf_file, capsys, monkeypatch, probe_seconds,
                                                 said):  # fmt: skip
    """A first fold-in compiles its kernels (ALS: about 4 s): `recommend --history` times a
    one-item probe first and says so when it was slow; the list itself is unchanged."""
    import types

    import lensrec.cli as cli

    args = ["recommend", str(mf_file), "--history", "3,5", "--ratings", "5,4", "--k", "4", "--json"]
    assert main(args) == 0
    want = capsys.readouterr().out
    ticks = iter([100.0, 100.0 + probe_seconds])  # the probe's start and end
    clock = types.SimpleNamespace(perf_counter=lambda: next(ticks, 200.0))
    monkeypatch.setattr(cli, "time", clock)
    assert main(args) == 0
    out = capsys.readouterr()
    assert out.out == want
    assert ("compiling the fold-in kernels" in out.err) == said
    if said:
        assert "+4.2s" in out.err
