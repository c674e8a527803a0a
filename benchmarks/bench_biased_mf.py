"""lensrec BiasedMF vs Surprise SVD on the ml-100k ``ua`` split, in one process run.

Both libraries train on ua.base and are scored on exactly the same ua.test rows. BiasedMF
runs with its defaults: with no ``valid`` given it early-stops on 5% of ua.base that it
holds out itself (choosing ``reg_factors`` on that hold-out too), then retrains on all of
ua.base for the chosen number of epochs and averages the two models. Surprise SVD runs with
its defaults and, with ``--tuned``, with the parameters a grid search picked on validation
sets carved from ua.base (never ua.test).

Fit time excludes numba's JIT compilation (``cache=True`` plus a warm-up fit on tiny
data); peak memory is measured in a second, separate fit under ``tracemalloc`` so that the
timed fit is not slowed by it.

    python benchmarks/bench_biased_mf.py [--tuned] [--seed 0] [--repeats 3]
    python benchmarks/bench_biased_mf.py --synthetic 1000000 --repeats 1   # at ml-1m scale

``--synthetic N`` replaces ml-100k ua by N generated ratings on an ml-1m-shaped catalogue
(6,040 users x 3,706 items, ``lensrec.data.synthetic``: skewed activity and popularity, a
rank-8 signal plus noise, ratings 1..5), split at random 90/10.
"""

from __future__ import annotations

import argparse
import glob
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np

from lensrec import Interactions
from lensrec.models import BiasedMF

#: chosen by grid search on validation sets carved from ua.base (see benchmarks/README.md)
SURPRISE_TUNED = {"n_factors": 100, "lr_all": 0.01, "reg_all": 0.1, "n_epochs": 40}


# --- data ------------------------------------------------------------------------------------
def _fallback_ua() -> tuple[Interactions, Interactions, str]:
    """ml-100k from the recbole 1.2.1 wheel (rows in u.data order); ua made by hand."""
    import polars as pl

    cache = Path(os.environ.get("LENSREC_BENCH_DIR", Path(tempfile.gettempdir()) / "lensrec-bench"))
    wheels = glob.glob(str(cache / "recbole-1.2.1-*.whl"))
    if not wheels:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "recbole==1.2.1",
                "-d",
                str(cache),
                "-q",
            ],
            check=True,
        )
        wheels = glob.glob(str(cache / "recbole-1.2.1-*.whl"))
    with zipfile.ZipFile(wheels[0]) as zf:
        raw = zf.read("recbole/dataset_example/ml-100k/ml-100k.inter")
    df = pl.read_csv(raw, separator="\t")
    df.columns = ["user_id", "item_id", "rating", "timestamp"]
    data = Interactions.from_frame(df, duplicates="keep", name="ml-100k")
    # ua.test: each user's first 10 ratings in file order; ua.base: the rest
    order = np.argsort(data.users, kind="stable")
    starts = np.searchsorted(data.users[order], np.arange(data.n_users))
    rank = np.empty(len(data), dtype=np.int64)
    rank[order] = np.arange(len(data)) - np.repeat(starts, np.bincount(data.users))
    test = rank < 10
    train = data.subset(~test)
    # keep only test rows whose user and item appear in train (as lensrec.split does)
    warm = np.isin(data.users, train.users) & np.isin(data.items, train.items)
    return train, data.subset(test & warm), "fallback loader (recbole wheel) + hand-made ua"


def load_ua() -> tuple[Interactions, Interactions, str]:
    try:
        from lensrec.data.movielens import load_movielens
        from lensrec.split import grouplens

        split = grouplens(load_movielens("ml-100k"), "ua")
        return split.train, split.test, "lensrec.data.movielens + lensrec.split.grouplens"
    except Exception as exc:  # loader or split not there (yet): use the fallback
        print(f"(lensrec loader/split unavailable: {type(exc).__name__}: {exc}; using fallback)")
        return _fallback_ua()


