"""Child processes that die with the process that started them (test servers)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess.Popen`` that has the kernel send ``sig`` to the child
    when its parent exits, even when the parent is killed and runs no clean-up (a test run
    stopped with ``kill -9`` would otherwise leave its servers running). Linux only: None
    elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    # resolved here, in the parent: the child between fork and exec must not import
    # (another thread of the parent may have held the import lock at the fork)
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    get_errno = ctypes.get_errno
    code = int(sig)

    def preexec() -> None:
        if prctl(_PR_SET_PDEATHSIG, code, 0, 0, 0) != 0:  # pragma: no cover
            raise OSError(get_errno(), "prctl(PR_SET_PDEATHSIG) failed")

    return preexec
