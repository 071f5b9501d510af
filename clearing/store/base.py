"""The bid store's interface: what the service and keeper need, whatever the backend.

Writes are *operations* applied in batches: a backend applies a list of operations in one
transaction and commits once, which is how durable intake reaches thousands of bids per
second (group commit, see ``group_commit``). A result is only returned after the commit.

DESIGN revision 2 rules every backend enforces inside that transaction:

* the freeze fence: once ``freeze`` has recorded an auction's freeze (under the same lock
  that orders its intake writes), every bid, replacement and cancel of it is refused with
  ``AuctionFrozenError``; the frozen book is ``live_bids`` as of ``Freeze.last_sequence``;
* no resurrection: an envelope once superseded or cancelled for a pair never becomes live
  again, nor is the live ciphertext stored again under another signature
  (``StaleEnvelopeError``);
* a cancel consumes the next per-auction sequence number (``StoredBid.cancel_sequence``),
  so bid and cancel receipts share one gapless, unique sequence per auction.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from clearing.errors import QevError
from clearing.store.board import BoardOutcome, BoardRecord


class BidStatus(StrEnum):
    """Lifecycle of a stored envelope."""

    LIVE = "live"
    SUPERSEDED = "superseded"
    CANCELLED = "cancelled"


class PutOutcome(StrEnum):
    """What a ``PutBid`` did."""

    CREATED = "created"  # no live bid for the pair before
    REPLACED = "replaced"  # the previous live bid is now superseded
    IDENTICAL = "identical"  # same ciphertext and signature as the live bid: nothing written


@dataclass(frozen=True, slots=True)
class StoredBid:
    """One envelope as stored, with its receipt fields."""

    auction_id: int
    redemption_id: int
    controller: bytes
    ciphertext: bytes
    ciphertext_hash: bytes
    signature: bytes
    sequence: int  # per-auction, strictly increasing, unique across replicas
    received_at: int  # unix seconds, the service clock
    status: BidStatus
    cancel_signature: bytes | None = None
    # For a cancelled envelope: the cancel's own sequence (same counter as ``sequence``;
    # None for rows cancelled before DESIGN revision 2) and its time.
    cancel_sequence: int | None = None
    cancelled_at: int | None = None


@dataclass(frozen=True, slots=True)
class Freeze:
    """The end of intake for an auction: no write to it is accepted after this record."""

    auction_id: int
    frozen_at: int  # unix seconds, as given to the first ``freeze`` call
    last_sequence: int  # the auction's counter at the freeze (0 if it had no write)


@dataclass(frozen=True, slots=True)
class PutBid:
    """Store a verified envelope as the live bid for its (auction, redemption) pair."""

    auction_id: int
    redemption_id: int
    controller: bytes
    ciphertext: bytes
    ciphertext_hash: bytes
    signature: bytes
    received_at: int


@dataclass(frozen=True, slots=True)
class CancelBid:
    """Cancel the live bid for a pair, naming its ciphertext hash (a verified CancelBid)."""

    auction_id: int
    redemption_id: int
    controller: bytes
    ciphertext_hash: bytes
    signature: bytes
    received_at: int


@dataclass(frozen=True, slots=True)
class PutResult:
    """The outcome of a ``PutBid`` and the live bid after it."""

    outcome: PutOutcome
    bid: StoredBid


@dataclass(frozen=True, slots=True)
class CancelResult:
    """The cancelled bid."""

    bid: StoredBid


Operation = PutBid | CancelBid
Result = PutResult | CancelResult


class StoreError(QevError):
    """The store refused or failed an operation."""

    code = "store_error"


class StoreUnavailableError(StoreError):
    """The store cannot be reached (maps to HTTP 503)."""

    code = "store_unavailable"


class NoLiveBidError(StoreError):
    """A cancel for a pair that has no live bid."""

    code = "not_found"


class StaleCancelError(StoreError):
    """A cancel naming a ciphertext hash that is not the live bid's."""

    code = "stale_cancel"


class AuctionFrozenError(StoreError):
    """A bid, replacement or cancel for an auction whose book is frozen."""

    code = "auction_closed"


class StaleEnvelopeError(StoreError):
    """An envelope that was superseded or cancelled for its pair, or the live ciphertext
    under another signature: it can never become the live bid (no resurrection)."""

    code = "stale_envelope"


class BidStore(Protocol):
    """A durable store of sealed bids and per-auction artifacts."""

    def migrate(self) -> None:
        """Create or upgrade the schema (versioned migrations, idempotent)."""

    def apply(self, ops: Sequence[Operation]) -> list[Result | StoreError]:
        """Apply ``ops`` in order in ONE transaction and commit durably before returning.

        A per-operation refusal (``NoLiveBidError``, ``StaleCancelError``,
        ``StaleEnvelopeError``, ``AuctionFrozenError``) is returned in that operation's slot
        and does not abort the others (another auction's operations still apply); an
        infrastructure failure raises ``StoreUnavailableError`` and nothing of the batch is
        committed.
        """

    def freeze(self, auction_id: int, frozen_at: int) -> Freeze:
        """Durably end intake for ``auction_id``; idempotent.

        Written in one transaction under the lock that orders the auction's intake writes,
        so every batch either committed before the freeze (and is counted in
        ``last_sequence``) or has its operations on the auction refused with
        ``AuctionFrozenError``. A second call returns the first record unchanged.
        """

    def frozen(self, auction_id: int) -> Freeze | None:
        """The auction's freeze record, if it is frozen."""

    def writer_turn(self) -> AbstractContextManager[None]:
        """Hold the store's single-writer role, if it has one, across ``apply`` calls.

        The group committer waits for its turn first and gathers what arrives meanwhile, so
        the time another writer process holds the database becomes batching time.
        """

    def live_bid(self, auction_id: int, redemption_id: int) -> StoredBid | None:
        """The live bid of a pair, if any."""

    def live_bids(self, auction_id: int) -> list[StoredBid]:
        """Every live bid of an auction, ordered by redemption id (the frozen book)."""

    def history(self, auction_id: int, redemption_id: int) -> list[StoredBid]:
        """Every stored envelope of a pair (live, superseded, cancelled) by sequence."""

    def latest(self, auction_id: int, redemption_id: int) -> StoredBid | None:
        """The pair's live bid, else its most recent envelope by sequence (two indexed
        single-row reads, never the pair's whole history)."""

    def retired_bids(self, auction_id: int) -> list[StoredBid]:
        """Every superseded and cancelled envelope of an auction by sequence (the audit
        trail published beside the book)."""

    def put_artifact(self, auction_id: int, name: str, body: bytes) -> None:
        """Durably store a published artifact (result, book, key...), replacing any old one."""

    def claim_artifact(self, auction_id: int, name: str, body: bytes) -> bool:
        """Store ``body`` under ``name`` only if none is stored; True if this call stored it
        (one writer wins among processes, e.g. a lease on work that only one should do)."""

    def get_artifact(self, auction_id: int, name: str) -> bytes | None:
        """A stored artifact, if any."""

    def board_put(self, record: BoardRecord) -> tuple[BoardOutcome, BoardRecord]:
        """Store a bulletin-board message in its slot unless taken (``store.board``)."""

    def board_records(self, auction_id: int) -> list[BoardRecord]:
        """Every bulletin-board message of an auction, in the order stored."""

    def ping(self) -> None:
        """Raise ``StoreUnavailableError`` unless the store answers (readiness)."""

    def close(self) -> None:
        """Release connections."""
