"""Interactions: the one container every stage passes on."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl
import scipy.sparse as sp

from ..errors import DataError
from .ids import IdMap

__all__ = ["Interactions"]

_SHOWN_COLUMNS = 12  # a missing-column message lists at most this many of the columns found


def shown_text(text: str, limit: int | None = 60) -> str:
    """``text`` safe for a one-line message: control and other unprintable characters escaped
    as in ``repr`` (``\\x1b``, ``\\n``), and cut to ``limit`` characters with an ellipsis."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


def require_columns(
    have: Sequence[str],
    wanted: Iterable[str | None],
    *,
    file: str | None,
    line: int | None = None,
    found: str | None = None,
) -> None:
    """Raise :class:`DataError` naming every column of ``wanted`` (Nones skipped) not in ``have``.

    The one missing-columns check of the data layer. The message lists the columns that are
    there (``found`` replaces that part, e.g. "the first line has 3 fields"), escaped and
    shortened, so binary garbage in a header never reaches a terminal raw.
    """
    missing = [c for c in wanted if c is not None and c not in have]
    if not missing:
        return
    if found is None:
        names = ", ".join(f"'{shown_text(str(c), 40)}'" for c in have[:_SHOWN_COLUMNS])
        more = f", ... ({len(have)} in all)" if len(have) > _SHOWN_COLUMNS else ""
        found = f"the columns are [{names}{more}]"
    listed = ", ".join(f"'{shown_text(str(c), 40)}'" for c in missing)
    hint = ""
    for sep, shown in ((";", "';'"), ("\t", "'\\t'"), ("|", "'|'"), (",", "','")):
        if len(have) == 1 and sep in str(have[0]):
            hint = f"; the header looks {shown}-separated: pass --sep {shown} (sep= in Python)"
            break
    raise DataError(f"missing column(s) {listed}; {found}{hint}", file=file, line=line)


def _to_polars(df: Any) -> pl.DataFrame:
    if isinstance(df, pl.DataFrame):
        return df
    try:
        return pl.from_pandas(df)
    except Exception as exc:  # pragma: no cover - depends on pandas presence
        raise TypeError(f"expected a polars or pandas DataFrame, got {type(df).__name__}") from exc


