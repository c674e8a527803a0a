"""The index protocol: exact, scoring-function and precomputed indexes against a plain
NumPy reference, exclusion and candidates, padding, and the Recommendations pair."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from lensrec.errors import ConfigError
from lensrec.retrieval import (
    ExactIndex,
    PrecomputedIndex,
    Recommendations,
    ScoreIndex,
    popularity_index,
    precompute,
)


def _reference(scores: np.ndarray, k: int, exclude: sp.csr_matrix | None, cand):
    """Sort every row's allowed items by (-score, item); pad with -1 / -inf."""
    n, m = scores.shape
    ids = np.full((n, k), -1, dtype=np.int32)
    out = np.full((n, k), -np.inf, dtype=np.float32)
    allowed = np.ones(m, dtype=bool) if cand is None else np.isin(np.arange(m), cand)
    for r in range(n):
        skip = set() if exclude is None else set(exclude[r].indices.tolist())
        items = [j for j in range(m) if allowed[j] and j not in skip]
        items.sort(key=lambda j: (-scores[r, j], j))
        for t, j in enumerate(items[:k]):
            ids[r, t] = j
            out[r, t] = scores[r, j]
    return ids, out


@st.composite
def problems(draw):
    n = draw(st.integers(1, 12))
    m = draw(st.integers(1, 40))
    d = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    k = draw(st.integers(1, 45))
    rng = np.random.default_rng(seed)
    # small integers make ties common: the tie rule (lower index first) is checked too
    q = rng.integers(-3, 4, size=(n, d)).astype(np.float32)
    v = rng.integers(-3, 4, size=(m, d)).astype(np.float32)
    excl = sp.random(n, m, density=draw(st.sampled_from([0.0, 0.2, 0.7])), random_state=seed,
                     format="csr", dtype=np.float32)  # fmt: skip
    excl.data[:] = 1.0
    cand = None
    if draw(st.booleans()):
        cand = np.unique(rng.integers(0, m, size=rng.integers(0, m + 1))).astype(np.int32)
    return q, v, k, excl, cand


@settings(max_examples=60, deadline=None)
@given(problems())
def test_exact_index_matches_reference(problem):
    q, v, k, excl, cand = problem
    want = _reference(q @ v.T, k, excl, cand)
    got = ExactIndex(v).search(q, k, exclude=excl, candidates=cand)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@settings(max_examples=30, deadline=None)
@given(problems())
def test_score_index_equals_exact_index_on_dot_products(problem):
    q, v, k, excl, cand = problem

    def score(rows, items):
        vv = v if items is None else v[items]
        return rows @ vv.T

    got = ScoreIndex(score, v.shape[0]).search(q, k, exclude=excl, candidates=cand)
    want = ExactIndex(v).search(q, k, exclude=excl, candidates=cand)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_blocks_do_not_change_the_answer(rng):
    q = rng.standard_normal((50, 8)).astype(np.float32)
    v = rng.standard_normal((300, 8)).astype(np.float32)
    whole = ExactIndex(v).search(q, 7)
    tiny = ExactIndex(v, block_floats=301).search(q, 7)  # one query row per block
    np.testing.assert_array_equal(whole[0], tiny[0])
    # a 1-row product may round differently from a 50-row one (BLAS kernels differ)
    np.testing.assert_allclose(whole[1], tiny[1], rtol=1e-6)


def test_search_arguments_are_checked(rng):
    index = ExactIndex(rng.standard_normal((5, 3)).astype(np.float32))
    q = np.zeros((1, 3), dtype=np.float32)
    for bad_k in (0, -2, 1.5, True):
        with pytest.raises(ConfigError, match="k must be"):
            index.search(q, bad_k)
    with pytest.raises(ConfigError, match="candidates"):
        index.search(q, 2, candidates=[7])
    with pytest.raises(ValueError, match=r"\[n, 3\]"):
        index.search(np.zeros((1, 4), dtype=np.float32), 2)
    with pytest.raises(ValueError, match="rows"):
        index.search(q, 2, exclude=sp.csr_matrix((2, 5), dtype=np.float32))


def test_popularity_index_ranks_by_count_then_index():
    x = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 0, 1], [0, 0, 0, 1]], dtype=np.float32))
    ids, scores = popularity_index(x, 4).search(np.ones((1, 1), np.float32), 4)
    assert ids[0].tolist() == [1, 3, 0, 2]
    assert scores[0].tolist() == [2.0, 2.0, 1.0, 0.0]
    assert popularity_index(None, 3).search(np.ones((1, 1), np.float32), 2)[0][0].tolist() == [0, 1]


def test_precomputed_index_filters_and_reports_short_rows():
    ids = np.array([[4, 2, 0], [1, -1, -1]], dtype=np.int32)
    scores = np.array([[3.0, 2.0, 1.0], [5.0, -np.inf, -np.inf]], dtype=np.float32)
    index = PrecomputedIndex(ids, scores, n_items=6)
    got, s, short = index.search_with_short(np.array([0, 1]), 2)
    assert got.tolist() == [[4, 2], [1, -1]] and s[0].tolist() == [3.0, 2.0]
    # row 1's list was not full: the catalogue ran out, the answer is complete
    assert short.tolist() == [False, False]
    excl = sp.csr_matrix(([1.0], ([0], [2])), shape=(2, 6))
    got, s, short = index.search_with_short(np.array([0, 1]), 3, exclude=excl)
    assert got[0].tolist() == [4, 0, -1] and np.isneginf(s[0, 2])
    assert short.tolist() == [True, False]  # a full list lost an item: more may exist beyond
    got, _, _ = index.search_with_short(np.array([0]), 3, candidates=[0, 4])
    assert got[0].tolist() == [4, 0, -1]
    with pytest.raises(ConfigError, match="row indices"):
        index.search(np.array([2]), 1)


def test_precompute_gives_the_models_lists():
    from lensrec.data.planted import make_blocks
    from lensrec.models import ALS

    data = make_blocks(random_state=0)[0]
    model = ALS(factors=4, epochs=3, random_state=0).fit(data)
    lists = precompute(model, k=8)
    users = np.arange(model.n_users, dtype=np.int32)
    want = model.recommend(users, k=5)
    got = lists.search(users, 5)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
    assert lists.depth == 8 and lists.kind == "precomputed"


def test_recommendations_is_the_pair():
    ids = np.array([[1, 2]], dtype=np.int32)
    scores = np.array([[0.5, 0.25]], dtype=np.float32)
    rec = Recommendations(ids, scores, fallback=np.array([True]), reasons=("empty history",))
    a, b = rec
    assert a is ids and b is scores and rec[0] is ids and len(rec) == 2
    assert isinstance(rec, tuple) and rec.fallback.tolist() == [True]
    assert rec.reasons == ("empty history",) and "1 from the fallback" in repr(rec)
    import pickle

    again = pickle.loads(pickle.dumps(rec))
    assert again.reasons == rec.reasons and np.array_equal(again.ids, ids)
