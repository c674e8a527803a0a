"""Popularity: the baseline every ranker has to beat."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np

from ..data.interactions import Interactions
from ..errors import ConfigError
from ..types import IndexArray, RandomState, ScoreArray
from ._params import Range, Search
from .base import Callback, Capabilities, Query, Recommender, register

__all__ = ["Popularity"]


@register("popularity")
class Popularity(Recommender):
    """Recommend the items most users interacted with (the same list for everyone).

    Parameters
    ----------
    by : {"count", "rating"}, default "count"
        ``"count"`` ranks by number of interactions; ``"rating"`` by the damped mean rating
        ``(sum + damping * global_mean) / (count + damping)`` (needs ratings).
    damping : float, default 10.0
        Pseudo-count pulling rarely rated items toward the global mean (``by="rating"`` only).
    min_rating : float or None
        Count only interactions with rating >= this (positives), when ratings exist.
    random_state : ignored; kept for the common contract.

    Attributes
    ----------
    item_scores_ : float32 [n_items]
        The score of each item.

    Examples
    --------
    >>> from lensrec import Interactions
    >>> from lensrec.models import Popularity
    >>> data = Interactions.from_arrays([1, 1, 2, 3], ["a", "b", "a", "a"])
    >>> model = Popularity().fit(data)
    >>> ids, scores = model.recommend(None, k=2, history=[[]])  # a new user: nothing seen
    >>> data.item_ids.external(ids[0]).tolist()
    ['a', 'b']
    >>> ids, scores = model.recommend([1], k=2)  # user 2 has seen "a": one item left, padded
    >>> ids[0].tolist()
    [1, -1]
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        folds_in=True, similar_items=False, personalized=False
    )

    by: Annotated[Literal["count", "rating"], Search()] = "count"
    damping: Annotated[float, Range(0.0), Search(0.0, 100.0)] = 10.0
    min_rating: float | None = None
    random_state: RandomState = None

    def _fit(
        self,
        train: Interactions,
        valid: Interactions | None,
        gen: np.random.Generator,
        *,
        show_progress: bool,
        callback: Callback | None,
    ) -> None:
        items = train.items
        ratings = train.ratings
        if self.min_rating is not None and ratings is not None:
            keep = ratings >= self.min_rating
            items, ratings = items[keep], ratings[keep]
        counts = np.bincount(items, minlength=train.n_items).astype(np.float64)
        if self.by == "count":
            scores = counts
        else:
            if ratings is None:
                raise ConfigError("Popularity(by='rating') needs ratings; the data is implicit")
            sums = np.bincount(items, weights=ratings, minlength=train.n_items)
            mean = float(ratings.mean()) if ratings.size else 0.0
            scores = (sums + self.damping * mean) / (counts + self.damping + 1e-12)
        self.item_scores_ = scores.astype(np.float32)

    def _score(self, query: Query, items: IndexArray | None) -> ScoreArray:
        s = self.item_scores_ if items is None else self.item_scores_[items]
        return np.broadcast_to(s, (len(query), s.size))
