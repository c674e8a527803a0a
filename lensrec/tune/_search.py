"""Grid search and optuna TPE over a model's declared space, on validation carved from train.

The test part of the split is never seen while searching: every trial fits on the training
part less a validation part carved by the one validation path
(:func:`lensrec.models._validation.validation_rule`, the split's own rule), and is scored on
that validation part (RMSE for rating protocols, NDCG@10 for ranking ones). Epoch-trained
models report their per-epoch validation metric through the trainer's callback, which lets
the pruner stop bad trials early. The best parameters are then handed to
:func:`lensrec.experiments.run_spec`, which refits on all of train, evaluates once on test
and writes a run record whose ``extra["tuning"]`` says how the parameters were chosen.

Studies live in optuna storage (SQLite by default, any SQLAlchemy URL such as
``postgresql://...``): a study resumes after an interruption, and several processes (or
machines) can add trials to one study. ``trials`` is the number of finished trials (complete
or pruned) the study should have; a rerun adds only what is missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._io import jsonable
from ..errors import ConfigError, LensrecError, MissingExtraError
from ._space import grid_of, grid_size, model_space, space_text, suggest

__all__ = ["tune", "TuneOutcome", "TrialInfo", "default_storage", "redact_url", "Validator"]

_log = logging.getLogger(__name__)


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise MissingExtraError("lensrec tune", "tune", "optuna") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def default_storage(runs_dir: str | Path) -> str:
    """``sqlite:///<runs_dir>/tune.sqlite3`` (absolute), the directory created."""
    path = Path(runs_dir).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path / 'tune.sqlite3'}"


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for records and messages)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


@dataclass(frozen=True)
class TrialInfo:
    """One finished trial, as the progress line and the run record show it."""

    number: int
    state: Literal["complete", "pruned", "fail"]
    value: float | None
    params: dict[str, Any]
    seconds: float
    epochs: int | None = None
    best: float | None = None
    note: str = ""
    metric: str = "value"

    def line(self, total: int | None = None) -> str:
        """``trial 7/30  valid_rmse 0.93120  best 0.92900  (3.2s)  factors=64, ...``"""
        of = f"/{total}" if total else ""
        if self.state == "complete" and self.value is not None:
            what = f"{self.metric} {self.value:.5f}"
        elif self.state == "pruned":
            what = f"pruned at epoch {self.epochs}" if self.epochs else "pruned"
        else:
            what = f"failed ({self.note})" if self.note else "failed"
        best = f"  best {self.best:.5f}" if self.best is not None else ""
        params = ", ".join(f"{k}={_short(v)}" for k, v in self.params.items())
        return f"trial {self.number + 1}{of}  {what}{best}  ({self.seconds:.1f}s)  {params}"


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@dataclass
class TuneOutcome:
    """What :func:`tune` did: the study, its trials, the best parameters and the final run."""

    study_name: str
    storage: str
    method: str
    metric: str
    direction: str
    validation: str
    space: dict[str, tuple[Any, ...]]
    fixed: dict[str, Any]
    best_params: dict[str, Any]
    best_value: float
    default_value: float | None
    trials: list[TrialInfo]
    added: int
    importances: dict[str, float] = field(default_factory=dict)
    final: Any = None

    @property
    def counts(self) -> dict[str, int]:
        out = {"complete": 0, "pruned": 0, "fail": 0}
        for t in self.trials:
            out[t.state] += 1
        return out

    def record_info(self) -> dict[str, Any]:
        """What the run record keeps under ``extra["tuning"]``."""
        return jsonable(
            {
                "method": self.method,
                "study": self.study_name,
                "storage": self.storage,
                "metric": self.metric,
                "direction": self.direction,
                "on": f"validation carved from the training part: {self.validation}",
                "space": {k: list(v) for k, v in self.space.items()},
                "fixed": self.fixed,
                "trials": self.counts,
                "best_value": self.best_value,
                "default_value": self.default_value,
                "best_params": self.best_params,
                "importances": self.importances,
                "history": [
                    {
                        "n": t.number,
                        "state": t.state,
                        "value": t.value,
                        "seconds": t.seconds,
                        "params": t.params,
                    }  # fmt: skip
                    for t in self.trials
                ],
            }
        )


