"""Models: every one follows the contract in :mod:`lensrec.models.base`."""

from .base import MODELS, RatingPredictor, Recommender, load, register
from .biased_mf import BiasedMF
from .popularity import Popularity

__all__ = ["MODELS", "Recommender", "RatingPredictor", "load", "register", "Popularity", "BiasedMF"]
