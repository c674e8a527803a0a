"""Tuning: spaces and grids, a planted optimum found by grid and TPE, pruning, SQLite resume and
sharing, the record of the final run, and the bad-input errors of ``lensrec tune``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, ClassVar

import numpy as np
import pytest

pytest.importorskip("optuna")

from lensrec import ConfigError
from lensrec.data.planted import make_ratings
from lensrec.experiments import RunSpec
from lensrec.models import MODELS, register
from lensrec.models._params import Range, Search
from lensrec.models._trainer import EpochTrainer
from lensrec.models.base import Capabilities, RatingPredictor
from lensrec.testing.cli import run_cli
from lensrec.tune import grid_of, grid_values, model_space, tune

TARGET = 0.7  # the planted optimum of ShiftModel.shift


class ShiftModel(RatingPredictor):
    """Predicts train mean + user offset + ``shift`` - 0.7: validation RMSE is smallest at
    ``shift = 0.7`` (exactly the train-mean predictor), and grows with ``|shift - 0.7|``.

    Epoch-trained: every epoch reports the same validation RMSE, so the pruner sees at once
    which trials are bad. ``epochs_run`` counts epochs over all fits (to see pruning act).
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        needs_ratings=True, predicts_ratings=True, uses_validation=True, epoch_trained=True
    )
    epochs_run: ClassVar[int] = 0
    refit_after_validation: ClassVar[bool] = True

    shift: Annotated[float, Search(-2.0, 2.0)] = 0.0
    kind: Annotated[int, Range(0), Search(0, 3)] = 0
    epochs: Annotated[int, Range(1)] = 8
    random_state: Any = None

    def _fit(self, train, valid, gen, *, show_progress, callback):
        self.mean_ = np.float32(train.ratings.mean())
        offset = np.float32(self.shift - TARGET + 0.1 * self.kind)

        def validate() -> float:
            return float(np.sqrt(np.mean((valid.ratings - (self.mean_ + offset)) ** 2)))

        def step(epoch: int) -> float:
            type(self).epochs_run += 1
            return 1.0

        trainer = EpochTrainer("shift", epochs=self.epochs, metric="valid_rmse",
                               callback=callback)  # fmt: skip
        log, _ = trainer.run(step, validate if valid is not None else None)
        self.offset_ = np.array([offset], np.float32)
        self.best_epoch_ = log.best_epoch

    def _predict(self, users, items):
        return np.full(len(users), self.mean_ + self.offset_[0], np.float32)

    def _score(self, query, items):
        n = self.n_items if items is None else len(items)
        return np.zeros((len(query), n), np.float32)


@pytest.fixture(scope="module", autouse=True)
def _registered():
    """The toy model is known by name only while these tests run (other modules iterate the
    registry)."""
    register("test-shift")(ShiftModel)
    yield
    MODELS._entries.pop("test-shift", None)
    MODELS._classes.pop("test-shift", None)


@pytest.fixture(scope="module")
def data():
    return make_ratings(80, 60, 0.3, random_state=3)


def spec(model: str = "test-shift", **kw: Any) -> RunSpec:
    return RunSpec(
        dataset="planted", split=kw.pop("split", "random:0.2"), model=model, seed=5, **kw
    )


