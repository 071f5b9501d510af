"""The BidStore contract, run against both backends (see the ``store`` fixture)."""

from __future__ import annotations

import dataclasses

import pytest

from clearing.store._common import load_migrations
from clearing.store.base import (
    BidStatus,
    BidStore,
    CancelResult,
    NoLiveBidError,
    PutOutcome,
    PutResult,
    StaleCancelError,
    StaleEnvelopeError,
    StoreUnavailableError,
)
from tests.store.conftest import cancel_op, put_op

A = 1_767_225_600
B = A + 30 * 86_400


def put(store: BidStore, *args: object, **kwargs: object) -> PutResult:
    [result] = store.apply([put_op(*args, **kwargs)])  # type: ignore[arg-type]
    assert isinstance(result, PutResult)
    return result


def test_create(store: BidStore) -> None:
    op = put_op(A, 7, "a")
    result = put(store, A, 7, "a")
    assert result.outcome is PutOutcome.CREATED
    bid = result.bid
    assert (bid.auction_id, bid.redemption_id, bid.sequence) == (A, 7, 1)
    assert (bid.ciphertext, bid.ciphertext_hash, bid.signature) == (
        op.ciphertext,
        op.ciphertext_hash,
        op.signature,
    )
    assert bid.controller == op.controller and bid.received_at == op.received_at
    assert bid.status is BidStatus.LIVE and bid.cancel_signature is None
    assert store.live_bid(A, 7) == bid
    assert store.history(A, 7) == [bid]
    assert store.live_bid(A, 8) is None and store.live_bid(B, 7) is None


def test_replace_keeps_old_as_superseded(store: BidStore) -> None:
    first = put(store, A, 7, "a").bid
    second = put(store, A, 7, "b", received_at=1_001)
    third = put(store, A, 7, "c", received_at=1_002)
    assert second.outcome is PutOutcome.REPLACED and third.outcome is PutOutcome.REPLACED
    assert first.sequence < second.bid.sequence < third.bid.sequence
    history = store.history(A, 7)
    assert [b.sequence for b in history] == [1, 2, 3]
    assert [b.status for b in history] == [
        BidStatus.SUPERSEDED,
        BidStatus.SUPERSEDED,
        BidStatus.LIVE,
    ]
    assert [b.ciphertext_hash for b in history] == [
        first.ciphertext_hash,
        second.bid.ciphertext_hash,
        third.bid.ciphertext_hash,
    ]
    assert store.live_bid(A, 7) == third.bid
    assert store.live_bids(A) == [third.bid]


def test_identical_resubmission_writes_nothing(store: BidStore) -> None:
    first = put(store, A, 7, "a").bid
    again = put(store, A, 7, "a", received_at=5_000)  # a later retry of the same envelope
    assert again.outcome is PutOutcome.IDENTICAL
    assert again.bid == first  # the stored row, original received_at and sequence
    assert store.history(A, 7) == [first]
    assert put(store, A, 8, "x").bid.sequence == 2  # no sequence was consumed


def test_live_ciphertext_under_another_signature_is_stale(store: BidStore) -> None:
    first = put_op(A, 7, "a")
    resigned = dataclasses.replace(first, signature=b"\x09" * 65)
    r1, r2, r3 = store.apply([first, resigned, dataclasses.replace(first, received_at=9)])
    assert isinstance(r1, PutResult) and r1.outcome is PutOutcome.CREATED
    assert isinstance(r2, StaleEnvelopeError) and r2.code == "stale_envelope"
    assert "already live" in r2.detail and "another signature" in r2.detail
    assert isinstance(r3, PutResult) and r3.outcome is PutOutcome.IDENTICAL  # same signature
    [r4] = store.apply([resigned])  # in a later batch too
    assert isinstance(r4, StaleEnvelopeError)
    assert store.history(A, 7) == [r1.bid]
    assert put(store, A, 8, "b").bid.sequence == 2  # the refusals consumed nothing


def test_superseded_envelope_never_comes_back(store: BidStore) -> None:
    a = put(store, A, 7, "a").bid
    b = put(store, A, 7, "b").bid
    again = put_op(A, 7, "a", received_at=3_000)
    for op in (again, dataclasses.replace(again, signature=b"\x07" * 65)):
        [result] = store.apply([op])
        assert isinstance(result, StaleEnvelopeError), result
        assert "superseded or cancelled" in result.detail
    assert store.live_bid(A, 7) == b
    assert [x.ciphertext_hash for x in store.history(A, 7)] == [
        a.ciphertext_hash,
        b.ciphertext_hash,
    ]
    # the same ciphertext is another envelope for another pair or auction
    assert put(store, A, 8, "a").outcome is PutOutcome.CREATED
    assert put(store, B, 7, "a").outcome is PutOutcome.CREATED
    assert put(store, A, 7, "c").bid.sequence == 4


