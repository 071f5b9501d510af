"""Crash durability: SIGKILL a writer mid-stream; every acknowledged bid survives intact."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

from clearing.store._common import u256_to_bytes
from clearing.store.sqlite import SqliteBidStore

ROOT = Path(__file__).resolve().parents[2]
AUCTION = 1_767_225_600


def run_and_kill(db: Path, run: int, minimum: int) -> list[str]:
    """Run the writer, SIGKILL it at a random moment after ``minimum`` acks, return the acks.

    stdout is drained by a thread so the writer never blocks on the pipe: the kill lands
    wherever the writer is (building a batch, inside the transaction, in fsync, printing).
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.store.crash_writer", str(db), str(run)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    stdout = proc.stdout
    lines: list[str] = []

    def drain() -> None:
        for raw in stdout:
            lines.append(raw.decode())

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while len(lines) < minimum and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(random.uniform(0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        reader.join(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, "the writer died on its own"
    assert lines and lines[0] == "ready\n"
    acks = [line for line in lines[1:] if line.endswith("\n")]  # a half-printed line is no ack
    assert len(acks) >= minimum, f"the writer acknowledged only {len(acks)} operations"
    return acks


def check_database(db: Path, acks: list[str]) -> None:
    """Integrity, whole-batch atomicity, live-row consistency, and every ack present."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = conn.execute(
            "SELECT auction_id, redemption_id, sequence, ciphertext_hash, status,"
            " cancel_signature, cancel_sequence FROM bids ORDER BY auction_id, sequence"
        ).fetchall()
        counters = dict(conn.execute("SELECT auction_id, last_sequence FROM auction_sequences"))
    finally:
        conn.close()
    by_auction: dict[int, list[int]] = defaultdict(list)
    by_pair: dict[tuple[int, bytes], list[tuple[int, str]]] = defaultdict(list)
    by_seq: dict[tuple[int, bytes, int], bytes] = {}
    by_hash: dict[tuple[int, bytes, bytes], tuple[str, int | None]] = {}
    for auction, rid, seq, chash, status, cancel_sig, cancel_seq in rows:
        by_auction[auction].append(seq)
        if cancel_seq is not None:  # a cancel takes its own number from the same counter
            by_auction[auction].append(cancel_seq)
        assert (status == "cancelled") == (cancel_seq is not None)
        by_pair[(auction, rid)].append((seq, status))
        by_seq[(auction, rid, seq)] = chash
        by_hash[(auction, rid, chash)] = (status, cancel_seq)
        assert (status == "cancelled") == (cancel_sig is not None)
    for auction, seqs in by_auction.items():
        # Whole batches or nothing: bid and cancel sequences gapless, the counter row agrees.
        assert sorted(seqs) == list(range(1, len(seqs) + 1))
        assert counters[auction] == len(seqs)
    for history in by_pair.values():
        statuses = [status for _, status in sorted(history)]
        assert statuses.count("live") <= 1
        assert all(s in ("superseded", "cancelled") for s in statuses[:-1])
    for line in acks:
        kind, *fields = line.split()
        auction, rid = int(fields[0]), u256_to_bytes(int(fields[1]))
        if kind == "P":
            assert by_seq.get((auction, rid, int(fields[2]))) == bytes.fromhex(fields[3]), line
        else:
            expected = ("cancelled", int(fields[3]))
            assert by_hash.get((auction, rid, bytes.fromhex(fields[2]))) == expected, line


def test_acknowledged_bids_survive_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    acks: list[str] = []
    for run in range(3):  # kill, reopen (WAL recovery), write more, kill again
        acks += run_and_kill(db, run, minimum=1_000)
        check_database(db, acks)
    store = SqliteBidStore(db)
    store.migrate()
    store.ping()
    assert store.live_bids(AUCTION)
    store.close()
