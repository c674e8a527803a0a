"""Factor models for implicit data (ALS, BPR, WARP) vs implicit (ALS, BPR) and LightFM (WARP).

Three comparisons, each running lensrec and the peer in the same process on the same data:

``ml100k``: ml-100k, ratings >= 4 as positives (``lensrec.split.min_rating``; both sides see
the same binary positives), each user's last 3 positives as test, once by timestamp
(``last:3``) and once by u.data's row order (``last:3:row``). Every model is scored by
``lensrec.evaluate.evaluate`` on the same split (NDCG@10, HR@10, Recall@10, MAP@10 divided by
k, seen items excluded). Each model runs with its defaults and, with ``--tune``, with the
parameters of the best validation NDCG@10 over a small grid (``GRIDS``: the same shape for
both sides, each in its own parametrisation) on a validation split carved from the training
part only (each user's last 3 training positives, in the protocol's order); the test part is
never used for choosing. LightFM's ``fit`` defaults to one epoch; its "defaults" row uses 30.

``synthetic``: ``lensrec.data.synthetic(n // 100, n // 500, n, implicit=True)`` (log-normal
user activity, Zipf item popularity; no user-specific structure beyond popularity, so
NDCG@10 here checks that both sides reach the same optimum, not personalisation), test = each
user's last interaction by time. 64 factors, 2 threads on both sides. ALS: 15 iterations with
implicit's objective on both sides (lensrec ``reg_frequency_exponent=0``,
``unobserved_weight=1``, ``alpha=1``: confidence 2 = implicit's ``alpha=2``; regularization
0.01), lensrec also computing its training loss every iteration (implicit does not by
default); ``--defaults`` adds lensrec at its own defaults. BPR: time per
epoch at the same learning rate and regularisation; WARP: time per epoch against LightFM at
LightFM's defaults (AdaGrad, learning_rate 0.05, max_sampled 10). Each comparison is run
interleaved (lensrec, peer, lensrec, peer, ...) ``--repeats`` times; medians are printed.

``recommend``: top-10 for all users of the synthetic data, seen items excluded, with the same
factors on both sides (lensrec ALS's, copied into implicit's model): lensrec ``recommend`` vs
implicit's ``recommend`` on all users, interleaved and repeated; the share of identical lists
is printed.

``factors``: ALS seconds per iteration on synthetic data (at least 10,240 users and items) as
the embedding grows from 64 to 1024 (lensrec's blocked lockstep CG vs implicit's per-row CG).

Fit seconds exclude numba's JIT (``warm_up`` first). Peak memory is the process's resident
memory sampled every 2 ms during the fit, minus its value before (``peak MiB``).

    benchmarks/.venv/bin/python benchmarks/bench_implicit_models.py ml100k --tune
    LENSREC_THREADS=2 benchmarks/.venv/bin/python benchmarks/bench_implicit_models.py \\
        synthetic --n 10000000 --repeats 3
    LENSREC_THREADS=2 benchmarks/.venv/bin/python benchmarks/bench_implicit_models.py \\
        recommend --n 10000000 --repeats 5
    LENSREC_THREADS=2 benchmarks/.venv/bin/python benchmarks/bench_implicit_models.py \\
        factors --n 1000000 --epochs 3

implicit and LightFM are not lensrec dependencies: run this in a benchmark-only venv that has
them (without them only the lensrec rows are printed).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
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
from threadpoolctl import threadpool_limits

from lensrec.data import load_dataset, synthetic
from lensrec.evaluate import evaluate
from lensrec.kernels.topk import topk_rows
from lensrec.models import MODELS
from lensrec.split import Split, last_k, min_rating

METRICS = ["ndcg@10", "hit_rate@10", "recall@10", "map_k@10"]
TARGETS = {"last:3:row": {"hit_rate@10": 0.63, "map_k@10": 0.045}, "last:3": {"ndcg@10": 0.10}}
THREADS = 2

#: validation grids (--tune): (side, model) -> {param: values}; the same shape for both sides
GRIDS: dict[tuple[str, str], dict[str, list[Any]]] = {
    ("lensrec", "als"): {"factors": [32, 64, 128], "reg": [0.005, 0.01, 0.02],
                         "alpha": [0.3, 1.0, 3.0]},
    ("peer", "als"): {"factors": [32, 64, 128], "regularization": [3.0, 10.0, 30.0],
                      "alpha": [1.0, 2.0, 5.0]},
    ("lensrec", "bpr"): {"learning_rate": [0.01, 0.05], "reg": [0.002, 0.01],
                         "epochs": [100, 300]},
    ("peer", "bpr"): {"learning_rate": [0.01, 0.05], "regularization": [0.002, 0.01],
                      "iterations": [100, 300]},
    ("lensrec", "warp"): {"learning_rate": [0.02, 0.05], "max_sampled": [10, 30],
                          "epochs": [30, 100]},
    ("peer", "warp"): {"learning_rate": [0.02, 0.05], "max_sampled": [10, 30],
                       "epochs": [30, 100]},
}  # fmt: skip
#: the peers' rows with their defaults (LightFM's fit defaults to one epoch: 30 here)
PEER_DEFAULTS: dict[str, dict[str, Any]] = {"als": {}, "bpr": {}, "warp": {"epochs": 30}}
LABELS = {"als": ("lensrec ALS", "implicit ALS"), "bpr": ("lensrec BPR", "implicit BPR"),
          "warp": ("lensrec WARP", "LightFM WARP")}  # fmt: skip


# --- measuring ---------------------------------------------------------------------------------
def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measured(call: Callable[[], Any]) -> tuple[Any, float, float]:
    """``(result, seconds, peak RSS over the starting RSS in MiB)`` of one call."""
    base = _rss()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    try:
        out = call()
    finally:
        seconds = time.perf_counter() - t0
        done.set()
        sampler.join()
    return out, seconds, (max(peak[0], _rss()) - base) / 2**20


def memory(call: Callable[[], Any]) -> tuple[float, float]:
    """``(RSS peak MiB, tracemalloc peak MiB)`` of one more, untimed call.

    RSS catches every allocation (numba, BLAS, C++) but misses memory the allocator reuses
    from earlier runs; tracemalloc sees Python-visible ones (numpy arrays) exactly.
    """
    tracemalloc.start()
    try:
        _, _, rss = measured(call)
        _, traced = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return rss, traced / 2**20


def load_note() -> str:
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


# --- peers -------------------------------------------------------------------------------------
class FactorRanker:
    """Scores ``U V^T`` (bias columns included by the caller) behind lensrec's ``recommend``."""

    def __init__(self, U: np.ndarray, V: np.ndarray):
        self.U = np.ascontiguousarray(U, dtype=np.float32)
        self.V = np.ascontiguousarray(V, dtype=np.float32)

    def recommend(
        self, users: Any, k: int = 10, *, exclude: Any = None, items: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        users = np.asarray(users, dtype=np.int64)
        scores = np.ascontiguousarray(self.U[users] @ self.V.T, dtype=np.float32)
        if exclude is None:
            indptr, indices = np.zeros(users.size + 1, np.int64), np.zeros(0, np.int32)
        else:
            rows = sp.csr_matrix(exclude)[users]
            rows.sort_indices()
            indptr, indices = rows.indptr.astype(np.int64), rows.indices.astype(np.int32)
        ids = np.empty((users.size, k), np.int32)
        top = np.empty((users.size, k), np.float32)
        topk_rows(scores, k, indptr, indices, ids, top)
        return ids, top


def peer_available(model: str) -> bool:
    try:
        if model == "warp":
            import lightfm  # noqa: F401
        else:
            import implicit  # noqa: F401
    except ImportError:
        return False
    return True


def fit_peer(model: str, x: sp.csr_matrix, params: dict[str, Any], seed: int = 0) -> Any:
    """Fit implicit's ALS / BPR or LightFM's WARP on the binary users x items CSR."""
    if model == "als":
        from implicit.cpu.als import AlternatingLeastSquares

        m = AlternatingLeastSquares(**params, num_threads=THREADS, random_state=seed)
        with threadpool_limits(1, user_api="blas"):  # implicit's own advice (check_blas_config)
            m.fit(x, show_progress=False)
        return m
    if model == "bpr":
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        m = BayesianPersonalizedRanking(**params, num_threads=THREADS, random_state=seed)
        m.fit(x, show_progress=False)
        return m
    from lightfm import LightFM

    p = dict(params)
    epochs = int(p.pop("epochs", 1))
    p.setdefault("no_components", p.pop("factors", 64))
    m = LightFM(loss=p.pop("loss", "warp"), **p, random_state=seed)
    m.fit(x.tocoo(), epochs=epochs, num_threads=THREADS)
    return m


def peer_ranker(model: str, fitted: Any) -> FactorRanker:
    if model == "warp":
        ib, iv = fitted.get_item_representations()
        ub, uv = fitted.get_user_representations()
        ones = np.ones((uv.shape[0], 1), np.float32)
        return FactorRanker(np.hstack([uv, ones]), np.hstack([iv, ib[:, None]]))
    # implicit's BPR keeps the item bias as the last factor (and 1 in the user's)
    return FactorRanker(fitted.user_factors, fitted.item_factors)


def peer_params(model: str, lensrec_params: dict[str, Any]) -> dict[str, Any]:
    """The peer's parameters for the same objective / schedule as lensrec's (synthetic runs)."""
    p = lensrec_params
    if model == "als":
        return {"factors": p["factors"], "regularization": p["reg"], "alpha": 1.0 + p["alpha"],
                "iterations": p["epochs"]}  # fmt: skip
    if model == "bpr":
        return {"factors": p["factors"], "learning_rate": p["learning_rate"],
                "regularization": p["reg"], "iterations": p["epochs"]}  # fmt: skip
    return {"factors": p["factors"], "learning_rate": p["learning_rate"],
            "max_sampled": p["max_sampled"], "epochs": p["epochs"]}  # fmt: skip


# --- ml-100k -----------------------------------------------------------------------------------
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


def _ndcg(ranker: Any, split: Split) -> float:
    res = evaluate(ranker, split.train, split.test, k=10, metrics=["ndcg@10"], ci=False)
    return float(res.metrics["ndcg@10"])


def _fit_eval(
    side: str, model: str, params: dict[str, Any], split: Split
) -> tuple[Any, float, float]:
    """Fit on ``split.train``: ``(ranker, seconds, peak MiB)``."""
    if side == "lensrec":
        cls = MODELS[model]
        fitted, seconds, peak = measured(lambda: cls(**params, random_state=0).fit(split.train))
        return fitted, seconds, peak
    x = split.train.csr()
    fitted, seconds, peak = measured(lambda: fit_peer(model, x, params))
    return peer_ranker(model, fitted), seconds, peak


def tune(
    side: str, model: str, valid: Split, data: Any = None, protocol: str = ""
) -> tuple[dict[str, Any], float]:
    """The grid's best params by validation NDCG@10: lensrec models through ``lensrec.tune``
    (the same carve: each user's last 3 training positives), peers by a loop over the grid."""
    grid = GRIDS[(side, model)]
    if side == "lensrec" and data is not None:
        from lensrec.experiments import RunSpec
        from lensrec.tune import tune as search

        spec = RunSpec(dataset="ml-100k", split=protocol, model=model, seed=0)
        out = search(spec, method="grid", values=grid, only=list(grid), data=data,
                     runs_dir=None, refit=False, prune=False, metric="ndcg")  # fmt: skip
        return dict(out.best_params), out.best_value
    fixed = PEER_DEFAULTS[model] if side == "peer" else {}
    best: tuple[float, dict[str, Any]] = (-1.0, {})
    for combo in itertools.product(*grid.values()):
        params = {**fixed, **dict(zip(grid, combo, strict=True))}
        if side == "peer" and model == "warp":
            params.setdefault("factors", 64)
        ranker, _, _ = _fit_eval(side, model, params, valid)
        value = _ndcg(ranker, valid)
        if value > best[0]:
            best = (value, params)
    return best[1], best[0]


def run_ml100k(protocol: str, args: argparse.Namespace) -> list[Row]:
    data = min_rating(load_dataset("ml-100k"), 4).with_ratings(None)
    by = "row" if protocol.endswith(":row") else "timestamp"
    split = last_k(data, 3, by=by)
    valid = last_k(split.train, 3, by=by)
    rows: list[Row] = []
    for model in args.models:
        MODELS[model].warm_up()
        sides = ["lensrec"] + (["peer"] if peer_available(model) else [])
        for side in sides:
            label = LABELS[model][0 if side == "lensrec" else 1]
            settings = [("defaults", dict(PEER_DEFAULTS[model]) if side == "peer" else {})]
            if model == "warp" and side == "peer":
                settings[0][1]["factors"] = 10  # LightFM's no_components default
            if args.tune:
                chosen, _ = tune(side, model, valid, data, protocol)
                settings.append(("tuned", chosen))
            for kind, params in settings:
                ranker, _, _ = _fit_eval(side, model, params, valid)
                v_ndcg = _ndcg(ranker, valid)
                rss, traced = memory(lambda s=side, m=model, p=params: _fit_eval(s, m, p, split))
                times = []
                for _ in range(args.repeats):
                    ranker, seconds, _ = _fit_eval(side, model, params, split)
                    times.append(seconds)
                res = evaluate(ranker, split.train, split.test, k=10, metrics=METRICS, ci=False)
                rows.append(Row(f"{label} ({kind})", params, res.metrics,
                                statistics.median(times), rss, traced, v_ndcg,
                                {"model": model, "side": side, "kind": kind}))  # fmt: skip
                print(f"  {rows[-1].label}: NDCG@10 {res.metrics['ndcg@10']:.4f} "
                      f"({_fmt_params(params)})", file=sys.stderr, flush=True)  # fmt: skip
    return rows


def print_ml100k(protocol: str, rows: list[Row]) -> None:
    print(f"\n### ml-100k, ratings >= 4, test = each user's last 3 positives: {protocol}\n")
    print("| model | params | NDCG@10 | HR@10 | Recall@10 | MAP@10 (/k) | valid NDCG@10 | "
          "fit s | fit ratio | peak MiB (RSS / traced) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    by_key = {(r.extra["model"], r.extra["side"], r.extra["kind"]): r for r in rows}
    for r in rows:
        m = r.metrics
        other = by_key.get((r.extra["model"], "peer", r.extra["kind"]))
        ratio = f"{r.fit_s / other.fit_s:.2f}" if other and r.extra["side"] == "lensrec" else ""
        print(f"| {r.label} | {_fmt_params(r.params)} | {m['ndcg@10']:.4f} | "
              f"{m['hit_rate@10']:.4f} | {m['recall@10']:.4f} | {m['map_k@10']:.4f} | "
              f"{r.valid_ndcg:.4f} | {r.fit_s:.2f} | {ratio} | {r.rss_mib:.0f} / {r.traced_mib:.0f} |")  # fmt: skip
    ours = [r for r in rows if r.extra["side"] == "lensrec"]
    best = max(ours, key=lambda r: r.valid_ndcg)
    checks = ", ".join(
        f"{k} {best.metrics[k]:.4f} {'>=' if best.metrics[k] >= v else '<'} {v}"
        for k, v in TARGETS[protocol].items()
    )
    print(f"\nbest of these lensrec models by validation NDCG@10: {best.label}: {checks}")
    print("(fit ratio: lensrec / peer fit seconds, same settings row: defaults vs defaults, "
          "tuned vs tuned)")  # fmt: skip


# --- synthetic ---------------------------------------------------------------------------------
SYNTH_SETTINGS: dict[str, dict[str, Any]] = {
    # implicit's ALS objective: confidence 2 (implicit alpha=2.0; its default 1.0 weighs observed
    # and unobserved cells alike, a plain least-squares fit whose 15-iteration NDCG moves by
    # +-20% with the seed and the update order), regularization 0.01 (its default)
    "als": {"factors": 64, "epochs": 15, "reg": 0.01, "alpha": 1.0, "unobserved_weight": 1.0,
            "reg_frequency_exponent": 0.0},
    "bpr": {"factors": 64, "learning_rate": 0.05, "reg": 0.01},
    "warp": {"factors": 64, "learning_rate": 0.05, "max_sampled": 10},
}  # fmt: skip


def synthetic_split(n: int) -> Split:
    data = synthetic(n // 100, max(2000, n // 500), n, implicit=True, random_state=0)
    return last_k(data, 1, by="timestamp")


def run_synthetic(args: argparse.Namespace) -> None:
    split = synthetic_split(args.n)
    train = split.train
    x = train.csr()
    print(f"\n### synthetic implicit: {len(train):,} training interactions, {train.n_users:,} "
          f"users x {train.n_items:,} items; test = each user's last interaction\n")  # fmt: skip
    print(f"{THREADS} threads on both sides, {args.repeats} interleaved repeats (seeds 0.."
          f"{args.repeats - 1}): median fit seconds, mean NDCG@10 (each seed's in brackets); "
          f"{load_note()} at the start\n")  # fmt: skip
    print("| model | epochs | fit s (median) | all runs | s / epoch | NDCG@10 (seeds) | HR@10 | "
          "peak MiB (RSS / traced) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    summary = []
    for model in args.models:
        MODELS[model].warm_up()
        params = dict(SYNTH_SETTINGS[model])
        epochs = params.get("epochs", args.epochs)
        params["epochs"] = epochs
        sides = ["lensrec"] + (["peer"] if peer_available(model) else [])
        pp = peer_params(model, params)
        fits: dict[str, Callable[[int], Any]] = {
            "lensrec": lambda seed, c=MODELS[model], p=params: c(**p, random_state=seed).fit(train),
            "peer": lambda seed, m=model, pp=pp: fit_peer(m, x, pp, seed),
        }
        mem = {side: memory(lambda f=fits[side]: f(0)) for side in sides}
        runs: dict[str, list[float]] = {side: [] for side in sides}
        ndcg: dict[str, list[float]] = {side: [] for side in sides}
        hr: dict[str, list[float]] = {side: [] for side in sides}
        for rep in range(args.repeats):  # interleaved; repeat r uses seed r on both sides
            for side in sides:
                fitted, seconds, _ = measured(lambda f=fits[side], r=rep: f(r))
                ranker = fitted if side == "lensrec" else peer_ranker(model, fitted)
                res = evaluate(ranker, train, split.test, k=10, metrics=METRICS, ci=False)
                runs[side].append(seconds)
                ndcg[side].append(res.metrics["ndcg@10"])
                hr[side].append(res.metrics["hit_rate@10"])
                print(f"  {LABELS[model][sides.index(side)]}: {seconds:.2f}s, NDCG@10 "
                      f"{ndcg[side][-1]:.4f} ({load_note()})", file=sys.stderr, flush=True)  # fmt: skip
        results = {}
        for side in sides:
            seconds = statistics.median(runs[side])
            nd = float(np.mean(ndcg[side]))
            results[side] = (seconds, nd)
            rss, traced = mem[side]
            print(f"| {LABELS[model][sides.index(side)]} | {epochs} | {seconds:.2f} | "
                  f"{', '.join(f'{t:.2f}' for t in runs[side])} | {seconds / epochs:.3f} | "
                  f"{nd:.4f} ({', '.join(f'{v:.4f}' for v in ndcg[side])}) | "
                  f"{np.mean(hr[side]):.4f} | {rss:.0f} / {traced:.0f} |", flush=True)  # fmt: skip
        if args.defaults:
            cls = MODELS[model]
            fitted, seconds, _ = measured(lambda c=cls: c(random_state=0).fit(train))
            res = evaluate(fitted, train, split.test, k=10, metrics=METRICS, ci=False)
            print(f"| {LABELS[model][0]} (its defaults: {fitted.best_epoch_} epochs) | "
                  f"{fitted.best_epoch_} | {seconds:.2f} | | "
                  f"{seconds / fitted.best_epoch_:.3f} | {res.metrics['ndcg@10']:.4f} | "
                  f"{res.metrics['hit_rate@10']:.4f} | |", flush=True)  # fmt: skip
        if "peer" in results:
            (a, na), (b, nb) = results["lensrec"], results["peer"]
            summary.append(f"{LABELS[model][0]} / {LABELS[model][1]}: time {a / b:.2f}x, "
                           f"NDCG@10 {na:.4f} vs {nb:.4f} ({(na / nb - 1) * 100:+.1f}%)")  # fmt: skip
    print()
    for line in summary:
        print(line)
    print(f"\n{load_note()} at the end")


# --- ALS embedding sizes ----------------------------------------------------------------------
def run_factors(args: argparse.Namespace) -> None:
    """ALS seconds per iteration as the embedding grows (lensrec's blocked CG vs implicit).

    Both sides of the matrix have at least 10,240 rows here, so lensrec's rank cap (a tenth of
    the smaller side) does not cut 1024 factors down.
    """
    side = max(10_240, args.n // 100)
    train = synthetic(side, side, args.n, implicit=True, random_state=0)
    x = train.csr()
    ALS = MODELS["als"]
    ALS.warm_up()
    print(f"\n### ALS seconds per iteration by factors: {len(train):,} interactions, "
          f"{train.n_users:,} users x {train.n_items:,} items, {args.epochs} iterations, "
          f"implicit's objective, 3 CG steps\n")  # fmt: skip
    print("| factors | lensrec s / it | implicit s / it | ratio |")
    print("|---|---|---|---|")
    for f in args.factor_list:
        params = {**SYNTH_SETTINGS["als"], "factors": f, "epochs": args.epochs}
        fitted, ours, _ = measured(lambda p=params: ALS(**p, random_state=0).fit(train))
        assert fitted.factors_ == f
        theirs = float("nan")
        if peer_available("als"):
            pp = peer_params("als", params)
            _, theirs, _ = measured(lambda pp=pp: fit_peer("als", x, pp))
        print(f"| {f} | {ours / args.epochs:.3f} | {theirs / args.epochs:.3f} | "
              f"{ours / theirs:.2f} |", flush=True)  # fmt: skip
    print(f"\n{load_note()} at the end")


# --- recommend for all users -------------------------------------------------------------------
def run_recommend(args: argparse.Namespace) -> None:
    split = synthetic_split(args.n)
    train = split.train
    x = train.csr()
    ALS = MODELS["als"]
    ALS.warm_up()
    model = ALS(factors=64, epochs=2, random_state=0).fit(train)
    users = np.arange(train.n_users, dtype=np.int32)
    print(f"\n### top-10 for all {train.n_users:,} users x {train.n_items:,} items, seen excluded "
          f"({x.nnz:,} seen), 64 factors\n")  # fmt: skip
    model.recommend(users[:100], k=10)
    peer = None
    if peer_available("als"):
        from implicit.cpu.als import AlternatingLeastSquares

        peer = AlternatingLeastSquares(factors=64, num_threads=THREADS)
        peer.user_factors = model.user_factors_
        peer.item_factors = model.item_factors_
        peer.recommend(users[:100], x[users[:100]], N=10)
    times: dict[str, list[float]] = {"lensrec": [], "implicit": []}
    peaks: dict[str, list[float]] = {"lensrec": [], "implicit": []}
    ours = theirs = None
    for _ in range(args.repeats):
        (ours, _), seconds, peak = measured(lambda: model.recommend(users, k=10))
        times["lensrec"].append(seconds)
        peaks["lensrec"].append(peak)
        if peer is not None:
            (theirs, _), seconds, peak = measured(lambda: peer.recommend(users, x, N=10))
            times["implicit"].append(seconds)
            peaks["implicit"].append(peak)
        print(f"  lensrec {times['lensrec'][-1]:.2f}s, implicit "
              f"{times['implicit'][-1] if times['implicit'] else float('nan'):.2f}s "
              f"({load_note()})", file=sys.stderr, flush=True)  # fmt: skip
    print("| library | s (median) | all runs | peak MiB |")
    print("|---|---|---|---|")
    for lib in ("lensrec", "implicit"):
        if times[lib]:
            print(
                f"| {lib} | {statistics.median(times[lib]):.2f} | "
                f"{', '.join(f'{t:.2f}' for t in times[lib])} | {max(peaks[lib]):.0f} |"
            )
    if peer is not None and ours is not None and theirs is not None:
        same = float(np.mean(np.sort(ours, axis=1) == np.sort(theirs, axis=1)))
        ratio = statistics.median(times["lensrec"]) / statistics.median(times["implicit"])
        print(f"\nlensrec / implicit: {ratio:.2f}x; identical top-10 entries: {same:.4f}")
    print(f"\n{load_note()} at the end")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("what", choices=["ml100k", "synthetic", "recommend", "factors"])
    parser.add_argument("--tune", action="store_true", help="ml100k: also tune both sides")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (median kept)")
    parser.add_argument("--n", type=int, default=1_000_000, help="synthetic interactions")
    parser.add_argument("--epochs", type=int, default=5, help="synthetic BPR / WARP epochs")
    parser.add_argument("--models", default="als,bpr,warp", help="comma-separated subset")
    parser.add_argument(
        "--defaults", action="store_true", help="synthetic: also lensrec at its own defaults"
    )
    parser.add_argument("--protocol", choices=["last:3", "last:3:row", "both"], default="both")
    parser.add_argument(
        "--factor-list", default="64,128,256,512,1024", help="factors: embedding sizes"
    )
    args = parser.parse_args(argv)
    args.factor_list = [int(v) for v in args.factor_list.split(",")]
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    os.environ.setdefault("LENSREC_THREADS", str(THREADS))
    warnings.filterwarnings("ignore", module="implicit")
    versions = []
    for name in ("implicit", "lightfm"):
        try:
            versions.append(f"{name} {__import__(name).__version__}")
        except ImportError:
            versions.append(f"{name} not installed")
    import numba

    print(f"python {sys.version.split()[0]}, {', '.join(versions)}, LENSREC_THREADS="
          f"{os.environ['LENSREC_THREADS']}, numba {numba.__version__}; {load_note()} "
          "(the machine is shared: times are noisy)")  # fmt: skip
    if args.what == "synthetic":
        run_synthetic(args)
    elif args.what == "recommend":
        run_recommend(args)
    elif args.what == "factors":
        run_factors(args)
    else:
        protocols = ["last:3", "last:3:row"] if args.protocol == "both" else [args.protocol]
        for protocol in protocols:
            print_ml100k(protocol, run_ml100k(protocol, args))
        print(f"\n{load_note()} at the end")


if __name__ == "__main__":
    main()
