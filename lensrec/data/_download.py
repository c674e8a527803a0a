"""Downloading, verifying and unpacking archives into the cache without leaving half files.

Everything written into the cache goes first to a temporary name inside the cache directory
(same file system) and reaches its final name through one ``os.replace``
(:mod:`lensrec._io`); a failure at any step removes the temporary file or directory, so the
cache holds either the whole thing or nothing. SIGTERM and SIGHUP during a fetch unwind the
same way (:func:`cleanup_on_signals`); what a SIGKILL leaves behind is swept by the next
fetch (:func:`sweep_stale`).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError

_log = logging.getLogger(__name__)

#: seconds to wait for a connection (short: an offline machine should fall back quickly)
CONNECT_TIMEOUT = 5.0
#: seconds a read may stall once connected
READ_TIMEOUT = 60.0
#: temporary files and folders of ours untouched this long are leftovers of a killed process
#: (a live download writes every few seconds and gives up after READ_TIMEOUT)
STALE_AFTER = 10 * 60.0
_CHUNK = 1 << 20
HASHES = ("sha256", "md5")
_HEX_LENGTH = {"sha256": 64, "md5": 32}
_STALE_PATTERNS = (".download-*.part", ".extract-*", ".recbole-*", ".*.tmp", ".write-test-*")
_CACHE_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT}


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


class CacheWriteError(OSError):
    """Writing into the cache failed (read-only, full, no permission): not a network error."""


def cache_hint(root: Path) -> str:
    """How to choose another cache, saying whether ``LENSREC_DATA`` chose this one."""
    env = os.environ.get("LENSREC_DATA", "").strip()
    if env and Path(env).expanduser().absolute() == root.expanduser().absolute():
        return "LENSREC_DATA points here: point it at a writable directory"
    return "set LENSREC_DATA to a writable directory"


def cache_not_writable(root: Path, exc: BaseException) -> ConfigError:
    """The one message for a cache that cannot be written: the directory, why, and the fix."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return ConfigError(
        f"{root}: the data cache directory is not writable ({reason}); {cache_hint(root)}"
    )


def prepare_cache(root: Path) -> None:
    """Make sure ``root`` exists and can be written, then sweep stale leftovers in it.

    Raises :class:`ConfigError` naming the directory and ``LENSREC_DATA`` when it cannot be
    created or written (read-only file system, no permission, a file in the way).
    """
    try:
        root.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(
            f"{root}: is a file, not a directory (the data cache); {cache_hint(root)}"
        ) from None
    except OSError as exc:
        raise cache_not_writable(root, exc) from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=root)
    except OSError as exc:
        raise cache_not_writable(root, exc) from None
    os.close(fd)
    os.unlink(probe)
    sweep_stale(root)


def sweep_stale(root: Path, older_than: float | None = None) -> list[Path]:
    """Remove our temporary files and folders in ``root`` (and one level below) that nobody
    has touched for ``older_than`` seconds (default :data:`STALE_AFTER`); return them.

    Only names lensrec makes are touched: ``.download-*.part``, ``.extract-*``,
    ``.recbole-*`` and the ``.*.tmp`` of atomic writes. Errors are logged, never raised.
    """
    limit = time.time() - (STALE_AFTER if older_than is None else older_than)
    removed = []
    dirs = [root, *(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))]
    for d in dirs[:1000]:  # bounded: one folder per dataset
        for pattern in _STALE_PATTERNS:
            for path in d.glob(pattern):
                try:
                    if _last_touched(path) > limit:
                        continue
                    if path.is_dir():
                        shutil.rmtree(path)
                    else:
                        path.unlink()
                except OSError as exc:
                    _log.debug("could not remove stale %s: %s", path, exc)
                    continue
                _log.info("removed stale %s", path)
                removed.append(path)
    return removed


def _last_touched(path: Path) -> float:
    """Latest mtime of ``path`` and, for a folder, of anything in it (bounded walk)."""
    latest = path.stat().st_mtime
    if path.is_dir():
        for k, sub in enumerate(path.rglob("*")):
            if k >= 10_000:
                break
            latest = max(latest, sub.lstat().st_mtime)
    return latest


