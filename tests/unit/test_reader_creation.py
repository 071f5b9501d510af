"""The readers' creation calldata, encoded directly, is eth_abi's encoding byte for byte."""

from __future__ import annotations

import pytest
from eth_abi import encode
from hypothesis import given
from hypothesis import strategies as st

from keeper.artifacts import artifact
from keeper.readers import _creation

addresses = st.binary(min_size=20, max_size=20)
u256 = st.integers(0, 2**256 - 1)


@given(
    addresses,
    addresses,
    st.integers(0, 2**64 - 1),
    st.booleans(),
    u256,
    st.lists(u256, max_size=300),
)
def test_request_reader_arguments_match_eth_abi(
    vault: bytes, nonces: bytes, auction: int, plain: bool, reserve: int, ids: list[int]
) -> None:
    types = ("address", "address", "uint64", "bool", "uint256")
    data = _creation("RequestReader", types, (vault, nonces, auction, plain, reserve), ids)
    expected = encode(
        [*types, "uint256[]"],
        ["0x" + vault.hex(), "0x" + nonces.hex(), auction, plain, reserve, ids],
    )
    assert data == str(artifact("RequestReader")["bytecode"]) + expected.hex()


@given(addresses, u256, u256)
def test_queue_reader_arguments_match_eth_abi(vault: bytes, start: int, limit: int) -> None:
    types = ("address", "uint256", "uint256", "uint256")
    data = _creation("QueueReader", types, (vault, start, limit, 7))
    expected = encode(list(types), ["0x" + vault.hex(), start, limit, 7])
    assert data == str(artifact("QueueReader")["bytecode"]) + expected.hex()


@pytest.mark.parametrize("bad", [-1, 2**256])
def test_an_id_outside_uint256_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="uint256"):
        _creation("ClaimReader", ("address", "uint64", "uint256"), (bytes(20), 1, 2), [1, bad])
