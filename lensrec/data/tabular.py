"""Any CSV / TSV / Parquet ratings table with a column mapping, and the shared reading checks.

The fast path hands the whole file to polars. Only when polars refuses it (or a value is
out of range) do we look for the first offending line, with a vectorised scan, so that
every :class:`~lensrec.errors.DataError` names the file, the 1-based line and the reason.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt
import polars as pl

from ..errors import ConfigError, DataError, RatingOutlierWarning
from .interactions import Interactions, require_columns, shown_text

_log = logging.getLogger(__name__)

__all__ = [
    "load_table",
    "RatingScale",
    "RatingOutlierWarning",
    "InferredScale",
    "infer_rating_scale",
    "COMMON_SCALES",
    "TABLE_EXTENSIONS",
]

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
    def coerce(cls, value: Any, *, option: str = "rating_scale") -> RatingScale | None:
        """A scale from ``(low, high)`` or ``(low, high, step)``; None and scales pass through.

        Raises :class:`ConfigError` naming ``option`` when the values are not numbers, low is
        not below high, the step is not positive or does not divide ``high - low``.
        """
        if value is None or isinstance(value, RatingScale):
            return value
        how = (
            f"{option} (CLI: --{option.replace('_', '-')} LOW,HIGH[,STEP]) takes (low, high) "
            "or (low, high, step) with low < high"
        )
        try:
            vals = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            raise ConfigError(f"{how}; got {value!r}") from None
        if len(vals) not in (2, 3) or not all(math.isfinite(v) for v in vals):
            raise ConfigError(f"{how}; got {value!r}")
        low, high = vals[0], vals[1]
        shown = ", ".join(f"{v:g}" for v in vals)
        if not low < high:
            raise ConfigError(f"{how}; got ({shown}): low must be below high (not reversed)")
        step = vals[2] if len(vals) == 3 else None
        if step is not None:
            k = (high - low) / step if step > 0 else -1.0
            if step <= 0 or abs(k - round(k)) > 1e-6:
                raise ConfigError(
                    f"{how}; got ({shown}): the step must be positive and divide high - low"
                )
        return cls(low, high, step)

    def __str__(self) -> str:
        fmt = "{:g}".format
        base = f"{fmt(self.low)}..{fmt(self.high)}"
        return base if self.step is None else f"{base} in steps of {fmt(self.step)}"

    def to_dict(self) -> dict[str, float | None]:
        """``{"low": ..., "high": ..., "step": ...}`` (plain floats, step None when continuous)."""
        return {"low": self.low, "high": self.high, "step": self.step}

    def violations(self, r: np.ndarray) -> np.ndarray:
        """Boolean mask of values off this scale (NaN counts as off)."""
        bad = ~np.isfinite(r) | (r < self.low) | (r > self.high)
        if self.step:
            k = (r - self.low) / self.step
            bad |= np.abs(k - np.round(k)) > 1e-6
        return bad


#: Common rating scales, tried narrowest first when a file declares none (see
#: :func:`infer_rating_scale`): whole stars (MovieLens 100k/1M, Netflix, Amazon), half stars
#: (MovieLens 10M and later), 1..7 (Likert), 1..10 and 0..10 (IMDb, Book-Crossing).
COMMON_SCALES: tuple[RatingScale, ...] = (
    RatingScale(1.0, 5.0, 1.0),
    RatingScale(0.5, 5.0, 0.5),
    RatingScale(1.0, 7.0, 1.0),
    RatingScale(1.0, 10.0, 1.0),
    RatingScale(0.5, 10.0, 0.5),
    RatingScale(0.0, 10.0, 1.0),
)
#: At most this share of the ratings (and at least one rating) may lie outside a common scale
#: for it still to be taken, those ratings then being flagged as outliers.
OUTLIER_SHARE = 0.001
_TOP2 = round(2 * max(s.high for s in COMMON_SCALES))  # the half-grid index of the top value


@dataclass(frozen=True)
class InferredScale:
    """What :func:`infer_rating_scale` found: the scale, how, and the ratings outside it."""

    scale: RatingScale
    source: Literal["inferred", "observed"]
    outliers: np.ndarray  # row positions (int64) of the ratings outside ``scale``

    def describe(self) -> str:
        """``"1..5 in steps of 1 (inferred from the data)"`` or ``"... (the range of the data)"``."""
        how = "inferred from the data" if self.source == "inferred" else "the range of the data"
        return f"{self.scale} ({how})"


def _data_step(r: np.ndarray) -> float | None:
    """1 when every value is whole, 0.5 when every value is a multiple of a half, else None."""
    for step in (1.0, 0.5):
        k = r / step
        if np.all(np.abs(k - np.round(k)) <= 1e-6):
            return step
    return None


def infer_rating_scale(ratings: npt.ArrayLike) -> InferredScale | None:
    """The rating scale a table most likely uses, when it declares none.

    The first of :data:`COMMON_SCALES` (narrowest first) is taken whose grid holds every
    rating inside its range, whose top value the data reach, and outside which lie no more
    than :data:`OUTLIER_SHARE` of the ratings (at least one may): those are outliers, kept but
    reported (a single 7 among 1..5 stars). When no common scale fits, the data's own range
    is the scale (``source="observed"``, whole or half steps when every value is one), with no
    outliers: unusual data (play counts, -10..10 jokes) are legitimate, never rejected.
    None for no ratings.

    Examples
    --------
    >>> g = infer_rating_scale([4.0, 5.0, 3.0, 1.0, 7.0, 2.0, 4.0, 5.0])
    >>> g.describe(), g.outliers.tolist()
    ('1..5 in steps of 1 (inferred from the data)', [4])
    >>> str(infer_rating_scale([0.5, 4.5, 5.0]).scale)
    '0.5..5 in steps of 0.5'
    >>> infer_rating_scale([3.2, 17.5]).describe()
    '3.2..17.5 (the range of the data)'
    """
    r = np.asarray(ratings, dtype=np.float64).ravel()
    r = r[np.isfinite(r)]
    n = r.size
    if n == 0:
        return None
    allowance = max(1, int(n * OUTLIER_SHARE))
    # O(n) in a few passes: every common scale lives on the half grid of 0..10, so a
    # histogram of those 21 values plus the few values off the half grid answer every check
    twice = r * 2.0
    on_half = np.abs(twice - np.round(twice)) <= 1e-6
    off = r[~on_half]
    if off.size <= allowance:
        h = np.round(twice[on_half]).astype(np.int64)
        hist = np.bincount(h[(h >= 0) & (h <= _TOP2)], minlength=_TOP2 + 1)
        for scale in COMMON_SCALES:
            a, b, stride = (
                round(2 * scale.low),
                round(2 * scale.high),
                round(2 * (scale.step or 0.5)),
            )
            in_range = hist[a : b + 1]
            off_in = int(np.count_nonzero((off >= scale.low) & (off <= scale.high)))
            n_out = n - int(in_range.sum()) - off_in
            if off_in or n_out > allowance or n_out == n or in_range[-1] == 0:
                continue
            if stride > 1 and any(in_range[j::stride].any() for j in range(1, stride)):
                continue  # half stars on a whole-star scale
            rows = np.flatnonzero((r < scale.low) | (r > scale.high))
            return InferredScale(scale, "inferred", rows.astype(np.int64))
    lo, hi = float(r.min()), float(r.max())
    step = _data_step(r) if hi > lo and off.size == 0 else None
    return InferredScale(RatingScale(lo, hi, step), "observed", np.empty(0, np.int64))


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
        require_columns(header, schema, file=file, line=1)
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
        raise DataError(
            f"cannot read the header ({reader_reason(exc)})", file=file, line=1
        ) from None


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


def reader_reason(exc: BaseException) -> str:
    """The first line of a reader's message, escaped and shortened (it may quote file bytes)."""
    text = str(exc).strip()
    return shown_text(text.splitlines()[0], 120) if text else type(exc).__name__


