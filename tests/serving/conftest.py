"""A real redis-server on a free loopback port (never a mock), and small fitted models."""

from __future__ import annotations

import numpy as np
import pytest

from lensrec import Interactions
from lensrec.testing.redis_server import RedisServer, redis_server_binary


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One redis-server for the session; each test takes its own key prefix or flushes."""
    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed (.ci/run installs Debian's redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    """The session server, emptied for this test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


def _table(n_users: int = 30, n_items: int = 40, seed: int = 5):
    gen = np.random.default_rng(seed)
    users, items, ratings = [], [], []
    for u in range(n_users):
        for i in gen.choice(n_items, size=8, replace=False):
            users.append(u)
            items.append(int(i))
            ratings.append(float(1 + (u + i) % 5))
    return np.array(users), np.array(items), np.array(ratings)


@pytest.fixture(scope="session")
def small_data() -> Interactions:
    """30 users, 40 items, integer ids (users 100.., items 1..), with titles."""
    import polars as pl

    u, i, r = _table()
    info = pl.DataFrame({"item_id": np.arange(1, 41), "title": [f"Film {j}" for j in range(1, 41)]})
    return Interactions.from_arrays(u + 100, i + 1, r, item_info=info)


@pytest.fixture(scope="session")
def als_file(small_data, tmp_path_factory):
    from lensrec.models import ALS

    path = tmp_path_factory.mktemp("models") / "als.lrec"
    ALS(factors=4, epochs=3, random_state=0).fit(small_data).save(path)
    return path


@pytest.fixture(scope="session")
def uuid_data() -> Interactions:
    """String user ids and UUID item ids."""
    import uuid

    u, i, r = _table(seed=9)
    item_uuids = [str(uuid.UUID(int=(j + 1) * 7919)) for j in range(40)]
    return Interactions.from_arrays([f"user-{x}" for x in u], [item_uuids[x] for x in i], r)
