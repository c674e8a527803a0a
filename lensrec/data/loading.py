"""Loading any dataset by name or path: a MovieLens name, or a ratings file with a column mapping.

:func:`load_dataset` is the one entry point the CLI, run specs and notebooks use. A registry
name goes to :func:`~lensrec.data.movielens.load_movielens`; an existing CSV / TSV / Parquet
file goes to :func:`~lensrec.data.tabular.load_table`, with its columns guessed from the first
line when no mapping is given.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ..errors import DataError
from .interactions import Interactions
from .item_info import attach_item_info, load_item_info
from .movielens import REGISTRY, load_movielens
from .tabular import is_parquet_dir, load_table, read_parquet

__all__ = ["load_dataset"]


def load_dataset(
    spec: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: bool = False,
    **mapping: Any,
) -> Interactions:
    """A registry name -> :func:`load_movielens`; an existing file -> :func:`load_table`.

    ``mapping`` holds :func:`load_table`'s keywords (``user=``, ``item=``, ``rating=``,
    ``timestamp=``, ``sep=``, ...). For a file without ``user``/``item`` the MovieLens CSV
    names (``userId``, ``movieId``, ``rating``, ``timestamp``) are tried, then
    ``user_id``/``item_id`` and ``user``/``item``; a file whose first line is all numbers
    is read as headerless with columns user, item[, rating[, timestamp]].

    ``item_info`` (a path) attaches an item metadata file (id, title and any other
    columns, see :func:`~lensrec.data.item_info.load_item_info`): models trained on the data
    keep the titles, and the command line shows them.
    """
    text = os.fspath(spec)
    info_file = mapping.pop("item_info", None)
    inter: Interactions | None = None
    if text in REGISTRY:
        if mapping:
            raise DataError(
                f"column mapping {sorted(mapping)} does not apply to registry dataset {text!r}"
            )
        inter = load_movielens(text, cache_dir, download=download, progress=progress)
    elif Path(text).is_file() or is_parquet_dir(Path(text)):
        path = Path(text)
        if "user" not in mapping or "item" not in mapping:
            mapping = {**_guess_mapping(path), **mapping}
        inter = load_table(path, **mapping)
    if inter is not None:
        if info_file is not None:
            info = load_item_info(info_file)
            inter = attach_item_info(inter, info, source=os.fspath(info_file))
        return inter
    raise DataError(
        f"{text!r} is neither a known dataset ({', '.join(REGISTRY)}) nor an existing file"
    )


def _guess_mapping(path: Path) -> dict[str, Any]:
    """Column mapping for a file given without one, from its first line.

    A header with MovieLens-style names maps by name; a first line of numbers only (a
    headerless file such as ``u.data``) maps by position: user, item, then rating and
    timestamp when present.
    """
    cols: list[str]
    if path.suffix.lower() in (".parquet", ".pq") or is_parquet_dir(path):
        cols = read_parquet(path, file=str(path), schema_only=True)
    else:
        with open(path, "rb") as fh:
            first = fh.readline().decode("utf-8-sig", "replace").strip()
        if not first:
            raise DataError(
                "the file is empty (or its first line is blank)", file=str(path), line=1
            )
        cols = re.split(r"::|[,\t;|]", first)
        fields = [c.strip() for c in cols]
        if len(fields) >= 2 and all(
            re.fullmatch(r"[-+]?\d+(\.\d*)?([eE][-+]?\d+)?", f) for f in fields
        ):
            names = ("user", "item", "rating", "timestamp")
            return {"has_header": False, **{n: j for j, n in enumerate(names[: len(fields)])}}
    cols = [c.strip().strip('"') for c in cols]
    for user, item, rating, ts in (
        ("userId", "movieId", "rating", "timestamp"),
        ("user_id", "item_id", "rating", "timestamp"),
        ("user", "item", "rating", "timestamp"),
    ):
        if user in cols and item in cols:
            out: dict[str, Any] = {"user": user, "item": item}
            if rating in cols:
                out["rating"] = rating
            if ts in cols:
                out["timestamp"] = ts
            return out
    raise DataError(
        f"no column mapping given and no user/item columns recognised in {cols}; "
        "pass user= and item= (CLI: --user-col/--item-col)",
        file=str(path),
        line=1,
    )
