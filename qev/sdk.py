"""The bidder's SDK: seal, sign, submit, verify the receipt; replace, cancel, status, proof."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from clearing.bidding import seal_bid, sign_cancel
from clearing.eip712 import Eip712Domain
from clearing.errors import QevError, SignatureError
from clearing.hexcodec import from_hex, parse_address, to_checksum_address, to_hex
from clearing.merkle import verify
from clearing.model import ALLOCATION_LEAF_TYPES, Bid, Envelope
from clearing.receipts import Receipt, ReceiptKind
from clearing.signing import Signer


class ServiceProblemError(QevError):
    """The service answered with a problem (``code``, ``status``, ``detail``)."""

    def __init__(self, status: int, code: str, detail: str, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.body = status, code, body


class ReceiptMismatchError(SignatureError):
    """The receipt does not acknowledge what was sent, or is not signed by the service."""


class AuctionKeyMismatchError(QevError):
    """The service announces another auction public key than the one committed on-chain."""

    code = "auction_key_mismatch"


class ChainView(Protocol):
    """What a bidder reads from the chain to pin the service (``keeper.chain.Chain`` fits)."""

    def receipt_signer(self) -> bytes:
        """The settlement contract's ``receiptSigner()``."""

    def key_state(self, auction_id: int) -> Any:
        """``auctionKey(T)``: an object with ``public_key`` and ``committed``."""


@dataclass(frozen=True)
class SubmittedBid:
    """A bid the service acknowledged, with what the bidder needs to follow it."""

    envelope: Envelope
    receipt: Receipt
    created: bool


