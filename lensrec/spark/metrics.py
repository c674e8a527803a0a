"""Ranking and rating metrics computed in Spark by the definitions of
:mod:`lensrec.evaluate.metrics` (the tests compare both on identical lists).

Recommendations are a frame ``user``, ``items`` (array of item indices, best first; a
short list is padding, never a hit); the relevant items a frame ``user``, ``item`` (and
``rating`` when a relevance threshold applies). A user is evaluated when it has at least one
relevant item; the mean is over those users, as lensrec's protocol takes it.

* precision@k = hits / k; recall@k = hits / |relevant|; hit_rate@k = any hit
* ndcg@k (binary gain) = sum over hits at rank r of 1 / log2(r + 1), divided by the same
  sum over ranks 1..min(k, |relevant|)
* map@k = sum over hits at rank r of precision@r, divided by min(k, |relevant|); map_k@k
  divides by k instead; mrr@k = 1 / rank of the first hit (0 without one)
* coverage@k = distinct items in the lists / catalogue size
* rmse, mae, r2 over (rating, prediction) pairs
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import ConfigError
from ._session import require_pyspark

__all__ = ["RANKING", "ranking_metrics", "coverage", "rating_metrics"]

RANKING = ("precision", "recall", "hit_rate", "ndcg", "map", "map_k", "mrr")


def _relevant(test: Any, relevance_threshold: float | None) -> Any:
    from pyspark.sql import functions as F

    if relevance_threshold is not None:
        if "rating" not in test.columns:
            raise ConfigError("a relevance threshold needs ratings and the test part has none")
        test = test.filter(F.col("rating") >= float(relevance_threshold))
    return test.select("user", "item").distinct()


def ranking_metrics(
    recs: Any,
    test: Any,
    specs: list[tuple[str, int]],
    *,
    relevance_threshold: float | None = None,
) -> tuple[dict[str, float], Any]:
    """``({"ndcg@10": mean, ...}, per_user frame)`` for ``(name, k)`` pairs.

    The per-user frame has ``user``, ``n_relevant`` and one column per label (``ndcg@10``),
    one row per evaluated user.
    """
    require_pyspark()
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    for name, k in specs:
        if name not in RANKING:
            raise ConfigError(f"{name!r} is not a ranking metric; known: {', '.join(RANKING)}")
        if int(k) < 1:
            raise ConfigError(f"k must be >= 1, got {k}")
    if not specs:
        return {}, None
    k_max = max(int(k) for _, k in specs)
    rel = _relevant(test, relevance_threshold)
    n_rel = rel.groupBy("user").agg(F.count("*").alias("n_relevant"))
    listed = recs.select("user", F.posexplode("items").alias("pos", "item")).filter(
        (F.col("pos") < k_max) & (F.col("item") >= 0)
    )
    hits = listed.join(rel, ["user", "item"], "inner").withColumn(
        "nth", F.row_number().over(Window.partitionBy("user").orderBy("pos"))
    )  # nth: hits up to and including this rank
    aggs = []
    for name, k in specs:
        within = F.col("pos") < int(k)
        lab = f"{name}@{k}"
        aggs += [
            F.sum(F.when(within, 1).otherwise(0)).alias(f"_h_{lab}"),
            F.sum(F.when(within, 1.0 / F.log2(F.col("pos") + 2.0)).otherwise(0.0)).alias(
                f"_d_{lab}"
            ),
            F.sum(F.when(within, F.col("nth") / (F.col("pos") + 1.0)).otherwise(0.0)).alias(
                f"_a_{lab}"
            ),
        ]
    aggs.append(F.min("pos").alias("_first"))
    per_hit = hits.groupBy("user").agg(*aggs)
    per = n_rel.join(per_hit, "user", "left").fillna(0)
    cols = [F.col("user"), F.col("n_relevant")]
    for name, k in specs:
        k = int(k)
        lab = f"{name}@{k}"
        h, d, a = F.col(f"_h_{lab}"), F.col(f"_d_{lab}"), F.col(f"_a_{lab}")
        n = F.col("n_relevant")
        cut = F.least(n, F.lit(k))
        if name == "precision":
            v = h / F.lit(float(k))
        elif name == "recall":
            v = h / n
        elif name == "hit_rate":
            v = F.when(h > 0, 1.0).otherwise(0.0)
        elif name == "ndcg":
            ideal = [0.0]
            for r in range(1, k + 1):
                ideal.append(ideal[-1] + 1.0 / math.log2(r + 1))
            v = d / F.element_at(F.array(*[F.lit(x) for x in ideal]), (cut + 1).cast("int"))
        elif name == "map":
            v = a / cut
        elif name == "map_k":
            v = a / F.lit(float(k))
        else:  # mrr
            v = F.when((h > 0) & (F.col("_first") < k), 1.0 / (F.col("_first") + 1.0)).otherwise(
                0.0
            )
        cols.append(v.cast("double").alias(lab))
    per_user = per.select(*cols)
    labels = [f"{name}@{int(k)}" for name, k in specs]
    row = per_user.agg(*[F.avg(F.col(f"`{lab}`")).alias(lab) for lab in labels]).first()
    means = {lab: float(row[lab]) if row[lab] is not None else float("nan") for lab in labels}
    return means, per_user


def coverage(recs: Any, n_items: int, k: int) -> float:
    """Share of the ``n_items`` catalogue appearing in the first ``k`` of at least one list."""
    require_pyspark()
    from pyspark.sql import functions as F

    if n_items <= 0:
        raise ConfigError(f"n_items must be positive, got {n_items}")
    listed = recs.select(F.posexplode("items").alias("pos", "item")).filter(
        (F.col("pos") < int(k)) & (F.col("item") >= 0) & (F.col("item") < n_items)
    )
    return listed.select("item").distinct().count() / float(n_items)


def rating_metrics(
    pred: Any, *, rating: str = "rating", prediction: str = "prediction"
) -> dict[str, float]:
    """``{"rmse", "mae", "r2"}`` over a frame of (``rating``, ``prediction``) pairs (NaN
    when empty; r2 NaN when the ratings are constant)."""
    require_pyspark()
    from pyspark.sql import functions as F

    d = F.col(rating) - F.col(prediction)
    row = pred.agg(
        F.count("*").alias("n"),
        F.avg(d * d).alias("mse"),
        F.avg(F.abs(d)).alias("mae"),
        F.sum(d * d).alias("ss_res"),
        F.avg(rating).alias("mean"),
    ).first()
    if not row["n"]:
        return {"rmse": float("nan"), "mae": float("nan"), "r2": float("nan")}
    ss_tot = pred.agg(F.sum((F.col(rating) - F.lit(row["mean"])) ** 2)).first()[0]
    r2 = 1.0 - row["ss_res"] / ss_tot if ss_tot else float("nan")
    return {"rmse": math.sqrt(row["mse"]), "mae": float(row["mae"]), "r2": float(r2)}
