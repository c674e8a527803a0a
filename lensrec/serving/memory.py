"""The memory report: the same top-K lists in Redis in several encodings, by Redis's accounting.

Encodings compared, each under its own key prefix with keys of the same shape
(``P:N:u:<user key>``), so only the values differ:

1. a Redis list of item UUID strings (36 characters each): the common recipe;
2. a Redis list of 16-byte raw UUIDs;
3. lensrec's packed string (uint16 / uint32 item indices, :mod:`.encoding`), what
   :func:`~lensrec.serving.export.export_redis` writes;
4. the packed string with float16 scores (``--scores``).

Items whose ids are not UUIDs get a name-based UUID (uuid5 of the id) for encodings 1-2, as
an application keying items by UUID would hold them. Bytes per user are measured twice:
the sum of ``MEMORY USAGE key SAMPLES 0`` over every user key, and the growth of
``INFO memory``'s ``used_memory`` while the keys were written; both divided by the users.
The keys are removed afterwards.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from . import _redis
from .encoding import id_kind, index_width, pack_lists, user_keys
from .export import _check_model, user_blocks

__all__ = ["MemoryRow", "MemoryReport", "memory_report"]

_NS = uuid.UUID("6f1c2d6e-4f53-4a9e-9a57-6c656e737265")


@dataclass(frozen=True)
class MemoryRow:
    encoding: str
    memory_usage_per_user: float
    used_memory_per_user: float
    value_bytes_per_user: float


@dataclass(frozen=True)
class MemoryReport:
    n_users: int
    k: int
    n_items: int
    redis_version: str
    rows: list[MemoryRow]

    def text(self) -> str:
        head = (
            f"top-{self.k} lists of {self.n_users} users over {self.n_items} items, "
            f"Redis {self.redis_version}; bytes per user"
        )
        lines = [
            head,
            f"  {'encoding':<42} {'MEMORY USAGE':>12} {'used_memory':>12} {'value':>8} {'KB (MU)':>8}",
        ]
        for r in self.rows:
            lines.append(
                f"  {r.encoding:<42} {r.memory_usage_per_user:>12.1f} "
                f"{r.used_memory_per_user:>12.1f} {r.value_bytes_per_user:>8.1f} "
                f"{r.memory_usage_per_user / 1024:>8.3f}"
            )
        return "\n".join(lines)


def _item_uuids(model: Any) -> list[bytes]:
    ids = model.item_ids_.ids
    if id_kind(ids) == "uuid":
        return [uuid.UUID(v).bytes for v in ids.tolist()]
    return [uuid.uuid5(_NS, str(v)).bytes for v in ids.tolist()]


def memory_report(
    model: Any, url: str, *, k: int = 100, prefix: str = "lrmem", client: Any = None
) -> MemoryReport:
    """Load every user's top-``k`` into Redis in each encoding and measure (see module doc)."""
    k = _check_model(model, k)
    r = client if client is not None else _redis.connect(url, timeout=30.0)
    _redis.ping(r, url)
    raw_uuids = _item_uuids(model)
    str_uuids = [str(uuid.UUID(bytes=b)).encode() for b in raw_uuids]
    width = index_width(model.n_items)
    ukind = id_kind(model.user_ids_.ids)
    names = [
        "list of UUID strings",
        "list of 16-byte UUIDs",
        f"lensrec packed (uint{8 * width})",
        f"lensrec packed (uint{8 * width}) + float16 scores",
    ]
    rows = []
    layout = _redis.Layout(prefix)
    try:
        _redis.stale_versions_cleanup(r, layout, keep=set())
        for n, name in enumerate(names, start=1):
            r.execute_command("MEMORY", "PURGE")
            time.sleep(0.05)
            before = int(r.info("memory")["used_memory"])
            keys: list[bytes] = []
            value_bytes = 0
            for users, ids, sc in user_blocks(model, k):
                ukeys = [
                    layout.user(n, u) for u in user_keys(model.user_ids_.external(users), ukind)
                ]
                pipe = r.pipeline(transaction=False)
                if n <= 2:
                    table = str_uuids if n == 1 else raw_uuids
                    for key, row in zip(ukeys, ids, strict=True):
                        values = [table[j] for j in row[row >= 0].tolist()]
                        value_bytes += sum(map(len, values))
                        if values:
                            pipe.rpush(key, *values)
                else:
                    for key, blob in zip(
                        ukeys, pack_lists(ids, sc if n == 4 else None, width), strict=True
                    ):
                        value_bytes += len(blob)
                        pipe.set(key, blob)
                pipe.execute()
                keys += ukeys
            after = int(r.info("memory")["used_memory"])
            usage = 0
            for start in range(0, len(keys), 1000):
                pipe = r.pipeline(transaction=False)
                for key in keys[start : start + 1000]:
                    pipe.execute_command("MEMORY", "USAGE", key, "SAMPLES", "0")
                usage += sum(int(v or 0) for v in pipe.execute())
            nu = max(model.n_users, 1)
            rows.append(MemoryRow(name, usage / nu, (after - before) / nu, value_bytes / nu))
            _redis.stale_versions_cleanup(r, layout, keep=set())
        version = str(r.info("server").get("redis_version", "?"))
    except _redis.redis_errors() as exc:
        raise _redis.RedisUnavailable(
            f"Redis at {url} failed during the memory report: {exc}"
        ) from None
    return MemoryReport(model.n_users, k, model.n_items, version, rows)
