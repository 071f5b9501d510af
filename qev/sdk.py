"""The bidder's SDK: seal, sign, submit, verify the receipt; replace, cancel, status, proof.

With a chain (``BidderClient(..., chain=)``) the client pins the service to the chain: the
receipt signer is the settlement contract's ``receiptSigner()``, a bid is sealed only to the
auction key committed on-chain, and ``prepare_bid`` checks a bid against the request and
reads its nonce before anything is sealed or sent (PROTOCOL 3.7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from clearing.bidding import seal_bid, sign_cancel
from clearing.eip712 import Eip712Domain
from clearing.errors import QevError, SignatureError
from clearing.hexcodec import from_hex, parse_address, to_checksum_address, to_hex
from clearing.merkle import verify
from clearing.model import (
    ALLOCATION_LEAF_TYPES,
    MAX_BASIS_POINT,
    MIN_BASIS_POINT,
    Bid,
    Envelope,
)
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


class BidRefusedError(QevError):
    """A bid the holder's own checks refuse before anything is sent (it could not take part)."""

    code = "bid_refused"


class ChainView(Protocol):
    """What a bidder reads from the chain to pin the service (``keeper.chain.Chain`` fits)."""

    def receipt_signer(self) -> bytes:
        """The settlement contract's ``receiptSigner()``."""

    def key_state(self, auction_id: int) -> Any:
        """``auctionKey(T)``: an object with ``public_key`` and ``committed``."""


