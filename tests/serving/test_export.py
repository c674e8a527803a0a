"""Export to a real redis-server (started by the fixture) and to Parquet."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import redis

import lensrec
from lensrec.errors import LensrecError
from lensrec.retrieval import recommend_user
from lensrec.serving._redis import ExportInProgress, RedisUnavailable
from lensrec.serving.backends import RedisBackend
from lensrec.serving.export import export_parquet, export_redis

K = 10


def _decode(blob: bytes) -> list[int]:
    """The packed list read by hand: 4-byte header, then uint16 indices."""
    version, flags, n = struct.unpack_from("<BBH", blob)
    assert version == 1 and flags == 0 and len(blob) == 4 + 2 * n
    return list(struct.unpack_from(f"<{n}H", blob, 4))


def _reference_topk(model, k):
    """Brute force: every user's scores against every item, seen items removed."""
    scores = model.user_factors_ @ model.item_factors_.T
    seen = model.user_items_.toarray() > 0
    scores = np.where(seen, -np.inf, scores)
    return [np.argsort(-row, kind="stable")[:k].tolist() for row in scores]


@pytest.fixture(scope="module")
def als(als_file):
    return lensrec.load(als_file)


def test_lists_in_redis_are_the_brute_force_top_k(als, redis_url):
    summary = export_redis(als, redis_url, k=K)
    r = redis.Redis.from_url(redis_url)
    assert summary.version == 1 and int(r.get("lr:current")) == 1
    want = _reference_topk(als, K)
    for u, ext in enumerate(als.user_ids_.ids.tolist()):
        assert _decode(r.get(f"lr:1:u:{ext}")) == want[u], ext
    meta = json.loads(r.get("lr:1:meta"))
    assert meta["k"] == K and meta["index_width"] == 2 and meta["user_kind"] == "int"
    items = r.get("lr:1:items")
    assert list(struct.unpack(f"<{als.n_items}q", items)) == als.item_ids_.ids.tolist()
    counts = np.bincount(als.user_items_.indices, minlength=als.n_items)
    assert list(struct.unpack(f"<{als.n_items}I", r.get("lr:1:counts"))) == counts.tolist()
    # the popularity fallback: most training interactions first, ties by lower index
    pop = np.lexsort((np.arange(als.n_items), -counts))[:K]
    blob = r.get("lr:1:popular")
    n = struct.unpack_from("<H", blob, 2)[0]
    assert list(struct.unpack_from(f"<{n}H", blob, 4)) == pop.tolist()
    assert json.loads(r.get("lr:1:titles"))[:2] == ["Film 1", "Film 2"]


def test_reader_answers_as_the_model_does(als, redis_url):
    export_redis(als, redis_url, k=K, scores=True)
    backend = RedisBackend(redis_url)
    for user in als.user_ids_.ids[:10].tolist():
        got = backend.recommend_user(user, 5)
        want = recommend_user(als, user, 5)
        assert got.items == want.items and got.titles == want.titles
        np.testing.assert_allclose(got.scores, want.scores, rtol=2e-3, atol=1e-3)  # float16
        assert got.n_train.tolist() == want.n_train.tolist() and got.fallback is None
    stranger = backend.recommend_user(10**9, 3)
    assert stranger.fallback == "unknown user 1000000000" and stranger.score_name == "popularity"
    assert stranger.items == recommend_user(als, 10**9, 3, on_unknown="fallback").items
    with pytest.raises(lensrec.UnknownIdError):
        backend.recommend_user(10**9, 3, fallback=False)
    sim = backend.similar(als.item_ids_.ids[0].item(), 4)
    ref_ids, _ = als.similar_items([0], 4)
    assert sim.items == als.item_ids_.external(ref_ids[0]).tolist()


def test_new_version_flips_and_the_old_one_goes(als, redis_url):
    backend = RedisBackend(redis_url)
    export_redis(als, redis_url, k=K)
    first = backend.recommend_user(100, 3).items
    second = export_redis(als, redis_url, k=4)  # a different K: a visibly different export
    r = redis.Redis.from_url(redis_url)
    assert second.version == 2 and int(r.get("lr:current")) == 2
    assert not [key for key in r.scan_iter(match="lr:1:*")]
    assert backend.max_k in (K, 4)  # cached until the next query
    assert backend.recommend_user(100, 3).items == first  # same model, same list
    assert backend.max_k == 4  # the reader picked the new version up without a restart


def _export_process(model_file: Path, url: str, env_extra: dict[str, str]) -> subprocess.Popen:
    root = Path(lensrec.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), **env_extra}
    cmd = [sys.executable, "-m", "lensrec.cli", "export", str(model_file), "--to", url, "-k", "6"]
    return subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE)


