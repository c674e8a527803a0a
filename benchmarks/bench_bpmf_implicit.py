"""BPMF's implicit-feedback options on validation carved from GroupLens training parts of
ml-100k (never a test part): the choice behind ``BPMF(implicit="both")``.

    LENSREC_THREADS=1 python benchmarks/bench_bpmf_implicit.py
    LENSREC_THREADS=1 python benchmarks/bench_bpmf_implicit.py --options none,both --samples 100

Carves: a random 10% of each user's rows of ua.base and of u1.base, and each user's last 5
rows in file order of ua.base and of u2.base (which mimics ua.test: a fixed count per user,
so light users weigh as much as heavy ones). Prints the validation RMSE of the averaged
chain (``history_["valid_rmse"]``) and the fit seconds.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--options", default="none,user,both")
    ap.add_argument("--samples", type=int, default=400, help="BPMF n_samples")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from lensrec.data import load_dataset
    from lensrec.models import BPMF
    from lensrec.split import carve_validation, make_split

    data = load_dataset("ml-100k")
    carves = [
        ("ua.base, random 10% per user", "ua", ("user-random", 0.1, None)),
        ("u1.base, random 10% per user", "u1", ("user-random", 0.1, None)),
        ("ua.base, last 5 rows per user", "ua", ("last", 5, "row")),
        ("u2.base, last 5 rows per user", "u2", ("last", 5, "row")),
    ]
    for label, split, (how, amount, by) in carves:
        train = make_split(data, split).train
        carved = carve_validation(train, how, amount, random_state=args.seed, by=by)
        for option in args.options.split(","):
            t = time.perf_counter()
            model = BPMF(implicit=option, n_samples=args.samples, random_state=args.seed)
            model.fit(carved.train, carved.valid)
            rmse = model.history_["valid_rmse"][-1]
            print(f"{label:<32} implicit={option:<5} validation RMSE {rmse:.4f}  "
                  f"({time.perf_counter() - t:.0f} s)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
