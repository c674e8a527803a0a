"""Export every user's top-K: to Redis (atomically published versions) or to Parquet.

The lists come from the retrieval layer (:func:`lensrec.retrieval.precompute` over blocks of
users, seen items excluded), the popularity fallback from the model's own fallback chain, and
the id tables from the model's IdMaps; nothing here ranks by itself.

Publishing to Redis (see :mod:`lensrec.serving._redis` for the keys):

0. take the prefix's lock (:class:`~lensrec.serving._redis.ExportLock`): one export per
   prefix at a time; a second one waits a few seconds, then says who holds it;
1. remove the keys of any version that is not the current one (an export killed midway);
2. take a new version number (``INCR P:seq``);
3. write every list, the id tables and the meta of that version with pipelining;
4. flip ``P:current`` to the new version (one SET, done only while the lock is still this
   export's: readers see the old set or the new one);
5. remove the old version's keys, and release the lock.

An export killed before step 4 leaves the previous version serving; its lock expires within
seconds and its partial keys are removed by step 1 of the next export.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write, dumps
from ..errors import ConfigError
from ..retrieval import precompute
from ..retrieval.ids import training_counts
from . import _redis
from .encoding import (
    FORMAT_VERSION,
    id_kind,
    index_width,
    pack_ids,
    pack_list,
    pack_lists,
    user_keys,
)

__all__ = ["ExportSummary", "export_redis", "export_parquet", "user_blocks", "popular_list"]

_log = logging.getLogger(__name__)

#: users per retrieval block (and per pipeline flush)
BLOCK_USERS = 2048


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote."""

    target: str
    version: int | None
    n_users: int
    n_items: int
    k: int
    n_similar: int
    bytes_written: int
    stale_keys_removed: int
    seconds: float

    def text(self) -> str:
        ver = f" version {self.version}" if self.version is not None else ""
        sim = f", {self.n_similar} similar-item lists" if self.n_similar else ""
        stale = (
            f"; removed {self.stale_keys_removed} keys of an unfinished or old export"
            if self.stale_keys_removed
            else ""
        )
        return (
            f"exported top-{self.k} of {self.n_users} users{sim} to {self.target}{ver} "
            f"({self.bytes_written / max(self.n_users, 1):.0f} bytes per user list, "
            f"{self.seconds:.1f}s){stale}"
        )


def _check_model(model: Any, k: int) -> int:
    if getattr(model, "user_items_", None) is None:
        raise ConfigError(
            "the model file holds no training interactions, so seen items cannot be excluded; "
            "retrain it with this lensrec"
        )
    k = int(k)
    if not 1 <= k < 1 << 16:
        raise ConfigError(f"-k must be between 1 and 65535, got {k}")
    return min(k, model.n_items)