# --- spaces --------------------------------------------------------------------------------
def test_grid_values_by_hand():
    assert grid_values(("int", 8, 256, "log"), 3) == [8, 45, 256]  # 8 * 32 ** 0.5 = 45.25
    assert grid_values(("float", 0.0, 1.0, "linear"), 5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert grid_values(("float", 0.01, 1.0, "log"), 3) == [0.01, 0.1, 1.0]
    assert grid_values(("int", 1, 3, "linear"), 10) == [1, 2, 3]  # rounded, no duplicates
    assert grid_values(("choice", ["a", "b"]), 7) == ["a", "b"]
    assert grid_values(("float", 1.0, 100.0, "log"), 1) == [10.0]


def test_model_space_fixes_narrows_and_replaces():
    cls = MODELS["test-shift"]
    assert set(model_space(cls)) == {"shift", "kind"}
    assert set(model_space(cls, fixed={"kind": 1})) == {"shift"}
    assert model_space(cls, values={"epochs": [2, 4]})["epochs"] == ("choice", [2, 4])
    assert set(model_space(cls, only=["kind"])) == {"kind"}
    assert grid_of(model_space(cls, only=["kind"]), 9) == {"kind": [0, 1, 2, 3]}


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(fixed={"shift": 0.0, "kind": 0}), "search space of test-shift is empty"),
        (dict(only=["nope"]), "test-shift has no parameter 'nope'"),
        (dict(values={"nope": [1]}), "has no parameter 'nope'"),
        (dict(values={"shift": []}), "shift has an empty list"),
    ],
)
def test_model_space_errors(kw, message):
    with pytest.raises(ConfigError, match=message):
        model_space(MODELS["test-shift"], **kw)


# --- finding a planted optimum -------------------------------------------------------------
def test_grid_finds_the_planted_optimum(data, tmp_path):
    out = tune(
        spec(),
        method="grid",
        values={"shift": [-1.3, 0.1, 0.7, 1.5], "kind": [0, 2]},
        data=data,
        runs_dir=tmp_path,
        prune=False,
    )
    assert out.best_params == {"shift": 0.7, "kind": 0}
    assert out.counts == {"complete": 8, "pruned": 0, "fail": 0}
    # the best value is the RMSE of the train-mean predictor on the carved validation part,
    # computed here from the data and the same carve
    from lensrec import split as S
    from lensrec.models._validation import validation_rule

    sp = S.make_split(data, "random:0.2", random_state=5)
    rule = validation_rule("random:0.2")
    carved = S.carve_validation(sp.train, rule.strategy, rule.fraction, random_state=5)
    mean = np.float32(carved.train.ratings.mean())
    expected = np.sqrt(np.mean((carved.valid.ratings.astype(np.float64) - mean) ** 2))
    assert out.best_value == pytest.approx(expected, rel=1e-5)


def test_carves_score_a_trial_on_the_mean_of_several_validation_carves(data, tmp_path):
    from lensrec import split as S
    from lensrec.models._validation import validation_rule

    shifts = [0.1, 0.7, 1.5]
    out = tune(spec(), method="grid", values={"shift": shifts, "kind": [0]}, data=data,
               runs_dir=None, prune=False, carves=3)  # fmt: skip
    # by hand: the shifted train-mean predictor's RMSE on each carve (seeds 5, 6, 7), averaged
    sp = S.make_split(data, "random:0.2", random_state=5)
    rule = validation_rule("random:0.2")
    carves = [S.carve_validation(sp.train, rule.strategy, rule.fraction, random_state=seed)
              for seed in (5, 6, 7)]  # fmt: skip
    assert len({tuple(c.valid.items[:20]) for c in carves}) == 3  # three different carves
    for t in out.trials:
        per = [
            np.sqrt(np.mean((c.valid.ratings.astype(np.float64)
                             - np.float32(c.train.ratings.mean())
                             - np.float32(t.params["shift"] - 0.7)) ** 2))
            for c in carves
        ]  # fmt: skip
        assert t.value == pytest.approx(np.mean(per), rel=1e-5)
    assert out.best_params["shift"] == 0.7
    assert "mean over 3 carves" in out.record_info()["on"]
    one = tune(spec(), method="grid", values={"shift": shifts, "kind": [0]}, data=data,
               runs_dir=None, prune=False)  # fmt: skip
    assert one.study_name != out.study_name  # another objective, another study
    with pytest.raises(ConfigError, match="--carves must be >= 1"):
        tune(spec(), data=data, runs_dir=None, carves=0)


