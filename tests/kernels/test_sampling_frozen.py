"""BPR and WARP kernels give, bit for bit, the outputs they gave before their shared sampling
helpers moved to :mod:`lensrec.kernels._sampling`.

The expected digests were produced by running :func:`_bpr_outputs` and :func:`_warp_outputs`
(this file, unchanged but for ``bpr_fold_in``'s last two arguments, since swapped to
``max_tries, seed``) on commit 129cb89, the tree before the move, checked out with
``git worktree add /tmp/kdedup_before 129cb89`` and imported first on ``PYTHONPATH``. With one
numba thread the kernels are bitwise repeatable; the digests pin that on one machine and one
numba version (a CPU with other vector widths may round differently: then regenerate them from
the old commit before concluding anything). The few literal values beside each digest are
there to make a failure readable.
"""

from __future__ import annotations

import hashlib

import numba
import numpy as np
import pytest
import scipy.sparse as sp

from lensrec.kernels.bpr import bpr_epoch, bpr_fold_in
from lensrec.kernels.warp import warp_epoch, warp_fold_in


def _matrix(n_users: int, n_items: int, density: float, seed: int) -> sp.csr_matrix:
    # every row has at least one entry; a few rows hold most of the catalogue (exact filters)
    gen = np.random.default_rng(seed)
    mask = gen.random((n_users, n_items)) < density
    mask[np.arange(n_users), gen.integers(0, n_items, n_users)] = True
    mask[:3, : n_items - 2] = True
    m = sp.csr_matrix(mask.astype(np.float32))
    m.sort_indices()
    return m


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        h.update(name.encode())
        h.update(np.ascontiguousarray(arrays[name]).tobytes())
    return h.hexdigest()


def _bpr_outputs() -> dict[str, np.ndarray]:
    """Three BPR epochs (several RNG blocks each) and a fold-in, on one thread."""
    m = _matrix(120, 90, 0.2, seed=1)
    gen = np.random.default_rng(2)
    U = gen.normal(0, 0.1, (m.shape[0], 6)).astype(np.float32)
    V = gen.normal(0, 0.1, (m.shape[1], 6)).astype(np.float32)
    b = gen.normal(0, 0.1, m.shape[1]).astype(np.float32)
    stats = []
    for seed in (17, 18, 19):
        stats.extend(bpr_epoch(m.indptr, m.indices, U, V, b, 9000, 0.05, 0.01, 0.001, seed, 4))
    X = np.zeros((40, 6), dtype=np.float32)
    bpr_fold_in(m.indptr[:41], m.indices, V, b, X, 3, 0.05, 0.01, 4, 5)  # max_tries, seed
    return {"U": U, "V": V, "b": b, "X": X, "stats": np.array(stats, dtype=np.float64)}


def _warp_outputs() -> dict[str, np.ndarray]:
    """WARP epochs (several RNG blocks each: plain SGD, AdaGrad, k-OS) and fold-ins, one thread."""
    m = _matrix(150, 100, 0.3, seed=3)
    gen = np.random.default_rng(4)
    U = gen.normal(0, 0.1, (m.shape[0], 6)).astype(np.float32)
    V = gen.normal(0, 0.1, (m.shape[1], 6)).astype(np.float32)
    b = gen.normal(0, 0.1, m.shape[1]).astype(np.float32)
    acc = [np.ones_like(U), np.ones_like(V), np.ones_like(b)]
    stats = []
    for epoch, (adagrad, kos_k, kos_n) in enumerate([(False, 0, 0), (True, 0, 0), (True, 2, 5)]):
        stats.extend(
            warp_epoch(m.indptr, m.indices, U, V, b, *acc, 0.05, 0.01, 0.001, 10, adagrad,
                       kos_k, kos_n, 23 + epoch)
        )  # fmt: skip
    folds = {}
    for adagrad in (False, True):
        X = np.zeros((40, 6), dtype=np.float32)
        warp_fold_in(m.indptr[:41], m.indices, V, b, X, 3, 0.05, 0.01, 10, adagrad, 5)
        folds[f"X{int(adagrad)}"] = X
    accums = {"acc_u": acc[0], "acc_v": acc[1], "acc_b": acc[2]}
    return {"U": U, "V": V, "b": b, **accums, **folds, "stats": np.array(stats, np.float64)}


@pytest.fixture
def one_thread():
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(old)


# produced on commit 129cb89 (see the module docstring)
BPR_DIGEST = "a3d9c202ddd0365efc9d75dac7558e4a93fbd7605702f66586bef9ef15fe866c"
BPR_STATS = [  # (mean loss, share correct, skipped) of each epoch
    0.683300169289921, 0.5545748383888612, 956.0,
    0.6702878617163427, 0.5854774863928749, 916.0,
    0.6357237786455671, 0.648400694272254, 934.0,
]  # fmt: skip
WARP_DIGEST = "9c758e9f95b400752a6eb311b0c6bbe67cdc8cf6c4dc6d933be8cbff615d5ad2"
WARP_STATS = [  # (mean loss, share updated, mean sampled) of each epoch
    4.617971098945351, 0.9278776606736929, 2.4589791279189916,
    4.310222680048818, 0.9030791485844183, 2.8979127918991527,
    2.8473167776573787, 0.8904732382723703, 3.442446786526142,
]  # fmt: skip


def test_bpr_outputs_are_unchanged(one_thread):
    out = _bpr_outputs()
    np.testing.assert_array_equal(out["stats"], BPR_STATS)
    assert _digest(out) == BPR_DIGEST


def test_warp_outputs_are_unchanged(one_thread):
    out = _warp_outputs()
    np.testing.assert_array_equal(out["stats"], WARP_STATS)
    assert _digest(out) == WARP_DIGEST
