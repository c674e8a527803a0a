"""lensrec Item2Vec vs gensim's Word2Vec used directly, as the item2vec notebook uses it.

ml-100k, ratings >= 4 as positives, each user's last 3 positives as test: by u.data's row
order (``last:3:row``, the notebook's protocol) and, with ``--split last:3``, by timestamp.
Both sides get the same training part, and both are scored by ``lensrec.evaluate.evaluate``
on the same test part (HR@10, NDCG@10, Recall@10; seen items excluded).

- gensim direct: sentences are each user's training items in the split's order (tokens: the
  external item ids), ``Word2Vec(sg=1, window=5, negative=16, ns_exponent=-0.14,
  min_count=3, vector_size=64, epochs=50, workers=1, seed)``; a user's list is
  ``predict_output_word(history, topn=k + len(history))`` with the whole training history as
  context, seen items dropped, the first ``k`` kept (a user none of whose items is in the
  vocabulary gets an empty list).
- lensrec: ``Item2Vec`` at its defaults (``order="row"`` on ``:row`` splits: CBOW over the
  whole history, ns_exponent -0.5), plus, first seed only, ``scoring="mean"`` and lensrec at
  the notebook's settings (``NOTEBOOK_LENSREC``).

Both sides get the same gensim seed for a ``--seeds`` value: lensrec draws it from its
generator (``seed_from(default_rng(seed))``) and gensim direct is given that number, so
"lensrec at the notebook's settings" must equal gensim direct list for list (it differs
only in ``subsample="auto"`` = 1.15 / 1,161 = 0.00099 instead of 0.001, so the row uses
0.001 explicitly).

Fit seconds are wall time of one fit (gensim: building the vocabulary and training).
``--workers 2`` adds both sides with two gensim workers (first seed only; not repeatable
under a seed).

``--tune`` instead compares lensrec Item2Vec settings (``GRID``) on a validation set carved
from the training part only (each user's last 3 training positives, in the split's order),
over ``--seeds``: how the defaults were chosen; the test part is not looked at.

    python benchmarks/bench_item2vec.py [--split last:3:row] [--seeds 0 1 2] [--workers 2]
    python benchmarks/bench_item2vec.py --tune --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from lensrec._config import seed_from
from lensrec.data import load_dataset
from lensrec.evaluate import evaluate
from lensrec.models import MODELS
from lensrec.models.item2vec import user_sentences
from lensrec.split import carve_validation, make_split, min_rating

METRICS = ["hit_rate@10", "ndcg@10", "recall@10"]
#: settings compared by --tune (on validation only)
GRID: list[dict[str, Any]] = [
    # the notebook's settings (skip-gram, window 5, ns_exponent -0.14, gensim's subsample)
    {"architecture": "skip-gram", "window": 5, "ns_exponent": -0.14, "subsample": 0.001},
    {"architecture": "cbow", "window": 5, "ns_exponent": -0.14},
    {"architecture": "cbow", "window": "all", "ns_exponent": -0.14},
    {},  # the defaults: cbow, window "all", ns_exponent -0.5
    {"ns_exponent": 0.75},
    {"ns_exponent": -1.0},
    {"epochs": 25},
    {"epochs": 100},
    {"negatives": 5},
    {"subsample": 0.0},
    {"factors": 128},
]
NOTEBOOK = dict(sg=1, window=5, negative=16, ns_exponent=-0.14, min_count=3, vector_size=64,
                epochs=50)  # fmt: skip
#: the same settings as lensrec Item2Vec parameters (gensim's default subsample 0.001)
NOTEBOOK_LENSREC = dict(architecture="skip-gram", window=5, negatives=16, ns_exponent=-0.14,
                        min_count=3, factors=64, epochs=50, subsample=0.001)  # fmt: skip


class GensimDirect:
    """The notebook's recommender: ``predict_output_word`` over the whole history."""

    def __init__(self, train: Any, order: str, seed: int, workers: int = 1):
        from gensim.models import Word2Vec

        self.train = train
        sentences = user_sentences(train, order)  # item indices as tokens, the split's order
        ext = train.item_ids.ids.astype(str)
        self.sentences = [[ext[int(t)] for t in s] for s in sentences]
        t0 = time.perf_counter()
        self.w2v = Word2Vec(sentences=self.sentences, seed=seed, workers=workers, **NOTEBOOK)
        self.fit_seconds = time.perf_counter() - t0
        self.ext = ext
        self.lookup = {e: i for i, e in enumerate(ext)}
        users = np.unique(train.users)
        self.by_user = dict(zip(users.tolist(), self.sentences, strict=True))

    def recommend(self, users: Any, k: int = 10, **_: Any) -> tuple[np.ndarray, np.ndarray]:
        users = np.asarray(users)
        ids = np.full((users.size, k), -1, dtype=np.int32)
        scores = np.full((users.size, k), -np.inf, dtype=np.float32)
        for r, u in enumerate(users.tolist()):
            hist = self.by_user.get(u, [])
            got = self.w2v.predict_output_word(hist, topn=k + len(hist)) if hist else None
            if not got:
                continue
            seen = set(hist)
            kept = [(w, p) for w, p in got if w not in seen][:k]
            ids[r, : len(kept)] = [self.lookup[w] for w, _ in kept]
            scores[r, : len(kept)] = [p for _, p in kept]
        return ids, scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--split", default="last:3:row")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--tune", action="store_true", help="compare GRID on a carved validation set")
    ap.add_argument("--grid", type=json.loads, help="with --tune: a JSON list of settings")
    args = ap.parse_args()

    data = min_rating(load_dataset("ml-100k"), 4)
    sp = make_split(data, args.split)
    order = "row" if args.split.endswith(":row") else "time"
    if args.tune:
        tune(sp.train, order, args.seeds, args.grid or GRID)
        return
    print(
        f"ml-100k ratings >= 4, {args.split}: {len(sp.train):,} train / {len(sp.test):,} test rows"
    )
    rows: list[tuple[str, int, float, dict[str, float]]] = []
    for seed in args.seeds:
        first = seed == args.seeds[0]  # the variants (mean scoring, more workers) once
        for workers in sorted({1, args.workers}) if first else [1]:
            gensim_seed = seed_from(np.random.default_rng(seed))  # the one lensrec draws
            g = GensimDirect(sp.train, order, gensim_seed, workers)
            res = evaluate(g, sp.train, sp.test, k=10, metrics=METRICS, ci=False)
            rows.append((f"gensim direct (workers={workers})", seed, g.fit_seconds, res.metrics))
            for label, params in (
                ("lensrec Item2Vec (defaults)", {}),
                ("lensrec Item2Vec scoring=mean", {"scoring": "mean"}),
                ("lensrec Item2Vec at the notebook's settings", NOTEBOOK_LENSREC),
            ):
                if params and (workers > 1 or not first):
                    continue
                model = MODELS["item2vec"](
                    order=order, workers=workers, random_state=seed, **params
                )
                model.fit(sp.train)
                res = evaluate(model, sp.train, sp.test, k=10, metrics=METRICS, ci=False)
                rows.append((f"{label} (workers={workers})", seed, model.fit_seconds_, res.metrics))
    print(f"\n| model | seed | fit s | {' | '.join(METRICS)} |")
    print("|---|---|---|" + "---|" * len(METRICS))
    for label, seed, secs, m in rows:
        vals = " | ".join(f"{m[name]:.4f}" for name in METRICS)
        print(f"| {label} | {seed} | {secs:.2f} | {vals} |")
    if len(args.seeds) > 1:
        print("\nmeans over seeds:")
        for label in dict.fromkeys(r[0] for r in rows):
            ms = [r[3] for r in rows if r[0] == label]
            secs = np.mean([r[2] for r in rows if r[0] == label])
            vals = " | ".join(f"{np.mean([m[n] for m in ms]):.4f}" for n in METRICS)
            print(f"| {label} | mean | {secs:.2f} | {vals} |")


def tune(train: Any, order: str, seeds: list[int], grid: list[dict[str, Any]]) -> None:
    carved = carve_validation(train, "last", 3, by="row" if order == "row" else "timestamp")
    print(f"validation: each user's last 3 training rows by {order}: {len(carved.valid):,} rows")
    print(f"| params | {' | '.join(METRICS)} | fit s |")
    print("|---|" + "---|" * (len(METRICS) + 1))
    for params in grid:
        ms, secs = [], []
        for seed in seeds:
            model = MODELS["item2vec"](order=order, random_state=seed, **params)
            model.fit(carved.train)
            res = evaluate(model, carved.train, carved.valid, k=10, metrics=METRICS, ci=False)
            ms.append(res.metrics)
            secs.append(model.fit_seconds_)
        vals = " | ".join(f"{np.mean([m[n] for m in ms]):.4f}" for n in METRICS)
        print(f"| {params} | {vals} | {np.mean(secs):.1f} |", flush=True)


if __name__ == "__main__":
    main()
