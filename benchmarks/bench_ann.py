"""ANNIndex (usearch HNSW graph + exact re-scoring) vs the exact path, in one run.

1,000,000 x 64 seeded item vectors shaped like matrix-factorisation item factors: 1,000
clusters whose centres span a rank-24 subspace, Zipf-like cluster sizes (weights
``1 / rank^0.8``), a direction per item = its centre + N(0, 0.7^2) noise (normalised), and a
norm that grows with a Zipf popularity rank (``rank ** -0.1`` times a log-normal(0, 0.15),
scaled to median 1: p1 / p50 / p99 / max = 0.68 / 1 / 1.62 / ~4.5). Queries are user vectors
drawn the same way from 1-3 cluster centres (by cluster weight) plus noise, times a
log-normal length. Both indexes answer the same queries with the same ``k``:

- exact: :class:`lensrec.retrieval.ExactIndex` (blocked matmul + the shared numba top-k
  kernel, the default path of every model), or the blocked kernel directly if that module
  is missing;
- ann: :class:`lensrec.retrieval.ann.ANNIndex` with its defaults.

Query seconds are the median of ``--repeats`` interleaved runs (exact, ann, exact, ...)
after a warm-up (numba's compilation excluded). Recall@k is the share of the exact top-k
the ANN returns. ``--exclude`` adds a seen-item history per query (log-normal length, median
~30, drawn by popularity) that both indexes must skip. Build memory is the process's
resident-set growth over the build (usearch allocates in C++, which ``tracemalloc`` does not
see; its peak is printed too) and the serialised size.

    python benchmarks/bench_ann.py                      # 1M x 64, 2,000 queries, k 10
    python benchmarks/bench_ann.py --exclude            # the same with seen-item exclusion
    python benchmarks/bench_ann.py --n-items 100000 --queries 5000
    python benchmarks/bench_ann.py --crossover          # where the graph starts to pay

``--crossover`` measures, on nested subsets of the catalogue, the cost of a graph search per
unit of search width in exact item scorings (``_EXACT_COST`` in ``lensrec/retrieval/ann.py``,
below which ANNIndex answers rows exactly).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from lensrec._config import n_threads


# --- data ------------------------------------------------------------------------------------
def mf_like(
    n_items: int, dim: int, n_queries: int, seed: int, *, n_clusters: int = 1000, rank: int = 24
) -> tuple[np.ndarray, np.ndarray]:
    """Item vectors and user vectors with cluster structure and popularity-dependent norms."""
    g = np.random.default_rng(seed)
    basis = g.standard_normal((rank, dim)) / np.sqrt(rank)
    centres = g.standard_normal((n_clusters, rank)) @ basis
    weight = g.permutation(1.0 / (1.0 + np.arange(n_clusters)) ** 0.8)
    weight /= weight.sum()
    items = np.empty((n_items, dim), dtype=np.float32)
    step = 1 << 18
    for s in range(0, n_items, step):  # in slices: float64 temporaries stay small
        m = min(step, n_items - s)
        v = centres[g.choice(n_clusters, size=m, p=weight)] + 0.7 * g.standard_normal((m, dim))
        items[s : s + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    popularity_rank = g.permutation(n_items) + 1
    norms = popularity_rank**-0.1 * g.lognormal(0.0, 0.15, n_items)
    items *= (norms / np.median(norms)).astype(np.float32)[:, None]
    mix = g.integers(1, 4, n_queries)
    q = np.zeros((n_queries, dim))
    for j in range(3):
        pick = g.choice(n_clusters, size=n_queries, p=weight)
        q += np.where((mix > j)[:, None], centres[pick], 0.0)
    q = q / mix[:, None] + 0.7 * g.standard_normal((n_queries, dim))
    q *= g.lognormal(0.0, 0.3, n_queries)[:, None]
    return items, q.astype(np.float32)


def histories(n_queries: int, items: np.ndarray, seed: int) -> sp.csr_matrix:
    """Seen items per query: log-normal counts (median ~30), drawn by popularity (~norm)."""
    g = np.random.default_rng(seed + 1)
    n_items = items.shape[0]
    p = np.linalg.norm(items, axis=1).astype(np.float64) ** 8
    p /= p.sum()
    counts = np.minimum(np.ceil(g.lognormal(np.log(30), 1.0, n_queries)).astype(np.int64), 2000)
    cols = g.choice(n_items, size=int(counts.sum()), p=p)
    rows = np.repeat(np.arange(n_queries), counts)
    h = sp.csr_matrix((np.ones(cols.size, np.float32), (rows, cols)), shape=(n_queries, n_items))
    h.sum_duplicates()
    return h


# --- the exact path --------------------------------------------------------------------------
def exact_searcher(items: np.ndarray) -> tuple[str, Callable[..., tuple[np.ndarray, np.ndarray]]]:
    try:
        from lensrec.retrieval.exact import ExactIndex
    except ImportError:
        from lensrec.kernels.topk import topk_rows

        chunk = max(1, (1 << 24) // items.shape[0])

        def blocked(q, k, exclude=None):
            n = q.shape[0]
            ids = np.empty((n, k), np.int32)
            scores = np.empty((n, k), np.float32)
            for s in range(0, n, chunk):
                e = min(n, s + chunk)
                if exclude is None:
                    ptr, ind = np.zeros(e - s + 1, np.int64), np.zeros(0, np.int32)
                else:
                    rows = exclude[s:e]
                    rows.sort_indices()
                    ptr, ind = rows.indptr.astype(np.int64), rows.indices.astype(np.int32)
                topk_rows(q[s:e] @ items.T, k, ptr, ind, ids[s:e], scores[s:e])
            return ids, scores

        return "blocked matmul + topk_rows", blocked
    index = ExactIndex(items)
    return "ExactIndex", lambda q, k, exclude=None: index.search(q, k, exclude=exclude)


def rss_mib() -> float:
    """Current resident set size (Linux; the peak on other systems)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return peak_rss_mib()


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def recall_at(got: np.ndarray, want: np.ndarray) -> float:
    hits = sum(np.intersect1d(g[g >= 0], w[w >= 0]).size for g, w in zip(got, want, strict=True))
    return hits / max(1, int((want >= 0).sum()))


