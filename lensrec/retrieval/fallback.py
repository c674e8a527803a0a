"""The fallback chain's last step: the popularity ranking every model carries.

A query the model cannot answer (a user it never saw, with an empty history or one whose
items are all unknown) gets the items with the most training interactions instead, and the
answer says so (:attr:`Recommendations.fallback`, the CLI's note, ``"fallback"`` in JSON).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .exact import ExactIndex

__all__ = ["popularity_index", "popularity_counts"]


def popularity_counts(user_items: sp.csr_matrix | None, n_items: int) -> np.ndarray:
    """Training interactions per item (float32 ``[n_items]``; zeros without training data)."""
    if user_items is None:
        return np.zeros(n_items, dtype=np.float32)
    counts = np.bincount(user_items.indices, minlength=n_items)[:n_items]
    return counts.astype(np.float32)


def popularity_index(user_items: sp.csr_matrix | None, n_items: int) -> ExactIndex:
    """An exact index whose one-column vectors are the items' training counts: searched
    with query ``[[1.0]]`` it ranks by popularity (ties: the lower item index)."""
    return ExactIndex(popularity_counts(user_items, n_items)[:, None])
