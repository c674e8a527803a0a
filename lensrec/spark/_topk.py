"""What runs on the executors for top-K: Arrow batches in, Arrow arrays out (no pyspark)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ..retrieval.exact import ExactIndex

__all__ = ["BatchScorer"]


class BatchScorer:
    """Top-``k`` for Arrow batches of ``user``, ``features`` (list<float>), ``seen``
    (list<int>, may be null) over the items whose vectors are ``known``; seen items excluded.

    The index is built once (per task) over the known items only, so an item the model has
    no factors for is never recommended.
    """

    def __init__(self, vectors: np.ndarray, known: np.ndarray, k: int):
        self.cand = np.flatnonzero(known).astype(np.int32)
        self.pos = np.full(vectors.shape[0], -1, dtype=np.int64)
        self.pos[self.cand] = np.arange(self.cand.size)
        self.index = ExactIndex(vectors[self.cand])
        self.dim = int(vectors.shape[1])
        self.k = int(k)

    def __call__(self, batch: Any) -> tuple[Any, Any, Any]:
        import pyarrow as pa

        n = batch.num_rows
        users = batch.column("user").to_numpy(zero_copy_only=False).astype(np.int32)
        feats = batch.column("features")
        q = np.asarray(feats.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
        q = q.reshape(n, self.dim)
        seen = batch.column("seen")
        lengths = seen.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
        values = seen.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        # seen items in candidate positions; items the model does not know are dropped
        mapped = np.where(
            values < self.pos.size, self.pos[np.minimum(values, self.pos.size - 1)], -1
        )
        keep = mapped >= 0
        row_of = np.repeat(np.arange(n), lengths)
        counts = np.bincount(row_of[keep], minlength=n)
        ex_ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=ex_ptr[1:])
        exclude = sp.csr_matrix(
            (np.ones(int(keep.sum()), dtype=np.float32), mapped[keep].astype(np.int32), ex_ptr),
            shape=(n, self.cand.size),
        )
        k = min(self.k, max(1, self.cand.size))
        if self.cand.size == 0:
            ids = np.full((n, k), -1, dtype=np.int32)
            scores = np.full((n, k), -np.inf, dtype=np.float32)
        else:
            ids, scores = self.index.search(q, k, exclude=exclude)
        found = ids >= 0
        out_ptr = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(found.sum(axis=1), out=out_ptr[1:])
        items = pa.ListArray.from_arrays(pa.array(out_ptr), pa.array(self.cand[ids[found]]))
        sc = pa.ListArray.from_arrays(pa.array(out_ptr), pa.array(scores[found], type=pa.float32()))
        return pa.array(users, type=pa.int32()), items, sc
