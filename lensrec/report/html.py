"""``lensrec report``: one self-contained HTML page from the run records.

The page needs no server and no network: figures are PNG images embedded as ``data:`` URIs,
styles are inline, there is no script. It holds, for the runs given (default: the latest run
of each configuration in the runs directory):

- the dataset summary and its EDA histograms;
- per protocol, the leaderboard with bootstrap 95% intervals and the paired test of each run
  against the block's best (:mod:`lensrec.experiments.compare`);
- metric against k for ranking protocols, learning curves of epoch-trained models, maps of
  item and user vectors by UMAP and t-SNE (items coloured by main genre, famous titles
  labelled; users coloured by activity), tuning history and parameter importance of tuned
  runs;
- for a few well-known films (Toy Story, Star Wars, Psycho) each model's most similar items,
  and for a sample user the history and each model's list side by side.

Sections that need fitted models use the models passed in (``lensrec benchmark`` does) or
the model files the runs saved (``extra["model_file"]``); runs without either appear in the
tables only. A figure whose extra is missing is replaced by a line saying what to install.
"""

from __future__ import annotations

import base64
import html
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_bytes
from ..errors import ConfigError, LensrecError, MissingExtraError

__all__ = ["build_report", "ReportOutcome", "FAMOUS", "MAP_LABELS"]

_log = logging.getLogger(__name__)

#: the films whose most similar items the report lists: (name, title pattern)
FAMOUS: tuple[tuple[str, str], ...] = (
    ("Toy Story", r"^Toy Story \(1995\)"),
    ("Star Wars", r"^Star Wars \(1977\)"),
    ("Psycho (horror)", r"^Psycho \(1960\)"),
)

#: titles labelled on the item maps: (label, title pattern)
MAP_LABELS: tuple[tuple[str, str], ...] = (
    ("Star Wars", r"^Star Wars \(1977\)"),
    ("Empire Strikes Back", r"^Empire Strikes Back"),
    ("Return of the Jedi", r"^Return of the Jedi"),
    ("Toy Story", r"^Toy Story \(1995\)"),
    ("Psycho", r"^Psycho \(1960\)"),
    ("The Shining", r"^Shining, The"),
    ("The Godfather", r"^Godfather, The \(1972\)"),
    ("Pulp Fiction", r"^Pulp Fiction"),
    ("Fargo", r"^Fargo \(1996\)"),
)

STAR_WARS = ("Star Wars", "Empire Strikes Back", "Return of the Jedi")