class Validator:
    """The validation score of a fitted model, through the public contract only.

    ``"rmse"``: RMSE of ``predict`` on the validation ratings (predictions clipped as
    ``predict`` clips). ``"ndcg"``: mean NDCG@k of each validation user's top-k, training
    items excluded, over users with a validation item not in their training rows (the
    number :class:`~lensrec.models._validation.RankingValidation` gives).
    """

    def __init__(self, train: Any, valid: Any, metric: Literal["rmse", "ndcg"], k: int = 10):
        from ..models._validation import RankingValidation

        self.metric = metric
        self.k = int(k)
        if metric == "rmse":
            if valid.ratings is None:
                raise ConfigError("tuning on RMSE needs ratings in the data")
            self.users = np.asarray(valid.users, np.int32)
            self.items = np.asarray(valid.items, np.int32)
            self.truth = np.asarray(valid.ratings, np.float64)
            self.name = "valid_rmse"
        else:
            rv = RankingValidation(train.csr(), valid, self.k)
            self.users = rv.users
            self.relevant = rv.relevant
            self.name = f"valid_ndcg@{self.k}"
        if self.users.size == 0:
            raise ConfigError("the validation part carved from train is empty; nothing to tune on")

    @property
    def direction(self) -> str:
        return "minimize" if self.metric == "rmse" else "maximize"

    def __call__(self, model: Any) -> float:
        from ..evaluate.metrics import ndcg_at_k, rmse

        if self.metric == "rmse":
            pred = np.asarray(model.predict(self.users, self.items, missing="nan"), np.float64)
            ok = np.isfinite(pred)
            return float(rmse(self.truth[ok], pred[ok])) if ok.any() else math.inf
        ids, _ = model.recommend(self.users, self.k, exclude="seen")
        return float(np.mean(ndcg_at_k(np.asarray(ids), self.relevant, self.k)))


def _study_name(
    spec: Any, method: str, space: Mapping[str, Any], fixed: Mapping[str, Any], carves: int = 1
) -> str:
    proto = spec.protocol()
    parts: list[Any] = [space, fixed, proto] + ([{"carves": carves}] if carves > 1 else [])
    blob = json.dumps(jsonable(parts), sort_keys=True)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:8]
    raw = f"{spec.model}-{spec.dataset}-{spec.split}-{proto['filters']}-seed{spec.seed}-{method}"
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", raw) + f"-{digest}"


