"""The ``lensrec`` command line: a thin shell over the library.

Every command is a few lines calling public functions a notebook user can call too
(:func:`lensrec.experiments.run_spec` does the work of ``evaluate`` and ``benchmark``). Any
:class:`~lensrec.errors.LensrecError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import ast
import logging
import sys
import time
import tomllib
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError, DataError, LensrecError, MissingExtraError, SplitDropWarning

_log = logging.getLogger("lensrec")

DEFAULT_RUNS = "runs"
DEFAULT_SEED = 42

#: what ``lensrec benchmark`` runs without a config file: the main job on the default data.
#: Rating models on ua (RMSE); ranking models on "rating >= 4 as positives, each user's last
#: 3 positives as test" (NDCG@10), the protocol most top-N comparisons on ml-100k use.
_RATING_MODELS = ("biased-mf", "svd", "svdpp", "knn-baseline", "baseline", "bpmf")
_RANKING_MODELS = ("popularity", "ease", "slim", "item-knn", "pure-svd", "als", "bpr", "warp")
DEFAULT_BENCHMARK: dict[str, Any] = {
    "dataset": "ml-100k",
    "runs": [{"split": "ua", "model": m} for m in _RATING_MODELS]
    + [{"split": "last:3", "model": m, "min_rating": 4, "k": 10} for m in _RANKING_MODELS]
    # blends of defaults, weights learned on validation carved the protocol's way
    + [{"split": "ua", "model": "blend", "params": {"holdout": "ua"}}]
    + [
        {
            "split": "last:3",
            "model": "rank-blend",
            "min_rating": 4,
            "k": 10,
            "params": {"holdout": "last:3"},
        }
    ],  # fmt: skip
}


#: ``lensrec benchmark --quick``: the same data, protocols, table and report with fewer
#: models (a fast one of each family), so a first run on a fresh machine, compiling included,
#: takes well under a minute
_QUICK_RATING = ("baseline", "svd", "biased-mf")
_QUICK_RANKING = ("popularity", "pure-svd", "ease", "als")
QUICK_BENCHMARK: dict[str, Any] = {
    "dataset": "ml-100k",
    "runs": [r for r in DEFAULT_BENCHMARK["runs"] if r["model"] in _QUICK_RATING + _QUICK_RANKING],
}


#: modules that add their own subcommands: each has ``add_commands(sub, add)`` where ``sub``
#: is the top-level subparsers object and ``add(parent, name, help)`` makes a subparser with
#: the shared options. They must import nothing heavy at module level (``lensrec --help``
#: stays fast and works without the extras their commands need).
COMMAND_MODULES: tuple[str, ...] = (
    "lensrec._tune_cli",
    "lensrec._runs_cli",
    "lensrec.serving.commands",
    "lensrec.spark.commands",
)


SPLIT_HELP = (
    "how to split: ua, ub, u1..u5 (the GroupLens files), random:0.2, user-random:0.8/0.1/0.1, "
    "temporal:0.1, last:3 (by time), last:3:row (by file order), "
    "warm-temporal[:quantile=0.9,min_train=5,min_test=1]; cross-validation (evaluate, "
    "benchmark): cv:5 (random 5-fold), cv:u (the u1..u5 folds)"
)


# --- helpers -----------------------------------------------------------------------------
def parse_value(raw: str) -> Any:
    """A ``--set`` value: a Python literal (int, float, bool, None, tuple, list, string in
    quotes), also ``true`` / ``false`` / ``none``; anything else is taken as a string."""
    text = raw.strip()
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def parse_sets(pairs: Sequence[str] | None) -> dict[str, Any]:
    """``["factors=64", "rating_range=(1, 5)"]`` -> ``{"factors": 64, "rating_range": (1, 5)}``."""
    out: dict[str, Any] = {}
    for pair in pairs or ():
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--set expects name=value, got {pair!r}")
        out[name.strip().replace("-", "_")] = parse_value(value)
    return out


def _load_options(args: argparse.Namespace) -> dict[str, Any]:
    """Column mapping and parsing options of a file dataset, from the command line."""
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
    if getattr(args, "item_info", None):
        mapping["item_info"] = args.item_info
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
    return mapping


def _spec(args: argparse.Namespace, **over: Any) -> Any:
    from .experiments import RunSpec, parse_ks, parse_metric_names

    values: dict[str, Any] = dict(
        dataset=args.dataset,
        split=getattr(args, "split", "none"),
        model=getattr(args, "model", "popularity"),
        params=parse_sets(getattr(args, "set", None)),
        seed=getattr(args, "seed", DEFAULT_SEED),
        min_rating=getattr(args, "min_rating", None),
        kcore=getattr(args, "kcore", None),
        relevance_threshold=getattr(args, "relevance_threshold", None),
        load_options=_load_options(args),
    )
    if getattr(args, "k", None) is not None:
        values["k"] = parse_ks(args.k)
    if getattr(args, "metrics", None) is not None:
        values["metrics"] = parse_metric_names(args.metrics)
    values.update(over)
    return RunSpec(**values)


def _progress(args: argparse.Namespace) -> bool:
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def _print_json(obj: Any) -> None:
    from ._io import dumps

    print(dumps(obj))


def _say(message: str) -> None:
    """A line for people, on stderr (stdout stays clean for --json)."""
    print(message, file=sys.stderr)


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


def _load_data(args: argparse.Namespace) -> Any:
    from .experiments import load_spec_data

    return load_spec_data(_spec(args), progress=_progress(args))


def cmd_data_info(args: argparse.Namespace) -> int:
    from .data.summary import describe, format_summary

    inter = _load_data(args)
    summary = describe(inter)
    if args.json:
        _print_json(summary)
    else:
        print(format_summary(summary))
    return 0


def _shape_of(name: str) -> tuple[int, int, int]:
    """(ratings, users, items) of a registry dataset, from its description."""
    import re

    from .data import REGISTRY

    if name not in REGISTRY:
        raise ConfigError(f"--like takes a dataset name ({', '.join(REGISTRY)}), got {name!r}")
    m = re.match(r"(?:about )?([\d,]+) ratings, ([\d,]+) users, ([\d,]+) movies",
                 REGISTRY[name].description)  # fmt: skip
    if m is None:
        raise ConfigError(
            f"the size of {name} is not recorded; give --users/--items/--interactions"
        )
    r, u, i = (int(g.replace(",", "")) for g in m.groups())
    return r, u, i


def cmd_data_synth(args: argparse.Namespace) -> int:
    """Synthetic interactions straight to Parquet, a block of users at a time."""
    from .data.synthetic import write_synthetic

    n, users, items = _shape_of(args.like) if args.like else (None, None, None)
    n = args.interactions if args.interactions is not None else n
    users = args.users if args.users is not None else users
    items = args.items if args.items is not None else items
    if n is None or users is None or items is None:
        raise ConfigError("give --like ml-32m or all of --users, --items and --interactions")
    try:
        out = write_synthetic(
            args.out, users, items, n, chunk_rows=args.chunk_rows, implicit=args.implicit,
            random_state=args.seed,
        )  # fmt: skip
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    print(f"{out}: {n:,} interactions, {users:,} users x {items:,} items")
    return 0


def cmd_data_eda(args: argparse.Namespace) -> int:
    from .plots import eda_plots

    inter = _load_data(args)
    for path in eda_plots(inter, Path(args.out)):
        print(path)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """Every registered model: what data it takes, what it offers, its parameters."""
    from .models import MODELS

    rows: list[dict[str, Any]] = []
    names = list(MODELS)
    if args.name:
        wanted = args.name.replace("_", "-")
        if wanted not in names:
            raise ConfigError(f"no model {args.name!r}; the models are: {', '.join(names)}")
        names = [wanted]
    for name in names:
        extra = MODELS.entry(name).extra
        try:
            cls = MODELS[name]
        except LensrecError as exc:  # a missing extra: say so, list the rest
            rows.append({"name": name, "extra": extra, "error": str(exc)})
            continue
        caps = cls.capabilities
        extra = extra or caps.extra
        params = {k: v for k, v in cls.param_defaults().items() if k != "random_state"}
        rows.append(
            {
                "name": name,
                "class": cls.__name__,
                "data": "explicit ratings" if caps.needs_ratings else "any interactions",
                "predicts_ratings": caps.predicts_ratings,
                "folds_in": caps.folds_in,
                "extra": extra,
                "summary": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
                "params": params,
            }
        )
    if args.json:
        _print_json(rows)
        return 0
    for row in rows:
        if "error" in row:
            print(f"{row['name']}: unavailable ({row['error']})\n")
            continue
        offers = ["ranks"]
        if row["predicts_ratings"]:
            offers.append("predicts ratings")
        if row["folds_in"]:
            offers.append("recommends for new users from their history")
        print(f"{row['name']}  ({row['class']}): {row['summary']}")
        print(f"  data: {row['data']}; {', '.join(offers)}")
        if row["extra"]:
            print(f"  needs the '{row['extra']}' extra: pip install 'lensrec[{row['extra']}]'")
        shown = ", ".join(f"{k}={v!r}" for k, v in row["params"].items())
        print(f"  --set {shown}\n" if shown else "  (no parameters)\n")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import time

    from . import split as splits
    from .experiments import warm_up_quietly
    from .experiments.run import validation_text
    from .models import make_model
    from .models._validation import fit_with_validation

    spec = _spec(args)
    inter = _load_data(args)
    params = dict(spec.params)
    model = make_model(spec.model, params)
    if "random_state" in model._param_names() and "random_state" not in params:
        model.set_params(random_state=spec.seed)
    if splits.is_fold_family(spec.split):
        raise ConfigError(
            f"train fits one model on one split; --split {spec.split} is cross-validation, "
            "which evaluate and benchmark run (every fold trained and evaluated). Give one "
            "split (ua, last:3, random:0.2, ...) or --split none to train on all of the data"
        )
    if spec.split == "none":
        train, valid, what = inter, None, f"all of {spec.dataset}"
    else:
        sp = splits.make_split(inter, spec.split, random_state=spec.seed)
        train, valid, what = sp.train, sp.valid, f"the train part of {spec.dataset} / {spec.split}"
        _say(f"split  {sp.summary()}")
    from .experiments import data_summary

    _say(f"data   {data_summary(inter)}")
    _say(
        f"training {model!r} on {what}: {len(train):,} "
        f"{'ratings' if train.ratings is not None else 'interactions'}, "
        f"{train.n_users:,} users, {train.n_items:,} items"
    )
    from .experiments.warm import mark_kernels_cached

    first = _compile_notice(spec.model)
    warm_up_quietly(type(model), params)
    if first:
        mark_kernels_cached([spec.model])
    t0 = time.perf_counter()
    if valid is not None:
        model.fit(train, valid, show_progress=_progress(args))
        validation = {}
    else:
        split_name = None if spec.split == "none" else spec.split
        validation = fit_with_validation(
            model, train, split=split_name, random_state=spec.seed, show_progress=_progress(args)
        )
    seconds = time.perf_counter() - t0
    if validation.get("validation"):
        _say(f"validation{validation_text(validation)}")
    meta = {
        "validation": validation,
        "dataset": spec.dataset,
        "split": spec.split,
        "filters": spec.filters(),
        "seed": spec.seed,
        "rating_scale": _rating_scale(inter),
    }
    out = model.save(args.out, meta=meta)
    print(f"trained {model!r} in {seconds:.2f}s -> {out}")
    return 0


def _rating_scale(data: Any) -> list[float] | None:
    """The data's rating scale (declared or inferred at load), else its observed range."""
    scale = data.stats.get("rating_scale")
    if scale:
        return [float(scale["low"]), float(scale["high"])]
    if data.ratings is None or len(data) == 0:
        return None
    return [float(data.ratings.min()), float(data.ratings.max())]