# --- runners ---------------------------------------------------------------------------------
def _metrics(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    err = pred.astype(np.float64) - truth.astype(np.float64)
    return float(np.sqrt(np.mean(err**2))), float(np.mean(np.abs(err)))


def _peak_mb(fn) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def run_lensrec(train, test, seed: int, repeats: int) -> dict:
    BiasedMF.warm_up()  # compile (or load from numba's cache) every kernel on tiny data
    times = []
    for _ in range(repeats):
        model = BiasedMF(random_state=seed)
        t0 = time.perf_counter()
        model.fit(train)
        times.append(time.perf_counter() - t0)
    rmse, mae = _metrics(model.predict(test.users, test.items), test.ratings)
    peak = _peak_mb(lambda: BiasedMF(random_state=seed).fit(train))
    return {"name": "lensrec BiasedMF (defaults)", "rmse": rmse, "mae": mae, "fit_s": min(times),
            "peak_mb": peak,
            "note": f"best epoch {model.best_epoch_}, reg_factors {model.reg_factors_:g}"}  # fmt: skip


def run_surprise(train, test, seed: int, repeats: int, params: dict, label: str) -> dict:
    from surprise import SVD, Dataset, Reader

    lo, hi = float(train.ratings.min()), float(train.ratings.max())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.tsv"
        np.savetxt(
            path,
            np.column_stack([train.users, train.items, train.ratings]),
            fmt=["%d", "%d", "%g"],
            delimiter="\t",
        )
        reader = Reader(line_format="user item rating", sep="\t", rating_scale=(lo, hi))
        trainset = Dataset.load_from_file(str(path), reader).build_full_trainset()
    times = []
    for _ in range(repeats):
        algo = SVD(random_state=seed, **params)
        t0 = time.perf_counter()
        algo.fit(trainset)
        times.append(time.perf_counter() - t0)
    pred = np.array(
        [
            algo.predict(str(u), str(i)).est
            for u, i in zip(test.users.tolist(), test.items.tolist(), strict=True)
        ],
        dtype=np.float64,
    )
    rmse, mae = _metrics(pred, test.ratings)
    peak = _peak_mb(lambda: SVD(random_state=seed, **params).fit(trainset))
    return {"name": label, "rmse": rmse, "mae": mae, "fit_s": min(times), "peak_mb": peak,
            "note": ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--tuned", action="store_true", help="also run Surprise SVD with grid-tuned parameters"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--repeats", type=int, default=3, help="timed fits per model (the fastest counts)"
    )
    ap.add_argument("--synthetic", type=int, default=0, metavar="N",
                    help="N synthetic ratings on an ml-1m-shaped catalogue instead of ml-100k ua")  # fmt: skip
    args = ap.parse_args(argv)

    if args.synthetic:
        from lensrec.data.synthetic import synthetic
        from lensrec.split import make_split

        sp = make_split(
            synthetic(6040, 3706, args.synthetic, random_state=args.seed),
            "random:0.1",
            random_state=args.seed,
        )
        train, test, source, names = (
            sp.train,
            sp.test,
            f"lensrec.data.synthetic, {args.synthetic:,} ratings",
            ("train", "test"),
        )
    else:
        train, test, source = load_ua()
        names = ("ua.base", "ua.test")
    print(f"data: {source}")
    print(f"{names[0]} {len(train):,} ratings ({train.n_users} users x {train.n_items} items), "
          f"{names[1]} {len(test):,} ratings; threads: LENSREC_THREADS={os.environ.get('LENSREC_THREADS', 'all')}")  # fmt: skip
    rows = [run_lensrec(train, test, args.seed, args.repeats)]
    try:
        rows.append(
            run_surprise(train, test, args.seed, args.repeats, {}, "Surprise SVD (defaults)")
        )
        if args.tuned:
            rows.append(
                run_surprise(
                    train, test, args.seed, args.repeats, SURPRISE_TUNED, "Surprise SVD (tuned)"
                )
            )
    except ImportError:
        print("scikit-surprise is not installed (pip install 'lensrec[bench]'): lensrec only")

    print()
    print(f"{'model':32s} {'RMSE':>7s} {'MAE':>7s} {'fit s':>7s} {'peak MB':>8s}  note")
    for r in rows:
        print(
            f"{r['name']:32s} {r['rmse']:7.4f} {r['mae']:7.4f} {r['fit_s']:7.3f} {r['peak_mb']:8.1f}  {r['note']}"
        )
    ours = rows[0]
    for other in rows[1:]:
        print(f"lensrec / {other['name']}: fit time x{ours['fit_s'] / other['fit_s']:.2f}, "
              f"RMSE x{ours['rmse'] / other['rmse']:.4f} ({ours['rmse'] - other['rmse']:+.4f})")  # fmt: skip
    print(f"process max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
