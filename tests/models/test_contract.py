"""The reshaped contract: queries with histories, fold-in, typed state, lazy registry,
capabilities, transactional fit, the trainer, and models defined outside the package."""

from __future__ import annotations

import subprocess
import sys
from typing import ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from lensrec import ConfigError, MissingExtraError, ModelFormatError
from lensrec.models import (
    MODELS,
    BiasedMF,
    Capabilities,
    EpochTrainer,
    Popularity,
    Recommender,
    TrainingDivergedError,
    load,
    register,
)
from lensrec.models._registry import Entry, Registry
from lensrec.models._trainer import carve_rows, holdout_then_refit
from lensrec.testing import check_known_answers, check_model, make_blocks, make_ratings


# --- a model class defined outside the lensrec package ---------------------------------------
class CooccurrenceKNN(Recommender):
    """Item-item co-occurrence counts, scored from each user's history (known answer: blocks)."""

    capabilities: ClassVar[Capabilities] = Capabilities(folds_in=True, uses_history=True)

    def __init__(self, *, shrink: float = 1.0, random_state=None):
        self.shrink = shrink
        self.random_state = random_state

    def _fit(self, train, valid, gen, *, show_progress, callback):
        x = train.csr()
        co = (x.T @ x).tocsr().astype(np.float32)
        co.setdiag(0)
        co.eliminate_zeros()
        self.cooc_ = co.multiply(1.0 / (co.sum(axis=1).A.ravel()[:, None] + self.shrink)).tocsr()

    def _score(self, query, items):
        scores = np.asarray((query.history @ self.cooc_).todense(), dtype=np.float32)
        return scores if items is None else scores[:, items]

    def _similar_scores(self, items):
        return np.asarray(self.cooc_[items].todense(), dtype=np.float32)


class Zeros(Recommender):
    """Deliberately broken: scores everything 0 (passed the old suite)."""

    capabilities: ClassVar[Capabilities] = Capabilities(folds_in=True)

    def __init__(self, *, random_state=None):
        self.random_state = random_state

    def _fit(self, train, valid, gen, *, show_progress, callback):
        self.item_factors_ = np.zeros((train.n_items, 2), dtype=np.float32)
        self.user_factors_ = np.zeros((train.n_users, 2), dtype=np.float32)

    def _user_vectors(self, users):
        return self.user_factors_[users]

    def _item_vectors(self):
        return self.item_factors_

    def _fold_in(self, history):
        return np.zeros((history.shape[0], 2), dtype=np.float32)


def test_external_model_saves_loads_and_passes_the_suite(tmp_path):
    register("test-cooccurrence")(CooccurrenceKNN)
    assert MODELS["test-cooccurrence"] is CooccurrenceKNN
    check_model(CooccurrenceKNN)  # sparse state, history scoring, known answers
    model = CooccurrenceKNN().fit(make_blocks()[0])
    back = load(model.save(tmp_path / "ext.lrec"))
    assert sp.issparse(back.cooc_) and (back.cooc_ != model.cooc_).nnz == 0


def test_unregistered_external_class_is_refused(tmp_path):
    class Unregistered(CooccurrenceKNN):
        pass

    path = Unregistered().fit(make_blocks()[0]).save(tmp_path / "u.lrec")
    with pytest.raises(ModelFormatError, match="not registered"):
        load(path)


def test_a_model_scoring_everything_zero_fails_the_suite():
    register("test-zeros")(Zeros)
    with pytest.raises(AssertionError, match="planted group"):
        check_known_answers(Zeros)
    with pytest.raises(AssertionError, match="planted group"):
        check_model(Zeros)


def test_a_rating_model_predicting_the_mean_fails_the_rmse_ceiling():
    class MeanOnly(BiasedMF):
        def _predict(self, users, items):
            return np.full(len(users), self.global_mean_, dtype=np.float32)

    with pytest.raises(AssertionError, match="RMSE"):
        check_known_answers(lambda **kw: MeanOnly(epochs=30, **kw))


# --- queries, histories, fold-in --------------------------------------------------------------
def test_history_query_matches_fitted_user_for_history_models():
    data, _, _ = make_blocks()
    model = CooccurrenceKNN().fit(data)
    users = np.arange(data.n_users, dtype=np.int32)
    fitted, _ = model.recommend(users, k=5)
    hist = data.csr()
    from_history, _ = model.recommend(None, k=5, history=hist)
    np.testing.assert_array_equal(fitted, from_history)
    # the list-of-ids form of a history is the same query
    rows = [hist.indices[hist.indptr[u] : hist.indptr[u + 1]] for u in range(3)]
    ids, _ = model.recommend_for_history(rows, k=5)
    np.testing.assert_array_equal(ids, fitted[:3])
    one, _ = model.recommend_for_history(rows[0], k=5)
    np.testing.assert_array_equal(one[0], fitted[0])