def test_tpe_gets_close_to_the_planted_optimum(data):
    out = tune(spec(), method="tpe", trials=30, data=data, runs_dir=None, only=["shift"],
               prune=False)  # fmt: skip
    assert abs(out.best_params["shift"] - TARGET) < 0.15
    assert out.counts["complete"] == 30


def test_pruning_stops_bad_trials_early(data):
    ShiftModel.epochs_run = 0
    out = tune(spec(), trials=16, data=data, runs_dir=None, only=["shift"], prune=True)
    pruned = [t for t in out.trials if t.state == "pruned"]
    assert pruned, "a constant-per-epoch metric far from the median must be pruned"
    assert all(t.epochs is not None and t.epochs < 8 for t in pruned)
    assert ShiftModel.epochs_run < 16 * 8  # fewer epochs than without pruning
    best = [t for t in out.trials if t.state == "complete"]
    assert min(abs(t.params["shift"] - TARGET) for t in best) < 0.3


def test_the_pruner_spares_trials_that_still_improve():
    """The median rule alone would stop a slow learner at epoch 3 (worse than the median of
    the three flat trials before it); with the patience it is stopped only once it stops
    improving, and a flat bad trial is stopped as soon as the patience runs out."""
    import optuna

    from lensrec.tune._search import PRUNE_PATIENCE, make_pruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", pruner=make_pruner(optuna))
    for _ in range(3):  # the startup trials: flat at 1.0
        t = study.ask()
        for epoch in range(1, 11):
            t.report(1.0, epoch)
        study.tell(t, 1.0)

    def first_pruned(curve: list[float]) -> int | None:
        t = study.ask()
        for epoch, value in enumerate(curve, 1):
            t.report(value, epoch)
            if t.should_prune():
                study.tell(t, state=optuna.trial.TrialState.PRUNED)
                return epoch
        study.tell(t, curve[-1])
        return None

    slow = [0.5 + 2.4 / e for e in range(1, 11)]  # 1.3 at epoch 3 (worse), 0.74 at 10
    assert slow[2] > 1.0 > slow[-1]
    assert first_pruned(slow) is None
    # a slow learner that stalls above the median: stopped once it has not improved for
    # the patience (its best, 1.3 at epoch 3, then flat)
    stalls = [2.8, 1.7, 1.3] + [1.3] * 7
    assert first_pruned(stalls) == 3 + PRUNE_PATIENCE
    flat_bad = [2.0] * 10  # no new best after epoch 1; the median rule's 3 warm-up epochs
    assert first_pruned(flat_bad) == max(1 + PRUNE_PATIENCE, 3)


# --- the final run ------------------------------------------------------------------------
def test_final_run_is_refit_on_train_and_recorded_as_tuned(data, tmp_path):
    out = tune(spec(params={"kind": 1}), method="grid", values={"shift": [0.0, 0.6]},
               data=data, runs_dir=tmp_path)  # fmt: skip
    rec = json.loads(out.final.path.read_text())
    assert rec["params"]["shift"] == 0.6 and rec["params"]["kind"] == 1
    tuning = rec["extra"]["tuning"]
    assert tuning["method"] == "grid" and tuning["trials"]["complete"] == 2
    assert tuning["metric"] == "valid_rmse" and "carved from the training part" in tuning["on"]
    assert tuning["fixed"] == {"kind": 1}
    assert sorted(h["params"]["shift"] for h in tuning["history"]) == [0.0, 0.6]
    # refit on all of train: the model's mean is train's mean, not the carved part's
    from lensrec import split as S

    sp = S.make_split(data, "random:0.2", random_state=5)
    assert float(out.final.model.mean_) == pytest.approx(float(sp.train.ratings.mean()), rel=1e-6)


