"""MovieLens: a registry of every variant, fetched, verified, parsed and cached as Parquet.

Cache layout (under :func:`cache_root`: ``cache_dir``, else ``$LENSREC_DATA``, else
``platformdirs.user_cache_dir("lensrec")``)::

    <cache>/<name>/raw/            the archive's data folder, as unpacked (GroupLens), or the
                                   three RecBole atomic files (ml-100k fallback)
    <cache>/<name>/ratings.parquet user_id, item_id, rating, timestamp; the file's row order
    <cache>/<name>/items.parquet   item_id, title, genres (list of str), year (null if unknown)
    <cache>/<name>/users.parquet   user_id and the demographics (ml-100k, ml-1m only)
    <cache>/<name>/manifest.json   written last: counts, source, url, verified checksums

Checksums: the registry keeps, for each archive, the sha256 published by
tensorflow-datasets (``tensorflow_datasets/url_checksums/movielens.txt``) and/or the md5
GroupLens publishes beside the archive (``<url>.md5``). ml-10m and ml-32m have only the
GroupLens md5; ml-latest changes over time and has none (it downloads with a warning).
Every checksum listed is verified.

ml-100k fallback: when GroupLens cannot be reached, ml-100k is taken from the copy inside
the ``recbole==1.2.1`` wheel (fetched with pip from the package index, every file verified
by sha256). Ratings and their row order are identical to ``u.data``; titles are rebuilt as
``"Title (year)"`` from RecBole's title and release year, which can differ slightly from
``u.item`` (``u.item`` has a few titles whose year in brackets is not the release year, and
one item, 267, titled ``"unknown"``). The source is recorded in the manifest and in
``Interactions.stats["source"]``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path
from typing import Any, Literal

import polars as pl

from .._io import atomic_write, atomic_write_json
from ..errors import ConfigError, DataError, LensrecWarning
from . import _download as dl
from ._download import cache_root
from .interactions import Interactions
from .tabular import (
    PARQUET_ERRORS,
    RatingScale,
    check_columns,
    read_delimited,
    reader_reason,
)

_log = logging.getLogger(__name__)

__all__ = [
    "MovieLensVariant",
    "REGISTRY",
    "DATASETS",
    "fetch",
    "is_cached",
    "load_movielens",
    "parse_raw",
    "cache_root",
]

Layout = Literal["100k", "1m", "10m", "csv"]
_BASE = "https://files.grouplens.org/datasets/movielens/"
_WHOLE_STARS = RatingScale(1.0, 5.0, 1.0)
_HALF_STARS = RatingScale(0.5, 5.0, 0.5)
_FORMAT = 1

SOURCE_GROUPLENS = "grouplens"
SOURCE_RECBOLE = "recbole-1.2.1 wheel"
SOURCE_ARCHIVE = "user archive"
SOURCE_URL = "user url"


@dataclass(frozen=True)
class MovieLensVariant:
    """One MovieLens archive: where it lives, how to check it and how it is laid out.

    Attributes
    ----------
    name : str
        Registry name (``"ml-100k"``).
    url : str
        Official download address.
    folder : str
        The data folder inside the zip (``ml-10m`` unpacks to ``ml-10M100K``).
    layout : {"100k", "1m", "10m", "csv"}
        ``"100k"``: ``u.data`` (tab), ``u.item`` / ``u.user`` (``|``, latin-1);
        ``"1m"``: ``ratings.dat`` / ``movies.dat`` / ``users.dat`` (``::``);
        ``"10m"``: as ``"1m"`` without ``users.dat``;
        ``"csv"``: ``ratings.csv`` / ``movies.csv`` with a header, genres ``|``-separated.
    scale : RatingScale
        Allowed ratings: whole stars 1..5 (ml-100k, ml-1m) or half stars 0.5..5.
    checksums : dict
        ``{"sha256": hex, "md5": hex}`` as far as published values are known; empty means
        the download is not verified (and warns).
    size : int or None
        Archive size in bytes, when known.
    """

    name: str
    url: str
    folder: str
    layout: Layout
    scale: RatingScale
    checksums: dict[str, str] = field(default_factory=dict)
    size: int | None = None
    description: str = ""


def _variant(
    name: str,
    layout: Layout,
    scale: RatingScale,
    *,
    folder: str | None = None,
    sha256: str | None = None,
    md5: str | None = None,
    size: int | None = None,
    description: str = "",
) -> MovieLensVariant:
    sums = {k: v for k, v in (("sha256", sha256), ("md5", md5)) if v}
    return MovieLensVariant(
        name, f"{_BASE}{name}.zip", folder or name, layout, scale, sums, size, description
    )


#: Every MovieLens variant lensrec knows, by name.
REGISTRY: dict[str, MovieLensVariant] = {
    v.name: v
    for v in (
        _variant(
            "ml-100k",
            "100k",
            _WHOLE_STARS,
            size=4_924_029,
            sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
            md5="0e33842e24a9c977be4e0107933c0723",
            description="100,000 ratings, 943 users, 1,682 movies (1998)",
        ),
        _variant(
            "ml-1m",
            "1m",
            _WHOLE_STARS,
            size=5_917_549,
            sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
            md5="c4d9eecfca2ab87c1945afe126590906",
            description="1,000,209 ratings, 6,040 users, 3,706 movies (2003)",
        ),
        _variant(
            "ml-10m",
            "10m",
            _HALF_STARS,
            folder="ml-10M100K",
            md5="ce571fd55effeba0271552578f2648bd",
            description="10,000,054 ratings, 69,878 users, 10,677 movies (2009)",
        ),
        _variant(
            "ml-20m",
            "csv",
            _HALF_STARS,
            size=198_702_078,
            sha256="96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
            md5="cd245b17a1ae2cc31bb14903e1204af3",
            description="20,000,263 ratings, 138,493 users, 26,744 movies (2015)",
        ),
        _variant(
            "ml-25m",
            "csv",
            _HALF_STARS,
            size=261_978_986,
            sha256="8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
            md5="6b51fb2759a8657d3bfcbfc42b592ada",
            description="25,000,095 ratings, 162,541 users, 59,047 movies (2019)",
        ),
        _variant(
            "ml-32m",
            "csv",
            _HALF_STARS,
            size=238_950_008,
            md5="d472be332d4daa821edc399621853b57",
            description="32,000,204 ratings, 200,948 users, 87,585 movies (2023)",
        ),
        _variant(
            "ml-latest-small",
            "csv",
            _HALF_STARS,
            size=978_202,
            sha256="696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
            description="about 100,000 ratings, 610 users, 9,742 movies (changes over time)",
        ),
        _variant(
            "ml-latest",
            "csv",
            _HALF_STARS,
            description="the full current dataset (changes over time; no fixed checksum)",
        ),
    )
}

#: Names accepted by :func:`load_movielens` and :func:`~lensrec.data.loading.load_dataset`.
DATASETS: tuple[str, ...] = tuple(REGISTRY)


def _get_variant(name: str) -> MovieLensVariant:
    try:
        return REGISTRY[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(REGISTRY)}") from None


# --- parsing -----------------------------------------------------------------------------
_ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
_ML1M_OCCUPATIONS = (
    "other",
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
)
_YEAR_IN_TITLE = r"\((\d{4})[^)]*\)\s*$"
_RATINGS_SCHEMA = {
    "user_id": pl.Int64,
    "item_id": pl.Int64,
    "rating": pl.Float64,
    "timestamp": pl.Int64,
}


def _decode(data: bytes) -> str:
    """UTF-8 when valid, else latin-1 (ml-100k and ml-1m side files are latin-1)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _need(raw: Path, name: str) -> Path:
    p = raw / name
    if not p.is_file():
        raise DataError("missing file in the dataset folder", file=str(p))
    return p


