"""The ``lensrec`` command line: a thin shell over the library.

Every command is a few lines calling public functions a notebook user can call too. Any
:class:`~lensrec.errors.LensrecError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError, DataError, LensrecError

_log = logging.getLogger("lensrec")

DEFAULT_RUNS = "runs"

#: what ``lensrec benchmark`` runs without a config file: the main job on the default data
DEFAULT_BENCHMARK: dict[str, Any] = {
    "dataset": "ml-100k",
    "runs": [
        {"split": "ua", "model": "biased-mf"},
        {"split": "ua", "model": "popularity"},
        {"split": "last:3", "model": "popularity", "k": 10},
        {"split": "last:3", "model": "biased-mf", "k": 10},
    ],
}


# --- helpers -----------------------------------------------------------------------------
def _parse_value(raw: str) -> Any:
    """``--set`` values: ints, floats, booleans, None, else the string."""
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


def _parse_sets(pairs: Sequence[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs or ():
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"--set expects name=value, got {pair!r}")
        out[name.strip().replace("-", "_")] = _parse_value(value.strip())
    return out


def _make_model(name: str, params: dict[str, Any], seed: int | None) -> Any:
    from .models import MODELS

    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    cls = MODELS[name]
    if "random_state" in cls._param_names() and "random_state" not in params:
        params = {**params, "random_state": seed}
    return cls().set_params(**params)


def _load_data(args: argparse.Namespace) -> Any:
    from .data import load_dataset

    mapping: dict[str, Any] = {}
    no_header = bool(getattr(args, "no_header", False))
    for key, name in (
        ("user_col", "user"),
        ("item_col", "item"),
        ("rating_col", "rating"),
        ("time_col", "timestamp"),
    ):
        value = getattr(args, key, None)
        if value:
            # without a header, columns are 0-based positions
            mapping[name] = int(value) if no_header and value.isdigit() else value
    if no_header:
        mapping["has_header"] = False
    if getattr(args, "sep", None):
        mapping["sep"] = args.sep.replace("\\t", "\t")
    if getattr(args, "rating_scale", None):
        try:
            mapping["rating_scale"] = tuple(float(v) for v in args.rating_scale.split(","))
        except ValueError:
            raise ConfigError(
                f"--rating-scale takes LOW,HIGH[,STEP], got {args.rating_scale!r}"
            ) from None
    inter = load_dataset(args.dataset, progress=_progress(args), **mapping)
    return _filters(inter, args)


def _filters(inter: Any, args: argparse.Namespace) -> Any:
    from . import split as splits

    if getattr(args, "min_rating", None) is not None:
        inter = splits.min_rating(inter, args.min_rating)
    if getattr(args, "kcore", None):
        inter = splits.kcore(inter, args.kcore)
    return inter


def _progress(args: argparse.Namespace) -> bool:
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def _split(inter: Any, spec: str, seed: int | None, model: Any = None) -> Any:
    from . import split as splits

    sp = splits.make_split(inter, spec, random_state=seed)
    if sp.valid is None and getattr(model, "uses_validation", False):
        sp = splits.carve_validation(sp, random_state=seed)
    return sp


def _fit(model: Any, sp: Any, args: argparse.Namespace) -> float:
    type(model).warm_up()  # JIT compilation is not fit time
    t0 = time.perf_counter()
    model.fit(sp.train, sp.valid, show_progress=_progress(args))
    return time.perf_counter() - t0


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=_json_default))


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# --- commands ----------------------------------------------------------------------------
def cmd_data_fetch(args: argparse.Namespace) -> int:
    from .data import movielens

    url = args.url
    if args.archive:
        archive = Path(args.archive)
        if not archive.is_file():
            raise DataError(
                "no such file (--archive takes a local copy of the official zip)", file=str(archive)
            )
        url = archive.resolve().as_uri()
    cached = movielens.is_cached(args.name)
    path = movielens.fetch(args.name, url=url, checksum=args.checksum, progress=_progress(args))
    inter = movielens.load_movielens(args.name, download=False)
    how = "already in the cache" if cached else "fetched"
    titles = (
        "with titles"
        if inter.item_info is not None and "title" in inter.item_info.columns
        else "no titles"
    )
    print(
        f"{args.name}: {len(inter):,} ratings, {inter.n_users:,} users, {inter.n_items:,} items, "
        f"{titles} (source: {inter.stats.get('source', '?')}; {how}) in {path}"
    )
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    from .data.summary import describe, format_summary

    inter = _load_data(args)
    summary = describe(inter)
    if args.json:
        _print_json(summary)
    else:
        print(format_summary(summary))
    return 0


def cmd_data_eda(args: argparse.Namespace) -> int:
    from .plots import eda_plots

    inter = _load_data(args)
    for path in eda_plots(inter, Path(args.out)):
        print(path)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    inter = _load_data(args)
    model = _make_model(args.model, _parse_sets(args.set), args.seed)
    sp = _split(inter, args.split, args.seed, model) if args.split != "none" else None
    if sp is None:
        t0 = time.perf_counter()
        model.fit(inter, show_progress=_progress(args))
        seconds = time.perf_counter() - t0
    else:
        seconds = _fit(model, sp, args)
    meta = {"dataset": args.dataset, "split": args.split, "filters": _filter_desc(args)}
    out = model.save(args.out, meta=meta)
    print(f"trained {model!r} in {seconds:.2f}s -> {out}")
    return 0


def _filter_desc(args: argparse.Namespace) -> dict[str, Any]:
    return {"min_rating": getattr(args, "min_rating", None), "kcore": getattr(args, "kcore", None)}


def _parse_ks(text: str) -> list[int]:
    try:
        ks = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        ks = []
    if not ks or min(ks) < 1:
        raise ConfigError(
            f"--k takes positive integers separated by commas (10 or 5,10,20), got {text!r}"
        )
    return ks


def cmd_evaluate(args: argparse.Namespace) -> int:
    ks = _parse_ks(args.k)
    record = evaluate_run(
        dataset=args.dataset,
        split=args.split,
        model_name=args.model,
        params=_parse_sets(args.set),
        k=ks[0] if len(ks) == 1 else ks,
        seed=args.seed,
        args=args,
    )
    if args.json:
        _print_json({**record["metrics"], "ci": record["ci"], "run": record["run_file"]})
    else:
        print(record["text"])
    return 0


def evaluate_run(
    *,
    dataset: str,
    split: str,
    model_name: str,
    params: dict[str, Any],
    k: int | list[int],
    seed: int | None,
    args: argparse.Namespace,
    inter: Any = None,
) -> dict[str, Any]:
    """Load, split, fit, evaluate and write a run record; returns what was written."""
    from .evaluate import evaluate
    from .experiments import RunRecord, save_run

    if inter is None:
        inter = _load_data(args)
    model = _make_model(model_name, params, seed)
    sp = _split(inter, split, seed, model)
    fit_seconds = _fit(model, sp, args)
    t0 = time.perf_counter()
    result = evaluate(
        model,
        sp.train,
        sp.test,
        k=k,
        metrics=[m.strip() for m in args.metrics.split(",") if m.strip()]
        if getattr(args, "metrics", None)
        else None,
        relevance_threshold=getattr(args, "relevance_threshold", None),
    )
    eval_seconds = time.perf_counter() - t0
    record = RunRecord.create(
        dataset=dataset,
        split=split,
        model=model_name,
        params=model.get_params(),
        metrics=result.metrics,
        ci={name: list(v) for name, v in result.ci.items()},
        n_users_evaluated=int(result.n_users),
        timings={"fit_seconds": fit_seconds, "eval_seconds": eval_seconds},
        extra={"filters": _filter_desc(args), "split_report": sp.report, "seed": seed},
    )
    path = save_run(record, getattr(args, "runs_dir", DEFAULT_RUNS), per_user=result.per_user)
    text = f"{model_name} on {dataset} / {split} (fit {fit_seconds:.2f}s)\n{result.format()}\nrun record: {path}"
    return {"metrics": result.metrics, "ci": result.ci, "run_file": str(path), "text": text}


def _model_and_data(args: argparse.Namespace) -> tuple[Any, Any]:
    from .models import load
    from .models.base import read_meta

    model = load(args.model_file)
    dataset = args.dataset or read_meta(args.model_file).get("dataset")
    inter = None
    if dataset:
        from .data import load_dataset

        try:
            inter = load_dataset(dataset, download=False)
        except LensrecError:
            inter = None
    return model, inter


def _titles(inter: Any, model: Any, idx: Any) -> list[str]:
    ext = model.item_ids_.external(idx)
    if inter is None or inter.item_info is None or "title" not in inter.item_info.columns:
        return [str(x) for x in ext.tolist()]
    info = inter.item_info
    lut = dict(zip(info["item_id"].to_list(), info["title"].to_list(), strict=True))
    return [str(lut.get(x, x)) for x in ext.tolist()]


def _result_rows(model: Any, inter: Any, ids: Any, scores: Any) -> list[dict[str, Any]]:
    """One printable row per recommended item of a single-row (ids, scores) answer."""
    keep = ids[0] >= 0
    found = ids[0][keep]
    external = model.item_ids_.external(found).tolist()
    titles = _titles(inter, model, found)
    return [
        {"rank": r + 1, "item": ext, "title": title, "score": float(s)}
        for r, (ext, title, s) in enumerate(zip(external, titles, scores[0][keep], strict=True))
    ]


def cmd_recommend(args: argparse.Namespace) -> int:
    model, inter = _model_and_data(args)
    user = model.user_ids_.index([args.user])
    exclude = None
    if inter is not None and not args.include_seen:
        seen, _ = inter.reindex(model.user_ids_, model.item_ids_)
        exclude = seen.csr()
    ids, scores = model.recommend(user, k=args.k, exclude=exclude)
    _print_rows(args, f"top {args.k} for user {args.user}", _result_rows(model, inter, ids, scores))
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    model, inter = _model_and_data(args)
    item = model.item_ids_.index([args.item])
    ids, scores = model.similar_items(item, k=args.k)
    head = _titles(inter, model, item)[0]
    _print_rows(
        args, f"items similar to {args.item} ({head})", _result_rows(model, inter, ids, scores)
    )
    return 0


def _print_rows(args: argparse.Namespace, title: str, rows: list[dict[str, Any]]) -> None:
    if getattr(args, "json", False):
        _print_json(rows)
        return
    print(title)
    for row in rows:
        print(f"{row['rank']:>3}. {row['score']:8.4f}  {row['title']}  [{row['item']}]")


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from .experiments import format_leaderboard, leaderboard, write_leaderboard_csv

    table = leaderboard(args.runs_dir, metric=args.metric)
    if table.height == 0:
        raise ConfigError(f"no run records in {args.runs_dir}; run `lensrec evaluate` first")
    print(format_leaderboard(table))
    csv = Path(args.csv) if args.csv else Path(args.runs_dir) / "leaderboard.csv"
    write_leaderboard_csv(table, csv)
    print(f"\nleaderboard written to {csv}")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    """The main job: fetch the data, train and evaluate each configured model, print a leaderboard."""
    from .data import load_dataset

    config = DEFAULT_BENCHMARK
    if args.config:
        try:
            config = tomllib.loads(Path(args.config).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{args.config}: cannot read benchmark config ({exc})") from None
    dataset = config.get("dataset", "ml-100k")
    runs = config.get("runs", [])
    if not runs:
        raise ConfigError("the benchmark config has no [[runs]]")
    inter = load_dataset(dataset, progress=_progress(args))
    print(f"{dataset}: {len(inter):,} ratings, {inter.n_users:,} users, {inter.n_items:,} items")
    for run in runs:
        name = run["model"]
        print(f"- {name} on {run.get('split', 'ua')} ...", flush=True)
        record = evaluate_run(
            dataset=dataset,
            split=run.get("split", "ua"),
            model_name=name,
            params=dict(run.get("params", {})),
            k=int(run.get("k", args.k)),
            seed=args.seed,
            args=args,
            inter=inter,
        )
        shown = {
            m: round(v, 4)
            for m, v in record["metrics"].items()
            if m.split("@")[0] in ("rmse", "mae", "ndcg", "precision", "recall")
        }
        print(f"  {shown}")
    print()
    args.metric = None
    args.csv = None
    return cmd_leaderboard(args)


# --- parser ------------------------------------------------------------------------------
def _add_data_args(p: argparse.ArgumentParser, positional: bool = False) -> None:
    if positional:
        p.add_argument("dataset", help="ml-100k, ml-1m, ... or a CSV/TSV/Parquet path")
    else:
        p.add_argument("--dataset", default="ml-100k", help="ml-100k, ml-1m, ... or a file path")
    p.add_argument("--user-col", help="user column (file datasets)")
    p.add_argument("--item-col", help="item column (file datasets)")
    p.add_argument("--rating-col", help="rating column (file datasets)")
    p.add_argument("--time-col", help="timestamp column (file datasets)")
    p.add_argument(
        "--sep",
        help=r"field separator (file datasets; default from the extension or sniffed; '\t' for tab)",
    )
    p.add_argument("--no-header", action="store_true",
                   help="the file has no header line: --user-col etc. are 0-based positions")  # fmt: skip
    p.add_argument(
        "--rating-scale",
        metavar="LOW,HIGH[,STEP]",
        help="reject ratings off this scale (file datasets)",
    )
    p.add_argument("--min-rating", type=float, help="keep only ratings >= this (positives)")
    p.add_argument("--kcore", type=int, help="iterative k-core on users and items")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--split", default="ua", help="ua, ub, u1..u5, random:0.2, last:3, temporal:0.1, ..."
    )
    p.add_argument("--model", default="biased-mf", help="model name, e.g. biased-mf, popularity")
    p.add_argument(
        "--set", action="append", metavar="NAME=VALUE", help="hyper-parameter (repeatable)"
    )
    p.add_argument("--seed", type=int, default=42, help="random seed for splits and models")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lensrec", description="Recommender systems from MovieLens to serving."
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="fetch and inspect datasets")
    dsub = data.add_subparsers(dest="data_command", required=True)
    p = dsub.add_parser("fetch", help="download (or take the embedded copy of) a MovieLens dataset")
    p.add_argument(
        "name", help="ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-32m, ml-latest, ml-latest-small"
    )
    p.add_argument(
        "--archive",
        metavar="FILE",
        help="a local copy of the official zip, verified like a download",
    )
    p.add_argument("--url", help="download from this address instead of GroupLens (a mirror)")
    p.add_argument(
        "--checksum", metavar="ALGO:HEX", help="sha256:<hex> or md5:<hex> instead of the registry's"
    )
    p.set_defaults(func=cmd_data_fetch)
    p = dsub.add_parser("info", help="counts, density and rating histogram")
    _add_data_args(p, positional=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_data_info)
    p = dsub.add_parser("eda", help="PNG histograms of activity, popularity and ratings")
    _add_data_args(p, positional=True)
    p.add_argument("--out", default="eda", help="output directory")
    p.set_defaults(func=cmd_data_eda)

    p = sub.add_parser("train", help="train a model and save it")
    _add_data_args(p)
    _add_model_args(p)
    p.add_argument("--out", required=True, help="model file to write (.lrec)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate", help="train on a split, evaluate on its test part, record the run"
    )
    _add_data_args(p)
    _add_model_args(p)
    p.add_argument("--k", default="10", help="list length(s) for ranking metrics: 10 or 5,10,20")
    p.add_argument(
        "--metrics",
        help="comma-separated metric names (default: all that apply), e.g. ndcg,recall@20,map_k,rmse",
    )
    p.add_argument(
        "--relevance-threshold", type=float, help="test ratings >= this count as relevant"
    )
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--runs-dir", default=DEFAULT_RUNS)
    p.set_defaults(func=cmd_evaluate)

    for name, func, key, helptext in (
        ("recommend", cmd_recommend, "--user", "top-k items for a user"),
        ("similar", cmd_similar, "--item", "items most similar to an item"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("model_file")
        p.add_argument(key, required=True, help="external id")
        p.add_argument("-k", "--k", type=int, default=10)
        p.add_argument(
            "--dataset", help="dataset for titles and seen items (default: the one trained on)"
        )
        p.add_argument("--json", action="store_true")
        if name == "recommend":
            p.add_argument(
                "--include-seen", action="store_true", help="do not filter items the user rated"
            )
        p.set_defaults(func=func)

    p = sub.add_parser("leaderboard", help="table of recorded runs")
    p.add_argument("--runs-dir", default=DEFAULT_RUNS)
    p.add_argument("--metric", help="sort by this metric (e.g. rmse, ndcg@10)")
    p.add_argument("--csv", help="CSV path (default: RUNS_DIR/leaderboard.csv)")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser(
        "benchmark", help="the main job: evaluate configured models, print a leaderboard"
    )
    p.add_argument(
        "config", nargs="?", help="TOML config (default: ml-100k, biased-mf and popularity)"
    )
    p.add_argument("--runs-dir", default=DEFAULT_RUNS)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=cmd_benchmark)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except LensrecError as exc:
        print(f"lensrec: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"lensrec: error: {exc.filename or exc}: no such file", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("lensrec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
