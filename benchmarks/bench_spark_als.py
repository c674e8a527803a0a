"""ALS fit time on Spark, both engines, beside lensrec's ALS on one machine, on the same
synthetic implicit data (same rows, same parameters, 15 epochs, f = 64).

    PYTHONPATH=. python benchmarks/bench_spark_als.py --n 1000000

Prints each fit's seconds and, for lensrec's engine on Spark, the largest difference of its
factors from the one-machine fit's (the same algorithm from the same start: float rounding
only). Spark runs on ``local[2]`` (``--master``); its time includes moving the data into its
own blocks, which lensrec on one machine does not need. Set LENSREC_THREADS=1 to give the
one-machine fit the single core a Spark task gets.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="interactions")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--epochs", type=int, default=15)
    args = ap.parse_args()

    from lensrec.data.synthetic import synthetic
    from lensrec.models import ALS
    from lensrec.spark import SparkALS, get_session
    from lensrec.spark.data import from_interactions

    n = args.n
    users, items = max(100, n // 100), max(50, n // 400)
    data = synthetic(users, items, n, implicit=True, random_state=0)
    print(
        f"synthetic implicit: {data.n_users:,} users x {data.n_items:,} items, {len(data):,} rows"
    )
    params = {"factors": 64, "epochs": args.epochs, "random_state": 0}

    t = time.perf_counter()
    ref = ALS(**params).fit(data)
    one = time.perf_counter() - t
    print(f"lensrec ALS, one machine        {one:7.1f} s")

    spark = get_session(
        args.master, conf={"spark.sql.shuffle.partitions": "4", "spark.driver.memory": "4g"}
    )
    try:
        frame = from_interactions(spark, data).select("user", "item").persist()
        frame.count()
        # one small fit first, so that numba's compile in the Python workers is not timed
        SparkALS(factors=4, epochs=1).fit(frame.limit(1000))
        t = time.perf_counter()
        model = SparkALS.from_params({**params, "engine": "lensrec"}).fit(frame)
        lens = time.perf_counter() - t
        diff = max(
            float(np.abs(model.user_factors_ - ref.user_factors_).max()),
            float(np.abs(model.item_factors_ - ref.item_factors_).max()),
        )
        print(
            f"Spark, engine=lensrec          {lens:7.1f} s  (factors within {diff:.1e} of the one-machine fit)"
        )
        t = time.perf_counter()
        ml = SparkALS.from_params({**params, "engine": "spark-ml"}).fit(frame)
        ml.userFactors.count()
        sml = time.perf_counter() - t
        print(f"Spark, engine=spark-ml (Spark ML's ALS)  {sml:7.1f} s")
        print(f"ratio spark-ml / lensrec engine: {sml / lens:.2f}")
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
