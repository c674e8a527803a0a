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

__all__ = ["SparkALS", "recommend_all", "mapped_reg_param", "PARAMS"]

_log = logging.getLogger(__name__)

#: lensrec name -> (Spark ML ALS name, default). ``reg``, ``alpha``, ``unobserved_weight``
#: and ``reg_frequency_exponent`` of implicit ALS reach Spark through :meth:`SparkALS.mapping`
#: (see :class:`SparkALS`), not one to one.
PARAMS: dict[str, tuple[str | None, Any]] = {
    "factors": ("rank", 64),
    "epochs": ("maxIter", 15),
    "reg": ("regParam", 0.01),
    "alpha": ("alpha", 1.0),
    "confidence": (None, "linear"),
    "unobserved_weight": (None, 1.0),
    "reg_frequency_exponent": (None, 1.0),
    "nonnegative": ("nonnegative", False),
    "block_size": ("blockSize", 4096),
    "random_state": ("seed", 42),
    "spark_reg_param": (None, None),
    "num_blocks": (None, None),
}

#: the value fed to Spark for an entry whose mapped confidence is exactly 1 (Spark treats a
#: value <= 0 as "not observed"; this keeps it observed with confidence 1 + 1e-9)
_TINY = 1e-9


def mapped_reg_param(
    reg: float,
    reg_frequency_exponent: float,
    unobserved_weight: float,
    user_counts: Any,
    item_counts: Any,
) -> float:
    """Spark's ``regParam`` closest to lensrec's per-row regularisation, from the training
    rows' counts (``user_counts[u]`` = interactions of user ``u``; rows with none left out).

    lensrec's user row ``u`` (divided by ``w0``, which leaves the minimiser unchanged) has
    ``lam_u / w0 = (reg / w0) * (n_u + w0 * n_items) ** e``; Spark's has
    ``regParam * n_u``, one scalar for all rows of both sides. The scalar is fitted in log
    scale, every row counted once per interaction, over the user rows and the item rows:

        log regParam = log(reg / w0) + mean over (row, interaction) of
                       [e * log(n + w0 * n_other) - log n]

    (``n_other`` the number of items for a user row, of users for an item row). No scalar
    reproduces lensrec exactly: against lensrec, Spark regularises rows with many
    interactions more and rows with few less.
    """
    import numpy as np

    nu = np.asarray(user_counts, dtype=np.float64)
    ni = np.asarray(item_counts, dtype=np.float64)
    nu, ni = nu[nu > 0], ni[ni > 0]
    nnz = nu.sum()
    if nnz == 0 or ni.sum() != nnz:
        raise ValueError("user and item counts must be non-empty and sum to the same total")
    e, w0 = float(reg_frequency_exponent), float(unobserved_weight)
    su = float((nu * (e * np.log(nu + w0 * ni.size) - np.log(nu))).sum())
    si = float((ni * (e * np.log(ni + w0 * nu.size) - np.log(ni))).sum())
    return float(np.exp(np.log(float(reg) / w0) + (su + si) / (2.0 * nnz)))


