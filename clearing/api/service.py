"""The clearing service's use cases, independent of HTTP: intake, cancel, publication."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from clearing.api.keys import AuctionKeys
from clearing.api.ratelimit import LookupBudget
from clearing.calendar import AuctionCalendar
from clearing.documents import book_document, history_document, history_entry, signed_book
from clearing.eip712 import Eip712Domain
from clearing.errors import (
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
from clearing.hexcodec import from_hex, parse_address, parse_uint, to_checksum_address, to_hex
from clearing.merkle import StandardMerkleTree
from clearing.model import Envelope, cancel_digest
from clearing.receipts import Receipt, ReceiptKind
from clearing.redemptions import CachedRedemptions, ChainReads, RedemptionInfo, RedemptionReader
from clearing.signing import Signer, recover_address
from clearing.store.artifacts import (
    ALLOCATION_TREE,
    BOOK,
    HISTORY,
    KEY,
    PUBLISHED_BOOK,
    PUBLISHING,
    RESULT,
    SETTLEMENT,
)
from clearing.store.base import (
    AuctionFrozenError,
    BidStatus,
    BidStore,
    CancelBid,
    CancelResult,
    PutBid,
    PutResult,
    Result,
    StoredBid,
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
    chain_read_timeout: float = 3.0  # seconds a bid waits for its controller lookup
    # chain reads of uncached controllers per client per auction (None: unlimited)
    lookup_budget: LookupBudget | None = None
    chain_read_threads: int = 16  # the controller look-ups' own thread pool
    chain_reads_per_client: int = 4  # look-ups of one client running at once


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
        # Auctions whose book the keeper froze: a freeze is never undone, so once the store
        # refused a write for one, later writes are refused without a chain read or a batch.
        self._frozen: set[int] = set()
        # Settled auctions whose /book is built (or being built by another worker).
        self._published: set[int] = set()
        # Blocking controller reads run on a pool of their own, a few per client at a time.
        self._reads = ChainReads(deps.chain_read_threads, deps.chain_reads_per_client)

    def close(self) -> None:
        """Stop the chain read pool (the app's shutdown)."""
        self._reads.close()

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
        if self.d.clock() >= auction_id or self._is_frozen(auction_id):
            return "closed"
        return "open"

    def _is_frozen(self, auction_id: int) -> bool:
        if auction_id in self._frozen:
            return True
        if self.d.store.frozen(auction_id) is not None:
            self._frozen.add(auction_id)
            return True
        return False

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
            "receipt_signer": to_checksum_address(self.d.signer.address),
        }

    def current_auction(self) -> dict[str, Any]:
        """The auction open now."""
        return self.auction(self.d.calendar.current(self.d.clock()))

    # --- intake -----------------------------------------------------------------

    def _require_open(self, auction_id: int, now: int) -> None:
        """Refuse writes after T by the service clock, or once the book is known frozen.

        The store refuses writes to a frozen auction atomically in the batch (DESIGN 2, the
        freeze fence); this check only saves a chain read and a batch slot.
        """
        self.check_auction(auction_id)
        if not self.d.calendar.is_open(auction_id, now):
            raise AuctionClosedError(f"bidding for auction {auction_id} closed at {auction_id}")
        if auction_id in self._frozen:
            raise AuctionClosedError(f"the book of auction {auction_id} is frozen")

    async def _commit(self, op: PutBid | CancelBid) -> Acknowledged:
        """Submit ``op`` to the group committer; a frozen auction's refusal is remembered."""
        try:
            ack: Acknowledged = await self.d.committer.submit(op, self._acknowledge)
        except AuctionFrozenError:
            self._frozen.add(op.auction_id)
            raise
        return ack

    def _read_redemption(self, redemption_id: int) -> RedemptionInfo | None:
        try:
            return self.d.redemptions.redemption(redemption_id)
        except Exception as e:  # any reader failure is a retryable chain read
            # the upstream text may name the RPC URL (with its API key): never repeat it
            raise ChainReadError(f"cannot read redemption {redemption_id} from the chain") from e

    async def _redemption(
        self, auction_id: int, redemption_id: int, client: str
    ) -> RedemptionInfo | None:
        """The request, from the cache, else read from the chain: charged to ``client``'s
        budget for ``auction_id`` first, then on the chain read pool, within the timeout."""
        reader = self.d.redemptions
        if not reader.blocking:
            return self._read_redemption(redemption_id)
        if isinstance(reader, CachedRedemptions):
            hit, info = reader.cached(redemption_id)
            if hit:
                return info
        if self.d.lookup_budget is not None:
            # the budget renews with the next auction (this one closes at auction_id)
            self.d.lookup_budget.charge(client, auction_id, auction_id - self.d.clock())
        try:
            return await self._reads.run(
                client, self.d.chain_read_timeout, lambda: self._read_redemption(redemption_id)
            )
        except TimeoutError:
            raise ChainReadError(
                f"the controller of redemption {redemption_id} could not be read "
                f"within {self.d.chain_read_timeout:g} s"
            ) from None

    @staticmethod
    def _require_controller(
        redemption_id: int, controller: bytes, info: RedemptionInfo | None
    ) -> None:
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
        *,
        client: str = "unknown",
    ) -> Acknowledged:
        """Store a sealed bid durably and return its signed receipt.

        ``admit(controller)`` runs once the signature verifies (a rate limit raises there);
        ``client`` (the peer's address) is charged for any chain read of the controller.
        """
        now = self.d.clock()
        self._require_open(auction_id, now)
        envelope = self.decode_envelope(auction_id, body)
        self._require_signer(
            envelope.digest(self.d.domain), envelope.signature, envelope.controller, "SealedBid"
        )
        if admit is not None:
            admit(envelope.controller)
        info = await self._redemption(auction_id, envelope.redemption_id, client)
        self._require_controller(envelope.redemption_id, envelope.controller, info)
        # A slow chain read may have outlived the window: check the clock again. Past this
        # point the store's freeze fence decides, atomically, inside the write batch.
        self._require_open(auction_id, self.d.clock())
        # the receipt is signed on the committer's thread, after the commit
        return await self._commit(
            PutBid(
                auction_id,
                envelope.redemption_id,
                envelope.controller,
                envelope.ciphertext,
                envelope.ciphertext_hash,
                envelope.signature,
                now,
            )
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
        return await self._commit(
            CancelBid(auction_id, redemption_id, controller, ciphertext_hash, signature, now)
        )

    def _acknowledge(self, result: Result) -> Acknowledged:
        """A committed write's signed receipt (kind 1 for a cancel), status and outcome."""
        if isinstance(result, CancelResult):
            return Acknowledged(self.cancel_receipt(result.bid), "cancelled", "cancelled")
        assert isinstance(result, PutResult)
        return Acknowledged(self.receipt(result.bid), result.bid.status.value, result.outcome.value)

    def receipt(self, bid: StoredBid) -> dict[str, Any]:
        """The signed kind-0 receipt of a stored envelope (DESIGN 4)."""
        return self._receipt_body(bid, ReceiptKind.BID, bid.sequence, bid.received_at)

    def cancel_receipt(self, bid: StoredBid) -> dict[str, Any]:
        """The signed kind-1 receipt of a cancel: the cancelled envelope's hash, the cancel's
        own sequence and time."""
        if bid.cancel_sequence is None or bid.cancelled_at is None:
            raise ValueError("not a cancelled envelope")
        return self._receipt_body(bid, ReceiptKind.CANCEL, bid.cancel_sequence, bid.cancelled_at)

    def _receipt_body(
        self, bid: StoredBid, kind: ReceiptKind, sequence: int, at: int
    ) -> dict[str, Any]:
        receipt = Receipt(
            bid.auction_id,
            bid.redemption_id,
            bid.controller,
            bid.ciphertext_hash,
            sequence,
            at,
            kind,
        )
        signed = receipt.signed_by(self.d.signer)
        return {
            "auction_id": receipt.auction_id,
            "redemption_id": str(receipt.redemption_id),
            "controller": to_checksum_address(receipt.controller),
            "ciphertext_hash": to_hex(receipt.ciphertext_hash),
            "sequence": receipt.sequence,
            "received_at": receipt.received_at,
            "kind": int(receipt.kind),
            "service_signature": to_hex(signed.service_signature),
        }

    # --- reads ------------------------------------------------------------------

    def bid_status(self, auction_id: int, redemption_id: int) -> dict[str, Any]:
        """The pair's latest envelope receipt and, once cleared, its outcome."""
        self.check_auction(auction_id)
        latest = self.d.store.latest(auction_id, redemption_id)
        if latest is None:
            raise NotFoundError(f"no bid for redemption {redemption_id} in auction {auction_id}")
        out: dict[str, Any] = {"receipt": self.receipt(latest), "status": latest.status.value}
        if latest.status is BidStatus.CANCELLED:
            out["cancel_receipt"] = self.cancel_receipt(latest)
        if latest.status is BidStatus.LIVE:
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
            outcomes = orjson.loads(result).get("outcomes", {})
            if self._settled(auction_id):  # final: a re-clear can no longer replace it
                self._outcomes[auction_id] = outcomes
        return outcomes

    def _settled(self, auction_id: int) -> bool:
        return self.d.store.get_artifact(auction_id, SETTLEMENT) is not None

    def book(self, auction_id: int) -> bytes:
        """After close: every live envelope with its signed receipt, the root and its tree.

        Once the keeper has frozen the book, the published form (with receipts) is built once
        from the frozen document and stored, and its bytes are served as they are.
        """
        self._require_closed(auction_id)
        published = self.d.store.get_artifact(auction_id, PUBLISHED_BOOK)
        if published is not None:
            return published
        frozen = self.d.store.get_artifact(auction_id, BOOK)
        if frozen is not None:
            body = orjson.dumps(signed_book(orjson.loads(frozen), self.d.signer))
            self.d.store.put_artifact(auction_id, PUBLISHED_BOOK, body)
            return body
        bids = self.d.store.live_bids(auction_id)
        envelopes = [
            Envelope(auction_id, b.redemption_id, b.controller, b.ciphertext, b.signature)
            for b in bids
        ]
        book = book_document(
            auction_id, envelopes, [b.sequence for b in bids], [b.received_at for b in bids]
        )
        return orjson.dumps({**signed_book(book, self.d.signer), "frozen": False})

    def publish_settled(self, worker: str) -> list[int]:
        """Build the published book and history of the current and previous auction once
        the keeper has recorded its settlement, ahead of the first request: at 100k bids the
        book's receipts take seconds to sign. One worker among the service's processes does
        it (a lease in the store, taken by ``worker``); the auctions built here."""
        cal, store = self.d.calendar, self.d.store
        current = cal.current(self.d.clock())
        built = []
        for t in (current, current - cal.window):
            if t in self._published or not cal.is_boundary(t):
                continue
            if store.get_artifact(t, SETTLEMENT) is None:
                continue
            self._published.add(t)
            if store.claim_artifact(t, PUBLISHING, worker.encode()):
                self.history(t)
                self.book(t)  # last: its presence says both are built
                built.append(t)
        return built

    def history(self, auction_id: int) -> bytes:
        """After close: every superseded and cancelled envelope with its receipts (rev 2)."""
        self._require_closed(auction_id)
        cached = self.d.store.get_artifact(auction_id, HISTORY)
        if cached is not None:
            return cached
        frozen = self._is_frozen(auction_id)
        entries = []
        for b in self.d.store.retired_bids(auction_id):
            cancel = None
            if b.status is BidStatus.CANCELLED:
                assert b.cancel_sequence is not None and b.cancelled_at is not None
                assert b.cancel_signature is not None
                cancel = (b.cancel_sequence, b.cancelled_at, b.cancel_signature)
            entries.append(
                history_entry(
                    Envelope(auction_id, b.redemption_id, b.controller, b.ciphertext, b.signature),
                    sequence=b.sequence,
                    received_at=b.received_at,
                    status=b.status.value,
                    cancel=cancel,
                    signer=self.d.signer,
                )
            )
        body = orjson.dumps(history_document(auction_id, entries, self.d.signer))
        if frozen:  # nothing can change any more: build it once
            self.d.store.put_artifact(auction_id, HISTORY, body)
        return body

    def _require_closed(self, auction_id: int) -> None:
        self.check_auction(auction_id)
        if self.d.clock() < auction_id and not self._is_frozen(auction_id):
            raise AuctionNotClosedError("the book is published after the auction closes")

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
            dump = orjson.loads(self.artifact(auction_id, ALLOCATION_TREE))
            if dump is None:  # no winners (a re-clear replaced an abandoned tree)
                raise NotFoundError(f"auction {auction_id} has no allocations")
            tree = StandardMerkleTree.load(dump)
            cached = (tree, {v[1]: i for i, v in enumerate(tree.values)})
            if self._settled(auction_id):  # final: a re-clear can no longer replace it
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
