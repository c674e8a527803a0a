"""Time and peak memory of every step of a one-machine job as the data grows.

    python benchmarks/bench_scaling.py                       # 1M, 3M, 10M
    python benchmarks/bench_scaling.py --sizes 33M --models als,bpr
    python benchmarks/bench_scaling.py --sizes 1M --models als,bpr,biased-mf,svd --data-dir /tmp/d
    benchmarks/.venv/bin/python benchmarks/bench_scaling.py --sizes 1M,10M,33M --models als \
        --fit-only --peer                                    # and implicit's ALS beside it
    python benchmarks/bench_scaling.py --sizes 1M,3M,10M,33M --models als --fit-only

Data: ``lensrec data synth`` (``write_synthetic``) at the ml-32m shape scaled down: users in
proportion to the interactions (32M <-> 200,948 users), items with their square root
(32M <-> 87,585 items), so the 33M row is ml-32m's size. Steps, each timed and with the
process's peak resident memory measured over that step alone (``VmHWM``, reset through
``/proc/self/clear_refs`` before each step; Linux only):

* ``synth``: the generator writing Parquet in blocks of users (run in a child process, so
  its memory is its own);
* ``load``: ``load_dataset`` of the Parquet file (ids indexed, duplicates checked);
* ``split``: ``last:1`` by timestamp (every user's latest interaction is the test);
* ``fit <model>``: ALS (defaults, 15 iterations), BPR (``--bpr-epochs``, default 20),
  BiasedMF (defaults: early stopping on a 5% hold-out, reg search, refit) and SVD
  (defaults, 40 epochs), each on the training part with the ratings as they are;
* ``evaluate``: ALS full-ranking NDCG@10 / recall@10 for every test user (all users),
  seen items excluded (blocked top-k: no users x items array);
* ``fit implicit als`` (``--peer``): implicit's ALS on the same training rows (binary CSR, 64
  factors, 15 iterations, the same thread count), timed in the same process;
* ``rmse <model>``: the rating models' RMSE on the test rows (for the "equal RMSE" check);
* ``export``: every user's top-100 from ALS to Parquet (``lensrec.serving.export_parquet``).

Numbers are wall seconds on whatever else the machine is doing: note the load average.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ML32M = (32_000_204, 200_948, 87_585)


def parse_size(text: str) -> int:
    text = text.strip().upper()
    mult = {"K": 1_000, "M": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("KM")) * mult)


def shape(n: int) -> tuple[int, int]:
    users = max(1000, round(ML32M[1] * n / ML32M[0]))
    items = max(1000, round(ML32M[2] * (n / ML32M[0]) ** 0.5))
    return users, items


def _status(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0


def reset_peak() -> None:
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


class Steps:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def run(self, name: str, fn, *args, **kw):
        reset_peak()
        before = _status("VmRSS")
        t = time.perf_counter()
        out = fn(*args, **kw)
        sec = time.perf_counter() - t
        peak = _status("VmHWM")
        self.rows.append({"step": name, "seconds": sec, "peak_mib": peak / 2**20,
                          "rss_before_mib": before / 2**20})  # fmt: skip
        print(f"    {name:18s} {sec:9.1f} s  peak {peak / 2**20:8.0f} MiB "
              f"(RSS before {before / 2**20:6.0f})", flush=True)  # fmt: skip
        return out


def synth_child(path: Path, n: int, seed: int) -> dict:
    """Generate in a child process; its own time and max RSS."""
    users, items = shape(n)
    code = (
        "import resource, sys, time; from lensrec.data.synthetic import write_synthetic; "
        f"t = time.perf_counter(); write_synthetic({str(path)!r}, {users}, {items}, {n}, "
        f"random_state={seed}); "
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    sec, kib = out.stdout.split()[-2:]
    return {"step": "synth", "seconds": float(sec), "peak_mib": int(kib) / 1024,
            "rss_before_mib": 0.0}  # fmt: skip


def one_size(n: int, args: argparse.Namespace) -> list[dict]:
    import numpy as np

    from lensrec.data import load_dataset
    from lensrec.evaluate import evaluate
    from lensrec.evaluate.metrics import rmse
    from lensrec.models import MODELS
    from lensrec.split import make_split

    users, items = shape(n)
    print(f"\n== {n:,} interactions: {users:,} users x {items:,} items ==", flush=True)
    path = Path(args.data_dir) / f"synth-{n}.parquet"
    steps = Steps()
    if not path.exists():
        row = synth_child(path, n, args.seed)
        steps.rows.append(row)
        print(f"    synth              {row['seconds']:9.1f} s  peak {row['peak_mib']:8.0f} MiB "
              "(child process)", flush=True)  # fmt: skip
    data = steps.run("load", load_dataset, path)
    split = steps.run("split", make_split, data, "last:1")
    del data
    train, test = split.train, split.test
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    fitted = {}
    for name in models:
        params = {"random_state": args.seed}
        if name == "bpr":
            params["epochs"] = args.bpr_epochs
        cls = MODELS[name]
        cls.warm_up()
        model = cls(**params)
        fitted[name] = steps.run(f"fit {name}", model.fit, train)
        if name in ("biased-mf", "svd"):
            pred = fitted[name].predict(test.users, test.items)
            value = rmse(test.ratings, pred)
            steps.rows[-1]["rmse"] = value
            extra = ""
            if name == "biased-mf":
                model = fitted[name]
                steps.rows[-1]["reg_search"] = model.reg_search_
                extra = f" (reg_factors_ {model.reg_factors_}, search {model.reg_search_})"
            print(f"      RMSE {value:.4f}{extra}; load {os.getloadavg()[0]:.1f}", flush=True)
    if args.peer and "als" in models:
        steps.run("fit implicit als", implicit_als, train, args.seed)
        per = {r["step"]: r["seconds"] for r in steps.rows}
        print(f"      implicit / lensrec ALS fit time "
              f"{per['fit implicit als'] / per['fit als']:.2f}x", flush=True)  # fmt: skip
    fits = {r["step"]: r for r in steps.rows if r["step"] in ("fit biased-mf", "fit svd")}
    if len(fits) == 2:  # the target: BiasedMF's fit within 2x of SVD's at equal RMSE
        mf, svd = fits["fit biased-mf"], fits["fit svd"]
        print(f"      BiasedMF / SVD fit time {mf['seconds'] / svd['seconds']:.2f}x, "
              f"RMSE {mf['rmse']:.4f} vs {svd['rmse']:.4f}", flush=True)  # fmt: skip
    if "als" in fitted and not args.fit_only:
        res = steps.run("evaluate", evaluate, fitted["als"], train, test, k=10,
                        metrics=["ndcg@10", "recall@10"], ci=False)  # fmt: skip
        steps.rows[-1]["metrics"] = res.metrics
        steps.rows[-1]["users"] = int(res.n_users)
        print(f"      {res.metrics} over {res.n_users:,} users", flush=True)
        from lensrec.serving.export import export_parquet

        out = Path(args.data_dir) / f"topk-{n}.parquet"
        steps.run("export", export_parquet, fitted["als"], out, k=100)
        out.unlink(missing_ok=True)
    for row in steps.rows:
        row["n"] = n
    del fitted, train, test, split
    gc.collect()
    _ = np  # numpy imported for the models' sake
    return steps.rows


def implicit_als(train, seed: int):
    """implicit's ALS (the peer, from the benchmark venv) on the same training rows: the
    binary CSR its users build, 64 factors, 15 iterations, as many threads as lensrec."""
    import numpy as np
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares

    from lensrec._config import n_threads

    m = sp.csr_matrix((np.ones(len(train), np.float32), (train.users, train.items)),
                      shape=(train.n_users, train.n_items))  # fmt: skip
    model = AlternatingLeastSquares(factors=64, iterations=15, random_state=seed,
                                    num_threads=n_threads())  # fmt: skip
    model.fit(m, show_progress=False)
    return model


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="1M,3M,10M", help="comma-separated: 1M,3M,10M,33M")
    ap.add_argument("--models", default="als,bpr,biased-mf,svd")
    ap.add_argument("--bpr-epochs", type=int, default=20)
    ap.add_argument("--fit-only", action="store_true",
                    help="skip ALS's evaluation and export (the fit-time growth alone)")  # fmt: skip
    ap.add_argument("--peer", action="store_true",
                    help="also fit implicit's ALS on the same rows (benchmark venv)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "lensrec-scaling"))
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {os.getloadavg()}; LENSREC_THREADS="
          f"{os.environ.get('LENSREC_THREADS', 'all cores')}", flush=True)  # fmt: skip
    rows: list[dict] = []
    for text in args.sizes.split(","):
        rows += one_size(parse_size(text), args)
    print(f"\nload average at end: {os.getloadavg()}")
    print(f"\n| step | {' | '.join(f'{r:,}' for r in sorted({r['n'] for r in rows}))} |")
    sizes = sorted({r["n"] for r in rows})
    print("|---|" + "---|" * len(sizes))
    names = list(dict.fromkeys(r["step"] for r in rows))
    for name in names:
        cells = []
        for n in sizes:
            hit = [r for r in rows if r["n"] == n and r["step"] == name]
            cells.append(
                f"{hit[0]['seconds']:.1f} s / {hit[0]['peak_mib']:,.0f} MiB "
                f"(+{hit[0]['peak_mib'] - hit[0]['rss_before_mib']:,.0f})"
                if hit
                else "-"
            )
        print(f"| {name} | {' | '.join(cells)} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
