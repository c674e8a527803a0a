"""Data: ids, the Interactions container, MovieLens and tabular loaders, synthetic data."""

from .ids import IdMap
from .interactions import Interactions

__all__ = ["IdMap", "Interactions"]
