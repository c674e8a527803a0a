"""The Redis layout of an export, and the connection helpers the writer and the reader share.

Keys under a prefix ``P`` (default ``lr``; short keys are smaller keys)::

    P:seq                 the last version number handed out (INCR)
    P:current             the version readers serve (the pointer, flipped last)
    P:lock                held by the export writing a version (:class:`ExportLock`)
    P:V:meta              JSON: format version, K, sizes, id kinds, index width, model
    P:V:items             the item index -> external id table (encoding.pack_ids)
    P:V:titles            JSON array of titles (when the model has them)
    P:V:counts            uint32 training interactions per item index
    P:V:popular           the popularity fallback list (encoding.pack_list)
    P:V:u:<user key>      one user's top-K (encoding.pack_list; user key: encoding.user_key)
    P:V:i:<item index>    one item's most similar items (models that have a similarity)

Every key of version ``V`` starts with ``P:V:``, so the keys of any version but the current
one (a superseded export, or one killed midway) are found by one SCAN and removed.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from typing import Any

from ..errors import ConfigError, LensrecError, MissingExtraError

__all__ = [
    "Layout",
    "ExportLock",
    "ExportInProgress",
    "connect",
    "RedisUnavailable",
    "stale_versions_cleanup",
    "redis_errors",
    "ping",
    "current_version",
    "STORE_FORMAT",
    "STORE_FORMAT_VERSION",
]

STORE_FORMAT = "lensrec-redis"
STORE_FORMAT_VERSION = 1


class RedisUnavailable(LensrecError):
    """Redis cannot be reached (or timed out); the server answers 503 with this message."""


def _redis_module() -> Any:
    try:
        import redis
    except ImportError:  # pragma: no cover - the extra is in dev
        raise MissingExtraError("Redis export and serving", "serve", "redis") from None
    return redis


def redis_errors() -> tuple[type[BaseException], ...]:
    """The redis-py exceptions meaning "Redis is not there right now"."""
    redis = _redis_module()
    return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class Layout:
    """Key names of a prefix (see the module docstring)."""

    def __init__(self, prefix: str = "lr"):
        if not prefix or any(c in prefix for c in " \n\r*?[]"):
            raise ConfigError(
                f"Redis key prefix must be non-empty without spaces or globs: {prefix!r}"
            )
        self.prefix = prefix
        self.p = prefix.encode()
        self.seq = self.p + b":seq"
        self.current = self.p + b":current"
        self.lock = self.p + b":lock"

    def base(self, version: int | bytes | str) -> bytes:
        v = version if isinstance(version, bytes) else str(version).encode()
        return self.p + b":" + v + b":"

    def key(self, version: int | bytes | str, name: str) -> bytes:
        return self.base(version) + name.encode()

    def user(self, version: int | bytes | str, ukey: bytes) -> bytes:
        return self.base(version) + b"u:" + ukey

    def item(self, version: int | bytes | str, index: int) -> bytes:
        return self.base(version) + b"i:" + str(int(index)).encode()

    def version_of(self, key: bytes) -> int | None:
        """The version a key belongs to, or None for ``seq`` / ``current`` / foreign keys."""
        if not key.startswith(self.p + b":"):
            return None
        part = key[len(self.p) + 1 :].split(b":", 1)
        if len(part) != 2 or not part[0].isdigit():
            return None
        return int(part[0])


def connect(url: str, *, timeout: float = 2.0) -> Any:
    """A redis-py client for ``redis://HOST:PORT/DB`` (bytes replies, bounded timeouts)."""
    redis = _redis_module()
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"a Redis address looks like redis://127.0.0.1:6379/0, got {url!r}")
    try:
        return redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry_on_timeout=False,
            decode_responses=False,
        )
    except ValueError as exc:
        raise ConfigError(f"bad Redis address {url!r}: {exc}") from None


def ping(client: Any, url: str) -> None:
    """Raise :class:`RedisUnavailable` naming ``url`` when Redis does not answer."""
    try:
        client.ping()
    except redis_errors() as exc:
        raise RedisUnavailable(f"Redis at {url} is unreachable: {exc}") from None


