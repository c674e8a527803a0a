"""Tuning: grid search and optuna TPE over a model's declared search space.

``tune(spec, ...)`` searches on validation carved from the training part (never the test
part), refits the best parameters on all of train and evaluates them once on test through
:func:`lensrec.experiments.run_spec`. optuna is the ``tune`` extra, imported when a search
starts.
"""

from ._search import TrialInfo, TuneOutcome, Validator, default_storage, redact_url, tune
from ._space import grid_of, grid_values, model_space, space_text

__all__ = [
    "tune",
    "TuneOutcome",
    "TrialInfo",
    "Validator",
    "default_storage",
    "redact_url",
    "model_space",
    "grid_of",
    "grid_values",
    "space_text",
]