@contextmanager
def cleanup_on_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into ``SystemExit(128 + signum)`` while the block runs.

    A process killed by those signals would otherwise skip every ``finally`` and leave its
    temporary files in the cache; as an exception they unwind like an error and the process
    still exits with the conventional status. Signals that already have a handler (not the
    default action) keep it; outside the main thread nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}

    def on_signal(signum: int, frame: Any) -> None:
        for sig in previous:  # a second signal must not interrupt the clean-up
            signal.signal(sig, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) == signal.SIG_DFL:
            previous[sig] = signal.signal(sig, on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def parse_checksum(spec: str) -> tuple[str, str]:
    """``"sha256:<hex>"`` or ``"md5:<hex>"`` -> (algorithm, lower-case hex).

    Raises :class:`ConfigError` saying which algorithms are accepted and how long their
    digests are.
    """
    algo, sep, value = str(spec).partition(":")
    algo = algo.strip().lower()
    value = value.strip().lower()
    accepted = " or ".join(f"{a}:<{n} hex digits>" for a, n in _HEX_LENGTH.items())
    if not sep or algo not in HASHES:
        raise ConfigError(
            f"checksum {spec!r}: unsupported algorithm {algo!r}; accepted: {accepted}"
            if sep
            else f"checksum {spec!r} must be ALGO:HEX; accepted: {accepted}"
        )
    if len(value) != _HEX_LENGTH[algo] or any(c not in "0123456789abcdef" for c in value):
        raise ConfigError(
            f"checksum {spec!r}: a {algo} digest is {_HEX_LENGTH[algo]} hex digits; "
            f"accepted: {accepted}"
        )
    return algo, value


def file_digests(path: Path, algorithms: tuple[str, ...] = HASHES) -> dict[str, str]:
    """Hex digests of a file, read once in chunks."""
    hashers = {a: hashlib.new(a) for a in algorithms}
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            for h in hashers.values():
                h.update(chunk)
    return {a: h.hexdigest() for a, h in hashers.items()}


def verify(
    digests: Mapping[str, str],
    expected: Mapping[str, str],
    *,
    what: str,
    hint: str = "corrupt or changed download; nothing was kept",
) -> None:
    """Raise :class:`DataError` unless every expected digest matches (``hint`` ends it)."""
    for algo, value in expected.items():
        got = digests.get(algo)
        if got is None:
            continue
        if got.lower() != value.lower():
            raise DataError(
                f"{algo} checksum mismatch: expected {value}, got {got} ({hint})", file=what
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
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".download-", suffix=".part", dir=directory)
    except OSError as exc:
        raise CacheWriteError(exc.errno, exc.strerror, str(directory)) from None
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
                    try:
                        out.write(chunk)
                    except OSError as exc:
                        raise CacheWriteError(exc.errno, exc.strerror, str(directory)) from None
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
    archive: Path,
    dest: Path,
    *,
    members: Callable[[str], bool] | None = None,
    what: str | None = None,
) -> list[str]:
    """Extract a zip into ``dest``, refusing absolute paths and ``..`` (zip-slip).

    A damaged archive raises :class:`DataError` naming ``what`` (default: the archive's
    path; a download names its url, not its temporary file); a failure to write ``dest``
    raises :class:`CacheWriteError`.
    """
    shown = what or str(archive)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as exc:
        raise DataError(f"bad archive: not a valid zip file ({exc})", file=shown) from None
    names = []
    with zf:
        for info in zf.infolist():
            name = info.filename
            parts = Path(name).parts
            if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                raise DataError(f"bad archive: unsafe path {name!r}", file=shown)
            if members is not None and not members(name):
                continue
            try:
                zf.extract(info, dest)
            except OSError as exc:
                if exc.errno in _CACHE_ERRNOS:
                    raise CacheWriteError(exc.errno, exc.strerror, str(dest)) from None
                raise DataError(
                    f"bad archive: cannot extract {name!r} ({exc})", file=shown
                ) from None
            except (
                zipfile.BadZipFile,
                EOFError,
                zlib.error,
                ValueError,
                NotImplementedError,
            ) as exc:
                raise DataError(
                    f"bad archive: cannot extract {name!r} ({exc})", file=shown
                ) from None
            names.append(name)
    return names


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
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError) as exc:
        raise DataError(f"cannot read zip archive ({exc})", file=str(archive)) from None
