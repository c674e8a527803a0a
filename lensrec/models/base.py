"""The model contract: Recommender and RatingPredictor, the query, save and load.

Public methods live here once (check fitted -> validate -> private hook -> shape output).
A model implements:

- ``_fit(train, valid, gen, *, show_progress, callback)``: set the learned attributes (names
  ending in ``_``); epoch-trained models run :class:`~lensrec.models._trainer.EpochTrainer`;
- scoring, either as a factor model (``_user_vectors`` for known users, ``_item_vectors``, and
  ``_fold_in`` for users given by their history: scores are dot products) or directly with
  ``_score(query, items)``, which sees each row's history (item-item models, SVD++);
- ``_predict(users, items)`` for rating models;
- optionally ``_similar_scores`` / ``_similarity_vectors`` for ``similar_items``,
  ``estimate_memory`` for models whose memory is not linear in the data, and ``warm_up``.

Every model declares its :class:`Capabilities`; the conformance suite
(:func:`lensrec.testing.check_model`) is parametrised by them.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import json
import logging
import os
import time
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Literal,
    Self,
    TypeAlias,
    dataclass_transform,
    overload,
)

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from .._config import apply_threads, rng, seed_is_random_state
from .._io import atomic_write_bytes, jsonable
from ..data.ids import IdMap
from ..data.interactions import Interactions
from ..errors import (
    ConfigError,
    DataError,
    LensrecWarning,
    ModelFormatError,
    NotFittedError,
    UnknownIdError,
    UnknownIdWarning,
)
from ..types import IndexArray, ScoreArray
from ._params import Declared, check_param_types, check_params
from ._registry import MODELS, register
from ._state import decode_state, encode_state
from ._trainer import Callback, TrainingDivergedError

if TYPE_CHECKING:
    from ..retrieval.results import Recommendations

__all__ = [
    "Recommender",
    "RatingPredictor",
    "Capabilities",
    "Query",
    "load",
    "read_meta",
    "register",
    "MODELS",
    "Callback",
    "available_memory",
]

_log = logging.getLogger(__name__)

FORMAT = "lensrec-model"
FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)

ExcludeArg: TypeAlias = Literal["seen"] | sp.spmatrix | sp.sparray | None


@dataclass(frozen=True)
class Capabilities:
    """What a model needs and offers, declared on the class.

    Attributes
    ----------
    needs_ratings : bool
        Trains only on explicit ratings (False: any interactions, ratings or not).
    predicts_ratings : bool
        Has ``predict(users, items)`` giving ratings on the training scale.
    folds_in : bool
        Recommends for users it never saw, from their history, without refitting.
    fold_in_needs_ratings : bool
        Its fold-in uses the history's ratings (rating models), not just which items.
    uses_history : bool
        Scores every user from their history (item-item models, SVD++), so a known user's
        scores come from the training rows the model keeps.
    uses_validation : bool
        Early-stops only on a ``valid`` set passed to ``fit`` (the CLI then carves one);
        models that hold out their own leave it False.
    epoch_trained : bool
        Trained by the shared epoch trainer (history, early stopping, callbacks).
    similar_items : bool
        ``similar_items`` means something (False: it raises ConfigError, e.g. Popularity).
    personalized : bool
        Different users get different lists (False for popularity baselines).
    extra : str or None
        The optional dependency group it needs (``"torch"``), or None for the core.
    """

    needs_ratings: bool = False
    predicts_ratings: bool = False
    folds_in: bool = False
    fold_in_needs_ratings: bool = False
    uses_history: bool = False
    uses_validation: bool = False
    epoch_trained: bool = False
    similar_items: bool = True
    personalized: bool = True
    extra: str | None = None


@dataclass(frozen=True)
class Query:
    """Who to score: a batch of users, each a known user index or a history (or both).

    Attributes
    ----------
    users : int32 [n]
        Training user indices; ``-1`` for a user the model never saw.
    history : CSR float32 [n, n_items] or None
        The batch's histories, row ``r`` for ``users[r]`` (values: ratings, counts or 1).
        Inside a model's ``_score`` / ``_fold_in`` it is never None: rows of known users
        without a given history are their training rows.
    """

    users: IndexArray
    history: sp.csr_matrix | None

    def __len__(self) -> int:
        return int(self.users.shape[0])

    def __getitem__(self, rows: slice | np.ndarray) -> Query:
        """The query of some rows (a slice, a boolean mask or row positions)."""
        return Query(self.users[rows], None if self.history is None else self.history[rows])

    @property
    def known(self) -> np.ndarray:
        """Boolean mask of rows whose user the model was trained on."""
        return self.users >= 0


def available_memory() -> int:
    """Bytes of memory available to a new allocation (MemAvailable, else total physical)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 1 << 62


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


