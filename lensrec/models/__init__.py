"""Models: every one follows the contract in :mod:`lensrec.models.base`.

Model classes are imported on first use: ``lensrec.models.BiasedMF`` or
``lensrec.models.MODELS["biased-mf"]`` imports that model's module (and only then whatever
it needs, e.g. torch for NCF), so ``import lensrec.models`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._registry import MODELS, Entry, Registry, make_model, register
from ._trainer import EpochTrainer, TrainingDivergedError, TrainLog
from .base import Capabilities, Query, RatingPredictor, Recommender, load, read_meta

__all__ = [
    "MODELS",
    "Entry",
    "Registry",
    "register",
    "make_model",
    "Recommender",
    "RatingPredictor",
    "Capabilities",
    "Query",
    "load",
    "read_meta",
    "EpochTrainer",
    "TrainLog",
    "TrainingDivergedError",
    "Popularity",
    "BiasedMF",
    "Baseline",
    "SVD",
    "SVDpp",
    "KNNBaseline",
    "BPMF",
    "ALS",
    "BPR",
    "WARP",
    "EASE",
    "SLIM",
    "PureSVD",
    "ItemKNN",
    "NCF",
    "Item2Vec",
]


def __getattr__(name: str) -> Any:
    entry = MODELS.by_class_name(name)
    if entry is None:
        raise AttributeError(f"module 'lensrec.models' has no attribute {name!r}")
    cls = MODELS[entry.name]
    globals()[name] = cls
    return cls


if TYPE_CHECKING:  # pragma: no cover
    from .als import ALS
    from .baseline import Baseline
    from .biased_mf import BiasedMF
    from .bpmf import BPMF
    from .bpr import BPR
    from .ease import EASE
    from .item2vec import Item2Vec
    from .item_knn import ItemKNN
    from .knn_baseline import KNNBaseline
    from .ncf import NCF
    from .popularity import Popularity
    from .pure_svd import PureSVD
    from .slim import SLIM
    from .svd_sgd import SVD
    from .svdpp import SVDpp
    from .warp import WARP
