"""Signed intake receipts (DESIGN 4, rev 2: a receipt names its kind)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum

from clearing import abi
from clearing.hashing import keccak256
from clearing.model import RECEIPT_TYPES
from clearing.signing import Signer, eip191_digest, recover_address

_ENCODE_RECEIPT = abi.static_encoder(tuple(RECEIPT_TYPES))


class ReceiptKind(IntEnum):
    """What a receipt acknowledges: a bid (new, replaced or identical) or a cancel."""

    BID = 0
    CANCEL = 1


@dataclass(frozen=True, slots=True)
class Receipt:
    """The service's acknowledgement that an operation was durably stored before close.

    A bid receipt (kind 0) names the stored envelope; a cancel receipt (kind 1) names the
    cancelled envelope's hash and carries the cancel's own sequence and time, so the two can
    never be mistaken for one another.
    """

    auction_id: int
    redemption_id: int
    controller: bytes
    ciphertext_hash: bytes
    sequence: int
    received_at: int
    kind: ReceiptKind = ReceiptKind.BID
    service_signature: bytes = b""

    def digest(self) -> bytes:
        """``keccak256(abi.encode(uint64, uint256, address, bytes32, uint64, uint64, uint8))``."""
        return keccak256(
            _ENCODE_RECEIPT(
                (
                    self.auction_id,
                    self.redemption_id,
                    self.controller,
                    self.ciphertext_hash,
                    self.sequence,
                    self.received_at,
                    int(self.kind),
                )
            )
        )

    def signed_by(self, signer: Signer) -> Receipt:
        """A copy carrying ``signer``'s EIP-191 signature over ``digest()``."""
        return replace(self, service_signature=signer.sign_eip191(self.digest()))

    def signer_address(self) -> bytes:
        """Recover the address that signed this receipt (raises ``SignatureError``)."""
        return recover_address(eip191_digest(self.digest()), self.service_signature)


__all__ = ["Receipt", "ReceiptKind"]
