"""numba_threads: the one context manager that lowers numba's thread count for a block."""

from __future__ import annotations

import threading

import numba
import pytest

from lensrec._config import numba_threads

needs_two = pytest.mark.skipif(
    numba.config.NUMBA_NUM_THREADS < 2, reason="needs numba with at least 2 threads"
)


@pytest.fixture
def two_threads():
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    yield
    numba.set_num_threads(before)


@needs_two
def test_caps_and_restores(two_threads):
    with numba_threads(1) as count:
        assert count == 1 == numba.get_num_threads()
    assert numba.get_num_threads() == 2


@needs_two
@pytest.mark.parametrize("n", [None, 2, 5])
def test_never_raises_the_count(two_threads, n):
    with numba_threads(n) as count:
        assert count == 2 == numba.get_num_threads()
    assert numba.get_num_threads() == 2


@needs_two
def test_below_one_is_one_and_an_error_still_restores(two_threads):
    with pytest.raises(KeyError):
        with numba_threads(0) as count:
            assert count == 1 == numba.get_num_threads()
            raise KeyError("boom")
    assert numba.get_num_threads() == 2


@needs_two
def test_the_cap_is_local_to_the_calling_thread(two_threads):
    seen = []
    with numba_threads(1):
        worker = threading.Thread(target=lambda: seen.append(numba.get_num_threads()))
        worker.start()
        worker.join()
        assert numba.get_num_threads() == 1
    assert seen == [numba.config.NUMBA_NUM_THREADS]  # numba's default, not the cap
