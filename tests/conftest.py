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
