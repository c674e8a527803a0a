"""IdMap: external ids (ints, strings, UUID strings) <-> dense int32 indices.

Integer ids are sorted and searched with numpy. String ids (UUIDs included) go through
polars, whose hash tables and UTF-8 string columns are several times faster than numpy's
fixed-width unicode arrays for ``unique``, sorting and lookups: distinct ids come
from a hash ``unique`` plus a sort of the distinct ones only, and codes from a hash join
against a cached ``(id, index)`` table. The result is the same as the numpy path in every
respect (same sorted order -- UTF-8 byte order is code-point order, which is how numpy
compares unicode strings --, same indices, same errors), and the numpy path stays for small
inputs (where polars' fixed cost dominates) and for strings polars cannot hold (lone
surrogates).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from ..errors import UnknownIdError
from ..types import IndexArray

__all__ = ["IdMap"]

OnMissing = Literal["raise", "drop", "mark"]

#: Inputs (ids to build from, queries) shorter than this use numpy only: below it polars'
#: fixed cost per call is larger than what its hash tables save.
_POLARS_MIN_SIZE = 2048

#: What a strict polars String conversion raises for values that are not all ``str``
#: (ints, None, bytes, UUID objects, ...) or that UTF-8 cannot hold (lone surrogates).
_NOT_STRINGS = (TypeError, ValueError, pl.exceptions.PolarsError)

#: A left join keeps the left frame's row order; newer polars versions want that said
#: explicitly (older ones always kept it and have no ``maintain_order`` argument).
_KEEP_LEFT_ORDER: dict[str, Any] = (
    {"maintain_order": "left"}
    if "maintain_order" in inspect.signature(pl.DataFrame.join).parameters
    else {}
)


def _as_id_array(values: Any) -> np.ndarray:
    """Normalise ids to int64 or a numpy unicode array (strings, UUIDs)."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "b":
        raise TypeError("ids cannot be booleans")
    if arr.dtype.kind == "f":
        if arr.size and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
            raise TypeError("float ids must be whole numbers")
        return arr.astype(np.int64)
    if arr.dtype.kind == "U":
        return arr
    # object arrays: strings, UUID objects, python ints
    if arr.size == 0:
        return np.array([], dtype=np.int64)
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in arr.tolist()):
        return arr.astype(np.int64)
    return np.array([str(v) for v in arr.tolist()], dtype=str)


def _ascii_to_polars(arr: np.ndarray) -> pl.Series | None:
    """A unicode array of ASCII strings as a polars String column without Python objects.

    The UCS-4 code units become bytes (``S`` array, a quarter of the size), which polars
    reads natively; None when a character is not ASCII or polars reads ``S`` differently.
    """
    width = arr.dtype.itemsize // 4
    if width == 0:
        return None
    units = np.ascontiguousarray(arr).view(np.uint32)
    if units.max(initial=0) >= 128:
        return None
    raw = units.astype(np.uint8).view(f"S{width}")
    try:
        s = pl.Series("id", raw)
    except _NOT_STRINGS:  # pragma: no cover - a polars without numpy bytes support
        return None
    if s.dtype != pl.Binary or len(s) != arr.size:  # pragma: no cover - likewise
        return None
    return s.cast(pl.String)


def _polars_strings(values: Any, min_size: int | None = None) -> pl.Series | None:
    """``values`` as a polars String column holding what a numpy unicode array would hold.

    Returns None when that is not a plain copy: values that are not all ``str`` (numpy
    would apply ``str()``), strings UTF-8 cannot encode (lone surrogates), or fewer than
    ``min_size`` values (default ``_POLARS_MIN_SIZE``, at least 1), too few to be worth it.
    Trailing NUL characters are dropped, as numpy's unicode arrays drop them.
    """
    min_size = max(1, _POLARS_MIN_SIZE if min_size is None else min_size)
    s: pl.Series | None = None
    obj: Any = None
    if isinstance(values, pl.Series):
        if values.dtype != pl.String or len(values) < min_size or values.null_count():
            return None
        s = values.rename("id")
    elif isinstance(values, np.ndarray):
        if values.ndim != 1 or values.dtype.kind not in "UO" or values.size < min_size:
            return None
        if values.dtype.kind == "U":
            s = _ascii_to_polars(values)
            obj = values.astype(object) if s is None else None
        elif isinstance(values[0], str):  # else not all strings: skip a failing conversion
            obj = values
        else:
            return None
    elif isinstance(values, list) and len(values) >= min_size and isinstance(values[0], str):
        obj = values
    else:
        return None
    if s is None:
        try:
            s = pl.Series("id", obj, dtype=pl.String, strict=True)
        except _NOT_STRINGS:
            return None
        if s.null_count():  # None values: numpy would make them "None"
            return None
    # numpy's own strings have none; other sequences' strings (and fixed-width bytes, should
    # a polars version keep their padding) may
    if s.str.ends_with("\x00").any():
        s = s.str.strip_chars_end("\x00")
    return s


