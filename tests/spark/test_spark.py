"""lensrec.spark against lensrec itself: the same metrics on the same lists, the same splits
and filters on the same rows, top-K against brute force, and the command end to end."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from lensrec import split as lsplit
from lensrec.data import Interactions, synthetic
from lensrec.errors import ConfigError, DataError
from lensrec.evaluate import metrics as lm

pytestmark = pytest.mark.spark

NAMES = ("precision", "recall", "hit_rate", "ndcg", "map", "map_k", "mrr")


def _recs_frame(spark, users, rec):
    rows = [(int(u), [int(i) for i in r]) for u, r in zip(users, rec, strict=True)]
    return spark.createDataFrame(rows, "user int, items array<int>")


def _pairs_frame(spark, users, items, ratings=None):
    if ratings is None:
        return spark.createDataFrame(
            [(int(u), int(i)) for u, i in zip(users, items, strict=True)], "user int, item int"
        )
    rows = [(int(u), int(i), float(r)) for u, i, r in zip(users, items, ratings, strict=True)]
    return spark.createDataFrame(rows, "user int, item int, rating double")


def test_ranking_metrics_equal_lensrec_on_identical_lists(spark, rng):
    from lensrec.spark.metrics import coverage, ranking_metrics

    n, n_items, width = 60, 40, 12
    rec = np.stack([rng.permutation(n_items)[:width] for _ in range(n)]).astype(np.int32)
    rec[rng.random((n, width)) < 0.1] = -1  # padding inside lists: never a hit
    rec[:5, 8:] = -1  # short lists
    dense = rng.random((n, n_items)) < 0.15
    dense[:3] = False  # users without relevant items: not evaluated
    dense[3, :] = False
    dense[3, rec[3, 0]] = True  # one relevant item, at rank 1
    ratings = np.where(dense, rng.integers(1, 6, (n, n_items)), 0).astype(np.float64)
    rel = sp.csr_matrix(ratings)
    uu, ii = rel.nonzero()
    users = np.arange(n)
    specs = [(name, k) for name in NAMES for k in (1, 10)] + [("ndcg", 5), ("mrr", 5)]
    means, per_user = ranking_metrics(
        _recs_frame(spark, users, rec), _pairs_frame(spark, uu, ii, rel.data), specs
    )
    got = {r["user"]: r for r in per_user.collect()}
    evaluated = np.flatnonzero(np.diff(rel.indptr) > 0)
    assert sorted(got) == evaluated.tolist()
    want = lm.ranking_metrics(rec, rel, specs)
    for label, values in want.items():
        ours = np.array([got[u][label] for u in evaluated])
        np.testing.assert_allclose(ours, values[evaluated], rtol=1e-12, err_msg=label)
        assert means[label] == pytest.approx(np.nanmean(values))
    assert got[3]["ndcg@10"] == 1.0 and got[3]["mrr@5"] == 1.0  # the hand-made user
    # a relevance threshold: only ratings >= 4 count
    means4, _ = ranking_metrics(
        _recs_frame(spark, users, rec),
        _pairs_frame(spark, uu, ii, rel.data),
        [("ndcg", 10), ("recall", 5)],
        relevance_threshold=4,
    )
    rel4 = sp.csr_matrix(np.where(ratings >= 4, 1.0, 0.0))
    assert means4["ndcg@10"] == pytest.approx(np.nanmean(lm.ndcg_at_k(rec, rel4, 10)))
    assert means4["recall@5"] == pytest.approx(np.nanmean(lm.recall_at_k(rec, rel4, 5)))
    assert coverage(_recs_frame(spark, users, rec), n_items, 5) == pytest.approx(
        lm.coverage_at_k(rec, n_items, 5)
    )


def test_rating_metrics_equal_lensrec(spark, rng):
    from lensrec.spark.metrics import rating_metrics

    true = rng.integers(1, 6, 200).astype(np.float64)
    pred = true + rng.normal(0, 0.7, 200)
    frame = spark.createDataFrame(
        [(float(a), float(b)) for a, b in zip(true, pred, strict=True)],
        "rating double, prediction double",
    )
    got = rating_metrics(frame)
    assert got["rmse"] == pytest.approx(lm.rmse(true, pred))
    assert got["mae"] == pytest.approx(lm.mae(true, pred))
    assert got["r2"] == pytest.approx(lm.r2(true, pred))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Synthetic data as a Parquet file (string user ids, to exercise indexing) and in memory."""
    inter = synthetic(300, 120, 6000, random_state=5)
    path = tmp_path_factory.mktemp("spark") / "ratings.parquet"
    pl.DataFrame(
        {
            "userId": [f"u{u}" for u in inter.user_ids.ids[inter.users]],
            "movieId": inter.item_ids.ids[inter.items],
            "rating": inter.ratings,
            "timestamp": inter.timestamps,
        }
    ).write_parquet(path)
    return path, inter


def _pairs(df):
    return {
        (str(r["user_id"]), int(r["item_id"])) for r in df.select("user_id", "item_id").collect()
    }


