"""Write the recommend / similar_items lists every model gives on small seeded data.

Run once before a change to the ranking path (``python tests/retrieval/make_known_lists.py``)
and commit ``known_lists.json``; ``test_known_lists.py`` then checks that the lists are
unchanged. Fits run with ``LENSREC_THREADS=1`` so they are bitwise repeatable.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ["LENSREC_THREADS"] = "1"

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "known_lists.json"

#: small, fast settings so the whole set fits in a test run; the defaults otherwise
PARAMS: dict[str, dict] = {
    "popularity": {},
    "baseline": {},
    "biased-mf": {"epochs": 5},
    "svd": {"epochs": 5},
    "svdpp": {"epochs": 3},
    "knn-baseline": {},
    "bpmf": {"n_samples": 10, "burn_in": 5, "implicit": "none"},  # the lists of 2026-11
    "als": {"epochs": 3},
    "bpr": {"epochs": 3},
    "warp": {"epochs": 3},
    "ease": {},
    "slim": {},
    "pure-svd": {},
    "item-knn": {},
}


def data():
    from lensrec.data.synthetic import synthetic

    return synthetic(300, 120, 6000, random_state=7)


def lists() -> dict:
    from lensrec.models import make_model

    inter = data()
    out: dict = {}
    users = np.arange(0, 300, 7, dtype=np.int32)
    items = np.arange(0, 120, 11, dtype=np.int32)
    hist_items = [np.array([3, 17, 40]), np.array([1]), np.array([5, 6, 7, 8, 9, 60])]
    hist_ratings = [np.array([5.0, 4.0, 2.0]), np.array([3.0]), np.array([5, 4, 3, 2, 1, 5.0])]
    cands = np.arange(0, 120, 2, dtype=np.int32)
    for name, params in PARAMS.items():
        model = make_model(name, dict(params))
        if "random_state" in model.get_params():
            model.set_params(random_state=3)
        model.fit(inter)
        caps = type(model).capabilities
        entry: dict = {}
        ids, scores = model.recommend(users, k=10)
        entry["recommend"] = [ids.tolist(), scores.tolist()]
        ids, scores = model.recommend(users, k=5, items=cands)
        entry["recommend_candidates"] = [ids.tolist(), scores.tolist()]
        ids, scores = model.recommend(users[:10], k=8, exclude=None)
        entry["recommend_no_exclude"] = [ids.tolist(), scores.tolist()]
        if caps.folds_in:
            ratings = hist_ratings if caps.fold_in_needs_ratings else None
            ids, scores = model.recommend_for_history(hist_items, k=10, ratings=ratings)
            entry["history"] = [ids.tolist(), scores.tolist()]
        if caps.similar_items:
            ids, scores = model.similar_items(items, k=10)
            entry["similar"] = [ids.tolist(), scores.tolist()]
        out[name] = {"params": params, **entry}
    return out


if __name__ == "__main__":
    result = lists()
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    target.write_text(json.dumps(result, separators=(",", ":")))
    print(f"wrote {target}: {', '.join(result)}")
