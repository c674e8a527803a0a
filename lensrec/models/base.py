"""The model contract: Recommender and RatingPredictor, save and load.

Public methods live here once (check fitted -> validate -> private hook -> shape output);
models implement ``_fit`` and either ``_user_vectors`` + ``_item_vectors`` (factor models:
scores are dot products) or ``_score`` (anything else), and ``_predict`` for ratings.
"""

from __future__ import annotations

import importlib
import inspect
import io
import json
import logging
import os
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, TypeVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from .._config import apply_threads, rng
from ..data.ids import IdMap
from ..data.interactions import Interactions
from ..errors import LensrecWarning, ModelFormatError, NotFittedError, UnknownIdError
from ..kernels.topk import topk_rows
from ..types import IndexArray, ScoreArray
from ._params import check_params

__all__ = ["Recommender", "RatingPredictor", "load", "read_meta", "register", "MODELS", "Callback"]

_log = logging.getLogger(__name__)

FORMAT = "lensrec-model"
FORMAT_VERSION = 1

Callback = Callable[[int, float, dict[str, float]], bool | None]
"""``callback(epoch, seconds, metrics)``; returning True stops training."""

MODELS: dict[str, type[Recommender]] = {}
"""Registered model classes by CLI name (``"biased-mf"``, ``"popularity"``, ...)."""


_M = TypeVar("_M", bound="type[Recommender]")


def register(name: str) -> Callable[[_M], _M]:
    """Class decorator: make a model known to the CLI, tuning and :func:`load`."""

    def deco(cls: _M) -> _M:
        cls.name = name
        MODELS[name] = cls
        return cls

    return deco