def user_blocks(
    model: Any, k: int, block: int = BLOCK_USERS
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(user indices, ids [n, k], scores [n, k])`` per block of users, through
    :func:`~lensrec.retrieval.precompute` (seen items excluded)."""
    for start in range(0, model.n_users, block):
        users = np.arange(start, min(start + block, model.n_users), dtype=np.int32)
        lists = precompute(model, k, users=users)
        yield users, lists.ids, lists.scores


def popular_list(model: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The popularity fallback's top-``k`` (what a user the model never saw gets)."""
    rec = model.recommend(None, k, history=[np.zeros(0, dtype=np.int32)])
    ids, scores = rec[0][0], rec[1][0]
    keep = ids >= 0
    return ids[keep], scores[keep]


def _similar_blocks(
    model: Any, k: int, block: int = 1024
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    for start in range(0, model.n_items, block):
        items = np.arange(start, min(start + block, model.n_items), dtype=np.int32)
        ids, scores = model.similar_items(items, min(k, max(model.n_items - 1, 1)))
        yield items, ids, scores


def _has_similar(model: Any) -> bool:
    return bool(type(model).capabilities.similar_items) and model.n_items > 1


def export_redis(
    model: Any,
    url: str,
    *,
    k: int = 100,
    prefix: str = "lr",
    scores: bool = False,
    similar: bool = True,
    client: Any = None,
    on_batch: Callable[[int, int], None] | None = None,
    lock_wait: float | None = None,
) -> ExportSummary:
    """Publish every user's top-``k`` (and each item's similar items) to Redis as a new
    version, atomically (see the module docstring).

    Parameters
    ----------
    model : Recommender
        A fitted model that holds its training interactions (to exclude seen items).
    url : str
        ``redis://HOST:PORT/DB``.
    k : int
        List length stored (the most a reader can ask for).
    prefix : str
        Key prefix; several exports can live side by side under different prefixes.
    scores : bool
        Also store float16 scores (twice the bytes per list).
    similar : bool
        Also store each item's most similar items when the model has a similarity.
    on_batch : callable, optional
        Called as ``on_batch(users_done, n_users)`` after each block is written (progress;
        tests use it to interrupt an export midway).
    lock_wait : float, optional
        Seconds to wait for another export of this prefix to finish (default: the lock's
        expiry and a second, by when a killed export's lock is gone).

    Raises
    ------
    RedisUnavailable
        Redis cannot be reached.
    ExportInProgress
        Another export of this prefix is running (nothing was written).
    """
    t0 = time.perf_counter()
    k = _check_model(model, k)
    layout = _redis.Layout(prefix)
    r = client if client is not None else _redis.connect(url, timeout=30.0)
    _redis.ping(r, url)
    try:
        with _redis.ExportLock(r, layout, url, wait=lock_wait) as lock:
            return _publish(model, r, layout, url, k, scores, similar, on_batch, lock, t0)
    except _redis.redis_errors() as exc:
        raise _redis.RedisUnavailable(f"Redis at {url} failed during the export: {exc}") from None


def _publish(
    model: Any,
    r: Any,
    layout: Any,
    url: str,
    k: int,
    scores: bool,
    similar: bool,
    on_batch: Callable[[int, int], None] | None,
    lock: Any,
    t0: float,
) -> ExportSummary:
    """Steps 1-5 of the module docstring, under the prefix's lock."""
    current = _redis.current_version(r, layout)
    stale = _redis.stale_versions_cleanup(r, layout, keep={current} if current else set())
    version = int(r.incr(layout.seq))
    width = index_width(model.n_items)
    ukind = id_kind(model.user_ids_.ids)
    ikind = id_kind(model.item_ids_.ids)
    written = 0
    done = 0
    for users, ids, sc in user_blocks(model, k):
        blobs = pack_lists(ids, sc if scores else None, width)
        keys = user_keys(model.user_ids_.external(users), ukind)
        pipe = r.pipeline(transaction=False)
        for key, blob in zip(keys, blobs, strict=True):
            pipe.set(layout.user(version, key), blob)
            written += len(blob)
        pipe.execute()
        done += users.size
        if on_batch is not None:
            on_batch(done, model.n_users)
    n_similar = 0
    if similar and _has_similar(model):
        for items, ids, sc in _similar_blocks(model, k):
            pipe = r.pipeline(transaction=False)
            for j, blob in zip(
                items.tolist(), pack_lists(ids, sc if scores else None, width), strict=True
            ):
                pipe.set(layout.item(version, j), blob)
            pipe.execute()
            n_similar += items.size
    pop_ids, pop_scores = popular_list(model, k)
    counts = training_counts(model)
    titles = getattr(model, "item_titles_", None)
    pipe = r.pipeline(transaction=False)
    pipe.set(layout.key(version, "items"), pack_ids(model.item_ids_.ids, ikind))
    pipe.set(layout.key(version, "popular"), pack_list(pop_ids, pop_scores, width))
    if counts is not None:
        pipe.set(layout.key(version, "counts"), np.asarray(counts, dtype="<u4").tobytes())
    if titles is not None:
        pipe.set(layout.key(version, "titles"), dumps([str(t) for t in titles], indent=None))
    caps = type(model).capabilities
    meta = {
        "format": _redis.STORE_FORMAT,
        "format_version": _redis.STORE_FORMAT_VERSION,
        "list_format_version": FORMAT_VERSION,
        "k": k,
        "n_users": model.n_users,
        "n_items": model.n_items,
        "index_width": width,
        "scores": bool(scores),
        "score_name": "predicted" if caps.predicts_ratings else "score",
        "user_kind": ukind,
        "item_kind": ikind,
        "similar": n_similar > 0,
        "model": type(model).__name__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    pipe.set(layout.key(version, "meta"), dumps(meta, indent=None))
    pipe.execute()
    lock.flip(version)  # readers now see the new version
    stale += _redis.stale_versions_cleanup(r, layout, keep={version})
    return ExportSummary(
        target=url,
        version=version,
        n_users=model.n_users,
        n_items=model.n_items,
        k=k,
        n_similar=n_similar,
        bytes_written=written,
        stale_keys_removed=stale,
        seconds=time.perf_counter() - t0,
    )


def export_parquet(model: Any, path: str | Path, *, k: int = 100) -> ExportSummary:
    """Every user's top-``k`` as one Parquet file (long format: ``user``, ``rank``,
    ``item``, ``score``; external ids), written atomically."""
    import polars as pl

    t0 = time.perf_counter()
    k = _check_model(model, k)
    parts = []
    for users, ids, sc in user_blocks(model, k):
        keep = ids >= 0
        rows, cols = np.nonzero(keep)
        parts.append(
            pl.DataFrame(
                {
                    "user": model.user_ids_.external(users[rows]),
                    "rank": (cols + 1).astype(np.int32),
                    "item": model.item_ids_.external(ids[rows, cols]),
                    "score": sc[rows, cols].astype(np.float32),
                }
            )
        )
    frame = pl.concat(parts) if parts else pl.DataFrame()
    atomic_write(path, lambda tmp: frame.write_parquet(tmp), what="the Parquet export")
    return ExportSummary(
        target=str(path),
        version=None,
        n_users=model.n_users,
        n_items=model.n_items,
        k=k,
        n_similar=0,
        bytes_written=Path(path).stat().st_size,
        stale_keys_removed=0,
        seconds=time.perf_counter() - t0,
    )
