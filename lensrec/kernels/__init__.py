"""numba kernels: arrays and scalars in, arrays out; no ids, models or logging."""

from ._csr import csr_parts, triples_by_row

__all__ = ["csr_parts", "triples_by_row"]
