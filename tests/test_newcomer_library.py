"""What a newcomer trips over from a notebook (issue 22, item 11)."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest

from lensrec import Interactions
from lensrec.errors import ConfigError, LensrecWarning
from lensrec.evaluate import evaluate


class _Fixed:
    """Recommends items 0, 1, 2 to everyone (a fake whose metrics are known)."""

    def recommend(self, users, k=10, *, exclude=None, items=None):
        n = len(np.asarray(users))
        ids = np.tile(np.arange(k, dtype=np.int32), (n, 1))
        return ids, -np.tile(np.arange(k, dtype=np.float32), (n, 1))


def _pair() -> tuple[Interactions, Interactions]:
    train = Interactions.from_arrays([0, 1, 2, 3], [2, 2, 0, 1])
    # user 0's test item is ranked first, user 1's second
    test = Interactions.from_arrays([0, 1], [0, 1], user_ids=train.user_ids,
                                    item_ids=train.item_ids)  # fmt: skip
    return train, test


def test_eval_result_is_indexable_and_has_a_frame():
    train, test = _pair()
    res = evaluate(_Fixed(), train, test, k=[1, 2], metrics=["hit_rate"], ci=False)
    assert res["hit_rate@1"] == pytest.approx(0.5) and res["hit_rate@2"] == pytest.approx(1.0)
    with pytest.raises(KeyError, match="several k"):
        res["hit_rate"]
    with pytest.raises(KeyError, match="there are: hit_rate@1, hit_rate@2"):
        res["ndcg@10"]
    assert "hit_rate@2" in res and res.keys() == ["hit_rate@1", "hit_rate@2"]
    one = evaluate(_Fixed(), train, test, k=1, metrics=["hit_rate"], ci=False)
    assert one["hit_rate"] == pytest.approx(0.5)
    frame = evaluate(_Fixed(), train, test, k=2, metrics=["hit_rate"]).to_frame()
    assert isinstance(frame, pl.DataFrame)
    assert frame.columns == ["metric", "value", "ci_lo", "ci_hi"]
    assert frame["metric"].to_list() == ["hit_rate@2"] and frame["value"][0] == 1.0


def test_seed_keyword_names_random_state():
    from lensrec.data.synthetic import synthetic
    from lensrec.models import ALS
    from lensrec.split import make_folds, make_split

    data = synthetic(30, 20, 120, random_state=0)
    for call in (lambda: make_split(data, "random:0.2", seed=1),
                 lambda: make_folds(data, "cv:3", seed=1),
                 lambda: synthetic(30, 20, 120, seed=1),
                 lambda: ALS(seed=1)):  # fmt: skip
        with pytest.raises(ConfigError, match=r"random_state=1"):
            call()
    a = make_split(data, "random:0.2", random_state=1)
    b = make_split(data, "random:0.2", random_state=1)
    assert np.array_equal(a.test.users, b.test.users)


def test_wrong_kind_of_hyper_parameter_fails_at_construction():
    from lensrec.models import ALS, BiasedMF, ItemKNN

    with pytest.raises(
        ConfigError, match=r"factors must be an integer.*got '64'.*ALS\(factors=64\)"
    ):
        ALS(factors="64")
    with pytest.raises(ConfigError, match="learning_rate must be a number"):
        BiasedMF(learning_rate="fast")
    with pytest.raises(ConfigError, match="neighbours"):
        ItemKNN(neighbours=2.5)
    # what is of the right kind is stored unchanged; ranges are fit's to check
    assert ALS(factors=0).factors == 0 and BiasedMF(factors="auto").factors == "auto"
    assert ALS(factors=np.int64(8)).factors == 8


def test_run_spec_says_where_it_records_by_default(tmp_path, monkeypatch):
    from lensrec.data.synthetic import synthetic
    from lensrec.experiments import RunSpec, run, run_spec

    path = tmp_path / "r.csv"
    synthetic(40, 30, 300, random_state=0).to_frame().write_csv(path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run, "_said_default_runs", False)
    spec = RunSpec(dataset=str(path), split="random:0.2", model="popularity", seed=1)
    with pytest.warns(LensrecWarning, match=r"recorded this run in .*runs.*runs_dir=None"):
        run_spec(spec)
    assert list((tmp_path / "runs").glob("*.json"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", LensrecWarning)
        run_spec(spec)  # said once
        monkeypatch.setattr(run, "_said_default_runs", False)
        run_spec(spec, runs_dir=tmp_path / "elsewhere")  # asked for: nothing to say


def test_help_promises_only_registered_commands():
    from lensrec.cli import _description, build_parser

    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    text = parser.description
    for word, command in (("tune", "tune"), ("serve", "serve"), ("report", "report")):
        assert (word in text) == (command in commands), (word, text)
    assert "serv" not in _description(["tune"]) and "tune" in _description(["tune"])
    assert "serve" in _description(["serve"])