def _unicode(s: pl.Series) -> np.ndarray:
    """A polars String column as a numpy unicode array (as wide as its longest string)."""
    return s.to_numpy().astype(str)


def _table(sorted_ids: pl.Series) -> pl.DataFrame:
    """The lookup table of a string map: each (sorted) id with its index."""
    return pl.DataFrame(
        {"id": sorted_ids.rename("id"), "idx": np.arange(len(sorted_ids), dtype=np.int32)}
    )


def _join_codes(table: pl.DataFrame, q: pl.Series) -> IndexArray:
    """Index of every ``q`` value in ``table``, -1 where absent (a hash join)."""
    joined = q.rename("id").to_frame().join(table, on="id", how="left", **_KEEP_LEFT_ORDER)
    return joined["idx"].fill_null(-1).to_numpy(writable=True).astype(np.int32, copy=False)


class IdMap:
    """Immutable, sorted map between unique external ids and dense int32 indices ``0..n-1``.

    Index ``i`` stands for ``ids[i]``; ids are kept sorted (numpy's order: numbers by value,
    strings by code point). Lookups are vectorised: a binary search for integer ids, a hash
    join (polars) for string ids; no Python dict per id.

    Strings are held as a numpy unicode array, which drops trailing NUL characters
    (``"a\\x00"`` is ``"a"``); every path here follows that rule.

    Parameters
    ----------
    ids
        Unique external ids (int64 or strings, as a sequence, numpy array or polars
        Series). Duplicates raise ``ValueError``.
    kind
        ``"user"`` or ``"item"``; used in error messages.
    """

    __slots__ = ("_ids", "kind", "_table")

    def __init__(self, ids: npt.ArrayLike | Sequence[Any] | pl.Series, kind: str = "id"):
        self.kind = kind
        # (id, index) polars table of a string map; None: not made yet, False: not possible
        self._table: pl.DataFrame | Literal[False] | None = None
        s = _polars_strings(ids)
        if s is not None:
            perm = s.arg_sort()
            srt = s.gather(perm)
            if bool((srt.slice(1) == srt.slice(0, len(srt) - 1)).any()):
                arr = srt.to_numpy()
                dup = arr[1:][arr[1:] == arr[:-1]][:5]
                raise ValueError(
                    f"IdMap ids must be unique; repeated: {', '.join(map(repr, dup.tolist()))}"
                )
            if isinstance(ids, np.ndarray) and ids.dtype.kind == "U":
                arr = ids[perm.to_numpy()]  # a numpy gather beats making strings back
            else:
                arr = _unicode(srt)
            self._table = _table(srt)
        else:
            arr = _as_id_array(ids)
            order = np.argsort(arr, kind="stable")
            arr = arr[order]
            if arr.size > 1 and np.any(arr[1:] == arr[:-1]):
                dup = arr[1:][arr[1:] == arr[:-1]][:5]
                raise ValueError(
                    f"IdMap ids must be unique; repeated: {', '.join(map(repr, dup.tolist()))}"
                )
        arr.setflags(write=False)
        self._ids = arr

    @classmethod
    def _from_sorted(
        cls, ids: np.ndarray, kind: str, table: pl.DataFrame | Literal[False] | None
    ) -> IdMap:
        out = cls.__new__(cls)
        ids.setflags(write=False)
        out._ids = ids
        out.kind = kind
        out._table = table
        return out

    @classmethod
    def build(cls, values: npt.ArrayLike | pl.Series, kind: str = "id") -> tuple[IdMap, IndexArray]:
        """Build the map of the distinct ``values`` and return it with their codes.

        ``values`` may be a sequence, a numpy array or a polars Series (passing a polars
        String column as it is saves converting it to Python strings).
        """
        s = _polars_strings(values)
        if s is not None:
            distinct = s.unique().sort()
            table = _table(distinct)
            codes = _join_codes(table, s)
            if isinstance(values, np.ndarray) and values.dtype.kind == "U":
                # a row holding each distinct id (the last one), then a numpy gather: cheaper
                # than making the strings back, and the dtype stays the input's
                row = np.empty(len(distinct), dtype=np.intp)
                row[codes] = np.arange(codes.size)
                uniq = values[row]
            else:
                uniq = _unicode(distinct)
            return cls._from_sorted(uniq, kind, table), codes
        if isinstance(values, pl.Series):
            values = values.to_numpy()
        arr = _as_id_array(values)
        uniq, inverse = np.unique(arr, return_inverse=True)
        return cls._from_sorted(uniq, kind, None), inverse.astype(np.int32).reshape(-1)

    # --- lookups -------------------------------------------------------------------------
    @property
    def ids(self) -> np.ndarray:
        """All external ids, position ``i`` holding the id of index ``i`` (read-only)."""
        return self._ids

    @property
    def is_integer(self) -> bool:
        return self._ids.dtype.kind == "i"

    def __len__(self) -> int:
        return int(self._ids.size)

    def __contains__(self, ext: object) -> bool:
        return bool(self.lookup([ext])[0] >= 0)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IdMap):
            return NotImplemented
        return self._ids.dtype.kind == other._ids.dtype.kind and np.array_equal(
            self._ids, other._ids
        )

    def __hash__(self) -> int:
        return hash((len(self), self._ids[:8].tobytes()))

    def __repr__(self) -> str:
        head = ", ".join(map(repr, self._ids[:3].tolist()))
        more = ", ..." if len(self) > 3 else ""
        return f"IdMap({self.kind}, n={len(self)}, [{head}{more}])"

    def _coerce_query(self, ids: Any) -> np.ndarray:
        q = np.asarray(ids)
        if q.ndim == 0:
            q = q.reshape(1)
        if self.is_integer:
            if q.dtype.kind in "iu":
                return q.astype(np.int64, copy=False)
            # strings like "42" for integer maps (CLI input)
            out = np.empty(q.size, dtype=np.int64)
            for j, v in enumerate(q.tolist()):
                try:
                    out[j] = int(v)
                except (TypeError, ValueError):
                    out[j] = np.iinfo(np.int64).min  # matches no real id
            return out
        return np.array([str(v) for v in q.tolist()], dtype=str) if q.dtype.kind != "U" else q

    def _string_table(self) -> pl.DataFrame | None:
        """The (id, index) table of a string map, made on first use; None if polars can't."""
        if self._table is None:
            s = None if self.is_integer else _polars_strings(self._ids, min_size=1)
            self._table = False if s is None else _table(s)
        return self._table if self._table is not False else None

    def lookup(self, ids: Any) -> IndexArray:
        """Indices of ``ids``, ``-1`` where an id is unknown. Never raises for unknown ids."""
        if not self.is_integer and len(self) and (s := _polars_strings(ids)) is not None:
            table = self._string_table()
            if table is not None:
                return _join_codes(table, s)
        if isinstance(ids, pl.Series):
            ids = ids.to_numpy()
        q = self._coerce_query(ids)
        if len(self) == 0 or q.size == 0:
            return np.full(q.size, -1, dtype=np.int32)
        if self.is_integer != (q.dtype.kind == "i"):
            return np.full(q.size, -1, dtype=np.int32)
        if not self.is_integer and q is not ids and (s := _polars_strings(q)) is not None:
            # ints, UUID objects, ... queried on a string map, made str() above (q is ids
            # when ids was a unicode array already tried above)
            table = self._string_table()
            if table is not None:
                return _join_codes(table, s)
        pos = np.searchsorted(self._ids, q)
        pos_c = np.minimum(pos, len(self) - 1)
        found = self._ids[pos_c] == q
        return np.where(found, pos_c, -1).astype(np.int32)

    def index(self, ids: Any, on_missing: OnMissing = "raise") -> IndexArray:
        """Dense indices of external ``ids``.

        ``on_missing``: ``"raise"`` raises :class:`UnknownIdError` quoting up to five unknown
        ids; ``"drop"`` leaves them out; ``"mark"`` puts ``-1`` in their place.
        """
        idx = self.lookup(ids)
        missing = idx < 0
        if not missing.any() or on_missing == "mark":
            return idx
        if on_missing == "drop":
            return idx[~missing]
        if on_missing != "raise":
            raise ValueError(f"on_missing must be 'raise', 'drop' or 'mark', got {on_missing!r}")
        q = np.asarray(ids).reshape(-1)
        raise UnknownIdError(self.kind, q[missing][:5].tolist(), count=int(missing.sum()))

    def external(self, indices: npt.ArrayLike) -> np.ndarray:
        """External ids at ``indices``; ``-1`` padding is not allowed here (filter it first)."""
        idx = np.asarray(indices)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            bad = idx[(idx < 0) | (idx >= len(self))][:5]
            raise IndexError(f"{self.kind} indices out of range 0..{len(self) - 1}: {bad.tolist()}")
        return self._ids[idx]

    def subset(self, indices: npt.ArrayLike) -> tuple[IdMap, IndexArray]:
        """A map of the ids at ``indices`` (sorted, deduplicated) and old->new index array.

        The second value maps every old index to its new index, or -1 when dropped.
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and idx.min() >= 0 and idx.max() < len(self):
            # O(n) presence count instead of sorting (np.unique) every row: same sorted result
            keep = np.flatnonzero(np.bincount(idx, minlength=len(self)))
        else:
            keep = np.unique(idx)
        new = IdMap._from_sorted(self._ids[keep], self.kind, None)
        remap = np.full(len(self), -1, dtype=np.int32)
        remap[keep] = np.arange(keep.size, dtype=np.int32)
        return new, remap

    def to_list(self) -> list[Any]:
        return self._ids.tolist()