def test_killed_export_leaves_the_old_version_serving(als, als_file, redis_url):
    export_redis(als, redis_url, k=K)
    backend = RedisBackend(redis_url)
    before = backend.recommend_user(101, K).items
    # a real process, stopped after its first block of user lists and killed with SIGKILL
    proc = _export_process(als_file, redis_url, {"LENSREC_EXPORT_FAULT_AFTER_BLOCKS": "1"})
    try:
        deadline = time.monotonic() + 60
        line = b""
        while b"waiting to be killed" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "export ended before the fault point"
        assert b"waiting to be killed" in line
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    r = redis.Redis.from_url(redis_url)
    partial = list(r.scan_iter(match="lr:2:*"))
    assert len(partial) == als.n_users and not r.exists("lr:2:meta")
    assert int(r.get("lr:current")) == 1
    assert backend.recommend_user(101, K).items == before  # still served, K still 10
    assert backend.max_k == K
    # the next export removes the killed one's keys and publishes version 3
    done = export_redis(als, redis_url, k=K)
    assert done.version == 3 and done.stale_keys_removed >= len(partial)
    assert not list(r.scan_iter(match="lr:2:*")) and not list(r.scan_iter(match="lr:1:*"))
    assert backend.recommend_user(101, K).items == before


def test_a_second_export_of_a_prefix_waits_then_names_the_first(als, redis_url):
    """Two exports at once would remove each other's unfinished version: the second is
    refused while the first runs, and the first publishes intact."""
    r = redis.Redis.from_url(redis_url)
    refused: list[str] = []

    def second_export(done: int, total: int) -> None:
        if not refused:
            t = time.monotonic()
            with pytest.raises(ExportInProgress) as info:
                export_redis(als, redis_url, k=3, lock_wait=1.5)
            assert time.monotonic() - t >= 1.4  # it waited, and the first kept its lock
            refused.append(str(info.value))

    first = export_redis(als, redis_url, k=K, on_batch=second_export)
    assert refused and "another export to Redis prefix 'lr'" in refused[0]
    assert f"pid {os.getpid()}" in refused[0] and "--prefix" in refused[0]
    assert first.version == 1 and int(r.get("lr:current")) == 1
    assert len(list(r.scan_iter(match="lr:1:u:*"))) == als.n_users  # nothing removed
    assert not r.exists("lr:lock")  # released
    backend = RedisBackend(redis_url)
    assert backend.recommend_user(100, K).items == recommend_user(als, 100, K).items
    assert export_redis(als, redis_url, k=K).version == 2  # the refused one took no number


def test_a_dead_exports_lock_expires_and_a_stolen_one_publishes_nothing(als, redis_url):
    r = redis.Redis.from_url(redis_url)
    r.set("lr:lock", b"ghost pid 1", px=800)  # an export killed a moment ago
    with pytest.raises(ExportInProgress, match="ghost pid 1"):
        export_redis(als, redis_url, k=K, lock_wait=0.1)
    assert export_redis(als, redis_url, k=K).version == 1  # waited out the expiry

    def steal(done: int, total: int) -> None:  # another writer took the prefix over
        r.set("lr:lock", b"intruder", px=60_000)

    with pytest.raises(ExportInProgress, match="lost its lock"):
        export_redis(als, redis_url, k=4, on_batch=steal)
    assert int(r.get("lr:current")) == 1  # still the first version
    assert RedisBackend(redis_url).max_k == K
    assert r.get("lr:lock") == b"intruder"  # not released by the loser


