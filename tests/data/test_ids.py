"""IdMap: round trips (ints, strings, UUID strings), missing-id policies, error messages.

String ids take one of two paths: numpy (small inputs, and strings polars cannot hold) or
polars (hash ``unique`` and joins). ``engine(...)`` forces one or the other by moving the size
threshold, so every property below is checked on both; the numpy path is the reference (it
is the original implementation: ``np.unique`` and ``np.searchsorted`` on unicode arrays).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lensrec.data import IdMap
from lensrec.data import ids as ids_module
from lensrec.errors import UnknownIdError
from lensrec.testing.strategies import int_ids, str_ids, uuid_ids

ENGINES = ("numpy", "polars")


@contextmanager
def engine(name: str) -> Iterator[None]:
    """Force the numpy or the polars path for string ids, whatever the input size."""
    old = ids_module._POLARS_MIN_SIZE
    ids_module._POLARS_MIN_SIZE = 1 if name == "polars" else 2**62
    try:
        yield
    finally:
        ids_module._POLARS_MIN_SIZE = old


def _uses_polars(m: IdMap) -> bool:
    return isinstance(m._table, pl.DataFrame)


def _utf8_ok(values: list[str]) -> bool:
    """No lone surrogates (polars strings are UTF-8; such ids stay on the numpy path)."""
    try:
        "".join(values).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


#: any text, NUL characters (embedded and trailing) and lone surrogates included
any_text = st.text(
    st.one_of(st.characters(), st.sampled_from(["\x00", "\ud800", "é", "a", "b"])),
    max_size=6,
)


#: (id strategy, engine) pairs; the engine only matters for strings
CASES = [
    pytest.param(int_ids, "numpy", id="ints"),
    *(
        pytest.param(strategy, name, id=f"{label}-{name}")
        for strategy, label in ((str_ids, "strings"), (uuid_ids, "uuids"))
        for name in ENGINES
    ),
]


@pytest.mark.parametrize(("ids", "name"), CASES)
def test_round_trip(ids, name):
    @settings(max_examples=60, deadline=None)
    @given(ids())
    def check(values):
        with engine(name):
            m = IdMap(values, kind="user")
            assert len(m) == len(values)
            assert m.ids.tolist() == np.sort(np.array(values)).tolist()  # numpy's order
            idx = m.index(values)
            assert idx.dtype == np.int32
            assert sorted(idx.tolist()) == list(range(len(values)))  # dense 0..n-1
            assert m.external(idx).tolist() == list(values)
            assert all(v in m for v in values[:5])
            if name == "polars" and isinstance(values[0], str) and _utf8_ok(values):
                assert _uses_polars(m)  # the fast path ran (surrogates take numpy's)

    check()


@pytest.mark.parametrize(("ids", "name"), CASES)
def test_build_matches_numpy_unique(ids, name):
    """Codes and ids as ``np.unique(values, return_inverse=True)`` gives them."""

    @settings(max_examples=40, deadline=None)
    @given(
        ids(max_size=30).flatmap(
            lambda vocab: st.lists(st.sampled_from(vocab), min_size=1, max_size=80)
        )
    )
    def check(values):
        arr = np.array(values)
        uniq, inverse = np.unique(arr, return_inverse=True)
        with engine(name):
            for given_as in (values, arr, arr.astype(object)):
                m, codes = IdMap.build(given_as, kind="item")
                assert m.ids.dtype == uniq.dtype
                assert np.array_equal(m.ids, uniq)
                assert codes.dtype == np.int32 and codes.flags.writeable
                assert codes.tolist() == inverse.reshape(-1).tolist()
                assert m.index(given_as).tolist() == codes.tolist()

    check()


@settings(max_examples=150, deadline=None)
@given(
    st.lists(any_text, min_size=1, max_size=40),
    st.lists(any_text, max_size=40),
)
def test_polars_path_equals_numpy_path_on_any_text(values, queries):
    """NULs, surrogates, empty strings: the polars path agrees with the numpy path."""
    out = {}
    for name in ENGINES:
        with engine(name):
            built, codes = IdMap.build(np.array(values))
            built_obj, codes_obj = IdMap.build(np.array(values, dtype=object))
            try:
                init = IdMap(np.array(values, dtype=object))
                init_ids = init.ids.tolist()
            except ValueError as exc:
                init_ids = str(exc)
            out[name] = (
                built.ids.tolist(),
                built.ids.dtype,
                codes.tolist(),
                built_obj.ids.tolist(),
                codes_obj.tolist(),
                init_ids,
                built.lookup(queries).tolist(),
                built.lookup(np.array(queries, dtype=object)).tolist(),
            )
    assert out["numpy"] == out["polars"]


@pytest.mark.parametrize("name", ENGINES)
def test_on_missing_policies(name):
    with engine(name):
        for known, unknown in (
            ([10, 20, 30], [99, 98]),
            (["b", "a", "c"], ["zz", "yy"]),
            ([str(uuid.UUID(int=k)) for k in (3, 1, 2)], [str(uuid.UUID(int=9)), "x"]),
        ):
            m = IdMap(known, kind="item")
            first, last = sorted(known)[0], sorted(known)[-1]
            query = [last, unknown[0], first]
            assert m.index(query, on_missing="mark").tolist() == [2, -1, 0]
            assert m.index(query, on_missing="drop").tolist() == [2, 0]
            with pytest.raises(UnknownIdError) as info:
                m.index([last, *unknown], on_missing="raise")
            assert repr(unknown[0]) in str(info.value) and repr(unknown[1]) in str(info.value)
            assert info.value.count == 2 and info.value.kind == "item"
            assert info.value.ids == unknown
            with pytest.raises(ValueError):
                m.index(unknown, on_missing="ignore")


@pytest.mark.parametrize("name", ENGINES)
def test_error_quotes_at_most_five_ids_and_counts_the_rest(name):
    with engine(name):
        m = IdMap(["a"], kind="user")
        with pytest.raises(UnknownIdError) as info:
            m.index(["a"] + [f"x{k}" for k in range(8)])
    msg = str(info.value)
    assert "'x0'" in msg and "'x4'" in msg and "'x5'" not in msg
    assert "3 more" in msg
    assert info.value.ids == ["x0", "x1", "x2", "x3", "x4"]  # in query order


def test_large_uuid_map_uses_polars_and_agrees_with_numpy(rng):
    """Above the default threshold, without forcing: the fast path on realistic UUIDs."""
    vocab = np.array([str(uuid.UUID(int=int(k))) for k in rng.integers(0, 2**62, 3000)])
    vocab = np.unique(vocab)
    values = vocab[rng.integers(0, vocab.size, 20_000)]
    m, codes = IdMap.build(values, kind="user")
    assert _uses_polars(m)
    uniq, inverse = np.unique(values, return_inverse=True)
    assert np.array_equal(m.ids, uniq) and np.array_equal(codes, inverse)
    assert np.array_equal(m.external(codes), values)
    queries = np.concatenate([values[:5000], ["not-a-uuid"] * 10, [vocab[0].upper()]])
    expected = np.searchsorted(uniq, queries)
    expected = np.where(uniq[np.minimum(expected, uniq.size - 1)] == queries, expected, -1)
    assert m.index(queries, on_missing="mark").tolist() == expected.tolist()
    assert m == IdMap(rng.permutation(vocab[np.isin(vocab, values)]))
    from_series, series_codes = IdMap.build(pl.Series(values))
    assert from_series == m and np.array_equal(series_codes, codes)


@pytest.mark.parametrize("name", ENGINES)
def test_nul_characters_follow_numpy(name):
    """numpy unicode arrays drop trailing NULs ("a\\x00" is "a") and keep embedded ones."""
    with engine(name):
        m, codes = IdMap.build(np.array(["a\x00", "a", "a\x00b", "b"], dtype=object))
        assert m.ids.tolist() == ["a", "a\x00b", "b"]
        assert codes.tolist() == [0, 0, 1, 2]
        assert m.index(["a\x00\x00", "a\x00b"]).tolist() == [0, 1]
        with pytest.raises(ValueError, match="repeated: 'a'"):
            IdMap(["a", "a\x00"])


@pytest.mark.parametrize("name", ENGINES)
def test_non_string_objects_are_made_str(name):
    """UUID objects, ints and None in object arrays become ``str(v)``, as numpy would."""
    with engine(name):
        u = [uuid.UUID(int=k) for k in (5, 1, 3)]
        m, codes = IdMap.build(np.array(u, dtype=object))
        assert m.ids.tolist() == sorted(str(x) for x in u) and codes.tolist() == [2, 0, 1]
        assert m.index(np.array(u[:2], dtype=object)).tolist() == [2, 0]
        mixed, _ = IdMap.build(np.array(["a", 1, None, True], dtype=object))
        assert mixed.ids.tolist() == ["1", "None", "True", "a"]
        with_none, codes = IdMap.build(np.array(["b", None, "a"], dtype=object))
        assert with_none.ids.tolist() == ["None", "a", "b"] and codes.tolist() == [2, 0, 1]
        assert with_none.lookup(["a", None]).tolist() == [1, 0]
        assert mixed.lookup(np.array([1, 7])).tolist() == [0, -1]  # ints queried as "1", "7"


@pytest.mark.parametrize("name", ENGINES)
def test_non_ascii_and_surrogates_keep_code_point_order(name):
    values = ["é", "z", "\U0001f600", "\uffff", "", "a\ud800", "a"]
    with engine(name):
        m = IdMap(values)
        assert m.ids.tolist() == ["", "a", "a\ud800", "z", "é", "\uffff", "\U0001f600"]
        assert m.index(values).tolist() == [4, 3, 6, 5, 0, 2, 1]
        assert m.lookup(["\ud800", "a\ud800"]).tolist() == [-1, 2]


def test_string_queries_on_integer_map():
    m = IdMap([1, 2, 3])
    assert m.lookup(["2", "nope"]).tolist() == [1, -1]  # CLI input arrives as text
    assert m.lookup(np.array(["3"] * 5000)).tolist() == [2] * 5000


@pytest.mark.parametrize("name", ENGINES)
def test_duplicates_rejected_and_arrays_read_only(name):
    with engine(name):
        with pytest.raises(ValueError, match="unique"):
            IdMap([1, 2, 1])
        with pytest.raises(ValueError, match=r"repeated: 'b', 'c'$"):
            IdMap(["c", "b", "a", "b", "c"])
        for m in (IdMap([3, 1, 2]), IdMap(["c", "a", "b"]), IdMap.build(["b", "a", "a"])[0]):
            with pytest.raises(ValueError):
                m.ids[0] = m.ids[1]
            with pytest.raises(IndexError):
                m.external([3])
        assert IdMap([3, 1, 2]).ids.tolist() == [1, 2, 3]


@pytest.mark.parametrize("name", ENGINES)
def test_empty_inputs(name):
    with engine(name):
        assert IdMap([]).is_integer and len(IdMap([])) == 0
        m, codes = IdMap.build(np.array([], dtype="<U3"))
        assert len(m) == 0 and m.ids.dtype == np.dtype("<U3") and codes.size == 0
        assert IdMap(["a"]).lookup([]).tolist() == []
        assert m.lookup(["a", "b"]).tolist() == [-1, -1]


def test_maps_from_either_path_are_equal():
    values = [str(uuid.UUID(int=k)) for k in range(50)]
    with engine("numpy"):
        a = IdMap(values)
    with engine("polars"):
        b = IdMap(values[::-1])
        c, _ = IdMap.build(values * 2)
    assert a == b == c and hash(a) == hash(b) == hash(c)
    assert not _uses_polars(a) and _uses_polars(b)


def test_subset_remaps_and_drops():
    m = IdMap(["a", "b", "c", "d"])
    sub, remap = m.subset([3, 1, 1])
    assert sub.to_list() == ["b", "d"]
    assert remap.tolist() == [-1, 0, -1, 1]
    with engine("polars"):
        assert sub.index(["d", "b", "a"], on_missing="mark").tolist() == [1, 0, -1]