def test_cancelled_envelope_never_comes_back(store: BidStore) -> None:
    a = put(store, A, 7, "a").bid
    [cancel] = store.apply([cancel_op(A, 7, a.ciphertext_hash)])
    assert isinstance(cancel, CancelResult)
    [result] = store.apply([put_op(A, 7, "a")])
    assert isinstance(result, StaleEnvelopeError)
    assert store.live_bid(A, 7) is None
    assert store.history(A, 7) == [cancel.bid]
    fresh = put(store, A, 7, "b")
    assert fresh.outcome is PutOutcome.CREATED and fresh.bid.sequence == 3


def test_no_resurrection_within_one_batch(store: BidStore) -> None:
    a, b, c = put_op(A, 7, "a"), put_op(A, 7, "b"), put_op(A, 8, "c")
    results = store.apply(
        [
            a,
            b,  # supersedes a
            a,  # refused: a was superseded earlier in this batch
            c,
            cancel_op(A, 8, c.ciphertext_hash),
            c,  # refused: c was cancelled earlier in this batch
            put_op(A, 9, "a"),  # another pair: a fresh envelope
        ]
    )
    assert [getattr(r, "outcome", type(r).__name__) for r in results] == [
        PutOutcome.CREATED,
        PutOutcome.REPLACED,
        "StaleEnvelopeError",
        PutOutcome.CREATED,
        "CancelResult",
        "StaleEnvelopeError",
        PutOutcome.CREATED,
    ]
    live = store.live_bid(A, 7)
    assert live is not None and live.ciphertext_hash == b.ciphertext_hash
    assert store.live_bid(A, 8) is None
    assert [x.sequence for x in store.history(A, 7)] == [1, 2]
    assert put(store, A, 10, "d").bid.sequence == 6  # 1, 2, 3 (c), 4 (its cancel), 5


def test_cancel(store: BidStore) -> None:
    bid = put(store, A, 7, "a").bid
    op = cancel_op(A, 7, bid.ciphertext_hash)
    [result] = store.apply([op])
    assert isinstance(result, CancelResult)
    assert result.bid.status is BidStatus.CANCELLED
    assert result.bid.cancel_signature == op.signature
    assert result.bid.sequence == bid.sequence
    # the cancel's own receipt fields: the next sequence number and the cancel's time
    assert (result.bid.cancel_sequence, result.bid.cancelled_at) == (2, op.received_at)
    assert store.live_bid(A, 7) is None
    assert store.live_bids(A) == []
    assert store.history(A, 7) == [result.bid]
    # A new envelope after a cancel is a fresh bid, after the cancel's sequence.
    again = put(store, A, 7, "b")
    assert again.outcome is PutOutcome.CREATED and again.bid.sequence == 3
    assert [b.status for b in store.history(A, 7)] == [BidStatus.CANCELLED, BidStatus.LIVE]


def test_cancel_without_live_bid(store: BidStore) -> None:
    [result] = store.apply([cancel_op(A, 7, b"\x00" * 32)])
    assert isinstance(result, NoLiveBidError) and result.code == "not_found"
    bid = put(store, A, 7, "a").bid
    ok, twice = store.apply([cancel_op(A, 7, bid.ciphertext_hash)] * 2)
    assert isinstance(ok, CancelResult)
    assert isinstance(twice, NoLiveBidError)


def test_only_the_controller_of_the_live_bid_can_cancel_it(store: BidStore) -> None:
    from dataclasses import replace

    bid = put(store, A, 7, "a").bid
    stranger = replace(cancel_op(A, 7, bid.ciphertext_hash), controller=b"\x99" * 20)
    [result] = store.apply([stranger])
    assert isinstance(result, NoLiveBidError) and result.code == "not_found"
    assert store.live_bid(A, 7) == bid
    [ok] = store.apply([cancel_op(A, 7, bid.ciphertext_hash)])
    assert isinstance(ok, CancelResult)


def test_stale_cancel(store: BidStore) -> None:
    old = put(store, A, 7, "a").bid
    new = put(store, A, 7, "b").bid
    [result] = store.apply([cancel_op(A, 7, old.ciphertext_hash)])
    assert isinstance(result, StaleCancelError) and result.code == "stale_cancel"
    assert store.live_bid(A, 7) == new
    assert [b.status for b in store.history(A, 7)] == [BidStatus.SUPERSEDED, BidStatus.LIVE]


