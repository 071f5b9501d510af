"""The freeze fence (DESIGN revision 2): once an auction is frozen no write to it commits.

Run against both backends, and against two store instances on one database ("replicas":
two SqliteBidStore on one file, two PostgreSQL pools on one schema).
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest
from psycopg import sql

from clearing.store import postgres as pg_module
from clearing.store import sqlite as sqlite_module
from clearing.store.base import (
    AuctionFrozenError,
    BidStore,
    CancelResult,
    Freeze,
    Operation,
    PutOutcome,
    PutResult,
    Result,
    StoreError,
)
from clearing.store.sqlite import SqliteBidStore
from tests.store.conftest import cancel_op, make_pg_store, put_op, run_threads

A = 1_767_225_600
B = A + 30 * 86_400


@dataclass
class Replicas:
    """Two store instances on one database and the backend module (for hooks)."""

    one: BidStore
    two: BidStore
    module: ModuleType


@pytest.fixture(params=["sqlite", "postgres"])
def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Replicas]:
    """Two instances of each backend sharing one database, migrated."""
    if request.param == "sqlite":
        one: BidStore = SqliteBidStore(tmp_path / "bids.db")
        two: BidStore = SqliteBidStore(tmp_path / "bids.db")
        module: ModuleType = sqlite_module
    else:
        dsn, schema = request.getfixturevalue("pg_dsn"), request.getfixturevalue("pg_schema")
        one, two, module = make_pg_store(dsn, schema), make_pg_store(dsn, schema), pg_module
    one.migrate()
    two.migrate()
    yield Replicas(one, two, module)
    one.close()
    two.close()


def test_a_frozen_auction_refuses_every_write(store: BidStore) -> None:
    assert store.frozen(A) is None
    [a1, a2] = store.apply([put_op(A, 1, "a1"), put_op(A, 2, "a2")])
    assert isinstance(a1, PutResult) and isinstance(a2, PutResult)
    book = store.live_bids(A)

    record = store.freeze(A, 5_000)
    assert record == Freeze(auction_id=A, frozen_at=5_000, last_sequence=2)
    assert store.frozen(A) == record
    assert store.frozen(B) is None

    results = store.apply(
        [
            put_op(A, 3, "new"),  # a new bid
            put_op(B, 1, "other"),  # another auction: still applies
            put_op(A, 1, "a1-v2"),  # a replacement
            cancel_op(A, 2, a2.bid.ciphertext_hash),  # a cancel
            put_op(A, 1, "a1"),  # even the identical resubmission
            put_op(B, 2, "other-2"),
        ]
    )
    kinds = [type(r).__name__ for r in results]
    assert kinds == [
        "AuctionFrozenError",
        "PutResult",
        "AuctionFrozenError",
        "AuctionFrozenError",
        "AuctionFrozenError",
        "PutResult",
    ]
    refusal = results[0]
    assert isinstance(refusal, AuctionFrozenError) and refusal.code == "auction_closed"
    assert [r.bid.sequence for r in results if isinstance(r, PutResult)] == [1, 2]  # auction B
    assert store.live_bids(A) == book
    assert store.history(A, 1) == [a1.bid] and store.history(A, 3) == []

    # idempotent: the first record, whatever the second call says
    assert store.freeze(A, 9_999) == record
    assert store.frozen(A) == record
    # an auction nobody wrote to freezes at 0; one that moved, at its counter
    assert store.freeze(B + 1, 7) == Freeze(B + 1, 7, 0)
    [late] = store.apply([put_op(B + 1, 1, "late")])
    assert isinstance(late, AuctionFrozenError)
    assert store.freeze(B, 8) == Freeze(B, 8, 2)


@pytest.mark.parametrize(
    ("auction_id", "frozen_at"), [(True, 1), (A, False), (-1, 1), (A, -1), (2**63, 1), (A, 1.0)]
)
def test_freeze_arguments_are_checked(store: BidStore, auction_id: Any, frozen_at: Any) -> None:
    with pytest.raises(ValueError):
        store.freeze(auction_id, frozen_at)


def test_the_freeze_is_seen_by_every_replica(replicas: Replicas) -> None:
    replicas.one.apply([put_op(A, 1, "a")])
    record = replicas.two.freeze(A, 5_000)
    assert replicas.one.frozen(A) == record == Freeze(A, 5_000, 1)
    [refused] = replicas.one.apply([put_op(A, 2, "b")])
    assert isinstance(refused, AuctionFrozenError)
    assert replicas.one.freeze(A, 6_000) == record


@dataclass
class _Applied:
    started: float
    ended: float
    results: list[Result | StoreError]


@dataclass
class _Worker:
    store: BidStore
    auction: int
    index: int
    applied: list[_Applied] = field(default_factory=list)

    def run(self) -> None:
        """Post new bids (and cancel some own bids) until refused, then once more."""
        rnd = random.Random(self.index)
        live: dict[int, bytes] = {}  # own live bids: redemption id -> ciphertext hash
        counter = 0
        refused_once = False
        while True:
            ops: list[Operation] = []
            for _ in range(rnd.randint(1, 12)):
                counter += 1
                ops.append(put_op(self.auction, self.index * 1_000_000 + counter, f"{counter}"))
            if live and rnd.random() < 0.3:
                rid = rnd.choice(sorted(live))
                ops.append(cancel_op(self.auction, rid, live.pop(rid)))
            started = time.monotonic()
            results = self.store.apply(ops)
            self.applied.append(_Applied(started, time.monotonic(), results))
            for result in results:
                if isinstance(result, PutResult):
                    live[result.bid.redemption_id] = result.bid.ciphertext_hash
            if any(isinstance(r, AuctionFrozenError) for r in results):
                if refused_once:
                    return
                refused_once = True  # one more batch after the first refusal


def test_freeze_is_atomic_with_concurrent_intake(replicas: Replicas) -> None:
    """Threads on two replicas post bids (and cancels) while a third freezes: every write
    that was acknowledged is within the freeze and in the frozen book, every later one
    was refused, and nothing committed after it."""
    for round_ in range(4):
        auction = A + round_
        workers = [
            _Worker(replicas.one if i % 2 == 0 else replicas.two, auction, i + 1) for i in range(4)
        ]
        frozen: list[tuple[Freeze, float]] = []

        freezer = replicas.two if round_ % 2 else replicas.one

        def freeze(
            auction: int = auction,
            freezer: BidStore = freezer,
            out: list[tuple[Freeze, float]] = frozen,
        ) -> None:
            time.sleep(random.uniform(0.02, 0.12))
            record = freezer.freeze(auction, 5_000)
            out.append((record, time.monotonic()))

        run_threads([w.run for w in workers] + [freeze], together=False, timeout=120)
        [(record, freeze_returned)] = frozen
        assert record.last_sequence > 0  # intake ran before the freeze ...
        refused = [a for w in workers for a in w.applied if isinstance(a.results[0], StoreError)]
        assert refused  # ... and was refused after it

        issued: list[int] = []
        expected_book: dict[int, int] = {}  # redemption id -> sequence
        for applied in (a for w in workers for a in w.applied):
            # a batch of one auction is on one side of the freeze, whole
            frozen_out = [isinstance(r, AuctionFrozenError) for r in applied.results]
            assert all(frozen_out) or not any(frozen_out), applied.results
            if applied.started > freeze_returned:
                assert all(frozen_out)  # began after the freeze returned: refused
            for result in applied.results:
                if isinstance(result, PutResult):
                    assert result.outcome is PutOutcome.CREATED
                    issued.append(result.bid.sequence)
                    expected_book[result.bid.redemption_id] = result.bid.sequence
                elif isinstance(result, CancelResult):
                    assert result.bid.cancel_sequence is not None
                    issued.append(result.bid.cancel_sequence)
                    del expected_book[result.bid.redemption_id]
        # every acknowledged write is within the freeze; together they are all it counts
        assert sorted(issued) == list(range(1, record.last_sequence + 1))
        for store in (replicas.one, replicas.two):
            book = store.live_bids(auction)
            assert {b.redemption_id: b.sequence for b in book} == expected_book
            assert store.frozen(auction) == record
        assert replicas.two.freeze(auction, 1) == record


def test_freeze_waits_for_a_batch_in_flight(
    replicas: Replicas, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch holding the writer lock (SQLite) or the counter row (PostgreSQL) when the
    freeze is called: the freeze waits, and its last_sequence counts the batch."""
    replicas.one.apply([put_op(A, 1, "before")])
    entered, release = threading.Event(), threading.Event()
    real_plan = replicas.module.plan_batch

    def held_plan(*args: Any, **kwargs: Any) -> Any:
        entered.set()  # inside the batch's transaction, its locks taken
        assert release.wait(30)
        return real_plan(*args, **kwargs)

    monkeypatch.setattr(replicas.module, "plan_batch", held_plan)
    batch: list[Result | StoreError] = []
    in_flight = threading.Thread(
        target=lambda: batch.extend(
            replicas.one.apply([put_op(A, 2, "in-flight"), put_op(A, 3, "in-flight-2")])
        )
    )
    in_flight.start()
    assert entered.wait(30)
    monkeypatch.setattr(replicas.module, "plan_batch", real_plan)  # only that batch is held

    records: list[Freeze] = []
    freezer = threading.Thread(target=lambda: records.append(replicas.two.freeze(A, 5_000)))
    freezer.start()
    freezer.join(0.5)
    assert freezer.is_alive() and not records  # the freeze waits for the batch
    release.set()
    in_flight.join(30)
    freezer.join(30)
    assert [type(r) for r in batch] == [PutResult, PutResult]
    assert records == [Freeze(A, 5_000, 3)]  # the in-flight batch is inside the freeze
    assert [b.redemption_id for b in replicas.two.live_bids(A)] == [1, 2, 3]
    [late] = replicas.one.apply([put_op(A, 4, "late")])
    assert isinstance(late, AuctionFrozenError)


