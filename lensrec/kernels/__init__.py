"""numba kernels: arrays and scalars in, arrays out; no ids, models or logging."""

import numpy as np

from ._csr import csr_parts, triples_by_row

__all__ = ["csr_parts", "readonly", "triples_by_row"]


def readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a`` (no copy).

    numba compiles one specialisation per array kind, and read-only is a kind: the training
    data's own arrays are read-only, a hold-out's fancy-indexed copies are not. Call sites
    that pass both through ``readonly`` compile each kernel once.
    """
    view = a.view()
    view.flags.writeable = False
    return view
