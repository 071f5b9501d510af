"""The clearing service's use cases, independent of HTTP: intake, cancel, publication."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from clearing.api.keys import AuctionKeys
from clearing.calendar import AuctionCalendar
from clearing.documents import book_document
from clearing.eip712 import Eip712Domain
from clearing.hexcodec import from_hex, parse_address, parse_uint, to_checksum_address, to_hex
from clearing.merkle import StandardMerkleTree
from clearing.model import Envelope, cancel_digest
from clearing.receipts import Receipt
from clearing.redemptions import RedemptionReader
from clearing.signing import Signer, recover_address
from clearing.store.artifacts import ALLOCATION_TREE, BOOK, KEY, RESULT, SETTLEMENT
from clearing.store.base import BidStore, CancelBid, PutBid, PutResult, Result, StoredBid
from qev.errors import (
    AuctionClosedError,
    AuctionNotClosedError,
    ChainReadError,
    KeyNotRevealedError,
    MalformedError,
    NotClearedError,
    NotControllerError,
    NotFoundError,
    PayloadTooLargeError,
    SignatureError,
    UnknownAuctionError,
)


@dataclass
class ServiceDeps:
    """Everything the service uses, passed in (no globals, no environment reads)."""

    store: BidStore
    committer: Any  # GroupCommitter: ``await submit(op)``
    redemptions: RedemptionReader
    keys: AuctionKeys
    signer: Signer
    calendar: AuctionCalendar
    domain: Eip712Domain
    clock: Callable[[], int]
    min_ciphertext: int = 368
    max_ciphertext: int = 1024


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """A stored bid's signed receipt and whether this request created it."""

    receipt: dict[str, Any]
    status: str
    outcome: str  # created, replaced, identical or cancelled

    @property
    def created(self) -> bool:
        """True unless this was an identical resubmission (answered 200, not 201)."""
        return self.outcome != "identical"


