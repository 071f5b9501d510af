"""Signed intake receipts (DESIGN 4)."""

from __future__ import annotations

from dataclasses import dataclass

from clearing import abi
from clearing.hashing import keccak256
from clearing.model import RECEIPT_TYPES
from clearing.signing import Signer, eip191_digest, recover_address

_ENCODE_RECEIPT = abi.static_encoder(tuple(RECEIPT_TYPES))


@dataclass(frozen=True, slots=True)
class Receipt:
    """The service's acknowledgement that a sealed bid was durably stored before close."""

    auction_id: int
    redemption_id: int
    controller: bytes
    ciphertext_hash: bytes
    sequence: int
    received_at: int
    service_signature: bytes = b""

    def digest(self) -> bytes:
        """``keccak256(abi.encode(uint64, uint256, address, bytes32, uint64, uint64))``."""
        return keccak256(
            _ENCODE_RECEIPT(
                (
                    self.auction_id,
                    self.redemption_id,
                    self.controller,
                    self.ciphertext_hash,
                    self.sequence,
                    self.received_at,
                )
            )
        )

    def signed_by(self, signer: Signer) -> Receipt:
        """A copy carrying ``signer``'s EIP-191 signature over ``digest()``."""
        return Receipt(
            self.auction_id,
            self.redemption_id,
            self.controller,
            self.ciphertext_hash,
            self.sequence,
            self.received_at,
            signer.sign_eip191(self.digest()),
        )

    def signer_address(self) -> bytes:
        """Recover the address that signed this receipt (raises ``SignatureError``)."""
        return recover_address(eip191_digest(self.digest()), self.service_signature)


__all__ = ["Receipt"]
