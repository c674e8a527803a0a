"""``lensrec spark evaluate`` as a library call: read, filter, split, fit, top-K, metrics,
export; each step timed."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..evaluate.metrics import parse_metric
from ..evaluate.protocol import DEFAULT_RANKING_METRICS
from . import data as _data
from . import metrics as _metrics
from .als import SparkALS, recommend_all

__all__ = ["SparkEvalResult", "spark_evaluate", "write_topk_parquet", "MODELS"]

_log = logging.getLogger(__name__)

#: model names ``lensrec spark evaluate`` takes
MODELS = ("als", "als-explicit")


@dataclass
class SparkEvalResult:
    """Means per metric label, the split's row counts and seconds per step."""

    metrics: dict[str, float]
    counts: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    split: str = ""
    topk_path: str | None = None
    validation: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        lines = [
            f"split  {self.split}: train {self.counts['train']:,} rows, test {self.counts['test']:,} "
            f"rows ({self.counts['test_users']:,} users evaluated)",
        ]
        width = max(len(k) for k in self.metrics) if self.metrics else 0
        lines += [f"{k:<{width}}  {v:.4f}" for k, v in self.metrics.items()]
        if self.validation.get("valid_rows"):
            v = self.validation
            lines.append(
                f"epochs {v['epochs_chosen']} chosen on {v['validation']} "
                f"({v['valid_rows']:,} rows), then refitted on all of train"
            )
        lines.append("seconds  " + ", ".join(f"{k} {v:.1f}" for k, v in self.seconds.items()))
        if self.topk_path:
            lines.append(f"top-K lists written to {self.topk_path}")
        return "\n".join(lines)


def _metric_specs(
    metrics: list[str] | None, ks: list[int], rated: bool
) -> tuple[list[tuple[str, int]], list[int], list[str]]:
    """(ranking (name, k) pairs, coverage ks, rating metric names)."""
    names = (
        list(metrics)
        if metrics
        else [*DEFAULT_RANKING_METRICS, *(("rmse", "mae", "r2") if rated else ())]
    )
    ranking: list[tuple[str, int]] = []
    cover: list[int] = []
    rating: list[str] = []
    for text in names:
        spec = parse_metric(text)
        if spec.info.kind == "rating":
            rating.append(spec.name)
            continue
        for k in [spec.k] if spec.k is not None else ks:
            if spec.name == "coverage":
                cover.append(int(k))
            elif spec.name in _metrics.RANKING:
                ranking.append((spec.name, int(k)))
            else:
                raise ConfigError(f"metric {spec.name!r} is not available in Spark")
    return ranking, cover, rating


def _carve_spec(rule: Any) -> str:
    """The Spark split string that carves ``rule``'s validation part from a training part."""
    if rule.strategy == "last":
        return f"last:{rule.fraction}" + (":row" if rule.by == "row" else "")
    if rule.strategy == "temporal":
        return f"temporal:{rule.fraction}"
    if rule.strategy == "user-random":
        return f"user-random:{1 - rule.fraction:g}/{rule.fraction:g}"
    return f"random:{rule.fraction}"


def fit_with_validation(
    als: SparkALS, train: Any, *, split: str, seed: int
) -> tuple[Any, dict[str, Any]]:
    """Fit as ``lensrec evaluate`` fits ALS (:func:`lensrec.models._validation.fit_with_validation`):
    a validation part carved from ``train`` by the rule that mirrors ``split``, early
    stopping on its NDCG@10, then a refit on all of ``train`` for the chosen epochs. Spark
    ML's engine has no per-epoch hook: it runs ``epochs`` and says so."""
    from dataclasses import replace

    from ..models._validation import validation_rule

    if als.engine_ != "lensrec":
        return als.fit(train), {"validation": "none (Spark ML's engine runs every epoch)"}
    rule = validation_rule(split, "timestamp" in train.columns)
    carved = _data.make_split(train, _carve_spec(rule), seed=seed)
    valid = carved.test.select("user", "item").persist()
    n_valid = valid.count()
    if n_valid == 0:
        fitted = als.fit(train)
        return fitted, {"validation": rule.describe(), "valid_rows": 0,
                        "epochs_chosen": int(als.epochs), "refit": False}  # fmt: skip
    first = als.fit(carved.train, universe=train, valid=valid)
    valid.unpersist()
    chosen = max(int(first.best_epoch_), 1)
    refit = replace(als, epochs=chosen)
    fitted = refit.fit(train)
    fitted.validation_history_ = first.history_
    als.spark_params_ = {**refit.spark_params(), "epochs": als.epochs}
    return fitted, {"validation": rule.describe(), "valid_rows": n_valid,
                    "epochs_chosen": chosen, "refit": True}  # fmt: skip


