"""Evaluation: vectorised metrics, the evaluation protocol, bootstrap intervals.

>>> from lensrec.evaluate import evaluate, ndcg_at_k, parse_metric
"""

import sys as _sys
import types as _types
from typing import Any as _Any

from .metrics import (
    METRICS,
    MetricInfo,
    MetricSpec,
    average_precision_at_k,
    average_precision_at_k_div_k,
    coverage_at_k,
    hit_rate_at_k,
    mae,
    ndcg_at_k,
    parse_metric,
    per_user_errors,
    per_user_rmse,
    precision_at_k,
    r2,
    ranking_metrics,
    recall_at_k,
    reciprocal_rank_at_k,
    rmse,
)
from .protocol import DEFAULT_RANKING_METRICS, DEFAULT_RATING_METRICS, EvalResult, evaluate
from .stats import PairedTest, bootstrap_ci, bootstrap_cis, paired_test

__all__ = [
    "evaluate",
    "EvalResult",
    "DEFAULT_RANKING_METRICS",
    "DEFAULT_RATING_METRICS",
    "precision_at_k",
    "recall_at_k",
    "hit_rate_at_k",
    "ndcg_at_k",
    "average_precision_at_k",
    "average_precision_at_k_div_k",
    "reciprocal_rank_at_k",
    "coverage_at_k",
    "ranking_metrics",
    "rmse",
    "mae",
    "r2",
    "per_user_errors",
    "per_user_rmse",
    "METRICS",
    "MetricInfo",
    "MetricSpec",
    "parse_metric",
    "bootstrap_ci",
    "bootstrap_cis",
    "paired_test",
    "PairedTest",
]


class _CallableModule(_types.ModuleType):
    """``lensrec.evaluate`` is both this package and the :func:`evaluate` function.

    Importing a submodule (``lensrec.evaluate.metrics``) binds the package to the name
    ``lensrec.evaluate``; making the package callable keeps ``lensrec.evaluate(model, ...)``
    working whatever was imported first.
    """

    def __call__(self, *args: _Any, **kwargs: _Any) -> EvalResult:
        return evaluate(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
