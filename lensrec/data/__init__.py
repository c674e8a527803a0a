"""Data: ids, the Interactions container, MovieLens and tabular loaders, synthetic data."""

from .ids import IdMap
from .interactions import Interactions
from .movielens import DATASETS, REGISTRY, MovieLensVariant, fetch, load_dataset, load_movielens
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
    "load_table",
    "synthetic",
    "describe",
    "format_summary",
]