def _year_from_title(titles: pl.Expr) -> pl.Expr:
    return titles.str.extract(_YEAR_IN_TITLE, 1).cast(pl.Int32, strict=False)


def _ratings_frame(
    df: pl.DataFrame, *, file: str, scale: RatingScale, header_lines: int
) -> pl.DataFrame:
    check_columns(
        df,
        file=file,
        required=list(_RATINGS_SCHEMA),
        rating="rating",
        scale=scale,
        header_lines=header_lines,
    )
    return df.select(list(_RATINGS_SCHEMA)).cast(_RATINGS_SCHEMA)  # type: ignore[arg-type]


def _parse_dat_items(path: Path) -> pl.DataFrame:
    """``movies.dat``: ``MovieID::Title::Genres``; small, so split per line (titles may hold ':')."""
    text = _decode(path.read_bytes())
    ids: list[int] = []
    titles: list[str] = []
    genres: list[list[str]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("::")
        if len(parts) < 3:
            raise DataError(
                f"expected 3 fields separated by '::', found {len(parts)}",
                file=str(path),
                line=lineno,
            )
        try:
            ids.append(int(parts[0]))
        except ValueError:
            raise DataError(
                f"movie id {parts[0]!r} is not an integer", file=str(path), line=lineno
            ) from None
        titles.append("::".join(parts[1:-1]).strip())
        g = parts[-1].strip()
        genres.append([] if g in ("", "(no genres listed)") else g.split("|"))
    if not ids:
        raise DataError("empty file", file=str(path), line=1)
    df = pl.DataFrame(
        {"item_id": ids, "title": titles, "genres": genres},
        schema={"item_id": pl.Int64, "title": pl.String, "genres": pl.List(pl.String)},
    )
    return df.with_columns(year=_year_from_title(pl.col("title")))


def _parse_100k(
    raw: Path, scale: RatingScale
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame | None]:
    p = _need(raw, "u.data")
    ratings = read_delimited(
        p,
        file=str(p),
        sep="\t",
        has_header=False,
        names=list(_RATINGS_SCHEMA),
        schema=_RATINGS_SCHEMA,
    )
    ratings = _ratings_frame(ratings, file=str(p), scale=scale, header_lines=0)

    p = _need(raw, "u.item")
    genre_names = list(_ML100K_GENRES)
    if (raw / "u.genre").is_file():
        rows = [
            ln.split("|")
            for ln in _decode((raw / "u.genre").read_bytes()).splitlines()
            if ln.strip()
        ]
        genre_names = [r[0] for r in sorted(rows, key=lambda r: int(r[1]))] if rows else genre_names
    names = ["item_id", "title", "release_date", "video_release_date", "imdb_url"] + [
        f"g{k}" for k in range(len(genre_names))
    ]
    data = _decode(p.read_bytes()).encode("utf-8")
    items = read_delimited(
        data,
        file=str(p),
        sep="|",
        has_header=False,
        names=names,
        schema={"item_id": pl.Int64, **{f"g{k}": pl.Int8 for k in range(len(genre_names))}},
    )
    check_columns(items, file=str(p), required=["item_id"])
    flags = pl.concat_list(
        [pl.when(pl.col(f"g{k}") == 1).then(pl.lit(g)) for k, g in enumerate(genre_names)]
    )
    items = items.select(
        "item_id",
        pl.col("title").str.strip_chars(),
        flags.list.drop_nulls().alias("genres"),
        pl.coalesce(
            _year_from_title(pl.col("title")),
            pl.col("release_date").str.slice(-4).cast(pl.Int32, strict=False),
        ).alias("year"),
    )

    users = None
    if (raw / "u.user").is_file():
        p = raw / "u.user"
        users = read_delimited(
            _decode(p.read_bytes()).encode(),
            file=str(p),
            sep="|",
            has_header=False,
            names=["user_id", "age", "gender", "occupation", "zip_code"],
            schema={"user_id": pl.Int64, "age": pl.Int32},
        )
        check_columns(users, file=str(p), required=["user_id"])
    return ratings, items, users


def _parse_dat(
    raw: Path, scale: RatingScale, with_users: bool
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame | None]:
    p = _need(raw, "ratings.dat")
    ratings = read_delimited(
        p,
        file=str(p),
        sep="::",
        has_header=False,
        names=list(_RATINGS_SCHEMA),
        schema=_RATINGS_SCHEMA,
    )
    ratings = _ratings_frame(ratings, file=str(p), scale=scale, header_lines=0)
    items = _parse_dat_items(_need(raw, "movies.dat"))
    users = None
    if with_users and (raw / "users.dat").is_file():
        p = raw / "users.dat"
        users = read_delimited(
            _decode(p.read_bytes()).encode(),
            file=str(p),
            sep="::",
            has_header=False,
            names=["user_id", "gender", "age", "occupation", "zip_code"],
            schema={"user_id": pl.Int64, "age": pl.Int32, "occupation": pl.Int32},
        )
        check_columns(users, file=str(p), required=["user_id"])
        users = users.with_columns(
            pl.col("occupation").replace_strict(
                dict(enumerate(_ML1M_OCCUPATIONS)),
                default=pl.col("occupation").cast(pl.String),
                return_dtype=pl.String,
            )
        ).select("user_id", "age", "gender", "occupation", "zip_code")
    return ratings, items, users


def _parse_csv(raw: Path, scale: RatingScale) -> tuple[pl.DataFrame, pl.DataFrame, None]:
    p = _need(raw, "ratings.csv")
    schema = {"userId": pl.Int64, "movieId": pl.Int64, "rating": pl.Float64, "timestamp": pl.Int64}
    ratings = read_delimited(p, file=str(p), sep=",", has_header=True, schema=schema)
    ratings = ratings.rename({"userId": "user_id", "movieId": "item_id"})
    ratings = _ratings_frame(ratings, file=str(p), scale=scale, header_lines=1)

    p = _need(raw, "movies.csv")
    items = read_delimited(
        p,
        file=str(p),
        sep=",",
        has_header=True,
        quote_char='"',
        infer=False,
        schema={"movieId": pl.Int64, "title": pl.String, "genres": pl.String},
    )
    check_columns(items, file=str(p), required=["movieId"], header_lines=1)
    items = items.select(
        pl.col("movieId").alias("item_id"),
        pl.col("title").str.strip_chars(),
        pl.when(pl.col("genres") == "(no genres listed)")
        .then(pl.lit(""))
        .otherwise(pl.col("genres"))
        .str.split("|")
        .list.eval(pl.element().filter(pl.element() != ""))
        .alias("genres"),
    ).with_columns(year=_year_from_title(pl.col("title")))
    return ratings, items, None


# RecBole atomic files inside recbole-1.2.1-py3-none-any.whl
RECBOLE_WHEEL = "recbole-1.2.1-py3-none-any.whl"
RECBOLE_WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
RECBOLE_FILES = {
    "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
    "ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
}
_RECBOLE_DIR = "recbole/dataset_example/ml-100k/"


def _recbole_table(p: Path, schema: dict[str, Any]) -> pl.DataFrame:
    """A RecBole atomic file: tab-separated, header ``name:type``; types stripped from names."""
    data = p.read_bytes()
    end = data.find(b"\n")
    header = (data if end < 0 else data[:end]).decode("utf-8").rstrip("\r").split("\t")
    plain = [h.split(":", 1)[0] for h in header]
    body = b"" if end < 0 else data[end + 1 :]
    df = read_delimited(
        b"\t".join(h.encode() for h in plain) + b"\n" + body,
        file=str(p),
        sep="\t",
        has_header=True,
        schema=schema,
        infer=False,
    )
    return df


def _parse_recbole(
    raw: Path, scale: RatingScale
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    p = _need(raw, "ml-100k.inter")
    df = _recbole_table(
        p, {"user_id": pl.Int64, "item_id": pl.Int64, "rating": pl.Float64, "timestamp": pl.Float64}
    )
    check_columns(
        df,
        file=str(p),
        required=["user_id", "item_id", "rating", "timestamp"],
        rating="rating",
        scale=scale,
        header_lines=1,
    )
    ratings = df.select(list(_RATINGS_SCHEMA)).cast(_RATINGS_SCHEMA)  # type: ignore[arg-type]

    p = _need(raw, "ml-100k.item")
    it = _recbole_table(
        p,
        {
            "item_id": pl.Int64,
            "movie_title": pl.String,
            "release_year": pl.String,
            "class": pl.String,
        },
    )
    check_columns(it, file=str(p), required=["item_id"], header_lines=1)
    year = pl.col("release_year").str.strip_chars().cast(pl.Int32, strict=False)
    title = pl.col("movie_title").fill_null("").str.strip_chars()
    items = it.select(
        "item_id",
        pl.when(year.is_not_null())
        .then(pl.format("{} ({})", title, year))
        .otherwise(title)
        .alias("title"),
        pl.col("class")
        .fill_null("")
        .str.split(" ")
        .list.eval(pl.element().filter(pl.element() != ""))
        .alias("genres"),
        year.alias("year"),
    )

    p = _need(raw, "ml-100k.user")
    users = _recbole_table(p, {"user_id": pl.Int64, "age": pl.Int32})
    check_columns(users, file=str(p), required=["user_id"], header_lines=1)
    return ratings, items, users.select("user_id", "age", "gender", "occupation", "zip_code")


def parse_raw(
    raw: str | os.PathLike[str],
    layout: Layout | Literal["recbole"],
    *,
    scale: RatingScale | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame | None]:
    """Parse an unpacked MovieLens folder into (ratings, items, users) polars frames.

    ``ratings`` has ``user_id``, ``item_id`` (int64), ``rating`` (float64), ``timestamp``
    (int64) in the file's row order; ``items`` has ``item_id``, ``title``, ``genres`` (list of
    str) and ``year`` (int32, null when unknown); ``users`` (or None) has ``user_id`` and
    the demographics the variant ships. Raises :class:`DataError` (file, line, reason).
    """
    raw = Path(raw)
    if layout == "100k":
        return _parse_100k(raw, scale or _WHOLE_STARS)
    if layout == "recbole":
        return _parse_recbole(raw, scale or _WHOLE_STARS)
    if layout == "1m":
        return _parse_dat(raw, scale or _WHOLE_STARS, with_users=True)
    if layout == "10m":
        return _parse_dat(raw, scale or _HALF_STARS, with_users=False)
    if layout == "csv":
        return _parse_csv(raw, scale or _HALF_STARS)
    raise ValueError(f"unknown layout {layout!r}")


# --- fetching ----------------------------------------------------------------------------
_NETWORK_ERRORS = (
    urllib.error.URLError,
    TimeoutError,
    ConnectionError,
    HTTPException,
    dl.IncompleteDownload,
)


def _complete(target: Path) -> dict[str, Any] | None:
    """The manifest of a complete cache entry, or None."""
    import json

    mpath = target / "manifest.json"
    if not mpath.is_file():
        return None
    try:
        manifest = json.loads(mpath.read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("format") != _FORMAT:
        return None
    if not all((target / f).is_file() for f in manifest.get("files", [])):
        return None
    return manifest


def _raw_source(raw: Path) -> dict[str, Any] | None:
    import json

    p = raw / ".lensrec-source.json"
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def is_cached(name: str, cache_dir: str | os.PathLike[str] | None = None) -> bool:
    """True when ``name`` is complete in the cache (``fetch`` would not touch the network)."""
    _get_variant(name)
    return _complete(cache_root(cache_dir) / name) is not None


def fetch(
    name: str,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    archive: str | os.PathLike[str] | None = None,
    checksum: str | None = None,
    progress: bool = False,
) -> Path:
    """Download, verify, unpack and convert a MovieLens variant into the cache, once.

    Parameters
    ----------
    name
        A registry name (:data:`DATASETS`).
    cache_dir
        Cache root; default ``$LENSREC_DATA`` or ``platformdirs.user_cache_dir("lensrec")``.
    url
        Download from here instead of the official address (a mirror, or a test server).
        An explicit ``url`` disables the ml-100k fallback. A ``file://`` url is an ``archive``.
    archive
        A local copy of the zip (fetched elsewhere), read in place and never modified.
    checksum
        ``"sha256:<hex>"`` or ``"md5:<hex>"`` to verify instead of the registry's checksums.
    progress
        Show a tqdm progress bar while downloading.

    Returns
    -------
    Path
        ``<cache>/<name>``, holding ``ratings.parquet``, ``items.parquet``, maybe
        ``users.parquet``, ``manifest.json`` and the unpacked ``raw/`` folder.

    Raises
    ------
    ConfigError
        A malformed ``checksum`` (saying which algorithms are accepted), or a cache directory
        that cannot be written (naming it and ``LENSREC_DATA``).
    DataError
        Unknown name, download failure, checksum mismatch, a bad archive (naming the archive
        file, or the url it came from) or a file that does not parse. Nothing half-written
        stays in the cache, also when the process gets SIGTERM or SIGHUP.

    Notes
    -----
    A second call finds ``manifest.json`` and returns at once, without network access.
    For ml-100k, when the official address cannot be reached (``URLError``, timeout,
    connection reset), the data are taken from the ``recbole==1.2.1`` wheel instead.
    The manifest's ``source`` says where the bytes came from: ``"grouplens"`` (the official
    address, or any copy matching the registry's published checksum), ``"user archive"``,
    ``"user url"`` (verified only against the caller's ``checksum``, or unverified) or
    ``"recbole-1.2.1 wheel"``.
    """
    variant = _get_variant(name)
    if checksum is not None:
        algo, value = dl.parse_checksum(checksum)
        expected = {algo: value}
    else:
        expected = dict(variant.checksums)
    if url is not None and archive is not None:
        raise ConfigError("give either url or archive, not both")
    if url is not None and url.lower().startswith("file:"):
        archive, url = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path)), None
    root = cache_root(cache_dir)
    target = root / name
    if _complete(target) is not None:
        return target
    with dl.cleanup_on_signals():
        dl.prepare_cache(root)
        raw = target / "raw"
        info = _raw_source(raw) if raw.is_dir() else None
        if info is None:
            if raw.exists():  # left by an older or foreign process: not ours to trust
                shutil.rmtree(raw, ignore_errors=True)
            if archive is not None:
                info = _unpack_archive(variant, root, raw, Path(archive), expected, checksum)
            else:
                info = _obtain_raw(
                    variant, root, raw, url=url, expected=expected, user_checksum=checksum,
                    progress=progress,
                )  # fmt: skip
        layout = "recbole" if info["source"] == SOURCE_RECBOLE else variant.layout
        ratings, items, users = parse_raw(raw, layout, scale=variant.scale)
        _write_cache(target, variant, info, ratings, items, users)
    return target


def _provenance(variant: MovieLensVariant, digests: dict[str, str], user_source: str) -> str:
    """``"grouplens"`` when the bytes match GroupLens' published checksum, else ``user_source``
    (the official address is ``"grouplens"`` already)."""
    official = any(digests.get(a) == v for a, v in variant.checksums.items())
    return SOURCE_GROUPLENS if official else user_source


def _unpack(
    variant: MovieLensVariant,
    root: Path,
    raw: Path,
    zip_path: Path,
    info: dict[str, Any],
    what: str,
) -> dict[str, Any]:
    """Unpack the variant's folder of a verified zip into ``raw`` (atomically)."""
    with dl.temp_dir(root, f".extract-{variant.name}-") as tmp:
        try:
            dl.safe_extract(zip_path, tmp, what=what)
        except dl.CacheWriteError as exc:
            raise dl.cache_not_writable(root, exc) from None
        folder = tmp / variant.folder
        if not folder.is_dir():
            found = sorted(p.name for p in tmp.iterdir())[:10]
            raise DataError(
                f"bad archive: it has no folder {variant.folder!r} (found {found})", file=what
            )
        atomic_write_json(folder / ".lensrec-source.json", info, what="the data cache")
        _move_into_place(folder, raw)
    return info


def _unpack_archive(
    variant: MovieLensVariant,
    root: Path,
    raw: Path,
    archive: Path,
    expected: dict[str, str],
    user_checksum: str | None,
) -> dict[str, Any]:
    """A local copy of the zip: checked like a download, read in place, errors naming it."""
    what = str(archive)
    if not archive.is_file():
        raise DataError("no such file (the archive is a local copy of the official zip)", file=what)
    try:
        digests = dl.file_digests(archive)
    except OSError as exc:
        raise DataError(f"cannot read the archive ({exc.strerror or exc})", file=what) from None
    dl.verify(
        digests,
        expected,
        what=what,
        hint=(
            "the archive does not match the checksum given"
            if user_checksum
            else f"not the official {variant.name} archive, or a damaged copy; nothing was kept"
        ),
    )
    _warn_unverified(variant, expected, digests)
    info = {
        "source": _provenance(variant, digests, SOURCE_ARCHIVE),
        "archive": str(archive.resolve()),
        "url": None,
        "checksums": digests,
        "verified": sorted(expected),
        "checksum_from": ("user" if user_checksum else "registry") if expected else None,
    }
    return _unpack(variant, root, raw, archive, info, what)


def _warn_unverified(
    variant: MovieLensVariant, expected: dict[str, str], digests: dict[str, str]
) -> None:
    if not expected:
        warnings.warn(
            f"{variant.name}: no published checksum is known, the data were not verified "
            f"(sha256 {digests['sha256']})",
            LensrecWarning,
            stacklevel=4,
        )


def _obtain_raw(
    variant: MovieLensVariant,
    root: Path,
    raw: Path,
    *,
    url: str | None,
    expected: dict[str, str],
    user_checksum: str | None,
    progress: bool,
) -> dict[str, Any]:
    """Download the zip and put the unpacked data into ``raw`` (atomically); return its record."""
    src_url = url or variant.url
    fallback = url is None and variant.name == "ml-100k"
    try:
        zip_path, digests = dl.download(src_url, root, progress=progress)
    except dl.CacheWriteError as exc:
        raise dl.cache_not_writable(root, exc) from None
    except _NETWORK_ERRORS as exc:
        if fallback:
            _log.info("GroupLens unreachable (%s); taking ml-100k from the recbole wheel", exc)
            return _obtain_recbole(root, raw)
        hint = ("" if url is not None else
                f"; without network access, download {variant.url} elsewhere and run "
                f"`lensrec data fetch {variant.name} --archive FILE`")  # fmt: skip
        raise DataError(f"download failed: {_reason(exc)}{hint}", file=src_url) from None
    except OSError as exc:
        raise DataError(f"download failed: {_reason(exc)}", file=src_url) from None
    try:
        dl.verify(digests, expected, what=src_url)
        _warn_unverified(variant, expected, digests)
        info = {
            "source": _provenance(
                variant, digests, SOURCE_GROUPLENS if url is None else SOURCE_URL
            ),
            "url": src_url,
            "checksums": digests,
            "verified": sorted(expected),
            "checksum_from": ("user" if user_checksum else "registry") if expected else None,
        }
        return _unpack(variant, root, raw, zip_path, info, src_url)
    finally:
        zip_path.unlink(missing_ok=True)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def _obtain_recbole(root: Path, raw: Path, *, timeout: float = 180.0) -> dict[str, Any]:
    """ml-100k from the recbole==1.2.1 wheel, fetched with pip; every file checked by sha256."""
    with dl.temp_dir(root, ".recbole-") as tmp:
        wheel_dir = tmp / "wheel"
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--quiet",
            "recbole==1.2.1",
            "-d",
            str(wheel_dir),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise DataError(
                f"GroupLens unreachable and `pip download recbole==1.2.1` took over {timeout:.0f}s",
                file=REGISTRY["ml-100k"].url,
            ) from None
        wheel = wheel_dir / RECBOLE_WHEEL
        if proc.returncode != 0 or not wheel.is_file():
            last = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:] or ["no output"]
            raise DataError(
                f"GroupLens unreachable and the recbole==1.2.1 wheel could not be downloaded ({last[0]})",
                file=REGISTRY["ml-100k"].url,
            )
        dl.verify(
            dl.file_digests(wheel, ("sha256",)), {"sha256": RECBOLE_WHEEL_SHA256}, what=str(wheel)
        )
        out = tmp / "raw"
        out.mkdir()
        for fname, sha in RECBOLE_FILES.items():
            data = dl.read_bytes_checked(
                dl.zip_member(wheel, _RECBOLE_DIR + fname),
                sha,
                what=f"{RECBOLE_WHEEL}:{_RECBOLE_DIR}{fname}",
            )
            (out / fname).write_bytes(data)
        info = {
            "source": SOURCE_RECBOLE,
            "url": f"pip:recbole==1.2.1/{RECBOLE_WHEEL}",
            "checksums": {
                "sha256": RECBOLE_WHEEL_SHA256,
                **{f: s for f, s in RECBOLE_FILES.items()},
            },
            "verified": ["sha256"],
        }
        atomic_write_json(out / ".lensrec-source.json", info, what="the data cache")
        _move_into_place(out, raw)
    return info


