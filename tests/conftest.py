"""Shared fixtures: a seeded rng (LENSREC_TEST_SEED reruns with fresh seeds) and small data."""

from __future__ import annotations

import os

import numpy as np
import pytest

SEED = int(os.environ.get("LENSREC_TEST_SEED", "20261122"))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(SEED)


@pytest.fixture
def seed() -> int:
    return SEED


@pytest.fixture(scope="session")
def ml100k_positives():
    """ml-100k with ratings >= 4 (the loader's cache, or the recbole wheel); skips when absent."""
    from lensrec.data import load_dataset
    from lensrec.split import min_rating

    try:
        data = load_dataset("ml-100k")
    except Exception as exc:  # no cache and no network here
        pytest.skip(f"ml-100k unavailable: {exc}")
    return min_rating(data, 4)
