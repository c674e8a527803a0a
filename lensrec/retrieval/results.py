"""What a ranking returns: the ``(ids, scores)`` pair, plus which rows fell back and why."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..types import IndexArray, ScoreArray

__all__ = [
    "Recommendations",
    "FALLBACK_EMPTY_HISTORY",
    "FALLBACK_NO_FOLD_IN",
    "FALLBACK_UNUSABLE_HISTORY",
]

FALLBACK_EMPTY_HISTORY = "empty history"
FALLBACK_UNUSABLE_HISTORY = "no history item the model has learned (e.g. all below min_count)"
FALLBACK_NO_FOLD_IN = "the model cannot score users it never saw"


class Recommendations(tuple[Any, Any]):
    """``(ids, scores)`` of a batch, with what the ranking did for each row.

    It *is* the pair: ``ids, scores = model.recommend(...)`` unpacks it, ``r[0]`` is ``ids``.

    Attributes
    ----------
    ids : int32 [n, k]
        Item indices, best first, padded with -1.
    scores : float32 [n, k]
        Their scores, padded with -inf. Rows answered by the fallback hold its scores (the
        number of training interactions of each item), not the model's.
    fallback : bool [n]
        True where the row was answered by the fallback chain (popularity) instead of the
        model.
    reasons : tuple of str
        Per row, why it fell back (``""`` where it did not), e.g. ``"empty history"``.
    index_kind : str
        The index that answered the model's rows: ``"exact"``, ``"ann"`` or ``"precomputed"``.
    """

    ids: IndexArray
    scores: ScoreArray
    fallback: np.ndarray
    reasons: tuple[str, ...]
    index_kind: str

    def __new__(
        cls,
        ids: IndexArray,
        scores: ScoreArray,
        *,
        fallback: np.ndarray | None = None,
        reasons: tuple[str, ...] | None = None,
        index_kind: str = "exact",
    ) -> Recommendations:
        self = super().__new__(cls, (ids, scores))
        n = ids.shape[0]
        self.ids = ids
        self.scores = scores
        self.fallback = np.zeros(n, dtype=bool) if fallback is None else fallback
        self.reasons = ("",) * n if reasons is None else tuple(reasons)
        self.index_kind = index_kind
        return self

    def __getnewargs_ex__(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (self.ids, self.scores), {
            "fallback": self.fallback,
            "reasons": self.reasons,
            "index_kind": self.index_kind,
        }

    def __repr__(self) -> str:
        n_fb = int(self.fallback.sum())
        return (
            f"Recommendations({self.ids.shape[0]} rows x {self.ids.shape[1]}, index_kind={self.index_kind!r}"
            f", {n_fb} from the fallback)"
        )
