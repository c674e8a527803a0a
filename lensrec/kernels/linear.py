"""Linear item-item and low-rank cores: the dense item Gram matrix, EASE and PureSVD.

* :func:`gram_matrix` builds ``G = X^T X`` of a user x item CSR straight into a dense
  ``[n_items, n_items]`` array (no sparse intermediate), parallel over item rows, lower
  triangle summed then mirrored.
* :func:`ease_weights` turns a Gram matrix into EASE's item-item weights **in place**
  (Steck 2019, "Embarrassingly shallow autoencoders for sparse data"), and
  :func:`ease_memory_bytes` says beforehand how many bytes that needs.
* :func:`randomized_svd` is the truncated SVD of a sparse matrix by randomized subspace
  iteration (Halko, Martinsson & Tropp 2011, "Finding structure with randomness"), the core of
  PureSVD (Cremonesi, Koren & Turrin 2010, "Performance of recommender algorithms on top-N
  recommendation tasks").

Orientation of every item-item matrix here: rows are the items a user has (the history),
columns the items scored; a user's scores are ``history_row @ B``.
"""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np
import numpy.typing as npt
import scipy.linalg as sla
import scipy.sparse as sp

from .._config import single_threaded_blas
from ..errors import ConfigError, LensrecError
from ._csr import csr_parts

__all__ = [
    "gram_matrix",
    "gram_kernel",
    "ease_weights",
    "ease_memory_bytes",
    "randomized_svd",
    "_reference_gram_matrix",
    "_reference_ease_weights",
    "_reference_randomized_svd",
]

_TILE = 64
#: randomized_svd pins BLAS to one thread when its dense blocks have at most this many values
#: (``max(m, n) * (rank + oversample)``; 256 MiB of float32)
_SVD_ONE_THREAD = 1 << 26


_GRAM_BLOCKS = 256  # work blocks of gram_kernel (rows dealt round-robin)


@nb.njit(cache=True, parallel=True, nogil=True, fastmath={"reassoc", "contract"})
def gram_kernel(item_indptr, item_users, item_values, user_indptr, user_items, user_values, out):
    """Fill ``out[i, :] = sum over users u of i of x_ui * x_u`` (``out`` is ``[n, n]``).

    ``item_*`` is the CSC (item -> users) and ``user_*`` the CSR (user -> items) of the same
    matrix, the CSR with sorted indices. Only the lower triangle is summed (row ``i``, columns
    ``<= i``: a user's items are walked until they pass ``i``, half the multiply-adds of the
    full product), in the precision of ``out``, then mirrored onto the upper one. Rows are
    dealt round-robin to ``_GRAM_BLOCKS`` work blocks (the lower-triangle rows grow with
    ``i``, and popular items cluster); each row is written by one thread in a fixed order:
    the same result for any thread count.
    """
    n_items = item_indptr.size - 1
    n_blocks = min(_GRAM_BLOCKS, max(n_items, 1))
    for blk in nb.prange(n_blocks):
        for i in range(blk, n_items, n_blocks):
            row = out[i]
            for c in range(i + 1):
                row[c] = 0.0
            for p in range(item_indptr[i], item_indptr[i + 1]):
                u = item_users[p]
                w = item_values[p]
                for q in range(user_indptr[u], user_indptr[u + 1]):
                    c = user_items[q]
                    if c > i:
                        break
                    row[c] += w * user_values[q]
    n_tiles = (n_items + _TILE - 1) // _TILE
    for bi in nb.prange(n_tiles):  # mirror: the upper triangle from the lower, tile by tile
        i0 = bi * _TILE
        i1 = min(n_items, i0 + _TILE)
        for bj in range(bi, n_tiles):
            j0 = bj * _TILE
            j1 = min(n_items, j0 + _TILE)
            for i in range(i0, i1):
                for j in range(max(j0, i + 1), j1):
                    out[i, j] = out[j, i]


