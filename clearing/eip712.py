"""EIP-712 hashing of the DESIGN 3 structs: ``Bid``, ``SealedBid`` and ``CancelBid``."""

from __future__ import annotations

from dataclasses import dataclass, field

from clearing.errors import AbiEncodeError
from clearing.hashing import keccak256

DOMAIN_TYPE = b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
BID_TYPE = (
    b"Bid(uint64 auctionId,uint256 redemptionId,uint256 redemptionShares,"
    b"uint256 basisPoint,uint256 nonce)"
)
SEALED_BID_TYPE = b"SealedBid(uint64 auctionId,uint256 redemptionId,bytes32 ciphertextHash)"
CANCEL_BID_TYPE = b"CancelBid(uint64 auctionId,uint256 redemptionId,bytes32 ciphertextHash)"

DOMAIN_TYPEHASH = keccak256(DOMAIN_TYPE)
BID_TYPEHASH = keccak256(BID_TYPE)
SEALED_BID_TYPEHASH = keccak256(SEALED_BID_TYPE)
CANCEL_BID_TYPEHASH = keccak256(CANCEL_BID_TYPE)

_U64 = 1 << 64
_U256 = 1 << 256


def _u(value: int, bound: int = _U256) -> bytes:
    if type(value) is not int or not 0 <= value < bound:
        raise AbiEncodeError(f"{value!r} is out of range")
    return value.to_bytes(32, "big")


@dataclass(frozen=True, slots=True)
class Eip712Domain:
    """An EIP-712 domain ``(name, version, chainId, verifyingContract)`` and its separator."""

    name: str
    version: str
    chain_id: int
    verifying_contract: bytes
    separator: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.verifying_contract) != 20:
            raise AbiEncodeError("verifying_contract must be a 20-byte address")
        sep = keccak256(
            DOMAIN_TYPEHASH
            + keccak256(self.name.encode())
            + keccak256(self.version.encode())
            + _u(self.chain_id)
            + bytes(12)
            + self.verifying_contract
        )
        object.__setattr__(self, "separator", sep)

    def digest(self, struct_hash: bytes) -> bytes:
        """``keccak256(0x1901 || domainSeparator || structHash)``."""
        return keccak256(b"\x19\x01" + self.separator + struct_hash)


def bid_struct_hash(
    auction_id: int, redemption_id: int, redemption_shares: int, basis_point: int, nonce: int
) -> bytes:
    """``hashStruct(Bid)``."""
    return keccak256(
        BID_TYPEHASH
        + _u(auction_id, _U64)
        + _u(redemption_id)
        + _u(redemption_shares)
        + _u(basis_point)
        + _u(nonce)
    )


def _envelope_struct_hash(
    typehash: bytes, auction_id: int, redemption_id: int, ciphertext_hash: bytes
) -> bytes:
    if len(ciphertext_hash) != 32:
        raise AbiEncodeError("ciphertext_hash must be 32 bytes")
    return keccak256(typehash + _u(auction_id, _U64) + _u(redemption_id) + ciphertext_hash)


def sealed_bid_struct_hash(auction_id: int, redemption_id: int, ciphertext_hash: bytes) -> bytes:
    """``hashStruct(SealedBid)``."""
    return _envelope_struct_hash(SEALED_BID_TYPEHASH, auction_id, redemption_id, ciphertext_hash)


def cancel_bid_struct_hash(auction_id: int, redemption_id: int, ciphertext_hash: bytes) -> bytes:
    """``hashStruct(CancelBid)``."""
    return _envelope_struct_hash(CANCEL_BID_TYPEHASH, auction_id, redemption_id, ciphertext_hash)


__all__ = [
    "BID_TYPE",
    "BID_TYPEHASH",
    "CANCEL_BID_TYPE",
    "SEALED_BID_TYPE",
    "Eip712Domain",
    "bid_struct_hash",
    "cancel_bid_struct_hash",
    "sealed_bid_struct_hash",
]