def test_postgres_freeze_waits_for_the_counter_row_lock(pg_dsn: str, pg_schema: str) -> None:
    """A transaction holding the auction's counter row (as every batch does first) blocks
    the freeze; a batch queued behind it lands on one side of the freeze, whole."""
    one, two = make_pg_store(pg_dsn, pg_schema), make_pg_store(pg_dsn, pg_schema)
    try:
        one.migrate()
        one.apply([put_op(A, 1, "a")])
        records: list[Freeze] = []
        batch: list[Result | StoreError] = []
        with psycopg.connect(pg_dsn) as holder:  # not autocommit: BEGIN on first statement
            holder.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg_schema)))
            holder.execute(
                "SELECT last_sequence FROM auction_sequences WHERE auction_id = %s FOR UPDATE",
                (A,),
            )
            freezer = threading.Thread(target=lambda: records.append(two.freeze(A, 5_000)))
            writer = threading.Thread(target=lambda: batch.extend(one.apply([put_op(A, 2, "b")])))
            freezer.start()
            writer.start()
            freezer.join(0.5)
            writer.join(0.1)
            assert freezer.is_alive() and writer.is_alive()  # both wait for the row
            assert records == [] and batch == []
            holder.commit()  # release
        freezer.join(30)
        writer.join(30)
        [record] = records
        [result] = batch
        if isinstance(result, PutResult):  # the batch got the row first: counted
            assert result.bid.sequence == 2 and record == Freeze(A, 5_000, 2)
        else:  # the freeze got it first: the batch was refused
            assert isinstance(result, AuctionFrozenError) and record == Freeze(A, 5_000, 1)
        assert len(one.live_bids(A)) == record.last_sequence
    finally:
        one.close()
        two.close()


def test_sqlite_freeze_waits_for_another_writers_transaction(tmp_path: Path) -> None:
    """A writer that holds SQLite's write lock (without the flock) also holds off a freeze."""
    store = SqliteBidStore(tmp_path / "bids.db")
    store.migrate()
    store.apply([put_op(A, 1, "a")])
    records: list[Freeze] = []
    with contextlib.closing(sqlite3.connect(tmp_path / "bids.db", isolation_level=None)) as peer:
        peer.execute("BEGIN IMMEDIATE")
        peer.execute("UPDATE auction_sequences SET last_sequence = 7 WHERE auction_id = ?", (A,))
        freezer = threading.Thread(target=lambda: records.append(store.freeze(A, 5_000)))
        freezer.start()
        freezer.join(0.5)
        assert freezer.is_alive() and not records
        peer.execute("COMMIT")
    freezer.join(30)
    assert records == [Freeze(A, 5_000, 7)]  # it read the counter after the peer's commit
    store.close()