def _lens_pairs(inter: Interactions, prefix="u"):
    u = inter.user_ids.ids[inter.users]
    i = inter.item_ids.ids[inter.items]
    return {(f"{prefix}{a}", int(b)) for a, b in zip(u, i, strict=True)}


@pytest.mark.parametrize("spec", ["last:3", "last:2:row", "ua", "temporal:0.2"])
def test_splits_take_the_same_rows_as_lensrec(spark, small, spec):
    from lensrec.spark import make_split, read_interactions

    path, inter = small
    df = read_interactions(spark, str(path))
    ours = make_split(df, spec)
    theirs = lsplit.make_split(inter, spec)
    assert _pairs(ours.test) == _lens_pairs(theirs.test)
    assert _pairs(ours.train) == _lens_pairs(theirs.train)


def test_user_random_gives_each_user_lensrecs_test_count(spark, small):
    from lensrec.spark import make_split, read_interactions

    path, inter = small
    ours = make_split(read_interactions(spark, str(path)), "user-random:0.7/0.3", seed=1)
    theirs = lsplit.make_split(inter, "user-random:0.7/0.3", random_state=1)
    per = ours.test.groupBy("user_id").count().collect()
    got = {r["user_id"]: r["count"] for r in per}
    tu = theirs.test.user_ids.ids[theirs.test.users]
    want = {f"u{k}": int(v) for k, v in zip(*np.unique(tu, return_counts=True), strict=True)}
    assert got == want  # same rounding rule, different draws
    assert not (_pairs(ours.test) & _pairs(ours.train))


def test_filters_keep_the_same_rows_as_lensrec(spark, small):
    from lensrec.spark import kcore, min_rating, read_interactions

    path, inter = small
    df = read_interactions(spark, str(path))
    assert _pairs(kcore(df, 25, 20)) == _lens_pairs(lsplit.kcore(inter, 25, 20))
    assert _pairs(min_rating(df, 4)) == _lens_pairs(lsplit.min_rating(inter, 4))
    with pytest.raises(ConfigError, match="not available in Spark"):
        from lensrec.spark import make_split

        make_split(df, "warm-temporal")


def test_read_keeps_the_latest_duplicate_and_names_missing_columns(spark, tmp_path):
    from lensrec.spark import read_interactions

    csv = tmp_path / "r.csv"
    csv.write_text("user,item,rating,timestamp\na,x,1,10\na,x,5,20\nb,x,3,5\n")
    df = read_interactions(spark, str(csv))
    rows = sorted((r["user_id"], r["item_id"], r["rating"]) for r in df.collect())
    assert rows == [("a", "x", 5.0), ("b", "x", 3.0)]
    bad = tmp_path / "bad.csv"
    bad.write_text("user,thing\na,x\n")
    with pytest.raises(DataError, match=r"bad\.csv.*missing column"):
        read_interactions(spark, str(bad))


def test_topk_excludes_seen_items_and_equals_brute_force(spark, small):
    from lensrec.spark import SparkALS, read_interactions, recommend_all

    path, _ = small
    df = read_interactions(spark, str(path)).persist()
    model = SparkALS(factors=8, epochs=3, random_state=0).fit(df)
    k = 7
    recs = {r["user"]: (r["items"], r["scores"]) for r in recommend_all(model, df, k).collect()}
    U = {r["id"]: np.asarray(r["features"]) for r in model.userFactors.collect()}
    V = {r["id"]: np.asarray(r["features"]) for r in model.itemFactors.collect()}
    items = np.array(sorted(V))
    Vm = np.stack([V[i] for i in items]).astype(np.float32)
    seen = {}
    for r in df.select("user", "item").collect():
        seen.setdefault(r["user"], set()).add(r["item"])
    assert set(recs) == set(U)
    for u, (got, scores) in recs.items():
        s = Vm @ U[u].astype(np.float32)
        allowed = np.array([i not in seen[u] for i in items])
        order = np.argsort(-np.where(allowed, s, -np.inf), kind="stable")[: min(k, allowed.sum())]
        assert not set(got) & seen[u]
        np.testing.assert_allclose(scores, s[order], rtol=1e-4, atol=1e-5)
        assert got == items[order].tolist() or np.allclose(np.sort(scores), np.sort(s[order]))


