"""item2vec: sentences, gensim's own ranking, the mean scoring, the vocabulary fallback,
seeds across processes, parameters."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gensim", reason="item2vec needs the 'item2vec' extra (gensim)")

from gensim.models import Word2Vec  # noqa: E402

from lensrec import Interactions  # noqa: E402
from lensrec._config import seed_from  # noqa: E402
from lensrec.data.planted import make_blocks  # noqa: E402
from lensrec.errors import ConfigError  # noqa: E402
from lensrec.models import Item2Vec  # noqa: E402
from lensrec.models.item2vec import _token_hash, user_sentences  # noqa: E402
from lensrec.retrieval import FALLBACK_UNUSABLE_HISTORY  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FAST = {"factors": 8, "epochs": 5}


@pytest.fixture(scope="module")
def blocks():
    return make_blocks(n_groups=3, users_per_group=12, items_per_group=10, density=0.5,
                       noise=0.02, random_state=3)  # fmt: skip


def test_sentences_follow_time_then_row_order():
    users = np.array([1, 0, 1, 1, 0, 1])
    items = np.array([10, 20, 11, 12, 21, 13])
    ts = np.array([5, 9, 3, 5, 1, 4])
    data = Interactions.from_arrays(users, items, None, timestamps=ts)
    ext = data.item_ids.ids
    by_time = [[int(ext[int(t)]) for t in s] for s in user_sentences(data, "time")]
    by_row = [[int(ext[int(t)]) for t in s] for s in user_sentences(data, "row")]
    u0, u1 = (data.user_ids.index([0])[0], data.user_ids.index([1])[0])
    # user 1: t=3 (11), t=4 (13), t=5 twice (10 before 12: row order breaks the tie)
    assert by_time[u1] == [11, 13, 10, 12] and by_time[u0] == [21, 20]
    assert by_row[u1] == [10, 11, 12, 13] and by_row[u0] == [20, 21]


def test_output_scoring_ranks_as_gensim_predict_output_word(blocks):
    data = blocks[0]
    model = Item2Vec(**FAST, random_state=0).fit(data)
    # the same word2vec, trained by gensim directly (one worker, the model's seed and hash;
    # subsample "auto" is 1.15 / the number of items seen at least min_count times; CBOW
    # with window "all" = the longest sentence)
    n_vocab = int((np.bincount(data.items) >= 3).sum())
    sentences = user_sentences(data, "time")
    w2v = Word2Vec(
        sentences, vector_size=8, window=max(map(len, sentences)), min_count=3, sg=0,
        negative=16, ns_exponent=-0.5, epochs=5, alpha=0.025, sample=1.15 / n_vocab,
        workers=1, hashfxn=_token_hash, seed=seed_from(np.random.default_rng(0)),
    )  # fmt: skip
    seen = data.csr()
    for user in (0, 13, 30):
        hist = seen.indices[seen.indptr[user] : seen.indptr[user + 1]]
        words = [str(i) for i in hist]
        want = [int(w) for w, _ in w2v.predict_output_word(words, topn=5 + len(words))]
        want = [i for i in want if i not in set(hist.tolist())][:5]
        got, _ = model.recommend([user], k=5)
        assert got[0].tolist() == want
        new, _ = model.recommend_for_history(hist, k=5)
        assert new[0].tolist() == want


def test_mean_scoring_is_cosine_to_the_mean_of_unit_vectors(blocks):
    data = blocks[0]
    model = Item2Vec(**FAST, scoring="mean", random_state=0).fit(data)
    v = model.item_vectors_.astype(np.float64)
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    hist = [2, 5, 7]
    scores = unit @ unit[hist].mean(axis=0)
    scores[hist] = -np.inf
    want = np.argsort(-scores, kind="stable")[:6]
    got, got_scores = model.recommend_for_history(hist, k=6)
    assert got[0].tolist() == want.tolist()
    np.testing.assert_allclose(got_scores[0], scores[want], rtol=1e-4, atol=1e-5)


def test_histories_outside_the_vocabulary_fall_back_flagged():
    base = make_blocks(n_groups=2, users_per_group=10, items_per_group=8, density=0.6,
                       noise=0.0, random_state=1)[0]  # fmt: skip
    # items 100 and 101 seen once each (below min_count=3); user 50 has only those
    users = np.concatenate([base.user_ids.ids[base.users], [50, 50]])
    items = np.concatenate([base.item_ids.ids[base.items], [100, 101]])
    data = Interactions.from_arrays(users, items)
    model = Item2Vec(**FAST, random_state=0).fit(data)
    rare = data.item_ids.index([100, 101])
    assert not model.in_vocabulary_[rare].any() and model.in_vocabulary_.sum() == 16
    lonely = int(data.user_ids.index([50])[0])
    rec = model.recommend([lonely, 0], k=5)
    assert rec.fallback.tolist() == [True, False]
    assert rec.reasons[0] == FALLBACK_UNUSABLE_HISTORY and rec.reasons[1] == ""
    counts = np.bincount(data.items, minlength=data.n_items).astype(float)
    counts[rare] = -1  # the user's own items are excluded
    assert rec.ids[0].tolist() == np.argsort(-counts, kind="stable")[:5].tolist()
    new = model.recommend_for_history([rare.tolist(), [int(rare[0]), 3]], k=20)
    assert new.fallback.tolist() == [True, False]
    # an item without a vector is never ranked above one with a vector: the 15 unseen ones
    # with vectors come first, then the other rare item
    listed = new.ids[1][new.ids[1] >= 0]
    assert model.in_vocabulary_[listed].tolist() == [True] * 15 + [False]


def test_one_worker_repeats_across_processes(blocks):
    data = blocks[0]
    a = Item2Vec(**FAST, random_state=4).fit(data)
    b = Item2Vec(**FAST, random_state=4).fit(data)
    c = Item2Vec(**FAST, random_state=5).fit(data)
    np.testing.assert_array_equal(a.item_vectors_, b.item_vectors_)
    assert not np.array_equal(a.item_vectors_, c.item_vectors_)
    code = (
        "import numpy as np\n"
        "from lensrec.data.planted import make_blocks\n"
        "from lensrec.models import Item2Vec\n"
        "data = make_blocks(n_groups=3, users_per_group=12, items_per_group=10, density=0.5,"
        " noise=0.02, random_state=3)[0]\n"
        "m = Item2Vec(factors=8, epochs=5, random_state=4).fit(data)\n"
        "print(repr(m.item_vectors_.astype(np.float64).sum()))\n"
    )
    # another process with another str hash seed than this one's gives the same vectors
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": seed}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120, check=True)  # fmt: skip
    assert out.stdout.strip() == repr(a.item_vectors_.astype(np.float64).sum())


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("factors", 6),
        ("architecture", "skip-gram"),
        ("window", 1),
        ("negatives", 3),
        ("ns_exponent", 0.75),
        ("min_count", 12),
        ("epochs", 7),
        ("learning_rate", 0.05),
        ("subsample", 0.01),
        ("order", "row"),
        ("random_state", 1),
    ],
)
def test_each_parameter_changes_the_result(blocks, param, value):
    data = blocks[0]
    gen = np.random.default_rng(0)
    ts = gen.permutation(len(data))  # time order differs from row order
    data = Interactions.from_arrays(data.users, data.items, None, timestamps=ts)
    a = Item2Vec(**FAST, random_state=0).fit(data)
    b = Item2Vec(**{**FAST, "random_state": 0, param: value}).fit(data)
    va, vb = a.item_vectors_, b.item_vectors_
    assert va.shape != vb.shape or np.abs(va - vb).max() > 1e-4, param


def test_scoring_changes_the_lists_and_min_count_too_high_is_refused(blocks):
    data = blocks[0]
    a = Item2Vec(**FAST, random_state=0).fit(data)
    b = Item2Vec(**FAST, scoring="mean", random_state=0).fit(data)
    users = np.arange(data.n_users)
    assert not np.array_equal(a.recommend(users, k=5)[0], b.recommend(users, k=5)[0])
    with pytest.raises(ConfigError, match="min_count"):
        Item2Vec(min_count=1000).fit(data)


@pytest.mark.realdata
def test_quality_floor_ml100k():
    """A short fit (5 epochs) already ranks clearly better than popularity on ml-100k."""
    from lensrec.data import load_dataset
    from lensrec.evaluate import evaluate
    from lensrec.models import Popularity
    from lensrec.split import make_split, min_rating

    try:
        data = min_rating(load_dataset("ml-100k"), 4)
    except Exception as exc:  # no cache and no network here
        pytest.skip(f"ml-100k unavailable: {exc}")
    split = make_split(data, "last:3:row")
    metrics = ["ndcg@10", "hit_rate@10"]
    pop = Popularity().fit(split.train)
    base = evaluate(pop, split.train, split.test, k=10, metrics=metrics, ci=False).metrics
    model = Item2Vec(epochs=5, order="row", random_state=0).fit(split.train)
    got = evaluate(model, split.train, split.test, k=10, metrics=metrics, ci=False).metrics
    assert got["hit_rate@10"] >= 1.1 * base["hit_rate@10"], (got, base)
    assert got["ndcg@10"] >= 1.1 * base["ndcg@10"], (got, base)
