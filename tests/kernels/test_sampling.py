"""The random streams and row sampling shared by the BPR and WARP kernels.

The bit filter (``sampling_tables``, ``filtered_in_row``) is tested in test_bpr.py.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import pytest
import scipy.sparse as sp

from lensrec.kernels._sampling import (
    ReferenceStream,
    below,
    draw_negative,
    entry_pairs,
    next_bits,
    stream,
)

# the helpers run inside kernels, where the state stays uint64 (a state returned to Python
# comes back as int64), so they are driven from small jitted loops here


@nb.njit
def _draws(seed, block, bounds):
    state = stream(seed, block)
    out = np.empty(bounds.shape[0], dtype=np.int64)
    for t in range(bounds.shape[0]):
        state, z = next_bits(state)
        out[t] = below(z, bounds[t])
    return out


@nb.njit
def _negatives(seed, block, indices, lo, hi, n_items, max_tries, count):
    state = stream(seed, block)
    out = np.empty(count, dtype=np.int64)
    for t in range(count):
        state, out[t] = draw_negative(state, indices, lo, hi, n_items, max_tries)
    return out


@pytest.mark.parametrize(("seed", "block"), [(0, 0), (1, 0), (0, 1), (2**31 - 2, 12345)])
def test_reference_stream_is_the_kernel_stream(seed, block):
    bounds = np.repeat(np.array([1, 2, 7, 1000, 2**31, 2**32 - 1], dtype=np.int64), 20)
    got = _draws(seed, block, bounds)
    ref = ReferenceStream(seed, block)
    assert got.tolist() == [ref.below(int(n)) for n in bounds]
    assert np.all((got >= 0) & (got < bounds))


def test_streams_of_other_blocks_and_seeds_differ():
    bounds = np.full(8, 2**32 - 1, dtype=np.int64)
    draws = {tuple(_draws(s, b, bounds)) for s in (0, 1) for b in (0, 1, 2)}
    assert len(draws) == 6


def test_below_is_uniform_enough():
    counts = np.bincount(_draws(7, 0, np.full(20_000, 10, dtype=np.int64)), minlength=10)
    # 2,000 expected per bin; 5 standard deviations is about 210
    assert np.all(np.abs(counts - 2_000) < 210)


def test_draw_negative_avoids_the_row_and_matches_the_reference():
    indices = np.array([0, 2, 3, 5, 9], dtype=np.int32)
    positives = set(indices[1:4].tolist())  # the row is indices[1:4]
    got = _negatives(3, 4, indices, 1, 4, 10, 20, 200)
    ref = ReferenceStream(3, 4)
    assert got.tolist() == [ref.negative(positives, 10, 20) for _ in range(200)]
    assert not positives & set(got.tolist())
    assert got.min() >= 0


def test_draw_negative_gives_up_on_a_full_row():
    indices = np.arange(6, dtype=np.int32)
    assert _negatives(0, 0, indices, 0, 6, 6, 5, 3).tolist() == [-1, -1, -1]


def test_entry_pairs_pack_row_and_column():
    m = sp.random(30, 20, density=0.2, format="csr", random_state=0)
    pairs = entry_pairs(m.indptr.astype(np.int64), m.indices.astype(np.int32))
    rows = np.repeat(np.arange(30), np.diff(m.indptr))
    np.testing.assert_array_equal(pairs >> 32, rows)
    np.testing.assert_array_equal(pairs & 0xFFFFFFFF, m.indices)
