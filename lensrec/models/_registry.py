"""The model registry: CLI names -> ``"module:Class"``, imported on first use.

``import lensrec`` (and ``import lensrec.models``) imports no model module: a model's module,
and whatever heavy dependency it needs (torch, gensim), is imported when the model is first
asked for by name. A model whose optional dependency is missing raises
:class:`~lensrec.errors.MissingExtraError` naming the extra to install.

Classes from outside lensrec join with the :func:`register` decorator; such a class can then
be built by name, saved, loaded and checked like a built-in one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ConfigError, MissingExtraError

if TYPE_CHECKING:
    from .base import Recommender

__all__ = ["MODELS", "Registry", "Entry", "register"]


@dataclass(frozen=True)
class Entry:
    """One registered model: its CLI name, ``"module:Class"`` and the extra it needs."""

    name: str
    target: str
    extra: str | None = None

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]

    @property
    def class_name(self) -> str:
        return self.target.partition(":")[2]


#: built-in models; a model module appears here when it lands
_BUILTIN: tuple[Entry, ...] = (
    Entry("popularity", "lensrec.models.popularity:Popularity"),
    Entry("biased-mf", "lensrec.models.biased_mf:BiasedMF"),
    Entry("bpmf", "lensrec.models.bpmf:BPMF"),
    Entry("ease", "lensrec.models.ease:EASE"),
    Entry("slim", "lensrec.models.slim:SLIM"),
    Entry("pure-svd", "lensrec.models.pure_svd:PureSVD"),
    Entry("item-knn", "lensrec.models.item_knn:ItemKNN"),
    Entry("baseline", "lensrec.models.baseline:Baseline"),
    Entry("svd", "lensrec.models.svd_sgd:SVD"),
    Entry("svdpp", "lensrec.models.svdpp:SVDpp"),
    Entry("knn-baseline", "lensrec.models.knn_baseline:KNNBaseline"),
    Entry("als", "lensrec.models.als:ALS"),
    Entry("bpr", "lensrec.models.bpr:BPR"),
    Entry("warp", "lensrec.models.warp:WARP"),
    Entry("blend", "lensrec.models.blend:Blend"),
    Entry("rank-blend", "lensrec.models.blend:RankBlend"),
    Entry("ncf", "lensrec.models.ncf:NCF", extra="neural"),
    Entry("item2vec", "lensrec.models.item2vec:Item2Vec", extra="item2vec"),
)


class Registry(Mapping[str, "type[Recommender]"]):
    """Read-only mapping of model names to classes; ``registry[name]`` imports on first use."""

    def __init__(self, entries: tuple[Entry, ...] = ()):
        self._entries: dict[str, Entry] = {e.name: e for e in entries}
        self._classes: dict[str, type[Recommender]] = {}

    # --- Mapping -----------------------------------------------------------------------------
    def __getitem__(self, name: str) -> type[Recommender]:
        cls = self._classes.get(name)
        if cls is not None:
            return cls
        entry = self._entries.get(name)
        if entry is None:
            raise ConfigError(f"unknown model {name!r}; known: {', '.join(sorted(self))}")
        try:
            module = importlib.import_module(entry.module)
        except ModuleNotFoundError as exc:
            missing = str(exc.name or "")
            if entry.extra is not None and missing and missing != entry.module:
                raise MissingExtraError(f"model {name!r}", entry.extra, exc.name) from None
            raise
        cls = getattr(module, entry.class_name)
        self._classes[name] = cls
        return cls

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str, default: Any = None) -> Any:
        """The class of ``name``, or ``default`` for an unknown name (imports on first use)."""
        return self[name] if name in self._entries else default

    # --- registry ----------------------------------------------------------------------------
    def entry(self, name: str) -> Entry:
        """The registration of ``name`` (no import)."""
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(f"unknown model {name!r}; known: {', '.join(sorted(self))}") from None

    def add(self, name: str, cls: type[Recommender], extra: str | None = None) -> None:
        """Register ``cls`` under ``name`` (a built-in name re-registered by its own module is fine)."""
        target = f"{cls.__module__}:{cls.__qualname__}"
        old = self._entries.get(name)
        if old is not None and old.target != target:
            raise ConfigError(f"model name {name!r} is already registered to {old.target}")
        self._entries[name] = Entry(name, target, extra if old is None else old.extra)
        self._classes[name] = cls

    def name_of(self, cls: type) -> str | None:
        """The registered name of a class, or None."""
        target = f"{cls.__module__}:{cls.__qualname__}"
        for entry in self._entries.values():
            if entry.target == target:
                return entry.name
        return None

    def by_class_name(self, class_name: str) -> Entry | None:
        """The built-in or registered entry whose class is called ``class_name``."""
        for entry in self._entries.values():
            if entry.class_name == class_name:
                return entry
        return None


MODELS = Registry(_BUILTIN)
"""Every model known by name: ``MODELS["als"]`` gives the class (imported on first use)."""

_C = TypeVar("_C", bound=type)


def register(name: str, *, extra: str | None = None) -> Callable[[_C], _C]:
    """Class decorator: make a model known to the CLI, tuning, :func:`~lensrec.load` and
    :func:`~lensrec.testing.check_model` under ``name``.

    >>> from lensrec.models import Popularity, register
    >>> @register("my-popularity")
    ... class MyPopularity(Popularity):
    ...     pass
    >>> MODELS["my-popularity"] is MyPopularity
    True
    """

    def deco(cls: _C) -> _C:
        cls.name = name  # type: ignore[attr-defined]
        MODELS.add(name, cls, extra)
        return cls

    return deco


def make_model(name: str, params: Mapping[str, Any] | None = None) -> Recommender:
    """Build model ``name`` with ``params`` (unknown parameter names raise ConfigError)."""
    cls = MODELS[name]
    return cls().set_params(**dict(params or {}))