class HolderChainView(ChainView, Protocol):
    """What ``prepare_bid`` reads besides the pins: the chain id, the request, the nonce."""

    def chain_id(self) -> int:
        """The chain's id."""

    def request(self, redemption_id: int) -> Any:
        """The request: an object with ``controller`` (20 bytes), ``pending_shares`` and
        ``redemption_timestamp`` (a zero controller when there is no such request)."""

    def auction_nonce(self, contract: bytes, auction_id: int, redemption_id: int) -> int:
        """``nonce(T, redemptionId)`` of ``contract`` (the EIP-712 verifying contract)."""


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
        nonce: int | None = None,
        auction_id: int | None = None,
    ) -> SubmittedBid:
        """Seal, sign and submit a bid as given (a new one, or a replacement of the live one).

        Nothing is checked: the demo and the tests send bids the close excludes on purpose.
        A holder uses ``prepare_bid`` (checks, nonce from the chain) and ``seal``.
        ``nonce`` defaults to the chain's when the chain can read it, else 0.
        """
        auction = self.auction(auction_id)
        t = int(auction["auction_id"])
        if nonce is None:
            reader = getattr(self.chain, "auction_nonce", None)
            contract = parse_address(auction["settlement"])
            nonce = int(reader(contract, t, redemption_id)) if reader is not None else 0
        bid = Bid(t, redemption_id, shares, basis_point, nonce)
        return self.submit_envelope(self.seal(auction, bid))

    def check_auction(
        self, auction: dict[str, Any], *, verifying_contract: bytes | None = None
    ) -> None:
        """Refuse an auction document that does not describe the pinned chain and signer.

        Its ``chain_id`` must be the chain's, its ``receipt_signer`` the pinned one and, when
        ``verifying_contract`` is given, its ``settlement`` (the EIP-712 domain) that
        contract: a bid signed in another domain would be excluded at close.
        """
        chain = self._holder_chain()
        if int(auction["chain_id"]) != chain.chain_id():
            raise BidRefusedError(
                f"the service's auction {auction['auction_id']} is on chain "
                f"{auction['chain_id']}, not on chain {chain.chain_id()}: wrong service?"
            )
        announced = auction.get("receipt_signer")
        if (
            announced is not None
            and self.service_address is not None
            and parse_address(announced) != self.service_address
        ):
            raise ReceiptMismatchError(
                f"the service signs receipts as {announced}, but the chain's receipt signer is "
                f"{to_checksum_address(self.service_address)}: refusing to bid"
            )
        if (
            verifying_contract is not None
            and parse_address(auction["settlement"]) != verifying_contract
        ):
            raise BidRefusedError(
                f"the service's auction names settlement {auction['settlement']}, not "
                f"{to_checksum_address(verifying_contract)}: refusing to sign in its domain"
            )

    def _holder_chain(self) -> HolderChainView:
        chain = self.chain
        if chain is None or not all(
            hasattr(chain, name) for name in ("chain_id", "request", "auction_nonce")
        ):
            raise BidRefusedError("a bid is checked against the chain: the client has no chain")
        return chain  # type: ignore[return-value]

    def prepare_bid(
        self,
        auction: dict[str, Any],
        redemption_id: int,
        shares: int,
        basis_point: int,
    ) -> tuple[Bid, Any]:
        """The ``Bid`` to seal, checked against the chain; also returns the request read.

        Refuses (``BidRefusedError``, nothing sent) a bid that section 5 rule 0 would exclude
        or that cannot take part: an auction not open, basis points outside 10..10000, zero
        shares, a request that does not exist, is controlled by another address, has no
        pending shares, has fewer pending shares than ``shares``, or matures after T. The
        nonce is the contract's ``nonce(T, redemptionId)`` now.
        """
        chain = self._holder_chain()
        t = int(auction["auction_id"])
        if auction.get("status") != "open":
            raise BidRefusedError(f"auction {t} is {auction.get('status')}: bidding has closed")
        if not MIN_BASIS_POINT <= basis_point <= MAX_BASIS_POINT:
            raise BidRefusedError(
                f"basis points {basis_point} are outside {MIN_BASIS_POINT}..{MAX_BASIS_POINT}"
            )
        if shares <= 0:
            raise BidRefusedError("a bid must offer more than 0 shares")
        request = chain.request(redemption_id)
        if not any(request.controller):
            raise BidRefusedError(f"there is no redemption request {redemption_id} on-chain")
        if request.controller != self.signer.address:
            raise BidRefusedError(
                f"redemption {redemption_id} is controlled by "
                f"{to_checksum_address(request.controller)}, not by this key "
                f"({to_checksum_address(self.signer.address)})"
            )
        if request.pending_shares == 0:
            raise BidRefusedError(f"redemption {redemption_id} has no pending shares left")
        if shares > request.pending_shares:
            raise BidRefusedError(
                f"{shares} shares (wei) is more than the {request.pending_shares} pending in "
                f"redemption {redemption_id}"
            )
        if request.redemption_timestamp > t:
            raise BidRefusedError(
                f"redemption {redemption_id} matures at {request.redemption_timestamp}, after "
                f"auction {t} closes: it can only take part in a later auction"
            )
        nonce = chain.auction_nonce(parse_address(auction["settlement"]), t, redemption_id)
        return Bid(t, redemption_id, shares, basis_point, int(nonce)), request

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

    def verified_status(self, auction_id: int, redemption_id: int) -> dict[str, Any] | None:
        """``status`` with its receipts verified (pinned signer, this controller); None if the
        pair has no envelope. A receipt of another controller is refused."""
        try:
            body = self.status(auction_id, redemption_id)
        except ServiceProblemError as exc:
            if exc.code == "not_found":
                return None
            raise
        self.verify_receipt(body["receipt"], auction_id, redemption_id)
        if body.get("cancel_receipt"):
            self.verify_receipt(
                body["cancel_receipt"], auction_id, redemption_id, ReceiptKind.CANCEL
            )
        return body

    def live_envelope(self, auction_id: int, redemption_id: int) -> bytes | None:
        """The ciphertext hash of this controller's live envelope for the pair, per the
        service (its receipt verified), or None."""
        body = self.verified_status(auction_id, redemption_id)
        if body is None or body.get("status") != "live":
            return None
        return from_hex(body["receipt"]["ciphertext_hash"], 32)

    def result(self, auction_id: int) -> dict[str, Any]:
        """The published result document (PROTOCOL 4.7.3)."""
        return dict(self._json(self.http.get(f"/v1/auctions/{auction_id}/result")))

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
    "BidRefusedError",
    "BidderClient",
    "ChainView",
    "HolderChainView",
    "ReceiptMismatchError",
    "ServiceProblemError",
    "SubmittedBid",
]
