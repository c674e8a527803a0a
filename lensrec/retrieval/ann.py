"""Approximate top-k over item vectors: an HNSW graph (usearch) plus exact re-scoring.

:class:`ANNIndex` answers the query call of every lensrec index
(``search(queries, k, exclude=, candidates=)``, see :mod:`lensrec.retrieval.exact`) from a
graph instead of scoring the whole catalogue. The graph only proposes items: every item
returned is re-scored exactly from the kept item vectors, excluded and non-candidate items are
dropped, and any row the graph cannot answer in full goes to the exact index.

Which library, and why
----------------------
Measured on 1,000,000 x 64 float32 item vectors shaped like matrix-factorisation item factors
(1,000 clusters whose centres span a rank-24 subspace, Zipf-like cluster sizes, norms growing
with a Zipf popularity rank: ``rank ** -0.1`` times a log-normal(0, 0.15), so p1 / p50 / p99 /
max norm = 0.68 / 1 / 1.62 / 4.5) and 10,000 user vectors drawn from 1-3 of the same centres
plus noise (``benchmarks/bench_ann.py`` makes the same data); recall@10 against exact search;
2 threads of a shared 2-core machine. Graph degree M = 16 and search width (ef) 256 for every
HNSW unless told; QPS in bold are medians of 3 interleaved runs in one process, the others
single runs (+-30% between runs here); build seconds of two runs; "MiB" is the serialised
index (its vectors included):

=========================================  =========  =====  =======  ==========
index                                      build s    MiB    recall   QPS
=========================================  =========  =====  =======  ==========
exact: ExactIndex (matmul + top-k kernel)  -          -      1        **~225**
usearch 2.26, ip, f32                      172, 274   386    0.958    **2,458**
usearch 2.26, ip, bf16 (chosen)            101, 110   264    0.957    **3,766**
usearch, L2 on the MIPS-to-L2 transform    185        390    0.352    3,352
hnswlib 0.8, ip                            72, 97     386    0.956    **7,325**
faiss 1.15 IndexHNSWFlat, ip               83, 204    382    0.954    **5,309**
faiss IndexHNSWFlat, ip, M 32, ef 128      124        504    0.951    6,613
faiss IVFFlat, ip, 128 of 4,096 lists    29         253    0.850    2,697
faiss IVFFlat, MIPS-to-L2, 128 of 4,096  21         257    0.925    6,044
pynndescent 0.7, MIPS-to-L2, epsilon 0.1   227        584    0.520    215
=========================================  =========  =====  =======  ==========

The inner product goes into the graph as it is. The MIPS-to-L2 transformation (append
``sqrt(max_norm^2 - |v|^2)`` so that every item has the same length) fails here: with norms
spread over 0.5-4.5 the added coordinate dominates the distances and an L2 graph over it
loses the directions (recall 0.35 at the same width); the inner-product graph (ip-NSW) finds
the long vectors MIPS favours. IVF probes the wrong lists with the inner product (k-means
cells are L2 cells) and needs 128 of 4,096 lists to pass 0.9. pynndescent's ``"dot"``
normalises the data (cosine, not MIPS), so it could only run on the transform.

usearch is chosen although hnswlib and faiss search the same graph 1.4-2x faster here (one
thread: 1,750 / 3,700 / 2,600 queries per second): all three pass the target (recall@10
>= 0.95 at >= 10x the exact path), and usearch is the one that fits a library running inside
other people's processes:

- threads are a per-call argument (``threads=``); faiss has only ``omp_set_num_threads``,
  a process-wide OpenMP setting that lensrec must not change on a query (and would change
  for any other faiss user in the process);
- the index saves to and restores from bytes (``save()`` / ``Index.restore(buffer)``), so it
  goes into the model file as a uint8 array; hnswlib saves only to a path (or pickles);
- wheels for Linux, macOS and Windows and frequent releases (2.26.6); hnswlib's last
  release is 0.8.0 (December 2023) and ships no wheels (``pip install`` compiles C++);
  faiss-cpu is maintained but a 19 MB wheel (66 MB installed, usearch: 11 MB) that brings
  its own OpenMP and OpenBLAS;
- the graph can keep its vectors in bf16: 2/3 of the memory, ~2x faster to build and 1.5x
  faster to search than f32 at the same recall, since lensrec re-scores exactly from its own
  float32 copy anyway.

``python benchmarks/bench_ann.py`` (this class with its defaults, 2,000 queries, two runs):
recall@10 0.962 at 12.6x and 14.1x the exact path's queries per second (2,790 / 3,304 vs
222 / 235); with seen-item histories excluded (median 30 per query) 0.960 at 12.1x and
12.9x; build 88-108 s, about +390 MiB resident.

What it does not do well
------------------------
An inner-product graph leaves items without incoming links: an item that is never among the
largest inner products of other items (a short vector inside the cloud) cannot be reached
(6% of ml-100k's BPR items, 40% of 20,000 clustered test vectors). Such items are rarely near
the top of any list, which is why recall stays high; but when exclusions remove the items
around a user's top (heavy users with long histories) the right answers lie deeper. With
the graph forced on ml-100k BPR factors (1,682 items, seen items excluded) recall@10 was
0.96 for users with fewer than 50 ratings, 0.88 for 50-150, 0.77 for 150-400. Rows left
with fewer than ``k`` items fall back to exact search; rows that still have ``k`` get the
best of what the graph found. A small catalogue goes exact anyway (below).

How a search runs
-----------------
1. Each row needs ``k`` plus its number of excluded items (those among the candidates) from
   the graph, and asks for at least ``2 k`` (free below the search width: room to re-rank);
   with an allow-list of ``m`` items it asks for ``need * n_items / m * 1.5``, as the items
   the graph returns are spread over the catalogue.
2. Rows for which exact scoring is cheaper are answered by
   :class:`~lensrec.retrieval.ExactIndex`: exact search scores ``n_items`` items (or ``m``)
   per row, a graph search costs about ``_EXACT_COST`` (125) item scorings per unit of width
   (``max(expansion_search, asked)``), so below ~32,000 items at the defaults, for small
   allow-lists, for users whose exclusions reach the catalogue's size, and for zero queries.
3. The graph is searched with unit-length queries over vectors scaled so that the longest
   has length 1 (usearch's inner-product distance is ``1 - dot`` in float32: ALS factors with
   norms near 1e-6 would otherwise all be at distance 1), once per group of rows asking
   for the same number of items (rounded up to a power of two); the items returned are sorted
   by index, duplicates, excluded and non-candidate items dropped, the rest re-scored
   exactly and ranked by the shared top-k kernel (equal scores: the lower index).
4. Rows with fewer than ``k`` survivors are answered by the exact index.

The debug log says how many rows each step answered.
"""

