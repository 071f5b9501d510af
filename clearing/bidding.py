"""The bidder's side of DESIGN 3: sign the inner bid, seal it, sign the envelope."""

from __future__ import annotations

from clearing.eip712 import Eip712Domain
from clearing.model import Bid, Envelope, SignedBid, cancel_digest
from clearing.sealing import bid_info, seal
from clearing.signing import Signer


def seal_bid(signer: Signer, bid: Bid, domain: Eip712Domain, auction_public_key: bytes) -> Envelope:
    """Sign ``bid`` as EIP-712 ``Bid``, HPKE-seal it to the auction key, sign ``SealedBid``."""
    signed = SignedBid(bid, signer.sign_digest(bid.digest(domain)))
    info = bid_info(domain.chain_id, domain.verifying_contract, bid.auction_id)
    ciphertext = seal(signed.encode(), auction_public_key, info)
    unsigned = Envelope(bid.auction_id, bid.redemption_id, signer.address, ciphertext, b"")
    return Envelope(
        bid.auction_id,
        bid.redemption_id,
        signer.address,
        ciphertext,
        signer.sign_digest(unsigned.digest(domain)),
    )


def sign_cancel(
    signer: Signer,
    domain: Eip712Domain,
    auction_id: int,
    redemption_id: int,
    ciphertext_hash: bytes,
) -> bytes:
    """The controller's ``CancelBid`` signature naming the live envelope's ciphertext hash."""
    return signer.sign_digest(cancel_digest(domain, auction_id, redemption_id, ciphertext_hash))


__all__ = ["seal_bid", "sign_cancel"]