def _move_into_place(src: Path, raw: Path) -> None:
    """Rename a finished folder to ``raw``; if another process got there first, keep theirs."""
    try:
        raw.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, raw)
    except OSError as exc:
        if _raw_source(raw) is None:
            raise dl.cache_not_writable(raw.parent, exc) from None


def _write_cache(
    target: Path,
    variant: MovieLensVariant,
    info: dict[str, Any],
    ratings: pl.DataFrame,
    items: pl.DataFrame,
    users: pl.DataFrame | None,
) -> None:
    files = ["ratings.parquet", "items.parquet"]
    for fname, frame in (
        ("ratings.parquet", ratings),
        ("items.parquet", items),
        ("users.parquet", users),
    ):
        if frame is not None:
            atomic_write(target / fname, frame.write_parquet, what="the data cache")
    if users is not None:
        files.append("users.parquet")
    from .. import __version__

    manifest = {
        "format": _FORMAT,
        "name": variant.name,
        "source": info["source"],
        "url": info.get("url"),
        "archive": info.get("archive"),
        "checksums": info.get("checksums", {}),
        "verified": info.get("verified", []),
        "checksum_from": info.get("checksum_from"),
        "counts": {
            "ratings": ratings.height,
            "users": int(ratings["user_id"].n_unique()),
            "items": int(ratings["item_id"].n_unique()),
            "item_rows": items.height,
            "user_rows": 0 if users is None else users.height,
        },
        "rating_scale": [variant.scale.low, variant.scale.high, variant.scale.step],
        "files": files,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "lensrec": __version__,
    }
    # last: marks the entry complete
    atomic_write_json(target / "manifest.json", manifest, what="the data cache")


