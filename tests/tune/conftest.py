"""Shared by the tuning tests: a small ratings CSV."""

from __future__ import annotations

import pytest

from lensrec.data.planted import make_ratings


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    """120 users x 80 items of planted ratings with timestamps, as a CSV file."""
    data = make_ratings(120, 80, 0.25, random_state=4)
    path = tmp_path_factory.mktemp("d") / "r.csv"
    data.to_frame().select(["user_id", "item_id", "rating", "timestamp"]).write_csv(path)
    return path
