"""Top-K lists from Spark to Redis, written by the executors, in the serving store's
encoding (:mod:`lensrec.serving.encoding`, keys of :mod:`lensrec.serving._redis`): a
:class:`lensrec.serving.RedisBackend` (``lensrec serve --redis``) reads them as it reads
``lensrec export``'s.

The driver does what must happen once and in order, as :func:`lensrec.serving.export_redis`
does: remove an unfinished version's keys, take a new version number, and, after every
executor has written its users' lists, write the item id table, the training counts, the
popularity fallback and the meta, then flip ``P:current`` (readers see the old lists or the
new ones, never a mix) and remove the old version. An export killed before the flip leaves
the previous version serving. Item indices in the lists are dense positions in the item
table the driver writes (Spark's own indices need not be dense).
"""

from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np

from ..errors import ConfigError
from ._session import require_pyspark

__all__ = ["export_redis_spark"]


def _kind(frame: Any, column: str) -> Literal["int", "uuid", "str"]:
    """The serving id kind of a column: int, uuid (every value canonical) or str."""
    from pyspark.sql import functions as F

    from ..serving.encoding import _UUID_RE

    dtype = dict(frame.dtypes)[column]
    if dtype in ("int", "bigint", "smallint", "tinyint"):
        return "int"
    bad = frame.filter(~F.col(column).cast("string").rlike(_UUID_RE)).limit(1).count()
    return "str" if bad else "uuid"


def export_redis_spark(
    recs: Any,
    interactions: Any,
    url: str,
    *,
    k: int = 100,
    prefix: str = "lr",
    scores: bool = False,
    pipeline_rows: int = 2048,
) -> dict[str, Any]:
    """Publish ``recs`` (``user``, ``items``, ``scores`` as :func:`~lensrec.spark.recommend_all`
    gives them) to Redis at ``url`` as a new version of ``prefix``.

    ``interactions`` is the training frame (``user``, ``user_id``, ``item``, ``item_id``):
    it gives the id tables, each item's training count and the popularity fallback. Each
    executor connects to ``url`` itself, so the address must be reachable from the
    executors. Returns a summary (version, users, bytes written, seconds).
    """
    require_pyspark()
    from pyspark.sql import functions as F

    from ..serving import _redis
    from ..serving.encoding import FORMAT_VERSION, index_width, pack_ids, pack_list

    t0 = time.perf_counter()
    k = int(k)
    if not 1 <= k < 1 << 16:
        raise ConfigError(f"k must be between 1 and 65535, got {k}")
    layout = _redis.Layout(prefix)
    counted = interactions.groupBy("item", "item_id").agg(F.count("*").alias("n"))
    rows = counted.orderBy("item").collect()
    item_index = np.asarray([r["item"] for r in rows], dtype=np.int64)
    item_ids = np.asarray([r["item_id"] for r in rows])
    counts = np.asarray([r["n"] for r in rows], dtype=np.int64)
    n_items = item_index.size
    if n_items == 0:
        raise ConfigError("no training interactions to export")
    dense = np.full(int(item_index.max()) + 1, -1, dtype=np.int64)
    dense[item_index] = np.arange(n_items)
    width = index_width(n_items)
    ukind, ikind = _kind(interactions, "user_id"), _kind(interactions, "item_id")
    k = min(k, n_items)

    r = _redis.connect(url, timeout=30.0)
    _redis.ping(r, url)
    with _redis.ExportLock(r, layout, url) as lock:  # one export per prefix, as lensrec's own
        try:
            current = _redis.current_version(r, layout)
            stale = _redis.stale_versions_cleanup(r, layout, keep={current} if current else set())
            version = int(r.incr(layout.seq))
        except _redis.redis_errors() as exc:
            raise _redis.RedisUnavailable(
                f"Redis at {url} failed during the export: {exc}"
            ) from None

        spark = recs.sparkSession
        bc = spark.sparkContext.broadcast(dense)
        users = interactions.select("user", "user_id").distinct()
        frame = recs.join(users, "user").select("user_id", "items", "scores")

        def write(part: Any) -> Any:
            from lensrec.serving import _redis as redis_keys
            from lensrec.serving.encoding import pack_lists, user_keys

            client = redis_keys.connect(url, timeout=30.0)
            lay = redis_keys.Layout(prefix)
            table = bc.value
            written = n = 0
            chunk: list[Any] = []

            def flush(rows: list[Any]) -> int:
                ids = np.full((len(rows), k), -1, dtype=np.int64)
                sc = np.zeros((len(rows), k), dtype=np.float32)
                for j, row in enumerate(rows):
                    got = np.asarray(row["items"][:k], dtype=np.int64)
                    ids[j, : got.size] = table[got]
                    sc[j, : got.size] = row["scores"][:k]
                blobs = pack_lists(ids, sc if scores else None, width)
                keys = user_keys(np.asarray([row["user_id"] for row in rows]), ukind)
                pipe = client.pipeline(transaction=False)
                size = 0
                for key, blob in zip(keys, blobs, strict=True):
                    pipe.set(lay.user(version, key), blob)
                    size += len(blob)
                pipe.execute()
                return size

            for row in part:
                chunk.append(row)
                if len(chunk) >= pipeline_rows:
                    written += flush(chunk)
                    n += len(chunk)
                    chunk = []
            if chunk:
                written += flush(chunk)
                n += len(chunk)
            client.close()
            yield (n, written)

        done = frame.rdd.mapPartitions(write).collect()
        n_users = sum(a for a, _ in done)
        written = sum(b for _, b in done)
        order = np.lexsort((np.arange(n_items), -counts))[:k]
        meta = {
            "format": _redis.STORE_FORMAT,
            "format_version": _redis.STORE_FORMAT_VERSION,
            "list_format_version": FORMAT_VERSION,
            "k": k,
            "n_users": n_users,
            "n_items": n_items,
            "index_width": width,
            "scores": bool(scores),
            "score_name": "score",
            "user_kind": ukind,
            "item_kind": ikind,
            "similar": False,
            "model": "SparkALS",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        from .._io import dumps

        try:
            pipe = r.pipeline(transaction=False)
            pipe.set(layout.key(version, "items"), pack_ids(item_ids, ikind))
            pipe.set(
                layout.key(version, "popular"),
                pack_list(order, counts[order].astype(np.float32), width),
            )
            pipe.set(layout.key(version, "counts"), counts.astype("<u4").tobytes())
            pipe.set(layout.key(version, "meta"), dumps(meta, indent=None))
            pipe.execute()
            lock.flip(version)  # the flip, while the lock is still this export's
            stale += _redis.stale_versions_cleanup(r, layout, keep={version})
        except _redis.redis_errors() as exc:
            raise _redis.RedisUnavailable(
                f"Redis at {url} failed during the export: {exc}"
            ) from None
        finally:
            bc.unpersist()
        return {
            "target": url,
            "version": version,
            "n_users": n_users,
            "n_items": n_items,
            "k": k,
            "bytes_written": written,
            "stale_keys_removed": stale,
            "seconds": time.perf_counter() - t0,
        }
