"""Shared by the store backends: operation checks, the put/cancel rules, uint256, migrations.

``plan_batch`` is the one place the rules of DESIGN revision 2 live (identical, replaced,
stale envelope, stale cancel, frozen auction, one sequence counter for bids and cancels):
each backend only reads what it needs under its lock and writes the plan.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from importlib import resources

from clearing.store.base import (
    AuctionFrozenError,
    BidStatus,
    CancelBid,
    CancelResult,
    NoLiveBidError,
    Operation,
    PutBid,
    PutOutcome,
    PutResult,
    Result,
    StaleCancelError,
    StaleEnvelopeError,
    StoredBid,
    StoreError,
)

UINT256_LIMIT = 1 << 256
INT64_LIMIT = 1 << 63
SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def check_operation(op: Operation) -> None:
    """Raise ``ValueError`` if ``op`` cannot be stored (a caller bug, not a refusal).

    ``auction_id`` and ``received_at`` must fit a signed 64-bit column, ``redemption_id``
    must be a uint256, hashes 32 bytes, byte fields ``bytes``.
    """
    if not isinstance(op, PutBid | CancelBid):
        raise TypeError(f"not a store operation: {type(op).__name__}")
    for name in ("auction_id", "received_at"):
        value = getattr(op, name)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < INT64_LIMIT:
            raise ValueError(f"{name} must be an int in [0, 2^63): {value!r}")
    rid = op.redemption_id
    if not isinstance(rid, int) or isinstance(rid, bool) or not 0 <= rid < UINT256_LIMIT:
        raise ValueError(f"redemption_id must be a uint256: {rid!r}")
    fields = ["controller", "ciphertext_hash", "signature"]
    if isinstance(op, PutBid):
        fields.append("ciphertext")
    for name in fields:
        if not isinstance(getattr(op, name), bytes):
            raise ValueError(f"{name} must be bytes")
    if len(op.ciphertext_hash) != 32:
        raise ValueError("ciphertext_hash must be 32 bytes")


def check_freeze(auction_id: int, frozen_at: int) -> None:
    """Raise ``ValueError`` unless both are ints in [0, 2^63) (signed 64-bit columns)."""
    for name, value in (("auction_id", auction_id), ("frozen_at", frozen_at)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < INT64_LIMIT:
            raise ValueError(f"{name} must be an int in [0, 2^63): {value!r}")


def u256_to_bytes(value: int) -> bytes:
    """Fixed-width big-endian encoding: byte order equals numeric order."""
    return value.to_bytes(32, "big")


def u256_from_bytes(raw: bytes) -> int:
    """Inverse of ``u256_to_bytes``."""
    return int.from_bytes(raw, "big")


def check_schema_name(schema: str) -> str:
    """Return ``schema`` if it is a safe lowercase SQL identifier, else raise ``ValueError``."""
    if not SCHEMA_NAME.fullmatch(schema) or len(schema) > 63:
        raise ValueError(f"invalid schema name {schema!r}: must match {SCHEMA_NAME.pattern}")
    return schema


@dataclass(frozen=True, slots=True)
class Migration:
    """One versioned SQL migration file."""

    version: int
    name: str
    sql: str


def load_migrations(backend: str) -> list[Migration]:
    """The migrations of ``backend`` (``sqlite`` or ``postgres``) in version order."""
    folder = resources.files("clearing.store").joinpath("migrations").joinpath(backend)
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if not found or len(set(versions)) != len(versions):
        raise RuntimeError(f"missing or duplicate {backend} migrations: {versions}")
    return found


def new_live_bid(op: PutBid, sequence: int) -> StoredBid:
    """The live row a ``PutBid`` creates with ``sequence`` (same in every backend)."""
    return StoredBid(
        auction_id=op.auction_id,
        redemption_id=op.redemption_id,
        controller=op.controller,
        ciphertext=op.ciphertext,
        ciphertext_hash=op.ciphertext_hash,
        signature=op.signature,
        sequence=sequence,
        received_at=op.received_at,
        status=BidStatus.LIVE,
    )


def put_outcome(live: StoredBid | None, op: PutBid) -> PutOutcome:
    """DESIGN 2: identical resubmission, replacement of the live bid, or a new bid.

    Only for a put ``put_refusal`` accepts.
    """
    if live is None:
        return PutOutcome.CREATED
    if live.ciphertext_hash == op.ciphertext_hash and live.signature == op.signature:
        return PutOutcome.IDENTICAL
    return PutOutcome.REPLACED


def put_refusal(live: StoredBid | None, op: PutBid, retired: Set[EnvelopeKey]) -> StoreError | None:
    """Why a put cannot apply (no resurrection), or None if it can.

    ``retired`` holds the (auction, redemption, ciphertext hash) of the pair's superseded
    and cancelled rows (at least those matching ``op``). The live ciphertext under its own
    signature is an identical resubmission, never a refusal.
    """
    if live is not None and live.ciphertext_hash == op.ciphertext_hash:
        if live.signature == op.signature:
            return None
        return StaleEnvelopeError(
            f"ciphertext 0x{op.ciphertext_hash.hex()} is already live for auction "
            f"{op.auction_id} redemption {op.redemption_id} with another signature"
        )
    if envelope_key(op) in retired:
        return StaleEnvelopeError(
            f"envelope 0x{op.ciphertext_hash.hex()} was superseded or cancelled for auction "
            f"{op.auction_id} redemption {op.redemption_id}; it cannot become live again"
        )
    return None


def cancel_refusal(live: StoredBid | None, op: CancelBid) -> StoreError | None:
    """Why a cancel cannot apply to the pair's live bid, or None if it can."""
    if live is None or live.controller != op.controller:  # only its controller may cancel
        return NoLiveBidError(
            f"no live bid of this controller for auction {op.auction_id} "
            f"redemption {op.redemption_id}"
        )
    if live.ciphertext_hash != op.ciphertext_hash:
        return StaleCancelError(
            f"cancel names 0x{op.ciphertext_hash.hex()}, "
            f"the live bid is 0x{live.ciphertext_hash.hex()}"
        )
    return None