from __future__ import annotations

import inspect
import json
import logging
import struct
import threading
import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._config import n_threads
from .._config import rng as _rng
from ..errors import ConfigError, MissingExtraError, ModelFormatError
from ..kernels.topk import topk_rows
from ..types import IndexArray, RandomState, ScoreArray
from ._blocks import set_thread_count
from .exact import ExactIndex, check_search_args

__all__ = ["ANNIndex"]

_log = logging.getLogger(__name__)

#: the blob: magic, a little-endian uint32 header length, a JSON header, usearch's bytes
_MAGIC = b"LRANN\x00\x00\x01"
_FORMAT = 1

#: a graph search costs about this many exact item scorings per unit of search width
#: (``bench_ann.py --crossover``, 2 threads, 64 dims: 126 at 10k-30k items, 196 at 100k, 253 at
#: 300k; exact and graph tie near 30k items at width 256). Rows whose exact search (over the
#: catalogue or the allow-list) would score fewer than ``width * _EXACT_COST`` items are
#: answered exactly.
_EXACT_COST = 125.0

#: over-fetch factor on top of ``need * n_items / n_candidates`` for allow-lists (the share of
#: candidates among the items the graph returns varies from row to row)
_CANDIDATE_SLACK = 1.5

#: float32 values gathered per re-scoring block (rows x width x dim): 16 MiB
_RESCORE_FLOATS = 1 << 22

#: items added to the graph per call while building (bounds the shuffled copy)
_ADD_CHUNK = 1 << 16

