"""ABI encoding equals eth_abi; decoding is strict."""

from __future__ import annotations

import eth_abi
import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearing import abi
from clearing.errors import AbiDecodeError, AbiEncodeError
from clearing.model import ALLOCATION_LEAF_TYPES, BID_BOOK_LEAF_TYPES, PLAINTEXT_TYPES

u64 = st.integers(0, 2**64 - 1)
u256 = st.integers(0, 2**256 - 1)
addr = st.binary(min_size=20, max_size=20)
b32 = st.binary(min_size=32, max_size=32)


def _eth(types, values):
    conv = [("0x" + v.hex()) if t == "address" else v for t, v in zip(types, values, strict=True)]
    return eth_abi.encode(list(types), conv)


@given(st.tuples(u64, u256, addr, u256, u256, u256))
def test_allocation_leaf_matches_eth_abi(values):
    assert abi.encode(ALLOCATION_LEAF_TYPES, values) == _eth(ALLOCATION_LEAF_TYPES, values)
    assert abi.static_encoder(ALLOCATION_LEAF_TYPES)(values) == _eth(ALLOCATION_LEAF_TYPES, values)
    assert abi.decode(ALLOCATION_LEAF_TYPES, _eth(ALLOCATION_LEAF_TYPES, values)) == values


@given(st.tuples(u64, u256, addr, b32))
def test_bid_book_leaf_matches_eth_abi(values):
    assert abi.static_encoder(BID_BOOK_LEAF_TYPES)(values) == _eth(BID_BOOK_LEAF_TYPES, values)


@given(st.tuples(u64, u256, u256, u256, u256, st.binary(max_size=200)))
def test_plaintext_with_dynamic_bytes_matches_eth_abi(values):
    encoded = abi.encode(PLAINTEXT_TYPES, values)
    assert encoded == eth_abi.encode(list(PLAINTEXT_TYPES), list(values))
    assert abi.decode(PLAINTEXT_TYPES, encoded) == values


@given(
    st.integers(-(2**127), 2**127 - 1),
    st.booleans(),
    st.binary(min_size=4, max_size=4),
    st.integers(0, 255),
    st.text(max_size=40),
)
def test_other_static_types_and_string(i, b, b4, u8, s):
    types = ("int128", "bool", "bytes4", "uint8", "string")
    values = (i, b, b4, u8, s)
    assert abi.encode(types, values) == eth_abi.encode(list(types), list(values))
    assert abi.decode(types, abi.encode(types, values)) == values
    static = types[:4]
    assert abi.static_encoder(static)(values[:4]) == eth_abi.encode(list(static), list(values[:4]))


@pytest.mark.parametrize(
    ("types", "value"),
    [
        (("uint64",), 2**64),
        (("uint256",), -1),
        (("uint256",), 2**256),
        (("address",), b"\x01" * 19),
        (("bytes32",), b"\x01" * 31),
        (("bool",), 1),
        (("int8",), 128),
        (("uint8",), True),
    ],
)
def test_encode_refuses_values_that_do_not_fit(types, value):
    with pytest.raises(AbiEncodeError):
        abi.encode(types, (value,))
    with pytest.raises(AbiEncodeError):
        abi.static_encoder(types)((value,))


def test_unsupported_types_are_refused():
    for name in ("uint7", "uint264", "bytes33", "bytes0", "tuple", "uint"):
        with pytest.raises(AbiEncodeError):
            abi.parse_type(name)


_GOOD = abi.encode(PLAINTEXT_TYPES, (1, 2, 3, 4, 5, b"\xaa" * 65))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_GOOD[:-1], id="truncated"),
        pytest.param(_GOOD + bytes(32), id="trailing"),
        pytest.param(b"\x01" + _GOOD[1:], id="dirty-uint64"),
        pytest.param(_GOOD[:160] + (224).to_bytes(32, "big") + _GOOD[192:], id="offset"),
        pytest.param(_GOOD[:-1] + b"\x01", id="padding"),
        pytest.param(_GOOD[:192] + (1000).to_bytes(32, "big") + _GOOD[224:], id="long-length"),
    ],
)
def test_decode_refuses_non_canonical_plaintext(data):
    assert abi.decode(PLAINTEXT_TYPES, _GOOD)[5] == b"\xaa" * 65
    with pytest.raises(AbiDecodeError):
        abi.decode(PLAINTEXT_TYPES, data)


@pytest.mark.parametrize(
    ("types", "data"),
    [
        (("address",), b"\x01" + bytes(31)),
        (("bool",), (2).to_bytes(32, "big")),
        (("bytes4",), b"abcd\x01" + bytes(27)),
        (("int8",), (200).to_bytes(32, "big")),
        (("string",), abi.encode(("bytes",), (b"\xff\xfe",))),
    ],
)
def test_decode_refuses_dirty_words(types, data):
    with pytest.raises(AbiDecodeError):
        abi.decode(types, data)