def test_live_bids_in_numeric_redemption_order(store: BidStore) -> None:
    ids = [2**255 + 1, 5, 2**64, 2**64 - 1, 256, 0, 2**256 - 1, 1, 2**63, 10**70, 2**63 - 1]
    store.apply([put_op(A, rid, f"r{rid}") for rid in ids])
    # Not in the book: superseded, cancelled, or another auction.
    store.apply([put_op(A, 5, "r5-new")])
    cancelled = put(store, A, 2**100, "gone").bid
    store.apply([cancel_op(A, 2**100, cancelled.ciphertext_hash), put_op(B, 3, "other")])
    book = store.live_bids(A)
    assert [b.redemption_id for b in book] == sorted(ids)
    assert all(b.status is BidStatus.LIVE for b in book)
    assert next(b for b in book if b.redemption_id == 5).ciphertext.endswith(b"r5-new")
    assert store.live_bid(A, 2**256 - 1) is not None
    assert len(store.history(A, 2**256 - 1)) == 1
    assert [b.redemption_id for b in store.live_bids(B)] == [3]


def test_sequences_per_auction(store: BidStore) -> None:
    seqs: dict[int, list[int]] = {A: [], B: []}
    for round_ in range(5):
        batch = [put_op(a, rid, f"{a}-{rid}-{round_}") for rid in range(4) for a in (A, B)]
        for result in store.apply(batch):
            assert isinstance(result, PutResult)
            seqs[result.bid.auction_id].append(result.bid.sequence)
    store.apply([put_op(B, 99, "lone")])
    assert seqs[A] == list(range(1, 21))
    assert seqs[B] == list(range(1, 21))
    assert store.live_bid(B, 99).sequence == 21  # type: ignore[union-attr]
    assert put(store, A, 99, "next").bid.sequence == 21


def test_batch_with_refusals_commits_the_rest(store: BidStore) -> None:
    live = put(store, A, 1, "one").bid
    put(store, A, 1, "one-v2")
    results = store.apply(
        [
            put_op(A, 2, "two"),
            cancel_op(A, 3, b"\x03" * 32),  # nothing live
            put_op(A, 4, "four"),
            cancel_op(A, 1, live.ciphertext_hash),  # stale
            put_op(A, 5, "five"),
        ]
    )
    kinds = [type(r).__name__ for r in results]
    assert kinds == ["PutResult", "NoLiveBidError", "PutResult", "StaleCancelError", "PutResult"]
    assert [r.bid.sequence for r in results if isinstance(r, PutResult)] == [3, 4, 5]
    assert [b.redemption_id for b in store.live_bids(A)] == [1, 2, 4, 5]


def test_batch_sees_its_own_writes(store: BidStore) -> None:
    a, b = put_op(A, 7, "a"), put_op(A, 7, "b")
    results = store.apply(
        [a, a, b, cancel_op(A, 7, a.ciphertext_hash), cancel_op(A, 7, b.ciphertext_hash)]
    )
    assert [getattr(r, "outcome", type(r).__name__) for r in results] == [
        PutOutcome.CREATED,
        PutOutcome.IDENTICAL,
        PutOutcome.REPLACED,
        "StaleCancelError",
        "CancelResult",
    ]
    assert [x.status for x in store.history(A, 7)] == [BidStatus.SUPERSEDED, BidStatus.CANCELLED]
    assert store.apply([]) == []


def test_invalid_operations_are_rejected_before_any_write(store: BidStore) -> None:
    for bad in (
        put_op(2**63, 1, "x"),
        put_op(A, 2**256, "x"),
        put_op(A, -1, "x"),
        put_op(A, True, "x"),
        dataclasses.replace(put_op(A, 1, "x"), received_at=True),
    ):
        with pytest.raises(ValueError):
            store.apply([put_op(A, 1, "fine"), bad])
    assert store.live_bids(A) == []


def test_claim_artifact_stores_only_the_first(store: BidStore) -> None:
    assert store.claim_artifact(A, "lease", b"first") is True
    assert store.claim_artifact(A, "lease", b"second") is False
    assert store.get_artifact(A, "lease") == b"first"
    assert store.claim_artifact(B, "lease", b"other auction") is True
    store.put_artifact(A, "result", b"r")
    assert store.claim_artifact(A, "result", b"not this") is False
    assert store.get_artifact(A, "result") == b"r"


def test_artifacts_round_trip(store: BidStore) -> None:
    assert store.get_artifact(A, "result") is None
    body = bytes(range(256)) * 4_000  # ~1 MB, every byte value
    store.put_artifact(A, "result", body)
    store.put_artifact(A, "book", b"{}")
    store.put_artifact(B, "result", b"other")
    assert store.get_artifact(A, "result") == body
    store.put_artifact(A, "result", b"replaced")
    assert store.get_artifact(A, "result") == b"replaced"
    assert store.get_artifact(A, "book") == b"{}"
    assert store.get_artifact(B, "result") == b"other"
    store.put_artifact(A, "empty", b"")
    assert store.get_artifact(A, "empty") == b""