#: the first items go in with one thread: threads inserting into a graph of a few hundred
#: nodes race for the same neighbours and left 1-2 of 300 items without incoming links
#: (unreachable) where a one-thread build left none
_SERIAL_HEAD = 1024

#: the build knobs: name -> (smallest value, what it means)
_KNOBS: dict[str, tuple[int, str]] = {
    "connectivity": (2, "neighbours per node in the graph (HNSW's M)"),
    "expansion_add": (1, "candidate list size while building (HNSW's efConstruction)"),
    "expansion_search": (1, "candidate list size while searching (HNSW's ef)"),
}

_STORAGE = ("bf16", "f16", "f32")


def _usearch() -> Any:
    """usearch's ``Index`` class, or :class:`MissingExtraError` when usearch is missing."""
    try:
        from usearch.index import Index
    except ModuleNotFoundError as exc:
        if (exc.name or "usearch").split(".")[0] != "usearch":
            raise
        raise MissingExtraError("the approximate index (ANNIndex)", "ann", "usearch") from None
    return Index


def _default(name: str) -> Any:
    """A build knob's default, read from the signature (no second list to keep in step)."""
    return inspect.signature(ANNIndex.build).parameters[name].default


def _check_knobs(knobs: dict[str, Any], storage: Any) -> dict[str, Any]:
    for name, value in knobs.items():
        low, meaning = _KNOBS[name]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ConfigError(
                f"ANNIndex.build: {name} ({meaning}) must be an integer >= {low}, "
                f"got {value!r}; the default is {name}={_default(name)}"
            )
    if storage not in _STORAGE:
        raise ConfigError(
            f"ANNIndex.build: storage must be one of {', '.join(map(repr, _STORAGE))}, "
            f"got {storage!r}"
        )
    return {name: int(value) for name, value in knobs.items()} | {"storage": storage}