# --- storage: resume and sharing ----------------------------------------------------------
def test_sqlite_study_resumes_and_counts_finished_trials(data, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    first = tune(spec(), trials=4, storage=url, data=data, runs_dir=None, refit=False,
                 only=["shift"])  # fmt: skip
    assert first.added == 4
    again = tune(spec(), trials=4, storage=url, data=data, runs_dir=None, refit=False,
                 only=["shift"])  # fmt: skip
    assert again.added == 0 and len(again.trials) == 4  # nothing to add, nothing lost
    more = tune(spec(), trials=7, storage=url, data=data, runs_dir=None, refit=False,
                only=["shift"])  # fmt: skip
    assert more.added == 3 and len(more.trials) == 7
    assert [t.number for t in more.trials] == list(range(7))
    assert more.study_name == first.study_name


def test_bad_storage_url_is_one_config_error(data, tmp_path):
    with pytest.raises(ConfigError, match="--storage nosuchdb://x: cannot open"):
        tune(spec(), storage="nosuchdb://x", data=data, runs_dir=None, refit=False)
    with pytest.raises(ConfigError, match=r"--storage sqlite:///.*: cannot open"):
        tune(spec(), storage=f"sqlite:///{tmp_path}/no/such/dir/x.db", data=data,
             runs_dir=None, refit=False)  # fmt: skip


def _tune_args(csv: Path, url: str, trials: int) -> list[str]:
    return ["tune", "--dataset", str(csv), "--model", "baseline", "--split", "random:0.2",
            "--trials", str(trials), "--storage", url, "--study", "shared", "--no-refit"]  # fmt: skip


def test_two_processes_share_one_sqlite_study(csv, tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    # a budget in seconds, not a shared trial total: a total can be filled by whichever process
    # starts first on a loaded machine before the other has imported anything
    args = [*_tune_args(csv, url, 100_000), "--timeout", "6"]
    procs = [run_cli(*args, cwd=tmp_path) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    added = [int(out.split(" added now")[0].rsplit("; ", 1)[1]) for out, _ in outs]
    assert all(a >= 1 for a in added), added  # both processes added trials
    import optuna

    study = optuna.load_study(study_name="shared", storage=url)
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) >= 2 and sum(added) == len(study.trials)


def test_killed_study_resumes_without_losing_trials(csv, tmp_path):
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    proc = run_cli(*_tune_args(csv, url, 200), cwd=tmp_path)
    import optuna

    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and done < 3:
        time.sleep(0.5)
        try:
            done = sum(t.state.is_finished() for t in optuna.load_study(study_name="shared",
                                                                        storage=url).trials)  # fmt: skip
        except (KeyError, Exception):
            done = 0
    proc.kill()
    proc.communicate(timeout=30)
    before = sum(t.state.is_finished() for t in optuna.load_study(study_name="shared",
                                                                  storage=url).trials)  # fmt: skip
    assert before >= 3
    again = run_cli(*_tune_args(csv, url, before + 2), cwd=tmp_path)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    after = [t for t in optuna.load_study(study_name="shared", storage=url).trials
             if t.state.is_finished()]  # fmt: skip
    assert len(after) >= before + 2


# --- the command line ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "nope"], "unknown model 'nope'"),
        (["--model", "baseline", "--set", "nope=1"], "has no parameter 'nope'"),
        (["--model", "baseline", "--params", "nope"], "no parameter 'nope'"),
        (
            ["--model", "popularity", "--set", "by='count'", "--set", "damping=1.0"],
            "search space of popularity is empty",
        ),
        (["--model", "baseline", "--storage", "nosuchdb://x"], "--storage nosuchdb://x"),
        (["--model", "baseline", "--trials", "0"], "--trials must be >= 1"),
        (["--model", "baseline", "--carves", "0"], "--carves must be >= 1"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(csv, tmp_path, extra, message):
    args = ["tune", "--dataset", str(csv), "--split", "random:0.2", "--runs-dir", str(tmp_path),
            *extra]  # fmt: skip
    p = run_cli(*args, cwd=tmp_path)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 2, (out, err)
    lines = [line for line in err.splitlines() if line.startswith("lensrec: error")]
    assert len(lines) == 1 and message in lines[0], err
