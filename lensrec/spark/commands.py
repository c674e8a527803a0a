"""``lensrec spark ...``: registered through :data:`lensrec.cli.COMMAND_MODULES`; pyspark is
imported only when a command runs."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_commands", "cmd_spark_evaluate"]


def cmd_spark_evaluate(args: argparse.Namespace) -> int:
    """Read, filter, split, fit, recommend and score in Spark; print the metrics."""
    from ..cli import _print_json, _say, parse_sets
    from ..evaluate.protocol import DEFAULT_RANKING_METRICS  # noqa: F401 (documented default)
    from ..experiments import parse_ks, parse_metric_names
    from ._session import get_session
    from .run import spark_evaluate

    columns: dict[str, Any] = {}
    for key, name in (("user_col", "user"), ("item_col", "item"), ("rating_col", "rating"),
                      ("time_col", "timestamp")):  # fmt: skip
        if getattr(args, key, None):
            columns[name] = getattr(args, key)
    if args.sep:
        columns["sep"] = args.sep.replace("\\t", "\t")
    if args.no_header:
        columns["has_header"] = False
    conf = dict(c.split("=", 1) for c in (args.conf or []) if "=" in c)
    spark = get_session(args.master, conf=conf)
    result = spark_evaluate(
        spark,
        args.dataset,
        split=args.split,
        model=args.model,
        params=parse_sets(args.set),
        k=list(parse_ks(args.k)),
        metrics=list(parse_metric_names(args.metrics)) if args.metrics else None,
        min_rating=args.min_rating,
        kcore=args.kcore,
        relevance_threshold=args.relevance_threshold,
        seed=args.seed,
        columns=columns,
        topk_out=args.topk_out,
        topk_k=args.topk_k,
    )
    if args.json:
        _say(f"split  {result.split}: {result.counts}")
        _print_json({**result.metrics, "counts": result.counts, "seconds": result.seconds,
                     "topk_out": result.topk_path, "validation": result.validation,
                     "params": result.params})  # fmt: skip
    else:
        print(result.text())
    return 0


def add_commands(sub: Any, add: Any) -> None:
    """``lensrec spark evaluate``."""
    from ..cli import SPLIT_HELP

    spark = add(sub, "spark", "the same jobs on Spark (needs lensrec[spark])")
    ssub = spark.add_subparsers(dest="spark_command", required=True, metavar="SPARK_COMMAND")
    p = add(ssub, "evaluate", "lensrec evaluate in Spark: read, split, ALS, top-K, metrics")
    p.add_argument(
        "--dataset", required=True, help="Parquet file or directory, or a CSV file (any Spark path)"
    )
    p.add_argument("--user-col", help="user column (default: userId, user_id or user)")
    p.add_argument("--item-col", help="item column (default: movieId, item_id or item)")
    p.add_argument("--rating-col", help="rating column")
    p.add_argument("--time-col", help="timestamp column")
    p.add_argument("--sep", help=r"CSV field separator (default from the extension; '\t' for tab)")
    p.add_argument("--no-header", action="store_true", help="the CSV has no header line")
    p.add_argument("--min-rating", type=float, help="keep only ratings >= this (positives)")
    p.add_argument("--kcore", type=int, help="iterative k-core on users and items")
    p.add_argument("--split", default="last:3",
                   help=SPLIT_HELP.split("; cross-validation")[0] + " (Spark: not u1..u5 / warm-temporal)")  # fmt: skip
    p.add_argument("--model", default="als", help="als (implicit) or als-explicit (ratings)")
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="lensrec ALS parameter: factors, epochs, reg, alpha, confidence, "
                   "unobserved_weight, ...; engine=spark-ml for Spark ML's ALS instead of "
                   "lensrec's own on Spark (repeatable)")  # fmt: skip
    p.add_argument("--seed", type=int, default=42, help="random seed for the split and the model")
    p.add_argument("--k", default="10", help="list length(s): 10 or 5,10,20")
    p.add_argument("--metrics", help="comma-separated metric names (default: all that apply)")
    p.add_argument("--relevance-threshold", type=float,
                   help="test ratings >= this count as relevant (default: every test item)")  # fmt: skip
    p.add_argument(
        "--topk-out",
        metavar="PATH",
        help="also write every user's top-K: a Parquet path, or redis://HOST:PORT/DB "
        "(written by the executors, served by `lensrec serve --redis`)",
    )
    p.add_argument("--topk-k", type=int, help="list length written by --topk-out (default: max k)")
    p.add_argument("--master", help="Spark master when not under spark-submit (default local[*])")
    p.add_argument(
        "--conf", action="append", metavar="KEY=VALUE", help="Spark setting (repeatable)"
    )
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=cmd_spark_evaluate)
