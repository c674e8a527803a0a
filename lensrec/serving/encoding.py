"""The compact encoding of exported top-K lists, and of the id tables stored beside them.

One list (one user's top-K, or one item's most similar items) is one byte string::

    byte 0      format version (1)
    byte 1      flags: bit 0 = float16 scores follow the ids, bit 1 = 4-byte indices
    bytes 2-3   count n (uint16, little-endian)
    n indices   little-endian uint16 when the catalogue has at most 65,536 items, else uint32
    n scores    little-endian float16 (only with flag bit 0)

Indices are the model's item indices; the index -> external id table is stored once per
export (:func:`pack_ids`): int64 for integer ids, 16 raw bytes per UUID, a JSON array
otherwise. A user's key holds the user's external id in the same spirit (:func:`user_key`):
decimal digits for integers, 16 raw bytes for UUIDs, UTF-8 otherwise.

A top-100 list of ids alone is 204 bytes, against about 3.7 KB for a list of UUID strings.
"""

from __future__ import annotations

import json
import re
import struct
import uuid
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ..errors import ModelFormatError

__all__ = [
    "FORMAT_VERSION",
    "IdKind",
    "index_width",
    "pack_list",
    "pack_lists",
    "unpack_list",
    "id_kind",
    "pack_ids",
    "unpack_ids",
    "user_key",
    "parse_id",
    "MalformedIdError",
]

FORMAT_VERSION = 1
_HEADER = struct.Struct("<BBH")
_SCORES = 1
_WIDE = 2
#: the largest catalogue whose indices fit in uint16
MAX_NARROW_ITEMS = 1 << 16

IdKind = Literal["int", "uuid", "str"]

_UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_INT_RE = re.compile(r"^-?[0-9]{1,19}$")


class MalformedIdError(ValueError):
    """An id that cannot be an id of this kind (``"abc"`` where ids are integers)."""


def index_width(n_items: int) -> int:
    """Bytes per item index: 2 up to 65,536 items, else 4."""
    return 2 if n_items <= MAX_NARROW_ITEMS else 4


def pack_list(ids: np.ndarray, scores: np.ndarray | None, width: int) -> bytes:
    """One list (item indices, best first, no padding) as bytes; ``scores`` as float16."""
    ids = np.asarray(ids).reshape(-1)
    if ids.size >= 1 << 16:
        raise ValueError(f"a list holds at most 65,535 items, got {ids.size}")
    flags = (_SCORES if scores is not None else 0) | (_WIDE if width == 4 else 0)
    out = (
        _HEADER.pack(FORMAT_VERSION, flags, ids.size)
        + ids.astype("<u4" if width == 4 else "<u2").tobytes()
    )
    if scores is not None:
        out += np.asarray(scores, dtype="<f2").reshape(-1).tobytes()
    return out


def pack_lists(ids: np.ndarray, scores: np.ndarray | None, width: int) -> list[bytes]:
    """Rows of an ``[n, K]`` block (padded with -1 at the end) as :func:`pack_list` bytes."""
    ids = np.asarray(ids)
    counts = (ids >= 0).sum(axis=1)
    dtype = "<u4" if width == 4 else "<u2"
    body = np.where(ids >= 0, ids, 0).astype(dtype)
    flags = (_SCORES if scores is not None else 0) | (_WIDE if width == 4 else 0)
    sc = None if scores is None else np.asarray(scores).astype("<f2")
    out = []
    for r in range(ids.shape[0]):
        n = int(counts[r])
        blob = _HEADER.pack(FORMAT_VERSION, flags, n) + body[r, :n].tobytes()
        if sc is not None:
            blob += sc[r, :n].tobytes()
        out.append(blob)
    return out


