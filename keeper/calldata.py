"""Calldata of the keeper's bulk calls, encoded directly from the ABI layout.

web3's generic encoder takes ~150 ms for one ``claimMultiple`` of 200 leaves (validation and
normalisation of every field): most of a month's claim time (benchmarks/month). The layout
here is the Solidity ABI's for ``claimMultiple(uint64,(uint256,address,uint256,uint256,
uint256)[],bytes32[],bool[])``: the static head (auction id and three offsets), then each
array as its length and its elements inline (the tuple is static). A test checks the bytes
against web3's encoding.
"""

from __future__ import annotations

from collections.abc import Sequence

from clearing.abi import static_encoder
from clearing.hashing import keccak256

CLAIM_MULTIPLE = keccak256(
    b"claimMultiple(uint64,(uint256,address,uint256,uint256,uint256)[],bytes32[],bool[])"
)[:4]
_ALLOCATION = static_encoder(("uint256", "address", "uint256", "uint256", "uint256"))
_WORD = 32


def _word(value: int) -> bytes:
    return value.to_bytes(_WORD, "big")


def claim_multiple(
    auction_id: int,
    allocations: Sequence[tuple[int, bytes, int, int, int]],
    proof: Sequence[bytes],
    proof_flags: Sequence[bool],
) -> bytes:
    """``claimMultiple(T, allocations, proof, proofFlags)`` calldata; each allocation is
    ``(redemption_id, controller (20 bytes), shares_filled, shares_burnt, payout)``."""
    if auction_id >= 1 << 64:
        raise ValueError(f"auction id {auction_id} does not fit uint64")
    if any(len(p) != _WORD for p in proof):
        raise ValueError("every proof node must be 32 bytes")
    at_allocations = 4 * _WORD
    at_proof = at_allocations + _WORD + 5 * _WORD * len(allocations)
    at_flags = at_proof + _WORD + _WORD * len(proof)
    parts = [
        CLAIM_MULTIPLE,
        _word(auction_id),
        _word(at_allocations),
        _word(at_proof),
        _word(at_flags),
        _word(len(allocations)),
    ]
    parts.extend(_ALLOCATION(a) for a in allocations)
    parts.append(_word(len(proof)))
    parts.extend(bytes(p) for p in proof)
    parts.append(_word(len(proof_flags)))
    parts.extend(_word(1 if f else 0) for f in proof_flags)
    return b"".join(parts)


__all__ = ["CLAIM_MULTIPLE", "claim_multiple"]
