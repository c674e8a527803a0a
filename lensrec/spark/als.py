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

__all__ = ["SparkALS", "LensrecALSModel", "recommend_all", "mapped_reg_param", "PARAMS", "ENGINES"]

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
    "engine": (None, None),
    "solver": (None, "cg"),
    "cg_steps": (None, 3),
    "patience": (None, 3),
}

#: ``engine``: lensrec's own ALS (its objective and kernels, the factors distributed by
#: Spark) or Spark ML's ALS (its objective, lensrec's names mapped onto it)
ENGINES = ("lensrec", "spark-ml")

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
    meaning what they mean in :class:`lensrec.models.ALS`. Two engines:

    ``engine="lensrec"`` (the default for implicit feedback) is lensrec's ALS itself, spread
    over the cluster: the interactions stay on the executors, partitioned by user and by item
    into CSR blocks (cached); each half-step broadcasts the fixed side's factors and Gram
    matrix, and every executor solves its blocks' rows with lensrec's kernels (CG, or
    ``solver="cholesky"``), warm-started as on one machine. Rows are independent given the
    fixed side, so the result is the one-machine fit's: same objective, same start (drawn
    from ``random_state`` in the same index order), same factors up to float rounding; with
    a validation frame, the same early stopping on NDCG@10. The
    driver holds both factor matrices (``4 f (n_users + n_items)`` bytes: 90 MB at ml-32m's
    shape with f = 64) and every executor the fixed side while it solves; beyond that, use
    Spark ML's engine, which never gathers the factors.

    ``engine="spark-ml"`` is Spark ML's ALS (Cholesky per row, its own random start). lensrec
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
      scalar is exact (on random splits of ml-100k at lensrec's default ``reg``, Spark's
      NDCG@10 is about 7% higher: docs/scaling.md). ``spark_reg_param`` hands Spark a
      ``regParam`` as is instead;
    - ``factors``: capped as lensrec caps it (a tenth of the smaller side of the matrix).

    ``explicit=True`` fits the ratings with Spark ML's explicit ALS-WR (for RMSE; lensrec has
    no explicit ALS, so the engine is ``spark-ml``): ``reg`` is Spark's regParam there, and
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
    engine: str | None = None
    solver: str = "cg"
    cg_steps: int = 3
    patience: int = 3
    explicit: bool = False

    @property
    def engine_(self) -> str:
        """The engine in force: ``engine``, else ``spark-ml`` for ratings, ``lensrec`` else."""
        if self.engine is not None:
            return str(self.engine)
        return "spark-ml" if self.explicit else "lensrec"

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
        if params.get("engine", "lensrec" if not explicit else "spark-ml") == "spark-ml":
            for name in ("cg_steps", "solver", "patience"):
                params.pop(name, None)  # lensrec solver details: Spark ML has its own
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
        if self.engine is not None and self.engine not in ENGINES:
            raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.explicit and self.engine_ == "lensrec":
            raise ConfigError(
                "explicit (rating) ALS runs on Spark ML's engine only; lensrec's ALS ranks "
                "implicit feedback (drop engine=lensrec)"
            )
        if self.solver not in ("cg", "cholesky"):
            raise ConfigError(f"solver must be 'cg' or 'cholesky', got {self.solver!r}")
        if isinstance(self.cg_steps, bool) or int(self.cg_steps) < 1:
            raise ConfigError(f"cg_steps must be >= 1, got {self.cg_steps!r}")
        if isinstance(self.patience, bool) or int(self.patience) < 1:
            raise ConfigError(f"patience must be >= 1, got {self.patience!r}")
        if not float(self.reg) > 0:
            raise ConfigError(f"reg must be > 0, got {self.reg!r}")
        if float(self.alpha) < 0:
            raise ConfigError(f"alpha must be >= 0, got {self.alpha!r}")
        if float(self.unobserved_weight) < 0:
            raise ConfigError(f"unobserved_weight must be >= 0, got {self.unobserved_weight!r}")
        if self.engine_ == "spark-ml" and not float(self.unobserved_weight) > 0:
            raise ConfigError(
                "unobserved_weight must be > 0 in Spark ML (its ALS always weighs unobserved "
                f"cells), got {self.unobserved_weight!r}; engine=lensrec takes 0"
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
        if self.engine_ == "lensrec":
            names = ("factors", "epochs", "reg", "alpha", "confidence", "unobserved_weight",
                     "reg_frequency_exponent", "solver", "cg_steps", "patience",
                     "random_state")  # fmt: skip
            return {"engine": "lensrec", **{n: getattr(self, n) for n in names},
                    "num_blocks": self.num_blocks}  # fmt: skip
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

    def _confidence(self, train: Any) -> tuple[Any, float]:
        """``train`` with ``_c``, lensrec's confidence ``1 + alpha t(r) / mean(t(r))`` of
        each entry (double), and the smallest ``_c``."""
        from pyspark.sql import functions as F

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
        alpha = float(self.alpha)
        c = F.lit(1.0) + F.lit(alpha) * F.col("_t") / F.lit(scale)
        return framed.withColumn("_c", c).drop("_t"), 1.0 + alpha * (low or 0.0) / scale

    def _values(self, train: Any) -> Any:
        """The training frame with the ``_value`` column Spark ML fits: the rating
        (explicit), else ``c / w0 - 1`` with lensrec's confidence ``c``."""
        from pyspark.sql import functions as F

        if self.explicit:
            if "rating" not in train.columns:
                raise ConfigError("explicit ALS needs ratings and these interactions have none")
            return train.withColumn("_value", F.col("rating"))
        framed, lowest_c = self._confidence(train)
        w0 = float(self.unobserved_weight)
        if lowest_c < w0 * (1 - 1e-12):
            raise ConfigError(
                f"unobserved_weight {w0:g} is above the smallest confidence of an observed entry "
                f"({lowest_c:.4g}): Spark would read those entries as unobserved; lower it"
            )
        value = F.col("_c") / F.lit(w0) - F.lit(1.0)
        return framed.withColumn("_value", F.greatest(value, F.lit(_TINY))).drop("_c")

    def _fit_lensrec(self, train: Any, universe: Any, valid: Any, callback: Any) -> LensrecALSModel:
        """lensrec's ALS, the interactions in cached CSR blocks on the executors (see the
        class docstring)."""
        import time

        from pyspark.sql import functions as F
        from pyspark.sql import types as T

        from .._config import rng
        from ..kernels.als import gram
        from ..models._factor_ranker import rank_cap
        from ..models._trainer import EpochTrainer
        from ..models._validation import VALID_K
        from ._als_exec import build_block, solve_block

        self.__dict__.pop("spark_params_", None)  # a previous fit's, not this one's
        spark = train.sparkSession
        sc = spark.sparkContext
        t0 = time.perf_counter()

        def ids(frame: Any, col: str) -> np.ndarray:
            got = frame.select(col).distinct().toPandas()[col].to_numpy()
            return np.sort(got.astype(np.int64))

        user_ids, item_ids = ids(universe, "user"), ids(universe, "item")
        n_users, n_items = int(user_ids.size), int(item_ids.size)
        if n_users == 0 or n_items == 0:
            raise ConfigError("ALS: the training data is empty")
        f = rank_cap(int(self.factors), n_users, n_items)
        gen = rng(self.random_state)
        std = np.float32(0.1 / np.sqrt(f))
        X = gen.standard_normal((n_users, f), dtype=np.float32) * std
        Y = gen.standard_normal((n_items, f), dtype=np.float32) * std

        if universe is not train:
            # every training id must have a row in the universe's index (positions are found
            # by binary search on the executors: an id outside would land on another's row)
            for col in ("user", "item"):
                stray = train.select(col).join(universe.select(col), col, "left_anti")
                if stray.limit(1).count():
                    raise ConfigError(f"ALS: the training {col}s must all be in the universe frame")
        if valid is not None:  # validation pairs the index has no row for cannot be ranked
            valid = valid.join(train.select("user").distinct(), "user", "left_semi").join(
                train.select("item").distinct(), "item", "left_semi"
            )
        framed, _ = self._confidence(train)
        entries = framed.select(
            "user", "item", F.col("_c").cast("float").alias("w"), F.lit(False).alias("v")
        )
        with_valid = entries
        if valid is not None:
            pairs = valid.select("user", "item").dropDuplicates()
            with_valid = entries.unionByName(
                pairs.select("user", "item", F.lit(0.0).cast("float").alias("w"),
                             F.lit(True).alias("v"))
            )  # fmt: skip
        n_parts = max(1, int(self.num_blocks or sc.defaultParallelism))
        schema = T.StructType([T.StructField("block", T.BinaryType())])
        bc_ids = sc.broadcast((user_ids, item_ids))

        def blocks(frame: Any, row: str, col: str) -> Any:
            import pickle

            side = 0 if row == "user" else 1

            def build(batches: Any) -> Any:
                ids = bc_ids.value
                return build_block(batches, row, col, ids[side], ids[1 - side])

            built = frame.repartition(n_parts, row).mapInArrow(build, schema)
            return built.rdd.map(lambda b: pickle.loads(b[0])).persist()

        user_blocks = blocks(with_valid, "user", "item")
        item_blocks = blocks(entries, "item", "user")
        filled_u = np.zeros(n_users, dtype=bool)
        filled_i = np.zeros(n_items, dtype=bool)
        for parts, filled in ((user_blocks, filled_u), (item_blocks, filled_i)):
            for rows, counts in parts.map(lambda b: (b[0], np.diff(b[1]))).collect():
                filled[rows[counts > 0]] = True
        X[~filled_u] = 0.0
        Y[~filled_i] = 0.0
        kw: dict[str, Any] = {
            "reg": float(self.reg),
            "freq_exponent": float(self.reg_frequency_exponent),
            "w0": float(self.unobserved_weight),
            "solver": str(self.solver),
            "cg_steps": int(self.cg_steps),
            "threads": int(spark.conf.get("spark.task.cpus", "1")),
        }

        def half(parts: Any, fixed_bc: Any, warm_bc: Any, target: np.ndarray, k: int) -> float:
            def run(block: Any) -> Any:
                fixed, g = fixed_bc.value
                return solve_block(block, fixed, g, warm_bc.value[0], valid_k=k, **kw)

            total, users = 0.0, 0
            for rows, vals, got, n in parts.map(run).collect():
                target[rows] = vals
                total, users = total + got, users + n
            return total / users if users else 0.0

        k = VALID_K if valid is not None else 0
        state: dict[str, Any] = {"y": sc.broadcast((Y, gram(Y)))}

        def step(epoch: int) -> dict[str, float]:
            bc_x = sc.broadcast((X, gram(X)))
            half(item_blocks, bc_x, state["y"], Y, 0)  # items given users, then users
            state["y"].destroy()
            state["y"] = sc.broadcast((Y, gram(Y)))
            state["valid"] = half(user_blocks, state["y"], bc_x, X, k)
            bc_x.destroy()
            return {}

        trainer: EpochTrainer[tuple[np.ndarray, np.ndarray]] = EpochTrainer(
            "ALS on Spark",
            epochs=int(self.epochs),
            patience=int(self.patience),
            mode="max",
            metric=f"valid_ndcg@{VALID_K}",
            callback=callback,
        )
        try:
            log, best = trainer.run(
                step,
                (lambda: float(state["valid"])) if valid is not None else None,
                lambda: (X.copy(), Y.copy()),
            )
        finally:
            state["y"].destroy()
            bc_ids.destroy()
            user_blocks.unpersist()
            item_blocks.unpersist()
        if best is not None:
            X, Y = best
        self.spark_params_ = {**self.spark_params(), "factors": f, "num_blocks": n_parts}
        self.fit_seconds_ = time.perf_counter() - t0
        model = LensrecALSModel(spark, user_ids, X, filled_u, item_ids, Y, filled_i)
        model.history_ = {key: list(v) for key, v in log.history.items()}
        model.best_epoch_ = log.best_epoch if log.best_epoch > 0 else log.epochs_run
        return model

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

    def fit(
        self,
        train: Any,
        *,
        universe: Any = None,
        valid: Any = None,
        callback: Any = None,
    ) -> Any:
        """Fit on a lensrec frame; returns Spark's ``ALSModel`` (``engine="spark-ml"``) or a
        :class:`LensrecALSModel` (same ``userFactors``, ``itemFactors``, ``rank``). The
        arguments used are kept in ``spark_params_``.

        lensrec engine only:

        - ``universe``: the frame whose users and items are the model's index, as lensrec's
          index may hold ids without training rows (a validation carve keeps the whole
          training part's index), so the regularisation's unobserved counts, the factor
          cap and the random start are those of ``lensrec.models.ALS`` on the same data;
          default: ``train``'s own (what lensrec's split gives its training part);
        - ``valid``: a frame of validation pairs (``user``, ``item``): NDCG@10 after each
          epoch, early stopping after ``patience`` epochs without a gain, and the best
          epoch's factors kept, as lensrec's ALS does (``history_``, ``best_epoch_`` on
          the model); ``callback(epoch, seconds, metrics)`` as in ``Recommender.fit``.
        """
        require_pyspark()
        self._check()
        if self.engine_ == "lensrec":
            return self._fit_lensrec(
                train, train if universe is None else universe, valid, callback
            )
        if valid is not None:
            raise ConfigError("validation and early stopping need engine=lensrec")
        from pyspark.ml.recommendation import ALS

        params = self.mapping(train)
        self.spark_params_ = params
        _ensure_checkpoint_dir(train.sparkSession, int(params["maxIter"]))
        _log.info("Spark ALS with %s", params)
        als = ALS(userCol="user", itemCol="item", ratingCol="_value", **params)
        return als.fit(self._values(train))


#: rows per Arrow batch when the fitted factors are made into Spark frames
_FACTOR_CHUNK = 65536


class LensrecALSModel:
    """lensrec's ALS fitted on Spark: the factors (``user_factors_``, ``item_factors_``, rows
    in ``user_ids_`` / ``item_ids_`` order, the frame's int ``user`` / ``item`` indices),
    and the frames Spark ML's ``ALSModel`` has (``userFactors``, ``itemFactors``: ``id``,
    ``features``; only rows with training interactions, as Spark ML's), so
    :func:`recommend_all` and the exports take either."""

    def __init__(
        self,
        spark: Any,
        user_ids: np.ndarray,
        X: np.ndarray,
        user_known: np.ndarray,
        item_ids: np.ndarray,
        Y: np.ndarray,
        item_known: np.ndarray,
    ) -> None:
        self.user_ids_, self.user_factors_, self.user_known_ = user_ids, X, user_known
        self.item_ids_, self.item_factors_, self.item_known_ = item_ids, Y, item_known
        self.rank = int(X.shape[1])
        self.history_: dict[str, list[float]] = {}
        self.best_epoch_ = 0
        self._spark = spark
        self._frames: dict[str, Any] = {}

    def _frame(self, name: str, ids: np.ndarray, vectors: np.ndarray, known: np.ndarray) -> Any:
        """``id``, ``features`` of the known rows, made on the executors from a broadcast in
        Arrow chunks (no Python object per row)."""
        if name not in self._frames:
            from pyspark.sql import types as T

            rows = np.flatnonzero(known)
            bc = self._spark.sparkContext.broadcast(
                (ids[rows].astype(np.int32), np.ascontiguousarray(vectors[rows], np.float32))
            )
            chunk = _FACTOR_CHUNK
            schema = T.StructType(
                [
                    T.StructField("id", T.IntegerType()),
                    T.StructField("features", T.ArrayType(T.FloatType())),
                ]
            )

            def emit(batches: Any) -> Any:
                from lensrec.spark._als_exec import factor_batches

                got_ids, got_vectors = bc.value
                for batch in batches:
                    yield from factor_batches(
                        got_ids, got_vectors, batch.column("id").to_numpy(), chunk
                    )

            starts = self._spark.range(0, int(rows.size), chunk)
            self._frames[name] = starts.mapInArrow(emit, schema)
        return self._frames[name]

    @property
    def userFactors(self) -> Any:  # noqa: N802 (Spark ML's name)
        return self._frame("user", self.user_ids_, self.user_factors_, self.user_known_)

    @property
    def itemFactors(self) -> Any:  # noqa: N802 (Spark ML's name)
        return self._frame("item", self.item_ids_, self.item_factors_, self.item_known_)


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
    dim = int(model.rank)
    if isinstance(model, LensrecALSModel):  # the factors are on the driver already
        ids = model.item_ids_[model.item_known_]
        rows_vectors = model.item_factors_[model.item_known_]
    else:
        item_rows = model.itemFactors.collect()
        ids = np.asarray([r["id"] for r in item_rows], dtype=np.int64)
        rows_vectors = np.asarray([r["features"] for r in item_rows], dtype=np.float32)
    n_items = int(ids.max()) + 1 if ids.size else 0
    vectors = np.zeros((n_items, dim), dtype=np.float32)
    known = np.zeros(n_items, dtype=bool)
    if ids.size:
        vectors[ids] = rows_vectors.reshape(ids.size, dim)
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
