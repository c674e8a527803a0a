"""Blends: fitted models combined with weights learned on validation, as the Netflix-prize
blends combined their predictors.

- :class:`Blend` (``blend``) combines rating models' predictions linearly: ridge regression of
  the validation ratings on the components' predictions (with an intercept), the approach of
  Töscher, Jahrer & Bell, "The BigChaos Solution to the Netflix Grand Prize" (2009), in its
  simplest (linear) form. Ranking components may join: their score for the pair (how likely
  the user was to pick the item at all, the Netflix prize's "who rated what") is one more
  input. With ``support=True`` each weight varies linearly with the log support of the user
  and of the item (feature-weighted linear stacking, Sill, Takács, Mackey & Lin, 2009).
- :class:`RankBlend` (``rank-blend``) combines ranking models' scores: each component's
  scores are standardised per user over the catalogue (so components on different scales can
  be added), and the weights are a logistic regression separating each validation user's
  held-out items from items sampled among those they have not interacted with.

``fit(train)`` carves a validation part from ``train`` (``holdout``: a split name whose rule
:func:`~lensrec.models._validation.validation_rule` mirrors, e.g. ``"ua"`` or
``"last:3:row"``), fits the components on the rest (each through the one validation path,
so early-stopping components early-stop), learns the weights on the validation part, then
refits the components on all of ``train`` with the same weights. ``fit(train, valid)`` uses
the given validation set and keeps the components fitted on ``train``.

Components are saved inside the blend's file (each one a lensrec model file, no pickle).
"""

from __future__ import annotations

import logging
import tempfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar

import numpy as np

from ..data.interactions import Interactions
from ..errors import ConfigError, ModelFormatError
from ..types import IndexArray, RandomState, ScoreArray
from ._params import Range, Search
from .base import Callback, Capabilities, Query, RatingPredictor, Recommender

__all__ = ["Blend", "RankBlend", "fit_linear", "fit_logistic"]

_log = logging.getLogger(__name__)


def fit_linear(features: np.ndarray, target: np.ndarray, reg: float) -> tuple[np.ndarray, float]:
    """Ridge regression with an unpenalised intercept: ``(weights [m], intercept)``.

    Minimises ``|target - b - features @ w|^2 + reg * n * |w|^2`` (``reg`` per row, so it
    does not shrink with more data), solved exactly on centred data.
    """
    x = np.asarray(features, np.float64)
    y = np.asarray(target, np.float64)
    mx, my = x.mean(axis=0), y.mean()
    xc, yc = x - mx, y - my
    gram = xc.T @ xc + reg * len(y) * np.eye(x.shape[1])
    w = np.linalg.solve(gram, xc.T @ yc)
    return w, float(my - mx @ w)


