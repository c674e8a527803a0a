"""RatingValidation: the validation RMSE every rating model early-stops on."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lensrec.data.planted import make_blocks
from lensrec.models._validation import RatingValidation


def _filler(values: list[float]):
    """A ``predict(users, items, out)`` writing fixed predictions, recording its arguments."""
    seen: list[tuple[np.ndarray, np.ndarray, np.dtype]] = []

    def predict(users: np.ndarray, items: np.ndarray, out: np.ndarray) -> None:
        seen.append((users.copy(), items.copy(), out.dtype))
        out[:] = values

    return predict, seen


def test_rmse_of_predictions_clipped_to_the_scale():
    users, items = np.array([0, 1, 2]), np.array([4, 3, 2])
    check = RatingValidation((users, items, np.array([1.0, 3.0, 5.0])), (1.0, 5.0))
    predict, seen = _filler([0.0, 3.5, 6.0])  # clipped to 1, 3.5, 5: errors 0, 0.5, 0
    assert check(predict) == pytest.approx(math.sqrt(0.25 / 3), abs=1e-15)
    ((u, i, dtype),) = seen
    assert u.tolist() == [0, 1, 2] and i.tolist() == [4, 3, 2]
    assert u.dtype == np.int32 and i.dtype == np.int32 and dtype == np.float32
    assert len(check) == 3


def test_no_scale_no_clipping():
    check = RatingValidation((np.array([0]), np.array([0]), np.array([5.0])))
    predict, _ = _filler([7.0])
    assert check(predict) == 2.0


def test_float32_predictions_float64_error():
    """The float64 RMSE of the float32 predictions (what every rating model reported)."""
    check = RatingValidation((np.array([0]), np.array([0]), np.array([3.0])), (1.0, 5.0))
    predict, _ = _filler([3.1])
    assert check(predict) == float(np.float32(3.1)) - 3.0


def test_float64_predictions_keep_their_precision():
    """``dtype=float64`` (BPMF's averaged predictions) is not rounded to float32."""
    check = RatingValidation(
        (np.array([0, 1]), np.array([0, 1]), np.array([3.0, 0.1])), (0.1, 5.0), dtype=np.float64
    )
    predict, seen = _filler([3.1, 0.0])  # the second is clipped to 0.1, in float64: no error
    assert check(predict) == pytest.approx(math.sqrt(0.1**2 / 2), abs=1e-15)
    assert seen[0][2] == np.float64


def test_interactions_without_ratings_are_refused():
    implicit = make_blocks()[0]
    assert implicit.ratings is None
    with pytest.raises(ValueError, match="no ratings"):
        RatingValidation(implicit, (1.0, 5.0))