@dataclass_transform(kw_only_default=True, eq_default=False, field_specifiers=(dataclasses.field,))
class Recommender:
    """Base class of every lensrec model.

    Constructors take only keyword hyper-parameters (stored unchanged) and ``random_state``.
    ``fit`` sets the learned attributes, which end in ``_``.

    A model declares each hyper-parameter once, as an annotated class field with its default;
    the annotation says what values it takes and its tuning range
    (:mod:`lensrec.models._params`), and the keyword-only constructor is generated from the
    fields, as a dataclass's is::

        factors: Annotated[int, Range(1), Search(16, 256, log=True)] = 64
        solver: Literal["cg", "cholesky"] = "cg"
        random_state: RandomState = None

    Class constants are annotated ``ClassVar``. A hand-written ``__init__`` still works (its
    annotations declare the same way), and so do ``_constraints`` / ``search_space`` dicts
    assigned on the class, which then replace the derived ones.

    Attributes
    ----------
    user_ids_, item_ids_ : IdMap
        The training data's id maps; indices in ``recommend`` / ``predict`` refer to them.
    user_items_ : CSR float32 [n_users, n_items]
        The training interactions (ratings, or 1), kept for excluding seen items, for
        models that score from histories, and saved with the model.
    item_titles_ : str array [n_items] or absent
        Item titles, when the training data had them (for people, not for scoring).
    fit_seconds_ : float
        Wall time of the last ``fit``.
    """

    name: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: hyper-parameter rules checked by ``fit`` (name -> object with ``ok`` / ``describe``),
    #: derived from the annotations
    _constraints: ClassVar[Declared[dict[str, Any]]] = Declared("constraints")
    #: hyper-parameter search space for tuning: name -> ("int" | "float", low, high, "log" |
    #: "linear") or ("choice", [values]), derived from the ``Search`` annotations; read by
    #: lensrec's tuning, never by fit
    search_space: ClassVar[Declared[dict[str, tuple[Any, ...]]]] = Declared("search_space")

    # --- parameters ----------------------------------------------------------------------
    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Generate the constructor of a model declaring its hyper-parameters as fields.

        Keyword-only, storing each argument unchanged (``dataclasses.dataclass`` with
        ``eq``, ``repr`` and ``match_args`` off); a class whose constructor is hand-written,
        its own or inherited, keeps it.
        """
        super().__init_subclass__(**kwargs)
        owner = next(k for k in cls.__mro__ if "__init__" in vars(k))
        if owner is object or "__dataclass_params__" in vars(owner):
            dataclasses.dataclass(cls, kw_only=True, eq=False, repr=False, match_args=False)
            if "seed" not in cls._param_names():
                cls.__init__ = seed_is_random_state(cls.__init__)  # type: ignore[method-assign]

    def __post_init__(self) -> None:
        """After the generated constructor: a hyper-parameter of the wrong kind (text for a
        number) fails here, not at ``fit``; ranges are checked by ``fit``."""
        check_param_types(type(self).__name__, self.get_params(), self._constraints)

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]

    @classmethod
    def param_defaults(cls) -> dict[str, Any]:
        """Each hyper-parameter's default, from the constructor's signature."""
        sig = inspect.signature(cls.__init__)
        return {name: sig.parameters[name].default for name in cls._param_names()}

    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters as given to the constructor."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set hyper-parameters (unknown names raise ``ConfigError``); takes effect at next ``fit``."""
        names = set(self._param_names())
        for key, value in params.items():
            if key not in names:
                raise ConfigError(
                    f"{type(self).__name__} has no parameter {key!r}; known: {', '.join(sorted(names))}"
                )
            setattr(self, key, value)
        return self

    def check_params(self) -> None:
        """Raise :class:`ConfigError` for a hyper-parameter out of range (``fit`` does this too)."""
        check_params(type(self).__name__, self.get_params(), self._constraints)

    def __repr__(self) -> str:
        defaults = self.param_defaults()
        parts = []
        for name, value in self.get_params().items():
            default = defaults[name]
            if default is inspect.Parameter.empty or value is not default and value != default:
                parts.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    # --- memory --------------------------------------------------------------------------
    def estimate_memory(self, n_users: int, n_items: int, nnz: int) -> int:
        """Peak bytes ``fit`` will need for this data shape (beyond the data itself).

        The default counts the kept training matrix and 64 float32 numbers per user and
        item; models quadratic in the catalogue override it so that ``fit`` refuses up front.
        """
        return int(12 * nnz + 4 * 64 * (n_users + n_items))

    def _check_memory(self, train: Interactions) -> None:
        need = self.estimate_memory(train.n_users, train.n_items, len(train))
        have = available_memory()
        if need > 0.9 * have:
            raise ConfigError(
                f"{type(self).__name__} would need about {_gib(need)} for {train.n_users:,} "
                f"users x {train.n_items:,} items ({len(train):,} interactions), but only "
                f"{_gib(have)} is available; keep fewer items (e.g. --kcore, or the model's "
                "own item limit) or use a model whose memory is linear in the data"
            )

    # --- fitting -------------------------------------------------------------------------
    def fit(
        self,
        train: Interactions,
        valid: Interactions | None = None,
        *,
        show_progress: bool = False,
        callback: Callback | None = None,
    ) -> Self:
        """Learn from ``train`` (and, for models that use it, early-stop on ``valid``).

        Starts from scratch every time; the same data and ``random_state`` give the same
        model (bitwise with ``LENSREC_THREADS=1``). ``valid`` must share ``train``'s IdMaps.
        A ``fit`` that raises leaves the model as it was (unfitted, or its previous fit).
        ``callback(epoch, seconds, metrics)`` is called after each epoch of epoch-trained
        models and may return True to stop; ``show_progress`` shows a bar over epochs.
        """
        if not isinstance(train, Interactions):
            raise TypeError(f"train must be Interactions, got {type(train).__name__}")
        if len(train) == 0:
            raise DataError(f"{type(self).__name__}.fit: the training data is empty")
        if valid is not None and (
            valid.user_ids is not train.user_ids and valid.user_ids != train.user_ids
        ):
            raise ConfigError("valid must share train's IdMaps (make both with lensrec.split)")
        caps = self.capabilities
        if caps.needs_ratings and train.ratings is None:
            raise ConfigError(
                f"{type(self).__name__} needs explicit ratings; the training data is implicit "
                "(use a ranking model such as als, bpr or ease, or data with a rating column)"
            )
        self.check_params()
        self._check_memory(train)
        old = self._fitted_state()
        old_derived = self.__dict__.get("_derived")
        for attr in old:
            delattr(self, attr)
        self._derived: dict[str, Any] = {}
        try:
            self.user_ids_ = train.user_ids
            self.item_ids_ = train.item_ids
            self.user_items_ = train.csr("rating" if train.ratings is not None else "binary")
            titles = _titles(train)
            if titles is not None:
                self.item_titles_ = titles
            if caps.predicts_ratings and train.ratings is not None:
                self.rating_scale_ = rating_scale(train)
            apply_threads()
            t0 = time.perf_counter()
            self._fit(
                train,
                valid,
                rng(getattr(self, "random_state", None)),
                show_progress=show_progress,
                callback=callback,
            )
            self.fit_seconds_ = time.perf_counter() - t0
            self._check_finite()
            self._prepare()
        except BaseException:
            for attr in self._fitted_state():
                delattr(self, attr)
            for attr, value in old.items():
                setattr(self, attr, value)
            self._derived = old_derived if old_derived is not None else {}
            raise
        return self

    def _fit(
        self,
        train: Interactions,
        valid: Interactions | None,
        gen: np.random.Generator,
        *,
        show_progress: bool,
        callback: Callback | None,
    ) -> None:
        raise NotImplementedError

    @classmethod
    def warm_up(cls, params: Mapping[str, Any] | None = None) -> None:
        """Compile (or load from numba's cache) the model's kernels on tiny data.

        Called before a timed ``fit`` so that fit seconds in run records and benchmarks do
        not include JIT compilation. Models without numba kernels do nothing.

        ``params`` are the hyper-parameters about to be fitted (``{}``: the defaults): a
        model whose settings select between kernels (ALS's ``solver``) may compile only
        the ones those settings call. ``None`` compiles every kernel.
        """

    def _check_finite(self) -> None:
        for name, value in vars(self).items():
            if name.endswith("_") and isinstance(value, np.ndarray) and value.dtype.kind == "f":
                if not np.all(np.isfinite(value)):
                    raise TrainingDivergedError(
                        f"{type(self).__name__}: training diverged ({name} has non-finite values); "
                        "lower learning_rate or raise the regularisation"
                    )

    # --- state ---------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "item_ids_")

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit(train) first")

    @property
    def n_users(self) -> int:
        self._require_fitted()
        return len(self.user_ids_)

    @property
    def n_items(self) -> int:
        self._require_fitted()
        return len(self.item_ids_)

    def _cached(self, key: str, make: Any) -> Any:
        """Derived state (normalised vectors, packed arrays) built once after fit or load."""
        derived = self.__dict__.setdefault("_derived", {})
        if key not in derived:
            derived[key] = make()
        return derived[key]

    def _check_indices(
        self, idx: npt.ArrayLike, kind: str, *, allow_unknown: bool = False
    ) -> np.ndarray:
        arr = np.asarray(idx)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim != 1:
            raise ValueError(f"{kind} indices must be a 1-d array, got shape {arr.shape}")
        if arr.size and arr.dtype.kind not in "iu":
            raise TypeError(
                f"{kind} indices must be integers (translate external ids with model.{kind}_ids_.index)"
            )
        arr = arr.astype(np.int64, copy=False)
        n = self.n_users if kind == "user" else self.n_items
        bad = (arr >= n) | (arr < (-1 if allow_unknown else 0))
        if bad.any():
            raise UnknownIdError(f"{kind} index", arr[bad].tolist(), count=int(bad.sum()))
        return arr.astype(np.int32)

    # --- queries -------------------------------------------------------------------------
    def _history_csr(self, history: Any, n_rows: int | None) -> sp.csr_matrix:
        """A batch-aligned float32 CSR from a sparse matrix or a list of item-index arrays."""
        if sp.issparse(history):
            h = sp.csr_matrix(history, dtype=np.float32)
        else:
            rows = list(history)
            lengths = [len(np.atleast_1d(r)) for r in rows]
            indices = (
                np.concatenate([np.atleast_1d(np.asarray(r)) for r in rows])
                if rows
                else np.zeros(0, dtype=np.int64)
            )
            if indices.size and indices.dtype.kind not in "iu":
                raise TypeError(
                    "history rows must hold item indices (translate ids with model.item_ids_.index)"
                )
            indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            h = sp.csr_matrix(
                (np.ones(indices.size, dtype=np.float32), indices.astype(np.int64), indptr),
                shape=(len(rows), self.n_items),
            )
        if h.shape[1] != self.n_items:
            raise ValueError(f"history must have {self.n_items} item columns, got {h.shape[1]}")
        if n_rows is not None and h.shape[0] != n_rows:
            raise ValueError(f"history has {h.shape[0]} rows for a batch of {n_rows} users")
        if h.nnz and (h.indices.min() < 0 or h.indices.max() >= self.n_items):
            raise UnknownIdError("item index", [int(h.indices.max())])
        if h.nnz and not np.all(np.isfinite(h.data)):
            raise ValueError("history values must be finite")
        h.sum_duplicates()
        h.sort_indices()
        return h

    def _make_query(self, users: npt.ArrayLike | None, history: Any) -> Query:
        if users is None:
            if history is None:
                raise ConfigError("give users, a history, or both")
            h = self._history_csr(history, None)
            return Query(np.full(h.shape[0], -1, dtype=np.int32), h)
        u = self._check_indices(users, "user", allow_unknown=history is not None)
        h = None if history is None else self._history_csr(history, len(u))
        return Query(u, h)

    def _check_fold_in(self, query: Query) -> None:
        if (~query.known).any() and not self.capabilities.folds_in:
            raise ConfigError(
                f"{type(self).__name__} cannot score users it never saw (no fold-in); refit it "
                "with them, or use a model that folds in (see `lensrec models`)"
            )

    # --- scoring hooks -------------------------------------------------------------------
    def _user_vectors(self, users: IndexArray) -> np.ndarray:
        raise NotImplementedError

    def _item_vectors(self) -> np.ndarray:
        raise NotImplementedError

    def _fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        """User vectors ``[m, d]`` (matching ``_item_vectors``) from history rows."""
        raise NotImplementedError

    def _query_vectors(self, query: Query) -> np.ndarray:
        """User vectors for a query: learned rows for known users, fold-in for the rest."""
        known = query.known
        if known.all():
            return self._user_vectors(query.users)
        assert query.history is not None  # unknown users come with a history (_make_query)
        first = self._fold_in(query.history[~known])
        out = np.empty((len(query), first.shape[1]), dtype=np.float32)
        out[~known] = first
        if known.any():
            out[known] = self._user_vectors(query.users[known])
        return out

    def _score(self, query: Query, items: IndexArray | None) -> ScoreArray:
        """Dense float32 scores ``[len(query), n_items or len(items)]``; higher is better.

        The default is the dot product of :meth:`_query_vectors` and ``_item_vectors``;
        a model that keeps it is a *vector model* and ranks through a vector index (exact,
        or approximate when built); a model that overrides it ranks through its scores.
        """
        iv = self._cached("item_vectors", lambda: np.ascontiguousarray(self._item_vectors()))
        if items is not None:
            iv = iv[items]
        return np.ascontiguousarray(self._query_vectors(query) @ iv.T, dtype=np.float32)

    def _score_transform(self, scores: ScoreArray) -> ScoreArray:
        """An increasing map applied to a vector model's top-k dot products (e.g. a
        squashing sigmoid); the ranking is the dot products'. Identity by default."""
        return scores

    @classmethod
    def _is_vector_model(cls) -> bool:
        return (
            cls._score is Recommender._score and cls._item_vectors is not Recommender._item_vectors
        )

    # --- derived state: the indexes queries go through ------------------------------------
    def _prepare(self) -> None:
        """Build what queries read, once, after ``fit`` or ``load``: the ranking index (exact
        over item vectors, or over the model's scores; the approximate one when built), the
        popularity ranking of the fallback chain, and the model's own caches
        (:meth:`_prepare_model`). Nothing is built lazily on a query, so concurrent callers
        only read."""
        from ..retrieval import ExactIndex, ScoreIndex, build_ann, popularity_index

        self._derived = {}
        if type(self)._item_vectors is not Recommender._item_vectors:
            vectors = np.ascontiguousarray(self._item_vectors(), dtype=np.float32)
            self._derived["item_vectors"] = vectors
        if self._is_vector_model():
            self._derived["index:exact"] = ExactIndex(self._derived["item_vectors"])
        else:
            self._derived["index:exact"] = ScoreIndex(self._score_rows, self.n_items)
        seen = getattr(self, "user_items_", None)
        self._derived["popularity"] = popularity_index(seen, self.n_items)
        if getattr(self, "index_", "exact") == "ann":
            self._derived["index:ann"] = build_ann(self)
        if self.capabilities.similar_items:
            if type(self)._similar_scores is not Recommender._similar_scores:
                self._derived["index:similar"] = ScoreIndex(self._similar_rows, self.n_items)
            elif self._has_similarity_vectors():
                self._derived["index:similar"] = ExactIndex(self._unit_vectors())
        self._prepare_model()

    @classmethod
    def _has_similarity_vectors(cls) -> bool:
        return (
            cls._similarity_vectors is not Recommender._similarity_vectors
            or cls._item_vectors is not Recommender._item_vectors
        )

    def _prepare_model(self) -> None:
        """Hook: build a model's own derived state (packed arrays, Gram matrices) that its
        queries read through :meth:`_cached`. The default builds ``_packed()`` when the model
        has one (rating models whose ``predict`` reads packed factors)."""
        packed = getattr(self, "_packed", None)
        if callable(packed):
            packed()

    def _index(self, kind: str | None) -> Any:
        kind = getattr(self, "index_", "exact") if kind is None else kind
        if kind not in ("exact", "ann"):
            raise ConfigError(f"index must be 'exact' or 'ann', got {kind!r}")
        found = self._derived.get(f"index:{kind}")
        if found is None:
            if not self._is_vector_model():
                raise ConfigError(
                    f"{type(self).__name__} scores items without item vectors, so it has no "
                    "approximate index; use index='exact'"
                )
            raise ConfigError(
                f"this {type(self).__name__} has no approximate index; build it once with "
                "model.build_index('ann') (it is saved with the model)"
            )
        return found

    def build_index(self, kind: Literal["exact", "ann"] = "ann", **params: Any) -> Self:
        """Make ``kind`` the index this model's rankings go through, building it now.

        ``"ann"`` builds an approximate nearest-neighbour index over the item vectors
        (vector models only; needs ``pip install 'lensrec[ann]'``); ``params`` are
        :meth:`lensrec.retrieval.ANNIndex.build`'s. It is saved with the model and rebuilt
        on load when the file lacks it. ``"exact"`` goes back to exact search. Either way a
        single call can still choose with ``recommend(..., index=...)``.
        """
        self._require_fitted()
        from ..retrieval import build_ann

        if kind == "exact":
            for attr in ("index_", "index_params_", "ann_blob_"):
                self.__dict__.pop(attr, None)
            self._derived.pop("index:ann", None)
            return self
        if kind != "ann":
            raise ConfigError(f"index kind must be 'exact' or 'ann', got {kind!r}")
        if not self._is_vector_model():
            raise ConfigError(
                f"{type(self).__name__} scores items without item vectors: an approximate "
                "index needs a vector model (als, bpr, warp, pure-svd, biased-mf, svd, ...)"
            )
        self.index_params_ = dict(params)
        self.__dict__.pop("ann_blob_", None)
        index = build_ann(self)
        self.index_ = "ann"
        self._derived["index:ann"] = index
        return self

    def _score_rows(self, block: Query, items: IndexArray | None) -> ScoreArray:
        """Scores of one block of a query, each row's history filled in first where the
        model scores from histories (the :class:`~lensrec.retrieval.ScoreIndex` hook)."""
        if self.capabilities.uses_history:
            block = self._filled_rows(block)
        return self._score(block, items)

    def _filled_rows(self, block: Query) -> Query:
        """History for every row of a block: given rows, else known users' training rows."""
        if block.history is not None:
            return block
        seen = getattr(self, "user_items_", None)
        if seen is None:
            raise ConfigError(
                f"this {type(self).__name__} holds no training interactions (saved by an older "
                "lensrec): pass history= or exclude=None, or refit and save it again"
            )
        return Query(block.users, seen[block.users])

    # --- public ranking API --------------------------------------------------------------
    def recommend(
        self,
        users: npt.ArrayLike | None,
        k: int = 10,
        *,
        history: sp.spmatrix | sp.sparray | Sequence[npt.ArrayLike] | None = None,
        exclude: ExcludeArg = "seen",
        items: npt.ArrayLike | None = None,
        index: Literal["exact", "ann"] | None = None,
    ) -> Recommendations:
        """Top-``k`` items for each user of a batch, best first.

        Parameters
        ----------
        users : int array or None
            Training user indices (``model.user_ids_.index(external_ids)`` translates);
            ``-1`` (or ``users=None`` for the whole batch) marks users the model never
            saw, which need ``history``.
        k : int
            List length.
        history : CSR [n, n_items] or list of item-index arrays, optional
            The batch's histories, row ``r`` for user ``r`` (values: ratings, counts or 1).
            Users the model never saw are scored from it (fold-in; see
            ``capabilities.folds_in``); item-item models score every row from it. A user the
            model never saw with an empty history goes down the fallback chain: the
            popularity ranking, flagged in ``fallback``.
        exclude : "seen", None or CSR, default "seen"
            ``"seen"``: not the items in each row's history (given, or the user's training
            items). None: nothing. A CSR users x items: row ``users[i]`` of it (e.g. a
            whole ``train.csr()``; rows of unknown users exclude nothing).
        items : int array, optional
            Restrict candidates to these item indices.
        index : {"exact", "ann"}, optional
            The index to rank with (default: the model's, see :meth:`build_index`).

        Returns
        -------
        Recommendations
            The pair ``(ids, scores)`` (it unpacks as one): int32 ``[n, k]`` item indices
            padded with -1 where fewer than ``k`` candidates exist, float32 scores padded
            with -inf; plus ``fallback`` (bool per row) and ``reasons``.
        """
        self._require_fitted()
        from ..retrieval import (
            FALLBACK_EMPTY_HISTORY,
            FALLBACK_UNUSABLE_HISTORY,
            Recommendations,
        )

        query = self._make_query(users, history)
        k = _check_k(k)
        cand = None if items is None else np.unique(self._check_indices(items, "item"))
        ranker = self._index(index)
        n = len(query)
        empty = ~query.known
        if query.history is not None:
            empty &= np.diff(query.history.indptr) == 0
        unusable = ~empty & self._unusable(query)
        fallback = empty | unusable
        scored = ~fallback
        self._check_fold_in(query[scored] if fallback.any() else query)
        excl = self._exclusion(query, exclude)
        ids = np.full((n, k), -1, dtype=np.int32)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        rows = np.flatnonzero(scored)
        if rows.size:
            sub = query if rows.size == n else query[rows]
            sub_excl = excl if excl is None or rows.size == n else excl[rows]
            if self._is_vector_model():
                qv = self._query_vectors(sub)
                i, s = ranker.search(qv, k, exclude=sub_excl, candidates=cand)
                finite = np.isfinite(s)
                if finite.any():
                    s = s.copy()
                    s[finite] = self._score_transform(s[finite])
            else:
                i, s = ranker.search(sub, k, exclude=sub_excl, candidates=cand)
            ids[rows], scores[rows] = i, s
        reasons = [""] * n
        if fallback.any():
            fb = np.flatnonzero(fallback)
            i, s = self._derived["popularity"].search(
                np.ones((fb.size, 1), dtype=np.float32),
                k,
                exclude=None if excl is None else excl[fb],
                candidates=cand,
            )
            ids[fb], scores[fb] = i, s
            for r in fb:
                reasons[r] = FALLBACK_EMPTY_HISTORY if empty[r] else FALLBACK_UNUSABLE_HISTORY
        return Recommendations(
            ids, scores, fallback=fallback, reasons=tuple(reasons), index_kind=ranker.kind
        )

    def _unusable(self, query: Query) -> np.ndarray:
        """Rows the model cannot score although they have a history (e.g. item2vec, when
        every history item is outside its vocabulary): the fallback chain answers them,
        flagged. Known users' rows use their training rows. Default: none."""
        return np.zeros(len(query), dtype=bool)

    def _exclusion(self, query: Query, exclude: ExcludeArg) -> sp.csr_matrix | None:
        """The batch-aligned CSR of items each row must not get back."""
        if exclude is None:
            return None
        if isinstance(exclude, str):
            if exclude != "seen":
                raise ConfigError(
                    f"exclude must be 'seen', None or a sparse matrix, got {exclude!r}"
                )
            return self._filled_rows(query).history
        if not sp.issparse(exclude):
            raise ConfigError(f"exclude must be 'seen', None or a sparse matrix, got {exclude!r}")
        full = sp.csr_matrix(exclude)
        if full.shape[1] != self.n_items or full.shape[0] < self.n_users:
            raise ValueError(
                f"exclude must be users x items with shape ({self.n_users}, {self.n_items}), "
                f"got {full.shape}"
            )
        rows = full[np.maximum(query.users, 0)]
        if (~query.known).any():
            rows = sp.csr_matrix(sp.diags(query.known.astype(np.float32)) @ rows)
            rows.eliminate_zeros()
        return rows

    def recommend_for_history(
        self,
        items: npt.ArrayLike | Sequence[npt.ArrayLike],
        k: int = 10,
        *,
        ratings: npt.ArrayLike | Sequence[npt.ArrayLike] | None = None,
        exclude_history: bool = True,
        candidates: npt.ArrayLike | None = None,
        index: Literal["exact", "ann"] | None = None,
    ) -> Recommendations:
        """Recommend for users the model never saw, from the items they interacted with.

        ``items`` is one user's item indices (1-d) or a list of them (one per user);
        ``ratings``, aligned, is needed by rating models (``capabilities.fold_in_needs_ratings``).
        No refit: factor models fold the history into a user vector (exact least squares for
        ALS and rating MF, a few gradient steps for BPR / WARP), item-item models score it
        directly. An empty history gets the popularity ranking, flagged as a fallback.
        Returns :class:`~lensrec.retrieval.Recommendations` as :meth:`recommend`.
        """
        self._require_fitted()
        single = _is_single_row(items)
        rows: list[Any] = [items] if single else list(items)  # type: ignore[arg-type]
        h = self._history_csr(rows, None)
        if ratings is not None:
            rrows: list[Any] = [ratings] if single else list(ratings)  # type: ignore[arg-type]
            values = (
                np.concatenate([np.atleast_1d(np.asarray(r, dtype=np.float32)) for r in rrows])
                if rrows
                else np.zeros(0, dtype=np.float32)
            )
            lengths = np.array([len(np.atleast_1d(r)) for r in rows], dtype=np.int64)
            if values.size != lengths.sum():
                raise ValueError("ratings must align with items")
            indices = (
                np.concatenate([np.atleast_1d(np.asarray(r)) for r in rows]).astype(np.int64)
                if rows
                else np.zeros(0, dtype=np.int64)
            )
            h = sp.csr_matrix(
                (values, indices, np.concatenate([[0], np.cumsum(lengths)])),
                shape=(len(rows), self.n_items),
            )
            h.sum_duplicates()
            h.sort_indices()
        elif self.capabilities.fold_in_needs_ratings and h.nnz:
            raise ConfigError(
                f"{type(self).__name__} folds in from ratings: give them with the items "
                "(ratings= in Python, --ratings on the command line)"
            )
        return self.recommend(
            None,
            k,
            history=h,
            exclude="seen" if exclude_history else None,
            items=candidates,
            index=index,
        )

    # --- similar items -------------------------------------------------------------------
    def _similarity_vectors(self) -> np.ndarray:
        """Item vectors whose cosine gives item-item similarity (factor models)."""
        return self._item_vectors()

    def _similar_scores(self, items: IndexArray) -> ScoreArray:
        """Dense ``[len(items), n_items]`` similarity; default: cosine of item vectors."""
        vn = self._cached("unit_item_vectors", self._unit_vectors)
        return np.ascontiguousarray(vn[items] @ vn.T, dtype=np.float32)

    def _similar_rows(self, items: IndexArray, candidates: IndexArray | None) -> ScoreArray:
        scores = self._similar_scores(items)
        return scores if candidates is None else np.ascontiguousarray(scores[:, candidates])

    def _unit_vectors(self) -> np.ndarray:
        v = np.asarray(self._similarity_vectors(), dtype=np.float32)
        norms = np.linalg.norm(v, axis=1)
        norms[norms == 0] = 1.0
        return np.ascontiguousarray(v / norms[:, None])

    def similar_items(
        self, items: npt.ArrayLike, k: int = 10, *, candidates: npt.ArrayLike | None = None
    ) -> tuple[IndexArray, ScoreArray]:
        """The ``k`` items most similar to each item index, never the item itself.

        ``candidates`` restricts the answers to these item indices (e.g. items with enough
        interactions). Returns int32 ``[n, k]`` item indices and float32 similarities,
        padded -1 / -inf.
        """
        self._require_fitted()
        if not self.capabilities.similar_items:
            raise ConfigError(
                f"{type(self).__name__} has no item-item similarity; use item-knn, ease, als "
                "or another model that has one (see `lensrec models`)"
            )
        k = _check_k(k)
        it = self._check_indices(items, "item")
        cand = None if candidates is None else self._check_indices(candidates, "item")
        if "index:similar" not in self._derived:
            raise ConfigError(f"{type(self).__name__} defines no item-item similarity")
        itself = sp.csr_matrix(
            (np.ones(it.size, dtype=np.float32), it, np.arange(it.size + 1)),
            shape=(it.size, self.n_items),
        )
        index = self._derived["index:similar"]
        queries = index.item_vectors[it] if hasattr(index, "item_vectors") else it
        ids, scores = index.search(queries, k, exclude=itself, candidates=cand)
        return ids, scores

    # --- the id-level front door ---------------------------------------------------------
    def recommend_ids(
        self,
        users: Any,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        candidates: Sequence[Any] | None = None,
        on_unknown: Literal["raise", "fallback"] = "raise",
    ) -> Any:
        """Top-``k`` for users given by their **external ids** (as in the data), as a frame.

        The id-level call for people and notebooks: ``model.recommend_ids(4)`` is MovieLens
        user 4, whereas ``model.recommend(4)`` is the user at *index* 4 (the index-level
        calls are for speed, in batches). Translation goes through
        :func:`lensrec.retrieval.recommend_user`.

        Parameters
        ----------
        users : id or list of ids
            External user ids of users the model was trained on.
        k : int
            List length.
        exclude_seen : bool, default True
            Leave out the items each user had in training.
        candidates : list of external item ids, optional
            Choose only among these items (unknown ones are ignored).
        on_unknown : {"raise", "fallback"}
            A user the model never saw raises :class:`UnknownIdError` or gets the
            popularity ranking, with the reason in the ``fallback`` column.

        Returns
        -------
        polars.DataFrame
            One row per recommended item: ``user``, ``rank``, ``item`` (external id),
            ``title`` (empty when the model holds none), ``score`` (what the ranking used:
            predicted ratings for rating models, unclipped), ``n_train`` (training
            interactions of the item) and ``fallback`` (null when the model answered).
        """
        from ..retrieval.ids import recommend_user

        self._require_fitted()
        frames = [
            _id_frame(
                "user",
                user,
                recommend_user(
                    self,
                    user,
                    k,
                    exclude_seen=exclude_seen,
                    candidates=candidates,
                    on_unknown=on_unknown,
                ),
            )
            for user in _id_list(users)
        ]
        return _concat_frames(frames)

    def recommend_history_ids(
        self,
        items: Sequence[Any],
        k: int = 10,
        *,
        ratings: Sequence[float] | None = None,
        exclude_history: bool = True,
        candidates: Sequence[Any] | None = None,
    ) -> Any:
        """Top-``k`` for a new user given by the **external ids** of their items, as a frame.

        The id-level form of :meth:`recommend_for_history` (which takes item indices).
        Unknown item ids are left out with a :class:`~lensrec.errors.UnknownIdWarning`
        naming them; an empty or all-unknown history gets the popularity ranking, with the
        reason in the ``fallback`` column. Columns as :meth:`recommend_ids` without ``user``.
        """
        from ..retrieval.ids import recommend_history

        self._require_fitted()
        answer = recommend_history(
            self,
            list(items),
            k,
            ratings=ratings,
            exclude_history=exclude_history,
            candidates=candidates,
        )
        if answer.n_unknown:
            more = answer.n_unknown - len(answer.unknown)
            warnings.warn(
                f"{answer.n_unknown} unknown item id(s) left out of the history: "
                f"{', '.join(map(repr, answer.unknown))}{f' and {more} more' if more else ''}",
                UnknownIdWarning,
                stacklevel=2,
            )
        return _id_frame(None, None, answer)

    def similar_ids(
        self,
        items: Any,
        k: int = 10,
        *,
        min_count: int | None = None,
        candidates: Sequence[Any] | None = None,
    ) -> Any:
        """The ``k`` items most similar to each item given by its **external id**, as a frame.

        The id-level form of :meth:`similar_items` (which takes indices); through
        :func:`lensrec.retrieval.similar`. ``min_count`` keeps only items with at least that
        many training interactions. Columns: ``query`` (the external id asked about),
        ``rank``, ``item``, ``title``, ``score`` (similarity), ``n_train``.
        """
        from ..retrieval.ids import similar

        self._require_fitted()
        frames = [
            _id_frame(
                "query",
                item,
                similar(self, item, k, min_count=min_count, candidates=candidates),
                with_fallback=False,
            )
            for item in _id_list(items)
        ]
        return _concat_frames(frames)

    # --- persistence ---------------------------------------------------------------------
    def _after_load(self) -> None:
        """Hook for models that rebuild derived (unsaved) state after :func:`load`."""

    def _fitted_state(self) -> dict[str, Any]:
        return {
            name: value
            for name, value in vars(self).items()
            if name.endswith("_") and not name.startswith("_")
        }

    def save(self, path: str | os.PathLike[str], *, meta: dict[str, Any] | None = None) -> Path:
        """Write the model to one file atomically: typed arrays (no pickle) + a JSON header.

        The file holds the hyper-parameters, every fitted attribute (dense arrays, sparse
        matrices, id maps, tensors, JSON values), the training interactions (for seen-item
        exclusion) and the titles when known. ``meta`` (JSON-able) is kept in the header,
        e.g. the dataset and split trained on; :func:`read_meta` reads it back cheaply.
        """
        self._require_fitted()
        from .. import __version__

        desc, arrays = encode_state(self._fitted_state())
        header = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "lensrec_version": __version__,
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "name": self.name or MODELS.name_of(type(self)),
            "params": jsonable(self.get_params()),
            "state": desc,
            "meta": jsonable(meta or {}),
        }
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr("header.json", json.dumps(header, sort_keys=True))
            for member, arr in arrays.items():
                out = io.BytesIO()
                np.save(out, arr, allow_pickle=False)
                zf.writestr(member, out.getvalue())
        return atomic_write_bytes(path, buf.getvalue(), what="the model file")


