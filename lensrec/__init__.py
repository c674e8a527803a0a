"""lensrec: recommender systems from MovieLens to serving."""

from .data import IdMap, Interactions
from .errors import (
    ConfigError,
    DataError,
    LensrecError,
    ModelFormatError,
    NotFittedError,
    UnknownIdError,
)
from .models.base import load

__version__ = "0.1.0"

__all__ = [
    "IdMap",
    "Interactions",
    "load",
    "LensrecError",
    "DataError",
    "UnknownIdError",
    "NotFittedError",
    "ModelFormatError",
    "ConfigError",
    "__version__",
]
