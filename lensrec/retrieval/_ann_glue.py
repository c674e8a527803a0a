"""Building or restoring a model's approximate index (kept out of ``ann.py``, which holds
the index itself and imports its library only when used)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["build_ann"]


def build_ann(model: Any) -> Any:
    """The model's :class:`~lensrec.retrieval.ann.ANNIndex`: restored from the blob saved
    with it (``ann_blob_``), else built from its item vectors with ``index_params_`` and the
    blob kept on the model, so ``save`` writes it."""
    from .ann import ANNIndex

    vectors = model._derived["item_vectors"]
    blob = getattr(model, "ann_blob_", None)
    if blob is not None:
        return ANNIndex.from_bytes(np.asarray(blob, dtype=np.uint8).tobytes(), vectors)
    params = dict(getattr(model, "index_params_", {}) or {})
    index = ANNIndex.build(vectors, **params)
    model.ann_blob_ = np.frombuffer(index.to_bytes(), dtype=np.uint8).copy()
    return index