def _postgres_driver_url(url: str) -> str:
    """``postgresql://`` / ``postgres://`` with the installed driver made explicit: psycopg2
    when present (SQLAlchemy's default), else psycopg 3 (the ``postgres`` extra)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("postgresql", "postgres"):
        return url  # sqlite, or a driver already named (postgresql+psycopg://...)
    import importlib.util

    if importlib.util.find_spec("psycopg2") is not None:
        return f"postgresql://{rest}"
    if importlib.util.find_spec("psycopg") is not None:
        return f"postgresql+psycopg://{rest}"
    raise MissingExtraError(f"--storage {redact_url(url)}", "postgres", "psycopg")


def _open_storage(optuna: Any, url: str) -> Any:
    """optuna's RDBStorage on ``url`` (SQLite file, PostgreSQL server, any SQLAlchemy URL).

    A storage that cannot be opened (bad URL, missing driver, server unreachable or refusing
    the login) is one :class:`ConfigError` naming the URL, password hidden.
    """
    kwargs: dict[str, Any] = {}
    target = _postgres_driver_url(url)
    if target.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 60}
    elif target.startswith("postgresql"):
        # an unreachable host fails in 10 s instead of the OS's minutes
        kwargs["connect_args"] = {"connect_timeout": 10}
        kwargs["pool_pre_ping"] = True
    import warnings

    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    error: Exception | None = None
    # processes that open a new database at the same moment race to create its tables:
    # the loser sees "table already exists" (SQLite: OperationalError; PostgreSQL: a
    # duplicate-key IntegrityError or a ProgrammingError) once; the tables are there when it
    # tries again. A refused connection or login is not retried.
    for attempt in range(4):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                # a trial whose process died (no heartbeat for 20 s) is failed and run again
                return RDBStorage(
                    target,
                    engine_kwargs=kwargs,
                    heartbeat_interval=5,
                    grace_period=20,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
                )
        except Exception as exc:  # SQLAlchemy / driver errors of every kind
            error = exc
            if not _creation_race(exc, sqlite=target.startswith("sqlite")):
                break
            time.sleep(0.3 * (attempt + 1))
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    raise ConfigError(
        f"--storage {redact_url(url)}: cannot open the study storage "
        f"({type(error).__name__}: {redact_url(first)[:200]})"
    ) from None


def _creation_race(exc: Exception, *, sqlite: bool) -> bool:
    """Whether ``exc`` is the loser's side of two processes creating the tables at once."""
    kind = type(exc).__name__
    if sqlite:
        return kind in ("OperationalError", "IntegrityError")
    text = str(exc).lower()
    return kind in ("IntegrityError", "ProgrammingError") and (
        "already exists" in text or "duplicate" in text
    )


def _defaults_in_space(cls: Any, space: Mapping[str, tuple[Any, ...]]) -> dict[str, Any]:
    """The model's defaults for the parameters whose default lies inside the space."""
    defaults = cls.param_defaults()
    out: dict[str, Any] = {}
    for name, dist in space.items():
        v = defaults.get(name)
        if dist[0] == "choice":
            if v in dist[1]:
                out[name] = v
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and dist[1] <= v <= dist[2]:
            out[name] = int(v) if dist[0] == "int" else float(v)
    return out


