"""``best_epoch_``: every epoch-trained model says which epoch it kept, with one meaning.

The 1-based epoch whose parameters were kept: the best validation epoch's when validating,
the last epoch run without validation, and after a refit on all training rows the number of
epochs the final model ran.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lensrec import Interactions, MissingExtraError
from lensrec.data.planted import make_blocks, make_ratings
from lensrec.models import MODELS
from lensrec.models._trainer import EpochTrainer
from lensrec.models._validation import fit_with_validation

#: small, quickly over-fitting parameters of every epoch-trained model that keeps an epoch
SMALL: dict[str, dict[str, Any]] = {
    "biased-mf": dict(factors=8, reg_factors=0.01, learning_rate=0.05, learning_rate_decay=1.0),
    "svd": dict(factors=8, learning_rate=0.03, reg=0.01),
    "svdpp": dict(factors=8, learning_rate=0.03, reg=0.01),
    "als": dict(factors=16, reg=0.001),
    "bpr": dict(factors=16),
    "warp": dict(factors=16),
    "ncf": dict(factors=8, layers=2, learning_rate=0.01, fold_in_epochs=3),
}
#: epoch-trained models that keep no single epoch, and why
NO_SELECTION = {"bpmf": "averages every Gibbs sample after the burn-in (n_kept_ counts them)"}


def _epoch_trained() -> list[str]:
    out = []
    for name in MODELS:
        try:
            cls = MODELS[name]
        except MissingExtraError:  # e.g. torch models without the extra
            continue
        if not cls.__module__.startswith("lensrec."):
            continue  # models other tests register (e.g. the tuning tests' toy model)
        if cls.capabilities.epoch_trained:
            out.append(name)
    return sorted(out)


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("LENSREC_THREADS", "1")  # Hogwild epochs repeat bit for bit


@pytest.fixture(scope="module")
def ratings() -> tuple[Interactions, Interactions]:
    full = make_ratings(100, 60, 0.5, factors=2, noise=0.3, random_state=5)
    held = np.random.default_rng(6).random(len(full)) < 0.2
    return full.subset(~held), full.subset(held)


@pytest.fixture(scope="module")
def blocks() -> tuple[Interactions, Interactions]:
    full = make_blocks(n_groups=4, users_per_group=40, items_per_group=25, noise=0.1)[0]
    held = np.random.default_rng(6).random(len(full)) < 0.2
    return full.subset(~held), full.subset(held)


def _data(name: str, ratings, blocks) -> tuple[Interactions, Interactions]:
    return ratings if MODELS[name].capabilities.needs_ratings else blocks


def _model(name: str, epochs: int, **params: Any) -> Any:
    cls = MODELS[name]
    if "valid_fraction" in cls.param_defaults():
        params.setdefault("valid_fraction", 0.0)  # no hold-out of its own unless asked
    return cls(**SMALL[name], epochs=epochs, random_state=0, **params)


def _metric(model: Any) -> tuple[list[float], str]:
    """The validation curve and whether it is better low (RMSE) or high (NDCG)."""
    key = next(k for k in model.history_ if k.startswith("valid_") and model.history_[k])
    return model.history_[key], "min" if key == "valid_rmse" else "max"


def _best(curve: list[float], mode: str) -> int:
    """1-based epoch of the first best value (a later tie does not replace it)."""
    return int(np.argmin(curve) if mode == "min" else np.argmax(curve)) + 1


def _runs(monkeypatch) -> list[int]:
    """Epochs run by every training run from now on, in order."""
    runs: list[int] = []
    original = EpochTrainer.run

    def run(self, *args, **kwargs):
        log, best = original(self, *args, **kwargs)
        runs.append(log.epochs_run)
        return log, best

    monkeypatch.setattr(EpochTrainer, "run", run)
    return runs


def test_every_epoch_trained_model_is_covered():
    assert not set(SMALL) & set(NO_SELECTION)
    assert _epoch_trained() == sorted(set(SMALL) | set(NO_SELECTION))


@pytest.mark.parametrize("name", sorted(NO_SELECTION))
def test_models_that_keep_no_epoch_do_not_claim_one(name, ratings, blocks):
    train, valid = _data(name, ratings, blocks)
    model = MODELS[name](factors=2, n_samples=3, burn_in=2, random_state=0).fit(train, valid)
    assert not hasattr(model, "best_epoch_")


@pytest.mark.parametrize("name", sorted(SMALL))
def test_without_validation_the_last_epoch_run(name, ratings, blocks):
    train, _ = _data(name, ratings, blocks)
    model = _model(name, 4).fit(train)
    assert model.best_epoch_ == 4 == len(model.history_["train_loss"])
    stopped = _model(name, 4).fit(train, callback=lambda epoch, seconds, metrics: epoch >= 2)
    assert stopped.best_epoch_ == 2


@pytest.mark.parametrize("name", sorted(SMALL))
def test_with_validation_the_best_epoch_is_kept(name, ratings, blocks):
    train, valid = _data(name, ratings, blocks)
    model = _model(name, 30, patience=3).fit(train, valid)
    curve, mode = _metric(model)
    best = model.best_epoch_
    assert best == _best(curve, mode)
    assert 1 <= best < len(curve), "the case should stop early (tune SMALL)"
    # its parameters: those of the same model trained for best_epoch_ epochs (validation
    # draws nothing from the seed's stream)
    plain = _model(name, best).fit(train)
    users = np.arange(train.n_users)
    ids, scores = model.recommend(users, k=10)
    ids_plain, scores_plain = plain.recommend(users, k=10)
    np.testing.assert_array_equal(ids, ids_plain)
    np.testing.assert_array_equal(scores, scores_plain)


@pytest.mark.parametrize(
    "name", sorted(n for n in SMALL if "valid_fraction" in MODELS[n].param_defaults())
)
def test_after_a_hold_out_the_epochs_the_final_model_ran(name, ratings, blocks, monkeypatch):
    """Models that carve their own hold-out (``valid_fraction``) and retrain on all rows."""
    train, _ = _data(name, ratings, blocks)
    runs = _runs(monkeypatch)
    model = _model(name, 30, patience=3, valid_fraction=0.2).fit(train)
    curve, mode = _metric(model)  # of the early-stopping run
    assert model.best_epoch_ == _best(curve, mode) < len(curve)
    assert runs[-1] == model.best_epoch_ and len(runs) >= 2


@pytest.mark.parametrize(
    "name",
    sorted(
        n
        for n in SMALL
        if getattr(MODELS[n], "refit_after_validation", False)
        and MODELS[n].capabilities.uses_validation
    ),
)
def test_after_a_run_refit_the_epochs_the_final_model_ran(name, ratings, blocks, monkeypatch):
    """Models whose runs validate on a carved set, then refit for the chosen epochs."""
    train, _ = _data(name, ratings, blocks)
    runs = _runs(monkeypatch)
    model = _model(name, 30, patience=3)
    out = fit_with_validation(model, train, split=None, random_state=0)
    assert out["refit"] and runs == [runs[0], out["epochs_chosen"]]
    assert out["epochs_chosen"] < runs[0]  # it stopped early, and chose the best epoch
    assert model.best_epoch_ == out["epochs_chosen"]
    assert model.validation_history_  # the curve it was chosen on
