"""The packed list format and id tables, against bytes written out by hand."""

from __future__ import annotations

import struct
import uuid

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lensrec.errors import ModelFormatError
from lensrec.serving.encoding import (
    MalformedIdError,
    id_kind,
    index_width,
    pack_ids,
    pack_list,
    pack_lists,
    parse_id,
    unpack_ids,
    unpack_list,
    user_key,
)


def test_known_bytes_uint16_without_scores():
    # version 1, flags 0, count 3, then 5, 258, 65535 as little-endian uint16
    blob = pack_list(np.array([5, 258, 65535]), None, 2)
    assert blob == b"\x01\x00\x03\x00" + b"\x05\x00" + b"\x02\x01" + b"\xff\xff"


def test_known_bytes_uint32_with_scores():
    blob = pack_list(np.array([70000]), np.array([1.5]), 4)
    # flags: bit 0 scores, bit 1 wide; 70000 = 0x00011170; float16 1.5 = 0x3e00
    assert blob == b"\x01\x03\x01\x00" + b"\x70\x11\x01\x00" + b"\x00\x3e"


def test_width_follows_the_catalogue():
    assert index_width(1) == 2 and index_width(65_536) == 2 and index_width(65_537) == 4


def test_top100_is_204_bytes():
    assert len(pack_list(np.arange(100), None, 2)) == 204
    assert len(pack_list(np.arange(100), np.zeros(100), 2)) == 404


def test_padded_rows_keep_only_their_items():
    ids = np.array([[3, 1, -1, -1], [-1, -1, -1, -1], [0, 2, 4, 6]], dtype=np.int32)
    sc = np.array([[2.0, 1.0, -np.inf, -np.inf], [-np.inf] * 4, [4, 3, 2, 1]], dtype=np.float32)
    blobs = pack_lists(ids, sc, 2)
    assert [struct.unpack_from("<H", b, 2)[0] for b in blobs] == [2, 0, 4]
    got, scores = unpack_list(blobs[0])
    assert got.tolist() == [3, 1] and scores.tolist() == [2.0, 1.0]
    assert unpack_list(blobs[1])[0].size == 0
    assert blobs[2] == pack_list(ids[2], sc[2], 2)


@settings(max_examples=60, deadline=None)
@given(
    n_items=st.sampled_from([3, 65_536, 65_537, 4_000_000]),
    n=st.integers(0, 300),
    with_scores=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trip(n_items, n, with_scores, seed):
    gen = np.random.default_rng(seed)
    ids = gen.integers(0, n_items, n).astype(np.int32)
    scores = gen.normal(size=n).astype(np.float32) if with_scores else None
    width = index_width(n_items)
    got, got_scores = unpack_list(pack_list(ids, scores, width))
    assert got.dtype == np.int32 and np.array_equal(got, ids)
    if with_scores:
        np.testing.assert_allclose(got_scores, scores, rtol=1e-3, atol=1e-4)  # float16
    else:
        assert got_scores is None


@pytest.mark.parametrize(
    "blob, message",
    [
        (b"\x01\x00", "shorter than its header"),
        (b"\x02\x00\x00\x00", "format version 2"),
        (b"\x01\x00\x02\x00\x01\x00", "should be 8 bytes, got 6"),
        (b"\x01\x01\x01\x00\x01\x00", "should be 8 bytes, got 6"),  # scores flag, none there
    ],
)
def test_corrupt_lists_are_refused(blob, message):
    with pytest.raises(ModelFormatError, match=message):
        unpack_list(blob)


def test_id_tables():
    ints = np.array([-3, 7, 2**40])
    assert id_kind(ints) == "int"
    assert pack_ids(ints, "int") == struct.pack("<3q", -3, 7, 2**40)
    assert unpack_ids(pack_ids(ints, "int"), "int").tolist() == ints.tolist()
    uu = np.array([str(uuid.UUID(int=j * 977)) for j in range(1, 4)])
    assert id_kind(uu) == "uuid"
    assert pack_ids(uu, "uuid") == b"".join(uuid.UUID(v).bytes for v in uu)
    assert unpack_ids(pack_ids(uu, "uuid"), "uuid").tolist() == uu.tolist()
    # upper case or missing hyphens: not the canonical form, kept as strings
    assert id_kind(np.array([uu[0].upper()])) == "str"
    words = np.array(["a", "é", "x y"])
    assert id_kind(words) == "str"
    assert unpack_ids(pack_ids(words, "str"), "str").tolist() == ["a", "é", "x y"]


def test_user_keys_and_parsing():
    u = "0000000a-0000-0000-0000-000000000001"
    assert user_key(42, "int") == b"42" and user_key(u, "uuid") == uuid.UUID(u).bytes
    assert user_key("émile", "str") == "émile".encode()
    assert parse_id("42", "int") == 42 and parse_id(-7, "int") == -7
    assert parse_id(u.upper(), "uuid") == u
    for bad, kind in [("4x", "int"), ("1e3", "int"), (2**63, "int"), ("9" * 20, "int"), (True, "int"),
                      ("not-a-uuid", "uuid"), (5, "uuid"), ("", "str"), ("x" * 513, "str")]:  # fmt: skip
        with pytest.raises(MalformedIdError, match="malformed"):
            parse_id(bad, kind)