def cancelled(live: StoredBid, op: CancelBid, sequence: int) -> StoredBid:
    """The live bid once ``op`` cancelled it, the cancel taking ``sequence``."""
    return replace(
        live,
        status=BidStatus.CANCELLED,
        cancel_signature=op.signature,
        cancel_sequence=sequence,
        cancelled_at=op.received_at,
    )


def pick_latest(rows: Sequence[StoredBid]) -> StoredBid | None:
    """Of a pair's live row and its last row by sequence (a ``latest`` read, in any order,
    possibly the same row twice): the live one, else the last."""
    live = [bid for bid in rows if bid.status is BidStatus.LIVE]
    if live:
        return live[0]
    return max(rows, key=lambda bid: bid.sequence, default=None)


# --- whole-batch planning ---------------------------------------------------------------

Pair = tuple[int, int]  # (auction_id, redemption_id)
EnvelopeKey = tuple[int, int, bytes]  # (auction_id, redemption_id, ciphertext_hash)


def envelope_key(item: PutBid | StoredBid) -> EnvelopeKey:
    """The (auction, redemption, ciphertext hash) an envelope is known by within its pair."""
    return (item.auction_id, item.redemption_id, item.ciphertext_hash)


def stale_lookups(ops: Sequence[Operation]) -> list[EnvelopeKey]:
    """The distinct envelopes the batch's puts post, sorted: the only retired rows a batch
    needs to read (``plan_batch``'s ``retired``)."""
    return sorted({envelope_key(op) for op in ops if isinstance(op, PutBid)})


@dataclass(slots=True)
class NewRow:
    """A row a batch inserts; its status is final (a later op of the batch may change it)."""

    bid: StoredBid

    def values(self, redemption_id: Callable[[int], object]) -> tuple[object, ...]:
        """The ``bids`` columns in schema order, the redemption id encoded for the backend."""
        bid = self.bid
        return (
            bid.auction_id,
            redemption_id(bid.redemption_id),
            bid.controller,
            bid.ciphertext,
            bid.ciphertext_hash,
            bid.signature,
            bid.sequence,
            bid.received_at,
            bid.status.value,
            bid.cancel_signature,
            bid.cancelled_at,
            bid.cancel_sequence,
        )


@dataclass(frozen=True, slots=True)
class Cancellation:
    """A cancel of a row stored before the batch: the ``UPDATE`` it needs."""

    row_id: Hashable
    signature: bytes
    cancelled_at: int
    sequence: int  # the cancel's own, from the auction's counter


@dataclass(slots=True)
class BatchPlan:
    """What a batch of operations does, computed in memory, written with a few statements.

    ``superseded`` and ``cancelled`` name rows that were live before the batch (by the
    backend's row id); apply them before ``inserts`` (the one-live-bid index).
    """

    results: list[Result | StoreError] = field(default_factory=list)
    inserts: list[NewRow] = field(default_factory=list)
    superseded: list[Hashable] = field(default_factory=list)
    cancelled: list[Cancellation] = field(default_factory=list)
    last_sequence: dict[int, int] = field(default_factory=dict)  # only auctions that moved


