"""ANNIndex: recall against brute force, exclusion and allow-lists never violated, padding,
save / restore, concurrent callers, the exact fallback, and the missing-extra error."""

from __future__ import annotations

import importlib.util
import logging
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from lensrec.errors import ConfigError, MissingExtraError, ModelFormatError
from lensrec.retrieval import ann
from lensrec.retrieval.ann import ANNIndex

needs_usearch = pytest.mark.skipif(
    importlib.util.find_spec("usearch") is None, reason="usearch (lensrec[ann]) not installed"
)


@pytest.fixture
def graph_only(monkeypatch):
    """Send every row through the graph (on catalogues this small the index would otherwise,
    rightly, score everything exactly)."""
    monkeypatch.setattr(ann, "_EXACT_COST", 0.0)


def _mf_like(n: int, d: int, seed: int) -> np.ndarray:
    """Clustered directions, popularity-dependent norms (like matrix-factorisation factors)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, d))
    v = centres[rng.integers(0, 20, n)] + 0.7 * rng.standard_normal((n, d))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    norms = (rng.permutation(n) + 1.0) ** -0.1 * rng.lognormal(0.0, 0.15, n)
    return (v * norms[:, None]).astype(np.float32)


def _queries(n: int, d: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def _brute_force(q, v, k, exclude=None, candidates=None):
    """Plain NumPy: every allowed item sorted by (-score, index), padded -1 / -inf."""
    scores = q.astype(np.float64) @ v.T.astype(np.float64)
    n, m = scores.shape
    allowed = np.ones(m, dtype=bool) if candidates is None else np.isin(np.arange(m), candidates)
    ids = np.full((n, k), -1, dtype=np.int64)
    out = np.full((n, k), -np.inf)
    for r in range(n):
        ok = allowed.copy()
        if exclude is not None:
            ok[exclude[r].indices] = False
        items = np.flatnonzero(ok)
        order = items[np.lexsort((items, -scores[r, items]))][:k]
        ids[r, : order.size] = order
        out[r, : order.size] = scores[r, order]
    return ids, out


def _recall(got: np.ndarray, want: np.ndarray) -> float:
    hits = [np.intersect1d(g[g >= 0], w[w >= 0]).size for g, w in zip(got, want, strict=True)]
    return float(np.sum(hits) / max(1, (want >= 0).sum()))


@needs_usearch
def test_recall_against_brute_force(graph_only, seed):
    v = _mf_like(5000, 16, seed)
    q = _queries(300, 16, seed + 1)
    index = ANNIndex.build(v, random_state=seed)
    ids, scores = index.search(q, 10)
    want, _ = _brute_force(q, v, 10)
    assert _recall(ids, want) > 0.97
    # scores are the exact dot products of the ids returned, best first
    exact = np.einsum("nkd,nd->nk", v[ids], q)
    np.testing.assert_allclose(scores, exact, rtol=1e-5, atol=1e-5)
    assert (np.diff(scores, axis=1) <= 0).all()


@needs_usearch
@pytest.mark.parametrize("scale", [1e-6, 1e4])
def test_recall_does_not_depend_on_the_vectors_scale(graph_only, scale):
    # ALS factors can have norms near 1e-6: the graph must still tell them apart
    v = _mf_like(3000, 16, 0) * np.float32(scale)
    q = _queries(200, 16, 1)
    ids, scores = ANNIndex.build(v, random_state=0).search(q, 10)
    assert _recall(ids, _brute_force(q, v, 10)[0]) > 0.97
    np.testing.assert_allclose(scores, np.einsum("nkd,nd->nk", v[ids], q), rtol=1e-5)


@needs_usearch
def test_zero_query_gets_the_lowest_allowed_indices(graph_only):
    v = _mf_like(2000, 8, 0)
    q = np.zeros((2, 8), dtype=np.float32)
    q[1] = 1.0
    exclude = sp.csr_matrix((np.ones(2), ([0, 0], [1, 3])), shape=(2, 2000))
    ids, scores = ANNIndex.build(v, random_state=0).search(q, 4, exclude=exclude)
    assert ids[0].tolist() == [0, 2, 4, 5]
    assert (scores[0] == 0).all()


@needs_usearch
def test_huge_search_width_on_tiny_catalogue_is_exact(graph_only, seed):
    v = _mf_like(300, 8, seed)
    q = _queries(50, 8, seed + 1)
    index = ANNIndex.build(v, expansion_search=2000, storage="f32", random_state=seed)
    rng = np.random.default_rng(seed)
    exclude = sp.random(50, 300, density=0.05, format="csr", random_state=rng)
    cand = np.sort(rng.choice(300, 250, replace=False)).astype(np.int32)
    for kw in ({}, {"exclude": exclude}, {"candidates": cand}):
        ids, scores = index.search(q, 10, **kw)
        want_ids, want_scores = _brute_force(q, v, 10, **kw)
        np.testing.assert_array_equal(ids, want_ids)
        np.testing.assert_allclose(scores, want_scores, rtol=1e-5)


@st.composite
def problems(draw):
    m = draw(st.integers(30, 400))
    n = draw(st.integers(1, 20))
    d = draw(st.integers(2, 8))
    k = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    v = _mf_like(m, d, seed)
    # duplicated vectors make exact ties: the lower index must win
    v[rng.integers(0, m, m // 10)] = v[0]
    q = _queries(n, d, seed + 1)
    density = draw(st.sampled_from([0.0, 0.05, 0.5, 0.97]))
    exclude = sp.random(n, m, density=density, format="csr", random_state=seed)
    cand = None
    if draw(st.booleans()):
        share = draw(st.sampled_from([0.02, 0.3, 0.9]))
        cand = np.sort(rng.choice(m, max(1, int(m * share)), replace=False)).astype(np.int32)
    return v, q, k, exclude, cand, seed


@needs_usearch
@settings(max_examples=40, deadline=None)
@given(problems(), st.booleans())
def test_exclusion_and_allow_list_never_violated(problem, graph_first):
    v, q, k, exclude, cand, seed = problem
    index = ANNIndex.build(v, connectivity=4, expansion_search=8, random_state=seed)
    old = ann._EXACT_COST
    ann._EXACT_COST = 0.0 if graph_first else old
    try:
        ids, scores = index.search(q, k, exclude=exclude, candidates=cand)
    finally:
        ann._EXACT_COST = old
    allowed = np.ones(v.shape[0], dtype=bool) if cand is None else np.isin(np.arange(len(v)), cand)
    for r in range(q.shape[0]):
        ok = allowed.copy()
        ok[exclude[r].indices] = False
        got = ids[r][ids[r] >= 0]
        assert ok[got].all(), "an excluded or non-candidate item came back"
        assert np.unique(got).size == got.size, "an item came back twice"
        # exactly min(k, available) items, then padding
        assert got.size == min(k, int(ok.sum()))
        assert (ids[r, got.size :] == -1).all()
        assert np.isneginf(scores[r, got.size :]).all()
        np.testing.assert_allclose(scores[r, : got.size], v[got] @ q[r], rtol=1e-5, atol=1e-5)
        assert (np.diff(scores[r, : got.size]) <= 0).all()


@needs_usearch
def test_padding_when_k_exceeds_the_available_items(graph_only):
    v = _mf_like(50, 4, 0)
    q = _queries(3, 4, 1)
    index = ANNIndex.build(v, random_state=0)
    exclude = sp.csr_matrix((np.ones(3), ([0, 0, 2], [1, 2, 3])), shape=(3, 50))
    ids, scores = index.search(q, 80, exclude=exclude)
    assert ids.shape == scores.shape == (3, 80)
    assert ((ids >= 0).sum(axis=1) == [48, 50, 49]).all()
    assert (np.isneginf(scores) == (ids < 0)).all()
    cand = np.array([3, 7, 11, 40], dtype=np.int32)
    ids, scores = index.search(q, 80, exclude=exclude, candidates=cand)
    assert ((ids >= 0).sum(axis=1) == [4, 4, 3]).all()
    assert set(ids[2][ids[2] >= 0].tolist()) == {7, 11, 40}


@needs_usearch
def test_bytes_round_trip_gives_identical_answers(graph_only, seed):
    v = _mf_like(2000, 16, seed)
    q = _queries(100, 16, seed + 1)
    exclude = sp.random(100, 2000, density=0.01, format="csr", random_state=seed)
    cand = np.arange(0, 2000, 2, dtype=np.int32)
    index = ANNIndex.build(v, expansion_search=32, random_state=seed)
    blob = index.to_bytes()
    # the model file stores it as a uint8 array
    stored = np.frombuffer(blob, dtype=np.uint8).copy()
    back = ANNIndex.from_bytes(stored.tobytes(), v)
    assert back.params == index.params
    assert (back.n_items, back.dim) == (2000, 16)
    for kw in ({}, {"exclude": exclude, "candidates": cand}):
        a = index.search(q, 10, **kw)
        b = back.search(q, 10, **kw)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


@needs_usearch
def test_from_bytes_refuses_foreign_or_mismatched_blobs():
    v = _mf_like(500, 8, 0)
    blob = ANNIndex.build(v, random_state=0).to_bytes()
    with pytest.raises(ModelFormatError, match="magic"):
        ANNIndex.from_bytes(b"not an index at all", v)
    with pytest.raises(ModelFormatError, match="500 x 8"):
        ANNIndex.from_bytes(blob, v[:400])
    with pytest.raises(ModelFormatError, match="does not match"):
        ANNIndex.from_bytes(blob, v[::-1])
    with pytest.raises(ModelFormatError):
        ANNIndex.from_bytes(blob[: len(blob) // 2], v)


@needs_usearch
def test_single_thread_build_is_reproducible(monkeypatch):
    monkeypatch.setenv("LENSREC_THREADS", "1")
    v = _mf_like(3000, 8, 0)
    a = ANNIndex.build(v, random_state=5).to_bytes()
    assert ANNIndex.build(v, random_state=5).to_bytes() == a
    assert ANNIndex.build(v, random_state=6).to_bytes() != a


@needs_usearch
def test_four_threads_at_once_equal_serial(graph_only, seed):
    v = _mf_like(3000, 16, seed)
    q = _queries(400, 16, seed + 1)
    exclude = sp.random(400, 3000, density=0.02, format="csr", random_state=seed)
    cand = np.arange(0, 3000, 3, dtype=np.int32)
    index = ANNIndex.build(v, expansion_search=64, random_state=seed)
    calls = [({}, slice(0, 400)), ({"exclude": exclude}, slice(0, 400)),
             ({"candidates": cand}, slice(0, 400)), ({}, slice(0, 1))] * 4  # fmt: skip

    def run(call):
        kw, rows = call
        if "exclude" in kw:
            kw = {"exclude": kw["exclude"][rows]}
        return index.search(q[rows], 10, **kw)

    serial = [run(c) for c in calls]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(run, calls))
    for (a_ids, a_sc), (b_ids, b_sc) in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a_ids, b_ids)
        np.testing.assert_array_equal(a_sc, b_sc)


@needs_usearch
def test_exact_fallback_fires_and_says_so(caplog):
    v = _mf_like(500, 8, 0)
    q = _queries(20, 8, 1)
    index = ANNIndex.build(v, random_state=0)
    with caplog.at_level(logging.DEBUG, logger="lensrec.retrieval.ann"):
        ids, scores = index.search(q, 10)
    # 500 items: scoring them all is cheaper than a graph search of width 256
    assert "0 from the graph, 20 exact" in caplog.text
    np.testing.assert_array_equal(ids, _brute_force(q, v, 10)[0])


@needs_usearch
def test_rows_left_short_by_the_graph_go_exact(graph_only, caplog):
    v = _mf_like(3000, 8, 0)
    q = np.repeat(_queries(1, 8, 1), 5, axis=0)
    index = ANNIndex.build(v, random_state=0)
    # the allow-list is the tenth of the catalogue these queries score lowest: the graph,
    # asked for a few hundred items, returns none of them
    cand = np.sort(np.argsort(v @ q[0])[:300]).astype(np.int32)
    with caplog.at_level(logging.DEBUG, logger="lensrec.retrieval.ann"):
        ids, scores = index.search(q, 12, candidates=cand)
    assert "0 from the graph, 5 exact (5 of them: fewer than k" in caplog.text
    want_ids, want_scores = _brute_force(q, v, 12, candidates=cand)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5)


@needs_usearch
def test_search_width_and_connectivity_change_recall(graph_only):
    v = _mf_like(5000, 16, 3)
    q = _queries(200, 16, 4)
    want, _ = _brute_force(q, v, 10)
    narrow = ANNIndex.build(v, connectivity=4, expansion_add=8, expansion_search=1, random_state=0)
    wide = ANNIndex.build(v, connectivity=16, expansion_search=256, random_state=0)
    assert _recall(narrow.search(q, 10)[0], want) < _recall(wide.search(q, 10)[0], want) - 0.05


@needs_usearch
def test_bad_arguments():
    v = _mf_like(100, 4, 0)
    with pytest.raises(ConfigError, match="connectivity"):
        ANNIndex.build(v, connectivity=1)
    with pytest.raises(ConfigError, match="storage"):
        ANNIndex.build(v, storage="f64")
    with pytest.raises(ValueError, match="finite"):
        ANNIndex.build(np.full((3, 2), np.nan, dtype=np.float32))
    index = ANNIndex.build(v, random_state=0)
    with pytest.raises(ValueError, match=r"\[n, 4\]"):
        index.search(np.zeros((2, 5), dtype=np.float32), 3)
    with pytest.raises(ValueError, match="exclude"):
        index.search(np.zeros((2, 4), dtype=np.float32), 3, exclude=sp.csr_matrix((3, 100)))
    with pytest.raises(ConfigError, match="k must be"):
        index.search(np.zeros((2, 4), dtype=np.float32), 0)


def test_missing_library_names_the_extra(monkeypatch):
    # None in sys.modules makes the import fail as if usearch were not installed
    monkeypatch.setitem(sys.modules, "usearch", None)
    monkeypatch.setitem(sys.modules, "usearch.index", None)
    v = np.ones((10, 4), dtype=np.float32)
    with pytest.raises(MissingExtraError, match=r"pip install 'lensrec\[ann\]'") as info:
        ANNIndex.build(v)
    assert info.value.extra == "ann" and "usearch" in str(info.value)
    with pytest.raises(MissingExtraError):
        ANNIndex.from_bytes(b"", v)