def _compile_notice(model: str) -> bool:
    """Say, on a first run, that the model's kernels are being compiled (numba caches them);
    True when it was said (the caller records the cache after the run)."""
    from .experiments.warm import kernels_cached

    if kernels_cached([model]):
        return False
    _say(f"compiling numba kernels for {model} (first run; cached for the next runs) ...")
    return True


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .experiments import run_spec
    from .experiments.warm import mark_kernels_cached

    spec = _spec(args)
    first = _compile_notice(spec.model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SplitDropWarning)  # the notes below say it once
        outcome = run_spec(spec, runs_dir=args.runs_dir, show_progress=_progress(args))
    if first:
        mark_kernels_cached([spec.model])
    if args.json:
        _say(f"data   {outcome.data_summary}")
        _say(f"split  {outcome.split.summary()}")
        for note in outcome.notes:
            _say(f"note: {note}")
        _print_json(
            {
                **outcome.result.metrics,
                "ci": outcome.result.ci,
                "run": str(outcome.path),
                "relevance": outcome.record.extra["protocol"]["relevance"],
            }
        )
    else:
        print(outcome.text())
    return 0


def _model_file(args: argparse.Namespace) -> Any:
    from .models import load

    return load(args.model_file)


def _scale_notes(
    model: Any, answer: Any, lo_hi: Any = None
) -> tuple[list[float] | None, list[str]]:
    """For a rating model's list: each predicted rating on the data's scale, and a note.

    The list is ranked by the model's raw scores, which may lie above the scale (all the
    best items of a rating model often do); those are shown as they are, next to the rating
    ``predict`` would give (clipped to the scale), and a note says so, so that a column of
    5.0000 never hides the order the ranking used.
    """
    import numpy as np

    if answer.score_name != "predicted":
        return None, []
    if lo_hi is None:
        lo_hi = getattr(model, "rating_scale_", None)
    if lo_hi is None and getattr(model, "user_items_", None) is not None and model.user_items_.nnz:
        data = model.user_items_.data
        lo_hi = (float(data.min()), float(data.max()))
    if lo_hi is None:
        return None, []
    lo, hi = float(lo_hi[0]), float(lo_hi[1])
    clipped = np.clip(answer.scores, lo, hi)
    n_off = int(np.count_nonzero(clipped != answer.scores))
    notes = []
    if n_off:
        notes.append(
            f"note: ranked by the raw predicted rating (score); {n_off} of these lie outside "
            f"the {lo:g}-{hi:g} scale, so the rating column (what predict() returns) shows "
            "them clipped"
        )
    return [float(v) for v in clipped], notes