def test_biased_mf_fold_in_recovers_a_training_user():
    data = make_ratings(n_users=80, n_items=50, density=0.5)
    model = BiasedMF(random_state=0, refit=True).fit(data)
    hist = data.csr("rating")
    folded = model._fold_in(hist[:10])
    learned = model._user_vectors(np.arange(10, dtype=np.int32))
    items = np.arange(data.n_items, dtype=np.int32)
    iv = model._item_vectors()
    # fold-in solves the training objective for one user with items fixed: close to learned
    corr = [np.corrcoef(folded[u] @ iv.T, learned[u] @ iv.T)[0, 1] for u in range(10)]
    assert min(corr) > 0.9, corr
    with pytest.raises(ConfigError, match="ratings"):
        model.recommend_for_history([items[:3]], k=3)


def test_exclude_seen_is_the_default_and_none_disables_it():
    data, _, _ = make_blocks()
    model = Popularity().fit(data)
    seen = data.csr()
    ids, _ = model.recommend(np.arange(data.n_users), k=5)
    for u in range(data.n_users):
        assert not np.isin(ids[u], seen.indices[seen.indptr[u] : seen.indptr[u + 1]]).any()
    top, _ = model.recommend([0], k=1, exclude=None)
    assert top[0, 0] == int(np.argmax(model.item_scores_))
    with pytest.raises(ConfigError, match="exclude"):
        model.recommend([0], exclude="everything")


def test_no_fold_in_is_refused_with_a_clear_error():
    class NoFold(Zeros):
        capabilities: ClassVar[Capabilities] = Capabilities(folds_in=False)

    model = NoFold().fit(make_blocks()[0])
    with pytest.raises(ConfigError, match="never saw"):
        model.recommend(None, history=[[0, 1]])


def test_edges_k_and_similar_items():
    data = make_ratings()
    model = BiasedMF(epochs=3, random_state=0).fit(data)
    for k in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="k must be"):
            model.similar_items([0], k=k)
    with pytest.raises(ConfigError, match="no item-item similarity"):
        Popularity().fit(data).similar_items([0])
    with pytest.raises(TypeError, match="integers"):
        model.predict(np.array([0.0]), np.array([1.0]), missing="nan")


# --- typed state ------------------------------------------------------------------------------
def test_typed_state_round_trips_sparse_tensors_and_json(tmp_path):
    class Typed(Popularity):
        def _fit(self, train, valid, gen, *, show_progress, callback):
            super()._fit(train, valid, gen, show_progress=show_progress, callback=callback)
            self.weights_ = sp.random(
                5, 7, density=0.4, format="csc", random_state=0, dtype=np.float32
            )
            self.net_ = {"layer.weight": np.ones((2, 3), np.float32), "layer.bias": np.zeros(2)}
            self.info_ = {"epochs": [1, 2], "name": "x", "nested": {"a": None}}

    register("test-typed")(Typed)
    model = Typed().fit(make_ratings())
    back = load(model.save(tmp_path / "t.lrec"))
    assert back.weights_.format == "csc" and (back.weights_ != model.weights_).nnz == 0
    assert list(back.net_) == ["layer.weight", "layer.bias"]
    np.testing.assert_array_equal(back.net_["layer.weight"], model.net_["layer.weight"])
    assert back.info_ == model.info_
    assert (back.user_items_ != model.user_items_).nnz == 0


def test_save_reports_an_unwritable_path(tmp_path):
    model = Popularity().fit(make_ratings())
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a directory|is a file"):
        model.save(tmp_path / "file" / "m.lrec")
    with pytest.raises(ConfigError, match="is a directory"):
        model.save(tmp_path)


