"""One validation path: what every early-stopping model measures, and how a run carves it.

- :class:`RatingValidation`: RMSE of predicted ratings on a validation set, clipped to the
  rating scale as ``predict`` clips, computed by :func:`lensrec.evaluate.metrics.rmse`.
- :class:`RankingValidation`: NDCG@k of each validation user's top-k with their training
  items excluded, ranked by the shared blocked top-k and scored by
  :func:`lensrec.evaluate.metrics.ndcg_at_k` (the numbers ``lensrec.evaluate`` reports).
- :func:`validation_rule` / :func:`fit_with_validation`: how ``evaluate``, ``benchmark``,
  ``train`` and ``run_spec`` (and tuning) give a model that declares
  ``capabilities.uses_validation`` its validation set: carved from the training part by the
  split's own rule (by time for time-ordered splits, by row order for ``:row`` splits, at
  random otherwise), early-stopped on it, then refitted on the whole training part for the
  chosen number of epochs where the model says so (``refit_after_validation``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from ..data.interactions import Interactions
from ..evaluate.metrics import ndcg_at_k, rmse

__all__ = [
    "VALID_K",
    "RatingValidation",
    "RankingValidation",
    "ValidationRule",
    "validation_rule",
    "fit_with_validation",
]

_log = logging.getLogger(__name__)

#: list length of the ranking validation metric (NDCG@10)
VALID_K = 10


class RatingValidation:
    """RMSE on a validation set's ratings, for an epoch loop's ``validate()``.

    Parameters
    ----------
    valid : Interactions or (users, items, ratings) arrays
        Validation rows indexed on the training IdMaps (the indices are not checked:
        ``predict`` gets them as they are).
    scale : (low, high) or None
        Predictions are clipped into it before the error is taken (as ``predict`` clips).
    dtype : numpy dtype, default float32
        The dtype of the predictions ``predict`` fills in (float32, as ``predict`` gives;
        float64 for a model that averages predictions, such as BPMF); the bounds of
        ``scale`` are taken in it.
    """

    name = "valid_rmse"
    mode = "min"

    def __init__(
        self,
        valid: Interactions | tuple[np.ndarray, np.ndarray, np.ndarray],
        scale: tuple[float, float] | None = None,
        *,
        dtype: npt.DTypeLike = np.float32,
    ):
        if isinstance(valid, Interactions):
            if valid.ratings is None:
                raise ValueError("the validation data has no ratings")
            users, items, ratings = valid.users, valid.items, valid.ratings
        else:
            users, items, ratings = valid
        self.users = np.ascontiguousarray(users, dtype=np.int32)
        self.items = np.ascontiguousarray(items, dtype=np.int32)
        self.truth = np.asarray(ratings, dtype=np.float64)
        self._out = np.empty(self.users.size, dtype=dtype)
        kind = self._out.dtype.type
        self.scale = None if scale is None else (kind(scale[0]), kind(scale[1]))

    def __len__(self) -> int:
        return int(self.users.size)

    def __call__(self, predict: Callable[[np.ndarray, np.ndarray, np.ndarray], None]) -> float:
        """``predict(users, items, out)`` fills ``out`` (of ``dtype``) with the predictions
        for the pairs ``(self.users, self.items)``; returns the RMSE (in float64)."""
        predict(self.users, self.items, self._out)
        if self.scale is not None:
            np.clip(self._out, self.scale[0], self.scale[1], out=self._out)
        return rmse(self.truth, self._out)


class RankingValidation:
    """NDCG@k on a validation set for early stopping, training items excluded.

    Built once per fit: the validation users (those with a validation item they did not
    have in training), their training rows (to exclude) and their relevant items. Called
    with ``score(users) -> float32 [len(users), n_items]`` it returns the mean NDCG@k over
    those users: :func:`lensrec.evaluate.metrics.ndcg_at_k` on the lists the shared top-k
    gives, so the number is the one ``lensrec.evaluate`` would report.
    """

    mode = "max"

    def __init__(self, train_csr: sp.csr_matrix, valid: Interactions, k: int = VALID_K):
        seen = sp.csr_matrix(
            (np.ones(train_csr.nnz, np.float32), train_csr.indices, train_csr.indptr),
            shape=train_csr.shape,
        )
        v = valid.csr()
        v = sp.csr_matrix(v - v.multiply(seen))
        v.eliminate_zeros()
        self.k = int(k)
        self.name = f"valid_ndcg@{self.k}"
        self.users = np.flatnonzero(np.diff(v.indptr) > 0).astype(np.int32)
        self.relevant = v[self.users]
        self.seen = seen[self.users]
        self.n_items = int(train_csr.shape[1])

    def __len__(self) -> int:
        return int(self.users.size)

    def __call__(self, score: Callable[[np.ndarray], np.ndarray]) -> float:
        from ..retrieval import blocked_topk

        if self.users.size == 0:
            return 0.0
        users = self.users
        ids, _ = blocked_topk(
            users.size,
            self.n_items,
            lambda a, b: score(users[a:b]),
            self.k,
            self.seen,
            None,
            self.n_items,
        )
        return float(np.mean(ndcg_at_k(ids, self.relevant, self.k)))


# --- carving a validation set by the split's own rule ----------------------------------------
@dataclass(frozen=True)
class ValidationRule:
    """How a validation part is carved from a split's training part.

    ``strategy`` and ``fraction`` are :func:`lensrec.split.carve_validation`'s; ``by`` is
    ``"timestamp"`` or ``"row"`` for ``"last"``.
    """

    strategy: Literal["user-random", "random", "last", "temporal"]
    fraction: float | int
    by: Literal["timestamp", "row"] | None = None

    def describe(self) -> str:
        if self.strategy == "last":
            return f"each user's last {self.fraction} training rows by {self.by or 'timestamp'}"
        if self.strategy == "temporal":
            return f"the latest {self.fraction:.0%} of training rows by time"
        if self.strategy == "user-random":
            return f"a random {self.fraction:.0%} of each user's training rows"
        return f"a random {self.fraction:.0%} of training rows"


def validation_rule(split: str | None, has_timestamps: bool = True) -> ValidationRule:
    """The validation carve that mirrors a split: ``last:3`` -> each user's last 3 training
    rows by time (``last:3:row`` by row order), ``temporal:0.1`` / ``warm-temporal`` -> the
    latest 10% by time, ``user-random`` / ``ua`` / ``u1``.. -> 10% of each user's rows at
    random, anything else (``random:``, ``cv:``, none) -> 10% of the rows at random."""
    name = (split or "").strip()
    m = re.fullmatch(r"last:(\d+)(:row)?", name)
    if m:
        by_row = bool(m.group(2)) or not has_timestamps
        return ValidationRule("last", int(m.group(1)), "row" if by_row else "timestamp")
    if name.startswith("temporal") or name.startswith("warm-temporal"):
        frac = 0.1
        m = re.fullmatch(r"temporal:([0-9.]+)", name)
        if m:
            frac = float(m.group(1))
        if has_timestamps:
            return ValidationRule("temporal", frac)
        return ValidationRule("random", frac)
    if name.startswith("user-random") or re.fullmatch(r"u[a-b1-5]", name):
        return ValidationRule("user-random", 0.1)
    return ValidationRule("random", 0.1)


def fit_with_validation(
    model: Any,
    train: Interactions,
    *,
    split: str | None,
    random_state: Any = None,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Fit ``model`` on ``train`` the way runs do: with a carved validation set when the
    model declares ``uses_validation``, else plainly.

    The validation part is carved from ``train`` by :func:`validation_rule` (``split`` is
    the split's name). The model early-stops on it; then, when the class sets
    ``refit_after_validation``, a copy with ``epochs`` set to the chosen epoch is fitted on
    the whole of ``train`` and takes the place of the model's state. Returns what the run
    record keeps: ``{"validation": rule text, "valid_rows": n, "epochs_chosen": e,
    "refit": bool}`` (empty for models without validation).
    """
    from ..split import carve_validation

    caps = type(model).capabilities
    if not caps.uses_validation:
        model.fit(train, show_progress=show_progress)
        out: dict[str, Any] = {}
        if getattr(model, "best_epoch_", None) is not None:
            out["epochs_chosen"] = int(model.best_epoch_)
        return out
    rule = validation_rule(split, train.timestamps is not None)
    carved = carve_validation(
        train, rule.strategy, rule.fraction, random_state=random_state, by=rule.by
    )
    valid = carved.valid
    if valid is None or len(valid) == 0:
        _log.info("%s: no validation rows carved (%s); fitting without", type(model).__name__,
                  rule.describe())  # fmt: skip
        model.fit(train, show_progress=show_progress)
        return {"validation": rule.describe(), "valid_rows": 0,
                "epochs_chosen": int(getattr(model, "best_epoch_", 0) or 0), "refit": False}  # fmt: skip
    model.fit(carved.train, valid, show_progress=show_progress)
    chosen = int(model.best_epoch_)
    history = getattr(model, "history_", None)
    refit = bool(getattr(type(model), "refit_after_validation", False))
    if refit:
        given = model.epochs
        model.set_params(epochs=max(chosen, 1))
        try:
            model.fit(train, show_progress=show_progress)
        finally:
            # the hyper-parameter goes back: the record keeps the given params and the choice
            model.set_params(epochs=given)
        if history is not None:
            model.validation_history_ = history
    return {
        "validation": rule.describe(),
        "valid_rows": int(len(valid)),
        "epochs_chosen": chosen,
        "refit": refit,
    }