def _split_list(raw: str) -> list[str]:
    return [v.strip() for v in raw.split(",") if v.strip()]


def cmd_recommend(args: argparse.Namespace) -> int:
    from .models import read_meta
    from .retrieval import recommend_history, recommend_user

    if args.user is not None and args.history is not None:
        raise ConfigError(
            "give --user ID (a user the model was trained on) or --history ITEMS (a user it "
            "never saw), not both"
        )
    if args.ratings is not None and args.history is None:
        raise ConfigError("--ratings goes with --history (the ratings of those items)")
    model = _model_file(args)
    if args.history is not None:
        items = _split_list(args.history)
        ratings = None
        if args.ratings is not None:
            try:
                ratings = [float(v) for v in _split_list(args.ratings)]
            except ValueError:
                raise ConfigError(f"--ratings takes numbers, got {args.ratings!r}") from None
            if len(ratings) != len(items):
                raise ConfigError(
                    f"--ratings has {len(ratings)} values for {len(items)} --history items"
                )
        # a first fold-in compiles its numba kernels (ALS: about 4 s): one item first, timed,
        # so the wait is said rather than silent (cached: milliseconds on later runs)
        t0 = time.perf_counter()
        try:
            recommend_history(model, items[:1], 1, ratings=None if ratings is None else ratings[:1])
        except LensrecError:
            pass  # only a timing probe: the real call below reports what is wrong
        first = time.perf_counter() - t0
        if first >= 0.5:
            _say(f"(+{first:.1f}s compiling the fold-in kernels on their first use; cached "
                 "for the next runs)")  # fmt: skip
        answer = recommend_history(
            model, items, args.k, ratings=ratings, exclude_history=not args.no_exclude
        )
        title = f"top {args.k} for a new user with {answer.used} known item{'' if answer.used == 1 else 's'}"
    else:
        if args.user is None:
            raise ConfigError("give --user ID (a user the model was trained on) or --history ITEMS")
        if not args.no_exclude and getattr(model, "user_items_", None) is None:
            raise ConfigError(
                f"{args.model_file} holds no training interactions, so the items user "
                f"{args.user} has seen cannot be excluded; retrain with this lensrec, or pass "
                "--no-exclude to accept seen items in the list"
            )
        answer = recommend_user(model, args.user, args.k, exclude_seen=not args.no_exclude)
        title = f"top {args.k} for user {args.user}"
        if not args.no_exclude:
            title += " (items seen in training excluded)"
    rating_col, notes = _scale_notes(model, answer, read_meta(args.model_file).get("rating_scale"))
    if answer.n_unknown:
        shown = ", ".join(map(str, answer.unknown))
        more = (
            f" (and {answer.n_unknown - len(answer.unknown)} more)"
            if answer.n_unknown > len(answer.unknown)
            else ""
        )
        notes.append(
            f"note: {answer.n_unknown} unknown item id{'s' if answer.n_unknown != 1 else ''} "
            f"left out of the history: {shown}{more}"
        )
    if answer.fallback:
        notes.append(
            f"note: fallback to the most popular items ({answer.fallback}); the model did not "
            "rank these"
        )
        title += " (fallback: most popular)"
    _print_answer(args, title, answer, notes, rating_col)
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    from .retrieval import similar

    model = _model_file(args)
    answer = similar(model, args.item, args.k, min_count=args.min_count or None)
    titles = getattr(model, "item_titles_", None)
    head = ""
    if titles is not None:
        head = str(titles[model.item_ids_.index([args.item])[0]])
    label = f"{args.item}" + (f" ({head})" if head else "")
    title = f"items most similar to {label}"
    if args.min_count:
        title += f", with at least {args.min_count} training interactions"
    _print_answer(args, title, answer, [])
    return 0