class RatingPredictor(Recommender):
    """A recommender that also predicts explicit ratings.

    Attributes
    ----------
    rating_scale_ : list of float
        ``[low, high]`` of the training data's rating scale (declared or inferred at load,
        else the observed range); predictions are clipped into it.
    """

    capabilities: ClassVar[Capabilities] = Capabilities(needs_ratings=True, predicts_ratings=True)

    def _predict(self, users: IndexArray, items: IndexArray) -> ScoreArray:
        raise NotImplementedError

    def _baseline(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Baseline estimates ``mu + b_u + b_i`` where ``-1`` marks an unknown user or item
        (its bias is then 0). Models with other parameters override it."""
        mu = float(getattr(self, "global_mean_", np.nan))
        if not np.isfinite(mu):
            mu = float(self.user_items_.data.mean()) if self.user_items_.nnz else 0.0
        out = np.full(users.shape, mu, dtype=np.float64)
        ub = getattr(self, "user_bias_", None)
        ib = getattr(self, "item_bias_", None)
        if ub is not None:
            known = users >= 0
            out[known] += ub[users[known]]
        if ib is not None:
            known = items >= 0
            out[known] += ib[items[known]]
        return out

    @overload
    def predict(
        self,
        users: npt.ArrayLike,
        items: npt.ArrayLike,
        *,
        missing: Literal["raise", "nan", "baseline"] = ...,
        clip: bool = ...,
        return_fallback: Literal[False] = ...,
    ) -> ScoreArray: ...

    @overload
    def predict(
        self,
        users: npt.ArrayLike,
        items: npt.ArrayLike,
        *,
        missing: Literal["raise", "nan", "baseline"] = ...,
        clip: bool = ...,
        return_fallback: Literal[True],
    ) -> tuple[ScoreArray, np.ndarray]: ...

    def predict(
        self,
        users: npt.ArrayLike,
        items: npt.ArrayLike,
        *,
        missing: Literal["raise", "nan", "baseline"] = "raise",
        clip: bool = True,
        return_fallback: bool = False,
    ) -> ScoreArray | tuple[ScoreArray, np.ndarray]:
        """Predicted ratings (float32) for aligned (user index, item index) pairs.

        Parameters
        ----------
        users, items : int arrays
            Indices into the training maps (``model.user_ids_.index(ids)``).
        missing : {"raise", "nan", "baseline"}, default "raise"
            What an index the model never saw (outside the maps, e.g. ``-1`` from
            ``IdMap.index(..., on_missing="mark")``) gives: :class:`UnknownIdError`, NaN, or
            the baseline estimate (``mu`` plus whichever of the user and item biases are
            known). Never a silent global mean.
        clip : bool, default True
            Clip into the training rating scale (``rating_scale_``).
        return_fallback : bool, default False
            Also return a boolean mask of the predictions that fell back to the baseline
            (or are NaN) because the user or the item was unknown.
        """
        self._require_fitted()
        if missing not in ("raise", "nan", "baseline"):
            raise ValueError(f"missing must be 'raise', 'nan' or 'baseline', got {missing!r}")
        u = np.asarray(users).reshape(-1)
        i = np.asarray(items).reshape(-1)
        if u.shape != i.shape:
            raise ValueError(f"users and items must align, got {u.shape} and {i.shape}")
        for arr, kind in ((u, "user"), (i, "item")):
            if arr.size and arr.dtype.kind not in "iu":
                raise TypeError(
                    f"{kind} indices must be integers (translate external ids with "
                    f"model.{kind}_ids_.index)"
                )
        if missing == "raise":
            out = self._predict(self._check_indices(u, "user"), self._check_indices(i, "item"))
            fallback = np.zeros(u.shape, dtype=bool)
        else:
            u_ok = (u >= 0) & (u < self.n_users)
            i_ok = (i >= 0) & (i < self.n_items)
            ok = u_ok & i_ok
            out = np.full(u.shape, np.nan, dtype=np.float32)
            if ok.any():
                out[ok] = self._predict(u[ok].astype(np.int32), i[ok].astype(np.int32))
            fallback = ~ok
            if missing == "baseline" and fallback.any():
                bu = np.where(u_ok, u, -1)[fallback].astype(np.int64)
                bi = np.where(i_ok, i, -1)[fallback].astype(np.int64)
                out[fallback] = self._baseline(bu, bi).astype(np.float32)
        scale = getattr(self, "rating_scale_", None)
        if clip and scale is not None:
            np.clip(out, np.float32(scale[0]), np.float32(scale[1]), out=out)
        return (out, fallback) if return_fallback else out


def rating_scale(train: Interactions) -> list[float]:
    """``[low, high]`` of a ratings table: its declared or inferred scale, else its range."""
    declared = train.stats.get("rating_scale") if isinstance(train.stats, dict) else None
    if declared and "low" in declared and "high" in declared:
        return [float(declared["low"]), float(declared["high"])]
    assert train.ratings is not None
    return [float(train.ratings.min()), float(train.ratings.max())]


def _is_single_row(items: Any) -> bool:
    """One user's item indices (a 1-d array or a list of scalars) vs a list of such rows."""
    if isinstance(items, np.ndarray):
        return items.ndim == 1 and items.dtype != object
    seq = list(items)
    return not seq or np.isscalar(seq[0])


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _titles(train: Interactions) -> np.ndarray | None:
    info = train.item_info
    if info is None or "title" not in info.columns or "item_id" not in info.columns:
        return None
    # vectorised: each item_info row placed at its item's index; unknown titles fall back
    # to the external id, as Interactions.titles does
    titles = train.item_ids.ids.astype(str)
    rows = train.item_ids.lookup(info["item_id"].to_numpy())
    known = rows >= 0
    values = np.asarray(info["title"].cast(str).fill_null("").to_numpy(), dtype=str)
    titles = titles.astype(
        values.dtype if values.dtype.itemsize > titles.dtype.itemsize else titles.dtype
    )
    titles[rows[known]] = values[known]
    return titles


def _read_header(zf: zipfile.ZipFile, path: Path) -> dict[str, Any]:
    try:
        header = json.loads(zf.read("header.json"))
    except (KeyError, ValueError, zipfile.BadZipFile, OSError) as exc:
        raise ModelFormatError(f"{path}: missing or corrupt header ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFormatError(f"{path}: not a lensrec model file")
    return header


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``meta`` dict a model file was saved with (empty when none)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            header = _read_header(zf, path)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelFormatError(f"{path}: not a lensrec model file ({exc})") from None
    meta = header.get("meta")
    return meta if isinstance(meta, dict) else {}


def _resolve_class(header: dict[str, Any], path: Path) -> type[Recommender]:
    """The model class named by a header: only registered classes are ever imported."""
    raw = str(header.get("class", ""))
    module, sep, qual = raw.partition(":")
    if not sep:  # format 1: "module.Class"
        module, _, qual = raw.rpartition(".")
    target = f"{module}:{qual}"
    name = header.get("name")
    entry = None
    if isinstance(name, str) and name in MODELS and MODELS.entry(name).target == target:
        entry = MODELS.entry(name)
    elif module.startswith("lensrec."):
        entry = MODELS.by_class_name(qual)
        if entry is not None and entry.target != target:
            entry = None
    if entry is None:
        raise ModelFormatError(
            f"{path}: model class {raw!r} is not registered; import the module that registers "
            "it (lensrec.models.register) before loading"
        )
    cls = MODELS[entry.name]
    if not (isinstance(cls, type) and issubclass(cls, Recommender)):
        raise ModelFormatError(f"{path}: {raw!r} is not a lensrec model")
    return cls


def load(path: str | os.PathLike[str]) -> Recommender:
    """Read a model written by ``save``; refuse a corrupt or foreign file with ModelFormatError.

    Only registered model classes are imported (built-in ones, or classes registered with
    :func:`lensrec.models.register` before the call); arrays are read without pickle.
    """
    from .. import __version__

    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise ModelFormatError(f"{path}: is a directory, not a model file") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelFormatError(f"{path}: not a lensrec model file ({exc})") from None
    with zf:
        header = _read_header(zf, path)
        version = header.get("format_version")
        if version not in _READABLE_VERSIONS:
            raise ModelFormatError(
                f"{path}: model format version {version} is not supported "
                f"(this lensrec reads versions {', '.join(map(str, _READABLE_VERSIONS))})"
            )
        cls = _resolve_class(header, path)
        if header.get("lensrec_version") != __version__:
            warnings.warn(
                f"{path} was saved by lensrec {header.get('lensrec_version')}, this is {__version__}",
                LensrecWarning,
                stacklevel=2,
            )
        try:
            model = cls(**header.get("params", {}))
        except TypeError as exc:
            raise ModelFormatError(
                f"{path}: parameters do not fit {cls.__name__} ({exc})"
            ) from None
        if version == 1:
            state = _decode_v1(zf, header, path)
        else:
            state = decode_state(zf, header.get("state", {}))
    for name, value in state.items():
        setattr(model, name, value)
    if not model.is_fitted:
        raise ModelFormatError(f"{path}: the file holds no fitted state")
    model._derived = {}
    model._after_load()
    model._prepare()
    return model


def _decode_v1(zf: zipfile.ZipFile, header: dict[str, Any], path: Path) -> dict[str, Any]:
    """Format 1 (lensrec 0.1 before the typed state): ``idmap/`` and ``array/`` members."""
    out: dict[str, Any] = {}
    try:
        for member in zf.namelist():
            if not member.endswith(".npy"):
                continue
            kind, _, name = member[: -len(".npy")].partition("/")
            with zf.open(member) as fh:
                arr = np.load(io.BytesIO(fh.read()), allow_pickle=False)
            if kind == "idmap":
                out[name] = IdMap(arr, kind=header["idmaps"][name])
            elif kind == "array":
                out[name] = arr
    except (ValueError, KeyError, zipfile.BadZipFile, OSError) as exc:
        raise ModelFormatError(f"{path}: corrupt model data ({exc})") from None
    out.update(header.get("attrs", {}))
    return out


def _id_list(ids: Any) -> list[Any]:
    """One external id or a sequence of them -> a list (a string is one id)."""
    if isinstance(ids, (str, bytes)) or np.ndim(ids) == 0:
        return [ids.item() if isinstance(ids, np.generic) else ids]
    return [v.item() if isinstance(v, np.generic) else v for v in ids]


def _id_frame(key: str | None, value: Any, answer: Any, *, with_fallback: bool = True) -> Any:
    """An :class:`~lensrec.retrieval.ItemList` as a frame, with the query id as first column."""
    import polars as pl

    frame = answer.to_frame()
    if "n_train" not in frame.columns:
        frame = frame.with_columns(n_train=pl.lit(None, dtype=pl.Int64))
    if with_fallback:
        frame = frame.with_columns(fallback=pl.lit(answer.fallback, dtype=pl.String))
    if key is not None:
        column = pl.Series(key, [value] * frame.height)
        frame = frame.insert_column(0, column)
    return frame


def _concat_frames(frames: list[Any]) -> Any:
    import polars as pl

    if len(frames) == 1:
        return frames[0]
    return pl.concat(frames, how="vertical_relaxed")
