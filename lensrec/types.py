"""Type aliases shared across lensrec."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

IndexArray: TypeAlias = npt.NDArray[np.int32]
"""Dense int32 user or item indices."""
ScoreArray: TypeAlias = npt.NDArray[np.float32]
"""float32 scores or predicted ratings."""
RandomState: TypeAlias = int | np.random.Generator | None
"""What ``random_state`` accepts: None, an int seed or a numpy Generator."""

__all__ = ["IndexArray", "ScoreArray", "RandomState"]
