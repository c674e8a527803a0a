"""``lensrec tune``: the command-line shell over :func:`lensrec.tune.tune`.

Registered through ``cli.COMMAND_MODULES``; imports nothing heavy at module level.
"""

from __future__ import annotations

import argparse
import warnings
from typing import Any

from .errors import ConfigError, SplitDropWarning

__all__ = ["add_commands", "cmd_tune", "parse_grid"]


def parse_grid(pairs: list[str] | None) -> dict[str, list[Any]]:
    """``["factors=16,32,64", "weighting=bm25,tfidf"]`` -> name -> list of values."""
    from .cli import parse_value

    out: dict[str, list[Any]] = {}
    for pair in pairs or ():
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--grid expects NAME=V1,V2,..., got {pair!r}")
        values = [parse_value(v) for v in raw.split(",") if v.strip()]
        if not values:
            raise ConfigError(f"--grid {name.strip()}: no values given")
        out[name.strip().replace("-", "_")] = values
    return out


def cmd_tune(args: argparse.Namespace) -> int:
    from .cli import _spec
    from .tune import tune

    spec = _spec(args)
    only = [p.strip() for p in args.params.split(",") if p.strip()] if args.params else None

    def on_start(text: str) -> None:
        print(text, flush=True)

    def on_trial(info: Any, total: int | None) -> None:
        print(info.line(total), flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SplitDropWarning)
        outcome = tune(
            spec,
            method=args.method,
            trials=args.trials,
            timeout=args.timeout,
            storage=args.storage,
            study_name=args.study,
            only=only,
            values=parse_grid(args.grid),
            grid_points=args.grid_points,
            metric=args.metric,
            prune=not args.no_prune,
            runs_dir=args.runs_dir,
            refit=not args.no_refit,
            on_trial=on_trial,
            on_start=on_start,
            carves=args.carves,
        )
    counts = outcome.counts
    print(
        f"study {outcome.study_name}: {sum(counts.values())} trials "
        f"({counts['complete']} complete, {counts['pruned']} pruned, {counts['fail']} failed; "
        f"{outcome.added} added now)"
    )
    if outcome.default_value is not None:
        print(f"defaults   {outcome.metric} {outcome.default_value:.5f}")
    print(f"best       {outcome.metric} {outcome.best_value:.5f}  "
          + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in outcome.best_params.items()))  # fmt: skip
    if outcome.importances:
        print("importance " + ", ".join(f"{k} {v:.2f}" for k, v in outcome.importances.items()))
    if outcome.final is not None:
        final = outcome.final
        shown = ", ".join(
            f"{m} {v:.4f}"
            for m, v in final.result.metrics.items()
            if m.split("@")[0] in ("rmse", "mae", "ndcg", "hit_rate", "recall")
        )
        print(f"refit on all of train, test once: {shown}")
        print(f"run record: {final.path}")
    return 0


def add_commands(sub: Any, add: Any) -> None:
    """Register ``tune`` (see ``cli.COMMAND_MODULES``)."""
    from .cli import _add_data_args, _add_model_args

    p = add(
        sub,
        "tune",
        "search a model's declared parameter space on validation carved from train "
        "(grid or optuna TPE, SQLite study that resumes), refit the best, test once",
    )
    _add_data_args(p)
    _add_model_args(p)
    p.add_argument("--method", choices=("tpe", "grid"), default="tpe", help="search method")
    p.add_argument("--trials", type=int,
                   help="finished trials the study should hold (default: 30 for tpe, the grid "
                   "size for grid); a rerun adds what is missing")  # fmt: skip
    p.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    p.add_argument(
        "--storage",
        help="optuna storage URL shared by processes and machines: sqlite:///tune.db, "
        "postgresql://user@host/db (default: sqlite:///RUNS_DIR/tune.sqlite3)",
    )
    p.add_argument("--study", help="study name (default: model, data, split, seed, space hash)")
    p.add_argument("--params", metavar="A,B", help="search only these parameters")
    p.add_argument(
        "--grid",
        action="append",
        metavar="NAME=V1,V2",
        help="explicit values for a parameter (repeatable), also for tpe",
    )
    p.add_argument("--grid-points", type=int, default=3,
                   help="grid values per numeric range")  # fmt: skip
    p.add_argument("--metric", choices=("auto", "rmse", "ndcg"), default="auto",
                   help="validation metric: auto = rmse for rating models on ratings, "
                   "else ndcg@10")  # fmt: skip
    p.add_argument("--carves", type=int, default=1,
                   help="score each trial on the mean of this many validation carves (other "
                   "seeds; that many fits a trial): a steadier choice on small data")  # fmt: skip
    p.add_argument("--no-prune", action="store_true", help="never stop a trial early")
    p.add_argument("--no-refit", action="store_true",
                   help="only search; do not refit the best on train nor test it")  # fmt: skip
    p.add_argument("--k", default="10", help="list length(s) for the final test metrics")
    p.add_argument("--runs-dir", default="runs", help="where the run record goes")
    p.set_defaults(func=cmd_tune)