@dataclass
class SparkALS:
    """ALS on Spark with lensrec's names (``factors``, ``epochs``, ``reg``, ``alpha``,
    ``confidence``, ``unobserved_weight``, ``reg_frequency_exponent``, ``random_state``),
    mapped so that the same parameters mean what they mean in :class:`lensrec.models.ALS`.

    ``explicit=False`` (the default, lensrec's ``als``) fits implicit feedback. lensrec
    minimises ``sum_obs c (1 - s)^2 + w0 sum_unobs s^2 + sum lam |x|^2`` with
    ``c = 1 + alpha * t(r) / mean(t(r))`` (``t`` the identity or ``log1p``) and
    ``lam = reg (n + w0 n_other)^e``; Spark minimises
    ``sum_obs (1 + alpha' r') (1 - s)^2 + sum_unobs s^2 + regParam sum n |x|^2``. Dividing
    lensrec's objective by ``w0`` (same minimiser) makes them the same up to the
    regularisation:

    - confidence and unobserved weight, exactly: Spark is fed ``r' = c / w0 - 1`` with
      ``alpha' = 1`` (``w0`` must be > 0 and not above any entry's confidence ``c``, else
      Spark would read the entry as unobserved: refused);
    - ``reg``, ``reg_frequency_exponent``: Spark has one scalar times each row's count, so
      ``regParam`` is fitted to lensrec's per-row weights (:func:`mapped_reg_param`); no
      scalar is exact. ``spark_reg_param`` hands Spark a ``regParam`` as is instead;
    - ``factors``: capped as lensrec caps it (a tenth of the smaller side of the matrix);
    - solver and start: Spark solves each row exactly (Cholesky; lensrec: 3 warm-started CG
      steps, or ``solver="cholesky"``) from its own random start: results agree in
      distribution, not bit for bit.

    ``explicit=True`` fits the ratings (Spark's explicit ALS-WR, for RMSE): ``reg`` is
    Spark's regParam there (lensrec has no explicit ALS to match), and
    ``unobserved_weight`` / ``reg_frequency_exponent`` mean nothing (refused unless 1.0).
    """

    factors: int = 64
    epochs: int = 15
    reg: float = 0.01
    alpha: float = 1.0
    confidence: str = "linear"
    unobserved_weight: float = 1.0
    reg_frequency_exponent: float = 1.0
    nonnegative: bool = False
    block_size: int = 4096
    random_state: int = 42
    spark_reg_param: float | None = None
    num_blocks: int | None = None
    explicit: bool = False

    @classmethod
    def from_params(cls, params: dict[str, Any], *, explicit: bool = False) -> SparkALS:
        """From lensrec-named parameters (``--set``); unknown or bad values raise ConfigError."""
        params = dict(params)
        if explicit:
            for name in ("unobserved_weight", "reg_frequency_exponent"):
                if name in params and float(params.pop(name)) != 1.0:
                    raise ConfigError(
                        f"{name} has no meaning for explicit (rating) ALS; leave it at 1.0"
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
        out = cls(**{"explicit": explicit, **params})
        out._check()
        return out

    def _check(self) -> None:
        if not float(self.reg) > 0:
            raise ConfigError(f"reg must be > 0, got {self.reg!r}")
        if float(self.alpha) < 0:
            raise ConfigError(f"alpha must be >= 0, got {self.alpha!r}")
        if not float(self.unobserved_weight) > 0:
            raise ConfigError(
                "unobserved_weight must be > 0 in Spark (Spark ALS always weighs unobserved "
                f"cells), got {self.unobserved_weight!r}"
            )
        if not 0.0 <= float(self.reg_frequency_exponent) <= 1.0:
            raise ConfigError(
                f"reg_frequency_exponent must be in [0, 1], got {self.reg_frequency_exponent!r}"
            )
        if self.num_blocks is not None and int(self.num_blocks) < 1:
            raise ConfigError(f"num_blocks must be >= 1, got {self.num_blocks!r}")
        if self.spark_reg_param is not None and float(self.spark_reg_param) < 0:
            raise ConfigError(f"spark_reg_param must be >= 0, got {self.spark_reg_param!r}")

    def spark_params(self) -> dict[str, Any]:
        """The keyword arguments handed to ``pyspark.ml.recommendation.ALS``: after
        :meth:`fit`, the ones it used; before, those known without the data (implicit ALS's
        ``regParam`` is None until the counts are seen, ``rank`` not yet capped)."""
        fitted = getattr(self, "spark_params_", None)
        if fitted is not None:
            return dict(fitted)
        out = {
            spark: getattr(self, name) for name, (spark, _) in PARAMS.items() if spark is not None
        }
        if self.spark_reg_param is not None:
            out["regParam"] = float(self.spark_reg_param)
        elif not self.explicit:
            out["regParam"] = None
        if not self.explicit:
            out["alpha"] = 1.0  # the confidence is in the values (see _values)
        out.update(implicitPrefs=not self.explicit, coldStartStrategy="drop")
        return out

    def _values(self, train: Any) -> Any:
        """The training frame with the ``_value`` column Spark fits: the rating (explicit),
        else ``c / w0 - 1`` with lensrec's confidence ``c``."""
        from pyspark.sql import functions as F

        if self.explicit:
            if "rating" not in train.columns:
                raise ConfigError("explicit ALS needs ratings and these interactions have none")
            return train.withColumn("_value", F.col("rating"))
        raw = F.col("rating") if "rating" in train.columns else F.lit(1.0)
        t = F.log1p(raw) if self.confidence == "log" else raw
        framed = train.withColumn("_t", t.cast("double"))
        low, mean = framed.agg(F.min("_t"), F.avg("_t")).first()
        if low is not None and low < 0:
            raise ConfigError(
                "ALS uses interaction values as confidence and they must be >= 0 "
                "(filter positives first, e.g. --min-rating 4)"
            )
        scale = mean if mean and mean > 0 else 1.0
        alpha, w0 = float(self.alpha), float(self.unobserved_weight)
        lowest_c = 1.0 + alpha * (low or 0.0) / scale
        if lowest_c < w0 * (1 - 1e-12):
            raise ConfigError(
                f"unobserved_weight {w0:g} is above the smallest confidence of an observed entry "
                f"({lowest_c:.4g}): Spark would read those entries as unobserved; lower it"
            )
        value = (F.lit(1.0) + F.lit(alpha) * F.col("_t") / F.lit(scale)) / F.lit(w0) - F.lit(1.0)
        return framed.withColumn("_value", F.greatest(value, F.lit(_TINY))).drop("_t")

    def mapping(self, train: Any) -> dict[str, Any]:
        """The Spark ALS arguments for ``train`` (a lensrec frame): lensrec's names mapped
        as the class documents (``regParam`` from the rows' counts, ``rank`` capped)."""
        from pyspark.sql import functions as F

        from ..models._factor_ranker import rank_cap

        self.__dict__.pop("spark_params_", None)
        out = self.spark_params()
        blocks = self.num_blocks or train.sparkSession.sparkContext.defaultParallelism
        out["numUserBlocks"] = out["numItemBlocks"] = max(1, int(blocks))
        users = train.groupBy("user").count()
        items = train.groupBy("item").count()
        n_users, n_items = users.count(), items.count()
        out["rank"] = rank_cap(int(self.factors), n_users, n_items)
        if out["regParam"] is None:
            e, w0 = float(self.reg_frequency_exponent), float(self.unobserved_weight)

            def side(counts: Any, n_other: int) -> tuple[float, float]:
                n = F.col("count").cast("double")
                term = n * (F.lit(e) * F.log(n + F.lit(w0 * n_other)) - F.log(n))
                row = counts.agg(F.sum(term), F.sum(n)).first()
                return float(row[0] or 0.0), float(row[1] or 0.0)

            su, nnz = side(users, n_items)
            si, _ = side(items, n_users)
            if nnz > 0:
                out["regParam"] = float(
                    np.exp(np.log(float(self.reg) / w0) + (su + si) / (2.0 * nnz))
                )
            else:
                out["regParam"] = float(self.reg)
        return out

    def fit(self, train: Any) -> Any:
        """Fit on a lensrec frame; returns Spark's ``ALSModel``. The arguments used are
        kept in ``spark_params_``."""
        require_pyspark()
        from pyspark.ml.recommendation import ALS

        self._check()
        params = self.mapping(train)
        self.spark_params_ = params
        _ensure_checkpoint_dir(train.sparkSession, int(params["maxIter"]))
        _log.info("Spark ALS with %s", params)
        als = ALS(userCol="user", itemCol="item", ratingCol="_value", **params)
        return als.fit(self._values(train))


#: Spark ALS's lineage grows with each iteration; past this many, without a checkpoint
#: directory, deserialising a task overflows the JVM stack (StackOverflowError, seen at 25)
_MAX_ITER_WITHOUT_CHECKPOINTS = 15


def _ensure_checkpoint_dir(spark: Any, iterations: int) -> None:
    """Spark ALS checkpoints every 10 iterations only when the context has a checkpoint
    directory. Long fits get one: a temporary directory (removed at exit) in local mode; on
    a cluster the caller must give a shared one (refused with the fix in the message)."""
    sc = spark.sparkContext
    if iterations <= _MAX_ITER_WITHOUT_CHECKPOINTS or sc.getCheckpointDir() is not None:
        return
    if not str(sc.master).startswith("local"):
        raise ConfigError(
            f"Spark ALS with {iterations} iterations needs a checkpoint directory on shared "
            "storage (spark.sparkContext.setCheckpointDir('hdfs://...')): without one its "
            f"lineage overflows the stack past about {_MAX_ITER_WITHOUT_CHECKPOINTS + 5}"
        )
    import atexit
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="lensrec-spark-checkpoints-")
    atexit.register(shutil.rmtree, path, True)
    sc.setCheckpointDir(path)


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
