"""Wire encodings: EIP-55 against eth_utils, strict hex, canonical uint strings."""

from __future__ import annotations

import pytest
from eth_utils import to_checksum_address as reference_checksum
from hypothesis import given
from hypothesis import strategies as st

from clearing.errors import AddressError, HexError, MalformedError
from clearing.hexcodec import from_hex, parse_address, parse_uint, to_checksum_address, to_hex


@given(st.binary(min_size=20, max_size=20))
def test_checksum_address_matches_eth_utils(address: bytes) -> None:
    assert to_checksum_address(address) == reference_checksum(address)
    assert parse_address(to_checksum_address(address)) == address


@pytest.mark.parametrize(
    ("address", "expected"),
    [  # EIP-55's own examples
        ("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
        ("fb6916095ca1df60bb79ce92ce3ea74c37c5d359", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"),
        ("dbf03b407c01e7cd3cbea99509d93f8dddc8c6fb", "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB"),
        ("d1220a0cf47c7b9be7a2e6ba89f429762e7b9adb", "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb"),
        ("0000000000000000000000000000000000000000", "0x0000000000000000000000000000000000000000"),
    ],
)
def test_checksum_address_eip55_vectors(address: str, expected: str) -> None:
    assert to_checksum_address(bytes.fromhex(address)) == expected


def test_checksum_address_refuses_wrong_length() -> None:
    with pytest.raises(AddressError):
        to_checksum_address(b"\x01" * 19)


@given(st.binary(max_size=64))
def test_hex_round_trip_any_case(data: bytes) -> None:
    assert from_hex(to_hex(data)) == data
    assert from_hex("0x" + data.hex().upper()) == data


@pytest.mark.parametrize(
    "text", ["", "ab", "0x0", "0xabc", "0xzz", "0xab cd", "0x ab", "0xab\n", "0x\u0661\u0662"]
)
def test_from_hex_refuses_anything_but_even_length_hex(text: str) -> None:
    with pytest.raises(HexError):
        from_hex(text)


def test_from_hex_checks_length() -> None:
    assert from_hex("0x0102", 2) == b"\x01\x02"
    with pytest.raises(HexError):
        from_hex("0x0102", 3)


@pytest.mark.parametrize("text", ["", "-1", "01", "1.0", "+1", " 1", "\u0661", str(2**256)])
def test_parse_uint_refuses_non_canonical(text: str) -> None:
    with pytest.raises(MalformedError):
        parse_uint(text)


def test_parse_uint_bounds() -> None:
    assert parse_uint("0") == 0
    assert parse_uint(str(2**256 - 1)) == 2**256 - 1
    assert parse_uint(str(2**64 - 1), bits=64) == 2**64 - 1
