"""Between the ids people use and the indices models use: translate a query, shape an answer.

The command line and the HTTP server call these; notebooks can too. A query names users
and items by their external ids (int, str or UUID, as in the data); an answer is an
:class:`ItemList` of external item ids with scores, titles and training counts, which says
whether the fallback chain answered and which ids of the query were unknown (never dropped
without a word).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..errors import ConfigError, UnknownIdError
from .results import FALLBACK_NO_FOLD_IN, Recommendations

__all__ = [
    "ItemList",
    "translate_history",
    "recommend_user",
    "recommend_history",
    "similar",
    "training_counts",
    "MAX_UNKNOWN_SHOWN",
]

#: unknown ids quoted in an answer (all are counted)
MAX_UNKNOWN_SHOWN = 5


@dataclass(frozen=True)
class ItemList:
    """One answer for a person: a ranked list of items, by external id.

    Attributes
    ----------
    items : list
        External item ids, best first (no padding: the list may be shorter than ``k``).
    scores : float32 array
        Their scores (``score_name`` says what they are).
    titles : list of str
        Titles when the model file has them, else empty strings.
    n_train : int array or None
        Training interactions of each item (None when the model holds no training data).
    score_name : str
        ``"score"``, ``"predicted"`` (ratings), ``"similarity"`` or ``"popularity"``.
    fallback : str or None
        Why the fallback chain answered instead of the model (None: the model answered).
    unknown : list
        The first few query ids the model does not know (``n_unknown`` counts them all).
    n_unknown : int
        How many ids of the query were unknown and left out.
    used : int
        How many history items were used (known ids), for a history query.
    """

    items: list[Any]
    scores: np.ndarray
    titles: list[str]
    n_train: np.ndarray | None
    score_name: str = "score"
    fallback: str | None = None
    unknown: list[Any] = field(default_factory=list)
    n_unknown: int = 0
    used: int = 0

    def __len__(self) -> int:
        return len(self.items)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per item: ``rank``, ``item``, ``title``, ``score`` and ``n_train``."""
        out = []
        for r, (ext, title, s) in enumerate(
            zip(self.items, self.titles, self.scores.tolist(), strict=True)
        ):
            row: dict[str, Any] = {"rank": r + 1, "item": ext, "title": title, "score": float(s)}
            if self.n_train is not None:
                row["n_train"] = int(self.n_train[r])
            out.append(row)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the rows, the fallback flag and reason, and the unknown ids."""
        return {
            "items": self.rows(),
            "score": self.score_name,
            "fallback": self.fallback is not None,
            "fallback_reason": self.fallback,
            "unknown_items": list(self.unknown),
            "n_unknown": self.n_unknown,
        }

    def to_frame(self) -> Any:
        """The rows as a polars DataFrame."""
        import polars as pl

        rows = self.rows()
        schema = ["rank", "item", "title", "score"] + (
            ["n_train"] if self.n_train is not None else []
        )
        return pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)


def training_counts(model: Any) -> np.ndarray | None:
    """Training interactions per item index, or None when the model holds no training data."""
    seen = getattr(model, "user_items_", None)
    if seen is None:
        return None
    # the fallback chain's popularity index (built at fit / load) holds them already
    pop = getattr(model, "_derived", {}).get("popularity")
    vectors = getattr(pop, "item_vectors", None)
    if vectors is not None and vectors.shape == (model.n_items, 1):
        return vectors[:, 0].astype(np.int64)
    return np.bincount(seen.indices, minlength=model.n_items)[: model.n_items]


def _python(values: np.ndarray) -> list[Any]:
    return [v.item() if isinstance(v, np.generic) else v for v in values.tolist()]


def _shape(
    model: Any,
    rec: tuple[np.ndarray, np.ndarray],
    score_name: str,
    fallback: str | None = None,
    unknown: list[Any] | None = None,
    n_unknown: int = 0,
    used: int = 0,
) -> ItemList:
    ids, scores = rec[0][0], rec[1][0]
    flags = getattr(rec, "fallback", None)
    if fallback is None and flags is not None and bool(flags[0]):
        fallback = rec.reasons[0]  # type: ignore[attr-defined]  # a Recommendations
    keep = ids >= 0
    found = ids[keep]
    titles_all = getattr(model, "item_titles_", None)
    titles = [""] * found.size if titles_all is None else [str(t) for t in titles_all[found]]
    counts = training_counts(model)
    return ItemList(
        items=_python(model.item_ids_.external(found)),
        scores=np.asarray(scores[keep], dtype=np.float32),
        titles=titles,
        n_train=None if counts is None else counts[found],
        score_name="popularity" if fallback else score_name,
        fallback=fallback,
        unknown=list(unknown or []),
        n_unknown=n_unknown,
        used=used,
    )


def _score_name(model: Any) -> str:
    return "predicted" if type(model).capabilities.predicts_ratings else "score"


def translate_history(
    model: Any,
    items: Sequence[Any],
    ratings: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray | None, list[Any], int]:
    """External item ids (and aligned ratings) of one history -> model indices.

    Returns ``(indices int32, ratings float32 or None, unknown ids (the first few), number
    unknown)``: unknown ids are left out of the indices and reported, never dropped silently.
    Strings are accepted for integer ids (command-line input).
    """
    raw = list(items)
    if ratings is not None:
        vals = np.asarray(list(ratings), dtype=np.float32)
        if vals.size != len(raw):
            raise ConfigError(f"{vals.size} ratings for {len(raw)} history items")
    idx = model.item_ids_.index(np.asarray(raw, dtype=object) if raw else [], on_missing="mark")
    idx = np.asarray(idx, dtype=np.int32).reshape(-1)
    known = idx >= 0
    unknown = [raw[j] for j in np.flatnonzero(~known)]
    if model.item_ids_.is_integer:  # "42" typed on a command line is the id 42
        unknown = [int(v) if isinstance(v, str) and v.lstrip("-").isdigit() else v for v in unknown]
    return (
        idx[known],
        None if ratings is None else vals[known],
        unknown[:MAX_UNKNOWN_SHOWN],
        len(unknown),
    )


def recommend_user(
    model: Any,
    user: Any,
    k: int = 10,
    *,
    exclude_seen: bool = True,
    candidates: Sequence[Any] | None = None,
    on_unknown: Literal["raise", "fallback"] = "raise",
    index: Literal["exact", "ann"] | None = None,
) -> ItemList:
    """Top-``k`` for a user the model was trained on, by external user id.

    ``candidates`` are external item ids to choose from (unknown ones are ignored).
    A user the model never saw raises :class:`UnknownIdError` (``on_unknown="raise"``, with a
    hint to give a history instead) or gets the popularity ranking flagged as a fallback.
    """
    uidx = model.user_ids_.index([user], on_missing="mark")
    cand = _candidates(model, candidates)
    if uidx[0] < 0:
        if on_unknown == "raise":
            raise UnknownIdError(
                "user", [user], hint="give the user's items as a history instead (--history)"
            )
        rec = model.recommend(None, k, history=[np.zeros(0, dtype=np.int32)], items=cand)
        return _shape(model, rec, _score_name(model), fallback=f"unknown user {user!r}")
    rec = model.recommend(
        uidx, k, exclude="seen" if exclude_seen else None, items=cand, index=index
    )
    return _shape(model, rec, _score_name(model))


def recommend_history(
    model: Any,
    items: Sequence[Any],
    k: int = 10,
    *,
    ratings: Sequence[float] | None = None,
    exclude_history: bool = True,
    candidates: Sequence[Any] | None = None,
    index: Literal["exact", "ann"] | None = None,
) -> ItemList:
    """Top-``k`` for a new user given by the external ids of the items they interacted with.

    Unknown item ids are left out and reported (``unknown``, ``n_unknown``). An empty
    history, one whose items are all unknown, or a model that cannot fold in new users gets
    the popularity ranking, flagged in ``fallback`` with the reason.
    """
    idx, vals, unknown, n_unknown = translate_history(model, items, ratings)
    cand = _candidates(model, candidates)
    caps = type(model).capabilities
    if idx.size and not caps.folds_in:
        rec = model.recommend(None, k, history=[np.zeros(0, dtype=np.int32)], items=cand)
        return _shape(model, rec, _score_name(model), FALLBACK_NO_FOLD_IN, unknown, n_unknown)
    if idx.size and caps.fold_in_needs_ratings and vals is None:
        raise ConfigError(
            f"{type(model).__name__} folds in from ratings: give them with the items "
            "(ratings= in Python, --ratings on the command line)"
        )
    found: Recommendations = model.recommend_for_history(
        idx,
        k,
        ratings=vals,
        exclude_history=exclude_history,
        candidates=cand,
        index=index,
    )
    reason = None
    if found.fallback[0]:
        reason = "all history items unknown" if n_unknown else found.reasons[0]
    return _shape(model, found, _score_name(model), reason, unknown, n_unknown, used=int(idx.size))


def similar(
    model: Any,
    item: Any,
    k: int = 10,
    *,
    min_count: int | None = None,
    candidates: Sequence[Any] | None = None,
) -> ItemList:
    """The ``k`` items most similar to one item (external id), never the item itself;
    ``min_count`` keeps only items with at least that many training interactions."""
    iidx = model.item_ids_.index([item])
    cand = _candidates(model, candidates)
    if min_count:
        counts = training_counts(model)
        if counts is not None:
            enough = np.flatnonzero(counts >= min_count).astype(np.int32)
            cand = enough if cand is None else np.intersect1d(cand, enough).astype(np.int32)
    rec = model.similar_items(iidx, k, candidates=cand)
    return _shape(model, rec, "similarity")


def _candidates(model: Any, candidates: Sequence[Any] | None) -> np.ndarray | None:
    if candidates is None:
        return None
    idx = model.item_ids_.index(list(candidates), on_missing="drop")
    return np.asarray(idx, dtype=np.int32)
