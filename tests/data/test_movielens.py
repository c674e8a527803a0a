"""MovieLens: parsers on tiny generated files, fetch over a real loopback HTTP server, fallback."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lensrec.data import (
    DATASETS,
    REGISTRY,
    _download,
    fetch,
    load_dataset,
    load_movielens,
    movielens,
)
from lensrec.data.movielens import parse_raw
from lensrec.errors import ConfigError, DataError, LensrecWarning


def make_zip(files: dict[str, bytes | str]) -> bytes:
    """A zip archive (bytes) holding ``files`` (name -> content)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content.encode("utf-8") if isinstance(content, str) else content)
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# a tiny ml-latest-small-style archive: 3 users, 3 movies, 6 ratings (half stars)
SMALL_RATINGS = (
    "userId,movieId,rating,timestamp\n"
    "1,10,4.0,964982703\n"
    "1,20,4.5,964981247\n"
    "2,10,3.0,964982224\n"
    "2,30,0.5,964983815\n"
    "3,20,5.0,964982931\n"
    "3,30,2.5,964982400\n"
)
SMALL_MOVIES = (
    "movieId,title,genres\n"
    "10,Toy Story (1995),Adventure|Animation|Children\n"
    '20,"American President, The (1995)",Comedy|Drama|Romance\n'
    "30,Untitled,(no genres listed)\n"
)


@pytest.fixture
def small_zip() -> bytes:
    return make_zip(
        {
            "ml-latest-small/ratings.csv": SMALL_RATINGS,
            "ml-latest-small/movies.csv": SMALL_MOVIES,
            "ml-latest-small/README.txt": "test archive\n",
        }
    )


def _flags(*on: int) -> str:
    return "|".join("1" if k in on else "0" for k in range(19))


