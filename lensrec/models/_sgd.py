"""What SVD and SVD++ share: per-rating SGD on a biased factor model, trained one way.

:class:`BiasedSGDModel` owns the fit path of both: the ratings and ``reg="auto"``, the
hold-out / early-stopping / refit plumbing (:func:`~._trainer.holdout_then_refit`), the
Surprise-style initialisation, the epoch loop with its shuffles and learning-rate decay
(:class:`~._trainer.EpochTrainer`), the fitted attributes, and the ridge fold-in of users
never seen; also the hyper-parameters both declare and their documentation, the calls of the
numba kernels (whose arguments both kernel modules lay out alike) and ``warm_up``. A subclass
names its kernels (:attr:`BiasedSGDModel._kernels`), lays the ratings out for them
(:meth:`BiasedSGDModel._layout`) and, for SVD++, says which extra parameters it learns
(:meth:`BiasedSGDModel._init_extra`, :meth:`BiasedSGDModel._keep_extra`).

The helpers below (``auto_reg``, ``rating_arrays``, ``loss_ceiling``, ``ridge_fold_in``) are
re-exported by :mod:`lensrec.models.svd_sgd`, where they were first written. Validation is
:class:`~._validation.RatingValidation`, as for every rating model.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, NamedTuple

import numpy as np
import scipy.sparse as sp

from .._config import seed_from
from ..data.interactions import Interactions
from ..errors import ConfigError
from ..kernels import readonly
from ..kernels.biased_mf import shuffled_order
from ..types import IndexArray, RandomState, ScoreArray
from ._params import Range, Search
from ._trainer import EpochTrainer, TrainLog, holdout_then_refit
from ._validation import RatingValidation
from .base import Callback, Capabilities, RatingPredictor

__all__ = [
    "AUTO_REG_EXPONENT",
    "AUTO_REG_FLOOR",
    "BiasedSGDModel",
    "EpochLayout",
    "EpochPlan",
    "SGDKernels",
    "auto_reg",
    "loss_ceiling",
    "rating_arrays",
    "ridge_fold_in",
]


#: ``reg="auto"``: its exponent in the number of ratings and its floor
AUTO_REG_EXPONENT = 0.25
AUTO_REG_FLOOR = 0.02


def auto_reg(n_ratings: int, at_100k: float) -> float:
    """``at_100k * (n / 100,000) ** -0.25`` within ``[0.02, at_100k]`` (``reg="auto"``).

    L2 applied at every rating weighs more on a row the more ratings it has; on validation
    sets carved from training data the best per-rating weight of SVD at 40 epochs fell with
    the size of the data: 0.1 on ml-100k, 0.035-0.05 at 1M synthetic ratings, 0.03 at 10M
    (``benchmarks/README.md``). Smaller data keeps ``at_100k``.
    """
    ratio = max(float(n_ratings), 1.0) / 100_000.0
    return float(min(at_100k, max(AUTO_REG_FLOOR, at_100k * ratio**-AUTO_REG_EXPONENT)))


def _override(value: float | None, shared: float) -> float:
    return float(shared if value is None else value)


def rating_arrays(data: Interactions, owner: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(users int32, items int32, ratings float32)``, contiguous; refuses NaN ratings."""
    if data.ratings is None:
        raise ConfigError(f"{owner} needs explicit ratings; the data is implicit")
    ratings = np.ascontiguousarray(data.ratings, dtype=np.float32)
    if not np.all(np.isfinite(ratings)):
        raise ConfigError(f"{owner}: the ratings contain NaN or infinite values")
    return (
        np.ascontiguousarray(data.users, dtype=np.int32),
        np.ascontiguousarray(data.items, dtype=np.int32),
        ratings,
    )


def loss_ceiling(ratings: np.ndarray) -> float:
    """A train MSE far above predicting the mean (about the variance): divergence."""
    variance = float(np.var(ratings.astype(np.float64))) if len(ratings) else 1.0
    return 1e3 * max(variance, 1e-3) + 1e3