def fit_logistic(
    features: np.ndarray, labels: np.ndarray, reg: float, *, iterations: int = 50
) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method: ``(weights [m], intercept)``.

    Minimises the mean log-loss plus ``reg / 2 * |w|^2`` (the intercept is not penalised);
    stops when the step is below 1e-10 or after ``iterations``.
    """
    x = np.asarray(features, np.float64)
    y = np.asarray(labels, np.float64)
    n, m = x.shape
    a = np.hstack([x, np.ones((n, 1))])
    theta = np.zeros(m + 1)
    penalty = np.full(m + 1, reg)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(a @ theta)))
        grad = a.T @ (p - y) / n + penalty * theta
        hess = (a * (p * (1 - p))[:, None]).T @ a / n + np.diag(penalty) + 1e-12 * np.eye(m + 1)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if float(np.max(np.abs(step))) < 1e-10:
            break
    return theta[:m], float(theta[m])


def _standardise(scores: np.ndarray) -> np.ndarray:
    """Each row to mean 0, standard deviation 1 (finite entries; -inf and NaN become the
    row's minimum)."""
    s = np.array(scores, dtype=np.float64)
    bad = ~np.isfinite(s)
    if bad.any():
        s[bad] = np.nan
        low = np.nanmin(np.where(np.isnan(s), np.inf, s), axis=1, keepdims=True)
        low[~np.isfinite(low)] = 0.0
        s = np.where(np.isnan(s), low, s)
    mean = s.mean(axis=1, keepdims=True)
    std = s.std(axis=1, keepdims=True)
    return (s - mean) / np.where(std > 0, std, 1.0)


class _Rule:
    """A parameter rule (``ok`` / ``describe``) for the parameters that are not numbers."""

    def __init__(self, text: str, ok: Any):
        self.text, self._ok = text, ok

    def ok(self, value: Any) -> bool:
        return bool(self._ok(value))

    def describe(self) -> str:
        return self.text


_NAMES = _Rule("a string of comma-separated model names", lambda v: isinstance(v, str))
_TABLE = _Rule(
    "None or a table {model: {parameter: value}}",
    lambda v: (
        v is None or (isinstance(v, Mapping) and all(isinstance(x, Mapping) for x in v.values()))
    ),
)
_SPLIT = _Rule("None or a split name such as 'ua' or 'last:3:row'",
               lambda v: v is None or isinstance(v, str))  # fmt: skip


class _BlendBase(Recommender):
    """What both blends share: the components, the carve, the refit, save and load."""

    components: Annotated[str, _NAMES] = ""
    component_params: Annotated[Mapping[str, Mapping[str, Any]] | None, _TABLE] = None
    holdout: Annotated[str | None, _SPLIT] = None
    reg: Annotated[float, Range(0.0), Search(1e-5, 1.0, log=True)] = 1e-3
    refit: bool = True
    random_state: RandomState = None

    def _check_components(self) -> list[str]:
        from ._registry import MODELS

        names = [n.strip() for n in str(self.components).split(",") if n.strip()]
        if not names:
            raise ConfigError(f"{type(self).__name__}: components is empty; name the models to "
                              "blend, e.g. components='biased-mf,svdpp'")  # fmt: skip
        if len(set(names)) != len(names):
            raise ConfigError(f"{type(self).__name__}: components repeats a model: {names}")
        for name in list(self.component_params or {}):
            if name not in names:
                raise ConfigError(f"{type(self).__name__}: component_params names {name!r}, "
                                  f"which is not in components {names}")  # fmt: skip
        for name in names:
            cls = MODELS[name]
            self._check_component(name, cls)
        return names

    def _check_component(self, name: str, cls: Any) -> None:
        pass

    def _make(self, name: str, seed: int) -> Any:
        from ._registry import MODELS

        cls = MODELS[name]
        model = cls().set_params(**dict((self.component_params or {}).get(name, {})))
        if "random_state" in cls._param_names():
            model.set_params(random_state=seed)
        return model

    def _fit(
        self,
        train: Interactions,
        valid: Interactions | None,
        gen: np.random.Generator,
        *,
        show_progress: bool,
        callback: Callback | None,
    ) -> None:
        from ..split import carve_validation
        from ._validation import fit_with_validation, validation_rule

        names = self._check_components()
        seeds = [int(s) for s in gen.integers(0, 2**31 - 1, size=len(names) + 1)]
        refit = False
        if valid is None:
            rule = validation_rule(self.holdout, train.timestamps is not None)
            carved = carve_validation(train, rule.strategy, rule.fraction,
                                      random_state=seeds[-1], by=rule.by)  # fmt: skip
            part, valid = carved.train, carved.valid
            if valid is None or len(valid) == 0:
                raise ConfigError(f"{type(self).__name__}: no validation rows could be carved "
                                  f"({rule.describe()}); give more data or another holdout")  # fmt: skip
            refit = bool(self.refit)
        else:
            part = train
        models = []
        for name, seed in zip(names, seeds, strict=False):
            model = self._make(name, seed)
            fit_with_validation(model, part, split=self.holdout, random_state=seed)
            models.append(model)
        weights, intercept = self._learn(models, part, valid, gen)
        if refit:
            models = []
            for name, seed in zip(names, seeds, strict=False):
                model = self._make(name, seed)
                fit_with_validation(model, train, split=self.holdout, random_state=seed)
                models.append(model)
        self.weights_ = np.asarray(weights, np.float64)
        self.intercept_ = float(intercept)
        self.component_names_ = list(names)
        self.components_packed_ = {name: _pack(m) for name, m in zip(names, models, strict=True)}
        self.__dict__.setdefault("_derived", {})["components"] = models
        _log.info("%s weights: %s (intercept %.4f)", type(self).__name__,
                  dict(zip(names, np.round(self.weights_, 4).tolist(), strict=True)), intercept)  # fmt: skip

    def _learn(self, models: list[Any], part: Interactions, valid: Interactions,
               gen: np.random.Generator) -> tuple[np.ndarray, float]:  # fmt: skip
        raise NotImplementedError

    def _models(self) -> list[Any]:
        return self._cached("components", lambda: [_unpack(self.components_packed_[n])
                                                   for n in self.component_names_])  # fmt: skip

    def _prepare_model(self) -> None:
        self._models()

    def _full(self, query: Query) -> Query:
        """The query with every row's history (known users: their training rows), as the
        components that score from histories expect."""
        if query.history is not None:
            return query
        return Query(query.users, self.user_items_[query.users])

    @property
    def component_weights(self) -> dict[str, float]:
        """The learned weight of each component (by name)."""
        self._require_fitted()
        return dict(zip(self.component_names_, self.weights_.tolist(), strict=True))


def _pack(model: Any) -> np.ndarray:
    """A fitted model as its lensrec model file, zlib-compressed (uint8 array).

    Compressed, the component's file is not a zip archive any more: a truncated blend file
    can then never be read as one of its components' files (zip readers look for the last
    archive in the bytes), and zlib's checksum guards the component's bytes.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.lrec"
        model.save(path)
        return np.frombuffer(zlib.compress(path.read_bytes(), 1), dtype=np.uint8).copy()


def _unpack(raw: np.ndarray) -> Any:
    from .base import load

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.lrec"
        try:
            data = zlib.decompress(np.asarray(raw, np.uint8).tobytes())
        except zlib.error as exc:
            raise ModelFormatError(f"corrupt blend component ({exc})") from None
        path.write_bytes(data)
        return load(path)


class Blend(_BlendBase, RatingPredictor):
    """A linear blend of rating models: ``intercept + sum_j w_j * prediction_j``, each
    ``w_j`` varying with the user's and the item's log support when ``support`` is on.

    Parameters
    ----------
    components : str
        Registered models to blend, comma-separated (default:
        ``"bpmf,svdpp,knn-baseline,biased-mf,baseline,ease"``). At least one must predict
        ratings; a ranking model (``ease``, ``als``, ...) adds its score for the pair as one
        more input, fitted on which items the users rated. The default was chosen on
        validation carved from ml-100k ua.base and u1.base (10% of each user's rows):
        validation RMSE 0.8864 and 0.9014 against 0.8946 and 0.9081 for bpmf alone, the best
        single model (``benchmarks/README.md``, "Rating blend"); it costs about 2.5 bpmf fits
        (each component is fitted twice: on the carve, then on all of train).
    component_params : dict or None
        ``{name: {parameter: value}}`` for the components.
    holdout : str or None
        The split whose rule carves the validation part for the weights (``"ua"``,
        ``"last:3:row"``, ...); None: a random 10% of the rows.
    reg : float
        Ridge penalty on the weights (per validation row).
    refit : bool
        Refit the components on all of ``train`` after learning the weights.
    support : bool, default True
        Feature-weighted linear stacking: each weight is ``w_j + a_j s_u + c_j s_i`` with
        ``s_u``, ``s_i`` the centred ``log(1 + count)`` of the user's and the item's training
        rows, plus ``a s_u + c s_i`` on its own (``3m + 2`` weights instead of ``m``). On
        validation carved from ml-100k ua.base and u1.base (the blend of bpmf, svdpp,
        knn-baseline, biased-mf, baseline and ease) it lowered the RMSE by 0.001-0.002 over
        the plain linear blend (``benchmarks/README.md``, "Rating blend").
    random_state : None, int or Generator
        Seeds the carve and every component.

    Attributes
    ----------
    weights_ : float64 [m]
        One weight per component (``component_weights`` by name, at the mean support);
        ``intercept_`` float.
    support_weights_ : float64 [m + 1, 2]
        Per component (and last, the support terms on their own), the slopes of its weight
        in ``s_u`` and ``s_i`` (zeros when ``support`` is off); ``support_centre_`` the two
        centres, ``fill_`` each component's mean input (used where it has none).

    Examples
    --------
    >>> from lensrec.data.planted import make_ratings
    >>> blend = Blend(components="baseline,biased-mf", random_state=0).fit(make_ratings())
    >>> sorted(blend.component_weights)
    ['baseline', 'biased-mf']
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        needs_ratings=True, predicts_ratings=True, similar_items=False
    )
    components: Annotated[str, _NAMES] = "bpmf,svdpp,knn-baseline,biased-mf,baseline,ease"
    support: bool = True

    def _check_components(self) -> list[str]:
        from ._registry import MODELS

        names = super()._check_components()
        if not any(MODELS[n].capabilities.predicts_ratings for n in names):
            raise ConfigError(f"Blend: no component of {names} predicts ratings; blend "
                              "ranking models alone with rank-blend")  # fmt: skip
        return names

    def _support(self, users: IndexArray, items: IndexArray, scale: float = 1.0
                 ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """Centred log support ``(log1p(n_u) - c_u, log1p(n_i) - c_i)`` of the pairs, from the
        training rows the blend knows (``scale`` multiplies the counts)."""
        seen = self.user_items_
        nu = np.diff(seen.indptr).astype(np.float64) * scale
        ni = np.bincount(seen.indices, minlength=seen.shape[1]).astype(np.float64) * scale
        cu, ci = getattr(self, "support_centre_", (0.0, 0.0))
        return np.log1p(nu[users]) - cu, np.log1p(ni[items]) - ci

    def _features(self, models: list[Any], users: IndexArray, items: IndexArray) -> np.ndarray:
        """One column per component: its predicted rating (NaN where it has none) or, for a
        ranking component, its score for the pair."""
        cols = []
        for m in models:
            if type(m).capabilities.predicts_ratings:
                cols.append(np.asarray(m.predict(users, items, missing="nan", clip=False),
                                       np.float64))  # fmt: skip
            else:
                cols.append(_pair_scores(m, users, items))
        return np.column_stack(cols)

    def _learn(self, models: list[Any], part: Interactions, valid: Interactions,
               gen: np.random.Generator) -> tuple[np.ndarray, float]:  # fmt: skip
        assert valid.ratings is not None
        feats = self._features(models, valid.users, valid.items)
        # a component without a prediction for a pair gives its mean prediction there
        finite = np.isfinite(feats)
        counts = finite.sum(axis=0)
        self.fill_ = np.where(counts > 0, np.where(finite, feats, 0.0).sum(axis=0)
                              / np.maximum(counts, 1), 0.0)  # fmt: skip
        feats = np.where(finite, feats, self.fill_)
        m = feats.shape[1]
        if not self.support:
            self.support_centre_ = np.zeros(2)
            self.support_weights_ = np.zeros((m + 1, 2))
            return fit_linear(feats, np.asarray(valid.ratings, np.float64), self.reg)
        # the weights are learned with the components fitted on ``part`` and used with
        # them refitted on all of train: counts are scaled to the full train's size
        scale = len(self.user_items_.data) / max(len(part), 1)
        saved = part.csr("rating")
        nu = np.diff(saved.indptr).astype(np.float64) * scale
        ni = np.bincount(saved.indices, minlength=saved.shape[1]).astype(np.float64) * scale
        su, si = np.log1p(nu[valid.users]), np.log1p(ni[valid.items])
        self.support_centre_ = np.array([su.mean(), si.mean()])
        su, si = su - su.mean(), si - si.mean()
        x = np.column_stack([feats, feats * su[:, None], feats * si[:, None], su, si])
        w, b = fit_linear(x, np.asarray(valid.ratings, np.float64), self.reg)
        self.support_weights_ = np.vstack([
            np.column_stack([w[m : 2 * m], w[2 * m : 3 * m]]), w[3 * m :][None, :]
        ])  # fmt: skip
        return w[:m], b

    def _weights_at(self, su: np.ndarray, si: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Each component's weight at the given supports (broadcast), and the support terms."""
        sw = getattr(self, "support_weights_", np.zeros((len(self.weights_) + 1, 2)))
        ws = [w + sw[j, 0] * su + sw[j, 1] * si for j, w in enumerate(self.weights_)]
        return ws, self.intercept_ + sw[-1, 0] * su + sw[-1, 1] * si

    def _predict(self, users: IndexArray, items: IndexArray) -> ScoreArray:
        su, si = self._support(users, items)
        ws, out = self._weights_at(su, si)
        feats = self._features(self._models(), users, items)
        fill = getattr(self, "fill_", None)
        if fill is not None and len(fill) == feats.shape[1]:
            feats = np.where(np.isfinite(feats), feats, fill)
        for j, w in enumerate(ws):
            out = out + w * feats[:, j]
        return np.asarray(out, np.float32)

    def _score(self, query: Query, items: IndexArray | None) -> ScoreArray:
        query = self._full(query)
        users = np.asarray(query.users)
        cols: IndexArray = (
            np.arange(self.n_items, dtype=np.int32)
            if items is None
            else np.asarray(items, np.int32)
        )
        su, si = self._support(np.maximum(users, 0), cols)
        known = (users >= 0)[:, None]
        su = np.where(known, su[:, None], 0.0)
        ws, out = self._weights_at(su, si[None, :])
        for w, m in zip(ws, self._models(), strict=True):
            s = np.asarray(m._score(query, items), np.float64)
            if not type(m).capabilities.predicts_ratings:
                s = np.where(np.isfinite(s), s, 0.0)
            out = out + w * s
        return np.asarray(out, np.float32)


def _pair_scores(model: Any, users: IndexArray, items: IndexArray) -> np.ndarray:
    """A ranking model's scores for aligned (user, item) pairs, from each user's training
    rows, a block of users at a time (each scored over the catalogue)."""
    users = np.asarray(users, np.int64)
    items = np.asarray(items, np.int64)
    out = np.zeros(len(users), np.float64)
    uniq, inv = np.unique(users, return_inverse=True)
    seen = model.user_items_
    for start in range(0, len(uniq), 512):
        block = uniq[start : start + 512].astype(np.int32)
        s = np.asarray(model._score(Query(block, seen[block]), None), np.float64)
        sel = (inv >= start) & (inv < start + len(block))
        out[sel] = s[inv[sel] - start, items[sel]]
    return np.where(np.isfinite(out), out, 0.0)


class RankBlend(_BlendBase):
    """A blend of ranking models' per-user standardised scores, weighted by a logistic
    regression of held-out items against sampled unseen items.

    Parameters are those of :class:`Blend`, plus ``negatives`` (unseen items sampled per
    held-out item); ``components`` defaults to ease and als.
    """

    capabilities: ClassVar[Capabilities] = Capabilities(similar_items=False)
    components: Annotated[str, _NAMES] = "ease,als"
    negatives: Annotated[int, Range(1)] = 20

    def _learn(self, models: list[Any], part: Interactions, valid: Interactions,
               gen: np.random.Generator) -> tuple[np.ndarray, float]:  # fmt: skip
        seen = part.csr().tocsr()
        v = valid.csr().tocsr()
        users = np.flatnonzero(np.diff(v.indptr) > 0).astype(np.int32)
        if users.size == 0:
            raise ConfigError("RankBlend: the validation part has no user with an item")
        rows_x: list[np.ndarray] = []
        rows_y: list[np.ndarray] = []
        n_items = part.n_items
        for start in range(0, users.size, 256):
            batch = users[start : start + 256]
            query = Query(batch, seen[batch])
            z = [_standardise(m._score(query, None)) for m in models]
            for r, u in enumerate(batch):
                pos = v.indices[v.indptr[u] : v.indptr[u + 1]]
                taken = set(seen.indices[seen.indptr[u] : seen.indptr[u + 1]].tolist())
                taken.update(pos.tolist())
                want = min(self.negatives * pos.size, n_items - len(taken))
                if want <= 0:
                    continue
                cand = gen.integers(0, n_items, size=want * 3)
                neg = np.array([i for i in cand if i not in taken][:want], dtype=np.int64)
                idx = np.concatenate([pos, neg])
                rows_x.append(np.column_stack([zj[r, idx] for zj in z]))
                rows_y.append(np.concatenate([np.ones(pos.size), np.zeros(neg.size)]))
        if not rows_x:
            raise ConfigError("RankBlend: no negatives could be sampled on the validation part")
        return fit_logistic(np.vstack(rows_x), np.concatenate(rows_y), self.reg)

    def _score(self, query: Query, items: IndexArray | None) -> ScoreArray:
        out: np.ndarray | None = None
        query = self._full(query)
        for w, m in zip(self.weights_, self._models(), strict=True):
            # standardised over the whole catalogue, whatever the candidates, so a
            # candidate list ranks as the full list would
            s = w * _standardise(m._score(query, None))
            out = s if out is None else out + s
        assert out is not None
        if items is not None:
            out = out[:, np.asarray(items)]
        return out.astype(np.float32)
