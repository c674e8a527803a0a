"""lensrec: recommender systems from MovieLens to serving.

The common path in five names::

    data = lensrec.load_dataset("ml-100k")
    split = lensrec.make_split(data, "ua", valid="user-random:0.05")
    model = lensrec.models.BiasedMF(random_state=0).fit(split.train, split.valid)
    print(lensrec.evaluate(model, split.train, split.test, k=10).format())
    model.save("m.lrec"); model = lensrec.load("m.lrec")

Names are imported on first use (PEP 562), so ``import lensrec`` is cheap and never pulls in
numba, scipy, polars or an optional extra (torch, optuna, matplotlib, redis, ...).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    ConfigError,
    DataError,
    LensrecError,
    MissingExtraError,
    ModelFormatError,
    NotFittedError,
    UnknownIdError,
)

__version__ = "0.1.0"

#: public name -> "module:attribute" (module None: the submodule itself)
_LAZY: dict[str, str] = {
    "IdMap": "lensrec.data.ids:IdMap",
    "Interactions": "lensrec.data.interactions:Interactions",
    "load_dataset": "lensrec.data.loading:load_dataset",
    "Split": "lensrec.split:Split",
    "make_split": "lensrec.split:make_split",
    "evaluate": "lensrec.evaluate.protocol:evaluate",
    "EvalResult": "lensrec.evaluate.protocol:EvalResult",
    "load": "lensrec.models.base:load",
    "models": "lensrec.models:",
    "data": "lensrec.data:",
    "split": "lensrec.split:",
}

__all__ = [
    "IdMap",
    "Interactions",
    "load_dataset",
    "Split",
    "make_split",
    "evaluate",
    "EvalResult",
    "load",
    "models",
    "data",
    "split",
    "LensrecError",
    "DataError",
    "UnknownIdError",
    "NotFittedError",
    "ModelFormatError",
    "ConfigError",
    "MissingExtraError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'lensrec' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    mod = importlib.import_module(module)
    value = getattr(mod, attr) if attr else mod
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from . import data, models, split
    from .data.ids import IdMap
    from .data.interactions import Interactions
    from .data.loading import load_dataset
    from .evaluate.protocol import EvalResult, evaluate
    from .models.base import load
    from .split import Split, make_split
