"""One thread setting (LENSREC_THREADS) for numba, BLAS and torch; the one RNG helper."""

from __future__ import annotations

import numpy as np
import pytest

from lensrec import ConfigError
from lensrec._config import apply_threads, n_threads, rng, single_threaded_blas


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_lensrec_threads_sets_numba_and_blas(monkeypatch):
    import numba

    np.ones((4, 4)) @ np.ones((4, 4))  # make sure a BLAS is loaded
    monkeypatch.setenv("LENSREC_THREADS", "1")
    assert apply_threads() == 1
    assert numba.get_num_threads() == 1
    assert set(_blas_threads()) <= {1}
    monkeypatch.setenv("LENSREC_THREADS", "2")
    assert apply_threads() == 2
    assert numba.get_num_threads() == min(2, numba.config.NUMBA_NUM_THREADS)
    if _blas_threads():
        with single_threaded_blas():
            assert set(_blas_threads()) == {1}


@pytest.mark.parametrize("raw", ["0", "-1", "two", "1.5"])
def test_bad_thread_setting_is_a_config_error(monkeypatch, raw):
    monkeypatch.setenv("LENSREC_THREADS", raw)
    with pytest.raises(ConfigError, match="LENSREC_THREADS"):
        n_threads()


def test_rng_helper():
    assert rng(3).integers(1000) == rng(3).integers(1000)
    gen = np.random.default_rng(0)
    assert rng(gen) is gen
    for bad in (1.5, True, "7", np.random.RandomState(0)):
        with pytest.raises(ConfigError, match="random_state"):
            rng(bad)
