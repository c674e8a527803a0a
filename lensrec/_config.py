"""Process-wide settings: the thread count and the random-state helper."""

from __future__ import annotations

import os

import numpy as np

from .errors import ConfigError
from .types import RandomState


def n_threads() -> int:
    """Threads for parallel kernels: ``LENSREC_THREADS`` or all cores."""
    raw = os.environ.get("LENSREC_THREADS", "").strip()
    if not raw:
        return max(1, os.cpu_count() or 1)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"LENSREC_THREADS must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise ConfigError(f"LENSREC_THREADS must be a positive integer, got {raw!r}")
    return value


def apply_threads() -> int:
    """Set numba's thread count from :func:`n_threads` (capped at its pool); return it.

    Called by ``fit`` and ``recommend``, so ``LENSREC_THREADS`` changed at run time applies.
    """
    import numba

    # numba.config sets NUMBA_NUM_THREADS at import time; its stub does not declare it
    value = min(n_threads(), numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    numba.set_num_threads(value)
    return value


def rng(random_state: RandomState) -> np.random.Generator:
    """Turn a ``random_state`` (None, int, Generator) into a Generator; no global RNG."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def seed_from(gen: np.random.Generator) -> int:
    """Draw an integer seed for a numba kernel from a Generator."""
    return int(gen.integers(0, 2**31 - 1))