def tune(
    spec: Any,
    *,
    method: Literal["tpe", "grid"] = "tpe",
    trials: int | None = None,
    timeout: float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    only: list[str] | None = None,
    values: Mapping[str, list[Any]] | None = None,
    grid_points: int = 3,
    metric: Literal["auto", "rmse", "ndcg"] = "auto",
    prune: bool = True,
    data: Any = None,
    runs_dir: str | Path | None = "runs",
    refit: bool = True,
    on_trial: Callable[[TrialInfo, int | None], None] | None = None,
    on_start: Callable[[str], None] | None = None,
    carves: int = 1,
) -> TuneOutcome:
    """Search ``spec.model``'s declared space on validation carved from the training part.

    Parameters
    ----------
    spec : RunSpec
        Dataset, filters, split, model, seed; ``spec.params`` are fixed (not searched).
    method : {"tpe", "grid"}
        optuna's TPE sampler, or every point of a grid (``grid_points`` values per numeric
        range, every value of a choice; ``values`` gives explicit lists).
    trials : int or None
        Finished trials (complete or pruned) the study should hold; a rerun adds what is
        missing. Default: 30 for TPE, the grid's size for grid.
    timeout : float or None
        Stop starting trials after this many seconds.
    storage : str or None
        An SQLAlchemy URL (``sqlite:///path.db``, ``postgresql://...``); default
        ``sqlite:///<runs_dir>/tune.sqlite3``, or in memory when ``runs_dir`` is None.
    study_name : str or None
        Default: model, dataset, split, filters, seed, method and a hash of the space.
    only, values
        Search only these parameters; explicit value lists for some parameters.
    metric : {"auto", "rmse", "ndcg"}
        ``auto``: RMSE when the model predicts ratings and the data has ratings (and no
        ``min_rating`` filter), else NDCG@10.
    prune : bool
        Stop trials whose per-epoch validation metric is worse than the median of earlier
        trials at the same epoch (epoch-trained models that early-stop on validation).
    data : Interactions or None
        The filtered dataset, when the caller has it loaded.
    runs_dir : path or None
        Where the final run record goes (None: no record).
    refit : bool
        Refit the best parameters on all of train and evaluate once on test (``final``).
    on_trial, on_start : callables
        Progress: ``on_trial(info, total)`` after each trial of this process, ``on_start(text)``
        once the study is open.
    carves : int
        Validation carves a trial is scored on (each carved by the same rule with another
        seed: ``seed``, ``seed + 1``, ...); the trial's value is their mean. One carve of a
        small data set is noisy enough for the search to fit it (on ml-100k the best of 30
        trials on one carve lost to the defaults on test); more carves cost that many fits a
        trial. Pruning watches the first carve's epochs. Default 1.

    Raises
    ------
    ConfigError
        Unknown model or parameter, an empty space, a storage that cannot be opened, or no
        trial that completed.
    MissingExtraError
        optuna is not installed (``lensrec[tune]``).
    """
    from .. import split as splits
    from ..experiments.run import load_spec_data, run_spec, warm_up_quietly
    from ..models import MODELS
    from ..models._validation import validation_rule

    if method not in ("tpe", "grid"):
        raise ConfigError(f"--method must be tpe or grid, got {method!r}")
    if trials is not None and trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {trials}")
    if timeout is not None and timeout <= 0:
        raise ConfigError(f"--timeout must be > 0 seconds, got {timeout}")
    if carves < 1:
        raise ConfigError(f"--carves must be >= 1, got {carves}")
    cls = MODELS[spec.model]
    fixed = dict(spec.params)
    cls().set_params(**fixed).check_params()
    space = model_space(cls, fixed=fixed, only=only, values=values)
    grid = grid_of(space, grid_points) if method == "grid" else None
    if trials is None:
        trials = grid_size(grid) if grid is not None else 30
    optuna = _optuna()

    if data is None:
        data = load_spec_data(spec)
    if splits.is_fold_family(spec.split):
        first = splits.make_folds(data, spec.split, random_state=spec.seed)[0]
    else:
        first = splits.make_split(data, spec.split, random_state=spec.seed)
    train = first.train
    rule = validation_rule(spec.split, train.timestamps is not None)
    carvings = [
        splits.carve_validation(
            train,
            rule.strategy,
            rule.fraction,
            random_state=None if spec.seed is None else int(spec.seed) + i,
            by=rule.by,
        )  # fmt: skip
        for i in range(carves)
    ]
    carved = carvings[0]
    for one in carvings:
        if one.valid is None or len(one.valid) == 0:
            raise ConfigError(
                f"no validation rows could be carved from {spec.split!r} ({rule.describe()})"
            )
    if metric == "auto":
        rating = (
            cls.capabilities.predicts_ratings
            and train.ratings is not None
            and spec.min_rating is None
        )
        metric = "rmse" if rating else "ndcg"
    validators = [Validator(c.train, c.valid, metric) for c in carvings]
    validator = validators[0]
    warm_up_quietly(cls)

    if storage is None:
        storage = default_storage(runs_dir) if runs_dir is not None else None
    shown_storage = redact_url(storage) if storage else "memory"
    backend = _open_storage(optuna, storage) if storage else optuna.storages.InMemoryStorage()
    name = study_name or _study_name(spec, method, space, fixed, carves)
    seed = spec.seed
    try:
        existing = len(optuna.load_study(study_name=name, storage=backend).trials)
    except KeyError:
        existing = 0
    except Exception as exc:
        raise ConfigError(
            f"--storage {shown_storage}: cannot read study {name!r} ({exc})"
        ) from None
    sampler_seed = None if seed is None else int(seed) + existing
    if grid is not None:
        sampler = optuna.samplers.GridSampler(grid, seed=sampler_seed)
    else:
        sampler = optuna.samplers.TPESampler(
            seed=sampler_seed, n_startup_trials=max(3, min(10, trials // 3))
        )
    pruner = make_pruner(optuna) if prune else optuna.pruners.NopPruner()
    try:
        study = optuna.create_study(
            study_name=name,
            storage=backend,
            sampler=sampler,
            pruner=pruner,
            direction=validator.direction,
            load_if_exists=True,
        )
    except ValueError as exc:
        raise ConfigError(f"study {name!r} in {shown_storage}: {exc}") from None
    if study.direction.name.lower() != validator.direction:
        raise ConfigError(
            f"study {name!r} in {shown_storage} was made to {study.direction.name.lower()}, "
            f"but {validator.name} is to {validator.direction}; use another --study"
        )
    finished_states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len(study.get_trials(deepcopy=False, states=finished_states))
    if grid is None and not study.trials:
        defaults = _defaults_in_space(cls, space)
        if defaults:
            study.enqueue_trial(defaults, user_attrs={"defaults": True})
    if on_start is not None:
        on_start(
            f"study {name} in {shown_storage}: {done} finished trial(s) so far, target {trials}; "
            f"{method} over {space_text(space)}; scored by {validator.name} on "
            f"{len(carved.valid or []):,} validation rows ({rule.describe()})"
            + (f", the mean over {carves} carves" if carves > 1 else "")
        )

    def objective(trial: Any) -> float:
        params = suggest(trial, space)
        model = cls().set_params(**{**fixed, **params})
        if "random_state" in cls._param_names() and "random_state" not in fixed:
            model.set_params(random_state=seed)
        pruned_at: list[int] = []

        def callback(epoch: int, seconds: float, metrics: dict[str, float]) -> bool:
            value = metrics.get(validator.name)
            if value is None or not prune:
                return False
            trial.report(float(value), epoch)
            if trial.should_prune():
                pruned_at.append(epoch)
                return True
            return False

        t0 = time.perf_counter()
        try:
            if cls.capabilities.uses_validation:
                model.fit(carved.train, carved.valid, callback=callback)
            else:
                model.fit(carved.train, callback=callback)
        except (LensrecError, FloatingPointError) as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:300])
            raise
        trial.set_user_attr("seconds", time.perf_counter() - t0)
        best_epoch = getattr(model, "best_epoch_", None)
        if best_epoch:
            trial.set_user_attr("epochs", int(best_epoch))
        if pruned_at:
            trial.set_user_attr("epochs", pruned_at[0])
            raise optuna.TrialPruned()
        values = [validator(model)]
        for more, check in zip(carvings[1:], validators[1:], strict=True):
            again = cls().set_params(**model.get_params())
            if cls.capabilities.uses_validation:
                again.fit(more.train, more.valid)
            else:
                again.fit(more.train)
            values.append(check(again))
        if len(values) > 1:
            trial.set_user_attr("carves", [float(v) for v in values])
        value = float(np.mean(values))
        if not math.isfinite(value):
            raise ConfigError(f"{validator.name} is not finite ({value})")
        return value

    mine: list[TrialInfo] = []

    def report(study: Any, frozen: Any) -> None:
        info = _trial_info(optuna, study, frozen, validator.name)
        mine.append(info)
        if on_trial is not None:
            on_trial(info, trials)

    remaining = max(0, trials - done)
    if remaining:
        study.optimize(
            objective,
            n_trials=remaining,
            timeout=timeout,
            catch=(LensrecError, FloatingPointError),
            callbacks=[
                report,
                optuna.study.MaxTrialsCallback(trials, states=finished_states),
            ],
            gc_after_trial=False,
        )
    every = [
        _trial_info(optuna, study, t, validator.name) for t in study.get_trials(deepcopy=False)
    ]
    every = [t for t in every if t.state in ("complete", "pruned", "fail")]
    try:
        best = study.best_trial
    except ValueError:
        errors = [t.note for t in every if t.state == "fail" and t.note]
        raise ConfigError(
            f"no trial of study {name!r} completed"
            + (f"; last error: {errors[-1]}" if errors else "")
        ) from None
    default_value = next(
        (
            float(t.value)
            for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if t.user_attrs.get("defaults") and t.value is not None
        ),
        None,
    )
    outcome = TuneOutcome(
        study_name=name,
        storage=shown_storage,
        method=method,
        metric=validator.name,
        direction=validator.direction,
        validation=rule.describe() + (f", mean over {carves} carves" if carves > 1 else ""),
        space=space,
        fixed=fixed,
        best_params=dict(best.params),
        best_value=float(best.value),
        default_value=default_value,
        trials=every,
        added=len(mine),
        importances=_importances(optuna, study),
    )
    if refit:
        final_spec = replace(spec, params={**fixed, **outcome.best_params})
        outcome.final = run_spec(
            final_spec, data=data, runs_dir=runs_dir, extra={"tuning": outcome.record_info()}
        )
    return outcome


