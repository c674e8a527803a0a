"""Process-wide settings: one thread count for numba, BLAS and torch; the random-state helpers."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import numpy as np

from .errors import ConfigError
from .types import RandomState


def n_threads() -> int:
    """Threads for parallel work: ``LENSREC_THREADS`` or all cores."""
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


_applied: int | None = None
_controller: tuple[tuple[bool, ...], object] | None = None


def _blas_controller() -> object:
    """A cached threadpoolctl controller (making one inspects every loaded library, ~10 ms);
    made again when a library that brings its own BLAS (scipy.linalg, torch) has been
    imported since."""
    global _controller
    key = tuple(m in sys.modules for m in ("scipy.linalg", "torch", "sklearn"))
    if _controller is None or _controller[0] != key:
        from threadpoolctl import ThreadpoolController

        _controller = (key, ThreadpoolController())
    return _controller[1]


def apply_threads() -> int:
    """Apply :func:`n_threads` to numba (capped at its pool), BLAS and torch; return it.

    Called by ``fit`` and ``recommend``, so a ``LENSREC_THREADS`` changed at run time applies.
    BLAS is set through threadpoolctl (OpenBLAS, MKL, BLIS) and torch only when torch is
    already imported (this never imports it).
    """
    global _applied
    import numba

    value = n_threads()
    # numba.config sets NUMBA_NUM_THREADS at import time; its stub does not declare it
    numba.set_num_threads(min(value, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    if value != _applied:
        _blas_controller().limit(limits=value, user_api="blas")  # type: ignore[attr-defined]
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(value)
        _applied = value
    return value


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """BLAS pinned to one thread, e.g. around a numba ``parallel=True`` kernel that calls it
    from every thread (without this, 2 cores x 2 BLAS threads oversubscribe the machine)."""
    with _blas_controller().limit(limits=1, user_api="blas"):  # type: ignore[attr-defined]
        yield


@contextlib.contextmanager
def numba_threads(n: int | None) -> Iterator[int]:
    """numba's thread count capped at ``n`` inside the block, restored on leaving it.

    The count never rises (``n`` above the current count, or None, leaves it as it is; ``n``
    below 1 counts as 1), so ``LENSREC_THREADS`` stays an upper bound. Yields the count in
    force. Use it around parallel kernels with too little work for every thread: fewer blocks
    than threads, or data so small that waking the pool costs more than it saves.

    numba's ``set_num_threads`` is thread-local: the cap applies to the parallel kernels the
    calling thread launches, not to kernels launched from other Python threads, and a thread
    started inside the block begins with numba's default count, not the cap.
    """
    import numba

    before = numba.get_num_threads()
    count = before if n is None else max(1, min(before, int(n)))
    numba.set_num_threads(count)
    try:
        yield count
    finally:
        numba.set_num_threads(before)


def rng(random_state: RandomState) -> np.random.Generator:
    """Turn a ``random_state`` (None, int, Generator) into a Generator; no global RNG.

    This is the one place lensrec makes a Generator from a user's ``random_state``; anything
    else (a float, a bool, a legacy ``RandomState``) is a :class:`ConfigError`.
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, (bool, np.bool_)) or not (
        random_state is None or isinstance(random_state, (int, np.integer))
    ):
        raise ConfigError(
            "random_state must be None, an int or a numpy Generator, "
            f"got {type(random_state).__name__}"
        )
    return np.random.default_rng(random_state)


def seed_from(gen: np.random.Generator) -> int:
    """Draw an integer seed for a numba kernel from a Generator."""
    return int(gen.integers(0, 2**31 - 1))


_F = TypeVar("_F", bound=Callable[..., Any])


def seed_is_random_state(func: _F) -> _F:
    """Make ``func(seed=...)`` an error that names the keyword: ``random_state`` is the
    library's one name for a seed (the command line's is ``--seed``)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if "seed" in kwargs:
            name = func.__qualname__.removesuffix(".__init__")
            raise ConfigError(
                f"{name}() has no seed=; lensrec's library calls the seed random_state "
                f"everywhere: {name}(..., random_state={kwargs['seed']!r}) (the command line "
                "calls it --seed)"
            )
        return func(*args, **kwargs)

    return cast(_F, wrapper)