class Recommender:
    """Base class of every lensrec model.

    Constructors take only keyword hyper-parameters (stored unchanged) and ``random_state``.
    ``fit`` sets the learned attributes, which end in ``_``.

    Attributes
    ----------
    user_ids_, item_ids_ : IdMap
        The training data's id maps; indices in ``recommend`` / ``predict`` refer to them.
    """

    name: ClassVar[str] = ""
    #: True for models that early-stop only on a ``valid`` set passed to ``fit``: the CLI then
    #: carves one from train. Models that hold out their own (BiasedMF's ``valid_fraction``,
    #: followed by a refit on all of train) leave it False.
    uses_validation: ClassVar[bool] = False
    _constraints: ClassVar[dict[str, Any]] = {}
    #: score block budget (floats) for one chunk of users in ``recommend``
    _block_floats: ClassVar[int] = 1 << 22

    # --- parameters ----------------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]

    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters as given to the constructor."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set hyper-parameters (unknown names raise ``ConfigError``); takes effect at next ``fit``."""
        from ..errors import ConfigError

        names = set(self._param_names())
        for key, value in params.items():
            if key not in names:
                raise ConfigError(
                    f"{type(self).__name__} has no parameter {key!r}; known: {', '.join(sorted(names))}"
                )
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        parts = []
        for name, value in self.get_params().items():
            default = sig.parameters[name].default
            if default is inspect.Parameter.empty or value is not default and value != default:
                parts.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

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
        """
        if not isinstance(train, Interactions):
            raise TypeError(f"train must be Interactions, got {type(train).__name__}")
        if len(train) == 0:
            from ..errors import DataError

            raise DataError(f"{type(self).__name__}.fit: the training data is empty")
        if valid is not None and (
            valid.user_ids is not train.user_ids and valid.user_ids != train.user_ids
        ):
            from ..errors import ConfigError

            raise ConfigError("valid must share train's IdMaps (make both with lensrec.split)")
        check_params(type(self).__name__, self.get_params(), self._constraints)
        for attr in [a for a in vars(self) if a.endswith("_") and not a.startswith("_")]:
            delattr(self, attr)
        self.user_ids_ = train.user_ids
        self.item_ids_ = train.item_ids
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
    def warm_up(cls) -> None:
        """Compile (or load from numba's cache) the model's kernels on tiny data.

        Called before a timed ``fit`` so that fit seconds in run records and benchmarks do
        not include JIT compilation. Models without numba kernels do nothing.
        """

    def _check_finite(self) -> None:
        for name, value in vars(self).items():
            if name.endswith("_") and isinstance(value, np.ndarray) and value.dtype.kind == "f":
                if not np.all(np.isfinite(value)):
                    from ..errors import LensrecError

                    raise LensrecError(
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

    def _check_indices(self, idx: npt.ArrayLike, kind: str) -> np.ndarray:
        arr = np.asarray(idx)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.size and arr.dtype.kind not in "iu":
            raise TypeError(
                f"{kind} indices must be integers (translate external ids with model.{kind}_ids_.index)"
            )
        arr = arr.astype(np.int64, copy=False)
        n = self.n_users if kind == "user" else self.n_items
        bad = (arr < 0) | (arr >= n)
        if bad.any():
            raise UnknownIdError(f"{kind} index", arr[bad].tolist(), count=int(bad.sum()))
        return arr.astype(np.int32)

    # --- scoring hooks -------------------------------------------------------------------
    def _user_vectors(self, users: IndexArray) -> np.ndarray:
        raise NotImplementedError

    def _item_vectors(self) -> np.ndarray:
        raise NotImplementedError

    def _score(self, users: IndexArray, items: IndexArray | None) -> ScoreArray:
        """Dense float32 scores ``[len(users), n_items or len(items)]``; higher is better."""
        iv = self._item_vectors()
        if items is not None:
            iv = iv[items]
        return np.ascontiguousarray(self._user_vectors(users) @ iv.T, dtype=np.float32)

    # --- public ranking API --------------------------------------------------------------
    def recommend(
        self,
        users: npt.ArrayLike,
        k: int = 10,
        *,
        exclude: sp.spmatrix | sp.sparray | None = None,
        items: npt.ArrayLike | None = None,
    ) -> tuple[IndexArray, ScoreArray]:
        """Top-``k`` items for each user index, best first.

        Parameters
        ----------
        users : int array
            User indices (``model.user_ids_.index(external_ids)`` translates).
        k : int
            List length.
        exclude : CSR users x items, optional
            Items not to recommend, e.g. ``train.csr()`` for seen items. It is indexed by
            user: row ``users[i]`` applies to ``users[i]`` (pass the full matrix).
        items : int array, optional
            Restrict candidates to these item indices.

        Returns
        -------
        ids : int32 [n, k]
            Item indices, padded with -1 where fewer than ``k`` candidates exist.
        scores : float32 [n, k]
            Their scores, padded with -inf.
        """
        self._require_fitted()
        u = self._check_indices(users, "user")
        if not isinstance(k, (int, np.integer)) or k < 1:
            from ..errors import ConfigError

            raise ConfigError(f"k must be a positive integer, got {k!r}")
        k = int(k)
        cand = None if items is None else np.unique(self._check_indices(items, "item"))
        excl = None
        if exclude is not None:
            excl = sp.csr_matrix(exclude)
            if excl.shape[1] != self.n_items or excl.shape[0] < self.n_users:
                raise ValueError(
                    f"exclude must be users x items with shape ({self.n_users}, {self.n_items}), "
                    f"got {excl.shape}"
                )
        cand_pos = None
        if cand is not None:
            cand_pos = np.full(self.n_items, -1, dtype=np.int64)
            cand_pos[cand] = np.arange(cand.size)
        n_cols = self.n_items if cand is None else cand.size
        chunk = max(1, min(len(u) or 1, self._block_floats // max(n_cols, 1)))
        out_ids = np.full((len(u), k), -1, dtype=np.int32)
        out_scores = np.full((len(u), k), -np.inf, dtype=np.float32)
        apply_threads()
        for start in range(0, len(u), chunk):
            block_users = u[start : start + chunk]
            scores = self._score(block_users, cand)
            if excl is not None:
                rows = excl[block_users]
                rows.sort_indices()
                indptr = rows.indptr.astype(np.int64)
                indices = rows.indices.astype(np.int32)
                if cand_pos is not None:  # set exactly when cand is
                    # move exclusions to candidate positions, dropping non-candidates
                    mapped = cand_pos[indices]
                    keep = mapped >= 0
                    row_of = np.repeat(np.arange(len(block_users)), np.diff(indptr))
                    counts = np.bincount(row_of[keep], minlength=len(block_users))
                    indices = mapped[keep].astype(np.int32)
                    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
            else:
                indptr = np.zeros(len(block_users) + 1, dtype=np.int64)
                indices = np.zeros(0, dtype=np.int32)
            bi = np.empty((len(block_users), k), dtype=np.int32)
            bs = np.empty((len(block_users), k), dtype=np.float32)
            topk_rows(np.ascontiguousarray(scores, dtype=np.float32), k, indptr, indices, bi, bs)
            if cand is not None:
                bi = np.where(bi >= 0, cand[np.maximum(bi, 0)], -1).astype(np.int32)
            out_ids[start : start + chunk] = bi
            out_scores[start : start + chunk] = bs
        return out_ids, out_scores

    def _similarity_vectors(self) -> np.ndarray:
        """Item vectors whose cosine gives item-item similarity (factor models)."""
        return self._item_vectors()

    def _similar_scores(self, items: IndexArray) -> ScoreArray:
        """Dense ``[len(items), n_items]`` similarity; default: cosine of item vectors."""
        v = np.asarray(self._similarity_vectors(), dtype=np.float32)
        norms = np.linalg.norm(v, axis=1)
        norms[norms == 0] = 1.0
        vn = v / norms[:, None]
        return np.ascontiguousarray(vn[items] @ vn.T, dtype=np.float32)

    def similar_items(self, items: npt.ArrayLike, k: int = 10) -> tuple[IndexArray, ScoreArray]:
        """The ``k`` items most similar to each item index, never the item itself.

        Returns int32 ``[n, k]`` item indices and float32 similarities, padded -1 / -inf.
        """
        self._require_fitted()
        it = self._check_indices(items, "item")
        out_ids = np.full((len(it), k), -1, dtype=np.int32)
        out_scores = np.full((len(it), k), -np.inf, dtype=np.float32)
        chunk = max(1, self._block_floats // max(self.n_items, 1))
        for start in range(0, len(it), chunk):
            block = it[start : start + chunk]
            scores = self._similar_scores(block)
            indptr = np.arange(len(block) + 1, dtype=np.int64)
            bi = np.empty((len(block), k), dtype=np.int32)
            bs = np.empty((len(block), k), dtype=np.float32)
            topk_rows(scores, int(k), indptr, block.astype(np.int32), bi, bs)
            out_ids[start : start + chunk] = bi
            out_scores[start : start + chunk] = bs
        return out_ids, out_scores

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
        """Write the model to one file atomically: numpy arrays (no pickle) + a JSON header.

        ``meta`` (JSON-able) is kept in the header, e.g. the dataset and split trained on;
        :func:`read_meta` reads it back without loading the arrays.
        """
        self._require_fitted()
        from .. import __version__

        path = Path(path)
        arrays: dict[str, np.ndarray] = {}
        attrs: dict[str, Any] = {}
        idmaps: dict[str, str] = {}
        for name, value in self._fitted_state().items():
            if isinstance(value, IdMap):
                arrays[f"idmap:{name}"] = value.ids
                idmaps[name] = value.kind
            elif isinstance(value, np.ndarray):
                if value.dtype == object:
                    raise ModelFormatError(f"cannot save object array {name}")
                arrays[f"array:{name}"] = value
            else:
                attrs[name] = _jsonable(value)
        header = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "lensrec_version": __version__,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "name": self.name,
            "params": _jsonable(self.get_params()),
            "attrs": attrs,
            "idmaps": idmaps,
            "meta": _jsonable(meta or {}),
        }
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr("header.json", json.dumps(header, sort_keys=True))
            for key, arr in arrays.items():
                member = io.BytesIO()
                np.save(member, np.ascontiguousarray(arr), allow_pickle=False)
                zf.writestr(key.replace(":", "/") + ".npy", member.getvalue())
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(buf.getvalue())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path


class RatingPredictor(Recommender):
    """A recommender that also predicts explicit ratings."""

    def _predict(self, users: IndexArray, items: IndexArray) -> ScoreArray:
        raise NotImplementedError

    def predict(
        self,
        users: npt.ArrayLike,
        items: npt.ArrayLike,
        *,
        missing: Literal["raise", "nan"] = "raise",
    ) -> ScoreArray:
        """Predicted ratings (float32) for aligned (user index, item index) pairs.

        An index outside the training maps raises :class:`UnknownIdError`, or with
        ``missing="nan"`` gives NaN there; never a silent global mean.
        """
        self._require_fitted()
        u = np.asarray(users).reshape(-1)
        i = np.asarray(items).reshape(-1)
        if u.shape != i.shape:
            raise ValueError(f"users and items must align, got {u.shape} and {i.shape}")
        if missing == "raise":
            return self._predict(self._check_indices(u, "user"), self._check_indices(i, "item"))
        if missing != "nan":
            raise ValueError(f"missing must be 'raise' or 'nan', got {missing!r}")
        ok = (u >= 0) & (u < self.n_users) & (i >= 0) & (i < self.n_items)
        out = np.full(u.shape, np.nan, dtype=np.float32)
        if ok.any():
            out[ok] = self._predict(u[ok].astype(np.int32), i[ok].astype(np.int32))
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.random.Generator):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ModelFormatError(f"cannot save a value of type {type(value).__name__}")


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``meta`` dict a model file was saved with (empty when none)."""
    try:
        with zipfile.ZipFile(path) as zf:
            header = json.loads(zf.read("header.json"))
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise ModelFormatError(f"{path}: not a lensrec model file ({exc})") from None
    meta = header.get("meta") if isinstance(header, dict) else None
    return meta if isinstance(meta, dict) else {}


def load(path: str | os.PathLike[str]) -> Recommender:
    """Read a model written by ``save``; refuse a corrupt or foreign file with ModelFormatError."""
    from .. import __version__

    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelFormatError(f"{path}: not a lensrec model file ({exc})") from None
    with zf:
        try:
            header = json.loads(zf.read("header.json"))
        except (KeyError, ValueError) as exc:
            raise ModelFormatError(f"{path}: missing or corrupt header ({exc})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ModelFormatError(f"{path}: not a lensrec model file")
        if header.get("format_version") != FORMAT_VERSION:
            raise ModelFormatError(
                f"{path}: model format version {header.get('format_version')} is not supported "
                f"(this lensrec reads version {FORMAT_VERSION})"
            )
        cls_path = str(header.get("class", ""))
        module, _, qual = cls_path.rpartition(".")
        if not module.startswith("lensrec."):
            raise ModelFormatError(f"{path}: refusing foreign model class {cls_path!r}")
        try:
            cls = getattr(importlib.import_module(module), qual)
        except (ImportError, AttributeError):
            raise ModelFormatError(f"{path}: unknown model class {cls_path!r}") from None
        if not (isinstance(cls, type) and issubclass(cls, Recommender)):
            raise ModelFormatError(f"{path}: {cls_path!r} is not a lensrec model")
        if header.get("lensrec_version") != __version__:
            warnings.warn(
                f"{path} was saved by lensrec {header.get('lensrec_version')}, this is {__version__}",
                LensrecWarning,
                stacklevel=2,
            )
        model = cls(**header.get("params", {}))
        try:
            for member in zf.namelist():
                if not member.endswith(".npy"):
                    continue
                kind, _, name = member[: -len(".npy")].partition("/")
                with zf.open(member) as fh:
                    arr = np.load(io.BytesIO(fh.read()), allow_pickle=False)
                if kind == "idmap":
                    setattr(model, name, IdMap(arr, kind=header["idmaps"][name]))
                elif kind == "array":
                    setattr(model, name, arr)
        except (ValueError, KeyError, zipfile.BadZipFile, OSError) as exc:
            raise ModelFormatError(f"{path}: corrupt model data ({exc})") from None
        for name, value in header.get("attrs", {}).items():
            setattr(model, name, value)
    if not model.is_fitted:
        raise ModelFormatError(f"{path}: the file holds no fitted state")
    model._after_load()
    return model
