"""Item metadata from a user's own file: an id column, a title, and any other columns.

``lensrec ... --item-info items.csv`` (``load_dataset(..., item_info=...)`` in Python) attaches
it to the ratings as :attr:`Interactions.item_info`, so that models trained on them keep the
titles and ``recommend`` / ``similar`` show them, as they do for MovieLens.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import polars as pl

from ..errors import DataError
from .interactions import Interactions, shown_text
from .tabular import _BOM, _file_sep, read_delimited, read_parquet

__all__ = ["load_item_info", "attach_item_info", "ID_COLUMNS", "TITLE_COLUMNS"]

#: id column names tried in order (else the first column)
ID_COLUMNS = ("item_id", "item", "itemId", "movieId", "movie_id", "id")
#: title column names tried in order
TITLE_COLUMNS = ("title", "name", "item_title", "movie_title")


def load_item_info(
    path: str | os.PathLike[str], *, id_col: str | None = None, sep: str | None = None
) -> pl.DataFrame:
    """Read an item metadata file (CSV / TSV / Parquet with a header) into ``item_id``,
    ``title`` and the file's other columns (kept as text).

    The id column is ``id_col`` or the first of :data:`ID_COLUMNS` present, else the first
    column; the title column the first of :data:`TITLE_COLUMNS` present. A file without a
    title column, or with an id repeated, raises :class:`DataError` naming the file (and
    line).
    """
    path = Path(path)
    file = shown_text(str(path), None)
    if not path.is_file():
        raise DataError("no such file (--item-info takes id,title,... rows)", file=file)
    ext = path.suffix.lower()
    header_lines = 0
    if ext in (".parquet", ".pq") and sep is None:
        df = read_parquet(path, file=file)
    else:
        data = path.read_bytes()
        if data.startswith(_BOM):
            data = data[len(_BOM) :]
        df = read_delimited(
            data,
            file=file,
            sep=sep or _file_sep(data, ext),
            has_header=True,
            quote_char='"',
            infer=False,
        )
        header_lines = 1
    cols = df.columns
    idc = id_col or next((c for c in ID_COLUMNS if c in cols), cols[0])
    if idc not in cols:
        raise DataError(f"no id column {idc!r}; the columns are {cols}", file=file, line=1)
    title = next((c for c in TITLE_COLUMNS if c in cols and c != idc), None)
    if title is None:
        raise DataError(
            f"no title column ({' or '.join(TITLE_COLUMNS[:2])}) among {cols}; an item info "
            "file has an id column, a title column and any others",
            file=file,
            line=1 if header_lines else None,
        )
    ids = df[idc].cast(pl.String).str.strip_chars()
    if ids.null_count():
        row = int(ids.is_null().arg_true()[0])
        raise DataError(
            f"missing item id in column {idc!r}", file=file, line=row + 1 + header_lines
        )
    dup = ids.is_duplicated()
    if dup.any():
        row = int(dup.arg_true()[1])
        raise DataError(
            f"item id {ids[row]!r} appears twice (one row per item)",
            file=file,
            line=row + 1 + header_lines,
        )
    others = [c for c in cols if c not in (idc, title)]
    return pl.DataFrame(
        {"item_id": ids, "title": df[title].cast(pl.String), **{c: df[c] for c in others}}
    )


def attach_item_info(inter: Interactions, info: pl.DataFrame, *, source: str = "") -> Interactions:
    """``inter`` with ``info`` as its item table, ids typed as the ratings' item ids.

    Rows for items not in the ratings are kept (harmless); ``stats["item_info"]`` counts how
    many of the ratings' items got a title.
    """
    ids = info["item_id"]
    if inter.item_ids.is_integer:
        ids = ids.cast(pl.Int64, strict=False)
    info = info.with_columns(item_id=ids).filter(pl.col("item_id").is_not_null())
    found = inter.item_ids.lookup(info["item_id"].to_numpy())
    matched = int((found >= 0).sum())
    stats: dict[str, Any] = {
        **inter.stats,
        "item_info": {"source": source, "rows": info.height, "matched": matched},
    }
    return dataclasses.replace(inter, item_info=info, stats=stats)