class ClearingService:
    """Intake and publication rules of DESIGN 2-4."""

    def __init__(self, deps: ServiceDeps) -> None:
        self.d = deps
        self._trees: dict[int, tuple[StandardMerkleTree, dict[int, int]]] = {}
        # Outcomes never change once a result is published (the keeper re-publishes a
        # result only to add its settlement), so they are parsed once per auction.
        self._outcomes: dict[int, dict[str, Any]] = {}

    # --- auctions ---------------------------------------------------------------

    def check_auction(self, auction_id: int) -> None:
        """Raise ``UnknownAuctionError`` unless ``auction_id`` is a past or current auction."""
        cal = self.d.calendar
        if not cal.is_boundary(auction_id) or auction_id > cal.current(self.d.clock()):
            raise UnknownAuctionError(f"no auction {auction_id}")

    def status(self, auction_id: int) -> str:
        """open, closed, cleared, submitted, settled or revealed."""
        store = self.d.store
        if store.get_artifact(auction_id, KEY) is not None:
            return "revealed"
        settlement = store.get_artifact(auction_id, SETTLEMENT)
        if settlement is not None:
            return "settled" if orjson.loads(settlement).get("status") == "settled" else "submitted"
        if store.get_artifact(auction_id, RESULT) is not None:
            return "cleared"
        return "closed" if self.d.clock() >= auction_id else "open"

    def auction(self, auction_id: int) -> dict[str, Any]:
        """The DESIGN 4 auction document."""
        self.check_auction(auction_id)
        pk = self.d.keys.public_key(auction_id)
        return {
            "auction_id": auction_id,
            "opens_at": self.d.calendar.opens_at(auction_id),
            "closes_at": auction_id,
            "status": self.status(auction_id),
            "public_key": to_hex(pk) if pk is not None else None,
            "chain_id": self.d.domain.chain_id,
            "settlement": to_checksum_address(self.d.domain.verifying_contract),
            "eip712": {"name": self.d.domain.name, "version": self.d.domain.version},
        }

    def current_auction(self) -> dict[str, Any]:
        """The auction open now."""
        return self.auction(self.d.calendar.current(self.d.clock()))

    # --- intake -----------------------------------------------------------------

    def _require_open(self, auction_id: int, now: int) -> None:
        self.check_auction(auction_id)
        if not self.d.calendar.is_open(auction_id, now):
            raise AuctionClosedError(f"bidding for auction {auction_id} closed at {auction_id}")

    def _require_controller(self, redemption_id: int, controller: bytes) -> None:
        try:
            info = self.d.redemptions.redemption(redemption_id)
        except ChainReadError:
            raise
        except Exception as e:  # any other reader failure is a retryable chain read
            raise ChainReadError(f"cannot read redemption {redemption_id}") from e
        if info is None or info.controller != controller:
            raise NotControllerError(
                f"{to_checksum_address(controller)} is not the controller of redemption "
                f"{redemption_id}"
            )

    def decode_envelope(self, auction_id: int, body: dict[str, str]) -> Envelope:
        """Decode a POSTed envelope and check its sizes (``submit`` checks its signature)."""
        redemption_id = parse_uint(body["redemption_id"])
        controller = parse_address(body["controller"])
        ciphertext = from_hex(body["ciphertext"])
        if len(ciphertext) > self.d.max_ciphertext:
            raise PayloadTooLargeError(f"ciphertext over {self.d.max_ciphertext} bytes")
        if len(ciphertext) < self.d.min_ciphertext:
            raise MalformedError(f"ciphertext under {self.d.min_ciphertext} bytes")
        signature = from_hex(body["signature"])
        return Envelope(auction_id, redemption_id, controller, ciphertext, signature)

    def _require_signer(
        self, digest: bytes, signature: bytes, controller: bytes, what: str
    ) -> None:
        if recover_address(digest, signature) != controller:
            raise SignatureError(f"{what} signature does not recover to the controller")

    async def submit(
        self,
        auction_id: int,
        body: dict[str, str],
        admit: Callable[[bytes], None] | None = None,
    ) -> Acknowledged:
        """Store a sealed bid durably and return its signed receipt.

        ``admit(controller)`` runs once the signature verifies (a rate limit raises there).
        """
        now = self.d.clock()
        self._require_open(auction_id, now)
        envelope = self.decode_envelope(auction_id, body)
        self._require_signer(
            envelope.digest(self.d.domain), envelope.signature, envelope.controller, "SealedBid"
        )
        if admit is not None:
            admit(envelope.controller)
        if self.d.redemptions.blocking:
            await asyncio.to_thread(
                self._require_controller, envelope.redemption_id, envelope.controller
            )
        else:
            self._require_controller(envelope.redemption_id, envelope.controller)
        # the receipt is signed on the committer's thread, after the commit
        return await self.d.committer.submit(
            PutBid(
                auction_id,
                envelope.redemption_id,
                envelope.controller,
                envelope.ciphertext,
                envelope.ciphertext_hash,
                envelope.signature,
                now,
            ),
            self._acknowledge,
        )

    async def cancel(
        self,
        auction_id: int,
        redemption_id: int,
        body: dict[str, str],
        admit: Callable[[bytes], None] | None = None,
    ) -> Acknowledged:
        """Cancel the live bid named by a signed ``CancelBid`` (``admit`` as in ``submit``)."""
        now = self.d.clock()
        self._require_open(auction_id, now)
        controller = parse_address(body["controller"])
        ciphertext_hash = from_hex(body["ciphertext_hash"], 32)
        signature = from_hex(body["signature"])
        digest = cancel_digest(self.d.domain, auction_id, redemption_id, ciphertext_hash)
        self._require_signer(digest, signature, controller, "CancelBid")
        if admit is not None:
            admit(controller)
        return await self.d.committer.submit(
            CancelBid(auction_id, redemption_id, controller, ciphertext_hash, signature, now),
            self._acknowledge,
        )

    def _acknowledge(self, result: Result) -> Acknowledged:
        """A committed write's signed receipt, status and outcome."""
        outcome = result.outcome.value if isinstance(result, PutResult) else "cancelled"
        return Acknowledged(self.receipt(result.bid), result.bid.status.value, outcome)

    def receipt(self, bid: StoredBid) -> dict[str, Any]:
        """The signed DESIGN 4 receipt of a stored bid."""
        signed = Receipt(
            bid.auction_id,
            bid.redemption_id,
            bid.controller,
            bid.ciphertext_hash,
            bid.sequence,
            bid.received_at,
        ).signed_by(self.d.signer)
        return {
            "auction_id": bid.auction_id,
            "redemption_id": str(bid.redemption_id),
            "controller": to_checksum_address(bid.controller),
            "ciphertext_hash": to_hex(bid.ciphertext_hash),
            "sequence": bid.sequence,
            "received_at": bid.received_at,
            "service_signature": to_hex(signed.service_signature),
        }

    # --- reads ------------------------------------------------------------------

    def bid_status(self, auction_id: int, redemption_id: int) -> dict[str, Any]:
        """The pair's latest envelope receipt and, once cleared, its outcome."""
        self.check_auction(auction_id)
        history = self.d.store.history(auction_id, redemption_id)
        if not history:
            raise NotFoundError(f"no bid for redemption {redemption_id} in auction {auction_id}")
        latest = next((b for b in history if b.status.value == "live"), history[-1])
        out: dict[str, Any] = {"receipt": self.receipt(latest), "status": latest.status.value}
        if latest.status.value == "live":
            outcomes = self._published_outcomes(auction_id)
            if outcomes is not None:
                out["outcome"] = outcomes.get(str(redemption_id))
        return out

    def _published_outcomes(self, auction_id: int) -> dict[str, Any] | None:
        outcomes = self._outcomes.get(auction_id)
        if outcomes is None:
            result = self.d.store.get_artifact(auction_id, RESULT)
            if result is None:
                return None
            outcomes = self._outcomes[auction_id] = orjson.loads(result).get("outcomes", {})
        return outcomes

    def book(self, auction_id: int) -> bytes:
        """After close, as JSON: every live envelope, the bid-book root and its OZ tree dump.

        Once the keeper has frozen the book, that frozen document's bytes are served as is.
        """
        self.check_auction(auction_id)
        if self.d.clock() < auction_id:
            raise AuctionNotClosedError("the book is published after the auction closes")
        frozen = self.d.store.get_artifact(auction_id, BOOK)
        if frozen is not None:
            return frozen
        bids = self.d.store.live_bids(auction_id)
        envelopes = [
            Envelope(auction_id, b.redemption_id, b.controller, b.ciphertext, b.signature)
            for b in bids
        ]
        return orjson.dumps(
            book_document(
                auction_id, envelopes, [b.sequence for b in bids], [b.received_at for b in bids]
            )
        )

    def artifact(self, auction_id: int, name: str) -> bytes:
        """A published artifact, or the problem that says why it is not there yet."""
        self.check_auction(auction_id)
        raw = self.d.store.get_artifact(auction_id, name)
        if raw is not None:
            return raw
        if self.d.clock() < auction_id:
            raise AuctionNotClosedError(f"auction {auction_id} is still open")
        if name == KEY:
            raise KeyNotRevealedError("the auction key is revealed after settlement")
        raise NotClearedError(f"auction {auction_id} has not been cleared yet")

    def allocation(self, auction_id: int, redemption_id: int) -> dict[str, Any]:
        """The allocation leaf of ``redemption_id`` and its proof."""
        cached = self._trees.get(auction_id)
        if cached is None:
            tree = StandardMerkleTree.load(orjson.loads(self.artifact(auction_id, ALLOCATION_TREE)))
            cached = (tree, {v[1]: i for i, v in enumerate(tree.values)})
            self._trees[auction_id] = cached
        tree, by_redemption = cached
        i = by_redemption.get(redemption_id)
        if i is not None:
            a, r, c, filled, burnt, payout = tree.values[i]
            return {
                "auction_id": auction_id,
                "allocation_root": to_hex(tree.root),
                "leaf": {
                    "auction_id": a,
                    "redemption_id": str(r),
                    "controller": to_checksum_address(c),
                    "shares_filled": str(filled),
                    "shares_burnt": str(burnt),
                    "payout": str(payout),
                },
                "proof": [to_hex(p) for p in tree.proof(i)],
            }
        raise NotFoundError(f"redemption {redemption_id} has no allocation in auction {auction_id}")


__all__ = ["ClearingService", "ServiceDeps"]
