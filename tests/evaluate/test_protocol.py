"""The evaluation protocol, with small fake models whose lists are known by construction."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp

from lensrec import Interactions
from lensrec.errors import ConfigError
from lensrec.evaluate import EvalResult, evaluate


class FixedScores:
    """Ranks items by a fixed ``[n_users, n_items]`` score matrix (ties: lower index first).

    Follows the model contract: ``exclude`` is the full users x items matrix and row
    ``users[i]`` applies to ``users[i]``. ``honour_exclude=False`` makes a model that ignores
    it (to show the protocol still never counts seen items).
    """

    def __init__(self, scores: np.ndarray, *, honour_exclude: bool = True):
        self.scores = np.asarray(scores, dtype=np.float32)
        self.honour_exclude = honour_exclude
        self.calls: list[tuple[np.ndarray, int, object]] = []

    def recommend(self, users, k=10, *, exclude=None, items=None):
        users = np.asarray(users, dtype=np.int32)
        self.calls.append((users.copy(), k, exclude))
        s = self.scores[users].astype(np.float64)
        if exclude is not None and self.honour_exclude:
            rows = sp.csr_matrix(exclude)[users]
            for i in range(len(users)):  # a slow, obviously right fake
                s[i, rows.indices[rows.indptr[i] : rows.indptr[i + 1]]] = -np.inf
        ids = np.full((len(users), k), -1, dtype=np.int32)
        out = np.full((len(users), k), -np.inf, dtype=np.float32)
        for i in range(len(users)):
            order = sorted(range(s.shape[1]), key=lambda j: (-s[i, j], j))
            order = [j for j in order if np.isfinite(s[i, j])][:k]
            ids[i, : len(order)] = order
            out[i, : len(order)] = s[i, order]
        return ids, out


class FixedScoresWithPredict(FixedScores):
    """Also predicts ratings: ``predict(u, i) = 3 + 0.25 * ((u + i) % 5 - 2)``."""

    def predict(self, users, items):
        u = np.asarray(users, dtype=np.int64)
        i = np.asarray(items, dtype=np.int64)
        return (3.0 + 0.25 * ((u + i) % 5 - 2)).astype(np.float32)


def _split(rows_train, rows_test, ratings: bool = False):
    """Train / test sharing IdMaps; rows are (user, item, rating); ids equal indices."""
    rows = rows_train + rows_test
    users = [r[0] for r in rows]
    items = [r[1] for r in rows]
    rts = [r[2] for r in rows] if ratings else None
    full = Interactions.from_arrays(users, items, rts, duplicates="keep")
    # ids are ints 0..n-1 and every id appears, so index == id
    assert full.user_ids.ids.tolist() == sorted(set(users))
    assert full.item_ids.ids.tolist() == sorted(set(items))
    n_train = len(rows_train)
    mask = np.arange(len(rows)) < n_train
    return full.subset(mask), full.subset(~mask)


# 3 users, 5 items. Every user scores items 0 > 1 > 2 > 3 > 4 (a popularity list).
SCORES = np.tile(np.array([5, 4, 3, 2, 1], dtype=np.float32), (3, 1))
TRAIN = [(0, 0, 5.0), (1, 1, 4.0), (1, 2, 2.0), (2, 4, 3.0)]
TEST = [(0, 1, 5.0), (0, 3, 2.0), (1, 0, 4.0), (2, 2, 1.0), (2, 3, 2.0)]


def test_hand_case_with_exclusion() -> None:
    train, test = _split(TRAIN, TEST)
    res = evaluate(
        FixedScores(SCORES), train, test, k=2, metrics=["precision", "recall", "ndcg", "mrr"]
    )
    # seen items removed: user0 [1, 2] (0 seen), relevant {1, 3}: hit at rank 1
    #                     user1 [0, 3] (1, 2 seen), relevant {0}: hit at rank 1
    #                     user2 [0, 1] (4 seen), relevant {2, 3}: no hit
    np.testing.assert_allclose(res.per_user["precision@2"], [1 / 2, 1 / 2, 0.0])
    np.testing.assert_allclose(res.per_user["recall@2"], [1 / 2, 1.0, 0.0])
    # ndcg: user0 1 / (1 + 1/log2(3)); user1 1 / 1; user2 0
    np.testing.assert_allclose(res.per_user["ndcg@2"], [1 / (1 + 1 / math.log2(3)), 1.0, 0.0])
    np.testing.assert_allclose(res.per_user["mrr@2"], [1.0, 1.0, 0.0])
    assert res.metrics["precision@2"] == pytest.approx((0.5 + 0.5 + 0) / 3)
    assert res.metrics["recall@2"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert res.users.tolist() == [0, 1, 2]
    assert res.n_users == 3 and res.skipped_users.size == 0


def test_hand_case_without_exclusion() -> None:
    train, test = _split(TRAIN, TEST)
    res = evaluate(FixedScores(SCORES), train, test, k=2, metrics=["precision"], exclude_seen=False)
    # everyone gets [0, 1]: user0 relevant {1, 3} -> 1 hit; user1 {0} -> 1; user2 {2, 3} -> 0
    np.testing.assert_allclose(res.per_user["precision@2"], [0.5, 0.5, 0.0])


def test_protocol_passes_full_train_matrix_indexed_by_user() -> None:
    train, test = _split(TRAIN, TEST)
    model = FixedScores(SCORES)
    evaluate(model, train, test, k=2, metrics=["recall"], batch_size=2)
    assert [c[0].tolist() for c in model.calls] == [[0, 1], [2]]
    for _, k, exclude in model.calls:
        assert k == 2
        assert exclude.shape == (train.n_users, train.n_items)
        assert (exclude != train.csr()).nnz == 0
    model = FixedScores(SCORES)
    evaluate(model, train, test, k=2, metrics=["recall"], exclude_seen=False)
    assert all(c[2] is None for c in model.calls)


def test_seen_items_never_count() -> None:
    # user0 has item 0 in train AND in test (a re-rating); the model ignores `exclude` and
    # recommends [0, 1]. Item 0 must not count as a hit, nor as a relevant item.
    train, test = _split(TRAIN, TEST + [(0, 0, 3.0)])
    leaky = FixedScores(SCORES, honour_exclude=False)
    res = evaluate(leaky, train, test, k=2, metrics=["precision", "recall"])
    # user0: list [0, 1], relevant {1, 3} (0 removed as seen) -> 1 hit: precision 1/2, recall 1/2
    assert res.per_user["precision@2"][0] == pytest.approx(0.5)
    assert res.per_user["recall@2"][0] == pytest.approx(0.5)
    # and a user whose only test items were seen in training is skipped
    train2, test2 = _split(TRAIN + [(2, 2, 1.0), (2, 3, 1.0)], TEST)
    res2 = evaluate(FixedScores(SCORES), train2, test2, k=2, metrics=["recall"])
    assert res2.users.tolist() == [0, 1]
    assert res2.skipped_users.tolist() == [2]


def test_relevance_threshold() -> None:
    train, test = _split(TRAIN, TEST, ratings=True)
    res = evaluate(
        FixedScores(SCORES),
        train,
        test,
        k=2,
        metrics=["recall", "precision"],
        relevance_threshold=4,
    )
    # ratings >= 4: user0 {1 (5.0)}, user1 {0 (4.0)}, user2 none (1.0, 2.0) -> skipped
    assert res.users.tolist() == [0, 1]
    assert res.skipped_users.tolist() == [2]
    # user0 list [1, 2] -> recall 1/1; user1 list [0, 3] -> recall 1/1
    np.testing.assert_allclose(res.per_user["recall@2"], [1.0, 1.0])
    np.testing.assert_allclose(res.per_user["precision@2"], [0.5, 0.5])
    # threshold 2: user0 {1, 3}, user1 {0}, user2 {3} (2.0; 2 has 1.0)
    res = evaluate(FixedScores(SCORES), train, test, k=2, metrics=["recall"], relevance_threshold=2)
    # user2's list is [0, 1] -> no hit
    np.testing.assert_allclose(res.per_user["recall@2"], [0.5, 1.0, 0.0])
    implicit_train, implicit_test = _split(TRAIN, TEST)
    with pytest.raises(ConfigError, match="ratings"):
        evaluate(FixedScores(SCORES), implicit_train, implicit_test, relevance_threshold=4)


def _random_data(rng: np.random.Generator, n_users: int = 60, n_items: int = 40):
    rows = {(u, i) for u in range(n_users) for i in range(n_items) if rng.random() < 0.15}
    rows |= {(u, 0) for u in range(n_users)} | {(0, i) for i in range(n_items)}
    rows = sorted(rows)
    in_train = rng.random(len(rows)) < 0.7
    train = [
        (u, i, float(rng.integers(1, 6))) for (u, i), t in zip(rows, in_train, strict=True) if t
    ]
    test = [
        (u, i, float(rng.integers(1, 6))) for (u, i), t in zip(rows, in_train, strict=True) if not t
    ]
    return _split(train, test, ratings=True)


def test_results_do_not_depend_on_batch_size(rng: np.random.Generator) -> None:
    train, test = _random_data(rng)
    scores = rng.random((train.n_users, train.n_items)).astype(np.float32)
    results = [
        evaluate(FixedScores(scores), train, test, k=[3, 7], batch_size=b) for b in (1, 7, 1000)
    ]
    first = results[0]
    assert first.n_users > 20
    for other in results[1:]:
        assert other.metrics == first.metrics
        assert other.ci == first.ci
        assert other.users.tolist() == first.users.tolist()
        for name, arr in first.per_user.items():
            np.testing.assert_array_equal(other.per_user[name], arr)


def test_cutoffs_share_one_list(rng: np.random.Generator) -> None:
    train, test = _random_data(rng)
    scores = rng.random((train.n_users, train.n_items)).astype(np.float32)
    both = evaluate(FixedScores(scores), train, test, k=[2, 5], ci=False)
    only2 = evaluate(FixedScores(scores), train, test, k=2, ci=False)
    for name in ("precision", "recall", "ndcg", "map", "mrr", "hit_rate", "coverage"):
        assert both.metrics[f"{name}@2"] == pytest.approx(only2.metrics[f"{name}@2"])
        assert f"{name}@5" in both.metrics
    assert both.ci == {}
    # recall grows with k, precision@k of a ranked list of random scores: recall@5 >= recall@2
    assert both.metrics["recall@5"] >= both.metrics["recall@2"]


def test_rating_metrics_for_a_predict_capable_model(rng: np.random.Generator) -> None:
    train, test = _random_data(rng)
    scores = rng.random((train.n_users, train.n_items)).astype(np.float32)
    res = evaluate(FixedScoresWithPredict(scores), train, test, k=5)
    u = test.users.astype(np.int64)
    i = test.items.astype(np.int64)
    pred = 3.0 + 0.25 * ((u + i) % 5 - 2)
    err = test.ratings.astype(np.float64) - pred
    assert res.metrics["rmse"] == pytest.approx(np.sqrt(np.mean(err**2)))
    assert res.metrics["mae"] == pytest.approx(np.mean(np.abs(err)))
    t = test.ratings.astype(np.float64)
    assert res.metrics["r2"] == pytest.approx(1 - np.sum(err**2) / np.sum((t - t.mean()) ** 2))
    assert res.ci["rmse"][0] <= res.metrics["rmse"] <= res.ci["rmse"][1]
    assert res.ci["mae"][0] <= res.metrics["mae"] <= res.ci["mae"][1]
    assert res.n_ratings == len(test)
    # per-user RMSE for user 0 by hand from its rows
    mine = u == 0
    pos = res.rating_users.tolist().index(0)
    assert res.per_user["rmse"][pos] == pytest.approx(np.sqrt(np.mean(err[mine] ** 2)))
    assert "ndcg@5" in res.metrics  # rankers' metrics too
    # a rank-only model gets no rating metrics, and asking for them is an error
    ranked = evaluate(FixedScores(scores), train, test, k=5)
    assert "rmse" not in ranked.metrics
    with pytest.raises(ConfigError, match="predict"):
        evaluate(FixedScores(scores), train, test, metrics=["rmse"])


def test_users_argument_and_explicit_metric_names() -> None:
    train, test = _split(TRAIN, TEST)
    res = evaluate(
        FixedScores(SCORES), train, test, k=3, metrics=["ndcg@2", "recall"], users=[2, 0]
    )
    assert res.users.tolist() == [0, 2]
    assert list(res.metrics) == ["ndcg@2", "recall@3"]
    # user0 list@3 [1, 2, 3], relevant {1, 3}: recall 1; user2 [0, 1, 2], relevant {2, 3}: 1/2
    np.testing.assert_allclose(res.per_user["recall@3"], [1.0, 0.5])
    with pytest.raises(ConfigError):
        evaluate(FixedScores(SCORES), train, test, users=[7])


def test_bad_arguments() -> None:
    train, test = _split(TRAIN, TEST)
    model = FixedScores(SCORES)
    with pytest.raises(ConfigError):
        evaluate(model, train, test, k=0)
    with pytest.raises(ConfigError):
        evaluate(model, train, test, k=[])
    with pytest.raises(ConfigError):
        evaluate(model, train, test, metrics=["nope"])
    with pytest.raises(ConfigError):
        evaluate(model, train, test, batch_size=0)
    other = Interactions.from_arrays([0, 1], [0, 9])
    with pytest.raises(ConfigError, match="IdMaps"):
        evaluate(model, train, other)


def test_result_serialises_and_formats() -> None:
    train, test = _split(TRAIN, TEST)
    res = evaluate(FixedScores(SCORES), train, test, k=2)
    assert isinstance(res, EvalResult)
    d = json.loads(json.dumps(res.to_dict()))
    assert d["n_users"] == 3
    assert d["metrics"]["precision@2"] == pytest.approx(1 / 3)
    assert set(d["ci"]) == {
        f"{m}@2" for m in ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")
    }
    # coverage@2 by hand: lists [1, 2], [0, 3], [0, 1] -> items {0, 1, 2, 3} of 5
    assert d["metrics"]["coverage@2"] == pytest.approx(4 / 5)
    text = res.format()
    assert "ndcg@2" in text and "coverage@2" in text and "3 users" in text
    assert res.seconds > 0


# --- train and test swapped (a real model: its training pairs are known) ---------------------
def test_swapped_train_and_test_is_refused_and_overlap_warns() -> None:
    import warnings

    from lensrec.data.synthetic import synthetic
    from lensrec.errors import EvaluationWarning
    from lensrec.models import Popularity
    from lensrec.split import make_split

    data = synthetic(60, 40, 600, implicit=True, random_state=3)
    split = make_split(data, "random:0.2", random_state=3)
    model = Popularity().fit(split.train)
    with warnings.catch_warnings():
        warnings.simplefilter("error", EvaluationWarning)
        evaluate(model, split.train, split.test, ci=False)  # the right order: no word
    with pytest.raises(ConfigError, match="swapped"):
        evaluate(model, split.test, split.train, ci=False)
    # a test part holding 10 pairs of the training data (of 120+): a warning naming the count
    leaked = split.train.subset(np.arange(10))
    both = Interactions(
        users=np.concatenate([split.test.users, leaked.users]),
        items=np.concatenate([split.test.items, leaked.items]),
        ratings=None,
        timestamps=None,
        user_ids=split.train.user_ids,
        item_ids=split.train.item_ids,
    )
    with pytest.warns(EvaluationWarning, match="10 of the"):
        evaluate(model, split.train, both, ci=False)


def test_train_smaller_than_test_warns() -> None:
    from lensrec.errors import EvaluationWarning

    train = Interactions.from_arrays([0, 1, 2], [0, 1, 2])
    test = Interactions.from_arrays(
        [0, 0, 1, 2], [1, 2, 0, 0], user_ids=train.user_ids, item_ids=train.item_ids
    )
    with pytest.warns(EvaluationWarning, match="fewer rows"):
        evaluate(FixedScores(np.zeros((3, 3))), train, test, ci=False)
