"""IdMap: external ids (ints, strings, UUID strings) <-> dense int32 indices."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ..errors import UnknownIdError
from ..types import IndexArray

__all__ = ["IdMap"]

OnMissing = Literal["raise", "drop", "mark"]


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


class IdMap:
    """Immutable, sorted map between unique external ids and dense int32 indices ``0..n-1``.

    Index ``i`` stands for ``ids[i]``; ids are kept sorted so lookups are a vectorised
    binary search (no Python dict per id).

    Parameters
    ----------
    ids
        Unique external ids (int64 or strings). Duplicates raise ``ValueError``.
    kind
        ``"user"`` or ``"item"``; used in error messages.
    """

    __slots__ = ("_ids", "kind")

    def __init__(self, ids: npt.ArrayLike | Sequence[Any], kind: str = "id"):
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
        self.kind = kind

    @classmethod
    def build(cls, values: npt.ArrayLike, kind: str = "id") -> tuple[IdMap, IndexArray]:
        """Build the map of the distinct ``values`` and return it with their codes."""
        arr = _as_id_array(values)
        uniq, inverse = np.unique(arr, return_inverse=True)
        out = cls.__new__(cls)
        uniq.setflags(write=False)
        out._ids = uniq
        out.kind = kind
        return out, inverse.astype(np.int32).reshape(-1)

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

    def lookup(self, ids: Any) -> IndexArray:
        """Indices of ``ids``, ``-1`` where an id is unknown. Never raises for unknown ids."""
        q = self._coerce_query(ids)
        if len(self) == 0 or q.size == 0:
            return np.full(q.size, -1, dtype=np.int32)
        if self.is_integer != (q.dtype.kind == "i"):
            return np.full(q.size, -1, dtype=np.int32)
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
        new = IdMap.__new__(IdMap)
        ids = self._ids[keep]
        ids.setflags(write=False)
        new._ids = ids
        new.kind = self.kind
        remap = np.full(len(self), -1, dtype=np.int32)
        remap[keep] = np.arange(keep.size, dtype=np.int32)
        return new, remap

    def to_list(self) -> list[Any]:
        return self._ids.tolist()
