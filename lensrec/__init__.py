"""lensrec: recommender systems from MovieLens to serving.

The common path in five names::

    data = lensrec.load_dataset("ml-100k")
    split = lensrec.make_split(data, "ua", valid="user-random:0.05")
    model = lensrec.models.BiasedMF(random_state=0).fit(split.train, split.valid)
    print(lensrec.evaluate(model, split.train, split.test, k=10).format())
    model.save("m.lrec"); model = lensrec.load("m.lrec")
"""

from . import models
from .data import IdMap, Interactions, load_dataset
from .errors import (
    ConfigError,
    DataError,
    LensrecError,
    ModelFormatError,
    NotFittedError,
    UnknownIdError,
)
from .evaluate import EvalResult, evaluate
from .models.base import load
from .split import Split, make_split

__version__ = "0.1.0"

__all__ = [
    "IdMap",
    "Interactions",
    "load_dataset",
    "Split",
    "make_split",
    "evaluate",
    "EvalResult",
    "models",
    "load",
    "LensrecError",
    "DataError",
    "UnknownIdError",
    "NotFittedError",
    "ModelFormatError",
    "ConfigError",
    "__version__",
]