def spark_evaluate(
    spark: Any,
    dataset: str,
    *,
    split: str = "last:3",
    model: str = "als",
    params: dict[str, Any] | None = None,
    k: list[int] | None = None,
    metrics: list[str] | None = None,
    min_rating: float | None = None,
    kcore: int | None = None,
    relevance_threshold: float | None = None,
    seed: int = 42,
    columns: dict[str, Any] | None = None,
    topk_out: str | None = None,
    topk_k: int | None = None,
) -> SparkEvalResult:
    """Read ``dataset`` (a Parquet or CSV path Spark can read), filter, split, fit ``model``
    (``als``: implicit ALS; ``als-explicit``: rating ALS, also scored by RMSE), recommend
    top-k for every test user with the training items excluded, and score the lists with
    :mod:`lensrec.spark.metrics`. ``topk_out`` also writes every training user's top
    ``topk_k`` (default: the largest k) to Parquet, or, for a ``redis://`` address, to Redis
    from the executors in the serving store's encoding (:mod:`lensrec.spark.redis_export`).
    """
    if model not in MODELS:
        raise ConfigError(
            f"Spark model {model!r} is not available; choose from {', '.join(MODELS)}"
        )
    ks = sorted(set(k or [10]))
    seconds: dict[str, float] = {}
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        seconds[name] = now - t
        t = now

    df = _data.read_interactions(spark, dataset, **(columns or {}))
    if min_rating is not None:
        df = _data.min_rating(df, min_rating)
    if kcore:
        df = _data.kcore(df, kcore)
    df = df.persist()
    n_rows = df.count()
    if n_rows == 0:
        raise ConfigError(f"{dataset}: no rows left after the filters")
    lap("read")
    parts = _data.make_split(df, split, seed=seed)
    train, test = parts.train.persist(), parts.test.persist()
    counts = {"rows": n_rows, "train": train.count(), "test": test.count()}
    if counts["test"] == 0:
        raise ConfigError(f"split {split!r} left no test rows that can be scored")
    lap("split")
    params = {"random_state": seed, **(params or {})}
    als = SparkALS.from_params(params, explicit=(model == "als-explicit"))
    fitted, validation = fit_with_validation(als, train, split=split, seed=seed)
    fitted.userFactors.persist().count()
    lap("fit")
    ranking, cover, rating_names = _metric_specs(
        metrics, ks, "rating" in df.columns and als.explicit
    )
    k_max = max([kk for _, kk in ranking] + cover + [1])
    test_users = test.select("user").distinct()
    recs = recommend_all(fitted, train.select("user", "item"), k_max, users=test_users).persist()
    recs.count()
    lap("top-k")
    out: dict[str, float] = {}
    means, per_user = _metrics.ranking_metrics(
        recs, test, ranking, relevance_threshold=relevance_threshold
    )
    out.update(means)
    counts["test_users"] = per_user.count() if per_user is not None else 0
    n_items = train.select("item").distinct().count()
    for kk in cover:
        out[f"coverage@{kk}"] = _metrics.coverage(recs, n_items, kk)
    if rating_names:
        pred = fitted.transform(test).select("rating", "prediction")
        rm = _metrics.rating_metrics(pred)
        out.update({name: rm[name] for name in rating_names})
    lap("metrics")
    path = None
    if topk_out:
        all_recs = recommend_all(fitted, train.select("user", "item"), topk_k or k_max)
        if topk_out.startswith(("redis://", "rediss://")):
            from .redis_export import export_redis_spark

            done = export_redis_spark(all_recs, train, topk_out, k=topk_k or k_max)
            path = f"{topk_out} (version {done['version']}, {done['n_users']:,} users)"
        else:
            path = write_topk_parquet(all_recs, df, topk_out)
        lap("export")
    return SparkEvalResult(out, counts, seconds, als.spark_params(), parts.name, path, validation)


def write_topk_parquet(recs: Any, ids: Any, path: str) -> str:
    """Write top-K lists with external ids to Parquet: ``user_id``, ``rank`` (1-based),
    ``item_id``, ``score``, one row per recommendation (sorted by user, rank inside each
    part). ``ids`` is any frame with ``user``/``user_id`` and ``item``/``item_id``. The
    output appears at ``path`` only when complete (written beside it, then renamed)."""
    from pyspark.sql import functions as F

    spark = recs.sparkSession
    users = ids.select("user", "user_id").distinct()
    items = ids.select("item", "item_id").distinct()
    long = (
        recs.select("user", F.posexplode(F.arrays_zip("items", "scores")).alias("pos", "p"))
        .select(
            "user",
            (F.col("pos") + 1).alias("rank"),
            F.col("p.items").alias("item"),
            F.col("p.scores").alias("score"),
        )
        .join(F.broadcast(items), "item")
        .join(users, "user")
        .select("user_id", "rank", "item_id", "score")
        .sortWithinPartitions("user_id", "rank")
    )
    tmp = f"{path.rstrip('/')}.tmp-{uuid.uuid4().hex[:8]}"
    long.write.mode("overwrite").parquet(tmp)
    jvm = spark._jvm
    conf = spark._jsc.hadoopConfiguration()
    src, dst = jvm.org.apache.hadoop.fs.Path(tmp), jvm.org.apache.hadoop.fs.Path(path)
    fs = dst.getFileSystem(conf)
    if fs.exists(dst):
        fs.delete(dst, True)
    if not fs.rename(src, dst):
        raise ConfigError(f"{path}: could not move the finished output into place (from {tmp})")
    return path
