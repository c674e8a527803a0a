"""How the rating blend's default components and ``support=True`` were chosen (issue 20), on
validation carved from training parts only, never a test part.

For each split (ml-100k ``ua`` and ``u1`` by default) a random 10% of each user's training
rows is carved off (the carve ``blend`` itself uses for ``holdout="ua"``); every candidate
component is fitted on the rest (through the one validation path) and predicts the carve
(ranking components give their score for the pair). Blends of candidate sets are then scored
by 5-fold cross-validation over the carve's users: ridge weights (``fit_linear``, the
blend's own fit) learned on four folds, RMSE on the fifth. ``--ranking`` does the same for
top-N on ratings >= 4 and ``last:3:row`` (each user's last 3 training positives carved off):
HR@10 of each model and of per-user standardised score sums, weights by 2-fold CV over users.

    LENSREC_THREADS=1 python benchmarks/bench_blend_choice.py            # ~2 min idle
    LENSREC_THREADS=1 python benchmarks/bench_blend_choice.py --ranking
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from lensrec import split as S
from lensrec.data import load_dataset
from lensrec.models import MODELS
from lensrec.models._validation import fit_with_validation
from lensrec.models.base import Query
from lensrec.models.blend import _pair_scores, fit_linear

RATING = ["bpmf", "svdpp", "knn-baseline", "biased-mf", "baseline", "ease", "als"]
SETS = [
    "bpmf",
    "bpmf,svdpp",
    "bpmf,svdpp,knn-baseline",
    "bpmf,svdpp,knn-baseline,biased-mf,baseline",
    "bpmf,svdpp,knn-baseline,biased-mf,baseline,ease",
    "bpmf,svdpp,knn-baseline,biased-mf,baseline,ease,als",
    "bpmf,svdpp,biased-mf,baseline,ease",
]


def _cv_rmse(x: np.ndarray, y: np.ndarray, users: np.ndarray, reg: float = 1e-3) -> float:
    fold = np.random.default_rng(0).integers(0, 5, users.max() + 1)[users]
    err = np.empty_like(y)
    for f in range(5):
        w, b = fit_linear(x[fold != f], y[fold != f], reg)
        err[fold == f] = x[fold == f] @ w + b - y[fold == f]
    return float(np.sqrt(np.mean(err**2)))


def rating_choice(split: str, seed: int) -> None:
    data = load_dataset("ml-100k")
    train = S.make_split(data, split).train
    carved = S.carve_validation(train, "user-random", 0.1, random_state=seed)
    part, valid = carved.train, carved.valid
    y = valid.ratings.astype(np.float64)
    cols = {}
    for name in RATING:
        m = MODELS[name](random_state=seed)
        fit_with_validation(m, part, split=split, random_state=seed)
        if m.capabilities.predicts_ratings:
            cols[name] = np.asarray(m.predict(valid.users, valid.items, clip=False), np.float64)
            alone = np.sqrt(np.mean((np.clip(cols[name], 1, 5) - y) ** 2))
            print(f"{split} seed {seed}  {name:<14} alone: validation RMSE {alone:.4f}")
        else:
            cols[name] = _pair_scores(m, valid.users, valid.items)
    # supports counted as the blend counts them: scaled to the whole training part
    scale = len(train) / len(part)
    su = np.log1p(np.bincount(part.users, minlength=part.n_users)[valid.users] * scale)
    si = np.log1p(np.bincount(part.items, minlength=part.n_items)[valid.items] * scale)
    su, si = su - su.mean(), si - si.mean()
    for spec in SETS:
        p = np.column_stack([cols[n] for n in spec.split(",")])
        plain = _cv_rmse(p, y, valid.users)
        fw = _cv_rmse(np.column_stack([p, p * su[:, None], p * si[:, None], su, si]), y,
                      valid.users)  # fmt: skip
        print(f"{split} seed {seed}  blend {spec:<52} CV RMSE plain {plain:.4f}  support {fw:.4f}")


def ranking_choice(seed: int) -> None:
    data = S.min_rating(load_dataset("ml-100k"), 4)
    carved = S.carve_validation(S.make_split(data, "last:3:row").train, "last", 3, by="row")
    part, valid = carved.train, carved.valid
    seen, v = part.csr().tocsr(), valid.csr().tocsr()
    users = np.flatnonzero(np.diff(v.indptr) > 0).astype(np.int32)
    seen_mask = seen[users].toarray() > 0
    held = [set(v.indices[v.indptr[u] : v.indptr[u + 1]].tolist()) for u in users]

    def hr(scores: np.ndarray, rows: np.ndarray) -> float:
        s = np.where(seen_mask[rows], -np.inf, scores[rows])
        top = np.argpartition(-s, 10, axis=1)[:, :10]
        return float(np.mean([bool(set(top[j].tolist()) & held[r]) for j, r in enumerate(rows)]))

    z = {}
    every = np.arange(len(users))
    for name in ("ease", "slim", "als", "item-knn"):
        m = MODELS[name](random_state=seed)
        fit_with_validation(m, part, split="last:3:row", random_state=seed)
        s = np.asarray(m._score(Query(users, seen[users]), None), np.float64)
        s = np.where(seen_mask, np.nan, s)
        z[name] = np.nan_to_num((s - np.nanmean(s, 1, keepdims=True)) / np.nanstd(s, 1, keepdims=True),
                                nan=-50.0)  # fmt: skip
        print(f"last:3:row  {name:<9} validation HR@10 {hr(z[name], every):.4f}")
    others = ["slim", "als", "item-knn"]
    grid = (0.0, 0.25, 0.5, 1.0)
    fold = np.random.default_rng(seed).integers(0, 2, len(users))
    got = []
    for f in (0, 1):
        tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)

        def mix(w: tuple[float, ...]) -> np.ndarray:
            return z["ease"] + sum(wi * z[o] for wi, o in zip(w, others, strict=True))

        best = max(itertools.product(grid, repeat=3), key=lambda w: hr(mix(w), tr))
        got.append(hr(mix(best), te))
        print(f"last:3:row  fold {f}: weights {dict(zip(others, best, strict=True))} (ease 1), "
              f"held-out users HR@10 {got[-1]:.4f}")  # fmt: skip
    print(f"last:3:row  blend by 2-fold CV: HR@10 {np.mean(got):.4f}; ease alone "
          f"{hr(z['ease'], every):.4f}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--splits", default="ua,u1")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ranking", action="store_true", help="the top-N study instead")
    args = ap.parse_args()
    if args.ranking:
        ranking_choice(args.seed)
        return
    for split in args.splits.split(","):
        rating_choice(split.strip(), args.seed)


if __name__ == "__main__":
    main()
