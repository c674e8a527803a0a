"""Any CSV / TSV / Parquet ratings table with a column mapping, and the shared reading checks.

The fast path hands the whole file to polars. Only when polars refuses it (or a value is
out of range) do we look for the first offending line, with a vectorised scan, so that
every :class:`~lensrec.errors.DataError` names the file, the 1-based line and the reason.
"""

from __future__ import annotations

import io
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import polars as pl

from ..errors import DataError
from .interactions import Interactions

_log = logging.getLogger(__name__)

__all__ = ["load_table", "RatingScale", "TABLE_EXTENSIONS"]

#: file extensions :func:`load_table` recognises, with the separator they imply
TABLE_EXTENSIONS: dict[str, str | None] = {
    ".csv": ",",
    ".tsv": "\t",
    ".tab": "\t",
    ".dat": "::",
    ".parquet": None,
    ".pq": None,
}
_UNIT_SEP = "\x1f"  # one byte that real tables do not contain; stands in for '::'
_INT_ID = re.compile(r"^(0|-?[1-9][0-9]{0,17})$")


@dataclass(frozen=True)
class RatingScale:
    """Allowed ratings: ``low <= r <= high`` and, when ``step`` is set, ``r = low + k*step``."""

    low: float
    high: float
    step: float | None = None

    @classmethod
    def coerce(cls, value: Any) -> RatingScale | None:
        if value is None or isinstance(value, RatingScale):
            return value
        vals = tuple(float(v) for v in value)
        if len(vals) not in (2, 3) or vals[0] > vals[1]:
            raise ValueError(
                f"rating_scale must be (low, high) or (low, high, step), got {value!r}"
            )
        return cls(*vals)

    def __str__(self) -> str:
        fmt = "{:g}".format
        base = f"{fmt(self.low)}..{fmt(self.high)}"
        return base if self.step is None else f"{base} in steps of {fmt(self.step)}"

    def violations(self, r: np.ndarray) -> np.ndarray:
        """Boolean mask of values off this scale (NaN counts as off)."""
        bad = ~np.isfinite(r) | (r < self.low) | (r > self.high)
        if self.step:
            k = (r - self.low) / self.step
            bad |= np.abs(k - np.round(k)) > 1e-6
        return bad


# --- reading delimited text ----------------------------------------------------------------
def read_delimited(
    src: bytes | Path,
    *,
    file: str,
    sep: str,
    has_header: bool,
    names: list[str] | None = None,
    schema: dict[str, Any] | None = None,
    quote_char: str | None = None,
    infer: bool = True,
) -> pl.DataFrame:
    """Parse delimited text with polars; on failure raise :class:`DataError` at the first bad line.

    ``src`` is the file's bytes or its path (a path with a one-byte separator is handed to
    polars directly, without a copy in Python). ``names`` names the columns of a header-less
    file (all of them); ``schema`` gives the dtype of some columns (by name). A multi-byte
    ``sep`` (``'::'``) is replaced by one byte first so polars can parse it. With a header,
    columns not in ``schema`` are inferred, or read as text when ``infer`` is False (zip codes
    such as ``05201`` keep their zeros). Row ``k`` of the
    result is line ``k + 1`` (``k + 2`` with a header); trailing blank lines are dropped.
    """
    if isinstance(src, Path) and len(sep) != 1:
        src = src.read_bytes()
    if isinstance(src, bytes) and len(sep) != 1:
        if _UNIT_SEP.encode() in src:
            line = src[: src.index(_UNIT_SEP.encode())].count(b"\n") + 1
            raise DataError("unexpected control byte 0x1f", file=file, line=line)
        src = src.replace(sep.encode(), _UNIT_SEP.encode())
        sep = _UNIT_SEP
    if isinstance(src, Path):
        with open(src, "rb") as fh:
            head = fh.read(1 << 16)
        if not head.strip():
            raise DataError("empty file", file=file, line=1)
        first_line = head.split(b"\n", 1)[0]
        polars_input: Any = src
    else:
        if not src.strip():
            raise DataError("empty file", file=file, line=1)
        first_line = src.split(b"\n", 1)[0]
        polars_input = io.BytesIO(src)
    schema = dict(schema or {})
    kwargs: dict[str, Any] = {"separator": sep, "quote_char": quote_char, "has_header": has_header}
    if has_header:
        header = _header(first_line, file=file, sep=sep, quote_char=quote_char)
        missing = [c for c in schema if c not in header]
        if missing:
            raise DataError(
                f"missing column(s) {', '.join(map(repr, missing))}; header has {header}",
                file=file,
                line=1,
            )
        kwargs["schema_overrides"] = schema
        if not infer:
            kwargs["infer_schema"] = False
    else:
        if names is None:
            raise ValueError("names are needed for a file without header")
        kwargs["schema"] = {n: schema.get(n, pl.String) for n in names}
    try:
        df = pl.read_csv(polars_input, **kwargs)
    except (pl.exceptions.PolarsError, pl.exceptions.NoDataError) as exc:
        data = src.read_bytes() if isinstance(src, Path) else src
        _diagnose(
            data,
            file=file,
            sep=sep,
            has_header=has_header,
            names=names,
            schema=schema,
            quote_char=quote_char,
            exc=exc,
        )
        raise AssertionError("unreachable") from None  # _diagnose always raises
    df = _drop_trailing_blank(df)
    if df.height == 0:
        raise DataError("empty file: no data rows", file=file, line=2 if has_header else 1)
    return df