# --- runs ------------------------------------------------------------------------------------
def run_main(args: argparse.Namespace) -> None:
    from lensrec.retrieval.ann import ANNIndex

    t = time.perf_counter()
    items, queries = mf_like(args.n_items, args.dim, args.queries, args.seed)
    excl = histories(args.queries, items, args.seed) if args.exclude else None
    print(
        f"data: {args.n_items:,} x {args.dim} items, {args.queries:,} queries, k={args.k}, "
        f"seed {args.seed}, {n_threads()} threads"
        + (
            f", history per query: median {np.median(np.diff(excl.indptr)):.0f}"
            if excl is not None
            else ""
        )
        + f" ({time.perf_counter() - t:.1f} s)",
        flush=True,
    )
    exact_name, exact = exact_searcher(items)
    exact(queries[:64], args.k, None if excl is None else excl[:64])  # numba warm-up

    rss0 = rss_mib()
    tracemalloc.start()
    t = time.perf_counter()
    index = ANNIndex.build(items, random_state=args.seed)
    build_s = time.perf_counter() - t
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    build_mib = rss_mib() - rss0
    blob_mib = len(index.to_bytes()) / 2**20
    index.search(queries[:64], args.k, exclude=None if excl is None else excl[:64])
    print(f"ann build: {build_s:.1f} s, +{build_mib:.0f} MiB resident, serialised {blob_mib:.0f} "
          f"MiB, tracemalloc peak {traced_peak / 2**20:.0f} MiB, {index}", flush=True)  # fmt: skip

    times: dict[str, list[float]] = {"exact": [], "ann": []}
    want = got = None
    for r in range(args.repeats):
        t = time.perf_counter()
        want, _ = exact(queries, args.k, excl)
        times["exact"].append(time.perf_counter() - t)
        t = time.perf_counter()
        got, _ = index.search(queries, args.k, exclude=excl)
        times["ann"].append(time.perf_counter() - t)
        print(f"  repeat {r + 1}: exact {args.queries / times['exact'][-1]:,.0f} q/s, "
              f"ann {args.queries / times['ann'][-1]:,.0f} q/s", flush=True)  # fmt: skip
    assert want is not None and got is not None
    qps_exact = args.queries / float(np.median(times["exact"]))
    qps_ann = args.queries / float(np.median(times["ann"]))
    rec = recall_at(got, want)
    if excl is not None:
        bad = sum(np.isin(got[i], excl[i].indices).any() for i in range(len(got)))
        print(f"rows returning an excluded item: {bad}")
    print()
    print(f"| index | build s | memory MiB | recall@{args.k} | queries / s |")
    print("|---|---|---|---|---|")
    print(f"| exact ({exact_name}) | - | - | 1.000 | {qps_exact:,.0f} |")
    print(f"| ANNIndex {index.params} | {build_s:.1f} | +{build_mib:.0f} resident, "
          f"{blob_mib:.0f} serialised | {rec:.3f} | {qps_ann:,.0f} |")  # fmt: skip
    print()
    print(f"recall@{args.k} {rec:.4f}  QPS exact {qps_exact:,.0f}  ann {qps_ann:,.0f}  "
          f"ratio {qps_ann / qps_exact:.1f}x  build {build_s:.1f} s  "
          f"peak RSS {peak_rss_mib():,.0f} MiB")  # fmt: skip


def run_crossover(args: argparse.Namespace) -> None:
    """Graph cost per unit of search width, in exact item scorings, by catalogue size."""
    from lensrec.retrieval import ann
    from lensrec.retrieval.ann import ANNIndex

    items, queries = mf_like(args.n_items, args.dim, args.queries, args.seed)
    sizes = [s for s in (10_000, 30_000, 100_000, 300_000, 1_000_000) if s <= args.n_items]
    old = ann._EXACT_COST
    print(
        "| items | exact q/s | graph q/s (ef 256) | graph cost per width unit, in item scorings |"
    )
    print("|---|---|---|---|")
    for n in sizes:
        v = items[:n]
        index = ANNIndex.build(v, random_state=args.seed)
        _, exact = exact_searcher(v)
        exact(queries[:64], args.k)
        ann._EXACT_COST = 0.0
        index.search(queries[:64], args.k)
        te, tg = [], []
        try:
            for _ in range(args.repeats):
                t = time.perf_counter()
                exact(queries, args.k)
                te.append(time.perf_counter() - t)
                t = time.perf_counter()
                index.search(queries, args.k)
                tg.append(time.perf_counter() - t)
        finally:
            ann._EXACT_COST = old
        per_exact = float(np.median(te)) / (len(queries) * n)
        per_graph = float(np.median(tg)) / (len(queries) * index.params["expansion_search"])
        print(f"| {n:,} | {len(queries) / np.median(te):,.0f} | {len(queries) / np.median(tg):,.0f} "
              f"| {per_graph / per_exact:.0f} |", flush=True)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n-items", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--exclude", action="store_true", help="seen-item histories per query")
    parser.add_argument("--crossover", action="store_true", help="graph vs exact by size")
    args = parser.parse_args(argv)
    if args.crossover:
        run_crossover(args)
    else:
        run_main(args)


if __name__ == "__main__":
    main()
