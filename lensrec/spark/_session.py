"""The one place lensrec.spark imports pyspark and gets a SparkSession."""

from __future__ import annotations

import os
import sys
from typing import Any

from ..errors import MissingExtraError

__all__ = ["require_pyspark", "get_session"]


def require_pyspark() -> Any:
    """The ``pyspark`` module, or :class:`MissingExtraError` naming the ``spark`` extra."""
    try:
        import pyspark
        import pyspark.sql  # noqa: F401
    except ImportError:
        raise MissingExtraError("lensrec.spark", "spark", "pyspark") from None
    return pyspark


def get_session(
    master: str | None = None, *, app_name: str = "lensrec", conf: dict[str, str] | None = None
) -> Any:
    """The active SparkSession, or a new one.

    Under ``spark-submit`` (or when a session exists) that session is returned as it is and
    ``master`` is ignored. Otherwise ``master`` (default ``$LENSREC_SPARK_MASTER``, else
    ``local[*]``) starts one with small-job settings (few shuffle partitions, no UI) that
    ``conf`` overrides (``{"spark.driver.memory": "8g"}``).
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # Python workers run this interpreter (where lensrec and pyarrow are), unless told otherwise
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    submitted = "SPARK_ENV_LOADED" in os.environ or os.environ.get("SPARK_SUBMIT") == "1"
    if not submitted:
        builder = builder.master(master or os.environ.get("LENSREC_SPARK_MASTER", "local[*]"))
    settings = {
        "spark.sql.shuffle.partitions": "8",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.driver.extraJavaOptions": "-Dlog4j2.level=ERROR",
    }
    settings.update({k: str(v) for k, v in (conf or {}).items()})
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