def _print_answer(
    args: argparse.Namespace,
    title: str,
    answer: Any,
    notes: list[str],
    rating_col: list[float] | None = None,
) -> None:
    """An ItemList as a table (notes on stderr) or, with --json, one JSON object.

    ``rating_col``: a rating model's predicted ratings on the data's scale, shown beside the
    raw scores the list was ranked by (``"rating"`` in each JSON row).
    """
    rows = answer.rows()
    if rating_col is not None:
        for row, value in zip(rows, rating_col, strict=True):
            row["rating"] = value
    for note in notes:
        _say(note)
    if getattr(args, "json", False):
        _print_json({**answer.to_dict(), "items": rows})
        return
    _print_rows(args, title, rows, score_name=answer.score_name)


def _print_rows(
    args: argparse.Namespace, title: str, rows: list[dict[str, Any]], *, score_name: str
) -> None:
    if getattr(args, "json", False):
        _print_json(rows)
        return
    print(title)
    if not rows:
        print("  (nothing to recommend)")
        return
    width_item = max(4, *(len(str(r["item"])) for r in rows))
    has_titles = any(r["title"] for r in rows)
    has_counts = any("n_train" in r for r in rows)
    has_rating = any("rating" in r for r in rows)
    if has_rating:  # the raw score ranked the list; the rating column is predict()'s value
        score_name = "score"
    head = f"{'rank':>4}  {score_name:>10}  "
    head += f"{'rating':>6}  " if has_rating else ""
    head += f"{'item':<{width_item}}"
    head += f"  {'n_train':>7}" if has_counts else ""
    head += "  title" if has_titles else ""
    print(head)
    for r in rows:
        line = f"{r['rank']:>4}  {r['score']:>10.4f}  "
        line += f"{r['rating']:>6.2f}  " if has_rating else ""
        line += f"{str(r['item']):<{width_item}}"
        line += f"  {r.get('n_train', 0):>7}" if has_counts else ""
        line += f"  {r['title']}" if has_titles else ""
        print(line.rstrip())
    if has_counts:
        print("n_train: the item's interactions in the training data (how well known it is)")


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from .experiments import leaderboard, write_leaderboard_csv
    from .experiments.compare import add_stats, format_board, write_board

    table = leaderboard(args.runs_dir, metric=args.metric, latest_only=not args.all_runs)
    if table.height == 0:
        raise ConfigError(f"no run records in {args.runs_dir}; run `lensrec evaluate` first")
    for out in args.out or ():
        if Path(out).suffix.lower() not in (".csv", ".parquet", ".md", ".txt"):
            raise ConfigError(
                f"--out {out}: the leaderboard is written as .csv, .parquet, .md or .txt"
            )
    table = add_stats(table, args.runs_dir, metric=args.metric)
    print(format_board(table, kind=args.format))
    csv = Path(args.csv) if args.csv else Path(args.runs_dir) / "leaderboard.csv"
    write_leaderboard_csv(table, csv)
    written = [str(csv)] + [str(write_board(table, out)) for out in args.out or ()]
    print(f"\nleaderboard written to {', '.join(written)} (every metric and parameter)")
    return 0


