"""Typed, pickle-free model state: what ``save`` writes and ``load`` reads back.

A model file is a zip archive (stored, not compressed; each member CRC-checked on read) with
``header.json`` and one ``.npy`` member per array. Each fitted attribute is stored by kind:

=========  ==========================================================================
kind       stored as
=========  ==========================================================================
array      one ``.npy`` (numeric, bool or fixed-width unicode; never ``object``)
idmap      the sorted external ids (one ``.npy``) and the map's kind
sparse     ``data`` / ``indices`` / ``indptr`` ``.npy`` members, the format and shape
tensors    a mapping of names to arrays (a torch ``state_dict``): one ``.npy`` each,
           the key order, and whether the values were torch tensors; a tensor dtype numpy
           cannot hold (bfloat16, float8) is stored as its raw bits in a same-width integer
           array with the dtype's name, and comes back as that dtype
json       the value itself, inside the header (numbers, strings, lists, dicts, None)
=========  ==========================================================================

``numpy.load(..., allow_pickle=False)`` reads every array, so a file can never run code.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..data.ids import IdMap
from ..errors import ModelFormatError

__all__ = ["encode_state", "decode_state"]


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


#: integer dtypes of each element width, for tensors stored as raw bits
_BITS = {1: "uint8", 2: "int16", 4: "int32", 8: "int64"}


def _to_numpy(value: Any) -> tuple[np.ndarray, str | None]:
    """The array to store and, for a tensor dtype numpy cannot hold, that dtype's name."""
    if _is_tensor(value):
        t = value.detach().cpu()
        try:
            return t.numpy(), None
        except TypeError:  # bfloat16, float8...: numpy has no such dtype
            import torch

            bits = getattr(torch, _BITS[t.element_size()])
            return t.contiguous().view(bits).numpy(), str(t.dtype).removeprefix("torch.")
    return np.asarray(value), None


def _check_array(name: str, arr: np.ndarray) -> np.ndarray:
    if arr.dtype == object:
        raise ModelFormatError(f"cannot save {name}: object arrays are not allowed (no pickle)")
    return np.ascontiguousarray(arr)


def _is_json(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_json(v) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False


def _plain(value: Any) -> Any:
    """numpy scalars to Python; tuples to lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def encode_state(state: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Split fitted attributes into a JSON description and named arrays (zip member paths)."""
    desc: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for name, value in state.items():
        base = f"state/{name}"
        if isinstance(value, IdMap):
            arrays[f"{base}.npy"] = _check_array(name, value.ids)
            desc[name] = {"kind": "idmap", "idmap_kind": value.kind}
        elif isinstance(value, np.ndarray):
            arrays[f"{base}.npy"] = _check_array(name, value)
            desc[name] = {"kind": "array"}
        elif sp.issparse(value):
            fmt = value.format if value.format in ("csr", "csc") else "csr"
            mat = value.asformat(fmt)
            for part in ("data", "indices", "indptr"):
                arrays[f"{base}/{part}.npy"] = _check_array(name, getattr(mat, part))
            desc[name] = {"kind": "sparse", "format": fmt, "shape": list(mat.shape)}
        elif (
            isinstance(value, Mapping)
            and value
            and all(isinstance(v, np.ndarray) or _is_tensor(v) for v in value.values())
        ):
            keys = [str(k) for k in value]
            raw: dict[str, str] = {}
            for pos, v in enumerate(value.values()):
                arr, dtype = _to_numpy(v)
                arrays[f"{base}/{pos}.npy"] = _check_array(name, arr)
                if dtype is not None:
                    raw[str(pos)] = dtype
            desc[name] = {
                "kind": "tensors",
                "keys": keys,
                "torch": any(_is_tensor(v) for v in value.values()),
            }
            if raw:
                desc[name]["raw_dtypes"] = raw
        elif _is_json(_plain(value)):
            desc[name] = {"kind": "json", "value": _plain(value)}
        else:
            raise ModelFormatError(
                f"cannot save {name}: values of type {type(value).__name__} have no stored form "
                "(use numpy arrays, scipy sparse matrices, IdMaps, tensors or JSON values)"
            )
    return desc, arrays


def _read(zf: zipfile.ZipFile, member: str) -> np.ndarray:
    with zf.open(member) as fh:
        return np.load(io.BytesIO(fh.read()), allow_pickle=False)


def decode_state(zf: zipfile.ZipFile, desc: Mapping[str, Any]) -> dict[str, Any]:
    """Rebuild the attributes described by :func:`encode_state` from an open model file.

    Raises :class:`ModelFormatError` on a missing member, a CRC error or a bad description.
    """
    out: dict[str, Any] = {}
    try:
        for name, d in desc.items():
            base = f"state/{name}"
            kind = d["kind"]
            if kind == "array":
                out[name] = _read(zf, f"{base}.npy")
            elif kind == "idmap":
                out[name] = IdMap(_read(zf, f"{base}.npy"), kind=d["idmap_kind"])
            elif kind == "sparse":
                parts = [_read(zf, f"{base}/{p}.npy") for p in ("data", "indices", "indptr")]
                cls = sp.csr_matrix if d["format"] == "csr" else sp.csc_matrix
                out[name] = cls(tuple(parts), shape=tuple(d["shape"]))
            elif kind == "tensors":
                values: list[Any] = [
                    _read(zf, f"{base}/{pos}.npy") for pos in range(len(d["keys"]))
                ]
                if d.get("torch"):
                    import torch

                    raw = d.get("raw_dtypes", {})
                    values = [torch.from_numpy(np.array(v)) for v in values]
                    for pos, dtype in raw.items():
                        kind = getattr(torch, str(dtype), None)
                        if not isinstance(kind, torch.dtype):
                            raise ModelFormatError(f"unknown tensor dtype {dtype!r} for {name}")
                        values[int(pos)] = values[int(pos)].view(kind)
                out[name] = dict(zip(d["keys"], values, strict=True))
            elif kind == "json":
                out[name] = d["value"]
            else:
                raise ModelFormatError(f"unknown state kind {kind!r} for {name}")
    except ModelFormatError:
        raise
    except (KeyError, ValueError, TypeError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ModelFormatError(f"corrupt model data ({type(exc).__name__}: {exc})") from None
    return out
