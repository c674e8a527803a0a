"""numba kernels: arrays and scalars in, arrays out; no ids, models or logging."""