def gram_matrix(
    indptr: npt.NDArray[np.integer],
    indices: npt.NDArray[np.int32],
    data: npt.NDArray[np.floating],
    n_items: int,
    dtype: npt.DTypeLike = np.float64,
) -> np.ndarray:
    """Dense item Gram matrix ``X^T X`` ``[n_items, n_items]`` of a user x item CSR.

    Costs ``sum over users of |items of user| (|items of user| + 1) / 2`` multiply-adds (the
    lower triangle, then mirrored) and ``n_items^2`` values of ``dtype`` (the caller checks
    that this fits, e.g. with :func:`ease_memory_bytes`), plus a transposed copy of the
    interactions. Sums run in ``dtype``. The caller's arrays are not modified (unsorted rows
    are sorted in a copy).

    Measured on synthetic 1M (6,040 x 3,706, float32, one thread, busy machine; CPU seconds):
    0.38 here, 0.86 for the full product row by row, 1.4 for scipy's sparse ``X^T @ X``
    densified, 0.7 for BLAS on the densified interactions (which also needs
    ``n_users x n_items`` memory and does not shrink with sparsity).
    """
    indptr = np.asarray(indptr)
    n_users = indptr.size - 1
    out_dtype = np.dtype(dtype)
    user_m = sp.csr_matrix(
        (np.asarray(data, out_dtype), np.asarray(indices, np.int32), indptr),
        shape=(n_users, n_items),
    )
    if not user_m.has_sorted_indices:
        user_m = user_m.copy()  # never sort the caller's arrays in place
        user_m.sort_indices()
    item_m = user_m.tocsc()
    out = np.empty((n_items, n_items), dtype=out_dtype)
    gram_kernel(*csr_parts(item_m, None), *csr_parts(user_m, None), out)
    return out


def ease_memory_bytes(n_items: int, dtype: npt.DTypeLike = np.float64) -> int:
    """Peak bytes :func:`gram_matrix` followed by :func:`ease_weights` allocate for ``n_items``.

    One ``n_items x n_items`` matrix (the Gram matrix, factorised, inverted and turned into the
    weights in place) plus a few vectors of length ``n_items``. Not counted: the interaction
    matrix and its transposed copy (linear in the interactions).
    """
    itemsize = np.dtype(dtype).itemsize
    n = int(n_items)
    return n * n * itemsize + 4 * n * itemsize + 4 * n


@nb.njit(cache=True, parallel=True, nogil=True)
def _mirror_lower(a, tile):
    """Copy the lower triangle of square ``a`` onto its upper triangle, tile by tile."""
    n = a.shape[0]
    n_tiles = (n + tile - 1) // tile
    for bi in nb.prange(n_tiles):
        i0 = bi * tile
        i1 = min(n, i0 + tile)
        for bj in range(bi, n_tiles):
            j0 = bj * tile
            j1 = min(n, j0 + tile)
            for i in range(i0, i1):
                for j in range(max(j0, i + 1), j1):
                    a[i, j] = a[j, i]


@nb.njit(cache=True, parallel=True, nogil=True)
def _scale_columns_zero_diag(a, diag):
    """``a[i, j] = -a[i, j] / diag[j]`` off the diagonal, ``0`` on it (in place)."""
    n = a.shape[0]
    for i in nb.prange(n):
        row = a[i]
        for j in range(n):
            row[j] = -row[j] / diag[j]
        row[i] = 0.0