def _benchmark_config(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick and args.config:
        raise ConfigError("benchmark: give a config file or --quick, not both")
    if not args.config:
        from .models import MODELS

        # models whose module has not landed (or whose extra is missing) are left out
        base = QUICK_BENCHMARK if args.quick else DEFAULT_BENCHMARK
        runs = [r for r in base["runs"] if r["model"] in MODELS]
        return {**base, "runs": runs}
    path = Path(args.config)
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the benchmark config ({exc})") from None
    raw_runs = config.get("runs")
    if (
        not isinstance(raw_runs, list)
        or not raw_runs
        or not all(isinstance(r, dict) for r in raw_runs)
    ):
        raise ConfigError(
            f"{path}: the benchmark config needs [[runs]] tables, each with at least "
            'model = "..." (and optionally split, k, params, seed, metrics)'
        )
    unknown = sorted(set(config) - {"dataset", "runs", "min_rating", "kcore", "seed"})
    if unknown:
        raise ConfigError(
            f"{path}: unknown top-level key {unknown[0]!r}; known: dataset, runs, min_rating, "
            "kcore, seed"
        )
    return config


def _tune_setting(raw: Any, where: str) -> dict[str, Any] | None:
    """A run's ``tune`` key: ``tune = 30`` (TPE trials) or ``tune = {trials = 30,
    method = "grid", timeout = 600, carves = 3}``; None when the run is not tuned."""
    if raw is None or raw is False:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = {"trials": raw}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: tune must be a number of trials or a table, got {raw!r}")
    unknown = sorted(set(raw) - {"trials", "method", "timeout", "storage", "carves"})
    if unknown:
        raise ConfigError(
            f"{where}: unknown key tune.{unknown[0]}; known: trials, method, timeout, "
            "storage, carves"
        )
    trials = raw.get("trials", 30)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"{where}: tune.trials must be a positive integer, got {trials!r}")
    method = raw.get("method", "tpe")
    if method not in ("tpe", "grid"):
        raise ConfigError(f"{where}: tune.method must be tpe or grid, got {method!r}")
    out: dict[str, Any] = {"trials": trials, "method": method}
    if raw.get("timeout") is not None:
        out["timeout"] = float(raw["timeout"])
    if raw.get("storage") is not None:
        out["storage"] = str(raw["storage"])
    if "carves" in raw:
        carves = raw["carves"]
        if isinstance(carves, bool) or not isinstance(carves, int) or carves < 1:
            raise ConfigError(f"{where}: tune.carves must be a positive integer, got {carves!r}")
        out["carves"] = carves
    return out


def _start_precompile(models: list[str], report: bool = False) -> Any:
    """On a first run (kernels not yet in numba's cache), compile them ahead in one process
    per core and say so; None when they are cached, or for one model or one core. With
    ``report``, umap-learn's functions for the report's maps are compiled too, as the
    second job: they are needed last, but they are the longest job (about 25 s, most of it
    pynndescent compiling at import), so one worker takes them while the other compiles
    the models in the order the runs need them, instead of compiling them alone at the
    end."""
    import importlib.util
    import os

    from .experiments.warm import UMAP_JOB, Precompiler, kernels_cached

    distinct = list(dict.fromkeys(models))
    umap_job = [UMAP_JOB] if report and importlib.util.find_spec("umap") else []
    jobs = distinct[:1] + umap_job + distinct[1:]
    n = min(os.cpu_count() or 1, len(jobs))
    if os.environ.get("LENSREC_PRECOMPILE", "1") == "0" or n < 2 or kernels_cached(jobs):
        return None
    maps = " and the report's UMAP maps" if UMAP_JOB in jobs else ""
    print(
        f"compiling numba kernels for {len(distinct)} models{maps} (first run; cached for "
        f"the next runs) in {n} processes, alongside the runs ...",
        flush=True,
    )
    return Precompiler(jobs, processes=n)


