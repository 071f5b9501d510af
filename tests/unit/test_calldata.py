"""The keeper's direct claimMultiple calldata equals web3's ABI encoding byte for byte."""

from __future__ import annotations

from web3 import Web3

from clearing.hexcodec import to_checksum_address
from clearing.merkle import StandardMerkleTree
from keeper.artifacts import artifact
from keeper.calldata import claim_multiple

LEAF = ["uint64", "uint256", "address", "uint256", "uint256", "uint256"]
T = 1_796_177_880


def _tree(n: int) -> StandardMerkleTree:
    values = [
        (T, 7 * i + 1, (0xC0FFEE + i).to_bytes(20, "big"), 10**19 + i, 10**19 - i, 3 * i + 1)
        for i in range(n)
    ]
    # the keeper reads the tree back from its stored dump
    return StandardMerkleTree.load(StandardMerkleTree.of(values, LEAF).dump())


def test_claim_multiple_calldata_matches_web3() -> None:
    settlement = Web3().eth.contract(
        address=to_checksum_address(bytes(range(20))), abi=artifact("QEVSettlement")["abi"]
    )
    tree = _tree(300)
    for indices in ([5], [0, 1, 2], list(range(0, 300, 3)), list(range(300))):
        mp = tree.multi_proof(indices)
        leaves = [(v[1], v[2], v[3], v[4], v[5]) for v in mp.leaves]
        expected = settlement.functions.claimMultiple(
            T,
            [(r, to_checksum_address(c), f, b, p) for r, c, f, b, p in leaves],
            mp.proof,
            mp.proof_flags,
        )._encode_transaction_data()
        assert "0x" + claim_multiple(T, leaves, mp.proof, mp.proof_flags).hex() == expected