def test_migrate_twice_is_a_no_op(store: BidStore) -> None:
    bid = put(store, A, 7, "a").bid
    store.put_artifact(A, "key", b"k")
    store.migrate()
    store.migrate()
    assert store.live_bid(A, 7) == bid
    assert store.get_artifact(A, "key") == b"k"
    assert put(store, A, 8, "b").bid.sequence == 2


def test_migrations_are_packaged() -> None:
    for backend in ("sqlite", "postgres"):
        migrations = load_migrations(backend)
        assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
        assert migrations[0].name == "0001_init.sql"


def test_ping_and_close(store: BidStore) -> None:
    store.ping()
    store.close()
    with pytest.raises(StoreUnavailableError):
        store.ping()
    with pytest.raises(StoreUnavailableError):
        store.apply([put_op(A, 1, "late")])
    store.close()  # idempotent


def test_cancels_take_sequences_from_the_bids_counter(store: BidStore) -> None:
    """Bid and cancel receipts share one per-auction sequence: unique and gapless."""
    a1, b1 = put(store, A, 1, "a1").bid, put(store, A, 2, "b1").bid
    results = store.apply(
        [
            cancel_op(A, 1, a1.ciphertext_hash),  # 3
            put_op(A, 3, "c1"),  # 4
            cancel_op(A, 9, b"\x09" * 32),  # refused: consumes nothing
            put_op(A, 1, "a2"),  # 5
            cancel_op(A, 1, put_op(A, 1, "a2").ciphertext_hash),  # 6: cancels a row of this batch
            put_op(B, 1, "other"),  # 1 in auction B
            cancel_op(A, 2, b1.ciphertext_hash),  # 7
        ]
    )
    kinds = [type(r).__name__ for r in results]
    assert kinds == [
        "CancelResult",
        "PutResult",
        "NoLiveBidError",
        "PutResult",
        "CancelResult",
        "PutResult",
        "CancelResult",
    ]
    issued = [
        r.bid.cancel_sequence if isinstance(r, CancelResult) else r.bid.sequence
        for r in results
        if isinstance(r, PutResult | CancelResult) and r.bid.auction_id == A
    ]
    assert issued == [3, 4, 5, 6, 7]
    assert put(store, A, 4, "d").bid.sequence == 8
    assert put(store, B, 2, "e").bid.sequence == 2
    # every read returns the cancel fields of cancelled rows, None for the others
    history = store.history(A, 1)
    assert [(b.status, b.sequence, b.cancel_sequence) for b in history] == [
        (BidStatus.CANCELLED, 1, 3),
        (BidStatus.CANCELLED, 5, 6),
    ]
    assert all(b.cancelled_at == 2_000 for b in history)
    for result in results:
        if isinstance(result, CancelResult):
            bid = result.bid
            assert bid in store.history(bid.auction_id, bid.redemption_id)
    live = store.live_bid(A, 3)
    assert live is not None and (live.cancel_sequence, live.cancelled_at) == (None, None)


def test_latest(store: BidStore) -> None:
    assert store.latest(A, 7) is None
    first = put(store, A, 7, "a").bid
    assert store.latest(A, 7) == first
    second = put(store, A, 7, "b").bid
    assert store.latest(A, 7) == second  # the live bid, not the superseded one
    [cancel] = store.apply([cancel_op(A, 7, second.ciphertext_hash)])
    assert isinstance(cancel, CancelResult)
    assert store.latest(A, 7) == cancel.bid  # no live bid: the most recent row
    put(store, A, 8, "elsewhere")
    third = put(store, A, 7, "c").bid
    assert store.latest(A, 7) == third
    assert store.latest(B, 7) is None and store.latest(A, 9) is None
    top = put(store, A, 2**256 - 1, "top").bid
    assert store.latest(A, 2**256 - 1) == top


def test_retired_bids_are_the_audit_trail(store: BidStore) -> None:
    assert store.retired_bids(A) == []
    a1 = put(store, A, 1, "a1").bid
    put(store, A, 1, "a2")  # supersedes a1
    b1 = put(store, A, 2, "b1").bid
    [cancel] = store.apply([cancel_op(A, 2, b1.ciphertext_hash)])
    put(store, A, 3, "c1")  # live: not retired
    put(store, B, 1, "x1")
    put(store, B, 1, "x2")  # another auction's
    assert isinstance(cancel, CancelResult)
    retired = store.retired_bids(A)
    assert retired == [
        dataclasses.replace(a1, status=BidStatus.SUPERSEDED),
        cancel.bid,
    ]
    assert [b.sequence for b in retired] == [1, 3]
    assert [b.redemption_id for b in store.retired_bids(B)] == [1]