class BidderClient:
    """A holder's client for one service.

    ``chain`` pins the service from the chain (DESIGN 4, rev 2): receipts must be signed by
    the settlement contract's ``receiptSigner()``, and a bid is sealed only to the public key
    committed on-chain as ``auctionKey(T)``. ``service_address`` pins a signer explicitly.
    """

    def __init__(
        self,
        base_url: str,
        signer: Signer,
        *,
        service_address: bytes | None = None,
        chain: ChainView | None = None,
        client: httpx.Client | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.signer = signer
        self.chain = chain
        if service_address is None and chain is not None:
            service_address = chain.receipt_signer()
            if not any(service_address):
                raise ReceiptMismatchError("no receipt signer is registered on-chain")
        self.service_address = service_address
        self.http = client or httpx.Client(base_url=base_url, timeout=timeout)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.http.close()

    def _json(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"code": "unknown", "detail": response.text[:200]}
            raise ServiceProblemError(
                response.status_code, body.get("code", "unknown"), body.get("detail", ""), body
            )
        return response.json()

    def auction(self, auction_id: int | None = None) -> dict[str, Any]:
        """The current (or a given) auction's document."""
        path = "/v1/auctions/current" if auction_id is None else f"/v1/auctions/{auction_id}"
        return dict(self._json(self.http.get(path)))

    @staticmethod
    def domain_of(auction: dict[str, Any]) -> Eip712Domain:
        """The EIP-712 domain an auction document announces."""
        return Eip712Domain(
            auction["eip712"]["name"],
            auction["eip712"]["version"],
            int(auction["chain_id"]),
            parse_address(auction["settlement"]),
        )

    def seal(self, auction: dict[str, Any], bid: Bid) -> Envelope:
        """Seal and sign ``bid`` for ``auction`` (no network)."""
        if auction.get("public_key") is None:
            raise ServiceProblemError(409, "no_public_key", "auction key not announced", auction)
        if self.chain is not None:
            state = self.chain.key_state(int(auction["auction_id"]))
            if not state.committed or to_hex(state.public_key) != auction["public_key"]:
                raise AuctionKeyMismatchError(
                    f"the service's public key for auction {auction['auction_id']} is not the "
                    "one committed on-chain: refusing to seal"
                )
        return seal_bid(
            self.signer, bid, self.domain_of(auction), from_hex(auction["public_key"], 32)
        )

    def submit_envelope(self, envelope: Envelope) -> SubmittedBid:
        """POST an envelope and verify the receipt acknowledges exactly it."""
        response = self.http.post(
            f"/v1/auctions/{envelope.auction_id}/bids",
            json={
                "redemption_id": str(envelope.redemption_id),
                "controller": to_checksum_address(envelope.controller),
                "ciphertext": to_hex(envelope.ciphertext),
                "signature": to_hex(envelope.signature),
            },
        )
        body = self._json(response)
        receipt = self.verify_receipt(body["receipt"], envelope.auction_id, envelope.redemption_id)
        if receipt.ciphertext_hash != envelope.ciphertext_hash:
            raise ReceiptMismatchError("receipt names another ciphertext")
        return SubmittedBid(envelope, receipt, response.status_code == 201)

    def bid(
        self,
        redemption_id: int,
        shares: int,
        basis_point: int,
        nonce: int = 0,
        auction_id: int | None = None,
    ) -> SubmittedBid:
        """Seal, sign and submit a bid (a new one, or a replacement of the live one)."""
        auction = self.auction(auction_id)
        bid = Bid(int(auction["auction_id"]), redemption_id, shares, basis_point, nonce)
        return self.submit_envelope(self.seal(auction, bid))

    def cancel(self, auction_id: int, redemption_id: int, ciphertext_hash: bytes) -> Receipt:
        """Cancel the live bid (named by its ciphertext hash) with a signed CancelBid."""
        domain = self.domain_of(self.auction(auction_id))
        signature = sign_cancel(self.signer, domain, auction_id, redemption_id, ciphertext_hash)
        body = self._json(
            self.http.request(
                "DELETE",
                f"/v1/auctions/{auction_id}/bids/{redemption_id}",
                json={
                    "controller": to_checksum_address(self.signer.address),
                    "ciphertext_hash": to_hex(ciphertext_hash),
                    "signature": to_hex(signature),
                },
            )
        )
        receipt = self.verify_receipt(
            body["receipt"], auction_id, redemption_id, ReceiptKind.CANCEL
        )
        if receipt.ciphertext_hash != ciphertext_hash:
            raise ReceiptMismatchError("cancel receipt names another ciphertext")
        return receipt

    def status(self, auction_id: int, redemption_id: int) -> dict[str, Any]:
        """The pair's receipt, status and (after clearing) outcome."""
        return dict(self._json(self.http.get(f"/v1/auctions/{auction_id}/bids/{redemption_id}")))

    def allocation(self, auction_id: int, redemption_id: int) -> dict[str, Any]:
        """The allocation leaf with its proof, verified against the published root."""
        body = dict(
            self._json(self.http.get(f"/v1/auctions/{auction_id}/allocations/{redemption_id}"))
        )
        leaf = body["leaf"]
        values = (
            int(leaf["auction_id"]),
            int(leaf["redemption_id"]),
            parse_address(leaf["controller"]),
            int(leaf["shares_filled"]),
            int(leaf["shares_burnt"]),
            int(leaf["payout"]),
        )
        proof = [from_hex(p, 32) for p in body["proof"]]
        if not verify(from_hex(body["allocation_root"], 32), ALLOCATION_LEAF_TYPES, values, proof):
            raise ReceiptMismatchError("allocation proof does not verify against the root")
        return body

    def verify_receipt(
        self,
        raw: dict[str, Any],
        auction_id: int,
        redemption_id: int,
        kind: ReceiptKind = ReceiptKind.BID,
    ) -> Receipt:
        """Parse a receipt, check it names this operation and recover the service's signature."""
        receipt = Receipt(
            int(raw["auction_id"]),
            int(raw["redemption_id"]),
            parse_address(raw["controller"]),
            from_hex(raw["ciphertext_hash"], 32),
            int(raw["sequence"]),
            int(raw["received_at"]),
            ReceiptKind(int(raw["kind"])),
            from_hex(raw["service_signature"], 65),
        )
        if receipt.kind is not kind:
            raise ReceiptMismatchError(f"expected a kind-{int(kind)} receipt")
        if (receipt.auction_id, receipt.redemption_id) != (auction_id, redemption_id):
            raise ReceiptMismatchError("receipt names another bid")
        if receipt.controller != self.signer.address:
            raise ReceiptMismatchError("receipt names another controller")
        signer = receipt.signer_address()
        if self.service_address is not None and signer != self.service_address:
            raise ReceiptMismatchError("receipt is not signed by the service")
        return receipt


__all__ = [
    "AuctionKeyMismatchError",
    "BidderClient",
    "ChainView",
    "ReceiptMismatchError",
    "ServiceProblemError",
    "SubmittedBid",
]
