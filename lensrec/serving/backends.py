"""Where the server's answers come from: a model file (embedded) or an export in Redis.

Both answer with :class:`lensrec.retrieval.ItemList` (external ids, scores, titles, training
counts, the fallback flag and reason), so the HTTP layer shapes one kind of answer:

- :class:`EmbeddedBackend` asks the model through :mod:`lensrec.retrieval.ids` (the same
  calls as ``lensrec recommend`` / ``similar``), no Redis needed;
- :class:`RedisBackend` reads the lists an export published (one round trip per query: a
  Lua script reads the version pointer and the list together, so a reader never mixes two
  versions), picks up a new version on the next query, and turns a Redis outage into
  :class:`~lensrec.serving._redis.RedisUnavailable` (HTTP 503) within its socket timeout.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.ids import IdMap
from ..errors import ConfigError, ModelFormatError, UnknownIdError
from ..retrieval.ids import MAX_UNKNOWN_SHOWN, ItemList, recommend_history, recommend_user, similar
from . import _redis
from .encoding import IdKind, id_kind, parse_id, unpack_ids, unpack_list, user_key

__all__ = ["EmbeddedBackend", "RedisBackend", "NoSimilarityError", "FALLBACK_NO_MODEL"]

_log = logging.getLogger(__name__)

FALLBACK_NO_MODEL = "no model loaded to fold in a history (serve with the model file)"


class NoSimilarityError(ConfigError):
    """The model (or the export) has no item-item similarity."""


def _coerce(raw: Any, kind: IdKind, what: str) -> Any:
    if kind == "str" and isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    return parse_id(raw, kind, what)


def _warm_queries(model: Any) -> None:
    """Answer one query of each kind on load, so the first request does not compile the
    query kernels (a fold-in's solver can take seconds on a first run; numba caches it)."""
    from ..errors import LensrecError

    try:
        if model.n_users:
            model.recommend([0], 1)
        if type(model).capabilities.folds_in and model.n_items:
            model.recommend_for_history([0], k=1)
    except (LensrecError, NotImplementedError) as exc:  # no such query: nothing to warm
        _log.debug("serving: query warm-up skipped: %s", exc)


class EmbeddedBackend:
    """Answers straight from a model file, in this process (no Redis).

    ``max_k`` caps ``k`` (default 100, at most the catalogue).
    """

    kind = "embedded"

    def __init__(self, model_file: str | Path, *, max_k: int = 100):
        self.model_file = str(model_file)
        self._max_k = int(max_k)
        self._load()

    def _load(self) -> None:
        from ..models import load

        model = load(self.model_file)
        self.model = model
        self.user_kind: IdKind = id_kind(model.user_ids_.ids)
        self.item_kind: IdKind = id_kind(model.item_ids_.ids)
        _warm_queries(model)

    @property
    def max_k(self) -> int:
        return max(1, min(self._max_k, self.model.n_items))

    def parse_user(self, raw: Any) -> Any:
        return _coerce(raw, self.user_kind, "user id")

    def parse_item(self, raw: Any) -> Any:
        return _coerce(raw, self.item_kind, "item id")

    def recommend_user(self, user: Any, k: int, *, fallback: bool = True) -> ItemList:
        return recommend_user(self.model, user, k, on_unknown="fallback" if fallback else "raise")

    def similar(self, item: Any, k: int) -> ItemList:
        if not type(self.model).capabilities.similar_items:
            raise NoSimilarityError(f"{type(self.model).__name__} has no item-item similarity")
        return similar(self.model, item, k)

    def recommend_history(
        self, items: Sequence[Any], k: int, *, ratings: Sequence[float] | None = None
    ) -> ItemList:
        return recommend_history(self.model, items, k, ratings=ratings)

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "backend": self.kind,
            "model": type(self.model).__name__,
            "model_file": Path(self.model_file).name,
            "max_k": self.max_k,
        }

    def reload(self) -> dict[str, Any]:
        """Read the model file again (a new model written over it)."""
        self._load()
        return self.health()


@dataclass(frozen=True)
class _Version:
    """What a reader keeps of one export version: meta and the per-item tables."""

    version: int
    meta: dict[str, Any]
    items: IdMap
    titles: np.ndarray | None
    counts: np.ndarray | None
    popular: tuple[np.ndarray, np.ndarray | None]


