"""The sparse-matrix arrays handed to kernels."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lensrec.kernels import csr_parts, triples_by_row


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_csr_parts_dtypes_and_values(fmt):
    m = sp.random(7, 5, density=0.4, format=fmt, random_state=0, dtype=np.float64)
    indptr, indices, data = csr_parts(m)
    assert (indptr.dtype, indices.dtype, data.dtype) == (np.int64, np.int32, np.float32)
    assert all(a.flags.c_contiguous for a in (indptr, indices, data))
    np.testing.assert_array_equal(indptr, m.indptr)
    np.testing.assert_array_equal(indices, m.indices)
    np.testing.assert_array_equal(data, m.data.astype(np.float32))
    assert csr_parts(m, None)[2].dtype == np.float64  # None keeps the stored dtype


def test_csr_parts_does_not_copy_what_is_already_right():
    m = sp.random(6, 6, density=0.5, format="csr", random_state=1, dtype=np.float32)
    m.indptr = m.indptr.astype(np.int64)
    indptr, indices, data = csr_parts(m)
    assert indptr is m.indptr and data is m.data
    assert np.shares_memory(indices, m.indices)


def test_triples_by_row_keeps_repeats_and_row_order():
    rows = np.array([2, 0, 2, 0, 2])
    cols = np.array([1, 3, 1, 0, 0])
    vals = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    indptr, indices, data = triples_by_row(rows, cols, vals, 4)
    assert indptr.tolist() == [0, 2, 2, 5, 5]
    assert indices.tolist() == [3, 0, 1, 1, 0]  # (2, 1) twice, in the order given
    assert data.tolist() == [4.0, 2.0, 5.0, 3.0, 1.0]
    assert (indptr.dtype, indices.dtype, data.dtype) == (np.int64, np.int32, np.float32)