def ease_weights(gram: np.ndarray, reg: float) -> np.ndarray:
    """EASE item-item weights from a Gram matrix, computed in place (Steck 2019).

    ``P = (G + reg * I)^-1`` and ``B = I - P diag(1 / diag(P))``: ``B[i, j] = -P[i, j] / P[j, j]``
    off the diagonal, ``B[j, j] = 0``. The Cholesky factor, the inverse and ``B`` overwrite
    ``gram`` one after another (LAPACK ``potrf`` / ``potri`` on the same memory), so the peak is
    one ``n x n`` matrix (:func:`ease_memory_bytes`); pass a copy to keep the Gram matrix.
    LAPACK runs on the BLAS threads: on cores shared with other busy processes, OpenBLAS's
    threaded ``potrf`` / ``potri`` can be many times slower than one thread (seen here: 20x at
    1,682 items), so callers may wrap this in ``lensrec._config.single_threaded_blas()``.

    Parameters
    ----------
    gram
        Square, symmetric, C-contiguous float64 (or float32) ``X^T X``; **overwritten**.
    reg
        L2 regularisation ``lambda`` (> 0) added to the diagonal.

    Returns
    -------
    ndarray
        ``B`` ``[n_items, n_items]``, the same array as ``gram``: rows are history items,
        columns scored items; a user's scores are ``history_row @ B``.

    Raises
    ------
    ConfigError
        ``reg <= 0`` or a non-square / non-contiguous / non-float ``gram``.
    LensrecError
        The regularised matrix is not positive definite (NaN or a non-symmetric input).
    """
    if not reg > 0:
        raise ConfigError(f"reg must be > 0 (it keeps G + reg*I invertible); got {reg!r}")
    if (
        gram.ndim != 2
        or gram.shape[0] != gram.shape[1]
        or gram.dtype not in (np.float32, np.float64)
        or not gram.flags.c_contiguous
        or not gram.flags.writeable
    ):
        raise ConfigError(
            "gram must be a writable, C-contiguous, square float32 or float64 array; got "
            f"shape {gram.shape}, dtype {gram.dtype}"
        )
    n = gram.shape[0]
    if n == 0:
        return gram
    gram.flat[:: n + 1] += reg
    potrf, potri = sla.get_lapack_funcs(("potrf", "potri"), (gram,))
    # gram.T is the Fortran-ordered view of the same memory; symmetric, so it is the same
    # matrix. LAPACK's upper triangle of that view is the lower triangle of ``gram``.
    f_view = gram.T
    c, info = potrf(f_view, lower=0, overwrite_a=1, clean=0)
    if info != 0:
        raise LensrecError(f"EASE: G + reg*I is not positive definite (LAPACK potrf info={info})")
    inv, info = potri(c, lower=0, overwrite_c=1)
    if info != 0:
        raise LensrecError(f"EASE: inverting G + reg*I failed (LAPACK potri info={info})")
    if not np.shares_memory(inv, gram):  # a copy was made after all: bring it back
        gram[...] = inv.T
    _mirror_lower(gram, _TILE)
    diag = gram.diagonal().copy()
    _scale_columns_zero_diag(gram, diag)
    return gram


