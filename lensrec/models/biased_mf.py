"""BiasedMF: global mean + user bias + item bias + p_u . q_i, trained by sparse mini-batch Adam."""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp

from .._config import seed_from
from ..data.interactions import Interactions
from ..errors import ConfigError
from ..kernels import readonly
from ..kernels.biased_mf import adam_epoch, predict_pairs
from ..types import IndexArray, RandomState, ScoreArray
from ._params import Range, Search
from ._sgd import auto_reg
from ._trainer import EpochTrainer, TrainLog, holdout_then_refit
from ._validation import RatingValidation
from .base import Callback, Capabilities, Query, RatingPredictor, register

__all__ = ["BiasedMF"]

_log = logging.getLogger(__name__)


def _frequency_weights(counts: np.ndarray, exponent: float) -> np.ndarray:
    """``(n / mean n) ** -exponent`` per row (``n`` its rating count; 1 for rows without ratings)."""
    out = np.ones(len(counts), dtype=np.float32)
    seen = counts > 0
    if exponent != 0.0 and seen.any():
        n = counts[seen].astype(np.float64)
        out[seen] = (n / n.mean()) ** -exponent
    return out


def _average_models(
    a: tuple[float, np.ndarray, np.ndarray], b: tuple[float, np.ndarray, np.ndarray], k: int
) -> tuple[float, np.ndarray, np.ndarray]:
    """One packed biased MF whose prediction is the mean of the predictions of ``a`` and ``b``.

    ``(mu, up, ip)`` with ``up`` / ``ip`` packed as ``[factors | bias]``: the means and the
    biases are averaged, and ``p . q / 2 + p' . q' / 2 = [p, p'] / sqrt(2) . [q, q'] / sqrt(2)``.
    """
    s = np.float32(np.sqrt(0.5))

    def pack(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = np.empty((x.shape[0], 2 * k + 1), dtype=np.float32)
        out[:, :k] = x[:, :k] * s
        out[:, k : 2 * k] = y[:, :k] * s
        out[:, 2 * k] = (x[:, k] + y[:, k]) * np.float32(0.5)
        return out

    return 0.5 * (a[0] + b[0]), pack(a[1], b[1]), pack(a[2], b[2])


_AUTO_REG_START = 0.1  # reg_factors="auto" starts at auto_reg(n, this) (ml-100k's best) ...
_AUTO_REG_STEPS = 4  # ... and halves it at most this many times


def _behind(rival: list[float] | None, curve: list[float]) -> bool:
    """Whether a reg search candidate, with validation RMSEs ``curve`` so far, stops.

    ``rival`` is the best run's curve (compared epoch for epoch; past its end, with its
    last value). The candidate has half the best run's ``reg_factors``: it learns faster at
    first and, once it over-fits, its curve rises. It stops when, after at least two
    epochs, it is no better than the rival after the same epoch and the gap did not shrink
    since the epoch before: behind and not catching up (on 1M and 3M synthetic ratings no
    candidate caught up after that). A candidate that starts behind (its own initial
    draw) but gains runs on.
    """
    if rival is None or not rival or len(curve) < 2:
        return False

    def gap(epoch: int) -> float:  # 1-based
        return curve[epoch - 1] - rival[min(epoch, len(rival)) - 1]

    e = len(curve)
    return gap(e) >= 0.0 and gap(e) >= gap(e - 1)


def _auto_factors(n_users: int, n_items: int) -> int:
    """The fourth root of the larger vocabulary, rounded, at least 2 (see ``factors``)."""
    return max(2, int(round(max(n_users, n_items, 1) ** 0.25)))


def _auto_batch_size(n_ratings: int) -> int:
    """``n / 256`` rounded to a power of two, clipped to [1024, 16384] (see ``batch_size``)."""
    if n_ratings <= 0:
        return 1024
    return int(min(16384, max(1024, 2 ** round(np.log2(n_ratings / 256)))))


class _RatingRange:
    """``None`` or a ``(low, high)`` pair with ``low < high`` (a hyper-parameter rule)."""

    def describe(self) -> str:
        return "None or a pair (low, high) of finite numbers with low < high"

    def ok(self, value: Any) -> bool:
        if value is None:
            return True
        try:
            lo, hi = (float(v) for v in value)
        except (TypeError, ValueError):
            return False
        return bool(np.isfinite(lo) and np.isfinite(hi) and lo < hi)


@register("biased-mf")
class BiasedMF(RatingPredictor):
    """Biased matrix factorisation for explicit ratings.

    The predicted rating is ``mu + b_u + b_i + p_u . q_i`` (Koren, Bell & Volinsky, "Matrix
    factorization techniques for recommender systems", IEEE Computer 2009), optionally
    squashed into the rating range by a scaled sigmoid. ``mu`` is the training mean (fixed);
    the rest is learned by mini-batch Adam (Kingma & Ba, 2015) on

        0.5 * sum_(u,i,r) [(r - r_hat)^2 + reg_factors (w_u |p_u|^2 + w_i |q_i|^2)
                                          + reg_bias (w_u b_u^2 + w_i b_i^2)]

    with the regularisation applied per occurrence in each batch and weighted per row by
    ``w = (n / mean n) ** -reg_frequency_exponent`` (``n`` the row's rating count), so a
    row's total penalty grows sub-linearly with its ratings. Adam is *lazy*: a batch
    updates only the user and item rows it touches, each with its own step counter for the
    bias correction, so an epoch costs time linear in the ratings. The step size shrinks by
    ``learning_rate_decay`` after every epoch. Training stops early when the validation
    RMSE has not improved for ``patience`` epochs, and the best epoch's parameters are
    restored; when the validation set was carved from the training data (no ``valid``
    given), ``refit`` then trains a fresh model on all of it for the chosen number of
    epochs and, by default, averages the two models (see ``refit``). By default the
    strength of the factor regularisation is chosen on that validation set too (see
    ``reg_factors``).

    Parameters
    ----------
    factors : int or "auto", default 32
        Latent dimensions. ``"auto"`` takes the rule of thumb of the Keras notebooks: the
        fourth root of the vocabulary (here the larger of the numbers of users and items),
        rounded, at least 2: 6 on ml-100k, 9 on ml-1m, 20 on ml-25m. On ml-100k validation
        sets it was 0.001 RMSE worse than 32, hence not the default. The value used is
        ``factors_``.
    learning_rate : float, default 0.02
        Adam step size of the first epoch (see ``learning_rate_decay``).
    batch_size : int or "auto", default "auto"
        Ratings per mini-batch. ``"auto"`` takes ``n / 256`` rounded to a power of two,
        within [1024, 16384], for ``n`` training ratings: 1024 up to about 370k ratings
        (ml-100k), 4096 at 1M, 16384 from 3M on: small batches help small data, large ones
        match their hold-out RMSE on large data with cheaper epochs (measurements in
        ``benchmarks/README.md``). The value used is ``batch_size_``.
    reg_factors : float or "auto", default "auto"
        L2 weight on ``p_u`` and ``q_i`` (per occurrence). How much regularisation is
        right depends on how noisy the ratings are and on how many there are: on ml-100k
        0.1 is best (0.05 is 0.014 RMSE worse, 0.2 0.010 worse), on 1M synthetic ratings
        with less noise 0.05 is (0.032 better than 0.1). ``"auto"`` starts where SVD's
        ``reg="auto"`` is (``0.1 * (n / 100,000) ** -0.25`` within [0.02, 0.1] for ``n``
        training ratings, to 3 significant digits: 0.1 up to ml-100k's size, 0.0562 at 1M,
        0.0316 at 10M) and halves it, up to four times, while the early-stopping run's
        validation RMSE improves (every run on the same hold-out). A halved candidate stops
        once its validation RMSE is no better than the best run's after the same epoch and
        the gap did not shrink since the epoch before (a weaker regularisation learns
        faster at first, so once behind and falling further back it does not catch up), so
        a value that loses costs a few epochs, not a whole run. It never goes
        above the starting value: with ``refit="average"`` the hold-out favours stronger
        regularisation than the final averaged model does (on a u1.base carve it chose
        0.2, 0.009 worse on validation). When the starting value stays, the model is the
        one of ``reg_factors`` set to it, bit for bit. Without a validation set
        (``valid_fraction=0`` and no ``valid``) ``"auto"`` is the starting value. The value
        used is ``reg_factors_``, the search ``reg_search_`` (a stopped candidate reports
        its best RMSE before it stopped).
    reg_bias : float, default 0.01
        L2 weight on ``b_u`` and ``b_i`` (per occurrence).
    epochs : int, default 100
        Maximum number of epochs (early stopping usually ends sooner).
    patience : int, default 5
        Epochs without a better validation RMSE (by more than ``tol``) before stopping;
        the best epoch is restored.
    valid_fraction : float, default 0.05
        When ``fit`` gets no ``valid``, this random fraction of the training ratings is held
        out (from the ``random_state`` stream) to choose the number of epochs by early
        stopping (see ``refit``). ``0`` trains on everything for exactly ``epochs`` epochs,
        without early stopping.
    squash : bool, default False
        Predict ``lo + (hi - lo) * sigmoid(mu + b_u + b_i + p_u . q_i)``, which keeps every
        prediction inside the rating range.
    rating_range : (float, float) or None, default None
        ``(lo, hi)`` for ``squash``; None takes the training min and max, widened by a small
        margin so the extremes stay reachable.
    init_std : float, default 0.1
        Standard deviation of the normal initialisation of the factors (biases start at 0).
    learning_rate_decay : float in (0, 1], default 0.85
        The Adam step size is multiplied by this after every epoch (``1`` keeps it fixed).
    reg_frequency_exponent : float in [0, 1], default 0.25
        Per-row weight ``(n / mean n) ** -exponent`` on ``reg_factors`` and ``reg_bias``,
        with ``n`` the row's number of training ratings and the mean over rows with
        ratings: rare users and items are shrunk harder per rating, frequent ones less.
        ``0`` is plain per-occurrence L2; ``1`` makes every row's total penalty equal.
    tol : float, default 5e-4
        An epoch counts as an improvement for ``patience`` only when it lowers the best
        validation RMSE by more than this (min-delta); it ends long tails of tiny gains once
        the learning rate has decayed. The best epoch is kept whatever ``tol``.
    refit : True, False or "average", default "average"
        What to do after early stopping on the ``valid_fraction`` hold-out. ``False`` keeps
        the early-stopped model (trained on the other ratings only). ``True`` trains a fresh
        model on *all* training ratings for ``best_epoch_`` epochs, so the hold-out is not
        wasted. ``"average"`` does the same and then predicts the mean of the two models,
        which costs no more training and lowers RMSE on validation sets (see
        ``benchmarks/README.md``). The mean of two biased MF models is itself one biased MF
        model: biases and global means are averaged and the factors are the two models'
        factors side by side, each scaled by ``1/sqrt(2)``, so ``user_factors_`` has
        ``2 * factors`` columns. (With ``squash`` the sigmoid's inputs are averaged.)
        Ignored when ``valid`` is given or ``valid_fraction`` is 0.
    valid_by : {"random", "time"}, default "random"
        How the ``valid_fraction`` hold-out is carved from the training ratings: at random
        (from the ``random_state`` stream), or the latest ratings by timestamp (ties by row
        order), which mimics a temporal test split. ``"time"`` needs timestamps.
    random_state : None, int or numpy Generator
        Seeds the initialisation, the validation hold-out and each epoch's shuffle. Training
        is serial, so the same seed gives a bit-for-bit identical model.

    Attributes
    ----------
    global_mean_ : float
        The training mean (with ``squash``: the sigmoid's input offset that maps to it).
    user_bias_, item_bias_ : float32 [n_users], [n_items]
    user_factors_, item_factors_ : float32 [n_users, f], [n_items, f]
        ``f = factors_``, or ``2 * factors_`` when ``refit="average"`` averaged two models.
    factors_ : int
        The latent dimensions used (``factors``, or the ``"auto"`` choice).
    reg_factors_ : float
        The factor regularisation used (``reg_factors``, or the ``"auto"`` choice).
    reg_search_ : dict of str to float
        With ``reg_factors="auto"``: each value tried and the best validation RMSE of its
        early-stopping run (empty otherwise, or without validation).
    history_ : dict of lists of float
        The learning curves, per epoch: ``"train_loss"`` (mean per-rating loss, as above),
        ``"train_rmse"`` (RMSE on the ratings trained on, after the epoch, clipped to the
        rating scale) and ``"valid_rmse"`` (empty without validation); with ``refit``, of
        the early-stopping run (with ``reg_factors="auto"``: of the value chosen), not of
        the refit.
    best_epoch_ : int
        1-based epoch whose parameters were kept (with ``refit``: the number of epochs the
        final model was trained for).
    rating_range_ : list of float
        ``[lo, hi]`` used by ``squash`` (the training min / max when not given).
    batch_size_ : int
        The mini-batch size used (``batch_size``, or the ``"auto"`` choice).

    Examples
    --------
    >>> from lensrec.testing import make_ratings
    >>> train = make_ratings()
    >>> model = BiasedMF(factors=8, random_state=0).fit(train)
    >>> model.predict([0, 1], [0, 1]).dtype
    dtype('float32')
    """

    # early stopping uses its own hold-out (valid_fraction) and then refits: the CLI carves none
    capabilities: ClassVar[Capabilities] = Capabilities(
        needs_ratings=True,
        predicts_ratings=True,
        folds_in=True,
        fold_in_needs_ratings=True,
        epoch_trained=True,
    )

    factors: Annotated[int | Literal["auto"], Range(1), Search(8, 256, log=True)] = 32
    learning_rate: Annotated[float, Range(0.0, low_open=True), Search(0.003, 0.1, log=True)] = 0.02
    batch_size: Annotated[int | Literal["auto"], Range(1)] = "auto"
    reg_factors: Annotated[float | Literal["auto"], Range(0.0), Search(0.005, 0.5, log=True)] = (
        "auto"
    )
    reg_bias: Annotated[float, Range(0.0), Search(0.001, 0.1, log=True)] = 0.01
    epochs: Annotated[int, Range(1)] = 100
    patience: Annotated[int, Range(1)] = 5
    valid_fraction: Annotated[float, Range(0.0, 0.5, high_open=True)] = 0.05
    squash: bool = False
    rating_range: Annotated[tuple[float, float] | None, _RatingRange()] = None
    init_std: Annotated[float, Range(0.0)] = 0.1
    learning_rate_decay: Annotated[float, Range(0.0, 1.0, low_open=True), Search(0.7, 1.0)] = 0.85
    reg_frequency_exponent: Annotated[float, Range(0.0, 1.0), Search(0.0, 0.75)] = 0.25
    refit: bool | Literal["average"] = "average"
    tol: Annotated[float, Range(0.0)] = 5e-4
    valid_by: Literal["random", "time"] = "random"
    random_state: RandomState = None

    @classmethod
    def warm_up(cls, params: Mapping[str, Any] | None = None) -> None:
        """Compile the training and prediction kernels (both squash variants) on tiny data."""
        from ..data.planted import make_ratings

        data = make_ratings(n_users=8, n_items=6, density=0.8, random_state=0)
        for squash in (False, True):
            # the kernels see read-only rows and C-contiguous parameters on every path
            # (hold-out, refit, predict): one signature each
            cls(factors=2, epochs=2, squash=squash, random_state=0).fit(data).predict([0], [0])

    # --- training ------------------------------------------------------------------------
    def _fit(
        self,
        train: Interactions,
        valid: Interactions | None,
        gen: np.random.Generator,
        *,
        show_progress: bool,
        callback: Callback | None,
    ) -> None:
        if train.ratings is None:
            raise ConfigError("BiasedMF needs explicit ratings; the training data is implicit")
        if valid is not None and valid.ratings is None:
            raise ConfigError("BiasedMF: the validation data has no ratings")
        users = readonly(np.ascontiguousarray(train.users, dtype=np.int32))
        items = readonly(np.ascontiguousarray(train.items, dtype=np.int32))
        ratings = readonly(np.ascontiguousarray(train.ratings, dtype=np.float32))
        if not np.all(np.isfinite(ratings)):
            raise ConfigError("BiasedMF: the training ratings contain NaN or infinite values")

        if self.rating_range is None:
            lo, hi = float(ratings.min()), float(ratings.max())
            if hi <= lo:
                hi = lo + 1.0
            margin = 0.01 * (hi - lo)
            lo, hi = lo - margin, hi + margin
        else:
            lo, hi = (float(v) for v in self.rating_range)
        self.rating_range_ = [lo, hi]
        self.batch_size_ = (
            _auto_batch_size(len(users)) if self.batch_size == "auto" else int(self.batch_size)
        )
        self.factors_ = (
            _auto_factors(train.n_users, train.n_items)
            if self.factors == "auto"
            else int(self.factors)
        )
        timestamps = None
        if self.valid_by == "time":
            if train.timestamps is None:
                raise ConfigError(
                    'BiasedMF: valid_by="time" needs timestamps and the training data has '
                    'none; use valid_by="random" or pass valid= to fit'
                )
            timestamps = train.timestamps

        scale_lo, scale_hi = (float(v) for v in self.rating_scale_)
        shape = (train.n_users, train.n_items)
        given = None
        if valid is not None and len(valid):
            given = RatingValidation(valid, (scale_lo, scale_hi))

        auto = self.reg_factors == "auto"
        # "auto" starts as SVD's reg="auto" (3 significant digits, so reg_search_ reads well)
        first_reg = float(f"{auto_reg(len(users), _AUTO_REG_START):.3g}")
        reg = [first_reg if auto else float(self.reg_factors)]  # the run's value
        stopped = [False]  # the user's callback asked to stop
        train_gen = [gen]  # the stream a run initialises and shuffles from

        rival: list[list[float] | None] = [None]  # reg search: the curve a candidate must beat
        curve: list[float] = []  # the candidate's own, so far

        def watch(epoch: int, seconds: float, metrics: dict[str, float]) -> bool:
            if callback is not None and callback(epoch, seconds, metrics):
                stopped[0] = True
            if epoch == 1:
                curve.clear()
            if "valid_rmse" in metrics:
                curve.append(metrics["valid_rmse"])
            return stopped[0] or _behind(rival[0], curve)

        def train_on(
            rows: np.ndarray | None, hold: np.ndarray | None, epochs: int, is_refit: bool
        ) -> tuple[tuple[float, np.ndarray, np.ndarray], TrainLog]:
            if rows is None:
                arrays = (users, items, ratings)
                check = given if not is_refit else None
            else:
                arrays = (readonly(users[rows]), readonly(items[rows]), readonly(ratings[rows]))
                assert hold is not None
                check = RatingValidation(
                    (users[hold], items[hold], ratings[hold]), (scale_lo, scale_hi)
                )
            return self._train(
                *arrays, shape, lo, hi, train_gen[0], epochs, check, reg[0],
                show_progress=show_progress and not is_refit,
                callback=None if is_refit or (callback is None and rival[0] is None) else watch,
                scale=(scale_lo, scale_hi),
            )  # fmt: skip

        def run(
            carve_gen: np.random.Generator, refit: bool
        ) -> tuple[
            tuple[float, np.ndarray, np.ndarray],
            TrainLog,
            tuple[float, np.ndarray, np.ndarray] | None,
        ]:
            return holdout_then_refit(
                train_on,
                n_rows=len(users),
                epochs=int(self.epochs),
                valid_given=valid is not None,
                valid_fraction=float(self.valid_fraction),
                refit=refit,
                gen=carve_gen,
                timestamps=timestamps,
            )

        search: dict[str, float] = {}
        if not auto:
            first, log, again = run(gen, bool(self.refit))
        else:
            # reg_factors="auto": halve reg_factors from its starting value while the
            # validation RMSE of the early-stopping run improves (every run on the same
            # hold-out), then refit. A candidate stops as soon as its curve falls behind the
            # best run's at the same epoch (see ``_behind``). The first run and the refit draw
            # from ``gen`` exactly as the fixed starting value does, so when it stays the
            # model is that one, bit for bit; the other runs draw from streams derived from a
            # copy of ``gen``, which leaves ``gen`` untouched
            start = copy.deepcopy(gen)
            first, log, _ = run(gen, False)
            if log.best_epoch > 0 and not stopped[0]:
                search[repr(reg[0])] = best = min(log.history["valid_rmse"])
                best_reg, chosen = reg[0], (first, log)
                for attempt in range(_AUTO_REG_STEPS):
                    reg[0] = best_reg / 2
                    rival[0] = chosen[1].history["valid_rmse"]
                    train_gen[0] = np.random.default_rng([seed_from(copy.deepcopy(start)), attempt])
                    out = run(copy.deepcopy(start), False)
                    rival[0] = None
                    value = min(out[1].history["valid_rmse"])
                    search[repr(reg[0])] = value
                    if value >= best or stopped[0]:
                        break
                    best, best_reg, chosen = value, reg[0], (out[0], out[1])
                reg[0] = best_reg
                first, log = chosen
            train_gen[0] = gen
            again = None
            if self.refit and valid is None and log.best_epoch > 0:
                again, _ = train_on(None, None, log.best_epoch, True)
        self.reg_factors_ = reg[0]
        self.reg_search_ = search
        mu, up, ip = first
        k = int(self.factors_)
        if again is not None:
            # the hold-out only chose the number of epochs: the refit saw every rating
            if self.refit == "average":
                mu, up, ip = _average_models(first, again, k)
                k = 2 * k
            else:
                mu, up, ip = again
        history = {key: list(log.history.get(key, []))
                   for key in ("train_loss", "train_rmse", "valid_rmse")}  # fmt: skip
        self.global_mean_ = mu
        counts = np.bincount(users, minlength=train.n_users)
        self.mean_user_count_ = float(counts[counts > 0].mean())
        self.best_epoch_ = log.best_epoch if log.best_epoch > 0 else log.epochs_run
        self.history_ = history
        self.user_factors_ = np.ascontiguousarray(up[:, :k])
        self.item_factors_ = np.ascontiguousarray(ip[:, :k])
        self.user_bias_ = np.ascontiguousarray(up[:, k])
        self.item_bias_ = np.ascontiguousarray(ip[:, k])

    def _train(
        self,
        users: np.ndarray,
        items: np.ndarray,
        ratings: np.ndarray,
        shape: tuple[int, int],
        lo: float,
        hi: float,
        gen: np.random.Generator,
        epochs: int,
        check: RatingValidation | None,
        reg_factors: float,
        *,
        show_progress: bool,
        callback: Callback | None,
        scale: tuple[float, float] = (-np.inf, np.inf),
    ) -> tuple[tuple[float, np.ndarray, np.ndarray], TrainLog]:
        """Initialise and train on one set of ratings; return ``((mu, up, ip), log)``.

        With ``check`` (the validation RMSE) the best epoch's parameters are returned
        (``log.best_epoch`` 1-based); without it the last epoch's. ``scale`` clips the
        predictions of the training curve (``train_rmse``) as ``predict`` clips.
        """
        k = int(self.factors_)
        n_users, n_items = shape
        mu = float(ratings.astype(np.float64).mean())
        if self.squash:
            # start the sigmoid at the mean: solve lo + (hi - lo) * sigmoid(mu_z) = mean
            frac = min(max((mu - lo) / (hi - lo), 1e-3), 1 - 1e-3)
            mu = float(np.log(frac / (1.0 - frac)))

        user_counts = np.bincount(users, minlength=n_users)
        item_counts = np.bincount(items, minlength=n_items)
        up = np.zeros((n_users, k + 1), dtype=np.float32)
        ip = np.zeros((n_items, k + 1), dtype=np.float32)
        up[:, :k] = gen.standard_normal((n_users, k), dtype=np.float32) * np.float32(self.init_std)
        ip[:, :k] = gen.standard_normal((n_items, k), dtype=np.float32) * np.float32(self.init_std)
        # users / items without training ratings keep zero factors: they predict mu + bias
        up[user_counts == 0] = 0.0
        ip[item_counts == 0] = 0.0
        # parameters and Adam moments side by side per row (see lensrec.kernels.biased_mf)
        user_state = np.zeros((n_users, 3, k + 1), dtype=np.float32)
        item_state = np.zeros((n_items, 3, k + 1), dtype=np.float32)
        user_state[:, 0] = up
        item_state[:, 0] = ip
        up, ip = user_state[:, 0], item_state[:, 0]  # views: the kernel updates them
        # contiguous copies after each epoch: what the train curve, validation and the best
        # epoch's snapshot read (predict_pairs then only ever sees C-contiguous parameters)
        now = [np.ascontiguousarray(up), np.ascontiguousarray(ip)]
        state = dict(
            user_state=user_state,
            item_state=item_state,
            user_steps=np.zeros(n_users, dtype=np.int64),
            item_steps=np.zeros(n_items, dtype=np.int64),
            user_reg=_frequency_weights(user_counts, float(self.reg_frequency_exponent)),
            item_reg=_frequency_weights(item_counts, float(self.reg_frequency_exponent)),
        )
        bs = int(self.batch_size_)
        slots = min(bs, max(len(users), 1))  # a batch touches at most this many rows
        work = dict(
            work_order=np.empty(len(users), dtype=np.int32),
            work_user_slot=np.full(n_users, -1, dtype=np.int32),
            work_item_slot=np.full(n_items, -1, dtype=np.int32),
            work_user_grads=np.zeros((slots, k + 1), dtype=np.float32),
            work_item_grads=np.zeros((slots, k + 1), dtype=np.float32),
            work_user_rows=np.empty(slots, dtype=np.int32),
            work_item_rows=np.empty(slots, dtype=np.int32),
        )
        squash = bool(self.squash)
        lr = [float(self.learning_rate)]
        # predicting the mean costs about 0.5 * variance per rating: far above that is divergence
        variance = float(np.var(ratings.astype(np.float64))) if len(ratings) else 1.0
        ceiling = 1e3 * max(0.5 * variance, 1e-3) + 1e3

        scale_lo, scale_hi = np.float32(scale[0]), np.float32(scale[1])  # as predict() clips
        t_out = np.empty(len(users), dtype=np.float32)

        def step(epoch: int) -> dict[str, float]:
            loss = adam_epoch(
                users, items, ratings, seed_from(gen), bs, mu,
                lr[0], reg_factors, float(self.reg_bias),
                squash, lo, hi, **state, **work,
            )  # fmt: skip
            lr[0] *= float(self.learning_rate_decay)
            now[:] = [np.ascontiguousarray(up), np.ascontiguousarray(ip)]
            # the learning curve: RMSE on the ratings trained on, after the epoch, clipped
            predict_pairs(users, items, mu, now[0], now[1], squash, lo, hi, t_out)
            np.clip(t_out, scale_lo, scale_hi, out=t_out)
            np.subtract(t_out, ratings, out=t_out)
            np.square(t_out, out=t_out)
            train_rmse = math.sqrt(float(t_out.mean(dtype=np.float64)))
            return {"train_loss": float(loss), "train_rmse": train_rmse}

        def predict(u: np.ndarray, i: np.ndarray, out: np.ndarray) -> None:
            predict_pairs(readonly(u), readonly(i), mu, now[0], now[1], squash, lo, hi, out)

        def validate() -> float:
            assert check is not None
            return check(predict)

        trainer: EpochTrainer[tuple[np.ndarray, np.ndarray]] = EpochTrainer(
            "BiasedMF",
            epochs=epochs,
            patience=int(self.patience),
            tol=float(self.tol),
            mode="min",
            metric="valid_rmse",
            loss_ceiling=ceiling,
            hint="lower learning_rate or raise reg_factors / reg_bias",
            show_progress=show_progress,
            callback=callback,
        )
        log, best = trainer.run(
            step,
            validate if check is not None else None,
            lambda: (now[0], now[1]),  # fresh copies every epoch: nothing else writes them
        )
        if best is not None:
            return (mu, best[0], best[1]), log
        return (mu, np.ascontiguousarray(up), np.ascontiguousarray(ip)), log

    # --- scoring -------------------------------------------------------------------------
    def _packed(self) -> tuple[np.ndarray, np.ndarray]:
        def pack() -> tuple[np.ndarray, np.ndarray]:
            up = np.concatenate([self.user_factors_, self.user_bias_[:, None]], axis=1)
            ip = np.concatenate([self.item_factors_, self.item_bias_[:, None]], axis=1)
            return np.ascontiguousarray(up, np.float32), np.ascontiguousarray(ip, np.float32)

        return self._cached("packed", pack)

    def _predict(self, users: IndexArray, items: IndexArray) -> ScoreArray:
        up, ip = self._packed()
        out = np.empty(len(users), dtype=np.float32)
        lo, hi = self._range()
        predict_pairs(
            readonly(np.ascontiguousarray(users, np.int32)),
            readonly(np.ascontiguousarray(items, np.int32)),
            float(self.global_mean_),
            up,
            ip,
            bool(self.squash),
            lo,
            hi,
            out,
        )
        return out

    def _range(self) -> tuple[float, float]:
        lo, hi = self.rating_range_
        return float(lo), float(hi)

    def _user_vectors(self, users: IndexArray) -> np.ndarray:
        """``[p_u, b_u + mu, 1]``: its dot product with ``[q_i, 1, b_i]`` is the raw score."""
        n = len(users)
        out = np.empty((n, self.user_factors_.shape[1] + 2), dtype=np.float32)
        out[:, :-2] = self.user_factors_[users]
        out[:, -2] = self.user_bias_[users] + np.float32(self.global_mean_)
        out[:, -1] = 1.0
        return out

    def _item_vectors(self) -> np.ndarray:
        n = self.item_factors_.shape[0]
        out = np.empty((n, self.item_factors_.shape[1] + 2), dtype=np.float32)
        out[:, :-2] = self.item_factors_
        out[:, -2] = 1.0
        out[:, -1] = self.item_bias_
        return out

    def _fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        """Exact ridge fold-in: ``p_u, b_u`` minimising the training loss on the history's
        ratings with the items fixed (the same per-occurrence, frequency-weighted L2)."""
        k = self.item_factors_.shape[1]
        mu = float(self.global_mean_)
        lo, hi = self._range()
        mean_count = float(getattr(self, "mean_user_count_", 0.0)) or 1.0
        e = float(self.reg_frequency_exponent)
        # the value trained with (models saved before reg_factors="auto" have only the param)
        reg = float(getattr(self, "reg_factors_", self.reg_factors))
        out = np.zeros((history.shape[0], k + 2), dtype=np.float32)
        out[:, -2] = mu
        out[:, -1] = 1.0
        for r in range(history.shape[0]):
            lo_p, hi_p = history.indptr[r], history.indptr[r + 1]
            items = history.indices[lo_p:hi_p]
            if items.size == 0:
                continue
            y = history.data[lo_p:hi_p].astype(np.float64)
            if self.squash:
                frac = np.clip((y - lo) / (hi - lo), 1e-3, 1 - 1e-3)
                y = np.log(frac / (1.0 - frac))
            y = y - mu - self.item_bias_[items]
            x = np.empty((items.size, k + 1))
            x[:, :k] = self.item_factors_[items]
            x[:, k] = 1.0
            n = items.size
            w = (n / mean_count) ** -e
            lam = np.full(k + 1, n * w * reg)
            lam[k] = n * w * float(self.reg_bias)
            sol = np.linalg.solve(x.T @ x + np.diag(lam), x.T @ y)
            out[r, :k] = sol[:k]
            out[r, -2] = mu + sol[k]
        return out

    def _score(self, query: Query, items: IndexArray | None) -> ScoreArray:
        """Predicted ratings for every (user, candidate) pair (squashed when ``squash``)."""
        scores = super()._score(query, items)
        if self.squash:
            lo, hi = self._range()
            scores = (lo + (hi - lo) / (1.0 + np.exp(-scores))).astype(np.float32)
        return scores

    def _similarity_vectors(self) -> np.ndarray:
        return self.item_factors_
