"""What runs on the executors for lensrec's own ALS on Spark (no pyspark here): a partition's
interactions made into one CSR block, and one block's rows solved by lensrec's ALS kernels.

A block holds some rows of one side (users, or items) with all their interactions; rows are
independent given the fixed side and its Gram matrix, so solving blocks apart gives the
rows lensrec's one-machine half-step gives, whatever the partitioning.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np

__all__ = ["Block", "build_block", "factor_batches", "solve_block"]

#: (rows [n] int64 in the side's index, indptr [n + 1] int64, columns int32, confidences
#: float32 [nnz] or [1] when every entry has the same one, then the rows' validation items:
#: indptr [n + 1] int64 and columns int32, both empty without validation)
Block = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _csr(r: np.ndarray, c: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """indptr over ``rows`` (sorted unique) of the pairs ``r, c`` (sorted by r then c)."""
    ptr = np.zeros(rows.size + 1, dtype=np.int64)
    np.cumsum(np.bincount(np.searchsorted(rows, r), minlength=rows.size), out=ptr[1:])
    return ptr, c


def build_block(batches: Any, row: str, col: str, row_ids: np.ndarray, col_ids: np.ndarray) -> Any:
    """Arrow batches of ``row``, ``col`` (int ids), ``w`` (confidence) and optionally ``v``
    (true on validation rows) -> one batch with one ``block``: a pickled :data:`Block` in
    positions of the sorted ``row_ids`` / ``col_ids`` (every id must be in them), rows and
    columns sorted. A row with only validation entries has an empty training row. A
    partition with no rows yields nothing."""
    import pyarrow as pa

    parts = [b for b in batches if b.num_rows]
    if not parts:
        return
    table = pa.Table.from_batches(parts)
    r = np.searchsorted(row_ids, table.column(row).to_numpy().astype(np.int64))
    c = np.searchsorted(col_ids, table.column(col).to_numpy().astype(np.int64)).astype(np.int32)
    w = table.column("w").to_numpy().astype(np.float32)
    v = (
        table.column("v").to_numpy(zero_copy_only=False).astype(bool)
        if "v" in table.column_names
        else np.zeros(r.size, dtype=bool)
    )
    order = np.lexsort((c, r))
    r, c, w, v = r[order], c[order], w[order], v[order]
    rows = np.unique(r)
    ptr, idx = _csr(r[~v], c[~v], rows)
    conf = w[~v]
    if conf.size and conf.min() == conf.max():
        conf = conf[:1].copy()
    vptr, vidx = _csr(r[v], c[v], rows)
    block = (rows, ptr, idx, conf, vptr, vidx)
    blob = pickle.dumps(block, protocol=pickle.HIGHEST_PROTOCOL)
    yield pa.RecordBatch.from_arrays([pa.array([blob], type=pa.binary())], names=["block"])


def factor_batches(ids: np.ndarray, vectors: np.ndarray, starts: Any, chunk: int) -> Any:
    """Arrow batches ``id``, ``features`` (list<float>) of the rows ``start .. start + chunk``
    for each of ``starts``."""
    import pyarrow as pa

    f = int(vectors.shape[1])
    for start in np.asarray(starts, dtype=np.int64):
        end = min(int(start) + chunk, ids.size)
        n = end - int(start)
        if n <= 0:
            continue
        offsets = pa.array(np.arange(0, n * f + 1, f, dtype=np.int32))
        flat = pa.array(vectors[start:end].reshape(-1), type=pa.float32())
        feats = pa.ListArray.from_arrays(offsets, flat)
        yield pa.RecordBatch.from_arrays(
            [pa.array(ids[start:end], type=pa.int32()), feats], names=["id", "features"]
        )


def solve_block(
    block: Block,
    fixed: np.ndarray,
    gram: np.ndarray,
    warm: np.ndarray,
    *,
    reg: float,
    freq_exponent: float,
    w0: float,
    solver: str,
    cg_steps: int,
    threads: int = 1,
    valid_k: int = 0,
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """The block's rows of the solved side, warm-started from ``warm`` (the whole side's
    current factors): ``(rows, new factors [len(rows), f], NDCG sum, users)``. numba and
    BLAS are held to ``threads`` (the task's CPUs) so that tasks side by side do not
    oversubscribe.

    With ``valid_k`` (user blocks with validation items), the rows' NDCG@``valid_k`` against
    their validation items is summed over the users with one not in training, ranked as
    :class:`lensrec.models._validation.RankingValidation` ranks (``x_u . Y``, training items
    excluded, the shared blocked top-k): the mean over all blocks is its number."""
    from .._config import numba_threads, single_threaded_blas
    from ..kernels.als import als_half_step_cg, als_half_step_cholesky

    rows, ptr, idx, conf, vptr, vidx = block
    out = np.ascontiguousarray(warm[rows], dtype=np.float32)
    with numba_threads(max(1, int(threads))) as n, single_threaded_blas():
        if solver == "cholesky":
            als_half_step_cholesky(ptr, idx, conf, fixed, out, gram, reg, freq_exponent, w0)
        else:
            als_half_step_cg(
                ptr, idx, conf, fixed, out, gram, reg, freq_exponent, w0, int(cg_steps), n
            )
        total, users = (0.0, 0) if not valid_k else _valid_ndcg(block, out, fixed, valid_k)
    return rows, out, total, users


def _valid_ndcg(block: Block, X: np.ndarray, Y: np.ndarray, k: int) -> tuple[float, int]:
    import scipy.sparse as sp

    from ..evaluate.metrics import ndcg_at_k
    from ..retrieval import blocked_topk

    rows, ptr, idx, _, vptr, vidx = block
    n, n_items = rows.size, int(Y.shape[0])
    seen = sp.csr_matrix((np.ones(idx.size, np.float32), idx, ptr), shape=(n, n_items))
    v = sp.csr_matrix((np.ones(vidx.size, np.float32), vidx, vptr), shape=(n, n_items))
    v = sp.csr_matrix(v - v.multiply(seen))
    v.eliminate_zeros()
    users = np.flatnonzero(np.diff(v.indptr) > 0)
    if users.size == 0:
        return 0.0, 0
    ids, _ = blocked_topk(
        users.size, n_items, lambda a, b: X[users[a:b]] @ Y.T, k, seen[users], None, n_items
    )
    return float(np.sum(ndcg_at_k(ids, v[users], k))), int(users.size)
