"""Retrieval: the layer between models and their callers.

A model hands over item vectors (dot-product models, biases folded in) or a scoring function
(everything else); an index answers "top-k for these queries, excluding these items, among
these candidates" in one call, ``index.search(queries, k, exclude=, candidates=)``:

- :class:`ExactIndex` (blocked matrix products and the shared numba top-k; the default) and
  :class:`ScoreIndex` (the same over a model's scores);
- :class:`~lensrec.retrieval.ann.ANNIndex`, approximate, opt-in per model
  (``model.build_index("ann")``) or per call (``recommend(..., index="ann")``);
- :class:`PrecomputedIndex`, stored top-K lists, what an exported store serves.

Around them: the fallback chain (a user with an empty or all-unknown history gets the
popularity ranking, flagged in :class:`Recommendations`), and translation between the ids
people use and the indices models use, with result rows (titles, training counts) for the
command line and the HTTP server (:mod:`lensrec.retrieval.ids`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._ann_glue import build_ann
from ._blocks import blocked_topk, exclusion_parts
from .exact import ExactIndex, ScoreIndex
from .fallback import popularity_counts, popularity_index
from .ids import (
    ItemList,
    recommend_history,
    recommend_user,
    similar,
    translate_history,
)
from .precomputed import PrecomputedIndex, precompute
from .results import (
    FALLBACK_EMPTY_HISTORY,
    FALLBACK_NO_FOLD_IN,
    FALLBACK_UNUSABLE_HISTORY,
    Recommendations,
)

if TYPE_CHECKING:
    from .ann import ANNIndex

__all__ = [
    "ANNIndex",
    "ExactIndex",
    "ScoreIndex",
    "PrecomputedIndex",
    "Recommendations",
    "ItemList",
    "FALLBACK_EMPTY_HISTORY",
    "FALLBACK_NO_FOLD_IN",
    "FALLBACK_UNUSABLE_HISTORY",
    "blocked_topk",
    "build_ann",
    "exclusion_parts",
    "popularity_counts",
    "popularity_index",
    "precompute",
    "recommend_history",
    "recommend_user",
    "similar",
    "translate_history",
]


def __getattr__(name: str) -> Any:
    if name == "ANNIndex":
        from .ann import ANNIndex

        return ANNIndex
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
