"""Metrics: hand-computed cases, a naive reference under hypothesis, rating formulas, registry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from lensrec.errors import ConfigError
from lensrec.evaluate.metrics import (
    METRICS,
    MetricSpec,
    average_precision_at_k,
    average_precision_at_k_div_k,
    coverage_at_k,
    hit_rate_at_k,
    mae,
    ndcg_at_k,
    parse_metric,
    per_user_errors,
    per_user_rmse,
    precision_at_k,
    r2,
    ranking_metrics,
    recall_at_k,
    reciprocal_rank_at_k,
    rmse,
)

NAN = float("nan")


# --------------------------------------------------------------------------------------
# the hand case
# --------------------------------------------------------------------------------------
# 4 users, 8 items, lists of length 4 (best first, -1 = padding)
#   user 0: relevant {0, 2, 4} (graded gains 3, 1, 2); list [2, 1, 4, -1] -> hits at ranks 1, 3
#   user 1: relevant {5};                             list [0, 1, 5, 3]  -> hit at rank 3
#   user 2: relevant {} (empty);                      list [0, 1, -1, -1] -> NaN everywhere
#   user 3: relevant {1, 3};                          list [3, 0, 5, 1]  -> hits at ranks 1, 4
REC = np.array(
    [
        [2, 1, 4, -1],
        [0, 1, 5, 3],
        [0, 1, -1, -1],
        [3, 0, 5, 1],
    ],
    dtype=np.int32,
)


def _rel(graded: bool = False) -> sp.csr_matrix:
    rows = [0, 0, 0, 1, 3, 3]
    cols = [0, 2, 4, 5, 1, 3]
    vals = [3.0, 1.0, 2.0, 1.0, 1.0, 1.0] if graded else [1.0] * 6
    return sp.csr_matrix((vals, (rows, cols)), shape=(4, 8), dtype=np.float32)


def _close(actual: np.ndarray, expected: list[float]) -> None:
    np.testing.assert_allclose(actual, np.array(expected, dtype=float), rtol=1e-12, equal_nan=True)


def test_precision_hand() -> None:
    # hits / k with k = 4: user0 2/4, user1 1/4, user2 NaN, user3 2/4
    _close(precision_at_k(REC, _rel()), [0.5, 0.25, NAN, 0.5])
    # k = 2 looks at [2,1] [0,1] [0,1] [3,0]: hits 1, 0, -, 1 -> 1/2, 0, NaN, 1/2
    _close(precision_at_k(REC, _rel(), k=2), [0.5, 0.0, NAN, 0.5])
    # k = 6 > width: missing slots are misses: 2/6, 1/6, NaN, 2/6
    _close(precision_at_k(REC, _rel(), k=6), [2 / 6, 1 / 6, NAN, 2 / 6])


def test_recall_hand() -> None:
    # hits / |relevant|: user0 2/3, user1 1/1, user3 2/2
    _close(recall_at_k(REC, _rel()), [2 / 3, 1.0, NAN, 1.0])
    # k = 2: user0 1/3, user1 0/1, user3 1/2
    _close(recall_at_k(REC, _rel(), k=2), [1 / 3, 0.0, NAN, 0.5])


def test_hit_rate_hand() -> None:
    _close(hit_rate_at_k(REC, _rel()), [1.0, 1.0, NAN, 1.0])
    # k = 2: user1's only hit is at rank 3
    _close(hit_rate_at_k(REC, _rel(), k=2), [1.0, 0.0, NAN, 1.0])


def test_ndcg_binary_hand() -> None:
    # discount of rank r is 1 / log2(r + 1): r=1 -> 1, r=2 -> 1/log2(3), r=3 -> 1/2, r=4 -> 1/log2(5)
    # user0: DCG = 1 + 1/2 = 1.5; ideal over min(4, 3) = 3 slots: 1 + 1/log2(3) + 1/2
    u0 = 1.5 / (1 + 1 / math.log2(3) + 0.5)
    # user1: DCG = 1/2; ideal over min(4, 1) = 1 slot: 1
    u1 = 0.5
    # user3: DCG = 1 + 1/log2(5); ideal over 2 slots: 1 + 1/log2(3)
    u3 = (1 + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    _close(ndcg_at_k(REC, _rel()), [u0, u1, NAN, u3])
    # k = 2: user0 DCG 1, ideal 1 + 1/log2(3); user1 0; user3 DCG 1, ideal 1 + 1/log2(3)
    two = 1 / (1 + 1 / math.log2(3))
    _close(ndcg_at_k(REC, _rel(), k=2), [two, 0.0, NAN, two])
    # same as implicit's evaluation.pyx (benfred/implicit): idcg = cg_sum[min(K, likes) - 1]
    # -- e.g. user0 = 1.5 / 2.1309297535714575 = 0.70391...
    assert ndcg_at_k(REC, _rel())[0] == pytest.approx(0.7039180890341347, rel=1e-12)


def test_ndcg_graded_hand() -> None:
    # user0 gains: item0 = 3, item2 = 1, item4 = 2; list [2, 1, 4]: DCG = 1/1 + 2/2 = 2
    # ideal: gains sorted 3, 2, 1 -> 3 + 2/log2(3) + 1/2
    u0 = 2.0 / (3 + 2 / math.log2(3) + 0.5)
    # users 1 and 3 have all gains 1: same as binary
    u1 = 0.5
    u3 = (1 + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    _close(ndcg_at_k(REC, _rel(graded=True), gain="graded"), [u0, u1, NAN, u3])
    # exponential gains 2^g - 1: item0 = 7, item2 = 1, item4 = 3 -> DCG = 1 + 3/2 = 2.5
    # ideal 7 + 3/log2(3) + 1/2; users 1, 3 unchanged (2^1 - 1 = 1)
    e0 = 2.5 / (7 + 3 / math.log2(3) + 0.5)
    _close(ndcg_at_k(REC, _rel(graded=True), gain="exponential"), [e0, u1, NAN, u3])
    # the binary default ignores the stored gains
    _close(ndcg_at_k(REC, _rel(graded=True))[:1], [1.5 / (1 + 1 / math.log2(3) + 0.5)])
    # graded ideal with k=1: only the best gain (3) counts -> user0 DCG@1 = 1 (item 2), IDCG = 3
    _close(ndcg_at_k(REC, _rel(graded=True), k=1, gain="graded")[:1], [1 / 3])


def test_average_precision_hand() -> None:
    # user0: hits at ranks 1, 3 -> precision there 1/1 and 2/3; sum 5/3; / min(4, 3) = 5/9
    # user1: hit at rank 3 -> 1/3; / min(4, 1) = 1/3
    # user3: hits at ranks 1, 4 -> 1/1 + 2/4 = 3/2; / min(4, 2) = 3/4
    _close(average_precision_at_k(REC, _rel()), [5 / 9, 1 / 3, NAN, 3 / 4])
    # divided by k = 4 instead: 5/12, 1/12, 3/8
    _close(average_precision_at_k_div_k(REC, _rel()), [5 / 12, 1 / 12, NAN, 3 / 8])
    # k = 2: user0 1/1 / min(2, 3) = 1/2; user1 0; user3 1/1 / min(2, 2) = 1/2
    _close(average_precision_at_k(REC, _rel(), k=2), [0.5, 0.0, NAN, 0.5])


def test_reciprocal_rank_hand() -> None:
    # first hit at ranks 1, 3, -, 1
    _close(reciprocal_rank_at_k(REC, _rel()), [1.0, 1 / 3, NAN, 1.0])
    _close(reciprocal_rank_at_k(REC, _rel(), k=2), [1.0, 0.0, NAN, 1.0])


def test_coverage_hand() -> None:
    # items listed anywhere: {2,1,4} u {0,1,5,3} u {0,1} u {3,0,5,1} = {0..5} -> 6 of 8
    assert coverage_at_k(REC, 8) == pytest.approx(0.75)
    # first two columns: {2,1} u {0,1} u {0,1} u {3,0} = {0,1,2,3} -> 4 of 8
    assert coverage_at_k(REC, 8, k=2) == pytest.approx(0.5)
    # indices >= n_items are ignored: with n_items = 4 only {0,1,2,3} count -> 4 of 4
    assert coverage_at_k(REC, 4) == pytest.approx(1.0)
    assert coverage_at_k(np.full((3, 2), -1), 5) == 0.0


def test_ranking_metrics_matches_single_functions() -> None:
    out = ranking_metrics(REC, _rel(), [("ndcg", 2), ("ndcg", 4), ("map", 3), ("recall", 4)])
    assert list(out) == ["ndcg@2", "ndcg@4", "map@3", "recall@4"]
    _close(out["ndcg@2"], list(ndcg_at_k(REC, _rel(), k=2)))
    _close(out["ndcg@4"], list(ndcg_at_k(REC, _rel(), k=4)))
    _close(out["map@3"], list(average_precision_at_k(REC, _rel(), k=3)))
    # map@3 by hand: user0 hits at 1, 3 -> (1 + 2/3) / 3 = 5/9 (same as k=4); user1 (1/3)/1;
    # user3 hit at 1 only -> 1 / min(3, 2) = 1/2
    _close(out["map@3"], [5 / 9, 1 / 3, NAN, 0.5])


def test_out_of_range_items_and_explicit_zeros_are_misses() -> None:
    rec = np.array([[9, 0, 1]], dtype=np.int32)  # 9 is outside the 3-item catalogue
    # item 1 is stored with an explicit 0: not relevant
    rel = sp.csr_matrix((np.array([1.0, 0.0]), np.array([0, 1]), np.array([0, 2])), shape=(1, 3))
    # one relevant item (0) at rank 2 -> precision 1/3, recall 1, mrr 1/2
    _close(precision_at_k(rec, rel), [1 / 3])
    _close(recall_at_k(rec, rel), [1.0])
    _close(reciprocal_rank_at_k(rec, rel), [0.5])


def test_unsorted_and_duplicate_entries_in_relevant() -> None:
    # CSR with unsorted indices within the row: same answer as the sorted one
    rel = sp.csr_matrix((np.array([1.0, 1.0]), np.array([4, 0]), np.array([0, 2])), shape=(1, 5))
    assert not rel.has_sorted_indices
    rec = np.array([[0, 1, 4]])
    # hits at ranks 1 and 3: AP = (1 + 2/3) / min(3, 2)
    _close(average_precision_at_k(rec, rel), [(1 + 2 / 3) / 2])


def test_errors() -> None:
    with pytest.raises(ValueError, match="repeats"):
        precision_at_k(np.array([[1, 2, 1]]), _rel()[:1])
    with pytest.raises(ValueError, match="rows"):
        precision_at_k(REC, _rel()[:3])
    with pytest.raises(ValueError, match="2-d"):
        precision_at_k(np.array([1, 2]), _rel()[:1])
    with pytest.raises(TypeError):
        precision_at_k(REC, np.ones((4, 8)))
    with pytest.raises(ValueError, match="k must"):
        precision_at_k(REC, _rel(), k=0)
    with pytest.raises(ValueError, match="gain"):
        ndcg_at_k(REC, _rel(), gain="log")  # type: ignore[arg-type]


def test_empty_inputs() -> None:
    rec = np.zeros((0, 5), dtype=np.int32)
    rel = sp.csr_matrix((0, 10))
    assert precision_at_k(rec, rel).shape == (0,)
    # padding-only lists: no hits, but the user has a relevant item -> 0, not NaN
    rec = np.full((1, 3), -1, dtype=np.int32)
    rel = sp.csr_matrix(np.array([[0.0, 1.0]]))
    _close(ndcg_at_k(rec, rel), [0.0])
    _close(reciprocal_rank_at_k(rec, rel), [0.0])


# --------------------------------------------------------------------------------------
# naive reference (one user at a time, Python sets) and hypothesis
# --------------------------------------------------------------------------------------
def _naive(rec_row: list[int], rel_items: dict[int, float], k: int) -> dict[str, float]:
    """Textbook definitions, one user, no numpy tricks."""
    if not rel_items:
        return dict.fromkeys(
            ("precision", "recall", "hit_rate", "ndcg", "map", "map_k", "mrr"), NAN
        )
    lst = rec_row[:k]
    hits = [1 if (item in rel_items) else 0 for item in lst]
    n_hit = sum(hits)
    dcg = 0.0
    for r, h in enumerate(hits):
        if h:
            dcg += 1.0 / math.log2(r + 2)
    idcg = 0.0
    for r in range(min(k, len(rel_items))):
        idcg += 1.0 / math.log2(r + 2)
    ap = 0.0
    seen = 0
    for r, h in enumerate(hits):
        if h:
            seen += 1
            ap += seen / (r + 1)
    rr = 0.0
    for r, h in enumerate(hits):
        if h:
            rr = 1.0 / (r + 1)
            break
    return {
        "precision": n_hit / k,
        "recall": n_hit / len(rel_items),
        "hit_rate": 1.0 if n_hit else 0.0,
        "ndcg": dcg / idcg,
        "map": ap / min(k, len(rel_items)),
        "map_k": ap / k,
        "mrr": rr,
    }


def _naive_graded_ndcg(rec_row: list[int], rel_items: dict[int, float], k: int) -> float:
    if not rel_items:
        return NAN
    dcg = sum(rel_items.get(item, 0.0) / math.log2(r + 2) for r, item in enumerate(rec_row[:k]))
    best = sorted(rel_items.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(r + 2) for r, g in enumerate(best))
    return dcg / idcg


@st.composite
def _cases(draw: st.DrawFn) -> tuple[np.ndarray, sp.csr_matrix, int, list[dict[int, float]]]:
    n_users = draw(st.integers(1, 12))
    n_items = draw(st.integers(1, 15))
    width = draw(st.integers(1, 10))
    rows = []
    rels: list[dict[int, float]] = []
    for _ in range(n_users):
        # a list: distinct items (some possibly out of the catalogue), then -1 padding
        length = draw(st.integers(0, min(width, n_items + 3)))
        items = draw(
            st.lists(st.integers(0, n_items + 2), min_size=length, max_size=length, unique=True)
        )
        rows.append(items + [-1] * (width - len(items)))
        rel_items = draw(st.lists(st.integers(0, n_items - 1), max_size=n_items, unique=True))
        gains = draw(
            st.lists(st.integers(1, 5).map(float), min_size=len(rel_items), max_size=len(rel_items))
        )
        rels.append(dict(zip(rel_items, gains, strict=True)))
    k = draw(st.integers(1, width + 3))
    rec = np.array(rows, dtype=np.int32).reshape(n_users, width)
    r_idx = [u for u, d in enumerate(rels) for _ in d]
    c_idx = [i for d in rels for i in d]
    vals = [g for d in rels for g in d.values()]
    # build in shuffled order so the CSR is not canonical by construction
    perm = draw(st.permutations(range(len(vals))))
    rel = sp.csr_matrix(
        (
            np.array([vals[p] for p in perm], dtype=np.float32),
            (
                np.array([r_idx[p] for p in perm], dtype=np.int64),
                np.array([c_idx[p] for p in perm], dtype=np.int64),
            ),
        ),
        shape=(n_users, n_items),
    )
    return rec, rel, k, rels


FUNCS = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "hit_rate": hit_rate_at_k,
    "ndcg": ndcg_at_k,
    "map": average_precision_at_k,
    "map_k": average_precision_at_k_div_k,
    "mrr": reciprocal_rank_at_k,
}


@settings(max_examples=150, deadline=None)
@given(_cases())
def test_matches_naive_reference(case: tuple) -> None:
    rec, rel, k, rels = case
    expected = [_naive(rec[u].tolist(), rels[u], k) for u in range(rec.shape[0])]
    for name, func in FUNCS.items():
        got = func(rec, rel, k)
        want = np.array([e[name] for e in expected])
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=name)
        finite = got[~np.isnan(got)]
        assert np.all((finite >= 0.0) & (finite <= 1.0 + 1e-12)), name
        assert np.array_equal(np.isnan(got), np.array([not d for d in rels])), name
    got = ndcg_at_k(rec, rel, k, gain="graded")
    want = np.array([_naive_graded_ndcg(rec[u].tolist(), rels[u], k) for u in range(rec.shape[0])])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, equal_nan=True)
    assert np.all((got[~np.isnan(got)] >= 0) & (got[~np.isnan(got)] <= 1 + 1e-12))
    # coverage: share of catalogue items in the first k columns
    listed = {i for row in rec[:, :k].tolist() for i in row if 0 <= i < rel.shape[1]}
    assert coverage_at_k(rec, rel.shape[1], k) == pytest.approx(len(listed) / rel.shape[1])
    # one pass for several cut-offs agrees with the single calls
    specs = [(name, kk) for name in FUNCS for kk in sorted({1, k})]
    for label, arr in ranking_metrics(rec, rel, specs).items():
        name, kk = label.split("@")
        np.testing.assert_allclose(
            arr, FUNCS[name](rec, rel, int(kk)), rtol=1e-12, equal_nan=True, err_msg=label
        )


def test_scales_to_many_users() -> None:
    # 20k users x k=50 against a naive check on a sample of rows (correctness at scale;
    # speed itself lives in benchmarks/)
    rng = np.random.default_rng(7)
    n, k, m = 20_000, 50, 3_000
    rec = np.argsort(rng.random((n, m)).astype(np.float32), axis=1)[:, :k].astype(np.int32)
    rows = rng.integers(0, n, 200_000)
    cols = rng.integers(0, m, 200_000)
    rel = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, m))
    rel.data[:] = 1.0
    got = recall_at_k(rec, rel)
    for u in rng.integers(0, n, 50):
        items = set(rel.indices[rel.indptr[u] : rel.indptr[u + 1]].tolist())
        want = NAN if not items else len(items & set(rec[u].tolist())) / len(items)
        assert got[u] == pytest.approx(want, nan_ok=True)


# --------------------------------------------------------------------------------------
# rating metrics
# --------------------------------------------------------------------------------------
def test_rating_hand() -> None:
    true = [4.0, 3.0, 5.0, 1.0]
    pred = [3.5, 3.0, 4.0, 2.0]
    # errors 0.5, 0, 1, -1 -> squared 0.25, 0, 1, 1 (sum 2.25); abs 0.5, 0, 1, 1 (sum 2.5)
    assert rmse(true, pred) == pytest.approx(math.sqrt(2.25 / 4))
    assert mae(true, pred) == pytest.approx(2.5 / 4)
    # mean of true = 13/4 = 3.25; SS_tot = 0.5625 + 0.0625 + 3.0625 + 5.0625 = 8.75
    assert r2(true, pred) == pytest.approx(1 - 2.25 / 8.75)
    assert math.isnan(r2([3.0, 3.0], [3.0, 2.0]))  # constant truth
    assert math.isnan(rmse([], []))
    with pytest.raises(ValueError):
        rmse([1.0, 2.0], [1.0])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-5, 5, allow_nan=False), st.floats(-5, 5, allow_nan=False)),
        min_size=2,
        max_size=40,
    )
)
def test_rating_against_numpy_formulas(pairs: list[tuple[float, float]]) -> None:
    t = np.array([p[0] for p in pairs])
    p = np.array([p[1] for p in pairs])
    assert rmse(t, p) == pytest.approx(float(np.sqrt(np.mean((t - p) ** 2))), abs=1e-12)
    assert mae(t, p) == pytest.approx(float(np.mean(np.abs(t - p))), abs=1e-12)
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    if ss_tot > 1e-9:
        assert r2(t, p) == pytest.approx(
            1 - float(np.sum((t - p) ** 2)) / ss_tot, rel=1e-9, abs=1e-9
        )


def test_per_user_errors_hand() -> None:
    users = [2, 0, 2, 2]
    true = [4.0, 3.0, 5.0, 1.0]
    pred = [3.0, 3.0, 5.0, 3.0]
    # user 0: error 0 -> sse 0; user 2: errors 1, 0, -2 -> sse 5, sae 3, n 3
    e = per_user_errors(users, true, pred)
    assert e.users.tolist() == [0, 2]
    assert e.n_ratings.tolist() == [1.0, 3.0]
    assert e.sse.tolist() == [0.0, 5.0]
    assert e.sae.tolist() == [0.0, 3.0]
    u, v = per_user_rmse(users, true, pred)
    assert u.tolist() == [0, 2]
    np.testing.assert_allclose(v, [0.0, math.sqrt(5 / 3)])


# --------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------
def test_registry_names() -> None:
    assert set(METRICS) == {
        "precision", "recall", "hit_rate", "ndcg", "map", "map_k", "mrr",
        "coverage", "rmse", "mae", "r2",
    }  # fmt: skip
    assert METRICS["rmse"].higher_is_better is False
    assert METRICS["ndcg"].func is ndcg_at_k
    assert METRICS["map_k"].func is average_precision_at_k_div_k


def test_parse_metric() -> None:
    assert parse_metric("ndcg@10") == MetricSpec("ndcg", 10)
    assert parse_metric("NDCG@10").label == "ndcg@10"
    assert parse_metric("recall") == MetricSpec("recall", None)
    assert parse_metric("rmse").label == "rmse"
    assert parse_metric("map_k@5") == MetricSpec("map_k", 5)
    assert parse_metric("hit-rate@3") == MetricSpec("hit_rate", 3)
    for bad in ("ndgc@10", "ndcg@0", "ndcg@x", "rmse@10", ""):
        with pytest.raises(ConfigError):
            parse_metric(bad)