def cmd_benchmark(args: argparse.Namespace) -> int:
    """The main job: fetch the data, evaluate each configured run, print this run's table."""
    from .experiments import (
        RunSpec,
        data_summary,
        leaderboard,
        load_spec_data,
        parse_ks,
        write_leaderboard_csv,
    )

    config = _benchmark_config(args)
    where = args.config or ("the quick benchmark" if args.quick else "the default benchmark")
    defaults = {
        "dataset": config.get("dataset", "ml-100k"),
        "seed": config.get("seed", args.seed),
        "min_rating": config.get("min_rating"),
        "kcore": config.get("kcore"),
        "k": args.k,
    }
    specs = []
    tuning: list[dict[str, Any] | None] = []
    for n, run in enumerate(config["runs"], start=1):
        merged = {**{k: v for k, v in defaults.items() if v is not None}, **run}
        merged.setdefault("split", "ua")
        tuning.append(_tune_setting(merged.pop("tune", None), f"{where}, run {n}"))
        specs.append(RunSpec.from_mapping(merged, where=f"{where}, run {n}"))
    parse_ks(args.k)
    data_cache: dict[tuple[Any, ...], Any] = {}
    run_ids = []
    printed_notes: set[str] = set()
    fitted: dict[str, Any] = {}
    model_dir = None if args.no_report else Path(args.runs_dir) / "models"
    from .experiments import run_spec

    pre = _start_precompile([s.model for s in specs], report=not args.no_report)
    try:
        for spec, how in zip(specs, tuning, strict=True):
            key = (spec.dataset, spec.min_rating, spec.kcore)
            if key not in data_cache:
                data_cache[key] = load_spec_data(spec, progress=_progress(args))
                print(
                    f"{spec.dataset} (filters: {spec.protocol()['filters']}): "
                    f"{data_summary(data_cache[key])}"
                )
            tuned = f", tuned with {how['trials']} {how['method']} trials" if how else ""
            print(f"- {spec.model} on {spec.split}{tuned} ...", flush=True)
            if pre is not None:
                pre.wait(spec.model)  # its kernels are in the cache: nothing compiles here
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SplitDropWarning)  # reported as a note below
                if how:
                    from .tune import tune

                    found = tune(spec, data=data_cache[key], runs_dir=args.runs_dir, **how)
                    print(f"  tuned: {found.metric} {found.best_value:.5f} "
                          f"({found.counts['complete']} complete, {found.counts['pruned']} pruned)")  # fmt: skip
                    outcome = found.final
                else:
                    outcome = run_spec(spec, data=data_cache[key], runs_dir=args.runs_dir,
                                       model_dir=model_dir)  # fmt: skip
            fitted[outcome.record.run_id] = outcome.model
            run_ids.append(outcome.record.run_id)
            print(f"  split  {outcome.split.summary()}")
            compile_note = (
                f" (+{outcome.compile_seconds:.2f}s compilation)"
                if outcome.compile_seconds >= 0.05
                else ""
            )
            shown = ", ".join(
                f"{m} {v:.4f}"
                for m, v in outcome.result.metrics.items()
                if m.split("@")[0] in ("rmse", "mae", "ndcg", "precision", "recall")
            )
            print(f"  fit {outcome.fit_seconds:.2f}s{compile_note}: {shown}")
            for note in outcome.notes:
                if note not in printed_notes:  # a note shared by several runs is said once
                    print(f"  note: {note}")
                    printed_notes.add(note)
    except BaseException:
        if pre is not None:
            pre.abort()
        raise
    print()
    from .experiments.compare import add_stats, format_board, write_board

    table = add_stats(leaderboard(args.runs_dir, run_ids=run_ids), args.runs_dir)
    print(format_board(table))
    csv = Path(args.runs_dir) / "benchmark.csv"
    write_leaderboard_csv(table, csv)
    md = write_board(table, Path(args.runs_dir) / "benchmark.md")
    print(f"\nthis run's table written to {csv} and {md}; `lensrec leaderboard` shows every "
          "recorded run")  # fmt: skip
    try:
        if not args.no_report:
            _benchmark_report(args.runs_dir, run_ids, fitted, pre)
    except BaseException:
        if pre is not None:
            pre.abort()
        raise
    if pre is not None:
        seconds = pre.close()
        failed = f"; not compiled ahead: {', '.join(pre.failed)}" if pre.failed else ""
        print(f"kernels compiled in {seconds:.0f}s by {pre.processes} processes beside the runs, "
              f"and cached: the next runs start at once{failed}")  # fmt: skip
    return 0


def _benchmark_report(runs_dir: str, run_ids: list[str], fitted: dict[str, Any], pre: Any) -> None:
    """Write the benchmark's HTML report and print its path. On a first run a worker may
    still be compiling umap-learn's functions: the report draws its other figures and waits
    for that worker only at its first UMAP map."""
    import contextlib

    from .experiments.warm import UMAP_JOB
    from .report import build_report

    print("writing the HTML report (data, learning curves, UMAP and t-SNE maps, similar "
          "items, a sample user) ...", flush=True)  # fmt: skip
    gate: Any = contextlib.nullcontext()
    if pre is not None and UMAP_JOB in pre.models:
        from .report.figures import umap_ready_when

        gate = umap_ready_when(lambda: pre.wait(UMAP_JOB))
    try:
        with gate:
            report = build_report(runs_dir, run_ids=run_ids, models=fitted,
                                  title="lensrec benchmark")  # fmt: skip
    except MissingExtraError as exc:
        print(f"report not written: {exc}")
    else:
        print(f"report ({report.images} figures): {report.path.resolve()}")


