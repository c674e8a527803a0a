"""The one atomic-write helper and the one JSON encoder every writer in lensrec uses.

A file reaches its final name only when it is complete: it is written to a temporary file in
the same directory and moved over the target by one ``os.replace``. A failure at any point
removes the temporary file, so a reader never sees half a file. Files get the usual
permissions (``0o666`` less the umask), not the ``0o600`` that ``mkstemp`` gives.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_json", "jsonable", "dumps"]


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _writable_dir(path: Path, what: str) -> None:
    """Create ``path.parent`` or raise :class:`ConfigError` saying why it cannot be written."""
    parent = path.parent
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory; {what} needs a file path")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"{parent}: is a file, not a directory ({what})") from None
    except OSError as exc:
        raise ConfigError(
            f"{parent}: cannot create the directory ({exc.strerror or exc})"
        ) from None


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[Path], None], *, what: str = "output"
) -> Path:
    """Call ``write(tmp_path)``, then move the finished temporary file over ``path``.

    Raises :class:`ConfigError` when the directory cannot be made or written (read-only, a
    file where a directory is expected, a directory where a file is expected); ``what``
    names the output in that message (``"the model file"``, ``"--runs-dir"``).
    """
    path = Path(path)
    _writable_dir(path, what)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ConfigError(f"{path.parent}: not writable ({exc.strerror or exc}; {what})") from None
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, what: str = "output") -> Path:
    """Write ``data`` to ``path`` atomically (fsynced before the rename)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    return atomic_write(path, write, what=what)


def jsonable(obj: Any) -> Any:
    """Plain JSON types: numpy scalars and arrays unwrapped, non-finite floats to None,
    tuples and sets to lists, paths to strings; anything else by ``repr``."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.random.Generator):
        return None
    return repr(obj)


def dumps(obj: Any, *, indent: int | None = 2) -> str:
    """``json.dumps`` of :func:`jsonable` output, keys sorted."""
    return json.dumps(jsonable(obj), indent=indent, sort_keys=True)


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, what: str = "output") -> Path:
    """Write ``obj`` as indented JSON (through :func:`jsonable`) atomically."""
    return atomic_write_bytes(path, (dumps(obj) + "\n").encode(), what=what)