def _quote_spans(data: bytes, quote: bytes, ends: np.ndarray) -> list[tuple[int, int | None]]:
    """1-based (first, last) lines of every quoted field that runs over a line end.

    Each quote character toggles "inside a quoted field" (a doubled quote toggles twice), so
    the parity of the quotes seen up to a line's end says whether a field is still open
    there. ``last`` is None for a field still open at the end of the file.
    """
    arr = np.frombuffer(data, dtype=np.uint8)
    pos = np.flatnonzero(arr == quote[0])
    per_line = np.bincount(np.searchsorted(ends, pos), minlength=ends.size)[: ends.size]
    open_after = (np.cumsum(per_line % 2) % 2).astype(bool)
    starts = np.flatnonzero(open_after & ~np.concatenate(([False], open_after[:-1])))
    closes = np.flatnonzero(~open_after)
    spans: list[tuple[int, int | None]] = []
    for k in starts[:1000]:  # bounded: the first is reported
        after = closes[np.searchsorted(closes, k) :]
        spans.append((int(k) + 1, int(after[0]) + 1 if after.size else None))
    return spans


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
    spans: list[tuple[int, int | None]] = []
    qbyte = quote_char.encode() if quote_char else b""
    quoted = bool(qbyte) and qbyte in data
    if quoted:
        # a quote that never closes swallows the rest of the file: name the line it opens on
        spans = _quote_spans(data, qbyte, _line_bounds(data)[1])
        if spans and spans[-1][1] is None:
            raise DataError(
                f"unbalanced quote ({quote_char}): the quoted field opened on this line never "
                "closes",
                file=file,
                line=spans[-1][0],
            )
    if not spans:
        # one record per line: count the separators (outside quotes) per line, vectorised
        arr = np.frombuffer(data, dtype=np.uint8)
        starts, ends = _line_bounds(data)
        seps = np.flatnonzero(arr == ord(sep))
        if quoted:
            quotes = np.flatnonzero(arr == qbyte[0])
            seps = seps[np.searchsorted(quotes, seps) % 2 == 0]  # an even number before: outside
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
        _raise_span(spans, file=file, quote_char=quote_char)
        raise DataError(f"cannot parse ({reader_reason(exc)})", file=file) from None
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
                f"{_col_label(col)}: cannot read {_shown_value(raw[row])} as {kind}",
                file=file,
                line=row + 1 + hdr,
            )
    _raise_span(spans, file=file, quote_char=quote_char)
    raise DataError(f"cannot parse ({reader_reason(exc)})", file=file)


