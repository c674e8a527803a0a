"""The one epoch loop every epoch-trained model uses (BiasedMF, SVD, SVD++, iALS, BPR, WARP, NCF).

:class:`EpochTrainer` runs ``step(epoch)`` for up to ``epochs`` epochs and owns what every such
model needs around it: validation after each epoch, early stopping with ``patience`` and a
minimum improvement (``tol``), keeping the best epoch's parameters (``snapshot``), a learning
curve (:attr:`TrainLog.history`), divergence detection (a non-finite or exploding loss stops
training with an error that names the likely cause), per-epoch INFO logging, a tqdm bar and
the user's callback, which may stop training.

:func:`holdout_then_refit` is the other shared piece: carve a validation part from the
training rows when none was given, train with early stopping on it, then (optionally) train
again on all rows for the chosen number of epochs.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

import numpy as np

from ..errors import LensrecError

__all__ = [
    "EpochTrainer",
    "TrainLog",
    "TrainingDivergedError",
    "carve_rows",
    "holdout_then_refit",
    "Callback",
]

_log = logging.getLogger(__name__)

Callback = Callable[[int, float, dict[str, float]], bool | None]
"""``callback(epoch, seconds, metrics)``; returning True stops training."""

_S = TypeVar("_S")


class TrainingDivergedError(LensrecError):
    """Training produced a non-finite or exploding loss (or non-finite parameters)."""


@dataclass
class TrainLog:
    """What one training run did.

    Attributes
    ----------
    history : dict of lists of float
        Per epoch: ``"train_loss"`` (when the step reports one), the validation metric under
        its name (e.g. ``"valid_rmse"``), anything else the step reports, and ``"seconds"``.
    best_epoch : int
        1-based epoch whose parameters were kept; 0 when there was no validation.
    epochs_run : int
        Epochs actually run.
    stopped_early : bool
        True when patience (or the callback) ended training before ``epochs``.
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = 0
    epochs_run: int = 0
    stopped_early: bool = False


class EpochTrainer(Generic[_S]):
    """Run epochs with validation, early stopping, restore-best, progress and callbacks.

    Parameters
    ----------
    owner : str
        Model name for logs, the progress bar and error messages.
    epochs : int
        Maximum number of epochs.
    patience : int or None
        Stop after this many epochs without an improvement of more than ``tol`` on the
        validation metric; None never stops early.
    tol : float
        Minimum improvement (min-delta) that resets the patience counter. The best epoch is
        kept whatever ``tol``.
    mode : {"min", "max"}
        Whether the validation metric is better lower (RMSE, loss) or higher (NDCG).
    metric : str
        Name of the validation metric in the history (``"valid_rmse"``, ``"valid_ndcg@10"``).
    loss_ceiling : float or None
        A train loss above this counts as divergence (e.g. 100x the loss of predicting the
        mean); non-finite losses always do.
    hint : str
        What to change when training diverges (``"lower learning_rate ..."``).
    show_progress : bool
        A tqdm bar over epochs.
    callback : Callback or None
        Called after every epoch with ``(epoch, seconds, metrics)``; True stops training.
    unit : str
        What one step is called in the bar and the log (``"epoch"``, ``"sample"``).
    """

    def __init__(
        self,
        owner: str,
        *,
        epochs: int,
        patience: int | None = None,
        tol: float = 0.0,
        mode: Literal["min", "max"] = "min",
        metric: str = "valid_loss",
        loss_ceiling: float | None = None,
        hint: str = "lower learning_rate or raise the regularisation",
        show_progress: bool = False,
        callback: Callback | None = None,
        unit: str = "epoch",
    ):
        self.owner = owner
        self.unit = unit
        self.epochs = int(epochs)
        self.patience = patience
        self.tol = float(tol)
        self.mode = mode
        self.metric = metric
        self.loss_ceiling = loss_ceiling
        self.hint = hint
        self.show_progress = show_progress
        self.callback = callback

    def _better(self, value: float, than: float, margin: float = 0.0) -> bool:
        if self.mode == "min":
            return value < than - margin
        return value > than + margin

    def run(
        self,
        step: Callable[[int], float | dict[str, float]],
        validate: Callable[[], float] | None = None,
        snapshot: Callable[[], _S] | None = None,
    ) -> tuple[TrainLog, _S | None]:
        """Train; return the log and the best epoch's snapshot (None without validation).

        ``step(epoch)`` trains one epoch (1-based) and returns its train loss, or a dict of
        metrics (``"train_loss"`` among them when there is one). ``validate()`` returns the
        validation metric after the epoch; ``snapshot()`` copies the parameters to keep
        when that metric is the best so far.
        """
        log = TrainLog()
        hist = log.history
        worst = math.inf if self.mode == "min" else -math.inf
        best_value, counted_value, counted_epoch = worst, worst, 0
        best_state: _S | None = None
        bar = None
        if self.show_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.epochs, desc=self.owner, unit=self.unit)
        try:
            for epoch in range(1, self.epochs + 1):
                t0 = time.perf_counter()
                out = step(epoch)
                metrics = {"train_loss": float(out)} if not isinstance(out, dict) else dict(out)
                loss = metrics.get("train_loss")
                if loss is not None:
                    self._check_loss(epoch, float(loss))
                stop = False
                if validate is not None:
                    value = float(validate())
                    if not math.isfinite(value):
                        raise TrainingDivergedError(
                            f"{self.owner}: training diverged at epoch {epoch} "
                            f"({self.metric} = {value}); {self.hint}"
                        )
                    metrics[self.metric] = value
                    if self._better(value, best_value):
                        best_value = value
                        log.best_epoch = epoch
                        best_state = snapshot() if snapshot is not None else None
                    if self._better(value, counted_value, self.tol):
                        counted_value, counted_epoch = value, epoch
                    elif self.patience is not None and epoch - counted_epoch >= self.patience:
                        stop = True
                seconds = time.perf_counter() - t0
                for key, value in metrics.items():
                    hist.setdefault(key, []).append(float(value))
                hist.setdefault("seconds", []).append(seconds)
                log.epochs_run = epoch
                _log.info(
                    "%s %s %d: %s (%.3fs)",
                    self.owner,
                    self.unit,
                    epoch,
                    ", ".join(f"{k}={v:.5f}" for k, v in metrics.items()),
                    seconds,
                )
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(metrics)
                if self.callback is not None and self.callback(epoch, seconds, metrics):
                    stop = True
                if stop:
                    log.stopped_early = epoch < self.epochs
                    break
        finally:
            if bar is not None:
                bar.close()
        return log, best_state

    def _check_loss(self, epoch: int, loss: float) -> None:
        if not math.isfinite(loss):
            raise TrainingDivergedError(
                f"{self.owner}: training diverged at epoch {epoch} (loss {loss}); {self.hint}"
            )
        if self.loss_ceiling is not None and loss > self.loss_ceiling:
            raise TrainingDivergedError(
                f"{self.owner}: training diverged at epoch {epoch} (loss {loss:.3g}, more than "
                f"{self.loss_ceiling:.3g}, far worse than predicting the mean); {self.hint}"
            )


