"""The arrays of a sparse matrix in the dtypes the kernels take."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["csr_parts", "triples_by_row"]


def csr_parts(
    m: Any, dtype: npt.DTypeLike | None = np.float32
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indptr, indices, data)`` of a scipy CSR or CSC matrix as the kernels take them.

    Parameters
    ----------
    m : scipy.sparse CSR or CSC matrix (or array)
    dtype : numpy dtype or None, default float32
        The dtype of ``data``; None keeps the stored one.

    Returns
    -------
    indptr : int64 [n_rows + 1] (CSC: columns)
    indices : int32 [nnz]
    data : ``dtype`` [nnz]
        C-contiguous. An array already in its dtype is ``m``'s own, not a copy: treat all
        three as read-only views of ``m``.
    """
    return (
        np.ascontiguousarray(m.indptr, dtype=np.int64),
        np.ascontiguousarray(m.indices, dtype=np.int32),
        np.ascontiguousarray(m.data, dtype=dtype),
    )


def triples_by_row(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`csr_parts` of the triples ``(rows, cols, values)`` grouped by row.

    Unlike a CSR built by scipy, repeated ``(row, col)`` pairs stay separate entries (not
    summed) and, within a row, the triples keep their order (columns are not sorted).
    Returns int64 ``indptr [n_rows + 1]``, int32 ``indices`` and float32 ``data``.
    """
    order = np.argsort(rows, kind="stable")
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return (
        indptr,
        np.ascontiguousarray(cols[order], dtype=np.int32),
        np.ascontiguousarray(values[order], dtype=np.float32),
    )
