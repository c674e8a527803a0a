"""One local[2] SparkSession for the whole test session (starting one costs seconds)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def spark():
    pytest.importorskip("pyspark")
    from lensrec.spark import get_session

    session = get_session(
        "local[2]",
        app_name="lensrec-tests",
        conf={
            "spark.sql.shuffle.partitions": "1",
            "spark.default.parallelism": "2",
            "spark.sql.codegen.wholeStage": "false",
            "spark.sql.adaptive.enabled": "false",
        },
    )
    yield session
    session.stop()