def carve_rows(
    n_rows: int,
    fraction: float,
    gen: np.random.Generator,
    *,
    timestamps: np.ndarray | None = None,
    min_rows: int = 20,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Split row positions into ``(keep, hold)`` for a validation hold-out.

    ``fraction`` of the rows (at least one) are held out: at random from ``gen``, or the
    latest ones when ``timestamps`` is given (ties broken by row order). None when
    ``fraction`` is 0 or there are fewer than ``min_rows`` rows. Both parts are sorted.
    """
    if fraction <= 0 or n_rows < min_rows:
        return None
    n_hold = max(1, int(round(fraction * n_rows)))
    if timestamps is None:
        perm = gen.permutation(n_rows)
    else:
        perm = np.argsort(-np.asarray(timestamps), kind="stable")
    return np.sort(perm[n_hold:]), np.sort(perm[:n_hold])


_R = TypeVar("_R")


def holdout_then_refit(
    train_on: Callable[[np.ndarray | None, np.ndarray | None, int, bool], tuple[_R, TrainLog]],
    *,
    n_rows: int,
    epochs: int,
    valid_given: bool,
    valid_fraction: float,
    refit: bool,
    gen: np.random.Generator,
    timestamps: np.ndarray | None = None,
) -> tuple[_R, TrainLog, _R | None]:
    """Early-stop on a hold-out carved from the training rows, then refit on all of them.

    ``train_on(rows, hold, epochs, is_refit)`` trains a fresh model on the row positions
    ``rows`` (None: all rows) for at most ``epochs`` epochs, validating on ``hold`` (row
    positions, or None: the caller's own ``valid`` set when ``valid_given``, else no
    validation), and returns its result and :class:`TrainLog`. ``is_refit`` is True for the
    second run (no progress bar or callback is expected there).

    Returns ``(result, log, refit_result)``: the early-stopped model and its log, and the
    model retrained on all rows for ``log.best_epoch`` epochs (None when there was nothing
    to refit: a given ``valid``, no hold-out, ``refit`` False or no best epoch).
    """
    if valid_given:
        result, log = train_on(None, None, epochs, False)
        return result, log, None
    parts = carve_rows(n_rows, valid_fraction, gen, timestamps=timestamps)
    if parts is None:
        result, log = train_on(None, None, epochs, False)
        return result, log, None
    keep, hold = parts
    result, log = train_on(keep, hold, epochs, False)
    if not refit or log.best_epoch <= 0:
        return result, log, None
    again, _ = train_on(None, None, log.best_epoch, True)
    return result, log, again
