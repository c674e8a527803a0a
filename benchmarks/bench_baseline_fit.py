"""Baseline fit time: lensrec ``baseline`` vs Surprise's ``BaselineOnly`` on ml-100k ``ua``.

Both fit the same biases by 10 rounds of regularised ALS on the same training rows (Surprise's
trainset is built once, before timing, as in ``bench_explicit.py``; lensrec's fit includes
building its CSR matrices from the ``Interactions``). lensrec runs with its defaults
(``reg_user=5, reg_item=3``) and with Surprise's (15, 10); the fit time does not depend on
them. The fits alternate (lensrec, Surprise, lensrec at Surprise's settings, ...) for
``--repeats`` rounds after a warm-up (numba compilation excluded); printed: every time, the
medians, the ratio lensrec / Surprise of the medians, and each model's RMSE on ``ua.test``.

    python benchmarks/bench_baseline_fit.py [--repeats 15]
    LENSREC_THREADS=1 python benchmarks/bench_baseline_fit.py

Needs scikit-surprise (``bash benchmarks/setup_env.sh``); without it only lensrec is timed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_explicit import surprise_trainset  # noqa: E402

from lensrec.data import load_dataset  # noqa: E402
from lensrec.models.baseline import Baseline  # noqa: E402
from lensrec.split import make_split  # noqa: E402


def _timed(fit: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    model = fit()
    return time.perf_counter() - t0, model


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args(argv)
    split = make_split(load_dataset("ml-100k"), "ua")
    train, test = split.train, split.test
    try:
        import surprise
    except ImportError:
        surprise = None
        print("scikit-surprise is not installed (bash benchmarks/setup_env.sh): lensrec only")

    fits: dict[str, Callable[[], Any]] = {
        "lensrec baseline (defaults)": lambda: Baseline().fit(train),
    }
    if surprise is not None:
        trainset = surprise_trainset(train)
        fits["Surprise BaselineOnly"] = lambda: surprise.BaselineOnly(verbose=False).fit(trainset)
        fits["lensrec baseline (reg 15 / 10)"] = lambda: Baseline(reg_user=15.0, reg_item=10.0).fit(
            train
        )
    Baseline.warm_up()
    for fit in fits.values():  # warm-up round, not timed
        fit()
    times: dict[str, list[float]] = {name: [] for name in fits}
    models: dict[str, Any] = {}
    for _ in range(args.repeats):
        for name, fit in fits.items():
            seconds, models[name] = _timed(fit)
            times[name].append(seconds)

    print(f"ml-100k ua: {len(train):,} training ratings; {args.repeats} interleaved rounds; "
          f"LENSREC_THREADS={os.environ.get('LENSREC_THREADS', 'all')} ({os.cpu_count()} "
          f"cores), load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"{'model':<32} {'median ms':>9} {'RMSE':>7}  all ms")
    for name, model in models.items():
        if name.startswith("Surprise"):
            pred = np.array([model.predict(str(u), str(i)).est  # raw ids: indices as text
                             for u, i in zip(test.users.tolist(), test.items.tolist(),
                                             strict=True)])  # fmt: skip
        else:
            pred = model.predict(test.users, test.items)
        rmse = float(np.sqrt(np.mean((pred - test.ratings) ** 2)))
        med = statistics.median(times[name]) * 1e3
        runs = " ".join(f"{t * 1e3:.1f}" for t in times[name])
        print(f"{name:<32} {med:>9.1f} {rmse:>7.4f}  {runs}")
    if surprise is not None:
        ratio = statistics.median(times["lensrec baseline (defaults)"]) / statistics.median(
            times["Surprise BaselineOnly"]
        )
        print(f"fit time lensrec / Surprise (medians): {ratio:.3f}")


if __name__ == "__main__":
    main()
