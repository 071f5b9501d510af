"""Rule 0 of DESIGN 5: open each sealed envelope and decide whether its bid may clear.

Pure: the auction's private key, the EIP-712 domain and a snapshot of the redemption
requests in; a ``ValidBid`` or an ``Exclusion`` with a stable reason per envelope out.
Checks run in the order DESIGN 5 lists them, so the first failing check names the reason
and an independent verifier reports the same one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from clearing.eip712 import Eip712Domain
from clearing.engine import ValidBid
from clearing.errors import MalformedPlaintextError, SealingError, SignatureError
from clearing.model import MAX_BASIS_POINT, MIN_BASIS_POINT, Envelope, SignedBid
from clearing.sealing import Opener, bid_info
from clearing.signing import recover_address


class ExclusionReason(StrEnum):
    """Why a live envelope does not take part in clearing (published with the result)."""

    UNDECRYPTABLE = "undecryptable"
    MALFORMED_PLAINTEXT = "malformed_plaintext"
    ENVELOPE_MISMATCH = "envelope_mismatch"
    BAD_SIGNATURE = "bad_signature"
    SIGNER_NOT_CONTROLLER = "signer_not_controller"
    BASIS_POINT_OUT_OF_RANGE = "basis_point_out_of_range"
    ZERO_SHARES = "zero_shares"
    STALE_NONCE = "stale_nonce"
    NOT_MATURED = "not_matured"
    NO_PENDING_SHARES = "no_pending_shares"
    NOT_CONTROLLER = "not_controller"


@dataclass(frozen=True, slots=True)
class RequestSnapshot:
    """A redemption request as read at the snapshot block, with the auction's nonce for it."""

    redemption_id: int
    controller: bytes
    pending_shares: int
    redemption_timestamp: int
    nonce: int


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A live envelope that did not clear, and why."""

    redemption_id: int
    controller: bytes
    ciphertext_hash: bytes
    reason: ExclusionReason
    detail: str


@dataclass(frozen=True, slots=True)
class AuctionContext:
    """What validation needs to know about the auction being closed."""

    auction_id: int
    domain: Eip712Domain
    private_key: bytes

    def opener(self) -> Opener:
        """An HPKE opener bound to this auction's key and ``info``."""
        info = bid_info(self.domain.chain_id, self.domain.verifying_contract, self.auction_id)
        return Opener(self.private_key, info)


def validate_envelope(  # noqa: PLR0911 - one return per rule-0 check, in DESIGN order
    envelope: Envelope,
    ctx: AuctionContext,
    opener: Opener,
    requests: Mapping[int, RequestSnapshot],
) -> ValidBid | Exclusion:
    """Apply rule 0 to one envelope."""

    def exclude(reason: ExclusionReason, detail: str) -> Exclusion:
        return Exclusion(
            envelope.redemption_id, envelope.controller, envelope.ciphertext_hash, reason, detail
        )

    try:
        plaintext = opener.open(envelope.ciphertext)
    except SealingError as e:
        return exclude(ExclusionReason.UNDECRYPTABLE, str(e))
    try:
        signed = SignedBid.decode(plaintext)
    except MalformedPlaintextError as e:
        return exclude(ExclusionReason.MALFORMED_PLAINTEXT, str(e))
    bid = signed.bid
    if bid.auction_id != ctx.auction_id or envelope.auction_id != ctx.auction_id:
        return exclude(ExclusionReason.ENVELOPE_MISMATCH, "auction id differs from the envelope")
    if bid.redemption_id != envelope.redemption_id:
        return exclude(ExclusionReason.ENVELOPE_MISMATCH, "redemption id differs from the envelope")
    try:
        signer = recover_address(bid.digest(ctx.domain), signed.signature)
    except SignatureError as e:
        return exclude(ExclusionReason.BAD_SIGNATURE, str(e))
    if signer != envelope.controller:
        return exclude(
            ExclusionReason.SIGNER_NOT_CONTROLLER, "inner bid not signed by the controller"
        )
    if not MIN_BASIS_POINT <= bid.basis_point <= MAX_BASIS_POINT:
        return exclude(
            ExclusionReason.BASIS_POINT_OUT_OF_RANGE,
            f"basisPoint {bid.basis_point} not in 10..10000",
        )
    if bid.redemption_shares == 0:
        return exclude(ExclusionReason.ZERO_SHARES, "redemptionShares is zero")
    request = requests.get(bid.redemption_id)
    current_nonce = request.nonce if request is not None else 0
    if bid.nonce != current_nonce:
        return exclude(
            ExclusionReason.STALE_NONCE, f"nonce {bid.nonce}, contract nonce {current_nonce}"
        )
    if request is not None and request.redemption_timestamp > ctx.auction_id:
        return exclude(ExclusionReason.NOT_MATURED, "request matures after the auction")
    if request is None or request.pending_shares == 0:
        return exclude(ExclusionReason.NO_PENDING_SHARES, "request has no pending shares")
    if request.controller != envelope.controller:
        return exclude(ExclusionReason.NOT_CONTROLLER, "envelope signer is not the controller")
    size = min(bid.redemption_shares, request.pending_shares)
    return ValidBid(bid.redemption_id, envelope.controller, bid.basis_point, size)


def validate_book(
    envelopes: Iterable[Envelope],
    ctx: AuctionContext,
    requests: Mapping[int, RequestSnapshot],
) -> tuple[list[ValidBid], list[Exclusion]]:
    """Rule 0 over a frozen book: valid bids and exclusions, each in book order."""
    opener = ctx.opener()
    valid: list[ValidBid] = []
    excluded: list[Exclusion] = []
    for envelope in envelopes:
        out = validate_envelope(envelope, ctx, opener, requests)
        (valid if isinstance(out, ValidBid) else excluded).append(out)  # type: ignore[arg-type]
    return valid, excluded


__all__ = [
    "AuctionContext",
    "Exclusion",
    "ExclusionReason",
    "RequestSnapshot",
    "validate_book",
    "validate_envelope",
]
