"""The same jobs on a Spark cluster (the ``spark`` extra: pyspark, pyarrow).

Reading interactions (Parquet or CSV), the filters and split strategies
(:mod:`lensrec.spark.data`), ALS (lensrec's own, its kernels run by the executors, or
Spark ML's under lensrec's parameter names) with top-K for every user scored on the
executors by lensrec's exact index (:mod:`lensrec.spark.als`),
the metrics of :mod:`lensrec.evaluate` computed in Spark (:mod:`lensrec.spark.metrics`),
export to Parquet and to Redis from the executors (:mod:`lensrec.spark.redis_export`) and ``lensrec spark evaluate`` (:mod:`lensrec.spark.run`). Nothing here is
imported by ``import lensrec``; pyspark is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "get_session",
    "read_interactions",
    "min_rating",
    "kcore",
    "make_split",
    "SparkSplit",
    "SparkALS",
    "LensrecALSModel",
    "recommend_all",
    "ranking_metrics",
    "rating_metrics",
    "coverage",
    "spark_evaluate",
    "SparkEvalResult",
    "write_topk_parquet",
    "export_redis_spark",
]

_WHERE = {
    "get_session": "._session",
    "read_interactions": ".data",
    "min_rating": ".data",
    "kcore": ".data",
    "make_split": ".data",
    "SparkSplit": ".data",
    "SparkALS": ".als",
    "LensrecALSModel": ".als",
    "recommend_all": ".als",
    "ranking_metrics": ".metrics",
    "rating_metrics": ".metrics",
    "coverage": ".metrics",
    "spark_evaluate": ".run",
    "SparkEvalResult": ".run",
    "write_topk_parquet": ".run",
    "export_redis_spark": ".redis_export",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