def unpack_list(blob: bytes) -> tuple[np.ndarray, np.ndarray | None]:
    """``(int32 item indices, float32 scores or None)`` of one packed list.

    Raises :class:`ModelFormatError` for bytes that are not a list of this format.
    """
    if len(blob) < _HEADER.size:
        raise ModelFormatError(f"a stored list of {len(blob)} bytes is shorter than its header")
    version, flags, n = _HEADER.unpack_from(blob)
    if version != FORMAT_VERSION:
        raise ModelFormatError(
            f"stored list format version {version}; this lensrec reads version {FORMAT_VERSION}"
        )
    width = 4 if flags & _WIDE else 2
    want = _HEADER.size + n * width + (2 * n if flags & _SCORES else 0)
    if len(blob) != want:
        raise ModelFormatError(
            f"a stored list of {n} items should be {want} bytes, got {len(blob)}"
        )
    end = _HEADER.size + n * width
    ids = np.frombuffer(blob, dtype="<u4" if width == 4 else "<u2", count=n, offset=_HEADER.size)
    scores = None
    if flags & _SCORES:
        scores = np.frombuffer(blob, dtype="<f2", count=n, offset=end).astype(np.float32)
    return ids.astype(np.int32), scores


def id_kind(ids: np.ndarray) -> IdKind:
    """``"int"`` for integer ids, ``"uuid"`` when every id is a canonical (lower-case,
    hyphenated) UUID string, else ``"str"``."""
    arr = np.asarray(ids)
    if arr.dtype.kind in "iu":
        return "int"
    if arr.size == 0:
        return "str"
    import polars as pl

    s = pl.Series(arr.astype(str))
    return "uuid" if bool(s.str.contains(_UUID_RE).all()) else "str"


def pack_ids(ids: np.ndarray, kind: IdKind) -> bytes:
    """An id table (position = index) as bytes: int64, 16 bytes per UUID, or JSON."""
    arr = np.asarray(ids)
    if kind == "int":
        return arr.astype("<i8").tobytes()
    if kind == "uuid":
        return b"".join(uuid.UUID(v).bytes for v in arr.tolist())
    return json.dumps(arr.tolist(), ensure_ascii=False).encode("utf-8")


def unpack_ids(blob: bytes, kind: IdKind) -> np.ndarray:
    """The id table :func:`pack_ids` wrote (UUIDs back as canonical strings)."""
    if kind == "int":
        return np.frombuffer(blob, dtype="<i8").astype(np.int64)
    if kind == "uuid":
        if len(blob) % 16:
            raise ModelFormatError(f"a UUID table of {len(blob)} bytes is not 16 bytes per id")
        raw = np.frombuffer(blob, dtype="S16")
        return np.array([str(uuid.UUID(bytes=b.ljust(16, b"\0"))) for b in raw.tolist()], dtype=str)
    return np.array(json.loads(blob.decode("utf-8")), dtype=str)


def parse_id(raw: Any, kind: IdKind, what: str = "id") -> Any:
    """An id as given by a caller (path segment, JSON value) -> the id as the model holds it.

    Raises :class:`MalformedIdError` naming the id when it cannot be of this kind.
    """
    if kind == "int":
        if isinstance(raw, bool):
            raise MalformedIdError(f"malformed {what} {raw!r}: ids here are integers")
        if isinstance(raw, int):
            if not -(2**63) <= raw < 2**63:
                raise MalformedIdError(f"malformed {what} {raw}: outside the 64-bit integers")
            return raw
        text = str(raw).strip()
        if not _INT_RE.match(text) or not -(2**63) <= int(text) < 2**63:
            raise MalformedIdError(f"malformed {what} {str(raw)[:60]!r}: ids here are integers")
        return int(text)
    if not isinstance(raw, str):
        raise MalformedIdError(f"malformed {what} {raw!r}: ids here are strings")
    if kind == "uuid":
        try:
            return str(uuid.UUID(raw))
        except ValueError:
            raise MalformedIdError(f"malformed {what} {raw[:60]!r}: ids here are UUIDs") from None
    if not raw or len(raw) > 512:
        raise MalformedIdError(f"malformed {what}: ids here are 1 to 512 characters")
    return raw


def user_key(ext: Any, kind: IdKind) -> bytes:
    """The key part naming one user: decimal digits, 16 raw UUID bytes, or UTF-8."""
    if kind == "int":
        return str(int(ext)).encode()
    if kind == "uuid":
        return uuid.UUID(str(ext)).bytes
    return str(ext).encode("utf-8")


def user_keys(ids: Sequence[Any] | np.ndarray, kind: IdKind) -> list[bytes]:
    """:func:`user_key` of many ids."""
    if kind == "int":
        return [str(v).encode() for v in np.asarray(ids, dtype=np.int64).tolist()]
    return [user_key(v, kind) for v in np.asarray(ids).tolist()]
