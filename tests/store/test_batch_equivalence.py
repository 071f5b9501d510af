"""A batch equals its operations applied one at a time (results, rows, sequences), both stores.

Batches are planned in memory and written with multi-row statements, so every interaction
inside one batch (replace twice, put then cancel, cancel then put, identical after replace,
stale cancels, re-posts of superseded or cancelled envelopes, the live ciphertext under
another signature, two auctions, an auction frozen midway) is checked against a store that
saw one operation per call.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest

from clearing.store.base import BidStore, Operation, StoreError
from clearing.store.sqlite import SqliteBidStore
from tests.store.conftest import cancel_op, put_op

AUCTIONS = (1_767_225_600, 1_769_817_600)


def _scenario(rnd: random.Random, n: int) -> list[Operation]:
    """Random puts (some identical resubmissions) and cancels (some stale) on few pairs."""
    ops: list[Operation] = []
    seen: dict[tuple[int, int], list[str]] = {}
    for _ in range(n):
        auction, rid = rnd.choice(AUCTIONS), rnd.randrange(4)
        tags = seen.setdefault((auction, rid), [])
        if tags and rnd.random() < 0.3:
            tag = rnd.choice(tags)  # a cancel naming a current or an older envelope
            ops.append(cancel_op(auction, rid, put_op(auction, rid, tag).ciphertext_hash))
            continue
        # some re-posts: identical to the live bid, or stale (superseded or cancelled)
        tag = rnd.choice(tags) if tags and rnd.random() < 0.25 else f"{rid}-{rnd.random()}"
        tags.append(tag)
        op = put_op(auction, rid, tag, received_at=1_000 + len(ops))
        if rnd.random() < 0.1:  # an envelope's ciphertext under another signature
            op = dataclasses.replace(op, signature=bytes([rnd.randrange(4)]) * 65)
        ops.append(op)
    return ops


def _outcome(result: object) -> object:
    if isinstance(result, StoreError):
        return type(result).__name__
    return result


def _rows(store: BidStore) -> list[object]:
    return [store.history(a, rid) for a in AUCTIONS for rid in range(4)]


@pytest.mark.parametrize("seed", range(12))
def test_batches_equal_one_at_a_time(store: BidStore, tmp_path: Path, seed: int) -> None:
    """Random batches against one operation per call; most seeds freeze an auction midway
    (batches end at the freeze), after which its operations are refused in both."""
    rnd = random.Random(seed)
    ops = _scenario(rnd, 60)
    freeze_before = rnd.randint(20, 50) if seed % 3 else None  # index of the first op after
    freeze_auction = AUCTIONS[seed % 2]
    reference = SqliteBidStore(tmp_path / "reference.db")
    reference.migrate()
    try:
        expected: list[object] = []
        for i, op in enumerate(ops):
            if i == freeze_before:
                expected_freeze = reference.freeze(freeze_auction, 7_000)
            expected.append(_outcome(reference.apply([op])[0]))
        got: list[object] = []
        start = 0
        while start < len(ops):  # random batch sizes, including one batch of everything
            if start == freeze_before:
                assert store.freeze(freeze_auction, 7_000) == expected_freeze
            size = len(ops) if seed == 0 else rnd.randint(1, 25)
            if freeze_before is not None and start < freeze_before:
                size = min(size, freeze_before - start)
            got.extend(_outcome(r) for r in store.apply(ops[start : start + size]))
            start += size
        assert got == expected
        assert "StaleEnvelopeError" in expected  # the scenario exercised no resurrection
        if freeze_before is not None:
            assert "AuctionFrozenError" in expected
        assert _rows(store) == _rows(reference)
        for auction in AUCTIONS:
            assert store.live_bids(auction) == reference.live_bids(auction)
            assert store.retired_bids(auction) == reference.retired_bids(auction)
            assert store.frozen(auction) == reference.frozen(auction)
    finally:
        reference.close()
