"""Downloading, verifying and unpacking archives into the cache without leaving half files.

Everything written into the cache goes first to a temporary name inside the cache directory
(same file system) and reaches its final name through one ``os.replace``; a failure at any
step removes the temporary file or directory, so the cache holds either the whole thing or
nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from ..errors import DataError

_log = logging.getLogger(__name__)

#: seconds to wait for a connection (short: an offline machine should fall back quickly)
CONNECT_TIMEOUT = 5.0
#: seconds a read may stall once connected
READ_TIMEOUT = 60.0
_CHUNK = 1 << 20
HASHES = ("sha256", "md5")
_FILE_MODE = 0o644  # mkstemp makes 0600 files; cache files are ordinary shared files


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data cache: ``cache_dir``, else ``$LENSREC_DATA``, else the user cache dir."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("LENSREC_DATA", "").strip()
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("lensrec"))


class IncompleteDownload(OSError):
    """The server closed the connection before sending the announced length."""


def parse_checksum(spec: str) -> tuple[str, str]:
    """``"sha256:<hex>"`` or ``"md5:<hex>"`` -> (algorithm, lower-case hex)."""
    algo, sep, value = spec.partition(":")
    algo = algo.strip().lower()
    value = value.strip().lower()
    if (
        not sep
        or algo not in HASHES
        or not value
        or any(c not in "0123456789abcdef" for c in value)
    ):
        raise ValueError(f"checksum must look like 'sha256:<hex>' or 'md5:<hex>', got {spec!r}")
    return algo, value


def file_digests(path: Path, algorithms: tuple[str, ...] = HASHES) -> dict[str, str]:
    """Hex digests of a file, read once in chunks."""
    hashers = {a: hashlib.new(a) for a in algorithms}
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            for h in hashers.values():
                h.update(chunk)
    return {a: h.hexdigest() for a, h in hashers.items()}


def verify(digests: Mapping[str, str], expected: Mapping[str, str], *, what: str) -> None:
    """Raise :class:`DataError` unless every expected digest matches."""
    for algo, value in expected.items():
        got = digests.get(algo)
        if got is None:
            continue
        if got.lower() != value.lower():
            raise DataError(
                f"{algo} checksum mismatch: expected {value}, got {got} "
                "(corrupt or changed download; nothing was kept)",
                file=what,
            )


def download(
    url: str,
    directory: Path,
    *,
    progress: bool = False,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
) -> tuple[Path, dict[str, str]]:
    """Stream ``url`` into a temporary file in ``directory``; return it and its digests.

    The caller owns the returned temporary file (rename it into place or delete it). On any
    error the partial file is removed and the original exception (``URLError``,
    ``TimeoutError``, :class:`IncompleteDownload`, ``OSError``) propagates. Timeouts default
    to the module's :data:`CONNECT_TIMEOUT` and :data:`READ_TIMEOUT`, read at call time.
    """
    connect_timeout = CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
    read_timeout = READ_TIMEOUT if read_timeout is None else read_timeout
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".download-", suffix=".part", dir=directory)
    tmp = Path(tmp_name)
    hashers = {a: hashlib.new(a) for a in HASHES}
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "lensrec"})
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(req, timeout=connect_timeout) as resp,
        ):
            _set_read_timeout(resp, read_timeout)
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            bar = _progress_bar(total, url, progress)
            received = 0
            try:
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    for h in hashers.values():
                        h.update(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
            if total is not None and received != total:
                raise IncompleteDownload(
                    f"download of {url} stopped after {received} of {total} bytes"
                )
            if received == 0:
                raise IncompleteDownload(f"download of {url} returned no data")
        _log.debug("downloaded %s (%d bytes)", url, received)
        return tmp, {a: h.hexdigest() for a, h in hashers.items()}
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _set_read_timeout(resp: Any, seconds: float) -> None:
    """Lengthen the socket timeout once connected (urllib uses one timeout for both)."""
    sock = getattr(getattr(getattr(resp, "fp", None), "raw", None), "_sock", None)
    if sock is not None and hasattr(sock, "settimeout"):
        try:
            sock.settimeout(seconds)
        except OSError:  # pragma: no cover - closed socket
            pass


def _progress_bar(total: int | None, url: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(
        total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=url.rsplit("/", 1)[-1]
    )


@contextmanager
def temp_dir(parent: Path, prefix: str) -> Iterator[Path]:
    """A temporary directory inside ``parent`` removed on exit (whatever was not moved out)."""
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def safe_extract(
    archive: Path, dest: Path, *, members: Callable[[str], bool] | None = None
) -> list[str]:
    """Extract a zip into ``dest``, refusing absolute paths and ``..`` (zip-slip)."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise DataError(f"not a valid zip archive ({exc})", file=str(archive)) from None
    names = []
    with zf:
        for info in zf.infolist():
            name = info.filename
            parts = Path(name).parts
            if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                raise DataError(f"unsafe path in archive: {name!r}", file=str(archive))
            if members is not None and not members(name):
                continue
            try:
                zf.extract(info, dest)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise DataError(f"cannot extract {name!r} ({exc})", file=str(archive)) from None
            names.append(name)
    return names


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def atomic_write_parquet(path: Path, frame: pl.DataFrame) -> None:
    """Write a polars frame to Parquet atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        frame.write_parquet(tmp)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_bytes_checked(data: bytes, expected_sha256: str, *, what: str) -> bytes:
    """Return ``data`` when its sha256 is ``expected_sha256``; raise :class:`DataError` otherwise."""
    got = hashlib.sha256(data).hexdigest()
    if got != expected_sha256:
        raise DataError(f"sha256 mismatch: expected {expected_sha256}, got {got}", file=what)
    return data


def zip_member(archive: Path, name: str) -> bytes:
    """One member of a zip file; :class:`DataError` when absent or unreadable."""
    try:
        with zipfile.ZipFile(archive) as zf:
            return zf.read(name)
    except KeyError:
        raise DataError(f"archive has no member {name!r}", file=str(archive)) from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"cannot read zip archive ({exc})", file=str(archive)) from None