def stale_versions_cleanup(client: Any, layout: Layout, keep: set[int]) -> int:
    """UNLINK every key of a version not in ``keep``; returns how many keys went."""
    removed = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=layout.p + b":*", count=2000):
        v = layout.version_of(key)
        if v is None or v in keep:
            continue
        batch.append(key)
        if len(batch) >= 2000:
            removed += int(client.unlink(*batch))
            batch = []
    if batch:
        removed += int(client.unlink(*batch))
    return removed


def current_version(client: Any, layout: Layout) -> int | None:
    raw = client.get(layout.current)
    return None if raw is None else int(raw)


class ExportInProgress(LensrecError):
    """Another export holds this prefix's lock (or this one lost it): nothing was published."""


# renew the lock only while this process still holds it; flip the pointer likewise
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_FLIP = "if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('set', KEYS[2], ARGV[2]) return 1 end return 0"
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


class ExportLock:
    """One export per prefix at a time.

    Two exports to one prefix would break each other: each one's first step removes the keys
    of every version but the current one, the other's unfinished version among them. The
    export takes ``P:lock`` (SET NX with a ``ttl``-second expiry, its value naming the host,
    process and start), a thread renews the expiry every ``ttl / 5`` seconds while the
    export runs, and the pointer flip happens only if the lock is still this export's (one
    Lua script). A second export waits up to ``wait`` seconds (a killed export's lock has
    expired by then), then raises :class:`ExportInProgress` naming the holder.
    """

    def __init__(self, client: Any, layout: Layout, url: str, *, ttl: float = 5.0,
                 wait: float | None = None):  # fmt: skip
        self.client, self.layout, self.url = client, layout, url
        self.ttl_ms = max(100, int(ttl * 1000))
        self.wait = ttl + 1.0 if wait is None else float(wait)
        self.token = (f"{socket.gethostname()} pid {os.getpid()} since "
                      f"{time.strftime('%H:%M:%S UTC', time.gmtime())} "
                      f"{uuid.uuid4().hex[:8]}").encode()  # fmt: skip
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    def __enter__(self) -> ExportLock:
        deadline = time.monotonic() + self.wait
        try:
            while not self.client.set(self.layout.lock, self.token, nx=True, px=self.ttl_ms):
                if time.monotonic() >= deadline:
                    holder = self.client.get(self.layout.lock)
                    who = holder.decode(errors="replace") if holder else "just released"
                    raise ExportInProgress(
                        f"another export to Redis prefix {self.layout.prefix!r} at {self.url} "
                        f"is running ({who}); wait for it to finish, or export under another "
                        "--prefix"
                    )
                time.sleep(0.1)
        except redis_errors() as exc:
            raise RedisUnavailable(f"Redis at {self.url} failed during the export: {exc}") from None
        self._thread = threading.Thread(target=self._renew, name="lensrec-export-lock",
                                        daemon=True)  # fmt: skip
        self._thread.start()
        return self

    def _renew(self) -> None:
        script = self.client.register_script(_RENEW)
        while not self._stop.wait(self.ttl_ms / 5000):
            try:
                if not script(keys=[self.layout.lock], args=[self.token, self.ttl_ms]):
                    self.lost = True
                    return
            except redis_errors():  # the export itself meets the outage and says so
                continue

    def flip(self, version: int) -> None:
        """Point readers at ``version``, if this export still holds the lock."""
        script = self.client.register_script(_FLIP)
        if self.lost or not script(keys=[self.layout.lock, self.layout.current],
                                   args=[self.token, str(version)]):  # fmt: skip
            raise ExportInProgress(
                f"the export to Redis prefix {self.layout.prefix!r} at {self.url} lost its lock "
                f"(Redis stalled for over {self.ttl_ms / 1000:g} s?); version {version} was "
                "written but not published, and the next export removes it"
            )

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.client.register_script(_RELEASE)(keys=[self.layout.lock], args=[self.token])
        except redis_errors():  # expires on its own within ttl
            pass
