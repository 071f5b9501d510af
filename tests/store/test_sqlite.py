"""SQLite only: pragmas, and two store instances (two processes' worth) on one file."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from clearing.store.base import BidStatus, PutOutcome, PutResult
from clearing.store.sqlite import SqliteBidStore, split_statements
from tests.store.conftest import put_op

A = 1_767_225_600


def test_wal_and_full_sync(tmp_path: Path) -> None:
    store = SqliteBidStore(tmp_path / "b.db")
    store.migrate()
    writer = store._writer  # the connection that commits
    assert writer.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert writer.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    store.close()
    conn = sqlite3.connect(tmp_path / "b.db")
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)  # persistent
    conn.close()


def test_two_instances_share_one_file(tmp_path: Path) -> None:
    stores = [SqliteBidStore(tmp_path / "b.db") for _ in range(2)]
    for s in stores:
        s.migrate()
    sequences: list[int] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        for i in range(100):
            for r in stores[index % 2].apply(
                [put_op(A, 42, f"{index}-{i}"), put_op(A, 1_000 + i, "x")]
            ):
                assert isinstance(r, PutResult)
                if r.outcome is PutOutcome.IDENTICAL:
                    continue
                with lock:
                    sequences.append(r.bid.sequence)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 400 replacements of pair 42, plus 100 distinct pairs of which 300 puts were identical.
    assert sorted(sequences) == list(range(1, 501))
    history = stores[1].history(A, 42)
    assert len(history) == 400
    assert [b.status for b in history].count(BidStatus.LIVE) == 1
    assert history[-1].status is BidStatus.LIVE
    for s in stores:
        s.close()


def test_split_statements() -> None:
    script = "-- head\nCREATE TABLE a (x TEXT DEFAULT ';');\n\nCREATE INDEX i ON a (x);\n-- tail\n"
    assert split_statements(script) == [
        "-- head\nCREATE TABLE a (x TEXT DEFAULT ';');",
        "CREATE INDEX i ON a (x);",
    ]


def test_a_stuck_peer_writer_gives_store_unavailable_not_a_hang(tmp_path: Path) -> None:
    import fcntl
    import os
    import time

    from clearing.store.base import StoreUnavailableError

    store = SqliteBidStore(tmp_path / "bids.db", busy_timeout=0.3)
    store.migrate()
    peer = os.open(str(tmp_path / "bids.db") + "-writer.lock", os.O_RDWR)
    fcntl.flock(peer, fcntl.LOCK_EX)  # another process's writer, stopped while holding it
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError):
            store.apply([put_op(A, 1, "a")])
        assert time.monotonic() - started < 2.0
    finally:
        fcntl.flock(peer, fcntl.LOCK_UN)
        os.close(peer)
    [result] = store.apply([put_op(A, 1, "a")])  # released: writes go through
    assert result.bid.sequence == 1  # type: ignore[union-attr]
    store.close()


def test_stale_lookup_probes_the_envelope_index_not_the_history(tmp_path: Path) -> None:
    """No resurrection reads only the batch's (pair, hash) rows: one bids_pair_hash probe
    each, whatever the length of the pair's history."""
    from clearing.store import sqlite as sqlite_module

    store = SqliteBidStore(tmp_path / "b.db")
    store.migrate()
    store.apply([put_op(A, 7, f"v{i}") for i in range(500)])  # a long history for one pair
    for n, query in sqlite_module._SELECT_RETIRED_OF_ENVELOPES.items():
        plan = [row[3] for row in store._writer.execute("EXPLAIN QUERY PLAN " + query, [0] * 3 * n)]
        assert any("USING INDEX bids_pair_hash" in step for step in plan), plan
        assert not any(step.startswith("SCAN bids") for step in plan), plan
    [result] = store.apply([put_op(A, 7, "v3")])
    assert result.code == "stale_envelope"  # type: ignore[union-attr]
    store.close()