def load_movielens(
    name: str,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    progress: bool = False,
) -> Interactions:
    """A MovieLens variant as :class:`Interactions`, from the Parquet cache (fetched if needed).

    Rows keep the original file's order (``u.data`` order for ml-100k). ``item_info`` has
    ``item_id``, ``title``, ``genres`` (list of str), ``year``; ``user_info`` is set for
    ml-100k and ml-1m. ``stats["source"]`` is ``"grouplens"``, ``"recbole-1.2.1 wheel"``,
    ``"user archive"`` or ``"user url"`` (see :func:`fetch`); ``stats["rating_scale"]`` is
    the variant's scale (``low``, ``high``, ``step``, ``source="declared"``).

    Raises
    ------
    DataError
        When the data are not cached and ``download=False``, or as :func:`fetch`.

    Examples
    --------
    >>> inter = load_movielens("ml-100k")  # doctest: +SKIP
    >>> len(inter), inter.n_users, inter.n_items  # doctest: +SKIP
    (100000, 943, 1682)
    """
    _get_variant(name)
    root = cache_root(cache_dir)
    target = root / name
    manifest = _complete(target)
    if manifest is None:
        if not download:
            raise DataError(
                f"{name} is not in the cache; run `lensrec data fetch {name}`", file=str(target)
            )
        fetch(name, cache_dir, progress=progress)
        manifest = _complete(target)
        if manifest is None:  # pragma: no cover - fetch writes it
            raise DataError("cache entry incomplete after fetch", file=str(target))
    try:
        ratings = pl.read_parquet(target / "ratings.parquet")
        items = pl.read_parquet(target / "items.parquet")
        users = (
            pl.read_parquet(target / "users.parquet")
            if "users.parquet" in manifest["files"]
            else None
        )
    except PARQUET_ERRORS as exc:
        raise DataError(
            f"corrupt cache entry ({reader_reason(exc)}); delete the folder and fetch again",
            file=str(target),
        ) from None
    inter = Interactions.from_frame(
        ratings,
        user="user_id",
        item="item_id",
        rating="rating",
        timestamp="timestamp",
        item_info=items,
        user_info=users,
        name=name,
        source=str(target / "ratings.parquet"),
    )
    inter.stats.update(source=manifest["source"], url=manifest.get("url"), cache=str(target))
    if manifest.get("archive"):
        inter.stats["archive"] = manifest["archive"]
    low, high, step = (manifest.get("rating_scale") or [None, None, None])[:3]
    if low is not None:
        inter.stats["rating_scale"] = {"low": low, "high": high, "step": step, "source": "declared"}
    return inter