_MAP_MODELS = ("als", "bpr", "warp", "pure-svd", "biased-mf", "svd", "svdpp", "bpmf")
_KS = (1, 2, 5, 10, 20, 50)
_MIN_COUNT = 20  # items on maps and in similar lists: at least this many training rows

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1200px;padding:0 1em;color:#222;line-height:1.4}
h1{margin-bottom:0}h2{border-bottom:2px solid #3b6ea5;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #ddd;padding:.25em .5em;vertical-align:top}
th{background:#eef3f9;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.best td{background:#eaf7ea}td.worse{color:#a33}td.tie{color:#555}
figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}
figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:.85em;color:#555;max-width:760px}
.note{color:#666;font-size:.9em}.hit{font-weight:bold;color:#1b7a1b}
.lists{overflow-x:auto}
"""


@dataclass
class ReportOutcome:
    """The written page, its figures and what was left out (and why)."""

    path: Path
    images: int
    notes: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


def _esc(x: Any) -> str:
    return html.escape(str(x))


class _Page:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.images = 0
        self.notes: list[str] = []

    def add(self, text: str) -> None:
        self.parts.append(text)

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.parts.append(f'<p class="note">{_esc(text)}</p>')

    def figure(self, make: Callable[[], Any], alt: str, caption: str = "") -> bool:
        """Draw a figure and embed it; a missing extra or a failure becomes a note."""
        from ..plots import _png

        try:
            fig = make()
        except MissingExtraError as exc:
            self.note(f"{alt}: not drawn ({exc})")
            return False
        except (ValueError, LensrecError, np.linalg.LinAlgError) as exc:
            self.note(f"{alt}: not drawn ({type(exc).__name__}: {exc})")
            return False
        data = base64.b64encode(_png(fig)).decode("ascii")
        self.images += 1
        cap = f"<figcaption>{_esc(caption)}</figcaption>" if caption else ""
        self.add(
            f'<figure><img alt="{_esc(alt)}" src="data:image/png;base64,{data}">{cap}</figure>'
        )
        return True


def _spec_of(rec: Any) -> Any:
    from ..experiments import RunSpec

    filters = rec.extra.get("filters") or {}
    return RunSpec(
        dataset=rec.dataset,
        split=rec.split,
        model=rec.model,
        seed=rec.extra.get("seed"),
        min_rating=filters.get("min_rating"),
        kcore=filters.get("kcore"),
    )


def _find_titles(titles: Sequence[str], patterns: Sequence[tuple[str, str]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, pattern in patterns:
        rx = re.compile(pattern)
        hit = next((i for i, t in enumerate(titles) if t and rx.search(t)), None)
        if hit is not None:
            out[name] = hit
    return out


def build_report(
    runs_dir: str | Path = "runs",
    *,
    run_ids: Sequence[str] | None = None,
    out: str | Path | None = None,
    models: Mapping[str, Any] | None = None,
    maps: bool = True,
    title: str = "lensrec report",
    progress: Callable[[str], None] | None = None,
) -> ReportOutcome:
    """Write the HTML report of the runs in ``runs_dir`` and return where it went.

    ``run_ids`` restricts it to those runs (default: the latest run of each configuration);
    ``out`` defaults to ``<runs_dir>/report.html``; ``models`` maps run ids to fitted models
    (otherwise the runs' saved model files are loaded where they exist); ``maps=False`` skips
    the UMAP / t-SNE maps (the slowest part). Raises :class:`ConfigError` when there is no
    run record, or when matplotlib is missing (``lensrec[plots]``).
    """
    from ..experiments import leaderboard, load_runs
    from ..experiments.compare import add_stats
    from ..plots import _require_matplotlib

    _require_matplotlib()
    t0 = time.perf_counter()
    say = progress or (lambda text: None)
    board = leaderboard(runs_dir, run_ids=run_ids)
    if board.height == 0:
        raise ConfigError(f"no run records in {runs_dir}; run `lensrec benchmark` first")
    board = add_stats(board, runs_dir)
    records = {r.run_id: r for r in load_runs(runs_dir)}
    wanted = [records[i] for i in board["run_id"].to_list() if i in records]
    page = _Page()
    page.add(f"<h1>{_esc(title)}</h1>")
    page.add(
        f'<p class="note">{len(wanted)} runs from {_esc(Path(runs_dir).resolve())}; written '
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Intervals are bootstrap 95% "
        "intervals over users; p-values are two-sided paired t-tests over the same users "
        "against the best run of the block.</p>"
    )
    fitted = _models_of(wanted, models or {}, page)

    # --- data: one load per (dataset, filters) -----------------------------------------
    from ..experiments import data_summary, load_spec_data

    datasets: dict[tuple[Any, ...], Any] = {}
    for rec in wanted:
        spec = _spec_of(rec)
        key = (spec.dataset, spec.min_rating, spec.kcore)
        if key not in datasets:
            try:
                datasets[key] = load_spec_data(spec)
            except (LensrecError, OSError) as exc:
                page.note(f"{spec.dataset}: data not loaded ({exc}); model sections skipped")
                datasets[key] = None
    page.add("<h2>Data</h2>")
    from ..experiments.spec import filter_text
    from ..plots import eda_figures

    for (name, min_rating, kcore), data in datasets.items():
        if data is None:
            continue
        page.add(f"<h3>{_esc(name)} (filters: {_esc(filter_text(min_rating, kcore))})</h3>")
        page.add(f"<p>{_esc(data_summary(data))}</p>")
        try:
            figs = eda_figures(data)
        except MissingExtraError as exc:
            page.note(str(exc))
            figs = {}
        for fname, fig in figs.items():
            page.figure(_ready(fig), fname.removesuffix(".png").replace("_", " "))

    # --- per protocol ------------------------------------------------------------------
    from ..experiments import PROTOCOL_COLUMNS

    stats: dict[str, Any] = {}
    for _, part in board.group_by(list(PROTOCOL_COLUMNS), maintain_order=True):
        rows = part.to_dicts()
        first = rows[0]
        metric = first.get("metric") or "-"
        head = (f"{first['dataset']} · filters {first['filters']} · split {first['split']} · "
                f"seed {first['seed']}")  # fmt: skip
        page.add(f"<h2>{_esc(head)}</h2>")
        page.add(_board_table(rows, metric))
        recs = [records[r["run_id"]] for r in rows if r["run_id"] in records]
        spec = _spec_of(recs[0])
        data = datasets.get((spec.dataset, spec.min_rating, spec.kcore))
        here = {r.run_id: fitted[r.run_id] for r in recs if r.run_id in fitted}
        _tuning_section(page, recs)
        if data is None or not here:
            if not here:
                page.note("no fitted model for these runs (run with a saved model, e.g. "
                          "`lensrec benchmark`): tables only")  # fmt: skip
            continue
        from .. import split as splits

        if splits.is_fold_family(spec.split):
            page.note(f"{spec.split} is a cross-validation family: model sections skipped")
            continue
        sp = splits.make_split(data, spec.split, random_state=spec.seed)
        names = {rid: records[rid].model for rid in here}
        ranking = "@" in metric
        say(f"report: {head}")
        if ranking:
            _metric_vs_k(page, here, names, sp)
        _learning_section(page, here, names)
        if maps:
            stats.update(_maps_section(page, here, names, sp, ranking, spec.seed or 0))
        _similar_section(page, here, names, sp)
        _user_section(page, here, names, sp, spec.seed or 0)

    page.add(f'<p class="note">built in {time.perf_counter() - t0:.1f}s by lensrec.</p>')
    target = Path(out) if out is not None else Path(runs_dir) / "report.html"
    text = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(page.parts)
        + "\n</body></html>\n"
    )
    atomic_write_bytes(target, text.encode("utf-8"), what="the report")
    return ReportOutcome(target, page.images, page.notes, stats)


def _models_of(recs: Sequence[Any], given: Mapping[str, Any], page: _Page) -> dict[str, Any]:
    from ..models import load

    out: dict[str, Any] = {}
    for rec in recs:
        if rec.run_id in given:
            out[rec.run_id] = given[rec.run_id]
            continue
        path = rec.extra.get("model_file")
        if path and Path(path).is_file():
            try:
                out[rec.run_id] = load(path)
            except LensrecError as exc:
                page.notes.append(f"{path}: not loaded ({exc})")
    return out


def _num(v: Any, digits: int = 4, sign: bool = False) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def _board_table(rows: list[dict[str, Any]], metric: str) -> str:
    from ..experiments.compare import _p_text, _verdict
    from ..experiments.leaderboard import _lower_is_better

    better = "lower" if metric != "-" and _lower_is_better(metric) else "higher"
    out = [f"<p>Ranked by <b>{_esc(metric)}</b> ({better} is better); relevant: "
           f"{_esc(rows[0].get('relevance'))}.</p>",
           "<table><tr><th>#</th><th>model</th><th>parameters (changed)</th>"
           f"<th>{_esc(metric)}</th><th>95% CI</th><th>vs best</th><th>95% CI of the "
           "difference</th><th>p</th><th>verdict</th><th>users</th><th>fit s</th></tr>"]  # fmt: skip
    for rank, r in enumerate(rows, start=1):
        verdict = _verdict(r, rank == 1)
        ci = (
            f"[{_num(r.get('ci_lo'))}, {_num(r.get('ci_hi'))}]"
            if r.get("ci_lo") is not None
            else "–"
        )
        dci = (f"[{_num(r.get('vs_best_lo'), sign=True)}, {_num(r.get('vs_best_hi'), sign=True)}]"
               if r.get("vs_best_lo") is not None else "–")  # fmt: skip
        out.append(
            f'<tr class="{"best" if rank == 1 else ""}"><td class="num">{rank}</td>'
            f"<td>{_esc(r['model'])}</td><td>{_esc(r.get('changed') or '')}</td>"
            f'<td class="num">{_num(r.get("value"))}</td><td class="num">{ci}</td>'
            f'<td class="num">{_num(r.get("vs_best"), sign=True)}</td><td class="num">{dci}</td>'
            f'<td class="num">{_esc(_p_text(r.get("p_vs_best")))}</td>'
            f'<td class="{verdict}">{verdict}</td><td class="num">{r.get("n_users") or "–"}</td>'
            f'<td class="num">{_num(r.get("fit_seconds"), 2)}</td></tr>'
        )
    out.append("</table>")
    return "\n".join(out)


def _tuning_section(page: _Page, recs: Sequence[Any]) -> None:
    from .figures import importance_bars, tuning_history

    for rec in recs:
        tuning = rec.extra.get("tuning")
        if not tuning:
            continue
        t = tuning.get("trials", {})
        page.add(
            f"<h3>Tuning of {_esc(rec.model)}</h3><p>{_esc(tuning.get('method'))} search, "
            f"{t.get('complete', 0)} complete, {t.get('pruned', 0)} pruned, {t.get('fail', 0)} "
            f"failed trials, {_esc(tuning.get('on'))}; best {_esc(tuning.get('metric'))} "
            f"{_num(tuning.get('best_value'), 5)}"
            + (
                f" (defaults: {_num(tuning.get('default_value'), 5)})"
                if tuning.get("default_value") is not None
                else ""
            )  # fmt: skip
            + f"; study {_esc(tuning.get('study'))}.</p>"
        )
        page.figure(
            partial(
                tuning_history,
                tuning.get("history", []),
                tuning["metric"],
                tuning.get("direction", "minimize"),
            ),
            f"tuning history of {rec.model}",
            "each dot a trial's validation value; the line the best so far",
        )
        if tuning.get("importances"):
            page.figure(partial(importance_bars, tuning["importances"]),
                        f"parameter importance for {rec.model}")  # fmt: skip


def _ready(fig: Any) -> Callable[[], Any]:
    """A figure already drawn, as the maker ``_Page.figure`` takes."""
    return lambda: fig


def _metric_vs_k(page: _Page, models: Mapping[str, Any], names: Mapping[str, str], sp: Any) -> None:
    from ..evaluate import evaluate
    from .figures import metric_vs_k

    curves: dict[str, dict[str, tuple[list[int], list[float]]]] = {"ndcg": {}, "recall": {}}
    for rid, model in models.items():
        try:
            res = evaluate(model, sp.train, sp.test, k=list(_KS), metrics=["ndcg", "recall"],
                           ci=False)  # fmt: skip
        except LensrecError as exc:
            page.notes.append(f"{names[rid]}: metric against k not computed ({exc})")
            continue
        for m in curves:
            curves[m][names[rid]] = (list(_KS), [res.metrics[f"{m}@{k}"] for k in _KS])
    page.add("<h3>Metric against k</h3>")
    for m, c in curves.items():
        if c:
            page.figure(partial(metric_vs_k, c, f"{m}@k"), f"{m} against k",
                        "every test item relevant; the same split and users as the table")  # fmt: skip


def _learning_section(page: _Page, models: Mapping[str, Any], names: Mapping[str, str]) -> None:
    from .figures import learning_curves

    hist: dict[str, Any] = {}
    for rid, model in models.items():
        h = getattr(model, "validation_history_", None) or getattr(model, "history_", None)
        if isinstance(h, Mapping) and any(len(v) for v in h.values() if isinstance(v, list)):
            hist[names[rid]] = {k: v for k, v in h.items() if isinstance(v, list)}
    if hist:
        page.add("<h3>Learning curves</h3>")
        page.figure(
            lambda: learning_curves(hist),
            "learning curves",
            "train loss (blue, left axis) and validation metric (orange, right axis) per "
            "epoch, on the validation part carved from train; the circle marks the epoch kept",
        )


def _map_model(models: Mapping[str, Any], names: Mapping[str, str]) -> str | None:
    by_name = {names[rid]: rid for rid in models}
    for name in _MAP_MODELS:
        rid = by_name.get(name)
        if rid is None:
            continue
        m = models[rid]
        v = getattr(m, "item_factors_", None)
        if isinstance(v, np.ndarray) and v.ndim == 2 and v.shape[1] >= 2:
            return rid
    return None


def _maps_section(
    page: _Page,
    models: Mapping[str, Any],
    names: Mapping[str, str],
    sp: Any,
    ranking: bool,
    seed: int,
) -> dict[str, Any]:
    from .figures import embed_2d, item_map, main_genres, user_map

    rid = _map_model(models, names)
    if rid is None:
        return {}
    model = models[rid]
    train = sp.train
    counts = np.bincount(train.items, minlength=train.n_items)
    keep = np.flatnonzero(counts >= _MIN_COUNT)
    if keep.size < 10:
        return {}
    vectors = np.asarray(model.item_factors_)[keep]
    titles_all = list(train.titles(np.arange(train.n_items))) if train.item_info is not None else []
    titles = [titles_all[i] for i in keep] if titles_all else [""] * keep.size
    genres: list[str] = ["unknown"] * keep.size
    info = train.item_info
    if info is not None and "genres" in info.columns:
        lut = dict(zip(info["item_id"].to_list(), info["genres"].to_list(), strict=True))
        ext = train.item_ids.external(keep).tolist()
        genres = main_genres([lut.get(e) for e in ext])
    label = _find_titles(titles, MAP_LABELS)
    label_rows = {row: name for name, row in label.items()}
    page.add(f"<h3>Maps of {_esc(names[rid])}'s vectors</h3>")
    stats: dict[str, Any] = {}
    for method, nice in (("umap", "UMAP"), ("tsne", "t-SNE")):
        holder: dict[str, np.ndarray] = {}

        def draw(method: str = method, nice: str = nice, holder: dict = holder) -> Any:
            xy = embed_2d(vectors, method, random_state=seed)
            holder["xy"] = xy
            return item_map(xy, genres, titles, label_rows,
                            title=f"{nice} of {names[rid]} item vectors "
                            f"({keep.size} items with >= {_MIN_COUNT} training rows)")  # fmt: skip

        caption = "colour: main genre (names in their colours at the right); circled: famous titles"
        drawn = page.figure(draw, f"item map ({nice})", caption)
        if drawn and all(n in label for n in STAR_WARS):
            xy = holder["xy"]
            rows = [label[n] for n in STAR_WARS]
            d = np.linalg.norm(xy[:, None, :] - xy[None, :, :], axis=2)
            sw = float(np.mean([d[a, b] for i, a in enumerate(rows) for b in rows[i + 1 :]]))
            all_pairs = d[np.triu_indices(len(xy), 1)]
            share = float(np.mean(all_pairs < sw))
            stats[f"star_wars_{method}_{names[rid]}"] = {"mean_distance": sw,
                                                         "share_of_pairs_closer": share}  # fmt: skip
            page.add(f'<p class="note">Star Wars trilogy on the {nice} map: mean distance '
                     f"{sw:.2f}; {share:.1%} of all item pairs are closer.</p>")  # fmt: skip
    users = getattr(model, "user_factors_", None)
    if isinstance(users, np.ndarray) and users.ndim == 2:
        act = np.bincount(train.users, minlength=train.n_users)
        page.figure(
            lambda: user_map(
                embed_2d(users, "umap", random_state=seed),
                act,
                title=f"UMAP of {names[rid]} user vectors",
            ),  # fmt: skip
            "user map (UMAP)",
            "colour: the user's number of training rows",
        )
    return stats


def _similar_section(
    page: _Page, models: Mapping[str, Any], names: Mapping[str, str], sp: Any
) -> None:
    train = sp.train
    if train.item_info is None:
        return
    titles = list(train.titles(np.arange(train.n_items)))
    films = _find_titles(titles, FAMOUS)
    usable = {rid: m for rid, m in models.items() if type(m).capabilities.similar_items}
    if not films or not usable:
        return
    counts = np.bincount(train.items, minlength=train.n_items)
    cand = np.flatnonzero(counts >= _MIN_COUNT)
    page.add(f"<h3>Most similar items</h3><p class=\"note\">among items with at least "
             f"{_MIN_COUNT} training rows</p>")  # fmt: skip
    for film, item in films.items():
        page.add(f"<h4>{_esc(film)}: {_esc(titles[item])}</h4><table><tr><th>model</th>"
                 + "".join(f"<th>{i}</th>" for i in range(1, 6)) + "</tr>")  # fmt: skip
        for rid, model in usable.items():
            try:
                ids, _ = model.similar_items([item], 5, candidates=cand)
            except LensrecError as exc:
                page.notes.append(f"{names[rid]}: no similar items ({exc})")
                continue
            cells = "".join(f"<td>{_esc(titles[i]) if i >= 0 else '–'}</td>" for i in ids[0])
            page.add(f"<tr><td>{_esc(names[rid])}</td>{cells}</tr>")
        page.add("</table>")


def _user_section(
    page: _Page, models: Mapping[str, Any], names: Mapping[str, str], sp: Any, seed: int
) -> None:
    train, test = sp.train, sp.test
    counts = np.bincount(train.users, minlength=train.n_users)
    tested = np.unique(test.users)
    if tested.size == 0:
        return
    med = np.median(counts[tested])
    gen = np.random.default_rng(seed)
    near = tested[np.argsort(np.abs(counts[tested] - med), kind="stable")[:20]]
    user = int(gen.choice(near))
    titles = (list(train.titles(np.arange(train.n_items))) if train.item_info is not None
              else [str(x) for x in train.item_ids.external(np.arange(train.n_items)).tolist()])  # fmt: skip
    rows = np.flatnonzero(train.users == user)
    if train.timestamps is not None:
        rows = rows[np.argsort(train.timestamps[rows], kind="stable")]
    recent = rows[-10:][::-1]
    held = set(test.items[test.users == user].tolist())
    ext = train.user_ids.external(np.array([user])).tolist()[0]
    page.add(f"<h3>A sample user: {_esc(ext)}</h3><p>{counts[user]} training rows "
             "(about the median of the tested users); the 10 latest, newest first:</p><ul>")  # fmt: skip
    for r in recent:
        rating = f" ({train.ratings[r]:g})" if train.ratings is not None else ""
        page.add(f"<li>{_esc(titles[train.items[r]])}{rating}</li>")
    page.add("</ul><p>Held out for test: "
             + "; ".join(_esc(titles[i]) for i in sorted(held)) + "</p>")  # fmt: skip
    lists: dict[str, list[int]] = {}
    for rid, model in models.items():
        try:
            ids, _ = model.recommend([user], 10)
        except LensrecError as exc:
            page.notes.append(f"{names[rid]}: no list for the sample user ({exc})")
            continue
        lists[names[rid]] = [int(i) for i in ids[0]]
    if not lists:
        return
    page.add('<div class="lists"><table><tr><th>#</th>'
             + "".join(f"<th>{_esc(m)}</th>" for m in lists) + "</tr>")  # fmt: skip
    for pos in range(10):
        cells = []
        for ids in lists.values():
            i = ids[pos] if pos < len(ids) else -1
            if i < 0:
                cells.append("<td>–</td>")
            elif i in held:
                cells.append(f'<td class="hit">{_esc(titles[i])} ✓</td>')
            else:
                cells.append(f"<td>{_esc(titles[i])}</td>")
        page.add(f'<tr><td class="num">{pos + 1}</td>{"".join(cells)}</tr>')
    page.add('</table></div><p class="note">✓ in bold: an item the user has in the test part; '
             "seen items are excluded</p>")  # fmt: skip
