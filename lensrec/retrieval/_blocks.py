"""The blocked top-k driver every exact index shares: scores for a block of query rows,
exclusion in candidate positions, the shared :func:`~lensrec.kernels.topk.topk_rows` kernel.

Memory stays at one block of scores (``block_floats`` float32 values), never a dense
queries x items matrix. Nothing process-wide is changed: numba's thread count is set for the
calling thread only (numba keeps it per thread), and BLAS keeps whatever the process set.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from .._config import n_threads
from ..kernels import csr_parts
from ..kernels.topk import topk_rows
from ..types import IndexArray, ScoreArray

__all__ = ["BLOCK_FLOATS", "blocked_topk", "exclusion_parts", "candidate_positions"]

#: score block budget (float32 values) for one chunk of queries: 64 MiB. Larger blocks mean
#: fewer switches between BLAS (the block product) and numba (the top-k): at 30k x 10k,
#: 2 threads, 16M-value blocks ran 1.6 s against 2.5 s at 4M with BLAS left as the process
#: set it (pinning BLAS per call would be a process-wide change, unsafe for concurrent callers)
BLOCK_FLOATS = 1 << 24


def set_thread_count() -> None:
    """Apply ``LENSREC_THREADS`` to numba for the calling thread only (numba's setting is
    thread-local, so concurrent callers never see each other's)."""
    import numba

    numba.set_num_threads(min(n_threads(), numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]


def candidate_positions(candidates: np.ndarray | None, n_items: int) -> np.ndarray | None:
    """``pos[item]`` = the item's column among ``candidates`` (-1: not a candidate)."""
    if candidates is None:
        return None
    pos = np.full(n_items, -1, dtype=np.int64)
    pos[candidates] = np.arange(candidates.size)
    return pos


def exclusion_parts(
    rows: sp.csr_matrix | None, n: int, cand_pos: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr int64 [n + 1], indices int32)``: each row's items to skip, sorted, in
    candidate positions when ``cand_pos`` is given (non-candidates dropped). Read-only: they
    can be ``rows``'s own arrays (:func:`~lensrec.kernels.csr_parts`)."""
    if rows is not None and rows.shape[0] != n:
        raise ValueError(f"exclude has {rows.shape[0]} rows for {n} queries")
    if rows is None or rows.nnz == 0:
        return np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int32)
    rows = sp.csr_matrix(rows)
    rows.sort_indices()
    indptr, indices, _ = csr_parts(rows, None)
    if cand_pos is not None:
        mapped = cand_pos[indices]
        keep = mapped >= 0
        row_of = np.repeat(np.arange(n), np.diff(indptr))
        counts = np.bincount(row_of[keep], minlength=n)
        indices = mapped[keep].astype(np.int32)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return indptr, indices


def blocked_topk(
    n: int,
    n_cols: int,
    score_block: Callable[[int, int], np.ndarray],
    k: int,
    exclude: sp.csr_matrix | None,
    candidates: np.ndarray | None,
    n_items: int,
    block_floats: int = BLOCK_FLOATS,
) -> tuple[IndexArray, ScoreArray]:
    """Top-``k`` of ``n`` query rows whose scores ``score_block(start, stop)`` gives as dense
    float32 ``[stop - start, n_cols]`` (``n_cols`` = number of candidates, or ``n_items``).

    ``exclude`` is a CSR ``[n, n_items]`` of items each row must skip; ``candidates`` sorted
    unique item indices (the score columns), mapped back to item indices in the answer.
    """
    out_ids = np.full((n, k), -1, dtype=np.int32)
    out_scores = np.full((n, k), -np.inf, dtype=np.float32)
    if n == 0 or n_cols == 0:
        return out_ids, out_scores
    set_thread_count()
    indptr, indices = exclusion_parts(exclude, n, candidate_positions(candidates, n_items))
    chunk = max(1, min(n, block_floats // max(n_cols, 1)))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        scores = np.ascontiguousarray(score_block(start, stop), dtype=np.float32)
        if not scores.flags.writeable:
            # a read-only view (popularity's one broadcast row) would be another type to
            # numba, so one more compile of the kernel on a first run: copied instead
            scores = scores.copy()
        bi = out_ids[start:stop]
        bs = out_scores[start:stop]
        # indptr slices stay absolute positions into indices: no copy of the exclusions
        topk_rows(scores, k, indptr[start : stop + 1], indices, bi, bs)
    if candidates is not None:
        found = out_ids >= 0
        out_ids[found] = candidates[out_ids[found]]
    return out_ids, out_scores