def _raise_span(spans: list[tuple[int, int | None]], *, file: str, quote_char: str | None) -> None:
    """A quoted field over several lines, in a file polars refused: the likely culprit."""
    if spans:
        first, last = spans[0]
        raise DataError(
            f"unbalanced quote ({quote_char}): a quoted field runs from this line to line {last}",
            file=file,
            line=first,
        )


def _shown_value(value: object) -> str:
    """A cell as quoted in a message: repr-style, escaped, at most 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:56] + "...'"


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
            raise DataError(
                f"rating {_shown_value(ratings[row])} is not a number", file=file, line=row + off
            )
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


_BOM = b"\xef\xbb\xbf"


def _file_sep(data: bytes, ext: str) -> str:
    """The separator the extension implies, unless the first line has none of it and another
    (``;``, tab, ``|``) is there: a ``.csv`` written with semicolons, as spreadsheets in many
    locales do, is read as such."""
    implied = TABLE_EXTENSIONS.get(ext)
    sniffed = _sniff_sep(data)
    if implied is None:
        return sniffed
    first = data[: max(data.find(b"\n"), 0) or len(data)]
    if implied.encode() not in first and sniffed.encode() in first:
        return sniffed
    return implied


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
        The file. ``.parquet``/``.pq`` (or a directory of ``*.parquet`` parts) is read as Parquet; ``.csv`` is comma-separated,
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
        ``(low, high)`` or ``(low, high, step)``; ratings off the scale raise. Without it the
        scale is inferred (:func:`infer_rating_scale`): ratings far outside it are kept and
        reported with a :class:`RatingOutlierWarning` naming the file, line and value.
    name
        Dataset name for run records (default: the file name without extension).
    duplicates
        Policy for repeated (user, item) pairs, as in :meth:`Interactions.from_frame`.

    Returns
    -------
    Interactions
        With ``stats["source"]`` the file path, ``stats["rating_scale"]`` (``low``, ``high``,
        ``step``, ``source``: ``"declared"``, ``"inferred"`` or ``"observed"``) for rated data
        and ``stats["rating_outliers"]`` (``count``, ``line``, ``value`` of the first) when
        ratings lie outside an inferred scale.

    Raises
    ------
    DataError
        Naming the file, the 1-based line (for Parquet: the 1-based row) and the reason, for
        a missing column, an empty file, a file that is not Parquet, an unbalanced quote, a
        value that does not parse, a missing or non-finite rating, or a rating off
        ``rating_scale``. Text quoted from the file is escaped (no raw control bytes).
    ConfigError
        A ``rating_scale`` that is not ``(low, high[, step])`` with ``low < high``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "r.csv"
    >>> _ = p.write_text("u,i,r\\na,x,4\\nb,x,5\\n")
    >>> load_table(p, user="u", item="i", rating="r")
    Interactions(r: 2 ratings, 2 users x 1 items)
    """
    path = Path(path)
    file = shown_text(str(path), None)
    scale = RatingScale.coerce(rating_scale)
    parts = is_parquet_dir(path)
    if not path.is_file() and not parts:
        raise DataError(
            "is a directory (without part-*.parquet files)" if path.is_dir() else "no such file",
            file=file,
        )
    ext = ".parquet" if parts else path.suffix.lower()
    user_c = _column_name(user, has_header)
    item_c = _column_name(item, has_header)
    rating_c = _column_name(rating, has_header)
    time_c = _column_name(timestamp, has_header)
    wanted = [c for c in (user_c, item_c, rating_c, time_c) if c is not None]
    row_word: Literal["line", "row"] = "line"

    if sep is None and ext in (".parquet", ".pq"):
        df = read_parquet(path, file=file)
        require_columns(df.columns, wanted, file=file)
        if df.height == 0:
            raise DataError("empty file: no rows", file=file, line=1)
        header_lines = 0
        row_word = "row"
    else:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DataError(f"cannot read the file ({exc.strerror or exc})", file=file) from None
        if data.startswith(_BOM):  # a UTF-8 byte-order mark is not part of the first name
            data = data[len(_BOM) :]
        if sep is None:
            sep = _file_sep(data, ext)
        schema: dict[str, Any] = {user_c: pl.String, item_c: pl.String}
        if rating_c is not None:
            schema[rating_c] = pl.Float64
        names = None
        if not has_header:
            n_fields = _count_fields(data, sep)
            names = [f"column_{k + 1}" for k in range(n_fields)]
            require_columns(
                names, wanted, file=file, line=1, found=f"the first line has {n_fields} fields"
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
    if rating_c is not None:
        _record_scale(inter, df[rating_c], scale, file=file, row_word=row_word, first=header_lines)
    return inter


#: what a Parquet reader raises on a damaged or foreign file (a polars panic included)
PARQUET_ERRORS = (pl.exceptions.PolarsError, OSError, pl.exceptions.PanicException)


def is_parquet_dir(path: Path) -> bool:
    """Whether ``path`` is a directory of Parquet parts (as Spark and ``lensrec data synth``
    write them), read as one table in the parts' name order."""
    return path.is_dir() and any(path.glob("*.parquet"))


def read_parquet(path: Path, *, file: str, schema_only: bool = False) -> Any:
    """A Parquet file (or a directory of parts) as a frame (or its column names);
    :class:`DataError` naming the file when it is not Parquet or is damaged."""
    if is_parquet_dir(path):
        path = path / "*.parquet"
    try:
        return list(pl.read_parquet_schema(path)) if schema_only else pl.read_parquet(path)
    except PARQUET_ERRORS as exc:
        raise DataError(f"not a readable Parquet file ({reader_reason(exc)})", file=file) from None


def _record_scale(
    inter: Interactions,
    ratings: pl.Series,
    declared: RatingScale | None,
    *,
    file: str,
    row_word: str,
    first: int,
) -> None:
    """Put the rating scale in ``inter.stats``; infer it when none was declared and warn about
    ratings far outside it (:class:`RatingOutlierWarning`, naming file, line and value).

    ``stats["rating_scale"]`` is ``{"low", "high", "step", "source"}`` with source
    ``"declared"``, ``"inferred"`` (a common scale fits) or ``"observed"`` (the data's range);
    ``stats["rating_outliers"]``, when some lie outside an inferred scale, is ``{"count",
    "line", "value"}`` of the first one (its line in the file, or row of a Parquet file).
    """
    if declared is not None:
        inter.stats["rating_scale"] = {**declared.to_dict(), "source": "declared"}
        return
    r = ratings.cast(pl.Float64, strict=False).to_numpy()
    guess = infer_rating_scale(r)
    if guess is None:
        return
    inter.stats["rating_scale"] = {**guess.scale.to_dict(), "source": guess.source}
    if guess.outliers.size == 0:
        return
    row = int(guess.outliers[0])
    value, count, line = float(r[row]), int(guess.outliers.size), row + first + 1
    inter.stats["rating_outliers"] = {"count": count, "line": line, "value": value}
    others = f" (and {count - 1} more)" if count > 1 else ""
    warnings.warn(
        RatingOutlierWarning(
            f"{file}, {row_word} {line}: rating {value:g}{others} lies outside the scale "
            f"{guess.scale} inferred from the other ratings; kept (declare the scale, "
            "rating_scale= or --rating-scale, to reject such ratings)",
            file=file,
            line=line,
            value=value,
            count=count,
        ),
        stacklevel=3,
    )


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
        raise DataError(
            f"cannot read timestamp {_shown_value(text[row])}", file=file, line=row + off
        )
    return as_time