@dataclass(frozen=True, eq=False)
class Interactions:
    """User-item interactions as immutable numpy columns.

    Attributes
    ----------
    users, items : int32 arrays
        Dense indices into ``user_ids`` / ``item_ids``.
    ratings : float32 array or None
        Explicit ratings; None for implicit (binary) data.
    timestamps : int64 array or None
        Seconds since the epoch, when known.
    user_ids, item_ids : IdMap
        External ids. Every split of one dataset shares its train maps with its test set.
    item_info, user_info : polars DataFrame or None
        Side tables keyed by ``item_id`` / ``user_id`` (external ids): titles, genres, ...
    name : str
        Where the data came from (dataset name or file), for run records.
    stats : dict
        Load summary (rows read, duplicates dropped, ...).

    The arrays are read-only views; build new objects with :meth:`subset` or
    :meth:`from_frame` instead of mutating them.
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray | None
    timestamps: np.ndarray | None
    user_ids: IdMap
    item_ids: IdMap
    item_info: pl.DataFrame | None = None
    user_info: pl.DataFrame | None = None
    name: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = self.users.shape[0]
        for col in ("items", "ratings", "timestamps"):
            arr = getattr(self, col)
            if arr is not None and arr.shape != (n,):
                raise ValueError(f"column {col} has shape {arr.shape}, expected ({n},)")
        for arr in (self.users, self.items, self.ratings, self.timestamps):
            if arr is not None:
                arr.setflags(write=False)

    # --- construction --------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        users: npt.ArrayLike,
        items: npt.ArrayLike,
        ratings: npt.ArrayLike | None = None,
        timestamps: npt.ArrayLike | None = None,
        *,
        user_ids: IdMap | None = None,
        item_ids: IdMap | None = None,
        **kwargs: Any,
    ) -> Interactions:
        """Build from external-id arrays (or, with the maps given, map through them; unknown ids raise)."""
        frame = {"user": np.asarray(users), "item": np.asarray(items)}
        if ratings is not None:
            frame["rating"] = np.asarray(ratings, dtype=np.float64)
        if timestamps is not None:
            frame["timestamp"] = np.asarray(timestamps, dtype=np.int64)
        return cls.from_frame(
            pl.DataFrame(frame),
            user="user",
            item="item",
            rating="rating" if ratings is not None else None,
            timestamp="timestamp" if timestamps is not None else None,
            user_ids=user_ids,
            item_ids=item_ids,
            **kwargs,
        )

    @classmethod
    def from_frame(
        cls,
        df: Any,
        *,
        user: str = "user_id",
        item: str = "item_id",
        rating: str | None = "rating",
        timestamp: str | None = "timestamp",
        user_ids: IdMap | None = None,
        item_ids: IdMap | None = None,
        duplicates: Literal["last", "error", "keep"] = "last",
        item_info: pl.DataFrame | None = None,
        user_info: pl.DataFrame | None = None,
        name: str = "",
        source: str | None = None,
    ) -> Interactions:
        """Build from a polars or pandas frame.

        Columns named ``None`` are absent (``rating=None`` gives implicit data). When
        ``user_ids`` / ``item_ids`` are given, ids are mapped through them and unknown ids
        raise :class:`~lensrec.errors.UnknownIdError`; otherwise maps are built from the data.

        Duplicate (user, item) pairs: ``"last"`` (default) keeps the latest one (by timestamp,
        then by row order) and counts the rest in ``stats["duplicates_dropped"]``;
        ``"error"`` raises :class:`DataError`; ``"keep"`` keeps them all.
        """
        frame = _to_polars(df)
        where = source or name or None
        require_columns(frame.columns, (user, item, rating, timestamp), file=where)
        n_rows = frame.height
        for c in (user, item):
            if frame[c].null_count():
                row = int(frame[c].is_null().arg_true()[0])
                raise DataError(f"empty {c!r} value", file=where, line=row + 1)
        r = None
        if rating is not None:
            col = frame[rating]
            if not col.dtype.is_numeric():
                try:
                    col = col.cast(pl.Float64, strict=True)
                except Exception:
                    bad = col.cast(pl.Float64, strict=False).is_null() & col.is_not_null()
                    row = int(bad.arg_true()[0]) if bad.any() else 0
                    raise DataError(
                        f"non-numeric rating {frame[rating][row]!r}", file=where, line=row + 1
                    ) from None
            r = col.cast(pl.Float64).to_numpy()
            bad = ~np.isfinite(r)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise DataError(
                    f"rating is missing or not finite ({r[row]!r})", file=where, line=row + 1
                )
            r = r.astype(np.float32)
        t = None
        if timestamp is not None:
            col = frame[timestamp]
            if col.dtype.is_temporal():
                col = col.cast(pl.Datetime("us")).dt.epoch("s")
            elif not col.dtype.is_integer():
                try:
                    col = col.cast(pl.Float64, strict=True).cast(pl.Int64)
                except Exception:
                    raise DataError(
                        f"non-numeric timestamp in column {timestamp!r}", file=where
                    ) from None
            if col.null_count():
                row = int(col.is_null().arg_true()[0])
                raise DataError("timestamp is missing", file=where, line=row + 1)
            t = col.cast(pl.Int64).to_numpy()

        uvals = frame[user].to_numpy()
        ivals = frame[item].to_numpy()
        if user_ids is None:
            user_ids, u = IdMap.build(uvals, kind="user")
        else:
            u = user_ids.index(uvals)
        if item_ids is None:
            item_ids, i = IdMap.build(ivals, kind="item")
        else:
            i = item_ids.index(ivals)

        stats: dict[str, Any] = {"rows_read": n_rows, "duplicates_dropped": 0}
        if n_rows and duplicates != "keep":
            keep = _last_of_duplicates(u, i, t, len(item_ids))
            n_dup = n_rows - int(keep.size)
            if n_dup:
                if duplicates == "error":
                    first = np.setdiff1d(np.arange(n_rows), keep)[0]
                    raise DataError(
                        f"duplicate (user, item) pair ({uvals[first]!r}, {ivals[first]!r})",
                        file=where,
                        line=int(first) + 1,
                    )
                u, i = u[keep], i[keep]
                r = None if r is None else r[keep]
                t = None if t is None else t[keep]
                stats["duplicates_dropped"] = n_dup
        return cls(
            users=np.ascontiguousarray(u, dtype=np.int32),
            items=np.ascontiguousarray(i, dtype=np.int32),
            ratings=r,
            timestamps=t,
            user_ids=user_ids,
            item_ids=item_ids,
            item_info=item_info,
            user_info=user_info,
            name=name,
            stats=stats,
        )

    # --- shape ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.users.shape[0])

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def has_ratings(self) -> bool:
        return self.ratings is not None

    @property
    def density(self) -> float:
        cells = self.n_users * self.n_items
        return len(self) / cells if cells else 0.0

    def __repr__(self) -> str:
        kind = "ratings" if self.has_ratings else "implicit"
        return (
            f"Interactions({self.name or 'unnamed'}: {len(self):,} {kind}, "
            f"{self.n_users:,} users x {self.n_items:,} items)"
        )

    # --- views ---------------------------------------------------------------------------
    def csr(self, values: Literal["binary", "rating"] = "binary") -> sp.csr_matrix:
        """The users x items CSR matrix (float32), computed once and cached.

        Rows are all users of ``user_ids`` (empty rows for users without interactions here).
        Do not modify the returned matrix.
        """
        if values not in ("binary", "rating"):
            raise ValueError(f"values must be 'binary' or 'rating', got {values!r}")
        key = f"csr:{values}"
        if key not in self._cache:
            if values == "rating":
                if self.ratings is None:
                    raise DataError("these interactions have no ratings", file=self.name or None)
                data = self.ratings.astype(np.float32)
            else:
                data = np.ones(len(self), dtype=np.float32)
            m = sp.csr_matrix(
                (data, (self.users, self.items)),
                shape=(self.n_users, self.n_items),
                dtype=np.float32,
            )
            m.sum_duplicates()
            m.sort_indices()
            m.indptr = (
                m.indptr.astype(np.int64)
                if m.nnz > np.iinfo(np.int32).max
                else m.indptr.astype(np.int32)
            )
            m.indices = m.indices.astype(np.int32)
            self._cache[key] = m
        return self._cache[key]

    def user_counts(self) -> np.ndarray:
        """Interactions per user index (int64, length ``n_users``)."""
        return np.bincount(self.users, minlength=self.n_users)

    def item_counts(self) -> np.ndarray:
        """Interactions per item index (int64, length ``n_items``)."""
        return np.bincount(self.items, minlength=self.n_items)

    def subset(self, rows: npt.ArrayLike, *, name: str | None = None) -> Interactions:
        """The rows selected by a boolean mask or an index array, sharing the same IdMaps."""
        sel = np.asarray(rows)
        if sel.dtype == bool and sel.shape != (len(self),):
            raise ValueError(f"mask has shape {sel.shape}, expected ({len(self)},)")
        return replace(
            self,
            users=self.users[sel],
            items=self.items[sel],
            ratings=None if self.ratings is None else self.ratings[sel],
            timestamps=None if self.timestamps is None else self.timestamps[sel],
            name=self.name if name is None else name,
            stats={},
            _cache={},
        )

    def with_ratings(self, ratings: np.ndarray | None) -> Interactions:
        """Same rows with other rating values (None makes the data implicit)."""
        return replace(
            self, ratings=None if ratings is None else np.asarray(ratings, np.float32), _cache={}
        )

    def compact(self) -> Interactions:
        """Drop users and items that have no rows here, renumbering to dense indices."""
        users_map, u_remap = self.user_ids.subset(self.users)
        items_map, i_remap = self.item_ids.subset(self.items)
        return replace(
            self,
            users=u_remap[self.users],
            items=i_remap[self.items],
            user_ids=users_map,
            item_ids=items_map,
            _cache={},
        )

    def reindex(self, user_ids: IdMap, item_ids: IdMap) -> tuple[Interactions, dict[str, int]]:
        """Map these rows onto other IdMaps, dropping rows whose user or item is unknown there.

        Returns the new interactions and counts of what was dropped (``cold_user_rows``,
        ``cold_item_rows``, ``cold_users``, ``cold_items``).
        """
        # look up each distinct id once, then gather by row (not 1 lookup per row)
        u = user_ids.lookup(self.user_ids.ids)[self.users] if len(self) else np.empty(0, np.int32)
        i = item_ids.lookup(self.item_ids.ids)[self.items] if len(self) else np.empty(0, np.int32)
        cold_u, cold_i = u < 0, i < 0
        keep = ~(cold_u | cold_i)
        report = {
            "cold_user_rows": int(cold_u.sum()),
            "cold_item_rows": int((cold_i & ~cold_u).sum()),
            "cold_users": int(np.unique(self.users[cold_u]).size),
            "cold_items": int(np.unique(self.items[cold_i]).size),
        }
        out = replace(
            self,
            users=u[keep].astype(np.int32),
            items=i[keep].astype(np.int32),
            ratings=None if self.ratings is None else self.ratings[keep],
            timestamps=None if self.timestamps is None else self.timestamps[keep],
            user_ids=user_ids,
            item_ids=item_ids,
            stats={},
            _cache={},
        )
        return out, report

    def to_frame(self) -> pl.DataFrame:
        """A polars frame with external ids (``user_id``, ``item_id``, ``rating``, ``timestamp``)."""
        cols: dict[str, Any] = {
            "user_id": self.user_ids.ids[self.users],
            "item_id": self.item_ids.ids[self.items],
        }
        if self.ratings is not None:
            cols["rating"] = self.ratings
        if self.timestamps is not None:
            cols["timestamp"] = self.timestamps
        return pl.DataFrame(cols)

    def titles(self, item_indices: npt.ArrayLike) -> list[str]:
        """Titles of items (by index) from ``item_info``, falling back to the external id."""
        idx = np.asarray(item_indices, dtype=np.int64)
        ext = self.item_ids.ids[idx]
        if self.item_info is None or "title" not in self.item_info.columns:
            return [str(x) for x in ext.tolist()]
        info = self.item_info
        lut = dict(zip(info["item_id"].to_list(), info["title"].to_list(), strict=True))
        return [str(lut.get(x, x)) for x in ext.tolist()]


def _last_of_duplicates(
    u: np.ndarray, i: np.ndarray, t: np.ndarray | None, n_items: int
) -> np.ndarray:
    """Row positions to keep so that each (user, item) pair keeps its latest row.

    Latest means the largest timestamp; ties (or no timestamps) go to the later row.
    Returned in original row order.
    """
    key = u.astype(np.int64) * max(n_items, 1) + i.astype(np.int64)
    n = key.size
    rows = np.arange(n)
    if t is None:
        order = np.lexsort((rows, key))
    else:
        order = np.lexsort((rows, t, key))
    k_sorted = key[order]
    last = np.ones(n, dtype=bool)
    last[:-1] = k_sorted[1:] != k_sorted[:-1]
    keep = np.sort(order[last])
    return keep
