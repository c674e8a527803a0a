"""Split strategies and filters: invariants (hypothesis), hand-built answers, spec strings.

Expected values here come from naive Python loops or from the construction of the data,
never from lensrec.split itself.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lensrec import ConfigError, DataError, Interactions
from lensrec import split as S
from lensrec.testing.strategies import interactions

# --- helpers ---------------------------------------------------------------------------------


def rows_of(inter: Interactions | None) -> Counter:
    """Multiset of rows as external (user, item, rating, timestamp) tuples."""
    if inter is None:
        return Counter()
    u = inter.user_ids.ids[inter.users].tolist()
    i = inter.item_ids.ids[inter.items].tolist()
    r = inter.ratings.tolist() if inter.ratings is not None else [None] * len(inter)
    t = inter.timestamps.tolist() if inter.timestamps is not None else [None] * len(inter)
    return Counter(zip(u, i, r, t, strict=True))


def pairs_of(inter: Interactions | None) -> set:
    if inter is None:
        return set()
    return set(
        zip(
            inter.user_ids.ids[inter.users].tolist(),
            inter.item_ids.ids[inter.items].tolist(),
            strict=True,
        )
    )


def check_partition(inter: Interactions, sp: S.Split) -> None:
    """Parts are disjoint sub-multisets of the input; with the reported drops they are all of it."""
    whole = rows_of(inter)
    parts = rows_of(sp.train) + rows_of(sp.test) + rows_of(sp.valid)
    assert not (parts - whole), "a part holds a row that is not in the input"
    n_parts = len(sp.train) + len(sp.test) + (0 if sp.valid is None else len(sp.valid))
    assert n_parts + sp.report["rows_dropped"] == len(inter)
    assert sp.report["input_rows"] == len(inter)
    assert sp.report["train_rows"] == len(sp.train)
    assert sp.report["test_rows"] == len(sp.test)
    assert sp.report.get("valid_rows", 0) == (0 if sp.valid is None else len(sp.valid))
    # shared maps, compacted train, no pair on both sides
    assert sp.test.user_ids is sp.train.user_ids and sp.test.item_ids is sp.train.item_ids
    if sp.valid is not None:
        assert sp.valid.user_ids is sp.train.user_ids and sp.valid.item_ids is sp.train.item_ids
    assert (sp.train.user_counts() > 0).all() and (sp.train.item_counts() > 0).all()
    assert not (pairs_of(sp.train) & pairs_of(sp.test))
    assert not (pairs_of(sp.train) & pairs_of(sp.valid))
    assert not (pairs_of(sp.test) & pairs_of(sp.valid))
    # held-out rows only name users and items that train has
    for part in (sp.test, sp.valid):
        if part is not None and len(part):
            assert set(part.user_ids.ids[part.users].tolist()) <= set(
                sp.train.user_ids.ids[sp.train.users].tolist()
            )
            assert set(part.item_ids.ids[part.items].tolist()) <= set(
                sp.train.item_ids.ids[sp.train.items].tolist()
            )


def by_user(inter: Interactions) -> dict:
    """External user -> list of (row position, item, timestamp) in file order."""
    out: dict = defaultdict(list)
    u = inter.user_ids.ids[inter.users].tolist()
    i = inter.item_ids.ids[inter.items].tolist()
    t = inter.timestamps.tolist() if inter.timestamps is not None else [0] * len(inter)
    for row, (uu, ii, tt) in enumerate(zip(u, i, t, strict=True)):
        out[uu].append((row, ii, tt))
    return out


# --- invariants ------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(interactions(), st.floats(0.05, 0.9), st.integers(0, 2**32 - 1))
def test_random_split_partitions(inter, frac, seed):
    sp = S.random_split(inter, test=frac, random_state=seed)
    check_partition(inter, sp)
    held = len(sp.test) + sp.report["test_cold_user_rows"] + sp.report["test_cold_item_rows"]
    assert held == int(np.floor(frac * len(inter) + 0.5))


@settings(max_examples=60, deadline=None)
@given(
    interactions(),
    st.sampled_from([(0.8, 0.1, 0.1), (0.6, 0.2, 0.2), (0.7, 0.3), (0.5, 0.5)]),
    st.integers(0, 2**32 - 1),
)
def test_user_random_split_partitions_and_keeps_a_train_row(inter, fractions, seed):
    sp = S.user_random_split(inter, fractions, random_state=seed)
    check_partition(inter, sp)
    assert (sp.valid is None) == (len(fractions) == 2)
    # every user of the input keeps at least one train row, so no user is ever cold
    assert sp.train.n_users == len(np.unique(inter.users))
    assert sp.report["test_cold_users"] == 0
    # per user, train gets its share: n - round(n*test) - round(n*valid) when that is >= 1
    train_per_user = Counter(sp.train.user_ids.ids[sp.train.users].tolist())
    f_test = fractions[-1]
    f_valid = fractions[1] if len(fractions) == 3 else 0.0
    for user, rows in by_user(inter).items():
        n = len(rows)
        expect = n - int(np.floor(n * f_test + 0.5)) - int(np.floor(n * f_valid + 0.5))
        assert train_per_user[user] == max(expect, 1)


@settings(max_examples=60, deadline=None)
@given(interactions(), st.floats(0.05, 0.9))
def test_temporal_split_orders_time(inter, frac):
    sp = S.temporal_split(inter, test=frac)
    check_partition(inter, sp)
    n_test = int(np.floor(frac * len(inter) + 0.5))
    # naive: rows sorted by (timestamp, row); the last n_test go to test
    order = sorted(range(len(inter)), key=lambda r: (int(inter.timestamps[r]), r))
    expect = rows_of(inter.subset(np.array(sorted(order[len(order) - n_test :]), dtype=np.int64)))
    assert not (rows_of(sp.test) - expect)
    assert (
        sum(expect.values()) - len(sp.test)
        == sp.report["test_cold_user_rows"] + sp.report["test_cold_item_rows"]
    )
    if len(sp.test) and len(sp.train):
        assert sp.train.timestamps.max() <= sp.test.timestamps.min()


@settings(max_examples=60, deadline=None)
@given(interactions(), st.integers(1, 4), st.sampled_from(["timestamp", "row"]))
def test_last_k_takes_each_users_last_rows(inter, k, by):
    sp = S.last_k(inter, k, by=by)
    check_partition(inter, sp)
    expect_pairs = set()
    kept = 0
    for user, rows in by_user(inter).items():
        if len(rows) <= k:
            kept += 1
            continue
        ordered = sorted(
            rows, key=(lambda x: (x[2], x[0])) if by == "timestamp" else (lambda x: x[0])
        )
        expect_pairs |= {(user, item) for _, item, _ in ordered[-k:]}
    got = pairs_of(sp.test)
    assert got <= expect_pairs
    assert (
        len(expect_pairs) - len(got)
        == sp.report["test_cold_item_rows"] + sp.report["test_cold_user_rows"]
    )
    assert sp.report["test_cold_users"] == 0  # every test user keeps > 0 train rows
    assert sp.report["users_kept_in_train"] == kept
    per_user = Counter(u for u, _ in expect_pairs)
    assert all(c == k for c in per_user.values())


@settings(max_examples=40, deadline=None)
@given(interactions(min_rows=5), st.sampled_from(["ua", "ub"]))
def test_allbut_partitions(inter, name):
    sp = S.grouplens(inter, name)
    check_partition(inter, sp)


@settings(max_examples=60, deadline=None)
@given(interactions(min_rows=2), st.floats(0.3, 0.95), st.integers(0, 4), st.integers(1, 3))
def test_warm_temporal_invariants(inter, q, min_train, min_test):
    sp = S.warm_temporal(inter, quantile=q, min_train=min_train, min_test=min_test)
    check_partition(inter, sp)
    thr = sp.report["threshold"]
    assert (sp.train.timestamps <= thr).all() and (sp.test.timestamps > thr).all()
    assert len(sp.train) == int((inter.timestamps <= thr).sum())  # train keeps every earlier row
    tr = Counter(sp.train.user_ids.ids[sp.train.users].tolist())
    te = Counter(sp.test.user_ids.ids[sp.test.users].tolist())
    assert all(tr[u] >= min_train and c >= min_test for u, c in te.items())
    r = sp.report
    assert r["rows_dropped"] == (
        r["test_cold_user_rows"]
        + r["test_cold_item_rows"]
        + r["test_few_train_rows"]
        + r["test_few_test_rows"]
    )


@settings(max_examples=40, deadline=None)
@given(
    interactions(min_rows=3),
    st.sampled_from(["user-random", "random", "last"]),
    st.integers(0, 1000),
)
def test_carve_validation_keeps_test_and_maps(inter, strategy, seed):
    base = S.last_k(inter, 1, by="row")
    sp = S.carve_validation(base, strategy, random_state=seed)
    assert sp.test is base.test
    assert sp.train.user_ids is base.train.user_ids and sp.valid.user_ids is base.train.user_ids
    assert sp.valid.item_ids is base.train.item_ids
    old = rows_of(base.train)
    new = rows_of(sp.train) + rows_of(sp.valid)
    assert not (new - old)
    assert len(sp.train) + len(sp.valid) + sp.report["valid_cold_user_rows"] + sp.report[
        "valid_cold_item_rows"
    ] == len(base.train)
    assert (
        sp.report["rows_dropped"]
        == base.report["rows_dropped"]
        + sp.report["valid_cold_user_rows"]
        + sp.report["valid_cold_item_rows"]
    )
    assert not (pairs_of(sp.train) & pairs_of(sp.valid))
    # every valid row has its user and item in the new train
    tu, ti = set(sp.train.users.tolist()), set(sp.train.items.tolist())
    assert set(sp.valid.users.tolist()) <= tu and set(sp.valid.items.tolist()) <= ti


# --- determinism -----------------------------------------------------------------------------


@pytest.fixture
def medium(rng) -> Interactions:
    n = 3000
    users = rng.integers(0, 60, n)
    items = rng.integers(0, 200, n)
    return Interactions.from_arrays(users, items, rng.integers(1, 6, n), rng.integers(0, 10**6, n))


@pytest.mark.parametrize("spec", ["random:0.2", "user-random:0.8/0.1/0.1"])
def test_same_seed_same_split_other_seed_other_split(medium, spec):
    a = S.make_split(medium, spec, random_state=7)
    b = S.make_split(medium, spec, random_state=7)
    c = S.make_split(medium, spec, random_state=8)
    assert rows_of(a.test) == rows_of(b.test) and rows_of(a.train) == rows_of(b.train)
    assert rows_of(a.test) != rows_of(c.test)
    g = S.make_split(medium, spec, random_state=np.random.default_rng(7))
    assert rows_of(g.test) == rows_of(a.test)  # a Generator seeded alike draws alike


def test_random_state_rejects_junk(medium):
    with pytest.raises(ConfigError):
        S.random_split(medium, 0.2, random_state="seven")  # type: ignore[arg-type]


def test_rows_stay_in_file_order():
    inter = Interactions.from_arrays(
        [1, 2, 1, 2, 1, 2], [10, 30, 20, 10, 30, 20], [1, 2, 3, 4, 5, 1], [5, 4, 3, 2, 1, 0]
    )
    sp = S.last_k(inter, 1, by="row")
    assert sp.train.item_ids.ids[sp.train.items].tolist() == [10, 30, 20, 10]
    assert sp.test.item_ids.ids[sp.test.items].tolist() == [30, 20]
    sp = S.last_k(inter, 1, by="timestamp")  # latest by time is the first row of each user
    assert sp.test.item_ids.ids[sp.test.items].tolist() == [10, 30]
    assert sp.train.item_ids.ids[sp.train.items].tolist() == [20, 10, 30, 20]


# --- hand-built tables -----------------------------------------------------------------------


def test_last_k_timestamp_ties_go_by_row_order():
    #           user: a  a  a  a  b  b
    inter = Interactions.from_arrays(
        ["a", "a", "a", "a", "b", "b"], [1, 2, 3, 4, 1, 3], [5, 4, 3, 2, 1, 5], [9, 7, 9, 1, 3, 3]
    )
    sp = S.last_k(inter, 2)
    # a: times 9 (row 0), 7, 9 (row 2), 1 -> order 4, 2, 1, 3 -> last two are items 1 and 3
    # b: 2 rows <= k -> all in train
    assert pairs_of(sp.test) == {("a", 1), ("a", 3)}
    assert sp.report["users_kept_in_train"] == 1
    with pytest.raises(DataError, match="last:2:row"):
        S.last_k(Interactions.from_arrays([1, 1], [1, 2]), 2)


def test_temporal_ties_hand_built():
    inter = Interactions.from_arrays(
        [1, 2, 3, 1, 2, 3, 1, 2, 3, 1],
        [1, 1, 1, 2, 2, 2, 3, 3, 3, 4],
        None,
        [5, 9, 9, 1, 9, 2, 3, 4, 6, 7],
    )
    sp = S.temporal_split(inter, 0.2)
    # two latest of (t, row): t=9 at rows 1, 2, 4 -> rows 2 and 4: (3,1) and (2,2)
    assert pairs_of(sp.test) == {(3, 1), (2, 2)}
    assert sp.report["rows_dropped"] == 0


def test_warm_temporal_hand_built():
    # threshold 10: rows after it are test candidates
    users = ["a", "a", "a", "a", "b", "b", "b", "c", "d", "d", "d"]
    items = [1, 2, 3, 4, 1, 2, 9, 1, 1, 2, 3]
    times = [1, 2, 3, 11, 1, 2, 12, 13, 1, 2, 3]
    inter = Interactions.from_arrays(users, items, None, times)
    sp = S.warm_temporal(inter, test_after=10, min_train=3, min_test=1)
    # a: 3 train rows, test item 4 unseen in train -> cold item; b: 2 train rows (< 3) and
    # item 9 unseen -> cold item first; c: no train rows -> cold user; d: no test rows
    assert len(sp.test) == 0 and len(sp.train) == 8
    r = sp.report
    assert (
        r["test_cold_item_rows"],
        r["test_cold_items"],
        r["test_cold_user_rows"],
        r["test_cold_users"],
    ) == (2, 2, 1, 1)
    assert r["rows_dropped"] == 3 and r["threshold"] == 10
    inter2 = Interactions.from_arrays(
        users + ["b", "a", "d"], items + [3, 5, 5], None, times + [14, 15, 4]
    )
    sp2 = S.warm_temporal(inter2, test_after=10, min_train=3, min_test=1)
    # b's item-3 row: item seen, but b has only 2 train rows -> few-train; a's item-5 row kept
    assert pairs_of(sp2.test) == {("a", 5)}
    assert sp2.report["test_few_train_rows"] == 1 and sp2.report["test_few_train_users"] == 1
    sp3 = S.warm_temporal(inter2, test_after=10, min_train=3, min_test=2)
    assert len(sp3.test) == 0 and sp3.report["test_few_test_users"] == 1


def test_warm_temporal_quantile_threshold():
    inter = Interactions.from_arrays(np.arange(10) % 2, np.arange(10), None, np.arange(100, 110))
    sp = S.warm_temporal(inter, quantile=0.8, min_train=0, min_test=1)
    # 0.8 quantile of 100..109, lower value: 107 -> rows at 108, 109 after it
    assert sp.report["threshold"] == 107 and sp.report["after_threshold_rows"] == 2


@pytest.fixture(scope="module")
def ml100k_like():
    """100,000 rows, 943 users (>= 20 rows each), 1682 items, unique pairs, shuffled rows."""
    rng = np.random.default_rng(100_000)
    pairs = set()
    for u in range(943):
        for j in range(20):
            pairs.add((u + 1, (u * 20 + j) % 1682 + 1))
    while len(pairs) < 100_000:
        batch = zip(
            rng.integers(1, 944, 20_000).tolist(),
            rng.integers(1, 1683, 20_000).tolist(),
            strict=True,
        )
        for p in batch:
            pairs.add(p)
            if len(pairs) == 100_000:
                break
    rows = sorted(pairs)
    perm = rng.permutation(len(rows))
    users = np.array([rows[p][0] for p in perm])
    items = np.array([rows[p][1] for p in perm])
    ratings = rng.integers(1, 6, len(rows))
    times = rng.integers(874_724_710, 893_286_638, len(rows))
    inter = Interactions.from_arrays(users, items, ratings, times, name="ml-100k")
    return inter, users.tolist(), items.tolist()


def _expected(test_rows: list[int], users: list[int], items: list[int]) -> tuple[set, set]:
    """(test pairs kept, base pairs) from a list of test row positions; cold items dropped."""
    test_set = set(test_rows)
    base = {(users[r], items[r]) for r in range(len(users)) if r not in test_set}
    base_items = {i for _, i in base}
    test = {(users[r], items[r]) for r in test_rows if items[r] in base_items}
    return test, base


@pytest.mark.parametrize("name,lo,hi", [("ua", 1, 10), ("ub", 11, 20)])
def test_allbut_matches_the_perl_script(ml100k_like, name, lo, hi):
    inter, users, items = ml100k_like
    seen: Counter = Counter()
    test_rows = []
    for r, u in enumerate(users):  # allbut.pl: the running count of the user in file order
        seen[u] += 1
        if lo <= seen[u] <= hi:
            test_rows.append(r)
    assert len(test_rows) == 9430
    exp_test, exp_base = _expected(test_rows, users, items)
    sp = S.grouplens(inter, name)
    assert pairs_of(sp.test) == exp_test
    assert pairs_of(sp.train) == exp_base
    assert sp.name == name


@pytest.mark.parametrize("fold", [1, 3, 5])
def test_u_folds_match_mku(ml100k_like, fold):
    inter, users, items = ml100k_like
    test_rows = list(range((fold - 1) * 20000, fold * 20000))  # head -i*20000 | tail -20000
    exp_test, exp_base = _expected(test_rows, users, items)
    sp = S.make_split(inter, f"u{fold}")
    assert len(sp.train) == 80000
    assert pairs_of(sp.train) == exp_base
    assert pairs_of(sp.test) == exp_test
    assert len(sp.test) + sp.report["rows_dropped"] == 20000


def test_u_folds_refuse_other_data(ml100k_like):
    inter, _, _ = ml100k_like
    short = inter.subset(np.arange(99_999))
    with pytest.raises(DataError, match="100,000 rows"):
        S.grouplens(short, "u1")
    with pytest.raises(DataError, match="ml-100k"):
        S.make_split(S.min_rating(inter, 4), "u2")
    with pytest.raises(ConfigError):
        S.grouplens(inter, "u6")
    assert len(S.grouplens(short, "ua").test) > 0  # ua / ub work on any data


# --- filters ---------------------------------------------------------------------------------


def naive_kcore(pairs: list[tuple], user_k: int, item_k: int) -> list[tuple]:
    rows = list(pairs)
    while True:
        uc = Counter(u for u, _ in rows)
        ic = Counter(i for _, i in rows)
        kept = [(u, i) for u, i in rows if uc[u] >= user_k and ic[i] >= item_k]
        if len(kept) == len(rows):
            return kept
        rows = kept


@settings(max_examples=80, deadline=None)
@given(interactions(), st.integers(1, 5), st.integers(1, 5))
def test_kcore_reaches_the_naive_fixed_point(inter, user_k, item_k):
    pairs = list(
        zip(
            inter.user_ids.ids[inter.users].tolist(),
            inter.item_ids.ids[inter.items].tolist(),
            strict=True,
        )
    )
    expect = naive_kcore(pairs, user_k, item_k)
    out = S.kcore(inter, user_k, item_k)
    got = list(
        zip(out.user_ids.ids[out.users].tolist(), out.item_ids.ids[out.items].tolist(), strict=True)
    )
    assert got == expect  # same rows, same (file) order
    if len(out):
        assert out.user_counts().min() >= user_k and out.item_counts().min() >= item_k
    rec = out.stats["filters"][-1]
    assert rec["filter"] == "kcore" and rec["rows_dropped"] == len(inter) - len(expect)
    assert rec["users_dropped"] == inter.n_users - len({u for u, _ in expect})


def test_kcore_needs_several_rounds():
    # user 3 has 1 row -> item 30 falls to 1 row -> user 2 falls to 1 row... a cascade
    inter = Interactions.from_arrays([1, 1, 2, 2, 3, 4, 4], [10, 20, 10, 30, 30, 10, 20])
    out = S.kcore(inter, 2)
    assert pairs_of(out) == {(1, 10), (1, 20), (4, 10), (4, 20)}
    assert out.stats["filters"][0]["rounds"] >= 3
    assert out.n_users == 2 and out.n_items == 2


def test_min_counts_is_one_pass():
    inter = Interactions.from_arrays([1, 1, 2, 2, 3, 4, 4], [10, 20, 10, 30, 30, 10, 20])
    out = S.min_counts(inter, min_user=2)
    assert pairs_of(out) == {(1, 10), (1, 20), (2, 10), (2, 30), (4, 10), (4, 20)}
    out = S.min_counts(inter, min_user=2, min_item=2)  # counts from the input, not re-counted
    assert pairs_of(out) == {(1, 10), (1, 20), (2, 10), (2, 30), (4, 10), (4, 20)}
    assert out.stats["filters"][-1] == {
        "filter": "min_counts",
        "min_user": 2,
        "min_item": 2,
        "rows_before": 7,
        "rows_dropped": 1,
        "users_dropped": 1,
        "items_dropped": 0,
    }


def test_min_rating_keeps_positives_and_chains_stats():
    inter = Interactions.from_arrays([1, 1, 2, 2, 3], [10, 20, 10, 30, 30], [4, 3.5, 5, 1, 2])
    out = S.min_rating(inter, 4)
    assert pairs_of(out) == {(1, 10), (2, 10)}
    assert out.n_users == 2 and out.n_items == 1  # compacted
    assert (
        out.stats["filters"][0]["rows_dropped"] == 3
        and out.stats["filters"][0]["users_dropped"] == 1
    )
    both = S.kcore(out, 1)
    assert [f["filter"] for f in both.stats["filters"]] == ["min_rating", "kcore"]
    with pytest.raises(DataError, match="implicit"):
        S.min_rating(Interactions.from_arrays([1], [2]), 4)


# --- spec strings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec,strategy,params",
    [
        ("random:0.2", "random", {"test": 0.2}),
        ("random", "random", {"test": 0.2}),
        ("user-random:0.8/0.1/0.1", "user-random", {"fractions": (0.8, 0.1, 0.1)}),
        ("user-random:0.75/0.25", "user-random", {"fractions": (0.75, 0.25)}),
        ("temporal:0.1", "temporal", {"test": 0.1}),
        ("last:3", "last", {"k": 3, "by": "timestamp"}),
        ("last:3:row", "last", {"k": 3, "by": "row"}),
        ("ua", "grouplens", {"name": "ua"}),
        ("U4", "grouplens", {"name": "u4"}),
        ("warm-temporal", "warm-temporal", {}),
        (
            "warm-temporal:quantile=0.9,min_train=5,min_test=1",
            "warm-temporal",
            {"quantile": 0.9, "min_train": 5, "min_test": 1},
        ),
        ("warm-temporal:test_after=893000000", "warm-temporal", {"test_after": 893000000}),
    ],
)
def test_parse_split(spec, strategy, params):
    ps = S.parse_split(spec)
    assert ps.strategy == strategy and ps.params == params


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "randm:0.2",
        "random:1.5",
        "random:0",
        "random:x",
        "user-random:0.8/0.3",
        "user-random:0.8",
        "temporal:-0.1",
        "last:0",
        "last:x",
        "last:3:rows",
        "u6",
        "u0",
        "warm-temporal:quantile=2",
        "warm-temporal:foo=1",
        "warm-temporal:min_train=a",
        "warm-temporal:quantile=0.9,test_after=5",
    ],
)
def test_bad_specs_name_the_spec_and_the_forms(spec):
    with pytest.raises(ConfigError) as err:
        S.parse_split(spec)
    msg = str(err.value)
    assert repr(spec) in msg and "accepted forms" in msg and "last:3:row" in msg


def test_make_split_names_and_valid(medium):
    sp = S.make_split(medium, "last:2:row")
    direct = S.last_k(medium, 2, by="row")
    assert sp.name == "last:2:row" and rows_of(sp.test) == rows_of(direct.test)
    v = S.make_split(medium, "last:1", random_state=3, valid=0.1)
    assert v.valid is not None and v.report["valid_strategy"] == "user-random:0.1"
    v = S.make_split(medium, "last:1", valid="last:1")
    assert v.report["valid_strategy"] == "last:1"
    with pytest.raises(ConfigError, match="validation"):
        S.make_split(medium, "last:1", valid="sideways")
    with pytest.raises(ConfigError, match="already has"):
        S.carve_validation(S.make_split(medium, "user-random:0.8/0.1/0.1", random_state=1))


def test_carve_from_bare_train(medium):
    sp = S.carve_validation(medium, "random", 0.25, random_state=0)
    assert len(sp.test) == 0
    assert len(sp.train) + len(sp.valid) + sp.report["rows_dropped"] == len(medium)
    assert (
        sp.report["valid_cold_user_rows"] + sp.report["valid_cold_item_rows"]
        == sp.report["rows_dropped"]
    )


# --- the real ml-100k (from the loader's cache; skipped when absent) -------------------------


@pytest.mark.realdata
def test_grouplens_sizes_on_real_ml100k():
    from lensrec import LensrecError
    from lensrec.data import movielens

    try:
        inter = movielens.load_movielens("ml-100k", download=False)
    except LensrecError as exc:
        pytest.skip(f"ml-100k not in the cache ({exc})")
    # published sizes of the GroupLens files: ua/ub.base 90,570 and .test 9,430; u*.base 80,000
    for name in ("ua", "ub"):
        sp = S.grouplens(inter, name)
        assert len(sp.train) == 90_570
        assert len(sp.test) + sp.report["rows_dropped"] == 9_430
        assert sp.test.n_users == 943 and sp.report["test_cold_users"] == 0
    sp = S.grouplens(inter, "u3")
    assert len(sp.train) == 80_000 and len(sp.test) + sp.report["rows_dropped"] == 20_000


# --- cross-validation families and cold rows ----------------------------------------------------
def test_cv_folds_partition_the_rows():
    from lensrec.split import make_folds
    from lensrec.testing import make_ratings

    data = make_ratings(n_users=40, n_items=30, density=0.4)
    folds = make_folds(data, "cv:4", random_state=1)
    assert len(folds) == 4
    seen = []
    for f in folds:
        test = f.test.to_frame()
        cold = f.report["test_cold_user_rows"] + f.report["test_cold_item_rows"]
        assert len(f.train) + len(test) + cold == len(data)
        seen += list(zip(test["user_id"].to_list(), test["item_id"].to_list(), strict=True))
    assert len(set(seen)) == len(seen)  # test parts are disjoint
    again = make_folds(data, "cv:4", random_state=1)
    assert [len(f.test) for f in again] == [len(f.test) for f in folds]


@pytest.mark.parametrize("bad", ["cv:1", "cv:x", "cv:", "kfold:5"])
def test_cv_bad_specs(bad):
    from lensrec.split import make_folds

    with pytest.raises(ConfigError):
        make_folds(_toy_for_cv(), bad)


def _toy_for_cv():
    from lensrec.testing import make_ratings

    return make_ratings(n_users=10, n_items=8)


def test_make_split_refuses_a_fold_family():
    with pytest.raises(ConfigError, match="cross-validation"):
        S.make_split(_toy_for_cv(), "cv:5")


def test_cold_test_rows_are_kept_with_unknown_sides_marked():
    from lensrec import Interactions

    # user 3 appears only in the last rows (cold user); item "z" only there too (cold item)
    data = Interactions.from_arrays(
        [1, 1, 2, 2, 3, 1],
        ["a", "b", "a", "b", "a", "z"],
        [4, 5, 3, 2, 1, 5],
        [1, 2, 3, 4, 10, 11],
    )
    sp = S.make_split(data, "temporal:0.34")
    cold = sp.cold_test
    assert len(cold) == sp.report["test_cold_user_rows"] + sp.report["test_cold_item_rows"] == 2
    pairs = sorted(zip(cold.users.tolist(), cold.items.tolist(), strict=True))
    a = int(sp.train.item_ids.index(["a"])[0])
    u1 = int(sp.train.user_ids.index([1])[0])
    assert pairs == sorted([(-1, a), (u1, -1)])
    assert sorted(cold.ratings.tolist()) == [1.0, 5.0]