def _header(first: bytes, *, file: str, sep: str, quote_char: str | None) -> list[str]:
    first = first.split(b"\n", 1)[0]
    try:
        return pl.read_csv(
            io.BytesIO(first + b"\n"),
            separator=sep,
            quote_char=quote_char,
            has_header=True,
            n_rows=0,
        ).columns
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"cannot read the header ({_first_line(exc)})", file=file, line=1) from None


def _drop_trailing_blank(df: pl.DataFrame) -> pl.DataFrame:
    if df.height == 0:
        return df
    tail = min(df.height, 64)
    nulls = df.tail(tail).select(pl.all_horizontal(pl.all().is_null())).to_series().to_numpy()
    n_blank = 0
    for v in nulls[::-1]:  # bounded: at most 64 rows
        if not v:
            break
        n_blank += 1
    return df.head(df.height - n_blank) if n_blank else df


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _line_bounds(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end offsets of every line (end excludes the newline)."""
    arr = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(arr == 10)
    ends = nl if (arr.size == 0 or arr[-1] == 10) else np.append(nl, arr.size)
    starts = np.concatenate(([0], nl + 1))[: ends.size]
    return starts, ends


def _diagnose(
    data: bytes,
    *,
    file: str,
    sep: str,
    has_header: bool,
    names: list[str] | None,
    schema: dict[str, Any],
    quote_char: str | None,
    exc: BaseException,
) -> None:
    """Find the first bad line after polars refused the file, and raise a DataError for it."""
    hdr = 1 if has_header else 0
    n_fields = len(names) if names is not None else None
    if n_fields is None and has_header:
        n_fields = len(_header(data, file=file, sep=sep, quote_char=quote_char))
    if quote_char is None or quote_char.encode() not in data:
        # unquoted: count separators per line, vectorised
        arr = np.frombuffer(data, dtype=np.uint8)
        starts, ends = _line_bounds(data)
        seps = np.flatnonzero(arr == ord(sep))
        counts = np.bincount(np.searchsorted(ends, seps), minlength=ends.size)[: ends.size] + 1
        length = ends - starts
        has_cr = np.zeros(ends.size, dtype=bool)
        nonempty = length > 0
        has_cr[nonempty] = arr[ends[nonempty] - 1] == 13
        blank = (length - has_cr) == 0
        bad = (counts != n_fields) & ~blank
        bad[:hdr] = False
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"expected {n_fields} fields, found {int(counts[row])}", file=file, line=row + 1
            )
    # read everything as text, then find the first value that does not convert
    try:
        kwargs: dict[str, Any] = {
            "separator": sep,
            "quote_char": quote_char,
            "has_header": has_header,
            "truncate_ragged_lines": True,
        }
        if has_header:
            kwargs["infer_schema"] = False
        else:
            kwargs["schema"] = {n: pl.String for n in names or []}
        text = pl.read_csv(io.BytesIO(data), **kwargs)
    except pl.exceptions.PolarsError:
        raise DataError(f"cannot parse ({_first_line(exc)})", file=file) from None
    for col, dtype in schema.items():
        if col not in text.columns:
            continue
        raw = text[col]
        conv = raw.str.strip_chars().cast(dtype, strict=False)
        bad_mask = conv.is_null() & raw.is_not_null()
        if bad_mask.any():
            row = int(bad_mask.arg_true()[0])
            kind = "an integer" if dtype in (pl.Int64, pl.Int32) else "a number"
            raise DataError(
                f"{_col_label(col)}: cannot read {raw[row]!r} as {kind}",
                file=file,
                line=row + 1 + hdr,
            )
    raise DataError(f"cannot parse ({_first_line(exc)})", file=file)


# --- checks after parsing ------------------------------------------------------------------
def _col_label(col: str) -> str:
    """``column 'rating'``, or ``column 3`` for the 1-based positional names of headerless files."""
    m = re.fullmatch(r"column_(\d+)", col)
    return f"column {m.group(1)}" if m else f"column {col!r}"


def check_columns(
    df: pl.DataFrame,
    *,
    file: str,
    required: list[str],
    rating: str | None = None,
    scale: RatingScale | None = None,
    header_lines: int = 0,
    row_word: Literal["line", "row"] = "line",
) -> None:
    """Raise :class:`DataError` at the first row with a missing value or an off-scale rating."""
    off = header_lines + 1
    null_rows = []
    for c in [*required, *([rating] if rating is not None and rating not in required else [])]:
        if df[c].null_count():
            null_rows.append((int(df[c].is_null().arg_true()[0]), c))
    if null_rows:
        row, col = min(null_rows)
        blank = all(v is None for v in df.row(row))
        reason = (
            "empty line" if blank and row_word == "line" else f"missing value in {_col_label(col)}"
        )
        raise DataError(reason, file=file, line=row + off)
    if rating is None:
        return
    ratings = df[rating]
    if not ratings.dtype.is_numeric():
        conv = ratings.cast(pl.Float64, strict=False)
        bad = conv.is_null() & ratings.is_not_null()
        if bad.any():
            row = int(bad.arg_true()[0])
            raise DataError(f"rating {ratings[row]!r} is not a number", file=file, line=row + off)
        ratings = conv
    r = ratings.cast(pl.Float64).to_numpy()
    nonfinite = ~np.isfinite(r)
    if nonfinite.any():
        row = int(np.flatnonzero(nonfinite)[0])
        raise DataError(f"rating {float(r[row])} is not a finite number", file=file, line=row + off)
    if scale is not None:
        off_scale = scale.violations(r)
        if off_scale.any():
            row = int(np.flatnonzero(off_scale)[0])
            raise DataError(
                f"rating {r[row]:g} is outside the scale {scale}", file=file, line=row + off
            )


def normalise_ids(col: pl.Series) -> pl.Series:
    """Integer ids stay (or become) Int64 when every value is a canonical integer; else strings.

    ``"007"`` stays a string so that no two distinct ids collapse into one.
    """
    if col.dtype.is_integer():
        return col.cast(pl.Int64)
    if col.dtype == pl.String:
        stripped = col.str.strip_chars()
        if stripped.str.contains(_INT_ID.pattern).all():
            return stripped.cast(pl.Int64)
        return stripped
    if col.dtype.is_float():
        return col
    return col.cast(pl.String)


# --- the public loader ---------------------------------------------------------------------
def _sniff_sep(data: bytes) -> str:
    first = data[: max(data.find(b"\n"), 0) or len(data)]
    if b"::" in first:
        return "::"
    counts = {s: first.count(s.encode()) for s in ("\t", ",", ";", "|")}
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] else ","


@overload
def _column_name(spec: str | int, has_header: bool) -> str: ...


@overload
def _column_name(spec: None, has_header: bool) -> None: ...


@overload
def _column_name(spec: str | int | None, has_header: bool) -> str | None: ...


def _column_name(spec: str | int | None, has_header: bool) -> str | None:
    if spec is None:
        return None
    if isinstance(spec, int):
        if has_header:
            raise ValueError("column positions (ints) are for files without a header")
        return f"column_{spec + 1}"
    return spec


def load_table(
    path: str | os.PathLike[str],
    *,
    user: str | int,
    item: str | int,
    rating: str | int | None = None,
    timestamp: str | int | None = None,
    sep: str | None = None,
    has_header: bool = True,
    rating_scale: RatingScale | tuple[float, ...] | None = None,
    name: str | None = None,
    duplicates: Literal["last", "error", "keep"] = "last",
) -> Interactions:
    """Load interactions from a CSV, TSV or Parquet file with a column mapping.

    Parameters
    ----------
    path
        The file. ``.parquet``/``.pq`` is read as Parquet; ``.csv`` is comma-separated,
        ``.tsv``/``.tab`` tab-separated, ``.dat`` ``'::'``-separated; anything else is
        sniffed from the first line unless ``sep`` is given.
    user, item
        Column names (or 0-based positions when ``has_header=False``). Ids may be integers,
        strings or UUID strings; a column whose every value is a canonical integer becomes
        int64, otherwise the ids are kept as strings (``"007"`` stays ``"007"``).
    rating
        Rating column, or None for implicit data.
    timestamp
        Seconds since the epoch (integers or floats) or date-time text; optional.
    sep
        Field separator; may be several characters (``'::'``).
    has_header
        Whether the first line names the columns (text files only).
    rating_scale
        ``(low, high)`` or ``(low, high, step)``; ratings off the scale raise.
    name
        Dataset name for run records (default: the file name without extension).
    duplicates
        Policy for repeated (user, item) pairs, as in :meth:`Interactions.from_frame`.

    Returns
    -------
    Interactions
        With ``stats["source"]`` the file path.

    Raises
    ------
    DataError
        Naming the file, the 1-based line (for Parquet: the 1-based row) and the reason, for
        a missing column, an empty file, a value that does not parse, a missing or non-finite
        rating, or a rating off ``rating_scale``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "r.csv"
    >>> _ = p.write_text("u,i,r\\na,x,4\\nb,x,5\\n")
    >>> load_table(p, user="u", item="i", rating="r")
    Interactions(r: 2 ratings, 2 users x 1 items)
    """
    path = Path(path)
    file = str(path)
    if not path.is_file():
        raise DataError("no such file", file=file)
    scale = RatingScale.coerce(rating_scale)
    ext = path.suffix.lower()
    user_c = _column_name(user, has_header)
    item_c = _column_name(item, has_header)
    rating_c = _column_name(rating, has_header)
    time_c = _column_name(timestamp, has_header)
    wanted = [c for c in (user_c, item_c, rating_c, time_c) if c is not None]
    row_word: Literal["line", "row"] = "line"

    if sep is None and ext in (".parquet", ".pq"):
        try:
            df = pl.read_parquet(path)
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise DataError(f"cannot read Parquet ({_first_line(exc)})", file=file) from None
        missing = [c for c in wanted if c not in df.columns]
        if missing:
            raise DataError(
                f"missing column(s) {', '.join(map(repr, missing))}; columns are {df.columns}",
                file=file,
            )
        if df.height == 0:
            raise DataError("empty file: no rows", file=file, line=1)
        header_lines = 0
        row_word = "row"
    else:
        data = path.read_bytes()
        if sep is None:
            sep = TABLE_EXTENSIONS.get(ext) or _sniff_sep(data)
        schema: dict[str, Any] = {user_c: pl.String, item_c: pl.String}
        if rating_c is not None:
            schema[rating_c] = pl.Float64
        names = None
        if not has_header:
            n_fields = _count_fields(data, sep)
            names = [f"column_{k + 1}" for k in range(n_fields)]
            missing = [c for c in wanted if c not in names]
            if missing:
                raise DataError(
                    f"missing column(s) {', '.join(map(repr, missing))}: "
                    f"the first line has {n_fields} fields",
                    file=file,
                    line=1,
                )
        df = read_delimited(
            data,
            file=file,
            sep=sep,
            has_header=has_header,
            names=names,
            schema=schema,
            quote_char='"',
        )
        header_lines = 1 if has_header else 0
        del data

    check_columns(
        df,
        file=file,
        required=[user_c, item_c],
        rating=rating_c,
        scale=scale,
        header_lines=header_lines,
        row_word=row_word,
    )
    cols = {user_c: normalise_ids(df[user_c]), item_c: normalise_ids(df[item_c])}
    if time_c is not None:
        cols[time_c] = _timestamps(df[time_c], file=file, header_lines=header_lines)
    df = df.with_columns(**cols)
    inter = Interactions.from_frame(
        df,
        user=user_c,
        item=item_c,
        rating=rating_c,
        timestamp=time_c,
        duplicates=duplicates,
        name=name or path.name.split(".")[0],
        source=file,
    )
    inter.stats["source"] = file
    return inter


def _count_fields(data: bytes, sep: str) -> int:
    end = data.find(b"\n")
    first = (data if end < 0 else data[:end]).rstrip(b"\r")
    return first.count(sep.encode()) + 1


def _timestamps(col: pl.Series, *, file: str, header_lines: int) -> pl.Series:
    """Seconds since the epoch (int64) from integers, floats or date-time text."""
    off = header_lines + 1
    if col.null_count():
        row = int(col.is_null().arg_true()[0])
        raise DataError("missing timestamp", file=file, line=row + off)
    if col.dtype.is_temporal():
        return col
    if col.dtype.is_numeric():
        return col.cast(pl.Float64).floor().cast(pl.Int64)
    text = col.cast(pl.String).str.strip_chars()
    as_num = text.cast(pl.Float64, strict=False)
    if as_num.null_count() == 0:
        return as_num.floor().cast(pl.Int64)
    as_time = text.str.to_datetime(strict=False)
    if as_time.null_count():
        row = int(as_time.is_null().arg_true()[0])
        raise DataError(f"cannot read timestamp {text[row]!r}", file=file, line=row + off)
    return as_time
