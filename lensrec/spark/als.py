"""Spark ML's ALS under lensrec's parameter names, and top-K for every user with the items
each user has seen excluded, scored on the executors by lensrec's own exact index.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from ._session import require_pyspark

__all__ = ["SparkALS", "recommend_all", "PARAMS"]

_log = logging.getLogger(__name__)

#: lensrec name -> (Spark ML ALS name, default). ``reg`` is Spark's regParam, which Spark
#: scales by each row's number of interactions (ALS-WR).
PARAMS: dict[str, tuple[str | None, Any]] = {
    "factors": ("rank", 64),
    "epochs": ("maxIter", 15),
    "reg": ("regParam", 0.01),
    "alpha": ("alpha", 1.0),
    "confidence": (None, "linear"),
    "nonnegative": ("nonnegative", False),
    "block_size": ("blockSize", 4096),
    "random_state": ("seed", 42),
}


@dataclass
class SparkALS:
    """ALS on Spark with lensrec's names (``factors``, ``epochs``, ``reg``, ``alpha``,
    ``confidence``, ``random_state``).

    ``explicit=False`` (the default, lensrec's ``als``) fits implicit feedback with the
    confidence of :class:`lensrec.models.ALS`: ``c = 1 + alpha * t(r) / mean(t(r))``, ``t``
    the identity (``confidence="linear"``) or ``log(1 + r)`` (``"log"``), ``r`` the rating or
    1 for implicit data; Spark's own ``c = 1 + alpha * r`` is fed ``t(r) / mean(t(r))``, so
    ``alpha`` means what it means in lensrec. ``explicit=True`` fits the ratings (Spark's
    explicit ALS, for RMSE). lensrec's ``unobserved_weight`` and ``reg_frequency_exponent``
    have no Spark counterpart (Spark weighs every unobserved cell 1 and scales ``reg`` by the
    row's count): setting them to anything but 1.0 is refused.
    """

    factors: int = 64
    epochs: int = 15
    reg: float = 0.01
    alpha: float = 1.0
    confidence: str = "linear"
    nonnegative: bool = False
    block_size: int = 4096
    random_state: int = 42
    explicit: bool = False

    @classmethod
    def from_params(cls, params: dict[str, Any], *, explicit: bool = False) -> SparkALS:
        """From lensrec-named parameters (``--set``); unknown names raise ConfigError."""
        params = dict(params)
        for name in ("unobserved_weight", "reg_frequency_exponent"):
            if name in params and float(params.pop(name)) != 1.0:
                raise ConfigError(
                    f"{name} has no Spark counterpart (Spark ALS weighs unobserved cells 1 and "
                    "scales reg by each row's count); leave it at 1.0"
                )
        for name in ("cg_steps", "solver", "patience"):
            params.pop(name, None)  # lensrec solver details: Spark has its own
        unknown = sorted(set(params) - set(PARAMS) - {"explicit"})
        if unknown:
            raise ConfigError(
                f"unknown Spark ALS parameter(s) {', '.join(unknown)}; known: {', '.join(PARAMS)}"
            )
        if params.get("confidence", "linear") not in ("linear", "log"):
            raise ConfigError(f"confidence must be 'linear' or 'log', got {params['confidence']!r}")
        return cls(**{"explicit": explicit, **params})

    def spark_params(self) -> dict[str, Any]:
        """The keyword arguments handed to ``pyspark.ml.recommendation.ALS``."""
        out = {
            spark: getattr(self, name) for name, (spark, _) in PARAMS.items() if spark is not None
        }
        out.update(implicitPrefs=not self.explicit, coldStartStrategy="drop")
        return out

    def _values(self, train: Any) -> Any:
        """The training frame with the ``_value`` column Spark fits."""
        from pyspark.sql import functions as F

        if self.explicit:
            if "rating" not in train.columns:
                raise ConfigError("explicit ALS needs ratings and these interactions have none")
            return train.withColumn("_value", F.col("rating"))
        raw = F.col("rating") if "rating" in train.columns else F.lit(1.0)
        t = F.log1p(raw) if self.confidence == "log" else raw
        framed = train.withColumn("_value", t.cast("double"))
        mean = framed.agg(F.avg("_value")).first()[0] or 1.0
        if framed.filter(F.col("_value") < 0).limit(1).count():
            raise ConfigError(
                "ALS uses interaction values as confidence and they must be >= 0 "
                "(filter positives first, e.g. --min-rating 4)"
            )
        return framed.withColumn("_value", F.col("_value") / F.lit(mean if mean > 0 else 1.0))

    def fit(self, train: Any) -> Any:
        """Fit on a lensrec frame; returns Spark's ``ALSModel``."""
        require_pyspark()
        from pyspark.ml.recommendation import ALS

        als = ALS(userCol="user", itemCol="item", ratingCol="_value", **self.spark_params())
        return als.fit(self._values(train))


def recommend_all(
    model: Any,
    seen: Any,
    k: int = 10,
    *,
    users: Any = None,
    batch_rows: int = 2048,
) -> Any:
    """Top-``k`` items for every user of ``model`` (or of the frame ``users``, a ``user``
    column), excluding the items each user has in ``seen`` (a frame with ``user``, ``item``).

    Item factors are broadcast; each executor scores its users in blocks with
    :class:`lensrec.retrieval.ExactIndex` (blocked top-k, exclusion in the kernel: never a
    dense users x items matrix) through ``mapInArrow``, so lensrec must be importable on the
    executors. Returns a frame ``user``, ``items`` (array<int>, best first),
    ``scores`` (array<float>); a user with fewer than ``k`` unseen items gets a shorter list.
    """
    require_pyspark()
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    spark = model.userFactors.sparkSession
    item_rows = model.itemFactors.collect()
    ids = np.asarray([r["id"] for r in item_rows], dtype=np.int64)
    n_items = int(ids.max()) + 1 if ids.size else 0
    dim = int(model.rank)
    vectors = np.zeros((n_items, dim), dtype=np.float32)
    known = np.zeros(n_items, dtype=bool)
    if ids.size:
        vectors[ids] = np.asarray([r["features"] for r in item_rows], dtype=np.float32)
        known[ids] = True
    bc = spark.sparkContext.broadcast((vectors, known))
    k = int(k)

    uf = model.userFactors.withColumnRenamed("id", "user")
    if users is not None:
        uf = uf.join(users.select("user").distinct(), "user", "left_semi")
    hist = seen.groupBy("user").agg(F.collect_list("item").alias("seen"))
    frame = uf.join(hist, "user", "left").select("user", "features", "seen")
    schema = T.StructType(
        [
            T.StructField("user", T.IntegerType()),
            T.StructField("items", T.ArrayType(T.IntegerType())),
            T.StructField("scores", T.ArrayType(T.FloatType())),
        ]
    )

    def score(batches: Any) -> Any:
        import pyarrow as pa

        from lensrec.spark._topk import BatchScorer

        vectors, known = bc.value
        scorer = BatchScorer(vectors, known, k)
        for batch in batches:
            for start in range(0, batch.num_rows, batch_rows):
                u, items, scores = scorer(batch.slice(start, batch_rows))
                yield pa.RecordBatch.from_arrays(
                    [u, items, scores], names=["user", "items", "scores"]
                )

    return frame.mapInArrow(score, schema)
