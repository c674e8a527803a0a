"""Item-item and linear top-N models (EASE, SLIM, PureSVD, ItemKNN) vs implicit's item-kNN.

ml-100k, ratings >= 4 as positives (``lensrec.split.min_rating``), each user's last 3
positives as test, once by timestamp (``last:3``) and once by u.data's row order
(``last:3:row``). Every model is scored by ``lensrec.evaluate.evaluate`` on the same split:
NDCG@10, HR@10, Recall@10 and MAP@10 divided by k (``map_k``), seen items excluded.

lensrec models run with their defaults and, with ``--tune``, with parameters chosen by
NDCG@10 on a validation set carved from the training part only (each user's last 3
training positives, in the protocol's order); the test part is never looked at for
choosing. The "best lensrec model" line is the one with the best *validation* NDCG@10.

When ``implicit`` is importable (a benchmark-only venv: it is not a lensrec dependency),
its ``CosineRecommender`` and ``BM25Recommender`` run on the same split and the same CSR,
with implicit's defaults and with lensrec ItemKNN's neighbours / BM25 parameters, and the
fit-time ratio lensrec / implicit is printed for the matched pairs.

Fit seconds are the fastest of ``--repeats`` fits, after ``warm_up`` (numba's JIT compilation
excluded). Peak memory is measured in one more fit: the process's resident memory sampled
every 2 ms, minus its value before the fit (``peak MiB``; catches numba, BLAS and C++
allocations), and the ``tracemalloc`` peak (Python-visible allocations, numpy arrays).

    python benchmarks/bench_item_models.py [--tune] [--repeats 3]
    benchmarks/.venv/bin/python benchmarks/bench_item_models.py --tune   # + implicit
    python benchmarks/bench_item_models.py --synthetic 1000000         # fit time and memory

``--synthetic N`` fits every model on ``lensrec.data.synthetic(6040, 3706, N, implicit=True)``
(an ml-1m-shaped catalogue, Zipf-like popularity) and reports fit seconds and memory only.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from lensrec import Interactions
from lensrec.data import load_dataset, synthetic
from lensrec.evaluate import evaluate
from lensrec.models import MODELS
from lensrec.split import Split, last_k, make_split, min_rating

METRICS = ["ndcg@10", "hit_rate@10", "recall@10", "map_k@10"]
TARGETS = {"last:3:row": {"hit_rate@10": 0.63, "map_k@10": 0.045}, "last:3": {"ndcg@10": 0.10}}

#: (label, CLI name, fixed params, validation grid for --tune)
LENSREC: list[tuple[str, str, dict[str, Any], dict[str, list[Any]]]] = [
    ("EASE", "ease", {}, {"reg": [50.0, 100.0, 200.0, 400.0, 800.0]}),
    ("SLIM", "slim", {}, {"l1": [0.3, 1.0, 3.0], "l2": [20.0, 50.0, 200.0]}),
    ("PureSVD", "pure-svd", {}, {"factors": [10, 20, 30, 50]}),
    ("ItemKNN cosine", "item-knn", {"weighting": "cosine"}, {"neighbours": [50, 200, 800]}),
    ("ItemKNN bm25", "item-knn", {"weighting": "bm25"},
     {"neighbours": [50, 200, 800], "b": [0.5, 0.75]}),
]  # fmt: skip


# --- measuring ---------------------------------------------------------------------------------
def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_memory(fit: Callable[[], Any]) -> tuple[float, float]:
    """``(RSS peak over the pre-fit RSS, tracemalloc peak)`` of one call, in MiB."""
    base = _rss()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    tracemalloc.start()
    sampler.start()
    try:
        fit()
    finally:
        done.set()
        sampler.join()
        _, traced = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    peak[0] = max(peak[0], _rss())
    return (peak[0] - base) / 2**20, traced / 2**20


def best_time(fit: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fit()
        times.append(time.perf_counter() - t0)
    return min(times)


# --- implicit ------------------------------------------------------------------------------------
class ImplicitRanker:
    """implicit's item-kNN behind lensrec's ``recommend(users, k, exclude=...)``."""

    def __init__(self, model: Any, user_items: sp.csr_matrix):
        self.model = model
        self.user_items = user_items

    def fit(self) -> ImplicitRanker:
        self.model.fit(self.user_items, show_progress=False)
        return self

    def recommend(
        self, users: Any, k: int = 10, *, exclude: Any = None, items: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        users = np.asarray(users, dtype=np.int32)
        ids, scores = self.model.recommend(
            users, self.user_items[users], N=k, filter_already_liked_items=exclude is not None
        )
        out_ids = np.full((users.size, k), -1, dtype=np.int32)
        out_scores = np.full((users.size, k), -np.inf, dtype=np.float32)
        out_ids[:, : ids.shape[1]] = ids
        out_scores[:, : ids.shape[1]] = scores
        return out_ids, out_scores


def implicit_models(neighbours: int, b: float, k1: float) -> list[tuple[str, Callable[[], Any]]]:
    """(label, factory) of implicit's item-kNN models: defaults, then lensrec's settings."""
    try:
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender
    except ImportError:
        return []
    return [
        ("implicit Cosine (K=20)", lambda: CosineRecommender(num_threads=0)),
        (f"implicit Cosine (K={neighbours})",
         lambda: CosineRecommender(K=neighbours, num_threads=0)),
        ("implicit BM25 (K=20, B=0.75)", lambda: BM25Recommender(num_threads=0)),
        (f"implicit BM25 (K={neighbours}, B={b:g})",
         lambda: BM25Recommender(K=neighbours, K1=k1, B=b, num_threads=0)),
    ]  # fmt: skip


# --- data ----------------------------------------------------------------------------------------
def positives() -> Interactions:
    return min_rating(load_dataset("ml-100k"), 4)


def validation(split: Split, protocol: str) -> Split:
    """Each user's last 3 training positives (in the protocol's order) as validation."""
    return last_k(split.train, 3, by="row" if protocol.endswith(":row") else "timestamp")


# --- runs ----------------------------------------------------------------------------------------
@dataclass
class Row:
    label: str
    params: dict[str, Any]
    metrics: dict[str, float]
    fit_s: float
    rss_mib: float
    traced_mib: float
    valid_ndcg: float = float("nan")
    extra: dict[str, Any] = field(default_factory=dict)


def _fmt_params(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def tune(
    name: str,
    fixed: dict[str, Any],
    grid: dict[str, list[Any]],
    data: Interactions,
    protocol: str,
) -> tuple[dict[str, Any], float]:
    """Grid search through ``lensrec.tune`` (validation carved from the split's training part
    by the one validation path: each user's last 3 training positives, in the protocol's
    order): the params with the best validation NDCG@10, and that NDCG."""
    from lensrec.experiments import RunSpec
    from lensrec.tune import tune as search

    spec = RunSpec(dataset="ml-100k", split=protocol, model=name, params=fixed, seed=0)
    out = search(spec, method="grid", values=grid, only=list(grid), data=data, runs_dir=None,
                 refit=False, prune=False, metric="ndcg")  # fmt: skip
    return {**fixed, **out.best_params}, out.best_value


def run_protocol(data: Interactions, protocol: str, args: argparse.Namespace) -> list[Row]:
    split = make_split(data, protocol)
    valid = validation(split, protocol)
    train, test = split.train, split.test
    rows: list[Row] = []
    for label, name, fixed, grid in LENSREC:
        cls = MODELS[name]
        cls.warm_up()
        settings = [("defaults", dict(fixed))]
        if args.tune:
            chosen, _ = tune(name, fixed, grid, data, protocol)
            settings.append(("tuned", chosen))
        for kind, params in settings:
            v_model = cls(**params, random_state=0).fit(valid.train)
            v_ndcg = evaluate(v_model, valid.train, valid.test, k=10, metrics=["ndcg@10"], ci=False)
            fit_s = best_time(
                lambda c=cls, p=params: c(**p, random_state=0).fit(train), args.repeats
            )
            rss, traced = peak_memory(lambda c=cls, p=params: c(**p, random_state=0).fit(train))
            model = cls(**params, random_state=0).fit(train)
            res = evaluate(model, train, test, k=10, metrics=METRICS, ci=False)
            shown = {k: v for k, v in params.items() if k not in fixed or kind == "tuned"}
            rows.append(Row(f"{label} ({kind})", shown, res.metrics, fit_s, rss, traced,
                            v_ndcg.metrics["ndcg@10"], {"name": name}))  # fmt: skip
    knn = MODELS["item-knn"].param_defaults()
    x = train.csr()
    for label, make in implicit_models(knn["neighbours"], knn["b"], knn["k1"]):
        fit_s = best_time(lambda make=make: ImplicitRanker(make(), x).fit(), args.repeats)
        rss, traced = peak_memory(lambda make=make: ImplicitRanker(make(), x).fit())
        ranker = ImplicitRanker(make(), x).fit()
        res = evaluate(ranker, train, test, k=10, metrics=METRICS, ci=False)
        rows.append(Row(label, {}, res.metrics, fit_s, rss, traced))
    return rows


def print_protocol(protocol: str, rows: list[Row]) -> None:
    print(f"\n### ml-100k, ratings >= 4, test = each user's last 3 positives: {protocol}\n")
    print(
        "| model | params | NDCG@10 | HR@10 | Recall@10 | MAP@10 (/k) | valid NDCG@10 | fit s | peak MiB (RSS / traced) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        m = r.metrics
        vn = "" if np.isnan(r.valid_ndcg) else f"{r.valid_ndcg:.4f}"
        print(
            f"| {r.label} | {_fmt_params(r.params)} | {m['ndcg@10']:.4f} | {m['hit_rate@10']:.4f} | "
            f"{m['recall@10']:.4f} | {m['map_k@10']:.4f} | {vn} | {r.fit_s:.3f} | "
            f"{r.rss_mib:.0f} / {r.traced_mib:.0f} |"
        )
    ours = [r for r in rows if not np.isnan(r.valid_ndcg)]
    best = max(ours, key=lambda r: r.valid_ndcg)
    checks = ", ".join(
        f"{k} {best.metrics[k]:.4f} {'>=' if best.metrics[k] >= v else '<'} {v}"
        for k, v in TARGETS[protocol].items()
    )
    print(f"\nbest lensrec model by validation NDCG@10: {best.label}: {checks}")
    pairs = [("ItemKNN cosine (defaults)", "implicit Cosine (K=200)"),
             ("ItemKNN bm25 (defaults)", "implicit BM25 (K=200, B=0.5)")]  # fmt: skip
    by_label = {r.label: r for r in rows}
    for ours_label, peer_label in pairs:
        a, b = by_label.get(ours_label), by_label.get(peer_label)
        if a is not None and b is not None:
            print(
                f"fit time {ours_label} / {peer_label}: {a.fit_s / b.fit_s:.2f} "
                f"(NDCG@10 {a.metrics['ndcg@10']:.4f} vs {b.metrics['ndcg@10']:.4f})"
            )


def run_synthetic(n: int, args: argparse.Namespace) -> None:
    data = synthetic(6040, 3706, n, implicit=True, random_state=0)
    x = data.csr()
    print(f"\n### synthetic implicit: {len(data):,} interactions, {data.n_users:,} users x "
          f"{data.n_items:,} items (fit only)\n")  # fmt: skip
    print("| model | fit s | peak MiB (RSS / traced) |")
    print("|---|---|---|")
    results: dict[str, float] = {}
    for label, name, fixed, _ in LENSREC:
        cls = MODELS[name]
        cls.warm_up()
        fit_s = best_time(lambda c=cls, p=fixed: c(**p, random_state=0).fit(data), args.repeats)
        rss, traced = peak_memory(lambda c=cls, p=fixed: c(**p, random_state=0).fit(data))
        results[label] = fit_s
        print(f"| {label} | {fit_s:.3f} | {rss:.0f} / {traced:.0f} |", flush=True)
    knn = MODELS["item-knn"].param_defaults()
    for label, make in implicit_models(knn["neighbours"], knn["b"], knn["k1"]):
        fit_s = best_time(lambda make=make: ImplicitRanker(make(), x).fit(), args.repeats)
        rss, traced = peak_memory(lambda make=make: ImplicitRanker(make(), x).fit())
        results[label] = fit_s
        print(f"| {label} | {fit_s:.3f} | {rss:.0f} / {traced:.0f} |", flush=True)
    for ours, peer in (("ItemKNN cosine", "implicit Cosine (K=200)"),
                       ("ItemKNN bm25", "implicit BM25 (K=200, B=0.5)")):  # fmt: skip
        if ours in results and peer in results:
            print(f"\nfit time {ours} / {peer}: {results[ours] / results[peer]:.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--tune", action="store_true", help="also tune on validation carved from train"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed fits per model (fastest kept)"
    )
    parser.add_argument("--protocol", choices=["last:3", "last:3:row", "both"], default="both")
    parser.add_argument(
        "--synthetic", type=int, default=0, help="fit-only run on N synthetic interactions"
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", module="implicit")  # its CSR-conversion notices
    try:
        import implicit

        peer = f"implicit {implicit.__version__}"
    except ImportError:
        peer = "implicit not installed (no peer rows)"
    import numba

    print(f"python {sys.version.split()[0]}, {peer}, numba threads {numba.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
    if args.synthetic:
        run_synthetic(args.synthetic, args)
        return
    data = positives()
    protocols = ["last:3", "last:3:row"] if args.protocol == "both" else [args.protocol]
    for protocol in protocols:
        print_protocol(protocol, run_protocol(data, protocol, args))
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