def test_saved_file_has_usual_permissions(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        path = Popularity().fit(make_ratings()).save(tmp_path / "m.lrec")
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o644


# --- registry and lazy imports ----------------------------------------------------------------
def test_import_lensrec_is_light():
    code = (
        "import sys, lensrec; heavy = [m for m in ('torch', 'gensim', 'optuna', 'matplotlib', "
        "'redis', 'pyspark', 'numba', 'scipy', 'polars') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_registry_is_lazy_and_names_missing_extras(tmp_path, monkeypatch):
    (tmp_path / "model_needing_an_extra.py").write_text("import torch_not_installed_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry((Entry("needs-torch", "model_needing_an_extra:Net", extra="torch"),))
    assert "needs-torch" in reg and list(reg) == ["needs-torch"]
    with pytest.raises(MissingExtraError, match=r"pip install -e '\.\[torch\]'"):
        reg["needs-torch"]
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        reg["nope"]


def test_capabilities_are_declared():
    assert BiasedMF.capabilities.needs_ratings and BiasedMF.capabilities.predicts_ratings
    assert BiasedMF.capabilities.folds_in and BiasedMF.capabilities.epoch_trained
    assert not Popularity.capabilities.needs_ratings and not Popularity.capabilities.personalized
    with pytest.raises(ConfigError, match="needs explicit ratings"):
        BiasedMF().fit(make_blocks()[0])


def test_quadratic_memory_is_refused_up_front():
    class Quadratic(Popularity):
        def estimate_memory(self, n_users, n_items, nnz):
            return 10**15

    model = Quadratic()
    with pytest.raises(ConfigError, match=r"GiB.*available"):
        model.fit(make_ratings())
    assert not model.is_fitted


# --- trainer ----------------------------------------------------------------------------------
def test_trainer_early_stops_restores_best_and_records_history():
    curve = [5.0, 4.0, 3.0, 3.5, 3.6, 3.7, 3.8, 3.9]
    calls = []

    def step(epoch):
        calls.append(epoch)
        return {"train_loss": 1.0 / epoch}

    trainer = EpochTrainer("t", epochs=8, patience=2, tol=0.0, metric="valid_rmse")
    log, best = trainer.run(step, lambda: curve[len(calls) - 1], lambda: len(calls))
    assert log.best_epoch == 3 and best == 3  # the snapshot taken at the best epoch
    assert log.epochs_run == 5 and log.stopped_early
    assert log.history["valid_rmse"] == curve[:5]
    assert len(log.history["seconds"]) == 5


def test_trainer_min_delta_and_callback_stop():
    values = iter([1.0, 0.9999, 0.9998, 0.9997])
    log, _ = EpochTrainer("t", epochs=4, patience=2, tol=0.01).run(
        lambda e: 1.0, lambda: next(values)
    )
    assert log.epochs_run == 3 and log.best_epoch == 3  # best kept; patience counts min-delta
    seen = []
    log, _ = EpochTrainer("t", epochs=10, callback=lambda e, s, m: seen.append(e) or e == 2).run(
        lambda e: 1.0
    )
    assert log.epochs_run == 2 and seen == [1, 2]


def test_trainer_detects_divergence():
    with pytest.raises(TrainingDivergedError, match="epoch 2"):
        EpochTrainer("t", epochs=5).run(lambda e: [1.0, float("nan")][e - 1])
    with pytest.raises(TrainingDivergedError, match="learning_rate"):
        EpochTrainer("t", epochs=5, loss_ceiling=10.0).run(lambda e: 1e6)


def test_biased_mf_divergence_is_an_error_and_leaves_the_model_unfitted():
    model = BiasedMF(learning_rate=1e6, random_state=0)
    with pytest.raises(TrainingDivergedError, match="diverged"):
        model.fit(make_ratings())
    assert not model.is_fitted


def test_carve_rows_random_and_by_time():
    gen = np.random.default_rng(0)
    keep, hold = carve_rows(100, 0.1, gen)
    assert hold.size == 10 and np.union1d(keep, hold).size == 100
    ts = np.arange(100)[::-1]
    keep, hold = carve_rows(100, 0.1, gen, timestamps=ts)
    np.testing.assert_array_equal(hold, np.arange(10))  # the latest timestamps
    assert carve_rows(10, 0.1, gen) is None


def test_holdout_then_refit_trains_again_on_all_rows_for_the_best_epoch():
    calls = []

    def train_on(rows, hold, epochs, is_refit):
        calls.append((None if rows is None else len(rows), epochs, is_refit))
        from lensrec.models import TrainLog

        return "model", TrainLog(best_epoch=0 if is_refit else 4, epochs_run=epochs)

    first, log, again = holdout_then_refit(
        train_on, n_rows=200, epochs=50, valid_given=False, valid_fraction=0.1, refit=True,
        gen=np.random.default_rng(0),
    )  # fmt: skip
    assert calls == [(180, 50, False), (None, 4, True)] and again == "model"