def ridge_fold_in(
    history: sp.csr_matrix,
    item_factors: np.ndarray,
    item_bias: np.ndarray,
    mu: float,
    reg_factors: float,
    reg_bias: float,
    biased: bool,
    offsets: np.ndarray | None = None,
) -> np.ndarray:
    """``[p_u, b_u]`` per history row minimising the per-rating SGD objective, items fixed.

    ``sum_i (r_ui - mu - b_i - q_i . (p_u + o_u) - b_u)^2 + n (reg_factors |p_u|^2 +
    reg_bias b_u^2)`` over the row's ``n`` ratings: the point where the SGD updates of one
    user sum to zero (each rating applies the L2 once). ``o_u`` (``offsets`` [m, k], e.g.
    SVD++'s implicit sum) is added to ``p_u``; without ``biased`` ``b_u`` stays 0. An empty
    row gives zeros. Returns float64 ``[m, k + 1]``.
    """
    k = item_factors.shape[1]
    out = np.zeros((history.shape[0], k + 1))
    for r in range(history.shape[0]):
        lo, hi = history.indptr[r], history.indptr[r + 1]
        items = history.indices[lo:hi]
        n = items.size
        if n == 0:
            continue
        q = item_factors[items].astype(np.float64)
        y = history.data[lo:hi].astype(np.float64) - mu - item_bias[items]
        if offsets is not None:
            y = y - q @ offsets[r]
        if biased:
            x = np.empty((n, k + 1))
            x[:, :k] = q
            x[:, k] = 1.0
            lam = np.full(k + 1, n * reg_factors)
            lam[k] = n * reg_bias
            out[r] = np.linalg.solve(x.T @ x + np.diag(lam), x.T @ y)
        else:
            out[r, :k] = np.linalg.solve(q.T @ q + n * reg_factors * np.eye(k), q.T @ y)
    return out


#: ``(users, items, values)`` of a set of ratings: int32, int32, float32
RatingArrays = tuple[np.ndarray, np.ndarray, np.ndarray]


class EpochPlan(NamedTuple):
    """How a model runs its epochs on one set of ratings (:meth:`BiasedSGDModel._epoch_plan`)."""

    order: np.ndarray
    """The visiting order (int32); shuffled in place before each epoch when
    ``order == "shuffle"``."""
    run: Callable[[float], float]
    """``run(scale)``: one epoch in place with every learning rate times ``scale``; returns
    the epoch's training loss."""
    predict: Callable[[np.ndarray, np.ndarray, np.ndarray], None]
    """``predict(users, items, out)``: unclipped predictions of the current parameters."""


class SGDKernels(NamedTuple):
    """A model's numba kernels, called alike: ``epoch(*lead, mu, learning_rates, regs,
    params)``, ``hogwild(..., hogwild_block)`` and ``predict_pairs(users, items, mu,
    *packed, out)`` (see :mod:`lensrec.kernels.svd`)."""

    epoch: Callable[..., float]
    hogwild: Callable[..., float]
    hogwild_block: int
    """What one Hogwild task runs serially (ratings or users, as the kernel counts)."""
    predict_pairs: Callable[..., None]


class EpochLayout(NamedTuple):
    """A set of ratings laid out for a model's epoch kernels (:meth:`BiasedSGDModel._layout`)."""

    lead: tuple[Any, ...]
    """The kernel arguments before ``mu``: the ratings in the kernel's layout, the visiting
    order, any flag."""
    order: np.ndarray
    """The visiting order in ``lead`` (int32), shuffled in place when ``order == "shuffle"``."""
    scoring: Callable[[], tuple[np.ndarray, ...]]
    """The current parameters as ``predict_pairs`` takes them between ``mu`` and ``out``."""