def test_cli_export_while_another_runs_is_one_line(als_file, redis_url, capsys):
    from lensrec.cli import main

    r = redis.Redis.from_url(redis_url)
    r.set("lr:lock", b"host-b pid 4242 since 04:00:00 UTC", px=60_000)
    assert main(["export", str(als_file), "--to", redis_url, "-k", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "host-b pid 4242" in err
    assert not r.exists("lr:current") and not list(r.scan_iter(match="lr:1:*"))


def test_string_users_and_uuid_items(uuid_data, redis_url):
    from lensrec.models import ItemKNN

    model = ItemKNN(random_state=0).fit(uuid_data)
    export_redis(model, redis_url, k=5, prefix="shop")
    r = redis.Redis.from_url(redis_url)
    table = r.get("shop:1:items")
    assert len(table) == 16 * model.n_items
    import uuid

    assert str(uuid.UUID(bytes=table[:16])) == model.item_ids_.ids[0]
    assert r.exists("shop:1:u:user-3")
    backend = RedisBackend(redis_url, prefix="shop")
    for user in ["user-0", "user-3", "user-17"]:
        assert backend.recommend_user(user, 5).items == recommend_user(model, user, 5).items
    assert backend.parse_item(model.item_ids_.ids[1].upper()) == model.item_ids_.ids[1]


def test_unreachable_redis_is_one_clear_error(als, als_file, capsys):
    from lensrec.cli import main
    from lensrec.testing.redis_server import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(RedisUnavailable, match=f"Redis at {url} is unreachable"):
        export_redis(als, url, k=3)
    assert issubclass(RedisUnavailable, LensrecError)
    assert main(["export", str(als_file), "--to", url, "-k", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"Redis at {url} is unreachable" in err


def test_cli_export_and_parquet(als, als_file, redis_url, tmp_path, capsys):
    import polars as pl

    from lensrec.cli import main

    assert main(["export", str(als_file), "--to", redis_url, "-k", "5", "--prefix", "cli"]) == 0
    assert "exported top-5 of 30 users" in capsys.readouterr().out
    assert RedisBackend(redis_url, prefix="cli").max_k == 5
    out = tmp_path / "lists.parquet"
    assert main(["export", str(als_file), "--to", f"parquet:{out}", "-k", "4"]) == 0
    frame = pl.read_parquet(out)
    assert frame.columns == ["user", "rank", "item", "score"] and frame.height == 4 * als.n_users
    want = _reference_topk(als, 4)
    for u, ext in enumerate(als.user_ids_.ids[:5].tolist()):
        rows = frame.filter(pl.col("user") == ext).sort("rank")
        assert rows["item"].to_list() == als.item_ids_.external(want[u]).tolist()
    summary = export_parquet(als, tmp_path / "b.parquet", k=2)
    assert summary.n_users == als.n_users and (tmp_path / "b.parquet").exists()
    assert main(["export", str(als_file), "--to", "ftp://x", "-k", "4"]) == 2
    assert "--to takes redis://" in capsys.readouterr().err


def test_memory_report_orders_the_encodings(als, redis_url):
    from lensrec.serving.memory import memory_report

    r = redis.Redis.from_url(redis_url)
    report = memory_report(als, redis_url, k=K)
    strings, raw, packed, scored = report.rows
    assert packed.value_bytes_per_user == 4 + 2 * K  # every user has 10 unseen items here
    assert raw.value_bytes_per_user == 16 * K and strings.value_bytes_per_user == 36 * K
    for row in report.rows:
        assert row.memory_usage_per_user > row.value_bytes_per_user
    assert packed.memory_usage_per_user < scored.memory_usage_per_user
    assert scored.memory_usage_per_user < raw.memory_usage_per_user < strings.memory_usage_per_user
    assert r.dbsize() == 0  # cleaned up
    assert "list of UUID strings" in report.text()


def test_uuid_users_are_keyed_by_their_16_bytes(redis_url):
    import uuid

    from lensrec import Interactions
    from lensrec.models import ItemKNN

    users = [str(uuid.UUID(int=(u + 1) * 104729)) for u in range(12)]
    rows = [(users[u], i) for u in range(12) for i in range(10) if (u + i) % 3]
    data = Interactions.from_arrays([u for u, _ in rows], [i for _, i in rows])
    model = ItemKNN(random_state=0).fit(data)
    export_redis(model, redis_url, k=4, prefix="uu")
    r = redis.Redis.from_url(redis_url)
    key = b"uu:1:u:" + uuid.UUID(users[5]).bytes
    assert r.exists(key) and len(key) == len(b"uu:1:u:") + 16
    backend = RedisBackend(redis_url, prefix="uu")
    parsed = backend.parse_user(users[5].upper())  # any spelling of the UUID
    assert parsed == users[5]
    assert backend.recommend_user(parsed, 4).items == recommend_user(model, users[5], 4).items


def test_catalogues_over_65536_items_use_uint32(redis_url):
    from lensrec import Interactions
    from lensrec.models import Popularity

    n_items = 70_000
    # user 99 touches every item once; users 1..19 items 66000..66009 (the most popular);
    # user 0 items 0..9. User 0's top-5 by popularity: 66000..66004 (ties: lower index)
    users = [99] * n_items + [u for u in range(1, 20) for _ in range(10)] + [0] * 10
    items = list(range(n_items)) + [66_000 + j for _ in range(1, 20) for j in range(10)]
    items += list(range(10))
    model = Popularity().fit(Interactions.from_arrays(users, items))
    export_redis(model, redis_url, k=5)
    r = redis.Redis.from_url(redis_url)
    assert json.loads(r.get("lr:1:meta"))["index_width"] == 4
    blob = r.get("lr:1:u:0")
    version, flags, n = struct.unpack_from("<BBH", blob)
    assert (version, flags, n) == (1, 2, 5) and len(blob) == 4 + 4 * 5
    assert list(struct.unpack_from("<5I", blob, 4)) == [66_000, 66_001, 66_002, 66_003, 66_004]
    assert RedisBackend(redis_url).recommend_user(0, 5).items == [
        66_000,
        66_001,
        66_002,
        66_003,
        66_004,
    ]