# --- parser ------------------------------------------------------------------------------
class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Defaults shown in every --help (where there is one worth showing)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" not in text
            and default not in (None, False, argparse.SUPPRESS)
            and action.option_strings
        ):
            text += " (default: %(default)s)"
        return text


def _common(verbosity: bool = True) -> argparse.ArgumentParser:
    """-v / -q, accepted before or after the subcommand."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more logging (-vv for debug)",
    )
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="no progress bars")  # fmt: skip
    return p


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
        help="reject ratings off this scale (file datasets; default: inferred and printed)",
    )
    p.add_argument(
        "--item-info",
        metavar="FILE",
        help="item metadata (CSV/TSV/Parquet with a header: an id column such as item_id, a "
        "title column, any others): titles are kept in the model file and shown by "
        "recommend and similar",
    )
    p.add_argument("--min-rating", type=float, help="keep only ratings >= this (positives)")
    p.add_argument("--kcore", type=int, help="iterative k-core on users and items")


def _add_model_args(p: argparse.ArgumentParser, *, split_none: bool = False) -> None:
    extra = "; none: train on all of it" if split_none else ""
    p.add_argument("--split", default="ua", help=SPLIT_HELP + extra)
    p.add_argument("--model", default="biased-mf", help="model name (see `lensrec models`)")
    p.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="hyper-parameter, a Python literal: factors=64, rating_range=(1,5) (repeatable)",
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help="random seed for the split and the model")  # fmt: skip


#: what each optional command adds to the one-line description, when it is registered
_OPTIONAL_ABILITIES = (("tune", "tune"), ("report", "report on"), ("serve", "serve"))


def _description(commands: Sequence[str]) -> str:
    """The one line ``lensrec --help`` opens with: only what the registered commands do."""
    verbs = ["load", "split", "train", "evaluate"]
    verbs += [verb for name, verb in _OPTIONAL_ABILITIES if name in commands]
    return (
        f"Recommender systems on MovieLens or your own ratings: {', '.join(verbs[:-1])} and "
        f"{verbs[-1]} collaborative-filtering models."
    )


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    common = _common()
    parser = argparse.ArgumentParser(
        prog="lensrec",
        description=_description(()),
        formatter_class=_Formatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"lensrec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(parent: Any, name: str, help_: str, **kw: Any) -> argparse.ArgumentParser:
        return parent.add_parser(
            name, help=help_, description=help_, formatter_class=_Formatter, parents=[common], **kw
        )

    data = add(sub, "data", "fetch and inspect datasets")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    p = add(dsub, "fetch", "download (or take the embedded copy of) a MovieLens dataset")
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
    p = add(dsub, "info", "counts, density and rating histogram")
    _add_data_args(p, positional=True)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_data_info)
    p = add(
        dsub, "eda", "PNG histograms of activity, popularity and ratings (needs lensrec[plots])"
    )
    _add_data_args(p, positional=True)
    p.add_argument("--out", default="eda", help="output directory")
    p.set_defaults(func=cmd_data_eda)
    p = add(dsub, "synth", "synthetic interactions written to Parquet in chunks (any size)")
    p.add_argument("--out", required=True,
                   help="FILE.parquet (one file) or a directory (part-NNNNN.parquet files)")  # fmt: skip
    p.add_argument("--like", metavar="NAME", help="the size of a MovieLens dataset, e.g. ml-32m")
    p.add_argument("--users", type=int, help="number of users (overrides --like)")
    p.add_argument("--items", type=int, help="number of items (overrides --like)")
    p.add_argument("--interactions", type=int, help="number of distinct pairs (overrides --like)")
    p.add_argument("--implicit", action="store_true", help="no rating column")
    p.add_argument("--chunk-rows", type=int, default=4_000_000,
                   help="rows generated and written at a time (memory: ~100 bytes each)")  # fmt: skip
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    p.set_defaults(func=cmd_data_synth)

    p = add(sub, "models", "list the models: data they take, what they offer, their parameters")
    p.add_argument("name", nargs="?", help="show only this model (e.g. als)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_models)

    p = add(sub, "train", "train a model on a split's train part (or all data) and save it")
    _add_data_args(p)
    _add_model_args(p, split_none=True)
    p.add_argument("--out", required=True, help="model file to write (.lrec)")
    p.set_defaults(func=cmd_train)

    p = add(sub, "evaluate", "train on a split, evaluate on its test part, record the run")
    _add_data_args(p)
    _add_model_args(p)
    p.add_argument("--k", default="10", help="list length(s) for ranking metrics: 10 or 5,10,20")
    p.add_argument(
        "--metrics",
        help="comma-separated metric names (default: all that apply), e.g. ndcg,recall@20,map_k,rmse",
    )
    p.add_argument(
        "--relevance-threshold",
        type=float,
        help="test ratings >= this count as relevant (default: every test item is relevant)",
    )
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--runs-dir", default=DEFAULT_RUNS, help="where run records go")
    p.set_defaults(func=cmd_evaluate)

    p = add(sub, "recommend", "top-k items for a user, or for a new user from a list of items")
    p.add_argument("model_file")
    p.add_argument(
        "--user", help="external user id (a user the model was trained on; not with --history)"
    )
    p.add_argument(
        "--history",
        metavar="ITEM,ITEM,...",
        help="external item ids of a user the model never saw (fold-in, no refit)",
    )
    p.add_argument("--ratings", metavar="R,R,...", help="their ratings (rating models)")
    p.add_argument("-k", "--k", type=int, default=10, help="list length")
    p.add_argument(
        "--no-exclude",
        "--include-seen",
        dest="no_exclude",
        action="store_true",
        help="do not exclude the items the user has seen (training items or --history)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_recommend)

    p = add(sub, "similar", "items most similar to an item")
    p.add_argument("model_file")
    p.add_argument("--item", required=True, help="external item id")
    p.add_argument("-k", "--k", type=int, default=10, help="list length")
    p.add_argument(
        "--min-count", type=int, default=0,
        help="only items with at least this many training interactions",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_similar)

    p = add(sub, "leaderboard", "table of recorded runs, grouped by protocol")
    p.add_argument("--runs-dir", default=DEFAULT_RUNS, help="where run records are")
    p.add_argument(
        "--metric",
        help="rank each block by this metric: ndcg@10, or a bare name such as ndcg (at k=10 "
        "when the block has it, else its smallest k); the block's other k are shown beside "
        "it (default: ndcg@k, else rmse)",
    )
    p.add_argument("--csv", help="CSV path (default: RUNS_DIR/leaderboard.csv)")
    p.add_argument(
        "--all-runs",
        action="store_true",
        help="every run, not only the latest of each identical configuration",
    )
    p.add_argument("--format", choices=("text", "markdown"), default="text",
                   help="how the table is printed")  # fmt: skip
    p.add_argument("--out", action="append", metavar="PATH",
                   help="also write the table as .csv, .parquet, .md or .txt (repeatable)")  # fmt: skip
    p.set_defaults(func=cmd_leaderboard)

    p = add(sub, "benchmark", "the main job: evaluate configured runs, print their table")
    p.add_argument(
        "config",
        nargs="?",
        help='TOML config: dataset = "..." and [[runs]] tables with model, split, k, params, '
        "min_rating (default: ml-100k, every rating model on ua and every ranking model on "
        "ratings >= 4 / last:3)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="the default benchmark with a fast model of each family (rating: "
        f"{', '.join(_QUICK_RATING)}; ranking: {', '.join(_QUICK_RANKING)}): under a minute "
        "on a first run, compiling included",
    )
    p.add_argument("--runs-dir", default=DEFAULT_RUNS, help="where run records go")
    p.add_argument("--k", type=int, default=10, help="list length for runs that set none")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed for runs that set none")
    p.add_argument("--no-report", action="store_true",
                   help="do not save the models nor write RUNS_DIR/report.html")  # fmt: skip
    p.set_defaults(func=cmd_benchmark)

    import importlib

    for module in COMMAND_MODULES:
        importlib.import_module(module).add_commands(sub, add)
    parser.description = _description(list(sub.choices))
    return parser


def _set_without_equals(argv: Sequence[str]) -> str | None:
    """``--set factors 32`` (a space for the ``=``): the message that names the fix."""
    for j, token in enumerate(argv):
        value = None
        if token == "--set" and j + 1 < len(argv):
            value = argv[j + 1]
        elif token.startswith("--set="):
            value = token[len("--set=") :]
        if value is not None and "=" not in value:
            after = f" {argv[j + 2]}" if token == "--set" and j + 2 < len(argv) else ""
            return (
                f"--set takes name=value, e.g. --set {value}={after.strip() or '...'}; "
                f"got --set {value}{after}"
            )
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    bad_set = _set_without_equals(argv)
    if bad_set:
        print(f"lensrec: error: {bad_set}", file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    args.verbose = getattr(args, "verbose", 0)
    args.quiet = getattr(args, "quiet", False)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("lensrec").setLevel(level)
    warnings.showwarning = _show_warning
    try:
        return int(args.func(args) or 0)
    except LensrecError as exc:
        print(f"lensrec: error: {_one_line(str(exc))}", file=sys.stderr)
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


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
                  line: Any = None) -> None:  # fmt: skip
    """Warnings as one line for people (the source location only with -vv)."""
    where = f" ({filename}:{lineno})" if _log.isEnabledFor(logging.DEBUG) else ""
    print(f"lensrec: warning: {_one_line(str(message))}{where}", file=sys.stderr)


def _one_line(text: str) -> str:
    """Errors are one line; control characters are shown escaped, never sent raw."""
    flat = " ".join(text.split("\n"))
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in flat)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