def _write_100k(d: Path, u_data: str | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "u.data").write_text(
        u_data
        if u_data is not None
        else "3\t20\t4\t881250949\n1\t10\t5\t874965758\n2\t10\t1\t876893171\n1\t20\t3\t878542960\n"
    )
    items = (
        f"10|Toy Story (1995)|01-Jan-1995||http://x|{_flags(3, 4, 5)}\n"
        f"20|Café Olé (1997)|01-Jan-1997||http://y|{_flags(8)}\n"
    )
    (d / "u.item").write_bytes(items.encode("latin-1"))
    (d / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|32067\n")
    return d


# --- registry ------------------------------------------------------------------------------
def test_registry_lists_every_variant_with_official_url_and_scale():
    assert set(DATASETS) == {
        "ml-100k",
        "ml-1m",
        "ml-10m",
        "ml-20m",
        "ml-25m",
        "ml-32m",
        "ml-latest-small",
        "ml-latest",
    }
    for name, v in REGISTRY.items():
        assert v.url == f"https://files.grouplens.org/datasets/movielens/{name}.zip"
    assert REGISTRY["ml-10m"].folder == "ml-10M100K"
    assert (REGISTRY["ml-100k"].scale.low, REGISTRY["ml-100k"].scale.step) == (1.0, 1.0)
    assert (REGISTRY["ml-25m"].scale.low, REGISTRY["ml-25m"].scale.step) == (0.5, 0.5)
    # published sha256 (tensorflow-datasets) where known, else GroupLens md5; ml-latest: none
    assert REGISTRY["ml-100k"].checksums["sha256"].startswith("50d2a982")
    assert set(REGISTRY["ml-10m"].checksums) == {"md5"}
    assert REGISTRY["ml-latest"].checksums == {}


# --- parsers -------------------------------------------------------------------------------
def test_parse_100k_keeps_row_order_genres_years_and_latin1(tmp_path):
    ratings, items, users = parse_raw(_write_100k(tmp_path / "raw"), "100k")
    assert ratings["user_id"].to_list() == [3, 1, 2, 1]
    assert ratings["item_id"].to_list() == [20, 10, 10, 20]
    assert ratings["rating"].to_list() == [4.0, 5.0, 1.0, 3.0]
    assert ratings["timestamp"].to_list()[0] == 881250949
    assert items["title"].to_list() == ["Toy Story (1995)", "Café Olé (1997)"]
    assert items["genres"].to_list()[0] == ["Animation", "Children's", "Comedy"]
    assert items["genres"].to_list()[1] == ["Drama"]
    assert items["year"].to_list() == [1995, 1997]
    assert users["occupation"].to_list() == ["technician", "other", "writer"]


def test_parse_1m_with_double_colon_separator(tmp_path):
    d = tmp_path / "raw"
    d.mkdir()
    (d / "ratings.dat").write_text(
        "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n"
    )
    (d / "movies.dat").write_bytes(
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::Señor: A Story: (1996)::Animation|Musical\n".encode(
            "latin-1"
        )
    )
    (d / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    ratings, items, users = parse_raw(d, "1m")
    assert ratings.height == 3
    assert ratings["item_id"].to_list() == [1193, 661, 1193]
    assert ratings["rating"].to_list() == [5.0, 3.0, 4.0]
    assert items["title"].to_list()[1] == "Señor: A Story: (1996)"  # single colons survive
    assert items["genres"].to_list()[1] == ["Animation", "Musical"]
    assert users["occupation"].to_list() == ["K-12 student", "self-employed"]
    assert users["age"].to_list() == [1, 56]


def test_parse_10m_half_stars_and_no_users(tmp_path):
    d = tmp_path / "raw"
    d.mkdir()
    (d / "ratings.dat").write_text(
        "1::122::5::838985046\n1::185::4.5::838983525\n7::122::0.5::838983392\n"
    )
    (d / "movies.dat").write_text(
        "122::Boomerang (1992)::Comedy|Romance\n185::Net, The (1995)::Action\n"
    )
    ratings, items, users = parse_raw(d, "10m")
    assert users is None
    assert ratings["rating"].to_list() == [5.0, 4.5, 0.5]
    assert items["year"].to_list() == [1992, 1995]


def test_parse_csv_layout_header_quotes_and_no_genres(tmp_path):
    d = tmp_path / "raw"
    d.mkdir()
    (d / "ratings.csv").write_text(SMALL_RATINGS)
    (d / "movies.csv").write_text(SMALL_MOVIES)
    ratings, items, users = parse_raw(d, "csv")
    assert users is None
    assert ratings["user_id"].to_list() == [1, 1, 2, 2, 3, 3]
    assert ratings["rating"].to_list() == [4.0, 4.5, 3.0, 0.5, 5.0, 2.5]
    assert items["title"].to_list()[1] == "American President, The (1995)"
    assert items["genres"].to_list() == [
        ["Adventure", "Animation", "Children"],
        ["Comedy", "Drama", "Romance"],
        [],
    ]
    assert items["year"].to_list() == [1995, 1995, None]


def test_parse_recbole_layout_rebuilds_titles_with_year(tmp_path):
    d = tmp_path / "raw"
    d.mkdir()
    (d / "ml-100k.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n196\t242\t3\t881250949\n186\t302\t3\t891717742\n"
    )
    (d / "ml-100k.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "242\tKolya\t1996\tComedy\n302\tL.A. Confidential\t1997\tCrime Film-Noir Mystery Thriller\n"
    )
    (d / "ml-100k.user").write_text(
        "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n196\t49\tM\twriter\t55105\n"
    )
    ratings, items, users = parse_raw(d, "recbole")
    assert ratings.rows() == [(196, 242, 3.0, 881250949), (186, 302, 3.0, 891717742)]
    assert items["title"].to_list() == ["Kolya (1996)", "L.A. Confidential (1997)"]
    assert items["genres"].to_list()[1] == ["Crime", "Film-Noir", "Mystery", "Thriller"]
    assert users["zip_code"].to_list() == ["55105"]


@pytest.mark.parametrize(
    ("u_data", "line", "reason"),
    [
        ("1\t10\t5\t1\n1\t20\t4\t2\n2\t10\t6\t3\n", 3, "outside the scale"),
        ("1\t10\t5\t1\n2\t20\t3.5\t2\n", 2, "outside the scale"),  # ml-100k: whole stars
        ("1\t10\t5\t1\n1\t20\tfive\t2\n", 2, "'five'"),
        ("1\t10\t5\t1\n1\t20\tnan\t2\n", 2, "not a finite number"),
        ("1\t10\t5\t1\n1\t20\t4\n", 2, "timestamp"),
        ("1\t10\t5\t1\n1\t20\t4\t2\t9\n", 2, "expected 4 fields, found 5"),
        ("1\t10\t5\t1\n\n2\t10\t4\t3\n", 2, "empty line"),
        ("", 1, "empty file"),
    ],
)
def test_malformed_u_data_names_file_line_and_reason(tmp_path, u_data, line, reason):
    d = _write_100k(tmp_path / "raw", u_data)
    with pytest.raises(DataError) as info:
        parse_raw(d, "100k")
    err = info.value
    assert err.file == str(d / "u.data")
    assert err.line == line
    assert reason in err.reason


def test_malformed_ratings_dat_and_csv_lines(tmp_path):
    d = tmp_path / "dat"
    d.mkdir()
    (d / "ratings.dat").write_text("1::1::5::1\n1::2::4::2\n1::x3::4::3\n")
    (d / "movies.dat").write_text("1::A (1990)::Drama\n")
    with pytest.raises(DataError) as info:
        parse_raw(d, "1m")
    assert (info.value.line, info.value.file) == (3, str(d / "ratings.dat"))
    assert "'x3'" in info.value.reason

    c = tmp_path / "csv"
    c.mkdir()
    (c / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,1\n1,2,0.7,2\n")
    (c / "movies.csv").write_text(SMALL_MOVIES)
    with pytest.raises(DataError) as info:
        parse_raw(c, "csv")
    assert info.value.line == 3  # the header is line 1
    assert "0.7" in info.value.reason

    (c / "ratings.csv").write_text("user,movieId,rating,timestamp\n1,1,4.0,1\n")
    with pytest.raises(DataError) as info:
        parse_raw(c, "csv")
    assert info.value.line == 1 and "userId" in info.value.reason


def test_missing_file_in_folder_is_named(tmp_path):
    d = tmp_path / "raw"
    d.mkdir()
    with pytest.raises(DataError) as info:
        parse_raw(d, "csv")
    assert info.value.file == str(d / "ratings.csv")


# --- fetch over HTTP -----------------------------------------------------------------------
def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_fetch_downloads_verifies_converts_and_then_uses_the_cache(
    tmp_path, http_server, small_zip
):
    url = http_server.add("/ml-latest-small.zip", small_zip)
    root = tmp_path / "cache"
    path = fetch("ml-latest-small", root, url=url, checksum=f"sha256:{sha256(small_zip)}")
    assert path == root / "ml-latest-small"
    manifest = json.loads((path / "manifest.json").read_text())
    # verified against the caller's checksum only: not GroupLens' published archive
    assert (manifest["source"], manifest["url"], manifest["checksum_from"]) == (
        "user url",
        url,
        "user",
    )
    assert manifest["checksums"]["sha256"] == sha256(small_zip)
    assert manifest["counts"] == {
        "ratings": 6,
        "users": 3,
        "items": 3,
        "item_rows": 3,
        "user_rows": 0,
    }
    assert http_server.hits["/ml-latest-small.zip"] == 1
    # nothing temporary left behind in the cache root
    assert sorted(p.name for p in root.iterdir()) == ["ml-latest-small"]

    again = fetch("ml-latest-small", root, url=url, checksum=f"sha256:{sha256(small_zip)}")
    assert again == path
    inter = load_movielens("ml-latest-small", root, download=False)
    assert http_server.hits["/ml-latest-small.zip"] == 1  # served from the cache
    assert (len(inter), inter.n_users, inter.n_items) == (6, 3, 3)
    assert inter.stats["source"] == "user url"
    assert inter.stats["rating_scale"] == {
        "low": 0.5,
        "high": 5.0,
        "step": 0.5,
        "source": "declared",
    }
    assert inter.titles(inter.item_ids.index([20])) == ["American President, The (1995)"]
    # row order of the file is kept
    np.testing.assert_array_equal(inter.user_ids.ids[inter.users], [1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(
        inter.ratings, np.array([4.0, 4.5, 3.0, 0.5, 5.0, 2.5], np.float32)
    )


def test_checksum_mismatch_raises_and_leaves_nothing(tmp_path, http_server, small_zip):
    url = http_server.add("/ml-latest-small.zip", small_zip)
    root = tmp_path / "cache"
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch("ml-latest-small", root, url=url, checksum="sha256:" + "0" * 64)
    assert _leftovers(root) == []
    assert not (root / "ml-latest-small").exists()
    # the registry's checksum applies to a mirror url too (this archive is not the real one)
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch("ml-latest-small", root, url=url)
    assert _leftovers(root) == []


def test_connection_closed_mid_body_raises_and_leaves_nothing(tmp_path, http_server, small_zip):
    url = http_server.add("/cut.zip", small_zip, truncate=True)
    root = tmp_path / "cache"
    with pytest.raises(DataError, match="download failed"):
        fetch("ml-latest-small", root, url=url, checksum=f"sha256:{sha256(small_zip)}")
    assert http_server.hits["/cut.zip"] == 1
    assert _leftovers(root) == []


def test_http_404_and_bad_archive_leave_nothing(tmp_path, http_server):
    root = tmp_path / "cache"
    with pytest.raises(DataError, match="HTTP 404"):
        fetch(
            "ml-latest-small", root, url=http_server.url("/missing.zip"), checksum="md5:" + "0" * 32
        )
    assert _leftovers(root) == []
    junk = b"this is not a zip file"
    url = http_server.add("/junk.zip", junk)
    with pytest.raises(DataError, match="zip"):
        fetch("ml-latest-small", root, url=url, checksum=f"sha256:{sha256(junk)}")
    assert _leftovers(root) == []


def test_archive_without_expected_folder_or_with_unsafe_paths(tmp_path, http_server):
    root = tmp_path / "cache"
    wrong = make_zip({"other/ratings.csv": SMALL_RATINGS})
    url = http_server.add("/wrong.zip", wrong)
    with pytest.raises(DataError, match="no folder 'ml-latest-small'"):
        fetch("ml-latest-small", root, url=url, checksum=f"sha256:{sha256(wrong)}")
    assert _leftovers(root) == []
    evil = make_zip({"../evil.txt": "x", "ml-latest-small/ratings.csv": SMALL_RATINGS})
    url = http_server.add("/evil.zip", evil)
    with pytest.raises(DataError, match="unsafe path"):
        fetch("ml-latest-small", root, url=url, checksum=f"sha256:{sha256(evil)}")
    assert _leftovers(root) == []
    assert not (tmp_path / "evil.txt").exists()


def test_bad_data_inside_a_good_archive_is_reported_and_not_cached(tmp_path, http_server):
    bad = make_zip(
        {
            "ml-latest-small/ratings.csv": "userId,movieId,rating,timestamp\n1,1,4.0,1\n1,2,9.0,2\n",
            "ml-latest-small/movies.csv": SMALL_MOVIES,
        }
    )
    url = http_server.add("/bad.zip", bad)
    root = tmp_path / "cache"
    with pytest.raises(DataError) as info:
        fetch("ml-latest-small", root, url=url, checksum=f"sha256:{sha256(bad)}")
    assert info.value.line == 3 and info.value.file.endswith("ratings.csv")
    assert not (root / "ml-latest-small" / "manifest.json").exists()
    with pytest.raises(DataError, match="not in the cache"):
        load_movielens("ml-latest-small", root, download=False)


def test_unverifiable_variant_downloads_with_a_warning(tmp_path, http_server, monkeypatch):
    archive = make_zip(
        {"ml-latest/ratings.csv": SMALL_RATINGS, "ml-latest/movies.csv": SMALL_MOVIES}
    )
    url = http_server.add("/ml-latest.zip", archive)
    monkeypatch.setitem(REGISTRY, "ml-latest", replace(REGISTRY["ml-latest"], url=url))
    with pytest.warns(LensrecWarning, match="no published checksum"):
        path = fetch("ml-latest", tmp_path / "cache")
    assert json.loads((path / "manifest.json").read_text())["verified"] == []


def test_registry_entry_is_injectable(tmp_path, http_server, small_zip, monkeypatch):
    url = http_server.add("/ml-latest-small.zip", small_zip)
    variant = replace(REGISTRY["ml-latest-small"], url=url, checksums={"sha256": sha256(small_zip)})
    monkeypatch.setitem(REGISTRY, "ml-latest-small", variant)
    monkeypatch.setenv("LENSREC_DATA", str(tmp_path / "envcache"))
    inter = load_dataset("ml-latest-small")
    assert len(inter) == 6
    assert (tmp_path / "envcache" / "ml-latest-small" / "ratings.parquet").is_file()


def test_ml100k_falls_back_when_grouplens_is_unreachable(tmp_path, monkeypatch):
    # a closed local port: connection refused at once (no network needed)
    monkeypatch.setitem(
        REGISTRY, "ml-100k", replace(REGISTRY["ml-100k"], url="http://127.0.0.1:9/ml-100k.zip")
    )
    calls = []

    def fake_recbole(root: Path, raw: Path) -> dict:
        calls.append(raw)
        raw.mkdir(parents=True)
        (raw / "ml-100k.inter").write_text(
            "user_id:token\titem_id:token\trating:float\ttimestamp:float\n196\t242\t3\t881250949\n"
        )
        (raw / "ml-100k.item").write_text(
            "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n242\tKolya\t1996\tComedy\n"
        )
        (raw / "ml-100k.user").write_text(
            "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n196\t49\tM\twriter\t55105\n"
        )
        return {"source": movielens.SOURCE_RECBOLE, "url": "test"}

    monkeypatch.setattr(movielens, "_obtain_recbole", fake_recbole)
    inter = load_movielens("ml-100k", tmp_path)
    assert len(calls) == 1
    assert inter.stats["source"] == "recbole-1.2.1 wheel"
    assert inter.titles([0]) == ["Kolya (1996)"]
    # an explicit url disables the fallback
    with pytest.raises(DataError, match="download failed"):
        fetch("ml-100k", tmp_path / "other", url="http://127.0.0.1:9/ml-100k.zip")
    assert len(calls) == 1


def test_load_dataset_dispatch(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("userId,movieId,rating,timestamp\n1,5,4.0,10\n2,5,3.0,11\n")
    inter = load_dataset(str(p))
    assert (len(inter), inter.n_users, inter.n_items) == (2, 2, 1)
    inter = load_dataset(p, user="movieId", item="userId")
    assert (inter.n_users, inter.n_items) == (1, 2)
    with pytest.raises(DataError, match="neither a known dataset"):
        load_dataset("ml-7k")
    with pytest.raises(DataError, match="unknown dataset"):
        fetch("ml-7k", tmp_path)


def test_network_errors_are_classified_for_fallback():
    assert issubclass(urllib.error.HTTPError, movielens._NETWORK_ERRORS)
    assert issubclass(TimeoutError, movielens._NETWORK_ERRORS)


# --- downloads: signals, stale parts, read-only caches, user archives ----------------------
def _parts(root: Path) -> list[Path]:
    return sorted(root.glob(".download-*.part")) if root.exists() else []


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or os.name != "posix", reason="POSIX signals")
def test_sigterm_during_a_download_leaves_no_part_file(tmp_path, http_server, small_zip):
    url = http_server.add("/slow.zip", small_zip, stall=True)  # half the body, then waits
    root = tmp_path / "cache"
    code = textwrap.dedent(
        f"""
        from lensrec.data import fetch
        fetch("ml-latest-small", {str(root)!r}, url={url!r}, checksum="sha256:" + "0" * 64)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
    try:
        # bounded: the child must be inside the download (part file made, body half sent)
        deadline = time.monotonic() + 30
        while not (_parts(root) and http_server.hits.get("/slow.zip")):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the download never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stderr.close()
        http_server.release()
    assert _parts(root) == []
    assert _leftovers(root) == []


def test_a_fetch_sweeps_stale_parts_and_keeps_fresh_ones(tmp_path, http_server, small_zip):
    root = tmp_path / "cache"
    root.mkdir()
    old_part = root / ".download-killed.part"
    old_part.write_bytes(b"half an archive")
    old_extract = root / ".extract-ml-latest-small-killed"
    (old_extract / "ml-latest-small").mkdir(parents=True)
    (old_extract / "ml-latest-small" / "ratings.csv").write_text("u,i\n")
    old_tmp = root / "ml-latest-small" / ".ratings.parquet.x1y2.tmp"
    old_tmp.parent.mkdir()
    old_tmp.write_bytes(b"PAR1")
    fresh = root / ".download-running.part"  # another process, still writing
    fresh.write_bytes(b"still coming")
    an_hour_ago = time.time() - 3600
    for path in (old_part, old_extract / "ml-latest-small" / "ratings.csv", old_tmp):
        os.utime(path, (an_hour_ago, an_hour_ago))
    for path in (old_extract / "ml-latest-small", old_extract):
        os.utime(path, (an_hour_ago, an_hour_ago))
    mine = root / "notes.part"  # not a name lensrec makes: never touched
    mine.write_text("keep")
    os.utime(mine, (an_hour_ago, an_hour_ago))

    url = http_server.add("/ml-latest-small.zip", small_zip)
    fetch("ml-latest-small", root, url=url, checksum=f"sha256:{sha256(small_zip)}")
    assert not old_part.exists() and not old_extract.exists() and not old_tmp.exists()
    assert fresh.exists() and mine.exists()


def test_sweep_only_touches_old_files_of_ours(tmp_path):
    (tmp_path / ".download-a.part").write_bytes(b"x")
    assert _download.sweep_stale(tmp_path) == []  # fresh: maybe another process
    assert _download.sweep_stale(tmp_path, older_than=-1) == [tmp_path / ".download-a.part"]


@pytest.mark.parametrize("fail_at", ["mkdir", "mkstemp"])
def test_read_only_cache_says_so_and_names_lensrec_data(tmp_path, monkeypatch, fail_at, small_zip):
    root = tmp_path / "cache"
    monkeypatch.setenv("LENSREC_DATA", str(root))
    erofs = OSError(errno.EROFS, "Read-only file system")

    def refuse(*args, **kwargs):
        raise erofs

    if fail_at == "mkdir":
        monkeypatch.setattr(Path, "mkdir", refuse)
    else:
        root.mkdir()
        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(ConfigError) as info:
        fetch("ml-1m")  # the official url: it must not be blamed, nor contacted
    msg = str(info.value)
    assert str(root) in msg and "not writable" in msg and "LENSREC_DATA" in msg
    assert "Read-only file system" in msg
    assert "download failed" not in msg and "grouplens.org" not in msg


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_cache_directory_for_real(tmp_path):
    root = tmp_path / "cache"
    root.mkdir()
    root.chmod(0o555)
    try:
        with pytest.raises(ConfigError, match="not writable"):
            fetch("ml-1m", root)
    finally:
        root.chmod(0o755)


@pytest.mark.parametrize(
    "content",
    [b"", b"this is not a zip file", b"PK\x03\x04" + b"\x00" * 40],
    ids=["empty", "text", "cut"],
)
@pytest.mark.parametrize("how", ["archive", "file-url"])
def test_a_bad_user_archive_is_called_a_bad_archive(tmp_path, content, how):
    archive = tmp_path / "mine.zip"
    archive.write_bytes(content)
    root = tmp_path / "cache"
    where = {"archive": archive} if how == "archive" else {"url": archive.as_uri()}
    with pytest.raises(DataError) as info:
        fetch("ml-latest-small", root, checksum=f"sha256:{sha256(content)}", **where)
    err = info.value
    assert err.file == str(archive)
    assert "bad archive" in err.reason
    assert "download failed" not in str(err) and "file://" not in str(err)
    assert _leftovers(root) == []
    assert archive.read_bytes() == content  # the user's file is left alone


def test_archive_damaged_inside_names_the_archive(tmp_path, small_zip):
    data = bytearray(small_zip)
    start = data.index(b"ml-latest-small/ratings.csv") + len("ml-latest-small/ratings.csv")
    data[start + 5 : start + 40] = b"\xff" * 35  # inside the first member's deflate stream
    archive = tmp_path / "damaged.zip"
    archive.write_bytes(bytes(data))
    root = tmp_path / "cache"
    with pytest.raises(DataError) as info:
        fetch("ml-latest-small", root, archive=archive, checksum=f"sha256:{sha256(bytes(data))}")
    assert info.value.file == str(archive) and "bad archive" in info.value.reason
    assert _leftovers(root) == []


def test_user_archive_provenance_is_recorded(tmp_path, small_zip, monkeypatch):
    archive = tmp_path / "ml-latest-small.zip"
    archive.write_bytes(small_zip)
    root = tmp_path / "cache"
    path = fetch("ml-latest-small", root, archive=archive, checksum=f"sha256:{sha256(small_zip)}")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["source"] == "user archive"
    assert manifest["archive"] == str(archive.resolve()) and manifest["url"] is None
    assert (manifest["verified"], manifest["checksum_from"]) == (["sha256"], "user")
    inter = load_movielens("ml-latest-small", root, download=False)
    assert inter.stats["source"] == "user archive"
    assert inter.stats["archive"] == str(archive.resolve())
    assert _parts(root) == []

    # the same bytes as GroupLens publishes (the registry's checksum matches): grouplens
    monkeypatch.setitem(
        REGISTRY,
        "ml-latest-small",
        replace(REGISTRY["ml-latest-small"], checksums={"sha256": sha256(small_zip)}),
    )
    path = fetch("ml-latest-small", tmp_path / "other", url=archive.as_uri())
    manifest = json.loads((path / "manifest.json").read_text())
    assert (manifest["source"], manifest["checksum_from"]) == ("grouplens", "registry")


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("sha1:abc", "unsupported algorithm 'sha1'"),
        ("sha256:abc", "64 hex digits"),
        ("md5:" + "g" * 32, "32 hex digits"),
        ("abc", "ALGO:HEX"),
    ],
)
def test_bad_checksum_is_a_config_error_listing_the_algorithms(tmp_path, spec, needle):
    with pytest.raises(ConfigError) as info:
        fetch("ml-latest-small", tmp_path / "cache", url="http://127.0.0.1:9/x.zip", checksum=spec)
    msg = str(info.value)
    assert needle in msg and "sha256" in msg and "md5" in msg
    assert not (tmp_path / "cache").exists()  # refused before anything was touched


# --- the real ml-100k from the recbole wheel -------------------------------------------------
@pytest.mark.realdata
def test_real_ml100k_via_recbole_wheel(tmp_path_factory, monkeypatch):
    root = tmp_path_factory.mktemp("ml100k")
    monkeypatch.setitem(
        REGISTRY, "ml-100k", replace(REGISTRY["ml-100k"], url="http://127.0.0.1:9/ml-100k.zip")
    )
    try:
        path = fetch("ml-100k", root)
    except DataError as exc:
        if (
            "recbole" in str(exc)
            and "could not be downloaded" in str(exc)
            or "took over" in str(exc)
        ):
            pytest.skip(f"package index unreachable: {exc}")
        raise
    inter = load_movielens("ml-100k", root, download=False)
    assert (len(inter), inter.n_users, inter.n_items) == (100_000, 943, 1_682)
    assert inter.stats["source"] == "recbole-1.2.1 wheel"
    first = inter.to_frame().row(0)
    assert first == (196, 242, 3.0, 881250949)  # u.data's first row
    assert inter.titles(inter.item_ids.index([1, 50])) == ["Toy Story (1995)", "Star Wars (1977)"]
    assert inter.item_info.height == 1682 and inter.item_info["title"].null_count() == 0
    assert inter.user_info.height == 943
    assert sorted(np.unique(inter.ratings).tolist()) == [1.0, 2.0, 3.0, 4.0, 5.0]
    mtime = (path / "manifest.json").stat().st_mtime_ns
    assert fetch("ml-100k", root) == path  # second call: cache, no download
    assert (path / "manifest.json").stat().st_mtime_ns == mtime


def test_cli_fetch_from_a_local_archive(tmp_path, monkeypatch, capsys, small_zip):
    from lensrec.cli import main

    root = tmp_path / "cache"
    monkeypatch.setenv("LENSREC_DATA", str(root))
    archive = tmp_path / "ml-latest-small.zip"
    archive.write_bytes(small_zip)
    # the registry's checksum applies to a local copy too: this archive is not the real one
    assert main(["data", "fetch", "ml-latest-small", "--archive", str(archive)]) == 2
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and err.count("\n") == 1
    assert _leftovers(root) == [] and not (root / "ml-latest-small").exists()
    # with its own checksum it is unpacked and converted like a download
    assert (
        main(
            [
                "data",
                "fetch",
                "ml-latest-small",
                "--archive",
                str(archive),
                "--checksum",
                f"sha256:{sha256(small_zip)}",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "6 ratings, 3 users, 3 items, with titles" in out and "fetched" in out
    assert archive.is_file()  # the user's file is left alone
    assert main(["data", "fetch", "ml-latest-small"]) == 0
    assert "already in the cache" in capsys.readouterr().out
    assert main(["data", "fetch", "ml-1m", "--archive", str(tmp_path / "nope.zip")]) == 2
    assert "nope.zip: no such file" in capsys.readouterr().err