#: epochs a trial may go without improving its validation metric before the median rule
#: may stop it
PRUNE_PATIENCE = 2


def make_pruner(optuna: Any) -> Any:
    """The pruner of ``tune``: the median rule (after 3 complete trials and 3 epochs, a trial
    whose best value so far is worse than the median of earlier trials at the same epoch is
    stopped), consulted only once the trial has gone ``PRUNE_PATIENCE`` epochs without a new
    best.

    The median rule alone compares trials at the same epoch, so it stops settings that
    learn slowly but steadily (a small learning rate, a strong decay) before they overtake:
    tuning BiasedMF on ml-100k ua, it stopped 25 of 30 trials at epoch 3, and the search
    could only pick fast learners. A trial that still improves is never stopped; one that
    stalls (or never moves) is judged by the median rule. (optuna's ``PatientPruner`` counts a
    plateau as no worse, so it would never stop a flat trial.)
    """
    median = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=3)

    class PatientMedianPruner(optuna.pruners.BasePruner):
        def prune(self, study: Any, trial: Any) -> bool:
            values = trial.intermediate_values
            if not values:
                return False
            steps = sorted(values)
            sign = 1.0 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1.0
            best_step, best = steps[0], sign * values[steps[0]]
            for step in steps[1:]:
                if sign * values[step] < best:
                    best_step, best = step, sign * values[step]
            if steps[-1] - best_step < PRUNE_PATIENCE:
                return False
            return bool(median.prune(study, trial))

    return PatientMedianPruner()