def _check_vectors(item_vectors: Any) -> np.ndarray:
    """float32 C-contiguous ``[n_items, d]``, finite; a read-only view (the caller's array
    keeps its flags)."""
    v = np.ascontiguousarray(item_vectors, dtype=np.float32)
    if v.ndim != 2 or v.shape[1] < 1:
        raise ValueError(f"item_vectors must be [n_items, d] with d >= 1, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError("item_vectors contain NaN or infinite values")
    view = v.view()
    view.setflags(write=False)
    return view


def _graph_scale(v: np.ndarray) -> np.float32:
    """The factor the graph's copy of the vectors is scaled by: the largest norm becomes 1.

    usearch's inner-product distance is ``1 - dot`` in float32, so dot products far below 1
    (ALS factors with frequency-scaled regularisation have norms near 1e-6) would all round
    to the same distance; scaling every item by one constant (and queries to unit length)
    changes no ranking.
    """
    # float64 sums without a float64 copy of the vectors (einsum casts in small buffers)
    top = float(np.sqrt(np.einsum("ij,ij->i", v, v, dtype=np.float64).max())) if v.size else 0.0
    return np.float32(1.0 / top if top > 0 else 1.0)


def _check_exclude(exclude: Any, n: int, n_items: int) -> sp.csr_matrix | None:
    """A CSR ``[n, n_items]`` with sorted indices (a copy when the caller's was unsorted)."""
    if exclude is None:
        return None
    if not sp.issparse(exclude):
        raise ConfigError(f"exclude must be a scipy sparse matrix or None, got {type(exclude)}")
    if exclude.shape != (n, n_items):
        raise ValueError(
            f"exclude must be [n_queries, n_items] = ({n}, {n_items}), got {exclude.shape}"
        )
    excl = sp.csr_matrix(exclude)
    if excl.nnz == 0:
        return None
    if not excl.has_sorted_indices:
        excl = excl.sorted_indices()
    return excl


class ANNIndex:
    """Approximate maximum-inner-product top-k over item vectors (usearch HNSW graph).

    Build one with :meth:`build` (or restore one with :meth:`from_bytes`), then call
    :meth:`search` like any lensrec index. Answers are approximate only in *which* items are
    found: every score returned is the exact dot product, excluded and non-candidate items
    never appear, and rows the graph cannot fill are answered exactly (see the module
    docstring for the steps and the measurements behind the defaults).

    Attributes
    ----------
    params : dict
        The build knobs (``connectivity``, ``expansion_add``, ``expansion_search``,
        ``storage``); ``ANNIndex.build(vectors, **index.params)`` builds the same kind of index.
    n_items : int
        Number of item vectors.
    dim : int
        Their dimension.
    item_vectors : float32 [n_items, dim]
        The vectors (read-only): the exact scores and the exact fallback come from them.

    Notes
    -----
    Searches are safe from many threads at once: all state is made in :meth:`build` /
    :meth:`from_bytes` and only read by :meth:`search`. usearch holds the GIL while it
    searches (with its own ``n_threads()`` threads), so concurrent callers take turns in the
    graph step; re-scoring and the exact fallback run concurrently.

    Examples
    --------
    >>> import numpy as np
    >>> from lensrec.retrieval.ann import ANNIndex
    >>> rng = np.random.default_rng(0)
    >>> items = rng.standard_normal((2000, 16)).astype(np.float32)
    >>> index = ANNIndex.build(items, random_state=0)
    >>> ids, scores = index.search(items[:2], 3)
    >>> ids.shape, ids.dtype.name, scores.dtype.name
    ((2, 3), 'int32', 'float32')
    """

    kind = "ann"

    def __init__(self, graph: Any, item_vectors: np.ndarray, params: dict[str, Any]):
        """Use :meth:`build` or :meth:`from_bytes`; this wires up already checked parts."""
        self._graph = graph
        self.item_vectors = item_vectors
        self.params = dict(params)
        self.n_items = int(item_vectors.shape[0])
        self.dim = int(item_vectors.shape[1])
        self._exact = ExactIndex(item_vectors)
        # usearch's Python binding searches with fixed per-thread contexts 0..threads-1 and
        # holds the GIL; the lock keeps concurrent callers safe should a release drop the GIL
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        knobs = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"ANNIndex(n_items={self.n_items}, dim={self.dim}, {knobs})"

    # --- building and saving ---------------------------------------------------------------
    @classmethod
    def build(
        cls,
        item_vectors: np.ndarray,
        *,
        connectivity: int = 16,
        expansion_add: int = 128,
        expansion_search: int = 256,
        storage: str = "bf16",
        random_state: RandomState = None,
    ) -> ANNIndex:
        """Build the graph over ``item_vectors`` with ``lensrec._config.n_threads()`` threads.

        Parameters
        ----------
        item_vectors : float32 [n_items, d]
            One row per item; the score of item ``i`` is ``query @ item_vectors[i]`` (biases
            folded in by the model). Kept (not copied when already float32 and contiguous)
            for exact re-scoring.
        connectivity : int, default 16
            Neighbours per node (HNSW's ``M``): more raises recall at a given search width
            and costs memory (~``2 * connectivity * 4`` bytes per item) and build time.
        expansion_add : int, default 128
            Candidate list size while inserting (HNSW's ``efConstruction``).
        expansion_search : int, default 256
            Candidate list size while searching (HNSW's ``ef``): the speed / recall knob.
            A row that needs more items from the graph (``k`` plus its exclusions) searches
            that much wider.
        storage : {"bf16", "f16", "f32"}, default "bf16"
            Precision of the vectors inside the graph (they only steer the search; scores
            are recomputed in float32).
        random_state : None, int or numpy.random.Generator
            Seeds the insertion order (items go in shuffled). With ``LENSREC_THREADS=1`` the
            graph, and every answer, is bitwise reproducible; with more threads the graph
            depends on scheduling and answers may differ in a few rows.

        Returns
        -------
        ANNIndex

        Raises
        ------
        MissingExtraError
            usearch is not installed (``pip install 'lensrec[ann]'``).
        ConfigError
            A knob outside its range.
        ValueError
            ``item_vectors`` not 2-d or not finite.
        """
        params = _check_knobs(
            {
                "connectivity": connectivity,
                "expansion_add": expansion_add,
                "expansion_search": expansion_search,
            },
            storage,
        )
        v = _check_vectors(item_vectors)
        gen = _rng(random_state)
        Index = _usearch()
        n, d = v.shape
        graph = Index(
            ndim=d,
            metric="ip",
            dtype=params["storage"],
            connectivity=params["connectivity"],
            expansion_add=params["expansion_add"],
            expansion_search=params["expansion_search"],
        )
        order = gen.permutation(n)
        scale = _graph_scale(v)
        threads = n_threads()
        t0 = time.perf_counter()
        bounds = [0, *range(min(n, _SERIAL_HEAD), n, _ADD_CHUNK), n]
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
            part = order[start:stop]
            if part.size:
                graph.add(
                    part.astype(np.uint64), v[part] * scale, threads=1 if start == 0 else threads
                )
        _log.debug(
            "ANNIndex: %d x %d vectors in %.1f s (%d threads, %s)",
            n,
            d,
            time.perf_counter() - t0,
            threads,
            params,
        )
        return cls(graph, v, params)

    def to_bytes(self) -> bytes:
        """The index as bytes (a small JSON header plus usearch's serialised graph; the
        graph holds its own copy of the vectors in ``storage`` precision).

        Store it with the model (e.g. ``np.frombuffer(blob, np.uint8)`` in the model file) and
        restore it with :meth:`from_bytes` and the same item vectors.
        """
        import usearch

        header = json.dumps(
            {
                "format": _FORMAT,
                "library": "usearch",
                "library_version": usearch.__version__,
                "n_items": self.n_items,
                "dim": self.dim,
                "params": self.params,
            }
        ).encode()
        with self._lock:
            graph = self._graph.save()
        return b"".join([_MAGIC, struct.pack("<I", len(header)), header, graph])

    @classmethod
    def from_bytes(cls, blob: bytes, item_vectors: np.ndarray) -> ANNIndex:
        """Restore an index saved with :meth:`to_bytes` over the same ``item_vectors``.

        Raises
        ------
        ModelFormatError
            The blob is not an ANNIndex, is corrupt, or was built over other vectors (its
            item count or dimension differ, or its stored vectors do not match).
        MissingExtraError
            usearch is not installed.
        """
        Index = _usearch()
        view = memoryview(blob)
        start = len(_MAGIC) + 4
        if len(view) < start or bytes(view[: len(_MAGIC)]) != _MAGIC:
            raise ModelFormatError("not an ANNIndex blob (wrong magic bytes)")
        (size,) = struct.unpack("<I", view[len(_MAGIC) : start])
        try:
            header = json.loads(bytes(view[start : start + size]))
            params = dict(header["params"])
            n_items, dim = int(header["n_items"]), int(header["dim"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelFormatError(f"corrupt ANNIndex header ({exc})") from None
        if header.get("format") != _FORMAT:
            raise ModelFormatError(
                f"ANNIndex blob format {header.get('format')!r}; this lensrec reads {_FORMAT}"
            )
        v = _check_vectors(item_vectors)
        if v.shape != (n_items, dim):
            raise ModelFormatError(
                f"ANNIndex blob was built over {n_items} x {dim} vectors, "
                f"given {v.shape[0]} x {v.shape[1]}"
            )
        error: Exception | None = None
        try:
            graph = Index.restore(view[start + size :])
        except (ValueError, RuntimeError) as exc:
            graph, error = None, exc
        if graph is None or len(graph) != n_items or graph.ndim != dim:
            import usearch

            raise ModelFormatError(
                f"corrupt ANNIndex graph (saved by usearch {header.get('library_version')}, "
                f"read by {usearch.__version__}{f': {error}' if error else ''})"
            )
        graph.expansion_search = int(params["expansion_search"])
        if n_items:
            # a few stored vectors must be the given ones (a stale blob after a refit fails here)
            probe = np.unique(np.linspace(0, n_items - 1, 8).astype(np.int64))
            stored = np.asarray(graph.get(probe.astype(np.uint64), dtype=np.float32))
            given = v[probe] * _graph_scale(v)
            tolerance = 1e-2 * np.abs(given).max(axis=1, keepdims=True) + 1e-30
            if not (np.abs(stored - given) <= tolerance).all():
                raise ModelFormatError(
                    "ANNIndex blob does not match the given item vectors (built before a refit?)"
                )
        return cls(graph, v, params)

    # --- searching --------------------------------------------------------------------------
    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        exclude: sp.csr_matrix | None = None,
        candidates: np.ndarray | None = None,
    ) -> tuple[IndexArray, ScoreArray]:
        """Top-``k`` items for each query vector, approximately.

        Parameters
        ----------
        queries : float32 [n, dim]
            User vectors (biases folded in): the score of item ``i`` is
            ``queries @ item_vectors[i]``.
        k : int
            List length.
        exclude : scipy.sparse CSR [n, n_items], optional
            Aligned with the queries: the items each row must not return (its stored
            entries, whatever their values).
        candidates : int array, optional
            Item indices the answer must come from (an allow-list); None for all items.

        Returns
        -------
        ids : int32 [n, k]
            Item indices, best first (equal scores: the lower index), padded with -1 when
            fewer than ``k`` items are available; never an excluded or non-candidate item,
            never twice in a row.
        scores : float32 [n, k]
            The exact dot products, padded with -inf.
        """
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"queries must be [n, {self.dim}], got shape {q.shape}")
        if not np.isfinite(q).all():
            raise ValueError("queries contain NaN or infinite values")
        k, cand = check_search_args(k, candidates, self.n_items)
        n = q.shape[0]
        excl = _check_exclude(exclude, n, self.n_items)
        out_ids = np.full((n, k), -1, dtype=np.int32)
        out_scores = np.full((n, k), -np.inf, dtype=np.float32)
        n_cols = self.n_items if cand is None else int(cand.size)
        if n == 0 or n_cols == 0:
            return out_ids, out_scores

        allowed = None
        if cand is not None:
            allowed = np.zeros(self.n_items, dtype=bool)
            allowed[cand] = True
        fetch = self._fetch_sizes(k, excl, allowed, n, n_cols)
        width = np.maximum(fetch, self.params["expansion_search"])
        # a zero query scores every item 0: the answer is the lowest allowed indices, which
        # only exact search gives
        norms = np.sqrt(np.einsum("ij,ij->i", q, q, dtype=np.float64))
        graph_rows = np.flatnonzero(
            (fetch < self.n_items) & (width * _EXACT_COST < n_cols) & (norms > 0)
        )
        short = np.zeros(0, dtype=np.int64)
        if graph_rows.size:
            short = self._graph_rows(q, norms, graph_rows, fetch[graph_rows], k, excl, allowed,
                                     out_ids, out_scores)  # fmt: skip
        exact_rows = np.setdiff1d(np.arange(n), graph_rows[~np.isin(graph_rows, short)])
        if exact_rows.size:
            ids, scores = self._exact.search(
                q[exact_rows],
                k,
                exclude=None if excl is None else excl[exact_rows],
                candidates=cand,
            )
            out_ids[exact_rows] = ids
            out_scores[exact_rows] = scores
        _log.debug(
            "ANNIndex.search: %d rows, %d from the graph, %d exact (%d of them: fewer than "
            "k = %d left after filtering the graph's items)",
            n,
            graph_rows.size - short.size,
            exact_rows.size,
            short.size,
            k,
        )
        return out_ids, out_scores

    def _fetch_sizes(
        self,
        k: int,
        excl: sp.csr_matrix | None,
        allowed: np.ndarray | None,
        n: int,
        n_cols: int,
    ) -> np.ndarray:
        """How many items each row asks the graph for (int64 ``[n]``)."""
        if excl is None:
            n_excl = np.zeros(n, dtype=np.int64)
        elif allowed is None:
            n_excl = np.diff(excl.indptr).astype(np.int64)
        else:
            row_of = np.repeat(np.arange(n), np.diff(excl.indptr))
            n_excl = np.bincount(row_of[allowed[excl.indices]], minlength=n).astype(np.int64)
        need = k + n_excl
        if allowed is None:
            # the graph returns distinct items, so need of them leave k after the exclusions;
            # twice k (free below the search width) leaves room to re-rank
            fetch = np.maximum(need, 2 * k)
        else:
            share = n_cols / self.n_items
            fetch = np.ceil(np.maximum(need, 2 * k) / share * _CANDIDATE_SLACK).astype(np.int64)
        return np.minimum(fetch, self.n_items)

    def _graph_rows(
        self,
        q: np.ndarray,
        norms: np.ndarray,
        rows: np.ndarray,
        fetch: np.ndarray,
        k: int,
        excl: sp.csr_matrix | None,
        allowed: np.ndarray | None,
        out_ids: np.ndarray,
        out_scores: np.ndarray,
    ) -> np.ndarray:
        """Answer ``rows`` from the graph into ``out_*``; return the rows left short."""
        set_thread_count()
        threads = n_threads()
        # one graph call per power-of-two width: a few calls, never more than ~2x the need
        # (taking the whole expansion_search beam instead raised recall on ml-100k BPR with
        # seen items excluded by under 1% and cost 8% of the queries per second at 1M)
        width = np.left_shift(1, np.ceil(np.log2(np.maximum(fetch, 1))).astype(np.int64))
        width = np.minimum(width, self.n_items)
        short: list[np.ndarray] = []
        for w in np.unique(width):
            group = rows[width == w]
            count = int(w)
            # unit-length queries: the graph's inner products stay in [-1, 1] (see _graph_scale)
            unit = (q[group] / norms[group, None]).astype(np.float32)
            with self._lock:
                found = self._graph.search(unit, count, threads=min(threads, group.size))
            keys = np.asarray(found.keys).reshape(group.size, -1)
            counts = getattr(found, "counts", None)
            if counts is None:  # one query: usearch trims the keys to the ones found
                counts = np.array([keys.shape[1]])
            if keys.shape[1] < count:
                keys = np.pad(keys, ((0, 0), (0, count - keys.shape[1])))
            step = max(1, _RESCORE_FLOATS // (count * self.dim))
            for s in range(0, group.size, step):
                part = group[s : s + step]
                short.append(
                    part[
                        self._rescore(
                            q[part],
                            keys[s : s + step],
                            np.asarray(counts[s : s + step]),
                            k,
                            None if excl is None else excl[part],
                            allowed,
                            out_ids,
                            out_scores,
                            part,
                        )
                    ]
                )
        return np.sort(np.concatenate(short)) if short else np.zeros(0, dtype=np.int64)

    def _rescore(
        self,
        q: np.ndarray,
        keys: np.ndarray,
        counts: np.ndarray,
        k: int,
        excl: sp.csr_matrix | None,
        allowed: np.ndarray | None,
        out_ids: np.ndarray,
        out_scores: np.ndarray,
        rows: np.ndarray,
    ) -> np.ndarray:
        """Filter and exactly re-score one block of the graph's answers; write the rows that
        keep at least ``k`` items into ``out_*`` and return the mask of those that do not."""
        n_items = self.n_items
        b, width = keys.shape
        ids = keys.astype(np.int64)
        ids[np.arange(width)[None, :] >= counts[:, None]] = n_items  # unfilled slots
        # sorted by index, equal scores keep the lower index first in the top-k kernel, and
        # duplicates sit side by side
        ids.sort(axis=1)
        drop = ids >= n_items
        drop[:, 1:] |= ids[:, 1:] == ids[:, :-1]
        safe = np.minimum(ids, n_items - 1)
        if allowed is not None:
            drop |= ~allowed[safe]
        if excl is not None and excl.nnz:
            stride = n_items + 1
            lengths = np.diff(excl.indptr)
            banned = np.repeat(np.arange(b, dtype=np.int64), lengths) * stride + excl.indices
            wanted = np.arange(b, dtype=np.int64)[:, None] * stride + ids
            at = np.minimum(np.searchsorted(banned, wanted), banned.size - 1)
            drop |= banned[at] == wanted
        scores = np.einsum("bwd,bd->bw", self.item_vectors[safe], q)
        scores[drop] = -np.inf
        top = np.empty((b, k), dtype=np.int32)
        top_scores = np.empty((b, k), dtype=np.float32)
        topk_rows(scores, k, np.zeros(b + 1, dtype=np.int64), np.zeros(0, dtype=np.int32),
                  top, top_scores)  # fmt: skip
        is_short = (width - drop.sum(axis=1)) < k
        full = ~is_short
        top_ids = np.take_along_axis(ids, np.maximum(top, 0).astype(np.int64), axis=1)
        out_ids[rows[full]] = top_ids[full].astype(np.int32)
        out_scores[rows[full]] = top_scores[full]
        return is_short