def redemptions_by_auction(ops: Sequence[Operation]) -> dict[int, list[int]]:
    """The redemption ids ``ops`` touch, per auction, ascending (the order rows are locked)."""
    by_auction: dict[int, set[int]] = {}
    for op in ops:
        by_auction.setdefault(op.auction_id, set()).add(op.redemption_id)
    return {a: sorted(ids) for a, ids in sorted(by_auction.items())}


# Where a pair's live row is: ("db", row id) if stored before the batch, ("new", index in
# the plan's inserts) if this batch inserted it.
_Where = tuple[str, Hashable]


def plan_batch(
    ops: Sequence[Operation],
    live: Mapping[Pair, tuple[Hashable, StoredBid]],
    last_sequence: Mapping[int, int],
    retired: Set[EnvelopeKey] = frozenset(),
    frozen: Set[int] = frozenset(),
) -> BatchPlan:
    """Apply ``ops`` in order to the pairs' ``live`` rows (id, bid) before the batch.

    The same rules as one operation at a time (``put_refusal``, ``put_outcome``,
    ``cancel_refusal``), so a batch equals its operations applied one by one: a later
    operation sees what an earlier one of the same batch did (an envelope it superseded or
    cancelled is stale for the rest of the batch). ``last_sequence`` is each auction's
    counter before the batch; a new bid and a cancel each take the next number.
    ``retired`` names the superseded and cancelled rows stored before the batch, at least
    those of ``stale_lookups(ops)``. Every operation on an auction in ``frozen`` (read
    under the lock that orders the auction's writes) is refused with
    ``AuctionFrozenError``.
    """
    plan = BatchPlan()
    counters = dict(last_sequence)
    gone = set(retired)
    current: dict[Pair, tuple[_Where, StoredBid]] = {
        pair: (("db", rid), bid) for pair, (rid, bid) in live.items()
    }
    for op in ops:
        if op.auction_id in frozen:
            plan.results.append(
                AuctionFrozenError(f"the book of auction {op.auction_id} is frozen")
            )
            continue
        pair = (op.auction_id, op.redemption_id)
        where, before = current.get(pair, (None, None))
        if isinstance(op, PutBid):
            refusal = put_refusal(before, op, gone)
            if refusal is not None:
                plan.results.append(refusal)
                continue
            outcome = put_outcome(before, op)
            if outcome is PutOutcome.IDENTICAL:
                assert before is not None  # only a live bid can be identical
                plan.results.append(PutResult(outcome, before))
                continue
            if where is not None:
                assert before is not None
                _retire(plan, where)
                gone.add(envelope_key(before))
            sequence = counters.get(op.auction_id, 0) + 1
            counters[op.auction_id] = sequence
            bid = new_live_bid(op, sequence)
            current[pair] = (("new", len(plan.inserts)), bid)
            plan.inserts.append(NewRow(bid))
            plan.results.append(PutResult(outcome, bid))
        else:
            refusal = cancel_refusal(before, op)
            if refusal is not None:
                plan.results.append(refusal)
                continue
            assert where is not None and before is not None  # a missing bid is refused
            sequence = counters.get(op.auction_id, 0) + 1
            counters[op.auction_id] = sequence
            bid = cancelled(before, op, sequence)
            _retire(plan, where, bid)
            gone.add(envelope_key(bid))
            del current[pair]
            plan.results.append(CancelResult(bid))
    plan.last_sequence = {a: n for a, n in counters.items() if n != last_sequence.get(a, 0)}
    return plan


def _retire(plan: BatchPlan, where: _Where, cancelled_bid: StoredBid | None = None) -> None:
    """Mark the pair's live row (stored or new in this batch) superseded, or cancelled as
    ``cancelled_bid`` (the row with its cancel fields) says."""
    kind, ref = where
    if kind == "db":
        if cancelled_bid is None:
            plan.superseded.append(ref)
        else:
            assert cancelled_bid.cancel_signature is not None
            assert cancelled_bid.cancelled_at is not None
            assert cancelled_bid.cancel_sequence is not None
            plan.cancelled.append(
                Cancellation(
                    ref,
                    cancelled_bid.cancel_signature,
                    cancelled_bid.cancelled_at,
                    cancelled_bid.cancel_sequence,
                )
            )
        return
    assert isinstance(ref, int)
    row = plan.inserts[ref]
    if cancelled_bid is None:
        row.bid = replace(row.bid, status=BidStatus.SUPERSEDED)
    else:
        row.bid = cancelled_bid