# one round trip, one version: the pointer and the key read inside one script
_LUA_GET = """
local v = redis.call('GET', KEYS[1])
if not v then return false end
return {v, redis.call('GET', ARGV[1] .. v .. ARGV[2])}
"""


class RedisBackend:
    """Answers from the lists an export published in Redis (see :mod:`.export`).

    Parameters
    ----------
    url : str
        ``redis://HOST:PORT/DB``.
    prefix : str
        The export's key prefix.
    model_file : str, optional
        The model, to fold in histories of users it never saw (``POST /recommendations``);
        without it such queries get the popularity fallback, flagged.
    timeout : float
        Socket timeout in seconds: a Redis that does not answer within it is "unavailable".
    cooldown : float
        After a failure, queries answer "unavailable" at once for this many seconds before
        the next one tries Redis again (a hung Redis then costs one ``timeout`` per
        ``cooldown``, not one per query); serving resumes by itself after that.

    Queries are cheap and run on the caller's thread (the HTTP app calls them from its event
    loop): one script call of about 0.1 ms on loopback.
    """

    kind = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "lr",
        model_file: str | Path | None = None,
        timeout: float = 0.2,
        cooldown: float = 1.0,
    ):
        self.url = url
        self.layout = _redis.Layout(prefix)
        self.client = _redis.connect(url, timeout=timeout)
        self._get = self.client.register_script(_LUA_GET)
        self._errors = _redis.redis_errors()
        self.cooldown = float(cooldown)
        self._down_until = 0.0
        self._down_reason = ""
        self._state: _Version | None = None
        self._lock = threading.Lock()
        self.model: Any = None
        if model_file is not None:
            from ..models import load

            self.model = load(model_file)

    # --- reading -------------------------------------------------------------------------
    def _unavailable(self, exc: BaseException) -> _redis.RedisUnavailable:
        """Note the failure (start the cool-down) and say what happened."""
        self._down_reason = str(exc)
        self._down_until = time.monotonic() + self.cooldown
        return _redis.RedisUnavailable(f"Redis at {self.url} is unavailable: {exc}")

    def _check_up(self) -> None:
        if self._down_until and time.monotonic() < self._down_until:
            raise _redis.RedisUnavailable(
                f"Redis at {self.url} is unavailable: {self._down_reason} "
                f"(next try within {self.cooldown:g}s)"
            )

    def _read(self, suffix: bytes) -> tuple[_Version, bytes | None]:
        """The current version's state and the value of ``P:V:<suffix>``, consistently."""
        self._check_up()
        for _attempt in range(3):
            try:
                res = self._get(
                    keys=[self.layout.current], args=[self.layout.p + b":", b":" + suffix]
                )
            except self._errors as exc:
                raise self._unavailable(exc) from None
            if not res:
                raise _redis.RedisUnavailable(
                    f"nothing is exported under prefix {self.layout.prefix!r} in Redis at "
                    f"{self.url} yet (run lensrec export)"
                )
            state = self._version(int(res[0]))
            if state is not None:
                return state, (res[1] if len(res) > 1 else None)
        raise _redis.RedisUnavailable("the export changed three times during one query; retry")

    def _version(self, version: int) -> _Version | None:
        """The state of ``version`` (loaded on first use); None if it vanished meanwhile."""
        state = self._state
        if state is not None and state.version == version:
            return state
        with self._lock:
            state = self._state
            if state is not None and state.version == version:
                return state
            names = ("meta", "items", "titles", "counts", "popular")
            self._check_up()
            try:
                values = self.client.mget([self.layout.key(version, n) for n in names])
            except self._errors as exc:
                raise self._unavailable(exc) from None
            raw = dict(zip(names, values, strict=True))
            if raw["meta"] is None or raw["items"] is None or raw["popular"] is None:
                return None  # superseded and removed between the pointer and here
            meta = json.loads(raw["meta"])
            if meta.get("format") != _redis.STORE_FORMAT or meta.get("format_version") != 1:
                raise ModelFormatError(
                    f"Redis prefix {self.layout.prefix!r} holds {meta.get('format')!r} version "
                    f"{meta.get('format_version')!r}, not {_redis.STORE_FORMAT} 1"
                )
            ids = unpack_ids(raw["items"], meta["item_kind"])
            titles = None
            if raw["titles"] is not None:
                titles = np.asarray(json.loads(raw["titles"]), dtype=object)
            counts = None
            if raw["counts"] is not None:
                counts = np.frombuffer(raw["counts"], dtype="<u4").astype(np.int64)
            state = _Version(
                version=version,
                meta=meta,
                items=IdMap(ids, kind="item"),
                titles=titles,
                counts=counts,
                popular=unpack_list(raw["popular"]),
            )
            self._state = state
            _log.info("serving export version %d of %s", version, meta.get("model"))
            return state

    def _state_now(self) -> _Version:
        state, _ = self._read(b"meta")
        return state

    def _known_state(self) -> _Version:
        """The version seen last (each query refreshes it), or the current one."""
        return self._state or self._state_now()

    @property
    def max_k(self) -> int:
        return int(self._known_state().meta["k"])

    @property
    def user_kind(self) -> IdKind:
        return self._known_state().meta["user_kind"]

    @property
    def item_kind(self) -> IdKind:
        return self._known_state().meta["item_kind"]

    def parse_user(self, raw: Any) -> Any:
        return _coerce(raw, self.user_kind, "user id")

    def parse_item(self, raw: Any) -> Any:
        return _coerce(raw, self.item_kind, "item id")

    def _shape(
        self,
        state: _Version,
        found: tuple[np.ndarray, np.ndarray | None],
        k: int,
        score_name: str,
        fallback: str | None = None,
        unknown: list[Any] | None = None,
        n_unknown: int = 0,
    ) -> ItemList:
        ids, scores = found
        ids = ids[:k]
        sc = (
            np.full(ids.size, np.nan, dtype=np.float32)
            if scores is None
            else np.asarray(scores[:k], dtype=np.float32)
        )
        ext = state.items.ids[ids]
        return ItemList(
            items=[v.item() if isinstance(v, np.generic) else v for v in ext.tolist()],
            scores=sc,
            titles=[""] * ids.size if state.titles is None else [str(t) for t in state.titles[ids]],
            n_train=None if state.counts is None else state.counts[ids],
            score_name="popularity" if fallback else score_name,
            fallback=fallback,
            unknown=list(unknown or []),
            n_unknown=n_unknown,
        )

    def recommend_user(self, user: Any, k: int, *, fallback: bool = True) -> ItemList:
        # the user kind is needed to build the key: read it from the state we hold, or load
        state = self._known_state()
        state, blob = self._read(b"u:" + user_key(user, state.meta["user_kind"]))
        if blob is None:
            if not fallback:
                raise UnknownIdError("user", [user])
            return self._shape(state, state.popular, k, "popularity", f"unknown user {user!r}")
        return self._shape(state, unpack_list(blob), k, state.meta["score_name"])

    def similar(self, item: Any, k: int) -> ItemList:
        state = self._known_state()
        idx = int(state.items.index([item])[0])  # UnknownIdError -> 404
        state, blob = self._read(b"i:" + str(idx).encode())
        if not state.meta.get("similar"):
            raise NoSimilarityError(
                f"the export of {state.meta.get('model')} holds no similar-item lists"
            )
        if blob is None:  # the version changed and the item with it
            raise UnknownIdError("item", [item])
        return self._shape(state, unpack_list(blob), k, "similarity")

    def recommend_history(
        self, items: Sequence[Any], k: int, *, ratings: Sequence[float] | None = None
    ) -> ItemList:
        if self.model is not None:
            return recommend_history(self.model, items, k, ratings=ratings)
        state = self._known_state()
        given = list(items)
        idx = np.asarray(state.items.lookup(np.asarray(given, dtype=object)) if given else [])
        unknown = [given[j] for j in np.flatnonzero(idx < 0).tolist()]
        reason = FALLBACK_NO_MODEL
        if not items:
            reason = "empty history"
        elif len(unknown) == len(items):
            reason = "all history items unknown"
        return self._shape(
            state, state.popular, k, "popularity", reason, unknown[:MAX_UNKNOWN_SHOWN], len(unknown)
        )

    def health(self) -> dict[str, Any]:
        state = self._state_now()
        return {
            "status": "ok",
            "backend": self.kind,
            "version": state.version,
            "model": state.meta.get("model"),
            "max_k": int(state.meta["k"]),
            "exported": state.meta.get("created"),
            "fold_in": self.model is not None,
        }

    def reload(self) -> dict[str, Any]:
        """Forget the cached version (the next query reads the pointer anyway)."""
        with self._lock:
            self._state = None
        return self.health()
