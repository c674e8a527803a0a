"""Bad input at the data layer: one row per case, each a one-line LensrecError, nothing written.

Every row builds its input in ``tmp_path``, calls the library and checks the error's class,
that its message is one printable line (no raw control bytes, no newline) and names what it
must (the option, the file, the line), and that nothing was left half-written. The same cases
through the command line must exit 2 with one line on stderr.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lensrec.data import fetch, load_dataset, load_table
from lensrec.errors import ConfigError, DataError, LensrecError

GOOD_CSV = "user,item,rating\n1,10,4\n1,20,5\n2,10,3\n"
GARBAGE = bytes(range(256)) * 3  # every byte value, control bytes included


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(path: Path, data: str | bytes) -> Path:
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _hide_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(builtins, "__import__", fake_import)


def _read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every new temporary file fails as on a read-only file system (root ignores chmod)."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)


@dataclass
class Case:
    """One bad input: ``call(tmp, monkeypatch)`` must raise ``error`` whose message holds every
    string of ``needles`` (``{tmp}`` is the test's directory); ``argv`` is the same case on
    the command line (None: library only); ``untouched`` lists paths (under tmp) that must
    hold no file afterwards."""

    call: Callable[[Path, pytest.MonkeyPatch], Any]
    error: type[LensrecError]
    needles: tuple[str, ...]
    argv: list[str] | None = None
    line: int | None = None
    untouched: tuple[str, ...] = ()
    prepare: Callable[[Path, pytest.MonkeyPatch], Any] = field(default=lambda tmp, mp: None)


def _eda(tmp: Path, out: Path) -> Any:
    from lensrec.plots import eda_plots

    return eda_plots(load_table(tmp / "good.csv", user="user", item="item", rating="rating"), out)


CASES: dict[str, Case] = {
    # item 6: --rating-scale 5,1
    "rating-scale-reversed": Case(
        call=lambda tmp, mp: load_table(tmp / "good.csv", user="user", item="item",
                                        rating="rating", rating_scale=(5, 1)),
        error=ConfigError,
        needles=("--rating-scale", "rating_scale", "low must be below high"),
        argv=["data", "info", "{tmp}/good.csv", "--rating-scale", "5,1"],
    ),
    "rating-scale-zero-step": Case(
        call=lambda tmp, mp: load_table(tmp / "good.csv", user="user", item="item",
                                        rating="rating", rating_scale=(1, 5, 0)),
        error=ConfigError,
        needles=("--rating-scale", "step must be positive"),
        argv=["data", "info", "{tmp}/good.csv", "--rating-scale", "1,5,0"],
    ),
    # item 6: a garbage .parquet file
    "garbage-parquet": Case(
        prepare=lambda tmp, mp: _write(tmp / "g.parquet", GARBAGE),
        call=lambda tmp, mp: load_table(tmp / "g.parquet", user="u", item="i"),
        error=DataError,
        needles=("{tmp}/g.parquet", "not a readable Parquet file"),
        argv=["data", "info", "{tmp}/g.parquet"],  # no mapping: the schema is read first
    ),
    "csv-named-parquet": Case(
        prepare=lambda tmp, mp: _write(tmp / "c.parquet", GOOD_CSV),
        call=lambda tmp, mp: load_dataset(tmp / "c.parquet"),
        error=DataError,
        needles=("{tmp}/c.parquet", "not a readable Parquet file"),
    ),
    # item 6: --checksum sha1:abc
    "checksum-sha1": Case(
        call=lambda tmp, mp: fetch("ml-latest-small", tmp / "cache", checksum="sha1:abc"),
        error=ConfigError,
        needles=("sha1", "sha256", "md5"),
        argv=["data", "fetch", "ml-latest-small", "--checksum", "sha1:abc"],
        untouched=("cache",),
    ),
    "checksum-short": Case(
        call=lambda tmp, mp: fetch("ml-latest-small", tmp / "cache", checksum="sha256:abc"),
        error=ConfigError,
        needles=("64 hex digits",),
        argv=["data", "fetch", "ml-latest-small", "--checksum", "sha256:abc"],
        untouched=("cache",),
    ),
    # item 6: an unbalanced quote in a CSV names the file and the line
    "unbalanced-quote": Case(
        prepare=lambda tmp, mp: _write(tmp / "q.csv", 'user,item,rating\n1,10,4\n2,"20,5\n3,10,1\n'),
        call=lambda tmp, mp: load_dataset(tmp / "q.csv"),
        error=DataError,
        needles=("{tmp}/q.csv, line 3", "unbalanced quote"),
        line=3,
        argv=["data", "info", "{tmp}/q.csv"],
    ),
    "unbalanced-quotes-paired": Case(
        prepare=lambda tmp, mp: _write(
            tmp / "q2.csv", 'user,item,rating\n1,10,4\n1,"20,5\n2,10,3\n2,"30,1\n3,10,2\n'
        ),
        call=lambda tmp, mp: load_dataset(tmp / "q2.csv"),
        error=DataError,
        needles=("{tmp}/q2.csv, line 3", "unbalanced quote", "to line 5"),
        line=3,
    ),
    # item 6: binary garbage in a CSV header is shown escaped, never raw
    "binary-header": Case(
        prepare=lambda tmp, mp: _write(tmp / "b.csv", b"\x1b[2J\x00\x07us\xffer,item\n1,2\n"),
        call=lambda tmp, mp: load_table(tmp / "b.csv", user="user", item="item"),
        error=DataError,
        needles=("missing column(s) 'user'", "\\x1b[2J\\x00\\x07"),
        line=1,
        argv=["data", "info", "{tmp}/b.csv", "--user-col", "user", "--item-col", "item"],
    ),
    "binary-header-guessed": Case(
        prepare=lambda tmp, mp: _write(tmp / "b2.csv", b"\x1b]0;pwned\x07,\x08\x08x\n1,2\n"),
        call=lambda tmp, mp: load_dataset(tmp / "b2.csv"),
        error=DataError,
        needles=("no user/item columns recognised", "'\\x1b]0'", "'pwned\\x07'"),
        argv=["data", "info", "{tmp}/b2.csv"],
    ),
    "binary-rating-value": Case(
        prepare=lambda tmp, mp: _write(tmp / "v.csv", b"u,i,r\n1,2,4\n1,3,\x1b[31mred\n"),
        call=lambda tmp, mp: load_table(tmp / "v.csv", user="u", item="i", rating="r"),
        error=DataError,
        needles=("\\x1b[31mred", "line 3"),
        line=3,
    ),
    # item 6 / 12: data eda without matplotlib names a command that works from a clone
    "eda-without-matplotlib": Case(
        prepare=lambda tmp, mp: _hide_matplotlib(mp),
        call=lambda tmp, mp: _eda(tmp, tmp / "eda"),
        error=ConfigError,
        needles=("pip install -e '.[plots]'", "matplotlib"),
        argv=["data", "eda", "{tmp}/good.csv", "--out", "{tmp}/eda"],
        untouched=("eda",),
    ),
    # item 6: eda --out unwritable or invalid
    "eda-out-is-a-file": Case(
        prepare=lambda tmp, mp: _write(tmp / "eda.png", "a file"),
        call=lambda tmp, mp: _eda(tmp, tmp / "eda.png"),
        error=ConfigError,
        needles=("{tmp}/eda.png", "not a directory"),
        argv=["data", "eda", "{tmp}/good.csv", "--out", "{tmp}/eda.png"],
    ),
    "eda-out-below-a-file": Case(
        prepare=lambda tmp, mp: _write(tmp / "eda.png", "a file"),
        call=lambda tmp, mp: _eda(tmp, tmp / "eda.png" / "sub"),
        error=ConfigError,
        needles=("{tmp}/eda.png",),
        argv=["data", "eda", "{tmp}/good.csv", "--out", "{tmp}/eda.png/sub"],
    ),
    "eda-out-read-only": Case(
        prepare=lambda tmp, mp: ((tmp / "ro").mkdir(), _read_only(mp)),
        call=lambda tmp, mp: _eda(tmp, tmp / "ro"),
        error=ConfigError,
        needles=("{tmp}/ro", "not writable", "Read-only file system"),
        argv=["data", "eda", "{tmp}/good.csv", "--out", "{tmp}/ro"],
        untouched=("ro",),
    ),
    # item 8: a read-only cache says so, naming it and LENSREC_DATA, not "download failed"
    "cache-read-only": Case(
        prepare=lambda tmp, mp: ((tmp / "cache").mkdir(), _read_only(mp)),
        call=lambda tmp, mp: fetch("ml-1m", tmp / "cache"),
        error=ConfigError,
        needles=("{tmp}/cache", "not writable", "LENSREC_DATA"),
        argv=["data", "fetch", "ml-1m"],
        untouched=("cache",),
    ),
    "cache-is-a-file": Case(
        prepare=lambda tmp, mp: _write(tmp / "cache", "a file"),
        call=lambda tmp, mp: fetch("ml-1m", tmp / "cache"),
        error=ConfigError,
        needles=("{tmp}/cache", "not a directory", "LENSREC_DATA"),
        argv=["data", "fetch", "ml-1m"],
    ),
    # item 8: --archive errors say the archive is bad, naming the file
    "archive-not-a-zip": Case(
        prepare=lambda tmp, mp: _write(tmp / "a.zip", GARBAGE),
        call=lambda tmp, mp: fetch("ml-latest-small", tmp / "cache", url=(tmp / "a.zip").as_uri(),
                                   checksum=f"sha256:{_sha256(GARBAGE)}"),
        error=DataError,
        needles=("{tmp}/a.zip", "bad archive"),
        argv=["data", "fetch", "ml-latest-small", "--archive", "{tmp}/a.zip",
              "--checksum", f"sha256:{_sha256(GARBAGE)}"],
        untouched=("cache",),
    ),
    "archive-empty": Case(
        prepare=lambda tmp, mp: _write(tmp / "e.zip", b""),
        call=lambda tmp, mp: fetch("ml-latest-small", tmp / "cache", archive=tmp / "e.zip",
                                   checksum=f"sha256:{_sha256(b'')}"),
        error=DataError,
        needles=("{tmp}/e.zip", "bad archive"),
        argv=["data", "fetch", "ml-latest-small", "--archive", "{tmp}/e.zip",
              "--checksum", f"sha256:{_sha256(b'')}"],
        untouched=("cache",),
    ),
    "archive-not-official": Case(
        prepare=lambda tmp, mp: _write(tmp / "n.zip", GARBAGE),
        call=lambda tmp, mp: fetch("ml-latest-small", tmp / "cache", archive=tmp / "n.zip"),
        error=DataError,
        needles=("{tmp}/n.zip", "checksum mismatch", "not the official ml-latest-small archive"),
        argv=["data", "fetch", "ml-latest-small", "--archive", "{tmp}/n.zip"],
        untouched=("cache",),
    ),
}  # fmt: skip


def _check_message(msg: str, tmp: Path, case: Case) -> None:
    msg = msg.removesuffix("\n")
    assert "\n" not in msg, msg
    assert msg.isprintable(), repr(msg)  # no raw control bytes reach a terminal
    for needle in case.needles:
        assert needle.replace("{tmp}", str(tmp)) in msg, (needle, msg)
    assert "Traceback" not in msg and "download failed" not in msg and "file://" not in msg


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_naming_what_is_wrong(name, tmp_path, monkeypatch):
    case = CASES[name]
    monkeypatch.setenv("LENSREC_DATA", str(tmp_path / "cache"))
    _write(tmp_path / "good.csv", GOOD_CSV)
    case.prepare(tmp_path, monkeypatch)
    with pytest.raises(case.error) as info:
        case.call(tmp_path, monkeypatch)
    _check_message(str(info.value), tmp_path, case)
    if case.line is not None:
        assert info.value.line == case.line
    for rel in case.untouched:
        assert _files(tmp_path / rel) == [], rel


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.argv is not None])
def test_bad_input_on_the_command_line_exits_2_with_one_line(name, tmp_path, monkeypatch, capsys):
    from lensrec.cli import main

    case = CASES[name]
    monkeypatch.setenv("LENSREC_DATA", str(tmp_path / "cache"))
    _write(tmp_path / "good.csv", GOOD_CSV)
    case.prepare(tmp_path, monkeypatch)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in case.argv or []]
    assert main(["-q", *argv]) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("lensrec: error: ") and err.count("\n") == 1, err
    _check_message(err, tmp_path, case)
    for rel in case.untouched:
        assert _files(tmp_path / rel) == [], rel
