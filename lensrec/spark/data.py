"""Interactions as Spark DataFrames: reading, the filters and the split strategies.

A lensrec Spark frame has the columns ``user`` and ``item`` (dense int indices, what Spark
ML's ALS takes), ``user_id`` and ``item_id`` (the ids as read), ``rating`` (double, when the
data has ratings), ``timestamp`` (long, when it has times) and ``row`` (long, the file order).
The filters and splits follow :mod:`lensrec.split` rule for rule; where a global count would
need one partition (``random``), the Spark version draws each row with the same probability
instead and says so in its report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, DataError
from ..split import parse_split
from ._session import require_pyspark

__all__ = [
    "SparkSplit",
    "read_interactions",
    "from_interactions",
    "min_rating",
    "kcore",
    "make_split",
    "GUESSES",
]

_log = logging.getLogger(__name__)

#: column names tried, in order, when no mapping is given (as :func:`lensrec.data.load_dataset`)
GUESSES: tuple[tuple[str, str, str, str], ...] = (
    ("userId", "movieId", "rating", "timestamp"),
    ("user_id", "item_id", "rating", "timestamp"),
    ("user", "item", "rating", "timestamp"),
)

_INT32_MAX = 2**31 - 1


def _functions() -> Any:
    require_pyspark()
    from pyspark.sql import functions as F

    return F


def read_interactions(
    spark: Any,
    path: str,
    *,
    user: str | None = None,
    item: str | None = None,
    rating: str | None = None,
    timestamp: str | None = None,
    sep: str | None = None,
    has_header: bool = True,
) -> Any:
    """Read a Parquet file or directory, or a CSV / TSV / ``::`` file, as a lensrec frame.

    Without ``user`` / ``item`` the MovieLens names (``userId``, ``movieId``), then
    ``user_id`` / ``item_id`` and ``user`` / ``item`` are tried, with ``rating`` and
    ``timestamp`` taken when present. Integer ids within int32 become the indices
    themselves (no shuffle); other ids are indexed by frequency (Spark's StringIndexer).
    Repeated (user, item) pairs keep the latest one (by timestamp, then file order), as
    :meth:`lensrec.data.Interactions.from_frame` does.

    Raises
    ------
    DataError
        Naming the file, when a column is missing or a rating or timestamp is not a number.
    """
    F = _functions()
    text = str(path)
    low = text.lower().rstrip("/")
    is_parquet = sep is None and (low.endswith((".parquet", ".pq")) or _is_parquet_dir(text))
    try:
        if is_parquet:
            df = spark.read.parquet(text)
        else:
            if sep is None:
                sep = (
                    "\t"
                    if low.endswith((".tsv", ".tab"))
                    else "::"
                    if low.endswith(".dat")
                    else ","
                )
            df = spark.read.csv(text, sep=sep, header=has_header, inferSchema=True)
    except Exception as exc:  # AnalysisException & co: the JVM's message, one line
        raise DataError(f"cannot read ({_first_line(exc)})", file=text) from None
    cols = df.columns
    if user is None or item is None:
        if not has_header:
            names = ("user", "item", "rating", "timestamp")
            df = df.toDF(*names[: len(cols)], *cols[len(names) :])
            cols = df.columns
        for g in GUESSES:
            if g[0] in cols and g[1] in cols:
                user, item = user or g[0], item or g[1]
                rating = rating or (g[2] if g[2] in cols else None)
                timestamp = timestamp or (g[3] if g[3] in cols else None)
                break
    missing = [c for c in (user, item, rating, timestamp) if c is not None and c not in cols]
    if user is None or item is None or missing:
        want = ", ".join(c for c in (user, item) if c) or "userId/movieId or user_id/item_id"
        raise DataError(
            f"missing column(s) {', '.join(missing) or want}; the file has {', '.join(cols)}",
            file=text,
        )
    exprs = [F.col(user).alias("user_id"), F.col(item).alias("item_id")]
    if rating is not None:
        exprs.append(F.col(rating).cast("double").alias("rating"))
    if timestamp is not None:
        exprs.append(F.col(timestamp).cast("long").alias("timestamp"))
    exprs.append(F.monotonically_increasing_id().alias("row"))
    df = df.select(*exprs)
    for name in ("rating", "timestamp"):
        if name in df.columns:
            orig = rating if name == "rating" else timestamp
            bad = df.filter(F.col(name).isNull()).select("row").limit(1).collect()
            if bad:
                raise DataError(
                    f"column {orig!r} holds a value that is not a number (or is empty)", file=text
                )
    df = _dedupe(df)
    df = _index(df, "user_id", "user")
    df = _index(df, "item_id", "item")
    return df


def from_interactions(spark: Any, inter: Any) -> Any:
    """A lensrec frame from in-memory :class:`~lensrec.data.Interactions` (its indices kept,
    so a split made by lensrec can be handed to Spark row for row)."""
    import numpy as np
    import pandas as pd

    def ids(idmap: Any, codes: np.ndarray) -> np.ndarray:
        table = idmap.ids
        return (table.astype(np.int64) if idmap.is_integer else table.astype(str))[codes]

    cols: dict[str, Any] = {
        "user_id": ids(inter.user_ids, inter.users),
        "item_id": ids(inter.item_ids, inter.items),
    }
    if inter.ratings is not None:
        cols["rating"] = inter.ratings.astype(np.float64)
    if inter.timestamps is not None:
        cols["timestamp"] = inter.timestamps.astype(np.int64)
    cols["row"] = np.arange(len(inter), dtype=np.int64)
    cols["user"] = inter.users.astype(np.int32)
    cols["item"] = inter.items.astype(np.int32)
    return spark.createDataFrame(pd.DataFrame(cols))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _is_parquet_dir(path: str) -> bool:
    from pathlib import Path

    p = Path(path)
    return p.is_dir() and any(p.glob("*.parquet"))


def _dedupe(df: Any) -> Any:
    """Keep the latest row of each (user_id, item_id): by timestamp, then file order."""
    F = _functions()
    from pyspark.sql import Window

    order = [F.col("row").desc()]
    if "timestamp" in df.columns:
        order.insert(0, F.col("timestamp").desc())
    w = Window.partitionBy("user_id", "item_id").orderBy(*order)
    return df.withColumn("_n", F.row_number().over(w)).filter("_n = 1").drop("_n")


def _index(df: Any, src: str, dst: str) -> Any:
    """``dst``: int indices of the ids in ``src`` (the ids themselves when they are ints in
    [0, 2^31), else Spark's StringIndexer by frequency)."""
    F = _functions()
    dtype = dict(df.dtypes)[src]
    if dtype in ("int", "bigint", "smallint", "tinyint"):
        lo, hi = df.agg(F.min(src), F.max(src)).first()
        if lo is not None and lo >= 0 and hi <= _INT32_MAX:
            return df.withColumn(dst, F.col(src).cast("int"))
    from pyspark.ml.feature import StringIndexer

    model = StringIndexer(inputCol=src, outputCol=dst, stringOrderType="frequencyDesc").fit(
        df.withColumn(src, F.col(src).cast("string"))
    )
    out = model.transform(df.withColumn(src, F.col(src).cast("string")))
    return out.withColumn(dst, F.col(dst).cast("int"))


# --- filters ----------------------------------------------------------------------------------
def min_rating(df: Any, threshold: float) -> Any:
    """Rows rated ``>= threshold`` (:func:`lensrec.split.min_rating`)."""
    if "rating" not in df.columns:
        raise DataError("min_rating needs explicit ratings and these interactions are implicit")
    return df.filter(df["rating"] >= float(threshold))


def kcore(df: Any, user_k: int, item_k: int | None = None, *, max_rounds: int = 100) -> Any:
    """Iterative k-core (:func:`lensrec.split.kcore`): drop users with fewer than ``user_k``
    rows and items with fewer than ``item_k`` until none is left to drop. Each round is a
    pair of aggregations; the frame is checkpointed locally so plans do not grow."""
    F = _functions()
    item_k = user_k if item_k is None else item_k
    if user_k < 0 or item_k < 0:
        raise ConfigError(f"kcore minimums must be >= 0, got {user_k}, {item_k}")
    n = df.count()
    for _ in range(max_rounds):
        uc = df.groupBy("user").agg(F.count("*").alias("_uc")).filter(F.col("_uc") >= user_k)
        ic = df.groupBy("item").agg(F.count("*").alias("_ic")).filter(F.col("_ic") >= item_k)
        out = df.join(uc.select("user"), "user").join(ic.select("item"), "item")
        out = out.localCheckpoint()
        m = out.count()
        df = out
        if m == n:
            break
        n = m
    else:
        raise DataError(f"kcore did not settle in {max_rounds} rounds")
    return df


# --- splits -----------------------------------------------------------------------------------
@dataclass
class SparkSplit:
    """``train`` and ``test`` frames and what the split did (``report``: rows per part and
    the test rows dropped because their user or item is not in train)."""

    train: Any
    test: Any
    name: str
    report: dict[str, Any] = field(default_factory=dict)


def make_split(df: Any, spec: str, *, seed: int = 42) -> SparkSplit:
    """The split ``spec`` (the same strings as :func:`lensrec.split.make_split`).

    Supported: ``last:K`` / ``last:K:row`` (each user's last K rows by time or file order;
    users with <= K rows stay in train), ``user-random:TRAIN/TEST`` or
    ``TRAIN/VALID/TEST`` (per user, the same rounding: half up, each user keeps a train
    row; valid rows are left out), ``temporal:F`` (the latest F of the rows by time; ties
    at the cut by file order), ``ua`` / ``ub`` (each user's first 10 / 11th-20th rows in file
    order) and ``random:F`` (each row to test with probability F, seeded: the Spark version
    does not fix the count). Test rows whose user or item is absent from train are dropped,
    as lensrec does.
    """
    F = _functions()
    from pyspark.sql import Window

    parsed = parse_split(spec)
    strategy, p = parsed.strategy, parsed.params
    report: dict[str, Any] = {}
    if strategy == "last":
        k, by = int(p["k"]), p["by"]
        if by == "timestamp" and "timestamp" not in df.columns:
            raise DataError(
                f"last-k by timestamp needs timestamps; use last:{k}:row for file order"
            )
        order = (
            [F.col("timestamp").desc(), F.col("row").desc()]
            if by == "timestamp"
            else [F.col("row").desc()]
        )
        w = Window.partitionBy("user").orderBy(*order)
        marked = df.withColumn("_r", F.row_number().over(w)).withColumn(
            "_n", F.count("*").over(Window.partitionBy("user"))
        )
        is_test = (F.col("_r") <= k) & (F.col("_n") > k)
    elif strategy == "user-random":
        fr = p["fractions"]
        f_valid, f_test = (0.0, fr[1]) if len(fr) == 2 else (fr[1], fr[2])
        w = Window.partitionBy("user").orderBy(F.rand(seed), F.col("row"))
        marked = (
            df.withColumn("_r", F.row_number().over(w) - 1)
            .withColumn("_n", F.count("*").over(Window.partitionBy("user")))
            .withColumn("_t", F.floor(F.col("_n") * f_test + 0.5))
            .withColumn("_v", F.floor(F.col("_n") * f_valid + 0.5))
            .withColumn(
                "_over", F.greatest(F.col("_t") + F.col("_v") - (F.col("_n") - 1), F.lit(0))
            )
            .withColumn("_gv", F.least(F.col("_over"), F.col("_v")))
            .withColumn("_v", F.col("_v") - F.col("_gv"))
            .withColumn("_t", F.col("_t") - (F.col("_over") - F.col("_gv")))
        )
        is_test = F.col("_r") < F.col("_t")
        marked = marked.filter(
            ~((F.col("_r") >= F.col("_t")) & (F.col("_r") < F.col("_t") + F.col("_v")))
        )
    elif strategy == "temporal":
        if "timestamp" not in df.columns:
            raise DataError("temporal split needs timestamps and these interactions have none")
        n = df.count()
        n_test = int(p["test"] * n + 0.5)
        # the n_test latest rows (by timestamp, then file order): a global sort, then a cut
        ranked = df.select("timestamp", "row").orderBy(
            F.col("timestamp").desc(), F.col("row").desc()
        )
        cut = ranked.limit(n_test).agg(F.min(F.struct("timestamp", "row")).alias("c")).first()["c"]
        marked = df
        if n_test == 0 or cut is None:
            is_test = F.lit(False)
        else:
            is_test = (F.col("timestamp") > cut["timestamp"]) | (
                (F.col("timestamp") == cut["timestamp"]) & (F.col("row") >= cut["row"])
            )
    elif strategy == "grouplens" and p["name"] in ("ua", "ub"):
        lo, hi = (0, 10) if p["name"] == "ua" else (10, 20)
        w = Window.partitionBy("user").orderBy("row")
        marked = df.withColumn("_r", F.row_number().over(w) - 1)
        is_test = (F.col("_r") >= lo) & (F.col("_r") < hi)
    elif strategy == "random":
        marked = df
        is_test = F.rand(seed) < float(p["test"])
        report["note"] = "each row drawn with the test probability (count not fixed)"
    else:
        raise ConfigError(
            f"split {spec!r} is not available in Spark; use last:K[:row], user-random, "
            "temporal:F, random:F, ua or ub"
        )
    # fix the draws once: train and test are two filters over the same marked rows
    marked = marked.withColumn("_test", is_test).localCheckpoint()
    helpers = [c for c in marked.columns if c.startswith("_")]
    train = marked.filter(~F.col("_test")).drop(*helpers)
    raw_test = marked.filter(F.col("_test")).drop(*helpers)
    users = train.select("user").distinct()
    items = train.select("item").distinct()
    test = raw_test.join(users, "user", "left_semi").join(items, "item", "left_semi")
    return SparkSplit(train, test, parsed.spec, report)