def _sections(doc: str) -> tuple[str, dict[str, str]]:
    """A cleaned numpydoc docstring as its text before the first heading and its sections
    (heading -> body, in order)."""
    parts = re.split(r"^(\w[\w ]*)\n-+\n", doc, flags=re.M)
    return parts[0], dict(zip(parts[1::2], parts[2::2], strict=True))


def _entries(body: str) -> list[str]:
    """The entries of a Parameters or Attributes section: a header line and its indented
    lines each."""
    entries: list[str] = []
    for line in body.strip("\n").splitlines():
        if line and not line[0].isspace():
            entries.append(line)
        elif entries:
            entries[-1] += "\n" + line
    return [e.rstrip() for e in entries]


def _names(entry: str) -> list[str]:
    """The names an entry documents (``lr_bu, lr_bi : ...`` documents two)."""
    return entry.split(" : ")[0].split(", ")


def _shown(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


class BiasedSGDModel(RatingPredictor):
    """The fit path SVD and SVD++ share (see the module docstring); not registered.

    The hyper-parameters below are declared here once. A subclass adds its own (placed in
    the constructor by ``_PLACED_AFTER``), redeclares those that differ and documents only
    those: its docstring is completed from this one when the class is made (the parameters
    in constructor order, these attributes appended). It names its kernels in ``_kernels``
    and lays the ratings out for them in :meth:`_layout`.

    ``_train`` draws from ``gen`` in a fixed order (user factors, item factors, the extra
    parameters, then one shuffle seed per epoch), so a seed gives the same model bit for bit
    with one thread.

    Parameters
    ----------
    factors : int, default 100
        Latent dimensions (Surprise's ``n_factors``).
    epochs : int, default 40
        Epochs (the maximum with validation).
    learning_rate : float, default 0.01
        Step size of every parameter in the first epoch (Surprise's ``lr_all``).
    reg : float or "auto", default "auto"
        L2 weight of every parameter whose ``reg_<p>`` is None, applied at each of its
        ratings (``reg_all``). ``"auto"`` scales it with the number ``n`` of training
        ratings: ``0.1 * (n / 100,000) ** -0.25`` within [0.02, 0.1] (0.1 up to ml-100k's
        size, 0.056 at 1M ratings, 0.032 at 10M; :func:`auto_reg`). The value used is
        ``reg_used_``.
    lr_bu, lr_bi, lr_pu, lr_qi : float or None, default None
        Per-parameter learning rates; None takes ``learning_rate``.
    reg_bu, reg_bi, reg_pu, reg_qi : float or None, default None
        Per-parameter regularisation; None takes ``reg``.
    init_mean, init_std : float, default 0.0 and 0.1
        The factors start as independent ``normal(init_mean, init_std)`` draws.
    learning_rate_decay : float in (0, 1], default 1.0
        Every learning rate is multiplied by this after each epoch (1: constant, as Surprise).
    order : str, default "shuffle"
        The order ratings are visited in each epoch; ``"shuffle"``: a new random permutation
        every epoch.
    parallel : bool, default False
        Hogwild epochs on all threads (``LENSREC_THREADS``): with one thread, the serial
        model bit for bit, with more, not repeatable.
    valid_fraction : float, default 0.0
        With no ``valid`` given: hold out this random share of the training ratings for
        early stopping, then refit on all of them (0: no hold-out, exactly ``epochs``).
    patience : int, default 5
        With validation: epochs without an improvement of more than ``tol`` before stopping;
        the best epoch's parameters are kept.
    tol : float, default 1e-4
        Minimum improvement of the validation RMSE that resets ``patience``.
    random_state : None, int or numpy Generator
        Seeds the initialisation, the hold-out and each epoch's shuffle; serial training is
        bit-for-bit repeatable.

    Attributes
    ----------
    history_ : dict of lists of float
        ``"train_loss"`` (running MSE of each epoch) and ``"valid_rmse"`` (empty without
        validation); of the early-stopping run when the model was refit.
    best_epoch_ : int
        1-based epoch whose parameters were kept: the best validation RMSE's; with a
        ``valid_fraction`` hold-out, the number of epochs the final model was retrained for
        on all ratings; without validation, the number of epochs run.
    epochs_ : int
        The same number (its earlier name).
    reg_used_ : float
        The shared regularisation used (``reg``, or the ``"auto"`` value).
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        needs_ratings=True,
        predicts_ratings=True,
        folds_in=True,
        fold_in_needs_ratings=True,
        epoch_trained=True,
    )
    #: the parameters with their own ``lr_<p>`` and ``reg_<p>`` overrides, in kernel order
    _PARAMS: ClassVar[tuple[str, ...]] = ("bu", "bi", "pu", "qi")
    #: a subclass's own hyper-parameter -> the one it follows in the constructor (a
    #: dataclass puts them last), which ``get_params``, ``repr`` and the search space follow
    _PLACED_AFTER: ClassVar[dict[str, str]] = {}
    _kernels: ClassVar[SGDKernels]

    factors: Annotated[int, Range(1), Search(8, 256, log=True)] = 100
    epochs: Annotated[int, Range(1), Search(10, 100, log=True)] = 40
    learning_rate: Annotated[float, Range(0.0, low_open=True), Search(0.001, 0.05, log=True)] = 0.01
    reg: Annotated[float | Literal["auto"], Range(0.0), Search(0.005, 0.3, log=True)] = "auto"
    lr_bu: Annotated[float | None, Range(0.0)] = None
    lr_bi: Annotated[float | None, Range(0.0)] = None
    lr_pu: Annotated[float | None, Range(0.0)] = None
    lr_qi: Annotated[float | None, Range(0.0)] = None
    reg_bu: Annotated[float | None, Range(0.0)] = None
    reg_bi: Annotated[float | None, Range(0.0)] = None
    reg_pu: Annotated[float | None, Range(0.0)] = None
    reg_qi: Annotated[float | None, Range(0.0)] = None
    init_mean: float = 0.0
    init_std: Annotated[float, Range(0.0)] = 0.1
    learning_rate_decay: Annotated[float, Range(0.0, 1.0, low_open=True), Search(0.8, 1.0)] = 1.0
    order: str = "shuffle"  # a subclass declares the orders it offers
    parallel: bool = False
    valid_fraction: Annotated[float, Range(0.0, 0.5, high_open=True)] = 0.0
    patience: Annotated[int, Range(1)] = 5
    tol: Annotated[float, Range(0.0)] = 1e-4
    random_state: RandomState = None

    if TYPE_CHECKING:  # set by fit
        reg_used_: float = dataclasses.field(init=False)
        global_mean_: float = dataclasses.field(init=False)
        user_factors_: np.ndarray = dataclasses.field(init=False)
        item_factors_: np.ndarray = dataclasses.field(init=False)
        user_bias_: np.ndarray = dataclasses.field(init=False)
        item_bias_: np.ndarray = dataclasses.field(init=False)
        best_epoch_: int = dataclasses.field(init=False)
        epochs_: int = dataclasses.field(init=False)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Once the constructor is made (:class:`~.base.Recommender`): place the subclass's
        own parameters and complete its docstring."""
        super().__init_subclass__(**kwargs)
        cls._place_params()
        cls._complete_doc()

    @classmethod
    def _place_params(cls) -> None:
        """Move each parameter of ``_PLACED_AFTER`` behind the one it names, in the
        constructor's signature."""
        if not cls._PLACED_AFTER:
            return
        sig = inspect.signature(cls.__init__)
        params = list(sig.parameters.values())
        for name, anchor in cls._PLACED_AFTER.items():
            moved = params.pop([p.name for p in params].index(name))
            params.insert([p.name for p in params].index(anchor) + 1, moved)
        cls.__init__.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]

    @classmethod
    def _complete_doc(cls) -> None:
        """Complete a subclass's numpydoc docstring from its parent's (pandas-style), so
        that shared text is written once: the parent's entry of each parameter it does not
        document, in constructor order and with the subclass's default, then the parent's
        attributes it does not list."""
        own = inspect.cleandoc(vars(cls).get("__doc__") or "")
        parent = cls.__mro__[1]
        if "\nParameters\n" not in own or not issubclass(parent, BiasedSGDModel):
            return  # no numpydoc of its own (a dataclass's generated one)
        head, sections = _sections(own)
        _, given = _sections(inspect.cleandoc(parent.__doc__ or ""))
        mine = _entries(sections.get("Parameters", ""))
        theirs = _entries(given.get("Parameters", ""))
        defaults, before = cls.param_defaults(), parent.param_defaults()
        params: list[str] = []
        for name in cls._param_names():
            entry = next((e for e in mine if name in _names(e)), None)
            if entry is None:
                entry = next((e for e in theirs if name in _names(e)), None)
                if entry and _names(entry) == [name] and defaults[name] != before[name]:
                    shown = f", default {_shown(defaults[name])}"
                    entry = re.sub(r", default [^\n]*", shown, entry, count=1)
            if entry is not None and entry not in params:
                params.append(entry)
        sections["Parameters"] = "\n".join(params) + "\n\n"
        attrs = _entries(sections.get("Attributes", ""))
        listed = {n for e in attrs for n in _names(e)}
        attrs += [e for e in _entries(given.get("Attributes", "")) if listed.isdisjoint(_names(e))]
        sections["Attributes"] = "\n".join(attrs) + "\n\n"
        body = "".join(f"{title}\n{'-' * len(title)}\n{text}" for title, text in sections.items())
        cls.__doc__ = (head + body).rstrip() + "\n"

    # --- hooks ---------------------------------------------------------------------------
    def _is_biased(self) -> bool:
        """Whether ``mu``, ``b_u`` and ``b_i`` are learnt (SVD's ``biased``)."""
        return True

    def _init_extra(self, gen: np.random.Generator, n_items: int) -> tuple[np.ndarray, ...]:
        """Parameters learnt beside ``[p_u | b_u]`` and ``[q_i | b_i]`` (SVD++: ``y_j``),
        drawn after the factors."""
        return ()

    def _keep_extra(self, extra: tuple[np.ndarray, ...]) -> None:
        """Store the trained extra parameters as fitted attributes."""

    def _layout(
        self, ratings: RatingArrays, shape: tuple[int, int], params: tuple[np.ndarray, ...]
    ) -> EpochLayout:
        """``ratings`` laid out for the epoch kernels, which update ``params`` in place."""
        raise NotImplementedError

    def _packed_extra(self) -> tuple[np.ndarray, ...]:
        """What ``predict_pairs`` takes after ``[p_u | b_u]`` and ``[q_i | b_i]``."""
        return ()

    def _warm_up_queries(self, data: Interactions) -> None:
        """Queries beyond ``predict`` whose kernels :meth:`warm_up` compiles."""

    @classmethod
    def warm_up(cls, params: Mapping[str, Any] | None = None) -> None:
        """Compile the serial and Hogwild epochs and the predictions on tiny data."""
        from ..data.planted import make_ratings

        data = make_ratings(n_users=8, n_items=6, density=0.8, random_state=0)
        for parallel in (False, True):
            # a hold-out, validation and the refit: every call site (all read-only rows)
            model = cls(factors=2, epochs=2, parallel=parallel, valid_fraction=0.25)
            model.fit(data).predict([0], [0])
        model._warm_up_queries(data)

    # --- shared ----------------------------------------------------------------------------
    def _rates(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Learning rates and regularisation of ``_PARAMS``, overrides applied."""
        lr, reg = float(self.learning_rate), float(self.reg_used_)
        rates = tuple(_override(getattr(self, f"lr_{p}"), lr) for p in self._PARAMS)
        regs = tuple(_override(getattr(self, f"reg_{p}"), reg) for p in self._PARAMS)
        return rates, regs

    def _fit(
        self,
        train: Interactions,
        valid: Interactions | None,
        gen: np.random.Generator,
        *,
        show_progress: bool,
        callback: Callback | None,
    ) -> None:
        name = type(self).__name__
        # read-only throughout (the hold-out's copies too): the kernels compile one signature
        users, items, ratings = (readonly(a) for a in rating_arrays(train, name))
        self.reg_used_ = auto_reg(len(users), 0.1) if self.reg == "auto" else float(self.reg)
        shape = (train.n_users, train.n_items)
        scale = (float(self.rating_scale_[0]), float(self.rating_scale_[1]))
        given = None
        if valid is not None and len(valid):
            given = RatingValidation(rating_arrays(valid, f"{name} (validation data)"), scale)

        def train_on(
            rows: np.ndarray | None, hold: np.ndarray | None, epochs: int, is_refit: bool
        ) -> tuple[tuple[Any, ...], TrainLog]:
            if rows is None:
                arrays = (users, items, ratings)
                check = given if not is_refit else None
            else:
                assert hold is not None
                arrays = (readonly(users[rows]), readonly(items[rows]), readonly(ratings[rows]))
                check = RatingValidation((users[hold], items[hold], ratings[hold]), scale)
            return self._train(
                arrays, shape, gen, epochs, check,
                show_progress=show_progress and not is_refit,
                callback=None if is_refit else callback,
            )  # fmt: skip

        first, log, again = holdout_then_refit(
            train_on,
            n_rows=len(users),
            epochs=int(self.epochs),
            valid_given=valid is not None,
            valid_fraction=float(self.valid_fraction),
            refit=True,
            gen=gen,
        )
        mu, up, ip, *extra = again if again is not None else first
        k = int(self.factors)
        self.global_mean_ = mu
        self.user_factors_ = np.ascontiguousarray(up[:, :k])
        self.item_factors_ = np.ascontiguousarray(ip[:, :k])
        self._keep_extra(tuple(extra))
        self.user_bias_ = np.ascontiguousarray(up[:, k])
        self.item_bias_ = np.ascontiguousarray(ip[:, k])
        self.history_ = {
            "train_loss": log.history.get("train_loss", []),
            "valid_rmse": log.history.get("valid_rmse", []),
        }
        self.best_epoch_ = log.best_epoch if log.best_epoch > 0 else log.epochs_run
        self.epochs_ = self.best_epoch_  # its earlier name

    def _train(
        self,
        ratings: tuple[np.ndarray, np.ndarray, np.ndarray],
        shape: tuple[int, int],
        gen: np.random.Generator,
        epochs: int,
        check: RatingValidation | None,
        *,
        show_progress: bool,
        callback: Callback | None,
    ) -> tuple[tuple[Any, ...], TrainLog]:
        """Initialise and train on one set of ratings, early-stopping on ``check`` when
        given; return ``((mu, up, ip, *extra), log)``."""
        k = int(self.factors)
        n_users, n_items = shape
        values = ratings[2]
        mu = float(values.astype(np.float64).mean()) if self._is_biased() and len(values) else 0.0
        # Surprise's initialisation: factors ~ normal(init_mean, init_std), biases 0
        mean, std = float(self.init_mean), float(self.init_std)
        up = np.zeros((n_users, k + 1), dtype=np.float32)
        ip = np.zeros((n_items, k + 1), dtype=np.float32)
        up[:, :k] = gen.normal(mean, std, (n_users, k))
        ip[:, :k] = gen.normal(mean, std, (n_items, k))
        params = (up, ip, *self._init_extra(gen, n_items))
        plan = self._epoch_plan(ratings, shape, mu, params)
        decay = float(self.learning_rate_decay)
        shuffle = self.order == "shuffle"

        def step(epoch: int) -> float:
            if shuffle:
                shuffled_order(plan.order, seed_from(gen))
            return plan.run(decay ** (epoch - 1))

        validate = None if check is None else (lambda: check(plan.predict))
        trainer: EpochTrainer[tuple[np.ndarray, ...]] = EpochTrainer(
            type(self).__name__,
            epochs=epochs,
            patience=int(self.patience),
            tol=float(self.tol),
            mode="min",
            metric="valid_rmse",
            loss_ceiling=loss_ceiling(values),
            hint="lower learning_rate or raise reg",
            show_progress=show_progress,
            callback=callback,
        )
        log, best = trainer.run(step, validate, lambda: tuple(p.copy() for p in params))
        return (mu, *(params if best is None else best)), log

    def _epoch_plan(
        self,
        ratings: RatingArrays,
        shape: tuple[int, int],
        mu: float,
        params: tuple[np.ndarray, ...],
    ) -> EpochPlan:
        """The epochs on ``ratings = (users, items, values)`` updating ``params = (up, ip,
        *extra)`` in place, ``up`` / ``ip`` being ``[p_u | b_u]`` / ``[q_i | b_i]``: serial,
        or Hogwild over blocks of the order (``parallel``)."""
        layout = self._layout(ratings, shape, params)
        rates, regs = (np.array(v, dtype=np.float64) for v in self._rates())
        kernels = self._kernels
        parallel = bool(self.parallel)

        def run(scale: float) -> float:
            args = (*layout.lead, mu, rates * scale, regs, params)
            if parallel:
                return float(kernels.hogwild(*args, kernels.hogwild_block))
            return float(kernels.epoch(*args))

        def predict(u: np.ndarray, i: np.ndarray, out: np.ndarray) -> None:
            kernels.predict_pairs(readonly(u), readonly(i), mu, *layout.scoring(), out)

        return EpochPlan(layout.order, run, predict)

    # --- scoring -------------------------------------------------------------------------
    def _packed(self) -> tuple[np.ndarray, ...]:
        """``[p_u | b_u]``, ``[q_i | b_i]`` (float32) and :meth:`_packed_extra`."""

        def pack() -> tuple[np.ndarray, ...]:
            up = np.column_stack([self.user_factors_, self.user_bias_])
            ip = np.column_stack([self.item_factors_, self.item_bias_])
            up, ip = np.ascontiguousarray(up, np.float32), np.ascontiguousarray(ip, np.float32)
            return (up, ip, *self._packed_extra())

        return self._cached("packed", pack)

    def _predict(self, users: IndexArray, items: IndexArray) -> ScoreArray:
        out = np.empty(len(users), dtype=np.float32)
        self._kernels.predict_pairs(
            readonly(np.ascontiguousarray(users, np.int32)),
            readonly(np.ascontiguousarray(items, np.int32)),
            float(self.global_mean_),
            *self._packed(),
            out,
        )
        return out

    def _after_load(self) -> None:
        super()._after_load()
        if not hasattr(self, "best_epoch_") and hasattr(self, "epochs_"):  # saved before it
            self.best_epoch_ = self.epochs_

    def _ridge_fold_in(
        self, history: sp.csr_matrix, offsets: np.ndarray | None = None
    ) -> np.ndarray:
        """:func:`ridge_fold_in` of the history rows with this model's items and regularisation."""
        _, regs = self._rates()
        return ridge_fold_in(
            history, self.item_factors_, self.item_bias_.astype(np.float64),
            float(self.global_mean_), regs[2], regs[0], self._is_biased(), offsets=offsets,
        )  # fmt: skip

    def _item_vectors(self) -> np.ndarray:
        """``[q_i, 1, b_i]``: against ``[p_u, mu + b_u, 1]`` the predicted rating."""
        out = np.empty((self.item_factors_.shape[0], self.item_factors_.shape[1] + 2), np.float32)
        out[:, :-2] = self.item_factors_
        out[:, -2] = 1.0
        out[:, -1] = self.item_bias_
        return out

    def _similarity_vectors(self) -> np.ndarray:
        return self.item_factors_