def randomized_svd(
    csr: sp.csr_matrix | sp.csr_array,
    rank: int,
    oversample: int = 10,
    n_iter: int = 4,
    seed: int = 0,
    dtype: npt.DTypeLike = np.float32,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truncated SVD ``A ~ U diag(s) Vt`` of a sparse matrix by randomized subspace iteration.

    Halko, Martinsson & Tropp (2011), algorithm 4.4: a Gaussian test matrix of
    ``rank + oversample`` columns, ``n_iter`` power iterations with a QR
    re-orthonormalisation after every product with ``A`` or ``A^T`` (so small singular values
    are not lost to rounding), then the exact SVD of the small projected matrix. Only products
    of ``A`` with tall dense matrices are needed; ``A`` is never densified.

    Parameters
    ----------
    csr
        The ``m x n`` sparse matrix (for PureSVD, users x items).
    rank
        Number of singular triplets returned (at most ``min(m, n)``).
    oversample
        Extra columns of the test matrix; more gives more accurate trailing triplets.
    n_iter
        Power iterations; more helps when the spectrum decays slowly.
    seed
        Seed of the Gaussian test matrix: the same seed gives the same result.
    dtype
        float32 (half the memory) or float64 for the dense work.

    Returns
    -------
    U, s, Vt
        ``U`` ``[m, rank]``, ``s`` ``[rank]`` (descending), ``Vt`` ``[rank, n]``, in ``dtype``.
        Signs are fixed so that each column of ``U`` has its largest-magnitude entry positive.

    Raises
    ------
    ConfigError
        ``rank < 1``, ``rank > min(m, n)``, negative ``oversample`` or ``n_iter``.

    Notes
    -----
    The dense work is QR and SVD of tall, thin ``[m or n, rank + oversample]`` blocks. Up to
    ``_SVD_ONE_THREAD`` values per block, BLAS is pinned to one thread for the call
    (``lensrec._config.single_threaded_blas``): threaded OpenBLAS gains little on such blocks
    and, on cores shared with other busy processes, was measured 5-30x slower than one thread
    (QR of 6,040 x 74 float32: 0.03 s vs 1.0 s; 70,000 x 266: 2.5 s vs 13 s).
    """
    m, n = csr.shape
    if int(rank) < 1 or int(rank) > min(m, n):
        raise ConfigError(f"rank must be in 1..{min(m, n)} for a {m} x {n} matrix; got {rank!r}")
    if int(oversample) < 0 or int(n_iter) < 0:
        raise ConfigError(
            f"oversample and n_iter must be >= 0; got oversample={oversample!r}, n_iter={n_iter!r}"
        )
    width = min(int(rank) + int(oversample), m, n)
    if max(m, n) * width <= _SVD_ONE_THREAD:
        with single_threaded_blas():
            return _randomized_svd(csr, int(rank), width, int(n_iter), seed, np.dtype(dtype))
    return _randomized_svd(csr, int(rank), width, int(n_iter), seed, np.dtype(dtype))


def _randomized_svd(
    csr: sp.csr_matrix | sp.csr_array, rank: int, width: int, n_iter: int, seed: int, dt: np.dtype
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m, n = csr.shape
    a = sp.csr_matrix(csr, dtype=dt)
    at = a.T.tocsr()
    gen = np.random.default_rng(seed)
    omega = gen.standard_normal((n, width)).astype(dt)

    def orth(y: np.ndarray) -> np.ndarray:
        q: np.ndarray = sla.qr(y, mode="economic", overwrite_a=True, check_finite=False)[0]
        return q

    q = orth(a @ omega)
    del omega
    for _ in range(n_iter):
        q = orth(at @ q)
        q = orth(a @ q)
    bt = at @ q  # n x width: the transpose of B = Q^T A
    v, s, ubt = sla.svd(bt, full_matrices=False, check_finite=False)
    u = q @ ubt.T[:, :rank]
    s = s[:rank]
    vt = v[:, :rank].T
    # deterministic signs: the largest |entry| of each column of U is positive
    flip = np.sign(u[np.argmax(np.abs(u), axis=0), np.arange(u.shape[1])])
    flip[flip == 0] = 1
    u *= flip
    vt *= flip[:, None]
    return (
        np.ascontiguousarray(u, dtype=dt),
        s.astype(dt),
        np.ascontiguousarray(vt, dtype=dt),
    )


def _reference_gram_matrix(x: np.ndarray) -> np.ndarray:
    """Dense reference of :func:`gram_matrix` (tests only)."""
    x = np.asarray(x, dtype=np.float64)
    return x.T @ x


def _reference_ease_weights(gram: np.ndarray, reg: float) -> np.ndarray:
    """EASE's closed form with a plain inverse (tests only): ``I - P diag(1/diag(P))``."""
    g = np.array(gram, dtype=np.float64)
    p = np.linalg.inv(g + reg * np.eye(g.shape[0]))
    b = np.eye(g.shape[0]) - p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


def _reference_randomized_svd(x: Any, rank: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-``rank`` triplets from NumPy's full SVD of the densified matrix (tests only)."""
    dense = x.toarray() if sp.issparse(x) else np.asarray(x)
    u, s, vt = np.linalg.svd(np.asarray(dense, np.float64), full_matrices=False)
    return u[:, :rank], s[:rank], vt[:rank]
