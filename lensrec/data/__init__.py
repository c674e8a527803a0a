"""Data: ids, Interactions, loading by name or path (MovieLens, tabular files), synthetic data."""

from .ids import IdMap
from .interactions import Interactions
from .item_info import load_item_info
from .loading import load_dataset
from .movielens import DATASETS, REGISTRY, MovieLensVariant, fetch, load_movielens
from .summary import describe, format_summary
from .synthetic import synthetic
from .tabular import RatingScale, load_table

__all__ = [
    "IdMap",
    "Interactions",
    "DATASETS",
    "REGISTRY",
    "MovieLensVariant",
    "RatingScale",
    "fetch",
    "load_movielens",
    "load_dataset",
    "load_item_info",
    "load_table",
    "synthetic",
    "describe",
    "format_summary",
]