def test_params_known_before_the_data_and_unknown_params_are_refused():
    from lensrec.spark import SparkALS

    ml = {"engine": "spark-ml"}
    als = SparkALS.from_params({"factors": 8, "epochs": 2, "reg": 0.1, "alpha": 3.0, **ml})
    got = als.spark_params()
    # implicit: the confidence goes into the values (alpha 1) and regParam needs the counts
    assert (got["rank"], got["maxIter"], got["regParam"], got["alpha"]) == (8, 2, None, 1.0)
    assert got["implicitPrefs"] is True
    got = SparkALS.from_params({"reg": 0.1, "alpha": 3.0}, explicit=True).spark_params()
    assert (got["regParam"], got["alpha"], got["implicitPrefs"]) == (0.1, 3.0, False)
    assert SparkALS.from_params({"spark_reg_param": 0.2, **ml}).spark_params()["regParam"] == 0.2
    # the default engine for implicit feedback is lensrec's own, with lensrec's names
    als = SparkALS.from_params({"factors": 8, "solver": "cholesky", "patience": 2})
    got = als.spark_params()
    assert (got["engine"], got["factors"], got["solver"], got["cg_steps"]) == (
        "lensrec",
        8,
        "cholesky",
        3,
    )
    assert SparkALS.from_params({}, explicit=True).engine_ == "spark-ml"
    assert SparkALS.from_params({"unobserved_weight": 0.0}).unobserved_weight == 0.0
    with pytest.raises(ConfigError, match="unknown Spark ALS parameter"):
        SparkALS.from_params({"factorz": 8})
    with pytest.raises(ConfigError, match="no meaning for explicit"):
        SparkALS.from_params({"unobserved_weight": 0.5}, explicit=True)
    with pytest.raises(ConfigError, match="unobserved_weight must be > 0 in Spark ML"):
        SparkALS.from_params({"unobserved_weight": 0.0, **ml})
    with pytest.raises(ConfigError, match="reg must be > 0"):
        SparkALS.from_params({"reg": 0.0})
    with pytest.raises(ConfigError, match="engine must be one of lensrec, spark-ml"):
        SparkALS.from_params({"engine": "mllib"})
    with pytest.raises(ConfigError, match="Spark ML's engine only"):
        SparkALS.from_params({"engine": "lensrec"}, explicit=True)
    with pytest.raises(ConfigError, match="solver must be"):
        SparkALS.from_params({"solver": "lu"})
    with pytest.raises(ConfigError, match="cg_steps must be >= 1"):
        SparkALS.from_params({"cg_steps": 0})


def test_spark_evaluate_command_end_to_end(spark, small, tmp_path, capsys):
    from lensrec.cli import main

    path, inter = small
    out = tmp_path / "topk"
    code = main(
        ["spark", "evaluate", "--dataset", str(path), "--min-rating", "4", "--split", "last:2",
         "--set", "factors=8", "--set", "epochs=3", "--k", "5,10", "--json",
         "--topk-out", str(out), "--topk-k", "4"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    got = json.loads(captured.out)
    for label in ("ndcg@5", "ndcg@10", "recall@10", "map@10", "mrr@5", "coverage@10"):
        assert 0.0 <= got[label] <= 1.0
    assert got["recall@10"] >= got["recall@5"]
    assert got["counts"]["test"] > 0 and got["counts"]["test_users"] > 0
    top = pl.read_parquet(out / "*.parquet")
    assert top.columns == ["user_id", "rank", "item_id", "score"]
    assert top.group_by("user_id").len()["len"].max() == 4
    positives = lsplit.min_rating(inter, 4)
    train = lsplit.make_split(positives, "last:2").train
    seen = _lens_pairs(train)
    assert not {(u, i) for u, i in zip(top["user_id"], top["item_id"], strict=True)} & seen
    assert main(["spark", "evaluate", "--dataset", str(path), "--model", "bpr"]) == 2
    assert "not available" in capsys.readouterr().err


def test_redis_export_from_executors_is_what_the_server_reads(spark, small, tmp_path):
    """The executors write the serving store's encoding; RedisBackend reads the same lists."""
    from lensrec.spark import SparkALS, export_redis_spark, read_interactions, recommend_all
    from lensrec.testing.redis_server import RedisServer, redis_server_binary

    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed (.ci/run installs Debian's redis-server)")
    from lensrec.serving import RedisBackend

    path, _ = small
    df = read_interactions(spark, str(path)).persist()
    model = SparkALS(factors=4, epochs=2, random_state=0).fit(df)
    recs = recommend_all(model, df, 6)
    want = {r["user"]: (r["items"], r["scores"]) for r in recs.collect()}
    users = {r["user"]: r["user_id"] for r in df.select("user", "user_id").distinct().collect()}
    items = {r["item"]: r["item_id"] for r in df.select("item", "item_id").distinct().collect()}
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        first = export_redis_spark(recs, df, server.url, k=6, scores=True)
        again = export_redis_spark(recs, df, server.url, k=6, scores=True)
        assert (first["version"], again["version"]) == (1, 2)
        assert again["n_users"] == len(want) == 300 and again["stale_keys_removed"] > 0
        backend = RedisBackend(server.url)
        for u in list(want)[:25]:
            got = backend.recommend_user(users[u], 6)
            assert got.fallback is None
            assert got.items == [items[i] for i in want[u][0]]
            np.testing.assert_allclose(got.scores, want[u][1], rtol=2e-3, atol=1e-3)  # float16
        stranger = backend.recommend_user("nobody", 3)
        counts = df.groupBy("item_id").count().orderBy(F_desc("count"), "item_id").collect()
        assert stranger.fallback and stranger.items[0] == counts[0]["item_id"]
    finally:
        server.stop()


def F_desc(name):
    from pyspark.sql import functions as F

    return F.col(name).desc()