def _trial_info(optuna: Any, study: Any, t: Any, metric: str) -> TrialInfo:
    states = optuna.trial.TrialState
    state = {states.COMPLETE: "complete", states.PRUNED: "pruned", states.FAIL: "fail"}.get(
        t.state, "running"
    )
    seconds = t.user_attrs.get("seconds")
    if seconds is None and t.datetime_start is not None and t.datetime_complete is not None:
        seconds = (t.datetime_complete - t.datetime_start).total_seconds()
    best = None
    try:
        best = float(study.best_value)
    except ValueError:
        pass
    note = str(t.user_attrs.get("error", "")) if state == "fail" else ""
    return TrialInfo(
        number=int(t.number),
        state=state,  # type: ignore[arg-type]
        value=None if t.value is None else float(t.value),
        params=dict(t.params),
        seconds=float(seconds or 0.0),
        epochs=t.user_attrs.get("epochs"),
        best=best,
        note=note,
        metric=metric,
    )


def _importances(optuna: Any, study: Any) -> dict[str, float]:
    """Parameter importances (optuna's fANOVA), or {} when they cannot be computed."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 3 or len(study.best_params) < 1:
        return {}
    for evaluator in ("FanovaImportanceEvaluator", "PedAnovaImportanceEvaluator"):
        try:  # fANOVA needs scikit-learn; PED-ANOVA does not
            make = getattr(optuna.importance, evaluator)
            imp = optuna.importance.get_param_importances(study, evaluator=make(seed=0)
                                                          if evaluator.startswith("Fanova")
                                                          else make())  # fmt: skip
        except Exception as exc:  # too few distinct values, a missing optional package, ...
            _log.debug("parameter importances (%s) not computed: %s", evaluator, exc)
            continue
        return {str(k): float(v) for k, v in imp.items()}
    return {}
