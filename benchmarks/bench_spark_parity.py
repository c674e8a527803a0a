"""Spark ALS (through lensrec.spark's parameter mapping) against lensrec's ALS on the same
ml-100k split: the same lensrec parameters handed to both, both scored by the same code.

    PYTHONPATH=. python benchmarks/bench_spark_parity.py                    # the default table
    PYTHONPATH=. python benchmarks/bench_spark_parity.py --splits last:3 --seeds 0 \\
        --configs 'reg=0.01' 'reg=0.01,spark_reg_param=0.01'

Each configuration is a comma list of lensrec ALS parameters (``--set`` syntax). Both models
are fitted on the training part of the split (ratings >= 4 kept first) with each seed; their
factors are collected and every test user's top-10 (training items excluded) is scored by
:func:`lensrec.evaluate.metrics.ranking_metrics`, so the only difference is the fit. The
relative difference of the means over seeds is printed per metric. Spark runs on
``local[2]``; set LENSREC_THREADS=1 on a shared machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp

CONFIGS = [
    "",  # lensrec's defaults
    "reg=0.005",
    "reg=0.02",
    "alpha=5",
    "unobserved_weight=0.3,reg=0.003",
    "reg_frequency_exponent=0.5,reg=0.1",
    "spark_reg_param=0.01",  # Spark handed lensrec's default reg as its regParam (no mapping)
]
SPECS = [("ndcg", 10), ("hit_rate", 10), ("recall", 10)]


def parse_config(text: str) -> dict:
    from lensrec.cli import parse_value

    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        out[name.strip()] = parse_value(value)
    return out


def scorer(train, test):
    """A function of (user factors, item factors, known items) -> metric means, in the
    training part's index space."""
    from lensrec.evaluate import metrics as lm

    n_users, n_items = train.n_users, train.n_items
    seen = sp.csr_matrix(
        (np.ones(len(train)), (train.users, train.items)), shape=(n_users, n_items)
    )
    tu = train.user_ids.lookup(test.user_ids.ids[test.users])
    ti = train.item_ids.lookup(test.item_ids.ids[test.items])
    ok = (tu >= 0) & (ti >= 0)
    rel = sp.csr_matrix((np.ones(ok.sum()), (tu[ok], ti[ok])), shape=(n_users, n_items))
    rows, cols = seen.nonzero()

    def score(U: np.ndarray, V: np.ndarray, known: np.ndarray) -> dict[str, float]:
        S = U.astype(np.float64) @ V.astype(np.float64).T
        S[rows, cols] = -np.inf
        S[:, ~known] = -np.inf
        top = np.argsort(-S, axis=1, kind="stable")[:, :10]
        got = lm.ranking_metrics(top, rel, SPECS)
        return {k: float(np.nanmean(v)) for k, v in got.items()}

    return score


def lensrec_factors(train, params: dict, seed: int):
    from lensrec.models import ALS

    lens = {k: v for k, v in params.items() if k not in ("spark_reg_param", "engine")}
    model = ALS(**lens, random_state=seed).fit(train)
    uu = model.user_ids_.lookup(train.user_ids.ids)
    ii = model.item_ids_.lookup(train.item_ids.ids)
    U = np.where((uu >= 0)[:, None], model.user_factors_[np.maximum(uu, 0)], 0)
    V = np.where((ii >= 0)[:, None], model.item_factors_[np.maximum(ii, 0)], 0)
    return U, V, ii >= 0


def spark_factors(frame, universe, train, params: dict, seed: int):
    from lensrec.spark import SparkALS

    als = SparkALS.from_params({**params, "random_state": seed})
    model = als.fit(frame, universe=universe)
    f = int(model.rank)
    U = np.zeros((train.n_users, f), np.float32)
    V = np.zeros((train.n_items, f), np.float32)
    known = np.zeros(train.n_items, bool)
    for r in model.userFactors.collect():
        U[r["id"]] = r["features"]
    for r in model.itemFactors.collect():
        V[r["id"]] = r["features"]
        known[r["id"]] = True
    return U, V, known, als.spark_params()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--splits", default="last:3,random:0.2")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--configs", nargs="*", default=CONFIGS)
    ap.add_argument("--min-rating", type=float, default=4)
    ap.add_argument(
        "--engine",
        choices=["lensrec", "spark-ml"],
        default="spark-ml",
        help="Spark's ALS engine: Spark ML's ALS (default), or lensrec's kernels on Spark",
    )
    args = ap.parse_args()

    from lensrec.data import load_dataset
    from lensrec.spark import get_session
    from lensrec.spark.data import from_interactions
    from lensrec.split import make_split, min_rating

    data = min_rating(load_dataset("ml-100k"), args.min_rating)
    seeds = [int(s) for s in args.seeds.split(",")]
    spark = get_session(
        "local[2]",
        conf={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"},
    )
    print(f"ml-100k, ratings >= {args.min_rating:g}: {len(data):,} rows; seeds {seeds}")
    print(f"{'split':<11} {'params':<40} {'regParam':>8}  "
          + "  ".join(f"{n}@{k} lensrec / spark (diff)" for n, k in SPECS))  # fmt: skip
    try:
        for spec in args.splits.split(","):
            parts = make_split(data, spec, random_state=0)
            train, test = parts.train, parts.test
            score = scorer(train, test)
            frame = from_interactions(spark, train).persist()
            frame.count()
            universe = frame  # lensrec's split indexes the training part's own ids
            for text in args.configs:
                params = {**parse_config(text), "engine": args.engine}
                t0 = time.perf_counter()
                lens = [score(*lensrec_factors(train, params, s)) for s in seeds]
                t1 = time.perf_counter()
                spark_runs = [spark_factors(frame, universe, train, params, s) for s in seeds]
                t2 = time.perf_counter()
                spk = [score(U, V, known) for U, V, known, _ in spark_runs]
                reg_param = spark_runs[0][3].get("regParam", float("nan"))
                cells = []
                for name, k in SPECS:
                    label = f"{name}@{k}"
                    a = float(np.mean([m[label] for m in lens]))
                    b = float(np.mean([m[label] for m in spk]))
                    cells.append(f"{a:.4f} / {b:.4f} ({(b - a) / a:+.1%})")
                print(f"{spec:<11} {text or 'defaults':<40} {reg_param:>8.4f}  "
                      + "  ".join(f"{c:<28}" for c in cells)
                      + f"  [{t1 - t0:.0f} s / {t2 - t1:.0f} s]", flush=True)  # fmt: skip
            frame.unpersist()
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
